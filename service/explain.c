#include "service/explain.h"

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/thread.h"
#include "policy/base_prob.h"
#include "proto/explain.h"
#include "reward/spec.h"
#include "storage/store.h"

#define QUEUE_CAP 64 /* explains waiting for the worker; past it: unavailable */
#define HOUR_MS 3600000LL

/* One explain the worker owes an answer to. */
typedef struct explain_job {
    svc_prt *p;
    char event_id[BASE_ID_MAX + 1];
    svc_replier r;
} explain_job;

struct svc_explainer {
    svc_engine *e;
    char url[SVC_URL_MAX];
    int timeout_ms;
    sto_store *store; /* worker thread only; NULL until opened or after a lost connection */
    pthread_t thread;
    pthread_mutex_t lk;
    pthread_cond_t cv;
    explain_job q[QUEUE_CAP]; /* guarded by lk: a ring, head first */
    size_t head, n;           /* guarded by lk */
    bool stop;                /* guarded by lk */
};

#define INDEX_SLACK_MS (2ULL * 3600000ULL)

uint64_t svc_explain_index_ttl_ms(const svc_config *cfg)
{
    return cfg->retention_ms + INDEX_SLACK_MS;
}

/*
 * The name of action @a of decision @d in definition @c; "#<a>" if @c does not have it,
 * or if @d was made under another list of actions (a rename or a reorder since).
 */
static void action_name(const svc_policy_config *c, const base_decision *d, uint32_t a, char *out,
                        size_t size)
{
    bool same_list = d->actions_hash[0] == '\0' || strcmp(d->actions_hash, c->actions_hash) == 0;
    if (same_list && a < c->n_actions) {
        (void)base_strlcpy(out, c->actions[a], size);
    } else {
        (void)snprintf(out, size, "#%u", a);
    }
}

void svc_explain_answer(svc_engine *e, svc_prt *p, const base_joined *jo, const char *status,
                        bool has_reward, const svc_explain_outcomes *outs, const svc_replier *r)
{
    const base_decision *d = jo->decision;
    /* One definition throughout: the explain worker holds no gate, a catalog change may swap it. */
    const svc_policy_config *cfg = atomic_load(&p->cfg);
    proto_explain x;
    float base_prob[BASE_CAND_MAX];
    base_buf b;
    uint32_t n_listed = has_reward && outs != NULL ? outs->n : 0;

    memset(&x, 0, sizeof(x));
    x.cand = base_alloc_zero(d->n_cand, sizeof(*x.cand));
    x.outcomes = n_listed > 0 ? base_alloc_zero(n_listed, sizeof(*x.outcomes)) : NULL;
    if (x.cand == NULL || (n_listed > 0 && x.outcomes == NULL)) {
        base_free(x.cand);
        base_free(x.outcomes);
        svc_engine_reject(e, r, PROTO_E_INTERNAL, "out of memory");
        return;
    }
    /* The logits were finite when logged: the codec and decide check them. */
    if (pol_base_softmax(d->base_logit, d->n_cand, cfg->head.temperature, base_prob) != BASE_OK) {
        memset(base_prob, 0, sizeof(base_prob));
    }
    (void)base_strlcpy(x.event_id, d->event_id, sizeof(x.event_id));
    (void)base_strlcpy(x.policy, cfg->name, sizeof(x.policy));
    (void)base_strlcpy(x.user_id, d->user_id, sizeof(x.user_id));
    (void)base_strlcpy(x.conversation_id, d->conversation_id, sizeof(x.conversation_id));
    (void)base_strlcpy(x.slot, base_slot_name(d->slot), sizeof(x.slot));
    x.model_version = d->model_version;
    x.production_version = d->prod_version;
    (void)base_strlcpy(x.reward_version, jo->spec_version, sizeof(x.reward_version));
    x.chosen_index = d->chosen;
    x.breakdown = d->has_breakdown != 0;
    x.n_cand = d->n_cand;
    for (uint32_t c = 0; c < d->n_cand; c++) {
        proto_explain_cand *k = &x.cand[c];
        if (d->cand_id != NULL) {
            (void)base_strlcpy(k->id, d->cand_id[c], sizeof(k->id)); /* an open set's own ids */
        } else {
            action_name(cfg, d, d->action[c], k->id, sizeof(k->id));
        }
        k->base_logit = d->base_logit[c];
        k->base_prob = base_prob[c];
        k->probability = d->pmf[c];
        if (x.breakdown) {
            k->head_score = d->head_score[c];
            k->exploration = d->explore[c];
        }
    }
    (void)base_strlcpy(x.chosen, x.cand[d->chosen].id, sizeof(x.chosen));
    (void)base_strlcpy(x.status, status, sizeof(x.status));
    x.has_reward = has_reward;
    if (has_reward) {
        x.reward = jo->reward;
        x.defaulted = jo->defaulted;
        x.unknown = jo->unknown;
        x.n_outcomes = jo->n_outcomes;
        (void)base_strlcpy(x.credit, rwd_credit_name(jo->credit), sizeof(x.credit));
        x.share = jo->share;
        x.n_listed = n_listed;
        x.outcomes_truncated = outs != NULL && outs->truncated;
        for (uint32_t i = 0; i < n_listed; i++) {
            const rwd_outcome_view *v = &outs->v[i];
            proto_explain_outcome *o = &x.outcomes[i];
            (void)base_strlcpy(o->signal, v->signal, sizeof(o->signal));
            (void)base_strlcpy(o->outcome_id, v->outcome_id, sizeof(o->outcome_id));
            o->value = v->value;
            o->ts_ms = v->ts_ms;
            (void)base_strlcpy(o->status, rwd_fate_name(v->fate), sizeof(o->status));
        }
    }
    base_buf_init(&b, 64u * 1024u + (size_t)d->n_cand * 160u);
    if (proto_reply_explain(&b, &x) == BASE_OK) {
        svc_engine_send(r, &b);
    } else {
        svc_engine_reject(e, r, PROTO_E_INTERNAL, "reply encoding failed");
    }
    base_buf_fini(&b);
    base_free(x.cand);
    base_free(x.outcomes);
}

static void submit(svc_explainer *x, svc_prt *p, const char *event_id, const svc_replier *r);

void svc_op_explain(svc_engine *e, svc_prt *p, const proto_request *q, const svc_replier *r)
{
    char msg[PROTO_ERRMSG_MAX];
    rwd_outcome_view v[PROTO_EXPLAIN_MAX_OUTCOMES];
    svc_explain_outcomes outs = {.v = v, .n = 0, .truncated = false};
    uint32_t total = 0;
    base_joined *jo = NULL;
    bool found = false, listed = false;

    pthread_mutex_lock(&p->join_lk);
    base_err err = rwd_join_peek(p->join, q->event_id, &found, &jo);
    if (err == BASE_OK && found) {
        rwd_join_peek_outcomes(p->join, q->event_id, v, PROTO_EXPLAIN_MAX_OUTCOMES, &outs.n, &total,
                               &listed);
    }
    pthread_mutex_unlock(&p->join_lk);
    if (err != BASE_OK) {
        svc_engine_reject(e, r, PROTO_E_INTERNAL, "out of memory");
        return;
    }
    if (found) {
        outs.truncated = total > outs.n;
        svc_explain_answer(e, p, jo, "pending", true, &outs, r);
        base_joined_free(jo);
        return;
    }
    if (e->explainer == NULL) {
        snprintf(msg, sizeof(msg), "no pending decision \"%.48s\" in policy %.48s", q->event_id,
                 p->cfg->name);
        svc_engine_reject(e, r, PROTO_E_NOT_FOUND, msg);
        return;
    }
    submit(e->explainer, p, q->event_id, r);
}

/* ---- the worker: decisions no longer pending, from Redis --------------- */

/*
 * The outcomes joined to decision @jo (applied, superseded or late), from
 * the outcome stream records addressed to its event id that arrived within
 * [@from, @now], into @outs (@v: PROTO_EXPLAIN_MAX_OUTCOMES). Their fates
 * come from rwd_outcome_fates() under the policy's current reward spec;
 * records it says were never joined to this decision are left out.
 */
static base_err stored_outcomes(svc_explainer *x, const explain_job *j, const base_joined *jo,
                                int64_t from, int64_t now, rwd_outcome_view *v,
                                svc_explain_outcomes *outs)
{
    const rwd_spec *spec = &j->p->cfg->reward;
    const base_outcome *o[PROTO_EXPLAIN_MAX_OUTCOMES];
    rwd_fate fate[PROTO_EXPLAIN_MAX_OUTCOMES];
    sto_entry *ents = NULL;
    size_t n = 0;
    bool more = false;
    int64_t since = jo->decision->ts_ms - spec->backward_window_ms;

    since = since > from ? since : from;
    base_err err =
        sto_event_outcomes(x->store, j->p->cfg->name, j->event_id, since, now > since ? now : since,
                           PROTO_EXPLAIN_MAX_OUTCOMES, &ents, &n, &more);
    if (err != BASE_OK) {
        return err;
    }
    for (size_t i = 0; i < n; i++) {
        o[i] = ents[i].rec;
    }
    rwd_outcome_fates(spec, jo->decision, jo->joined_ts_ms, o, (uint32_t)n, fate);
    uint32_t listed = 0;
    for (size_t i = 0; i < n; i++) {
        if (fate[i] == RWD_FATE_NOT_JOINED) {
            continue; /* held too long, or another decision's with this event id */
        }
        rwd_outcome_view *w = &v[listed++];
        memset(w, 0, sizeof(*w));
        (void)base_strlcpy(w->signal, o[i]->signal, sizeof(w->signal));
        (void)base_strlcpy(w->outcome_id, o[i]->outcome_id, sizeof(w->outcome_id));
        w->value = o[i]->value;
        w->ts_ms = o[i]->ts_ms;
        w->fate = fate[i];
    }
    outs->v = v;
    outs->n = listed;
    outs->truncated = more;
    sto_entries_free(STO_OUTCOMES, ents, n);
    return BASE_OK;
}

static void answer_stored(svc_explainer *x, const explain_job *j)
{
    svc_engine *e = x->e;
    char msg[PROTO_ERRMSG_MAX];
    rwd_outcome_view v[PROTO_EXPLAIN_MAX_OUTCOMES];
    svc_explain_outcomes outs = {.v = v, .n = 0, .truncated = false};
    base_decision *d = NULL;
    base_joined *jo = NULL;
    bool found = false;
    base_err err = BASE_OK;

    if (x->store == NULL) {
        err = sto_store_open(x->url, x->timeout_ms, &x->store, NULL, 0);
    }
    if (err == BASE_OK) {
        int64_t now = base_clock_now_ms(e->clock);
        int64_t from = now - (int64_t)e->cfg->retention_ms - 2 * HOUR_MS;
        err = sto_event_lookup(x->store, j->p->cfg->name, j->event_id, from, now, &d, &jo, &found);
        if (err == BASE_OK && found && jo != NULL) {
            err = stored_outcomes(x, j, jo, from, now, v, &outs);
        }
    }
    if (err == BASE_EIO) {
        sto_store_close(x->store);
        x->store = NULL;
    }
    if (err == BASE_EPROTO) {
        /* Not the storage's state: a retry finds the same bytes. */
        base_log(BASE_LOG_WARN, "explain %s/%s: its stored records or index entry do not decode",
                 j->p->cfg->name, j->event_id);
        snprintf(msg, sizeof(msg),
                 "the stored records of \"%.48s\" (or their event index entry) do not decode: "
                 "not written by rlfeedd",
                 j->event_id);
        svc_engine_reject(e, &j->r, PROTO_E_INTERNAL, msg);
    } else if (err != BASE_OK) {
        base_log(BASE_LOG_WARN, "explain %s/%s: redis: %s", j->p->cfg->name, j->event_id,
                 base_strerror(err));
        svc_engine_reject(e, &j->r, PROTO_E_UNAVAILABLE, "storage unavailable; retry");
    } else if (!found) {
        snprintf(msg, sizeof(msg),
                 "no decision \"%.48s\" in policy %.48s within the retention window", j->event_id,
                 j->p->cfg->name);
        svc_engine_reject(e, &j->r, PROTO_E_NOT_FOUND, msg);
    } else if (jo != NULL) {
        svc_explain_answer(e, j->p, jo, "joined", true, &outs, &j->r);
    } else {
        /* Closed without a joined record in Redis: not stored yet, dropped or trimmed. */
        base_joined *view = base_joined_new(d);
        if (view == NULL) {
            svc_engine_reject(e, &j->r, PROTO_E_INTERNAL, "out of memory");
        } else {
            d = NULL;
            svc_explain_answer(e, j->p, view, "closed", false, NULL, &j->r);
            base_joined_free(view);
        }
    }
    base_decision_free(d);
    base_joined_free(jo);
}

static void *worker_main(void *arg)
{
    base_thread_name("rlf-explain");
    svc_explainer *x = arg;
    for (;;) {
        pthread_mutex_lock(&x->lk);
        while (x->n == 0 && !x->stop) {
            pthread_cond_wait(&x->cv, &x->lk);
        }
        if (x->n == 0) {
            pthread_mutex_unlock(&x->lk);
            break;
        }
        explain_job j = x->q[x->head];
        x->head = (x->head + 1) % QUEUE_CAP;
        x->n--;
        bool stopping = x->stop;
        pthread_mutex_unlock(&x->lk);
        if (stopping) {
            svc_engine_reject(x->e, &j.r, PROTO_E_SHUTTING_DOWN, "shutting down");
        } else {
            answer_stored(x, &j);
        }
        atomic_fetch_sub(&x->e->waiting, 1);
    }
    return NULL;
}

static void submit(svc_explainer *x, svc_prt *p, const char *event_id, const svc_replier *r)
{
    svc_engine *e = x->e;
    if (atomic_fetch_add(&e->waiting, 1) >= e->max_waiting) {
        /* Every REP context would be waiting for Redis: keep some for decide. */
        atomic_fetch_sub(&e->waiting, 1);
        svc_engine_reject(e, r, PROTO_E_UNAVAILABLE,
                          "too many requests waiting for storage; retry");
        return;
    }
    pthread_mutex_lock(&x->lk);
    bool full = x->n == QUEUE_CAP, stop = x->stop;
    if (!full && !stop) {
        explain_job *j = &x->q[(x->head + x->n) % QUEUE_CAP];
        j->p = p;
        (void)base_strlcpy(j->event_id, event_id, sizeof(j->event_id));
        j->r = *r;
        x->n++;
        pthread_cond_signal(&x->cv);
    }
    pthread_mutex_unlock(&x->lk);
    if (full || stop) {
        atomic_fetch_sub(&e->waiting, 1);
        svc_engine_reject(e, r, stop ? PROTO_E_SHUTTING_DOWN : PROTO_E_UNAVAILABLE,
                          stop ? "shutting down" : "too many explains waiting for storage; retry");
    }
}

base_err svc_engine_explain_open(svc_engine *e, const char *url, int timeout_ms)
{
    svc_explainer *x = base_alloc_zero(1, sizeof(*x));
    if (x == NULL) {
        return BASE_ENOMEM;
    }
    if (!base_strlcpy(x->url, url, sizeof(x->url))) {
        base_free(x);
        return BASE_EINVAL;
    }
    x->e = e;
    x->timeout_ms = timeout_ms;
    pthread_mutex_init(&x->lk, NULL);
    pthread_cond_init(&x->cv, NULL);
    if (pthread_create(&x->thread, NULL, worker_main, x) != 0) {
        pthread_cond_destroy(&x->cv);
        pthread_mutex_destroy(&x->lk);
        base_free(x);
        return BASE_ENOMEM;
    }
    e->explainer = x;
    return BASE_OK;
}

void svc_explainer_close(svc_engine *e)
{
    svc_explainer *x = e != NULL ? e->explainer : NULL;
    if (x == NULL) {
        return;
    }
    pthread_mutex_lock(&x->lk);
    x->stop = true;
    pthread_cond_signal(&x->cv);
    pthread_mutex_unlock(&x->lk);
    pthread_join(x->thread, NULL);
    e->explainer = NULL;
    sto_store_close(x->store);
    pthread_cond_destroy(&x->cv);
    pthread_mutex_destroy(&x->lk);
    base_free(x);
}
