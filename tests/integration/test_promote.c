/*
 * rlfeed promote, rollback, history and serve against a private
 * redis-server, no rlfeedd: a synthetic policy (tests/helpers/promote_world.h)
 * with a truly better candidate (a ridge head trained on the rewards) and a
 * truly worse one (trained on the negated rewards). The bad one is held
 * (exit 3) and production stays; a dry run changes nothing; the good one is
 * promoted (exit 0); rollback restores the previous production; history
 * lists every decision in order with its report; too little data, another
 * reward spec and a deterministic logger (no support: the gate's own
 * fitness) are not fit (exit 4); bad arguments are usage errors (exit 2).
 */
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "proc.h"
#include "promote_world.h"
#include "storage/server.h"
#include "storage/store.h"
#include "tap.h"

#define GOOD 1000
#define BAD 2000
#define OLD_SPEC 3000
#define GOOD_LATE 4000
#define N_EXAMPLES 3000

typedef struct fixture {
    sto_server *srv;
    sto_store *s;
    char *dir;
    char url[600];
} fixture;

/* The value at a dotted path of @o ("estimates.difference.dr.lo"), or NULL. */
static json_t *jget(json_t *o, const char *path)
{
    char key[128];
    while (o != NULL && *path != '\0') {
        const char *dot = strchr(path, '.');
        size_t n = dot != NULL ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof(key)) {
            return NULL;
        }
        memcpy(key, path, n);
        key[n] = '\0';
        o = json_is_array(o) ? json_array_get(o, (size_t)strtoul(key, NULL, 10))
                             : json_object_get(o, key);
        path += n + (dot != NULL);
    }
    return o;
}

static const char *jstr(json_t *o, const char *path)
{
    const char *v = json_string_value(jget(o, path));
    return v != NULL ? v : "(none)";
}

static long long jint(json_t *o, const char *path)
{
    json_t *v = jget(o, path);
    return json_is_integer(v) ? (long long)json_integer_value(v) : -999;
}

static double jnum(json_t *o, const char *path)
{
    json_t *v = jget(o, path);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static uint64_t production(fixture *f, const char *policy)
{
    sto_registry g = {0};
    return sto_registry_get(f->s, policy, &g) == BASE_OK ? g.production : UINT64_MAX;
}

/* Whether the newest audit entry of @policy has @field = @want. */
static bool newest_audit_says(fixture *f, const char *policy, const char *field, const char *want)
{
    sto_audit_entry *e = NULL;
    size_t n = 0;
    bool ok = sto_audit_read_newest(f->s, policy, 1, &e, &n) == BASE_OK && n == 1;
    const char *v = ok ? sto_audit_field(&e[0], field) : NULL;
    if (v == NULL || strcmp(v, want) != 0) {
        printf("# newest audit entry of %s: %s = %s, not %s\n", policy, field,
               v != NULL ? v : "(absent)", want);
        ok = false;
    }
    sto_audit_free(e, n);
    return ok;
}

static uint64_t audit_len(fixture *f, const char *policy)
{
    uint64_t n = UINT64_MAX;
    return sto_audit_len(f->s, policy, &n) == BASE_OK ? n : UINT64_MAX;
}

/* rlfeed <cmd> --redis URL --who tester <args...>; the exit status, JSON stdout in *out. */
static int cli(fixture *f, json_t **out, const char *cmd, const char *const *args)
{
    const char *argv[40];
    int n = 0;
    argv[n++] = cmd;
    argv[n++] = "--redis";
    argv[n++] = f->url;
    argv[n++] = "--who";
    argv[n++] = "tester@test";
    for (int i = 0; args[i] != NULL && n < 39; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    int rc = pw_run(f->dir, out, argv);
    if (rc != 0 && rc != 3 && rc != 4) {
        char path[4200];
        (void)snprintf(path, sizeof(path), "%s/err.txt", f->dir);
        char *err = pw_slurp(path);
        printf("# rlfeed %s exit %d: %s", cmd, rc, err != NULL ? err : "");
        free(err);
    }
    return rc;
}

/* The last command's stdout as TAP comments: the log shows what a person would see. */
static void show_output(fixture *f)
{
    char path[4200];
    (void)snprintf(path, sizeof(path), "%s/out.txt", f->dir);
    char *text = pw_slurp(path);
    for (char *line = text; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        printf("#   %.*s\n", nl != NULL ? (int)(nl - line) : (int)strlen(line), line);
        line = nl != NULL ? nl + 1 : NULL;
    }
    free(text);
}

static bool save(fixture *f, base_snapshot *m)
{
    bool ok = m != NULL && sto_store_model_save(f->s, m) == BASE_OK;
    base_snapshot_free(m);
    return ok;
}

/* @n examples of policy "narrow" that always served candidate 0 with probability 1. */
static bool write_narrow(fixture *f, size_t n)
{
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        base_joined *j = pw_example("narrow", 4, i);
        ok = j != NULL;
        if (ok) {
            j->decision->chosen = 0;
            j->decision->pmf[0] = 1.0f;
            j->decision->pmf[1] = 0.0f;
            j->decision->pmf[2] = 0.0f;
            sto_append a = {.kind = STO_JOINED, .policy = "narrow", .rec = j};
            ok = sto_store_append(f->s, &a, 1) == BASE_OK && a.out_err == BASE_OK;
        }
        base_joined_free(j);
    }
    return ok;
}

static bool setup_data(fixture *f)
{
    bool ok = true;
    /* An older reward spec first (skipped), then the spec in force with some unknowns. */
    ok = ok && pw_write_joined(f->s, "faq", 1, 0, 200, "spec-0", 0, NULL);
    ok = ok && pw_write_joined(f->s, "faq", 1, 200, N_EXAMPLES, PW_SPEC, 25, NULL);
    ok = ok && save(f, pw_train("faq", GOOD, 1.0, 2000));
    ok = ok && save(f, pw_train("faq", BAD, -1.0, 2000));
    base_snapshot *old = pw_train("faq", OLD_SPEC, 1.0, 2000);
    if (old != NULL) {
        base_strlcpy(old->spec_version, "spec-0", sizeof(old->spec_version));
    }
    ok = ok && save(f, old);
    /* A good candidate that learned the first 1000 stored examples (ids 200..1199). */
    base_snapshot *late = pw_train("faq", GOOD_LATE, 1.0, 2000);
    ok = ok && late != NULL && pw_joined_id(f->s, "faq", 1199, late->last_joined_id);
    ok = ok && save(f, late);
    /* online names the good one: put it again through the daemon's path. */
    base_snapshot *online = pw_train("faq", GOOD, 1.0, 2000);
    ok = ok && online != NULL && sto_store_model_put(f->s, online) == BASE_OK;
    base_snapshot_free(online);
    /* A policy logged deterministically (pmf [1, 0, 0]): no support for other actions. */
    ok = ok && write_narrow(f, 1200);
    ok = ok && save(f, pw_train("narrow", GOOD, 1.0, 2000));
    /* A policy with too little data. */
    ok = ok && pw_write_joined(f->s, "small", 2, 0, 50, PW_SPEC, 0, NULL);
    ok = ok && save(f, pw_train("small", GOOD, 1.0, 500));
    return ok;
}

static void bad_candidate_is_held(fixture *f)
{
    json_t *j = NULL;
    const char *args[] = {"--policy", "faq", "--candidate", "2000", "--json", NULL};
    TST_EQ(cli(f, &j, "promote", args), 3);
    TST_STREQ(jstr(j, "verdict"), "hold");
    TST_EQ(jint(j, "candidate"), BAD);
    TST_EQ(jint(j, "production"), 0);
    TST_TRUE(json_is_null(jget(j, "production_snapshot")));
    /* 3200 read: 200 of the old spec, 120 unknown (every 25th of 3000), 2880 used. */
    TST_EQ(jint(j, "read"), 3200);
    TST_EQ(jint(j, "skipped.spec_version"), 200);
    TST_EQ(jint(j, "skipped.unknown"), 120);
    TST_EQ(jint(j, "n"), 2880);
    TST_STREQ(jstr(j, "spec_version"), PW_SPEC);
    /* Truly worse: the whole interval of the difference is below 0 (about -0.17). */
    TST_TRUE(jnum(j, "estimates.difference.dr.hi") < 0.0);
    TST_TRUE(jnum(j, "estimates.production.dr.est") > 0.4 &&
             jnum(j, "estimates.production.dr.est") < 0.6);
    TST_NEAR(jnum(j, "in_sample"), 0.0, 1e-12);
    TST_TRUE(json_is_string(jget(j, "audit_id")));
    json_decref(j);
    TST_EQ(production(f, "faq"), 0);
    TST_EQ(audit_len(f, "faq"), 1);
}

static void dry_run_changes_nothing(fixture *f)
{
    json_t *j = NULL;
    const char *table[] = {"--policy", "faq", "--candidate", "1000", "--dry-run", NULL};
    TST_EQ(cli(f, NULL, "promote", table), 0);
    show_output(f);
    const char *args[] = {"--policy", "faq", "--candidate", "1000", "--dry-run", "--json", NULL};
    TST_EQ(cli(f, &j, "promote", args), 0);
    TST_STREQ(jstr(j, "verdict"), "promote");
    TST_TRUE(json_is_true(jget(j, "dry_run")));
    TST_TRUE(json_is_null(jget(j, "audit_id")));
    json_decref(j);
    TST_EQ(production(f, "faq"), 0);
    TST_EQ(audit_len(f, "faq"), 1);
}

static void good_candidate_is_promoted(fixture *f)
{
    json_t *j = NULL;
    char plot[4200];
    (void)snprintf(plot, sizeof(plot), "%s/estimates.svg", f->dir);
    /* No --candidate: the registry's online (1000). */
    const char *args[] = {"--policy", "faq", "--json", "--plot", plot, "--seed", "5", NULL};
    TST_EQ(cli(f, &j, "promote", args), 0);
    TST_STREQ(jstr(j, "verdict"), "promote");
    TST_EQ(jint(j, "candidate"), GOOD);
    TST_TRUE(jnum(j, "estimates.difference.dr.lo") > 0.0); /* truly better: about +0.17 */
    TST_TRUE(jnum(j, "estimates.candidate.ess_fraction") > 0.2);
    TST_NEAR(jnum(j, "estimates.candidate.unsupported_mass"), 0.0, 1e-12);
    TST_NEAR(jnum(j, "min_propensity"), 1.0 / 3.0, 1e-6);
    TST_EQ(jint(j, "seed"), 5);
    TST_STREQ(jstr(j, "who"), "tester@test");
    json_decref(j);
    TST_EQ(production(f, "faq"), GOOD);
    TST_EQ(audit_len(f, "faq"), 2);
    char *svg = pw_slurp(plot);
    TST_TRUE(svg != NULL && strncmp(svg, "<svg", 4) == 0 && strstr(svg, "</svg>") != NULL);
    free(svg);
    uint64_t *pin = NULL;
    size_t n_pin = 0;
    TST_OK(sto_pinned_get(f->s, "faq", &pin, &n_pin));
    TST_TRUE(n_pin == 1 && pin[0] == GOOD);
    base_free(pin);

    /* Again: already production, exit 3, nothing recorded. */
    const char *again[] = {"--policy", "faq", NULL};
    TST_EQ(cli(f, NULL, "promote", again), 3);
    TST_EQ(audit_len(f, "faq"), 2);

    /* The bad one against production 1000 now: held. */
    const char *bad[] = {"--policy", "faq", "--candidate", "2000", "--json", NULL};
    TST_EQ(cli(f, &j, "promote", bad), 3);
    TST_EQ(jint(j, "production"), GOOD);
    TST_EQ(jint(j, "production_snapshot.version"), GOOD);
    TST_TRUE(jnum(j, "estimates.difference.dr.hi") < 0.0);
    json_decref(j);
    TST_EQ(production(f, "faq"), GOOD);
}

static void rollback_restores_previous(fixture *f)
{
    json_t *j = NULL;
    /* A reason with a line break and a terminal escape: history's table shows it on one line. */
    const char *args[] = {"--policy", "faq", "--json", "--reason", "tidy\nup\x1b[2J", NULL};
    TST_EQ(cli(f, &j, "rollback", args), 0);
    TST_EQ(jint(j, "from"), GOOD);
    TST_EQ(jint(j, "to"), 0);
    json_decref(j);
    TST_EQ(production(f, "faq"), 0);
    /* Nothing ever moved production to a version that is not there: --to must exist. */
    const char *missing[] = {"--policy", "faq", "--to", "777", NULL};
    TST_EQ(cli(f, NULL, "rollback", missing), 2);
    const char *same[] = {"--policy", "faq", "--to", "0", NULL};
    TST_EQ(cli(f, NULL, "rollback", same), 2);
    TST_EQ(production(f, "faq"), 0);
    TST_EQ(audit_len(f, "faq"), 4);
}

static void history_lists_decisions_in_order(fixture *f)
{
    json_t *j = NULL;
    const char *args[] = {"--policy", "faq", "--json", NULL};
    TST_EQ(cli(f, &j, "history", args), 0);
    TST_EQ(json_array_size(j), 4);
    /* held 2000, promoted 1000, held 2000, rolled back to 0 */
    TST_STREQ(jstr(j, "0.action"), "promote");
    TST_STREQ(jstr(j, "0.verdict"), "hold");
    TST_TRUE(json_is_false(jget(j, "0.moved")));
    TST_EQ(jint(j, "0.to"), BAD);
    TST_EQ(jint(j, "0.report.n"), 2880);
    TST_STREQ(jstr(j, "1.verdict"), "promote");
    TST_TRUE(json_is_true(jget(j, "1.moved")));
    TST_EQ(jint(j, "1.from"), 0);
    TST_EQ(jint(j, "1.to"), GOOD);
    TST_STREQ(jstr(j, "1.report.verdict"), "promote");
    TST_STREQ(jstr(j, "1.who"), "tester@test");
    TST_STREQ(jstr(j, "2.verdict"), "hold");
    TST_EQ(jint(j, "2.report.production"), GOOD);
    TST_STREQ(jstr(j, "3.action"), "rollback");
    TST_EQ(jint(j, "3.from"), GOOD);
    TST_EQ(jint(j, "3.to"), 0);
    TST_TRUE(strlen(jstr(j, "0.when")) == 24 && jstr(j, "0.when")[23] == 'Z');
    json_decref(j);

    const char *two[] = {"--policy", "faq", "--json", "--limit", "2", NULL};
    TST_EQ(cli(f, &j, "history", two), 0);
    TST_EQ(json_array_size(j), 2);
    TST_STREQ(jstr(j, "1.action"), "rollback");
    json_decref(j);
    const char *table[] = {"--policy", "faq", NULL};
    TST_EQ(cli(f, NULL, "history", table), 0);
    show_output(f);
    char path[4200];
    (void)snprintf(path, sizeof(path), "%s/out.txt", f->dir);
    char *text = pw_slurp(path);
    TST_TRUE(text != NULL && strstr(text, "tidy up [2J") != NULL && strchr(text, '\x1b') == NULL);
    free(text);
    TST_EQ(cli(f, NULL, "audit", table), 0);
    text = pw_slurp(path);
    TST_TRUE(text != NULL && strstr(text, "tidy up [2J") != NULL && strchr(text, '\x1b') == NULL);
    free(text);
}

static void unfit_data_is_exit_4(fixture *f)
{
    json_t *j = NULL;
    const char *small[] = {"--policy", "small", "--candidate", "1000", "--json", NULL};
    TST_EQ(cli(f, &j, "promote", small), 4);
    TST_STREQ(jstr(j, "verdict"), "not_fit");
    TST_TRUE(strstr(jstr(j, "reason"), "min-samples") != NULL);
    TST_EQ(jint(j, "n"), 50);
    json_decref(j);
    TST_EQ(production(f, "small"), 0);
    TST_EQ(audit_len(f, "small"), 1); /* the refusal is recorded */

    const char *spec[] = {"--policy", "faq", "--candidate", "3000", "--json", NULL};
    TST_EQ(cli(f, &j, "promote", spec), 4);
    TST_TRUE(strstr(jstr(j, "reason"), "spec") != NULL);
    json_decref(j);

    /* The gate's own fitness: the candidate's mass where logging put none. */
    const char *narrow[] = {"--policy", "narrow", "--candidate", "1000", "--json", NULL};
    TST_EQ(cli(f, &j, "promote", narrow), 4);
    TST_STREQ(jstr(j, "verdict"), "not_fit");
    TST_TRUE(jnum(j, "estimates.candidate.unsupported_mass") > 0.5);
    printf("# narrow: %s\n", jstr(j, "reason"));
    json_decref(j);
    TST_EQ(production(f, "narrow"), 0);
    TST_EQ(audit_len(f, "narrow"), 1);

    /* A name this Redis has nothing of (a typo): refused, and no key of its own made. */
    const char *ghost[] = {"--policy", "fresh", "--json", NULL};
    TST_EQ(cli(f, &j, "promote", ghost), 2);
    json_decref(j);
    TST_EQ(audit_len(f, "fresh"), 0);
    const char *ghost_serve[] = {"--policy", "fresh", "--canary", "0.3", NULL};
    TST_EQ(cli(f, &j, "serve", ghost_serve), 2);
    json_decref(j);
    TST_EQ(audit_len(f, "fresh"), 0);
    /* A policy whose online head never checkpointed (its daemon started: an audit entry, as
     * every start writes): no candidate yet, not an error. */
    redisContext *rf = redisConnectUnix(sto_server_url(f->srv) + strlen("unix:"));
    redisReply *add = rf != NULL && !rf->err
                          ? redisCommand(rf, "XADD rlfeed:{fresh}:audit * action restore")
                          : NULL;
    TST_TRUE(add != NULL && add->type == REDIS_REPLY_STRING);
    if (add != NULL) {
        freeReplyObject(add);
    }
    if (rf != NULL) {
        redisFree(rf);
    }
    const char *fresh[] = {"--policy", "fresh", "--json", NULL};
    TST_EQ(cli(f, &j, "promote", fresh), 4);
    TST_STREQ(jstr(j, "verdict"), "not_fit");
    TST_TRUE(strstr(jstr(j, "reason"), "no candidate yet") != NULL);
    json_decref(j);
    TST_EQ(production(f, "fresh"), 0);
    TST_EQ(audit_len(f, "fresh"), 2);
    /* history names no version as refused: there was no candidate. */
    const char *hist[] = {"--policy", "fresh", NULL};
    TST_EQ(cli(f, NULL, "history", hist), 0);
    char path[4200];
    (void)snprintf(path, sizeof(path), "%s/out.txt", f->dir);
    char *text = pw_slurp(path);
    TST_TRUE(text != NULL && strstr(text, "0 stays (no candidate)") != NULL &&
             strstr(text, "(0 refused)") == NULL);
    free(text);

    /*
     * Candidate and production learned for different action lists (renamed or reordered
     * actions): not comparable position by position.
     */
    base_snapshot *was = pw_train("renamed", GOOD, 1.0, 2000);
    base_snapshot *now = pw_train("renamed", BAD, 1.0, 2000);
    if (was != NULL && now != NULL) {
        base_strlcpy(was->actions_hash, "a00000000000000a1", sizeof(was->actions_hash));
        base_strlcpy(now->actions_hash, "a00000000000000b2", sizeof(now->actions_hash));
    }
    TST_TRUE(save(f, was) && save(f, now));
    /* 2000 the newest checkpoint: the daemon could not serve 1000 under its list, so rollback
     * refuses; production 1000 all the same (set by hand), for promote to compare. */
    redisContext *rr = redisConnectUnix(sto_server_url(f->srv) + strlen("unix:"));
    for (int step = 0; step < 2; step++) {
        redisReply *hs =
            rr != NULL && !rr->err
                ? redisCommand(rr, step == 0 ? "HSET rlfeed:{renamed}:registry online 2000"
                                             : "HSET rlfeed:{renamed}:registry production 1000")
                : NULL;
        TST_TRUE(hs != NULL && hs->type == REDIS_REPLY_INTEGER);
        if (hs != NULL) {
            freeReplyObject(hs);
        }
        if (step == 0) {
            const char *to_good[] = {"--policy", "renamed", "--to", "1000", NULL};
            TST_EQ(cli(f, NULL, "rollback", to_good), 2);
            TST_EQ(production(f, "renamed"), 0);
            TST_EQ(audit_len(f, "renamed"), 0);
        }
    }
    if (rr != NULL) {
        redisFree(rr);
    }
    const char *renamed[] = {"--policy", "renamed", "--candidate", "2000", "--json", NULL};
    TST_EQ(cli(f, &j, "promote", renamed), 4);
    TST_STREQ(jstr(j, "verdict"), "not_fit");
    TST_TRUE(strstr(jstr(j, "reason"), "action list mismatch") != NULL);
    json_decref(j);
    TST_EQ(production(f, "renamed"), GOOD);
    /*
     * Production the base model, and a candidate older than a list change: the newest
     * checkpoint (online) says which list is in force.
     */
    base_snapshot *older = pw_train("relisted", GOOD, 1.0, 2000);
    base_snapshot *newest = pw_train("relisted", BAD, 1.0, 2000);
    if (older != NULL && newest != NULL) {
        base_strlcpy(older->actions_hash, "a00000000000000a1", sizeof(older->actions_hash));
        base_strlcpy(newest->actions_hash, "a00000000000000b2", sizeof(newest->actions_hash));
    }
    TST_TRUE(save(f, older) && newest != NULL && sto_store_model_put(f->s, newest) == BASE_OK);
    base_snapshot_free(newest);
    const char *relisted[] = {"--policy", "relisted", "--candidate", "1000", "--json", NULL};
    TST_EQ(cli(f, &j, "promote", relisted), 4);
    TST_TRUE(strstr(jstr(j, "reason"), "than the newest checkpoint, 2000") != NULL);
    printf("# relisted: %s\n", jstr(j, "reason"));
    json_decref(j);
    TST_EQ(production(f, "relisted"), 0);
    /* The newest checkpoint gone (erased, say): not checked, and not an error. */
    redisContext *rc = redisConnectUnix(sto_server_url(f->srv) + strlen("unix:"));
    redisReply *del =
        rc != NULL && !rc->err ? redisCommand(rc, "DEL rlfeed:{relisted}:model:2000") : NULL;
    TST_TRUE(del != NULL && del->type == REDIS_REPLY_INTEGER && del->integer == 1);
    if (del != NULL) {
        freeReplyObject(del);
    }
    if (rc != NULL) {
        redisFree(rc);
    }
    TST_EQ(cli(f, &j, "promote", relisted), 4);
    TST_TRUE(strstr(jstr(j, "reason"), "no joined examples") != NULL);
    json_decref(j);

    /* A sample floor above the window's n. */
    const char *many[] = {"--policy",      "faq",  "--candidate", "1000",
                          "--min-samples", "5000", "--dry-run",   NULL};
    TST_EQ(cli(f, NULL, "promote", many), 4);
    TST_EQ(production(f, "faq"), 0);
}

static void in_sample_and_holdout(fixture *f)
{
    json_t *j = NULL;
    const char *in[] = {"--policy", "faq", "--candidate", "4000", "--dry-run", "--json", NULL};
    TST_EQ(cli(f, &j, "promote", in), 0);
    /* It learned stream entries 200..1199: 960 of the 2880 used (40 of those are unknown). */
    TST_EQ(jint(j, "in_sample_n"), 960);
    TST_NEAR(jnum(j, "in_sample"), 960.0 / 2880.0, 1e-9);
    json_decref(j);
    const char *out[] = {"--policy",  "faq",    "--candidate", "4000",
                         "--holdout", "--json", "--dry-run",   NULL};
    TST_EQ(cli(f, &j, "promote", out), 0);
    TST_EQ(jint(j, "n"), 1920);
    TST_EQ(jint(j, "skipped.in_sample"), 960);
    TST_EQ(jint(j, "in_sample_n"), 0);
    json_decref(j);
    const char *cap[] = {"--policy", "faq",    "--candidate", "1000", "--dry-run", "--max-samples",
                         "1500",     "--json", "--window",    "1d",   NULL};
    TST_EQ(cli(f, &j, "promote", cap), 0);
    TST_EQ(jint(j, "n"), 1500);
    TST_EQ(jint(j, "skipped.older"), 1380);
    TST_EQ(jint(j, "window_ms"), 86400000);
    json_decref(j);
    TST_EQ(audit_len(f, "faq"), 5); /* dry runs: only the refused old-spec candidate's entry */
}

static void serve_sets_and_clears(fixture *f)
{
    json_t *j = NULL;
    /* The audit entry shows the share as stored, whatever its spelling. */
    const char *set[] = {"--policy", "faq",    "--mode", "production",
                         "--canary", "0x1p-2", "--json", NULL};
    TST_EQ(cli(f, &j, "serve", set), 0);
    TST_STREQ(jstr(j, "serve"), "production");
    TST_NEAR(jnum(j, "canary"), 0.25, 1e-12);
    json_decref(j);
    TST_TRUE(newest_audit_says(f, "faq", "canary", "0.25"));
    sto_registry g;
    TST_OK(sto_registry_get(f->s, "faq", &g));
    TST_TRUE(g.serve == STO_SERVE_PRODUCTION && g.canary == 0.25);
    const char *clear[] = {"--policy", "faq", "--clear", NULL};
    TST_EQ(cli(f, NULL, "serve", clear), 0);
    TST_OK(sto_registry_get(f->s, "faq", &g));
    TST_TRUE(g.serve == STO_SERVE_UNSET && g.canary < 0);
    /* Outside [0, 1]; subnormal (it would not read back, as 1e-310 is refused); blank-led. */
    static const char *const refused[] = {"2", "0x1p-1023", " 0.5"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        const char *bad[] = {"--policy", "faq", "--canary", refused[i], NULL};
        TST_EQ(cli(f, NULL, "serve", bad), 2);
    }
    /* -0 is stored as 0. */
    const char *minus0[] = {"--policy", "faq", "--canary", "-0", NULL};
    TST_EQ(cli(f, NULL, "serve", minus0), 0);
    TST_OK(sto_registry_get(f->s, "faq", &g));
    TST_TRUE(g.canary == 0.0 && !signbit(g.canary));
    TST_TRUE(newest_audit_says(f, "faq", "canary", "0"));
    TST_EQ(cli(f, NULL, "serve", clear), 0);
    const char *both[] = {"--policy", "faq", "--clear", "--mode", "online", NULL};
    TST_EQ(cli(f, NULL, "serve", both), 2);
    TST_EQ(audit_len(f, "faq"), 9);
}

static void bad_arguments_are_exit_2(fixture *f)
{
    const char *no_policy[] = {"--json", NULL};
    TST_EQ(cli(f, NULL, "promote", no_policy), 2);
    const char *unknown[] = {"--policy", "faq", "--frobnicate", NULL};
    TST_EQ(cli(f, NULL, "promote", unknown), 2);
    const char *window[] = {"--policy", "faq", "--window", "3x", NULL};
    TST_EQ(cli(f, NULL, "promote", window), 2);
    const char *est[] = {"--policy", "faq", "--estimator", "magic", NULL};
    TST_EQ(cli(f, NULL, "promote", est), 2);
    const char *conf[] = {"--policy", "faq", "--confidence", "1.5", NULL};
    TST_EQ(cli(f, NULL, "promote", conf), 2);
    const char *missing[] = {"--policy", "faq", "--candidate", "999", NULL};
    TST_EQ(cli(f, NULL, "promote", missing), 2);
    const char *nothing[] = {"--policy", "small", NULL};
    TST_EQ(cli(f, NULL, "rollback", nothing), 2);
    const char *limit[] = {"--policy", "faq", "--limit", "0", NULL};
    TST_EQ(cli(f, NULL, "history", limit), 2);
    /* No --redis and no RLFEED_REDIS. */
    const char *args[] = {"promote", "--policy", "faq", NULL};
    unsetenv("RLFEED_REDIS");
    TST_EQ(pw_run(f->dir, NULL, args), 2);
    /* Unreachable Redis. */
    const char *gone[] = {"history", "--policy", "faq", "--redis", "unix:/nonexistent/r.sock",
                          NULL};
    TST_EQ(pw_run(f->dir, NULL, gone), 2);
    TST_EQ(audit_len(f, "faq"), 9);
}

/* An empty or blank --reason is no reason: the entry gets the default. */
static void rollback_with_empty_reason(fixture *f)
{
    const char *args[] = {"--policy", "faq", "--reason", " \t", NULL};
    TST_EQ(cli(f, NULL, "rollback", args), 0);
    TST_EQ(production(f, "faq"), GOOD); /* undoes the rollback to 0 */
    TST_TRUE(newest_audit_says(f, "faq", "reason", "rollback to the version production replaced"));
    TST_EQ(audit_len(f, "faq"), 10);
}

int main(void)
{
    sto_server_opts opts = {NULL, NULL, "always", true, 10000, false};
    fixture f = {0};
    char err[512] = "";

    if (tst_env_path("RLFEED") == NULL) {
        tst_skip_all("RLFEED (the rlfeed binary) is not set");
    }
    if (system("command -v redis-server > /dev/null 2>&1") != 0) {
        tst_skip_all("redis-server not found");
    }
    f.dir = tst_mkdtemp("rlfeed-promote");
    TST_TRUE(f.dir != NULL);
    base_err e = f.dir != NULL ? sto_server_start(&opts, &f.srv, err, sizeof(err)) : BASE_EIO;
    TST_OK(e);
    if (e != BASE_OK) {
        printf("# redis: %s\n", err);
        goto done;
    }
    (void)snprintf(f.url, sizeof(f.url), "%s", sto_server_url(f.srv));
    e = sto_store_open(f.url, 5000, &f.s, err, sizeof(err));
    TST_OK(e);
    if (e != BASE_OK || !setup_data(&f)) {
        TST_TRUE(false);
        goto done;
    }
    bad_candidate_is_held(&f);
    dry_run_changes_nothing(&f);
    good_candidate_is_promoted(&f);
    rollback_restores_previous(&f);
    history_lists_decisions_in_order(&f);
    unfit_data_is_exit_4(&f);
    in_sample_and_holdout(&f);
    serve_sets_and_clears(&f);
    bad_arguments_are_exit_2(&f);
    rollback_with_empty_reason(&f);
done:
    sto_store_close(f.s);
    sto_server_stop(f.srv);
    if (f.dir != NULL) {
        tst_rm_rf(f.dir);
        free(f.dir);
    }
    return tst_done();
}
