#ifndef SERVICE_EXPLAIN_H
#define SERVICE_EXPLAIN_H

/*
 * The explain op (docs/protocol.md, "explain"): the breakdown of a logged
 * decision, from its record. A pending decision is answered at once from the
 * join (a copy taken under join_lk); its reward is the reward so far, and the
 * outcomes listed are those the join applied to it. The breakdown (head score, exploration share) is what decide recorded, never
 * recomputed, so the probabilities are the logged pmf bit for bit; a record
 * without it (log requests, older records) is answered with
 * "breakdown":false.
 *
 * A decision no longer pending is looked up in Redis through the event
 * index (storage/evidx.c) by a worker thread with its own connection: the
 * request is queued (at most 64 wait; past that, or past the engine's
 * max_waiting, it is answered `unavailable`) and answered from the worker
 * through the svc_replier, "joined" with the joined record's reward and the
 * outcomes joined to it, read from the outcome stream through the same
 * index (their fates told by rwd_outcome_fates() under the policy's current
 * reward spec), or "closed" when no joined record is stored (not yet
 * written, a deferred decision never activated, an overflow, or trimmed). Without the worker
 * (svc_engine_explain_open() not called) such requests are not_found.
 *
 * Threads: svc_op_explain() runs on nng callback threads and never blocks on
 * Redis; svc_explain_answer() may run on any thread.
 */

#include <stdbool.h>

#include "base/record.h"
#include "reward/fate.h"
#include "service/engine_impl.h"

/*
 * svc_explain_index_ttl_ms() - how long the event index keeps a record's
 * entry (storage/evidx.c): the retention window plus two hours, so an entry
 * outlives the stream entry it points to.
 */
uint64_t svc_explain_index_ttl_ms(const svc_config *cfg);

/*
 * svc_op_explain() - answer @q for policy @p through @r: the pending
 * decision's breakdown, or not_found.
 */
void svc_op_explain(svc_engine *e, svc_prt *p, const proto_request *q, const svc_replier *r);

/* The outcomes an explain reply lists (borrowed). */
typedef struct svc_explain_outcomes {
    const rwd_outcome_view *v; /* [n] oldest first */
    uint32_t n;                /* <= PROTO_EXPLAIN_MAX_OUTCOMES */
    bool truncated;            /* more than these */
} svc_explain_outcomes;

/*
 * svc_explain_answer() - send the explain reply for @jo (borrowed: its
 * decision, and with @has_reward its reward fields and @outs, NULL for
 * none) with @status ("pending", "joined", "closed") through @r, mapping
 * action indices to @p's action names.
 */
void svc_explain_answer(svc_engine *e, svc_prt *p, const base_joined *jo, const char *status,
                        bool has_reward, const svc_explain_outcomes *outs, const svc_replier *r);

/*
 * svc_explainer_close() - stop the worker (queued requests are answered
 * shutting_down), join it and free it. Accepts an engine without one.
 * Called by svc_engine_stop(), after the sockets stopped taking requests.
 */
void svc_explainer_close(svc_engine *e);

#endif
