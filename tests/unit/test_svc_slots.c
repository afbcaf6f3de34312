/*
 * Serving slots, driven in-process against an in-memory log
 * (tests/helpers/memlog.h), without Redis:
 *
 *   - serve = production with a canary share c: each decide reply's pmf is
 *     the mixture (1 - c) p_production + c p_online of the two heads, the
 *     logged decision carries that pmf, its slot and both versions, and the
 *     share served by the online slot is close to c;
 *   - canary 0 serves production's pmf exactly; serve = online serves the
 *     online head's pmf and ignores the canary;
 *   - a production head of another shape is refused and changes nothing.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/hash.h"
#include "memlog.h"
#include "policy/head.h"
#include "proto/reply.h"
#include "proto/request.h"
#include "service/config.h"
#include "service/engine.h"
#include "service/policy_rt.h"
#include "tap.h"

#define DIM 4
#define K 3
#define T0 1800000000000LL

static const char CONFIG[] = "[server]\n"
                             "tick_ms = 1\n"
                             "snapshot_interval_ms = 600000\n"
                             "[policy t]\n"
                             "dim = 4\n"
                             "actions = a, b, c\n"
                             "epsilon = 0.1\n"
                             "seed = 11\n"
                             "serve = production\n"
                             "canary = 0.3\n"
                             "window_ms = 1000\n"
                             "[signal t.resolved]\n"
                             "kind = flag\n"
                             "weight = 1.0\n";

static const char *const IDS[K] = {"a", "b", "c"};

typedef struct catcher {
    proto_reply r;
    bool got;
} catcher;

static void catch_reply(void *arg, const uint8_t *buf, size_t len)
{
    catcher *c = arg;
    c->got = proto_reply_decode(buf, len, &c->r) == BASE_OK;
}

static void make_context(uint32_t i, float *x)
{
    uint64_t st = base_hash64(&i, sizeof(i), 0x736c6f7473ULL);
    for (uint32_t d = 0; d < DIM; d++) {
        x[d] = (float)(base_u64_to_unit(base_splitmix64(&st)) - 0.5);
    }
}

/* Decide event @i; the reply into *out. */
static bool decide(svc_engine *e, uint32_t i, const float *x, catcher *out)
{
    svc_replier rp = {.send = catch_reply, .arg = out};
    proto_request q;
    proto_candidate cand[K];
    memset(&q, 0, sizeof(q));
    q.op = PROTO_OP_DECIDE;
    snprintf(q.policy, sizeof(q.policy), "t");
    snprintf(q.event_id, sizeof(q.event_id), "slot-%u", i);
    q.dim = DIM;
    q.embedding = (float *)(uintptr_t)x;
    for (uint32_t a = 0; a < K; a++) {
        snprintf(cand[a].id, sizeof(cand[a].id), "%s", IDS[a]);
        cand[a].base_logit = 0.5f * (float)a;
    }
    q.n_cand = K;
    q.cand = cand;
    q.clock_set_ms = q.clock_advance_ms = -1;
    out->got = false;
    svc_engine_handle(e, &q, &rp);
    return out->got && out->r.ok;
}

/* A head of the policy's config that learned @n examples favouring action @fav. */
static pol_head *trained_head(const svc_policy_config *pc, uint32_t fav, int n)
{
    pol_head *h = NULL;
    if (pol_head_new(&pc->head, &h) != BASE_OK) {
        return NULL;
    }
    base_decision *d = base_decision_new(DIM, K);
    for (int i = 0; d != NULL && i < n; i++) {
        make_context((uint32_t)(1000 + i), d->embedding);
        for (uint32_t a = 0; a < K; a++) {
            d->action[a] = a;
            d->base_logit[a] = 0.5f * (float)a;
            d->pmf[a] = 1.0f / K;
        }
        d->chosen = (uint32_t)i % K;
        (void)pol_head_learn(h, d, d->chosen == fav ? 1.0 : 0.0);
    }
    base_decision_free(d);
    return h;
}

/* The pmf @h serves on event @i's context, into @out. */
static void pmf_of(const pol_head *h, const float *x, float *out)
{
    uint32_t act[K] = {0, 1, 2};
    float lg[K] = {0.0f, 0.5f, 1.0f};
    (void)pol_head_pmf(h, x, K, act, lg, out);
}

static void slots_mix_and_log_what_they_served(void)
{
    svc_config cfg;
    char err[256] = "";
    base_clock clock;
    tst_memlog *log = tst_memlog_new(1u << 20);
    svc_log writer = tst_memlog_writer(log);
    svc_log_reader rd = tst_memlog_reader(log);
    svc_engine *e = NULL;

    TST_OK(svc_config_load_string(CONFIG, &cfg, err, sizeof(err)));
    TST_EQ(cfg.policy[0].serve, BASE_SLOT_PRODUCTION);
    TST_NEAR(cfg.policy[0].canary, 0.3, 0);
    base_clock_init_manual(&clock, T0);
    TST_OK(svc_engine_new(&cfg, &clock, &writer, &e, err, sizeof(err)));
    TST_OK(svc_engine_restore(e, &rd, err, sizeof(err)));
    svc_prt *p = svc_engine_policy_at(e, 0);
    TST_TRUE(p != NULL && svc_engine_policy_at(e, 1) == NULL);

    /* Two different heads: online favours "c", production (version 77) favours "a". */
    pol_head *on = trained_head(p->cfg, 2, 60);
    pol_head *prod = trained_head(p->cfg, 0, 60);
    base_snapshot *m = NULL;
    pol_head *prod_twin = NULL;
    TST_OK(pol_head_snapshot(prod, &m));
    TST_OK(pol_head_from_snapshot(m, &prod_twin));
    base_snapshot_free(m);
    /* Start-up only, no other thread runs yet: the online slot continues from "on". */
    TST_OK(pol_head_snapshot(on, &m));
    TST_OK(pol_portfolio_restore(p->pf, m));
    base_snapshot_free(m);
    TST_OK(svc_prt_set_production(p, prod, 77, ""));

    enum { N = 600 };
    int online = 0, mix_ok = 0, versions_ok = 0, pmf_differs = 0;
    catcher c;
    /* The OPE window's inputs, as the test expects them: w = p_online / p_logged. */
    double sum_w = 0.0, sum_w2 = 0.0, min_p = 1.0;
    for (uint32_t i = 0; i < N; i++) {
        float x[DIM], po[K], pp[K];
        make_context(i, x);
        if (!decide(e, i, x, &c)) {
            break;
        }
        pmf_of(on, x, po);
        pmf_of(prod_twin, x, pp);
        bool ok = c.r.n_pmf == K;
        for (uint32_t a = 0; ok && a < K; a++) {
            ok = fabs((double)c.r.pmf[a] - (0.7 * pp[a] + 0.3 * po[a])) < 1e-6;
            pmf_differs += fabs((double)po[a] - (double)pp[a]) > 0.05;
        }
        mix_ok += ok;
        double w = (double)po[c.r.chosen_index] / (double)c.r.pmf[c.r.chosen_index];
        sum_w += w;
        sum_w2 += w * w;
        min_p = fmin(min_p, (double)c.r.pmf[c.r.chosen_index]);
        bool is_online = strcmp(c.r.slot, "online") == 0;
        online += is_online;
        versions_ok += is_online ? c.r.model_version == 60
                                 : strcmp(c.r.slot, "production") == 0 && c.r.model_version == 77;
    }
    TST_EQ(mix_ok, N);
    TST_EQ(versions_ok, N);
    TST_TRUE(pmf_differs >
             N / 2); /* the heads really differ, so the mixture check means something */
    printf("# online share %.3f of %d (canary 0.3)\n", (double)online / N, N);
    TST_TRUE(online > N * 0.3 - 60 && online < N * 0.3 + 60); /* sd ~11 */

    /* The log holds what was served: the mixture, the slot, both versions. */
    sto_entry *ent = NULL;
    size_t n_ent = 0;
    TST_OK(rd.ops->read(rd.impl, STO_DECISIONS, "t", "", N, &ent, &n_ent));
    TST_EQ(n_ent, N);
    int logged_ok = 0, logged_online = 0;
    for (size_t k = 0; k < n_ent; k++) {
        const base_decision *d = ent[k].rec;
        float x[DIM], po[K], pp[K];
        make_context((uint32_t)k, x);
        pmf_of(on, x, po);
        pmf_of(prod_twin, x, pp);
        bool ok = d->prod_version == 77 && d->model_version == 60 && d->chosen < K &&
                  d->pmf[d->chosen] > 0.0f;
        for (uint32_t a = 0; ok && a < K; a++) {
            ok = fabs((double)d->pmf[a] - (0.7 * pp[a] + 0.3 * po[a])) < 1e-6;
        }
        logged_ok += ok;
        logged_online += d->slot == BASE_SLOT_ONLINE;
    }
    sto_entries_free(STO_DECISIONS, ent, n_ent);
    TST_EQ(logged_ok, N);
    TST_EQ(logged_online, online);

    /* Canary 0: production's pmf exactly, every decision from production. */
    svc_prt_set_serving(p, BASE_SLOT_PRODUCTION, 0);
    int exact = 0;
    for (uint32_t i = N; i < N + 50; i++) {
        float x[DIM], pp[K];
        make_context(i, x);
        pmf_of(prod_twin, x, pp);
        float po[K];
        pmf_of(on, x, po);
        exact += decide(e, i, x, &c) && strcmp(c.r.slot, "production") == 0 &&
                 memcmp(c.r.pmf, pp, sizeof(pp)) == 0;
        double w = (double)po[c.r.chosen_index] / (double)pp[c.r.chosen_index];
        sum_w += w;
        sum_w2 += w * w;
        min_p = fmin(min_p, (double)pp[c.r.chosen_index]);
    }
    TST_EQ(exact, 50);
    /* serve = online: the online head's pmf, whatever the canary. */
    svc_prt_set_serving(p, BASE_SLOT_ONLINE, 300000);
    exact = 0;
    for (uint32_t i = N + 50; i < N + 100; i++) {
        float x[DIM], po[K];
        make_context(i, x);
        pmf_of(on, x, po);
        exact += decide(e, i, x, &c) && strcmp(c.r.slot, "online") == 0 &&
                 memcmp(c.r.pmf, po, sizeof(po)) == 0 && c.r.model_version == 60;
        sum_w += 1.0;
        sum_w2 += 1.0;
        min_p = fmin(min_p, (double)po[c.r.chosen_index]);
    }
    TST_EQ(exact, 50);
    /* All 700 decides are in the last 60 s of the OPE window (real time). */
    svc_ope_reading ope;
    svc_ope_read(&p->ope, base_mono_ns(), &ope);
    printf("# OPE window: %llu decisions, ESS %.2f, min propensity %.4f\n",
           (unsigned long long)ope.n, ope.ess, ope.min_propensity);
    TST_EQ(ope.n, N + 100);
    TST_NEAR(ope.ess, sum_w * sum_w / sum_w2, 1e-9);
    TST_NEAR(ope.min_propensity, min_p, 1e-9);
    TST_TRUE(ope.ess < (double)(N + 100)); /* the heads differ: weights are not all 1 */

    /* Another shape is refused; production is unchanged. */
    pol_head_config other = p->cfg->head;
    other.dim = DIM + 1;
    pol_head *wrong = NULL;
    TST_OK(pol_head_new(&other, &wrong));
    TST_EQ(svc_prt_set_production(p, wrong, 78, ""), BASE_EINVAL);
    TST_EQ(atomic_load(&p->prod_version), 77);
    /* So is a head of the right shape learned for another action list; its own is taken. */
    const char *acts = p->cfg->actions_hash;
    TST_TRUE(acts[0] == 'a');
    pol_head *renamed = NULL;
    TST_OK(pol_head_new(&p->cfg->head, &renamed));
    TST_EQ(svc_prt_set_production(p, renamed, 79, "a0000000000000001"), BASE_EINVAL);
    TST_EQ(atomic_load(&p->prod_version), 77);
    pol_head *same = NULL;
    TST_OK(pol_head_new(&p->cfg->head, &same));
    TST_OK(svc_prt_set_production(p, same, 80, acts));
    TST_EQ(atomic_load(&p->prod_version), 80);
    TST_STREQ(p->prod_acts, acts);
    /* NULL: back to the base model, version 0, which fits any list. */
    TST_OK(svc_prt_set_production(p, NULL, 0, ""));
    TST_STREQ(p->prod_acts, "");
    TST_EQ(atomic_load(&p->prod_version), 0);
    TST_EQ(pol_head_n_updates(p->prod), 0);

    pol_head_free(prod_twin);
    pol_head_free(on);
    svc_engine_free(e);
    svc_config_fini(&cfg);
    tst_memlog_free(log);
}

static void config_refuses_bad_slot_settings(void)
{
    svc_config cfg;
    char err[256] = "";
    const char *bad[] = {
        "[policy t]\ndim = 2\nactions = a\nserve = canary\n",
        "[policy t]\ndim = 2\nactions = a\ncanary = 1.5\n",
        "[policy t]\ndim = 2\nactions = a\ncanary = -0.1\n",
        "[policy t]\ndim = 2\nactions = a\nsignal.r = 1\nportfolio = ridge/softmax\n",
        "[policy t]\ndim = 2\nactions = a\nsignal.r = 1\nportfolio = ridge, magic\n",
        "[policy t]\ndim = 2\nactions = a\nsignal.r = 1\nportfolio = ridge,\n",
        "[policy t]\ndim = 2\nactions = a\nsignal.r = 1\nportfolio = ridge/ucb:x\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        TST_EQ(svc_config_load_string(bad[i], &cfg, err, sizeof(err)), BASE_EINVAL);
        printf("# %s\n", err);
    }
    TST_OK(svc_config_load_string("[policy t]\ndim = 2\nactions = a\n[signal t.ok]\nkind = flag\n",
                                  &cfg, err, sizeof(err)));
    TST_EQ(cfg.policy[0].serve, BASE_SLOT_ONLINE);
    TST_TRUE(cfg.policy[0].canary == 0.0);
    TST_EQ(cfg.registry_poll_ms, 250);
    svc_config_fini(&cfg);
}

int main(void)
{
    config_refuses_bad_slot_settings();
    slots_mix_and_log_what_they_served();
    return tst_done();
}
