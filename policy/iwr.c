#include "policy/iwr.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"
#include "policy/base_prob.h"
#include "policy/kernels.h"

/*
 * Online least squares per action, following Vowpal Wabbit's default
 * update (gd.cc with --adaptive --normalized --invariant):
 * - AdaGrad (Duchi, Hazan, Singer 2011): acc_j += h g^2 x_j^2.
 * - Normalized (Ross, Mineiro, Langford 2013, NAG with sqrt rates): the rate
 *   of coordinate j is 1 / (sqrt(acc_j) s_j), s_j = max |x_j| so far, and
 *   the global step is multiplied by sqrt(t / N), t = sum h, N = sum h *
 *   sum_j (x_j / s_j)^2, so it does not grow with the number of features.
 * - Importance invariant (Karampatziakis and Langford 2011): the closed form
 *   of h infinitesimal steps, which moves the prediction by
 *   (y - pred) (1 - exp(-2 eta h M q)) and so never past y.
 * - When s_j grows from s to s', NAG shrinks the weight by s / s' (linearly,
 *   with sqrt rates). Without it a coordinate first seen with a tiny |x_j|
 *   gets a weight of order 1 / |x_j| (AdaGrad's first step is +-eta per unit
 *   of x_j / s_j) that explodes on the next ordinary value. We shrink only
 *   the learned part w_j - w0_j, so the prior weight of p_base is kept.
 */

#define IWR_STATE_HEAD 2 /* state[0] = t, state[1] = norm_sum */

struct pol_iwr {
    pol_iwr_config cfg;
    uint32_t p;      /* dim + POL_IWR_EXTRA */
    size_t n_params; /* n_actions * p */
    double *w;       /* [n_actions x p] weights: context, p_base, bias */
    float *w_f;      /* [n_actions x p] float mirror for pol_iwr_weights() */
    double *acc;     /* [n_actions x p] AdaGrad sums of h g^2 x_j^2, >= 0 */
    double *scale;   /* [p] max |phi_j| seen, shared by all actions, >= 0 */
    double t;        /* sum of importance weights of applied updates */
    double norm_sum; /* sum over applied updates of h * sum_j (phi_j / s_j)^2 */
    /* scratch for pol_iwr_learn() only, which the caller runs exclusively */
    double *phi;       /* [p] features of the candidate being learned */
    double *acc_new;   /* [p] the action's accumulators after this update */
    double *scale_new; /* [p] */
    double *delta;     /* [p] rate, then the new weight */
};

base_err pol_iwr_new(const pol_iwr_config *cfg, pol_iwr **out)
{
    base_err e = BASE_OK;
    pol_iwr *r = NULL;
    if (cfg->dim < 1 || cfg->dim > BASE_DIM_MAX || cfg->n_actions < 1 ||
        cfg->n_actions > BASE_ACTIONS_MAX ||
        !(isfinite(cfg->temperature) && cfg->temperature > 0.0) ||
        !(isfinite(cfg->learning_rate) && cfg->learning_rate > 0.0) || !isfinite(cfg->prior_mean) ||
        !isfinite(cfg->base_weight)) {
        e = BASE_EINVAL;
        goto fail;
    }
    r = base_alloc_zero(1, sizeof(*r));
    if (r == NULL) {
        e = BASE_ENOMEM;
        goto fail;
    }
    r->cfg = *cfg;
    r->p = cfg->dim + POL_IWR_EXTRA;
    r->n_params = (size_t)cfg->n_actions * r->p;
    r->w = base_alloc_zero(r->n_params, sizeof(double));
    r->w_f = base_alloc_zero(r->n_params, sizeof(float));
    r->acc = base_alloc_zero(r->n_params, sizeof(double));
    r->scale = base_alloc_zero(r->p, sizeof(double));
    r->phi = base_alloc_zero(r->p, sizeof(double));
    r->acc_new = base_alloc_zero(r->p, sizeof(double));
    r->scale_new = base_alloc_zero(r->p, sizeof(double));
    r->delta = base_alloc_zero(r->p, sizeof(double));
    if (r->w == NULL || r->w_f == NULL || r->acc == NULL || r->scale == NULL || r->phi == NULL ||
        r->acc_new == NULL || r->scale_new == NULL || r->delta == NULL) {
        e = BASE_ENOMEM;
        goto fail;
    }
    for (uint32_t a = 0; a < cfg->n_actions; a++) {
        size_t row = (size_t)a * r->p;
        r->w[row + cfg->dim] = cfg->base_weight;
        r->w[row + cfg->dim + 1] = cfg->prior_mean;
        r->w_f[row + cfg->dim] = (float)cfg->base_weight;
        r->w_f[row + cfg->dim + 1] = (float)cfg->prior_mean;
    }
    *out = r;
    r = NULL;
fail:
    pol_iwr_free(r); /* NULL on success */
    return e;
}

void pol_iwr_free(pol_iwr *r)
{
    if (r != NULL) {
        base_free(r->delta);
        base_free(r->scale_new);
        base_free(r->acc_new);
        base_free(r->phi);
        base_free(r->scale);
        base_free(r->acc);
        base_free(r->w_f);
        base_free(r->w);
        base_free(r);
    }
}

base_err pol_iwr_scores(const pol_iwr *r, const float *x, uint32_t x_stride, uint32_t n,
                        const uint32_t *action, const float *base_logit, double *out_s)
{
    double pb[BASE_CAND_MAX]; /* on the stack: concurrent callers share r. 8 KiB. */
    size_t dim = r->cfg.dim;
    base_err e = pol_base_probs(base_logit, n, r->cfg.temperature, pb);
    for (uint32_t c = 0; c < n && e == BASE_OK; c++) {
        const double *wa = r->w + (size_t)action[c] * r->p;
        double s =
            pol_kern_dot_df(wa, x + (size_t)c * x_stride, dim) + wa[dim] * pb[c] + wa[dim + 1];
        if (!isfinite(s)) {
            e = BASE_ENUMERIC;
            break;
        }
        out_s[c] = s;
    }
    return e;
}

/* The initial weight of coordinate @j: 0 for the context, then base_weight, prior_mean. */
static double prior_weight(const pol_iwr *r, size_t j)
{
    if (j < r->cfg.dim) {
        return 0.0;
    }
    return j == r->cfg.dim ? r->cfg.base_weight : r->cfg.prior_mean;
}

/*
 * One update of action @a on r->phi (filled by the caller) with target @y
 * and importance weight @h > 0. Computes everything into scratch first and
 * writes the learner only when every new value is finite.
 */
static base_err update(pol_iwr *r, uint32_t a, double y, double h)
{
    size_t p = r->p;
    const double *phi = r->phi;
    double *wa = r->w + (size_t)a * p;
    double *ga = r->acc + (size_t)a * p;
    double pred = 0.0;
    for (size_t j = 0; j < p; j++) {
        pred += wa[j] * phi[j];
    }
    double g = 2.0 * (pred - y); /* d (pred - y)^2 / d pred */
    double hgg = h * g * g;
    if (!isfinite(pred) || !isfinite(hgg)) {
        return BASE_ENUMERIC;
    }
    if (g == 0.0) {
        return BASE_OK; /* no loss: nothing to learn (VW skips these too) */
    }
    /* Rates 1 / (sqrt(acc_j) s_j) into delta; q = sum_j phi_j^2 rate_j. */
    double norm_x = 0.0, q = 0.0;
    for (size_t j = 0; j < p; j++) {
        double xj = phi[j];
        double ax = fabs(xj);
        r->scale_new[j] = ax > r->scale[j] ? ax : r->scale[j];
        r->acc_new[j] = ga[j] + hgg * xj * xj;
        r->delta[j] = 0.0;
        if (xj != 0.0 && r->acc_new[j] > 0.0) {
            double xs = xj / r->scale_new[j]; /* |xs| <= 1 */
            r->delta[j] = 1.0 / (sqrt(r->acc_new[j]) * r->scale_new[j]);
            norm_x += xs * xs;
            q += xj * xj * r->delta[j];
        }
    }
    double t_new = r->t + h;
    double n_new = r->norm_sum + h * norm_x;
    if (!(q > 0.0) || !(n_new > 0.0)) {
        return BASE_OK; /* every rate underflowed: the step would be 0 */
    }
    double m = sqrt(t_new / n_new);
    double qm = q * m;
    double z = 2.0 * r->cfg.learning_rate * h * qm;
    /* u = (y - pred) (1 - e^-z) / qm; -expm1 keeps it accurate for small z. */
    double step = (y - pred) * -expm1(-z) / qm * m;
    if (!isfinite(step) || !isfinite(t_new) || !isfinite(n_new)) {
        return BASE_ENUMERIC;
    }
    /* delta becomes the new weight: shrunk learned part, plus rate * step * x_j. */
    for (size_t j = 0; j < p; j++) {
        double w0 = prior_weight(r, j);
        double shrink = r->scale[j] > 0.0 ? r->scale[j] / r->scale_new[j] : 1.0;
        r->delta[j] = w0 + (wa[j] - w0) * shrink + r->delta[j] * step * phi[j];
        if (!isfinite(r->delta[j]) || !isfinite(r->acc_new[j])) {
            return BASE_ENUMERIC;
        }
    }
    float *wf = r->w_f + (size_t)a * p;
    for (size_t j = 0; j < p; j++) {
        wa[j] = r->delta[j];
        wf[j] = (float)wa[j];
        ga[j] = r->acc_new[j];
        r->scale[j] = r->scale_new[j];
    }
    r->t = t_new;
    r->norm_sum = n_new;
    return BASE_OK;
}

/* r->phi's context part from @x [dim]. Return: BASE_OK; BASE_ENUMERIC. */
static base_err load_x(pol_iwr *r, const float *x)
{
    for (size_t j = 0; j < r->cfg.dim; j++) {
        r->phi[j] = (double)x[j];
        if (!isfinite(r->phi[j])) {
            return BASE_ENUMERIC;
        }
    }
    return BASE_OK;
}

base_err pol_iwr_learn(pol_iwr *r, const base_decision *d, uint32_t x_stride, double reward,
                       const double *rewards)
{
    double pb[BASE_CAND_MAX];
    uint32_t n = d->n_cand;
    size_t dim = r->cfg.dim;
    base_err e = pol_base_probs(d->base_logit, n, r->cfg.temperature, pb);
    if (e != BASE_OK) {
        return e;
    }
    e = load_x(r, d->embedding + (rewards == NULL ? (size_t)d->chosen * x_stride : 0));
    if (e != BASE_OK) {
        return e;
    }
    r->phi[dim + 1] = 1.0;
    if (rewards == NULL) {
        double mu = (double)d->pmf[d->chosen];
        if (!isfinite(mu) || !isfinite(reward)) {
            return BASE_ENUMERIC;
        }
        if (!(mu > 0.0 && mu <= 1.0)) {
            return BASE_EINVAL;
        }
        double h = 1.0 / mu < POL_IWR_IW_MAX ? 1.0 / mu : POL_IWR_IW_MAX;
        r->phi[dim] = pb[d->chosen];
        return update(r, d->action[d->chosen], reward, h);
    }
    for (uint32_t c = 0; c < n; c++) {
        if (!isfinite(rewards[c])) {
            return BASE_ENUMERIC;
        }
    }
    for (uint32_t c = 0; c < n && e == BASE_OK; c++) {
        if (x_stride != 0) {
            e = load_x(r, d->embedding + (size_t)c * x_stride);
            if (e != BASE_OK) {
                break;
            }
        }
        r->phi[dim] = pb[c];
        e = update(r, d->action[c], rewards[c], 1.0);
    }
    return e;
}

const float *pol_iwr_weights(const pol_iwr *r, uint32_t a)
{
    return a < r->cfg.n_actions ? r->w_f + (size_t)a * r->p : NULL;
}

uint64_t pol_iwr_checksum(const pol_iwr *r, uint64_t hash)
{
    /* Same bytes, same order as a snapshot's params then state (native byte order). */
    double head[IWR_STATE_HEAD] = {r->t, r->norm_sum};
    hash = base_fnv1a64(r->w_f, r->n_params * sizeof(float), hash);
    hash = base_fnv1a64(head, sizeof(head), hash);
    hash = base_fnv1a64(r->scale, r->p * sizeof(double), hash);
    hash = base_fnv1a64(r->w, r->n_params * sizeof(double), hash);
    return base_fnv1a64(r->acc, r->n_params * sizeof(double), hash);
}

/* n_params <= BASE_ACTIONS_MAX * (BASE_DIM_MAX + 2) < 2^25: fits uint32_t. */
uint32_t pol_iwr_n_params(const pol_iwr *r)
{
    return (uint32_t)r->n_params;
}

uint32_t pol_iwr_n_state(const pol_iwr *r)
{
    return (uint32_t)(IWR_STATE_HEAD + r->p + 2 * r->n_params);
}

void pol_iwr_export(const pol_iwr *r, base_snapshot *m)
{
    memcpy(m->params, r->w_f, r->n_params * sizeof(float));
    m->state[0] = r->t;
    m->state[1] = r->norm_sum;
    double *s = m->state + IWR_STATE_HEAD;
    memcpy(s, r->scale, r->p * sizeof(double));
    memcpy(s + r->p, r->w, r->n_params * sizeof(double));
    memcpy(s + r->p + r->n_params, r->acc, r->n_params * sizeof(double));
}

base_err pol_iwr_import(pol_iwr *r, const base_snapshot *m)
{
    if (m->n_params != pol_iwr_n_params(r) || m->n_state != pol_iwr_n_state(r)) {
        return BASE_EINVAL;
    }
    /* Check the whole domain before any write. */
    for (size_t i = 0; i < m->n_state; i++) {
        if (!isfinite(m->state[i])) {
            return BASE_ENUMERIC;
        }
    }
    const double *s = m->state + IWR_STATE_HEAD;
    const double *acc = s + r->p + r->n_params;
    bool ok = m->state[0] >= 0.0 && m->state[1] >= 0.0;
    for (size_t j = 0; j < r->p; j++) {
        ok = ok && s[j] >= 0.0;
    }
    for (size_t i = 0; i < r->n_params; i++) {
        ok = ok && acc[i] >= 0.0;
    }
    if (!ok) {
        return BASE_EINVAL;
    }
    r->t = m->state[0];
    r->norm_sum = m->state[1];
    memcpy(r->scale, s, r->p * sizeof(double));
    memcpy(r->w, s + r->p, r->n_params * sizeof(double));
    memcpy(r->acc, acc, r->n_params * sizeof(double));
    for (size_t i = 0; i < r->n_params; i++) {
        r->w_f[i] = (float)r->w[i];
    }
    return BASE_OK;
}
