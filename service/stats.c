#include "service/engine_impl.h"
#include "service/lease.h"

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "proto/stats.h"
#include "service/auth.h"
#include "service/forward.h"
#include "service/metrics.h"

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
    out->activations = js->activations;
    out->dangling = js->dangling;
    for (int s = 0; s < RWD_STATUS_COUNT; s++) {
        proto_status ps = svc_engine_status((rwd_status)s);
        if (ps < PROTO_ST_COUNT) {
            out->status[ps] = js->status[s];
        }
    }
    memcpy(out->latency, js->latency, sizeof(out->latency));
}

/* The portfolio's selection state into @out (under head_lk). */
static void portfolio_stats(const pol_portfolio *pf, proto_portfolio_stats *out)
{
    pol_member_info mi;
    uint32_t n = pol_portfolio_size(pf);
    out->n_members = n < PROTO_PORTFOLIO_MAX ? n : PROTO_PORTFOLIO_MAX;
    out->switches = pol_portfolio_switches(pf);
    out->live = pol_portfolio_live(pf);
    for (uint32_t i = 0; i < out->n_members; i++) {
        proto_member_stats *m = &out->member[i];
        (void)pol_portfolio_member_info(pf, i, &mi);
        base_strlcpy(m->name, mi.name, sizeof(m->name));
        m->live = mi.live;
        m->estimate = mi.estimate;
        m->vs_serving = mi.vs_lead;
        m->se = mi.se;
        m->share = mi.share;
        m->updates = mi.n;
        if (mi.serving) {
            base_strlcpy(out->serving, mi.name, sizeof(out->serving));
        }
    }
}

/* A snapshot of @p's counters; each lock is held only to copy what it guards. */
/*
 * The head's checksum, under head_lk as reader. Hashing a large head takes milliseconds, so
 * it is computed once per state of the head (its writers bump head_gen) however often stats
 * and /metrics are read. Readers of one state store the same value.
 */
static uint64_t head_checksum(svc_prt *p)
{
    uint64_t key = p->head_gen + 1, n = pol_portfolio_n_updates(p->pf);
    if (atomic_load(&p->ck_gen) == key && atomic_load(&p->ck_updates) == n) {
        return atomic_load(&p->ck_value);
    }
    uint64_t c = pol_portfolio_checksum(p->pf);
    atomic_store(&p->ck_value, c);
    atomic_store(&p->ck_updates, n);
    atomic_store(&p->ck_gen, key);
    return c;
}

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
    out->model_checksum = head_checksum(p);
    out->model_version = pol_portfolio_n_updates(p->pf); /* same instant as the checksum */
    memcpy(out->last_applied_id, p->last_joined_id, sizeof(out->last_applied_id));
    out->learn_trace = p->trace;
    portfolio_stats(p->pf, &out->portfolio);
    pthread_rwlock_unlock(&p->head_lk);
    pthread_mutex_lock(&p->join_lk);
    out->next_lsn = p->next_lsn;
    pthread_mutex_unlock(&p->join_lk);

    bool follower = atomic_load(&p->follower);
    base_strlcpy(out->role, follower ? "follower" : "owner", sizeof(out->role));
    if (follower) {
        pthread_mutex_lock(&p->tail_lk);
        base_strlcpy(out->owner, p->holder, sizeof(out->owner));
        pthread_mutex_unlock(&p->tail_lk);
    } else {
        const svc_config *cfg = p->eng->cfg;
        if (cfg->instance_id[0] != '\0') {
            base_strlcpy(out->owner, cfg->instance_id, sizeof(out->owner));
        } else {
            svc_lease_default_owner(cfg, out->owner, sizeof(out->owner));
        }
    }
    out->forwarded = atomic_load(&p->c.forwarded);
    out->inbox = atomic_load(&p->c.inbox);
    out->inbox_bad = atomic_load(&p->c.inbox_bad);
    out->inbox_conflicts = atomic_load(&p->c.inbox_conflicts);
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
    base_strlcpy(out->reward_alarm, rwd_alarm_name((rwd_alarm_state)atomic_load(&p->alarm_state)),
                 sizeof(out->reward_alarm));
    out->reward_alarms = atomic_load(&p->c.reward_alarms);
    for (uint32_t k = 0; k < PROTO_SLOTS; k++) {
        proto_slot_stats *sl = &out->slots[k];
        sl->decisions = atomic_load(&p->c.slot_decisions[k]);
        sl->joined = atomic_load(&p->c.slot_joined[k]);
        int64_t sum = atomic_load(&p->c.slot_reward_micro[k]);
        sl->mean_reward = sl->joined > 0 ? (double)sum * 1e-6 / (double)sl->joined : 0.0;
    }
    /* Exploration spent by segment: "*" first, then the configured ones. */
    out->n_segments = 0;
    for (uint32_t g = 0; g <= p->cfg->n_segments && g < PROTO_STATS_MAX_SEGMENTS; g++) {
        proto_segment_stats *sg = &out->segments[out->n_segments++];
        base_strlcpy(sg->name, g == 0 ? "*" : p->cfg->segment[g - 1], sizeof(sg->name));
        sg->decisions = atomic_load(&p->c.seg_decisions[g]);
        uint64_t micro = atomic_load(&p->c.seg_explore_micro[g]);
        sg->mean_explore = sg->decisions > 0 ? (double)micro * 1e-6 / (double)sg->decisions : 0.0;
    }
    out->slots[BASE_SLOT_ONLINE].model_version = out->model_version;
    out->slots[BASE_SLOT_PRODUCTION].model_version = atomic_load(&p->prod_version);
    join_health(&js, &out->join);
}

/*
 * svc_engine_fill_stats(), and with @ope (may be NULL) each listed policy's OPE reading at the
 * same index as its stats, in a new array (base_free() it).
 */
static base_err fill_stats(svc_engine *e, svc_prt *only, proto_stats *out, svc_ope_reading **ope)
{
    memset(out, 0, sizeof(*out));
    uint32_t n = e->n_pol; /* the catalog may add one meanwhile: not this time */
    out->policies = base_alloc_zero(n > 0 ? n : 1, sizeof(*out->policies));
    svc_ope_reading *o = ope != NULL ? base_alloc_zero(n > 0 ? n : 1, sizeof(*o)) : NULL;
    if (out->policies == NULL || (ope != NULL && o == NULL)) {
        base_free(out->policies);
        out->policies = NULL;
        base_free(o);
        return BASE_ENOMEM;
    }
    uint64_t now = base_mono_ns();
    for (uint32_t i = 0; i < n; i++) {
        bool retired = atomic_load(&e->pol[i].retired);
        if ((only == NULL && !retired) || &e->pol[i] == only) {
            if (o != NULL) {
                svc_ope_read(&e->pol[i].ope, now, &o[out->n_policies]);
            }
            policy_stats(&e->pol[i], &out->policies[out->n_policies++]);
        }
    }
    if (ope != NULL) {
        *ope = o;
    }
    for (int c = PROTO_E_NONE + 1; c < PROTO_E_COUNT; c++) {
        out->rejected[c] = atomic_load(&e->rejected[c]);
    }
    svc_log_stats ls;
    svc_log_get_stats(&e->log, &ls);
    out->storage.redis = ls.up ? PROTO_REDIS_UP : PROTO_REDIS_DOWN;
    out->storage.queue_depth = ls.depth;
    out->storage.queue_capacity = ls.capacity;
    out->storage.written = ls.written;
    out->storage.failed = ls.failed;
    out->storage.trimmed = ls.trimmed;
    out->storage.audit_failed = ls.audit_failed;
    out->storage.pull_paused = atomic_load(&e->pull_paused);
    sto_url_redact(ls.url != NULL ? ls.url : "", out->storage.url, sizeof(out->storage.url));
    out->auth = svc_auth_enabled(e->auth);
    if (out->auth) {
        svc_auth_stats(e->auth, out->clients, PROTO_STATS_MAX_CLIENTS, &out->n_clients,
                       &out->auth_unknown);
    }
    for (uint32_t i = 0; only == NULL && i < e->cfg->n_waiting; i++) {
        const svc_waiting *w = &e->cfg->waiting[i];
        if (!atomic_load(&w->taken) && !atomic_load(&w->retired) &&
            out->n_standby < PROTO_STATS_MAX_STANDBY) {
            proto_standby_stats *sb = &out->standby[out->n_standby++];
            base_strlcpy(sb->policy, w->cfg.name, sizeof(sb->policy));
            svc_waiting_holder(w, sb->owner, sizeof(sb->owner)); /* cut if longer */
        }
    }
    return BASE_OK;
}

base_err svc_engine_fill_stats(svc_engine *e, svc_prt *only, proto_stats *out)
{
    return fill_stats(e, only, out, NULL);
}

void svc_engine_set_auth(svc_engine *e, struct svc_auth *a)
{
    e->auth = a;
}

base_err svc_engine_set_pseudonym_key(svc_engine *e, const uint8_t key[32])
{
    proto_mac_key *k = proto_mac_key_new(key);
    if (k == NULL) {
        return BASE_ENOMEM;
    }
    proto_mac_key_free(e->pseudonym_key);
    e->pseudonym_key = k;
    return BASE_OK;
}

void svc_engine_pseudonymize(const svc_engine *e, proto_request *q)
{
    char p[PROTO_PSEUDONYM_LEN + 1];
    if (e->pseudonym_key == NULL) {
        return;
    }
    proto_pseudonym_with(e->pseudonym_key, "user", q->user_id, p);
    base_strlcpy(q->user_id, p, sizeof(q->user_id));
    proto_pseudonym_with(e->pseudonym_key, "conversation", q->conversation_id, p);
    base_strlcpy(q->conversation_id, p, sizeof(q->conversation_id));
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
    if (svc_engine_fill_stats(e, only, &st) != BASE_OK) {
        svc_engine_reject(e, r, PROTO_E_INTERNAL, "out of memory");
        return;
    }
    if (q->limited) { /* a client that may see only some policies: nothing on the others */
        st.n_clients = 0;
        st.auth_unknown = 0;
        st.n_standby = 0;
    }

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

/* Whether the writer's stats @ls make the engine ready (svc_engine_ready()). */
static bool ready_from(const svc_log_stats *ls, char *why, size_t whylen)
{
    if (!ls->up) {
        snprintf(why, whylen, ls->refusing ? "redis refuses writes" : "redis unreachable");
        return false;
    }
    if (ls->depth >= ls->capacity) {
        snprintf(why, whylen, "write queue full (%llu of %llu records)",
                 (unsigned long long)ls->depth, (unsigned long long)ls->capacity);
        return false;
    }
    return true;
}

void svc_op_health(svc_engine *e, const proto_request *q, const svc_replier *r)
{
    svc_log_stats ls;
    svc_log_get_stats(&e->log, &ls);
    char why[64];
    /* As /readyz, from the same reading: Redis away or refusing, or the queue full, is degraded. */
    proto_health h = {.status = ready_from(&ls, why, sizeof(why)) ? PROTO_HEALTH_READY
                                                                  : PROTO_HEALTH_DEGRADED,
                      .redis = ls.up ? PROTO_REDIS_UP : PROTO_REDIS_DOWN};
    /* A client that may see only some policies: no alarm, each names a policy or a client. */
    for (uint32_t i = 0; i < e->n_pol && !q->limited; i++) {
        unsigned st = atomic_load(&e->pol[i].alarm_state);
        if (st != RWD_ALARM_OK && h.n_alarms++ < PROTO_HEALTH_ALARMS_MAX) {
            snprintf(h.alarms[h.n_alarms - 1], sizeof(h.alarms[0]), "%s: reward %s",
                     e->pol[i].cfg->name, rwd_alarm_name((rwd_alarm_state)st));
        }
    }
    char clients[PROTO_HEALTH_ALARMS_MAX][SVC_CLIENT_ALARM_MAX];
    uint32_t n_clients =
        q->limited ? 0 : svc_auth_alarms(e->auth, clients, PROTO_HEALTH_ALARMS_MAX);
    for (uint32_t i = 0; i < n_clients; i++, h.n_alarms++) {
        if (h.n_alarms < PROTO_HEALTH_ALARMS_MAX) {
            base_strlcpy(h.alarms[h.n_alarms], clients[i], sizeof(h.alarms[0]));
        }
    }
    base_buf b;
    base_buf_init(&b, 4096);
    if (proto_reply_health(&b, &h) == BASE_OK) {
        svc_engine_send(r, &b);
    }
    base_buf_fini(&b);
}

base_err svc_engine_metrics(svc_engine *e, base_buf *out)
{
    proto_stats st;
    svc_ope_reading *ope = NULL; /* ope[k] is st.policies[k]'s */
    base_err err = fill_stats(e, NULL, &st, &ope);
    if (err != BASE_OK) {
        return err;
    }
    svc_lat_reading *lat = base_alloc_zero(1, sizeof(*lat));
    if (lat == NULL) {
        err = BASE_ENOMEM;
        goto done;
    }
    svc_lat_read(&e->lat, lat);
    svc_metrics_input in = {&st, ope, lat};
    err = svc_metrics_write(out, &in);
done:
    base_free(lat);
    base_free(ope);
    base_free(st.policies);
    return err;
}

bool svc_engine_ready(svc_engine *e, char *why, size_t whylen)
{
    svc_log_stats ls;
    svc_log_get_stats(&e->log, &ls);
    if (!ready_from(&ls, why, whylen)) {
        return false;
    }
    /* Standing by for every policy: each request would be answered unavailable. */
    uint32_t served = 0, n = atomic_load(&e->n_pol);
    bool refused = false; /* a follower of an owner without shared = on */
    for (uint32_t i = 0; i < n; i++) {
        bool unshared = atomic_load(&e->pol[i].follower) && atomic_load(&e->pol[i].owner_unshared);
        served += !atomic_load(&e->pol[i].retired) && !unshared;
        refused = refused || unshared;
    }
    bool waiting = refused;
    for (uint32_t i = 0; i < e->cfg->n_waiting && !waiting; i++) {
        waiting =
            !atomic_load(&e->cfg->waiting[i].taken) && !atomic_load(&e->cfg->waiting[i].retired);
    }
    if (served == 0 && waiting) {
        snprintf(why, whylen, "standing by: another instance owns every policy");
        return false;
    }
    return true;
}

/*
 * Room left in a queue of @cap holding @depth: more than an eighth of it (at least one) free,
 * so that one more still leaves the whole last eighth to requests someone waits for.
 */
static bool has_room(size_t depth, size_t cap)
{
    size_t spare = cap / 8 > 0 ? cap / 8 : 1;
    return depth + spare < cap;
}

bool svc_engine_pull_room(svc_engine *e, size_t pending)
{
    svc_log_stats ls;
    svc_log_get_stats(&e->log, &ls);
    bool room = has_room(ls.depth + pending, ls.capacity) &&
                (e->forward == NULL || has_room(svc_forward_depth(e->forward) + pending,
                                                svc_forward_capacity(e->forward)));
    if (!room && !atomic_exchange(&e->pull_full, true)) {
        atomic_fetch_add(&e->pull_paused, 1);
    } else if (room && atomic_load(&e->pull_full)) {
        atomic_store(&e->pull_full, false);
    }
    return room;
}

bool svc_engine_model_info(svc_engine *e, const char *name, uint64_t *out_n_updates,
                           uint64_t *out_checksum)
{
    svc_prt *p = svc_engine_find_policy(e, name);
    if (p == NULL) {
        return false;
    }
    pthread_rwlock_rdlock(&p->head_lk);
    *out_n_updates = pol_portfolio_n_updates(p->pf);
    *out_checksum = head_checksum(p);
    pthread_rwlock_unlock(&p->head_lk);
    return true;
}
