#ifndef BENCH_SERVE_REDIS_H
#define BENCH_SERVE_REDIS_H

/*
 * The Redis side of `rlfeed bench serve`: the ceiling of decide + acknowledged
 * feedback (pipelined XADD of two records per pair, of the sizes rlfeedd's
 * decision and outcome records have), and reading those sizes back from
 * rlfeedd's streams. This is the only file of the benchmark that includes
 * hiredis.h.
 *
 * Pair ceiling: one connection keeps @inflight pairs in flight (2 x @inflight
 * XADD commands pipelined): "XADD <key_a> * r <len_a bytes>" then "XADD <key_b>
 * * r <len_b bytes>"; a pair completes when both replies are in, and a new
 * pair is appended at once. Latency: pair appended to its second reply.
 *
 * Transaction ceiling (@tx): the same pairs, @inflight of them in one MULTI ...
 * EXEC, one transaction at a time (as rlfeedd's writer sends what accumulated
 * in one transaction on a single Redis: storage.md, section 4); every pair of
 * it completes with EXEC's reply. Redis applies a transaction in one pass of
 * its event loop, so with appendfsync always it pays one fsync for the batch,
 * where plain pipelined commands pay one per 16 KB Redis reads.
 *
 * The streams are written with ids chosen by Redis, without MAXLEN; the caller
 * deletes them.
 *
 * Not thread-safe: one bench_redis per thread.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "bench/serve_lat.h"

#define BENCH_RECORD_MAX (1u << 20) /* bytes of one ceiling record */

typedef struct bench_redis bench_redis;

/*
 * bench_redis_open() - connect to @url ("unix:/path" or "tcp://127.0.0.1:PORT", as
 * sto_server_url() gives) with a @timeout_ms bound on each command.
 * Return: BASE_OK and *out; BASE_EINVAL for another URL; BASE_EIO (reason in @errbuf);
 *         BASE_ENOMEM.
 */
base_err bench_redis_open(const char *url, int timeout_ms, bench_redis **out, char *errbuf,
                          size_t errlen);

/* bench_redis_close() - disconnect and free. Accepts NULL. */
void bench_redis_close(bench_redis *r);

/*
 * bench_redis_last_len() - the length of field "r" of the newest entry of stream @key.
 * Return: BASE_OK and *out_len (0 if the stream is empty or has no field "r");
 *         BASE_EIO; BASE_ESTORE for an error reply.
 */
base_err bench_redis_last_len(bench_redis *r, const char *key, size_t *out_len);

/* bench_redis_del() - DEL @key. Return: BASE_OK; BASE_EIO; BASE_ESTORE. */
base_err bench_redis_del(bench_redis *r, const char *key);

/*
 * bench_redis_pairs() - the pair ceiling above (@tx: the transaction ceiling) for
 * @warmup_ms + @measure_ms; fills @out (done = pairs, errors, quantiles).
 * Return: BASE_OK; BASE_EINVAL (inflight 0 or past 4096, a length 0 or past
 *         BENCH_RECORD_MAX); BASE_EIO if the connection failed (@r is then unusable);
 *         BASE_ENOMEM.
 */
base_err bench_redis_pairs(bench_redis *r, const char *key_a, size_t len_a, const char *key_b,
                           size_t len_b, uint32_t inflight, bool tx, uint64_t warmup_ms,
                           uint64_t measure_ms, bench_result *out);

#endif
