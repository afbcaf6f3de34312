/*
 * Unit tests for reward/join: aggregation, clipping, default vs unknown,
 * window boundaries, the backward window, late outcomes, deferred
 * activation, conversation credit, idempotency, corrections, abuse limits,
 * stats and ownership.
 *
 * Time is a plain int64 passed as @now_ms: no test sleeps, and day-long
 * windows run instantly. Every expected reward below is a sum of binary
 * fractions (or 1/3 for the mean), so numeric checks use a relative
 * tolerance of 1e-12.
 */

#include <string.h>

#include "reward/join.h"
#include "tap.h"

#define TOL 1e-12
#define DAY_MS 86400000LL
#define MIN_MS 60000LL
#define MAX_JOINED 16

/* ---- fixtures ----------------------------------------------------------- */

static base_decision *mk_dec(const char *id, const char *conv, uint32_t turn, int64_t ts,
                             bool deferred)
{
    base_decision *d = base_decision_new(2, 1);
    if (d == NULL) {
        return NULL;
    }
    (void)base_strlcpy(d->policy, "support", sizeof(d->policy));
    (void)base_strlcpy(d->event_id, id, sizeof(d->event_id));
    (void)base_strlcpy(d->conversation_id, conv, sizeof(d->conversation_id));
    d->turn = turn;
    d->ts_ms = ts;
    d->deferred = deferred ? 1u : 0u;
    d->pmf[0] = 1.0f;
    return d;
}

/* Add a decision; the test fails (and the decision is freed) if the join refuses it. */
static void add_dec(rwd_join *j, const char *id, const char *conv, uint32_t turn, int64_t ts,
                    bool deferred, int64_t now)
{
    base_decision *d = mk_dec(id, conv, turn, ts, deferred);
    base_err e = d == NULL ? BASE_ENOMEM : rwd_join_add_decision(j, d, now);
    TST_OK(e);
    if (e != BASE_OK) {
        base_decision_free(d);
    }
}

/* A turn-level outcome: signal with value, at ts, for event. */
static base_outcome mk_out(const char *event, const char *signal, double value, int64_t ts)
{
    base_outcome o;
    memset(&o, 0, sizeof(o));
    (void)base_strlcpy(o.policy, "support", sizeof(o.policy));
    (void)base_strlcpy(o.event_id, event, sizeof(o.event_id));
    (void)base_strlcpy(o.signal, signal, sizeof(o.signal));
    o.type = BASE_OUT_SIGNAL;
    o.value = value;
    o.ts_ms = ts;
    return o;
}

/* A conversation-level outcome. */
static base_outcome mk_conv_out(const char *conv, const char *signal, double value, int64_t ts)
{
    base_outcome o = mk_out("", signal, value, ts);
    (void)base_strlcpy(o.conversation_id, conv, sizeof(o.conversation_id));
    return o;
}

static base_outcome with_id(base_outcome o, const char *outcome_id, const char *supersedes)
{
    (void)base_strlcpy(o.outcome_id, outcome_id, sizeof(o.outcome_id));
    (void)base_strlcpy(o.supersedes, supersedes, sizeof(o.supersedes));
    return o;
}

static base_outcome with_user(base_outcome o, const char *user)
{
    (void)base_strlcpy(o.user_id, user, sizeof(o.user_id));
    return o;
}

/* rwd_join_add_outcome's status, or RWD_STATUS_COUNT if it returned an error. */
static rwd_status add_out(rwd_join *j, base_outcome o, int64_t now)
{
    rwd_status s = RWD_STATUS_COUNT;
    if (rwd_join_add_outcome(j, &o, now, &s) != BASE_OK) {
        return RWD_STATUS_COUNT;
    }
    return s;
}

static rwd_status check_out(const rwd_join *j, base_outcome o, int64_t now)
{
    rwd_status s = RWD_STATUS_COUNT;
    if (rwd_join_check_outcome(j, &o, now, &s) != BASE_OK) {
        return RWD_STATUS_COUNT;
    }
    return s;
}

/* Check @o, then apply it: the check must predict the add (the service relies on it). */
static rwd_status check_then_add(rwd_join *j, base_outcome o, int64_t now)
{
    rwd_status c = check_out(j, o, now);
    rwd_status a = add_out(j, o, now);
    TST_EQ(c, a);
    return a;
}

static rwd_status activate(rwd_join *j, const char *id, int64_t now)
{
    rwd_status s = RWD_STATUS_COUNT;
    if (rwd_join_activate(j, id, now, &s) != BASE_OK) {
        return RWD_STATUS_COUNT;
    }
    return s;
}

/* The expired examples of one test; find by event id, free all at the end. */
typedef struct batch {
    base_joined *j[MAX_JOINED];
    size_t n;
} batch;

static size_t expire_into(rwd_join *j, int64_t now, batch *b)
{
    size_t n = rwd_join_expire(j, now, b->j + b->n, MAX_JOINED - b->n);
    b->n += n;
    return n;
}

static const base_joined *find_joined(const batch *b, const char *id)
{
    for (size_t i = 0; i < b->n; i++) {
        if (strcmp(b->j[i]->decision->event_id, id) == 0) {
            return b->j[i];
        }
    }
    return NULL;
}

/* The reward of @id in @b, or -999 if it was not emitted (so the check fails). */
static double reward_of(const batch *b, const char *id)
{
    const base_joined *jo = find_joined(b, id);
    return jo != NULL ? jo->reward : -999.0;
}

static void batch_free(batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        base_joined_free(b->j[i]);
    }
    b->n = 0;
}

static rwd_join *mk_join(const rwd_spec *s, size_t max_pending)
{
    rwd_join *j = NULL;
    base_err e = rwd_join_new(s, max_pending, &j);
    TST_OK(e);
    return e == BASE_OK ? j : NULL;
}

static rwd_join_stats stats_of(const rwd_join *j)
{
    rwd_join_stats st;
    rwd_join_get_stats(j, &st);
    return st;
}

static void add_signal(rwd_spec *s, const char *name, rwd_kind kind, double weight, rwd_agg agg)
{
    rwd_signal *g = &s->signal[s->n_signals++];
    rwd_signal_default(g, name, kind);
    g->weight = weight;
    g->agg = agg;
}

/* csat: number 1..5 mapped onto -1..+1 (1 -> -1, 2 -> -0.5, 3 -> 0, 4 -> 0.5, 5 -> 1). */
static void add_csat(rwd_spec *s, rwd_agg agg)
{
    add_signal(s, "csat", RWD_NUMBER, 1.0, agg);
    rwd_signal *g = &s->signal[s->n_signals - 1];
    g->min = 1.0;
    g->max = 5.0;
    g->map_min = -1.0;
    g->map_max = 1.0;
}

/* The customer-service spec of docs/rewards.md, one-day window. */
static void support_spec(rwd_spec *s)
{
    rwd_spec_default(s);
    s->window_ms = DAY_MS;
    add_signal(s, "thumbs_up", RWD_EVENT, 0.5, RWD_AGG_SUM);
    add_signal(s, "thumbs_down", RWD_EVENT, -0.5, RWD_AGG_SUM);
    add_signal(s, "resolved", RWD_FLAG, 1.0, RWD_AGG_MAX);
    add_signal(s, "escalated", RWD_FLAG, -1.0, RWD_AGG_MAX);
    add_csat(s, RWD_AGG_LAST);
}

/* ---- tests -------------------------------------------------------------- */

static void test_new_and_names(void)
{
    rwd_spec s;
    rwd_join *j = NULL;
    rwd_spec_default(&s);
    s.window_ms = 0;
    TST_EQ(rwd_join_new(&s, 8, &j), BASE_EINVAL);
    TST_TRUE(j == NULL);
    rwd_spec_default(&s);
    TST_EQ(rwd_join_new(&s, 0, &j), BASE_EINVAL);
    TST_TRUE(j == NULL);
    rwd_join_free(NULL);

    TST_STREQ(rwd_status_name(RWD_MATCHED), "matched");
    TST_STREQ(rwd_status_name(RWD_DUPLICATE), "duplicate");
    TST_STREQ(rwd_status_name(RWD_CORRECTED), "corrected");
    TST_STREQ(rwd_status_name(RWD_LATE), "late");
    TST_STREQ(rwd_status_name(RWD_LATE_CORRECTION), "late_correction");
    TST_STREQ(rwd_status_name(RWD_EARLY), "early");
    TST_STREQ(rwd_status_name(RWD_UNKNOWN_EVENT), "unknown_event");
    TST_STREQ(rwd_status_name(RWD_REJECT_SIGNAL), "rejected_signal");
    TST_STREQ(rwd_status_name(RWD_REJECT_VALUE), "rejected_value");
    TST_STREQ(rwd_status_name(RWD_REJECT_LIMIT), "rejected_limit");
    TST_STREQ(rwd_status_name(RWD_REJECT_RATE), "rejected_rate");
    TST_STREQ(rwd_status_name(RWD_STATUS_COUNT), "unknown");

    static const int64_t want[RWD_LATENCY_BUCKETS] = {
        0, 1000, 10000, 60000, 600000, 3600000, 21600000, 86400000,
    };
    for (int i = 0; i < RWD_LATENCY_BUCKETS; i++) {
        TST_EQ(rwd_latency_bucket_ms[i], want[i]);
    }
}

/*
 * Three csat outcomes, contributions 1 (ts 300), -0.5 (ts 100), 0.5 (ts 200),
 * in that arrival order (all at ts 100 when @same_ts).
 */
static double three_csat(rwd_agg agg, bool same_ts, uint32_t *out_n)
{
    rwd_spec s;
    rwd_spec_default(&s);
    s.clip_min = -10.0;
    s.clip_max = 10.0;
    add_csat(&s, agg);
    rwd_join *j = mk_join(&s, 4);
    batch b = {.n = 0};
    double r = -999.0;
    *out_n = 0;
    if (j == NULL) {
        return r;
    }
    add_dec(j, "a", "", 0, 0, false, 0);
    TST_EQ(add_out(j, mk_out("a", "csat", 5.0, same_ts ? 100 : 300), 10), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("a", "csat", 2.0, 100), 11), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("a", "csat", 4.0, same_ts ? 100 : 200), 12), RWD_MATCHED);
    TST_EQ(expire_into(j, s.window_ms, &b), 1);
    const base_joined *jo = find_joined(&b, "a");
    if (jo != NULL) {
        r = jo->reward;
        *out_n = jo->n_outcomes;
        TST_TRUE(!jo->defaulted && !jo->unknown);
        TST_EQ(jo->credit, BASE_CREDIT_NONE);
        TST_NEAR(jo->share, 0.0, TOL);
    }
    batch_free(&b);
    rwd_join_free(j);
    return r;
}

static void test_aggregations(void)
{
    uint32_t n = 0;
    TST_NEAR(three_csat(RWD_AGG_SUM, false, &n), 1.0, TOL); /* 1 - 0.5 + 0.5 */
    TST_EQ(n, 3);
    TST_NEAR(three_csat(RWD_AGG_FIRST, false, &n), -0.5, TOL); /* earliest ts: 100 */
    TST_EQ(n, 3);
    TST_NEAR(three_csat(RWD_AGG_LAST, false, &n), 1.0, TOL); /* latest ts: 300 */
    TST_NEAR(three_csat(RWD_AGG_MIN, false, &n), -0.5, TOL);
    TST_NEAR(three_csat(RWD_AGG_MAX, false, &n), 1.0, TOL);
    TST_NEAR(three_csat(RWD_AGG_MEAN, false, &n), 1.0 / 3.0, TOL);
    /* Equal ts: first/last fall back to arrival order (1 arrived first, 0.5 last). */
    TST_NEAR(three_csat(RWD_AGG_FIRST, true, &n), 1.0, TOL);
    TST_NEAR(three_csat(RWD_AGG_LAST, true, &n), 0.5, TOL);
}

static void test_signals_summed_then_clipped(void)
{
    rwd_spec s;
    support_spec(&s);
    rwd_join *j = mk_join(&s, 8);
    batch b = {.n = 0};
    if (j == NULL) {
        return;
    }
    for (const char *const *id = (const char *const[]){"hi", "lo", "zero", "mid", NULL};
         *id != NULL; id++) {
        add_dec(j, *id, "", 0, 0, false, 0);
    }
    /* 0.5 + 0.5 + 1 + 1 = 3 -> clipped to 1 */
    TST_EQ(add_out(j, mk_out("hi", "thumbs_up", 1.0, 1), 1), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("hi", "thumbs_up", 1.0, 2), 2), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("hi", "resolved", 1.0, 3), 3), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("hi", "csat", 5.0, 4), 4), RWD_MATCHED);
    /* -0.5 - 0.5 - 1 - 1 = -3 -> clipped to -1 */
    TST_EQ(add_out(j, mk_out("lo", "thumbs_down", 1.0, 1), 1), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("lo", "thumbs_down", 1.0, 2), 2), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("lo", "escalated", 1.0, 3), 3), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("lo", "csat", 1.0, 4), 4), RWD_MATCHED);
    /* 0.5 - 0.5 + 0 = 0, not defaulted: three outcomes contributed */
    TST_EQ(add_out(j, mk_out("zero", "thumbs_up", 1.0, 1), 1), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("zero", "csat", 2.0, 2), 2), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("zero", "resolved", 0.0, 3), 3), RWD_MATCHED);
    /* 0.5 + 0.5 (csat 4) - 0.5 + max(1, 0) = 1.5 -> 1; without resolved it would be 0.5 */
    TST_EQ(add_out(j, mk_out("mid", "thumbs_up", 1.0, 1), 1), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("mid", "csat", 4.0, 2), 2), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("mid", "thumbs_down", 1.0, 3), 3), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("mid", "resolved", 0.0, 4), 4), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("mid", "resolved", 1.0, 5), 5), RWD_MATCHED);
    TST_EQ(expire_into(j, DAY_MS, &b), 4);
    TST_NEAR(reward_of(&b, "hi"), 1.0, TOL);
    TST_NEAR(reward_of(&b, "lo"), -1.0, TOL);
    TST_NEAR(reward_of(&b, "zero"), 0.0, TOL);
    TST_NEAR(reward_of(&b, "mid"), 1.0, TOL);
    const base_joined *z = find_joined(&b, "zero");
    TST_TRUE(z != NULL && !z->defaulted && z->n_outcomes == 3);
    batch_free(&b);
    rwd_join_free(j);

    /* Asymmetric clip [-0.25, 0.75]. */
    support_spec(&s);
    s.clip_min = -0.25;
    s.clip_max = 0.75;
    j = mk_join(&s, 8);
    if (j == NULL) {
        return;
    }
    add_dec(j, "up", "", 0, 0, false, 0);
    add_dec(j, "down", "", 0, 0, false, 0);
    add_dec(j, "in", "", 0, 0, false, 0);
    TST_EQ(add_out(j, mk_out("up", "thumbs_up", 1.0, 1), 1), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("up", "csat", 5.0, 1), 1), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("down", "thumbs_down", 1.0, 1), 1), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("in", "thumbs_up", 1.0, 1), 1), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("in", "csat", 3.0, 1), 1), RWD_MATCHED);
    TST_EQ(expire_into(j, DAY_MS, &b), 3);
    TST_NEAR(reward_of(&b, "up"), 0.75, TOL);    /* 1.5 clipped */
    TST_NEAR(reward_of(&b, "down"), -0.25, TOL); /* -0.5 clipped */
    TST_NEAR(reward_of(&b, "in"), 0.5, TOL);
    batch_free(&b);
    rwd_join_free(j);
}

static void test_default_vs_unknown(void)
{
    for (int unknown = 0; unknown <= 1; unknown++) {
        rwd_spec s;
        support_spec(&s);
        s.default_reward = -0.25;
        s.unknown_when_empty = unknown != 0;
        rwd_join *j = mk_join(&s, 8);
        batch b = {.n = 0};
        if (j == NULL) {
            return;
        }
        add_dec(j, "empty", "", 0, 0, false, 0);
        add_dec(j, "full", "", 0, 0, false, 0);
        add_dec(j, "zero", "", 0, 0, false, 0);
        TST_EQ(add_out(j, mk_out("full", "thumbs_up", 1.0, 5), 5), RWD_MATCHED);
        /* An outcome worth 0 is an outcome: neither defaulted nor unknown. */
        TST_EQ(add_out(j, mk_out("zero", "csat", 3.0, 5), 5), RWD_MATCHED);
        TST_EQ(expire_into(j, DAY_MS, &b), 3);
        const base_joined *e = find_joined(&b, "empty");
        const base_joined *f = find_joined(&b, "full");
        const base_joined *z = find_joined(&b, "zero");
        TST_TRUE(e != NULL && f != NULL && z != NULL);
        if (e != NULL && f != NULL && z != NULL) {
            TST_EQ(e->unknown, unknown);
            TST_EQ(e->defaulted, !unknown);
            TST_EQ(e->n_outcomes, 0);
            TST_NEAR(e->reward, unknown ? 0.0 : -0.25, TOL);
            TST_TRUE(!f->unknown && !f->defaulted);
            TST_NEAR(f->reward, 0.5, TOL);
            TST_TRUE(!z->unknown && !z->defaulted);
            TST_NEAR(z->reward, 0.0, TOL);
        }
        rwd_join_stats st = stats_of(j);
        TST_EQ(st.joined, 3); /* unknown examples are emitted and counted as joined */
        TST_EQ(st.defaulted, unknown ? 0 : 1);
        TST_EQ(st.unknown, unknown ? 1 : 0);
        batch_free(&b);
        rwd_join_free(j);
    }
}

static void test_window_boundary(void)
{
    rwd_spec s;
    support_spec(&s);
    rwd_join *j = mk_join(&s, 8);
    batch b = {.n = 0};
    if (j == NULL) {
        return;
    }
    const int64_t ts = 1000;
    add_dec(j, "a", "", 0, ts, false, ts);
    add_dec(j, "b", "", 0, ts, false, ts);
    TST_EQ(rwd_join_next_deadline(j), ts + DAY_MS);
    bool found = false;
    rwd_join_contains(j, "a", ts, &found);
    TST_TRUE(found);

    /* ts + window - 1: still open. */
    TST_EQ(expire_into(j, ts + DAY_MS - 1, &b), 0);
    TST_EQ(add_out(j, mk_out("a", "thumbs_up", 1.0, ts + DAY_MS - 1), ts + DAY_MS - 1),
           RWD_MATCHED);
    /* ts + window: closed, even before expire() runs. */
    TST_EQ(check_out(j, mk_out("b", "thumbs_up", 1.0, ts + DAY_MS), ts + DAY_MS), RWD_LATE);
    TST_EQ(add_out(j, mk_out("b", "thumbs_up", 1.0, ts + DAY_MS), ts + DAY_MS), RWD_LATE);
    TST_EQ(expire_into(j, ts + DAY_MS, &b), 2);
    TST_NEAR(reward_of(&b, "a"), 0.5, TOL);
    TST_NEAR(reward_of(&b, "b"), 0.0, TOL); /* the late thumbs did not count */
    const base_joined *jb = find_joined(&b, "b");
    TST_TRUE(jb != NULL && jb->defaulted);
    const base_joined *ja = find_joined(&b, "a");
    TST_TRUE(ja != NULL && ja->joined_ts_ms == ts + DAY_MS);
    rwd_join_contains(j, "a", ts, &found);
    TST_TRUE(!found);
    TST_EQ(rwd_join_next_deadline(j), INT64_MAX);
    batch_free(&b);
    rwd_join_free(j);
}

/*
 * An event id whose window closed names a new decision at once, before expire() emitted the
 * closed one (docs/rewards.md): both are held, outcomes go to the new one, and expire()
 * emits each with its own reward, the closed one first.
 */
static void test_reuse_before_expire(void)
{
    rwd_spec s;
    support_spec(&s);
    rwd_join *j = mk_join(&s, 8);
    batch b = {.n = 0};
    if (j == NULL) {
        return;
    }
    const int64_t ts = 1000, end = ts + DAY_MS;
    add_dec(j, "a", "", 0, ts, false, ts);
    TST_EQ(add_out(j, mk_out("a", "thumbs_up", 1.0, ts + 5), ts + 5), RWD_MATCHED);
    /* One millisecond before its window closes the id is taken. */
    base_decision *early = mk_dec("a", "", 0, end - 1, false);
    TST_EQ(rwd_join_add_decision(j, early, end - 1), BASE_EINVAL);
    base_decision_free(early);
    bool found = false;
    rwd_join_contains(j, "a", end - 1, &found);
    TST_TRUE(found);
    rwd_join_contains(j, "a", end, &found);
    TST_TRUE(!found);
    /* At its close it is free again, with nothing expired yet. */
    add_dec(j, "a", "", 0, end, false, end);
    base_decision *third = mk_dec("a", "", 0, end + 1, false);
    TST_EQ(rwd_join_add_decision(j, third, end + 1), BASE_EINVAL); /* the new one's window */
    base_decision_free(third);
    TST_EQ(add_out(j, mk_out("a", "thumbs_down", 1.0, end + 2), end + 2), RWD_MATCHED);
    TST_EQ(expire_into(j, end, &b), 1);
    TST_TRUE(b.n == 1 && b.j[0]->decision->ts_ms == ts);
    TST_NEAR(reward_of(&b, "a"), 0.5, TOL); /* the thumbs up only */
    rwd_join_contains(j, "a", end + 3, &found);
    TST_TRUE(found);
    TST_EQ(expire_into(j, end + DAY_MS, &b), 1);
    TST_TRUE(b.n == 2 && b.j[1]->decision->ts_ms == end && b.j[1]->reward < 0.0);
    batch_free(&b);
    rwd_join_free(j);
}

static void test_backward_window(void)
{
    rwd_spec s;
    support_spec(&s);
    s.backward_window_ms = MIN_MS;
    rwd_join *j = mk_join(&s, 8);
    batch b = {.n = 0};
    if (j == NULL) {
        return;
    }
    const int64_t t0 = 5000;
    /* Inside: the decision arrives exactly backward_window_ms after its outcome. */
    TST_EQ(add_out(j, mk_out("in", "thumbs_up", 1.0, t0), t0), RWD_EARLY);
    TST_EQ(add_out(j, mk_out("in", "resolved", 1.0, t0), t0), RWD_EARLY);
    /* Outside: one ms later. */
    TST_EQ(add_out(j, mk_out("out", "thumbs_up", 1.0, t0), t0), RWD_EARLY);
    rwd_join_stats st = stats_of(j);
    TST_EQ(st.status[RWD_EARLY], 3);
    TST_EQ(st.pending, 0);

    add_dec(j, "in", "", 0, t0 + MIN_MS, false, t0 + MIN_MS);
    add_dec(j, "out", "", 0, t0 + MIN_MS + 1, false, t0 + MIN_MS + 1);
    TST_EQ(expire_into(j, t0 + MIN_MS + 1 + DAY_MS, &b), 2);
    const base_joined *in = find_joined(&b, "in");
    const base_joined *out = find_joined(&b, "out");
    TST_TRUE(in != NULL && out != NULL);
    if (in != NULL && out != NULL) {
        TST_NEAR(in->reward, 1.0, TOL); /* 0.5 + 1, clipped at 1 */
        TST_EQ(in->n_outcomes, 2);
        TST_TRUE(!in->defaulted);
        TST_TRUE(out->defaulted);
        TST_EQ(out->n_outcomes, 0);
    }
    st = stats_of(j);
    TST_EQ(st.dangling, 1); /* "out"'s thumbs never found its decision */
    batch_free(&b);
    rwd_join_free(j);

    /* The held outcome counts as dangling at expiry once it is older than the window. */
    j = mk_join(&s, 8);
    if (j == NULL) {
        return;
    }
    TST_EQ(add_out(j, mk_out("ghost", "thumbs_up", 1.0, t0), t0), RWD_EARLY);
    TST_EQ(expire_into(j, t0 + MIN_MS, &b), 0);
    TST_EQ(stats_of(j).dangling, 0); /* still inside the backward window */
    TST_EQ(expire_into(j, t0 + MIN_MS + 1, &b), 0);
    TST_EQ(stats_of(j).dangling, 1);
    rwd_join_free(j);

    /* No backward window: an outcome before its decision is an unknown event. */
    support_spec(&s);
    j = mk_join(&s, 8);
    if (j == NULL) {
        return;
    }
    TST_EQ(add_out(j, mk_out("later", "thumbs_up", 1.0, t0), t0), RWD_UNKNOWN_EVENT);
    add_dec(j, "later", "", 0, t0, false, t0);
    TST_EQ(expire_into(j, t0 + DAY_MS, &b), 1);
    TST_TRUE(find_joined(&b, "later") != NULL && find_joined(&b, "later")->defaulted);
    TST_EQ(stats_of(j).status[RWD_UNKNOWN_EVENT], 1);
    TST_EQ(stats_of(j).dangling, 0);
    batch_free(&b);
    rwd_join_free(j);
}

/* Held outcomes keep their idempotency, arrival order, corrections and limit. */
static void test_backward_window_rules(void)
{
    rwd_spec s;
    rwd_spec_default(&s);
    s.window_ms = DAY_MS;
    s.backward_window_ms = MIN_MS;
    s.clip_min = -10.0;
    s.clip_max = 10.0;
    s.max_outcomes = 3;
    add_signal(&s, "thumbs_up", RWD_EVENT, 0.5, RWD_AGG_SUM);
    add_csat(&s, RWD_AGG_LAST);
    add_signal(&s, "score", RWD_NUMBER, 1.0, RWD_AGG_SUM);
    rwd_join *j = mk_join(&s, 16); /* room for the 9 held outcomes below */
    batch b = {.n = 0};
    if (j == NULL) {
        return;
    }
    /* A retried early outcome is held once. */
    TST_EQ(add_out(j, with_id(mk_out("dup", "thumbs_up", 1.0, 1), "o1", ""), 1), RWD_EARLY);
    TST_EQ(add_out(j, with_id(mk_out("dup", "thumbs_up", 1.0, 1), "o1", ""), 2), RWD_DUPLICATE);
    TST_EQ(check_out(j, with_id(mk_out("dup", "thumbs_up", 1.0, 1), "o1", ""), 2), RWD_DUPLICATE);
    /* Equal ts: last is the last to arrive (0.5), even though it was held. */
    TST_EQ(add_out(j, mk_out("ord", "csat", 5.0, 100), 1), RWD_EARLY);
    TST_EQ(add_out(j, mk_out("ord", "csat", 2.0, 100), 2), RWD_EARLY);
    TST_EQ(add_out(j, mk_out("ord", "csat", 4.0, 100), 3), RWD_EARLY);
    /* A held correction replaces the held outcome it supersedes. */
    TST_EQ(add_out(j, with_id(mk_out("cor", "score", 1.0, 1), "s1", ""), 1), RWD_EARLY);
    TST_EQ(add_out(j, with_id(mk_out("cor", "score", 0.25, 2), "s2", "s1"), 2), RWD_EARLY);
    /* At most max_outcomes are held per event. */
    TST_EQ(add_out(j, mk_out("lim", "thumbs_up", 1.0, 1), 1), RWD_EARLY);
    TST_EQ(add_out(j, mk_out("lim", "thumbs_up", 1.0, 1), 1), RWD_EARLY);
    TST_EQ(add_out(j, mk_out("lim", "thumbs_up", 1.0, 1), 1), RWD_EARLY);
    TST_EQ(add_out(j, mk_out("lim", "thumbs_up", 1.0, 1), 1), RWD_REJECT_LIMIT);

    add_dec(j, "dup", "", 0, 10, false, 10);
    add_dec(j, "ord", "", 0, 10, false, 10);
    add_dec(j, "cor", "", 0, 10, false, 10);
    add_dec(j, "lim", "", 0, 10, false, 10);
    /* Once attached, the retry is a plain duplicate, and the limit is reached. */
    TST_EQ(add_out(j, with_id(mk_out("dup", "thumbs_up", 1.0, 1), "o1", ""), 20), RWD_DUPLICATE);
    TST_EQ(add_out(j, mk_out("lim", "thumbs_up", 1.0, 1), 20), RWD_REJECT_LIMIT);
    TST_EQ(expire_into(j, 10 + DAY_MS, &b), 4);
    TST_NEAR(reward_of(&b, "dup"), 0.5, TOL);
    TST_NEAR(reward_of(&b, "ord"), 0.5, TOL);
    TST_NEAR(reward_of(&b, "cor"), 0.25, TOL);
    TST_NEAR(reward_of(&b, "lim"), 1.5, TOL);
    const base_joined *c = find_joined(&b, "cor");
    TST_TRUE(c != NULL && c->n_outcomes == 1);
    TST_EQ(stats_of(j).dangling, 0);
    batch_free(&b);
    rwd_join_free(j);
}

static void test_late(void)
{
    rwd_spec s;
    support_spec(&s); /* late_memory_ms defaults to the window: one day */
    rwd_join *j = mk_join(&s, 8);
    batch b = {.n = 0};
    if (j == NULL) {
        return;
    }
    add_dec(j, "a", "", 0, 0, false, 0);
    TST_EQ(add_out(j, with_id(mk_out("a", "thumbs_up", 1.0, 5), "t1", ""), 5), RWD_MATCHED);
    TST_EQ(expire_into(j, DAY_MS, &b), 1);
    TST_NEAR(reward_of(&b, "a"), 0.5, TOL);

    rwd_join_stats before = stats_of(j);
    TST_EQ(add_out(j, mk_out("a", "thumbs_down", 1.0, DAY_MS + 10), DAY_MS + 10), RWD_LATE);
    TST_EQ(add_out(j, with_id(mk_out("a", "thumbs_down", 1.0, DAY_MS), "t2", "t1"), DAY_MS + 11),
           RWD_LATE_CORRECTION);
    TST_EQ(add_out(j, mk_out("a", "thumbs_down", 1.0, 2 * DAY_MS - 1), 2 * DAY_MS - 1), RWD_LATE);
    rwd_join_stats after = stats_of(j);
    TST_EQ(after.status[RWD_LATE], before.status[RWD_LATE] + 2);
    TST_EQ(after.status[RWD_LATE_CORRECTION], before.status[RWD_LATE_CORRECTION] + 1);
    /* Nothing else changed: no new example, no latency, no pending decision. */
    after.status[RWD_LATE] = before.status[RWD_LATE];
    after.status[RWD_LATE_CORRECTION] = before.status[RWD_LATE_CORRECTION];
    TST_TRUE(memcmp(&before, &after, sizeof(before)) == 0);
    TST_EQ(expire_into(j, 2 * DAY_MS - 1, &b), 0);

    /* After late_memory_ms the id is forgotten: unknown, whether or not expire() ran. */
    TST_EQ(add_out(j, mk_out("a", "thumbs_down", 1.0, 2 * DAY_MS), 2 * DAY_MS), RWD_UNKNOWN_EVENT);
    TST_EQ(expire_into(j, 2 * DAY_MS, &b), 0);
    TST_EQ(add_out(j, mk_out("a", "thumbs_down", 1.0, 2 * DAY_MS), 2 * DAY_MS), RWD_UNKNOWN_EVENT);
    batch_free(&b);
    rwd_join_free(j);

    /* late_memory_ms = 0: closed ids are not remembered at all. */
    support_spec(&s);
    s.late_memory_ms = 0;
    j = mk_join(&s, 8);
    if (j == NULL) {
        return;
    }
    add_dec(j, "a", "", 0, 0, false, 0);
    TST_EQ(add_out(j, mk_out("a", "thumbs_up", 1.0, DAY_MS), DAY_MS), RWD_UNKNOWN_EVENT);
    TST_EQ(expire_into(j, DAY_MS, &b), 1);
    TST_EQ(add_out(j, mk_out("a", "thumbs_up", 1.0, DAY_MS), DAY_MS), RWD_UNKNOWN_EVENT);
    batch_free(&b);
    rwd_join_free(j);

    /* An explicit late memory of one minute. */
    support_spec(&s);
    s.late_memory_ms = MIN_MS;
    j = mk_join(&s, 8);
    if (j == NULL) {
        return;
    }
    add_dec(j, "a", "", 0, 0, false, 0);
    TST_EQ(expire_into(j, DAY_MS, &b), 1);
    TST_EQ(add_out(j, mk_out("a", "thumbs_up", 1.0, 0), DAY_MS + MIN_MS - 1), RWD_LATE);
    TST_EQ(add_out(j, mk_out("a", "thumbs_up", 1.0, 0), DAY_MS + MIN_MS), RWD_UNKNOWN_EVENT);
    batch_free(&b);
    rwd_join_free(j);
}

/*
 * A retry of a stored outcome stays a duplicate after its decision's window
 * closed, until late_memory_ms after it closed: it is neither late (logged a
 * second time) nor unknown. Every stored id counts, a superseded one too,
 * and so do the ids of a deferred decision dropped unactivated.
 */
static void test_retry_after_window(void)
{
    rwd_spec s;
    support_spec(&s); /* window and late memory: one day */
    s.clip_max = 10.0;
    rwd_join *j = mk_join(&s, 8);
    batch b = {.n = 0};
    if (j == NULL) {
        return;
    }
    add_dec(j, "a", "", 0, 0, false, 0);
    add_dec(j, "b", "", 0, 0, false, 0);
    add_dec(j, "d", "", 0, 0, true, 0); /* deferred, never activated: dropped */
    const base_outcome o1 = with_id(mk_out("a", "thumbs_up", 1.0, 5), "o1", "");
    const base_outcome o2 = with_id(mk_out("a", "csat", 2.0, 6), "o2", "");
    const base_outcome o3 = with_id(mk_out("a", "csat", 5.0, 7), "o3", "o2");
    const base_outcome od = with_id(mk_out("d", "thumbs_up", 1.0, 5), "od", "");
    TST_EQ(check_then_add(j, o1, 5), RWD_MATCHED);
    TST_EQ(check_then_add(j, o2, 6), RWD_MATCHED);
    TST_EQ(check_then_add(j, o3, 7), RWD_CORRECTED);
    TST_EQ(check_then_add(j, od, 8), RWD_MATCHED);
    /* The window has closed, expire() has not run yet: a duplicate already. */
    TST_EQ(check_then_add(j, o1, DAY_MS), RWD_DUPLICATE);
    TST_EQ(check_then_add(j, od, DAY_MS), RWD_DUPLICATE);
    TST_EQ(expire_into(j, DAY_MS, &b), 2);  /* a and b; d dropped */
    TST_NEAR(reward_of(&b, "a"), 1.5, TOL); /* 0.5 + csat 5 (o3 replaced o2) */

    rwd_join_stats before = stats_of(j);
    TST_EQ(check_then_add(j, o1, DAY_MS + 1), RWD_DUPLICATE);
    TST_EQ(check_then_add(j, o2, DAY_MS + 2), RWD_DUPLICATE);
    TST_EQ(check_then_add(j, o3, DAY_MS + 3), RWD_DUPLICATE);
    TST_EQ(check_then_add(j, od, DAY_MS + 4), RWD_DUPLICATE);
    TST_EQ(check_then_add(j, o1, 2 * DAY_MS - 1), RWD_DUPLICATE);
    rwd_join_stats after = stats_of(j);
    TST_EQ(after.status[RWD_DUPLICATE], before.status[RWD_DUPLICATE] + 5);
    TST_EQ(after.status[RWD_LATE], before.status[RWD_LATE]);
    TST_EQ(after.status[RWD_UNKNOWN_EVENT], before.status[RWD_UNKNOWN_EVENT]);
    /* The id is scoped to its decision: a new id, or o1 on another decision, is late. */
    TST_EQ(check_then_add(j, with_id(mk_out("a", "thumbs_up", 1.0, 9), "o9", ""), DAY_MS + 5),
           RWD_LATE);
    TST_EQ(check_then_add(j, with_id(mk_out("b", "thumbs_up", 1.0, 5), "o1", ""), DAY_MS + 6),
           RWD_LATE);

    /* late_memory_ms after the window closed, it is forgotten, whether or not expire() ran. */
    TST_EQ(check_then_add(j, o1, 2 * DAY_MS), RWD_UNKNOWN_EVENT);
    TST_EQ(expire_into(j, 2 * DAY_MS, &b), 0);
    TST_EQ(check_then_add(j, o1, 2 * DAY_MS), RWD_UNKNOWN_EVENT);
    TST_EQ(check_then_add(j, od, 2 * DAY_MS), RWD_UNKNOWN_EVENT);
    batch_free(&b);
    rwd_join_free(j);

    /* late_memory_ms = 0: nothing is remembered, before or after expire(). */
    support_spec(&s);
    s.late_memory_ms = 0;
    j = mk_join(&s, 8);
    if (j == NULL) {
        return;
    }
    add_dec(j, "a", "", 0, 0, false, 0);
    TST_EQ(check_then_add(j, o1, 5), RWD_MATCHED);
    TST_EQ(check_then_add(j, o1, DAY_MS), RWD_UNKNOWN_EVENT);
    TST_EQ(expire_into(j, DAY_MS, &b), 1);
    TST_EQ(check_then_add(j, o1, DAY_MS), RWD_UNKNOWN_EVENT);
    batch_free(&b);
    rwd_join_free(j);
}

/*
 * A late outcome (or late correction) is logged once: its retry is a
 * duplicate while the decision is remembered, whether the window closed
 * before or after expire() ran. Without an outcome_id nothing is deduplicated.
 */
static void test_retried_late_outcome(void)
{
    rwd_spec s;
    support_spec(&s);
    rwd_join *j = mk_join(&s, 8);
    batch b = {.n = 0};
    if (j == NULL) {
        return;
    }
    add_dec(j, "a", "", 0, 0, false, 0);
    add_dec(j, "p", "", 0, 0, false, 0);
    TST_EQ(check_then_add(j, with_id(mk_out("a", "thumbs_up", 1.0, 5), "t1", ""), 5), RWD_MATCHED);
    /* p's window has closed; expire() has not run. */
    const base_outcome lp = with_id(mk_out("p", "thumbs_down", 1.0, DAY_MS), "lp", "");
    TST_EQ(check_then_add(j, lp, DAY_MS), RWD_LATE);
    TST_EQ(check_then_add(j, lp, DAY_MS + 1), RWD_DUPLICATE);
    TST_EQ(expire_into(j, DAY_MS + 1, &b), 2);
    TST_EQ(check_then_add(j, lp, DAY_MS + 2), RWD_DUPLICATE);

    const base_outcome l1 = with_id(mk_out("a", "thumbs_down", 1.0, DAY_MS), "l1", "");
    const base_outcome l2 = with_id(mk_out("a", "thumbs_down", 1.0, DAY_MS), "l2", "t1");
    const base_outcome anon = mk_out("a", "thumbs_down", 1.0, DAY_MS);
    TST_EQ(check_then_add(j, l1, DAY_MS + 10), RWD_LATE);
    TST_EQ(check_then_add(j, l1, DAY_MS + 11), RWD_DUPLICATE);
    TST_EQ(check_then_add(j, l2, DAY_MS + 12), RWD_LATE_CORRECTION);
    TST_EQ(check_then_add(j, l2, DAY_MS + 13), RWD_DUPLICATE);
    TST_EQ(check_then_add(j, anon, DAY_MS + 14), RWD_LATE);
    TST_EQ(check_then_add(j, anon, DAY_MS + 15), RWD_LATE);
    TST_EQ(check_then_add(j, l1, 2 * DAY_MS - 1), RWD_DUPLICATE);
    rwd_join_stats st = stats_of(j);
    TST_EQ(st.status[RWD_LATE], 4);
    TST_EQ(st.status[RWD_LATE_CORRECTION], 1);
    TST_EQ(st.status[RWD_DUPLICATE], 5);
    TST_EQ(st.joined, 2);
    /* Remembered as long as the decision, not late_memory_ms from the late arrival. */
    TST_EQ(check_then_add(j, l1, 2 * DAY_MS), RWD_UNKNOWN_EVENT);
    TST_EQ(check_then_add(j, lp, 2 * DAY_MS), RWD_UNKNOWN_EVENT);
    batch_free(&b);
    rwd_join_free(j);
}

/*
 * Conversation-level retries: once the conversation's decisions closed, a
 * retry is a duplicate (not late); a late conversation outcome is logged
 * once; and while a newer turn is open, a retry of an outcome credited to a
 * closed turn is a duplicate, not matched again, whether or not expire() ran.
 */
static void test_conversation_retry_after_window(void)
{
    rwd_spec s;
    support_spec(&s);
    s.credit = BASE_CREDIT_UNIFORM;
    rwd_join *j = mk_join(&s, 8);
    batch b = {.n = 0};
    if (j == NULL) {
        return;
    }
    add_dec(j, "k1", "k", 1, 0, false, 0);
    add_dec(j, "k2", "k", 2, 1000, false, 1000);
    const base_outcome s1 = with_id(mk_conv_out("k", "csat", 5.0, 2000), "s1", "");
    const base_outcome t1 = with_id(mk_out("k1", "thumbs_up", 1.0, 2000), "t1", "");
    TST_EQ(check_then_add(j, s1, 2000), RWD_MATCHED);
    TST_EQ(check_then_add(j, t1, 2000), RWD_MATCHED);
    TST_EQ(expire_into(j, 1000 + DAY_MS, &b), 2);
    TST_EQ(check_then_add(j, s1, 1000 + DAY_MS), RWD_DUPLICATE);
    TST_EQ(check_then_add(j, t1, 1000 + DAY_MS), RWD_DUPLICATE);
    const base_outcome s2 = with_id(mk_conv_out("k", "csat", 1.0, DAY_MS), "s2", "s1");
    TST_EQ(check_then_add(j, s2, 1000 + DAY_MS + 1), RWD_LATE_CORRECTION);
    TST_EQ(check_then_add(j, s2, 1000 + DAY_MS + 2), RWD_DUPLICATE);
    TST_EQ(check_then_add(j, s1, 1000 + 2 * DAY_MS - 1), RWD_DUPLICATE);
    TST_EQ(check_then_add(j, s1, 1000 + 2 * DAY_MS), RWD_UNKNOWN_EVENT);
    TST_EQ(check_then_add(j, s2, 1000 + 2 * DAY_MS), RWD_UNKNOWN_EVENT);
    TST_EQ(stats_of(j).status[RWD_LATE_CORRECTION], 1);
    batch_free(&b);
    rwd_join_free(j);

    /* m1 got s3 alone; m2 (a later turn) is still open when s3 is retried. */
    j = mk_join(&s, 8);
    if (j == NULL) {
        return;
    }
    add_dec(j, "m1", "m", 1, 0, false, 0);
    const base_outcome s3 = with_id(mk_conv_out("m", "csat", 5.0, 10), "s3", "");
    TST_EQ(check_then_add(j, s3, 10), RWD_MATCHED);
    add_dec(j, "m2", "m", 2, DAY_MS / 2, false, DAY_MS / 2);
    TST_EQ(check_then_add(j, s3, DAY_MS), RWD_DUPLICATE); /* m1 closed, not yet expired */
    TST_EQ(expire_into(j, DAY_MS, &b), 1);
    TST_EQ(check_then_add(j, s3, DAY_MS + 1), RWD_DUPLICATE); /* m1 expired */
    TST_EQ(check_then_add(j, with_id(mk_conv_out("m", "thumbs_up", 1.0, 20), "s4", ""), DAY_MS + 2),
           RWD_MATCHED);
    TST_EQ(expire_into(j, DAY_MS / 2 + DAY_MS, &b), 1);
    TST_NEAR(reward_of(&b, "m1"), 1.0, TOL);
    TST_NEAR(reward_of(&b, "m2"), 0.5, TOL); /* s4 only: s3 was not credited twice */
    const base_joined *m2 = find_joined(&b, "m2");
    TST_TRUE(m2 != NULL && m2->n_outcomes == 1);
    batch_free(&b);
    rwd_join_free(j);

    /*
     * Past late_memory_ms (one minute here) a closed turn's ids are
     * forgotten, whether or not expire() ran: the retry is credited to the
     * open turn, as for any new outcome.
     */
    s.late_memory_ms = MIN_MS;
    for (int expired = 0; expired <= 1; expired++) {
        j = mk_join(&s, 8);
        if (j == NULL) {
            return;
        }
        add_dec(j, "m1", "m", 1, 0, false, 0);
        TST_EQ(check_then_add(j, s3, 10), RWD_MATCHED);
        add_dec(j, "m2", "m", 2, DAY_MS / 2, false, DAY_MS / 2);
        TST_EQ(check_then_add(j, s3, DAY_MS + MIN_MS - 1), RWD_DUPLICATE);
        if (expired) {
            TST_EQ(expire_into(j, DAY_MS + MIN_MS, &b), 1);
        }
        TST_EQ(check_then_add(j, s3, DAY_MS + MIN_MS), RWD_MATCHED);
        batch_free(&b);
        rwd_join_free(j);
    }
}

/*
 * The outcome-id memory holds at most 2 * max_pending ids; past that the
 * oldest is forgotten first (its retry is then only late).
 */
static void test_outcome_memory_cap(void)
{
    rwd_spec s;
    support_spec(&s);
    rwd_join *j = mk_join(&s, 2); /* at most 4 remembered outcome ids */
    batch b = {.n = 0};
    if (j == NULL) {
        return;
    }
    add_dec(j, "a", "", 0, 0, false, 0);
    base_outcome o[5];
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof(id), "o%d", i + 1);
        o[i] = with_id(mk_out("a", "thumbs_up", 1.0, 10 + i), id, "");
        TST_EQ(check_then_add(j, o[i], 10 + i), RWD_MATCHED);
    }
    TST_EQ(expire_into(j, DAY_MS, &b), 1);
    for (int i = 4; i >= 1; i--) {
        TST_EQ(check_then_add(j, o[i], DAY_MS + 1), RWD_DUPLICATE);
    }
    TST_EQ(check_then_add(j, o[0], DAY_MS + 2), RWD_LATE); /* o1, the oldest, was evicted */
    /* Now o1 is remembered again, in place of the oldest left: o2. */
    TST_EQ(check_then_add(j, o[0], DAY_MS + 3), RWD_DUPLICATE);
    TST_EQ(check_then_add(j, o[1], DAY_MS + 4), RWD_LATE);
    TST_EQ(check_then_add(j, o[4], DAY_MS + 5), RWD_DUPLICATE);
    batch_free(&b);
    rwd_join_free(j);

    /*
     * The two memories are capped apart: when a's closed event id was evicted
     * (4 closed ids are remembered) but its outcome id was not, a retry is a
     * duplicate rather than unknown, or early with a backward window.
     */
    for (int backward = 0; backward <= 1; backward++) {
        s.backward_window_ms = backward ? MIN_MS : 0;
        j = mk_join(&s, 2);
        if (j == NULL) {
            return;
        }
        add_dec(j, "a", "", 0, 0, false, 0);
        add_dec(j, "b", "", 0, 0, false, 0);
        TST_EQ(check_then_add(j, o[0], 10), RWD_MATCHED);
        TST_EQ(expire_into(j, DAY_MS, &b), 2);
        add_dec(j, "c", "", 0, 1, false, DAY_MS);
        add_dec(j, "d", "", 0, 2, false, DAY_MS);
        TST_EQ(expire_into(j, DAY_MS + 2, &b), 2);
        add_dec(j, "e", "", 0, 3, false, DAY_MS + 2);
        TST_EQ(expire_into(j, DAY_MS + 3, &b), 1);
        TST_EQ(check_then_add(j, mk_out("a", "thumbs_up", 1.0, 10), DAY_MS + 4),
               backward ? RWD_EARLY : RWD_UNKNOWN_EVENT);
        TST_EQ(check_then_add(j, o[0], DAY_MS + 4), RWD_DUPLICATE);
        batch_free(&b);
        rwd_join_free(j);
    }
}

/*
 * What a restart keeps (service/recovery.c): a decision joined before the
 * crash is only marked closed, with none of its outcome ids; outcomes that
 * are replayed for it are classified late and so remembered, and their
 * retries are duplicates. An id logged before the replay position is not.
 */
static void test_restart_memory(void)
{
    rwd_spec s;
    support_spec(&s);
    rwd_join *j = mk_join(&s, 8);
    if (j == NULL) {
        return;
    }
    rwd_join_mark_closed(j, "a", "k", DAY_MS);
    rwd_join_set_replay(j, true);
    const base_outcome r1 = with_id(mk_out("a", "thumbs_up", 1.0, 5), "r1", "");
    const base_outcome r2 = with_id(mk_conv_out("k", "csat", 4.0, 6), "r2", "");
    TST_EQ(check_then_add(j, r1, 5), RWD_LATE);
    TST_EQ(check_then_add(j, r2, 6), RWD_LATE);
    rwd_join_set_replay(j, false);
    TST_EQ(stats_of(j).status[RWD_LATE], 0); /* replayed: counted by the process that took it */
    TST_EQ(check_then_add(j, r1, DAY_MS + 1), RWD_DUPLICATE);
    TST_EQ(check_then_add(j, r2, DAY_MS + 1), RWD_DUPLICATE);
    TST_EQ(check_then_add(j, with_id(mk_out("a", "thumbs_up", 1.0, 4), "r0", ""), DAY_MS + 1),
           RWD_LATE);
    TST_EQ(check_then_add(j, r1, 2 * DAY_MS), RWD_UNKNOWN_EVENT);
    rwd_join_free(j);
}

/* A join rebuilt to replace another (a definition change) goes on counting where it stopped. */
static void test_carry_stats(void)
{
    rwd_spec s;
    support_spec(&s);
    rwd_join *old = mk_join(&s, 8), *rebuilt = mk_join(&s, 8);
    batch b = {.n = 0};
    if (old == NULL || rebuilt == NULL) {
        rwd_join_free(old);
        rwd_join_free(rebuilt);
        return;
    }
    add_dec(old, "a", "", 0, 0, false, 0);
    add_dec(old, "b", "", 0, 0, false, 0);
    TST_EQ(add_out(old, mk_out("a", "resolved", 1.0, 10), 10), RWD_MATCHED);
    TST_EQ(add_out(old, mk_out("zz", "resolved", 1.0, 10), 10), RWD_UNKNOWN_EVENT);
    TST_EQ(expire_into(old, DAY_MS + 1, &b), 2); /* "b" defaulted */
    add_dec(rebuilt, "c", "", 0, DAY_MS, false, DAY_MS);
    TST_EQ(add_out(rebuilt, mk_out("c", "resolved", 1.0, DAY_MS + 5), DAY_MS + 5), RWD_MATCHED);
    rwd_join_stats o = stats_of(old), r = stats_of(rebuilt);
    rwd_join_carry_stats(rebuilt, old);
    rwd_join_stats sum = stats_of(rebuilt);
    TST_EQ(sum.status[RWD_MATCHED], o.status[RWD_MATCHED] + r.status[RWD_MATCHED]);
    TST_EQ(sum.status[RWD_MATCHED], 2);
    TST_EQ(sum.status[RWD_UNKNOWN_EVENT], 1);
    TST_EQ(sum.joined, 2);
    TST_EQ(sum.defaulted, 1);
    TST_EQ(sum.pending, 1); /* a gauge: the rebuilt join's own */
    uint64_t lat = 0;
    for (int k = 0; k < RWD_LATENCY_BUCKETS; k++) {
        lat += sum.latency[k];
    }
    TST_EQ(lat, 2);
    batch_free(&b);
    rwd_join_free(old);
    rwd_join_free(rebuilt);
}

static void test_deferred(void)
{
    rwd_spec s;
    support_spec(&s);
    rwd_join *j = mk_join(&s, 8);
    batch b = {.n = 0};
    if (j == NULL) {
        return;
    }
    add_dec(j, "shown", "", 0, 0, true, 0);
    add_dec(j, "hidden", "", 0, 0, true, 0);
    add_dec(j, "closing", "", 0, 0, true, 0);
    rwd_join_stats st = stats_of(j);
    TST_EQ(st.pending, 3);
    TST_EQ(st.deferred, 3);

    rwd_status cs = RWD_STATUS_COUNT;
    rwd_join_check_activate(j, "shown", 1000, &cs);
    TST_EQ(cs, RWD_MATCHED);
    TST_EQ(stats_of(j).activations, 0); /* check changes nothing */
    TST_EQ(activate(j, "shown", 1000), RWD_MATCHED);
    TST_EQ(activate(j, "shown", 2000), RWD_DUPLICATE);
    rwd_join_check_activate(j, "shown", 2000, &cs);
    TST_EQ(cs, RWD_DUPLICATE);
    TST_EQ(activate(j, "nobody", 2000), RWD_UNKNOWN_EVENT);
    st = stats_of(j);
    TST_EQ(st.activations, 1);
    TST_EQ(st.deferred, 2);

    /* Outcomes reach deferred decisions too; they count only if it is activated. */
    TST_EQ(add_out(j, mk_out("shown", "thumbs_up", 1.0, 1500), 1500), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("hidden", "thumbs_up", 1.0, 1500), 1500), RWD_MATCHED);

    /* At exactly ts + window an unactivated decision can no longer be activated. */
    rwd_join_check_activate(j, "closing", DAY_MS, &cs);
    TST_EQ(cs, RWD_LATE);
    TST_EQ(activate(j, "closing", DAY_MS), RWD_LATE);

    /* ts + window: both unactivated ones are dropped, no example. */
    TST_EQ(expire_into(j, DAY_MS, &b), 0);
    st = stats_of(j);
    TST_EQ(st.not_activated, 2);
    TST_EQ(st.joined, 0);
    TST_EQ(st.pending, 1);
    TST_EQ(st.deferred, 0);
    TST_EQ(activate(j, "hidden", DAY_MS + 1), RWD_LATE);
    TST_EQ(add_out(j, mk_out("hidden", "thumbs_up", 1.0, DAY_MS + 1), DAY_MS + 1), RWD_LATE);

    /* The activated one's window restarted at activation: 1000 + window. */
    TST_EQ(rwd_join_next_deadline(j), 1000 + DAY_MS);
    TST_EQ(expire_into(j, 1000 + DAY_MS - 1, &b), 0);
    TST_EQ(expire_into(j, 1000 + DAY_MS, &b), 1);
    const base_joined *jo = find_joined(&b, "shown");
    TST_TRUE(jo != NULL);
    if (jo != NULL) {
        TST_NEAR(jo->reward, 0.5, TOL);
        TST_EQ(jo->joined_ts_ms, 1000 + DAY_MS);
        TST_TRUE(!jo->defaulted);
    }
    TST_TRUE(find_joined(&b, "hidden") == NULL);
    st = stats_of(j);
    TST_EQ(st.joined, 1);
    TST_EQ(st.not_activated, 2);
    batch_free(&b);
    rwd_join_free(j);
}

static void test_expiry_order(void)
{
    rwd_spec s;
    support_spec(&s);
    rwd_join *j = mk_join(&s, 8);
    batch b = {.n = 0};
    if (j == NULL) {
        return;
    }
    add_dec(j, "deferred", "", 0, 0, true, 0);
    add_dec(j, "b", "", 0, 1000, false, 1000);
    add_dec(j, "c", "", 0, 1000, false, 1000); /* ties with b: arrival order */
    add_dec(j, "early", "", 0, 500, false, 1000);
    TST_EQ(activate(j, "deferred", 5000), RWD_MATCHED);
    TST_EQ(rwd_join_next_deadline(j), 500 + DAY_MS);
    TST_EQ(expire_into(j, 10 * DAY_MS, &b), 4);
    TST_TRUE(b.n == 4 && strcmp(b.j[0]->decision->event_id, "early") == 0 &&
             strcmp(b.j[1]->decision->event_id, "b") == 0 &&
             strcmp(b.j[2]->decision->event_id, "c") == 0 &&
             strcmp(b.j[3]->decision->event_id, "deferred") == 0);
    TST_TRUE(b.n == 4 && b.j[3]->joined_ts_ms == 5000 + DAY_MS);
    batch_free(&b);
    rwd_join_free(j);

    /* max_out bounds one call; the rest follow in order. */
    j = mk_join(&s, 8);
    if (j == NULL) {
        return;
    }
    add_dec(j, "x", "", 0, 0, false, 0);
    add_dec(j, "y", "", 0, 1, false, 1);
    add_dec(j, "z", "", 0, 2, false, 2);
    b.n = rwd_join_expire(j, DAY_MS + 5, b.j, 2);
    TST_EQ(b.n, 2);
    TST_TRUE(b.n == 2 && strcmp(b.j[0]->decision->event_id, "x") == 0);
    TST_TRUE(b.n == 2 && strcmp(b.j[1]->decision->event_id, "y") == 0);
    TST_EQ(expire_into(j, DAY_MS + 5, &b), 1);
    TST_TRUE(b.n == 3 && strcmp(b.j[2]->decision->event_id, "z") == 0);
    batch_free(&b);
    rwd_join_free(j);
}

typedef struct turn_want {
    double reward;
    double share;
    uint32_t n_outcomes;
} turn_want;

/*
 * A 5-turn conversation "k" (turns 1..5 at ts 1000 * t, added out of turn
 * order), a conversation-level csat of 5 (contribution 1) and a turn-level
 * thumbs_up (0.5) on turn 2. "solo" is a decision outside the conversation.
 */
static void run_credit(uint32_t credit, double gamma, const turn_want want[5])
{
    rwd_spec s;
    support_spec(&s);
    s.credit = credit;
    s.credit_gamma = gamma;
    rwd_join *j = mk_join(&s, 16);
    batch b = {.n = 0};
    if (j == NULL) {
        return;
    }
    static const uint32_t order[5] = {3, 1, 5, 2, 4};
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof(id), "t%u", order[i]);
        add_dec(j, id, "k", order[i], 1000 * (int64_t)order[i], false, 1000 * (int64_t)order[i]);
    }
    add_dec(j, "solo", "", 0, 1000, false, 1000);
    TST_EQ(add_out(j, mk_out("t2", "thumbs_up", 1.0, 2500), 2500), RWD_MATCHED);
    base_outcome csat = with_id(mk_conv_out("k", "csat", 5.0, 6000), "csat-1", "");
    TST_EQ(add_out(j, csat, 6000), RWD_MATCHED);
    TST_EQ(add_out(j, csat, 6001), RWD_DUPLICATE); /* a conversation-level retry */
    TST_EQ(expire_into(j, 5000 + DAY_MS, &b), 6);
    for (uint32_t t = 1; t <= 5; t++) {
        char id[8];
        snprintf(id, sizeof(id), "t%u", t);
        const base_joined *jo = find_joined(&b, id);
        TST_TRUE(jo != NULL);
        if (jo == NULL) {
            continue;
        }
        TST_NEAR(jo->reward, want[t - 1].reward, TOL);
        TST_NEAR(jo->share, want[t - 1].share, TOL);
        TST_EQ(jo->n_outcomes, want[t - 1].n_outcomes);
        TST_EQ(jo->credit, credit);
        TST_EQ(jo->defaulted, want[t - 1].n_outcomes == 0);
    }
    const base_joined *solo = find_joined(&b, "solo");
    TST_TRUE(solo != NULL && solo->credit == BASE_CREDIT_NONE && solo->share == 0.0);
    batch_free(&b);
    rwd_join_free(j);
}

static void test_credit_rules(void)
{
    /* last: only turn 5 gets the csat. */
    const turn_want last[5] = {
        {0.0, 0.0, 0}, {0.5, 0.0, 1}, {0.0, 0.0, 0}, {0.0, 0.0, 0}, {1.0, 1.0, 1},
    };
    run_credit(BASE_CREDIT_LAST, 0.9, last);
    /* uniform: 1/5 each; turn 2 adds its thumbs. */
    const turn_want uni[5] = {
        {0.2, 0.2, 1}, {0.7, 0.2, 2}, {0.2, 0.2, 1}, {0.2, 0.2, 1}, {0.2, 0.2, 1},
    };
    run_credit(BASE_CREDIT_UNIFORM, 0.9, uni);
    /* discounted, gamma 0.5: turn t gets 0.5^(5 - t). */
    const turn_want disc[5] = {
        {0.0625, 0.0625, 1}, {0.625, 0.125, 2}, {0.25, 0.25, 1}, {0.5, 0.5, 1}, {1.0, 1.0, 1},
    };
    run_credit(BASE_CREDIT_DISCOUNTED, 0.5, disc);
    /* gamma 1: every turn gets all of it (turn 2: 1 + 0.5, clipped to 1). */
    const turn_want flat[5] = {
        {1.0, 1.0, 1}, {1.0, 1.0, 2}, {1.0, 1.0, 1}, {1.0, 1.0, 1}, {1.0, 1.0, 1},
    };
    run_credit(BASE_CREDIT_DISCOUNTED, 1.0, flat);
}

static void test_conversation_corrections_and_late(void)
{
    rwd_spec s;
    support_spec(&s);
    s.credit = BASE_CREDIT_UNIFORM;
    rwd_join *j = mk_join(&s, 16);
    batch b = {.n = 0};
    if (j == NULL) {
        return;
    }
    for (uint32_t t = 1; t <= 5; t++) {
        char id[8];
        snprintf(id, sizeof(id), "t%u", t);
        add_dec(j, id, "k", t, 1000 * (int64_t)t, false, 1000 * (int64_t)t);
    }
    TST_EQ(add_out(j, mk_out("t2", "thumbs_up", 1.0, 2500), 2500), RWD_MATCHED);
    TST_EQ(add_out(j, with_id(mk_conv_out("k", "csat", 5.0, 6000), "s1", ""), 6000), RWD_MATCHED);
    /* The customer corrects the csat from 5 to 1: -1 / 5 = -0.2 each. */
    TST_EQ(add_out(j, with_id(mk_conv_out("k", "csat", 1.0, 7000), "s2", "s1"), 7000),
           RWD_CORRECTED);
    TST_EQ(add_out(j, with_id(mk_conv_out("k", "csat", 5.0, 6000), "s1", ""), 8000), RWD_DUPLICATE);
    TST_EQ(add_out(j, mk_conv_out("nobody", "csat", 5.0, 6000), 8000), RWD_UNKNOWN_EVENT);
    TST_EQ(expire_into(j, 5000 + DAY_MS, &b), 5);
    TST_NEAR(reward_of(&b, "t1"), -0.2, TOL);
    TST_NEAR(reward_of(&b, "t2"), 0.3, TOL);
    TST_NEAR(reward_of(&b, "t5"), -0.2, TOL);
    const base_joined *t1 = find_joined(&b, "t1");
    TST_TRUE(t1 != NULL && t1->n_outcomes == 1);

    /* After the conversation's last window: late, or a late correction. */
    TST_EQ(add_out(j, mk_conv_out("k", "csat", 3.0, 9000), 5000 + DAY_MS), RWD_LATE);
    TST_EQ(add_out(j, with_id(mk_conv_out("k", "csat", 3.0, 9000), "s3", "s2"), 5000 + DAY_MS),
           RWD_LATE_CORRECTION);
    /* ...until late_memory_ms after the last decision closed. */
    TST_EQ(add_out(j, mk_conv_out("k", "csat", 3.0, 9000), 5000 + 2 * DAY_MS), RWD_UNKNOWN_EVENT);
    batch_free(&b);
    rwd_join_free(j);

    /* Closed turns are not credited: the csat is shared among the open ones. */
    j = mk_join(&s, 16);
    if (j == NULL) {
        return;
    }
    add_dec(j, "old", "k", 1, 0, false, 0);
    add_dec(j, "new1", "k", 2, DAY_MS / 2, false, DAY_MS / 2);
    add_dec(j, "new2", "k", 3, DAY_MS / 2, false, DAY_MS / 2);
    TST_EQ(add_out(j, mk_conv_out("k", "csat", 5.0, DAY_MS), DAY_MS), RWD_MATCHED);
    TST_EQ(expire_into(j, 2 * DAY_MS, &b), 3);
    TST_NEAR(reward_of(&b, "old"), 0.0, TOL);
    TST_NEAR(reward_of(&b, "new1"), 0.5, TOL);
    TST_NEAR(reward_of(&b, "new2"), 0.5, TOL);
    const base_joined *old = find_joined(&b, "old");
    TST_TRUE(old != NULL && old->defaulted && old->credit == BASE_CREDIT_NONE);
    batch_free(&b);
    rwd_join_free(j);
}

static void test_idempotency(void)
{
    rwd_spec s;
    support_spec(&s);
    s.clip_max = 10.0;
    rwd_join *j = mk_join(&s, 8);
    batch b = {.n = 0};
    if (j == NULL) {
        return;
    }
    add_dec(j, "a", "", 0, 0, false, 0);
    add_dec(j, "b", "", 0, 0, false, 0);
    base_outcome up = with_id(mk_out("a", "thumbs_up", 1.0, 10), "o1", "");
    TST_EQ(add_out(j, up, 10), RWD_MATCHED);
    TST_EQ(add_out(j, up, 11), RWD_DUPLICATE);
    TST_EQ(add_out(j, up, 12), RWD_DUPLICATE);
    /* Without an outcome_id nothing is deduplicated. */
    TST_EQ(add_out(j, mk_out("a", "thumbs_up", 1.0, 13), 13), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("a", "thumbs_up", 1.0, 13), 13), RWD_MATCHED);
    /* outcome_id is scoped to its decision. */
    TST_EQ(add_out(j, with_id(mk_out("b", "thumbs_up", 1.0, 10), "o1", ""), 14), RWD_MATCHED);
    rwd_join_stats st = stats_of(j);
    TST_EQ(st.status[RWD_DUPLICATE], 2);
    TST_EQ(st.status[RWD_MATCHED], 4);
    TST_EQ(expire_into(j, DAY_MS, &b), 2);
    TST_NEAR(reward_of(&b, "a"), 1.5, TOL); /* o1 once + two anonymous */
    TST_NEAR(reward_of(&b, "b"), 0.5, TOL);
    const base_joined *a = find_joined(&b, "a");
    TST_TRUE(a != NULL && a->n_outcomes == 3);
    batch_free(&b);
    rwd_join_free(j);
}

static void test_supersedes(void)
{
    rwd_spec s;
    rwd_spec_default(&s);
    s.window_ms = DAY_MS;
    s.clip_min = -10.0;
    s.clip_max = 10.0;
    add_signal(&s, "score", RWD_NUMBER, 1.0, RWD_AGG_SUM);
    add_csat(&s, RWD_AGG_LAST);
    s.signal[0].min = -5.0;
    s.signal[0].max = 5.0;
    s.signal[0].map_min = -5.0;
    s.signal[0].map_max = 5.0;
    rwd_join *j = mk_join(&s, 8);
    batch b = {.n = 0};
    if (j == NULL) {
        return;
    }
    add_dec(j, "sum", "", 0, 0, false, 0);
    add_dec(j, "last", "", 0, 0, false, 0);
    add_dec(j, "late", "", 0, 0, false, 0);

    /* sum: 3 + 1, then 3 is corrected to -2: -2 + 1 = -1. */
    TST_EQ(add_out(j, with_id(mk_out("sum", "score", 3.0, 10), "o1", ""), 10), RWD_MATCHED);
    TST_EQ(add_out(j, with_id(mk_out("sum", "score", 1.0, 11), "o2", ""), 11), RWD_MATCHED);
    TST_EQ(check_out(j, with_id(mk_out("sum", "score", -2.0, 12), "o3", "o1"), 12), RWD_CORRECTED);
    TST_EQ(add_out(j, with_id(mk_out("sum", "score", -2.0, 12), "o3", "o1"), 12), RWD_CORRECTED);
    /* Retries of the replaced and of the replacing outcome change nothing. */
    TST_EQ(add_out(j, with_id(mk_out("sum", "score", 3.0, 10), "o1", ""), 13), RWD_DUPLICATE);
    TST_EQ(add_out(j, with_id(mk_out("sum", "score", -2.0, 12), "o3", "o1"), 14), RWD_DUPLICATE);
    /* A correction of an id never seen is just a new outcome. */
    TST_EQ(add_out(j, with_id(mk_out("sum", "score", 0.5, 15), "o4", "nope"), 15), RWD_MATCHED);

    /* last: 5 (ts 200) and 4 (ts 300); 4 is corrected to 2 with ts 100: last by ts is 5. */
    TST_EQ(add_out(j, with_id(mk_out("last", "csat", 5.0, 200), "c1", ""), 20), RWD_MATCHED);
    TST_EQ(add_out(j, with_id(mk_out("last", "csat", 4.0, 300), "c2", ""), 21), RWD_MATCHED);
    TST_EQ(add_out(j, with_id(mk_out("last", "csat", 2.0, 100), "c3", "c2"), 22), RWD_CORRECTED);

    /* After the window, a correction is only logged. */
    TST_EQ(add_out(j, with_id(mk_out("late", "score", 2.0, 10), "l1", ""), 10), RWD_MATCHED);
    TST_EQ(expire_into(j, DAY_MS, &b), 3);
    TST_EQ(add_out(j, with_id(mk_out("late", "score", -5.0, 10), "l2", "l1"), DAY_MS + 1),
           RWD_LATE_CORRECTION);
    TST_EQ(expire_into(j, 2 * DAY_MS, &b), 0);

    TST_NEAR(reward_of(&b, "sum"), -0.5, TOL); /* -2 + 1 + 0.5 */
    TST_NEAR(reward_of(&b, "last"), 1.0, TOL);
    TST_NEAR(reward_of(&b, "late"), 2.0, TOL);
    const base_joined *js = find_joined(&b, "sum");
    const base_joined *jl = find_joined(&b, "last");
    TST_TRUE(js != NULL && js->n_outcomes == 3);
    TST_TRUE(jl != NULL && jl->n_outcomes == 2);
    rwd_join_stats st = stats_of(j);
    TST_EQ(st.status[RWD_CORRECTED], 2);
    TST_EQ(st.status[RWD_LATE_CORRECTION], 1);
    batch_free(&b);
    rwd_join_free(j);
}

static void test_max_outcomes(void)
{
    rwd_spec s;
    support_spec(&s);
    s.max_outcomes = 3;
    s.clip_max = 10.0;
    rwd_join *j = mk_join(&s, 8);
    batch b = {.n = 0};
    if (j == NULL) {
        return;
    }
    add_dec(j, "a", "", 0, 0, false, 0);
    TST_EQ(add_out(j, with_id(mk_out("a", "thumbs_up", 1.0, 1), "x", ""), 1), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("a", "thumbs_up", 1.0, 2), 2), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("a", "thumbs_up", 1.0, 3), 3), RWD_MATCHED);
    TST_EQ(check_out(j, mk_out("a", "thumbs_up", 1.0, 4), 4), RWD_REJECT_LIMIT);
    TST_EQ(add_out(j, mk_out("a", "thumbs_up", 1.0, 4), 4), RWD_REJECT_LIMIT);
    /* A retry is still recognised as one. */
    TST_EQ(add_out(j, with_id(mk_out("a", "thumbs_up", 1.0, 1), "x", ""), 5), RWD_DUPLICATE);
    TST_EQ(stats_of(j).status[RWD_REJECT_LIMIT], 1);
    TST_EQ(expire_into(j, DAY_MS, &b), 1);
    TST_NEAR(reward_of(&b, "a"), 1.5, TOL);
    batch_free(&b);
    rwd_join_free(j);
}

static void test_rate_cap(void)
{
    rwd_spec s;
    support_spec(&s);
    s.user_rate_per_s = 1.0;
    s.user_burst = 3.0;
    s.max_outcomes = 64;
    rwd_join *j = mk_join(&s, 8);
    if (j == NULL) {
        return;
    }
    add_dec(j, "a", "", 0, 0, false, 0);
    base_outcome o = with_user(mk_out("a", "thumbs_up", 1.0, 0), "u1");
    /* Checking never spends a token. */
    for (int i = 0; i < 10; i++) {
        TST_EQ(check_out(j, o, 0), RWD_MATCHED);
    }
    TST_EQ(add_out(j, o, 0), RWD_MATCHED);
    TST_EQ(add_out(j, o, 0), RWD_MATCHED);
    TST_EQ(add_out(j, o, 0), RWD_MATCHED);
    TST_EQ(check_out(j, o, 0), RWD_REJECT_RATE);
    TST_EQ(add_out(j, o, 0), RWD_REJECT_RATE);
    TST_EQ(add_out(j, o, 999), RWD_REJECT_RATE); /* 0.999 tokens */
    TST_EQ(add_out(j, o, 1000), RWD_MATCHED);    /* one second: one token */
    TST_EQ(add_out(j, o, 1000), RWD_REJECT_RATE);
    /* Another user has its own bucket; no user_id means no cap. */
    TST_EQ(add_out(j, with_user(o, "u2"), 1000), RWD_MATCHED);
    for (int i = 0; i < 10; i++) {
        TST_EQ(add_out(j, with_user(o, ""), 1000), RWD_MATCHED);
    }
    /* Rejected signals and values do not spend tokens either. */
    base_outcome bad = with_user(mk_out("a", "nope", 1.0, 0), "u3");
    base_outcome badv = with_user(mk_out("a", "csat", 9.0, 0), "u3");
    for (int i = 0; i < 5; i++) {
        TST_EQ(add_out(j, bad, 2000), RWD_REJECT_SIGNAL);
        TST_EQ(add_out(j, badv, 2000), RWD_REJECT_VALUE);
    }
    base_outcome u3 = with_user(o, "u3");
    TST_EQ(add_out(j, u3, 2000), RWD_MATCHED);
    TST_EQ(add_out(j, u3, 2000), RWD_MATCHED);
    TST_EQ(add_out(j, u3, 2000), RWD_MATCHED);
    TST_EQ(add_out(j, u3, 2000), RWD_REJECT_RATE);
    /* A long pause refills up to the burst, not beyond. */
    for (int i = 0; i < 3; i++) {
        TST_EQ(add_out(j, o, 1000 + DAY_MS / 2), RWD_MATCHED);
    }
    TST_EQ(add_out(j, o, 1000 + DAY_MS / 2), RWD_REJECT_RATE);
    rwd_join_stats st = stats_of(j);
    TST_EQ(st.status[RWD_REJECT_RATE], 5);
    rwd_join_free(j);
}

static void test_check_changes_nothing(void)
{
    rwd_spec s;
    support_spec(&s);
    s.backward_window_ms = MIN_MS;
    s.user_rate_per_s = 1.0;
    s.user_burst = 1.0;
    s.max_outcomes = 1;
    rwd_join *j = mk_join(&s, 8);
    batch b = {.n = 0};
    if (j == NULL) {
        return;
    }
    add_dec(j, "a", "k", 1, 0, false, 0);
    add_dec(j, "full", "", 0, 0, false, 0);
    TST_EQ(add_out(j, with_id(mk_out("full", "thumbs_up", 1.0, 1), "f1", ""), 1), RWD_MATCHED);

    rwd_join_stats before = stats_of(j);
    const base_outcome probes[] = {
        with_user(mk_out("a", "thumbs_up", 1.0, 5), "u"),         /* matched */
        mk_conv_out("k", "csat", 5.0, 5),                         /* matched (conversation) */
        mk_out("early", "thumbs_up", 1.0, 5),                     /* early */
        with_id(mk_out("full", "thumbs_up", 1.0, 1), "f1", ""),   /* duplicate */
        mk_out("full", "thumbs_up", 1.0, 5),                      /* limit */
        with_id(mk_out("full", "thumbs_up", 1.0, 1), "f2", "f1"), /* corrected? limit */
        mk_out("a", "nope", 1.0, 5),                              /* signal */
        mk_out("a", "csat", 0.0, 5),                              /* value */
        mk_conv_out("zz", "csat", 5.0, 5),                        /* unknown */
    };
    rwd_status first[sizeof(probes) / sizeof(probes[0])];
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        first[i] = check_out(j, probes[i], 10);
        TST_EQ(check_out(j, probes[i], 10), first[i]); /* repeatable */
    }
    rwd_join_stats after = stats_of(j);
    TST_TRUE(memcmp(&before, &after, sizeof(before)) == 0);
    TST_EQ(first[0], RWD_MATCHED);
    TST_EQ(first[1], RWD_MATCHED);
    TST_EQ(first[2], RWD_EARLY);
    TST_EQ(first[3], RWD_DUPLICATE);
    TST_EQ(first[4], RWD_REJECT_LIMIT);
    TST_EQ(first[6], RWD_REJECT_SIGNAL);
    TST_EQ(first[7], RWD_REJECT_VALUE);
    TST_EQ(first[8], RWD_UNKNOWN_EVENT);
    /* The check predicted each add (in an order where the adds do not interact). */
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        if (i == 1) {
            continue; /* the conversation csat would fill "a" before probe 0 */
        }
        TST_EQ(add_out(j, probes[i], 10), first[i]);
    }
    /* The rate bucket of "u" was not spent by the checks: the add above matched. */
    TST_EQ(stats_of(j).status[RWD_REJECT_RATE], 0);
    TST_EQ(expire_into(j, DAY_MS, &b), 2);
    TST_NEAR(reward_of(&b, "a"), 0.5, TOL);
    TST_NEAR(reward_of(&b, "full"), 0.5, TOL);
    batch_free(&b);
    rwd_join_free(j);
}

/* Applies @o, expects @want, and tallies it. */
static void expect_status(rwd_join *j, base_outcome o, int64_t now, rwd_status want,
                          uint64_t *tally)
{
    rwd_status got = add_out(j, o, now);
    TST_EQ(got, want);
    if ((unsigned)got < RWD_STATUS_COUNT) {
        tally[got]++;
    }
}

static void test_stats_every_status(void)
{
    rwd_spec s;
    support_spec(&s);
    s.backward_window_ms = MIN_MS;
    s.max_outcomes = 2;
    s.user_rate_per_s = 1.0;
    s.user_burst = 1.0;
    rwd_join *j = mk_join(&s, 8);
    batch b = {.n = 0};
    uint64_t tally[RWD_STATUS_COUNT] = {0};
    if (j == NULL) {
        return;
    }
    add_dec(j, "a", "", 0, 0, false, 0);
    add_dec(j, "c", "", 0, 0, false, 0);
    add_dec(j, "d", "", 0, 0, true, 0);
    expect_status(j, with_id(mk_out("a", "thumbs_up", 1.0, 1), "x", ""), 1, RWD_MATCHED, tally);
    expect_status(j, with_id(mk_out("a", "thumbs_up", 1.0, 1), "x", ""), 1, RWD_DUPLICATE, tally);
    expect_status(j, with_id(mk_out("a", "thumbs_up", 1.0, 2), "y", "x"), 2, RWD_CORRECTED, tally);
    expect_status(j, mk_out("a", "thumbs_up", 1.0, 3), 3, RWD_REJECT_LIMIT, tally);
    expect_status(j, mk_out("new", "thumbs_up", 1.0, 3), 3, RWD_EARLY, tally);
    expect_status(j, mk_conv_out("none", "csat", 4.0, 3), 3, RWD_UNKNOWN_EVENT, tally);
    expect_status(j, mk_out("a", "frown", 1.0, 3), 3, RWD_REJECT_SIGNAL, tally);
    expect_status(j, mk_out("a", "csat", 5.5, 3), 3, RWD_REJECT_VALUE, tally);
    expect_status(j, with_user(mk_out("c", "thumbs_up", 1.0, 4), "u"), 4, RWD_MATCHED, tally);
    expect_status(j, with_user(mk_out("c", "thumbs_up", 1.0, 4), "u"), 4, RWD_REJECT_RATE, tally);
    TST_EQ(expire_into(j, DAY_MS, &b), 2); /* a, c joined; d dropped */
    expect_status(j, mk_out("c", "thumbs_up", 1.0, DAY_MS), DAY_MS, RWD_LATE, tally);
    expect_status(j, with_id(mk_out("c", "thumbs_up", 1.0, DAY_MS), "z", "q"), DAY_MS,
                  RWD_LATE_CORRECTION, tally);
    TST_EQ(expire_into(j, DAY_MS + MIN_MS + 1, &b), 0); /* "new" was never decided */

    rwd_join_stats st = stats_of(j);
    for (int i = 0; i < RWD_STATUS_COUNT; i++) {
        TST_EQ(tally[i], 1 + (i == RWD_MATCHED));
        TST_EQ(st.status[i], tally[i]);
    }
    TST_EQ(st.joined, 2);
    TST_EQ(st.defaulted, 0);
    TST_EQ(st.unknown, 0);
    TST_EQ(st.not_activated, 1);
    TST_EQ(st.dangling, 1);
    TST_EQ(st.pending, 0);
    TST_EQ(st.deferred, 0);
    TST_EQ(st.activations, 0);
    TST_NEAR(reward_of(&b, "a"), 0.5, TOL); /* y replaced x */
    TST_NEAR(reward_of(&b, "c"), 0.5, TOL);
    batch_free(&b);
    rwd_join_free(j);
}

static void test_latency_histogram(void)
{
    rwd_spec s;
    rwd_spec_default(&s);
    s.window_ms = 2 * DAY_MS;
    s.max_outcomes = 64;
    add_signal(&s, "thumbs_up", RWD_EVENT, 0.5, RWD_AGG_SUM);
    s.credit = BASE_CREDIT_UNIFORM;
    rwd_join *j = mk_join(&s, 8);
    if (j == NULL) {
        return;
    }
    const int64_t t0 = 1000000;
    add_dec(j, "a", "", 0, t0, false, t0);
    /* Two outcomes per bucket: the lower bound and just below the next one. */
    static const int64_t dt[] = {
        0,      999,     1000,    9999,     10000,    59999,    60000,    599999,
        600000, 3599999, 3600000, 21599999, 21600000, 86399999, 86400000, 100000000,
    };
    for (size_t i = 0; i < sizeof(dt) / sizeof(dt[0]); i++) {
        TST_EQ(add_out(j, mk_out("a", "thumbs_up", 1.0, t0 + dt[i]), t0 + dt[i]), RWD_MATCHED);
    }
    /* An outcome stamped before its decision counts in the first bucket. */
    TST_EQ(add_out(j, mk_out("a", "thumbs_up", 1.0, t0 - 5), t0 + 1), RWD_MATCHED);
    /* Outcomes that are not matched are not timed. */
    TST_EQ(add_out(j, mk_out("zz", "thumbs_up", 1.0, t0), t0 + 1), RWD_UNKNOWN_EVENT);
    /* A conversation-level outcome is timed once per decision it reaches. */
    add_dec(j, "k1", "k", 1, t0, false, t0);
    add_dec(j, "k2", "k", 2, t0, false, t0);
    TST_EQ(add_out(j, mk_conv_out("k", "thumbs_up", 1.0, t0 + 2 * MIN_MS), t0 + 2 * MIN_MS),
           RWD_MATCHED);
    rwd_join_stats st = stats_of(j);
    static const uint64_t want[RWD_LATENCY_BUCKETS] = {3, 2, 2, 4, 2, 2, 2, 2};
    for (int i = 0; i < RWD_LATENCY_BUCKETS; i++) {
        TST_EQ(st.latency[i], want[i]);
    }
    rwd_join_free(j);
}

static void test_spec_version_stamped(void)
{
    for (int explicit_v = 0; explicit_v <= 1; explicit_v++) {
        rwd_spec s;
        support_spec(&s);
        if (explicit_v) {
            (void)base_strlcpy(s.version, "support-v7", sizeof(s.version));
        }
        char want[BASE_NAME_MAX + 1];
        rwd_spec_version(&s, want, sizeof(want));
        rwd_join *j = mk_join(&s, 8);
        batch b = {.n = 0};
        if (j == NULL) {
            return;
        }
        add_dec(j, "a", "", 0, 0, false, 0);
        add_dec(j, "b", "", 0, 0, false, 0);
        TST_EQ(add_out(j, mk_out("a", "thumbs_up", 1.0, 0), 0), RWD_MATCHED);
        TST_EQ(expire_into(j, DAY_MS, &b), 2);
        TST_TRUE(b.n == 2);
        for (size_t i = 0; i < b.n; i++) {
            TST_STREQ(b.j[i]->spec_version, want);
        }
        if (explicit_v) {
            TST_STREQ(want, "support-v7");
        } else {
            TST_TRUE(want[0] == 'h' && strlen(want) == 17);
        }
        batch_free(&b);
        rwd_join_free(j);
    }
}

/* Expect the join to refuse @d with @want; @d is freed here unless the join took it. */
static void refuse_dec(rwd_join *j, base_decision *d, int64_t now, base_err want)
{
    if (d == NULL) {
        TST_TRUE(d != NULL);
        return;
    }
    base_err e = rwd_join_add_decision(j, d, now);
    TST_EQ(e, want);
    if (e != BASE_OK) {
        base_decision_free(d);
    }
}

static void test_decision_admission(void)
{
    rwd_spec s;
    support_spec(&s);
    rwd_join *j = mk_join(&s, 2);
    batch b = {.n = 0};
    if (j == NULL) {
        return;
    }
    add_dec(j, "a", "", 0, 0, false, 0);
    /* A second pending decision with the same id: refused, caller keeps it. */
    refuse_dec(j, mk_dec("a", "", 0, 5, false), 5, BASE_EINVAL);
    refuse_dec(j, mk_dec("", "", 0, 5, false), 5, BASE_EINVAL);

    add_dec(j, "b", "", 0, 10, false, 10);
    base_decision *over = mk_dec("c", "", 0, 20, false);
    if (over == NULL) {
        rwd_join_free(j);
        return;
    }
    base_err e = rwd_join_add_decision(j, over, 20);
    TST_EQ(e, BASE_ELIMIT);
    if (e == BASE_OK) {
        rwd_join_free(j); /* it took "c" */
        return;
    }
    TST_EQ(stats_of(j).pending, 2);
    /* Still ours: once room is made, the same object is accepted. */
    TST_EQ(expire_into(j, DAY_MS, &b), 1);
    e = rwd_join_add_decision(j, over, DAY_MS);
    TST_OK(e);
    if (e != BASE_OK) {
        base_decision_free(over);
    }
    TST_EQ(stats_of(j).pending, 2);
    /* A decision can be re-added after its window closed (a new example). */
    TST_EQ(expire_into(j, DAY_MS + 10, &b), 1);
    add_dec(j, "a", "", 0, DAY_MS + 10, false, DAY_MS + 10);
    TST_EQ(add_out(j, mk_out("a", "thumbs_up", 1.0, 0), DAY_MS + 11), RWD_MATCHED);
    batch_free(&b);
    rwd_join_free(j); /* frees "a" and "c" */
}

/* Freeing a join that holds every kind of state leaks nothing (checked under ASan). */
static void test_free_with_state(void)
{
    rwd_spec s;
    support_spec(&s);
    s.backward_window_ms = MIN_MS;
    s.user_rate_per_s = 5.0;
    rwd_join *j = mk_join(&s, 16);
    batch b = {.n = 0};
    if (j == NULL) {
        return;
    }
    add_dec(j, "closed", "k", 1, 0, false, 0);
    TST_EQ(expire_into(j, DAY_MS, &b), 1);
    add_dec(j, "p1", "k", 2, DAY_MS, false, DAY_MS);
    add_dec(j, "p2", "k", 3, DAY_MS, true, DAY_MS);
    add_dec(j, "p3", "", 0, DAY_MS, false, DAY_MS);
    for (int i = 0; i < 5; i++) {
        TST_EQ(add_out(j, with_user(mk_out("p1", "thumbs_up", 1.0, DAY_MS), "u"), DAY_MS),
               RWD_MATCHED);
    }
    TST_EQ(add_out(j, mk_conv_out("k", "csat", 4.0, DAY_MS), DAY_MS), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("held1", "thumbs_up", 1.0, DAY_MS), DAY_MS), RWD_EARLY);
    TST_EQ(add_out(j, mk_out("held2", "thumbs_up", 1.0, DAY_MS), DAY_MS), RWD_EARLY);
    add_dec(j, "held1", "", 0, DAY_MS, false, DAY_MS + 1); /* consumes one held outcome */
    batch_free(&b);
    rwd_join_free(j);
}

/*
 * The worked examples of docs/rewards.md, number for number: the support
 * spec plus recontact_3d, discounted credit with gamma 0.8, a one-minute
 * backward window. Tolerance 1e-12 (0.8^k is not a binary fraction).
 */
static void test_docs_examples(void)
{
    rwd_spec s;
    support_spec(&s);
    add_signal(&s, "recontact_3d", RWD_FLAG, -0.5, RWD_AGG_SUM);
    s.backward_window_ms = MIN_MS;
    s.credit = BASE_CREDIT_DISCOUNTED;
    s.credit_gamma = 0.8;
    s.late_memory_ms = 4 * DAY_MS; /* so a recontact days later is late, not unknown */
    rwd_join *j = mk_join(&s, 32);
    batch b = {.n = 0};
    if (j == NULL) {
        return;
    }
    /* A: three turns, thumbs up on turn 1, conversation csat 4. */
    add_dec(j, "a1", "conv-A", 1, 0, false, 0);
    add_dec(j, "a2", "conv-A", 2, MIN_MS, false, MIN_MS);
    add_dec(j, "a3", "conv-A", 3, 2 * MIN_MS, false, 2 * MIN_MS);
    TST_EQ(add_out(j, mk_out("a1", "thumbs_up", 1.0, 30000), 30000), RWD_MATCHED);
    TST_EQ(add_out(j, mk_conv_out("conv-A", "csat", 4.0, 5 * MIN_MS), 5 * MIN_MS), RWD_MATCHED);
    /* B: three turns, thumbs down on turn 3, conversation escalated and csat 2. */
    add_dec(j, "b1", "conv-B", 1, 0, false, 0);
    add_dec(j, "b2", "conv-B", 2, MIN_MS, false, MIN_MS);
    add_dec(j, "b3", "conv-B", 3, 2 * MIN_MS, false, 2 * MIN_MS);
    TST_EQ(add_out(j, mk_out("b3", "thumbs_down", 1.0, 3 * MIN_MS), 3 * MIN_MS), RWD_MATCHED);
    TST_EQ(add_out(j, mk_conv_out("conv-B", "escalated", 1.0, 4 * MIN_MS), 4 * MIN_MS),
           RWD_MATCHED);
    TST_EQ(add_out(j, mk_conv_out("conv-B", "csat", 2.0, 9 * MIN_MS), 9 * MIN_MS), RWD_MATCHED);
    /* C: one turn; csat 3 corrected to 4; the first one retried. */
    add_dec(j, "c1", "conv-C", 1, 0, false, 0);
    TST_EQ(add_out(j, with_id(mk_conv_out("conv-C", "csat", 3.0, MIN_MS), "s1", ""), MIN_MS),
           RWD_MATCHED);
    TST_EQ(
        add_out(j, with_id(mk_conv_out("conv-C", "csat", 4.0, 2 * MIN_MS), "s2", "s1"), 2 * MIN_MS),
        RWD_CORRECTED);
    TST_EQ(add_out(j, with_id(mk_conv_out("conv-C", "csat", 3.0, MIN_MS), "s1", ""), 3 * MIN_MS),
           RWD_DUPLICATE);
    /* D: escalated twice and a thumbs up, no conversation. */
    add_dec(j, "d1", "", 0, 0, false, 0);
    TST_EQ(add_out(j, mk_out("d1", "escalated", 1.0, 10), 10), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("d1", "escalated", 1.0, 20), 20), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("d1", "thumbs_up", 1.0, 30), 30), RWD_MATCHED);
    /* E: nothing at all. */
    add_dec(j, "e1", "", 0, 0, false, 0);
    /* F: the thumbs up reaches rlfeed 20 s before the frontend logs the decision. */
    TST_EQ(add_out(j, mk_out("f1", "thumbs_up", 1.0, 1000), 1000), RWD_EARLY);
    add_dec(j, "f1", "", 0, 0, false, 21000);
    /* G: a recontact three days later is late. */
    TST_EQ(expire_into(j, 2 * MIN_MS + DAY_MS, &b), 10);
    const base_outcome g = with_id(mk_out("a3", "recontact_3d", 1.0, 3 * DAY_MS), "g1", "");
    TST_EQ(add_out(j, g, 3 * DAY_MS), RWD_LATE);
    TST_EQ(add_out(j, g, 3 * DAY_MS + 1000), RWD_DUPLICATE); /* the client's retry */
    /* Past late_memory_ms the id is forgotten: with a backward window, held as early. */
    TST_EQ(add_out(j, mk_out("a3", "recontact_3d", 1.0, 6 * DAY_MS), 6 * DAY_MS), RWD_EARLY);

    TST_NEAR(reward_of(&b, "a1"), 0.82, TOL); /* 0.5 + 0.64 * 0.5 */
    TST_NEAR(reward_of(&b, "a2"), 0.4, TOL);  /* 0.8 * 0.5 */
    TST_NEAR(reward_of(&b, "a3"), 0.5, TOL);
    TST_NEAR(reward_of(&b, "b1"), -0.96, TOL); /* 0.64 * (-1 - 0.5) */
    TST_NEAR(reward_of(&b, "b2"), -1.0, TOL);  /* 0.8 * -1.5 = -1.2, clipped */
    TST_NEAR(reward_of(&b, "b3"), -1.0, TOL);  /* -0.5 - 1 - 0.5 = -2, clipped */
    TST_NEAR(reward_of(&b, "c1"), 0.5, TOL);
    TST_NEAR(reward_of(&b, "d1"), -0.5, TOL); /* max(-1, -1) + 0.5 */
    TST_NEAR(reward_of(&b, "e1"), 0.0, TOL);
    TST_NEAR(reward_of(&b, "f1"), 0.5, TOL);
    const base_joined *a1 = find_joined(&b, "a1");
    TST_TRUE(a1 != NULL && a1->credit == BASE_CREDIT_DISCOUNTED);
    TST_NEAR(a1 != NULL ? a1->share : -1.0, 0.64, TOL);
    const base_joined *e1 = find_joined(&b, "e1");
    TST_TRUE(e1 != NULL && e1->defaulted && !e1->unknown);
    batch_free(&b);
    rwd_join_free(j);

    /* min/max pick by the observed value: escalated 1 then 0 was escalated (weight -1). */
    j = mk_join(&s, 8);
    if (j == NULL) {
        return;
    }
    add_dec(j, "h1", "", 0, 0, false, 0);
    TST_EQ(add_out(j, mk_out("h1", "escalated", 1.0, 10), 10), RWD_MATCHED);
    TST_EQ(add_out(j, mk_out("h1", "escalated", 0.0, 20), 20), RWD_MATCHED);
    TST_EQ(expire_into(j, DAY_MS, &b), 1);
    TST_NEAR(reward_of(&b, "h1"), -1.0, TOL); /* max of observed (1, 0) = 1, times -1 */
    batch_free(&b);
    rwd_join_free(j);
}

/* peek: the reward so far of a pending decision, as expire would give it; changes nothing. */
static void test_peek_gives_the_reward_so_far(void)
{
    rwd_spec s;
    rwd_join *j = NULL;
    base_joined *p = NULL, *out[MAX_JOINED];
    bool found = true;
    support_spec(&s);
    TST_OK(rwd_join_new(&s, 8, &j));
    TST_OK(rwd_join_peek(j, "ev-1", &found, &p));
    TST_TRUE(!found && p == NULL);
    add_dec(j, "ev-1", "", 0, 1000, false, 1000);
    TST_OK(rwd_join_peek(j, "ev-1", &found, &p));
    TST_TRUE(found && p != NULL && p->defaulted && p->n_outcomes == 0);
    TST_STREQ(p->decision->event_id, "ev-1");
    TST_EQ(p->joined_ts_ms, 1000 + DAY_MS);
    base_joined_free(p);
    rwd_status st;
    base_outcome o = mk_out("ev-1", "thumbs_up", 1.0, 2000);
    TST_OK(rwd_join_add_outcome(j, &o, 2000, &st));
    TST_EQ(st, RWD_MATCHED);
    p = NULL;
    TST_OK(rwd_join_peek(j, "ev-1", &found, &p));
    TST_TRUE(found && p != NULL && !p->defaulted && p->n_outcomes == 1);
    double peeked = p != NULL ? p->reward : -9.0;
    TST_NEAR(peeked, 0.5, 1e-12); /* thumbs_up weight 0.5; tol 1e-12 */
    base_joined_free(p);
    TST_EQ(rwd_join_expire(j, 1000 + DAY_MS, out, MAX_JOINED), 1);
    TST_TRUE(out[0]->reward == peeked && strcmp(out[0]->spec_version, "") != 0);
    base_joined_free(out[0]);
    p = NULL;
    TST_OK(rwd_join_peek(j, "ev-1", &found, &p));
    TST_TRUE(!found && p == NULL);
    rwd_join_free(j);
}

/*
 * Thousands of pending decisions, conversations, early outcomes and remembered ids: every
 * hash table of the join grows several times (they start at 1024 buckets) while decisions
 * are added, matched, expired and remembered, and each answer stays what a small join gives.
 */
static void test_many_pending_through_growth(void)
{
    enum { N = 6000 };
    rwd_spec s;
    support_spec(&s); /* window and late memory: one day */
    s.backward_window_ms = MIN_MS;
    rwd_join *j = mk_join(&s, 2 * N);
    if (j == NULL) {
        return;
    }
    char id[32], conv[32], oid[32];
    int early = 0, matched = 0, dup = 0, late = 0, late_conv = 0, dup_after = 0;
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "m-%d", i);
        snprintf(oid, sizeof(oid), "e-%d", i);
        if (i % 5 == 0) { /* its outcome first: held, attached when the decision comes */
            early += add_out(j, with_id(mk_out(id, "thumbs_up", 1.0, 1), oid, ""), 1) == RWD_EARLY;
        }
        snprintf(conv, sizeof(conv), "c-%d", i / 3);
        add_dec(j, id, conv, (uint32_t)(i % 3), 2, false, 2);
    }
    TST_EQ(stats_of(j).pending, N);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "m-%d", i);
        snprintf(oid, sizeof(oid), "o-%d", i);
        base_outcome o = with_id(mk_out(id, "resolved", 1.0, 10), oid, "");
        matched += add_out(j, o, 10) == RWD_MATCHED;
        dup += add_out(j, o, 11) == RWD_DUPLICATE;
    }
    TST_EQ(early, N / 5);
    TST_EQ(matched, N);
    TST_EQ(dup, N);
    base_joined *out[256];
    size_t expired = 0, n = 0, with_early = 0;
    while ((n = rwd_join_expire(j, DAY_MS + 2, out, 256)) > 0) {
        for (size_t k = 0; k < n; k++) {
            with_early += out[k]->n_outcomes == 2;
            base_joined_free(out[k]);
        }
        expired += n;
    }
    TST_EQ(expired, N);
    TST_EQ(with_early, N / 5);
    TST_EQ(stats_of(j).pending, 0);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "m-%d", i);
        snprintf(oid, sizeof(oid), "o-%d", i);
        snprintf(conv, sizeof(conv), "c-%d", i / 3);
        late += add_out(j, mk_out(id, "thumbs_down", 1.0, DAY_MS + 5), DAY_MS + 5) == RWD_LATE;
        dup_after += add_out(j, with_id(mk_out(id, "resolved", 1.0, 10), oid, ""), DAY_MS + 6) ==
                     RWD_DUPLICATE;
        if (i % 3 == 0) {
            late_conv +=
                add_out(j, mk_conv_out(conv, "csat", 4.0, DAY_MS + 7), DAY_MS + 7) == RWD_LATE;
        }
    }
    TST_EQ(late, N);
    TST_EQ(dup_after, N);
    TST_EQ(late_conv, N / 3);
    rwd_join_free(j);
}

int main(void)
{
    test_peek_gives_the_reward_so_far();
    test_reuse_before_expire();
    test_new_and_names();
    test_carry_stats();
    test_aggregations();
    test_signals_summed_then_clipped();
    test_default_vs_unknown();
    test_window_boundary();
    test_backward_window();
    test_backward_window_rules();
    test_late();
    test_retry_after_window();
    test_retried_late_outcome();
    test_conversation_retry_after_window();
    test_outcome_memory_cap();
    test_restart_memory();
    test_deferred();
    test_expiry_order();
    test_credit_rules();
    test_conversation_corrections_and_late();
    test_idempotency();
    test_supersedes();
    test_max_outcomes();
    test_rate_cap();
    test_check_changes_nothing();
    test_stats_every_status();
    test_latency_histogram();
    test_spec_version_stamped();
    test_decision_admission();
    test_free_with_state();
    test_docs_examples();
    test_many_pending_through_growth();
    return tst_done();
}
