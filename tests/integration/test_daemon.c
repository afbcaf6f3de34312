/*
 * The daemon end to end: a real redis-server (started here on a unix
 * socket), a real rlfeedd process, real nng sockets, the C client library.
 * Covers decide -> feedback -> learning direction, idempotency, every
 * bad-input case of the protocol (specific code, counted, no state change;
 * the table in helpers/bad_inputs.c, which test_http_api runs over HTTP),
 * the PULL socket, snapshot reload on restart, and the embedded Redis mode.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "bad_inputs.h"
#include "base/buf.h"
#include "client/rlfeed_client.h"
#include "daemon.h"
#include "proc.h"
#include "proto/errors.h"
#include "proto/mp.h"
#include "storage/server.h"
#include "storage/store.h"
#include "tap.h"

#define DIM 4
#define TIMEOUT_MS 5000

static const char CONFIG[] = "[server]\n"
                             "snapshot_interval_ms = 200\n"
                             "tick_ms = 5\n" TST_BAD_INPUTS_POLICY
                             /* Learned from by one test only, so it starts at the base model. */
                             "[policy learn]\n"
                             "dim = 4\n"
                             "actions = a, b, c\n"
                             "epsilon = 0.1\n"
                             "seed = 3\n"
                             "signal.resolved = 1.0\n"
                             "signal.thumbs_down = -1.0\n"
                             "window_ms = 150\n"
                             /* Outcomes and their corrections over PUSH, windows kept open. */
                             "[policy ord]\n"
                             "dim = 4\n"
                             "actions = a, b, c\n"
                             "signal.resolved = 1.0\n"
                             "window_ms = 600000\n";

static const char *const IDS[3] = {"a", "b", "c"};
static const float LOGITS[3] = {0.0f, 0.0f, 0.0f};
static const float X[DIM] = {1.0f, 0.5f, -0.5f, 0.25f};

static void decide_and_feedback_round_trip(tst_daemon *f)
{
    rlfeed_reply r;
    TST_OK(rlfeed_client_decide(f->c, "t", "ev-1", X, DIM, 3, IDS, LOGITS, &r));
    TST_TRUE(r.ok);
    TST_STREQ(r.event_id, "ev-1");
    TST_EQ(r.n_pmf, 3);
    TST_NEAR(r.pmf[0] + r.pmf[1] + r.pmf[2], 1.0, 1e-5);
    TST_TRUE(r.chosen_index < 3 && strcmp(r.chosen, IDS[r.chosen_index]) == 0);
    /* Zero head, equal logits, eps floor: exactly uniform. */
    TST_NEAR(r.pmf[1], 1.0 / 3.0, 1e-5);

    /* The same event id again is refused while pending. */
    rlfeed_reply d;
    TST_OK(rlfeed_client_decide(f->c, "t", "ev-1", X, DIM, 3, IDS, LOGITS, &d));
    TST_TRUE(!d.ok && d.error.code == PROTO_E_DUPLICATE_EVENT);

    /* A server-assigned event id is unique. */
    rlfeed_reply g1, g2;
    TST_OK(rlfeed_client_decide(f->c, "t", NULL, X, DIM, 3, IDS, LOGITS, &g1));
    TST_OK(rlfeed_client_decide(f->c, "t", NULL, X, DIM, 3, IDS, LOGITS, &g2));
    TST_TRUE(g1.ok && g2.ok && g1.event_id[0] != '\0' && strcmp(g1.event_id, g2.event_id) != 0);

    rlfeed_reply fb;
    TST_OK(rlfeed_client_feedback(f->c, "t", "ev-1", "resolved", 1.0, "o-1", &fb));
    TST_TRUE(fb.ok && !fb.duplicate);
    TST_OK(rlfeed_client_feedback(f->c, "t", "ev-1", "resolved", 1.0, "o-1", &fb));
    TST_TRUE(fb.ok && fb.duplicate);
}

/*
 * Speak nng's ipc framing by hand: the SP handshake (REQ, protocol 0x30),
 * then a message header (type 1, 8-byte big-endian length) claiming 4 GiB.
 * True if the daemon closes the connection within the deadline.
 */
static bool oversize_header_drops_connection(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    bool dropped = false;
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        goto out;
    }
    static const uint8_t hello[8] = {0x00, 'S', 'P', 0x00, 0x00, 0x30, 0x00, 0x00};
    static const uint8_t huge[9] = {0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00};
    uint8_t peer[8];
    struct timeval tv = {TIMEOUT_MS / 1000, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (write(fd, hello, sizeof(hello)) != (ssize_t)sizeof(hello) ||
        read(fd, peer, sizeof(peer)) != (ssize_t)sizeof(peer) ||
        write(fd, huge, sizeof(huge)) != (ssize_t)sizeof(huge)) {
        goto out;
    }
    /* EOF (or a reset) means dropped; a timeout means the daemon waited for 4 GiB. */
    uint8_t b;
    ssize_t n = read(fd, &b, 1);
    dropped = n == 0 || (n < 0 && errno == ECONNRESET);
out:
    if (fd >= 0) {
        close(fd);
    }
    return dropped;
}

/* Every bad input gets its specific code, is counted, and changes no state. */
static void bad_input_is_rejected_specifically(tst_daemon *f)
{
    json_t *before = tst_stats(f);
    TST_TRUE(before != NULL);
    rlfeed_reply r;
    for (size_t i = 0; i < tst_n_bad_inputs; i++) {
        memset(&r, 0, sizeof(r));
        TST_OK(tst_call_json(f, tst_bad_inputs[i].json, &r));
        TST_TRUE(!r.ok);
        TST_EQ(r.error.code, tst_bad_inputs[i].code);
    }

    /* NaN inside a float32 bin embedding. */
    {
        base_buf b;
        base_buf_init(&b, 4096);
        proto_writer w;
        proto_writer_init(&w, &b);
        float x[DIM] = {1.0f, NAN, 0.0f, 0.0f};
        proto_w_map(&w, 5);
        proto_w_str(&w, "v");
        proto_w_int(&w, 1);
        proto_w_str(&w, "op");
        proto_w_str(&w, "decide");
        proto_w_str(&w, "policy");
        proto_w_str(&w, "t");
        proto_w_str(&w, "context");
        proto_w_map(&w, 1);
        proto_w_str(&w, "embedding");
        proto_w_f32_bin(&w, x, DIM);
        proto_w_str(&w, "candidates");
        proto_w_array(&w, 1);
        proto_w_map(&w, 2);
        proto_w_str(&w, "id");
        proto_w_str(&w, "a");
        proto_w_str(&w, "base_logit");
        proto_w_double(&w, 0.0);
        TST_OK(proto_writer_finish(&w));
        memset(&r, 0, sizeof(r));
        TST_OK(tst_call_raw(f, b.data, b.len, &r));
        TST_TRUE(!r.ok && r.error.code == PROTO_E_NOT_FINITE);
        base_buf_fini(&b);
    }
    /* Malformed msgpack, and a 5-byte header claiming 4 G elements. */
    static const uint8_t garbage[] = {0xc1, 0x00, 0xff};
    static const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    memset(&r, 0, sizeof(r));
    TST_OK(tst_call_raw(f, garbage, sizeof(garbage), &r));
    TST_TRUE(!r.ok && r.error.code == PROTO_E_BAD_MSGPACK);
    memset(&r, 0, sizeof(r));
    TST_OK(tst_call_raw(f, huge, sizeof(huge), &r));
    TST_TRUE(!r.ok && r.error.code == PROTO_E_BAD_MSGPACK);

    /*
     * Oversize: a raw SP peer on the ipc socket claims a 4 GiB message. With
     * NNG_OPT_RECVMAXSZ set, the daemon drops the connection at the header
     * instead of allocating (nng 1.5.2 has no default limit).
     */
    TST_TRUE(oversize_header_drops_connection(f->url + strlen("ipc://")));
    json_t *after = tst_stats(f);
    TST_TRUE(after != NULL);
    /* No state changed... */
    TST_EQ(tst_stat_int(after, "t", "decisions"), tst_stat_int(before, "t", "decisions"));
    TST_EQ(tst_stat_int(after, "t", "feedback"), tst_stat_int(before, "t", "feedback"));
    TST_EQ(tst_stat_int(after, "t", "pending") <= tst_stat_int(before, "t", "pending"), 1);
    /* ...and every rejection was counted under its code: the table's, plus the raw ones. */
    for (int c = PROTO_E_NONE + 1; c < PROTO_E_COUNT; c++) {
        const char *name = proto_errcode_name((proto_errcode)c);
        long long want = tst_bad_inputs_count((proto_errcode)c, 0);
        want += c == PROTO_E_NOT_FINITE ? 1 : c == PROTO_E_BAD_MSGPACK ? 2 : 0;
        if (tst_rejected(after, name) - tst_rejected(before, name) != want) {
            printf("# %s: %lld more, want %lld\n", name,
                   tst_rejected(after, name) - tst_rejected(before, name), want);
        }
        TST_EQ(tst_rejected(after, name) - tst_rejected(before, name), want);
    }
    json_decref(before);
    json_decref(after);

    /* The service is still serving. */
    rlfeed_reply ok;
    TST_OK(rlfeed_client_decide(f->c, "t", NULL, X, DIM, 3, IDS, LOGITS, &ok));
    TST_TRUE(ok.ok);
}

static void pull_feedback_errors_are_counted(tst_daemon *f)
{
    json_t *before = tst_stats(f);
    rlfeed_push *p = NULL;
    TST_OK(rlfeed_push_open(f->pull_url, 2000, &p));
    TST_OK(rlfeed_push_feedback(p, "t", "no-such-event", "resolved", 1.0, NULL));
    static const uint8_t garbage[] = {0x93, 0x01};
    TST_OK(rlfeed_push_send(p, garbage, sizeof(garbage)));
    long long want_ue = tst_rejected(before, "unknown_event") + 1;
    long long want_bm = tst_rejected(before, "bad_msgpack") + 1;
    bool seen = false;
    int64_t deadline = tst_now_ms() + TIMEOUT_MS;
    while (!seen && tst_now_ms() < deadline) {
        json_t *s = tst_stats(f);
        seen = tst_rejected(s, "unknown_event") == want_ue &&
               tst_rejected(s, "bad_msgpack") == want_bm;
        json_decref(s);
    }
    TST_TRUE(seen);
    rlfeed_push_close(p);
    json_decref(before);
}

/*
 * A PUSH connection's messages are handled in the order it sent them, though PULL messages
 * are handled on several threads (docs/protocol.md): each event gets an outcome and, right
 * behind it on the same connection, the outcome's correction; several connections send at
 * once. Every correction must find its original (corrected); one handled first would be a
 * match of its own, and its original a second one.
 */
static void pull_keeps_each_connection_in_order(tst_daemon *f)
{
    enum { CONNS = 4, EVENTS = 1000 };
    rlfeed_reply r;
    char ev[32], json[512];
    for (int i = 0; i < EVENTS; i++) {
        snprintf(ev, sizeof(ev), "ord-%d", i);
        if (rlfeed_client_decide(f->c, "ord", ev, X, DIM, 3, IDS, LOGITS, &r) != BASE_OK || !r.ok) {
            TST_TRUE(false && "decide");
            return;
        }
    }
    json_t *before = tst_stats(f);
    rlfeed_push *p[CONNS] = {NULL};
    for (int c = 0; c < CONNS; c++) {
        TST_OK(rlfeed_push_open(f->pull_url, 2000, &p[c]));
    }
    int sent = 0;
    for (int i = 0; i < EVENTS && p[i % CONNS] != NULL; i++) {
        rlfeed_push *c = p[i % CONNS];
        snprintf(json, sizeof(json),
                 "{\"v\":1,\"op\":\"feedback\",\"policy\":\"ord\",\"event_id\":\"ord-%d\","
                 "\"signal\":\"resolved\",\"value\":1,\"outcome_id\":\"o-%d\"}",
                 i, i);
        sent += tst_push_json(c, json) == BASE_OK;
        snprintf(json, sizeof(json),
                 "{\"v\":1,\"op\":\"feedback\",\"policy\":\"ord\",\"event_id\":\"ord-%d\","
                 "\"signal\":\"resolved\",\"value\":1,\"outcome_id\":\"c-%d\","
                 "\"supersedes\":\"o-%d\"}",
                 i, i, i);
        sent += tst_push_json(c, json) == BASE_OK;
    }
    TST_EQ(sent, 2 * EVENTS);
    long long m0 = tst_stat_join(before, "ord", "matched");
    long long c0 = tst_stat_join(before, "ord", "corrected");
    long long matched = 0, corrected = 0;
    int64_t deadline = tst_now_ms() + 6 * TIMEOUT_MS;
    while (matched + corrected < 2 * EVENTS && tst_now_ms() < deadline) {
        json_t *st = tst_stats(f);
        matched = tst_stat_join(st, "ord", "matched") - m0;
        corrected = tst_stat_join(st, "ord", "corrected") - c0;
        json_decref(st);
        tst_nap();
    }
    printf("# %d events over %d PUSH connections: %lld matched, %lld corrected\n", EVENTS, CONNS,
           matched, corrected);
    if (matched != EVENTS || corrected != EVENTS) {
        json_t *st = tst_stats(f);
        char *dump = json_dumps(json_object_get(st, "rejected"), JSON_COMPACT);
        printf("# rejected: %s\n", dump != NULL ? dump : "?");
        free(dump);
        dump = json_dumps(json_object_get(st, "policies"), JSON_COMPACT);
        printf("# policies: %.3000s\n", dump != NULL ? dump : "?");
        free(dump);
        json_decref(st);
    }
    TST_EQ(matched, EVENTS);
    TST_EQ(corrected, EVENTS);
    for (int c = 0; c < CONNS; c++) {
        rlfeed_push_close(p[c]);
    }
    json_decref(before);
}

/* Probability the policy gives "b" in context X, measured with a fresh event. */
static double prob_b(tst_daemon *f)
{
    rlfeed_reply r;
    if (rlfeed_client_decide(f->c, "learn", NULL, X, DIM, 3, IDS, LOGITS, &r) != BASE_OK || !r.ok) {
        return -1;
    }
    return r.pmf[1];
}

static void head_learns_toward_rewarded_action(tst_daemon *f)
{
    double p0 = prob_b(f);
    int n = 400;
    for (int i = 0; i < n; i++) {
        char ev[32];
        snprintf(ev, sizeof(ev), "learn-%d", i);
        rlfeed_reply r;
        if (rlfeed_client_decide(f->c, "learn", ev, X, DIM, 3, IDS, LOGITS, &r) != BASE_OK ||
            !r.ok) {
            TST_TRUE(0 && "decide failed");
            return;
        }
        /* "b" resolves the customer's problem; "c" earns a thumbs-down. */
        if (r.chosen_index == 1) {
            (void)rlfeed_client_feedback(f->c, "learn", ev, "resolved", 1.0, NULL, &r);
        } else if (r.chosen_index == 2) {
            (void)rlfeed_client_feedback(f->c, "learn", ev, "thumbs_down", 1.0, NULL, &r);
        }
    }
    /* Wait (with a deadline) until every window has closed and been applied. */
    long long updates = 0;
    int64_t deadline = tst_now_ms() + 20000;
    while (tst_now_ms() < deadline) {
        json_t *s = tst_stats(f);
        updates = tst_stat_int(s, "learn", "updates");
        long long pending = tst_stat_int(s, "learn", "pending");
        json_decref(s);
        if (updates >= n && pending == 0) {
            break;
        }
    }
    TST_TRUE(updates >= n);
    double p1 = prob_b(f);
    printf("# p(b | x) before %.4f after %.4f over %d rewarded decisions\n", p0, p1, n);
    TST_TRUE(p1 > p0 + 0.2);
}

/* Restart with the same Redis: the snapshot written at shutdown is reloaded. */
static void restart_reloads_snapshot(tst_daemon *f)
{
    /* Let every window close and be learned from, so nothing changes across the stop. */
    json_t *s = NULL;
    int64_t deadline = tst_now_ms() + 10000;
    for (;;) {
        s = tst_stats(f);
        bool settled = tst_stat_int(s, "learn", "pending") == 0 &&
                       tst_stat_int(s, "learn", "joined") == tst_stat_join(s, "learn", "joined");
        if (settled || tst_now_ms() >= deadline) {
            break;
        }
        json_decref(s);
    }
    long long version = tst_stat_int(s, "learn", "model_version");
    char checksum[32];
    snprintf(checksum, sizeof(checksum), "%s", tst_stat_str(s, "learn", "model_checksum"));
    json_decref(s);
    TST_TRUE(version > 0);
    TST_EQ(tst_daemon_stop(f), 0);
    /* The stored snapshot says where it came from. */
    sto_store *st = NULL;
    char err[128];
    base_snapshot *m = NULL;
    bool found = false;
    TST_OK(sto_store_open(sto_server_url(f->redis), 2000, &st, err, sizeof(err)));
    TST_OK(sto_store_model_get_online(st, "learn", &m, &found));
    TST_TRUE(found && m != NULL);
    if (m != NULL) {
        TST_EQ(m->version, version);
        TST_TRUE(m->parent > 0 && m->parent < m->version); /* several checkpoints happened */
        TST_TRUE(m->spec_version[0] == 'h' && m->config_hash[0] == 'c');
        TST_TRUE(m->ts_ms > 0);
    }
    base_snapshot_free(m);
    sto_store_close(st);
    TST_TRUE(tst_daemon_start(f, true, NULL));
    s = tst_stats(f);
    TST_EQ(tst_stat_int(s, "learn", "model_version"), version);
    TST_STREQ(tst_stat_str(s, "learn", "model_checksum"), checksum);
    /*
     * ord's windows are still open: its decisions and their outcomes were replayed from the
     * streams, and the join holds them again. Counters count what this process received.
     */
    TST_TRUE(tst_stat_join(s, "ord", "pending") > 0);
    TST_EQ(tst_stat_int(s, "ord", "feedback"), 0);
    TST_EQ(tst_stat_join(s, "ord", "matched"), 0);
    TST_EQ(tst_stat_join(s, "ord", "corrected"), 0);
    json_decref(s);
}

static bool process_mentions(const char *needle)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    bool found = false;
    while (d != NULL && !found && (e = readdir(d)) != NULL) {
        char path[300], buf[4096];
        if (e->d_name[0] < '0' || e->d_name[0] > '9') {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        FILE *fp = fopen(path, "rb");
        if (fp == NULL) {
            continue;
        }
        size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
        fclose(fp);
        for (size_t i = 0; i < n; i++) {
            buf[i] = buf[i] == '\0' ? ' ' : buf[i];
        }
        buf[n] = '\0';
        found = strstr(buf, needle) != NULL;
    }
    if (d != NULL) {
        closedir(d);
    }
    return found;
}

static void embedded_redis_starts_and_stops(tst_daemon *f)
{
    char data_dir[600];
    snprintf(data_dir, sizeof(data_dir), "%s/embedded", f->dir);
    TST_TRUE(tst_daemon_start(f, false, NULL));
    rlfeed_reply r;
    TST_OK(rlfeed_client_decide(f->c, "t", "emb-1", X, DIM, 3, IDS, LOGITS, &r));
    TST_TRUE(r.ok);
    TST_TRUE(process_mentions(data_dir));
    TST_EQ(tst_daemon_stop(f), 0);
    TST_TRUE(!process_mentions(data_dir));
}

int main(void)
{
    tst_daemon f;
    if (!tst_daemon_init(&f, "rlfeed-daemon", CONFIG)) {
        TST_TRUE(0 && "fixture");
        tst_daemon_fini(&f, false);
        return tst_done();
    }
    bool up = tst_daemon_start(&f, true, NULL);
    TST_TRUE(up);
    if (up) {
        decide_and_feedback_round_trip(&f);
        bad_input_is_rejected_specifically(&f);
        pull_feedback_errors_are_counted(&f);
        pull_keeps_each_connection_in_order(&f);
        head_learns_toward_rewarded_action(&f);
        restart_reloads_snapshot(&f);
    }
    TST_EQ(tst_daemon_stop(&f), 0);
    embedded_redis_starts_and_stops(&f);
    tst_daemon_fini(&f, tst_failed > 0);
    rlfeed_client_lib_fini(); /* nng tears closed sockets down in the background */
    return tst_done();
}
