#ifndef EVAL_INTERVAL_H
#define EVAL_INTERVAL_H

/*
 * Internal to eval/: the nine statistics of an evaluation and their
 * intervals, from a table of per-sample terms.
 *
 * Terms: row i of the table (EV_T_N doubles) holds sample i's contribution
 * to every estimator, for policy p = 0, 1:
 *     EV_T_WR0 + p   w_p r           (IPS, SNIPS numerator)
 *     EV_T_W0 + p    w_p             (SNIPS denominator)
 *     EV_T_DR0 + p   the DR term     sum_j pi_p(j) q(j) + w_p (r - q(c))
 * Statistics (EV_N_STATS): index EV_N_ESTIMATORS * p + e is estimator e of
 * policy p; EV_STAT_DIFF + e is estimator e of policy 0 minus policy 1.
 *
 * Every statistic and its standard error is a function of the columns'
 * sums and cross-products: a statistic's influence function is a linear
 * combination L . row (for SNIPS, w (r - V) / mean(w), the delta method),
 * so its variance is L' S L from the second moments S. A bootstrap
 * replicate therefore costs one pass over its drawn rows, accumulating 6
 * sums and 21 cross-products, and yields both the replicate's statistics
 * and their standard errors (for the studentized interval). The table is
 * centred first (columns minus their means), which keeps the moments well
 * conditioned.
 *
 * Pure; no state. The methods are described in eval/ope.h.
 */

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "eval/ope.h"

enum {
    EV_T_WR0 = 0,
    EV_T_WR1,
    EV_T_W0,
    EV_T_W1,
    EV_T_DR0,
    EV_T_DR1,
    EV_T_N, /* columns */
};

#define EV_N_STATS (3 * EV_N_ESTIMATORS)
#define EV_STAT_DIFF (2 * EV_N_ESTIMATORS) /* first difference statistic */

/*
 * ev_intervals() - the nine statistics of the @n (>= 1) rows @terms
 * [n x EV_T_N] and their @kind intervals at two-sided level @confidence,
 * into @out (est, lo, hi, se). @n_boot and @seed are used by the bootstrap
 * kinds only. @terms is centred in place (its column means subtracted).
 * Return: BASE_OK; BASE_ENOMEM (@out untouched).
 */
base_err ev_intervals(double *terms, size_t n, ev_interval_kind kind, double confidence,
                      uint32_t n_boot, uint64_t seed, ev_interval out[EV_N_STATS]);

#endif
