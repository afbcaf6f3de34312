#include "service/engine_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "proto/mp.h"

/* The join's health: statuses of outcomes, expiry results, decision -> outcome latency. */
static void write_join_health(proto_writer *w, const rwd_join_stats *js)
{
    static const char *const bucket_names[RWD_LATENCY_BUCKETS] = {
        "lt_1s", "lt_10s", "lt_1m", "lt_10m", "lt_1h", "lt_6h", "lt_1d", "ge_1d",
    };
    proto_w_str(w, "join");
    proto_w_map(w, 8 + RWD_STATUS_COUNT);
    proto_w_str(w, "pending");
    proto_w_uint(w, js->pending);
    proto_w_str(w, "deferred");
    proto_w_uint(w, js->deferred);
    proto_w_str(w, "joined");
    proto_w_uint(w, js->joined);
    proto_w_str(w, "defaulted");
    proto_w_uint(w, js->defaulted);
    proto_w_str(w, "unknown");
    proto_w_uint(w, js->unknown);
    proto_w_str(w, "not_activated");
    proto_w_uint(w, js->not_activated);
    proto_w_str(w, "dangling");
    proto_w_uint(w, js->dangling);
    for (int s = 0; s < RWD_STATUS_COUNT; s++) {
        proto_w_str(w, rwd_status_name((rwd_status)s));
        proto_w_uint(w, js->status[s]);
    }
    proto_w_str(w, "latency");
    proto_w_map(w, RWD_LATENCY_BUCKETS);
    for (int b = 0; b < RWD_LATENCY_BUCKETS; b++) {
        proto_w_str(w, bucket_names[b]);
        proto_w_uint(w, js->latency[b]);
    }
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
    base_buf b;
    base_buf_init(&b, 4u << 20);
    proto_writer w;
    proto_writer_init(&w, &b);
    proto_w_map(&w, 4);
    proto_w_str(&w, "ok");
    proto_w_bool(&w, true);
    proto_w_str(&w, "policies");
    proto_w_map(&w, only != NULL ? 1 : e->n_pol);
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
        proto_w_str(&w, p->cfg->name);
        proto_w_map(&w, 23);
        proto_w_str(&w, "decisions");
        proto_w_uint(&w, atomic_load(&p->c.decisions));
        proto_w_str(&w, "logged");
        proto_w_uint(&w, atomic_load(&p->c.logged));
        proto_w_str(&w, "unlogged");
        proto_w_uint(&w, atomic_load(&p->c.unlogged));
        proto_w_str(&w, "overflow");
        proto_w_uint(&w, atomic_load(&p->c.overflow));
        proto_w_str(&w, "feedback");
        proto_w_uint(&w, atomic_load(&p->c.feedback));
        proto_w_str(&w, "duplicates");
        proto_w_uint(&w, atomic_load(&p->c.duplicates));
        proto_w_str(&w, "unknown_event");
        proto_w_uint(&w, atomic_load(&p->c.unknown_event));
        proto_w_str(&w, "pending");
        proto_w_uint(&w, js.pending);
        proto_w_str(&w, "joined");
        proto_w_uint(&w, joined);
        proto_w_str(&w, "defaulted");
        proto_w_uint(&w, atomic_load(&p->c.defaulted));
        proto_w_str(&w, "mean_reward");
        proto_w_double(&w, joined > 0 ? (double)rsum * 1e-6 / (double)joined : 0.0);
        proto_w_str(&w, "updates");
        proto_w_uint(&w, atomic_load(&p->c.updates));
        proto_w_str(&w, "learn_errors");
        proto_w_uint(&w, atomic_load(&p->c.learn_errors));
        proto_w_str(&w, "store_errors");
        proto_w_uint(&w, atomic_load(&p->c.store_errors));
        proto_w_str(&w, "snapshots");
        proto_w_uint(&w, atomic_load(&p->c.snapshots));
        proto_w_str(&w, "model_version");
        proto_w_uint(&w, model_version);
        proto_w_str(&w, "model_checksum");
        char hex[17];
        snprintf(hex, sizeof(hex), "%016" PRIx64, checksum);
        proto_w_str(&w, hex);
        proto_w_str(&w, "dim");
        proto_w_uint(&w, p->cfg->head.dim);
        proto_w_str(&w, "last_applied_id");
        proto_w_str(&w, applied);
        proto_w_str(&w, "next_lsn");
        proto_w_uint(&w, next_lsn);
        proto_w_str(&w, "learn_trace");
        char th[17];
        snprintf(th, sizeof(th), "%016" PRIx64, trace);
        proto_w_str(&w, th);
        proto_w_str(&w, "reward_version");
        char version[BASE_NAME_MAX + 1];
        rwd_spec_version(&p->cfg->reward, version, sizeof(version));
        proto_w_str(&w, version);
        write_join_health(&w, &js);
    }
    proto_w_str(&w, "rejected");
    uint32_t n_rej = 0;
    for (int c = 1; c < PROTO_E_COUNT; c++) {
        n_rej += atomic_load(&e->rejected[c]) > 0;
    }
    proto_w_map(&w, n_rej);
    for (int c = 1; c < PROTO_E_COUNT; c++) {
        uint64_t v = atomic_load(&e->rejected[c]);
        if (v > 0) {
            proto_w_str(&w, proto_errcode_name((proto_errcode)c));
            proto_w_uint(&w, v);
        }
    }
    proto_w_str(&w, "storage");
    proto_w_map(&w, 6);
    proto_w_str(&w, "redis");
    proto_w_str(&w, svc_persist_redis_up(e->persist) ? "up" : "down");
    proto_w_str(&w, "queue_depth");
    proto_w_uint(&w, svc_persist_depth(e->persist));
    proto_w_str(&w, "queue_capacity");
    proto_w_uint(&w, svc_persist_capacity(e->persist));
    proto_w_str(&w, "written");
    proto_w_uint(&w, svc_persist_written(e->persist));
    proto_w_str(&w, "failed");
    proto_w_uint(&w, svc_persist_failed(e->persist));
    proto_w_str(&w, "trimmed");
    proto_w_uint(&w, svc_persist_trimmed(e->persist));
    if (proto_writer_finish(&w) == BASE_OK) {
        svc_engine_send(r, &b);
    } else {
        svc_engine_reject(e, r, PROTO_E_INTERNAL, "stats too large");
    }
    base_buf_fini(&b);
}

void svc_op_health(svc_engine *e, const svc_replier *r)
{
    bool up = svc_persist_redis_up(e->persist);
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
