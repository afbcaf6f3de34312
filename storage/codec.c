#include "storage/codec.h"

#include <math.h>
#include <msgpack.h>
#include <stdbool.h>
#include <string.h>

#include "base/alloc.h"
#include "base/quant.h"
#include "proto/mp.h"
#include "storage/codec_impl.h"

/*
 * Layouts (keys in encoding order; docs/storage.md has literal examples):
 *
 *   decision  v p e c ts mv tn src d n ch act lg pmf dfr lsn emb [ovf] [sl pv] [sc xs] [u]
 *             [ib] [acts] [ad af ids]
 *   outcome   v p e c o sig val ts su u ty at lsn
 *   joined    v dec r no df jts ...       (dec: a nested decision map)
 *   model     v p ln lj ver nu ts d na np ns w st sd so sj lsn par rsv bmv cfg
 *             [hx heps ht hlr hlam hpm hbw hkl hg hua hsd] [pfm pfs pfln pfnu pfw pfst]
 *
 * Keys in [brackets] are optional; every other key is required. Keys not
 * listed are skipped, so a newer writer may add fields without bumping "v".
 * A field listed twice is rejected.
 */

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

/*
 * Records are written with proto's msgpack writer (proto/mp.h), whose first
 * error is sticky: the helpers below never check, sto_codec_finish() does.
 */
void sto_codec_put_key(proto_writer *w, const char *key)
{
    proto_w_str(w, key);
}

void sto_codec_put_str(proto_writer *w, const char *key, const char *val)
{
    proto_w_str(w, key);
    proto_w_str(w, val);
}

void sto_codec_put_u64(proto_writer *w, const char *key, uint64_t val)
{
    proto_w_str(w, key);
    proto_w_uint(w, val);
}

void sto_codec_put_i64(proto_writer *w, const char *key, int64_t val)
{
    proto_w_str(w, key);
    proto_w_int(w, val);
}

void sto_codec_put_f64(proto_writer *w, const char *key, double val)
{
    proto_w_str(w, key);
    proto_w_double(w, val);
}

static void sto_codec_put_bool(proto_writer *w, const char *key, bool val)
{
    proto_w_str(w, key);
    proto_w_bool(w, val);
}

/* Vectors are bins of little-endian values, copied bit for bit. */
void sto_codec_put_f32s(proto_writer *w, const char *key, const float *v, uint32_t n)
{
    proto_w_str(w, key);
    proto_w_f32_bin(w, v, n);
}

static void sto_codec_put_u32s(proto_writer *w, const char *key, const uint32_t *v, uint32_t n)
{
    proto_w_str(w, key);
    proto_w_u32_bin(w, v, n);
}

void sto_codec_put_f64s(proto_writer *w, const char *key, const double *v, uint32_t n)
{
    proto_w_str(w, key);
    proto_w_f64_bin(w, v, n);
}

/* True if @s is NUL-terminated within its @size-byte field. */
bool sto_codec_str_ok(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

bool sto_codec_floats_ok(const float *v, uint32_t n)
{
    bool ok = true;
    for (uint32_t i = 0; i < n && ok; i++) {
        ok = isfinite(v[i]);
    }
    return ok;
}

bool sto_codec_settings_ok(const base_head_settings *h)
{
    return isfinite(h->epsilon) && isfinite(h->temperature) && isfinite(h->learning_rate) &&
           isfinite(h->lambda) && isfinite(h->prior_mean) && isfinite(h->base_weight) &&
           isfinite(h->kl) && isfinite(h->gamma) && isfinite(h->ucb_alpha) &&
           isfinite(h->bandwidth) && h->action_dim <= BASE_ACTION_DIM_MAX;
}

static bool decision_ok(const base_decision *d)
{
    bool ok = sto_codec_str_ok(d->policy, sizeof(d->policy)) &&
              sto_codec_str_ok(d->event_id, sizeof(d->event_id)) &&
              sto_codec_str_ok(d->conversation_id, sizeof(d->conversation_id)) &&
              sto_codec_str_ok(d->user_id, sizeof(d->user_id)) &&
              sto_codec_str_ok(d->inbox_id, sizeof(d->inbox_id)) &&
              sto_codec_str_ok(d->actions_hash, sizeof(d->actions_hash)) &&
              (d->action_dim == 0 || d->actions_hash[0] == '\0') && d->dim <= BASE_DIM_MAX &&
              d->n_cand >= 1 && d->n_cand <= BASE_CAND_MAX && d->chosen < d->n_cand &&
              d->source <= BASE_SRC_LOG && d->overflow <= 1 && d->slot <= BASE_SLOT_PRODUCTION &&
              sto_codec_floats_ok(d->embedding, d->dim) && d->emb_storage <= BASE_EMB_I8 &&
              base_emb_is_rounded((base_emb_storage)d->emb_storage, d->embedding, d->dim) &&
              sto_codec_floats_ok(d->base_logit, d->n_cand) &&
              sto_codec_floats_ok(d->pmf, d->n_cand) && d->has_breakdown <= 1 &&
              (d->has_breakdown == 0 || (sto_codec_floats_ok(d->head_score, d->n_cand) &&
                                         sto_codec_floats_ok(d->explore, d->n_cand)));
    for (uint32_t i = 0; ok && i < d->n_cand; i++) {
        ok = d->action[i] < BASE_ACTIONS_MAX;
    }
    if (ok && d->action_dim > 0) {
        ok = d->action_dim <= BASE_ACTION_DIM_MAX && d->cand_id != NULL &&
             d->features == d->embedding + d->dim &&
             sto_codec_floats_ok(d->features, d->n_cand * d->action_dim);
        for (uint32_t i = 0; ok && i < d->n_cand; i++) {
            ok = sto_codec_str_ok(d->cand_id[i], sizeof(d->cand_id[i])) && d->cand_id[i][0] != '\0';
        }
    }
    return ok;
}

/* The embedding in its storage form (decision_ok() checked it is exactly representable). */
static void put_embedding(proto_writer *w, const base_decision *d)
{
    if (d->emb_storage == BASE_EMB_F32) {
        sto_codec_put_f32s(w, "emb", d->embedding, d->dim);
        return;
    }
    uint8_t buf[2 + 2 * BASE_DIM_MAX];
    size_t len;
    if (d->emb_storage == BASE_EMB_F16) {
        for (uint32_t j = 0; j < d->dim; j++) {
            uint16_t h = base_f32_to_f16(d->embedding[j]);
            buf[2 * j] = (uint8_t)(h & 0xffu);
            buf[2 * j + 1] = (uint8_t)(h >> 8);
        }
        len = 2u * d->dim;
        proto_w_str(w, "e16");
    } else {
        int k = base_i8_exponent(d->embedding, d->dim);
        uint16_t uk = (uint16_t)(int16_t)k;
        buf[0] = (uint8_t)(uk & 0xffu);
        buf[1] = (uint8_t)(uk >> 8);
        base_i8_quantize(d->embedding, d->dim, k, (int8_t *)(buf + 2));
        len = 2u + d->dim;
        proto_w_str(w, "e8");
    }
    proto_w_bin(w, buf, len);
}

static void pack_decision(proto_writer *w, const base_decision *d)
{
    bool slotted = d->slot != BASE_SLOT_ONLINE || d->prod_version != 0;
    proto_w_map(w, 17u + (d->overflow != 0) + (slotted ? 2u : 0u) +
                       (d->has_breakdown != 0 ? 2u : 0u) + (d->user_id[0] != '\0') +
                       (d->action_dim > 0 ? 3u : 0u) + (d->inbox_id[0] != '\0') +
                       (d->actions_hash[0] != '\0'));
    sto_codec_put_u64(w, "v", CODEC_VERSION);
    sto_codec_put_str(w, "p", d->policy);
    sto_codec_put_str(w, "e", d->event_id);
    sto_codec_put_str(w, "c", d->conversation_id);
    sto_codec_put_i64(w, "ts", d->ts_ms);
    sto_codec_put_u64(w, "mv", d->model_version);
    sto_codec_put_u64(w, "tn", d->turn);
    sto_codec_put_u64(w, "src", d->source);
    sto_codec_put_u64(w, "d", d->dim);
    sto_codec_put_u64(w, "n", d->n_cand);
    sto_codec_put_u64(w, "ch", d->chosen);
    sto_codec_put_u32s(w, "act", d->action, d->n_cand);
    sto_codec_put_f32s(w, "lg", d->base_logit, d->n_cand);
    sto_codec_put_f32s(w, "pmf", d->pmf, d->n_cand);
    sto_codec_put_u64(w, "dfr", d->deferred);
    sto_codec_put_u64(w, "lsn", d->lsn);
    put_embedding(w, d);
    if (d->overflow != 0) {
        sto_codec_put_u64(w, "ovf", d->overflow); /* optional: absent in most records */
    }
    if (slotted) { /* optional: absent for the online slot with no production snapshot */
        sto_codec_put_u64(w, "sl", d->slot);
        sto_codec_put_u64(w, "pv", d->prod_version);
    }
    if (d->has_breakdown != 0) { /* optional: absent in log records and older ones */
        sto_codec_put_f32s(w, "sc", d->head_score, d->n_cand);
        sto_codec_put_f32s(w, "xs", d->explore, d->n_cand);
    }
    if (d->user_id[0] != '\0') { /* optional: absent when the decide named no user */
        sto_codec_put_str(w, "u", d->user_id);
    }
    if (d->inbox_id[0] != '\0') { /* optional: only a decision another instance forwarded */
        sto_codec_put_str(w, "ib", d->inbox_id);
    }
    if (d->actions_hash[0] != '\0') { /* optional: a closed set's action list */
        sto_codec_put_str(w, "acts", d->actions_hash);
    }
    if (d->action_dim > 0) { /* optional: an open action set's features and ids */
        sto_codec_put_u64(w, "ad", d->action_dim);
        sto_codec_put_f32s(w, "af", d->features, d->n_cand * d->action_dim);
        proto_w_str(w, "ids");
        proto_w_array(w, d->n_cand);
        for (uint32_t i = 0; i < d->n_cand; i++) {
            proto_w_str(w, d->cand_id[i]);
        }
    }
}

/* Common tail of every encoder: report the writer's error and undo a partial append. */
base_err sto_codec_finish(const proto_writer *w, size_t start)
{
    base_err e = proto_writer_finish(w);
    if (e != BASE_OK) {
        w->out->len = start;
    }
    return e;
}

base_err sto_codec_encode_decision(const base_decision *d, base_buf *out)
{
    proto_writer w;
    size_t start = out->len;

    proto_writer_init(&w, out);
    if (!decision_ok(d)) {
        w.err = BASE_EINVAL;
        goto fail;
    }
    pack_decision(&w, d);
fail:
    return sto_codec_finish(&w, start);
}

base_err sto_codec_encode_outcome(const base_outcome *o, base_buf *out)
{
    proto_writer w;
    size_t start = out->len;

    proto_writer_init(&w, out);
    if (!sto_codec_str_ok(o->policy, sizeof(o->policy)) ||
        !sto_codec_str_ok(o->event_id, sizeof(o->event_id)) ||
        !sto_codec_str_ok(o->conversation_id, sizeof(o->conversation_id)) ||
        !sto_codec_str_ok(o->outcome_id, sizeof(o->outcome_id)) ||
        !sto_codec_str_ok(o->signal, sizeof(o->signal)) ||
        !sto_codec_str_ok(o->supersedes, sizeof(o->supersedes)) ||
        !sto_codec_str_ok(o->user_id, sizeof(o->user_id)) ||
        !sto_codec_str_ok(o->inbox_id, sizeof(o->inbox_id)) || o->type > BASE_OUT_ACTIVATE ||
        !isfinite(o->value)) {
        w.err = BASE_EINVAL;
        goto fail;
    }
    proto_w_map(&w, 13u + (o->inbox_id[0] != '\0'));
    sto_codec_put_u64(&w, "v", CODEC_VERSION);
    sto_codec_put_str(&w, "p", o->policy);
    sto_codec_put_str(&w, "e", o->event_id);
    sto_codec_put_str(&w, "c", o->conversation_id);
    sto_codec_put_str(&w, "o", o->outcome_id);
    sto_codec_put_str(&w, "sig", o->signal);
    sto_codec_put_f64(&w, "val", o->value);
    sto_codec_put_i64(&w, "ts", o->ts_ms);
    sto_codec_put_str(&w, "su", o->supersedes);
    sto_codec_put_str(&w, "u", o->user_id);
    sto_codec_put_u64(&w, "ty", o->type);
    sto_codec_put_i64(&w, "at", o->arrived_ms);
    sto_codec_put_u64(&w, "lsn", o->lsn);
    if (o->inbox_id[0] != '\0') { /* optional: only an outcome another instance forwarded */
        sto_codec_put_str(&w, "ib", o->inbox_id);
    }
fail:
    return sto_codec_finish(&w, start);
}

base_err sto_codec_encode_joined(const base_joined *j, base_buf *out)
{
    proto_writer w;
    size_t start = out->len;

    proto_writer_init(&w, out);
    if (j->decision == NULL || !decision_ok(j->decision) || !isfinite(j->reward) ||
        !isfinite(j->share) || j->credit > BASE_CREDIT_DISCOUNTED ||
        !sto_codec_str_ok(j->spec_version, sizeof(j->spec_version))) {
        w.err = BASE_EINVAL;
        goto fail;
    }
    proto_w_map(&w, 10);
    sto_codec_put_u64(&w, "v", CODEC_VERSION);
    sto_codec_put_key(&w, "dec");
    pack_decision(&w, j->decision);
    sto_codec_put_f64(&w, "r", j->reward);
    sto_codec_put_u64(&w, "no", j->n_outcomes);
    sto_codec_put_bool(&w, "df", j->defaulted);
    sto_codec_put_i64(&w, "jts", j->joined_ts_ms);
    sto_codec_put_bool(&w, "uk", j->unknown);
    sto_codec_put_u64(&w, "cr", j->credit);
    sto_codec_put_f64(&w, "sh", j->share);
    sto_codec_put_str(&w, "sv", j->spec_version);
fail:
    return sto_codec_finish(&w, start);
}

/* ---- decoding ---------------------------------------------------------- */

/*
 * Point @slots[i] at the value of key @names[i] of @map. The first
 * @n_required names must be present, the others may be absent (NULL slot);
 * none may repeat; other string keys are skipped; slot 0 must be "v" and
 * hold CODEC_VERSION.
 */
base_err sto_codec_collect_opt(const msgpack_object *map, const char *const *names, size_t n_names,
                               size_t n_required, const msgpack_object **slots)
{
    base_err e = BASE_EPROTO;
    uint64_t v = 0;

    /* Only known keys must be unique: a newer writer's extra keys are skipped unread. */
    if (!proto_mp_map_fields(map, names, n_names, false, slots, NULL)) {
        goto fail;
    }
    for (size_t i = 0; i < n_required; i++) {
        if (slots[i] == NULL) {
            goto fail;
        }
    }
    if (!proto_mp_get_u64(slots[0], CODEC_VERSION, &v, NULL) || v != CODEC_VERSION) {
        goto fail;
    }
    e = BASE_OK;
fail:
    return e;
}

static base_err sto_codec_collect(const msgpack_object *map, const char *const *names,
                                  size_t n_names, const msgpack_object **slots)
{
    return sto_codec_collect_opt(map, names, n_names, n_names, slots);
}

/*
 * A str that fits @size bytes with its NUL and holds no NUL. Unlike the wire
 * protocol, records are not checked for UTF-8 here: the daemon checked their
 * text where it entered.
 */
bool sto_codec_get_str(const msgpack_object *o, char *dst, size_t size)
{
    return proto_mp_get_str(o, size - 1, false, dst, NULL);
}

/*
 * Check the raw bytes, then unpack exactly one object. @u must be destroyed
 * by the caller whatever this returns.
 */
base_err sto_codec_unpack(const uint8_t *buf, size_t len, msgpack_unpacked *u)
{
    msgpack_unpacked_init(u);
    base_err e = proto_mp_unpack(buf, len, CODEC_MAX_DEPTH, max_objects(len), u);
    if (e == BASE_ELIMIT) {
        e = BASE_EPROTO; /* past a cap is as malformed as a bad count, for a record */
    }
    return e;
}

static const char *const decision_keys[] = {"v",   "p",  "e",  "c",   "ts", "mv",  "tn",  "src",
                                            "d",   "n",  "ch", "act", "lg", "pmf", "dfr", "lsn",
                                            "ovf", "sl", "pv", "sc",  "xs", "emb", "e16", "e8",
                                            "u",   "ad", "af", "ids", "ib", "acts"};
enum {
    DK_V,
    DK_P,
    DK_E,
    DK_C,
    DK_TS,
    DK_MV,
    DK_TN,
    DK_SRC,
    DK_D,
    DK_N,
    DK_CH,
    DK_ACT,
    DK_LG,
    DK_PMF,
    DK_DFR,
    DK_LSN,
    DK_OVF,
    DK_SL,
    DK_PV,
    DK_SC,
    DK_XS,
    DK_EMB, /* exactly one of emb, e16, e8 */
    DK_E16,
    DK_E8,
    DK_U,  /* the customer's (pseudonymised) id: absent when none was given */
    DK_AD, /* an open action set: all three of ad, af, ids, or none */
    DK_AF,
    DK_IDS,
    DK_IB,   /* the inbox entry it was forwarded as (shared = on) */
    DK_ACTS, /* a closed set's action list (never with ad) */
    DK_COUNT
};
#define DK_REQUIRED DK_OVF /* keys from here on are optional */

/*
 * Whether @q with exponent @k, which decoded to @x, is what put_embedding() writes for @x:
 * the least k with max|x| <= 127 * 2^k and q rounded from x / 2^k. Any other pair (a k too
 * large for its q, values that underflow to zero, q = -128) would decode but never encode
 * back to the same bytes.
 */
static bool e8_canonical(const int8_t *q, uint32_t n, int k, const float *x)
{
    if (base_i8_exponent(x, n) != k) {
        return false;
    }
    for (uint32_t j = 0; j < n; j++) {
        int8_t again;
        base_i8_quantize(&x[j], 1, k, &again);
        if (again != q[j]) {
            return false;
        }
    }
    return true;
}

/*
 * The embedding from whichever of "emb" (float32 LE), "e16" (IEEE half LE)
 * or "e8" (int16 LE exponent k, then one int8 q per value: q * 2^k) the
 * record has: exactly one, of d->dim values. Sets d->emb_storage.
 */
static bool get_embedding(const msgpack_object *f32, const msgpack_object *f16,
                          const msgpack_object *i8, base_decision *d)
{
    if ((f32 != NULL) + (f16 != NULL) + (i8 != NULL) != 1) {
        return false;
    }
    if (f32 != NULL) {
        d->emb_storage = BASE_EMB_F32;
        return proto_mp_get_f32_bin(f32, d->dim, d->embedding, NULL);
    }
    const msgpack_object *o = f16 != NULL ? f16 : i8;
    if (o->type != MSGPACK_OBJECT_BIN) {
        return false;
    }
    const uint8_t *b = (const uint8_t *)o->via.bin.ptr;
    if (f16 != NULL) {
        if (o->via.bin.size != 2u * d->dim) {
            return false;
        }
        for (uint32_t j = 0; j < d->dim; j++) {
            d->embedding[j] = base_f16_to_f32((uint16_t)(b[2 * j] | (b[2 * j + 1] << 8)));
        }
        d->emb_storage = BASE_EMB_F16;
    } else {
        if (o->via.bin.size != 2u + d->dim) {
            return false;
        }
        int k = (int16_t)(uint16_t)(b[0] | (b[1] << 8));
        if (k < STO_E8_EXP_MIN || k > STO_E8_EXP_MAX) {
            return false;
        }
        base_i8_dequantize((const int8_t *)(b + 2), d->dim, k, d->embedding);
        if (!e8_canonical((const int8_t *)(b + 2), d->dim, k, d->embedding)) {
            return false;
        }
        d->emb_storage = BASE_EMB_I8;
    }
    return sto_codec_floats_ok(d->embedding, d->dim);
}

/* An open action set's "af" (float32 LE, n_cand x action_dim) and "ids" (n_cand strs). */
static bool get_open_set(const msgpack_object *af, const msgpack_object *ids, base_decision *d)
{
    if (!proto_mp_get_f32_bin(af, d->n_cand * d->action_dim, d->features, NULL) ||
        !sto_codec_floats_ok(d->features, d->n_cand * d->action_dim) ||
        ids->type != MSGPACK_OBJECT_ARRAY || ids->via.array.size != d->n_cand) {
        return false;
    }
    for (uint32_t i = 0; i < d->n_cand; i++) {
        if (!sto_codec_get_str(&ids->via.array.ptr[i], d->cand_id[i], sizeof(d->cand_id[i])) ||
            d->cand_id[i][0] == '\0') {
            return false;
        }
    }
    return true;
}

static base_err decision_from(const msgpack_object *obj, base_decision **out)
{
    const msgpack_object *f[CODEC_MAX_KEYS];
    base_decision *d = NULL;
    uint32_t dim, n_cand, chosen;
    uint32_t action_dim = 0;
    base_err e;

    _Static_assert(DK_COUNT <= CODEC_MAX_KEYS, "slot array too small");
    e = sto_codec_collect_opt(obj, decision_keys, DK_COUNT, DK_REQUIRED, f);
    if (e != BASE_OK) {
        goto fail;
    }
    e = BASE_EPROTO;
    if (!proto_mp_get_u32(f[DK_D], BASE_DIM_MAX, &dim, NULL) ||
        !proto_mp_get_u32(f[DK_N], BASE_CAND_MAX, &n_cand, NULL) || n_cand < 1 ||
        !proto_mp_get_u32(f[DK_CH], n_cand - 1u, &chosen, NULL)) {
        goto fail;
    }
    if ((f[DK_AD] == NULL) != (f[DK_AF] == NULL) || (f[DK_AD] == NULL) != (f[DK_IDS] == NULL) ||
        (f[DK_AD] != NULL && (!proto_mp_get_u32(f[DK_AD], BASE_ACTION_DIM_MAX, &action_dim, NULL) ||
                              action_dim == 0))) {
        goto fail;
    }
    d = base_decision_new_open(dim, n_cand, action_dim);
    if (d == NULL) {
        e = BASE_ENOMEM;
        goto fail;
    }
    d->chosen = chosen;
    if (!sto_codec_get_str(f[DK_P], d->policy, sizeof(d->policy)) ||
        !sto_codec_get_str(f[DK_E], d->event_id, sizeof(d->event_id)) ||
        !sto_codec_get_str(f[DK_C], d->conversation_id, sizeof(d->conversation_id)) ||
        !proto_mp_get_i64(f[DK_TS], &d->ts_ms, NULL) ||
        !proto_mp_get_u64(f[DK_MV], UINT64_MAX, &d->model_version, NULL) ||
        !proto_mp_get_u32(f[DK_TN], UINT32_MAX, &d->turn, NULL) ||
        !proto_mp_get_u32(f[DK_SRC], BASE_SRC_LOG, &d->source, NULL) ||
        !proto_mp_get_u32_bin(f[DK_ACT], n_cand, BASE_ACTIONS_MAX, d->action, NULL) ||
        !proto_mp_get_f32_bin(f[DK_LG], n_cand, d->base_logit, NULL) ||
        !proto_mp_get_f32_bin(f[DK_PMF], n_cand, d->pmf, NULL) ||
        !proto_mp_get_u32(f[DK_DFR], 1, &d->deferred, NULL) ||
        !proto_mp_get_u64(f[DK_LSN], UINT64_MAX, &d->lsn, NULL) ||
        (f[DK_OVF] != NULL && !proto_mp_get_u32(f[DK_OVF], 1, &d->overflow, NULL)) ||
        (f[DK_SL] != NULL && !proto_mp_get_u32(f[DK_SL], BASE_SLOT_PRODUCTION, &d->slot, NULL)) ||
        (f[DK_PV] != NULL && !proto_mp_get_u64(f[DK_PV], UINT64_MAX, &d->prod_version, NULL)) ||
        (f[DK_U] != NULL &&
         (!sto_codec_get_str(f[DK_U], d->user_id, sizeof(d->user_id)) || d->user_id[0] == '\0')) ||
        (f[DK_IB] != NULL && (!sto_codec_get_str(f[DK_IB], d->inbox_id, sizeof(d->inbox_id)) ||
                              d->inbox_id[0] == '\0')) ||
        (f[DK_ACTS] != NULL &&
         (action_dim > 0 ||
          !sto_codec_get_str(f[DK_ACTS], d->actions_hash, sizeof(d->actions_hash)) ||
          d->actions_hash[0] == '\0'))) {
        goto fail;
    }
    if (!get_embedding(f[DK_EMB], f[DK_E16], f[DK_E8], d)) {
        goto fail;
    }
    /* The breakdown comes as a pair, or not at all. */
    if ((f[DK_SC] == NULL) != (f[DK_XS] == NULL)) {
        goto fail;
    }
    if (f[DK_SC] != NULL) {
        if (!proto_mp_get_f32_bin(f[DK_SC], n_cand, d->head_score, NULL) ||
            !proto_mp_get_f32_bin(f[DK_XS], n_cand, d->explore, NULL)) {
            goto fail;
        }
        d->has_breakdown = 1;
    }
    if (action_dim > 0 && !get_open_set(f[DK_AF], f[DK_IDS], d)) {
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
    base_err e = sto_codec_unpack(buf, len, &u);
    if (e == BASE_OK) {
        e = decision_from(&u.data, out);
    }
    msgpack_unpacked_destroy(&u);
    return e;
}

static const char *const outcome_keys[] = {"v",  "p",  "e", "c",  "o",  "sig", "val",
                                           "ts", "su", "u", "ty", "at", "lsn", "ib"};
enum {
    OK_V,
    OK_P,
    OK_E,
    OK_C,
    OK_O,
    OK_SIG,
    OK_VAL,
    OK_TS,
    OK_SU,
    OK_U,
    OK_TY,
    OK_AT,
    OK_LSN,
    OK_IB, /* optional: the inbox entry it was forwarded as (shared = on) */
    OK_COUNT
};

base_err sto_codec_decode_outcome(const uint8_t *buf, size_t len, base_outcome **out)
{
    const msgpack_object *f[CODEC_MAX_KEYS];
    msgpack_unpacked u;
    base_outcome *o = NULL;
    base_err e = sto_codec_unpack(buf, len, &u);

    if (e != BASE_OK) {
        goto fail;
    }
    e = sto_codec_collect_opt(&u.data, outcome_keys, OK_COUNT, OK_IB, f);
    if (e != BASE_OK) {
        goto fail;
    }
    o = base_alloc_zero(1, sizeof(*o));
    if (o == NULL) {
        e = BASE_ENOMEM;
        goto fail;
    }
    e = BASE_EPROTO;
    if (!sto_codec_get_str(f[OK_P], o->policy, sizeof(o->policy)) ||
        !sto_codec_get_str(f[OK_E], o->event_id, sizeof(o->event_id)) ||
        !sto_codec_get_str(f[OK_C], o->conversation_id, sizeof(o->conversation_id)) ||
        !sto_codec_get_str(f[OK_O], o->outcome_id, sizeof(o->outcome_id)) ||
        !sto_codec_get_str(f[OK_SIG], o->signal, sizeof(o->signal)) ||
        !proto_mp_get_f64(f[OK_VAL], &o->value, NULL) ||
        !proto_mp_get_i64(f[OK_TS], &o->ts_ms, NULL) ||
        !sto_codec_get_str(f[OK_SU], o->supersedes, sizeof(o->supersedes)) ||
        !sto_codec_get_str(f[OK_U], o->user_id, sizeof(o->user_id)) ||
        !proto_mp_get_u32(f[OK_TY], BASE_OUT_ACTIVATE, &o->type, NULL) ||
        !proto_mp_get_i64(f[OK_AT], &o->arrived_ms, NULL) ||
        !proto_mp_get_u64(f[OK_LSN], UINT64_MAX, &o->lsn, NULL) ||
        (f[OK_IB] != NULL && (!sto_codec_get_str(f[OK_IB], o->inbox_id, sizeof(o->inbox_id)) ||
                              o->inbox_id[0] == '\0'))) {
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

static const char *const joined_keys[] = {"v",   "dec", "r",  "no", "df",
                                          "jts", "uk",  "cr", "sh", "sv"};
enum { JK_V, JK_DEC, JK_R, JK_NO, JK_DF, JK_JTS, JK_UK, JK_CR, JK_SH, JK_SV, JK_COUNT };

base_err sto_codec_decode_joined(const uint8_t *buf, size_t len, base_joined **out)
{
    const msgpack_object *f[CODEC_MAX_KEYS];
    msgpack_unpacked u;
    base_decision *d = NULL;
    base_joined *j = NULL;
    base_err e = sto_codec_unpack(buf, len, &u);

    if (e != BASE_OK) {
        goto fail;
    }
    e = sto_codec_collect(&u.data, joined_keys, JK_COUNT, f);
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
    if (!proto_mp_get_f64(f[JK_R], &j->reward, NULL) ||
        !proto_mp_get_u32(f[JK_NO], UINT32_MAX, &j->n_outcomes, NULL) ||
        !proto_mp_get_bool(f[JK_DF], &j->defaulted, NULL) ||
        !proto_mp_get_i64(f[JK_JTS], &j->joined_ts_ms, NULL) ||
        !proto_mp_get_bool(f[JK_UK], &j->unknown, NULL) ||
        !proto_mp_get_u32(f[JK_CR], BASE_CREDIT_DISCOUNTED, &j->credit, NULL) ||
        !proto_mp_get_f64(f[JK_SH], &j->share, NULL) ||
        !sto_codec_get_str(f[JK_SV], j->spec_version, sizeof(j->spec_version))) {
        goto fail;
    }
    *out = j;
    j = NULL;
    e = BASE_OK;
fail:
    base_joined_free(j);
    base_decision_free(d);
    msgpack_unpacked_destroy(&u);
    return e;
}
