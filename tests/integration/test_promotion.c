/*
 * The production side end to end: rlfeedd on a real Redis, serving
 * `serve = production` with a canary share of 0.2, simulated traffic whose
 * best answer is known, and the nightly job run as the `rlfeed` program.
 *
 *   1. Before any promotion the production slot serves the base model
 *      (version 0); the online slot learns from everything.
 *   2. `rlfeed promote` refuses a candidate that is truly worse (a head the
 *      test trains on the same joined stream with negated rewards): exit 3,
 *      production unchanged.
 *   3. It promotes the online head, which is truly better: exit 0; rlfeedd
 *      serves it from the production slot within a second, and the reward the
 *      production slot earns rises.
 *   4. `rlfeed rollback` restores the base model within a second.
 *   5. `rlfeed history` lists the refusal, the promotion and the rollback, in
 *      that order.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "base/hash.h"
#include "base/record.h"
#include "daemon.h"
#include "policy/head.h"
#include "proc.h"
#include "storage/server.h"
#include "storage/store.h"
#include "tap.h"

#define DIM 8
#define K 4
#define N_LEARN 3000 /* interactions before the first promotion */
#define N_AFTER 2000 /* after it */
#define WORSE_VERSION 1000000000ULL
#define FOLLOW_MS 1000 /* the registry is followed within a second */

static const char CONFIG[] = "[server]\n"
                             "tick_ms = 2\n"
                             "snapshot_interval_ms = 200\n"
                             "registry_poll_ms = 100\n"
                             "[policy p]\n"
                             "dim = 8\n"
                             "actions = a0, a1, a2, a3\n"
                             "epsilon = 0.1\n"
                             "seed = 3\n"
                             "serve = production\n"
                             "canary = 0.2\n"
                             "base_model_version = llm-test\n"
                             "window_ms = 300\n"
                             "[signal p.resolved]\n"
                             "kind = flag\n";

static const char *const IDS[K] = {"a0", "a1", "a2", "a3"};

/* The world: context of interaction @i, the answer that helps, the base model's scores. */
static uint32_t world(uint64_t i, float *x, float *base_logit)
{
    uint64_t st = base_hash64(&i, sizeof(i), 0x776f726c64ULL);
    float best_score = -1e9f;
    uint32_t best = 0;
    for (uint32_t d = 0; d < DIM; d++) {
        x[d] = (float)(2.0 * base_u64_to_unit(base_splitmix64(&st)) - 1.0);
    }
    for (uint32_t a = 0; a < K; a++) {
        /* action a is helped by context features 2a and 2a+1 */
        float s = x[2 * a] + 0.5f * x[2 * a + 1];
        if (s > best_score) {
            best_score = s;
            best = a;
        }
        /* the base model sees a blurred version of the same */
        base_logit[a] = 0.6f * s + (float)(base_u64_to_unit(base_splitmix64(&st)) - 0.5) * 2.0f;
    }
    return best;
}

/* Whether the customer was helped: 0.85 for the right answer, 0.15 otherwise. */
static double reward_of(uint64_t i, uint32_t chosen, uint32_t best)
{
    uint64_t st = base_hash64(&i, sizeof(i), 0x726577617264ULL);
    double u = base_u64_to_unit(base_splitmix64(&st));
    return u < (chosen == best ? 0.85 : 0.15) ? 1.0 : 0.0;
}

typedef struct tally {
    uint64_t n[2];         /* decisions by slot (online, production) */
    double reward[2];      /* reward earned by slot */
    uint64_t prod_version; /* the production version last served */
} tally;

/* Why the first failed interaction failed, printed once: a slow run then says what stalled. */
static bool play_failed(uint64_t i, const char *what, base_err e, const rlfeed_reply *r)
{
    static bool said;
    if (!said) {
        said = true;
        printf("# interaction %llu: %s failed: %s%s%s\n", (unsigned long long)i, what,
               e != BASE_OK ? base_strerror(e) : rlfeed_errcode_name(r->error.code),
               e != BASE_OK ? "" : ": ", e != BASE_OK ? "" : r->error.message);
    }
    return false;
}

/* One interaction: decide, report the outcome. */
static bool play(tst_daemon *f, uint64_t i, tally *t)
{
    float x[DIM], lg[K];
    char ev[64], oid[64];
    rlfeed_reply r;
    uint32_t best = world(i, x, lg);
    snprintf(ev, sizeof(ev), "pr-%llu", (unsigned long long)i);
    snprintf(oid, sizeof(oid), "pr-%llu-o", (unsigned long long)i);
    rlfeed_decide_opts opts = {.event_id = ev};
    base_err e = rlfeed_client_decide_ex(f->c, "p", &opts, x, DIM, K, IDS, lg, &r);
    if (e != BASE_OK || !r.ok || r.chosen_index >= K) {
        return play_failed(i, "decide", e, &r);
    }
    int slot = strcmp(r.slot, "production") == 0;
    double rew = reward_of(i, r.chosen_index, best);
    t->n[slot]++;
    t->reward[slot] += rew;
    if (slot == 1) {
        t->prod_version = r.model_version;
    }
    /*
     * As a client should: `unavailable` (Redis slow, as on a loaded machine with a busy
     * disk) leaves the outcome queued, and a retry with the same outcome_id gets its status.
     */
    for (int tries = 1;; tries++) {
        e = rlfeed_client_feedback(f->c, "p", ev, "resolved", rew, oid, &r);
        if (e == BASE_OK && r.ok) {
            return true;
        }
        if (tries == 10 || e != BASE_OK || r.error.code != PROTO_E_UNAVAILABLE) {
            return play_failed(i, "feedback", e, &r);
        }
    }
}

/* Play @n interactions, stopping at the first that fails; how many succeeded. */
static uint64_t play_n(tst_daemon *f, uint64_t *next_i, uint64_t n, tally *t)
{
    int64_t t0 = tst_now_ms();
    uint64_t k = 0;
    while (k < n && play(f, (*next_i)++, t)) {
        k++;
    }
    printf("# %llu of %llu interactions in %lld ms\n", (unsigned long long)k, (unsigned long long)n,
           (long long)(tst_now_ms() - t0));
    return k;
}

/* Play until the production slot serves @version, or @deadline_ms; the time it took, or -1. */
static long long until_served(tst_daemon *f, uint64_t *next_i, uint64_t version, tally *t)
{
    int64_t t0 = tst_now_ms();
    while (tst_now_ms() - t0 < 10 * FOLLOW_MS) {
        t->prod_version = UINT64_MAX;
        if (!play(f, (*next_i)++, t)) {
            return -1;
        }
        if (t->prod_version == version) {
            return tst_now_ms() - t0;
        }
    }
    return -1;
}

/* Run `rlfeed ARGS...` with output to @log; its exit status, or -1. */
static int run_cli(const char *log, const char *const *args)
{
    int64_t t0 = tst_now_ms();
    int rc = tst_run("RLFEED", args, log, 120000);
    printf("# rlfeed %s: exit %d after %lld ms\n", args[0], rc, (long long)(tst_now_ms() - t0));
    return rc;
}

static void dump(const char *path)
{
    FILE *fp = fopen(path, "r");
    char line[512];
    while (fp != NULL && fgets(line, sizeof(line), fp) != NULL) {
        printf("#   %s", line);
    }
    if (fp != NULL) {
        fclose(fp);
    }
}

/* Wait until the online head learned @n examples and a checkpoint of them is the registry's. */
static bool settle(tst_daemon *f, sto_store *s, uint64_t n)
{
    int64_t t0 = tst_now_ms();
    long long upd = -1;
    sto_registry g = {0};
    while (tst_now_ms() < t0 + 60000) {
        json_t *st = tst_stats(f);
        upd = tst_stat_int(st, "p", "updates");
        json_decref(st);
        if (upd >= (long long)n && sto_registry_get(s, "p", &g) == BASE_OK && g.online >= n) {
            printf("# settled after %lld ms\n", (long long)(tst_now_ms() - t0));
            return true;
        }
        tst_nap();
    }
    printf("# not settled in 60 s: %lld updates, registry online version %llu\n", upd,
           (unsigned long long)g.online);
    return false;
}

/* A head trained on the joined stream with every reward negated: truly worse. */
static bool store_worse_candidate(sto_store *s)
{
    sto_registry g;
    base_snapshot *online = NULL, *m = NULL;
    pol_head_config cfg;
    pol_head *h = NULL;
    bool found = false, ok = false;
    char after[BASE_STREAM_ID_MAX + 1] = "";
    if (sto_registry_get(s, "p", &g) != BASE_OK ||
        sto_store_model_get(s, "p", g.online, &online, &found) != BASE_OK || !found ||
        pol_head_config_from_snapshot(online, &cfg) != BASE_OK ||
        pol_head_new(&cfg, &h) != BASE_OK) {
        goto done;
    }
    for (;;) {
        sto_entry *e = NULL;
        size_t n = 0;
        if (sto_store_read(s, STO_JOINED, "p", after, 1000, &e, &n) != BASE_OK) {
            goto done;
        }
        for (size_t k = 0; k < n; k++) {
            const base_joined *j = e[k].rec;
            if (!j->unknown) {
                (void)pol_head_learn(h, j->decision, -j->reward);
            }
        }
        if (n > 0) {
            snprintf(after, sizeof(after), "%s", e[n - 1].id);
        }
        sto_entries_free(STO_JOINED, e, n);
        if (n == 0) {
            break;
        }
    }
    if (pol_head_snapshot(h, &m) != BASE_OK) {
        goto done;
    }
    snprintf(m->policy, sizeof(m->policy), "p");
    snprintf(m->last_joined_id, sizeof(m->last_joined_id), "%s", after);
    memcpy(m->spec_version, online->spec_version, sizeof(m->spec_version));
    memcpy(m->base_version, online->base_version, sizeof(m->base_version));
    memcpy(m->config_hash, online->config_hash, sizeof(m->config_hash));
    m->version = WORSE_VERSION;
    m->ts_ms = online->ts_ms;
    ok = sto_store_model_save(s, m) == BASE_OK;
done:
    base_snapshot_free(m);
    base_snapshot_free(online);
    pol_head_free(h);
    return ok;
}

/* "action[:verdict]" of each entry of `rlfeed history --json`, comma-separated, into @out. */
static void history_actions(const char *path, char *out, size_t size)
{
    json_error_t err;
    json_t *a = json_load_file(path, 0, &err);
    size_t i;
    json_t *v;
    out[0] = '\0';
    json_array_foreach(a, i, v)
    {
        const char *act = json_string_value(json_object_get(v, "action"));
        const char *verdict = json_string_value(json_object_get(v, "verdict"));
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s%s%s%s", len > 0 ? "," : "", act != NULL ? act : "?",
                 verdict != NULL ? ":" : "", verdict != NULL ? verdict : "");
    }
    json_decref(a);
}

int main(void)
{
    tst_daemon f;
    sto_store *s = NULL;
    char err[256] = "", log[700], redis_url[600];
    tally before = {0}, after = {0}, probe = {0};
    uint64_t next_i = 0;

    if (tst_env_path("RLFEED") == NULL) {
        tst_skip_all("$RLFEED (the rlfeed program) is not set");
    }
    if (!tst_daemon_init(&f, "rlfeed-promotion", CONFIG) || !tst_daemon_start(&f, true, NULL)) {
        TST_TRUE(false);
        tst_daemon_fini(&f, true);
        return tst_done();
    }
    /* Requests wait longer than the fixture's client: this test is about promotion, not speed. */
    rlfeed_client_close(f.c);
    f.c = NULL;
    TST_OK(rlfeed_client_open(f.url, 10000, &f.c));
    snprintf(redis_url, sizeof(redis_url), "%s", sto_server_url(f.redis));
    TST_OK(sto_store_open(redis_url, 5000, &s, err, sizeof(err)));

    /* 1. The base model serves production; the online slot learns. */
    TST_EQ(play_n(&f, &next_i, N_LEARN, &before), N_LEARN);
    TST_EQ(before.prod_version, 0);
    printf("# before: production %llu decisions, reward %.3f; online %llu, reward %.3f\n",
           (unsigned long long)before.n[1], before.reward[1] / (double)before.n[1],
           (unsigned long long)before.n[0], before.reward[0] / (double)before.n[0]);
    TST_TRUE(before.n[0] > N_LEARN / 10 && before.n[0] < N_LEARN * 3 / 10); /* canary 0.2 */
    TST_TRUE(settle(&f, s, N_LEARN));
    sto_registry g;
    TST_OK(sto_registry_get(s, "p", &g));
    uint64_t online_version = g.online;

    /* 2. A truly worse candidate is held by the gate. */
    TST_TRUE(store_worse_candidate(s));
    char worse[32];
    snprintf(worse, sizeof(worse), "%llu", WORSE_VERSION);
    snprintf(log, sizeof(log), "%s/promote-worse.json", f.dir);
    const char *p_worse[] = {"promote",     "--policy", "p",        "--redis", redis_url,
                             "--candidate", worse,      "--window", "1h",      "--min-samples",
                             "500",         "--json",   "--who",    "test",    NULL};
    int rc = run_cli(log, p_worse);
    TST_EQ(rc, 3);
    if (rc != 3) {
        dump(log);
    }
    TST_OK(sto_registry_get(s, "p", &g));
    TST_EQ(g.production, 0);

    /* 3. The online head is promoted and served within a second; production earns more. */
    snprintf(log, sizeof(log), "%s/promote.json", f.dir);
    const char *p_good[] = {"promote", "--policy",      "p",   "--redis", redis_url, "--window",
                            "1h",      "--min-samples", "500", "--json",  "--who",   "test",
                            NULL};
    rc = run_cli(log, p_good);
    TST_EQ(rc, 0);
    if (rc != 0) {
        dump(log);
    }
    TST_OK(sto_registry_get(s, "p", &g));
    TST_EQ(g.production, online_version);
    long long took = until_served(&f, &next_i, online_version, &probe);
    printf("# promotion served after %lld ms\n", took);
    TST_TRUE(took >= 0 && took <= FOLLOW_MS);
    TST_EQ(play_n(&f, &next_i, N_AFTER, &after), N_AFTER);
    TST_EQ(after.prod_version, online_version);
    double r_before = before.reward[1] / (double)before.n[1];
    double r_after = after.reward[1] / (double)after.n[1];
    printf("# production slot reward: %.3f before, %.3f after the promotion\n", r_before, r_after);
    TST_TRUE(r_after > r_before + 0.1);

    /* 4. Rollback: the base model again, within a second. */
    snprintf(log, sizeof(log), "%s/rollback.json", f.dir);
    const char *p_back[] = {"rollback", "--policy", "p",    "--redis", redis_url,
                            "--json",   "--who",    "test", NULL};
    rc = run_cli(log, p_back);
    TST_EQ(rc, 0);
    if (rc != 0) {
        dump(log);
    }
    TST_OK(sto_registry_get(s, "p", &g));
    TST_EQ(g.production, 0);
    took = until_served(&f, &next_i, 0, &probe);
    printf("# rollback served after %lld ms\n", took);
    TST_TRUE(took >= 0 && took <= FOLLOW_MS);

    /* 5. History: the refusal, the promotion, the rollback. */
    snprintf(log, sizeof(log), "%s/history.json", f.dir);
    const char *p_hist[] = {"history", "--policy", "p", "--redis", redis_url, "--json", NULL};
    TST_EQ(run_cli(log, p_hist), 0);
    char actions[256];
    history_actions(log, actions, sizeof(actions));
    printf("# history: %s\n", actions);
    TST_STREQ(actions, "promote:hold,promote:promote,rollback");

    json_t *st = tst_stats(&f);
    TST_EQ(tst_stat_int(st, "p", "registry_errors"), 0);
    json_decref(st);
    sto_store_close(s);
    TST_EQ(tst_daemon_stop(&f), 0);
    tst_daemon_fini(&f, tst_failed > 0);
    return tst_done();
}
