#include "storage/codec.h"

#include <math.h>
#include <msgpack.h>
#include <stdbool.h>
#include <string.h>

#include "base/alloc.h"
#include "proto/mp.h"

/*
 * Layouts (keys in encoding order; docs/storage.md has literal examples):
 *
 *   decision  v p e c ts mv tn src d n ch emb act lg pmf dfr lsn [ovf] [sl pv] [sc xs]
 *   outcome   v p e c o sig val ts su u ty at lsn
 *   joined    v dec r no df jts ...       (dec: a nested decision map)
 *   model     v p ln lj ver nu ts d na np ns w st sd so sj lsn par rsv bmv cfg
 *             [hx heps ht hlr hlam hpm hbw hkl hg hua hsd] [pfm pfs pfln pfnu pfw pfst]
 *
 * Keys in [brackets] are optional; every other key is required. Keys not
 * listed are skipped, so a newer writer may add fields without bumping "v".
 * A field listed twice is rejected.
 */

#define CODEC_VERSION 1u
#define CODEC_MAX_DEPTH 8u
#define CODEC_MAX_KEYS 48u

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
 * error is sticky: the helpers below never check, finish() does.
 */
static void put_key(proto_writer *w, const char *key)
{
    proto_w_str(w, key);
}

static void put_str(proto_writer *w, const char *key, const char *val)
{
    proto_w_str(w, key);
    proto_w_str(w, val);
}

static void put_u64(proto_writer *w, const char *key, uint64_t val)
{
    proto_w_str(w, key);
    proto_w_uint(w, val);
}

static void put_i64(proto_writer *w, const char *key, int64_t val)
{
    proto_w_str(w, key);
    proto_w_int(w, val);
}

static void put_f64(proto_writer *w, const char *key, double val)
{
    proto_w_str(w, key);
    proto_w_double(w, val);
}

static void put_bool(proto_writer *w, const char *key, bool val)
{
    proto_w_str(w, key);
    proto_w_bool(w, val);
}

/* Vectors are bins of little-endian values, copied bit for bit. */
static void put_f32s(proto_writer *w, const char *key, const float *v, uint32_t n)
{
    proto_w_str(w, key);
    proto_w_f32_bin(w, v, n);
}

static void put_u32s(proto_writer *w, const char *key, const uint32_t *v, uint32_t n)
{
    proto_w_str(w, key);
    proto_w_u32_bin(w, v, n);
}

static void put_f64s(proto_writer *w, const char *key, const double *v, uint32_t n)
{
    proto_w_str(w, key);
    proto_w_f64_bin(w, v, n);
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

static bool settings_ok(const base_head_settings *h)
{
    return isfinite(h->epsilon) && isfinite(h->temperature) && isfinite(h->learning_rate) &&
           isfinite(h->lambda) && isfinite(h->prior_mean) && isfinite(h->base_weight) &&
           isfinite(h->kl) && isfinite(h->gamma) && isfinite(h->ucb_alpha) &&
           isfinite(h->bandwidth);
}

static bool decision_ok(const base_decision *d)
{
    bool ok = str_ok(d->policy, sizeof(d->policy)) && str_ok(d->event_id, sizeof(d->event_id)) &&
              str_ok(d->conversation_id, sizeof(d->conversation_id)) && d->dim <= BASE_DIM_MAX &&
              d->n_cand >= 1 && d->n_cand <= BASE_CAND_MAX && d->chosen < d->n_cand &&
              d->source <= BASE_SRC_LOG && d->overflow <= 1 && d->slot <= BASE_SLOT_PRODUCTION &&
              floats_ok(d->embedding, d->dim) && floats_ok(d->base_logit, d->n_cand) &&
              floats_ok(d->pmf, d->n_cand) && d->has_breakdown <= 1 &&
              (d->has_breakdown == 0 ||
               (floats_ok(d->head_score, d->n_cand) && floats_ok(d->explore, d->n_cand)));
    for (uint32_t i = 0; ok && i < d->n_cand; i++) {
        ok = d->action[i] < BASE_ACTIONS_MAX;
    }
    return ok;
}

static void pack_decision(proto_writer *w, const base_decision *d)
{
    bool slotted = d->slot != BASE_SLOT_ONLINE || d->prod_version != 0;
    proto_w_map(w,
                17u + (d->overflow != 0) + (slotted ? 2u : 0u) + (d->has_breakdown != 0 ? 2u : 0u));
    put_u64(w, "v", CODEC_VERSION);
    put_str(w, "p", d->policy);
    put_str(w, "e", d->event_id);
    put_str(w, "c", d->conversation_id);
    put_i64(w, "ts", d->ts_ms);
    put_u64(w, "mv", d->model_version);
    put_u64(w, "tn", d->turn);
    put_u64(w, "src", d->source);
    put_u64(w, "d", d->dim);
    put_u64(w, "n", d->n_cand);
    put_u64(w, "ch", d->chosen);
    put_f32s(w, "emb", d->embedding, d->dim);
    put_u32s(w, "act", d->action, d->n_cand);
    put_f32s(w, "lg", d->base_logit, d->n_cand);
    put_f32s(w, "pmf", d->pmf, d->n_cand);
    put_u64(w, "dfr", d->deferred);
    put_u64(w, "lsn", d->lsn);
    if (d->overflow != 0) {
        put_u64(w, "ovf", d->overflow); /* optional: absent in most records */
    }
    if (slotted) { /* optional: absent for the online slot with no production snapshot */
        put_u64(w, "sl", d->slot);
        put_u64(w, "pv", d->prod_version);
    }
    if (d->has_breakdown != 0) { /* optional: absent in log records and older ones */
        put_f32s(w, "sc", d->head_score, d->n_cand);
        put_f32s(w, "xs", d->explore, d->n_cand);
    }
}

/* Common tail of every encoder: report the writer's error and undo a partial append. */
static base_err finish(const proto_writer *w, size_t start)
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
    return finish(&w, start);
}

base_err sto_codec_encode_outcome(const base_outcome *o, base_buf *out)
{
    proto_writer w;
    size_t start = out->len;

    proto_writer_init(&w, out);
    if (!str_ok(o->policy, sizeof(o->policy)) || !str_ok(o->event_id, sizeof(o->event_id)) ||
        !str_ok(o->conversation_id, sizeof(o->conversation_id)) ||
        !str_ok(o->outcome_id, sizeof(o->outcome_id)) || !str_ok(o->signal, sizeof(o->signal)) ||
        !str_ok(o->supersedes, sizeof(o->supersedes)) || !str_ok(o->user_id, sizeof(o->user_id)) ||
        o->type > BASE_OUT_ACTIVATE || !isfinite(o->value)) {
        w.err = BASE_EINVAL;
        goto fail;
    }
    proto_w_map(&w, 13);
    put_u64(&w, "v", CODEC_VERSION);
    put_str(&w, "p", o->policy);
    put_str(&w, "e", o->event_id);
    put_str(&w, "c", o->conversation_id);
    put_str(&w, "o", o->outcome_id);
    put_str(&w, "sig", o->signal);
    put_f64(&w, "val", o->value);
    put_i64(&w, "ts", o->ts_ms);
    put_str(&w, "su", o->supersedes);
    put_str(&w, "u", o->user_id);
    put_u64(&w, "ty", o->type);
    put_i64(&w, "at", o->arrived_ms);
    put_u64(&w, "lsn", o->lsn);
fail:
    return finish(&w, start);
}

base_err sto_codec_encode_joined(const base_joined *j, base_buf *out)
{
    proto_writer w;
    size_t start = out->len;

    proto_writer_init(&w, out);
    if (j->decision == NULL || !decision_ok(j->decision) || !isfinite(j->reward) ||
        !isfinite(j->share) || j->credit > BASE_CREDIT_DISCOUNTED ||
        !str_ok(j->spec_version, sizeof(j->spec_version))) {
        w.err = BASE_EINVAL;
        goto fail;
    }
    proto_w_map(&w, 10);
    put_u64(&w, "v", CODEC_VERSION);
    put_key(&w, "dec");
    pack_decision(&w, j->decision);
    put_f64(&w, "r", j->reward);
    put_u64(&w, "no", j->n_outcomes);
    put_bool(&w, "df", j->defaulted);
    put_i64(&w, "jts", j->joined_ts_ms);
    put_bool(&w, "uk", j->unknown);
    put_u64(&w, "cr", j->credit);
    put_f64(&w, "sh", j->share);
    put_str(&w, "sv", j->spec_version);
fail:
    return finish(&w, start);
}

/* A portfolio section, if any, within its caps and finite. */
static bool pf_ok(const base_snapshot *m)
{
    if (m->pf_n_learners == 0) {
        return m->pf_n_sel == 0;
    }
    bool ok = m->pf_n_learners <= BASE_PF_LEARNERS_MAX && m->pf_learner != NULL &&
              m->pf_n_sel <= BASE_PF_SEL_MAX && (m->pf_n_sel == 0 || m->pf_sel != NULL) &&
              str_ok(m->pf_members, sizeof(m->pf_members));
    for (uint32_t i = 0; ok && i < m->pf_n_sel; i++) {
        ok = isfinite(m->pf_sel[i]);
    }
    for (uint32_t i = 0; ok && i < m->pf_n_learners; i++) {
        const base_snapshot *l = m->pf_learner[i];
        ok = l != NULL && str_ok(l->learner, sizeof(l->learner)) &&
             floats_ok(l->params, l->n_params) && l->n_params <= UINT32_MAX / 4u &&
             l->n_state <= UINT32_MAX / 8u;
        for (uint32_t k = 0; ok && k < l->n_state; k++) {
            ok = isfinite(l->state[k]);
        }
    }
    return ok;
}

base_err sto_codec_encode_model(const base_snapshot *m, base_buf *out)
{
    proto_writer w;
    size_t start = out->len;
    bool ok = str_ok(m->policy, sizeof(m->policy)) && str_ok(m->learner, sizeof(m->learner)) &&
              str_ok(m->last_joined_id, sizeof(m->last_joined_id)) &&
              str_ok(m->scan_decisions, sizeof(m->scan_decisions)) &&
              str_ok(m->scan_outcomes, sizeof(m->scan_outcomes)) &&
              str_ok(m->scan_joined, sizeof(m->scan_joined)) &&
              str_ok(m->spec_version, sizeof(m->spec_version)) &&
              str_ok(m->base_version, sizeof(m->base_version)) &&
              str_ok(m->config_hash, sizeof(m->config_hash)) &&
              str_ok(m->settings.explorer, sizeof(m->settings.explorer)) &&
              str_ok(m->settings.features, sizeof(m->settings.features)) &&
              settings_ok(&m->settings) && floats_ok(m->params, m->n_params);
    bool has_settings = m->settings.explorer[0] != '\0';
    bool has_pf = m->pf_n_learners > 0;
    bool has_features = has_settings && m->settings.features[0] != '\0';

    for (uint32_t i = 0; ok && i < m->n_state; i++) {
        ok = isfinite(m->state[i]);
    }
    ok = ok && pf_ok(m);
    proto_writer_init(&w, out);
    if (!ok) {
        w.err = BASE_EINVAL;
        goto fail;
    }
    /* A bin32 length is 32 bits wide. */
    if (m->n_params > UINT32_MAX / 4u || m->n_state > UINT32_MAX / 8u) {
        w.err = BASE_ELIMIT;
        goto fail;
    }
    proto_w_map(&w, (has_settings ? (has_features ? 35u : 32u) : 21u) + (has_pf ? 6u : 0u));
    put_u64(&w, "v", CODEC_VERSION);
    put_str(&w, "p", m->policy);
    put_str(&w, "ln", m->learner);
    put_str(&w, "lj", m->last_joined_id);
    put_u64(&w, "ver", m->version);
    put_u64(&w, "nu", m->n_updates);
    put_i64(&w, "ts", m->ts_ms);
    put_u64(&w, "d", m->dim);
    put_u64(&w, "na", m->n_actions);
    put_u64(&w, "np", m->n_params);
    put_u64(&w, "ns", m->n_state);
    put_f32s(&w, "w", m->params, m->n_params);
    put_f64s(&w, "st", m->state, m->n_state);
    put_str(&w, "sd", m->scan_decisions);
    put_str(&w, "so", m->scan_outcomes);
    put_str(&w, "sj", m->scan_joined);
    put_u64(&w, "lsn", m->next_lsn);
    put_u64(&w, "par", m->parent);
    put_str(&w, "rsv", m->spec_version);
    put_str(&w, "bmv", m->base_version);
    put_str(&w, "cfg", m->config_hash);
    if (has_settings) { /* optional: absent in snapshots written before they existed */
        const base_head_settings *h = &m->settings;
        put_str(&w, "hx", h->explorer);
        put_f64(&w, "heps", h->epsilon);
        put_f64(&w, "ht", h->temperature);
        put_f64(&w, "hlr", h->learning_rate);
        put_f64(&w, "hlam", h->lambda);
        put_f64(&w, "hpm", h->prior_mean);
        put_f64(&w, "hbw", h->base_weight);
        put_f64(&w, "hkl", h->kl);
        put_f64(&w, "hg", h->gamma);
        put_f64(&w, "hua", h->ucb_alpha);
        put_u64(&w, "hsd", h->seed);
    }
    if (has_features) { /* optional: absent before feature maps (read as linear) */
        const base_head_settings *h = &m->settings;
        put_str(&w, "hfm", h->features);
        put_u64(&w, "hfd", h->rff_dim);
        put_f64(&w, "hfb", h->bandwidth);
    }
    if (has_pf) { /* optional: a portfolio's learners and selector */
        put_str(&w, "pfm", m->pf_members);
        put_f64s(&w, "pfs", m->pf_sel, m->pf_n_sel);
        put_key(&w, "pfln");
        proto_w_array(&w, m->pf_n_learners);
        for (uint32_t i = 0; i < m->pf_n_learners; i++) {
            proto_w_str(&w, m->pf_learner[i]->learner);
        }
        put_key(&w, "pfnu");
        proto_w_array(&w, m->pf_n_learners);
        for (uint32_t i = 0; i < m->pf_n_learners; i++) {
            proto_w_uint(&w, m->pf_learner[i]->n_updates);
        }
        put_key(&w, "pfw");
        proto_w_array(&w, m->pf_n_learners);
        for (uint32_t i = 0; i < m->pf_n_learners; i++) {
            proto_w_f32_bin(&w, m->pf_learner[i]->params, m->pf_learner[i]->n_params);
        }
        put_key(&w, "pfst");
        proto_w_array(&w, m->pf_n_learners);
        for (uint32_t i = 0; i < m->pf_n_learners; i++) {
            proto_w_f64_bin(&w, m->pf_learner[i]->state, m->pf_learner[i]->n_state);
        }
    }
fail:
    return finish(&w, start);
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

static base_err collect(const msgpack_object *map, const char *const *names, size_t n_names,
                        const msgpack_object **slots)
{
    return collect_opt(map, names, n_names, n_names, slots);
}

/*
 * A str that fits @size bytes with its NUL and holds no NUL. Unlike the wire
 * protocol, records are not checked for UTF-8 here: the daemon checked their
 * text where it entered.
 */
static bool get_str(const msgpack_object *o, char *dst, size_t size)
{
    return proto_mp_get_str(o, size - 1, false, dst, NULL);
}

/*
 * Check the raw bytes, then unpack exactly one object. @u must be destroyed
 * by the caller whatever this returns.
 */
static base_err unpack(const uint8_t *buf, size_t len, msgpack_unpacked *u)
{
    msgpack_unpacked_init(u);
    base_err e = proto_mp_unpack(buf, len, CODEC_MAX_DEPTH, max_objects(len), u);
    if (e == BASE_ELIMIT) {
        e = BASE_EPROTO; /* past a cap is as malformed as a bad count, for a record */
    }
    return e;
}

static const char *const decision_keys[] = {"v",   "p",   "e",  "c",   "ts",  "mv", "tn",  "src",
                                            "d",   "n",   "ch", "emb", "act", "lg", "pmf", "dfr",
                                            "lsn", "ovf", "sl", "pv",  "sc",  "xs"};
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
    DK_EMB,
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
    DK_COUNT
};
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
    if (!proto_mp_get_u32(f[DK_D], BASE_DIM_MAX, &dim, NULL) ||
        !proto_mp_get_u32(f[DK_N], BASE_CAND_MAX, &n_cand, NULL) || n_cand < 1 ||
        !proto_mp_get_u32(f[DK_CH], n_cand - 1u, &chosen, NULL)) {
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
        !proto_mp_get_i64(f[DK_TS], &d->ts_ms, NULL) ||
        !proto_mp_get_u64(f[DK_MV], UINT64_MAX, &d->model_version, NULL) ||
        !proto_mp_get_u32(f[DK_TN], UINT32_MAX, &d->turn, NULL) ||
        !proto_mp_get_u32(f[DK_SRC], BASE_SRC_LOG, &d->source, NULL) ||
        !proto_mp_get_f32_bin(f[DK_EMB], dim, d->embedding, NULL) ||
        !proto_mp_get_u32_bin(f[DK_ACT], n_cand, BASE_ACTIONS_MAX, d->action, NULL) ||
        !proto_mp_get_f32_bin(f[DK_LG], n_cand, d->base_logit, NULL) ||
        !proto_mp_get_f32_bin(f[DK_PMF], n_cand, d->pmf, NULL) ||
        !proto_mp_get_u32(f[DK_DFR], 1, &d->deferred, NULL) ||
        !proto_mp_get_u64(f[DK_LSN], UINT64_MAX, &d->lsn, NULL) ||
        (f[DK_OVF] != NULL && !proto_mp_get_u32(f[DK_OVF], 1, &d->overflow, NULL)) ||
        (f[DK_SL] != NULL && !proto_mp_get_u32(f[DK_SL], BASE_SLOT_PRODUCTION, &d->slot, NULL)) ||
        (f[DK_PV] != NULL && !proto_mp_get_u64(f[DK_PV], UINT64_MAX, &d->prod_version, NULL))) {
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

static const char *const outcome_keys[] = {"v",  "p",  "e", "c",  "o",  "sig", "val",
                                           "ts", "su", "u", "ty", "at", "lsn"};
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
    OK_COUNT
};

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
        !get_str(f[OK_SIG], o->signal, sizeof(o->signal)) ||
        !proto_mp_get_f64(f[OK_VAL], &o->value, NULL) ||
        !proto_mp_get_i64(f[OK_TS], &o->ts_ms, NULL) ||
        !get_str(f[OK_SU], o->supersedes, sizeof(o->supersedes)) ||
        !get_str(f[OK_U], o->user_id, sizeof(o->user_id)) ||
        !proto_mp_get_u32(f[OK_TY], BASE_OUT_ACTIVATE, &o->type, NULL) ||
        !proto_mp_get_i64(f[OK_AT], &o->arrived_ms, NULL) ||
        !proto_mp_get_u64(f[OK_LSN], UINT64_MAX, &o->lsn, NULL)) {
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
    if (!proto_mp_get_f64(f[JK_R], &j->reward, NULL) ||
        !proto_mp_get_u32(f[JK_NO], UINT32_MAX, &j->n_outcomes, NULL) ||
        !proto_mp_get_bool(f[JK_DF], &j->defaulted, NULL) ||
        !proto_mp_get_i64(f[JK_JTS], &j->joined_ts_ms, NULL) ||
        !proto_mp_get_bool(f[JK_UK], &j->unknown, NULL) ||
        !proto_mp_get_u32(f[JK_CR], BASE_CREDIT_DISCOUNTED, &j->credit, NULL) ||
        !proto_mp_get_f64(f[JK_SH], &j->share, NULL) ||
        !get_str(f[JK_SV], j->spec_version, sizeof(j->spec_version))) {
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

static const char *const model_keys[] = {
    "v",    "p",   "ln",  "lj",   "ver",  "nu",   "ts",  "d",   "na",  "np",  "ns",
    "w",    "st",  "sd",  "so",   "sj",   "lsn",  "par", "rsv", "bmv", "cfg", "hx",
    "heps", "ht",  "hlr", "hlam", "hpm",  "hbw",  "hkl", "hg",  "hua", "hsd", "hfm",
    "hfd",  "hfb", "pfm", "pfs",  "pfln", "pfnu", "pfw", "pfst"};
enum {
    MK_V,
    MK_P,
    MK_LN,
    MK_LJ,
    MK_VER,
    MK_NU,
    MK_TS,
    MK_D,
    MK_NA,
    MK_NP,
    MK_NS,
    MK_W,
    MK_ST,
    MK_SD,
    MK_SO,
    MK_SJ,
    MK_LSN,
    MK_PAR,
    MK_RSV,
    MK_BMV,
    MK_CFG,
    MK_HX, /* optional from here on: all or none */
    MK_HEPS,
    MK_HT,
    MK_HLR,
    MK_HLAM,
    MK_HPM,
    MK_HBW,
    MK_HKL,
    MK_HG,
    MK_HUA,
    MK_HSD,
    MK_HFM, /* optional, with the settings: all or none */
    MK_HFD,
    MK_HFB,
    MK_PFM, /* optional: a portfolio, all or none */
    MK_PFS,
    MK_PFLN,
    MK_PFNU,
    MK_PFW,
    MK_PFST,
    MK_COUNT
};

/* The head's settings: all eleven keys or none (the feature map's three aside). */
static bool get_settings(const msgpack_object *const *f, base_head_settings *h)
{
    size_t present = 0;
    for (int k = MK_HX; k <= MK_HSD; k++) {
        present += f[k] != NULL;
    }
    if (present == 0) {
        return true;
    }
    return present == MK_HSD + 1 - MK_HX && get_str(f[MK_HX], h->explorer, sizeof(h->explorer)) &&
           h->explorer[0] != '\0' && proto_mp_get_f64(f[MK_HEPS], &h->epsilon, NULL) &&
           proto_mp_get_f64(f[MK_HT], &h->temperature, NULL) &&
           proto_mp_get_f64(f[MK_HLR], &h->learning_rate, NULL) &&
           proto_mp_get_f64(f[MK_HLAM], &h->lambda, NULL) &&
           proto_mp_get_f64(f[MK_HPM], &h->prior_mean, NULL) &&
           proto_mp_get_f64(f[MK_HBW], &h->base_weight, NULL) &&
           proto_mp_get_f64(f[MK_HKL], &h->kl, NULL) &&
           proto_mp_get_f64(f[MK_HG], &h->gamma, NULL) &&
           proto_mp_get_f64(f[MK_HUA], &h->ucb_alpha, NULL) &&
           proto_mp_get_u64(f[MK_HSD], UINT64_MAX, &h->seed, NULL) && settings_ok(h);
}

/* The head's feature map: all three keys or none, and only with the settings. */
static bool get_features(const msgpack_object *const *f, base_head_settings *h)
{
    size_t present = 0;
    for (int k = MK_HFM; k <= MK_HFB; k++) {
        present += f[k] != NULL;
    }
    if (present == 0) {
        return true;
    }
    return present == MK_HFB + 1 - MK_HFM && h->explorer[0] != '\0' &&
           get_str(f[MK_HFM], h->features, sizeof(h->features)) && h->features[0] != '\0' &&
           proto_mp_get_u32(f[MK_HFD], UINT32_MAX, &h->rff_dim, NULL) &&
           proto_mp_get_f64(f[MK_HFB], &h->bandwidth, NULL) && isfinite(h->bandwidth);
}

/* Element @i of the array @o, or NULL. */
static const msgpack_object *array_at(const msgpack_object *o, uint32_t n, uint32_t i)
{
    return o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == n ? &o->via.array.ptr[i] : NULL;
}

/* The portfolio section, all six keys or none, into @m. */
static base_err get_portfolio(const msgpack_object *const *f, base_snapshot *m)
{
    size_t present = 0;
    for (int k = MK_PFM; k < MK_COUNT; k++) {
        present += f[k] != NULL;
    }
    if (present == 0) {
        return BASE_OK;
    }
    if (present != MK_COUNT - MK_PFM) {
        return BASE_EPROTO;
    }
    const msgpack_object *ln = f[MK_PFLN];
    uint32_t n = ln->type == MSGPACK_OBJECT_ARRAY ? ln->via.array.size : 0;
    uint32_t n_sel = 0;
    if (n == 0 || n > BASE_PF_LEARNERS_MAX ||
        !get_str(f[MK_PFM], m->pf_members, sizeof(m->pf_members)) ||
        !proto_mp_bin_count(f[MK_PFS], 8u, &n_sel) || n_sel > BASE_PF_SEL_MAX) {
        return BASE_EPROTO;
    }
    m->pf_learner = base_alloc_zero(n, sizeof(*m->pf_learner));
    m->pf_sel = base_alloc_zero(n_sel > 0 ? n_sel : 1, sizeof(double));
    if (m->pf_learner == NULL || m->pf_sel == NULL) {
        return BASE_ENOMEM;
    }
    m->pf_n_learners = n;
    m->pf_n_sel = n_sel;
    if (!proto_mp_get_f64_bin(f[MK_PFS], n_sel, m->pf_sel, NULL)) {
        return BASE_EPROTO;
    }
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *w = array_at(f[MK_PFW], n, i), *st = array_at(f[MK_PFST], n, i);
        const msgpack_object *nu = array_at(f[MK_PFNU], n, i);
        uint32_t np = 0, ns = 0;
        if (w == NULL || st == NULL || nu == NULL || !proto_mp_bin_count(w, 4u, &np) ||
            !proto_mp_bin_count(st, 8u, &ns)) {
            return BASE_EPROTO;
        }
        base_snapshot *l = base_snapshot_new(np, ns);
        if (l == NULL) {
            return BASE_ENOMEM;
        }
        m->pf_learner[i] = l;
        l->dim = m->dim;
        l->n_actions = m->n_actions;
        if (!get_str(&ln->via.array.ptr[i], l->learner, sizeof(l->learner)) ||
            !proto_mp_get_u64(nu, UINT64_MAX, &l->n_updates, NULL) ||
            !proto_mp_get_f32_bin(w, np, l->params, NULL) ||
            !proto_mp_get_f64_bin(st, ns, l->state, NULL)) {
            return BASE_EPROTO;
        }
    }
    return BASE_OK;
}

base_err sto_codec_decode_model(const uint8_t *buf, size_t len, base_snapshot **out)
{
    const msgpack_object *f[CODEC_MAX_KEYS];
    msgpack_unpacked u;
    base_snapshot *m = NULL;
    uint32_t n_params, n_state, np_bin, ns_bin;
    base_err e = unpack(buf, len, &u);

    if (e != BASE_OK) {
        goto fail;
    }
    _Static_assert(MK_COUNT <= CODEC_MAX_KEYS, "slot array too small");
    e = collect_opt(&u.data, model_keys, MK_COUNT, MK_HX, f);
    if (e != BASE_OK) {
        goto fail;
    }
    e = BASE_EPROTO;
    /* The bins bound the counts by len before anything is allocated. */
    if (!proto_mp_get_u32(f[MK_NP], UINT32_MAX, &n_params, NULL) ||
        !proto_mp_get_u32(f[MK_NS], UINT32_MAX, &n_state, NULL) ||
        !proto_mp_bin_count(f[MK_W], 4u, &np_bin) || np_bin != n_params ||
        !proto_mp_bin_count(f[MK_ST], 8u, &ns_bin) || ns_bin != n_state) {
        goto fail;
    }
    m = base_snapshot_new(n_params, n_state);
    if (m == NULL) {
        e = BASE_ENOMEM;
        goto fail;
    }
    if (!get_str(f[MK_P], m->policy, sizeof(m->policy)) ||
        !get_str(f[MK_LN], m->learner, sizeof(m->learner)) ||
        !get_str(f[MK_LJ], m->last_joined_id, sizeof(m->last_joined_id)) ||
        !proto_mp_get_u64(f[MK_VER], UINT64_MAX, &m->version, NULL) ||
        !proto_mp_get_u64(f[MK_NU], UINT64_MAX, &m->n_updates, NULL) ||
        !proto_mp_get_i64(f[MK_TS], &m->ts_ms, NULL) ||
        !proto_mp_get_u32(f[MK_D], UINT32_MAX, &m->dim, NULL) ||
        !proto_mp_get_u32(f[MK_NA], UINT32_MAX, &m->n_actions, NULL) ||
        !proto_mp_get_f32_bin(f[MK_W], n_params, m->params, NULL) ||
        !proto_mp_get_f64_bin(f[MK_ST], n_state, m->state, NULL) ||
        !get_str(f[MK_SD], m->scan_decisions, sizeof(m->scan_decisions)) ||
        !get_str(f[MK_SO], m->scan_outcomes, sizeof(m->scan_outcomes)) ||
        !get_str(f[MK_SJ], m->scan_joined, sizeof(m->scan_joined)) ||
        !proto_mp_get_u64(f[MK_LSN], UINT64_MAX, &m->next_lsn, NULL) ||
        !proto_mp_get_u64(f[MK_PAR], UINT64_MAX, &m->parent, NULL) ||
        !get_str(f[MK_RSV], m->spec_version, sizeof(m->spec_version)) ||
        !get_str(f[MK_BMV], m->base_version, sizeof(m->base_version)) ||
        !get_str(f[MK_CFG], m->config_hash, sizeof(m->config_hash)) ||
        !get_settings(f, &m->settings) || !get_features(f, &m->settings)) {
        goto fail;
    }
    e = get_portfolio(f, m);
    if (e != BASE_OK) {
        goto fail;
    }
    *out = m;
    m = NULL;
    e = BASE_OK;
fail:
    base_snapshot_free(m);
    msgpack_unpacked_destroy(&u);
    return e;
}
