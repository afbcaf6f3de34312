/*
 * shared = on, a stale owner (docs/operations.md, "Several instances serving one policy"):
 * two instances, "a" and "b", serve policy "p" on one Redis; "a" owns it, "b" follows.
 * Decisions and feedback go through both. SIGSTOP "a" for longer than its lease: "b" takes
 * the policy over (recovered to "a"'s model) and learns on. SIGCONT "a": it still believes
 * it owns "p" until its next renewal, so what it answers meanwhile is not stored (fenced)
 * and its feedback is not acknowledged; at that renewal it does not stop (as it does without
 * shared) but steps down: it follows "b", serves "b"'s checkpoints and hands records to it.
 * Then every acknowledged outcome is in the outcomes stream once, and both instances serve
 * the same model. Both stop cleanly; every process is stopped.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/rlfeed_client.h"
#include "daemon.h"
#include "proc.h"
#include "storage/rollup.h"
#include "storage/store.h"
#include "tap.h"

#define CONFIG(ID)                                                                                 \
    "[server]\ninstance_id = " ID "\nshared = on\nlease_ms = 1500\nsnapshot_interval_ms = 100\n"   \
    "rollup_period_ms = 100\n"                                                                     \
    "[policy p]\ndim = 2\nactions = a, b\nsignal.resolved = 1\nsignal.escalated = -0.5\n"          \
    "window_ms = 300\nbackward_window_ms = 2000\n"

#define MAX_EV 4096
static int ev, acked;
static bool acked_id[MAX_EV];
static int times[MAX_EV]; /* how often o-<i> is in the outcomes stream */

/* decide on @d, feedback on @f: true if the feedback was acknowledged (matched or accepted). */
static bool interact(tst_daemon *d, tst_daemon *f)
{
    int i = ev++;
    if (!tst_decide_feedback(d, f, i)) {
        return false;
    }
    acked++;
    acked_id[i] = true;
    return true;
}

/* p's role on @f is @role (and its owner @owner) within @ms; false otherwise. */
static bool wait_role(tst_daemon *f, const char *role, const char *owner, int ms)
{
    for (int64_t end = tst_now_ms() + ms; tst_now_ms() < end; tst_nap()) {
        json_t *s = tst_stats(f);
        const char *r = tst_stat_str(s, "p", "role"), *o = tst_stat_str(s, "p", "owner");
        bool ok = r != NULL && o != NULL && strcmp(r, role) == 0 && strcmp(o, owner) == 0;
        json_decref(s);
        if (ok) {
            return true;
        }
    }
    return false;
}

/*
 * The rollup stream of "p" holds one row per period although both instances serve it: the
 * owner's (operations.md, "Rollups"). Waits until it holds at least 5 rows.
 */
static bool one_rollup_row_per_period(const char *url)
{
    sto_store *s = NULL;
    char err[256];
    if (sto_store_open(url, 5000, &s, err, sizeof(err)) != BASE_OK) {
        return false;
    }
    static const char *const names[] = {"t_ms"};
    double t[64];
    size_t n = 0;
    for (int64_t end = tst_now_ms() + 10000; n < 5 && tst_now_ms() < end; tst_nap()) {
        if (sto_rollup_read(s, "p", names, 1, 64, t, &n) != BASE_OK) {
            n = 0;
        }
    }
    bool ok = n >= 5;
    for (size_t j = 1; j < n; j++) {
        ok = ok && t[j] > t[j - 1];
    }
    sto_store_close(s);
    return ok;
}

/* Nothing pending on the owner @o, and @f serves @o's model; that model. */
static bool converge(tst_daemon *o, tst_daemon *f, long long *ver, char *sum, size_t n)
{
    for (int64_t end = tst_now_ms() + 20000; tst_now_ms() < end; tst_nap()) {
        json_t *so = tst_stats(o), *sf = tst_stats(f);
        *ver = tst_stat_int(so, "p", "model_version");
        const char *cs = tst_stat_str(so, "p", "model_checksum");
        snprintf(sum, n, "%s", cs != NULL ? cs : "");
        const char *fs = tst_stat_str(sf, "p", "model_checksum");
        bool ok = so != NULL && sf != NULL && tst_stat_int(so, "p", "pending") == 0 && *ver > 0 &&
                  tst_stat_int(sf, "p", "model_version") == *ver && fs != NULL &&
                  strcmp(fs, sum) == 0;
        json_decref(so);
        json_decref(sf);
        if (ok) {
            return true;
        }
    }
    return false;
}

int main(void)
{
    tst_daemon a, b;
    memset(&b, 0, sizeof(b));
    bool up = tst_daemon_init(&a, "rlfeed-stepdown-a", CONFIG("a"));
    up = up && tst_daemon_init(&b, "rlfeed-stepdown-b", CONFIG("b"));
    char url[600];
    snprintf(url, sizeof(url), "%s", up ? sto_server_url(a.redis) : "");
    const char *on_a[] = {"--redis", url, NULL};
    up = up && tst_daemon_start(&a, true, NULL) && wait_role(&a, "owner", "a", 5000) &&
         tst_daemon_start(&b, false, on_a) && wait_role(&b, "follower", "a", 5000);
    TST_TRUE(up);
    if (up) {
        int ok = 0;
        for (int i = 0; i < 40; i++) {
            ok += interact(i % 2 ? &a : &b, i % 3 ? &b : &a);
        }
        TST_EQ(ok, 40);
        /* The follower refuses what the reward spec refuses, as the owner does. */
        rlfeed_reply r;
        TST_OK(tst_callf(&b, &r,
                         "{\"op\":\"feedback\",\"policy\":\"p\",\"event_id\":\"ev-1\","
                         "\"signal\":\"great\"}"));
        TST_TRUE(!r.ok && r.error.code == PROTO_E_UNKNOWN_SIGNAL);
        TST_OK(tst_callf(&b, &r,
                         "{\"op\":\"feedback\",\"policy\":\"p\",\"event_id\":\"ev-1\","
                         "\"signal\":\"resolved\",\"value\":7}"));
        TST_TRUE(!r.ok && r.error.code == PROTO_E_OUT_OF_RANGE);
        long long va = 0, vb = 0;
        char sa[32], sb[32];
        TST_TRUE(converge(&a, &b, &va, sa, sizeof(sa)));
        TST_TRUE(one_rollup_row_per_period(url));

        /* "a" stalls past its lease: "b" takes the policy over and learns on. */
        kill(a.pid, SIGSTOP);
        int64_t stopped = tst_now_ms();
        TST_TRUE(wait_role(&b, "owner", "b", 20000));
        printf("# b owns p %lld ms after a stopped (lease 1500 ms)\n",
               (long long)(tst_now_ms() - stopped));
        ok = 0;
        for (int i = 0; i < 20; i++) {
            ok += interact(&b, &b);
        }
        TST_EQ(ok, 20);

        /* "a" resumes: fenced until its renewal, then it follows "b" instead of stopping. */
        kill(a.pid, SIGCONT);
        int64_t resumed = tst_now_ms();
        /*
         * Still believing it owns p: its feedback is refused by the fence, and a retry of it
         * is not answered `duplicate` (the original is in no stream). If it stepped down
         * already (a slow machine), both are forwarded: `accepted`.
         */
        rlfeed_reply sr;
        bool stale_fb = false, dup = false;
        if (tst_callf(&a, &sr,
                      "{\"op\":\"decide\",\"policy\":\"p\",\"event_id\":\"stale-1\","
                      "\"context\":{\"embedding\":[1,0]},\"candidates\":[{\"id\":\"a\","
                      "\"base_logit\":0},{\"id\":\"b\",\"base_logit\":0}]}") == BASE_OK &&
            sr.ok) {
            for (int k = 0; k < 2; k++) {
                if (tst_callf(&a, &sr,
                              "{\"op\":\"feedback\",\"policy\":\"p\",\"event_id\":"
                              "\"stale-1\",\"signal\":\"resolved\",\"outcome_id\":"
                              "\"o-4000\"}") == BASE_OK) { /* past ev: not counted */
                    stale_fb = stale_fb || (sr.ok && strcmp(sr.status, "matched") == 0);
                    dup = dup || (sr.ok && strcmp(sr.status, "duplicate") == 0);
                    printf("# a, stale, feedback try %d: %s\n", k + 1,
                           sr.ok ? sr.status : sr.error.message);
                }
            }
        }
        TST_TRUE(!stale_fb && !dup);
        TST_TRUE(wait_role(&a, "follower", "b", 10000));
        printf("# a follows b %lld ms after it resumed\n", (long long)(tst_now_ms() - resumed));
        for (int64_t end = tst_now_ms() + 5000;
             !tst_file_has(a.log, "stepped down") && tst_now_ms() < end;) {
            tst_nap(); /* logged just after the switch that stats shows */
        }
        TST_TRUE(tst_file_has(a.log, "stepped down"));
        TST_TRUE(!tst_file_has(a.log, "stopping"));
        ok = 0;
        for (int i = 0; i < 20; i++) {
            ok += interact(i % 2 ? &a : &b, i % 3 ? &b : &a);
        }
        TST_EQ(ok, 20);
        TST_TRUE(converge(&b, &a, &vb, sb, sizeof(sb)));
        json_t *st = tst_stats(&a);
        va = tst_stat_int(st, "p", "model_version");
        snprintf(sa, sizeof(sa), "%s", tst_stat_str(st, "p", "model_checksum"));
        json_decref(st);
        printf("# b (owner): version %lld checksum %s; a (follower): %lld %s\n", vb, sb, va, sa);
        TST_EQ(va, vb);
        TST_STREQ(sa, sb);
        TST_TRUE(vb >= 80);

        int stored = tst_count_outcome_ids(sto_server_url(a.redis), "p", times, MAX_EV);
        int once = 0, twice = 0;
        for (int i = 0; i < ev; i++) {
            once += acked_id[i] && times[i] == 1;
            twice += times[i] > 1;
        }
        printf("# acknowledged %d: %d of them stored once; %d records in the outcomes stream, "
               "%d ids more than once\n",
               acked, once, stored, twice);
        TST_EQ(once, acked);
        TST_EQ(twice, 0);
        TST_EQ(tst_daemon_stop(&a), 0);
        TST_EQ(tst_daemon_stop(&b), 0);
    }
    tst_daemon_fini(&b, tst_failed > 0);
    tst_daemon_fini(&a, tst_failed > 0);
    rlfeed_client_lib_fini();
    return tst_done();
}
