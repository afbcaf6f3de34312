/*
 * storage/codec: round trips of all four records, and rejection of malformed
 * bytes. Malformed inputs are written by hand with the small msgpack writer
 * below (msgpack.h belongs to storage/codec.c alone), starting from a valid
 * record and replacing, omitting or adding one field.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/quant.h"
#include "base/record.h"
#include "storage/codec.h"
#include "tap.h"

/* ---- a minimal msgpack writer for crafted inputs ----------------------- */

static void w_bytes(base_buf *b, const void *p, size_t n)
{
    base_err e = base_buf_append(b, p, n);
    if (e != BASE_OK) {
        TST_OK(e);
    }
}

static void w_u8(base_buf *b, uint8_t v)
{
    w_bytes(b, &v, 1);
}

static void w_be32(base_buf *b, uint32_t v)
{
    uint8_t p[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    w_bytes(b, p, 4);
}

static void w_map(base_buf *b, uint32_t n)
{
    if (n < 16) {
        w_u8(b, (uint8_t)(0x80 | n));
    } else {
        w_u8(b, 0xdf);
        w_be32(b, n);
    }
}

static void w_strn(base_buf *b, const char *s, size_t n)
{
    if (n < 32) {
        w_u8(b, (uint8_t)(0xa0 | n));
    } else {
        w_u8(b, 0xd9);
        w_u8(b, (uint8_t)n);
    }
    w_bytes(b, s, n);
}

static void w_str(base_buf *b, const char *s)
{
    w_strn(b, s, strlen(s));
}

static void w_uint(base_buf *b, uint32_t v)
{
    if (v < 128) {
        w_u8(b, (uint8_t)v);
    } else {
        w_u8(b, 0xce);
        w_be32(b, v);
    }
}

static void w_bin(base_buf *b, const void *p, uint32_t n)
{
    w_u8(b, 0xc6);
    w_be32(b, n);
    w_bytes(b, p, n);
}

static void w_f64(base_buf *b, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    w_u8(b, 0xcb);
    w_be32(b, (uint32_t)(u >> 32));
    w_be32(b, (uint32_t)u);
}

/* Little-endian float32 words for bin vectors. */
static void le_f32(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(u >> (8 * i));
    }
}

/* ---- crafted decisions -------------------------------------------------- */

/*
 * A field override: the value of @key is written as the raw msgpack bytes
 * @raw (or omitted when @omit). @extra adds one more pair (@extra_key ->
 * @raw) at the end instead.
 */
typedef struct mut {
    const char *key;
    const uint8_t *raw;
    size_t raw_len;
    bool omit;
    bool extra;
    const char *as; /* non-NULL: @key's pair is written under this name instead */
} mut;

static const char *const dkeys[] = {"v", "p",  "e",   "c",   "ts", "mv",  "tn",  "src", "d",
                                    "n", "ch", "emb", "act", "lg", "pmf", "dfr", "lsn"};

/* The default value of decision key @k for dim 2, n_cand 2. */
static void w_decision_value(base_buf *b, const char *k)
{
    uint8_t v2[8];
    uint32_t acts[2] = {3, 9};
    uint8_t a2[8];
    le_f32(v2, 0.5f);
    le_f32(v2 + 4, 0.5f);
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 4; j++) {
            a2[i * 4 + j] = (uint8_t)(acts[i] >> (8 * j));
        }
    }
    if (strcmp(k, "v") == 0) {
        w_uint(b, 1);
    } else if (strcmp(k, "p") == 0) {
        w_str(b, "faq");
    } else if (strcmp(k, "e") == 0) {
        w_str(b, "ev-1");
    } else if (strcmp(k, "c") == 0) {
        w_str(b, "");
    } else if (strcmp(k, "d") == 0 || strcmp(k, "n") == 0) {
        w_uint(b, 2);
    } else if (strcmp(k, "act") == 0) {
        w_bin(b, a2, 8);
    } else if (strcmp(k, "emb") == 0 || strcmp(k, "lg") == 0 || strcmp(k, "pmf") == 0) {
        w_bin(b, v2, 8);
    } else if (strcmp(k, "dfr") == 0 || strcmp(k, "lsn") == 0) {
        w_uint(b, 0);
    } else {
        w_uint(b, 1); /* ts, mv, tn, src, ch */
    }
}

static void w_decision(base_buf *b, const mut *m)
{
    size_t n = sizeof(dkeys) / sizeof(dkeys[0]);
    uint32_t pairs =
        (uint32_t)n + (m != NULL && m->extra ? 1u : 0u) - (m != NULL && m->omit ? 1u : 0u);
    w_map(b, pairs);
    for (size_t i = 0; i < n; i++) {
        bool hit = m != NULL && !m->extra && strcmp(m->key, dkeys[i]) == 0;
        if (hit && m->omit) {
            continue;
        }
        w_str(b, hit && m->as != NULL ? m->as : dkeys[i]);
        if (hit) {
            w_bytes(b, m->raw, m->raw_len);
        } else {
            w_decision_value(b, dkeys[i]);
        }
    }
    if (m != NULL && m->extra) {
        w_str(b, m->key);
        w_bytes(b, m->raw, m->raw_len);
    }
}

static base_err decode_crafted(const mut *m)
{
    base_buf b;
    base_decision *d = NULL;
    base_buf_init(&b, 1 << 16);
    w_decision(&b, m);
    base_err e = sto_codec_decode_decision(b.data, b.len, &d);
    base_decision_free(d);
    base_buf_fini(&b);
    return e;
}

static base_err decode_with(const char *key, const uint8_t *raw, size_t len)
{
    mut m = {key, raw, len, false, false, NULL};
    return decode_crafted(&m);
}

/* ---- fixtures ----------------------------------------------------------- */

static base_decision *make_decision(uint32_t dim, uint32_t n_cand)
{
    base_decision *d = base_decision_new(dim, n_cand);
    if (d == NULL) {
        return NULL;
    }
    base_strlcpy(d->policy, "support-faq", sizeof(d->policy));
    base_strlcpy(d->event_id, "ev-0001", sizeof(d->event_id));
    base_strlcpy(d->conversation_id, "conv-42", sizeof(d->conversation_id));
    d->ts_ms = 1700000000123;
    d->model_version = 7;
    d->turn = 3;
    d->source = BASE_SRC_LOG;
    d->chosen = n_cand - 1;
    for (uint32_t i = 0; i < dim; i++) {
        d->embedding[i] = (float)i * 0.25f - 1.0f;
    }
    for (uint32_t i = 0; i < n_cand; i++) {
        d->action[i] = (i * 37u) % BASE_ACTIONS_MAX;
        d->base_logit[i] = -0.125f * (float)i;
        d->pmf[i] = 1.0f / (float)n_cand;
    }
    return d;
}

static bool decision_eq(const base_decision *a, const base_decision *b)
{
    return strcmp(a->policy, b->policy) == 0 && strcmp(a->event_id, b->event_id) == 0 &&
           strcmp(a->conversation_id, b->conversation_id) == 0 &&
           strcmp(a->user_id, b->user_id) == 0 && a->ts_ms == b->ts_ms &&
           a->model_version == b->model_version && a->turn == b->turn && a->source == b->source &&
           a->dim == b->dim && a->n_cand == b->n_cand && a->chosen == b->chosen &&
           a->deferred == b->deferred && a->lsn == b->lsn && a->overflow == b->overflow &&
           a->slot == b->slot && a->prod_version == b->prod_version &&
           a->emb_storage == b->emb_storage && strcmp(a->inbox_id, b->inbox_id) == 0 &&
           strcmp(a->actions_hash, b->actions_hash) == 0 &&
           memcmp(a->embedding, b->embedding, (size_t)a->dim * 4) == 0 &&
           memcmp(a->action, b->action, (size_t)a->n_cand * 4) == 0 &&
           memcmp(a->base_logit, b->base_logit, (size_t)a->n_cand * 4) == 0 &&
           memcmp(a->pmf, b->pmf, (size_t)a->n_cand * 4) == 0 &&
           a->has_breakdown == b->has_breakdown && a->action_dim == b->action_dim &&
           (a->action_dim == 0 ||
            (memcmp(a->features, b->features, (size_t)a->n_cand * a->action_dim * 4) == 0 &&
             memcmp(a->cand_id, b->cand_id, (size_t)a->n_cand * sizeof(*a->cand_id)) == 0)) &&
           (a->has_breakdown == 0 ||
            (memcmp(a->head_score, b->head_score, (size_t)a->n_cand * 4) == 0 &&
             memcmp(a->explore, b->explore, (size_t)a->n_cand * 4) == 0));
}

static void make_outcome(base_outcome *o)
{
    memset(o, 0, sizeof(*o));
    base_strlcpy(o->policy, "support-faq", sizeof(o->policy));
    base_strlcpy(o->event_id, "ev-0001", sizeof(o->event_id));
    base_strlcpy(o->outcome_id, "out-9", sizeof(o->outcome_id));
    base_strlcpy(o->signal, "thumbs_up", sizeof(o->signal));
    base_strlcpy(o->supersedes, "out-8", sizeof(o->supersedes));
    base_strlcpy(o->user_id, "user-77", sizeof(o->user_id));
    o->type = BASE_OUT_SIGNAL;
    o->arrived_ms = 1700000000555;
    o->lsn = 987654321;
    o->value = -0.75;
    o->ts_ms = -5; /* negative timestamps survive as well */
}

static base_snapshot *make_model(uint32_t n_params, uint32_t n_state)
{
    base_snapshot *m = base_snapshot_new(n_params, n_state);
    if (m == NULL) {
        return NULL;
    }
    base_strlcpy(m->policy, "support-faq", sizeof(m->policy));
    base_strlcpy(m->learner, "linucb", sizeof(m->learner));
    base_strlcpy(m->last_joined_id, "1700000000123-4", sizeof(m->last_joined_id));
    base_strlcpy(m->scan_decisions, "1700000000100-0", sizeof(m->scan_decisions));
    base_strlcpy(m->scan_outcomes, "1700000000101-2", sizeof(m->scan_outcomes));
    base_strlcpy(m->scan_joined, "", sizeof(m->scan_joined));
    m->next_lsn = 4242;
    m->parent = 41;
    base_strlcpy(m->spec_version, "h00ff", sizeof(m->spec_version));
    base_strlcpy(m->base_version, "llm-2026-10", sizeof(m->base_version));
    base_strlcpy(m->config_hash, "c0123456789abcdef", sizeof(m->config_hash));
    m->version = UINT64_MAX - 1;
    m->n_updates = 123456789012ull;
    m->ts_ms = 1700000000999;
    m->dim = 8;
    m->n_actions = 4;
    for (uint32_t i = 0; i < n_params; i++) {
        m->params[i] = (float)i / 3.0f;
    }
    for (uint32_t i = 0; i < n_state; i++) {
        m->state[i] = 1.0 / (double)(i + 3);
    }
    return m;
}

/* ---- round trips -------------------------------------------------------- */

static void decision_round_trips_exactly(void)
{
    uint32_t shapes[][2] = {{5, 3}, {0, 1}, {BASE_DIM_MAX, BASE_CAND_MAX}};
    for (size_t s = 0; s < 3; s++) {
        base_decision *d = make_decision(shapes[s][0], shapes[s][1]);
        base_decision *got = NULL;
        base_buf b;
        base_buf_init(&b, 1 << 20);
        TST_TRUE(d != NULL);
        TST_OK(sto_codec_encode_decision(d, &b));
        TST_OK(sto_codec_decode_decision(b.data, b.len, &got));
        TST_TRUE(got != NULL && decision_eq(d, got));
        base_decision_free(got);
        base_decision_free(d);
        base_buf_fini(&b);
    }
}

/*
 * e16 and e8: an embedding rounded to its storage form round-trips to the
 * bit, encodes again to the same bytes, and shrinks the record; one that is
 * not rounded is refused rather than stored as something else.
 */
static void decision_compact_embeddings_round_trip(void)
{
    base_decision *d = make_decision(768, 16);
    base_buf b32, b1, b2;
    base_buf_init(&b32, 1 << 20);
    TST_TRUE(d != NULL);
    if (d == NULL) {
        return;
    }
    for (uint32_t j = 0; j < 768; j++) {
        d->embedding[j] = (float)(sin(0.37 * j) * (j % 5 == 0 ? 3.0 : 0.2));
    }
    TST_OK(sto_codec_encode_decision(d, &b32));
    const base_emb_storage kinds[] = {BASE_EMB_F16, BASE_EMB_I8};
    const size_t saved[] = {768 * 2, 768 * 4 - 770 + 1}; /* e8: a key byte shorter than emb */
    for (int k = 0; k < 2; k++) {
        base_decision *c = base_decision_clone(d), *got = NULL, *again = NULL;
        base_buf_init(&b1, 1 << 20);
        base_buf_init(&b2, 1 << 20);
        c->emb_storage = kinds[k];
        TST_EQ(sto_codec_encode_decision(c, &b1), BASE_EINVAL); /* not rounded yet */
        TST_EQ(b1.len, 0);
        base_emb_round(kinds[k], c->embedding, c->dim);
        TST_OK(sto_codec_encode_decision(c, &b1));
        TST_EQ(b1.len, b32.len - saved[k]);
        TST_OK(sto_codec_decode_decision(b1.data, b1.len, &got));
        TST_TRUE(got != NULL && decision_eq(c, got));
        TST_OK(sto_codec_encode_decision(got, &b2));
        TST_TRUE(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
        TST_OK(sto_codec_decode_decision(b2.data, b2.len, &again));
        TST_TRUE(again != NULL && decision_eq(c, again));
        base_decision_free(again);
        base_decision_free(got);
        base_decision_free(c);
        base_buf_fini(&b1);
        base_buf_fini(&b2);
    }
    base_buf_fini(&b32);
    base_decision_free(d);
}

/* Crafted e16 / e8 fields: the right sizes decode, anything else is refused. */
static void decoder_checks_compact_embeddings(void)
{
    const uint8_t half[] = {0xc4, 4, 0x00, 0x38, 0x00, 0xb8};            /* 0.5, -0.5 */
    const uint8_t half_long[] = {0xc4, 6, 0x00, 0x38, 0x00, 0xb8, 0, 0}; /* 3 values for dim 2 */
    const uint8_t i8[] = {0xc4, 4, 0xf8, 0xff, 64, 0xc0};                /* k = -8: 0.25, -0.25 */
    const uint8_t i8_k[] = {0xc4, 4, 200, 0, 64, 64};                    /* k = 200 */
    const uint8_t i8_short[] = {0xc4, 3, 0xf8, 0xff, 64};
    mut ok16 = {"emb", half, sizeof(half), false, false, "e16"};
    mut ok8 = {"emb", i8, sizeof(i8), false, false, "e8"};
    TST_OK(decode_crafted(&ok16));
    TST_OK(decode_crafted(&ok8));
    mut bad[] = {
        {"emb", half_long, sizeof(half_long), false, false, "e16"},
        {"emb", i8_k, sizeof(i8_k), false, false, "e8"},
        {"emb", i8_short, sizeof(i8_short), false, false, "e8"},
        {"e8", i8, sizeof(i8), false, true, NULL},      /* emb and e8 */
        {"e16", half, sizeof(half), false, true, NULL}, /* emb and e16 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        TST_EQ(decode_crafted(&bad[i]), BASE_EPROTO);
    }
    /* The values are the ones the bytes say, and the storage is recorded. */
    base_buf b;
    base_decision *d = NULL;
    base_buf_init(&b, 1 << 16);
    w_decision(&b, &ok8);
    TST_OK(sto_codec_decode_decision(b.data, b.len, &d));
    TST_TRUE(d != NULL && d->emb_storage == BASE_EMB_I8 && d->embedding[0] == 0.25f &&
             d->embedding[1] == -0.25f);
    base_decision_free(d);
    base_buf_fini(&b);
}

/* "ovf" is written only when set, so records without it (all older ones) still decode. */
static void decision_overflow_mark_is_optional(void)
{
    base_decision *d = make_decision(2, 2);
    base_decision *got = NULL;
    base_buf plain, marked;
    base_buf_init(&plain, 4096);
    base_buf_init(&marked, 4096);
    TST_OK(sto_codec_encode_decision(d, &plain));
    d->overflow = 1;
    TST_OK(sto_codec_encode_decision(d, &marked));
    TST_EQ(marked.len, plain.len + 5); /* "ovf": 1 */
    TST_OK(sto_codec_decode_decision(marked.data, marked.len, &got));
    TST_TRUE(got != NULL && got->overflow == 1 && decision_eq(d, got));
    base_decision_free(got);
    got = NULL;
    TST_OK(sto_codec_decode_decision(plain.data, plain.len, &got));
    TST_TRUE(got != NULL && got->overflow == 0);
    base_decision_free(got);
    d->overflow = 2;
    plain.len = 0;
    TST_EQ(sto_codec_encode_decision(d, &plain), BASE_EINVAL);
    base_decision_free(d);
    base_buf_fini(&plain);
    base_buf_fini(&marked);
}

/* "u" (the customer) is written only when the decision names one; present, it is not empty. */
static void decision_user_is_optional(void)
{
    base_decision *d = make_decision(2, 2);
    base_decision *got = NULL;
    base_buf plain, named;
    base_buf_init(&plain, 4096);
    base_buf_init(&named, 4096);
    TST_OK(sto_codec_encode_decision(d, &plain));
    base_strlcpy(d->user_id, "~0123456789abcdef0123456789abcdef", sizeof(d->user_id));
    TST_OK(sto_codec_encode_decision(d, &named));
    TST_EQ(named.len, plain.len + 2 + 35); /* "u": str8 of 33 bytes */
    TST_OK(sto_codec_decode_decision(named.data, named.len, &got));
    TST_TRUE(got != NULL && decision_eq(d, got));
    base_decision_free(got);
    got = NULL;
    TST_OK(sto_codec_decode_decision(plain.data, plain.len, &got));
    TST_TRUE(got != NULL && got->user_id[0] == '\0');
    base_decision_free(got);
    got = NULL;
    /* An empty "u" is not what the encoder writes: refused. */
    TST_EQ(plain.data[0], 0xde); /* map16: the pair count is in bytes 1 and 2 */
    plain.data[2]++;
    TST_OK(base_buf_append(&plain, "\xa1u\xa0", 3));
    TST_EQ(sto_codec_decode_decision(plain.data, plain.len, &got), BASE_EPROTO);
    plain.data[plain.len - 1] = 0xa1; /* "u": "x" instead decodes */
    TST_OK(base_buf_append(&plain, "x", 1));
    TST_OK(sto_codec_decode_decision(plain.data, plain.len, &got));
    TST_TRUE(got != NULL && strcmp(got->user_id, "x") == 0);
    base_decision_free(got);
    base_decision_free(d);
    base_buf_fini(&plain);
    base_buf_fini(&named);
}

/*
 * The optional string field at offset @off of a snapshot: set to @v it adds @extra bytes and
 * round-trips; unset ("") it is absent and decodes as "". *@plain gets the encoding without
 * it (base_buf_fini() it).
 */
static void model_optional_str(size_t off, const char *v, size_t extra, base_buf *plain)
{
    base_snapshot *m = make_model(3, 2), *gm = NULL;
    base_buf marked;
    base_buf_init(plain, 1 << 16);
    base_buf_init(&marked, 1 << 16);
    TST_OK(sto_codec_encode_model(m, plain));
    memcpy((char *)m + off, v, strlen(v) + 1);
    TST_OK(sto_codec_encode_model(m, &marked));
    TST_EQ(marked.len, plain->len + extra);
    TST_OK(sto_codec_decode_model(marked.data, marked.len, &gm));
    TST_TRUE(gm != NULL && strcmp((const char *)gm + off, v) == 0);
    base_snapshot_free(gm);
    gm = NULL;
    TST_OK(sto_codec_decode_model(plain->data, plain->len, &gm));
    TST_TRUE(gm != NULL && ((const char *)gm + off)[0] == '\0');
    base_snapshot_free(gm);
    base_snapshot_free(m);
    base_buf_fini(&marked);
}

/*
 * The optional string field at offset @off of a closed-set decision, key @key: set to @v it
 * adds the key and the string and round-trips; unset ("") it is absent (the bytes are what
 * they were without it) and decodes as ""; present but empty, it is refused.
 */
static void decision_optional_str(size_t off, const char *key, const char *v)
{
    base_decision *d = make_decision(2, 2);
    base_decision *gd = NULL;
    base_buf plain, marked;
    base_buf_init(&plain, 4096);
    base_buf_init(&marked, 4096);
    TST_OK(sto_codec_encode_decision(d, &plain));
    memcpy((char *)d + off, v, strlen(v) + 1);
    TST_OK(sto_codec_encode_decision(d, &marked));
    TST_EQ(marked.len, plain.len + 1 + strlen(key) + 1 + strlen(v)); /* two fixstrs */
    TST_OK(sto_codec_decode_decision(marked.data, marked.len, &gd));
    TST_TRUE(gd != NULL && decision_eq(d, gd) && strcmp((const char *)gd + off, v) == 0);
    base_decision_free(gd);
    gd = NULL;
    TST_OK(sto_codec_decode_decision(plain.data, plain.len, &gd));
    TST_TRUE(gd != NULL && ((const char *)gd + off)[0] == '\0');
    base_decision_free(gd);
    gd = NULL;
    TST_EQ(plain.data[0], 0xde);
    plain.data[2]++; /* map16 pair count: one more pair, key: "" */
    uint8_t k = (uint8_t)(0xa0u | strlen(key));
    TST_OK(base_buf_append(&plain, &k, 1));
    TST_OK(base_buf_append(&plain, key, strlen(key)));
    TST_OK(base_buf_append(&plain, "\xa0", 1));
    TST_EQ(sto_codec_decode_decision(plain.data, plain.len, &gd), BASE_EPROTO);
    TST_TRUE(gd == NULL);
    base_decision_free(d);
    base_buf_fini(&plain);
    base_buf_fini(&marked);
}

/*
 * shared = on: a forwarded decision or outcome carries its inbox entry id ("ib") and a
 * checkpoint the last entry taken ("inb"); all three are absent otherwise (records of a
 * lone instance are byte for byte what they were), round-trip when present, and an empty
 * value is refused.
 */
static void inbox_ids_are_optional(void)
{
    base_outcome o, *go = NULL;
    base_buf plain, marked;
    base_buf_init(&plain, 4096);
    base_buf_init(&marked, 4096);
    decision_optional_str(offsetof(base_decision, inbox_id), "ib", "1700000000123-7");

    make_outcome(&o);
    base_buf_reset(&plain);
    base_buf_reset(&marked);
    TST_OK(sto_codec_encode_outcome(&o, &plain));
    base_strlcpy(o.inbox_id, "1700000000123-8", sizeof(o.inbox_id));
    TST_OK(sto_codec_encode_outcome(&o, &marked));
    TST_EQ(marked.len, plain.len + 3 + 16);
    TST_OK(sto_codec_decode_outcome(marked.data, marked.len, &go));
    TST_TRUE(go != NULL && strcmp(go->inbox_id, o.inbox_id) == 0 && go->lsn == o.lsn);
    base_free(go);
    go = NULL;
    TST_OK(sto_codec_decode_outcome(plain.data, plain.len, &go));
    TST_TRUE(go != NULL && go->inbox_id[0] == '\0');
    base_free(go);

    base_buf_fini(&plain);
    /* "inb": str of 15 bytes */
    model_optional_str(offsetof(base_snapshot, inbox_pos), "1700000000999-0", 4 + 16, &plain);
    base_buf_fini(&plain);
    base_buf_fini(&marked);
}

/*
 * An open action set's record carries "ad", "af" and "ids": it round-trips (and so does a
 * clone), the three keys come together or not at all, and a closed record has none.
 */
static void decision_open_set_round_trips(void)
{
    base_decision *d = base_decision_new_open(3, 4, 5);
    base_decision *got = NULL;
    base_buf b;
    base_buf_init(&b, 1 << 16);
    TST_TRUE(d != NULL && d->features == d->embedding + 3 && d->cand_id != NULL);
    base_strlcpy(d->policy, "answers", sizeof(d->policy));
    base_strlcpy(d->event_id, "ev-open", sizeof(d->event_id));
    for (uint32_t i = 0; i < 3 + 4 * 5; i++) {
        d->embedding[i] = (float)i * 0.5f - 2.0f;
    }
    for (uint32_t c = 0; c < 4; c++) {
        snprintf(d->cand_id[c], sizeof(d->cand_id[c]), "answer-%u", c * 11u);
        d->pmf[c] = 0.25f;
    }
    d->chosen = 2;
    TST_OK(sto_codec_encode_decision(d, &b));
    TST_OK(sto_codec_decode_decision(b.data, b.len, &got));
    TST_TRUE(got != NULL && decision_eq(d, got) && got->features == got->embedding + 3);
    base_decision *c = base_decision_clone(d);
    TST_TRUE(c != NULL && decision_eq(d, c) && c->features == c->embedding + 3 &&
             c->cand_id != d->cand_id);
    base_decision_free(c);
    base_decision_free(got);
    got = NULL;
    /* An empty id or a non-finite feature is refused by the encoder. */
    d->cand_id[1][0] = '\0';
    size_t len = b.len;
    TST_EQ(sto_codec_encode_decision(d, &b), BASE_EINVAL);
    TST_EQ(b.len, len);
    d->cand_id[1][0] = 'x';
    d->features[7] = NAN;
    TST_EQ(sto_codec_encode_decision(d, &b), BASE_EINVAL);
    /* "ad" without "af" and "ids": refused. */
    base_decision *closed = make_decision(2, 2);
    base_buf cb;
    base_buf_init(&cb, 4096);
    TST_OK(sto_codec_encode_decision(closed, &cb));
    TST_EQ(cb.data[0], 0xde);
    cb.data[2]++;
    TST_OK(base_buf_append(&cb,
                           "\xa2"
                           "ad\x05",
                           4));
    TST_EQ(sto_codec_decode_decision(cb.data, cb.len, &got), BASE_EPROTO);
    base_decision_free(closed);
    base_decision_free(d);
    base_buf_fini(&cb);
    base_buf_fini(&b);
}

/* "sl" and "pv" are written only for production-slot decisions or a known production version. */
static void decision_slot_fields_are_optional(void)
{
    base_decision *d = make_decision(2, 2);
    base_decision *got = NULL;
    base_buf plain, slotted;
    base_buf_init(&plain, 4096);
    base_buf_init(&slotted, 4096);
    TST_OK(sto_codec_encode_decision(d, &plain));
    d->slot = BASE_SLOT_PRODUCTION;
    d->prod_version = 123456;
    TST_OK(sto_codec_encode_decision(d, &slotted));
    TST_TRUE(slotted.len > plain.len);
    TST_OK(sto_codec_decode_decision(slotted.data, slotted.len, &got));
    TST_TRUE(got != NULL && got->slot == BASE_SLOT_PRODUCTION && got->prod_version == 123456 &&
             decision_eq(d, got));
    base_decision_free(got);
    got = NULL;
    TST_OK(sto_codec_decode_decision(plain.data, plain.len, &got));
    TST_TRUE(got != NULL && got->slot == BASE_SLOT_ONLINE && got->prod_version == 0);
    base_decision_free(got);
    d->slot = 2;
    plain.len = 0;
    TST_EQ(sto_codec_encode_decision(d, &plain), BASE_EINVAL);
    base_decision_free(d);
    base_buf_fini(&plain);
    base_buf_fini(&slotted);
}

/* "sc" and "xs" (the breakdown) come as a pair; records without them decode with none. */
static void decision_breakdown_is_optional(void)
{
    base_decision *d = make_decision(2, 3);
    base_decision *got = NULL;
    base_buf plain, full;
    base_buf_init(&plain, 4096);
    base_buf_init(&full, 4096);
    TST_OK(sto_codec_encode_decision(d, &plain));
    d->has_breakdown = 1;
    for (uint32_t c = 0; c < 3; c++) {
        d->head_score[c] = -1.25f + (float)c;
        d->explore[c] = 0.01f * (float)(c + 1);
    }
    TST_OK(sto_codec_encode_decision(d, &full));
    TST_EQ(full.len, plain.len + 2 * (3 + 2 + 12)); /* key fixstr, bin8 header, 3 floats */
    TST_OK(sto_codec_decode_decision(full.data, full.len, &got));
    TST_TRUE(got != NULL && got->has_breakdown == 1 && decision_eq(d, got));
    base_decision_free(got);
    got = NULL;
    TST_OK(sto_codec_decode_decision(plain.data, plain.len, &got));
    TST_TRUE(got != NULL && got->has_breakdown == 0);
    base_decision_free(got);
    /* Only one of the pair: malformed. Cut "xs" off the end and fix the map count. */
    base_buf half;
    base_buf_init(&half, 4096);
    TST_OK(base_buf_append(&half, full.data, full.len - (3 + 2 + 12)));
    TST_TRUE(half.data[0] == 0xde); /* map16: 19 keys */
    half.data[2]--;
    got = NULL;
    TST_EQ(sto_codec_decode_decision(half.data, half.len, &got), BASE_EPROTO);
    d->explore[1] = NAN;
    plain.len = 0;
    TST_EQ(sto_codec_encode_decision(d, &plain), BASE_EINVAL);
    base_decision_free(d);
    base_buf_fini(&half);
    base_buf_fini(&plain);
    base_buf_fini(&full);
}

/*
 * The action list's hash ("acts") round-trips, is absent when "" (the bytes of a snapshot
 * without it are unchanged), and an empty one is refused.
 */
static void model_actions_hash_is_optional(void)
{
    base_snapshot *gm = NULL;
    base_buf plain;
    /* "acts": str of 17 bytes */
    model_optional_str(offsetof(base_snapshot, actions_hash), "a0123456789abcdef", 5 + 18, &plain);
    /* One more pair, "acts": "" (map16 count in bytes 1-2). */
    TST_EQ(plain.data[0], 0xde);
    plain.data[2]++;
    TST_OK(base_buf_append(&plain,
                           "\xa4"
                           "acts\xa0",
                           6));
    TST_EQ(sto_codec_decode_model(plain.data, plain.len, &gm), BASE_EPROTO);
    TST_TRUE(gm == NULL);
    base_buf_fini(&plain);
}

/*
 * A closed-set decision records its action list ("acts") as a snapshot does: optional, and
 * refused empty. An open set's decision has no list: the encoder refuses one there, and the
 * decoder refuses "acts" beside "ad".
 */
static void decision_actions_hash_is_optional(void)
{
    decision_optional_str(offsetof(base_decision, actions_hash), "acts", "a0123456789abcdef");
    base_decision *d = base_decision_new_open(2, 2, 3);
    base_decision *got = NULL;
    base_buf b;
    base_buf_init(&b, 4096);
    TST_TRUE(d != NULL);
    base_strlcpy(d->policy, "answers", sizeof(d->policy));
    base_strlcpy(d->cand_id[0], "x", sizeof(d->cand_id[0]));
    base_strlcpy(d->cand_id[1], "y", sizeof(d->cand_id[1]));
    d->pmf[0] = d->pmf[1] = 0.5f;
    TST_OK(sto_codec_encode_decision(d, &b));
    base_strlcpy(d->actions_hash, "a0123456789abcdef", sizeof(d->actions_hash));
    size_t len = b.len;
    TST_EQ(sto_codec_encode_decision(d, &b), BASE_EINVAL);
    TST_EQ(b.len, len);
    TST_EQ(b.data[0], 0xde);
    b.data[2]++;
    TST_OK(base_buf_append(&b,
                           "\xa4"
                           "acts\xa2"
                           "a1",
                           8));
    TST_EQ(sto_codec_decode_decision(b.data, b.len, &got), BASE_EPROTO);
    TST_TRUE(got == NULL);
    base_decision_free(d);
    base_buf_fini(&b);
}

/* A snapshot's head settings round-trip; without them the snapshot still decodes, with "". */
static void model_settings_round_trip_and_are_optional(void)
{
    base_snapshot *m = make_model(4, 2);
    base_snapshot *got = NULL;
    base_buf b;
    base_buf_init(&b, 1 << 16);
    TST_OK(sto_codec_encode_model(m, &b));
    TST_OK(sto_codec_decode_model(b.data, b.len, &got));
    TST_TRUE(got != NULL && got->settings.explorer[0] == '\0');
    base_snapshot_free(got);
    got = NULL;
    base_head_settings st = {.explorer = "igw",
                             .epsilon = 0.02,
                             .temperature = 1.5,
                             .learning_rate = 0.25,
                             .lambda = 3.0,
                             .prior_mean = 0.4,
                             .base_weight = 1.0,
                             .kl = 0.3,
                             .gamma = 900.0,
                             .ucb_alpha = 0.5,
                             .seed = 0xfeedfacecafebeefULL};
    m->settings = st;
    b.len = 0;
    TST_OK(sto_codec_encode_model(m, &b));
    TST_OK(sto_codec_decode_model(b.data, b.len, &got));
    TST_TRUE(got != NULL);
    if (got != NULL) {
        TST_STREQ(got->settings.explorer, "igw");
        TST_TRUE(got->settings.epsilon == 0.02 && got->settings.temperature == 1.5 &&
                 got->settings.learning_rate == 0.25 && got->settings.lambda == 3.0 &&
                 got->settings.prior_mean == 0.4 && got->settings.base_weight == 1.0 &&
                 got->settings.kl == 0.3 && got->settings.gamma == 900.0 &&
                 got->settings.ucb_alpha == 0.5 && got->settings.seed == st.seed);
    }
    base_snapshot_free(got);
    m->settings.gamma = NAN;
    b.len = 0;
    TST_EQ(sto_codec_encode_model(m, &b), BASE_EINVAL);
    base_snapshot_free(m);
    base_buf_fini(&b);
}

/* A portfolio's learners and selector round-trip bit for bit; a partial section is refused. */
static void model_portfolio_round_trips(void)
{
    base_snapshot *m = make_model(4, 2);
    base_snapshot *got = NULL;
    base_buf b;
    base_buf_init(&b, 1 << 16);
    base_strlcpy(m->pf_members, "ridge/greedy:0.01,ridge/ucb:0.25,iwr/greedy:0.01",
                 sizeof(m->pf_members));
    m->pf_n_learners = 2;
    m->pf_learner = calloc(2, sizeof(*m->pf_learner));
    m->pf_learner[0] = make_model(3, 5);
    m->pf_learner[1] = make_model(6, 0);
    m->pf_learner[1]->n_updates = 77;
    base_strlcpy(m->pf_learner[1]->learner, "iwr", sizeof(m->pf_learner[1]->learner));
    m->pf_n_sel = 3;
    m->pf_sel = calloc(3, sizeof(double));
    m->pf_sel[0] = 1.0;
    m->pf_sel[1] = -0.125;
    m->pf_sel[2] = 1e300;
    TST_OK(sto_codec_encode_model(m, &b));
    TST_OK(sto_codec_decode_model(b.data, b.len, &got));
    TST_TRUE(got != NULL);
    if (got != NULL) {
        TST_STREQ(got->pf_members, m->pf_members);
        TST_EQ(got->pf_n_learners, 2);
        TST_EQ(got->pf_n_sel, 3);
        TST_TRUE(memcmp(got->pf_sel, m->pf_sel, 3 * sizeof(double)) == 0);
        for (uint32_t i = 0; i < 2 && got->pf_n_learners == 2; i++) {
            const base_snapshot *x = got->pf_learner[i], *y = m->pf_learner[i];
            TST_STREQ(x->learner, y->learner);
            TST_TRUE(x->n_updates == y->n_updates && x->n_params == y->n_params &&
                     x->n_state == y->n_state);
            TST_TRUE(memcmp(x->params, y->params, y->n_params * sizeof(float)) == 0);
            TST_TRUE(y->n_state == 0 ||
                     memcmp(x->state, y->state, y->n_state * sizeof(double)) == 0);
        }
    }
    base_snapshot_free(got);
    got = NULL;
    /* A portfolio key missing: the record is refused, nothing returned. */
    static const char *const drop[] = {"pfm", "pfs", "pfln", "pfnu", "pfw", "pfst"};
    for (size_t k = 0; k < sizeof(drop) / sizeof(drop[0]); k++) {
        /* Rename the key in place to one the decoder skips (same length: "zz..."). */
        base_buf c;
        base_buf_init(&c, 1 << 16);
        TST_OK(base_buf_append(&c, b.data, b.len));
        size_t kl = strlen(drop[k]);
        uint8_t *hit = NULL;
        for (size_t i = 0; i + kl + 1 <= c.len && hit == NULL; i++) {
            if (c.data[i] == (uint8_t)(0xa0 | kl) && memcmp(c.data + i + 1, drop[k], kl) == 0) {
                hit = c.data + i + 1;
            }
        }
        TST_TRUE(hit != NULL);
        if (hit != NULL) {
            memset(hit, 'z', kl);
        }
        TST_EQ(sto_codec_decode_model(c.data, c.len, &got), BASE_EPROTO);
        TST_TRUE(got == NULL);
        base_buf_fini(&c);
    }
    /* Not finite: refused at encoding. */
    m->pf_sel[1] = NAN;
    b.len = 0;
    TST_EQ(sto_codec_encode_model(m, &b), BASE_EINVAL);
    base_snapshot_free(m);
    base_buf_fini(&b);
}

/*
 * The feature map round-trips beside the settings; snapshots without it
 * decode with features "" (linear), and a map missing one of its three
 * keys is refused.
 */
static void model_feature_map_round_trips_and_is_optional(void)
{
    base_snapshot *m = make_model(4, 2);
    base_snapshot *got = NULL;
    base_buf b;
    base_buf_init(&b, 1 << 16);
    base_head_settings st = {.explorer = "greedy", .epsilon = 0.01, .temperature = 1.0};
    m->settings = st;
    TST_OK(sto_codec_encode_model(m, &b));
    TST_OK(sto_codec_decode_model(b.data, b.len, &got));
    TST_TRUE(got != NULL && got->settings.features[0] == '\0' && got->settings.rff_dim == 0);
    base_snapshot_free(got);
    got = NULL;
    (void)base_strlcpy(m->settings.features, "rff", sizeof(m->settings.features));
    m->settings.rff_dim = 64;
    m->settings.bandwidth = 0.5;
    b.len = 0;
    TST_OK(sto_codec_encode_model(m, &b));
    TST_OK(sto_codec_decode_model(b.data, b.len, &got));
    TST_TRUE(got != NULL);
    if (got != NULL) {
        TST_STREQ(got->settings.features, "rff");
        TST_TRUE(got->settings.rff_dim == 64 && got->settings.bandwidth == 0.5);
        TST_STREQ(got->settings.explorer, "greedy");
    }
    base_snapshot_free(got);
    got = NULL;
    /* Rename "hfd" to "hfx": an unknown key is skipped, so the map lacks rff_dim. */
    bool renamed = false;
    for (size_t i = 0; i + 4 <= b.len && !renamed; i++) {
        if (memcmp(b.data + i, "\xa3hfd", 4) == 0) {
            b.data[i + 3] = 'x';
            renamed = true;
        }
    }
    TST_TRUE(renamed);
    TST_EQ(sto_codec_decode_model(b.data, b.len, &got), BASE_EPROTO);
    TST_TRUE(got == NULL);
    m->settings.bandwidth = INFINITY;
    b.len = 0;
    TST_EQ(sto_codec_encode_model(m, &b), BASE_EINVAL);
    /* An open action set's head: "had" and "hid" round-trip, and come together. */
    m->settings.bandwidth = 0.5;
    m->settings.action_dim = 16;
    m->settings.interaction_dim = 15;
    b.len = 0;
    TST_OK(sto_codec_encode_model(m, &b));
    TST_OK(sto_codec_decode_model(b.data, b.len, &got));
    TST_TRUE(got != NULL && got->settings.action_dim == 16 && got->settings.interaction_dim == 15);
    base_snapshot_free(got);
    got = NULL;
    renamed = false;
    for (size_t i = 0; i + 4 <= b.len && !renamed; i++) {
        if (memcmp(b.data + i, "\xa3hid", 4) == 0) {
            b.data[i + 3] = 'x';
            renamed = true;
        }
    }
    TST_TRUE(renamed);
    TST_EQ(sto_codec_decode_model(b.data, b.len, &got), BASE_EPROTO);
    base_snapshot_free(m);
    base_buf_fini(&b);
}

static void decision_keeps_full_length_strings(void)
{
    base_decision *d = make_decision(1, 1);
    base_decision *got = NULL;
    base_buf b;
    base_buf_init(&b, 1 << 16);
    memset(d->policy, 'p', BASE_NAME_MAX);
    d->policy[BASE_NAME_MAX] = '\0';
    memset(d->event_id, 'e', BASE_ID_MAX);
    d->event_id[BASE_ID_MAX] = '\0';
    TST_OK(sto_codec_encode_decision(d, &b));
    TST_OK(sto_codec_decode_decision(b.data, b.len, &got));
    TST_TRUE(got != NULL && decision_eq(d, got));
    base_decision_free(got);
    base_decision_free(d);
    base_buf_fini(&b);
}

static void outcome_round_trips_exactly(void)
{
    base_outcome o, *got = NULL;
    base_buf b;
    make_outcome(&o);
    base_buf_init(&b, 1 << 16);
    TST_OK(sto_codec_encode_outcome(&o, &b));
    TST_OK(sto_codec_decode_outcome(b.data, b.len, &got));
    TST_TRUE(got != NULL);
    if (got != NULL) {
        TST_STREQ(got->policy, o.policy);
        TST_STREQ(got->event_id, o.event_id);
        TST_STREQ(got->conversation_id, "");
        TST_STREQ(got->outcome_id, o.outcome_id);
        TST_STREQ(got->signal, o.signal);
        TST_TRUE(got->value == o.value); /* exact: float64 on the wire */
        TST_EQ(got->ts_ms, o.ts_ms);
        TST_STREQ(got->supersedes, "out-8");
        TST_STREQ(got->user_id, "user-77");
        TST_EQ(got->type, BASE_OUT_SIGNAL);
        TST_EQ(got->arrived_ms, 1700000000555);
        TST_EQ(got->lsn, 987654321);
    }
    base_free(got);
    base_buf_fini(&b);
}

static void joined_round_trips_exactly(void)
{
    base_joined *j = base_joined_new(make_decision(4, 2));
    base_joined *got = NULL;
    base_buf b;
    base_buf_init(&b, 1 << 16);
    TST_TRUE(j != NULL && j->decision != NULL);
    j->reward = 0.3;
    j->n_outcomes = 2;
    j->defaulted = true;
    j->joined_ts_ms = 1700000060000;
    j->credit = BASE_CREDIT_DISCOUNTED;
    j->share = 0.729;
    j->decision->deferred = 1;
    base_strlcpy(j->spec_version, "cs-2026-11", sizeof(j->spec_version));
    TST_OK(sto_codec_encode_joined(j, &b));
    TST_OK(sto_codec_decode_joined(b.data, b.len, &got));
    TST_TRUE(got != NULL && decision_eq(j->decision, got->decision));
    if (got != NULL) {
        TST_TRUE(got->reward == 0.3);
        TST_EQ(got->n_outcomes, 2);
        TST_TRUE(got->defaulted);
        TST_TRUE(!got->unknown);
        TST_EQ(got->joined_ts_ms, 1700000060000);
        TST_EQ(got->credit, BASE_CREDIT_DISCOUNTED);
        TST_TRUE(got->share == 0.729);
        TST_EQ(got->decision->deferred, 1);
        TST_STREQ(got->spec_version, "cs-2026-11");
    }
    base_joined_free(got);
    base_joined_free(j);
    base_buf_fini(&b);
}

static void model_round_trips_exactly(void)
{
    base_snapshot *m = make_model(40, 17);
    base_snapshot *got = NULL;
    base_buf b;
    base_buf_init(&b, 1 << 16);
    TST_OK(sto_codec_encode_model(m, &b));
    TST_OK(sto_codec_decode_model(b.data, b.len, &got));
    TST_TRUE(got != NULL);
    if (got != NULL) {
        TST_STREQ(got->policy, m->policy);
        TST_STREQ(got->learner, m->learner);
        TST_STREQ(got->last_joined_id, m->last_joined_id);
        TST_TRUE(got->version == m->version && got->n_updates == m->n_updates);
        TST_EQ(got->ts_ms, m->ts_ms);
        TST_EQ(got->dim, 8);
        TST_EQ(got->n_actions, 4);
        TST_EQ(got->n_params, 40);
        TST_EQ(got->n_state, 17);
        TST_STREQ(got->scan_decisions, "1700000000100-0");
        TST_STREQ(got->scan_outcomes, "1700000000101-2");
        TST_STREQ(got->scan_joined, "");
        TST_EQ(got->next_lsn, 4242);
        TST_EQ(got->parent, 41);
        TST_STREQ(got->spec_version, "h00ff");
        TST_STREQ(got->base_version, "llm-2026-10");
        TST_STREQ(got->config_hash, "c0123456789abcdef");
        TST_TRUE(memcmp(got->params, m->params, 40 * 4) == 0);
        TST_TRUE(memcmp(got->state, m->state, 17 * 8) == 0);
    }
    base_snapshot_free(got);
    base_snapshot_free(m);
    base_buf_fini(&b);
}

static void empty_model_round_trips(void)
{
    base_snapshot *m = make_model(0, 0);
    base_snapshot *got = NULL;
    base_buf b;
    base_buf_init(&b, 1 << 16);
    m->last_joined_id[0] = '\0';
    TST_OK(sto_codec_encode_model(m, &b));
    TST_OK(sto_codec_decode_model(b.data, b.len, &got));
    TST_TRUE(got != NULL && got->n_params == 0 && got->n_state == 0 &&
             got->last_joined_id[0] == '\0');
    base_snapshot_free(got);
    base_snapshot_free(m);
    base_buf_fini(&b);
}

static void crafted_decision_baseline_decodes(void)
{
    /* Guards the rejection tests below: without a mutation the bytes are valid. */
    TST_OK(decode_crafted(NULL));
}

/* ---- encoder refusals --------------------------------------------------- */

static void encoder_refuses_invalid_records_and_keeps_buffer(void)
{
    base_decision *d = make_decision(3, 2);
    base_buf b;
    base_buf_init(&b, 1 << 16);
    TST_OK(base_buf_append(&b, "xy", 2));
    d->chosen = 2;
    TST_EQ(sto_codec_encode_decision(d, &b), BASE_EINVAL);
    d->chosen = 0;
    d->embedding[1] = NAN;
    TST_EQ(sto_codec_encode_decision(d, &b), BASE_EINVAL);
    d->embedding[1] = 0.0f;
    d->action[0] = BASE_ACTIONS_MAX;
    TST_EQ(sto_codec_encode_decision(d, &b), BASE_EINVAL);
    TST_EQ(b.len, 2);
    base_buf_fini(&b);

    base_buf_init(&b, 40); /* smaller than any decision */
    d->action[0] = 0;
    TST_OK(base_buf_append(&b, "xy", 2));
    TST_EQ(sto_codec_encode_decision(d, &b), BASE_ELIMIT);
    TST_EQ(b.len, 2);
    base_buf_fini(&b);
    base_decision_free(d);

    base_outcome o;
    make_outcome(&o);
    o.value = INFINITY;
    base_buf_init(&b, 1 << 16);
    TST_EQ(sto_codec_encode_outcome(&o, &b), BASE_EINVAL);
    TST_EQ(b.len, 0);
    base_buf_fini(&b);
}

/* ---- decoder rejections ------------------------------------------------- */

static void decoders_reject_every_truncation(void)
{
    base_decision *d = make_decision(3, 2);
    base_joined *j = base_joined_new(make_decision(2, 2));
    base_snapshot *m = make_model(3, 2);
    base_outcome o;
    base_buf bd, bo, bj, bm;
    size_t bad = 0, total = 0;

    make_outcome(&o);
    base_buf_init(&bd, 1 << 16);
    base_buf_init(&bo, 1 << 16);
    base_buf_init(&bj, 1 << 16);
    base_buf_init(&bm, 1 << 16);
    TST_OK(sto_codec_encode_decision(d, &bd));
    TST_OK(sto_codec_encode_outcome(&o, &bo));
    TST_OK(sto_codec_encode_joined(j, &bj));
    TST_OK(sto_codec_encode_model(m, &bm));
    for (size_t n = 0; n < bd.len; n++, total++) {
        base_decision *x = NULL;
        bad += sto_codec_decode_decision(bd.data, n, &x) == BASE_EPROTO && x == NULL;
    }
    for (size_t n = 0; n < bo.len; n++, total++) {
        base_outcome *x = NULL;
        bad += sto_codec_decode_outcome(bo.data, n, &x) == BASE_EPROTO && x == NULL;
    }
    for (size_t n = 0; n < bj.len; n++, total++) {
        base_joined *x = NULL;
        bad += sto_codec_decode_joined(bj.data, n, &x) == BASE_EPROTO && x == NULL;
    }
    for (size_t n = 0; n < bm.len; n++, total++) {
        base_snapshot *x = NULL;
        bad += sto_codec_decode_model(bm.data, n, &x) == BASE_EPROTO && x == NULL;
    }
    TST_EQ(bad, total);

    /* A trailing byte after a complete record is rejected too. */
    TST_OK(base_buf_append(&bo, "\xc0", 1));
    base_outcome *x = NULL;
    TST_EQ(sto_codec_decode_outcome(bo.data, bo.len, &x), BASE_EPROTO);

    base_buf_fini(&bd);
    base_buf_fini(&bo);
    base_buf_fini(&bj);
    base_buf_fini(&bm);
    base_decision_free(d);
    base_joined_free(j);
    base_snapshot_free(m);
}

static void decoders_reject_huge_counts_in_short_input(void)
{
    /* A 5-byte array32 header claiming 4 G elements (msgpack-c would reserve GiBs). */
    static const uint8_t arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t map32[] = {0xdf, 0x7f, 0xff, 0xff, 0xff, 0xa1, 'v', 0x01};
    static const uint8_t bin32[] = {0x81, 0xa1, 'x', 0xc6, 0xff, 0xff, 0xff, 0xf0, 0x00};
    const uint8_t *in[] = {arr32, map32, bin32};
    size_t lens[] = {sizeof(arr32), sizeof(map32), sizeof(bin32)};
    for (size_t i = 0; i < 3; i++) {
        base_decision *d = NULL;
        base_outcome *o = NULL;
        base_joined *j = NULL;
        base_snapshot *m = NULL;
        TST_EQ(sto_codec_decode_decision(in[i], lens[i], &d), BASE_EPROTO);
        TST_EQ(sto_codec_decode_outcome(in[i], lens[i], &o), BASE_EPROTO);
        TST_EQ(sto_codec_decode_joined(in[i], lens[i], &j), BASE_EPROTO);
        TST_EQ(sto_codec_decode_model(in[i], lens[i], &m), BASE_EPROTO);
    }
}

static void decoder_rejects_wrong_version(void)
{
    static const uint8_t v2[] = {0x02};
    static const uint8_t v_str[] = {0xa1, '1'};
    TST_EQ(decode_with("v", v2, sizeof(v2)), BASE_EPROTO);
    TST_EQ(decode_with("v", v_str, sizeof(v_str)), BASE_EPROTO);
    mut omit = {"v", NULL, 0, true, false, NULL};
    TST_EQ(decode_crafted(&omit), BASE_EPROTO);
}

static void decoder_rejects_wrong_types(void)
{
    static const uint8_t str_x[] = {0xa1, 'x'};
    static const uint8_t int_1[] = {0x01};
    static const uint8_t neg_1[] = {0xff};
    static const uint8_t nil[] = {0xc0};
    static const uint8_t f64_2[] = {0xcb, 0x40, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t arr_emb[] = {0x92, 0xca, 0, 0, 0, 0, 0xca, 0, 0, 0, 0};
    static const uint8_t str_emb[] = {0xa8, 0, 0, 0, 0, 0, 0, 0, 0};
    TST_EQ(decode_with("ts", str_x, sizeof(str_x)), BASE_EPROTO);
    TST_EQ(decode_with("p", int_1, sizeof(int_1)), BASE_EPROTO);
    TST_EQ(decode_with("e", nil, sizeof(nil)), BASE_EPROTO);
    TST_EQ(decode_with("d", neg_1, sizeof(neg_1)), BASE_EPROTO);
    TST_EQ(decode_with("n", f64_2, sizeof(f64_2)), BASE_EPROTO);
    TST_EQ(decode_with("emb", arr_emb, sizeof(arr_emb)), BASE_EPROTO);
    TST_EQ(decode_with("emb", str_emb, sizeof(str_emb)), BASE_EPROTO);
    TST_EQ(decode_with("src", f64_2, sizeof(f64_2)), BASE_EPROTO);
    /* A number past its field's range is the wrong type too. */
    static const uint8_t u33[] = {0xcf, 0, 0, 0, 1, 0, 0, 0, 0};
    TST_EQ(decode_with("tn", u33, sizeof(u33)), BASE_EPROTO);
    static const uint8_t src9[] = {0x09};
    TST_EQ(decode_with("src", src9, sizeof(src9)), BASE_EPROTO);
}

static void decoder_rejects_oversize_strings(void)
{
    base_buf raw;
    base_buf_init(&raw, 256);
    char s[BASE_ID_MAX + 2];
    memset(s, 'a', sizeof(s));
    w_strn(&raw, s, BASE_ID_MAX + 1);
    TST_EQ(decode_with("e", raw.data, raw.len), BASE_EPROTO);
    TST_EQ(decode_with("p", raw.data, raw.len), BASE_EPROTO);
    base_buf_reset(&raw);
    w_strn(&raw, s, BASE_ID_MAX);
    TST_OK(decode_with("e", raw.data, raw.len));
    base_buf_reset(&raw);
    w_strn(&raw, "a\0b", 3); /* an embedded NUL would truncate the C string */
    TST_EQ(decode_with("c", raw.data, raw.len), BASE_EPROTO);
    base_buf_fini(&raw);
}

static void decoder_rejects_inconsistent_vectors(void)
{
    uint8_t z[12] = {0};
    base_buf raw;
    base_buf_init(&raw, 256);
    w_bin(&raw, z, 12); /* 3 floats for dim 2 */
    TST_EQ(decode_with("emb", raw.data, raw.len), BASE_EPROTO);
    TST_EQ(decode_with("pmf", raw.data, raw.len), BASE_EPROTO);
    TST_EQ(decode_with("act", raw.data, raw.len), BASE_EPROTO);
    base_buf_reset(&raw);
    w_bin(&raw, z, 7); /* not a multiple of 4 */
    TST_EQ(decode_with("lg", raw.data, raw.len), BASE_EPROTO);
    static const uint8_t n3[] = {0x03};
    TST_EQ(decode_with("n", n3, sizeof(n3)), BASE_EPROTO);
    static const uint8_t n0[] = {0x00};
    TST_EQ(decode_with("n", n0, sizeof(n0)), BASE_EPROTO);
    static const uint8_t d_big[] = {0xcd, 0x10, 0x01}; /* BASE_DIM_MAX + 1 */
    TST_EQ(decode_with("d", d_big, sizeof(d_big)), BASE_EPROTO);
    base_buf_fini(&raw);
}

static void decoder_rejects_chosen_out_of_range(void)
{
    static const uint8_t two[] = {0x02};
    static const uint8_t one[] = {0x01};
    TST_EQ(decode_with("ch", two, sizeof(two)), BASE_EPROTO);
    TST_OK(decode_with("ch", one, sizeof(one)));
}

static void decoder_rejects_non_finite_and_bad_actions(void)
{
    uint8_t v[8];
    base_buf raw;
    base_buf_init(&raw, 256);
    le_f32(v, 0.5f);
    le_f32(v + 4, NAN);
    w_bin(&raw, v, 8);
    TST_EQ(decode_with("emb", raw.data, raw.len), BASE_EPROTO);
    TST_EQ(decode_with("pmf", raw.data, raw.len), BASE_EPROTO);
    base_buf_reset(&raw);
    le_f32(v + 4, -INFINITY);
    w_bin(&raw, v, 8);
    TST_EQ(decode_with("lg", raw.data, raw.len), BASE_EPROTO);
    base_buf_reset(&raw);
    uint8_t a[8] = {0, 0, 0, 0, 0x00, 0x10, 0, 0}; /* second action = BASE_ACTIONS_MAX */
    w_bin(&raw, a, 8);
    TST_EQ(decode_with("act", raw.data, raw.len), BASE_EPROTO);
    base_buf_fini(&raw);
}

static void decoder_rejects_missing_and_duplicate_keys(void)
{
    mut omit = {"lg", NULL, 0, true, false, NULL};
    TST_EQ(decode_crafted(&omit), BASE_EPROTO);
    static const uint8_t pol[] = {0xa1, 'x'};
    mut dup = {"p", pol, sizeof(pol), false, true, NULL};
    TST_EQ(decode_crafted(&dup), BASE_EPROTO);
}

static void decoder_ignores_unknown_keys(void)
{
    static const uint8_t junk[] = {0x93, 0x01, 0xa1, 'z', 0x81, 0xa1, 'a', 0xc0};
    mut extra = {"future", junk, sizeof(junk), false, true, NULL};
    TST_OK(decode_crafted(&extra));
}

static void decoder_rejects_deep_nesting_and_bad_shapes(void)
{
    uint8_t deep[12];
    memset(deep, 0x91, sizeof(deep)); /* [[[[...]]]] 12 deep, past the depth cap */
    deep[11] = 0xc0;
    mut nest = {"future", deep, sizeof(deep), false, true, NULL};
    TST_EQ(decode_crafted(&nest), BASE_EPROTO);

    static const uint8_t top_array[] = {0x91, 0x80};
    static const uint8_t int_key[] = {0x81, 0x01, 0x01};
    base_decision *d = NULL;
    base_outcome *o = NULL;
    TST_EQ(sto_codec_decode_decision(top_array, sizeof(top_array), &d), BASE_EPROTO);
    TST_EQ(sto_codec_decode_outcome(int_key, sizeof(int_key), &o), BASE_EPROTO);
    TST_EQ(sto_codec_decode_outcome(NULL, 0, &o), BASE_EPROTO);
}

/* The keys an outcome gained with the reward engine: supersedes, user, type. */
static void w_outcome_tail(base_buf *b)
{
    w_str(b, "su"), w_str(b, "");
    w_str(b, "u"), w_str(b, "");
    w_str(b, "ty"), w_uint(b, 0);
    w_str(b, "at"), w_uint(b, 7);
    w_str(b, "lsn"), w_uint(b, 3);
}

static void outcome_decoder_rejects_bad_values(void)
{
    base_buf b;
    base_outcome *o = NULL;
    base_buf_init(&b, 1024);
    /* Valid baseline first, written by hand, with an integer value. */
    w_map(&b, 13);
    w_str(&b, "v"), w_uint(&b, 1);
    w_str(&b, "p"), w_str(&b, "faq");
    w_str(&b, "e"), w_str(&b, "ev");
    w_str(&b, "c"), w_str(&b, "");
    w_str(&b, "o"), w_str(&b, "");
    w_str(&b, "sig"), w_str(&b, "resolved");
    w_str(&b, "val"), w_uint(&b, 1);
    w_str(&b, "ts"), w_uint(&b, 5);
    w_outcome_tail(&b);
    TST_OK(sto_codec_decode_outcome(b.data, b.len, &o));
    TST_TRUE(o != NULL && o->value == 1.0);
    base_free(o);
    o = NULL;
    /* NaN value. */
    base_buf_reset(&b);
    w_map(&b, 13);
    w_str(&b, "v"), w_uint(&b, 1);
    w_str(&b, "p"), w_str(&b, "faq");
    w_str(&b, "e"), w_str(&b, "ev");
    w_str(&b, "c"), w_str(&b, "");
    w_str(&b, "o"), w_str(&b, "");
    w_str(&b, "sig"), w_str(&b, "resolved");
    w_str(&b, "val"), w_f64(&b, NAN);
    w_str(&b, "ts"), w_uint(&b, 5);
    w_outcome_tail(&b);
    TST_EQ(sto_codec_decode_outcome(b.data, b.len, &o), BASE_EPROTO);
    /* Oversize signal name. */
    char big[BASE_NAME_MAX + 1];
    memset(big, 's', sizeof(big));
    base_buf_reset(&b);
    w_map(&b, 13);
    w_str(&b, "v"), w_uint(&b, 1);
    w_str(&b, "p"), w_str(&b, "faq");
    w_str(&b, "e"), w_str(&b, "ev");
    w_str(&b, "c"), w_str(&b, "");
    w_str(&b, "o"), w_str(&b, "");
    w_str(&b, "sig"), w_strn(&b, big, sizeof(big));
    w_str(&b, "val"), w_uint(&b, 1);
    w_str(&b, "ts"), w_uint(&b, 5);
    w_outcome_tail(&b);
    TST_EQ(sto_codec_decode_outcome(b.data, b.len, &o), BASE_EPROTO);
    TST_TRUE(o == NULL);
    base_buf_fini(&b);
}

static void joined_decoder_rejects_bad_inner_decision(void)
{
    static const uint8_t two[] = {0x02};
    mut bad_ch = {"ch", two, sizeof(two), false, false, NULL};
    base_buf b;
    base_joined *j = NULL;
    for (int variant = 0; variant < 3; variant++) {
        base_buf_init(&b, 1024);
        w_map(&b, 10);
        w_str(&b, "v"), w_uint(&b, 1);
        w_str(&b, "dec"), w_decision(&b, variant == 1 ? &bad_ch : NULL);
        w_str(&b, "r"), w_f64(&b, 0.5);
        w_str(&b, "no"), w_uint(&b, 1);
        w_str(&b, "df");
        w_u8(&b, variant == 2 ? 0x01 : 0xc2); /* an int where a bool belongs */
        w_str(&b, "jts"), w_uint(&b, 9);
        w_str(&b, "uk"), w_u8(&b, 0xc2);
        w_str(&b, "cr"), w_uint(&b, 0);
        w_str(&b, "sh"), w_f64(&b, 0.0);
        w_str(&b, "sv"), w_str(&b, "h0123");
        base_err e = sto_codec_decode_joined(b.data, b.len, &j);
        if (variant == 0) {
            TST_OK(e);
            TST_TRUE(j != NULL && !j->defaulted && j->reward == 0.5);
        } else {
            TST_EQ(e, BASE_EPROTO);
        }
        base_joined_free(j);
        j = NULL;
        base_buf_fini(&b);
    }
}

static void model_decoder_rejects_inconsistent_state(void)
{
    base_snapshot *m = make_model(3, 2);
    base_snapshot *got = NULL;
    base_buf b;
    base_buf_init(&b, 4096);
    TST_OK(sto_codec_encode_model(m, &b));
    /* The state bin is last: its final 8 bytes are state[1]; make it NaN. */
    uint8_t nan_le[8] = {0, 0, 0, 0, 0, 0, 0xf8, 0x7f};
    memcpy(b.data + b.len - 8, nan_le, 8);
    TST_EQ(sto_codec_decode_model(b.data, b.len, &got), BASE_EPROTO);
    base_buf_reset(&b);
    m->n_state = 1; /* encodes a bin of 1 double while... */
    TST_OK(sto_codec_encode_model(m, &b));
    m->n_state = 2;
    /* ...patch "ns" 1 -> 2: the bin no longer matches the count. */
    uint8_t *p = NULL;
    for (size_t i = 0; i + 3 < b.len; i++) {
        if (b.data[i] == 0xa2 && b.data[i + 1] == 'n' && b.data[i + 2] == 's') {
            p = &b.data[i + 3];
        }
    }
    TST_TRUE(p != NULL && *p == 0x01);
    if (p != NULL) {
        *p = 0x02;
    }
    TST_EQ(sto_codec_decode_model(b.data, b.len, &got), BASE_EPROTO);
    TST_TRUE(got == NULL);
    base_buf_fini(&b);
    base_snapshot_free(m);
}

int main(void)
{
    decision_slot_fields_are_optional();
    decision_breakdown_is_optional();
    model_settings_round_trip_and_are_optional();
    model_actions_hash_is_optional();
    decision_actions_hash_is_optional();
    model_portfolio_round_trips();
    model_feature_map_round_trips_and_is_optional();
    decision_round_trips_exactly();
    decision_overflow_mark_is_optional();
    decision_user_is_optional();
    inbox_ids_are_optional();
    decision_open_set_round_trips();
    decision_compact_embeddings_round_trip();
    decoder_checks_compact_embeddings();
    decision_keeps_full_length_strings();
    outcome_round_trips_exactly();
    joined_round_trips_exactly();
    model_round_trips_exactly();
    empty_model_round_trips();
    crafted_decision_baseline_decodes();
    encoder_refuses_invalid_records_and_keeps_buffer();
    decoders_reject_every_truncation();
    decoders_reject_huge_counts_in_short_input();
    decoder_rejects_wrong_version();
    decoder_rejects_wrong_types();
    decoder_rejects_oversize_strings();
    decoder_rejects_inconsistent_vectors();
    decoder_rejects_chosen_out_of_range();
    decoder_rejects_non_finite_and_bad_actions();
    decoder_rejects_missing_and_duplicate_keys();
    decoder_ignores_unknown_keys();
    decoder_rejects_deep_nesting_and_bad_shapes();
    outcome_decoder_rejects_bad_values();
    joined_decoder_rejects_bad_inner_decision();
    model_decoder_rejects_inconsistent_state();
    return tst_done();
}
