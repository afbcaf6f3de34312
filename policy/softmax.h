#ifndef POLICY_SOFTMAX_H
#define POLICY_SOFTMAX_H

/*
 * The one softmax of the policy layer: the head's softmax explorer, pg's
 * policy and the base-model feature of ridge and iwr all use it.
 *
 * Invariants:
 * 1. The maximum is subtracted before exp(), so every exponential is in
 *    (0, 1] and nothing overflows; the largest is exactly 1, so the sum is
 *    in [1, n] for n >= 1 finite scores.
 * 2. Fixed order: the maximum, then exp() and the sum, by index. Same
 *    inputs, same bits.
 *
 * Callers normalise themselves when they mix the probabilities into another
 * expression: (1 - eps) * q / z and (1 - eps) * (q / z) round differently,
 * and the served pmf and learned weights must stay bit-identical.
 *
 * Pure and thread-safe. Scores in double; callers check finiteness.
 */

#include <stdint.h>

/*
 * pol_softmax_exp() - out_q[c] = exp(s[c] - max_k s[k]) for the @n finite
 * scores @s [n], into @out_q [n] (which may be @s itself).
 * Return: the sum of out_q (0 when @n is 0).
 */
double pol_softmax_exp(const double *s, uint32_t n, double *out_q);

/*
 * pol_softmax() - out[c] = softmax(s)[c] = out_q[c] / sum(out_q) for @n >= 1
 * finite scores @s [n], into @out [n] (which may be @s itself).
 */
void pol_softmax(const double *s, uint32_t n, double *out);

#endif
