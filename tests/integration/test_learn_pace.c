/*
 * Learning keeps pace with decisions: every window closed by the service
 * clock is joined and learned at the next tick, however many there are.
 * With tick_ms = 1000 a cap of 256 examples per policy and tick (the old
 * learner) needed 20 s for the 5 000 windows closed here at once; the bound
 * below (8 s) holds on a busy machine and fails with such a cap.
 */
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "proc.h"
#include "tap.h"

#define T0 1800000000000LL
#define N 5000

static const char CONFIG[] = "[server]\n"
                             "tick_ms = 1000\n"
                             "[policy p]\n"
                             "dim = 4\n"
                             "actions = a, b, c\n"
                             "portfolio = off\n"
                             "signal.resolved = 1.0\n"
                             "window_ms = 1000\n";

int main(void)
{
    tst_daemon f;
    if (!tst_daemon_init(&f, "rlfeed-pace", CONFIG)) {
        TST_TRUE(0 && "fixture");
        tst_daemon_fini(&f, false);
        return tst_done();
    }
    char start[32];
    snprintf(start, sizeof(start), "%lld", T0);
    const char *extra[] = {"--manual-clock", start, NULL};
    bool up = tst_daemon_start(&f, true, extra);
    TST_TRUE(up);
    int decided = 0;
    for (int i = 0; up && i < N; i++) {
        rlfeed_reply r;
        base_err e = tst_callf(
            &f, &r,
            "{\"op\":\"decide\",\"policy\":\"p\",\"event_id\":\"e-%d\","
            "\"context\":{\"embedding\":[%d,1,0.5,-1]},"
            "\"candidates\":[{\"id\":\"a\",\"base_logit\":0},{\"id\":\"b\",\"base_logit\":0.5},"
            "{\"id\":\"c\",\"base_logit\":-0.5}]}",
            i, i % 7);
        decided += e == BASE_OK && r.ok;
        if (decided == i) {
            printf("# decide %d: %s %s\n", i, base_strerror(e), r.ok ? "" : r.error.message);
            break;
        }
    }
    TST_EQ(decided, N);
    json_t *s = tst_stats(&f);
    TST_EQ(tst_stat_join(s, "p", "pending"), N);
    json_decref(s);
    /* Every window closes at once. */
    TST_TRUE(tst_clock_set(&f, T0 + 2000));
    int64_t t0 = tst_now_ms();
    long long joined = 0, updates = 0;
    while ((joined < N || updates < N) && tst_now_ms() - t0 < 60000) {
        s = tst_stats(&f);
        joined = tst_stat_join(s, "p", "joined");
        updates = tst_stat_int(s, "p", "updates");
        json_decref(s);
    }
    int64_t took = tst_now_ms() - t0;
    printf("# %d windows closed at once: joined %lld, learned %lld after %lld ms\n", N, joined,
           updates, (long long)took);
    TST_EQ(joined, N);
    TST_EQ(updates, N);
    TST_TRUE(took <= 8000);
    TST_EQ(tst_daemon_stop(&f), 0);
    tst_daemon_fini(&f, tst_failed > 0);
    return tst_done();
}
