/*
 * Unit tests for reward/credit: credit shares by rule (including the final
 * turn's tie-break), aggregation of contributions (the header's example),
 * inactive contributions, clipping, default and unknown. Every expected
 * value is a binary fraction or 1/3, computed the same way, so the checks
 * use a relative tolerance of 1e-12.
 */

#include <string.h>

#include "reward/credit.h"
#include "tap.h"

#define TOL 1e-12

static rwd_contrib mk(uint32_t signal, double value, double raw, int64_t ts, uint64_t seq)
{
    rwd_contrib k;
    memset(&k, 0, sizeof(k));
    k.signal = signal;
    k.active = true;
    k.value = value;
    k.raw = raw;
    k.ts_ms = ts;
    k.seq = seq;
    return k;
}

static void test_shares(void)
{
    /* Turns 3, 1, 2 in that order: the final turn is 3 (index 0). */
    const rwd_turn t[3] = {{3, 10}, {1, 11}, {2, 12}};
    double sh[3];
    rwd_credit_shares(BASE_CREDIT_LAST, 0.5, t, 3, sh);
    TST_NEAR(sh[0], 1.0, TOL);
    TST_NEAR(sh[1], 0.0, TOL);
    TST_NEAR(sh[2], 0.0, TOL);
    rwd_credit_shares(BASE_CREDIT_UNIFORM, 0.5, t, 3, sh);
    for (int i = 0; i < 3; i++) {
        TST_NEAR(sh[i], 1.0 / 3.0, TOL);
    }
    rwd_credit_shares(BASE_CREDIT_DISCOUNTED, 0.5, t, 3, sh);
    TST_NEAR(sh[0], 1.0, TOL);
    TST_NEAR(sh[1], 0.25, TOL);
    TST_NEAR(sh[2], 0.5, TOL);

    /* Equal turns: the later (higher seq) is final, wherever it sits. */
    const rwd_turn tie[3] = {{2, 7}, {2, 9}, {2, 8}};
    rwd_credit_shares(BASE_CREDIT_LAST, 0.9, tie, 3, sh);
    TST_NEAR(sh[0], 0.0, TOL);
    TST_NEAR(sh[1], 1.0, TOL);
    TST_NEAR(sh[2], 0.0, TOL);
    rwd_credit_shares(BASE_CREDIT_DISCOUNTED, 0.9, tie, 3, sh);
    for (int i = 0; i < 3; i++) {
        TST_NEAR(sh[i], 1.0, TOL); /* all on the final turn: gamma^0 */
    }
    /* One decision gets everything, under every rule. */
    for (uint32_t rule = BASE_CREDIT_LAST; rule <= BASE_CREDIT_DISCOUNTED; rule++) {
        rwd_credit_shares(rule, 0.5, t, 1, sh);
        TST_NEAR(sh[0], 1.0, TOL);
    }
}

/* One signal with aggregate @agg; contributions 1 (ts 300), -0.5 (ts 100), 0.5 (ts 200). */
static double three(rwd_agg agg, uint32_t *out_n)
{
    rwd_spec s;
    rwd_spec_default(&s);
    s.n_signals = 1;
    rwd_signal_default(&s.signal[0], "csat", RWD_NUMBER);
    s.signal[0].agg = agg;
    const rwd_contrib c[3] = {
        mk(0, 1.0, 5.0, 300, 1),
        mk(0, -0.5, 2.0, 100, 2),
        mk(0, 0.5, 4.0, 200, 3),
    };
    rwd_reward r;
    rwd_contrib_reward(&s, c, 3, &r);
    *out_n = r.n_outcomes;
    TST_TRUE(!r.defaulted && !r.unknown);
    return r.reward;
}

static void test_aggregates(void)
{
    uint32_t n = 0;
    TST_NEAR(three(RWD_AGG_SUM, &n), 1.0, TOL);
    TST_EQ(n, 3);
    TST_NEAR(three(RWD_AGG_FIRST, &n), -0.5, TOL);
    TST_NEAR(three(RWD_AGG_LAST, &n), 1.0, TOL);
    TST_NEAR(three(RWD_AGG_MIN, &n), -0.5, TOL);
    TST_NEAR(three(RWD_AGG_MAX, &n), 1.0, TOL);
    TST_NEAR(three(RWD_AGG_MEAN, &n), 1.0 / 3.0, TOL);
}

static void test_reward(void)
{
    rwd_spec s;
    rwd_spec_default(&s);
    s.n_signals = 2;
    rwd_signal_default(&s.signal[0], "up", RWD_EVENT);
    rwd_signal_default(&s.signal[1], "esc", RWD_FLAG);
    s.signal[1].agg = RWD_AGG_MAX;
    s.default_reward = 0.25;
    rwd_reward r;

    /* Signals summed, then clipped to [-1, 1]. */
    const rwd_contrib sum[3] = {mk(0, 1.0, 1.0, 0, 1), mk(0, 1.0, 1.0, 0, 2),
                                mk(1, -1.0, 1.0, 0, 3)};
    rwd_contrib_reward(&s, sum, 3, &r);
    TST_NEAR(r.reward, 1.0, TOL);
    TST_EQ(r.n_outcomes, 3);
    s.clip_max = 10.0;
    rwd_contrib_reward(&s, sum, 3, &r);
    TST_NEAR(r.reward, 1.0, TOL); /* 2 - 1 */
    s.clip_min = -0.5;
    const rwd_contrib low[1] = {mk(1, -1.0, 1.0, 0, 1)};
    rwd_contrib_reward(&s, low, 1, &r);
    TST_NEAR(r.reward, -0.5, TOL);

    /* max picks by the observed value: 1 then 0 was escalated. */
    const rwd_contrib esc[2] = {mk(1, -1.0, 1.0, 0, 1), mk(1, 0.0, 0.0, 0, 2)};
    s.clip_min = -1.0;
    rwd_contrib_reward(&s, esc, 2, &r);
    TST_NEAR(r.reward, -1.0, TOL);

    /* Inactive (superseded) contributions do not count. */
    rwd_contrib off[2] = {mk(0, 1.0, 1.0, 0, 1), mk(1, -1.0, 1.0, 0, 2)};
    off[1].active = false;
    rwd_contrib_reward(&s, off, 2, &r);
    TST_NEAR(r.reward, 1.0, TOL);
    TST_EQ(r.n_outcomes, 1);

    /* Nothing counted: the default reward (not clipped), or unknown. */
    off[0].active = false;
    s.default_reward = 5.0;
    rwd_contrib_reward(&s, off, 2, &r);
    TST_TRUE(r.defaulted && !r.unknown);
    TST_NEAR(r.reward, 5.0, TOL);
    TST_EQ(r.n_outcomes, 0);
    s.unknown_when_empty = true;
    rwd_contrib_reward(&s, NULL, 0, &r);
    TST_TRUE(r.unknown && !r.defaulted);
    TST_NEAR(r.reward, 0.0, TOL);
}

int main(void)
{
    test_shares();
    test_aggregates();
    test_reward();
    return tst_done();
}
