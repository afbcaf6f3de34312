#ifndef TESTS_HELPERS_DAEMON_H
#define TESTS_HELPERS_DAEMON_H

/*
 * A running rlfeedd for integration tests: a temporary directory, a private
 * redis-server on a unix socket in it, the daemon (binary from $RLFEEDD)
 * listening on ipc sockets in it, and a client connected to it.
 *
 *   tst_daemon f;
 *   if (!tst_daemon_init(&f, "rlfeed-x", config_text)) ...   (skips if prerequisites are missing)
 *   tst_daemon_start(&f, true, NULL);   ... tests ...   tst_daemon_stop(&f);
 *   tst_daemon_fini(&f);                (stops everything, removes the directory)
 *
 * Readiness is polled (health) with a deadline, never slept for.
 *
 * HTTP: unless the config sets http_url, every daemon gets --http-url
 * http://127.0.0.1:0 (a free port, so parallel tests never clash on the
 * default 9808); the bound URL, read from the daemon's "http on URL" log
 * line, is in f->http_url ("" if the daemon serves no HTTP).
 */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "client/rlfeed_client.h"
#include "proto/errors.h"
#include "storage/server.h"

/*
 * How long the fixture's client f->c waits for each reply. Generous: on a loaded
 * machine under ASan an acknowledged feedback can wait on fsyncs for well over a
 * second, and a test wanting a quick timeout opens a client of its own.
 */
#define TST_CLIENT_TIMEOUT_MS 5000

typedef struct tst_daemon {
    char *dir;
    char conf[512];
    char url[600];
    char pull_url[600];
    char log[600];
    char http_url[128]; /* bound by the running daemon; "" if none */
    bool http_in_config;
    const char *bin;
    sto_server *redis;
    pid_t pid;
    rlfeed_client *c;
    const proto_auth_keyfile *key; /* NULL, or f->c signs with it (auth = on) */
} tst_daemon;

/*
 * Make the directory, write @config (INI text) and start redis. Calls
 * tst_skip_all() when $RLFEEDD or redis-server is missing.
 */
bool tst_daemon_init(tst_daemon *f, const char *name, const char *config);
/* As tst_daemon_init(), with Redis's appendfsync: "everysec", "always", "no" (NULL: everysec). */
bool tst_daemon_init_fsync(tst_daemon *f, const char *name, const char *config,
                           const char *appendfsync);
/* Start rlfeedd (with the fixture's Redis, or its own private one) plus extra args. */
bool tst_daemon_start(tst_daemon *f, bool with_redis, const char *const *extra_args);
/* tst_daemon_start() with the fixture's Redis on the manual clock, at @clock_ms. */
bool tst_daemon_start_clock(tst_daemon *f, long long clock_ms);
/*
 * The last "http on URL" of the daemon's log at @log_path (a restarted daemon
 * appends to it) into @out, polling until
 * @timeout_ms; false if it never appears.
 */
bool tst_daemon_log_http_url(const char *log_path, int timeout_ms, char *out, size_t len);
/* SIGTERM; the exit status, or -1. */
int tst_daemon_stop(tst_daemon *f);
/* SIGKILL (a crash: nothing is flushed), its client closed; true once it is gone. */
bool tst_daemon_kill(tst_daemon *f);
/* Stop whatever runs, print the daemon's log as TAP comments if @dump, remove the directory. */
void tst_daemon_fini(tst_daemon *f, bool dump);

/* Requests: raw msgpack, JSON (converted), and stats as parsed JSON (json_decref it). */
base_err tst_call_raw(tst_daemon *f, const uint8_t *req, size_t len, rlfeed_reply *out);
base_err tst_call_json(tst_daemon *f, const char *json, rlfeed_reply *out);
/* Send the JSON request @json (converted to msgpack) over PUSH; nothing answers. */
base_err tst_push_json(rlfeed_push *p, const char *json);
/* A JSON request from a printf format; "v":1 is added in front of the object's first key. */
base_err tst_callf(tst_daemon *f, rlfeed_reply *out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * Run `$RLFEED ARGS... --redis=URL --who=WHO` against @f's Redis (at most 20 arguments): its
 * output is appended to @f->dir/cli.log and printed as TAP comments when it exits non-zero.
 * Its exit status, or -1.
 */
int tst_daemon_cli(tst_daemon *f, const char *who, const char *const *args);
/* Whether the file at @path has a line containing @needle (false if unreadable). */
bool tst_file_has(const char *path, const char *needle);
/* A new client (a new connection) asks for health; true if answered within @timeout_ms. */
bool tst_new_client_served(const char *url, int timeout_ms);
/* The manual clock's time (daemon started with --manual-clock). */
bool tst_clock_set(tst_daemon *f, long long ms);
/* Whether @c's health status is @want now; tst_wait_health() polls for it up to @timeout_ms. */
/*
 * tst_decide_feedback() - decide event "ev-<i>" of policy "p" (actions a and b, embedding
 * [i mod 2, 1]) on @d, then acknowledged feedback "o-<i>" for it on @f ("resolved" every
 * third, else "escalated"). True if both were answered ok (matched, or accepted by a
 * follower).
 */
bool tst_decide_feedback(tst_daemon *d, tst_daemon *f, int i);
/*
 * A decide of @policy (actions a and b, embedding [1,0]) on @f under @event_id (NULL: none,
 * the daemon makes one), into @r. The call's result (r->ok says the daemon's answer).
 */
base_err tst_decide(tst_daemon *f, const char *policy, const char *event_id, rlfeed_reply *r);
bool tst_health_is(rlfeed_client *c, const char *want);
bool tst_wait_health(rlfeed_client *c, const char *want, int timeout_ms);
json_t *tst_stats(tst_daemon *f);
long long tst_stat_int(json_t *s, const char *policy, const char *key);
const char *tst_stat_str(json_t *s, const char *policy, const char *key);
long long tst_stat_join(json_t *s, const char *policy, const char *key);
long long tst_rejected(json_t *s, const char *code);

/*
 * tst_each_decision() - call @fn on each record of @policy's decision stream in @f's Redis,
 * oldest first, until @want records were read or @timeout_ms passed (the writer may still be
 * storing the last ones). Returns how many were read.
 */
int tst_each_decision(tst_daemon *f, const char *policy, int want, int timeout_ms,
                      void (*fn)(const base_decision *d, void *arg), void *arg);

/*
 * tst_count_outcome_ids() - for each record of @policy's outcomes stream in the Redis at
 * @url whose outcome id is "o-<i>" with 0 <= i < @n, add 1 to @times[i]. Returns the
 * records read, or -1 on a read failure.
 */
int tst_count_outcome_ids(const char *url, const char *policy, int *times, int n);

#endif
