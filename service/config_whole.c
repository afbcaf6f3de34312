/*
 * The whole configuration once its file is parsed (service/config.c): the checks that need
 * all of it, lookups in it, and its release.
 */
#include "service/config.h"

#include <grp.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"

base_err svc_config_finish(svc_config *c, char *errbuf, size_t errlen)
{
    gid_t gid;
    if (c->ipc_group[0] != '\0' && !svc_config_ipc_gid(c, &gid)) {
        snprintf(errbuf, errlen, "[server] ipc_group: no group \"%s\" on this machine",
                 c->ipc_group);
        return BASE_EINVAL;
    }
    if (c->n_urls == 0) {
        base_strlcpy(c->urls[0], "ipc:///tmp/rlfeed.sock", SVC_URL_MAX);
        c->n_urls = 1;
    }
    if (c->n_policies == 0) {
        snprintf(errbuf, errlen, "no [policy NAME] section");
        return BASE_EINVAL;
    }
    for (uint32_t i = 0; i < c->n_policies; i++) {
        svc_policy_config *p = &c->policy[i];
        if (p->head.dim == 0) {
            snprintf(errbuf, errlen, "policy \"%s\": dim is required", p->name);
            return BASE_EINVAL;
        }
        if (svc_config_actions_finish(p, errbuf, errlen) != BASE_OK) {
            return BASE_EINVAL;
        }
        if (p->reward.n_signals == 0) {
            snprintf(errbuf, errlen,
                     "policy \"%s\": at least one signal is required "
                     "(signal.NAME = WEIGHT, or a [signal %s.NAME] section)",
                     p->name, p->name);
            return BASE_EINVAL;
        }
        for (uint32_t s = 0; s < p->reward.n_signals; s++) {
            rwd_signal *g = &p->reward.signal[s];
            if (g->kind != RWD_NUMBER &&
                !(isnan(g->min) && isnan(g->max) && isnan(g->map_min) && isnan(g->map_max))) {
                snprintf(errbuf, errlen,
                         "[signal %s.%s]: min, max, map_min and map_max apply only to kind = "
                         "number (this signal is kind = %s: its value is %s)",
                         p->name, g->name, rwd_kind_name(g->kind),
                         g->kind == RWD_FLAG ? "0 or 1" : "1");
                return BASE_EINVAL;
            }
            rwd_signal_resolve_range(g);
        }
        char why[160];
        if (rwd_spec_validate(&p->reward, why, sizeof(why)) != BASE_OK) {
            snprintf(errbuf, errlen, "policy \"%s\": reward spec: %s", p->name, why);
            return BASE_EINVAL;
        }
        pol_fmap_config fc = {
            .kind = p->head.features,
            .dim = p->head.dim,
            .rff_dim = p->head.rff_dim != 0 ? p->head.rff_dim : POL_RFF_DEFAULT_DIM,
            .bandwidth = p->head.bandwidth > 0 ? p->head.bandwidth : POL_RFF_DEFAULT_BANDWIDTH,
        };
        uint32_t len = 0;
        if (pol_fmap_out_len(&fc, &len) != BASE_OK) {
            snprintf(errbuf, errlen,
                     "policy \"%s\": features = %s does not fit dim %u (quad: dim <= %d; "
                     "rff: dim + rff_dim <= %d)",
                     p->name, pol_features_name(p->head.features), p->head.dim, POL_QUAD_DIM_MAX,
                     POL_FMAP_OUT_MAX);
            return BASE_EINVAL;
        }
        if (pol_portfolio_config_parse(p->portfolio_spec, &p->head, &p->portfolio, why,
                                       sizeof(why)) != BASE_OK) {
            snprintf(errbuf, errlen, "policy \"%s\": portfolio \"%s\": %s", p->name,
                     p->portfolio_spec, why);
            return BASE_EINVAL;
        }
        if (p->portfolio_mix >= 0.0) {
            p->portfolio.mix = p->portfolio_mix;
        }
    }
    if (svc_config_explore_finish(c, errbuf, errlen) != BASE_OK) {
        return BASE_EINVAL;
    }
    /* What the daemon builds at start, checked here: so --check and `policy put` refuse it. */
    for (uint32_t i = 0; i < c->n_policies; i++) {
        const svc_policy_config *p = &c->policy[i];
        char why[200];
        bool ok = pol_head_config_check(&p->head, why, sizeof(why));
        for (uint32_t m = 0; ok && m < p->portfolio.n_members; m++) {
            ok = pol_head_config_check(&p->portfolio.member[m], why, sizeof(why));
        }
        if (!ok) {
            snprintf(errbuf, errlen, "[policy %s]: learner and explorer: %s", p->name, why);
            return BASE_EINVAL;
        }
    }
    return svc_config_clients_finish(c, errbuf, errlen);
}

void svc_policy_config_fini(svc_policy_config *p)
{
    base_free(p->actions);
    p->actions = NULL;
    p->n_actions = 0;
    base_free(p->no_explore_spec);
    base_free(p->no_explore);
    base_free(p->no_explore_ids);
    p->no_explore_spec = NULL;
    p->no_explore = NULL;
    p->no_explore_ids = NULL;
    p->n_no_explore_ids = 0;
}

void svc_config_fini(svc_config *c)
{
    if (c == NULL) {
        return;
    }
    for (uint32_t i = 0; i < c->n_policies; i++) {
        svc_policy_config_fini(&c->policy[i]);
    }
    c->n_policies = 0;
    for (uint32_t i = 0; i < c->n_waiting; i++) {
        if (!atomic_load(&c->waiting[i].taken)) {
            svc_policy_config_fini(&c->waiting[i].cfg);
        }
    }
    base_free(c->waiting);
    c->waiting = NULL;
    c->n_waiting = 0;
    base_free(c->following);
    c->following = NULL;
}

const svc_waiting *svc_config_waiting(const svc_config *c, const char *name)
{
    for (uint32_t i = 0; i < c->n_waiting; i++) {
        const svc_waiting *w = &c->waiting[i];
        if (!atomic_load(&w->taken) && !atomic_load(&w->retired) &&
            strcmp(w->cfg.name, name) == 0) {
            return w;
        }
    }
    return NULL;
}

/* Guards every svc_waiting's holder: written by the catalog thread, read by any. */
static pthread_mutex_t holder_lk = PTHREAD_MUTEX_INITIALIZER;

void svc_waiting_holder(const svc_waiting *w, char *out, size_t size)
{
    pthread_mutex_lock(&holder_lk);
    base_strlcpy(out, w->holder, size);
    pthread_mutex_unlock(&holder_lk);
}

bool svc_waiting_set_holder(svc_waiting *w, const char *holder)
{
    pthread_mutex_lock(&holder_lk);
    bool changed = strcmp(w->holder, holder) != 0;
    if (changed) {
        base_strlcpy(w->holder, holder, sizeof(w->holder));
    }
    pthread_mutex_unlock(&holder_lk);
    return changed;
}

const svc_policy_config *svc_config_policy(const svc_config *c, const char *name)
{
    for (uint32_t i = 0; i < c->n_policies; i++) {
        if (strcmp(c->policy[i].name, name) == 0) {
            return &c->policy[i];
        }
    }
    return NULL;
}

bool svc_config_ipc_gid(const svc_config *c, gid_t *out)
{
    char buf[4096];
    struct group g, *found = NULL;
    if (c->ipc_group[0] == '\0') {
        return false;
    }
    if (getgrnam_r(c->ipc_group, &g, buf, sizeof(buf), &found) != 0 || found == NULL) {
        return false;
    }
    *out = found->gr_gid;
    return true;
}
