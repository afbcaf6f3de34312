#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/hash.h"
#include "base/record.h"
#include "policy/base_prob.h"
#include "policy/explore.h"
#include "policy/head.h"
#include "policy/learner.h"
#include "bandit_world.h"
#include "tap.h"

static pol_head *make(pol_learner learner, uint32_t dim, uint32_t n_actions, double eps)
{
    pol_head_config cfg;
    pol_head_config_default(&cfg, dim, n_actions);
    cfg.learner = learner;
    cfg.epsilon = eps;
    cfg.seed = 42;
    pol_head *h = NULL;
    TST_OK(pol_head_new(&cfg, &h));
    return h;
}

/* The "pg" learner: most of the tests below pin it. */
static pol_head *head_make(uint32_t dim, uint32_t n_actions, double eps)
{
    return make(POL_LEARNER_PG, dim, n_actions, eps);
}

static pol_head *ridge_make(uint32_t dim, uint32_t n_actions, double eps)
{
    return make(POL_LEARNER_RIDGE, dim, n_actions, eps);
}

static double pmf_sum(const float *pmf, uint32_t n)
{
    double s = 0.0;
    for (uint32_t c = 0; c < n; c++) {
        s += (double)pmf[c];
    }
    return s;
}

static void zero_head_without_epsilon_is_base_softmax(void)
{
    pol_head *h = head_make(8, 5, 0.0);
    float x[8] = {0.5f, -1.0f, 2.0f, 0.0f, 0.25f, 3.0f, -0.75f, 1.0f};
    uint32_t action[4] = {3, 0, 4, 1};
    float bl[4] = {1.5f, -0.5f, 3.0f, 0.25f};
    float pmf[4];
    TST_OK(pol_head_pmf(h, x, 4, action, bl, pmf));
    double z = 0.0;
    for (int c = 0; c < 4; c++) {
        z += exp((double)bl[c]);
    }
    for (int c = 0; c < 4; c++) {
        TST_NEAR(pmf[c], exp((double)bl[c]) / z, 1e-6); /* tol 1e-6 */
    }
    pol_head_free(h);

    /* Temperature 2 divides the logits. */
    pol_head_config cfg;
    pol_head_config_default(&cfg, 8, 5);
    cfg.learner = POL_LEARNER_PG;
    cfg.epsilon = 0.0;
    cfg.temperature = 2.0;
    TST_OK(pol_head_new(&cfg, &h));
    TST_OK(pol_head_pmf(h, x, 4, action, bl, pmf));
    z = 0.0;
    for (int c = 0; c < 4; c++) {
        z += exp((double)bl[c] / 2.0);
    }
    for (int c = 0; c < 4; c++) {
        TST_NEAR(pmf[c], exp((double)bl[c] / 2.0) / z, 1e-6); /* tol 1e-6 */
    }
    pol_head_free(h);
}

static void epsilon_floor_holds_for_extreme_logits(void)
{
    double eps = 0.2;
    pol_head *h = head_make(4, 4, eps);
    float x[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    uint32_t action[4] = {0, 1, 2, 3};
    float bl[4] = {80.0f, -80.0f, 0.0f, -20.0f};
    float pmf[4];
    TST_OK(pol_head_pmf(h, x, 4, action, bl, pmf));
    int all_above = 1;
    for (int c = 0; c < 4; c++) {
        /* float rounding is monotone, so p >= eps/n in double implies this exactly. */
        all_above = all_above && pmf[c] >= (float)(eps / 4.0);
    }
    TST_TRUE(all_above);
    TST_NEAR(pmf[0], 1.0 - eps + eps / 4.0, 1e-6);
    TST_NEAR(pmf_sum(pmf, 4), 1.0, 1e-6); /* tol 1e-6 */
    pol_head_free(h);
}

static void pmf_sums_to_one_for_all_sizes(void)
{
    static float bl[BASE_CAND_MAX];
    static uint32_t action[BASE_CAND_MAX];
    static float pmf[BASE_CAND_MAX];
    uint64_t rng = 7;
    pol_head *h = head_make(16, 64, 0.05);
    float x[16];
    for (int j = 0; j < 16; j++) {
        x[j] = (float)gauss(&rng);
    }
    uint32_t sizes[4] = {1, 3, 64, BASE_CAND_MAX};
    for (int t = 0; t < 4; t++) {
        uint32_t n = sizes[t];
        for (uint32_t c = 0; c < n; c++) {
            bl[c] = (float)(5.0 * gauss(&rng));
            action[c] = c % 64;
        }
        TST_OK(pol_head_pmf(h, x, n, action, bl, pmf));
        TST_NEAR(pmf_sum(pmf, n), 1.0, 1e-6); /* tol 1e-6 */
    }
    TST_EQ(pmf[0] >= 0.0f, 1);
    pol_head_free(h);
}

static int untouched(const float *pmf, uint32_t n)
{
    int ok = 1;
    for (uint32_t c = 0; c < n; c++) {
        ok = ok && pmf[c] == -7.0f;
    }
    return ok;
}

static void pmf_rejects_bad_input_without_writing(void)
{
    pol_head *h = head_make(4, 3, 0.1);
    float x[4] = {1.0f, 2.0f, 3.0f, 4.0f};
    uint32_t action[3] = {0, 1, 2};
    float bl[3] = {0.0f, 1.0f, 2.0f};
    float pmf[3] = {-7.0f, -7.0f, -7.0f};

    uint32_t bad_action[3] = {0, 3, 2};
    TST_EQ(pol_head_pmf(h, x, 3, bad_action, bl, pmf), BASE_EINVAL);
    TST_TRUE(untouched(pmf, 3));
    TST_EQ(pol_head_pmf(h, x, 0, action, bl, pmf), BASE_EINVAL);
    TST_EQ(pol_head_pmf(h, x, BASE_CAND_MAX + 1, action, bl, pmf), BASE_EINVAL);
    TST_TRUE(untouched(pmf, 3));

    float xn[4] = {1.0f, NAN, 3.0f, 4.0f};
    TST_EQ(pol_head_pmf(h, xn, 3, action, bl, pmf), BASE_ENUMERIC);
    TST_TRUE(untouched(pmf, 3));
    float xi[4] = {1.0f, INFINITY, 3.0f, 4.0f};
    TST_EQ(pol_head_pmf(h, xi, 3, action, bl, pmf), BASE_ENUMERIC);
    TST_TRUE(untouched(pmf, 3));
    float bln[3] = {0.0f, NAN, 2.0f};
    TST_EQ(pol_head_pmf(h, x, 3, action, bln, pmf), BASE_ENUMERIC);
    TST_TRUE(untouched(pmf, 3));
    pol_head_free(h);
}

static void config_out_of_range_is_rejected(void)
{
    pol_head_config cfg;
    pol_head *h = NULL;
    pol_head_config_default(&cfg, 0, 4);
    TST_EQ(pol_head_new(&cfg, &h), BASE_EINVAL);
    pol_head_config_default(&cfg, 4, BASE_ACTIONS_MAX + 1);
    TST_EQ(pol_head_new(&cfg, &h), BASE_EINVAL);
    pol_head_config_default(&cfg, 4, 4);
    cfg.epsilon = 1.5;
    TST_EQ(pol_head_new(&cfg, &h), BASE_EINVAL);
    pol_head_config_default(&cfg, 4, 4);
    cfg.temperature = 0.0;
    TST_EQ(pol_head_new(&cfg, &h), BASE_EINVAL);
    pol_head_config_default(&cfg, 4, 4);
    cfg.learning_rate = NAN;
    TST_EQ(pol_head_new(&cfg, &h), BASE_EINVAL);
    TST_TRUE(h == NULL);
}

static void sample_is_deterministic_and_follows_pmf(void)
{
    float pmf[5] = {0.1f, 0.0f, 0.45f, 0.25f, 0.2f};
    uint32_t a = pol_sample(pmf, 5, "event-abc", 9);
    TST_EQ(pol_sample(pmf, 5, "event-abc", 9), a);

    enum { N = 20000 };
    int count[5] = {0};
    char id[32];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "ev-%d", i);
        uint32_t c = pol_sample(pmf, 5, id, 9);
        count[c < 5 ? c : 0]++;
    }
    TST_EQ(count[1], 0); /* zero mass is never drawn */
    for (int c = 0; c < 5; c++) {
        /* tol 0.02 absolute; the binomial sd at N = 20000 is <= 0.0036 */
        TST_NEAR((double)count[c] / N, pmf[c], 0.02);
    }

    /* Mass short of 1 (rounding): u beyond the sum takes the last positive index. */
    float short_pmf[3] = {0.25f, 0.25f, 0.0f};
    int all_valid = 1;
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof(id), "g-%d", i);
        all_valid = all_valid && pol_sample(short_pmf, 3, id, 1) <= 1;
    }
    TST_TRUE(all_valid);
}

static void pg_learns_a_linear_bandit(void)
{
    world w;
    world_init(&w, 2024);
    pol_head *base = head_make(LD, LK, 0.05);
    pol_head *h = head_make(LD, LK, 0.05);
    TST_EQ(bandit_train(h, &w, 11, 5000), 0);
    TST_EQ(pol_head_n_updates(h), 5000);
    double acc_base = served_accuracy(base, &w, 99, 2000);
    double acc_served = served_accuracy(h, &w, 99, 2000);
    printf("# base %.2f served %.2f (mean served probability of the best action, "
           "2000 held-out contexts)\n",
           acc_base, acc_served);
    TST_TRUE(acc_base > 0.25 && acc_base < 0.6);
    TST_TRUE(acc_served > acc_base + 0.25);
    pol_head_free(h);
    pol_head_free(base);
}

static double score_of(const pol_head *h, const float *x, uint32_t dim, uint32_t a)
{
    const float *w = pol_head_weights(h, a);
    double s = (double)w[dim];
    for (uint32_t j = 0; j < dim; j++) {
        s += (double)w[j] * (double)x[j];
    }
    return s;
}

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

static void one_update_moves_the_chosen_score(void)
{
    base_decision *d = decision_fixture();
    uint32_t a = d->action[d->chosen];
    float before[3], after[3];

    pol_head *up = head_make(4, 3, 0.0);
    TST_OK(pol_head_pmf(up, d->embedding, 3, d->action, d->base_logit, before));
    TST_OK(pol_head_learn(up, d, 1.0));
    TST_TRUE(score_of(up, d->embedding, 4, a) > 0.0);
    TST_OK(pol_head_pmf(up, d->embedding, 3, d->action, d->base_logit, after));
    TST_TRUE(after[d->chosen] > before[d->chosen]);
    TST_EQ(pol_head_n_updates(up), 1);

    pol_head *down = head_make(4, 3, 0.0);
    TST_OK(pol_head_learn(down, d, -1.0));
    TST_TRUE(score_of(down, d->embedding, 4, a) < 0.0);
    TST_OK(pol_head_pmf(down, d->embedding, 3, d->action, d->base_logit, after));
    TST_TRUE(after[d->chosen] < before[d->chosen]);

    TST_TRUE(pol_head_weights(up, 3) == NULL);
    pol_head_free(down);
    pol_head_free(up);
    base_decision_free(d);
}

static void learn_rejects_bad_examples_unchanged(void)
{
    base_decision *d = decision_fixture();
    pol_head *h = head_make(4, 3, 0.1);
    TST_OK(pol_head_learn(h, d, 0.5));
    uint64_t sum = pol_head_checksum(h);

    TST_EQ(pol_head_learn(h, d, NAN), BASE_ENUMERIC);
    TST_EQ(pol_head_learn(h, d, INFINITY), BASE_ENUMERIC);
    d->embedding[2] = NAN;
    TST_EQ(pol_head_learn(h, d, 1.0), BASE_ENUMERIC);
    d->embedding[2] = 0.25f;
    d->base_logit[0] = -INFINITY;
    TST_EQ(pol_head_learn(h, d, 1.0), BASE_ENUMERIC);
    d->base_logit[0] = 0.0f;
    d->embedding[0] = 1e30f;
    TST_EQ(pol_head_learn(h, d, 1e300), BASE_ENUMERIC); /* g * x would overflow g^2 */
    d->embedding[0] = 0.5f;
    d->pmf[d->chosen] = 0.0f;
    TST_EQ(pol_head_learn(h, d, 1.0), BASE_EINVAL);
    d->pmf[d->chosen] = 1.0f / 3.0f;
    d->chosen = 3;
    TST_EQ(pol_head_learn(h, d, 1.0), BASE_EINVAL);
    d->chosen = 1;
    d->action[0] = 3;
    TST_EQ(pol_head_learn(h, d, 1.0), BASE_EINVAL);
    d->action[0] = 2;
    TST_EQ(pol_head_checksum(h), sum);
    TST_EQ(pol_head_n_updates(h), 1);

    base_decision *wrong = base_decision_new(5, 3);
    wrong->pmf[0] = 1.0f;
    TST_EQ(pol_head_learn(h, wrong, 1.0), BASE_EINVAL);
    TST_EQ(pol_head_checksum(h), sum);
    base_decision_free(wrong);
    pol_head_free(h);
    base_decision_free(d);
}

static void snapshot_restore_round_trips(void)
{
    world w;
    world_init(&w, 5);
    pol_head *h = head_make(LD, LK, 0.05);
    TST_EQ(bandit_train(h, &w, 3, 300), 0);
    base_snapshot *m = NULL;
    TST_OK(pol_head_snapshot(h, &m));
    TST_STREQ(m->learner, "pg");
    TST_EQ(m->n_params, LK * (LD + 1));
    TST_EQ(m->n_updates, 300);

    pol_head *r = head_make(LD, LK, 0.05);
    TST_OK(pol_head_restore(r, m));
    TST_EQ(pol_head_checksum(r), pol_head_checksum(h));
    TST_EQ(pol_head_n_updates(r), 300);

    uint64_t rng = 77;
    bandit_ctx b;
    float p1[LK], p2[LK];
    int same = 1;
    for (int i = 0; i < 50; i++) {
        world_draw(&w, &rng, &b);
        TST_OK(pol_head_pmf(h, b.x, LK, b.action, b.bl, p1));
        TST_OK(pol_head_pmf(r, b.x, LK, b.action, b.bl, p2));
        same = same && memcmp(p1, p2, sizeof(p1)) == 0;
    }
    TST_TRUE(same);

    /* Continuing both from the same state stays bit-identical. */
    TST_EQ(bandit_train(h, &w, 8, 100), 0);
    TST_EQ(bandit_train(r, &w, 8, 100), 0);
    TST_EQ(pol_head_checksum(r), pol_head_checksum(h));
    base_snapshot_free(m);
    pol_head_free(r);
    pol_head_free(h);
}

static void same_sequence_gives_same_checksum(void)
{
    world w;
    world_init(&w, 6);
    pol_head *a = head_make(LD, LK, 0.05);
    pol_head *b = head_make(LD, LK, 0.05);
    uint64_t zero = pol_head_checksum(a);
    TST_EQ(bandit_train(a, &w, 21, 500), 0);
    TST_EQ(bandit_train(b, &w, 21, 500), 0);
    TST_EQ(pol_head_checksum(a), pol_head_checksum(b));
    TST_TRUE(pol_head_checksum(a) != zero);
    TST_TRUE(memcmp(pol_head_weights(a, 2), pol_head_weights(b, 2), (LD + 1) * sizeof(float)) == 0);
    pol_head_free(b);
    pol_head_free(a);
}

static void restore_rejects_mismatch_unchanged(void)
{
    pol_head *small = head_make(4, 3, 0.05);
    pol_head *h = head_make(5, 3, 0.05);
    base_decision *d = decision_fixture();
    TST_OK(pol_head_learn(small, d, 1.0));
    base_snapshot *m = NULL;
    TST_OK(pol_head_snapshot(small, &m));
    uint64_t sum = pol_head_checksum(h);
    TST_EQ(pol_head_restore(h, m), BASE_EINVAL); /* dim 4 into dim 5 */
    TST_EQ(pol_head_checksum(h), sum);

    pol_head *other = head_make(4, 2, 0.05);
    TST_EQ(pol_head_restore(other, m), BASE_EINVAL); /* 3 actions into 2 */
    pol_head_free(other);

    pol_head *same = head_make(4, 3, 0.05);
    sum = pol_head_checksum(same);
    (void)base_strlcpy(m->learner, "linucb", sizeof(m->learner));
    TST_EQ(pol_head_restore(same, m), BASE_EINVAL);
    (void)base_strlcpy(m->learner, "pg", sizeof(m->learner));
    m->params[1] = NAN;
    TST_EQ(pol_head_restore(same, m), BASE_ENUMERIC);
    m->params[1] = 0.0f;
    m->state[3] = -1.0; /* a negative AdaGrad accumulator */
    TST_EQ(pol_head_restore(same, m), BASE_EINVAL);
    TST_EQ(pol_head_checksum(same), sum);

    base_snapshot_free(m);
    pol_head_free(same);
    base_decision_free(d);
    pol_head_free(h);
    pol_head_free(small);
}

/* ---- the ridge learner and the explorers ---- */

static void fresh_ridge_serves_the_base_models_top_candidate(void)
{
    pol_head *h = ridge_make(4, 3, 0.0);
    float x[4] = {1.0f, 0.0f, -1.0f, 0.5f};
    uint32_t act[3] = {0, 1, 2};
    float bl[3] = {0.1f, 2.0f, -1.0f};
    float pmf[3];
    TST_OK(pol_head_pmf(h, x, 3, act, bl, pmf));
    TST_NEAR(pmf[1], 1.0, 0);
    TST_NEAR(pmf[0] + pmf[2], 0.0, 0);
    /* Equal base logits: the top is shared evenly, so propensities stay exact. */
    float flat[3] = {0.0f, 0.0f, 0.0f};
    TST_OK(pol_head_pmf(h, x, 3, act, flat, pmf));
    TST_NEAR(pmf[0], 1.0 / 3.0, 1e-6);
    TST_NEAR(pmf[2], 1.0 / 3.0, 1e-6);
    pol_head_free(h);
    /* The default explorer is greedy with the 0.01 floor. */
    pol_head *d = ridge_make(4, 3, -1.0);
    TST_OK(pol_head_pmf(d, x, 3, act, bl, pmf));
    TST_NEAR(pmf[0], 0.01 / 3.0, 1e-6);
    TST_NEAR(pmf[1], 0.99 + 0.01 / 3.0, 1e-6);
    TST_NEAR(pol_head_get_config(d)->epsilon, 0.01, 0);
    TST_NEAR(pol_head_get_config(d)->lambda, (4 + 2) / 2.0, 0);
    pol_head_free(d);
}

static void ridge_learns_a_linear_bandit(void)
{
    world w;
    world_init(&w, 2024);
    pol_head *base = ridge_make(LD, LK, 0.01);
    pol_head *h = ridge_make(LD, LK, 0.01);
    TST_EQ(bandit_train(h, &w, 11, 5000), 0);
    double acc_base = served_accuracy(base, &w, 99, 2000);
    double acc_served = served_accuracy(h, &w, 99, 2000);
    printf("# ridge: base %.2f served %.2f\n", acc_base, acc_served);
    TST_TRUE(acc_served > acc_base + 0.25);
    pol_head_free(h);
    pol_head_free(base);
}

static void ridge_update_moves_the_chosen_candidate(void)
{
    base_decision *d = decision_fixture();
    float pmf[3];
    pol_head *up = ridge_make(4, 3, 0.0);
    /* Before: the base's top (candidate 2, logit 1.0) is served. */
    TST_OK(pol_head_pmf(up, d->embedding, 3, d->action, d->base_logit, pmf));
    TST_NEAR(pmf[2], 1.0, 0);
    /* Reward 2 on candidate 1 (above anything the prior expects) makes it the top. */
    TST_OK(pol_head_learn(up, d, 2.0));
    TST_OK(pol_head_pmf(up, d->embedding, 3, d->action, d->base_logit, pmf));
    TST_NEAR(pmf[1], 1.0, 0);
    pol_head_free(up);

    /* Full information: every candidate's reward is used. */
    pol_head *full = ridge_make(4, 3, 0.0);
    double r[3] = {1.0, -1.0, -1.0};
    TST_OK(pol_head_learn_full(full, d, r));
    TST_OK(pol_head_pmf(full, d->embedding, 3, d->action, d->base_logit, pmf));
    TST_NEAR(pmf[0], 1.0, 0);
    TST_EQ(pol_head_n_updates(full), 1);
    double bad[3] = {1.0, NAN, 0.0};
    uint64_t sum = pol_head_checksum(full);
    TST_EQ(pol_head_learn_full(full, d, bad), BASE_ENUMERIC);
    TST_EQ(pol_head_checksum(full), sum);
    pol_head_free(full);
    base_decision_free(d);
}

static void ridge_snapshot_round_trips_and_stays_deterministic(void)
{
    world w;
    world_init(&w, 5);
    pol_head *h = ridge_make(LD, LK, 0.05);
    pol_head *twin = ridge_make(LD, LK, 0.05);
    TST_EQ(bandit_train(h, &w, 3, 300), 0);
    TST_EQ(bandit_train(twin, &w, 3, 300), 0);
    TST_EQ(pol_head_checksum(h), pol_head_checksum(twin));
    base_snapshot *m = NULL;
    TST_OK(pol_head_snapshot(h, &m));
    TST_STREQ(m->learner, "ridge");
    pol_head *r = ridge_make(LD, LK, 0.05);
    TST_OK(pol_head_restore(r, m));
    TST_EQ(pol_head_checksum(r), pol_head_checksum(h));
    TST_EQ(bandit_train(h, &w, 8, 100), 0);
    TST_EQ(bandit_train(r, &w, 8, 100), 0);
    TST_EQ(pol_head_checksum(r), pol_head_checksum(h));
    /* A pg snapshot does not load into a ridge head. */
    pol_head *pg = head_make(LD, LK, 0.05);
    base_snapshot *pm = NULL;
    TST_OK(pol_head_snapshot(pg, &pm));
    TST_EQ(pol_head_restore(r, pm), BASE_EINVAL);
    base_snapshot_free(pm);
    pol_head_free(pg);
    base_snapshot_free(m);
    pol_head_free(r);
    pol_head_free(twin);
    pol_head_free(h);
}

/* A head rebuilt from a snapshot alone (its recorded settings) scores like the original. */
static void head_from_snapshot_serves_the_same(void)
{
    enum { D = 300 }; /* past the ridge projection threshold: the seed matters */
    pol_learner learners[] = {POL_LEARNER_RIDGE, POL_LEARNER_PG, POL_LEARNER_IWR};
    for (size_t l = 0; l < 3; l++) {
        pol_head_config cfg;
        pol_head_config_default(&cfg, D, 3);
        cfg.learner = learners[l];
        cfg.explorer = learners[l] == POL_LEARNER_PG ? POL_EXPLORE_SOFTMAX : POL_EXPLORE_IGW;
        cfg.epsilon = 0.03;
        cfg.temperature = 1.7;
        cfg.seed = 99 + l;
        pol_head *h = NULL;
        TST_OK(pol_head_new(&cfg, &h));
        base_decision *d = base_decision_new(D, 3);
        uint64_t st = l + 1;
        for (int i = 0; i < 40; i++) {
            for (uint32_t j = 0; j < D; j++) {
                d->embedding[j] = (float)(base_u64_to_unit(base_splitmix64(&st)) - 0.5);
            }
            for (uint32_t c = 0; c < 3; c++) {
                d->action[c] = c;
                d->base_logit[c] = (float)c * 0.3f;
                d->pmf[c] = 1.0f / 3.0f;
            }
            d->chosen = (uint32_t)(i % 3);
            TST_OK(pol_head_learn(h, d, i % 2 == 0 ? 1.0 : 0.0));
        }
        base_snapshot *m = NULL;
        pol_head *r = NULL;
        TST_OK(pol_head_snapshot(h, &m));
        TST_STREQ(m->settings.explorer, pol_explorer_name(cfg.explorer));
        TST_OK(pol_head_from_snapshot(m, &r));
        float p1[3], p2[3];
        TST_OK(pol_head_pmf(h, d->embedding, 3, d->action, d->base_logit, p1));
        TST_OK(pol_head_pmf(r, d->embedding, 3, d->action, d->base_logit, p2));
        TST_TRUE(memcmp(p1, p2, sizeof(p1)) == 0);
        TST_EQ(pol_head_checksum(r), pol_head_checksum(h));
        TST_EQ(pol_head_n_updates(r), 40);
        /* A snapshot without settings, or with an unknown explorer, is refused. */
        pol_head *bad = NULL;
        m->settings.explorer[0] = '\0';
        TST_EQ(pol_head_from_snapshot(m, &bad), BASE_EINVAL);
        (void)base_strlcpy(m->settings.explorer, "nope", sizeof(m->settings.explorer));
        TST_EQ(pol_head_from_snapshot(m, &bad), BASE_EINVAL);
        TST_TRUE(bad == NULL);
        pol_head_free(r);
        base_snapshot_free(m);
        base_decision_free(d);
        pol_head_free(h);
    }
}

static void long_contexts_are_projected(void)
{
    enum { D = 300 };
    pol_head *h = ridge_make(D, 2, 0.0);
    base_decision *d = base_decision_new(D, 2);
    for (uint32_t j = 0; j < D; j++) {
        d->embedding[j] = (float)((j % 7) - 3) / 3.0f;
    }
    d->action[0] = 0;
    d->action[1] = 1;
    d->pmf[0] = d->pmf[1] = 0.5f;
    d->chosen = 0;
    float pmf[2];
    TST_OK(pol_head_learn(h, d, 2.0));
    TST_OK(pol_head_pmf(h, d->embedding, 2, d->action, d->base_logit, pmf));
    TST_NEAR(pmf[0], 1.0, 0);
    base_snapshot *m = NULL;
    TST_OK(pol_head_snapshot(h, &m));
    TST_EQ(m->n_params, 2 * (128 + 2));
    base_snapshot_free(m);
    base_decision_free(d);
    pol_head_free(h);
}

static void igw_and_ucb_explorers_are_exact(void)
{
    pol_head_config cfg;
    pol_head_config_default(&cfg, 2, 3);
    cfg.explorer = POL_EXPLORE_IGW;
    cfg.epsilon = 0.0;
    cfg.gamma = 10.0;
    cfg.prior_mean = 0.0;
    pol_head *h = NULL;
    TST_OK(pol_head_new(&cfg, &h));
    float x[2] = {0.0f, 0.0f};
    uint32_t act[3] = {0, 1, 2};
    float bl[3] = {0.0f, 0.0f, 20.0f};
    float pmf[3];
    TST_OK(pol_head_pmf(h, x, 3, act, bl, pmf));
    /* Scores are base probabilities: ~0, ~0, ~1; gap ~1 -> 1 / (3 + 10). */
    TST_NEAR(pmf[0], 1.0 / 13.0, 1e-6);
    TST_NEAR(pmf[2], 1.0 - 2.0 / 13.0, 1e-6);
    pol_head_free(h);

    cfg.explorer = POL_EXPLORE_UCB;
    TST_OK(pol_head_new(&cfg, &h));
    TST_OK(pol_head_pmf(h, x, 3, act, bl, pmf));
    TST_NEAR(pmf[0] + pmf[1] + pmf[2], 1.0, 1e-6);
    pol_head_free(h);

    cfg.explorer = POL_EXPLORE_SOFTMAX; /* needs logits: not for ridge */
    TST_EQ(pol_head_new(&cfg, &h), BASE_EINVAL);
    cfg.learner = POL_LEARNER_PG;
    cfg.explorer = POL_EXPLORE_UCB; /* needs a posterior: not for pg */
    TST_EQ(pol_head_new(&cfg, &h), BASE_EINVAL);
    pol_learner l;
    pol_explorer e;
    TST_TRUE(pol_learner_from_name("ridge", &l) && l == POL_LEARNER_RIDGE);
    TST_TRUE(pol_explorer_from_name("igw", &e) && e == POL_EXPLORE_IGW);
    TST_TRUE(!pol_explorer_from_name("thompson", &e));
}

/* Every name maps back to its value; unknown values and names are refused. */
static void names_round_trip_and_unknowns_are_refused(void)
{
    static const char *const learners[] = {"ridge", "pg", "iwr"};
    static const char *const explorers[] = {"auto", "greedy", "softmax", "igw", "ucb"};
    for (unsigned i = 0; i < 3; i++) {
        pol_learner l = (pol_learner)99;
        TST_TRUE(pol_learner_from_name(learners[i], &l) && (unsigned)l == i);
        TST_STREQ(pol_learner_name(l), learners[i]);
    }
    for (unsigned i = 0; i < 5; i++) {
        pol_explorer x = (pol_explorer)99;
        TST_TRUE(pol_explorer_from_name(explorers[i], &x) && (unsigned)x == i);
        TST_STREQ(pol_explorer_name(x), explorers[i]);
    }
    TST_STREQ(pol_learner_name((pol_learner)3), "unknown");
    TST_STREQ(pol_explorer_name((pol_explorer)5), "unknown");
    pol_learner l = POL_LEARNER_PG;
    TST_TRUE(!pol_learner_from_name("Ridge", &l) && l == POL_LEARNER_PG);
    pol_head_config cfg;
    pol_head *h = NULL;
    pol_head_config_default(&cfg, 2, 3);
    cfg.learner = (pol_learner)3;
    TST_EQ(pol_head_new(&cfg, &h), BASE_EINVAL);
    cfg.learner = POL_LEARNER_RIDGE;
    cfg.explorer = (pol_explorer)5;
    TST_EQ(pol_head_new(&cfg, &h), BASE_EINVAL);
    TST_TRUE(h == NULL);
}

/* The resolved defaults each learner reports (bench and the service print them). */
static void automatic_settings_resolve_per_learner(void)
{
    static const struct {
        pol_learner l;
        pol_explorer x;
        double eps, lr;
    } want[] = {
        {POL_LEARNER_RIDGE, POL_EXPLORE_GREEDY, POL_RIDGE_DEFAULT_EPSILON, POL_IWR_DEFAULT_LR},
        {POL_LEARNER_PG, POL_EXPLORE_SOFTMAX, POL_PG_DEFAULT_EPSILON, POL_PG_DEFAULT_LR},
        {POL_LEARNER_IWR, POL_EXPLORE_GREEDY, POL_IWR_DEFAULT_EPSILON, POL_IWR_DEFAULT_LR},
    };
    for (unsigned i = 0; i < 3; i++) {
        pol_head_config cfg;
        pol_head *h = NULL;
        pol_head_config_default(&cfg, 3, 2);
        cfg.learner = want[i].l;
        TST_OK(pol_head_new(&cfg, &h));
        const pol_head_config *c = pol_head_get_config(h);
        TST_EQ(c->explorer, want[i].x);
        TST_NEAR(c->epsilon, want[i].eps, 0);
        TST_NEAR(c->learning_rate, want[i].lr, 0);
        /* ridge resolves lambda to p / 2 = (3 + 2) / 2; the others leave it. */
        TST_NEAR(c->lambda, want[i].l == POL_LEARNER_RIDGE ? 2.5 : 0.0, 0);
        pol_head_free(h);
    }
}

/* Every table entry is complete, so a new learner or explorer cannot half-exist. */
static void learner_and_explorer_tables_are_complete(void)
{
    unsigned n = 0;
    const pol_learner_ops *l = NULL;
    for (unsigned i = 0; (l = pol_learner_ops_of((pol_learner)i)) != NULL; i++, n++) {
        TST_STREQ(l->name, pol_learner_name((pol_learner)i));
        TST_TRUE(l->new && l->free && l->scores && l->learn && l->weights && l->checksum &&
                 l->n_params && l->n_state && l->export && l->import);
        const pol_explorer_ops *d = pol_explorer_ops_of(l->default_explorer);
        TST_TRUE(d != NULL && d->pmf != NULL);
        TST_TRUE(l->default_epsilon >= 0.0 && l->default_epsilon <= 1.0);
        TST_TRUE(l->default_learning_rate > 0.0);
    }
    TST_EQ(n, 3);
    n = 0;
    const pol_explorer_ops *x = NULL;
    for (unsigned i = 0; (x = pol_explorer_ops_of((pol_explorer)i)) != NULL; i++, n++) {
        TST_STREQ(x->name, pol_explorer_name((pol_explorer)i));
        TST_TRUE((x->pmf == NULL) == (i == POL_EXPLORE_AUTO));
    }
    TST_EQ(n, 5);
}

/* explain's pmf is pol_head_pmf's bit for bit, and its shares follow the header's definition. */
static void explain_matches_pmf_bitwise_for_every_explorer(void)
{
    static const struct {
        pol_learner l;
        pol_explorer x;
    } combos[] = {
        {POL_LEARNER_PG, POL_EXPLORE_SOFTMAX}, {POL_LEARNER_PG, POL_EXPLORE_GREEDY},
        {POL_LEARNER_PG, POL_EXPLORE_IGW},     {POL_LEARNER_RIDGE, POL_EXPLORE_GREEDY},
        {POL_LEARNER_RIDGE, POL_EXPLORE_UCB},  {POL_LEARNER_RIDGE, POL_EXPLORE_IGW},
        {POL_LEARNER_IWR, POL_EXPLORE_GREEDY},
    };
    float x[4] = {0.5f, -1.0f, 2.0f, 0.25f};
    uint32_t act[5] = {4, 0, 2, 1, 3};
    float bl[5] = {1.5f, -0.5f, 3.0f, 0.25f, 3.0f};
    for (size_t i = 0; i < sizeof(combos) / sizeof(combos[0]); i++) {
        pol_head_config cfg;
        pol_head_config_default(&cfg, 4, 6);
        cfg.learner = combos[i].l;
        cfg.explorer = combos[i].x;
        cfg.epsilon = 0.1;
        cfg.gamma = 10.0;
        cfg.seed = 7;
        pol_head *h = NULL;
        TST_OK(pol_head_new(&cfg, &h));
        /* A few updates so the head is not the prior. */
        base_decision *d = base_decision_new(4, 5);
        memcpy(d->embedding, x, sizeof(x));
        memcpy(d->action, act, sizeof(act));
        memcpy(d->base_logit, bl, sizeof(bl));
        for (uint32_t k = 0; k < 5; k++) {
            TST_OK(pol_head_pmf(h, x, 5, act, bl, d->pmf));
            d->chosen = k;
            TST_OK(pol_head_learn(h, d, k == 1 ? 1.0 : 0.0));
        }
        float pmf[5], sc[5], xs[5], pmf2[5];
        pol_breakdown b = {.head_score = sc, .explore = xs, .pmf = pmf2};
        TST_OK(pol_head_pmf(h, x, 5, act, bl, pmf));
        TST_OK(pol_head_explain(h, x, 5, act, bl, &b));
        TST_TRUE(memcmp(pmf, pmf2, sizeof(pmf)) == 0);
        float best = sc[0];
        for (uint32_t c = 1; c < 5; c++) {
            best = sc[c] > best ? sc[c] : best;
        }
        float floor = (float)(0.1 / 5.0);
        for (uint32_t c = 0; c < 5; c++) {
            TST_TRUE(isfinite(sc[c]));
            TST_TRUE(xs[c] >= floor && xs[c] <= pmf[c]);
            if (combos[i].x == POL_EXPLORE_GREEDY) {
                TST_TRUE(xs[c] == floor); /* exactly eps / n, top or not */
            }
            if (combos[i].x != POL_EXPLORE_UCB && sc[c] == best) {
                TST_TRUE(xs[c] == floor);
            }
        }
        base_decision_free(d);
        pol_head_free(h);
    }
}

/* pg at eps = 0 with zero weights: scores are base logits / T, base_softmax is the pmf. */
static void explain_of_a_fresh_pg_head_is_the_base_model(void)
{
    pol_head_config cfg;
    pol_head_config_default(&cfg, 2, 3);
    cfg.learner = POL_LEARNER_PG;
    cfg.epsilon = 0.0;
    cfg.temperature = 2.0;
    pol_head *h = NULL;
    TST_OK(pol_head_new(&cfg, &h));
    float x[2] = {1.0f, 1.0f};
    uint32_t act[3] = {0, 1, 2};
    float bl[3] = {1.0f, 3.0f, -2.0f};
    float sc[3], xs[3], pmf[3], bp[3];
    pol_breakdown b = {.head_score = sc, .explore = xs, .pmf = pmf};
    TST_OK(pol_head_explain(h, x, 3, act, bl, &b));
    TST_OK(pol_base_softmax(bl, 3, 2.0, bp));
    for (uint32_t c = 0; c < 3; c++) {
        TST_NEAR(pmf[c], bp[c], 1e-6); /* tol 1e-6 */
    }
    TST_NEAR(sc[1] - sc[0], 1.0, 1e-6); /* (3 - 1) / T, tol 1e-6 */
    TST_TRUE(xs[1] == 0.0f);            /* top, eps = 0 */
    TST_TRUE(xs[0] == pmf[0] && xs[2] == pmf[2]);
    pol_head_free(h);
}

int main(void)
{
    explain_matches_pmf_bitwise_for_every_explorer();
    explain_of_a_fresh_pg_head_is_the_base_model();
    learner_and_explorer_tables_are_complete();
    names_round_trip_and_unknowns_are_refused();
    automatic_settings_resolve_per_learner();
    zero_head_without_epsilon_is_base_softmax();
    epsilon_floor_holds_for_extreme_logits();
    pmf_sums_to_one_for_all_sizes();
    pmf_rejects_bad_input_without_writing();
    config_out_of_range_is_rejected();
    sample_is_deterministic_and_follows_pmf();
    pg_learns_a_linear_bandit();
    one_update_moves_the_chosen_score();
    learn_rejects_bad_examples_unchanged();
    snapshot_restore_round_trips();
    same_sequence_gives_same_checksum();
    restore_rejects_mismatch_unchanged();
    fresh_ridge_serves_the_base_models_top_candidate();
    ridge_learns_a_linear_bandit();
    ridge_update_moves_the_chosen_candidate();
    ridge_snapshot_round_trips_and_stays_deterministic();
    head_from_snapshot_serves_the_same();
    long_contexts_are_projected();
    igw_and_ucb_explorers_are_exact();
    return tst_done();
}
