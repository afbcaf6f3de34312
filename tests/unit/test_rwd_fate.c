/*
 * Unit tests for reward/fate: what became of the outcomes addressed to a
 * decision. One scenario runs through a real join (reward/join.h) and the
 * outcomes it logs (matched, corrected, early, late) are then classified
 * from their records alone by rwd_outcome_fates(): both must tell the same
 * story, as explain tells it for a pending and then a joined decision.
 * Times are plain int64 ms; nothing sleeps. Values are small binary
 * fractions or integers, compared exactly.
 */

#include <string.h>

#include "reward/fate.h"
#include "reward/join.h"
#include "tap.h"

#define T 100000LL
#define WINDOW 60000LL
#define BACKWARD 10000LL
#define MAX_LOGGED 8

static void add_signal(rwd_spec *s, const char *name, rwd_kind kind)
{
    rwd_signal *g = &s->signal[s->n_signals++];
    rwd_signal_default(g, name, kind);
    if (kind == RWD_NUMBER) {
        g->min = 1.0;
        g->max = 5.0;
    }
}

static void spec(rwd_spec *s)
{
    rwd_spec_default(s);
    s->window_ms = WINDOW;
    s->backward_window_ms = BACKWARD;
    add_signal(s, "thumbs_up", RWD_EVENT);
    add_signal(s, "csat", RWD_NUMBER);
    add_signal(s, "resolved", RWD_FLAG);
}

static base_outcome out(const char *ev, const char *signal, double value, int64_t at,
                        const char *id, const char *supersedes)
{
    base_outcome o;
    memset(&o, 0, sizeof(o));
    (void)base_strlcpy(o.policy, "p", sizeof(o.policy));
    (void)base_strlcpy(o.event_id, ev, sizeof(o.event_id));
    (void)base_strlcpy(o.signal, signal, sizeof(o.signal));
    (void)base_strlcpy(o.outcome_id, id, sizeof(o.outcome_id));
    (void)base_strlcpy(o.supersedes, supersedes, sizeof(o.supersedes));
    o.type = BASE_OUT_SIGNAL;
    o.value = value;
    o.ts_ms = at - 5; /* the client's time, a little before arrival */
    o.arrived_ms = at;
    return o;
}

/* The log of one run: the outcomes the join would have logged, in order. */
typedef struct logged {
    base_outcome o[MAX_LOGGED];
    uint32_t n;
} logged;

/* Apply @o at its arrival; log it as the service does (service/outcome.c). */
static rwd_status apply(rwd_join *j, logged *lg, base_outcome o)
{
    rwd_status st = RWD_STATUS_COUNT;
    TST_OK(rwd_join_add_outcome(j, &o, o.arrived_ms, &st));
    if ((st == RWD_MATCHED || st == RWD_CORRECTED || st == RWD_EARLY || st == RWD_LATE ||
         st == RWD_LATE_CORRECTION) &&
        lg->n < MAX_LOGGED) {
        lg->o[lg->n++] = o;
    }
    return st;
}

static void fates_of(const base_decision *d, int64_t closed_at, const logged *lg, rwd_fate *out)
{
    const base_outcome *p[MAX_LOGGED];
    rwd_spec s;
    spec(&s);
    for (uint32_t i = 0; i < lg->n; i++) {
        p[i] = &lg->o[i];
    }
    rwd_outcome_fates(&s, d, closed_at, p, lg->n, out);
}

static void test_names(void)
{
    TST_STREQ(rwd_fate_name(RWD_FATE_APPLIED), "applied");
    TST_STREQ(rwd_fate_name(RWD_FATE_SUPERSEDED), "superseded");
    TST_STREQ(rwd_fate_name(RWD_FATE_LATE), "late");
    TST_STREQ(rwd_fate_name(RWD_FATE_NOT_JOINED), "not_joined");
    TST_STREQ(rwd_fate_name(RWD_FATE_COUNT), "unknown");
}

/*
 * Early (held, then attached), too early (dangling: not joined), a
 * correction, a flag, a retry (duplicate: not logged, not listed), then
 * late ones: the join's own list while pending and the fates from the
 * records agree; one arriving once the decision is forgotten is not joined
 * (the join holds it for a next decision with the same event id).
 */
static void test_join_and_records_agree(void)
{
    rwd_spec s;
    rwd_join *j = NULL;
    logged lg = {.n = 0};
    rwd_outcome_view v[8];
    rwd_fate f[MAX_LOGGED];
    uint32_t n = 0, total = 0;
    bool found = false;
    spec(&s);
    TST_OK(rwd_join_new(&s, 8, &j));
    if (j == NULL) {
        return;
    }
    TST_EQ(apply(j, &lg, out("ev", "thumbs_up", 1.0, T - 15000, "x", "")), RWD_EARLY);
    TST_EQ(apply(j, &lg, out("ev", "thumbs_up", 1.0, T - 5000, "a", "")), RWD_EARLY);
    base_decision *d = base_decision_new(2, 1);
    TST_TRUE(d != NULL);
    if (d == NULL) {
        rwd_join_free(j);
        return;
    }
    (void)base_strlcpy(d->event_id, "ev", sizeof(d->event_id));
    d->ts_ms = T;
    d->pmf[0] = 1.0f;
    base_decision *keep = base_decision_clone(d);
    TST_OK(rwd_join_add_decision(j, d, T));
    TST_EQ(apply(j, &lg, out("ev", "csat", 4.0, T + 10000, "c1", "")), RWD_MATCHED);
    TST_EQ(apply(j, &lg, out("ev", "csat", 5.0, T + 20000, "c2", "c1")), RWD_CORRECTED);
    TST_EQ(apply(j, &lg, out("ev", "resolved", 1.0, T + 30000, "", "")), RWD_MATCHED);
    TST_EQ(apply(j, &lg, out("ev", "thumbs_up", 1.0, T + 40000, "a", "")), RWD_DUPLICATE);

    rwd_join_peek_outcomes(j, "nope", v, 8, &n, &total, &found);
    TST_TRUE(!found);
    rwd_join_peek_outcomes(j, "ev", v, 8, &n, &total, &found);
    TST_TRUE(found);
    TST_EQ(n, 4);
    TST_EQ(total, 4);
    if (n == 4) {
        TST_STREQ(v[0].signal, "thumbs_up");
        TST_STREQ(v[0].outcome_id, "a");
        TST_TRUE(v[0].value == 1.0 && v[0].ts_ms == T - 5005);
        TST_EQ(v[0].fate, RWD_FATE_APPLIED);
        TST_STREQ(v[1].signal, "csat");
        TST_TRUE(v[1].value == 4.0);
        TST_EQ(v[1].fate, RWD_FATE_SUPERSEDED);
        TST_STREQ(v[2].outcome_id, "c2");
        TST_TRUE(v[2].value == 5.0);
        TST_EQ(v[2].fate, RWD_FATE_APPLIED);
        TST_STREQ(v[3].signal, "resolved");
        TST_STREQ(v[3].outcome_id, "");
        TST_EQ(v[3].fate, RWD_FATE_APPLIED);
    }
    rwd_join_peek_outcomes(j, "ev", v, 2, &n, &total, &found);
    TST_TRUE(found && n == 2 && total == 4);

    /* The records alone: the one held too long was never joined, the rest as the join says. */
    TST_EQ(lg.n, 5);
    fates_of(keep, T + WINDOW, &lg, f);
    TST_EQ(f[0], RWD_FATE_NOT_JOINED);
    TST_EQ(f[1], RWD_FATE_APPLIED);
    TST_EQ(f[2], RWD_FATE_SUPERSEDED);
    TST_EQ(f[3], RWD_FATE_APPLIED);
    TST_EQ(f[4], RWD_FATE_APPLIED);

    /* Joined; an outcome after the window is late, and so is one at its very end. */
    base_joined *jo[2];
    TST_EQ(rwd_join_expire(j, T + WINDOW, jo, 2), 1);
    if (jo[0] != NULL) {
        TST_EQ(jo[0]->n_outcomes, 3);
        TST_EQ(jo[0]->joined_ts_ms, T + WINDOW);
        base_joined_free(jo[0]);
    }
    TST_EQ(apply(j, &lg, out("ev", "thumbs_up", 1.0, T + WINDOW, "b", "")), RWD_LATE);
    TST_EQ(apply(j, &lg, out("ev", "csat", 1.0, T + WINDOW + 1, "c3", "c2")), RWD_LATE_CORRECTION);
    /*
     * Forgotten (late memory = the window): held as early, for a decision yet
     * to come with this event id; logged, but never this decision's.
     */
    TST_EQ(apply(j, &lg, out("ev", "thumbs_up", 1.0, T + 2 * WINDOW, "", "")), RWD_EARLY);
    TST_EQ(lg.n, 8);
    fates_of(keep, T + WINDOW, &lg, f);
    TST_EQ(f[3], RWD_FATE_APPLIED); /* a late correction changes nothing */
    TST_EQ(f[5], RWD_FATE_LATE);
    TST_EQ(f[6], RWD_FATE_LATE);
    TST_EQ(f[7], RWD_FATE_NOT_JOINED);
    base_decision_free(keep);
    rwd_join_free(j);
}

/* Conversation-level outcomes count in the reward but are not listed. */
static void test_conversation_outcomes_not_listed(void)
{
    rwd_spec s;
    rwd_join *j = NULL;
    logged lg = {.n = 0};
    rwd_outcome_view v[4];
    uint32_t n = 9, total = 9;
    bool found = false;
    base_joined *p = NULL;
    spec(&s);
    TST_OK(rwd_join_new(&s, 8, &j));
    base_decision *d = j != NULL ? base_decision_new(2, 1) : NULL;
    if (d == NULL) {
        rwd_join_free(j);
        TST_TRUE(0 && "fixture");
        return;
    }
    (void)base_strlcpy(d->event_id, "ev", sizeof(d->event_id));
    (void)base_strlcpy(d->conversation_id, "cv", sizeof(d->conversation_id));
    d->ts_ms = T;
    d->pmf[0] = 1.0f;
    TST_OK(rwd_join_add_decision(j, d, T));
    base_outcome o = out("", "resolved", 1.0, T + 1000, "r", "");
    (void)base_strlcpy(o.conversation_id, "cv", sizeof(o.conversation_id));
    TST_EQ(apply(j, &lg, o), RWD_MATCHED);
    TST_EQ(apply(j, &lg, out("ev", "thumbs_up", 1.0, T + 2000, "", "")), RWD_MATCHED);
    rwd_join_peek_outcomes(j, "ev", v, 4, &n, &total, &found);
    TST_TRUE(found && n == 1 && total == 1);
    TST_STREQ(v[0].signal, "thumbs_up");
    TST_OK(rwd_join_peek(j, "ev", &found, &p));
    TST_TRUE(p != NULL && p->n_outcomes == 2);
    base_joined_free(p);
    rwd_join_free(j);
}

int main(void)
{
    test_names();
    test_join_and_records_agree();
    test_conversation_outcomes_not_listed();
    return tst_done();
}
