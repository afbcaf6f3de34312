/*
 * The event index: per policy and hour of the decision's time, a hash
 *     rlfeed:{faq}:evidx:472222   "ev-42" -> "1700000000123-0"        (decision)
 *                                 "j:ev-42" -> "1700000060130-0"      (joined)
 * written in the append pipeline right after each indexed XADD (HSET, then
 * PEXPIRE of the item's index_ttl_ms, which each write renews), so finding a
 * decision by event id costs one pipelined probe of the hour keys plus one
 * XRANGE per record, never a scan of the stream.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "storage/store.h"
#include "storage/store_impl.h"

#define HOUR_MS 3600000LL
#define JOINED_PREFIX "j:"

/* floor(ms / HOUR_MS), also for times before the epoch. */
static int64_t hour_of(int64_t ms)
{
    int64_t h = ms / HOUR_MS;
    return (ms % HOUR_MS < 0) ? h - 1 : h;
}

static base_err hour_key(char *dst, size_t size, const char *policy, int64_t hour)
{
    char suffix[32];
    int n = snprintf(suffix, sizeof(suffix), "evidx:%" PRId64, hour);
    if (n < 0 || (size_t)n >= sizeof(suffix)) {
        return BASE_EINVAL;
    }
    return sto_make_key(dst, size, policy, suffix);
}

base_err sto_evidx_queue(sto_store *s, const sto_append *it, const char *id, size_t *out_n)
{
    char key[STO_KEY_MAX], field[BASE_ID_MAX + sizeof(JOINED_PREFIX)], ttl[24];
    const base_decision *d = NULL;
    const char *prefix = "";

    *out_n = 0;
    if (it->index_ttl_ms == 0) {
        return BASE_OK;
    }
    if (it->kind == STO_DECISIONS) {
        d = it->rec;
    } else if (it->kind == STO_JOINED) {
        d = ((const base_joined *)it->rec)->decision;
        prefix = JOINED_PREFIX;
    }
    if (d == NULL || d->event_id[0] == '\0' ||
        hour_key(key, sizeof(key), it->policy, hour_of(d->ts_ms)) != BASE_OK) {
        return BASE_OK; /* not indexed: the XADD alone decides the item */
    }
    (void)snprintf(field, sizeof(field), "%s%s", prefix, d->event_id);
    (void)snprintf(ttl, sizeof(ttl), "%" PRIu64, it->index_ttl_ms);
    const char *hset[] = {"HSET", key, field, id};
    size_t hlen[] = {4, strlen(key), strlen(field), strlen(id)};
    const char *pexp[] = {"PEXPIRE", key, ttl};
    size_t plen[] = {7, strlen(key), strlen(ttl)};
    if (redisAppendCommandArgv(s->c, 4, hset, hlen) != REDIS_OK) {
        return BASE_EIO;
    }
    if (redisAppendCommandArgv(s->c, 3, pexp, plen) != REDIS_OK) {
        *out_n = 1; /* the HSET's reply is still owed */
        return BASE_EIO;
    }
    *out_n = 2;
    return BASE_OK;
}

/* The stream id in an HMGET element, or false for nil. */
static bool id_of(const redisReply *el, char *out)
{
    if (el->type != REDIS_REPLY_STRING || el->len == 0 || el->len > BASE_STREAM_ID_MAX) {
        return false;
    }
    memcpy(out, el->str, el->len);
    out[el->len] = '\0';
    return true;
}

/*
 * HMGET event_id, "j:"event_id on every hour key from @to_ms's down to
 * @from_ms's, pipelined; the ids of the newest hour that has the decision.
 */
static base_err probe(sto_store *s, const char *policy, const char *event_id, int64_t from_ms,
                      int64_t to_ms, char *dec_id, char *joined_id, bool *out_found)
{
    char key[STO_KEY_MAX], jfield[BASE_ID_MAX + sizeof(JOINED_PREFIX)];
    int64_t hi = hour_of(to_ms), lo = hour_of(from_ms);
    size_t sent = 0;
    base_err e = BASE_OK;
    pipe_guard g;

    if (lo < hi - (STO_EVIDX_MAX_HOURS - 1)) {
        lo = hi - (STO_EVIDX_MAX_HOURS - 1);
    }
    (void)snprintf(jfield, sizeof(jfield), JOINED_PREFIX "%s", event_id);
    *out_found = false;
    sto_guard_begin(&g);
    if (s->c == NULL) {
        e = BASE_EIO;
        goto fail;
    }
    for (int64_t h = hi; h >= lo; h--) {
        e = hour_key(key, sizeof(key), policy, h);
        if (e != BASE_OK) {
            goto fail;
        }
        const char *argv[] = {"HMGET", key, event_id, jfield};
        size_t lens[] = {5, strlen(key), strlen(event_id), strlen(jfield)};
        if (redisAppendCommandArgv(s->c, 4, argv, lens) != REDIS_OK) {
            e = BASE_EIO;
            goto fail;
        }
        sent++;
    }
    /* Read every reply, even past the first hit, so the connection stays in step. */
    for (size_t i = 0; i < sent; i++) {
        void *rv = NULL;
        if (redisGetReply(s->c, &rv) != REDIS_OK) {
            e = BASE_EIO;
            goto fail;
        }
        const redisReply *r = rv;
        if (r->type == REDIS_REPLY_ERROR) {
            e = e == BASE_OK ? BASE_ESTORE : e;
        } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            e = e == BASE_OK ? BASE_EPROTO : e;
        } else if (!*out_found && id_of(r->element[0], dec_id)) {
            *out_found = true;
            if (!id_of(r->element[1], joined_id)) {
                joined_id[0] = '\0';
            }
        }
        freeReplyObject(rv);
    }
fail:
    if (e == BASE_EIO) {
        sto_mark_broken(s);
    }
    sto_guard_end(&g);
    return e;
}

base_err sto_event_lookup(sto_store *s, const char *policy, const char *event_id, int64_t from_ms,
                          int64_t to_ms, base_decision **out_decision, base_joined **out_joined,
                          bool *out_found)
{
    char dec_id[BASE_STREAM_ID_MAX + 1], joined_id[BASE_STREAM_ID_MAX + 1];
    sto_entry *de = NULL, *je = NULL;
    bool found = false, jfound = false;
    base_err e = BASE_EINVAL;

    if (event_id == NULL || event_id[0] == '\0' || strlen(event_id) > BASE_ID_MAX ||
        from_ms > to_ms) {
        goto fail;
    }
    e = probe(s, policy, event_id, from_ms, to_ms, dec_id, joined_id, &found);
    if (e == BASE_OK && found) {
        e = sto_store_get(s, STO_DECISIONS, policy, dec_id, &de, &found);
    }
    if (e == BASE_OK && found &&
        strcmp(((const base_decision *)de->rec)->event_id, event_id) != 0) {
        found = false; /* the id was reused by another writer: not this event's record */
    }
    if (e == BASE_OK && found && joined_id[0] != '\0') {
        e = sto_store_get(s, STO_JOINED, policy, joined_id, &je, &jfound);
        if (e == BASE_OK && jfound &&
            strcmp(((const base_joined *)je->rec)->decision->event_id, event_id) != 0) {
            jfound = false;
        }
    }
    if (e != BASE_OK) {
        goto fail;
    }
    *out_found = found;
    if (found) {
        *out_decision = de->rec;
        de->rec = NULL;
        *out_joined = NULL;
        if (jfound) {
            *out_joined = je->rec;
            je->rec = NULL;
        }
    }
fail:
    if (de != NULL) {
        sto_entries_free(STO_DECISIONS, de, 1);
    }
    if (je != NULL) {
        sto_entries_free(STO_JOINED, je, 1);
    }
    return e;
}
