#ifndef TESTS_HELPERS_PROC_H
#define TESTS_HELPERS_PROC_H

/*
 * Process and file-system helpers for integration tests: temporary
 * directories, child processes with deadlines, free loopback ports.
 * Nothing here sleeps for a fixed time to wait for readiness: callers poll a
 * condition with tst_deadline_ms() and tst_nap().
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* A new directory under $TMPDIR (or /tmp); NULL on failure. Free with free(). */
char *tst_mkdtemp(const char *prefix);
/* Remove @path recursively (best effort). */
void tst_rm_rf(const char *path);

/*
 * fork + execvp @argv with stdout/stderr to @log_path (NULL: inherited). -1 on failure.
 * The child gets SIGTERM when the calling thread ends (PR_SET_PDEATHSIG): spawn from the
 * thread that outlives it (the test's main thread, or one that waits for it).
 */
pid_t tst_spawn(char *const argv[], const char *log_path);
/* Wait up to @timeout_ms for @pid to exit; true and *out_status (waitpid status) if it did. */
bool tst_wait_exit(pid_t pid, int timeout_ms, int *out_status);
/* SIGTERM, wait up to @timeout_ms, then SIGKILL and reap. */
void tst_stop(pid_t pid, int timeout_ms);

/* A TCP port on 127.0.0.1 that was free a moment ago; 0 on failure. */
int tst_free_port(void);

/* Monotonic milliseconds, for deadlines. */
int64_t tst_now_ms(void);
/* Yield the CPU briefly between polls of a condition (1 ms). */
void tst_nap(void);

/* Absolute path of a program named by environment variable @env, or NULL. */
const char *tst_env_path(const char *env);

/*
 * Run the program named by environment variable @env with @args (NULL
 * terminated, at most 30) and stdout/stderr to @log_path; wait up to
 * @timeout_ms (one still running then is stopped, SIGTERM then SIGKILL).
 * Return: its exit status, or -1 (not run, killed, too slow).
 */
int tst_run(const char *env, const char *const *args, const char *log_path, int timeout_ms);
/* Print the file at @path as TAP comments ("#   line"); nothing if unreadable. */
void tst_print_file(const char *path);

#endif
