#ifndef REWARD_CREDIT_H
#define REWARD_CREDIT_H

/*
 * Credit: how the outcomes that reached a decision become its reward. Two
 * pure functions over arrays, used by the join (reward/join.h) and
 * specified in docs/rewards.md, sections 1 and 4:
 *
 * 1. rwd_credit_shares(): the share of a conversation-level outcome that
 *    each open decision of the conversation gets, by the credit rule.
 *    Turns 1, 2, 3 (final turn 3) get, under each rule:
 *      last        0, 0, 1
 *      uniform     1/3, 1/3, 1/3
 *      discounted  gamma^2, gamma, 1
 * 2. rwd_contrib_reward(): a decision's reward from its contributions: the
 *    active contributions of each signal combined by the signal's
 *    aggregate, the aggregates summed, the sum clipped; with none, the
 *    default reward or "unknown". Contributions 1 (ts 300), -0.5 (ts 100)
 *    and 0.5 (ts 200) of one signal aggregate to 1 (sum), -0.5 (first),
 *    1 (last), -0.5 (min), 1 (max), 1/3 (mean).
 *
 * Both are deterministic, floating point included: the same inputs give
 * bit-identical results (recovery replays depend on it). No allocation, no
 * state; thread-safe.
 */

#include <stdbool.h>
#include <stdint.h>

#include "base/record.h"
#include "reward/spec.h"

/* One outcome's contribution to one decision. */
typedef struct rwd_contrib {
    char outcome_id[BASE_ID_MAX + 1]; /* "" when the outcome had none */
    uint32_t signal;                  /* index in the spec */
    bool active;                      /* false once superseded */
    bool conversation;                /* addressed to the conversation, not the event */
    double value;                     /* transformed contribution, times the credit share */
    double raw;                       /* the value as observed, for min/max */
    int64_t ts_ms;                    /* the outcome's time, for first/last */
    uint64_t seq;                     /* arrival order, for first/last ties */
} rwd_contrib;

/* An open decision of a conversation, as the credit rule sees it. */
typedef struct rwd_turn {
    uint32_t turn; /* the decision's turn number */
    uint64_t seq;  /* its arrival order: of two equal turns, the later is final */
} rwd_turn;

/*
 * rwd_credit_shares() - the share of each of @n (>= 1) open decisions @turns
 * under credit rule @rule (enum base_credit_rule; anything but UNIFORM and
 * DISCOUNTED is LAST) with discount @gamma, into @out_shares[0..n).
 * The final turn is the highest turn; ties: the highest seq.
 */
void rwd_credit_shares(uint32_t rule, double gamma, const rwd_turn *turns, uint32_t n,
                       double *out_shares);

/* A decision's reward, as rwd_contrib_reward() computes it. */
typedef struct rwd_reward {
    double reward;       /* clipped sum; default_reward or 0 when nothing counted */
    uint32_t n_outcomes; /* active contributions that counted */
    bool defaulted;      /* nothing counted: default_reward */
    bool unknown;        /* nothing counted and the spec says unknown: 0, not learned */
} rwd_reward;

/*
 * rwd_contrib_reward() - the reward of the @n contributions @c (borrowed;
 * signal indices below spec->n_signals) under @spec.
 */
void rwd_contrib_reward(const rwd_spec *spec, const rwd_contrib *c, uint32_t n, rwd_reward *out);

#endif
