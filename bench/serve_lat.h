#ifndef BENCH_SERVE_LAT_H
#define BENCH_SERVE_LAT_H

/*
 * Latency samples and the result of one measured point of `rlfeed bench serve`.
 *
 * A bench_lat is one writer's growable array of latencies (ns, monotonic
 * clock). Each load-generator slot owns one and is the only thread writing it;
 * bench_lat_summarise() merges several after the slots are idle. Past
 * BENCH_LAT_MAX samples per array, samples are counted but not kept, so the
 * quantiles then describe the first BENCH_LAT_MAX of each slot.
 *
 * Quantiles are the nearest rank: the smallest sample with at least q·n samples
 * at or below it.
 */

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define BENCH_LAT_MAX (1u << 22) /* samples kept per array */
#define BENCH_ERRTEXT_MAX 160    /* bytes of bench_result.first_error, NUL included */

typedef struct bench_lat {
    uint64_t *ns;
    size_t n, cap;
} bench_lat;

/* The outcome of one measured point (one side: rlfeedd or its ceiling). */
typedef struct bench_result {
    uint64_t done;   /* operations completed inside the measured window */
    uint64_t sent;   /* PUSH: messages handed to nng over the whole run, warm-up included */
    uint64_t errors; /* failed operations: transport errors and error replies */
    double seconds;  /* length of the measured window */
    double per_s;    /* done / seconds */
    double p50_ms;   /* latency quantiles of the operations in the window */
    double p99_ms;
    double p999_ms;
    char first_error[BENCH_ERRTEXT_MAX]; /* "" if none */
} bench_result;

/* Sort @v [n] (latencies in ns) ascending. */
void bench_sort_ns(uint64_t *v, size_t n);
/* The nearest-rank q-quantile (0 < q <= 1) of the sorted @v [n], in ms; 0 when n = 0. */
double bench_quantile_ms(const uint64_t *v, size_t n, double q);

/* bench_lat_add() - keep @ns (dropped past BENCH_LAT_MAX or when out of memory). */
void bench_lat_add(bench_lat *l, uint64_t ns);

/* bench_lat_fini() - free the samples. Accepts a zeroed bench_lat. */
void bench_lat_fini(bench_lat *l);

/*
 * bench_lat_summarise() - sort the samples of @n_lats arrays (borrowed) into @out's
 * p50_ms, p99_ms and p999_ms (0 when there are none).
 * Return: BASE_OK; BASE_ENOMEM (the quantiles are then left as they were).
 */
base_err bench_lat_summarise(const bench_lat *lats, size_t n_lats, bench_result *out);

#endif
