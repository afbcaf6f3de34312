#include "proto/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/utf8.h"
#include "proto/errors.h"
#include "proto/mp.h"

#define JSON_EXPANSION 8 /* JSON bytes per msgpack byte, bound (see proto_json_from_msgpack) */

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

/* A bin: an array of float32 numbers when its length is a multiple of 4, else hex text. */
static base_err emit_bin(base_buf *b, const char *p, uint32_t n)
{
    static const char hex[] = "0123456789abcdef";
    base_err e = put(b, n % 4 == 0 ? "[" : "\"");

    for (uint32_t i = 0; n % 4 == 0 && i < n / 4 && e == BASE_OK; i++) {
        float v;
        proto_mp_f32_from_le(&v, p + 4 * (size_t)i, 1);
        e = put(b, i > 0 ? "," : "");
        if (e == BASE_OK) {
            e = emit_real(b, v, true);
        }
    }
    for (uint32_t i = 0; n % 4 != 0 && i < n && e == BASE_OK; i++) {
        unsigned char c = (unsigned char)p[i];
        char pair[3] = {hex[c >> 4], hex[c & 15], '\0'};
        e = put(b, pair);
    }
    if (e == BASE_OK) {
        e = put(b, n % 4 == 0 ? "]" : "\"");
    }
    return e;
}

/* proto_mp_walk()'s visitor: print @it into the base_buf @ctx. */
static base_err emit_item(void *ctx, const proto_mp_item *it)
{
    base_buf *b = ctx;
    base_err e = BASE_OK;
    char txt[32];

    if (it->kind == PROTO_MP_ARRAY_END || it->kind == PROTO_MP_MAP_END) {
        return put(b, it->kind == PROTO_MP_ARRAY_END ? "]" : "}");
    }
    if (it->role == PROTO_MP_KEY && it->kind != PROTO_MP_STR) {
        return BASE_EPROTO; /* JSON keys are strings */
    }
    if ((it->role == PROTO_MP_ELEMENT || it->role == PROTO_MP_KEY) && it->index > 0) {
        e = put(b, ",");
    } else if (it->role == PROTO_MP_VALUE) {
        e = put(b, ":");
    }
    if (e != BASE_OK) {
        return e;
    }
    switch (it->kind) {
    case PROTO_MP_NIL:
        e = put(b, "null");
        break;
    case PROTO_MP_BOOL:
        e = put(b, it->via.b ? "true" : "false");
        break;
    case PROTO_MP_UINT:
        (void)snprintf(txt, sizeof(txt), "%" PRIu64, it->via.u); /* <= 20 digits */
        e = put(b, txt);
        break;
    case PROTO_MP_INT:
        (void)snprintf(txt, sizeof(txt), "%" PRId64, it->via.i); /* <= 20 chars */
        e = put(b, txt);
        break;
    case PROTO_MP_F32:
    case PROTO_MP_F64:
        e = emit_real(b, it->via.f, it->kind == PROTO_MP_F32);
        break;
    case PROTO_MP_STR:
        e = emit_string(b, it->via.bytes.ptr, it->via.bytes.size);
        break;
    case PROTO_MP_BIN:
        e = emit_bin(b, it->via.bytes.ptr, it->via.bytes.size);
        break;
    case PROTO_MP_ARRAY:
        e = put(b, "[");
        break;
    case PROTO_MP_MAP:
        e = put(b, "{");
        break;
    default:
        e = BASE_EPROTO; /* ext types are not part of the protocol */
        break;
    }
    return e;
}

base_err proto_json_from_msgpack(const uint8_t *buf, size_t len, char **out)
{
    base_err e = BASE_OK;
    base_buf b;
    size_t n = 0;

    /*
     * Worst case per input byte: a 1-byte control character in a str becomes "\u00XX"
     * (6 bytes), a map pair of an empty str key and nil (2 bytes) becomes "\"\":null," (8).
     */
    base_buf_init(&b,
                  len <= (SIZE_MAX - 64) / JSON_EXPANSION ? len * JSON_EXPANSION + 64 : SIZE_MAX);
    e = proto_mp_walk(buf, len, emit_item, &b);
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

/* Recursion is bounded by @depth <= PROTO_MAX_DEPTH. */
static base_err pack_json(proto_writer *w, json_t *j, size_t depth, char *errbuf, size_t errlen)
{
    base_err e = BASE_OK;
    const char *key;
    json_t *val;
    size_t i;

    switch (json_typeof(j)) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        if (depth >= PROTO_MAX_DEPTH) {
            set_errbuf(errbuf, errlen, "JSON nests deeper than %u", PROTO_MAX_DEPTH);
            e = BASE_ELIMIT;
            goto fail;
        }
        if (json_is_object(j)) {
            if (json_object_size(j) > UINT32_MAX) {
                e = BASE_ELIMIT;
                goto fail;
            }
            proto_w_map(w, (uint32_t)json_object_size(j));
            /* jansson >= 2.8 iterates in insertion order, so key order is kept. */
            json_object_foreach(j, key, val)
            {
                proto_w_strn(w, key, strlen(key));
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
            proto_w_array(w, (uint32_t)json_array_size(j));
            json_array_foreach(j, i, val)
            {
                e = pack_json(w, val, depth + 1, errbuf, errlen);
                if (e != BASE_OK) {
                    goto fail;
                }
            }
        }
        break;
    case JSON_STRING:
        proto_w_strn(w, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        proto_w_int(w, (int64_t)json_integer_value(j));
        break;
    case JSON_REAL:
        proto_w_double(w, json_real_value(j));
        break;
    case JSON_TRUE:
        proto_w_bool(w, true);
        break;
    case JSON_FALSE:
        proto_w_bool(w, false);
        break;
    case JSON_NULL:
        proto_w_nil(w);
        break;
    }
    e = proto_writer_finish(w);
fail:
    return e;
}

base_err proto_json_to_msgpack(const char *json, base_buf *out, char *errbuf, size_t errlen)
{
    base_err e = BASE_OK;
    json_error_t jerr;
    json_t *root = NULL;
    proto_writer w;
    size_t start = out->len;

    if (json == NULL) {
        set_errbuf(errbuf, errlen, "no JSON text");
        e = BASE_EINVAL;
        goto fail;
    }
    /* Duplicate keys are refused here as the daemon refuses them in msgpack. */
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
    proto_writer_init(&w, out);
    e = pack_json(&w, root, 0, errbuf, errlen);
    if (e == BASE_OK) {
        e = proto_writer_finish(&w);
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
