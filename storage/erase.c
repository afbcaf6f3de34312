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
#include <string.h>

#include "base/alloc.h"
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
