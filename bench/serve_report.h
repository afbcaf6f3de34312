#ifndef BENCH_SERVE_REPORT_H
#define BENCH_SERVE_REPORT_H

/*
 * The results of `rlfeed bench serve` and how they are printed: a table for
 * people, then one JSON object on the last line for scripts
 * (bench/serve_plot.py). Each point is one measurement (kind, transport,
 * dim, requests in flight, appendfsync) of rlfeedd and of its ceiling, each
 * repeated n_runs times; the report shows the median of each number over the
 * runs, and the ratio rlfeedd / ceiling of the medians.
 *
 * JSON, one line (numbers abridged):
 *   {"bench":"serve","date":"2026-12-03T10:00:00Z","machine":{...},"seconds":3,
 *    "warmup_ms":500,"runs":3,"contexts":32,"k":16,
 *    "sizes":[{"dim":64,"decide_request":...,"decide_reply":...,...}],
 *    "points":[{"kind":"decide","transport":"ipc","dim":64,"inflight":8,
 *               "appendfsync":"always","rlfeedd":{"per_s":..,"p50_ms":..,"p99_ms":..,
 *               "p999_ms":..,"errors":0,"runs":[{...}]},"ceiling":{...},
 *               "ratio":{"per_s":0.41,"p50":2.3,"p99":2.9}}]}
 * PUSH points add "push":{"sent":..,"counted":..,"matched":..,"dropped":..,
 * "ceiling_sent":..,"ceiling_received":..} (totals over the runs). PAIR points
 * add "ceiling_tx" (the same XADDs in transactions, bench/serve_redis.h) and
 * its ratio "per_s_tx" under "ratio".
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/err.h"
#include "bench/serve_lat.h"
#include "proto/errors.h"
#include "proto/reply.h"

#define BENCH_RUNS_MAX 9

/* HALF: decide, both sides paced at half rlfeedd's median decide rate at that point. */
typedef enum bench_kind {
    BENCH_DECIDE,
    BENCH_PAIR,
    BENCH_PUSH,
    BENCH_HALF,
    BENCH_KINDS
} bench_kind;

/* Message and record sizes at one embedding dimension, bytes (0: not measured). */
typedef struct bench_sizes {
    uint32_t dim;
    size_t decide_request;
    size_t decide_reply;
    size_t feedback_request;
    size_t decision_record; /* field "r" of rlfeedd's decision stream entry */
    size_t outcome_record;  /* field "r" of rlfeedd's outcome stream entry */
} bench_sizes;

/* One side of a point: its runs. */
typedef struct bench_side {
    bench_result run[BENCH_RUNS_MAX];
    uint32_t n_runs;
} bench_side;

typedef struct bench_point {
    bench_kind kind;
    const char *transport; /* "ipc" or "tcp" (static) */
    uint32_t dim;
    uint32_t inflight;
    const char *fsync; /* the appendfsync of the Redis behind rlfeedd (static) */
    double rate_per_s; /* HALF: the paced rate of both sides */
    bench_side rl, ceil;
    bench_side ceil_tx; /* PAIR: the ceiling in transactions (bench/serve_redis.h) */
    /* PUSH, totals over the runs */
    uint64_t sent;    /* PUSHed to rlfeedd */
    uint64_t counted; /* of which rlfeedd's stats counted (any status or refusal) */
    uint64_t matched; /* of which matched */
    uint64_t by_status[PROTO_ST_COUNT]; /* counted, by join status */
    uint64_t refused[PROTO_E_COUNT];    /* counted, by refusal code */
    uint64_t ceil_sent;                 /* PUSHed to the sink */
    uint64_t ceil_received;             /* of which the sink received */
} bench_point;

/* What the report says about the run itself. */
typedef struct bench_meta {
    char date[32];                     /* UTC, ISO 8601 */
    char cpu[128];                     /* "model name" of /proc/cpuinfo */
    long cpus;                         /* online */
    char load_start[64], load_end[64]; /* /proc/loadavg's first three fields */
    uint64_t seconds, warmup_ms;
    uint32_t runs, contexts, k;
} bench_meta;

/* bench_meta_probe() - fill @m's date, cpu, cpus and load_start (now). */
void bench_meta_probe(bench_meta *m);

/* bench_meta_load() - /proc/loadavg's first three fields into @out ("?" if unreadable). */
void bench_meta_load(char *out, size_t len);

/* bench_side_median_rate() - the median operations per second of @s's runs (0: none). */
double bench_side_median_rate(const bench_side *s);

/* bench_kind_name() - "decide", "pair", "push" or "half". */
const char *bench_kind_name(bench_kind k);

/* bench_report_table() - the human-readable table of @pts (borrowed) to @f. */
void bench_report_table(FILE *f, const bench_point *pts, size_t n_pts, const bench_sizes *sizes,
                        size_t n_sizes);

/*
 * bench_report_json() - the JSON object above, on one line, to @f.
 * Return: BASE_OK; BASE_ENOMEM; BASE_EIO if it could not be written.
 */
base_err bench_report_json(FILE *f, const bench_meta *m, const bench_point *pts, size_t n_pts,
                           const bench_sizes *sizes, size_t n_sizes);

#endif
