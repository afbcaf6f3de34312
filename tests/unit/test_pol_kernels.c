/*
 * policy/kernels.c: each kernel against a plain loop, the baseline and AVX2
 * variants equal to the bit, a whole ridge head learned under each variant
 * with the same checksum; the single-precision projection (pol_kern_sgemv)
 * against a double loop, under both variants, and row by row; the dot
 * product of doubles with floats as that of the floats widened; and
 * pol_base_probs()'s per-thread memo.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/record.h"
#include "policy/base_prob.h"
#include "policy/head.h"
#include "policy/kernels.h"
#include "policy/ridge.h"
#include "tap.h"

#define P_MAX 300

static double unit(uint64_t *rng)
{
    return 2.0 * base_u64_to_unit(base_splitmix64(rng)) - 1.0;
}

/* A random symmetric positive definite lower triangle (full rows kept, as ridge does). */
static void spd(double *P, size_t p, uint64_t *rng)
{
    for (size_t i = 0; i < p; i++) {
        for (size_t j = 0; j < p; j++) {
            P[i * p + j] = j <= i ? 0.1 * unit(rng) : NAN; /* the upper part is never read */
        }
        P[i * p + i] = (double)p;
    }
}

static double sym(const double *P, size_t p, size_t i, size_t j)
{
    return j <= i ? P[i * p + j] : P[j * p + i];
}

static double P_buf[P_MAX * P_MAX], P_buf2[P_MAX * P_MAX];

static void kernels_match_plain_loops(void)
{
    uint64_t rng = 7;
    static const size_t sizes[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 17, 18, 33, 154, 258};
    for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
        size_t p = sizes[t];
        double x[P_MAX], u[P_MAX], out[P_MAX];
        for (size_t i = 0; i < p; i++) {
            x[i] = unit(&rng);
            u[i] = unit(&rng);
        }
        spd(P_buf, p, &rng);
        double dot = 0.0, quad = 0.0, worst = 0.0;
        for (size_t i = 0; i < p; i++) {
            dot += x[i] * u[i];
        }
        pol_kern_symv_lower(P_buf, x, out, p);
        for (size_t i = 0; i < p; i++) {
            double s = 0.0;
            for (size_t j = 0; j < p; j++) {
                s += sym(P_buf, p, i, j) * x[j];
            }
            quad += x[i] * s;
            worst = fmax(worst, fabs(out[i] - s) / fmax(1.0, fabs(s)));
        }
        TST_NEAR(pol_kern_dot(x, u, p), dot, 1e-12);
        TST_TRUE(worst <= 1e-12);
        TST_NEAR(pol_kern_quad_lower(P_buf, x, p), quad, 1e-12);
        memcpy(P_buf2, P_buf, p * p * sizeof(double));
        pol_kern_syr_lower(P_buf2, -0.25, u, p);
        worst = 0.0;
        int upper_untouched = 1;
        for (size_t i = 0; i < p; i++) {
            for (size_t j = 0; j <= i; j++) {
                double want = P_buf[i * p + j] - 0.25 * u[i] * u[j];
                worst = fmax(worst, fabs(P_buf2[i * p + j] - want));
            }
            for (size_t j = i + 1; j < p; j++) {
                upper_untouched &= isnan(P_buf2[i * p + j]);
            }
        }
        TST_TRUE(worst <= 1e-12);
        TST_TRUE(upper_untouched);
    }
}

/* The fused kernels against the two-step ones they stand for: the same bits. */
static void fused_equal_two_steps(void)
{
    uint64_t rng = 5;
    int same = 1;
    for (size_t p = 1; p <= 160; p += (p < 40 ? 1 : 17)) {
        double x[P_MAX], u[P_MAX], out_a[P_MAX], out_b[P_MAX];
        for (size_t i = 0; i < p; i++) {
            x[i] = unit(&rng);
            u[i] = unit(&rng) * 0.1;
        }
        spd(P_buf, p, &rng);
        memcpy(P_buf2, P_buf, p * p * sizeof(double));
        double q_upd = pol_kern_quad_lower_upd(P_buf, -0.3, u, x, p); /* P_buf unchanged */
        pol_kern_syr_symv_lower(P_buf, -0.3, u, x, out_a, p);
        pol_kern_syr_lower(P_buf2, -0.3, u, p);
        pol_kern_symv_lower(P_buf2, x, out_b, p);
        double q_two = pol_kern_quad_lower(P_buf2, x, p);
        for (size_t i = 0; i < p; i++) {
            same &= memcmp(P_buf + i * p, P_buf2 + i * p, (i + 1) * sizeof(double)) == 0;
        }
        same &= memcmp(out_a, out_b, p * sizeof(double)) == 0;
        same &= memcmp(&q_upd, &q_two, sizeof(double)) == 0;
    }
    TST_TRUE(same);
}

/* Everything each kernel computes, under the variant in force, into @out. */
static size_t run_all(const double *P, const double *x, const double *u, size_t p, double *out)
{
    size_t n = 0;
    out[n++] = pol_kern_dot(x, u, p);
    out[n++] = pol_kern_quad_lower(P, x, p);
    pol_kern_symv_lower(P, x, out + n, p);
    n += p;
    out[n++] = pol_kern_quad_lower_upd(P, 0.37, u, x, p);
    memcpy(P_buf2, P, p * p * sizeof(double));
    pol_kern_syr_symv_lower(P_buf2, 0.37, u, x, out + n, p);
    n += p;
    pol_kern_syr_lower(P_buf2, 0.37, u, p);
    for (size_t i = 0; i < p; i++) {
        memcpy(out + n, P_buf2 + i * p, (i + 1) * sizeof(double));
        n += i + 1;
    }
    return n;
}

#define SG_ROWS 131
#define SG_COLS 803
static float sg_a[SG_ROWS * SG_COLS];

/*
 * pol_kern_sgemv(): near the product in double, the same bits under both
 * variants, and each row's result the same whether it is computed alone or
 * beside others (ridge's sketch and the action map rely on neither).
 */
static void sgemv_is_exact_enough_and_stable(void)
{
    static const size_t cols_list[] = {1, 3, 7, 8, 9, 16, 17, 64, 100, 768, 803};
    static const size_t rows_list[] = {1, 2, 3, 4, 5, 7, 128, 131};
    uint64_t rng = 21;
    float x[SG_COLS], out_a[SG_ROWS], out_b[SG_ROWS], one;
    bool avx2 = pol_kern_use_avx2(true);
    int near = 1, same = 1, alone = 1;
    for (size_t tc = 0; tc < sizeof(cols_list) / sizeof(cols_list[0]); tc++) {
        size_t cols = cols_list[tc];
        for (size_t i = 0; i < SG_ROWS * cols; i++) {
            sg_a[i] = (float)unit(&rng);
        }
        for (size_t j = 0; j < cols; j++) {
            x[j] = (float)(unit(&rng) * 10.0);
        }
        for (size_t tr = 0; tr < sizeof(rows_list) / sizeof(rows_list[0]); tr++) {
            size_t rows = rows_list[tr];
            pol_kern_use_avx2(avx2);
            pol_kern_sgemv(sg_a, rows, cols, x, out_a);
            pol_kern_use_avx2(false);
            pol_kern_sgemv(sg_a, rows, cols, x, out_b);
            same &= memcmp(out_a, out_b, rows * sizeof(float)) == 0;
            for (size_t i = 0; i < rows; i++) {
                double ref = 0.0, mag = 0.0;
                for (size_t j = 0; j < cols; j++) {
                    ref += (double)sg_a[i * cols + j] * (double)x[j];
                    mag += fabs((double)sg_a[i * cols + j] * (double)x[j]);
                }
                near &= fabs((double)out_a[i] - ref) <= 1e-6 * (double)cols * mag + 1e-30;
                pol_kern_use_avx2(avx2);
                pol_kern_sgemv(sg_a + i * cols, 1, cols, x, &one);
                alone &= memcmp(&one, &out_a[i], sizeof(float)) == 0;
            }
        }
    }
    pol_kern_use_avx2(true);
    TST_TRUE(near);
    TST_TRUE(same);
    TST_TRUE(alone);
}

/* pol_kern_dot_df() is pol_kern_dot() of x widened, to the bit, under both variants. */
static void dot_df_is_dot_of_the_widened(void)
{
    uint64_t rng = 5;
    double a[P_MAX], xd[P_MAX];
    float x[P_MAX];
    int same = 1;
    bool avx2 = pol_kern_use_avx2(true);
    for (size_t n = 0; n <= P_MAX; n += (n < 40 ? 1 : 37)) {
        for (size_t j = 0; j < n; j++) {
            a[j] = unit(&rng) * 3.0;
            x[j] = (float)unit(&rng);
            xd[j] = (double)x[j];
        }
        for (int v = 0; v < 2; v++) {
            pol_kern_use_avx2(v == 0 && avx2);
            double p = pol_kern_dot_df(a, x, n), q = pol_kern_dot(a, xd, n);
            same &= memcmp(&p, &q, sizeof(p)) == 0;
        }
    }
    pol_kern_use_avx2(true);
    TST_TRUE(same);
    x[0] = INFINITY;
    a[0] = 0.0;
    TST_TRUE(!isfinite(pol_kern_dot_df(a, x, 1)));
}

static double res_a[P_MAX * P_MAX], res_b[P_MAX * P_MAX];

static void variants_agree_to_the_bit(void)
{
    if (!pol_kern_use_avx2(true)) {
        printf("# this CPU has no AVX2: only the baseline variant runs here\n");
        TST_TRUE(!pol_kern_avx2_active());
        return;
    }
    uint64_t rng = 11;
    int same = 1;
    for (size_t p = 1; p <= 160; p += (p < 20 ? 1 : 23)) {
        double x[P_MAX], u[P_MAX];
        for (size_t i = 0; i < p; i++) {
            x[i] = unit(&rng) * 1e3;
            u[i] = unit(&rng) * 1e-3;
        }
        spd(P_buf, p, &rng);
        TST_TRUE(pol_kern_use_avx2(true));
        size_t na = run_all(P_buf, x, u, p, res_a);
        TST_TRUE(!pol_kern_use_avx2(false));
        size_t nb = run_all(P_buf, x, u, p, res_b);
        same &= na == nb && memcmp(res_a, res_b, na * sizeof(double)) == 0;
    }
    TST_TRUE(same);
    pol_kern_use_avx2(true);
}

/*
 * A ridge head with the quad map (p = 154) learns 400 examples under one
 * variant, its updates pending between examples (policy/ridge.c).
 */
static uint64_t learn_under(bool avx2)
{
    pol_kern_use_avx2(avx2);
    pol_head_config c;
    pol_head_config_default(&c, 16, 6);
    c.features = POL_FEATURES_QUAD;
    pol_head *h = NULL;
    TST_OK(pol_head_new(&c, &h));
    base_decision *d = base_decision_new(16, 6);
    uint64_t rng = 3;
    for (int i = 0; i < 400 && h != NULL && d != NULL; i++) {
        for (uint32_t j = 0; j < 16; j++) {
            d->embedding[j] = (float)unit(&rng);
        }
        for (uint32_t a = 0; a < 6; a++) {
            d->action[a] = a;
            d->base_logit[a] = (float)unit(&rng);
        }
        if (pol_head_pmf(h, d->embedding, 6, d->action, d->base_logit, d->pmf) != BASE_OK) {
            break;
        }
        d->chosen = (uint32_t)(base_splitmix64(&rng) % 6);
        double reward = d->embedding[d->chosen] * d->embedding[(d->chosen + 1) % 16] > 0 ? 1 : 0;
        if (pol_head_learn(h, d, reward) != BASE_OK) {
            break;
        }
    }
    uint64_t sum = h != NULL ? pol_head_checksum(h) : 0;
    base_decision_free(d);
    pol_head_free(h);
    return sum;
}

static void a_head_learns_the_same_under_both(void)
{
    uint64_t a = learn_under(true), b = learn_under(false);
    TST_TRUE(a != 0);
    TST_TRUE(a == b);
    pol_kern_use_avx2(true);
}

/* One random example into @d (d=8, 5 actions) with a reward that depends on it. */
static double example(base_decision *d, uint64_t *rng)
{
    for (uint32_t j = 0; j < 8; j++) {
        d->embedding[j] = (float)unit(rng);
    }
    for (uint32_t a = 0; a < 5; a++) {
        d->action[a] = a;
        d->base_logit[a] = (float)unit(rng);
    }
    d->chosen = (uint32_t)(base_splitmix64(rng) % 5);
    return d->embedding[d->chosen] > 0.0f ? 1.0 : 0.0;
}

/*
 * Ridge keeps each action's last covariance update pending: a ridge
 * imported from its export (nothing pending) gives the same means and ucb
 * widths to the bit and the same checksum, and stays equal while both learn.
 */
static void pending_updates_are_invisible(void)
{
    pol_ridge_config c = {.dim = 8, .n_actions = 5, .temperature = 1.0, .prior_mean = 0.5};
    pol_ridge *h = NULL, *g = NULL;
    base_decision *d = base_decision_new(8, 5);
    uint64_t rng = 9;
    TST_OK(pol_ridge_new(&c, &h));
    TST_OK(pol_ridge_new(&c, &g));
    if (h == NULL || g == NULL || d == NULL) {
        return;
    }
    for (int i = 0; i < 60; i++) {
        double r = example(d, &rng);
        TST_OK(pol_ridge_learn(h, d, 0, r, NULL));
    }
    base_snapshot m;
    memset(&m, 0, sizeof(m));
    m.n_params = pol_ridge_n_params(h);
    m.n_state = pol_ridge_n_state(h);
    m.params = calloc(m.n_params, sizeof(float));
    m.state = calloc(m.n_state, sizeof(double));
    if (m.params == NULL || m.state == NULL) {
        return;
    }
    pol_ridge_export(h, &m);
    TST_OK(pol_ridge_import(g, &m));
    int same = pol_ridge_checksum(h, 1) == pol_ridge_checksum(g, 1);
    int widths_differ_from_stale = 0;
    for (int i = 0; i < 40; i++) {
        double r = example(d, &rng);
        double mh[5], wh[5], mg[5], wg[5];
        same &=
            pol_ridge_scores(h, d->embedding, 0, 5, d->action, d->base_logit, mh, wh) == BASE_OK;
        same &=
            pol_ridge_scores(g, d->embedding, 0, 5, d->action, d->base_logit, mg, wg) == BASE_OK;
        same &= memcmp(mh, mg, sizeof(mh)) == 0 && memcmp(wh, wg, sizeof(wh)) == 0;
        widths_differ_from_stale |= wh[0] > 0.0;
        same &= pol_ridge_learn(h, d, 0, r, NULL) == BASE_OK &&
                pol_ridge_learn(g, d, 0, r, NULL) == BASE_OK;
        same &= pol_ridge_checksum(h, 1) == pol_ridge_checksum(g, 1);
    }
    TST_TRUE(same);
    TST_TRUE(widths_differ_from_stale);
    free(m.params);
    free(m.state);
    base_decision_free(d);
    pol_ridge_free(h);
    pol_ridge_free(g);
}

static void base_probs_memo_changes_nothing(void)
{
    float la[5] = {0.5f, -1.0f, 2.0f, 0.0f, 0.25f}, lb[5] = {0.5f, -1.0f, 2.0f, 0.0f, 0.5f};
    double first[5], again[5], other[5], hot[5], fresh[5];
    TST_OK(pol_base_probs(la, 5, 1.0, first));
    TST_OK(pol_base_probs(lb, 5, 1.0, other));
    TST_TRUE(first[4] != other[4]);
    TST_OK(pol_base_probs(la, 5, 1.0, again));
    TST_TRUE(memcmp(first, again, sizeof(first)) == 0);
    TST_OK(pol_base_probs(la, 5, 1.0, again)); /* from the memo */
    TST_TRUE(memcmp(first, again, sizeof(first)) == 0);
    TST_OK(pol_base_probs(la, 5, 2.0, hot)); /* same logits, other temperature */
    TST_TRUE(hot[2] < first[2]);
    TST_OK(pol_base_probs(la, 4, 1.0, fresh)); /* a prefix is another input */
    double z = 0.0;
    for (int c = 0; c < 4; c++) {
        z += exp((double)la[c] - 2.0);
    }
    TST_NEAR(fresh[2], exp(0.0) / z - 0.25, 1e-12);
    float bad[5] = {0.5f, -1.0f, NAN, 0.0f, 0.25f};
    TST_EQ(pol_base_probs(bad, 5, 1.0, fresh), BASE_ENUMERIC);
    TST_OK(pol_base_probs(la, 5, 1.0, again));
    TST_TRUE(memcmp(first, again, sizeof(first)) == 0);
}

int main(void)
{
    kernels_match_plain_loops();
    fused_equal_two_steps();
    pol_kern_use_avx2(false);
    fused_equal_two_steps();
    pol_kern_use_avx2(true);
    variants_agree_to_the_bit();
    sgemv_is_exact_enough_and_stable();
    dot_df_is_dot_of_the_widened();
    a_head_learns_the_same_under_both();
    pending_updates_are_invisible();
    base_probs_memo_changes_nothing();
    return tst_done();
}
