#ifndef SERVICE_ENGINE_IMPL_H
#define SERVICE_ENGINE_IMPL_H

/*
 * The engine's insides, shared by the files that implement it and by no one
 * else: engine.c (construction, dispatch, replies), decide.c (decide, log),
 * outcome.c (feedback, activate and their acknowledgements), recovery.c
 * (start-up replay), learner.c (the learner thread: expiry, learning,
 * checkpoints and retention) and stats.c (stats, health).
 *
 * Threads: the op functions run on nng callback threads; the learner
 * functions on the learner thread; persist completions on the writer
 * thread. Each policy's state and its lock order are described in
 * service/policy_rt.h; the engine's own fields below are set at
 * construction and read-only afterwards, or atomic.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/queue.h"
#include "proto/reply.h"
#include "proto/stats.h"
#include "service/engine.h"
#include "service/log.h"
#include "service/observe.h"
#include "service/policy_rt.h"

typedef struct svc_ack svc_ack;             /* an answer owed once Redis has a record (outcome.c) */
typedef struct svc_explainer svc_explainer; /* the explain worker (explain.c) */
typedef struct svc_rollup svc_rollup;       /* the dashboard's rollups (rollup.c) */

struct svc_engine {
    const svc_config *cfg;
    base_clock *clock;
    svc_log log; /* where records go: the persist queue, or a test's */
    /*
     * [SVC_MAX_POLICIES] slots, the first n_pol in use: the file's policies, then those the
     * policy catalog adds (svc_engine_add_policy): a slot is built before n_pol covers it,
     * and stays until the engine is freed.
     */
    _Atomic uint32_t n_pol;
    svc_prt *pol;
    pthread_mutex_t change_lk;      /* guards the pending catalog changes below */
    struct svc_change *changes;     /* definitions to apply on the learner thread (catalog.c) */
    struct svc_kept *kept;          /* learner thread: definitions in force or replaced, kept */
    struct sto_store *change_store; /* learner thread: reads a changed policy's streams */
    svc_restored *restored;         /* [n_pol] once svc_engine_restore() succeeded; main thread */
    char restore_failed[BASE_NAME_MAX + 1]; /* the policy svc_engine_restore() failed on */

    base_queue *learn_q;          /* joined examples stored, waiting to be applied */
    atomic_size_t learn_inflight; /* expired and not yet applied (bounds learn_q) */
    size_t learn_cap;

    pthread_t thread;
    bool started;
    atomic_bool stop;
    atomic_int drain_timeout_ms;

    pthread_mutex_t ack_lk;
    svc_ack *ack_head, *ack_tail; /* guarded by ack_lk: answers owed, oldest (first due) first */
    uint64_t ack_timeout_ns;      /* an owed answer is `unavailable` past this */
    atomic_uint waiting;          /* requests whose reply waits for Redis (each holds a context) */
    uint32_t max_waiting;         /* past it such requests are refused, so decide keeps contexts */
    uint64_t id_prefix;           /* random per process start */
    struct svc_auth *auth;        /* borrowed: stats' "auth" (NULL or off: none) */
    struct proto_mac_key *pseudonym_key; /* NULL: ids as sent (tests of the engine alone) */
    atomic_uint_fast64_t id_seq;
    atomic_uint_fast64_t rejected[PROTO_E_COUNT];
    svc_explainer *explainer; /* NULL: none; set before requests are served, closed at stop */
    svc_rollup *rollup;       /* NULL: none; set before the engine is published, closed at stop */
    struct svc_forward *forward;      /* shared = on: followers' records go through it; borrowed */
    atomic_bool pull_full;            /* the last svc_engine_pull_room() said no */
    atomic_uint_fast64_t pull_paused; /* times it started saying no */
    svc_lat lat;                      /* request latency per op (service/observe.h) */
};

/* A joined example on its way to the learner, with the policy it belongs to. */
typedef struct svc_learn_item {
    svc_prt *pol;
    base_joined *j;
    char stream_id[BASE_STREAM_ID_MAX + 1];
} svc_learn_item;

/*
 * decide.c, outcome.c: a record another instance forwarded through @p's inbox (entry @id),
 * taken as if it had been served or received here at its own service time (shared = on;
 * the inbox thread, service/inbox.c, holding @p's gate as reader).
 * Return: SVC_TAKE_OK (the record was taken: queued, or dropped as a retried copy);
 *         SVC_TAKE_BAD (a decision that does not fit the policy's definition now: dropped,
 *         to be counted); SVC_TAKE_LATER (the write queue is full: nothing changed, the record
 *         is still the caller's, take the entry again later). The record is the callee's
 *         unless LATER.
 */
typedef enum svc_take { SVC_TAKE_OK = 0, SVC_TAKE_BAD, SVC_TAKE_LATER } svc_take;
svc_take svc_prt_take_decision(svc_prt *p, base_decision *d, const char *id, const char *from);
svc_take svc_prt_take_outcome(svc_prt *p, base_outcome *o, const char *id);

/* engine.c: policies and replies (any thread). */
svc_prt *svc_engine_find_policy(svc_engine *e, const char *name);
void svc_engine_send(const svc_replier *r, base_buf *b);
void svc_engine_reject(svc_engine *e, const svc_replier *r, proto_errcode code, const char *msg);
/* {"ok":true, "duplicate":true, "status":"duplicate"} */
void svc_engine_reply_duplicate(const svc_replier *r);
/* {"ok":true, "status":...}: what feedback or activate did */
void svc_engine_reply_status(const svc_replier *r, rwd_status status);
/* {"ok":true, "status":"accepted"}: a follower handed the outcome to the owner */
void svc_engine_reply_accepted(const svc_replier *r);
/* {"ok":true, "event_id":@event_id}: a log request was taken */
void svc_engine_reply_logged(const svc_replier *r, const char *event_id);
/* The wire name of a join status (PROTO_ST_COUNT, "unknown", for none: a bug). */
proto_status svc_engine_status(rwd_status s);

/* decide.c, outcome.c, stats.c: the ops (nng callback threads). */
void svc_op_decide(svc_engine *e, svc_prt *p, const proto_request *q, const svc_replier *r);
void svc_op_log(svc_engine *e, svc_prt *p, const proto_request *q, const svc_replier *r);
void svc_op_outcome(svc_engine *e, svc_prt *p, const proto_request *q, const svc_replier *r,
                    uint32_t type);
void svc_op_stats(svc_engine *e, const proto_request *q, const svc_replier *r);
void svc_op_health(svc_engine *e, const proto_request *q, const svc_replier *r);

/*
 * stats.c: fill @out with the counters of every policy (@only NULL) or of
 * @only, the rejections and the storage state: what the stats op sends and
 * /metrics exposes. Allocates out->policies (base_free() it).
 * Return: BASE_OK; BASE_ENOMEM (nothing to free).
 */
base_err svc_engine_fill_stats(svc_engine *e, svc_prt *only, proto_stats *out);

/*
 * outcome.c: answer `unavailable` to every owed answer past its deadline
 * (the record stays queued). Called by the learner thread every loop.
 */
void svc_acks_expire(svc_engine *e);

/*
 * svc_prt_restore() - svc_engine_restore() for one policy. With @new_version_ok, a checkpoint
 * whose head does not fit the definition starts a new head version (fresh, learning only
 * from decisions made after the log's end, its version numbers continuing) instead of
 * failing (*out_new_version says so; may be NULL). @done may be NULL.
 */
base_err svc_prt_restore(svc_prt *p, const svc_log_reader *log, bool new_version_ok,
                         svc_restored *done, bool *out_new_version, char *errbuf, size_t errlen);

/*
 * catalog.c, on the learner thread: apply the definitions the catalog follower queued
 * (service/catalog.h). drop: free them, and the kept ones (engine free).
 */
void svc_catalog_apply_changes(svc_engine *e);
bool svc_catalog_changes_pending(svc_engine *e);
void svc_catalog_drop_changes(svc_engine *e);

/*
 * learner.c: checkpoint @p now (forced), after applying everything in flight, and wait until
 * it is stored (so is everything queued before it). Learner thread.
 * Return: BASE_OK; BASE_ETIMEDOUT; BASE_ENOMEM; BASE_ELIMIT (queue full); the writer's error.
 */
base_err svc_learner_checkpoint_sync(svc_engine *e, svc_prt *p, int timeout_ms);

/* learner.c: free what is still queued for the learner (svc_engine_free). */
void svc_learner_drop_queue(svc_engine *e);
/* The hash of @c that checkpoints are stamped with ("c" and 16 hex digits, < 24 bytes). */
void svc_learner_config_hash(const svc_policy_config *c, char *out, size_t size);

#endif
