/*
 * The daemon's own audit entries and its JSON log lines, end to end:
 *
 *   1. rlfeedd (log_format = json, retention_ms = 0, keep_snapshots = 1,
 *      checkpoints every 100 ms) serves a little traffic until a retention
 *      run removes something: the audit stream gets a "retention" entry with
 *      its counts; every line the daemon wrote parses as JSON with ts,
 *      level, msg and pid, and the restore line carries "policy".
 *   2. Stopped, its reward_version changed in the config, started again:
 *      a second "restore" entry (the checkpoint's version) and a "config"
 *      entry with spec_from = spec-1 and spec_to = spec-2 (and the base
 *      model's llm-1 -> llm-2). Started once more, unchanged: no second "config"
 *      entry, although nothing was learned under spec-2 yet.
 *   3. `rlfeed audit --json` lists restore, retention and config with their
 *      fields; `rlfeed history --json` lists none of them (only the
 *      registry's actions); `rlfeed audit` (text) exits 0.
 */
#include <hiredis.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "daemon.h"
#include "proc.h"
#include "storage/server.h"
#include "storage/store.h"
#include "tap.h"

#define CONFIG_FMT                                                                                 \
    "[server]\n"                                                                                   \
    "tick_ms = 2\n"                                                                                \
    "snapshot_interval_ms = 100\n"                                                                 \
    "retention_ms = 0\n"                                                                           \
    "keep_snapshots = 1\n"                                                                         \
    "log_format = json\n"                                                                          \
    "instance_id = audit-test\n"                                                                   \
    "[policy p]\n"                                                                                 \
    "dim = 2\n"                                                                                    \
    "actions = a0, a1\n"                                                                           \
    "window_ms = %d\n"                                                                             \
    "reward_version = %s\n"                                                                        \
    "base_model_version = %s\n"                                                                    \
    "[signal p.ok]\n"                                                                              \
    "kind = flag\n"

static const char *const IDS[2] = {"a0", "a1"};

/* spec-1 goes with base model llm-1 and 30 ms windows, spec-2 with llm-2 and an hour. */
static void config_text(const char *spec, char *out, size_t size)
{
    bool one = strcmp(spec, "spec-1") == 0;
    (void)snprintf(out, size, CONFIG_FMT, one ? 30 : 3600000, spec, one ? "llm-1" : "llm-2");
}

static bool write_config(const tst_daemon *f, const char *spec)
{
    char text[1024];
    config_text(spec, text, sizeof(text));
    FILE *fp = fopen(f->conf, "w");
    bool ok = fp != NULL && fputs(text, fp) >= 0;
    if (fp != NULL) {
        ok = fclose(fp) == 0 && ok;
    }
    return ok;
}

static bool play(tst_daemon *f, int i)
{
    float x[2] = {(float)(i % 3) - 1.0f, 0.5f}, lg[2] = {0.0f, 0.0f};
    char ev[32], oid[40];
    rlfeed_reply r;
    snprintf(ev, sizeof(ev), "au-%d", i);
    snprintf(oid, sizeof(oid), "au-%d-o", i);
    rlfeed_decide_opts o = {.event_id = ev};
    base_err e = rlfeed_client_decide_ex(f->c, "p", &o, x, 2, 2, IDS, lg, &r);
    /* Feedback waits for Redis (ack_timeout_ms); on a loaded machine it may be answered
     * unavailable, and is then sent again: its outcome id makes the retry idempotent. */
    bool decided = e == BASE_OK && r.ok;
    for (int tries = 0; decided && tries < 5; tries++) {
        e = rlfeed_client_feedback(f->c, "p", ev, "ok", 1.0, oid, &r);
        if (e != BASE_OK || r.ok || r.error.code != PROTO_E_UNAVAILABLE) {
            break;
        }
    }
    if (e != BASE_OK || !r.ok) {
        printf("# play %d: %s %s: %s\n", i, base_strerror(e),
               e == BASE_OK ? rlfeed_errcode_name(r.error.code) : "",
               e == BASE_OK ? r.error.message : "");
        return false;
    }
    return true;
}

/* How many audit entries of @policy have action @action (-1 on a read error). */
static long count_action(sto_store *s, const char *action)
{
    sto_audit_entry *a = NULL;
    size_t n = 0;
    long k = 0;
    if (sto_audit_read(s, "p", "", 100000, &a, &n) != BASE_OK) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *v = sto_audit_field(&a[i], "action");
        k += v != NULL && strcmp(v, action) == 0;
    }
    sto_audit_free(a, n);
    return k;
}

/* Every line of @path is a JSON object with the log fields; how many carry "policy". */
static bool log_is_json(const char *path, int *out_lines, int *out_policy)
{
    FILE *fp = fopen(path, "r");
    char line[8192];
    bool ok = fp != NULL;
    *out_lines = *out_policy = 0;
    while (ok && fgets(line, sizeof(line), fp) != NULL) {
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        ok = json_is_object(o) && json_is_string(json_object_get(o, "ts")) &&
             json_is_string(json_object_get(o, "level")) &&
             json_is_string(json_object_get(o, "msg")) &&
             json_is_integer(json_object_get(o, "pid"));
        if (!ok) {
            printf("# not a JSON log line: %s", line);
        }
        *out_policy += json_is_string(json_object_get(o, "policy"));
        (*out_lines)++;
        json_decref(o);
    }
    if (fp != NULL) {
        fclose(fp);
    }
    return ok;
}

/* Run `rlfeed ARGS...` with stdout and stderr to @log; its exit status, or -1. */
static int run_cli(const char *log, const char *const *args)
{
    return tst_run("RLFEED", args, log, 60000);
}

static json_t *find_action(json_t *arr, const char *action, size_t nth)
{
    size_t i, seen = 0;
    json_t *o;
    json_array_foreach(arr, i, o)
    {
        const char *a = json_string_value(json_object_get(o, "action"));
        if (a != NULL && strcmp(a, action) == 0 && seen++ == nth) {
            return o;
        }
    }
    return NULL;
}

static const char *str_of(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v != NULL ? v : "";
}

int main(void)
{
    if (tst_env_path("RLFEED") == NULL) {
        tst_skip_all("RLFEED (the rlfeed binary) is not set");
    }
    char text[1024];
    config_text("spec-1", text, sizeof(text));
    tst_daemon f;
    if (!tst_daemon_init(&f, "rlfeed-audit", text)) {
        return tst_done();
    }
    char err[256] = "";
    sto_store *s = NULL;
    TST_OK(sto_store_open(sto_server_url(f.redis), 5000, &s, err, sizeof(err)));
    TST_TRUE(tst_daemon_start(&f, true, NULL));

    /* 1. Traffic until a retention run removed something. */
    int i = 0;
    bool played = true;
    int64_t deadline = tst_now_ms() + 30000;
    while (count_action(s, "retention") < 1 && tst_now_ms() < deadline && played) {
        for (int k = 0; k < 20 && played; k++) {
            played = play(&f, i++);
        }
    }
    TST_TRUE(played);
    TST_TRUE(count_action(s, "retention") >= 1);
    TST_EQ(count_action(s, "restore"), 1);
    TST_EQ(count_action(s, "config"), 0); /* no checkpoint at the first start */
    json_t *st = tst_stats(&f);
    TST_EQ(json_integer_value(json_object_get(json_object_get(st, "storage"), "audit_failed")), 0);
    TST_TRUE(json_is_integer(json_object_get(json_object_get(st, "storage"), "audit_failed")));
    json_decref(st);
    /* Nothing pending at the stop, so the next start learns nothing (below). */
    long long pending = -1;
    for (int64_t dl = tst_now_ms() + 10000; pending != 0 && tst_now_ms() < dl; tst_nap()) {
        st = tst_stats(&f);
        pending = tst_stat_join(st, "p", "pending");
        json_decref(st);
    }
    TST_EQ(pending, 0);
    TST_EQ(tst_daemon_stop(&f), 0);
    base_snapshot *m1 = NULL;
    bool found = false;
    TST_OK(sto_store_model_get_online(s, "p", &m1, &found));
    TST_TRUE(found && m1 != NULL && strcmp(m1->spec_version, "spec-1") == 0);
    int lines = 0, with_policy = 0;
    TST_TRUE(log_is_json(f.log, &lines, &with_policy));
    TST_TRUE(lines >= 3);
    TST_TRUE(with_policy >= 1);

    /* 2. A new reward spec: restore and config entries. */
    TST_TRUE(write_config(&f, "spec-2"));
    TST_TRUE(tst_daemon_start(&f, true, NULL));
    rlfeed_reply r;
    float x[2] = {0.5f, 0.5f}, lg[2] = {0.0f, 0.0f};
    TST_OK(rlfeed_client_decide(f.c, "p", NULL, x, 2, 2, IDS, lg, &r));
    TST_TRUE(r.ok);
    TST_EQ(tst_daemon_stop(&f), 0);
    /*
     * Its checkpoint at the stop (a decision was made: a new log position) holds the same
     * head, as nothing was learned under spec-2 (the hour-long window is open): it keeps the
     * spec it learned under, so a promotion cannot take it for spec-2's.
     */
    base_snapshot *m2 = NULL;
    TST_OK(sto_store_model_get_online(s, "p", &m2, &found));
    TST_TRUE(found && m2 != NULL && m1 != NULL);
    TST_EQ(m2 != NULL ? m2->n_updates : 0, m1 != NULL ? m1->n_updates : 1);
    TST_STREQ(m2 != NULL ? m2->spec_version : "", "spec-1");
    base_snapshot_free(m1);
    base_snapshot_free(m2);
    TST_EQ(count_action(s, "restore"), 2);
    TST_EQ(count_action(s, "config"), 1);
    /*
     * Started again with nothing changed: a restore entry, and no second config entry,
     * although the checkpoint still says spec-1 (nothing learned under spec-2 yet).
     */
    TST_TRUE(tst_daemon_start(&f, true, NULL));
    TST_EQ(tst_daemon_stop(&f), 0);
    TST_EQ(count_action(s, "restore"), 3);
    TST_EQ(count_action(s, "config"), 1);

    /* 3. rlfeed audit and history. */
    char out[700];
    snprintf(out, sizeof(out), "%s/audit.json", f.dir);
    const char *audit_json[] = {"audit",  "--policy", "p", "--redis", sto_server_url(f.redis),
                                "--json", NULL};
    TST_EQ(run_cli(out, audit_json), 0);
    json_error_t jerr;
    json_t *arr = json_load_file(out, 0, &jerr);
    TST_TRUE(json_is_array(arr));
    json_t *r1 = find_action(arr, "restore", 0), *r2 = find_action(arr, "restore", 1);
    json_t *cfg = find_action(arr, "config", 0), *ret = find_action(arr, "retention", 0);
    TST_TRUE(r1 != NULL && r2 != NULL && cfg != NULL && ret != NULL);
    TST_STREQ(str_of(r1, "who"), "audit-test");
    TST_STREQ(str_of(r1, "version"), "0");
    TST_STREQ(str_of(r1, "spec"), "spec-1");
    TST_TRUE(strcmp(str_of(r2, "version"), "0") != 0);
    TST_STREQ(str_of(r2, "spec"), "spec-2");
    TST_STREQ(str_of(cfg, "spec_from"), "spec-1");
    TST_STREQ(str_of(cfg, "spec_to"), "spec-2");
    TST_STREQ(str_of(cfg, "base_from"), "llm-1");
    TST_STREQ(str_of(cfg, "base_to"), "llm-2");
    TST_STREQ(str_of(r2, "base"), "llm-2");
    TST_TRUE(strcmp(str_of(cfg, "config_hash_from"), str_of(cfg, "config_hash_to")) != 0);
    TST_STREQ(str_of(cfg, "version"), str_of(r2, "version"));
    TST_TRUE(strlen(str_of(cfg, "reason")) > 0);
    long long removed = 0;
    const char *keys[] = {"decisions", "outcomes", "joined", "snapshots"};
    for (size_t k = 0; k < 4; k++) {
        removed += strtoll(str_of(ret, keys[k]), NULL, 10);
    }
    TST_TRUE(removed > 0);
    TST_STREQ(str_of(ret, "who"), "audit-test");
    TST_TRUE(strlen(str_of(ret, "when")) == 24);
    json_decref(arr);

    const char *history_json[] = {"history", "--policy", "p", "--redis", sto_server_url(f.redis),
                                  "--json",  NULL};
    snprintf(out, sizeof(out), "%s/history.json", f.dir);
    TST_EQ(run_cli(out, history_json), 0);
    arr = json_load_file(out, 0, &jerr);
    TST_TRUE(json_is_array(arr) && json_array_size(arr) == 0);
    json_decref(arr);
    /* The newest three: the config entry, then perhaps a retention run at the next stop. */
    const char *audit_text[] = {"audit",   "--policy", "p", "--redis", sto_server_url(f.redis),
                                "--limit", "3",        NULL};
    snprintf(out, sizeof(out), "%s/audit.txt", f.dir);
    TST_EQ(run_cli(out, audit_text), 0);
    tst_print_file(out);
    TST_TRUE(tst_file_has(out, "config"));
    TST_TRUE(tst_file_has(out, "spec_from spec-1"));

    /* One line per entry, also for a value with line breaks (a policy-put's diff). */
    redisContext *rc = redisConnectUnix(sto_server_url(f.redis) + strlen("unix:"));
    redisReply *rr = rc != NULL && !rc->err
                         ? redisCommand(rc,
                                        "XADD rlfeed:{p}:audit * moved 0 action note who t "
                                        "diff %s",
                                        "- a\n+ b\n")
                         : NULL;
    TST_TRUE(rr != NULL && rr->type == REDIS_REPLY_STRING);
    freeReplyObject(rr);
    redisFree(rc);
    const char *audit_one[] = {"audit",   "--policy", "p", "--redis", sto_server_url(f.redis),
                               "--limit", "1",        NULL};
    snprintf(out, sizeof(out), "%s/audit-one.txt", f.dir); /* a new file: run_cli appends */
    TST_EQ(run_cli(out, audit_one), 0);
    tst_print_file(out);
    FILE *fp = fopen(out, "r");
    int out_lines = 0, ch;
    while (fp != NULL && (ch = fgetc(fp)) != EOF) {
        out_lines += ch == '\n';
    }
    if (fp != NULL) {
        fclose(fp);
    }
    TST_TRUE(tst_file_has(out, "diff - a + b"));
    TST_EQ(out_lines, 2); /* the header and the entry */

    /* A mistyped policy is refused, not shown as an empty trail. */
    const char *history_typo[] = {"history", "--policy", "pp", "--redis", sto_server_url(f.redis),
                                  NULL};
    snprintf(out, sizeof(out), "%s/typo.txt", f.dir);
    TST_EQ(run_cli(out, history_typo), 2);
    TST_TRUE(tst_file_has(out, "no policy pp in this Redis"));

    sto_store_close(s);
    tst_daemon_fini(&f, tst_failed > 0);
    return tst_done();
}
