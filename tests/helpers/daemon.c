#include "daemon.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "proc.h"
#include "proto/json.h"
#include "storage/store.h"
#include "tap.h"

#define POLL_TIMEOUT_MS 1000 /* each health request while waiting for readiness */

bool tst_daemon_init(tst_daemon *f, const char *name, const char *config)
{
    return tst_daemon_init_fsync(f, name, config, NULL);
}

bool tst_daemon_init_fsync(tst_daemon *f, const char *name, const char *config,
                           const char *appendfsync)
{
    memset(f, 0, sizeof(*f));
    f->bin = tst_env_path("RLFEEDD");
    if (f->bin == NULL) {
        tst_skip_all("RLFEEDD (the rlfeedd binary) is not set");
    }
    if (system("command -v redis-server > /dev/null 2>&1") != 0) {
        tst_skip_all("redis-server not found");
    }
    f->dir = tst_mkdtemp(name);
    if (f->dir == NULL) {
        return false;
    }
    snprintf(f->url, sizeof(f->url), "ipc://%s/rep.sock", f->dir);
    snprintf(f->pull_url, sizeof(f->pull_url), "ipc://%s/pull.sock", f->dir);
    snprintf(f->log, sizeof(f->log), "%s/rlfeedd.log", f->dir);
    snprintf(f->conf, sizeof(f->conf), "%s/rlfeed.ini", f->dir);
    FILE *fp = fopen(f->conf, "w");
    if (fp == NULL) {
        return false;
    }
    fputs(config, fp);
    fclose(fp);
    f->http_in_config = strstr(config, "http_url") != NULL;
    char rdir[600], err[256] = "";
    snprintf(rdir, sizeof(rdir), "%s/redis", f->dir);
    mkdir(rdir, 0700); /* a given data dir must exist */
    /* Fixtures favour speed; a test about durability asks for "always" itself. */
    sto_server_opts so = {.unix_socket = true,
                          .dir = rdir,
                          .appendfsync = appendfsync != NULL ? appendfsync : "everysec"};
    if (sto_server_start(&so, &f->redis, err, sizeof(err)) != BASE_OK) {
        printf("# redis: %s\n", err);
        return false;
    }
    return true;
}

/* A client of @f's daemon waiting @timeout_ms for each reply, signing with f->key if set. */
static base_err open_client(const tst_daemon *f, int timeout_ms, rlfeed_client **out)
{
    base_err e = rlfeed_client_open(f->url, timeout_ms, out);
    if (e == BASE_OK && f->key != NULL) {
        (void)rlfeed_client_use_key(*out, f->key);
    }
    return e;
}

/* Whether @c's health request is answered (whatever the health). */
static bool answers_health(rlfeed_client *c)
{
    uint8_t *rep = NULL;
    size_t len = 0;
    bool ok = rlfeed_client_health(c, &rep, &len) == BASE_OK;
    base_free(rep);
    return ok;
}

bool tst_daemon_start(tst_daemon *f, bool with_redis, const char *const *extra_args)
{
    char *argv[32];
    int n = 0;
    char redis_url[600], data_dir[600];
    argv[n++] = (char *)(uintptr_t)f->bin;
    argv[n++] = "--config";
    argv[n++] = f->conf;
    argv[n++] = "--url";
    argv[n++] = f->url;
    argv[n++] = "--pull-url";
    argv[n++] = f->pull_url;
    if (with_redis) {
        snprintf(redis_url, sizeof(redis_url), "%s", sto_server_url(f->redis));
        argv[n++] = "--redis";
        argv[n++] = redis_url;
    } else {
        snprintf(data_dir, sizeof(data_dir), "%s/embedded", f->dir);
        argv[n++] = "--data-dir";
        argv[n++] = data_dir;
    }
    if (!f->http_in_config) {
        argv[n++] = "--http-url";
        argv[n++] = "http://127.0.0.1:0";
    }
    f->http_url[0] = '\0';
    for (int i = 0; extra_args != NULL && extra_args[i] != NULL && n < 31; i++) {
        argv[n++] = (char *)(uintptr_t)extra_args[i];
    }
    argv[n] = NULL;
    f->pid = tst_spawn(argv, f->log);
    /*
     * Readiness is polled on a client of its own with a short timeout: a daemon that exits
     * during its start leaves a health request unanswered, and each costs a timeout.
     */
    rlfeed_client *poll = NULL;
    if (f->pid <= 0 || open_client(f, POLL_TIMEOUT_MS, &poll) != BASE_OK) {
        return false;
    }
    bool up = false;
    int64_t deadline = tst_now_ms() + 15000;
    while (!up && tst_now_ms() < deadline) {
        uint8_t *rep = NULL;
        size_t len = 0;
        rlfeed_reply r;
        if (rlfeed_client_health(poll, &rep, &len) == BASE_OK) {
            /* Listening comes before recovery: "starting" is not ready yet. */
            up = rlfeed_reply_decode(rep, len, &r) == BASE_OK && r.ok &&
                 strcmp(r.status, "starting") != 0;
            base_free(rep);
        }
        if (!up && tst_wait_exit(f->pid, 0, NULL)) {
            f->pid = 0;
            break;
        }
    }
    rlfeed_client_close(poll);
    /*
     * Connected before it is handed over (one health request): nng 1.5.2 can leave a
     * dialer's allocations unreaped when a socket is closed while it is still connecting, as
     * a test that swaps f->c for a client of its own at once would.
     */
    if (!up || open_client(f, TST_CLIENT_TIMEOUT_MS, &f->c) != BASE_OK || !answers_health(f->c)) {
        return false;
    }
    /* The line comes before readiness; without HTTP there is none. */
    (void)tst_daemon_log_http_url(f->log, f->http_in_config ? 0 : 5000, f->http_url,
                                  sizeof(f->http_url));
    return true;
}

bool tst_daemon_start_clock(tst_daemon *f, long long clock_ms)
{
    char ms[32];
    snprintf(ms, sizeof(ms), "%lld", clock_ms);
    const char *extra[] = {"--manual-clock", ms, NULL};
    return tst_daemon_start(f, true, extra);
}

bool tst_daemon_log_http_url(const char *log_path, int timeout_ms, char *out, size_t len)
{
    static const char key[] = "http on ";
    int64_t deadline = tst_now_ms() + timeout_ms;
    do {
        FILE *fp = fopen(log_path, "r");
        char line[1024];
        bool found = false;
        /* The last one: a restarted daemon appends to the same log. */
        while (fp != NULL && fgets(line, sizeof(line), fp) != NULL) {
            const char *at = strstr(line, key);
            if (at != NULL) {
                at += sizeof(key) - 1;
                size_t n = strcspn(at, " \r\n");
                if (n < len) {
                    memcpy(out, at, n);
                    out[n] = '\0';
                    found = true;
                }
            }
        }
        if (fp != NULL) {
            fclose(fp);
        }
        if (found) {
            return true;
        }
        tst_nap();
    } while (tst_now_ms() < deadline);
    return false;
}

int tst_daemon_stop(tst_daemon *f)
{
    rlfeed_client_close(f->c);
    f->c = NULL;
    if (f->pid <= 0) {
        return -1;
    }
    kill(f->pid, SIGTERM);
    int st = 0;
    bool exited = tst_wait_exit(f->pid, 20000, &st);
    if (!exited) {
        tst_stop(f->pid, 1000);
    }
    f->pid = 0;
    return exited && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void tst_daemon_fini(tst_daemon *f, bool dump)
{
    if (f->pid > 0) {
        (void)tst_daemon_stop(f);
    }
    if (dump) {
        FILE *fp = fopen(f->log, "r");
        char line[512];
        while (fp != NULL && fgets(line, sizeof(line), fp) != NULL) {
            printf("# %s", line);
        }
        if (fp != NULL) {
            fclose(fp);
        }
    }
    sto_server_stop(f->redis);
    f->redis = NULL;
    if (f->dir != NULL) {
        tst_rm_rf(f->dir);
        free(f->dir);
        f->dir = NULL;
    }
}

base_err tst_call_raw(tst_daemon *f, const uint8_t *req, size_t len, rlfeed_reply *out)
{
    uint8_t *rep = NULL;
    size_t rlen = 0;
    base_err e = rlfeed_client_call(f->c, req, len, &rep, &rlen);
    if (e == BASE_OK) {
        e = rlfeed_reply_decode(rep, rlen, out);
        base_free(rep);
    }
    return e;
}

base_err tst_push_json(rlfeed_push *p, const char *json)
{
    base_buf b;
    char err[128];
    base_buf_init(&b, 4u << 20);
    base_err e = proto_json_to_msgpack(json, &b, err, sizeof(err));
    if (e == BASE_OK) {
        e = rlfeed_push_send(p, b.data, b.len);
    }
    base_buf_fini(&b);
    return e;
}

base_err tst_call_json(tst_daemon *f, const char *json, rlfeed_reply *out)
{
    base_buf b;
    base_buf_init(&b, 4u << 20);
    char err[128];
    memset(out, 0, sizeof(*out));
    base_err e = proto_json_to_msgpack(json, &b, err, sizeof(err));
    if (e == BASE_OK) {
        e = tst_call_raw(f, b.data, b.len, out);
    }
    base_buf_fini(&b);
    return e;
}

base_err tst_callf(tst_daemon *f, rlfeed_reply *out, const char *fmt, ...)
{
    char body[1024], json[1100];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    snprintf(json, sizeof(json), "{\"v\":1,%s", body + 1);
    return tst_call_json(f, json, out);
}

bool tst_clock_set(tst_daemon *f, long long ms)
{
    rlfeed_reply r;
    return tst_callf(f, &r, "{\"op\":\"clock\",\"set_ms\":%lld}", ms) == BASE_OK && r.ok;
}

bool tst_daemon_kill(tst_daemon *f)
{
    rlfeed_client_close(f->c); /* the next start opens its own */
    f->c = NULL;
    if (f->pid <= 0) {
        return false;
    }
    kill(f->pid, SIGKILL);
    bool gone = tst_wait_exit(f->pid, 10000, NULL);
    f->pid = 0;
    return gone;
}

int tst_daemon_cli(tst_daemon *f, const char *who, const char *const *args)
{
    char redis[600], as[128], log[700];
    snprintf(redis, sizeof(redis), "--redis=%s", sto_server_url(f->redis));
    snprintf(as, sizeof(as), "--who=%s", who);
    snprintf(log, sizeof(log), "%s/cli.log", f->dir);
    const char *argv[23];
    int n = 0;
    for (int i = 0; args[i] != NULL && n < 20; i++) {
        argv[n++] = args[i];
    }
    argv[n++] = redis;
    argv[n++] = as;
    argv[n] = NULL;
    int rc = tst_run("RLFEED", argv, log, 30000);
    if (rc != 0) {
        tst_print_file(log);
    }
    return rc;
}

bool tst_file_has(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        return false;
    }
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof(line), fp) != NULL) {
        found = strstr(line, needle) != NULL;
    }
    fclose(fp);
    return found;
}

bool tst_new_client_served(const char *url, int timeout_ms)
{
    rlfeed_client *c = NULL;
    if (rlfeed_client_open(url, timeout_ms, &c) != BASE_OK) {
        return false;
    }
    bool ok = answers_health(c);
    rlfeed_client_close(c);
    return ok;
}

json_t *tst_stats(tst_daemon *f)
{
    uint8_t *rep = NULL;
    size_t len = 0;
    if (rlfeed_client_stats(f->c, NULL, &rep, &len) != BASE_OK) {
        return NULL;
    }
    char *text = NULL;
    json_t *j = NULL;
    if (proto_json_from_msgpack(rep, len, &text) == BASE_OK) {
        j = json_loads(text, 0, NULL);
    }
    base_free(text);
    base_free(rep);
    return j;
}

static json_t *policy_of(json_t *s, const char *policy)
{
    return json_object_get(json_object_get(s, "policies"), policy);
}

long long tst_stat_int(json_t *s, const char *policy, const char *key)
{
    json_t *v = json_object_get(policy_of(s, policy), key);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

const char *tst_stat_str(json_t *s, const char *policy, const char *key)
{
    json_t *v = json_object_get(policy_of(s, policy), key);
    return json_is_string(v) ? json_string_value(v) : "";
}

long long tst_stat_join(json_t *s, const char *policy, const char *key)
{
    json_t *v = json_object_get(json_object_get(policy_of(s, policy), "join"), key);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

long long tst_rejected(json_t *s, const char *code)
{
    json_t *v = json_object_get(json_object_get(s, "rejected"), code);
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

int tst_each_decision(tst_daemon *f, const char *policy, int want, int timeout_ms,
                      void (*fn)(const base_decision *d, void *arg), void *arg)
{
    sto_store *st = NULL;
    char err[256];
    int seen = 0;
    if (sto_store_open(sto_server_url(f->redis), 5000, &st, err, sizeof(err)) != BASE_OK) {
        printf("# redis: %s\n", err);
        return 0;
    }
    int64_t deadline = tst_now_ms() + timeout_ms;
    char after[BASE_STREAM_ID_MAX + 1] = "0";
    while (seen < want && tst_now_ms() < deadline) {
        sto_entry *e = NULL;
        size_t n = 0;
        if (sto_store_read(st, STO_DECISIONS, policy, after, 1000, &e, &n) != BASE_OK) {
            break;
        }
        for (size_t k = 0; k < n; k++) {
            fn(e[k].rec, arg);
            seen++;
        }
        if (n > 0) {
            snprintf(after, sizeof(after), "%s", e[n - 1].id);
        } else {
            tst_nap();
        }
        sto_entries_free(STO_DECISIONS, e, n);
    }
    sto_store_close(st);
    return seen;
}

int tst_count_outcome_ids(const char *url, const char *policy, int *times, int n)
{
    sto_store *s = NULL;
    char err[256], after[BASE_STREAM_ID_MAX + 1] = "";
    if (sto_store_open(url, 5000, &s, err, sizeof(err)) != BASE_OK) {
        printf("# %s\n", err);
        return -1;
    }
    int total = 0;
    for (;;) {
        sto_entry *en = NULL;
        size_t k = 0;
        if (sto_store_read(s, STO_OUTCOMES, policy, after, 500, &en, &k) != BASE_OK) {
            total = -1;
            break;
        }
        if (k == 0) {
            break;
        }
        for (size_t j = 0; j < k; j++) {
            int id = atoi(((const base_outcome *)en[j].rec)->outcome_id + 2);
            if (id >= 0 && id < n) {
                times[id]++;
            }
            total++;
        }
        snprintf(after, sizeof(after), "%s", en[k - 1].id);
        sto_entries_free(STO_OUTCOMES, en, k);
    }
    sto_store_close(s);
    return total;
}

bool tst_health_is(rlfeed_client *c, const char *want)
{
    uint8_t *rep = NULL;
    size_t len = 0;
    rlfeed_reply r;
    bool is = false;
    if (rlfeed_client_health(c, &rep, &len) == BASE_OK) {
        is = rlfeed_reply_decode(rep, len, &r) == BASE_OK && r.ok && strcmp(r.status, want) == 0;
        base_free(rep);
    }
    return is;
}

bool tst_wait_health(rlfeed_client *c, const char *want, int timeout_ms)
{
    int64_t deadline = tst_now_ms() + timeout_ms;
    while (tst_now_ms() < deadline) {
        if (tst_health_is(c, want)) {
            return true;
        }
        tst_nap();
    }
    return false;
}

bool tst_decide_feedback(tst_daemon *d, tst_daemon *f, int i)
{
    rlfeed_reply r;
    if (tst_callf(d, &r,
                  "{\"op\":\"decide\",\"policy\":\"p\",\"event_id\":\"ev-%d\",\"context\":"
                  "{\"embedding\":[%d,1]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0},"
                  "{\"id\":\"b\",\"base_logit\":0}]}",
                  i, i % 2) != BASE_OK ||
        !r.ok) {
        return false;
    }
    return tst_callf(f, &r,
                     "{\"op\":\"feedback\",\"policy\":\"p\",\"event_id\":\"ev-%d\","
                     "\"signal\":\"%s\",\"outcome_id\":\"o-%d\"}",
                     i, i % 3 == 0 ? "resolved" : "escalated", i) == BASE_OK &&
           r.ok;
}

base_err tst_decide(tst_daemon *f, const char *policy, const char *event_id, rlfeed_reply *r)
{
    char ev[BASE_ID_MAX + 20] = "";
    if (event_id != NULL) {
        snprintf(ev, sizeof(ev), "\"event_id\":\"%s\",", event_id);
    }
    return tst_callf(f, r,
                     "{\"op\":\"decide\",\"policy\":\"%s\",%s\"context\":{\"embedding\":[1,0]},"
                     "\"candidates\":[{\"id\":\"a\",\"base_logit\":0},{\"id\":\"b\","
                     "\"base_logit\":0}]}",
                     policy, ev);
}
