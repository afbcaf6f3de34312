#ifndef SERVICE_LOG_H
#define SERVICE_LOG_H

/*
 * The log of record as the engine sees it: somewhere to submit records (in
 * order, completed in order) and somewhere to read them back at start-up.
 * In the daemon the writer is the persistence queue in front of Redis
 * (service/persist.h) and the reader a Redis connection (storage/store.h);
 * tests put an in-memory log behind the same two interfaces
 * (tests/helpers/memlog.h), so replay and checkpointing are tested without
 * Redis as well as with it.
 *
 * Contracts (what the engine relies on):
 *   submit  takes @it on success (on failure the caller still owns it and its
 *           done() will not run) and completes items in submission order,
 *           each exactly once. It is called under a policy's join_lk
 *           (service/policy_rt.h), so a completion that runs inside it may
 *           take only what that lock order allows after join_lk (tail_lk,
 *           ack_lk); the daemon's completes on the writer thread instead.
 *           Return: BASE_OK; BASE_ELIMIT when full; BASE_ECLOSED.
 *   stats   a consistent-enough snapshot for `stats` and back-pressure
 *           decisions; never blocks.
 *   read    up to @max entries of stream @kind of @policy with ids strictly
 *           after @after ("" = from the start), oldest first; *out freed
 *           with sto_entries_free().
 *   model   the snapshot the policy's registry names; *out_found false if none.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/record.h"
#include "service/persist.h"
#include "storage/store.h"

typedef struct svc_log_stats {
    bool up;               /* the store answers and takes writes */
    bool refusing;         /* !up because it answers but refuses writes (OOM, READONLY...) */
    size_t depth;          /* records waiting */
    size_t capacity;       /* most that may wait */
    uint64_t written;      /* records stored */
    uint64_t failed;       /* items completed with an error */
    uint64_t trimmed;      /* stream entries removed by retention */
    uint64_t audit_failed; /* audit entries that could not be appended */
    const char *url;       /* where records go (a Redis URL), borrowed; "" when not Redis */
} svc_log_stats;

typedef struct svc_log_ops {
    base_err (*submit)(void *impl, svc_persist_item *it);
    void (*stats)(void *impl, svc_log_stats *out);
} svc_log_ops;

typedef struct svc_log {
    const svc_log_ops *ops;
    void *impl;
} svc_log;

typedef struct svc_log_reader_ops {
    base_err (*read)(void *impl, sto_kind kind, const char *policy, const char *after, size_t max,
                     sto_entry **out, size_t *out_n);
    base_err (*model)(void *impl, const char *policy, base_snapshot **out, bool *out_found);
    /* The last error reply of the store behind it, for a log line ("" if none). */
    const char *(*last_error)(void *impl);
} svc_log_reader_ops;

typedef struct svc_log_reader {
    const svc_log_reader_ops *ops;
    void *impl;
} svc_log_reader;

/* The daemon's writer: @p (borrowed) behind the svc_log interface. */
svc_log svc_log_of_persist(svc_persist *p);

/* The daemon's reader: @s (borrowed) behind the svc_log_reader interface. */
svc_log_reader svc_log_reader_of_store(sto_store *s);

static inline base_err svc_log_submit(const svc_log *l, svc_persist_item *it)
{
    return l->ops->submit(l->impl, it);
}

static inline void svc_log_get_stats(const svc_log *l, svc_log_stats *out)
{
    l->ops->stats(l->impl, out);
}

#endif
