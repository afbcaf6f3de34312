#ifndef PROTO_REPLY_H
#define PROTO_REPLY_H

/*
 * Replies: encode and decode of every reply but stats (proto/stats.h), docs/protocol.md
 * sections 2 to 8.
 *
 * A reply is one msgpack map carrying "ok". A success carries the op's fields:
 *     {"ok":true, "event_id":"ev-42", "chosen":"greet", "chosen_index":0,
 *      "pmf":<bin f32>, "model_version":7, "slot":"main"}             decide
 *     {"ok":true, "event_id":"fe-9"}                                   log
 *     {"ok":true, "status":"matched"}                                  feedback, activate
 *     {"ok":true, "duplicate":true, "status":"duplicate"}              a repeated outcome_id
 *     {"ok":true, "status":"ready", "redis":"up"}                      health
 *     {"ok":true, "now_ms":1700000180000}                              clock
 * a failure is
 *     {"ok":false, "error":{"code":"bad_request", "message":"missing field 'policy'"}}
 *
 * The daemon encodes every reply it sends with these functions (and proto_reply_stats());
 * clients decode any reply with proto_reply_decode().
 *
 * Invariants:
 * 1. Each encoder appends one whole reply map to a base_buf, or on failure leaves the
 *    buffer exactly as it was.
 * 2. Error messages sent are valid UTF-8 of at most PROTO_ERRMSG_MAX - 1 bytes.
 * 3. The decoder ignores keys it does not know (later versions add fields) and accepts
 *    "pmf" as a bin of float32 or an array of numbers.
 *
 * Thread-safety: every function is reentrant.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/record.h"
#include "proto/errors.h"

/*
 * What happened to an outcome or activation: the "status" of a feedback or activate reply
 * (matched, corrected, early, late, late_correction, duplicate), and the per-status
 * counters of the stats reply's join health (all of them). The refusals (unknown_event,
 * rejected_*) are answered as errors, never as a status.
 */
typedef enum proto_status {
    PROTO_ST_MATCHED = 0,
    PROTO_ST_DUPLICATE,
    PROTO_ST_CORRECTED,
    PROTO_ST_LATE,
    PROTO_ST_LATE_CORRECTION,
    PROTO_ST_EARLY,
    PROTO_ST_UNKNOWN_EVENT,
    PROTO_ST_REJECTED_SIGNAL,
    PROTO_ST_REJECTED_VALUE,
    PROTO_ST_REJECTED_LIMIT,
    PROTO_ST_REJECTED_RATE,
    PROTO_ST_ACCEPTED, /* shared = on: a follower stored it for the owner, who judges it */
    PROTO_ST_COUNT
} proto_status;

/* The statuses a join gives (stats "join", /metrics): all but accepted, which comes last. */
#define PROTO_ST_JOIN_COUNT PROTO_ST_ACCEPTED

/* proto_status_name() - "matched", "late_correction", ...; "unknown" outside the enum. */
const char *proto_status_name(proto_status s);

/* The daemon's readiness and its view of Redis (health and stats replies). */
typedef enum proto_health_status {
    PROTO_HEALTH_STARTING = 0, /* "starting": rebuilding state; other requests: unavailable */
    PROTO_HEALTH_READY,        /* "ready" */
    PROTO_HEALTH_DEGRADED,     /* "degraded": Redis away or refusing, or the write queue full */
} proto_health_status;

typedef enum proto_redis_state {
    PROTO_REDIS_UNKNOWN = 0, /* "unknown" */
    PROTO_REDIS_UP,          /* "up" */
    PROTO_REDIS_DOWN,        /* "down" */
} proto_redis_state;

#define PROTO_HEALTH_ALARMS_MAX 8 /* alarms listed in a health reply; the count is exact */

typedef struct proto_health {
    proto_health_status status;
    proto_redis_state redis;
    uint32_t n_alarms; /* raised alarms; "alarms" is sent only when there is one */
    char alarms[PROTO_HEALTH_ALARMS_MAX]
               [BASE_NAME_MAX + 32]; /* the first ones, e.g. "faq: reward up" */
} proto_health;

/* The wire names of the values above; "unknown" for a value outside the enum. */
const char *proto_health_status_name(proto_health_status s);
const char *proto_redis_state_name(proto_redis_state s);

/*
 * Encoders. Each appends a whole reply to @out; strings are borrowed.
 * Return: BASE_OK; BASE_ELIMIT or BASE_ENOMEM from @out, which is then left as it was.
 */

/* proto_reply_ok() - {"ok":true} */
base_err proto_reply_ok(base_buf *out);

/*
 * proto_reply_error() - {"ok":false, "error":{"code":..., "message":...}}.
 * @message: NUL-terminated, or NULL for "". What is sent is always valid UTF-8 of at most
 * PROTO_ERRMSG_MAX - 1 bytes, cut on a character boundary: bytes that do not form a whole
 * character (one that "%.48s" or a buffer size cut in two) are left out.
 */
base_err proto_reply_error(base_buf *out, proto_errcode code, const char *message);

/*
 * proto_reply_decide() - the decide reply: @pmf[0..n_cand) (sent as a bin of float32),
 * @chosen_id at @chosen_index, @model_version and the @slot that served.
 */
base_err proto_reply_decide(base_buf *out, const char *event_id, const char *chosen_id,
                            uint32_t chosen_index, const float *pmf, uint32_t n_cand,
                            uint64_t model_version, const char *slot);

/* proto_reply_logged() - {"ok":true, "event_id":@event_id}: a log request was accepted. */
base_err proto_reply_logged(base_buf *out, const char *event_id);

/*
 * proto_reply_status() - {"ok":true, "status":@status} for feedback and activate.
 * proto_reply_duplicate() - {"ok":true, "duplicate":true, "status":"duplicate"}: the
 * outcome_id was seen before (or nothing waits for an answer).
 */
base_err proto_reply_status(base_buf *out, proto_status status);
base_err proto_reply_duplicate(base_buf *out);

/* proto_reply_health() - {"ok":true, "status":..., "redis":...} from @h. */
base_err proto_reply_health(base_buf *out, const proto_health *h);

/* proto_reply_clock() - {"ok":true, "now_ms":@now_ms} (tests only). */
base_err proto_reply_clock(base_buf *out, int64_t now_ms);

/* A decoded reply (any op but stats, whose counters need proto_stats_decode()). */
typedef struct proto_reply {
    bool ok;
    proto_error error;              /* when !ok; an unknown code becomes PROTO_E_INTERNAL */
    char event_id[BASE_ID_MAX + 1]; /* decide, log */
    char chosen[BASE_NAME_MAX + 1]; /* decide */
    uint32_t chosen_index;          /* decide */
    uint32_t n_pmf;
    float pmf[BASE_CAND_MAX];     /* decide */
    uint64_t model_version;       /* decide */
    char slot[BASE_NAME_MAX + 1]; /* decide */
    bool duplicate;               /* feedback: outcome_id seen before */
    char status[32];              /* feedback, activate, health: "matched", "ready"... */
    char redis[16];               /* health: "up", "down", "unknown" */
    int64_t now_ms;               /* clock */
} proto_reply;

/*
 * proto_reply_decode() - decode any reply into @out (about 4.5 KiB: keep it off small
 * stacks). Absent fields are zero or "". An error message longer than
 * PROTO_ERRMSG_MAX - 1 bytes is cut to fit, on a character boundary. *out is written only
 * on success.
 * Return: BASE_OK; BASE_EPROTO (not a reply map, a known field of the wrong type or past
 *         its cap, or past the depth or object caps); BASE_ENOMEM.
 */
base_err proto_reply_decode(const uint8_t *buf, size_t len, proto_reply *out);

/*
 * proto_health_from_reply() - the health a decoded health reply @r carries.
 * Return: true when @r is ok and its status and redis are names of the enums above.
 */
bool proto_health_from_reply(const proto_reply *r, proto_health *out);

#endif
