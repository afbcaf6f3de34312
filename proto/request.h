#ifndef PROTO_REQUEST_H
#define PROTO_REQUEST_H

/*
 * Requests: decode and encode of every op (docs/protocol.md sections 1 to 7).
 *
 * A request is one msgpack map:
 *     {"v":1, "op":"decide", "policy":"faq", "context":{"embedding":<bin f32>},
 *      "candidates":[{"id":"greet", "base_logit":1.5}, ...]}
 * The daemon decodes with proto_request_decode() (proto/request.c); the client library, the
 * tools and the tests build requests with the proto_encode_*() functions
 * (proto/request_encode.c), never by hand, so both sides agree on every key.
 *
 * Invariants:
 * 1. Decoding is a pure function over (buf, len). base_mpcheck() walks the raw bytes first
 *    (every count <= remaining bytes, PROTO_MAX_DEPTH, PROTO_MAX_OBJECTS), because msgpack-c
 *    4.0 reserves memory for whatever counts a header claims; only then is the message
 *    unpacked.
 * 2. The decoder checks structure, types, string lengths, UTF-8, caps and finiteness, and
 *    reports the first problem in the order docs/protocol.md section 8 gives. Checks that
 *    need the configuration (known policy, embedding dimension, known actions and signals)
 *    belong to the daemon.
 * 3. Encoders write keys in the order of docs/protocol.md's tables and leave out optional
 *    fields that are absent (NULL or "" strings, a zero turn or ts, deferred false), so
 *    proto_request_decode(proto_request_encode(r)) gives back @r.
 *
 * Thread-safety: every function is reentrant; a proto_request is used by one thread at a
 * time.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/record.h"
#include "proto/auth.h"
#include "proto/errors.h"

typedef enum proto_op {
    PROTO_OP_DECIDE = 0,
    PROTO_OP_LOG,
    PROTO_OP_FEEDBACK,
    PROTO_OP_STATS,
    PROTO_OP_HEALTH,
    PROTO_OP_ACTIVATE, /* a deferred decision was shown */
    PROTO_OP_CLOCK,    /* tests only: move a daemon started with --manual-clock */
    PROTO_OP_EXPLAIN,  /* the breakdown of a logged decision (proto/explain.h) */
} proto_op;

/* proto_op_name() - the "op" string of @op ("decide"); "" for a value outside the enum. */
const char *proto_op_name(proto_op op);

typedef struct proto_candidate {
    char id[BASE_NAME_MAX + 1];
    float base_logit;
} proto_candidate;

/*
 * A decoded request. Strings are copied into the fixed buffers (an absent string is "").
 * Arrays are owned by the request; free them with proto_request_fini().
 */
typedef struct proto_scratch proto_scratch;

typedef struct proto_request {
    proto_scratch *scratch; /* NULL: the arrays are the request's own (proto_request_fini) */
    proto_op op;
    char policy[BASE_NAME_MAX + 1];        /* all ops but health/stats: required */
    char event_id[BASE_ID_MAX + 1];        /* decide: optional; log, activate, explain: required */
    char conversation_id[BASE_ID_MAX + 1]; /* optional */
    uint32_t turn;                         /* optional, 0 */

    /* decide, log */
    uint32_t dim;
    float *embedding; /* [dim], context.embedding */
    uint32_t n_cand;
    proto_candidate *cand;           /* [n_cand] */
    uint32_t action_dim;             /* candidates' "features" entries each; 0: none sent */
    float *features;                 /* [n_cand x action_dim], row per candidate; or NULL */
    float *pmf;                      /* log only: [n_cand], "pmf" */
    char chosen[BASE_NAME_MAX + 1];  /* log only: id of the chosen candidate */
    bool deferred;                   /* decide, log: optional */
    bool no_explore;                 /* decide: "explore": false (serve the head's own choice) */
    bool has_explore_budget;         /* decide: "explore_budget" was given (zeroed: absent) */
    double explore_budget;           /* decide: in [0, 1] when given */
    char segment[BASE_NAME_MAX + 1]; /* decide, log: context.segment; "" when absent */

    /* feedback: event_id or conversation_id, plus */
    char signal[BASE_NAME_MAX + 1];
    double value;                     /* default 1.0 */
    char outcome_id[BASE_ID_MAX + 1]; /* optional idempotency key */
    char supersedes[BASE_ID_MAX + 1]; /* optional: outcome_id this one corrects */
    char user_id[BASE_ID_MAX + 1];    /* feedback, decide, log: optional, the customer */
    int64_t ts_ms;                    /* optional, 0 = arrival time */

    /* every op: the client's proof (docs/protocol.md section 2a); not re-encoded */
    proto_auth auth;
    /*
     * Not on the wire: set by the service once the proof is checked, when its client may see
     * only some policies (stats then leaves out what covers the others).
     */
    bool limited;

    /* clock (tests only): exactly one of */
    int64_t clock_set_ms;     /* "set_ms", -1 when absent */
    int64_t clock_advance_ms; /* "advance_ms", -1 when absent */
} proto_request;

/*
 * proto_request_decode() - decode the request in @buf.
 * @buf: @len bytes (borrowed; nothing points into it afterwards)
 * @err: NULL, or where the code and a message naming the field are written on failure
 * On success *out owns its arrays (proto_request_fini()); on failure *out is zeroed.
 * Return: BASE_OK; BASE_EPROTO (bad_msgpack); BASE_ELIMIT (too_large, too_many_candidates);
 *         BASE_ENOMEM (internal); BASE_EINVAL (every other code).
 */
base_err proto_request_decode(const uint8_t *buf, size_t len, proto_request *out, proto_error *err);

/*
 * proto_request_decode_reuse() - proto_request_decode() for a server's request path: the
 * msgpack zone and the arrays come from buffers this thread keeps from one request to the
 * next (freed when the thread exits), so a request allocates nothing. The arrays of *out
 * stay valid until the next proto_request_decode_reuse() on the same thread; a request
 * must not outlive its handling. proto_request_fini() still applies (it frees nothing).
 */
base_err proto_request_decode_reuse(const uint8_t *buf, size_t len, proto_request *out,
                                    proto_error *err);

/* proto_request_fini() - free @r's arrays and zero them. Accepts NULL; idempotent. */
void proto_request_fini(proto_request *r);

/*
 * proto_request_encode() - append the request @r (as proto_request_decode() fills it) to
 * @out: only the fields of r->op, optional ones only when set.
 * Return: BASE_OK; BASE_EINVAL for an op outside the enum; BASE_ELIMIT or BASE_ENOMEM from
 *         @out, which is then left as it was.
 */
base_err proto_request_encode(base_buf *out, const proto_request *r);

/* The fields of a decide or log request to encode; every pointer is borrowed. */
typedef struct proto_decide_req {
    const char *policy;          /* required */
    const char *event_id;        /* NULL or "": absent (decide only; log requires it) */
    const char *conversation_id; /* NULL or "": absent */
    const char *user_id;         /* NULL or "": absent (the customer, for erasure) */
    uint32_t turn;               /* 0: absent */
    bool deferred;               /* false: absent */
    bool no_explore;             /* decide: true sends "explore": false */
    bool has_explore_budget;     /* decide: send "explore_budget" */
    double explore_budget;       /* in [0, 1] */
    const char *segment;         /* NULL or "": absent; else context.segment */
    const float *embedding;      /* [dim], sent as a bin of float32 */
    uint32_t dim;                /* <= BASE_DIM_MAX */
    uint32_t n_cand;             /* 1..BASE_CAND_MAX */
    const char *const *cand_ids; /* [n_cand], none NULL */
    const float *base_logits;    /* [n_cand], sent as float64 */
    const float *features;       /* NULL, or [n_cand x action_dim]: each candidate's "features" */
    uint32_t action_dim;         /* with features: 1..BASE_ACTION_DIM_MAX */
    const char *chosen;          /* log only: required */
    const float *pmf;            /* log only: [n_cand], sent as a bin of float32 */
} proto_decide_req;

/*
 * proto_encode_decide() / proto_encode_log() - append a decide (log) request to @out:
 * {"v":1, "op":"decide", "policy", ["event_id"], ["conversation_id"], ["user_id"], ["turn"],
 *  ["deferred"], "context":{"embedding"}, "candidates":[{"id", "base_logit"}]}
 * and for log also "chosen" and "pmf". Strings are not checked here: the daemon does that.
 * Return: BASE_OK; BASE_EINVAL (a NULL required pointer, n_cand 0 or > BASE_CAND_MAX,
 *         dim > BASE_DIM_MAX; log: no event_id, chosen or pmf); BASE_ELIMIT or BASE_ENOMEM
 *         from @out. On failure @out is left as it was.
 */
base_err proto_encode_decide(base_buf *out, const proto_decide_req *q);
base_err proto_encode_log(base_buf *out, const proto_decide_req *q);

/* The fields of a feedback request to encode; every pointer is borrowed. */
typedef struct proto_feedback_req {
    const char *policy;          /* required */
    const char *event_id;        /* NULL or "": absent; at least one of event_id and */
    const char *conversation_id; /*   conversation_id is required */
    const char *signal;          /* required */
    double value;                /* always sent */
    const char *outcome_id;      /* NULL or "": absent */
    const char *supersedes;      /* NULL or "": absent */
    const char *user_id;         /* NULL or "": absent */
    int64_t ts_ms;               /* 0: absent */
} proto_feedback_req;

/*
 * proto_encode_feedback() - append {"v":1, "op":"feedback", "policy", ["event_id"],
 * ["conversation_id"], "signal", "value", ["outcome_id"], ["supersedes"], ["user_id"],
 * ["ts"]} to @out.
 * Return: BASE_OK; BASE_EINVAL (NULL or empty policy or signal, neither event_id nor
 *         conversation_id, ts_ms < 0); BASE_ELIMIT or BASE_ENOMEM from @out (left as it was).
 */
base_err proto_encode_feedback(base_buf *out, const proto_feedback_req *q);

/*
 * proto_encode_activate() - append {"v":1, "op":"activate", "policy", "event_id"}.
 * Return: BASE_OK; BASE_EINVAL (NULL or empty argument); BASE_ELIMIT; BASE_ENOMEM.
 */
base_err proto_encode_activate(base_buf *out, const char *policy, const char *event_id);

/*
 * proto_encode_explain() - append {"v":1, "op":"explain", "policy", "event_id"}.
 * Return: BASE_OK; BASE_EINVAL (NULL or empty argument); BASE_ELIMIT; BASE_ENOMEM.
 */
base_err proto_encode_explain(base_buf *out, const char *policy, const char *event_id);

/*
 * proto_encode_stats() - append {"v":1, "op":"stats", ["policy"]}; @policy NULL or "": all.
 * proto_encode_health() - append {"v":1, "op":"health"}.
 * Return: BASE_OK; BASE_ELIMIT or BASE_ENOMEM from @out (left as it was).
 */
base_err proto_encode_stats(base_buf *out, const char *policy);
base_err proto_encode_health(base_buf *out);

/*
 * proto_encode_clock() - append {"v":1, "op":"clock", "set_ms"} when @set_ms >= 0, else
 * {"v":1, "op":"clock", "advance_ms"}. Tests only.
 * Return: BASE_OK; BASE_EINVAL when both are negative; BASE_ELIMIT; BASE_ENOMEM.
 */
base_err proto_encode_clock(base_buf *out, int64_t set_ms, int64_t advance_ms);

#endif
