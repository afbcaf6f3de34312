/*
 * The protocol as documented, checked from outside against a real rlfeedd
 * and Redis (regressions of defects an outside client found):
 *   - the PULL socket carries feedback only; anything else is refused and
 *     counted, and changes nothing;
 *   - `log` answers with the event id;
 *   - decisions past max_pending are served and logged (marked overflow),
 *     never joined, and stay out of the join after a restart;
 *   - counters mean what protocol.md says: `feedback` counts outcomes applied
 *     to a pending decision (not late or early ones), `duplicates` counts
 *     repeated outcome ids (not repeated activations), `join.dangling` does
 *     not rise on an unknown event;
 *   - the client library's reply cap and argument checks (client.md).
 * The daemon runs on a manual clock so windows close when the test says.
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/record.h"
#include "client/rlfeed_client.h"
#include "policy/head.h"
#include "daemon.h"
#include "proc.h"
#include "proto/errors.h"
#include "storage/server.h"
#include "storage/store.h"
#include "tap.h"

#define T0 1800000000000LL
#define TIMEOUT_MS 5000

#define POLICIES                                                                                   \
    "[policy t]\n"                                                                                 \
    "dim = 2\n"                                                                                    \
    "actions = a, b\n"                                                                             \
    "signal.resolved = 1.0\n"                                                                      \
    "window_ms = 1000\n"                                                                           \
    "backward_window_ms = 60000\n"                                                                 \
    "late_memory_ms = 600000\n"                                                                    \
    "[policy o]\n"                                                                                 \
    "dim = 2\n"                                                                                    \
    "actions = a, b\n"                                                                             \
    "signal.resolved = 1.0\n"                                                                      \
    "window_ms = 600000\n"                                                                         \
    "backward_window_ms = 0\n"                                                                     \
    "max_pending = 16\n"

static const char CONFIG[] = "[server]\n"
                             "snapshot_interval_ms = 200\n"
                             "tick_ms = 5\n" POLICIES;

/*
 * A second instance on the first one's Redis: it stands by for t and o (the first owns
 * them) and owns s; one REP context, and the smallest message cap (1 KiB).
 */
#define SMALL_CAP 1024
static const char STANDBY_CONFIG[] = "[server]\n"
                                     "standby = on\n"
                                     "contexts = 1\n"
                                     "max_message_bytes = 1024\n" POLICIES "[policy s]\n"
                                     "dim = 2\n"
                                     "actions = a, b\n"
                                     "signal.resolved = 1.0\n";

static bool decide(tst_daemon *f, const char *policy, const char *ev, bool deferred)
{
    rlfeed_reply r;
    base_err e =
        tst_callf(f, &r,
                  "{\"op\":\"decide\",\"policy\":\"%s\",\"event_id\":\"%s\",\"deferred\":%s,"
                  "\"context\":{\"embedding\":[0.5,-1]},\"candidates\":["
                  "{\"id\":\"a\",\"base_logit\":0.2},{\"id\":\"b\",\"base_logit\":0.1}]}",
                  policy, ev, deferred ? "true" : "false");
    return e == BASE_OK && r.ok && strcmp(r.event_id, ev) == 0;
}

/* Feedback for @ev; the reply's status ("matched", "late"...) or error code name. */
static const char *feedback(tst_daemon *f, const char *policy, const char *ev, const char *oid)
{
    static rlfeed_reply r;
    if (tst_callf(
            f, &r,
            "{\"op\":\"feedback\",\"policy\":\"%s\",\"event_id\":\"%s\",\"signal\":\"resolved\","
            "\"outcome_id\":\"%s\"}",
            policy, ev, oid) != BASE_OK) {
        return "(no reply)";
    }
    return r.ok ? r.status : rlfeed_errcode_name(r.error.code);
}

/* Poll stats until @policy's counter @key reaches at least @want. */
static bool wait_stat(tst_daemon *f, const char *policy, const char *key, long long want)
{
    int64_t deadline = tst_now_ms() + TIMEOUT_MS;
    long long got = -1;
    while (got < want && tst_now_ms() < deadline) {
        json_t *s = tst_stats(f);
        got = tst_stat_int(s, policy, key);
        json_decref(s);
    }
    return got >= want;
}

static void pull_takes_feedback_only(tst_daemon *f)
{
    json_t *before = tst_stats(f);
    rlfeed_push *p = NULL;
    TST_OK(rlfeed_push_open(f->pull_url, 2000, &p));
    static const char *const other_ops[] = {
        "{\"v\":1,\"op\":\"decide\",\"policy\":\"t\",\"event_id\":\"via-pull\","
        "\"context\":{\"embedding\":[0.5,-1]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0}]}",
        "{\"v\":1,\"op\":\"log\",\"policy\":\"t\",\"event_id\":\"via-pull-log\","
        "\"context\":{\"embedding\":[0.5,-1]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0}],"
        "\"chosen\":\"a\",\"pmf\":[1]}",
        "{\"v\":1,\"op\":\"stats\"}",
        "{\"v\":1,\"op\":\"activate\",\"policy\":\"t\",\"event_id\":\"x\"}",
    };
    for (size_t i = 0; i < sizeof(other_ops) / sizeof(other_ops[0]); i++) {
        TST_OK(tst_push_json(p, other_ops[i]));
    }
    /* A feedback behind them on the same pipe marks when they have all been handled. */
    TST_OK(rlfeed_push_feedback(p, "o", "no-such-event-pull", "resolved", 1.0, NULL));
    long long want_ue = tst_rejected(before, "unknown_event") + 1;
    bool seen = false;
    int64_t deadline = tst_now_ms() + TIMEOUT_MS;
    json_t *s = NULL;
    while (!seen && tst_now_ms() < deadline) {
        json_decref(s);
        s = tst_stats(f);
        seen = tst_rejected(s, "unknown_event") == want_ue;
    }
    TST_TRUE(seen);
    TST_EQ(tst_rejected(s, "op_not_allowed"), tst_rejected(before, "op_not_allowed") + 4);
    TST_EQ(tst_stat_int(s, "t", "decisions"), tst_stat_int(before, "t", "decisions"));
    TST_EQ(tst_stat_int(s, "t", "logged"), tst_stat_int(before, "t", "logged"));
    TST_EQ(tst_stat_int(s, "t", "next_lsn"), tst_stat_int(before, "t", "next_lsn"));
    json_decref(s);
    rlfeed_push_close(p);
    json_decref(before);
}

/* The error reply of protocol.md section 8, as documented. */
static void bad_dimension_reads_as_documented(tst_daemon *f)
{
    rlfeed_reply r;
    TST_OK(tst_callf(f, &r,
                     "{\"op\":\"decide\",\"policy\":\"t\",\"context\":{\"embedding\":[1,2,3,4]},"
                     "\"candidates\":[{\"id\":\"a\",\"base_logit\":0}]}"));
    TST_TRUE(!r.ok && r.error.code == PROTO_E_BAD_DIMENSION);
    TST_STREQ(r.error.message, "context.embedding has 4 entries, policy 't' wants 2");
}

/* The id @k ahead of the generated @id in its count: "<prefix>-<n+@k>" for "<prefix>-<n>..." */
static bool id_ahead(const char *id, int k, char *out, size_t size)
{
    const char *dash = strchr(id, '-');
    if (dash == NULL) {
        return false;
    }
    snprintf(out, size, "%.*s-%lld", (int)(dash - id), id, strtoll(dash + 1, NULL, 10) + k);
    return true;
}

/*
 * An id the daemon generates is never refused as a duplicate: a client may have sent the
 * next ones as its own event_ids (eight of them, more than the daemon tries in its count);
 * the request that named none takes another, and its candidate is the draw of the id it
 * is logged under (algorithms.md, section 7; the policy's seed is 0).
 */
static void generated_ids_never_collide(tst_daemon *f)
{
    static const char body[] = "\"policy\":\"t\",\"context\":{\"embedding\":[0.5,-1]},"
                               "\"candidates\":[{\"id\":\"a\",\"base_logit\":0.2},"
                               "{\"id\":\"b\",\"base_logit\":0.1}]";
    rlfeed_reply r;
    long long high = 0; /* the highest count claimed: still pending, so never claimed again */
    for (int claimed = 1; claimed <= 8; claimed++) {
        char first[80] = "", next[80];
        while (first[0] == '\0' || strtoll(strchr(first, '-') + 1, NULL, 10) <= high) {
            TST_OK(tst_callf(f, &r, "{\"op\":\"decide\",%s}", body));
            TST_TRUE(r.ok && strchr(r.event_id, '-') != NULL);
            if (!r.ok || strchr(r.event_id, '-') == NULL) {
                return;
            }
            snprintf(first, sizeof(first), "%s", r.event_id);
        }
        high = strtoll(strchr(first, '-') + 1, NULL, 10) + claimed;
        for (int k = 1; k <= claimed; k++) {
            TST_TRUE(id_ahead(first, k, next, sizeof(next)));
            TST_OK(tst_callf(f, &r, "{\"op\":\"decide\",\"event_id\":\"%s\",%s}", next, body));
            TST_TRUE(r.ok);
        }
        TST_OK(tst_callf(f, &r, "{\"op\":\"decide\",%s}", body));
        TST_TRUE(r.ok);
        TST_TRUE(strncmp(r.event_id, first, (size_t)(strchr(first, '-') - first)) == 0);
        TST_TRUE(strcmp(r.event_id, first) != 0);
        for (int k = 1; k <= claimed; k++) {
            TST_TRUE(id_ahead(first, k, next, sizeof(next)) && strcmp(r.event_id, next) != 0);
        }
        TST_EQ(r.chosen_index, pol_sample(r.pmf, r.n_pmf, r.event_id, 0));
    }
}

/* An empty op, or one holding a NUL byte, is a bad request (protocol.md, section 1). */
static void odd_ops_are_bad_requests(tst_daemon *f)
{
    static const uint8_t nul_op[] = {0x82, 0xa1, 'v', 0x01, 0xa2, 'o', 'p', 0xa7,
                                     'h',  'e',  'a', 'l',  't',  'h', 0};
    rlfeed_reply r;
    TST_OK(tst_call_raw(f, nul_op, sizeof(nul_op), &r));
    TST_TRUE(!r.ok && r.error.code == PROTO_E_BAD_REQUEST);
    TST_STREQ(r.error.message, "field 'op' contains a NUL byte");
    TST_OK(tst_callf(f, &r, "{\"op\":\"\"}"));
    TST_TRUE(!r.ok && r.error.code == PROTO_E_BAD_REQUEST);
    TST_STREQ(r.error.message, "field 'op' must not be empty");
}

/* The CLI takes an empty or blank body argument as `{}` (client.md), as it takes empty input. */
static void cli_blank_body_is_empty_object(tst_daemon *f)
{
    if (tst_env_path("RLFEED") == NULL) {
        return; /* run by meson with RLFEED set; by hand without it, nothing to check */
    }
    char log[700];
    snprintf(log, sizeof(log), "%s/cli.log", f->dir);
    const char *empty[] = {"health", "--url", f->url, "", NULL};
    const char *blank[] = {"health", "--url", f->url, " \n", NULL};
    TST_EQ(tst_run("RLFEED", empty, log, 30000), 0);
    TST_TRUE(tst_file_has(log, "\"ok\":true"));
    TST_EQ(tst_run("RLFEED", blank, log, 30000), 0);
    TST_TRUE(tst_file_has(log, "\"ok\":true"));
    /* An exported $RLFEED_TLS_CA is for tls+tcp:// URLs only: ipc:// is used as without it. */
    setenv("RLFEED_TLS_CA", "/nonexistent/ca.pem", 1);
    TST_EQ(tst_run("RLFEED", empty, log, 30000), 0);
    unsetenv("RLFEED_TLS_CA");
}

/* `rlfeed <command> --help` (client.md) prints what the command takes and exits 0. */
static void cli_commands_have_help(tst_daemon *f)
{
    if (tst_env_path("RLFEED") == NULL) {
        return;
    }
    static const char *const cmds[][2] = {
        {"key", "rlfeed key new NAME"},
        {"erase", "rlfeed erase --policy P"},
        {"policy", "rlfeed policy put"},
        {"promote", "promote"},
        {"decide", "decide"},
        {"sim", "sim"},
    };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        char log[700];
        snprintf(log, sizeof(log), "%s/help-%s.log", f->dir, cmds[i][0]);
        const char *args[] = {cmds[i][0], "--help", NULL};
        int st = tst_run("RLFEED", args, log, 30000);
        TST_EQ(st, 0);
        TST_TRUE(tst_file_has(log, cmds[i][1]));
        if (st != 0) {
            printf("#   rlfeed %s --help\n", cmds[i][0]);
        }
    }
    /* A bad value names its option, whether given as "--lambda 0" or "--lambda=0". */
    static const char *const bad[][3] = {{"--lambda", "0", "for --lambda"},
                                         {"--portfolio", "bogus", "for --portfolio"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char log[700];
        snprintf(log, sizeof(log), "%s/bench-bad-%zu.log", f->dir, i);
        const char *args[] = {"bench",   "learn",   "--synthetic", "4,2,100",
                              bad[i][0], bad[i][1], NULL};
        TST_EQ(tst_run("RLFEED", args, log, 30000), 2);
        TST_TRUE(tst_file_has(log, bad[i][2]));
    }
}

/* A health request of exactly @total bytes: {"v":1, "op":"health", "pad":<bin 32>}; free it. */
static uint8_t *padded_health(size_t total)
{
    static const uint8_t head[] = {0x83, 0xa1, 'v', 0x01, 0xa2, 'o', 'p', 0xa6, 'h', 'e',
                                   'a',  'l',  't', 'h',  0xa3, 'p', 'a', 'd',  0xc6};
    size_t pad = total - sizeof(head) - 4;
    uint8_t *req = calloc(1, total);
    TST_TRUE(req != NULL);
    if (req != NULL) {
        memcpy(req, head, sizeof(head));
        for (int k = 0; k < 4; k++) {
            req[sizeof(head) + (size_t)k] = (uint8_t)(pad >> (24 - 8 * k));
        }
    }
    return req;
}

/*
 * The client's cap is the daemon's (REQ's 4-byte header not counted by either): a request
 * of up to PROTO_MAX_MSG_BYTES is sent and answered, a larger one is refused with
 * BASE_ELIMIT before anything is sent, so none is sent to be dropped.
 */
static void client_size_cap_is_the_daemons(tst_daemon *f)
{
    for (size_t total = PROTO_MAX_MSG_BYTES - 4; total <= PROTO_MAX_MSG_BYTES + 1; total++) {
        uint8_t *req = padded_health(total);
        if (req == NULL) {
            return;
        }
        rlfeed_reply r;
        base_err e = tst_call_raw(f, req, total, &r);
        if (total <= PROTO_MAX_MSG_BYTES) {
            TST_OK(e);
            TST_TRUE(e == BASE_OK && r.ok);
        } else {
            TST_EQ(e, BASE_ELIMIT);
        }
        free(req);
    }
    rlfeed_reply r;
    TST_OK(tst_callf(f, &r, "{\"op\":\"health\"}")); /* the connection is still up */
    TST_TRUE(r.ok);
}

/* A REP server that answers every request with a reply of *size bytes (zeros). */
typedef struct fake_rep {
    nng_socket s;
    _Atomic size_t size;
    pthread_t thread;
} fake_rep;

static void *fake_rep_main(void *arg)
{
    fake_rep *fr = arg;
    nng_msg *m = NULL;
    while (nng_recvmsg(fr->s, &m, 0) == 0) { /* until the socket is closed */
        nng_msg_free(m);
        nng_msg *r = NULL;
        if (nng_msg_alloc(&r, atomic_load(&fr->size)) != 0) {
            continue;
        }
        memset(nng_msg_body(r), 0, nng_msg_len(r));
        if (nng_sendmsg(fr->s, r, 0) != 0) {
            nng_msg_free(r);
        }
    }
    return NULL;
}

/*
 * The client's reply cap as client.md says it: a reply of up to RLFEED_CLIENT_MAX_REPLY bytes
 * (the request id nng's REP puts in front of it not counted) is taken. A larger one (BASE_EIO:
 * nng drops the connection mid-message) is not sent here: with nng 1.5.2 the teardown that
 * follows can leave nng_close() of this process's REP socket waiting for ever (a fresh-clone
 * run hung there). And arguments the contract refuses rather than crash on.
 */
static void client_reply_cap_and_arguments(tst_daemon *f)
{
    fake_rep fr = {.size = 1};
    char url[700];
    snprintf(url, sizeof(url), "ipc://%s/fake-rep.sock", f->dir);
    bool up = nng_rep0_open(&fr.s) == 0 && nng_listen(fr.s, url, NULL, 0) == 0 &&
              pthread_create(&fr.thread, NULL, fake_rep_main, &fr) == 0;
    TST_TRUE(up);
    size_t sizes[] = {RLFEED_CLIENT_MAX_REPLY - 4, RLFEED_CLIENT_MAX_REPLY - 1,
                      RLFEED_CLIENT_MAX_REPLY};
    static const uint8_t req[] = {0x80}; /* {} */
    for (size_t i = 0; up && i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        rlfeed_client *c = NULL;
        uint8_t *rep = NULL;
        size_t len = 0;
        atomic_store(&fr.size, sizes[i]);
        TST_OK(rlfeed_client_open(url, TIMEOUT_MS, &c));
        base_err e = c != NULL ? rlfeed_client_call(c, req, sizeof(req), &rep, &len) : BASE_EIO;
        TST_OK(e);
        TST_EQ(len, sizes[i]);
        base_free(rep);
        rlfeed_client_close(c);
    }
    if (up) {
        (void)nng_close(fr.s);
        pthread_join(fr.thread, NULL);
    }

    rlfeed_reply r;
    TST_EQ(rlfeed_reply_decode(req, sizeof(req), NULL), BASE_EINVAL);
    TST_EQ(rlfeed_reply_decode(NULL, 1, &r), BASE_EINVAL);
    proto_auth_keyfile kf;
    char why[256] = "";
    TST_EQ(rlfeed_key_load(NULL, &kf, why, sizeof(why)), BASE_EINVAL);
    TST_EQ(rlfeed_key_load(f->conf, NULL, NULL, 0), BASE_EINVAL);
    TST_EQ(rlfeed_key_load(f->dir, &kf, why, sizeof(why)), BASE_EINVAL); /* a directory */
    TST_TRUE(strstr(why, "not a regular file") != NULL);
    char fifo[720];
    snprintf(fifo, sizeof(fifo), "%s/key.fifo", f->dir);
    TST_EQ(mkfifo(fifo, 0600), 0);
    why[0] = '\0';
    TST_EQ(rlfeed_key_load(fifo, &kf, why, sizeof(why)), BASE_EINVAL); /* not a hang */
    TST_TRUE(strstr(why, "not a regular file") != NULL);
    /* A TLS URL needs the TLS settings: without them nothing would be trusted. */
    rlfeed_client *c = NULL;
    TST_EQ(rlfeed_client_open("tls+tcp://127.0.0.1:1", TIMEOUT_MS, &c), BASE_EINVAL);
    TST_TRUE(c == NULL);
    /* URLs nothing can ever be dialed at are refused at open, not timed out at each call. */
    char long_ipc[200];
    snprintf(long_ipc, sizeof(long_ipc), "ipc:///tmp/%0108d.sock", 0); /* past sun_path */
    const char *never[] = {"tcp://127.0.0.1:99999",
                           "tcp://127.0.0.1:",
                           "ws://[::1]:0x10/x",
                           "ipc:///",
                           "ipc://",
                           long_ipc};
    rlfeed_push *pu = NULL;
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
        TST_EQ(rlfeed_client_open(never[i], TIMEOUT_MS, &c), BASE_EINVAL);
        TST_EQ(rlfeed_push_open(never[i], TIMEOUT_MS, &pu), BASE_EINVAL);
    }
    TST_TRUE(c == NULL && pu == NULL);
    /* The largest port and a default one (ws://) are dialable: opened, connecting later. */
    const char *fine[] = {"tcp://127.0.0.1:65535", "ws://127.0.0.1/x"};
    for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
        TST_EQ(rlfeed_client_open(fine[i], TIMEOUT_MS, &c), BASE_OK);
        rlfeed_client_close(c);
        c = NULL;
    }
}

/* The manual clock refuses to move past the largest time instead of wrapping. */
static void clock_refuses_to_wrap(tst_daemon *f)
{
    rlfeed_reply r;
    TST_OK(tst_callf(f, &r, "{\"op\":\"clock\",\"advance_ms\":9223372036854775807}"));
    TST_TRUE(!r.ok && r.error.code == PROTO_E_OUT_OF_RANGE);
    TST_OK(tst_callf(f, &r, "{\"op\":\"clock\",\"advance_ms\":1}"));
    TST_TRUE(r.ok);
    /*
     * Nor past the end of year 9999 (protocol.md, section 5b): a window opened near 2^63 - 1
     * would close as it opened.
     */
    static const char *const past[] = {"\"set_ms\":9223372036854745807",
                                       "\"set_ms\":253402300800000",
                                       "\"advance_ms\":253402300800000"};
    for (size_t i = 0; i < sizeof(past) / sizeof(past[0]); i++) {
        TST_OK(tst_callf(f, &r, "{\"op\":\"clock\",%s}", past[i]));
        TST_TRUE(!r.ok && r.error.code == PROTO_E_OUT_OF_RANGE);
    }
    TST_STREQ(r.error.message, "advance_ms 253402300800000 would move the clock past the largest "
                               "time, 253402300799999 ms (now 1800000000001 ms)");
}

static void log_answers_with_event_id(tst_daemon *f)
{
    rlfeed_reply r;
    TST_OK(tst_callf(f, &r,
                     "{\"op\":\"log\",\"policy\":\"t\",\"event_id\":\"lg-1\","
                     "\"context\":{\"embedding\":[0.5,-1]},\"candidates\":["
                     "{\"id\":\"a\",\"base_logit\":0.2},{\"id\":\"b\",\"base_logit\":0.1}],"
                     "\"chosen\":\"b\",\"pmf\":[0.5,0.5]}"));
    TST_TRUE(r.ok);
    TST_STREQ(r.event_id, "lg-1");
}

/* Activate @ev; the reply's status ("matched", "duplicate"...) or error code name. */
static const char *activate(tst_daemon *f, const char *policy, const char *ev)
{
    static rlfeed_reply r;
    if (tst_callf(f, &r, "{\"op\":\"activate\",\"policy\":\"%s\",\"event_id\":\"%s\"}", policy,
                  ev) != BASE_OK) {
        return "(no reply)";
    }
    return r.ok ? r.status : rlfeed_errcode_name(r.error.code);
}

/* A logged decision may be deferred as a decided one may (protocol.md sections 3 and 4). */
static void log_takes_deferred(tst_daemon *f)
{
    static const char fmt[] =
        "{\"op\":\"log\",\"policy\":\"t\",\"event_id\":\"%s\",%s"
        "\"context\":{\"embedding\":[0.5,-1]},\"candidates\":["
        "{\"id\":\"a\",\"base_logit\":0.2},{\"id\":\"b\",\"base_logit\":0.1}],"
        "\"chosen\":\"b\",\"pmf\":[0.5,0.5]}";
    json_t *before = tst_stats(f);
    long long deferred0 = tst_stat_join(before, "t", "deferred");
    json_decref(before);
    rlfeed_reply r;
    TST_OK(tst_callf(f, &r, fmt, "lg-d", "\"deferred\":true,"));
    TST_TRUE(r.ok);
    json_t *s = tst_stats(f);
    TST_EQ(tst_stat_join(s, "t", "deferred"), deferred0 + 1);
    json_decref(s);
    TST_STREQ(activate(f, "t", "lg-d"), "matched");
    /* Not deferred: active from the start, so an activation is a repeat. */
    TST_OK(tst_callf(f, &r, fmt, "lg-n", ""));
    TST_TRUE(r.ok);
    TST_STREQ(activate(f, "t", "lg-n"), "duplicate");
}

/* Decisions of policy @policy in Redis, and how many carry the overflow mark. */
static void count_decisions(tst_daemon *f, const char *policy, size_t *out_n, size_t *out_ovf)
{
    sto_store *st = NULL;
    char err[128];
    *out_n = *out_ovf = 0;
    if (sto_store_open(sto_server_url(f->redis), 2000, &st, err, sizeof(err)) != BASE_OK) {
        return;
    }
    sto_entry *en = NULL;
    size_t n = 0;
    if (sto_store_read(st, STO_DECISIONS, policy, "", 1000, &en, &n) == BASE_OK) {
        *out_n = n;
        for (size_t i = 0; i < n; i++) {
            *out_ovf += ((const base_decision *)en[i].rec)->overflow != 0;
        }
        sto_entries_free(STO_DECISIONS, en, n);
    }
    sto_store_close(st);
}

static void overflow_is_logged_not_joined(tst_daemon *f)
{
    for (int i = 1; i <= 16; i++) {
        char ev[16];
        snprintf(ev, sizeof(ev), "o-%d", i);
        TST_TRUE(decide(f, "o", ev, false));
    }
    TST_TRUE(decide(f, "o", "o-17", false)); /* past max_pending = 16: still served */
    json_t *s = tst_stats(f);
    TST_EQ(tst_stat_int(s, "o", "decisions"), 17);
    TST_EQ(tst_stat_int(s, "o", "pending"), 16);
    TST_EQ(tst_stat_int(s, "o", "overflow"), 1);
    TST_EQ(tst_stat_int(s, "o", "unlogged"), 0);
    json_decref(s);
    /* Logged: all are in the decision stream, the last one marked. */
    size_t n = 0, ovf = 0;
    int64_t deadline = tst_now_ms() + TIMEOUT_MS;
    while (n < 17 && tst_now_ms() < deadline) {
        count_decisions(f, "o", &n, &ovf);
    }
    TST_EQ(n, 17);
    TST_EQ(ovf, 1);
    /* Never joined: its feedback finds no pending decision. */
    TST_STREQ(feedback(f, "o", "o-17", "fo-17"), "unknown_event");
    TST_STREQ(feedback(f, "o", "o-1", "fo-1"), "matched");
}

static void overflow_stays_out_after_restart(tst_daemon *f, const char *const *extra)
{
    TST_EQ(tst_daemon_stop(f), 0);
    TST_TRUE(tst_daemon_start(f, true, extra));
    json_t *s = tst_stats(f);
    TST_EQ(tst_stat_int(s, "o", "pending"), 16);
    json_decref(s);
    TST_STREQ(feedback(f, "o", "o-17", "fo-17b"), "unknown_event");
    TST_STREQ(feedback(f, "o", "o-2", "fo-2"), "matched");
}

static void counters_mean_what_the_docs_say(tst_daemon *f)
{
    json_t *before = tst_stats(f);
    long long fb0 = tst_stat_int(before, "t", "feedback");
    long long dup0 = tst_stat_int(before, "t", "duplicates");
    long long dangling0 = tst_stat_join(before, "o", "dangling");
    long long joined0 = tst_stat_int(before, "t", "joined");
    json_decref(before);

    /* Matched: counted. */
    TST_TRUE(tst_clock_set(f, T0 + 10000));
    TST_TRUE(decide(f, "t", "m-1", false));
    TST_STREQ(feedback(f, "t", "m-1", "fm-1"), "matched");
    TST_TRUE(wait_stat(f, "t", "feedback", fb0 + 1));

    /* Early (before its decision) and late (after its window): logged, not counted. */
    TST_STREQ(feedback(f, "t", "e-1", "fe-1"), "early");
    TST_TRUE(decide(f, "t", "e-1", false));
    TST_TRUE(decide(f, "t", "l-1", false));
    TST_TRUE(tst_clock_set(f, T0 + 20000));             /* every window above closes */
    TST_TRUE(wait_stat(f, "t", "joined", joined0 + 4)); /* lg-1, m-1, e-1, l-1 */
    TST_STREQ(feedback(f, "t", "l-1", "fl-1"), "late");
    /* Retries after the window of outcomes that were stored: duplicates, not late again. */
    TST_STREQ(feedback(f, "t", "m-1", "fm-1"), "duplicate");
    TST_STREQ(feedback(f, "t", "l-1", "fl-1"), "duplicate");

    /* A repeated activation is idempotent, not a duplicate outcome. */
    TST_TRUE(decide(f, "t", "d-1", true));
    rlfeed_reply r;
    TST_OK(tst_callf(f, &r, "{\"op\":\"activate\",\"policy\":\"t\",\"event_id\":\"d-1\"}"));
    TST_TRUE(r.ok);
    TST_OK(tst_callf(f, &r, "{\"op\":\"activate\",\"policy\":\"t\",\"event_id\":\"d-1\"}"));
    TST_TRUE(r.ok);
    /* A repeated outcome id is. */
    TST_STREQ(feedback(f, "t", "d-1", "fd-1"), "matched");
    TST_STREQ(feedback(f, "t", "d-1", "fd-1"), "duplicate");

    /* An unknown event is counted as such, not as a dangling outcome. */
    TST_STREQ(feedback(f, "o", "never-decided", "fn-1"), "unknown_event");

    json_t *s = tst_stats(f);
    TST_EQ(tst_stat_int(s, "t", "feedback"), fb0 + 2); /* m-1 and d-1 */
    TST_EQ(tst_stat_int(s, "t", "duplicates"), dup0 + 3);
    TST_EQ(tst_stat_join(s, "o", "dangling"), dangling0);
    TST_EQ(tst_stat_join(s, "t", "late"), 1);
    TST_EQ(tst_stat_join(s, "t", "early"), 1);
    json_decref(s);
}

/* Run a second rlfeedd against @f's Redis with @url; its exit status (-1: still running). */
static int run_second(tst_daemon *f, const char *url, const char *log)
{
    char redis[600];
    snprintf(redis, sizeof(redis), "%s", sto_server_url(f->redis));
    char url_arg[700];
    snprintf(url_arg, sizeof(url_arg), "%s", url);
    char *argv[] = {(char *)(uintptr_t)f->bin,
                    "--config",
                    f->conf,
                    "--url",
                    url_arg,
                    "--redis",
                    redis,
                    "--http-url",
                    "http://127.0.0.1:0",
                    NULL};
    pid_t pid = tst_spawn(argv, log);
    int st = 0;
    if (pid <= 0 || !tst_wait_exit(pid, 20000, &st)) {
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * A second instance never writes into the first one's Redis: on the same
 * endpoints it fails before touching Redis; on its own endpoints the policy
 * lease refuses it. The first keeps serving, and its checkpoint stays its own.
 */
static void second_instance_is_refused(tst_daemon *f)
{
    char log_same[700], log_other[700], other_url[700];
    snprintf(log_same, sizeof(log_same), "%s/second-same.log", f->dir);
    snprintf(log_other, sizeof(log_other), "%s/second-other.log", f->dir);
    snprintf(other_url, sizeof(other_url), "ipc://%s/other.sock", f->dir);
    /* Same endpoints: refused by the listener, before Redis is touched. */
    TST_TRUE(run_second(f, f->url, log_same) > 0);
    TST_TRUE(tst_file_has(log_same, "ddress in use"));
    TST_TRUE(!tst_file_has(log_same, "owns") && !tst_file_has(log_same, "replayed"));
    /* Its own endpoints, the same Redis: refused by the lease, before reading or writing. */
    TST_TRUE(run_second(f, other_url, log_other) > 0);
    TST_TRUE(tst_file_has(log_other, "is owned by rlfeedd instance"));
    TST_TRUE(!tst_file_has(log_other, "replayed") && !tst_file_has(log_other, "updates, checksum"));
    /*
     * One with a free policy before t: it takes z's lease, is refused t's, and hands z's
     * back as it leaves (not after lease_ms).
     */
    char conf[700], log_z[700];
    snprintf(conf, sizeof(conf), "%s/second-z.ini", f->dir);
    snprintf(log_z, sizeof(log_z), "%s/second-z.log", f->dir);
    FILE *fp = fopen(conf, "w");
    TST_TRUE(fp != NULL &&
             fputs("[policy z]\ndim = 2\nactions = a, b\nsignal.resolved = 1\n" POLICIES, fp) >=
                 0 &&
             fclose(fp) == 0);
    char redis[600];
    snprintf(redis, sizeof(redis), "%s", sto_server_url(f->redis));
    const char *args[] = {"--config", conf,         "--url", other_url, "--redis",
                          redis,      "--http-url", "",      NULL};
    TST_EQ(tst_run("RLFEEDD", args, log_z, 20000), 1);
    TST_TRUE(tst_file_has(log_z, "policy t is owned by rlfeedd instance"));
    sto_store *st = NULL;
    char holder[STO_OWNER_MAX + 1] = "?";
    TST_OK(sto_store_open(redis, 5000, &st, NULL, 0));
    TST_OK(st != NULL ? sto_lease_holder(st, "z", holder, sizeof(holder)) : BASE_EIO);
    TST_STREQ(holder, "");
    sto_store_close(st);
    /* The first one never noticed. */
    TST_TRUE(decide(f, "t", "after-second", false));
}

/*
 * A second instance, standing by for t and o and owning s (STANDBY_CONFIG):
 *   - stats of a policy it stands by for is unavailable, as decide is (protocol.md, 5);
 *   - a request of exactly max_message_bytes is taken, REQ's header aside; one byte more
 *     never reaches it (section 9);
 *   - with one REP context acknowledged feedback is still taken.
 */
static void second_instance_standing_by(tst_daemon *f)
{
    tst_daemon b;
    memset(&b, 0, sizeof(b));
    char redis[600];
    snprintf(redis, sizeof(redis), "%s", sto_server_url(f->redis));
    const char *on_f[] = {"--redis", redis, NULL};
    bool up = tst_daemon_init(&b, "rlfeed-contract-b", STANDBY_CONFIG) &&
              tst_daemon_start(&b, false, on_f);
    TST_TRUE(up);
    if (!up) {
        tst_daemon_fini(&b, true);
        return;
    }
    rlfeed_reply r;
    char decide_msg[PROTO_ERRMSG_MAX];
    TST_OK(tst_callf(&b, &r,
                     "{\"op\":\"decide\",\"policy\":\"t\",\"context\":{\"embedding\":[1,0]},"
                     "\"candidates\":[{\"id\":\"a\",\"base_logit\":0}]}"));
    TST_TRUE(!r.ok && r.error.code == PROTO_E_UNAVAILABLE);
    snprintf(decide_msg, sizeof(decide_msg), "%s", r.error.message);
    TST_OK(tst_callf(&b, &r, "{\"op\":\"stats\",\"policy\":\"t\"}"));
    TST_TRUE(!r.ok && r.error.code == PROTO_E_UNAVAILABLE);
    TST_STREQ(r.error.message, decide_msg);
    TST_OK(tst_callf(&b, &r, "{\"op\":\"stats\",\"policy\":\"nope\"}"));
    TST_TRUE(!r.ok && r.error.code == PROTO_E_UNKNOWN_POLICY);
    json_t *s = tst_stats(&b);
    TST_TRUE(json_object_get(json_object_get(s, "standby"), "t") != NULL);
    TST_EQ(tst_rejected(s, "unavailable"), 2);
    json_decref(s);

    uint8_t *req = padded_health(SMALL_CAP);
    if (req != NULL) {
        TST_OK(tst_call_raw(&b, req, SMALL_CAP, &r));
        TST_TRUE(r.ok);
        free(req);
    }
    req = padded_health(SMALL_CAP + 1);
    rlfeed_client *c = NULL;
    TST_OK(rlfeed_client_open(b.url, 1000, &c));
    if (req != NULL && c != NULL) {
        uint8_t *rep = NULL;
        size_t len = 0;
        /* Dropped with its connection, unanswered: the client says so (rlfeed_client.h). */
        TST_EQ(rlfeed_client_call(c, req, SMALL_CAP + 1, &rep, &len), BASE_EIO);
        base_free(rep);
        /*
         * The same handle dials again and is answered. (Also: nng 1.5.2 can leave a handle
         * closed while it still redials unreaped at exit, which LeakSanitizer reports inside
         * libnng; one that has had a reply closes cleanly: client.md.)
         */
        base_err he = BASE_ETIMEDOUT;
        for (int k = 0; k < 10 && he != BASE_OK; k++) { /* a busy machine may redial slowly */
            rep = NULL;
            he = rlfeed_client_health(c, &rep, &len);
            base_free(rep);
        }
        TST_OK(he);
    }
    rlfeed_client_close(c);
    free(req);
    TST_OK(tst_callf(&b, &r, "{\"op\":\"health\"}"));
    TST_TRUE(r.ok);

    TST_TRUE(decide(&b, "s", "s-1", false));
    TST_STREQ(feedback(&b, "s", "s-1", "fs-1"), "matched");

    TST_EQ(tst_daemon_stop(&b), 0);
    tst_daemon_fini(&b, tst_failed > 0);
}

int main(void)
{
    tst_daemon f;
    if (!tst_daemon_init(&f, "rlfeed-contract", CONFIG)) {
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
        pull_takes_feedback_only(&f);
        log_answers_with_event_id(&f);
        log_takes_deferred(&f);
        generated_ids_never_collide(&f);
        odd_ops_are_bad_requests(&f);
        clock_refuses_to_wrap(&f);
        cli_blank_body_is_empty_object(&f);
        client_size_cap_is_the_daemons(&f);
        client_reply_cap_and_arguments(&f);
        cli_commands_have_help(&f);
        bad_dimension_reads_as_documented(&f);
        overflow_is_logged_not_joined(&f);
        overflow_stays_out_after_restart(&f, extra);
        counters_mean_what_the_docs_say(&f);
        second_instance_standing_by(&f);
        second_instance_is_refused(&f);
    }
    TST_EQ(tst_daemon_stop(&f), 0);
    tst_daemon_fini(&f, tst_failed > 0);
    rlfeed_client_lib_fini();
    return tst_done();
}
