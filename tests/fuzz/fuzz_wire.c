/*
 * Fuzz target for the wire protocol (proto/): every input goes through the request decoder,
 * the reply decoder and the JSON printer (proto/json.c), and whatever they return is freed.
 * A request the decoder refuses must give an error reply the JSON printer accepts (valid
 * UTF-8 whatever the peer sent); a request it accepts must encode again
 * (proto_request_encode) into bytes that decode to the same request; anything else aborts.
 * Built with libFuzzer under -Dfuzzing=true, else replayed over tests/fuzz/corpus/fuzz_wire/
 * by replay_main.c.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "proto/errors.h"
#include "proto/explain.h"
#include "proto/json.h"
#include "proto/reply.h"
#include "proto/request.h"

#define REENCODE_MAX (16u << 20) /* re-encoding may grow an input ~9x (ints become doubles) */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The reply the daemon would send for @err must print as JSON, which refuses bad UTF-8. */
static void error_reply_must_print(const proto_error *err)
{
    base_buf b;
    char *json = NULL;

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    if (proto_reply_error(&b, err->code, err->message) == BASE_OK) {
        base_err e = proto_json_from_msgpack(b.data, b.len, &json);
        if (e != BASE_OK && e != BASE_ENOMEM) {
            abort();
        }
        base_free(json);
    }
    base_buf_fini(&b);
}

static bool same_floats(const float *a, const float *b, uint32_t n)
{
    return n == 0 || (a != NULL && b != NULL && memcmp(a, b, (size_t)n * sizeof(float)) == 0);
}

/* Every field proto_request_decode() fills, compared (strings as whole buffers). */
static bool same_request(const proto_request *a, const proto_request *b)
{
    return a->op == b->op && memcmp(a->policy, b->policy, sizeof(a->policy)) == 0 &&
           memcmp(a->event_id, b->event_id, sizeof(a->event_id)) == 0 &&
           memcmp(a->conversation_id, b->conversation_id, sizeof(a->conversation_id)) == 0 &&
           a->turn == b->turn && a->dim == b->dim && a->n_cand == b->n_cand &&
           same_floats(a->embedding, b->embedding, a->dim) &&
           (a->n_cand == 0 || memcmp(a->cand, b->cand, a->n_cand * sizeof(*a->cand)) == 0) &&
           (a->pmf == NULL) == (b->pmf == NULL) &&
           (a->pmf == NULL || same_floats(a->pmf, b->pmf, a->n_cand)) &&
           memcmp(a->chosen, b->chosen, sizeof(a->chosen)) == 0 && a->deferred == b->deferred &&
           a->no_explore == b->no_explore && a->has_explore_budget == b->has_explore_budget &&
           a->explore_budget == b->explore_budget && strcmp(a->segment, b->segment) == 0 &&
           memcmp(a->signal, b->signal, sizeof(a->signal)) == 0 && a->value == b->value &&
           memcmp(a->outcome_id, b->outcome_id, sizeof(a->outcome_id)) == 0 &&
           memcmp(a->supersedes, b->supersedes, sizeof(a->supersedes)) == 0 &&
           memcmp(a->user_id, b->user_id, sizeof(a->user_id)) == 0 && a->ts_ms == b->ts_ms &&
           a->clock_set_ms == b->clock_set_ms && a->clock_advance_ms == b->clock_advance_ms;
}

/* A decoded request must survive encode + decode unchanged. */
static void request_must_reencode(const proto_request *req)
{
    base_buf b;
    proto_request back;
    proto_error err;

    base_buf_init(&b, REENCODE_MAX);
    base_err e = proto_request_encode(&b, req);
    if (e == BASE_OK) {
        e = proto_request_decode(b.data, b.len, &back, &err);
        if (e == BASE_OK && !same_request(req, &back)) {
            abort();
        }
        proto_request_fini(&back);
    }
    if (e != BASE_OK && e != BASE_ENOMEM) {
        abort();
    }
    base_buf_fini(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    proto_request req;
    proto_error err;
    proto_reply *rep = base_alloc(sizeof(*rep)); /* 4.5 KiB: keep it off the fuzzer's stack */
    char *json = NULL;

    if (proto_request_decode(data, size, &req, &err) == BASE_OK) {
        request_must_reencode(&req);
        proto_request_fini(&req);
    } else {
        error_reply_must_print(&err);
    }
    if (rep != NULL) {
        (void)proto_reply_decode(data, size, rep); /* only crashes and leaks matter here */
        proto_explain x;
        if (proto_explain_decode(data, size, &x) == BASE_OK) {
            proto_explain_fini(&x);
        }
    }
    if (proto_json_from_msgpack(data, size, &json) == BASE_OK) {
        base_free(json);
    }
    base_free(rep);
    return 0;
}
