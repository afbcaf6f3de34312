#include "policy/head.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"
#include "policy/amap.h"
#include "policy/explore.h"
#include "policy/fmap.h"
#include "policy/learner.h"

#define DEFAULT_PRIOR_MEAN 0.5
#define DEFAULT_BASE_WEIGHT 1.0
#define DEFAULT_GAMMA 1000.0
#define DEFAULT_UCB_ALPHA 0.5

struct pol_head {
    pol_head_config cfg;              /* automatic values resolved */
    const pol_learner_ops *learner;   /* the table entry of cfg.learner */
    const pol_explorer_ops *explorer; /* the table entry of cfg.explorer */
    void *impl;                       /* the learner's state, owned; through learner only */
    pol_fmap *fmap;                   /* the feature map, owned; NULL for linear */
    pol_amap *amap;                   /* an open action set's map, owned; else NULL */
    float *mapped;                    /* [map len] learn()'s mapped context (exclusive) */
    uint64_t n_updates;
};

const char *pol_learner_name(pol_learner l)
{
    const pol_learner_ops *ops = pol_learner_ops_of(l);
    return ops != NULL ? ops->name : "unknown";
}

const char *pol_explorer_name(pol_explorer x)
{
    const pol_explorer_ops *ops = pol_explorer_ops_of(x);
    return ops != NULL ? ops->name : "unknown";
}

bool pol_learner_from_name(const char *name, pol_learner *out)
{
    const pol_learner_ops *ops = NULL;
    for (unsigned i = 0; (ops = pol_learner_ops_of((pol_learner)i)) != NULL; i++) {
        if (strcmp(name, ops->name) == 0) {
            *out = (pol_learner)i;
            return true;
        }
    }
    return false;
}

bool pol_explorer_from_name(const char *name, pol_explorer *out)
{
    const pol_explorer_ops *ops = NULL;
    for (unsigned i = 0; (ops = pol_explorer_ops_of((pol_explorer)i)) != NULL; i++) {
        if (strcmp(name, ops->name) == 0) {
            *out = (pol_explorer)i;
            return true;
        }
    }
    return false;
}

void pol_head_config_default(pol_head_config *cfg, uint32_t dim, uint32_t n_actions)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->dim = dim;
    cfg->n_actions = n_actions;
    cfg->learner = POL_LEARNER_RIDGE;
    cfg->explorer = POL_EXPLORE_AUTO;
    cfg->epsilon = -1.0;
    cfg->temperature = 1.0;
    cfg->learning_rate = 0.0;
    cfg->lambda = 0.0;
    cfg->prior_mean = DEFAULT_PRIOR_MEAN;
    cfg->base_weight = DEFAULT_BASE_WEIGHT;
    cfg->gamma = DEFAULT_GAMMA;
    cfg->ucb_alpha = DEFAULT_UCB_ALPHA;
    cfg->kl = POL_PG_DEFAULT_KL;
    cfg->features = POL_FEATURES_LINEAR;
}

/*
 * Resolve automatic values from the learner's table entry; false if the
 * combination is invalid. An explorer may need logits (softmax) or
 * posterior widths (ucb) that only some learners give.
 */
static bool resolve(pol_head_config *c)
{
    const pol_learner_ops *l = pol_learner_ops_of(c->learner);
    if (l == NULL) {
        return false;
    }
    if (c->explorer == POL_EXPLORE_AUTO) {
        c->explorer = l->default_explorer;
    }
    const pol_explorer_ops *x = pol_explorer_ops_of(c->explorer);
    if (x == NULL || x->pmf == NULL || (x->needs_logits && !l->logits) ||
        (x->needs_width && !l->width)) {
        return false;
    }
    if (c->epsilon < 0.0) {
        c->epsilon = l->default_epsilon;
    }
    if (c->learning_rate <= 0.0) {
        c->learning_rate = l->default_learning_rate;
    }
    /* rff settings only mean something for rff: zero otherwise, so configs compare equal. */
    bool rff = c->features == POL_FEATURES_RFF || c->features == POL_FEATURES_RFF_NORM;
    if (!rff) {
        c->rff_dim = 0;
        c->bandwidth = 0.0;
    } else {
        c->rff_dim = c->rff_dim == 0 ? POL_RFF_DEFAULT_DIM : c->rff_dim;
        c->bandwidth = c->bandwidth <= 0.0 ? POL_RFF_DEFAULT_BANDWIDTH : c->bandwidth;
        /*
         * A context the learner takes exactly keeps it exact: ridge past 256
         * features projects all of them to 128, which cost dna 0.10 of
         * accuracy with 128 cosines (docs/algorithms.md, "Feature maps").
         */
        uint32_t room = l->exact_max > c->dim ? l->exact_max - c->dim : 0;
        if (room > 0 && c->rff_dim > room) {
            c->rff_dim = room;
        }
    }
    bool ok = c->dim >= 1 && c->dim <= BASE_DIM_MAX;
    if (c->action_dim > 0) {
        /* An open action set: one shared model over the action map, linear in it. */
        pol_amap_config ac = {.dim = c->dim,
                              .action_dim = c->action_dim,
                              .interaction_dim = c->interaction_dim,
                              .budget = POL_AMAP_BUDGET};
        uint32_t len = 0;
        ok = ok && l->open && c->features == POL_FEATURES_LINEAR && c->n_actions == 1 &&
             pol_amap_resolve(&ac, &c->interaction_dim, &len) == BASE_OK;
    } else {
        c->interaction_dim = 0;
    }
    ok = ok && c->n_actions >= 1 && c->n_actions <= BASE_ACTIONS_MAX;
    ok = ok && isfinite(c->epsilon) && c->epsilon <= 1.0;
    ok = ok && isfinite(c->temperature) && c->temperature > 0.0;
    ok = ok && isfinite(c->learning_rate);
    ok = ok && isfinite(c->lambda) && isfinite(c->prior_mean) && isfinite(c->base_weight);
    ok = ok && isfinite(c->gamma) && c->gamma > 0.0;
    ok = ok && isfinite(c->ucb_alpha) && c->ucb_alpha >= 0.0;
    ok = ok && isfinite(c->kl) && c->kl >= 0.0;
    return ok;
}

bool pol_head_config_check(const pol_head_config *cfg, char *why, size_t len)
{
    pol_head_config c = *cfg;
    const pol_learner_ops *l = pol_learner_ops_of(c.learner);
    pol_explorer xe =
        c.explorer == POL_EXPLORE_AUTO && l != NULL ? l->default_explorer : c.explorer;
    const pol_explorer_ops *x = pol_explorer_ops_of(xe);
    if (l != NULL && x != NULL && x->needs_logits && !l->logits) {
        snprintf(why, len,
                 "explorer %s needs scores on a logit scale, which learner %s does not "
                 "give",
                 x->name, l->name);
        return false;
    }
    if (l != NULL && x != NULL && x->needs_width && !l->width) {
        snprintf(why, len, "explorer %s needs posterior widths, which learner %s does not give",
                 x->name, l->name);
        return false;
    }
    if (c.features == POL_FEATURES_QUAD && c.dim > POL_QUAD_DIM_MAX) {
        snprintf(why, len, "features quad is only for dim <= %d, not %u", POL_QUAD_DIM_MAX, c.dim);
        return false;
    }
    if (!resolve(&c)) {
        snprintf(why, len, "learner %s with explorer %s and these settings cannot make a head",
                 pol_learner_name(c.learner), pol_explorer_name(xe));
        return false;
    }
    return true;
}

base_err pol_head_new(const pol_head_config *cfg, pol_head **out)
{
    base_err e = BASE_OK;
    pol_head *h = base_alloc_zero(1, sizeof(*h));
    if (h == NULL) {
        return BASE_ENOMEM;
    }
    h->cfg = *cfg;
    if (!resolve(&h->cfg)) {
        e = BASE_EINVAL;
        goto fail;
    }
    h->learner = pol_learner_ops_of(h->cfg.learner);
    h->explorer = pol_explorer_ops_of(h->cfg.explorer);
    pol_fmap_config fc = {
        .kind = h->cfg.features,
        .dim = h->cfg.dim,
        .rff_dim = h->cfg.rff_dim,
        .bandwidth = h->cfg.bandwidth,
        .seed = h->cfg.seed,
    };
    pol_amap_config ac = {.dim = h->cfg.dim,
                          .action_dim = h->cfg.action_dim,
                          .interaction_dim = h->cfg.interaction_dim,
                          .seed = h->cfg.seed};
    uint32_t len = h->cfg.dim;
    if (h->cfg.features != POL_FEATURES_LINEAR || h->cfg.action_dim > 0) {
        if (h->cfg.action_dim > 0) {
            e = pol_amap_new(&ac, &h->amap);
            len = e == BASE_OK ? pol_amap_len(h->amap) : 0;
        } else {
            e = pol_fmap_new(&fc, &h->fmap);
            len = e == BASE_OK ? pol_fmap_len(h->fmap) : 0;
        }
        if (e != BASE_OK) {
            goto fail;
        }
        h->mapped = base_alloc_array(len, sizeof(float));
        if (h->mapped == NULL) {
            e = BASE_ENOMEM;
            goto fail;
        }
    }
    /* The learner sees the mapped context; it may resolve more of the config (ridge: lambda). */
    pol_head_config lc = h->cfg;
    lc.dim = len;
    e = h->learner->new (&lc, &h->impl);
    if (e != BASE_OK) {
        goto fail;
    }
    lc.dim = h->cfg.dim;
    h->cfg = lc;
    *out = h;
    return BASE_OK;
fail:
    pol_head_free(h);
    return e;
}

void pol_head_free(pol_head *h)
{
    if (h != NULL) {
        if (h->learner != NULL) {
            h->learner->free(h->impl);
        }
        base_free(h->mapped);
        pol_fmap_free(h->fmap);
        pol_amap_free(h->amap);
        base_free(h);
    }
}

static base_err check_candidates(const pol_head *h, uint32_t n, const uint32_t *action)
{
    if (n == 0 || n > BASE_CAND_MAX) {
        return BASE_EINVAL;
    }
    for (uint32_t c = 0; c < n; c++) {
        if (action[c] >= h->cfg.n_actions) {
            return BASE_EINVAL;
        }
    }
    return BASE_OK;
}

/* @view's explorer settings over @h's learner, resolved; false if they cannot serve. */
static bool view_config(const pol_head *h, const pol_head_config *view, pol_head_config *out)
{
    *out = h->cfg;
    out->explorer =
        view->explorer == POL_EXPLORE_AUTO ? h->learner->default_explorer : view->explorer;
    out->epsilon = view->epsilon < 0.0 ? h->learner->default_epsilon : view->epsilon;
    out->gamma = view->gamma;
    out->ucb_alpha = view->ucb_alpha;
    const pol_explorer_ops *x = pol_explorer_ops_of(out->explorer);
    return x != NULL && x->pmf != NULL && !(x->needs_logits && !h->learner->logits) &&
           !(x->needs_width && !h->learner->width) && isfinite(out->epsilon) &&
           out->epsilon >= 0.0 && out->epsilon <= 1.0 && isfinite(out->gamma) && out->gamma > 0.0 &&
           isfinite(out->ucb_alpha) && out->ucb_alpha >= 0.0;
}

/*
 * What the learner scores for @n candidates in context @x: x itself, its
 * feature map's output in @z [POL_FMAP_OUT_MAX], or for an open action set
 * one action-map row per candidate in *out_rows (heap, the caller frees;
 * x is followed by the candidates' features). *out_x and *out_stride are
 * the learner's x and x_stride.
 */
static base_err learner_input(const pol_head *h, const float *x, uint32_t n, float *z,
                              float **out_rows, const float **out_x, uint32_t *out_stride)
{
    base_err e = BASE_OK;
    *out_rows = NULL;
    *out_x = x;
    *out_stride = 0;
    if (h->amap != NULL) {
        uint32_t len = pol_amap_len(h->amap);
        float *rows = base_alloc_array((size_t)n * len, sizeof(float));
        if (rows == NULL) {
            return BASE_ENOMEM;
        }
        e = pol_amap_apply(h->amap, x, x + h->cfg.dim, n, rows);
        *out_rows = rows;
        *out_x = rows;
        *out_stride = len;
    } else if (h->fmap != NULL) {
        e = pol_fmap_apply(h->fmap, x, z);
        *out_x = z;
    }
    return e;
}

/*
 * Scores, then the explorer's pmf, served with @xc's explorer settings (@h's
 * own or a view's, resolved). With @score, the learner's scores are kept
 * there and @s is left holding the explorer's own (ucb adds its bonus).
 */
static base_err serve(const pol_head *h, const pol_head_config *xc, const float *x, uint32_t n_cand,
                      const uint32_t *action, const float *base_logit, double *s, float *out_pmf,
                      float *out_score)
{
    /* On the stack, not in h: concurrent pmf calls share h read-only. 8 + 16 KiB. */
    double w[BASE_CAND_MAX];
    const pol_explorer_ops *xo = pol_explorer_ops_of(xc->explorer);
    float z[POL_FMAP_OUT_MAX];
    float *rows = NULL;
    uint32_t stride = 0;
    base_err e = check_candidates(h, n_cand, action);
    if (e == BASE_OK) {
        e = learner_input(h, x, n_cand, z, &rows, &x, &stride);
    }
    /* Widths only for an explorer that needs them: resolve() saw the learner gives them. */
    double *width = xo->needs_width ? w : NULL;
    if (e == BASE_OK) {
        e = h->learner->scores(h->impl, x, stride, n_cand, action, base_logit, s, width);
    }
    base_free(rows);
    if (e != BASE_OK) {
        return e;
    }
    if (out_score != NULL) {
        for (uint32_t c = 0; c < n_cand; c++) {
            out_score[c] = (float)s[c];
        }
    }
    xo->pmf(s, width, n_cand, xc, out_pmf);
    return BASE_OK;
}

bool pol_head_view_ok(const pol_head *h, const pol_head_config *view)
{
    pol_head_config c;
    return view_config(h, view, &c);
}

bool pol_head_same_learner(const pol_head_config *a, const pol_head_config *b)
{
    pol_head_config x = *a, y = *b;
    x.explorer = y.explorer = POL_EXPLORE_AUTO;
    x.epsilon = y.epsilon = 0.0;
    x.gamma = y.gamma = 0.0;
    x.ucb_alpha = y.ucb_alpha = 0.0;
    /* Field by field: the struct may have padding. */
    return x.dim == y.dim && x.n_actions == y.n_actions && x.learner == y.learner &&
           x.action_dim == y.action_dim && x.interaction_dim == y.interaction_dim &&
           x.features == y.features && x.rff_dim == y.rff_dim && x.bandwidth == y.bandwidth &&
           x.temperature == y.temperature && x.learning_rate == y.learning_rate &&
           x.lambda == y.lambda && x.prior_mean == y.prior_mean && x.base_weight == y.base_weight &&
           x.kl == y.kl && x.seed == y.seed;
}

base_err pol_head_pmf_views(const pol_head *h, uint32_t n_views, const pol_head_config *views,
                            const float *x, uint32_t n_cand, const uint32_t *action,
                            const float *base_logit, float *out_pmfs, float *out_score)
{
    double base[BASE_CAND_MAX], s[BASE_CAND_MAX], w[BASE_CAND_MAX];
    float z[POL_FMAP_OUT_MAX];
    bool need_width = false;
    pol_head_config vc;
    if (n_views == 0) {
        return BASE_EINVAL;
    }
    for (uint32_t v = 0; v < n_views; v++) {
        if (!view_config(h, &views[v], &vc)) {
            return BASE_EINVAL;
        }
        need_width = need_width || pol_explorer_ops_of(vc.explorer)->needs_width;
    }
    float *rows = NULL;
    uint32_t stride = 0;
    base_err e = check_candidates(h, n_cand, action);
    if (e == BASE_OK) {
        e = learner_input(h, x, n_cand, z, &rows, &x, &stride);
    }
    double *width = need_width ? w : NULL;
    if (e == BASE_OK) {
        e = h->learner->scores(h->impl, x, stride, n_cand, action, base_logit, base, width);
    }
    base_free(rows);
    if (e != BASE_OK) {
        return e;
    }
    if (out_score != NULL) {
        for (uint32_t c = 0; c < n_cand; c++) {
            out_score[c] = (float)base[c];
        }
    }
    for (uint32_t v = 0; v < n_views; v++) {
        (void)view_config(h, &views[v], &vc);
        const pol_explorer_ops *xo = pol_explorer_ops_of(vc.explorer);
        memcpy(s, base, (size_t)n_cand * sizeof(double));
        xo->pmf(s, xo->needs_width ? width : NULL, n_cand, &vc, out_pmfs + (size_t)v * n_cand);
    }
    return BASE_OK;
}

base_err pol_head_pmf(const pol_head *h, const float *x, uint32_t n_cand, const uint32_t *action,
                      const float *base_logit, float *out_pmf)
{
    double s[BASE_CAND_MAX];
    return serve(h, &h->cfg, x, n_cand, action, base_logit, s, out_pmf, NULL);
}

static base_err explain(const pol_head *h, const pol_head_config *xc, const float *x,
                        uint32_t n_cand, const uint32_t *action, const float *base_logit,
                        const pol_breakdown *out)
{
    double s[BASE_CAND_MAX];
    base_err e = serve(h, xc, x, n_cand, action, base_logit, s, out->pmf, out->head_score);
    if (e != BASE_OK) {
        return e;
    }
    /* s now holds the explorer's scores: the top ones are what a greedy policy would serve. */
    double best = s[0];
    for (uint32_t c = 1; c < n_cand; c++) {
        best = s[c] > best ? s[c] : best;
    }
    float floor = (float)(xc->epsilon / (double)n_cand);
    for (uint32_t c = 0; c < n_cand; c++) {
        out->explore[c] = s[c] == best ? floor : out->pmf[c];
    }
    return BASE_OK;
}

base_err pol_head_explain(const pol_head *h, const float *x, uint32_t n_cand,
                          const uint32_t *action, const float *base_logit, const pol_breakdown *out)
{
    return explain(h, &h->cfg, x, n_cand, action, base_logit, out);
}

base_err pol_head_explain_view(const pol_head *h, const pol_head_config *view, const float *x,
                               uint32_t n_cand, const uint32_t *action, const float *base_logit,
                               const pol_breakdown *out)
{
    pol_head_config vc;
    if (!view_config(h, view, &vc)) {
        return BASE_EINVAL;
    }
    return explain(h, &vc, x, n_cand, action, base_logit, out);
}

uint32_t pol_sample(const float *pmf, uint32_t n, const char *event_id, uint64_t seed)
{
    double u = base_u64_to_unit(base_hash64(event_id, strlen(event_id), seed));
    double cum = 0.0;
    uint32_t last_pos = 0;
    uint32_t pick = UINT32_MAX;
    for (uint32_t c = 0; c < n; c++) {
        if (pmf[c] > 0.0f) {
            last_pos = c;
            cum += (double)pmf[c];
            if (pick == UINT32_MAX && u < cum) {
                pick = c;
            }
        }
    }
    /* The float pmf may sum to slightly under 1: u past the sum takes the last positive. */
    return pick == UINT32_MAX ? last_pos : pick;
}

static base_err learn(pol_head *h, const base_decision *d, double reward, const double *rewards)
{
    if (d->dim != h->cfg.dim || d->chosen >= d->n_cand || d->action_dim != h->cfg.action_dim) {
        return BASE_EINVAL;
    }
    base_err e = check_candidates(h, d->n_cand, d->action);
    if (e != BASE_OK) {
        return e;
    }
    if (rewards == NULL) {
        double p = (double)d->pmf[d->chosen];
        if (!isfinite(p) || !isfinite(reward)) {
            return BASE_ENUMERIC;
        }
        if (!(p > 0.0 && p <= 1.0)) {
            return BASE_EINVAL;
        }
    }
    base_decision md;
    float *rows = NULL;
    uint32_t stride = 0;
    if (h->amap != NULL && rewards == NULL) {
        /* Bandit feedback needs only the chosen candidate's row. */
        md = *d;
        md.embedding = h->mapped;
        md.dim = pol_amap_len(h->amap);
        e = pol_amap_apply(h->amap, d->embedding, d->features + (size_t)d->chosen * d->action_dim,
                           1, h->mapped);
        d = &md;
    } else if (h->amap != NULL || h->fmap != NULL) {
        /* A shallow copy that points at the mapped context; the arrays stay d's. */
        const float *x = NULL;
        md = *d;
        e = learner_input(h, d->embedding, d->n_cand, h->mapped, &rows, &x, &stride);
        md.embedding = rows != NULL ? rows : h->mapped; /* what x points at */
        md.dim = h->amap != NULL ? stride : pol_fmap_len(h->fmap);
        d = &md;
    }
    if (e == BASE_OK) {
        e = h->learner->learn(h->impl, d, stride, reward, rewards);
    }
    base_free(rows);
    if (e == BASE_OK) {
        h->n_updates++;
    }
    return e;
}

base_err pol_head_learn(pol_head *h, const base_decision *d, double reward)
{
    return learn(h, d, reward, NULL);
}

base_err pol_head_learn_full(pol_head *h, const base_decision *d, const double *rewards)
{
    return learn(h, d, 0.0, rewards);
}

uint64_t pol_head_n_updates(const pol_head *h)
{
    return h->n_updates;
}

const pol_head_config *pol_head_get_config(const pol_head *h)
{
    return &h->cfg;
}

uint32_t pol_head_dim(const pol_head *h)
{
    return h->cfg.dim;
}

uint32_t pol_head_n_actions(const pol_head *h)
{
    return h->cfg.n_actions;
}

const float *pol_head_weights(const pol_head *h, uint32_t a)
{
    return h->learner->weights(h->impl, a);
}

uint64_t pol_head_checksum(const pol_head *h)
{
    return h->learner->checksum(h->impl, BASE_FNV_OFFSET);
}

static void settings(const pol_head *h, const pol_head_config *xc, base_head_settings *st);

static base_err snapshot(const pol_head *h, const pol_head_config *xc, base_snapshot **out)
{
    base_snapshot *m =
        base_snapshot_new(h->learner->n_params(h->impl), h->learner->n_state(h->impl));
    if (m == NULL) {
        return BASE_ENOMEM;
    }
    (void)base_strlcpy(m->learner, h->learner->name, sizeof(m->learner));
    m->dim = h->cfg.dim;
    m->n_actions = h->cfg.n_actions;
    m->n_updates = h->n_updates;
    settings(h, xc, &m->settings);
    h->learner->export(h->impl, m);
    *out = m;
    return BASE_OK;
}

/* The settings @h serves with under @xc's explorer settings, as a snapshot records them. */
static void settings(const pol_head *h, const pol_head_config *xc, base_head_settings *st)
{
    memset(st, 0, sizeof(*st));
    (void)base_strlcpy(st->explorer, pol_explorer_name(xc->explorer), sizeof(st->explorer));
    st->epsilon = xc->epsilon;
    st->temperature = h->cfg.temperature;
    st->learning_rate = h->cfg.learning_rate;
    st->lambda = h->cfg.lambda;
    st->prior_mean = h->cfg.prior_mean;
    st->base_weight = h->cfg.base_weight;
    st->kl = h->cfg.kl;
    st->gamma = xc->gamma;
    st->ucb_alpha = xc->ucb_alpha;
    st->seed = h->cfg.seed;
    (void)base_strlcpy(st->features, pol_features_name(h->cfg.features), sizeof(st->features));
    st->rff_dim = h->cfg.rff_dim;
    st->bandwidth = h->cfg.bandwidth;
    st->action_dim = h->cfg.action_dim;
    st->interaction_dim = h->cfg.interaction_dim;
}

void pol_head_settings(const pol_head *h, base_head_settings *out)
{
    settings(h, &h->cfg, out);
}

base_err pol_head_snapshot(const pol_head *h, base_snapshot **out)
{
    return snapshot(h, &h->cfg, out);
}

base_err pol_head_snapshot_view(const pol_head *h, const pol_head_config *view, base_snapshot **out)
{
    pol_head_config vc;
    if (!view_config(h, view, &vc)) {
        return BASE_EINVAL;
    }
    return snapshot(h, &vc, out);
}

/*
 * The feature map @st records ("" and no settings at all: linear), resolved
 * as resolve() does; false if it names no map.
 */
static bool recorded_features(const base_head_settings *st, pol_head_config *c)
{
    if (memchr(st->features, '\0', sizeof(st->features)) == NULL) {
        return false;
    }
    c->features = POL_FEATURES_LINEAR;
    c->rff_dim = 0;
    c->bandwidth = 0.0;
    if (st->features[0] == '\0') {
        return true;
    }
    if (!pol_features_from_name(st->features, &c->features)) {
        return false;
    }
    if (c->features == POL_FEATURES_RFF || c->features == POL_FEATURES_RFF_NORM) {
        c->rff_dim = st->rff_dim;
        c->bandwidth = st->bandwidth;
    }
    return true;
}

/*
 * True if @m's parameters live in the space of @h's feature map: the same
 * map, for rff the same draw (rff_dim, bandwidth), and the same seed when
 * anything @h learns in was drawn from it (rff, an open action set's
 * projections, the learner's own projection of a long context). A snapshot
 * without settings predates feature maps: linear.
 */
static bool same_features(const pol_head *h, const base_snapshot *m)
{
    pol_head_config c;
    if (!recorded_features(&m->settings, &c) || c.features != h->cfg.features) {
        return false;
    }
    bool rff = c.features == POL_FEATURES_RFF || c.features == POL_FEATURES_RFF_NORM;
    if (rff && (c.rff_dim != h->cfg.rff_dim || c.bandwidth != h->cfg.bandwidth)) {
        return false;
    }
    bool seeded =
        rff || h->amap != NULL || (h->learner->seeded != NULL && h->learner->seeded(h->impl));
    return !seeded || m->settings.seed == h->cfg.seed;
}

base_err pol_head_restore(pol_head *h, const base_snapshot *m)
{
    bool learner_ok = memchr(m->learner, '\0', sizeof(m->learner)) != NULL &&
                      strcmp(m->learner, h->learner->name) == 0;
    if (!learner_ok || m->dim != h->cfg.dim || m->n_actions != h->cfg.n_actions ||
        !same_features(h, m) || m->settings.action_dim != h->cfg.action_dim ||
        m->settings.interaction_dim != h->cfg.interaction_dim) {
        return BASE_EINVAL;
    }
    base_err e = h->learner->import(h->impl, m);
    if (e == BASE_OK) {
        h->n_updates = m->n_updates;
    }
    return e;
}

base_err pol_head_config_from_snapshot(const base_snapshot *m, pol_head_config *out)
{
    const base_head_settings *st = &m->settings;
    pol_head_config c;

    pol_head_config_default(&c, m->dim, m->n_actions);
    if (memchr(m->learner, '\0', sizeof(m->learner)) == NULL ||
        !pol_learner_from_name(m->learner, &c.learner) ||
        memchr(st->explorer, '\0', sizeof(st->explorer)) == NULL || st->explorer[0] == '\0' ||
        !pol_explorer_from_name(st->explorer, &c.explorer) || !recorded_features(st, &c)) {
        return BASE_EINVAL;
    }
    c.epsilon = st->epsilon;
    c.temperature = st->temperature;
    c.learning_rate = st->learning_rate;
    c.lambda = st->lambda;
    c.prior_mean = st->prior_mean;
    c.base_weight = st->base_weight;
    c.kl = st->kl;
    c.gamma = st->gamma;
    c.ucb_alpha = st->ucb_alpha;
    c.seed = st->seed;
    c.action_dim = st->action_dim;
    c.interaction_dim = st->interaction_dim;
    *out = c;
    return BASE_OK;
}

base_err pol_head_from_snapshot(const base_snapshot *m, pol_head **out)
{
    pol_head_config c;
    pol_head *h = NULL;
    base_err e = pol_head_config_from_snapshot(m, &c);

    if (e == BASE_OK) {
        e = pol_head_new(&c, &h);
    }
    if (e == BASE_OK) {
        e = pol_head_restore(h, m);
    }
    if (e != BASE_OK) {
        pol_head_free(h);
        return e;
    }
    *out = h;
    return BASE_OK;
}
