#include "service/wire.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "base/alloc.h"
#include "base/mpcheck.h"
#include "base/utf8.h"

/*
 * Hazards this file guards against (DESIGN.md section 12):
 * - msgpack-c 4.0 trusts header counts, so every decoder runs base_mpcheck()
 *   over the raw bytes before msgpack_unpack_next() sees them.
 * - Unpacked str/bin objects point into the caller's buffer; nothing here
 *   keeps a msgpack_object past the msgpack_unpacked that made it.
 * - Maps with many keys: duplicate detection sorts (O(n log n)) instead of
 *   comparing every pair, so a 32k-key map cannot burn CPU.
 */

#define SMALL_MAP 16          /* maps up to this size check duplicates pairwise */
#define ECHO_MAX 32           /* bytes of peer text echoed into an error message */
#define JSON_EXPANSION 8      /* JSON bytes per msgpack byte, bound (see svc_wire_to_json) */
#define PMF_SUM_TOL 1e-3      /* |sum(pmf) - 1| allowed in a log request */
#define F32_CHUNK 64          /* floats converted per bin_body write */

static const char *const errcode_names[SVC_E_COUNT] = {
    [SVC_E_NONE] = "none",
    [SVC_E_BAD_MSGPACK] = "bad_msgpack",
    [SVC_E_TOO_LARGE] = "too_large",
    [SVC_E_BAD_REQUEST] = "bad_request",
    [SVC_E_BAD_VERSION] = "unsupported_version",
    [SVC_E_UNKNOWN_OP] = "unknown_op",
    [SVC_E_UNKNOWN_POLICY] = "unknown_policy",
    [SVC_E_BAD_DIMENSION] = "bad_dimension",
    [SVC_E_NOT_FINITE] = "not_finite",
    [SVC_E_TOO_MANY_CANDIDATES] = "too_many_candidates",
    [SVC_E_UNKNOWN_ACTION] = "unknown_action",
    [SVC_E_DUPLICATE_EVENT] = "duplicate_event",
    [SVC_E_UNKNOWN_EVENT] = "unknown_event",
    [SVC_E_UNKNOWN_SIGNAL] = "unknown_signal",
    [SVC_E_LIMIT] = "limit",
    [SVC_E_UNAVAILABLE] = "unavailable",
    [SVC_E_SHUTTING_DOWN] = "shutting_down",
    [SVC_E_INTERNAL] = "internal",
    [SVC_E_OUT_OF_RANGE] = "out_of_range",
    [SVC_E_RATE_LIMITED] = "rate_limited",
    [SVC_E_OP_NOT_ALLOWED] = "op_not_allowed",
};

const char *svc_errcode_name(svc_errcode c)
{
    /* An out-of-range code is a bug in the caller; peers still get a valid code. */
    return (unsigned)c < SVC_E_COUNT ? errcode_names[c] : errcode_names[SVC_E_INTERNAL];
}

void svc_errcode_from_name(const char *name, svc_errcode *out, bool *out_found)
{
    *out_found = false;
    for (unsigned i = 0; i < SVC_E_COUNT && name != NULL; i++) {
        if (strcmp(name, errcode_names[i]) == 0) {
            *out = (svc_errcode)i;
            *out_found = true;
            break;
        }
    }
}

/* ------------------------------------------------------------------ errors */

/* The base_err a decoding failure with reply code @c is reported as. */
static base_err errcode_to_base(svc_errcode c)
{
    base_err e = BASE_EINVAL;

    switch (c) {
    case SVC_E_NONE:
        e = BASE_OK;
        break;
    case SVC_E_BAD_MSGPACK:
        e = BASE_EPROTO;
        break;
    case SVC_E_TOO_LARGE:
    case SVC_E_TOO_MANY_CANDIDATES:
        e = BASE_ELIMIT;
        break;
    case SVC_E_INTERNAL:
        e = BASE_ENOMEM; /* the decoder's only internal failure is allocation */
        break;
    default:
        break;
    }
    return e;
}

static base_err reject(svc_wire_error *err, svc_errcode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record why decoding failed. A message longer than the buffer is cut short, which is fine. */
static base_err reject(svc_wire_error *err, svc_errcode code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    if (n < 0) {
        err->message[0] = '\0';
    }
    err->code = code;
    return errcode_to_base(code);
}

static base_err reject_oom(svc_wire_error *err)
{
    return reject(err, SVC_E_INTERNAL, "out of memory");
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

/* ---------------------------------------------------------------- unpacking */

/*
 * Check @buf with base_mpcheck() and unpack it into @u (initialised by the caller, which
 * destroys it on every path). Sets err on failure.
 */
static base_err unpack(const uint8_t *buf, size_t len, msgpack_unpacked *u, svc_wire_error *err)
{
    base_err e = base_mpcheck(buf, len, SVC_WIRE_MAX_DEPTH, SVC_WIRE_MAX_OBJECTS);
    if (e == BASE_ELIMIT) {
        e = reject(err, SVC_E_TOO_LARGE, "message nests deeper than %u or holds more than %u "
                   "objects", SVC_WIRE_MAX_DEPTH, SVC_WIRE_MAX_OBJECTS);
        goto fail;
    }
    if (e != BASE_OK) {
        e = reject(err, SVC_E_BAD_MSGPACK, "not one well-formed msgpack object");
        goto fail;
    }
    size_t off = 0;
    msgpack_unpack_return ret = msgpack_unpack_next(u, (const char *)buf, len, &off);
    if (ret == MSGPACK_UNPACK_NOMEM_ERROR) {
        e = reject_oom(err);
        goto fail;
    }
    if (ret != MSGPACK_UNPACK_SUCCESS || off != len) {
        e = reject(err, SVC_E_BAD_MSGPACK, "not one well-formed msgpack object");
        goto fail;
    }
fail:
    return e;
}

static bool str_is(const msgpack_object_str *s, const char *lit)
{
    size_t n = strlen(lit);
    return s->size == n && (n == 0 || memcmp(s->ptr, lit, n) == 0);
}

static int str_cmp(const msgpack_object_str *x, const msgpack_object_str *y)
{
    int c = 0;

    if (x->size != y->size) {
        c = x->size < y->size ? -1 : 1;
    } else if (x->size > 0) {
        c = memcmp(x->ptr, y->ptr, x->size);
    }
    return c;
}

static int str_ptr_cmp(const void *a, const void *b)
{
    return str_cmp(*(const msgpack_object_str *const *)a, *(const msgpack_object_str *const *)b);
}

/* Every key of @m is a string (checked by the caller). Sets *out_dup if any repeats. */
static base_err map_has_dup_keys(const msgpack_object_map *m, bool *out_dup)
{
    base_err e = BASE_OK;
    const msgpack_object_str **keys = NULL;
    bool dup = false;

    if (m->size <= SMALL_MAP) {
        for (uint32_t i = 0; i < m->size && !dup; i++) {
            for (uint32_t j = i + 1; j < m->size && !dup; j++) {
                dup = str_cmp(&m->ptr[i].key.via.str, &m->ptr[j].key.via.str) == 0;
            }
        }
        *out_dup = dup;
        goto fail;
    }
    keys = base_alloc_array(m->size, sizeof(*keys));
    if (keys == NULL) {
        e = BASE_ENOMEM;
        goto fail;
    }
    for (uint32_t i = 0; i < m->size; i++) {
        keys[i] = &m->ptr[i].key.via.str;
    }
    qsort(keys, m->size, sizeof(*keys), str_ptr_cmp);
    for (uint32_t i = 1; i < m->size && !dup; i++) {
        dup = str_cmp(keys[i - 1], keys[i]) == 0;
    }
    *out_dup = dup;
fail:
    base_free(keys);
    return e;
}

/*
 * Look up @names in the map @m (called @where in messages): out[i] is the value of
 * names[i] or NULL. Rejects non-string keys and duplicate keys; ignores unknown keys.
 */
static base_err map_fields(const msgpack_object *m, const char *where, const char *const *names,
                           size_t n_names, const msgpack_object **out, svc_wire_error *err)
{
    base_err e = BASE_OK;
    const msgpack_object_map *map = &m->via.map;
    bool dup = false;

    for (size_t i = 0; i < n_names; i++) {
        out[i] = NULL;
    }
    for (uint32_t k = 0; k < map->size; k++) {
        const msgpack_object *key = &map->ptr[k].key;
        if (key->type != MSGPACK_OBJECT_STR) {
            e = reject(err, SVC_E_BAD_REQUEST, "%s has a key that is not a string", where);
            goto fail;
        }
        for (size_t i = 0; i < n_names; i++) {
            if (str_is(&key->via.str, names[i])) {
                out[i] = &map->ptr[k].val;
                break;
            }
        }
    }
    e = map_has_dup_keys(map, &dup);
    if (e != BASE_OK) {
        e = reject_oom(err);
        goto fail;
    }
    if (dup) {
        e = reject(err, SVC_E_BAD_REQUEST, "%s has a duplicate key", where);
        goto fail;
    }
fail:
    return e;
}

/* ------------------------------------------------------------- field types */

/*
 * Copy the string field @o (named @name) into @dst of @max + 1 bytes. Absent: "" unless
 * @required. Rejects non-strings, strings over @max bytes, embedded NUL bytes, text that is
 * not valid UTF-8 (it would be echoed into error replies, records and stats), and empty
 * required strings.
 */
static base_err get_str(const msgpack_object *o, const char *name, bool required, size_t max,
                        char *dst, svc_wire_error *err)
{
    base_err e = BASE_OK;

    if (o == NULL) {
        if (required) {
            e = reject(err, SVC_E_BAD_REQUEST, "missing field '%s'", name);
            goto fail;
        }
        dst[0] = '\0';
        goto fail;
    }
    if (o->type != MSGPACK_OBJECT_STR) {
        e = reject(err, SVC_E_BAD_REQUEST, "field '%s' must be a string", name);
        goto fail;
    }
    if (o->via.str.size > max) {
        e = reject(err, SVC_E_TOO_LARGE, "field '%s' is longer than %zu bytes", name, max);
        goto fail;
    }
    if (o->via.str.size > 0 && memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL) {
        e = reject(err, SVC_E_BAD_REQUEST, "field '%s' contains a NUL byte", name);
        goto fail;
    }
    if (!base_utf8_valid(o->via.str.ptr, o->via.str.size)) {
        e = reject(err, SVC_E_BAD_REQUEST, "field '%s' is not valid UTF-8", name);
        goto fail;
    }
    if (required && o->via.str.size == 0) {
        e = reject(err, SVC_E_BAD_REQUEST, "field '%s' must not be empty", name);
        goto fail;
    }
    if (o->via.str.size > 0) {
        memcpy(dst, o->via.str.ptr, o->via.str.size);
    }
    dst[o->via.str.size] = '\0';
fail:
    return e;
}

static bool is_number(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
           o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER || o->type == MSGPACK_OBJECT_FLOAT32 ||
           o->type == MSGPACK_OBJECT_FLOAT64;
}

/* The value of a number object (is_number() holds). */
static double number_value(const msgpack_object *o)
{
    double v = o->via.f64;

    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        v = (double)o->via.u64;
    } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        v = (double)o->via.i64;
    }
    return v;
}

/* A required number that must be finite as a float32 (where it will be stored). */
static base_err get_f32(const msgpack_object *o, const char *name, float *out,
                        svc_wire_error *err)
{
    base_err e = BASE_OK;

    if (o == NULL) {
        e = reject(err, SVC_E_BAD_REQUEST, "missing field '%s'", name);
        goto fail;
    }
    if (!is_number(o)) {
        e = reject(err, SVC_E_BAD_REQUEST, "field '%s' must be a number", name);
        goto fail;
    }
    float v = (float)number_value(o);
    if (!isfinite(v)) {
        e = reject(err, SVC_E_NOT_FINITE, "field '%s' is not a finite float32", name);
        goto fail;
    }
    *out = v;
fail:
    return e;
}

static base_err get_u32(const msgpack_object *o, const char *name, uint32_t *out,
                        svc_wire_error *err)
{
    base_err e = BASE_OK;

    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > UINT32_MAX) {
        e = reject(err, SVC_E_BAD_REQUEST, "field '%s' must be an integer in [0, %" PRIu32 "]",
                   name, UINT32_MAX);
        goto fail;
    }
    *out = (uint32_t)o->via.u64;
fail:
    return e;
}

static base_err get_bool(const msgpack_object *o, const char *name, bool *out,
                         svc_wire_error *err)
{
    base_err e = BASE_OK;

    if (o->type != MSGPACK_OBJECT_BOOLEAN) {
        e = reject(err, SVC_E_BAD_REQUEST, "field '%s' must be a boolean", name);
        goto fail;
    }
    *out = o->via.boolean;
fail:
    return e;
}

/*
 * Validate the float vector @o (bin of LE float32, or array of numbers) of at most @max
 * entries and store its length in *out_n. An empty vector is allowed here.
 */
static base_err vec_count(const msgpack_object *o, const char *name, uint32_t max,
                          svc_errcode over_code, uint32_t *out_n, svc_wire_error *err)
{
    base_err e = BASE_OK;
    uint32_t n = 0;

    if (o == NULL) {
        e = reject(err, SVC_E_BAD_REQUEST, "missing field '%s'", name);
        goto fail;
    }
    if (o->type == MSGPACK_OBJECT_BIN) {
        if (o->via.bin.size % 4 != 0) {
            e = reject(err, SVC_E_BAD_REQUEST,
                       "field '%s' is a bin of %" PRIu32 " bytes, not a multiple of 4", name,
                       o->via.bin.size);
            goto fail;
        }
        n = o->via.bin.size / 4;
    } else if (o->type == MSGPACK_OBJECT_ARRAY) {
        n = o->via.array.size;
        for (uint32_t i = 0; i < n; i++) {
            if (!is_number(&o->via.array.ptr[i])) {
                e = reject(err, SVC_E_BAD_REQUEST, "field '%s[%" PRIu32 "]' must be a number",
                           name, i);
                goto fail;
            }
        }
    } else {
        e = reject(err, SVC_E_BAD_REQUEST,
                   "field '%s' must be a bin of float32 or an array of numbers", name);
        goto fail;
    }
    if (n > max) {
        e = reject(err, over_code, "field '%s' has %" PRIu32 " entries, at most %" PRIu32,
                   name, n, max);
        goto fail;
    }
    *out_n = n;
fail:
    return e;
}

/* Little-endian float32 bytes to host floats: one memcpy on little-endian hosts. */
static void f32_from_le(float *dst, const char *src, uint32_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n > 0) {
        memcpy(dst, src, (size_t)n * sizeof(float));
    }
#else
    const unsigned char *p = (const unsigned char *)src;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                     (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
        memcpy(&dst[i], &u, sizeof(u));
    }
#endif
}

/*
 * Read the vector @o (already checked by vec_count() to hold @n entries) into @dst and
 * reject NaN/Inf, including doubles outside the float32 range.
 */
static base_err vec_read(const msgpack_object *o, const char *name, float *dst, uint32_t n,
                         svc_wire_error *err)
{
    base_err e = BASE_OK;

    if (o->type == MSGPACK_OBJECT_BIN) {
        f32_from_le(dst, o->via.bin.ptr, n);
    } else {
        for (uint32_t i = 0; i < n; i++) {
            dst[i] = (float)number_value(&o->via.array.ptr[i]);
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        if (!isfinite(dst[i])) {
            e = reject(err, SVC_E_NOT_FINITE, "field '%s[%" PRIu32 "]' is not finite", name, i);
            goto fail;
        }
    }
fail:
    return e;
}

/* A required, non-empty vector of at most @max entries, allocated into *out. */
static base_err get_vec(const msgpack_object *o, const char *name, uint32_t max,
                        svc_errcode over_code, float **out, uint32_t *out_n, svc_wire_error *err)
{
    base_err e = BASE_OK;
    float *v = NULL;
    uint32_t n = 0;

    e = vec_count(o, name, max, over_code, &n, err);
    if (e != BASE_OK) {
        goto fail;
    }
    if (n == 0) {
        e = reject(err, SVC_E_BAD_REQUEST, "field '%s' must not be empty", name);
        goto fail;
    }
    v = base_alloc_array(n, sizeof(float));
    if (v == NULL) {
        e = reject_oom(err);
        goto fail;
    }
    e = vec_read(o, name, v, n, err);
    if (e != BASE_OK) {
        goto fail;
    }
    *out = v;
    *out_n = n;
    v = NULL;
fail:
    base_free(v);
    return e;
}

/* ---------------------------------------------------------------- requests */

enum field {
    F_V, F_OP, F_POLICY, F_EVENT_ID, F_CONVERSATION_ID, F_TURN, F_CONTEXT, F_CANDIDATES,
    F_DEFERRED, F_CHOSEN, F_PMF, F_SIGNAL, F_VALUE, F_OUTCOME_ID, F_TS, F_SUPERSEDES,
    F_USER_ID, F_SET_MS, F_ADVANCE_MS, F_COUNT
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
};

static const char *const op_names[] = {
    [SVC_OP_DECIDE] = "decide",
    [SVC_OP_LOG] = "log",
    [SVC_OP_FEEDBACK] = "feedback",
    [SVC_OP_STATS] = "stats",
    [SVC_OP_HEALTH] = "health",
    [SVC_OP_ACTIVATE] = "activate",
    [SVC_OP_CLOCK] = "clock",
};

static int cstr_ptr_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Reject two candidates with the same id: pmf entries and feedback would be ambiguous. */
static base_err check_unique_ids(const svc_request *r, svc_wire_error *err)
{
    base_err e = BASE_OK;
    const char **ids = base_alloc_array(r->n_cand, sizeof(*ids));

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
            e = reject(err, SVC_E_BAD_REQUEST, "two candidates have the same id");
            goto fail;
        }
    }
fail:
    base_free(ids);
    return e;
}

static base_err decode_candidates(const msgpack_object *o, svc_request *r, svc_wire_error *err)
{
    static const char *const names[] = {"id", "base_logit"};
    base_err e = BASE_OK;

    if (o == NULL) {
        e = reject(err, SVC_E_BAD_REQUEST, "missing field 'candidates'");
        goto fail;
    }
    if (o->type != MSGPACK_OBJECT_ARRAY) {
        e = reject(err, SVC_E_BAD_REQUEST, "field 'candidates' must be an array");
        goto fail;
    }
    if (o->via.array.size == 0) {
        e = reject(err, SVC_E_BAD_REQUEST, "field 'candidates' must not be empty");
        goto fail;
    }
    if (o->via.array.size > BASE_CAND_MAX) {
        e = reject(err, SVC_E_TOO_MANY_CANDIDATES,
                   "%" PRIu32 " candidates, at most %u", o->via.array.size, BASE_CAND_MAX);
        goto fail;
    }
    r->cand = base_alloc_zero(o->via.array.size, sizeof(*r->cand));
    if (r->cand == NULL) {
        e = reject_oom(err);
        goto fail;
    }
    r->n_cand = o->via.array.size;
    for (uint32_t i = 0; i < r->n_cand; i++) {
        const msgpack_object *c = &o->via.array.ptr[i];
        const msgpack_object *f[2];
        char where[48];
        (void)snprintf(where, sizeof(where), "candidates[%" PRIu32 "]", i); /* fits */
        if (c->type != MSGPACK_OBJECT_MAP) {
            e = reject(err, SVC_E_BAD_REQUEST, "%s must be a map", where);
            goto fail;
        }
        e = map_fields(c, where, names, 2, f, err);
        if (e != BASE_OK) {
            goto fail;
        }
        char name[64];
        (void)snprintf(name, sizeof(name), "%s.id", where); /* fits */
        e = get_str(f[0], name, true, BASE_NAME_MAX, r->cand[i].id, err);
        if (e != BASE_OK) {
            goto fail;
        }
        (void)snprintf(name, sizeof(name), "%s.base_logit", where); /* fits */
        e = get_f32(f[1], name, &r->cand[i].base_logit, err);
        if (e != BASE_OK) {
            goto fail;
        }
    }
    e = check_unique_ids(r, err);
fail:
    return e;
}

static base_err decode_log_choice(const msgpack_object **f, svc_request *r, svc_wire_error *err)
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
        e = reject(err, SVC_E_BAD_REQUEST, "field 'chosen' is not among the candidates");
        goto fail;
    }
    e = get_vec(f[F_PMF], "pmf", BASE_CAND_MAX, SVC_E_TOO_LARGE, &r->pmf, &n, err);
    if (e != BASE_OK) {
        goto fail;
    }
    if (n != r->n_cand) {
        e = reject(err, SVC_E_BAD_REQUEST,
                   "field 'pmf' has %" PRIu32 " entries for %" PRIu32 " candidates", n,
                   r->n_cand);
        goto fail;
    }
    double sum = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        if (r->pmf[i] < 0.0f || r->pmf[i] > 1.0f) {
            e = reject(err, SVC_E_BAD_REQUEST, "field 'pmf[%" PRIu32 "]' is outside [0, 1]", i);
            goto fail;
        }
        sum += r->pmf[i];
    }
    if (fabs(sum - 1.0) > PMF_SUM_TOL) {
        e = reject(err, SVC_E_BAD_REQUEST, "field 'pmf' sums to %.6g, not 1", sum);
        goto fail;
    }
fail:
    return e;
}

/* decide and log: everything but the log-only fields. */
static base_err decode_choice(const msgpack_object **f, svc_request *r, svc_wire_error *err)
{
    static const char *const ctx_names[] = {"embedding"};
    base_err e = BASE_OK;
    bool is_log = r->op == SVC_OP_LOG;
    const msgpack_object *emb = NULL;

    e = get_str(f[F_POLICY], "policy", true, BASE_NAME_MAX, r->policy, err);
    if (e != BASE_OK) {
        goto fail;
    }
    e = get_str(f[F_EVENT_ID], "event_id", is_log, BASE_ID_MAX, r->event_id, err);
    if (e != BASE_OK) {
        goto fail;
    }
    e = get_str(f[F_CONVERSATION_ID], "conversation_id", false, BASE_ID_MAX, r->conversation_id,
                err);
    if (e != BASE_OK) {
        goto fail;
    }
    if (f[F_TURN] != NULL) {
        e = get_u32(f[F_TURN], "turn", &r->turn, err);
        if (e != BASE_OK) {
            goto fail;
        }
    }
    if (f[F_DEFERRED] != NULL) {
        e = get_bool(f[F_DEFERRED], "deferred", &r->deferred, err);
        if (e != BASE_OK) {
            goto fail;
        }
    }
    if (f[F_CONTEXT] == NULL) {
        e = reject(err, SVC_E_BAD_REQUEST, "missing field 'context'");
        goto fail;
    }
    if (f[F_CONTEXT]->type != MSGPACK_OBJECT_MAP) {
        e = reject(err, SVC_E_BAD_REQUEST, "field 'context' must be a map");
        goto fail;
    }
    e = map_fields(f[F_CONTEXT], "context", ctx_names, 1, &emb, err);
    if (e != BASE_OK) {
        goto fail;
    }
    e = get_vec(emb, "context.embedding", BASE_DIM_MAX, SVC_E_TOO_LARGE, &r->embedding, &r->dim,
                err);
    if (e != BASE_OK) {
        goto fail;
    }
    e = decode_candidates(f[F_CANDIDATES], r, err);
    if (e != BASE_OK) {
        goto fail;
    }
    if (is_log) {
        e = decode_log_choice(f, r, err);
    }
fail:
    return e;
}

static base_err decode_feedback(const msgpack_object **f, svc_request *r, svc_wire_error *err)
{
    base_err e = BASE_OK;

    e = get_str(f[F_POLICY], "policy", true, BASE_NAME_MAX, r->policy, err);
    if (e != BASE_OK) {
        goto fail;
    }
    e = get_str(f[F_EVENT_ID], "event_id", false, BASE_ID_MAX, r->event_id, err);
    if (e != BASE_OK) {
        goto fail;
    }
    e = get_str(f[F_CONVERSATION_ID], "conversation_id", false, BASE_ID_MAX, r->conversation_id,
                err);
    if (e != BASE_OK) {
        goto fail;
    }
    if (r->event_id[0] == '\0' && r->conversation_id[0] == '\0') {
        e = reject(err, SVC_E_BAD_REQUEST, "feedback needs 'event_id' or 'conversation_id'");
        goto fail;
    }
    e = get_str(f[F_SIGNAL], "signal", true, BASE_NAME_MAX, r->signal, err);
    if (e != BASE_OK) {
        goto fail;
    }
    r->value = 1.0;
    if (f[F_VALUE] != NULL) {
        if (!is_number(f[F_VALUE])) {
            e = reject(err, SVC_E_BAD_REQUEST, "field 'value' must be a number");
            goto fail;
        }
        r->value = number_value(f[F_VALUE]);
        if (!isfinite(r->value)) {
            e = reject(err, SVC_E_NOT_FINITE, "field 'value' is not finite");
            goto fail;
        }
    }
    e = get_str(f[F_OUTCOME_ID], "outcome_id", false, BASE_ID_MAX, r->outcome_id, err);
    if (e != BASE_OK) {
        goto fail;
    }
    e = get_str(f[F_SUPERSEDES], "supersedes", false, BASE_ID_MAX, r->supersedes, err);
    if (e != BASE_OK) {
        goto fail;
    }
    e = get_str(f[F_USER_ID], "user_id", false, BASE_ID_MAX, r->user_id, err);
    if (e != BASE_OK) {
        goto fail;
    }
    if (f[F_TS] != NULL) {
        if (f[F_TS]->type != MSGPACK_OBJECT_POSITIVE_INTEGER || f[F_TS]->via.u64 > INT64_MAX) {
            e = reject(err, SVC_E_BAD_REQUEST,
                       "field 'ts' must be a non-negative integer (ms since the epoch)");
            goto fail;
        }
        r->ts_ms = (int64_t)f[F_TS]->via.u64;
    }
fail:
    return e;
}

/* A non-negative integer field into *out, or -1 when absent. */
static base_err get_ms(const msgpack_object *o, const char *name, int64_t *out,
                       svc_wire_error *err)
{
    *out = -1;
    if (o == NULL) {
        return BASE_OK;
    }
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > INT64_MAX) {
        return reject(err, SVC_E_BAD_REQUEST, "field '%s' must be a non-negative integer", name);
    }
    *out = (int64_t)o->via.u64;
    return BASE_OK;
}

static base_err decode_clock(const msgpack_object **f, svc_request *r,
                             svc_wire_error *err)
{
    base_err e = get_ms(f[F_SET_MS], "set_ms", &r->clock_set_ms, err);
    if (e == BASE_OK) {
        e = get_ms(f[F_ADVANCE_MS], "advance_ms", &r->clock_advance_ms, err);
    }
    if (e == BASE_OK && (r->clock_set_ms < 0) == (r->clock_advance_ms < 0)) {
        e = reject(err, SVC_E_BAD_REQUEST, "clock needs exactly one of 'set_ms', 'advance_ms'");
    }
    return e;
}

static base_err decode_request(const msgpack_object *top, svc_request *r, svc_wire_error *err)
{
    base_err e = BASE_OK;
    const msgpack_object *f[F_COUNT];
    bool found = false;

    if (top->type != MSGPACK_OBJECT_MAP) {
        e = reject(err, SVC_E_BAD_REQUEST, "request must be a map");
        goto fail;
    }
    e = map_fields(top, "request", field_names, F_COUNT, f, err);
    if (e != BASE_OK) {
        goto fail;
    }
    if (f[F_V] == NULL) {
        e = reject(err, SVC_E_BAD_REQUEST, "missing field 'v'");
        goto fail;
    }
    if (f[F_V]->type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
        f[F_V]->type != MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        e = reject(err, SVC_E_BAD_REQUEST, "field 'v' must be an integer");
        goto fail;
    }
    if (f[F_V]->type != MSGPACK_OBJECT_POSITIVE_INTEGER || f[F_V]->via.u64 != SVC_WIRE_VERSION) {
        e = reject(err, SVC_E_BAD_VERSION, "protocol version %d is the only one supported",
                   SVC_WIRE_VERSION);
        goto fail;
    }
    if (f[F_OP] == NULL) {
        e = reject(err, SVC_E_BAD_REQUEST, "missing field 'op'");
        goto fail;
    }
    if (f[F_OP]->type != MSGPACK_OBJECT_STR) {
        e = reject(err, SVC_E_BAD_REQUEST, "field 'op' must be a string");
        goto fail;
    }
    if (!base_utf8_valid(f[F_OP]->via.str.ptr, f[F_OP]->via.str.size)) {
        e = reject(err, SVC_E_BAD_REQUEST, "field 'op' is not valid UTF-8");
        goto fail;
    }
    for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]) && !found; i++) {
        if (str_is(&f[F_OP]->via.str, op_names[i])) {
            r->op = (svc_op)i;
            found = true;
        }
    }
    if (!found) {
        char echo[ECHO_MAX + 1];
        echo_text(echo, sizeof(echo), f[F_OP]->via.str.ptr, f[F_OP]->via.str.size);
        e = reject(err, SVC_E_UNKNOWN_OP, "unknown op '%s'", echo);
        goto fail;
    }
    switch (r->op) {
    case SVC_OP_DECIDE:
    case SVC_OP_LOG:
        e = decode_choice(f, r, err);
        break;
    case SVC_OP_FEEDBACK:
        e = decode_feedback(f, r, err);
        break;
    case SVC_OP_STATS:
        e = get_str(f[F_POLICY], "policy", false, BASE_NAME_MAX, r->policy, err);
        break;
    case SVC_OP_HEALTH:
        break;
    case SVC_OP_ACTIVATE:
        e = get_str(f[F_POLICY], "policy", true, BASE_NAME_MAX, r->policy, err);
        if (e == BASE_OK) {
            e = get_str(f[F_EVENT_ID], "event_id", true, BASE_ID_MAX, r->event_id, err);
        }
        break;
    case SVC_OP_CLOCK:
        e = decode_clock(f, r, err);
        break;
    }
fail:
    return e;
}

base_err svc_wire_decode(const uint8_t *buf, size_t len, svc_request *out, svc_wire_error *err)
{
    base_err e = BASE_OK;
    svc_wire_error scratch;
    svc_wire_error *we = err != NULL ? err : &scratch;
    svc_request r;
    msgpack_unpacked u;

    memset(&r, 0, sizeof(r));
    we->code = SVC_E_NONE;
    we->message[0] = '\0';
    msgpack_unpacked_init(&u);
    e = unpack(buf, len, &u, we);
    if (e != BASE_OK) {
        goto fail;
    }
    e = decode_request(&u.data, &r, we);
    if (e != BASE_OK) {
        goto fail;
    }
    *out = r;
    memset(&r, 0, sizeof(r));
fail:
    msgpack_unpacked_destroy(&u);
    svc_request_fini(&r);
    if (e != BASE_OK) {
        memset(out, 0, sizeof(*out));
    }
    return e;
}

void svc_request_fini(svc_request *r)
{
    if (r != NULL) {
        base_free(r->embedding);
        base_free(r->cand);
        base_free(r->pmf);
        r->embedding = NULL;
        r->cand = NULL;
        r->pmf = NULL;
        r->dim = 0;
        r->n_cand = 0;
    }
}

/* ------------------------------------------------------------------ writer */

/* msgpack_packer's write callback: append to the buffer, keep the first error. */
static int writer_cb(void *data, const char *p, size_t n)
{
    svc_writer *w = data;
    int rc = -1;

    if (w->err != BASE_OK) {
        goto fail;
    }
    w->err = base_buf_append(w->out, p, n);
    if (w->err != BASE_OK) {
        goto fail;
    }
    rc = 0;
fail:
    return rc;
}

/*
 * The packer is two pointers, so each call makes its own rather than storing one in
 * svc_writer. Pack results are ignored: writer_cb has already recorded any failure.
 */
static void packer_init(svc_writer *w, msgpack_packer *pk)
{
    msgpack_packer_init(pk, w, writer_cb);
}

void svc_writer_init(svc_writer *w, base_buf *out)
{
    w->out = out;
    w->err = BASE_OK;
}

void svc_w_map(svc_writer *w, uint32_t n_pairs)
{
    msgpack_packer pk;
    if (w->err == BASE_OK) {
        packer_init(w, &pk);
        (void)msgpack_pack_map(&pk, n_pairs); /* errors are in w->err */
    }
}

void svc_w_array(svc_writer *w, uint32_t n)
{
    msgpack_packer pk;
    if (w->err == BASE_OK) {
        packer_init(w, &pk);
        (void)msgpack_pack_array(&pk, n); /* errors are in w->err */
    }
}

/* Write @n bytes at @s as a msgpack str (@s may be NULL when @n is 0). */
static void w_strn(svc_writer *w, const char *s, size_t n)
{
    msgpack_packer pk;
    if (w->err == BASE_OK && n > UINT32_MAX) {
        w->err = BASE_ELIMIT;
    }
    if (w->err == BASE_OK) {
        packer_init(w, &pk);
        (void)msgpack_pack_str(&pk, n); /* errors are in w->err */
        if (n > 0) {
            (void)msgpack_pack_str_body(&pk, s, n);
        }
    }
}

void svc_w_str(svc_writer *w, const char *s)
{
    w_strn(w, s, s != NULL ? strlen(s) : 0);
}

void svc_w_int(svc_writer *w, int64_t v)
{
    msgpack_packer pk;
    if (w->err == BASE_OK) {
        packer_init(w, &pk);
        (void)msgpack_pack_int64(&pk, v); /* errors are in w->err */
    }
}

void svc_w_uint(svc_writer *w, uint64_t v)
{
    msgpack_packer pk;
    if (w->err == BASE_OK) {
        packer_init(w, &pk);
        (void)msgpack_pack_uint64(&pk, v); /* errors are in w->err */
    }
}

void svc_w_double(svc_writer *w, double v)
{
    msgpack_packer pk;
    if (w->err == BASE_OK) {
        packer_init(w, &pk);
        (void)msgpack_pack_double(&pk, v); /* errors are in w->err */
    }
}

void svc_w_bool(svc_writer *w, bool v)
{
    msgpack_packer pk;
    if (w->err == BASE_OK) {
        packer_init(w, &pk);
        if (v) {
            (void)msgpack_pack_true(&pk); /* errors are in w->err */
        } else {
            (void)msgpack_pack_false(&pk);
        }
    }
}

void svc_w_nil(svc_writer *w)
{
    msgpack_packer pk;
    if (w->err == BASE_OK) {
        packer_init(w, &pk);
        (void)msgpack_pack_nil(&pk); /* errors are in w->err */
    }
}

void svc_w_f32_bin(svc_writer *w, const float *v, uint32_t n)
{
    msgpack_packer pk;
    unsigned char chunk[F32_CHUNK * 4];

    if (w->err == BASE_OK && n > UINT32_MAX / 4) {
        w->err = BASE_ELIMIT;
    }
    if (w->err == BASE_OK) {
        packer_init(w, &pk);
        (void)msgpack_pack_bin(&pk, (size_t)n * 4); /* errors are in w->err */
    }
    /* Byte by byte, so the output is little-endian whatever the host order. */
    for (uint32_t i = 0; i < n && w->err == BASE_OK; i += F32_CHUNK) {
        uint32_t m = n - i < F32_CHUNK ? n - i : F32_CHUNK;
        for (uint32_t j = 0; j < m; j++) {
            uint32_t u;
            memcpy(&u, &v[i + j], sizeof(u));
            chunk[4 * j] = (unsigned char)(u & 0xffu);
            chunk[4 * j + 1] = (unsigned char)((u >> 8) & 0xffu);
            chunk[4 * j + 2] = (unsigned char)((u >> 16) & 0xffu);
            chunk[4 * j + 3] = (unsigned char)(u >> 24);
        }
        (void)msgpack_pack_bin_body(&pk, chunk, (size_t)m * 4);
    }
}

void svc_w_f32_array(svc_writer *w, const float *v, uint32_t n)
{
    msgpack_packer pk;
    if (w->err == BASE_OK) {
        packer_init(w, &pk);
        (void)msgpack_pack_array(&pk, n); /* errors are in w->err */
    }
    for (uint32_t i = 0; i < n && w->err == BASE_OK; i++) {
        (void)msgpack_pack_float(&pk, v[i]);
    }
}

base_err svc_writer_finish(svc_writer *w)
{
    return w->err;
}

/* Finish @w; on failure cut @out back to @start so no half-written reply remains. */
static base_err finish_reply(svc_writer *w, size_t start)
{
    base_err e = svc_writer_finish(w);
    if (e != BASE_OK) {
        w->out->len = start;
    }
    return e;
}

base_err svc_wire_reply_ok(base_buf *out)
{
    svc_writer w;
    size_t start = out->len;

    svc_writer_init(&w, out);
    svc_w_map(&w, 1);
    svc_w_str(&w, "ok");
    svc_w_bool(&w, true);
    return finish_reply(&w, start);
}

base_err svc_wire_reply_health(base_buf *out, const char *status, const char *redis)
{
    svc_writer w;
    size_t start = out->len;

    svc_writer_init(&w, out);
    svc_w_map(&w, 3);
    svc_w_str(&w, "ok");
    svc_w_bool(&w, true);
    svc_w_str(&w, "status");
    svc_w_str(&w, status);
    svc_w_str(&w, "redis");
    svc_w_str(&w, redis);
    return finish_reply(&w, start);
}

/*
 * Copy @src into @dst as valid UTF-8 of at most SVC_WIRE_MSG_MAX - 1 bytes, cut on a
 * character boundary. Messages are built with snprintf from peer text the decoder checked
 * to be UTF-8, but "%.48s" or the buffer's size may cut one of its characters in two, in the
 * middle or at the end: the bytes of a cut character are dropped, so the text is cut back
 * to the last whole character. Any other byte that is not UTF-8 (a bug) is dropped too.
 */
static void clean_message(char *dst, const char *src)
{
    size_t n = src != NULL ? strlen(src) : 0;
    size_t i = 0, o = 0;

    while (i < n) {
        size_t m = base_utf8_char_len(src + i, n - i);
        if (m == 0) {
            i++;
            continue;
        }
        if (o + m > SVC_WIRE_MSG_MAX - 1) {
            break;
        }
        memcpy(dst + o, src + i, m);
        o += m;
        i += m;
    }
    dst[o] = '\0';
}

base_err svc_wire_reply_error(base_buf *out, svc_errcode code, const char *message)
{
    svc_writer w;
    size_t start = out->len;
    char text[SVC_WIRE_MSG_MAX];

    clean_message(text, message);

    svc_writer_init(&w, out);
    svc_w_map(&w, 2);
    svc_w_str(&w, "ok");
    svc_w_bool(&w, false);
    svc_w_str(&w, "error");
    svc_w_map(&w, 2);
    svc_w_str(&w, "code");
    svc_w_str(&w, svc_errcode_name(code));
    svc_w_str(&w, "message");
    svc_w_str(&w, text);
    return finish_reply(&w, start);
}

base_err svc_wire_reply_decide(base_buf *out, const char *event_id, const char *chosen_id,
                               uint32_t chosen_index, const float *pmf, uint32_t n_cand,
                               uint64_t model_version, const char *slot)
{
    svc_writer w;
    size_t start = out->len;

    svc_writer_init(&w, out);
    svc_w_map(&w, 7);
    svc_w_str(&w, "ok");
    svc_w_bool(&w, true);
    svc_w_str(&w, "event_id");
    svc_w_str(&w, event_id);
    svc_w_str(&w, "chosen");
    svc_w_str(&w, chosen_id);
    svc_w_str(&w, "chosen_index");
    svc_w_uint(&w, chosen_index);
    svc_w_str(&w, "pmf");
    svc_w_f32_bin(&w, pmf, n_cand);
    svc_w_str(&w, "model_version");
    svc_w_uint(&w, model_version);
    svc_w_str(&w, "slot");
    svc_w_str(&w, slot);
    return finish_reply(&w, start);
}

/* ----------------------------------------------------------------- replies */

enum reply_field {
    R_OK, R_ERROR, R_EVENT_ID, R_CHOSEN, R_CHOSEN_INDEX, R_PMF, R_MODEL_VERSION, R_DUPLICATE,
    R_STATUS, R_COUNT
};

static const char *const reply_names[R_COUNT] = {
    [R_OK] = "ok",
    [R_ERROR] = "error",
    [R_EVENT_ID] = "event_id",
    [R_CHOSEN] = "chosen",
    [R_CHOSEN_INDEX] = "chosen_index",
    [R_PMF] = "pmf",
    [R_MODEL_VERSION] = "model_version",
    [R_DUPLICATE] = "duplicate",
    [R_STATUS] = "status",
};

/* {"code":..., "message":...}: an unknown code becomes SVC_E_INTERNAL, the message is kept. */
static base_err decode_reply_error(const msgpack_object *o, svc_reply *r, svc_wire_error *err)
{
    static const char *const names[] = {"code", "message"};
    base_err e = BASE_OK;
    const msgpack_object *f[2];
    char code[ECHO_MAX + 1];
    bool found = false;

    if (o == NULL || o->type != MSGPACK_OBJECT_MAP) {
        e = reject(err, SVC_E_BAD_REQUEST, "a failed reply needs an 'error' map");
        goto fail;
    }
    e = map_fields(o, "error", names, 2, f, err);
    if (e != BASE_OK) {
        goto fail;
    }
    if (f[0] == NULL || f[0]->type != MSGPACK_OBJECT_STR) {
        e = reject(err, SVC_E_BAD_REQUEST, "field 'error.code' must be a string");
        goto fail;
    }
    r->error.code = SVC_E_INTERNAL;
    if (f[0]->via.str.size <= ECHO_MAX) {
        memcpy(code, f[0]->via.str.ptr, f[0]->via.str.size);
        code[f[0]->via.str.size] = '\0';
        svc_errcode_from_name(code, &r->error.code, &found);
        if (!found) {
            r->error.code = SVC_E_INTERNAL;
        }
    }
    r->error.message[0] = '\0';
    if (f[1] != NULL) {
        if (f[1]->type != MSGPACK_OBJECT_STR) {
            e = reject(err, SVC_E_BAD_REQUEST, "field 'error.message' must be a string");
            goto fail;
        }
        /* A long message is cut to fit, on a character boundary; callers act on the code. */
        size_t n = f[1]->via.str.size;
        if (n > sizeof(r->error.message) - 1) {
            n = base_utf8_cut(f[1]->via.str.ptr, sizeof(r->error.message) - 1);
        }
        if (n > 0) {
            memcpy(r->error.message, f[1]->via.str.ptr, n);
        }
        r->error.message[n] = '\0';
    }
fail:
    return e;
}

static base_err decode_reply_fields(const msgpack_object *top, svc_reply *r,
                                    svc_wire_error *err)
{
    base_err e = BASE_OK;
    const msgpack_object *f[R_COUNT];

    if (top->type != MSGPACK_OBJECT_MAP) {
        e = reject(err, SVC_E_BAD_REQUEST, "reply must be a map");
        goto fail;
    }
    e = map_fields(top, "reply", reply_names, R_COUNT, f, err);
    if (e != BASE_OK) {
        goto fail;
    }
    if (f[R_OK] == NULL || f[R_OK]->type != MSGPACK_OBJECT_BOOLEAN) {
        e = reject(err, SVC_E_BAD_REQUEST, "field 'ok' must be a boolean");
        goto fail;
    }
    r->ok = f[R_OK]->via.boolean;
    if (!r->ok) {
        e = decode_reply_error(f[R_ERROR], r, err);
        if (e != BASE_OK) {
            goto fail;
        }
    }
    e = get_str(f[R_EVENT_ID], "event_id", false, BASE_ID_MAX, r->event_id, err);
    if (e != BASE_OK) {
        goto fail;
    }
    e = get_str(f[R_CHOSEN], "chosen", false, BASE_NAME_MAX, r->chosen, err);
    if (e != BASE_OK) {
        goto fail;
    }
    if (f[R_CHOSEN_INDEX] != NULL) {
        e = get_u32(f[R_CHOSEN_INDEX], "chosen_index", &r->chosen_index, err);
        if (e != BASE_OK) {
            goto fail;
        }
    }
    if (f[R_PMF] != NULL) {
        e = vec_count(f[R_PMF], "pmf", BASE_CAND_MAX, SVC_E_TOO_LARGE, &r->n_pmf, err);
        if (e != BASE_OK) {
            goto fail;
        }
        e = vec_read(f[R_PMF], "pmf", r->pmf, r->n_pmf, err);
        if (e != BASE_OK) {
            goto fail;
        }
    }
    if (f[R_MODEL_VERSION] != NULL) {
        if (f[R_MODEL_VERSION]->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
            e = reject(err, SVC_E_BAD_REQUEST, "field 'model_version' must be an unsigned int");
            goto fail;
        }
        r->model_version = f[R_MODEL_VERSION]->via.u64;
    }
    if (f[R_DUPLICATE] != NULL) {
        e = get_bool(f[R_DUPLICATE], "duplicate", &r->duplicate, err);
        if (e != BASE_OK) {
            goto fail;
        }
    }
    e = get_str(f[R_STATUS], "status", false, sizeof(r->status) - 1, r->status, err);
fail:
    return e;
}

base_err svc_wire_decode_reply(const uint8_t *buf, size_t len, svc_reply *out)
{
    base_err e = BASE_OK;
    svc_wire_error err;
    msgpack_unpacked u;
    /* Decoded on the side so *out is written only on success; about 4.5 KiB of stack. */
    svc_reply r;

    memset(&r, 0, sizeof(r));
    msgpack_unpacked_init(&u);
    e = unpack(buf, len, &u, &err);
    if (e == BASE_OK) {
        e = decode_reply_fields(&u.data, &r, &err);
    }
    if (e != BASE_OK) {
        /* Any malformed reply is a protocol error; only allocation failures differ. */
        e = e == BASE_ENOMEM ? BASE_ENOMEM : BASE_EPROTO;
        goto fail;
    }
    *out = r;
fail:
    msgpack_unpacked_destroy(&u);
    return e;
}

/* ------------------------------------------------------------- JSON output */

static base_err put(base_buf *b, const char *s)
{
    return base_buf_append(b, s, strlen(s));
}

/* A JSON string literal; BASE_EPROTO if @s is not valid UTF-8. */
static base_err emit_string(base_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    base_err e = base_buf_append(b, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (e == BASE_OK && i < n) {
        unsigned char c = p[i];
        char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], '\0'};
        if (c == '"' || c == '\\') {
            esc[1] = (char)c;
            esc[2] = '\0';
            e = put(b, esc);
            i++;
        } else if (c < 0x20) {
            e = put(b, esc);
            i++;
        } else {
            size_t m = base_utf8_char_len(s + i, n - i);
            if (m == 0) {
                e = BASE_EPROTO;
                goto fail;
            }
            e = base_buf_append(b, p + i, m);
            i += m;
        }
    }
    if (e == BASE_OK) {
        e = base_buf_append(b, "\"", 1);
    }
fail:
    return e;
}

/*
 * The shortest decimal that reads back as the same number, with ".0" added to integral
 * values so the number stays a real through a JSON round trip. NaN and Inf have no JSON
 * form and print as null. Assumes the C locale ('.' as decimal point).
 */
static base_err emit_real(base_buf *b, double v, bool is_f32)
{
    char txt[40];
    int lo = is_f32 ? 6 : 15, hi = is_f32 ? 9 : 17;

    if (!isfinite(v)) {
        memcpy(txt, "null", 5);
    }
    for (int prec = lo; prec <= hi && isfinite(v); prec++) {
        (void)snprintf(txt, sizeof(txt), "%.*g", prec, v); /* at most 25 bytes */
        double back = strtod(txt, NULL);
        if (is_f32 ? (float)back == (float)v : back == v) {
            break;
        }
    }
    if (strpbrk(txt, ".en") == NULL) {
        size_t n = strlen(txt);
        memcpy(txt + n, ".0", 3);
    }
    return put(b, txt);
}

/* Recursion is bounded by SVC_WIRE_MAX_DEPTH, which base_mpcheck() enforced. */
static base_err emit_value(base_buf *b, const msgpack_object *o)
{
    static const char hex[] = "0123456789abcdef";
    base_err e = BASE_OK;
    char txt[32];

    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        e = put(b, "null");
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        e = put(b, o->via.boolean ? "true" : "false");
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        (void)snprintf(txt, sizeof(txt), "%" PRIu64, o->via.u64); /* <= 20 digits */
        e = put(b, txt);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        (void)snprintf(txt, sizeof(txt), "%" PRId64, o->via.i64); /* <= 20 chars */
        e = put(b, txt);
        break;
    case MSGPACK_OBJECT_FLOAT32:
        e = emit_real(b, o->via.f64, true);
        break;
    case MSGPACK_OBJECT_FLOAT64:
        e = emit_real(b, o->via.f64, false);
        break;
    case MSGPACK_OBJECT_STR:
        e = emit_string(b, o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        if (o->via.bin.size % 4 == 0) {
            /* A float32 vector (pmf, embedding): print its numbers. */
            e = put(b, "[");
            for (uint32_t i = 0; i < o->via.bin.size / 4 && e == BASE_OK; i++) {
                float v;
                f32_from_le(&v, o->via.bin.ptr + 4 * (size_t)i, 1);
                e = put(b, i > 0 ? "," : "");
                if (e == BASE_OK) {
                    e = emit_real(b, v, true);
                }
            }
            if (e == BASE_OK) {
                e = put(b, "]");
            }
        } else {
            e = put(b, "\"");
            for (uint32_t i = 0; i < o->via.bin.size && e == BASE_OK; i++) {
                unsigned char c = (unsigned char)o->via.bin.ptr[i];
                char pair[3] = {hex[c >> 4], hex[c & 15], '\0'};
                e = put(b, pair);
            }
            if (e == BASE_OK) {
                e = put(b, "\"");
            }
        }
        break;
    case MSGPACK_OBJECT_ARRAY:
        e = put(b, "[");
        for (uint32_t i = 0; i < o->via.array.size && e == BASE_OK; i++) {
            e = put(b, i > 0 ? "," : "");
            if (e == BASE_OK) {
                e = emit_value(b, &o->via.array.ptr[i]);
            }
        }
        if (e == BASE_OK) {
            e = put(b, "]");
        }
        break;
    case MSGPACK_OBJECT_MAP:
        e = put(b, "{");
        for (uint32_t i = 0; i < o->via.map.size && e == BASE_OK; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR) {
                e = BASE_EPROTO;
                break;
            }
            e = put(b, i > 0 ? "," : "");
            if (e == BASE_OK) {
                e = emit_string(b, kv->key.via.str.ptr, kv->key.via.str.size);
            }
            if (e == BASE_OK) {
                e = put(b, ":");
            }
            if (e == BASE_OK) {
                e = emit_value(b, &kv->val);
            }
        }
        if (e == BASE_OK) {
            e = put(b, "}");
        }
        break;
    default:
        e = BASE_EPROTO; /* ext types are not part of the protocol */
        break;
    }
    return e;
}

base_err svc_wire_to_json(const uint8_t *buf, size_t len, char **out)
{
    base_err e = BASE_OK;
    svc_wire_error err;
    msgpack_unpacked u;
    base_buf b;
    size_t n = 0;

    /*
     * Worst case per input byte: a 1-byte control character in a str becomes "\u00XX"
     * (6 bytes), a map pair of an empty str key and nil (2 bytes) becomes "\"\":null," (8).
     */
    base_buf_init(&b, len <= (SIZE_MAX - 64) / JSON_EXPANSION ? len * JSON_EXPANSION + 64
                                                              : SIZE_MAX);
    msgpack_unpacked_init(&u);
    e = unpack(buf, len, &u, &err);
    if (e != BASE_OK) {
        e = e == BASE_ENOMEM ? BASE_ENOMEM : BASE_EPROTO;
        goto fail;
    }
    e = emit_value(&b, &u.data);
    if (e == BASE_OK) {
        e = base_buf_append(&b, "", 1);
    }
    if (e == BASE_ELIMIT) {
        e = BASE_EINTERNAL; /* the cap above is a proven bound: reaching it is a bug */
    }
    if (e != BASE_OK) {
        goto fail;
    }
    *out = (char *)base_buf_release(&b, &n);
fail:
    msgpack_unpacked_destroy(&u);
    base_buf_fini(&b);
    return e;
}

/* -------------------------------------------------------------- JSON input */

static void set_errbuf(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A reason for the caller; cut short if @errbuf is small. */
static void set_errbuf(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (errbuf != NULL && errlen > 0) {
        va_start(ap, fmt);
        if (vsnprintf(errbuf, errlen, fmt, ap) < 0) {
            errbuf[0] = '\0';
        }
        va_end(ap);
    }
}

/* Recursion is bounded by @depth <= SVC_WIRE_MAX_DEPTH. */
static base_err pack_json(svc_writer *w, json_t *j, size_t depth, char *errbuf,
                          size_t errlen)
{
    base_err e = BASE_OK;
    const char *key;
    json_t *val;
    size_t i;

    switch (json_typeof(j)) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        if (depth >= SVC_WIRE_MAX_DEPTH) {
            set_errbuf(errbuf, errlen, "JSON nests deeper than %u", SVC_WIRE_MAX_DEPTH);
            e = BASE_ELIMIT;
            goto fail;
        }
        if (json_is_object(j)) {
            if (json_object_size(j) > UINT32_MAX) {
                e = BASE_ELIMIT;
                goto fail;
            }
            svc_w_map(w, (uint32_t)json_object_size(j));
            /* jansson >= 2.8 iterates in insertion order, so key order is kept. */
            json_object_foreach(j, key, val) {
                w_strn(w, key, strlen(key));
                e = pack_json(w, val, depth + 1, errbuf, errlen);
                if (e != BASE_OK) {
                    goto fail;
                }
            }
        } else {
            if (json_array_size(j) > UINT32_MAX) {
                e = BASE_ELIMIT;
                goto fail;
            }
            svc_w_array(w, (uint32_t)json_array_size(j));
            json_array_foreach(j, i, val) {
                e = pack_json(w, val, depth + 1, errbuf, errlen);
                if (e != BASE_OK) {
                    goto fail;
                }
            }
        }
        break;
    case JSON_STRING:
        w_strn(w, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        svc_w_int(w, (int64_t)json_integer_value(j));
        break;
    case JSON_REAL:
        svc_w_double(w, json_real_value(j));
        break;
    case JSON_TRUE:
        svc_w_bool(w, true);
        break;
    case JSON_FALSE:
        svc_w_bool(w, false);
        break;
    case JSON_NULL:
        svc_w_nil(w);
        break;
    }
    e = w->err;
fail:
    return e;
}

base_err svc_wire_from_json(const char *json, base_buf *out, char *errbuf, size_t errlen)
{
    base_err e = BASE_OK;
    json_error_t jerr;
    json_t *root = NULL;
    svc_writer w;
    size_t start = out->len;

    if (json == NULL) {
        set_errbuf(errbuf, errlen, "no JSON text");
        e = BASE_EINVAL;
        goto fail;
    }
    /* Duplicate keys are refused here as the server refuses them in msgpack. */
    root = json_loads(json, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        if (json_error_code(&jerr) == json_error_out_of_memory) {
            e = BASE_ENOMEM;
            goto fail;
        }
        set_errbuf(errbuf, errlen, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        e = BASE_EINVAL;
        goto fail;
    }
    svc_writer_init(&w, out);
    e = pack_json(&w, root, 0, errbuf, errlen);
    if (e == BASE_OK) {
        e = svc_writer_finish(&w);
    }
    if (w.err == BASE_ELIMIT) {
        set_errbuf(errbuf, errlen, "message larger than %zu bytes", out->max_bytes);
    }
    if (e != BASE_OK) {
        out->len = start;
    }
fail:
    json_decref(root);
    return e;
}
