#include "service/registry.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/thread.h"
#include "policy/head.h"
#include "service/policy_rt.h"
#include "storage/store.h"

/* What the follower last did for one policy, so a failure is logged once. */
typedef struct follow_state {
    uint64_t served;    /* the production version being served */
    uint64_t failed;    /* the version whose load failed last (UINT64_MAX: none) */
    base_err last_err;  /* the registry read's last error, BASE_OK after a success */
    char last_why[256]; /* its words, to log each different failure once */
    uint32_t serve;     /* what was applied, to log changes */
    uint32_t canary_ppm;
    uint64_t online;        /* a follower (shared = on): the owner's checkpoint it serves */
    uint64_t online_failed; /* the version whose load failed last (UINT64_MAX: none) */
} follow_state;

struct svc_registry {
    const svc_config *cfg;
    svc_engine *eng;
    sto_store *store;
    follow_state *st; /* [SVC_MAX_POLICIES], the first n_init set up */
    uint32_t n_init;
    pthread_t thread;
    bool started;
    pthread_mutex_t lk;
    pthread_cond_t cv;
    bool stop; /* guarded by lk */
};

/* Load snapshot @version of @p and serve it. Return: BASE_OK or why not (logged by the caller). */
static base_err load_production(svc_registry *r, svc_prt *p, uint64_t version, char *why,
                                size_t whylen)
{
    base_snapshot *m = NULL;
    pol_head *h = NULL;
    bool found = false;
    base_err e;

    if (version == 0) {
        e = svc_prt_set_production(p, NULL, 0, "");
        snprintf(why, whylen, "the base model: %s", base_strerror(e));
        return e;
    }
    e = sto_store_model_get(r->store, p->cfg->name, version, &m, &found);
    if (e != BASE_OK) {
        char words[200];
        snprintf(why, whylen, "reading snapshot %" PRIu64 ": %s", version,
                 sto_store_strerror(r->store, e, words, sizeof(words)));
        return e;
    }
    if (!found) {
        snprintf(why, whylen, "snapshot %" PRIu64 " does not exist", version);
        return BASE_EINVAL;
    }
    if ((e = pol_head_from_snapshot(m, &h)) != BASE_OK) {
        snprintf(why, whylen, "snapshot %" PRIu64 " does not make a head (%s learner, %s): %s",
                 version, m->learner,
                 m->settings.explorer[0] != '\0' ? "settings recorded" : "no settings recorded",
                 base_strerror(e));
    } else {
        /* Shape and action list are checked under the lock a definition change swaps under. */
        e = svc_prt_set_production(p, h, version, m->actions_hash);
        if (e != BASE_OK && svc_snapshot_actions_fit(p->cfg, m, why, whylen)) {
            snprintf(why, whylen,
                     "snapshot %" PRIu64 " has dim %u, %u actions, action_dim %u; the policy %u, "
                     "%u, %u",
                     version, m->dim, m->n_actions, m->settings.action_dim, p->cfg->head.dim,
                     p->cfg->head.n_actions, p->cfg->head.action_dim);
        }
    }
    base_snapshot_free(m);
    return e;
}

/*
 * A follower (shared = on): serve the owner's checkpoint @version, the registry's "online",
 * from now on. Polled every registry_poll_ms, so a new checkpoint is served within about
 * that long after the owner stored it.
 */
static void follow_online(svc_registry *r, svc_prt *p, follow_state *fs, uint64_t version)
{
    base_snapshot *m = NULL;
    bool found = false;
    char buf[512];
    const char *why = "it does not exist";
    base_err e = sto_store_model_get(r->store, p->cfg->name, version, &m, &found);
    if (e != BASE_OK) {
        why = sto_store_strerror(r->store, e, buf, sizeof(buf));
    } else if (found) {
        buf[0] = '\0';
        e = svc_prt_follow_snapshot(p, m, buf, sizeof(buf));
        why = buf[0] != '\0' ? buf : base_strerror(e);
    }
    if (e == BASE_OK && found) {
        base_log_policy(BASE_LOG_DEBUG, p->cfg->name,
                        "policy %s: serving its owner's checkpoint %" PRIu64, p->cfg->name,
                        version);
        fs->online = version;
        fs->online_failed = UINT64_MAX;
    } else if (fs->online_failed != version) {
        base_log_policy(BASE_LOG_WARN, p->cfg->name,
                        "policy %s: its owner's checkpoint %" PRIu64
                        " cannot be served (%s); still serving %" PRIu64,
                        p->cfg->name, version, why, fs->online);
        atomic_fetch_add(&p->c.registry_errors, 1);
        fs->online_failed = version;
    }
    base_snapshot_free(m);
}

/* Read @p's registry and apply it. */
static void follow_one(svc_registry *r, svc_prt *p, follow_state *fs)
{
    const svc_policy_config *pc = p->cfg;
    sto_registry g;
    char why[256];
    base_err e = sto_registry_get(r->store, pc->name, &g);
    const char *what = sto_store_strerror(r->store, e, why, sizeof(why));

    if (e == BASE_EIO) {
        (void)sto_store_reconnect(r->store); /* BASE_EIO again next time if still away */
    }
    if (e != BASE_OK) {
        atomic_fetch_add(&p->c.registry_errors, 1); /* every failed read */
        if (e != fs->last_err || strcmp(what, fs->last_why) != 0) {
            base_log_policy(BASE_LOG_WARN, pc->name, "policy %s: cannot read the registry: %s",
                            pc->name, what);
        }
        fs->last_err = e;
        base_strlcpy(fs->last_why, what, sizeof(fs->last_why));
        return;
    }
    fs->last_err = BASE_OK;
    fs->last_why[0] = '\0';
    if (atomic_load(&p->follower) && g.online != fs->online && g.online != fs->online_failed) {
        follow_online(r, p, fs, g.online);
    }
    uint32_t serve = g.serve == STO_SERVE_ONLINE       ? BASE_SLOT_ONLINE
                     : g.serve == STO_SERVE_PRODUCTION ? BASE_SLOT_PRODUCTION
                                                       : pc->serve;
    double canary = g.canary >= 0.0 ? g.canary : pc->canary;
    uint32_t ppm = (uint32_t)llround(canary * 1e6);
    if (g.production != fs->served && g.production != fs->failed) {
        e = load_production(r, p, g.production, why, sizeof(why));
        if (e == BASE_OK) {
            base_log_policy(BASE_LOG_INFO, pc->name,
                            "policy %s: production slot now serves %s%" PRIu64 " (was %" PRIu64 ")",
                            pc->name, g.production == 0 ? "the base model, version " : "version ",
                            g.production, fs->served);
            fs->served = g.production;
            fs->failed = UINT64_MAX;
        } else {
            base_log_policy(BASE_LOG_ERROR, pc->name,
                            "policy %s: the registry names production version %" PRIu64
                            ", which cannot be served (%s); still serving %" PRIu64,
                            pc->name, g.production, why, fs->served);
            atomic_fetch_add(&p->c.registry_errors, 1);
            fs->failed = g.production;
        }
    }
    if (serve != fs->serve || ppm != fs->canary_ppm) {
        svc_prt_set_serving(p, serve, ppm);
        base_log_policy(BASE_LOG_INFO, pc->name, "policy %s: serving from %s, canary %.6g",
                        pc->name, base_slot_name(serve), (double)ppm / 1e6);
        fs->serve = serve;
        fs->canary_ppm = ppm;
    }
}

static void follow_all(svc_registry *r)
{
    uint32_t n = r->cfg->n_policies;
    for (uint32_t i = 0; i < n; i++) {
        svc_prt *p = svc_engine_policy_at(r->eng, i);
        if (p == NULL) {
            break; /* the catalog added it to the config, not yet to the engine */
        }
        if (i >= r->n_init) {
            /* A policy the catalog added at run time: its state starts as at start-up. */
            r->st[i].failed = UINT64_MAX;
            r->st[i].online_failed = UINT64_MAX;
            r->st[i].serve = p->cfg->serve;
            r->st[i].canary_ppm = (uint32_t)llround(p->cfg->canary * 1e6);
            r->n_init = i + 1;
        }
        if (!atomic_load(&p->retired)) {
            follow_one(r, p, &r->st[i]);
        }
    }
}

static void *follow_main(void *arg)
{
    base_thread_name("rlf-registry");
    svc_registry *r = arg;
    pthread_mutex_lock(&r->lk);
    while (!r->stop) {
        struct timespec until = base_mono_deadline((uint64_t)r->cfg->registry_poll_ms * 1000000u);
        while (!r->stop && pthread_cond_timedwait(&r->cv, &r->lk, &until) == 0) {
            /* woken before the deadline: stop, or spurious */
        }
        if (r->stop) {
            break;
        }
        pthread_mutex_unlock(&r->lk);
        follow_all(r);
        pthread_mutex_lock(&r->lk);
    }
    pthread_mutex_unlock(&r->lk);
    return NULL;
}

base_err svc_registry_start(const char *url, const svc_config *cfg, svc_engine *eng,
                            svc_registry **out, char *errbuf, size_t errlen)
{
    svc_registry *r = base_alloc_zero(1, sizeof(*r));
    if (r == NULL) {
        return BASE_ENOMEM;
    }
    r->cfg = cfg;
    r->eng = eng;
    pthread_mutex_init(&r->lk, NULL);
    (void)base_cond_init_mono(&r->cv);
    r->st = base_alloc_zero(SVC_MAX_POLICIES, sizeof(*r->st));
    if (r->st == NULL) {
        svc_registry_stop(r);
        return BASE_ENOMEM;
    }
    base_err e = sto_store_open(url, (int)cfg->redis_timeout_ms, &r->store, errbuf, errlen);
    if (e != BASE_OK) {
        svc_registry_stop(r);
        return e;
    }
    follow_all(r);
    if (pthread_create(&r->thread, NULL, follow_main, r) != 0) {
        snprintf(errbuf, errlen, "cannot start the registry thread");
        svc_registry_stop(r);
        return BASE_EINTERNAL;
    }
    r->started = true;
    *out = r;
    return BASE_OK;
}

void svc_registry_stop(svc_registry *r)
{
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
    sto_store_close(r->store);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->lk);
    base_free(r->st);
    base_free(r);
}
