#include "policy/head.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"

/*
 * The "pg" learner: importance-weighted softmax policy gradient with a
 * reward baseline and per-coordinate AdaGrad steps (Duchi, Hazan, Singer
 * 2011). The update rule, its defaults and the determinism argument are in
 * docs/algorithms.md; keep the two in step.
 */

#define PG_LEARNER "pg"
#define PG_DEFAULT_LR 1.0      /* AdaGrad base step; chosen by the learning test */
#define PG_DEFAULT_EPSILON 0.05
#define PG_IW_MAX 10.0         /* importance weights are clipped to [0, PG_IW_MAX] */
#define PG_BASELINE_RATE 0.02  /* EMA step of the reward baseline */
#define PG_ADAGRAD_DELTA 1e-8  /* keeps the step finite while the accumulator is 0 */
#define PG_GRAD_MAX 1e150      /* |g_k * x_j| past this could overflow g^2: refuse */
#define PG_STATE_HEAD 2        /* state[0] = EMA numerator, state[1] = EMA mass */

struct pol_head {
    pol_head_config cfg;
    size_t stride;   /* dim + 1: one row of weights, bias last */
    size_t n_params; /* n_actions * stride */
    float *w;        /* [n_actions x stride] action-major, bias last */
    double *acc;     /* [n_actions x stride] AdaGrad sums of squared gradients, >= 0 */
    double ema_num;  /* bias-corrected EMA of rewards: baseline = ema_num / ema_mass */
    double ema_mass; /* 1 - (1 - PG_BASELINE_RATE)^n_updates, in [0, 1] */
    uint64_t n_updates;
    /* scratch for pol_head_learn() only, which the caller runs exclusively */
    double *q;              /* [BASE_CAND_MAX] softmax over the candidates */
    double *g_action;       /* [n_actions] d(objective)/d(score) summed per action */
    unsigned char *seen;    /* [n_actions] 1 while the action is in touched[] */
    uint32_t *touched;      /* [BASE_CAND_MAX] distinct actions of this example */
};

void pol_head_config_default(pol_head_config *cfg, uint32_t dim, uint32_t n_actions)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->dim = dim;
    cfg->n_actions = n_actions;
    cfg->epsilon = PG_DEFAULT_EPSILON;
    cfg->temperature = 1.0;
    cfg->learning_rate = PG_DEFAULT_LR;
    cfg->seed = 0;
}

static bool config_valid(const pol_head_config *cfg)
{
    bool ok = cfg->dim >= 1 && cfg->dim <= BASE_DIM_MAX;
    ok = ok && cfg->n_actions >= 1 && cfg->n_actions <= BASE_ACTIONS_MAX;
    ok = ok && isfinite(cfg->epsilon) && cfg->epsilon >= 0.0 && cfg->epsilon <= 1.0;
    ok = ok && isfinite(cfg->temperature) && cfg->temperature > 0.0;
    ok = ok && isfinite(cfg->learning_rate) && cfg->learning_rate > 0.0;
    return ok;
}

base_err pol_head_new(const pol_head_config *cfg, pol_head **out)
{
    base_err e = BASE_OK;
    pol_head *h = NULL;
    if (!config_valid(cfg)) {
        e = BASE_EINVAL;
        goto fail;
    }
    h = base_alloc_zero(1, sizeof(*h));
    if (h == NULL) {
        e = BASE_ENOMEM;
        goto fail;
    }
    h->cfg = *cfg;
    h->stride = (size_t)cfg->dim + 1;
    h->n_params = (size_t)cfg->n_actions * h->stride;
    h->w = base_alloc_zero(h->n_params, sizeof(float));
    h->acc = base_alloc_zero(h->n_params, sizeof(double));
    h->q = base_alloc_zero(BASE_CAND_MAX, sizeof(double));
    h->g_action = base_alloc_zero(cfg->n_actions, sizeof(double));
    h->seen = base_alloc_zero(cfg->n_actions, 1);
    h->touched = base_alloc_zero(BASE_CAND_MAX, sizeof(uint32_t));
    if (h->w == NULL || h->acc == NULL || h->q == NULL || h->g_action == NULL ||
        h->seen == NULL || h->touched == NULL) {
        e = BASE_ENOMEM;
        goto fail;
    }
    *out = h;
    h = NULL;
fail:
    pol_head_free(h); /* NULL on success */
    return e;
}

void pol_head_free(pol_head *h)
{
    if (h != NULL) {
        base_free(h->touched);
        base_free(h->seen);
        base_free(h->g_action);
        base_free(h->q);
        base_free(h->acc);
        base_free(h->w);
        base_free(h);
    }
}

/* a . b over n floats; float accumulation, vectorised (DESIGN.md section 11). */
static float dot(const float *a, const float *b, size_t n)
{
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (size_t j = 0; j < n; j++) {
        s += a[j] * b[j];
    }
    return s;
}

/*
 * Scores s(c) = base_logit[c] / T + w_a . x + b_a into @out_s ([n], double).
 * Non-finite inputs need no separate pass over x: a NaN or Inf in x, a base
 * logit or a weight makes the affected score NaN or Inf (0 * Inf is NaN), so
 * checking the n scores covers them, as well as overflow.
 */
static base_err score_all(const pol_head *h, const float *x, uint32_t n, const uint32_t *action,
                          const float *base_logit, double *out_s)
{
    base_err e = BASE_OK;
    if (n == 0 || n > BASE_CAND_MAX) {
        e = BASE_EINVAL;
        goto out;
    }
    for (uint32_t c = 0; c < n; c++) {
        if (action[c] >= h->cfg.n_actions) {
            e = BASE_EINVAL;
            goto out;
        }
    }
    for (uint32_t c = 0; c < n; c++) {
        const float *wa = h->w + (size_t)action[c] * h->stride;
        double s = (double)base_logit[c] / h->cfg.temperature +
                   (double)dot(wa, x, h->cfg.dim) + (double)wa[h->cfg.dim];
        if (!isfinite(s)) {
            e = BASE_ENUMERIC;
            goto out;
        }
        out_s[c] = s;
    }
out:
    return e;
}

/* In place: s ([n], finite) becomes softmax(s). Subtracting the max keeps exp() <= 1. */
static void softmax(double *s, uint32_t n)
{
    double m = s[0];
    for (uint32_t c = 1; c < n; c++) {
        m = s[c] > m ? s[c] : m;
    }
    double z = 0.0;
    for (uint32_t c = 0; c < n; c++) {
        s[c] = exp(s[c] - m);
        z += s[c];
    }
    /* z >= 1: the maximum contributes exp(0). */
    for (uint32_t c = 0; c < n; c++) {
        s[c] /= z;
    }
}

base_err pol_head_pmf(const pol_head *h, const float *x, uint32_t n_cand,
                      const uint32_t *action, const float *base_logit, float *out_pmf)
{
    /* On the stack, not in h: concurrent pmf calls share h read-only. 8 KiB. */
    double s[BASE_CAND_MAX];
    base_err e = score_all(h, x, n_cand, action, base_logit, s);
    if (e == BASE_OK) {
        softmax(s, n_cand);
        double eps = h->cfg.epsilon;
        double eps_share = eps / (double)n_cand;
        for (uint32_t c = 0; c < n_cand; c++) {
            out_pmf[c] = (float)((1.0 - eps) * s[c] + eps_share);
        }
    }
    return e;
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

/* Largest |x_j|; x is known finite. */
static double abs_max(const float *x, size_t n)
{
    float m = 0.0f;
    for (size_t j = 0; j < n; j++) {
        float a = fabsf(x[j]);
        m = a > m ? a : m;
    }
    return (double)m;
}

/*
 * One AdaGrad ascent step on row @a with d(objective)/d(score) = @g:
 * the gradient is g * x for the weights and g for the bias.
 * Each step moves a coordinate by at most lr, since acc >= g_j^2.
 */
static void adagrad_row(pol_head *h, uint32_t a, double g, const float *x)
{
    size_t dim = h->cfg.dim;
    double lr = h->cfg.learning_rate;
    float *restrict wa = h->w + (size_t)a * h->stride;
    double *restrict ga = h->acc + (size_t)a * h->stride;
#pragma omp simd
    for (size_t j = 0; j < dim; j++) {
        double gj = g * (double)x[j];
        ga[j] += gj * gj;
        wa[j] += (float)(lr * gj / (sqrt(ga[j]) + PG_ADAGRAD_DELTA));
    }
    ga[dim] += g * g;
    wa[dim] += (float)(lr * g / (sqrt(ga[dim]) + PG_ADAGRAD_DELTA));
}

base_err pol_head_learn(pol_head *h, const base_decision *d, double reward)
{
    base_err e = BASE_OK;
    uint32_t n = d->n_cand;
    if (d->dim != h->cfg.dim || n == 0 || n > BASE_CAND_MAX || d->chosen >= n) {
        e = BASE_EINVAL;
        goto out;
    }
    double p = (double)d->pmf[d->chosen];
    if (!isfinite(reward) || !isfinite(p)) {
        e = BASE_ENUMERIC;
        goto out;
    }
    if (!(p > 0.0 && p <= 1.0)) {
        e = BASE_EINVAL;
        goto out;
    }
    e = score_all(h, d->embedding, n, d->action, d->base_logit, h->q);
    if (e != BASE_OK) {
        goto out;
    }
    double *q = h->q;
    softmax(q, n);

    /*
     * Baseline from rewards before this one, so it does not depend on this
     * example's action; any such baseline leaves the gradient unbiased.
     */
    double baseline = h->ema_mass > 0.0 ? h->ema_num / h->ema_mass : 0.0;
    double adv = reward - baseline;
    double iw = q[d->chosen] / p;
    iw = iw < PG_IW_MAX ? iw : PG_IW_MAX;
    double coef = iw * adv;
    /* Per action |G_a| <= 2 |coef|: refuse before any write if (G_a x_j)^2 could overflow. */
    double xmax = abs_max(d->embedding, d->dim);
    if (!isfinite(adv) || !(fabs(coef) * (xmax > 1.0 ? xmax : 1.0) <= PG_GRAD_MAX)) {
        e = BASE_ENUMERIC;
        goto out;
    }

    if (coef != 0.0) {
        /* g_k = coef * (1[k = c] - q_k), summed per action: candidates may share one. */
        uint32_t n_touched = 0;
        for (uint32_t k = 0; k < n; k++) {
            uint32_t a = d->action[k];
            if (!h->seen[a]) {
                h->seen[a] = 1;
                h->g_action[a] = 0.0;
                h->touched[n_touched++] = a;
            }
            double ind = k == d->chosen ? 1.0 : 0.0;
            h->g_action[a] += coef * (ind - q[k]);
        }
        for (uint32_t t = 0; t < n_touched; t++) {
            uint32_t a = h->touched[t];
            if (h->g_action[a] != 0.0) {
                adagrad_row(h, a, h->g_action[a], d->embedding);
            }
            h->seen[a] = 0;
        }
    }
    h->ema_num = (1.0 - PG_BASELINE_RATE) * h->ema_num + PG_BASELINE_RATE * reward;
    h->ema_mass = (1.0 - PG_BASELINE_RATE) * h->ema_mass + PG_BASELINE_RATE;
    h->n_updates++;
out:
    return e;
}

uint64_t pol_head_n_updates(const pol_head *h)
{
    return h->n_updates;
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
    return a < h->cfg.n_actions ? h->w + (size_t)a * h->stride : NULL;
}

static uint64_t fnv1a(uint64_t hash, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        hash ^= b[i];
        hash *= 0x100000001b3ULL;
    }
    return hash;
}

uint64_t pol_head_checksum(const pol_head *h)
{
    /* Same bytes, same order as a snapshot's params then state (native byte order). */
    double head[PG_STATE_HEAD] = {h->ema_num, h->ema_mass};
    uint64_t x = 0xcbf29ce484222325ULL;
    x = fnv1a(x, h->w, h->n_params * sizeof(float));
    x = fnv1a(x, head, sizeof(head));
    x = fnv1a(x, h->acc, h->n_params * sizeof(double));
    return x;
}

base_err pol_head_snapshot(const pol_head *h, base_model **out)
{
    base_err e = BASE_OK;
    /* n_params <= BASE_ACTIONS_MAX * (BASE_DIM_MAX + 1) < 2^25: fits uint32_t. */
    base_model *m = base_model_new((uint32_t)h->n_params,
                                   (uint32_t)(h->n_params + PG_STATE_HEAD));
    if (m == NULL) {
        e = BASE_ENOMEM;
        goto out;
    }
    (void)base_strlcpy(m->learner, PG_LEARNER, sizeof(m->learner)); /* fits */
    m->dim = h->cfg.dim;
    m->n_actions = h->cfg.n_actions;
    m->n_updates = h->n_updates;
    memcpy(m->params, h->w, h->n_params * sizeof(float));
    m->state[0] = h->ema_num;
    m->state[1] = h->ema_mass;
    memcpy(m->state + PG_STATE_HEAD, h->acc, h->n_params * sizeof(double));
    *out = m;
out:
    return e;
}

/* BASE_OK if @m's values are in the learner's domain; checked before any write. */
static base_err model_values_valid(const base_model *m, size_t n_params)
{
    base_err e = BASE_OK;
    for (size_t i = 0; i < n_params && e == BASE_OK; i++) {
        e = isfinite(m->params[i]) ? BASE_OK : BASE_ENUMERIC;
    }
    for (size_t i = 0; i < n_params + PG_STATE_HEAD && e == BASE_OK; i++) {
        e = isfinite(m->state[i]) ? BASE_OK : BASE_ENUMERIC;
    }
    for (size_t i = 0; i < n_params && e == BASE_OK; i++) {
        e = m->state[PG_STATE_HEAD + i] >= 0.0 ? BASE_OK : BASE_EINVAL;
    }
    if (e == BASE_OK && !(m->state[1] >= 0.0 && m->state[1] <= 1.0)) {
        e = BASE_EINVAL;
    }
    return e;
}

base_err pol_head_restore(pol_head *h, const base_model *m)
{
    base_err e = BASE_OK;
    bool learner_ok = memchr(m->learner, '\0', sizeof(m->learner)) != NULL &&
                      strcmp(m->learner, PG_LEARNER) == 0;
    if (!learner_ok || m->dim != h->cfg.dim || m->n_actions != h->cfg.n_actions ||
        m->n_params != h->n_params || m->n_state != h->n_params + PG_STATE_HEAD) {
        e = BASE_EINVAL;
        goto out;
    }
    e = model_values_valid(m, h->n_params);
    if (e != BASE_OK) {
        goto out;
    }
    memcpy(h->w, m->params, h->n_params * sizeof(float));
    h->ema_num = m->state[0];
    h->ema_mass = m->state[1];
    memcpy(h->acc, m->state + PG_STATE_HEAD, h->n_params * sizeof(double));
    h->n_updates = m->n_updates;
out:
    return e;
}
