/*
 * Fuzz target for the wire codec: every input goes through the request decoder, the reply
 * decoder and the JSON printer, and whatever they return is freed. Built with libFuzzer
 * under -Dfuzzing=true, else replayed over tests/fuzz/corpus/fuzz_wire/ by replay_main.c.
 */
#include <stddef.h>
#include <stdint.h>

#include "base/alloc.h"
#include "service/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    svc_request req;
    svc_wire_error err;
    svc_reply *rep = base_alloc(sizeof(*rep)); /* 4.5 KiB: keep it off the fuzzer's stack */
    char *json = NULL;

    if (svc_wire_decode(data, size, &req, &err) == BASE_OK) {
        svc_request_fini(&req);
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
