#ifndef PROTO_EXPLAIN_H
#define PROTO_EXPLAIN_H

/*
 * The explain reply: the breakdown of one logged decision (docs/protocol.md,
 * "explain"; docs/algorithms.md, "Explanations"). One msgpack map:
 *     {"ok":true, "event_id":"ev-42", "policy":"faq", "user_id":"~3f...",
 *      "conversation_id":"~9a...", "slot":"online",
 *      "model_version":7, "production_version":0, "reward_version":"h00ff...",
 *      "chosen":"greet", "chosen_index":0, "breakdown":true,
 *      "candidates":[{"id":"greet", "base_logit":1.5, "base_prob":0.62,
 *                     "head_score":0.71, "exploration":0.005,
 *                     "probability":0.955}, ...],
 *      "status":"joined", "reward":1.0, "defaulted":false, "unknown":false,
 *      "n_outcomes":1, "credit":"none", "share":0.0,
 *      "outcomes":[{"signal":"thumbs_up", "value":1.0, "outcome_id":"o-1",
 *                   "ts":1700000001000, "status":"applied"}, ...]}
 * "user_id" and "conversation_id" are the stored (pseudonymised) ids, present only
 * when the decision had one. Numbers are float64 on the wire, each the exact value of a float32 (reward
 * and share excepted, which are float64), so "probability" is the logged pmf
 * bit for bit. "head_score" and "exploration" are present only with
 * "breakdown":true (records written by decide since the breakdown exists);
 * "reward_version" (the spec that computed the reward) only when known, so not
 * for a closed decision, which has no reward; "reward", "defaulted", "unknown",
 * "n_outcomes", "credit" and "share" are the reward so far for a pending
 * decision and the reward computed for a joined one, and absent when the
 * joined record was not found; so is "outcomes", the outcomes addressed to
 * the decision's event id, oldest first, at most PROTO_EXPLAIN_MAX_OUTCOMES
 * (then "outcomes_truncated":true follows, absent otherwise). An outcome's
 * "outcome_id" is absent when it had none; "status" is one of "applied",
 * "superseded", "late" (reward/fate.h).
 *
 * Invariants: proto_explain_decode(proto_reply_explain(x)) gives back x; the
 * encoder appends a whole map or leaves the buffer as it was. Reentrant.
 */

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/record.h"

typedef struct proto_explain_cand {
    char id[BASE_NAME_MAX + 1];
    float base_logit;
    float base_prob;   /* softmax(base_logit / T) */
    float head_score;  /* with breakdown only */
    float exploration; /* with breakdown only */
    float probability; /* the logged pmf */
} proto_explain_cand;

#define PROTO_EXPLAIN_MAX_OUTCOMES 64 /* outcomes listed in one reply */

typedef struct proto_explain_outcome {
    char signal[BASE_NAME_MAX + 1];
    char outcome_id[BASE_ID_MAX + 1]; /* "": none */
    double value;                     /* as observed */
    int64_t ts_ms;                    /* the outcome's time */
    char status[16];                  /* "applied", "superseded", "late" */
} proto_explain_outcome;

typedef struct proto_explain {
    char event_id[BASE_ID_MAX + 1];
    char policy[BASE_NAME_MAX + 1];
    char user_id[BASE_ID_MAX + 1];          /* as stored (a pseudonym); "": none */
    char conversation_id[BASE_ID_MAX + 1];  /* as stored (a pseudonym); "": none */
    char slot[BASE_NAME_MAX + 1];           /* "online", "production" */
    uint64_t model_version;                 /* the online head's n_updates then */
    uint64_t production_version;            /* the production snapshot then (0: the base model) */
    char reward_version[BASE_NAME_MAX + 1]; /* "": unknown */
    char chosen[BASE_NAME_MAX + 1];
    uint32_t chosen_index;
    bool breakdown; /* head_score and exploration are meaningful */
    uint32_t n_cand;
    proto_explain_cand *cand; /* [n_cand]; borrowed when encoding, owned once decoded */
    char status[16];          /* "pending" | "joined" */
    bool has_reward;          /* the fields below are meaningful */
    double reward;
    bool defaulted;
    bool unknown;
    uint32_t n_outcomes;
    char credit[16]; /* "none", "last", "uniform", "discounted" */
    double share;
    uint32_t n_listed;               /* with has_reward: <= PROTO_EXPLAIN_MAX_OUTCOMES */
    proto_explain_outcome *outcomes; /* [n_listed]; borrowed when encoding, owned once decoded */
    bool outcomes_truncated;         /* more outcomes than listed */
} proto_explain;

/*
 * proto_reply_explain() - append the explain reply for @x (borrowed).
 * Return: BASE_OK; BASE_EINVAL if n_cand is 0 or above BASE_CAND_MAX,
 *         chosen_index is not below it or n_listed is above
 *         PROTO_EXPLAIN_MAX_OUTCOMES; BASE_ELIMIT or BASE_ENOMEM from @out,
 *         which is then left as it was.
 */
base_err proto_reply_explain(base_buf *out, const proto_explain *x);

/*
 * proto_explain_decode() - decode a successful explain reply into @out; on
 * success out->cand (and out->outcomes when n_listed > 0) is allocated
 * (proto_explain_fini()). Unknown keys are
 * skipped. *out is written only on success.
 * Return: BASE_OK; BASE_EPROTO (not an ok explain reply, a field of the wrong
 *         type or past its cap); BASE_ENOMEM.
 */
base_err proto_explain_decode(const uint8_t *buf, size_t len, proto_explain *out);

/* proto_explain_fini() - free a decoded reply's candidates and outcomes. Accepts NULL; idempotent. */
void proto_explain_fini(proto_explain *x);

#endif
