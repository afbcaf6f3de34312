#include "eval/ope.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "eval/interval.h"
#include "eval/reward_model.h"

static const char *const estimator_names[EV_N_ESTIMATORS] = {"ips", "snips", "dr"};

const char *ev_estimator_name(ev_estimator e)
{
    if ((unsigned)e >= EV_N_ESTIMATORS) {
        return "unknown";
    }
    return estimator_names[e];
}

bool ev_estimator_from_name(const char *name, ev_estimator *out)
{
    bool found = false;
    for (int e = 0; name != NULL && e < EV_N_ESTIMATORS && !found; e++) {
        if (strcmp(name, estimator_names[e]) == 0) {
            *out = (ev_estimator)e;
            found = true;
        }
    }
    return found;
}

void ev_config_default(ev_config *c)
{
    memset(c, 0, sizeof(*c));
    c->confidence = 0.95;
    c->interval = EV_BOOTSTRAP;
    c->n_boot = 1000;
    c->seed = 1;
    c->folds = 2;
    c->overlap_floor = 1e-4;
    c->dim = 0;
    c->n_actions = 0;
    c->proj_dim = 16;
    c->ridge_lambda = 1.0;
}

/* Formats into @errbuf when there is one. A truncated message is still useful. */
static void errf(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errf(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errbuf != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(errbuf, errlen, fmt, ap); /* truncation is acceptable */
        va_end(ap);
    }
}

static base_err check_config(const ev_config *c, size_t n, char *errbuf, size_t errlen)
{
    base_err e = BASE_EINVAL;
    if (!(c->confidence > 0.0 && c->confidence < 1.0)) {
        errf(errbuf, errlen, "confidence %g is not in (0, 1)", c->confidence);
    } else if (c->interval != EV_BOOTSTRAP && c->interval != EV_NORMAL &&
               c->interval != EV_PERCENTILE) {
        errf(errbuf, errlen, "unknown interval kind %d", (int)c->interval);
    } else if (c->interval != EV_NORMAL && c->n_boot < EV_MIN_BOOT) {
        errf(errbuf, errlen, "n_boot %u < %d", c->n_boot, EV_MIN_BOOT);
    } else if (c->folds < 2) {
        errf(errbuf, errlen, "folds %u < 2", c->folds);
    } else if (!(c->overlap_floor >= 0.0 && c->overlap_floor < 1.0)) {
        errf(errbuf, errlen, "overlap_floor %g is not in [0, 1)", c->overlap_floor);
    } else if (c->n_actions < 1) {
        errf(errbuf, errlen, "n_actions is 0");
    } else if (!(isfinite(c->ridge_lambda) && c->ridge_lambda > 0.0)) {
        errf(errbuf, errlen, "ridge_lambda %g is not finite and > 0", c->ridge_lambda);
    } else if (n == 0) {
        errf(errbuf, errlen, "no samples");
    } else {
        e = BASE_ELIMIT;
        if (c->interval != EV_NORMAL && c->n_boot > EV_MAX_BOOT) {
            errf(errbuf, errlen, "n_boot %u > %d", c->n_boot, EV_MAX_BOOT);
        } else if (c->folds > EV_MAX_FOLDS) {
            errf(errbuf, errlen, "folds %u > %d", c->folds, EV_MAX_FOLDS);
        } else if (c->dim > BASE_DIM_MAX) {
            errf(errbuf, errlen, "dim %u > %d", c->dim, BASE_DIM_MAX);
        } else if (c->n_actions > BASE_ACTIONS_MAX) {
            errf(errbuf, errlen, "n_actions %u > %d", c->n_actions, BASE_ACTIONS_MAX);
        } else if (c->proj_dim > EV_MAX_PROJ_DIM) {
            errf(errbuf, errlen, "proj_dim %u > %d", c->proj_dim, EV_MAX_PROJ_DIM);
        } else if (n > EV_MAX_SAMPLES) {
            errf(errbuf, errlen, "%zu samples > %zu", n, EV_MAX_SAMPLES);
        } else {
            e = BASE_OK;
        }
    }
    return e;
}

/* A pmf: finite (else ENUMERIC), entries in [0, 1], summing to 1 within EV_PMF_TOL. */
static base_err check_pmf(const float *pmf, uint32_t n_cand, size_t i, const char *what,
                          char *errbuf, size_t errlen)
{
    double sum = 0.0;
    for (uint32_t j = 0; j < n_cand; j++) {
        double v = (double)pmf[j];
        if (!isfinite(v)) {
            errf(errbuf, errlen, "sample %zu: %s[%u] is not finite", i, what, j);
            return BASE_ENUMERIC;
        }
        if (v < 0.0 || v > 1.0) {
            errf(errbuf, errlen, "sample %zu: %s[%u] = %g is not in [0, 1]", i, what, j, v);
            return BASE_EINVAL;
        }
        sum += v;
    }
    if (fabs(sum - 1.0) > EV_PMF_TOL) {
        errf(errbuf, errlen, "sample %zu: %s sums to %.6g, not 1", i, what, sum);
        return BASE_EINVAL;
    }
    return BASE_OK;
}

static base_err check_sample(const ev_config *c, const ev_sample *si, size_t i, char *errbuf,
                             size_t errlen)
{
    if (si->n_cand < 1 || si->n_cand > BASE_CAND_MAX) {
        errf(errbuf, errlen, "sample %zu: n_cand %u is not in [1, %d]", i, si->n_cand,
             BASE_CAND_MAX);
        return si->n_cand < 1 ? BASE_EINVAL : BASE_ELIMIT;
    }
    if (si->chosen >= si->n_cand) {
        errf(errbuf, errlen, "sample %zu: chosen %u >= n_cand %u", i, si->chosen, si->n_cand);
        return BASE_EINVAL;
    }
    if (si->logged == NULL || si->target[0] == NULL || si->target[1] == NULL ||
        si->action == NULL || si->base_logit == NULL || (c->dim > 0 && si->x == NULL)) {
        errf(errbuf, errlen, "sample %zu: a required array is NULL", i);
        return BASE_EINVAL;
    }
    static const char *const names[3] = {"logged", "target[0]", "target[1]"};
    const float *pmfs[3] = {si->logged, si->target[0], si->target[1]};
    for (int k = 0; k < 3; k++) {
        base_err e = check_pmf(pmfs[k], si->n_cand, i, names[k], errbuf, errlen);
        if (e != BASE_OK) {
            return e;
        }
    }
    if (!(si->logged[si->chosen] > 0.0f)) {
        errf(errbuf, errlen, "sample %zu: the chosen candidate's logged propensity is 0", i);
        return BASE_EINVAL;
    }
    for (uint32_t j = 0; j < si->n_cand; j++) {
        if (si->action[j] >= c->n_actions) {
            errf(errbuf, errlen, "sample %zu: action[%u] = %u >= n_actions %u", i, j, si->action[j],
                 c->n_actions);
            return BASE_EINVAL;
        }
        if (!isfinite(si->base_logit[j])) {
            errf(errbuf, errlen, "sample %zu: base_logit[%u] is not finite", i, j);
            return BASE_ENUMERIC;
        }
    }
    for (uint32_t j = 0; j < c->dim; j++) {
        if (!isfinite(si->x[j])) {
            errf(errbuf, errlen, "sample %zu: x[%u] is not finite", i, j);
            return BASE_ENUMERIC;
        }
    }
    if (!isfinite(si->reward)) {
        errf(errbuf, errlen, "sample %zu: reward is not finite", i);
        return BASE_ENUMERIC;
    }
    return BASE_OK;
}

/* Weights and support of both policies, the logged value and the smallest propensity. */
static void diagnostics(const ev_config *cfg, const ev_sample *s, size_t n, ev_report *r)
{
    double sw[2] = {0}, sw2[2] = {0}, unsup[2] = {0}, sr = 0.0;
    r->min_propensity = 1.0;
    r->pol[0].max_weight = r->pol[1].max_weight = 0.0;
    for (size_t i = 0; i < n; i++) {
        const ev_sample *si = &s[i];
        double mu = (double)si->logged[si->chosen];
        r->min_propensity = fmin(r->min_propensity, mu);
        sr += si->reward;
        for (int p = 0; p < 2; p++) {
            double w = (double)si->target[p][si->chosen] / mu;
            sw[p] += w;
            sw2[p] += w * w;
            r->pol[p].max_weight = fmax(r->pol[p].max_weight, w);
            for (uint32_t j = 0; j < si->n_cand; j++) {
                if ((double)si->logged[j] < cfg->overlap_floor) {
                    unsup[p] += (double)si->target[p][j];
                }
            }
        }
    }
    for (int p = 0; p < 2; p++) {
        r->pol[p].ess = sw2[p] > 0.0 ? sw[p] * sw[p] / sw2[p] : 0.0;
        r->pol[p].mean_weight = sw[p] / (double)n;
        r->pol[p].unsupported_mass = unsup[p] / (double)n;
    }
    r->logged_value = sr / (double)n;
}

base_err ev_evaluate(const ev_config *cfg, const ev_sample *s, size_t n, ev_report *out,
                     char *errbuf, size_t errlen)
{
    base_err e = BASE_OK;
    double *terms = NULL; /* [n x EV_T_N] per-sample terms (eval/interval.h) */
    double *q = NULL;     /* [n x 3] reward model summaries (eval/reward_model.h) */
    if (cfg == NULL || out == NULL || (s == NULL && n > 0)) {
        errf(errbuf, errlen, "NULL argument");
        e = BASE_EINVAL;
        goto fail;
    }
    e = check_config(cfg, n, errbuf, errlen);
    for (size_t i = 0; i < n && e == BASE_OK; i++) {
        e = check_sample(cfg, &s[i], i, errbuf, errlen);
    }
    if (e != BASE_OK) {
        goto fail;
    }
    terms = base_alloc_array(n, EV_T_N * sizeof(double));
    q = base_alloc_array(n, 3 * sizeof(double));
    if (terms == NULL || q == NULL) {
        errf(errbuf, errlen, "out of memory for %zu samples", n);
        e = BASE_ENOMEM;
        goto fail;
    }
    e = ev_reward_model_crossfit(cfg, s, n, q, errbuf, errlen);
    if (e == BASE_ENOMEM) {
        errf(errbuf, errlen, "out of memory for the reward model");
    }
    if (e != BASE_OK) {
        goto fail;
    }

    for (size_t i = 0; i < n; i++) {
        const ev_sample *si = &s[i];
        double *row = terms + i * EV_T_N;
        double mu = (double)si->logged[si->chosen];
        const double *qi = q + 3 * i;
        for (int p = 0; p < 2; p++) {
            double w = (double)si->target[p][si->chosen] / mu;
            row[EV_T_WR0 + p] = w * si->reward;
            row[EV_T_W0 + p] = w;
            row[EV_T_DR0 + p] = qi[p] + w * (si->reward - qi[2]);
        }
    }
    ev_interval ci[EV_N_STATS];
    e = ev_intervals(terms, n, cfg->interval, cfg->confidence, cfg->n_boot, cfg->seed, ci);
    if (e != BASE_OK) {
        errf(errbuf, errlen, "out of memory for %u bootstrap resamples", cfg->n_boot);
        goto fail;
    }
    for (int k = 0; k < EV_N_STATS; k++) {
        if (!isfinite(ci[k].est)) {
            /* Finite inputs can still overflow: tiny propensities times huge rewards. */
            errf(errbuf, errlen, "an estimate overflowed");
            e = BASE_ENUMERIC;
            goto fail;
        }
    }

    ev_report r;
    memset(&r, 0, sizeof(r));
    r.n = n;
    r.confidence = cfg->confidence;
    r.interval = cfg->interval;
    diagnostics(cfg, s, n, &r);
    for (int p = 0; p < 2; p++) {
        for (int k = 0; k < EV_N_ESTIMATORS; k++) {
            r.pol[p].v[k] = ci[EV_N_ESTIMATORS * p + k];
        }
    }
    for (int k = 0; k < EV_N_ESTIMATORS; k++) {
        r.diff[k] = ci[EV_STAT_DIFF + k];
    }
    *out = r;
fail:
    base_free(q);
    base_free(terms);
    return e;
}

void ev_gate_config_default(ev_gate_config *g)
{
    memset(g, 0, sizeof(*g));
    g->estimator = EV_DR;
    g->margin = 0.0;
    g->min_samples = 1000;
    g->max_unsupported = 0.05;
    g->min_ess_fraction = 0.01;
}

const char *ev_verdict_name(ev_verdict v)
{
    switch (v) {
    case EV_PROMOTE:
        return "promote";
    case EV_HOLD:
        return "hold";
    case EV_NOT_FIT:
        return "not_fit";
    }
    return "unknown";
}

static bool fraction(double f)
{
    return f >= 0.0 && f <= 1.0;
}

ev_verdict ev_gate(const ev_gate_config *g, const ev_report *r, char *why, size_t whylen)
{
    static const char *const who[2] = {"candidate", "baseline"};
    ev_verdict v = EV_NOT_FIT;
    if ((unsigned)g->estimator >= EV_N_ESTIMATORS || !isfinite(g->margin) ||
        !fraction(g->max_unsupported) || !fraction(g->min_ess_fraction)) {
        errf(why, whylen, "not fit: bad gate config");
        goto done;
    }
    const char *en = ev_estimator_name(g->estimator);
    if (r->n < g->min_samples || r->n == 0) {
        errf(why, whylen, "not fit: %zu samples < %zu", r->n, g->min_samples);
        goto done;
    }
    const ev_interval *d = &r->diff[g->estimator];
    if (!isfinite(d->est) || !isfinite(d->lo) || !isfinite(d->hi)) {
        errf(why, whylen, "not fit: the %s difference has no finite interval", en);
        goto done;
    }
    for (int p = 0; p < 2; p++) {
        const ev_policy_report *pr = &r->pol[p];
        if (!(pr->unsupported_mass <= g->max_unsupported)) {
            errf(why, whylen,
                 "not fit: %s puts %.4f of its mass where logging put almost none "
                 "(> %.4f)",
                 who[p], pr->unsupported_mass, g->max_unsupported);
            goto done;
        }
        if (!(pr->ess >= g->min_ess_fraction * (double)r->n)) {
            errf(why, whylen, "not fit: %s ESS %.1f is < %.4f of %zu samples", who[p], pr->ess,
                 g->min_ess_fraction, r->n);
            goto done;
        }
    }
    v = d->lo > g->margin ? EV_PROMOTE : EV_HOLD;
    errf(why, whylen, "%s: %s difference %.4g, %g%% lower bound %.4g %s margin %g (n %zu)",
         v == EV_PROMOTE ? "promote" : "hold", en, d->est, 100.0 * r->confidence, d->lo,
         v == EV_PROMOTE ? ">" : "<=", g->margin, r->n);
done:
    return v;
}
