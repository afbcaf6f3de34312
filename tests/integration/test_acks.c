/*
 * Acknowledged feedback while Redis cannot take it (regressions of defects
 * an outside client found):
 *   - feedback while Redis is hung is answered `unavailable` within
 *     ack_timeout_ms instead of hanging until the client gives up; the
 *     outcome stays queued and is stored once Redis is back, exactly once;
 *     a retry with the same outcome_id then gets `duplicate`;
 *   - while the write queue is full (decisions served without being
 *     logged), feedback for an event the join does not know is `unavailable`,
 *     not `unknown_event`; once the window of those decisions has passed it
 *     is `unknown_event` again.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/record.h"
#include "client/rlfeed_client.h"
#include "daemon.h"
#include "proc.h"
#include "proto/errors.h"
#include "proto/json.h"
#include "storage/server.h"
#include "storage/store.h"
#include "tap.h"

#define T0 1800000000000LL
#define WINDOW_MS 60000

static const char CONFIG[] = "[server]\n"
                             "tick_ms = 5\n"
                             "write_queue = 16\n"
                             "redis_timeout_ms = 300\n"
                             "ack_timeout_ms = 300\n"
                             "[policy t]\n"
                             "dim = 2\n"
                             "actions = a, b\n"
                             "signal.resolved = 1.0\n"
                             "window_ms = 60000\n";

static base_err call(rlfeed_client *c, rlfeed_reply *r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static base_err call(rlfeed_client *c, rlfeed_reply *r, const char *fmt, ...)
{
    char json[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(json, sizeof(json), fmt, ap);
    va_end(ap);
    base_buf b;
    base_buf_init(&b, 4096);
    char err[128];
    memset(r, 0, sizeof(*r));
    base_err e = proto_json_to_msgpack(json, &b, err, sizeof(err));
    uint8_t *rep = NULL;
    size_t len = 0;
    if (e == BASE_OK) {
        e = rlfeed_client_call(c, b.data, b.len, &rep, &len);
    }
    if (e == BASE_OK) {
        e = rlfeed_reply_decode(rep, len, r);
    }
    base_free(rep);
    base_buf_fini(&b);
    return e;
}

static bool decide(rlfeed_client *c, const char *ev)
{
    rlfeed_reply r;
    return call(c, &r,
                "{\"v\":1,\"op\":\"decide\",\"policy\":\"t\",\"event_id\":\"%s\","
                "\"context\":{\"embedding\":[0.5,-1]},\"candidates\":["
                "{\"id\":\"a\",\"base_logit\":0.2},{\"id\":\"b\",\"base_logit\":0.1}]}",
                ev) == BASE_OK &&
           r.ok;
}

/* Feedback; the status, the error code's name, or "(no reply)". */
static const char *feedback(rlfeed_client *c, const char *ev, const char *oid)
{
    static rlfeed_reply r;
    if (call(c, &r,
             "{\"v\":1,\"op\":\"feedback\",\"policy\":\"t\",\"event_id\":\"%s\","
             "\"signal\":\"resolved\",\"outcome_id\":\"%s\"}",
             ev, oid) != BASE_OK) {
        return "(no reply)";
    }
    return r.ok ? r.status : rlfeed_errcode_name(r.error.code);
}

static long long queue_depth(tst_daemon *f)
{
    json_t *s = tst_stats(f);
    json_t *v = json_object_get(json_object_get(s, "storage"), "queue_depth");
    long long d = json_is_integer(v) ? json_integer_value(v) : -1;
    json_decref(s);
    return d;
}

/* Outcomes of policy t stored with @oid. */
static int stored_with_id(tst_daemon *f, const char *oid)
{
    sto_store *st = NULL;
    char err[128];
    int n = 0;
    if (sto_store_open(sto_server_url(f->redis), 2000, &st, err, sizeof(err)) != BASE_OK) {
        return -1;
    }
    sto_entry *en = NULL;
    size_t cnt = 0;
    if (sto_store_read(st, STO_OUTCOMES, "t", "", 10000, &en, &cnt) == BASE_OK) {
        for (size_t i = 0; i < cnt; i++) {
            n += strcmp(((const base_outcome *)en[i].rec)->outcome_id, oid) == 0;
        }
        sto_entries_free(STO_OUTCOMES, en, cnt);
    }
    sto_store_close(st);
    return n;
}

static void feedback_while_redis_hangs(tst_daemon *f)
{
    /* A client that waits far longer than ack_timeout_ms. */
    rlfeed_client *c = NULL;
    TST_OK(rlfeed_client_open(f->url, 10000, &c));
    if (c == NULL) {
        return;
    }
    TST_TRUE(decide(c, "ev-1"));
    pid_t rpid = sto_server_pid(f->redis);
    kill(rpid, SIGSTOP);

    int64_t t0 = tst_now_ms();
    const char *st = feedback(c, "ev-1", "f-1");
    int64_t waited = tst_now_ms() - t0;
    printf("# feedback with Redis hung: %s after %lld ms\n", st, (long long)waited);
    TST_STREQ(st, "unavailable");
    TST_TRUE(waited < 8000); /* 300 ms plus a tick when idle; generous for a loaded machine */

    /* Fill the write queue: later decisions are served but not logged. */
    int served = 0;
    for (int i = 0; i < 40; i++) {
        char ev[32];
        snprintf(ev, sizeof(ev), "ev-fill-%d", i);
        served += decide(c, ev);
    }
    TST_EQ(served, 40);
    json_t *s = tst_stats(f);
    TST_TRUE(tst_stat_int(s, "t", "unlogged") > 0);
    json_decref(s);
    TST_STREQ(feedback(c, "ev-fill-39", "f-fill"), "unavailable");
    TST_STREQ(feedback(c, "ghost", "f-ghost"), "unavailable");

    kill(rpid, SIGCONT);
    int64_t deadline = tst_now_ms() + 15000;
    while (queue_depth(f) != 0 && tst_now_ms() < deadline) {
    }
    TST_EQ(queue_depth(f), 0);
    /* Stored once Redis came back; a retry now learns its final status. */
    TST_STREQ(feedback(c, "ev-1", "f-1"), "duplicate");
    TST_EQ(stored_with_id(f, "f-1"), 1);

    /* Still inside the window of the unlogged decisions: unavailable... */
    TST_STREQ(feedback(c, "ghost", "f-ghost-2"), "unavailable");
    /* ... and past it, an unknown event is unknown again. */
    rlfeed_reply r;
    TST_OK(call(c, &r, "{\"v\":1,\"op\":\"clock\",\"set_ms\":%lld}", T0 + 2 * WINDOW_MS));
    TST_TRUE(r.ok);
    /*
     * The jump closes every window at once: their joined records can fill this 16-record
     * write queue for a moment, and feedback then is `unavailable` for that reason (the
     * queue is full). Ask once they are stored.
     */
    deadline = tst_now_ms() + 15000;
    for (;;) {
        json_t *now = tst_stats(f);
        bool settled = tst_stat_int(now, "t", "pending") == 0;
        json_decref(now);
        if ((settled && queue_depth(f) == 0) || tst_now_ms() > deadline) {
            break;
        }
        tst_nap();
    }
    TST_STREQ(feedback(c, "ghost", "f-ghost-3"), "unknown_event");
    rlfeed_client_close(c);
}

int main(void)
{
    tst_daemon f;
    if (!tst_daemon_init(&f, "rlfeed-acks", CONFIG)) {
        TST_TRUE(0 && "fixture");
        tst_daemon_fini(&f, false);
        return tst_done();
    }
    char start[32];
    snprintf(start, sizeof(start), "%lld", T0);
    const char *extra[] = {"--manual-clock", start, NULL};
    bool up = tst_daemon_start(&f, true, extra);
    TST_TRUE(up);
    if (up) {
        feedback_while_redis_hangs(&f);
    }
    TST_EQ(tst_daemon_stop(&f), 0);
    tst_daemon_fini(&f, tst_failed > 0);
    rlfeed_client_lib_fini();
    return tst_done();
}
