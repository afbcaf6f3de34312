/*
 * Unit tests for proto/reply.c and proto/errors.c: every reply the daemon sends, encoded
 * and decoded again, the decide reply and an error reply byte for byte as docs/protocol.md
 * shows them, error messages cut on a character boundary, and error code names.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/utf8.h"
#include "proto/errors.h"
#include "proto/json.h"
#include "proto/mp.h"
#include "proto/reply.h"
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

static void decide_reply_round_trips_exactly(void)
{
    static const float pmf[3] = {0.1f, 0.7f, 0.2f};
    base_buf b;
    proto_reply r;

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    MUST_OK(proto_reply_decide(&b, "ev-1", "b", 1, pmf, 3, 42, "main"));
    MUST_OK(proto_reply_decode(b.data, b.len, &r));
    TST_TRUE(r.ok);
    TST_STREQ(r.event_id, "ev-1");
    TST_STREQ(r.chosen, "b");
    TST_EQ(r.chosen_index, 1);
    TST_EQ(r.n_pmf, 3);
    TST_TRUE(memcmp(r.pmf, pmf, sizeof(pmf)) == 0);
    TST_EQ(r.model_version, 42);
    TST_TRUE(!r.duplicate);

    base_buf_reset(&b);
    MUST_OK(proto_reply_ok(&b));
    MUST_OK(proto_reply_decode(b.data, b.len, &r));
    TST_TRUE(r.ok && r.n_pmf == 0);

    base_buf_reset(&b);
    MUST_OK(proto_json_to_msgpack("{\"ok\":true,\"duplicate\":true,\"later\":[1]}", &b, NULL, 0));
    MUST_OK(proto_reply_decode(b.data, b.len, &r));
    TST_TRUE(r.ok && r.duplicate);
    base_buf_fini(&b);
}

/* An error reply as another server might send it: @msg's @len bytes as they are. */
static base_err raw_error_reply(base_buf *b, const char *code, const char *msg, size_t len)
{
    proto_writer w;
    base_buf_reset(b);
    proto_writer_init(&w, b);
    proto_w_map(&w, 2);
    proto_w_str(&w, "ok");
    proto_w_bool(&w, false);
    proto_w_str(&w, "error");
    proto_w_map(&w, 2);
    proto_w_str(&w, "code");
    proto_w_str(&w, code);
    proto_w_str(&w, "message");
    proto_w_strn(&w, msg, len);
    return proto_writer_finish(&w);
}

static void error_reply_round_trips_code_and_message(void)
{
    base_buf b;
    proto_reply r;

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    MUST_OK(proto_reply_error(&b, PROTO_E_BAD_DIMENSION, "embedding has 3 entries, want 8"));
    MUST_OK(proto_reply_decode(b.data, b.len, &r));
    TST_TRUE(!r.ok);
    TST_EQ(r.error.code, PROTO_E_BAD_DIMENSION);
    TST_STREQ(r.error.message, "embedding has 3 entries, want 8");

    base_buf_reset(&b);
    MUST_OK(proto_json_to_msgpack("{\"ok\":false,\"error\":{\"code\":\"from_the_future\","
                                  "\"message\":\"kept\"}}",
                                  &b, NULL, 0));
    MUST_OK(proto_reply_decode(b.data, b.len, &r));
    TST_EQ(r.error.code, PROTO_E_INTERNAL);
    TST_STREQ(r.error.message, "kept");

    /* "none" is no error code: an error reply naming it is read as internal, never as 0. */
    base_buf_reset(&b);
    MUST_OK(proto_json_to_msgpack("{\"ok\":false,\"error\":{\"code\":\"none\"}}", &b, NULL, 0));
    MUST_OK(proto_reply_decode(b.data, b.len, &r));
    TST_TRUE(!r.ok);
    TST_EQ(r.error.code, PROTO_E_INTERNAL);

    base_buf_reset(&b);
    MUST_OK(proto_json_to_msgpack("{\"ok\":false}", &b, NULL, 0));
    TST_EQ(proto_reply_decode(b.data, b.len, &r), BASE_EPROTO);
    base_buf_reset(&b);
    MUST_OK(proto_json_to_msgpack("{\"ok\":true,\"pmf\":\"x\"}", &b, NULL, 0));
    TST_EQ(proto_reply_decode(b.data, b.len, &r), BASE_EPROTO);
    TST_EQ(proto_reply_decode((const uint8_t *)"\xdd\xff\xff\xff\xff", 5, &r), BASE_EPROTO);

    /* From a peer that is not rlfeedd: a message ends at a NUL or at what is not UTF-8. */
    static const char *const raw[] = {"ab\xff\xfe"
                                      "cd",
                                      "ab\0cd", "ab\xe2\x82"};
    static const size_t raw_len[] = {6, 5, 4};
    for (size_t i = 0; i < 3; i++) {
        MUST_OK(raw_error_reply(&b, "internal", raw[i], raw_len[i]));
        MUST_OK(proto_reply_decode(b.data, b.len, &r));
        TST_STREQ(r.error.message, "ab");
    }
    base_buf_fini(&b);
}

/* Decode the error reply in @b; its message must be valid UTF-8 and equal @want. */
static void expect_reply_message(const base_buf *b, const char *want)
{
    proto_reply r;
    char *json = NULL;

    MUST_OK(proto_reply_decode(b->data, b->len, &r));
    TST_TRUE(!r.ok);
    TST_STREQ(r.error.message, want);
    TST_TRUE(base_utf8_valid(r.error.message, strlen(r.error.message)));
    TST_OK(proto_json_from_msgpack(b->data, b->len, &json)); /* refuses text that is not UTF-8 */
    base_free(json);
}

static void error_reply_cuts_messages_on_a_character_boundary(void)
{
    char euros[64 * 3 + 1] = "";
    char signal[1 + 21 * 3 + 1] = "a";
    char msg[PROTO_ERRMSG_MAX];
    char want[PROTO_ERRMSG_MAX];
    base_buf b;

    for (int i = 0; i < 64; i++) {
        memcpy(euros + 3 * i, "\xe2\x82\xac", 4);
    }
    memcpy(signal + 1, euros, 21 * 3);
    signal[1 + 21 * 3] = '\0';
    base_buf_init(&b, PROTO_MAX_MSG_BYTES);

    /* The engine's unknown_signal message: "%.48s" cuts the 16th euro sign after 2 bytes. */
    (void)snprintf(msg, sizeof(msg), "signal \"%.48s\" is not in the reward spec of policy %.48s",
                   signal, "intents");
    (void)snprintf(want, sizeof(want),
                   "signal \"a%.45s\" is not in the reward spec of policy "
                   "intents",
                   euros);
    MUST_OK(proto_reply_error(&b, PROTO_E_UNKNOWN_SIGNAL, msg));
    expect_reply_message(&b, want);

    /* snprintf's size limit cuts the 53rd euro sign: 1 + 52 * 3 = 157 of 159 bytes kept. */
    base_buf_reset(&b);
    TST_TRUE(snprintf(msg, sizeof(msg), "a%s", euros) >= (int)sizeof(msg)); /* it cuts */
    memcpy(want, msg, 1 + 52 * 3);
    want[1 + 52 * 3] = '\0';
    MUST_OK(proto_reply_error(&b, PROTO_E_UNKNOWN_SIGNAL, msg));
    expect_reply_message(&b, want);

    /* Whole characters are kept; a longer message is cut to PROTO_ERRMSG_MAX - 1 bytes. */
    base_buf_reset(&b);
    MUST_OK(proto_reply_error(&b, PROTO_E_UNKNOWN_SIGNAL, signal));
    expect_reply_message(&b, signal);
    char longer[1 + 64 * 3 + 1] = "a";
    memcpy(longer + 1, euros, sizeof(euros));
    base_buf_reset(&b);
    MUST_OK(proto_reply_error(&b, PROTO_E_UNKNOWN_SIGNAL, longer));
    expect_reply_message(&b, want);
    char *json = NULL;
    char want_json[2 * PROTO_ERRMSG_MAX];
    (void)snprintf(want_json, sizeof(want_json),
                   "{\"ok\":false,\"error\":{\"code\":\"unknown_signal\",\"message\":\"%s\"}}",
                   want);
    MUST_OK(proto_json_from_msgpack(b.data, b.len, &json)); /* the bytes sent, not a client's cut */
    TST_STREQ(json, want_json);
    base_free(json);

    /* A client reading a longer message from another server cuts it the same way. */
    MUST_OK(raw_error_reply(&b, "unknown_signal", longer, strlen(longer)));
    proto_reply r;
    MUST_OK(proto_reply_decode(b.data, b.len, &r));
    TST_STREQ(r.error.message, want);
    base_buf_fini(&b);
}

static void errcode_names_round_trip(void)
{
    for (int c = PROTO_E_NONE; c < PROTO_E_COUNT; c++) {
        proto_errcode back = PROTO_E_COUNT;
        bool found = false;
        proto_errcode_from_name(proto_errcode_name((proto_errcode)c), &back, &found);
        TST_TRUE(found);
        TST_EQ(back, c);
    }
    bool found = true;
    proto_errcode back = PROTO_E_NONE;
    proto_errcode_from_name("no_such_code", &back, &found);
    TST_TRUE(!found);
    TST_STREQ(proto_errcode_name(PROTO_E_BAD_VERSION), "unsupported_version");
    TST_STREQ(proto_errcode_name(PROTO_E_COUNT), "internal");
}

/* The decide reply and the error reply of docs/protocol.md sections 3 and 8. */
static void replies_write_the_documented_bytes(void)
{
    static const uint8_t decide[86] = {
        0x87, 0xa2, 0x6f, 0x6b, 0xc3, 0xa8, 0x65, 0x76, 0x65, 0x6e, 0x74, 0x5f, 0x69, 0x64, 0xa5,
        0x65, 0x76, 0x2d, 0x34, 0x32, 0xa6, 0x63, 0x68, 0x6f, 0x73, 0x65, 0x6e, 0xa5, 0x67, 0x72,
        0x65, 0x65, 0x74, 0xac, 0x63, 0x68, 0x6f, 0x73, 0x65, 0x6e, 0x5f, 0x69, 0x6e, 0x64, 0x65,
        0x78, 0x00, 0xa3, 0x70, 0x6d, 0x66, 0xc4, 0x08, 0x00, 0x00, 0x40, 0x3f, 0x00, 0x00, 0x80,
        0x3e, 0xad, 0x6d, 0x6f, 0x64, 0x65, 0x6c, 0x5f, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e,
        0x07, 0xa4, 0x73, 0x6c, 0x6f, 0x74, 0xa4, 0x6d, 0x61, 0x69, 0x6e,
    };
    static const char *const error_head = "\x82\xa2ok\xc2\xa5"
                                          "error\x82\xa4"
                                          "code\xad"
                                          "bad_dimension\xa7message\xd9\x35";
    static const char *const message = "context.embedding has 4 entries, policy 'faq' wants 8";
    static const float pmf[2] = {0.75f, 0.25f};
    base_buf b;

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    MUST_OK(proto_reply_decide(&b, "ev-42", "greet", 0, pmf, 2, 7, "main"));
    TST_EQ(b.len, sizeof(decide));
    TST_TRUE(b.len == sizeof(decide) && memcmp(b.data, decide, sizeof(decide)) == 0);
    base_buf_reset(&b);
    MUST_OK(proto_reply_error(&b, PROTO_E_BAD_DIMENSION, message));
    TST_EQ(b.len, 94);
    TST_TRUE(b.len == 94 && memcmp(b.data, error_head, 41) == 0 &&
             memcmp(b.data + 41, message, 53) == 0);
    base_buf_fini(&b);
}

static void status_health_clock_and_log_replies_round_trip(void)
{
    proto_reply *r = base_alloc(sizeof(*r));
    proto_health h = {.status = PROTO_HEALTH_DEGRADED, .redis = PROTO_REDIS_DOWN}, back;
    base_buf b;

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    MUST_OK(r != NULL ? BASE_OK : BASE_ENOMEM);
    MUST_OK(proto_reply_status(&b, PROTO_ST_LATE_CORRECTION));
    MUST_OK(proto_reply_decode(b.data, b.len, r));
    TST_TRUE(r->ok && !r->duplicate);
    TST_STREQ(r->status, "late_correction");

    base_buf_reset(&b);
    MUST_OK(proto_reply_duplicate(&b));
    MUST_OK(proto_reply_decode(b.data, b.len, r));
    TST_TRUE(r->ok && r->duplicate);
    TST_STREQ(r->status, "duplicate");

    base_buf_reset(&b);
    MUST_OK(proto_reply_health(&b, &h));
    MUST_OK(proto_reply_decode(b.data, b.len, r));
    TST_STREQ(r->status, "degraded");
    TST_STREQ(r->redis, "down");
    TST_TRUE(proto_health_from_reply(r, &back));
    TST_TRUE(back.status == PROTO_HEALTH_DEGRADED && back.redis == PROTO_REDIS_DOWN);
    memcpy(r->redis, "sideways", 9);
    TST_TRUE(!proto_health_from_reply(r, &back));

    /* Raised alarms are listed (at most PROTO_HEALTH_ALARMS_MAX); none: no key at all. */
    char *json = NULL;
    h.n_alarms = PROTO_HEALTH_ALARMS_MAX + 3;
    for (int i = 0; i < PROTO_HEALTH_ALARMS_MAX; i++) {
        snprintf(h.alarms[i], sizeof(h.alarms[i]), "p%d: reward down", i);
    }
    base_buf_reset(&b);
    MUST_OK(proto_reply_health(&b, &h));
    MUST_OK(proto_json_from_msgpack(b.data, b.len, &json));
    TST_TRUE(strstr(json, "\"alarms\":[\"p0: reward down\",") != NULL);
    TST_TRUE(strstr(json, "\"p7: reward down\"]}") != NULL);
    base_free(json);
    MUST_OK(proto_reply_decode(b.data, b.len, r));
    TST_STREQ(r->status, "degraded");
    h.n_alarms = 0;

    base_buf_reset(&b);
    MUST_OK(proto_reply_clock(&b, 1700000180000LL));
    MUST_OK(proto_reply_decode(b.data, b.len, r));
    TST_TRUE(r->ok && r->now_ms == 1700000180000LL);

    base_buf_reset(&b);
    MUST_OK(proto_reply_logged(&b, "fe-9"));
    MUST_OK(proto_reply_decode(b.data, b.len, r));
    TST_TRUE(r->ok);
    TST_STREQ(r->event_id, "fe-9");

    TST_STREQ(proto_status_name(PROTO_ST_COUNT), "unknown");
    TST_STREQ(proto_health_status_name(PROTO_HEALTH_STARTING), "starting");
    TST_STREQ(proto_redis_state_name(PROTO_REDIS_UNKNOWN), "unknown");
    base_buf_fini(&b);
    base_free(r);
}

int main(void)
{
    decide_reply_round_trips_exactly();
    error_reply_round_trips_code_and_message();
    error_reply_cuts_messages_on_a_character_boundary();
    errcode_names_round_trip();
    replies_write_the_documented_bytes();
    status_health_clock_and_log_replies_round_trip();
    return tst_done();
}
