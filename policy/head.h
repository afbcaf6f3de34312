#ifndef POLICY_HEAD_H
#define POLICY_HEAD_H

/*
 * The policy head: a learned correction on top of a frozen base model, the
 * distribution it serves, and its online learner.
 *
 * Learners (docs/algorithms.md):
 * - "ridge" (default): per-action Bayesian linear regression of the reward
 *   on [context, base-model probability, 1], exact updates (policy/ridge.h).
 *   Scores are expected rewards; before any data the top score is the base
 *   model's top candidate.
 * - "iwr": per-action linear regression of the reward on the same features
 *   (no projection), trained by importance-weighted online SGD with
 *   AdaGrad, normalized and importance-invariant updates (policy/iwr.h):
 *   O(dim) per update and invariant to the scale of each context feature.
 *   Scores are predicted rewards, with the same prior as ridge.
 * - "pg": per-action linear correction to the base logits, trained by
 *   importance-weighted policy gradient with an optional KL penalty toward
 *   the base (policy/pg.h). Scores are logits; with zero weights and the
 *   softmax explorer at eps = 0 the policy is exactly the base model.
 *
 * Explorers turn scores into the served pmf, always exactly:
 * - greedy:  (1 - eps) spread evenly over the top-scoring candidates + eps / n
 * - softmax: (1 - eps) softmax(scores) + eps / n            (pg only)
 * - igw:     inverse gap weighting (SquareCB, Foster and Rakhlin 2020):
 *            p_c = 1 / (n + gamma (s_best - s_c)) for c not best, the rest
 *            to the best, then the eps floor
 * - ucb:     greedy on mean + alpha * width                  (ridge only)
 *
 * Feature maps (policy/fmap.h) turn the context x into what the
 * learner sees: "linear" (x itself, the default), "quad" (x and its pairwise
 * products) or "rff"/"rff_norm" (x and random Fourier features). The learner
 * is built with the mapped length; the head maps x in pol_head_pmf(),
 * pol_head_explain() and pol_head_learn(), so callers always pass the raw
 * context of cfg.dim values. With ridge and dim < POL_RIDGE_EXACT_MAX, rff_dim
 * is capped at POL_RIDGE_EXACT_MAX - dim so that ridge never projects a
 * context it could take exactly; past that dim ridge projects [x, rff] to
 * its sketch, as it projects x.
 *
 * Open action sets (action_dim > 0): the candidates are described by
 * features, and one shared model (n_actions = 1: every candidate's action
 * index is 0) scores each (context, candidate) pair through the action map
 * (policy/amap.h), which replaces the feature map (features must be
 * linear). Only learners whose table entry says open (ridge, iwr) take it.
 * Every function below that takes a context @x then reads x [dim] followed
 * by the candidates' features [n_cand x action_dim]: a decision's
 * embedding array holds exactly that (base/record.h).
 *
 * Both are tables the head looks up once, in pol_head_new(): learners in
 * policy/learner.h, explorers in policy/explore.h. Adding one is adding its
 * enum value below and its table entry.
 *
 * Sampling. pol_sample() draws from a pmf with a uniform derived only from
 * the event id and the policy seed, so every decision can be replayed.
 *
 * Learning. pol_head_learn() applies one joined example (the logged decision
 * with its logged pmf, and the reward). The learner is a deterministic
 * function of the sequence of examples: same examples in the same order give
 * bit-identical parameters.
 *
 * Threads: none inside. pol_head_pmf() and the other const functions may run
 * concurrently with each other; pol_head_learn() and pol_head_restore() need
 * exclusive access (the caller holds a write lock).
 */

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "base/record.h"
#include "policy/fmap.h"

typedef struct pol_head pol_head;

typedef enum pol_learner {
    POL_LEARNER_RIDGE = 0,
    POL_LEARNER_PG,
    POL_LEARNER_IWR,
} pol_learner;

typedef enum pol_explorer {
    POL_EXPLORE_AUTO = 0, /* ridge, iwr: greedy; pg: softmax */
    POL_EXPLORE_GREEDY,
    POL_EXPLORE_SOFTMAX,
    POL_EXPLORE_IGW,
    POL_EXPLORE_UCB,
} pol_explorer;

typedef struct pol_head_config {
    uint32_t dim;             /* context embedding length, 1..BASE_DIM_MAX */
    uint32_t n_actions;       /* configured actions, 1..BASE_ACTIONS_MAX */
    pol_learner learner;      /* default ridge */
    pol_explorer explorer;    /* default AUTO */
    double epsilon;           /* exploration floor in [0, 1]; < 0: the learner's default */
    double temperature;       /* divides the base logits; > 0; default 1 */
    double learning_rate;     /* pg, iwr: > 0; <= 0: the learner's default */
    double lambda;            /* ridge prior precision; <= 0: features / 2 */
    double prior_mean;        /* ridge, iwr: expected reward before data; default 0.5 */
    double base_weight;       /* ridge, iwr: prior coefficient of the base probability; default 1 */
    double kl;                /* pg: weight of KL(pi || pi_base), >= 0; default POL_PG_DEFAULT_KL */
    double gamma;             /* igw: > 0; default 1000 */
    double ucb_alpha;         /* ucb: >= 0; default 0.5 */
    pol_features features;    /* map of the context the learner sees; default linear */
    uint32_t rff_dim;         /* rff, rff_norm: cosines; 0: POL_RFF_DEFAULT_DIM (see below) */
    uint32_t action_dim;      /* > 0: an open action set (see below); n_actions must be 1 */
    uint32_t interaction_dim; /* open: the action map's R; 0: its default (policy/amap.h) */
    double bandwidth;         /* rff, rff_norm: kernel width / sqrt(dim); <= 0: default 1 */
    uint64_t seed;            /* mixed into sampling, any learner randomness and the rff draw */
} pol_head_config;

#define POL_RIDGE_DEFAULT_EPSILON 0.01
#define POL_PG_DEFAULT_EPSILON 0.05
#define POL_PG_DEFAULT_LR 1.0
#define POL_PG_DEFAULT_KL 0.3
#define POL_IWR_DEFAULT_EPSILON 0.01
#define POL_IWR_DEFAULT_LR 0.25

/* The name of a learner or explorer ("ridge", "greedy", ...), and back. */
/*
 * pol_head_config_check() - whether pol_head_new() would take @cfg's settings, checked
 * without building anything (a config check); if not, why in @why (@len bytes), e.g. an
 * explorer that needs what the learner does not give.
 */
bool pol_head_config_check(const pol_head_config *cfg, char *why, size_t len);

const char *pol_learner_name(pol_learner l);
const char *pol_explorer_name(pol_explorer x);
bool pol_learner_from_name(const char *name, pol_learner *out);
bool pol_explorer_from_name(const char *name, pol_explorer *out);

/* Fills @cfg with defaults for the given shape (ridge learner, automatic settings). */
void pol_head_config_default(pol_head_config *cfg, uint32_t dim, uint32_t n_actions);

/*
 * pol_head_new() - a head that has learned nothing (it serves the base model).
 * Return: BASE_OK; BASE_EINVAL for a shape or hyperparameter out of range
 *         (including a feature map pol_fmap_out_len() refuses: quad past
 *         POL_QUAD_DIM_MAX); BASE_ENOMEM.
 */
base_err pol_head_new(const pol_head_config *cfg, pol_head **out);
void pol_head_free(pol_head *h);

/*
 * pol_head_pmf() - the served distribution over @n_cand candidates.
 * @x: [dim] context   @action: [n_cand] indices < n_actions
 * @base_logit: [n_cand]   @out_pmf: [n_cand], written only on success
 * Return: BASE_OK; BASE_EINVAL if n_cand is 0 or above BASE_CAND_MAX, or an
 *         action index is out of range; BASE_ENUMERIC if an input is not
 *         finite.
 */
base_err pol_head_pmf(const pol_head *h, const float *x, uint32_t n_cand, const uint32_t *action,
                      const float *base_logit, float *out_pmf);

/*
 * pol_head_view_ok() - whether @view's explorer settings (explorer, epsilon,
 * gamma, ucb_alpha; "auto" resolved by this head's learner) can serve over
 * @h's learner: the combination pol_head_new() would accept.
 */
bool pol_head_view_ok(const pol_head *h, const pol_head_config *view);

/*
 * pol_head_same_learner() - whether heads built from @a and @b learn
 * bit-identical parameters from the same examples: the configurations differ
 * at most in the explorer settings (explorer, epsilon, gamma, ucb_alpha),
 * which no learner reads.
 */
bool pol_head_same_learner(const pol_head_config *a, const pol_head_config *b);

/*
 * pol_head_pmf_views() - the pmfs that @n_views explorers would serve over
 * @h's learner, computing the learner's scores (and widths) once: view v
 * serves as a head whose configuration is @h's with @views[v]'s explorer
 * settings, bit for bit. Each view must pass pol_head_view_ok().
 * @out_pmfs: [n_views * n_cand], view-major   @out_score: NULL or [n_cand],
 * the learner's scores as pol_head_explain()'s head_score.
 * Return: the errors of pol_head_pmf(); BASE_EINVAL for a view that does not
 *         pass pol_head_view_ok() or n_views = 0.
 */
base_err pol_head_pmf_views(const pol_head *h, uint32_t n_views, const pol_head_config *views,
                            const float *x, uint32_t n_cand, const uint32_t *action,
                            const float *base_logit, float *out_pmfs, float *out_score);

/*
 * What pol_head_explain() writes: per candidate, each array [n_cand].
 * - head_score: the learner's score, what the explorer turns into
 *   probabilities: a logit (base logit / T plus the correction) for pg, an
 *   expected reward for ridge and iwr (for ucb without the width bonus).
 * - explore: the exploration share of the candidate's probability
 *   (docs/algorithms.md, "Explanations"). A candidate is top when the
 *   explorer's own score (for ucb: mean + alpha * width) is the maximum;
 *   its exploration share is the floor eps / n. Every other candidate is
 *   served only because the policy explores, so its whole probability is
 *   exploration: eps / n under greedy and ucb, pmf[c] under softmax and
 *   igw. Sum over candidates: the chance that a decision explores.
 * - pmf: bit-identical to what pol_head_pmf() writes for the same inputs.
 */
typedef struct pol_breakdown {
    float *head_score;
    float *explore;
    float *pmf;
} pol_breakdown;

/*
 * pol_head_explain() - pol_head_pmf() with its breakdown.
 * @x, @action, @base_logit: as for pol_head_pmf()   @out: arrays [n_cand],
 * written only on success.
 * Return: the errors of pol_head_pmf().
 */
base_err pol_head_explain(const pol_head *h, const float *x, uint32_t n_cand,
                          const uint32_t *action, const float *base_logit,
                          const pol_breakdown *out);

/*
 * pol_head_explain_view() - pol_head_explain() served with @view's explorer
 * settings (pol_head_pmf_views()).
 * Return: BASE_EINVAL if @view fails pol_head_view_ok(); else as
 *         pol_head_explain().
 */
base_err pol_head_explain_view(const pol_head *h, const pol_head_config *view, const float *x,
                               uint32_t n_cand, const uint32_t *action, const float *base_logit,
                               const pol_breakdown *out);

/*
 * pol_sample() - index drawn from @pmf (n >= 1) with the uniform
 * base_u64_to_unit(base_hash64(event_id, strlen(event_id), seed)).
 * Pure function: same inputs, same index. Entries <= 0 are never drawn; if
 * rounding leaves the uniform past the pmf's sum, the last index with
 * positive mass is returned (0 if there is none).
 */
uint32_t pol_sample(const float *pmf, uint32_t n, const char *event_id, uint64_t seed);

/*
 * pol_head_learn() - apply one joined example: decision @d (its embedding,
 * actions, base logits, logged pmf and chosen index) with @reward.
 * Return: BASE_OK; BASE_EINVAL if @d's shape does not match the head or its
 *         logged propensity is not in (0, 1]; BASE_ENUMERIC if the reward or
 *         an input (including the logged propensity) is not finite, or the
 *         gradient would overflow. On any error the head is left unchanged.
 */
base_err pol_head_learn(pol_head *h, const base_decision *d, double reward);

/*
 * pol_head_learn_full() - the same with the reward of every candidate
 * (@rewards [d->n_cand]): full information, for benchmarks' ceilings.
 */
base_err pol_head_learn_full(pol_head *h, const base_decision *d, const double *rewards);

uint64_t pol_head_n_updates(const pol_head *h);
/* The effective configuration (automatic values resolved). */
const pol_head_config *pol_head_get_config(const pol_head *h);
uint32_t pol_head_dim(const pol_head *h);
uint32_t pol_head_n_actions(const pol_head *h);

/*
 * Borrowed pointer to action @a's coefficients, valid until free; NULL if
 * @a >= n_actions. With m the feature map's output length (dim for
 * linear): pg: [m + 1] (context weights, bias last). ridge: [features]
 * (mapped context or its projection, base-probability weight, bias). iwr:
 * [m + 2] (mapped context weights, base-probability weight, bias).
 */
const float *pol_head_weights(const pol_head *h, uint32_t a);

/* FNV-style 64-bit checksum over all parameters and learner state. */
uint64_t pol_head_checksum(const pol_head *h);

/*
 * pol_head_snapshot() - copy parameters and learner state into a new model
 * record (dim, n_actions, learner, settings, n_updates, params, state
 * filled; the caller sets policy, version, ts_ms and last_joined_id).
 * Return: BASE_OK; BASE_ENOMEM.
 */
base_err pol_head_snapshot(const pol_head *h, base_snapshot **out);

/*
 * pol_head_snapshot_view() - pol_head_snapshot() as a head serving with
 * @view's explorer settings would write it: pol_head_from_snapshot() of it
 * serves what pol_head_pmf_views() gives for @view.
 * Return: BASE_OK; BASE_EINVAL if @view fails pol_head_view_ok(); BASE_ENOMEM.
 */
base_err pol_head_snapshot_view(const pol_head *h, const pol_head_config *view,
                                base_snapshot **out);

/* The settings a snapshot of @h records (pol_head_snapshot()'s m->settings). */
void pol_head_settings(const pol_head *h, base_head_settings *out);

/*
 * pol_head_restore() - load parameters and state from @m (not retained),
 * including its n_updates.
 * Return: BASE_OK; BASE_EINVAL if @m's shape, learner or recorded feature
 *         map (features, rff_dim, bandwidth; none recorded reads as linear)
 *         does not match, or its learner state is out of range (a negative
 *         accumulator);
 *         BASE_ENUMERIC if a parameter or state value is not finite. On any
 *         error the head is left unchanged.
 */
base_err pol_head_restore(pol_head *h, const base_snapshot *m);

/*
 * pol_head_config_from_snapshot() - the configuration @m's head was built
 * with (its shape, learner and recorded settings).
 * Return: BASE_OK; BASE_EINVAL if @m names an unknown learner or explorer,
 *         or predates recorded settings (settings.explorer is "").
 */
base_err pol_head_config_from_snapshot(const base_snapshot *m, pol_head_config *out);

/*
 * pol_head_from_snapshot() - a new head that serves exactly as the one @m
 * was taken from: built from its recorded configuration, then restored.
 * Return: BASE_OK; the errors of pol_head_config_from_snapshot(),
 *         pol_head_new() and pol_head_restore(); BASE_ENOMEM.
 */
base_err pol_head_from_snapshot(const base_snapshot *m, pol_head **out);

#endif
