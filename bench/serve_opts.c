#include "bench/serve_opts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/record.h"
#include "bench/serve_net.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rlfeed bench serve [options]\n"
            "  rlfeedd against the raw ceilings it is built on (docs/benchmarks.md):\n"
            "  decide (vs an nng REP echo), decide + acknowledged feedback (vs pipelined\n"
            "  XADD into Redis, plain and in transactions), PUSH feedback (vs an nng PULL\n"
            "  sink).\n"
            "  --only LIST        decide,pair,push,half (default all; half: decide paced\n"
            "                     at half of rlfeedd's decide rate, both sides; needs decide)\n"
            "  --dim LIST         embedding lengths (default 64,768)\n"
            "  --inflight LIST    requests in flight: independent client connections\n"
            "                     with one request outstanding each (default 1,8,32)\n"
            "  --transport LIST   ipc,tcp (default both)\n"
            "  --fsync LIST       Redis appendfsync for pair: always,everysec (default both;\n"
            "                     decide and push run once, with the first)\n"
            "  --seconds N        measured seconds per point and side (default 3)\n"
            "  --warmup-ms N      excluded warm-up before each (default 500)\n"
            "  --runs N           repeat each point, report medians (1..%d, default 1)\n"
            "  --contexts N       rlfeedd's and the echo's REP contexts (default 128)\n"
            "  --events N         push: decisions the feedback is spread over (default 131072)\n"
            "  --timeout-ms N     bound on each send and receive (default 5000)\n"
            "  --rlfeedd PATH     default $RLFEEDD, else build/service/rlfeedd\n"
            "Prints a table, then one JSON object as the last line. Needs redis-server on\n"
            "PATH. Exit status: 0 ok, 1 failure, 2 usage.\n",
            BENCH_RUNS_MAX);
}

static bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0 || s[0] == '-' || v < lo || v > hi) {
        return false;
    }
    *out = v;
    return true;
}

/* A comma-separated list of numbers in [lo, hi] into @out (at most BENCH_LIST_MAX). */
static bool parse_u32_list(const char *s, uint32_t lo, uint32_t hi, uint32_t *out, uint32_t *out_n)
{
    char item[32];
    uint32_t n = 0;
    while (*s != '\0') {
        size_t k = strcspn(s, ",");
        uint64_t v = 0;
        if (k == 0 || k >= sizeof(item) || n == BENCH_LIST_MAX) {
            return false;
        }
        memcpy(item, s, k);
        item[k] = '\0';
        if (!parse_u64(item, lo, hi, &v)) {
            return false;
        }
        out[n++] = (uint32_t)v;
        s += k;
        s += *s == ',' ? 1 : 0;
    }
    *out_n = n;
    return n > 0;
}

/* A comma-separated list of names out of @names[n_names] into @out (static strings). */
static bool parse_names(const char *s, const char *const *names, uint32_t n_names, const char **out,
                        uint32_t *out_n)
{
    uint32_t n = 0;
    while (*s != '\0') {
        size_t k = strcspn(s, ",");
        bool found = false;
        for (uint32_t i = 0; i < n_names && !found; i++) {
            found = strlen(names[i]) == k && strncmp(s, names[i], k) == 0;
            if (found) {
                for (uint32_t j = 0; j < n; j++) {
                    found = found && out[j] != names[i]; /* a repeat is an error */
                }
                if (!found || n == n_names) {
                    return false;
                }
                out[n++] = names[i];
            }
        }
        if (!found) {
            return false;
        }
        s += k;
        s += *s == ',' ? 1 : 0;
    }
    *out_n = n;
    return n > 0;
}

int bench_opts_parse(int argc, char **argv, bench_opts *o)
{
    static const char *const kinds[] = {"decide", "pair", "push", "half"};
    static const char *const transports[] = {"ipc", "tcp"};
    static const char *const fsyncs[] = {"always", "everysec", "no"};
    const char *env_bin = getenv("RLFEEDD");
    *o = (bench_opts){.kind = {true, true, true, true},
                      .dims = {64, 768},
                      .n_dims = 2,
                      .inflight = {1, 8, 32},
                      .n_inflight = 3,
                      .transports = {"ipc", "tcp"},
                      .n_transports = 2,
                      .fsyncs = {"always", "everysec"},
                      .n_fsyncs = 2,
                      .seconds = 3,
                      .warmup_ms = 500,
                      .runs = 1,
                      .contexts = 128,
                      .events = 131072,
                      .timeout_ms = 5000,
                      .rlfeedd = env_bin != NULL && env_bin[0] != '\0' ? env_bin
                                                                       : "build/service/rlfeedd"};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n = 0;
        bool ok = v != NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        } else if (strcmp(a, "--only") == 0 && ok) {
            const char *picked[BENCH_KINDS];
            uint32_t n_picked = 0;
            ok = parse_names(v, kinds, BENCH_KINDS, picked, &n_picked);
            for (uint32_t k = 0; ok && k < BENCH_KINDS; k++) {
                o->kind[k] = false;
                for (uint32_t j = 0; j < n_picked; j++) {
                    o->kind[k] = o->kind[k] || picked[j] == kinds[k];
                }
            }
        } else if (strcmp(a, "--dim") == 0 && ok) {
            ok = parse_u32_list(v, 1, BASE_DIM_MAX, o->dims, &o->n_dims);
        } else if (strcmp(a, "--inflight") == 0 && ok) {
            ok = parse_u32_list(v, 1, BENCH_INFLIGHT_MAX, o->inflight, &o->n_inflight);
        } else if (strcmp(a, "--transport") == 0 && ok) {
            ok = parse_names(v, transports, 2, o->transports, &o->n_transports);
        } else if (strcmp(a, "--fsync") == 0 && ok) {
            ok = parse_names(v, fsyncs, 3, o->fsyncs, &o->n_fsyncs);
        } else if (strcmp(a, "--seconds") == 0 && ok) {
            ok = parse_u64(v, 1, 600, &o->seconds);
        } else if (strcmp(a, "--warmup-ms") == 0 && ok) {
            ok = parse_u64(v, 0, 60000, &o->warmup_ms);
        } else if (strcmp(a, "--runs") == 0 && ok && parse_u64(v, 1, BENCH_RUNS_MAX, &n)) {
            o->runs = (uint32_t)n;
        } else if (strcmp(a, "--contexts") == 0 && ok && parse_u64(v, 1, 256, &n)) {
            o->contexts = (uint32_t)n;
        } else if (strcmp(a, "--events") == 0 && ok && parse_u64(v, 1, BENCH_EVENTS_MAX, &n)) {
            o->events = (uint32_t)n;
        } else if (strcmp(a, "--timeout-ms") == 0 && ok && parse_u64(v, 10, 600000, &n)) {
            o->timeout_ms = (int)n;
        } else if (strcmp(a, "--rlfeedd") == 0 && ok && v[0] != '\0') {
            o->rlfeedd = v;
        } else {
            ok = false;
        }
        if (!ok) {
            if (v == NULL || strncmp(a, "--", 2) != 0) {
                fprintf(stderr, "rlfeed bench serve: bad argument '%s'\n", a);
            } else {
                fprintf(stderr, "rlfeed bench serve: bad value '%s' for %s\n", v, a);
            }
            usage(stderr);
            return 2;
        }
        i++;
    }
    /* Each dimension gets a policy "d<dim>"; a repeated one would be two points alike. */
    for (uint32_t i = 0; i < o->n_dims; i++) {
        for (uint32_t j = 0; j < i; j++) {
            if (o->dims[i] == o->dims[j]) {
                fprintf(stderr, "rlfeed bench serve: --dim %u given twice\n", o->dims[i]);
                return 2;
            }
        }
    }
    if (access(o->rlfeedd, X_OK) != 0) {
        fprintf(stderr, "rlfeed bench serve: %s: not an executable (--rlfeedd or $RLFEEDD)\n",
                o->rlfeedd);
        return 2;
    }
    return 0;
}

bool bench_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0 || v < lo || v > hi) {
        return false;
    }
    *out = v;
    return true;
}
