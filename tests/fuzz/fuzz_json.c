/*
 * Fuzz target for the HTTP API's JSON bodies (proto/json.c): every input is taken as the body
 * of each POST route (proto_json_request()), and what it gives is decoded as a request. On
 * success the msgpack must be one request the decoder reads with the path's op (or refuses
 * with a code); on failure the error must carry a code and a reply the JSON printer accepts,
 * and nothing may be appended; anything else aborts. Built with libFuzzer under
 * -Dfuzzing=true, else replayed over tests/fuzz/corpus/fuzz_json/ by replay_main.c.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "proto/errors.h"
#include "proto/json.h"
#include "proto/reply.h"
#include "proto/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const OPS[] = {"decide", "log", "feedback", "activate", "explain"};

/* The reply the daemon sends for @err must print as JSON, with its code. */
static void error_reply_must_print(const proto_error *err)
{
    base_buf b;
    char *json = NULL;
    size_t n = 0;
    proto_errcode code = PROTO_E_NONE;

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    if (proto_reply_error(&b, err->code, err->message) == BASE_OK) {
        base_err e = proto_json_from_reply(b.data, b.len, &json, &n, &code);
        if (e == BASE_OK && code != err->code) {
            abort();
        }
        if (e != BASE_OK && e != BASE_ENOMEM) {
            abort();
        }
        base_free(json);
    }
    base_buf_fini(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < sizeof(OPS) / sizeof(OPS[0]); i++) {
        base_buf b;
        proto_error err;
        proto_request req;

        memset(&err, 0, sizeof(err));
        base_buf_init(&b, 4 * (size_t)PROTO_MAX_MSG_BYTES);
        if (proto_json_request((const char *)data, size, OPS[i], &b, &err) != BASE_OK) {
            if (b.len != 0 || err.code == PROTO_E_NONE) {
                abort();
            }
            error_reply_must_print(&err);
        } else if (proto_request_decode(b.data, b.len, &req, &err) == BASE_OK) {
            if (strcmp(proto_op_name(req.op), OPS[i]) != 0) {
                abort(); /* the path's op, always */
            }
            proto_request_fini(&req);
        } else {
            if (err.code == PROTO_E_NONE || err.code == PROTO_E_BAD_MSGPACK) {
                abort(); /* the bridge writes well-formed msgpack */
            }
            error_reply_must_print(&err);
        }
        base_buf_fini(&b);
    }
    return 0;
}
