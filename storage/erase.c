/*
 * Erasure of one customer's records (storage/erase.h, sto_erase) and the pseudonym key.
 *
 * Passes over a policy's streams and its inbox, oldest first, in batches:
 *   1. the conversations of decisions naming the user (set C, with the one asked for; an
 *      outcome that names the user and another's conversation does not make it theirs);
 *   2. the event ids of records naming the user or a conversation in C (set K);
 *   3. every decision of those ids, anyone's (a joined record stands for one retention
 *      trimmed): its time, and whether it is the customer's or names someone else;
 *   4. the customer's outcomes make the decision they addressed (the newest of that id made
 *      before they arrived, else the first after) the customer's, unless it names someone
 *      else;
 * then the sweep deletes (XDEL) the customer's decisions, the outcomes that name them or
 * address their decisions (but not one naming another user, unless it addressed a decision
 * of one of the customer's conversations), the joined records of their
 * decisions, and the event index entries of what it deleted. sto_erase_compact() then
 * rewrites the streams so that the deleted entries' bytes are gone (storage/compact.c).
 * Nothing else in Redis holds a user or conversation id (docs/storage.md).
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
#include "storage/erase.h"
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

/* The index of @id in @s, or -1. */
static long idset_find(const idset *s, const char *id)
{
    uint32_t v = 0;
    return id[0] != '\0' && base_hset_get(&s->h, id_hash(id), &v) && strcmp(s->id[v - 1], id) == 0
               ? (long)v - 1
               : -1;
}

static bool idset_has(const idset *s, const char *id)
{
    return idset_find(s, id) >= 0;
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

/*
 * One decision of an event id that matters (one of the customer's records names it): its
 * time, and whether it is the customer's. An event id names a new decision once the one
 * before it closed (docs/protocol.md), so a decision is the customer's by its own user or
 * conversation, or because an outcome of the customer's addressed it; never by its id alone.
 */
typedef struct inst {
    int64_t ts;
    bool mine;
    bool other;   /* it names another user, or a conversation that is not the customer's */
    bool in_conv; /* it names one of the customer's conversations */
} inst;

typedef struct evinsts {
    inst *v;
    uint32_t n, cap;
} evinsts;

typedef struct erase_ctx {
    sto_store *s;
    const char *policy;
    const char *user; /* pseudonymised, or "" */
    idset convs;      /* the customer's conversations */
    idset events;     /* event ids the customer's records name */
    evinsts *ev;      /* [events.n]: the decisions of each (after PASS_EVENTS) */
    int pass;         /* which pass the callbacks run */
    dels del[3];      /* by sto_kind */
    dels inbox;
    int inbox_kind; /* sweep(): the inbox's entries of this sto_kind are swept; -1: not the inbox */
    bool dry_run;
    sto_erase_report *rep;
} erase_ctx;

enum { PASS_CONVS, PASS_EVENTS, PASS_DECISIONS, PASS_OUTCOMES };

static bool names_customer(const erase_ctx *x, const char *user, const char *conv)
{
    return (x->user[0] != '\0' && strcmp(user, x->user) == 0) || idset_has(&x->convs, conv);
}

static evinsts *event_insts(erase_ctx *x, const char *event)
{
    long k = idset_find(&x->events, event);
    return k >= 0 ? &x->ev[k] : NULL;
}

/* The decision of @v at time @ts, or NULL. */
static inst *inst_at(evinsts *v, int64_t ts)
{
    for (uint32_t i = 0; v != NULL && i < v->n; i++) {
        if (v->v[i].ts == ts) {
            return &v->v[i];
        }
    }
    return NULL;
}

/*
 * The decision an outcome that arrived at @at addressed: the newest made at or before it,
 * else (an early outcome, held in a backward window) the first one after it.
 */
static inst *inst_for(evinsts *v, int64_t at)
{
    inst *best = NULL, *after = NULL;
    for (uint32_t i = 0; v != NULL && i < v->n; i++) {
        inst *c = &v->v[i];
        if (c->ts <= at && (best == NULL || c->ts > best->ts)) {
            best = c;
        } else if (c->ts > at && (after == NULL || c->ts < after->ts)) {
            after = c;
        }
    }
    return best != NULL ? best : after;
}

static base_err inst_add(evinsts *v, int64_t ts, bool mine, bool other, bool in_conv)
{
    inst *have = inst_at(v, ts);
    if (have != NULL) { /* the same decision, from the inbox, the stream or a joined record */
        have->mine = have->mine || mine;
        have->other = have->other || other;
        have->in_conv = have->in_conv || in_conv;
        return BASE_OK;
    }
    if (v->n == v->cap) {
        uint32_t cap = v->cap > 0 ? 2 * v->cap : 4;
        inst *p = base_realloc_array(v->v, cap, sizeof(*p));
        if (p == NULL) {
            return BASE_ENOMEM;
        }
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = (inst){ts, mine, other, in_conv};
    return BASE_OK;
}

/* The passes before the sweep: what the customer's records name, then their decisions. */
static base_err collect(void *arg, sto_kind kind, const sto_entry *ent)
{
    erase_ctx *x = arg;
    const char *user, *conv, *event;
    ids_of(kind, ent->rec, &user, &conv, &event);
    switch (x->pass) {
    case PASS_CONVS: /* the conversations of the user's decisions (not of an outcome) */
        if (kind == STO_OUTCOMES || x->user[0] == '\0' || strcmp(user, x->user) != 0) {
            return BASE_OK;
        }
        return idset_add(&x->convs, conv);
    case PASS_EVENTS: /* the event ids the customer's records name */
        return names_customer(x, user, conv) ? idset_add(&x->events, event) : BASE_OK;
    case PASS_DECISIONS: { /* every decision of those event ids, anyone's (also joined) */
        const base_decision *d = kind == STO_DECISIONS ? ent->rec
                                 : kind == STO_JOINED  ? ((const base_joined *)ent->rec)->decision
                                                       : NULL;
        evinsts *v = d != NULL ? event_insts(x, event) : NULL;
        bool mine = names_customer(x, user, conv);
        bool other = !mine && (user[0] != '\0' || conv[0] != '\0'); /* someone else's */
        return v == NULL ? BASE_OK : inst_add(v, d->ts_ms, mine, other, idset_has(&x->convs, conv));
    }
    default: { /* PASS_OUTCOMES: the customer's outcomes make their decisions the customer's */
        const base_outcome *o = ent->rec;
        if (kind != STO_OUTCOMES || !names_customer(x, user, conv)) {
            return BASE_OK;
        }
        inst *d = inst_for(event_insts(x, event), o->arrived_ms);
        if (d != NULL && !d->other) { /* never one that names someone else */
            d->mine = true;
        }
        return BASE_OK;
    }
    }
}

/* Drop the event index fields of a removed record (best effort: the index expires anyway). */
static void forget_index(erase_ctx *x, sto_kind kind, const void *rec, const char *stream_id)
{
    char field[BASE_ID_MAX + 3];
    int64_t ts = 0;
    const char *event = NULL;
    if (kind == STO_OUTCOMES) {
        const base_outcome *o = rec;
        if (o->type == BASE_OUT_ACTIVATE) {
            return; /* activations are not indexed */
        }
        event = o->event_id;
        ts = o->arrived_ms;
        snprintf(field, sizeof(field), "o:%s", event);
    } else {
        const base_decision *d = kind == STO_DECISIONS ? rec : ((const base_joined *)rec)->decision;
        event = d->event_id;
        ts = d->ts_ms;
        snprintf(field, sizeof(field), kind == STO_JOINED ? "j:%s" : "%s", event);
    }
    bool changed = false;
    if (event[0] != '\0' && !x->dry_run &&
        sto_evidx_forget(x->s, x->policy, ts, field, stream_id, &changed) == BASE_OK && changed) {
        x->rep->index_fields++;
    }
}

/* Whether decision @d (or a joined record's) is the customer's. */
static bool decision_mine(erase_ctx *x, const base_decision *d)
{
    if (names_customer(x, d->user_id, d->conversation_id)) {
        return true;
    }
    inst *i = inst_at(event_insts(x, d->event_id), d->ts_ms);
    return i != NULL && i->mine;
}

/* The sweep: remove what belongs to the customer. */
static base_err sweep(void *arg, sto_kind kind, const sto_entry *ent)
{
    erase_ctx *x = arg;
    if (x->inbox_kind >= 0 && (int)kind != x->inbox_kind) {
        return BASE_OK;
    }
    bool mine = false;
    if (kind == STO_OUTCOMES) {
        const base_outcome *o = ent->rec;
        inst *d = names_customer(x, o->user_id, o->conversation_id)
                      ? NULL
                      : inst_for(event_insts(x, o->event_id), o->arrived_ms);
        mine = names_customer(x, o->user_id, o->conversation_id) || (d != NULL && d->mine);
        /*
         * An outcome naming another user is that user's, whatever it addressed, unless it is
         * inside the customer's conversations: it names one, or addressed a decision of one.
         */
        mine = mine && (o->user_id[0] == '\0' || strcmp(o->user_id, x->user) == 0 ||
                        idset_has(&x->convs, o->conversation_id) || (d != NULL && d->in_conv));
    } else {
        const base_decision *d =
            kind == STO_DECISIONS ? ent->rec : ((const base_joined *)ent->rec)->decision;
        mine = decision_mine(x, d);
    }
    if (!mine) {
        return BASE_OK;
    }
    if (x->inbox_kind >= 0) {
        return dels_add(x->s, &x->inbox, ent->id, x->dry_run);
    }
    forget_index(x, kind, ent->rec, ent->id);
    return dels_add(x->s, &x->del[kind], ent->id, x->dry_run);
}

/* @fn over every record of the policy's streams @kinds (bits of 1 << sto_kind) and its inbox. */
static base_err scan_all(erase_ctx *x, unsigned kinds, entry_fn fn)
{
    base_err e = BASE_OK;
    for (int k = 0; k < 3 && e == BASE_OK; k++) {
        e = kinds & (1u << k) ? scan(x->s, x->policy, (sto_kind)k, fn, x) : BASE_OK;
    }
    return e == BASE_OK ? scan_inbox(x->s, x->policy, fn, x) : e;
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
    /* Before anything is deleted: compaction needs Redis 7 and streams without groups. */
    for (int k = 0; k < 4 && e == BASE_OK && !dry_run; k++) {
        const char *key = k < 3 ? x.del[k].key : x.inbox.key;
        sto_stream_info st;
        e = sto_stream_state(s, key, &st);
        if (e == BASE_OK && st.exists && st.groups != 0) {
            (void)snprintf(s->refusal, sizeof(s->refusal),
                           "%.200s has consumer groups, which rlfeed never makes: not erased", key);
            e = BASE_ESTORE;
        }
    }
    if (e == BASE_OK) {
        e = idset_add(&x.convs, conversation);
    }
    const unsigned decisions = 1u << STO_DECISIONS, outcomes = 1u << STO_OUTCOMES;
    const unsigned joined = 1u << STO_JOINED;
    x.pass = PASS_CONVS;
    e = e == BASE_OK ? scan_all(&x, decisions | outcomes | joined, collect) : e;
    x.pass = PASS_EVENTS;
    e = e == BASE_OK ? scan_all(&x, decisions | outcomes | joined, collect) : e;
    if (e == BASE_OK && x.events.n > 0) {
        x.ev = base_alloc_zero(x.events.n, sizeof(*x.ev));
        e = x.ev == NULL ? BASE_ENOMEM : BASE_OK;
    }
    x.pass = PASS_DECISIONS; /* a joined record stands for a decision retention trimmed */
    e = e == BASE_OK && x.ev != NULL ? scan_all(&x, decisions | joined, collect) : e;
    x.pass = PASS_OUTCOMES;
    e = e == BASE_OK && x.ev != NULL ? scan_all(&x, outcomes, collect) : e;
    /* Every record of each stream and the inbox's, then the deletions of that one. */
    for (int k = 0; k < 5 && e == BASE_OK; k++) {
        bool inbox = k >= 3;
        x.inbox_kind = inbox ? k - 3 : -1; /* the inbox's decisions, then its outcomes */
        e = inbox ? scan_inbox(s, policy, sweep, &x) : scan(s, policy, (sto_kind)k, sweep, &x);
        if (e == BASE_OK) {
            e = dels_flush(s, inbox ? &x.inbox : &x.del[k], dry_run);
        }
    }
    rep->decisions = x.del[STO_DECISIONS].total;
    rep->outcomes = x.del[STO_OUTCOMES].total;
    rep->joined = x.del[STO_JOINED].total;
    rep->inbox = x.inbox.total;
    rep->conversations = x.convs.n;
    for (uint32_t i = 0; x.ev != NULL && i < x.events.n; i++) {
        base_free(x.ev[i].v);
    }
    base_free(x.ev);
    idset_fini(&x.convs);
    idset_fini(&x.events);
    return e;
}

base_err sto_erase_compact(sto_store *s, const char *policy, uint64_t *out_compacted)
{
    static const char *const names[4] = {"decisions", "outcomes", "joined", "inbox"};
    base_err e = BASE_OK;
    *out_compacted = 0;
    /*
     * Every stream anything was ever deleted from is rewritten, also when this run deleted
     * nothing there (one interrupted before it got this far).
     */
    for (int k = 0; k < 4 && e == BASE_OK; k++) {
        char key[STO_KEY_MAX];
        bool done = false;
        e = sto_make_key(key, sizeof(key), policy, names[k]);
        if (e == BASE_OK) {
            e = sto_stream_compact(s, policy, key, &done);
        }
        *out_compacted += done;
    }
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
    bool again = false; /* one started before the erasure runs: wait for it, then start ours */
    e = sto_run_ok(s, 1, argv, lens);
    if (e == BASE_ESTORE && strstr(sto_store_refusal(s), "already in progress") != NULL) {
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
                e = sto_run_ok(s, 1, argv, lens);
                if (e != BASE_OK) {
                    return e;
                }
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

base_err sto_save_rdb(sto_store *s)
{
    const char *argv[] = {"SAVE"};
    size_t lens[] = {4};
    return sto_run_ok(s, 1, argv, lens);
}
