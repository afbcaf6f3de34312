#ifndef BENCH_SERVE_OPTS_H
#define BENCH_SERVE_OPTS_H

/*
 * The options of `rlfeed bench serve` (bench/serve.h): parsed once, then
 * read-only. Lists are comma separated ("--dim 64,768"); a repeated entry, an
 * unknown name, a number out of range or a missing value is a usage error.
 */

#include <stdbool.h>
#include <stdint.h>

#include "bench/serve_report.h"

#define BENCH_LIST_MAX 8            /* entries of each list option */
#define BENCH_EVENTS_MAX (1u << 20) /* --events */

typedef struct bench_opts {
    bool kind[BENCH_KINDS];
    uint32_t dims[BENCH_LIST_MAX], n_dims;
    uint32_t inflight[BENCH_LIST_MAX], n_inflight;
    const char *transports[2];
    uint32_t n_transports;
    const char *fsyncs[3];
    uint32_t n_fsyncs;
    uint64_t seconds, warmup_ms;
    uint32_t runs, contexts, events;
    int timeout_ms;
    const char *rlfeedd;
} bench_opts;

/*
 * bench_opts_parse() - parse @argv (after "serve") into @o; defaults for what is absent.
 * Return: 0; 1 after printing the usage for --help; 2 after printing a usage error.
 */
int bench_opts_parse(int argc, char **argv, bench_opts *o);

/* Whether @s is a whole decimal number in [@lo, @hi]; then *out is it (the small benches). */
bool bench_parse_long(const char *s, long lo, long hi, long *out);

#endif
