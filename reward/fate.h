#ifndef REWARD_FATE_H
#define REWARD_FATE_H

/*
 * What became of the outcomes addressed to one decision, for explain
 * (docs/protocol.md, "explain"). The join keeps the outcomes applied to a
 * pending decision (rwd_join_peek_outcomes(), reward/join.h); once the
 * decision is joined, only the outcome stream has them, and
 * rwd_outcome_fates() tells from those records and the decision what the
 * join did with each, by the rules of reward/join.h:
 *   applied     it counts in the reward: matched or corrected while the
 *               window was open, or held early and attached
 *   superseded  it was applied, then a later applied outcome named its
 *               outcome_id in supersedes: it no longer counts
 *   late        it arrived once the window had closed, while the decision
 *               was remembered (late_memory_ms): logged, never learned
 *   not joined  it arrived before the decision by more than
 *               backward_window_ms (no longer held when the decision came),
 *               or after the decision was forgotten: it was never joined to
 *               this decision (it may be another's with the same event id)
 * Only outcomes the join logs (matched, corrected, early, late) have a
 * record; duplicates and rejected outcomes leave none and are never listed.
 * Outcomes addressed to the decision's conversation are not covered: their
 * effect is the joined record's credit and share.
 *
 * Pure functions; thread-safe.
 */

#include <stdint.h>

#include "base/record.h"
#include "reward/spec.h"

typedef enum rwd_fate {
    RWD_FATE_APPLIED = 0,
    RWD_FATE_SUPERSEDED,
    RWD_FATE_LATE,
    RWD_FATE_NOT_JOINED,
    RWD_FATE_COUNT
} rwd_fate;

/* "applied", "superseded", "late", "not_joined" ("unknown" past the enum). */
const char *rwd_fate_name(rwd_fate f);

/* One outcome addressed to a decision, as explain lists it. */
typedef struct rwd_outcome_view {
    char signal[BASE_NAME_MAX + 1];
    char outcome_id[BASE_ID_MAX + 1]; /* "" when it had none */
    double value;                     /* as observed (1 for plain events) */
    int64_t ts_ms;                    /* the outcome's time (client's, else its arrival) */
    rwd_fate fate;
} rwd_outcome_view;

/*
 * rwd_outcome_fates() - the fate of each of the @n outcome records @o
 * (borrowed), all addressed to decision @d's event id, in log (lsn) order,
 * for a decision whose window closed at @closed_at_ms under @spec, into
 * @out_fates[0..n). By arrival (arrived_ms): before @d's time (ts_ms, when
 * the join received it) less backward_window_ms, not joined; then, before
 * @closed_at_ms, applied (or superseded); then, before @closed_at_ms plus
 * late_memory_ms, late; later, not joined.
 */
void rwd_outcome_fates(const rwd_spec *spec, const base_decision *d, int64_t closed_at_ms,
                       const base_outcome *const *o, uint32_t n, rwd_fate *out_fates);

#endif
