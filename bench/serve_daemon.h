#ifndef BENCH_SERVE_DAEMON_H
#define BENCH_SERVE_DAEMON_H

/*
 * rlfeedd as a child process of `rlfeed bench serve` (as tests/helpers/daemon.c
 * runs it): started with given arguments, stdout and stderr to a log file,
 * ready once `health` answers anything but "starting" (polled with a
 * deadline, never slept for), stopped with SIGTERM, then SIGKILL past a
 * deadline. The child gets PR_SET_PDEATHSIG(SIGTERM), so it does not outlive
 * a benchmark that is killed outright.
 *
 * States: STOPPED -> RUNNING [bench_daemon_start] -> STOPPED [bench_daemon_stop].
 * Not thread-safe. The caller must not reap children behind its back.
 */

#include <stddef.h>
#include <sys/types.h>

#include "base/err.h"

/*
 * bench_daemon_start() - fork and exec @argv (argv[0] the binary path, NULL
 * terminated; borrowed) with output to @log_path, then wait up to @timeout_ms
 * for it to answer health on @url.
 * Return: BASE_OK and *out_pid; BASE_EIO if it could not be started, exited or was not
 *         ready in time (it is then stopped; the reason in @errbuf).
 */
base_err bench_daemon_start(char *const argv[], const char *log_path, const char *url,
                            int timeout_ms, pid_t *out_pid, char *errbuf, size_t errlen);

/*
 * bench_daemon_stop() - SIGTERM @pid, wait up to @timeout_ms, then SIGKILL; reap it.
 * Return: its exit status, or -1 if it was killed by a signal or @pid is not > 0.
 */
int bench_daemon_stop(pid_t pid, int timeout_ms);

/*
 * bench_mkdtemp() - a new directory "$TMPDIR/@prefix.XXXXXX" (TMPDIR unset: /tmp) into
 * @out (@len bytes). Return: BASE_OK; BASE_ELIMIT if the path does not fit; BASE_EIO.
 */
base_err bench_mkdtemp(const char *prefix, char *out, size_t len);

/* bench_rm_rf() - remove @path and everything under it (best effort; symlinks not followed). */
void bench_rm_rf(const char *path);

#endif
