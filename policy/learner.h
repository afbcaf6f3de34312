#ifndef POLICY_LEARNER_H
#define POLICY_LEARNER_H

/*
 * The learner interface the head drives, and the table of learners
 * (docs/algorithms.md). The head looks its learner up once, at creation, in
 * a table indexed by pol_learner and then calls only through it; adding a
 * learner is adding its module, its enum value (policy/head.h) and one table
 * entry in policy/learner.c.
 *
 * Each entry adapts one learner module (policy/ridge.h, iwr.h, pg.h) to the
 * head's untyped calls; the module's own header holds the contracts, which
 * the functions below inherit:
 * 1. new() builds from the resolved head configuration and may resolve more
 *    of it (ridge: lambda); free() accepts NULL.
 * 2. scores() writes one score per candidate, in double, and out_width only
 *    when the entry has width and the caller passes it (else NULL).
 * 3. learn(), import() leave the learner unchanged on error (iwr's
 *    full-information update excepted: policy/iwr.h).
 * 4. scores() and learn() take one context for every candidate (x_stride
 *    0), or with x_stride > 0 one per candidate, candidate c's at x + c *
 *    x_stride (an open action set, policy/amap.h). open says whether the
 *    learner can; the others return BASE_EINVAL.
 * 5. checksum() continues an FNV-1a state (base_fnv1a64) over the bytes of
 *    params then state, as export() lays them out.
 *
 * Threads: the table is constant. scores(), weights(), checksum(),
 * n_params(), n_state() and export() may run concurrently with each other;
 * learn() and import() need exclusive access.
 */

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "base/record.h"
#include "policy/head.h"

typedef struct pol_learner_ops {
    const char *name;              /* as in configs and model records: "ridge", ... */
    pol_explorer default_explorer; /* what "auto" resolves to */
    double default_epsilon;        /* when the config's is < 0 */
    double default_learning_rate;  /* when the config's is <= 0 (reported even if unused) */
    bool logits;                   /* scores are logits: softmax may serve them */
    bool width;                    /* scores() gives posterior widths: ucb may serve them */
    uint32_t exact_max;            /* longest context learned without a projection; 0: any */
    bool open;                     /* takes one context per candidate (x_stride > 0) */

    base_err (*new)(pol_head_config *cfg, void **out);
    void (*free)(void *l);
    base_err (*scores)(const void *l, const float *x, uint32_t x_stride, uint32_t n,
                       const uint32_t *action, const float *base_logit, double *out_s,
                       double *out_width);
    base_err (*learn)(void *l, const base_decision *d, uint32_t x_stride, double reward,
                      const double *rewards);
    const float *(*weights)(const void *l, uint32_t a);
    uint64_t (*checksum)(const void *l, uint64_t hash);
    uint32_t (*n_params)(const void *l);
    uint32_t (*n_state)(const void *l);
    void (*export)(const void *l, base_snapshot *m);
    base_err (*import)(void *l, const base_snapshot *m);
    /* Whether its parameters live in a space drawn from the seed (a projection); NULL: no. */
    bool (*seeded)(const void *l);
} pol_learner_ops;

/*
 * pol_learner_ops_of() - the table entry of @l (borrowed, static), or NULL
 * if @l is not a pol_learner value. Values are dense from 0, so looping up
 * from 0 until NULL visits every learner.
 */
const pol_learner_ops *pol_learner_ops_of(pol_learner l);

#endif
