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

/*
 * What a walk prints into, and what it notes on the way about a reply's envelope: the
 * root's "ok" and the code of its "error" map (proto_json_from_reply()).
 */
typedef struct printer {
    base_buf b;
    uint32_t depth; /* containers open around the next item */
    enum { NEXT_OTHER, NEXT_OK, NEXT_ERROR, NEXT_CODE } next; /* what the next value is */
    bool in_error;                                            /* inside the root's "error" */
    bool ok;
    bool have_code;
    proto_errcode code;
} printer;

static bool str_is(const proto_mp_item *it, const char *s)
{
    return it->kind == PROTO_MP_STR && it->via.bytes.size == strlen(s) &&
           memcmp(it->via.bytes.ptr, s, it->via.bytes.size) == 0;
}

/* Follow the envelope: {"ok":false, "error":{"code":"...", ...}, ...}. */
static void note_envelope(printer *p, const proto_mp_item *it)
{
    if (it->role == PROTO_MP_KEY) {
        p->next = NEXT_OTHER;
        if (p->depth == 1 && str_is(it, "ok")) {
            p->next = NEXT_OK;
        } else if (p->depth == 1 && str_is(it, "error")) {
            p->next = NEXT_ERROR;
        } else if (p->depth == 2 && p->in_error && str_is(it, "code")) {
            p->next = NEXT_CODE;
        }
        return;
    }
    if (it->role == PROTO_MP_VALUE && p->next == NEXT_OK && it->kind == PROTO_MP_BOOL) {
        p->ok = it->via.b;
    } else if (it->role == PROTO_MP_VALUE && p->next == NEXT_ERROR && it->kind == PROTO_MP_MAP) {
        p->in_error = true;
    } else if (it->role == PROTO_MP_VALUE && p->next == NEXT_CODE && it->kind == PROTO_MP_STR) {
        char name[32];
        bool found = false;
        if (it->via.bytes.size < sizeof(name)) {
            memcpy(name, it->via.bytes.ptr, it->via.bytes.size);
            name[it->via.bytes.size] = '\0';
            proto_errcode_from_name(name, &p->code, &found);
        }
        p->have_code = found;
    }
    if (it->role == PROTO_MP_VALUE) {
        p->next = NEXT_OTHER;
    }
    if (it->kind == PROTO_MP_ARRAY || it->kind == PROTO_MP_MAP) {
        p->depth++;
    } else if (it->kind == PROTO_MP_ARRAY_END || it->kind == PROTO_MP_MAP_END) {
        p->depth--;
        if (p->depth == 1) {
            p->in_error = false;
        }
    }
}

/* proto_mp_walk()'s visitor: print @it into the printer @ctx. */
static base_err emit_item(void *ctx, const proto_mp_item *it)
{
    printer *pr = ctx;
    base_buf *b = &pr->b;
    base_err e = BASE_OK;
    char txt[32];

    note_envelope(pr, it);
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

/* Print @buf into @p (set up here; the caller finishes it with base_buf_fini()). */
static base_err print(const uint8_t *buf, size_t len, printer *p)
{
    base_err e = BASE_OK;

    memset(p, 0, sizeof(*p));
    /*
     * Worst case per input byte: a 1-byte control character in a str becomes "\u00XX"
     * (6 bytes), a map pair of an empty str key and nil (2 bytes) becomes "\"\":null," (8).
     */
    base_buf_init(&p->b,
                  len <= (SIZE_MAX - 64) / JSON_EXPANSION ? len * JSON_EXPANSION + 64 : SIZE_MAX);
    e = proto_mp_walk(buf, len, emit_item, p);
    if (e == BASE_OK) {
        e = base_buf_append(&p->b, "", 1);
    }
    if (e == BASE_ELIMIT) {
        e = BASE_EINTERNAL; /* the cap above is a proven bound: reaching it is a bug */
    }
    return e;
}

base_err proto_json_from_msgpack(const uint8_t *buf, size_t len, char **out)
{
    printer p;
    size_t n = 0;
    base_err e = print(buf, len, &p);
    if (e == BASE_OK) {
        *out = (char *)base_buf_release(&p.b, &n);
    }
    base_buf_fini(&p.b);
    return e;
}

base_err proto_json_from_reply(const uint8_t *buf, size_t len, char **out, size_t *out_len,
                               proto_errcode *out_code)
{
    printer p;
    size_t n = 0;
    base_err e = print(buf, len, &p);
    if (e == BASE_OK) {
        *out = (char *)base_buf_release(&p.b, &n);
        *out_len = n - 1; /* without the NUL */
        *out_code = p.ok                                    ? PROTO_E_NONE
                    : p.have_code && p.code != PROTO_E_NONE ? p.code
                                                            : PROTO_E_INTERNAL;
    }
    base_buf_fini(&p.b);
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
    root = json_loads(json, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
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

/*
 * Bound what jansson will allocate before it sees @json: nesting past PROTO_MAX_DEPTH, or
 * more values and keys than PROTO_MAX_OBJECTS (every one but the first follows a ',' or ':'
 * outside a string, or a '[' or '{' that is not closed at once: "[]" holds none), could
 * never become a request the decoder takes; the count is the msgpack one (base/mpcheck.h).
 * A scan of the bytes, so a 1 MiB body of "[0,0,..." is refused without building half a
 * million objects. Malformed text passes here and is refused by jansson.
 */
static bool within_caps(const char *json, size_t len, proto_error *err)
{
    size_t depth = 0, values = 1;
    bool in_str = false;
    bool opened = false; /* the last byte that is not whitespace opened an array or object */

    for (size_t i = 0; i < len; i++) {
        char c = json[i];
        if (in_str) {
            if (c == '\\') {
                i++; /* the escaped byte cannot end the string */
            } else if (c == '"') {
                in_str = false;
            }
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            continue;
        }
        if (opened && c != ']' && c != '}') {
            values++; /* the first value (or key) of the container just opened */
        }
        opened = false;
        if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > PROTO_MAX_DEPTH) {
                (void)proto_error_set(err, PROTO_E_TOO_LARGE, "JSON nests deeper than %u",
                                      PROTO_MAX_DEPTH);
                return false;
            }
            opened = true;
        } else if (c == ']' || c == '}') {
            depth -= depth > 0;
        } else if (c == ',' || c == ':') {
            values++;
        }
        if (values > PROTO_MAX_OBJECTS) {
            (void)proto_error_set(err, PROTO_E_TOO_LARGE, "JSON holds more than %u values",
                                  PROTO_MAX_OBJECTS);
            return false;
        }
    }
    return true;
}

/* The envelope of an HTTP API request: "v" defaults to 1, "op" to @op and must equal it. */
static bool envelope(json_t *root, const char *op, proto_error *err)
{
    if (!json_is_object(root)) {
        return true; /* the decoder refuses it as it refuses a msgpack message that is no map */
    }
    json_t *v = json_object_get(root, "v");
    json_t *o = json_object_get(root, "op");
    if (v == NULL && json_object_set_new(root, "v", json_integer(PROTO_VERSION)) != 0) {
        (void)proto_error_set(err, PROTO_E_INTERNAL, "out of memory");
        return false;
    }
    if (o == NULL) {
        if (json_object_set_new(root, "op", json_string(op)) != 0) {
            (void)proto_error_set(err, PROTO_E_INTERNAL, "out of memory");
            return false;
        }
    } else if (!json_is_string(o) || strcmp(json_string_value(o), op) != 0 ||
               json_string_length(o) != strlen(op)) {
        (void)proto_error_set(err, PROTO_E_BAD_REQUEST,
                              "field 'op' is not \"%s\", the op of the path", op);
        return false;
    }
    return true;
}

base_err proto_json_request(const char *json, size_t len, const char *op, base_buf *out,
                            proto_error *err)
{
    base_err e = BASE_OK;
    json_error_t jerr;
    json_t *root = NULL;
    proto_writer w;
    size_t start = out->len;

    if (json == NULL) {
        json = ""; /* an empty body; jansson says why that is not JSON */
        len = 0;
    }
    if (!within_caps(json, len, err)) {
        e = BASE_ELIMIT;
        goto fail;
    }
    /* Duplicate keys are refused as the decoder refuses them in msgpack. */
    root = json_loadb(json, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (root == NULL) {
        if (json_error_code(&jerr) == json_error_out_of_memory) {
            e = proto_error_set(err, PROTO_E_INTERNAL, "out of memory");
        } else if (json_error_code(&jerr) == json_error_numeric_overflow) {
            /* JSON, but no field read over HTTP takes it: refused as a field, not as text. */
            e = proto_error_set(err, PROTO_E_BAD_REQUEST,
                                "line %d column %d: a number out of range: an integer must "
                                "lie in [-2^63, 2^63), a real within float64's",
                                jerr.line, jerr.column);
        } else {
            e = proto_error_set(err, PROTO_E_BAD_JSON, "line %d column %d: %s", jerr.line,
                                jerr.column, jerr.text);
        }
        goto fail;
    }
    if (!envelope(root, op, err)) {
        e = err->code == PROTO_E_INTERNAL ? BASE_ENOMEM : BASE_EINVAL;
        goto fail;
    }
    proto_writer_init(&w, out);
    e = pack_json(&w, root, 0, NULL, 0);
    if (e == BASE_OK) {
        e = proto_writer_finish(&w);
    }
    if (e == BASE_ELIMIT) {
        (void)proto_error_set(err, PROTO_E_TOO_LARGE, "request larger than %zu bytes as msgpack",
                              out->max_bytes);
    } else if (e != BASE_OK) {
        (void)proto_error_set(err, PROTO_E_INTERNAL, "out of memory");
    }
fail:
    if (e != BASE_OK) {
        out->len = start;
    }
    json_decref(root);
    return e;
}

int proto_json_http_status(proto_errcode code)
{
    /* No default: a new code must be given its status here (-Wswitch). */
    switch (code) {
    case PROTO_E_NONE:
        return 200;
    case PROTO_E_BAD_MSGPACK:
    case PROTO_E_BAD_JSON:
    case PROTO_E_TOO_LARGE: /* a field past its cap; a body past the cap is 413 (http_api.c) */
    case PROTO_E_BAD_REQUEST:
    case PROTO_E_BAD_VERSION:
    case PROTO_E_UNKNOWN_OP:
    case PROTO_E_BAD_DIMENSION:
    case PROTO_E_NOT_FINITE:
    case PROTO_E_TOO_MANY_CANDIDATES:
    case PROTO_E_UNKNOWN_ACTION:
    case PROTO_E_UNKNOWN_SIGNAL:
    case PROTO_E_OUT_OF_RANGE:
    case PROTO_E_OP_NOT_ALLOWED:
        return 400;
    case PROTO_E_UNKNOWN_POLICY:
    case PROTO_E_UNKNOWN_EVENT:
    case PROTO_E_NOT_FOUND:
        return 404;
    case PROTO_E_DUPLICATE_EVENT:
    case PROTO_E_LIMIT:
        return 409;
    case PROTO_E_UNAUTHORIZED:
        return 401;
    case PROTO_E_FORBIDDEN:
        return 403;
    case PROTO_E_RATE_LIMITED:
        return 429;
    case PROTO_E_UNAVAILABLE:
    case PROTO_E_SHUTTING_DOWN:
        return 503;
    case PROTO_E_INTERNAL:
    case PROTO_E_COUNT:
        break;
    }
    return 500;
}

bool proto_http_target(const char *uri, const char *prefix, char *out, size_t len, char *policy,
                       size_t plen)
{
    size_t pn = strlen(prefix);
    const char *q = strchr(uri, '?');
    size_t n = q != NULL ? (size_t)(q - uri) : strlen(uri);
    if (policy != NULL) {
        policy[0] = '\0';
    }
    out[0] = '\0';
    /* The prefix, or the prefix without its trailing '/' (the route without an argument). */
    bool route = n >= pn ? strncmp(uri, prefix, pn) == 0
                         : n + 1 == pn && prefix[n] == '/' && strncmp(uri, prefix, n) == 0;
    if (!route) {
        return false; /* another path, or an absolute-form URI ("http://host/api/v1/...") */
    }
    if (n > pn && !base_percent_decode(uri + pn, n - pn, false, out, len)) {
        return false;
    }
    return policy == NULL || proto_http_query(uri, "policy", policy, plen) >= 0;
}

int proto_http_query(const char *uri, const char *key, char *out, size_t len)
{
    size_t klen = strlen(key);
    int found = 0;
    out[0] = '\0';
    for (const char *p = strchr(uri, '?'); p != NULL && *p != '\0';) {
        p++; /* past '?' or '&' */
        const char *end = strchr(p, '&');
        size_t m = end != NULL ? (size_t)(end - p) : strlen(p);
        if (m > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
            if (!base_percent_decode(p + klen + 1, m - klen - 1, true, out, len)) {
                return -1;
            }
            found = m > klen + 1 ? 1 : 0; /* a later one replaces it; an empty one is absent */
        }
        p = end;
    }
    return found;
}
