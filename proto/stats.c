#include "proto/stats.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "base/alloc.h"
#include "proto/mp.h"

/*
 * Each map of the reply is described once, by a table of its scalar fields in wire order,
 * and the same table drives the encoder and the decoder, so the two cannot disagree.
 */

#define HEX_DIGITS 16 /* a 64-bit checksum as text */
#define CODE_MAX 32   /* bytes of an error code name in "rejected" */
#define MAX_FIELDS 40 /* scalar fields of the largest map */

typedef enum kind {
    K_U64,  /* uint64_t */
    K_U32,  /* uint32_t */
    K_F64,  /* double */
    K_HEX,  /* uint64_t sent as 16 hex digits */
    K_STR,  /* char[size] */
    K_BOOL, /* bool */
} kind;

typedef struct field {
    const char *name;
    kind kind;
    size_t off;
    size_t size; /* K_STR: the buffer's size */
} field;

#define U64(s, m)                                                                                  \
    {                                                                                              \
#m, K_U64, offsetof(s, m), 0                                                               \
    }
#define STR(s, m)                                                                                  \
    {                                                                                              \
#m, K_STR, offsetof(s, m), sizeof(((s *)NULL)->m)                                          \
    }

static const field policy_fields[] = {
    U64(proto_policy_stats, decisions),
    U64(proto_policy_stats, logged),
    U64(proto_policy_stats, unlogged),
    U64(proto_policy_stats, overflow),
    U64(proto_policy_stats, feedback),
    U64(proto_policy_stats, duplicates),
    U64(proto_policy_stats, unknown_event),
    U64(proto_policy_stats, pending),
    U64(proto_policy_stats, joined),
    U64(proto_policy_stats, defaulted),
    {"mean_reward", K_F64, offsetof(proto_policy_stats, mean_reward), 0},
    U64(proto_policy_stats, updates),
    U64(proto_policy_stats, learn_errors),
    U64(proto_policy_stats, store_errors),
    U64(proto_policy_stats, snapshots),
    U64(proto_policy_stats, model_version),
    {"model_checksum", K_HEX, offsetof(proto_policy_stats, model_checksum), 0},
    {"dim", K_U32, offsetof(proto_policy_stats, dim), 0},
    STR(proto_policy_stats, last_applied_id),
    U64(proto_policy_stats, next_lsn),
    {"learn_trace", K_HEX, offsetof(proto_policy_stats, learn_trace), 0},
    STR(proto_policy_stats, reward_version),
    STR(proto_policy_stats, serve),
    {"canary", K_F64, offsetof(proto_policy_stats, canary), 0},
    U64(proto_policy_stats, registry_errors),
    STR(proto_policy_stats, reward_alarm),
    U64(proto_policy_stats, reward_alarms),
    STR(proto_policy_stats, role),
    STR(proto_policy_stats, owner),
    U64(proto_policy_stats, forwarded),
    U64(proto_policy_stats, inbox),
    U64(proto_policy_stats, inbox_bad),
    U64(proto_policy_stats, inbox_conflicts),
};

static const field slot_fields[] = {
    U64(proto_slot_stats, decisions),
    U64(proto_slot_stats, joined),
    {"mean_reward", K_F64, offsetof(proto_slot_stats, mean_reward), 0},
    U64(proto_slot_stats, model_version),
};

static const field portfolio_fields[] = {
    STR(proto_portfolio_stats, serving),
    U64(proto_portfolio_stats, switches),
    {"live", K_U32, offsetof(proto_portfolio_stats, live), 0},
};

static const field member_fields[] = {
    STR(proto_member_stats, name),
    {"live", K_BOOL, offsetof(proto_member_stats, live), 0},
    {"estimate", K_F64, offsetof(proto_member_stats, estimate), 0},
    {"vs_serving", K_F64, offsetof(proto_member_stats, vs_serving), 0},
    {"se", K_F64, offsetof(proto_member_stats, se), 0},
    {"share", K_F64, offsetof(proto_member_stats, share), 0},
    U64(proto_member_stats, updates),
};

static const field join_fields[] = {
    U64(proto_join_health, pending),     U64(proto_join_health, deferred),
    U64(proto_join_health, joined),      U64(proto_join_health, defaulted),
    U64(proto_join_health, unknown),     U64(proto_join_health, not_activated),
    U64(proto_join_health, activations), U64(proto_join_health, dangling),
};

static const field storage_fields[] = {
    U64(proto_storage_stats, queue_depth), U64(proto_storage_stats, queue_capacity),
    U64(proto_storage_stats, written),     U64(proto_storage_stats, failed),
    U64(proto_storage_stats, trimmed),     U64(proto_storage_stats, audit_failed),
    U64(proto_storage_stats, pull_paused), STR(proto_storage_stats, url),
};

static const char *const latency_names[PROTO_LATENCY_BUCKETS] = {
    "lt_1s", "lt_10s", "lt_1m", "lt_10m", "lt_1h", "lt_6h", "lt_1d", "ge_1d",
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

_Static_assert(N_OF(policy_fields) + 4 <= MAX_FIELDS, "field arrays too small");
_Static_assert(N_OF(join_fields) + PROTO_ST_JOIN_COUNT + 1 <= MAX_FIELDS, "field arrays too small");

/* ---------------------------------------------------------------- encoding */

static void w_fields(proto_writer *w, const field *t, size_t n, const void *obj)
{
    const char *base = obj;
    char hex[HEX_DIGITS + 1];

    for (size_t i = 0; i < n; i++) {
        const void *p = base + t[i].off;
        proto_w_str(w, t[i].name);
        switch (t[i].kind) {
        case K_U64:
            proto_w_uint(w, *(const uint64_t *)p);
            break;
        case K_U32:
            proto_w_uint(w, *(const uint32_t *)p);
            break;
        case K_F64:
            proto_w_double(w, *(const double *)p);
            break;
        case K_HEX:
            (void)snprintf(hex, sizeof(hex), "%016" PRIx64, *(const uint64_t *)p); /* fits */
            proto_w_str(w, hex);
            break;
        case K_STR:
            proto_w_str(w, (const char *)p);
            break;
        case K_BOOL:
            proto_w_bool(w, *(const bool *)p);
            break;
        }
    }
}

static void w_slots(proto_writer *w, const proto_slot_stats *slots)
{
    proto_w_str(w, "slots");
    proto_w_map(w, PROTO_SLOTS);
    for (uint32_t k = 0; k < PROTO_SLOTS; k++) {
        proto_w_str(w, base_slot_name(k));
        proto_w_map(w, (uint32_t)N_OF(slot_fields));
        w_fields(w, slot_fields, N_OF(slot_fields), &slots[k]);
    }
}

/* "exploration": {SEGMENT: {"decisions", "mean_explore"}} */
static void w_segments(proto_writer *w, const proto_policy_stats *p)
{
    uint32_t n =
        p->n_segments < PROTO_STATS_MAX_SEGMENTS ? p->n_segments : PROTO_STATS_MAX_SEGMENTS;
    proto_w_str(w, "exploration");
    proto_w_map(w, n);
    for (uint32_t i = 0; i < n; i++) {
        proto_w_str(w, p->segments[i].name);
        proto_w_map(w, 2);
        proto_w_str(w, "decisions");
        proto_w_uint(w, p->segments[i].decisions);
        proto_w_str(w, "mean_explore");
        proto_w_double(w, p->segments[i].mean_explore);
    }
}

static void w_portfolio(proto_writer *w, const proto_portfolio_stats *pf)
{
    uint32_t n = pf->n_members < PROTO_PORTFOLIO_MAX ? pf->n_members : PROTO_PORTFOLIO_MAX;
    proto_w_str(w, "portfolio");
    proto_w_map(w, (uint32_t)N_OF(portfolio_fields) + 1);
    w_fields(w, portfolio_fields, N_OF(portfolio_fields), pf);
    proto_w_str(w, "members");
    proto_w_array(w, n);
    for (uint32_t i = 0; i < n; i++) {
        proto_w_map(w, (uint32_t)N_OF(member_fields));
        w_fields(w, member_fields, N_OF(member_fields), &pf->member[i]);
    }
}

static void w_join(proto_writer *w, const proto_join_health *j)
{
    proto_w_str(w, "join");
    proto_w_map(w, (uint32_t)(N_OF(join_fields) + PROTO_ST_JOIN_COUNT + 1));
    w_fields(w, join_fields, N_OF(join_fields), j);
    for (int s = 0; s < PROTO_ST_JOIN_COUNT; s++) {
        proto_w_str(w, proto_status_name((proto_status)s));
        proto_w_uint(w, j->status[s]);
    }
    proto_w_str(w, "latency");
    proto_w_map(w, PROTO_LATENCY_BUCKETS);
    for (int b = 0; b < PROTO_LATENCY_BUCKETS; b++) {
        proto_w_str(w, latency_names[b]);
        proto_w_uint(w, j->latency[b]);
    }
}

/* "auth": {"unknown": N, "clients": {NAME: {"accepted", "unauthorized", ...}}} */
static void w_auth(proto_writer *w, const proto_stats *s)
{
    uint32_t n = s->n_clients < PROTO_STATS_MAX_CLIENTS ? s->n_clients : PROTO_STATS_MAX_CLIENTS;
    proto_w_str(w, "auth");
    proto_w_map(w, 2);
    proto_w_str(w, "unknown");
    proto_w_uint(w, s->auth_unknown);
    proto_w_str(w, "clients");
    proto_w_map(w, n);
    for (uint32_t i = 0; i < n; i++) {
        const proto_client_stats *c = &s->clients[i];
        proto_w_str(w, c->name);
        proto_w_map(w, 5);
        proto_w_str(w, "accepted");
        proto_w_uint(w, c->accepted);
        proto_w_str(w, "unauthorized");
        proto_w_uint(w, c->unauthorized);
        proto_w_str(w, "forbidden");
        proto_w_uint(w, c->forbidden);
        proto_w_str(w, "rate_limited");
        proto_w_uint(w, c->rate_limited);
        proto_w_str(w, "alarms");
        proto_w_uint(w, c->alarms);
    }
}

base_err proto_reply_stats(base_buf *out, const proto_stats *s)
{
    size_t start = out->len;
    uint32_t n_rej = 0;
    proto_writer w;
    base_err e;

    proto_writer_init(&w, out);
    uint32_t n_standby =
        s->n_standby < PROTO_STATS_MAX_STANDBY ? s->n_standby : PROTO_STATS_MAX_STANDBY;
    proto_w_map(&w, 4u + (s->auth ? 1u : 0u) + (n_standby > 0 ? 1u : 0u));
    proto_w_str(&w, "ok");
    proto_w_bool(&w, true);
    proto_w_str(&w, "policies");
    proto_w_map(&w, s->n_policies);
    for (uint32_t i = 0; i < s->n_policies; i++) {
        const proto_policy_stats *p = &s->policies[i];
        proto_w_str(&w, p->name);
        proto_w_map(&w, (uint32_t)N_OF(policy_fields) + 3 + (p->n_segments > 0));
        w_fields(&w, policy_fields, N_OF(policy_fields), p);
        w_join(&w, &p->join);
        w_slots(&w, p->slots);
        w_portfolio(&w, &p->portfolio);
        if (p->n_segments > 0) {
            w_segments(&w, p);
        }
    }
    proto_w_str(&w, "rejected");
    for (int c = PROTO_E_NONE + 1; c < PROTO_E_COUNT; c++) {
        n_rej += s->rejected[c] > 0;
    }
    proto_w_map(&w, n_rej);
    for (int c = PROTO_E_NONE + 1; c < PROTO_E_COUNT; c++) {
        if (s->rejected[c] > 0) {
            proto_w_str(&w, proto_errcode_name((proto_errcode)c));
            proto_w_uint(&w, s->rejected[c]);
        }
    }
    proto_w_str(&w, "storage");
    proto_w_map(&w, (uint32_t)N_OF(storage_fields) + 1);
    proto_w_str(&w, "redis");
    proto_w_str(&w, proto_redis_state_name(s->storage.redis));
    w_fields(&w, storage_fields, N_OF(storage_fields), &s->storage);
    if (s->auth) {
        w_auth(&w, s);
    }
    if (n_standby > 0) {
        proto_w_str(&w, "standby");
        proto_w_map(&w, n_standby);
        for (uint32_t i = 0; i < n_standby; i++) {
            proto_w_str(&w, s->standby[i].policy);
            proto_w_str(&w, s->standby[i].owner);
        }
    }
    e = proto_writer_finish(&w);
    if (e != BASE_OK) {
        out->len = start;
    }
    return e;
}

/* ---------------------------------------------------------------- decoding */

/* 1..16 lowercase or uppercase hex digits. */
static bool parse_hex(const msgpack_object *o, uint64_t *out)
{
    uint64_t v = 0;

    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 || o->via.str.size > HEX_DIGITS) {
        return false;
    }
    for (uint32_t i = 0; i < o->via.str.size; i++) {
        char c = o->via.str.ptr[i];
        unsigned d = 0;
        if (c >= '0' && c <= '9') {
            d = (unsigned)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            d = (unsigned)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            d = (unsigned)(c - 'A' + 10);
        } else {
            return false;
        }
        v = v << 4 | d;
    }
    *out = v;
    return true;
}

/* Read the fields of table @t that @vals (found by the caller, in table order) hold. */
static bool r_fields(const field *t, size_t n, const msgpack_object *const *vals, void *obj)
{
    char *base = obj;
    bool ok = true;

    for (size_t i = 0; i < n && ok; i++) {
        void *p = base + t[i].off;
        if (vals[i] == NULL) {
            continue;
        }
        switch (t[i].kind) {
        case K_U64:
            ok = proto_mp_get_u64(vals[i], UINT64_MAX, p, NULL);
            break;
        case K_U32:
            ok = proto_mp_get_u32(vals[i], UINT32_MAX, p, NULL);
            break;
        case K_F64:
            ok = proto_mp_get_f64(vals[i], p, NULL);
            break;
        case K_HEX:
            ok = parse_hex(vals[i], p);
            break;
        case K_STR:
            ok = proto_mp_get_str(vals[i], t[i].size - 1, true, p, NULL);
            break;
        case K_BOOL:
            ok = proto_mp_get_bool(vals[i], p, NULL);
            break;
        }
    }
    return ok;
}

/*
 * Find the keys of table @t, then @extra[0..n_extra) after them, in the map @m; @vals gets
 * the table's values first, then the extras'.
 */
static bool lookup(const msgpack_object *m, const field *t, size_t n, const char *const *extra,
                   size_t n_extra, const msgpack_object **vals)
{
    const char *names[MAX_FIELDS];

    for (size_t i = 0; i < n; i++) {
        names[i] = t[i].name;
    }
    for (size_t i = 0; i < n_extra; i++) {
        names[n + i] = extra[i];
    }
    return proto_mp_map_fields(m, names, n + n_extra, true, vals, NULL);
}

static bool r_join(const msgpack_object *m, proto_join_health *j)
{
    const char *extra[PROTO_ST_JOIN_COUNT + 1];
    const msgpack_object *vals[MAX_FIELDS];
    const msgpack_object *lat[PROTO_LATENCY_BUCKETS];
    const size_t n = N_OF(join_fields);

    for (int s = 0; s < PROTO_ST_JOIN_COUNT; s++) {
        extra[s] = proto_status_name((proto_status)s);
    }
    extra[PROTO_ST_JOIN_COUNT] = "latency";
    if (!lookup(m, join_fields, n, extra, PROTO_ST_JOIN_COUNT + 1, vals) ||
        !r_fields(join_fields, n, vals, j)) {
        return false;
    }
    for (int s = 0; s < PROTO_ST_JOIN_COUNT; s++) {
        if (vals[n + s] != NULL &&
            !proto_mp_get_u64(vals[n + s], UINT64_MAX, &j->status[s], NULL)) {
            return false;
        }
    }
    const msgpack_object *l = vals[n + PROTO_ST_JOIN_COUNT];
    if (l == NULL) {
        return true;
    }
    if (!proto_mp_map_fields(l, latency_names, PROTO_LATENCY_BUCKETS, true, lat, NULL)) {
        return false;
    }
    for (int b = 0; b < PROTO_LATENCY_BUCKETS; b++) {
        if (lat[b] != NULL && !proto_mp_get_u64(lat[b], UINT64_MAX, &j->latency[b], NULL)) {
            return false;
        }
    }
    return true;
}

/* "slots": slot names this version does not know are skipped. */
static bool r_slots(const msgpack_object *m, proto_slot_stats *slots)
{
    const char *names[PROTO_SLOTS];
    const msgpack_object *per[PROTO_SLOTS];
    const msgpack_object *vals[MAX_FIELDS];

    for (uint32_t k = 0; k < PROTO_SLOTS; k++) {
        names[k] = base_slot_name(k);
    }
    if (!proto_mp_map_fields(m, names, PROTO_SLOTS, true, per, NULL)) {
        return false;
    }
    for (uint32_t k = 0; k < PROTO_SLOTS; k++) {
        if (per[k] != NULL && (!lookup(per[k], slot_fields, N_OF(slot_fields), NULL, 0, vals) ||
                               !r_fields(slot_fields, N_OF(slot_fields), vals, &slots[k]))) {
            return false;
        }
    }
    return true;
}

/* "portfolio": at most PROTO_PORTFOLIO_MAX members. */
static bool r_portfolio(const msgpack_object *m, proto_portfolio_stats *pf)
{
    static const char *const extra[] = {"members"};
    const msgpack_object *vals[MAX_FIELDS];
    const size_t n = N_OF(portfolio_fields);

    if (!lookup(m, portfolio_fields, n, extra, 1, vals) ||
        !r_fields(portfolio_fields, n, vals, pf)) {
        return false;
    }
    const msgpack_object *a = vals[n];
    if (a == NULL) {
        return true;
    }
    if (a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size > PROTO_PORTFOLIO_MAX) {
        return false;
    }
    pf->n_members = a->via.array.size;
    for (uint32_t i = 0; i < pf->n_members; i++) {
        if (!lookup(&a->via.array.ptr[i], member_fields, N_OF(member_fields), NULL, 0, vals) ||
            !r_fields(member_fields, N_OF(member_fields), vals, &pf->member[i])) {
            return false;
        }
    }
    return true;
}

static bool r_segments(const msgpack_object *m, proto_policy_stats *p)
{
    static const char *const names[] = {"decisions", "mean_explore"};
    const msgpack_object *f[2];
    if (!proto_mp_map_fields(m, NULL, 0, true, NULL, NULL) ||
        m->via.map.size > PROTO_STATS_MAX_SEGMENTS) {
        return false;
    }
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        proto_segment_stats *g = &p->segments[i];
        if (!proto_mp_get_str(&kv->key, BASE_NAME_MAX, true, g->name, NULL) ||
            !proto_mp_map_fields(&kv->val, names, 2, true, f, NULL) ||
            (f[0] != NULL && !proto_mp_get_u64(f[0], UINT64_MAX, &g->decisions, NULL)) ||
            (f[1] != NULL && !proto_mp_get_f64(f[1], &g->mean_explore, NULL))) {
            return false;
        }
        p->n_segments = i + 1;
    }
    return true;
}

static bool r_policy(const msgpack_object *key, const msgpack_object *m, proto_policy_stats *p)
{
    static const char *const extra[] = {"join", "slots", "portfolio", "exploration"};
    const msgpack_object *vals[MAX_FIELDS];
    const size_t n = N_OF(policy_fields);

    return proto_mp_get_str(key, BASE_NAME_MAX, true, p->name, NULL) &&
           lookup(m, policy_fields, n, extra, 4, vals) && r_fields(policy_fields, n, vals, p) &&
           (vals[n] == NULL || r_join(vals[n], &p->join)) &&
           (vals[n + 1] == NULL || r_slots(vals[n + 1], p->slots)) &&
           (vals[n + 2] == NULL || r_portfolio(vals[n + 2], &p->portfolio)) &&
           (vals[n + 3] == NULL || r_segments(vals[n + 3], p));
}

/* "rejected": counts by code name; names this version does not know are skipped. */
static bool r_rejected(const msgpack_object *m, uint64_t *rejected)
{
    char name[CODE_MAX + 1];

    if (!proto_mp_map_fields(m, NULL, 0, true, NULL, NULL)) {
        return false; /* not a map, a key that is not a str, or a repeated key */
    }
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        proto_errcode c = PROTO_E_NONE;
        bool found = false;
        if (proto_mp_get_str(&kv->key, CODE_MAX, false, name, NULL)) {
            proto_errcode_from_name(name, &c, &found);
        }
        if (found && c != PROTO_E_NONE &&
            !proto_mp_get_u64(&kv->val, UINT64_MAX, &rejected[c], NULL)) {
            return false;
        }
    }
    return true;
}

static bool r_storage(const msgpack_object *m, proto_storage_stats *st)
{
    static const char *const extra[] = {"redis"};
    static const char *const states[] = {"unknown", "up", "down"};
    const msgpack_object *vals[MAX_FIELDS];
    const size_t n = N_OF(storage_fields);
    char redis[16];

    if (!lookup(m, storage_fields, n, extra, 1, vals) || !r_fields(storage_fields, n, vals, st)) {
        return false;
    }
    st->redis = PROTO_REDIS_UNKNOWN;
    if (vals[n] == NULL) {
        return true;
    }
    if (!proto_mp_get_str(vals[n], sizeof(redis) - 1, true, redis, NULL)) {
        return vals[n]->type == MSGPACK_OBJECT_STR; /* a longer name is an unknown state */
    }
    for (unsigned i = 0; i < N_OF(states); i++) {
        if (strcmp(redis, states[i]) == 0) {
            st->redis = (proto_redis_state)i;
        }
    }
    return true;
}

static bool r_auth(const msgpack_object *m, proto_stats *s)
{
    static const char *const names[] = {"unknown", "clients"};
    static const char *const counts[] = {"accepted", "unauthorized", "forbidden", "rate_limited",
                                         "alarms"};
    const msgpack_object *f[2], *c[5];

    if (!proto_mp_map_fields(m, names, 2, true, f, NULL) ||
        (f[0] != NULL && !proto_mp_get_u64(f[0], UINT64_MAX, &s->auth_unknown, NULL))) {
        return false;
    }
    s->auth = true;
    if (f[1] == NULL) {
        return true;
    }
    if (!proto_mp_map_fields(f[1], NULL, 0, true, NULL, NULL) ||
        f[1]->via.map.size > PROTO_STATS_MAX_CLIENTS) {
        return false;
    }
    for (uint32_t i = 0; i < f[1]->via.map.size; i++) {
        const msgpack_object_kv *kv = &f[1]->via.map.ptr[i];
        proto_client_stats *cs = &s->clients[i];
        uint64_t *dst[5] = {&cs->accepted, &cs->unauthorized, &cs->forbidden, &cs->rate_limited,
                            &cs->alarms};
        if (!proto_mp_get_str(&kv->key, BASE_NAME_MAX, true, cs->name, NULL) ||
            !proto_mp_map_fields(&kv->val, counts, 5, true, c, NULL)) {
            return false;
        }
        for (int k = 0; k < 5; k++) {
            if (c[k] != NULL && !proto_mp_get_u64(c[k], UINT64_MAX, dst[k], NULL)) {
                return false;
            }
        }
        s->n_clients = i + 1;
    }
    return true;
}

/* "standby": {POLICY: OWNER} */
static bool r_standby(const msgpack_object *m, proto_stats *s)
{
    if (m->type != MSGPACK_OBJECT_MAP || m->via.map.size > PROTO_STATS_MAX_STANDBY ||
        !proto_mp_map_fields(m, NULL, 0, true, NULL, NULL)) {
        return false;
    }
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        if (!proto_mp_get_str(&kv->key, BASE_NAME_MAX, true, s->standby[i].policy, NULL) ||
            !proto_mp_get_str(&kv->val, PROTO_STATS_OWNER_MAX, true, s->standby[i].owner, NULL)) {
            return false;
        }
        s->n_standby = i + 1;
    }
    return true;
}

static base_err decode_stats(const msgpack_object *top, proto_stats *s)
{
    static const char *const names[] = {"ok", "policies", "rejected", "storage", "auth", "standby"};
    const msgpack_object *f[6];
    bool ok = false;

    if (!proto_mp_map_fields(top, names, 6, true, f, NULL) || f[0] == NULL ||
        !proto_mp_get_bool(f[0], &ok, NULL) || !ok) {
        return BASE_EPROTO;
    }
    if (f[1] != NULL) {
        if (f[1]->type != MSGPACK_OBJECT_MAP || f[1]->via.map.size > PROTO_STATS_MAX_POLICIES) {
            return BASE_EPROTO;
        }
        if (f[1]->via.map.size > 0) {
            s->policies = base_alloc_zero(f[1]->via.map.size, sizeof(*s->policies));
            if (s->policies == NULL) {
                return BASE_ENOMEM;
            }
        }
        s->n_policies = f[1]->via.map.size;
        if (!proto_mp_map_fields(f[1], NULL, 0, true, NULL, NULL)) {
            return BASE_EPROTO;
        }
        for (uint32_t i = 0; i < s->n_policies; i++) {
            const msgpack_object_kv *kv = &f[1]->via.map.ptr[i];
            if (!r_policy(&kv->key, &kv->val, &s->policies[i])) {
                return BASE_EPROTO;
            }
        }
    }
    if ((f[2] != NULL && !r_rejected(f[2], s->rejected)) ||
        (f[3] != NULL && !r_storage(f[3], &s->storage)) || (f[4] != NULL && !r_auth(f[4], s)) ||
        (f[5] != NULL && !r_standby(f[5], s))) {
        return BASE_EPROTO;
    }
    return BASE_OK;
}

base_err proto_stats_decode(const uint8_t *buf, size_t len, proto_stats *out)
{
    msgpack_unpacked u;
    proto_stats s;
    base_err e;

    memset(&s, 0, sizeof(s));
    msgpack_unpacked_init(&u);
    e = proto_mp_unpack(buf, len, PROTO_MAX_DEPTH, PROTO_MAX_OBJECTS, &u);
    if (e == BASE_OK) {
        e = decode_stats(&u.data, &s);
    }
    if (e != BASE_OK) {
        e = e == BASE_ENOMEM ? BASE_ENOMEM : BASE_EPROTO;
        goto fail;
    }
    *out = s;
    memset(&s, 0, sizeof(s));
fail:
    msgpack_unpacked_destroy(&u);
    proto_stats_fini(&s);
    return e;
}

void proto_stats_fini(proto_stats *s)
{
    if (s != NULL) {
        base_free(s->policies);
        s->policies = NULL;
        s->n_policies = 0;
    }
}
