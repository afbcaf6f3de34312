#include "reward/fate.h"

#include <string.h>

static const char *const fate_names[RWD_FATE_COUNT] = {"applied", "superseded", "late",
                                                       "not_joined"};

const char *rwd_fate_name(rwd_fate f)
{
    return (unsigned)f < RWD_FATE_COUNT ? fate_names[f] : "unknown";
}

void rwd_outcome_fates(const rwd_spec *spec, const base_decision *d, int64_t closed_at_ms,
                       const base_outcome *const *o, uint32_t n, rwd_fate *out_fates)
{
    /* As rwd_join_new() resolves it. */
    int64_t memory = spec->late_memory_ms < 0 ? spec->window_ms : spec->late_memory_ms;
    for (uint32_t i = 0; i < n; i++) {
        int64_t at = o[i]->arrived_ms;
        if (at < d->ts_ms && at + spec->backward_window_ms < d->ts_ms) {
            /* Held until arrived + backward window inclusive (join_memory.c). */
            out_fates[i] = RWD_FATE_NOT_JOINED;
        } else if (at < closed_at_ms) {
            out_fates[i] = RWD_FATE_APPLIED;
        } else if (at < closed_at_ms + memory) {
            out_fates[i] = RWD_FATE_LATE;
        } else {
            out_fates[i] = RWD_FATE_NOT_JOINED;
        }
    }
    /*
     * A correction deactivates every earlier contribution with the outcome_id
     * it supersedes, if one is there when it is applied (join.c,
     * apply_to_entry and attach_held); in log order, earlier means before it.
     */
    for (uint32_t i = 0; i < n; i++) {
        if (out_fates[i] != RWD_FATE_APPLIED || o[i]->supersedes[0] == '\0') {
            continue;
        }
        for (uint32_t k = 0; k < i; k++) {
            if ((out_fates[k] == RWD_FATE_APPLIED || out_fates[k] == RWD_FATE_SUPERSEDED) &&
                strcmp(o[k]->outcome_id, o[i]->supersedes) == 0) {
                out_fates[k] = RWD_FATE_SUPERSEDED;
            }
        }
    }
}
