/*
 * /dashboard end to end: rlfeedd on a manual clock (minutes pass at once)
 * and a real Redis, fourteen simulated minutes of decisions and feedback
 * with a promotion half-way, then:
 *
 *   1. /dashboard/history.json has one rollup per minute, each with the
 *      minute's traffic, joins, rewards by slot and for the base model,
 *      latency percentiles, versions and OPE readiness; only the newest
 *      rollup_keep (10) are kept, in memory and in rlfeed:{p}:rollup.
 *   2. After a restart the same rollups are served (loaded from Redis);
 *      with dashboard_chartjs pointing nowhere, /dashboard/chart.js is 404
 *      and the page, in headless Chromium, says so instead of breaking.
 *   3. After another restart and one more minute the bound still holds, and
 *      headless Chromium (offline: every host but 127.0.0.1 unresolvable)
 *      renders every chart with data; its screenshot is kept as
 *      $RLFEED_ARTIFACTS/dashboard.png (the build's meson-logs).
 *
 * Chromium missing is a failure, not a skip: scripts/deps.sh installs it.
 * Every Chromium runs in its own process group, which is killed and checked
 * empty afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "http.h"
#include "proc.h"
#include "storage/rollup.h"
#include "storage/store.h"
#include "tap.h"

#define DIM 4
#define K 3
#define PER_MINUTE 30      /* decisions per simulated minute */
#define MINUTES 14         /* simulated minutes before the first restart */
#define PROMOTE_AT 6       /* the minute the online head is promoted in */
#define KEEP 10            /* rollup_keep */
#define T0 1767225600000LL /* 2026-01-01 00:00 UTC, a whole minute */
#define CHROMIUM_MS 60000  /* one Chromium run, at most */

static const char *const IDS[K] = {"a", "b", "c"};
static const char *const CHARTS[] = {"reward", "traffic", "join", "latency", "versions", "ope"};

static const char CONFIG[] = "[server]\n"
                             "tick_ms = 5\n"
                             "snapshot_interval_ms = 100\n"
                             "registry_poll_ms = 50\n"
                             "rollup_keep = 10\n"
                             "%s"
                             "[policy p]\n"
                             "dim = 4\n"
                             "actions = a, b, c\n"
                             "epsilon = 0.1\n"
                             "seed = 5\n"
                             "serve = production\n"
                             "canary = 0.3\n"
                             "window_ms = 20000\n"
                             "[signal p.resolved]\n"
                             "kind = flag\n";

static bool write_config(tst_daemon *f, const char *extra)
{
    FILE *fp = fopen(f->conf, "w");
    if (fp == NULL) {
        return false;
    }
    fprintf(fp, CONFIG, extra);
    return fclose(fp) == 0;
}

static bool start(tst_daemon *f, long long clock_ms)
{
    return tst_daemon_start_clock(f, clock_ms) && f->http_url[0] != '\0';
}

/* One minute's traffic: decide; feedback for 9 in 10 ("resolved" 1 iff the best answer). */
static bool play_minute(tst_daemon *f, int minute, uint64_t *fed)
{
    static rlfeed_reply r; /* 4.5 KiB: off the stack */
    for (int i = 0; i < PER_MINUTE; i++) {
        int n = minute * PER_MINUTE + i, best = n % K;
        float x[DIM] = {best == 0 ? 1.0f : 0.0f, best == 1 ? 1.0f : 0.0f, best == 2 ? 1.0f : 0.0f,
                        1.0f};
        float logits[K] = {0.3f, 0.0f, -0.3f};
        if (rlfeed_client_decide(f->c, "p", NULL, x, DIM, K, IDS, logits, &r) != BASE_OK || !r.ok) {
            printf("# decide %d failed\n", n);
            return false;
        }
        if (i % 10 == 9) {
            continue; /* no outcome: joined with the default reward, 0 */
        }
        char ev[sizeof(r.event_id)], oid[64];
        memcpy(ev, r.event_id, sizeof(ev));
        snprintf(oid, sizeof(oid), "o-%d", n);
        double v = (int)r.chosen_index == best ? 1.0 : 0.0;
        if (rlfeed_client_feedback(f->c, "p", ev, "resolved", v, oid, &r) != BASE_OK || !r.ok) {
            printf("# feedback %d failed: %s\n", n, r.ok ? "transport" : r.error.message);
            return false;
        }
        if (i == 0) {
            /* the same outcome again: a duplicate in the join's health */
            (void)rlfeed_client_feedback(f->c, "p", ev, "resolved", v, oid, &r);
        }
        (*fed)++;
    }
    return true;
}

/* Wait until every decision so far is joined and learned: @joined examples, none pending. */
static bool wait_joined(tst_daemon *f, long long joined)
{
    int64_t deadline = tst_now_ms() + 30000;
    while (tst_now_ms() < deadline) {
        json_t *st = tst_stats(f);
        bool done =
            tst_stat_int(st, "p", "joined") == joined && tst_stat_int(st, "p", "pending") == 0;
        json_decref(st);
        if (done) {
            return true;
        }
        tst_nap();
    }
    printf("# never joined %lld\n", joined);
    return false;
}

/* GET /dashboard/history.json?last=KEEP, parsed; NULL on failure. */
static json_t *history(tst_daemon *f)
{
    tst_http_response r;
    char path[64];
    snprintf(path, sizeof(path), "/dashboard/history.json?last=%d", KEEP);
    if (!tst_http_get(f->http_url, path, 5000, &r)) {
        return NULL;
    }
    json_t *j = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    tst_http_response_fini(&r);
    return j;
}

static json_t *series(json_t *h, const char *field)
{
    json_t *p = json_array_get(json_object_get(h, "policies"), 0);
    return json_object_get(json_object_get(p, "series"), field);
}

/* Value @j of @field (NaN for null or absent). */
static double at(json_t *h, const char *field, size_t j)
{
    json_t *v = json_array_get(series(h, field), j);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static size_t rows(json_t *h)
{
    return json_array_size(series(h, "t_ms"));
}

/* Poll history.json until its newest rollup ends at @t_ms; the history, or NULL. */
static json_t *wait_rollup(tst_daemon *f, long long t_ms)
{
    int64_t deadline = tst_now_ms() + 20000;
    while (tst_now_ms() < deadline) {
        json_t *h = history(f);
        size_t n = h != NULL ? rows(h) : 0;
        if (n > 0 && (long long)at(h, "t_ms", n - 1) == t_ms) {
            return h;
        }
        json_decref(h);
        tst_nap();
    }
    printf("# no rollup at %lld\n", t_ms);
    return NULL;
}

/* Promote the online head's newest checkpoint, as `rlfeed promote` would once it passed. */
static bool promote(tst_daemon *f)
{
    sto_store *s = NULL;
    char err[256] = "";
    if (sto_store_open(sto_server_url(f->redis), 5000, &s, err, sizeof(err)) != BASE_OK) {
        printf("# %s\n", err);
        return false;
    }
    bool ok = false;
    sto_registry g = {0};
    int64_t deadline = tst_now_ms() + 20000;
    while (tst_now_ms() < deadline) {
        if (sto_registry_get(s, "p", &g) == BASE_OK && g.online > 0) {
            break;
        }
        tst_nap();
    }
    if (g.online > 0) {
        sto_field fields[] = {{"action", "promote"}, {"who", "test_dashboard"}};
        sto_change c = {.move = true, .expect = 0, .to = g.online, .fields = fields, .n_fields = 2};
        sto_change_result res;
        uint64_t was = 0;
        ok = sto_registry_change(s, "p", &c, &res, &was, NULL) == BASE_OK && res == STO_CHANGED;
        printf("# promoted version %llu\n", (unsigned long long)g.online);
    }
    sto_store_close(s);
    /* Served once the daemon follows the registry: before this minute's rollup. */
    while (ok && tst_now_ms() < deadline) {
        json_t *st = tst_stats(f);
        json_t *v = json_object_get(
            json_object_get(
                json_object_get(json_object_get(json_object_get(st, "policies"), "p"), "slots"),
                "production"),
            "model_version");
        bool served = json_is_integer(v) && (uint64_t)json_integer_value(v) == g.online;
        json_decref(st);
        if (served) {
            return true;
        }
        tst_nap();
    }
    printf("# production never served version %llu\n", (unsigned long long)g.online);
    return false;
}

/* One simulated minute: traffic, its joins, then the clock past the minute's end. */
static json_t *minute(tst_daemon *f, int m, uint64_t *fed)
{
    json_t *st = tst_stats(f);
    long long before = tst_stat_int(st, "p", "joined"); /* since start, recovery included */
    json_decref(st);
    if (before < 0 || !play_minute(f, m, fed) || !tst_clock_set(f, T0 + m * 60000LL + 40000) ||
        !wait_joined(f, before + PER_MINUTE)) {
        return NULL;
    }
    if (m == PROMOTE_AT && !promote(f)) {
        return NULL;
    }
    if (!tst_clock_set(f, T0 + (m + 1) * 60000LL + 1000)) {
        return NULL;
    }
    return wait_rollup(f, T0 + (m + 1) * 60000LL);
}

static uint64_t redis_len(tst_daemon *f)
{
    sto_store *s = NULL;
    uint64_t n = 0;
    char err[256];
    if (sto_store_open(sto_server_url(f->redis), 5000, &s, err, sizeof(err)) == BASE_OK) {
        (void)sto_rollup_len(s, "p", &n); /* 0 on failure: the check fails */
    }
    sto_store_close(s);
    return n;
}

/* Each kept rollup carries its minute: traffic, joins, rewards, latency, versions, OPE. */
static void rollups_hold_each_minute(json_t *h, int last_minute)
{
    size_t n = rows(h);
    TST_EQ(n, KEEP);
    bool times = true, traffic = true, rewards = true, latency = true, ope = true, health = true;
    double base_before = 0, base_after = 0;
    int prod_zero = 0, prod_new = 0, want_zero = 0;
    for (size_t j = 0; j < n; j++) {
        int m = last_minute - (int)(n - 1 - j); /* the rollup at the end of minute m - 1 */
        times = times && (long long)at(h, "t_ms", j) == T0 + m * 60000LL &&
                at(h, "span_ms", j) == 60000.0;
        traffic = traffic &&
                  at(h, "decisions_online", j) + at(h, "decisions_production", j) == PER_MINUTE;
        /* 27 of 30 get an outcome (the others are defaulted), plus one duplicate. */
        health = health && at(h, "joined", j) == PER_MINUTE && at(h, "defaulted", j) == 3 &&
                 at(h, "unknown", j) == 0 && at(h, "feedback", j) == 28 &&
                 at(h, "matched", j) == 27 && at(h, "duplicate", j) == 1 && at(h, "late", j) == 0;
        double mean = at(h, "reward_mean", j);
        rewards = rewards && mean >= 0 && mean <= 1 &&
                  fabs(at(h, "reward_sum", j) - mean * PER_MINUTE) < 1e-9 &&
                  at(h, "joined_online", j) + at(h, "joined_production", j) == PER_MINUTE;
        latency = latency && at(h, "lat_decide_p50_ms", j) > 0 &&
                  at(h, "lat_decide_p99_ms", j) >= at(h, "lat_decide_p50_ms", j) &&
                  at(h, "lat_feedback_p99_ms", j) > 0 && isnan(at(h, "lat_activate_p50_ms", j));
        ope = ope && at(h, "ope_n", j) > 0 && at(h, "ope_ess", j) > 0 &&
              at(h, "ope_min_propensity", j) > 0 && at(h, "ope_min_propensity", j) <= 1 &&
              at(h, "version_online", j) > 0 && at(h, "redis_up", j) == 1;
        /* Minute m - 1's decisions; the promotion comes after minute PROMOTE_AT's joins. */
        if (m - 1 <= PROMOTE_AT) {
            base_before += at(h, "joined_base", j);
        } else {
            base_after += at(h, "joined_base", j);
        }
        want_zero += m - 1 < PROMOTE_AT ? 1 : 0;
        prod_zero += at(h, "version_production", j) == 0 ? 1 : 0;
        prod_new += at(h, "version_production", j) > 0 && m - 1 >= PROMOTE_AT ? 1 : 0;
    }
    TST_TRUE(times);
    TST_TRUE(traffic);
    TST_TRUE(health);
    TST_TRUE(rewards);
    TST_TRUE(latency);
    TST_TRUE(ope);
    /* Base-model examples only while production served version 0; a new version after. */
    TST_TRUE(base_before > 0);
    TST_EQ(base_after, 0);
    TST_EQ(prod_zero, want_zero);
    TST_EQ(prod_new, (int)n - want_zero);
}

/* ---- Chromium ----------------------------------------------------------- */

static const char *chromium_path(void)
{
    static const char *const paths[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        if (access(paths[i], X_OK) == 0) {
            return paths[i];
        }
    }
    return NULL;
}

/*
 * Run headless Chromium on @url with @mode ("--dump-dom" or "--screenshot=PATH"),
 * stdout to @out_path, in a process group of its own, killed after
 * CHROMIUM_MS. True if it exited 0 and no process of its group is left.
 */
static bool chromium(tst_daemon *f, const char *mode, const char *url, const char *out_path)
{
    const char *bin = chromium_path();
    char profile[700], home[700], log[700], ua[760];
    snprintf(profile, sizeof(profile), "%s/chromium-profile", f->dir);
    snprintf(home, sizeof(home), "%s/chromium-home", f->dir);
    snprintf(log, sizeof(log), "%s/chromium.log", f->dir);
    snprintf(ua, sizeof(ua), "--user-data-dir=%s", profile);
    (void)mkdir(home, 0700); /* exists after the first run */
    char *argv[] = {
        (char *)(uintptr_t)bin, "--headless",
        "--no-sandbox", /* as root; the profile is private and temporary */
        "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
        "--disable-extensions", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-breakpad", "--hide-scrollbars",
        /* offline: nothing but loopback resolves */
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--window-size=1400,1800",
        "--virtual-time-budget=15000", ua, (char *)(uintptr_t)mode, (char *)(uintptr_t)url, NULL};
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        setenv("HOME", home, 1);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (out < 0 || err < 0) {
            _exit(126);
        }
        dup2(out, 1);
        dup2(err, 2);
        execv(bin, argv);
        _exit(127);
    }
    if (pid < 0) {
        return false;
    }
    setpgid(pid, pid); /* also here: no race with the child's own call */
    int st = 0;
    int64_t t0 = tst_now_ms();
    bool exited = tst_wait_exit(pid, CHROMIUM_MS, &st);
    printf("# chromium %s: %s after %lld ms\n", mode, exited ? "exited" : "killed",
           (long long)(tst_now_ms() - t0));
    if (!exited) {
        kill(-pid, SIGKILL);
        (void)waitpid(pid, &st, 0); /* reap the leader */
    }
    /* Children it left (renderers, zygotes, crash handlers) go with the group. */
    (void)kill(-pid, SIGKILL); /* ESRCH when none is left */
    bool gone = false;
    int64_t deadline = tst_now_ms() + 10000;
    while (!gone && tst_now_ms() < deadline) {
        gone = kill(-pid, 0) != 0 && errno == ESRCH;
        if (!gone) {
            tst_nap();
        }
    }
    TST_TRUE(gone);
    bool ok = exited && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!ok) {
        printf("# chromium failed; its log:\n");
        tst_print_file(log);
    }
    return ok && gone;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        return NULL;
    }
    char *buf = calloc(1, 8u << 20);
    size_t n = buf != NULL ? fread(buf, 1, (8u << 20) - 1, fp) : 0;
    (void)n; /* calloc'ed: NUL-terminated whatever was read */
    fclose(fp);
    return buf;
}

/* The value of attribute @attr of the element with id @id in @dom, into @out. */
static bool attr_of(const char *dom, const char *id, const char *attr, char *out, size_t len)
{
    char needle[128];
    snprintf(needle, sizeof(needle), "id=\"%s\"", id);
    const char *el = strstr(dom, needle);
    if (el == NULL) {
        return false;
    }
    const char *end = strchr(el, '>');
    snprintf(needle, sizeof(needle), " %s=\"", attr);
    const char *a = strstr(el, needle);
    if (a == NULL || (end != NULL && a > end)) {
        return false;
    }
    a += strlen(needle);
    const char *q = strchr(a, '"');
    if (q == NULL || (size_t)(q - a) >= len) {
        return false;
    }
    memcpy(out, a, (size_t)(q - a));
    out[q - a] = '\0';
    return true;
}

static const char *body_state(const char *dom, char *out, size_t len)
{
    const char *b = strstr(dom, "<body");
    const char *a = b != NULL ? strstr(b, "data-dashboard=\"") : NULL;
    out[0] = '\0';
    if (a != NULL) {
        a += strlen("data-dashboard=\"");
        const char *q = strchr(a, '"');
        if (q != NULL && (size_t)(q - a) < len) {
            memcpy(out, a, (size_t)(q - a));
            out[q - a] = '\0';
        }
    }
    return out;
}

/* Chromium renders the page: every chart drew points; the DOM is kept in @dom_path. */
static void page_renders_every_chart(tst_daemon *f, const char *dom_path)
{
    char url[200], state[32], v[32];
    snprintf(url, sizeof(url), "%s/dashboard", f->http_url);
    TST_TRUE(chromium(f, "--dump-dom", url, dom_path));
    char *dom = slurp(dom_path);
    TST_TRUE(dom != NULL);
    if (dom == NULL) {
        return;
    }
    TST_STREQ(body_state(dom, state, sizeof(state)), "ready");
    for (size_t i = 0; i < sizeof(CHARTS) / sizeof(CHARTS[0]); i++) {
        char id[64];
        snprintf(id, sizeof(id), "chart-%s", CHARTS[i]);
        long pts = attr_of(dom, id, "data-points", v, sizeof(v)) ? strtol(v, NULL, 10) : -1;
        printf("# %s: %ld points\n", id, pts);
        TST_TRUE(pts >= KEEP); /* at least one full series */
    }
    /* The headline row has numbers. */
    TST_TRUE(strstr(dom, "id=\"c-reward\">0.") != NULL ||
             strstr(dom, "id=\"c-reward\">1.") != NULL);
    TST_TRUE(strstr(dom, "id=\"c-model\">v") != NULL);
    free(dom);
}

static void screenshot(tst_daemon *f)
{
    const char *dir = getenv("RLFEED_ARTIFACTS");
    char path[1024], url[200];
    snprintf(path, sizeof(path), "%s/dashboard.png", dir != NULL && dir[0] != '\0' ? dir : ".");
    snprintf(url, sizeof(url), "%s/dashboard", f->http_url);
    char mode[1100], sink[700];
    snprintf(mode, sizeof(mode), "--screenshot=%s", path);
    snprintf(sink, sizeof(sink), "%s/chromium-screenshot.out", f->dir);
    (void)unlink(path);
    TST_TRUE(chromium(f, mode, url, sink));
    struct stat st;
    bool ok = stat(path, &st) == 0 && st.st_size > 20000;
    TST_TRUE(ok);
    FILE *fp = fopen(path, "rb");
    unsigned char sig[8] = {0};
    if (fp != NULL) {
        TST_EQ(fread(sig, 1, 8, fp), 8);
        fclose(fp);
    }
    TST_TRUE(memcmp(sig, "\x89PNG\r\n\x1a\n", 8) == 0);
    printf("# screenshot: %s (%lld bytes)\n", path, ok ? (long long)st.st_size : 0LL);
}

/* Without Chart.js the script is 404 and the page says why, instead of breaking. */
static void missing_chartjs_is_explained(tst_daemon *f)
{
    tst_http_response r;
    TST_TRUE(tst_http_get(f->http_url, "/dashboard/chart.js", 5000, &r));
    TST_EQ(r.status, 404);
    TST_TRUE(r.body != NULL && strstr(r.body, "libjs-chart.js") != NULL);
    tst_http_response_fini(&r);
    char url[200], dom_path[700], state[32];
    snprintf(url, sizeof(url), "%s/dashboard", f->http_url);
    snprintf(dom_path, sizeof(dom_path), "%s/no-chartjs.html", f->dir);
    TST_TRUE(chromium(f, "--dump-dom", url, dom_path));
    char *dom = slurp(dom_path);
    TST_STREQ(dom != NULL ? body_state(dom, state, sizeof(state)) : "", "no-chartjs");
    TST_TRUE(dom != NULL && strstr(dom, "Install the Debian package libjs-chart.js") != NULL);
    free(dom);
}

static void http_errors(tst_daemon *f)
{
    tst_http_response r;
    TST_TRUE(tst_http_get(f->http_url, "/dashboard/history.json?last=0", 5000, &r));
    TST_EQ(r.status, 400);
    tst_http_response_fini(&r);
    TST_TRUE(tst_http_get(f->http_url, "/dashboard/history.json?last=x", 5000, &r));
    TST_EQ(r.status, 400);
    tst_http_response_fini(&r);
    /* More than are kept: all that are kept. */
    TST_TRUE(tst_http_get(f->http_url, "/dashboard/history.json?last=1440", 5000, &r));
    TST_EQ(r.status, 200);
    json_t *j = r.body != NULL ? json_loads(r.body, 0, NULL) : NULL;
    TST_EQ(rows(j), KEEP);
    json_decref(j);
    tst_http_response_fini(&r);
    TST_TRUE(tst_http_get(f->http_url, "/dashboard/history.json?policy=nope", 5000, &r));
    TST_EQ(r.status, 404);
    tst_http_response_fini(&r);
    /* Query values are percent-decoded; one too long or badly escaped is 400, not ignored. */
    TST_TRUE(tst_http_get(f->http_url, "/dashboard/history.json?last=%31&policy=%70", 5000, &r));
    TST_EQ(r.status, 200);
    j = r.body != NULL ? json_loads(r.body, 0, NULL) : NULL;
    TST_EQ(rows(j), 1);
    json_decref(j);
    tst_http_response_fini(&r);
    /* A parameter given twice counts once, the last, as in the JSON API. */
    TST_TRUE(tst_http_get(f->http_url, "/dashboard/history.json?last=1&last=2", 5000, &r));
    TST_EQ(r.status, 200);
    j = r.body != NULL ? json_loads(r.body, 0, NULL) : NULL;
    TST_EQ(rows(j), KEEP >= 2 ? 2 : KEEP);
    json_decref(j);
    tst_http_response_fini(&r);
    TST_TRUE(tst_http_get(f->http_url, "/dashboard/history.json?last=3&last=abc", 5000, &r));
    TST_EQ(r.status, 400);
    tst_http_response_fini(&r);
    char path[400];
    snprintf(path, sizeof(path), "/dashboard/history.json?last=%0200d", 1);
    TST_TRUE(tst_http_get(f->http_url, path, 5000, &r));
    TST_EQ(r.status, 400);
    tst_http_response_fini(&r);
    TST_TRUE(tst_http_get(f->http_url, "/dashboard/history.json?policy=%zz", 5000, &r));
    TST_EQ(r.status, 400);
    tst_http_response_fini(&r);
    TST_TRUE(tst_http_get(f->http_url, "/dashboard", 5000, &r));
    TST_EQ(r.status, 200);
    TST_TRUE(strncmp(r.content_type, "text/html", 9) == 0);
    TST_TRUE(r.body != NULL && strstr(r.body, "dashboard/chart.js") != NULL);
    tst_http_response_fini(&r);
    /* nng routes /dashboard/ here too, where the page's relative links would be wrong. */
    TST_TRUE(tst_http_get(f->http_url, "/dashboard/?last=5", 5000, &r));
    TST_EQ(r.status, 308);
    TST_STREQ(r.location, "../dashboard");
    tst_http_response_fini(&r);
}

int main(void)
{
    tst_daemon f;
    if (chromium_path() == NULL) {
        /* Not a skip: scripts/deps.sh installs it, and this test is how the page is checked. */
        printf("1..1\nnot ok 1 - chromium not installed (apt-get install chromium)\n");
        return 1;
    }
    if (!tst_daemon_init(&f, "rlfeed-dashboard", "")) {
        TST_TRUE(false);
        return tst_done();
    }
    TST_TRUE(write_config(&f, ""));
    bool up = start(&f, T0 + 5000);
    TST_TRUE(up);
    uint64_t fed = 0;
    json_t *h = NULL;
    for (int m = 0; up && m < MINUTES; m++) {
        json_decref(h);
        h = minute(&f, m, &fed);
        up = h != NULL;
        TST_TRUE(up);
    }
    if (up) {
        rollups_hold_each_minute(h, MINUTES);
        TST_EQ(redis_len(&f), KEEP);
        http_errors(&f);
    }
    /* Restart: the same rollups, from Redis; and no Chart.js to serve. */
    TST_EQ(tst_daemon_stop(&f), 0);
    TST_TRUE(write_config(&f, "dashboard_chartjs = /nonexistent/chart.min.js\n"));
    up = up && start(&f, T0 + MINUTES * 60000LL + 2000);
    TST_TRUE(up);
    json_t *again = up ? history(&f) : NULL;
    TST_TRUE(again != NULL && rows(again) == KEEP);
    TST_TRUE(again != NULL && json_equal(series(h, "t_ms"), series(again, "t_ms")) &&
             json_equal(series(h, "reward_sum"), series(again, "reward_sum")) &&
             json_equal(series(h, "lat_decide_p99_ms"), series(again, "lat_decide_p99_ms")));
    TST_TRUE(again != NULL && json_is_false(json_object_get(again, "chartjs")));
    json_decref(again);
    if (up) {
        missing_chartjs_is_explained(&f);
    }
    /* Restart with Chart.js; one more minute: still KEEP rollups, the oldest dropped. */
    TST_EQ(tst_daemon_stop(&f), 0);
    TST_TRUE(write_config(&f, ""));
    up = up && start(&f, T0 + MINUTES * 60000LL + 3000);
    TST_TRUE(up);
    json_decref(h);
    h = up ? minute(&f, MINUTES, &fed) : NULL;
    TST_TRUE(h != NULL);
    if (h != NULL) {
        TST_EQ(rows(h), KEEP);
        TST_EQ((long long)at(h, "t_ms", 0), T0 + (MINUTES + 2 - KEEP) * 60000LL);
        TST_EQ(at(h, "span_ms", KEEP - 1), 60000 - 3000); /* from the restart */
        TST_EQ(at(h, "decisions_online", KEEP - 1) + at(h, "decisions_production", KEEP - 1),
               PER_MINUTE);
        TST_EQ(redis_len(&f), KEEP);
        const char *dir = getenv("RLFEED_ARTIFACTS");
        char dom_path[1024];
        snprintf(dom_path, sizeof(dom_path), "%s/dashboard.html",
                 dir != NULL && dir[0] != '\0' ? dir : f.dir);
        page_renders_every_chart(&f, dom_path);
        screenshot(&f);
    }
    json_decref(h);
    TST_EQ(tst_daemon_stop(&f), 0);
    tst_daemon_fini(&f, tst_failed > 0);
    return tst_done();
}
