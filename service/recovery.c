#include "service/engine_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "storage/streamid.h"
#include "base/hash.h"
#include "base/hset.h"
#include "base/log.h"

/*
 * Start-up rebuild of a policy from its checkpoint and the streams:
 * 1. joined records after scan_joined: remembered as closed (late outcomes
 *    stay late); those after the checkpoint's last applied id are learned,
 *    in stream order, exactly as the learner would have;
 * 2. decisions after scan_decisions and outcomes after scan_outcomes,
 *    merged by lsn (the order they were admitted in): decisions without a
 *    joined record become pending again, outcomes and activations are
 *    re-applied (rate caps off: each was accepted once).
 * The head is then what it would have been had the process never stopped,
 * and the join holds what it held, so the next windows close identically.
 */

/*
 * The key of a decision in the set of joined ones: its event id, time and log sequence
 * number, since an event id names a new decision once the window of the last closed
 * (docs/rewards.md), and a joined record carries its decision whole.
 */
static uint64_t decision_key(const base_decision *d)
{
    uint64_t h = base_hash64(d->event_id, strlen(d->event_id), 0x6a6f696e6564ULL);
    uint64_t at[2] = {(uint64_t)d->ts_ms, d->lsn};
    return base_hash64(at, sizeof(at), h) | 1u;
}

#define REPLAY_BATCH 256

/* A stream being read in batches. */
typedef struct cursor {
    sto_kind kind;
    char after[BASE_STREAM_ID_MAX + 1];
    sto_entry *en;
    size_t n;
    size_t i;
    bool done;
} cursor;

/* @e's text, with the store's own words when Redis answered an error (a log line). */
static const char *why(const svc_log_reader *st, base_err e, char *buf, size_t len)
{
    const char *words = (e == BASE_ESTORE || e == BASE_EPROTO) && st->ops->last_error != NULL
                            ? st->ops->last_error(st->impl)
                            : "";
    if (words[0] == '\0') {
        return base_strerror(e);
    }
    (void)snprintf(buf, len, "%s (%s)", base_strerror(e), words);
    return buf;
}

static base_err cursor_fill(const svc_log_reader *st, const char *policy, cursor *c)
{
    if (c->done || c->i < c->n) {
        return BASE_OK;
    }
    sto_entries_free(c->kind, c->en, c->n);
    c->en = NULL;
    c->n = c->i = 0;
    base_err e = st->ops->read(st->impl, c->kind, policy, c->after, REPLAY_BATCH, &c->en, &c->n);
    if (e == BASE_OK && c->n == 0) {
        c->done = true;
    } else if (e == BASE_OK) {
        base_strlcpy(c->after, c->en[c->n - 1].id, sizeof(c->after));
    }
    return e;
}

static uint64_t cursor_lsn(const cursor *c)
{
    const void *r = c->en[c->i].rec;
    return c->kind == STO_DECISIONS ? ((const base_decision *)r)->lsn
                                    : ((const base_outcome *)r)->lsn;
}

/*
 * A record in @p's stream @kind at @id that names another policy: written there by something
 * else (a record rlfeedd writes names its stream's policy). Its words into @bad.
 */
static bool foreign(const svc_prt *p, sto_kind kind, const char *id, const char *policy, char *bad,
                    size_t badlen)
{
    static const char *const names[] = {"decisions", "outcomes", "joined"};
    if (strcmp(policy, p->cfg->name) == 0) {
        return false;
    }
    snprintf(bad, badlen, "rlfeed:{%s}:%s entry %s is a record of policy \"%.64s\"", p->cfg->name,
             names[kind], id, policy);
    return true;
}

static base_err replay_joined(svc_prt *p, const svc_log_reader *st, const char *from,
                              const char *applied, base_hset *joined, uint64_t *out_learned,
                              char *bad, size_t badlen)
{
    cursor c = {.kind = STO_JOINED};
    base_strlcpy(c.after, from, sizeof(c.after));
    base_err e = BASE_OK;
    for (;;) {
        e = cursor_fill(st, p->cfg->name, &c);
        if (e != BASE_OK || c.done) {
            break;
        }
        for (; c.i < c.n && e == BASE_OK; c.i++) {
            const base_joined *j = c.en[c.i].rec;
            const char *id = c.en[c.i].id;
            if (foreign(p, STO_JOINED, id, j->decision->policy, bad, badlen)) {
                e = BASE_EPROTO;
                break;
            }
            e = base_hset_put(joined, decision_key(j->decision), 0);
            rwd_join_mark_closed(p->join, j->decision->event_id, j->decision->conversation_id,
                                 j->joined_ts_ms);
            if (sto_sid_cmp_text(id, applied) > 0) {
                svc_prt_learn(p, j, id);
                (*out_learned)++;
            }
            svc_prt_set_tail(p, STO_JOINED, id);
        }
    }
    sto_entries_free(c.kind, c.en, c.n);
    return e;
}

static base_err replay_join(svc_prt *p, const svc_log_reader *st, const char *from_d,
                            const char *from_o, const base_hset *joined, uint64_t *io_next_lsn,
                            uint64_t *out_pending, char *bad, size_t badlen)
{
    cursor cd = {.kind = STO_DECISIONS}, co = {.kind = STO_OUTCOMES};
    base_strlcpy(cd.after, from_d, sizeof(cd.after));
    base_strlcpy(co.after, from_o, sizeof(co.after));
    base_err e = BASE_OK;
    rwd_join_set_replay(p->join, true);
    for (;;) {
        e = cursor_fill(st, p->cfg->name, &cd);
        if (e == BASE_OK) {
            e = cursor_fill(st, p->cfg->name, &co);
        }
        if (e != BASE_OK || (cd.done && co.done)) {
            break;
        }
        bool take_d = !cd.done && (co.done || cursor_lsn(&cd) < cursor_lsn(&co));
        cursor *c = take_d ? &cd : &co;
        const char *rec_policy = take_d ? ((const base_decision *)c->en[c->i].rec)->policy
                                        : ((const base_outcome *)c->en[c->i].rec)->policy;
        if (foreign(p, c->kind, c->en[c->i].id, rec_policy, bad, badlen)) {
            e = BASE_EPROTO;
            break;
        }
        uint64_t lsn = cursor_lsn(c);
        *io_next_lsn = lsn + 1 > *io_next_lsn ? lsn + 1 : *io_next_lsn;
        svc_prt_set_tail(p, c->kind, c->en[c->i].id);
        const char *inbox_id = take_d ? ((const base_decision *)c->en[c->i].rec)->inbox_id
                                      : ((const base_outcome *)c->en[c->i].rec)->inbox_id;
        if (inbox_id[0] != '\0' && sto_sid_cmp_text(inbox_id, p->inbox_pos) > 0) {
            base_strlcpy(p->inbox_pos, inbox_id, sizeof(p->inbox_pos)); /* taken before */
        }
        if (take_d) {
            const base_decision *d = c->en[c->i].rec;
            bool pending = false;
            rwd_join_contains(p->join, d->event_id, d->ts_ms, &pending);
            /*
             * Not made pending again: overflow decisions (never were), decisions already
             * joined, and a repeat of a pending one (a copy a retried append left). The same
             * event id after the window of the one before it closed is a new decision.
             */
            if (!d->overflow && !pending && !base_hset_get(joined, decision_key(d), NULL)) {
                base_decision *copy = base_decision_clone(d);
                e = copy == NULL ? BASE_ENOMEM : rwd_join_add_decision(p->join, copy, d->ts_ms);
                if (e == BASE_OK) {
                    (*out_pending)++;
                } else {
                    /*
                     * Out of memory, or past max_pending (lowered since the
                     * decision was admitted): the join would not be what the
                     * log says, so the model would stop being a function of
                     * the stream. Refuse to start; the reason is logged.
                     */
                    base_decision_free(copy);
                    break;
                }
            }
        } else {
            const base_outcome *o = c->en[c->i].rec;
            rwd_status rs;
            e = o->type == BASE_OUT_ACTIVATE
                    ? rwd_join_activate(p->join, o->event_id, o->arrived_ms, &rs)
                    : rwd_join_add_outcome(p->join, o, o->arrived_ms, &rs);
        }
        c->i++;
        if (e != BASE_OK) {
            break;
        }
    }
    rwd_join_set_replay(p->join, false);
    sto_entries_free(cd.kind, cd.en, cd.n);
    sto_entries_free(co.kind, co.en, co.n);
    return e;
}

/* What the audit trail records of a restore: the checkpoint's stamps beside the config's. */
static void note_restored(const svc_prt *p, const base_snapshot *m, uint64_t learned,
                          uint64_t pending, svc_restored *out)
{
    memset(out, 0, sizeof(*out));
    out->found = m != NULL;
    out->learned = learned;
    out->pending = pending;
    if (m != NULL) {
        out->version = m->version;
        base_strlcpy(out->snap_config_hash, m->config_hash, sizeof(out->snap_config_hash));
        base_strlcpy(out->snap_spec, m->spec_version, sizeof(out->snap_spec));
        base_strlcpy(out->snap_base, m->base_version, sizeof(out->snap_base));
    }
    svc_learner_config_hash(p->cfg, out->config_hash, sizeof(out->config_hash));
    rwd_spec_version(&p->cfg->reward, out->spec, sizeof(out->spec));
    base_strlcpy(out->base, p->cfg->base_version, sizeof(out->base));
}

base_err svc_prt_restore(svc_prt *p, const svc_log_reader *store, bool new_version_ok,
                         svc_restored *done, bool *out_new_version, char *errbuf, size_t errlen)
{
    base_snapshot *m = NULL;
    bool found = false;
    bool fresh = false; /* a new head version: the checkpoint's head does not fit */
    base_err err = store->ops->model(store->impl, p->cfg->name, &m, &found);
    if (err != BASE_OK) {
        char w[320];
        snprintf(errbuf, errlen, "policy \"%s\": loading snapshot: %s", p->cfg->name,
                 why(store, err, w, sizeof(w)));
        return err;
    }
    char acts[320] = "";
    if (found) {
        err = svc_portfolio_restore(p->cfg, p->pf, m, acts, sizeof(acts));
        if (err == BASE_EINVAL && new_version_ok) {
            /*
             * A changed definition the head cannot follow (docs/operations.md, "Policies at
             * run time"): a new head version, learning only from decisions made from now on,
             * its version numbers continuing the old head's.
             */
            fresh = true;
            err = BASE_OK;
            pol_portfolio_set_version(p->pf, m->n_updates + 1);
            p->epoch_lsn = UINT64_MAX; /* nothing in the log yet is the new version's */
        }
        if (err != BASE_OK && acts[0] != '\0') {
            snprintf(errbuf, errlen,
                     "policy \"%s\": %s. Put the old list back, or put the changed definition "
                     "in the policy catalog (rlfeed policy put) to start a new head version",
                     p->cfg->name, acts);
            base_snapshot_free(m);
            return err;
        }
        if (err != BASE_OK) {
            snprintf(errbuf, errlen,
                     "policy \"%s\": snapshot version %" PRIu64 " (dim %u, %u actions, learner "
                     "%s) does not fit the configured head (dim %u, %u actions, learner %s; or "
                     "another feature map or seed): %s",
                     p->cfg->name, m->version, m->dim, m->n_actions, m->learner, p->cfg->head.dim,
                     p->cfg->head.n_actions, pol_learner_name(p->cfg->head.learner),
                     base_strerror(err));
            base_snapshot_free(m);
            return err;
        }
        base_strlcpy(p->last_joined_id, m->last_joined_id, sizeof(p->last_joined_id));
        base_strlcpy(p->inbox_pos, m->inbox_pos, sizeof(p->inbox_pos));
        base_strlcpy(p->snapshot_inbox, m->inbox_pos, sizeof(p->snapshot_inbox));
        if (!fresh) {
            p->epoch_lsn = m->epoch_lsn;
            base_strlcpy(p->learned_spec, m->spec_version, sizeof(p->learned_spec));
        }
        atomic_store(&p->n_updates, pol_portfolio_n_updates(p->pf));
        p->last_version = m->version;
        p->last_parent = m->parent;
    }
    char sd[BASE_STREAM_ID_MAX + 1] = "", so[BASE_STREAM_ID_MAX + 1] = "";
    char sj[BASE_STREAM_ID_MAX + 1] = "";
    uint64_t next_lsn = 0, learned = 0, pending = 0;
    if (found) {
        base_strlcpy(sd, m->scan_decisions, sizeof(sd));
        base_strlcpy(so, m->scan_outcomes, sizeof(so));
        base_strlcpy(sj, m->scan_joined, sizeof(sj));
        next_lsn = m->next_lsn;
    }
    base_hset joined;
    base_hset_init(&joined, SIZE_MAX);
    char bad[300] = "";
    err = replay_joined(p, store, sj, p->last_joined_id, &joined, &learned, bad, sizeof(bad));
    if (err == BASE_OK) {
        err = replay_join(p, store, sd, so, &joined, &next_lsn, &pending, bad, sizeof(bad));
    }
    base_hset_fini(&joined);
    if (err != BASE_OK) {
        char w[320];
        if (bad[0] != '\0') {
            snprintf(w, sizeof(w), "%s (%s)", base_strerror(err), bad);
        }
        snprintf(errbuf, errlen, "policy \"%s\": replaying the streams: %s%s", p->cfg->name,
                 bad[0] != '\0' ? w : why(store, err, w, sizeof(w)),
                 err == BASE_ELIMIT ? " (more pending decisions than max_pending)" : "");
        base_snapshot_free(m);
        return err;
    }
    /*
     * A stream the replay read nothing of ends at its scan position: that is its tail until
     * the writer stores more, so the marks taken from now on (and the retention bound a
     * checkpoint derives from them) start there, not at "" (which trims nothing).
     */
    char tails[3][BASE_STREAM_ID_MAX + 1];
    const char *scan[3] = {[STO_DECISIONS] = sd, [STO_OUTCOMES] = so, [STO_JOINED] = sj};
    svc_prt_read_tails(p, tails);
    for (int k = 0; k < 3; k++) {
        if (tails[k][0] == '\0' && scan[k][0] != '\0') {
            svc_prt_set_tail(p, (sto_kind)k, scan[k]);
        }
    }
    /* The scan positions cover everything rebuilt: the first mark. */
    p->next_lsn = next_lsn;
    if (fresh) {
        p->epoch_lsn = next_lsn; /* the new version learns from the next decision on */
    }
    p->mark_head = 0;
    p->n_marks = 1;
    p->marks[0].lsn = 0;
    base_strlcpy(p->marks[0].tail[STO_DECISIONS], sd, sizeof(p->marks[0].tail[0]));
    base_strlcpy(p->marks[0].tail[STO_OUTCOMES], so, sizeof(p->marks[0].tail[0]));
    base_strlcpy(p->marks[0].tail[STO_JOINED], sj, sizeof(p->marks[0].tail[0]));
    p->snapshot_updates = fresh ? UINT64_MAX : atomic_load(&p->n_updates); /* fresh: due */
    p->snapshot_lsn = found ? m->next_lsn : 0;
    base_log_policy(BASE_LOG_INFO, p->cfg->name,
                    "policy %s: %s; replayed %" PRIu64 " joined examples and rebuilt %" PRIu64
                    " pending decisions (model version %" PRIu64 ", next lsn %" PRIu64 ")",
                    p->cfg->name,
                    fresh && acts[0] != '\0'
                        ? "a new head version (the checkpoint's head was learned for another "
                          "list of actions)"
                    : fresh ? "a new head version (the checkpoint's head does not fit the "
                              "definition)"
                    : found ? "restored the checkpoint"
                            : "no checkpoint",
                    learned, pending, (uint64_t)atomic_load(&p->n_updates), next_lsn);
    if (done != NULL) {
        note_restored(p, found ? m : NULL, learned, pending, done);
    }
    if (out_new_version != NULL) {
        *out_new_version = fresh;
    }
    base_snapshot_free(m);
    return BASE_OK;
}

base_err svc_prt_follow_snapshot(svc_prt *p, const base_snapshot *m, char *why, size_t whylen)
{
    pol_portfolio *pf = NULL;
    const svc_policy_config *cfg = p->cfg;
    base_err err = pol_portfolio_new(&cfg->portfolio, &pf);
    if (err == BASE_OK && m != NULL) {
        err = svc_portfolio_restore(cfg, pf, m, why, whylen);
        if (err == BASE_EINVAL && why != NULL && whylen > 0 && why[0] == '\0') {
            snprintf(why, whylen,
                     "it does not fit this instance's definition of the policy (the "
                     "checkpoint: dim %u, %u actions, learner %s; here: dim %u, %u actions, "
                     "learner %s; or another feature map or seed): define the policy alike on "
                     "every instance",
                     m->dim, m->n_actions, m->learner, cfg->head.dim, cfg->head.n_actions,
                     pol_learner_name(cfg->head.learner));
        }
    }
    if (err != BASE_OK) {
        pol_portfolio_free(pf);
        return err;
    }
    pthread_rwlock_wrlock(&p->head_lk);
    p->head_gen++;
    /* Not if taken over meanwhile (its own head stays) or redefined (the change loaded it). */
    if (atomic_load(&p->follower) && p->cfg == cfg) {
        pol_portfolio *old = p->pf;
        p->pf = pf;
        pf = old;
        atomic_store(&p->n_updates, pol_portfolio_n_updates(p->pf));
    }
    pthread_rwlock_unlock(&p->head_lk);
    pol_portfolio_free(pf);
    return BASE_OK;
}

/* A policy this instance follows (shared = on): the owner's newest checkpoint, no replay. */
static base_err follow_restore(svc_prt *p, const svc_log_reader *store, char *errbuf, size_t errlen)
{
    base_snapshot *m = NULL;
    bool found = false;
    base_err err = store->ops->model(store->impl, p->cfg->name, &m, &found);
    char acts[320] = "";
    if (err == BASE_OK && found) {
        err = svc_prt_follow_snapshot(p, m, acts, sizeof(acts));
    }
    if (err != BASE_OK && err != BASE_ENOMEM && found && p->cfg->def_version > 0) {
        /* A catalog change its owner has not checkpointed yet: as a change at run time does. */
        base_log_policy(BASE_LOG_INFO, p->cfg->name,
                        "policy %s: its owner's newest checkpoint does not fit definition "
                        "version %" PRIu64 " (%s); following from the base model until it "
                        "stores one",
                        p->cfg->name, p->cfg->def_version,
                        acts[0] != '\0' ? acts : "another shape");
        base_snapshot_free(m);
        return BASE_OK;
    }
    if (err != BASE_OK) {
        char w[320];
        snprintf(errbuf, errlen, "policy \"%s\": loading its owner's checkpoint: %s", p->cfg->name,
                 acts[0] != '\0' ? acts : why(store, err, w, sizeof(w)));
    } else {
        base_log_policy(BASE_LOG_INFO, p->cfg->name,
                        "policy %s: following its owner from %s (model version %" PRIu64 ")",
                        p->cfg->name, found ? "its newest checkpoint" : "the base model",
                        (uint64_t)atomic_load(&p->n_updates));
    }
    base_snapshot_free(m);
    return err;
}

base_err svc_engine_restore(svc_engine *e, const svc_log_reader *store, char *errbuf, size_t errlen)
{
    svc_restored *done = base_alloc_zero(SVC_MAX_POLICIES, sizeof(*done));
    if (done == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return BASE_ENOMEM;
    }
    for (uint32_t i = 0; i < e->n_pol; i++) {
        /* A definition from the policy catalog may start a new head version; the file's not. */
        svc_prt *p = &e->pol[i];
        base_err err = atomic_load(&p->follower)
                           ? follow_restore(p, store, errbuf, errlen)
                           : svc_prt_restore(p, store, p->cfg->def_version > 0, &done[i], NULL,
                                             errbuf, errlen);
        if (err != BASE_OK) {
            base_strlcpy(e->restore_failed, p->cfg->name, sizeof(e->restore_failed));
            base_free(done);
            return err;
        }
    }
    base_free(e->restored);
    e->restored = done;
    return BASE_OK;
}

const char *svc_engine_restore_failed(const svc_engine *e)
{
    return e->restore_failed;
}

bool svc_engine_restored(const svc_engine *e, uint32_t i, svc_restored *out)
{
    if (e->restored == NULL || i >= e->n_pol || atomic_load(&e->pol[i].follower)) {
        return false;
    }
    *out = e->restored[i];
    return true;
}
