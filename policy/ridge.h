#ifndef POLICY_RIDGE_H
#define POLICY_RIDGE_H

/*
 * The "ridge" learner: Bayesian linear regression of the reward, one model
 * per action, updated exactly (recursive least squares, Sherman-Morrison).
 *
 * Features of candidate c (action a) in context x:
 *     phi_c = [ z(x) (m values), p_base(c), 1 ]          p = m + 2 values
 * where z(x) = x when dim <= exact_max (POL_RIDGE_EXACT_MAX by default), else a fixed random
 * projection of x to POL_RIDGE_SKETCH_DIM values (entries +-1/sqrt(dim),
 * seeded), and p_base(c) = softmax(base_logit / T)[c] - 1/n over the n
 * candidates (centred, so a flat base model contributes nothing).
 *
 * Model of action a: reward ~ theta_a . phi + noise, prior theta_a ~
 * N(theta_0, sigma^2 / lambda I) with theta_0 = [0..0, base_weight,
 * prior_mean]: before any data every action's expected reward is
 * prior_mean + base_weight * p_base, so the greedy choice is the base
 * model's top candidate and untried actions look optimistic. Posterior:
 *     P_a = (lambda I + sum phi phi^T)^-1,  theta_a = P_a (lambda theta_0 + sum r phi).
 * Scores are posterior means; widths sqrt(phi^T P_a phi) serve UCB.
 *
 * Parameters exported: theta as floats (n_actions x p). State: theta as
 * doubles, then every P_a (p x p doubles, lower triangle maintained).
 * Memory: n_actions * p^2 * 8 bytes.
 *
 * Threads: none inside; const functions may run concurrently with each
 * other, the others need exclusive access.
 */

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "base/record.h"

#define POL_RIDGE_NAME "ridge"
#define POL_RIDGE_EXACT_MAX 256       /* longer contexts are projected */
#define POL_RIDGE_SKETCH_DIM 128      /* length of the projection */
#define POL_RIDGE_EXTRA 2             /* p_base and the bias */
#define POL_RIDGE_OPEN_EXACT_MAX 1024 /* an open action set's map: exact up to this */
#define POL_RIDGE_P_MAX (POL_RIDGE_OPEN_EXACT_MAX + POL_RIDGE_EXTRA)

typedef struct pol_ridge pol_ridge;

typedef struct pol_ridge_config {
    uint32_t dim;
    uint32_t n_actions;
    double temperature; /* of the base softmax, > 0 */
    double lambda;      /* prior precision; <= 0: p / 2 */
    double prior_mean;  /* expected reward before any data */
    double base_weight; /* prior coefficient of p_base */
    uint64_t seed;      /* of the projection */
    uint32_t exact_max; /* longest context taken without a projection; 0: POL_RIDGE_EXACT_MAX
                           (an open action set's head: POL_RIDGE_OPEN_EXACT_MAX) */
} pol_ridge_config;

/* Return: BASE_OK; BASE_EINVAL for a non-finite or out-of-range value; BASE_ENOMEM. */
base_err pol_ridge_new(const pol_ridge_config *cfg, pol_ridge **out);
void pol_ridge_free(pol_ridge *r);

/* Features per candidate (p) and the effective prior precision. */
uint32_t pol_ridge_feature_dim(const pol_ridge *r);
/* Whether it learns a random projection of the context (drawn from the seed). */
bool pol_ridge_projects(const pol_ridge *r);
double pol_ridge_lambda(const pol_ridge *r);

/*
 * pol_ridge_scores() - posterior mean reward of each candidate into
 * @out_mean, and (if @out_width is not NULL) sqrt(phi^T P_a phi).
 * @x: [dim], every candidate's context; or with @x_stride > 0 one context
 * per candidate, candidate c's at x + c * x_stride (an open action set's
 * rows, policy/amap.h). pol_ridge_learn() reads d->embedding the same way.
 * Return: BASE_OK; BASE_ENUMERIC if an input or result is not finite.
 */
base_err pol_ridge_scores(const pol_ridge *r, const float *x, uint32_t x_stride, uint32_t n,
                          const uint32_t *action, const float *base_logit, double *out_mean,
                          double *out_width);

/*
 * pol_ridge_learn() - update with the chosen candidate's @reward (@rewards
 * NULL), or with the reward of every candidate (@rewards [n_cand], full
 * information). Unweighted: each action's regression conditions on the
 * context, so the logging policy does not bias it (docs/algorithms.md).
 * Return: BASE_OK; BASE_ENUMERIC: a bandit update then changed nothing; a
 *         full-information one (rlfeed bench learn's, never the service's) applies
 *         the candidates one at a time, each all or nothing, so an overflow in a
 *         later candidate leaves the earlier ones applied, as pol_iwr_learn() does.
 */
base_err pol_ridge_learn(pol_ridge *r, const base_decision *d, uint32_t x_stride, double reward,
                         const double *rewards);

const float *pol_ridge_weights(const pol_ridge *r, uint32_t a);
uint64_t pol_ridge_checksum(const pol_ridge *r, uint64_t hash);
uint32_t pol_ridge_n_params(const pol_ridge *r);
uint32_t pol_ridge_n_state(const pol_ridge *r);
void pol_ridge_export(const pol_ridge *r, base_snapshot *m);
/* Return: BASE_OK; BASE_EINVAL (shape); BASE_ENUMERIC (non-finite values). */
base_err pol_ridge_import(pol_ridge *r, const base_snapshot *m);

#endif
