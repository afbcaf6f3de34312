/*
 * A stream entry rlfeedd did not write (docs/operations.md, "Recovery after a crash"). An
 * entry of policy p's decision stream that does not decode stops the start, and the log
 * names the stream and the entry's id; once it is deleted (XDEL, as the docs say), the daemon
 * starts and recovers what it had. The same in the joined stream: rlfeed promote names it.
 * An event index entry naming such an entry: explain answers internal, not unavailable.
 */
#define _GNU_SOURCE /* memmem() */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "proc.h"
#include "storage/server.h"
#include "tap.h"

static const char CONF[] = "[server]\nsnapshot_interval_ms = 100\n"
                           "[policy p]\ndim = 2\nactions = a, b\nsignal.resolved = 1\n"
                           "window_ms = 100\n";

/* Run one Redis command on the fixture's unix socket; its string reply into @out ("" if none). */
static bool redis_cmd(tst_daemon *f, const char *cmd, const char *arg, char *out, size_t size)
{
    redisContext *c = redisConnectUnix(sto_server_url(f->redis) + strlen("unix:"));
    redisReply *r = c != NULL && !c->err ? redisCommand(c, cmd, arg) : NULL;
    bool ok = r != NULL && r->type != REDIS_REPLY_ERROR;
    if (out != NULL) {
        snprintf(out, size, "%s", ok && r->type == REDIS_REPLY_STRING ? r->str : "");
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
    if (c != NULL) {
        redisFree(c);
    }
    return ok;
}

/*
 * Append to p's decision stream a copy of its newest decision that names policy "q": a
 * record of another policy written to the wrong key. Its id into @id.
 */
static bool foreign_copy(tst_daemon *f, char *id, size_t size)
{
    redisContext *c = redisConnectUnix(sto_server_url(f->redis) + strlen("unix:"));
    redisReply *r =
        c != NULL && !c->err ? redisCommand(c, "XREVRANGE rlfeed:{p}:decisions + - COUNT 1") : NULL;
    bool ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
              r->element[0]->elements == 2 && r->element[0]->element[1]->elements == 2;
    redisReply *w = NULL;
    if (ok) {
        const redisReply *v = r->element[0]->element[1]->element[1];
        char buf[4096];
        ok = v->len <= sizeof(buf);
        const char *at = ok ? memmem(v->str, v->len, "\xa1p\xa1p", 4) : NULL;
        ok = at != NULL;
        if (ok) {
            memcpy(buf, v->str, v->len);
            buf[at - v->str + 3] = 'q'; /* "p": "q" */
            w = redisCommand(c, "XADD rlfeed:{p}:decisions * r %b", buf, v->len);
            ok = w != NULL && w->type == REDIS_REPLY_STRING;
            snprintf(id, size, "%s", ok ? w->str : "");
        }
    }
    freeReplyObject(w);
    freeReplyObject(r);
    redisFree(c);
    return ok;
}

int main(void)
{
    tst_daemon f;
    if (!tst_daemon_init(&f, "rlfeed-badentry", CONF) || !tst_daemon_start(&f, true, NULL)) {
        TST_TRUE(0 && "fixture");
        tst_daemon_fini(&f, true);
        return tst_done();
    }
    int ok = 0;
    for (int i = 0; i < 20; i++) {
        rlfeed_reply r;
        ok += tst_callf(&f, &r,
                        "{\"op\":\"decide\",\"policy\":\"p\",\"event_id\":\"ev-%d\","
                        "\"context\":{\"embedding\":[1,%d]},\"candidates\":["
                        "{\"id\":\"a\",\"base_logit\":0},{\"id\":\"b\",\"base_logit\":0}]}",
                        i, i % 2) == BASE_OK &&
              r.ok;
    }
    TST_EQ(ok, 20);
    TST_EQ(tst_daemon_stop(&f), 0);

    /* Something else writes an entry to the decision stream: the start stops, naming it. */
    char id[64], needle[160];
    TST_TRUE(redis_cmd(&f, "XADD rlfeed:{p}:decisions * r %s", "not-a-record", id, sizeof(id)));
    printf("# foreign entry %s\n", id);
    TST_TRUE(!tst_daemon_start(&f, true, NULL));
    snprintf(needle, sizeof(needle), "rlfeed:{p}:decisions entry %s does not decode", id);
    TST_TRUE(tst_file_has(f.log, needle));

    /* Deleted: the start goes on where the stream left off. */
    TST_TRUE(redis_cmd(&f, "XDEL rlfeed:{p}:decisions %s", id, NULL, 0));
    TST_TRUE(tst_daemon_start(&f, true, NULL));
    json_t *s = tst_stats(&f);
    TST_EQ(tst_stat_int(s, "p", "next_lsn"), 20);
    json_decref(s);
    TST_EQ(tst_daemon_stop(&f), 0);

    /* A record that decodes but names another policy stops the start too. */
    TST_TRUE(foreign_copy(&f, id, sizeof(id)));
    TST_TRUE(!tst_daemon_start(&f, true, NULL));
    snprintf(needle, sizeof(needle), "rlfeed:{p}:decisions entry %s is a record of policy \"q\"",
             id);
    TST_TRUE(tst_file_has(f.log, needle));
    TST_TRUE(redis_cmd(&f, "XDEL rlfeed:{p}:decisions %s", id, NULL, 0));

    /* In the joined stream, rlfeed promote names it. */
    TST_TRUE(redis_cmd(&f, "XADD rlfeed:{p}:joined * r %s", "not-a-record", id, sizeof(id)));
    const char *promote[] = {"promote", "--policy=p", NULL};
    TST_EQ(tst_daemon_cli(&f, "test", promote), 2);
    char log[700];
    snprintf(log, sizeof(log), "%s/cli.log", f.dir);
    snprintf(needle, sizeof(needle), "rlfeed:{p}:joined entry %s does not decode", id);
    TST_TRUE(tst_file_has(log, needle));

    /*
     * An event index entry naming a foreign entry (written while the daemon runs, so no
     * replay meets it): explain answers internal, not an unavailable a retry cannot mend.
     */
    TST_TRUE(redis_cmd(&f, "XDEL rlfeed:{p}:joined %s", id, NULL, 0));
    TST_TRUE(tst_daemon_start(&f, true, NULL));
    TST_TRUE(redis_cmd(&f, "XADD rlfeed:{p}:decisions * r %s", "not-a-record", id, sizeof(id)));
    char hset[200];
    snprintf(hset, sizeof(hset), "HSET rlfeed:{p}:evidx:%lld ev-bad %%s",
             (long long)(time(NULL) / 3600)); /* the wall clock: the daemon's */
    TST_TRUE(redis_cmd(&f, hset, id, NULL, 0));
    rlfeed_reply r;
    TST_OK(tst_callf(&f, &r, "{\"op\":\"explain\",\"policy\":\"p\",\"event_id\":\"ev-bad\"}"));
    printf("# explain ev-bad: %s %s\n", r.ok ? "ok" : rlfeed_errcode_name(r.error.code),
           r.ok ? "" : r.error.message);
    TST_TRUE(!r.ok && r.error.code == PROTO_E_INTERNAL);
    TST_TRUE(strstr(r.error.message, "\"ev-bad\" (or their event index entry) do not decode") !=
             NULL);
    TST_EQ(tst_daemon_stop(&f), 0);

    tst_daemon_fini(&f, tst_failed > 0);
    return tst_done();
}
