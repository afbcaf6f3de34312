#include "proto/request.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "base/alloc.h"
#include "base/utf8.h"
#include "proto/mp.h"
#include "proto/request_impl.h"

/*
 * The request decoder's field readers (proto/request_impl.h): proto/mp.h's readers with the
 * error messages docs/protocol.md promises. The decoder that uses them is request.c.
 */

base_err proto_req_reject_oom(proto_error *err)
{
    return proto_error_set(err, PROTO_E_INTERNAL, "out of memory");
}

/*
 * Copy at most PROTO_REQ_ECHO_MAX bytes of peer text into @dst, replacing anything but printable
 * ASCII with '?', so error messages stay valid UTF-8 whatever the peer sent.
 */
void proto_req_echo(char *dst, size_t dst_size, const char *src, uint32_t n)
{
    size_t m = n < PROTO_REQ_ECHO_MAX ? n : PROTO_REQ_ECHO_MAX;
    m = m < dst_size - 1 ? m : dst_size - 1;
    m = base_utf8_cut(src, m);
    memcpy(dst, src, m);
    dst[m] = '\0';
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
        e = proto_req_reject_oom(err);
    } else if (e != BASE_OK) {
        e = proto_error_set(err, PROTO_E_BAD_MSGPACK, "not one well-formed msgpack object");
    }
    return e;
}

/*
 * Check @buf and unpack it into @u (initialised by the caller, which destroys it on every
 * path). Sets err on failure.
 */
base_err proto_req_unpack(const uint8_t *buf, size_t len, msgpack_unpacked *u, proto_error *err)
{
    return report_unpack(proto_mp_unpack(buf, len, PROTO_MAX_DEPTH, PROTO_MAX_OBJECTS, u), err);
}

/* proto_req_unpack() into the caller's zone @z: the object @o lives until the zone is cleared. */
base_err proto_req_unpack_in(const uint8_t *buf, size_t len, msgpack_zone *z, msgpack_object *o,
                             proto_error *err)
{
    base_err e = proto_mp_unpack_in(buf, len, PROTO_MAX_DEPTH, PROTO_MAX_OBJECTS, z, o);
    return report_unpack(e, err);
}

/*
 * Look up @names in the map @m (called @where in messages): out[i] is the value of
 * names[i] or NULL. Rejects non-string keys and duplicate keys; ignores unknown keys.
 */
base_err proto_req_map_fields(const msgpack_object *m, const char *where, const char *const *names,
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
        e = proto_req_reject_oom(err);
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
base_err proto_req_get_str(const msgpack_object *o, const char *name, bool required, size_t max,
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
base_err proto_req_get_f32(const msgpack_object *o, const char *name, float *out, proto_error *err)
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
base_err proto_req_get_ms(const msgpack_object *o, const char *name, int64_t *out, proto_error *err)
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

base_err proto_req_vec_fault(const msgpack_object *o, const char *name, proto_mp_fault fault,
                             uint32_t at, proto_error *err)
{
    if (fault == PROTO_MP_BAD_LENGTH) {
        return proto_error_set(err, PROTO_E_BAD_REQUEST,
                               "field '%s' is a bin of %" PRIu32 " bytes, not a multiple of 4",
                               name, o->via.bin.size);
    }
    if (fault == PROTO_MP_BAD_ELEMENT) {
        return proto_error_set(err, PROTO_E_BAD_REQUEST, "field '%s[%" PRIu32 "]' must be a number",
                               name, at);
    }
    return proto_error_set(err, PROTO_E_BAD_REQUEST,
                           "field '%s' must be a bin of float32 or an array of numbers", name);
}

/*
 * A required, non-empty float vector (bin of LE float32, or array of numbers) of at most
 * @max entries, allocated into *out; past @max it is @over_code.
 */
base_err proto_req_get_vec(proto_request *r, enum proto_scratch_slot slot, const msgpack_object *o,
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
        e = proto_req_vec_fault(o, name, f, at, err);
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
        e = proto_req_reject_oom(err);
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
