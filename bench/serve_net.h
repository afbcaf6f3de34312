#ifndef BENCH_SERVE_NET_H
#define BENCH_SERVE_NET_H

/*
 * The nng side of `rlfeed bench serve`: the load generator and the two raw
 * nng ceilings (a REP echo server and a PULL sink). This is the only file of
 * the benchmark that includes nng.h.
 *
 * Load generator (bench_load_run): @inflight independent client sockets, one
 * connection and one operation outstanding each — N synchronous frontends
 * using the C client, as closed loops — driven asynchronously by nng aio
 * callbacks so that the generator needs no thread per slot. Kinds:
 *   DECIDE  REQ: send the decide request, wait for its reply (decoded; an error
 *           reply counts as an error). Latency: send to reply.
 *   PAIR    REQ: decide, then acknowledged feedback for the event id it
 *           returned (unique outcome_id), as one operation. Latency: decide
 *           sent to feedback reply.
 *   PUSH    PUSH: one feedback message per operation for event ids taken
 *           round robin from @event_ids (unique outcome_id). Latency: until
 *           nng has handed the message to the connection (backpressure);
 *           fire-and-forget has no reply.
 * Paced runs (rate_per_s > 0) schedule operations at a fixed rate instead.
 * Each slot loops from start to start + warmup + seconds; operations that
 * complete inside [start + warmup, end) count and give latencies (monotonic
 * clock). Latency is per operation of one slot, so it includes no queueing
 * inside the generator.
 *
 * Ceilings: bench_echo answers every request on @contexts REP contexts with a
 * fixed reply (the bytes of a real decide reply); bench_sink receives on a
 * PULL socket with one receive outstanding, as rlfeedd's PULL socket does, and
 * counts. Both run in this process, on nng's threads.
 *
 * Thread-safety: each object belongs to the thread that opened it;
 * bench_sink_count() may be called from any thread.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "bench/serve_lat.h"

#define BENCH_INFLIGHT_MAX 256   /* client slots of one load run */
#define BENCH_MAX_MSG (1u << 20) /* NNG_OPT_RECVMAXSZ of every socket here */

typedef enum bench_load_kind {
    BENCH_LOAD_DECIDE,
    BENCH_LOAD_PAIR,
    BENCH_LOAD_PUSH
} bench_load_kind;

/* What to run; every pointer is borrowed for the length of bench_load_run(). */
typedef struct bench_load_spec {
    bench_load_kind kind;
    const char *url;              /* REQ (DECIDE, PAIR) or PULL (PUSH) endpoint */
    uint32_t inflight;            /* 1..BENCH_INFLIGHT_MAX client slots */
    const uint8_t *decide_req;    /* DECIDE, PAIR: an encoded decide request */
    size_t decide_len;            /*   (without event_id: the service makes one) */
    const char *policy;           /* PAIR, PUSH: the feedback's policy */
    const char *signal;           /* PAIR, PUSH: the feedback's signal */
    const char *const *event_ids; /* PUSH: [n_events] decided event ids */
    uint32_t n_events;
    const char *tag;     /* outcome ids are "<tag>-<slot>-<n>": unique per run */
    uint64_t warmup_ms;  /* excluded from the measurement */
    uint64_t measure_ms; /* the measured window */
    int timeout_ms;      /* bound on each send and each receive */
    uint64_t push_max;   /* PUSH: stop after this many messages in all (0: none) */
    /*
     * 0: closed loops, each slot starting its next operation when one completes. Else
     * paced (DECIDE only): operations are scheduled at this many per second in all, each
     * slot in turn at rate / inflight; a slot that is behind its schedule starts at once,
     * and latency counts from the scheduled time (the wait for a free slot included).
     */
    double rate_per_s;
} bench_load_spec;

/*
 * bench_load_run() - run @spec and fill @out (done, sent, errors, seconds, per_s,
 * quantiles, first_error). Blocks for warmup + measure plus the last operations.
 * Return: BASE_OK (even if operations failed: see out->errors); BASE_EINVAL for a bad
 *         spec or URL; BASE_ENOMEM; BASE_EIO if nng cannot open a socket.
 */
base_err bench_load_run(const bench_load_spec *spec, bench_result *out);

typedef struct bench_echo bench_echo;

/*
 * bench_echo_open() - listen on @url with a REP socket and @contexts contexts that
 * answer every request with @reply (copied).
 * Return: BASE_OK and *out; BASE_EINVAL; BASE_ENOMEM; BASE_EIO (cannot listen: the
 *         reason is in @errbuf).
 */
base_err bench_echo_open(const char *url, uint32_t contexts, const uint8_t *reply, size_t reply_len,
                         bench_echo **out, char *errbuf, size_t errlen);

/* bench_echo_close() - stop answering, close and free. Accepts NULL. */
void bench_echo_close(bench_echo *e);

typedef struct bench_sink bench_sink;

/* bench_sink_open() - listen on @url with a PULL socket that counts messages. As above. */
base_err bench_sink_open(const char *url, bench_sink **out, char *errbuf, size_t errlen);

/* bench_sink_count() - messages received so far. */
uint64_t bench_sink_count(bench_sink *s);

/* bench_sink_close() - close and free. Accepts NULL. */
void bench_sink_close(bench_sink *s);

/* bench_net_fini() - release nng's process-wide state; after every socket is closed. */
void bench_net_fini(void);

#endif
