#include "policy/head.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"
#include "policy/explore.h"
#include "policy/iwr.h"
#include "policy/pg.h"
#include "policy/ridge.h"

#define DEFAULT_PRIOR_MEAN 0.5
#define DEFAULT_BASE_WEIGHT 1.0
#define DEFAULT_GAMMA 1000.0
#define DEFAULT_UCB_ALPHA 0.5
#define N_LEARNERS 3

struct pol_head {
    pol_head_config cfg; /* automatic values resolved */
    pol_ridge *ridge;    /* exactly one of ridge, iwr and pg, as cfg.learner says */
    pol_iwr *iwr;
    pol_pg *pg;
    const pol_explorer_ops *explorer; /* the table entry of cfg.explorer */
    uint64_t n_updates;
};

/* Indexed by pol_learner. */
static const char *const learner_names[N_LEARNERS] = {POL_RIDGE_NAME, POL_PG_NAME, POL_IWR_NAME};

const char *pol_learner_name(pol_learner l)
{
    return (unsigned)l < N_LEARNERS ? learner_names[l] : "unknown";
}

const char *pol_explorer_name(pol_explorer x)
{
    const pol_explorer_ops *ops = pol_explorer_ops_of(x);
    return ops != NULL ? ops->name : "unknown";
}

bool pol_learner_from_name(const char *name, pol_learner *out)
{
    for (unsigned i = 0; i < N_LEARNERS; i++) {
        if (strcmp(name, learner_names[i]) == 0) {
            *out = (pol_learner)i;
            return true;
        }
    }
    return false;
}

bool pol_explorer_from_name(const char *name, pol_explorer *out)
{
    const pol_explorer_ops *ops = NULL;
    for (unsigned i = 0; (ops = pol_explorer_ops_of((pol_explorer)i)) != NULL; i++) {
        if (strcmp(name, ops->name) == 0) {
            *out = (pol_explorer)i;
            return true;
        }
    }
    return false;
}

void pol_head_config_default(pol_head_config *cfg, uint32_t dim, uint32_t n_actions)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->dim = dim;
    cfg->n_actions = n_actions;
    cfg->learner = POL_LEARNER_RIDGE;
    cfg->explorer = POL_EXPLORE_AUTO;
    cfg->epsilon = -1.0;
    cfg->temperature = 1.0;
    cfg->learning_rate = 0.0;
    cfg->lambda = 0.0;
    cfg->prior_mean = DEFAULT_PRIOR_MEAN;
    cfg->base_weight = DEFAULT_BASE_WEIGHT;
    cfg->gamma = DEFAULT_GAMMA;
    cfg->ucb_alpha = DEFAULT_UCB_ALPHA;
    cfg->kl = POL_PG_DEFAULT_KL;
}

/*
 * Resolve automatic values; false if the combination is invalid. Softmax
 * needs logits (pg only); ucb needs a posterior width (ridge only).
 */
static bool resolve(pol_head_config *c)
{
    bool ridge = c->learner == POL_LEARNER_RIDGE;
    bool pg = c->learner == POL_LEARNER_PG;
    if ((unsigned)c->learner >= N_LEARNERS) {
        return false;
    }
    if (c->explorer == POL_EXPLORE_AUTO) {
        c->explorer = pg ? POL_EXPLORE_SOFTMAX : POL_EXPLORE_GREEDY;
    }
    const pol_explorer_ops *x = pol_explorer_ops_of(c->explorer);
    if (x == NULL || x->pmf == NULL || (x->needs_logits && !pg) || (x->needs_width && !ridge)) {
        return false;
    }
    if (c->epsilon < 0.0) {
        c->epsilon = ridge ? POL_RIDGE_DEFAULT_EPSILON
                           : (pg ? POL_PG_DEFAULT_EPSILON : POL_IWR_DEFAULT_EPSILON);
    }
    if (c->learning_rate <= 0.0) {
        c->learning_rate = pg ? POL_PG_DEFAULT_LR : POL_IWR_DEFAULT_LR;
    }
    bool ok = c->dim >= 1 && c->dim <= BASE_DIM_MAX;
    ok = ok && c->n_actions >= 1 && c->n_actions <= BASE_ACTIONS_MAX;
    ok = ok && isfinite(c->epsilon) && c->epsilon <= 1.0;
    ok = ok && isfinite(c->temperature) && c->temperature > 0.0;
    ok = ok && isfinite(c->learning_rate);
    ok = ok && isfinite(c->lambda) && isfinite(c->prior_mean) && isfinite(c->base_weight);
    ok = ok && isfinite(c->gamma) && c->gamma > 0.0;
    ok = ok && isfinite(c->ucb_alpha) && c->ucb_alpha >= 0.0;
    ok = ok && isfinite(c->kl) && c->kl >= 0.0;
    return ok;
}

base_err pol_head_new(const pol_head_config *cfg, pol_head **out)
{
    base_err e = BASE_OK;
    pol_head *h = base_alloc_zero(1, sizeof(*h));
    if (h == NULL) {
        return BASE_ENOMEM;
    }
    h->cfg = *cfg;
    if (!resolve(&h->cfg)) {
        e = BASE_EINVAL;
        goto fail;
    }
    h->explorer = pol_explorer_ops_of(h->cfg.explorer);
    if (h->cfg.learner == POL_LEARNER_RIDGE) {
        pol_ridge_config rc = {
            .dim = h->cfg.dim,
            .n_actions = h->cfg.n_actions,
            .temperature = h->cfg.temperature,
            .lambda = h->cfg.lambda,
            .prior_mean = h->cfg.prior_mean,
            .base_weight = h->cfg.base_weight,
            .seed = h->cfg.seed,
        };
        e = pol_ridge_new(&rc, &h->ridge);
        if (e == BASE_OK) {
            h->cfg.lambda = pol_ridge_lambda(h->ridge);
        }
    } else if (h->cfg.learner == POL_LEARNER_IWR) {
        pol_iwr_config ic = {
            .dim = h->cfg.dim,
            .n_actions = h->cfg.n_actions,
            .temperature = h->cfg.temperature,
            .learning_rate = h->cfg.learning_rate,
            .prior_mean = h->cfg.prior_mean,
            .base_weight = h->cfg.base_weight,
        };
        e = pol_iwr_new(&ic, &h->iwr);
    } else {
        e = pol_pg_new(h->cfg.dim, h->cfg.n_actions, h->cfg.temperature,
                       h->cfg.learning_rate, h->cfg.kl, &h->pg);
    }
    if (e != BASE_OK) {
        goto fail;
    }
    *out = h;
    return BASE_OK;
fail:
    pol_head_free(h);
    return e;
}

void pol_head_free(pol_head *h)
{
    if (h != NULL) {
        pol_ridge_free(h->ridge);
        pol_iwr_free(h->iwr);
        pol_pg_free(h->pg);
        base_free(h);
    }
}

static base_err check_candidates(const pol_head *h, uint32_t n, const uint32_t *action)
{
    if (n == 0 || n > BASE_CAND_MAX) {
        return BASE_EINVAL;
    }
    for (uint32_t c = 0; c < n; c++) {
        if (action[c] >= h->cfg.n_actions) {
            return BASE_EINVAL;
        }
    }
    return BASE_OK;
}

base_err pol_head_pmf(const pol_head *h, const float *x, uint32_t n_cand,
                      const uint32_t *action, const float *base_logit, float *out_pmf)
{
    /* On the stack, not in h: concurrent pmf calls share h read-only. 16 KiB. */
    double s[BASE_CAND_MAX];
    double w[BASE_CAND_MAX];
    base_err e = check_candidates(h, n_cand, action);
    if (e != BASE_OK) {
        return e;
    }
    if (h->ridge != NULL) {
        e = pol_ridge_scores(h->ridge, x, n_cand, action, base_logit, s,
                             h->explorer->needs_width ? w : NULL);
    } else if (h->iwr != NULL) {
        e = pol_iwr_scores(h->iwr, x, n_cand, action, base_logit, s);
    } else {
        e = pol_pg_scores(h->pg, x, n_cand, action, base_logit, s);
    }
    if (e != BASE_OK) {
        return e;
    }
    h->explorer->pmf(s, h->explorer->needs_width ? w : NULL, n_cand, &h->cfg, out_pmf);
    return BASE_OK;
}

uint32_t pol_sample(const float *pmf, uint32_t n, const char *event_id, uint64_t seed)
{
    double u = base_u64_to_unit(base_hash64(event_id, strlen(event_id), seed));
    double cum = 0.0;
    uint32_t last_pos = 0;
    uint32_t pick = UINT32_MAX;
    for (uint32_t c = 0; c < n; c++) {
        if (pmf[c] > 0.0f) {
            last_pos = c;
            cum += (double)pmf[c];
            if (pick == UINT32_MAX && u < cum) {
                pick = c;
            }
        }
    }
    /* The float pmf may sum to slightly under 1: u past the sum takes the last positive. */
    return pick == UINT32_MAX ? last_pos : pick;
}

static base_err learn(pol_head *h, const base_decision *d, double reward, const double *rewards)
{
    if (d->dim != h->cfg.dim || d->chosen >= d->n_cand) {
        return BASE_EINVAL;
    }
    base_err e = check_candidates(h, d->n_cand, d->action);
    if (e != BASE_OK) {
        return e;
    }
    if (rewards == NULL) {
        double p = (double)d->pmf[d->chosen];
        if (!isfinite(p) || !isfinite(reward)) {
            return BASE_ENUMERIC;
        }
        if (!(p > 0.0 && p <= 1.0)) {
            return BASE_EINVAL;
        }
    }
    if (h->ridge != NULL) {
        e = pol_ridge_learn(h->ridge, d, reward, rewards);
    } else if (h->iwr != NULL) {
        e = pol_iwr_learn(h->iwr, d, reward, rewards);
    } else {
        e = pol_pg_learn(h->pg, d, reward, rewards);
    }
    if (e == BASE_OK) {
        h->n_updates++;
    }
    return e;
}

base_err pol_head_learn(pol_head *h, const base_decision *d, double reward)
{
    return learn(h, d, reward, NULL);
}

base_err pol_head_learn_full(pol_head *h, const base_decision *d, const double *rewards)
{
    return learn(h, d, 0.0, rewards);
}

uint64_t pol_head_n_updates(const pol_head *h)
{
    return h->n_updates;
}

const pol_head_config *pol_head_get_config(const pol_head *h)
{
    return &h->cfg;
}

uint32_t pol_head_dim(const pol_head *h)
{
    return h->cfg.dim;
}

uint32_t pol_head_n_actions(const pol_head *h)
{
    return h->cfg.n_actions;
}

const float *pol_head_weights(const pol_head *h, uint32_t a)
{
    if (h->ridge != NULL) {
        return pol_ridge_weights(h->ridge, a);
    }
    return h->iwr != NULL ? pol_iwr_weights(h->iwr, a) : pol_pg_weights(h->pg, a);
}

uint64_t pol_head_checksum(const pol_head *h)
{
    uint64_t x = BASE_FNV_OFFSET;
    if (h->ridge != NULL) {
        return pol_ridge_checksum(h->ridge, x);
    }
    return h->iwr != NULL ? pol_iwr_checksum(h->iwr, x) : pol_pg_checksum(h->pg, x);
}

base_err pol_head_snapshot(const pol_head *h, base_model **out)
{
    uint32_t np = 0, ns = 0;
    if (h->ridge != NULL) {
        np = pol_ridge_n_params(h->ridge);
        ns = pol_ridge_n_state(h->ridge);
    } else if (h->iwr != NULL) {
        np = pol_iwr_n_params(h->iwr);
        ns = pol_iwr_n_state(h->iwr);
    } else {
        np = pol_pg_n_params(h->pg);
        ns = pol_pg_n_state(h->pg);
    }
    base_model *m = base_model_new(np, ns);
    if (m == NULL) {
        return BASE_ENOMEM;
    }
    (void)base_strlcpy(m->learner, pol_learner_name(h->cfg.learner), sizeof(m->learner));
    m->dim = h->cfg.dim;
    m->n_actions = h->cfg.n_actions;
    m->n_updates = h->n_updates;
    if (h->ridge != NULL) {
        pol_ridge_export(h->ridge, m);
    } else if (h->iwr != NULL) {
        pol_iwr_export(h->iwr, m);
    } else {
        pol_pg_export(h->pg, m);
    }
    *out = m;
    return BASE_OK;
}

base_err pol_head_restore(pol_head *h, const base_model *m)
{
    bool learner_ok = memchr(m->learner, '\0', sizeof(m->learner)) != NULL &&
                      strcmp(m->learner, pol_learner_name(h->cfg.learner)) == 0;
    if (!learner_ok || m->dim != h->cfg.dim || m->n_actions != h->cfg.n_actions) {
        return BASE_EINVAL;
    }
    base_err e = BASE_OK;
    if (h->ridge != NULL) {
        e = pol_ridge_import(h->ridge, m);
    } else if (h->iwr != NULL) {
        e = pol_iwr_import(h->iwr, m);
    } else {
        e = pol_pg_import(h->pg, m);
    }
    if (e == BASE_OK) {
        h->n_updates = m->n_updates;
    }
    return e;
}
