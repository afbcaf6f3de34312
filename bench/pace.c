/*
 * rlfeed-bench-pace: does learning keep pace with decisions? (docs/benchmarks.md, "The learner
 * under decide-only load"; bench/pace_bench.sh runs it against an rlfeedd it starts.)
 *
 * N clients in flight (nng aio, bench/serve_net.h) send `decide` to policy "pace" (dim 64,
 * 16 candidates, as bench/pace.ini configures it) for S seconds, as fast as rlfeedd answers,
 * and nobody sends feedback: every decision's window closes with the default reward, is
 * joined, stored and learned. Meanwhile, and after the load stops, the policy's stats are
 * read every 50 ms:
 *
 *   backlog = decisions - unlogged - overflow - pending - joined
 *
 * the decisions whose window closed but which are not learned yet (stats' `joined` counts
 * examples applied to the head; unlogged and overflow decisions are never joined). Once the load stops, the last windows close window_ms later;
 * `lag_ms` is how long after that everything was learned.
 *
 * Output, one JSON line on stdout:
 *   {"inflight":32,"seconds":10,"window_ms":1000,"decided":203000,"decide_per_s":20300,
 *    "unlogged":0,"overflow":0,"max_backlog":812,"max_queue":1400,"backlog_at_stop":90,
 *    "learned_ms":1180,"lag_ms":180,"drained":true}
 *
 * Usage: rlfeed-bench-pace --url URL [--inflight N] [--seconds S] [--window-ms W]
 *                          [--drain-timeout-ms T]
 * Exit status: 0; 1 if requests failed or the decisions were not all learned within T after
 * the load; 2 for usage errors or no connection at start.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "bench/serve.h"
#include "bench/serve_net.h"
#include "bench/serve_opts.h"
#include "client/rlfeed_client.h"
#include "proto/stats.h"

#define POLICY "pace"
#define DIM 64
#define SAMPLE_MS 50
#define WARMUP_MS 500

/* The policy's counters that say where its decisions are. */
typedef struct sample {
    uint64_t decisions, overflow, unlogged, pending, joined, queue;
} sample;

typedef struct sampler {
    rlfeed_client *c;
    sample base;          /* before the load */
    atomic_bool stop;     /* set by main: end the sampling */
    atomic_bool loading;  /* the load is running */
    uint64_t max_backlog; /* while loading */
    uint64_t max_queue;
    uint64_t errors;
} sampler;

static bool read_sample(rlfeed_client *c, sample *out)
{
    uint8_t *rep = NULL;
    size_t len = 0;
    proto_stats st;
    if (rlfeed_client_stats(c, POLICY, &rep, &len) != BASE_OK) {
        return false;
    }
    bool ok = proto_stats_decode(rep, len, &st) == BASE_OK;
    base_free(rep);
    if (!ok) {
        return false;
    }
    ok = st.n_policies == 1 && strcmp(st.policies[0].name, POLICY) == 0;
    if (ok) {
        const proto_policy_stats *p = &st.policies[0];
        *out = (sample){p->decisions, p->overflow, p->unlogged,
                        p->pending,   p->joined,   st.storage.queue_depth};
    }
    proto_stats_fini(&st);
    return ok;
}

/* Closed windows not learned yet, relative to @base (unlogged decisions are never joined). */
static uint64_t backlog(const sample *s, const sample *base)
{
    uint64_t closed = (s->decisions - base->decisions) - (s->unlogged - base->unlogged) -
                      (s->overflow - base->overflow);
    uint64_t done = s->pending + (s->joined - base->joined);
    return closed > done ? closed - done : 0;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    (void)nanosleep(&ts, NULL);
}

static void *sampler_main(void *arg)
{
    sampler *s = arg;
    while (!atomic_load(&s->stop)) {
        sample x;
        if (read_sample(s->c, &x)) {
            if (atomic_load(&s->loading)) {
                uint64_t b = backlog(&x, &s->base);
                s->max_backlog = b > s->max_backlog ? b : s->max_backlog;
                s->max_queue = x.queue > s->max_queue ? x.queue : s->max_queue;
            }
        } else {
            s->errors++;
        }
        nap_ms(SAMPLE_MS);
    }
    return NULL;
}

static int usage(void)
{
    fprintf(stderr, "usage: rlfeed-bench-pace --url URL [--inflight N] [--seconds S] "
                    "[--window-ms W] [--drain-timeout-ms T]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *url = NULL;
    long inflight = 32, seconds = 10, window_ms = 1000, drain_ms = 60000;
    for (int i = 1; i < argc; i++) {
        bool has = i + 1 < argc;
        if (strcmp(argv[i], "--url") == 0 && has) {
            url = argv[++i];
        } else if (strcmp(argv[i], "--inflight") == 0 && has &&
                   bench_parse_long(argv[++i], 1, BENCH_INFLIGHT_MAX, &inflight)) {
        } else if (strcmp(argv[i], "--seconds") == 0 && has &&
                   bench_parse_long(argv[++i], 1, 3600, &seconds)) {
        } else if (strcmp(argv[i], "--window-ms") == 0 && has &&
                   bench_parse_long(argv[++i], 1, 3600000, &window_ms)) {
        } else if (strcmp(argv[i], "--drain-timeout-ms") == 0 && has &&
                   bench_parse_long(argv[++i], 1, 3600000, &drain_ms)) {
        } else {
            return usage();
        }
    }
    if (url == NULL) {
        return usage();
    }
    sampler s = {0};
    if (rlfeed_client_open(url, 30000, &s.c) != BASE_OK || !read_sample(s.c, &s.base)) {
        fprintf(stderr, "rlfeed-bench-pace: no stats of policy %s at %s\n", POLICY, url);
        rlfeed_client_close(s.c);
        return 2;
    }
    base_buf req;
    base_buf_init(&req, 1u << 16);
    if (bench_encode_decide(POLICY, DIM, NULL, &req) != BASE_OK) {
        fprintf(stderr, "rlfeed-bench-pace: cannot encode the decide request\n");
        return 2;
    }
    pthread_t thr;
    atomic_store(&s.loading, true);
    if (pthread_create(&thr, NULL, sampler_main, &s) != 0) {
        fprintf(stderr, "rlfeed-bench-pace: cannot start the sampler\n");
        return 2;
    }
    bench_load_spec sp = {.kind = BENCH_LOAD_DECIDE,
                          .url = url,
                          .inflight = (uint32_t)inflight,
                          .decide_req = req.data,
                          .decide_len = req.len,
                          .tag = "pace",
                          .warmup_ms = WARMUP_MS,
                          .measure_ms = (uint64_t)seconds * 1000u,
                          .timeout_ms = 5000};
    bench_result r = {0};
    base_err e = bench_load_run(&sp, &r);
    uint64_t t_stop = base_mono_ns();
    atomic_store(&s.loading, false);
    atomic_store(&s.stop, true);
    pthread_join(thr, NULL); /* the client is main's again */

    /* After the load: until every decision of the run is learned, or the timeout. */
    sample at_stop = {0}, x = {0};
    bool have_stop = read_sample(s.c, &at_stop);
    bool drained = false;
    uint64_t t_learned = 0;
    while (base_mono_ns() - t_stop < (uint64_t)drain_ms * 1000000u) {
        if (read_sample(s.c, &x) && x.pending == 0 && backlog(&x, &s.base) == 0) {
            t_learned = base_mono_ns();
            drained = true;
            break;
        }
        nap_ms(SAMPLE_MS / 5); /* finer here: this time is the result */
    }
    base_buf_fini(&req);

    double learned_ms = drained ? (double)(t_learned - t_stop) / 1e6 : -1.0;
    uint64_t decided = x.decisions - s.base.decisions;
    printf("{\"inflight\":%ld,\"seconds\":%ld,\"window_ms\":%ld,\"decided\":%" PRIu64
           ",\"decide_per_s\":%.0f,\"decide_errors\":%" PRIu64 ",\"unlogged\":%" PRIu64
           ",\"overflow\":%" PRIu64 ",\"max_backlog\":%" PRIu64 ",\"max_queue\":%" PRIu64
           ",\"backlog_at_stop\":%" PRIu64 ",\"learned_ms\":%.0f,\"lag_ms\":%.0f,"
           "\"drained\":%s}\n",
           inflight, seconds, window_ms, decided, r.per_s, r.errors, x.unlogged - s.base.unlogged,
           x.overflow - s.base.overflow, s.max_backlog, s.max_queue,
           have_stop ? backlog(&at_stop, &s.base) : 0, learned_ms,
           drained ? learned_ms - (double)window_ms : -1.0, drained ? "true" : "false");
    rlfeed_client_close(s.c);
    bench_net_fini();
    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed-bench-pace: load: %s\n", base_strerror(e));
    }
    return e == BASE_OK && r.errors == 0 && drained && s.errors == 0 ? 0 : 1;
}
