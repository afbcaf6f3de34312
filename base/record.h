#ifndef BASE_RECORD_H
#define BASE_RECORD_H

/*
 * The records every layer shares: a decision, an outcome, a joined example
 * and a model snapshot. policy/, reward/ and storage/ never include each
 * other; they meet here. service/ moves these records between them.
 *
 * Ownership: each record is one heap object made by its _new function and
 * released by its _free function (which accepts NULL). Array members of a
 * decision and a model live in the same allocation as the record.
 *
 * Limits: strings are NUL-terminated and at most BASE_NAME_MAX or BASE_ID_MAX
 * bytes; dim <= BASE_DIM_MAX; n_cand <= BASE_CAND_MAX; actions are indices
 * below BASE_ACTIONS_MAX into the policy's configured action set.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BASE_NAME_MAX 64         /* policy, action and signal names */
#define BASE_ID_MAX 64           /* event, outcome and conversation ids */
#define BASE_DIM_MAX 4096        /* context embedding length */
#define BASE_ACTIONS_MAX 4096    /* configured actions per policy */
#define BASE_CAND_MAX 1024       /* candidates in one decision */
#define BASE_STREAM_ID_MAX 48    /* a Redis stream id "ms-seq" */
#define BASE_ACTION_DIM_MAX 1024 /* features per candidate of an open action set */

/*
 * The serving slots of a policy: "online" learns from every joined example;
 * "production" is a frozen snapshot the registry names (docs/promotion.md).
 */
enum base_slot {
    BASE_SLOT_ONLINE = 0,
    BASE_SLOT_PRODUCTION = 1,
};

/* "online" or "production" ("unknown" past the enum); and back (false for other names). */
const char *base_slot_name(uint32_t slot);
bool base_slot_from_name(const char *name, uint32_t *out);

/* How a decision came to be. */
enum base_decision_source {
    BASE_SRC_DECIDE = 0, /* rlfeed chose the action */
    BASE_SRC_LOG = 1,    /* the frontend chose it and logged it with its pmf */
};

typedef struct base_decision {
    char policy[BASE_NAME_MAX + 1];
    char event_id[BASE_ID_MAX + 1];
    char conversation_id[BASE_ID_MAX + 1]; /* "" when absent */
    char user_id[BASE_ID_MAX + 1];         /* the customer; "" when absent */
    int64_t ts_ms;                         /* decision time, service clock, ms since epoch */
    uint64_t model_version;                /* version of the head that produced pmf */
    uint32_t turn;                         /* turn within the conversation, 0 when absent */
    uint32_t source;                       /* enum base_decision_source */
    uint32_t deferred;                     /* 1: learned from only after an activation */
    uint64_t lsn;                          /* the policy's log sequence number: replay order */
    uint32_t overflow;     /* 1: served past max_pending: logged, never joined or learned */
    uint32_t slot;         /* enum base_slot that served it */
    uint64_t prod_version; /* snapshot version of the production slot then (0: the base model) */
    uint32_t dim;          /* embedding length */
    uint32_t emb_storage;  /* enum base_emb_storage: how records store embedding (f32 default) */
    uint32_t n_cand;       /* number of candidates, >= 1 */
    uint32_t chosen;       /* index into the candidate arrays, < n_cand */
    float *embedding;      /* [dim] context embedding, then the candidates' features */
    uint32_t *action;      /* [n_cand] action index of each candidate (open: all 0) */
    float *base_logit;     /* [n_cand] base model score of each candidate */
    float *pmf;            /* [n_cand] served probabilities, sum 1 */
    /* The breakdown of pmf (docs/algorithms.md, "Explanations"); absent in log records. */
    uint32_t has_breakdown; /* 1: the two arrays below hold it */
    float *head_score;      /* [n_cand] the serving slot's head score */
    float *explore;         /* [n_cand] exploration share of pmf (the canary mixture's) */
    /*
     * Open action sets (docs/algorithms.md, "Open action sets"): the candidates are
     * described by features rather than known by index. action_dim 0: a closed set, and
     * the two pointers are NULL. Else features = embedding + dim, so the context and the
     * features are one array of dim + n_cand * action_dim values (the head reads both
     * from the embedding pointer), and cand_id holds the candidates' ids.
     */
    uint32_t action_dim;                /* features per candidate, 0..BASE_ACTION_DIM_MAX */
    float *features;                    /* [n_cand x action_dim], row per candidate */
    char (*cand_id)[BASE_NAME_MAX + 1]; /* [n_cand] */
    /* shared = on: the inbox entry another instance forwarded it as; "" when served here */
    char inbox_id[BASE_STREAM_ID_MAX + 1];
    /*
     * A closed set: the hash of the policy's action names in their order when it was made
     * (as a snapshot's actions_hash), which says what the indexes in action name. "" for an
     * open set, and in records older than it.
     */
    char actions_hash[24];
} base_decision;

/* Returns a decision with zeroed strings and arrays, or NULL (OOM or caps). */
base_decision *base_decision_new(uint32_t dim, uint32_t n_cand);
/* The same for an open action set with @action_dim features per candidate (0: closed). */
base_decision *base_decision_new_open(uint32_t dim, uint32_t n_cand, uint32_t action_dim);
base_decision *base_decision_clone(const base_decision *d);
void base_decision_free(base_decision *d);

/* What an outcome-stream record is. */
enum base_outcome_type {
    BASE_OUT_SIGNAL = 0,   /* an observed signal (thumbs, csat, resolved...) */
    BASE_OUT_ACTIVATE = 1, /* a deferred decision was shown (signal and value unused) */
};

typedef struct base_outcome {
    char policy[BASE_NAME_MAX + 1];
    char event_id[BASE_ID_MAX + 1];        /* "" when addressed to a conversation */
    char conversation_id[BASE_ID_MAX + 1]; /* "" when absent */
    char outcome_id[BASE_ID_MAX + 1];      /* idempotency key; "" when absent */
    char supersedes[BASE_ID_MAX + 1];      /* outcome_id this one corrects; "" when absent */
    char user_id[BASE_ID_MAX + 1];         /* rate-limit key; "" when absent */
    char signal[BASE_NAME_MAX + 1];        /* a signal named in the reward spec */
    uint32_t type;                         /* enum base_outcome_type */
    double value;                          /* 1.0 for plain events */
    int64_t ts_ms;                         /* when it happened (client) or arrived */
    int64_t arrived_ms;                    /* when the service received it (service clock) */
    uint64_t lsn;                          /* the policy's log sequence number: replay order */
    char inbox_id[BASE_STREAM_ID_MAX + 1]; /* shared = on: as in base_decision; "" here */
} base_outcome;

/* How a conversation-level outcome was shared among the conversation's decisions. */
enum base_credit_rule {
    BASE_CREDIT_NONE = 0,       /* no conversation-level outcome reached this decision */
    BASE_CREDIT_LAST = 1,       /* all to the final turn */
    BASE_CREDIT_UNIFORM = 2,    /* 1/n to each of n decisions */
    BASE_CREDIT_DISCOUNTED = 3, /* gamma^(T - t) to turn t of final turn T */
};

typedef struct base_joined {
    base_decision *decision; /* owned */
    double reward;           /* final reward after transforms, aggregation and clipping */
    uint32_t n_outcomes;     /* outcomes that contributed */
    bool defaulted;          /* no outcome in the window: reward is the default */
    bool unknown;            /* no outcome and the spec says "unknown": not learned from */
    uint32_t credit;         /* enum base_credit_rule applied to conversation outcomes */
    double share;            /* this decision's share of them (0 with BASE_CREDIT_NONE) */
    char spec_version[BASE_NAME_MAX + 1]; /* the reward spec that produced the reward */
    int64_t joined_ts_ms;                 /* when the window closed */
} base_joined;

base_joined *base_joined_new(base_decision *d); /* takes @d on success */
void base_joined_free(base_joined *j);          /* frees the decision too */

/*
 * How a head serves and learns, as its policy configured it: with the
 * snapshot's shape and learner, enough to rebuild a head that scores exactly
 * as the one snapshotted did (policy/head.h, pol_head_from_snapshot).
 * explorer is "" in snapshots written before these were recorded, and
 * features "" in those written before feature maps (read: linear; rff_dim
 * and bandwidth are 0 unless features is "rff" or "rff_norm").
 */
#define BASE_PF_MEMBERS_MAX 511 /* the description of a portfolio's members */
#define BASE_PF_LEARNERS_MAX 8  /* learners in a portfolio (POL_PORTFOLIO_MAX) */
#define BASE_PF_SEL_MAX 1024    /* numbers of a portfolio's selector */

typedef struct base_head_settings {
    char explorer[BASE_NAME_MAX + 1];
    double epsilon;
    double temperature;
    double learning_rate;
    double lambda;
    double prior_mean;
    double base_weight;
    double kl;
    double gamma;
    double ucb_alpha;
    uint64_t seed;
    char features[BASE_NAME_MAX + 1]; /* the feature map: "linear", "quad", "rff", ... */
    uint32_t rff_dim;
    double bandwidth;
    uint32_t action_dim;      /* an open action set's features per candidate; 0: closed */
    uint32_t interaction_dim; /* its action map's R (policy/amap.h); 0 when closed */
} base_head_settings;

/*
 * A snapshot of a learned policy head (a checkpoint): the head's parameters
 * and the learner's state, in a layout owned by policy/, plus the bookkeeping
 * needed for recovery. Not to be confused with the frontend's frozen base
 * model, which rlfeed never holds (only its version, base_version).
 */
typedef struct base_snapshot {
    char policy[BASE_NAME_MAX + 1];
    char learner[BASE_NAME_MAX + 1];
    char last_joined_id[BASE_STREAM_ID_MAX + 1]; /* last applied joined-stream id or "" */
    /*
     * Recovery: replaying the decision and outcome streams after these ids
     * (in lsn order), skipping decisions that have a joined record after
     * scan_joined, rebuilds the join as it was. "" = from the start.
     */
    char scan_decisions[BASE_STREAM_ID_MAX + 1];
    char scan_outcomes[BASE_STREAM_ID_MAX + 1];
    char scan_joined[BASE_STREAM_ID_MAX + 1];
    uint64_t next_lsn;  /* the policy's next log sequence number */
    uint64_t epoch_lsn; /* the head learns only from decisions with lsn >= it (0: all): set
                           when a policy change started a new head version */
    uint64_t parent;    /* version of the previous snapshot of this policy (0: none) */
    /* shared = on: the last inbox entry consumed (docs/architecture.md); "" = none */
    char inbox_pos[BASE_STREAM_ID_MAX + 1];
    char spec_version[BASE_NAME_MAX + 1]; /* reward spec the examples were joined under */
    char base_version[BASE_NAME_MAX + 1]; /* base model the head was trained against */
    char config_hash[24];                 /* hash of the policy's configuration */
    /*
     * Hash of the closed action set's names in their order (service/learner.c): the
     * head learns actions by position, so a snapshot serves only the list it was
     * learned for. "" = an open set, or not recorded (snapshots older than it).
     */
    char actions_hash[24];
    uint64_t version;   /* monotonically increasing per policy */
    uint64_t n_updates; /* joined examples applied */
    int64_t ts_ms;      /* when the snapshot was taken */
    base_head_settings settings;
    uint32_t dim;
    uint32_t n_actions;
    uint32_t n_params;
    uint32_t n_state;
    float *params; /* [n_params] */
    double *state; /* [n_state] */
    /*
     * A portfolio of heads (policy/portfolio.h) records, besides its serving
     * head above, every learner and its selector; all empty for a single
     * head. pf_members names the members in order (pol_portfolio_describe()),
     * so a restore can tell whether the configuration still has the same
     * portfolio. Owned: base_snapshot_free() frees them.
     */
    char pf_members[BASE_PF_MEMBERS_MAX + 1];
    uint32_t pf_n_learners;
    struct base_snapshot **pf_learner; /* [pf_n_learners]: learner, params, state, n_updates */
    uint32_t pf_n_sel;
    double *pf_sel; /* [pf_n_sel]: the selector's numbers, in policy/portfolio.c's layout */
} base_snapshot;

base_snapshot *base_snapshot_new(uint32_t n_params, uint32_t n_state);
/* Frees @m with its portfolio learners and selector; accepts NULL. */
void base_snapshot_free(base_snapshot *m);

/*
 * base_actions_differ() - whether two action-list hashes (a decision's or a snapshot's
 * `acts`) name different lists: both known ("" is a record written before they were
 * recorded, not compared) and unequal.
 */
bool base_actions_differ(const char *a, const char *b);

/* Whether snapshots @a and @b have the same dim, action count and action_dim. */
bool base_snapshot_same_shape(const base_snapshot *a, const base_snapshot *b);

/*
 * base_strlcpy() - copy @src into @dst of @size bytes, always NUL-terminated.
 * Return: true if all of @src fit.
 */
bool base_strlcpy(char *dst, const char *src, size_t size);

#endif
