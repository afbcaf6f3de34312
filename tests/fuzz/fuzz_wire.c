/*
 * Fuzz target for the wire codec: every input goes through the request decoder, the reply
 * decoder and the JSON printer, and whatever they return is freed. A request the decoder
 * refuses must give an error reply the JSON printer accepts (valid UTF-8 whatever the peer
 * sent); anything else aborts. Built with libFuzzer under -Dfuzzing=true, else replayed over
 * tests/fuzz/corpus/fuzz_wire/ by replay_main.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "service/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The reply the daemon would send for @err must print as JSON, which refuses bad UTF-8. */
static void error_reply_must_print(const svc_wire_error *err)
{
    base_buf b;
    char *json = NULL;

    base_buf_init(&b, SVC_WIRE_MAX_MSG);
    if (svc_wire_reply_error(&b, err->code, err->message) == BASE_OK) {
        base_err e = svc_wire_to_json(b.data, b.len, &json);
        if (e != BASE_OK && e != BASE_ENOMEM) {
            abort();
        }
        base_free(json);
    }
    base_buf_fini(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    svc_request req;
    svc_wire_error err;
    svc_reply *rep = base_alloc(sizeof(*rep)); /* 4.5 KiB: keep it off the fuzzer's stack */
    char *json = NULL;

    if (svc_wire_decode(data, size, &req, &err) == BASE_OK) {
        svc_request_fini(&req);
    } else {
        error_reply_must_print(&err);
    }
    if (rep != NULL) {
        (void)svc_wire_decode_reply(data, size, rep); /* only crashes and leaks matter here */
    }
    if (svc_wire_to_json(data, size, &json) == BASE_OK) {
        base_free(json);
    }
    base_free(rep);
    return 0;
}
