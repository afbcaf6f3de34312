/*
 * explain through a real rlfeedd and Redis, on the daemon's manual clock.
 * Policy "g" (ridge, greedy, eps 0.2) serves online; policy "m" (pg,
 * softmax) serves production with a 0.3 canary, so its logged pmf is the
 * mixture of two slots. For every decision, the explained probabilities
 * equal the decide reply's pmf bit for bit and sum to 1; the exploration
 * shares follow docs/algorithms.md ("Explanations"): eps / n each under
 * greedy, at most the probability under the mixture. A pending decision's
 * reward is the reward so far; once its window closed and the joined record
 * is stored, explain reads both back from Redis (status "joined") with the
 * same probabilities. Unknown events are not_found, bad requests
 * bad_request, unknown policies unknown_policy.
 *
 * Outcomes: decision g-o gets outcomes of three signals, one corrected, one
 * retried (a duplicate: never listed); explain lists them with their
 * signals, values and ids while pending, and the same, plus one late
 * outcome, once joined. After a restart (recovery on the same clock) the
 * joined g-o and the still pending g-q list the same outcomes again.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "daemon.h"
#include "proc.h"
#include "proto/auth.h"
#include "proto/explain.h"
#include "proto/request.h"
#include "storage/server.h"
#include "storage/store.h"
#include "tap.h"

#define T0 1700000000000LL
#define WINDOW 60000LL

static const char CONFIG[] = "[server]\n"
                             "tick_ms = 2\n"
                             "snapshot_interval_ms = 100000\n"
                             "[policy g]\n"
                             "dim = 2\n"
                             "actions = a0, a1, a2, a3\n"
                             "learner = ridge\n"
                             "explorer = greedy\n"
                             "epsilon = 0.2\n"
                             /* One greedy head's breakdown; the portfolio's mixture is
                              * test_pol_portfolio's. */
                             "portfolio = off\n"
                             "window_ms = 60000\n"
                             "[signal g.thumbs_up]\n"
                             "kind = event\n"
                             "weight = 0.5\n"
                             "[signal g.resolved]\n"
                             "kind = flag\n"
                             "weight = 0.25\n"
                             "[signal g.csat]\n"
                             "kind = number\n"
                             "min = 1\n"
                             "max = 5\n"
                             "[policy m]\n"
                             "dim = 2\n"
                             "actions = b0, b1, b2\n"
                             "learner = pg\n"
                             "explorer = softmax\n"
                             "epsilon = 0.1\n"
                             "serve = production\n"
                             "canary = 0.3\n"
                             "window_ms = 60000\n"
                             "[signal m.thumbs_up]\n"
                             "kind = event\n"
                             "weight = 1\n";

/* decide on @policy with candidates @ids (n) and logits; the reply in @r. */
static bool decide(tst_daemon *f, const char *policy, const char *ev, const char *cands,
                   rlfeed_reply *r)
{
    base_err e = tst_callf(f, r,
                           "{\"op\":\"decide\",\"policy\":\"%s\",\"event_id\":\"%s\","
                           "\"context\":{\"embedding\":[0.5,-1]},\"candidates\":[%s]}",
                           policy, ev, cands);
    return e == BASE_OK && r->ok;
}

/* explain @ev of @policy: 1 decoded into @x, 0 an error reply (code in @err), -1 failure. */
static int explain(tst_daemon *f, const char *policy, const char *ev, proto_explain *x,
                   rlfeed_reply *err)
{
    base_buf b;
    uint8_t *rep = NULL;
    size_t len = 0;
    int rc = -1;
    base_buf_init(&b, 4096);
    if (rlfeed_client_explain(f->c, policy, ev, &rep, &len) == BASE_OK) {
        if (proto_explain_decode(rep, len, x) == BASE_OK) {
            rc = 1;
        } else if (rlfeed_reply_decode(rep, len, err) == BASE_OK && !err->ok) {
            rc = 0;
        }
    }
    base_free(rep);
    base_buf_fini(&b);
    return rc;
}

/* The explained probabilities are the decide reply's pmf, bit for bit, and sum to 1. */
static void check_matches(const proto_explain *x, const rlfeed_reply *d)
{
    TST_EQ(x->n_cand, d->n_pmf);
    double sum = 0.0;
    bool same = x->n_cand == d->n_pmf;
    for (uint32_t c = 0; same && c < x->n_cand; c++) {
        same = memcmp(&x->cand[c].probability, &d->pmf[c], sizeof(float)) == 0;
        sum += (double)x->cand[c].probability;
        TST_TRUE(x->cand[c].exploration <= x->cand[c].probability);
        TST_TRUE(x->cand[c].base_prob > 0.0f && x->cand[c].base_prob < 1.0f);
    }
    TST_TRUE(same);
    TST_NEAR(sum, 1.0, 1e-6); /* float pmf: within 1e-6 of 1 */
    TST_STREQ(x->chosen, d->chosen);
    TST_EQ(x->chosen_index, d->chosen_index);
    TST_STREQ(x->slot, d->slot);
    TST_TRUE(x->breakdown);
}

static rlfeed_reply g_decided[4]; /* the decide replies of g-0..g-3 */

static void greedy_pending_decisions_are_explained(tst_daemon *f)
{
    static rlfeed_reply d, err;
    proto_explain x;
    const char *cands = "{\"id\":\"a2\",\"base_logit\":0.5},{\"id\":\"a0\",\"base_logit\":1.5},"
                        "{\"id\":\"a3\",\"base_logit\":-0.25},{\"id\":\"a1\",\"base_logit\":0.0}";
    char ev[32];
    for (int i = 0; i < 4; i++) {
        snprintf(ev, sizeof(ev), "g-%d", i);
        TST_TRUE(decide(f, "g", ev, cands, &d));
        g_decided[i] = d;
        if (explain(f, "g", ev, &x, &err) != 1) {
            TST_TRUE(0 && "explain g");
            continue;
        }
        check_matches(&x, &d);
        TST_STREQ(x.event_id, ev);
        TST_STREQ(x.policy, "g");
        TST_STREQ(x.status, "pending");
        TST_TRUE(x.has_reward && x.defaulted && x.n_outcomes == 0);
        TST_TRUE(x.reward_version[0] != '\0');
        TST_STREQ(x.cand[0].id, "a2");
        TST_STREQ(x.cand[1].id, "a0");
        TST_TRUE(x.cand[1].base_logit == 1.5f);
        TST_TRUE(x.user_id[0] == '\0' && x.conversation_id[0] == '\0'); /* none sent */
        for (uint32_t c = 0; c < x.n_cand; c++) {
            TST_TRUE(x.cand[c].exploration == (float)(0.2 / 4.0)); /* greedy: eps / n */
        }
        proto_explain_fini(&x);
    }
    /* The ids a decision was made for show as stored: pseudonyms, never as sent. */
    TST_OK(tst_callf(f, &d,
                     "{\"op\":\"decide\",\"policy\":\"g\",\"event_id\":\"g-u\",\"user_id\":"
                     "\"cust-991\",\"conversation_id\":\"conv-777\",\"context\":{\"embedding\":"
                     "[0.5,-1]},\"candidates\":[%s]}",
                     cands));
    TST_TRUE(d.ok);
    if (explain(f, "g", "g-u", &x, &err) == 1) {
        TST_TRUE(x.user_id[0] == '~' && strlen(x.user_id) == PROTO_PSEUDONYM_LEN);
        TST_TRUE(x.conversation_id[0] == '~' && strcmp(x.user_id, x.conversation_id) != 0);
        proto_explain_fini(&x);
    } else {
        TST_TRUE(0 && "explain g-u");
    }
    /* An outcome shows in the reward so far. */
    TST_OK(tst_callf(f, &d,
                     "{\"op\":\"feedback\",\"policy\":\"g\",\"event_id\":\"g-1\","
                     "\"signal\":\"thumbs_up\"}"));
    TST_TRUE(d.ok);
    if (explain(f, "g", "g-1", &x, &err) == 1) {
        TST_TRUE(x.has_reward && !x.defaulted && x.n_outcomes == 1 && x.reward == 0.5);
        proto_explain_fini(&x);
    } else {
        TST_TRUE(0 && "explain g-1");
    }
}

static void canary_mixture_is_explained(tst_daemon *f)
{
    static rlfeed_reply d, err;
    proto_explain x;
    const char *cands = "{\"id\":\"b1\",\"base_logit\":2.0},{\"id\":\"b0\",\"base_logit\":1.0},"
                        "{\"id\":\"b2\",\"base_logit\":-1.0}";
    char ev[32];
    int slots[2] = {0, 0};
    for (int i = 0; i < 20; i++) {
        snprintf(ev, sizeof(ev), "m-%d", i);
        TST_TRUE(decide(f, "m", ev, cands, &d));
        slots[strcmp(d.slot, "online") == 0]++;
        if (explain(f, "m", ev, &x, &err) != 1) {
            TST_TRUE(0 && "explain m");
            continue;
        }
        check_matches(&x, &d);
        /* Both slots are fresh pg heads: scores are base_logit / T, b1 on top. */
        TST_TRUE(x.cand[0].head_score == 2.0f && x.cand[2].head_score == -1.0f);
        TST_TRUE(x.cand[0].exploration == (float)(0.1 / 3.0));
        TST_TRUE(x.cand[1].exploration == x.cand[1].probability);
        proto_explain_fini(&x);
    }
    TST_TRUE(slots[0] > 0 && slots[1] > 0); /* 20 draws at 0.3: both slots served */
}

/* Poll until policy @policy has @n joined examples stored in Redis. */
static bool wait_joined(tst_daemon *f, const char *policy, uint64_t n)
{
    sto_store *st = NULL;
    char err[128];
    if (sto_store_open(sto_server_url(f->redis), 2000, &st, err, sizeof(err)) != BASE_OK) {
        return false;
    }
    bool ok = false;
    int64_t deadline = tst_now_ms() + 10000;
    while (!ok && tst_now_ms() < deadline) {
        uint64_t len = 0;
        ok = sto_store_len(st, STO_JOINED, policy, &len) == BASE_OK && len >= n;
    }
    sto_store_close(st);
    return ok;
}

/* Once the window closed and the joined record is stored, explain reads both from Redis. */
static void joined_decisions_are_explained_from_redis(tst_daemon *f)
{
    static rlfeed_reply err;
    proto_explain x;
    TST_TRUE(tst_clock_set(f, T0 + WINDOW + 1000));
    TST_TRUE(wait_joined(f, "g", 5));
    TST_TRUE(wait_joined(f, "m", 20));
    char ev[32];
    for (int i = 0; i < 4; i++) {
        snprintf(ev, sizeof(ev), "g-%d", i);
        if (explain(f, "g", ev, &x, &err) != 1) {
            TST_TRUE(0 && "explain joined g");
            continue;
        }
        check_matches(&x, &g_decided[i]);
        TST_STREQ(x.status, "joined");
        TST_TRUE(x.has_reward);
        if (i == 1) {
            TST_TRUE(!x.defaulted && x.n_outcomes == 1 && x.reward == 0.5);
        } else {
            TST_TRUE(x.defaulted && x.n_outcomes == 0);
        }
        for (uint32_t c = 0; c < x.n_cand; c++) {
            TST_TRUE(x.cand[c].exploration == (float)(0.2 / 4.0));
        }
        proto_explain_fini(&x);
    }
    TST_EQ(explain(f, "m", "m-3", &x, &err), 1);
    TST_STREQ(x.status, "joined");
    proto_explain_fini(&x);
    TST_EQ(explain(f, "g", "never-decided", &x, &err), 0);
    TST_STREQ(rlfeed_errcode_name(err.error.code), "not_found");
}

/* One outcome as explain should list it. */
typedef struct want_outcome {
    const char *signal;
    double value;
    const char *outcome_id; /* "" for none */
    long long ts;
    const char *status;
} want_outcome;

/* explain @ev of g: @status, and exactly the outcomes @w (n), in order. */
static void check_outcomes(tst_daemon *f, const char *ev, const char *status, const want_outcome *w,
                           uint32_t n)
{
    static rlfeed_reply err;
    proto_explain x;
    if (explain(f, "g", ev, &x, &err) != 1) {
        TST_TRUE(0 && "explain with outcomes");
        return;
    }
    TST_STREQ(x.status, status);
    TST_TRUE(x.has_reward && !x.outcomes_truncated);
    TST_EQ(x.n_listed, n);
    for (uint32_t i = 0; i < n && i < x.n_listed; i++) {
        const proto_explain_outcome *o = &x.outcomes[i];
        TST_STREQ(o->signal, w[i].signal);
        TST_TRUE(o->value == w[i].value);
        TST_STREQ(o->outcome_id, w[i].outcome_id);
        TST_EQ(o->ts_ms, w[i].ts);
        TST_STREQ(o->status, w[i].status);
    }
    proto_explain_fini(&x);
}

static bool feedback(tst_daemon *f, const char *ev, const char *signal, double value,
                     const char *outcome_id, const char *supersedes, const char *want_status)
{
    static rlfeed_reply r;
    base_err e = tst_callf(f, &r,
                           "{\"op\":\"feedback\",\"policy\":\"g\",\"event_id\":\"%s\","
                           "\"signal\":\"%s\",\"value\":%.17g,\"outcome_id\":\"%s\","
                           "\"supersedes\":\"%s\"}",
                           ev, signal, value, outcome_id, supersedes);
    bool ok = e == BASE_OK && r.ok && strcmp(r.status, want_status) == 0;
    if (!ok) {
        printf("# feedback %s %s: %s, ok %d, status \"%s\"\n", ev, outcome_id, base_strerror(e),
               (int)r.ok, r.status);
    }
    return ok;
}

/* g-o's outcomes in order: thumbs_up, resolved, csat 4 corrected to 5 (and, once joined, late). */
static const want_outcome g_o_outcomes[] = {
    {"thumbs_up", 1.0, "o-1", T0, "applied"},
    {"resolved", 1.0, "o-2", T0, "applied"},
    {"csat", 4.0, "o-3", T0, "superseded"},
    {"csat", 5.0, "o-4", T0, "applied"},
    {"thumbs_up", 1.0, "", T0 + WINDOW + 1000, "late"},
};

static void pending_outcomes_are_listed(tst_daemon *f)
{
    static rlfeed_reply d, err;
    proto_explain x;
    TST_TRUE(decide(f, "g", "g-o", "{\"id\":\"a1\",\"base_logit\":0.5}", &d));
    TST_TRUE(feedback(f, "g-o", "thumbs_up", 1.0, "o-1", "", "matched"));
    TST_TRUE(feedback(f, "g-o", "resolved", 1.0, "o-2", "", "matched"));
    TST_TRUE(feedback(f, "g-o", "csat", 4.0, "o-3", "", "matched"));
    TST_TRUE(feedback(f, "g-o", "thumbs_up", 1.0, "o-1", "", "duplicate"));
    TST_TRUE(feedback(f, "g-o", "csat", 5.0, "o-4", "o-3", "corrected"));
    check_outcomes(f, "g-o", "pending", g_o_outcomes, 4);
    if (explain(f, "g", "g-o", &x, &err) == 1) {
        TST_EQ(x.n_outcomes, 3); /* the superseded one no longer counts */
        proto_explain_fini(&x);
    }
}

/* After the window: g-o from Redis, with a late outcome too. */
static void joined_outcomes_are_listed(tst_daemon *f)
{
    TST_TRUE(feedback(f, "g-o", "thumbs_up", 1.0, "", "", "late"));
    check_outcomes(f, "g-o", "joined", g_o_outcomes, 5);
    check_outcomes(f, "g-0", "joined", NULL, 0);
}

/* g-q: decided now, with two outcomes; stays pending across the restart. */
static const want_outcome g_q_outcomes[] = {
    {"resolved", 0.0, "q-1", T0 + WINDOW + 1000, "applied"},
    {"csat", 2.0, "", T0 + WINDOW + 1000, "applied"},
};

static void pending_outcomes_before_restart(tst_daemon *f)
{
    static rlfeed_reply d;
    TST_TRUE(decide(f, "g", "g-q", "{\"id\":\"a2\",\"base_logit\":0.5}", &d));
    TST_TRUE(feedback(f, "g-q", "resolved", 0.0, "q-1", "", "matched"));
    TST_TRUE(feedback(f, "g-q", "csat", 2.0, "", "", "matched"));
    check_outcomes(f, "g-q", "pending", g_q_outcomes, 2);
}

static void outcomes_survive_a_restart(tst_daemon *f)
{
    char start[32];
    TST_EQ(tst_daemon_stop(f), 0);
    snprintf(start, sizeof(start), "%lld", T0 + WINDOW + 1000);
    const char *extra[] = {"--manual-clock", start, NULL};
    bool up = tst_daemon_start(f, true, extra);
    TST_TRUE(up);
    if (up) {
        check_outcomes(f, "g-o", "joined", g_o_outcomes, 5);
        check_outcomes(f, "g-q", "pending", g_q_outcomes, 2);
    }
}

static void refusals(tst_daemon *f)
{
    static rlfeed_reply err;
    proto_explain x;
    TST_EQ(explain(f, "g", "no-such-event", &x, &err), 0);
    TST_STREQ(rlfeed_errcode_name(err.error.code), "not_found");
    TST_EQ(explain(f, "nope", "g-0", &x, &err), 0);
    TST_STREQ(rlfeed_errcode_name(err.error.code), "unknown_policy");
    TST_OK(tst_callf(f, &err, "{\"op\":\"explain\",\"policy\":\"g\"}"));
    TST_TRUE(!err.ok);
    TST_STREQ(rlfeed_errcode_name(err.error.code), "bad_request");
    TST_OK(tst_callf(f, &err, "{\"op\":\"explain\",\"policy\":\"g\",\"event_id\":7}"));
    TST_TRUE(!err.ok);
    TST_STREQ(rlfeed_errcode_name(err.error.code), "bad_request");
}

/* `rlfeed explain --policy g EVENT_ID` asks for the same breakdown. */
static void cli_explains_by_event_id(tst_daemon *f)
{
    char out[700];
    snprintf(out, sizeof(out), "%s/cli-explain.json", f->dir);
    const char *args[] = {"explain", "--url", f->url, "--policy", "g", "g-1", NULL};
    TST_EQ(tst_run("RLFEED", args, out, 30000), 0);
    json_error_t jerr;
    json_t *r = json_load_file(out, 0, &jerr);
    TST_TRUE(json_is_true(json_object_get(r, "ok")));
    TST_STREQ(json_string_value(json_object_get(r, "event_id")), "g-1");
    json_t *c = json_object_get(r, "candidates");
    TST_EQ(json_array_size(c), 4);
    /* The same probabilities as the decide reply (float32, printed exactly). */
    int same = 0;
    for (size_t k = 0; k < json_array_size(c) && k < 4; k++) {
        double p = json_number_value(json_object_get(json_array_get(c, k), "probability"));
        same += (float)p == g_decided[1].pmf[k];
    }
    TST_EQ(same, 4);
    json_decref(r);
    /* A bare event id without --policy is a usage error. */
    const char *bare[] = {"explain", "--url", f->url, "g-1", NULL};
    TST_EQ(tst_run("RLFEED", bare, out, 30000), 2);
}

int main(void)
{
    tst_daemon f;
    if (!tst_daemon_init(&f, "rlfeed-explain", CONFIG)) {
        TST_TRUE(0 && "fixture");
        tst_daemon_fini(&f, false);
        return tst_done();
    }
    char start[32];
    snprintf(start, sizeof(start), "%lld", T0);
    const char *extra[] = {"--manual-clock", start, NULL};
    bool up = tst_daemon_start(&f, true, extra);
    TST_TRUE(up);
    if (up) {
        greedy_pending_decisions_are_explained(&f);
        cli_explains_by_event_id(&f);
        canary_mixture_is_explained(&f);
        pending_outcomes_are_listed(&f);
        refusals(&f);
        joined_decisions_are_explained_from_redis(&f);
        joined_outcomes_are_listed(&f);
        pending_outcomes_before_restart(&f);
        outcomes_survive_a_restart(&f);
    }
    TST_EQ(tst_daemon_stop(&f), 0);
    tst_daemon_fini(&f, tst_failed > 0);
    rlfeed_client_lib_fini();
    return tst_done();
}
