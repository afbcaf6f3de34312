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
#include "proto/policy.h"
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

/* Decode the HTTP API body @json for the path op @op; the decoder's error code. */
static proto_errcode http_body(const char *json, const char *op, proto_request *out)
{
    base_buf b;
    proto_error err;
    proto_errcode code = PROTO_E_NONE;
    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    memset(&err, 0, sizeof(err));
    if (proto_json_request(json, strlen(json), op, &b, &err) != BASE_OK) {
        code = err.code;
        TST_EQ(b.len, 0); /* nothing appended on failure */
    } else if (proto_request_decode(b.data, b.len, out, &err) != BASE_OK) {
        code = err.code;
    }
    base_buf_fini(&b);
    return code;
}

static void http_body_takes_the_path_op(void)
{
    proto_request r;
    /* "v" defaults to 1, "op" to the path's. */
    TST_EQ(http_body("{\"policy\":\"faq\",\"event_id\":\"e\"}", "activate", &r), PROTO_E_NONE);
    TST_EQ(r.op, PROTO_OP_ACTIVATE);
    TST_STREQ(r.event_id, "e");
    proto_request_fini(&r);
    TST_EQ(http_body("{\"v\":1,\"op\":\"activate\",\"policy\":\"faq\",\"event_id\":\"e\"}",
                     "activate", &r),
           PROTO_E_NONE);
    proto_request_fini(&r);
    /* An op that is not the path's, or not a string, is bad_request; a wrong v stays. */
    TST_EQ(http_body("{\"op\":\"decide\"}", "feedback", &r), PROTO_E_BAD_REQUEST);
    TST_EQ(http_body("{\"op\":7}", "feedback", &r), PROTO_E_BAD_REQUEST);
    TST_EQ(http_body("{\"op\":\"explode\"}", "feedback", &r), PROTO_E_BAD_REQUEST);
    TST_EQ(http_body("{\"v\":2,\"policy\":\"faq\"}", "stats", &r), PROTO_E_BAD_VERSION);
    /* Not JSON: bad_json; JSON but not an object: the decoder's bad_request. */
    TST_EQ(http_body("{\"policy\":", "stats", &r), PROTO_E_BAD_JSON);
    TST_EQ(http_body("", "stats", &r), PROTO_E_BAD_JSON);
    {
        base_buf b;
        proto_error err;
        base_buf_init(&b, 4096);
        TST_EQ(proto_json_request(NULL, 0, "stats", &b, &err), BASE_EPROTO);
        TST_EQ(err.code, PROTO_E_BAD_JSON);
        TST_TRUE(strstr(err.message, "end of file") != NULL);
        base_buf_fini(&b);
    }
    TST_EQ(http_body("{\"a\":1,\"a\":2}", "stats", &r), PROTO_E_BAD_JSON);
    TST_EQ(http_body("[1,2,3]", "stats", &r), PROTO_E_BAD_REQUEST);
    TST_EQ(http_body("42", "stats", &r), PROTO_E_BAD_REQUEST);
    /* Past the caps before jansson builds anything: nesting, and values. */
    char deep[2 * PROTO_MAX_DEPTH + 8];
    memset(deep, '[', PROTO_MAX_DEPTH + 1);
    memset(deep + PROTO_MAX_DEPTH + 1, ']', PROTO_MAX_DEPTH + 1);
    deep[2 * PROTO_MAX_DEPTH + 2] = '\0';
    TST_EQ(http_body(deep, "stats", &r), PROTO_E_TOO_LARGE);
    size_t n = 2 * (size_t)PROTO_MAX_OBJECTS + 8;
    char *many = base_alloc(n + 1);
    MUST_OK(many != NULL ? BASE_OK : BASE_ENOMEM);
    many[0] = '[';
    for (size_t i = 1; i < n - 1; i += 2) {
        many[i] = '0';
        many[i + 1] = ',';
    }
    many[n - 2] = '0';
    many[n - 1] = ']';
    many[n] = '\0';
    TST_EQ(http_body(many, "stats", &r), PROTO_E_TOO_LARGE);
    base_free(many);
    /* Quotes and brackets inside strings are not structure. */
    TST_EQ(http_body("{\"policy\":\"[[[[[[[[[[[[[[[[[[[\\\"\"}", "stats", &r), PROTO_E_NONE);
    proto_request_fini(&r);
}

/*
 * A body of @n empty arrays under one key, with "v" and "op" given: 7 values (the object, 3
 * keys, 1, "stats" and the array holding them) plus @n, each "[]" one value as in msgpack.
 */
static char *empty_arrays(size_t n)
{
    static const char head[] = "{\"v\":1,\"op\":\"stats\",\"x\":[";
    char *s = base_alloc(sizeof(head) + 3 * n + 2);
    if (s == NULL) {
        printf("Bail out! out of memory\n");
        exit(1);
    }
    memcpy(s, head, sizeof(head) - 1);
    size_t k = sizeof(head) - 1;
    for (size_t i = 0; i < n; i++) {
        memcpy(s + k, i > 0 ? ",[]" : "[]", i > 0 ? 3 : 2);
        k += i > 0 ? 3 : 2;
    }
    memcpy(s + k, "]}", 3);
    return s;
}

/* The value cap counts as the msgpack one does: "[]" is one value, not two. */
static void http_body_counts_empty_containers_once(void)
{
    proto_request r;
    char *body = empty_arrays(40000);
    TST_EQ(http_body(body, "stats", &r), PROTO_E_NONE);
    proto_request_fini(&r);
    base_free(body);
    body = empty_arrays(PROTO_MAX_OBJECTS - 7); /* exactly PROTO_MAX_OBJECTS values */
    TST_EQ(http_body(body, "stats", &r), PROTO_E_NONE);
    proto_request_fini(&r);
    base_free(body);
    body = empty_arrays(PROTO_MAX_OBJECTS - 6);
    TST_EQ(http_body(body, "stats", &r), PROTO_E_TOO_LARGE);
    base_free(body);
    /* Whitespace between the brackets changes nothing; so does an empty object. */
    TST_EQ(http_body("{\"x\":[ \n], \"y\":{\t}, \"z\":[ {} , [ ] ]}", "stats", &r), PROTO_E_NONE);
    proto_request_fini(&r);
}

/*
 * JSON numbers jansson cannot hold are refused as a field the decoder refuses would be
 * (bad_request), not as text that is not JSON (bad_json): protocol.md sections 5 and 11.
 */
static void http_body_number_overflow_is_bad_request(void)
{
    static const char *const bodies[] = {
        "{\"policy\":\"faq\",\"event_id\":\"e\",\"signal\":\"s\","
        "\"ts\":9223372036854775808}",
        "{\"policy\":\"faq\",\"event_id\":\"e\",\"signal\":\"s\","
        "\"ts\":-9223372036854775809}",
        "{\"policy\":\"faq\",\"event_id\":\"e\",\"signal\":\"s\",\"value\":1e400}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        base_buf b;
        proto_error err;
        base_buf_init(&b, 4096);
        memset(&err, 0, sizeof(err));
        TST_EQ(proto_json_request(bodies[i], strlen(bodies[i]), "feedback", &b, &err), BASE_EINVAL);
        TST_STREQ(proto_errcode_name(err.code), proto_errcode_name(PROTO_E_BAD_REQUEST));
        TST_TRUE(strstr(err.message, "out of range") != NULL);
        TST_EQ(b.len, 0);
        base_buf_fini(&b);
    }
    /* The largest integer jansson holds reaches the decoder, which refuses ts >= 2^63 too. */
    proto_request r;
    TST_EQ(http_body("{\"policy\":\"faq\",\"event_id\":\"e\",\"signal\":\"s\","
                     "\"ts\":9223372036854775807}",
                     "feedback", &r),
           PROTO_E_NONE);
    proto_request_fini(&r);
}

/*
 * "\u0000" is valid JSON: a string holding it reaches the request decoder, which refuses a NUL
 * byte in a string field as it does over msgpack (bad_request, naming the field), not as
 * text it cannot read (bad_json). A key holding one is still bad_json (jansson's rule).
 */
static void http_body_nul_is_a_field_error(void)
{
    proto_request r;
    TST_EQ(http_body("{\"policy\":\"faq\",\"event_id\":\"e\",\"signal\":\"s\\u0000t\"}", "feedback",
                     &r),
           PROTO_E_BAD_REQUEST);
    TST_EQ(
        http_body("{\"policy\":\"faq\",\"event_id\":\"e\",\"sig\\u0000\":\"s\"}", "feedback", &r),
        PROTO_E_BAD_JSON);
}

static void reply_code_and_status(void)
{
    base_buf b;
    char *txt = NULL;
    size_t n = 0;
    proto_errcode code = PROTO_E_COUNT;
    base_buf_init(&b, 4096);
    MUST_OK(proto_reply_error(&b, PROTO_E_UNKNOWN_EVENT, "no such event"));
    MUST_OK(proto_json_from_reply(b.data, b.len, &txt, &n, &code));
    TST_EQ(code, PROTO_E_UNKNOWN_EVENT);
    TST_EQ(n, strlen(txt));
    TST_STREQ(txt, "{\"ok\":false,\"error\":{\"code\":\"unknown_event\","
                   "\"message\":\"no such event\"}}");
    base_free(txt);
    base_buf_reset(&b);
    MUST_OK(proto_reply_status(&b, PROTO_ST_MATCHED));
    MUST_OK(proto_json_from_reply(b.data, b.len, &txt, &n, &code));
    TST_EQ(code, PROTO_E_NONE);
    base_free(txt);
    /* A code this version does not know is internal, as for clients. */
    base_buf_reset(&b);
    MUST_OK(proto_json_to_msgpack("{\"ok\":false,\"error\":{\"code\":\"from_the_future\"}}", &b,
                                  NULL, 0));
    MUST_OK(proto_json_from_reply(b.data, b.len, &txt, &n, &code));
    TST_EQ(code, PROTO_E_INTERNAL);
    base_free(txt);
    base_buf_fini(&b);

    /* Every code has a deliberate status (docs/protocol.md section 11). */
    static const int want[PROTO_E_COUNT] = {
        [PROTO_E_NONE] = 200,           [PROTO_E_BAD_MSGPACK] = 400,
        [PROTO_E_TOO_LARGE] = 400,      [PROTO_E_BAD_REQUEST] = 400,
        [PROTO_E_BAD_VERSION] = 400,    [PROTO_E_UNKNOWN_OP] = 400,
        [PROTO_E_UNKNOWN_POLICY] = 404, [PROTO_E_BAD_DIMENSION] = 400,
        [PROTO_E_NOT_FINITE] = 400,     [PROTO_E_TOO_MANY_CANDIDATES] = 400,
        [PROTO_E_UNKNOWN_ACTION] = 400, [PROTO_E_DUPLICATE_EVENT] = 409,
        [PROTO_E_UNKNOWN_EVENT] = 404,  [PROTO_E_UNKNOWN_SIGNAL] = 400,
        [PROTO_E_LIMIT] = 409,          [PROTO_E_UNAVAILABLE] = 503,
        [PROTO_E_SHUTTING_DOWN] = 503,  [PROTO_E_INTERNAL] = 500,
        [PROTO_E_OUT_OF_RANGE] = 400,   [PROTO_E_RATE_LIMITED] = 429,
        [PROTO_E_OP_NOT_ALLOWED] = 400, [PROTO_E_NOT_FOUND] = 404,
        [PROTO_E_BAD_JSON] = 400,       [PROTO_E_UNAUTHORIZED] = 401,
        [PROTO_E_FORBIDDEN] = 403,
    };
    for (int c = 0; c < PROTO_E_COUNT; c++) {
        TST_EQ(proto_json_http_status((proto_errcode)c), want[c]);
    }
    TST_EQ(proto_json_http_status(PROTO_E_COUNT), 500);
}

static void policy_replies_print(void)
{
    static const char actions[2][BASE_NAME_MAX + 1] = {"greet", "bye"};
    proto_policy_signal sig = {"resolved", "event", 1.0, 0.0, 1.0, 0.0, 1.0, "sum"};
    proto_policy_info p;
    memset(&p, 0, sizeof(p));
    snprintf(p.name, sizeof(p.name), "faq");
    snprintf(p.serve, sizeof(p.serve), "online");
    p.online_version = 12;
    p.production_version = 3;
    p.n_signals = 1;
    p.signals = &sig;
    p.credit = "last";
    p.n_actions = 2;
    p.actions = actions;
    p.learner = "ridge";
    p.explorer = "auto";
    p.config_serve = "online";
    base_buf b;
    char *txt = NULL;
    size_t n = 0;
    proto_errcode code = PROTO_E_COUNT;
    base_buf_init(&b, 1u << 16);
    MUST_OK(proto_reply_policies(&b, &p, 1));
    MUST_OK(proto_json_from_reply(b.data, b.len, &txt, &n, &code));
    TST_EQ(code, PROTO_E_NONE);
    TST_STREQ(txt, "{\"ok\":true,\"policies\":[{\"name\":\"faq\",\"serve\":\"online\","
                   "\"canary\":0.0,\"versions\":{\"online\":12,\"production\":3},"
                   "\"reward_version\":\"\"}]}");
    base_free(txt);
    base_buf_reset(&b);
    MUST_OK(proto_reply_policy(&b, &p));
    MUST_OK(proto_json_from_reply(b.data, b.len, &txt, &n, &code));
    TST_TRUE(strstr(txt, "\"signals\":[{\"name\":\"resolved\",\"kind\":\"event\","
                         "\"weight\":1.0,") != NULL);
    TST_TRUE(strstr(txt, "\"actions\":[\"greet\",\"bye\"]") != NULL);
    base_free(txt);
    base_buf_fini(&b);
}

/* The request target and query of the HTTP API: the route's own prefix only; the last value. */
static void http_target_and_query(void)
{
    char out[64], pol[64];
    TST_TRUE(proto_http_target("/api/v1/policies/faq?policy=x", "/api/v1/policies/", out,
                               sizeof(out), pol, sizeof(pol)));
    TST_STREQ(out, "faq");
    TST_STREQ(pol, "x");
    TST_TRUE(proto_http_target("/api/v1/policies", "/api/v1/policies/", out, sizeof(out), pol,
                               sizeof(pol)));
    TST_STREQ(out, "");
    /* Shorter than the prefix and not the route: not taken. */
    TST_TRUE(!proto_http_target("/zz?policy=p", "/api/v1/policies/", out, sizeof(out), pol,
                                sizeof(pol)));
    TST_TRUE(!proto_http_target("/api/v1/polic", "/api/v1/policies/", out, sizeof(out), pol,
                                sizeof(pol)));
    /* A parameter given twice counts once, the last; an empty one is absent. */
    TST_EQ(proto_http_query("/x?policy=a&policy=b", "policy", pol, sizeof(pol)), 1);
    TST_STREQ(pol, "b");
    TST_EQ(proto_http_query("/x?policy=a&policy=", "policy", pol, sizeof(pol)), 0);
    TST_STREQ(pol, "");
    TST_EQ(proto_http_query("/x?policy=%zz", "policy", pol, sizeof(pol)), -1);
    TST_EQ(proto_http_query("/x?policyx=a", "policy", pol, sizeof(pol)), 0);
}

int main(void)
{
    from_json_request_decodes();
    to_json_of_reply_parses_back();
    http_body_takes_the_path_op();
    http_body_counts_empty_containers_once();
    http_body_number_overflow_is_bad_request();
    http_body_nul_is_a_field_error();
    reply_code_and_status();
    policy_replies_print();
    http_target_and_query();
    return tst_done();
}
