#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/utf8.h"
#include "service/config.h"

/*
 * Exploration rules of a [policy NAME] section (docs/configuration.md, "Exploration"):
 * no_explore, the actions that only ever get the probability their head's own choice gives
 * them, and segment.NAME = BUDGET, the exploration a decision of a segment may spend. Split
 * from config.c like the security keys.
 */

/* segment.NAME = BUDGET: the most exploration mass a decision of that segment may spend. */
static int segment_key(svc_policy_config *p, const char *name, const char *v, char *errbuf,
                       size_t errlen)
{
    char *end = NULL;
    double b = strtod(v, &end);
    size_t n = strlen(name);
    if (n == 0 || n > BASE_NAME_MAX || !base_utf8_valid(name, n) || strpbrk(name, " \t") != NULL ||
        strcmp(name, "*") == 0) {
        snprintf(errbuf, errlen, "[policy %s]: bad segment name \"%.64s\"", p->name, name);
        return 0;
    }
    if (end == v || *end != '\0' || !(b >= 0.0 && b <= 1.0)) {
        snprintf(errbuf, errlen, "[policy %s]: segment.%s: a budget in [0, 1], not \"%.32s\"",
                 p->name, name, v);
        return 0;
    }
    for (uint32_t i = 0; i < p->n_segments; i++) {
        if (strcmp(p->segment[i], name) == 0) {
            snprintf(errbuf, errlen, "[policy %s]: segment.%s given twice", p->name, name);
            return 0;
        }
    }
    if (p->n_segments == SVC_MAX_SEGMENTS) {
        snprintf(errbuf, errlen, "[policy %s]: at most %d segments", p->name, SVC_MAX_SEGMENTS);
        return 0;
    }
    base_strlcpy(p->segment[p->n_segments], name, sizeof(p->segment[0]));
    p->segment_budget[p->n_segments++] = b;
    return 1;
}

int svc_config_explore_key(svc_policy_config *p, const char *k, const char *v, char *errbuf,
                           size_t errlen)
{
    if (strncmp(k, "segment.", 8) == 0) {
        return segment_key(p, k + 8, v, errbuf, errlen);
    }
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

static int id_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/*
 * One name of no_explore: for a closed set an action, marked; for an open set a candidate id
 * (any the frontend may send: not checked against a list), kept for svc_prt's bsearch.
 */
static base_err take_name(svc_policy_config *p, const char *t, char *errbuf, size_t errlen)
{
    if (p->open_actions) {
        if (strlen(t) > BASE_NAME_MAX || !base_utf8_valid(t, strlen(t)) ||
            p->n_no_explore_ids == SVC_NO_EXPLORE_IDS_MAX) {
            snprintf(errbuf, errlen,
                     "[policy %s]: no_explore: bad id \"%.64s\" (at most %d ids of %d bytes)",
                     p->name, t, SVC_NO_EXPLORE_IDS_MAX, BASE_NAME_MAX);
            return BASE_EINVAL;
        }
        base_strlcpy(p->no_explore_ids[p->n_no_explore_ids++], t, BASE_NAME_MAX + 1);
        return BASE_OK;
    }
    long a = action_index(p, t);
    if (a < 0) {
        snprintf(errbuf, errlen, "[policy %s]: no_explore: no action \"%.64s\"", p->name, t);
        return BASE_EINVAL;
    }
    p->no_explore[a] = 1;
    return BASE_OK;
}

base_err svc_config_explore_finish(svc_config *c, char *errbuf, size_t errlen)
{
    for (uint32_t i = 0; i < c->n_policies; i++) {
        svc_policy_config *p = &c->policy[i];
        base_free(p->no_explore);
        base_free(p->no_explore_ids);
        p->no_explore = NULL;
        p->no_explore_ids = NULL;
        p->n_no_explore_ids = 0;
        if (p->no_explore_spec == NULL || (p->n_actions == 0 && !p->open_actions)) {
            continue;
        }
        char *copy = base_strdup(p->no_explore_spec);
        if (p->open_actions) {
            p->no_explore_ids =
                base_alloc_array(SVC_NO_EXPLORE_IDS_MAX, sizeof(*p->no_explore_ids));
        } else {
            p->no_explore = base_alloc_zero(p->n_actions, 1);
        }
        if (copy == NULL || (p->no_explore == NULL && p->no_explore_ids == NULL)) {
            base_free(copy);
            snprintf(errbuf, errlen, "out of memory");
            return BASE_ENOMEM;
        }
        base_err e = BASE_OK;
        for (char *save = NULL, *t = strtok_r(copy, ", \t\n", &save); t != NULL && e == BASE_OK;
             t = strtok_r(NULL, ", \t\n", &save)) {
            e = take_name(p, t, errbuf, errlen);
        }
        base_free(copy);
        if (e != BASE_OK) {
            return e;
        }
        if (p->open_actions) {
            qsort(p->no_explore_ids, p->n_no_explore_ids, sizeof(*p->no_explore_ids), id_cmp);
        }
    }
    return BASE_OK;
}
