#include "service/engine_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "proto/auth.h"
#include "service/explain.h"

svc_prt *svc_engine_find_policy(svc_engine *e, const char *name)
{
    uint32_t n = e->n_pol;
    for (uint32_t i = 0; i < n; i++) {
        if (!atomic_load(&e->pol[i].retired) && strcmp(e->pol[i].cfg->name, name) == 0) {
            return &e->pol[i];
        }
    }
    return NULL;
}

static uint64_t random_u64(void)
{
    uint64_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f != NULL) {
        if (fread(&v, sizeof(v), 1, f) != 1) {
            v = 0;
        }
        fclose(f);
    }
    if (v == 0) {
        v = base_mono_ns() ^ ((uint64_t)(uintptr_t)&v << 16);
    }
    return v;
}

base_err svc_engine_new(const svc_config *cfg, base_clock *clock, const svc_log *log,
                        svc_engine **out, char *errbuf, size_t errlen)
{
    base_err e = BASE_ENOMEM;
    svc_engine *eng = base_alloc_zero(1, sizeof(*eng));
    if (eng == NULL) {
        goto fail;
    }
    eng->cfg = cfg;
    eng->clock = clock;
    eng->log = *log;
    eng->id_prefix = random_u64();
    svc_lat_init(&eng->lat);
    pthread_mutex_init(&eng->ack_lk, NULL);
    eng->ack_timeout_ns = (uint64_t)cfg->ack_timeout_ms * 1000000u;
    /*
     * A quarter of each listener's REP contexts (at least one) stays free for decide. One
     * count covers every listener, so it is capped by one listener's contexts: all that wait
     * may be on the same one. With a single context there is nothing to keep back: a feedback
     * may hold it (a decide then waits for it, at most ack_timeout_ms), else none could wait.
     */
    uint32_t contexts = cfg->contexts;
    uint32_t reserve = contexts / 4 > 0 ? contexts / 4 : 1;
    eng->max_waiting = contexts > 1 ? contexts - reserve : contexts;
    pthread_mutex_init(&eng->change_lk, NULL);
    eng->pol = base_alloc_zero(SVC_MAX_POLICIES, sizeof(svc_prt));
    if (eng->pol == NULL) {
        goto fail;
    }
    svc_log_stats ls;
    svc_log_get_stats(log, &ls);
    eng->learn_cap = ls.capacity;
    eng->learn_q = base_queue_new(eng->learn_cap);
    if (eng->learn_q == NULL) {
        goto fail;
    }
    for (uint32_t i = 0; i < cfg->n_policies; i++) {
        eng->n_pol = i + 1;
        e = svc_prt_init(&eng->pol[i], eng, &cfg->policy[i], errbuf, errlen);
        if (e != BASE_OK) {
            goto fail;
        }
        atomic_store(&eng->pol[i].retired, cfg->policy[i].retired);
        atomic_store(&eng->pol[i].follower, svc_config_follows(cfg, i));
        if (svc_config_follows(cfg, i)) {
            base_strlcpy(eng->pol[i].holder, cfg->following[i].holder, sizeof(eng->pol[i].holder));
        }
    }
    *out = eng;
    return BASE_OK;
fail:
    svc_engine_free(eng);
    return e;
}

void svc_engine_free(svc_engine *e)
{
    if (e == NULL) {
        return;
    }
    for (uint32_t i = 0; i < e->n_pol; i++) {
        svc_prt_fini(&e->pol[i]);
    }
    svc_learner_drop_queue(e);
    pthread_mutex_destroy(&e->ack_lk); /* empty: the log completed every owed answer */
    svc_catalog_drop_changes(e);
    pthread_mutex_destroy(&e->change_lk);
    base_free(e->pol);
    base_free(e->restored);
    proto_mac_key_free(e->pseudonym_key);
    base_free(e);
}

const svc_config *svc_engine_config(const svc_engine *e)
{
    return e->cfg;
}

void svc_engine_send(const svc_replier *r, base_buf *b)
{
    if (r != NULL && r->send != NULL) {
        if (r->lat != NULL) {
            svc_lat_observe(r->lat, r->op, base_mono_ns() - r->t0_ns);
        }
        r->send(r->arg, b->data, b->len);
    }
}

void svc_engine_reject(svc_engine *e, const svc_replier *r, proto_errcode code, const char *msg)
{
    atomic_fetch_add(&e->rejected[code], 1);
    if (r == NULL || r->send == NULL) {
        return;
    }
    base_buf b;
    base_buf_init(&b, 4096);
    if (proto_reply_error(&b, code, msg) == BASE_OK) {
        svc_engine_send(r, &b);
    }
    base_buf_fini(&b);
}

void svc_engine_reply_duplicate(const svc_replier *r)
{
    if (r == NULL || r->send == NULL) {
        return;
    }
    base_buf b;
    base_buf_init(&b, 256);
    if (proto_reply_duplicate(&b) == BASE_OK) {
        svc_engine_send(r, &b);
    }
    base_buf_fini(&b);
}

void svc_engine_reply_status(const svc_replier *r, rwd_status status)
{
    if (r == NULL || r->send == NULL) {
        return;
    }
    base_buf b;
    base_buf_init(&b, 256);
    if (proto_reply_status(&b, svc_engine_status(status)) == BASE_OK) {
        svc_engine_send(r, &b);
    }
    base_buf_fini(&b);
}

void svc_engine_reply_accepted(const svc_replier *r)
{
    if (r == NULL || r->send == NULL) {
        return;
    }
    base_buf b;
    base_buf_init(&b, 256);
    if (proto_reply_status(&b, PROTO_ST_ACCEPTED) == BASE_OK) {
        svc_engine_send(r, &b);
    }
    base_buf_fini(&b);
}

void svc_engine_reply_logged(const svc_replier *r, const char *event_id)
{
    if (r == NULL || r->send == NULL) {
        return;
    }
    base_buf b;
    base_buf_init(&b, 256);
    if (proto_reply_logged(&b, event_id) == BASE_OK) {
        svc_engine_send(r, &b);
    }
    base_buf_fini(&b);
}

proto_status svc_engine_status(rwd_status s)
{
    /* No default: a status the join gains must be given a wire name here (-Wswitch). */
    switch (s) {
    case RWD_MATCHED:
        return PROTO_ST_MATCHED;
    case RWD_DUPLICATE:
        return PROTO_ST_DUPLICATE;
    case RWD_CORRECTED:
        return PROTO_ST_CORRECTED;
    case RWD_LATE:
        return PROTO_ST_LATE;
    case RWD_LATE_CORRECTION:
        return PROTO_ST_LATE_CORRECTION;
    case RWD_EARLY:
        return PROTO_ST_EARLY;
    case RWD_UNKNOWN_EVENT:
        return PROTO_ST_UNKNOWN_EVENT;
    case RWD_REJECT_SIGNAL:
        return PROTO_ST_REJECTED_SIGNAL;
    case RWD_REJECT_VALUE:
        return PROTO_ST_REJECTED_VALUE;
    case RWD_REJECT_LIMIT:
        return PROTO_ST_REJECTED_LIMIT;
    case RWD_REJECT_RATE:
        return PROTO_ST_REJECTED_RATE;
    case RWD_STATUS_COUNT:
        break;
    }
    return PROTO_ST_COUNT;
}

void svc_engine_count_reject(svc_engine *e, proto_errcode code)
{
    if (code > PROTO_E_NONE && code < PROTO_E_COUNT) {
        atomic_fetch_add(&e->rejected[code], 1);
    }
}

static void op_clock(svc_engine *e, const proto_request *q, const svc_replier *r)
{
    if (!e->clock->manual) {
        svc_engine_reject(e, r, PROTO_E_UNKNOWN_OP, SVC_CLOCK_UNKNOWN);
        return;
    }
    bool set = q->clock_set_ms >= 0;
    if (set ? !base_clock_set(e->clock, q->clock_set_ms)
            : !base_clock_advance(e->clock, q->clock_advance_ms)) {
        char msg[PROTO_ERRMSG_MAX];
        snprintf(msg, sizeof(msg),
                 "%s %" PRId64 " would move the clock past the largest time, %lld ms "
                 "(now %" PRId64 " ms)",
                 set ? "set_ms" : "advance_ms", set ? q->clock_set_ms : q->clock_advance_ms,
                 BASE_CLOCK_MAX_MS, base_clock_now_ms(e->clock));
        svc_engine_reject(e, r, PROTO_E_OUT_OF_RANGE, msg);
        return;
    }
    base_buf b;
    base_buf_init(&b, 256);
    if (proto_reply_clock(&b, base_clock_now_ms(e->clock)) == BASE_OK) {
        svc_engine_send(r, &b);
    }
    base_buf_fini(&b);
}

bool svc_engine_standby_message(svc_engine *e, const char *policy, char *msg, size_t len)
{
    const svc_waiting *w = svc_config_waiting(e->cfg, policy);
    if (w == NULL) {
        return false;
    }
    char holder[SVC_URL_MAX];
    svc_waiting_holder(w, holder, sizeof(holder));
    snprintf(msg, len,
             "policy \"%s\" is served by instance \"%s\"; this one takes it over if that "
             "lease runs out",
             policy, holder);
    return true;
}

/* A policy this instance stands by for (standby = on): refuse @r unavailable, naming its owner. */
static bool refused_standby(svc_engine *e, const char *policy, const svc_replier *r)
{
    char msg[PROTO_ERRMSG_MAX + 600]; /* cut to PROTO_ERRMSG_MAX by the reply */
    if (!svc_engine_standby_message(e, policy, msg, sizeof(msg))) {
        return false;
    }
    svc_engine_reject(e, r, PROTO_E_UNAVAILABLE, msg);
    return true;
}

void svc_engine_handle(svc_engine *e, const proto_request *q, const svc_replier *reply)
{
    /* A copy that carries the latency clock with it, also into owed answers. */
    svc_replier rr = *reply;
    const svc_replier *r = &rr;
    rr.lat = rr.send != NULL ? &e->lat : NULL;
    rr.t0_ns = rr.t0_ns != 0 ? rr.t0_ns : base_mono_ns();
    rr.op = (uint32_t)q->op;
    if (q->op == PROTO_OP_HEALTH) {
        svc_op_health(e, q, r);
        return;
    }
    if (q->op == PROTO_OP_CLOCK) {
        op_clock(e, q, r);
        return;
    }
    svc_prt *p = q->policy[0] != '\0' ? svc_engine_find_policy(e, q->policy) : NULL;
    if (p == NULL && q->policy[0] != '\0' && refused_standby(e, q->policy, r)) {
        return; /* any op on such a policy, stats too (docs/protocol.md section 5) */
    }
    if (q->op == PROTO_OP_STATS) {
        svc_op_stats(e, q, r);
        return;
    }
    if (p == NULL) {
        char msg[PROTO_ERRMSG_MAX];
        snprintf(msg, sizeof(msg), "no policy named \"%s\"", q->policy);
        svc_engine_reject(e, r, PROTO_E_UNKNOWN_POLICY, msg);
        return;
    }
    if (q->op != PROTO_OP_EXPLAIN && atomic_load(&p->follower) && atomic_load(&p->owner_unshared)) {
        char msg[PROTO_ERRMSG_MAX + 300];
        pthread_mutex_lock(&p->tail_lk);
        snprintf(msg, sizeof(msg),
                 "policy \"%s\" is owned by instance \"%s\", which does not run shared = on: "
                 "it would never take what this instance forwarded",
                 p->cfg->name, p->holder);
        pthread_mutex_unlock(&p->tail_lk);
        svc_engine_reject(e, r, PROTO_E_UNAVAILABLE, msg);
        return;
    }
    /* One definition for the whole op: a catalog change waits for it (service/catalog.c). */
    pthread_rwlock_rdlock(&p->gate);
    switch (q->op) {
    case PROTO_OP_DECIDE:
        svc_op_decide(e, p, q, r);
        break;
    case PROTO_OP_LOG:
        svc_op_log(e, p, q, r);
        break;
    case PROTO_OP_FEEDBACK:
        svc_op_outcome(e, p, q, r, BASE_OUT_SIGNAL);
        break;
    case PROTO_OP_ACTIVATE:
        svc_op_outcome(e, p, q, r, BASE_OUT_ACTIVATE);
        break;
    case PROTO_OP_EXPLAIN:
        svc_op_explain(e, p, q, r);
        break;
    default:
        svc_engine_reject(e, r, PROTO_E_UNKNOWN_OP, "unknown op");
        break;
    }
    pthread_rwlock_unlock(&p->gate);
}

void svc_engine_step_down(svc_engine *e, uint32_t i, const char *holder)
{
    svc_prt *p = svc_engine_policy_at(e, i);
    if (p == NULL) {
        return;
    }
    pthread_mutex_lock(&p->tail_lk);
    base_strlcpy(p->holder, holder, sizeof(p->holder));
    pthread_mutex_unlock(&p->tail_lk);
    atomic_store(&p->step_down, true); /* the learner thread does it (service/learner.c) */
}

void svc_engine_set_forward(svc_engine *e, struct svc_forward *f)
{
    e->forward = f;
}

struct svc_prt *svc_engine_policy_at(svc_engine *e, uint32_t i)
{
    return i < e->n_pol ? &e->pol[i] : NULL;
}
