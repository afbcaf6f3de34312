#ifndef PROTO_POLICY_H
#define PROTO_POLICY_H

/*
 * What rlfeedd says about its policies on GET /api/v1/policies and
 * GET /api/v1/policies/{name} (docs/protocol.md section 11): a reply map like every other,
 * written here so that the service writes no msgpack by hand, and printed as JSON by
 * proto/json.h.
 *
 *   list:  {"ok":true, "policies":[{"name":"faq", "serve":"online", "canary":0.0,
 *           "versions":{"online":12, "production":3}, "reward_version":"h1f0c..."}, ...]}
 *   one:   {"ok":true, "policy":{<the list entry's keys>, "model_checksum":"895f...",
 *           "config_hash":"c...", "reward":{...}, "config":{...}}}
 *
 * Keys are written in the order of proto_policy_info's fields. There is no decoder: no op
 * of the msgpack protocol carries these replies.
 * Thread-safety: reentrant; every input is borrowed.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/record.h"

/* One signal of a reward spec (docs/rewards.md). */
typedef struct proto_policy_signal {
    char name[BASE_NAME_MAX + 1];
    const char *kind;        /* "event", "flag", "number" (static) */
    double weight;           /* its weight in the reward */
    double min, max;         /* number: the values allowed */
    double map_min, map_max; /* number: what [min, max] maps to */
    const char *aggregation; /* "sum", "first", ... (static) */
} proto_policy_signal;

typedef struct proto_policy_info {
    char name[BASE_NAME_MAX + 1];
    char serve[16];              /* the slot serving by default now: "online", "production" */
    double canary;               /* with serve = production, the online slot's share now */
    uint64_t online_version;     /* examples the online head learned */
    uint64_t production_version; /* the promoted snapshot's version (0: the base model) */
    char reward_version[BASE_NAME_MAX + 1];
    /* detail only */
    uint64_t model_checksum; /* the online head's, sent as 16 hex digits */
    char config_hash[24];    /* stamped on snapshots */
    /* "reward": the reward spec */
    uint32_t n_signals;
    const proto_policy_signal *signals; /* [n_signals] */
    double clip_min, clip_max;
    double default_reward;
    bool unknown_when_empty;
    int64_t window_ms, backward_window_ms;
    const char *credit; /* "last", "uniform", "discounted" (static) */
    double credit_gamma;
    uint32_t max_outcomes;
    double user_rate_per_s, user_burst;
    /* "config": the head and the policy's settings as configured */
    uint32_t dim;
    uint32_t n_actions;
    const char (*actions)[BASE_NAME_MAX + 1]; /* [n_actions]; none for an open set */
    const char *action_set;                   /* "closed" or "open" (static) */
    uint64_t definition_version;              /* the policy catalog's; 0: the config file's */
    uint32_t action_dim;                      /* open: features per candidate; else 0 */
    uint32_t max_candidates;
    const char *learner, *explorer; /* names (static) */
    const char *portfolio;          /* the configured portfolio: "auto", "off" or a member list */
    double epsilon, temperature, learning_rate;
    uint64_t seed;
    uint32_t max_pending;
    char base_version[BASE_NAME_MAX + 1];
    const char *config_serve; /* the configured default slot (static) */
    double config_canary;
} proto_policy_info;

/*
 * proto_reply_policies() - append the list reply of @n policies @p[0..n) to @out (the
 * summary keys of each only).
 * proto_reply_policy() - append the one-policy reply of @p, with every detail.
 * Return: BASE_OK; BASE_ELIMIT or BASE_ENOMEM from @out, which is then left as it was.
 */
base_err proto_reply_policies(base_buf *out, const proto_policy_info *p, uint32_t n);
base_err proto_reply_policy(base_buf *out, const proto_policy_info *p);

#endif
