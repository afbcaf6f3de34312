#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"
#include "base/utf8.h"
#include "policy/amap.h"
#include "policy/learner.h"
#include "service/config.h"

/*
 * The action set of a [policy NAME] section (docs/configuration.md, "Actions"): a closed
 * list of names (actions = a, b, c), or an open set (actions = open) whose candidates are
 * described by action_dim features each and scored by one shared head; interaction_dim
 * sets the action map's size (policy/amap.h). Split from config.c like the exploration
 * keys.
 */

/* Append the comma-separated action names in @v to @p. */
static bool add_actions(svc_policy_config *p, const char *v, char *why, size_t whylen)
{
    const char *s = v;
    while (*s != '\0') {
        while (*s == ' ' || *s == '\t' || *s == ',') {
            s++;
        }
        if (*s == '\0') {
            break;
        }
        const char *e = s;
        while (*e != '\0' && *e != ',' && *e != ' ' && *e != '\t') {
            e++;
        }
        size_t n = (size_t)(e - s);
        if (n > BASE_NAME_MAX) {
            snprintf(why, whylen, "action name longer than %d bytes", BASE_NAME_MAX);
            return false;
        }
        if (!base_utf8_valid(s, n)) {
            snprintf(why, whylen, "action name is not valid UTF-8");
            return false;
        }
        if (p->n_actions == BASE_ACTIONS_MAX) {
            snprintf(why, whylen, "more than %d actions", BASE_ACTIONS_MAX);
            return false;
        }
        if ((p->n_actions & (p->n_actions - 1)) == 0) { /* grow at powers of two */
            size_t cap = p->n_actions == 0 ? 16 : (size_t)p->n_actions * 2;
            void *na = base_realloc_array(p->actions, cap, sizeof(*p->actions));
            if (na == NULL) {
                snprintf(why, whylen, "out of memory");
                return false;
            }
            p->actions = na;
        }
        memcpy(p->actions[p->n_actions], s, n);
        p->actions[p->n_actions][n] = '\0';
        for (uint32_t i = 0; i < p->n_actions; i++) {
            if (strcmp(p->actions[i], p->actions[p->n_actions]) == 0) {
                snprintf(why, whylen, "duplicate action \"%s\"", p->actions[i]);
                return false;
            }
        }
        p->n_actions++;
        s = e;
    }
    return true;
}

static bool parse_count(const char *v, unsigned long max, uint32_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long x = strtoul(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || end == v || *end != '\0' || errno != 0 || x < 1 || x > max) {
        return false;
    }
    *out = (uint32_t)x;
    return true;
}

int svc_config_actions_key(svc_policy_config *p, const char *k, const char *v, char *errbuf,
                           size_t errlen)
{
    char why[128] = "";
    bool ok = true;
    if (strcmp(k, "actions") == 0) {
        /* "open" first, even with names after it (on the lines below): finish() refuses those. */
        const char *names = v;
        if (strncmp(v, "open", 4) == 0 && strchr(", \t", v[4]) != NULL) {
            p->open_actions = true;
            names = v + 4;
        }
        ok = add_actions(p, names, why, sizeof(why));
    } else if (strcmp(k, "action_dim") == 0) {
        ok = parse_count(v, BASE_ACTION_DIM_MAX, &p->head.action_dim);
    } else if (strcmp(k, "interaction_dim") == 0) {
        ok = parse_count(v, BASE_DIM_MAX, &p->head.interaction_dim);
    } else {
        return -1;
    }
    if (!ok) {
        snprintf(errbuf, errlen, "[policy %s]: invalid value \"%.64s\" for %s%s%s", p->name, v, k,
                 why[0] != '\0' ? ": " : "", why);
        return 0;
    }
    return 1;
}

/* @c's actions_hash: its action names in order, each with its NUL, hashed. */
static void actions_hash(const svc_policy_config *c, char *out, size_t size)
{
    if (c->open_actions || c->n_actions == 0) {
        out[0] = '\0';
        return;
    }
    uint64_t x = base_hash64("actions", 7, 0x61637473);
    for (uint32_t a = 0; a < c->n_actions; a++) {
        /* With its NUL: "ab", "c" and "a", "bc" differ. */
        x = base_hash64(c->actions[a], strlen(c->actions[a]) + 1, x);
    }
    snprintf(out, size, "a%016llx", (unsigned long long)x);
}

base_err svc_config_actions_finish(svc_policy_config *p, char *errbuf, size_t errlen)
{
    actions_hash(p, p->actions_hash, sizeof(p->actions_hash));
    if (!p->open_actions) {
        if (p->n_actions == 0) {
            snprintf(errbuf, errlen, "policy \"%s\": actions are required", p->name);
            return BASE_EINVAL;
        }
        if (p->head.action_dim != 0 || p->head.interaction_dim != 0) {
            snprintf(errbuf, errlen,
                     "policy \"%s\": action_dim and interaction_dim need actions = open", p->name);
            return BASE_EINVAL;
        }
        p->head.n_actions = p->n_actions;
        if (p->max_candidates == 0) {
            p->max_candidates = p->n_actions < BASE_CAND_MAX ? p->n_actions : BASE_CAND_MAX;
        }
        return BASE_OK;
    }
    if (p->n_actions != 0) {
        snprintf(errbuf, errlen, "policy \"%s\": actions = open takes no action names", p->name);
        return BASE_EINVAL;
    }
    if (p->head.action_dim == 0) {
        snprintf(errbuf, errlen, "policy \"%s\": actions = open needs action_dim", p->name);
        return BASE_EINVAL;
    }
    const pol_learner_ops *l = pol_learner_ops_of(p->head.learner);
    if (l == NULL || !l->open) {
        snprintf(errbuf, errlen,
                 "policy \"%s\": learner %s cannot learn an open action set (ridge or iwr can)",
                 p->name, pol_learner_name(p->head.learner));
        return BASE_EINVAL;
    }
    if (p->head.features != POL_FEATURES_LINEAR) {
        snprintf(errbuf, errlen,
                 "policy \"%s\": features = %s: an open action set has its own map (leave "
                 "features linear)",
                 p->name, pol_features_name(p->head.features));
        return BASE_EINVAL;
    }
    pol_amap_config ac = {.dim = p->head.dim,
                          .action_dim = p->head.action_dim,
                          .interaction_dim = p->head.interaction_dim,
                          .budget = POL_AMAP_BUDGET};
    uint32_t r = 0, len = 0;
    if (pol_amap_resolve(&ac, &r, &len) != BASE_OK) {
        snprintf(errbuf, errlen,
                 "policy \"%s\": interaction_dim %u does not fit (at most dim, and S + R S <= "
                 "%d with S = min(action_dim, %d))",
                 p->name, p->head.interaction_dim, POL_FMAP_OUT_MAX, POL_AMAP_ACTION_MAX);
        return BASE_EINVAL;
    }
    p->head.n_actions = 1; /* one shared model */
    if (p->max_candidates == 0) {
        p->max_candidates = SVC_OPEN_MAX_CANDIDATES;
    }
    return BASE_OK;
}
