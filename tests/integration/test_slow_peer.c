/*
 * One peer that pipelines requests and never reads its replies must not take
 * the REQ/REP service from everyone else. The attacker speaks SP over ipc by
 * hand: the handshake, then hundreds of raw REQ frames (a 4-byte request id
 * with the high bit set, then a msgpack "stats" request) in one write, and it
 * reads nothing. Meanwhile a new client's "health" and an older client's
 * "decide" must be answered within the usual deadline (5 s),
 * and the daemon must drop (and log) replies the attacker leaves untaken.
 *
 * Before the bound existed every REP context ended up holding a reply that
 * the attacker's full socket would never take, with no timeout: nobody else
 * was answered until the attacker hung up.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "client/rlfeed_client.h"
#include "daemon.h"
#include "proc.h"
#include "proto/json.h"
#include "tap.h"

#define DIM 4
#define TIMEOUT_MS 5000 /* generous: CI shares two cores */
#define N_REQUESTS 500
#define ROUNDS 5
#define PIPELINED 64 /* twice the contexts configured below; 64 stats replies are about 45 KB */

static const char CONFIG[] = "[server]\n"
                             "tick_ms = 5\n"
                             "contexts = 32\n"
                             "[policy t]\n"
                             "dim = 4\n"
                             "actions = a, b, c\n"
                             "seed = 3\n"
                             "signal.resolved = 1.0\n"
                             "window_ms = 60000\n";

static const char *const IDS[3] = {"a", "b", "c"};
static const float LOGITS[3] = {0.0f, 0.0f, 0.0f};
static const float X[DIM] = {1.0f, 0.5f, -0.5f, 0.25f};

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

/* Write all of @buf; false on error or timeout (SO_SNDTIMEO). */
static bool write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

/*
 * Connect to the REP socket at @path as a REQ peer (SP protocol 0x30) and
 * send @n "stats" requests, ids 1..n, in one write. The socket, or -1.
 */
static int attack(const char *path, int n)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    struct timeval tv = {TIMEOUT_MS / 1000, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    static const uint8_t hello[8] = {0x00, 'S', 'P', 0x00, 0x00, 0x30, 0x00, 0x00};
    uint8_t peer[8];
    base_buf body, frames;
    base_buf_init(&body, 4096);
    base_buf_init(&frames, 1u << 20);
    char err[128];
    bool ok =
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        write_all(fd, hello, sizeof(hello)) &&
        read(fd, peer, sizeof(peer)) == (ssize_t)sizeof(peer) && peer[5] == 0x31 &&
        proto_json_to_msgpack("{\"v\":1,\"op\":\"stats\"}", &body, err, sizeof(err)) == BASE_OK;
    for (int i = 0; ok && i < n; i++) {
        /* Frame: type 1, 8-byte big-endian length, then the SP REQ header and the body. */
        uint8_t head[13];
        head[0] = 0x01;
        put_be64(head + 1, 4 + body.len);
        uint32_t id = 0x80000000u | (uint32_t)(i + 1);
        head[9] = (uint8_t)(id >> 24);
        head[10] = (uint8_t)(id >> 16);
        head[11] = (uint8_t)(id >> 8);
        head[12] = (uint8_t)id;
        ok = base_buf_append(&frames, head, sizeof(head)) == BASE_OK &&
             base_buf_append(&frames, body.data, body.len) == BASE_OK;
    }
    ok = ok && write_all(fd, frames.data, frames.len);
    base_buf_fini(&body);
    base_buf_fini(&frames);
    if (!ok) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Bytes waiting in @fd's receive queue, or -1. */
static int pending_bytes(int fd)
{
    int n = 0;
    return ioctl(fd, FIONREAD, &n) == 0 ? n : -1;
}

/*
 * Read what the daemon sent, until @want replies, EOF or a quiet TIMEOUT_MS;
 * the number of complete reply frames, and whether the daemon hung up.
 */
static int drain_replies(int fd, int want, bool *out_eof)
{
    uint8_t buf[65536];
    size_t have = 0;
    int frames = 0;
    *out_eof = false;
    while (frames < want) {
        ssize_t n = read(fd, buf + have, sizeof(buf) - have);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            *out_eof = true;
            break;
        }
        if (n < 0) {
            break; /* timeout: the daemon kept the connection open */
        }
        have += (size_t)n;
        size_t off = 0;
        while (have - off >= 9) {
            uint64_t len = 0;
            for (int i = 1; i <= 8; i++) {
                len = (len << 8) | buf[off + i];
            }
            if (buf[off] != 0x01 || len > sizeof(buf) - 9) {
                return -1; /* not the framing we expect */
            }
            if (have - off < 9 + len) {
                break;
            }
            off += 9 + len;
            frames++;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
    }
    return frames;
}

static void non_reading_peer_does_not_stop_others(tst_daemon *f)
{
    /* A connection made before the flood, with the same deadline as new ones. */
    rlfeed_client *old_c = NULL;
    uint8_t *rep = NULL;
    size_t stats_len = 0;
    TST_OK(rlfeed_client_open(f->url, TIMEOUT_MS, &old_c));
    TST_OK(rlfeed_client_stats(old_c, NULL, &rep, &stats_len));
    base_free(rep);

    int fd = attack(f->url + strlen("ipc://"), N_REQUESTS);
    TST_TRUE(fd >= 0);
    if (fd < 0) {
        rlfeed_client_close(old_c);
        return;
    }
    /* Wait until the daemon is answering the attacker: the flood is under way. */
    int64_t deadline = tst_now_ms() + TIMEOUT_MS;
    while (pending_bytes(fd) <= 0 && tst_now_ms() < deadline) {
        tst_nap();
    }
    TST_TRUE(pending_bytes(fd) > 0);

    /*
     * Serve others until the daemon has dropped one of the attacker's
     * replies (its log says so), and for at least ROUNDS rounds: the rounds
     * then cover the time the attacker's untaken replies fill the contexts,
     * however slowly the daemon gets there.
     */
    int rounds = 0, served = 0;
    int64_t slowest_ms = 0;
    bool dropped = false;
    deadline = tst_now_ms() + 4 * TIMEOUT_MS;
    while ((rounds < ROUNDS || !dropped) && tst_now_ms() < deadline) {
        rounds++;
        int64_t t0 = tst_now_ms();
        bool fresh = tst_new_client_served(f->url, TIMEOUT_MS);
        rlfeed_reply r;
        memset(&r, 0, sizeof(r));
        bool old =
            rlfeed_client_decide(old_c, "t", NULL, X, DIM, 3, IDS, LOGITS, &r) == BASE_OK && r.ok;
        served += fresh && old;
        int64_t took_ms = tst_now_ms() - t0;
        slowest_ms = took_ms > slowest_ms ? took_ms : slowest_ms;
        if (!fresh || !old) {
            break; /* stalled: the rest would only time out too */
        }
        dropped = tst_file_has(f->log, "not reading replies");
    }
    TST_EQ(served, rounds);
    TST_TRUE(dropped);
    printf("# during the flood: %d of %d rounds (new client health + decide) served, "
           "slowest %lld ms\n",
           served, rounds, (long long)slowest_ms);

    /* What the attacker got once it reads: everything but the dropped replies. */
    struct timeval quiet = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &quiet, sizeof(quiet));
    bool eof = false;
    int got = drain_replies(fd, N_REQUESTS, &eof);
    close(fd);
    printf("# attacker sent %d stats requests (replies of %zu bytes), got %d replies\n", N_REQUESTS,
           stats_len, got);
    TST_TRUE(got >= 0 && got < N_REQUESTS);

    /* The service is whole afterwards. */
    TST_TRUE(tst_new_client_served(f->url, TIMEOUT_MS));
    rlfeed_client_close(old_c);
}

/*
 * The other side of the bound: a client that pipelines many requests on one
 * connection but reads its replies gets every one of them and keeps its
 * connection. PIPELINED replies fit in the socket buffers, so only the
 * daemon's own pace decides how long a reply waits.
 */
static void pipelining_reader_is_served(tst_daemon *f)
{
    int fd = attack(f->url + strlen("ipc://"), PIPELINED);
    TST_TRUE(fd >= 0);
    if (fd < 0) {
        return;
    }
    bool eof = false;
    int got = drain_replies(fd, PIPELINED, &eof);
    close(fd);
    TST_EQ(got, PIPELINED);
    TST_TRUE(!eof);
}

int main(void)
{
    tst_daemon f;
    if (!tst_daemon_init(&f, "rlfeed-slowpeer", CONFIG)) {
        TST_TRUE(0 && "fixture");
        tst_daemon_fini(&f, false);
        return tst_done();
    }
    bool up = tst_daemon_start(&f, true, NULL);
    TST_TRUE(up);
    if (up) {
        pipelining_reader_is_served(&f);
        non_reading_peer_does_not_stop_others(&f);
    }
    TST_EQ(tst_daemon_stop(&f), 0);
    tst_daemon_fini(&f, tst_failed > 0);
    rlfeed_client_lib_fini(); /* nng tears closed sockets down in the background */
    return tst_done();
}
