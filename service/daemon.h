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

#include "base/err.h"
#include "service/config.h"

/* Return: BASE_OK after a clean shutdown; the start-up error otherwise (logged). */
base_err svc_daemon_run(const svc_config *cfg);

#endif
