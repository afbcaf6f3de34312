/*
 * policy/kernels.c: each kernel against a plain loop, the baseline and AVX2
 * variants equal to the bit, a whole ridge head learned under each variant
 * with the same checksum; and pol_base_probs()'s per-thread memo.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/hash.h"
#include "base/record.h"
#include "policy/base_prob.h"
#include "policy/head.h"
#include "policy/kernels.h"
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

/* Everything each kernel computes, under the variant in force, into @out. */
static size_t run_all(const double *P, const double *x, const double *u, size_t p, double *out)
{
    size_t n = 0;
    out[n++] = pol_kern_dot(x, u, p);
    out[n++] = pol_kern_quad_lower(P, x, p);
    pol_kern_symv_lower(P, x, out + n, p);
    n += p;
    memcpy(P_buf2, P, p * p * sizeof(double));
    pol_kern_syr_lower(P_buf2, 0.37, u, p);
    for (size_t i = 0; i < p; i++) {
        memcpy(out + n, P_buf2 + i * p, (i + 1) * sizeof(double));
        n += i + 1;
    }
    return n;
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

/* A ridge head with the quad map (p = 154) learns 400 examples under one variant. */
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
    variants_agree_to_the_bit();
    a_head_learns_the_same_under_both();
    base_probs_memo_changes_nothing();
    return tst_done();
}
