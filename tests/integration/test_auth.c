/*
 * rlfeedd with auth = on (docs/security.md): every refusal a client can meet, over the
 * REQ/REP socket, the PULL socket, the HTTP API and the CLI, and what stats counts.
 *
 * Clients: admin (the fixture's, every op), fe (decide and feedback on policy faq only, two
 * keys as during a rotation, an outcome cap of 3), watcher (ops only; its key made with
 * `rlfeed key new`, as an operator would).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "client/rlfeed_client.h"
#include "daemon.h"
#include "http.h"
#include "proc.h"
#include "proto/auth.h"
#include "proto/json.h"
#include "proto/request.h"
#include "tap.h"

#define TIMEOUT_MS 5000

static const char DECIDE_FAQ[] =
    "{\"v\":1,\"op\":\"decide\",\"policy\":\"faq\",\"context\":{\"embedding\":[1,0,0,0]},"
    "\"candidates\":[{\"id\":\"a\",\"base_logit\":0},{\"id\":\"b\",\"base_logit\":0}]}";

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A key file with a secret made from @seed. */
static void make_key(proto_auth_keyfile *kf, const char *client, uint8_t seed)
{
    memset(kf, 0, sizeof(*kf));
    snprintf(kf->client, sizeof(kf->client), "%s", client);
    for (int i = 0; i < PROTO_AUTH_SECRET_BYTES; i++) {
        kf->secret[i] = (uint8_t)(seed * 31 + i);
    }
    for (int i = 0; i < PROTO_AUTH_SALT_BYTES; i++) {
        kf->salt[i] = (uint8_t)(seed + 7 * i);
    }
    proto_auth_derive(kf->secret, kf->salt, kf->key);
}

static void stored(const proto_auth_keyfile *kf, char out[PROTO_AUTH_KEY_STRING_LEN + 1])
{
    proto_auth_key_string(kf->salt, kf->key, out);
}

/* @json as msgpack, signed by @kf at @ts (NULL: unsigned) into @b. */
static void build(base_buf *b, const char *json, const proto_auth_keyfile *kf, int64_t ts,
                  const char *nonce)
{
    char why[160];
    base_buf_reset(b);
    TST_OK(proto_json_to_msgpack(json, b, why, sizeof(why)));
    if (kf != NULL) {
        TST_OK(proto_auth_sign(b, kf->client, kf->key, ts, nonce));
    }
}

/* Send @b unsigned-as-is over a fresh connection; the reply's code (NONE when ok). */
static proto_errcode send_raw(const char *url, const base_buf *b, char *msg, size_t msglen)
{
    rlfeed_client *c = NULL;
    uint8_t *rep = NULL;
    size_t n = 0;
    rlfeed_reply r;
    proto_errcode code = PROTO_E_COUNT;
    if (rlfeed_client_open(url, TIMEOUT_MS, &c) == BASE_OK &&
        rlfeed_client_call(c, b->data, b->len, &rep, &n) == BASE_OK &&
        rlfeed_reply_decode(rep, n, &r) == BASE_OK) {
        code = r.ok ? PROTO_E_NONE : r.error.code;
        if (msg != NULL) {
            snprintf(msg, msglen, "%s", r.ok ? "" : r.error.message);
        }
    }
    base_free(rep);
    rlfeed_client_close(c);
    return code;
}

/* Run `rlfeed key new watcher --out DIR/watcher.key`; its printed key line into @key. */
static bool key_new(const char *dir, char *key, size_t len)
{
    char out[600], log[600], line[512];
    snprintf(out, sizeof(out), "%s/watcher.key", dir);
    snprintf(log, sizeof(log), "%s/keynew.log", dir);
    const char *args[] = {"key", "new", "watcher", "--out", out, NULL};
    if (tst_run("RLFEED", args, log, 10000) != 0) {
        tst_print_file(log);
        return false;
    }
    struct stat st;
    TST_TRUE(stat(out, &st) == 0 && (st.st_mode & 0777) == 0600);
    /* A second run must not overwrite the key file. */
    TST_EQ(tst_run("RLFEED", args, log, 10000), 2);
    /* A name the configuration could not hold ([client [x]] ends at the first ']'). */
    char bracket[600];
    snprintf(bracket, sizeof(bracket), "%s/bracket.key", dir);
    const char *bad[] = {"key", "new", "[x]", "--out", bracket, NULL};
    TST_EQ(tst_run("RLFEED", bad, log, 10000), 2);
    TST_TRUE(tst_file_has(log, "bad client name") && access(bracket, F_OK) != 0);
    FILE *fp = fopen(log, "r");
    bool found = false;
    snprintf(log, sizeof(log), "%s/keynew.log", dir);
    while (fp != NULL && !found && fgets(line, sizeof(line), fp) != NULL) {
        if (strncmp(line, "key = s1$", 9) == 0) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(key, len, "%.200s", line + 6);
            found = true;
        }
    }
    if (fp != NULL) {
        fclose(fp);
    }
    return found;
}

static void refusals_over_reqrep(tst_daemon *f, const proto_auth_keyfile *fe,
                                 const proto_auth_keyfile *fe_new,
                                 const proto_auth_keyfile *watcher)
{
    base_buf b;
    char msg[160];
    proto_auth_keyfile ghost, forged;
    base_buf_init(&b, 1u << 20);

    /* No proof at all. */
    build(&b, DECIDE_FAQ, NULL, 0, NULL);
    TST_EQ(send_raw(f->url, &b, msg, sizeof(msg)), PROTO_E_UNAUTHORIZED);
    TST_STREQ(msg, "missing field 'auth' (auth is on)");
    /* A client rlfeedd does not know. */
    make_key(&ghost, "ghost", 99);
    build(&b, DECIDE_FAQ, &ghost, now_ms(), "g1");
    TST_EQ(send_raw(f->url, &b, msg, sizeof(msg)), PROTO_E_UNAUTHORIZED);
    TST_STREQ(msg, "unknown client");
    /* fe's name with another client's key. */
    forged = *watcher;
    strcpy(forged.client, "fe");
    build(&b, DECIDE_FAQ, &forged, now_ms(), "w1");
    TST_EQ(send_raw(f->url, &b, msg, sizeof(msg)), PROTO_E_UNAUTHORIZED);
    TST_STREQ(msg, "wrong mac: not signed with a key of client fe");
    /* A proof 2 minutes old (the window is 30 s) and one from the future. */
    build(&b, DECIDE_FAQ, fe, now_ms() - 120000, "s1");
    TST_EQ(send_raw(f->url, &b, msg, sizeof(msg)), PROTO_E_UNAUTHORIZED);
    TST_TRUE(strncmp(msg, "stale request", 13) == 0);
    build(&b, DECIDE_FAQ, fe, now_ms() + 120000, "s2");
    TST_EQ(send_raw(f->url, &b, msg, sizeof(msg)), PROTO_E_UNAUTHORIZED);
    /* A good request is served once; the same bytes again are a replay. */
    build(&b, DECIDE_FAQ, fe, now_ms(), "r1");
    TST_EQ(send_raw(f->url, &b, msg, sizeof(msg)), PROTO_E_NONE);
    TST_EQ(send_raw(f->url, &b, msg, sizeof(msg)), PROTO_E_UNAUTHORIZED);
    TST_STREQ(msg, "replayed request: this proof was already used");
    /* A tampered request (policy faq -> fap) after signing. */
    build(&b, DECIDE_FAQ, fe, now_ms(), "t1");
    uint8_t *p = NULL;
    for (size_t i = 0; i + 3 <= b.len && p == NULL; i++) {
        p = memcmp(b.data + i, "faq", 3) == 0 ? b.data + i : NULL;
    }
    TST_TRUE(p != NULL);
    if (p != NULL) {
        p[2] = 'p';
    }
    TST_EQ(send_raw(f->url, &b, msg, sizeof(msg)), PROTO_E_UNAUTHORIZED);
    /* The second key of a rotation works as well as the first. */
    build(&b, DECIDE_FAQ, fe_new, now_ms(), "k2");
    TST_EQ(send_raw(f->url, &b, msg, sizeof(msg)), PROTO_E_NONE);

    /* Scopes: fe may not read stats, nor use policy other; watcher may not decide. */
    build(&b, "{\"v\":1,\"op\":\"stats\",\"policy\":\"faq\"}", fe, now_ms(), "f1");
    TST_EQ(send_raw(f->url, &b, msg, sizeof(msg)), PROTO_E_FORBIDDEN);
    TST_STREQ(msg, "client fe may not stats");
    char other[512];
    snprintf(other, sizeof(other), "%s", DECIDE_FAQ);
    memcpy(strstr(other, "\"faq\""), "\"oth\"", 5);
    build(&b, other, fe, now_ms(), "f2");
    TST_EQ(send_raw(f->url, &b, msg, sizeof(msg)), PROTO_E_FORBIDDEN);
    TST_STREQ(msg, "client fe may not use policy oth");
    build(&b, DECIDE_FAQ, watcher, now_ms(), "f3");
    TST_EQ(send_raw(f->url, &b, msg, sizeof(msg)), PROTO_E_FORBIDDEN);
    build(&b, "{\"v\":1,\"op\":\"stats\"}", watcher, now_ms(), "f4");
    TST_EQ(send_raw(f->url, &b, msg, sizeof(msg)), PROTO_E_NONE);

    /* fe's outcome cap (burst 3, refilling once in 1000 s): the 4th feedback is refused. */
    const char *fb = "{\"v\":1,\"op\":\"feedback\",\"policy\":\"faq\",\"event_id\":\"nope\","
                     "\"signal\":\"resolved\"}";
    for (int i = 0; i < 3; i++) {
        char nonce[16];
        snprintf(nonce, sizeof(nonce), "o%d", i);
        build(&b, fb, fe, now_ms(), nonce);
        TST_EQ(send_raw(f->url, &b, msg, sizeof(msg)), PROTO_E_UNKNOWN_EVENT);
    }
    build(&b, fb, fe, now_ms(), "o3");
    TST_EQ(send_raw(f->url, &b, msg, sizeof(msg)), PROTO_E_RATE_LIMITED);
    TST_STREQ(msg, "client fe is over its outcome rate cap");
    base_buf_fini(&b);
}

/* PULL: an unsigned feedback is dropped and counted as unauthorized; a signed one is taken. */
static void refusal_over_pull(tst_daemon *f, const proto_auth_keyfile *admin)
{
    json_t *s = tst_stats(f);
    long long before = tst_rejected(s, "unauthorized");
    json_decref(s);
    rlfeed_push *p = NULL;
    TST_OK(rlfeed_push_open(f->pull_url, TIMEOUT_MS, &p));
    TST_OK(rlfeed_push_feedback(p, "faq", "e1", "resolved", 1.0, NULL));
    int64_t deadline = tst_now_ms() + 10000;
    long long after = before;
    while (after == before && tst_now_ms() < deadline) {
        s = tst_stats(f);
        after = tst_rejected(s, "unauthorized");
        json_decref(s);
        tst_nap();
    }
    TST_EQ(after, before + 1);
    rlfeed_push_close(p);

    /* Signed by admin: authenticated, then refused by the dispatcher (no such event). */
    s = tst_stats(f);
    long long unknown_before = tst_rejected(s, "unknown_event");
    json_decref(s);
    TST_OK(rlfeed_push_open(f->pull_url, TIMEOUT_MS, &p));
    TST_OK(rlfeed_push_use_key(p, admin));
    TST_OK(rlfeed_push_feedback(p, "faq", "no-such-event", "resolved", 1.0, NULL));
    deadline = tst_now_ms() + 10000;
    long long unknown_after = unknown_before;
    while (unknown_after == unknown_before && tst_now_ms() < deadline) {
        s = tst_stats(f);
        unknown_after = tst_rejected(s, "unknown_event");
        after = tst_rejected(s, "unauthorized");
        json_decref(s);
        tst_nap();
    }
    TST_EQ(unknown_after, unknown_before + 1);
    TST_EQ(after, before + 1); /* no new unauthorized */
    rlfeed_push_close(p);
}

/* HTTP: the Authorization header, for the API and for /metrics. */
static void refusals_over_http(tst_daemon *f, const proto_auth_keyfile *fe,
                               const proto_auth_keyfile *watcher)
{
    tst_http_response r;
    char hdr[600], line[700];
    const char *body = "{\"policy\":\"faq\",\"context\":{\"embedding\":[1,0,0,0]},"
                       "\"candidates\":[{\"id\":\"a\",\"base_logit\":0}]}";
    const char *json = "Content-Type: application/json\r\n";

    TST_TRUE(tst_http_request(f->http_url, "POST", "/api/v1/decide", json, body, strlen(body),
                              TIMEOUT_MS, &r));
    TST_EQ(r.status, 401);
    TST_TRUE(strstr(r.body, "\"unauthorized\"") != NULL);
    tst_http_response_fini(&r);

    TST_OK(proto_auth_http_header(hdr, sizeof(hdr), fe->client, fe->key, now_ms(), "h1", "POST",
                                  "/api/v1/decide", (const uint8_t *)body, strlen(body)));
    snprintf(line, sizeof(line), "%sAuthorization: %s\r\n", json, hdr);
    TST_TRUE(tst_http_request(f->http_url, "POST", "/api/v1/decide", line, body, strlen(body),
                              TIMEOUT_MS, &r));
    TST_EQ(r.status, 200);
    tst_http_response_fini(&r);
    /* The same header again: a replay. */
    TST_TRUE(tst_http_request(f->http_url, "POST", "/api/v1/decide", line, body, strlen(body),
                              TIMEOUT_MS, &r));
    TST_EQ(r.status, 401);
    tst_http_response_fini(&r);

    TST_TRUE(tst_http_request(f->http_url, "GET", "/metrics", NULL, NULL, 0, TIMEOUT_MS, &r));
    TST_EQ(r.status, 401);
    tst_http_response_fini(&r);
    TST_OK(proto_auth_http_header(hdr, sizeof(hdr), fe->client, fe->key, now_ms(), "h2", "GET",
                                  "/metrics", NULL, 0));
    snprintf(line, sizeof(line), "Authorization: %s\r\n", hdr);
    TST_TRUE(tst_http_request(f->http_url, "GET", "/metrics", line, NULL, 0, TIMEOUT_MS, &r));
    TST_EQ(r.status, 403);
    tst_http_response_fini(&r);
    TST_OK(proto_auth_http_header(hdr, sizeof(hdr), watcher->client, watcher->key, now_ms(), "h3",
                                  "GET", "/metrics", NULL, 0));
    snprintf(line, sizeof(line), "Authorization: %s\r\n", hdr);
    TST_TRUE(tst_http_request(f->http_url, "GET", "/metrics", line, NULL, 0, TIMEOUT_MS, &r));
    TST_EQ(r.status, 200);
    /* fe: stats and policy oth over REQ/REP, /metrics just now; its cap raised its alarm. */
    TST_TRUE(
        r.body != NULL &&
        strstr(r.body, "rlfeed_client_requests_total{client=\"fe\",result=\"forbidden\"} 3\n") !=
            NULL);
    TST_TRUE(r.body != NULL &&
             strstr(r.body, "rlfeed_client_alarms_total{client=\"fe\"} 1\n") != NULL);
    tst_http_response_fini(&r);
    /* Liveness needs no proof. */
    TST_TRUE(tst_http_request(f->http_url, "GET", "/healthz", NULL, NULL, 0, TIMEOUT_MS, &r));
    TST_EQ(r.status, 200);
    tst_http_response_fini(&r);
}

/* The CLI signs with --key; without it the same request is refused. */
/* GET @path with @k's proof: the status, and whether the body holds @needle (NULL: any). */
static int get_as(tst_daemon *f, const proto_auth_keyfile *k, const char *path, const char *nonce,
                  const char *needle)
{
    tst_http_response r;
    char hdr[600], line[700];
    if (proto_auth_http_header(hdr, sizeof(hdr), k->client, k->key, now_ms(), nonce, "GET", path,
                               NULL, 0) != BASE_OK) {
        return -1;
    }
    snprintf(line, sizeof(line), "Authorization: %s\r\n", hdr);
    if (!tst_http_request(f->http_url, "GET", path, line, NULL, 0, TIMEOUT_MS, &r)) {
        return -1;
    }
    int status = r.status;
    bool has = needle == NULL || (r.body != NULL && strstr(r.body, needle) != NULL);
    if (!has) {
        printf("# %s: %d %s\n", path, status, r.body != NULL ? r.body : "");
    }
    tst_http_response_fini(&r);
    return has ? status : -2;
}

/*
 * A client limited to some policies reads only theirs over HTTP too: its policy's definition,
 * not another's, and no page that shows every policy (docs/configuration.md, policies).
 */
static void policy_limits_over_http(tst_daemon *f, const proto_auth_keyfile *dash,
                                    const proto_auth_keyfile *watcher)
{
    TST_EQ(get_as(f, dash, "/api/v1/policies/faq", "d1", "\"faq\""), 200);
    TST_EQ(get_as(f, dash, "/api/v1/policies/oth", "d2", "client dash may not use policy oth"),
           403);
    TST_EQ(get_as(f, dash, "/api/v1/policies", "d3", "client dash may see only some policies"),
           403);
    TST_EQ(get_as(f, dash, "/metrics", "d4", "client dash may see only some policies"), 403);
    TST_EQ(get_as(f, dash, "/dashboard/history.json", "d5", "may see only some policies"), 403);
    TST_EQ(get_as(f, watcher, "/api/v1/policies", "d6", "\"oth\""), 200);
    /* Its policy's stats leave out what covers the others: every client's counters. */
    const char *path = "/api/v1/stats?policy=faq";
    char hdr[600], line[700];
    tst_http_response r;
    TST_OK(proto_auth_http_header(hdr, sizeof(hdr), dash->client, dash->key, now_ms(), "d7", "GET",
                                  path, NULL, 0));
    snprintf(line, sizeof(line), "Authorization: %s\r\n", hdr);
    TST_TRUE(tst_http_request(f->http_url, "GET", path, line, NULL, 0, TIMEOUT_MS, &r));
    TST_EQ(r.status, 200);
    TST_TRUE(r.body != NULL && strstr(r.body, "\"faq\"") != NULL &&
             strstr(r.body, "\"watcher\"") == NULL && strstr(r.body, "\"dash\"") == NULL);
    tst_http_response_fini(&r);
    json_t *s = tst_stats(f);
    json_t *d = json_object_get(json_object_get(json_object_get(s, "auth"), "clients"), "dash");
    TST_EQ(json_integer_value(json_object_get(d, "forbidden")), 4);
    TST_EQ(json_integer_value(json_object_get(d, "accepted")), 2);
    json_decref(s);
}

static void cli_with_and_without_key(tst_daemon *f, const char *keydir)
{
    char key[600], log[600], url[700];
    snprintf(key, sizeof(key), "%s/watcher.key", keydir);
    snprintf(log, sizeof(log), "%s/cli.log", keydir);
    snprintf(url, sizeof(url), "--url=%s", f->url);
    const char *with[] = {"stats", url, "--key", key, "{}", NULL};
    const char *without[] = {"stats", url, "{}", NULL};
    TST_EQ(tst_run("RLFEED", with, log, 10000), 0);
    TST_EQ(tst_run("RLFEED", without, log, 10000), 1);
    TST_TRUE(tst_file_has(log, "\"unauthorized\""));
    chmod(key, 0644);
    TST_EQ(tst_run("RLFEED", with, log, 10000), 2);
    TST_TRUE(tst_file_has(log, "open to group or others"));
    chmod(key, 0600);
}

static void stats_count_per_client(tst_daemon *f, const proto_auth_keyfile *dash)
{
    json_t *s = tst_stats(f);
    json_t *clients = json_object_get(json_object_get(s, "auth"), "clients");
    json_t *fe = json_object_get(clients, "fe");
    /* stats, policy oth; then /metrics over HTTP */
    TST_EQ(json_integer_value(json_object_get(fe, "forbidden")), 3);
    TST_EQ(json_integer_value(json_object_get(fe, "alarms")), 1);
    TST_TRUE(json_integer_value(json_object_get(fe, "rate_limited")) == 1);
    /* wrong key, 2 stale, replay, tampered; then the HTTP replay */
    TST_EQ(json_integer_value(json_object_get(fe, "unauthorized")), 6);
    TST_TRUE(json_integer_value(json_object_get(fe, "accepted")) >= 6);
    TST_TRUE(json_integer_value(json_object_get(json_object_get(s, "auth"), "unknown")) >= 3);
    /* the ops pages count per client only: they are no request of the protocol; the JSON
     * API's refusals are (dash's two under /api/v1) */
    TST_EQ(tst_rejected(s, "forbidden"), 5);
    json_decref(s);

    /* The cap raised fe's alarm: health lists it, the log says so. */
    uint8_t *rep = NULL;
    size_t len = 0;
    char *text = NULL;
    TST_OK(rlfeed_client_health(f->c, &rep, &len));
    TST_OK(proto_json_from_msgpack(rep, len, &text));
    TST_TRUE(text != NULL &&
             strstr(text, "\"alarms\":[\"client fe: over its outcome cap\"]") != NULL);
    base_free(text);
    base_free(rep);
    TST_TRUE(tst_file_has(f->log, "client fe: alarm raised: over its outcome cap"));

    /* dash may see policy faq only: its health names no client (nor any policy). */
    base_buf b;
    rlfeed_client *c = NULL;
    base_buf_init(&b, 1 << 16);
    build(&b, "{\"v\":1,\"op\":\"health\"}", dash, now_ms(), "dash-health");
    TST_TRUE(rlfeed_client_open(f->url, TIMEOUT_MS, &c) == BASE_OK &&
             rlfeed_client_call(c, b.data, b.len, &rep, &len) == BASE_OK &&
             proto_json_from_msgpack(rep, len, &text) == BASE_OK);
    TST_TRUE(text != NULL && strstr(text, "\"ok\":true") != NULL && strstr(text, "alarms") == NULL);
    if (text != NULL && strstr(text, "alarms") != NULL) {
        printf("# %s\n", text);
    }
    base_free(text);
    base_free(rep);
    rlfeed_client_close(c);
    base_buf_fini(&b);
}

/*
 * A clean restart keeps the replay memory (security.md): the bytes of a request served
 * before it are refused after it, as a replay; a new proof is served.
 */
static void replay_memory_survives_restart(tst_daemon *f, const proto_auth_keyfile *fe)
{
    base_buf b, fresh;
    char msg[200];
    base_buf_init(&b, 1 << 16);
    base_buf_init(&fresh, 1 << 16);
    build(&b, DECIDE_FAQ, fe, now_ms(), "before-restart");
    TST_EQ(send_raw(f->url, &b, msg, sizeof(msg)), PROTO_E_NONE);
    TST_EQ(tst_daemon_stop(f), 0);
    TST_TRUE(tst_daemon_start(f, true, NULL));
    TST_TRUE(tst_file_has(f->log, "proofs of the last run restored"));
    TST_EQ(send_raw(f->url, &b, msg, sizeof(msg)), PROTO_E_UNAUTHORIZED);
    TST_STREQ(msg, "replayed request: this proof was already used");
    build(&fresh, DECIDE_FAQ, fe, now_ms(), "after-restart");
    TST_EQ(send_raw(f->url, &fresh, msg, sizeof(msg)), PROTO_E_NONE);
    base_buf_fini(&fresh);
    base_buf_fini(&b);
}

int main(void)
{
    tst_daemon f;
    proto_auth_keyfile admin, fe, fe_new, watcher, dash;
    char ka[PROTO_AUTH_KEY_STRING_LEN + 1], kf1[PROTO_AUTH_KEY_STRING_LEN + 1],
        kf2[PROTO_AUTH_KEY_STRING_LEN + 1], kd[PROTO_AUTH_KEY_STRING_LEN + 1], kw[600],
        config[4096], why[160], path[600];
    char *keydir = tst_mkdtemp("rlfeed-auth-keys");

    if (keydir == NULL || !key_new(keydir, kw, sizeof(kw))) {
        printf("Bail out! rlfeed key new failed\n");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/watcher.key", keydir);
    TST_OK(rlfeed_key_load(path, &watcher, why, sizeof(why)));
    make_key(&admin, "admin", 1);
    make_key(&fe, "fe", 2);
    make_key(&fe_new, "fe", 3);
    make_key(&dash, "dash", 4);
    stored(&dash, kd);
    stored(&admin, ka);
    stored(&fe, kf1);
    stored(&fe_new, kf2);
    snprintf(config, sizeof(config),
             "[server]\nauth = on\ntick_ms = 5\n"
             "[policy faq]\ndim = 4\nactions = a, b\nsignal.resolved = 1.0\nwindow_ms = 60000\n"
             "[policy oth]\ndim = 4\nactions = a, b\nsignal.resolved = 1.0\n"
             "[client admin]\nkey = %s\nops = admin\n"
             "[client fe]\nkey = %s, %s\nops = decide, feedback\npolicies = faq\n"
             "outcome_rate_per_s = 0.001\noutcome_burst = 3\n"
             "[client watcher]\nkey = %s\nops = ops\n"
             "[client dash]\nkey = %s\nops = ops\npolicies = faq\n",
             ka, kf1, kf2, kw, kd);
    if (!tst_daemon_init(&f, "rlfeed-auth", config)) {
        printf("Bail out! fixture\n");
        tst_daemon_fini(&f, false);
        return 1;
    }
    f.key = &admin;
    bool up = tst_daemon_start(&f, true, NULL);
    TST_TRUE(up);
    if (up) {
        refusals_over_reqrep(&f, &fe, &fe_new, &watcher);
        refusal_over_pull(&f, &admin);
        refusals_over_http(&f, &fe, &watcher);
        policy_limits_over_http(&f, &dash, &watcher);
        cli_with_and_without_key(&f, keydir);
        stats_count_per_client(&f, &dash);
        replay_memory_survives_restart(&f, &fe);
        TST_EQ(tst_daemon_stop(&f), 0);
    }
    tst_daemon_fini(&f, tst_failed > 0);
    tst_rm_rf(keydir);
    free(keydir);
    return tst_done();
}
