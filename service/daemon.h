#ifndef SERVICE_DAEMON_H
#define SERVICE_DAEMON_H

/*
 * The daemon's lifetime: start the private redis-server when no Redis URL is
 * configured, append what the last shutdown spilled to data_dir, restore
 * snapshots, start the writer and learner threads, open the nng endpoints,
 * serve until SIGINT or SIGTERM (restarting the private redis-server if it
 * dies), then shut down in order, within SHUTDOWN_MS: stop accepting, apply
 * and store what is queued, snapshot, spill what Redis did not take, stop
 * Redis.
 *
 * svc_daemon_run() must be called from the main thread before any other
 * thread exists: it blocks SIGINT and SIGTERM in every thread it creates and
 * waits for them with sigwait().
 */

#include <stdint.h>

#include "base/err.h"
#include "service/config.h"

/*
 * svc_daemon_run() - run until SIGINT/SIGTERM.
 * @manual_clock_ms: < 0 for the system clock; otherwise the service clock
 *   starts at this time (ms since the epoch) and moves only by the test-only
 *   "clock" op (integration tests run day-long join windows in milliseconds).
 * Return: BASE_OK after a clean shutdown (records that Redis could not take
 *         were spilled to data_dir); the start-up error otherwise, or BASE_EIO
 *         if records were lost at shutdown (all logged).
 */
base_err svc_daemon_run(svc_config *cfg, int64_t manual_clock_ms);

#endif
