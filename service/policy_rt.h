#ifndef SERVICE_POLICY_RT_H
#define SERVICE_POLICY_RT_H

/*
 * The runtime of one policy: its head, its join, its log sequence numbers,
 * the recovery marks, the stored stream tails, its counters and the locks
 * that guard them. The engine owns an array of these, one per configured
 * policy, built at start-up and freed at exit; nothing is added or removed
 * while requests are served.
 *
 * Ownership: the runtime owns its head, its join, its action index and its
 * mark ring. @cfg and @eng are borrowed and outlive it.
 *
 * Threads and what they touch:
 *   - nng callback threads (decide, log, feedback, activate, stats): the head
 *     under head_lk as readers; the join, next_lsn and the marks under
 *     join_lk; the counters (atomics) without a lock.
 *   - the writer thread (persist completions): the tails under tail_lk and
 *     the counters; never the head or the join.
 *   - the learner thread: the head under head_lk as its only writer (of an owned
 *     policy: a follower's head is replaced by the registry thread, and a takeover's by
 *     the catalog thread), the
 *     join under join_lk (expiry, checkpoints), and the fields marked
 *     "learner thread only" without a lock.
 *   - the registry follower thread (service/registry.c): prod, prod_version and
 *     prod_acts under prod_lk (so does the learner thread when it applies a changed
 *     definition); serve and canary_ppm (atomics).
 *   - start-up (svc_engine_restore, before any other thread runs): all.
 *
 * Lock order (a thread holding one may take only those to its right):
 *
 *       join_lk  ->  tail_lk
 *       join_lk  ->  the engine's ack_lk (service/outcome.c)
 *       head_lk  (never held with another lock but the swap's below)
 *       prod_lk  (never held with another lock but the swap's below)
 *       ope.lk   (never held with another lock)
 *
 * join_lk is held while a record is queued for Redis (so the queue order is
 * the lsn order) and take_lsn reads the tails under it; persist's own queue
 * lock is taken inside join_lk and never the other way round, since
 * completions run on the writer thread with no queue lock held.
 *
 * A definition change swaps the runtimes under gate -> head_lk -> prod_lk -> join_lk
 * (docs/architecture.md, service/catalog_apply.c), taken in that order.
 *
 * Limits: the mark ring holds SVC_MARK_RING marks, one every SVC_MARK_EVERY
 * lsns; a full ring records no new marks (older ones stay valid, only less
 * tight).
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "base/hset.h"
#include "base/record.h"
#include "policy/head.h"
#include "reward/alarm.h"
#include "reward/join.h"
#include "service/config.h"
#include "service/observe.h"
#include "storage/store.h"

#define SVC_EXPIRE_BATCH                                                                           \
    256                    /* joined examples expired per policy in one go (a tick takes several) */
#define SVC_MARK_EVERY 64  /* lsns between recovery marks */
#define SVC_MARK_RING 4096 /* marks kept per policy */

typedef struct svc_engine svc_engine;

/* Counters of one policy; all monotonic, read by stats without locks. */
typedef struct svc_prt_counters {
    atomic_uint_fast64_t decisions;  /* decide requests answered */
    atomic_uint_fast64_t logged;     /* log requests accepted */
    atomic_uint_fast64_t unlogged;   /* decisions served but not logged: queue full */
    atomic_uint_fast64_t overflow;   /* decisions logged past max_pending, never joined */
    atomic_uint_fast64_t feedback;   /* outcomes matched or corrected within the window */
    atomic_uint_fast64_t duplicates; /* outcomes ignored by outcome_id */
    atomic_uint_fast64_t unknown_event;
    atomic_uint_fast64_t joined;    /* joined examples stored */
    atomic_uint_fast64_t defaulted; /* of which had no outcome */
    atomic_uint_fast64_t updates;   /* examples applied to the head */
    atomic_uint_fast64_t learn_errors;
    atomic_uint_fast64_t store_errors; /* records that ended unstored */
    atomic_uint_fast64_t snapshots;
    atomic_int_fast64_t reward_micro; /* sum of joined rewards, in 1e-6 units */
    /* by enum base_slot: decisions served, joined examples learned, their reward sum */
    atomic_uint_fast64_t slot_decisions[2];
    atomic_uint_fast64_t slot_joined[2];
    atomic_int_fast64_t slot_reward_micro[2];
    /* of those, the decisions the base model served: the production slot at version 0 */
    atomic_uint_fast64_t base_joined;
    atomic_int_fast64_t base_reward_micro;
    atomic_uint_fast64_t registry_errors; /* registry reads or production loads that failed */
    atomic_uint_fast64_t reward_alarms;   /* times the reward alarm was raised */
    atomic_uint_fast64_t epoch_skipped;   /* joined examples of decisions before a head version */
    atomic_uint_fast64_t def_changes;     /* catalog changes applied to this policy */
    atomic_uint_fast64_t forwarded;       /* follower: records stored in the owner's inbox */
    atomic_uint_fast64_t inbox;           /* owner: inbox entries taken (forwarded to it) */
    atomic_uint_fast64_t inbox_bad;       /* owner: inbox entries that did not decode */
    atomic_uint_fast64_t inbox_conflicts; /* owner: another decision under a pending event id */
    /* by segment ([0]: none or an unconfigured one, [1 + i]: cfg->segment[i]): decisions
     * served, and the exploration mass they spent (1 - p of the head's choice), 1e-6 units */
    atomic_uint_fast64_t seg_decisions[SVC_MAX_SEGMENTS + 1];
    atomic_uint_fast64_t seg_explore_micro[SVC_MAX_SEGMENTS + 1];
} svc_prt_counters;

/*
 * A recovery mark: the stream ids last stored (joined read first, then
 * decisions and outcomes) just before the record with log sequence number
 * @lsn was queued. Every record with lsn >= @lsn, and the joined record of
 * any such decision, was stored after these ids: replaying the streams from
 * a mark at or below the oldest pending lsn rebuilds the join (the writer
 * stores in queue order, and a decision is queued before its outcomes and
 * its joined record).
 */
typedef struct svc_mark {
    uint64_t lsn;
    char tail[3][BASE_STREAM_ID_MAX + 1];
} svc_mark;

typedef struct svc_prt {
    svc_engine *eng;
    /*
     * The policy's definition. Replaced whole (never changed in place) when the policy
     * catalog changes it (service/catalog.c): by the learner thread, holding gate as writer,
     * head_lk and join_lk; old definitions live until the engine is freed. Request ops hold
     * gate as reader for their whole run, so each sees one definition throughout.
     */
    _Atomic(const svc_policy_config *) cfg;
    pthread_rwlock_t gate;
    atomic_bool retired; /* the catalog retired it: requests get unknown_policy */
    uint64_t epoch_lsn;  /* learner thread: examples of decisions below it are not learned
                             (a change that started a new head version) */
    base_hset actions;   /* hash of an action name -> its index; replaced with cfg */

    pthread_rwlock_t head_lk;
    pol_portfolio *pf;              /* the online slot; guarded by head_lk; learner writes */
    atomic_uint_fast64_t n_updates; /* published copy of the head's update count */
    uint64_t head_gen;              /* guarded by head_lk: bumped by every writer */
    /* stats' model checksum and the head state (head_gen + 1, update count) it is of */
    atomic_uint_fast64_t ck_gen, ck_updates, ck_value;

    /*
     * The production slot: a frozen head the registry names, replaced whole
     * by the registry follower (service/registry.c), never learned into.
     */
    pthread_rwlock_t prod_lk;
    pol_head *prod; /* guarded by prod_lk; the base model (a fresh head) until promoted */
    /*
     * Guarded by prod_lk: the action list (its config's actions_hash) prod was learned for, its
     * snapshot's or else the definition's it was installed under; "" for the base model,
     * which has learned nothing and fits any list.
     */
    char prod_acts[24];
    /* written under prod_lk with prod; read with prod under it, or alone without it */
    atomic_uint_fast64_t prod_version; /* 0: the base model */
    /* How decisions are served: the registry's override, else the config. */
    atomic_uint serve;      /* enum base_slot */
    atomic_uint canary_ppm; /* with serve = production, the online slot's share, in 1e-6 */

    pthread_mutex_t join_lk;
    rwd_join *join;            /* guarded by join_lk */
    uint64_t next_lsn;         /* guarded by join_lk: the next log sequence number */
    svc_mark *marks;           /* guarded by join_lk: ring of recovery marks, oldest first */
    size_t mark_head, n_marks; /* guarded by join_lk */

    pthread_mutex_t tail_lk;
    char tail[3][BASE_STREAM_ID_MAX + 1]; /* guarded by tail_lk: last stored id per sto_kind */

    /* learner thread only (start-up before it runs) */
    char last_joined_id[BASE_STREAM_ID_MAX + 1]; /* written under head_lk too, for stats */
    uint64_t snapshot_updates;                   /* n_updates at the last checkpoint */
    uint64_t snapshot_lsn;                       /* next_lsn at the last checkpoint */
    char snapshot_inbox[BASE_STREAM_ID_MAX + 1]; /* inbox_pos at the last checkpoint */
    uint64_t last_version; /* version of the last checkpoint queued (its parent link) */
    uint64_t last_parent;  /* that checkpoint's parent: a new one at the same version keeps it */
    /*
     * The reward spec of the last example learned (its joined record's), or the restored
     * checkpoint's; "" before either. A checkpoint is stamped with it, not with the spec
     * configured now: a restart under another spec with nothing learned since must not
     * relabel the head (docs/promotion.md checks the spec a candidate learned under).
     */
    char learned_spec[BASE_NAME_MAX + 1];
    uint64_t trace; /* guarded by head_lk: hash chain of (event, reward) learned */
    base_joined *backlog[SVC_EXPIRE_BATCH]; /* expired, not yet accepted by persist */
    size_t n_backlog;
    rwd_alarm alarm;         /* on the rewards learned (reward/alarm.h) */
    atomic_uint alarm_state; /* published copy of alarm.state, for stats */

    /*
     * shared = on (docs/architecture.md, "Several instances serving one policy"). A
     * follower serves decisions from the owner's newest checkpoint (the registry thread
     * replaces pf under head_lk) and forwards what it serves and receives to the owner's
     * inbox; it never joins, learns or writes the policy's streams. Set at construction
     * (or by the catalog thread before a created policy is published), cleared by the
     * catalog thread after a takeover's swap and set again by the learner thread when the
     * lease is lost (step-down), each time under the gate, head_lk and join_lk.
     */
    atomic_bool follower;
    atomic_bool step_down; /* the lease thread found another owner: the learner steps it down */
    /*
     * A record of it was refused by the lease's fence: another instance owns it now, so a
     * retried outcome's `duplicate` (its original may be one of those) is not answered here.
     * Cleared when this instance owns it again (a takeover).
     */
    atomic_bool fenced;
    /* A follower whose owner does not run shared = on (its lease says so): requests refused. */
    atomic_bool owner_unshared;
    char holder[STO_OWNER_MAX + 1];         /* guarded by tail_lk: the owner a follower follows */
    char inbox_pos[BASE_STREAM_ID_MAX + 1]; /* guarded by join_lk: last inbox entry taken */

    svc_prt_counters c;
    svc_ope_window ope; /* OPE-readiness of the live log (service/observe.h); its own lock */
    atomic_int_fast64_t last_unlogged_ms; /* service clock of the last unlogged decision */
} svc_prt;

/*
 * svc_prt_init() - build the runtime of policy @cfg in @p (zeroed storage of
 * the caller's). @eng and @cfg are borrowed.
 * Return: BASE_OK; BASE_EINVAL for a head or reward spec the layers below
 *         reject (reason in @errbuf); BASE_ENOMEM. On failure @p is still
 *         safe to pass to svc_prt_fini().
 */
base_err svc_prt_init(svc_prt *p, svc_engine *eng, const svc_policy_config *cfg, char *errbuf,
                      size_t errlen);
void svc_prt_fini(svc_prt *p); /* accepts a zeroed or half-built runtime */

/* The index of action @name; false if the policy has no such action. Any thread. */
bool svc_prt_find_action(const svc_prt *p, const char *name, uint32_t *out);

/*
 * svc_prt_set_production() - serve @head (taken; NULL: a fresh head of the
 * policy's config, the base model) as the production slot, version
 * @version, learned for the action list @acts (its snapshot's actions_hash;
 * "" when it does not say). The old head is freed after the swap, outside the lock.
 * Return: BASE_OK; BASE_EINVAL if @head's shape or @acts does not match the policy
 *         (@head is freed); BASE_ENOMEM.
 */
base_err svc_prt_set_production(svc_prt *p, pol_head *head, uint64_t version, const char *acts);

/* Serve from @slot (enum base_slot) with the online slot's share @canary_ppm. */
void svc_prt_set_serving(svc_prt *p, uint32_t slot, uint32_t canary_ppm);

/*
 * svc_prt_follow_snapshot() - a follower (shared = on) serves checkpoint @m (NULL: the base
 * model) from now on: a head built from it is swapped in under head_lk, unless @p was taken
 * over meanwhile. Any thread but the learner's. Return: BASE_OK; BASE_EINVAL (@m does not
 * fit the definition; @why, if not NULL, says so when it was learned for another action
 * list); BASE_ENOMEM.
 */
base_err svc_prt_follow_snapshot(svc_prt *p, const base_snapshot *m, char *why, size_t whylen);

/*
 * Whether snapshot @m was learned for @c's action names in their order (also when @m does
 * not say: snapshots older than the hash). On false, @why (if not NULL) says what differs.
 */
bool svc_snapshot_actions_fit(const svc_policy_config *c, const base_snapshot *m, char *why,
                              size_t whylen);
/*
 * svc_portfolio_restore() - restore @pf (built for definition @c) from snapshot @m: the one
 * way a snapshot meets a definition's head. Return: pol_portfolio_restore()'s; BASE_EINVAL
 * also when @m was learned for another action list (@why, if not NULL, says so; left as it
 * was otherwise).
 */
base_err svc_portfolio_restore(const svc_policy_config *c, pol_portfolio *pf,
                               const base_snapshot *m, char *why, size_t whylen);

/* Record @id as the last stored id of stream @kind (writer thread, start-up). */
void svc_prt_set_tail(svc_prt *p, sto_kind kind, const char *id);

/* The stored tails, joined read first (see svc_mark for why the order matters). */
void svc_prt_read_tails(svc_prt *p, char (*out)[BASE_STREAM_ID_MAX + 1]);

/*
 * svc_prt_take_lsn() - the next log sequence number, recording a mark first
 * when one is due. Caller holds join_lk and queues the record before
 * releasing it.
 */
uint64_t svc_prt_take_lsn(svc_prt *p);

/*
 * svc_prt_learn() - apply joined example @j, stored at @stream_id, to the
 * head (learner thread, or start-up replay). Unknown examples only move the
 * applied position. Takes head_lk as writer.
 * Return: BASE_OK; the head's error (counted in learn_errors as well).
 */
base_err svc_prt_learn(svc_prt *p, const base_joined *j, const char *stream_id);

#endif
