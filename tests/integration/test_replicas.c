/*
 * replicas_ack (docs/operations.md, "What acknowledged means"): rlfeedd on a Redis master
 * with one replica, both on loopback ports, replicas_ack = 1. Acknowledged feedback is
 * answered ok while the replica follows; with the replica killed it is answered unavailable
 * ("not on replicas_ack replicas in time"), though the master has it, and so is its retry;
 * once the replica is back, ok again, and a retry of an unconfirmed outcome is a duplicate
 * (nothing counted twice). Every process is stopped and the directory removed.
 */
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/rlfeed_client.h"
#include "daemon.h"
#include "proc.h"
#include "tap.h"

static pid_t start_redis(char *dir, int port, int master_port)
{
    char p[16], mp[16], log[700], rdir[700];
    snprintf(p, sizeof(p), "%d", port);
    snprintf(mp, sizeof(mp), "%d", master_port);
    snprintf(log, sizeof(log), "%s/redis-%d.log", dir, port);
    snprintf(rdir, sizeof(rdir), "%s", dir);
    char *argv[] = {"redis-server",
                    "--port",
                    p,
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    rdir,
                    "--dbfilename",
                    "r.rdb",
                    master_port > 0 ? "--replicaof" : NULL,
                    "127.0.0.1",
                    mp,
                    NULL};
    return tst_spawn(argv, log);
}

/* Whether the master at @port sees @n replicas online. */
static bool replicas_online(int port, int n)
{
    redisContext *c = redisConnect("127.0.0.1", port);
    bool ok = false;
    if (c != NULL && c->err == 0) {
        redisReply *r = redisCommand(c, "INFO replication");
        char want[64];
        snprintf(want, sizeof(want), "connected_slaves:%d", n);
        ok = r != NULL && r->type == REDIS_REPLY_STRING && strstr(r->str, want) != NULL &&
             (n == 0 || strstr(r->str, "state=online") != NULL);
        freeReplyObject(r);
    }
    redisFree(c);
    return ok;
}

static bool wait_replicas(int port, int n)
{
    int64_t deadline = tst_now_ms() + 20000;
    while (tst_now_ms() < deadline) {
        if (replicas_online(port, n)) {
            return true;
        }
        tst_nap();
    }
    return false;
}

static int ev;

/*
 * A retry of an unavailable feedback, as a client does: the same outcome id, so it is a
 * duplicate once stored. On a busy machine the replica may lag past the timeout now and
 * then; healthy phases allow three tries.
 */
static bool acked_with_retries(tst_daemon *f, const char *oid, rlfeed_reply *r)
{
    int id = ev - 1;
    for (int t = 0; t < 3 && !r->ok && r->error.code == PROTO_E_UNAVAILABLE; t++) {
        if (tst_callf(f, r,
                      "{\"op\":\"feedback\",\"policy\":\"p\",\"event_id\":\"ev-%d\","
                      "\"signal\":\"resolved\",\"outcome_id\":\"%s\"}",
                      id, oid) != BASE_OK) {
            return false;
        }
    }
    return r->ok;
}

/* decide, then acknowledged feedback with outcome id @oid; the feedback reply in *out. */
static bool decide_and_feedback(tst_daemon *f, const char *oid, rlfeed_reply *out)
{
    rlfeed_reply r;
    char id[32];
    snprintf(id, sizeof(id), "ev-%d", ev++);
    if (tst_callf(f, &r,
                  "{\"op\":\"decide\",\"policy\":\"p\",\"event_id\":\"%s\",\"context\":"
                  "{\"embedding\":[1,0]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0},"
                  "{\"id\":\"b\",\"base_logit\":0}]}",
                  id) != BASE_OK ||
        !r.ok) {
        return false;
    }
    return tst_callf(f, out,
                     "{\"op\":\"feedback\",\"policy\":\"p\",\"event_id\":\"%s\",\"signal\":"
                     "\"resolved\",\"outcome_id\":\"%s\"}",
                     id, oid) == BASE_OK;
}

int main(void)
{
    tst_daemon f;
    const char *config = "[server]\nreplicas_ack = 1\nreplicas_ack_timeout_ms = 600\n"
                         "[policy p]\ndim = 2\nactions = a, b\nsignal.resolved = 1\n"
                         "window_ms = 600000\n";
    if (!tst_daemon_init(&f, "rlfeed-replicas", config)) {
        printf("Bail out! fixture\n");
        tst_daemon_fini(&f, false);
        return 1;
    }
    int mport = tst_free_port(), rport = tst_free_port();
    while (rport == mport) {
        rport = tst_free_port();
    }
    pid_t master = start_redis(f.dir, mport, 0);
    pid_t replica = start_redis(f.dir, rport, mport);
    bool up = master > 0 && replica > 0 && wait_replicas(mport, 1);
    TST_TRUE(up);
    char url[64];
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", mport);
    const char *extra[] = {"--redis", url, NULL};
    up = up && tst_daemon_start(&f, true, extra);
    TST_TRUE(up);
    rlfeed_reply r;
    if (up) {
        /* The replica follows: acknowledged. */
        int ok = 0;
        for (int i = 0; i < 20; i++) {
            char oid[32];
            snprintf(oid, sizeof(oid), "o-%d", i);
            ok += decide_and_feedback(&f, oid, &r) && acked_with_retries(&f, oid, &r);
        }
        TST_EQ(ok, 20);

        /* The replica dies: stored on the master, but not acknowledged. */
        kill(replica, SIGKILL);
        (void)tst_wait_exit(replica, 5000, NULL);
        replica = 0;
        TST_TRUE(wait_replicas(mport, 0));
        TST_TRUE(decide_and_feedback(&f, "o-99", &r));
        TST_TRUE(!r.ok && r.error.code == PROTO_E_UNAVAILABLE &&
                 strstr(r.error.message, "replicas") != NULL);
        printf("# without the replica: %s\n", r.ok ? "ok" : r.error.message);
        /*
         * Its retry is no `duplicate` (ok) either while no replica has it, also right after a
         * restart, on a connection that has written nothing yet.
         */
        for (int k = 0; k < 2; k++) {
            if (k == 1) {
                TST_EQ(tst_daemon_stop(&f), 0);
                TST_TRUE(tst_daemon_start(&f, true, extra));
            }
            TST_OK(tst_callf(&f, &r,
                             "{\"op\":\"feedback\",\"policy\":\"p\",\"event_id\":\"ev-20\","
                             "\"signal\":\"resolved\",\"outcome_id\":\"o-99\"}"));
            TST_TRUE(!r.ok && r.error.code == PROTO_E_UNAVAILABLE &&
                     strstr(r.error.message, "replicas") != NULL);
        }

        /* The replica returns: acknowledged again; the unconfirmed outcome's retry is a
         * duplicate (it is in the stream once). */
        replica = start_redis(f.dir, rport, mport);
        TST_TRUE(wait_replicas(mport, 1));
        ok = 0;
        for (int i = 20; i < 30; i++) {
            char oid[32];
            snprintf(oid, sizeof(oid), "o-%d", i);
            ok += decide_and_feedback(&f, oid, &r) && acked_with_retries(&f, oid, &r);
        }
        TST_EQ(ok, 10);
        TST_OK(tst_callf(&f, &r,
                         "{\"op\":\"feedback\",\"policy\":\"p\",\"event_id\":\"ev-20\","
                         "\"signal\":\"resolved\",\"outcome_id\":\"o-99\"}"));
        TST_TRUE(r.ok);
        json_t *s = tst_stats(&f);
        printf("# feedback matched %lld, duplicates %lld\n", tst_stat_int(s, "p", "feedback"),
               tst_stat_int(s, "p", "duplicates"));
        TST_EQ(tst_stat_int(s, "p", "feedback"), 10); /* since the restart; o-99 a duplicate */
        json_decref(s);
        /* Each outcome stored once: o-0 .. o-29 and o-99, 31 records. */
        int times[100] = {0}, once = 0;
        TST_EQ(tst_count_outcome_ids(url, "p", times, 100), 31);
        for (int i = 0; i < 100; i++) {
            once += times[i] == 1;
            if (times[i] > 1) {
                printf("# o-%d stored %d times\n", i, times[i]);
            }
        }
        TST_EQ(once, 31);
        TST_EQ(tst_daemon_stop(&f), 0);
    }
    if (replica > 0) {
        tst_stop(replica, 5000);
    }
    if (master > 0) {
        tst_stop(master, 5000);
    }
    tst_daemon_fini(&f, tst_failed > 0);
    rlfeed_client_lib_fini();
    return tst_done();
}
