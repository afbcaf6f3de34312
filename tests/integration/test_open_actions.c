/*
 * Open action sets end to end (docs/algorithms.md, "Open action sets"): a policy with
 * actions = open takes any candidate ids with features, refuses requests whose features
 * do not fit, learns one shared head from feedback so that answers it has never seen are
 * served by what their features say, never explores an id named in no_explore, logs
 * exactly the pmf it served with the candidates' ids and features, explains with the ids,
 * and serves the same head after a restart.
 *
 * The world: reward probability 0.5 + 0.4 tanh(x' A z) for context x and answer features
 * z; each request offers four answers from a pool that gets four new ones every 250
 * decisions, plus "rate-quote", which must never be explored.
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

enum { N = 3000, D = 6, AD = 4, C = 5, RQ = 4 /* rate-quote's index */, NEW_EVERY = 250 };

typedef struct served {
    float pmf[C];
    float feat[C * AD];
    char ids[C][32];
} served;

static served log_[N];

/* Answer @m's features (m < 0: rate-quote's for decision i = -m - 1). */
static void answer_features(long m, float *z)
{
    uint64_t st = base_hash64(&m, sizeof(m), 0xa115);
    for (int j = 0; j < AD; j++) {
        z[j] = (float)(2.0 * base_u64_to_unit(base_splitmix64(&st)) - 1.0);
    }
}

static double p_resolved(const float *x, const float *z)
{
    double s = 0.0;
    for (int i = 0; i < D; i++) {
        for (int j = 0; j < AD; j++) {
            double a = (i == j ? 1.2 : 0.0) + (i == j + 2 ? -0.8 : 0.0);
            s += (double)x[i] * a * (double)z[j];
        }
    }
    return 0.5 + 0.4 * tanh(s);
}

static bool decide(tst_daemon *f, base_buf *b, int i, const float *x, rlfeed_reply *r)
{
    const char *ids[C];
    float bl[C] = {0};
    for (int c = 0; c < C; c++) {
        ids[c] = log_[i].ids[c];
    }
    char ev[32];
    snprintf(ev, sizeof(ev), "o-%d", i);
    proto_decide_req q = {.policy = "ans",
                          .event_id = ev,
                          .embedding = x,
                          .dim = D,
                          .n_cand = C,
                          .cand_ids = ids,
                          .base_logits = bl,
                          .features = log_[i].feat,
                          .action_dim = AD};
    base_buf_reset(b);
    return proto_encode_decide(b, &q) == BASE_OK &&
           tst_call_raw(f, b->data, b->len, r) == BASE_OK && r->ok && r->n_pmf == C;
}

static void refusals(tst_daemon *f)
{
    rlfeed_reply r;
    const char *ctx = "\"context\":{\"embedding\":[1,0,0,0,0,0]}";
    TST_OK(tst_callf(f, &r,
                     "{\"op\":\"decide\",\"policy\":\"ans\",%s,\"candidates\":"
                     "[{\"id\":\"a\",\"base_logit\":0},{\"id\":\"b\",\"base_logit\":0}]}",
                     ctx));
    TST_TRUE(!r.ok && r.error.code == PROTO_E_BAD_DIMENSION);
    TST_TRUE(strstr(r.error.message, "has 0 entries, policy ans wants 4") != NULL);
    TST_OK(tst_callf(f, &r,
                     "{\"op\":\"decide\",\"policy\":\"ans\",%s,\"candidates\":"
                     "[{\"id\":\"a\",\"base_logit\":0,\"features\":[1,2,3]}]}",
                     ctx));
    TST_TRUE(!r.ok && r.error.code == PROTO_E_BAD_DIMENSION);
    TST_OK(tst_callf(f, &r,
                     "{\"op\":\"decide\",\"policy\":\"x\",%s,\"candidates\":"
                     "[{\"id\":\"a\",\"base_logit\":0,\"features\":[1,2,3,4]}]}",
                     ctx));
    TST_TRUE(!r.ok && r.error.code == PROTO_E_BAD_REQUEST);
    TST_TRUE(strstr(r.error.message, "closed action set") != NULL);
    /* One past max_candidates (64 by default for an open set). */
    static char names[65][8];
    static const char *ids[65];
    static float feat[65 * AD], logits[65];
    float x[D] = {1.0f};
    for (int c = 0; c < 65; c++) {
        snprintf(names[c], sizeof(names[c]), "k%d", c);
        ids[c] = names[c];
    }
    proto_decide_req q = {.policy = "ans",
                          .embedding = x,
                          .dim = D,
                          .n_cand = 65,
                          .cand_ids = ids,
                          .base_logits = logits,
                          .features = feat,
                          .action_dim = AD};
    base_buf b;
    base_buf_init(&b, 1u << 20);
    TST_OK(proto_encode_decide(&b, &q));
    TST_OK(tst_call_raw(f, b.data, b.len, &r));
    TST_TRUE(!r.ok && r.error.code == PROTO_E_TOO_MANY_CANDIDATES);
    base_buf_fini(&b);
    /* Any ids are taken; the same id twice is not. */
    TST_OK(tst_callf(f, &r,
                     "{\"op\":\"decide\",\"policy\":\"ans\",%s,\"candidates\":"
                     "[{\"id\":\"never-seen\",\"base_logit\":0,\"features\":[1,2,3,4]},"
                     "{\"id\":\"never-seen\",\"base_logit\":0,\"features\":[1,2,3,4]}]}",
                     ctx));
    TST_TRUE(!r.ok && r.error.code == PROTO_E_BAD_REQUEST);
    json_t *s = tst_stats(f);
    TST_EQ(tst_rejected(s, "bad_dimension"), 2);
    TST_EQ(tst_rejected(s, "too_many_candidates"), 1);
    json_decref(s);
}

typedef struct tally {
    int matched, mismatched;
} tally;

/* A decision record: the pmf served, the ids and features sent, byte for byte? */
static void check_record(const base_decision *d, void *arg)
{
    tally *t = arg;
    int i = -1;
    (void)sscanf(d->event_id, "o-%d", &i);
    bool same = i >= 0 && i < N && d->action_dim == AD && d->n_cand == C &&
                memcmp(d->pmf, log_[i].pmf, sizeof(log_[i].pmf)) == 0 &&
                memcmp(d->features, log_[i].feat, sizeof(log_[i].feat)) == 0;
    for (int c = 0; same && c < C; c++) {
        same = strcmp(d->cand_id[c], log_[i].ids[c]) == 0;
    }
    t->matched += same;
    t->mismatched += !same;
}

static void records_match(tst_daemon *f)
{
    tally t = {0, 0};
    (void)tst_each_decision(f, "ans", N, 20000, check_record, &t);
    TST_EQ(t.matched, N);
    TST_EQ(t.mismatched, 0);
}

static void explained_with_ids(tst_daemon *f, int i)
{
    char ev[32];
    uint8_t *rep = NULL;
    size_t len = 0;
    proto_explain x;
    snprintf(ev, sizeof(ev), "o-%d", i);
    memset(&x, 0, sizeof(x));
    TST_OK(rlfeed_client_explain(f->c, "ans", ev, &rep, &len));
    TST_OK(proto_explain_decode(rep, len, &x));
    TST_EQ(x.n_cand, C);
    for (uint32_t c = 0; c < x.n_cand && c < C; c++) {
        TST_STREQ(x.cand[c].id, log_[i].ids[c]);
        TST_TRUE(x.cand[c].probability == log_[i].pmf[c]);
    }
    proto_explain_fini(&x);
    base_free(rep);
}

static long long wait_learned(tst_daemon *f, long long want, char *sum, size_t sum_len)
{
    long long v = -1;
    int64_t deadline = tst_now_ms() + 30000;
    while (tst_now_ms() < deadline) {
        json_t *s = tst_stats(f);
        v = tst_stat_int(s, "ans", "model_version");
        long long pending = tst_stat_int(s, "ans", "pending");
        snprintf(sum, sum_len, "%s", tst_stat_str(s, "ans", "model_checksum"));
        json_decref(s);
        if (v >= want && pending == 0) {
            break;
        }
        tst_nap();
    }
    return v;
}

int main(void)
{
    tst_daemon f;
    const char *config = "[server]\ntick_ms = 5\nsnapshot_interval_ms = 200\n"
                         "[policy ans]\ndim = 6\nactions = open\naction_dim = 4\nepsilon = 0.3\n"
                         "seed = 5\nno_explore = rate-quote\nsignal.resolved = 1\n"
                         "window_ms = 150\n"
                         "[policy x]\ndim = 6\nactions = a, b\nsignal.resolved = 1\n";
    if (!tst_daemon_init(&f, "rlfeed-open", config)) {
        printf("Bail out! fixture\n");
        tst_daemon_fini(&f, false);
        return 1;
    }
    bool up = tst_daemon_start(&f, true, NULL);
    TST_TRUE(up);
    if (up) {
        refusals(&f);
    }
    uint64_t rng = 17;
    int failed = 0, rq_explored = 0, rq_zero = 0, rq_head = 0;
    double served_late = 0.0, random_late = 0.0, best_late = 0.0, served_new = 0.0;
    int n_late = 0, n_new = 0;
    base_buf b;
    base_buf_init(&b, 1u << 20);
    for (int i = 0; up && i < N; i++) {
        float x[D];
        for (int j = 0; j < D; j++) {
            x[j] = (float)(2.0 * base_u64_to_unit(base_splitmix64(&rng)) - 1.0);
        }
        long epoch = i / NEW_EVERY;             /* four new answers each epoch, eight in the pool */
        int pick[8] = {0, 1, 2, 3, 4, 5, 6, 7}; /* four distinct of the eight, shuffled */
        for (int c = 0; c < RQ; c++) {
            int k = c + (int)(base_splitmix64(&rng) % (uint64_t)(8 - c));
            int t = pick[c];
            pick[c] = pick[k];
            pick[k] = t;
            long m = epoch * 4 + pick[c] - 4;
            m = m < 0 ? m + 8 : m;
            snprintf(log_[i].ids[c], sizeof(log_[i].ids[c]), "ans-%ld", m);
            answer_features(m, log_[i].feat + c * AD);
        }
        snprintf(log_[i].ids[RQ], sizeof(log_[i].ids[RQ]), "rate-quote");
        answer_features(-(long)i - 1, log_[i].feat + RQ * AD);
        rlfeed_reply r;
        if (!decide(&f, &b, i, x, &r)) {
            if (failed++ < 3) {
                printf("# decision %d failed: %s\n", i, r.ok ? "" : r.error.message);
            }
            continue;
        }
        memcpy(log_[i].pmf, r.pmf, sizeof(log_[i].pmf));
        int g = 0;
        double best = 0.0, mean = 0.0;
        for (int c = 0; c < C; c++) {
            g = r.pmf[c] > r.pmf[g] ? c : g;
            double p = p_resolved(x, log_[i].feat + c * AD);
            best = p > best ? p : best;
            mean += p / C;
        }
        if (r.pmf[RQ] == 0.0f) {
            rq_zero++;
        } else if (g == RQ) {
            rq_head++;
        } else {
            rq_explored++;
        }
        double p = p_resolved(x, log_[i].feat + r.chosen_index * AD);
        if (i >= N - 1000) {
            served_late += p;
            random_late += mean;
            best_late += best;
            n_late++;
        }
        /* The first decisions of each epoch: its four answers are new to the head. */
        if (epoch >= 4 && i % NEW_EVERY < 50) {
            served_new += p_resolved(x, log_[i].feat + g * AD);
            n_new++;
        }
        bool resolved = base_u64_to_unit(base_splitmix64(&rng)) < p;
        if (resolved && (tst_callf(&f, &r,
                                   "{\"op\":\"feedback\",\"policy\":\"ans\",\"event_id\":\"o-%d\","
                                   "\"signal\":\"resolved\"}",
                                   i) != BASE_OK ||
                         !r.ok)) {
            failed++;
        }
    }
    base_buf_fini(&b);
    printf("# rate-quote: no probability %d, the head's choice %d, explored %d\n", rq_zero, rq_head,
           rq_explored);
    printf("# last 1000: served %.3f, random %.3f, best %.3f; head's choice on new answers %.3f\n",
           served_late / n_late, random_late / n_late, best_late / n_late, served_new / n_new);
    TST_EQ(failed, 0);
    TST_EQ(rq_explored, 0);
    TST_TRUE(rq_zero > 1000 && rq_head > 50);
    /* Served with epsilon 0.3: well above random, and the head's own choice on new answers. */
    TST_TRUE(served_late / n_late > random_late / n_late + 0.05);
    TST_TRUE(served_new / n_new > random_late / n_late + 0.4 * (best_late - random_late) / n_late);
    if (up) {
        records_match(&f);
        explained_with_ids(&f, N - 1);
        char sum_a[32] = "", sum_b[32] = "";
        long long va = wait_learned(&f, N, sum_a, sizeof(sum_a)); /* every window closed */
        TST_EQ(va, N);
        TST_EQ(tst_daemon_stop(&f), 0);
        up = tst_daemon_start(&f, true, NULL);
        TST_TRUE(up);
        long long vb = up ? wait_learned(&f, va, sum_b, sizeof(sum_b)) : -1;
        printf("# before restart: version %lld checksum %s; after: %lld %s\n", va, sum_a, vb,
               sum_b);
        TST_EQ(vb, va);
        TST_STREQ(sum_b, sum_a);
        TST_EQ(tst_daemon_stop(&f), 0);
    }
    tst_daemon_fini(&f, tst_failed > 0);
    rlfeed_client_lib_fini();
    return tst_done();
}
