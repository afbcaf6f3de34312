#ifndef SERVICE_AUTH_H
#define SERVICE_AUTH_H

/*
 * Who may talk to rlfeedd (docs/security.md): with [server] auth = on every request must
 * carry a proof by one of the configured [client NAME]s (proto/auth.h), and the client must
 * hold the op's scope and the policy.
 *
 *   proof -> client known? -------------- no --> unauthorized (counted as unknown)
 *         -> |server time - ts| <= window  no --> unauthorized (stale)
 *         -> mac right under one of its keys no --> unauthorized (wrong key)
 *         -> mac not seen within 2 windows  no --> unauthorized (replayed)
 *         -> op in scope, policy allowed    no --> forbidden
 *         -> feedback: client's outcome bucket  empty --> rate_limited
 *         -> the request runs
 *
 * The replay memory holds the macs accepted in the last two to three windows (three
 * generations, each one window long, the oldest dropped as a new one starts); a generation
 * past auth_replay_max proofs refuses further ones as `unavailable` rather than forget.
 *
 * Threads: every function may be called from any thread, concurrently.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "proto/auth.h"
#include "proto/errors.h"
#include "proto/request.h"
#include "proto/stats.h"
#include "service/config.h"

typedef struct svc_auth svc_auth;

/* From @c's auth settings and clients (copied). Return: BASE_OK; BASE_ENOMEM. */
base_err svc_auth_new(const svc_config *c, svc_auth **out);
void svc_auth_free(svc_auth *a); /* accepts NULL */

/* Tests: check proofs against @now_ms (ms since the epoch) instead of the wall clock. */
void svc_auth_set_clock(svc_auth *a, int64_t (*now_ms)(void));

/* Whether requests must be authenticated (auth = on). */
bool svc_auth_enabled(const svc_auth *a);

/* Whether /metrics and /dashboard need no proof (ops_pages_open, or auth off). */
bool svc_auth_ops_pages_open(const svc_auth *a);

/* The HTTP side of a proof: the Authorization header and what its mac covers. */
typedef struct svc_auth_http {
    const char *header; /* NULL: none sent */
    const char *method;
    const char *target;
    const uint8_t *body;
    size_t body_len;
} svc_auth_http;

/*
 * svc_auth_check() - authenticate and authorize one request.
 * @msg, @len: the msgpack request whose "auth" entry @req->auth is (ignored with @http)
 * @http: NULL for msgpack carriers; else the HTTP proof, which replaces req->auth
 * @op, @policy: what the request does ("" policy: every policy, as stats without one)
 * @use: the request is carried out if accepted: its proof is remembered (a replay from then
 *       on) and a feedback takes an outcome token. false: checked only (a request answered
 *       "starting"), so the same bytes may come again and be carried out.
 * @out_limited: (may be NULL) on success, whether the client may see only some policies
 * Return: PROTO_E_NONE, or the code to refuse with (message in @err): unauthorized,
 *         forbidden, rate_limited or unavailable. Counted per client.
 */
proto_errcode svc_auth_check(svc_auth *a, const proto_request *req, const uint8_t *msg, size_t len,
                             const svc_auth_http *http, proto_op op, const char *policy, bool use,
                             proto_error *err, bool *out_limited);

/*
 * svc_auth_check_scope() - the same for an HTTP page that is no op (metrics, dashboard,
 * policies): the Authorization header must prove a client holding @scope (enum svc_scope)
 * that may name @policy ("": a page showing every policy, which needs policies = *). @use as
 * for svc_auth_check(): false for a page answered "starting", whose proof stays unused.
 */
proto_errcode svc_auth_check_scope(svc_auth *a, const svc_auth_http *http, uint32_t scope,
                                   const char *policy, bool use, proto_error *err);

/*
 * svc_auth_alarms() - the clients' raised alarms: refused by their outcome cap within the
 * last SVC_CLIENT_ALARM_QUIET_MS, or feedback per second far above its recent range (a CUSUM
 * per client, reward/alarm.h, on the square root of the count). Raising and clearing are
 * logged. The first @max are described in @out ("client NAME: over its outcome cap",
 * "client NAME: outcome rate up").
 * Return: how many are raised.
 */
#define SVC_CLIENT_ALARM_QUIET_MS 60000
#define SVC_CLIENT_ALARM_MAX 96
uint32_t svc_auth_alarms(svc_auth *a, char (*out)[SVC_CLIENT_ALARM_MAX], uint32_t max);

/*
 * The per-client counters, for stats: out[i] for client i (configuration order), at most
 * @max; *n_out set. Unknown client names are counted in *unknown.
 */
void svc_auth_stats(svc_auth *a, proto_client_stats *out, uint32_t max, uint32_t *n_out,
                    uint64_t *unknown);

/*
 * The replay memory across a restart (docs/security.md): at a clean stop svc_auth_keep()
 * writes it (its 64-bit keys and the current generation's start) to base_buf @out;
 * the next start's svc_auth_restore() reads that back into the memory, before the first
 * request is checked, so that a proof accepted before the restart is still refused.
 * Return (keep): BASE_OK; BASE_ENOMEM; BASE_ELIMIT past @out's bound.
 * Return (restore): BASE_OK, with *out_n the proofs restored; BASE_EPROTO for bytes keep()
 *         did not write (nothing restored); BASE_ELIMIT when they do not fit auth_replay_max
 *         (those that fit are restored); BASE_ENOMEM.
 */
base_err svc_auth_keep(svc_auth *a, base_buf *out);
base_err svc_auth_restore(svc_auth *a, const uint8_t *p, size_t n, uint64_t *out_n);

#endif
