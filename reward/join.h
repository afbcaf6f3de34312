#ifndef REWARD_JOIN_H
#define REWARD_JOIN_H

/*
 * The join of outcomes to decisions, and the reward spec that turns joined
 * outcomes into one scalar reward.
 *
 * A decision enters with rwd_join_add_decision() and stays pending for the
 * spec's window. Outcomes addressed to its event id accumulate on it. When the
 * window has closed (ts_ms + window_ms <= now), rwd_join_expire() emits a
 * joined example:
 *     reward = clip(sum over outcomes of weight(signal) * value, clip_min, clip_max)
 * or default_reward when no outcome arrived (defaulted = true).
 *
 * Rules:
 * 1. Outcomes with a non-empty outcome_id are idempotent: a second outcome
 *    with the same id on the same decision is reported RWD_DUPLICATE and
 *    changes nothing.
 * 2. An outcome for an event id that is not pending is RWD_UNKNOWN_EVENT
 *    and changes nothing.
 * 3. At most spec.max_outcomes per decision; past it, BASE_ELIMIT.
 * 4. Expiry is in decision-arrival order; decisions must arrive with
 *    non-decreasing ts_ms per join (the service clock guarantees it).
 *
 * States of a decision: PENDING -> JOINED [rwd_join_expire].
 * Threads: none inside; the caller serialises all calls on one join.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/record.h"

#define RWD_MAX_SIGNALS 32
#define RWD_MAX_OUTCOMES 1024 /* cap on spec.max_outcomes */

typedef struct rwd_signal {
    char name[BASE_NAME_MAX + 1];
    double weight;       /* reward contribution per unit of value */
} rwd_signal;

typedef struct rwd_spec {
    uint32_t n_signals;
    rwd_signal signal[RWD_MAX_SIGNALS];
    double clip_min;       /* default -1 */
    double clip_max;       /* default 1 */
    double default_reward; /* reward when the window closes with no outcome; default 0 */
    int64_t window_ms;     /* > 0 */
    uint32_t max_outcomes; /* per decision, 1..RWD_MAX_OUTCOMES; default 16 */
} rwd_spec;

/* Fills @spec with no signals and the defaults above (window 10 minutes). */
void rwd_spec_default(rwd_spec *spec);

/* Index of signal @name in @spec; *out_found says whether it exists. */
void rwd_spec_find(const rwd_spec *spec, const char *name, uint32_t *out_index, bool *out_found);

typedef struct rwd_join rwd_join;

/*
 * rwd_join_new() - an empty join for @spec (copied) holding at most
 * @max_pending decisions.
 * Return: BASE_OK; BASE_EINVAL for an invalid spec; BASE_ENOMEM.
 */
base_err rwd_join_new(const rwd_spec *spec, size_t max_pending, rwd_join **out);

/* Frees the join and every pending decision. Accepts NULL. */
void rwd_join_free(rwd_join *j);

/*
 * rwd_join_add_decision() - make @d pending. Takes @d on success; on failure
 * the caller still owns it.
 * Return: BASE_OK; BASE_EINVAL for an empty or already pending event id;
 *         BASE_ELIMIT when max_pending decisions are pending; BASE_ENOMEM.
 */
base_err rwd_join_add_decision(rwd_join *j, base_decision *d);

/* Whether a decision with @event_id is pending (*out_found). Changes nothing. */
void rwd_join_contains(const rwd_join *j, const char *event_id, bool *out_found);

typedef enum rwd_match {
    RWD_MATCHED = 0,     /* applied to a pending decision */
    RWD_DUPLICATE,       /* same outcome_id already applied: ignored */
    RWD_UNKNOWN_EVENT,   /* no pending decision with this event id: ignored */
} rwd_match;

/*
 * rwd_join_check_outcome() - what rwd_join_add_outcome() would do, without
 * changing anything. Same return codes. Applying an outcome never allocates,
 * so an add of the same outcome right after (no other call in between)
 * returns the same code and match.
 */
base_err rwd_join_check_outcome(const rwd_join *j, const base_outcome *o, rwd_match *out);

/*
 * rwd_join_add_outcome() - attach @o (copied) to its pending decision.
 * Return: BASE_OK with *out set; BASE_EINVAL if the signal is not in the spec
 *         or the value is not finite; BASE_ELIMIT if the decision already has
 *         max_outcomes outcomes; BASE_ENUMERIC if the running sum would
 *         overflow. On any error nothing changes.
 * The signal and value are validated before the event id is looked up, and a
 * duplicate is reported even when the decision is at max_outcomes.
 */
base_err rwd_join_add_outcome(rwd_join *j, const base_outcome *o, rwd_match *out);

/*
 * rwd_join_expire() - emit up to @max_out joined examples whose window has
 * closed at @now_ms, oldest first. Ownership of each passes to the caller.
 * Each example's joined_ts_ms is ts_ms + window_ms (when its window closed),
 * whatever @now_ms is. If an allocation fails, it stops early and the
 * decision stays pending for the next call.
 * Return: the number written to @out.
 */
size_t rwd_join_expire(rwd_join *j, int64_t now_ms, base_joined **out, size_t max_out);

typedef struct rwd_join_stats {
    uint64_t pending;       /* decisions waiting for their window to close */
    uint64_t joined;        /* joined examples emitted */
    uint64_t matched;       /* outcomes applied */
    uint64_t defaulted;     /* joined examples with no outcome */
    uint64_t duplicates;    /* outcomes ignored as duplicates */
    uint64_t unknown_event; /* outcomes for no pending decision */
} rwd_join_stats;

void rwd_join_get_stats(const rwd_join *j, rwd_join_stats *out);

#endif
