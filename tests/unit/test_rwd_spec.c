/*
 * Unit tests for reward/spec: signal transforms with exact values, value
 * rejection, validation reasons, the spec version and the name tables.
 * Every transform below is exact in binary floating point, so the numeric
 * checks use a relative tolerance of 1e-12 only to stay robust to the
 * evaluation order of the linear map.
 */

#include <math.h>
#include <string.h>

#include "reward/spec.h"
#include "tap.h"

#define TOL 1e-12

/* A spec with one signal of @kind named "s", other fields at their defaults. */
static void one_signal(rwd_spec *s, rwd_kind kind)
{
    rwd_spec_default(s);
    s->n_signals = 1;
    rwd_signal_default(&s->signal[0], "s", kind);
}

/* The contribution of @v for signal 0, or NAN if it is rejected. */
static double contrib(const rwd_spec *s, double v)
{
    double out = -12345.0;
    if (rwd_spec_contribution(s, 0, v, &out) != BASE_OK) {
        return NAN;
    }
    return out;
}

/* The csat signal of the issue: number 1..5 mapped onto -1..+1. */
static void csat_spec(rwd_spec *s, double weight)
{
    one_signal(s, RWD_NUMBER);
    s->signal[0].min = 1.0;
    s->signal[0].max = 5.0;
    s->signal[0].map_min = -1.0;
    s->signal[0].map_max = 1.0;
    s->signal[0].weight = weight;
}

static void test_defaults(void)
{
    rwd_spec s;
    rwd_spec_default(&s);
    TST_EQ(s.n_signals, 0);
    TST_NEAR(s.clip_min, -1.0, TOL);
    TST_NEAR(s.clip_max, 1.0, TOL);
    TST_NEAR(s.default_reward, 0.0, TOL);
    TST_TRUE(!s.unknown_when_empty);
    TST_EQ(s.window_ms, 600000);
    TST_EQ(s.backward_window_ms, 0);
    TST_EQ(s.late_memory_ms, -1);
    TST_EQ(s.credit, BASE_CREDIT_LAST);
    TST_NEAR(s.credit_gamma, 0.9, TOL);
    TST_EQ(s.max_outcomes, 16);
    TST_NEAR(s.user_rate_per_s, 0.0, TOL);
    TST_NEAR(s.user_burst, 10.0, TOL);
    TST_STREQ(s.version, "");
    char why[128] = "";
    TST_OK(rwd_spec_validate(&s, why, sizeof(why)));

    rwd_signal g;
    rwd_signal_default(&g, "thumbs_up", RWD_EVENT);
    TST_STREQ(g.name, "thumbs_up");
    TST_EQ(g.kind, RWD_EVENT);
    TST_NEAR(g.weight, 1.0, TOL);
    TST_EQ(g.agg, RWD_AGG_SUM);
    TST_NEAR(g.min, 0.0, TOL);
    TST_NEAR(g.max, 1.0, TOL);
    TST_NEAR(g.map_min, 0.0, TOL);
    TST_NEAR(g.map_max, 1.0, TOL);
}

static void test_event_transform(void)
{
    rwd_spec s;
    one_signal(&s, RWD_EVENT);
    s.signal[0].weight = 0.5;
    TST_NEAR(contrib(&s, 1.0), 0.5, TOL);
    s.signal[0].weight = -0.5;
    TST_NEAR(contrib(&s, 1.0), -0.5, TOL);
    /* An event is 1 or nothing. */
    TST_TRUE(isnan(contrib(&s, 0.5)));
    TST_TRUE(isnan(contrib(&s, 0.0)));
    TST_TRUE(isnan(contrib(&s, 2.0)));
    TST_TRUE(isnan(contrib(&s, -1.0)));
}

static void test_flag_transform(void)
{
    rwd_spec s;
    one_signal(&s, RWD_FLAG);
    s.signal[0].weight = -1.0;
    TST_NEAR(contrib(&s, 1.0), -1.0, TOL);
    TST_NEAR(contrib(&s, 0.0), 0.0, TOL);
    s.signal[0].weight = 0.75;
    TST_NEAR(contrib(&s, 1.0), 0.75, TOL);
    TST_TRUE(isnan(contrib(&s, 2.0)));
    TST_TRUE(isnan(contrib(&s, 0.5)));
    TST_TRUE(isnan(contrib(&s, -1.0)));
}

static void test_number_transform(void)
{
    rwd_spec s;
    csat_spec(&s, 1.0);
    TST_NEAR(contrib(&s, 1.0), -1.0, TOL);
    TST_NEAR(contrib(&s, 2.0), -0.5, TOL);
    TST_NEAR(contrib(&s, 3.0), 0.0, TOL);
    TST_NEAR(contrib(&s, 4.0), 0.5, TOL);
    TST_NEAR(contrib(&s, 5.0), 1.0, TOL);
    TST_NEAR(contrib(&s, 4.5), 0.75, TOL); /* a number need not be an integer */

    csat_spec(&s, 2.0); /* weight 2 doubles every contribution */
    TST_NEAR(contrib(&s, 1.0), -2.0, TOL);
    TST_NEAR(contrib(&s, 3.0), 0.0, TOL);
    TST_NEAR(contrib(&s, 4.0), 1.0, TOL);
    TST_NEAR(contrib(&s, 5.0), 2.0, TOL);

    /* Out of range, at both ends, and not finite. */
    TST_TRUE(isnan(contrib(&s, 0.999)));
    TST_TRUE(isnan(contrib(&s, 0.0)));
    TST_TRUE(isnan(contrib(&s, 5.001)));
    TST_TRUE(isnan(contrib(&s, 6.0)));
    TST_TRUE(isnan(contrib(&s, NAN)));
    TST_TRUE(isnan(contrib(&s, INFINITY)));
    TST_TRUE(isnan(contrib(&s, -INFINITY)));

    /* A decreasing map: 0..10 onto 1..-1 (e.g. a wait time). */
    one_signal(&s, RWD_NUMBER);
    s.signal[0].min = 0.0;
    s.signal[0].max = 10.0;
    s.signal[0].map_min = 1.0;
    s.signal[0].map_max = -1.0;
    TST_NEAR(contrib(&s, 0.0), 1.0, TOL);
    TST_NEAR(contrib(&s, 2.5), 0.5, TOL);
    TST_NEAR(contrib(&s, 10.0), -1.0, TOL);

    /* The default map is the identity on [min, max] when set that way. */
    one_signal(&s, RWD_NUMBER);
    TST_NEAR(contrib(&s, 0.25), 0.25, TOL);
}

static void test_contribution_rejects(void)
{
    rwd_spec s;
    one_signal(&s, RWD_EVENT);
    double out = 7.0;
    /* Not finite, for every kind, and an unknown index. */
    TST_EQ(rwd_spec_contribution(&s, 0, NAN, &out), BASE_EINVAL);
    TST_EQ(rwd_spec_contribution(&s, 0, INFINITY, &out), BASE_EINVAL);
    TST_EQ(rwd_spec_contribution(&s, 1, 1.0, &out), BASE_EINVAL);
    one_signal(&s, RWD_FLAG);
    TST_EQ(rwd_spec_contribution(&s, 0, NAN, &out), BASE_EINVAL);
    TST_EQ(rwd_spec_contribution(&s, 0, 2.0, &out), BASE_EINVAL);
    one_signal(&s, RWD_EVENT);
    TST_EQ(rwd_spec_contribution(&s, 0, 0.5, &out), BASE_EINVAL);
    /* Out-parameters are written only on success. */
    TST_NEAR(out, 7.0, TOL);

    /* A finite value whose image overflows is rejected, not passed on as inf. */
    one_signal(&s, RWD_NUMBER);
    s.signal[0].weight = 1e308;
    s.signal[0].map_max = 1e308;
    TST_EQ(rwd_spec_contribution(&s, 0, 1.0, &out), BASE_EINVAL);
}

/* validate() must fail and name @field in its reason. */
static void expect_invalid(const rwd_spec *s, const char *field)
{
    char why[160] = "";
    base_err e = rwd_spec_validate(s, why, sizeof(why));
    TST_EQ(e, BASE_EINVAL);
    TST_TRUE(strstr(why, field) != NULL);
    if (strstr(why, field) == NULL) {
        printf("#   reason \"%s\" does not name \"%s\"\n", why, field);
    }
}

/* A valid spec with two signals to break one field at a time. */
static void good_spec(rwd_spec *s)
{
    rwd_spec_default(s);
    s->n_signals = 2;
    rwd_signal_default(&s->signal[0], "thumbs_up", RWD_EVENT);
    rwd_signal_default(&s->signal[1], "csat", RWD_NUMBER);
    s->signal[1].min = 1.0;
    s->signal[1].max = 5.0;
    s->signal[1].map_min = -1.0;
    s->signal[1].map_max = 1.0;
}

static void test_validate(void)
{
    rwd_spec s;
    char why[160] = "";
    good_spec(&s);
    TST_OK(rwd_spec_validate(&s, why, sizeof(why)));

    good_spec(&s);
    s.n_signals = RWD_MAX_SIGNALS + 1;
    expect_invalid(&s, "signals");

    good_spec(&s);
    s.signal[1].name[0] = '\0';
    expect_invalid(&s, "name");

    good_spec(&s);
    memset(s.signal[1].name, 'x', sizeof(s.signal[1].name)); /* not terminated */
    expect_invalid(&s, "name");

    good_spec(&s);
    (void)base_strlcpy(s.signal[1].name, "thumbs_up", sizeof(s.signal[1].name));
    expect_invalid(&s, "thumbs_up");

    good_spec(&s);
    s.signal[0].kind = (rwd_kind)7;
    expect_invalid(&s, "kind");

    good_spec(&s);
    s.signal[0].agg = (rwd_agg)9;
    expect_invalid(&s, "aggregate");

    good_spec(&s);
    s.signal[0].weight = NAN;
    expect_invalid(&s, "weight");

    good_spec(&s);
    s.signal[1].weight = INFINITY;
    expect_invalid(&s, "weight");

    good_spec(&s);
    s.signal[1].min = 5.0; /* min == max */
    expect_invalid(&s, "min < max");

    good_spec(&s);
    s.signal[1].min = 6.0;
    expect_invalid(&s, "csat");

    good_spec(&s);
    s.signal[1].max = NAN;
    expect_invalid(&s, "max");

    good_spec(&s);
    s.signal[1].map_min = -INFINITY;
    expect_invalid(&s, "map_min");

    good_spec(&s);
    s.signal[1].map_max = NAN;
    expect_invalid(&s, "map_max");

    /* An event's range is unused, so a degenerate one is fine. */
    good_spec(&s);
    s.signal[0].min = 1.0;
    s.signal[0].max = 1.0;
    TST_OK(rwd_spec_validate(&s, why, sizeof(why)));

    good_spec(&s);
    s.clip_min = 0.5;
    s.clip_max = 0.25;
    expect_invalid(&s, "clip_min");

    good_spec(&s);
    s.clip_max = NAN;
    expect_invalid(&s, "clip_max");

    good_spec(&s);
    s.clip_min = 0.5; /* clip_min == clip_max is allowed */
    s.clip_max = 0.5;
    TST_OK(rwd_spec_validate(&s, why, sizeof(why)));

    good_spec(&s);
    s.default_reward = INFINITY;
    expect_invalid(&s, "default_reward");

    good_spec(&s);
    s.window_ms = 0;
    expect_invalid(&s, "window_ms");

    good_spec(&s);
    s.window_ms = -5;
    expect_invalid(&s, "window_ms");

    good_spec(&s);
    s.backward_window_ms = -1;
    expect_invalid(&s, "backward_window_ms");

    good_spec(&s);
    s.late_memory_ms = -2;
    expect_invalid(&s, "late_memory_ms");

    good_spec(&s);
    s.late_memory_ms = 0;
    TST_OK(rwd_spec_validate(&s, why, sizeof(why)));

    good_spec(&s);
    s.credit = BASE_CREDIT_NONE;
    expect_invalid(&s, "credit");

    good_spec(&s);
    s.credit = 4;
    expect_invalid(&s, "credit");

    good_spec(&s);
    s.credit_gamma = 0.0;
    expect_invalid(&s, "credit_gamma");

    good_spec(&s);
    s.credit_gamma = 1.5;
    expect_invalid(&s, "credit_gamma");

    good_spec(&s);
    s.credit_gamma = NAN;
    expect_invalid(&s, "credit_gamma");

    good_spec(&s);
    s.credit_gamma = 1.0; /* gamma 1 is allowed: every turn gets the full outcome */
    TST_OK(rwd_spec_validate(&s, why, sizeof(why)));

    good_spec(&s);
    s.max_outcomes = 0;
    expect_invalid(&s, "max_outcomes");

    good_spec(&s);
    s.max_outcomes = RWD_MAX_OUTCOMES + 1;
    expect_invalid(&s, "max_outcomes");

    good_spec(&s);
    s.max_outcomes = RWD_MAX_OUTCOMES;
    TST_OK(rwd_spec_validate(&s, why, sizeof(why)));

    good_spec(&s);
    s.user_rate_per_s = -1.0;
    expect_invalid(&s, "user_rate_per_s");

    good_spec(&s);
    s.user_rate_per_s = NAN;
    expect_invalid(&s, "user_rate_per_s");

    good_spec(&s);
    s.user_burst = 0.5;
    expect_invalid(&s, "user_burst");

    good_spec(&s);
    memset(s.version, 'v', sizeof(s.version));
    expect_invalid(&s, "version");
}

static void version_of(const rwd_spec *s, char *out)
{
    rwd_spec_version(s, out, BASE_NAME_MAX + 1);
}

static void test_version(void)
{
    rwd_spec a, b;
    char va[BASE_NAME_MAX + 1], vb[BASE_NAME_MAX + 1];

    /* An explicit version wins. */
    good_spec(&a);
    (void)base_strlcpy(a.version, "support-v7", sizeof(a.version));
    version_of(&a, va);
    TST_STREQ(va, "support-v7");

    /* The hash: "h" and 16 hex digits, the same for the same spec built twice. */
    good_spec(&a);
    good_spec(&b);
    version_of(&a, va);
    version_of(&b, vb);
    TST_EQ(strlen(va), 17);
    TST_TRUE(va[0] == 'h' && strspn(va + 1, "0123456789abcdef") == 16);
    TST_STREQ(va, vb);
    version_of(&a, vb); /* stable across calls */
    TST_STREQ(va, vb);

    /* Garbage past the terminator of a name does not reach the hash. */
    good_spec(&b);
    b.signal[0].name[sizeof(b.signal[0].name) - 1] = '\0';
    b.signal[0].name[30] = 'q';
    version_of(&b, vb);
    TST_STREQ(va, vb);

    /* Any change to a reward-defining field changes it. */
    char base_v[BASE_NAME_MAX + 1];
    (void)base_strlcpy(base_v, va, sizeof(base_v));
    int n_changed = 0, n_tried = 0;
#define CHANGES(stmt)                                                                              \
    do {                                                                                           \
        good_spec(&b);                                                                             \
        stmt;                                                                                      \
        version_of(&b, vb);                                                                        \
        n_tried++;                                                                                 \
        n_changed += strcmp(vb, base_v) != 0;                                                      \
        TST_TRUE(strcmp(vb, base_v) != 0);                                                         \
    } while (0)
    CHANGES(b.signal[0].weight = 0.5);
    CHANGES(b.signal[1].weight = 1.0000000001);
    CHANGES(b.signal[1].min = 0.0);
    CHANGES(b.signal[1].max = 10.0);
    CHANGES(b.signal[1].map_min = -2.0);
    CHANGES(b.signal[1].map_max = 2.0);
    CHANGES(b.signal[1].agg = RWD_AGG_LAST);
    CHANGES(b.signal[0].kind = RWD_FLAG);
    CHANGES((void)base_strlcpy(b.signal[0].name, "thumbs", sizeof(b.signal[0].name)));
    CHANGES(b.n_signals = 1);
    CHANGES(b.window_ms = 86400000);
    CHANGES(b.window_ms += 1);
    CHANGES(b.backward_window_ms = 60000);
    CHANGES(b.clip_min = -0.5);
    CHANGES(b.clip_max = 2.0);
    CHANGES(b.default_reward = -0.1);
    CHANGES(b.unknown_when_empty = true);
    CHANGES(b.credit = BASE_CREDIT_DISCOUNTED);
    CHANGES(b.credit_gamma = 0.8);
#undef CHANGES
    TST_EQ(n_changed, n_tried);

    /* And changing it back restores it. */
    good_spec(&b);
    b.window_ms = 5;
    b.window_ms = a.window_ms;
    version_of(&b, vb);
    TST_STREQ(vb, base_v);

    /* A short output buffer is truncated, still terminated. */
    char small[5];
    rwd_spec_version(&a, small, sizeof(small));
    TST_EQ(strlen(small), 4);
    TST_TRUE(strncmp(small, base_v, 4) == 0);
}

static void test_find(void)
{
    rwd_spec s;
    good_spec(&s);
    uint32_t i = 99;
    bool found = false;
    rwd_spec_find(&s, "csat", &i, &found);
    TST_TRUE(found);
    TST_EQ(i, 1);
    rwd_spec_find(&s, "thumbs_up", &i, &found);
    TST_TRUE(found);
    TST_EQ(i, 0);
    i = 99;
    rwd_spec_find(&s, "thumbs", &i, &found);
    TST_TRUE(!found);
    TST_EQ(i, 99); /* written only when found */
    rwd_spec_find(&s, "", &i, &found);
    TST_TRUE(!found);
}

static void test_names(void)
{
    for (int k = RWD_EVENT; k <= RWD_FLAG; k++) {
        rwd_kind back = (rwd_kind)99;
        TST_TRUE(rwd_kind_from_name(rwd_kind_name((rwd_kind)k), &back));
        TST_EQ(back, k);
    }
    TST_STREQ(rwd_kind_name(RWD_EVENT), "event");
    TST_STREQ(rwd_kind_name(RWD_NUMBER), "number");
    TST_STREQ(rwd_kind_name(RWD_FLAG), "flag");
    TST_STREQ(rwd_kind_name((rwd_kind)3), "unknown");

    for (int a = RWD_AGG_SUM; a <= RWD_AGG_MEAN; a++) {
        rwd_agg back = (rwd_agg)99;
        TST_TRUE(rwd_agg_from_name(rwd_agg_name((rwd_agg)a), &back));
        TST_EQ(back, a);
    }
    TST_STREQ(rwd_agg_name(RWD_AGG_SUM), "sum");
    TST_STREQ(rwd_agg_name(RWD_AGG_FIRST), "first");
    TST_STREQ(rwd_agg_name(RWD_AGG_LAST), "last");
    TST_STREQ(rwd_agg_name(RWD_AGG_MIN), "min");
    TST_STREQ(rwd_agg_name(RWD_AGG_MAX), "max");
    TST_STREQ(rwd_agg_name(RWD_AGG_MEAN), "mean");
    TST_STREQ(rwd_agg_name((rwd_agg)6), "unknown");

    for (uint32_t c = BASE_CREDIT_LAST; c <= BASE_CREDIT_DISCOUNTED; c++) {
        uint32_t back = 99;
        TST_TRUE(rwd_credit_from_name(rwd_credit_name(c), &back));
        TST_EQ(back, c);
    }
    TST_STREQ(rwd_credit_name(BASE_CREDIT_NONE), "none");
    TST_STREQ(rwd_credit_name(BASE_CREDIT_LAST), "last");
    TST_STREQ(rwd_credit_name(BASE_CREDIT_UNIFORM), "uniform");
    TST_STREQ(rwd_credit_name(BASE_CREDIT_DISCOUNTED), "discounted");
    TST_STREQ(rwd_credit_name(9), "unknown");

    /* Unknown names, and "none" (not a configurable rule), are refused untouched. */
    rwd_kind k = RWD_FLAG;
    rwd_agg a = RWD_AGG_MAX;
    uint32_t c = BASE_CREDIT_UNIFORM;
    TST_TRUE(!rwd_kind_from_name("Event", &k));
    TST_TRUE(!rwd_kind_from_name("", &k));
    TST_TRUE(!rwd_agg_from_name("average", &a));
    TST_TRUE(!rwd_credit_from_name("none", &c));
    TST_TRUE(!rwd_credit_from_name("discount", &c));
    TST_EQ(k, RWD_FLAG);
    TST_EQ(a, RWD_AGG_MAX);
    TST_EQ(c, BASE_CREDIT_UNIFORM);
}

int main(void)
{
    test_defaults();
    test_event_transform();
    test_flag_transform();
    test_number_transform();
    test_contribution_rejects();
    test_validate();
    test_version();
    test_find();
    test_names();
    return tst_done();
}
