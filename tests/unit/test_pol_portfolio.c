/*
 * The portfolio of heads and its selector (policy/portfolio.h), on the
 * synthetic world of test_pol_head.c: a portfolio of one head is that head
 * bit for bit; the selector moves serving to a clearly better member once
 * and stays there; a clearly worse challenger is dropped and stops
 * learning; the whole is deterministic; bad examples change nothing.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/hash.h"
#include "base/record.h"
#include "policy/head.h"
#include "policy/portfolio.h"
#include "bandit_world.h"
#include "tap.h"

/*
 * A head that serves the uniform pmf (greedy with eps 1): clearly worse than
 * learning. Its prior differs from good_member()'s, so it has a learner of
 * its own (the portfolio shares a learner only between members that differ
 * in explorer settings alone).
 */
static void uniform_member(pol_head_config *c)
{
    pol_head_config_default(c, LD, LK);
    c->epsilon = 1.0;
    c->lambda = 100.0;
    c->seed = 7;
}

static void good_member(pol_head_config *c)
{
    pol_head_config_default(c, LD, LK);
    c->seed = 7;
}

/*
 * Run @n rounds of decide (the portfolio's pmf, sampled by event id) and
 * learn; record the leader after every round in @leaders (NULL: not kept).
 * Returns the number of rewarded rounds among the last @n / 4.
 */
static int run(pol_portfolio *pf, const world *w, int n, uint32_t *leaders, int *errors)
{
    uint64_t rng = 99;
    bandit_ctx b;
    base_decision *d = base_decision_new(LD, LK);
    int wins = 0;
    for (int i = 0; i < n && d != NULL; i++) {
        world_draw(w, &rng, &b);
        memcpy(d->embedding, b.x, sizeof(b.x));
        memcpy(d->action, b.action, sizeof(b.action));
        memcpy(d->base_logit, b.bl, sizeof(b.bl));
        snprintf(d->event_id, sizeof(d->event_id), "train-%d", i);
        if (pol_portfolio_pmf(pf, d->embedding, LK, d->action, d->base_logit, d->pmf) != BASE_OK) {
            (*errors)++;
            continue;
        }
        d->chosen = pol_sample(d->pmf, LK, d->event_id, 42);
        double r = d->action[d->chosen] == b.best ? 1.0 : 0.0;
        wins += r > 0.0 && i >= n - n / 4;
        *errors += pol_portfolio_learn(pf, d, r) != BASE_OK;
        if (leaders != NULL) {
            leaders[i] = pol_portfolio_leader(pf);
        }
    }
    base_decision_free(d);
    return wins;
}

static void single_is_the_head(const world *w)
{
    pol_head_config hc;
    good_member(&hc);
    pol_portfolio_config pc;
    pol_portfolio_config_single(&pc, &hc);
    pol_portfolio *pf = NULL;
    pol_head *h = NULL;
    TST_OK(pol_portfolio_new(&pc, &pf));
    TST_OK(pol_head_new(&hc, &h));
    int errors = 0;
    (void)run(pf, w, 500, NULL, &errors);
    /* The same stream through the head alone (same ids, seeds): same parameters. */
    errors += bandit_train(h, w, 99, 500);
    TST_EQ(errors, 0);
    TST_EQ(pol_head_checksum(pol_portfolio_member(pf, 0)), pol_head_checksum(h));
    TST_EQ(pol_head_n_updates(pol_portfolio_member(pf, 0)), 500);
    TST_EQ(pol_portfolio_switches(pf), 0);
    pol_head_free(h);
    pol_portfolio_free(pf);
}

static void switches_once_to_the_better_member(const world *w)
{
    pol_portfolio_config pc;
    pol_head_config bad, good;
    uniform_member(&bad);
    good_member(&good);
    pol_portfolio_config_single(&pc, &bad);
    pc.member[pc.n_members++] = good;
    pol_portfolio *pf = NULL;
    TST_OK(pol_portfolio_new(&pc, &pf));
    enum { N = 4000 };
    static uint32_t leaders[N];
    int errors = 0;
    int wins = run(pf, w, N, leaders, &errors);
    TST_EQ(errors, 0);
    TST_EQ(pol_portfolio_leader(pf), 1);
    TST_EQ(pol_portfolio_switches(pf), 1); /* no flapping */
    int first = -1;
    for (int i = 0; i < N && first < 0; i++) {
        first = leaders[i] == 1 ? i : -1;
    }
    printf("# switched to the learning member after %d examples; last quarter %d/%d won\n",
           first + 1, wins, N / 4);
    TST_TRUE(first >= (int)pc.min_examples - 1 && first < 2000);
    /* Serving the learning head, the last quarter wins far above uniform (1/4). */
    TST_TRUE(wins > N / 4 / 2);
    TST_TRUE(served_accuracy(pol_portfolio_member(pf, 1), w, 3, 500) > 0.6);
    /* Serving is the leader's exact pmf. */
    float a[LK], b2[LK];
    uint64_t rng = 5;
    bandit_ctx b;
    world_draw(w, &rng, &b);
    TST_OK(pol_portfolio_pmf(pf, b.x, LK, b.action, b.bl, a));
    TST_OK(pol_head_pmf(pol_portfolio_member(pf, 1), b.x, LK, b.action, b.bl, b2));
    TST_TRUE(memcmp(a, b2, sizeof(a)) == 0);
    /* Member 0 (the reward model) is never dropped. */
    TST_EQ(pol_portfolio_live(pf), 2);
    pol_portfolio_free(pf);
}

static void drops_a_clearly_worse_challenger(const world *w)
{
    pol_portfolio_config pc;
    pol_head_config bad, good;
    uniform_member(&bad);
    good_member(&good);
    pol_portfolio_config_single(&pc, &good);
    pc.member[pc.n_members++] = bad;
    pol_portfolio *pf = NULL;
    TST_OK(pol_portfolio_new(&pc, &pf));
    int errors = 0;
    (void)run(pf, w, 3000, NULL, &errors);
    TST_EQ(errors, 0);
    TST_EQ(pol_portfolio_leader(pf), 0);
    TST_EQ(pol_portfolio_live(pf), 1);
    pol_member_info mi;
    TST_TRUE(pol_portfolio_member_info(pf, 1, &mi));
    TST_TRUE(!mi.live && mi.vs_lead < 0.0);
    /* It stopped learning when dropped. */
    TST_TRUE(pol_head_n_updates(pol_portfolio_member(pf, 1)) < 3000);
    TST_EQ(pol_head_n_updates(pol_portfolio_member(pf, 0)), 3000);
    TST_TRUE(!pol_portfolio_member_info(pf, 2, &mi));
    pol_portfolio_free(pf);
}

/*
 * Explorer views over one learner serve, bit for bit, what heads built with
 * those explorer settings serve after learning the same examples.
 */
static void views_match_separate_heads(const world *w)
{
    pol_head_config cfg[3];
    pol_head *h[3];
    for (int v = 0; v < 3; v++) {
        good_member(&cfg[v]);
    }
    cfg[1].explorer = POL_EXPLORE_UCB;
    cfg[1].ucb_alpha = 0.7;
    cfg[2].explorer = POL_EXPLORE_IGW;
    cfg[2].gamma = 50.0;
    cfg[2].epsilon = 0.05;
    TST_TRUE(pol_head_same_learner(&cfg[0], &cfg[1]) && pol_head_same_learner(&cfg[0], &cfg[2]));
    pol_head_config other = cfg[0];
    other.lambda = 3.0;
    TST_TRUE(!pol_head_same_learner(&cfg[0], &other));
    for (int v = 0; v < 3; v++) {
        TST_OK(pol_head_new(&cfg[v], &h[v]));
    }
    /* The same uniformly logged examples into all three. */
    uint64_t rng = 17;
    bandit_ctx b;
    base_decision *d = base_decision_new(LD, LK);
    int errors = 0;
    for (int i = 0; i < 300; i++) {
        world_draw(w, &rng, &b);
        memcpy(d->embedding, b.x, sizeof(b.x));
        memcpy(d->action, b.action, sizeof(b.action));
        memcpy(d->base_logit, b.bl, sizeof(b.bl));
        for (int c = 0; c < LK; c++) {
            d->pmf[c] = 1.0f / LK;
        }
        d->chosen = (uint32_t)(base_splitmix64(&rng) % LK);
        for (int v = 0; v < 3; v++) {
            errors += pol_head_learn(h[v], d, d->action[d->chosen] == b.best) != BASE_OK;
        }
    }
    base_decision_free(d);
    TST_EQ(errors, 0);
    int same = 0;
    for (int i = 0; i < 100; i++) {
        float views[3 * LK], one[LK], score[LK];
        world_draw(w, &rng, &b);
        TST_OK(pol_head_pmf_views(h[0], 3, cfg, b.x, LK, b.action, b.bl, views, score));
        for (int v = 0; v < 3; v++) {
            TST_OK(pol_head_pmf(h[v], b.x, LK, b.action, b.bl, one));
            same += memcmp(one, views + v * LK, sizeof(one)) == 0;
        }
    }
    TST_EQ(same, 300);
    /* A view its learner cannot serve (softmax needs logits; ridge scores are rewards). */
    pol_head_config soft = cfg[0];
    soft.explorer = POL_EXPLORE_SOFTMAX;
    TST_TRUE(!pol_head_view_ok(h[0], &soft));
    float out[LK];
    TST_EQ(pol_head_pmf_views(h[0], 1, &soft, b.x, LK, b.action, b.bl, out, NULL), BASE_EINVAL);
    for (int v = 0; v < 3; v++) {
        pol_head_free(h[v]);
    }
}

static void deterministic_and_bad_input_changes_nothing(const world *w)
{
    pol_head_config hc;
    good_member(&hc);
    pol_portfolio_config pc;
    pol_portfolio_config_auto(&pc, &hc);
    TST_TRUE(pc.n_members >= 2);
    pol_portfolio *p1 = NULL, *p2 = NULL;
    TST_OK(pol_portfolio_new(&pc, &p1));
    TST_OK(pol_portfolio_new(&pc, &p2));
    enum { N = 1500 };
    static uint32_t l1[N], l2[N];
    int errors = 0;
    (void)run(p1, w, N, l1, &errors);
    (void)run(p2, w, N, l2, &errors);
    TST_EQ(errors, 0);
    TST_TRUE(memcmp(l1, l2, sizeof(l1)) == 0);
    for (uint32_t i = 0; i < pol_portfolio_size(p1); i++) {
        TST_EQ(pol_head_checksum(pol_portfolio_member(p1, i)),
               pol_head_checksum(pol_portfolio_member(p2, i)));
    }
    /* A logged propensity of 0, a NaN reward: refused, nothing learned. */
    base_decision *d = base_decision_new(LD, LK);
    uint64_t rng = 1;
    bandit_ctx b;
    world_draw(w, &rng, &b);
    memcpy(d->embedding, b.x, sizeof(b.x));
    memcpy(d->action, b.action, sizeof(b.action));
    memcpy(d->base_logit, b.bl, sizeof(b.bl));
    for (int c = 0; c < LK; c++) {
        d->pmf[c] = c == 0 ? 0.0f : 1.0f / 3.0f;
    }
    d->chosen = 0;
    uint64_t before = pol_head_checksum(pol_portfolio_member(p1, 0));
    TST_EQ(pol_portfolio_learn(p1, d, 1.0), BASE_EINVAL);
    d->chosen = 1;
    TST_EQ(pol_portfolio_learn(p1, d, NAN), BASE_ENUMERIC);
    TST_EQ(pol_head_checksum(pol_portfolio_member(p1, 0)), before);
    base_decision_free(d);
    /* Members of different shapes, a negative z: refused. */
    pol_portfolio_config bad = pc;
    bad.member[1].dim = LD + 1;
    pol_portfolio *p3 = NULL;
    TST_EQ(pol_portfolio_new(&bad, &p3), BASE_EINVAL);
    bad = pc;
    bad.z = -1.0;
    TST_EQ(pol_portfolio_new(&bad, &p3), BASE_EINVAL);
    pol_portfolio_free(p1);
    pol_portfolio_free(p2);
}

/*
 * A snapshot restores the whole portfolio: the restored copy and the
 * original, fed the same examples afterwards, stay bit-identical. The
 * snapshot's own head is the serving member.
 */
static void snapshot_restores_the_whole_portfolio(const world *w)
{
    pol_portfolio_config pc;
    pol_head_config bad, good;
    uniform_member(&bad);
    good_member(&good);
    pol_portfolio_config_single(&pc, &bad);
    pc.member[pc.n_members++] = good;
    good.explorer = POL_EXPLORE_UCB;
    pc.member[pc.n_members++] = good;
    pol_portfolio *p1 = NULL, *p2 = NULL;
    TST_OK(pol_portfolio_new(&pc, &p1));
    TST_OK(pol_portfolio_new(&pc, &p2));
    int errors = 0;
    (void)run(p1, w, 1000, NULL, &errors);
    base_snapshot *m = NULL;
    TST_OK(pol_portfolio_snapshot(p1, &m));
    TST_EQ(m->pf_n_learners, 2);
    TST_EQ(m->n_updates, 1000);
    TST_TRUE(strstr(m->pf_members, "ridge/ucb:") != NULL);
    TST_OK(pol_portfolio_restore(p2, m));
    TST_EQ(pol_portfolio_checksum(p2), pol_portfolio_checksum(p1));
    TST_EQ(pol_portfolio_leader(p2), pol_portfolio_leader(p1));
    /* The snapshot's head serves what the leader serves (no challengers mixed in). */
    pol_head *h = NULL;
    TST_OK(pol_head_from_snapshot(m, &h));
    float a[LK], b2[LK];
    uint64_t rng = 8;
    bandit_ctx b;
    world_draw(w, &rng, &b);
    TST_OK(pol_portfolio_member_pmf(p1, pol_portfolio_leader(p1), b.x, LK, b.action, b.bl, a));
    TST_OK(pol_head_pmf(h, b.x, LK, b.action, b.bl, b2));
    TST_TRUE(memcmp(a, b2, sizeof(a)) == 0);
    pol_head_free(h);
    /* The same further examples keep them identical. */
    static uint32_t l1[500], l2[500];
    (void)run(p1, w, 500, l1, &errors);
    (void)run(p2, w, 500, l2, &errors);
    TST_EQ(errors, 0);
    TST_TRUE(memcmp(l1, l2, sizeof(l1)) == 0);
    TST_EQ(pol_portfolio_checksum(p2), pol_portfolio_checksum(p1));
    /* A selector that does not fit is refused and changes nothing. */
    uint64_t before = pol_portfolio_checksum(p2);
    double lead = m->pf_sel[0];
    m->pf_sel[0] = 7.0; /* a leader past the members */
    TST_EQ(pol_portfolio_restore(p2, m), BASE_EINVAL);
    TST_EQ(pol_portfolio_checksum(p2), before);
    m->pf_sel[0] = lead;
    double iw = m->pf_sel[6];
    m->pf_sel[6] = INFINITY; /* an infinite importance weight (the codec refuses it too) */
    TST_EQ(pol_portfolio_restore(p2, m), BASE_EINVAL);
    TST_EQ(pol_portfolio_checksum(p2), before);
    m->pf_sel[6] = iw;
    TST_OK(pol_portfolio_restore(p2, m));
    base_snapshot_free(m);
    /* A single head's snapshot continues as member 0. */
    pol_head *single = NULL;
    TST_OK(pol_head_new(&bad, &single));
    errors += bandit_train(single, w, 3, 200);
    TST_OK(pol_head_snapshot(single, &m));
    TST_EQ(m->pf_n_learners, 0);
    TST_OK(pol_portfolio_restore(p2, m));
    TST_EQ(pol_head_checksum(pol_portfolio_member(p2, 0)), pol_head_checksum(single));
    TST_EQ(pol_portfolio_n_updates(p2), 200);
    TST_EQ(pol_portfolio_leader(p2), 0);
    base_snapshot_free(m);
    pol_head_free(single);
    pol_portfolio_free(p1);
    pol_portfolio_free(p2);
}

/* The served pmf against its mixture (1 - S) pi_lead + share pi_other; 1 when all of @n draws match. */
static int serves_the_mixture(const pol_portfolio *pf, const world *w, int n, uint64_t seed)
{
    uint64_t rng = seed;
    bandit_ctx b;
    int exact = 0;
    uint32_t lead = pol_portfolio_leader(pf);
    pol_member_info ml, mo;
    (void)pol_portfolio_member_info(pf, lead, &ml);
    (void)pol_portfolio_member_info(pf, 1 - lead, &mo);
    for (int i = 0; i < n; i++) {
        float got[LK], p0[LK], p1[LK], sc[LK], ex[LK], pm[LK];
        world_draw(w, &rng, &b);
        TST_OK(pol_portfolio_pmf(pf, b.x, LK, b.action, b.bl, got));
        TST_OK(pol_portfolio_member_pmf(pf, lead, b.x, LK, b.action, b.bl, p0));
        TST_OK(pol_portfolio_member_pmf(pf, 1 - lead, b.x, LK, b.action, b.bl, p1));
        pol_breakdown bd = {sc, ex, pm};
        TST_OK(pol_portfolio_explain(pf, b.x, LK, b.action, b.bl, &bd));
        bool ok = memcmp(pm, got, sizeof(got)) == 0;
        double sum = 0.0;
        for (int c = 0; c < LK; c++) {
            ok = ok && fabs((double)got[c] - (ml.share * p0[c] + mo.share * p1[c])) < 1e-6;
            ok = ok && ex[c] >= 0.0f && ex[c] <= got[c] + 1e-7f;
            sum += got[c];
        }
        if (mo.share == 0.0) {
            ok = ok && memcmp(got, p0, sizeof(got)) == 0; /* the leader alone, to the bit */
        }
        exact += ok && fabs(sum - 1.0) < 1e-5;
    }
    return exact == n;
}

/*
 * The served pmf is the exact mixture of the leader and the challengers by
 * their shares, and explain gives it bit for bit. Before min_examples a
 * challenger gets mix / 2; a clearly worse one ends with nothing, and the
 * leader serves alone.
 */
static void mix_serves_the_exact_mixture(const world *w)
{
    pol_portfolio_config pc;
    pol_head_config good, other, bad;
    good_member(&good);
    other = good;
    other.lambda = 3.0; /* a learner of its own */
    pol_portfolio_config_single(&pc, &good);
    pc.member[pc.n_members++] = other;
    pc.mix = 0.2;
    pol_portfolio *pf = NULL;
    TST_OK(pol_portfolio_new(&pc, &pf));
    pol_member_info mi;
    TST_TRUE(pol_portfolio_member_info(pf, 1, &mi));
    TST_NEAR(mi.share, 0.1, 1e-12);
    TST_TRUE(pol_portfolio_member_info(pf, 0, &mi));
    TST_NEAR(mi.share, 0.9, 1e-12);
    TST_TRUE(serves_the_mixture(pf, w, 50, 4));
    int errors = 0;
    (void)run(pf, w, 200, NULL, &errors);
    TST_EQ(errors, 0);
    TST_EQ(pol_portfolio_live(pf), 2);
    TST_TRUE(serves_the_mixture(pf, w, 50, 5));
    pol_portfolio_free(pf);

    /* Against a uniform member: its share falls to 0 as the evidence comes in. */
    uniform_member(&bad);
    pol_portfolio_config_single(&pc, &good);
    pc.member[pc.n_members++] = bad;
    pc.mix = 0.5;
    pc.drop_after = 1000000; /* kept live, so its share is what the test sees */
    TST_OK(pol_portfolio_new(&pc, &pf));
    double first = 0.0;
    TST_TRUE(pol_portfolio_member_info(pf, 1, &mi));
    first = mi.share;
    (void)run(pf, w, 3000, NULL, &errors);
    TST_EQ(errors, 0);
    TST_EQ(pol_portfolio_leader(pf), 0);
    TST_TRUE(pol_portfolio_member_info(pf, 1, &mi));
    TST_TRUE(mi.live);
    TST_NEAR(first, 0.25, 1e-12);
    TST_TRUE(mi.share == 0.0);
    TST_TRUE(serves_the_mixture(pf, w, 50, 6));
    pol_portfolio_free(pf);
}

/* Restore into a portfolio or head of @seed what one of seed 1 saved; the restore's result. */
static base_err restore_across_seeds(uint32_t dim, bool portfolio, uint64_t seed)
{
    pol_head_config hc;
    pol_head_config_default(&hc, dim, 3);
    hc.seed = 1;
    base_snapshot *m = NULL;
    base_err e = BASE_EINVAL;
    if (portfolio) {
        pol_portfolio_config pc;
        pol_portfolio_config_auto(&pc, &hc);
        pol_portfolio *a = NULL, *b = NULL;
        if (pol_portfolio_new(&pc, &a) == BASE_OK && pol_portfolio_snapshot(a, &m) == BASE_OK) {
            for (uint32_t k = 0; k < pc.n_members; k++) {
                pc.member[k].seed = seed;
            }
            if (pol_portfolio_new(&pc, &b) == BASE_OK) {
                e = pol_portfolio_restore(b, m);
            }
        }
        pol_portfolio_free(a);
        pol_portfolio_free(b);
    } else {
        pol_head *a = NULL, *b = NULL;
        if (pol_head_new(&hc, &a) == BASE_OK && pol_head_snapshot(a, &m) == BASE_OK) {
            hc.seed = seed;
            if (pol_head_new(&hc, &b) == BASE_OK) {
                e = pol_head_restore(b, m);
            }
        }
        pol_head_free(a);
        pol_head_free(b);
    }
    base_snapshot_free(m);
    return e;
}

/*
 * A checkpoint learned in a space drawn from the seed is refused under another seed: the auto
 * portfolio's random-feature members (dim 22..64), ridge's projection of a long context (dim
 * > 256). A head that drew nothing from it (linear ridge, short context) is restored.
 */
static void seed_changes_refuse_what_was_drawn_from_it(void)
{
    TST_OK(restore_across_seeds(30, true, 1));
    TST_EQ(restore_across_seeds(30, true, 2), BASE_EINVAL);
    TST_OK(restore_across_seeds(300, false, 1));
    TST_EQ(restore_across_seeds(300, false, 2), BASE_EINVAL);
    TST_OK(restore_across_seeds(8, false, 2));
}

int main(void)
{
    world w;
    world_init(&w, 11);
    single_is_the_head(&w);
    switches_once_to_the_better_member(&w);
    drops_a_clearly_worse_challenger(&w);
    views_match_separate_heads(&w);
    snapshot_restores_the_whole_portfolio(&w);
    mix_serves_the_exact_mixture(&w);
    deterministic_and_bad_input_changes_nothing(&w);
    seed_changes_refuse_what_was_drawn_from_it();
    return tst_done();
}
