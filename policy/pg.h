#ifndef POLICY_PG_H
#define POLICY_PG_H

/*
 * The "pg" learner: a per-action linear correction to the base logits,
 *     s(c) = base_logit[c] / T + w_a . x + b_a,
 * trained by importance-weighted softmax policy gradient with a reward
 * baseline and per-coordinate AdaGrad steps. Its scores are logits: the head
 * serves them through a softmax explorer. Update rule and defaults:
 * docs/algorithms.md.
 *
 * Objective per decision: E_{a~pi}[r] - kl * KL(pi || pi_base), with
 * pi = softmax(s) and pi_base = softmax(base_logit / T) over the decision's
 * candidates. With zero weights pi = pi_base and the KL term's gradient is
 * exactly 0, so kl only pulls back a head that has moved.
 *
 * Parameters: n_actions x (dim + 1) floats, action-major, bias last. State:
 * [EMA numerator, EMA mass, AdaGrad sums (n_actions x (dim + 1))].
 *
 * Threads: none inside; const functions may run concurrently with each
 * other, the others need exclusive access.
 */

#include <stdint.h>

#include "base/err.h"
#include "base/record.h"

#define POL_PG_NAME "pg"

typedef struct pol_pg pol_pg;

/* Return: BASE_OK; BASE_EINVAL for lr <= 0, T <= 0 or kl < 0 (or not finite); BASE_ENOMEM. */
base_err pol_pg_new(uint32_t dim, uint32_t n_actions, double temperature, double learning_rate,
                    double kl, pol_pg **out);
void pol_pg_free(pol_pg *g);

/* Logits of @n candidates into @out_s. Return: BASE_OK; BASE_ENUMERIC if not finite. */
base_err pol_pg_scores(const pol_pg *g, const float *x, uint32_t n, const uint32_t *action,
                       const float *base_logit, double *out_s);

/*
 * pol_pg_learn() - one joined example. @rewards is NULL for bandit feedback
 * (the chosen candidate's @reward, importance-weighted by its logged pmf),
 * or [n_cand] rewards of every candidate (full information: the exact
 * gradient of the expected reward; @reward is ignored).
 * Return: BASE_OK; BASE_EINVAL for a bad shape or propensity; BASE_ENUMERIC.
 */
base_err pol_pg_learn(pol_pg *g, const base_decision *d, double reward, const double *rewards);

/*
 * pol_pg_kl() - KL(softmax(@s) || softmax(@s_base)) over @n >= 1 finite
 * logits, in nats, computed from log-softmaxes (no log of 0).
 */
double pol_pg_kl(const double *s, const double *s_base, uint32_t n);

/*
 * pol_pg_kl_grad() - the gradient of -@beta * KL(pi || pi_base) with respect
 * to the logits @s into @out_g [n]:
 *     out_g[k] = -beta pi_k (log(pi_k / pi_base_k) - sum_j pi_j log(pi_j / pi_base_j)).
 * Exactly 0 when @s equals @s_base element by element.
 */
void pol_pg_kl_grad(const double *s, const double *s_base, uint32_t n, double beta, double *out_g);

const float *pol_pg_weights(const pol_pg *g, uint32_t a);
uint64_t pol_pg_checksum(const pol_pg *g, uint64_t hash);
uint32_t pol_pg_n_params(const pol_pg *g);
uint32_t pol_pg_n_state(const pol_pg *g);
/* Copy parameters and state into @m (sized by the two functions above). */
void pol_pg_export(const pol_pg *g, base_snapshot *m);
/* Load them back. Return: BASE_OK; BASE_EINVAL (shape, domain); BASE_ENUMERIC. */
base_err pol_pg_import(pol_pg *g, const base_snapshot *m);

#endif
