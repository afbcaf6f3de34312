#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/hash.h"
#include "base/record.h"
#include "policy/fmap.h"
#include "policy/head.h"
#include "tap.h"

static double gauss(uint64_t *rng)
{
    double u1 = base_u64_to_unit(base_splitmix64(rng));
    double u2 = base_u64_to_unit(base_splitmix64(rng));
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

static pol_fmap *fmap_make(pol_features kind, uint32_t dim, uint32_t rff_dim, double bw,
                           uint64_t seed)
{
    pol_fmap_config c = {
        .kind = kind, .dim = dim, .rff_dim = rff_dim, .bandwidth = bw, .seed = seed};
    pol_fmap *m = NULL;
    TST_OK(pol_fmap_new(&c, &m));
    return m;
}

static void quad_has_the_pairwise_products(void)
{
    pol_fmap *m = fmap_make(POL_FEATURES_QUAD, 3, 0, 0.0, 0);
    float x[3] = {1.0f, -2.0f, 3.0f};
    float want[9] = {1, -2, 3, 1, -2, 3, 4, -6, 9}; /* x, then x0x0 x0x1 x0x2 x1x1 x1x2 x2x2 */
    float out[9];
    TST_EQ(pol_fmap_len(m), 9);
    TST_OK(pol_fmap_apply(m, x, out));
    TST_TRUE(memcmp(out, want, sizeof(want)) == 0);
    pol_fmap_free(m);
    /* 32 is the last dim quad accepts: 32 + 32 * 33 / 2 = 560 features. */
    pol_fmap_config c = {.kind = POL_FEATURES_QUAD, .dim = POL_QUAD_DIM_MAX};
    uint32_t len = 0;
    TST_OK(pol_fmap_out_len(&c, &len));
    TST_EQ(len, 560);
    c.dim = POL_QUAD_DIM_MAX + 1;
    TST_EQ(pol_fmap_out_len(&c, &len), BASE_EINVAL);
}

static void maps_refuse_bad_configs(void)
{
    pol_fmap *m = NULL;
    pol_fmap_config bad[] = {
        {.kind = POL_FEATURES_RFF, .dim = 4, .rff_dim = 0, .bandwidth = 1.0},
        {.kind = POL_FEATURES_RFF, .dim = 4, .rff_dim = POL_RFF_DIM_MAX + 1, .bandwidth = 1.0},
        {.kind = POL_FEATURES_RFF, .dim = 4, .rff_dim = 8, .bandwidth = 0.0},
        {.kind = POL_FEATURES_RFF_NORM, .dim = 4, .rff_dim = 8, .bandwidth = NAN},
        {.kind = POL_FEATURES_RFF, .dim = BASE_DIM_MAX, .rff_dim = 1, .bandwidth = 1.0},
        {.kind = POL_FEATURES_LINEAR, .dim = 0},
        {.kind = (pol_features)17, .dim = 4},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        TST_EQ(pol_fmap_new(&bad[i], &m), BASE_EINVAL);
    }
    TST_TRUE(m == NULL);
    /* A non-finite input, and a product past FLT_MAX, are numeric errors. */
    m = fmap_make(POL_FEATURES_QUAD, 2, 0, 0.0, 0);
    float out[5];
    float inf_x[2] = {INFINITY, 1.0f}, big[2] = {1e30f, 1e30f};
    TST_EQ(pol_fmap_apply(m, inf_x, out), BASE_ENUMERIC);
    TST_EQ(pol_fmap_apply(m, big, out), BASE_ENUMERIC);
    pol_fmap_free(m);
}

static void names_round_trip(void)
{
    for (int i = 0; i <= POL_FEATURES_RFF_NORM; i++) {
        pol_features f = POL_FEATURES_LINEAR;
        TST_TRUE(pol_features_from_name(pol_features_name((pol_features)i), &f));
        TST_EQ(f, i);
    }
    pol_features f = POL_FEATURES_QUAD;
    TST_TRUE(!pol_features_from_name("cubic", &f));
    TST_EQ(f, POL_FEATURES_QUAD);
    TST_STREQ(pol_features_name((pol_features)9), "unknown");
}

/* Same seed, same features bit for bit; another seed or bandwidth, other features. */
static void rff_is_a_pure_function_of_its_config(void)
{
    enum { D = 5, N = 32 };
    pol_fmap *a = fmap_make(POL_FEATURES_RFF, D, N, 1.0, 7);
    pol_fmap *b = fmap_make(POL_FEATURES_RFF, D, N, 1.0, 7);
    pol_fmap *c = fmap_make(POL_FEATURES_RFF, D, N, 1.0, 8);
    pol_fmap *w = fmap_make(POL_FEATURES_RFF, D, N, 2.0, 7);
    float x[D] = {0.3f, -1.2f, 0.8f, 2.0f, -0.1f};
    float fa[D + N], fb[D + N], fc[D + N], fw[D + N];
    TST_OK(pol_fmap_apply(a, x, fa));
    TST_OK(pol_fmap_apply(b, x, fb));
    TST_OK(pol_fmap_apply(c, x, fc));
    TST_OK(pol_fmap_apply(w, x, fw));
    TST_TRUE(memcmp(fa, fb, sizeof(fa)) == 0);
    TST_TRUE(memcmp(fa, x, sizeof(x)) == 0); /* the context comes first, unchanged */
    TST_TRUE(memcmp(fa + D, fc + D, N * sizeof(float)) != 0);
    TST_TRUE(memcmp(fa + D, fw + D, N * sizeof(float)) != 0);
    for (int i = D; i < D + N; i++) {
        TST_TRUE(fabsf(fa[i]) <= 1.4142137f);
    }
    pol_fmap_free(w);
    pol_fmap_free(c);
    pol_fmap_free(b);
    pol_fmap_free(a);
}

/*
 * Rahimi and Recht: the mean product of the cosine features of x and y
 * approximates exp(-|x - y|^2 / (2 sigma^2)), sigma = bandwidth * sqrt(dim),
 * and each cosine has unit variance. 2048 cosines: the Monte Carlo error
 * of each mean is about 1 / sqrt(2048) = 0.022; tolerance 0.08 (fixed seed).
 */
static void rff_approximates_the_gaussian_kernel(void)
{
    enum { D = 8, N = 2048 };
    static float fx[D + N], fy[D + N];
    double bw[] = {0.5, 1.0, 2.0};
    uint64_t rng = 3;
    for (size_t k = 0; k < 3; k++) {
        pol_fmap *m = fmap_make(POL_FEATURES_RFF, D, N, bw[k], 11 + k);
        for (int trial = 0; trial < 4; trial++) {
            float x[D], y[D];
            double d2 = 0.0;
            for (int j = 0; j < D; j++) {
                x[j] = (float)gauss(&rng);
                y[j] = (float)(x[j] + 0.5 * trial * gauss(&rng));
                d2 += ((double)x[j] - y[j]) * ((double)x[j] - y[j]);
            }
            TST_OK(pol_fmap_apply(m, x, fx));
            TST_OK(pol_fmap_apply(m, y, fy));
            double dot = 0.0, sq = 0.0;
            for (int i = D; i < D + N; i++) {
                dot += (double)fx[i] * fy[i];
                sq += (double)fx[i] * fx[i];
            }
            double sigma2 = bw[k] * bw[k] * D;
            TST_NEAR(dot / N, exp(-d2 / (2.0 * sigma2)), 0.08);
            TST_NEAR(sq / N, 1.0, 0.08);
        }
        pol_fmap_free(m);
    }
}

/* rff_norm sees only the direction: 4 x (exact in float) gives the same features bit for bit. */
static void rff_norm_ignores_the_scale(void)
{
    enum { D = 6, N = 40 };
    pol_fmap *m = fmap_make(POL_FEATURES_RFF_NORM, D, N, 1.0, 5);
    float x[D] = {0.01f, -0.02f, 0.005f, 0.03f, 0.0f, -0.015f}, x4[D], zero[D] = {0};
    float f1[D + N], f4[D + N], f0[D + N];
    for (int j = 0; j < D; j++) {
        x4[j] = 4.0f * x[j];
    }
    TST_OK(pol_fmap_apply(m, x, f1));
    TST_OK(pol_fmap_apply(m, x4, f4));
    TST_TRUE(memcmp(f1 + D, f4 + D, N * sizeof(float)) == 0);
    TST_OK(pol_fmap_apply(m, zero, f0)); /* x = 0: cos(b), defined */
    pol_fmap_free(m);
}

/*
 * XOR in two dimensions: action 0 pays when x0 x1 > 0, action 1 otherwise.
 * No linear score separates it; quad has x0 x1 itself, rff approximates it.
 * Returns the share of the last 1000 of @n bandit rounds that chose right.
 */
static double xor_bandit(pol_features f, pol_learner l, uint32_t n)
{
    pol_head_config cfg;
    pol_head_config_default(&cfg, 2, 2);
    cfg.features = f;
    cfg.learner = l;
    cfg.rff_dim = 64;
    cfg.seed = 21;
    pol_head *h = NULL;
    TST_OK(pol_head_new(&cfg, &h));
    base_decision *d = base_decision_new(2, 2);
    uint64_t rng = 77;
    uint32_t hits = 0;
    for (uint32_t t = 0; t < n && h != NULL && d != NULL; t++) {
        d->embedding[0] = (float)gauss(&rng);
        d->embedding[1] = (float)gauss(&rng);
        uint32_t best = d->embedding[0] * d->embedding[1] > 0.0f ? 0 : 1;
        for (uint32_t c = 0; c < 2; c++) {
            d->action[c] = c;
            d->base_logit[c] = 0.0f;
        }
        char id[32];
        snprintf(id, sizeof(id), "x%u", t);
        if (pol_head_pmf(h, d->embedding, 2, d->action, d->base_logit, d->pmf) != BASE_OK) {
            break;
        }
        d->chosen = pol_sample(d->pmf, 2, id, cfg.seed);
        bool right = d->action[d->chosen] == best;
        hits += t + 1000 >= n && right;
        if (pol_head_learn(h, d, right ? 1.0 : 0.0) != BASE_OK) {
            break;
        }
    }
    base_decision_free(d);
    pol_head_free(h);
    return hits / 1000.0;
}

/* Fixed seeds; the linear head hovers near chance, the mapped heads well above. */
static void nonlinear_heads_learn_xor_linear_cannot(void)
{
    double lin = xor_bandit(POL_FEATURES_LINEAR, POL_LEARNER_RIDGE, 4000);
    double quad = xor_bandit(POL_FEATURES_QUAD, POL_LEARNER_RIDGE, 4000);
    double rff = xor_bandit(POL_FEATURES_RFF, POL_LEARNER_RIDGE, 4000);
    double rff_iwr = xor_bandit(POL_FEATURES_RFF, POL_LEARNER_IWR, 4000);
    printf("# xor, last 1000 of 4000: linear %.3f quad %.3f rff %.3f rff+iwr %.3f\n", lin, quad,
           rff, rff_iwr);
    TST_TRUE(lin < 0.65);
    TST_TRUE(quad > 0.9);
    TST_TRUE(rff > 0.85);
    TST_TRUE(rff_iwr > 0.75);
    TST_TRUE(rff > lin + 0.2);
}

static pol_head *trained(pol_features f, pol_learner l, uint64_t seed, base_decision **out_d)
{
    enum { D = 5, K = 3 };
    pol_head_config cfg;
    pol_head_config_default(&cfg, D, K);
    cfg.features = f;
    cfg.learner = l;
    cfg.explorer = l == POL_LEARNER_PG ? POL_EXPLORE_SOFTMAX : POL_EXPLORE_IGW;
    cfg.rff_dim = 24;
    cfg.bandwidth = 0.7;
    cfg.seed = seed;
    pol_head *h = NULL;
    TST_OK(pol_head_new(&cfg, &h));
    base_decision *d = base_decision_new(D, K);
    uint64_t rng = seed + 1;
    for (int i = 0; i < 60 && h != NULL; i++) {
        for (uint32_t j = 0; j < D; j++) {
            d->embedding[j] = (float)gauss(&rng);
        }
        for (uint32_t c = 0; c < K; c++) {
            d->action[c] = c;
            d->base_logit[c] = 0.2f * (float)c;
        }
        TST_OK(pol_head_pmf(h, d->embedding, K, d->action, d->base_logit, d->pmf));
        d->chosen = (uint32_t)(i % K);
        TST_OK(pol_head_learn(h, d, d->embedding[0] * d->embedding[1] > 0 ? 1.0 : 0.0));
    }
    *out_d = d;
    return h;
}

/* Every map with every learner: rebuilt from its snapshot alone, it serves bit for bit. */
static void snapshot_round_trip_keeps_pmfs_bitwise(void)
{
    pol_features maps[] = {POL_FEATURES_QUAD, POL_FEATURES_RFF, POL_FEATURES_RFF_NORM};
    pol_learner learners[] = {POL_LEARNER_RIDGE, POL_LEARNER_IWR, POL_LEARNER_PG};
    for (size_t f = 0; f < 3; f++) {
        for (size_t l = 0; l < 3; l++) {
            base_decision *d = NULL;
            pol_head *h = trained(maps[f], learners[l], 100 + f, &d);
            base_snapshot *m = NULL;
            pol_head *r = NULL;
            TST_OK(pol_head_snapshot(h, &m));
            TST_STREQ(m->settings.features, pol_features_name(maps[f]));
            TST_OK(pol_head_from_snapshot(m, &r));
            const pol_head_config *rc = pol_head_get_config(r);
            TST_EQ(rc->features, maps[f]);
            TST_EQ(rc->rff_dim, maps[f] == POL_FEATURES_QUAD ? 0 : 24);
            TST_TRUE(rc->bandwidth == (maps[f] == POL_FEATURES_QUAD ? 0.0 : 0.7));
            float p1[3], p2[3], s[3], e[3], p3[3];
            pol_breakdown bd = {.head_score = s, .explore = e, .pmf = p3};
            TST_OK(pol_head_pmf(h, d->embedding, 3, d->action, d->base_logit, p1));
            TST_OK(pol_head_pmf(r, d->embedding, 3, d->action, d->base_logit, p2));
            TST_OK(pol_head_explain(r, d->embedding, 3, d->action, d->base_logit, &bd));
            TST_TRUE(memcmp(p1, p2, sizeof(p1)) == 0);
            TST_TRUE(memcmp(p1, p3, sizeof(p1)) == 0);
            TST_EQ(pol_head_checksum(r), pol_head_checksum(h));
            /* More learning keeps them in step. */
            TST_OK(pol_head_learn(h, d, 1.0));
            TST_OK(pol_head_learn(r, d, 1.0));
            TST_EQ(pol_head_checksum(r), pol_head_checksum(h));
            pol_head_free(r);
            base_snapshot_free(m);
            base_decision_free(d);
            pol_head_free(h);
        }
    }
}

/* A snapshot taken with another map, or another rff draw, does not load. */
static void restore_refuses_another_map(void)
{
    base_decision *d1 = NULL, *d2 = NULL, *d3 = NULL;
    pol_head *rff = trained(POL_FEATURES_RFF, POL_LEARNER_IWR, 5, &d1);
    pol_head *other_seed = trained(POL_FEATURES_RFF, POL_LEARNER_IWR, 6, &d2);
    pol_head *norm = trained(POL_FEATURES_RFF_NORM, POL_LEARNER_IWR, 5, &d3);
    base_snapshot *m = NULL;
    TST_OK(pol_head_snapshot(rff, &m));
    uint64_t before = pol_head_checksum(other_seed);
    TST_EQ(pol_head_restore(other_seed, m), BASE_EINVAL);
    TST_EQ(pol_head_restore(norm, m), BASE_EINVAL);
    TST_EQ(pol_head_checksum(other_seed), before);
    /* An unknown map name is refused when rebuilding. */
    pol_head *bad = NULL;
    (void)base_strlcpy(m->settings.features, "cubic", sizeof(m->settings.features));
    TST_EQ(pol_head_from_snapshot(m, &bad), BASE_EINVAL);
    TST_TRUE(bad == NULL);
    base_snapshot_free(m);
    pol_head_free(norm);
    pol_head_free(other_seed);
    pol_head_free(rff);
    base_decision_free(d3);
    base_decision_free(d2);
    base_decision_free(d1);
}

/*
 * A linear head is today's head: its snapshot says "linear", and one
 * written before feature maps (features "") rebuilds as linear and serves
 * the same.
 */
static void old_snapshots_read_as_linear(void)
{
    base_decision *d = NULL;
    pol_head *h = trained(POL_FEATURES_LINEAR, POL_LEARNER_RIDGE, 9, &d);
    TST_EQ(pol_head_get_config(h)->rff_dim, 0);
    base_snapshot *m = NULL;
    TST_OK(pol_head_snapshot(h, &m));
    TST_STREQ(m->settings.features, "linear");
    m->settings.features[0] = '\0';
    pol_head *r = NULL;
    TST_OK(pol_head_from_snapshot(m, &r));
    TST_EQ(pol_head_get_config(r)->features, POL_FEATURES_LINEAR);
    float p1[3], p2[3];
    TST_OK(pol_head_pmf(h, d->embedding, 3, d->action, d->base_logit, p1));
    TST_OK(pol_head_pmf(r, d->embedding, 3, d->action, d->base_logit, p2));
    TST_TRUE(memcmp(p1, p2, sizeof(p1)) == 0);
    TST_OK(pol_head_restore(h, m));
    pol_head_free(r);
    base_snapshot_free(m);
    pol_head_free(h);
    base_decision_free(d);
}

/* The head refuses what the map refuses, and a context the map cannot map. */
static void head_refuses_bad_maps_and_inputs(void)
{
    pol_head_config cfg;
    pol_head *h = NULL;
    pol_head_config_default(&cfg, POL_QUAD_DIM_MAX + 1, 3);
    cfg.features = POL_FEATURES_QUAD;
    TST_EQ(pol_head_new(&cfg, &h), BASE_EINVAL);
    pol_head_config_default(&cfg, 4, 3);
    cfg.features = (pol_features)42;
    TST_EQ(pol_head_new(&cfg, &h), BASE_EINVAL);
    TST_TRUE(h == NULL);
    cfg.features = POL_FEATURES_QUAD;
    TST_OK(pol_head_new(&cfg, &h));
    TST_NEAR(pol_head_get_config(h)->lambda, (4 + 10 + 2) / 2.0, 0); /* mapped p / 2 */
    base_decision *d = base_decision_new(4, 3);
    for (uint32_t c = 0; c < 3; c++) {
        d->action[c] = c;
        d->pmf[c] = 1.0f / 3.0f;
    }
    d->embedding[2] = 3e20f; /* its square overflows a float */
    float pmf[3];
    uint64_t before = pol_head_checksum(h);
    TST_EQ(pol_head_pmf(h, d->embedding, 3, d->action, d->base_logit, pmf), BASE_ENUMERIC);
    TST_EQ(pol_head_learn(h, d, 1.0), BASE_ENUMERIC);
    TST_EQ(pol_head_checksum(h), before);
    TST_EQ(pol_head_n_updates(h), 0);
    base_decision_free(d);
    pol_head_free(h);
}

/* With ridge, rff stops where ridge would start projecting; iwr takes any length. */
static void ridge_keeps_rff_contexts_exact(void)
{
    struct {
        pol_learner l;
        uint32_t dim, rff_dim, want;
    } cases[] = {
        {POL_LEARNER_RIDGE, 200, 128, 56},
        {POL_LEARNER_RIDGE, 16, 64, 64},
        {POL_LEARNER_RIDGE, 300, 64, 64}, /* past 256 ridge projects x anyway */
        {POL_LEARNER_IWR, 200, 128, 128},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pol_head_config cfg;
        pol_head_config_default(&cfg, cases[i].dim, 2);
        cfg.learner = cases[i].l;
        cfg.features = POL_FEATURES_RFF;
        cfg.rff_dim = cases[i].rff_dim;
        pol_head *h = NULL;
        TST_OK(pol_head_new(&cfg, &h));
        if (h != NULL) {
            TST_EQ(pol_head_get_config(h)->rff_dim, cases[i].want);
        }
        pol_head_free(h);
    }
}

int main(void)
{
    quad_has_the_pairwise_products();
    maps_refuse_bad_configs();
    names_round_trip();
    rff_is_a_pure_function_of_its_config();
    rff_approximates_the_gaussian_kernel();
    rff_norm_ignores_the_scale();
    nonlinear_heads_learn_xor_linear_cannot();
    snapshot_round_trip_keeps_pmfs_bitwise();
    restore_refuses_another_map();
    old_snapshots_read_as_linear();
    head_refuses_bad_maps_and_inputs();
    ridge_keeps_rff_contexts_exact();
    return tst_done();
}
