/*
 * Compaction of a stream entries were deleted from (storage/erase.h, sto_stream_compact):
 * XDEL only marks an entry deleted, and its bytes stay in the radix-tree node that holds it
 * (Redis frees a node once all of its entries are deleted), in memory and in every RDB or
 * rewritten AOF. The stream is copied, entry by entry with the same ids, to KEY:compact, and
 * that copy takes the stream's place (RENAME) with its last id and entries-added count
 * (XSETID; its largest deleted id "0-0": none left in it), in one script that first checks
 * nobody wrote meanwhile.
 */
#include <stdio.h>
#include <string.h>

#include "storage/erase.h"
#include "storage/store.h"
#include "storage/store_impl.h"

/* Entries per copying script: a record may be up to a message's size, the script holds them. */
#define COPY_BATCH "100"

/*
 * KEYS[1] the stream, KEYS[2] the copy; ARGV[1] the start ("-" or "(ID"), ARGV[2] the count,
 * ARGV[3] the last id to copy (the stream's when the copy began: what is appended later is
 * not copied, and the swap then sees the stream changed). Returns {entries copied, last id
 * copied}.
 */
static const char COPY_RANGE[] =
    "local r = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[3], 'COUNT', tonumber(ARGV[2])) "
    "for _, e in ipairs(r) do redis.call('XADD', KEYS[2], e[1], unpack(e[2])) end "
    "if #r == 0 then return {0, ''} end "
    "return {#r, r[#r][1]}";

/*
 * KEYS[1] the stream, KEYS[2] the copy, KEYS[3] the policy's lease; ARGV[1] the stream's last
 * id and ARGV[2] its length when the copy began. The copy takes the stream's place only if
 * no rlfeedd holds the policy and the stream is as it was; else the copy is dropped.
 */
static const char SWAP[] =
    "local i = redis.call('XINFO', 'STREAM', KEYS[1]) "
    "local last, len = nil, nil "
    "for k = 1, #i, 2 do "
    "if i[k] == 'last-generated-id' then last = i[k + 1] end "
    "if i[k] == 'length' then len = i[k + 1] end end "
    "if redis.call('EXISTS', KEYS[3]) == 1 or last ~= ARGV[1] or tostring(len) ~= ARGV[2] then "
    "redis.call('DEL', KEYS[2]) return 0 end "
    "redis.call('RENAME', KEYS[2], KEYS[1]) return 1";

/* The value of field @name in an XINFO STREAM reply @r (a flat array of pairs), or NULL. */
static const redisReply *xinfo_field(const redisReply *r, const char *name)
{
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, name) == 0) {
            return r->element[i + 1];
        }
    }
    return NULL;
}

static const char *xinfo_str(const redisReply *r, const char *name)
{
    const redisReply *v = xinfo_field(r, name);
    return v != NULL && (v->type == REDIS_REPLY_STRING || v->type == REDIS_REPLY_STATUS) ? v->str
                                                                                         : NULL;
}

static long long xinfo_int(const redisReply *r, const char *name)
{
    const redisReply *v = xinfo_field(r, name);
    return v != NULL && v->type == REDIS_REPLY_INTEGER ? v->integer : -1;
}

base_err sto_stream_state(sto_store *s, const char *key, sto_stream_info *out)
{
    memset(out, 0, sizeof(*out));
    const char *exists[] = {"EXISTS", key};
    size_t exists_lens[] = {6, strlen(key)};
    uint64_t n = 0;
    base_err e = sto_run_count(s, 2, exists, exists_lens, &n);
    if (e != BASE_OK || n == 0) {
        return e;
    }
    out->exists = true;
    redisReply *r = NULL;
    const char *info[] = {"XINFO", "STREAM", key};
    size_t info_lens[] = {5, 6, strlen(key)};
    e = sto_run(s, 3, info, info_lens, &r);
    if (e != BASE_OK) {
        return e;
    }
    const char *lg = xinfo_str(r, "last-generated-id"), *md = xinfo_str(r, "max-deleted-entry-id");
    out->length = xinfo_int(r, "length");
    out->entries_added = xinfo_int(r, "entries-added");
    out->groups = xinfo_int(r, "groups");
    bool ok = lg != NULL && md != NULL && out->length >= 0 && out->entries_added >= out->length &&
              base_strlcpy(out->last_id, lg, sizeof(out->last_id)) &&
              base_strlcpy(out->max_deleted, md, sizeof(out->max_deleted));
    freeReplyObject(r);
    if (!ok) {
        (void)snprintf(s->refusal, sizeof(s->refusal),
                       "XINFO STREAM %.200s has no entries-added or max-deleted-entry-id: erase "
                       "needs Redis 7.0 or later",
                       key);
        return BASE_EPROTO;
    }
    return BASE_OK;
}

base_err sto_stream_compact(sto_store *s, const char *policy, const char *key, bool *out_done)
{
    char tmp[STO_KEY_MAX + 16], lease[STO_KEY_MAX], start[BASE_STREAM_ID_MAX + 2] = "-";
    char added[24], len[24];
    sto_stream_info st;
    *out_done = false;
    (void)snprintf(tmp, sizeof(tmp), "%s:compact", key);
    const char *del[] = {"DEL", tmp};
    size_t del_lens[] = {3, strlen(tmp)};
    base_err e = sto_run_ok(s, 2, del, del_lens); /* a copy an interrupted run left, always */
    if (e == BASE_OK) {
        e = sto_make_key(lease, sizeof(lease), policy, "owner");
    }
    if (e == BASE_OK) {
        e = sto_stream_state(s, key, &st);
    }
    if (e != BASE_OK || !st.exists || strcmp(st.max_deleted, "0-0") == 0 || st.length == 0) {
        return e; /* nothing ever deleted, or every node was emptied and freed */
    }
    (void)snprintf(added, sizeof(added), "%lld", st.entries_added);
    (void)snprintf(len, sizeof(len), "%lld", st.length);
    while (e == BASE_OK) {
        redisReply *r = NULL;
        const char *argv[] = {"EVAL", COPY_RANGE, "2", key, tmp, start, COPY_BATCH, st.last_id};
        size_t lens[] = {4,
                         sizeof(COPY_RANGE) - 1,
                         1,
                         strlen(key),
                         strlen(tmp),
                         strlen(start),
                         strlen(COPY_BATCH),
                         strlen(st.last_id)};
        e = sto_run(s, 8, argv, lens, &r);
        if (e != BASE_OK) {
            break;
        }
        bool more = r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                    r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer > 0 &&
                    r->element[1]->type == REDIS_REPLY_STRING;
        if (more) {
            (void)snprintf(start, sizeof(start), "(%s", r->element[1]->str);
        } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            e = BASE_EPROTO;
        }
        freeReplyObject(r);
        if (!more) {
            break;
        }
    }
    if (e == BASE_OK) {
        /*
         * The largest deleted id is not kept: nothing deleted remains in the copy, so a later
         * erase reads "0-0" and rewrites it again only after something else is deleted.
         */
        const char *argv[] = {"XSETID",       tmp,  st.last_id, "ENTRIESADDED", added,
                              "MAXDELETEDID", "0-0"};
        size_t lens[] = {6, strlen(tmp), strlen(st.last_id), 12, strlen(added), 12, 3};
        e = sto_run_ok(s, 7, argv, lens);
    }
    uint64_t swapped = 0;
    if (e == BASE_OK) {
        const char *argv[] = {"EVAL", SWAP, "3", key, tmp, lease, st.last_id, len};
        size_t lens[] = {4,
                         sizeof(SWAP) - 1,
                         1,
                         strlen(key),
                         strlen(tmp),
                         strlen(lease),
                         strlen(st.last_id),
                         strlen(len)};
        e = sto_run_count(s, 8, argv, lens, &swapped);
    }
    if (e != BASE_OK) {
        char words[sizeof(s->refusal)];
        base_strlcpy(words, s->refusal, sizeof(words)); /* the DEL clears them */
        (void)sto_run_ok(s, 2, del, del_lens);          /* best effort: the next run drops it */
        base_strlcpy(s->refusal, words, sizeof(s->refusal));
        return e;
    }
    if (swapped == 0) { /* the script dropped the copy */
        (void)snprintf(s->refusal, sizeof(s->refusal),
                       "%.200s changed while it was compacted (an rlfeedd wrote to it): stop "
                       "every rlfeedd of the policy and run erase again",
                       key);
        return BASE_ESTORE;
    }
    *out_done = true;
    return BASE_OK;
}
