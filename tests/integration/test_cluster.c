/*
 * rlfeedd on a Redis Cluster (docs/storage.md section 10, docs/operations.md): 3 masters
 * with a replica each on loopback ports (cluster-node-timeout 1 s), rlfeedd with
 * --redis cluster://..., replicas_ack = 1, and three policies whose slots are on three
 * different masters. Decide + acknowledged feedback through all three; kill -9 the master
 * of one policy (its replica takes over) while the traffic goes on, a client retrying an
 * unanswered feedback with the same outcome id; once the replica is promoted, the killed
 * node is started again and rejoins as its replica (until then no replica can confirm that
 * policy's writes: they are answered unavailable and retried, and a retry of a stored one is
 * answered `duplicate` only once the replica has it, so the decisions are remembered past
 * their window, late_memory_ms). Then:
 * - every acknowledged outcome is in its policy's outcomes stream exactly once (none lost,
 *   none stored twice), and the daemon counted each once (stats feedback);
 * - the policy on the failed master learns again (its model version moves) after the
 *   failover;
 * - rlfeedd stopped and started again on the cluster recovers every policy to the same
 *   model version and checksum;
 * - a master whose replica is killed holds back only its own policy's acknowledged
 *   feedback: the others', sent meanwhile, are answered ok at the first try.
 * Every process is stopped and the directory removed.
 */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "client/rlfeed_client.h"
#include "daemon.h"
#include "proc.h"
#include "proto/json.h"
#include "rcluster.h"
#include "storage/store.h"
#include "tap.h"

#define N_POL 3
#define PHASE 90 /* interactions before and after the kill */

static char pol[N_POL][16];
static int acked[N_POL];
static int ev;
static tst_rcluster cl;
static int killed = -1;  /* the killed master, until it is back */
static int64_t promoted; /* when the cluster was whole again after the kill */

/*
 * Ops after the kill: once the cluster is whole again (the replica promoted), start the
 * killed node again; it rejoins as the new master's replica, so replicas_ack = 1 can be met
 * again for the policy it served.
 */
static void tend(void)
{
    char key[64];
    snprintf(key, sizeof(key), "rlfeed:{%s}:outcomes", pol[0]);
    /* Not before the replica is promoted: an empty master back in time would be kept. */
    if (killed >= 0 && tst_rcluster_ok(&cl) && tst_rcluster_master_of(&cl, key) >= 0 &&
        tst_rcluster_master_of(&cl, key) != killed) {
        promoted = tst_now_ms();
        if (tst_rcluster_restart(&cl, killed)) {
            killed = -1;
        }
    }
}

/* decide on policy @p, then feedback until acknowledged (retrying as a client does). */
static bool interact(tst_daemon *f, int p, int64_t *out_first_try_ms)
{
    rlfeed_reply r;
    int i = ev++;
    if (tst_callf(f, &r,
                  "{\"op\":\"decide\",\"policy\":\"%s\",\"event_id\":\"ev-%d\",\"context\":"
                  "{\"embedding\":[%d,1]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0},"
                  "{\"id\":\"b\",\"base_logit\":0}]}",
                  pol[p], i, i % 2) != BASE_OK ||
        !r.ok) {
        printf("# decide ev-%d: %s\n", i, r.ok ? "transport" : r.error.message);
        return false;
    }
    int64_t start = tst_now_ms(), deadline = start + 30000;
    while (tst_now_ms() < deadline) {
        base_err e = tst_callf(f, &r,
                               "{\"op\":\"feedback\",\"policy\":\"%s\",\"event_id\":\"ev-%d\","
                               "\"signal\":\"%s\",\"outcome_id\":\"o-%d\"}",
                               pol[p], i, i % 3 == 0 ? "resolved" : "escalated", i);
        if (e == BASE_OK && r.ok) {
            acked[p]++;
            *out_first_try_ms = tst_now_ms() - start;
            return true;
        }
        if (e == BASE_OK && r.error.code != PROTO_E_UNAVAILABLE) {
            printf("# feedback ev-%d: %s\n", i, r.error.message);
            return false;
        }
        tend();
        tst_nap();
    }
    return false;
}

/* Wait until every policy has nothing pending and its version is stable; versions, sums. */
static bool settle(tst_daemon *f, long long *ver, char sum[][32])
{
    int64_t deadline = tst_now_ms() + 30000;
    long long prev[N_POL] = {-1, -1, -1};
    int stable = 0;
    while (tst_now_ms() < deadline && stable < 3) {
        json_t *s = tst_stats(f);
        bool same = s != NULL;
        for (int p = 0; p < N_POL && s != NULL; p++) {
            ver[p] = tst_stat_int(s, pol[p], "model_version");
            const char *cs = tst_stat_str(s, pol[p], "model_checksum");
            snprintf(sum[p], 32, "%s", cs != NULL ? cs : "");
            same = same && tst_stat_int(s, pol[p], "pending") == 0 && ver[p] == prev[p];
            prev[p] = ver[p];
        }
        json_decref(s);
        stable = same ? stable + 1 : 0;
        for (int64_t t = tst_now_ms() + 300; tst_now_ms() < t;) {
            tst_nap();
        }
    }
    return stable >= 3;
}

/* decide on @policy as @event, then one acknowledged feedback (no retry) through @c: its reply. */
static bool decide_feedback_once(rlfeed_client *c, const char *policy, const char *event,
                                 rlfeed_reply *out)
{
    char json[512];
    bool ok = true;
    for (int k = 0; k < 2 && ok; k++) {
        snprintf(json, sizeof(json),
                 k == 0 ? "{\"v\":1,\"op\":\"decide\",\"policy\":\"%s\",\"event_id\":\"%s\","
                          "\"context\":{\"embedding\":[1,1]},\"candidates\":[{\"id\":\"a\","
                          "\"base_logit\":0},{\"id\":\"b\",\"base_logit\":0}]}"
                        : "{\"v\":1,\"op\":\"feedback\",\"policy\":\"%s\",\"event_id\":\"%s\","
                          "\"signal\":\"resolved\",\"outcome_id\":\"o-%s\"}",
                 policy, event, event);
        base_buf b;
        char why[128];
        uint8_t *rep = NULL;
        size_t n = 0;
        base_buf_init(&b, 1 << 16);
        ok = proto_json_to_msgpack(json, &b, why, sizeof(why)) == BASE_OK &&
             rlfeed_client_call(c, b.data, b.len, &rep, &n) == BASE_OK &&
             rlfeed_reply_decode(rep, n, out) == BASE_OK && (k == 1 || out->ok);
        base_free(rep);
        base_buf_fini(&b);
    }
    return ok;
}

typedef struct held_back {
    const char *url, *policy;
    int refused; /* feedback answered unavailable: no replica confirmed it */
} held_back;

/* Acknowledged feedback on a policy whose master lost its replica, from a thread of its own. */
static void *feed_unreplicated(void *arg)
{
    held_back *h = arg;
    rlfeed_client *c = NULL;
    rlfeed_reply r;
    if (rlfeed_client_open(h->url, TST_CLIENT_TIMEOUT_MS, &c) == BASE_OK) {
        for (int i = 0; i < 6; i++) {
            char event[32];
            snprintf(event, sizeof(event), "lone-%d", i);
            h->refused += decide_feedback_once(c, h->policy, event, &r) && !r.ok &&
                          r.error.code == PROTO_E_UNAVAILABLE;
        }
    }
    rlfeed_client_close(c);
    return NULL;
}

/*
 * A master without a replica (replicas_ack = 1) holds back the acknowledged feedback of its
 * own policies only: feedback on the other masters' policies, sent meanwhile and so written
 * in the same batches, is answered ok at the first try.
 */
static void one_master_holds_back_only_its_own(tst_daemon *f)
{
    char key[64];
    snprintf(key, sizeof(key), "rlfeed:{%s}:outcomes", pol[1]);
    int replica = tst_rcluster_replica_of(&cl, key);
    TST_TRUE(replica >= 0);
    if (replica < 0) {
        return;
    }
    tst_rcluster_kill(&cl, replica);
    held_back h = {f->url, pol[1], 0};
    pthread_t t;
    bool started = pthread_create(&t, NULL, feed_unreplicated, &h) == 0;
    TST_TRUE(started);
    rlfeed_client *c = NULL;
    int others = 0, first_try = 0;
    TST_OK(rlfeed_client_open(f->url, TST_CLIENT_TIMEOUT_MS, &c));
    for (int64_t end = tst_now_ms() + 4000; c != NULL && tst_now_ms() < end; others++) {
        char event[32];
        rlfeed_reply r;
        snprintf(event, sizeof(event), "other-%d", others);
        bool got = decide_feedback_once(c, pol[2 - others % 2 * 2], event, &r);
        first_try += got && r.ok;
        if (!got || !r.ok) {
            printf("# %s on %s: %s\n", event, pol[2 - others % 2 * 2],
                   got ? r.error.message : "no reply");
        }
    }
    rlfeed_client_close(c);
    if (started) {
        pthread_join(t, NULL);
    }
    printf("# %s without a replica: %d of 6 refused; meanwhile %d of %d on %s and %s ok at "
           "the first try\n",
           pol[1], h.refused, first_try, others, pol[0], pol[2]);
    TST_TRUE(h.refused >= 1);
    TST_TRUE(others > 0);
    TST_EQ(first_try, others);
}

int main(void)
{
    tst_daemon f;
    memset(&f, 0, sizeof(f));
    bool up = tst_rcluster_start(&cl, 3, 1, 1000, false);
    TST_TRUE(up);
    /* Three policy names on three different masters. */
    int master[N_POL] = {-1, -1, -1}, found = 0;
    for (int i = 0; up && i < 200 && found < N_POL; i++) {
        char name[16], key[64];
        snprintf(name, sizeof(name), "pol%d", i);
        snprintf(key, sizeof(key), "rlfeed:{%s}:outcomes", name);
        int m = tst_rcluster_master_of(&cl, key);
        bool taken = m < 0;
        for (int k = 0; k < found; k++) {
            taken = taken || master[k] == m;
        }
        if (!taken) {
            master[found] = m;
            snprintf(pol[found++], sizeof(pol[0]), "%s", name);
        }
    }
    TST_EQ(found, N_POL);
    char config[2048];
    int at = snprintf(config, sizeof(config),
                      "[server]\nreplicas_ack = 1\nreplicas_ack_timeout_ms = 300\n"
                      "redis_timeout_ms = 1000\nsnapshot_every = 20\n");
    for (int p = 0; p < N_POL; p++) {
        at += snprintf(
            config + at, sizeof(config) - (size_t)at,
            "[policy %s]\ndim = 2\nactions = a, b\nsignal.resolved = 1\nsignal.escalated = -0.5\n"
            "window_ms = 3000\nlate_memory_ms = 60000\nlearner = ridge\n",
            pol[p]);
    }
    up = up && found == N_POL && tst_daemon_init(&f, "rlfeed-cluster", config);
    const char *extra[] = {"--redis", cl.url, NULL};
    up = up && tst_daemon_start(&f, false, extra);
    TST_TRUE(up);
    if (up) {
        int ok = 0;
        int64_t ms = 0, worst = 0;
        for (int i = 0; i < PHASE; i++) {
            ok += interact(&f, i % N_POL, &ms);
        }
        TST_EQ(ok, PHASE);
        long long ver0[N_POL];
        char sum0[N_POL][32];
        TST_TRUE(settle(&f, ver0, sum0));

        /* kill -9 the master of the first policy; traffic goes on through the failover. */
        tst_rcluster_kill(&cl, master[0]);
        killed = master[0];
        int64_t kill_ms = tst_now_ms(), first_ok = -1;
        ok = 0;
        for (int i = 0; i < PHASE; i++) {
            bool got = interact(&f, i % N_POL, &ms);
            ok += got;
            tend();
            worst = ms > worst ? ms : worst;
            if (got && i % N_POL == 0 && first_ok < 0) {
                first_ok = tst_now_ms() - kill_ms;
            }
        }
        printf("# after the kill: %d of %d acknowledged; the replica promoted within %lld ms; "
               "first feedback on %s acknowledged %lld ms after the kill; slowest feedback "
               "%lld ms\n",
               ok, PHASE, (long long)(promoted - kill_ms), pol[0], (long long)first_ok,
               (long long)worst);
        TST_EQ(ok, PHASE);
        TST_TRUE(first_ok >= 0 && first_ok < 30000);

        int64_t deadline = tst_now_ms() + 20000;
        while ((killed >= 0 || !tst_rcluster_ok(&cl)) && tst_now_ms() < deadline) {
            tend();
            tst_nap();
        }
        TST_TRUE(killed < 0 && tst_rcluster_ok(&cl));
        long long ver1[N_POL];
        char sum1[N_POL][32];
        TST_TRUE(settle(&f, ver1, sum1));
        printf("# %s learned: version %lld before the kill, %lld after\n", pol[0], ver0[0],
               ver1[0]);
        TST_TRUE(ver1[0] > ver0[0]);

        /* Every acknowledged outcome stored once, counted once. */
        int times[2 * PHASE];
        memset(times, 0, sizeof(times));
        int total = 0;
        for (int p = 0; p < N_POL && total >= 0; p++) {
            int k = tst_count_outcome_ids(cl.url, pol[p], times, 2 * PHASE);
            total = k < 0 ? -1 : total + k;
        }
        int once = 0, twice = 0;
        for (int i = 0; i < 2 * PHASE; i++) {
            if (times[i] != 1) {
                printf("# o-%d (policy %s) stored %d times\n", i, pol[i % N_POL], times[i]);
            }
            once += times[i] == 1;
            twice += times[i] > 1;
        }
        json_t *s = tst_stats(&f);
        long long counted = 0;
        for (int p = 0; p < N_POL; p++) {
            counted += tst_stat_int(s, pol[p], "feedback");
        }
        json_decref(s);
        printf("# outcomes: %d in the streams, %d acknowledged ids stored once, %d more than "
               "once; the daemon counted %lld\n",
               total, once, twice, counted);
        TST_EQ(total, 2 * PHASE);
        TST_EQ(once, 2 * PHASE);
        TST_EQ(twice, 0);
        TST_EQ(counted, 2 * PHASE);

        /* Restart on the cluster: the same models. */
        TST_EQ(tst_daemon_stop(&f), 0);
        TST_TRUE(tst_daemon_start(&f, false, extra));
        long long ver2[N_POL];
        char sum2[N_POL][32];
        TST_TRUE(settle(&f, ver2, sum2));
        int same = 0;
        for (int p = 0; p < N_POL; p++) {
            same += ver2[p] == ver1[p] && strcmp(sum2[p], sum1[p]) == 0 && sum1[p][0] != '\0';
            printf("# %s: version %lld checksum %s; after the restart %lld %s\n", pol[p], ver1[p],
                   sum1[p], ver2[p], sum2[p]);
        }
        TST_EQ(same, N_POL);
        one_master_holds_back_only_its_own(&f);
        TST_EQ(tst_daemon_stop(&f), 0);
    }
    tst_daemon_fini(&f, tst_failed > 0);
    tst_rcluster_stop(&cl);
    rlfeed_client_lib_fini();
    return tst_done();
}
