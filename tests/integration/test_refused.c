/*
 * Redis that answers but refuses writes (here: maxmemory below what it uses, with the
 * default noeviction policy, so every write is answered "-OOM ..."; then an ACL without
 * XADD, "-NOPERM ..."): rlfeedd treats it like Redis away. The records stay queued, in order; acknowledged feedback is answered
 * "unavailable" after ack_timeout_ms and stays queued; health says "degraded"; nothing is
 * counted as a store error. Once Redis takes writes again, everything is stored: the
 * outcome exactly once, and its retry is answered "duplicate". Stopped while Redis refuses,
 * rlfeedd spills what waits, within the shutdown bound, and the next start appends it.
 *
 * Before, such a refusal dropped the record (a store error) while the join had applied the
 * outcome, and the retry was answered "duplicate" for an outcome Redis never had.
 */
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "http.h"
#include "proc.h"
#include "tap.h"

#define POLICY "o"

static const char CONFIG[] = "[server]\n"
                             "ack_timeout_ms = 300\n"
                             "snapshot_interval_ms = 200\n"
                             "[policy o]\n"
                             "dim = 4\n"
                             "actions = a0, a1, a2, a3\n"
                             "portfolio = off\n"
                             "signal.resolved = 1.0\n"
                             "window_ms = 3600000\n";

static const float X[4] = {0.25f, -0.5f, 0.75f, 0.1f};
static const char *const IDS[4] = {"a0", "a1", "a2", "a3"};
static const float LOGITS[4] = {0.1f, 0.2f, 0.3f, 0.4f};

/* Run one command on the private redis-server; whether it answered a status (+OK). */
static bool redis_status(const char *sock, const char *fmt, ...)
{
    va_list ap;
    redisContext *c = redisConnectUnix(sock);
    bool ok = c != NULL && !c->err;
    va_start(ap, fmt);
    redisReply *r = ok ? redisvCommand(c, fmt, ap) : NULL;
    va_end(ap);
    ok = r != NULL && r->type == REDIS_REPLY_STATUS;
    if (r != NULL) {
        freeReplyObject(r);
    }
    if (c != NULL) {
        redisFree(c);
    }
    return ok;
}

/* CLIENT KILL TYPE normal: cut every client's connection (ours too); how many, or -1. */
static long long redis_kill_clients(const char *sock)
{
    redisContext *c = redisConnectUnix(sock);
    redisReply *r = c != NULL && !c->err ? redisCommand(c, "CLIENT KILL TYPE normal") : NULL;
    long long n = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r != NULL) {
        freeReplyObject(r);
    }
    if (c != NULL) {
        redisFree(c);
    }
    return n;
}

static bool redis_config(const char *sock, const char *key, const char *value)
{
    return redis_status(sock, "CONFIG SET %s %s", key, value);
}

/* Whether a start of @f fails (the daemon exits) and its log then has @words. */
static bool start_fails_with(tst_daemon *f, const char *const *extra, const char *words)
{
    bool failed = !tst_daemon_start(f, true, extra);
    rlfeed_client_close(f->c);
    f->c = NULL;
    return failed && tst_file_has(f->log, words);
}

static void count_one(const base_decision *d, void *arg)
{
    (void)d;
    ++*(int *)arg;
}

static bool decide(rlfeed_client *c, char *event, size_t len)
{
    rlfeed_reply r;
    if (rlfeed_client_decide(c, POLICY, NULL, X, 4, 4, IDS, LOGITS, &r) != BASE_OK || !r.ok) {
        return false;
    }
    snprintf(event, len, "%s", r.event_id);
    return true;
}

int main(void)
{
    tst_daemon f;
    char data_dir[700];
    bool ok = tst_daemon_init(&f, "rlfeed-refused", CONFIG);
    snprintf(data_dir, sizeof(data_dir), "%s/data", f.dir);
    const char *extra[] = {"--data-dir", data_dir, NULL};
    if (!ok || !tst_daemon_start(&f, true, extra)) {
        TST_TRUE(0 && "fixture");
        tst_daemon_fini(&f, true);
        return tst_done();
    }
    /* rlfeedd made data_dir (with an external Redis too), so a shutdown can spill there. */
    struct stat dst;
    TST_TRUE(stat(data_dir, &dst) == 0 && S_ISDIR(dst.st_mode) && (dst.st_mode & 0777) == 0700);
    const char *sock = sto_server_url(f.redis) + strlen("unix:");
    char ev[3][BASE_ID_MAX + 1];
    rlfeed_reply r;
    TST_TRUE(decide(f.c, ev[0], sizeof(ev[0])));
    TST_TRUE(rlfeed_client_feedback(f.c, POLICY, ev[0], "resolved", 1.0, "o-0", &r) == BASE_OK &&
             r.ok && !r.duplicate);

    /* Every write refused: "-OOM command not allowed when used memory > 'maxmemory'". */
    TST_TRUE(redis_config(sock, "maxmemory", "1"));
    TST_TRUE(decide(f.c, ev[1], sizeof(ev[1]))); /* served: decide never waits for Redis */
    base_err e = rlfeed_client_feedback(f.c, POLICY, ev[1], "resolved", 1.0, "o-1", &r);
    TST_TRUE(e == BASE_OK && !r.ok && r.error.code == PROTO_E_UNAVAILABLE);
    printf("# while refused: %s\n", e == BASE_OK && !r.ok ? r.error.message : "(no error)");
    TST_TRUE(tst_wait_health(f.c, "degraded", 5000));
    json_t *s = tst_stats(&f);
    TST_EQ(tst_stat_int(s, POLICY, "store_errors"), 0);
    json_decref(s);
    TST_TRUE(tst_file_has(f.log, "refuses writes (OOM"));
    /* Not ready, and /readyz says why: refused, not unreachable. */
    tst_http_response h;
    memset(&h, 0, sizeof(h));
    TST_TRUE(f.http_url[0] != '\0' && tst_http_get(f.http_url, "/readyz", 5000, &h));
    TST_EQ(h.status, 503);
    TST_TRUE(h.body != NULL && strstr(h.body, "redis refuses writes") != NULL);
    printf("# /readyz while refused: %d %s", h.status, h.body != NULL ? h.body : "(none)\n");
    tst_http_response_fini(&h);
    /*
     * The writer's connection is cut while the refusal lasts: retrying what waits, it
     * reconnects to a Redis that still refuses, and stays not ready (it used to report
     * ready after the reconnect).
     */
    TST_TRUE(redis_kill_clients(sock) >= 1);
    int ready_polls = 0, polls = 0;
    int64_t until = tst_now_ms() + 4000;
    while (tst_now_ms() < until) {
        memset(&h, 0, sizeof(h));
        if (tst_http_get(f.http_url, "/readyz", 5000, &h)) {
            polls++;
            ready_polls += h.status == 200;
        }
        tst_http_response_fini(&h);
        tst_nap();
    }
    printf("# /readyz after the writer's connection was cut: ready in %d of %d polls\n",
           ready_polls, polls);
    TST_TRUE(polls > 0);
    TST_EQ(ready_polls, 0);

    /* Writes taken again: what waited is stored, and the retry finds the original. */
    TST_TRUE(redis_config(sock, "maxmemory", "0"));
    TST_TRUE(tst_wait_health(f.c, "ready", 10000));
    e = rlfeed_client_feedback(f.c, POLICY, ev[1], "resolved", 1.0, "o-1", &r);
    TST_TRUE(e == BASE_OK && r.ok && r.duplicate);
    int times[2] = {0, 0};
    TST_EQ(tst_count_outcome_ids(sto_server_url(f.redis), POLICY, times, 2), 2);
    TST_EQ(times[0], 1);
    TST_EQ(times[1], 1);
    s = tst_stats(&f);
    TST_EQ(tst_stat_int(s, POLICY, "store_errors"), 0);
    json_decref(s);

    /*
     * An error that needs an operator, not time (here an ACL that takes XADD away: "-NOPERM
     * ..."): the same.
     */
    TST_TRUE(redis_status(sock, "ACL SETUSER default -xadd"));
    TST_TRUE(decide(f.c, ev[2], sizeof(ev[2])));
    e = rlfeed_client_feedback(f.c, POLICY, ev[2], "resolved", 1.0, "o-2", &r);
    TST_TRUE(e == BASE_OK && !r.ok && r.error.code == PROTO_E_UNAVAILABLE);
    TST_TRUE(tst_wait_health(f.c, "degraded", 5000));
    TST_TRUE(tst_file_has(f.log, "refuses writes (NOPERM"));
    s = tst_stats(&f);
    TST_EQ(tst_stat_int(s, POLICY, "store_errors"), 0);
    json_decref(s);
    TST_TRUE(redis_status(sock, "ACL SETUSER default +xadd"));
    TST_TRUE(tst_wait_health(f.c, "ready", 10000));
    e = rlfeed_client_feedback(f.c, POLICY, ev[2], "resolved", 1.0, "o-2", &r);
    TST_TRUE(e == BASE_OK && r.ok && r.duplicate);
    int times3[3] = {0, 0, 0};
    TST_EQ(tst_count_outcome_ids(sto_server_url(f.redis), POLICY, times3, 3), 3);
    TST_EQ(times3[2], 1);
    int decided = 0;
    TST_EQ(tst_each_decision(&f, POLICY, 3, 10000, count_one, &decided), 3);
    s = tst_stats(&f);
    TST_EQ(tst_stat_int(s, POLICY, "store_errors"), 0);
    json_decref(s);

    /*
     * An ACL without MULTI: records are still taken (each command on its own), checkpoints,
     * always sent in one, are refused: said once, health degraded until one is stored.
     */
    TST_TRUE(tst_wait_health(f.c, "ready", 10000));
    TST_TRUE(redis_status(sock, "ACL SETUSER default -multi"));
    char nomulti[BASE_ID_MAX + 1];
    TST_TRUE(decide(f.c, nomulti, sizeof(nomulti))); /* a change: a checkpoint is due */
    TST_TRUE(tst_wait_health(f.c, "degraded", 5000));
    TST_TRUE(tst_file_has(f.log, "redis: refuses checkpoints (NOPERM"));
    TST_TRUE(redis_status(sock, "ACL SETUSER default +multi"));
    TST_TRUE(decide(f.c, nomulti, sizeof(nomulti)));
    TST_TRUE(tst_wait_health(f.c, "ready", 5000));
    TST_TRUE(tst_file_has(f.log, "redis: checkpoints stored again"));
    TST_EQ(tst_each_decision(&f, POLICY, 5, 10000, count_one, &decided), 5);

    /*
     * Stopped while Redis still refuses: the waiting records are spilled to data_dir within
     * the shutdown bound, as with Redis away, and the next start appends them.
     */
    TST_TRUE(redis_config(sock, "maxmemory", "1"));
    char late[3][BASE_ID_MAX + 1];
    for (int i = 0; i < 3; i++) {
        TST_TRUE(decide(f.c, late[i], sizeof(late[i])));
    }
    TST_TRUE(tst_wait_health(f.c, "degraded", 5000));
    int64_t t0 = tst_now_ms();
    TST_EQ(tst_daemon_stop(&f), 0);
    int64_t took = tst_now_ms() - t0;
    printf("# stopped while refused: %lld ms\n", (long long)took);
    TST_TRUE(took < 10000 + 5000); /* the documented 10 s, with slack for a shared machine */
    TST_TRUE(tst_file_has(f.log, "records not stored in redis were spilled to"));
    TST_TRUE(tst_file_has(f.log, "shutdown: redis refusing writes for the last"));
    /*
     * Started while Redis still refuses every write: the start stops at the first one, the
     * lease, with Redis's words. Then while Redis refuses only the spilled records (XADD
     * taken away by an ACL): the start stops, naming the record and Redis's words. The
     * file stays for the next start.
     */
    TST_TRUE(start_fails_with(&f, extra, "taking its lease: store error (OOM"));
    TST_TRUE(redis_config(sock, "maxmemory", "0"));
    TST_TRUE(redis_status(sock, "ACL SETUSER default -xadd"));
    TST_TRUE(start_fails_with(&f, extra, "redis refused it (NOPERM"));
    TST_TRUE(tst_file_has(f.log, "/rlfeed-spill-")); /* the file's name */
    TST_TRUE(redis_status(sock, "ACL SETUSER default +xadd"));
    /* A foreign key where a spilled record's stream belongs: its words, and the stream. */
    TST_TRUE(redis_status(sock, "RENAME rlfeed:{o}:decisions rlfeed:{o}:kept"));
    TST_TRUE(redis_status(sock, "SET rlfeed:{o}:decisions foreign"));
    TST_TRUE(start_fails_with(
        &f, extra, "reading the last id of rlfeed:{o}:decisions: store error (WRONGTYPE"));
    TST_TRUE(redis_status(sock, "RENAME rlfeed:{o}:kept rlfeed:{o}:decisions"));
    TST_TRUE(tst_daemon_start(&f, true, extra));
    TST_TRUE(tst_file_has(f.log, "replayed 1 spill file(s)"));
    int n = 0;
    TST_EQ(tst_each_decision(&f, POLICY, 8, 10000, count_one, &n), 8);
    TST_EQ(n, 8);

    /*
     * A foreign key where the decision stream belongs: recovery cannot read it, and the start
     * stops with Redis's words. Put back, the next start recovers all eight.
     */
    TST_EQ(tst_daemon_stop(&f), 0);
    TST_TRUE(redis_status(sock, "RENAME rlfeed:{o}:decisions rlfeed:{o}:kept"));
    TST_TRUE(redis_status(sock, "SET rlfeed:{o}:decisions foreign"));
    TST_TRUE(start_fails_with(&f, extra, "(WRONGTYPE"));
    TST_TRUE(redis_status(sock, "RENAME rlfeed:{o}:kept rlfeed:{o}:decisions"));
    /* The same where the policy catalog's set belongs: the catalog's message names them. */
    TST_TRUE(redis_status(sock, "SET rlfeed:catalog foreign"));
    TST_TRUE(start_fails_with(&f, extra, "reading the policy catalog: store error (WRONGTYPE"));
    TST_TRUE(redis_status(sock, "RENAME rlfeed:catalog rlfeed:foreign"));
    TST_TRUE(tst_daemon_start(&f, true, extra));
    n = 0;
    TST_EQ(tst_each_decision(&f, POLICY, 8, 10000, count_one, &n), 8);

    /* A foreign key where the audit stream belongs: the start goes on, the warning says why. */
    TST_EQ(tst_daemon_stop(&f), 0);
    TST_TRUE(redis_status(sock, "RENAME rlfeed:{o}:audit rlfeed:{o}:kept"));
    TST_TRUE(redis_status(sock, "SET rlfeed:{o}:audit foreign"));
    TST_TRUE(tst_daemon_start(&f, true, extra));
    TST_TRUE(tst_file_has(f.log, "cannot append the restore audit entry: store error (WRONGTYPE"));
    TST_EQ(tst_daemon_stop(&f), 0);
    TST_TRUE(redis_status(sock, "RENAME rlfeed:{o}:kept rlfeed:{o}:audit")); /* over it */
    tst_daemon_fini(&f, tst_failed > 0);
    return tst_done();
}
