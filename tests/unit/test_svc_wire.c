/*
 * Unit tests for service/wire.c: request decoding and every rejection, the writer, reply
 * round trips and the JSON bridge. Requests are built with the module's own svc_writer
 * (msgpack.h belongs to wire.c), from JSON, or as raw bytes for malformed input.
 * Float checks are exact unless a tolerance is stated.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/utf8.h"
#include "service/wire.h"
#include "tap.h"

/* TST_OK that stops the run (TAP "Bail out!") when later checks would read a failed result. */
#define MUST_OK(expr)                                                                  \
    do {                                                                               \
        base_err must_e_ = (expr);                                                     \
        TST_OK(must_e_);                                                               \
        if (must_e_ != BASE_OK) {                                                      \
            printf("Bail out! %s failed\n", #expr);                                    \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

static const float emb4[4] = {0.5f, -1.25f, 3e-7f, 7.0f};

/* Options for the request built by put_choice(). */
typedef struct choice_opts {
    const char *op;             /* "decide" or "log" */
    bool bin_embedding;         /* else an array mixing ints and floats */
    float emb0;                 /* first embedding entry */
    uint32_t n_cand;
    float logit0;               /* base_logit of the first candidate */
    const char *chosen;         /* log only */
    float pmf0;                 /* log only: pmf of the first candidate; the rest share 1 - pmf0 */
} choice_opts;

static choice_opts default_opts(const char *op)
{
    choice_opts o = {op, true, emb4[0], 3, 0.5f, "b", 0.25f};
    return o;
}

static void cand_id(char *dst, size_t n, uint32_t i)
{
    (void)snprintf(dst, n, "%c%u", 'a' + (int)(i % 26), i / 26); /* "a0", "b0", ... */
}

static void put_choice(svc_writer *w, const choice_opts *o)
{
    bool is_log = strcmp(o->op, "log") == 0;
    float emb[4] = {o->emb0, emb4[1], emb4[2], emb4[3]};

    svc_w_map(w, is_log ? 12 : 10);
    svc_w_str(w, "v");
    svc_w_int(w, 1);
    svc_w_str(w, "op");
    svc_w_str(w, o->op);
    svc_w_str(w, "policy");
    svc_w_str(w, "faq");
    svc_w_str(w, "event_id");
    svc_w_str(w, "ev-1");
    svc_w_str(w, "conversation_id");
    svc_w_str(w, "conv-9");
    svc_w_str(w, "turn");
    svc_w_uint(w, 3);
    svc_w_str(w, "deferred");
    svc_w_bool(w, true);
    svc_w_str(w, "context");
    svc_w_map(w, 1);
    svc_w_str(w, "embedding");
    if (o->bin_embedding) {
        svc_w_f32_bin(w, emb, 4);
    } else {
        svc_w_array(w, 4);
        svc_w_double(w, emb[0]);
        svc_w_double(w, emb[1]);
        svc_w_double(w, emb[2]); /* a double holding a float32 value converts exactly */
        svc_w_int(w, 7);
    }
    svc_w_str(w, "candidates");
    svc_w_array(w, o->n_cand);
    for (uint32_t i = 0; i < o->n_cand; i++) {
        char id[16];
        cand_id(id, sizeof(id), i);
        svc_w_map(w, 2);
        svc_w_str(w, "id");
        svc_w_str(w, i == 0 ? "a" : i == 1 ? "b" : id);
        svc_w_str(w, "base_logit");
        svc_w_double(w, i == 0 ? o->logit0 : -2.0 * i);
    }
    svc_w_str(w, "unknown_extra");
    svc_w_map(w, 0);
    if (is_log) {
        svc_w_str(w, "chosen");
        svc_w_str(w, o->chosen);
        svc_w_str(w, "pmf");
        svc_w_array(w, o->n_cand);
        for (uint32_t i = 0; i < o->n_cand; i++) {
            svc_w_double(w, i == 0 ? o->pmf0 : (1.0 - o->pmf0) / (o->n_cand - 1));
        }
    }
}

/* Decode @b and expect rejection with @code; the request must come back zeroed. */
static void expect_code(const base_buf *b, svc_errcode code, const char *in_message)
{
    svc_request r;
    svc_wire_error err;
    memset(&r, 0xab, sizeof(r));
    base_err e = svc_wire_decode(b->data, b->len, &r, &err);
    TST_TRUE(e != BASE_OK);
    TST_STREQ(svc_errcode_name(err.code), svc_errcode_name(code));
    TST_TRUE(base_utf8_valid(err.message, strlen(err.message))); /* it goes into a reply */
    if (in_message != NULL) {
        TST_TRUE(strstr(err.message, in_message) != NULL);
        if (strstr(err.message, in_message) == NULL) {
            printf("#   message: %s\n", err.message);
        }
    }
    TST_TRUE(r.embedding == NULL && r.cand == NULL && r.pmf == NULL);
    svc_request_fini(&r);
}

static void expect_json_code(const char *json, svc_errcode code, const char *in_message)
{
    base_buf b;
    char why[128] = "";
    base_buf_init(&b, SVC_WIRE_MAX_MSG);
    MUST_OK(svc_wire_from_json(json, &b, why, sizeof(why)));
    expect_code(&b, code, in_message);
    base_buf_fini(&b);
}

static void expect_opts_code(const choice_opts *o, svc_errcode code, const char *in_message)
{
    base_buf b;
    svc_writer w;
    base_buf_init(&b, SVC_WIRE_MAX_MSG);
    svc_writer_init(&w, &b);
    put_choice(&w, o);
    MUST_OK(svc_writer_finish(&w));
    expect_code(&b, code, in_message);
    base_buf_fini(&b);
}

static void expect_raw_code(const uint8_t *p, size_t n, svc_errcode code)
{
    base_buf b;
    base_buf_init(&b, SVC_WIRE_MAX_MSG);
    MUST_OK(base_buf_append(&b, p, n));
    expect_code(&b, code, NULL);
    base_buf_fini(&b);
}

static void decide_with_bin_embedding_decodes_exactly(void)
{
    base_buf b;
    svc_writer w;
    svc_request r;
    svc_wire_error err;
    choice_opts o = default_opts("decide");

    base_buf_init(&b, SVC_WIRE_MAX_MSG);
    svc_writer_init(&w, &b);
    put_choice(&w, &o);
    MUST_OK(svc_writer_finish(&w));
    MUST_OK(svc_wire_decode(b.data, b.len, &r, &err));
    TST_EQ(r.op, SVC_OP_DECIDE);
    TST_STREQ(r.policy, "faq");
    TST_STREQ(r.event_id, "ev-1");
    TST_STREQ(r.conversation_id, "conv-9");
    TST_EQ(r.turn, 3);
    TST_TRUE(r.deferred);
    TST_EQ(r.dim, 4);
    TST_TRUE(r.embedding != NULL && memcmp(r.embedding, emb4, sizeof(emb4)) == 0);
    TST_EQ(r.n_cand, 3);
    TST_STREQ(r.cand[0].id, "a");
    TST_STREQ(r.cand[1].id, "b");
    TST_STREQ(r.cand[2].id, "c0");
    TST_TRUE(r.cand[0].base_logit == 0.5f && r.cand[2].base_logit == -4.0f);
    TST_TRUE(r.pmf == NULL);
    svc_request_fini(&r);
    svc_request_fini(&r); /* idempotent */
    base_buf_fini(&b);
}

static void decide_with_mixed_array_embedding_decodes_identically(void)
{
    base_buf b;
    svc_writer w;
    svc_request r;
    svc_wire_error err;
    choice_opts o = default_opts("decide");
    o.bin_embedding = false;

    base_buf_init(&b, SVC_WIRE_MAX_MSG);
    svc_writer_init(&w, &b);
    put_choice(&w, &o);
    MUST_OK(svc_writer_finish(&w));
    MUST_OK(svc_wire_decode(b.data, b.len, &r, &err));
    TST_EQ(r.dim, 4);
    TST_TRUE(r.embedding != NULL && memcmp(r.embedding, emb4, sizeof(emb4)) == 0);
    TST_EQ(r.n_cand, 3);
    svc_request_fini(&r);
    base_buf_fini(&b);
}

static void log_decodes_with_chosen_and_pmf(void)
{
    base_buf b;
    svc_writer w;
    svc_request r;
    svc_wire_error err;
    choice_opts o = default_opts("log");

    base_buf_init(&b, SVC_WIRE_MAX_MSG);
    svc_writer_init(&w, &b);
    put_choice(&w, &o);
    MUST_OK(svc_writer_finish(&w));
    MUST_OK(svc_wire_decode(b.data, b.len, &r, &err));
    TST_EQ(r.op, SVC_OP_LOG);
    TST_STREQ(r.chosen, "b");
    TST_TRUE(r.pmf != NULL);
    if (r.pmf != NULL) {
        TST_TRUE(r.pmf[0] == 0.25f && r.pmf[1] == 0.375f && r.pmf[2] == 0.375f);
    }
    svc_request_fini(&r);
    base_buf_fini(&b);
}

static void feedback_decodes_with_defaults(void)
{
    base_buf b;
    svc_request r;
    svc_wire_error err;
    char why[128] = "";

    base_buf_init(&b, SVC_WIRE_MAX_MSG);
    MUST_OK(svc_wire_from_json("{\"v\":1,\"op\":\"feedback\",\"policy\":\"faq\","
                              "\"conversation_id\":\"c1\",\"signal\":\"resolved\"}",
                              &b, why, sizeof(why)));
    MUST_OK(svc_wire_decode(b.data, b.len, &r, &err));
    TST_EQ(r.op, SVC_OP_FEEDBACK);
    TST_STREQ(r.conversation_id, "c1");
    TST_STREQ(r.event_id, "");
    TST_STREQ(r.signal, "resolved");
    TST_TRUE(r.value == 1.0);
    TST_STREQ(r.outcome_id, "");
    TST_EQ(r.ts_ms, 0);
    svc_request_fini(&r);

    base_buf_reset(&b);
    MUST_OK(svc_wire_from_json("{\"v\":1,\"op\":\"feedback\",\"policy\":\"faq\",\"event_id\":"
                              "\"ev-1\",\"signal\":\"csat\",\"value\":4,\"outcome_id\":\"o-1\","
                              "\"ts\":1700000000123}",
                              &b, why, sizeof(why)));
    MUST_OK(svc_wire_decode(b.data, b.len, &r, &err));
    TST_STREQ(r.event_id, "ev-1");
    TST_TRUE(r.value == 4.0);
    TST_STREQ(r.outcome_id, "o-1");
    TST_EQ(r.ts_ms, 1700000000123LL);
    svc_request_fini(&r);
    base_buf_fini(&b);
}

static void stats_and_health_decode(void)
{
    base_buf b;
    svc_request r;
    svc_wire_error err;

    base_buf_init(&b, SVC_WIRE_MAX_MSG);
    MUST_OK(svc_wire_from_json("{\"v\":1,\"op\":\"stats\"}", &b, NULL, 0));
    MUST_OK(svc_wire_decode(b.data, b.len, &r, &err));
    TST_EQ(r.op, SVC_OP_STATS);
    TST_STREQ(r.policy, "");
    svc_request_fini(&r);
    base_buf_reset(&b);
    MUST_OK(svc_wire_from_json("{\"op\":\"health\",\"v\":1,\"extra\":[1,{\"x\":null}]}", &b,
                              NULL, 0));
    MUST_OK(svc_wire_decode(b.data, b.len, &r, &err));
    TST_EQ(r.op, SVC_OP_HEALTH);
    svc_request_fini(&r);
    base_buf_fini(&b);
}

static void decode_rejects_bad_envelopes(void)
{
    expect_json_code("{\"op\":\"health\"}", SVC_E_BAD_REQUEST, "'v'");
    expect_json_code("{\"v\":2,\"op\":\"health\"}", SVC_E_BAD_VERSION, NULL);
    expect_json_code("{\"v\":-1,\"op\":\"health\"}", SVC_E_BAD_VERSION, NULL);
    expect_json_code("{\"v\":1.0,\"op\":\"health\"}", SVC_E_BAD_REQUEST, "'v'");
    expect_json_code("{\"v\":1}", SVC_E_BAD_REQUEST, "'op'");
    expect_json_code("{\"v\":1,\"op\":\"fly\"}", SVC_E_UNKNOWN_OP, "fly");
    expect_json_code("[1,2]", SVC_E_BAD_REQUEST, "map");
}

static void decode_rejects_bad_decide_fields(void)
{
    char json[512];
    char longname[BASE_NAME_MAX + 2];

    memset(longname, 'p', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"context\":{\"embedding\":[1]},"
                     "\"candidates\":[{\"id\":\"a\",\"base_logit\":0}]}",
                     SVC_E_BAD_REQUEST, "'policy'");
    (void)snprintf(json, sizeof(json),
                   "{\"v\":1,\"op\":\"decide\",\"policy\":\"%s\",\"context\":{\"embedding\":[1]"
                   "},\"candidates\":[{\"id\":\"a\",\"base_logit\":0}]}",
                   longname);
    expect_json_code(json, SVC_E_TOO_LARGE, "'policy'");
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"context\":{\"embedding\":"
                     "\"x\"},\"candidates\":[{\"id\":\"a\",\"base_logit\":0}]}",
                     SVC_E_BAD_REQUEST, "context.embedding");
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"context\":{\"embedding\":"
                     "[]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0}]}",
                     SVC_E_BAD_REQUEST, "context.embedding");
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"context\":{},"
                     "\"candidates\":[{\"id\":\"a\",\"base_logit\":0}]}",
                     SVC_E_BAD_REQUEST, "context.embedding");
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"context\":{\"embedding\":"
                     "[1]},\"candidates\":[]}",
                     SVC_E_BAD_REQUEST, "'candidates'");
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"context\":{\"embedding\":"
                     "[1]},\"candidates\":[{\"base_logit\":0}]}",
                     SVC_E_BAD_REQUEST, "candidates[0].id");
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"context\":{\"embedding\":"
                     "[1]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0},{\"id\":\"a\","
                     "\"base_logit\":1}]}",
                     SVC_E_BAD_REQUEST, "same id");
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"context\":{\"embedding\":"
                     "[1e300]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0}]}",
                     SVC_E_NOT_FINITE, "context.embedding[0]");
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"turn\":-1,\"context\":{"
                     "\"embedding\":[1]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0}]}",
                     SVC_E_BAD_REQUEST, "'turn'");
}

static void decode_rejects_odd_length_bin_embedding(void)
{
    base_buf b;
    svc_writer w;

    base_buf_init(&b, SVC_WIRE_MAX_MSG);
    svc_writer_init(&w, &b);
    svc_w_map(&w, 5);
    svc_w_str(&w, "v");
    svc_w_int(&w, 1);
    svc_w_str(&w, "op");
    svc_w_str(&w, "decide");
    svc_w_str(&w, "policy");
    svc_w_str(&w, "p");
    svc_w_str(&w, "candidates");
    svc_w_array(&w, 1);
    svc_w_map(&w, 2);
    svc_w_str(&w, "id");
    svc_w_str(&w, "a");
    svc_w_str(&w, "base_logit");
    svc_w_double(&w, 0.0);
    svc_w_str(&w, "context");
    svc_w_map(&w, 1);
    svc_w_str(&w, "embedding");
    MUST_OK(svc_writer_finish(&w));
    /* bin8 of 6 bytes, written by hand. */
    static const uint8_t odd[] = {0xc4, 0x06, 0, 0, 0x80, 0x3f, 0, 0};
    MUST_OK(base_buf_append(&b, odd, sizeof(odd)));
    expect_code(&b, SVC_E_BAD_REQUEST, "multiple of 4");
    base_buf_fini(&b);
}

static void decode_rejects_too_many_candidates_and_non_finite(void)
{
    choice_opts o = default_opts("decide");

    o.n_cand = BASE_CAND_MAX + 1;
    expect_opts_code(&o, SVC_E_TOO_MANY_CANDIDATES, "1025");
    o = default_opts("decide");
    o.n_cand = BASE_CAND_MAX;
    {
        base_buf b;
        svc_writer w;
        svc_request r;
        svc_wire_error err;
        base_buf_init(&b, SVC_WIRE_MAX_MSG);
        svc_writer_init(&w, &b);
        put_choice(&w, &o);
        MUST_OK(svc_writer_finish(&w));
        MUST_OK(svc_wire_decode(b.data, b.len, &r, &err));
        TST_EQ(r.n_cand, BASE_CAND_MAX);
        svc_request_fini(&r);
        base_buf_fini(&b);
    }
    o = default_opts("decide");
    o.logit0 = NAN;
    expect_opts_code(&o, SVC_E_NOT_FINITE, "candidates[0].base_logit");
    o = default_opts("decide");
    o.emb0 = NAN;
    expect_opts_code(&o, SVC_E_NOT_FINITE, "context.embedding[0]");
    o.bin_embedding = false;
    o.emb0 = INFINITY;
    expect_opts_code(&o, SVC_E_NOT_FINITE, "context.embedding[0]");
}

static void decode_rejects_bad_log_and_feedback(void)
{
    choice_opts o = default_opts("log");
    base_buf b;
    svc_writer w;

    o.chosen = "zz";
    expect_opts_code(&o, SVC_E_BAD_REQUEST, "'chosen'");
    o = default_opts("log");
    o.pmf0 = 0.9f; /* 0.9 + 2 * 0.05 = 1: accepted */
    {
        base_buf_init(&b, SVC_WIRE_MAX_MSG);
        svc_writer_init(&w, &b);
        put_choice(&w, &o);
        MUST_OK(svc_writer_finish(&w));
        svc_request r;
        svc_wire_error err;
        MUST_OK(svc_wire_decode(b.data, b.len, &r, &err));
        svc_request_fini(&r);
        base_buf_fini(&b);
    }
    expect_json_code("{\"v\":1,\"op\":\"log\",\"policy\":\"p\",\"event_id\":\"e\",\"context\":{"
                     "\"embedding\":[1]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0},{"
                     "\"id\":\"b\",\"base_logit\":0}],\"chosen\":\"a\",\"pmf\":[0.25,0.25]}",
                     SVC_E_BAD_REQUEST, "sums to");
    expect_json_code("{\"v\":1,\"op\":\"log\",\"policy\":\"p\",\"event_id\":\"e\",\"context\":{"
                     "\"embedding\":[1]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0},{"
                     "\"id\":\"b\",\"base_logit\":0}],\"chosen\":\"a\",\"pmf\":[1.5,-0.5]}",
                     SVC_E_BAD_REQUEST, "[0, 1]");
    expect_json_code("{\"v\":1,\"op\":\"log\",\"policy\":\"p\",\"event_id\":\"e\",\"context\":{"
                     "\"embedding\":[1]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0}],"
                     "\"chosen\":\"a\",\"pmf\":[0.5,0.5]}",
                     SVC_E_BAD_REQUEST, "'pmf'");
    expect_json_code("{\"v\":1,\"op\":\"log\",\"policy\":\"p\",\"context\":{"
                     "\"embedding\":[1]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0}],"
                     "\"chosen\":\"a\",\"pmf\":[1]}",
                     SVC_E_BAD_REQUEST, "'event_id'");
    expect_json_code("{\"v\":1,\"op\":\"feedback\",\"policy\":\"p\",\"signal\":\"s\"}",
                     SVC_E_BAD_REQUEST, "conversation_id");
    expect_json_code("{\"v\":1,\"op\":\"feedback\",\"policy\":\"p\",\"event_id\":\"e\"}",
                     SVC_E_BAD_REQUEST, "'signal'");
    expect_json_code("{\"v\":1,\"op\":\"feedback\",\"policy\":\"p\",\"event_id\":\"e\","
                     "\"signal\":\"s\",\"value\":\"high\"}",
                     SVC_E_BAD_REQUEST, "'value'");

    /* Inf in value: JSON has no Inf, so write it. */
    base_buf_init(&b, SVC_WIRE_MAX_MSG);
    svc_writer_init(&w, &b);
    svc_w_map(&w, 6);
    svc_w_str(&w, "v");
    svc_w_int(&w, 1);
    svc_w_str(&w, "op");
    svc_w_str(&w, "feedback");
    svc_w_str(&w, "policy");
    svc_w_str(&w, "p");
    svc_w_str(&w, "event_id");
    svc_w_str(&w, "e");
    svc_w_str(&w, "signal");
    svc_w_str(&w, "s");
    svc_w_str(&w, "value");
    svc_w_double(&w, INFINITY);
    MUST_OK(svc_writer_finish(&w));
    expect_code(&b, SVC_E_NOT_FINITE, "'value'");
    base_buf_fini(&b);
}

/*
 * A valid request of @op whose string field @field (a top-level key, or "candidates[1].id")
 * holds @text instead of its usual value.
 */
static void put_with_string(svc_writer *w, const char *op, const char *field, const char *text)
{
    static const float emb[2] = {0.5f, -1.0f};
    bool choice = strcmp(op, "decide") == 0 || strcmp(op, "log") == 0;
    bool is_log = strcmp(op, "log") == 0;
    bool is_feedback = strcmp(op, "feedback") == 0;
    bool is_activate = strcmp(op, "activate") == 0;
    static const char *const feedback_keys[] = {"event_id", "conversation_id", "signal",
                                                "outcome_id", "supersedes", "user_id"};

    svc_w_map(w, 3 + (choice ? 4 : 0) + (is_log ? 2 : 0) + (is_feedback ? 6 : 0) +
                     (is_activate ? 1 : 0));
    svc_w_str(w, "v");
    svc_w_int(w, 1);
    svc_w_str(w, "op");
    svc_w_str(w, strcmp(field, "op") == 0 ? text : op);
    svc_w_str(w, "policy");
    svc_w_str(w, strcmp(field, "policy") == 0 ? text : "faq");
    if (choice || is_activate) {
        svc_w_str(w, "event_id");
        svc_w_str(w, strcmp(field, "event_id") == 0 ? text : "ev-1");
    }
    if (choice) {
        svc_w_str(w, "conversation_id");
        svc_w_str(w, strcmp(field, "conversation_id") == 0 ? text : "conv-1");
        svc_w_str(w, "context");
        svc_w_map(w, 1);
        svc_w_str(w, "embedding");
        svc_w_f32_bin(w, emb, 2);
        svc_w_str(w, "candidates");
        svc_w_array(w, 2);
        for (int i = 0; i < 2; i++) {
            svc_w_map(w, 2);
            svc_w_str(w, "id");
            svc_w_str(w, i == 1 && strcmp(field, "candidates[1].id") == 0 ? text
                         : i == 0                                         ? "a"
                                                                          : "b");
            svc_w_str(w, "base_logit");
            svc_w_double(w, 0.0);
        }
    }
    if (is_log) {
        svc_w_str(w, "chosen");
        svc_w_str(w, strcmp(field, "chosen") == 0 ? text : "a");
        svc_w_str(w, "pmf");
        svc_w_f32_bin(w, emb, 0);
    }
    for (size_t i = 0; is_feedback && i < sizeof(feedback_keys) / sizeof(feedback_keys[0]);
         i++) {
        svc_w_str(w, feedback_keys[i]);
        svc_w_str(w, strcmp(field, feedback_keys[i]) == 0 ? text : "x-1");
    }
}

static void decode_rejects_strings_that_are_not_utf8(void)
{
    static const struct {
        const char *op, *field;
    } fields[] = {
        {"decide", "op"},           {"decide", "policy"},          {"decide", "event_id"},
        {"decide", "conversation_id"}, {"decide", "candidates[1].id"}, {"log", "event_id"},
        {"log", "chosen"},          {"feedback", "policy"},        {"feedback", "event_id"},
        {"feedback", "conversation_id"}, {"feedback", "signal"},   {"feedback", "outcome_id"},
        {"feedback", "supersedes"}, {"feedback", "user_id"},       {"activate", "policy"},
        {"activate", "event_id"},   {"stats", "policy"},
    };
    /* Overlong '/', a surrogate, past U+10FFFF, a truncated euro sign, a byte never in UTF-8. */
    static const char *const bad[] = {"a\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                      "signal\xe2\x82", "\xff"};
    base_buf b;
    svc_writer w;

    base_buf_init(&b, SVC_WIRE_MAX_MSG);
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
            char want[64];
            (void)snprintf(want, sizeof(want), "'%s' is not valid UTF-8", fields[i].field);
            base_buf_reset(&b);
            svc_writer_init(&w, &b);
            put_with_string(&w, fields[i].op, fields[i].field, bad[j]);
            MUST_OK(svc_writer_finish(&w));
            expect_code(&b, SVC_E_BAD_REQUEST, want);
        }
    }
    base_buf_fini(&b);
}

static void decode_accepts_utf8_strings(void)
{
    base_buf b;
    svc_writer w;
    svc_request r;
    svc_wire_error err;

    /* 2-, 3- and 4-byte characters, and U+10FFFF, are kept byte for byte. */
    base_buf_init(&b, SVC_WIRE_MAX_MSG);
    svc_writer_init(&w, &b);
    put_with_string(&w, "feedback", "signal", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x91\x8d");
    MUST_OK(svc_writer_finish(&w));
    MUST_OK(svc_wire_decode(b.data, b.len, &r, &err));
    TST_STREQ(r.signal, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x91\x8d");
    svc_request_fini(&r);
    base_buf_reset(&b);
    svc_writer_init(&w, &b);
    put_with_string(&w, "decide", "candidates[1].id", "\xf4\x8f\xbf\xbf");
    MUST_OK(svc_writer_finish(&w));
    MUST_OK(svc_wire_decode(b.data, b.len, &r, &err));
    TST_STREQ(r.cand[1].id, "\xf4\x8f\xbf\xbf");
    svc_request_fini(&r);
    base_buf_fini(&b);
}

static void decode_rejects_duplicate_keys(void)
{
    base_buf b;
    svc_writer w;

    base_buf_init(&b, SVC_WIRE_MAX_MSG);
    svc_writer_init(&w, &b);
    svc_w_map(&w, 3);
    svc_w_str(&w, "v");
    svc_w_int(&w, 1);
    svc_w_str(&w, "op");
    svc_w_str(&w, "health");
    svc_w_str(&w, "v");
    svc_w_int(&w, 1);
    MUST_OK(svc_writer_finish(&w));
    expect_code(&b, SVC_E_BAD_REQUEST, "duplicate");

    /* A map big enough for the sorting path, with the repeat among unknown keys. */
    base_buf_reset(&b);
    svc_writer_init(&w, &b);
    svc_w_map(&w, 42);
    svc_w_str(&w, "v");
    svc_w_int(&w, 1);
    svc_w_str(&w, "op");
    svc_w_str(&w, "health");
    for (int i = 0; i < 40; i++) {
        char k[16];
        (void)snprintf(k, sizeof(k), "k%d", i == 39 ? 7 : i);
        svc_w_str(&w, k);
        svc_w_nil(&w);
    }
    MUST_OK(svc_writer_finish(&w));
    expect_code(&b, SVC_E_BAD_REQUEST, "duplicate");
    base_buf_fini(&b);
}

static void decode_rejects_malformed_msgpack(void)
{
    static const uint8_t array32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t reserved[] = {0xc1};
    uint8_t deep[40];
    base_buf b;
    svc_writer w;
    svc_request r;
    svc_wire_error err;

    expect_raw_code(array32, sizeof(array32), SVC_E_BAD_MSGPACK);
    expect_raw_code(reserved, sizeof(reserved), SVC_E_BAD_MSGPACK);
    TST_EQ(svc_wire_decode(array32, sizeof(array32), &r, &err), BASE_EPROTO);
    TST_EQ(svc_wire_decode(NULL, 0, &r, &err), BASE_EPROTO);
    memset(deep, 0x91, sizeof(deep)); /* [[[[...]]]] nested past the depth cap */
    deep[sizeof(deep) - 1] = 0xc0;
    expect_raw_code(deep, sizeof(deep), SVC_E_TOO_LARGE);
    TST_EQ(svc_wire_decode(deep, sizeof(deep), &r, &err), BASE_ELIMIT);

    choice_opts o = default_opts("decide");
    base_buf_init(&b, SVC_WIRE_MAX_MSG);
    svc_writer_init(&w, &b);
    put_choice(&w, &o);
    MUST_OK(svc_writer_finish(&w));
    b.len--; /* truncated */
    expect_code(&b, SVC_E_BAD_MSGPACK, NULL);
    b.len++;
    MUST_OK(base_buf_append(&b, "\xc0", 1)); /* trailing garbage */
    expect_code(&b, SVC_E_BAD_MSGPACK, NULL);
    base_buf_fini(&b);
}

static void writer_encodes_little_endian_and_keeps_first_error(void)
{
    static const float v[2] = {1.0f, -2.0f};
    static const uint8_t want[] = {0xc4, 0x08, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0};
    base_buf b;
    svc_writer w;

    base_buf_init(&b, 16);
    svc_writer_init(&w, &b);
    svc_w_f32_bin(&w, v, 2);
    MUST_OK(svc_writer_finish(&w));
    TST_EQ(b.len, sizeof(want));
    TST_TRUE(b.len == sizeof(want) && memcmp(b.data, want, sizeof(want)) == 0);
    svc_w_str(&w, "this string does not fit");
    TST_EQ(svc_writer_finish(&w), BASE_ELIMIT);
    TST_EQ(b.len, sizeof(want) + 1); /* the str header fit, its body did not */
    svc_w_nil(&w); /* would fit, but the error is sticky */
    TST_EQ(svc_writer_finish(&w), BASE_ELIMIT);
    TST_EQ(b.len, sizeof(want) + 1);

    /* A reply that does not fit leaves the buffer as it was. */
    base_buf_reset(&b);
    MUST_OK(base_buf_append(&b, "xy", 2));
    TST_EQ(svc_wire_reply_error(&b, SVC_E_INTERNAL, "a message longer than the cap"),
           BASE_ELIMIT);
    TST_EQ(b.len, 2);
    base_buf_fini(&b);
}

static void decide_reply_round_trips_exactly(void)
{
    static const float pmf[3] = {0.1f, 0.7f, 0.2f};
    base_buf b;
    svc_reply r;

    base_buf_init(&b, SVC_WIRE_MAX_MSG);
    MUST_OK(svc_wire_reply_decide(&b, "ev-1", "b", 1, pmf, 3, 42, "main"));
    MUST_OK(svc_wire_decode_reply(b.data, b.len, &r));
    TST_TRUE(r.ok);
    TST_STREQ(r.event_id, "ev-1");
    TST_STREQ(r.chosen, "b");
    TST_EQ(r.chosen_index, 1);
    TST_EQ(r.n_pmf, 3);
    TST_TRUE(memcmp(r.pmf, pmf, sizeof(pmf)) == 0);
    TST_EQ(r.model_version, 42);
    TST_TRUE(!r.duplicate);

    base_buf_reset(&b);
    MUST_OK(svc_wire_reply_ok(&b));
    MUST_OK(svc_wire_decode_reply(b.data, b.len, &r));
    TST_TRUE(r.ok && r.n_pmf == 0);

    base_buf_reset(&b);
    MUST_OK(svc_wire_from_json("{\"ok\":true,\"duplicate\":true,\"later\":[1]}", &b, NULL, 0));
    MUST_OK(svc_wire_decode_reply(b.data, b.len, &r));
    TST_TRUE(r.ok && r.duplicate);
    base_buf_fini(&b);
}

static void error_reply_round_trips_code_and_message(void)
{
    base_buf b;
    svc_reply r;

    base_buf_init(&b, SVC_WIRE_MAX_MSG);
    MUST_OK(svc_wire_reply_error(&b, SVC_E_BAD_DIMENSION, "embedding has 3 entries, want 8"));
    MUST_OK(svc_wire_decode_reply(b.data, b.len, &r));
    TST_TRUE(!r.ok);
    TST_EQ(r.error.code, SVC_E_BAD_DIMENSION);
    TST_STREQ(r.error.message, "embedding has 3 entries, want 8");

    base_buf_reset(&b);
    MUST_OK(svc_wire_from_json("{\"ok\":false,\"error\":{\"code\":\"from_the_future\","
                              "\"message\":\"kept\"}}",
                              &b, NULL, 0));
    MUST_OK(svc_wire_decode_reply(b.data, b.len, &r));
    TST_EQ(r.error.code, SVC_E_INTERNAL);
    TST_STREQ(r.error.message, "kept");

    base_buf_reset(&b);
    MUST_OK(svc_wire_from_json("{\"ok\":false}", &b, NULL, 0));
    TST_EQ(svc_wire_decode_reply(b.data, b.len, &r), BASE_EPROTO);
    base_buf_reset(&b);
    MUST_OK(svc_wire_from_json("{\"ok\":true,\"pmf\":\"x\"}", &b, NULL, 0));
    TST_EQ(svc_wire_decode_reply(b.data, b.len, &r), BASE_EPROTO);
    TST_EQ(svc_wire_decode_reply((const uint8_t *)"\xdd\xff\xff\xff\xff", 5, &r), BASE_EPROTO);
    base_buf_fini(&b);
}

/* Decode the error reply in @b; its message must be valid UTF-8 and equal @want. */
static void expect_reply_message(const base_buf *b, const char *want)
{
    svc_reply r;
    char *json = NULL;

    MUST_OK(svc_wire_decode_reply(b->data, b->len, &r));
    TST_TRUE(!r.ok);
    TST_STREQ(r.error.message, want);
    TST_TRUE(base_utf8_valid(r.error.message, strlen(r.error.message)));
    TST_OK(svc_wire_to_json(b->data, b->len, &json)); /* refuses text that is not UTF-8 */
    base_free(json);
}

static void error_reply_cuts_messages_on_a_character_boundary(void)
{
    char euros[64 * 3 + 1] = "";
    char signal[1 + 21 * 3 + 1] = "a";
    char msg[SVC_WIRE_MSG_MAX];
    char want[SVC_WIRE_MSG_MAX];
    base_buf b;

    for (int i = 0; i < 64; i++) {
        memcpy(euros + 3 * i, "\xe2\x82\xac", 4);
    }
    memcpy(signal + 1, euros, 21 * 3);
    signal[1 + 21 * 3] = '\0';
    base_buf_init(&b, SVC_WIRE_MAX_MSG);

    /* The engine's unknown_signal message: "%.48s" cuts the 16th euro sign after 2 bytes. */
    (void)snprintf(msg, sizeof(msg), "signal \"%.48s\" is not in the reward spec of policy %.48s",
                   signal, "intents");
    (void)snprintf(want, sizeof(want), "signal \"a%.45s\" is not in the reward spec of policy "
                   "intents", euros);
    MUST_OK(svc_wire_reply_error(&b, SVC_E_UNKNOWN_SIGNAL, msg));
    expect_reply_message(&b, want);

    /* snprintf's size limit cuts the 53rd euro sign: 1 + 52 * 3 = 157 of 159 bytes kept. */
    base_buf_reset(&b);
    TST_TRUE(snprintf(msg, sizeof(msg), "a%s", euros) >= (int)sizeof(msg)); /* it cuts */
    memcpy(want, msg, 1 + 52 * 3);
    want[1 + 52 * 3] = '\0';
    MUST_OK(svc_wire_reply_error(&b, SVC_E_UNKNOWN_SIGNAL, msg));
    expect_reply_message(&b, want);

    /* Whole characters are kept; a longer message is cut to SVC_WIRE_MSG_MAX - 1 bytes. */
    base_buf_reset(&b);
    MUST_OK(svc_wire_reply_error(&b, SVC_E_UNKNOWN_SIGNAL, signal));
    expect_reply_message(&b, signal);
    char longer[1 + 64 * 3 + 1] = "a";
    memcpy(longer + 1, euros, sizeof(euros));
    base_buf_reset(&b);
    MUST_OK(svc_wire_reply_error(&b, SVC_E_UNKNOWN_SIGNAL, longer));
    expect_reply_message(&b, want);
    char *json = NULL;
    char want_json[2 * SVC_WIRE_MSG_MAX];
    (void)snprintf(want_json, sizeof(want_json),
                   "{\"ok\":false,\"error\":{\"code\":\"unknown_signal\",\"message\":\"%s\"}}",
                   want);
    MUST_OK(svc_wire_to_json(b.data, b.len, &json)); /* the bytes sent, not a client's cut */
    TST_STREQ(json, want_json);
    base_free(json);

    /* A client reading a longer message from another server cuts it the same way. */
    base_buf_reset(&b);
    svc_writer w;
    svc_writer_init(&w, &b);
    svc_w_map(&w, 2);
    svc_w_str(&w, "ok");
    svc_w_bool(&w, false);
    svc_w_str(&w, "error");
    svc_w_map(&w, 2);
    svc_w_str(&w, "code");
    svc_w_str(&w, "unknown_signal");
    svc_w_str(&w, "message");
    svc_w_str(&w, longer);
    MUST_OK(svc_writer_finish(&w));
    svc_reply r;
    MUST_OK(svc_wire_decode_reply(b.data, b.len, &r));
    TST_STREQ(r.error.message, want);
    base_buf_fini(&b);
}

static void from_json_request_decodes(void)
{
    base_buf b;
    svc_request r;
    svc_wire_error err;
    char why[128] = "";

    base_buf_init(&b, SVC_WIRE_MAX_MSG);
    MUST_OK(svc_wire_from_json(
        "{\"v\":1,\"op\":\"decide\",\"policy\":\"faq\",\"context\":{\"embedding\":[0.5,-1,2]},"
        "\"candidates\":[{\"id\":\"greet\",\"base_logit\":1.5},{\"id\":\"bye\","
        "\"base_logit\":-0.25}]}",
        &b, why, sizeof(why)));
    MUST_OK(svc_wire_decode(b.data, b.len, &r, &err));
    TST_EQ(r.op, SVC_OP_DECIDE);
    TST_STREQ(r.event_id, "");
    TST_EQ(r.dim, 3);
    TST_TRUE(r.embedding[0] == 0.5f && r.embedding[1] == -1.0f && r.embedding[2] == 2.0f);
    TST_EQ(r.n_cand, 2);
    TST_STREQ(r.cand[1].id, "bye");
    TST_TRUE(r.cand[1].base_logit == -0.25f);
    svc_request_fini(&r);

    size_t before = b.len;
    TST_EQ(svc_wire_from_json("{\"v\":1,", &b, why, sizeof(why)), BASE_EINVAL);
    TST_TRUE(why[0] != '\0');
    TST_EQ(svc_wire_from_json("{\"a\":1,\"a\":2}", &b, why, sizeof(why)), BASE_EINVAL);
    char deep[2 * (SVC_WIRE_MAX_DEPTH + 1) + 2];
    memset(deep, '[', SVC_WIRE_MAX_DEPTH + 1);
    deep[SVC_WIRE_MAX_DEPTH + 1] = '1';
    memset(deep + SVC_WIRE_MAX_DEPTH + 2, ']', SVC_WIRE_MAX_DEPTH + 1);
    deep[sizeof(deep) - 1] = '\0';
    TST_EQ(svc_wire_from_json(deep, &b, why, sizeof(why)), BASE_ELIMIT);
    TST_TRUE(strstr(why, "deeper") != NULL);
    deep[0] = ' '; /* exactly at the cap: accepted */
    deep[sizeof(deep) - 2] = ' ';
    MUST_OK(svc_wire_from_json(deep, &b, why, sizeof(why)));
    b.len = before;
    TST_EQ(b.len, before);
    base_buf_fini(&b);
}

static void to_json_of_reply_parses_back(void)
{
    static const float pmf[2] = {0.1f, 0.9f};
    base_buf b, back;
    svc_reply r;
    char *txt = NULL;

    base_buf_init(&b, SVC_WIRE_MAX_MSG);
    base_buf_init(&back, SVC_WIRE_MAX_MSG);
    MUST_OK(svc_wire_reply_decide(&b, "ev-\"7\"", "a\n", 0, pmf, 2, 9, "s"));
    MUST_OK(svc_wire_to_json(b.data, b.len, &txt));
    TST_STREQ(txt, "{\"ok\":true,\"event_id\":\"ev-\\\"7\\\"\",\"chosen\":\"a\\u000a\","
                   "\"chosen_index\":0,\"pmf\":[0.1,0.9],\"model_version\":9,\"slot\":\"s\"}");
    /* Parse it back (jansson, inside from_json) and compare fields. */
    MUST_OK(svc_wire_from_json(txt, &back, NULL, 0));
    MUST_OK(svc_wire_decode_reply(back.data, back.len, &r));
    TST_TRUE(r.ok);
    TST_STREQ(r.event_id, "ev-\"7\"");
    TST_STREQ(r.chosen, "a\n");
    TST_EQ(r.n_pmf, 2);
    TST_TRUE(r.pmf[0] == pmf[0] && r.pmf[1] == pmf[1]); /* shortest digits read back exactly */
    TST_EQ(r.model_version, 9);
    base_free(txt);
    txt = NULL;

    base_buf_reset(&b);
    MUST_OK(svc_wire_reply_error(&b, SVC_E_UNKNOWN_POLICY, "no policy 'x'"));
    MUST_OK(svc_wire_to_json(b.data, b.len, &txt));
    TST_STREQ(txt, "{\"ok\":false,\"error\":{\"code\":\"unknown_policy\",\"message\":"
                   "\"no policy 'x'\"}}");
    base_free(txt);
    txt = NULL;

    /* Reals stay reals, odd bins print as hex, non-string keys are refused. */
    base_buf_reset(&b);
    svc_writer w;
    svc_writer_init(&w, &b);
    svc_w_array(&w, 4);
    svc_w_double(&w, 2.0);
    svc_w_double(&w, NAN);
    svc_w_int(&w, -5);
    MUST_OK(svc_writer_finish(&w));
    MUST_OK(base_buf_append(&b, "\xc4\x03\x01\xab\xff", 5));
    MUST_OK(svc_wire_to_json(b.data, b.len, &txt));
    TST_STREQ(txt, "[2.0,null,-5,\"01abff\"]");
    base_free(txt);
    txt = NULL;
    TST_EQ(svc_wire_to_json((const uint8_t *)"\x81\x01\x02", 3, &txt), BASE_EPROTO);
    TST_EQ(svc_wire_to_json((const uint8_t *)"\xa2\xc3\x28", 3, &txt), BASE_EPROTO);
    TST_TRUE(txt == NULL);
    base_buf_fini(&back);
    base_buf_fini(&b);
}

static void errcode_names_round_trip(void)
{
    for (int c = SVC_E_NONE; c < SVC_E_COUNT; c++) {
        svc_errcode back = SVC_E_COUNT;
        bool found = false;
        svc_errcode_from_name(svc_errcode_name((svc_errcode)c), &back, &found);
        TST_TRUE(found);
        TST_EQ(back, c);
    }
    bool found = true;
    svc_errcode back = SVC_E_NONE;
    svc_errcode_from_name("no_such_code", &back, &found);
    TST_TRUE(!found);
    TST_STREQ(svc_errcode_name(SVC_E_BAD_VERSION), "unsupported_version");
    TST_STREQ(svc_errcode_name(SVC_E_COUNT), "internal");
}

int main(void)
{
    decide_with_bin_embedding_decodes_exactly();
    decide_with_mixed_array_embedding_decodes_identically();
    log_decodes_with_chosen_and_pmf();
    feedback_decodes_with_defaults();
    stats_and_health_decode();
    decode_rejects_bad_envelopes();
    decode_rejects_bad_decide_fields();
    decode_rejects_odd_length_bin_embedding();
    decode_rejects_too_many_candidates_and_non_finite();
    decode_rejects_bad_log_and_feedback();
    decode_rejects_strings_that_are_not_utf8();
    decode_accepts_utf8_strings();
    decode_rejects_duplicate_keys();
    decode_rejects_malformed_msgpack();
    writer_encodes_little_endian_and_keeps_first_error();
    decide_reply_round_trips_exactly();
    error_reply_round_trips_code_and_message();
    error_reply_cuts_messages_on_a_character_boundary();
    from_json_request_decodes();
    to_json_of_reply_parses_back();
    errcode_names_round_trip();
    return tst_done();
}
