#include "policy/learner.h"

#include "policy/iwr.h"
#include "policy/pg.h"
#include "policy/ridge.h"

/*
 * Adapters from the untyped table to each module's typed functions. Calling
 * a typed function through a cast pointer of another type is undefined, so
 * each gets a one-line wrapper.
 */

static base_err ridge_new(pol_head_config *cfg, void **out)
{
    pol_ridge_config rc = {
        .dim = cfg->dim,
        .n_actions = cfg->n_actions,
        .temperature = cfg->temperature,
        .lambda = cfg->lambda,
        .prior_mean = cfg->prior_mean,
        .base_weight = cfg->base_weight,
        .seed = cfg->seed,
        .exact_max = cfg->action_dim > 0 ? POL_RIDGE_OPEN_EXACT_MAX : 0,
    };
    pol_ridge *r = NULL;
    base_err e = pol_ridge_new(&rc, &r);
    if (e == BASE_OK) {
        cfg->lambda = pol_ridge_lambda(r); /* <= 0 meant p / 2: report what is used */
        *out = r;
    }
    return e;
}

static bool ridge_seeded(const void *l)
{
    return pol_ridge_projects(l);
}

static void ridge_free(void *l)
{
    pol_ridge_free(l);
}

static base_err ridge_scores(const void *l, const float *x, uint32_t x_stride, uint32_t n,
                             const uint32_t *action, const float *base_logit, double *out_s,
                             double *out_width)
{
    return pol_ridge_scores(l, x, x_stride, n, action, base_logit, out_s, out_width);
}

static base_err ridge_learn(void *l, const base_decision *d, uint32_t x_stride, double reward,
                            const double *rewards)
{
    return pol_ridge_learn(l, d, x_stride, reward, rewards);
}

static const float *ridge_weights(const void *l, uint32_t a)
{
    return pol_ridge_weights(l, a);
}

static uint64_t ridge_checksum(const void *l, uint64_t hash)
{
    return pol_ridge_checksum(l, hash);
}

static uint32_t ridge_n_params(const void *l)
{
    return pol_ridge_n_params(l);
}

static uint32_t ridge_n_state(const void *l)
{
    return pol_ridge_n_state(l);
}

static void ridge_export(const void *l, base_snapshot *m)
{
    pol_ridge_export(l, m);
}

static base_err ridge_import(void *l, const base_snapshot *m)
{
    return pol_ridge_import(l, m);
}

static base_err iwr_new(pol_head_config *cfg, void **out)
{
    pol_iwr_config ic = {
        .dim = cfg->dim,
        .n_actions = cfg->n_actions,
        .temperature = cfg->temperature,
        .learning_rate = cfg->learning_rate,
        .prior_mean = cfg->prior_mean,
        .base_weight = cfg->base_weight,
    };
    pol_iwr *r = NULL;
    base_err e = pol_iwr_new(&ic, &r);
    if (e == BASE_OK) {
        *out = r;
    }
    return e;
}

static void iwr_free(void *l)
{
    pol_iwr_free(l);
}

static base_err iwr_scores(const void *l, const float *x, uint32_t x_stride, uint32_t n,
                           const uint32_t *action, const float *base_logit, double *out_s,
                           double *out_width)
{
    (void)out_width; /* no widths: always NULL */
    return pol_iwr_scores(l, x, x_stride, n, action, base_logit, out_s);
}

static base_err iwr_learn(void *l, const base_decision *d, uint32_t x_stride, double reward,
                          const double *rewards)
{
    return pol_iwr_learn(l, d, x_stride, reward, rewards);
}

static const float *iwr_weights(const void *l, uint32_t a)
{
    return pol_iwr_weights(l, a);
}

static uint64_t iwr_checksum(const void *l, uint64_t hash)
{
    return pol_iwr_checksum(l, hash);
}

static uint32_t iwr_n_params(const void *l)
{
    return pol_iwr_n_params(l);
}

static uint32_t iwr_n_state(const void *l)
{
    return pol_iwr_n_state(l);
}

static void iwr_export(const void *l, base_snapshot *m)
{
    pol_iwr_export(l, m);
}

static base_err iwr_import(void *l, const base_snapshot *m)
{
    return pol_iwr_import(l, m);
}

static base_err pg_new(pol_head_config *cfg, void **out)
{
    pol_pg *g = NULL;
    base_err e =
        pol_pg_new(cfg->dim, cfg->n_actions, cfg->temperature, cfg->learning_rate, cfg->kl, &g);
    if (e == BASE_OK) {
        *out = g;
    }
    return e;
}

static void pg_free(void *l)
{
    pol_pg_free(l);
}

static base_err pg_scores(const void *l, const float *x, uint32_t x_stride, uint32_t n,
                          const uint32_t *action, const float *base_logit, double *out_s,
                          double *out_width)
{
    (void)out_width; /* no widths: always NULL */
    if (x_stride != 0) {
        return BASE_EINVAL; /* pg learns per action: no open action sets */
    }
    return pol_pg_scores(l, x, n, action, base_logit, out_s);
}

static base_err pg_learn(void *l, const base_decision *d, uint32_t x_stride, double reward,
                         const double *rewards)
{
    if (x_stride != 0) {
        return BASE_EINVAL;
    }
    return pol_pg_learn(l, d, reward, rewards);
}

static const float *pg_weights(const void *l, uint32_t a)
{
    return pol_pg_weights(l, a);
}

static uint64_t pg_checksum(const void *l, uint64_t hash)
{
    return pol_pg_checksum(l, hash);
}

static uint32_t pg_n_params(const void *l)
{
    return pol_pg_n_params(l);
}

static uint32_t pg_n_state(const void *l)
{
    return pol_pg_n_state(l);
}

static void pg_export(const void *l, base_snapshot *m)
{
    pol_pg_export(l, m);
}

static base_err pg_import(void *l, const base_snapshot *m)
{
    return pol_pg_import(l, m);
}

static const pol_learner_ops learners[] = {
    [POL_LEARNER_RIDGE] =
        {
            .name = POL_RIDGE_NAME,
            .default_explorer = POL_EXPLORE_GREEDY,
            .default_epsilon = POL_RIDGE_DEFAULT_EPSILON,
            .default_learning_rate = POL_IWR_DEFAULT_LR, /* unused; what configs have reported */
            .width = true,
            .exact_max = POL_RIDGE_EXACT_MAX,
            .open = true,
            .new = ridge_new,
            .free = ridge_free,
            .scores = ridge_scores,
            .learn = ridge_learn,
            .weights = ridge_weights,
            .checksum = ridge_checksum,
            .n_params = ridge_n_params,
            .n_state = ridge_n_state,
            .export = ridge_export,
            .import = ridge_import,
            .seeded = ridge_seeded,
        },
    [POL_LEARNER_PG] =
        {
            .name = POL_PG_NAME,
            .default_explorer = POL_EXPLORE_SOFTMAX,
            .default_epsilon = POL_PG_DEFAULT_EPSILON,
            .default_learning_rate = POL_PG_DEFAULT_LR,
            .logits = true,
            .new = pg_new,
            .free = pg_free,
            .scores = pg_scores,
            .learn = pg_learn,
            .weights = pg_weights,
            .checksum = pg_checksum,
            .n_params = pg_n_params,
            .n_state = pg_n_state,
            .export = pg_export,
            .import = pg_import,
        },
    [POL_LEARNER_IWR] =
        {
            .name = POL_IWR_NAME,
            .default_explorer = POL_EXPLORE_GREEDY,
            .default_epsilon = POL_IWR_DEFAULT_EPSILON,
            .default_learning_rate = POL_IWR_DEFAULT_LR,
            .open = true,
            .new = iwr_new,
            .free = iwr_free,
            .scores = iwr_scores,
            .learn = iwr_learn,
            .weights = iwr_weights,
            .checksum = iwr_checksum,
            .n_params = iwr_n_params,
            .n_state = iwr_n_state,
            .export = iwr_export,
            .import = iwr_import,
        },
};

const pol_learner_ops *pol_learner_ops_of(pol_learner l)
{
    return (unsigned)l < sizeof(learners) / sizeof(learners[0]) ? &learners[l] : NULL;
}
