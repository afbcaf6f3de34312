#ifndef SERVICE_WIRE_H
#define SERVICE_WIRE_H

/*
 * The wire codec: msgpack requests and replies exchanged over nng, plus a
 * JSON bridge for the CLI. The protocol is documented in docs/protocol.md.
 *
 * A request is one msgpack map: {"v":1, "op":"decide", ...}. A reply is a
 * map with "ok":true and the op's fields, or
 *     {"ok":false, "error":{"code":"bad_dimension", "message":"..."}}
 * Float vectors travel as bin of little-endian float32; arrays of numbers
 * are also accepted.
 *
 * Decoding is a pure function over (buf, len). base_mpcheck() (base/mpcheck.h)
 * walks the raw bytes first (every count <= remaining bytes, depth and object caps),
 * because msgpack-c 4.0 reserves memory for whatever counts a header claims;
 * only then is the message unpacked. The decoder checks structure, types,
 * string lengths, caps and finiteness; policy-specific checks (known policy,
 * embedding dimension, known actions and signals) belong to the dispatcher.
 *
 * Thread-safety: all functions are reentrant; a svc_request or svc_writer is
 * used by one thread at a time.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/record.h"

#define SVC_WIRE_VERSION 1
#define SVC_WIRE_MAX_MSG (1u << 20)  /* default receive cap, bytes */
#define SVC_WIRE_MAX_DEPTH 16        /* nesting of maps and arrays */
#define SVC_WIRE_MAX_OBJECTS 65536   /* msgpack objects in one message */
#define SVC_WIRE_MSG_MAX 160         /* error message length */

/* Error codes carried in replies; each has a fixed string (svc_errcode_name). */
typedef enum svc_errcode {
    SVC_E_NONE = 0,
    SVC_E_BAD_MSGPACK,        /* "bad_msgpack": not well-formed, or counts past the end */
    SVC_E_TOO_LARGE,          /* "too_large": message, string or vector past a cap */
    SVC_E_BAD_REQUEST,        /* "bad_request": missing or mistyped field */
    SVC_E_BAD_VERSION,        /* "unsupported_version" */
    SVC_E_UNKNOWN_OP,         /* "unknown_op" */
    SVC_E_UNKNOWN_POLICY,     /* "unknown_policy" */
    SVC_E_BAD_DIMENSION,      /* "bad_dimension": embedding length != policy dim */
    SVC_E_NOT_FINITE,         /* "not_finite": NaN or Inf in a number */
    SVC_E_TOO_MANY_CANDIDATES,/* "too_many_candidates" */
    SVC_E_UNKNOWN_ACTION,     /* "unknown_action": candidate id not in the action set */
    SVC_E_DUPLICATE_EVENT,    /* "duplicate_event": event id already decided */
    SVC_E_UNKNOWN_EVENT,      /* "unknown_event": feedback for no pending decision */
    SVC_E_UNKNOWN_SIGNAL,     /* "unknown_signal": signal not in the reward spec */
    SVC_E_LIMIT,              /* "limit": a per-decision or rate limit */
    SVC_E_UNAVAILABLE,        /* "unavailable": retryable, storage queue full or down */
    SVC_E_SHUTTING_DOWN,      /* "shutting_down": retryable elsewhere */
    SVC_E_INTERNAL,           /* "internal" */
    SVC_E_OUT_OF_RANGE,       /* "out_of_range": a value the signal does not allow */
    SVC_E_RATE_LIMITED,       /* "rate_limited": the user_id's outcome rate cap */
    SVC_E_OP_NOT_ALLOWED,     /* "op_not_allowed": the op is not taken on this socket */
    SVC_E_COUNT
} svc_errcode;

const char *svc_errcode_name(svc_errcode c);
/* Reverse lookup; *out_found is false for an unknown name. */
void svc_errcode_from_name(const char *name, svc_errcode *out, bool *out_found);

typedef struct svc_wire_error {
    svc_errcode code;
    char message[SVC_WIRE_MSG_MAX]; /* names the offending field; UTF-8 */
} svc_wire_error;

typedef enum svc_op {
    SVC_OP_DECIDE = 0,
    SVC_OP_LOG,
    SVC_OP_FEEDBACK,
    SVC_OP_STATS,
    SVC_OP_HEALTH,
    SVC_OP_ACTIVATE, /* a deferred decision was shown */
    SVC_OP_CLOCK,    /* tests only: move a daemon started with --manual-clock */
} svc_op;

typedef struct svc_candidate {
    char id[BASE_NAME_MAX + 1];
    float base_logit;
} svc_candidate;

/*
 * A decoded request. Strings are copied into the fixed buffers (an absent
 * string is ""). Arrays are owned by the request; free with
 * svc_request_fini().
 */
typedef struct svc_request {
    svc_op op;
    char policy[BASE_NAME_MAX + 1];          /* all ops but health/stats: required */
    char event_id[BASE_ID_MAX + 1];          /* decide: optional; log: required */
    char conversation_id[BASE_ID_MAX + 1];   /* optional */
    uint32_t turn;                           /* optional, 0 */

    /* decide, log */
    uint32_t dim;
    float *embedding;                        /* [dim], context.embedding */
    uint32_t n_cand;
    svc_candidate *cand;                     /* [n_cand] */
    float *pmf;                              /* log only: [n_cand], "pmf" */
    char chosen[BASE_NAME_MAX + 1];          /* log only: id of the chosen candidate */
    bool deferred;                           /* decide: optional */

    /* feedback: event_id or conversation_id, plus */
    char signal[BASE_NAME_MAX + 1];
    double value;                            /* default 1.0 */
    char outcome_id[BASE_ID_MAX + 1];        /* optional idempotency key */
    char supersedes[BASE_ID_MAX + 1];        /* optional: outcome_id this one corrects */
    char user_id[BASE_ID_MAX + 1];           /* optional: rate-limit key */
    int64_t ts_ms;                           /* optional, 0 = arrival time */

    /* clock (tests only): exactly one of */
    int64_t clock_set_ms;                    /* "set_ms", -1 when absent */
    int64_t clock_advance_ms;                /* "advance_ms", -1 when absent */
} svc_request;

/*
 * svc_wire_decode() - decode a request. On success *out owns its arrays.
 * On failure *out is zeroed and @err says why (code + field).
 * Return: BASE_OK; BASE_EPROTO; BASE_EINVAL; BASE_ELIMIT; BASE_ENOMEM.
 */
base_err svc_wire_decode(const uint8_t *buf, size_t len, svc_request *out, svc_wire_error *err);
void svc_request_fini(svc_request *r);

/*
 * A msgpack writer appending to a base_buf, used for replies, for the client
 * library's requests and for stats. Errors are sticky: the first failure is
 * kept and returned by svc_writer_finish(); later calls do nothing.
 */
typedef struct svc_writer {
    base_buf *out;
    base_err err;
} svc_writer;

void svc_writer_init(svc_writer *w, base_buf *out);
void svc_w_map(svc_writer *w, uint32_t n_pairs);
void svc_w_array(svc_writer *w, uint32_t n);
void svc_w_str(svc_writer *w, const char *s);
void svc_w_int(svc_writer *w, int64_t v);
void svc_w_uint(svc_writer *w, uint64_t v);
void svc_w_double(svc_writer *w, double v);
void svc_w_bool(svc_writer *w, bool v);
void svc_w_nil(svc_writer *w);
void svc_w_f32_bin(svc_writer *w, const float *v, uint32_t n); /* little-endian float32 */
void svc_w_f32_array(svc_writer *w, const float *v, uint32_t n);
base_err svc_writer_finish(svc_writer *w);

/* Reply helpers. Append a whole reply map to @out. */
base_err svc_wire_reply_ok(base_buf *out);                                    /* {"ok":true} */

/*
 * svc_wire_reply_error() - append {"ok":false, "error":{"code":..., "message":...}}.
 * @message: NUL-terminated, or NULL for "" (borrowed). What is sent is always valid UTF-8 of
 * at most SVC_WIRE_MSG_MAX - 1 bytes, cut on a character boundary: bytes that do not form a
 * whole character (one that "%.48s" or a buffer size cut in two) are left out.
 * Return: BASE_OK; BASE_ELIMIT or BASE_ENOMEM from @out (which is then left as it was).
 */
base_err svc_wire_reply_error(base_buf *out, svc_errcode code, const char *message);
/* {"ok":true, "status":@status, "redis":@redis} */
base_err svc_wire_reply_health(base_buf *out, const char *status, const char *redis);
base_err svc_wire_reply_decide(base_buf *out, const char *event_id, const char *chosen_id,
                               uint32_t chosen_index, const float *pmf, uint32_t n_cand,
                               uint64_t model_version, const char *slot);

/* A decoded reply, for clients. */
typedef struct svc_reply {
    bool ok;
    svc_wire_error error;                 /* when !ok */
    char event_id[BASE_ID_MAX + 1];       /* decide */
    char chosen[BASE_NAME_MAX + 1];       /* decide */
    uint32_t chosen_index;                /* decide */
    uint32_t n_pmf;
    float pmf[BASE_CAND_MAX];             /* decide */
    uint64_t model_version;               /* decide */
    bool duplicate;                       /* feedback: outcome_id seen before */
    char status[32];                      /* feedback, activate, health: "matched", "ready"... */
} svc_reply;

/*
 * svc_wire_decode_reply() - decode any reply (unknown fields are ignored). An error message
 * longer than SVC_WIRE_MSG_MAX - 1 bytes is cut to fit, on a character boundary.
 * Return: BASE_OK; BASE_EPROTO (also past the depth or object caps); BASE_ENOMEM.
 */
base_err svc_wire_decode_reply(const uint8_t *buf, size_t len, svc_reply *out);

/*
 * JSON bridge for the CLI. JSON objects, arrays, strings, numbers, booleans
 * and null map one to one onto msgpack; integers stay integers. msgpack bin
 * of float32 prints as an array of numbers.
 * svc_wire_from_json(): Return BASE_OK; BASE_EINVAL (bad JSON, with a reason
 *   in @errbuf); BASE_ELIMIT; BASE_ENOMEM.
 * svc_wire_to_json(): *out is a NUL-terminated string freed with base_free().
 *   Return BASE_OK; BASE_EPROTO; BASE_ENOMEM.
 */
base_err svc_wire_from_json(const char *json, base_buf *out, char *errbuf, size_t errlen);
base_err svc_wire_to_json(const uint8_t *buf, size_t len, char **out);

#endif
