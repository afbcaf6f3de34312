#include "eval/reward_model.h"

#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_vector.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"

#define NO_SLOT UINT32_MAX
#define TWO_PI 6.283185307179586476925286766559

typedef struct rm {
    const ev_config *cfg;
    const ev_sample *s;
    size_t n;
    uint32_t m;        /* projected context values */
    uint32_t p;        /* features: m + 2 */
    double *proj;      /* [m x dim] P, or NULL when m == dim (z = x) */
    double *z;         /* [n x m] z(x_i), or NULL when m == 0 */
    double *sm_c;      /* [n] softmax(base_logit)[chosen] */
    uint32_t *slot_of; /* [n_actions] an action's slot, NO_SLOT if never chosen */
    uint32_t n_slots;
    double *a;     /* [n_slots x p x p] lambda I + sum phi phi^T; lower triangle */
    double *b;     /* [n_slots x p] sum phi (r - rbar) */
    double *theta; /* [n_slots x p] the fitted coefficients */
    size_t *cnt;   /* [n_slots] training rows of the current fold's model */
    double *phi;   /* [p] scratch */
} rm;

static void rm_fini(rm *r)
{
    base_free(r->proj);
    base_free(r->z);
    base_free(r->sm_c);
    base_free(r->slot_of);
    base_free(r->a);
    base_free(r->b);
    base_free(r->theta);
    base_free(r->cnt);
    base_free(r->phi);
}

/* A standard normal from the splitmix64 stream @st (Box and Muller 1958). */
static double gauss(uint64_t *st)
{
    double u1 = 1.0 - base_u64_to_unit(base_splitmix64(st)); /* (0, 1]: log is finite */
    double u2 = base_u64_to_unit(base_splitmix64(st));
    return sqrt(-2.0 * log(u1)) * cos(TWO_PI * u2);
}

/* The max and normaliser of softmax(base_logit) of @si, for stable exp(l - max) / sum. */
static void softmax_norm(const ev_sample *si, double *out_max, double *out_sum)
{
    double mx = (double)si->base_logit[0];
    for (uint32_t j = 1; j < si->n_cand; j++) {
        mx = fmax(mx, (double)si->base_logit[j]);
    }
    double sum = 0.0;
    for (uint32_t j = 0; j < si->n_cand; j++) {
        sum += exp((double)si->base_logit[j] - mx);
    }
    *out_max = mx;
    *out_sum = sum; /* >= 1: the max's term is exp(0) */
}

/* z(x) into @z [m]: x itself when m == dim, else P x. */
static void project(const rm *r, const float *x, double *z)
{
    size_t m = r->m, d = r->cfg->dim;
    for (size_t k = 0; k < m; k++) {
        if (r->proj == NULL) {
            z[k] = (double)x[k];
            continue;
        }
        const double *row = r->proj + k * d;
        double acc = 0.0;
        for (size_t j = 0; j < d; j++) {
            acc += row[j] * (double)x[j];
        }
        z[k] = acc;
    }
}

/* Projection, projected contexts, chosen softmax values and action slots. */
static base_err rm_init(rm *r, const ev_config *cfg, const ev_sample *s, size_t n)
{
    base_err e = BASE_ENOMEM;
    memset(r, 0, sizeof(*r));
    r->cfg = cfg;
    r->s = s;
    r->n = n;
    r->m = cfg->proj_dim < cfg->dim ? cfg->proj_dim : cfg->dim;
    r->p = r->m + 2;
    size_t m = r->m, d = cfg->dim;
    if (m < d) {
        r->proj = base_alloc_array(m * d, sizeof(double));
        if (r->proj == NULL) {
            goto fail;
        }
        /* N(0, 1/m) entries: E |P x|^2 = |x|^2 (Johnson-Lindenstrauss). */
        uint64_t st = cfg->seed ^ 0x6a09e667f3bcc909ULL; /* not the bootstrap's stream */
        double scale = 1.0 / sqrt((double)m);
        for (size_t k = 0; k < m * d; k++) {
            r->proj[k] = gauss(&st) * scale;
        }
    }
    if (m > 0) {
        r->z = base_alloc_array(n * m, sizeof(double));
        if (r->z == NULL) {
            goto fail;
        }
        for (size_t i = 0; i < n; i++) {
            project(r, s[i].x, r->z + i * m);
        }
    }
    r->sm_c = base_alloc_array(n, sizeof(double));
    r->slot_of = base_alloc_array(cfg->n_actions, sizeof(uint32_t));
    r->phi = base_alloc_array(r->p, sizeof(double));
    if (r->sm_c == NULL || r->slot_of == NULL || r->phi == NULL) {
        goto fail;
    }
    for (uint32_t a = 0; a < cfg->n_actions; a++) {
        r->slot_of[a] = NO_SLOT;
    }
    for (size_t i = 0; i < n; i++) {
        double mx, sum;
        softmax_norm(&s[i], &mx, &sum);
        r->sm_c[i] = exp((double)s[i].base_logit[s[i].chosen] - mx) / sum;
        uint32_t a = s[i].action[s[i].chosen];
        if (r->slot_of[a] == NO_SLOT) {
            r->slot_of[a] = r->n_slots++;
        }
    }
    size_t ns = r->n_slots, p = r->p;
    r->a = base_alloc_array(ns * p * p, sizeof(double));
    r->b = base_alloc_array(ns * p, sizeof(double));
    r->theta = base_alloc_array(ns * p, sizeof(double));
    r->cnt = base_alloc_array(ns, sizeof(size_t));
    if (r->a == NULL || r->b == NULL || r->theta == NULL || r->cnt == NULL) {
        goto fail;
    }
    e = BASE_OK;
fail:
    return e; /* the caller's rm_fini() releases a half-built model */
}

static uint32_t fold_of(const rm *r, size_t i)
{
    return (uint32_t)(r->s[i].fold_key % r->cfg->folds);
}

/* phi of sample i with softmax value @sm into r->phi. */
static void features(rm *r, size_t i, double sm)
{
    if (r->m > 0) {
        memcpy(r->phi, r->z + i * r->m, r->m * sizeof(double));
    }
    r->phi[r->m] = sm;
    r->phi[r->m + 1] = 1.0;
}

/*
 * Fit every action's ridge regression on the samples outside fold @k, of
 * the reward centred at @rbar. A: p x p SPD (lambda > 0), lower triangle.
 */
static base_err fit(rm *r, uint32_t k, double rbar, char *errbuf, size_t errlen)
{
    base_err e = BASE_OK;
    size_t p = r->p, ns = r->n_slots;
    memset(r->a, 0, ns * p * p * sizeof(double));
    memset(r->b, 0, ns * p * sizeof(double));
    memset(r->cnt, 0, ns * sizeof(size_t));
    for (size_t i = 0; i < r->n; i++) {
        if (fold_of(r, i) == k) {
            continue;
        }
        const ev_sample *si = &r->s[i];
        uint32_t sl = r->slot_of[si->action[si->chosen]];
        double *a = r->a + (size_t)sl * p * p, *b = r->b + (size_t)sl * p;
        double y = si->reward - rbar;
        features(r, i, r->sm_c[i]);
        for (size_t u = 0; u < p; u++) {
            double fu = r->phi[u];
            for (size_t v = 0; v <= u; v++) {
                a[u * p + v] += fu * r->phi[v];
            }
            b[u] += fu * y;
        }
        r->cnt[sl]++;
    }
    for (uint32_t sl = 0; sl < ns; sl++) {
        if (r->cnt[sl] == 0) {
            continue;
        }
        double *a = r->a + (size_t)sl * p * p;
        for (size_t u = 0; u < p; u++) {
            a[u * p + u] += r->cfg->ridge_lambda;
        }
        gsl_matrix_view av = gsl_matrix_view_array(a, p, p);
        gsl_vector_view bv = gsl_vector_view_array(r->b + (size_t)sl * p, p);
        gsl_vector_view tv = gsl_vector_view_array(r->theta + (size_t)sl * p, p);
        int st = gsl_linalg_cholesky_decomp1(&av.matrix);
        if (st == 0) {
            st = gsl_linalg_cholesky_solve(&av.matrix, &bv.vector, &tv.vector);
        }
        if (st != 0) {
            if (errbuf != NULL && errlen > 0) {
                (void)snprintf(errbuf, errlen, "reward model: fold %u: solve failed (%d)", k, st);
            }
            e = BASE_ENUMERIC;
            break;
        }
    }
    return e;
}

/* Sample i's summary into out_q[0..3) from the current fit (or none: @fitted false). */
static void predict(rm *r, size_t i, double rbar, bool fitted, double *out_q)
{
    const ev_sample *si = &r->s[i];
    size_t p = r->p;
    double mx, sum;
    softmax_norm(si, &mx, &sum);
    features(r, i, 0.0);
    double dm0 = 0.0, dm1 = 0.0, qc = 0.0;
    for (uint32_t j = 0; j < si->n_cand; j++) {
        double q = 0.0;
        if (fitted) {
            q = rbar;
            uint32_t sl = r->slot_of[si->action[j]];
            if (sl != NO_SLOT && r->cnt[sl] > 0) {
                const double *th = r->theta + (size_t)sl * p;
                r->phi[r->m] = exp((double)si->base_logit[j] - mx) / sum;
                for (size_t u = 0; u < p; u++) {
                    q += th[u] * r->phi[u];
                }
            }
        }
        dm0 += (double)si->target[0][j] * q;
        dm1 += (double)si->target[1][j] * q;
        if (j == si->chosen) {
            qc = q;
        }
    }
    out_q[0] = dm0;
    out_q[1] = dm1;
    out_q[2] = qc;
}

base_err ev_reward_model_crossfit(const ev_config *cfg, const ev_sample *s, size_t n, double *out_q,
                                  char *errbuf, size_t errlen)
{
    rm r;
    base_err e = rm_init(&r, cfg, s, n);
    if (e != BASE_OK) {
        goto fail;
    }
    for (uint32_t k = 0; k < cfg->folds; k++) {
        size_t n_in = 0, n_train = 0;
        double sum_r = 0.0;
        for (size_t i = 0; i < n; i++) {
            if (fold_of(&r, i) == k) {
                n_in++;
            } else {
                n_train++;
                sum_r += s[i].reward;
            }
        }
        if (n_in == 0) {
            continue;
        }
        /* No other fold: q = 0 on this fold, so DR is IPS there. */
        bool fitted = n_train > 0;
        double rbar = fitted ? sum_r / (double)n_train : 0.0;
        if (fitted) {
            e = fit(&r, k, rbar, errbuf, errlen);
            if (e != BASE_OK) {
                goto fail;
            }
        }
        for (size_t i = 0; i < n; i++) {
            if (fold_of(&r, i) == k) {
                predict(&r, i, rbar, fitted, out_q + 3 * i);
            }
        }
    }
fail:
    rm_fini(&r);
    return e;
}
