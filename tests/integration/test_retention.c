/*
 * Retention after a restart (docs/operations.md, "Retention"): each stored checkpoint trims
 * every stream to the retention window before its newest entry, never at or past the
 * checkpoint's replay positions, also while decisions made since the restart are pending.
 * The service runs on the manual clock (join windows); the streams' ids are Redis's time.
 *
 * 40 decisions with feedback are joined and the daemon is stopped (its checkpoint's replay
 * positions are the streams' tails: nothing is pending). Started again, once more than
 * retention_ms (1 s) has passed, it decides "A" and then "B" half a window later, closes A's
 * window (B stays pending) and takes feedback for B: each stream now has an entry newer than
 * the old ones by more than the window, and a checkpoint trims each to its replay position:
 * one old entry (the one at the position) and the new ones are left.
 */
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "proc.h"
#include "storage/store.h"
#include "tap.h"

#define T0 1700000000000LL
#define WINDOW 60000LL
/*
 * Interactions before the restart: a decision and its outcome take two lsns, and past 64 of
 * them the first decision after the restart records a recovery mark of its own.
 */
#define N 40

static const char CONFIG[] = "[server]\n"
                             "tick_ms = 5\n"
                             "snapshot_interval_ms = 100\n"
                             "retention_ms = 1000\n"
                             "[policy p]\n"
                             "dim = 2\n"
                             "actions = a, b\n"
                             "window_ms = 60000\n"
                             "signal.resolved = 1\n"
                             "signal.escalated = -1\n";

static uint64_t stream_len(sto_store *s, sto_kind kind)
{
    uint64_t n = 0;
    return sto_store_len(s, kind, "p", &n) == BASE_OK ? n : UINT64_MAX;
}

/* Wait up to 10 s until @kind's stream holds @want entries; its length. */
static uint64_t wait_len(sto_store *s, sto_kind kind, uint64_t want)
{
    uint64_t n = UINT64_MAX;
    for (long long dl = tst_now_ms() + 10000; tst_now_ms() < dl; tst_nap()) {
        n = stream_len(s, kind);
        if (n == want) {
            break;
        }
    }
    return n;
}

/* Wait up to 10 s until policy p's join counter @key reaches @want. */
static bool wait_join(tst_daemon *f, const char *key, long long want)
{
    long long v = -1;
    for (long long dl = tst_now_ms() + 10000; v < want && tst_now_ms() < dl; tst_nap()) {
        json_t *st = tst_stats(f);
        v = tst_stat_join(st, "p", key);
        json_decref(st);
    }
    return v >= want;
}

int main(void)
{
    tst_daemon f;
    sto_store *s = NULL;
    char err[128];
    bool up = tst_daemon_init(&f, "rlfeed-retention", CONFIG) &&
              sto_store_open(sto_server_url(f.redis), 5000, &s, err, sizeof(err)) == BASE_OK &&
              tst_daemon_start_clock(&f, T0);
    TST_TRUE(up);
    if (up) {
        int ok = 0;
        for (int i = 0; i < N; i++) {
            ok += tst_decide_feedback(&f, &f, i);
        }
        TST_EQ(ok, N);
        TST_TRUE(tst_clock_set(&f, T0 + WINDOW)); /* every window closes */
        TST_TRUE(wait_join(&f, "joined", N));
        TST_EQ(tst_daemon_stop(&f), 0); /* its checkpoint: nothing pending, at the tails */
        int64_t stopped = tst_now_ms();

        TST_TRUE(tst_daemon_start_clock(&f, T0 + WINDOW));
        while (tst_now_ms() < stopped + 1200) {
            tst_nap(); /* the old entries age past retention_ms */
        }
        const long long t1 = T0 + 2 * WINDOW;
        rlfeed_reply r;
        TST_TRUE(tst_clock_set(&f, t1) && tst_decide(&f, "p", "A", &r) == BASE_OK && r.ok);
        TST_TRUE(tst_clock_set(&f, t1 + WINDOW / 2) && tst_decide(&f, "p", "B", &r) == BASE_OK &&
                 r.ok);
        TST_TRUE(tst_clock_set(&f, t1 + WINDOW)); /* A closes; B stays pending */
        TST_TRUE(wait_join(&f, "defaulted", 1));
        TST_TRUE(tst_callf(&f, &r,
                           "{\"op\":\"feedback\",\"policy\":\"p\",\"event_id\":\"B\","
                           "\"signal\":\"resolved\"}") == BASE_OK &&
                 r.ok);
        /* One old entry each (at the replay position), and the new ones. */
        uint64_t joined = wait_len(s, STO_JOINED, 2);
        uint64_t decisions = wait_len(s, STO_DECISIONS, 3);
        uint64_t outcomes = wait_len(s, STO_OUTCOMES, 2);
        printf("# after the restart's checkpoints: joined %llu, decisions %llu, outcomes %llu "
               "entries (of %d old ones each)\n",
               (unsigned long long)joined, (unsigned long long)decisions,
               (unsigned long long)outcomes, N);
        TST_EQ(joined, 2);
        TST_EQ(decisions, 3);
        TST_EQ(outcomes, 2);
        json_t *st = tst_stats(&f);
        TST_EQ(tst_stat_int(st, "p", "pending"), 1);
        json_decref(st);
        TST_EQ(tst_daemon_stop(&f), 0);
    }
    sto_store_close(s);
    tst_daemon_fini(&f, tst_failed > 0);
    rlfeed_client_lib_fini();
    return tst_done();
}
