/*
 * Unit tests for proto/request.c: request decoding and every rejection. Requests are built
 * with proto's own writer (msgpack.h belongs to proto/), from JSON (proto/json.c), or as raw
 * bytes for malformed input. Float checks are exact unless a tolerance is stated.
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
#include "proto/errors.h"
#include "proto/json.h"
#include "proto/mp.h"
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

static const float emb4[4] = {0.5f, -1.25f, 3e-7f, 7.0f};

/* Options for the request built by put_choice(). */
typedef struct choice_opts {
    const char *op;     /* "decide" or "log" */
    bool bin_embedding; /* else an array mixing ints and floats */
    float emb0;         /* first embedding entry */
    uint32_t n_cand;
    float logit0;       /* base_logit of the first candidate */
    const char *chosen; /* log only */
    float pmf0;         /* log only: pmf of the first candidate; the rest share 1 - pmf0 */
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

static void put_choice(proto_writer *w, const choice_opts *o)
{
    bool is_log = strcmp(o->op, "log") == 0;
    float emb[4] = {o->emb0, emb4[1], emb4[2], emb4[3]};

    proto_w_map(w, is_log ? 12 : 10);
    proto_w_str(w, "v");
    proto_w_int(w, 1);
    proto_w_str(w, "op");
    proto_w_str(w, o->op);
    proto_w_str(w, "policy");
    proto_w_str(w, "faq");
    proto_w_str(w, "event_id");
    proto_w_str(w, "ev-1");
    proto_w_str(w, "conversation_id");
    proto_w_str(w, "conv-9");
    proto_w_str(w, "turn");
    proto_w_uint(w, 3);
    proto_w_str(w, "deferred");
    proto_w_bool(w, true);
    proto_w_str(w, "context");
    proto_w_map(w, 1);
    proto_w_str(w, "embedding");
    if (o->bin_embedding) {
        proto_w_f32_bin(w, emb, 4);
    } else {
        proto_w_array(w, 4);
        proto_w_double(w, emb[0]);
        proto_w_double(w, emb[1]);
        proto_w_double(w, emb[2]); /* a double holding a float32 value converts exactly */
        proto_w_int(w, 7);
    }
    proto_w_str(w, "candidates");
    proto_w_array(w, o->n_cand);
    for (uint32_t i = 0; i < o->n_cand; i++) {
        char id[16];
        cand_id(id, sizeof(id), i);
        proto_w_map(w, 2);
        proto_w_str(w, "id");
        proto_w_str(w, i == 0 ? "a" : i == 1 ? "b" : id);
        proto_w_str(w, "base_logit");
        proto_w_double(w, i == 0 ? o->logit0 : -2.0 * i);
    }
    proto_w_str(w, "unknown_extra");
    proto_w_map(w, 0);
    if (is_log) {
        proto_w_str(w, "chosen");
        proto_w_str(w, o->chosen);
        proto_w_str(w, "pmf");
        proto_w_array(w, o->n_cand);
        for (uint32_t i = 0; i < o->n_cand; i++) {
            proto_w_double(w, i == 0 ? o->pmf0 : (1.0 - o->pmf0) / (o->n_cand - 1));
        }
    }
}

/* Decode @b and expect rejection with @code; the request must come back zeroed. */
static void expect_code(const base_buf *b, proto_errcode code, const char *in_message)
{
    proto_request r;
    proto_error err;
    memset(&r, 0xab, sizeof(r));
    base_err e = proto_request_decode(b->data, b->len, &r, &err);
    TST_TRUE(e != BASE_OK);
    TST_STREQ(proto_errcode_name(err.code), proto_errcode_name(code));
    TST_TRUE(base_utf8_valid(err.message, strlen(err.message))); /* it goes into a reply */
    if (in_message != NULL) {
        TST_TRUE(strstr(err.message, in_message) != NULL);
        if (strstr(err.message, in_message) == NULL) {
            printf("#   message: %s\n", err.message);
        }
    }
    TST_TRUE(r.embedding == NULL && r.cand == NULL && r.pmf == NULL);
    proto_request_fini(&r);

    /* The server's decoder (this thread's buffers) refuses it the same way. */
    proto_error err2;
    memset(&r, 0xab, sizeof(r));
    TST_TRUE(proto_request_decode_reuse(b->data, b->len, &r, &err2) == e);
    TST_EQ(err2.code, err.code);
    TST_STREQ(err2.message, err.message);
    TST_TRUE(r.embedding == NULL && r.cand == NULL && r.pmf == NULL && r.scratch == NULL);
    proto_request_fini(&r);
}

static void expect_json_code(const char *json, proto_errcode code, const char *in_message)
{
    base_buf b;
    char why[128] = "";
    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    MUST_OK(proto_json_to_msgpack(json, &b, why, sizeof(why)));
    expect_code(&b, code, in_message);
    base_buf_fini(&b);
}

static void expect_opts_code(const choice_opts *o, proto_errcode code, const char *in_message)
{
    base_buf b;
    proto_writer w;
    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    proto_writer_init(&w, &b);
    put_choice(&w, o);
    MUST_OK(proto_writer_finish(&w));
    expect_code(&b, code, in_message);
    base_buf_fini(&b);
}

static void expect_raw_code(const uint8_t *p, size_t n, proto_errcode code)
{
    base_buf b;
    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    MUST_OK(base_buf_append(&b, p, n));
    expect_code(&b, code, NULL);
    base_buf_fini(&b);
}

static void decide_with_bin_embedding_decodes_exactly(void)
{
    base_buf b;
    proto_writer w;
    proto_request r;
    proto_error err;
    choice_opts o = default_opts("decide");

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    proto_writer_init(&w, &b);
    put_choice(&w, &o);
    MUST_OK(proto_writer_finish(&w));
    MUST_OK(proto_request_decode(b.data, b.len, &r, &err));
    TST_EQ(r.op, PROTO_OP_DECIDE);
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
    proto_request_fini(&r);
    proto_request_fini(&r); /* idempotent */
    base_buf_fini(&b);
}

static void decide_with_mixed_array_embedding_decodes_identically(void)
{
    base_buf b;
    proto_writer w;
    proto_request r;
    proto_error err;
    choice_opts o = default_opts("decide");
    o.bin_embedding = false;

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    proto_writer_init(&w, &b);
    put_choice(&w, &o);
    MUST_OK(proto_writer_finish(&w));
    MUST_OK(proto_request_decode(b.data, b.len, &r, &err));
    TST_EQ(r.dim, 4);
    TST_TRUE(r.embedding != NULL && memcmp(r.embedding, emb4, sizeof(emb4)) == 0);
    TST_EQ(r.n_cand, 3);
    proto_request_fini(&r);
    base_buf_fini(&b);
}

static void log_decodes_with_chosen_and_pmf(void)
{
    base_buf b;
    proto_writer w;
    proto_request r;
    proto_error err;
    choice_opts o = default_opts("log");

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    proto_writer_init(&w, &b);
    put_choice(&w, &o);
    MUST_OK(proto_writer_finish(&w));
    MUST_OK(proto_request_decode(b.data, b.len, &r, &err));
    TST_EQ(r.op, PROTO_OP_LOG);
    TST_STREQ(r.chosen, "b");
    TST_TRUE(r.pmf != NULL);
    if (r.pmf != NULL) {
        TST_TRUE(r.pmf[0] == 0.25f && r.pmf[1] == 0.375f && r.pmf[2] == 0.375f);
    }
    proto_request_fini(&r);
    base_buf_fini(&b);
}

/*
 * proto_request_decode_reuse() gives what proto_request_decode() gives, request after
 * request on one thread, as the arrays it reuses grow (3, then 40 candidates) and shrink.
 */
static void reuse_decodes_like_decode(void)
{
    static const uint32_t sizes[] = {3, 40, 2, 40};
    static const char *const ops[] = {"decide", "log", "log", "decide"};
    for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
        base_buf b;
        proto_writer w;
        proto_request a, r;
        proto_error err;
        choice_opts o = default_opts(ops[t]);
        o.n_cand = sizes[t];
        o.bin_embedding = t % 2 == 0;
        o.emb0 = (float)t;
        base_buf_init(&b, PROTO_MAX_MSG_BYTES);
        proto_writer_init(&w, &b);
        put_choice(&w, &o);
        MUST_OK(proto_writer_finish(&w));
        MUST_OK(proto_request_decode(b.data, b.len, &a, &err));
        MUST_OK(proto_request_decode_reuse(b.data, b.len, &r, &err));
        TST_TRUE(r.scratch != NULL && a.scratch == NULL);
        TST_EQ(r.op, a.op);
        TST_STREQ(r.policy, a.policy);
        TST_STREQ(r.event_id, a.event_id);
        TST_EQ(r.dim, a.dim);
        TST_TRUE(memcmp(r.embedding, a.embedding, a.dim * sizeof(float)) == 0);
        TST_EQ(r.n_cand, a.n_cand);
        TST_EQ(r.n_cand, sizes[t]);
        TST_TRUE(memcmp(r.cand, a.cand, a.n_cand * sizeof(a.cand[0])) == 0);
        TST_TRUE((r.pmf == NULL) == (a.pmf == NULL));
        if (a.pmf != NULL && r.pmf != NULL) {
            TST_TRUE(memcmp(r.pmf, a.pmf, a.n_cand * sizeof(float)) == 0);
        }
        TST_STREQ(r.chosen, a.chosen);
        proto_request_fini(&r);
        TST_TRUE(r.embedding == NULL && r.cand == NULL && r.scratch == NULL);
        proto_request_fini(&a);
        base_buf_fini(&b);
    }
}

static void feedback_decodes_with_defaults(void)
{
    base_buf b;
    proto_request r;
    proto_error err;
    char why[128] = "";

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    MUST_OK(proto_json_to_msgpack("{\"v\":1,\"op\":\"feedback\",\"policy\":\"faq\","
                                  "\"conversation_id\":\"c1\",\"signal\":\"resolved\"}",
                                  &b, why, sizeof(why)));
    MUST_OK(proto_request_decode(b.data, b.len, &r, &err));
    TST_EQ(r.op, PROTO_OP_FEEDBACK);
    TST_STREQ(r.conversation_id, "c1");
    TST_STREQ(r.event_id, "");
    TST_STREQ(r.signal, "resolved");
    TST_TRUE(r.value == 1.0);
    TST_STREQ(r.outcome_id, "");
    TST_EQ(r.ts_ms, 0);
    proto_request_fini(&r);

    base_buf_reset(&b);
    MUST_OK(proto_json_to_msgpack("{\"v\":1,\"op\":\"feedback\",\"policy\":\"faq\","
                                  "\"event_id\":\"ev-1\",\"signal\":\"csat\",\"value\":4,"
                                  "\"outcome_id\":\"o-1\",\"ts\":1700000000123}",
                                  &b, why, sizeof(why)));
    MUST_OK(proto_request_decode(b.data, b.len, &r, &err));
    TST_STREQ(r.event_id, "ev-1");
    TST_TRUE(r.value == 4.0);
    TST_STREQ(r.outcome_id, "o-1");
    TST_EQ(r.ts_ms, 1700000000123LL);
    proto_request_fini(&r);
    base_buf_fini(&b);
}

static void stats_and_health_decode(void)
{
    base_buf b;
    proto_request r;
    proto_error err;

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    MUST_OK(proto_json_to_msgpack("{\"v\":1,\"op\":\"stats\"}", &b, NULL, 0));
    MUST_OK(proto_request_decode(b.data, b.len, &r, &err));
    TST_EQ(r.op, PROTO_OP_STATS);
    TST_STREQ(r.policy, "");
    proto_request_fini(&r);
    base_buf_reset(&b);
    MUST_OK(proto_json_to_msgpack("{\"op\":\"health\",\"v\":1,\"extra\":[1,{\"x\":null}]}", &b,
                                  NULL, 0));
    MUST_OK(proto_request_decode(b.data, b.len, &r, &err));
    TST_EQ(r.op, PROTO_OP_HEALTH);
    proto_request_fini(&r);
    base_buf_fini(&b);
}

static void decode_rejects_bad_envelopes(void)
{
    expect_json_code("{\"op\":\"health\"}", PROTO_E_BAD_REQUEST, "'v'");
    expect_json_code("{\"v\":2,\"op\":\"health\"}", PROTO_E_BAD_VERSION, NULL);
    expect_json_code("{\"v\":-1,\"op\":\"health\"}", PROTO_E_BAD_VERSION, NULL);
    expect_json_code("{\"v\":1.0,\"op\":\"health\"}", PROTO_E_BAD_REQUEST, "'v'");
    expect_json_code("{\"v\":1}", PROTO_E_BAD_REQUEST, "'op'");
    expect_json_code("{\"v\":1,\"op\":\"fly\"}", PROTO_E_UNKNOWN_OP, "fly");
    /* Quoted as sent, cut on a character boundary: "abc" and 10 "€" (33 bytes) to 32 bytes. */
    expect_json_code("{\"v\":1,\"op\":\"abc€€€€€€€€€€\"}", PROTO_E_UNKNOWN_OP,
                     "unknown op 'abc€€€€€€€€€'");
    expect_json_code("[1,2]", PROTO_E_BAD_REQUEST, "map");
}

static void decode_rejects_bad_decide_fields(void)
{
    char json[512];
    char longname[BASE_NAME_MAX + 2];

    memset(longname, 'p', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"context\":{\"embedding\":[1]},"
                     "\"candidates\":[{\"id\":\"a\",\"base_logit\":0}]}",
                     PROTO_E_BAD_REQUEST, "'policy'");
    (void)snprintf(json, sizeof(json),
                   "{\"v\":1,\"op\":\"decide\",\"policy\":\"%s\",\"context\":{\"embedding\":[1]"
                   "},\"candidates\":[{\"id\":\"a\",\"base_logit\":0}]}",
                   longname);
    expect_json_code(json, PROTO_E_TOO_LARGE, "'policy'");
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"context\":{\"embedding\":"
                     "\"x\"},\"candidates\":[{\"id\":\"a\",\"base_logit\":0}]}",
                     PROTO_E_BAD_REQUEST, "context.embedding");
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"context\":{\"embedding\":"
                     "[]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0}]}",
                     PROTO_E_BAD_REQUEST, "context.embedding");
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"context\":{},"
                     "\"candidates\":[{\"id\":\"a\",\"base_logit\":0}]}",
                     PROTO_E_BAD_REQUEST, "context.embedding");
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"context\":{\"embedding\":"
                     "[1]},\"candidates\":[]}",
                     PROTO_E_BAD_REQUEST, "'candidates'");
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"context\":{\"embedding\":"
                     "[1]},\"candidates\":[{\"base_logit\":0}]}",
                     PROTO_E_BAD_REQUEST, "candidates[0].id");
    /* Each candidate's errors name it in full (formatted only when there is an error). */
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"context\":{\"embedding\":"
                     "[1]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0},{\"id\":\"b\","
                     "\"base_logit\":\"x\"}]}",
                     PROTO_E_BAD_REQUEST, "field 'candidates[1].base_logit' must be a number");
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"context\":{\"embedding\":"
                     "[1]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0},7]}",
                     PROTO_E_BAD_REQUEST, "candidates[1] must be a map");
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"context\":{\"embedding\":"
                     "[1]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0},{\"id\":\"b\","
                     "\"base_logit\":1},{\"id\":\"a\",\"base_logit\":1}]}",
                     PROTO_E_BAD_REQUEST, "field 'candidates[2].id' repeats candidates[0].id");
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"context\":{\"embedding\":"
                     "[1e300]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0}]}",
                     PROTO_E_NOT_FINITE, "context.embedding[0]");
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"turn\":-1,\"context\":{"
                     "\"embedding\":[1]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0}]}",
                     PROTO_E_BAD_REQUEST, "'turn'");
}

/*
 * A bin whose length is not a multiple of 4, as context.embedding (6 bytes) or as the first
 * candidate's features (5 bytes): refused, naming the field and its length.
 */
static void expect_odd_bin(bool in_features, const char *message)
{
    static const uint8_t one[6] = {0, 0, 0x80, 0x3f, 0, 0};
    base_buf b;
    proto_writer w;
    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    proto_writer_init(&w, &b);
    proto_w_map(&w, 5);
    proto_w_str(&w, "v");
    proto_w_int(&w, 1);
    proto_w_str(&w, "op");
    proto_w_str(&w, "decide");
    proto_w_str(&w, "policy");
    proto_w_str(&w, "p");
    proto_w_str(&w, "candidates");
    proto_w_array(&w, 1);
    proto_w_map(&w, in_features ? 3 : 2);
    proto_w_str(&w, "id");
    proto_w_str(&w, "a");
    proto_w_str(&w, "base_logit");
    proto_w_double(&w, 0.0);
    if (in_features) {
        proto_w_str(&w, "features");
        proto_w_bin(&w, one, 5);
    }
    proto_w_str(&w, "context");
    proto_w_map(&w, 1);
    proto_w_str(&w, "embedding");
    proto_w_bin(&w, one, in_features ? 4 : 6);
    MUST_OK(proto_writer_finish(&w));
    expect_code(&b, PROTO_E_BAD_REQUEST, message);
    base_buf_fini(&b);
}

static void decode_rejects_odd_length_bin_embedding(void)
{
    expect_odd_bin(false, "field 'context.embedding' is a bin of 6 bytes, not a multiple of 4");
}

static void decode_rejects_too_many_candidates_and_non_finite(void)
{
    choice_opts o = default_opts("decide");

    o.n_cand = BASE_CAND_MAX + 1;
    expect_opts_code(&o, PROTO_E_TOO_MANY_CANDIDATES, "1025");
    o = default_opts("decide");
    o.n_cand = BASE_CAND_MAX;
    {
        base_buf b;
        proto_writer w;
        proto_request r;
        proto_error err;
        base_buf_init(&b, PROTO_MAX_MSG_BYTES);
        proto_writer_init(&w, &b);
        put_choice(&w, &o);
        MUST_OK(proto_writer_finish(&w));
        MUST_OK(proto_request_decode(b.data, b.len, &r, &err));
        TST_EQ(r.n_cand, BASE_CAND_MAX);
        proto_request_fini(&r);
        base_buf_fini(&b);
    }
    o = default_opts("decide");
    o.logit0 = NAN;
    expect_opts_code(&o, PROTO_E_NOT_FINITE, "candidates[0].base_logit");
    o = default_opts("decide");
    o.emb0 = NAN;
    expect_opts_code(&o, PROTO_E_NOT_FINITE, "context.embedding[0]");
    o.bin_embedding = false;
    o.emb0 = INFINITY;
    expect_opts_code(&o, PROTO_E_NOT_FINITE, "context.embedding[0]");
}

static void decode_rejects_bad_log_and_feedback(void)
{
    choice_opts o = default_opts("log");
    base_buf b;
    proto_writer w;

    o.chosen = "zz";
    expect_opts_code(&o, PROTO_E_BAD_REQUEST, "'chosen'");
    o = default_opts("log");
    o.pmf0 = 0.9f; /* 0.9 + 2 * 0.05 = 1: accepted */
    {
        base_buf_init(&b, PROTO_MAX_MSG_BYTES);
        proto_writer_init(&w, &b);
        put_choice(&w, &o);
        MUST_OK(proto_writer_finish(&w));
        proto_request r;
        proto_error err;
        MUST_OK(proto_request_decode(b.data, b.len, &r, &err));
        proto_request_fini(&r);
        base_buf_fini(&b);
    }
    expect_json_code("{\"v\":1,\"op\":\"log\",\"policy\":\"p\",\"event_id\":\"e\",\"context\":{"
                     "\"embedding\":[1]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0},{"
                     "\"id\":\"b\",\"base_logit\":0}],\"chosen\":\"a\",\"pmf\":[0.25,0.25]}",
                     PROTO_E_BAD_REQUEST, "sums to");
    expect_json_code("{\"v\":1,\"op\":\"log\",\"policy\":\"p\",\"event_id\":\"e\",\"context\":{"
                     "\"embedding\":[1]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0},{"
                     "\"id\":\"b\",\"base_logit\":0}],\"chosen\":\"a\",\"pmf\":[1.5,-0.5]}",
                     PROTO_E_BAD_REQUEST, "[0, 1]");
    expect_json_code("{\"v\":1,\"op\":\"log\",\"policy\":\"p\",\"event_id\":\"e\",\"context\":{"
                     "\"embedding\":[1]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0}],"
                     "\"chosen\":\"a\",\"pmf\":[0.5,0.5]}",
                     PROTO_E_BAD_REQUEST, "'pmf'");
    expect_json_code("{\"v\":1,\"op\":\"log\",\"policy\":\"p\",\"context\":{"
                     "\"embedding\":[1]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0}],"
                     "\"chosen\":\"a\",\"pmf\":[1]}",
                     PROTO_E_BAD_REQUEST, "'event_id'");
    expect_json_code("{\"v\":1,\"op\":\"feedback\",\"policy\":\"p\",\"signal\":\"s\"}",
                     PROTO_E_BAD_REQUEST, "conversation_id");
    expect_json_code("{\"v\":1,\"op\":\"feedback\",\"policy\":\"p\",\"event_id\":\"e\"}",
                     PROTO_E_BAD_REQUEST, "'signal'");
    expect_json_code("{\"v\":1,\"op\":\"feedback\",\"policy\":\"p\",\"event_id\":\"e\","
                     "\"signal\":\"s\",\"value\":\"high\"}",
                     PROTO_E_BAD_REQUEST, "'value'");

    /* Inf in value: JSON has no Inf, so write it. */
    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    proto_writer_init(&w, &b);
    proto_w_map(&w, 6);
    proto_w_str(&w, "v");
    proto_w_int(&w, 1);
    proto_w_str(&w, "op");
    proto_w_str(&w, "feedback");
    proto_w_str(&w, "policy");
    proto_w_str(&w, "p");
    proto_w_str(&w, "event_id");
    proto_w_str(&w, "e");
    proto_w_str(&w, "signal");
    proto_w_str(&w, "s");
    proto_w_str(&w, "value");
    proto_w_double(&w, INFINITY);
    MUST_OK(proto_writer_finish(&w));
    expect_code(&b, PROTO_E_NOT_FINITE, "'value'");
    base_buf_fini(&b);
}

/*
 * A valid request of @op whose string field @field (a top-level key, or "candidates[1].id")
 * holds @text instead of its usual value.
 */
static void put_with_string(proto_writer *w, const char *op, const char *field, const char *text)
{
    static const float emb[2] = {0.5f, -1.0f};
    bool choice = strcmp(op, "decide") == 0 || strcmp(op, "log") == 0;
    bool is_log = strcmp(op, "log") == 0;
    bool is_feedback = strcmp(op, "feedback") == 0;
    bool is_activate = strcmp(op, "activate") == 0;
    static const char *const feedback_keys[] = {"event_id",   "conversation_id", "signal",
                                                "outcome_id", "supersedes",      "user_id"};

    proto_w_map(w, 3 + (choice ? 4 : 0) + (is_log ? 2 : 0) + (is_feedback ? 6 : 0) +
                       (is_activate ? 1 : 0));
    proto_w_str(w, "v");
    proto_w_int(w, 1);
    proto_w_str(w, "op");
    proto_w_str(w, strcmp(field, "op") == 0 ? text : op);
    proto_w_str(w, "policy");
    proto_w_str(w, strcmp(field, "policy") == 0 ? text : "faq");
    if (choice || is_activate) {
        proto_w_str(w, "event_id");
        proto_w_str(w, strcmp(field, "event_id") == 0 ? text : "ev-1");
    }
    if (choice) {
        proto_w_str(w, "conversation_id");
        proto_w_str(w, strcmp(field, "conversation_id") == 0 ? text : "conv-1");
        proto_w_str(w, "context");
        proto_w_map(w, 1);
        proto_w_str(w, "embedding");
        proto_w_f32_bin(w, emb, 2);
        proto_w_str(w, "candidates");
        proto_w_array(w, 2);
        for (int i = 0; i < 2; i++) {
            proto_w_map(w, 2);
            proto_w_str(w, "id");
            proto_w_str(w, i == 1 && strcmp(field, "candidates[1].id") == 0 ? text
                           : i == 0                                         ? "a"
                                                                            : "b");
            proto_w_str(w, "base_logit");
            proto_w_double(w, 0.0);
        }
    }
    if (is_log) {
        proto_w_str(w, "chosen");
        proto_w_str(w, strcmp(field, "chosen") == 0 ? text : "a");
        proto_w_str(w, "pmf");
        proto_w_f32_bin(w, emb, 0);
    }
    for (size_t i = 0; is_feedback && i < sizeof(feedback_keys) / sizeof(feedback_keys[0]); i++) {
        proto_w_str(w, feedback_keys[i]);
        proto_w_str(w, strcmp(field, feedback_keys[i]) == 0 ? text : "x-1");
    }
}

static void decode_rejects_strings_that_are_not_utf8(void)
{
    static const struct {
        const char *op, *field;
    } fields[] = {
        {"decide", "op"},
        {"decide", "policy"},
        {"decide", "event_id"},
        {"decide", "conversation_id"},
        {"decide", "candidates[1].id"},
        {"log", "event_id"},
        {"log", "chosen"},
        {"feedback", "policy"},
        {"feedback", "event_id"},
        {"feedback", "conversation_id"},
        {"feedback", "signal"},
        {"feedback", "outcome_id"},
        {"feedback", "supersedes"},
        {"feedback", "user_id"},
        {"activate", "policy"},
        {"activate", "event_id"},
        {"stats", "policy"},
    };
    /* Overlong '/', a surrogate, past U+10FFFF, a truncated euro sign, a byte never in UTF-8. */
    static const char *const bad[] = {"a\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                      "signal\xe2\x82", "\xff"};
    base_buf b;
    proto_writer w;

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
            char want[64];
            (void)snprintf(want, sizeof(want), "'%s' is not valid UTF-8", fields[i].field);
            base_buf_reset(&b);
            proto_writer_init(&w, &b);
            put_with_string(&w, fields[i].op, fields[i].field, bad[j]);
            MUST_OK(proto_writer_finish(&w));
            expect_code(&b, PROTO_E_BAD_REQUEST, want);
        }
    }
    base_buf_fini(&b);
}

static void decode_accepts_utf8_strings(void)
{
    base_buf b;
    proto_writer w;
    proto_request r;
    proto_error err;

    /* 2-, 3- and 4-byte characters, and U+10FFFF, are kept byte for byte. */
    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    proto_writer_init(&w, &b);
    put_with_string(&w, "feedback", "signal", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x91\x8d");
    MUST_OK(proto_writer_finish(&w));
    MUST_OK(proto_request_decode(b.data, b.len, &r, &err));
    TST_STREQ(r.signal, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x91\x8d");
    proto_request_fini(&r);
    base_buf_reset(&b);
    proto_writer_init(&w, &b);
    put_with_string(&w, "decide", "candidates[1].id", "\xf4\x8f\xbf\xbf");
    MUST_OK(proto_writer_finish(&w));
    MUST_OK(proto_request_decode(b.data, b.len, &r, &err));
    TST_STREQ(r.cand[1].id, "\xf4\x8f\xbf\xbf");
    proto_request_fini(&r);
    base_buf_fini(&b);
}

static void decode_rejects_duplicate_keys(void)
{
    base_buf b;
    proto_writer w;

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    proto_writer_init(&w, &b);
    proto_w_map(&w, 3);
    proto_w_str(&w, "v");
    proto_w_int(&w, 1);
    proto_w_str(&w, "op");
    proto_w_str(&w, "health");
    proto_w_str(&w, "v");
    proto_w_int(&w, 1);
    MUST_OK(proto_writer_finish(&w));
    expect_code(&b, PROTO_E_BAD_REQUEST, "duplicate");

    /* A map big enough for the sorting path, with the repeat among unknown keys. */
    base_buf_reset(&b);
    proto_writer_init(&w, &b);
    proto_w_map(&w, 42);
    proto_w_str(&w, "v");
    proto_w_int(&w, 1);
    proto_w_str(&w, "op");
    proto_w_str(&w, "health");
    for (int i = 0; i < 40; i++) {
        char k[16];
        (void)snprintf(k, sizeof(k), "k%d", i == 39 ? 7 : i);
        proto_w_str(&w, k);
        proto_w_nil(&w);
    }
    MUST_OK(proto_writer_finish(&w));
    expect_code(&b, PROTO_E_BAD_REQUEST, "duplicate");
    base_buf_fini(&b);
}

/*
 * Nesting is at most PROTO_MAX_DEPTH containers deep, an empty one included: the root map,
 * then arrays under an unknown key down to an empty one at depth @depth.
 */
static base_err decode_nested_empty(size_t depth, proto_request *r, proto_error *err)
{
    static const uint8_t head[] = {0x83, 0xa1, 'v', 0x01, 0xa2, 'o', 'p',  0xa6,
                                   'h',  'e',  'a', 'l',  't',  'h', 0xa1, 'x'};
    uint8_t msg[sizeof(head) + 2 * PROTO_MAX_DEPTH];
    size_t n = sizeof(head);
    memcpy(msg, head, sizeof(head));
    for (size_t level = 2; level < depth; level++) {
        msg[n++] = 0x91; /* [ one child ] */
    }
    msg[n++] = 0x90; /* [] */
    return proto_request_decode(msg, n, r, err);
}

static void decode_counts_empty_containers_for_depth(void)
{
    proto_request r;
    proto_error err;
    TST_OK(decode_nested_empty(PROTO_MAX_DEPTH, &r, &err));
    TST_EQ(r.op, PROTO_OP_HEALTH);
    proto_request_fini(&r);
    TST_EQ(decode_nested_empty(PROTO_MAX_DEPTH + 1, &r, &err), BASE_ELIMIT);
    TST_EQ(err.code, PROTO_E_TOO_LARGE);
}

static void decode_rejects_malformed_msgpack(void)
{
    static const uint8_t array32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t reserved[] = {0xc1};
    uint8_t deep[40];
    base_buf b;
    proto_writer w;
    proto_request r;
    proto_error err;

    expect_raw_code(array32, sizeof(array32), PROTO_E_BAD_MSGPACK);
    expect_raw_code(reserved, sizeof(reserved), PROTO_E_BAD_MSGPACK);
    TST_EQ(proto_request_decode(array32, sizeof(array32), &r, &err), BASE_EPROTO);
    TST_EQ(proto_request_decode(NULL, 0, &r, &err), BASE_EPROTO);
    memset(deep, 0x91, sizeof(deep)); /* [[[[...]]]] nested past the depth cap */
    deep[sizeof(deep) - 1] = 0xc0;
    expect_raw_code(deep, sizeof(deep), PROTO_E_TOO_LARGE);
    TST_EQ(proto_request_decode(deep, sizeof(deep), &r, &err), BASE_ELIMIT);

    choice_opts o = default_opts("decide");
    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    proto_writer_init(&w, &b);
    put_choice(&w, &o);
    MUST_OK(proto_writer_finish(&w));
    b.len--; /* truncated */
    expect_code(&b, PROTO_E_BAD_MSGPACK, NULL);
    b.len++;
    MUST_OK(base_buf_append(&b, "\xc0", 1)); /* trailing garbage */
    expect_code(&b, PROTO_E_BAD_MSGPACK, NULL);
    base_buf_fini(&b);
}

/*
 * Candidate features: decoded into rows (bin or array), re-encoded to the same request, and
 * refused when some candidates carry them and others do not, counts differ, or a value is
 * not finite.
 */
static void decide_candidate_features(void)
{
    const float emb[2] = {0.5f, -1.0f};
    const float feat[3 * 2] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.5f};
    const char *ids[3] = {"a1", "a2", "a3"};
    const float logits[3] = {0.0f, 1.0f, 2.0f};
    proto_decide_req q = {.policy = "answers",
                          .embedding = emb,
                          .dim = 2,
                          .n_cand = 3,
                          .cand_ids = ids,
                          .base_logits = logits,
                          .features = feat,
                          .action_dim = 2};
    base_buf b, again;
    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    base_buf_init(&again, PROTO_MAX_MSG_BYTES);
    MUST_OK(proto_encode_decide(&b, &q));
    proto_request r;
    proto_error err;
    TST_OK(proto_request_decode(b.data, b.len, &r, &err));
    TST_EQ(r.action_dim, 2);
    TST_TRUE(r.features != NULL && memcmp(r.features, feat, sizeof(feat)) == 0);
    TST_OK(proto_request_encode(&again, &r));
    TST_TRUE(again.len == b.len && memcmp(again.data, b.data, b.len) == 0);
    proto_request_fini(&r);
    base_buf_fini(&again);
    base_buf_fini(&b);

    expect_json_code("{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"context\":{\"embedding\":[1]},"
                     "\"candidates\":[{\"id\":\"a\",\"base_logit\":0,\"features\":[1,2]},"
                     "{\"id\":\"b\",\"base_logit\":0}]}",
                     PROTO_E_BAD_REQUEST, "candidates[1] has no field 'features'");
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"context\":{\"embedding\":[1]},"
                     "\"candidates\":[{\"id\":\"a\",\"base_logit\":0},"
                     "{\"id\":\"b\",\"base_logit\":0,\"features\":[1]}]}",
                     PROTO_E_BAD_REQUEST, "candidates[1] has field 'features'");
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"context\":{\"embedding\":[1]},"
                     "\"candidates\":[{\"id\":\"a\",\"base_logit\":0,\"features\":[1,2]},"
                     "{\"id\":\"b\",\"base_logit\":0,\"features\":[1]}]}",
                     PROTO_E_BAD_REQUEST,
                     "'candidates[1].features' has 1 entries, candidates[0]'s 2");
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"context\":{\"embedding\":[1]},"
                     "\"candidates\":[{\"id\":\"a\",\"base_logit\":0,\"features\":[]}]}",
                     PROTO_E_BAD_REQUEST, "'candidates[0].features' must not be empty");
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"context\":{\"embedding\":[1]},"
                     "\"candidates\":[{\"id\":\"a\",\"base_logit\":0,\"features\":\"x\"}]}",
                     PROTO_E_BAD_REQUEST, "'candidates[0].features' must be a bin of float32");
    expect_json_code("{\"v\":1,\"op\":\"decide\",\"policy\":\"p\",\"context\":{\"embedding\":[1]},"
                     "\"candidates\":[{\"id\":\"a\",\"base_logit\":0,\"features\":[1,1e300]}]}",
                     PROTO_E_NOT_FINITE, "'candidates[0].features[1]' is not finite");
    /* A bin of 5 bytes: named as context.embedding's is (protocol.md, section 2). */
    expect_odd_bin(true, "field 'candidates[0].features' is a bin of 5 bytes, not a multiple of 4");
}

int main(void)
{
    decide_with_bin_embedding_decodes_exactly();
    decide_with_mixed_array_embedding_decodes_identically();
    log_decodes_with_chosen_and_pmf();
    reuse_decodes_like_decode();
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
    decode_counts_empty_containers_for_depth();
    decide_candidate_features();
    return tst_done();
}
