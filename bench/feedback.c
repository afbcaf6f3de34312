/*
 * rlfeed-bench-feedback: throughput and latency of acknowledged feedback
 * against a running rlfeedd (docs/benchmarks.md, "Acknowledged feedback and
 * appendfsync"; bench/fsync_bench.sh runs it for each appendfsync setting).
 *
 * T threads, each with its own REQ client, repeat for S seconds: decide
 * among 4 candidates of policy "bench" (dim 4, as bench/feedback.ini
 * configures it), then send acknowledged feedback for that decision with a
 * unique outcome_id and time it, from send to reply. rlfeedd answers
 * feedback only once Redis has stored the outcome, so with appendfsync
 * always the latency includes Redis's fsync.
 *
 * Output, one JSON line on stdout:
 *   {"threads":4,"seconds":10.0,"acked":41234,"acked_per_s":4123,
 *    "errors":0,"p50_ms":0.81,"p90_ms":1.30,"p99_ms":2.90,"max_ms":15.20}
 *
 * With --policies N > 1, thread t uses policy "bench<t mod N>" (bench/cluster_bench.sh: the
 * policies spread over a Redis Cluster's masters); each must be configured like "bench".
 * --url may list n daemons, comma-separated: thread t talks to the (t mod n)-th, or with
 * --policies N > 1 to the ((t mod N) mod n)-th: daemon k serves the policies bench<i> with
 * i mod n = k (bench/cluster_bench.sh --instances). With --any-instance, thread t talks to
 * the (t mod n)-th whatever its policy: every daemon serves every policy (shared = on,
 * bench/cluster_bench.sh --shared on), and a follower answers feedback "accepted".
 *
 * Usage: rlfeed-bench-feedback --url URL[,URL...] [--threads T] [--seconds S] [--policies N]
 *                              [--any-instance]
 * Exit status: 0; 1 if any request failed; 2 for usage errors or no
 * connection at start.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/serve_lat.h"
#include "bench/serve_opts.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "client/rlfeed_client.h"

#define THREADS_MAX 256
#define SECONDS_MAX 3600
#define SAMPLES_MAX (1u << 24) /* per thread; later samples are counted, not kept */
#define DIM 4
#define K 4

static const float X[DIM] = {0.25f, -0.5f, 0.75f, 0.1f};
static const char *const IDS[K] = {"a0", "a1", "a2", "a3"};
static const float LOGITS[K] = {0.1f, 0.2f, 0.3f, 0.4f};

#define POLICIES_MAX 64
#define URLS_MAX 16

typedef struct worker {
    char url[512];
    char policy[32];
    int idx;
    uint64_t end_ns;
    uint64_t *ns; /* feedback latencies */
    size_t n, cap;
    uint64_t acked;
    uint64_t errors;
} worker;

static void keep(worker *w, uint64_t ns)
{
    if (w->n == w->cap && w->cap < SAMPLES_MAX) {
        size_t cap = w->cap == 0 ? 4096 : w->cap * 2;
        uint64_t *g = base_realloc_array(w->ns, cap, sizeof(*g));
        if (g != NULL) {
            w->ns = g;
            w->cap = cap;
        }
    }
    if (w->n < w->cap) {
        w->ns[w->n++] = ns;
    }
}

/* Count a failed request; the first few are printed on stderr. */
static void note_error(worker *w, const char *what, base_err e, const rlfeed_reply *r)
{
    if (w->errors++ < 5) {
        fprintf(stderr, "rlfeed-bench-feedback: thread %d: %s: %s\n", w->idx, what,
                e != BASE_OK ? base_strerror(e) : r->error.message);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    rlfeed_client *c = NULL;
    if (rlfeed_client_open(w->url, 30000, &c) != BASE_OK) {
        w->errors++;
        return NULL;
    }
    for (uint64_t i = 0; base_mono_ns() < w->end_ns; i++) {
        rlfeed_reply r;
        char oid[64], ev[BASE_ID_MAX + 1];
        base_err e = rlfeed_client_decide(c, w->policy, NULL, X, DIM, K, IDS, LOGITS, &r);
        if (e != BASE_OK || !r.ok) {
            note_error(w, "decide", e, &r);
            continue;
        }
        snprintf(ev, sizeof(ev), "%s", r.event_id);
        snprintf(oid, sizeof(oid), "b-%d-%" PRIu64, w->idx, i);
        uint64_t t0 = base_mono_ns();
        e = rlfeed_client_feedback(c, w->policy, ev, "resolved", 1.0, oid, &r);
        uint64_t t1 = base_mono_ns();
        if (e != BASE_OK || !r.ok) {
            note_error(w, "feedback", e, &r);
            continue;
        }
        w->acked++;
        keep(w, t1 - t0);
    }
    rlfeed_client_close(c);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *url = NULL;
    long threads = 4, seconds = 10, policies = 1;
    bool any_instance = false;
    for (int i = 1; i < argc; i++) {
        bool has = i + 1 < argc;
        if (strcmp(argv[i], "--url") == 0 && has) {
            url = argv[++i];
        } else if (strcmp(argv[i], "--any-instance") == 0) {
            any_instance = true;
        } else if (strcmp(argv[i], "--threads") == 0 && has &&
                   bench_parse_long(argv[i + 1], 1, THREADS_MAX, &threads)) {
            i++;
        } else if (strcmp(argv[i], "--seconds") == 0 && has &&
                   bench_parse_long(argv[i + 1], 1, SECONDS_MAX, &seconds)) {
            i++;
        } else if (strcmp(argv[i], "--policies") == 0 && has &&
                   bench_parse_long(argv[i + 1], 1, POLICIES_MAX, &policies)) {
            i++;
        } else {
            fprintf(stderr,
                    "usage: rlfeed-bench-feedback --url URL[,URL...] [--threads 1..%d] "
                    "[--seconds 1..%d] [--policies 1..%d] [--any-instance]\n",
                    THREADS_MAX, SECONDS_MAX, POLICIES_MAX);
            return 2;
        }
    }
    if (url == NULL) {
        fprintf(stderr, "rlfeed-bench-feedback: --url is required\n");
        return 2;
    }
    char urls[URLS_MAX][512];
    int n_urls = 0;
    for (const char *u = url; n_urls < URLS_MAX;) {
        size_t n = strcspn(u, ",");
        if (n == 0 || n >= sizeof(urls[0])) {
            fprintf(stderr, "rlfeed-bench-feedback: bad --url list\n");
            return 2;
        }
        memcpy(urls[n_urls], u, n);
        urls[n_urls++][n] = '\0';
        if (u[n] == '\0') {
            break;
        }
        u += n + 1;
    }
    worker *ws = base_alloc_zero((size_t)threads, sizeof(*ws));
    pthread_t *th = base_alloc_zero((size_t)threads, sizeof(*th));
    if (ws == NULL || th == NULL) {
        fprintf(stderr, "rlfeed-bench-feedback: out of memory\n");
        return 2;
    }
    uint64_t start = base_mono_ns();
    long started = 0;
    for (long t = 0; t < threads; t++) {
        /* With several policies, each daemon serves those of its index modulo the count. */
        long at = policies > 1 && !any_instance ? (t % policies) % n_urls : t % n_urls;
        snprintf(ws[t].url, sizeof(ws[t].url), "%s", urls[at]);
        if (policies > 1) {
            snprintf(ws[t].policy, sizeof(ws[t].policy), "bench%ld", t % policies);
        } else {
            snprintf(ws[t].policy, sizeof(ws[t].policy), "bench");
        }
        ws[t].idx = (int)t;
        ws[t].end_ns = start + (uint64_t)seconds * 1000000000u;
        if (pthread_create(&th[t], NULL, worker_main, &ws[t]) != 0) {
            break;
        }
        started++;
    }
    uint64_t acked = 0, errors = started < threads, n = 0;
    for (long t = 0; t < started; t++) {
        pthread_join(th[t], NULL);
        acked += ws[t].acked;
        errors += ws[t].errors;
        n += ws[t].n;
    }
    double secs = (double)(base_mono_ns() - start) / 1e9;
    uint64_t *all = base_alloc_array(n > 0 ? n : 1, sizeof(*all));
    size_t k = 0;
    for (long t = 0; t < started && all != NULL; t++) {
        memcpy(all + k, ws[t].ns, ws[t].n * sizeof(*all));
        k += ws[t].n;
    }
    if (all != NULL) {
        bench_sort_ns(all, k);
    }
    printf("{\"threads\":%ld,\"policies\":%ld,\"instances\":%d,\"seconds\":%.1f,\"acked\":%" PRIu64
           ",\"acked_per_s\":%.0f,"
           "\"errors\":%" PRIu64 ",\"p50_ms\":%.2f,\"p90_ms\":%.2f,\"p99_ms\":%.2f,"
           "\"max_ms\":%.2f}\n",
           threads, policies, n_urls, secs, acked, (double)acked / secs, errors,
           bench_quantile_ms(all, k, 0.50), bench_quantile_ms(all, k, 0.90),
           bench_quantile_ms(all, k, 0.99), bench_quantile_ms(all, k, 1.0));
    for (long t = 0; t < threads; t++) {
        base_free(ws[t].ns);
    }
    base_free(all);
    base_free(ws);
    base_free(th);
    rlfeed_client_lib_fini();
    return errors > 0 ? 1 : 0;
}
