#ifndef POLICY_IWR_H
#define POLICY_IWR_H

/*
 * The "iwr" learner: importance-weighted reward regression, one linear model
 * per action, trained by online SGD on squared loss with the three devices
 * that make Vowpal Wabbit robust to feature scale (docs/algorithms.md):
 * per-coordinate adaptive steps (AdaGrad), normalized updates (Ross,
 * Mineiro and Langford 2013) and importance-invariant updates (Karampatziakis
 * and Langford 2011).
 *
 * Features of candidate c (action a) in context x, p = dim + 2 values:
 *     phi_c = [ x (dim values), p_base(c), 1 ]
 * with p_base(c) = softmax(base_logit / T)[c] - 1/n over the n candidates
 * (centred, as in policy/ridge.h). No projection: an update costs O(p).
 *
 * Invariants:
 * 1. The score of candidate c is w_a . phi_c, a predicted reward. Weights
 *    start at [0..0, base_weight, prior_mean], so before any data the top
 *    score is the base model's top candidate.
 * 2. scale[j] = max |phi_j| over every example learned from (shared by all
 *    actions: they see the same context); acc[a][j] >= 0; t >= 0 and
 *    norm_sum >= 0.
 * 3. Multiplying a context coordinate by c > 0 in every example divides its
 *    weights by c and leaves every score unchanged (exactly, in exact
 *    arithmetic; bit-for-bit when c is a power of two).
 * 4. One update moves the example's own prediction toward its target and
 *    never past it, whatever its importance weight.
 *
 * Importance weight of a bandit example: h = min(1 / mu(c), POL_IWR_IW_MAX),
 * mu(c) the logged propensity of the chosen candidate. Full information:
 * every candidate, h = 1.
 *
 * Parameters exported: w as floats (n_actions x p, action-major). State:
 *     [t, norm_sum, scale (p), w (n_actions x p), acc (n_actions x p)]
 * as doubles, e.g. dim 2, 1 action: [t, N, s0, s1, s2, s3, w0..w3, G0..G3].
 *
 * Threads: none inside; const functions may run concurrently with each
 * other, the others need exclusive access.
 */

#include <stdint.h>

#include "base/err.h"
#include "base/record.h"

#define POL_IWR_NAME "iwr"
#define POL_IWR_EXTRA 2     /* p_base and the bias */
#define POL_IWR_IW_MAX 10.0 /* cap of the importance weight 1 / mu(c) */

typedef struct pol_iwr pol_iwr;

typedef struct pol_iwr_config {
    uint32_t dim;         /* 1..BASE_DIM_MAX */
    uint32_t n_actions;   /* 1..BASE_ACTIONS_MAX */
    double temperature;   /* of the base softmax, > 0 */
    double learning_rate; /* > 0 */
    double prior_mean;    /* expected reward before any data */
    double base_weight;   /* initial coefficient of p_base */
} pol_iwr_config;

/* Return: BASE_OK; BASE_EINVAL for a non-finite or out-of-range value; BASE_ENOMEM. */
base_err pol_iwr_new(const pol_iwr_config *cfg, pol_iwr **out);
void pol_iwr_free(pol_iwr *r);

/*
 * pol_iwr_scores() - predicted reward of each of @n candidates into @out_s.
 * @x: [dim]   @action: [n] indices < n_actions (checked by the caller)
 * @x_stride: 0, or one context per candidate at x + c * x_stride (as
 * pol_ridge_scores(); pol_iwr_learn() reads d->embedding the same way)
 * Return: BASE_OK; BASE_ENUMERIC if an input or a score is not finite.
 */
base_err pol_iwr_scores(const pol_iwr *r, const float *x, uint32_t x_stride, uint32_t n,
                        const uint32_t *action, const float *base_logit, double *out_s);

/*
 * pol_iwr_learn() - update with the chosen candidate's @reward, weighted by
 * the capped inverse of its logged propensity (@rewards NULL), or with the
 * reward of every candidate at weight 1 (@rewards [n_cand], full
 * information; @reward ignored).
 * Return: BASE_OK; BASE_EINVAL for a logged propensity outside (0, 1];
 *         BASE_ENUMERIC if an input or the update is not finite. A bandit
 *         update changes nothing on error. A full-information update checks
 *         every input first and applies the candidates one at a time, each
 *         all or nothing, so only a numeric overflow in a later candidate
 *         can leave the earlier ones applied.
 */
base_err pol_iwr_learn(pol_iwr *r, const base_decision *d, uint32_t x_stride, double reward,
                       const double *rewards);

/* Borrowed [p] row of action @a (float mirror), or NULL if @a >= n_actions. */
const float *pol_iwr_weights(const pol_iwr *r, uint32_t a);
uint64_t pol_iwr_checksum(const pol_iwr *r, uint64_t hash);
uint32_t pol_iwr_n_params(const pol_iwr *r);
uint32_t pol_iwr_n_state(const pol_iwr *r);
/* Copy parameters and state into @m (sized by the two functions above). */
void pol_iwr_export(const pol_iwr *r, base_snapshot *m);
/*
 * Load them back; the weights come from the state (the float params are
 * their rounded copy and are not read).
 * Return: BASE_OK; BASE_EINVAL (shape, a negative accumulator, scale or
 *         total); BASE_ENUMERIC (a non-finite value). Unchanged on error.
 */
base_err pol_iwr_import(pol_iwr *r, const base_snapshot *m);

#endif
