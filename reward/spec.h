#ifndef REWARD_SPEC_H
#define REWARD_SPEC_H

/*
 * A reward spec: how named outcome signals become one scalar reward per
 * decision. Semantics and worked examples: docs/rewards.md.
 *
 * Each signal has a kind and a transform into a contribution:
 *   event   value must be 1 (or absent)        contribution = weight
 *   flag    value must be 0 or 1               contribution = weight * value
 *   number  value must lie in [min, max]       contribution = weight * (map_min +
 *             (value - min) * (map_max - map_min) / (max - min))
 * The contributions of one signal on one decision are aggregated (sum,
 * first, last, min, max, mean; first/last by the outcome's ts, then
 * arrival), the aggregates of all signals are summed, and the sum is
 * clipped to [clip_min, clip_max]. A decision whose window closes with no
 * outcome gets default_reward, or is "unknown" (counted, not learned from)
 * when unknown_when_empty is set.
 *
 * Conversation-level outcomes (addressed to a conversation, not an event)
 * reach the conversation's pending decisions with a share given by the
 * credit rule: last (1 to the final turn), uniform (1/n each), discounted
 * (gamma^(T - t) to turn t when T is the final turn); the contribution is
 * multiplied by the share before aggregation.
 *
 * The version string is stamped on every joined example: the configured
 * one, or "h" followed by 16 hex digits of a hash of the spec's canonical
 * text, so any change to the definition changes the version.
 *
 * Pure data and pure functions; thread-safe.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/record.h"

#define RWD_MAX_SIGNALS 32
#define RWD_MAX_OUTCOMES 1024 /* per decision, upper bound of max_outcomes */

typedef enum rwd_kind { RWD_EVENT = 0, RWD_NUMBER, RWD_FLAG } rwd_kind;

typedef enum rwd_agg {
    RWD_AGG_SUM = 0,
    RWD_AGG_FIRST,
    RWD_AGG_LAST,
    RWD_AGG_MIN,
    RWD_AGG_MAX,
    RWD_AGG_MEAN,
} rwd_agg;

typedef struct rwd_signal {
    char name[BASE_NAME_MAX + 1];
    rwd_kind kind;
    double weight;           /* default 1 */
    double min, max;         /* number: valid range, min < max */
    double map_min, map_max; /* number: image of [min, max]; default [min, max] */
    rwd_agg agg;             /* default sum */
} rwd_signal;

typedef struct rwd_spec {
    uint32_t n_signals;
    rwd_signal signal[RWD_MAX_SIGNALS];
    double clip_min;            /* default -1 */
    double clip_max;            /* default 1 */
    double default_reward;      /* default 0 */
    bool unknown_when_empty;    /* default false */
    int64_t window_ms;          /* > 0; default 10 minutes */
    int64_t backward_window_ms; /* >= 0; default 0: outcomes before their decision are unknown */
    int64_t late_memory_ms;     /* >= 0: how long closed decisions are remembered to tell
                                   late outcomes from unknown ones; -1 (default): window_ms */
    uint32_t credit;            /* enum base_credit_rule (not NONE); default LAST */
    double credit_gamma;        /* discounted: in (0, 1]; default 0.9 */
    uint32_t max_outcomes;      /* per decision, 1..RWD_MAX_OUTCOMES; default 16 */
    double user_rate_per_s;     /* outcomes per second per user_id; 0: no cap (default) */
    double user_burst;          /* bucket size; default 10 */
    char version[BASE_NAME_MAX + 1]; /* "" (default): the hash */
} rwd_spec;

/* No signals, the defaults above. */
void rwd_spec_default(rwd_spec *spec);

/* A signal with @name, @kind and the defaults above (weight 1, sum, range [0, 1]). */
void rwd_signal_default(rwd_signal *sig, const char *name, rwd_kind kind);

/*
 * rwd_signal_unset_range() - mark min, max, map_min and map_max as not given (NaN), for a
 * parser that must tell a range it was given from the default;
 * rwd_signal_resolve_range() then gives each one left unset its default: min 0, max 1,
 * map_min min, map_max max.
 */
void rwd_signal_unset_range(rwd_signal *sig);
void rwd_signal_resolve_range(rwd_signal *sig);

/* Index of signal @name in @spec; *out_found says whether it exists. */
void rwd_spec_find(const rwd_spec *spec, const char *name, uint32_t *out_index, bool *out_found);

/*
 * rwd_spec_validate() - BASE_OK, or BASE_EINVAL with a reason naming the
 * field in @why: unique non-empty signal names, finite numbers, min < max,
 * clip_min <= clip_max, window > 0, windows >= 0 (late_memory_ms may be -1),
 * gamma in (0, 1], counts in range, a known credit rule, kind and aggregation.
 */
base_err rwd_spec_validate(const rwd_spec *spec, char *why, size_t whylen);

/* The version stamped on joined examples (see above) into @out. */
void rwd_spec_version(const rwd_spec *spec, char *out, size_t size);

/*
 * rwd_spec_contribution() - the transformed contribution of @value for
 * signal @index. Return: BASE_OK; BASE_EINVAL if the value is not allowed
 * for the signal's kind (out of range, a flag not 0/1, an event not 1, not
 * finite).
 */
base_err rwd_spec_contribution(const rwd_spec *spec, uint32_t index, double value, double *out);

/* Names of kinds, aggregations and credit rules, and back (false if unknown). */
const char *rwd_kind_name(rwd_kind k);
const char *rwd_agg_name(rwd_agg a);
const char *rwd_credit_name(uint32_t c);
bool rwd_kind_from_name(const char *s, rwd_kind *out);
bool rwd_agg_from_name(const char *s, rwd_agg *out);
bool rwd_credit_from_name(const char *s, uint32_t *out);

#endif
