#include "service/engine_impl.h"

#include <string.h>

#include "base/alloc.h"
#include "proto/stats.h"

_Static_assert(RWD_LATENCY_BUCKETS == PROTO_LATENCY_BUCKETS, "latency buckets differ");

/* The join's health: statuses of outcomes, expiry results, decision -> outcome latency. */
static void join_health(const rwd_join_stats *js, proto_join_health *out)
{
    out->pending = js->pending;
    out->deferred = js->deferred;
    out->joined = js->joined;
    out->defaulted = js->defaulted;
    out->unknown = js->unknown;
    out->not_activated = js->not_activated;
    out->dangling = js->dangling;
    for (int s = 0; s < RWD_STATUS_COUNT; s++) {
        proto_status ps = svc_engine_status((rwd_status)s);
        if (ps < PROTO_ST_COUNT) {
            out->status[ps] = js->status[s];
        }
    }
    memcpy(out->latency, js->latency, sizeof(out->latency));
}

/* A snapshot of @p's counters; each lock is held only to copy what it guards. */
static void policy_stats(svc_prt *p, proto_policy_stats *out)
{
    rwd_join_stats js;

    base_strlcpy(out->name, p->cfg->name, sizeof(out->name));
    pthread_mutex_lock(&p->join_lk);
    rwd_join_get_stats(p->join, &js);
    pthread_mutex_unlock(&p->join_lk);
    /* The head lock also guards last_joined_id for readers: the learner updates it
     * right after learning, under no lock, so copy it through the same path. */
    pthread_rwlock_rdlock(&p->head_lk);
    out->model_checksum = pol_head_checksum(p->head);
    out->model_version = pol_head_n_updates(p->head); /* same instant as the checksum */
    memcpy(out->last_applied_id, p->last_joined_id, sizeof(out->last_applied_id));
    out->learn_trace = p->trace;
    pthread_rwlock_unlock(&p->head_lk);
    pthread_mutex_lock(&p->join_lk);
    out->next_lsn = p->next_lsn;
    pthread_mutex_unlock(&p->join_lk);

    out->decisions = atomic_load(&p->c.decisions);
    out->logged = atomic_load(&p->c.logged);
    out->unlogged = atomic_load(&p->c.unlogged);
    out->overflow = atomic_load(&p->c.overflow);
    out->feedback = atomic_load(&p->c.feedback);
    out->duplicates = atomic_load(&p->c.duplicates);
    out->unknown_event = atomic_load(&p->c.unknown_event);
    out->pending = js.pending;
    out->joined = atomic_load(&p->c.joined);
    out->defaulted = atomic_load(&p->c.defaulted);
    int64_t rsum = atomic_load(&p->c.reward_micro);
    out->mean_reward = out->joined > 0 ? (double)rsum * 1e-6 / (double)out->joined : 0.0;
    out->updates = atomic_load(&p->c.updates);
    out->learn_errors = atomic_load(&p->c.learn_errors);
    out->store_errors = atomic_load(&p->c.store_errors);
    out->snapshots = atomic_load(&p->c.snapshots);
    out->dim = p->cfg->head.dim;
    rwd_spec_version(&p->cfg->reward, out->reward_version, sizeof(out->reward_version));
    base_strlcpy(out->serve, base_slot_name(atomic_load(&p->serve)), sizeof(out->serve));
    out->canary = (double)atomic_load(&p->canary_ppm) / 1e6;
    out->registry_errors = atomic_load(&p->c.registry_errors);
    for (uint32_t k = 0; k < PROTO_SLOTS; k++) {
        proto_slot_stats *sl = &out->slots[k];
        sl->decisions = atomic_load(&p->c.slot_decisions[k]);
        sl->joined = atomic_load(&p->c.slot_joined[k]);
        int64_t sum = atomic_load(&p->c.slot_reward_micro[k]);
        sl->mean_reward = sl->joined > 0 ? (double)sum * 1e-6 / (double)sl->joined : 0.0;
    }
    out->slots[BASE_SLOT_ONLINE].model_version = out->model_version;
    out->slots[BASE_SLOT_PRODUCTION].model_version = atomic_load(&p->prod_version);
    join_health(&js, &out->join);
}

void svc_op_stats(svc_engine *e, const proto_request *q, const svc_replier *r)
{
    svc_prt *only = NULL;
    if (q->policy[0] != '\0') {
        only = svc_engine_find_policy(e, q->policy);
        if (only == NULL) {
            svc_engine_reject(e, r, PROTO_E_UNKNOWN_POLICY, "no such policy");
            return;
        }
    }
    proto_stats st;
    memset(&st, 0, sizeof(st));
    st.policies = base_alloc_zero(e->n_pol > 0 ? e->n_pol : 1, sizeof(*st.policies));
    if (st.policies == NULL) {
        svc_engine_reject(e, r, PROTO_E_INTERNAL, "out of memory");
        return;
    }
    for (uint32_t i = 0; i < e->n_pol; i++) {
        if (only == NULL || &e->pol[i] == only) {
            policy_stats(&e->pol[i], &st.policies[st.n_policies++]);
        }
    }
    for (int c = PROTO_E_NONE + 1; c < PROTO_E_COUNT; c++) {
        st.rejected[c] = atomic_load(&e->rejected[c]);
    }
    svc_log_stats ls;
    svc_log_get_stats(&e->log, &ls);
    st.storage.redis = ls.up ? PROTO_REDIS_UP : PROTO_REDIS_DOWN;
    st.storage.queue_depth = ls.depth;
    st.storage.queue_capacity = ls.capacity;
    st.storage.written = ls.written;
    st.storage.failed = ls.failed;
    st.storage.trimmed = ls.trimmed;
    st.storage.audit_failed = ls.audit_failed;
    base_strlcpy(st.storage.url, ls.url != NULL ? ls.url : "", sizeof(st.storage.url));

    base_buf b;
    base_buf_init(&b, 4u << 20);
    if (proto_reply_stats(&b, &st) == BASE_OK) {
        svc_engine_send(r, &b);
    } else {
        svc_engine_reject(e, r, PROTO_E_INTERNAL, "stats too large");
    }
    base_buf_fini(&b);
    base_free(st.policies);
}

void svc_op_health(svc_engine *e, const svc_replier *r)
{
    svc_log_stats ls;
    svc_log_get_stats(&e->log, &ls);
    bool up = ls.up;
    proto_health h = {up ? PROTO_HEALTH_READY : PROTO_HEALTH_DEGRADED,
                      up ? PROTO_REDIS_UP : PROTO_REDIS_DOWN};
    base_buf b;
    base_buf_init(&b, 256);
    if (proto_reply_health(&b, &h) == BASE_OK) {
        svc_engine_send(r, &b);
    }
    base_buf_fini(&b);
}

bool svc_engine_model_info(svc_engine *e, const char *name, uint64_t *out_n_updates,
                           uint64_t *out_checksum)
{
    svc_prt *p = svc_engine_find_policy(e, name);
    if (p == NULL) {
        return false;
    }
    pthread_rwlock_rdlock(&p->head_lk);
    *out_n_updates = pol_head_n_updates(p->head);
    *out_checksum = pol_head_checksum(p->head);
    pthread_rwlock_unlock(&p->head_lk);
    return true;
}
