/*
 * Policy definitions changed at run time, applied on the learner thread
 * (service/catalog.h): each one is a restart of that one policy, with its
 * requests held at its gate; a followed policy (shared = on) only changes the
 * runtime it serves from. The catalog's follower thread (catalog.c) posts them.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "service/catalog_impl.h"
#include "service/engine_impl.h"
#include "storage/store.h"

#define CHANGE_SYNC_MS 2000 /* a change's checkpoint must be stored within this */

/* ---- changes, on the learner thread ----------------------------------------------------- */

static void keep_cfg(svc_engine *e, svc_policy_config *cfg)
{
    /* cfg is the cfg member of a svc_kept: recover the node. */
    struct svc_kept *k = (struct svc_kept *)(void *)((char *)cfg - offsetof(struct svc_kept, cfg));
    k->next = e->kept;
    e->kept = k;
}

svc_policy_config *svc_catalog_new_cfg(void)
{
    struct svc_kept *k = base_alloc_zero(1, sizeof(*k));
    return k != NULL ? &k->cfg : NULL;
}

void svc_catalog_free_cfg(svc_policy_config *cfg)
{
    if (cfg != NULL) {
        svc_policy_config_fini(cfg);
        base_free((char *)cfg - offsetof(struct svc_kept, cfg));
    }
}

void svc_catalog_drop_changes(svc_engine *e)
{
    struct svc_change *c = e->changes;
    while (c != NULL) {
        struct svc_change *next = c->next;
        svc_catalog_free_cfg(c->cfg);
        base_free(c);
        c = next;
    }
    e->changes = NULL;
    struct svc_kept *k = e->kept;
    while (k != NULL) {
        struct svc_kept *next = k->next;
        svc_policy_config_fini(&k->cfg);
        base_free(k);
        k = next;
    }
    e->kept = NULL;
    sto_store_close(e->change_store);
    e->change_store = NULL;
}

#define SWAP(T, a, b)                                                                              \
    do {                                                                                           \
        T swap_tmp_ = (a);                                                                         \
        (a) = (b);                                                                                 \
        (b) = swap_tmp_;                                                                           \
    } while (0)

/*
 * Move what a restore rebuilt in @tmp (head, join, marks, lsns, checkpoint stamps) into
 * @p, and @p's into @tmp (freed by the caller). The caller holds @p's gate as writer,
 * head_lk, prod_lk and join_lk, and is the learner thread, or @p is a follower (whose
 * learner-side state no other thread touches: the learner skips followers).
 */
void svc_catalog_swap_state(svc_prt *p, svc_prt *tmp)
{
    rwd_join_carry_stats(tmp->join, p->join); /* its counters go on from the old join's */
    SWAP(pol_portfolio *, p->pf, tmp->pf);
    SWAP(rwd_join *, p->join, tmp->join);
    SWAP(base_hset, p->actions, tmp->actions);
    SWAP(svc_mark *, p->marks, tmp->marks);
    p->mark_head = tmp->mark_head;
    p->n_marks = tmp->n_marks;
    p->next_lsn = tmp->next_lsn;
    p->epoch_lsn = tmp->epoch_lsn;
    memcpy(p->last_joined_id, tmp->last_joined_id, sizeof(p->last_joined_id));
    memcpy(p->inbox_pos, tmp->inbox_pos, sizeof(p->inbox_pos));
    memcpy(p->snapshot_inbox, tmp->snapshot_inbox, sizeof(p->snapshot_inbox));
    p->snapshot_updates = tmp->snapshot_updates;
    p->snapshot_lsn = tmp->snapshot_lsn;
    p->last_version = tmp->last_version;
    p->last_parent = tmp->last_parent;
    memcpy(p->learned_spec, tmp->learned_spec, sizeof(p->learned_spec));
    atomic_store(&p->n_updates, atomic_load(&tmp->n_updates));
}

/*
 * Whether @p's production head can serve under definition @c (under prod_lk): the same
 * shape, and the action names in the order it learned them (by position).
 */
static bool prod_fits(const svc_prt *p, const svc_policy_config *c)
{
    const pol_head *h = p->prod;
    return pol_head_dim(h) == c->head.dim && pol_head_n_actions(h) == c->head.n_actions &&
           pol_head_get_config(h)->action_dim == c->head.action_dim &&
           svc_config_actions_fit(c, p->prod_acts);
}

/*
 * Apply @ch: checkpoint under the old definition (which also makes sure everything the
 * policy queued is stored), rebuild the policy in a scratch runtime from that checkpoint and
 * its streams under the new one, as a restart would, and swap the two while the policy's
 * requests wait. False if it must be tried again later (Redis away).
 */
/*
 * Under @p's gate (writer), head_lk, prod_lk and join_lk: definition @cfg in force in @p,
 * production back to the new definition's base model if its head does not fit; @tmp gets
 * the old definition (what svc_prt_fini() needs to see a built runtime). True if
 * production was reset.
 */
static bool swap_definition(svc_prt *p, svc_prt *tmp, const svc_policy_config *cfg)
{
    bool prod_reset = !prod_fits(p, cfg);
    if (prod_reset) {
        SWAP(pol_head *, p->prod, tmp->prod);
        atomic_store(&p->prod_version, 0);
        p->prod_acts[0] = '\0'; /* the new definition's base model */
    }
    tmp->cfg = p->cfg;
    p->cfg = cfg;
    return prod_reset;
}

/*
 * After the swap, still holding the gate: serve @ch's policy again (if it was retired),
 * let its requests in, keep the definition, free the old runtime in @tmp, count the
 * change. Returns whether the policy was retired.
 */
static bool finish_change(svc_engine *e, struct svc_change *ch, svc_prt *tmp)
{
    svc_prt *p = ch->p;
    bool was_retired = atomic_exchange(&p->retired, false);
    pthread_rwlock_unlock(&p->gate);
    keep_cfg(e, ch->cfg);
    ch->cfg = NULL;
    svc_prt_fini(tmp);
    atomic_fetch_add(&p->c.def_changes, 1);
    return was_retired;
}

/*
 * apply_one() for a policy this instance follows (shared = on): no checkpoint and no replay
 * (its owner applies the change to the join and the head); the new definition's runtime
 * serves the owner's newest checkpoint if it fits it, else a fresh head until the owner
 * stores one. False if it must be tried again (Redis away, or taken over meanwhile: then
 * apply_one() applies it as the owner).
 */
static bool apply_followed(svc_engine *e, struct svc_change *ch)
{
    svc_prt *p = ch->p;
    const svc_policy_config *old = p->cfg;
    char why[512] = "";
    svc_prt tmp;
    memset(&tmp, 0, sizeof(tmp));
    base_snapshot *m = NULL;
    bool found = false;
    base_err err = BASE_OK;
    if (e->change_store == NULL) {
        svc_log_stats ls;
        svc_log_get_stats(&e->log, &ls);
        err = sto_store_open(ls.url, (int)e->cfg->redis_timeout_ms, &e->change_store, why,
                             sizeof(why));
    }
    if (err == BASE_OK) {
        err = sto_store_model_get_online(e->change_store, old->name, &m, &found);
    }
    if (err != BASE_OK) {
        sto_store_close(e->change_store);
        e->change_store = NULL;
        return false;
    }
    err = svc_prt_init(&tmp, e, ch->cfg, why, sizeof(why));
    if (err != BASE_OK) {
        base_log_policy(BASE_LOG_ERROR, old->name,
                        "policy %s: definition version %" PRIu64 " cannot be applied (%s); "
                        "still serving version %" PRIu64,
                        old->name, ch->cfg->def_version, why, old->def_version);
        base_snapshot_free(m);
        svc_prt_fini(&tmp);
        svc_catalog_free_cfg(ch->cfg);
        ch->cfg = NULL;
        return true;
    }
    bool fits = found && svc_portfolio_restore(ch->cfg, tmp.pf, m, NULL, 0) == BASE_OK;
    base_snapshot_free(m);
    if (found && !fits) {
        svc_prt_fini(&tmp); /* restore may have left it half-loaded: a fresh one */
        memset(&tmp, 0, sizeof(tmp));
        if (svc_prt_init(&tmp, e, ch->cfg, why, sizeof(why)) != BASE_OK) {
            svc_prt_fini(&tmp);
            return false;
        }
    }
    pthread_rwlock_wrlock(&p->gate);
    if (!atomic_load(&p->follower)) {
        pthread_rwlock_unlock(&p->gate);
        svc_prt_fini(&tmp);
        return false; /* taken over meanwhile: applied as its owner next time */
    }
    pthread_rwlock_wrlock(&p->head_lk);
    p->head_gen++;
    pthread_rwlock_wrlock(&p->prod_lk);
    pthread_mutex_lock(&p->join_lk);
    SWAP(pol_portfolio *, p->pf, tmp.pf);
    SWAP(base_hset, p->actions, tmp.actions);
    atomic_store(&p->n_updates, pol_portfolio_n_updates(p->pf));
    (void)swap_definition(p, &tmp, ch->cfg);
    pthread_mutex_unlock(&p->join_lk);
    pthread_rwlock_unlock(&p->prod_lk);
    pthread_rwlock_unlock(&p->head_lk);
    bool was_retired = finish_change(e, ch, &tmp);
    base_log_policy(BASE_LOG_INFO, p->cfg->name,
                    "policy %s: definition version %" PRIu64 " in force (was %" PRIu64 ")%s; "
                    "following its owner from %s",
                    p->cfg->name, p->cfg->def_version, old->def_version,
                    was_retired ? ", served again" : "",
                    fits ? "its newest checkpoint" : "a fresh head until it stores one");
    return true;
}

static bool apply_one(svc_engine *e, struct svc_change *ch)
{
    if (atomic_load(&ch->p->follower)) {
        return apply_followed(e, ch);
    }
    svc_prt *p = ch->p;
    const svc_policy_config *old = p->cfg;
    char why[512] = "";
    svc_prt tmp;
    bool new_version = false;
    memset(&tmp, 0, sizeof(tmp));
    svc_log_stats ls;
    svc_log_get_stats(&e->log, &ls);
    base_err err = ls.up ? BASE_OK : BASE_EIO;
    if (err == BASE_OK) {
        /* Requests of the policy wait from here until the swap: while Redis answers. */
        pthread_rwlock_wrlock(&p->gate);
        err = svc_learner_checkpoint_sync(e, p, CHANGE_SYNC_MS);
        if (err != BASE_OK) {
            pthread_rwlock_unlock(&p->gate);
        }
    }
    if (err != BASE_OK) {
        if (!ch->warned) {
            base_log_policy(BASE_LOG_WARN, old->name,
                            "policy %s: definition version %" PRIu64
                            " waits: its checkpoint could not be stored (%s); retrying",
                            old->name, ch->cfg->def_version, base_strerror(err));
            ch->warned = true;
        }
        return false;
    }
    if (e->change_store == NULL) {
        err = sto_store_open(ls.url, (int)e->cfg->redis_timeout_ms, &e->change_store, why,
                             sizeof(why));
    }
    if (err == BASE_OK) {
        err = svc_prt_init(&tmp, e, ch->cfg, why, sizeof(why));
    }
    if (err == BASE_OK) {
        svc_log_reader reader = svc_log_reader_of_store(e->change_store);
        err = svc_prt_restore(&tmp, &reader, true, NULL, &new_version, why, sizeof(why));
    }
    if (err != BASE_OK) {
        pthread_rwlock_unlock(&p->gate);
        svc_prt_fini(&tmp);
        if (err == BASE_EIO) {
            sto_store_close(e->change_store);
            e->change_store = NULL;
            return false;
        }
        base_log_policy(BASE_LOG_ERROR, old->name,
                        "policy %s: definition version %" PRIu64 " cannot be applied (%s); "
                        "still serving version %" PRIu64,
                        old->name, ch->cfg->def_version, why, old->def_version);
        svc_catalog_free_cfg(ch->cfg);
        ch->cfg = NULL;
        return true;
    }
    pthread_rwlock_wrlock(&p->head_lk);
    p->head_gen++;
    pthread_rwlock_wrlock(&p->prod_lk);
    pthread_mutex_lock(&p->join_lk);
    svc_catalog_swap_state(p, &tmp);
    bool prod_reset = swap_definition(p, &tmp, ch->cfg);
    pthread_mutex_unlock(&p->join_lk);
    pthread_rwlock_unlock(&p->prod_lk);
    pthread_rwlock_unlock(&p->head_lk);
    if (new_version) {
        /* Before any decision under it: a restart must find the new head version. */
        err = svc_learner_checkpoint_sync(e, p, CHANGE_SYNC_MS);
    }
    bool was_retired = finish_change(e, ch, &tmp);
    base_log_policy(BASE_LOG_INFO, p->cfg->name,
                    "policy %s: definition version %" PRIu64 " in force (was %" PRIu64 ")%s; %s%s",
                    p->cfg->name, p->cfg->def_version, old->def_version,
                    was_retired ? ", served again" : "",
                    new_version ? "a new head version" : "the head goes on",
                    prod_reset ? "; production serves its base model" : "");
    if (new_version) {
        base_log_policy(BASE_LOG_INFO, p->cfg->name,
                        "policy %s: the new head version learns from lsn %" PRIu64
                        " on (model version %" PRIu64 ")%s",
                        p->cfg->name, p->epoch_lsn, (uint64_t)atomic_load(&p->n_updates),
                        err == BASE_OK ? "" : "; its first checkpoint is not stored yet");
    }
    return true;
}

void svc_catalog_apply_changes(svc_engine *e)
{
    pthread_mutex_lock(&e->change_lk);
    struct svc_change *list = e->changes;
    e->changes = NULL;
    pthread_mutex_unlock(&e->change_lk);
    struct svc_change *retry = NULL, **tail = &retry;
    while (list != NULL) {
        struct svc_change *c = list;
        list = c->next;
        c->next = NULL;
        if (apply_one(e, c)) {
            base_free(c);
        } else {
            *tail = c;
            tail = &c->next;
        }
    }
    if (retry != NULL) {
        pthread_mutex_lock(&e->change_lk);
        *tail = e->changes;
        e->changes = retry;
        pthread_mutex_unlock(&e->change_lk);
    }
}

bool svc_catalog_changes_pending(svc_engine *e)
{
    pthread_mutex_lock(&e->change_lk);
    bool any = e->changes != NULL;
    pthread_mutex_unlock(&e->change_lk);
    return any;
}
