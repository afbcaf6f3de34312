#include "service/engine_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The join's health: statuses of outcomes, expiry results, decision -> outcome latency. */
static void write_join_health(svc_writer *w, const rwd_join_stats *js)
{
    static const char *const bucket_names[RWD_LATENCY_BUCKETS] = {
        "lt_1s", "lt_10s", "lt_1m", "lt_10m", "lt_1h", "lt_6h", "lt_1d", "ge_1d",
    };
    svc_w_str(w, "join");
    svc_w_map(w, 8 + RWD_STATUS_COUNT);
    svc_w_str(w, "pending");
    svc_w_uint(w, js->pending);
    svc_w_str(w, "deferred");
    svc_w_uint(w, js->deferred);
    svc_w_str(w, "joined");
    svc_w_uint(w, js->joined);
    svc_w_str(w, "defaulted");
    svc_w_uint(w, js->defaulted);
    svc_w_str(w, "unknown");
    svc_w_uint(w, js->unknown);
    svc_w_str(w, "not_activated");
    svc_w_uint(w, js->not_activated);
    svc_w_str(w, "dangling");
    svc_w_uint(w, js->dangling);
    for (int s = 0; s < RWD_STATUS_COUNT; s++) {
        svc_w_str(w, rwd_status_name((rwd_status)s));
        svc_w_uint(w, js->status[s]);
    }
    svc_w_str(w, "latency");
    svc_w_map(w, RWD_LATENCY_BUCKETS);
    for (int b = 0; b < RWD_LATENCY_BUCKETS; b++) {
        svc_w_str(w, bucket_names[b]);
        svc_w_uint(w, js->latency[b]);
    }
}

void svc_op_stats(svc_engine *e, const svc_request *q, const svc_replier *r)
{
    svc_prt *only = NULL;
    if (q->policy[0] != '\0') {
        only = svc_engine_find_policy(e, q->policy);
        if (only == NULL) {
            svc_engine_reject(e, r, SVC_E_UNKNOWN_POLICY, "no such policy");
            return;
        }
    }
    base_buf b;
    base_buf_init(&b, 4u << 20);
    svc_writer w;
    svc_writer_init(&w, &b);
    svc_w_map(&w, 4);
    svc_w_str(&w, "ok");
    svc_w_bool(&w, true);
    svc_w_str(&w, "policies");
    svc_w_map(&w, only != NULL ? 1 : e->n_pol);
    for (uint32_t i = 0; i < e->n_pol; i++) {
        svc_prt *p = &e->pol[i];
        if (only != NULL && p != only) {
            continue;
        }
        rwd_join_stats js;
        pthread_mutex_lock(&p->join_lk);
        rwd_join_get_stats(p->join, &js);
        pthread_mutex_unlock(&p->join_lk);
        /* The head lock also guards last_joined_id for readers: the learner updates it
         * right after learning, under no lock, so copy it through the same path. */
        char applied[BASE_STREAM_ID_MAX + 1];
        pthread_rwlock_rdlock(&p->head_lk);
        uint64_t checksum = pol_head_checksum(p->head);
        uint64_t model_version = pol_head_n_updates(p->head); /* same instant as the checksum */
        memcpy(applied, p->last_joined_id, sizeof(applied));
        uint64_t trace = p->trace;
        pthread_rwlock_unlock(&p->head_lk);
        pthread_mutex_lock(&p->join_lk);
        uint64_t next_lsn = p->next_lsn;
        pthread_mutex_unlock(&p->join_lk);
        uint64_t joined = atomic_load(&p->c.joined);
        int64_t rsum = atomic_load(&p->c.reward_micro);
        svc_w_str(&w, p->cfg->name);
        svc_w_map(&w, 23);
        svc_w_str(&w, "decisions");
        svc_w_uint(&w, atomic_load(&p->c.decisions));
        svc_w_str(&w, "logged");
        svc_w_uint(&w, atomic_load(&p->c.logged));
        svc_w_str(&w, "unlogged");
        svc_w_uint(&w, atomic_load(&p->c.unlogged));
        svc_w_str(&w, "overflow");
        svc_w_uint(&w, atomic_load(&p->c.overflow));
        svc_w_str(&w, "feedback");
        svc_w_uint(&w, atomic_load(&p->c.feedback));
        svc_w_str(&w, "duplicates");
        svc_w_uint(&w, atomic_load(&p->c.duplicates));
        svc_w_str(&w, "unknown_event");
        svc_w_uint(&w, atomic_load(&p->c.unknown_event));
        svc_w_str(&w, "pending");
        svc_w_uint(&w, js.pending);
        svc_w_str(&w, "joined");
        svc_w_uint(&w, joined);
        svc_w_str(&w, "defaulted");
        svc_w_uint(&w, atomic_load(&p->c.defaulted));
        svc_w_str(&w, "mean_reward");
        svc_w_double(&w, joined > 0 ? (double)rsum * 1e-6 / (double)joined : 0.0);
        svc_w_str(&w, "updates");
        svc_w_uint(&w, atomic_load(&p->c.updates));
        svc_w_str(&w, "learn_errors");
        svc_w_uint(&w, atomic_load(&p->c.learn_errors));
        svc_w_str(&w, "store_errors");
        svc_w_uint(&w, atomic_load(&p->c.store_errors));
        svc_w_str(&w, "snapshots");
        svc_w_uint(&w, atomic_load(&p->c.snapshots));
        svc_w_str(&w, "model_version");
        svc_w_uint(&w, model_version);
        svc_w_str(&w, "model_checksum");
        char hex[17];
        snprintf(hex, sizeof(hex), "%016" PRIx64, checksum);
        svc_w_str(&w, hex);
        svc_w_str(&w, "dim");
        svc_w_uint(&w, p->cfg->head.dim);
        svc_w_str(&w, "last_applied_id");
        svc_w_str(&w, applied);
        svc_w_str(&w, "next_lsn");
        svc_w_uint(&w, next_lsn);
        svc_w_str(&w, "learn_trace");
        char th[17];
        snprintf(th, sizeof(th), "%016" PRIx64, trace);
        svc_w_str(&w, th);
        svc_w_str(&w, "reward_version");
        char version[BASE_NAME_MAX + 1];
        rwd_spec_version(&p->cfg->reward, version, sizeof(version));
        svc_w_str(&w, version);
        write_join_health(&w, &js);
    }
    svc_w_str(&w, "rejected");
    uint32_t n_rej = 0;
    for (int c = 1; c < SVC_E_COUNT; c++) {
        n_rej += atomic_load(&e->rejected[c]) > 0;
    }
    svc_w_map(&w, n_rej);
    for (int c = 1; c < SVC_E_COUNT; c++) {
        uint64_t v = atomic_load(&e->rejected[c]);
        if (v > 0) {
            svc_w_str(&w, svc_errcode_name((svc_errcode)c));
            svc_w_uint(&w, v);
        }
    }
    svc_w_str(&w, "storage");
    svc_w_map(&w, 6);
    svc_w_str(&w, "redis");
    svc_log_stats ls;
    svc_log_get_stats(&e->log, &ls);
    svc_w_str(&w, ls.up ? "up" : "down");
    svc_w_str(&w, "queue_depth");
    svc_w_uint(&w, ls.depth);
    svc_w_str(&w, "queue_capacity");
    svc_w_uint(&w, ls.capacity);
    svc_w_str(&w, "written");
    svc_w_uint(&w, ls.written);
    svc_w_str(&w, "failed");
    svc_w_uint(&w, ls.failed);
    svc_w_str(&w, "trimmed");
    svc_w_uint(&w, ls.trimmed);
    if (svc_writer_finish(&w) == BASE_OK) {
        svc_engine_send(r, &b);
    } else {
        svc_engine_reject(e, r, SVC_E_INTERNAL, "stats too large");
    }
    base_buf_fini(&b);
}

void svc_op_health(svc_engine *e, const svc_replier *r)
{
    svc_log_stats ls;
    svc_log_get_stats(&e->log, &ls);
    bool up = ls.up;
    base_buf b;
    base_buf_init(&b, 256);
    if (svc_wire_reply_health(&b, up ? "ready" : "degraded", up ? "up" : "down") == BASE_OK) {
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
