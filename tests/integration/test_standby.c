/*
 * standby = on (docs/operations.md, "Standing by"): two rlfeedd instances, "a" and "b", on
 * one Redis with the same policy. "a" owns it; "b" stands by and answers its requests
 * `unavailable`, naming "a". Decide + acknowledged feedback on "a" until everything is
 * learned; SIGSTOP "a": "b" takes the policy over once "a"'s lease runs out (lease_ms
 * 1500), recovered from the checkpoint and the streams to the same model version and
 * checksum "a" had, and serves and learns from then on. SIGCONT "a", now a stale owner:
 * what it answers is not acknowledged and not stored (its writes are fenced by the lease),
 * and it stops on its own ("lost ownership"). Stopped cleanly, "b" hands the
 * lease back at once: "a" started again (standing by too) takes it and recovers "b"'s model.
 * A definition put in the catalog while "b" stands by is the one "b" serves at its takeover.
 * A policy the catalog creates while both run is owned by the first to take its lease; the
 * other stands by for it as for p (unavailable, naming the owner; not unknown_policy).
 * Every acknowledged outcome is in the outcomes stream once. Every process is stopped.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "client/rlfeed_client.h"
#include "daemon.h"
#include "http.h"
#include "proc.h"
#include "storage/store.h"
#include "tap.h"

#define CONFIG(ID)                                                                                 \
    "[server]\ninstance_id = " ID "\nstandby = on\nlease_ms = 1500\nsnapshot_every = 10\n"         \
    "[policy p]\ndim = 2\nactions = a, b\nsignal.resolved = 1\nsignal.escalated = -0.5\n"          \
    "window_ms = 300\n"

static int ev, acked;

static bool interact(tst_daemon *f)
{
    if (!tst_decide_feedback(f, f, ev++)) {
        return false;
    }
    acked++;
    return true;
}

/* Wait until nothing is pending and the version holds still; its version and checksum. */
static bool settle(tst_daemon *f, long long *ver, char *sum, size_t n)
{
    int64_t deadline = tst_now_ms() + 20000;
    long long prev = -1;
    int stable = 0;
    while (tst_now_ms() < deadline && stable < 3) {
        json_t *s = tst_stats(f);
        *ver = tst_stat_int(s, "p", "model_version");
        const char *cs = tst_stat_str(s, "p", "model_checksum");
        snprintf(sum, n, "%s", cs != NULL ? cs : "");
        bool same = s != NULL && tst_stat_int(s, "p", "pending") == 0 && *ver == prev;
        json_decref(s);
        prev = *ver;
        stable = same ? stable + 1 : 0;
        for (int64_t t = tst_now_ms() + 200; tst_now_ms() < t;) {
            tst_nap();
        }
    }
    return stable >= 3;
}

static int stored_outcomes(tst_daemon *f)
{
    sto_store *s = NULL;
    uint64_t n = 0;
    char err[128];
    if (sto_store_open(sto_server_url(f->redis), 5000, &s, err, sizeof(err)) != BASE_OK) {
        return -1;
    }
    base_err e = sto_store_len(s, STO_OUTCOMES, "p", &n);
    sto_store_close(s);
    return e == BASE_OK ? (int)n : -1;
}

/* Whether @f serves policy p at definition version @want within @timeout_ms (0: now). */
static bool definition_version_is(tst_daemon *f, int want, int timeout_ms)
{
    char needle[64];
    snprintf(needle, sizeof(needle), "\"definition_version\":%d", want);
    for (int64_t dl = tst_now_ms() + timeout_ms;; tst_nap()) {
        tst_http_response h;
        bool got = tst_http_get(f->http_url, "/api/v1/policies/p", 5000, &h) && h.status == 200 &&
                   h.body != NULL && strstr(h.body, needle) != NULL;
        tst_http_response_fini(&h);
        if (got || tst_now_ms() >= dl) {
            return got;
        }
    }
}

/*
 * Which of @x and @y owns policy q, as "a" or "b", once one serves it and the other lists
 * it under `standby` with that owner; NULL if that does not happen within 10 s.
 */
static const char *q_owner(tst_daemon *x, tst_daemon *y)
{
    for (int64_t dl = tst_now_ms() + 10000; tst_now_ms() < dl; tst_nap()) {
        json_t *sx = tst_stats(x), *sy = tst_stats(y);
        const char *ox = json_string_value(json_object_get(json_object_get(sx, "standby"), "q"));
        const char *oy = json_string_value(json_object_get(json_object_get(sy, "standby"), "q"));
        const char *owner = NULL;
        if (tst_stat_int(sx, "q", "model_version") >= 0 && oy != NULL && strcmp(oy, "a") == 0) {
            owner = "a";
        } else if (tst_stat_int(sy, "q", "model_version") >= 0 && ox != NULL &&
                   strcmp(ox, "b") == 0) {
            owner = "b";
        }
        json_decref(sx);
        json_decref(sy);
        if (owner != NULL) {
            return owner;
        }
    }
    return NULL;
}

int main(void)
{
    tst_daemon a, b;
    memset(&b, 0, sizeof(b));
    bool up = tst_daemon_init(&a, "rlfeed-standby-a", CONFIG("a"));
    up = up && tst_daemon_init(&b, "rlfeed-standby-b", CONFIG("b"));
    char url[600];
    snprintf(url, sizeof(url), "%s", up ? sto_server_url(a.redis) : "");
    const char *on_a[] = {"--redis", url, NULL};
    up = up && tst_daemon_start(&a, true, NULL) && tst_daemon_start(&b, false, on_a);
    TST_TRUE(up);
    if (up) {
        /* "b" stands by: the policy is "a"'s. */
        rlfeed_reply r;
        TST_OK(tst_decide(&b, "p", NULL, &r));
        TST_TRUE(!r.ok && r.error.code == PROTO_E_UNAVAILABLE &&
                 strstr(r.error.message, "\"a\"") != NULL);
        printf("# b, standing by: %s\n", r.ok ? "ok" : r.error.message);
        TST_TRUE(tst_file_has(b.log, "standing by"));
        /* Over HTTP too: its policy page is unavailable, naming the owner, not unknown. */
        tst_http_response hr;
        TST_TRUE(tst_http_get(b.http_url, "/api/v1/policies/p", 5000, &hr));
        TST_EQ(hr.status, 503);
        TST_TRUE(hr.body != NULL && strstr(hr.body, "unavailable") != NULL &&
                 strstr(hr.body, "served by instance") != NULL);
        tst_http_response_fini(&hr);
        /* Standing by for its only policy, it is no place to route requests to. */
        TST_TRUE(tst_http_get(b.http_url, "/readyz", 5000, &hr));
        TST_EQ(hr.status, 503);
        TST_TRUE(hr.body != NULL && strstr(hr.body, "standing by") != NULL);
        tst_http_response_fini(&hr);
        json_t *sb_stats = tst_stats(&b);
        TST_STREQ(json_string_value(json_object_get(json_object_get(sb_stats, "standby"), "p")),
                  "a");
        json_decref(sb_stats);

        /*
         * A policy the catalog creates while both run: the first to take its lease owns it,
         * the other stands by for it (not unknown_policy until a later reread).
         */
        char qdef[700];
        snprintf(qdef, sizeof(qdef), "%s/q.ini", a.dir);
        FILE *qf = fopen(qdef, "w");
        TST_TRUE(qf != NULL &&
                 fputs("[policy q]\ndim = 2\nactions = a, b\nsignal.resolved = 1\n", qf) >= 0 &&
                 fclose(qf) == 0);
        const char *put_q[] = {"policy", "put", "--file", qdef, NULL};
        TST_EQ(tst_daemon_cli(&a, "test", put_q), 0);
        const char *qo = q_owner(&a, &b);
        printf("# q, created in the catalog: owned by %s\n", qo != NULL ? qo : "(neither)");
        TST_TRUE(qo != NULL);
        if (qo != NULL) {
            tst_daemon *other = strcmp(qo, "a") == 0 ? &b : &a;
            TST_OK(tst_decide(other, "q", NULL, &r));
            char want[16];
            snprintf(want, sizeof(want), "\"%s\"", qo);
            TST_TRUE(!r.ok && r.error.code == PROTO_E_UNAVAILABLE &&
                     strstr(r.error.message, want) != NULL);
            printf("# the other on q: %s\n", r.ok ? "ok" : r.error.message);
            /* Retired, q is unknown there too, not served elsewhere; put again, stood by. */
            const char *retire_q[] = {"policy", "retire", "--policy", "q", NULL};
            TST_EQ(tst_daemon_cli(&a, "test", retire_q), 0);
            bool unknown = false;
            for (int64_t dl = tst_now_ms() + 5000; !unknown && tst_now_ms() < dl; tst_nap()) {
                unknown = tst_decide(other, "q", NULL, &r) == BASE_OK && !r.ok &&
                          r.error.code == PROTO_E_UNKNOWN_POLICY;
            }
            TST_TRUE(unknown);
            json_t *os = tst_stats(other);
            TST_TRUE(json_object_get(json_object_get(os, "standby"), "q") == NULL);
            json_decref(os);
            TST_EQ(tst_daemon_cli(&a, "test", put_q), 0);
            qo = q_owner(&a, &b);
            printf("# q, put again: owned by %s\n", qo != NULL ? qo : "(neither)");
            TST_TRUE(qo != NULL);
        }

        int ok = 0;
        for (int i = 0; i < 60; i++) {
            ok += interact(&a);
        }
        TST_EQ(ok, 60);
        long long va = 0, vb = 0;
        char sa[32], sb[32];
        TST_TRUE(settle(&a, &va, sa, sizeof(sa)));

        /*
         * The definition changes in the catalog while "b" stands by ("a" applies it; the head
         * goes on): "b" takes over with the definition in force, not the one it read at start.
         */
        char def[700];
        snprintf(def, sizeof(def), "%s/p.ini", a.dir);
        FILE *fp = fopen(def, "w");
        TST_TRUE(fp != NULL && fputs(strstr(CONFIG("a"), "[policy p]"), fp) >= 0 &&
                 fputs("epsilon = 0.2\n", fp) >= 0 && fclose(fp) == 0);
        const char *put[] = {"policy", "put", "--file", def, NULL};
        TST_EQ(tst_daemon_cli(&a, "test", put), 0);
        TST_TRUE(definition_version_is(&a, 1, 20000));
        TST_TRUE(settle(&a, &va, sa, sizeof(sa)));

        /*
         * "a" stops (SIGSTOP: a stale owner, not a dead one): "b" takes over when the lease
         * runs out.
         */
        kill(a.pid, SIGSTOP);
        int64_t killed = tst_now_ms(), served = -1;
        while (served < 0 && tst_now_ms() < killed + 20000) {
            /* Watched through stats: a probing decide would be traffic the model learns. */
            json_t *st = tst_stats(&b);
            if (st != NULL && tst_stat_int(st, "p", "model_version") >= 0) {
                served = tst_now_ms() - killed;
            } else {
                tst_nap();
            }
            json_decref(st);
        }
        printf("# b serves p %lld ms after a stopped (lease 1500 ms)\n", (long long)served);
        TST_TRUE(served >= 0 && served < 10000);
        TST_TRUE(definition_version_is(&b, 1, 0)); /* at once: not at a later reread */
        if (qo != NULL && strcmp(qo, "a") == 0) {
            /* q, stood by for since the catalog created it, is taken over as p is. */
            bool q_served = false;
            for (int64_t dl = tst_now_ms() + 5000; !q_served && tst_now_ms() < dl; tst_nap()) {
                json_t *st = tst_stats(&b);
                q_served = tst_stat_int(st, "q", "model_version") >= 0;
                json_decref(st);
            }
            TST_TRUE(q_served);
        }
        TST_TRUE(tst_file_has(b.log, "taken over from instance"));
        TST_TRUE(settle(&b, &vb, sb, sizeof(sb)));
        printf("# a before it stopped: version %lld checksum %s; b after the takeover: %lld %s\n",
               va, sa, vb, sb);
        TST_EQ(vb, va);
        TST_STREQ(sb, sa);

        /*
         * "a" resumes, still believing it owns p: whatever it answers now is not stored (its
         * writes are fenced by the lease) and it stops on its own (lost ownership).
         */
        kill(a.pid, SIGCONT);
        bool stale_ok = false;
        if (tst_callf(&a, &r,
                      "{\"op\":\"decide\",\"policy\":\"p\",\"event_id\":\"stale-1\","
                      "\"context\":{\"embedding\":[1,0]},\"candidates\":[{\"id\":\"a\","
                      "\"base_logit\":0},{\"id\":\"b\",\"base_logit\":0}]}") == BASE_OK &&
            r.ok &&
            tst_callf(&a, &r,
                      "{\"op\":\"feedback\",\"policy\":\"p\",\"event_id\":\"stale-1\","
                      "\"signal\":\"resolved\",\"outcome_id\":\"stale-o\"}") == BASE_OK) {
            stale_ok = r.ok;
        }
        /*
         * It stops on its own (lost ownership at its renewal), within the shutdown bound. Now
         * and then (1 to 4 runs in 15 here) nng 1.5.2 leaves a connection stuck in its
         * teardown at this point and nng_close() never returns; rlfeedd gives the sockets
         * SOCKET_CLOSE_MS (service/net.c) and goes on with its shutdown without them.
         */
        int status = -1;
        int64_t lost_deadline = tst_now_ms() + 15000;
        while (!tst_file_has(a.log, "lost ownership") && tst_now_ms() < lost_deadline) {
            tst_nap();
        }
        bool exited = tst_wait_exit(a.pid, 15000, &status);
        if (!exited) {
            kill(a.pid, SIGKILL);
            (void)tst_wait_exit(a.pid, 5000, NULL);
            printf("# a did not finish its shutdown within 15 s: killed\n");
        }
        if (tst_file_has(a.log, "nng did not close the sockets")) {
            printf("# a: nng_close() did not return; the shutdown went on without it\n");
        }
        a.pid = 0;
        rlfeed_client_close(a.c);
        a.c = NULL;
        printf("# a resumed: its stale feedback %s; it exited with status %d; %s\n",
               stale_ok ? "acknowledged (wrong)" : "not acknowledged",
               exited ? WEXITSTATUS(status) : -1,
               tst_file_has(a.log, "was refused") ? "a write was refused by the fence"
                                                  : "it stopped before writing");
        TST_TRUE(!stale_ok);
        TST_TRUE(exited && WIFEXITED(status) && WEXITSTATUS(status) != 0);
        TST_TRUE(tst_file_has(a.log, "lost ownership"));

        /* "b" learns on; stopped cleanly, it hands the lease back to a restarted "a". */
        ok = 0;
        for (int i = 0; i < 30; i++) {
            ok += interact(&b);
        }
        TST_EQ(ok, 30);
        TST_TRUE(settle(&b, &vb, sb, sizeof(sb)));
        TST_TRUE(vb > va);
        TST_EQ(tst_daemon_stop(&b), 0);
        TST_TRUE(tst_daemon_start(&a, true, NULL));
        TST_TRUE(settle(&a, &va, sa, sizeof(sa)));
        printf("# b at its stop: version %lld checksum %s; a again: %lld %s\n", vb, sb, va, sa);
        TST_EQ(va, vb);
        TST_STREQ(sa, sb);
        TST_TRUE(interact(&a));
        printf("# acknowledged %d, in the outcomes stream %d\n", acked, stored_outcomes(&a));
        TST_EQ(stored_outcomes(&a), acked);
        TST_EQ(tst_daemon_stop(&a), 0);
    }
    tst_daemon_fini(&b, tst_failed > 0);
    tst_daemon_fini(&a, tst_failed > 0);
    rlfeed_client_lib_fini();
    return tst_done();
}
