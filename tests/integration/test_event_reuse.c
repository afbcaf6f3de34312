/*
 * An event id names a new decision as soon as the window of the one before it closed
 * (docs/rewards.md, protocol.md's duplicate_event), not only once the learner's tick has
 * turned the closed one into a joined example, and a restart keeps it that way. On the
 * manual clock, with tick_ms = 2000 so that the tick rarely runs between the test's steps:
 * decide "x", feedback, close its window, decide "x" again at once (ok, not duplicate_event),
 * feedback for the new one (matched), the closed one joined; then kill -9 and restart before
 * any checkpoint: the new "x" is pending again (the replay does not take it for the joined
 * one) and closes with its own reward.
 */
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "proc.h"
#include "storage/store.h"
#include "tap.h"

#define T0 1700000000000LL
#define WINDOW 60000LL

static const char CONFIG[] = "[server]\n"
                             "tick_ms = 2000\n"
                             "snapshot_interval_ms = 86400000\n"
                             "snapshot_every = 1073741824\n"
                             "[policy p]\n"
                             "dim = 2\n"
                             "actions = a, b\n"
                             "window_ms = 60000\n"
                             "no_outcome = default\n"
                             "default_reward = 0\n"
                             "signal.resolved = 1\n"
                             "signal.escalated = -1\n";

/* Acknowledged feedback @signal for "x" with @outcome_id; its status ("" if refused). */
static const char *feedback_x(tst_daemon *f, const char *signal, const char *outcome_id)
{
    static rlfeed_reply r;
    if (tst_callf(f, &r,
                  "{\"op\":\"feedback\",\"policy\":\"p\",\"event_id\":\"x\",\"signal\":\"%s\","
                  "\"outcome_id\":\"%s\"}",
                  signal, outcome_id) != BASE_OK ||
        !r.ok) {
        return "";
    }
    return r.status;
}

/* Wait until the joined stream holds @n records (up to 10 s: the tick is 2 s). */
static bool wait_joined(tst_daemon *f, uint64_t n)
{
    sto_store *s = NULL;
    char err[128];
    if (sto_store_open(sto_server_url(f->redis), 2000, &s, err, sizeof(err)) != BASE_OK) {
        return false;
    }
    uint64_t len = 0;
    for (long long dl = tst_now_ms() + 10000; tst_now_ms() < dl; tst_nap()) {
        if (sto_store_len(s, STO_JOINED, "p", &len) == BASE_OK && len >= n) {
            break;
        }
    }
    sto_store_close(s);
    return len == n;
}

int main(void)
{
    tst_daemon f;
    bool up = tst_daemon_init(&f, "rlfeed-event-reuse", CONFIG) && tst_daemon_start_clock(&f, T0);
    TST_TRUE(up);
    if (up) {
        rlfeed_reply r;
        TST_TRUE(tst_decide(&f, "p", "x", &r) == BASE_OK && r.ok);
        TST_STREQ(feedback_x(&f, "escalated", "o1"), "matched");
        TST_TRUE(tst_clock_set(&f, T0 + WINDOW)); /* its window closes */
        /* At once: before the tick turns the closed one into a joined example. */
        TST_TRUE(tst_decide(&f, "p", "x", &r) == BASE_OK);
        printf("# x again right after its window closed: %s\n", r.ok ? "decided" : r.error.message);
        TST_TRUE(r.ok);
        TST_STREQ(feedback_x(&f, "resolved", "o2"), "matched");
        TST_TRUE(wait_joined(&f, 1)); /* the first x */

        /* A crash before any checkpoint: the replay rebuilds the join from the streams. */
        TST_TRUE(tst_daemon_kill(&f));
        TST_TRUE(tst_daemon_start_clock(&f, T0 + WINDOW + 10));
        json_t *st = tst_stats(&f);
        printf("# after the restart: %lld pending\n", tst_stat_int(st, "p", "pending"));
        TST_EQ(tst_stat_int(st, "p", "pending"), 1);
        json_decref(st);
        TST_STREQ(feedback_x(&f, "resolved", "o2"), "duplicate"); /* the retry */
        TST_TRUE(tst_clock_set(&f, T0 + 2 * WINDOW));
        TST_TRUE(wait_joined(&f, 2)); /* the second x, joined with its own outcome */
        TST_EQ(tst_daemon_stop(&f), 0);
    }
    tst_daemon_fini(&f, tst_failed > 0);
    rlfeed_client_lib_fini();
    return tst_done();
}
