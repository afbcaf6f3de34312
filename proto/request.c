#include "proto/request.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "base/alloc.h"
#include "base/utf8.h"
#include "proto/mp.h"
#include "proto/request_impl.h"

/*
 * The request decoder of proto/request.h (the encoders are in request_encode.c). Field
 * readers wrap proto/mp.h's with the error messages docs/protocol.md promises, and fields
 * are read in the order its section 8 gives, so the first problem is the one reported.
 */

#define PMF_SUM_TOL 1e-3 /* |sum(pmf) - 1| allowed in a log request */

static const char *const op_names[] = {
    [PROTO_OP_DECIDE] = "decide", [PROTO_OP_LOG] = "log",         [PROTO_OP_FEEDBACK] = "feedback",
    [PROTO_OP_STATS] = "stats",   [PROTO_OP_HEALTH] = "health",   [PROTO_OP_ACTIVATE] = "activate",
    [PROTO_OP_CLOCK] = "clock",   [PROTO_OP_EXPLAIN] = "explain",
};

#define N_OPS (sizeof(op_names) / sizeof(op_names[0]))

const char *proto_op_name(proto_op op)
{
    return (unsigned)op < N_OPS ? op_names[op] : "";
}

/* ------------------------------------------------------ decoding: requests */

enum field {
    F_V,
    F_OP,
    F_POLICY,
    F_EVENT_ID,
    F_CONVERSATION_ID,
    F_TURN,
    F_CONTEXT,
    F_CANDIDATES,
    F_DEFERRED,
    F_CHOSEN,
    F_PMF,
    F_SIGNAL,
    F_VALUE,
    F_OUTCOME_ID,
    F_TS,
    F_SUPERSEDES,
    F_USER_ID,
    F_SET_MS,
    F_ADVANCE_MS,
    F_AUTH,
    F_EXPLORE,
    F_EXPLORE_BUDGET,
    F_COUNT
};

static const char *const field_names[F_COUNT] = {
    [F_V] = "v",
    [F_OP] = "op",
    [F_POLICY] = "policy",
    [F_EVENT_ID] = "event_id",
    [F_CONVERSATION_ID] = "conversation_id",
    [F_TURN] = "turn",
    [F_CONTEXT] = "context",
    [F_CANDIDATES] = "candidates",
    [F_DEFERRED] = "deferred",
    [F_CHOSEN] = "chosen",
    [F_PMF] = "pmf",
    [F_SIGNAL] = "signal",
    [F_VALUE] = "value",
    [F_OUTCOME_ID] = "outcome_id",
    [F_TS] = "ts",
    [F_SUPERSEDES] = "supersedes",
    [F_USER_ID] = "user_id",
    [F_SET_MS] = "set_ms",
    [F_ADVANCE_MS] = "advance_ms",
    [F_AUTH] = "auth",
    [F_EXPLORE] = "explore",
    [F_EXPLORE_BUDGET] = "explore_budget",
};

static int cstr_ptr_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The index of the candidate whose id field @id is. */
static size_t cand_index(const proto_request *r, const char *id)
{
    const proto_candidate *c = (const void *)(id - offsetof(proto_candidate, id));
    return (size_t)(c - r->cand);
}

/* Reject two candidates with the same id: pmf entries and feedback would be ambiguous. */
static base_err check_unique_ids(proto_request *r, proto_error *err)
{
    base_err e = BASE_OK;
    const char **ids = proto_req_array(r, PROTO_S_IDS, r->n_cand, sizeof(*ids));

    if (ids == NULL) {
        e = proto_req_reject_oom(err);
        goto fail;
    }
    for (uint32_t i = 0; i < r->n_cand; i++) {
        ids[i] = r->cand[i].id;
    }
    qsort(ids, r->n_cand, sizeof(*ids), cstr_ptr_cmp);
    for (uint32_t i = 1; i < r->n_cand; i++) {
        if (strcmp(ids[i - 1], ids[i]) == 0) {
            size_t a = cand_index(r, ids[i - 1]), b = cand_index(r, ids[i]);
            e = proto_error_set(err, PROTO_E_BAD_REQUEST,
                                "field 'candidates[%zu].id' repeats candidates[%zu].id",
                                a > b ? a : b, a < b ? a : b);
            goto fail;
        }
    }
fail:
    if (r->scratch == NULL) {
        base_free(ids);
    }
    return e;
}

/*
 * The error of a candidate's field, named as the request names it: "field 'id'"
 * becomes "field 'candidates[i].id'", "candidate has ..." "candidates[i] has ...".
 */
static void in_candidate(proto_error *err, uint32_t i)
{
    char msg[sizeof(err->message)];
    char where[32];
    (void)snprintf(where, sizeof(where), "candidates[%" PRIu32 "]", i); /* fits */
    const char *q = strchr(err->message, '\'');
    if (strncmp(err->message, "candidate ", 10) == 0) {
        (void)snprintf(msg, sizeof(msg), "%s%s", where, err->message + 9);
    } else if (q != NULL) {
        (void)snprintf(msg, sizeof(msg), "%.*s%s.%s", (int)(q - err->message + 1), err->message,
                       where, q + 1);
    } else {
        return;
    }
    memcpy(err->message, msg, sizeof(msg));
}

/*
 * Candidate @i's "features" @o (NULL: absent) into row i of r->features: every candidate
 * carries them, with the same count, or none does. Errors name the field "features";
 * in_candidate() places it.
 */
static base_err get_features(proto_request *r, uint32_t i, const msgpack_object *o,
                             proto_error *err)
{
    uint32_t n = 0, at = 0;
    proto_mp_fault fault = PROTO_MP_WRONG_TYPE;
    if (i > 0 && (o != NULL) != (r->action_dim > 0)) {
        return proto_error_set(err, PROTO_E_BAD_REQUEST,
                               "candidate has %s 'features' but candidates[0] %s",
                               o != NULL ? "field" : "no field", o != NULL ? "has none" : "has");
    }
    if (o == NULL) {
        return BASE_OK;
    }
    if (!proto_mp_fvec_count(o, &n, &at, &fault)) {
        return proto_req_vec_fault(o, "features", fault, at, err);
    }
    if (n == 0) {
        return proto_error_set(err, PROTO_E_BAD_REQUEST, "field 'features' must not be empty");
    }
    if (n > BASE_ACTION_DIM_MAX) {
        return proto_error_set(err, PROTO_E_TOO_LARGE,
                               "field 'features' has %" PRIu32 " entries, at most %u", n,
                               BASE_ACTION_DIM_MAX);
    }
    if (i == 0) {
        r->features = proto_req_array(r, PROTO_S_FEATURES, (size_t)r->n_cand * n, sizeof(float));
        if (r->features == NULL) {
            return proto_req_reject_oom(err);
        }
        r->action_dim = n;
    } else if (n != r->action_dim) {
        return proto_error_set(err, PROTO_E_BAD_REQUEST,
                               "field 'features' has %" PRIu32 " entries, candidates[0]'s %" PRIu32,
                               n, r->action_dim);
    }
    if (!proto_mp_fvec_read(o, n, r->features + (size_t)i * n, &at, NULL)) {
        return proto_error_set(err, PROTO_E_NOT_FINITE,
                               "field 'features[%" PRIu32 "]' is not finite", at);
    }
    return BASE_OK;
}

static base_err decode_candidates(const msgpack_object *o, proto_request *r, proto_error *err)
{
    static const char *const names[] = {"id", "base_logit", "features"};
    base_err e = BASE_OK;

    if (o == NULL) {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST, "missing field 'candidates'");
        goto fail;
    }
    if (o->type != MSGPACK_OBJECT_ARRAY) {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST, "field 'candidates' must be an array");
        goto fail;
    }
    if (o->via.array.size == 0) {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST, "field 'candidates' must not be empty");
        goto fail;
    }
    if (o->via.array.size > BASE_CAND_MAX) {
        e = proto_error_set(err, PROTO_E_TOO_MANY_CANDIDATES, "%" PRIu32 " candidates, at most %u",
                            o->via.array.size, BASE_CAND_MAX);
        goto fail;
    }
    r->cand = proto_req_array(r, PROTO_S_CAND, o->via.array.size, sizeof(*r->cand));
    if (r->cand == NULL) {
        e = proto_req_reject_oom(err);
        goto fail;
    }
    r->n_cand = o->via.array.size;
    for (uint32_t i = 0; i < r->n_cand; i++) {
        const msgpack_object *c = &o->via.array.ptr[i];
        const msgpack_object *f[3];
        /* Names are formatted only for an error: nothing is printed on the way through. */
        if (c->type != MSGPACK_OBJECT_MAP) {
            e = proto_error_set(err, PROTO_E_BAD_REQUEST, "candidates[%" PRIu32 "] must be a map",
                                i);
            goto fail;
        }
        e = proto_req_map_fields(c, "candidate", names, 3, f, err);
        if (e == BASE_OK) {
            e = proto_req_get_str(f[0], "id", true, BASE_NAME_MAX, r->cand[i].id, err);
        }
        if (e == BASE_OK) {
            e = proto_req_get_f32(f[1], "base_logit", &r->cand[i].base_logit, err);
        }
        if (e == BASE_OK) {
            e = get_features(r, i, f[2], err);
        }
        if (e != BASE_OK) {
            in_candidate(err, i);
            goto fail;
        }
    }
    e = check_unique_ids(r, err);
fail:
    return e;
}

static base_err decode_log_choice(const msgpack_object **f, proto_request *r, proto_error *err)
{
    base_err e = BASE_OK;
    uint32_t n = 0;
    bool found = false;

    e = proto_req_get_str(f[F_CHOSEN], "chosen", true, BASE_NAME_MAX, r->chosen, err);
    if (e != BASE_OK) {
        goto fail;
    }
    for (uint32_t i = 0; i < r->n_cand && !found; i++) {
        found = strcmp(r->cand[i].id, r->chosen) == 0;
    }
    if (!found) {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST, "field 'chosen' is not among the candidates");
        goto fail;
    }
    e = proto_req_get_vec(r, PROTO_S_PMF, f[F_PMF], "pmf", BASE_CAND_MAX, PROTO_E_TOO_LARGE,
                          &r->pmf, &n, err);
    if (e != BASE_OK) {
        goto fail;
    }
    if (n != r->n_cand) {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST,
                            "field 'pmf' has %" PRIu32 " entries for %" PRIu32 " candidates", n,
                            r->n_cand);
        goto fail;
    }
    double sum = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        if (r->pmf[i] < 0.0f || r->pmf[i] > 1.0f) {
            e = proto_error_set(err, PROTO_E_BAD_REQUEST,
                                "field 'pmf[%" PRIu32 "]' is outside [0, 1]", i);
            goto fail;
        }
        sum += r->pmf[i];
    }
    if (fabs(sum - 1.0) > PMF_SUM_TOL) {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST, "field 'pmf' sums to %.6g, not 1", sum);
        goto fail;
    }
fail:
    return e;
}

/* decide and log: everything but the log-only fields. */
static base_err decode_choice(const msgpack_object **f, proto_request *r, proto_error *err)
{
    static const char *const ctx_names[] = {"embedding", "segment"};
    base_err e = BASE_OK;
    bool is_log = r->op == PROTO_OP_LOG;
    const msgpack_object *ctx[2] = {NULL, NULL};

    e = proto_req_get_str(f[F_POLICY], "policy", true, BASE_NAME_MAX, r->policy, err);
    if (e == BASE_OK) {
        e = proto_req_get_str(f[F_EVENT_ID], "event_id", is_log, BASE_ID_MAX, r->event_id, err);
    }
    if (e == BASE_OK) {
        e = proto_req_get_str(f[F_CONVERSATION_ID], "conversation_id", false, BASE_ID_MAX,
                              r->conversation_id, err);
    }
    if (e == BASE_OK) {
        e = proto_req_get_str(f[F_USER_ID], "user_id", false, BASE_ID_MAX, r->user_id, err);
    }
    if (e != BASE_OK) {
        goto fail;
    }
    if (f[F_TURN] != NULL && !proto_mp_get_u32(f[F_TURN], UINT32_MAX, &r->turn, NULL)) {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST,
                            "field 'turn' must be an integer in [0, %" PRIu32 "]", UINT32_MAX);
        goto fail;
    }
    if (f[F_DEFERRED] != NULL && !proto_mp_get_bool(f[F_DEFERRED], &r->deferred, NULL)) {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST, "field 'deferred' must be a boolean");
        goto fail;
    }
    bool explore = true;
    if (!is_log && f[F_EXPLORE] != NULL && !proto_mp_get_bool(f[F_EXPLORE], &explore, NULL)) {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST, "field 'explore' must be a boolean");
        goto fail;
    }
    r->no_explore = !explore;
    if (!is_log && f[F_EXPLORE_BUDGET] != NULL) {
        double v = -1.0;
        if (!proto_mp_get_f64(f[F_EXPLORE_BUDGET], &v, NULL) || !(v >= 0.0 && v <= 1.0)) {
            e = proto_error_set(err, PROTO_E_BAD_REQUEST,
                                "field 'explore_budget' must be a number in [0, 1]");
            goto fail;
        }
        r->explore_budget = v;
        r->has_explore_budget = true;
    }
    if (f[F_CONTEXT] == NULL) {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST, "missing field 'context'");
        goto fail;
    }
    if (f[F_CONTEXT]->type != MSGPACK_OBJECT_MAP) {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST, "field 'context' must be a map");
        goto fail;
    }
    e = proto_req_map_fields(f[F_CONTEXT], "context", ctx_names, 2, ctx, err);
    if (e == BASE_OK) {
        e = proto_req_get_str(ctx[1], "context.segment", false, BASE_NAME_MAX, r->segment, err);
    }
    if (e != BASE_OK) {
        goto fail;
    }
    const msgpack_object *emb = ctx[0];
    e = proto_req_get_vec(r, PROTO_S_EMBEDDING, emb, "context.embedding", BASE_DIM_MAX,
                          PROTO_E_TOO_LARGE, &r->embedding, &r->dim, err);
    if (e != BASE_OK) {
        goto fail;
    }
    e = decode_candidates(f[F_CANDIDATES], r, err);
    if (e == BASE_OK && is_log) {
        e = decode_log_choice(f, r, err);
    }
fail:
    return e;
}

static base_err decode_feedback(const msgpack_object **f, proto_request *r, proto_error *err)
{
    base_err e = proto_req_get_str(f[F_POLICY], "policy", true, BASE_NAME_MAX, r->policy, err);
    proto_mp_fault fault = PROTO_MP_WRONG_TYPE;

    if (e == BASE_OK) {
        e = proto_req_get_str(f[F_EVENT_ID], "event_id", false, BASE_ID_MAX, r->event_id, err);
    }
    if (e == BASE_OK) {
        e = proto_req_get_str(f[F_CONVERSATION_ID], "conversation_id", false, BASE_ID_MAX,
                              r->conversation_id, err);
    }
    if (e != BASE_OK) {
        goto fail;
    }
    if (r->event_id[0] == '\0' && r->conversation_id[0] == '\0') {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST,
                            "feedback needs 'event_id' or 'conversation_id'");
        goto fail;
    }
    e = proto_req_get_str(f[F_SIGNAL], "signal", true, BASE_NAME_MAX, r->signal, err);
    if (e != BASE_OK) {
        goto fail;
    }
    r->value = 1.0;
    if (f[F_VALUE] != NULL && !proto_mp_get_f64(f[F_VALUE], &r->value, &fault)) {
        e = fault == PROTO_MP_NOT_FINITE
                ? proto_error_set(err, PROTO_E_NOT_FINITE, "field 'value' is not finite")
                : proto_error_set(err, PROTO_E_BAD_REQUEST, "field 'value' must be a number");
        goto fail;
    }
    e = proto_req_get_str(f[F_OUTCOME_ID], "outcome_id", false, BASE_ID_MAX, r->outcome_id, err);
    if (e == BASE_OK) {
        e = proto_req_get_str(f[F_SUPERSEDES], "supersedes", false, BASE_ID_MAX, r->supersedes,
                              err);
    }
    if (e == BASE_OK) {
        e = proto_req_get_str(f[F_USER_ID], "user_id", false, BASE_ID_MAX, r->user_id, err);
    }
    if (e != BASE_OK) {
        goto fail;
    }
    uint64_t ts = 0;
    if (f[F_TS] != NULL && !proto_mp_get_u64(f[F_TS], INT64_MAX, &ts, NULL)) {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST,
                            "field 'ts' must be a non-negative integer (ms since the epoch)");
        goto fail;
    }
    r->ts_ms = (int64_t)ts;
fail:
    return e;
}

static base_err decode_clock(const msgpack_object **f, proto_request *r, proto_error *err)
{
    base_err e = proto_req_get_ms(f[F_SET_MS], "set_ms", &r->clock_set_ms, err);
    if (e == BASE_OK) {
        e = proto_req_get_ms(f[F_ADVANCE_MS], "advance_ms", &r->clock_advance_ms, err);
    }
    if (e == BASE_OK && (r->clock_set_ms < 0) == (r->clock_advance_ms < 0)) {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST,
                            "clock needs exactly one of 'set_ms', 'advance_ms'");
    }
    return e;
}

/* "v" and "op": the envelope every request carries. */
static base_err decode_envelope(const msgpack_object **f, proto_request *r, proto_error *err)
{
    base_err e = BASE_OK;
    const msgpack_object *v = f[F_V], *op = f[F_OP];
    bool found = false;

    if (v == NULL) {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST, "missing field 'v'");
    } else if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
               v->type != MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST, "field 'v' must be an integer");
    } else if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 != PROTO_VERSION) {
        e = proto_error_set(err, PROTO_E_BAD_VERSION,
                            "protocol version %d is the only one supported", PROTO_VERSION);
    } else if (op == NULL) {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST, "missing field 'op'");
    } else if (op->type != MSGPACK_OBJECT_STR) {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST, "field 'op' must be a string");
    } else if (!base_utf8_valid(op->via.str.ptr, op->via.str.size)) {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST, "field 'op' is not valid UTF-8");
    } else if (op->via.str.size == 0) {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST, "field 'op' must not be empty");
    } else if (memchr(op->via.str.ptr, '\0', op->via.str.size) != NULL) {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST, "field 'op' contains a NUL byte");
    }
    if (e != BASE_OK) {
        goto fail;
    }
    for (size_t i = 0; i < N_OPS && !found; i++) {
        size_t n = strlen(op_names[i]);
        if (op->via.str.size == n && memcmp(op->via.str.ptr, op_names[i], n) == 0) {
            r->op = (proto_op)i;
            found = true;
        }
    }
    if (!found) {
        char echo[PROTO_REQ_ECHO_MAX + 1];
        proto_req_echo(echo, sizeof(echo), op->via.str.ptr, op->via.str.size);
        e = proto_error_set(err, PROTO_E_UNKNOWN_OP, "unknown op '%s'", echo);
    }
fail:
    return e;
}

/*
 * "auth": {"client", "ts", "nonce", "mac": bin 32}. Only its shape is checked here; the
 * daemon verifies the mac over @buf (proto/auth.h), so the offset of the mac's bytes in
 * @buf is kept (msgpack-c's objects point into the buffer they were unpacked from).
 */
static base_err decode_auth(const msgpack_object *o, const uint8_t *buf, size_t len, proto_auth *a,
                            proto_error *err)
{
    static const char *const names[] = {"client", "ts", "nonce", "mac"};
    const msgpack_object *f[4];
    base_err e = BASE_OK;
    int64_t ts = -1;

    if (o == NULL) {
        return BASE_OK;
    }
    e = proto_req_map_fields(o, "auth", names, 4, f, err);
    if (e == BASE_OK) {
        e = proto_req_get_str(f[0], "auth.client", true, BASE_NAME_MAX, a->client, err);
    }
    if (e == BASE_OK) {
        e = proto_req_get_ms(f[1], "auth.ts", &ts, err);
        if (e == BASE_OK && ts < 0) {
            e = proto_error_set(err, PROTO_E_BAD_REQUEST, "missing field 'auth.ts'");
        }
    }
    if (e == BASE_OK) {
        e = proto_req_get_str(f[2], "auth.nonce", true, BASE_ID_MAX, a->nonce, err);
    }
    if (e != BASE_OK) {
        return e;
    }
    const msgpack_object *mac = f[3];
    if (mac == NULL || mac->type != MSGPACK_OBJECT_BIN ||
        mac->via.bin.size != PROTO_AUTH_MAC_BYTES) {
        return proto_error_set(err, PROTO_E_BAD_REQUEST,
                               "field 'auth.mac' must be a bin of %d bytes", PROTO_AUTH_MAC_BYTES);
    }
    const uint8_t *p = (const uint8_t *)mac->via.bin.ptr;
    if (p < buf || p > buf + len - PROTO_AUTH_MAC_BYTES) {
        return proto_error_set(err, PROTO_E_INTERNAL, "auth.mac is not in the message");
    }
    memcpy(a->mac, p, PROTO_AUTH_MAC_BYTES);
    a->mac_off = (size_t)(p - buf);
    a->ts_ms = ts;
    a->present = true;
    return BASE_OK;
}

static base_err decode_request(const msgpack_object *top, const uint8_t *buf, size_t len,
                               proto_request *r, proto_error *err)
{
    base_err e = BASE_OK;
    const msgpack_object *f[F_COUNT];

    if (top->type != MSGPACK_OBJECT_MAP) {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST, "request must be a map");
        goto fail;
    }
    e = proto_req_map_fields(top, "request", field_names, F_COUNT, f, err);
    if (e == BASE_OK) {
        e = decode_envelope(f, r, err);
    }
    if (e == BASE_OK) {
        e = decode_auth(f[F_AUTH], buf, len, &r->auth, err);
    }
    if (e != BASE_OK) {
        goto fail;
    }
    switch (r->op) {
    case PROTO_OP_DECIDE:
    case PROTO_OP_LOG:
        e = decode_choice(f, r, err);
        break;
    case PROTO_OP_FEEDBACK:
        e = decode_feedback(f, r, err);
        break;
    case PROTO_OP_STATS:
        e = proto_req_get_str(f[F_POLICY], "policy", false, BASE_NAME_MAX, r->policy, err);
        break;
    case PROTO_OP_HEALTH:
        break;
    case PROTO_OP_ACTIVATE:
        e = proto_req_get_str(f[F_POLICY], "policy", true, BASE_NAME_MAX, r->policy, err);
        if (e == BASE_OK) {
            e = proto_req_get_str(f[F_EVENT_ID], "event_id", true, BASE_ID_MAX, r->event_id, err);
        }
        break;
    case PROTO_OP_CLOCK:
        e = decode_clock(f, r, err);
        break;
    case PROTO_OP_EXPLAIN:
        e = proto_req_get_str(f[F_POLICY], "policy", true, BASE_NAME_MAX, r->policy, err);
        if (e == BASE_OK) {
            e = proto_req_get_str(f[F_EVENT_ID], "event_id", true, BASE_ID_MAX, r->event_id, err);
        }
        break;
    }
fail:
    return e;
}

/* Decode into @out, with the buffers of @s (NULL: allocate them). */
static base_err decode(const uint8_t *buf, size_t len, proto_scratch *s, proto_request *out,
                       proto_error *err)
{
    base_err e = BASE_OK;
    proto_error scratch;
    proto_error *we = err != NULL ? err : &scratch;
    proto_request r;
    msgpack_unpacked u;

    memset(&r, 0, sizeof(r));
    r.scratch = s;
    we->code = PROTO_E_NONE;
    we->message[0] = '\0';
    msgpack_unpacked_init(&u);
    if (s != NULL) {
        e = proto_req_unpack_in(buf, len, proto_scratch_zone(s), &u.data, we);
    } else {
        e = proto_req_unpack(buf, len, &u, we);
    }
    if (e != BASE_OK) {
        goto fail;
    }
    e = decode_request(&u.data, buf, len, &r, we);
    if (e != BASE_OK) {
        goto fail;
    }
    *out = r;
    memset(&r, 0, sizeof(r));
fail:
    msgpack_unpacked_destroy(&u);
    if (s != NULL) {
        msgpack_zone_clear(
            proto_scratch_zone(s)); /* nothing points into it: strings were copied out */
    }
    proto_request_fini(&r);
    if (e != BASE_OK) {
        memset(out, 0, sizeof(*out));
    }
    return e;
}

base_err proto_request_decode(const uint8_t *buf, size_t len, proto_request *out, proto_error *err)
{
    return decode(buf, len, NULL, out, err);
}

base_err proto_request_decode_reuse(const uint8_t *buf, size_t len, proto_request *out,
                                    proto_error *err)
{
    return decode(buf, len, proto_thread_scratch(), out, err);
}

void proto_request_fini(proto_request *r)
{
    if (r != NULL) {
        if (r->scratch == NULL) {
            base_free(r->embedding);
            base_free(r->cand);
            base_free(r->pmf);
            base_free(r->features);
        }
        r->scratch = NULL;
        r->embedding = NULL;
        r->cand = NULL;
        r->pmf = NULL;
        r->features = NULL;
        r->action_dim = 0;
        r->dim = 0;
        r->n_cand = 0;
    }
}
