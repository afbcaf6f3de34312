#ifndef POLICY_EXPLORE_H
#define POLICY_EXPLORE_H

/*
 * The explorers: each turns a learner's scores for n candidates into the
 * served pmf (docs/algorithms.md, section 5). The head looks its explorer up
 * once, at creation, in a table indexed by pol_explorer; adding an explorer
 * is adding its enum value (policy/head.h) and one table entry.
 *
 * Invariants of every pmf:
 * 1. It is exact: the logged pmf[chosen] is the true propensity.
 * 2. Every entry is at least eps / n (the floor), and the entries sum to 1
 *    up to float rounding (each costs at most 2^-24 of its entry).
 * 3. It is a function of the scores and the configuration only.
 *
 * Requirements on the learner, checked by pol_head_new(): softmax needs
 * scores that are logits; ucb needs the learner's posterior widths.
 *
 * Pure and thread-safe: the table is constant and the functions keep no
 * state.
 */

#include <stdbool.h>
#include <stdint.h>

#include "policy/head.h"

typedef struct pol_explorer_ops {
    const char *name;  /* as in configs: "greedy", ... */
    bool needs_logits; /* the scores must be logits (softmax) */
    bool needs_width;  /* needs the learner's posterior widths (ucb) */
    /*
     * pmf() - the served pmf into @out_pmf [n] from the scores @s [n]
     * (finite; scratch: the explorer may overwrite them), the widths @width
     * [n] (NULL unless needs_width) and the resolved @cfg (epsilon and the
     * explorer's own parameters). @n is 1..BASE_CAND_MAX. NULL for "auto",
     * which pol_head_new() resolves to the learner's default.
     */
    void (*pmf)(double *s, const double *width, uint32_t n, const pol_head_config *cfg,
                float *out_pmf);
} pol_explorer_ops;

/*
 * pol_explorer_ops_of() - the table entry of @x (borrowed, static), or NULL
 * if @x is not a pol_explorer value. Values are dense from 0, so looping up
 * from 0 until NULL visits every explorer.
 */
const pol_explorer_ops *pol_explorer_ops_of(pol_explorer x);

#endif
