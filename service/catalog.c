#include "service/catalog.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/thread.h"
#include "service/catalog_impl.h"
#include "service/engine_impl.h"
#include "service/lease.h"
#include "storage/store.h"

#define FULL_REREAD_MS 5000 /* reread every definition this often, announced or not */

struct svc_catalog {
    svc_config *cfg;
    svc_engine *eng;
    sto_store *store; /* follower thread only */
    char owner[STO_OWNER_MAX + 1];
    uint64_t seq;
    uint64_t last_full_ns;
    uint64_t applied[SVC_MAX_POLICIES]; /* the definition version seen per slot */
    /*
     * Per policy stood by for (cfg->waiting[k], standby = on): a newer definition from the
     * catalog than the one read at start (svc_catalog_new_cfg(); NULL: none) and its
     * version (whether the catalog retired it: waiting[k].retired). A takeover serves what
     * is in force now.
     */
    svc_policy_config *newer[SVC_MAX_POLICIES];
    uint64_t newer_version[SVC_MAX_POLICIES];
    pthread_mutex_t lk;
    pthread_cond_t cv;
    bool stop; /* guarded by lk */
    pthread_t thread;
    bool started;
};

/* ---- definitions ----------------------------------------------------------------------- */

/* The policy @text defines, into *out (owned arrays moved out of the parse). */
static base_err parse_def(const char *text, svc_policy_config *out, char *errbuf, size_t errlen)
{
    svc_config *tmp = base_alloc_zero(1, sizeof(*tmp));
    if (tmp == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return BASE_ENOMEM;
    }
    base_err e = svc_config_load_string(text, tmp, errbuf, errlen);
    if (e == BASE_OK && tmp->n_policies != 1) {
        snprintf(errbuf, errlen, "%u policies in one definition", tmp->n_policies);
        svc_config_fini(tmp);
        e = BASE_EINVAL;
    } else if (e == BASE_OK) {
        *out = tmp->policy[0];
        memset(&tmp->policy[0], 0, sizeof(tmp->policy[0])); /* its arrays are *out's now */
        svc_config_fini(tmp);
    }
    base_free(tmp);
    return e;
}

static int slot_of(const svc_config *cfg, const char *name)
{
    uint32_t n = cfg->n_policies;
    for (uint32_t i = 0; i < n; i++) {
        if (strcmp(cfg->policy[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

base_err svc_catalog_merge(svc_config *cfg, const char *url, char *errbuf, size_t errlen)
{
    sto_store *s = NULL;
    char(*names)[BASE_NAME_MAX + 1] = NULL;
    size_t n = 0;
    base_err e = sto_store_open(url, (int)cfg->redis_timeout_ms, &s, errbuf, errlen);
    if (e == BASE_OK) {
        e = sto_catalog_list(s, &names, &n);
        if (e != BASE_OK) {
            char words[200];
            snprintf(errbuf, errlen, "reading the policy catalog: %s",
                     sto_store_strerror(s, e, words, sizeof(words)));
        }
    }
    for (size_t k = 0; e == BASE_OK && k < n; k++) {
        sto_policy_def d;
        bool found = false;
        e = sto_catalog_get(s, names[k], 0, &d, &found);
        if (e != BASE_OK || !found) {
            if (e != BASE_OK) {
                char words[200];
                snprintf(errbuf, errlen, "policy %s in the catalog: %s", names[k],
                         sto_store_strerror(s, e, words, sizeof(words)));
            }
            continue;
        }
        int i = slot_of(cfg, names[k]);
        char why[512] = "";
        svc_policy_config pc;
        if (d.retired) {
            if (i >= 0) {
                cfg->policy[i].retired = true;
                cfg->policy[i].def_version = d.version;
                base_log_policy(BASE_LOG_WARN, names[k],
                                "policy %s: retired in the policy catalog (version %" PRIu64
                                " by %s): not served, though the config file defines it",
                                names[k], d.version, d.actor);
            }
        } else if (parse_def(d.text, &pc, why, sizeof(why)) != BASE_OK) {
            base_log_policy(BASE_LOG_ERROR, names[k],
                            "policy %s: catalog version %" PRIu64 " does not load (%s); %s",
                            names[k], d.version, why,
                            i >= 0 ? "serving the config file's section" : "not served");
        } else if (i < 0 && cfg->n_policies == SVC_MAX_POLICIES) {
            base_log_policy(BASE_LOG_ERROR, names[k],
                            "policy %s: more than %d policies; not served", names[k],
                            SVC_MAX_POLICIES);
            svc_policy_config_fini(&pc);
        } else {
            pc.def_version = d.version;
            if (i >= 0) {
                svc_policy_config_fini(&cfg->policy[i]);
                cfg->policy[i] = pc;
            } else {
                cfg->policy[cfg->n_policies] = pc;
                cfg->n_policies = cfg->n_policies + 1;
            }
            base_log_policy(BASE_LOG_INFO, names[k],
                            "policy %s: definition version %" PRIu64 " from the policy catalog "
                            "(by %s)%s",
                            names[k], d.version, d.actor,
                            i >= 0 ? ", in place of the config file's section" : "");
        }
        sto_policy_def_fini(&d);
    }
    base_free(names);
    sto_store_close(s);
    return e;
}

/* ---- the follower thread ---------------------------------------------------------------- */

static void post_change(svc_engine *e, svc_prt *p, svc_policy_config *cfg)
{
    struct svc_change *c = base_alloc_zero(1, sizeof(*c));
    if (c == NULL) {
        svc_catalog_free_cfg(cfg);
        return;
    }
    c->p = p;
    c->cfg = cfg;
    pthread_mutex_lock(&e->change_lk);
    struct svc_change **t = &e->changes;
    while (*t != NULL) {
        t = &(*t)->next;
    }
    *t = c;
    pthread_mutex_unlock(&e->change_lk);
}

/*
 * A policy this instance does not serve yet (one only the catalog defines, or one it stood
 * by for): its lease, its runtime recovered from its checkpoint and streams, then served.
 * @version is its definition version, @origin says where it comes from (for the log), @w
 * the entry stood by for (NULL: new in the catalog, whose refusals are logged and which is
 * stood by for when another holds its lease). False if its lease could not be had: @pc is
 * left to the caller (try again later); else @pc was taken (moved into the config, or freed).
 */
static bool create(svc_catalog *c, svc_policy_config *pc, uint64_t version, const char *origin,
                   svc_waiting *w)
{
    bool loud = w == NULL;
    svc_config *cfg = c->cfg;
    svc_engine *e = c->eng;
    uint32_t i = cfg->n_policies;
    char why[512] = "";
    if (i >= SVC_MAX_POLICIES || i != e->n_pol) {
        base_log_policy(BASE_LOG_ERROR, pc->name, "policy %s: more than %d policies; not served",
                        pc->name, SVC_MAX_POLICIES);
        svc_policy_config_fini(pc);
        return true;
    }
    sto_lease_take t = {.restart = false};
    base_err err = sto_lease_acquire(c->store, pc->name, c->owner, cfg->lease_ms, &t);
    bool held = t.held;
    const char *holder = t.holder;
    /*
     * shared = on: one another instance owns is served here too, as its follower, if that
     * owner takes what followers forward (it runs shared = on too).
     */
    bool follow =
        err == BASE_OK && !held && cfg->shared && cfg->following != NULL && t.holder_shared;
    if (err == BASE_OK && !held && cfg->shared && !t.holder_shared && loud) {
        base_log_policy(BASE_LOG_WARN, pc->name,
                        "policy %s is owned by instance \"%s\", which does not run shared = on "
                        "(it would never take what this instance forwarded): not following it",
                        pc->name, holder);
    }
    if (err == BASE_OK && !held && !follow && loud) {
        /* Created in the catalog, another's (standby or shared = on): as at start. */
        pc->def_version = version;
        if (svc_lease_stand_by(cfg, pc, holder, t.left_ms)) {
            return true;
        }
    }
    if (err == BASE_OK && !held && !follow && w != NULL && svc_waiting_set_holder(w, holder)) {
        base_log_policy(BASE_LOG_INFO, pc->name,
                        "policy %s is owned by instance \"%s\" now: standing by for it", pc->name,
                        holder);
    }
    if (err != BASE_OK || (!held && !follow)) {
        if (loud) {
            char words[200];
            base_log_policy(BASE_LOG_WARN, pc->name,
                            "policy %s: cannot take its lease (%s%s); trying again", pc->name,
                            err != BASE_OK ? sto_store_strerror(c->store, err, words, sizeof(words))
                                           : "held by ",
                            holder);
        }
        if (err == BASE_EIO) {
            (void)sto_store_reconnect(c->store);
        }
        c->applied[i] = 0;
        return false;
    }
    pc->def_version = version;
    cfg->policy[i] = *pc; /* not yet covered by n_policies: no other thread reads it */
    svc_prt *p = &e->pol[i];
    err = svc_prt_init(p, e, &cfg->policy[i], why, sizeof(why));
    if (err == BASE_OK && follow) {
        base_snapshot *m = NULL;
        bool found = false;
        atomic_store(&p->follower, true);
        base_strlcpy(p->holder, holder, sizeof(p->holder));
        err = sto_store_model_get_online(c->store, pc->name, &m, &found);
        if (err == BASE_OK && found) {
            err = svc_prt_follow_snapshot(p, m, NULL, 0);
        }
        base_snapshot_free(m);
        if (err != BASE_OK) {
            char words[200];
            snprintf(why, sizeof(why), "loading its owner's checkpoint: %s",
                     sto_store_strerror(c->store, err, words, sizeof(words)));
        }
    } else if (err == BASE_OK) {
        svc_log_reader reader = svc_log_reader_of_store(c->store);
        err = svc_prt_restore(p, &reader, true, NULL, NULL, why, sizeof(why));
    }
    if (err != BASE_OK) {
        base_log_policy(BASE_LOG_ERROR, pc->name,
                        "policy %s: definition version %" PRIu64 " cannot be served (%s)", pc->name,
                        version, why);
        svc_prt_fini(p);
        memset(p, 0, sizeof(*p));
        svc_policy_config_fini(&cfg->policy[i]);
        memset(&cfg->policy[i], 0, sizeof(cfg->policy[i]));
        return true;
    }
    if (follow) {
        atomic_store(&cfg->following[i].on, true); /* before the count: not renewed here */
    }
    e->n_pol = i + 1;
    cfg->n_policies = i + 1;
    c->applied[i] = version;
    base_log_policy(BASE_LOG_INFO, cfg->policy[i].name, "policy %s: %s; served from now on%s",
                    cfg->policy[i].name, origin,
                    follow ? " as a follower (another instance owns it)" : "");
    return true;
}

/*
 * standby = on: try to take over each policy this instance stands by for. One the catalog
 * path created meanwhile is done with.
 */
static void take_over(svc_catalog *c)
{
    svc_config *cfg = c->cfg;
    for (uint32_t k = 0; k < cfg->n_waiting; k++) {
        svc_waiting *w = &cfg->waiting[k];
        if (atomic_load(&w->taken)) {
            continue;
        }
        if (slot_of(cfg, w->cfg.name) >= 0) {
            svc_policy_config_fini(&w->cfg);
            atomic_store(&w->taken, true);
            continue;
        }
        if (atomic_load(&w->retired)) {
            continue; /* retired in the catalog meanwhile: not served */
        }
        char origin[SVC_URL_MAX + 96], holder[SVC_URL_MAX];
        svc_waiting_holder(w, holder, sizeof(holder));
        snprintf(origin, sizeof(origin),
                 "taken over from instance \"%s\" (its lease was released or ran out)", holder);
        /* The definition in force: the catalog's newest, else the one read at start. */
        svc_policy_config *newer = k < SVC_MAX_POLICIES ? c->newer[k] : NULL;
        svc_policy_config pc = newer != NULL ? *newer : w->cfg;
        if (create(c, &pc, pc.def_version, origin, w)) {
            if (newer != NULL) {
                /* Its arrays now belong to policy[] (or are freed); the start's are unused. */
                base_free((char *)newer - offsetof(struct svc_kept, cfg));
                c->newer[k] = NULL;
                svc_policy_config_fini(&w->cfg); /* arrays only: others read just its name */
            }
            atomic_store(&w->taken, true); /* its arrays now belong to policy[] (or are freed) */
        }
    }
}

/*
 * shared = on: take over policy @i, which this instance follows, now that its lease is
 * ours: rebuild it from the checkpoint and the streams in a scratch runtime, as a start-up
 * would, and swap that in while its requests wait at the gate. From then on it is owned
 * here: joined, learned, checkpointed, its inbox consumed. False (the lease given back, the
 * policy still followed) if it cannot be rebuilt now.
 */
static bool promote(svc_catalog *c, uint32_t i, const char *from)
{
    svc_engine *e = c->eng;
    svc_prt *p = &e->pol[i];
    svc_prt tmp;
    char why[512] = "";
    memset(&tmp, 0, sizeof(tmp));
    const svc_policy_config *cfg = p->cfg; /* what tmp is built for */
    atomic_store(&p->step_down, false);
    atomic_store(&c->cfg->following[i].on, false); /* the lease thread renews it from now on */
    base_err err = svc_prt_init(&tmp, e, cfg, why, sizeof(why));
    if (err == BASE_OK) {
        svc_log_reader reader = svc_log_reader_of_store(c->store);
        err = svc_prt_restore(&tmp, &reader, p->cfg->def_version > 0, NULL, NULL, why, sizeof(why));
    }
    if (err != BASE_OK) {
        atomic_store(&c->cfg->following[i].on, true);
        (void)sto_lease_release(c->store, p->cfg->name, c->owner);
        base_log_policy(BASE_LOG_ERROR, p->cfg->name,
                        "policy %s: cannot take it over from instance \"%s\" (%s); still "
                        "following it",
                        p->cfg->name, from, why);
        svc_prt_fini(&tmp);
        return false;
    }
    char tails[3][BASE_STREAM_ID_MAX + 1];
    svc_prt_read_tails(&tmp, tails);
    pthread_rwlock_wrlock(&p->gate);
    if (p->cfg != cfg) {
        /* Redefined meanwhile (the learner applied it to the follower): build it again. */
        pthread_rwlock_unlock(&p->gate);
        atomic_store(&c->cfg->following[i].on, true);
        (void)sto_lease_release(c->store, p->cfg->name, c->owner);
        svc_prt_fini(&tmp);
        return false;
    }
    pthread_rwlock_wrlock(&p->head_lk);
    p->head_gen++;
    pthread_rwlock_wrlock(&p->prod_lk);
    pthread_mutex_lock(&p->join_lk);
    svc_catalog_swap_state(p, &tmp);
    for (int k = 0; k < 3; k++) {
        svc_prt_set_tail(p, (sto_kind)k, tails[k]);
    }
    atomic_store(&p->fenced, false);   /* owned here again */
    atomic_store(&p->follower, false); /* last: the learner and the inbox thread take it now */
    uint64_t next_lsn = p->next_lsn;   /* for the log line: join_lk guards it */
    pthread_mutex_unlock(&p->join_lk);
    pthread_rwlock_unlock(&p->prod_lk);
    pthread_rwlock_unlock(&p->head_lk);
    pthread_rwlock_unlock(&p->gate);
    svc_prt_fini(&tmp);
    if (atomic_load(&c->cfg->following[i].on)) {
        /* The lease thread found the lease taken while this ran: step down again. */
        atomic_store(&p->step_down, true);
    }
    base_log_policy(
        BASE_LOG_INFO, p->cfg->name,
        "policy %s: taken over from instance \"%s\" (its lease was released or ran out); model "
        "version %" PRIu64 ", next lsn %" PRIu64 "; owned here from now on",
        p->cfg->name, from, (uint64_t)atomic_load(&p->n_updates), next_lsn);
    return true;
}

/* shared = on: try to take over each policy this instance follows; note who owns the rest. */
static void take_over_followed(svc_catalog *c)
{
    svc_engine *e = c->eng;
    uint32_t n = atomic_load(&e->n_pol);
    for (uint32_t i = 0; i < n && c->cfg->following != NULL; i++) {
        svc_prt *p = &e->pol[i];
        if (!atomic_load(&p->follower) || atomic_load(&p->retired)) {
            continue;
        }
        char was[STO_OWNER_MAX + 1];
        sto_lease_take t = {.restart = false};
        base_err err = sto_lease_acquire(c->store, p->cfg->name, c->owner, c->cfg->lease_ms, &t);
        bool held = t.held;
        const char *holder = t.holder;
        if (err == BASE_EIO) {
            (void)sto_store_reconnect(c->store);
        }
        if (err != BASE_OK) {
            continue;
        }
        pthread_mutex_lock(&p->tail_lk);
        memcpy(was, p->holder, sizeof(was));
        if (!held) {
            base_strlcpy(p->holder, holder, sizeof(p->holder));
        }
        pthread_mutex_unlock(&p->tail_lk);
        bool unshared = !held && !t.holder_shared;
        if (atomic_exchange(&p->owner_unshared, unshared) != unshared && !held) {
            base_log_policy(unshared ? BASE_LOG_WARN : BASE_LOG_INFO, p->cfg->name,
                            unshared ? "policy %s: its owner, instance \"%s\", does not run "
                                       "shared = on: requests for it are refused unavailable "
                                       "until an owner that does holds it"
                                     : "policy %s: its owner, instance \"%s\", runs shared = "
                                       "on: following it again",
                            p->cfg->name, holder);
        }
        if (held) {
            (void)promote(c, i, was[0] != '\0' ? was : "?");
        }
    }
}

/* The index in cfg->waiting of the policy @name this instance stands by for; -1 if none. */
static int waiting_index(const svc_config *cfg, const char *name)
{
    for (uint32_t k = 0; k < cfg->n_waiting && k < SVC_MAX_POLICIES; k++) {
        if (!atomic_load(&cfg->waiting[k].taken) && strcmp(cfg->waiting[k].cfg.name, name) == 0) {
            return (int)k;
        }
    }
    return -1;
}

/*
 * The catalog's definition @d of a policy this instance stands by for (another owns it and
 * applies it): kept for the takeover, or the policy marked retired (no takeover).
 */
static void stood_by(svc_catalog *c, uint32_t k, const sto_policy_def *d)
{
    if (d->version <= c->newer_version[k] || d->version <= c->cfg->waiting[k].cfg.def_version) {
        return;
    }
    c->newer_version[k] = d->version;
    svc_waiting *w = &c->cfg->waiting[k];
    if (atomic_exchange(&w->retired, d->retired) != d->retired) {
        base_log_policy(BASE_LOG_INFO, w->cfg.name,
                        d->retired ? "policy %s: retired by %s (catalog version %" PRIu64
                                     "): no longer stood by for"
                                   : "policy %s: created again by %s (catalog version %" PRIu64
                                     "): standing by for it",
                        w->cfg.name, d->actor, d->version);
    }
    svc_catalog_free_cfg(c->newer[k]);
    c->newer[k] = NULL;
    if (d->retired) {
        return;
    }
    char why[512] = "";
    svc_policy_config *pc = svc_catalog_new_cfg();
    if (pc != NULL && parse_def(d->text, pc, why, sizeof(why)) == BASE_OK) {
        pc->def_version = d->version;
        c->newer[k] = pc;
    } else {
        if (pc != NULL) {
            const char *name = c->cfg->waiting[k].cfg.name;
            base_log_policy(BASE_LOG_ERROR, name,
                            "policy %s: catalog version %" PRIu64 " does not load (%s); ignored",
                            name, d->version, why);
        }
        svc_catalog_free_cfg(pc);
    }
}

/* One definition from the catalog, against what this instance serves. */
static void follow_one(svc_catalog *c, const char *name)
{
    sto_policy_def d;
    bool found = false;
    base_err err = sto_catalog_get(c->store, name, 0, &d, &found);
    if (err != BASE_OK || !found) {
        if (err == BASE_EIO) {
            (void)sto_store_reconnect(c->store);
        }
        return;
    }
    int i = slot_of(c->cfg, name);
    if (i >= 0 && d.version <= c->applied[i]) {
        sto_policy_def_fini(&d);
        return;
    }
    int w = i < 0 ? waiting_index(c->cfg, name) : -1;
    if (w >= 0) {
        stood_by(c, (uint32_t)w, &d);
        sto_policy_def_fini(&d);
        return;
    }
    svc_prt *p = i >= 0 ? svc_engine_policy_at(c->eng, (uint32_t)i) : NULL;
    char why[512] = "";
    if (d.retired) {
        if (p != NULL && !atomic_exchange(&p->retired, true)) {
            base_log_policy(BASE_LOG_INFO, name,
                            "policy %s: retired by %s (catalog version %" PRIu64
                            "): no longer served",
                            name, d.actor, d.version);
        }
        if (i >= 0) {
            c->applied[i] = d.version;
        }
        sto_policy_def_fini(&d);
        return;
    }
    svc_policy_config *pc = svc_catalog_new_cfg();
    if (pc == NULL) {
        sto_policy_def_fini(&d);
        return;
    }
    if (parse_def(d.text, pc, why, sizeof(why)) != BASE_OK) {
        base_log_policy(BASE_LOG_ERROR, name,
                        "policy %s: catalog version %" PRIu64 " does not load (%s); ignored", name,
                        d.version, why);
        svc_catalog_free_cfg(pc);
        if (i >= 0) {
            c->applied[i] = d.version;
        }
    } else if (p == NULL) {
        char origin[sizeof(d.actor) + 96];
        snprintf(origin, sizeof(origin),
                 "created from the policy catalog, version %" PRIu64 " by %s", d.version, d.actor);
        if (!create(c, pc, d.version, origin, NULL)) {
            svc_policy_config_fini(pc); /* tried again at the next full read */
        }
        base_free((char *)pc - offsetof(struct svc_kept, cfg));
    } else {
        pc->def_version = d.version;
        c->applied[i] = d.version;
        post_change(c->eng, p, pc);
    }
    sto_policy_def_fini(&d);
}

static void follow(svc_catalog *c)
{
    uint64_t seq = 0;
    uint64_t now = base_mono_ns();
    bool full = now - c->last_full_ns >= (uint64_t)FULL_REREAD_MS * 1000000u;
    base_err err = sto_catalog_seq(c->store, &seq);
    if (err == BASE_EIO) {
        (void)sto_store_reconnect(c->store);
    }
    if (err != BASE_OK || (!full && seq == c->seq)) {
        return;
    }
    char(*names)[BASE_NAME_MAX + 1] = NULL;
    size_t n = 0;
    if (sto_catalog_list(c->store, &names, &n) != BASE_OK) {
        return;
    }
    for (size_t k = 0; k < n; k++) {
        follow_one(c, names[k]);
    }
    base_free(names);
    c->seq = seq;
    c->last_full_ns = now;
}

static void *follow_main(void *arg)
{
    base_thread_name("rlf-catalog");
    svc_catalog *c = arg;
    pthread_mutex_lock(&c->lk);
    while (!c->stop) {
        struct timespec until = base_mono_deadline((uint64_t)c->cfg->registry_poll_ms * 1000000u);
        while (!c->stop && pthread_cond_timedwait(&c->cv, &c->lk, &until) == 0) {
            /* woken before the deadline: stop, or spurious */
        }
        if (c->stop) {
            break;
        }
        pthread_mutex_unlock(&c->lk);
        follow(c);
        take_over(c);
        take_over_followed(c);
        pthread_mutex_lock(&c->lk);
    }
    pthread_mutex_unlock(&c->lk);
    return NULL;
}

base_err svc_catalog_start(const char *url, svc_config *cfg, svc_engine *eng, const char *owner,
                           svc_catalog **out, char *errbuf, size_t errlen)
{
    svc_catalog *c = base_alloc_zero(1, sizeof(*c));
    if (c == NULL) {
        return BASE_ENOMEM;
    }
    c->cfg = cfg;
    c->eng = eng;
    (void)base_strlcpy(c->owner, owner, sizeof(c->owner));
    for (uint32_t i = 0; i < cfg->n_policies; i++) {
        c->applied[i] = cfg->policy[i].def_version;
    }
    pthread_mutex_init(&c->lk, NULL);
    (void)base_cond_init_mono(&c->cv);
    base_err e = sto_store_open(url, (int)cfg->redis_timeout_ms, &c->store, errbuf, errlen);
    if (e == BASE_OK) {
        e = sto_catalog_seq(c->store, &c->seq);
    }
    if (e != BASE_OK) {
        svc_catalog_stop(c);
        return e;
    }
    c->last_full_ns = base_mono_ns();
    if (pthread_create(&c->thread, NULL, follow_main, c) != 0) {
        snprintf(errbuf, errlen, "cannot start the catalog thread");
        svc_catalog_stop(c);
        return BASE_EINTERNAL;
    }
    c->started = true;
    *out = c;
    return BASE_OK;
}

void svc_catalog_stop(svc_catalog *c)
{
    if (c == NULL) {
        return;
    }
    if (c->started) {
        pthread_mutex_lock(&c->lk);
        c->stop = true;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->lk);
        (void)pthread_join(c->thread, NULL);
    }
    sto_store_close(c->store);
    for (uint32_t k = 0; k < SVC_MAX_POLICIES; k++) {
        svc_catalog_free_cfg(c->newer[k]);
    }
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->lk);
    base_free(c);
}
