/*
 * Unit tests for proto/explain.c: the explain reply round-trips bit for bit
 * (with and without the breakdown, the reward and the outcomes listed, up to
 * the cap), refuses bad arguments leaving the buffer, and the decoder
 * refuses error replies, truncations and lists past the cap.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/record.h"
#include "proto/errors.h"
#include "proto/explain.h"
#include "proto/mp.h"
#include "proto/reply.h"
#include "tap.h"

static proto_explain_outcome g_out[PROTO_EXPLAIN_MAX_OUTCOMES + 1];

/* @n outcomes in g_out: every other one without an outcome_id. */
static void fill_outcomes(proto_explain *x, uint32_t n, bool truncated)
{
    static const char *const st[] = {"applied", "superseded", "late", "applied"};
    for (uint32_t i = 0; i < n; i++) {
        proto_explain_outcome *o = &g_out[i];
        memset(o, 0, sizeof(*o));
        (void)snprintf(o->signal, sizeof(o->signal), "sig-%u", i % 3);
        if (i % 2 == 0) {
            (void)snprintf(o->outcome_id, sizeof(o->outcome_id), "o-%u", i);
        }
        o->value = i % 3 == 1 ? 1.0 / 3.0 : -(double)i;
        o->ts_ms = 1700000000000LL + (int64_t)i * 1001 - (i == 5 ? 1800000000000LL : 0);
        base_strlcpy(o->status, st[i % 4], sizeof(o->status));
    }
    x->n_listed = n;
    x->outcomes = n > 0 ? g_out : NULL;
    x->outcomes_truncated = truncated;
}

static void fill(proto_explain *x, proto_explain_cand *c, uint32_t n)
{
    memset(x, 0, sizeof(*x));
    base_strlcpy(x->event_id, "ev-42", sizeof(x->event_id));
    base_strlcpy(x->policy, "faq", sizeof(x->policy));
    base_strlcpy(x->user_id, "~00112233445566778899aabbccddeeff", sizeof(x->user_id));
    base_strlcpy(x->conversation_id, "~ffeeddccbbaa99887766554433221100",
                 sizeof(x->conversation_id));
    base_strlcpy(x->slot, "production", sizeof(x->slot));
    x->model_version = 12345678901ull;
    x->production_version = 3;
    base_strlcpy(x->reward_version, "h0123456789abcdef", sizeof(x->reward_version));
    base_strlcpy(x->chosen, "c1", sizeof(x->chosen));
    x->chosen_index = n > 1 ? 1 : 0;
    x->breakdown = true;
    x->n_cand = n;
    x->cand = c;
    for (uint32_t i = 0; i < n; i++) {
        memset(&c[i], 0, sizeof(c[i]));
        c[i].id[0] = 'c';
        c[i].id[1] = (char)('0' + i % 10);
        c[i].base_logit = 1.0f / 3.0f + (float)i;
        c[i].base_prob = 0.1f * (float)i;
        c[i].head_score = -0.7f * (float)i;
        c[i].exploration = nextafterf(0.01f, 1.0f);
        c[i].probability = 1.0f / 7.0f;
    }
    base_strlcpy(x->status, "joined", sizeof(x->status));
    x->has_reward = true;
    x->reward = -0.25;
    x->n_outcomes = 2;
    base_strlcpy(x->credit, "uniform", sizeof(x->credit));
    x->share = 1.0 / 3.0;
    fill_outcomes(x, 3, false);
}

static bool same(const proto_explain *a, const proto_explain *b)
{
    bool ok = strcmp(a->event_id, b->event_id) == 0 && strcmp(a->policy, b->policy) == 0 &&
              strcmp(a->user_id, b->user_id) == 0 &&
              strcmp(a->conversation_id, b->conversation_id) == 0 &&
              strcmp(a->slot, b->slot) == 0 && a->model_version == b->model_version &&
              a->production_version == b->production_version &&
              strcmp(a->reward_version, b->reward_version) == 0 &&
              strcmp(a->chosen, b->chosen) == 0 && a->chosen_index == b->chosen_index &&
              a->breakdown == b->breakdown && a->n_cand == b->n_cand &&
              strcmp(a->status, b->status) == 0 && a->has_reward == b->has_reward;
    if (ok && a->has_reward) {
        ok = a->reward == b->reward && a->defaulted == b->defaulted && a->unknown == b->unknown &&
             a->n_outcomes == b->n_outcomes && strcmp(a->credit, b->credit) == 0 &&
             a->share == b->share && a->n_listed == b->n_listed &&
             a->outcomes_truncated == b->outcomes_truncated;
        for (uint32_t i = 0; ok && i < a->n_listed; i++) {
            const proto_explain_outcome *p = &a->outcomes[i], *q = &b->outcomes[i];
            ok = strcmp(p->signal, q->signal) == 0 && strcmp(p->outcome_id, q->outcome_id) == 0 &&
                 memcmp(&p->value, &q->value, sizeof(double)) == 0 && p->ts_ms == q->ts_ms &&
                 strcmp(p->status, q->status) == 0;
        }
    }
    for (uint32_t i = 0; ok && i < a->n_cand; i++) {
        const proto_explain_cand *p = &a->cand[i], *q = &b->cand[i];
        ok = strcmp(p->id, q->id) == 0 && memcmp(&p->base_logit, &q->base_logit, 4) == 0 &&
             memcmp(&p->base_prob, &q->base_prob, 4) == 0 &&
             memcmp(&p->probability, &q->probability, 4) == 0 &&
             (!a->breakdown || (memcmp(&p->head_score, &q->head_score, 4) == 0 &&
                                memcmp(&p->exploration, &q->exploration, 4) == 0));
    }
    return ok;
}

static void explain_reply_round_trips_bit_for_bit(void)
{
    static proto_explain_cand c[BASE_CAND_MAX];
    uint32_t sizes[] = {1, 3, BASE_CAND_MAX};
    for (size_t k = 0; k < 3; k++) {
        for (int variant = 0; variant < 5; variant++) {
            proto_explain x, got;
            base_buf b;
            fill(&x, c, sizes[k]);
            if (variant == 1) { /* pending, an old record: no breakdown, no reward version */
                x.breakdown = false;
                x.reward_version[0] = '\0';
                x.user_id[0] = '\0'; /* and no user */
                base_strlcpy(x.status, "pending", sizeof(x.status));
            } else if (variant == 2) { /* joined record not found: no reward */
                x.has_reward = false;
                x.conversation_id[0] = '\0';
                fill_outcomes(&x, 0, false);
            } else if (variant == 3) { /* no outcomes */
                fill_outcomes(&x, 0, false);
            } else if (variant == 4) { /* the cap, and more not listed */
                fill_outcomes(&x, PROTO_EXPLAIN_MAX_OUTCOMES, true);
            }
            base_buf_init(&b, 1u << 20);
            TST_OK(proto_reply_explain(&b, &x));
            TST_OK(proto_explain_decode(b.data, b.len, &got));
            TST_TRUE(same(&x, &got));
            proto_explain_fini(&got);
            proto_explain_fini(&got); /* idempotent */
            /* Any client can read it as a reply: ok, with the event id. */
            static proto_reply r;
            TST_OK(proto_reply_decode(b.data, b.len, &r));
            TST_TRUE(r.ok && strcmp(r.event_id, "ev-42") == 0);
            base_buf_fini(&b);
        }
    }
}

static void explain_reply_refuses_bad_shapes_and_keeps_the_buffer(void)
{
    proto_explain_cand c[2];
    proto_explain x;
    base_buf b;
    base_buf_init(&b, 4096);
    TST_OK(base_buf_append(&b, "xy", 2));
    fill(&x, c, 2);
    x.chosen_index = 2;
    TST_EQ(proto_reply_explain(&b, &x), BASE_EINVAL);
    x.chosen_index = 0;
    x.n_cand = 0;
    TST_EQ(proto_reply_explain(&b, &x), BASE_EINVAL);
    x.n_cand = 2;
    fill_outcomes(&x, PROTO_EXPLAIN_MAX_OUTCOMES + 1, true);
    TST_EQ(proto_reply_explain(&b, &x), BASE_EINVAL);
    TST_EQ(b.len, 2);
    fill_outcomes(&x, 3, false);
    base_buf small;
    base_buf_init(&small, 32);
    x.n_cand = 2;
    TST_EQ(proto_reply_explain(&small, &x), BASE_ELIMIT);
    TST_EQ(small.len, 0);
    base_buf_fini(&small);
    base_buf_fini(&b);
}

static void explain_decoder_refuses_errors_and_truncations(void)
{
    proto_explain_cand c[3];
    proto_explain x, got;
    base_buf b;
    base_buf_init(&b, 4096);
    TST_OK(proto_reply_error(&b, PROTO_E_NOT_FOUND, "no decision"));
    TST_EQ(proto_explain_decode(b.data, b.len, &got), BASE_EPROTO);
    base_buf_reset(&b);
    fill(&x, c, 3);
    TST_OK(proto_reply_explain(&b, &x));
    for (size_t n = 0; n < b.len; n++) {
        if (proto_explain_decode(b.data, n, &got) == BASE_OK) {
            TST_TRUE(false);
            proto_explain_fini(&got);
        }
    }
    TST_STREQ(proto_errcode_name(PROTO_E_NOT_FOUND), "not_found");
    base_buf_fini(&b);
}

/* A reply listing more outcomes than the cap is refused. */
static void explain_decoder_refuses_lists_past_the_cap(void)
{
    proto_explain_cand c[2];
    proto_explain x, got;
    base_buf b;
    proto_writer w;
    base_buf_init(&b, 1u << 16);
    fill(&x, c, 2);
    fill_outcomes(&x, PROTO_EXPLAIN_MAX_OUTCOMES, false);
    TST_OK(proto_reply_explain(&b, &x));
    TST_OK(proto_explain_decode(b.data, b.len, &got));
    TST_EQ(got.n_listed, PROTO_EXPLAIN_MAX_OUTCOMES);
    proto_explain_fini(&got);
    /*
     * "outcomes" is the last value of the map here: raise its array16 count
     * (0xdc 0x00 0x40) by one and append one more entry.
     */
    size_t at = b.len;
    for (size_t i = 0; i + 2 < b.len; i++) {
        if (b.data[i] == 0xdc && b.data[i + 1] == 0x00 &&
            b.data[i + 2] == PROTO_EXPLAIN_MAX_OUTCOMES) {
            at = i;
        }
    }
    TST_TRUE(at < b.len);
    if (at < b.len) {
        b.data[at + 2] = PROTO_EXPLAIN_MAX_OUTCOMES + 1;
        proto_writer_init(&w, &b);
        proto_w_map(&w, 4);
        proto_w_str(&w, "signal");
        proto_w_str(&w, "s");
        proto_w_str(&w, "value");
        proto_w_double(&w, 1.0);
        proto_w_str(&w, "ts");
        proto_w_int(&w, 0);
        proto_w_str(&w, "status");
        proto_w_str(&w, "applied");
        TST_OK(proto_writer_finish(&w));
        TST_EQ(proto_explain_decode(b.data, b.len, &got), BASE_EPROTO);
    }
    base_buf_fini(&b);
}

int main(void)
{
    explain_reply_round_trips_bit_for_bit();
    explain_reply_refuses_bad_shapes_and_keeps_the_buffer();
    explain_decoder_refuses_errors_and_truncations();
    explain_decoder_refuses_lists_past_the_cap();
    return tst_done();
}
