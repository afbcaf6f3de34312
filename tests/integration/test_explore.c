/*
 * Exploration rules (docs/algorithms.md, "Exploration rules"): with no_explore = c and a wide
 * epsilon, over thousands of decisions action c never gets exploration probability: it has
 * either no probability or it is the head's own choice (the most probable candidate); a
 * request with "explore": false, or in the segment "complaint" (budget 0), is served its
 * head's choice with probability 1; the segment "care" (budget 0.05) and a request budget of
 * 0.1 spend at most that; stats report what each segment spent; and every logged pmf is,
 * byte for byte, the one served.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/hash.h"
#include "client/rlfeed_client.h"
#include "daemon.h"
#include "proc.h"
#include "proto/explain.h"
#include "proto/request.h"
#include "storage/store.h"
#include "tap.h"

enum { N = 3000, K = 4, D = 4, C = 2 /* action "c" */ };

typedef struct served {
    char event_id[BASE_ID_MAX + 1];
    float pmf[K];
} served;

static served log_[N];

typedef struct tally {
    int matched, mismatched;
} tally;

/* A decision record: the pmf served for its event, byte for byte? */
static void check_logged(const base_decision *d, void *arg)
{
    tally *t = arg;
    int i = -1;
    (void)sscanf(d->event_id, "x-%d", &i);
    if (i >= 0 && i < N && memcmp(d->pmf, log_[i].pmf, sizeof(log_[i].pmf)) == 0) {
        t->matched++;
    } else {
        t->mismatched++;
    }
}

int main(void)
{
    tst_daemon f;
    const char *config = "[server]\ntick_ms = 5\n"
                         "[policy x]\ndim = 4\nactions = a, b, c, d\nepsilon = 0.4\nseed = 11\n"
                         "no_explore = c\nsignal.resolved = 1\nwindow_ms = 600000\n"
                         "segment.complaint = 0\nsegment.care = 0.05\n";
    if (!tst_daemon_init(&f, "rlfeed-explore", config)) {
        printf("Bail out! fixture\n");
        tst_daemon_fini(&f, false);
        return 1;
    }
    bool up = tst_daemon_start(&f, true, NULL);
    TST_TRUE(up);
    int c_explored = 0, c_chosen_as_head = 0, c_zero = 0, not_one_hot = 0, failed = 0;
    int over_budget = 0;
    uint64_t rng = 5;
    base_buf b;
    base_buf_init(&b, 1u << 20);
    for (int i = 0; up && i < N; i++) {
        const char *ids[K] = {"a", "b", "c", "d"};
        float emb[D], bl[K];
        for (int j = 0; j < D; j++) {
            emb[j] = (float)(base_u64_to_unit(base_splitmix64(&rng)) - 0.5);
        }
        for (int k = 0; k < K; k++) {
            bl[k] = (float)(3.0 * base_u64_to_unit(base_splitmix64(&rng)));
        }
        /* Every tenth asks for no exploration, every tenth is a complaint (budget 0), every
         * tenth is in care (0.05), every tenth has a budget of its own (0.1). */
        int kind = i % 10;
        bool quiet = kind == 9 || kind == 8;
        double budget = kind == 7 ? 0.05 : kind == 6 ? 0.1 : 1.0;
        snprintf(log_[i].event_id, sizeof(log_[i].event_id), "x-%d", i);
        proto_decide_req q = {.policy = "x",
                              .event_id = log_[i].event_id,
                              .no_explore = kind == 9,
                              .has_explore_budget = kind == 6,
                              .explore_budget = 0.1,
                              .segment = kind == 8   ? "complaint"
                                         : kind == 7 ? "care"
                                                     : NULL,
                              .embedding = emb,
                              .dim = D,
                              .n_cand = K,
                              .cand_ids = ids,
                              .base_logits = bl};
        rlfeed_reply r;
        base_buf_reset(&b);
        if (proto_encode_decide(&b, &q) != BASE_OK ||
            tst_call_raw(&f, b.data, b.len, &r) != BASE_OK || !r.ok || r.n_pmf != K) {
            failed++;
            continue;
        }
        memcpy(log_[i].pmf, r.pmf, sizeof(log_[i].pmf));
        float top = 0.0f;
        int g = 0;
        for (int k = 0; k < K; k++) {
            if (r.pmf[k] > top) {
                top = r.pmf[k];
                g = k;
            }
        }
        if (quiet) {
            not_one_hot += !(top == 1.0f && r.chosen_index == (uint32_t)g);
            continue;
        }
        over_budget += 1.0 - (double)top > budget + 1e-6;
        if (r.pmf[C] == 0.0f) {
            c_zero++;
        } else if (g == C) {
            c_chosen_as_head++;
        } else {
            c_explored++;
        }
    }
    base_buf_fini(&b);
    printf("# c: no probability %d times, the head's choice %d times, explored %d times\n", c_zero,
           c_chosen_as_head, c_explored);
    TST_EQ(failed, 0);
    TST_EQ(c_explored, 0);
    TST_TRUE(c_zero > 1000 && c_chosen_as_head > 100); /* both cases seen, many times */
    TST_EQ(not_one_hot, 0);
    TST_EQ(over_budget, 0);

    /* What each segment spent. */
    if (up) {
        json_t *s = tst_stats(&f);
        json_t *x =
            json_object_get(json_object_get(json_object_get(s, "policies"), "x"), "exploration");
        double m_all = json_real_value(json_object_get(json_object_get(x, "*"), "mean_explore"));
        double m_complaint =
            json_real_value(json_object_get(json_object_get(x, "complaint"), "mean_explore"));
        double m_care =
            json_real_value(json_object_get(json_object_get(x, "care"), "mean_explore"));
        printf("# mean exploration: * %.4f, complaint %.4f, care %.4f\n", m_all, m_complaint,
               m_care);
        TST_EQ(json_integer_value(json_object_get(json_object_get(x, "complaint"), "decisions")),
               N / 10);
        TST_EQ(json_integer_value(json_object_get(json_object_get(x, "*"), "decisions")),
               N - 2 * N / 10);
        TST_TRUE(m_complaint == 0.0);
        TST_TRUE(m_care > 0.01 && m_care <= 0.05 + 1e-6);
        TST_TRUE(m_all > 0.1);
        json_decref(s);
    }

    /*
     * The explained exploration shares follow the rules: none at all for "explore": false
     * and budget 0 (the head's choice keeps no floor), within the budget on the other
     * candidates elsewhere, never more than a candidate's probability.
     */
    int bad_shares = 0, explained = 0;
    for (int i = 0; up && i < 200; i++) {
        uint8_t *rep = NULL;
        size_t len = 0;
        proto_explain x;
        if (rlfeed_client_explain(f.c, "x", log_[i].event_id, &rep, &len) != BASE_OK ||
            proto_explain_decode(rep, len, &x) != BASE_OK) {
            base_free(rep);
            continue;
        }
        base_free(rep);
        explained++;
        int kind = i % 10;
        double limit = kind == 9 || kind == 8 ? 0.0 : kind == 7 ? 0.05 : kind == 6 ? 0.1 : 1.0;
        uint32_t g = 0;
        for (uint32_t k = 1; k < x.n_cand; k++) {
            g = x.cand[k].probability > x.cand[g].probability ? k : g;
        }
        double all = 0.0, others = 0.0;
        for (uint32_t k = 0; k < x.n_cand; k++) {
            all += x.cand[k].exploration;
            others += k != g ? x.cand[k].exploration : 0.0;
            bad_shares += x.cand[k].exploration > x.cand[k].probability;
        }
        bool bad = limit == 0.0 ? all != 0.0 : others > limit + 1e-6;
        bad_shares += bad;
        proto_explain_fini(&x);
    }
    TST_EQ(explained, up ? 200 : 0);
    TST_EQ(bad_shares, 0);

    /* Every other candidate ruled out (a and c, c no_explore, a the choice): served with
     * probability 1, so nothing explores, with no budget asked for. */
    int alone_ok = 0;
    for (int i = 0; up && i < 10; i++) {
        const char *ids[2] = {"a", "c"};
        float emb[D] = {0.1f * (float)i, -0.2f, 0.3f, 0.0f}, bl[2] = {3.0f, 0.0f};
        char ev[32];
        snprintf(ev, sizeof(ev), "alone-%d", i);
        proto_decide_req q = {.policy = "x",
                              .event_id = ev,
                              .embedding = emb,
                              .dim = D,
                              .n_cand = 2,
                              .cand_ids = ids,
                              .base_logits = bl};
        rlfeed_reply r;
        uint8_t *rep = NULL;
        size_t len = 0;
        proto_explain x;
        base_buf req;
        base_buf_init(&req, 4096);
        bool got = proto_encode_decide(&req, &q) == BASE_OK &&
                   tst_call_raw(&f, req.data, req.len, &r) == BASE_OK && r.ok &&
                   rlfeed_client_explain(f.c, "x", ev, &rep, &len) == BASE_OK &&
                   proto_explain_decode(rep, len, &x) == BASE_OK;
        base_buf_fini(&req);
        base_free(rep);
        if (!got) {
            continue;
        }
        alone_ok +=
            r.pmf[0] == 1.0f && x.cand[0].exploration == 0.0f && x.cand[1].exploration == 0.0f;
        proto_explain_fini(&x);
    }
    TST_EQ(alone_ok, up ? 10 : 0);

    /* The log holds exactly what was served. */
    if (up) {
        tally t = {0, 0};
        (void)tst_each_decision(&f, "x", N, 20000, check_logged, &t);
        int matched = t.matched, mismatched = t.mismatched;
        TST_EQ(matched, N);
        TST_EQ(mismatched, 0);
        TST_EQ(tst_daemon_stop(&f), 0);
    }
    tst_daemon_fini(&f, tst_failed > 0);
    return tst_done();
}
