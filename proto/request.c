#include "proto/request.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
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

#define ECHO_MAX 32      /* bytes of peer text echoed into an error message */
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

/* ------------------------------------------------- decoding: field readers */

static base_err reject_oom(proto_error *err)
{
    return proto_error_set(err, PROTO_E_INTERNAL, "out of memory");
}

/*
 * Copy at most ECHO_MAX bytes of peer text into @dst, replacing anything but printable
 * ASCII with '?', so error messages stay valid UTF-8 whatever the peer sent.
 */
static void echo_text(char *dst, size_t dst_size, const char *src, uint32_t n)
{
    size_t i = 0;
    for (; i < n && i < ECHO_MAX && i + 1 < dst_size; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    dst[i] = '\0';
}

/* Sets err for a failed proto_mp_unpack*() @e; returns @e. */
static base_err report_unpack(base_err e, proto_error *err)
{
    if (e == BASE_ELIMIT) {
        e = proto_error_set(err, PROTO_E_TOO_LARGE,
                            "message nests deeper than %u or holds "
                            "more than %u objects",
                            PROTO_MAX_DEPTH, PROTO_MAX_OBJECTS);
    } else if (e == BASE_ENOMEM) {
        e = reject_oom(err);
    } else if (e != BASE_OK) {
        e = proto_error_set(err, PROTO_E_BAD_MSGPACK, "not one well-formed msgpack object");
    }
    return e;
}

/*
 * Check @buf and unpack it into @u (initialised by the caller, which destroys it on every
 * path). Sets err on failure.
 */
static base_err unpack(const uint8_t *buf, size_t len, msgpack_unpacked *u, proto_error *err)
{
    return report_unpack(proto_mp_unpack(buf, len, PROTO_MAX_DEPTH, PROTO_MAX_OBJECTS, u), err);
}

/* unpack() into the caller's zone @z: the object @o lives until the zone is cleared. */
static base_err unpack_in(const uint8_t *buf, size_t len, msgpack_zone *z, msgpack_object *o,
                          proto_error *err)
{
    base_err e = proto_mp_unpack_in(buf, len, PROTO_MAX_DEPTH, PROTO_MAX_OBJECTS, z, o);
    return report_unpack(e, err);
}

/*
 * Look up @names in the map @m (called @where in messages): out[i] is the value of
 * names[i] or NULL. Rejects non-string keys and duplicate keys; ignores unknown keys.
 */
static base_err map_fields(const msgpack_object *m, const char *where, const char *const *names,
                           size_t n_names, const msgpack_object **out, proto_error *err)
{
    proto_mp_fault f = PROTO_MP_WRONG_TYPE;
    base_err e = BASE_OK;

    if (proto_mp_map_fields(m, names, n_names, true, out, &f)) {
        goto done;
    }
    switch (f) {
    case PROTO_MP_KEY_NOT_STR:
        e = proto_error_set(err, PROTO_E_BAD_REQUEST, "%s has a key that is not a string", where);
        break;
    case PROTO_MP_DUP_KEY:
        e = proto_error_set(err, PROTO_E_BAD_REQUEST, "%s has a duplicate key", where);
        break;
    case PROTO_MP_NO_MEMORY:
        e = reject_oom(err);
        break;
    default:
        e = proto_error_set(err, PROTO_E_BAD_REQUEST, "%s must be a map", where);
        break;
    }
done:
    return e;
}

/*
 * Copy the string field @o (named @name) into @dst of @max + 1 bytes. Absent: "" unless
 * @required. Rejects non-strings, strings over @max bytes, embedded NUL bytes, text that is
 * not valid UTF-8 (it would be echoed into error replies, records and stats), and empty
 * required strings.
 */
static base_err get_str(const msgpack_object *o, const char *name, bool required, size_t max,
                        char *dst, proto_error *err)
{
    proto_mp_fault f = PROTO_MP_WRONG_TYPE;
    base_err e = BASE_OK;

    if (o == NULL) {
        dst[0] = '\0';
        if (required) {
            e = proto_error_set(err, PROTO_E_BAD_REQUEST, "missing field '%s'", name);
        }
        goto done;
    }
    if (!proto_mp_get_str(o, max, true, dst, &f)) {
        switch (f) {
        case PROTO_MP_TOO_LONG:
            e = proto_error_set(err, PROTO_E_TOO_LARGE, "field '%s' is longer than %zu bytes", name,
                                max);
            break;
        case PROTO_MP_HAS_NUL:
            e = proto_error_set(err, PROTO_E_BAD_REQUEST, "field '%s' contains a NUL byte", name);
            break;
        case PROTO_MP_NOT_UTF8:
            e = proto_error_set(err, PROTO_E_BAD_REQUEST, "field '%s' is not valid UTF-8", name);
            break;
        default:
            e = proto_error_set(err, PROTO_E_BAD_REQUEST, "field '%s' must be a string", name);
            break;
        }
        goto done;
    }
    if (required && dst[0] == '\0') {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST, "field '%s' must not be empty", name);
    }
done:
    return e;
}

/* A required number that must be finite as a float32 (where it will be stored). */
static base_err get_f32(const msgpack_object *o, const char *name, float *out, proto_error *err)
{
    proto_mp_fault f = PROTO_MP_WRONG_TYPE;
    base_err e = BASE_OK;

    if (o == NULL) {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST, "missing field '%s'", name);
    } else if (!proto_mp_get_f32(o, out, &f)) {
        e = f == PROTO_MP_NOT_FINITE
                ? proto_error_set(err, PROTO_E_NOT_FINITE, "field '%s' is not a finite float32",
                                  name)
                : proto_error_set(err, PROTO_E_BAD_REQUEST, "field '%s' must be a number", name);
    }
    return e;
}

/* A non-negative integer field into *out, or -1 when absent. */
static base_err get_ms(const msgpack_object *o, const char *name, int64_t *out, proto_error *err)
{
    uint64_t v = 0;

    *out = -1;
    if (o == NULL) {
        return BASE_OK;
    }
    if (!proto_mp_get_u64(o, INT64_MAX, &v, NULL)) {
        return proto_error_set(err, PROTO_E_BAD_REQUEST,
                               "field '%s' must be a non-negative integer", name);
    }
    *out = (int64_t)v;
    return BASE_OK;
}

/*
 * A required, non-empty float vector (bin of LE float32, or array of numbers) of at most
 * @max entries, allocated into *out; past @max it is @over_code.
 */
static base_err get_vec(proto_request *r, enum proto_scratch_slot slot, const msgpack_object *o,
                        const char *name, uint32_t max, proto_errcode over_code, float **out,
                        uint32_t *out_n, proto_error *err)
{
    proto_mp_fault f = PROTO_MP_WRONG_TYPE;
    base_err e = BASE_OK;
    float *v = NULL;
    uint32_t n = 0, at = 0;

    if (o == NULL) {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST, "missing field '%s'", name);
        goto fail;
    }
    if (!proto_mp_fvec_count(o, &n, &at, &f)) {
        if (f == PROTO_MP_BAD_LENGTH) {
            e = proto_error_set(err, PROTO_E_BAD_REQUEST,
                                "field '%s' is a bin of %" PRIu32 " bytes, not a multiple of 4",
                                name, o->via.bin.size);
        } else if (f == PROTO_MP_BAD_ELEMENT) {
            e = proto_error_set(err, PROTO_E_BAD_REQUEST,
                                "field '%s[%" PRIu32 "]' must be a number", name, at);
        } else {
            e = proto_error_set(err, PROTO_E_BAD_REQUEST,
                                "field '%s' must be a bin of float32 or an array of numbers", name);
        }
        goto fail;
    }
    if (n > max) {
        e = proto_error_set(err, over_code, "field '%s' has %" PRIu32 " entries, at most %" PRIu32,
                            name, n, max);
        goto fail;
    }
    if (n == 0) {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST, "field '%s' must not be empty", name);
        goto fail;
    }
    v = proto_req_array(r, slot, n, sizeof(float));
    if (v == NULL) {
        e = reject_oom(err);
        goto fail;
    }
    *out = v; /* r's: proto_request_fini() frees it if it is not scratch */
    if (!proto_mp_fvec_read(o, n, v, &at, NULL)) {
        e = proto_error_set(err, PROTO_E_NOT_FINITE, "field '%s[%" PRIu32 "]' is not finite", name,
                            at);
        goto fail;
    }
    *out_n = n;
fail:
    return e;
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

/* Reject two candidates with the same id: pmf entries and feedback would be ambiguous. */
static base_err check_unique_ids(proto_request *r, proto_error *err)
{
    base_err e = BASE_OK;
    const char **ids = proto_req_array(r, PROTO_S_IDS, r->n_cand, sizeof(*ids));

    if (ids == NULL) {
        e = reject_oom(err);
        goto fail;
    }
    for (uint32_t i = 0; i < r->n_cand; i++) {
        ids[i] = r->cand[i].id;
    }
    qsort(ids, r->n_cand, sizeof(*ids), cstr_ptr_cmp);
    for (uint32_t i = 1; i < r->n_cand; i++) {
        if (strcmp(ids[i - 1], ids[i]) == 0) {
            e = proto_error_set(err, PROTO_E_BAD_REQUEST, "two candidates have the same id");
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

static base_err decode_candidates(const msgpack_object *o, proto_request *r, proto_error *err)
{
    static const char *const names[] = {"id", "base_logit"};
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
        e = reject_oom(err);
        goto fail;
    }
    r->n_cand = o->via.array.size;
    for (uint32_t i = 0; i < r->n_cand; i++) {
        const msgpack_object *c = &o->via.array.ptr[i];
        const msgpack_object *f[2];
        /* Names are formatted only for an error: nothing is printed on the way through. */
        if (c->type != MSGPACK_OBJECT_MAP) {
            e = proto_error_set(err, PROTO_E_BAD_REQUEST, "candidates[%" PRIu32 "] must be a map",
                                i);
            goto fail;
        }
        e = map_fields(c, "candidate", names, 2, f, err);
        if (e == BASE_OK) {
            e = get_str(f[0], "id", true, BASE_NAME_MAX, r->cand[i].id, err);
        }
        if (e == BASE_OK) {
            e = get_f32(f[1], "base_logit", &r->cand[i].base_logit, err);
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

    e = get_str(f[F_CHOSEN], "chosen", true, BASE_NAME_MAX, r->chosen, err);
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
    e = get_vec(r, PROTO_S_PMF, f[F_PMF], "pmf", BASE_CAND_MAX, PROTO_E_TOO_LARGE, &r->pmf, &n,
                err);
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

    e = get_str(f[F_POLICY], "policy", true, BASE_NAME_MAX, r->policy, err);
    if (e == BASE_OK) {
        e = get_str(f[F_EVENT_ID], "event_id", is_log, BASE_ID_MAX, r->event_id, err);
    }
    if (e == BASE_OK) {
        e = get_str(f[F_CONVERSATION_ID], "conversation_id", false, BASE_ID_MAX, r->conversation_id,
                    err);
    }
    if (e == BASE_OK) {
        e = get_str(f[F_USER_ID], "user_id", false, BASE_ID_MAX, r->user_id, err);
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
    e = map_fields(f[F_CONTEXT], "context", ctx_names, 2, ctx, err);
    if (e == BASE_OK) {
        e = get_str(ctx[1], "context.segment", false, BASE_NAME_MAX, r->segment, err);
    }
    if (e != BASE_OK) {
        goto fail;
    }
    const msgpack_object *emb = ctx[0];
    e = get_vec(r, PROTO_S_EMBEDDING, emb, "context.embedding", BASE_DIM_MAX, PROTO_E_TOO_LARGE,
                &r->embedding, &r->dim, err);
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
    base_err e = get_str(f[F_POLICY], "policy", true, BASE_NAME_MAX, r->policy, err);
    proto_mp_fault fault = PROTO_MP_WRONG_TYPE;

    if (e == BASE_OK) {
        e = get_str(f[F_EVENT_ID], "event_id", false, BASE_ID_MAX, r->event_id, err);
    }
    if (e == BASE_OK) {
        e = get_str(f[F_CONVERSATION_ID], "conversation_id", false, BASE_ID_MAX, r->conversation_id,
                    err);
    }
    if (e != BASE_OK) {
        goto fail;
    }
    if (r->event_id[0] == '\0' && r->conversation_id[0] == '\0') {
        e = proto_error_set(err, PROTO_E_BAD_REQUEST,
                            "feedback needs 'event_id' or 'conversation_id'");
        goto fail;
    }
    e = get_str(f[F_SIGNAL], "signal", true, BASE_NAME_MAX, r->signal, err);
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
    e = get_str(f[F_OUTCOME_ID], "outcome_id", false, BASE_ID_MAX, r->outcome_id, err);
    if (e == BASE_OK) {
        e = get_str(f[F_SUPERSEDES], "supersedes", false, BASE_ID_MAX, r->supersedes, err);
    }
    if (e == BASE_OK) {
        e = get_str(f[F_USER_ID], "user_id", false, BASE_ID_MAX, r->user_id, err);
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
    base_err e = get_ms(f[F_SET_MS], "set_ms", &r->clock_set_ms, err);
    if (e == BASE_OK) {
        e = get_ms(f[F_ADVANCE_MS], "advance_ms", &r->clock_advance_ms, err);
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
        char echo[ECHO_MAX + 1];
        echo_text(echo, sizeof(echo), op->via.str.ptr, op->via.str.size);
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
    e = map_fields(o, "auth", names, 4, f, err);
    if (e == BASE_OK) {
        e = get_str(f[0], "auth.client", true, BASE_NAME_MAX, a->client, err);
    }
    if (e == BASE_OK) {
        e = get_ms(f[1], "auth.ts", &ts, err);
        if (e == BASE_OK && ts < 0) {
            e = proto_error_set(err, PROTO_E_BAD_REQUEST, "missing field 'auth.ts'");
        }
    }
    if (e == BASE_OK) {
        e = get_str(f[2], "auth.nonce", true, BASE_ID_MAX, a->nonce, err);
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
    e = map_fields(top, "request", field_names, F_COUNT, f, err);
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
        e = get_str(f[F_POLICY], "policy", false, BASE_NAME_MAX, r->policy, err);
        break;
    case PROTO_OP_HEALTH:
        break;
    case PROTO_OP_ACTIVATE:
        e = get_str(f[F_POLICY], "policy", true, BASE_NAME_MAX, r->policy, err);
        if (e == BASE_OK) {
            e = get_str(f[F_EVENT_ID], "event_id", true, BASE_ID_MAX, r->event_id, err);
        }
        break;
    case PROTO_OP_CLOCK:
        e = decode_clock(f, r, err);
        break;
    case PROTO_OP_EXPLAIN:
        e = get_str(f[F_POLICY], "policy", true, BASE_NAME_MAX, r->policy, err);
        if (e == BASE_OK) {
            e = get_str(f[F_EVENT_ID], "event_id", true, BASE_ID_MAX, r->event_id, err);
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
        e = unpack_in(buf, len, proto_scratch_zone(s), &u.data, we);
    } else {
        e = unpack(buf, len, &u, we);
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
        }
        r->scratch = NULL;
        r->embedding = NULL;
        r->cand = NULL;
        r->pmf = NULL;
        r->dim = 0;
        r->n_cand = 0;
    }
}
