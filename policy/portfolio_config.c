/*
 * The portfolio's configuration: a single head, the automatic members for a
 * head's shape, and the configuration value "off" | "auto" | member list
 * (policy/portfolio.h). Split from portfolio.c, which runs the portfolio.
 */
#include "policy/portfolio.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/fmap.h"
#include "policy/ridge.h"

void pol_portfolio_config_single(pol_portfolio_config *out, const pol_head_config *head)
{
    memset(out, 0, sizeof(*out));
    out->n_members = 1;
    out->member[0] = *head;
    out->z = POL_PORTFOLIO_DEFAULT_Z;
    out->z_drop = POL_PORTFOLIO_DEFAULT_Z_DROP;
    out->min_examples = POL_PORTFOLIO_DEFAULT_MIN;
    out->drop_after = POL_PORTFOLIO_DEFAULT_DROP_AFTER;
    out->mix = POL_PORTFOLIO_DEFAULT_MIX;
    out->half_life = POL_PORTFOLIO_DEFAULT_HALF_LIFE;
}

_Static_assert(POL_PORTFOLIO_QUAD_DIM_MAX +
                       POL_PORTFOLIO_QUAD_DIM_MAX * (POL_PORTFOLIO_QUAD_DIM_MAX + 1) / 2 <=
                   POL_RIDGE_EXACT_MAX,
               "auto's quad member must fit ridge without a projection");

static void add_member(pol_portfolio_config *c, const pol_head_config *m)
{
    if (c->n_members < POL_PORTFOLIO_MAX) {
        c->member[c->n_members++] = *m;
    }
}

void pol_portfolio_config_auto(pol_portfolio_config *out, const pol_head_config *head)
{
    pol_portfolio_config_single(out, head);
    if (head->learner != POL_LEARNER_RIDGE || head->action_dim > 0) {
        return; /* an open action set's shared head has its own map: no feature-map members */
    }
    /*
     * No ucb views of the head: with the nonlinear members below they never
     * served at the end of any benchmark run, and their widths cost p^2 / 2
     * per candidate on every decision (docs/benchmarks.md, "Portfolio").
     */
    pol_head_config m;
    if (head->dim > POL_RIDGE_EXACT_MAX) {
        /*
         * Ridge sees a random projection of a long context; iwr costs O(dim)
         * and keeps every coordinate (docs/algorithms.md, section 11).
         */
        m = *head;
        m.learner = POL_LEARNER_IWR;
        m.explorer = POL_EXPLORE_AUTO;
        m.epsilon = -1.0;
        m.learning_rate = 0.0;
        add_member(out, &m);
    }
    if (head->features != POL_FEATURES_LINEAR) {
        return; /* the configured head already has a map */
    }
    /*
     * Nonlinear capacity, greedy like the head: pairwise products for short
     * contexts; random Fourier features (a scale-free and a sharper one) while
     * there are at least as many cosines as context values: past that the
     * sampled kernel is too coarse to add to the linear part (measured in
     * docs/benchmarks.md; docs/algorithms.md, sections 10, 11).
     */
    m = *head;
    if (head->dim <= POL_PORTFOLIO_QUAD_DIM_MAX) {
        m.features = POL_FEATURES_QUAD;
        add_member(out, &m);
    } else if (head->dim <= POL_RFF_DEFAULT_DIM) {
        m.features = POL_FEATURES_RFF_NORM;
        m.rff_dim = POL_RFF_DEFAULT_DIM;
        m.bandwidth = 1.0;
        add_member(out, &m);
        m.features = POL_FEATURES_RFF;
        m.bandwidth = 0.5;
        add_member(out, &m);
    }
}

/*
 * A feature map token: "quad", or "rff" / "rff_norm" with an optional number
 * of cosines and an optional "x" and bandwidth ("rff64x0.5").
 */
static bool parse_features(char *fm, pol_head_config *out, char *why, size_t whylen)
{
    size_t nl = strspn(fm, "abcdefghijklmnopqrstuvwxyz_");
    char name[32];
    if (nl == 0 || nl >= sizeof(name)) {
        snprintf(why, whylen, "bad feature map \"%s\"", fm);
        return false;
    }
    memcpy(name, fm, nl);
    name[nl] = '\0';
    if (!pol_features_from_name(name, &out->features)) {
        snprintf(why, whylen, "unknown feature map \"%s\"", name);
        return false;
    }
    char *s = fm + nl, *end = NULL;
    bool rff = out->features == POL_FEATURES_RFF || out->features == POL_FEATURES_RFF_NORM;
    if (*s != '\0' && !rff) {
        snprintf(why, whylen, "feature map \"%s\" takes no parameters", name);
        return false;
    }
    if (*s >= '0' && *s <= '9') {
        unsigned long n = strtoul(s, &end, 10);
        if (n == 0 || n > POL_FMAP_OUT_MAX) {
            snprintf(why, whylen, "bad number of cosines in \"%s\"", fm);
            return false;
        }
        out->rff_dim = (uint32_t)n;
        s = end;
    }
    if (*s == 'x') {
        double b = strtod(s + 1, &end);
        if (end == s + 1 || !isfinite(b) || b <= 0.0) {
            snprintf(why, whylen, "bad bandwidth in \"%s\"", fm);
            return false;
        }
        out->bandwidth = b;
        s = end;
    }
    if (*s != '\0') {
        snprintf(why, whylen, "bad feature map \"%s\"", fm);
        return false;
    }
    return true;
}

/* One member "learner[+features]/explorer[:param]]" of a list, built on @head. */
static bool parse_member(const char *tok, size_t len, const pol_head_config *head,
                         pol_head_config *out, char *why, size_t whylen)
{
    char buf[128], *x = NULL, *param = NULL;
    if (len == 0 || len >= sizeof(buf)) {
        snprintf(why, whylen, "empty or overlong member");
        return false;
    }
    memcpy(buf, tok, len);
    buf[len] = '\0';
    *out = *head;
    x = strchr(buf, '/');
    if (x != NULL) {
        *x++ = '\0';
        param = strchr(x, ':');
        if (param != NULL) {
            *param++ = '\0';
        }
    }
    char *fm = strchr(buf, '+');
    if (fm != NULL) {
        *fm++ = '\0';
    }
    if (!pol_learner_from_name(buf, &out->learner)) {
        snprintf(why, whylen, "unknown learner \"%s\"", buf);
        return false;
    }
    out->features = POL_FEATURES_LINEAR;
    out->rff_dim = 0;
    out->bandwidth = 0.0;
    if (fm != NULL && !parse_features(fm, out, why, whylen)) {
        return false;
    }
    if (out->learner != head->learner) {
        out->epsilon = -1.0; /* the member's learner's own defaults */
        out->learning_rate = 0.0;
    }
    out->explorer = POL_EXPLORE_AUTO;
    if (x != NULL && !pol_explorer_from_name(x, &out->explorer)) {
        snprintf(why, whylen, "unknown explorer \"%s\"", x);
        return false;
    }
    if (param != NULL) {
        char *end = NULL;
        double v = strtod(param, &end);
        if (end == param || *end != '\0' || !isfinite(v) || v < 0.0) {
            snprintf(why, whylen, "bad parameter \"%s\"", param);
            return false;
        }
        if (out->explorer == POL_EXPLORE_UCB) {
            out->ucb_alpha = v;
        } else if (out->explorer == POL_EXPLORE_IGW) {
            out->gamma = v;
        } else {
            out->epsilon = v;
        }
    }
    return true;
}

/*
 * The member spelled at *@s, in a comma list: *@s moves past leading blanks; *@len is its
 * length up to the comma (or the end). Return: that length less trailing blanks.
 */
static size_t member_at(const char **s, size_t *len)
{
    while (**s == ' ' || **s == '\t') {
        (*s)++;
    }
    *len = strcspn(*s, ",");
    size_t trim = *len;
    while (trim > 0 && ((*s)[trim - 1] == ' ' || (*s)[trim - 1] == '\t')) {
        trim--;
    }
    return trim;
}

base_err pol_portfolio_config_parse(const char *spec, const pol_head_config *head,
                                    pol_portfolio_config *out, char *why, size_t whylen)
{
    if (strcmp(spec, "off") == 0) {
        pol_portfolio_config_single(out, head);
        return BASE_OK;
    }
    if (strcmp(spec, "auto") == 0) {
        pol_portfolio_config_auto(out, head);
        return BASE_OK;
    }
    pol_portfolio_config_single(out, head);
    out->n_members = 0;
    const char *s = spec;
    while (*s != '\0') {
        size_t len = 0, trim = member_at(&s, &len);
        if (out->n_members == POL_PORTFOLIO_MAX) {
            snprintf(why, whylen, "more than %d members", POL_PORTFOLIO_MAX);
            return BASE_EINVAL;
        }
        if (!parse_member(s, trim, head, &out->member[out->n_members], why, whylen)) {
            return BASE_EINVAL;
        }
        out->n_members++;
        s += len;
        if (*s == ',') {
            s++;
            if (*s == '\0') {
                snprintf(why, whylen, "trailing comma");
                return BASE_EINVAL;
            }
        }
    }
    if (out->n_members == 0) {
        snprintf(why, whylen, "no members");
        return BASE_EINVAL;
    }
    /* Name the member the head cannot build, as spelled, with the head's own reason. */
    s = spec;
    for (uint32_t m = 0; m < out->n_members; m++) {
        size_t len = 0, trim = member_at(&s, &len);
        char reason[160];
        pol_head *h = NULL;
        bool ok = pol_head_config_check(&out->member[m], reason, sizeof(reason));
        if (ok && pol_head_new(&out->member[m], &h) != BASE_OK) {
            ok = false;
            snprintf(reason, sizeof(reason),
                     "its head cannot be built with these settings (a feature map too large "
                     "for dim?)");
        }
        pol_head_free(h);
        if (!ok) {
            snprintf(why, whylen, "member %u \"%.*s\": %s", m + 1, (int)(trim < 64 ? trim : 64), s,
                     reason);
            return BASE_EINVAL;
        }
        s += len + (s[len] == ',');
    }
    pol_portfolio *pf = NULL;
    base_err e = pol_portfolio_new(out, &pf);
    pol_portfolio_free(pf);
    if (e != BASE_OK) {
        snprintf(why, whylen, "a member the head cannot build (explorer and learner do not fit)");
    }
    return e;
}
