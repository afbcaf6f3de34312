/*
 * The reward engine through a real rlfeedd and Redis, on the daemon's
 * manual clock: a 5-turn support conversation with turn-level thumbs and a
 * CSAT posted three hours after the last turn, credited by discounted
 * return-to-go; the joined examples are read back from the Redis stream and
 * checked exactly (reward, share, credit rule, spec version). Also: a late
 * outcome is logged and counted but never changes a reward; a deferred
 * decision that is never activated yields no joined example; out-of-range
 * values and the user rate cap are refused with their codes.
 */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/record.h"
#include "daemon.h"
#include "proc.h"
#include "proto/auth.h"
#include "storage/store.h"
#include "tap.h"

#define T0 1700000000000LL
#define MINUTE 60000LL
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)

static const char CONFIG[] = "[server]\n"
                             "tick_ms = 2\n"
                             "snapshot_interval_ms = 100000\n"
                             "[policy cs]\n"
                             "dim = 2\n"
                             "actions = answer_a, answer_b\n"
                             "window_ms = 86400000\n"
                             "credit = discounted\n"
                             "credit_gamma = 0.5\n"
                             "user_rate_per_s = 1\n"
                             "user_burst = 2\n"
                             "reward_version = cs-test-1\n"
                             "[signal cs.thumbs_up]\n"
                             "kind = event\n"
                             "weight = 0.5\n"
                             "[signal cs.thumbs_down]\n"
                             "kind = event\n"
                             "weight = -0.5\n"
                             "[signal cs.csat]\n"
                             "kind = number\n"
                             "min = 1\n"
                             "max = 5\n"
                             "map_min = -1\n"
                             "map_max = 1\n"
                             "aggregate = last\n";

static bool decide(tst_daemon *f, const char *ev, const char *conv, int turn, bool deferred)
{
    rlfeed_reply r;
    base_err e = tst_callf(f, &r,
                           "{\"op\":\"decide\",\"policy\":\"cs\",\"event_id\":\"%s\","
                           "\"conversation_id\":\"%s\",\"turn\":%d,\"deferred\":%s,"
                           "\"context\":{\"embedding\":[0.5,-1]},\"candidates\":["
                           "{\"id\":\"answer_a\",\"base_logit\":0.2},"
                           "{\"id\":\"answer_b\",\"base_logit\":0.1}]}",
                           ev, conv, turn, deferred ? "true" : "false");
    return e == BASE_OK && r.ok;
}

/*
 * Poll until policy cs has @n joined examples, counted by the join and
 * stored in Redis (stored after they are emitted).
 */
static bool wait_joined(tst_daemon *f, long long n)
{
    sto_store *st = NULL;
    char err[128];
    if (sto_store_open(sto_server_url(f->redis), 2000, &st, err, sizeof(err)) != BASE_OK) {
        return false;
    }
    bool ok = false;
    int64_t deadline = tst_now_ms() + 10000;
    while (!ok && tst_now_ms() < deadline) {
        json_t *s = tst_stats(f);
        long long got = tst_stat_join(s, "cs", "joined");
        json_decref(s);
        uint64_t len = 0;
        ok = got >= n && sto_store_len(st, STO_JOINED, "cs", &len) == BASE_OK && len >= (uint64_t)n;
    }
    sto_store_close(st);
    return ok;
}

static void conversation_is_credited_and_stored(tst_daemon *f, sto_store *st)
{
    rlfeed_reply r;
    TST_TRUE(tst_clock_set(f, T0));
    char ev[32];
    for (int t = 1; t <= 5; t++) {
        snprintf(ev, sizeof(ev), "conv1-t%d", t);
        TST_TRUE(decide(f, ev, "conv1", t, false));
        TST_TRUE(tst_clock_set(f, T0 + t * MINUTE));
    }
    /* Turn-level thumbs: up on turn 2, down on turn 4. */
    TST_OK(tst_callf(f, &r,
                     "{\"op\":\"feedback\",\"policy\":\"cs\",\"event_id\":\"conv1-t2\","
                     "\"signal\":\"thumbs_up\",\"outcome_id\":\"th-2\"}"));
    TST_TRUE(r.ok);
    TST_STREQ(r.status, "matched");
    TST_OK(tst_callf(f, &r,
                     "{\"op\":\"feedback\",\"policy\":\"cs\",\"event_id\":\"conv1-t4\","
                     "\"signal\":\"thumbs_down\"}"));
    TST_TRUE(r.ok);
    /* A retry of th-2 is harmless. */
    TST_OK(tst_callf(f, &r,
                     "{\"op\":\"feedback\",\"policy\":\"cs\",\"event_id\":\"conv1-t2\","
                     "\"signal\":\"thumbs_up\",\"outcome_id\":\"th-2\"}"));
    TST_TRUE(r.ok && r.duplicate);
    /* Three hours later, the customer answers the survey: CSAT 4 -> 0.5. */
    TST_TRUE(tst_clock_set(f, T0 + 5 * MINUTE + 3 * HOUR));
    TST_OK(tst_callf(f, &r,
                     "{\"op\":\"feedback\",\"policy\":\"cs\",\"conversation_id\":\"conv1\","
                     "\"signal\":\"csat\",\"value\":4,\"outcome_id\":\"csat-1\"}"));
    TST_TRUE(r.ok);
    TST_STREQ(r.status, "matched");
    /* Out of range, and an unknown signal, are refused. */
    TST_OK(tst_callf(f, &r,
                     "{\"op\":\"feedback\",\"policy\":\"cs\",\"conversation_id\":\"conv1\","
                     "\"signal\":\"csat\",\"value\":6}"));
    TST_TRUE(!r.ok && r.error.code == PROTO_E_OUT_OF_RANGE);
    /* A day later every window has closed. */
    TST_TRUE(tst_clock_set(f, T0 + 5 * MINUTE + DAY + MINUTE));
    TST_TRUE(wait_joined(f, 5));

    sto_entry *en = NULL;
    size_t n = 0;
    TST_OK(sto_store_read(st, STO_JOINED, "cs", "0", 100, &en, &n));
    TST_EQ(n, 5);
    /* turn t gets 0.5^(5 - t) of CSAT's 0.5, plus its own thumbs. */
    double want[6] = {0, 0.5 * 0.0625, 0.5 + 0.5 * 0.125, 0.5 * 0.25, -0.5 + 0.5 * 0.5, 0.5};
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        const base_joined *j = en[i].rec;
        int t = (int)j->decision->turn;
        if (t < 1 || t > 5) {
            continue;
        }
        seen++;
        printf("# turn %d reward %.6f share %.6f credit %u version %s\n", t, j->reward, j->share,
               j->credit, j->spec_version);
        TST_NEAR(j->reward, want[t], 1e-12);
        TST_NEAR(j->share, pow(0.5, 5 - t), 1e-12);
        TST_EQ(j->credit, BASE_CREDIT_DISCOUNTED);
        TST_STREQ(j->spec_version, "cs-test-1");
        TST_TRUE(!j->defaulted && !j->unknown);
    }
    TST_EQ(seen, 5);
    sto_entries_free(STO_JOINED, en, n);

    /* The outcomes are in the log of record too: 2 thumbs + 1 CSAT (the duplicate is not). */
    uint64_t len = 0;
    TST_OK(sto_store_len(st, STO_OUTCOMES, "cs", &len));
    TST_EQ(len, 3);

    /* A thumbs for turn 5 now is late: logged, counted, never learned. */
    TST_OK(tst_callf(f, &r,
                     "{\"op\":\"feedback\",\"policy\":\"cs\",\"event_id\":\"conv1-t5\","
                     "\"signal\":\"thumbs_up\"}"));
    TST_TRUE(r.ok);
    TST_STREQ(r.status, "late");
    TST_OK(sto_store_len(st, STO_OUTCOMES, "cs", &len));
    TST_EQ(len, 4);
    uint64_t jl = 0;
    TST_OK(sto_store_len(st, STO_JOINED, "cs", &jl));
    TST_EQ(jl, 5);
    json_t *s = tst_stats(f);
    TST_EQ(tst_stat_join(s, "cs", "late"), 1);
    TST_EQ(tst_stat_join(s, "cs", "duplicate"), 1);
    TST_EQ(tst_stat_join(s, "cs", "rejected_value"), 1);
    TST_STREQ(tst_stat_str(s, "cs", "reward_version"), "cs-test-1");
    json_decref(s);
}

static void deferred_needs_activation(tst_daemon *f)
{
    rlfeed_reply r;
    long long t = T0 + 10 * DAY;
    TST_TRUE(tst_clock_set(f, t));
    TST_TRUE(decide(f, "shown", "conv2", 1, true));
    TST_TRUE(decide(f, "never-shown", "conv3", 1, true));
    TST_OK(tst_callf(f, &r, "{\"op\":\"activate\",\"policy\":\"cs\",\"event_id\":\"shown\"}"));
    TST_TRUE(r.ok);
    TST_STREQ(r.status, "matched");
    TST_OK(tst_callf(f, &r, "{\"op\":\"activate\",\"policy\":\"cs\",\"event_id\":\"shown\"}"));
    TST_TRUE(r.ok && r.duplicate); /* {"ok":true,"duplicate":true,"status":"duplicate"} */
    TST_STREQ(r.status, "duplicate");
    TST_OK(tst_callf(f, &r, "{\"op\":\"activate\",\"policy\":\"cs\",\"event_id\":\"nobody\"}"));
    TST_TRUE(!r.ok && r.error.code == PROTO_E_UNKNOWN_EVENT);
    TST_TRUE(tst_clock_set(f, t + DAY + MINUTE));
    TST_TRUE(wait_joined(f, 6));
    json_t *s = tst_stats(f);
    TST_EQ(tst_stat_join(s, "cs", "joined"), 6);
    TST_EQ(tst_stat_join(s, "cs", "not_activated"), 1);
    TST_EQ(tst_stat_join(s, "cs", "activations"), 1); /* the duplicate is not one */
    TST_EQ(tst_stat_join(s, "cs", "pending"), 0);
    json_decref(s);
}

static void user_rate_cap_refuses_floods(tst_daemon *f)
{
    rlfeed_reply r;
    long long t = T0 + 20 * DAY;
    TST_TRUE(tst_clock_set(f, t));
    TST_TRUE(decide(f, "rate-1", "conv4", 1, false));
    int ok = 0, limited = 0;
    for (int i = 0; i < 4; i++) {
        TST_OK(tst_callf(f, &r,
                         "{\"op\":\"feedback\",\"policy\":\"cs\",\"event_id\":\"rate-1\","
                         "\"signal\":\"thumbs_up\",\"user_id\":\"u-noisy\"}"));
        ok += r.ok;
        limited += !r.ok && r.error.code == PROTO_E_RATE_LIMITED;
    }
    TST_EQ(ok, 2); /* the burst */
    TST_EQ(limited, 2);
    /* One second later one more token has dripped in. */
    TST_TRUE(tst_clock_set(f, t + 1000));
    TST_OK(tst_callf(f, &r,
                     "{\"op\":\"feedback\",\"policy\":\"cs\",\"event_id\":\"rate-1\","
                     "\"signal\":\"thumbs_up\",\"user_id\":\"u-noisy\"}"));
    TST_TRUE(r.ok);
    json_t *s = tst_stats(f);
    TST_EQ(tst_rejected(s, "rate_limited"), 2);
    json_decref(s);
}

/*
 * A decision takes max_outcomes (16 by default) outcomes; the next is refused limit, and the
 * message says which limit; so is a conversation-level one that would reach it.
 */
static void outcome_cap_is_limit(tst_daemon *f)
{
    rlfeed_reply r;
    TST_TRUE(tst_clock_set(f, T0 + 30 * DAY));
    TST_TRUE(decide(f, "capped", "conv5", 1, false));
    int ok = 0;
    for (int i = 0; i < 16; i++) {
        ok += tst_callf(f, &r,
                        "{\"op\":\"feedback\",\"policy\":\"cs\",\"event_id\":\"capped\","
                        "\"signal\":\"thumbs_up\",\"outcome_id\":\"c-%d\"}",
                        i) == BASE_OK &&
              r.ok;
    }
    TST_EQ(ok, 16);
    TST_OK(tst_callf(f, &r,
                     "{\"op\":\"feedback\",\"policy\":\"cs\",\"event_id\":\"capped\","
                     "\"signal\":\"thumbs_up\",\"outcome_id\":\"c-16\"}"));
    TST_TRUE(!r.ok && r.error.code == PROTO_E_LIMIT);
    TST_STREQ(r.error.message, "event_id \"capped\" has its maximum 16 outcomes (applied or held), "
                               "or the early holding area is full");
    TST_OK(tst_callf(f, &r,
                     "{\"op\":\"feedback\",\"policy\":\"cs\",\"conversation_id\":\"conv5\","
                     "\"signal\":\"csat\",\"value\":4}"));
    TST_TRUE(!r.ok && r.error.code == PROTO_E_LIMIT);
    /* The conversation id is quoted as the join knows it: its pseudonym (docs/security.md). */
    TST_TRUE(strncmp(r.error.message, "conversation_id \"~", 18) == 0 &&
             strstr(r.error.message, "\": a decision has its maximum 16 outcomes, or it has over "
                                     "1024 open decisions") != NULL);
}

/*
 * The client library's conversation arguments (decide_ex, activate, feedback_conv) reach
 * the join.
 */
static void client_library_speaks_conversations(tst_daemon *f, sto_store *st)
{
    static const char *const ids[2] = {"answer_a", "answer_b"};
    static const float logits[2] = {0.2f, 0.1f};
    static const float emb[2] = {0.5f, -1.0f};
    rlfeed_decide_opts o = {.event_id = "c5-t1", .conversation_id = "conv5", .turn = 1};
    rlfeed_reply r;
    long long t = T0 + 30 * DAY;

    TST_TRUE(tst_clock_set(f, t));
    TST_OK(rlfeed_client_decide_ex(f->c, "cs", &o, emb, 2, 2, ids, logits, &r));
    TST_TRUE(r.ok);
    o.event_id = "c5-t2";
    o.turn = 2;
    o.deferred = true;
    TST_OK(rlfeed_client_decide_ex(f->c, "cs", &o, emb, 2, 2, ids, logits, &r));
    TST_TRUE(r.ok);
    TST_OK(rlfeed_client_activate(f->c, "cs", "c5-t2", &r));
    TST_TRUE(r.ok);
    TST_STREQ(r.status, "matched");
    /* CSAT 5 -> 1.0, credited to both turns: 0.5^(2 - t). */
    TST_OK(rlfeed_client_feedback_conv(f->c, "cs", "conv5", "csat", 5.0, "csat-5", &r));
    TST_TRUE(r.ok);
    TST_STREQ(r.status, "matched");
    TST_EQ(rlfeed_client_feedback_conv(f->c, "cs", "", "csat", 5.0, NULL, &r), BASE_EINVAL);
    TST_EQ(rlfeed_client_activate(f->c, "cs", NULL, &r), BASE_EINVAL);
    TST_TRUE(tst_clock_set(f, t + DAY + MINUTE));
    TST_TRUE(wait_joined(f, 9)); /* 6 before, rate-1, and these two */

    sto_entry *en = NULL;
    size_t n = 0;
    int seen = 0;
    /* Records hold the conversation's pseudonym (docs/security.md), under the key in Redis. */
    uint8_t key[32];
    bool found = false;
    char conv5[PROTO_PSEUDONYM_LEN + 1];
    TST_OK(sto_pseudonym_key_get(st, key, &found));
    TST_TRUE(found);
    proto_pseudonym(key, "conversation", "conv5", conv5);
    TST_OK(sto_store_read(st, STO_JOINED, "cs", "0", 100, &en, &n));
    for (size_t i = 0; i < n; i++) {
        const base_joined *j = en[i].rec;
        if (strcmp(j->decision->conversation_id, conv5) != 0) {
            continue;
        }
        int turn = (int)j->decision->turn;
        seen++;
        printf("# conv5 turn %d deferred %u reward %.6f\n", turn, j->decision->deferred, j->reward);
        TST_TRUE(turn == 1 || turn == 2);
        TST_EQ(j->decision->deferred, turn == 2);
        TST_NEAR(j->reward, turn == 2 ? 1.0 : 0.5, 1e-12);
    }
    TST_EQ(seen, 2);
    sto_entries_free(STO_JOINED, en, n);
}

int main(void)
{
    tst_daemon f;
    if (!tst_daemon_init(&f, "rlfeed-rewards", CONFIG)) {
        TST_TRUE(0 && "fixture");
        tst_daemon_fini(&f, false);
        return tst_done();
    }
    char start[32];
    snprintf(start, sizeof(start), "%lld", T0);
    const char *extra[] = {"--manual-clock", start, NULL};
    sto_store *st = NULL;
    char err[256] = "";
    bool up = tst_daemon_start(&f, true, extra);
    TST_TRUE(up);
    TST_OK(sto_store_open(sto_server_url(f.redis), 2000, &st, err, sizeof(err)));
    if (up && st != NULL) {
        conversation_is_credited_and_stored(&f, st);
        deferred_needs_activation(&f);
        user_rate_cap_refuses_floods(&f);
        client_library_speaks_conversations(&f, st);
        outcome_cap_is_limit(&f);
    }
    sto_store_close(st);
    TST_EQ(tst_daemon_stop(&f), 0);
    tst_daemon_fini(&f, tst_failed > 0);
    rlfeed_client_lib_fini();
    return tst_done();
}
