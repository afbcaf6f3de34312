#ifndef REWARD_JOIN_H
#define REWARD_JOIN_H

/*
 * The join: decisions wait for their outcomes, and each becomes one joined
 * example when its window closes. Semantics: docs/rewards.md.
 *
 * Decision lifecycle (ts = decision time, ta = activation time):
 *   PENDING  -> JOINED   [rwd_join_expire, when ts + window <= now]
 * A window is [ts, ts + window): from ts + window on, outcomes and activations
 * are classified as for a closed decision even before rwd_join_expire() has
 * emitted it, so results never depend on how promptly the caller expires.
 *   DEFERRED -> PENDING  [rwd_join_activate; its window restarts at ta]
 *   DEFERRED -> DROPPED  [rwd_join_expire, when ts + window <= now: counted
 *                         not_activated, no joined example]
 *   JOINED   -> FORGOTTEN late_memory_ms after its window closed; until then
 *                         outcomes for it are late, not unknown, and retries
 *                         of its outcome ids are duplicates (DROPPED alike)
 * Outcomes (rwd_join_add_outcome), decided in this order:
 *   a signal not in the spec            RWD_REJECT_SIGNAL
 *   a value the signal does not allow   RWD_REJECT_VALUE
 *   user_id over its rate cap           RWD_REJECT_RATE
 *   an outcome_id already applied       RWD_DUPLICATE (nothing changes): on the
 *                                       decision, held for it, or remembered
 *                                       (see below)
 *   supersedes an applied outcome_id    RWD_CORRECTED (the old one no longer counts),
 *                                       or RWD_LATE_CORRECTION once the window closed
 *   the decision is pending/deferred    RWD_MATCHED (or RWD_REJECT_LIMIT past max_outcomes)
 *   the decision was joined recently    RWD_LATE (logged by the caller, never learned)
 *   addressed to a conversation with pending decisions: RWD_MATCHED, credited
 *                                       to its open decisions by the credit rule
 *                                       (RWD_REJECT_LIMIT if one is at max_outcomes)
 *   addressed to a conversation whose last decision closed recently: RWD_LATE
 *   unknown, inside the backward window RWD_EARLY: held; attached when the
 *                                       decision arrives within backward_window_ms;
 *                                       RWD_DUPLICATE if a held outcome has its
 *                                       outcome_id; RWD_REJECT_LIMIT if max_outcomes
 *                                       are held for the event or max_pending in all
 *   otherwise                           RWD_UNKNOWN_EVENT (dangling)
 * Held early outcomes that never find their decision count as dangling.
 * Conversation-level outcomes are never held. A correction (supersedes set)
 * that would be RWD_LATE is RWD_LATE_CORRECTION.
 *
 * Outcome-id memory. When a decision closes (joined or dropped), the
 * outcome_id of each outcome applied to it (superseded ones too) is
 * remembered under its event id and, if it has one, its conversation id, for
 * as long as the decision is remembered (late_memory_ms after its window
 * closed); so is the outcome_id of each RWD_LATE or RWD_LATE_CORRECTION
 * outcome applied, under the id it was addressed to, for as long as that
 * decision (or conversation) is. An outcome whose decision is not open and
 * whose outcome_id is remembered under its event id (or, for a
 * conversation-level outcome, on a decision of the conversation that is open
 * or closed less than late_memory_ms ago, or under the conversation id) is
 * RWD_DUPLICATE instead of RWD_LATE, RWD_LATE_CORRECTION, RWD_EARLY,
 * RWD_UNKNOWN_EVENT or, for a conversation, RWD_MATCHED/RWD_CORRECTED. A
 * decision re-added with the same event id after it closed is a new one: an
 * outcome_id remembered for the old one does not make a duplicate while the
 * new one is open.
 *
 * Only RWD_MATCHED, RWD_CORRECTED and RWD_EARLY change what is learned;
 * RWD_LATE and RWD_LATE_CORRECTION with an outcome_id only add it to the
 * outcome-id memory. Every status is counted in the stats.
 * rwd_join_check_outcome() predicts the status without changing anything
 * (not even counters or rate buckets), so a caller can refuse before
 * persisting; the next rwd_join_add_outcome() with the same arguments
 * answers the same.
 *
 * Deterministic: the same calls with the same arguments give the same
 * statuses and joined examples (the service's recovery replays the log and
 * relies on it). All times come from the caller (@now_ms), so tests drive
 * day-long windows with a manual clock. Threads: none inside; the caller
 * serialises calls.
 *
 * Limits: max_pending decisions and as many held outcomes; at most
 * 2 * max_pending closed event and conversation ids and 2 * max_pending
 * outcome ids remembered, the oldest forgotten first. Remembered outcome ids
 * are 64-bit hashes of (event or conversation id, outcome_id): two colliding
 * keys would make a false duplicate (about n / 2^64 per lookup). Running out
 * of memory while remembering only forgets: a retry is then classified as
 * if the id had never been remembered.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/record.h"
#include "reward/fate.h"
#include "reward/spec.h"

typedef struct rwd_join rwd_join;

/*
 * rwd_join_new() - an empty join for @spec (copied; validated) holding at
 * most @max_pending decisions (and as many held early outcomes).
 * Return: BASE_OK; BASE_EINVAL for an invalid spec; BASE_ENOMEM.
 */
base_err rwd_join_new(const rwd_spec *spec, size_t max_pending, rwd_join **out);
void rwd_join_free(rwd_join *j); /* frees every pending decision; accepts NULL */

/*
 * Whether a decision with @event_id is pending or deferred with its window open at @now_ms.
 * One whose window closed at or before @now_ms is not, even before rwd_join_expire() has
 * emitted it: the same id then names a new decision (docs/rewards.md). Changes nothing.
 */
void rwd_join_contains(const rwd_join *j, const char *event_id, int64_t now_ms, bool *out_found);

/* Whether a decision with @event_id closed and is still remembered (late_memory_ms). */
bool rwd_join_closed_recently(const rwd_join *j, const char *event_id);

/*
 * rwd_join_peek() - a copy of the pending (or deferred) decision @event_id
 * as it would be joined now: the decision (cloned) and the reward its
 * contributions so far give (reward, n_outcomes, defaulted, unknown, credit,
 * share and spec_version, as rwd_join_expire() would emit them; joined_ts_ms
 * is its deadline). Changes nothing. With *out_found false, *out is not
 * written. On success the caller owns *out (base_joined_free()).
 * Return: BASE_OK; BASE_ENOMEM.
 */
base_err rwd_join_peek(const rwd_join *j, const char *event_id, bool *out_found, base_joined **out);

/*
 * rwd_join_peek_outcomes() - the outcomes addressed to the pending (or
 * deferred) decision @event_id that the join applied to it, in arrival order
 * (held early ones first): the first @max into @out (fate applied, or
 * superseded once corrected), their number in *out_n, and how many there are
 * in all in *out_total (at most max_outcomes). Conversation-level outcomes
 * are not listed (reward/fate.h). Nothing is written when the decision is
 * not pending (*out_found false). Changes nothing.
 */
void rwd_join_peek_outcomes(const rwd_join *j, const char *event_id, rwd_outcome_view *out,
                            uint32_t max, uint32_t *out_n, uint32_t *out_total, bool *out_found);

/*
 * rwd_join_add_decision() - make @d pending (deferred if d->deferred).
 * Takes @d on success; on failure the caller still owns it. Held early
 * outcomes for its event id are attached in arrival order (a held correction
 * replaces the held outcome it supersedes).
 * A decision whose window closed by @now_ms may still wait for rwd_join_expire() under the
 * same event id: both are held until then, and lookups by that id find the newer.
 * Return: BASE_OK; BASE_EINVAL for an empty event id, or one pending with its window
 *         open at @now_ms (rwd_join_contains());
 *         BASE_ELIMIT when max_pending decisions are pending; BASE_ENOMEM.
 */
base_err rwd_join_add_decision(rwd_join *j, base_decision *d, int64_t now_ms);

typedef enum rwd_status {
    RWD_MATCHED = 0,
    RWD_DUPLICATE,
    RWD_CORRECTED,
    RWD_LATE,
    RWD_LATE_CORRECTION,
    RWD_EARLY,
    RWD_UNKNOWN_EVENT,
    RWD_REJECT_SIGNAL,
    RWD_REJECT_VALUE,
    RWD_REJECT_LIMIT,
    RWD_REJECT_RATE,
    RWD_STATUS_COUNT
} rwd_status;

const char *rwd_status_name(rwd_status s);

/* What rwd_join_add_outcome() would answer, changing nothing. */
base_err rwd_join_check_outcome(const rwd_join *j, const base_outcome *o, int64_t now_ms,
                                rwd_status *out);

/*
 * rwd_join_add_outcome() - apply @o (copied). Return: BASE_OK with *out set
 * (see the table above); BASE_ENOMEM (nothing changed).
 */
base_err rwd_join_add_outcome(rwd_join *j, const base_outcome *o, int64_t now_ms, rwd_status *out);

/*
 * rwd_join_activate() - the deferred decision @event_id was shown at @now_ms.
 * *out: RWD_MATCHED (activated), RWD_DUPLICATE (already active),
 * RWD_LATE (its window closed at or before @now_ms: joined or dropped, even
 * if rwd_join_expire() has not run yet) or RWD_UNKNOWN_EVENT.
 * rwd_join_check_activate() predicts it without changing anything; it takes
 * @now_ms because the answer depends on it.
 */
base_err rwd_join_activate(rwd_join *j, const char *event_id, int64_t now_ms, rwd_status *out);
void rwd_join_check_activate(const rwd_join *j, const char *event_id, int64_t now_ms,
                             rwd_status *out);

/*
 * rwd_join_expire() - emit up to @max_out joined examples whose window has
 * closed at @now_ms, in order of closing time (ties: arrival order);
 * ownership passes to the caller. Unknown examples (no outcome, spec says
 * unknown) are emitted with unknown = true. Deferred decisions never
 * activated are dropped and counted. Also forgets expired late-memory
 * entries and held early outcomes (counted dangling).
 * Return: the number written to @out.
 */
size_t rwd_join_expire(rwd_join *j, int64_t now_ms, base_joined **out, size_t max_out);

/* The earliest time at which rwd_join_expire() would emit something, or INT64_MAX. */
int64_t rwd_join_next_deadline(const rwd_join *j);

/*
 * Recovery support. After a restart the service rebuilds a join by replaying
 * the decision and outcome streams in log-sequence order:
 * rwd_join_mark_closed() registers a decision that already has a joined
 * record (so later outcomes for it are late, within late_memory_ms of
 * @closed_at_ms; its outcome ids are not known, but the outcomes replayed
 * for it are classified late and so remembered), rwd_join_set_replay() turns
 * the user rate cap off while logged outcomes (which were accepted once) are
 * re-applied, and leaves the outcome, latency and activation counters of
 * rwd_join_get_stats() alone (they count what this process received), and
 * rwd_join_min_lsn() tells how far back the next replay must start: the
 * smallest lsn of a pending decision or held outcome (false when none).
 */
void rwd_join_mark_closed(rwd_join *j, const char *event_id, const char *conversation_id,
                          int64_t closed_at_ms);
void rwd_join_set_replay(rwd_join *j, bool replay);
bool rwd_join_min_lsn(const rwd_join *j, uint64_t *out_lsn);

#define RWD_LATENCY_BUCKETS 8 /* <1 s, <10 s, <1 min, <10 min, <1 h, <6 h, <1 d, >= 1 d */

typedef struct rwd_join_stats {
    uint64_t pending;                  /* decisions waiting (active or deferred) */
    uint64_t deferred;                 /* of which not yet activated */
    uint64_t joined;                   /* joined examples emitted (learnable + unknown) */
    uint64_t defaulted;                /* emitted with no outcome and the default reward */
    uint64_t unknown;                  /* emitted with no outcome as unknown */
    uint64_t not_activated;            /* deferred decisions dropped unactivated */
    uint64_t status[RWD_STATUS_COUNT]; /* outcomes by status (matched, late, ...) */
    uint64_t dangling;                 /* held early outcomes that never matched */
    uint64_t activations;
    uint64_t latency[RWD_LATENCY_BUCKETS]; /* decision -> outcome time of matched outcomes */
} rwd_join_stats;

void rwd_join_get_stats(const rwd_join *j, rwd_join_stats *out);

/*
 * rwd_join_carry_stats() - add @from's counters (all but the pending and deferred gauges)
 * to @to's: a join rebuilt to replace @from (a definition change, a takeover) goes on
 * counting where @from stopped.
 */
void rwd_join_carry_stats(rwd_join *to, const rwd_join *from);

/* Lower bounds of the latency buckets, in ms (for labels). */
extern const int64_t rwd_latency_bucket_ms[RWD_LATENCY_BUCKETS];

#endif
