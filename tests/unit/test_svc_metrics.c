/*
 * The exposition writer (service/metrics.c) and what feeds it
 * (service/observe.c): format rules, escaping, histogram buckets, the OPE
 * window's ESS, and the http_url setting.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "proto/stats.h"
#include "prom.h"
#include "service/config.h"
#include "service/metrics.h"
#include "service/observe.h"
#include "tap.h"

#define NS_PER_S 1000000000ull

static void one_policy(proto_policy_stats *p, const char *name)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->logged = 3;
    p->joined = 10;
    p->join.unknown = 2;
    p->join.status[PROTO_ST_MATCHED] = 7;
    p->join.status[PROTO_ST_REJECTED_RATE] = 1;
    p->slots[BASE_SLOT_ONLINE].decisions = 40;
    p->slots[BASE_SLOT_ONLINE].joined = 4;
    p->slots[BASE_SLOT_ONLINE].mean_reward = -0.25;
    p->slots[BASE_SLOT_PRODUCTION].decisions = 60;
    p->slots[BASE_SLOT_PRODUCTION].model_version = 17;
    p->pending = 5;
}

static void exposition_follows_the_format(void)
{
    proto_policy_stats pols[2];
    one_policy(&pols[0], "faq");
    one_policy(&pols[1], "we\"ird\\name");
    proto_stats st;
    memset(&st, 0, sizeof(st));
    st.n_policies = 2;
    st.policies = pols;
    st.rejected[PROTO_E_BAD_REQUEST] = 9;
    st.storage.redis = PROTO_REDIS_UP;
    st.storage.queue_depth = 2;
    st.storage.queue_capacity = 65536;
    svc_ope_reading ope[2] = {{100, 80.5, 0.125}, {0, 0.0, 0.0}};
    svc_lat lat;
    svc_lat_init(&lat);
    svc_lat_observe(&lat, 0, 10000);      /* 10 us: le=5e-05 */
    svc_lat_observe(&lat, 0, 50000);      /* exactly on a bound: le=5e-05 */
    svc_lat_observe(&lat, 0, 3000000);    /* 3 ms: le=0.005 */
    svc_lat_observe(&lat, 0, 2000000000); /* 2 s: only +Inf */
    svc_lat_observe(&lat, 99, 1);         /* not an op: ignored */
    svc_lat_reading lr;
    svc_lat_read(&lat, &lr);
    TST_EQ(lr.count[0], 4);

    base_buf b;
    base_buf_init(&b, 1u << 20);
    svc_metrics_input in = {&st, ope, &lr};
    TST_OK(svc_metrics_write(&b, &in));
    TST_OK(base_buf_append(&b, "", 1));
    const char *text = (const char *)b.data;
    char why[512] = "";
    bool ok = tst_prom_check(text, "rlfeed_", why, sizeof(why));
    TST_TRUE(ok);
    if (!ok) {
        printf("# %s\n", why);
    }
    double v = 0;
    TST_TRUE(tst_prom_value(text, "rlfeed_decisions_total{policy=\"faq\",slot=\"online\"}", &v));
    TST_EQ(v, 40.0);
    TST_TRUE(tst_prom_value(
        text, "rlfeed_decisions_total{policy=\"we\\\"ird\\\\name\",slot=\"production\"}", &v));
    TST_EQ(v, 60.0);
    TST_TRUE(tst_prom_value(text, "rlfeed_outcomes_total{policy=\"faq\",status=\"matched\"}", &v));
    TST_EQ(v, 7.0);
    TST_TRUE(tst_prom_value(text, "rlfeed_reward_accumulated{policy=\"faq\",slot=\"online\"}", &v));
    TST_NEAR(v, -1.0, 1e-12);
    TST_TRUE(tst_prom_value(text, "rlfeed_model_version{policy=\"faq\",slot=\"production\"}", &v));
    TST_EQ(v, 17.0);
    TST_TRUE(tst_prom_value(text, "rlfeed_rejected_requests_total{code=\"bad_request\"}", &v));
    TST_EQ(v, 9.0);
    TST_TRUE(tst_prom_value(text, "rlfeed_ope_ess{policy=\"faq\"}", &v));
    TST_NEAR(v, 80.5, 1e-12);
    TST_TRUE(tst_prom_value(text, "rlfeed_redis_up", &v));
    TST_EQ(v, 1.0);
    TST_TRUE(tst_prom_value(
        text, "rlfeed_request_duration_seconds_bucket{op=\"decide\",le=\"5e-05\"}", &v));
    TST_EQ(v, 2.0);
    TST_TRUE(tst_prom_value(
        text, "rlfeed_request_duration_seconds_bucket{op=\"decide\",le=\"0.005\"}", &v));
    TST_EQ(v, 3.0);
    TST_TRUE(tst_prom_value(
        text, "rlfeed_request_duration_seconds_bucket{op=\"decide\",le=\"+Inf\"}", &v));
    TST_EQ(v, 4.0);
    TST_TRUE(tst_prom_value(text, "rlfeed_request_duration_seconds_sum{op=\"decide\"}", &v));
    TST_NEAR(v, 2.00306, 1e-9);
    base_buf_fini(&b);
}

static void checker_rejects_broken_expositions(void)
{
    char why[256];
    TST_TRUE(!tst_prom_check("rlfeed_x_total 1\n", "rlfeed_", why, sizeof(why)));
    TST_TRUE(!tst_prom_check("# HELP rlfeed_x x\n# TYPE rlfeed_x counter\nrlfeed_x 1\n", "rlfeed_",
                             why, sizeof(why)));
    TST_TRUE(!tst_prom_check("# HELP rlfeed_h h\n# TYPE rlfeed_h histogram\n"
                             "rlfeed_h_bucket{le=\"1\"} 2\nrlfeed_h_bucket{le=\"+Inf\"} 1\n"
                             "rlfeed_h_sum 1\nrlfeed_h_count 1\n",
                             "rlfeed_", why, sizeof(why)));
    TST_TRUE(!tst_prom_check("# HELP rlfeed_h h\n# TYPE rlfeed_h histogram\n"
                             "rlfeed_h_bucket{le=\"1\"} 1\nrlfeed_h_bucket{le=\"+Inf\"} 2\n"
                             "rlfeed_h_sum 1\nrlfeed_h_count 3\n",
                             "rlfeed_", why, sizeof(why)));
    TST_TRUE(tst_prom_check("# HELP rlfeed_h h\n# TYPE rlfeed_h histogram\n"
                            "rlfeed_h_bucket{le=\"1\"} 1\nrlfeed_h_bucket{le=\"+Inf\"} 2\n"
                            "rlfeed_h_sum 1\nrlfeed_h_count 2\n",
                            "rlfeed_", why, sizeof(why)));
}

static void ope_window_ess_and_expiry(void)
{
    svc_ope_window w;
    svc_ope_init(&w);
    uint64_t t = 1000 * NS_PER_S;
    svc_ope_reading r;
    svc_ope_read(&w, t, &r);
    TST_EQ(r.n, 0);
    TST_EQ(r.ess, 0.0);
    /* Equal weights: ESS = n. */
    for (int i = 0; i < 50; i++) {
        svc_ope_add(&w, t + (uint64_t)i * NS_PER_S / 10, 1.0, 0.5);
    }
    svc_ope_read(&w, t + 5 * NS_PER_S, &r);
    TST_EQ(r.n, 50);
    TST_NEAR(r.ess, 50.0, 1e-12);
    TST_NEAR(r.min_propensity, 0.5, 1e-12);
    /* Weights 2 and 0 on top: sum w = 52, sum w^2 = 54; ESS = 52^2 / 54. */
    svc_ope_add(&w, t + 10 * NS_PER_S, 2.0, 0.05);
    svc_ope_add(&w, t + 10 * NS_PER_S, 0.0, 0.2);
    svc_ope_read(&w, t + 10 * NS_PER_S, &r);
    TST_EQ(r.n, 52);
    TST_NEAR(r.ess, 52.0 * 52.0 / 54.0, 1e-12);
    TST_NEAR(r.min_propensity, 0.05, 1e-12);
    /* 60 s after the first batch's last second only the later ones count. */
    svc_ope_read(&w, t + 65 * NS_PER_S, &r);
    TST_EQ(r.n, 2);
    TST_NEAR(r.ess, 1.0, 1e-12);
    /* A bucket reused a window later starts from zero. */
    svc_ope_add(&w, t + 120 * NS_PER_S, 1.0, 0.9);
    svc_ope_read(&w, t + 120 * NS_PER_S, &r);
    TST_EQ(r.n, 1);
    TST_NEAR(r.min_propensity, 0.9, 1e-12);
    svc_ope_fini(&w);
}

static void http_url_setting(void)
{
    static const char base[] = "[policy p]\ndim = 2\nactions = a, b\nsignal.ok = 1.0\n";
    char text[512], err[256] = "";
    svc_config *c = base_alloc_zero(1, sizeof(*c));
    TST_OK(svc_config_load_string(base, c, err, sizeof(err)));
    TST_STREQ(c->http_url, "http://127.0.0.1:9808");
    TST_OK(svc_config_apply_flag(c, "http-url", "http://127.0.0.1:0", err, sizeof(err)));
    TST_STREQ(c->http_url, "http://127.0.0.1:0");
    TST_OK(svc_config_apply_flag(c, "http-url", "", err, sizeof(err)));
    TST_STREQ(c->http_url, "");
    TST_EQ(svc_config_apply_flag(c, "http-url", "tcp://1.2.3.4:5", err, sizeof(err)), BASE_EINVAL);
    svc_config_fini(c);
    snprintf(text, sizeof(text), "[server]\nhttp_url =\n%s", base);
    TST_OK(svc_config_load_string(text, c, err, sizeof(err)));
    TST_STREQ(c->http_url, "");
    svc_config_fini(c);
    base_free(c);
}

/* Percentiles from histogram counts, interpolated as Prometheus's histogram_quantile(). */
static void latency_quantiles(void)
{
    uint64_t b[SVC_LAT_BUCKETS + 1] = {0};
    TST_TRUE(isnan(svc_lat_quantile(b, 0.5)));
    /* 100 requests in (100 us, 250 us]: the median is half-way, 175 us. */
    b[2] = 100;
    TST_NEAR(svc_lat_quantile(b, 0.5), 175e-6, 1e-12);
    TST_NEAR(svc_lat_quantile(b, 0.9), 235e-6, 1e-12);
    /* 10 more in the first bucket, [0, 50 us]: p5 of 110 is at rank 5.5 of 10 there. */
    b[0] = 10;
    TST_NEAR(svc_lat_quantile(b, 0.05), 27.5e-6, 1e-12);
    /* Past the last finite bound: the largest bound, 1 s. */
    b[SVC_LAT_BUCKETS] = 1000;
    TST_NEAR(svc_lat_quantile(b, 0.99), 1.0, 1e-12);
}

/* The rollup settings: defaults, bounds, the Chart.js path must be absolute. */
static void rollup_settings(void)
{
    svc_config c;
    char err[256];
    TST_OK(svc_config_load_string("[policy p]\ndim = 2\nactions = a\nsignal.ok = 1\n", &c, err,
                                  sizeof(err)));
    TST_EQ(c.rollup_period_ms, 60000);
    TST_EQ(c.rollup_keep, 10080);
    TST_STREQ(c.dashboard_chartjs, SVC_CHARTJS_DEFAULT);
    svc_config_fini(&c);
    TST_OK(svc_config_load_string("[server]\nrollup_period_ms = 1000\nrollup_keep = 5\n"
                                  "dashboard_chartjs = /opt/chart.js\n"
                                  "[policy p]\ndim = 2\nactions = a\nsignal.ok = 1\n",
                                  &c, err, sizeof(err)));
    TST_EQ(c.rollup_period_ms, 1000);
    TST_EQ(c.rollup_keep, 5);
    TST_STREQ(c.dashboard_chartjs, "/opt/chart.js");
    svc_config_fini(&c);
    static const char *const bad[] = {"rollup_period_ms = 99", "rollup_keep = 0",
                                      "rollup_keep = 100801", "dashboard_chartjs = chart.js"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text),
                 "[server]\n%s\n[policy p]\ndim = 2\nactions = a\n"
                 "signal.ok = 1\n",
                 bad[i]);
        TST_TRUE(svc_config_load_string(text, &c, err, sizeof(err)) == BASE_EINVAL);
    }
}

int main(void)
{
    latency_quantiles();
    rollup_settings();
    exposition_follows_the_format();
    checker_rejects_broken_expositions();
    ope_window_ess_and_expiry();
    http_url_setting();
    return tst_done();
}
