#ifndef SERVICE_PERSIST_H
#define SERVICE_PERSIST_H

/*
 * The persistence queue: a bounded FIFO of records on their way to Redis and
 * the one thread that writes them, pipelined in batches (group commit).
 *
 * Producers (nng callbacks, the learner thread) submit items without
 * blocking; a full queue answers BASE_ELIMIT and the producer decides
 * (reply "unavailable", count a drop, retry later). The writer thread pops
 * up to SVC_PERSIST_BATCH items at a time, appends consecutive records in
 * one pipelined round trip, stores model snapshots with MULTI/EXEC, and then
 * runs each item's completion callback, in submission order.
 *
 * Idempotent appends: the writer gives each record an explicit stream id
 * the first time it sends it ("<ms>-<seq>", above every id it gave before
 * in that stream and above the stream's last id in Redis, read once per
 * connection; wall-clock based like Redis's own) and keeps it in
 * item->stream_id for every retry. A retried XADD of a record Redis had
 * already stored is refused as behind the stream's top; the writer finds
 * the record at its id (sto_store_match) and completes it as stored. So a
 * record is stored at most once, whatever the connection does.
 *
 * Redis trouble: on a lost connection the writer marks Redis down,
 * reconnects with exponential backoff (50 ms .. 2 s) and sends again only
 * the records of the batch whose replies it had not read (a reply read is
 * final); items are never reordered or dropped while the queue is open. A
 * record Redis refuses with an error reply (OOM, READONLY, LOADING, NOPERM,
 * WRONGTYPE, ...: sto_append's out_refused) is kept the same way: Redis
 * marked down, the record sent again after 50 ms .. 2 s, until Redis takes
 * it or the close deadline spills it. The record may be applied already,
 * so it is never dropped while the queue is open. While the queue
 * is idle the writer PINGs Redis after SVC_PERSIST_PING_MS without an
 * exchange, so an outage is noticed (svc_persist_redis_up() turns false)
 * even when nothing is being written; a PING blocks up to @timeout_ms, so a
 * hung server is noticed within SVC_PERSIST_PING_MS + @timeout_ms.
 *
 * States: RUNNING -> DRAINING [svc_persist_close] -> SPILLING -> CLOSED.
 * Draining stores what is queued until a deadline, waiting a bounded time
 * for Redis if it is away; what is still unstored then (records in hand and
 * queued) is written to a spill file (storage/spill.h) with the stream ids
 * already given, to be replayed at the next start; those items complete
 * with BASE_ECLOSED. Model snapshots are not spilled: the next start
 * replays the streams from the previous stored snapshot instead.
 *
 * Completion callbacks run on the writer thread and must not block; they
 * may take item->rec (set it to NULL), otherwise it is freed after the call.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/record.h"
#include "storage/store.h"

#define SVC_PERSIST_BATCH 256
#define SVC_PERSIST_PING_MS 500 /* idle writer: PING after this long without an exchange */

typedef enum svc_persist_type {
    SVC_PERSIST_APPEND = 0, /* rec is base_decision*, base_outcome* or base_joined* by kind */
    SVC_PERSIST_MODEL,      /* rec is base_snapshot* */
    SVC_PERSIST_BARRIER,    /* no record: completes once everything queued before it has */
} svc_persist_type;

typedef struct svc_persist_item svc_persist_item;

/* @result: BASE_OK once Redis has the record; else why it was not stored. */
typedef void (*svc_persist_done)(void *arg, svc_persist_item *item, base_err result);

/*
 * Retention that follows a stored checkpoint (MODEL items only): once the
 * snapshot is in Redis, each stream is trimmed below its minid ("" = not
 * trimmed) and all but the newest keep_snapshots snapshots (0 = all kept)
 * and the pinned ones are deleted. Never runs if the snapshot failed, so a
 * trim never outruns the checkpoint that makes it safe.
 */
typedef struct svc_trim {
    char minid[3][BASE_STREAM_ID_MAX + 1]; /* by sto_kind */
    /* shared = on: the inbox below the checkpoint's inbox position ("" = not trimmed) */
    char inbox_minid[BASE_STREAM_ID_MAX + 1];
    uint32_t keep_snapshots;
} svc_trim;

struct svc_persist_item {
    svc_persist_type type;
    sto_kind kind; /* APPEND only */
    char policy[BASE_NAME_MAX + 1];
    void *rec;                              /* owned by the item */
    svc_trim trim;                          /* MODEL only */
    char stream_id[BASE_STREAM_ID_MAX + 1]; /* APPEND: its id, assigned by the writer */
    uint64_t index_ttl_ms; /* APPEND of a decision or joined record: index it (sto_append) */
    svc_persist_done done; /* may be NULL */
    void *done_arg;
    bool lazy;   /* nobody waits for it: it may wait for the batch (svc_persist_set_group_commit) */
    bool fenced; /* set by the writer: refused because another instance holds the lease */
};

typedef struct svc_persist svc_persist;

/*
 * svc_persist_new() - connect to @url and start the writer thread. If Redis
 * is unreachable at start the thread still starts (Redis down, retrying).
 * Return: BASE_OK; BASE_EINVAL for a bad URL; BASE_ENOMEM.
 */
base_err svc_persist_new(const char *url, int timeout_ms, size_t capacity, svc_persist **out,
                         char *errbuf, size_t errlen);

/* Make a zeroed item owning @rec (NULL on OOM; the caller keeps @rec then). */
svc_persist_item *svc_persist_item_new(svc_persist_type type, sto_kind kind, const char *policy,
                                       void *rec);
/* Free an item and its record. Accepts NULL. */
void svc_persist_item_free(svc_persist_item *it);

/*
 * svc_persist_submit() - queue @it. Takes @it on success; on failure the
 * caller still owns it and its done() will not run.
 * Return: BASE_OK; BASE_ELIMIT when full; BASE_ECLOSED when closing.
 */
base_err svc_persist_submit(svc_persist *p, svc_persist_item *it);

/*
 * svc_persist_set_group_commit() - let the writer, once a record is queued,
 * wait up to @us more microseconds for others before it writes, so that
 * Redis receives (and, with appendfsync always, fsyncs) larger batches. Only
 * lazy items (decision and joined records: nobody waits for them) wait; an
 * item submitted without item->lazy, or a full batch, ends the wait at
 * once (a full batch: SVC_PERSIST_BATCH, or half the queue if less). 0 writes as soon as
 * anything is queued. Call before
 * anything is submitted.
 */
void svc_persist_set_group_commit(svc_persist *p, uint32_t us);
size_t svc_persist_depth(svc_persist *p);
size_t svc_persist_capacity(const svc_persist *p);
bool svc_persist_redis_up(const svc_persist *p);
/* Whether Redis answers but refuses writes (so svc_persist_redis_up() is false). */
bool svc_persist_redis_refusing(const svc_persist *p);
/* Whether Redis refused the last checkpoint sent to it (records may still be taken). */
bool svc_persist_checkpoints_refused(const svc_persist *p);
uint64_t svc_persist_written(const svc_persist *p); /* records stored */
uint64_t svc_persist_failed(const svc_persist *p);  /* items completed with an error */
uint64_t svc_persist_trimmed(const svc_persist *p); /* stream entries removed by retention */
const char *svc_persist_url(const svc_persist *p);  /* the Redis it writes to; borrowed */

/*
 * svc_persist_set_who() - name the writer's retention runs in the audit
 * stream (service/audit.h) with @who (copied; at most BASE_NAME_MAX + 64
 * bytes are kept). Until it is called no retention entry is written. Call
 * before the first MODEL item is submitted (the queue orders the two).
 */
void svc_persist_set_who(svc_persist *p, const char *who);

/*
 * svc_persist_set_fence() - with @on, every record and checkpoint is stored only while the
 * policy's lease is held by the writer's who (svc_persist_set_who(); storage/store.h,
 * sto_append.fence): a writer whose lease another instance took is refused (the item fails
 * with BASE_ESTORE, logged once per policy) instead of writing into the new owner's streams.
 */
void svc_persist_set_fence(svc_persist *p, bool on);

/*
 * svc_persist_set_replicas() - acknowledged items (not lazy) wait, after their batch is
 * stored, until @n replicas have it (Redis WAIT, one per batch, at most @timeout_ms); if fewer
 * do, they complete with BASE_ETIMEDOUT although the master has them (a retry is idempotent).
 * 0: no wait (the default). svc_persist_unreplicated() counts those completions.
 */
void svc_persist_set_replicas(svc_persist *p, uint32_t n, uint32_t timeout_ms);
uint64_t svc_persist_unreplicated(const svc_persist *p);
/* Audit entries that could not be appended (retention here, plus those counted in). */
uint64_t svc_persist_audit_failed(const svc_persist *p);
void svc_persist_count_audit_failed(svc_persist *p, uint64_t n);

/* How svc_persist_close() ends. */
typedef struct svc_persist_close_opts {
    uint64_t deadline_ns;  /* base_mono_ns() time: nothing is sent to Redis after it */
    int outage_wait_ms;    /* Redis away: wait at most this long for it (not past the deadline) */
    const char *spill_dir; /* where unstored records go; NULL or "": nowhere (they are lost) */
} svc_persist_close_opts;

/* What svc_persist_close() did with what it could not store. */
typedef struct svc_persist_report {
    uint64_t spilled;      /* records written to the spill file */
    uint64_t lost;         /* records neither stored nor spilled */
    uint64_t snapshots;    /* model snapshots not stored (not spilled) */
    uint64_t outage_ms;    /* Redis unreachable this long when the writer stopped (0: up) */
    bool refusing;         /* ... reachable but refusing writes (out of memory, read-only) */
    char spill_path[4096]; /* the spill file, "" if none */
    char error[512];       /* why records were lost, "" if none were */
} svc_persist_report;

/*
 * svc_persist_close() - stop taking items, drain until @o->deadline_ns,
 * spill the rest to @o->spill_dir (see the states above), stop the thread
 * and free @p. Must not be called from a completion callback. Blocks until
 * about the deadline (plus one Redis command timeout) and the time the
 * spill file takes to write and fsync. @out (may be NULL) says what
 * happened. Accepts NULL @p (then *out is zeroed).
 */
void svc_persist_close(svc_persist *p, const svc_persist_close_opts *o, svc_persist_report *out);

#endif
