/*
 * policy: open action sets. The action map's layout and determinism, the head's shape
 * rules, learning that carries to candidates never seen before, full information,
 * snapshots that serve bit for bit, and the refusals.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/hash.h"
#include "base/record.h"
#include "policy/amap.h"
#include "policy/head.h"
#include "policy/ridge.h"
#include "tap.h"

static double gauss(uint64_t *rng)
{
    double u1 = base_u64_to_unit(base_splitmix64(rng));
    double u2 = base_u64_to_unit(base_splitmix64(rng));
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

static void map_layout_and_defaults(void)
{
    pol_amap_config c = {.dim = 2, .action_dim = 2, .budget = POL_RIDGE_EXACT_MAX, .seed = 1};
    pol_amap *m = NULL;
    TST_OK(pol_amap_new(&c, &m));
    TST_EQ(pol_amap_len(m), 6);
    float in[2 + 2 * 2] = {2.0f, -3.0f, /* x */ 5.0f, 7.0f, /* z0 */ 1.0f, 0.5f /* z1 */};
    float out[12];
    float want[12] = {5, 7, 10, 14, -15, -21, 1, 0.5f, 2, 1, -3, -1.5f}; /* [z, x_i z_j] */
    TST_OK(pol_amap_apply(m, in, in + 2, 2, out));
    TST_TRUE(memcmp(out, want, sizeof(want)) == 0);
    in[3] = NAN;
    TST_EQ(pol_amap_apply(m, in, in + 2, 2, out), BASE_ENUMERIC);
    pol_amap_free(m);

    /* Defaults: S = min(k, 15), R the largest <= dim within the budget. */
    uint32_t r = 0, len = 0;
    pol_amap_config d768 = {.dim = 768, .action_dim = 16, .budget = POL_RIDGE_EXACT_MAX};
    TST_OK(pol_amap_resolve(&d768, &r, &len));
    TST_EQ(r, 16); /* (256 - 15) / 15 */
    TST_EQ(len, 15 + 16 * 15);
    pol_amap_config d64 = {.dim = 64, .action_dim = 10, .budget = POL_AMAP_BUDGET};
    TST_OK(pol_amap_resolve(&d64, &r, &len));
    TST_EQ(r, 64);
    TST_EQ(len, 10 + 640);
    d64.interaction_dim = 65;
    TST_EQ(pol_amap_resolve(&d64, &r, &len), BASE_EINVAL);
    d64.interaction_dim = 0;
    d64.action_dim = BASE_ACTION_DIM_MAX + 1;
    TST_EQ(pol_amap_resolve(&d64, &r, &len), BASE_EINVAL);

    /* Projections are a pure function of the configuration. */
    pol_amap_config big = {.dim = 40, .action_dim = 20, .budget = 200, .seed = 9};
    pol_amap *a = NULL, *b = NULL;
    TST_OK(pol_amap_new(&big, &a));
    TST_OK(pol_amap_new(&big, &b));
    float x[40 + 20], oa[POL_FMAP_OUT_MAX], ob[POL_FMAP_OUT_MAX];
    uint64_t rng = 3;
    for (int i = 0; i < 60; i++) {
        x[i] = (float)gauss(&rng);
    }
    TST_OK(pol_amap_apply(a, x, x + 40, 1, oa));
    TST_OK(pol_amap_apply(b, x, x + 40, 1, ob));
    TST_TRUE(pol_amap_len(a) <= 200 && memcmp(oa, ob, pol_amap_len(a) * sizeof(float)) == 0);
    pol_amap_free(a);
    pol_amap_free(b);
}

static pol_head *open_head(pol_learner l, uint32_t dim, uint32_t k)
{
    pol_head_config cfg;
    pol_head_config_default(&cfg, dim, 1);
    cfg.learner = l;
    cfg.action_dim = k;
    cfg.seed = 77;
    pol_head *h = NULL;
    TST_OK(pol_head_new(&cfg, &h));
    return h;
}

static void shape_rules(void)
{
    pol_head_config cfg;
    pol_head *h = NULL;
    pol_head_config_default(&cfg, 8, 1);
    cfg.action_dim = 4;
    cfg.learner = POL_LEARNER_PG;
    TST_EQ(pol_head_new(&cfg, &h), BASE_EINVAL); /* pg learns per action */
    cfg.learner = POL_LEARNER_RIDGE;
    cfg.features = POL_FEATURES_QUAD;
    TST_EQ(pol_head_new(&cfg, &h), BASE_EINVAL); /* the action map replaces the feature map */
    cfg.features = POL_FEATURES_LINEAR;
    cfg.n_actions = 2;
    TST_EQ(pol_head_new(&cfg, &h), BASE_EINVAL); /* one shared model */
    TST_TRUE(h == NULL);
    h = open_head(POL_LEARNER_RIDGE, 8, 4);
    TST_EQ(pol_head_get_config(h)->interaction_dim, 8);
    pol_head_free(h);
}

/*
 * A world: reward = 0.5 + 0.4 tanh(x' A z) with A of rank 2. The head learns on a pool of
 * 30 actions; then each of 200 fresh contexts offers 6 actions never seen before. A
 * greedy choice over them must be well above a random one.
 */
#define W_D 6
#define W_K 5
#define W_N 6

static double world_reward(const double A[W_D][W_K], const float *x, const float *z)
{
    double s = 0.0;
    for (int i = 0; i < W_D; i++) {
        for (int j = 0; j < W_K; j++) {
            s += (double)x[i] * A[i][j] * (double)z[j];
        }
    }
    return 0.5 + 0.4 * tanh(s);
}

static void fill(float *v, uint32_t n, uint64_t *rng)
{
    for (uint32_t i = 0; i < n; i++) {
        v[i] = (float)gauss(rng);
    }
}

static void learn_generalises(pol_learner l, bool full)
{
    double A[W_D][W_K];
    uint64_t rng = 1234;
    for (int i = 0; i < W_D; i++) {
        for (int j = 0; j < W_K; j++) {
            A[i][j] = (i == j ? 0.8 : 0.0) + (i == j + 1 ? -0.5 : 0.0);
        }
    }
    float pool[30][W_K];
    for (int a = 0; a < 30; a++) {
        fill(pool[a], W_K, &rng);
    }
    pol_head *h = open_head(l, W_D, W_K);
    base_decision *d = base_decision_new_open(W_D, W_N, W_K);
    TST_TRUE(h != NULL && d != NULL);
    double rewards[W_N];
    bool ok = true;
    for (int t = 0; t < 3000; t++) {
        fill(d->embedding, W_D, &rng);
        for (uint32_t c = 0; c < W_N; c++) {
            uint32_t a = (uint32_t)(base_splitmix64(&rng) % 30);
            memcpy(d->features + c * W_K, pool[a], sizeof(pool[a]));
            d->action[c] = 0;
            d->base_logit[c] = 0.0f;
            rewards[c] = world_reward(A, d->embedding, d->features + c * W_K);
        }
        char id[32];
        snprintf(id, sizeof(id), "ev-%d", t);
        ok = ok && pol_head_pmf(h, d->embedding, W_N, d->action, d->base_logit, d->pmf) == BASE_OK;
        d->chosen = pol_sample(d->pmf, W_N, id, 5);
        if (full) {
            ok = ok && pol_head_learn_full(h, d, rewards) == BASE_OK;
        } else {
            ok = ok && pol_head_learn(h, d, rewards[d->chosen]) == BASE_OK;
        }
    }
    TST_TRUE(ok);
    double greedy = 0.0, random = 0.0, best = 0.0;
    for (int t = 0; t < 200; t++) {
        fill(d->embedding, W_D, &rng);
        fill(d->features, W_N * W_K, &rng); /* never seen */
        ok = ok && pol_head_pmf(h, d->embedding, W_N, d->action, d->base_logit, d->pmf) == BASE_OK;
        uint32_t g = 0;
        double top = 0.0, mean = 0.0;
        for (uint32_t c = 0; c < W_N; c++) {
            double r = world_reward(A, d->embedding, d->features + c * W_K);
            g = d->pmf[c] > d->pmf[g] ? c : g;
            top = r > top ? r : top;
            mean += r / W_N;
        }
        greedy += world_reward(A, d->embedding, d->features + g * W_K) / 200.0;
        random += mean / 200.0;
        best += top / 200.0;
    }
    printf("# %s%s: unseen actions, greedy %.3f random %.3f best %.3f\n", pol_learner_name(l),
           full ? " (full)" : "", greedy, random, best);
    TST_TRUE(ok);
    TST_TRUE(greedy > random + 0.5 * (best - random));
    pol_head_free(h);
    base_decision_free(d);
}

/* A snapshot serves bit for bit; restore refuses another action_dim; learn another shape. */
static void snapshots_and_refusals(void)
{
    uint64_t rng = 99;
    pol_head *h = open_head(POL_LEARNER_RIDGE, 4, 3);
    base_decision *d = base_decision_new_open(4, 5, 3);
    for (int t = 0; t < 50; t++) {
        fill(d->embedding, 4 + 5 * 3, &rng);
        for (uint32_t c = 0; c < 5; c++) {
            d->pmf[c] = 0.2f;
        }
        d->chosen = (uint32_t)t % 5;
        if (pol_head_learn(h, d, d->features[d->chosen * 3] > 0.0f ? 1.0 : 0.0) != BASE_OK) {
            TST_TRUE(!"learn failed");
        }
    }
    base_snapshot *m = NULL;
    pol_head *g = NULL;
    TST_OK(pol_head_snapshot(h, &m));
    TST_EQ(m->settings.action_dim, 3);
    TST_EQ(m->settings.interaction_dim, 4);
    TST_OK(pol_head_from_snapshot(m, &g));
    float p1[5], p2[5];
    TST_OK(pol_head_pmf(h, d->embedding, 5, d->action, d->base_logit, p1));
    TST_OK(pol_head_pmf(g, d->embedding, 5, d->action, d->base_logit, p2));
    TST_TRUE(memcmp(p1, p2, sizeof(p1)) == 0);
    TST_EQ(pol_head_checksum(h), pol_head_checksum(g));
    /* pmf, explain and the views agree. */
    float sc[5], xs[5], p3[5];
    pol_breakdown bd = {.head_score = sc, .explore = xs, .pmf = p3};
    TST_OK(pol_head_explain(h, d->embedding, 5, d->action, d->base_logit, &bd));
    TST_TRUE(memcmp(p1, p3, sizeof(p1)) == 0);
    TST_OK(pol_head_pmf_views(h, 1, pol_head_get_config(h), d->embedding, 5, d->action,
                              d->base_logit, p3, NULL));
    TST_TRUE(memcmp(p1, p3, sizeof(p1)) == 0);

    pol_head *other = open_head(POL_LEARNER_RIDGE, 4, 2);
    uint64_t before = pol_head_checksum(other);
    TST_EQ(pol_head_restore(other, m), BASE_EINVAL);
    TST_EQ(pol_head_learn(other, d, 1.0), BASE_EINVAL); /* 3 features per candidate, not 2 */
    TST_EQ(pol_head_checksum(other), before);
    base_decision *closed = base_decision_new(4, 5);
    closed->pmf[0] = 1.0f;
    TST_EQ(pol_head_learn(h, closed, 1.0), BASE_EINVAL);
    d->features[4] = INFINITY;
    TST_EQ(pol_head_pmf(h, d->embedding, 5, d->action, d->base_logit, p1), BASE_ENUMERIC);
    base_decision_free(closed);
    pol_head_free(other);
    pol_head_free(g);
    pol_head_free(h);
    base_snapshot_free(m);
    base_decision_free(d);
}

int main(void)
{
    map_layout_and_defaults();
    shape_rules();
    learn_generalises(POL_LEARNER_RIDGE, false);
    learn_generalises(POL_LEARNER_IWR, false);
    learn_generalises(POL_LEARNER_RIDGE, true);
    snapshots_and_refusals();
    return tst_done();
}
