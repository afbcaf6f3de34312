#ifndef POLICY_AMAP_H
#define POLICY_AMAP_H

/*
 * The action map of an open action set (docs/algorithms.md, "Open action
 * sets"): the features a shared head's learner sees for one (context,
 * candidate) pair, so that one model scores any candidate its features
 * describe, including one never seen before.
 *
 * For a context x (dim values) and a candidate's features z (action_dim
 * values):
 *     phi(x, z) = [ v (S), u_i v_j for i < R, j < S (row by row) ]
 * with u = x when dim <= R, else a fixed random projection of x to R values
 * (entries +-1/sqrt(dim), seeded), and v = z when action_dim <= S, else a
 * projection of z to S values the same way. S = min(action_dim,
 * POL_AMAP_ACTION_MAX). R is the configured interaction_dim, or by default
 * the largest R <= dim that keeps the output within the budget,
 * S + R S <= POL_AMAP_BUDGET (ridge learns a map that long exactly:
 * POL_RIDGE_OPEN_EXACT_MAX). The u_i v_j terms are what lets the score of a
 * candidate depend on the context: with one-hot z, [v, u v] is exactly a
 * linear model per action. There is no term of the context alone: it would
 * shift every candidate's score alike, so it cannot change the ranking, but
 * it would let a tried candidate's failures lower the score of one never
 * tried (docs/algorithms.md section 13 measures what that cost).
 *
 * Invariants: a pure function of its configuration (the projections are
 * drawn from a splitmix64 stream of the seed); output length S + R S,
 * at most POL_FMAP_OUT_MAX.
 *
 * Threads: none inside; pol_amap_apply() is const and may run concurrently.
 */

#include <stdint.h>

#include "base/err.h"

#define POL_AMAP_ACTION_MAX 15 /* S: the action features' share of the interaction */
#define POL_AMAP_BUDGET 1024   /* the default R's output budget */

typedef struct pol_amap pol_amap;

typedef struct pol_amap_config {
    uint32_t dim;             /* context length, 1..BASE_DIM_MAX */
    uint32_t action_dim;      /* candidate features, 1..BASE_ACTION_DIM_MAX */
    uint32_t interaction_dim; /* R, 1..dim; 0: the default for @budget */
    uint32_t budget;          /* the default R's output budget, >= S + 2 */
    uint64_t seed;            /* draws the projections */
} pol_amap_config;

/*
 * pol_amap_resolve() - @c with interaction_dim resolved (0 replaced by the
 * default) into *out_r and the output length into *out_len.
 * Return: BASE_OK; BASE_EINVAL for a length out of range, an
 *         interaction_dim above dim, or an output past POL_FMAP_OUT_MAX.
 */
base_err pol_amap_resolve(const pol_amap_config *c, uint32_t *out_r, uint32_t *out_len);

/* Return: BASE_OK; the errors of pol_amap_resolve(); BASE_ENOMEM. */
base_err pol_amap_new(const pol_amap_config *c, pol_amap **out);
void pol_amap_free(pol_amap *m);

uint32_t pol_amap_len(const pol_amap *m);

/*
 * pol_amap_apply() - the features of @n candidates: row c of @out
 * (pol_amap_len() values) is phi(@x, @z + c * action_dim).
 * @x: [dim]   @z: [n x action_dim]   @out: [n x len]
 * Return: BASE_OK; BASE_ENUMERIC if an input or output is not finite.
 */
base_err pol_amap_apply(const pol_amap *m, const float *x, const float *z, uint32_t n, float *out);

#endif
