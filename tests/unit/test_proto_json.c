/*
 * Unit tests for proto/json.c, the JSON bridge: JSON request bodies that decode as
 * requests, refusals (bad JSON, repeated keys, nesting), and replies printed as JSON that
 * parse back to the same fields (floats exactly: the fewest digits that read back).
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "proto/errors.h"
#include "proto/json.h"
#include "proto/mp.h"
#include "proto/reply.h"
#include "proto/request.h"
#include "tap.h"

#define MUST_OK(expr)                                                                              \
    do {                                                                                           \
        base_err must_e_ = (expr);                                                                 \
        TST_OK(must_e_);                                                                           \
        if (must_e_ != BASE_OK) {                                                                  \
            printf("Bail out! %s failed\n", #expr);                                                \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static void from_json_request_decodes(void)
{
    base_buf b;
    proto_request r;
    proto_error err;
    char why[128] = "";

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    MUST_OK(proto_json_to_msgpack(
        "{\"v\":1,\"op\":\"decide\",\"policy\":\"faq\",\"context\":{\"embedding\":[0.5,-1,2]},"
        "\"candidates\":[{\"id\":\"greet\",\"base_logit\":1.5},{\"id\":\"bye\","
        "\"base_logit\":-0.25}]}",
        &b, why, sizeof(why)));
    MUST_OK(proto_request_decode(b.data, b.len, &r, &err));
    TST_EQ(r.op, PROTO_OP_DECIDE);
    TST_STREQ(r.event_id, "");
    TST_EQ(r.dim, 3);
    TST_TRUE(r.embedding[0] == 0.5f && r.embedding[1] == -1.0f && r.embedding[2] == 2.0f);
    TST_EQ(r.n_cand, 2);
    TST_STREQ(r.cand[1].id, "bye");
    TST_TRUE(r.cand[1].base_logit == -0.25f);
    proto_request_fini(&r);

    size_t before = b.len;
    TST_EQ(proto_json_to_msgpack("{\"v\":1,", &b, why, sizeof(why)), BASE_EINVAL);
    TST_TRUE(why[0] != '\0');
    TST_EQ(proto_json_to_msgpack("{\"a\":1,\"a\":2}", &b, why, sizeof(why)), BASE_EINVAL);
    char deep[2 * (PROTO_MAX_DEPTH + 1) + 2];
    memset(deep, '[', PROTO_MAX_DEPTH + 1);
    deep[PROTO_MAX_DEPTH + 1] = '1';
    memset(deep + PROTO_MAX_DEPTH + 2, ']', PROTO_MAX_DEPTH + 1);
    deep[sizeof(deep) - 1] = '\0';
    TST_EQ(proto_json_to_msgpack(deep, &b, why, sizeof(why)), BASE_ELIMIT);
    TST_TRUE(strstr(why, "deeper") != NULL);
    deep[0] = ' '; /* exactly at the cap: accepted */
    deep[sizeof(deep) - 2] = ' ';
    MUST_OK(proto_json_to_msgpack(deep, &b, why, sizeof(why)));
    b.len = before;
    TST_EQ(b.len, before);
    base_buf_fini(&b);
}

static void to_json_of_reply_parses_back(void)
{
    static const float pmf[2] = {0.1f, 0.9f};
    base_buf b, back;
    proto_reply r;
    char *txt = NULL;

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    base_buf_init(&back, PROTO_MAX_MSG_BYTES);
    MUST_OK(proto_reply_decide(&b, "ev-\"7\"", "a\n", 0, pmf, 2, 9, "s"));
    MUST_OK(proto_json_from_msgpack(b.data, b.len, &txt));
    TST_STREQ(txt, "{\"ok\":true,\"event_id\":\"ev-\\\"7\\\"\",\"chosen\":\"a\\u000a\","
                   "\"chosen_index\":0,\"pmf\":[0.1,0.9],\"model_version\":9,\"slot\":\"s\"}");
    /* Parse it back (jansson, inside from_json) and compare fields. */
    MUST_OK(proto_json_to_msgpack(txt, &back, NULL, 0));
    MUST_OK(proto_reply_decode(back.data, back.len, &r));
    TST_TRUE(r.ok);
    TST_STREQ(r.event_id, "ev-\"7\"");
    TST_STREQ(r.chosen, "a\n");
    TST_EQ(r.n_pmf, 2);
    TST_TRUE(r.pmf[0] == pmf[0] && r.pmf[1] == pmf[1]); /* shortest digits read back exactly */
    TST_EQ(r.model_version, 9);
    base_free(txt);
    txt = NULL;

    base_buf_reset(&b);
    MUST_OK(proto_reply_error(&b, PROTO_E_UNKNOWN_POLICY, "no policy 'x'"));
    MUST_OK(proto_json_from_msgpack(b.data, b.len, &txt));
    TST_STREQ(txt, "{\"ok\":false,\"error\":{\"code\":\"unknown_policy\",\"message\":"
                   "\"no policy 'x'\"}}");
    base_free(txt);
    txt = NULL;

    /* Reals stay reals, odd bins print as hex, non-string keys are refused. */
    base_buf_reset(&b);
    proto_writer w;
    proto_writer_init(&w, &b);
    proto_w_array(&w, 4);
    proto_w_double(&w, 2.0);
    proto_w_double(&w, NAN);
    proto_w_int(&w, -5);
    MUST_OK(proto_writer_finish(&w));
    MUST_OK(base_buf_append(&b, "\xc4\x03\x01\xab\xff", 5));
    MUST_OK(proto_json_from_msgpack(b.data, b.len, &txt));
    TST_STREQ(txt, "[2.0,null,-5,\"01abff\"]");
    base_free(txt);
    txt = NULL;
    TST_EQ(proto_json_from_msgpack((const uint8_t *)"\x81\x01\x02", 3, &txt), BASE_EPROTO);
    TST_EQ(proto_json_from_msgpack((const uint8_t *)"\xa2\xc3\x28", 3, &txt), BASE_EPROTO);
    TST_TRUE(txt == NULL);
    base_buf_fini(&back);
    base_buf_fini(&b);
}

int main(void)
{
    from_json_request_decodes();
    to_json_of_reply_parses_back();
    return tst_done();
}
