#ifndef PROTO_ERRORS_H
#define PROTO_ERRORS_H

/*
 * The protocol's vocabulary shared by every message: its version, its limits and the error
 * codes replies carry (docs/protocol.md sections 8 and 9).
 *
 * Every error code has one fixed name, the string a reply carries:
 *     {"ok":false, "error":{"code":"bad_dimension", "message":"..."}}
 * proto_errcode_name() maps a code to it, proto_errcode_from_name() back.
 *
 * Invariants:
 * 1. Codes are dense, from PROTO_E_NONE (0) to PROTO_E_COUNT - 1, so they index arrays
 *    (the daemon's per-code rejection counters).
 * 2. The names never change: clients act on them. A new code is appended before
 *    PROTO_E_COUNT; clients that do not know it treat it as "internal".
 * 3. An error message is valid UTF-8 of at most PROTO_ERRMSG_MAX - 1 bytes.
 *
 * Thread-safety: every function is pure and reentrant.
 */

#include <stdbool.h>

#include "base/err.h"

#define PROTO_VERSION 1                /* the "v" every request carries */
#define PROTO_MAX_MSG_BYTES (1u << 20) /* default receive cap of a socket, bytes */
#define PROTO_MAX_DEPTH 16             /* nesting of maps and arrays in one message */
#define PROTO_MAX_OBJECTS 65536        /* msgpack objects in one message (pairs count twice) */
#define PROTO_ERRMSG_MAX 160           /* bytes of an error message buffer, NUL included */

/* Error codes carried in replies; each has a fixed name (proto_errcode_name). */
typedef enum proto_errcode {
    PROTO_E_NONE = 0,
    PROTO_E_BAD_MSGPACK,         /* "bad_msgpack": not well-formed, or counts past the end */
    PROTO_E_TOO_LARGE,           /* "too_large": message, string or vector past a cap */
    PROTO_E_BAD_REQUEST,         /* "bad_request": missing or mistyped field */
    PROTO_E_BAD_VERSION,         /* "unsupported_version" */
    PROTO_E_UNKNOWN_OP,          /* "unknown_op" */
    PROTO_E_UNKNOWN_POLICY,      /* "unknown_policy" */
    PROTO_E_BAD_DIMENSION,       /* "bad_dimension": embedding length != policy dim */
    PROTO_E_NOT_FINITE,          /* "not_finite": NaN or Inf in a number */
    PROTO_E_TOO_MANY_CANDIDATES, /* "too_many_candidates" */
    PROTO_E_UNKNOWN_ACTION,      /* "unknown_action": candidate id not in the action set */
    PROTO_E_DUPLICATE_EVENT,     /* "duplicate_event": event id already decided */
    PROTO_E_UNKNOWN_EVENT,       /* "unknown_event": feedback for no pending decision */
    PROTO_E_UNKNOWN_SIGNAL,      /* "unknown_signal": signal not in the reward spec */
    PROTO_E_LIMIT,               /* "limit": a per-decision or rate limit */
    PROTO_E_UNAVAILABLE,         /* "unavailable": retryable, storage queue full or down */
    PROTO_E_SHUTTING_DOWN,       /* "shutting_down": retryable elsewhere */
    PROTO_E_INTERNAL,            /* "internal" */
    PROTO_E_OUT_OF_RANGE,        /* "out_of_range": a value the signal does not allow */
    PROTO_E_RATE_LIMITED,        /* "rate_limited": the user_id's outcome rate cap */
    PROTO_E_OP_NOT_ALLOWED,      /* "op_not_allowed": the op is not taken on this socket */
    PROTO_E_NOT_FOUND,    /* "not_found": explain: no such decision in the retention window */
    PROTO_E_BAD_JSON,     /* "bad_json": an HTTP API body that is not JSON text (proto/json.h) */
    PROTO_E_UNAUTHORIZED, /* "unauthorized": no, unknown, wrong, stale or replayed proof */
    PROTO_E_FORBIDDEN,    /* "forbidden": the client may not use this op or policy */
    PROTO_E_COUNT
} proto_errcode;

/* A code and the message that goes with it: what a decoder refused, or an error reply. */
typedef struct proto_error {
    proto_errcode code;
    char message[PROTO_ERRMSG_MAX]; /* names the offending field; UTF-8 */
} proto_error;

/*
 * proto_errcode_name() - the wire name of @c ("bad_request").
 * Return: a static string; "internal" for a value outside the enum (a caller's bug, but a
 *         peer still gets a valid code).
 */
const char *proto_errcode_name(proto_errcode c);

/*
 * proto_errcode_from_name() - the code whose wire name is @name.
 * @name: NUL-terminated, or NULL (borrowed)
 * *out_found is false for an unknown name (or NULL), and *out is then left unchanged.
 */
void proto_errcode_from_name(const char *name, proto_errcode *out, bool *out_found);

/*
 * proto_error_set() - record @code and a printf-style message in @err.
 * A message longer than PROTO_ERRMSG_MAX - 1 bytes is cut short (it may then end in a
 * partial UTF-8 character: proto_reply_error() drops it before sending).
 * Return: the base_err a decoder reports for @code: BASE_OK for PROTO_E_NONE, BASE_EPROTO
 *         for bad_msgpack and bad_json, BASE_ELIMIT for too_large and too_many_candidates, BASE_ENOMEM for
 *         internal (a decoder's only internal failure is allocation), else BASE_EINVAL.
 */
base_err proto_error_set(proto_error *err, proto_errcode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
