#ifndef EVAL_REWARD_MODEL_H
#define EVAL_REWARD_MODEL_H

/*
 * Internal to eval/: DR's cross-fitted reward model (the model itself is
 * specified in eval/ope.h). For each fold k it fits one ridge regression
 * per action id on the chosen candidates of the other folds and predicts
 * every candidate of fold k, so no prediction comes from a model that saw
 * its sample.
 *
 * Shapes: m = min(proj_dim, dim) projected context values, p = m + 2
 * features. Memory: n * m doubles of projected contexts, and per distinct
 * chosen action a p x p normal matrix (lower triangle used), its right-hand
 * side and solution (p each) and a count.
 *
 * Pure; the caller has validated @cfg and the samples (ev_evaluate()).
 */

#include <stddef.h>

#include "base/err.h"
#include "eval/ope.h"

/*
 * ev_reward_model_crossfit() - for every sample i, the reward model's
 * predictions summarised into @out_q [n x 3]:
 *     out_q[3i + p] = sum_j target[p][j] q_i(j)    (p = 0, 1)
 *     out_q[3i + 2] = q_i(chosen)
 * Return: BASE_OK; BASE_ENUMERIC if a Cholesky factorisation fails (@errbuf
 *         says for which action); BASE_ENOMEM.
 */
base_err ev_reward_model_crossfit(const ev_config *cfg, const ev_sample *s, size_t n, double *out_q,
                                  char *errbuf, size_t errlen);

#endif
