#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "service/config.h"

/*
 * Exploration rules of a [policy NAME] section (docs/configuration.md, "Exploration"):
 * no_explore, the actions that only ever get the probability their head's own choice gives
 * them. Split from config.c like the security keys.
 */

int svc_config_explore_key(svc_policy_config *p, const char *k, const char *v, char *errbuf,
                           size_t errlen)
{
    if (strcmp(k, "no_explore") != 0) {
        return -1;
    }
    char *copy = base_strdup(v);
    if (copy == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return 0;
    }
    base_free(p->no_explore_spec);
    p->no_explore_spec = copy;
    return 1;
}

/* The index of action @name of @p, or -1. */
static long action_index(const svc_policy_config *p, const char *name)
{
    for (uint32_t i = 0; i < p->n_actions; i++) {
        if (strcmp(p->actions[i], name) == 0) {
            return (long)i;
        }
    }
    return -1;
}

base_err svc_config_explore_finish(svc_config *c, char *errbuf, size_t errlen)
{
    for (uint32_t i = 0; i < c->n_policies; i++) {
        svc_policy_config *p = &c->policy[i];
        base_free(p->no_explore);
        p->no_explore = NULL;
        if (p->no_explore_spec == NULL || p->n_actions == 0) {
            continue;
        }
        char *copy = base_strdup(p->no_explore_spec);
        p->no_explore = base_alloc_zero(p->n_actions, 1);
        if (copy == NULL || p->no_explore == NULL) {
            base_free(copy);
            snprintf(errbuf, errlen, "out of memory");
            return BASE_ENOMEM;
        }
        base_err e = BASE_OK;
        for (char *save = NULL, *t = strtok_r(copy, ", \t\n", &save); t != NULL && e == BASE_OK;
             t = strtok_r(NULL, ", \t\n", &save)) {
            long a = action_index(p, t);
            if (a < 0) {
                snprintf(errbuf, errlen, "[policy %s]: no_explore: no action \"%.64s\"", p->name,
                         t);
                e = BASE_EINVAL;
            } else {
                p->no_explore[a] = 1;
            }
        }
        base_free(copy);
        if (e != BASE_OK) {
            return e;
        }
    }
    return BASE_OK;
}
