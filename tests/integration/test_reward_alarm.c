/*
 * The reward alarm through the daemon (docs/algorithms.md, section 12): 800 decisions of
 * which one in five is resolved are learned as the baseline; then 200 more, every one
 * resolved (a flood of maximal rewards, as poisoned feedback would be), raise it: stats say
 * "up" and count one alarm, the log says why. The service clock is manual, so each phase is
 * learned as a block, in order.
 */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "daemon.h"
#include "proto/json.h"
#include "proc.h"
#include "tap.h"

#define T0 1800000000000LL
#define N_BASE 800
#define N_FLOOD 200

static const char CONFIG[] = "[server]\n"
                             "tick_ms = 20\n"
                             "[policy p]\n"
                             "dim = 4\n"
                             "actions = a, b, c\n"
                             "portfolio = off\n"
                             "signal.resolved = 1.0\n"
                             "window_ms = 1000\n";

/* Decide events [from, to); resolve those @resolve says. The number that went through. */
static int decide_and_resolve(tst_daemon *f, int from, int to, int resolve_every)
{
    int ok = 0;
    for (int i = from; i < to; i++) {
        rlfeed_reply r;
        base_err e = tst_callf(
            f, &r,
            "{\"op\":\"decide\",\"policy\":\"p\",\"event_id\":\"e-%d\","
            "\"context\":{\"embedding\":[%d,1,0.5,-1]},"
            "\"candidates\":[{\"id\":\"a\",\"base_logit\":0},{\"id\":\"b\",\"base_logit\":0.5},"
            "{\"id\":\"c\",\"base_logit\":-0.5}]}",
            i, i % 7);
        if (e != BASE_OK || !r.ok) {
            break;
        }
        if (i % resolve_every == 0) {
            e = tst_callf(f, &r,
                          "{\"op\":\"feedback\",\"policy\":\"p\",\"event_id\":\"e-%d\","
                          "\"signal\":\"resolved\"}",
                          i);
            if (e != BASE_OK || !r.ok) {
                break;
            }
        }
        ok++;
    }
    return ok;
}

/* Wait (with a deadline) until the policy has learned @n examples. */
static long long learned(tst_daemon *f, long long n)
{
    int64_t t0 = tst_now_ms();
    long long updates = 0;
    while (updates < n && tst_now_ms() - t0 < 60000) {
        json_t *s = tst_stats(f);
        updates = tst_stat_int(s, "p", "updates");
        json_decref(s);
    }
    return updates;
}

int main(void)
{
    tst_daemon f;
    if (!tst_daemon_init(&f, "rlfeed-alarm", CONFIG)) {
        TST_TRUE(0 && "fixture");
        tst_daemon_fini(&f, false);
        return tst_done();
    }
    char start[32];
    snprintf(start, sizeof(start), "%lld", T0);
    const char *extra[] = {"--manual-clock", start, NULL};
    bool up = tst_daemon_start(&f, true, extra);
    TST_TRUE(up);
    if (up) {
        TST_EQ(decide_and_resolve(&f, 0, N_BASE, 5), N_BASE);
        TST_TRUE(tst_clock_set(&f, T0 + 2000));
        TST_EQ(learned(&f, N_BASE), N_BASE);
        json_t *s = tst_stats(&f);
        const char *state = tst_stat_str(s, "p", "reward_alarm");
        TST_TRUE(state != NULL && strcmp(state, "ok") == 0);
        TST_EQ(tst_stat_int(s, "p", "reward_alarms"), 0);
        json_decref(s);

        TST_EQ(decide_and_resolve(&f, N_BASE, N_BASE + N_FLOOD, 1), N_FLOOD);
        TST_TRUE(tst_clock_set(&f, T0 + 4000));
        TST_EQ(learned(&f, N_BASE + N_FLOOD), N_BASE + N_FLOOD);
        s = tst_stats(&f);
        state = tst_stat_str(s, "p", "reward_alarm");
        printf("# after the flood: reward_alarm %s\n", state != NULL ? state : "(none)");
        TST_TRUE(state != NULL && strcmp(state, "up") == 0);
        TST_EQ(tst_stat_int(s, "p", "reward_alarms"), 1);
        json_decref(s);
        TST_TRUE(tst_file_has(f.log, "reward alarm (up)"));
        /* health lists the raised alarm. */
        uint8_t *rep = NULL;
        size_t len = 0;
        char *text = NULL;
        TST_OK(rlfeed_client_health(f.c, &rep, &len));
        TST_OK(proto_json_from_msgpack(rep, len, &text));
        TST_STREQ(
            text != NULL ? text : "",
            "{\"ok\":true,\"status\":\"ready\",\"redis\":\"up\",\"alarms\":[\"p: reward up\"]}");
        base_free(text);
        base_free(rep);
    }
    TST_EQ(tst_daemon_stop(&f), 0);
    tst_daemon_fini(&f, tst_failed > 0);
    return tst_done();
}
