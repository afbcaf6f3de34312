/* pthread_clockjoin_np(): a join bounded on the monotonic clock. */
#define _GNU_SOURCE
#include "service/lease.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/record.h"
#include "base/thread.h"
#include "storage/store.h"

#define LEASE_RETRY_MS 100 /* renewal retries while Redis does not answer */

struct svc_lease {
    svc_config *cfg;
    svc_lease_lost_fn on_lost; /* shared = on: a policy lost is stepped down, not a stop */
    void *on_lost_arg;
    sto_store *store; /* renewal thread only, after start */
    char owner[STO_OWNER_MAX + 1];
    pthread_t thread;
    bool started;
    pthread_mutex_t lk;
    pthread_cond_t cv;
    bool stop; /* guarded by lk */
    atomic_bool lost;
};

void svc_lease_default_owner(const svc_config *cfg, char *out, size_t size)
{
    char host[128] = "localhost";
    if (gethostname(host, sizeof(host) - 1) != 0) {
        base_strlcpy(host, "localhost", sizeof(host));
    }
    host[sizeof(host) - 1] = '\0';
    (void)snprintf(out, size, "%s:%s", host, cfg->n_urls > 0 ? cfg->urls[0] : ""); /* may cut */
}

/* Whether svc_lease_stop() was called: the engine may be going away, no step-down then. */
static bool stopping(svc_lease *l)
{
    pthread_mutex_lock(&l->lk);
    bool stop = l->stop;
    pthread_mutex_unlock(&l->lk);
    return stop;
}

/*
 * Take (@restart: at the start) or renew every policy's lease. *out_other is set when one is
 * held by someone else.
 */
static base_err take_all(svc_lease *l, bool restart, bool *out_other, char *errbuf, size_t errlen)
{
    *out_other = false;
    pthread_mutex_lock(&l->lk);
    svc_lease_lost_fn on_lost = l->on_lost;
    void *on_lost_arg = l->on_lost_arg;
    pthread_mutex_unlock(&l->lk);
    /*
     * Every lease each round, also after one failed: on a Redis Cluster a master that is down
     * holds only its own policies' leases, and the others' must not run out meanwhile.
     */
    base_err first = BASE_OK;
    for (uint32_t i = 0; i < l->cfg->n_policies; i++) {
        if (svc_config_follows(l->cfg, i)) {
            continue; /* another instance owns it; this one follows it (shared = on) */
        }
        const char *policy = l->cfg->policy[i].name;
        sto_lease_take t = {.restart = restart};
        base_err e = sto_lease_acquire(l->store, policy, l->owner, l->cfg->lease_ms, &t);
        bool held = t.held;
        const char *holder = t.holder;
        int64_t left_ms = t.left_ms;
        if (e == BASE_OK && t.from_twin) {
            base_log_policy(BASE_LOG_WARN, policy,
                            "policy %s: took its lease over from another process with this "
                            "instance_id (\"%s\"): a restart after a crash, or a second process "
                            "given the same id, which stops at its next renewal",
                            policy, l->owner);
        }
        if (e != BASE_OK) {
            if (first == BASE_OK) {
                char why[200];
                snprintf(errbuf, errlen, "policy %s: taking its lease: %s", policy,
                         sto_store_strerror(l->store, e, why, sizeof(why)));
                first = e;
            }
            if (e == BASE_EIO && (restart || !sto_store_is_cluster(l->store))) {
                return e; /* the one Redis is away (or the start fails as a whole) */
            }
            continue; /* a cluster: the next policy's master may answer */
        }
        if (!held && l->cfg->shared && on_lost != NULL && !stopping(l)) {
            /* shared = on: follow it from now on (the callback steps the runtime down). */
            atomic_store(&l->cfg->following[i].on, true);
            base_log_policy(BASE_LOG_WARN, policy,
                            "lost ownership of policy %s: instance \"%s\" holds its lease "
                            "(for another %" PRId64 " ms); following it from now on",
                            policy, holder, left_ms);
            on_lost(on_lost_arg, i, holder);
            continue;
        }
        if (!held) {
            *out_other = true;
            snprintf(errbuf, errlen,
                     "policy %s is owned by rlfeedd instance \"%s\" for another %" PRId64
                     " ms: only one instance may write a policy to a Redis%s",
                     policy, holder, left_ms,
                     strcmp(holder, l->owner) == 0
                         ? " (another rlfeedd process started with this instance_id took it "
                           "over: give each process its own instance_id)"
                         : "");
            return BASE_EINVAL;
        }
    }
    return first;
}

/* Hand the policies over at once at a stop; a kill -9 leaves them to the TTL instead. */
static void release_all(svc_lease *l)
{
    for (uint32_t i = 0; i < l->cfg->n_policies && !atomic_load(&l->lost); i++) {
        if (svc_config_follows(l->cfg, i)) {
            continue;
        }
        (void)sto_lease_release(l->store, l->cfg->policy[i].name, l->owner); /* best effort */
    }
}

static void *renew_main(void *arg)
{
    base_thread_name("rlf-lease");
    svc_lease *l = arg;
    bool down = false;
    pthread_mutex_lock(&l->lk);
    while (!l->stop) {
        /*
         * Every lease_ms / 3; after a failed renewal (Redis away, a master failing over)
         * every LEASE_RETRY_MS, so a lease outlives an outage shorter than about
         * lease_ms - lease_ms / 3 (docs/operations.md, "Redis Cluster").
         */
        uint32_t wait_ms = l->cfg->lease_ms / 3;
        wait_ms = down && wait_ms > LEASE_RETRY_MS ? LEASE_RETRY_MS : wait_ms;
        struct timespec until = base_mono_deadline((uint64_t)wait_ms * 1000000u);
        (void)pthread_cond_timedwait(&l->cv, &l->lk, &until); /* a timeout is the normal case */
        if (l->stop) {
            break;
        }
        pthread_mutex_unlock(&l->lk);
        char err[512] = "";
        bool other = false;
        base_err e = take_all(l, false, &other, err, sizeof(err));
        if (e == BASE_EIO) {
            (void)sto_store_reconnect(l->store); /* the next round uses it, or fails again */
        }
        if (other) {
            base_log(BASE_LOG_ERROR, "lost ownership: %s; stopping", err);
            atomic_store(&l->lost, true);
            kill(getpid(), SIGTERM);
        } else if (e != BASE_OK && !down) {
            base_log(BASE_LOG_WARN, "cannot renew the policy leases (%s); retrying", err);
        } else if (e == BASE_OK && down) {
            base_log(BASE_LOG_INFO, "policy leases renewed again");
        }
        down = e != BASE_OK;
        pthread_mutex_lock(&l->lk);
        if (other) {
            break;
        }
    }
    bool stopping = l->stop;
    pthread_mutex_unlock(&l->lk);
    if (stopping) {
        release_all(l);
    }
    return NULL;
}

base_err svc_lease_start(const char *url, svc_config *cfg, const char *owner, svc_lease **out,
                         char *errbuf, size_t errlen)
{
    base_err e = BASE_ENOMEM;
    svc_lease *l = base_alloc_zero(1, sizeof(*l));
    if (l == NULL) {
        goto fail;
    }
    l->cfg = cfg;
    pthread_mutex_init(&l->lk, NULL);
    (void)base_cond_init_mono(&l->cv);
    if (!base_strlcpy(l->owner, owner, sizeof(l->owner))) {
        e = BASE_EINVAL;
        snprintf(errbuf, errlen, "instance_id is longer than %d bytes", STO_OWNER_MAX);
        goto fail;
    }
    e = sto_store_open(url, (int)cfg->redis_timeout_ms, &l->store, errbuf, errlen);
    if (e != BASE_OK) {
        goto fail;
    }
    bool other = false;
    e = take_all(l, true, &other, errbuf, errlen);
    if (e != BASE_OK) {
        goto fail;
    }
    if (pthread_create(&l->thread, NULL, renew_main, l) != 0) {
        e = BASE_ENOMEM;
        snprintf(errbuf, errlen, "cannot start the lease thread");
        goto fail;
    }
    l->started = true;
    *out = l;
    return BASE_OK;
fail:
    if (l != NULL && l->store != NULL && e != BASE_EIO) {
        release_all(l); /* a refused start hands back what it took, not after lease_ms */
    }
    (void)svc_lease_stop(l, 0, NULL);
    return e;
}

bool svc_lease_stand_by(svc_config *cfg, svc_policy_config *pc, const char *holder, int64_t left_ms)
{
    uint32_t k = atomic_load(&cfg->n_waiting);
    if (cfg->waiting == NULL || k >= SVC_MAX_POLICIES) {
        return false;
    }
    svc_waiting *w = &cfg->waiting[k];
    w->cfg = *pc;
    base_strlcpy(w->holder, holder, sizeof(w->holder));
    atomic_store(&w->taken, false);
    atomic_store(&cfg->n_waiting, k + 1);
    base_log_policy(BASE_LOG_INFO, w->cfg.name,
                    "policy %s is owned by instance \"%s\" (its lease runs another %" PRId64
                    " ms): standing by, to take it over if that lease runs out",
                    w->cfg.name, holder, left_ms);
    return true;
}

base_err svc_lease_split(const char *url, svc_config *cfg, const char *owner, char *errbuf,
                         size_t errlen)
{
    sto_store *s = NULL;
    base_err e = sto_store_open(url, (int)cfg->redis_timeout_ms, &s, errbuf, errlen);
    if (e != BASE_OK) {
        return e;
    }
    cfg->waiting = base_alloc_zero(SVC_MAX_POLICIES, sizeof(*cfg->waiting));
    if (cfg->shared && cfg->following == NULL) {
        cfg->following = base_alloc_zero(SVC_MAX_POLICIES, sizeof(*cfg->following));
    }
    if (cfg->waiting == NULL || (cfg->shared && cfg->following == NULL)) {
        sto_store_close(s);
        return BASE_ENOMEM;
    }
    uint32_t kept = 0, n = cfg->n_policies;
    for (uint32_t i = 0; i < n; i++) {
        sto_lease_take t = {.restart = true};
        e = sto_lease_acquire(s, cfg->policy[i].name, owner, cfg->lease_ms, &t);
        bool held = t.held;
        const char *holder = t.holder;
        int64_t left_ms = t.left_ms;
        if (e != BASE_OK) {
            char why[200];
            snprintf(errbuf, errlen, "policy %s: taking its lease: %s", cfg->policy[i].name,
                     sto_store_strerror(s, e, why, sizeof(why)));
            /* Keep the rest where they were: the caller stops. */
            for (uint32_t j = i; j < n; j++) {
                cfg->policy[kept++] = cfg->policy[j];
            }
            break;
        }
        bool follows_shared = t.holder_shared; /* the owner takes what followers forward */
        if (!held && cfg->shared && !follows_shared) {
            base_log_policy(BASE_LOG_WARN, cfg->policy[i].name,
                            "policy %s is owned by instance \"%s\", which does not run shared = "
                            "on (it would never take what this instance forwarded): standing "
                            "by instead of following",
                            cfg->policy[i].name, holder);
        }
        if (held || (cfg->shared && follows_shared)) {
            if (!held) {
                /* shared = on: served here too, as a follower (docs/operations.md). */
                atomic_store(&cfg->following[kept].on, true);
                base_strlcpy(cfg->following[kept].holder, holder,
                             sizeof(cfg->following[kept].holder));
                base_log_policy(BASE_LOG_INFO, cfg->policy[i].name,
                                "policy %s is owned by instance \"%s\" (its lease runs another "
                                "%" PRId64 " ms): following it, to take it over if that lease "
                                "runs out",
                                cfg->policy[i].name, holder, left_ms);
            }
            cfg->policy[kept++] = cfg->policy[i];
            continue;
        }
        (void)svc_lease_stand_by(cfg, &cfg->policy[i], holder, left_ms); /* room for all */
    }
    for (uint32_t i = kept; i < n; i++) {
        memset(&cfg->policy[i], 0, sizeof(cfg->policy[i]));
    }
    cfg->n_policies = kept;
    sto_store_close(s);
    return e;
}

void svc_lease_on_lost(svc_lease *l, svc_lease_lost_fn fn, void *arg)
{
    pthread_mutex_lock(&l->lk);
    l->on_lost = fn;
    l->on_lost_arg = arg;
    pthread_mutex_unlock(&l->lk);
}

bool svc_lease_lost(const svc_lease *l)
{
    return l != NULL && atomic_load(&l->lost);
}

bool svc_lease_stop(svc_lease *l, uint64_t deadline_ns, bool *out_lost)
{
    bool lost_unused = false;
    out_lost = out_lost != NULL ? out_lost : &lost_unused;
    *out_lost = false;
    if (l == NULL) {
        return true;
    }
    if (l->started) {
        pthread_mutex_lock(&l->lk);
        l->stop = true;
        pthread_cond_signal(&l->cv);
        pthread_mutex_unlock(&l->lk);
        uint64_t now = base_mono_ns();
        struct timespec until = base_mono_deadline(deadline_ns > now ? deadline_ns - now : 0);
        int rc = deadline_ns == 0 ? pthread_join(l->thread, NULL)
                                  : pthread_clockjoin_np(l->thread, NULL, CLOCK_MONOTONIC, &until);
        if (rc != 0) {
            base_log(BASE_LOG_WARN,
                     "shutdown: redis did not answer the lease renewal or release in time; the "
                     "policies' leases expire by themselves within lease_ms (%u ms)",
                     l->cfg->lease_ms);
            *out_lost = atomic_load(&l->lost);
            return false; /* the thread still uses @l: both are left to the process exit */
        }
    }
    *out_lost = atomic_load(&l->lost); /* the thread has ended: final */
    sto_store_close(l->store);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->lk);
    base_free(l);
    return true;
}
