#include "storage/codec.h"

#include <math.h>
#include <msgpack.h>
#include <stdbool.h>
#include <string.h>

#include "base/alloc.h"
#include "base/mpcheck.h"

/*
 * Layouts (keys in encoding order; docs/storage.md has literal examples):
 *
 *   decision  v p e c ts mv tn src d n ch emb act lg pmf
 *   outcome   v p e c o sig val ts
 *   joined    v dec r no df jts           (dec: a nested decision map)
 *   model     v p ln lj ver nu ts d na np ns w st
 *
 * Every key is required; keys not listed are skipped, so a newer writer may
 * add fields without bumping "v". A field listed twice is rejected.
 */

#define CODEC_VERSION 1u
#define CODEC_MAX_DEPTH 8u
#define CODEC_MAX_KEYS 24u
#define CHUNK_FLOATS 64u /* floats converted per bin body write */

/*
 * Object cap for base_mpcheck(). A record is a handful of keys plus large
 * bins, so honest input has far fewer objects than bytes. Bounding objects
 * to len / 8 (+ slack for small records) bounds msgpack-c's zone to a small
 * multiple of len: each msgpack_object is 24 bytes, each map pair 48.
 */
static size_t max_objects(size_t len)
{
    return 64u + len / 8u;
}

/* ---- encoding ---------------------------------------------------------- */

/* The packer's write callback appends to a base_buf and remembers why it stopped. */
typedef struct sink {
    base_buf *out;
    base_err err;
} sink;

static int sink_write(void *data, const char *p, size_t n)
{
    sink *s = data;
    if (s->err == BASE_OK) {
        s->err = base_buf_append(s->out, p, n);
    }
    return s->err == BASE_OK ? 0 : -1;
}

/* Writers ignore the packer's return value: the sink latches the first error. */
static void put_key(msgpack_packer *pk, const char *key)
{
    size_t n = strlen(key);
    (void)msgpack_pack_str(pk, n);
    (void)msgpack_pack_str_body(pk, key, n);
}

static void put_str(msgpack_packer *pk, const char *key, const char *val)
{
    put_key(pk, key);
    put_key(pk, val);
}

static void put_u64(msgpack_packer *pk, const char *key, uint64_t val)
{
    put_key(pk, key);
    (void)msgpack_pack_uint64(pk, val);
}

static void put_i64(msgpack_packer *pk, const char *key, int64_t val)
{
    put_key(pk, key);
    (void)msgpack_pack_int64(pk, val);
}

static void put_f64(msgpack_packer *pk, const char *key, double val)
{
    put_key(pk, key);
    (void)msgpack_pack_double(pk, val);
}

static void le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/*
 * Pack @n 4-byte words as one bin, converting through a small stack chunk so
 * no temporary vector is allocated. @words is float* or uint32_t*; both are
 * 4 bytes and copied bit for bit.
 */
static void put_bin32(msgpack_packer *pk, const char *key, const void *words, uint32_t n)
{
    uint8_t chunk[CHUNK_FLOATS * 4u];
    const uint8_t *src = words;
    put_key(pk, key);
    (void)msgpack_pack_bin(pk, (size_t)n * 4u);
    for (uint32_t i = 0; i < n; i += CHUNK_FLOATS) {
        uint32_t k = n - i < CHUNK_FLOATS ? n - i : CHUNK_FLOATS;
        for (uint32_t j = 0; j < k; j++) {
            uint32_t w;
            memcpy(&w, src + ((size_t)i + j) * 4u, 4u);
            le32(chunk + (size_t)j * 4u, w);
        }
        (void)msgpack_pack_bin_body(pk, chunk, (size_t)k * 4u);
    }
}

static void put_bin64(msgpack_packer *pk, const char *key, const double *v, uint32_t n)
{
    uint8_t chunk[CHUNK_FLOATS * 8u];
    put_key(pk, key);
    (void)msgpack_pack_bin(pk, (size_t)n * 8u);
    for (uint32_t i = 0; i < n; i += CHUNK_FLOATS) {
        uint32_t k = n - i < CHUNK_FLOATS ? n - i : CHUNK_FLOATS;
        for (uint32_t j = 0; j < k; j++) {
            uint64_t w;
            memcpy(&w, &v[i + j], 8u);
            le32(chunk + (size_t)j * 8u, (uint32_t)w);
            le32(chunk + (size_t)j * 8u + 4u, (uint32_t)(w >> 32));
        }
        (void)msgpack_pack_bin_body(pk, chunk, (size_t)k * 8u);
    }
}

/* True if @s is NUL-terminated within its @size-byte field. */
static bool str_ok(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

static bool floats_ok(const float *v, uint32_t n)
{
    bool ok = true;
    for (uint32_t i = 0; i < n && ok; i++) {
        ok = isfinite(v[i]);
    }
    return ok;
}

static bool decision_ok(const base_decision *d)
{
    bool ok = str_ok(d->policy, sizeof(d->policy)) && str_ok(d->event_id, sizeof(d->event_id)) &&
              str_ok(d->conversation_id, sizeof(d->conversation_id)) &&
              d->dim <= BASE_DIM_MAX && d->n_cand >= 1 && d->n_cand <= BASE_CAND_MAX &&
              d->chosen < d->n_cand && d->source <= BASE_SRC_LOG && d->overflow <= 1 &&
              floats_ok(d->embedding, d->dim) && floats_ok(d->base_logit, d->n_cand) &&
              floats_ok(d->pmf, d->n_cand);
    for (uint32_t i = 0; ok && i < d->n_cand; i++) {
        ok = d->action[i] < BASE_ACTIONS_MAX;
    }
    return ok;
}

static void pack_decision(msgpack_packer *pk, const base_decision *d)
{
    (void)msgpack_pack_map(pk, d->overflow != 0 ? 18 : 17);
    put_u64(pk, "v", CODEC_VERSION);
    put_str(pk, "p", d->policy);
    put_str(pk, "e", d->event_id);
    put_str(pk, "c", d->conversation_id);
    put_i64(pk, "ts", d->ts_ms);
    put_u64(pk, "mv", d->model_version);
    put_u64(pk, "tn", d->turn);
    put_u64(pk, "src", d->source);
    put_u64(pk, "d", d->dim);
    put_u64(pk, "n", d->n_cand);
    put_u64(pk, "ch", d->chosen);
    put_bin32(pk, "emb", d->embedding, d->dim);
    put_bin32(pk, "act", d->action, d->n_cand);
    put_bin32(pk, "lg", d->base_logit, d->n_cand);
    put_bin32(pk, "pmf", d->pmf, d->n_cand);
    put_u64(pk, "dfr", d->deferred);
    put_u64(pk, "lsn", d->lsn);
    if (d->overflow != 0) {
        put_u64(pk, "ovf", d->overflow); /* optional: absent in most records */
    }
}

/* Common tail of every encoder: report the sink's error and undo a partial append. */
static base_err finish(const sink *s, base_buf *out, size_t start)
{
    if (s->err != BASE_OK) {
        out->len = start;
    }
    return s->err;
}

base_err sto_codec_encode_decision(const base_decision *d, base_buf *out)
{
    sink s = {out, BASE_OK};
    msgpack_packer pk;
    size_t start = out->len;

    if (!decision_ok(d)) {
        s.err = BASE_EINVAL;
        goto fail;
    }
    msgpack_packer_init(&pk, &s, sink_write);
    pack_decision(&pk, d);
fail:
    return finish(&s, out, start);
}

base_err sto_codec_encode_outcome(const base_outcome *o, base_buf *out)
{
    sink s = {out, BASE_OK};
    msgpack_packer pk;
    size_t start = out->len;

    if (!str_ok(o->policy, sizeof(o->policy)) || !str_ok(o->event_id, sizeof(o->event_id)) ||
        !str_ok(o->conversation_id, sizeof(o->conversation_id)) ||
        !str_ok(o->outcome_id, sizeof(o->outcome_id)) || !str_ok(o->signal, sizeof(o->signal)) ||
        !str_ok(o->supersedes, sizeof(o->supersedes)) || !str_ok(o->user_id, sizeof(o->user_id)) ||
        o->type > BASE_OUT_ACTIVATE || !isfinite(o->value)) {
        s.err = BASE_EINVAL;
        goto fail;
    }
    msgpack_packer_init(&pk, &s, sink_write);
    (void)msgpack_pack_map(&pk, 13);
    put_u64(&pk, "v", CODEC_VERSION);
    put_str(&pk, "p", o->policy);
    put_str(&pk, "e", o->event_id);
    put_str(&pk, "c", o->conversation_id);
    put_str(&pk, "o", o->outcome_id);
    put_str(&pk, "sig", o->signal);
    put_f64(&pk, "val", o->value);
    put_i64(&pk, "ts", o->ts_ms);
    put_str(&pk, "su", o->supersedes);
    put_str(&pk, "u", o->user_id);
    put_u64(&pk, "ty", o->type);
    put_i64(&pk, "at", o->arrived_ms);
    put_u64(&pk, "lsn", o->lsn);
fail:
    return finish(&s, out, start);
}

base_err sto_codec_encode_joined(const base_joined *j, base_buf *out)
{
    sink s = {out, BASE_OK};
    msgpack_packer pk;
    size_t start = out->len;

    if (j->decision == NULL || !decision_ok(j->decision) || !isfinite(j->reward) ||
        !isfinite(j->share) || j->credit > BASE_CREDIT_DISCOUNTED ||
        !str_ok(j->spec_version, sizeof(j->spec_version))) {
        s.err = BASE_EINVAL;
        goto fail;
    }
    msgpack_packer_init(&pk, &s, sink_write);
    (void)msgpack_pack_map(&pk, 10);
    put_u64(&pk, "v", CODEC_VERSION);
    put_key(&pk, "dec");
    pack_decision(&pk, j->decision);
    put_f64(&pk, "r", j->reward);
    put_u64(&pk, "no", j->n_outcomes);
    put_key(&pk, "df");
    if (j->defaulted) {
        (void)msgpack_pack_true(&pk);
    } else {
        (void)msgpack_pack_false(&pk);
    }
    put_i64(&pk, "jts", j->joined_ts_ms);
    put_key(&pk, "uk");
    if (j->unknown) {
        (void)msgpack_pack_true(&pk);
    } else {
        (void)msgpack_pack_false(&pk);
    }
    put_u64(&pk, "cr", j->credit);
    put_f64(&pk, "sh", j->share);
    put_str(&pk, "sv", j->spec_version);
fail:
    return finish(&s, out, start);
}

base_err sto_codec_encode_model(const base_model *m, base_buf *out)
{
    sink s = {out, BASE_OK};
    msgpack_packer pk;
    size_t start = out->len;
    bool ok = str_ok(m->policy, sizeof(m->policy)) && str_ok(m->learner, sizeof(m->learner)) &&
              str_ok(m->last_joined_id, sizeof(m->last_joined_id)) &&
              str_ok(m->scan_decisions, sizeof(m->scan_decisions)) &&
              str_ok(m->scan_outcomes, sizeof(m->scan_outcomes)) &&
              str_ok(m->scan_joined, sizeof(m->scan_joined)) &&
              str_ok(m->spec_version, sizeof(m->spec_version)) &&
              str_ok(m->base_version, sizeof(m->base_version)) &&
              str_ok(m->config_hash, sizeof(m->config_hash)) &&
              floats_ok(m->params, m->n_params);

    for (uint32_t i = 0; ok && i < m->n_state; i++) {
        ok = isfinite(m->state[i]);
    }
    if (!ok) {
        s.err = BASE_EINVAL;
        goto fail;
    }
    /* A bin32 length is 32 bits wide. */
    if (m->n_params > UINT32_MAX / 4u || m->n_state > UINT32_MAX / 8u) {
        s.err = BASE_ELIMIT;
        goto fail;
    }
    msgpack_packer_init(&pk, &s, sink_write);
    (void)msgpack_pack_map(&pk, 21);
    put_u64(&pk, "v", CODEC_VERSION);
    put_str(&pk, "p", m->policy);
    put_str(&pk, "ln", m->learner);
    put_str(&pk, "lj", m->last_joined_id);
    put_u64(&pk, "ver", m->version);
    put_u64(&pk, "nu", m->n_updates);
    put_i64(&pk, "ts", m->ts_ms);
    put_u64(&pk, "d", m->dim);
    put_u64(&pk, "na", m->n_actions);
    put_u64(&pk, "np", m->n_params);
    put_u64(&pk, "ns", m->n_state);
    put_bin32(&pk, "w", m->params, m->n_params);
    put_bin64(&pk, "st", m->state, m->n_state);
    put_str(&pk, "sd", m->scan_decisions);
    put_str(&pk, "so", m->scan_outcomes);
    put_str(&pk, "sj", m->scan_joined);
    put_u64(&pk, "lsn", m->next_lsn);
    put_u64(&pk, "par", m->parent);
    put_str(&pk, "rsv", m->spec_version);
    put_str(&pk, "bmv", m->base_version);
    put_str(&pk, "cfg", m->config_hash);
fail:
    return finish(&s, out, start);
}

/* ---- decoding ---------------------------------------------------------- */

/*
 * Point @slots[i] at the value of key @names[i] of @map. The first
 * @n_required names must be present, the others may be absent (NULL slot);
 * none may repeat; other string keys are skipped; slot 0 must be "v" and
 * hold CODEC_VERSION.
 */
static base_err collect_opt(const msgpack_object *map, const char *const *names, size_t n_names,
                            size_t n_required, const msgpack_object **slots)
{
    base_err e = BASE_EPROTO;

    for (size_t i = 0; i < n_names; i++) {
        slots[i] = NULL;
    }
    if (map->type != MSGPACK_OBJECT_MAP) {
        goto fail;
    }
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR) {
            goto fail;
        }
        for (size_t j = 0; j < n_names; j++) {
            size_t nl = strlen(names[j]);
            if (k->via.str.size == nl && memcmp(k->via.str.ptr, names[j], nl) == 0) {
                if (slots[j] != NULL) {
                    goto fail;
                }
                slots[j] = &map->via.map.ptr[i].val;
                break;
            }
        }
    }
    for (size_t i = 0; i < n_required; i++) {
        if (slots[i] == NULL) {
            goto fail;
        }
    }
    if (slots[0]->type != MSGPACK_OBJECT_POSITIVE_INTEGER || slots[0]->via.u64 != CODEC_VERSION) {
        goto fail;
    }
    e = BASE_OK;
fail:
    return e;
}

static base_err collect(const msgpack_object *map, const char *const *names, size_t n_names,
                        const msgpack_object **slots)
{
    return collect_opt(map, names, n_names, n_names, slots);
}

/* Copy a str of at most @size - 1 bytes with no NUL inside into @dst. */
static bool get_str(const msgpack_object *o, char *dst, size_t size)
{
    bool ok = o->type == MSGPACK_OBJECT_STR && o->via.str.size < size &&
              (o->via.str.size == 0 || memchr(o->via.str.ptr, '\0', o->via.str.size) == NULL);
    if (ok) {
        if (o->via.str.size > 0) {
            memcpy(dst, o->via.str.ptr, o->via.str.size);
        }
        dst[o->via.str.size] = '\0';
    }
    return ok;
}

static bool get_u64(const msgpack_object *o, uint64_t max, uint64_t *out)
{
    bool ok = o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= max;
    if (ok) {
        *out = o->via.u64;
    }
    return ok;
}

static bool get_u32(const msgpack_object *o, uint32_t max, uint32_t *out)
{
    uint64_t v = 0;
    bool ok = get_u64(o, max, &v);
    if (ok) {
        *out = (uint32_t)v;
    }
    return ok;
}

static bool get_i64(const msgpack_object *o, int64_t *out)
{
    bool ok = true;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= (uint64_t)INT64_MAX) {
        *out = (int64_t)o->via.u64;
    } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
    } else {
        ok = false;
    }
    return ok;
}

/* A finite number; integers are accepted as well as float32/float64. */
static bool get_f64(const msgpack_object *o, double *out)
{
    double v = NAN;
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        v = o->via.f64;
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        v = (double)o->via.u64;
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        v = (double)o->via.i64;
        break;
    default:
        break; /* stays NaN: rejected below */
    }
    bool ok = isfinite(v);
    if (ok) {
        *out = v;
    }
    return ok;
}

/* A bin of exactly @n little-endian float32, all finite. */
static bool get_f32vec(const msgpack_object *o, uint32_t n, float *dst)
{
    bool ok = o->type == MSGPACK_OBJECT_BIN && o->via.bin.size == (uint64_t)n * 4u;
    for (uint32_t i = 0; ok && i < n; i++) {
        uint32_t w = rd32((const uint8_t *)o->via.bin.ptr + (size_t)i * 4u);
        memcpy(&dst[i], &w, 4u);
        ok = isfinite(dst[i]);
    }
    return ok;
}

/* A bin of exactly @n little-endian uint32, each below @limit. */
static bool get_u32vec(const msgpack_object *o, uint32_t n, uint32_t limit, uint32_t *dst)
{
    bool ok = o->type == MSGPACK_OBJECT_BIN && o->via.bin.size == (uint64_t)n * 4u;
    for (uint32_t i = 0; ok && i < n; i++) {
        dst[i] = rd32((const uint8_t *)o->via.bin.ptr + (size_t)i * 4u);
        ok = dst[i] < limit;
    }
    return ok;
}

/* A bin of exactly @n little-endian float64, all finite. */
static bool get_f64vec(const msgpack_object *o, uint32_t n, double *dst)
{
    bool ok = o->type == MSGPACK_OBJECT_BIN && o->via.bin.size == (uint64_t)n * 8u;
    for (uint32_t i = 0; ok && i < n; i++) {
        uint64_t w = rd64((const uint8_t *)o->via.bin.ptr + (size_t)i * 8u);
        memcpy(&dst[i], &w, 8u);
        ok = isfinite(dst[i]);
    }
    return ok;
}

/* The length in elements of a bin holding @width-byte elements, or false. */
static bool bin_count(const msgpack_object *o, size_t width, uint32_t *out)
{
    bool ok = o->type == MSGPACK_OBJECT_BIN && o->via.bin.size % width == 0;
    if (ok) {
        *out = (uint32_t)(o->via.bin.size / width);
    }
    return ok;
}

/*
 * Check the raw bytes, then unpack exactly one object. @u must be destroyed
 * by the caller whatever this returns.
 */
static base_err unpack(const uint8_t *buf, size_t len, msgpack_unpacked *u)
{
    size_t off = 0;
    base_err e;

    msgpack_unpacked_init(u);
    e = base_mpcheck(buf, len, CODEC_MAX_DEPTH, max_objects(len));
    if (e != BASE_OK) {
        e = BASE_EPROTO; /* past a cap is as malformed as a bad count, for a record */
        goto fail;
    }
    msgpack_unpack_return r = msgpack_unpack_next(u, (const char *)buf, len, &off);
    if (r == MSGPACK_UNPACK_NOMEM_ERROR) {
        e = BASE_ENOMEM;
    } else if (r != MSGPACK_UNPACK_SUCCESS || off != len) {
        e = BASE_EPROTO;
    }
fail:
    return e;
}

static const char *const decision_keys[] = {"v",   "p", "e",  "c",   "ts",  "mv", "tn",
                                            "src", "d", "n",  "ch",  "emb", "act", "lg",
                                            "pmf", "dfr", "lsn", "ovf"};
enum { DK_V, DK_P, DK_E, DK_C, DK_TS, DK_MV, DK_TN, DK_SRC, DK_D, DK_N, DK_CH, DK_EMB, DK_ACT,
       DK_LG, DK_PMF, DK_DFR, DK_LSN, DK_OVF, DK_COUNT };
#define DK_REQUIRED DK_OVF /* keys from here on are optional */

static base_err decision_from(const msgpack_object *obj, base_decision **out)
{
    const msgpack_object *f[CODEC_MAX_KEYS];
    base_decision *d = NULL;
    uint32_t dim, n_cand, chosen;
    base_err e;

    _Static_assert(DK_COUNT <= CODEC_MAX_KEYS, "slot array too small");
    e = collect_opt(obj, decision_keys, DK_COUNT, DK_REQUIRED, f);
    if (e != BASE_OK) {
        goto fail;
    }
    e = BASE_EPROTO;
    if (!get_u32(f[DK_D], BASE_DIM_MAX, &dim) || !get_u32(f[DK_N], BASE_CAND_MAX, &n_cand) ||
        n_cand < 1 || !get_u32(f[DK_CH], n_cand - 1u, &chosen)) {
        goto fail;
    }
    d = base_decision_new(dim, n_cand);
    if (d == NULL) {
        e = BASE_ENOMEM;
        goto fail;
    }
    d->chosen = chosen;
    if (!get_str(f[DK_P], d->policy, sizeof(d->policy)) ||
        !get_str(f[DK_E], d->event_id, sizeof(d->event_id)) ||
        !get_str(f[DK_C], d->conversation_id, sizeof(d->conversation_id)) ||
        !get_i64(f[DK_TS], &d->ts_ms) || !get_u64(f[DK_MV], UINT64_MAX, &d->model_version) ||
        !get_u32(f[DK_TN], UINT32_MAX, &d->turn) ||
        !get_u32(f[DK_SRC], BASE_SRC_LOG, &d->source) ||
        !get_f32vec(f[DK_EMB], dim, d->embedding) ||
        !get_u32vec(f[DK_ACT], n_cand, BASE_ACTIONS_MAX, d->action) ||
        !get_f32vec(f[DK_LG], n_cand, d->base_logit) || !get_f32vec(f[DK_PMF], n_cand, d->pmf) ||
        !get_u32(f[DK_DFR], 1, &d->deferred) || !get_u64(f[DK_LSN], UINT64_MAX, &d->lsn) ||
        (f[DK_OVF] != NULL && !get_u32(f[DK_OVF], 1, &d->overflow))) {
        goto fail;
    }
    *out = d;
    d = NULL;
    e = BASE_OK;
fail:
    base_decision_free(d);
    return e;
}

base_err sto_codec_decode_decision(const uint8_t *buf, size_t len, base_decision **out)
{
    msgpack_unpacked u;
    base_err e = unpack(buf, len, &u);
    if (e == BASE_OK) {
        e = decision_from(&u.data, out);
    }
    msgpack_unpacked_destroy(&u);
    return e;
}

static const char *const outcome_keys[] = {"v", "p",  "e",  "c",  "o",  "sig", "val",
                                           "ts", "su", "u",  "ty", "at", "lsn"};
enum { OK_V, OK_P, OK_E, OK_C, OK_O, OK_SIG, OK_VAL, OK_TS, OK_SU, OK_U, OK_TY, OK_AT, OK_LSN,
       OK_COUNT };

base_err sto_codec_decode_outcome(const uint8_t *buf, size_t len, base_outcome **out)
{
    const msgpack_object *f[CODEC_MAX_KEYS];
    msgpack_unpacked u;
    base_outcome *o = NULL;
    base_err e = unpack(buf, len, &u);

    if (e != BASE_OK) {
        goto fail;
    }
    e = collect(&u.data, outcome_keys, OK_COUNT, f);
    if (e != BASE_OK) {
        goto fail;
    }
    o = base_alloc_zero(1, sizeof(*o));
    if (o == NULL) {
        e = BASE_ENOMEM;
        goto fail;
    }
    e = BASE_EPROTO;
    if (!get_str(f[OK_P], o->policy, sizeof(o->policy)) ||
        !get_str(f[OK_E], o->event_id, sizeof(o->event_id)) ||
        !get_str(f[OK_C], o->conversation_id, sizeof(o->conversation_id)) ||
        !get_str(f[OK_O], o->outcome_id, sizeof(o->outcome_id)) ||
        !get_str(f[OK_SIG], o->signal, sizeof(o->signal)) || !get_f64(f[OK_VAL], &o->value) ||
        !get_i64(f[OK_TS], &o->ts_ms) || !get_str(f[OK_SU], o->supersedes, sizeof(o->supersedes)) ||
        !get_str(f[OK_U], o->user_id, sizeof(o->user_id)) ||
        !get_u32(f[OK_TY], BASE_OUT_ACTIVATE, &o->type) || !get_i64(f[OK_AT], &o->arrived_ms) ||
        !get_u64(f[OK_LSN], UINT64_MAX, &o->lsn)) {
        goto fail;
    }
    *out = o;
    o = NULL;
    e = BASE_OK;
fail:
    base_free(o);
    msgpack_unpacked_destroy(&u);
    return e;
}

static const char *const joined_keys[] = {"v", "dec", "r", "no", "df", "jts", "uk", "cr", "sh",
                                          "sv"};
enum { JK_V, JK_DEC, JK_R, JK_NO, JK_DF, JK_JTS, JK_UK, JK_CR, JK_SH, JK_SV, JK_COUNT };

base_err sto_codec_decode_joined(const uint8_t *buf, size_t len, base_joined **out)
{
    const msgpack_object *f[CODEC_MAX_KEYS];
    msgpack_unpacked u;
    base_decision *d = NULL;
    base_joined *j = NULL;
    base_err e = unpack(buf, len, &u);

    if (e != BASE_OK) {
        goto fail;
    }
    e = collect(&u.data, joined_keys, JK_COUNT, f);
    if (e != BASE_OK) {
        goto fail;
    }
    e = decision_from(f[JK_DEC], &d);
    if (e != BASE_OK) {
        goto fail;
    }
    j = base_joined_new(d);
    if (j == NULL) {
        e = BASE_ENOMEM;
        goto fail;
    }
    d = NULL; /* owned by j now */
    e = BASE_EPROTO;
    if (!get_f64(f[JK_R], &j->reward) || !get_u32(f[JK_NO], UINT32_MAX, &j->n_outcomes) ||
        f[JK_DF]->type != MSGPACK_OBJECT_BOOLEAN || !get_i64(f[JK_JTS], &j->joined_ts_ms) ||
        f[JK_UK]->type != MSGPACK_OBJECT_BOOLEAN ||
        !get_u32(f[JK_CR], BASE_CREDIT_DISCOUNTED, &j->credit) || !get_f64(f[JK_SH], &j->share) ||
        !get_str(f[JK_SV], j->spec_version, sizeof(j->spec_version))) {
        goto fail;
    }
    j->defaulted = f[JK_DF]->via.boolean;
    j->unknown = f[JK_UK]->via.boolean;
    *out = j;
    j = NULL;
    e = BASE_OK;
fail:
    base_joined_free(j);
    base_decision_free(d);
    msgpack_unpacked_destroy(&u);
    return e;
}

static const char *const model_keys[] = {"v",  "p",  "ln", "lj",  "ver", "nu",  "ts",
                                         "d",  "na", "np", "ns",  "w",   "st",  "sd",
                                         "so", "sj", "lsn", "par", "rsv", "bmv", "cfg"};
enum { MK_V, MK_P, MK_LN, MK_LJ, MK_VER, MK_NU, MK_TS, MK_D, MK_NA, MK_NP, MK_NS, MK_W, MK_ST,
       MK_SD, MK_SO, MK_SJ, MK_LSN, MK_PAR, MK_RSV, MK_BMV, MK_CFG, MK_COUNT };

base_err sto_codec_decode_model(const uint8_t *buf, size_t len, base_model **out)
{
    const msgpack_object *f[CODEC_MAX_KEYS];
    msgpack_unpacked u;
    base_model *m = NULL;
    uint32_t n_params, n_state, np_bin, ns_bin;
    base_err e = unpack(buf, len, &u);

    if (e != BASE_OK) {
        goto fail;
    }
    e = collect(&u.data, model_keys, MK_COUNT, f);
    if (e != BASE_OK) {
        goto fail;
    }
    e = BASE_EPROTO;
    /* The bins bound the counts by len before anything is allocated. */
    if (!get_u32(f[MK_NP], UINT32_MAX, &n_params) || !get_u32(f[MK_NS], UINT32_MAX, &n_state) ||
        !bin_count(f[MK_W], 4u, &np_bin) || np_bin != n_params ||
        !bin_count(f[MK_ST], 8u, &ns_bin) || ns_bin != n_state) {
        goto fail;
    }
    m = base_model_new(n_params, n_state);
    if (m == NULL) {
        e = BASE_ENOMEM;
        goto fail;
    }
    if (!get_str(f[MK_P], m->policy, sizeof(m->policy)) ||
        !get_str(f[MK_LN], m->learner, sizeof(m->learner)) ||
        !get_str(f[MK_LJ], m->last_joined_id, sizeof(m->last_joined_id)) ||
        !get_u64(f[MK_VER], UINT64_MAX, &m->version) ||
        !get_u64(f[MK_NU], UINT64_MAX, &m->n_updates) || !get_i64(f[MK_TS], &m->ts_ms) ||
        !get_u32(f[MK_D], UINT32_MAX, &m->dim) || !get_u32(f[MK_NA], UINT32_MAX, &m->n_actions) ||
        !get_f32vec(f[MK_W], n_params, m->params) || !get_f64vec(f[MK_ST], n_state, m->state) ||
        !get_str(f[MK_SD], m->scan_decisions, sizeof(m->scan_decisions)) ||
        !get_str(f[MK_SO], m->scan_outcomes, sizeof(m->scan_outcomes)) ||
        !get_str(f[MK_SJ], m->scan_joined, sizeof(m->scan_joined)) ||
        !get_u64(f[MK_LSN], UINT64_MAX, &m->next_lsn) ||
        !get_u64(f[MK_PAR], UINT64_MAX, &m->parent) ||
        !get_str(f[MK_RSV], m->spec_version, sizeof(m->spec_version)) ||
        !get_str(f[MK_BMV], m->base_version, sizeof(m->base_version)) ||
        !get_str(f[MK_CFG], m->config_hash, sizeof(m->config_hash))) {
        goto fail;
    }
    *out = m;
    m = NULL;
    e = BASE_OK;
fail:
    base_model_free(m);
    msgpack_unpacked_destroy(&u);
    return e;
}
