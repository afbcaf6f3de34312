#include <math.h>
#include <stdint.h>
#include <string.h>

#include "base/record.h"
#include "reward/join.h"
#include "tap.h"

/*
 * Fixture spec: thumb 0.5, resolved 1.0, escalated -0.75; clip [-1, 1];
 * default -0.25 (kept apart from 0 so a default is visible); window 1000 ms;
 * at most 4 outcomes per decision. Weights and values are dyadic, so every
 * expected reward below is exact and compared with ==.
 */
static void spec_fixture(rwd_spec *spec)
{
    rwd_spec_default(spec);
    const char *names[3] = {"thumb", "resolved", "escalated"};
    double weights[3] = {0.5, 1.0, -0.75};
    for (uint32_t i = 0; i < 3; i++) {
        (void)base_strlcpy(spec->signal[i].name, names[i], sizeof(spec->signal[i].name));
        spec->signal[i].weight = weights[i];
    }
    spec->n_signals = 3;
    spec->default_reward = -0.25;
    spec->window_ms = 1000;
    spec->max_outcomes = 4;
}

static rwd_join *join_make(size_t max_pending)
{
    rwd_spec spec;
    spec_fixture(&spec);
    rwd_join *j = NULL;
    TST_OK(rwd_join_new(&spec, max_pending, &j));
    return j;
}

static base_decision *decision_make(const char *event_id, int64_t ts_ms)
{
    base_decision *d = base_decision_new(2, 2);
    (void)base_strlcpy(d->event_id, event_id, sizeof(d->event_id));
    (void)base_strlcpy(d->policy, "faq", sizeof(d->policy));
    d->ts_ms = ts_ms;
    d->pmf[0] = 0.5f;
    d->pmf[1] = 0.5f;
    return d;
}

static void add_decision(rwd_join *j, const char *event_id, int64_t ts_ms)
{
    base_decision *d = decision_make(event_id, ts_ms);
    base_err e = rwd_join_add_decision(j, d);
    TST_OK(e);
    if (e != BASE_OK) {
        base_decision_free(d);
    }
}

static base_outcome outcome_make(const char *event_id, const char *outcome_id, const char *signal,
                                 double value)
{
    base_outcome o;
    memset(&o, 0, sizeof(o));
    (void)base_strlcpy(o.policy, "faq", sizeof(o.policy));
    (void)base_strlcpy(o.event_id, event_id, sizeof(o.event_id));
    (void)base_strlcpy(o.outcome_id, outcome_id, sizeof(o.outcome_id));
    (void)base_strlcpy(o.signal, signal, sizeof(o.signal));
    o.value = value;
    return o;
}

/* Adds the outcome and returns its match, or -1 - err on error. */
static int add_outcome(rwd_join *j, const char *event_id, const char *outcome_id,
                       const char *signal, double value)
{
    base_outcome o = outcome_make(event_id, outcome_id, signal, value);
    rwd_match m = RWD_MATCHED;
    base_err e = rwd_join_add_outcome(j, &o, &m);
    return e == BASE_OK ? (int)m : -1 - (int)e;
}

/* Expires everything closed at @now and returns the single joined example expected. */
static base_joined *expire_one(rwd_join *j, int64_t now_ms)
{
    base_joined *out[4] = {NULL};
    size_t n = rwd_join_expire(j, now_ms, out, 4);
    TST_EQ(n, 1);
    for (size_t i = 1; i < n; i++) {
        base_joined_free(out[i]);
    }
    return out[0];
}

static void reward_is_weighted_sum_of_signals(void)
{
    rwd_join *j = join_make(8);
    add_decision(j, "ev-1", 100);
    TST_EQ(add_outcome(j, "ev-1", "o-1", "thumb", 1.0), RWD_MATCHED);     /* +0.5 */
    TST_EQ(add_outcome(j, "ev-1", "o-2", "resolved", 0.25), RWD_MATCHED); /* +0.25 */
    TST_EQ(add_outcome(j, "ev-1", "o-3", "escalated", 0.5), RWD_MATCHED); /* -0.375 */
    base_joined *jn = expire_one(j, 1100);
    TST_TRUE(jn != NULL && jn->reward == 0.375);
    TST_EQ(jn->n_outcomes, 3);
    TST_EQ(jn->defaulted, 0);
    TST_EQ(jn->joined_ts_ms, 1100);
    TST_STREQ(jn->decision->event_id, "ev-1");
    rwd_join_stats st;
    rwd_join_get_stats(j, &st);
    TST_EQ(st.matched, 3);
    TST_EQ(st.joined, 1);
    TST_EQ(st.pending, 0);
    TST_EQ(st.defaulted, 0);
    base_joined_free(jn);
    rwd_join_free(j);
}

static void reward_is_clipped_at_both_ends(void)
{
    rwd_join *j = join_make(8);
    add_decision(j, "hi", 0);
    add_decision(j, "lo", 0);
    TST_EQ(add_outcome(j, "hi", "a", "resolved", 1.0), RWD_MATCHED);
    TST_EQ(add_outcome(j, "hi", "b", "thumb", 1.0), RWD_MATCHED); /* 1.5 */
    TST_EQ(add_outcome(j, "lo", "a", "escalated", 1.0), RWD_MATCHED);
    TST_EQ(add_outcome(j, "lo", "b", "escalated", 1.0), RWD_MATCHED); /* -1.5 */
    base_joined *out[2] = {NULL, NULL};
    TST_EQ(rwd_join_expire(j, 1000, out, 2), 2);
    TST_TRUE(out[0] != NULL && out[0]->reward == 1.0);
    TST_TRUE(out[1] != NULL && out[1]->reward == -1.0);
    TST_EQ(out[1]->defaulted, 0);
    base_joined_free(out[0]);
    base_joined_free(out[1]);
    rwd_join_free(j);
}

static void no_outcome_gives_default(void)
{
    rwd_join *j = join_make(8);
    add_decision(j, "quiet", 5);
    base_joined *jn = expire_one(j, 1005);
    TST_TRUE(jn != NULL && jn->reward == -0.25);
    TST_EQ(jn->defaulted, 1);
    TST_EQ(jn->n_outcomes, 0);
    rwd_join_stats st;
    rwd_join_get_stats(j, &st);
    TST_EQ(st.defaulted, 1);
    base_joined_free(jn);
    rwd_join_free(j);
}

static void duplicate_outcome_ids_are_ignored_and_counted(void)
{
    rwd_join *j = join_make(8);
    add_decision(j, "ev", 0);
    TST_EQ(add_outcome(j, "ev", "same", "thumb", 1.0), RWD_MATCHED);
    TST_EQ(add_outcome(j, "ev", "same", "thumb", 1.0), RWD_DUPLICATE);
    TST_EQ(add_outcome(j, "ev", "same", "resolved", 0.5), RWD_DUPLICATE); /* the id decides */
    rwd_join_stats st;
    rwd_join_get_stats(j, &st);
    TST_EQ(st.matched, 1);
    TST_EQ(st.duplicates, 2);
    base_joined *jn = expire_one(j, 1000);
    TST_TRUE(jn != NULL && jn->reward == 0.5);
    TST_EQ(jn->n_outcomes, 1);
    base_joined_free(jn);
    rwd_join_free(j);
}

static void outcomes_without_id_are_not_deduplicated(void)
{
    rwd_join *j = join_make(8);
    add_decision(j, "ev", 0);
    TST_EQ(add_outcome(j, "ev", "", "thumb", 1.0), RWD_MATCHED);
    TST_EQ(add_outcome(j, "ev", "", "thumb", 1.0), RWD_MATCHED);
    base_joined *jn = expire_one(j, 1000);
    TST_TRUE(jn != NULL && jn->reward == 1.0);
    TST_EQ(jn->n_outcomes, 2);
    base_joined_free(jn);
    rwd_join_free(j);
}

static void unknown_event_is_reported_and_counted(void)
{
    rwd_join *j = join_make(8);
    add_decision(j, "ev", 0);
    TST_EQ(add_outcome(j, "nope", "o", "thumb", 1.0), RWD_UNKNOWN_EVENT);
    base_outcome conv = outcome_make("", "o2", "thumb", 1.0);
    (void)base_strlcpy(conv.conversation_id, "conv-1", sizeof(conv.conversation_id));
    rwd_match m = RWD_MATCHED;
    TST_OK(rwd_join_add_outcome(j, &conv, &m));
    TST_EQ(m, RWD_UNKNOWN_EVENT); /* conversation credit comes later */
    rwd_join_stats st;
    rwd_join_get_stats(j, &st);
    TST_EQ(st.unknown_event, 2);
    TST_EQ(st.matched, 0);
    base_joined *jn = expire_one(j, 1000);
    TST_EQ(jn->defaulted, 1);
    /* After expiry the event is no longer pending. */
    TST_EQ(add_outcome(j, "ev", "late", "thumb", 1.0), RWD_UNKNOWN_EVENT);
    base_joined_free(jn);
    rwd_join_free(j);
}

static void invalid_outcomes_change_nothing(void)
{
    rwd_join *j = join_make(8);
    add_decision(j, "ev", 0);
    TST_EQ(add_outcome(j, "ev", "a", "thumb", 1.0), RWD_MATCHED);
    rwd_join_stats before, after;
    rwd_join_get_stats(j, &before);

    base_outcome o = outcome_make("ev", "b", "csat", 1.0);
    rwd_match m = (rwd_match)77;
    TST_EQ(rwd_join_add_outcome(j, &o, &m), BASE_EINVAL); /* unknown signal */
    TST_EQ(m, 77);
    TST_EQ(rwd_join_check_outcome(j, &o, &m), BASE_EINVAL);
    o = outcome_make("nope", "b", "csat", 1.0);
    TST_EQ(rwd_join_add_outcome(j, &o, &m), BASE_EINVAL); /* signal checked first */
    o = outcome_make("ev", "b", "thumb", NAN);
    TST_EQ(rwd_join_add_outcome(j, &o, &m), BASE_EINVAL);
    o = outcome_make("ev", "b", "thumb", -INFINITY);
    TST_EQ(rwd_join_add_outcome(j, &o, &m), BASE_EINVAL);
    TST_EQ(m, 77);
    rwd_join_get_stats(j, &after);
    TST_TRUE(memcmp(&before, &after, sizeof(before)) == 0);

    /* The id "b" was not recorded by the failed calls. */
    TST_EQ(add_outcome(j, "ev", "b", "thumb", 1.0), RWD_MATCHED);
    base_joined *jn = expire_one(j, 1000);
    TST_TRUE(jn != NULL && jn->reward == 1.0);
    base_joined_free(jn);
    rwd_join_free(j);
}

static void max_outcomes_is_a_limit(void)
{
    rwd_join *j = join_make(8);
    add_decision(j, "ev", 0);
    TST_EQ(add_outcome(j, "ev", "a", "thumb", 0.5), RWD_MATCHED);
    TST_EQ(add_outcome(j, "ev", "", "thumb", 0.5), RWD_MATCHED);
    TST_EQ(add_outcome(j, "ev", "c", "thumb", 0.5), RWD_MATCHED);
    TST_EQ(add_outcome(j, "ev", "d", "thumb", 0.5), RWD_MATCHED);
    rwd_join_stats before, after;
    rwd_join_get_stats(j, &before);
    base_outcome o = outcome_make("ev", "e", "thumb", 0.5);
    rwd_match m = RWD_MATCHED;
    TST_EQ(rwd_join_check_outcome(j, &o, &m), BASE_ELIMIT);
    TST_EQ(add_outcome(j, "ev", "e", "thumb", 0.5), -1 - (int)BASE_ELIMIT);
    TST_EQ(add_outcome(j, "ev", "", "thumb", 0.5), -1 - (int)BASE_ELIMIT);
    rwd_join_get_stats(j, &after);
    TST_TRUE(memcmp(&before, &after, sizeof(before)) == 0);
    /* A retry of an applied outcome is still recognised at the cap. */
    TST_EQ(add_outcome(j, "ev", "a", "thumb", 0.5), RWD_DUPLICATE);
    base_joined *jn = expire_one(j, 1000);
    TST_TRUE(jn != NULL && jn->reward == 1.0); /* 4 * 0.25 */
    TST_EQ(jn->n_outcomes, 4);
    base_joined_free(jn);
    rwd_join_free(j);
}

static void running_sum_overflow_is_numeric_error(void)
{
    rwd_join *j = join_make(8);
    add_decision(j, "ev", 0);
    TST_EQ(add_outcome(j, "ev", "a", "resolved", 1e308), RWD_MATCHED);
    TST_EQ(add_outcome(j, "ev", "b", "resolved", 1e308), -1 - (int)BASE_ENUMERIC);
    base_joined *jn = expire_one(j, 1000);
    TST_TRUE(jn != NULL && jn->reward == 1.0);
    base_joined_free(jn);
    rwd_join_free(j);
}

static void check_outcome_changes_nothing(void)
{
    rwd_join *j = join_make(8);
    add_decision(j, "ev", 0);
    rwd_join_stats before, after;
    rwd_join_get_stats(j, &before);
    base_outcome o = outcome_make("ev", "a", "thumb", 1.0);
    rwd_match m = RWD_UNKNOWN_EVENT;
    TST_OK(rwd_join_check_outcome(j, &o, &m));
    TST_EQ(m, RWD_MATCHED);
    TST_OK(rwd_join_check_outcome(j, &o, &m));
    TST_EQ(m, RWD_MATCHED); /* not recorded as applied */
    o = outcome_make("other", "a", "thumb", 1.0);
    TST_OK(rwd_join_check_outcome(j, &o, &m));
    TST_EQ(m, RWD_UNKNOWN_EVENT);
    rwd_join_get_stats(j, &after);
    TST_TRUE(memcmp(&before, &after, sizeof(before)) == 0);

    TST_EQ(add_outcome(j, "ev", "a", "thumb", 1.0), RWD_MATCHED);
    o = outcome_make("ev", "a", "thumb", 1.0);
    TST_OK(rwd_join_check_outcome(j, &o, &m));
    TST_EQ(m, RWD_DUPLICATE);
    rwd_join_get_stats(j, &after);
    TST_EQ(after.duplicates, 0);
    TST_EQ(after.matched, 1);
    base_joined *jn = expire_one(j, 1000);
    TST_TRUE(jn != NULL && jn->reward == 0.5);
    base_joined_free(jn);
    rwd_join_free(j);
}

static void expiry_is_in_arrival_order_at_the_exact_boundary(void)
{
    rwd_join *j = join_make(8);
    add_decision(j, "a", 0);
    add_decision(j, "b", 10);
    add_decision(j, "c", 10);
    base_joined *out[4] = {NULL};
    TST_EQ(rwd_join_expire(j, 999, out, 4), 0); /* ts + window - 1 */
    TST_EQ(rwd_join_expire(j, 1000, out, 4), 1); /* ts + window */
    TST_STREQ(out[0]->decision->event_id, "a");
    base_joined_free(out[0]);
    TST_EQ(rwd_join_expire(j, 1009, out, 4), 0);
    TST_EQ(rwd_join_expire(j, 1010, out, 1), 1); /* max_out respected */
    TST_STREQ(out[0]->decision->event_id, "b");
    base_joined_free(out[0]);
    TST_EQ(rwd_join_expire(j, 1010, out, 0), 0);
    TST_EQ(rwd_join_expire(j, 5000, out, 4), 1);
    TST_STREQ(out[0]->decision->event_id, "c");
    TST_EQ(out[0]->joined_ts_ms, 1010);
    base_joined_free(out[0]);
    TST_EQ(rwd_join_expire(j, 9000, out, 4), 0);
    rwd_join_stats st;
    rwd_join_get_stats(j, &st);
    TST_EQ(st.joined, 3);
    TST_EQ(st.pending, 0);

    /* A window that would overflow int64 never closes early. */
    add_decision(j, "far", INT64_MAX - 10);
    TST_EQ(rwd_join_expire(j, INT64_MAX - 11, out, 4), 0);
    TST_EQ(rwd_join_expire(j, INT64_MAX, out, 4), 1);
    base_joined_free(out[0]);
    rwd_join_free(j);
}

static void max_pending_is_a_limit_and_caller_keeps_ownership(void)
{
    rwd_join *j = join_make(2);
    add_decision(j, "a", 0);
    add_decision(j, "b", 0);
    base_decision *d = decision_make("c", 0);
    TST_EQ(rwd_join_add_decision(j, d), BASE_ELIMIT);
    TST_STREQ(d->event_id, "c"); /* still ours; ASan flags a double free or leak */
    base_joined *out[2] = {NULL};
    TST_EQ(rwd_join_expire(j, 1000, out, 1), 1);
    base_joined_free(out[0]);
    TST_OK(rwd_join_add_decision(j, d)); /* room again; the join owns d now */
    rwd_join_stats st;
    rwd_join_get_stats(j, &st);
    TST_EQ(st.pending, 2);
    rwd_join_free(j);
}

static void duplicate_or_empty_event_id_is_rejected(void)
{
    rwd_join *j = join_make(8);
    add_decision(j, "ev", 0);
    bool found = false;
    rwd_join_contains(j, "ev", &found);
    TST_TRUE(found);
    rwd_join_contains(j, "other", &found);
    TST_TRUE(!found);
    rwd_join_contains(j, "", &found);
    TST_TRUE(!found);
    base_decision *d = decision_make("ev", 1);
    TST_EQ(rwd_join_add_decision(j, d), BASE_EINVAL);
    base_decision_free(d);
    d = decision_make("", 1);
    TST_EQ(rwd_join_add_decision(j, d), BASE_EINVAL);
    base_decision_free(d);
    rwd_join_stats st;
    rwd_join_get_stats(j, &st);
    TST_EQ(st.pending, 1);
    rwd_join_free(j);
}

static void free_with_pending_entries_releases_them(void)
{
    rwd_join *j = join_make(64);
    char id[16];
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof(id), "ev-%d", i);
        add_decision(j, id, i);
        for (int k = 0; k < i % 5; k++) {
            char oid[16];
            snprintf(oid, sizeof(oid), "o-%d", k);
            TST_EQ(add_outcome(j, id, oid, "thumb", 1.0), RWD_MATCHED);
        }
    }
    rwd_join_stats st;
    rwd_join_get_stats(j, &st);
    TST_EQ(st.pending, 40);
    rwd_join_free(j); /* ASan's leak check verifies */
    rwd_join_free(NULL);
}

static void invalid_specs_are_rejected(void)
{
    rwd_spec s;
    rwd_join *j = NULL;
    spec_fixture(&s);
    TST_EQ(rwd_join_new(&s, 0, &j), BASE_EINVAL);
    s.window_ms = 0;
    TST_EQ(rwd_join_new(&s, 8, &j), BASE_EINVAL);
    spec_fixture(&s);
    s.clip_min = 2.0;
    TST_EQ(rwd_join_new(&s, 8, &j), BASE_EINVAL);
    spec_fixture(&s);
    s.clip_max = INFINITY;
    TST_EQ(rwd_join_new(&s, 8, &j), BASE_EINVAL);
    spec_fixture(&s);
    s.default_reward = NAN;
    TST_EQ(rwd_join_new(&s, 8, &j), BASE_EINVAL);
    spec_fixture(&s);
    s.signal[1].weight = NAN;
    TST_EQ(rwd_join_new(&s, 8, &j), BASE_EINVAL);
    spec_fixture(&s);
    (void)base_strlcpy(s.signal[2].name, "thumb", sizeof(s.signal[2].name));
    TST_EQ(rwd_join_new(&s, 8, &j), BASE_EINVAL);
    spec_fixture(&s);
    s.signal[0].name[0] = '\0';
    TST_EQ(rwd_join_new(&s, 8, &j), BASE_EINVAL);
    spec_fixture(&s);
    s.max_outcomes = 0;
    TST_EQ(rwd_join_new(&s, 8, &j), BASE_EINVAL);
    s.max_outcomes = RWD_MAX_OUTCOMES + 1;
    TST_EQ(rwd_join_new(&s, 8, &j), BASE_EINVAL);
    spec_fixture(&s);
    s.n_signals = RWD_MAX_SIGNALS + 1;
    TST_EQ(rwd_join_new(&s, 8, &j), BASE_EINVAL);
    TST_TRUE(j == NULL);
    spec_fixture(&s);
    s.clip_min = 0.5;
    s.clip_max = 0.5; /* equal bounds are valid */
    TST_OK(rwd_join_new(&s, 1, &j));
    rwd_join_free(j);
}

static void spec_find_and_defaults(void)
{
    rwd_spec s;
    rwd_spec_default(&s);
    TST_EQ(s.n_signals, 0);
    TST_TRUE(s.clip_min == -1.0 && s.clip_max == 1.0 && s.default_reward == 0.0);
    TST_EQ(s.window_ms, 600000);
    TST_EQ(s.max_outcomes, 16);
    spec_fixture(&s);
    uint32_t idx = 99;
    bool found = false;
    rwd_spec_find(&s, "escalated", &idx, &found);
    TST_TRUE(found);
    TST_EQ(idx, 2);
    idx = 99;
    rwd_spec_find(&s, "thumbs", &idx, &found);
    TST_TRUE(!found);
    TST_EQ(idx, 99);
}

int main(void)
{
    reward_is_weighted_sum_of_signals();
    reward_is_clipped_at_both_ends();
    no_outcome_gives_default();
    duplicate_outcome_ids_are_ignored_and_counted();
    outcomes_without_id_are_not_deduplicated();
    unknown_event_is_reported_and_counted();
    invalid_outcomes_change_nothing();
    max_outcomes_is_a_limit();
    running_sum_overflow_is_numeric_error();
    check_outcome_changes_nothing();
    expiry_is_in_arrival_order_at_the_exact_boundary();
    max_pending_is_a_limit_and_caller_keeps_ownership();
    duplicate_or_empty_event_id_is_rejected();
    free_with_pending_entries_releases_them();
    invalid_specs_are_rejected();
    spec_find_and_defaults();
    return tst_done();
}
