#ifndef SERVICE_DAEMON_H
#define SERVICE_DAEMON_H

/*
 * The daemon's lifetime: start the private redis-server when no Redis URL is
 * configured, restore snapshots, start the writer and learner threads, open
 * the nng endpoints, serve until SIGINT or SIGTERM, then shut down in order:
 * stop accepting, apply and store what is queued, snapshot, stop Redis.
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
 * Return: BASE_OK after a clean shutdown; the start-up error otherwise (logged).
 */
base_err svc_daemon_run(const svc_config *cfg, int64_t manual_clock_ms);

#endif
