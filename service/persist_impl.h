#ifndef SERVICE_PERSIST_IMPL_H
#define SERVICE_PERSIST_IMPL_H

/*
 * The persistence queue's insides, shared by persist.c (the writer thread),
 * persist_model.c (its checkpoints) and persist_close.c (closing: stop the writer, spill
 * what it could not store) and by no one else.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/clock.h"
#include "base/queue.h"
#include "service/persist.h"
#include "storage/store.h"
#include "storage/streamid.h"

/*
 * The writer's position in one stream: the last id it assigned there. Ids
 * are assigned once per record and reused on every retry, which makes a
 * retried XADD idempotent (docs/storage.md, "Idempotent appends").
 */
typedef struct stream_pos {
    char policy[BASE_NAME_MAX + 1];
    sto_kind kind;
    sto_sid last; /* the last id assigned here, or read from Redis */
    bool synced;  /* last >= the stream's last id in Redis, read since the last connect */
} stream_pos;

struct svc_persist {
    char *url;
    int timeout_ms;
    atomic_bool fence;                 /* appends and checkpoints checked against the lease */
    atomic_uint_fast64_t fenced;       /* items refused: the lease was another instance's */
    atomic_uint replicas_ack;          /* acknowledged items wait for this many replicas (WAIT) */
    atomic_uint replicas_timeout_ms;   /* ... this long at most */
    atomic_uint_fast64_t unreplicated; /* acknowledged items completed unconfirmed */
    sto_store *store;                  /* writer thread only; NULL until the first connect */
    base_queue *q;
    pthread_t thread;
    atomic_bool redis_up;
    atomic_bool redis_refusing; /* redis_up is false because Redis answers but refuses writes */
    atomic_bool ckpt_refused; /* Redis refused the last checkpoint it was sent (records may pass) */
    atomic_bool closing;
    uint64_t last_ok_ns;    /* writer thread only: the last exchange Redis answered */
    uint64_t down_since_ns; /* writer thread only: when the current outage began; 0: up */
    size_t in_hand;         /* writer thread only: popped and not completed yet */
    /* set by svc_persist_close() before closing is; read by the writer after it sees closing */
    uint64_t close_ns;       /* when close began */
    uint64_t deadline_ns;    /* nothing is sent to Redis after this */
    uint64_t outage_wait_ns; /* Redis away while closing: how long to wait for it */
    /* writer thread only, once closing: what could not be stored, in queue order */
    svc_persist_item **left;
    size_t n_left, cap_left;
    uint64_t lost_oom; /* records dropped because even keeping them failed */
    atomic_uint_fast64_t written;
    atomic_uint_fast64_t failed;
    atomic_uint_fast64_t trimmed;
    atomic_uint_fast64_t audit_failed;
    char who[BASE_NAME_MAX + 64 + 1]; /* set before the first MODEL item; "" = no audit */
    /* writer thread only */
    stream_pos *pos;
    size_t n_pos, cap_pos;
    base_clock wall; /* ids follow the system clock, whatever the service clock is */
    _Atomic uint32_t group_commit_us; /* set after the writer starts (daemon.c) */
    bool refusing;                    /* writer thread only: Redis refuses writes (refused_wait) */
};

/* Run @it's completion with @result and free it (writer thread, or close after it). */
void svc_persist_complete(svc_persist *p, svc_persist_item *it, base_err result);

/* Give @it its stream id if it has none yet (persist.c says how). */
base_err svc_persist_assign_id(svc_persist *p, svc_persist_item *it, bool may_sync);

/* Writer thread (persist.c), also for persist_model.c: */
/* An item refused by the fence: logged for the first few. */
void svc_persist_note_fenced(svc_persist *p, const char *policy);
/* Keep @it for the spill at close: it was not stored and will not be. */
void svc_persist_leave(svc_persist *p, svc_persist_item *it);
/* Closing, and past the deadline. */
bool svc_persist_past_deadline(const svc_persist *p);
/* Reconnect with backoff; false when closing and Redis stayed away (persist.c says more). */
bool svc_persist_reconnect(svc_persist *p, bool idle);
/* Store checkpoint @it, then its retention (persist_model.c); false if Redis is gone. */
bool svc_persist_write_model(svc_persist *p, svc_persist_item *it);

#endif
