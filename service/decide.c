#include "service/engine_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"

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
    if (q->n_cand > pc->max_candidates) {
        *out_code = PROTO_E_TOO_MANY_CANDIDATES;
        snprintf(msg, msglen, "%u candidates, policy %s allows %u", q->n_cand, pc->name,
                 pc->max_candidates);
        return NULL;
    }
    base_decision *d = base_decision_new(q->dim, q->n_cand);
    if (d == NULL) {
        *out_code = PROTO_E_INTERNAL;
        snprintf(msg, msglen, "out of memory");
        return NULL;
    }
    for (uint32_t c = 0; c < q->n_cand; c++) {
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
    base_strlcpy(d->conversation_id, q->conversation_id, sizeof(d->conversation_id));
    d->turn = q->turn;
    return d;
fail:
    base_decision_free(d);
    return NULL;
}

/*
 * Make @d pending and queue its record for Redis, under the join lock so a
 * duplicate event id is caught before anything is logged. Takes @d on
 * success.
 */
static proto_errcode admit_decision(svc_prt *p, base_decision *d, char *msg, size_t msglen)
{
    proto_errcode code = PROTO_E_NONE;
    svc_persist_item *it = svc_persist_item_new(SVC_PERSIST_APPEND, STO_DECISIONS, d->policy, NULL);
    if (it == NULL) {
        snprintf(msg, msglen, "out of memory");
        return PROTO_E_INTERNAL;
    }
    it->done = on_decision_stored;
    it->done_arg = p;
    pthread_mutex_lock(&p->join_lk);
    bool dup = false;
    rwd_join_stats js;
    rwd_join_contains(p->join, d->event_id, &dup);
    rwd_join_get_stats(p->join, &js);
    if (dup) {
        code = PROTO_E_DUPLICATE_EVENT;
        snprintf(msg, msglen, "event_id \"%s\" is already pending", d->event_id);
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
        if (it->rec == NULL || svc_log_submit(&p->eng->log, it) != BASE_OK) {
            /* Served but not logged: the storage queue is full. Counted, not learned from. */
            atomic_fetch_add(&p->c.unlogged, 1);
            atomic_store(&p->last_unlogged_ms, base_clock_now_ms(p->eng->clock));
            base_decision_free(d);
        } else if (overflow) {
            it = NULL;
            atomic_fetch_add(&p->c.overflow, 1);
            base_decision_free(d);
        } else {
            it = NULL;
            /* Cannot fail: not a duplicate and below max_pending, checked under this lock. */
            (void)rwd_join_add_decision(p->join, d, base_clock_now_ms(p->eng->clock));
        }
    }
    pthread_mutex_unlock(&p->join_lk);
    svc_persist_item_free(it);
    return code;
}

static void make_event_id(svc_engine *e, char *out, size_t size)
{
    uint64_t seq = atomic_fetch_add(&e->id_seq, 1) + 1;
    snprintf(out, size, "e%016" PRIx64 "-%" PRIu64, e->id_prefix, seq);
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
    if (q->event_id[0] != '\0') {
        base_strlcpy(d->event_id, q->event_id, sizeof(d->event_id));
    } else {
        make_event_id(e, d->event_id, sizeof(d->event_id));
    }
    d->source = BASE_SRC_DECIDE;
    d->deferred = q->deferred ? 1 : 0;
    d->ts_ms = base_clock_now_ms(e->clock);

    pthread_rwlock_rdlock(&p->head_lk);
    base_err err = pol_head_pmf(p->head, d->embedding, d->n_cand, d->action, d->base_logit, d->pmf);
    d->model_version = pol_head_n_updates(p->head);
    pthread_rwlock_unlock(&p->head_lk);
    if (err != BASE_OK) {
        base_decision_free(d);
        svc_engine_reject(e, r, err == BASE_ENUMERIC ? PROTO_E_NOT_FINITE : PROTO_E_BAD_REQUEST,
                          "scoring failed on this input");
        return;
    }
    d->chosen = pol_sample(d->pmf, d->n_cand, d->event_id, p->cfg->head.seed);

    /* Encode the reply before the record changes hands. */
    base_buf b;
    base_buf_init(&b, 64u * 1024u);
    err = proto_reply_decide(&b, d->event_id, q->cand[d->chosen].id, d->chosen, d->pmf, d->n_cand,
                             d->model_version, "online");
    if (err != BASE_OK) {
        base_buf_fini(&b);
        base_decision_free(d);
        svc_engine_reject(e, r, PROTO_E_INTERNAL, "reply encoding failed");
        return;
    }
    code = admit_decision(p, d, msg, sizeof(msg));
    if (code != PROTO_E_NONE) {
        base_decision_free(d);
        svc_engine_reject(e, r, code, msg);
    } else {
        atomic_fetch_add(&p->c.decisions, 1);
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
    d->ts_ms = base_clock_now_ms(e->clock);
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
    code = admit_decision(p, d, msg, sizeof(msg));
    if (code != PROTO_E_NONE) {
        base_decision_free(d);
        svc_engine_reject(e, r, code, msg);
        return;
    }
    atomic_fetch_add(&p->c.logged, 1);
    svc_engine_reply_logged(r, q->event_id);
}
