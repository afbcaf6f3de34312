/*
 * The HTTP endpoint end to end: rlfeedd (fixture, HTTP on a free port)
 * serves a few hundred decide + feedback interactions, then /healthz,
 * /readyz and /metrics are read over HTTP; the exposition must follow the
 * format (tests/helpers/prom.h), agree with the stats op, pass
 * `promtool check metrics`, and be scraped by a real Prometheus (when
 * installed), whose query API must return rlfeed series.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "daemon.h"
#include "http.h"
#include "proc.h"
#include "prom.h"
#include "proto/json.h"
#include "proto/stats.h"
#include "tap.h"

#define N_INTERACTIONS 300
#define DIM 4

/* Production serves with a 30% canary, so the OPE weights are not all 1. */
static const char CONFIG[] = "[server]\n"
                             "tick_ms = 5\n"
                             "[policy faq]\n"
                             "dim = 4\n"
                             "actions = a, b, c\n"
                             "signal.resolved = 1.0\n"
                             "window_ms = 100\n"
                             "serve = production\n"
                             "canary = 0.3\n";

static bool drive(tst_daemon *f, uint64_t *out_fed)
{
    static const char *const ids[] = {"a", "b", "c"};
    static rlfeed_reply r; /* 4.5 KiB: off the stack */
    uint64_t fed = 0;
    for (uint32_t i = 0; i < N_INTERACTIONS; i++) {
        float x[DIM] = {(float)(i % 7) / 7.0f, (float)(i % 3) / 3.0f, 1.0f, -0.5f};
        float logits[3] = {0.1f * (float)(i % 5), 0.0f, -0.2f};
        if (rlfeed_client_decide(f->c, "faq", NULL, x, DIM, 3, ids, logits, &r) != BASE_OK ||
            !r.ok) {
            printf("# decide %u failed\n", i);
            return false;
        }
        if (i % 3 != 0) {
            char ev[sizeof(r.event_id)];
            memcpy(ev, r.event_id, sizeof(ev));
            if (rlfeed_client_feedback(f->c, "faq", ev, "resolved", 1.0, NULL, &r) != BASE_OK ||
                !r.ok) {
                printf("# feedback %u failed\n", i);
                return false;
            }
            fed++;
        }
    }
    *out_fed = fed;
    return true;
}

static bool get_stats(tst_daemon *f, proto_stats *out)
{
    uint8_t *rep = NULL;
    size_t len = 0;
    bool ok = rlfeed_client_stats(f->c, NULL, &rep, &len) == BASE_OK &&
              proto_stats_decode(rep, len, out) == BASE_OK;
    base_free(rep);
    return ok;
}

/* Every decision joined: nothing pending any more (windows of 100 ms). */
static bool wait_joined(tst_daemon *f, int timeout_ms)
{
    int64_t deadline = tst_now_ms() + timeout_ms;
    while (tst_now_ms() < deadline) {
        proto_stats st;
        if (get_stats(f, &st)) {
            bool done = st.n_policies == 1 && st.policies[0].pending == 0 &&
                        st.policies[0].joined == N_INTERACTIONS;
            proto_stats_fini(&st);
            if (done) {
                return true;
            }
        }
        tst_nap();
    }
    return false;
}

/*
 * storage.written counts records only (operations.md): every decision, outcome and joined
 * example, not the checkpoints (snapshots) the writer also stores. Waits for the last ones.
 */
static bool written_is_records(tst_daemon *f, uint64_t want, uint64_t *out_seen)
{
    int64_t deadline = tst_now_ms() + 10000;
    *out_seen = 0;
    while (tst_now_ms() < deadline) {
        proto_stats st;
        if (get_stats(f, &st)) {
            bool done =
                st.storage.queue_depth == 0 && st.n_policies == 1 && st.policies[0].snapshots > 0;
            *out_seen = st.storage.written;
            proto_stats_fini(&st);
            if (done && *out_seen >= want) {
                return *out_seen == want;
            }
        }
        tst_nap();
    }
    return false;
}

static double value_of(const char *text, const char *series)
{
    double v = -1.0;
    if (!tst_prom_value(text, series, &v)) {
        printf("# no sample %s\n", series);
    }
    return v;
}

static void endpoints_answer(tst_daemon *f)
{
    tst_http_response r;
    TST_TRUE(tst_http_get(f->http_url, "/healthz", 5000, &r));
    TST_EQ(r.status, 200);
    TST_STREQ(r.body != NULL ? r.body : "", "ok\n");
    tst_http_response_fini(&r);
    TST_TRUE(tst_http_get(f->http_url, "/readyz", 5000, &r));
    TST_EQ(r.status, 200);
    TST_STREQ(r.body != NULL ? r.body : "", "ready\n");
    tst_http_response_fini(&r);
    TST_TRUE(tst_http_get(f->http_url, "/nothing-here", 5000, &r));
    TST_EQ(r.status, 404);
    tst_http_response_fini(&r);
    /* The GET pages take GET and HEAD; another method is 405 with an Allow header. */
    static const char *const pages[] = {"/healthz", "/readyz", "/metrics", "/dashboard",
                                        "/dashboard/history.json"};
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
        TST_TRUE(tst_http_request(f->http_url, "DELETE", pages[i], NULL, NULL, 0, 5000, &r));
        TST_EQ(r.status, 405);
        TST_STREQ(r.allow, "GET, HEAD");
        tst_http_response_fini(&r);
        TST_TRUE(tst_http_request(f->http_url, "HEAD", pages[i], NULL, NULL, 0, 5000, &r));
        TST_EQ(r.status, 200);
        TST_EQ(r.body_len, 0);
        tst_http_response_fini(&r);
    }
}

/* The exposition agrees with the stats op read right after it (traffic has stopped). */
/* A second rlfeedd on the first one's HTTP address fails at start, saying why. */
static void http_port_in_use_fails_start(tst_daemon *f)
{
    char url[700], log[700];
    snprintf(url, sizeof(url), "ipc://%s/second.sock", f->dir);
    snprintf(log, sizeof(log), "%s/second.log", f->dir);
    char *argv[] = {(char *)(uintptr_t)f->bin,
                    "--config",
                    f->conf,
                    "--url",
                    url,
                    "--redis",
                    (char *)(uintptr_t)sto_server_url(f->redis),
                    "--http-url",
                    f->http_url,
                    NULL};
    pid_t pid = tst_spawn(argv, log);
    int st = 0;
    bool exited = pid > 0 && tst_wait_exit(pid, 20000, &st);
    TST_TRUE(exited);
    if (!exited && pid > 0) {
        tst_stop(pid, 1000);
    }
    TST_TRUE(exited && WIFEXITED(st) && WEXITSTATUS(st) == 1);
    TST_TRUE(tst_file_has(log, "cannot listen: Address in use"));
}

/* The error code of a `clock` request to @url (PROTO_E_NONE if it was answered ok). */
static int clock_op_code(const char *url)
{
    rlfeed_client *c = NULL;
    base_buf b;
    base_buf_init(&b, 1024);
    char err[128];
    uint8_t *rep = NULL;
    size_t len = 0;
    rlfeed_reply out;
    int code = -1;
    if (proto_json_to_msgpack("{\"v\":1,\"op\":\"clock\",\"advance_ms\":1}", &b, err,
                              sizeof(err)) == BASE_OK &&
        rlfeed_client_open(url, 5000, &c) == BASE_OK &&
        rlfeed_client_call(c, b.data, b.len, &rep, &len) == BASE_OK &&
        rlfeed_reply_decode(rep, len, &out) == BASE_OK) {
        code = out.ok ? PROTO_E_NONE : (int)out.error.code;
    }
    base_free(rep);
    rlfeed_client_close(c);
    base_buf_fini(&b);
    return code;
}

/*
 * While a daemon is starting (its private redis-server held back by a gate
 * file the test opens), /healthz is 200 and /readyz and /metrics are 503
 * "starting"; once it is up, /readyz is 200.
 */
static void starting_is_not_ready(tst_daemon *f)
{
    char script[700], gate[700], conf[700], url[700], data[700], log[700];
    snprintf(script, sizeof(script), "%s/gated-redis", f->dir);
    snprintf(gate, sizeof(gate), "%s/gate", f->dir);
    snprintf(conf, sizeof(conf), "%s/starting.ini", f->dir);
    snprintf(url, sizeof(url), "ipc://%s/starting.sock", f->dir);
    snprintf(data, sizeof(data), "%s/starting-redis", f->dir);
    snprintf(log, sizeof(log), "%s/starting.log", f->dir);
    FILE *fp = fopen(script, "w");
    if (fp != NULL) {
        /* Waits for the test, bounded: after 30 s it starts anyway. */
        fprintf(fp,
                "#!/bin/sh\nn=0\nwhile [ ! -e '%s' ] && [ $n -lt 3000 ]; do sleep 0.01; "
                "n=$((n+1)); done\nexec redis-server \"$@\"\n",
                gate);
        fclose(fp);
    }
    fp = fopen(conf, "w");
    if (fp != NULL) {
        fprintf(fp, "[server]\nredis_bin = %s\n%s", script, strstr(CONFIG, "[policy"));
        fclose(fp);
    }
    TST_EQ(chmod(script, 0700), 0);
    char *argv[] = {
        (char *)(uintptr_t)f->bin, "--config", conf, "--url", url, "--data-dir", data, "--http-url",
        "http://127.0.0.1:0",      NULL};
    pid_t pid = tst_spawn(argv, log);
    TST_TRUE(pid > 0);
    char http[128] = "";
    TST_TRUE(pid > 0 && tst_daemon_log_http_url(log, 20000, http, sizeof(http)));
    tst_http_response r;
    memset(&r, 0, sizeof(r));
    if (http[0] != '\0') {
        TST_TRUE(tst_http_get(http, "/healthz", 5000, &r));
        TST_EQ(r.status, 200);
        tst_http_response_fini(&r);
        TST_TRUE(tst_http_get(http, "/readyz", 5000, &r));
        TST_EQ(r.status, 503);
        TST_STREQ(r.body != NULL ? r.body : "", "starting\n");
        tst_http_response_fini(&r);
        TST_TRUE(tst_http_get(http, "/metrics", 5000, &r));
        TST_EQ(r.status, 503);
        tst_http_response_fini(&r);
        /* Refusals while starting are counted too (protocol.md section 7): see below. */
        TST_TRUE(tst_http_post(http, "/api/v1/decide", "{not json", 5000, &r));
        TST_EQ(r.status, 400);
        tst_http_response_fini(&r);
        TST_TRUE(tst_http_post(http, "/api/v1/feedback",
                               "{\"policy\":\"faq\",\"event_id\":\"e\",\"signal\":\"resolved\"}",
                               5000, &r));
        TST_EQ(r.status, 503);
        tst_http_response_fini(&r);
        TST_TRUE(tst_http_get(http, "/api/v1/policies", 5000, &r));
        TST_EQ(r.status, 503);
        tst_http_response_fini(&r);
        /* `clock` without --manual-clock is unknown_op while starting too, not retryable. */
        TST_EQ(clock_op_code(url), PROTO_E_UNKNOWN_OP);
    }
    fp = fopen(gate, "w");
    if (fp != NULL) {
        fclose(fp);
    }
    bool ready = false;
    int64_t deadline = tst_now_ms() + 30000;
    while (http[0] != '\0' && !ready && tst_now_ms() < deadline) {
        if (tst_http_get(http, "/readyz", 5000, &r)) {
            ready = r.status == 200;
        }
        tst_http_response_fini(&r);
        tst_nap();
    }
    TST_TRUE(ready);
    rlfeed_client *c = NULL;
    uint8_t *rep = NULL;
    size_t len = 0;
    proto_stats after;
    if (ready && rlfeed_client_open(url, 5000, &c) == BASE_OK &&
        rlfeed_client_stats(c, NULL, &rep, &len) == BASE_OK &&
        proto_stats_decode(rep, len, &after) == BASE_OK) {
        TST_EQ(after.rejected[PROTO_E_BAD_JSON], 1);
        TST_EQ(after.rejected[PROTO_E_UNAVAILABLE], 2);
        TST_EQ(after.rejected[PROTO_E_UNKNOWN_OP], 1);
        /* The feedback and the policies page; the bad JSON was refused before it. */
        TST_TRUE(tst_file_has(log, "(2 requests answered \"starting\" before)"));
        proto_stats_fini(&after);
    } else {
        TST_TRUE(0 && "stats after the start");
    }
    base_free(rep);
    rlfeed_client_close(c);
    if (pid > 0) {
        kill(pid, SIGTERM);
        int st = 0;
        bool exited = tst_wait_exit(pid, 20000, &st);
        TST_TRUE(exited && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        if (!exited) {
            tst_stop(pid, 1000);
        }
    }
}

static void metrics_match_stats(const char *text, const proto_stats *st, uint64_t fed)
{
    const proto_policy_stats *p = &st->policies[0];
    TST_EQ(value_of(text, "rlfeed_decisions_total{policy=\"faq\",slot=\"online\"}"),
           (double)p->slots[BASE_SLOT_ONLINE].decisions);
    TST_EQ(value_of(text, "rlfeed_decisions_total{policy=\"faq\",slot=\"production\"}"),
           (double)p->slots[BASE_SLOT_PRODUCTION].decisions);
    TST_EQ((double)(p->slots[0].decisions + p->slots[1].decisions), (double)N_INTERACTIONS);
    TST_TRUE(p->slots[BASE_SLOT_ONLINE].decisions > 0);
    TST_TRUE(p->slots[BASE_SLOT_PRODUCTION].decisions > 0);
    TST_EQ(value_of(text, "rlfeed_outcomes_total{policy=\"faq\",status=\"matched\"}"),
           (double)p->join.status[PROTO_ST_MATCHED]);
    TST_EQ((double)p->join.status[PROTO_ST_MATCHED], (double)fed);
    TST_EQ(value_of(text, "rlfeed_joined_examples_total{policy=\"faq\"}"), (double)p->joined);
    TST_EQ(value_of(text, "rlfeed_defaulted_examples_total{policy=\"faq\"}"), (double)p->defaulted);
    TST_EQ(value_of(text, "rlfeed_pending_decisions{policy=\"faq\"}"), 0.0);
    TST_EQ(value_of(text, "rlfeed_model_version{policy=\"faq\",slot=\"production\"}"),
           (double)p->slots[BASE_SLOT_PRODUCTION].model_version);
    TST_NEAR(value_of(text, "rlfeed_mean_reward{policy=\"faq\",slot=\"online\"}"),
             p->slots[BASE_SLOT_ONLINE].mean_reward, 1e-12);
    TST_EQ(value_of(text, "rlfeed_rejected_requests_total{code=\"unknown_policy\"}"),
           (double)st->rejected[PROTO_E_UNKNOWN_POLICY]);
    TST_EQ((double)st->rejected[PROTO_E_UNKNOWN_POLICY], 1.0);
    TST_EQ(value_of(text, "rlfeed_write_queue_capacity"), (double)st->storage.queue_capacity);
    TST_EQ(value_of(text, "rlfeed_records_written_total"), (double)st->storage.written);
    TST_EQ(value_of(text, "rlfeed_redis_up"), 1.0);
    TST_EQ(value_of(text, "rlfeed_audit_failed_total"), 0.0);
    TST_EQ(value_of(text, "rlfeed_pull_paused_total"), 0.0);
    TST_EQ(value_of(text, "rlfeed_request_duration_seconds_count{op=\"decide\"}"),
           (double)N_INTERACTIONS);
    TST_EQ(value_of(text, "rlfeed_request_duration_seconds_count{op=\"feedback\"}"), (double)fed);
    TST_TRUE(value_of(text, "rlfeed_request_duration_seconds_sum{op=\"decide\"}") > 0.0);
    TST_EQ(value_of(text, "rlfeed_request_duration_seconds_count{op=\"explain\"}"), 1.0);
    /* All within the last 60 s; a 30% canary makes the weights differ from 1. */
    TST_EQ(value_of(text, "rlfeed_ope_window_decisions{policy=\"faq\"}"), (double)N_INTERACTIONS);
    double ess = value_of(text, "rlfeed_ope_ess{policy=\"faq\"}");
    double min_p = value_of(text, "rlfeed_ope_min_propensity{policy=\"faq\"}");
    printf("# ESS %.1f of %d decisions, min propensity %.4f\n", ess, N_INTERACTIONS, min_p);
    TST_TRUE(ess > 1.0 && ess <= (double)N_INTERACTIONS + 1e-9);
    TST_TRUE(min_p > 0.0 && min_p <= 1.0);
}

static void promtool_accepts(tst_daemon *f, const char *text)
{
    if (access("/usr/bin/promtool", X_OK) != 0) {
        printf("# skipped: promtool check metrics (promtool not installed)\n");
        return;
    }
    char path[700], cmd[1600];
    snprintf(path, sizeof(path), "%s/metrics.txt", f->dir);
    FILE *fp = fopen(path, "w");
    TST_TRUE(fp != NULL);
    if (fp == NULL) {
        return;
    }
    fputs(text, fp);
    fclose(fp);
    snprintf(cmd, sizeof(cmd), "/usr/bin/promtool check metrics < '%s' > '%s.out' 2>&1", path,
             path);
    int rc = system(cmd);
    TST_EQ(rc, 0);
    if (rc != 0) {
        snprintf(cmd, sizeof(cmd), "sed 's/^/# /' '%s.out'", path);
        (void)system(cmd); /* shows promtool's complaints */
    }
}

/* Prometheus's answer to @query: the value of its first series; false if none yet. */
static bool prom_query(const char *prom_url, const char *query, double *out)
{
    char esc[512], path[600];
    if (!tst_http_query_escape(query, esc, sizeof(esc))) {
        return false;
    }
    snprintf(path, sizeof(path), "/api/v1/query?query=%s", esc);
    tst_http_response r;
    if (!tst_http_try_get(prom_url, path, 2000, &r)) {
        return false;
    }
    bool ok = false;
    json_t *j = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    json_t *res = json_object_get(json_object_get(j, "data"), "result");
    json_t *val = json_object_get(json_array_get(res, 0), "value");
    const char *s = json_string_value(json_array_get(val, 1));
    if (s != NULL) {
        char *end = NULL;
        *out = strtod(s, &end);
        ok = end != s;
    }
    json_decref(j);
    tst_http_response_fini(&r);
    return ok;
}

static void prometheus_scrapes(tst_daemon *f)
{
    if (access("/usr/bin/prometheus", X_OK) != 0) {
        printf("# skipped: scrape by a real Prometheus (/usr/bin/prometheus not installed)\n");
        return;
    }
    char dir[700], conf[760], tsdb[760], log[760], a_conf[800], a_tsdb[800], a_listen[64];
    snprintf(dir, sizeof(dir), "%s/prometheus", f->dir);
    snprintf(conf, sizeof(conf), "%s/prometheus.yml", f->dir);
    snprintf(tsdb, sizeof(tsdb), "%s/tsdb", dir);
    snprintf(log, sizeof(log), "%s/prometheus.log", f->dir);
    int port = tst_free_port();
    TST_TRUE(port > 0);
    const char *target = f->http_url + strlen("http://");
    FILE *fp = fopen(conf, "w");
    TST_TRUE(fp != NULL);
    if (fp == NULL || port <= 0) {
        if (fp != NULL) {
            fclose(fp);
        }
        return;
    }
    fprintf(fp,
            "global:\n"
            "  scrape_interval: 1s\n"
            "  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            "  - job_name: rlfeed\n"
            "    static_configs:\n"
            "      - targets: ['%s']\n",
            target);
    fclose(fp);
    snprintf(a_conf, sizeof(a_conf), "--config.file=%s", conf);
    snprintf(a_tsdb, sizeof(a_tsdb), "--storage.tsdb.path=%s", tsdb);
    snprintf(a_listen, sizeof(a_listen), "--web.listen-address=127.0.0.1:%d", port);
    char *argv[] = {"/usr/bin/prometheus", a_conf, a_tsdb, a_listen, NULL};
    pid_t pid = tst_spawn(argv, log);
    TST_TRUE(pid > 0);
    if (pid <= 0) {
        return;
    }
    char prom_url[64];
    snprintf(prom_url, sizeof(prom_url), "http://127.0.0.1:%d", port);
    static const char *const queries[] = {
        "sum(rlfeed_decisions_total)",
        "sum(rlfeed_request_duration_seconds_count{op=\"decide\"})",
        "rlfeed_write_queue_capacity",
    };
    double got[3] = {-1, -1, -1};
    bool have[3] = {false, false, false};
    int64_t t0 = tst_now_ms(), deadline = t0 + 60000;
    while (tst_now_ms() < deadline && !(have[0] && have[1] && have[2])) {
        for (int q = 0; q < 3; q++) {
            if (!have[q]) {
                have[q] = prom_query(prom_url, queries[q], &got[q]);
            }
        }
        if (tst_wait_exit(pid, 0, NULL)) {
            printf("# prometheus exited early\n");
            pid = 0;
            break;
        }
        tst_nap();
    }
    printf("# prometheus had all three series after %lld ms\n", (long long)(tst_now_ms() - t0));
    for (int q = 0; q < 3; q++) {
        TST_TRUE(have[q]);
    }
    TST_EQ(got[0], (double)N_INTERACTIONS);
    TST_EQ(got[1], (double)N_INTERACTIONS);
    TST_EQ(got[2], 65536.0);
    if (pid > 0) {
        kill(pid, SIGTERM);
        int st = 0;
        bool exited = tst_wait_exit(pid, 15000, &st);
        TST_TRUE(exited);
        if (!exited) {
            tst_stop(pid, 1000);
        }
    }
    if (!(have[0] && have[1] && have[2])) {
        char cmd[900];
        snprintf(cmd, sizeof(cmd), "tail -20 '%s' | sed 's/^/# /'", log);
        (void)system(cmd);
    }
}

/*
 * docs/operations.md is the contract for /metrics: every family the daemon
 * exposes is in its table (as `name`), so a metric cannot ship undocumented.
 */
static void every_family_is_documented(const char *text)
{
    const char *root = tst_env_path("RLFEED_SOURCE_ROOT");
    char path[1024];
    snprintf(path, sizeof(path), "%s/docs/operations.md", root != NULL ? root : ".");
    FILE *fp = fopen(path, "r");
    TST_TRUE(fp != NULL);
    if (fp == NULL) {
        return;
    }
    static char doc[1 << 20];
    size_t n = fread(doc, 1, sizeof(doc) - 1, fp);
    doc[n] = '\0';
    fclose(fp);
    int families = 0, documented = 0;
    for (const char *p = strstr(text, "# TYPE "); p != NULL; p = strstr(p + 1, "# TYPE ")) {
        char name[128], quoted[132];
        if (sscanf(p + 7, "%127s", name) != 1) {
            continue;
        }
        families++;
        snprintf(quoted, sizeof(quoted), "`%s`", name);
        if (strstr(doc, quoted) != NULL) {
            documented++;
        } else {
            printf("# not in docs/operations.md: %s\n", name);
        }
    }
    printf("# %d metric families, %d documented\n", families, documented);
    TST_TRUE(families > 20);
    TST_EQ(documented, families);
}

int main(void)
{
    tst_daemon f;
    if (!tst_daemon_init(&f, "rlfeed-metrics", CONFIG)) {
        TST_TRUE(false);
        return tst_done();
    }
    bool up = tst_daemon_start(&f, true, NULL);
    TST_TRUE(up);
    TST_TRUE(f.http_url[0] != '\0');
    printf("# http at %s\n", f.http_url);
    uint64_t fed = 0;
    if (up && f.http_url[0] != '\0') {
        rlfeed_reply r;
        TST_OK(tst_callf(&f, &r, "{\"op\":\"stats\",\"policy\":\"nope\"}"));
        TST_TRUE(!r.ok);
        TST_TRUE(drive(&f, &fed));
        TST_TRUE(wait_joined(&f, 20000));
        uint64_t written = 0;
        TST_TRUE(written_is_records(&f, 2u * N_INTERACTIONS + fed, &written));
        printf("# written %llu, records %llu\n", (unsigned long long)written,
               (unsigned long long)(2u * N_INTERACTIONS + fed));
        endpoints_answer(&f);
        /* explain is timed too (operations.md: every op in rlfeed_request_duration_seconds). */
        TST_OK(tst_callf(&f, &r, "{\"op\":\"explain\",\"policy\":\"faq\",\"event_id\":\"none\"}"));
        TST_TRUE(!r.ok && r.error.code == PROTO_E_NOT_FOUND);
        http_port_in_use_fails_start(&f);
        starting_is_not_ready(&f);

        tst_http_response m;
        TST_TRUE(tst_http_get(f.http_url, "/metrics", 5000, &m));
        TST_EQ(m.status, 200);
        TST_TRUE(strncmp(m.content_type, "text/plain; version=0.0.4", 25) == 0);
        proto_stats st;
        bool have_stats = get_stats(&f, &st);
        TST_TRUE(have_stats);
        if (m.body != NULL && have_stats) {
            char why[512] = "";
            bool ok = tst_prom_check(m.body, "rlfeed_", why, sizeof(why));
            TST_TRUE(ok);
            if (!ok) {
                printf("# %s\n", why);
            }
            metrics_match_stats(m.body, &st, fed);
            promtool_accepts(&f, m.body);
            every_family_is_documented(m.body);
        }
        if (have_stats) {
            proto_stats_fini(&st);
        }
        tst_http_response_fini(&m);
        prometheus_scrapes(&f);
    }
    TST_EQ(tst_daemon_stop(&f), 0);
    tst_daemon_fini(&f, tst_failed > 0);
    return tst_done();
}
