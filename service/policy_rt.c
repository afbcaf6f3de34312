/* pthread_rwlockattr_setkind_np(): the gate prefers the writer (a catalog change). */
#define _GNU_SOURCE
#include "service/policy_rt.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"
#include "base/log.h"

static uint64_t name_key(const char *s)
{
    return base_hash64(s, strlen(s), 0x5eed) | 1u; /* never 0, the empty key */
}

static base_err build_action_index(svc_prt *p)
{
    base_hset_init(&p->actions, p->cfg->n_actions);
    for (uint32_t a = 0; a < p->cfg->n_actions; a++) {
        uint32_t other = 0;
        if (base_hset_get(&p->actions, name_key(p->cfg->actions[a]), &other)) {
            return BASE_EINVAL; /* a repeated name (the config refuses it) or a 64-bit clash */
        }
        base_err e = base_hset_put(&p->actions, name_key(p->cfg->actions[a]), a);
        if (e != BASE_OK) {
            return e;
        }
    }
    return BASE_OK;
}

bool svc_prt_find_action(const svc_prt *p, const char *name, uint32_t *out)
{
    uint32_t a = 0;
    /* The key is a hash: confirm the name, so a colliding stranger is not taken for it. */
    if (!base_hset_get(&p->actions, name_key(name), &a) || strcmp(p->cfg->actions[a], name) != 0) {
        return false;
    }
    *out = a;
    return true;
}

base_err svc_prt_init(svc_prt *p, svc_engine *eng, const svc_policy_config *cfg, char *errbuf,
                      size_t errlen)
{
    p->eng = eng;
    p->cfg = cfg;
    atomic_store(&p->last_unlogged_ms, INT64_MIN);
    rwd_alarm_init(&p->alarm);
    pthread_rwlock_init(&p->head_lk, NULL);
    pthread_rwlock_init(&p->prod_lk, NULL);
    /*
     * Requests hold the gate as readers all the time; a definition change (the writer) must
     * not starve behind them, so new readers wait while it does.
     */
    pthread_rwlockattr_t ga;
    pthread_rwlockattr_init(&ga);
    pthread_rwlockattr_setkind_np(&ga, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&p->gate, &ga);
    pthread_rwlockattr_destroy(&ga);
    atomic_store(&p->serve, cfg->serve);
    atomic_store(&p->canary_ppm, (unsigned)llround(cfg->canary * 1e6));
    pthread_mutex_init(&p->join_lk, NULL);
    pthread_mutex_init(&p->tail_lk, NULL);
    svc_ope_init(&p->ope);
    p->marks = base_alloc_array(SVC_MARK_RING, sizeof(svc_mark));
    if (p->marks == NULL) {
        return BASE_ENOMEM;
    }
    base_err e = build_action_index(p);
    if (e != BASE_OK) {
        snprintf(errbuf, errlen, "policy \"%s\": action index: %s", cfg->name, base_strerror(e));
        return e;
    }
    e = pol_portfolio_new(&cfg->portfolio, &p->pf);
    if (e != BASE_OK) {
        snprintf(errbuf, errlen, "policy \"%s\": head: %s", cfg->name, base_strerror(e));
        return e;
    }
    e = pol_head_new(&cfg->head, &p->prod);
    if (e != BASE_OK) {
        snprintf(errbuf, errlen, "policy \"%s\": head: %s", cfg->name, base_strerror(e));
        return e;
    }
    e = rwd_join_new(&cfg->reward, cfg->max_pending, &p->join);
    if (e != BASE_OK) {
        snprintf(errbuf, errlen, "policy \"%s\": reward spec: %s", cfg->name, base_strerror(e));
        return e;
    }
    return BASE_OK;
}

void svc_prt_fini(svc_prt *p)
{
    if (p == NULL || p->cfg == NULL) {
        return;
    }
    for (size_t k = 0; k < p->n_backlog; k++) {
        base_joined_free(p->backlog[k]);
    }
    pol_portfolio_free(p->pf);
    pol_head_free(p->prod);
    rwd_join_free(p->join);
    base_hset_fini(&p->actions);
    pthread_rwlock_destroy(&p->head_lk);
    pthread_rwlock_destroy(&p->prod_lk);
    pthread_rwlock_destroy(&p->gate);
    pthread_mutex_destroy(&p->join_lk);
    pthread_mutex_destroy(&p->tail_lk);
    svc_ope_fini(&p->ope);
    base_free(p->marks);
}

base_err svc_prt_set_production(svc_prt *p, pol_head *head, uint64_t version, const char *acts)
{
    bool base_model = head == NULL;
    if (head == NULL) {
        base_err e = pol_head_new(&p->cfg->head, &head);
        if (e != BASE_OK) {
            return e;
        }
    }
    /* Checked under the lock a definition change swaps cfg under (service/catalog.c). */
    pthread_rwlock_wrlock(&p->prod_lk);
    const svc_policy_config *c = p->cfg;
    const char *now = c->actions_hash;
    if (pol_head_dim(head) != c->head.dim || pol_head_n_actions(head) != c->head.n_actions ||
        pol_head_get_config(head)->action_dim != c->head.action_dim ||
        (!base_model && !svc_config_actions_fit(c, acts))) {
        pthread_rwlock_unlock(&p->prod_lk);
        pol_head_free(head);
        return BASE_EINVAL;
    }
    base_strlcpy(p->prod_acts,
                 base_model        ? ""
                 : acts[0] != '\0' ? acts
                                   : now,
                 sizeof(p->prod_acts));
    pol_head *old = p->prod;
    p->prod = head;
    atomic_store(&p->prod_version, version);
    pthread_rwlock_unlock(&p->prod_lk);
    pol_head_free(old);
    return BASE_OK;
}

void svc_prt_set_serving(svc_prt *p, uint32_t slot, uint32_t canary_ppm)
{
    atomic_store(&p->serve, slot);
    atomic_store(&p->canary_ppm, canary_ppm > 1000000u ? 1000000u : canary_ppm);
}

void svc_prt_set_tail(svc_prt *p, sto_kind kind, const char *id)
{
    pthread_mutex_lock(&p->tail_lk);
    base_strlcpy(p->tail[kind], id, sizeof(p->tail[kind]));
    pthread_mutex_unlock(&p->tail_lk);
}

void svc_prt_read_tails(svc_prt *p, char (*out)[BASE_STREAM_ID_MAX + 1])
{
    pthread_mutex_lock(&p->tail_lk);
    memcpy(out[STO_JOINED], p->tail[STO_JOINED], sizeof(p->tail[0]));
    memcpy(out[STO_DECISIONS], p->tail[STO_DECISIONS], sizeof(p->tail[0]));
    memcpy(out[STO_OUTCOMES], p->tail[STO_OUTCOMES], sizeof(p->tail[0]));
    pthread_mutex_unlock(&p->tail_lk);
}

/*
 * The next lsn, recording a mark first when one is due. Called under
 * join_lk, before the record is queued. A full ring records nothing: the
 * older marks stay valid, only less tight.
 */
uint64_t svc_prt_take_lsn(svc_prt *p)
{
    uint64_t lsn = p->next_lsn++;
    const svc_mark *last = NULL;
    if (p->n_marks > 0) {
        last = &p->marks[(p->mark_head + p->n_marks - 1) % SVC_MARK_RING];
    }
    if ((last == NULL || lsn - last->lsn >= SVC_MARK_EVERY) && p->n_marks < SVC_MARK_RING) {
        svc_mark *m = &p->marks[(p->mark_head + p->n_marks) % SVC_MARK_RING];
        m->lsn = lsn;
        svc_prt_read_tails(p, m->tail);
        p->n_marks++;
    }
    return lsn;
}

/*
 * The reward alarm (reward/alarm.h) on every learned reward; a change is counted, published
 * for stats and logged. A replay at start-up rebuilds the same state from the same rewards.
 */
static void watch_reward(svc_prt *p, double reward)
{
    int changed = rwd_alarm_add(&p->alarm, reward);
    if (changed < 0) {
        return;
    }
    atomic_store(&p->alarm_state, (unsigned)changed);
    if (changed == RWD_ALARM_OK) {
        base_log_policy(BASE_LOG_INFO, p->cfg->name,
                        "policy %s: reward alarm cleared: rewards are back in their recent range "
                        "(mean %.3f)",
                        p->cfg->name, p->alarm.mean);
        return;
    }
    atomic_fetch_add(&p->c.reward_alarms, 1);
    base_log_policy(BASE_LOG_WARN, p->cfg->name,
                    "policy %s: reward alarm (%s): learned rewards moved far %s their recent "
                    "range (mean %.3f, sd %.3f, over %llu rewards); poisoned or broken feedback? "
                    "check the feedback sources",
                    p->cfg->name, rwd_alarm_name((rwd_alarm_state)changed),
                    changed == RWD_ALARM_UP ? "above" : "below", p->alarm.mean, sqrt(p->alarm.var),
                    (unsigned long long)p->alarm.n);
}

/* Learn from joined example @j stored at @stream_id (learner thread, or start-up). */
base_err svc_prt_learn(svc_prt *p, const base_joined *j, const char *stream_id)
{
    base_err err = BASE_OK;
    pol_portfolio_scores sc;
    /*
     * Scoring the portfolio's members reads the head only, and this thread is its only
     * writer: no lock, so decides are not held up by it; only the update takes the lock.
     * Unknown examples are in the joined stream for evaluation, but never learned from.
     */
    /*
     * Decisions made before a change that started this head version are not learned, nor
     * those made under another list of actions (their indexes name other actions: a list
     * changed before any checkpoint recorded it, so no restore noticed; records older than
     * the list's hash cannot tell).
     */
    const char *acts = j->decision->actions_hash;
    bool learn =
        !j->unknown && j->decision->lsn >= p->epoch_lsn && svc_config_actions_fit(p->cfg, acts);
    if (learn) {
        err = pol_portfolio_score(p->pf, j->decision, j->reward, &sc);
    }
    /* last_joined_id changes under the head's lock, so stats read a consistent pair. */
    pthread_rwlock_wrlock(&p->head_lk);
    p->head_gen++;
    if (learn && err == BASE_OK) {
        err = pol_portfolio_apply(p->pf, j->decision, j->reward, &sc);
    }
    if (learn && err == BASE_OK && j->spec_version[0] != '\0') {
        base_strlcpy(p->learned_spec, j->spec_version, sizeof(p->learned_spec));
    }
    uint64_t n = pol_portfolio_n_updates(p->pf);
    base_strlcpy(p->last_joined_id, stream_id, sizeof(p->last_joined_id));
    p->trace = base_hash64(j->decision->event_id, strlen(j->decision->event_id), p->trace);
    p->trace = base_hash64(&j->reward, sizeof(j->reward), p->trace);
    pthread_rwlock_unlock(&p->head_lk);
    if (!learn) {
        if (!j->unknown) {
            atomic_fetch_add(&p->c.epoch_skipped, 1);
        }
        return BASE_OK;
    }
    atomic_store(&p->n_updates, n);
    if (err == BASE_OK) {
        atomic_fetch_add(&p->c.updates, 1);
    } else {
        uint64_t k = atomic_fetch_add(&p->c.learn_errors, 1) + 1;
        if (k <= 8 || (k & (k - 1)) == 0) { /* the first ones, then at powers of two */
            base_log_policy(BASE_LOG_WARN, p->cfg->name,
                            "policy %s: joined example %s (event_id \"%.64s\", dim %u, %u "
                            "candidates) could not be learned (%s): skipped (%" PRIu64 " so far)",
                            p->cfg->name, stream_id, j->decision->event_id, j->decision->dim,
                            j->decision->n_cand, base_strerror(err), k);
        }
    }
    atomic_fetch_add(&p->c.joined, 1);
    watch_reward(p, j->reward);
    if (j->defaulted) {
        atomic_fetch_add(&p->c.defaulted, 1);
    }
    int_fast64_t micro = (int_fast64_t)llround(j->reward * 1e6);
    atomic_fetch_add(&p->c.reward_micro, micro);
    uint32_t slot = j->decision->slot <= BASE_SLOT_PRODUCTION ? j->decision->slot : 0;
    bool served = j->decision->source == BASE_SRC_DECIDE; /* a logged one no slot served */
    if (served) {
        atomic_fetch_add(&p->c.slot_joined[slot], 1);
        atomic_fetch_add(&p->c.slot_reward_micro[slot], micro);
    }
    if (served && slot == BASE_SLOT_PRODUCTION && j->decision->prod_version == 0) {
        atomic_fetch_add(&p->c.base_joined, 1);
        atomic_fetch_add(&p->c.base_reward_micro, micro);
    }
    return err;
}
