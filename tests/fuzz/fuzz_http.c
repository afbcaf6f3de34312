/*
 * Fuzz target for what the HTTP API's handlers do with a request before the dispatcher
 * (service/http_api.c): the request target (proto_http_target(), for every route prefix), the
 * Authorization header (proto_auth_http_parse(), then the proof checked against a fixed key
 * over the method, target and body), and the body of each POST route (proto_json_request())
 * decoded as the request it stands for. The input is split at its first three newlines into
 * method, target and header; the rest is the body.
 * Invariants (anything else aborts): a target taken yields NUL-terminated strings within
 * their buffers; a header that parses has a client, a nonce and the proof fields the
 * header-maker writes back to the same text when signed with the fixed key; a body that
 * converts decodes (or is refused with a code) with nothing left behind on failure.
 * Built with libFuzzer under -Dfuzzing=true, else replayed over tests/fuzz/corpus/fuzz_http/.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "proto/auth.h"
#include "proto/errors.h"
#include "proto/json.h"
#include "proto/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIELD_MAX 4096

static const char *const PREFIXES[] = {"/api/v1/explain/", "/api/v1/stats", "/api/v1/policies/"};
static const char *const OPS[] = {"decide", "feedback", "explain"};

/* The next line of @data (at most FIELD_MAX - 1 bytes kept) into @out; advances *at. */
static void take_line(const uint8_t *data, size_t size, size_t *at, char *out)
{
    size_t n = 0;
    while (*at < size && data[*at] != '\n') {
        if (n < FIELD_MAX - 1 && data[*at] != '\0') {
            out[n++] = (char)data[*at];
        }
        (*at)++;
    }
    if (*at < size) {
        (*at)++; /* the newline */
    }
    out[n] = '\0';
}

static void check_target(const char *target)
{
    for (size_t i = 0; i < sizeof(PREFIXES) / sizeof(PREFIXES[0]); i++) {
        char out[BASE_ID_MAX + 1], policy[BASE_NAME_MAX + 1];
        memset(out, 'x', sizeof(out));
        memset(policy, 'x', sizeof(policy));
        if (proto_http_target(target, PREFIXES[i], out, sizeof(out), policy, sizeof(policy)) &&
            (memchr(out, '\0', sizeof(out)) == NULL ||
             memchr(policy, '\0', sizeof(policy)) == NULL)) {
            abort();
        }
    }
}

static void check_header(const char *method, const char *target, const char *header,
                         const uint8_t *body, size_t body_len)
{
    static const uint8_t key[PROTO_AUTH_KEY_BYTES] = {7};
    proto_auth a;
    proto_error err;
    char again[512];

    memset(&err, 0, sizeof(err));
    if (proto_auth_http_parse(header, &a, &err) != BASE_OK) {
        if (err.code != PROTO_E_UNAUTHORIZED || a.present) {
            abort();
        }
        return;
    }
    if (!a.present || a.client[0] == '\0' || a.nonce[0] == '\0' || a.ts_ms < 0) {
        abort();
    }
    (void)proto_auth_http_verify(&a, key, method, target, body, body_len);
    /* What parsed can be made again, and the remade header verifies. */
    if (proto_auth_http_header(again, sizeof(again), a.client, key, a.ts_ms, a.nonce, method,
                               target, body, body_len) == BASE_OK) {
        proto_auth b;
        if (proto_auth_http_parse(again, &b, &err) != BASE_OK ||
            !proto_auth_http_verify(&b, key, method, target, body, body_len)) {
            abort();
        }
    }
}

static void check_body(const uint8_t *body, size_t len)
{
    for (size_t i = 0; i < sizeof(OPS) / sizeof(OPS[0]); i++) {
        base_buf b;
        proto_error err;
        proto_request req;
        memset(&err, 0, sizeof(err));
        base_buf_init(&b, 4 * (size_t)PROTO_MAX_MSG_BYTES);
        if (proto_json_request((const char *)body, len, OPS[i], &b, &err) != BASE_OK) {
            if (b.len != 0 || err.code == PROTO_E_NONE) {
                abort();
            }
        } else if (proto_request_decode(b.data, b.len, &req, &err) == BASE_OK) {
            proto_request_fini(&req);
        } else if (err.code == PROTO_E_NONE) {
            abort();
        }
        base_buf_fini(&b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *method = base_alloc(FIELD_MAX), *target = base_alloc(FIELD_MAX),
         *header = base_alloc(FIELD_MAX);
    size_t at = 0;
    if (method == NULL || target == NULL || header == NULL) {
        abort();
    }
    take_line(data, size, &at, method);
    take_line(data, size, &at, target);
    take_line(data, size, &at, header);
    check_target(target);
    check_header(method, target, header, data + at, size - at);
    check_body(data + at, size - at);
    base_free(method);
    base_free(target);
    base_free(header);
    return 0;
}
