/*
 * The "iwr" learner and the KL penalty of "pg", through the head's API
 * (plus pg's exported KL helpers), and the softmax they share. The
 * synthetic world is the one of test_pol_head.c.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/hash.h"
#include "base/record.h"
#include "policy/head.h"
#include "policy/iwr.h"
#include "policy/pg.h"
#include "policy/softmax.h"
#include "bandit_world.h"
#include "tap.h"

static pol_head *make_kl(pol_learner learner, uint32_t dim, uint32_t n_actions, double eps,
                         double kl)
{
    pol_head_config cfg;
    pol_head_config_default(&cfg, dim, n_actions);
    cfg.learner = learner;
    cfg.epsilon = eps;
    cfg.kl = kl;
    cfg.seed = 42;
    pol_head *h = NULL;
    TST_OK(pol_head_new(&cfg, &h));
    return h;
}

static pol_head *iwr_make(uint32_t dim, uint32_t n_actions, double eps)
{
    return make_kl(POL_LEARNER_IWR, dim, n_actions, eps, 0.0);
}

static int uniform_train(pol_head *h, const world *w, uint64_t seed, int n, float x_scale)
{
    uint64_t rng = seed;
    bandit_ctx b;
    base_decision *d = base_decision_new(LD, LK);
    int failed = d == NULL ? 1 : 0;
    for (int i = 0; i < n && d != NULL; i++) {
        world_draw(w, &rng, &b);
        for (int j = 0; j < LD; j++) {
            d->embedding[j] = b.x[j] * x_scale;
        }
        memcpy(d->action, b.action, sizeof(b.action));
        memcpy(d->base_logit, b.bl, sizeof(b.bl));
        for (int c = 0; c < LK; c++) {
            d->pmf[c] = 1.0f / LK;
        }
        d->chosen = (uint32_t)(base_splitmix64(&rng) % LK);
        double r = d->action[d->chosen] == b.best ? 1.0 : 0.0;
        failed += pol_head_learn(h, d, r) != BASE_OK;
    }
    base_decision_free(d);
    return failed;
}

/* The decision of test_pol_head.c: dim 4, 3 candidates, uniform logged pmf, chosen 1. */
static base_decision *decision_fixture(void)
{
    base_decision *d = base_decision_new(4, 3);
    float x[4] = {0.5f, -1.0f, 0.25f, 2.0f};
    memcpy(d->embedding, x, sizeof(x));
    for (uint32_t c = 0; c < 3; c++) {
        d->action[c] = 2 - c;
        d->base_logit[c] = (float)c * 0.5f;
        d->pmf[c] = 1.0f / 3.0f;
    }
    d->chosen = 1;
    return d;
}

/* iwr score of action @a with a flat base (p_base term 0): w . x + bias. */
static double iwr_flat_score(const pol_head *h, const float *x, uint32_t dim, uint32_t a)
{
    const float *w = pol_head_weights(h, a);
    double s = (double)w[dim + 1];
    for (uint32_t j = 0; j < dim; j++) {
        s += (double)w[j] * (double)x[j];
    }
    return s;
}

/* ---- iwr ---- */

static void iwr_fresh_head_serves_the_base_models_top_candidate(void)
{
    pol_head *h = iwr_make(4, 3, 0.0);
    float x[4] = {1.0f, 0.0f, -1.0f, 0.5f};
    uint32_t act[3] = {0, 1, 2};
    float bl[3] = {0.1f, 2.0f, -1.0f};
    float pmf[3];
    TST_OK(pol_head_pmf(h, x, 3, act, bl, pmf));
    TST_NEAR(pmf[1], 1.0, 0);
    TST_NEAR(pmf[0] + pmf[2], 0.0, 0);
    float flat[3] = {0.0f, 0.0f, 0.0f};
    TST_OK(pol_head_pmf(h, x, 3, act, flat, pmf));
    TST_NEAR(pmf[0], 1.0 / 3.0, 1e-6); /* ties share: tol 1e-6 */
    const float *w = pol_head_weights(h, 2);
    TST_NEAR(w[4], 1.0, 0); /* base_weight */
    TST_NEAR(w[5], 0.5, 0); /* prior_mean */
    TST_TRUE(pol_head_weights(h, 3) == NULL);
    pol_head_free(h);

    /* Defaults: greedy, eps 0.01, the iwr learning rate; softmax and ucb are refused. */
    pol_head *d = iwr_make(4, 3, -1.0);
    const pol_head_config *c = pol_head_get_config(d);
    TST_EQ(c->explorer, POL_EXPLORE_GREEDY);
    TST_NEAR(c->epsilon, POL_IWR_DEFAULT_EPSILON, 0);
    TST_NEAR(c->learning_rate, POL_IWR_DEFAULT_LR, 0);
    pol_head_free(d);
    pol_head_config cfg;
    pol_head *bad = NULL;
    pol_head_config_default(&cfg, 4, 3);
    cfg.learner = POL_LEARNER_IWR;
    cfg.explorer = POL_EXPLORE_SOFTMAX;
    TST_EQ(pol_head_new(&cfg, &bad), BASE_EINVAL);
    cfg.explorer = POL_EXPLORE_UCB;
    TST_EQ(pol_head_new(&cfg, &bad), BASE_EINVAL);
    cfg.explorer = POL_EXPLORE_IGW;
    TST_OK(pol_head_new(&cfg, &bad));
    pol_head_free(bad);
    pol_learner l;
    TST_TRUE(pol_learner_from_name("iwr", &l) && l == POL_LEARNER_IWR);
    TST_STREQ(pol_learner_name(POL_LEARNER_IWR), "iwr");
}

static void iwr_learns_a_linear_bandit(void)
{
    world w;
    world_init(&w, 2024);
    pol_head *base = iwr_make(LD, LK, 0.01);
    pol_head *h = iwr_make(LD, LK, 0.01);
    TST_EQ(bandit_train(h, &w, 11, 5000), 0);
    TST_EQ(pol_head_n_updates(h), 5000);
    double acc_base = served_accuracy(base, &w, 99, 2000);
    double acc_served = served_accuracy(h, &w, 99, 2000);
    printf("# iwr: base %.2f served %.2f (mean served probability of the best action, "
           "2000 held-out contexts)\n",
           acc_base, acc_served);
    TST_TRUE(acc_served > acc_base + 0.25);
    pol_head_free(h);
    pol_head_free(base);
}

static void iwr_reward_moves_the_chosen_candidate(void)
{
    base_decision *d = decision_fixture();
    float pmf[3];
    pol_head *up = iwr_make(4, 3, 0.0);
    /* Before: the base's top (candidate 2, logit 1.0) is served. */
    TST_OK(pol_head_pmf(up, d->embedding, 3, d->action, d->base_logit, pmf));
    TST_NEAR(pmf[2], 1.0, 0);
    /* Reward 2 on candidate 1 (0.47 predicted, 0.67 for candidate 2) makes it the top. */
    TST_OK(pol_head_learn(up, d, 2.0));
    TST_OK(pol_head_pmf(up, d->embedding, 3, d->action, d->base_logit, pmf));
    TST_NEAR(pmf[1], 1.0, 0);
    TST_EQ(pol_head_n_updates(up), 1);
    pol_head_free(up);

    /* Flat base: the score is w . x + bias; reward 0 lowers it from 0.5, reward 1 raises it. */
    for (int k = 0; k < 3; k++) {
        d->base_logit[k] = 0.0f;
    }
    uint32_t a = d->action[d->chosen];
    pol_head *down = iwr_make(4, 3, 0.0);
    TST_OK(pol_head_learn(down, d, 0.0));
    double s_down = iwr_flat_score(down, d->embedding, 4, a);
    TST_TRUE(s_down < 0.5 && s_down >= 0.0);
    pol_head *raise = iwr_make(4, 3, 0.0);
    TST_OK(pol_head_learn(raise, d, 1.0));
    double s_up = iwr_flat_score(raise, d->embedding, 4, a);
    TST_TRUE(s_up > 0.5 && s_up <= 1.0);
    /* The other actions are untouched. */
    TST_NEAR(iwr_flat_score(raise, d->embedding, 4, d->action[0]), 0.5, 0);
    pol_head_free(raise);
    pol_head_free(down);

    /* Full information: every candidate's model learns with weight 1. */
    pol_head *full = iwr_make(4, 3, 0.0);
    double r[3] = {1.0, -1.0, -1.0};
    TST_OK(pol_head_learn_full(full, d, r));
    TST_OK(pol_head_pmf(full, d->embedding, 3, d->action, d->base_logit, pmf));
    TST_NEAR(pmf[0], 1.0, 0);
    TST_TRUE(iwr_flat_score(full, d->embedding, 4, d->action[1]) < 0.5);
    TST_TRUE(iwr_flat_score(full, d->embedding, 4, d->action[2]) < 0.5);
    double bad[3] = {1.0, NAN, 0.0};
    uint64_t sum = pol_head_checksum(full);
    TST_EQ(pol_head_learn_full(full, d, bad), BASE_ENUMERIC);
    TST_EQ(pol_head_checksum(full), sum);
    pol_head_free(full);
    base_decision_free(d);
}

/* Fraction of @n held-out contexts (features times @x_scale) where a and b serve the same pmf. */
static double same_choices(const pol_head *a, const pol_head *b, const world *w, float x_scale,
                           int n, int *out_bitwise)
{
    uint64_t rng = 1234;
    bandit_ctx ctx;
    float xs[LD], pa[LK], pb[LK];
    int same = 0, bitwise = 1;
    for (int i = 0; i < n; i++) {
        world_draw(w, &rng, &ctx);
        for (int j = 0; j < LD; j++) {
            xs[j] = ctx.x[j] * x_scale;
        }
        if (pol_head_pmf(a, ctx.x, LK, ctx.action, ctx.bl, pa) != BASE_OK ||
            pol_head_pmf(b, xs, LK, ctx.action, ctx.bl, pb) != BASE_OK) {
            return -1.0;
        }
        same += memcmp(pa, pb, sizeof(pa)) == 0;
        bitwise = bitwise && memcmp(pa, pb, sizeof(pa)) == 0;
    }
    *out_bitwise = bitwise;
    return (double)same / n;
}

static void iwr_is_invariant_to_feature_scale(void)
{
    world w;
    world_init(&w, 77);
    pol_head *h1 = iwr_make(LD, LK, 0.0);
    pol_head *h1000 = iwr_make(LD, LK, 0.0);
    pol_head *h1024 = iwr_make(LD, LK, 0.0);
    TST_EQ(uniform_train(h1, &w, 5, 3000, 1.0f), 0);
    TST_EQ(uniform_train(h1000, &w, 5, 3000, 1000.0f), 0);
    TST_EQ(uniform_train(h1024, &w, 5, 3000, 1024.0f), 0);
    int bitwise = 0;
    double agree = same_choices(h1, h1000, &w, 1000.0f, 2000, &bitwise);
    printf("# iwr: greedy choices unchanged by x1000 on %.4f of 2000 contexts\n", agree);
    /* tol: at most 0.5% of choices flip (float rounding of x * 1000 on near-ties) */
    TST_TRUE(agree >= 0.995);
    /* A power of two commutes with every rounding: bit-identical pmfs. */
    TST_TRUE(same_choices(h1, h1024, &w, 1024.0f, 2000, &bitwise) == 1.0 && bitwise);
    /* ... and the context weights are exactly 1/1024 of the unscaled ones. */
    const float *w1 = pol_head_weights(h1, 1), *w2 = pol_head_weights(h1024, 1);
    int scaled = 1;
    for (int j = 0; j < LD; j++) {
        scaled = scaled && w2[j] * 1024.0f == w1[j];
    }
    TST_TRUE(scaled);
    pol_head_free(h1024);
    pol_head_free(h1000);
    pol_head_free(h1);
}

static void iwr_rejects_bad_input_unchanged(void)
{
    base_decision *d = decision_fixture();
    pol_head *h = iwr_make(4, 3, 0.1);
    TST_OK(pol_head_learn(h, d, 0.75));
    uint64_t sum = pol_head_checksum(h);

    TST_EQ(pol_head_learn(h, d, NAN), BASE_ENUMERIC);
    TST_EQ(pol_head_learn(h, d, INFINITY), BASE_ENUMERIC);
    d->embedding[2] = NAN;
    TST_EQ(pol_head_learn(h, d, 1.0), BASE_ENUMERIC);
    d->embedding[2] = INFINITY;
    TST_EQ(pol_head_learn(h, d, 1.0), BASE_ENUMERIC);
    d->embedding[2] = 0.25f;
    d->base_logit[0] = NAN;
    TST_EQ(pol_head_learn(h, d, 1.0), BASE_ENUMERIC);
    d->base_logit[0] = 0.0f;
    TST_EQ(pol_head_learn(h, d, 1e300), BASE_ENUMERIC); /* h g^2 overflows */
    d->pmf[d->chosen] = NAN;
    TST_EQ(pol_head_learn(h, d, 1.0), BASE_ENUMERIC);
    d->pmf[d->chosen] = 0.0f;
    TST_EQ(pol_head_learn(h, d, 1.0), BASE_EINVAL);
    d->pmf[d->chosen] = 1.0f / 3.0f;
    TST_EQ(pol_head_checksum(h), sum);
    TST_EQ(pol_head_n_updates(h), 1);

    float pmf[3] = {-7.0f, -7.0f, -7.0f};
    float xn[4] = {1.0f, NAN, 0.0f, 0.0f};
    TST_EQ(pol_head_pmf(h, xn, 3, d->action, d->base_logit, pmf), BASE_ENUMERIC);
    TST_TRUE(pmf[0] == -7.0f && pmf[2] == -7.0f);
    pol_head_free(h);
    base_decision_free(d);
}

static void iwr_snapshot_round_trips_and_stays_deterministic(void)
{
    world w;
    world_init(&w, 5);
    pol_head *h = iwr_make(LD, LK, 0.05);
    pol_head *twin = iwr_make(LD, LK, 0.05);
    uint64_t zero = pol_head_checksum(h);
    TST_EQ(bandit_train(h, &w, 3, 300), 0);
    TST_EQ(bandit_train(twin, &w, 3, 300), 0);
    TST_EQ(pol_head_checksum(h), pol_head_checksum(twin));
    TST_TRUE(pol_head_checksum(h) != zero);

    base_snapshot *m = NULL;
    TST_OK(pol_head_snapshot(h, &m));
    TST_STREQ(m->learner, "iwr");
    TST_EQ(m->n_params, LK * (LD + 2));
    TST_EQ(m->n_state, 2 + (LD + 2) + 2 * LK * (LD + 2));
    TST_EQ(m->n_updates, 300);
    pol_head *r = iwr_make(LD, LK, 0.05);
    TST_OK(pol_head_restore(r, m));
    TST_EQ(pol_head_checksum(r), pol_head_checksum(h));
    TST_EQ(pol_head_n_updates(r), 300);
    TST_TRUE(memcmp(pol_head_weights(r, 1), pol_head_weights(h, 1), (LD + 2) * sizeof(float)) == 0);
    TST_EQ(bandit_train(h, &w, 8, 100), 0);
    TST_EQ(bandit_train(r, &w, 8, 100), 0);
    TST_EQ(pol_head_checksum(r), pol_head_checksum(h));

    /* Bad snapshots change nothing. */
    uint64_t sum = pol_head_checksum(r);
    double keep = m->state[2 + (LD + 2) + LK * (LD + 2)]; /* the first accumulator */
    m->state[2 + (LD + 2) + LK * (LD + 2)] = -1.0;
    TST_EQ(pol_head_restore(r, m), BASE_EINVAL);
    m->state[2 + (LD + 2) + LK * (LD + 2)] = keep;
    m->state[0] = NAN;
    TST_EQ(pol_head_restore(r, m), BASE_ENUMERIC);
    pol_head *pg = make_kl(POL_LEARNER_PG, LD, LK, 0.05, 0.0);
    base_snapshot *pm = NULL;
    TST_OK(pol_head_snapshot(pg, &pm));
    TST_EQ(pol_head_restore(r, pm), BASE_EINVAL);
    (void)base_strlcpy(m->learner, "ridge", sizeof(m->learner));
    TST_EQ(pol_head_restore(r, m), BASE_EINVAL);
    TST_EQ(pol_head_checksum(r), sum);
    base_snapshot_free(pm);
    pol_head_free(pg);
    base_snapshot_free(m);
    pol_head_free(r);
    pol_head_free(twin);
    pol_head_free(h);
}

static void iwr_caps_the_importance_weight(void)
{
    base_decision *d = decision_fixture();
    for (int k = 0; k < 3; k++) {
        d->base_logit[k] = 0.0f;
    }
    uint32_t a = d->action[d->chosen];
    /* 1 / 1e-6 and 1 / (2 cap) are both past the cap: the same update. */
    pol_head *tiny = iwr_make(4, 3, 0.0);
    pol_head *past = iwr_make(4, 3, 0.0);
    pol_head *half = iwr_make(4, 3, 0.0);
    d->pmf[d->chosen] = 1e-6f;
    TST_OK(pol_head_learn(tiny, d, 1.0));
    d->pmf[d->chosen] = (float)(0.5 / POL_IWR_IW_MAX);
    TST_OK(pol_head_learn(past, d, 1.0));
    d->pmf[d->chosen] = 0.5f; /* weight 2: below the cap, a smaller step */
    TST_OK(pol_head_learn(half, d, 1.0));
    TST_EQ(pol_head_checksum(tiny), pol_head_checksum(past));
    TST_TRUE(pol_head_checksum(tiny) != pol_head_checksum(half));
    double s_tiny = iwr_flat_score(tiny, d->embedding, 4, a);
    double s_half = iwr_flat_score(half, d->embedding, 4, a);
    printf("# iwr: score after reward 1 from 0.5: weight %.0f -> %.4f, weight 2 -> %.4f\n",
           POL_IWR_IW_MAX, s_tiny, s_half);
    /* Importance-invariant: a heavier example moves further, never past the target. */
    TST_TRUE(s_tiny > s_half && s_half > 0.5 && s_tiny <= 1.0);
    pol_head_free(half);
    pol_head_free(past);
    pol_head_free(tiny);
    base_decision_free(d);
}

/* ---- pg with KL toward the base ---- */

static void kl_gradient_is_exactly_zero_at_the_base(void)
{
    double s[5] = {1.5, -0.5, 3.0, 0.25, -40.0};
    double g[5] = {1, 1, 1, 1, 1};
    pol_pg_kl_grad(s, s, 5, 7.0, g);
    int zero = 1;
    for (int k = 0; k < 5; k++) {
        zero = zero && g[k] == 0.0;
    }
    TST_TRUE(zero);
    TST_TRUE(pol_pg_kl(s, s, 5) == 0.0);

    /* Through the head: from zero weights the first update is the same with and without kl. */
    base_decision *d = decision_fixture();
    pol_head *plain = make_kl(POL_LEARNER_PG, 4, 3, 0.05, 0.0);
    pol_head *kl = make_kl(POL_LEARNER_PG, 4, 3, 0.05, 5.0);
    TST_OK(pol_head_learn(plain, d, 1.0));
    TST_OK(pol_head_learn(kl, d, 1.0));
    int same = 1;
    for (uint32_t a = 0; a < 3; a++) {
        same = same &&
               memcmp(pol_head_weights(plain, a), pol_head_weights(kl, a), 5 * sizeof(float)) == 0;
    }
    TST_TRUE(same);
    TST_EQ(pol_head_checksum(plain), pol_head_checksum(kl));
    /* Reward 0 at baseline 0: no advantage and no KL gradient, so nothing moves. */
    pol_head *still = make_kl(POL_LEARNER_PG, 4, 3, 0.05, 5.0);
    pol_head *fresh = make_kl(POL_LEARNER_PG, 4, 3, 0.05, 5.0);
    uint64_t w0 = pol_head_checksum(fresh);
    TST_OK(pol_head_learn(still, d, 0.0));
    const float *ws = pol_head_weights(still, 1);
    TST_TRUE(ws[0] == 0.0f && ws[4] == 0.0f);
    TST_TRUE(pol_head_checksum(still) != w0); /* only the reward baseline moved */
    pol_head_free(fresh);
    pol_head_free(still);
    pol_head_free(kl);
    pol_head_free(plain);
    base_decision_free(d);
}

static void kl_gradient_matches_finite_differences(void)
{
    double s[4] = {0.3, -1.2, 2.0, 0.7};
    double sb[4] = {1.0, 0.0, -0.5, 0.2};
    double g[4];
    double beta = 0.8, h = 1e-6;
    pol_pg_kl_grad(s, sb, 4, beta, g);
    TST_TRUE(pol_pg_kl(s, sb, 4) > 0.0);
    for (int k = 0; k < 4; k++) {
        double sp[4], sm[4];
        memcpy(sp, s, sizeof(s));
        memcpy(sm, s, sizeof(s));
        sp[k] += h;
        sm[k] -= h;
        double fd = -beta * (pol_pg_kl(sp, sb, 4) - pol_pg_kl(sm, sb, 4)) / (2.0 * h);
        TST_NEAR(g[k], fd, 1e-6); /* central difference, h = 1e-6: error ~1e-10 */
    }
}

/* Mean KL(pi || pi_base) of a pg head over @n held-out contexts (pg weights: [dim + 1]). */
static double mean_kl_to_base(const pol_head *h, const world *w, int n)
{
    uint64_t rng = 4321;
    bandit_ctx b;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        world_draw(w, &rng, &b);
        double s[LK], sb[LK];
        for (int c = 0; c < LK; c++) {
            const float *wa = pol_head_weights(h, b.action[c]);
            sb[c] = (double)b.bl[c];
            s[c] = sb[c] + (double)wa[LD];
            for (int j = 0; j < LD; j++) {
                s[c] += (double)wa[j] * (double)b.x[j];
            }
        }
        sum += pol_pg_kl(s, sb, LK);
    }
    return sum / n;
}

static void large_kl_keeps_the_policy_near_the_base(void)
{
    world w;
    world_init(&w, 2024);
    pol_head *free_pg = make_kl(POL_LEARNER_PG, LD, LK, 0.05, 0.0);
    pol_head *tied = make_kl(POL_LEARNER_PG, LD, LK, 0.05, 1.0);
    TST_EQ(bandit_train(free_pg, &w, 11, 3000), 0);
    TST_EQ(bandit_train(tied, &w, 11, 3000), 0);
    double kl_free = mean_kl_to_base(free_pg, &w, 1000);
    double kl_tied = mean_kl_to_base(tied, &w, 1000);
    printf("# pg: mean KL(pi || pi_base) after 3000 examples: kl 0 -> %.4f, kl 1 -> %.4f\n",
           kl_free, kl_tied);
    TST_TRUE(kl_tied < 0.5 * kl_free);

    pol_head_config cfg;
    pol_head *bad = NULL;
    pol_head_config_default(&cfg, 4, 3);
    TST_NEAR(cfg.kl, POL_PG_DEFAULT_KL, 0);
    cfg.learner = POL_LEARNER_PG;
    cfg.kl = -0.1;
    TST_EQ(pol_head_new(&cfg, &bad), BASE_EINVAL);
    cfg.kl = NAN;
    TST_EQ(pol_head_new(&cfg, &bad), BASE_EINVAL);
    TST_TRUE(bad == NULL);
    pol_head_free(tied);
    pol_head_free(free_pg);
}

/* Exact where it can be: max subtracted first, so shifts by exact amounts change no bit. */
static void softmax_subtracts_the_max_and_works_in_place(void)
{
    double s[3] = {1000.0, 999.0, -1000.0}; /* exp(1000) overflows */
    double q[3], p[3];
    double z = pol_softmax_exp(s, 3, q);
    TST_TRUE(q[0] == 1.0 && z >= 1.0 && z <= 3.0);
    pol_softmax(s, 3, p);
    TST_NEAR(p[0] + p[1] + p[2], 1.0, 1e-15);
    TST_NEAR(p[1] / p[0], exp(-1.0), 1e-15);
    TST_TRUE(p[2] >= 0.0 && p[2] < 1e-300);
    double t[3] = {1.0, 2.0, 3.0}, u[3] = {1025.0, 1026.0, 1027.0};
    double pt[3];
    pol_softmax(t, 3, pt);
    pol_softmax(u, 3, u); /* in place */
    TST_TRUE(memcmp(pt, u, sizeof(pt)) == 0);
    TST_TRUE(pol_softmax_exp(t, 0, q) == 0.0);
}

int main(void)
{
    softmax_subtracts_the_max_and_works_in_place();
    iwr_fresh_head_serves_the_base_models_top_candidate();
    iwr_learns_a_linear_bandit();
    iwr_reward_moves_the_chosen_candidate();
    iwr_is_invariant_to_feature_scale();
    iwr_rejects_bad_input_unchanged();
    iwr_snapshot_round_trips_and_stays_deterministic();
    iwr_caps_the_importance_weight();
    kl_gradient_is_exactly_zero_at_the_base();
    kl_gradient_matches_finite_differences();
    large_kl_keeps_the_policy_near_the_base();
    return tst_done();
}
