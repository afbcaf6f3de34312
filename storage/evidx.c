/*
 * The event index: per policy and hour, a hash
 *     rlfeed:{faq}:evidx:472222   "ev-42" -> "1700000000123-0"        (decision)
 *                                 "j:ev-42" -> "1700000060130-0"      (joined)
 *                                 "o:ev-42" -> "1700000001000-0 1700000002000-3"
 *                                                                     (its outcomes)
 * written in the append pipeline after the XADDs of each chunk (decisions and joined
 * records: one HSET of all of the chunk's fields per hour key, then one PEXPIRE of the
 * last item's index_ttl_ms, which each write renews; storage/append.c), so finding a
 * decision by event id costs one pipelined probe of the hour keys plus one
 * XRANGE per record, never a scan of the stream. Decisions and joined
 * records go under the hour of the decision's time; outcomes addressed to an
 * event under the hour of their arrival, appended to one space-separated
 * field by a script (STO_EVIDX_APPEND_OUTCOMES, one per policy and chunk), at most
 * STO_EVIDX_MAX_OUTCOMES ids per event and hour.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "storage/store.h"
#include "storage/store_impl.h"
#include "storage/streamid.h"

#define HOUR_MS 3600000LL
#define JOINED_PREFIX "j:"
#define OUTCOME_PREFIX "o:"

/*
 * KEYS: hour keys of one policy; ARGV[1] the most ids a field holds, then per outcome, in
 * order: the index of its key in KEYS, its field, its stream id. Each id is appended to its
 * field, space-separated, unless the field holds ARGV[1] ids already. Returns how many were
 * added. (The TTLs are renewed by the PEXPIREs that follow it in the pipeline.)
 */
const char STO_EVIDX_APPEND_OUTCOMES[] = "local cap = tonumber(ARGV[1]) "
                                         "local added = 0 "
                                         "for i = 2, #ARGV, 3 do "
                                         "  local k = KEYS[tonumber(ARGV[i])] "
                                         "  local v = redis.call('HGET', k, ARGV[i + 1]) "
                                         "  local n = 0 "
                                         "  if v then "
                                         "    local _, c = string.gsub(v, ' ', ' ') "
                                         "    n = c + 1 "
                                         "    v = v .. ' ' .. ARGV[i + 2] "
                                         "  else v = ARGV[i + 2] end "
                                         "  if n < cap then "
                                         "    redis.call('HSET', k, ARGV[i + 1], v) "
                                         "    added = added + 1 "
                                         "  end "
                                         "end "
                                         "return added";

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

sto_evidx_op sto_evidx_entry(const sto_append *it, char *key, char *field)
{
    const base_decision *d = NULL;
    const char *prefix = "";
    if (it->index_ttl_ms == 0) {
        return STO_EVIDX_NONE;
    }
    if (it->kind == STO_OUTCOMES) {
        const base_outcome *o = it->rec;
        if (o->type != BASE_OUT_SIGNAL || o->event_id[0] == '\0' ||
            hour_key(key, STO_KEY_MAX, it->policy, hour_of(o->arrived_ms)) != BASE_OK) {
            return STO_EVIDX_NONE; /* conversation-level outcomes and activations */
        }
        (void)snprintf(field, STO_EVIDX_FIELD_MAX, OUTCOME_PREFIX "%s", o->event_id);
        return STO_EVIDX_APPEND;
    }
    if (it->kind == STO_DECISIONS) {
        d = it->rec;
    } else if (it->kind == STO_JOINED) {
        d = ((const base_joined *)it->rec)->decision;
        prefix = JOINED_PREFIX;
    }
    if (d == NULL || d->event_id[0] == '\0' ||
        hour_key(key, STO_KEY_MAX, it->policy, hour_of(d->ts_ms)) != BASE_OK) {
        return STO_EVIDX_NONE; /* not indexed: the XADD alone decides the item */
    }
    (void)snprintf(field, STO_EVIDX_FIELD_MAX, "%s%s", prefix, d->event_id);
    return STO_EVIDX_SET;
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
    e = sto_route_policy(s, policy);
    if (e == BASE_OK && s->c == NULL) {
        e = BASE_EIO;
    }
    if (e != BASE_OK) {
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
            (void)sto_cluster_note(s, r);
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

/* The ids of @policy's outcomes for @event_id, gathered from every hour's field. */
typedef struct id_list {
    sto_sid *v;
    size_t n, cap;
    bool full; /* some hour's field reached STO_EVIDX_MAX_OUTCOMES */
} id_list;

static base_err id_list_add_field(id_list *l, const redisReply *el)
{
    char tok[BASE_STREAM_ID_MAX + 1];
    size_t ids = 0;
    if (el->type != REDIS_REPLY_STRING) {
        return el->type == REDIS_REPLY_NIL ? BASE_OK : BASE_EPROTO;
    }
    for (size_t i = 0; i < el->len;) {
        size_t k = i;
        while (k < el->len && el->str[k] != ' ') {
            k++;
        }
        sto_sid sid;
        if (k - i == 0 || k - i > BASE_STREAM_ID_MAX) {
            return BASE_EPROTO;
        }
        memcpy(tok, el->str + i, k - i);
        tok[k - i] = '\0';
        if (!sto_sid_parse(tok, &sid)) {
            return BASE_EPROTO;
        }
        if (l->n == l->cap) {
            size_t cap = l->cap == 0 ? 16 : l->cap * 2;
            sto_sid *nv = base_realloc_array(l->v, cap, sizeof(*nv));
            if (nv == NULL) {
                return BASE_ENOMEM;
            }
            l->v = nv;
            l->cap = cap;
        }
        l->v[l->n++] = sid;
        ids++;
        i = k + 1;
    }
    l->full = l->full || ids >= STO_EVIDX_MAX_OUTCOMES;
    return BASE_OK;
}

/* HGET "o:"@event_id on every hour key of [@from_ms, @to_ms], pipelined, into @l. */
static base_err probe_outcomes(sto_store *s, const char *policy, const char *event_id,
                               int64_t from_ms, int64_t to_ms, id_list *l)
{
    char key[STO_KEY_MAX], field[BASE_ID_MAX + sizeof(OUTCOME_PREFIX)];
    int64_t hi = hour_of(to_ms), lo = hour_of(from_ms);
    size_t sent = 0;
    base_err e = BASE_OK;
    pipe_guard g;

    if (lo < hi - (STO_EVIDX_MAX_HOURS - 1)) {
        lo = hi - (STO_EVIDX_MAX_HOURS - 1);
    }
    (void)snprintf(field, sizeof(field), OUTCOME_PREFIX "%s", event_id);
    sto_guard_begin(&g);
    e = sto_route_policy(s, policy);
    if (e == BASE_OK && s->c == NULL) {
        e = BASE_EIO;
    }
    if (e != BASE_OK) {
        goto fail;
    }
    for (int64_t h = hi; h >= lo; h--) {
        e = hour_key(key, sizeof(key), policy, h);
        if (e != BASE_OK) {
            goto fail;
        }
        const char *argv[] = {"HGET", key, field};
        size_t lens[] = {4, strlen(key), strlen(field)};
        if (redisAppendCommandArgv(s->c, 3, argv, lens) != REDIS_OK) {
            e = BASE_EIO;
            goto fail;
        }
        sent++;
    }
    /* Read every reply, even after an error, so the connection stays in step. */
    for (size_t i = 0; i < sent; i++) {
        void *rv = NULL;
        if (redisGetReply(s->c, &rv) != REDIS_OK) {
            e = BASE_EIO;
            goto fail;
        }
        const redisReply *r = rv;
        (void)sto_cluster_note(s, r);
        base_err re = r->type == REDIS_REPLY_ERROR ? BASE_ESTORE : id_list_add_field(l, r);
        e = e == BASE_OK ? re : e;
        freeReplyObject(rv);
    }
fail:
    if (e == BASE_EIO) {
        sto_mark_broken(s);
    }
    sto_guard_end(&g);
    return e;
}

static int sid_order(const void *a, const void *b)
{
    return sto_sid_cmp(*(const sto_sid *)a, *(const sto_sid *)b);
}

base_err sto_event_outcomes(sto_store *s, const char *policy, const char *event_id, int64_t from_ms,
                            int64_t to_ms, size_t max, sto_entry **out, size_t *out_n,
                            bool *out_more)
{
    id_list l = {.v = NULL, .n = 0, .cap = 0, .full = false};
    sto_entry *ents = NULL;
    size_t n = 0;
    base_err e = BASE_EINVAL;

    if (event_id == NULL || event_id[0] == '\0' || strlen(event_id) > BASE_ID_MAX ||
        from_ms > to_ms || max == 0) {
        goto fail;
    }
    e = probe_outcomes(s, policy, event_id, from_ms, to_ms, &l);
    if (e != BASE_OK) {
        goto fail;
    }
    /* Stream order, each id once (a retried append may have indexed one twice). */
    if (l.n > 1) {
        qsort(l.v, l.n, sizeof(*l.v),
              sid_order); /* l.v is NULL when empty: qsort must not see it */
    }
    size_t uniq = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (uniq == 0 || sto_sid_cmp(l.v[uniq - 1], l.v[i]) != 0) {
            l.v[uniq++] = l.v[i];
        }
    }
    bool more = l.full;
    ents = uniq > 0 ? base_alloc_zero(uniq < max ? uniq : max, sizeof(*ents)) : NULL;
    if (uniq > 0 && ents == NULL) {
        e = BASE_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < uniq && e == BASE_OK; i++) {
        char id[BASE_STREAM_ID_MAX + 1];
        sto_entry *got = NULL;
        bool found = false;
        if (n == max) {
            more = true;
            break;
        }
        (void)sto_sid_format(l.v[i], id, sizeof(id));
        e = sto_store_get(s, STO_OUTCOMES, policy, id, &got, &found);
        if (e == BASE_OK && found &&
            strcmp(((const base_outcome *)got->rec)->event_id, event_id) == 0) {
            ents[n++] = *got; /* moves the record */
            base_free(got);
        } else if (got != NULL) {
            sto_entries_free(STO_OUTCOMES, got, 1); /* trimmed, or another writer's id */
        }
    }
    if (e != BASE_OK) {
        goto fail;
    }
    if (n == 0) {
        base_free(ents);
        ents = NULL;
    }
    *out = ents;
    *out_n = n;
    *out_more = more;
    ents = NULL;
    n = 0;
fail:
    if (ents != NULL) {
        sto_entries_free(STO_OUTCOMES, ents, n);
    }
    base_free(l.v);
    return e;
}

/*
 * KEYS[1] the hour's hash; ARGV[1] the field, ARGV[2] the stream id removed. A decision's or
 * joined record's field goes if it names that id (a reused event id may name another's); an
 * outcome list ("o:...") loses that id alone. Returns 1 if the field changed.
 */
static const char FORGET[] =
    "local v = redis.call('HGET', KEYS[1], ARGV[1]) "
    "if not v then return 0 end "
    "if string.sub(ARGV[1], 1, 2) ~= 'o:' then "
    "if v == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) return 1 end return 0 end "
    "local keep, gone = {}, 0 "
    "for id in string.gmatch(v, '%S+') do "
    "if id == ARGV[2] then gone = 1 else keep[#keep + 1] = id end end "
    "if gone == 0 then return 0 end "
    "if #keep == 0 then redis.call('HDEL', KEYS[1], ARGV[1]) "
    "else redis.call('HSET', KEYS[1], ARGV[1], table.concat(keep, ' ')) end "
    "return 1";

base_err sto_evidx_forget(sto_store *s, const char *policy, int64_t ts_ms, const char *field,
                          const char *stream_id, bool *out_changed)
{
    char key[STO_KEY_MAX];
    uint64_t n = 0;
    base_err e = hour_key(key, sizeof(key), policy, hour_of(ts_ms));
    if (e == BASE_OK) {
        const char *argv[] = {"EVAL", FORGET, "1", key, field, stream_id};
        size_t lens[] = {4, sizeof(FORGET) - 1, 1, strlen(key), strlen(field), strlen(stream_id)};
        e = sto_run_count(s, 6, argv, lens, &n);
    }
    *out_changed = e == BASE_OK && n > 0;
    return e;
}
