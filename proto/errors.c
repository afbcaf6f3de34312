#include "proto/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const errcode_names[PROTO_E_COUNT] = {
    [PROTO_E_NONE] = "none",
    [PROTO_E_BAD_MSGPACK] = "bad_msgpack",
    [PROTO_E_TOO_LARGE] = "too_large",
    [PROTO_E_BAD_REQUEST] = "bad_request",
    [PROTO_E_BAD_VERSION] = "unsupported_version",
    [PROTO_E_UNKNOWN_OP] = "unknown_op",
    [PROTO_E_UNKNOWN_POLICY] = "unknown_policy",
    [PROTO_E_BAD_DIMENSION] = "bad_dimension",
    [PROTO_E_NOT_FINITE] = "not_finite",
    [PROTO_E_TOO_MANY_CANDIDATES] = "too_many_candidates",
    [PROTO_E_UNKNOWN_ACTION] = "unknown_action",
    [PROTO_E_DUPLICATE_EVENT] = "duplicate_event",
    [PROTO_E_UNKNOWN_EVENT] = "unknown_event",
    [PROTO_E_UNKNOWN_SIGNAL] = "unknown_signal",
    [PROTO_E_LIMIT] = "limit",
    [PROTO_E_UNAVAILABLE] = "unavailable",
    [PROTO_E_SHUTTING_DOWN] = "shutting_down",
    [PROTO_E_INTERNAL] = "internal",
    [PROTO_E_OUT_OF_RANGE] = "out_of_range",
    [PROTO_E_RATE_LIMITED] = "rate_limited",
    [PROTO_E_OP_NOT_ALLOWED] = "op_not_allowed",
    [PROTO_E_NOT_FOUND] = "not_found",
    [PROTO_E_BAD_JSON] = "bad_json",
    [PROTO_E_UNAUTHORIZED] = "unauthorized",
    [PROTO_E_FORBIDDEN] = "forbidden",
};

const char *proto_errcode_name(proto_errcode c)
{
    /* An out-of-range code is a bug in the caller; peers still get a valid code. */
    return (unsigned)c < PROTO_E_COUNT ? errcode_names[c] : errcode_names[PROTO_E_INTERNAL];
}

void proto_errcode_from_name(const char *name, proto_errcode *out, bool *out_found)
{
    *out_found = false;
    for (unsigned i = 0; i < PROTO_E_COUNT && name != NULL; i++) {
        if (strcmp(name, errcode_names[i]) == 0) {
            *out = (proto_errcode)i;
            *out_found = true;
            break;
        }
    }
}

/* The base_err a decoding failure with reply code @c is reported as. */
static base_err errcode_to_base(proto_errcode c)
{
    base_err e = BASE_EINVAL;

    switch (c) {
    case PROTO_E_NONE:
        e = BASE_OK;
        break;
    case PROTO_E_BAD_MSGPACK:
    case PROTO_E_BAD_JSON:
        e = BASE_EPROTO;
        break;
    case PROTO_E_TOO_LARGE:
    case PROTO_E_TOO_MANY_CANDIDATES:
        e = BASE_ELIMIT;
        break;
    case PROTO_E_INTERNAL:
        e = BASE_ENOMEM; /* the decoder's only internal failure is allocation */
        break;
    default:
        break;
    }
    return e;
}

base_err proto_error_set(proto_error *err, proto_errcode code, const char *fmt, ...)
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
