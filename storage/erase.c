/*
 * Erasure of one customer's records (storage/store.h, sto_erase) and the pseudonym key.
 *
 * Two passes over a policy's streams, oldest first, in batches:
 *   1. decisions and outcomes naming the user: their conversations (set C) and event ids (E);
 *   2. decisions whose event id is in E or conversation in C (their event ids join E),
 *      outcomes whose event id is in E, conversation in C or user the user, and joined
 *      records whose decision is one of those: XDEL'd, with the event index fields of E.
 * The inbox (shared = on) holds decisions and outcomes too: it is read in both passes, and
 * its entries go with the same rule. Nothing else in Redis holds a user or conversation id
 * (docs/storage.md).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/hash.h"
#include "base/hset.h"
#include "proto/auth.h"
#include "storage/store.h"
#include "storage/store_impl.h"

#define BATCH 1000
#define DEL_BATCH 256
#define IDSET_MAX (64u << 20)

/* A set of id strings: an array and a hash of each to its index + 1. */
typedef struct idset {
    char (*id)[BASE_ID_MAX + 1];
    uint32_t n, cap;
    base_hset h;
} idset;

static void idset_init(idset *s)
{
    memset(s, 0, sizeof(*s));
    base_hset_init(&s->h, IDSET_MAX);
}

static void idset_fini(idset *s)
{
    base_free(s->id);
    base_hset_fini(&s->h);
}

static uint64_t id_hash(const char *id)
{
    uint64_t k = base_hash64(id, strlen(id), 0x5eed);
    return k != 0 ? k : 1;
}

static bool idset_has(const idset *s, const char *id)
{
    uint32_t v = 0;
    return id[0] != '\0' && base_hset_get(&s->h, id_hash(id), &v) && strcmp(s->id[v - 1], id) == 0;
}

static base_err idset_add(idset *s, const char *id)
{
    if (id[0] == '\0' || idset_has(s, id)) {
        return BASE_OK;
    }
    if (s->n == s->cap) {
        uint32_t cap = s->cap > 0 ? 2 * s->cap : 64;
        void *p = base_realloc_array(s->id, cap, sizeof(*s->id));
        if (p == NULL) {
            return BASE_ENOMEM;
        }
        s->id = p;
        s->cap = cap;
    }
    base_strlcpy(s->id[s->n], id, sizeof(s->id[0]));
    base_err e = base_hset_put(&s->h, id_hash(id), s->n + 1);
    if (e == BASE_OK) {
        s->n++;
    }
    return e;
}

/* Stream ids waiting for one XDEL, and the stream's key. */
typedef struct dels {
    char key[STO_KEY_MAX];
    char id[DEL_BATCH][BASE_STREAM_ID_MAX + 1];
    uint32_t n;
    uint64_t total;
} dels;

static base_err dels_flush(sto_store *s, dels *d, bool dry_run)
{
    const char *argv[DEL_BATCH + 2];
    size_t lens[DEL_BATCH + 2];
    uint64_t n = 0;
    base_err e = BASE_OK;

    if (d->n == 0) {
        return BASE_OK;
    }
    if (!dry_run) {
        argv[0] = "XDEL";
        lens[0] = 4;
        argv[1] = d->key;
        lens[1] = strlen(d->key);
        for (uint32_t i = 0; i < d->n; i++) {
            argv[i + 2] = d->id[i];
            lens[i + 2] = strlen(d->id[i]);
        }
        e = sto_run_count(s, (int)d->n + 2, argv, lens, &n);
    } else {
        n = d->n;
    }
    d->total += n;
    d->n = 0;
    return e;
}

static base_err dels_add(sto_store *s, dels *d, const char *id, bool dry_run)
{
    base_strlcpy(d->id[d->n++], id, sizeof(d->id[0]));
    return d->n == DEL_BATCH ? dels_flush(s, d, dry_run) : BASE_OK;
}

/* The user, conversation and event id of entry @rec of @kind (joined: its decision's). */
static void ids_of(sto_kind kind, const void *rec, const char **user, const char **conv,
                   const char **event)
{
    const base_decision *d = kind == STO_DECISIONS ? rec
                             : kind == STO_JOINED  ? ((const base_joined *)rec)->decision
                                                   : NULL;
    if (d != NULL) {
        *user = d->user_id;
        *conv = d->conversation_id;
        *event = d->event_id;
    } else {
        const base_outcome *o = rec;
        *user = o->user_id;
        *conv = o->conversation_id;
        *event = o->event_id;
    }
}

/* Calls @fn on every entry of stream @kind, oldest first; stops at its first error. */
typedef base_err (*entry_fn)(void *ctx, sto_kind kind, const sto_entry *e);

static base_err scan(sto_store *s, const char *policy, sto_kind kind, entry_fn fn, void *ctx)
{
    char after[BASE_STREAM_ID_MAX + 1] = "0";
    base_err e = BASE_OK;
    for (;;) {
        sto_entry *ent = NULL;
        size_t n = 0;
        e = sto_store_read(s, kind, policy, after, BATCH, &ent, &n);
        for (size_t i = 0; e == BASE_OK && i < n; i++) {
            e = fn(ctx, kind, &ent[i]);
        }
        if (n > 0) {
            base_strlcpy(after, ent[n - 1].id, sizeof(after));
        }
        sto_entries_free(kind, ent, n);
        if (e != BASE_OK || n < BATCH) {
            return e;
        }
    }
}

/* The same over the inbox's decisions and outcomes (an entry that does not decode is kept). */
static base_err scan_inbox(sto_store *s, const char *policy, entry_fn fn, void *ctx)
{
    char after[BASE_STREAM_ID_MAX + 1] = "";
    base_err e = BASE_OK;
    for (;;) {
        sto_inbox_entry *ent = NULL;
        size_t n = 0;
        e = sto_inbox_read(s, policy, after, BATCH, &ent, &n);
        for (size_t i = 0; e == BASE_OK && i < n; i++) {
            if (ent[i].kind == STO_DECISIONS || ent[i].kind == STO_OUTCOMES) {
                sto_entry one = {.rec = ent[i].rec};
                base_strlcpy(one.id, ent[i].id, sizeof(one.id));
                e = fn(ctx, (sto_kind)ent[i].kind, &one);
            }
        }
        if (n > 0) {
            base_strlcpy(after, ent[n - 1].id, sizeof(after));
        }
        sto_inbox_free(ent, n);
        if (e != BASE_OK || n < BATCH) {
            return e;
        }
    }
}

typedef struct erase_ctx {
    sto_store *s;
    const char *policy;
    const char *user; /* pseudonymised, or "" */
    idset convs, events;
    dels del[3]; /* by sto_kind */
    dels inbox;
    int inbox_kind; /* sweep(): the inbox's entries of this sto_kind are swept; -1: not the inbox */
    bool dry_run;
    sto_erase_report *rep;
} erase_ctx;

/* Pass 1: what the user's own records name. */
static base_err collect(void *arg, sto_kind kind, const sto_entry *ent)
{
    erase_ctx *x = arg;
    const char *user, *conv, *event;
    ids_of(kind, ent->rec, &user, &conv, &event);
    if (x->user[0] == '\0' || strcmp(user, x->user) != 0) {
        return BASE_OK;
    }
    base_err e = idset_add(&x->convs, conv);
    return e == BASE_OK ? idset_add(&x->events, event) : e;
}

/* Drop the event index fields of a removed record (best effort: the index expires anyway). */
static void forget_index(erase_ctx *x, sto_kind kind, const void *rec)
{
    char field[BASE_ID_MAX + 3];
    int64_t ts = 0;
    const char *event = NULL;
    if (kind == STO_OUTCOMES) {
        const base_outcome *o = rec;
        event = o->event_id;
        ts = o->arrived_ms;
        snprintf(field, sizeof(field), "o:%s", event);
    } else {
        const base_decision *d = kind == STO_DECISIONS ? rec : ((const base_joined *)rec)->decision;
        event = d->event_id;
        ts = d->ts_ms;
        snprintf(field, sizeof(field), kind == STO_JOINED ? "j:%s" : "%s", event);
    }
    if (event[0] != '\0' && !x->dry_run &&
        sto_evidx_forget(x->s, x->policy, ts, field) == BASE_OK) {
        x->rep->index_fields++;
    }
}

/* Pass 2: remove what belongs to the user. */
static base_err sweep(void *arg, sto_kind kind, const sto_entry *ent)
{
    erase_ctx *x = arg;
    const char *user, *conv, *event;
    base_err e = BASE_OK;
    if (x->inbox_kind >= 0 && (int)kind != x->inbox_kind) {
        return BASE_OK;
    }
    ids_of(kind, ent->rec, &user, &conv, &event);
    bool mine = (x->user[0] != '\0' && strcmp(user, x->user) == 0) || idset_has(&x->convs, conv) ||
                idset_has(&x->events, event);
    if (!mine) {
        return BASE_OK;
    }
    if (kind == STO_DECISIONS) {
        e = idset_add(&x->events, event); /* its outcomes and joined record go too */
    }
    if (x->inbox_kind >= 0) {
        return e == BASE_OK ? dels_add(x->s, &x->inbox, ent->id, x->dry_run) : e;
    }
    forget_index(x, kind, ent->rec);
    return e == BASE_OK ? dels_add(x->s, &x->del[kind], ent->id, x->dry_run) : e;
}

/*
 * XDEL only marks a stream entry deleted: its bytes stay in the node that holds it (Redis
 * frees a node once all of its entries are deleted), in memory and in every RDB or rewritten
 * AOF. A stream entries were removed from is therefore copied, entry by entry with the same
 * ids, to a new key that takes its place (RENAME), with its last id, entries-added count and
 * largest deleted id (XSETID). KEYS[1] the stream, KEYS[2] the copy; ARGV[1] the start
 * ("-" or "(ID"), ARGV[2] the count. Returns {entries copied, last id copied}.
 */
static const char COPY_RANGE[] =
    "local r = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', tonumber(ARGV[2])) "
    "for _, e in ipairs(r) do redis.call('XADD', KEYS[2], e[1], unpack(e[2])) end "
    "if #r == 0 then return {0, ''} end "
    "return {#r, r[#r][1]}";

/* The string value of @name in an XINFO STREAM reply @r, or NULL. */
static const char *xinfo_str(const redisReply *r, const char *name)
{
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0) {
            return v->type == REDIS_REPLY_STRING || v->type == REDIS_REPLY_STATUS ? v->str : NULL;
        }
    }
    return NULL;
}

static long long xinfo_int(const redisReply *r, const char *name)
{
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0) {
            return v->type == REDIS_REPLY_INTEGER ? v->integer : -1;
        }
    }
    return -1;
}

static base_err compact(sto_store *s, const char *key)
{
    char tmp[STO_KEY_MAX + 16], start[BASE_STREAM_ID_MAX + 2] = "-";
    char last[BASE_STREAM_ID_MAX + 1], maxdel[BASE_STREAM_ID_MAX + 1], added[24];
    redisReply *r = NULL;
    const char *info[] = {"XINFO", "STREAM", key};
    size_t info_lens[] = {5, 6, strlen(key)};
    base_err e = sto_run(s, 3, info, info_lens, &r);
    if (e != BASE_OK) {
        return e;
    }
    const char *lg = xinfo_str(r, "last-generated-id"), *md = xinfo_str(r, "max-deleted-entry-id");
    long long len = xinfo_int(r, "length"), n_added = xinfo_int(r, "entries-added");
    long long groups = xinfo_int(r, "groups");
    bool ok = lg != NULL && md != NULL && len >= 0 && n_added >= len && groups == 0 &&
              base_strlcpy(last, lg, sizeof(last)) && base_strlcpy(maxdel, md, sizeof(maxdel));
    freeReplyObject(r);
    if (!ok) {
        return BASE_EPROTO;
    }
    if (len == 0) {
        return BASE_OK; /* every node was emptied, and Redis freed it */
    }
    (void)snprintf(tmp, sizeof(tmp), "%s:compact", key);
    (void)snprintf(added, sizeof(added), "%lld", n_added);
    const char *del[] = {"DEL", tmp};
    size_t del_lens[] = {3, strlen(tmp)};
    e = sto_run(s, 2, del, del_lens, &r);
    if (e == BASE_OK) {
        freeReplyObject(r);
    }
    while (e == BASE_OK) {
        const char *argv[] = {"EVAL", COPY_RANGE, "2", key, tmp, start, "1000"};
        size_t lens[] = {4, sizeof(COPY_RANGE) - 1, 1, strlen(key), strlen(tmp), strlen(start), 4};
        e = sto_run(s, 7, argv, lens, &r);
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
        const char *argv[] = {"XSETID", tmp, last, "ENTRIESADDED", added, "MAXDELETEDID", maxdel};
        size_t lens[] = {6, strlen(tmp), strlen(last), 12, strlen(added), 12, strlen(maxdel)};
        e = sto_run(s, 7, argv, lens, &r);
        if (e == BASE_OK) {
            freeReplyObject(r);
        }
    }
    if (e == BASE_OK) {
        const char *argv[] = {"RENAME", tmp, key};
        size_t lens[] = {6, strlen(tmp), strlen(key)};
        e = sto_run(s, 3, argv, lens, &r);
        if (e == BASE_OK) {
            freeReplyObject(r);
        }
    }
    return e;
}

base_err sto_erase(sto_store *s, const char *policy, const char *user, const char *conversation,
                   bool dry_run, sto_erase_report *rep)
{
    static const char *const names[3] = {"decisions", "outcomes", "joined"};
    erase_ctx x = {
        .s = s, .policy = policy, .user = user, .inbox_kind = -1, .dry_run = dry_run, .rep = rep};
    base_err e = BASE_OK;

    memset(rep, 0, sizeof(*rep));
    if ((user[0] == '\0' && conversation[0] == '\0') || strlen(user) > BASE_ID_MAX ||
        strlen(conversation) > BASE_ID_MAX) {
        return BASE_EINVAL;
    }
    idset_init(&x.convs);
    idset_init(&x.events);
    for (int k = 0; k < 3 && e == BASE_OK; k++) {
        e = sto_make_key(x.del[k].key, sizeof(x.del[k].key), policy, names[k]);
    }
    if (e == BASE_OK) {
        e = sto_make_key(x.inbox.key, sizeof(x.inbox.key), policy, "inbox");
    }
    if (e == BASE_OK) {
        e = idset_add(&x.convs, conversation);
    }
    if (e == BASE_OK) {
        e = scan(s, policy, STO_DECISIONS, collect, &x);
    }
    if (e == BASE_OK) {
        e = scan(s, policy, STO_OUTCOMES, collect, &x);
    }
    if (e == BASE_OK) {
        e = scan_inbox(s, policy, collect, &x);
    }
    /*
     * Decisions first, the streams' and then the inbox's, since each adds the event ids of
     * its conversations' decisions; then the outcomes and joined records those name.
     */
    static const struct {
        int kind;
        bool inbox;
    } order[] = {{STO_DECISIONS, false},
                 {STO_DECISIONS, true},
                 {STO_OUTCOMES, true},
                 {STO_OUTCOMES, false},
                 {STO_JOINED, false}};
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]) && e == BASE_OK; k++) {
        x.inbox_kind = order[k].inbox ? order[k].kind : -1;
        e = order[k].inbox ? scan_inbox(s, policy, sweep, &x)
                           : scan(s, policy, (sto_kind)order[k].kind, sweep, &x);
        if (e == BASE_OK) {
            e = dels_flush(s, order[k].inbox ? &x.inbox : &x.del[order[k].kind], dry_run);
        }
    }
    for (int k = 0; k < 4 && e == BASE_OK && !dry_run; k++) {
        const dels *d = k < 3 ? &x.del[k] : &x.inbox;
        e = d->total > 0 ? compact(s, d->key) : BASE_OK;
    }
    rep->decisions = x.del[STO_DECISIONS].total;
    rep->outcomes = x.del[STO_OUTCOMES].total;
    rep->joined = x.del[STO_JOINED].total;
    rep->inbox = x.inbox.total;
    rep->conversations = x.convs.n;
    idset_fini(&x.convs);
    idset_fini(&x.events);
    return e;
}

base_err sto_pseudonym_key_get(sto_store *s, uint8_t out[32], bool *out_found)
{
    redisReply *r = NULL;
    const char *get[] = {"GET", STO_PSEUDONYM_KEY};
    size_t get_lens[] = {3, strlen(STO_PSEUDONYM_KEY)};
    base_err e = sto_run(s, 2, get, get_lens, &r);
    *out_found = false;
    if (e == BASE_OK && r->type == REDIS_REPLY_STRING) {
        *out_found = true;
        if (!proto_auth_unhex(r->str, r->len, out, PROTO_AUTH_KEY_BYTES)) {
            e = BASE_EPROTO;
        }
    } else if (e == BASE_OK && r->type != REDIS_REPLY_NIL) {
        e = BASE_EPROTO;
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

base_err sto_pseudonym_key(sto_store *s, const uint8_t fresh[32], uint8_t out[32])
{
    char hex[2 * PROTO_AUTH_KEY_BYTES + 1];
    redisReply *r = NULL;
    bool found = false;
    proto_auth_hex(fresh, PROTO_AUTH_KEY_BYTES, hex);
    const char *set[] = {"SET", STO_PSEUDONYM_KEY, hex, "NX"};
    size_t set_lens[] = {3, strlen(STO_PSEUDONYM_KEY), strlen(hex), 2};
    base_err e = sto_run(s, 4, set, set_lens, &r);
    if (r != NULL) {
        freeReplyObject(r);
    }
    if (e == BASE_OK) {
        e = sto_pseudonym_key_get(s, out, &found);
    }
    return e == BASE_OK && !found ? BASE_EPROTO : e;
}

base_err sto_policy_known(sto_store *s, const char *policy, bool *out_known)
{
    static const char *const kinds[] = {"audit", "registry", "models", "decisions"};
    char key[4][STO_KEY_MAX];
    const char *argv[5] = {"EXISTS"};
    size_t lens[5] = {6};
    redisReply *r = NULL;
    base_err e = BASE_OK;
    *out_known = false;
    for (size_t i = 0; i < 4 && e == BASE_OK; i++) {
        e = sto_make_key(key[i], sizeof(key[i]), policy, kinds[i]);
        argv[i + 1] = key[i];
        lens[i + 1] = strlen(key[i]);
    }
    if (e == BASE_OK) {
        e = sto_run(s, 5, argv, lens, &r); /* one hash tag: one slot, also in a Cluster */
    }
    if (e == BASE_OK && r->type != REDIS_REPLY_INTEGER) {
        e = BASE_EPROTO;
    }
    if (e == BASE_OK) {
        *out_known = r->integer > 0;
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

/* The value of @field in INFO text @info ("" if absent) into @out. */
static void info_field(const char *info, const char *field, char *out, size_t size)
{
    out[0] = '\0';
    size_t n = strlen(field);
    for (const char *l = info; l != NULL && *l != '\0';) {
        if (strncmp(l, field, n) == 0 && l[n] == ':') {
            size_t v = strcspn(l + n + 1, "\r\n");
            (void)snprintf(out, size, "%.*s", (int)v, l + n + 1);
            return;
        }
        l = strchr(l, '\n');
        l = l != NULL ? l + 1 : NULL;
    }
}

static base_err info_persistence(sto_store *s, char **out)
{
    const char *argv[] = {"INFO", "persistence"};
    size_t lens[] = {4, 11};
    redisReply *r = NULL;
    base_err e = sto_run(s, 2, argv, lens, &r);
    if (e == BASE_OK) {
        *out = r->type == REDIS_REPLY_STRING ? base_strdup(r->str) : NULL;
        e = r->type != REDIS_REPLY_STRING ? BASE_EPROTO : *out == NULL ? BASE_ENOMEM : BASE_OK;
        freeReplyObject(r);
    }
    return e;
}

base_err sto_rewrite_aof(sto_store *s, int timeout_ms, bool *out_rewritten, char *why,
                         size_t whylen)
{
    char v[64];
    char *info = NULL;
    *out_rewritten = false;
    why[0] = '\0';
    if (s->cluster) {
        (void)snprintf(why, whylen, "a Redis Cluster: run BGREWRITEAOF on each master");
        return BASE_OK;
    }
    base_err e = info_persistence(s, &info);
    if (e != BASE_OK) {
        return e;
    }
    info_field(info, "aof_enabled", v, sizeof(v));
    base_free(info);
    if (strcmp(v, "1") != 0) {
        (void)snprintf(why, whylen, "this Redis keeps no AOF");
        return BASE_OK;
    }
    const char *argv[] = {"BGREWRITEAOF"};
    size_t lens[] = {12};
    redisReply *r = NULL;
    bool again = false; /* one started before the erasure runs: wait for it, then start ours */
    e = sto_run(s, 1, argv, lens, &r);
    if (e == BASE_OK) {
        freeReplyObject(r);
    } else if (e == BASE_ESTORE && strstr(sto_store_refusal(s), "already in progress") != NULL) {
        again = true;
        e = BASE_OK;
    }
    if (e != BASE_OK) {
        return e;
    }
    /* Poll until no rewrite runs or is scheduled (ours, or one before it and then ours). */
    uint64_t deadline = base_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        e = info_persistence(s, &info);
        if (e != BASE_OK) {
            return e;
        }
        char running[8], scheduled[8], status[32];
        info_field(info, "aof_rewrite_in_progress", running, sizeof(running));
        info_field(info, "aof_rewrite_scheduled", scheduled, sizeof(scheduled));
        info_field(info, "aof_last_bgrewrite_status", status, sizeof(status));
        base_free(info);
        if (strcmp(running, "0") == 0 && strcmp(scheduled, "0") == 0) {
            if (again) {
                again = false;
                e = sto_run(s, 1, argv, lens, &r);
                if (e != BASE_OK) {
                    return e;
                }
                freeReplyObject(r);
                continue;
            }
            *out_rewritten = strcmp(status, "ok") == 0;
            if (!*out_rewritten) {
                (void)snprintf(why, whylen, "the AOF rewrite failed (aof_last_bgrewrite_status %s)",
                               status);
            }
            return BASE_OK;
        }
        if (base_mono_ns() > deadline) {
            (void)snprintf(why, whylen, "the AOF rewrite did not finish within %d s",
                           timeout_ms / 1000);
            return BASE_OK;
        }
        struct timespec nap = {0, 20 * 1000 * 1000};
        (void)nanosleep(&nap, NULL);
    }
}
