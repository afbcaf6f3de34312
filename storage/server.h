#ifndef STORAGE_SERVER_H
#define STORAGE_SERVER_H

/*
 * A private redis-server run as a child process: the embedded default when
 * no Redis address is configured, and the fixture of the integration tests.
 *
 * States: STOPPED -> RUNNING [sto_server_start] -> STOPPED [sto_server_stop].
 * The server listens only on 127.0.0.1 (a free port) or on a unix socket in
 * its data directory, with AOF on. Start returns only once the server answers
 * PING (polled with a deadline, never a fixed sleep). Stop sends SIGTERM,
 * waits with a deadline, then SIGKILL; it removes the data directory if
 * sto_server_start() created it.
 *
 * Not thread-safe. The child is not reaped by anyone else: callers must not
 * install a SIGCHLD handler that reaps all children.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "base/err.h"

typedef struct sto_server sto_server;

typedef struct sto_server_opts {
    const char *redis_bin;   /* default "redis-server" (found on PATH) */
    const char *dir;         /* data directory; NULL: a new mkdtemp dir, removed at stop */
    const char *appendfsync; /* "always" (default), "everysec" or "no" */
    bool unix_socket;        /* listen on DIR/redis.sock instead of a TCP port */
    int start_timeout_ms;    /* default 10000 */
    /*
     * Require a password, generated at start (random, 192 bits) and kept in DIR/redis.conf
     * (mode 0600, the server's config file; DIR is made 0700): sto_server_url() then
     * carries it (storage/store.h), and clients without it are refused (NOAUTH). A restart
     * keeps it.
     */
    bool auth;
} sto_server_opts;

/*
 * sto_server_start() - start redis-server with @opts (NULL: defaults). On a given @opts->dir
 * it holds an exclusive flock() of DIR/rlfeedd.lock until sto_server_stop(), so that one
 * process at a time runs a server there, and stops a redis-server a dead one left running.
 * Return: BASE_OK; BASE_EIO if it could not be started or never answered
 *         (reason in @errbuf); BASE_EINVAL for a bad appendfsync value, a
 *         directory too long for DIR/redis.sock or one another process holds;
 *         BASE_ENOMEM.
 */
base_err sto_server_start(const sto_server_opts *opts, sto_server **out, char *errbuf,
                          size_t errlen);

/*
 * "tcp://127.0.0.1:PORT" or "unix:/dir/redis.sock", with auth "tcp://:PASSWORD@127.0.0.1:PORT"
 * or "unix://:PASSWORD@/dir/redis.sock" (a secret: log it through sto_url_redact()); borrowed.
 */
const char *sto_server_url(const sto_server *s);
const char *sto_server_dir(const sto_server *s);
pid_t sto_server_pid(const sto_server *s);
/*
 * sto_server_leftover() - a redis-server that an earlier process had left running on the
 * directory (found by its pid file) and that was waited for or stopped before this one
 * started; 0 if none. For a log line.
 */
pid_t sto_server_leftover(const sto_server *s);

/* Stop the server (if running) and free @s. Accepts NULL. */
void sto_server_stop(sto_server *s);

/*
 * sto_server_stop_within() - as sto_server_stop(), but SIGKILL after
 * @timeout_ms (at most the default 5 s) if SIGTERM has not stopped it: for
 * a caller with a deadline (a hung server never handles SIGTERM).
 */
void sto_server_stop_within(sto_server *s, int timeout_ms);

/*
 * sto_server_reap() - whether the child has exited (killed, crashed), without
 * waiting. If so it is reaped now, *out_wstatus (may be NULL) is its
 * waitpid() status, and sto_server_restart() starts it again on the same
 * address and data. False while it runs or when it is not running.
 */
bool sto_server_reap(sto_server *s, int *out_wstatus);

/*
 * sto_server_kill() - SIGKILL the child and reap it, keeping the data
 * directory and @s so that sto_server_restart() can start it again on the
 * same address. For fault tests.
 */
void sto_server_kill(sto_server *s);
base_err sto_server_restart(sto_server *s, char *errbuf, size_t errlen);

#endif
