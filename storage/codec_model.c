/*
 * Model snapshots (base_snapshot): encode and decode, with the optional head
 * settings, feature map and portfolio sections (layout in codec.c's header
 * comment and docs/storage.md). The shared pieces are in codec_impl.h.
 */
#include <math.h>
#include <msgpack.h>
#include <stdbool.h>
#include <string.h>

#include "base/alloc.h"
#include "proto/mp.h"
#include "storage/codec.h"
#include "storage/codec_impl.h"

/* A portfolio section, if any, within its caps and finite. */
static bool pf_ok(const base_snapshot *m)
{
    if (m->pf_n_learners == 0) {
        return m->pf_n_sel == 0;
    }
    bool ok = m->pf_n_learners <= BASE_PF_LEARNERS_MAX && m->pf_learner != NULL &&
              m->pf_n_sel <= BASE_PF_SEL_MAX && (m->pf_n_sel == 0 || m->pf_sel != NULL) &&
              sto_codec_str_ok(m->pf_members, sizeof(m->pf_members));
    for (uint32_t i = 0; ok && i < m->pf_n_sel; i++) {
        ok = isfinite(m->pf_sel[i]);
    }
    for (uint32_t i = 0; ok && i < m->pf_n_learners; i++) {
        const base_snapshot *l = m->pf_learner[i];
        ok = l != NULL && sto_codec_str_ok(l->learner, sizeof(l->learner)) &&
             sto_codec_floats_ok(l->params, l->n_params) && l->n_params <= UINT32_MAX / 4u &&
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
    bool ok = sto_codec_str_ok(m->policy, sizeof(m->policy)) &&
              sto_codec_str_ok(m->learner, sizeof(m->learner)) &&
              sto_codec_str_ok(m->last_joined_id, sizeof(m->last_joined_id)) &&
              sto_codec_str_ok(m->scan_decisions, sizeof(m->scan_decisions)) &&
              sto_codec_str_ok(m->scan_outcomes, sizeof(m->scan_outcomes)) &&
              sto_codec_str_ok(m->scan_joined, sizeof(m->scan_joined)) &&
              sto_codec_str_ok(m->inbox_pos, sizeof(m->inbox_pos)) &&
              sto_codec_str_ok(m->spec_version, sizeof(m->spec_version)) &&
              sto_codec_str_ok(m->base_version, sizeof(m->base_version)) &&
              sto_codec_str_ok(m->config_hash, sizeof(m->config_hash)) &&
              sto_codec_str_ok(m->actions_hash, sizeof(m->actions_hash)) &&
              sto_codec_str_ok(m->settings.explorer, sizeof(m->settings.explorer)) &&
              sto_codec_str_ok(m->settings.features, sizeof(m->settings.features)) &&
              sto_codec_settings_ok(&m->settings) && sto_codec_floats_ok(m->params, m->n_params);
    bool has_settings = m->settings.explorer[0] != '\0';
    bool has_pf = m->pf_n_learners > 0;
    bool has_features = has_settings && m->settings.features[0] != '\0';
    bool has_open = has_settings && m->settings.action_dim > 0;

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
    proto_w_map(&w, (has_settings ? (has_features ? 35u : 32u) : 21u) + (has_pf ? 6u : 0u) +
                        (has_open ? 2u : 0u) + (m->epoch_lsn > 0 ? 1u : 0u) +
                        (m->inbox_pos[0] != '\0' ? 1u : 0u) +
                        (m->actions_hash[0] != '\0' ? 1u : 0u));
    sto_codec_put_u64(&w, "v", CODEC_VERSION);
    sto_codec_put_str(&w, "p", m->policy);
    sto_codec_put_str(&w, "ln", m->learner);
    sto_codec_put_str(&w, "lj", m->last_joined_id);
    sto_codec_put_u64(&w, "ver", m->version);
    sto_codec_put_u64(&w, "nu", m->n_updates);
    sto_codec_put_i64(&w, "ts", m->ts_ms);
    sto_codec_put_u64(&w, "d", m->dim);
    sto_codec_put_u64(&w, "na", m->n_actions);
    sto_codec_put_u64(&w, "np", m->n_params);
    sto_codec_put_u64(&w, "ns", m->n_state);
    sto_codec_put_f32s(&w, "w", m->params, m->n_params);
    sto_codec_put_f64s(&w, "st", m->state, m->n_state);
    sto_codec_put_str(&w, "sd", m->scan_decisions);
    sto_codec_put_str(&w, "so", m->scan_outcomes);
    sto_codec_put_str(&w, "sj", m->scan_joined);
    sto_codec_put_u64(&w, "lsn", m->next_lsn);
    sto_codec_put_u64(&w, "par", m->parent);
    sto_codec_put_str(&w, "rsv", m->spec_version);
    sto_codec_put_str(&w, "bmv", m->base_version);
    sto_codec_put_str(&w, "cfg", m->config_hash);
    if (has_settings) { /* optional: absent in snapshots written before they existed */
        const base_head_settings *h = &m->settings;
        sto_codec_put_str(&w, "hx", h->explorer);
        sto_codec_put_f64(&w, "heps", h->epsilon);
        sto_codec_put_f64(&w, "ht", h->temperature);
        sto_codec_put_f64(&w, "hlr", h->learning_rate);
        sto_codec_put_f64(&w, "hlam", h->lambda);
        sto_codec_put_f64(&w, "hpm", h->prior_mean);
        sto_codec_put_f64(&w, "hbw", h->base_weight);
        sto_codec_put_f64(&w, "hkl", h->kl);
        sto_codec_put_f64(&w, "hg", h->gamma);
        sto_codec_put_f64(&w, "hua", h->ucb_alpha);
        sto_codec_put_u64(&w, "hsd", h->seed);
    }
    if (has_features) { /* optional: absent before feature maps (read as linear) */
        const base_head_settings *h = &m->settings;
        sto_codec_put_str(&w, "hfm", h->features);
        sto_codec_put_u64(&w, "hfd", h->rff_dim);
        sto_codec_put_f64(&w, "hfb", h->bandwidth);
    }
    if (m->epoch_lsn > 0) { /* optional: a head version started by a policy change */
        sto_codec_put_u64(&w, "elsn", m->epoch_lsn);
    }
    if (m->inbox_pos[0] != '\0') { /* optional: shared = on, the inbox's consumed part */
        sto_codec_put_str(&w, "inb", m->inbox_pos);
    }
    if (m->actions_hash[0] != '\0') { /* optional: the action names it was learned for */
        sto_codec_put_str(&w, "acts", m->actions_hash);
    }
    if (has_open) { /* optional: an open action set's head */
        sto_codec_put_u64(&w, "had", m->settings.action_dim);
        sto_codec_put_u64(&w, "hid", m->settings.interaction_dim);
    }
    if (has_pf) { /* optional: a portfolio's learners and selector */
        sto_codec_put_str(&w, "pfm", m->pf_members);
        sto_codec_put_f64s(&w, "pfs", m->pf_sel, m->pf_n_sel);
        sto_codec_put_key(&w, "pfln");
        proto_w_array(&w, m->pf_n_learners);
        for (uint32_t i = 0; i < m->pf_n_learners; i++) {
            proto_w_str(&w, m->pf_learner[i]->learner);
        }
        sto_codec_put_key(&w, "pfnu");
        proto_w_array(&w, m->pf_n_learners);
        for (uint32_t i = 0; i < m->pf_n_learners; i++) {
            proto_w_uint(&w, m->pf_learner[i]->n_updates);
        }
        sto_codec_put_key(&w, "pfw");
        proto_w_array(&w, m->pf_n_learners);
        for (uint32_t i = 0; i < m->pf_n_learners; i++) {
            proto_w_f32_bin(&w, m->pf_learner[i]->params, m->pf_learner[i]->n_params);
        }
        sto_codec_put_key(&w, "pfst");
        proto_w_array(&w, m->pf_n_learners);
        for (uint32_t i = 0; i < m->pf_n_learners; i++) {
            proto_w_f64_bin(&w, m->pf_learner[i]->state, m->pf_learner[i]->n_state);
        }
    }
fail:
    return sto_codec_finish(&w, start);
}

static const char *const model_keys[] = {
    "v",   "p",    "ln",   "lj",  "ver",  "nu",  "ts",  "d",    "na",  "np",  "ns",   "w",
    "st",  "sd",   "so",   "sj",  "lsn",  "par", "rsv", "bmv",  "cfg", "hx",  "heps", "ht",
    "hlr", "hlam", "hpm",  "hbw", "hkl",  "hg",  "hua", "hsd",  "hfm", "hfd", "hfb",  "pfm",
    "pfs", "pfln", "pfnu", "pfw", "pfst", "had", "hid", "elsn", "inb", "acts"};
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
    MK_HAD, /* optional, with the settings: an open action set's two, both or none */
    MK_HID,
    MK_ELSN, /* optional: the epoch of a head version started by a policy change */
    MK_INB,  /* optional: the last inbox entry consumed (shared = on) */
    MK_ACTS, /* optional: the hash of the action names the head was learned for */
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
    return present == MK_HSD + 1 - MK_HX &&
           sto_codec_get_str(f[MK_HX], h->explorer, sizeof(h->explorer)) &&
           h->explorer[0] != '\0' && proto_mp_get_f64(f[MK_HEPS], &h->epsilon, NULL) &&
           proto_mp_get_f64(f[MK_HT], &h->temperature, NULL) &&
           proto_mp_get_f64(f[MK_HLR], &h->learning_rate, NULL) &&
           proto_mp_get_f64(f[MK_HLAM], &h->lambda, NULL) &&
           proto_mp_get_f64(f[MK_HPM], &h->prior_mean, NULL) &&
           proto_mp_get_f64(f[MK_HBW], &h->base_weight, NULL) &&
           proto_mp_get_f64(f[MK_HKL], &h->kl, NULL) &&
           proto_mp_get_f64(f[MK_HG], &h->gamma, NULL) &&
           proto_mp_get_f64(f[MK_HUA], &h->ucb_alpha, NULL) &&
           proto_mp_get_u64(f[MK_HSD], UINT64_MAX, &h->seed, NULL) && sto_codec_settings_ok(h);
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
           sto_codec_get_str(f[MK_HFM], h->features, sizeof(h->features)) &&
           h->features[0] != '\0' && proto_mp_get_u32(f[MK_HFD], UINT32_MAX, &h->rff_dim, NULL) &&
           proto_mp_get_f64(f[MK_HFB], &h->bandwidth, NULL) && isfinite(h->bandwidth);
}

/* An open action set's action_dim (> 0) and interaction_dim: both or none, with the settings. */
static bool get_open_set(const msgpack_object *const *f, base_head_settings *h)
{
    if (f[MK_HAD] == NULL && f[MK_HID] == NULL) {
        return true;
    }
    return f[MK_HAD] != NULL && f[MK_HID] != NULL && h->explorer[0] != '\0' &&
           proto_mp_get_u32(f[MK_HAD], BASE_ACTION_DIM_MAX, &h->action_dim, NULL) &&
           h->action_dim > 0 &&
           proto_mp_get_u32(f[MK_HID], BASE_DIM_MAX, &h->interaction_dim, NULL);
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
    for (int k = MK_PFM; k <= MK_PFST; k++) {
        present += f[k] != NULL;
    }
    if (present == 0) {
        return BASE_OK;
    }
    if (present != MK_PFST + 1 - MK_PFM) {
        return BASE_EPROTO;
    }
    const msgpack_object *ln = f[MK_PFLN];
    uint32_t n = ln->type == MSGPACK_OBJECT_ARRAY ? ln->via.array.size : 0;
    uint32_t n_sel = 0;
    if (n == 0 || n > BASE_PF_LEARNERS_MAX ||
        !sto_codec_get_str(f[MK_PFM], m->pf_members, sizeof(m->pf_members)) ||
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
        if (!sto_codec_get_str(&ln->via.array.ptr[i], l->learner, sizeof(l->learner)) ||
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
    base_err e = sto_codec_unpack(buf, len, &u);

    if (e != BASE_OK) {
        goto fail;
    }
    _Static_assert(MK_COUNT <= CODEC_MAX_KEYS, "slot array too small");
    e = sto_codec_collect_opt(&u.data, model_keys, MK_COUNT, MK_HX, f);
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
    if (!sto_codec_get_str(f[MK_P], m->policy, sizeof(m->policy)) ||
        !sto_codec_get_str(f[MK_LN], m->learner, sizeof(m->learner)) ||
        !sto_codec_get_str(f[MK_LJ], m->last_joined_id, sizeof(m->last_joined_id)) ||
        !proto_mp_get_u64(f[MK_VER], UINT64_MAX, &m->version, NULL) ||
        !proto_mp_get_u64(f[MK_NU], UINT64_MAX, &m->n_updates, NULL) ||
        !proto_mp_get_i64(f[MK_TS], &m->ts_ms, NULL) ||
        !proto_mp_get_u32(f[MK_D], UINT32_MAX, &m->dim, NULL) ||
        !proto_mp_get_u32(f[MK_NA], UINT32_MAX, &m->n_actions, NULL) ||
        !proto_mp_get_f32_bin(f[MK_W], n_params, m->params, NULL) ||
        !proto_mp_get_f64_bin(f[MK_ST], n_state, m->state, NULL) ||
        !sto_codec_get_str(f[MK_SD], m->scan_decisions, sizeof(m->scan_decisions)) ||
        !sto_codec_get_str(f[MK_SO], m->scan_outcomes, sizeof(m->scan_outcomes)) ||
        !sto_codec_get_str(f[MK_SJ], m->scan_joined, sizeof(m->scan_joined)) ||
        !proto_mp_get_u64(f[MK_LSN], UINT64_MAX, &m->next_lsn, NULL) ||
        !proto_mp_get_u64(f[MK_PAR], UINT64_MAX, &m->parent, NULL) ||
        !sto_codec_get_str(f[MK_RSV], m->spec_version, sizeof(m->spec_version)) ||
        !sto_codec_get_str(f[MK_BMV], m->base_version, sizeof(m->base_version)) ||
        !sto_codec_get_str(f[MK_CFG], m->config_hash, sizeof(m->config_hash)) ||
        !get_settings(f, &m->settings) || !get_features(f, &m->settings) ||
        !get_open_set(f, &m->settings) ||
        (f[MK_ELSN] != NULL &&
         (!proto_mp_get_u64(f[MK_ELSN], UINT64_MAX, &m->epoch_lsn, NULL) || m->epoch_lsn == 0)) ||
        (f[MK_INB] != NULL && (!sto_codec_get_str(f[MK_INB], m->inbox_pos, sizeof(m->inbox_pos)) ||
                               m->inbox_pos[0] == '\0')) ||
        (f[MK_ACTS] != NULL &&
         (!sto_codec_get_str(f[MK_ACTS], m->actions_hash, sizeof(m->actions_hash)) ||
          m->actions_hash[0] == '\0'))) {
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
