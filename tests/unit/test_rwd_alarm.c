/*
 * The reward alarm (reward/alarm.h): quiet on a long stationary stream, raised quickly by
 * a flood of extreme rewards in either direction, cleared once the stream is back, and not
 * fooled by a constant stream.
 */
#include <stdint.h>

#include "reward/alarm.h"
#include "tap.h"

/* xorshift64*: a reproducible uniform in [0, 1). */
static double uniform(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (double)((*s * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

/* Feed @n Bernoulli(@p) rewards; the number of state changes seen. */
static int feed(rwd_alarm *a, uint64_t *rng, double p, uint64_t n)
{
    int changes = 0;
    for (uint64_t i = 0; i < n; i++) {
        changes += rwd_alarm_add(a, uniform(rng) < p ? 1.0 : 0.0) >= 0;
    }
    return changes;
}

/* Rewards @x until the state changes; how many it took (0: not within @max). */
static uint64_t until_change(rwd_alarm *a, double x, uint64_t max)
{
    for (uint64_t i = 1; i <= max; i++) {
        if (rwd_alarm_add(a, x) >= 0) {
            return i;
        }
    }
    return 0;
}

static void quiet_on_a_stationary_stream_and_raised_by_a_flood(void)
{
    rwd_alarm a;
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    rwd_alarm_init(&a);
    TST_EQ(feed(&a, &rng, 0.2, 2000000), 0); /* two million rewards, no alarm */
    TST_EQ(a.state, RWD_ALARM_OK);
    uint64_t took = until_change(&a, 1.0, 100); /* the poisoning of issue 14 */
    printf("# raised up after %llu rewards of 1\n", (unsigned long long)took);
    TST_TRUE(took > 0 && took <= 30);
    TST_EQ(a.state, RWD_ALARM_UP);
    TST_STREQ(rwd_alarm_name(a.state), "up");
    TST_EQ(feed(&a, &rng, 1.0, 10000), 0); /* it stays up while the flood goes on */
    /* The stream comes back: cleared within about 2H/K rewards. */
    uint64_t n = 0;
    while (a.state != RWD_ALARM_OK && n < 1000) {
        (void)rwd_alarm_add(&a, uniform(&rng) < 0.2 ? 1.0 : 0.0);
        n++;
    }
    printf("# cleared after %llu ordinary rewards\n", (unsigned long long)n);
    TST_EQ(a.state, RWD_ALARM_OK);
    TST_TRUE(n <= 200);
    /* The flood did not move the baseline. */
    TST_TRUE(a.mean > 0.15 && a.mean < 0.25);
}

static void raised_down_when_rewards_collapse(void)
{
    rwd_alarm a;
    uint64_t rng = 7;
    rwd_alarm_init(&a);
    TST_EQ(feed(&a, &rng, 0.8, 200000), 0);
    uint64_t took = until_change(&a, 0.0, 100);
    TST_TRUE(took > 0 && took <= 30);
    TST_EQ(a.state, RWD_ALARM_DOWN);
    TST_STREQ(rwd_alarm_name(a.state), "down");
}

/*
 * From a raised "down" with its sum at the top (a long quiet spell, as a client's rate alarm
 * sees it), a flood far upward raises "up" at once: before, "down" could only clear once both
 * sums were low, which the flood's "up" sum never was, so the alarm stayed "down" all along.
 */
static void up_straight_after_down(void)
{
    rwd_alarm a;
    uint64_t rng = 11;
    rwd_alarm_init(&a);
    TST_EQ(feed(&a, &rng, 0.5, 20000), 0);
    for (int i = 0; i < 200; i++) {
        (void)rwd_alarm_add(&a, 0.0);
    }
    TST_EQ(a.state, RWD_ALARM_DOWN);
    int took = 0;
    for (int i = 1; i <= 50 && took == 0; i++) {
        (void)rwd_alarm_add(&a, 10.0);
        took = a.state == RWD_ALARM_UP ? i : 0;
    }
    printf("# up %d values into the flood, from down\n", took);
    TST_TRUE(took > 0 && took <= 5);
}

static void warmup_and_constant_streams_stay_quiet(void)
{
    rwd_alarm a;
    rwd_alarm_init(&a);
    TST_EQ(until_change(&a, 1.0, RWD_ALARM_WARMUP), 0); /* no alarm while learning */
    rwd_alarm_init(&a);
    TST_EQ(until_change(&a, 0.5, 100000), 0);
    TST_STREQ(rwd_alarm_name(RWD_ALARM_OK), "ok");
}

int main(void)
{
    quiet_on_a_stationary_stream_and_raised_by_a_flood();
    raised_down_when_rewards_collapse();
    up_straight_after_down();
    warmup_and_constant_streams_stay_quiet();
    return tst_done();
}
