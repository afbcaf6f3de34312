#include "bench/serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "bench/serve_daemon.h"
#include "bench/serve_net.h"
#include "bench/serve_opts.h"
#include "bench/serve_redis.h"
#include "bench/serve_report.h"
#include "client/rlfeed_client.h"
#include "proto/request.h"
#include "proto/stats.h"
#include "storage/server.h"

#define K 16              /* candidates per decide */
#define LIST_MAX 8        /* entries of each list option */
#define PATH_LEN 512      /* bytes of a path or URL here */
#define SIGNAL "resolved" /* the feedback's signal (a flag) */
#define START_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS 20000
#define DRAIN_TIMEOUT_MS 60000 /* for rlfeedd's write queue between runs */
#define SETTLE_MS 1000         /* PUSH: a count unchanged this long is final */
#define SETTLE_MAX_MS 120000   /* PUSH: longest wait for the counts */

/*
 * Set by SIGINT, SIGTERM and SIGHUP; read between runs. A signal handler can only
 * talk to the program through such a flag: the one global of the benchmark.
 */
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* One rlfeedd with its private redis-server, for one transport and appendfsync. */
typedef struct env {
    const bench_opts *o;
    const char *transport, *fsync;
    char dir[PATH_LEN], conf[PATH_LEN], log[PATH_LEN];
    char url[PATH_LEN], pull_url[PATH_LEN], echo_url[PATH_LEN], sink_url[PATH_LEN];
    sto_server *redis;
    pid_t pid;
    rlfeed_client *c;
    bench_redis *r;
    uint32_t n_loads; /* load runs so far: each run's outcome ids are unique */
} env;

/* What the runs produce. */
typedef struct results {
    bench_point *pts;
    size_t n_pts, cap;
    bench_sizes sizes[BENCH_LIST_MAX];
    size_t n_sizes;
} results;

/* @n distinct TCP ports on 127.0.0.1 that were free a moment ago. */
static bool free_ports(int *out, int n)
{
    int fds[4] = {-1, -1, -1, -1};
    bool ok = n <= 4;
    for (int i = 0; ok && i < n; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
        socklen_t al = sizeof(a);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        ok = fds[i] >= 0 && bind(fds[i], (struct sockaddr *)&a, sizeof(a)) == 0 &&
             getsockname(fds[i], (struct sockaddr *)&a, &al) == 0;
        out[i] = ok ? ntohs(a.sin_port) : 0;
    }
    for (int i = 0; i < 4; i++) {
        if (fds[i] >= 0) {
            (void)close(fds[i]); /* the port stays free for its user to bind */
        }
    }
    return ok;
}

/* "@prefix@dir/@name" into @out; false if it does not fit. */
static bool path_in(char *out, size_t len, const char *prefix, const char *dir, const char *name)
{
    int n = snprintf(out, len, "%s%s/%s", prefix, dir, name);
    return n > 0 && (size_t)n < len;
}

static bool tcp_url(char *out, size_t len, int port)
{
    int n = snprintf(out, len, "tcp://127.0.0.1:%d", port);
    return n > 0 && (size_t)n < len;
}

/* The daemon's configuration: one policy "d<dim>" per dimension, K actions each. */
static bool write_config(const env *e)
{
    FILE *fp = fopen(e->conf, "w");
    if (fp == NULL) {
        return false;
    }
    /*
     * Hour-long windows: nothing is joined or learned during a run, so the
     * benchmark measures serving and storing alone (as bench/feedback.ini).
     * max_pending is raised so that a long run never marks decisions overflow.
     */
    fprintf(fp, "[server]\ncontexts = %u\nsnapshot_interval_ms = 600000\n", e->o->contexts);
    for (uint32_t i = 0; i < e->o->n_dims; i++) {
        uint32_t d = e->o->dims[i];
        fprintf(fp, "\n[policy d%u]\ndim = %u\nactions = ", d, d);
        for (int a = 0; a < K; a++) {
            fprintf(fp, "%sa%02d", a > 0 ? ", " : "", a);
        }
        fprintf(fp,
                "\nwindow_ms = 3600000\nmax_pending = 16000000\nmax_outcomes = 1024\n"
                "\n[signal d%u.%s]\nkind = flag\n",
                d, SIGNAL);
    }
    return fclose(fp) == 0;
}

base_err bench_encode_decide(const char *policy, uint32_t dim, const char *event_id, base_buf *out)
{
    static const char *const ids[K] = {"a00", "a01", "a02", "a03", "a04", "a05", "a06", "a07",
                                       "a08", "a09", "a10", "a11", "a12", "a13", "a14", "a15"};
    float logits[K];
    float *x = base_alloc_array(dim, sizeof(*x));
    if (x == NULL) {
        return BASE_ENOMEM;
    }
    for (uint32_t i = 0; i < dim; i++) {
        x[i] = (float)sin(0.37 * (double)(i + 1)); /* any finite values */
    }
    for (int a = 0; a < K; a++) {
        logits[a] = 0.1f * (float)(a % 5) - 0.2f;
    }
    proto_decide_req q = {.policy = policy,
                          .event_id = event_id,
                          .embedding = x,
                          .dim = dim,
                          .n_cand = K,
                          .cand_ids = ids,
                          .base_logits = logits};
    base_err e = proto_encode_decide(out, &q);
    base_free(x);
    return e;
}

/* The decide request of policy d<dim>. */
static base_err encode_decide(uint32_t dim, const char *event_id, base_buf *out)
{
    char policy[16];
    snprintf(policy, sizeof(policy), "d%u", dim);
    return bench_encode_decide(policy, dim, event_id, out);
}

static void env_stop(env *e)
{
    rlfeed_client_close(e->c);
    e->c = NULL;
    bench_redis_close(e->r);
    e->r = NULL;
    if (e->pid > 0) {
        int st = bench_daemon_stop(e->pid, STOP_TIMEOUT_MS);
        if (st != 0) {
            fprintf(stderr, "rlfeed bench serve: rlfeedd exited with %d; log %s\n", st, e->log);
        }
        e->pid = 0;
    }
    sto_server_stop(e->redis);
    e->redis = NULL;
    if (e->dir[0] != '\0') {
        bench_rm_rf(e->dir);
        e->dir[0] = '\0';
    }
}

static bool env_start(env *e)
{
    char err[512] = "", rdir[PATH_LEN];
    if (bench_mkdtemp("rlfeed-serve", e->dir, sizeof(e->dir)) != BASE_OK) {
        e->dir[0] = '\0'; /* nothing to remove */
    }
    bool ok = e->dir[0] != '\0' && path_in(e->conf, PATH_LEN, "", e->dir, "rlfeed.ini") &&
              path_in(e->log, PATH_LEN, "", e->dir, "rlfeedd.log") &&
              path_in(rdir, PATH_LEN, "", e->dir, "redis") && mkdir(rdir, 0700) == 0 &&
              write_config(e);
    if (!ok) {
        fprintf(stderr, "rlfeed bench serve: cannot prepare a temporary directory\n");
        return false;
    }
    if (strcmp(e->transport, "ipc") == 0) {
        ok = path_in(e->url, PATH_LEN, "ipc://", e->dir, "rep.sock") &&
             path_in(e->pull_url, PATH_LEN, "ipc://", e->dir, "pull.sock") &&
             path_in(e->echo_url, PATH_LEN, "ipc://", e->dir, "echo.sock") &&
             path_in(e->sink_url, PATH_LEN, "ipc://", e->dir, "sink.sock");
    } else {
        int p[4];
        ok = free_ports(p, 4) && tcp_url(e->url, PATH_LEN, p[0]) &&
             tcp_url(e->pull_url, PATH_LEN, p[1]) && tcp_url(e->echo_url, PATH_LEN, p[2]) &&
             tcp_url(e->sink_url, PATH_LEN, p[3]);
    }
    sto_server_opts so = {.unix_socket = true, .dir = rdir, .appendfsync = e->fsync};
    if (!ok || sto_server_start(&so, &e->redis, err, sizeof(err)) != BASE_OK) {
        fprintf(stderr, "rlfeed bench serve: redis-server: %s\n", ok ? err : "no free port");
        return false;
    }
    char redis_url[PATH_LEN];
    snprintf(redis_url, sizeof(redis_url), "%s", sto_server_url(e->redis));
    char *argv[] = {(char *)(uintptr_t)e->o->rlfeedd,
                    "--config",
                    e->conf,
                    "--url",
                    e->url,
                    "--pull-url",
                    e->pull_url,
                    "--redis",
                    redis_url,
                    "--http-url",
                    "",
                    NULL};
    if (bench_daemon_start(argv, e->log, e->url, START_TIMEOUT_MS, &e->pid, err, sizeof(err)) !=
            BASE_OK ||
        rlfeed_client_open(e->url, e->o->timeout_ms, &e->c) != BASE_OK ||
        bench_redis_open(redis_url, e->o->timeout_ms, &e->r, err, sizeof(err)) != BASE_OK) {
        fprintf(stderr, "rlfeed bench serve: rlfeedd: %s\n", err[0] != '\0' ? err : "no client");
        return false;
    }
    fprintf(stderr, "rlfeed bench serve: rlfeedd on %s (pull %s), redis %s appendfsync %s\n",
            e->url, e->pull_url, redis_url, e->fsync);
    return true;
}

/* rlfeedd's counters: of policy @policy, and its write queue. */
typedef struct counters {
    uint64_t counted; /* feedback outcomes by any status, plus every refusal */
    uint64_t matched;
    uint64_t status[PROTO_ST_COUNT]; /* outcomes by join status */
    uint64_t rejected[PROTO_E_COUNT];
    uint64_t unlogged;
    uint64_t queue_depth;
} counters;

static bool read_counters(env *e, const char *policy, counters *out)
{
    uint8_t *rep = NULL;
    size_t len = 0;
    proto_stats st;
    if (rlfeed_client_stats(e->c, policy, &rep, &len) != BASE_OK) {
        return false;
    }
    bool ok = proto_stats_decode(rep, len, &st) == BASE_OK;
    base_free(rep);
    if (!ok) {
        return false;
    }
    counters c = {.queue_depth = st.storage.queue_depth};
    for (uint32_t i = 0; i < st.n_policies; i++) {
        for (int s = 0; s < PROTO_ST_COUNT; s++) {
            c.counted += st.policies[i].join.status[s];
            c.status[s] += st.policies[i].join.status[s];
        }
        c.matched += st.policies[i].join.status[PROTO_ST_MATCHED];
        c.unlogged += st.policies[i].unlogged;
    }
    for (int code = 0; code < PROTO_E_COUNT; code++) {
        c.counted += st.rejected[code];
        c.rejected[code] = st.rejected[code];
    }
    proto_stats_fini(&st);
    *out = c;
    return true;
}

/* Wait until rlfeedd's write queue is empty, so a run starts without a backlog. */
static bool drain(env *e)
{
    uint64_t deadline = base_mono_ns() + (uint64_t)DRAIN_TIMEOUT_MS * 1000000u;
    counters c;
    while (read_counters(e, NULL, &c) && c.queue_depth > 0) {
        if (base_mono_ns() >= deadline) {
            fprintf(stderr, "rlfeed bench serve: write queue still holds %llu records\n",
                    (unsigned long long)c.queue_depth);
            return false;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 20000000L};
        (void)nanosleep(&ts, NULL); /* a poll interval */
    }
    return true;
}

static bench_point *point_for(results *res, bench_kind kind, const env *e, uint32_t dim,
                              uint32_t inflight)
{
    if (res->n_pts == res->cap) {
        size_t cap = res->cap == 0 ? 32 : res->cap * 2;
        bench_point *g = base_realloc_array(res->pts, cap, sizeof(*g));
        if (g == NULL) {
            return NULL;
        }
        res->pts = g;
        res->cap = cap;
    }
    bench_point *p = &res->pts[res->n_pts++];
    *p = (bench_point){.kind = kind,
                       .transport = e->transport,
                       .dim = dim,
                       .inflight = inflight,
                       .fsync = e->fsync};
    return p;
}

static bench_sizes *sizes_for(results *res, uint32_t dim)
{
    for (size_t i = 0; i < res->n_sizes; i++) {
        if (res->sizes[i].dim == dim) {
            return &res->sizes[i];
        }
    }
    bench_sizes *s = &res->sizes[res->n_sizes++]; /* n_dims <= LIST_MAX */
    *s = (bench_sizes){.dim = dim};
    return s;
}

/* One load run; its outcome ids are unique in this env. */
static bool load(env *e, bench_load_spec *sp, bench_result *out)
{
    char tag[32];
    snprintf(tag, sizeof(tag), "b%u", ++e->n_loads);
    sp->tag = tag;
    sp->warmup_ms = e->o->warmup_ms;
    sp->measure_ms = e->o->seconds * 1000u;
    sp->timeout_ms = e->o->timeout_ms;
    base_err err = bench_load_run(sp, out);
    if (err != BASE_OK) {
        fprintf(stderr, "rlfeed bench serve: load on %s: %s\n", sp->url, base_strerror(err));
    }
    return err == BASE_OK;
}

static void progress(const bench_point *p, uint32_t run, const char *side, const bench_result *r)
{
    fprintf(stderr,
            "  %-6s %s d%-4u N%-3u %-8s run %u %-7s %9.0f/s  p50 %.3f p99 %.3f p999 %.3f"
            " ms%s%s\n",
            bench_kind_name(p->kind), p->transport, p->dim, p->inflight,
            p->kind == BENCH_PAIR ? p->fsync : "", run + 1, side, r->per_s, r->p50_ms, r->p99_ms,
            r->p999_ms, r->errors > 0 ? "  errors: " : "", r->errors > 0 ? r->first_error : "");
}

/*
 * One point, rlfeedd then the echo at @url, e->o->runs times, into @p (kind DECIDE, or HALF
 * paced at p->rate_per_s).
 */
static bool decide_runs(env *e, bench_point *p, const base_buf *req)
{
    bool ok = true;
    for (uint32_t run = 0; ok && run < e->o->runs && !g_stop; run++) {
        bench_load_spec sp = {.kind = BENCH_LOAD_DECIDE,
                              .url = e->url,
                              .inflight = p->inflight,
                              .decide_req = req->data,
                              .decide_len = req->len,
                              .rate_per_s = p->kind == BENCH_HALF ? p->rate_per_s : 0.0};
        ok = drain(e) && load(e, &sp, &p->rl.run[run]);
        if (ok) {
            progress(p, run, "rlfeedd", &p->rl.run[run]);
            sp.url = e->echo_url;
            ok = load(e, &sp, &p->ceil.run[run]);
        }
        if (ok) {
            progress(p, run, "ceiling", &p->ceil.run[run]);
            p->rl.n_runs = p->ceil.n_runs = run + 1;
        }
    }
    return ok;
}

static bool run_decide(env *e, results *res, uint32_t dim, const base_buf *req)
{
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    bench_echo *echo = NULL;
    char err[256] = "";
    bool ok = rlfeed_client_call(e->c, req->data, req->len, &reply, &reply_len) == BASE_OK &&
              bench_echo_open(e->echo_url, e->o->contexts, reply, reply_len, &echo, err,
                              sizeof(err)) == BASE_OK;
    if (!ok) {
        fprintf(stderr, "rlfeed bench serve: decide d%u: %s\n", dim,
                err[0] != '\0' ? err : "no reply from rlfeedd");
    } else {
        sizes_for(res, dim)->decide_reply = reply_len;
    }
    for (uint32_t i = 0; ok && i < e->o->n_inflight && !g_stop; i++) {
        bench_point *p = point_for(res, BENCH_DECIDE, e, dim, e->o->inflight[i]);
        ok = p != NULL && decide_runs(e, p, req);
        if (ok && e->o->kind[BENCH_HALF] && !g_stop) {
            double rate = 0.5 * bench_side_median_rate(&p->rl);
            p = point_for(res, BENCH_HALF, e, dim, e->o->inflight[i]); /* moves the points */
            ok = p != NULL;
            if (ok) {
                p->rate_per_s = rate;
                ok = decide_runs(e, p, req);
            }
        }
    }
    bench_echo_close(echo);
    base_free(reply);
    return ok;
}

/* The newest record lengths of rlfeedd's streams for policy d<dim> (polled: async writes). */
static bool record_sizes(env *e, uint32_t dim, bench_sizes *s)
{
    char kd[64], ko[64];
    snprintf(kd, sizeof(kd), "rlfeed:{d%u}:decisions", dim);
    snprintf(ko, sizeof(ko), "rlfeed:{d%u}:outcomes", dim);
    size_t ld = 0, lo = 0;
    bool ok = drain(e) && bench_redis_last_len(e->r, kd, &ld) == BASE_OK &&
              bench_redis_last_len(e->r, ko, &lo) == BASE_OK && ld > 0 && lo > 0;
    if (ok) {
        s->decision_record = ld;
        s->outcome_record = lo;
    } else {
        fprintf(stderr, "rlfeed bench serve: no decision or outcome record of d%u in Redis\n", dim);
    }
    return ok;
}

static bool run_pair(env *e, results *res, uint32_t dim, const base_buf *req)
{
    char policy[16], kd[64], ko[64];
    snprintf(policy, sizeof(policy), "d%u", dim);
    snprintf(kd, sizeof(kd), "ceiling:{d%u}:decisions", dim);
    snprintf(ko, sizeof(ko), "ceiling:{d%u}:outcomes", dim);
    bench_sizes *sz = sizes_for(res, dim);
    bool ok = true;
    for (uint32_t i = 0; ok && i < e->o->n_inflight && !g_stop; i++) {
        bench_point *p = point_for(res, BENCH_PAIR, e, dim, e->o->inflight[i]);
        ok = p != NULL;
        for (uint32_t run = 0; ok && run < e->o->runs && !g_stop; run++) {
            bench_load_spec sp = {.kind = BENCH_LOAD_PAIR,
                                  .url = e->url,
                                  .inflight = p->inflight,
                                  .decide_req = req->data,
                                  .decide_len = req->len,
                                  .policy = policy,
                                  .signal = SIGNAL};
            ok = drain(e) && load(e, &sp, &p->rl.run[run]) && record_sizes(e, dim, sz);
            if (ok) {
                progress(p, run, "rlfeedd", &p->rl.run[run]);
                /* Plain pipelined XADD, then the same in transactions. */
                for (int tx = 0; ok && tx < 2; tx++) {
                    bench_result *out = tx ? &p->ceil_tx.run[run] : &p->ceil.run[run];
                    base_err err = bench_redis_pairs(e->r, kd, sz->decision_record, ko,
                                                     sz->outcome_record, p->inflight, tx,
                                                     e->o->warmup_ms, e->o->seconds * 1000u, out);
                    ok = err == BASE_OK && bench_redis_del(e->r, kd) == BASE_OK &&
                         bench_redis_del(e->r, ko) == BASE_OK;
                    if (!ok) {
                        fprintf(stderr, "rlfeed bench serve: XADD ceiling%s: %s\n",
                                tx ? " (transactions)" : "", base_strerror(err));
                    } else {
                        progress(p, run, tx ? "ceil-tx" : "ceiling", out);
                    }
                }
            }
            if (ok) {
                p->rl.n_runs = p->ceil.n_runs = p->ceil_tx.n_runs = run + 1;
            }
        }
    }
    return ok;
}

/* Decide @n events "pe-<i>" of policy d<dim>, for PUSH feedback to match. */
static bool seed_events(env *e, uint32_t dim, char **ids, uint32_t n)
{
    base_buf b;
    base_buf_init(&b, BENCH_MAX_MSG);
    bool ok = true;
    for (uint32_t i = 0; ok && i < n && !g_stop; i++) {
        uint8_t *rep = NULL;
        size_t len = 0;
        base_buf_reset(&b);
        ok = encode_decide(dim, ids[i], &b) == BASE_OK &&
             rlfeed_client_call(e->c, b.data, b.len, &rep, &len) == BASE_OK;
        base_free(rep);
    }
    base_buf_fini(&b);
    if (!ok) {
        fprintf(stderr, "rlfeed bench serve: could not decide the push events of d%u\n", dim);
    }
    return ok && !g_stop;
}

/*
 * Poll @count until it reaches @want or stays unchanged for SETTLE_MS; the last value, and in
 * @out_at_ns when it was first seen (base_mono_ns()).
 */
typedef bool (*count_fn)(void *arg, uint64_t *out);

static uint64_t settle(count_fn f, void *arg, uint64_t want, uint64_t *out_at_ns)
{
    uint64_t deadline = base_mono_ns() + (uint64_t)SETTLE_MAX_MS * 1000000u;
    uint64_t last = 0, last_change = base_mono_ns();
    bool have = false;
    for (;;) {
        uint64_t v = 0, now = base_mono_ns();
        if (f(arg, &v) && (!have || v != last)) {
            last = v;
            have = true;
            last_change = now;
        }
        if ((have && last >= want) || now >= deadline ||
            now - last_change >= (uint64_t)SETTLE_MS * 1000000u) {
            *out_at_ns = last_change;
            return last;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 20000000L};
        (void)nanosleep(&ts, NULL); /* a poll interval */
    }
}

static bool count_rlfeedd(void *arg, uint64_t *out)
{
    counters c;
    bool ok = read_counters(arg, NULL, &c);
    *out = ok ? c.counted : 0;
    return ok;
}

static bool count_sink(void *arg, uint64_t *out)
{
    *out = bench_sink_count(arg);
    return true;
}

/*
 * A PUSH side's rate is what its receiver took: @taken messages from the start of the load
 * (@t0_ns) until the last of them was counted (@t1_ns). What the senders handed to nng is no
 * measure: a receiver that pushes back leaves messages waiting in socket buffers.
 */
static void taken_rate(bench_result *r, uint64_t taken, uint64_t t0_ns, uint64_t t1_ns)
{
    double s = t1_ns > t0_ns ? (double)(t1_ns - t0_ns) / 1e9 : 0.0;
    r->per_s = s > 0.0 ? (double)taken / s : 0.0;
}

static bool run_push(env *e, results *res, uint32_t dim, bench_sink *sink)
{
    char policy[16];
    snprintf(policy, sizeof(policy), "d%u", dim);
    uint32_t n = e->o->events;
    char **ids = base_alloc_zero(n, sizeof(*ids));
    bool ok = ids != NULL;
    for (uint32_t i = 0; ok && i < n; i++) {
        ids[i] = base_alloc(16);
        ok = ids[i] != NULL;
        if (ok) {
            snprintf(ids[i], 16, "pe-%u", i);
        }
    }
    ok = ok && seed_events(e, dim, ids, n);
    base_buf fb;
    base_buf_init(&fb, BENCH_MAX_MSG);
    proto_feedback_req q = {.policy = policy,
                            .event_id = ids != NULL ? ids[0] : "",
                            .signal = SIGNAL,
                            .value = 1.0,
                            .outcome_id = "b1-0-1"};
    if (ok && proto_encode_feedback(&fb, &q) == BASE_OK) {
        sizes_for(res, dim)->feedback_request = fb.len;
    }
    base_buf_fini(&fb);
    for (uint32_t i = 0; ok && i < e->o->n_inflight && !g_stop; i++) {
        bench_point *p = point_for(res, BENCH_PUSH, e, dim, e->o->inflight[i]);
        ok = p != NULL;
        for (uint32_t run = 0; ok && run < e->o->runs && !g_stop; run++) {
            bench_load_spec sp = {.kind = BENCH_LOAD_PUSH,
                                  .url = e->pull_url,
                                  .inflight = p->inflight,
                                  .policy = policy,
                                  .signal = SIGNAL,
                                  .event_ids = (const char *const *)ids,
                                  .n_events = n};
            counters c0, c1;
            uint64_t t0 = 0, t1 = 0;
            ok = drain(e) && read_counters(e, NULL, &c0);
            t0 = base_mono_ns();
            ok = ok && load(e, &sp, &p->rl.run[run]);
            if (ok) {
                bench_result *r = &p->rl.run[run];
                uint64_t counted = settle(count_rlfeedd, e, c0.counted + r->sent, &t1) - c0.counted;
                taken_rate(r, counted, t0, t1);
                ok = read_counters(e, NULL, &c1);
                p->sent += r->sent;
                p->counted += counted;
                p->matched += ok ? c1.matched - c0.matched : 0;
                for (int s = 0; ok && s < PROTO_ST_COUNT; s++) {
                    p->by_status[s] += c1.status[s] - c0.status[s];
                }
                for (int code = 0; ok && code < PROTO_E_COUNT; code++) {
                    p->refused[code] += c1.rejected[code] - c0.rejected[code];
                }
                progress(p, run, "rlfeedd", r);
                fprintf(stderr, "         sent %llu, rlfeedd counted %llu\n",
                        (unsigned long long)r->sent, (unsigned long long)counted);
            }
            uint64_t s0 = bench_sink_count(sink);
            sp.url = e->sink_url;
            t0 = base_mono_ns();
            ok = ok && load(e, &sp, &p->ceil.run[run]);
            if (ok) {
                bench_result *r = &p->ceil.run[run];
                uint64_t received = settle(count_sink, sink, s0 + r->sent, &t1) - s0;
                taken_rate(r, received, t0, t1);
                p->ceil_sent += r->sent;
                p->ceil_received += received;
                progress(p, run, "ceiling", r);
                p->rl.n_runs = p->ceil.n_runs = run + 1;
            }
        }
    }
    for (uint32_t i = 0; ids != NULL && i < n; i++) {
        base_free(ids[i]);
    }
    base_free(ids);
    return ok;
}

/* Every point of one transport and appendfsync; @first: decide and push run here too. */
static bool run_env(env *e, results *res, bool first)
{
    const bench_opts *o = e->o;
    bool ok = env_start(e);
    bench_sink *sink = NULL;
    char err[256] = "";
    if (ok && first && o->kind[BENCH_PUSH] &&
        bench_sink_open(e->sink_url, &sink, err, sizeof(err)) != BASE_OK) {
        fprintf(stderr, "rlfeed bench serve: PULL sink: %s\n", err);
        ok = false;
    }
    base_buf req;
    base_buf_init(&req, BENCH_MAX_MSG);
    for (uint32_t d = 0; ok && d < o->n_dims && !g_stop; d++) {
        uint32_t dim = o->dims[d];
        base_buf_reset(&req);
        ok = encode_decide(dim, NULL, &req) == BASE_OK;
        if (ok) {
            sizes_for(res, dim)->decide_request = req.len;
        }
        if (ok && first && o->kind[BENCH_DECIDE]) {
            ok = run_decide(e, res, dim, &req);
        }
        if (ok && o->kind[BENCH_PAIR]) {
            ok = run_pair(e, res, dim, &req);
        }
        if (ok && first && o->kind[BENCH_PUSH]) {
            ok = run_push(e, res, dim, sink);
        }
    }
    base_buf_fini(&req);
    bench_sink_close(sink);
    env_stop(e);
    return ok;
}

int rlfeed_bench_serve_main(int argc, char **argv)
{
    bench_opts o;
    int rc = bench_opts_parse(argc, argv, &o);
    if (rc != 0) {
        return rc == 1 ? 0 : 2;
    }
    if (o.kind[BENCH_HALF] && !o.kind[BENCH_DECIDE]) {
        fprintf(stderr, "rlfeed bench serve: --only half needs decide (its rate is half of "
                        "decide's)\n");
        return 2;
    }
    if (!o.kind[BENCH_PAIR] && o.n_fsyncs > 1) {
        o.n_fsyncs = 1; /* decide and push run with the first appendfsync only */
    }
    struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term, old_hup, old_pipe;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGINT, &sa, &old_int);
    (void)sigaction(SIGTERM, &sa, &old_term);
    (void)sigaction(SIGHUP, &sa, &old_hup);
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigemptyset(&ign.sa_mask);
    (void)sigaction(SIGPIPE, &ign, &old_pipe); /* a dead redis-server must not kill us */

    bench_meta m = {.seconds = o.seconds,
                    .warmup_ms = o.warmup_ms,
                    .runs = o.runs,
                    .contexts = o.contexts,
                    .k = K};
    bench_meta_probe(&m);
    results res = {0};
    bool ok = true;
    for (uint32_t t = 0; ok && t < o.n_transports && !g_stop; t++) {
        for (uint32_t f = 0; ok && f < o.n_fsyncs && !g_stop; f++) {
            env e = {.o = &o, .transport = o.transports[t], .fsync = o.fsyncs[f]};
            ok = run_env(&e, &res, f == 0);
        }
    }
    if (g_stop) {
        fprintf(stderr, "rlfeed bench serve: interrupted; the points measured so far:\n");
    }
    bench_meta_load(m.load_end, sizeof(m.load_end));
    bench_report_table(stdout, res.pts, res.n_pts, res.sizes, res.n_sizes);
    if (bench_report_json(stdout, &m, res.pts, res.n_pts, res.sizes, res.n_sizes) != BASE_OK) {
        ok = false;
    }
    base_free(res.pts);
    bench_net_fini();
    (void)sigaction(SIGINT, &old_int, NULL);
    (void)sigaction(SIGTERM, &old_term, NULL);
    (void)sigaction(SIGHUP, &old_hup, NULL);
    (void)sigaction(SIGPIPE, &old_pipe, NULL);
    return ok && !g_stop ? 0 : 1;
}
