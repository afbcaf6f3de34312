#include "reward/alarm.h"

#include <math.h>

void rwd_alarm_init(rwd_alarm *a)
{
    *a = (rwd_alarm){.state = RWD_ALARM_OK};
}

/* Fold @x into the baseline: a plain average first, then an exponential one. */
static void learn(rwd_alarm *a, double x)
{
    double alpha = a->n < RWD_ALARM_WINDOW ? 1.0 / (double)a->n : 1.0 / RWD_ALARM_WINDOW;
    double d = x - a->mean;
    a->mean += alpha * d;
    a->var = (1.0 - alpha) * (a->var + alpha * d * d);
}

static double clamp_stat(double s)
{
    return s < 0.0 ? 0.0 : s > 2.0 * RWD_ALARM_H ? 2.0 * RWD_ALARM_H : s;
}

int rwd_alarm_add(rwd_alarm *a, double x)
{
    a->n++;
    if (a->n <= RWD_ALARM_WARMUP) {
        learn(a, x);
        return -1;
    }
    double sd = sqrt(a->var);
    double z = (x - a->mean) / (sd > RWD_ALARM_SD_FLOOR ? sd : RWD_ALARM_SD_FLOOR);
    a->up = clamp_stat(a->up + z - RWD_ALARM_K);
    a->down = clamp_stat(a->down - z - RWD_ALARM_K);
    rwd_alarm_state was = a->state;
    /* A side past H raises its alarm, also straight from the other side's. */
    if (a->up > RWD_ALARM_H && a->state != RWD_ALARM_UP) {
        a->state = RWD_ALARM_UP;
    } else if (a->down > RWD_ALARM_H && a->state != RWD_ALARM_DOWN) {
        a->state = RWD_ALARM_DOWN;
    } else if (a->state != RWD_ALARM_OK && a->up < RWD_ALARM_H / 2.0 &&
               a->down < RWD_ALARM_H / 2.0) {
        a->state = RWD_ALARM_OK;
    }
    if (a->state == RWD_ALARM_OK && was == RWD_ALARM_OK) {
        learn(a, x);
    }
    return a->state != was ? (int)a->state : -1;
}

const char *rwd_alarm_name(rwd_alarm_state s)
{
    switch (s) {
    case RWD_ALARM_UP:
        return "up";
    case RWD_ALARM_DOWN:
        return "down";
    default:
        return "ok";
    }
}
