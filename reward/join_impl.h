#ifndef REWARD_JOIN_IMPL_H
#define REWARD_JOIN_IMPL_H

/*
 * The join's insides, shared by the files that implement it and by no one
 * else (the contract is reward/join.h):
 *   join.c           the public calls: life cycle, decisions, applying
 *                    outcomes and activations, expiry, stats, recovery
 *   join_index.c     pending decisions: the table by event id, the heap by
 *                    deadline, the conversations, and each decision's
 *                    contributions
 *   join_memory.c    what the join remembers beyond its pending decisions:
 *                    closed event and conversation ids, the outcome ids of
 *                    closed decisions and late outcomes, held early outcomes
 *   join_classify.c  the status of an outcome or activation (changes nothing)
 * with reward/credit.h (shares and aggregation) and reward/rate.h (the user
 * rate cap) as pure helpers.
 *
 * Layout. Pending decisions live in a hash table by event id and in a
 * binary min-heap by (deadline, arrival); decisions of one conversation are
 * also linked in a list hanging off a conversation record. Closed decisions
 * (event id only) and emptied conversations (conversation id) are remembered
 * in a FIFO + hash set for late_memory_ms, at most 2 * max_pending of them.
 * The outcome ids of closed decisions, and of late outcomes, are remembered
 * as 64-bit keys (hash of scope and outcome id) in another FIFO + hash set,
 * as long as their decision is, at most 2 * max_pending of them, so a retry
 * stays a duplicate. Outcomes that arrive before their decision are held in
 * a third FIFO + hash for backward_window_ms. The hash tables are base_itab:
 * they start small, double with what they hold and halve after a peak (each
 * entry keeps its hash), so memory follows the pending decisions, not
 * max_pending, and the
 * first match of an id is its newest entry. User rate buckets live in a
 * small set-associative table, so a flood of distinct user ids costs bounded
 * memory.
 *
 * Threads: none; the caller of reward/join.h serialises calls.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/heap.h"
#include "base/itab.h"
#include "reward/credit.h"
#include "reward/join.h"
#include "reward/rate.h"

typedef struct rwd_conv rwd_conv;

/* A pending (or deferred) decision. */
typedef struct rwd_entry {
    base_decision *d;
    int64_t deadline; /* its window closes here: ts (or activation) + window */
    uint64_t seq;     /* arrival order */
    size_t heap_i;    /* its index in heap */
    bool deferred;
    uint32_t n_contrib;
    uint32_t cap_contrib;
    rwd_contrib *c;  /* [cap_contrib], in arrival order */
    uint32_t credit; /* enum base_credit_rule once a conversation outcome reached it */
    double share;
    void *next_hash; /* in ev */
    uint64_t hash;   /* of d->event_id */
    rwd_conv *cv;    /* NULL without a conversation id */
    struct rwd_entry *cv_next;
    struct rwd_entry *cv_prev;
} rwd_entry;

/* A conversation with pending decisions. */
struct rwd_conv {
    char id[BASE_ID_MAX + 1];
    rwd_entry *head; /* newest first */
    uint32_t n;
    void *next_hash; /* in cv */
    uint64_t hash;   /* of id */
};

/*
 * A closed decision's event id (or a conversation id once its last pending
 * decision closed), remembered to classify late outcomes.
 */
typedef struct rwd_closed {
    char id[BASE_ID_MAX + 1];
    bool conv; /* id is a conversation id */
    int64_t forget_at;
    void *next_hash; /* in cl */
    uint64_t hash;   /* of id */
    struct rwd_closed *next_fifo;
} rwd_closed;

/*
 * An outcome id remembered after its decision closed (or of a late outcome),
 * under a key hashed from its event id or its conversation id.
 */
typedef struct rwd_seen {
    uint64_t key; /* also its hash in sn */
    int64_t forget_at;
    void *next_hash; /* in sn */
    struct rwd_seen *next_fifo;
} rwd_seen;

/* An outcome held for a decision that has not arrived yet. */
typedef struct rwd_held {
    base_outcome o;
    int64_t expire_at;
    uint64_t seq;    /* arrival order, kept for first/last once attached */
    uint64_t hash;   /* of its event id (which is cleared once consumed) */
    void *next_hash; /* in hd */
    struct rwd_held *next_fifo;
} rwd_held;

struct rwd_join {
    rwd_spec spec;
    char version[BASE_NAME_MAX + 1];
    size_t max_pending;
    uint64_t seq; /* arrival order of decisions and outcomes */

    base_itab ev;   /* rwd_entry by event id */
    base_heap heap; /* of rwd_entry *, by (deadline, seq); at most max_pending */
    size_t n_deferred;
    base_itab cv; /* rwd_conv by conversation id */

    base_itab cl; /* rwd_closed by id */
    rwd_closed *cl_head, *cl_tail;
    size_t n_closed;

    base_itab sn; /* rwd_seen by key */
    rwd_seen *sn_head, *sn_tail;
    size_t n_seen;

    base_itab hd; /* rwd_held by event id */
    rwd_held *hd_head, *hd_tail;
    size_t n_held;

    rwd_rate *rate; /* NULL without a rate cap */
    bool replay;    /* re-applying logged outcomes: no rate cap, not counted */

    rwd_join_stats st;
};

/*
 * A decision whose window has closed (deadline <= now) is closed even before
 * rwd_join_expire() emits it: outcomes and activations are judged by @now,
 * never by how promptly the caller expires. Such an entry answers as a
 * remembered closed id would.
 */
static inline bool rwd_entry_open(const rwd_entry *e, int64_t now)
{
    return e->deadline > now;
}

static inline bool rwd_entry_remembered(const rwd_join *j, const rwd_entry *e, int64_t now)
{
    return j->spec.late_memory_ms > 0 && e->deadline + j->spec.late_memory_ms > now;
}

/* Whether outcome ids on @e count as applied at @now: open, or closed and remembered. */
static inline bool rwd_entry_counts(const rwd_join *j, const rwd_entry *e, int64_t now)
{
    return rwd_entry_open(e, now) || rwd_entry_remembered(j, e, now);
}

/* ---- join_index.c: pending decisions ----------------------------------- */

/* The hash of an event or conversation id in the join's tables. */
uint64_t rwd_join_hash(const char *id);

/* The pending decision with @event_id, or NULL. */
rwd_entry *rwd_join_entry_find(const rwd_join *j, const char *event_id);
/*
 * Index @e (its d, deadline and seq set): by event id and deadline.
 * Return: BASE_OK; BASE_ELIMIT past max_pending (nothing is indexed).
 */
base_err rwd_join_entry_insert(rwd_join *j, rwd_entry *e);
/* Remove @e from both indexes (not from its conversation). */
void rwd_join_entry_remove(rwd_join *j, rwd_entry *e);
/* The heap's order and index callbacks, and its element at index @i. */
bool rwd_join_entry_before(const void *a, const void *b);
void rwd_join_entry_placed(void *elem, size_t i);
rwd_entry *rwd_join_entry_at(const rwd_join *j, size_t i);
/* Restore the heap order after @e->deadline changed. */
void rwd_join_entry_moved(rwd_join *j, rwd_entry *e);
/* Free @e, its decision and contributions; accepts NULL. */
void rwd_join_entry_free(rwd_entry *e);

/* The pending conversation @id, or NULL. */
rwd_conv *rwd_join_conv_find(const rwd_join *j, const char *id);
/* Link @e into the conversation of its decision (if any). Return: BASE_OK; BASE_ENOMEM. */
base_err rwd_join_conv_link(rwd_join *j, rwd_entry *e);
/*
 * Unlink @e from its conversation, freeing the conversation when empty; an
 * emptied conversation is remembered as closed at @at.
 */
void rwd_join_conv_unlink(rwd_join *j, rwd_entry *e, int64_t at);

/* The first contribution of @e with @outcome_id, or NULL. */
const rwd_contrib *rwd_join_contrib_find(const rwd_entry *e, const char *outcome_id);
/* Make room for one more contribution on @e. Return: BASE_OK; BASE_ENOMEM. */
base_err rwd_join_contrib_reserve(rwd_join *j, rwd_entry *e);
/*
 * Record @o's contribution @value (signal @sig) on @e; @seq is its arrival
 * order. Return: BASE_OK; BASE_ENOMEM (nothing changed).
 */
base_err rwd_join_contrib_add(rwd_join *j, rwd_entry *e, const base_outcome *o, uint32_t sig,
                              double value, uint64_t seq);
/* Every contribution of @e with @outcome_id stops counting. */
void rwd_join_contrib_deactivate(rwd_entry *e, const char *outcome_id);

/* Free every pending decision and conversation (for rwd_join_free). */
void rwd_join_index_free(rwd_join *j);

/* ---- join_memory.c: closed ids, outcome ids, held outcomes ------------- */

/* Remember @id as closed at @at, for late_memory_ms; if the memory is full, forget the oldest. */
void rwd_join_closed_remember(rwd_join *j, const char *id, bool is_conv, int64_t at);
/*
 * Until when @id (an event id, or a conversation id when @is_conv) is
 * remembered as closed; INT64_MIN if it is not. The latest record wins.
 */
int64_t rwd_join_closed_until(const rwd_join *j, const char *id, bool is_conv);

/* Whether @o has an outcome id remembered at @now (under its event id, else its conversation). */
bool rwd_join_seen_has(const rwd_join *j, const base_outcome *o, int64_t now);
/* Remember @o's outcome id (non-empty) until @forget_at. */
void rwd_join_seen_remember_outcome(rwd_join *j, const base_outcome *o, int64_t forget_at);
/* @e is closing: remember its contributions' outcome ids as long as it is remembered. */
void rwd_join_seen_remember_entry(rwd_join *j, const rwd_entry *e);

/* Hold @o until @now + backward_window_ms. Return: BASE_OK; BASE_ENOMEM. */
base_err rwd_join_held_add(rwd_join *j, const base_outcome *o, int64_t now);
/*
 * Among the outcomes held for @o's event at @now: how many (*out_n) and
 * whether one has @o's outcome id (*out_dup).
 */
void rwd_join_held_scan(const rwd_join *j, const base_outcome *o, int64_t now, uint32_t *out_n,
                        bool *out_dup);
/* The oldest outcome held for @event_id at @now, or NULL. */
rwd_held *rwd_join_held_oldest(const rwd_join *j, const char *event_id, int64_t now);
/* @h was attached: it no longer counts as held (nor as dangling when it expires). */
void rwd_join_held_consume(rwd_held *h);
/* Lower *io_lsn to the smallest lsn of an outcome still held; true if there is one. */
bool rwd_join_held_min_lsn(const rwd_join *j, uint64_t *io_lsn);

/* Forget what expired by @now: closed ids, outcome ids, held outcomes (counted dangling). */
void rwd_join_memory_forget(rwd_join *j, int64_t now);
/* Free all three memories (for rwd_join_free). */
void rwd_join_memory_free(rwd_join *j);

/* ---- join_classify.c: statuses ------------------------------------------ */

/* What rwd_join_classify() found, beyond the status. */
typedef struct rwd_verdict {
    uint32_t sig;      /* the signal's index in the spec */
    double val;        /* its contribution */
    rwd_entry *e;      /* RWD_MATCHED/CORRECTED for an event: its decision */
    rwd_conv *c;       /* RWD_MATCHED/CORRECTED for a conversation */
    int64_t forget_at; /* RWD_LATE/LATE_CORRECTION: when the closed decision is forgotten */
} rwd_verdict;

/* The status of @o at @now, changing nothing; *out says where it applies. */
rwd_status rwd_join_classify(const rwd_join *j, const base_outcome *o, int64_t now,
                             rwd_verdict *out);

#endif
