#ifndef SERVICE_OBSERVE_H
#define SERVICE_OBSERVE_H

/*
 * What the engine observes for the /metrics endpoint beyond the stats op's
 * counters: request latency histograms per op, and the OPE-readiness of each
 * policy's live log over a sliding window.
 *
 * Latency (svc_lat): one histogram per op, from the start of handling a
 * request to its reply being handed to nng. Buckets are upper bounds in
 * seconds, SVC_LAT_BOUNDS_S below (50 us to 1 s), plus +Inf. Recording is
 * one relaxed atomic add on a bucket and one on the sum: no lock, no
 * allocation. A reader sees each counter exactly but not all at one instant,
 * so svc_lat_read() derives the count from the buckets it read (the
 * exposition's +Inf bucket always equals its _count).
 *
 * OPE-readiness (svc_ope_window): for each decide, the importance weight of
 * the online head against the logged pmf, w = p_online(chosen) /
 * p_logged(chosen), and the logged propensity p_logged(chosen). The window
 * keeps SVC_OPE_WINDOW_S one-second buckets on the monotonic clock; a bucket
 * is reused (cleared) when its second comes round again. A read over the
 * last SVC_OPE_WINDOW_S seconds gives n, the effective sample size
 * ESS = (sum w)^2 / sum w^2 (Kong 1992; Owen, "Monte Carlo theory", 9.3) and
 * the minimum propensity. The window has its own mutex, a leaf lock never
 * held with another; it is taken once per decide, for a few additions.
 *
 * Threads: svc_lat_observe() and svc_ope_add() from any thread (nng
 * callbacks, the writer); the readers from any thread.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define SVC_LAT_OPS                                                                                \
    8 /* proto_op values: decide, log, feedback, stats, health, activate, clock, explain */
#define SVC_LAT_BUCKETS 14 /* finite bounds; bucket SVC_LAT_BUCKETS is +Inf */
#define SVC_OPE_WINDOW_S 60

/* Upper bounds of the latency buckets, in seconds (le="..." in the exposition). */
#define SVC_LAT_BOUNDS_S                                                                           \
    {                                                                                              \
        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, \
            1.0                                                                                    \
    }

typedef struct svc_lat {
    atomic_uint_fast64_t bucket[SVC_LAT_OPS][SVC_LAT_BUCKETS + 1]; /* not cumulative */
    atomic_uint_fast64_t sum_ns[SVC_LAT_OPS];
} svc_lat;

/* A copy of the histograms, for the exposition. */
typedef struct svc_lat_reading {
    uint64_t bucket[SVC_LAT_OPS][SVC_LAT_BUCKETS + 1]; /* not cumulative */
    uint64_t count[SVC_LAT_OPS];                       /* sum of bucket[op] */
    double sum_s[SVC_LAT_OPS];
} svc_lat_reading;

/* Zero @l (caller's storage). */
void svc_lat_init(svc_lat *l);
/* Count one request of op @op (a proto_op; others are ignored) that took @ns. */
void svc_lat_observe(svc_lat *l, uint32_t op, uint64_t ns);
void svc_lat_read(const svc_lat *l, svc_lat_reading *out);

/*
 * svc_lat_quantile() - the @q-quantile (0 <= q <= 1), in seconds, of the
 * requests counted in @bucket (one op's buckets, not cumulative; e.g. the
 * difference of two readings), interpolated linearly within the bucket that
 * holds it as Prometheus's histogram_quantile() does: the first bucket
 * starts at 0, and a quantile in the +Inf bucket is the largest finite
 * bound (1 s). NaN when @bucket counts nothing.
 */
double svc_lat_quantile(const uint64_t bucket[SVC_LAT_BUCKETS + 1], double q);

typedef struct svc_ope_bucket {
    uint64_t sec; /* monotonic second this bucket counts; 0: never used */
    uint64_t n;
    double sum_w, sum_w2;
    double min_p;
} svc_ope_bucket;

typedef struct svc_ope_window {
    pthread_mutex_t lk;
    svc_ope_bucket b[SVC_OPE_WINDOW_S]; /* guarded by lk; bucket of second s at s % size */
} svc_ope_window;

/* The window's summary: n = 0 gives ess = 0 and min_propensity = 0. */
typedef struct svc_ope_reading {
    uint64_t n;
    double ess;
    double min_propensity;
} svc_ope_reading;

void svc_ope_init(svc_ope_window *w);
void svc_ope_fini(svc_ope_window *w); /* accepts a zeroed window */
/*
 * svc_ope_add() - count one decision at monotonic time @now_ns with weight @w
 * (>= 0) and logged propensity @p_logged (in (0, 1]).
 */
void svc_ope_add(svc_ope_window *w, uint64_t now_ns, double weight, double p_logged);
/* Summarise the SVC_OPE_WINDOW_S seconds up to @now_ns into @out. */
void svc_ope_read(svc_ope_window *w, uint64_t now_ns, svc_ope_reading *out);

#endif
