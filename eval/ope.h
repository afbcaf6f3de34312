#ifndef EVAL_OPE_H
#define EVAL_OPE_H

/*
 * Off-policy evaluation: what two policies (a candidate and a baseline,
 * usually production) would have earned on logged decisions, estimated from
 * the decisions some logging policy actually served, with confidence
 * intervals, support diagnostics and a promotion gate. Pure functions over
 * arrays: no I/O, no logging, no state between calls. The maths and the
 * measured coverage are in docs/promotion.md.
 *
 * For sample i with chosen candidate c, logged pmf mu and target pmf pi:
 *     w_i   = pi(c) / mu(c)                          (importance weight)
 *     IPS   = (1/n) sum w_i r_i
 *     SNIPS = sum w_i r_i / sum w_i                  (0 when sum w_i == 0)
 *     DR    = (1/n) sum [ sum_j pi(j) q_i(j) + w_i (r_i - q_i(c)) ]
 * where q_i(j) is the reward model's prediction for candidate j of sample i,
 * cross-fitted: the model that predicts on fold k was fitted on the other
 * folds only (fold = fold_key % folds).
 *
 * Reward model: one ridge regression per action id, fitted on the chosen
 * candidates of the training folds, of r - rbar (rbar: the training folds'
 * mean reward) on
 *     phi = [ z(x) (m values), softmax(base_logit)[j], 1 ]      p = m + 2
 * with m = min(proj_dim, dim); z(x) = x when m == dim, else P x with P an
 * m x dim matrix of N(0, 1) / sqrt(m) entries drawn from seed. Its
 * prediction is rbar + theta_a . phi; an action with no training data
 * predicts rbar, and a fold whose other folds are empty predicts 0 (DR is
 * then IPS on that fold). The penalty therefore shrinks towards rbar.
 *
 * Intervals (two-sided, level cfg->confidence), for each estimator of each
 * policy and for the paired difference policy 0 - policy 1. Every
 * statistic is linearised: its standard error se is the sample standard
 * deviation of its influence values over sqrt(n) (w r for IPS, the DR
 * terms for DR, w (r - SNIPS) / mean(w) for SNIPS, the delta method; for a
 * difference, the per-sample differences of those).
 * 1. EV_BOOTSTRAP (the default): studentized bootstrap (bootstrap-t).
 *    Each of n_boot replicates draws n sample indices with replacement
 *    (gsl_rng_mt19937, seeded with a 32-bit mix of seed) and computes all
 *    nine statistics and their se* on that one resample, so differences
 *    are paired; the interval is [est - t*_(1-a/2) se, est - t*_(a/2) se]
 *    with t* = (stat* - est) / se* and quantiles at the (n_boot + 1) p-th
 *    order statistic. DR's per-sample terms use the cross-fitted q above
 *    and are not refitted per replicate. Reported se: the one above (the
 *    one the interval scales), the same for every kind and seed, so a report
 *    can be recomputed from its samples. Cost O(n * n_boot).
 * 2. EV_NORMAL: est -/+ t_{n-1} se, with se reported as is. No randomness.
 * 3. EV_PERCENTILE: the replicates' own quantiles, for comparison; it
 *    covers least of the three in our tests.
 * With n == 1, or SNIPS whose weights sum to 0, an interval is
 * (-inf, +inf) and se is +inf. Measured coverage at 0.95
 * (tests/unit/test_eval_ope.c, n = 2000, importance weights up to 20):
 * 0.93 to 0.96 per quantity for DR; docs/promotion.md has the numbers.
 *
 * Assumptions the numbers rest on: the logged pmfs are exactly the ones the
 * choices were drawn from and are positive wherever the target puts mass
 * (unsupported_mass says how far that fails); no unmeasured confounding
 * (the logging policy saw nothing that the pmf does not reflect); all
 * rewards were computed under one reward-spec version.
 *
 * Threads: none inside. Every function is reentrant and may run
 * concurrently on shared, unchanging inputs. GSL's error handler must have
 * been turned off (gsl_set_error_handler_off()) before the first call:
 * GSL's default handler aborts the process.
 *
 * Limits: n <= EV_MAX_SAMPLES, n_cand <= BASE_CAND_MAX, dim <=
 * BASE_DIM_MAX, n_actions <= BASE_ACTIONS_MAX, proj_dim <= EV_MAX_PROJ_DIM,
 * folds <= EV_MAX_FOLDS, EV_MIN_BOOT <= n_boot <= EV_MAX_BOOT; past a cap
 * BASE_ELIMIT. Memory of ev_evaluate(): about 10 + m doubles and one
 * uint32 per sample, p^2 + 2p + 1 doubles per distinct chosen action, and
 * 18 * n_boot doubles.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/record.h"

#define EV_MAX_SAMPLES ((size_t)1 << 31) /* samples per evaluation (32-bit indices) */
#define EV_MAX_PROJ_DIM 256              /* reward model's projected context */
#define EV_MAX_FOLDS 64                  /* cross-fitting folds */
#define EV_MIN_BOOT 20                   /* resamples; 95% endpoints want >= 39 */
#define EV_MAX_BOOT 100000               /* bootstrap resamples */
#define EV_PMF_TOL 1e-3                  /* |sum of a pmf - 1| allowed (float pmfs) */

typedef enum ev_estimator { EV_IPS = 0, EV_SNIPS, EV_DR, EV_N_ESTIMATORS } ev_estimator;

/* "ips", "snips", "dr"; "unknown" for anything else. Static, never NULL. */
const char *ev_estimator_name(ev_estimator e);

/*
 * ev_estimator_from_name() - the estimator called @name (exactly as
 * ev_estimator_name() spells it) into *@out.
 * Return: true if found; false (and *@out untouched) otherwise or for NULL.
 */
bool ev_estimator_from_name(const char *name, ev_estimator *out);

typedef enum ev_interval_kind {
    EV_BOOTSTRAP = 0, /* studentized (bootstrap-t): the default */
    EV_NORMAL,        /* CLT with a t_{n-1} quantile; delta method for SNIPS */
    EV_PERCENTILE,    /* percentile bootstrap, for comparison: weakest on skewed weights */
} ev_interval_kind;

typedef struct ev_config {
    double confidence;         /* two-sided level in (0, 1); default 0.95 */
    ev_interval_kind interval; /* default EV_BOOTSTRAP (studentized) */
    uint32_t n_boot;           /* bootstrap resamples; default 1000; ignored for EV_NORMAL */
    uint64_t seed;             /* bootstrap RNG and projection; default 1 */
    uint32_t folds;            /* cross-fitting folds for DR's reward model, >= 2; default 2 */
    double overlap_floor;      /* logged propensity below this is "almost none", in [0, 1);
                                  default 1e-4 */
    uint32_t dim;              /* length of each sample's x (0: no context in the model) */
    uint32_t n_actions;        /* action ids are < n_actions, >= 1; default 0 (must be set) */
    uint32_t proj_dim;         /* x is projected to min(proj_dim, dim) values; default 16 */
    double ridge_lambda;       /* reward model's ridge penalty, > 0; default 1 */
} ev_config;

/* The defaults above into *@c. dim and n_actions are 0: the caller sets them. */
void ev_config_default(ev_config *c);

/* One logged decision and its reward. Everything borrowed, nothing retained. */
typedef struct ev_sample {
    uint32_t n_cand;         /* 1 <= n_cand <= BASE_CAND_MAX */
    uint32_t chosen;         /* < n_cand: the candidate that was served */
    const float *logged;     /* [n_cand] pmf it was served with; logged[chosen] > 0 */
    const float *target[2];  /* [n_cand] pmfs of policy 0 (candidate) and 1 (baseline) */
    const uint32_t *action;  /* [n_cand] action id of each candidate, < n_actions */
    const float *base_logit; /* [n_cand] the frozen base model's scores (a model feature) */
    const float *x;          /* [dim] context, or NULL when dim is 0 */
    double reward;           /* finite */
    uint64_t fold_key;       /* e.g. a hash of the event id: fold = fold_key % folds */
} ev_sample;

/* An estimate and its interval: lo <= est <= hi need not hold for the bootstrap. */
typedef struct ev_interval {
    double est; /* on all n samples */
    double lo;  /* lower endpoint */
    double hi;  /* upper endpoint */
    double se;  /* the linearised standard error (sd of the influence values / sqrt(n)) */
} ev_interval;

typedef struct ev_policy_report {
    ev_interval v[EV_N_ESTIMATORS]; /* value estimates of this policy, indexed by ev_estimator */
    double ess;                     /* (sum w)^2 / sum w^2; 0 when every w is 0 */
    double max_weight;              /* largest w */
    double mean_weight;             /* ~1 when the logged pmfs are right and support is full */
    double unsupported_mass;        /* mean over samples of the target's mass on candidates
                                       whose logged propensity is below overlap_floor */
} ev_policy_report;

typedef struct ev_report {
    size_t n;                          /* samples */
    ev_policy_report pol[2];           /* 0: candidate, 1: baseline */
    ev_interval diff[EV_N_ESTIMATORS]; /* policy 0 - policy 1, paired */
    double logged_value;               /* mean observed reward: the logging policy's value */
    double min_propensity;             /* smallest logged propensity of a chosen candidate */
    double confidence;                 /* the level the intervals were computed at */
    ev_interval_kind interval;         /* and how */
} ev_report;

/*
 * ev_evaluate() - estimate the values of the two target policies of the @n
 * samples @s, and their difference, into *@out.
 * @cfg: borrowed   @s: [n] borrowed, not retained   @out: written only on success
 * @errbuf: on failure, if non-NULL and @errlen > 0, a NUL-terminated line
 * saying which setting or which sample and field was wrong.
 * Deterministic: the same inputs and seed give bit-identical reports.
 * Return: BASE_OK; BASE_EINVAL for a bad config, n == 0, or a malformed
 *         sample (NULL array, chosen >= n_cand, action id >= n_actions, a pmf
 *         entry outside [0, 1] or a pmf not summing to 1 within EV_PMF_TOL,
 *         logged[chosen] == 0); BASE_ELIMIT past a cap; BASE_ENUMERIC for a
 *         non-finite input (pmf, logit, x, reward) or a failed solve;
 *         BASE_ENOMEM.
 */
base_err ev_evaluate(const ev_config *cfg, const ev_sample *s, size_t n, ev_report *out,
                     char *errbuf, size_t errlen);

/*
 * The promotion gate: should policy 0 (the candidate) replace policy 1 (the
 * baseline)?
 *
 * The rule is one-sided on the paired difference: PROMOTE iff the data are
 * fit and diff[estimator].lo > margin, i.e. the lower confidence bound of
 * V(candidate) - V(baseline), computed on the same samples (the same
 * bootstrap resamples, or per-sample differences), beats the margin. Its
 * false-promotion rate for a candidate no better than baseline + margin is
 * (1 - confidence) / 2 when the interval's lower tail is calibrated
 * (measured at 0.95: 2.4% to 3.4%, docs/promotion.md).
 *
 * Why paired: the tempting rule "candidate's own lower bound > baseline's
 * point estimate + margin" ignores the baseline's noise. When the two
 * estimates are weakly correlated (different actions favoured, so different
 * samples carry weight) the difference's spread is about sqrt(se0^2 + se1^2),
 * not se0, and that rule promotes an equal candidate far more often than
 * alpha. When they are strongly correlated (similar policies) pairing also
 * cancels the shared noise, so the paired rule is both safer and more
 * powerful.
 *
 * Fit: n >= min_samples, a finite difference interval for the estimator,
 * and for both policies unsupported_mass <= max_unsupported and ess / n >=
 * min_ess_fraction (an unsupported or weight-starved baseline biases the
 * difference as much as a candidate does).
 */
typedef struct ev_gate_config {
    ev_estimator estimator;  /* default EV_DR */
    double margin;           /* required improvement, reward units (< 0: non-inferiority);
                                default 0 */
    size_t min_samples;      /* default 1000 */
    double max_unsupported;  /* default 0.05: mass where logging put almost none */
    double min_ess_fraction; /* default 0.01: ESS / n below this is not fit */
} ev_gate_config;

typedef enum ev_verdict {
    EV_PROMOTE = 0, /* fit, and the difference's lower bound beats the margin */
    EV_HOLD,        /* fit, but not shown better by the margin */
    EV_NOT_FIT,     /* the data cannot answer: too few, unsupported, weight-starved */
} ev_verdict;

/* The defaults above into *@g. */
void ev_gate_config_default(ev_gate_config *g);

/* "promote", "hold", "not_fit"; "unknown" for anything else. Static, never NULL. */
const char *ev_verdict_name(ev_verdict v);

/*
 * ev_gate() - the verdict on report @r under gate @g (both borrowed).
 * @why: if non-NULL and @whylen > 0, a one-line human reason, NUL-terminated,
 * truncated to @whylen. A bad @g (estimator out of range, a non-finite
 * margin, a fraction outside [0, 1]) is EV_NOT_FIT with the reason saying so.
 */
ev_verdict ev_gate(const ev_gate_config *g, const ev_report *r, char *why, size_t whylen);

#endif
