#include "policy/pg.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"
#include "policy/softmax.h"

/*
 * Importance-weighted softmax policy gradient with a reward baseline and
 * per-coordinate AdaGrad steps (Duchi, Hazan, Singer 2011), plus an optional
 * KL(pi || pi_base) penalty toward the base model. The update rule, its
 * defaults and the determinism argument are in docs/algorithms.md.
 */

#define PG_IW_MAX 10.0        /* importance weights are clipped to [0, PG_IW_MAX] */
#define PG_BASELINE_RATE 0.02 /* EMA step of the reward baseline */
#define PG_ADAGRAD_DELTA 1e-8 /* keeps the step finite while the accumulator is 0 */
#define PG_GRAD_MAX 1e150     /* |g_k * x_j| past this could overflow g^2: refuse */
#define PG_STATE_HEAD 2       /* state[0] = EMA numerator, state[1] = EMA mass */

struct pol_pg {
    uint32_t dim;
    uint32_t n_actions;
    double temperature;
    double lr;
    double kl;       /* weight of KL(pi || pi_base), >= 0 */
    size_t stride;   /* dim + 1: one row of weights, bias last */
    size_t n_params; /* n_actions * stride */
    float *w;        /* [n_actions x stride] action-major, bias last */
    double *acc;     /* [n_actions x stride] AdaGrad sums of squared gradients, >= 0 */
    double ema_num;  /* bias-corrected EMA of rewards: baseline = ema_num / ema_mass */
    double ema_mass; /* 1 - (1 - PG_BASELINE_RATE)^n_updates, in [0, 1] */
    /* scratch for pol_pg_learn() only, which the caller runs exclusively */
    double *q;           /* [BASE_CAND_MAX] softmax over the candidates */
    double *s;           /* [BASE_CAND_MAX] logits (kl > 0 only) */
    double *s_base;      /* [BASE_CAND_MAX] base_logit / T (kl > 0 only) */
    double *g_kl;        /* [BASE_CAND_MAX] gradient of the KL term (kl > 0 only) */
    double *g_action;    /* [n_actions] d(objective)/d(score) summed per action */
    unsigned char *seen; /* [n_actions] 1 while the action is in touched[] */
    uint32_t *touched;   /* [BASE_CAND_MAX] distinct actions of this example */
};

base_err pol_pg_new(uint32_t dim, uint32_t n_actions, double temperature, double learning_rate,
                    double kl, pol_pg **out)
{
    base_err e = BASE_OK;
    pol_pg *g = NULL;
    if (!(isfinite(learning_rate) && learning_rate > 0.0) ||
        !(isfinite(temperature) && temperature > 0.0) || !(isfinite(kl) && kl >= 0.0)) {
        e = BASE_EINVAL;
        goto fail;
    }
    g = base_alloc_zero(1, sizeof(*g));
    if (g == NULL) {
        e = BASE_ENOMEM;
        goto fail;
    }
    g->dim = dim;
    g->n_actions = n_actions;
    g->temperature = temperature;
    g->lr = learning_rate;
    g->kl = kl;
    g->stride = (size_t)dim + 1;
    g->n_params = (size_t)n_actions * g->stride;
    g->w = base_alloc_zero(g->n_params, sizeof(float));
    g->acc = base_alloc_zero(g->n_params, sizeof(double));
    g->q = base_alloc_zero(BASE_CAND_MAX, sizeof(double));
    g->s = base_alloc_zero(BASE_CAND_MAX, sizeof(double));
    g->s_base = base_alloc_zero(BASE_CAND_MAX, sizeof(double));
    g->g_kl = base_alloc_zero(BASE_CAND_MAX, sizeof(double));
    g->g_action = base_alloc_zero(n_actions, sizeof(double));
    g->seen = base_alloc_zero(n_actions, 1);
    g->touched = base_alloc_zero(BASE_CAND_MAX, sizeof(uint32_t));
    if (g->w == NULL || g->acc == NULL || g->q == NULL || g->s == NULL || g->s_base == NULL ||
        g->g_kl == NULL || g->g_action == NULL || g->seen == NULL || g->touched == NULL) {
        e = BASE_ENOMEM;
        goto fail;
    }
    *out = g;
    g = NULL;
fail:
    pol_pg_free(g); /* NULL on success */
    return e;
}

void pol_pg_free(pol_pg *g)
{
    if (g != NULL) {
        base_free(g->touched);
        base_free(g->seen);
        base_free(g->g_action);
        base_free(g->g_kl);
        base_free(g->s_base);
        base_free(g->s);
        base_free(g->q);
        base_free(g->acc);
        base_free(g->w);
        base_free(g);
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
 * Non-finite inputs need no separate pass over x: a NaN or Inf in x, a base
 * logit or a weight makes the affected score NaN or Inf (0 * Inf is NaN), so
 * checking the n scores covers them, as well as overflow.
 */
base_err pol_pg_scores(const pol_pg *g, const float *x, uint32_t n, const uint32_t *action,
                       const float *base_logit, double *out_s)
{
    for (uint32_t c = 0; c < n; c++) {
        const float *wa = g->w + (size_t)action[c] * g->stride;
        double s = (double)base_logit[c] / g->temperature + (double)dot(wa, x, g->dim) +
                   (double)wa[g->dim];
        if (!isfinite(s)) {
            return BASE_ENUMERIC;
        }
        out_s[c] = s;
    }
    return BASE_OK;
}

/*
 * log sum_c exp(s_c) = *out_m + *out_lz, with *out_m = max_c s_c (s finite, n >= 1).
 * A log-normaliser, not a softmax: it keeps no exponentials, so it does not
 * use pol_softmax_exp() and needs no scratch.
 */
static void log_norm(const double *s, uint32_t n, double *out_m, double *out_lz)
{
    double m = s[0];
    for (uint32_t c = 1; c < n; c++) {
        m = s[c] > m ? s[c] : m;
    }
    double z = 0.0;
    for (uint32_t c = 0; c < n; c++) {
        z += exp(s[c] - m);
    }
    *out_m = m;
    *out_lz = log(z);
}

/*
 * log(pi_k / pi_base_k), each log-softmax formed the same way, so equal
 * logits give exactly 0.
 */
static double log_ratio(double s, double m, double lz, double sb, double mb, double lzb)
{
    return ((s - m) - lz) - ((sb - mb) - lzb);
}

double pol_pg_kl(const double *s, const double *s_base, uint32_t n)
{
    double m, lz, mb, lzb, kl = 0.0;
    log_norm(s, n, &m, &lz);
    log_norm(s_base, n, &mb, &lzb);
    for (uint32_t k = 0; k < n; k++) {
        kl += exp((s[k] - m) - lz) * log_ratio(s[k], m, lz, s_base[k], mb, lzb);
    }
    return kl;
}

void pol_pg_kl_grad(const double *s, const double *s_base, uint32_t n, double beta, double *out_g)
{
    double m, lz, mb, lzb, kl = 0.0;
    log_norm(s, n, &m, &lz);
    log_norm(s_base, n, &mb, &lzb);
    /* out_g first holds the log ratios, then the gradient. */
    for (uint32_t k = 0; k < n; k++) {
        out_g[k] = log_ratio(s[k], m, lz, s_base[k], mb, lzb);
        kl += exp((s[k] - m) - lz) * out_g[k];
    }
    for (uint32_t k = 0; k < n; k++) {
        out_g[k] = -beta * exp((s[k] - m) - lz) * (out_g[k] - kl);
    }
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
 * One AdaGrad ascent step on row @a with d(objective)/d(score) = @gs:
 * the gradient is gs * x for the weights and gs for the bias.
 * Each step moves a coordinate by at most lr, since acc >= g_j^2.
 */
static void adagrad_row(pol_pg *g, uint32_t a, double gs, const float *x)
{
    size_t dim = g->dim;
    double lr = g->lr;
    float *restrict wa = g->w + (size_t)a * g->stride;
    double *restrict ga = g->acc + (size_t)a * g->stride;
#pragma omp simd
    for (size_t j = 0; j < dim; j++) {
        double gj = gs * (double)x[j];
        ga[j] += gj * gj;
        wa[j] += (float)(lr * gj / (sqrt(ga[j]) + PG_ADAGRAD_DELTA));
    }
    ga[dim] += gs * gs;
    wa[dim] += (float)(lr * gs / (sqrt(ga[dim]) + PG_ADAGRAD_DELTA));
}

base_err pol_pg_learn(pol_pg *g, const base_decision *d, double reward, const double *rewards)
{
    uint32_t n = d->n_cand;
    double p = (double)d->pmf[d->chosen];
    if (rewards == NULL && (!isfinite(reward) || !isfinite(p))) {
        return BASE_ENUMERIC;
    }
    if (rewards == NULL && !(p > 0.0 && p <= 1.0)) {
        return BASE_EINVAL;
    }
    base_err e = pol_pg_scores(g, d->embedding, n, d->action, d->base_logit, g->q);
    if (e != BASE_OK) {
        return e;
    }
    double *q = g->q;
    if (g->kl > 0.0) {
        /* The KL gradient needs the logits; pi_base = softmax(base_logit / T). */
        for (uint32_t k = 0; k < n; k++) {
            g->s[k] = q[k];
            g->s_base[k] = (double)d->base_logit[k] / g->temperature;
        }
        pol_pg_kl_grad(g->s, g->s_base, n, g->kl, g->g_kl);
    }
    pol_softmax(q, n, q);

    /*
     * Bandit: g_k = iw * (r - baseline) * (1[k = c] - q_k), an unbiased
     * estimate of d E[r] / d s_k under the logged pmf. Full information:
     * the exact gradient, g_k = q_k (r_k - sum_j q_j r_j). The baseline
     * comes from rewards before this one, so it does not depend on this
     * example's action; any such baseline leaves the gradient unbiased.
     * The KL term is exact for this context (no importance weight): its
     * gradient g_kl is added to g_k for every candidate.
     */
    double baseline = g->ema_mass > 0.0 ? g->ema_num / g->ema_mass : 0.0;
    double coef = 0.0, rbar = 0.0, rseen = reward;
    if (rewards == NULL) {
        double iw = q[d->chosen] / p;
        iw = iw < PG_IW_MAX ? iw : PG_IW_MAX;
        coef = iw * (reward - baseline);
    } else {
        for (uint32_t k = 0; k < n; k++) {
            if (!isfinite(rewards[k])) {
                return BASE_ENUMERIC;
            }
            rbar += q[k] * rewards[k];
        }
        coef = 1.0;
        rseen = rbar;
    }
    /* Per action |G_a| <= 2 |coef| max|r|: refuse before any write if it could overflow. */
    double xmax = abs_max(d->embedding, d->dim);
    if (!isfinite(coef) || !(fabs(coef) * (xmax > 1.0 ? xmax : 1.0) <= PG_GRAD_MAX)) {
        return BASE_ENUMERIC;
    }
    if (coef != 0.0 || g->kl > 0.0) {
        /* Summed per action: candidates may share one. */
        uint32_t n_touched = 0;
        for (uint32_t k = 0; k < n; k++) {
            uint32_t a = d->action[k];
            if (!g->seen[a]) {
                g->seen[a] = 1;
                g->g_action[a] = 0.0;
                g->touched[n_touched++] = a;
            }
            if (rewards == NULL) {
                double ind = k == d->chosen ? 1.0 : 0.0;
                g->g_action[a] += coef * (ind - q[k]);
            } else {
                g->g_action[a] += q[k] * (rewards[k] - rbar);
            }
            if (g->kl > 0.0) {
                g->g_action[a] += g->g_kl[k];
            }
        }
        /* The KL part is bounded by kl (|log ratio| + KL): check the sums before any write. */
        bool ok = true;
        for (uint32_t t = 0; t < n_touched; t++) {
            double ga = fabs(g->g_action[g->touched[t]]);
            ok = ok && isfinite(ga) && ga * (xmax > 1.0 ? xmax : 1.0) <= PG_GRAD_MAX;
        }
        for (uint32_t t = 0; t < n_touched; t++) {
            uint32_t a = g->touched[t];
            if (ok && g->g_action[a] != 0.0) {
                adagrad_row(g, a, g->g_action[a], d->embedding);
            }
            g->seen[a] = 0;
        }
        if (!ok) {
            return BASE_ENUMERIC;
        }
    }
    g->ema_num = (1.0 - PG_BASELINE_RATE) * g->ema_num + PG_BASELINE_RATE * rseen;
    g->ema_mass = (1.0 - PG_BASELINE_RATE) * g->ema_mass + PG_BASELINE_RATE;
    return BASE_OK;
}

const float *pol_pg_weights(const pol_pg *g, uint32_t a)
{
    return a < g->n_actions ? g->w + (size_t)a * g->stride : NULL;
}

uint64_t pol_pg_checksum(const pol_pg *g, uint64_t hash)
{
    /* Same bytes, same order as a snapshot's params then state (native byte order). */
    double head[PG_STATE_HEAD] = {g->ema_num, g->ema_mass};
    hash = base_fnv1a64(g->w, g->n_params * sizeof(float), hash);
    hash = base_fnv1a64(head, sizeof(head), hash);
    return base_fnv1a64(g->acc, g->n_params * sizeof(double), hash);
}

/* n_params <= BASE_ACTIONS_MAX * (BASE_DIM_MAX + 1) < 2^25: fits uint32_t. */
uint32_t pol_pg_n_params(const pol_pg *g)
{
    return (uint32_t)g->n_params;
}

uint32_t pol_pg_n_state(const pol_pg *g)
{
    return (uint32_t)(g->n_params + PG_STATE_HEAD);
}

void pol_pg_export(const pol_pg *g, base_snapshot *m)
{
    memcpy(m->params, g->w, g->n_params * sizeof(float));
    m->state[0] = g->ema_num;
    m->state[1] = g->ema_mass;
    memcpy(m->state + PG_STATE_HEAD, g->acc, g->n_params * sizeof(double));
}

base_err pol_pg_import(pol_pg *g, const base_snapshot *m)
{
    if (m->n_params != g->n_params || m->n_state != g->n_params + PG_STATE_HEAD) {
        return BASE_EINVAL;
    }
    /* Check the whole domain before any write. */
    for (size_t i = 0; i < g->n_params; i++) {
        if (!isfinite(m->params[i])) {
            return BASE_ENUMERIC;
        }
    }
    for (size_t i = 0; i < g->n_params + PG_STATE_HEAD; i++) {
        if (!isfinite(m->state[i])) {
            return BASE_ENUMERIC;
        }
    }
    for (size_t i = 0; i < g->n_params; i++) {
        if (m->state[PG_STATE_HEAD + i] < 0.0) {
            return BASE_EINVAL;
        }
    }
    if (!(m->state[1] >= 0.0 && m->state[1] <= 1.0)) {
        return BASE_EINVAL;
    }
    memcpy(g->w, m->params, g->n_params * sizeof(float));
    g->ema_num = m->state[0];
    g->ema_mass = m->state[1];
    memcpy(g->acc, m->state + PG_STATE_HEAD, g->n_params * sizeof(double));
    return BASE_OK;
}
