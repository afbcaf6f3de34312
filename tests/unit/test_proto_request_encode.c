/*
 * Unit tests for proto/request_encode.c: the decide request byte for byte as
 * docs/protocol.md section 3 shows it, every encoder read back by the decoder, refused
 * arguments, and proto_request_encode() giving back what the decoder read.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "proto/errors.h"
#include "proto/json.h"
#include "proto/request.h"
#include "tap.h"

/* TST_OK that stops the run (TAP "Bail out!") when later checks would read a failed result. */
#define MUST_OK(expr)                                                                              \
    do {                                                                                           \
        base_err must_e_ = (expr);                                                                 \
        TST_OK(must_e_);                                                                           \
        if (must_e_ != BASE_OK) {                                                                  \
            printf("Bail out! %s failed\n", #expr);                                                \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* The decide example of docs/protocol.md section 3, byte for byte. */
static void encode_decide_writes_the_documented_bytes(void)
{
    static const uint8_t want[151] = {
        0x86, 0xa1, 0x76, 0x01, 0xa2, 0x6f, 0x70, 0xa6, 0x64, 0x65, 0x63, 0x69, 0x64, 0x65,
        0xa6, 0x70, 0x6f, 0x6c, 0x69, 0x63, 0x79, 0xa3, 0x66, 0x61, 0x71, 0xa8, 0x65, 0x76,
        0x65, 0x6e, 0x74, 0x5f, 0x69, 0x64, 0xa5, 0x65, 0x76, 0x2d, 0x34, 0x32, 0xa7, 0x63,
        0x6f, 0x6e, 0x74, 0x65, 0x78, 0x74, 0x81, 0xa9, 0x65, 0x6d, 0x62, 0x65, 0x64, 0x64,
        0x69, 0x6e, 0x67, 0xc4, 0x10, 0x00, 0x00, 0x80, 0x3e, 0x00, 0x00, 0x80, 0xbf, 0x00,
        0x00, 0x00, 0x3f, 0x00, 0x00, 0x00, 0x40, 0xaa, 0x63, 0x61, 0x6e, 0x64, 0x69, 0x64,
        0x61, 0x74, 0x65, 0x73, 0x92, 0x82, 0xa2, 0x69, 0x64, 0xa5, 0x67, 0x72, 0x65, 0x65,
        0x74, 0xaa, 0x62, 0x61, 0x73, 0x65, 0x5f, 0x6c, 0x6f, 0x67, 0x69, 0x74, 0xcb, 0x3f,
        0xf8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x82, 0xa2, 0x69, 0x64, 0xa7, 0x68, 0x61,
        0x6e, 0x64, 0x6f, 0x66, 0x66, 0xaa, 0x62, 0x61, 0x73, 0x65, 0x5f, 0x6c, 0x6f, 0x67,
        0x69, 0x74, 0xcb, 0xbf, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    };
    static const float emb[4] = {0.25f, -1.0f, 0.5f, 2.0f};
    static const char *const ids[2] = {"greet", "handoff"};
    static const float logits[2] = {1.5f, -0.5f};
    proto_decide_req q = {.policy = "faq",
                          .event_id = "ev-42",
                          .embedding = emb,
                          .dim = 4,
                          .n_cand = 2,
                          .cand_ids = ids,
                          .base_logits = logits};
    base_buf b;

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    MUST_OK(proto_encode_decide(&b, &q));
    TST_EQ(b.len, sizeof(want));
    TST_TRUE(b.len == sizeof(want) && memcmp(b.data, want, sizeof(want)) == 0);
    base_buf_fini(&b);
}

static void encoders_round_trip_through_the_decoder(void)
{
    static const float emb[3] = {0.5f, -2.0f, 1e-3f};
    static const char *const ids[3] = {"a", "b", "c"};
    static const float logits[3] = {1.0f, -0.25f, 3.0f};
    static const float pmf[3] = {0.25f, 0.5f, 0.25f};
    proto_decide_req q = {.policy = "faq",
                          .conversation_id = "conv-1",
                          .turn = 4,
                          .deferred = true,
                          .embedding = emb,
                          .dim = 3,
                          .n_cand = 3,
                          .cand_ids = ids,
                          .base_logits = logits};
    proto_feedback_req fb = {.policy = "faq",
                             .conversation_id = "conv-1",
                             .signal = "csat",
                             .value = 4.0,
                             .outcome_id = "o-1",
                             .supersedes = "o-0",
                             .user_id = "u-7",
                             .ts_ms = 1700000000123LL};
    proto_request r;
    proto_error err;
    base_buf b;

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    MUST_OK(proto_encode_decide(&b, &q));
    MUST_OK(proto_request_decode(b.data, b.len, &r, &err));
    TST_EQ(r.op, PROTO_OP_DECIDE);
    TST_STREQ(r.policy, "faq");
    TST_STREQ(r.event_id, "");
    TST_STREQ(r.conversation_id, "conv-1");
    TST_EQ(r.turn, 4);
    TST_TRUE(r.deferred);
    TST_TRUE(r.dim == 3 && memcmp(r.embedding, emb, sizeof(emb)) == 0);
    TST_TRUE(r.n_cand == 3 && strcmp(r.cand[2].id, "c") == 0 && r.cand[1].base_logit == -0.25f);
    proto_request_fini(&r);

    base_buf_reset(&b);
    q.event_id = "ev-9";
    q.chosen = "b";
    q.pmf = pmf;
    MUST_OK(proto_encode_log(&b, &q));
    MUST_OK(proto_request_decode(b.data, b.len, &r, &err));
    TST_EQ(r.op, PROTO_OP_LOG);
    TST_STREQ(r.event_id, "ev-9");
    TST_STREQ(r.chosen, "b");
    TST_TRUE(r.pmf != NULL && memcmp(r.pmf, pmf, sizeof(pmf)) == 0);
    proto_request_fini(&r);

    base_buf_reset(&b);
    MUST_OK(proto_encode_feedback(&b, &fb));
    MUST_OK(proto_request_decode(b.data, b.len, &r, &err));
    TST_EQ(r.op, PROTO_OP_FEEDBACK);
    TST_STREQ(r.event_id, "");
    TST_STREQ(r.conversation_id, "conv-1");
    TST_STREQ(r.signal, "csat");
    TST_TRUE(r.value == 4.0);
    TST_STREQ(r.outcome_id, "o-1");
    TST_STREQ(r.supersedes, "o-0");
    TST_STREQ(r.user_id, "u-7");
    TST_EQ(r.ts_ms, 1700000000123LL);

    base_buf_reset(&b);
    MUST_OK(proto_encode_activate(&b, "faq", "ev-9"));
    MUST_OK(proto_request_decode(b.data, b.len, &r, &err));
    TST_TRUE(r.op == PROTO_OP_ACTIVATE && strcmp(r.event_id, "ev-9") == 0);
    base_buf_reset(&b);
    MUST_OK(proto_encode_stats(&b, NULL));
    MUST_OK(proto_request_decode(b.data, b.len, &r, &err));
    TST_TRUE(r.op == PROTO_OP_STATS && r.policy[0] == '\0');
    base_buf_reset(&b);
    MUST_OK(proto_encode_stats(&b, "faq"));
    MUST_OK(proto_request_decode(b.data, b.len, &r, &err));
    TST_TRUE(r.op == PROTO_OP_STATS && strcmp(r.policy, "faq") == 0);
    base_buf_reset(&b);
    MUST_OK(proto_encode_health(&b));
    MUST_OK(proto_request_decode(b.data, b.len, &r, &err));
    TST_EQ(r.op, PROTO_OP_HEALTH);
    base_buf_reset(&b);
    MUST_OK(proto_encode_clock(&b, -1, 250));
    MUST_OK(proto_request_decode(b.data, b.len, &r, &err));
    TST_TRUE(r.op == PROTO_OP_CLOCK && r.clock_set_ms == -1 && r.clock_advance_ms == 250);
    base_buf_reset(&b);
    MUST_OK(proto_encode_clock(&b, 0, -1));
    MUST_OK(proto_request_decode(b.data, b.len, &r, &err));
    TST_TRUE(r.op == PROTO_OP_CLOCK && r.clock_set_ms == 0 && r.clock_advance_ms == -1);
    base_buf_reset(&b);
    MUST_OK(proto_encode_explain(&b, "faq", "ev-9"));
    MUST_OK(proto_request_decode(b.data, b.len, &r, &err));
    TST_TRUE(r.op == PROTO_OP_EXPLAIN && strcmp(r.policy, "faq") == 0 &&
             strcmp(r.event_id, "ev-9") == 0);
    base_buf_reset(&b);
    MUST_OK(proto_request_encode(&b, &r));
    proto_request r2;
    MUST_OK(proto_request_decode(b.data, b.len, &r2, &err));
    TST_TRUE(r2.op == PROTO_OP_EXPLAIN && strcmp(r2.event_id, "ev-9") == 0);
    base_buf_fini(&b);
}

/* explain needs a policy and a non-empty event_id: bad_request otherwise. */
static void explain_request_without_event_id_is_a_bad_request(void)
{
    base_buf b;
    proto_request r;
    proto_error err;
    base_buf_init(&b, 4096);
    TST_EQ(proto_encode_explain(&b, "faq", ""), BASE_EINVAL);
    TST_EQ(proto_encode_explain(&b, NULL, "ev"), BASE_EINVAL);
    TST_EQ(b.len, 0);
    /* {"v":1,"op":"explain","policy":"faq"}, then with "event_id":"" */
    static const uint8_t no_ev[] = {0x83, 0xa1, 'v', 0x01, 0xa2, 'o', 'p',  0xa7, 'e',
                                    'x',  'p',  'l', 'a',  'i',  'n', 0xa6, 'p',  'o',
                                    'l',  'i',  'c', 'y',  0xa3, 'f', 'a',  'q'};
    TST_EQ(proto_request_decode(no_ev, sizeof(no_ev), &r, &err), BASE_EINVAL);
    TST_EQ(err.code, PROTO_E_BAD_REQUEST);
    TST_STREQ(err.message, "missing field 'event_id'");
    uint8_t empty[sizeof(no_ev) + 10];
    memcpy(empty, no_ev, sizeof(no_ev));
    empty[0] = 0x84;
    memcpy(empty + sizeof(no_ev),
           "\xa8"
           "event_id"
           "\xa0",
           10);
    TST_EQ(proto_request_decode(empty, sizeof(empty), &r, &err), BASE_EINVAL);
    TST_EQ(err.code, PROTO_E_BAD_REQUEST);
    TST_STREQ(err.message, "field 'event_id' must not be empty");
    base_buf_fini(&b);
}

static void encoders_refuse_bad_arguments_and_leave_the_buffer(void)
{
    static const float emb[1] = {1.0f};
    static const char *const ids[2] = {"a", NULL};
    static const float logits[2] = {0.0f, 0.0f};
    proto_decide_req q = {.policy = "p",
                          .embedding = emb,
                          .dim = 1,
                          .n_cand = 2,
                          .cand_ids = ids,
                          .base_logits = logits};
    proto_feedback_req fb = {.policy = "p", .signal = "s", .value = 1.0};
    base_buf b, small;

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    MUST_OK(base_buf_append(&b, "xy", 2));
    TST_EQ(proto_encode_decide(&b, &q), BASE_EINVAL); /* a NULL id */
    q.n_cand = 0;
    TST_EQ(proto_encode_decide(&b, &q), BASE_EINVAL);
    q.n_cand = BASE_CAND_MAX + 1;
    TST_EQ(proto_encode_decide(&b, &q), BASE_EINVAL);
    q.n_cand = 1;
    q.dim = BASE_DIM_MAX + 1;
    TST_EQ(proto_encode_decide(&b, &q), BASE_EINVAL);
    q.dim = 1;
    TST_EQ(proto_encode_log(&b, &q), BASE_EINVAL);       /* no event_id, chosen or pmf */
    TST_EQ(proto_encode_feedback(&b, &fb), BASE_EINVAL); /* neither event_id nor conversation */
    fb.event_id = "e";
    fb.ts_ms = -1;
    TST_EQ(proto_encode_feedback(&b, &fb), BASE_EINVAL);
    TST_EQ(proto_encode_activate(&b, "p", ""), BASE_EINVAL);
    TST_EQ(proto_encode_clock(&b, -1, -1), BASE_EINVAL);
    TST_EQ(b.len, 2);

    base_buf_init(&small, 20);
    MUST_OK(base_buf_append(&small, "xy", 2));
    TST_EQ(proto_encode_decide(&small, &q), BASE_ELIMIT);
    TST_EQ(small.len, 2);
    base_buf_fini(&small);
    base_buf_fini(&b);
}

/* decode(encode(decode(x))) == decode(x) for a request of every op. */
static void request_encode_gives_back_what_was_decoded(void)
{
    static const char *const jsons[] = {
        "{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"event_id\":\"e\",\"conversation_id\":"
        "\"c\",\"turn\":2,\"deferred\":true,\"context\":{\"embedding\":[1,2.5,-3]},"
        "\"candidates\":[{\"id\":\"a\",\"base_logit\":0.1},{\"id\":\"b\",\"base_logit\":-7}]}",
        "{\"v\":1,\"op\":\"log\",\"policy\":\"p\",\"event_id\":\"e\",\"context\":{\"embedding\":"
        "[1]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0},{\"id\":\"b\",\"base_logit\":1}],"
        "\"chosen\":\"b\",\"pmf\":[0.3,0.7]}",
        "{\"v\":1,\"op\":\"feedback\",\"policy\":\"p\",\"event_id\":\"e\",\"signal\":\"s\","
        "\"value\":-0.5,\"user_id\":\"u\",\"ts\":5}",
        "{\"v\":1,\"op\":\"activate\",\"policy\":\"p\",\"event_id\":\"e\"}",
        "{\"v\":1,\"op\":\"stats\",\"policy\":\"p\"}",
        "{\"v\":1,\"op\":\"health\"}",
        "{\"v\":1,\"op\":\"clock\",\"set_ms\":17}",
    };
    base_buf b, again;

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    base_buf_init(&again, PROTO_MAX_MSG_BYTES);
    for (size_t i = 0; i < sizeof(jsons) / sizeof(jsons[0]); i++) {
        proto_request r, back;
        proto_error err;
        base_buf_reset(&b);
        base_buf_reset(&again);
        MUST_OK(proto_json_to_msgpack(jsons[i], &b, NULL, 0));
        MUST_OK(proto_request_decode(b.data, b.len, &r, &err));
        MUST_OK(proto_request_encode(&again, &r));
        MUST_OK(proto_request_decode(again.data, again.len, &back, &err));
        TST_EQ(back.op, r.op);
        TST_TRUE(memcmp(back.policy, r.policy, sizeof(r.policy)) == 0);
        TST_TRUE(memcmp(back.event_id, r.event_id, sizeof(r.event_id)) == 0);
        TST_TRUE(back.turn == r.turn && back.deferred == r.deferred && back.dim == r.dim);
        TST_TRUE(r.dim == 0 || memcmp(back.embedding, r.embedding, r.dim * sizeof(float)) == 0);
        TST_TRUE(back.n_cand == r.n_cand &&
                 (r.n_cand == 0 || memcmp(back.cand, r.cand, r.n_cand * sizeof(*r.cand)) == 0));
        TST_TRUE((r.pmf == NULL) == (back.pmf == NULL));
        TST_TRUE(back.value == r.value && back.ts_ms == r.ts_ms);
        TST_TRUE(memcmp(back.user_id, r.user_id, sizeof(r.user_id)) == 0);
        TST_TRUE(back.clock_set_ms == r.clock_set_ms &&
                 back.clock_advance_ms == r.clock_advance_ms);
        proto_request_fini(&back);
        proto_request_fini(&r);
    }
    base_buf_fini(&again);
    base_buf_fini(&b);
}

int main(void)
{
    encode_decide_writes_the_documented_bytes();
    encoders_round_trip_through_the_decoder();
    encoders_refuse_bad_arguments_and_leave_the_buffer();
    request_encode_gives_back_what_was_decoded();
    explain_request_without_event_id_is_a_bad_request();
    return tst_done();
}
