#ifndef REWARD_RATE_H
#define REWARD_RATE_H

/*
 * The per-user outcome rate cap: a token bucket per user id that starts
 * full (@burst tokens), refills at @per_s tokens per second, never holds
 * more than @burst, and pays one token per outcome. Example, per_s 1,
 * burst 3: three outcomes at t = 0 leave 0 tokens; at t = 1.5 s there are
 * 1.5. Semantics: docs/rewards.md, section 6.
 *
 * Invariants:
 * 1. Memory is fixed: RWD_RATE_SETS x RWD_RATE_WAYS buckets, allocated
 *    once. A user id hashes to one set; a new user takes an empty way, else
 *    the least recently used way (whose user then starts full again), so a
 *    flood of distinct user ids cannot grow it.
 * 2. rwd_rate_tokens() changes nothing; only rwd_rate_take() does.
 * 3. Deterministic: the answers depend only on the calls and their
 *    arguments (times come from the caller).
 *
 * Threads: none inside; the caller serialises calls on one rwd_rate.
 */

#include <stdint.h>

#define RWD_RATE_SETS 4096
#define RWD_RATE_WAYS 4

typedef struct rwd_rate rwd_rate;

/* rwd_rate_new() - every bucket full; @per_s > 0. Return: NULL when out of memory. */
rwd_rate *rwd_rate_new(double per_s, double burst);
void rwd_rate_free(rwd_rate *r); /* accepts NULL */

/* The tokens @user_id (non-empty; borrowed) has at @now_ms. Changes nothing. */
double rwd_rate_tokens(const rwd_rate *r, const char *user_id, int64_t now_ms);

/*
 * rwd_rate_take() - spend one token of @user_id at @now_ms (the caller
 * checked that it has one; without, its tokens go below 0 and refill from
 * there).
 */
void rwd_rate_take(rwd_rate *r, const char *user_id, int64_t now_ms);

#endif
