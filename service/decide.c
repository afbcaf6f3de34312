#include "service/engine_impl.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/quant.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/hash.h"
#include "base/log.h"
#include "service/explain.h"
#include "service/forward.h"

/* Writer-thread completion of a decision record: only its stream id matters. */
static void on_decision_stored(void *arg, svc_persist_item *it, base_err result)
{
    svc_prt *p = arg;
    if (result == BASE_OK) {
        svc_prt_set_tail(p, STO_DECISIONS, it->stream_id);
    } else {
        atomic_fetch_add(&p->c.store_errors, 1);
    }
}

/*
 * Checks shared by decide and log, then builds the decision record: policy
 * shape, candidate count and ids. On failure *out_code/msg say why.
 */
static base_decision *build_decision(svc_prt *p, const proto_request *q, proto_errcode *out_code,
                                     char *msg, size_t msglen)
{
    const svc_policy_config *pc = p->cfg;
    if (q->dim != pc->head.dim) {
        *out_code = PROTO_E_BAD_DIMENSION;
        snprintf(msg, msglen, "context.embedding has %u entries, policy '%s' wants %u", q->dim,
                 pc->name, pc->head.dim);
        return NULL;
    }
    if (pc->max_embedding_norm > 0.0) {
        double ss = 0.0;
        for (uint32_t i = 0; i < q->dim; i++) {
            ss += (double)q->embedding[i] * (double)q->embedding[i];
        }
        if (!(sqrt(ss) <= pc->max_embedding_norm)) {
            *out_code = PROTO_E_OUT_OF_RANGE;
            snprintf(msg, msglen,
                     "context.embedding has norm %.6g, policy '%s' allows at most %.6g", sqrt(ss),
                     pc->name, pc->max_embedding_norm);
            return NULL;
        }
    }
    if (q->n_cand > pc->max_candidates) {
        *out_code = PROTO_E_TOO_MANY_CANDIDATES;
        snprintf(msg, msglen, "%u candidates, policy %s allows %u", q->n_cand, pc->name,
                 pc->max_candidates);
        return NULL;
    }
    if (q->action_dim != pc->head.action_dim) {
        *out_code = pc->open_actions ? PROTO_E_BAD_DIMENSION : PROTO_E_BAD_REQUEST;
        if (!pc->open_actions) {
            snprintf(msg, msglen,
                     "candidates carry features, but policy %.48s has a closed action set",
                     pc->name);
        } else {
            snprintf(msg, msglen, "candidates[].features has %u entries, policy %.48s wants %u",
                     q->action_dim, pc->name, pc->head.action_dim);
        }
        return NULL;
    }
    base_decision *d = base_decision_new_open(q->dim, q->n_cand, q->action_dim);
    if (d == NULL) {
        *out_code = PROTO_E_INTERNAL;
        snprintf(msg, msglen, "out of memory");
        return NULL;
    }
    if (pc->open_actions) {
        /* Any id: the decoder saw they are distinct; the shared head scores the features. */
        for (uint32_t c = 0; c < q->n_cand; c++) {
            d->action[c] = 0;
            d->base_logit[c] = q->cand[c].base_logit;
            base_strlcpy(d->cand_id[c], q->cand[c].id, sizeof(d->cand_id[c]));
        }
        memcpy(d->features, q->features, (size_t)q->n_cand * q->action_dim * sizeof(float));
    }
    for (uint32_t c = 0; c < q->n_cand && !pc->open_actions; c++) {
        uint32_t a = 0;
        if (!svc_prt_find_action(p, q->cand[c].id, &a)) {
            *out_code = PROTO_E_UNKNOWN_ACTION;
            snprintf(msg, msglen, "candidates[%u].id \"%.48s\" is not an action of policy %.48s", c,
                     q->cand[c].id, pc->name);
            goto fail;
        }
        for (uint32_t k = 0; k < c; k++) {
            if (d->action[k] == a) {
                *out_code = PROTO_E_BAD_REQUEST;
                snprintf(msg, msglen, "candidates[%u].id \"%s\" repeats candidates[%u]", c,
                         q->cand[c].id, k);
                goto fail;
            }
        }
        d->action[c] = a;
        d->base_logit[c] = q->cand[c].base_logit;
    }
    memcpy(d->embedding, q->embedding, (size_t)q->dim * sizeof(float));
    base_strlcpy(d->policy, pc->name, sizeof(d->policy));
    memcpy(d->actions_hash, pc->actions_hash, sizeof(d->actions_hash)); /* "" when open */
    base_strlcpy(d->conversation_id, q->conversation_id, sizeof(d->conversation_id));
    base_strlcpy(d->user_id, q->user_id, sizeof(d->user_id));
    d->turn = q->turn;
    return d;
fail:
    base_decision_free(d);
    return NULL;
}

/*
 * Make @d pending at its time (d->ts_ms; served here, the time of this call) and queue its
 * record for Redis, under the join lock so a duplicate event id is caught before anything
 * is logged. Takes @d on success.
 * @inbox_id: the inbox entry it came from (another instance served it), recorded as taken
 * under the same lock once its record is queued (or it is dropped as a copy); NULL when
 * served here. From the inbox, a full queue is PROTO_E_UNAVAILABLE and @d stays the
 * caller's (nothing changed, the entry is taken later); served here, it is served unlogged.
 */
/*
 * Under join_lk: whether the pending decision under @d's event id is @d itself (a copy a
 * retried inbox append left: the same time, candidates' pmf and choice) rather than another
 * decision served under the same id; one no longer pending counts as the same.
 */
static bool same_pending(svc_prt *p, const base_decision *d)
{
    bool found = false;
    base_joined *j = NULL;
    if (rwd_join_peek(p->join, d->event_id, &found, &j) != BASE_OK || !found) {
        return true;
    }
    const base_decision *q = j->decision;
    bool same = q->ts_ms == d->ts_ms && q->n_cand == d->n_cand && q->chosen == d->chosen &&
                memcmp(q->pmf, d->pmf, d->n_cand * sizeof(*d->pmf)) == 0;
    base_joined_free(j);
    return same;
}

static proto_errcode admit_decision(svc_prt *p, base_decision *d, const char *inbox_id,
                                    const char *from, char *msg, size_t msglen)
{
    proto_errcode code = PROTO_E_NONE;
    /*
     * From here on the decision holds what its record stores (embedding_storage):
     * the join, the learner and a replay all see the same values. Scoring, already
     * done, used the embedding as sent.
     */
    d->emb_storage = p->cfg->embedding_storage;
    base_emb_round((base_emb_storage)d->emb_storage, d->embedding, d->dim);
    svc_persist_item *it = svc_persist_item_new(SVC_PERSIST_APPEND, STO_DECISIONS, d->policy, NULL);
    if (it == NULL) {
        snprintf(msg, msglen, "out of memory");
        return PROTO_E_INTERNAL;
    }
    it->done = on_decision_stored;
    it->done_arg = p;
    it->lazy = true; /* the reply does not wait for the record */
    it->index_ttl_ms = svc_explain_index_ttl_ms(p->eng->cfg);
    pthread_mutex_lock(&p->join_lk);
    /*
     * Served here, the decision's time is its admission, read under the join's lock: what
     * the join does with it (held early outcomes attached or not, its window's end) is then
     * what a replay does with the stored ts_ms, also when scoring took a while or a tick
     * forgot held outcomes in between. From the inbox it is the time it was served.
     */
    if (inbox_id == NULL) {
        d->ts_ms = base_clock_now_ms(p->eng->clock);
    }
    int64_t now = d->ts_ms;
    bool dup = false;
    rwd_join_stats js;
    rwd_join_contains(p->join, d->event_id, now, &dup); /* a closed window's id is free */
    /* From the inbox, a copy a retried append left may come after the original closed. */
    dup = dup || (inbox_id != NULL && rwd_join_closed_recently(p->join, d->event_id));
    rwd_join_get_stats(p->join, &js);
    bool conflict = false;
    if (dup) {
        code = PROTO_E_DUPLICATE_EVENT;
        snprintf(msg, msglen, "event_id \"%s\" is already pending", d->event_id);
        if (inbox_id != NULL) {
            base_strlcpy(p->inbox_pos, inbox_id, sizeof(p->inbox_pos)); /* taken: dropped */
            conflict = !same_pending(p, d);
        }
    } else {
        /*
         * Past max_pending the decision is served and logged (the log of
         * record holds every decision served) but marked overflow: it never
         * becomes pending, so it is never joined or learned from, and a
         * replay skips it the same way.
         */
        bool overflow = js.pending >= p->cfg->max_pending;
        d->overflow = overflow ? 1 : 0;
        d->lsn = svc_prt_take_lsn(p);
        it->rec = base_decision_clone(d);
        bool queued = it->rec != NULL && svc_log_submit(&p->eng->log, it) == BASE_OK;
        if (queued && inbox_id != NULL) {
            base_strlcpy(p->inbox_pos, inbox_id, sizeof(p->inbox_pos)); /* taken */
        }
        if (!queued && inbox_id != NULL) {
            /* Not taken: the inbox keeps it, and the caller @d, for the next round. */
            code = PROTO_E_UNAVAILABLE;
            snprintf(msg, msglen, "storage queue full");
        } else if (!queued) {
            /* Served but not logged: the storage queue is full. Counted, not learned from. */
            atomic_fetch_add(&p->c.unlogged, 1);
            atomic_store(&p->last_unlogged_ms, now);
            base_decision_free(d);
        } else if (overflow) {
            it = NULL;
            atomic_fetch_add(&p->c.overflow, 1);
            base_decision_free(d);
        } else {
            it = NULL;
            /* Cannot fail: not a duplicate and below max_pending, checked under this lock. */
            (void)rwd_join_add_decision(p->join, d, now);
        }
    }
    pthread_mutex_unlock(&p->join_lk);
    svc_persist_item_free(it);
    uint64_t nth = conflict ? atomic_fetch_add(&p->c.inbox_conflicts, 1) + 1 : 0;
    if (nth > 0 && (nth <= 8 || (nth & (nth - 1)) == 0)) { /* the first, then at powers of 2 */
        base_log_policy(BASE_LOG_WARN, p->cfg->name,
                        "policy %s: inbox entry %s (from \"%s\") is a decision under event_id "
                        "\"%s\", which another decision holds (two instances served that id "
                        "within its window); dropped",
                        p->cfg->name, inbox_id, from != NULL ? from : "", d->event_id);
    }
    return code;
}

/* Forwarder-thread completion of a follower's decision record. */
static void on_decision_forwarded(void *arg, svc_fwd_item *it, base_err result)
{
    svc_prt *p = arg;
    (void)it;
    atomic_fetch_add(result == BASE_OK ? &p->c.forwarded : &p->c.store_errors, 1);
}

/*
 * A follower's decision (shared = on): its record goes to the owner's inbox, nobody waits
 * for it, and the owner makes it pending. Takes @d. A full forwarder queue leaves it
 * served but unlogged, as a full write queue does for an owner.
 */
static void forward_decision(svc_prt *p, base_decision *d)
{
    d->emb_storage = p->cfg->embedding_storage; /* what the owner's record will hold */
    base_emb_round((base_emb_storage)d->emb_storage, d->embedding, d->dim);
    int64_t now = d->ts_ms;
    svc_fwd_item *it = svc_fwd_item_new(STO_DECISIONS, d->policy, d);
    if (it == NULL) {
        base_decision_free(d);
    } else {
        it->done = on_decision_forwarded;
        it->done_arg = p;
    }
    if (it == NULL || p->eng->forward == NULL ||
        svc_forward_submit(p->eng->forward, it) != BASE_OK) {
        svc_fwd_item_free(it);
        atomic_fetch_add(&p->c.unlogged, 1);
        atomic_store(&p->last_unlogged_ms, now);
    }
}

/*
 * Admit @d for the caller: served here by the owner (stamped at its admission), or forwarded
 * by a follower (stamped now).
 */
static proto_errcode log_decision(svc_prt *p, base_decision *d, char *msg, size_t msglen)
{
    if (atomic_load(&p->follower)) {
        d->ts_ms = base_clock_now_ms(p->eng->clock);
        forward_decision(p, d);
        return PROTO_E_NONE;
    }
    return admit_decision(p, d, NULL, NULL, msg, msglen);
}

/*
 * Whether @d, served by another instance, fits @p's definition now (it may have changed): its
 * shape, and for a closed set the action list its indexes name (a record without one, from
 * an older instance, is taken by its shape alone).
 */
static bool fits(const svc_prt *p, const base_decision *d)
{
    const svc_policy_config *pc = p->cfg;
    if (d->dim != pc->head.dim || d->action_dim != pc->head.action_dim ||
        d->n_cand > pc->max_candidates || !svc_config_actions_fit(pc, d->actions_hash)) {
        return false;
    }
    for (uint32_t c = 0; c < d->n_cand && !pc->open_actions; c++) {
        if (d->action[c] >= pc->head.n_actions) {
            return false;
        }
    }
    return true;
}

svc_take svc_prt_take_decision(svc_prt *p, base_decision *d, const char *id, const char *from)
{
    char msg[PROTO_ERRMSG_MAX];
    if (!fits(p, d)) {
        pthread_mutex_lock(&p->join_lk);
        base_strlcpy(p->inbox_pos, id, sizeof(p->inbox_pos));
        pthread_mutex_unlock(&p->join_lk);
        base_decision_free(d);
        return SVC_TAKE_BAD;
    }
    base_strlcpy(d->inbox_id, id, sizeof(d->inbox_id));
    d->lsn = 0;
    proto_errcode code = admit_decision(p, d, id, from, msg, sizeof(msg));
    if (code == PROTO_E_UNAVAILABLE) {
        d->inbox_id[0] = '\0';
        return SVC_TAKE_LATER;
    }
    if (code != PROTO_E_NONE) {
        base_decision_free(d); /* a copy of one already taken (a retried append) */
    }
    return SVC_TAKE_OK;
}

static int id_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Whether candidate @k of @d is one the policy's no_explore names. */
static bool never_explored(const svc_prt *p, const base_decision *d, uint32_t k)
{
    const svc_policy_config *c = p->cfg;
    if (d->cand_id != NULL) {
        return c->n_no_explore_ids > 0 &&
               bsearch(d->cand_id[k], c->no_explore_ids, c->n_no_explore_ids,
                       sizeof(*c->no_explore_ids), id_cmp) != NULL;
    }
    return c->no_explore != NULL && c->no_explore[d->action[k]] != 0;
}

/*
 * Exploration the operator rules out (docs/algorithms.md, "Exploration rules"): in a slot's
 * pmf, the head's own choice g (its most probable candidate, the first on a tie) keeps its
 * probability; a candidate whose action is no_explore, or every candidate when the request
 * says "explore": false, gives its probability to g. The result is again a pmf (the same
 * total), sampled and logged as it is, so it stays exact; the exploration share of the
 * candidates that gave theirs becomes 0.
 */
static void rule_exploration(const svc_prt *p, double budget, const base_decision *d, float *pmf,
                             float *explore_share)
{
    const uint8_t *nx = p->cfg->no_explore;
    uint32_t g = 0;
    bool ruled = nx != NULL || p->cfg->n_no_explore_ids > 0;
    if (budget >= 1.0 && !ruled) {
        return;
    }
    for (uint32_t k = 1; k < d->n_cand; k++) {
        g = pmf[k] > pmf[g] ? k : g;
    }
    double moved = 0.0, rest = 0.0;
    for (uint32_t k = 0; k < d->n_cand; k++) {
        if (k != g && (budget <= 0.0 || (ruled && never_explored(p, d, k)))) {
            moved += (double)pmf[k];
            pmf[k] = 0.0f;
            explore_share[k] = 0.0f;
        } else if (k != g) {
            rest += (double)pmf[k];
        }
    }
    /*
     * Over the budget: the explored candidates keep their proportions, scaled to it. The
     * exploration is scaled as a whole, the part of g's probability it gave g (its floor)
     * too, so that the shares still add up to the probability that the decision explores:
     * none at budget 0.
     */
    if (budget <= 0.0 || rest <= 0.0) {
        explore_share[g] = 0.0f; /* g alone has probability: nothing explores */
    } else if (rest > budget) {
        double scale = budget / rest;
        for (uint32_t k = 0; k < d->n_cand; k++) {
            if (k != g && pmf[k] > 0.0f) {
                float kept = (float)((double)pmf[k] * scale);
                moved += (double)pmf[k] - (double)kept;
                explore_share[k] = (float)((double)explore_share[k] * scale);
                pmf[k] = kept;
            }
        }
        explore_share[g] = (float)((double)explore_share[g] * scale);
    }
    pmf[g] = (float)((double)pmf[g] + moved);
}

/* The exploration budget of @q: the least of the request's and its segment's (1: none set). */
static double budget_of(const svc_prt *p, const proto_request *q, uint32_t *out_segment)
{
    double b = q->no_explore ? 0.0 : q->has_explore_budget ? q->explore_budget : 1.0;
    *out_segment = 0;
    for (uint32_t i = 0; q->segment[0] != '\0' && i < p->cfg->n_segments; i++) {
        if (strcmp(p->cfg->segment[i], q->segment) == 0) {
            *out_segment = i + 1;
            b = p->cfg->segment_budget[i] < b ? p->cfg->segment_budget[i] : b;
        }
    }
    return b;
}

/* Salt of the slot draw, so it is independent of the candidate draw (pol_sample). */
#define SLOT_SALT 0x736c6f74ULL

/* The online slot's pmf and breakdown into @out, and its version. */
static base_err online_pmf(svc_prt *p, const base_decision *d, const pol_breakdown *out,
                           uint64_t *version)
{
    pthread_rwlock_rdlock(&p->head_lk);
    base_err err =
        pol_portfolio_explain(p->pf, d->embedding, d->n_cand, d->action, d->base_logit, out);
    *version = pol_portfolio_n_updates(p->pf);
    pthread_rwlock_unlock(&p->head_lk);
    return err;
}

/* The production slot's pmf and breakdown into @out, and its version. */
static base_err production_pmf(svc_prt *p, const base_decision *d, const pol_breakdown *out,
                               uint64_t *version)
{
    pthread_rwlock_rdlock(&p->prod_lk);
    base_err err =
        pol_head_explain(p->prod, d->embedding, d->n_cand, d->action, d->base_logit, out);
    *version = atomic_load(&p->prod_version);
    pthread_rwlock_unlock(&p->prod_lk);
    return err;
}

/*
 * Score @d and draw its candidate (docs/promotion.md, "Slots"). With serve =
 * online, the online head serves. With serve = production, a share c (the
 * canary) of decisions, drawn from the event id and the policy seed, is
 * served by the online head and the rest by production; the pmf logged is the
 * mixture (1 - c) p_production + c p_online, the exact probability with which
 * each candidate was chosen, so learning and evaluation stay unbiased. The
 * candidate is drawn from the serving slot's pmf with pol_sample's uniform.
 * Sets d->pmf, chosen, slot, model_version (the online head's) and
 * prod_version, and the breakdown (docs/algorithms.md, "Explanations"): the
 * serving slot's head score, and the exploration share mixed as the pmf is.
 * *served_version is the serving slot's; *out_w the importance weight of the
 * online head for the chosen candidate, p_online / p_logged (OPE-readiness,
 * service/observe.h).
 */
static base_err score(svc_prt *p, base_decision *d, double explore, uint64_t *served_version,
                      double *out_w)
{
    static _Thread_local float p_prod[BASE_CAND_MAX];
    static _Thread_local float sc_prod[BASE_CAND_MAX];
    static _Thread_local float xs_prod[BASE_CAND_MAX];
    uint32_t serve = atomic_load(&p->serve);
    uint32_t ppm = atomic_load(&p->canary_ppm);
    uint64_t seed = p->cfg->head.seed;
    base_err err = BASE_OK;
    pol_breakdown online = {.head_score = d->head_score, .explore = d->explore, .pmf = d->pmf};
    pol_breakdown prod = {.head_score = sc_prod, .explore = xs_prod, .pmf = p_prod};

    d->has_breakdown = 1;
    if (serve != BASE_SLOT_PRODUCTION) {
        d->slot = BASE_SLOT_ONLINE;
        err = online_pmf(p, d, &online, &d->model_version);
        d->prod_version = atomic_load(&p->prod_version);
        if (err == BASE_OK) {
            rule_exploration(p, explore, d, d->pmf, d->explore);
            d->chosen = pol_sample(d->pmf, d->n_cand, d->event_id, seed);
        }
        *served_version = d->model_version;
        *out_w = 1.0;
        return err;
    }
    double c = (double)ppm / 1e6;
    double u = base_u64_to_unit(base_hash64(d->event_id, strlen(d->event_id), seed ^ SLOT_SALT));
    d->slot = u < c ? BASE_SLOT_ONLINE : BASE_SLOT_PRODUCTION;
    err = production_pmf(p, d, &prod, &d->prod_version);
    if (err != BASE_OK) {
        return err;
    }
    rule_exploration(p, explore, d, p_prod, xs_prod);
    size_t bytes = (size_t)d->n_cand * sizeof(float);
    /*
     * The online head is scored even when production serves alone, for the
     * weight that says whether this log can evaluate it. Production must not
     * depend on the online head: if that fails, production serves anyway and
     * the decision counts as weight 0.
     */
    base_err on_err = online_pmf(p, d, &online, &d->model_version);
    bool have_online = on_err == BASE_OK;
    if (have_online) {
        rule_exploration(p, explore, d, d->pmf, d->explore);
    }
    if (!have_online) {
        if (ppm > 0) {
            return on_err; /* the canary's share cannot be mixed in */
        }
        d->model_version = atomic_load(&p->n_updates);
    }
    if (ppm == 0) {
        float p_on_chosen = 0.0f;
        uint32_t chosen = pol_sample(p_prod, d->n_cand, d->event_id, seed);
        if (have_online) {
            p_on_chosen = d->pmf[chosen];
        }
        memcpy(d->pmf, p_prod, bytes);
        memcpy(d->head_score, sc_prod, bytes);
        memcpy(d->explore, xs_prod, bytes);
        d->chosen = chosen;
        *served_version = d->prod_version;
        *out_w = have_online && d->pmf[chosen] > 0.0f ? (double)p_on_chosen / (double)d->pmf[chosen]
                                                      : 0.0;
        return BASE_OK;
    }
    const float *serving = d->slot == BASE_SLOT_ONLINE ? d->pmf : p_prod;
    d->chosen = pol_sample(serving, d->n_cand, d->event_id, seed);
    double p_on = d->pmf[d->chosen];
    for (uint32_t k = 0; k < d->n_cand; k++) {
        d->pmf[k] = (float)((1.0 - c) * (double)p_prod[k] + c * (double)d->pmf[k]);
        d->explore[k] = (float)((1.0 - c) * (double)xs_prod[k] + c * (double)d->explore[k]);
    }
    if (d->slot == BASE_SLOT_PRODUCTION) {
        memcpy(d->head_score, sc_prod, bytes);
    }
    *out_w = d->pmf[d->chosen] > 0.0f ? p_on / (double)d->pmf[d->chosen] : 0.0;
    *served_version = d->slot == BASE_SLOT_ONLINE ? d->model_version : d->prod_version;
    return BASE_OK;
}

/*
 * An event id for a decide that named none: the process's prefix and a count, and after
 * @clashes > 0 (the ids before were taken: a client may send any text as its own event_id,
 * also the next ones of the count) 64 random bits more, which no client can have guessed.
 */
static void make_event_id(svc_engine *e, int clashes, char *out, size_t size)
{
    uint64_t seq = atomic_fetch_add(&e->id_seq, 1) + 1;
    if (clashes == 0) {
        snprintf(out, size, "e%016" PRIx64 "-%" PRIu64, e->id_prefix, seq);
    } else {
        uint64_t r;
        base_entropy_fill(&r, sizeof(r));
        snprintf(out, size, "e%016" PRIx64 "-%" PRIu64 "-%016" PRIx64, e->id_prefix, seq, r);
    }
}

void svc_op_decide(svc_engine *e, svc_prt *p, const proto_request *q, const svc_replier *r)
{
    char msg[PROTO_ERRMSG_MAX];
    proto_errcode code = PROTO_E_NONE;
    base_decision *d = build_decision(p, q, &code, msg, sizeof(msg));
    if (d == NULL) {
        svc_engine_reject(e, r, code, msg);
        return;
    }
    bool named = q->event_id[0] != '\0';
    if (named) {
        base_strlcpy(d->event_id, q->event_id, sizeof(d->event_id));
    } else {
        make_event_id(e, 0, d->event_id, sizeof(d->event_id));
    }
    d->source = BASE_SRC_DECIDE;
    d->deferred = q->deferred ? 1 : 0;

    uint32_t segment = 0;
    double budget = budget_of(p, q, &segment);
    uint64_t served_version = 0;
    double w = 1.0;
    uint32_t slot_served = 0;
    double p_logged = 0.0, spent = 0.0;
    base_buf b;
    base_buf_init(&b, 64u * 1024u);
    /*
     * Score, encode the reply, and log the decision, before the record changes hands. An id
     * this instance generated can still be pending: a client may have sent the same text as
     * its own event_id. The request named no id, so it takes another instead of a
     * duplicate_event, and is scored again: the draw follows the event id (algorithms.md,
     * section 7), so a decision is always the draw of the id it is logged under.
     */
    for (int clashes = 0;; clashes++) {
        base_err err = score(p, d, budget, &served_version, &w);
        if (err != BASE_OK) {
            base_buf_fini(&b);
            base_decision_free(d);
            svc_engine_reject(e, r, err == BASE_ENUMERIC ? PROTO_E_NOT_FINITE : PROTO_E_BAD_REQUEST,
                              err == BASE_ENUMERIC
                                  ? "scoring overflowed on this input: its embedding or "
                                    "features are too large for the head (scores not finite)"
                                  : "scoring failed on this input");
            return;
        }
        slot_served = d->slot;
        p_logged = d->pmf[d->chosen];
        float top = 0.0f;
        for (uint32_t k = 0; k < d->n_cand; k++) {
            top = d->pmf[k] > top ? d->pmf[k] : top;
        }
        spent = top < 1.0f ? 1.0 - (double)top : 0.0; /* exploration: all but the top */
        base_buf_reset(&b);
        err = proto_reply_decide(&b, d->event_id, q->cand[d->chosen].id, d->chosen, d->pmf,
                                 d->n_cand, served_version, base_slot_name(d->slot));
        if (err != BASE_OK) {
            base_buf_fini(&b);
            base_decision_free(d);
            svc_engine_reject(e, r, PROTO_E_INTERNAL, "reply encoding failed");
            return;
        }
        code = log_decision(p, d, msg, sizeof(msg));
        if (code != PROTO_E_DUPLICATE_EVENT || named || clashes == 7) {
            break;
        }
        make_event_id(e, clashes + 1, d->event_id, sizeof(d->event_id));
    }
    if (code != PROTO_E_NONE) {
        base_decision_free(d);
        svc_engine_reject(e, r, code, msg);
    } else {
        atomic_fetch_add(&p->c.decisions, 1);
        atomic_fetch_add(&p->c.slot_decisions[slot_served], 1);
        atomic_fetch_add(&p->c.seg_decisions[segment], 1);
        atomic_fetch_add(&p->c.seg_explore_micro[segment], (uint64_t)llround(spent * 1e6));
        svc_ope_add(&p->ope, r->t0_ns != 0 ? r->t0_ns : base_mono_ns(), w, p_logged);
        svc_engine_send(r, &b);
    }
    base_buf_fini(&b);
}

void svc_op_log(svc_engine *e, svc_prt *p, const proto_request *q, const svc_replier *r)
{
    char msg[PROTO_ERRMSG_MAX];
    proto_errcode code = PROTO_E_NONE;
    base_decision *d = build_decision(p, q, &code, msg, sizeof(msg));
    if (d == NULL) {
        svc_engine_reject(e, r, code, msg);
        return;
    }
    base_strlcpy(d->event_id, q->event_id, sizeof(d->event_id));
    d->source = BASE_SRC_LOG;
    d->deferred = q->deferred ? 1 : 0; /* as for decide: learned from once activated */
    bool found = false;
    for (uint32_t c = 0; c < d->n_cand; c++) {
        d->pmf[c] = q->pmf[c];
        if (strcmp(q->cand[c].id, q->chosen) == 0) {
            d->chosen = c;
            found = true;
        }
    }
    if (!found || d->pmf[d->chosen] <= 0.0f) {
        base_decision_free(d);
        svc_engine_reject(e, r, PROTO_E_BAD_REQUEST, "chosen must be a candidate with pmf > 0");
        return;
    }
    d->model_version = atomic_load(&p->n_updates);
    code = log_decision(p, d, msg, sizeof(msg));
    if (code != PROTO_E_NONE) {
        base_decision_free(d);
        svc_engine_reject(e, r, code, msg);
        return;
    }
    atomic_fetch_add(&p->c.logged, 1);
    svc_engine_reply_logged(r, q->event_id);
}
