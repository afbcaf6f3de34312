#ifndef REWARD_ALARM_H
#define REWARD_ALARM_H

/*
 * The reward alarm: a two-sided CUSUM on a policy's stream of learned rewards that says
 * when their mean moves far beyond its recent range, up (what poisoned feedback that
 * rewards one action looks like) or down (a broken frontend, a bad head).
 * docs/algorithms.md, "Reward alarm".
 *
 * Each reward x is standardised against a baseline, z = (x - mean) / max(sd, SD_FLOOR),
 * and accumulated: up = min(2H, max(0, up + z - K)), down = min(2H, max(0, down - z - K)).
 * The alarm is raised when up or down passes H (also straight from the other direction's
 * alarm: a jump up after a collapse is reported, not hidden) and cleared when both are back
 * below H / 2
 * (about 3H / 2 / K = 75 ordinary rewards after a flood ends). The baseline (mean and variance, as
 * exponentially weighted averages over about WINDOW rewards) learns from the first WARMUP
 * rewards with no alarm possible, and afterwards only while no alarm is raised, so that a
 * shift is not absorbed while it is being reported. K = 0.5 and H = 25 (standard deviations):
 * for rewards of 0 and 1 with a 20 % success rate a false alarm needs an excursion of
 * probability about 1e-7 (some 10 million rewards apart), and a flood of rewards 1 raises
 * it within about 17.
 *
 * Deterministic: the state depends only on the rewards given, in order (so a replay at
 * start-up rebuilds it). Threads: none inside; the caller serialises.
 */

#include <stdint.h>

#define RWD_ALARM_WARMUP 500
#define RWD_ALARM_WINDOW 5000
#define RWD_ALARM_K 0.5
#define RWD_ALARM_H 25.0
#define RWD_ALARM_SD_FLOOR 0.05

typedef enum rwd_alarm_state {
    RWD_ALARM_OK = 0,
    RWD_ALARM_UP = 1,   /* rewards far above their recent range */
    RWD_ALARM_DOWN = 2, /* far below */
} rwd_alarm_state;

typedef struct rwd_alarm {
    uint64_t n;       /* rewards seen */
    double mean, var; /* the baseline */
    double up, down;  /* the CUSUM statistics, in standard deviations */
    rwd_alarm_state state;
} rwd_alarm;

void rwd_alarm_init(rwd_alarm *a);

/*
 * rwd_alarm_add() - account reward @x (finite).
 * Return: the new state when this reward changed it (raised UP or DOWN, or back to OK),
 *         else -1.
 */
int rwd_alarm_add(rwd_alarm *a, double x);

/* "ok", "up" or "down". */
const char *rwd_alarm_name(rwd_alarm_state s);

#endif
