/*
 * The rollup thread and its rings (service/rollup.h). Each period it reads
 * every policy's counters once into a `raw` reading, writes the difference
 * from the previous one as a row, and appends the rows Redis has not taken
 * yet to the rollup streams (storage/rollup.h).
 */
#include "service/rollup.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/thread.h"
#include "service/engine_impl.h"
#include "storage/rollup.h"
#include "storage/store.h"

#define POLL_MS 100         /* how often the thread looks at the engine's clock */
#define STORE_RETRY_MS 1000 /* rows Redis refused are tried again this often */

static const char *const field_names[SVC_RU_NFIELDS] = {
    "t_ms",
    "span_ms",
    "decisions_online",
    "decisions_production",
    "logged",
    "joined",
    "reward_sum",
    "reward_mean",
    "joined_online",
    "reward_sum_online",
    "reward_mean_online",
    "joined_production",
    "reward_sum_production",
    "reward_mean_production",
    "joined_base",
    "reward_sum_base",
    "reward_mean_base",
    "feedback",
    "matched",
    "late",
    "early",
    "duplicate",
    "unknown_event",
    "refused",
    "defaulted",
    "unknown",
    "dangling",
    "not_activated",
    "lat_decide_p50_ms",
    "lat_decide_p90_ms",
    "lat_decide_p99_ms",
    "lat_feedback_p50_ms",
    "lat_feedback_p90_ms",
    "lat_feedback_p99_ms",
    "lat_log_p50_ms",
    "lat_log_p90_ms",
    "lat_log_p99_ms",
    "lat_activate_p50_ms",
    "lat_activate_p90_ms",
    "lat_activate_p99_ms",
    "version_online",
    "version_production",
    "serve_production",
    "canary",
    "ope_n",
    "ope_ess",
    "ope_min_propensity",
    "rejected",
    "pending",
    "queue_depth",
    "redis_up",
};

/* The ops whose latency a row carries, in the order of their fields. */
static const uint32_t lat_ops[4] = {PROTO_OP_DECIDE, PROTO_OP_FEEDBACK, PROTO_OP_LOG,
                                    PROTO_OP_ACTIVATE};

/* One policy's monotonic counters at one instant (differences make a row). */
typedef struct raw {
    uint64_t decisions[2], joined_slot[2], joined, joined_base, logged;
    int64_t micro_slot[2], micro, micro_base; /* reward sums in 1e-6 */
    uint64_t status[PROTO_ST_COUNT];
    uint64_t defaulted, unknown, dangling, not_activated;
} raw;

typedef struct ru_policy {
    double *rows;      /* [keep * SVC_RU_NFIELDS]: a ring; guarded by the rollup's lk */
    size_t head, n;    /* guarded by lk: the oldest row's index, the rows held */
    size_t unstored;   /* the newest rows not in Redis yet; rollup thread (and open) only */
    raw prev;          /* rollup thread only */
    base_err last_err; /* the last append's result, so a failure is logged once */
} ru_policy;

typedef struct svc_rollup {
    svc_engine *e;
    size_t keep;
    ru_policy *pol; /* [SVC_MAX_POLICIES], the first n in use */
    uint32_t n;     /* guarded by lk; the engine's policies, those the catalog adds in take() */
    pthread_mutex_t lk;
    pthread_cond_t cv;
    bool stop; /* guarded by lk */
    pthread_t thread;
    bool started;
    /* rollup thread only (open before it starts) */
    sto_store *store;
    bool broken;               /* the connection needs a reconnect */
    uint64_t next_store_ns;    /* no append before this after a failure */
    int64_t last_t_ms;         /* end of the last interval */
    int64_t next_t_ms;         /* the next boundary */
    svc_lat_reading *lat_prev; /* the histograms at last_t_ms */
    uint64_t rejected_prev;
} svc_rollup;

const char *svc_ru_field_name(uint32_t k)
{
    return k < SVC_RU_NFIELDS ? field_names[k] : NULL;
}

static void read_raw(svc_prt *p, raw *out, rwd_join_stats *js)
{
    pthread_mutex_lock(&p->join_lk);
    rwd_join_get_stats(p->join, js);
    pthread_mutex_unlock(&p->join_lk);
    memset(out, 0, sizeof(*out));
    for (uint32_t k = 0; k < 2; k++) {
        out->decisions[k] = atomic_load(&p->c.slot_decisions[k]);
        out->joined_slot[k] = atomic_load(&p->c.slot_joined[k]);
        out->micro_slot[k] = atomic_load(&p->c.slot_reward_micro[k]);
    }
    out->joined = atomic_load(&p->c.joined);
    out->micro = atomic_load(&p->c.reward_micro);
    out->joined_base = atomic_load(&p->c.base_joined);
    out->micro_base = atomic_load(&p->c.base_reward_micro);
    out->logged = atomic_load(&p->c.logged);
    for (int s = 0; s < RWD_STATUS_COUNT; s++) {
        proto_status ps = svc_engine_status((rwd_status)s);
        if (ps < PROTO_ST_COUNT) {
            out->status[ps] = js->status[s];
        }
    }
    out->defaulted = js->defaulted;
    out->unknown = js->unknown;
    out->dangling = js->dangling;
    out->not_activated = js->not_activated;
}

static double mean_of(int64_t micro, uint64_t n)
{
    return n > 0 ? (double)micro * 1e-6 / (double)n : NAN;
}

/* The row of @p for the interval ending at @t_ms, from @cur and @p's previous reading. */
static void make_row(svc_rollup *r, svc_prt *p, const raw *cur, const rwd_join_stats *js,
                     int64_t t_ms, double *row)
{
    const raw *o = &r->pol[p - r->e->pol].prev;
    row[SVC_RU_T_MS] = (double)t_ms;
    row[SVC_RU_SPAN_MS] = (double)(t_ms - r->last_t_ms);
    row[SVC_RU_DECISIONS_ONLINE] = (double)(cur->decisions[0] - o->decisions[0]);
    row[SVC_RU_DECISIONS_PRODUCTION] = (double)(cur->decisions[1] - o->decisions[1]);
    row[SVC_RU_LOGGED] = (double)(cur->logged - o->logged);
    uint64_t n = cur->joined - o->joined;
    int64_t m = cur->micro - o->micro;
    row[SVC_RU_JOINED] = (double)n;
    row[SVC_RU_REWARD_SUM] = (double)m * 1e-6;
    row[SVC_RU_REWARD_MEAN] = mean_of(m, n);
    for (uint32_t k = 0; k < 2; k++) {
        n = cur->joined_slot[k] - o->joined_slot[k];
        m = cur->micro_slot[k] - o->micro_slot[k];
        uint32_t base = k == 0 ? SVC_RU_JOINED_ONLINE : SVC_RU_JOINED_PRODUCTION;
        row[base] = (double)n;
        row[base + 1] = (double)m * 1e-6;
        row[base + 2] = mean_of(m, n);
    }
    n = cur->joined_base - o->joined_base;
    m = cur->micro_base - o->micro_base;
    row[SVC_RU_JOINED_BASE] = (double)n;
    row[SVC_RU_REWARD_SUM_BASE] = (double)m * 1e-6;
    row[SVC_RU_REWARD_MEAN_BASE] = mean_of(m, n);
    uint64_t st[PROTO_ST_COUNT], all = 0;
    for (int s = 0; s < PROTO_ST_COUNT; s++) {
        st[s] = cur->status[s] - o->status[s];
        all += st[s];
    }
    row[SVC_RU_FEEDBACK] = (double)all;
    row[SVC_RU_MATCHED] = (double)(st[PROTO_ST_MATCHED] + st[PROTO_ST_CORRECTED]);
    row[SVC_RU_LATE] = (double)(st[PROTO_ST_LATE] + st[PROTO_ST_LATE_CORRECTION]);
    row[SVC_RU_EARLY] = (double)st[PROTO_ST_EARLY];
    row[SVC_RU_DUPLICATE] = (double)st[PROTO_ST_DUPLICATE];
    row[SVC_RU_UNKNOWN_EVENT] = (double)st[PROTO_ST_UNKNOWN_EVENT];
    row[SVC_RU_REFUSED] = (double)(st[PROTO_ST_REJECTED_SIGNAL] + st[PROTO_ST_REJECTED_VALUE] +
                                   st[PROTO_ST_REJECTED_LIMIT] + st[PROTO_ST_REJECTED_RATE]);
    row[SVC_RU_DEFAULTED] = (double)(cur->defaulted - o->defaulted);
    row[SVC_RU_UNKNOWN] = (double)(cur->unknown - o->unknown);
    row[SVC_RU_DANGLING] = (double)(cur->dangling - o->dangling);
    row[SVC_RU_NOT_ACTIVATED] = (double)(cur->not_activated - o->not_activated);
    pthread_rwlock_rdlock(&p->head_lk);
    row[SVC_RU_VERSION_ONLINE] = (double)pol_portfolio_n_updates(p->pf);
    pthread_rwlock_unlock(&p->head_lk);
    row[SVC_RU_VERSION_PRODUCTION] = (double)atomic_load(&p->prod_version);
    row[SVC_RU_SERVE_PRODUCTION] = atomic_load(&p->serve) == BASE_SLOT_PRODUCTION ? 1.0 : 0.0;
    row[SVC_RU_CANARY] = (double)atomic_load(&p->canary_ppm) / 1e6;
    svc_ope_reading ope;
    svc_ope_read(&p->ope, base_mono_ns(), &ope);
    row[SVC_RU_OPE_N] = (double)ope.n;
    row[SVC_RU_OPE_ESS] = ope.ess;
    row[SVC_RU_OPE_MIN_PROPENSITY] = ope.min_propensity;
    row[SVC_RU_PENDING] = (double)js->pending;
}

/* The fields every policy's row shares: latency, rejections, the write queue. */
static void shared_fields(svc_rollup *r, const svc_lat_reading *lat, uint64_t rejected, double *row)
{
    for (uint32_t i = 0; i < 4; i++) {
        uint64_t d[SVC_LAT_BUCKETS + 1];
        uint32_t op = lat_ops[i];
        for (uint32_t k = 0; k <= SVC_LAT_BUCKETS; k++) {
            d[k] = lat->bucket[op][k] - r->lat_prev->bucket[op][k];
        }
        row[SVC_RU_LAT_DECIDE_P50 + 3 * i] = svc_lat_quantile(d, 0.50) * 1e3;
        row[SVC_RU_LAT_DECIDE_P50 + 3 * i + 1] = svc_lat_quantile(d, 0.90) * 1e3;
        row[SVC_RU_LAT_DECIDE_P50 + 3 * i + 2] = svc_lat_quantile(d, 0.99) * 1e3;
    }
    row[SVC_RU_REJECTED] = (double)(rejected - r->rejected_prev);
    svc_log_stats ls;
    svc_log_get_stats(&r->e->log, &ls);
    row[SVC_RU_QUEUE_DEPTH] = (double)ls.depth;
    row[SVC_RU_REDIS_UP] = ls.up ? 1.0 : 0.0;
}

static uint64_t rejected_now(svc_engine *e)
{
    uint64_t n = 0;
    for (int c = PROTO_E_NONE + 1; c < PROTO_E_COUNT; c++) {
        n += atomic_load(&e->rejected[c]);
    }
    return n;
}

/* Append @row to @rp's ring (under lk), dropping the oldest when full. */
static void ring_push(svc_rollup *r, ru_policy *rp, const double *row)
{
    pthread_mutex_lock(&r->lk);
    size_t at = (rp->head + rp->n) % r->keep;
    memcpy(&rp->rows[at * SVC_RU_NFIELDS], row, sizeof(double) * SVC_RU_NFIELDS);
    if (rp->n < r->keep) {
        rp->n++;
    } else {
        rp->head = (rp->head + 1) % r->keep;
    }
    pthread_mutex_unlock(&r->lk);
    if (rp->unstored < r->keep) {
        rp->unstored++;
    }
}

static bool adopt(svc_rollup *r, uint32_t i);

/* Roll up the interval ending at @t_ms: one row per policy. */
static void take(svc_rollup *r, int64_t t_ms)
{
    svc_engine *e = r->e;
    /* Policies the catalog added since: their rows start now (or where their stream is). */
    for (uint32_t n = atomic_load(&e->n_pol); r->n < n && adopt(r, r->n);) {
    }
    svc_lat_reading *lat = base_alloc_zero(1, sizeof(*lat));
    if (lat == NULL) {
        base_log(BASE_LOG_WARN, "rollup at %lld: out of memory; skipped", (long long)t_ms);
        return;
    }
    svc_lat_read(&e->lat, lat);
    uint64_t rejected = rejected_now(e);
    double row[SVC_RU_NFIELDS];
    for (uint32_t i = 0; i < r->n; i++) {
        raw cur;
        rwd_join_stats js;
        read_raw(&e->pol[i], &cur, &js);
        make_row(r, &e->pol[i], &cur, &js, t_ms, row);
        shared_fields(r, lat, rejected, row);
        ring_push(r, &r->pol[i], row);
        r->pol[i].prev = cur;
    }
    memcpy(r->lat_prev, lat, sizeof(*lat));
    base_free(lat);
    r->rejected_prev = rejected;
    r->last_t_ms = t_ms;
}

/* Append each policy's unstored rows to Redis, oldest first; stop at a failure. */
static void store_rows(svc_rollup *r)
{
    svc_engine *e = r->e;
    uint64_t now = base_mono_ns();
    if (now < r->next_store_ns) {
        return;
    }
    if (r->broken) {
        if (sto_store_reconnect(r->store) != BASE_OK) {
            r->next_store_ns = now + (uint64_t)STORE_RETRY_MS * 1000000u;
            return;
        }
        r->broken = false;
    }
    double row[SVC_RU_NFIELDS];
    for (uint32_t i = 0; i < r->n; i++) {
        ru_policy *rp = &r->pol[i];
        const char *name = e->cfg->policy[i].name;
        if (atomic_load(&e->pol[i].follower)) {
            /* The owner stores the policy's rows: one per period, whoever else serves it. */
            rp->unstored = 0;
            continue;
        }
        while (rp->unstored > 0) {
            pthread_mutex_lock(&r->lk);
            size_t at = (rp->head + rp->n - rp->unstored) % r->keep;
            memcpy(row, &rp->rows[at * SVC_RU_NFIELDS], sizeof(row));
            pthread_mutex_unlock(&r->lk);
            base_err err =
                sto_rollup_append(r->store, name, r->keep, field_names, row, SVC_RU_NFIELDS);
            if (err != rp->last_err) {
                if (err != BASE_OK) {
                    base_log_policy(BASE_LOG_WARN, name,
                                    "policy %s: cannot store its rollups (%s); %zu kept in "
                                    "memory, retried every %d ms",
                                    name, base_strerror(err), rp->unstored, STORE_RETRY_MS);
                } else {
                    base_log_policy(BASE_LOG_INFO, name, "policy %s: rollups stored again", name);
                }
                rp->last_err = err;
            }
            if (err != BASE_OK) {
                r->broken = err == BASE_EIO;
                r->next_store_ns = now + (uint64_t)STORE_RETRY_MS * 1000000u;
                return;
            }
            rp->unstored--;
        }
    }
}

static void tick(svc_rollup *r)
{
    int64_t period = (int64_t)r->e->cfg->rollup_period_ms;
    int64_t now = base_clock_now_ms(r->e->clock);
    if (now >= r->next_t_ms) {
        int64_t t = now - now % period;
        take(r, t);
        r->next_t_ms = t + period;
    }
    store_rows(r);
}

static void *rollup_main(void *arg)
{
    base_thread_name("rlf-rollup");
    svc_rollup *r = arg;
    pthread_mutex_lock(&r->lk);
    while (!r->stop) {
        struct timespec until = base_mono_deadline((uint64_t)POLL_MS * 1000000u);
        while (!r->stop && pthread_cond_timedwait(&r->cv, &r->lk, &until) == 0) {
            /* woken before the deadline: stop, or spurious */
        }
        if (r->stop) {
            break;
        }
        pthread_mutex_unlock(&r->lk);
        tick(r);
        pthread_mutex_lock(&r->lk);
    }
    pthread_mutex_unlock(&r->lk);
    return NULL;
}

/* Load @rp's ring from its stream (the newest keep entries). */
static void load(svc_rollup *r, ru_policy *rp, const char *name)
{
    size_t n = 0;
    base_err err =
        sto_rollup_read(r->store, name, field_names, SVC_RU_NFIELDS, r->keep, rp->rows, &n);
    if (err != BASE_OK) {
        base_log_policy(BASE_LOG_WARN, name,
                        "policy %s: cannot read its rollups (%s); the dashboard's history "
                        "starts now",
                        name, base_strerror(err));
        n = 0;
    }
    rp->head = 0;
    rp->n = n;
}

/*
 * Policy @i (the next one, r->n) gets its ring, loaded from its stream, and its counters'
 * baseline; then it counts (r->n = @i + 1). The rollup thread, or open before it starts.
 */
static bool adopt(svc_rollup *r, uint32_t i)
{
    svc_engine *e = r->e;
    ru_policy *rp = &r->pol[i];
    if (rp->rows == NULL) {
        rp->rows = base_alloc_array(r->keep * SVC_RU_NFIELDS, sizeof(double));
    }
    if (rp->rows == NULL) {
        return false; /* out of memory: tried again at the next rollup */
    }
    load(r, rp, e->cfg->policy[i].name);
    rwd_join_stats js;
    read_raw(&e->pol[i], &rp->prev, &js);
    pthread_mutex_lock(&r->lk);
    r->n = i + 1;
    pthread_mutex_unlock(&r->lk);
    return true;
}

static void free_rollup(svc_rollup *r)
{
    if (r == NULL) {
        return;
    }
    for (uint32_t i = 0; r->pol != NULL && i < SVC_MAX_POLICIES; i++) {
        base_free(r->pol[i].rows);
    }
    base_free(r->pol);
    base_free(r->lat_prev);
    sto_store_close(r->store);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->lk);
    base_free(r);
}

base_err svc_engine_rollup_open(svc_engine *e, const char *url, char *errbuf, size_t errlen)
{
    svc_rollup *r = base_alloc_zero(1, sizeof(*r));
    if (r == NULL) {
        return BASE_ENOMEM;
    }
    r->e = e;
    r->keep = e->cfg->rollup_keep;
    pthread_mutex_init(&r->lk, NULL);
    (void)base_cond_init_mono(&r->cv);
    base_err err = BASE_ENOMEM;
    r->pol = base_alloc_zero(SVC_MAX_POLICIES, sizeof(*r->pol));
    r->lat_prev = base_alloc_zero(1, sizeof(*r->lat_prev));
    if (r->pol == NULL || r->lat_prev == NULL) {
        goto fail;
    }
    uint32_t n_pol = atomic_load(&e->n_pol);
    for (uint32_t i = 0; i < n_pol; i++) {
        r->pol[i].rows = base_alloc_array(r->keep * SVC_RU_NFIELDS, sizeof(double));
        if (r->pol[i].rows == NULL) {
            goto fail;
        }
    }
    err = sto_store_open(url, (int)e->cfg->redis_timeout_ms, &r->store, errbuf, errlen);
    if (err != BASE_OK) {
        goto fail;
    }
    for (uint32_t i = 0; i < n_pol; i++) {
        (void)adopt(r, i); /* cannot fail: the rows are there */
    }
    svc_lat_read(&e->lat, r->lat_prev);
    r->rejected_prev = rejected_now(e);
    int64_t period = (int64_t)e->cfg->rollup_period_ms;
    r->last_t_ms = base_clock_now_ms(e->clock);
    r->next_t_ms = r->last_t_ms - r->last_t_ms % period + period;
    if (pthread_create(&r->thread, NULL, rollup_main, r) != 0) {
        snprintf(errbuf, errlen, "cannot start the rollup thread");
        err = BASE_EINTERNAL;
        goto fail;
    }
    r->started = true;
    e->rollup = r;
    return BASE_OK;
fail:
    free_rollup(r);
    return err;
}

void svc_rollup_close(svc_engine *e)
{
    svc_rollup *r = e != NULL ? e->rollup : NULL;
    if (r == NULL) {
        return;
    }
    if (r->started) {
        pthread_mutex_lock(&r->lk);
        r->stop = true;
        pthread_cond_signal(&r->cv);
        pthread_mutex_unlock(&r->lk);
        (void)pthread_join(r->thread, NULL); /* fails only for a bad thread id */
    }
    e->rollup = NULL;
    free_rollup(r);
}

base_err svc_rollup_history(svc_engine *e, uint32_t i, size_t max, double **out_rows, size_t *out_n)
{
    svc_rollup *r = e->rollup;
    if (r == NULL || i >= SVC_MAX_POLICIES) {
        return BASE_EINVAL;
    }
    ru_policy *rp = &r->pol[i];
    double *rows = NULL;
    pthread_mutex_lock(&r->lk);
    size_t n = i >= r->n ? 0 : rp->n < max ? rp->n : max; /* not adopted yet: no rows */
    if (n > 0) {
        rows = base_alloc_array(n * SVC_RU_NFIELDS, sizeof(double));
    }
    if (rows != NULL) {
        for (size_t j = 0; j < n; j++) {
            size_t at = (rp->head + rp->n - n + j) % r->keep;
            memcpy(&rows[j * SVC_RU_NFIELDS], &rp->rows[at * SVC_RU_NFIELDS],
                   sizeof(double) * SVC_RU_NFIELDS);
        }
    }
    pthread_mutex_unlock(&r->lk);
    if (n > 0 && rows == NULL) {
        return BASE_ENOMEM;
    }
    *out_rows = rows;
    *out_n = n;
    return BASE_OK;
}
