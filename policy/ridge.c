#include "policy/ridge.h"

#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"
#include "policy/base_prob.h"
#include "policy/kernels.h"

struct pol_ridge {
    pol_ridge_config cfg;
    uint32_t m; /* context features after projection */
    uint32_t p; /* m + POL_RIDGE_EXTRA */
    double lambda;
    float *proj;    /* [m x dim] projection, or NULL when m == dim */
    double *theta;  /* [n_actions x p] posterior means */
    float *theta_f; /* [n_actions x p] float mirror for pol_ridge_weights() */
    double *cov;    /* [n_actions x p x p] P_a, lower triangle maintained */
    /*
     * P_a is P_a + pend_a[a] pend_u[a] pend_u[a]' (lower triangle): the
     * Sherman-Morrison update of an action's last example waits for the
     * next pass over P_a, which applies it on the way (pol_kern_syr_symv_lower),
     * and every reader computes with the updated values, so results are
     * bit for bit those of updating at once. 0: nothing pending.
     */
    double *pend_a; /* [n_actions] */
    double *pend_u; /* [n_actions x p] */
};

static double *cov_of(const pol_ridge *r, uint32_t a)
{
    return r->cov + (size_t)a * r->p * r->p;
}

static void init_action(pol_ridge *r, uint32_t a)
{
    size_t p = r->p;
    double *th = r->theta + (size_t)a * p;
    double *c = cov_of(r, a);
    memset(th, 0, p * sizeof(double));
    th[r->m] = r->cfg.base_weight;
    th[r->m + 1] = r->cfg.prior_mean;
    memset(c, 0, p * p * sizeof(double));
    for (size_t i = 0; i < p; i++) {
        c[i * p + i] = 1.0 / r->lambda;
    }
    for (size_t i = 0; i < p; i++) {
        r->theta_f[(size_t)a * p + i] = (float)th[i];
    }
    r->pend_a[a] = 0.0;
}

base_err pol_ridge_new(const pol_ridge_config *cfg, pol_ridge **out)
{
    base_err e = BASE_OK;
    pol_ridge *r = NULL;
    if (cfg->dim < 1 || cfg->dim > BASE_DIM_MAX || cfg->n_actions < 1 ||
        cfg->n_actions > BASE_ACTIONS_MAX ||
        !(isfinite(cfg->temperature) && cfg->temperature > 0.0) || !isfinite(cfg->lambda) ||
        !isfinite(cfg->prior_mean) || !isfinite(cfg->base_weight)) {
        e = BASE_EINVAL;
        goto fail;
    }
    r = base_alloc_zero(1, sizeof(*r));
    if (r == NULL) {
        e = BASE_ENOMEM;
        goto fail;
    }
    r->cfg = *cfg;
    uint32_t exact = cfg->exact_max > 0 ? cfg->exact_max : POL_RIDGE_EXACT_MAX;
    exact = exact < POL_RIDGE_OPEN_EXACT_MAX ? exact : POL_RIDGE_OPEN_EXACT_MAX;
    r->m = cfg->dim <= exact ? cfg->dim : POL_RIDGE_SKETCH_DIM;
    r->p = r->m + POL_RIDGE_EXTRA;
    r->lambda = cfg->lambda > 0.0 ? cfg->lambda : (double)r->p / 2.0;
    size_t p = r->p;
    r->theta = base_alloc_array((size_t)cfg->n_actions * p, sizeof(double));
    r->theta_f = base_alloc_array((size_t)cfg->n_actions * p, sizeof(float));
    r->cov = base_alloc_array((size_t)cfg->n_actions * p * p, sizeof(double));
    r->pend_a = base_alloc_array(cfg->n_actions, sizeof(double));
    r->pend_u = base_alloc_array((size_t)cfg->n_actions * p, sizeof(double));
    if (r->theta == NULL || r->theta_f == NULL || r->cov == NULL || r->pend_a == NULL ||
        r->pend_u == NULL) {
        e = BASE_ENOMEM;
        goto fail;
    }
    if (r->m != cfg->dim) {
        /*
         * Achlioptas (2003) random signs, scaled by 1/sqrt(dim) so that a
         * context with unit-variance entries projects to unit-variance entries.
         */
        r->proj = base_alloc_array((size_t)r->m * cfg->dim, sizeof(float));
        if (r->proj == NULL) {
            e = BASE_ENOMEM;
            goto fail;
        }
        uint64_t st = cfg->seed ^ 0x9e3779b97f4a7c15ULL;
        float s = (float)(1.0 / sqrt((double)cfg->dim));
        for (size_t i = 0; i < (size_t)r->m * cfg->dim; i++) {
            r->proj[i] = (base_splitmix64(&st) >> 63) ? s : -s;
        }
    }
    for (uint32_t a = 0; a < cfg->n_actions; a++) {
        init_action(r, a);
    }
    *out = r;
    r = NULL;
fail:
    pol_ridge_free(r);
    return e;
}

void pol_ridge_free(pol_ridge *r)
{
    if (r != NULL) {
        base_free(r->proj);
        base_free(r->theta);
        base_free(r->theta_f);
        base_free(r->cov);
        base_free(r->pend_a);
        base_free(r->pend_u);
        base_free(r);
    }
}

bool pol_ridge_projects(const pol_ridge *r)
{
    return r->proj != NULL;
}

uint32_t pol_ridge_feature_dim(const pol_ridge *r)
{
    return r->p;
}

double pol_ridge_lambda(const pol_ridge *r)
{
    return r->lambda;
}

/* z(x) into @z [m]: a copy, or the projection. Finite iff x is. */
static void project(const pol_ridge *r, const float *x, double *z)
{
    uint32_t d = r->cfg.dim;
    if (r->proj == NULL) {
        for (uint32_t j = 0; j < d; j++) {
            z[j] = (double)x[j];
        }
        return;
    }
    float zf[POL_RIDGE_SKETCH_DIM];
    pol_kern_sgemv(r->proj, r->m, d, x, zf);
    for (uint32_t i = 0; i < r->m; i++) {
        z[i] = (double)zf[i];
    }
}

/* The shared part of phi (z, then slots for p_base and 1) into @phi [p]. */
static base_err features(const pol_ridge *r, const float *x, double *phi)
{
    project(r, x, phi);
    for (uint32_t j = 0; j < r->m; j++) {
        if (!isfinite(phi[j])) {
            return BASE_ENUMERIC;
        }
    }
    phi[r->m + 1] = 1.0;
    return BASE_OK;
}

base_err pol_ridge_scores(const pol_ridge *r, const float *x, uint32_t x_stride, uint32_t n,
                          const uint32_t *action, const float *base_logit, double *out_mean,
                          double *out_width)
{
    double phi[POL_RIDGE_P_MAX];
    double pb[BASE_CAND_MAX];
    size_t p = r->p;
    base_err e = features(r, x, phi);
    if (e == BASE_OK) {
        e = pol_base_probs(base_logit, n, r->cfg.temperature, pb);
    }
    for (uint32_t c = 0; c < n && e == BASE_OK; c++) {
        uint32_t a = action[c];
        if (x_stride != 0 && c > 0) {
            e = features(r, x + (size_t)c * x_stride, phi);
            if (e != BASE_OK) {
                break;
            }
        }
        phi[r->m] = pb[c];
        double s = pol_kern_dot(r->theta + (size_t)a * p, phi, p);
        if (!isfinite(s)) {
            e = BASE_ENUMERIC;
            break;
        }
        out_mean[c] = s;
        if (out_width != NULL) {
            double pa = r->pend_a[a];
            double q = pa != 0.0 ? pol_kern_quad_lower_upd(cov_of(r, a), pa,
                                                           r->pend_u + (size_t)a * p, phi, p)
                                 : pol_kern_quad_lower(cov_of(r, a), phi, p);
            out_width[c] = q > 0.0 ? sqrt(q) : 0.0;
        }
    }
    return e;
}

/* One recursive-least-squares step of action @a on features @phi with reward @y. */
static base_err rls(pol_ridge *r, uint32_t a, const double *phi, double y)
{
    double u[POL_RIDGE_P_MAX];
    size_t p = r->p;
    double *th = r->theta + (size_t)a * p;
    double *P = cov_of(r, a);
    double *pu = r->pend_u + (size_t)a * p;
    /* u = P phi (the pending update applied on the way); P stays SPD, so den >= 1. */
    if (r->pend_a[a] != 0.0) {
        pol_kern_syr_symv_lower(P, r->pend_a[a], pu, phi, u, p);
        r->pend_a[a] = 0.0;
    } else {
        pol_kern_symv_lower(P, phi, u, p);
    }
    double den = 1.0 + pol_kern_dot(phi, u, p);
    double err = y - pol_kern_dot(th, phi, p);
    if (!isfinite(den) || !isfinite(err)) {
        return BASE_ENUMERIC;
    }
    double k = err / den;
#pragma omp simd
    for (size_t j = 0; j < p; j++) {
        th[j] += k * u[j];
    }
    /* P -= u u^T / den (Sherman-Morrison), pending until the next pass over P. */
    memcpy(pu, u, p * sizeof(double));
    r->pend_a[a] = -1.0 / den;
    float *tf = r->theta_f + (size_t)a * p;
    for (size_t j = 0; j < p; j++) {
        tf[j] = (float)th[j];
    }
    return BASE_OK;
}

base_err pol_ridge_learn(pol_ridge *r, const base_decision *d, uint32_t x_stride, double reward,
                         const double *rewards)
{
    double phi[POL_RIDGE_P_MAX];
    double pb[BASE_CAND_MAX];
    uint32_t n = d->n_cand;
    const float *x = d->embedding;
    if (x_stride != 0 && rewards == NULL) {
        x += (size_t)d->chosen * x_stride;
    }
    base_err e = features(r, x, phi);
    if (e == BASE_OK) {
        e = pol_base_probs(d->base_logit, n, r->cfg.temperature, pb);
    }
    if (e != BASE_OK) {
        return e;
    }
    if (rewards == NULL) {
        if (!isfinite(reward)) {
            return BASE_ENUMERIC;
        }
        phi[r->m] = pb[d->chosen];
        return rls(r, d->action[d->chosen], phi, reward);
    }
    for (uint32_t c = 0; c < n; c++) {
        if (!isfinite(rewards[c])) {
            return BASE_ENUMERIC;
        }
    }
    for (uint32_t c = 0; c < n && e == BASE_OK; c++) {
        if (x_stride != 0 && c > 0) {
            e = features(r, d->embedding + (size_t)c * x_stride, phi);
            if (e != BASE_OK) {
                break;
            }
        }
        phi[r->m] = pb[c];
        e = rls(r, d->action[c], phi, rewards[c]);
    }
    return e;
}

const float *pol_ridge_weights(const pol_ridge *r, uint32_t a)
{
    return a < r->cfg.n_actions ? r->theta_f + (size_t)a * r->p : NULL;
}

uint64_t pol_ridge_checksum(const pol_ridge *r, uint64_t hash)
{
    size_t k = r->cfg.n_actions, p = r->p;
    hash = base_fnv1a64(r->theta_f, k * p * sizeof(float), hash);
    hash = base_fnv1a64(r->theta, k * p * sizeof(double), hash);
    double row[POL_RIDGE_P_MAX];
    for (size_t a = 0; a < k; a++) {
        const double *P = cov_of(r, (uint32_t)a);
        double pa = r->pend_a[a];
        const double *pu = r->pend_u + a * p;
        if (pa == 0.0) {
            hash = base_fnv1a64(P, p * p * sizeof(double), hash);
            continue;
        }
        /* Row by row as updated: FNV-1a over the rows in turn is FNV-1a over all of P. */
        for (size_t i = 0; i < p; i++) {
            memcpy(row, P + i * p, p * sizeof(double));
            double ai = pa * pu[i];
            for (size_t j = 0; j <= i; j++) {
                row[j] += ai * pu[j];
            }
            hash = base_fnv1a64(row, p * sizeof(double), hash);
        }
    }
    return hash;
}

uint32_t pol_ridge_n_params(const pol_ridge *r)
{
    return r->cfg.n_actions * r->p;
}

uint32_t pol_ridge_n_state(const pol_ridge *r)
{
    /* <= 4096 * (258 + 258^2) < 2^32 */
    return r->cfg.n_actions * r->p * (r->p + 1);
}

void pol_ridge_export(const pol_ridge *r, base_snapshot *m)
{
    size_t k = r->cfg.n_actions, p = r->p;
    memcpy(m->params, r->theta_f, k * p * sizeof(float));
    memcpy(m->state, r->theta, k * p * sizeof(double));
    memcpy(m->state + k * p, r->cov, k * p * p * sizeof(double));
    for (size_t a = 0; a < k; a++) {
        if (r->pend_a[a] != 0.0) {
            pol_kern_syr_lower(m->state + k * p + a * p * p, r->pend_a[a], r->pend_u + a * p, p);
        }
    }
}

base_err pol_ridge_import(pol_ridge *r, const base_snapshot *m)
{
    size_t k = r->cfg.n_actions, p = r->p;
    if (m->n_params != pol_ridge_n_params(r) || m->n_state != pol_ridge_n_state(r)) {
        return BASE_EINVAL;
    }
    for (size_t i = 0; i < m->n_state; i++) {
        if (!isfinite(m->state[i])) {
            return BASE_ENUMERIC;
        }
    }
    memcpy(r->theta, m->state, k * p * sizeof(double));
    memcpy(r->cov, m->state + k * p, k * p * p * sizeof(double));
    memset(r->pend_a, 0, k * sizeof(double));
    for (size_t i = 0; i < k * p; i++) {
        r->theta_f[i] = (float)r->theta[i];
    }
    return BASE_OK;
}
