/*
 * The learner thread: every tick_ms it closes the windows the service clock
 * has passed (joined examples -> the writer), applies the examples Redis has
 * stored to the heads in stream order, and takes checkpoints (with the
 * retention they make safe) every snapshot_interval_ms or snapshot_every
 * updates, and once more at stop.
 */
#include "service/engine_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "storage/streamid.h"
#include "base/hash.h"
#include "base/quant.h"
#include "base/thread.h"
#include "service/explain.h"
#include "service/rollup.h"

/*
 * Runs on the writer thread once Redis has (or refused) a joined example.
 * @arg is the learn item allocated at submission, so a stored example never
 * fails to reach the learner for want of memory here.
 */
static void on_joined_stored(void *arg, svc_persist_item *it, base_err result)
{
    svc_learn_item *li = arg;
    svc_prt *p = li->pol;
    svc_engine *e = p->eng;
    if (result != BASE_OK) {
        atomic_fetch_add(&p->c.store_errors, 1);
        atomic_fetch_sub(&e->learn_inflight, 1);
        base_free(li);
        return;
    }
    svc_prt_set_tail(p, STO_JOINED, it->stream_id);
    li->j = it->rec;
    it->rec = NULL;
    base_strlcpy(li->stream_id, it->stream_id, sizeof(li->stream_id));
    /* Cannot be full: learn_inflight bounds what is expired but not applied. */
    if (base_queue_push(e->learn_q, li) != BASE_OK) {
        atomic_fetch_add(&p->c.learn_errors, 1);
        atomic_fetch_sub(&e->learn_inflight, 1);
        base_joined_free(li->j);
        base_free(li);
    }
}

static void apply(svc_engine *e, svc_learn_item *li)
{
    if (!atomic_load(&li->pol->follower)) { /* stepped down: the new owner learns it */
        (void)svc_prt_learn(li->pol, li->j, li->stream_id); /* failures are counted */
    }
    base_joined_free(li->j);
    base_free(li);
    atomic_fetch_sub(&e->learn_inflight, 1);
}

/* Hand the policy's backlog of expired examples to persist, oldest first. */
static void flush_backlog(svc_engine *e, svc_prt *p)
{
    size_t k = 0;
    while (k < p->n_backlog) {
        svc_learn_item *li = base_alloc_zero(1, sizeof(*li));
        svc_persist_item *it = li == NULL ? NULL
                                          : svc_persist_item_new(SVC_PERSIST_APPEND, STO_JOINED,
                                                                 p->cfg->name, p->backlog[k]);
        if (it == NULL) {
            base_free(li);
            break; /* out of memory: the backlog waits for the next tick */
        }
        li->pol = p;
        it->index_ttl_ms = svc_explain_index_ttl_ms(e->cfg);
        it->done = on_joined_stored;
        it->done_arg = li;
        it->lazy = true;
        if (svc_log_submit(&e->log, it) != BASE_OK) {
            it->rec = NULL;
            svc_persist_item_free(it);
            base_free(li);
            break;
        }
        k++;
    }
    memmove(p->backlog, p->backlog + k, (p->n_backlog - k) * sizeof(p->backlog[0]));
    p->n_backlog -= k;
}

/*
 * Expire up to SVC_EXPIRE_BATCH windows closed by @now_ms and hand them to
 * persist. Returns how many were expired (all handed over, or the rest kept
 * in the backlog for the next call).
 */
static size_t expire(svc_engine *e, svc_prt *p, int64_t now_ms)
{
    if (atomic_load(&p->follower)) {
        return 0; /* its owner joins it (shared = on) */
    }
    flush_backlog(e, p);
    if (p->n_backlog > 0) {
        return 0; /* persist is full; try again next tick */
    }
    size_t inflight = atomic_load(&e->learn_inflight);
    size_t room = e->learn_cap > inflight ? e->learn_cap - inflight : 0;
    if (room > SVC_EXPIRE_BATCH) {
        room = SVC_EXPIRE_BATCH;
    }
    if (room == 0) {
        return 0;
    }
    pthread_mutex_lock(&p->join_lk);
    size_t n = rwd_join_expire(p->join, now_ms, p->backlog, room);
    pthread_mutex_unlock(&p->join_lk);
    atomic_fetch_add(&e->learn_inflight, n);
    p->n_backlog = n;
    flush_backlog(e, p);
    return n;
}

/*
 * Every window closed by @now_ms, a batch at a time, while persist takes
 * them and fewer than learn_cap examples are between the join and the head:
 * no fixed number per tick caps how fast learning follows decisions.
 */
static void expire_all(svc_engine *e, svc_prt *p, int64_t now_ms)
{
    while (expire(e, p, now_ms) == SVC_EXPIRE_BATCH && p->n_backlog == 0) {
    }
}

/*
 * Apply every expired example (expiring nothing new meanwhile). True once
 * nothing is in flight between the join and the head, the precondition of a
 * checkpoint; false if that did not happen within @timeout_ms (Redis away).
 */
static bool drain_inflight(svc_engine *e, int timeout_ms)
{
    void *items[64];
    uint64_t deadline = base_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    /* A stop cuts it short: the shutdown's drain has its own budget (learner_main()). */
    while (atomic_load(&e->learn_inflight) > 0 && base_mono_ns() < deadline &&
           !atomic_load(&e->stop)) {
        for (uint32_t i = 0; i < e->n_pol; i++) {
            flush_backlog(e, &e->pol[i]);
        }
        size_t n = 0;
        (void)base_queue_pop_batch(e->learn_q, items, 64, 5, &n); /* timeout is normal */
        for (size_t k = 0; k < n; k++) {
            apply(e, items[k]);
        }
        svc_acks_expire(e);
    }
    return atomic_load(&e->learn_inflight) == 0;
}

/*
 * What a checkpoint lets retention remove: entries older than the retention
 * window (by the streams' own Redis-time ids), but never at or after a replay
 * position or, for the joined stream, the last applied id. "" = keep all.
 */
static void retention(const svc_engine *e, svc_prt *p, char (*pos)[BASE_STREAM_ID_MAX + 1],
                      svc_trim *out)
{
    char tails[3][BASE_STREAM_ID_MAX + 1];
    memset(out, 0, sizeof(*out));
    out->keep_snapshots = e->cfg->keep_snapshots;
    svc_prt_read_tails(p, tails);
    for (int k = 0; k < 3; k++) {
        unsigned long long ms = 0, seq = 0;
        const char *floor_id = pos[k];
        if (k == STO_JOINED && sto_sid_cmp_text(p->last_joined_id, floor_id) < 0) {
            floor_id = p->last_joined_id;
        }
        if (floor_id[0] == '\0' || sscanf(tails[k], "%llu-%llu", &ms, &seq) != 2 ||
            ms < (unsigned long long)e->cfg->retention_ms) {
            continue; /* replay from the start, or nothing old enough */
        }
        char bound[BASE_STREAM_ID_MAX + 1];
        snprintf(bound, sizeof(bound), "%llu-0", ms - (unsigned long long)e->cfg->retention_ms);
        base_strlcpy(out->minid[k], sto_sid_cmp_text(bound, floor_id) < 0 ? bound : floor_id,
                     sizeof(out->minid[k]));
    }
}

/*
 * A hash of what makes a policy's head and rewards what they are: shape,
 * actions in order, learner settings and the reward spec's version. Stamped
 * on snapshots so a snapshot can be matched to the configuration it grew
 * under.
 */
void svc_learner_config_hash(const svc_policy_config *c, char *out, size_t size)
{
    char text[1024];
    const pol_head_config *h = &c->head;
    char rv[BASE_NAME_MAX + 1];
    rwd_spec_version(&c->reward, rv, sizeof(rv));
    snprintf(text, sizeof(text),
             "dim %u learner %d explorer %d eps %.17g T %.17g lr %.17g "
             "lambda %.17g prior %.17g bw %.17g gamma %.17g alpha %.17g kl %.17g seed %llu "
             "reward %s portfolio %s",
             h->dim, (int)h->learner, (int)h->explorer, h->epsilon, h->temperature,
             h->learning_rate, h->lambda, h->prior_mean, h->base_weight, h->gamma, h->ucb_alpha,
             h->kl, (unsigned long long)h->seed, rv, c->portfolio_spec);
    if (h->features != POL_FEATURES_LINEAR) {
        /* Appended only past linear: linear configurations hash as before feature maps. */
        size_t n = strlen(text);
        snprintf(text + n, sizeof(text) - n, " features %s rff %u bw %.17g",
                 pol_features_name(h->features), h->rff_dim, h->bandwidth);
    }
    if (c->embedding_storage != BASE_EMB_F32) {
        /* Learning is on the stored values: appended only past f32, so f32 hashes as before. */
        size_t n = strlen(text);
        snprintf(text + n, sizeof(text) - n, " emb %s",
                 base_emb_storage_name((base_emb_storage)c->embedding_storage));
    }
    if (h->action_dim > 0) {
        /* An open action set: appended only then, so closed configurations hash as before. */
        size_t n = strlen(text);
        snprintf(text + n, sizeof(text) - n, " open %u ix %u", h->action_dim, h->interaction_dim);
    }
    if (c->portfolio_mix >= 0.0) {
        /* Appended only when set: configurations without it hash as before. */
        size_t n = strlen(text);
        snprintf(text + n, sizeof(text) - n, " mix %.17g", c->portfolio_mix);
    }
    uint64_t x = base_hash64(text, strlen(text), 0x636f6e66);
    for (uint32_t a = 0; a < c->n_actions; a++) {
        x = base_hash64(c->actions[a], strlen(c->actions[a]), x);
    }
    snprintf(out, size, "c%016llx", (unsigned long long)x);
}

base_err svc_portfolio_restore(const svc_policy_config *c, pol_portfolio *pf,
                               const base_snapshot *m, char *why, size_t whylen)
{
    return svc_snapshot_actions_fit(c, m, why, whylen) ? pol_portfolio_restore(pf, m) : BASE_EINVAL;
}

bool svc_snapshot_actions_fit(const svc_policy_config *c, const base_snapshot *m, char *why,
                              size_t whylen)
{
    const char *h = c->actions_hash;
    if (svc_config_actions_fit(c, m->actions_hash)) {
        return true;
    }
    if (why != NULL) {
        snprintf(why, whylen,
                 "snapshot version %" PRIu64 " was learned for another list of actions "
                 "(%s; policy %s has %s): an action renamed, added, removed or moved",
                 m->version, m->actions_hash, c->name, h[0] != '\0' ? h : "an open set");
    }
    return false;
}

/*
 * Queue a checkpoint of @p: the head, the last applied joined id, and where
 * a replay must start to rebuild the join (docs/architecture.md,
 * "Recovery"). Needs drain_inflight() first: then every decision is either
 * pending (lsn >= the oldest pending lsn, covered by a mark) or joined,
 * stored and applied. Skipped when nothing changed since the last one.
 */
static svc_persist_item *checkpoint_item(svc_engine *e, svc_prt *p, bool force);

/* Checkpoint @parent's child is queued: the next one is due only after more learning. */
static void queued(svc_prt *p, uint64_t parent)
{
    p->snapshot_updates = atomic_load(&p->n_updates);
    p->last_version = p->snapshot_updates;
    p->last_parent = parent;
    atomic_fetch_add(&p->c.snapshots, 1);
}

static void checkpoint(svc_engine *e, svc_prt *p)
{
    if (atomic_load(&p->follower)) {
        return; /* its owner checkpoints it; a follower only reads them */
    }
    svc_persist_item *it = checkpoint_item(e, p, false);
    uint64_t parent = it != NULL ? ((const base_snapshot *)it->rec)->parent : 0;
    if (it != NULL && svc_log_submit(&e->log, it) != BASE_OK) {
        svc_persist_item_free(it);
        return; /* queue full: the next interval tries again */
    }
    if (it != NULL) {
        queued(p, parent);
    }
}

/* A checkpoint stored synchronously: svc_learner_checkpoint_sync(). */
typedef struct sync_wait {
    pthread_mutex_t lk;
    pthread_cond_t cv;
    bool done, abandoned;
    base_err result;
} sync_wait;

static void on_sync_stored(void *arg, svc_persist_item *it, base_err result)
{
    (void)it;
    sync_wait *w = arg;
    pthread_mutex_lock(&w->lk);
    bool abandoned = w->abandoned;
    w->done = true;
    w->result = result;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->lk);
    if (abandoned) {
        pthread_mutex_destroy(&w->lk);
        pthread_cond_destroy(&w->cv);
        base_free(w);
    }
}

base_err svc_learner_checkpoint_sync(svc_engine *e, svc_prt *p, int timeout_ms)
{
    if (!drain_inflight(e, timeout_ms)) {
        return BASE_ETIMEDOUT;
    }
    sync_wait *w = base_alloc_zero(1, sizeof(*w));
    svc_persist_item *it = w != NULL ? checkpoint_item(e, p, true) : NULL;
    if (it == NULL) {
        base_free(w);
        return BASE_ENOMEM;
    }
    pthread_mutex_init(&w->lk, NULL);
    (void)base_cond_init_mono(&w->cv);
    it->done = on_sync_stored;
    it->done_arg = w;
    uint64_t parent = ((const base_snapshot *)it->rec)->parent;
    if (svc_log_submit(&e->log, it) != BASE_OK) {
        svc_persist_item_free(it);
        pthread_mutex_destroy(&w->lk);
        pthread_cond_destroy(&w->cv);
        base_free(w);
        return BASE_ELIMIT;
    }
    queued(p, parent);
    /* The writer stores in queue order: once this is stored, so is all queued before it. */
    struct timespec until = base_mono_deadline((uint64_t)timeout_ms * 1000000u);
    pthread_mutex_lock(&w->lk);
    while (!w->done) {
        if (pthread_cond_timedwait(&w->cv, &w->lk, &until) != 0) {
            break;
        }
    }
    bool done = w->done;
    base_err result = done ? w->result : BASE_ETIMEDOUT;
    w->abandoned = !done; /* the writer frees it when it completes */
    pthread_mutex_unlock(&w->lk);
    if (done) {
        pthread_mutex_destroy(&w->lk);
        pthread_cond_destroy(&w->cv);
        base_free(w);
    }
    return result;
}

/* The checkpoint item of @p (NULL: nothing changed since the last one and not @force, or OOM). */
static svc_persist_item *checkpoint_item(svc_engine *e, svc_prt *p, bool force)
{
    char pos[3][BASE_STREAM_ID_MAX + 1];
    uint64_t min_lsn = 0;
    char inbox_pos[BASE_STREAM_ID_MAX + 1];
    pthread_mutex_lock(&p->join_lk);
    bool any = rwd_join_min_lsn(p->join, &min_lsn);
    uint64_t next_lsn = p->next_lsn;
    memcpy(inbox_pos, p->inbox_pos, sizeof(inbox_pos)); /* its records are queued before */
    if (!any) {
        /* Nothing pending: everything stored so far is joined; start at the tails. */
        svc_prt_read_tails(p, pos);
        p->n_marks = 0;
    } else {
        /* The newest mark at or below the oldest pending lsn; older marks are done. */
        size_t keep = 0;
        for (size_t k = 0; k < p->n_marks; k++) {
            if (p->marks[(p->mark_head + k) % SVC_MARK_RING].lsn <= min_lsn) {
                keep = k;
            }
        }
        const svc_mark *m = &p->marks[(p->mark_head + keep) % SVC_MARK_RING];
        memcpy(pos, m->tail, sizeof(pos));
        p->mark_head = (p->mark_head + keep) % SVC_MARK_RING;
        p->n_marks -= keep;
    }
    pthread_mutex_unlock(&p->join_lk);

    uint64_t n = atomic_load(&p->n_updates);
    /* Inbox entries taken without a record (copies, misfits) move inbox_pos alone. */
    if (!force && n == p->snapshot_updates && next_lsn == p->snapshot_lsn &&
        strcmp(inbox_pos, p->snapshot_inbox) == 0) {
        return NULL;
    }
    base_snapshot *m = NULL;
    /*
     * The learner thread is an owned policy's only head writer (the registry and catalog
     * threads replace a follower's, which is never checkpointed): no lock needed here.
     */
    if (pol_portfolio_snapshot(p->pf, &m) != BASE_OK) {
        atomic_fetch_add(&p->c.store_errors, 1);
        return NULL;
    }
    base_strlcpy(m->policy, p->cfg->name, sizeof(m->policy));
    base_strlcpy(m->last_joined_id, p->last_joined_id, sizeof(m->last_joined_id));
    base_strlcpy(m->scan_decisions, pos[STO_DECISIONS], sizeof(m->scan_decisions));
    base_strlcpy(m->scan_outcomes, pos[STO_OUTCOMES], sizeof(m->scan_outcomes));
    base_strlcpy(m->scan_joined, pos[STO_JOINED], sizeof(m->scan_joined));
    m->next_lsn = next_lsn;
    base_strlcpy(m->inbox_pos, inbox_pos, sizeof(m->inbox_pos));
    m->epoch_lsn = p->epoch_lsn;
    /* A checkpoint at the version of the last one replaces it (model:<v>): keep its parent. */
    m->parent = m->n_updates == p->last_version ? p->last_parent : p->last_version;
    if (p->learned_spec[0] != '\0') {
        base_strlcpy(m->spec_version, p->learned_spec, sizeof(m->spec_version));
    } else {
        rwd_spec_version(&p->cfg->reward, m->spec_version, sizeof(m->spec_version));
    }
    base_strlcpy(m->base_version, p->cfg->base_version, sizeof(m->base_version));
    svc_learner_config_hash(p->cfg, m->config_hash, sizeof(m->config_hash));
    memcpy(m->actions_hash, p->cfg->actions_hash, sizeof(m->actions_hash));
    m->version = m->n_updates;
    m->ts_ms = base_clock_now_ms(e->clock);
    svc_persist_item *it = svc_persist_item_new(SVC_PERSIST_MODEL, STO_JOINED, p->cfg->name, m);
    if (it == NULL) {
        base_snapshot_free(m);
        return NULL;
    }
    retention(e, p, pos, &it->trim);
    base_strlcpy(it->trim.inbox_minid, inbox_pos, sizeof(it->trim.inbox_minid));
    p->snapshot_lsn = next_lsn;
    memcpy(p->snapshot_inbox, inbox_pos, sizeof(p->snapshot_inbox));
    return it;
}

static void checkpoint_all(svc_engine *e)
{
    if (!drain_inflight(e, 2000)) {
        return; /* Redis is away: keep the last checkpoint */
    }
    for (uint32_t i = 0; i < e->n_pol; i++) {
        checkpoint(e, &e->pol[i]);
    }
}

/*
 * svc_engine_step_down(), done here: the learner thread owns what an owner has and a
 * follower has not (backlog, marks, checkpoint stamps). The join and marks are replaced by
 * a fresh runtime's, with the policy's requests held at its gate; the head stays until the
 * registry thread loads the new owner's checkpoint.
 */
static void step_down(svc_engine *e, svc_prt *p)
{
    if (!atomic_exchange(&p->step_down, false) || atomic_load(&p->follower)) {
        return;
    }
    svc_prt tmp;
    char why[256] = "";
    memset(&tmp, 0, sizeof(tmp));
    if (svc_prt_init(&tmp, e, p->cfg, why, sizeof(why)) != BASE_OK) {
        svc_prt_fini(&tmp);
        atomic_store(&p->step_down, true); /* out of memory: next loop */
        return;
    }
    pthread_rwlock_wrlock(&p->gate);
    pthread_rwlock_wrlock(&p->head_lk);
    p->head_gen++;
    pthread_mutex_lock(&p->join_lk);
    rwd_join *j = p->join;
    p->join = tmp.join;
    tmp.join = j;
    svc_mark *m = p->marks;
    p->marks = tmp.marks;
    tmp.marks = m;
    p->mark_head = 0;
    p->n_marks = 0;
    p->inbox_pos[0] = '\0';
    atomic_store(&p->follower, true);
    pthread_mutex_unlock(&p->join_lk);
    pthread_rwlock_unlock(&p->head_lk);
    pthread_rwlock_unlock(&p->gate);
    for (size_t k = 0; k < p->n_backlog; k++) {
        base_joined_free(p->backlog[k]);
    }
    atomic_fetch_sub(&e->learn_inflight, p->n_backlog);
    p->n_backlog = 0;
    svc_prt_fini(&tmp);
    char holder[STO_OWNER_MAX + 1];
    pthread_mutex_lock(&p->tail_lk);
    memcpy(holder, p->holder, sizeof(holder));
    pthread_mutex_unlock(&p->tail_lk);
    base_log_policy(BASE_LOG_WARN, p->cfg->name,
                    "policy %s: stepped down: follows instance \"%s\" from now on (what this "
                    "instance had not stored is refused by the fence)",
                    p->cfg->name, holder);
}

static void *learner_main(void *arg)
{
    base_thread_name("rlf-learner");
    svc_engine *e = arg;
    void *items[64];
    uint64_t last_tick_ns = 0;
    uint64_t last_snap_ns = base_mono_ns();
    const int tick_ms = (int)e->cfg->tick_ms;
    while (!atomic_load(&e->stop)) {
        size_t n = 0;
        (void)base_queue_pop_batch(e->learn_q, items, 64, tick_ms, &n); /* timeout is normal */
        for (size_t k = 0; k < n; k++) {
            apply(e, items[k]);
        }
        svc_acks_expire(e);
        for (uint32_t i = 0; i < e->n_pol; i++) {
            step_down(e, &e->pol[i]);
        }
        if (svc_catalog_changes_pending(e)) {
            svc_catalog_apply_changes(e); /* a policy's new definition (service/catalog.c) */
        }
        /* Ticks follow real time; windows follow the (possibly manual) service clock. */
        uint64_t mono = base_mono_ns();
        if ((mono - last_tick_ns) / 1000000u >= (uint64_t)tick_ms) {
            last_tick_ns = mono;
            int64_t now = base_clock_now_ms(e->clock);
            for (uint32_t i = 0; i < e->n_pol; i++) {
                expire_all(e, &e->pol[i], now);
            }
        }
        bool due = (mono - last_snap_ns) / 1000000u >= e->cfg->snapshot_interval_ms;
        for (uint32_t i = 0; i < e->n_pol && !due; i++) {
            const svc_prt *p = &e->pol[i];
            /* A follower's version is its owner's; its checkpoints are the owner's too. */
            due = !atomic_load(&p->follower) &&
                  atomic_load(&p->n_updates) - p->snapshot_updates >= e->cfg->snapshot_every;
        }
        if (due) {
            last_snap_ns = mono;
            checkpoint_all(e);
        }
    }
    /*
     * Drain: join every window already closed, store and apply those
     * examples, then take a final checkpoint. Windows still open stay in the
     * decision and outcome streams, and the checkpoint says where.
     */
    uint64_t deadline = base_mono_ns() + (uint64_t)atomic_load(&e->drain_timeout_ms) * 1000000u;
    int64_t now = base_clock_now_ms(e->clock);
    for (;;) {
        size_t expired = 0;
        for (uint32_t i = 0; i < e->n_pol; i++) {
            size_t before = atomic_load(&e->learn_inflight);
            expire(e, &e->pol[i], now);
            expired += atomic_load(&e->learn_inflight) - before;
        }
        size_t n = 0;
        (void)base_queue_pop_batch(e->learn_q, items, 64, 10, &n); /* timeout is normal */
        for (size_t k = 0; k < n; k++) {
            apply(e, items[k]);
        }
        svc_acks_expire(e);
        bool idle = expired == 0 && atomic_load(&e->learn_inflight) == 0;
        if (idle || base_mono_ns() >= deadline) {
            break;
        }
    }
    if (atomic_load(&e->learn_inflight) == 0) {
        for (uint32_t i = 0; i < e->n_pol; i++) {
            checkpoint(e, &e->pol[i]);
        }
    }
    return NULL;
}

base_err svc_engine_start(svc_engine *e)
{
    atomic_store(&e->stop, false);
    if (pthread_create(&e->thread, NULL, learner_main, e) != 0) {
        return BASE_ENOMEM;
    }
    e->started = true;
    return BASE_OK;
}

void svc_engine_stop(svc_engine *e, int drain_timeout_ms)
{
    svc_explainer_close(e); /* its thread answers through the sockets: before they go */
    svc_rollup_close(e);
    if (e == NULL || !e->started) {
        return;
    }
    atomic_store(&e->drain_timeout_ms, drain_timeout_ms);
    atomic_store(&e->stop, true);
    pthread_join(e->thread, NULL);
    e->started = false;
}

void svc_learner_drop_queue(svc_engine *e)
{
    if (e->learn_q == NULL) {
        return;
    }
    void *items[64];
    size_t n = 0;
    base_queue_close(e->learn_q);
    while (base_queue_pop_batch(e->learn_q, items, 64, 0, &n) == BASE_OK) {
        for (size_t k = 0; k < n; k++) {
            svc_learn_item *li = items[k];
            base_joined_free(li->j);
            base_free(li);
        }
    }
    base_queue_free(e->learn_q);
    e->learn_q = NULL;
}
