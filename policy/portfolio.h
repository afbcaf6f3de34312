#ifndef POLICY_PORTFOLIO_H
#define POLICY_PORTFOLIO_H

/*
 * A portfolio of heads learned side by side on the same joined stream, and
 * the online selection of the one that serves (docs/algorithms.md,
 * "Portfolio").
 *
 * Every member is a head configuration (learner, explorer, settings).
 * Members that differ only in their explorer settings (explorer, epsilon,
 * gamma, ucb_alpha) share one learner, whose parameters they would each
 * learn bit for bit alike: a portfolio of explorers over one ridge costs
 * one update per example. On each joined example, before any member learns from it, each
 * live member's pmf on the logged context is scored off-policy with the
 * logged propensity: the doubly robust value
 *
 *     v_h = sum_a pi_h(a) rhat(a) + pi_h(c) / p(c) * (r - rhat(c))
 *
 * where c is the logged choice, p(c) its logged propensity, r the reward and
 * rhat the reference member's predicted rewards (member 0, a ridge or iwr
 * head, also before it learns; clipped to the rewards seen so far). With no
 * reward model (a pg reference) rhat is 0: plain IPS. Then every live member
 * learns the example.
 *
 * Selection. The estimates are exponentially discounted sums (a half-life in
 * examples; 0 keeps the whole stream). The leader changes to the challenger
 * h whose paired difference v_h - v_lead has the highest lower confidence
 * bound, once that bound is above zero: mean(v_h - v_lead) - z * se > 0,
 * with se from the discounted variance of the per-example differences and
 * the effective sample size. Switching back needs the same evidence the
 * other way, which is the hysteresis: noise alone does not make the leader
 * flap. A challenger whose upper bound is below zero against the leader, by
 * z_drop standard errors, is dropped for good (a learner no live member
 * uses stops learning: the steady cost approaches one head). Nothing is
 * switched before min_examples joined examples, nothing dropped before
 * drop_after. Member 0 is never dropped (it is the reward model).
 *
 * Serving. pol_portfolio_pmf() is what the caller serves and logs, exactly:
 * the mixture (1 - S) pi_lead + sum_h share_h pi_h over the live
 * challengers. g_h = Phi(mean / se) of h's paired difference is how
 * plausible it is that h serves better (1/2 before min_examples; 0 once h
 * is z_drop standard errors behind); the challengers together get
 * S = mix * max_h g_h, split in proportion to g_h. With mix = 1 (the
 * default) this is probability matching over the members: a challenger
 * that is probably better already serves most of the traffic before the
 * switch, and one that is plainly worse serves none. Its importance weights
 * are at most 1 / share_h, so the evidence about it stays sound.
 *
 * Everything is a deterministic function of the configuration and the
 * sequence of examples, like a single head.
 *
 * Threads: as pol_head. pol_portfolio_pmf() and the const functions may run
 * concurrently; pol_portfolio_learn() needs exclusive access.
 */

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "base/record.h"
#include "policy/head.h"

#define POL_PORTFOLIO_MAX 8

typedef struct pol_portfolio pol_portfolio;

typedef struct pol_portfolio_config {
    uint32_t n_members;                        /* 1..POL_PORTFOLIO_MAX */
    pol_head_config member[POL_PORTFOLIO_MAX]; /* [0]: the reference, serves first */
    double z;                                  /* switch when the lower bound at z se > 0 */
    double z_drop;                             /* drop when the upper bound at z_drop se < 0 */
    uint64_t min_examples;                     /* no switch before this many */
    uint64_t drop_after;                       /* no drop before this many */
    double half_life;                          /* discount half-life in examples; 0: none */
    double mix; /* cap on the live challengers' share of the served pmf, [0, 1] */
} pol_portfolio_config;

#define POL_PORTFOLIO_DEFAULT_Z 1.5
#define POL_PORTFOLIO_DEFAULT_Z_DROP 3.0
#define POL_PORTFOLIO_DEFAULT_MIN 300
#define POL_PORTFOLIO_DEFAULT_DROP_AFTER 300
#define POL_PORTFOLIO_DEFAULT_HALF_LIFE 0.0
#define POL_PORTFOLIO_DEFAULT_MIX 1.0
/*
 * auto: a quad member up to this context length, the longest whose pairwise
 * products ridge takes without projecting: 21 + 21 * 22 / 2 = 252 <= 256.
 */
#define POL_PORTFOLIO_QUAD_DIM_MAX 21

/*
 * pol_portfolio_config_single() - a portfolio of @head alone (portfolio =
 * off): serves and learns exactly as the head would.
 */
void pol_portfolio_config_single(pol_portfolio_config *out, const pol_head_config *head);

/*
 * pol_portfolio_config_auto() - the default portfolio built around @head
 * (member 0): variants of it that are affordable at its dim and n_actions
 * (docs/algorithms.md, "Portfolio"). A head that is not ridge gets a
 * portfolio of itself alone.
 */
void pol_portfolio_config_auto(pol_portfolio_config *out, const pol_head_config *head);

/*
 * pol_portfolio_config_parse() - a portfolio from the configuration value
 * @spec: "off" (@head alone), "auto" (pol_portfolio_config_auto()) or a
 * comma-separated list of members "learner[/explorer[:param]]", the first
 * serving first, e.g. "ridge, ridge/ucb:0.5, iwr/greedy:0.02". A member
 * takes @head's settings; its param is epsilon for greedy and softmax,
 * gamma for igw, alpha for ucb; a learner other than @head's starts from
 * that learner's default epsilon and learning rate.
 * Return: BASE_OK; BASE_EINVAL with a reason in @why.
 */
base_err pol_portfolio_config_parse(const char *spec, const pol_head_config *head,
                                    pol_portfolio_config *out, char *why, size_t whylen);

/*
 * pol_portfolio_new() - every member built, none learned, member 0 serving.
 * Return: BASE_OK; BASE_EINVAL for a member pol_head_new() rejects, members
 *         of different shapes, or settings out of range; BASE_ENOMEM.
 */
base_err pol_portfolio_new(const pol_portfolio_config *cfg, pol_portfolio **out);
void pol_portfolio_free(pol_portfolio *pf);

/* The served pmf (see above); the arguments and errors of pol_head_pmf(). */
base_err pol_portfolio_pmf(const pol_portfolio *pf, const float *x, uint32_t n_cand,
                           const uint32_t *action, const float *base_logit, float *out_pmf);

/*
 * pol_portfolio_learn() - score every live member on the joined example
 * (@d with @reward), let each learn it, then update the selection.
 * Return: the errors of pol_head_learn(). The example's shape, propensity
 *         and reward are checked before anything changes; a numeric failure
 *         of one member (pol_head_learn()'s BASE_ENUMERIC) leaves the members
 *         before it updated and the selector's sums untouched.
 */
base_err pol_portfolio_learn(pol_portfolio *pf, const base_decision *d, double reward);

/*
 * The learn step in two halves, so a caller whose thread is the only writer
 * can score without holding the lock readers take, and take it only to
 * apply: pol_portfolio_score() reads @pf (const, may run concurrently with
 * pmf calls), pol_portfolio_apply() updates it with the scores of the same
 * example and must follow with no other learn in between.
 */
typedef struct pol_portfolio_scores {
    double v[POL_PORTFOLIO_MAX]; /* each live member's value on the example */
    bool scored;                 /* false: one live member, nothing to score */
    uint64_t n_seen;             /* the state it was scored against */
} pol_portfolio_scores;

/* Return: the errors of pol_portfolio_learn() before anything changes. */
base_err pol_portfolio_score(const pol_portfolio *pf, const base_decision *d, double reward,
                             pol_portfolio_scores *out);
/* Return: the errors of pol_head_learn(); BASE_EINVAL for scores of another state. */
base_err pol_portfolio_apply(pol_portfolio *pf, const base_decision *d, double reward,
                             const pol_portfolio_scores *sc);

/* What the selector knows about one member. */
typedef struct pol_member_info {
    bool live;       /* still learning and scored */
    bool serving;    /* the leader */
    double estimate; /* discounted mean of v_h (a dropped member: when dropped) */
    double vs_lead;  /* discounted mean of v_h - v_lead (0 for the leader; dropped: when) */
    double se;       /* its standard error */
    double share;    /* of the served pmf: the leader 1 - the challengers' (0 when dropped) */
    uint64_t n;      /* examples scored */
    char name[64];   /* "ridge/greedy", "ridge/ucb:0.25", ... */
} pol_member_info;

uint32_t pol_portfolio_size(const pol_portfolio *pf);
uint32_t pol_portfolio_leader(const pol_portfolio *pf);
uint32_t pol_portfolio_live(const pol_portfolio *pf);
uint64_t pol_portfolio_switches(const pol_portfolio *pf);
/* false if @i is out of range. */
bool pol_portfolio_member_info(const pol_portfolio *pf, uint32_t i, pol_member_info *out);
/*
 * pol_portfolio_member() - borrowed: the head that learns for member @i
 * (NULL past the end). Members that differ only in explorer settings share
 * it, so its own pmf is that of the first such member; a member's pmf is
 * pol_portfolio_member_pmf().
 */
const pol_head *pol_portfolio_member(const pol_portfolio *pf, uint32_t i);

/* Member @i's pmf; BASE_EINVAL past the end, else the errors of pol_head_pmf(). */
base_err pol_portfolio_member_pmf(const pol_portfolio *pf, uint32_t i, const float *x,
                                  uint32_t n_cand, const uint32_t *action, const float *base_logit,
                                  float *out_pmf);

/* Joined examples learned (the model version). */
uint64_t pol_portfolio_n_updates(const pol_portfolio *pf);

/*
 * pol_portfolio_set_version() - start a fresh portfolio's model version at @n instead of 0
 * (a new head version of a policy continues its version numbers; its learners' own counts
 * still start at 0). Exclusive access.
 */
void pol_portfolio_set_version(pol_portfolio *pf, uint64_t n);

/*
 * pol_portfolio_checksum() - over every learner's parameters and the
 * selector; a portfolio of one member has its head's pol_head_checksum().
 */
uint64_t pol_portfolio_checksum(const pol_portfolio *pf);

/* pol_head_explain() of the serving member: the breakdown of what it serves. */
base_err pol_portfolio_explain(const pol_portfolio *pf, const float *x, uint32_t n_cand,
                               const uint32_t *action, const float *base_logit,
                               const pol_breakdown *out);

/* The members' names in order, comma-separated ("ridge/greedy:0.01,ridge/ucb:0.25"). */
void pol_portfolio_describe(const pol_portfolio *pf, char *out, size_t size);

/*
 * pol_portfolio_snapshot() - the serving member as a head's snapshot (so
 * pol_head_from_snapshot() rebuilds what serves), its n_updates the
 * portfolio's; with more than one member also every learner and the
 * selector (base_snapshot's pf_ fields).
 * Return: BASE_OK; BASE_ENOMEM.
 */
base_err pol_portfolio_snapshot(const pol_portfolio *pf, base_snapshot **out);

/*
 * pol_portfolio_restore() - load @m (not retained). A snapshot of the same
 * portfolio (same members, in order) restores it whole, selector included;
 * any other snapshot (a single head's, a different portfolio's serving
 * member) is loaded into member 0's learner, with every other learner and
 * the selector starting afresh.
 * Return: BASE_OK; the errors of pol_head_restore(); BASE_EINVAL for a
 *         selector that does not fit; BASE_ENOMEM. On error @pf is unchanged.
 */
base_err pol_portfolio_restore(pol_portfolio *pf, const base_snapshot *m);

#endif
