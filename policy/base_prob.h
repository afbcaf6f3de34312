#ifndef POLICY_BASE_PROB_H
#define POLICY_BASE_PROB_H

/*
 * The base-model feature the reward-regression learners (ridge, iwr) share.
 * Pure and thread-safe. (Not "features.h": policy/ is on the include path,
 * and glibc includes its own <features.h>.)
 */

#include <stdint.h>

#include "base/err.h"

/*
 * pol_base_probs() - the base model's probability of each of @n candidates,
 * centred: softmax(base_logit / @temperature)[c] - 1/n into @out [n], so a
 * flat (uninformative) base contributes nothing. Subtracting the max keeps
 * exp() <= 1.
 * Return: BASE_OK; BASE_ENUMERIC for a non-finite logit (nothing written
 *         past the first bad one matters: callers discard @out then).
 */
base_err pol_base_probs(const float *base_logit, uint32_t n, double temperature, double *out);

/*
 * pol_base_softmax() - the base model's own distribution over @n (1..) candidates:
 * softmax(base_logit / @temperature) into @out [n] (explanations).
 * Return: BASE_OK; BASE_ENUMERIC for a non-finite logit (@out then unspecified).
 */
base_err pol_base_softmax(const float *base_logit, uint32_t n, double temperature, float *out);

#endif
