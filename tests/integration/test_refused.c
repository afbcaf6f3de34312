/*
 * Redis that answers but refuses writes for now (here: maxmemory below what it uses, with
 * the default noeviction policy, so every write is answered "-OOM ..."): rlfeedd treats it
 * like Redis away. The records stay queued, in order; acknowledged feedback is answered
 * "unavailable" after ack_timeout_ms and stays queued; health says "degraded"; nothing is
 * counted as a store error. Once Redis takes writes again, everything is stored: the
 * outcome exactly once, and its retry is answered "duplicate".
 *
 * Before, such a refusal dropped the record (a store error) while the join had applied the
 * outcome, and the retry was answered "duplicate" for an outcome Redis never had.
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "proc.h"
#include "tap.h"

#define POLICY "o"

static const char CONFIG[] = "[server]\n"
                             "ack_timeout_ms = 300\n"
                             "[policy o]\n"
                             "dim = 4\n"
                             "actions = a0, a1, a2, a3\n"
                             "portfolio = off\n"
                             "signal.resolved = 1.0\n"
                             "window_ms = 3600000\n";

static const float X[4] = {0.25f, -0.5f, 0.75f, 0.1f};
static const char *const IDS[4] = {"a0", "a1", "a2", "a3"};
static const float LOGITS[4] = {0.1f, 0.2f, 0.3f, 0.4f};

static bool redis_config(const char *sock, const char *key, const char *value)
{
    redisContext *c = redisConnectUnix(sock);
    bool ok = c != NULL && !c->err;
    redisReply *r = ok ? redisCommand(c, "CONFIG SET %s %s", key, value) : NULL;
    ok = r != NULL && r->type == REDIS_REPLY_STATUS;
    if (r != NULL) {
        freeReplyObject(r);
    }
    if (c != NULL) {
        redisFree(c);
    }
    return ok;
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
    if (!tst_daemon_init(&f, "rlfeed-refused", CONFIG) || !tst_daemon_start(&f, true, NULL)) {
        TST_TRUE(0 && "fixture");
        tst_daemon_fini(&f, true);
        return tst_done();
    }
    const char *sock = sto_server_url(f.redis) + strlen("unix:");
    char ev[2][BASE_ID_MAX + 1];
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
    TST_TRUE(tst_file_has(f.log, "refuses writes for now (OOM"));

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

    TST_EQ(tst_daemon_stop(&f), 0);
    tst_daemon_fini(&f, tst_failed > 0);
    return tst_done();
}
