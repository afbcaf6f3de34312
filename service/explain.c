#include "service/explain.h"

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "policy/base_prob.h"
#include "proto/explain.h"
#include "reward/spec.h"

/* The name of action @a in @p's config; "#<a>" if the config no longer has it. */
static void action_name(const svc_prt *p, uint32_t a, char *out, size_t size)
{
    if (a < p->cfg->n_actions) {
        (void)base_strlcpy(out, p->cfg->actions[a], size);
    } else {
        (void)snprintf(out, size, "#%u", a);
    }
}

void svc_explain_answer(svc_engine *e, svc_prt *p, const base_joined *jo, const char *status,
                        bool has_reward, const svc_replier *r)
{
    const base_decision *d = jo->decision;
    proto_explain x;
    float base_prob[BASE_CAND_MAX];
    base_buf b;

    memset(&x, 0, sizeof(x));
    x.cand = base_alloc_zero(d->n_cand, sizeof(*x.cand));
    if (x.cand == NULL) {
        svc_engine_reject(e, r, PROTO_E_INTERNAL, "out of memory");
        return;
    }
    /* The logits were finite when logged: the codec and decide check them. */
    if (pol_base_softmax(d->base_logit, d->n_cand, p->cfg->head.temperature, base_prob) !=
        BASE_OK) {
        memset(base_prob, 0, sizeof(base_prob));
    }
    (void)base_strlcpy(x.event_id, d->event_id, sizeof(x.event_id));
    (void)base_strlcpy(x.policy, p->cfg->name, sizeof(x.policy));
    (void)base_strlcpy(x.slot, base_slot_name(d->slot), sizeof(x.slot));
    x.model_version = d->model_version;
    x.production_version = d->prod_version;
    (void)base_strlcpy(x.reward_version, jo->spec_version, sizeof(x.reward_version));
    x.chosen_index = d->chosen;
    x.breakdown = d->has_breakdown != 0;
    x.n_cand = d->n_cand;
    for (uint32_t c = 0; c < d->n_cand; c++) {
        proto_explain_cand *k = &x.cand[c];
        action_name(p, d->action[c], k->id, sizeof(k->id));
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
    }
    base_buf_init(&b, 64u * 1024u + (size_t)d->n_cand * 160u);
    if (proto_reply_explain(&b, &x) == BASE_OK) {
        svc_engine_send(r, &b);
    } else {
        svc_engine_reject(e, r, PROTO_E_INTERNAL, "reply encoding failed");
    }
    base_buf_fini(&b);
    base_free(x.cand);
}

void svc_op_explain(svc_engine *e, svc_prt *p, const proto_request *q, const svc_replier *r)
{
    char msg[PROTO_ERRMSG_MAX];
    base_joined *jo = NULL;
    bool found = false;

    pthread_mutex_lock(&p->join_lk);
    base_err err = rwd_join_peek(p->join, q->event_id, &found, &jo);
    pthread_mutex_unlock(&p->join_lk);
    if (err != BASE_OK) {
        svc_engine_reject(e, r, PROTO_E_INTERNAL, "out of memory");
        return;
    }
    if (found) {
        svc_explain_answer(e, p, jo, "pending", true, r);
        base_joined_free(jo);
        return;
    }
    snprintf(msg, sizeof(msg), "no pending decision \"%.48s\" in policy %.48s", q->event_id,
             p->cfg->name);
    svc_engine_reject(e, r, PROTO_E_NOT_FOUND, msg);
}
