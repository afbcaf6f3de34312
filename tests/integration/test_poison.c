/*
 * Feedback poisoning on a simulated world (docs/security.md, "Feedback poisoning"): one
 * client posts the maximal reward for one action ("a3") every time it is served, as fast as
 * it can, beside honest feedback. Three runs on the same traffic:
 *   clean    honest feedback only;
 *   capped   plus the poisoner, whose outcome cap is 1 per s (burst 5);
 *   uncapped plus the same poisoner without a cap: shows the attack is real.
 * With the cap the poisoner is refused (rate_limited), its alarm is raised (health, log),
 * and the head's served choice stays within the stated bound of the clean run: the share
 * of decisions serving a3, and the share serving the best action, over the last 600
 * decisions, each within 0.05. Uncapped, the a3 share rises by more than 0.15.
 *
 * The world: d = 8, four actions, true score t_a = theta_a . x; honest feedback "resolved"
 * when the served action is the best one. The service clock is manual: every 100
 * decisions it moves 1.5 s, past the 1 s window, so the head learns in steps.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"
#include "client/rlfeed_client.h"
#include "daemon.h"
#include "proc.h"
#include "proto/auth.h"
#include "proto/json.h"
#include "tap.h"

enum { D = 8, K = 4, N = 2400, LAST = 600, STEP = 100, TARGET = 3 };
#define T0 1700000000000LL
#define BOUND 0.05

typedef struct run_result {
    double target_share; /* last LAST decisions serving TARGET */
    double best_share;   /* ... serving the best action */
    long long refused;   /* the poisoner's feedback refused as rate_limited */
    long long sent;      /* the poisoner's feedback sent */
    bool alarm;          /* health listed the poisoner's alarm */
    double seconds;      /* how long the traffic took (the cap refills with time) */
} run_result;

static double theta[K][D];

static double gauss(uint64_t *rng)
{
    double u1 = base_u64_to_unit(base_splitmix64(rng));
    double u2 = base_u64_to_unit(base_splitmix64(rng));
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

static void make_key(proto_auth_keyfile *kf, const char *client, uint8_t seed)
{
    memset(kf, 0, sizeof(*kf));
    snprintf(kf->client, sizeof(kf->client), "%s", client);
    for (int i = 0; i < PROTO_AUTH_SECRET_BYTES; i++) {
        kf->secret[i] = (uint8_t)(seed * 13 + i);
    }
    kf->salt[0] = seed;
    proto_auth_derive(kf->secret, kf->salt, kf->key);
}

/* One run; @poison: 0 none, 1 capped, 2 uncapped. */
static bool run(int poison, run_result *out)
{
    proto_auth_keyfile admin, evil;
    char ka[PROTO_AUTH_KEY_STRING_LEN + 1], ke[PROTO_AUTH_KEY_STRING_LEN + 1];
    char config[2048], start[32];
    tst_daemon f;
    rlfeed_client *ev = NULL;

    memset(out, 0, sizeof(*out));
    make_key(&admin, "admin", 1);
    make_key(&evil, "evil", 2);
    proto_auth_key_string(admin.salt, admin.key, ka);
    proto_auth_key_string(evil.salt, evil.key, ke);
    snprintf(config, sizeof(config),
             "[server]\nauth = on\ntick_ms = 5\n"
             "[policy w]\ndim = %d\nactions = a0, a1, a2, a3\nseed = 7\n"
             "signal.resolved = 1.0\nwindow_ms = 1000\nmax_embedding_norm = 100\n"
             "[client admin]\nkey = %s\nops = admin\n"
             "[client evil]\nkey = %s\nops = feedback\npolicies = w\n%s",
             D, ka, ke, poison == 1 ? "outcome_rate_per_s = 1\noutcome_burst = 5\n" : "");
    if (!tst_daemon_init(&f, "rlfeed-poison", config)) {
        tst_daemon_fini(&f, false);
        return false;
    }
    f.key = &admin;
    snprintf(start, sizeof(start), "%lld", T0);
    const char *extra[] = {"--manual-clock", start, NULL};
    bool ok = tst_daemon_start(&f, true, extra) &&
              rlfeed_client_open(f.url, 5000, &ev) == BASE_OK &&
              rlfeed_client_use_key(ev, &evil) == BASE_OK;
    if (ok && poison == 0) {
        /* One example's reach is bounded: an embedding past the norm cap is refused. */
        float big[D] = {800.0f, 600.0f};
        const char *ids[K] = {"a0", "a1", "a2", "a3"};
        float bl[K] = {0};
        rlfeed_reply r;
        TST_OK(rlfeed_client_decide(f.c, "w", "huge", big, D, K, ids, bl, &r));
        TST_TRUE(!r.ok && r.error.code == PROTO_E_OUT_OF_RANGE);
        TST_STREQ(r.error.message,
                  "context.embedding has norm 1000, policy 'w' allows at most 100");
    }
    uint64_t rng = 12345;
    long long served_target = 0, served_best = 0;
    int64_t t_start = tst_now_ms();
    for (int i = 0; i < N && ok; i++) {
        float x[D], bl[K];
        const char *ids[K] = {"a0", "a1", "a2", "a3"};
        char ev_id[32];
        int best = 0;
        double t[K];
        for (int j = 0; j < D; j++) {
            x[j] = (float)(gauss(&rng) / sqrt((double)D));
        }
        for (int a = 0; a < K; a++) {
            t[a] = 0.0;
            for (int j = 0; j < D; j++) {
                t[a] += theta[a][j] * (double)x[j];
            }
            best = t[a] > t[best] ? a : best;
            bl[a] = (float)(0.3 * t[a] + 0.5 * gauss(&rng));
        }
        snprintf(ev_id, sizeof(ev_id), "e%d", i);
        rlfeed_reply r;
        ok = rlfeed_client_decide(f.c, "w", ev_id, x, D, K, ids, bl, &r) == BASE_OK && r.ok;
        if (!ok) {
            printf("# decide %d failed\n", i);
            break;
        }
        int chosen = (int)r.chosen_index; /* candidates are in action order */
        if (chosen == best) {
            ok = rlfeed_client_feedback(f.c, "w", ev_id, "resolved", 1.0, NULL, &r) == BASE_OK &&
                 r.ok;
        }
        if (ok && poison != 0 && chosen == TARGET) {
            out->sent++;
            ok = rlfeed_client_feedback(ev, "w", ev_id, "resolved", 1.0, NULL, &r) == BASE_OK;
            out->refused += !r.ok && r.error.code == PROTO_E_RATE_LIMITED;
        }
        if (i >= N - LAST) {
            served_target += chosen == TARGET;
            served_best += chosen == best;
        }
        if (ok && (i + 1) % STEP == 0) {
            ok = tst_clock_set(&f, T0 + (long long)((i + 1) / STEP) * 1500);
        }
    }
    out->seconds = (double)(tst_now_ms() - t_start) / 1000.0;
    out->target_share = (double)served_target / LAST;
    out->best_share = (double)served_best / LAST;
    if (ok) {
        uint8_t *rep = NULL;
        size_t len = 0;
        char *text = NULL;
        if (rlfeed_client_health(f.c, &rep, &len) == BASE_OK &&
            proto_json_from_msgpack(rep, len, &text) == BASE_OK) {
            out->alarm = strstr(text, "client evil: over its outcome cap") != NULL;
        }
        base_free(text);
        base_free(rep);
    }
    rlfeed_client_close(ev);
    TST_EQ(tst_daemon_stop(&f), 0);
    tst_daemon_fini(&f, tst_failed > 0 || !ok);
    return ok;
}

int main(void)
{
    uint64_t rng = 99;
    run_result clean, capped, uncapped;
    for (int a = 0; a < K; a++) {
        for (int j = 0; j < D; j++) {
            theta[a][j] = gauss(&rng);
        }
    }
    bool ok = run(0, &clean) && run(1, &capped) && run(2, &uncapped);
    TST_TRUE(ok);
    if (!ok) {
        return tst_done();
    }
    printf("# served a3 / best action, last %d: clean %.3f / %.3f, capped %.3f / %.3f, "
           "uncapped %.3f / %.3f\n",
           LAST, clean.target_share, clean.best_share, capped.target_share, capped.best_share,
           uncapped.target_share, uncapped.best_share);
    printf("# poisoner: capped %lld of %lld refused (%.1f s); uncapped %lld of %lld refused\n",
           capped.refused, capped.sent, capped.seconds, uncapped.refused, uncapped.sent);
    /* The cap holds the poisoner to its burst and rate, and raises its alarm. */
    TST_TRUE(capped.sent > 100);
    TST_TRUE((double)(capped.sent - capped.refused) <= 5.0 + capped.seconds + 1.0);
    TST_TRUE(capped.alarm);
    TST_EQ(uncapped.refused, 0);
    TST_TRUE(!uncapped.alarm && !clean.alarm);
    /* The stated bound. */
    TST_TRUE(fabs(capped.target_share - clean.target_share) <= BOUND);
    TST_TRUE(fabs(capped.best_share - clean.best_share) <= BOUND);
    /* Without the cap the same attack moves the head well past it. */
    TST_TRUE(uncapped.target_share - clean.target_share > 0.15);
    return tst_done();
}
