#include "service/engine_impl.h"

#include <string.h>

#include "base/alloc.h"
#include "proto/policy.h"
#include "proto/stats.h"

/* @info from the live counters @st and the configuration of @p; @sig: RWD_MAX_SIGNALS. */
static void describe(const svc_prt *p, const proto_policy_stats *st, proto_policy_signal *sig,
                     proto_policy_info *info)
{
    const svc_policy_config *c = p->cfg;
    const rwd_spec *r = &c->reward;
    memset(info, 0, sizeof(*info));
    base_strlcpy(info->name, st->name, sizeof(info->name));
    base_strlcpy(info->serve, st->serve, sizeof(info->serve));
    info->canary = st->canary;
    info->online_version = st->slots[BASE_SLOT_ONLINE].model_version;
    info->production_version = st->slots[BASE_SLOT_PRODUCTION].model_version;
    base_strlcpy(info->reward_version, st->reward_version, sizeof(info->reward_version));
    info->model_checksum = st->model_checksum;
    svc_learner_config_hash(c, info->config_hash, sizeof(info->config_hash));
    for (uint32_t i = 0; i < r->n_signals && sig != NULL; i++) {
        const rwd_signal *s = &r->signal[i];
        base_strlcpy(sig[i].name, s->name, sizeof(sig[i].name));
        sig[i].kind = rwd_kind_name(s->kind);
        sig[i].weight = s->weight;
        sig[i].min = s->min;
        sig[i].max = s->max;
        sig[i].map_min = s->map_min;
        sig[i].map_max = s->map_max;
        sig[i].aggregation = rwd_agg_name(s->agg);
    }
    info->n_signals = sig != NULL ? r->n_signals : 0;
    info->signals = sig;
    info->clip_min = r->clip_min;
    info->clip_max = r->clip_max;
    info->default_reward = r->default_reward;
    info->unknown_when_empty = r->unknown_when_empty;
    info->window_ms = r->window_ms;
    info->backward_window_ms = r->backward_window_ms;
    info->credit = rwd_credit_name(r->credit);
    info->credit_gamma = r->credit_gamma;
    info->max_outcomes = r->max_outcomes;
    info->user_rate_per_s = r->user_rate_per_s;
    info->user_burst = r->user_burst;
    info->dim = c->head.dim;
    info->n_actions = c->n_actions;
    info->action_set = c->open_actions ? "open" : "closed";
    info->action_dim = c->head.action_dim;
    info->definition_version = c->def_version;
    info->actions = (const char(*)[BASE_NAME_MAX + 1]) c->actions;
    info->max_candidates = c->max_candidates;
    info->learner = pol_learner_name(c->head.learner);
    info->explorer = pol_explorer_name(c->head.explorer);
    info->portfolio = c->portfolio_spec;
    info->epsilon = c->head.epsilon;
    info->temperature = c->head.temperature;
    info->learning_rate = c->head.learning_rate;
    info->seed = c->head.seed;
    info->max_pending = c->max_pending;
    base_strlcpy(info->base_version, c->base_version, sizeof(info->base_version));
    info->config_serve = base_slot_name(c->serve);
    info->config_canary = c->canary;
}

proto_errcode svc_engine_policies(svc_engine *e, const char *name, base_buf *out)
{
    svc_prt *only = NULL;
    proto_stats st;
    proto_policy_info *info = NULL;
    proto_policy_signal sig[RWD_MAX_SIGNALS];
    proto_errcode code = PROTO_E_INTERNAL;
    if (name != NULL) {
        only = svc_engine_find_policy(e, name);
        if (only == NULL) {
            /* Stood by for (standby = on): unavailable, as its requests are answered here. */
            return svc_config_waiting(e->cfg, name) != NULL ? PROTO_E_UNAVAILABLE
                                                            : PROTO_E_UNKNOWN_POLICY;
        }
    }
    if (svc_engine_fill_stats(e, only, &st) != BASE_OK) {
        return PROTO_E_INTERNAL;
    }
    info = base_alloc_zero(st.n_policies > 0 ? st.n_policies : 1, sizeof(*info));
    if (info == NULL) {
        goto done;
    }
    for (uint32_t i = 0, k = 0; i < e->n_pol && k < st.n_policies; i++) {
        /* The stats list the policies served; a retirement meanwhile must not shift them. */
        if (strcmp(e->pol[i].cfg->name, st.policies[k].name) == 0) {
            describe(&e->pol[i], &st.policies[k], only != NULL ? sig : NULL, &info[k]);
            k++;
        }
    }
    base_err err = only != NULL ? proto_reply_policy(out, &info[0])
                                : proto_reply_policies(out, info, st.n_policies);
    code = err == BASE_OK ? PROTO_E_NONE : PROTO_E_INTERNAL;
done:
    base_free(info);
    base_free(st.policies);
    return code;
}
