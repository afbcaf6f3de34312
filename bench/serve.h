#ifndef BENCH_SERVE_H
#define BENCH_SERVE_H

#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

/*
 * `rlfeed bench serve`: serving throughput and latency of rlfeedd against the
 * raw ceilings it is built on (issue 13, item 1), measured in the same run.
 *
 *   decide  rlfeedd's decide over REQ/REP, against an nng REP echo server with
 *           the same transport and number of REP contexts, whose requests and
 *           replies have a decide's sizes (bench/serve_net.h).
 *   pair    decide + acknowledged feedback, against pipelined XADD of records
 *           of the sizes of rlfeedd's decision and outcome records into a
 *           private Redis with the same appendfsync, plain and in transactions
 *           (bench/serve_redis.h).
 *   push    fire-and-forget feedback to rlfeedd's PULL socket, against a raw
 *           nng PULL sink; also how many rlfeedd counted of those sent.
 * Each at 1, 8 and 32 requests in flight, over ipc and tcp, with embeddings of
 * 64 and 768 floats and K = 16 candidates.
 *
 * It starts its own redis-server (unix socket in a temporary directory) and
 * rlfeedd (--redis on it, listening on ipc:// in that directory or on free
 * 127.0.0.1 ports) for each transport and appendfsync, and stops them and
 * removes the directory before it returns, also on errors and on SIGINT,
 * SIGTERM or SIGHUP. The last line printed is one JSON object
 * (bench/serve_report.h); the table comes before it.
 *
 * Usage and options: rlfeed bench serve --help; docs/benchmarks.md.
 */

/*
 * rlfeed_bench_serve_main() - run the benchmark with the options in @argv
 * (after "serve"). Returns the process exit status: 0 ok, 1 a failure (a
 * daemon that would not start, a lost connection), 2 usage.
 */
int rlfeed_bench_serve_main(int argc, char **argv);

/*
 * bench_encode_decide() - the benchmarks' decide request into @out: policy @policy, a fixed
 * embedding of @dim floats, 16 candidates "a00".."a15" (the actions bench/pace.ini and
 * serve's policies configure) with fixed base logits, @event_id (NULL: none).
 * Return: BASE_OK; BASE_ENOMEM; what proto_encode_decide() returns.
 */
base_err bench_encode_decide(const char *policy, uint32_t dim, const char *event_id, base_buf *out);

#endif
