#ifndef SERVICE_ENGINE_H
#define SERVICE_ENGINE_H

/*
 * The engine: one runtime per configured policy (its head, its join, its
 * counters), the operations the protocol exposes, and the learner thread.
 *
 * Data flow (docs/architecture.md):
 *   decide/log  -> pmf from the head (read lock) -> decision pending in the
 *                  join + decision record queued for Redis
 *   feedback    -> validated against the join -> outcome queued for Redis ->
 *                  reply once Redis has it -> applied to the pending decision
 *   learner     -> every tick_ms, closed windows become joined examples ->
 *                  queued for Redis -> once stored, applied to the head
 *                  (write lock) in stream order -> snapshots every
 *                  snapshot_interval_ms and at stop
 *
 * The learner applies only examples that Redis has stored, in the order the
 * joined stream holds them, so the head is a function of the joined stream.
 *
 * Threads: request operations run on nng callback threads, concurrently;
 * they never block on Redis or on learning (the head is read under a
 * reader-writer lock that the learner holds only for one update). The
 * learner thread is started by svc_engine_start() and stopped by
 * svc_engine_stop().
 */

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "service/config.h"
#include "service/log.h"
#include "proto/errors.h"
#include "proto/request.h"
#include "storage/store.h"

typedef struct svc_engine svc_engine;

/*
 * A way to answer a request later (feedback is answered once Redis has the
 * outcome). send() is called exactly once with the encoded reply, from any
 * thread; NULL send means nobody waits for a reply (PULL).
 */
typedef struct svc_replier {
    void (*send)(void *arg, const uint8_t *buf, size_t len);
    void *arg;
    /*
     * Set by svc_engine_handle(): the reply is counted in @lat's histogram
     * of @op with the time since @t0_ns (base_mono_ns(); a caller may set it
     * before decoding, else svc_engine_handle() reads the clock).
     */
    struct svc_lat *lat;
    uint64_t t0_ns;
    uint32_t op;
} svc_replier;

/*
 * svc_engine_new() - build the runtime of every policy in @cfg (borrowed,
 * must outlive the engine), reading time from @clock (borrowed) and writing
 * through @log (copied; what it points to must outlive the engine).
 * Return: BASE_OK; BASE_EINVAL for a policy the head or join rejects (reason
 *         in @errbuf); BASE_ENOMEM.
 */
base_err svc_engine_new(const svc_config *cfg, base_clock *clock, const svc_log *log,
                        svc_engine **out, char *errbuf, size_t errlen);
void svc_engine_free(svc_engine *e); /* accepts NULL; the thread must be stopped */

/*
 * svc_engine_set_pseudonym_key() - from now on svc_engine_pseudonymize() replaces user and
 * conversation ids with their pseudonyms under @key (proto_pseudonym()); set before serving.
 */
base_err svc_engine_set_pseudonym_key(svc_engine *e, const uint8_t key[32]);

/* Replace @q's user_id and conversation_id by their pseudonyms (once a key is set). */
void svc_engine_pseudonymize(const svc_engine *e, proto_request *q);

/* Report @a's per-client counters in stats (borrowed; set before serving). */
struct svc_auth;
void svc_engine_set_auth(svc_engine *e, struct svc_auth *a);

/*
 * shared = on: records of the policies this instance follows are handed to their owners
 * through @f (service/forward.h; borrowed, set before serving, outlives the engine's ops).
 */
struct svc_forward;
void svc_engine_set_forward(svc_engine *e, struct svc_forward *f);

/*
 * shared = on: another instance, @holder, took policy @i's lease (this one stalled past
 * lease_ms): the learner thread steps the policy down to a follower of @holder: its join
 * and what it had not learned are dropped (the new owner recovered them from the streams;
 * this instance's unstored records are refused by the fence), and it serves the new owner's
 * checkpoints from then on. Any thread; does not block.
 */
void svc_engine_step_down(svc_engine *e, uint32_t i, const char *holder);

/*
 * svc_engine_restore() - rebuild each policy from @store: load the
 * checkpoint its registry names (none: start from zero, the base model),
 * learn the joined records stored after the checkpoint's last applied id,
 * and replay decisions and outcomes after its positions to rebuild the
 * pending join (docs/architecture.md, "Recovery"). Called once, before
 * svc_engine_start() and before any request is served.
 * Return: BASE_OK; the store's error, or BASE_EINVAL for a checkpoint that
 *         does not fit the configured head (reason in @errbuf).
 */
base_err svc_engine_restore(svc_engine *e, const svc_log_reader *log, char *errbuf, size_t errlen);

/* The policy whose restore a failed svc_engine_restore() stopped at ("" before any failure). */
const char *svc_engine_restore_failed(const svc_engine *e);

/* What svc_engine_restore() did for one policy, and what it found stamped on the checkpoint. */
typedef struct svc_restored {
    bool found;       /* a checkpoint was restored */
    uint64_t version; /* its version; 0 when none */
    uint64_t learned; /* joined examples replayed into the head */
    uint64_t pending; /* pending decisions rebuilt */
    /* the checkpoint's stamps ("" when none) and the configuration's now */
    char snap_config_hash[24], config_hash[24];
    char snap_spec[BASE_NAME_MAX + 1], spec[BASE_NAME_MAX + 1];
    char snap_base[BASE_NAME_MAX + 1], base[BASE_NAME_MAX + 1];
} svc_restored;

/*
 * svc_engine_restored() - what svc_engine_restore() did for the @i-th
 * configured policy, into *out. Main thread, after a successful restore.
 * Return: false if @i is out of range or the engine was not restored.
 */
bool svc_engine_restored(const svc_engine *e, uint32_t i, svc_restored *out);

/*
 * svc_engine_explain_open() - start the explain worker with its own Redis
 * connection to @url (service/explain.h); without it, explain answers only
 * pending decisions. Return: BASE_OK; BASE_EINVAL (URL too long); BASE_ENOMEM.
 */
base_err svc_engine_explain_open(svc_engine *e, const char *url, int timeout_ms);

base_err svc_engine_start(svc_engine *e);
/* Stop the learner: apply what is queued (waiting up to @drain_timeout_ms),
 * queue a final snapshot of every policy, join the thread. */
void svc_engine_stop(svc_engine *e, int drain_timeout_ms);

/*
 * svc_engine_handle() - run one request already decoded into @req and
 * answer through @r (immediately, or later for acknowledged feedback).
 * Rejections are counted per error code.
 */
void svc_engine_handle(svc_engine *e, const proto_request *req, const svc_replier *r);

/* Why `clock` is unknown to a daemon without --manual-clock (also while it starts). */
#define SVC_CLOCK_UNKNOWN "op 'clock' needs a daemon started with --manual-clock"

/* Count a request rejected before it reached the engine (decode errors). */
void svc_engine_count_reject(svc_engine *e, proto_errcode code);

/*
 * svc_engine_metrics() - append the Prometheus exposition of every counter
 * (service/metrics.h) to @out; the same data as the stats op. Any thread.
 * Return: BASE_OK; BASE_ENOMEM, or BASE_ELIMIT past @out's cap.
 */
base_err svc_engine_metrics(svc_engine *e, base_buf *out);

/*
 * svc_engine_ready() - whether the engine can take traffic: Redis reachable
 * and the write queue below its capacity (every policy is restored before
 * the engine is published). If not, a one-line reason in @why.
 */
bool svc_engine_ready(svc_engine *e, char *why, size_t whylen);

/*
 * svc_engine_pull_room() - whether a fire-and-forget message (PULL) may be taken now: the
 * write queue, and with shared = on the forwarding queue, each have more than an eighth of
 * their capacity free once @pending messages already taken (each at most one record) are
 * in. The rest stays for requests someone waits for (decide's records, acknowledged
 * feedback). A "no" after a "yes" is counted in stats' storage.pull_paused. Any thread.
 */
bool svc_engine_pull_room(svc_engine *e, size_t pending);

/*
 * svc_engine_policies() - append the reply of GET /api/v1/policies (@name NULL: every
 * policy, summarised) or GET /api/v1/policies/@name (one, with its reward spec and
 * configuration) to @out (proto/policy.h). Any thread; the same short locks as stats.
 * Return: PROTO_E_NONE; PROTO_E_UNKNOWN_POLICY (nothing appended); PROTO_E_UNAVAILABLE for a
 *         policy this instance stands by for (svc_engine_standby_message() says why);
 *         PROTO_E_INTERNAL (out of memory, or past @out's cap).
 */
proto_errcode svc_engine_policies(svc_engine *e, const char *name, base_buf *out);

/*
 * svc_engine_standby_message() - for a policy this instance stands by for (standby = on), the
 * refusal its requests get, naming the owner, into @msg; false if it does not stand by for it.
 */
bool svc_engine_standby_message(svc_engine *e, const char *policy, char *msg, size_t len);

/* The configuration the engine was built from (borrowed, immutable). Any thread. */
const svc_config *svc_engine_config(const svc_engine *e);

/* The runtime of the @i-th configured policy (i < the config's n_policies); NULL past it. */
struct svc_prt *svc_engine_policy_at(svc_engine *e, uint32_t i);

/* Model state of policy @name for tests and stats; false if unknown. */
bool svc_engine_model_info(svc_engine *e, const char *name, uint64_t *out_n_updates,
                           uint64_t *out_checksum);

#endif
