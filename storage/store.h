#ifndef STORAGE_STORE_H
#define STORAGE_STORE_H

/*
 * The Redis store: streams of decisions, outcomes and joined examples, and
 * model snapshots, under per-policy hash-tagged keys:
 *
 *     rlfeed:{<policy>}:decisions   stream, field "r" = msgpack decision
 *     rlfeed:{<policy>}:outcomes    stream, field "r" = msgpack outcome
 *     rlfeed:{<policy>}:joined      stream, field "r" = msgpack joined example
 *     rlfeed:{<policy>}:model:<version>  string, msgpack model snapshot
 *     rlfeed:{<policy>}:registry    hash: "online" = latest version, "production" =
 *                                   the promoted one, "serve" and "canary" overrides
 *     rlfeed:{<policy>}:models      sorted set of stored snapshot versions
 *     rlfeed:{<policy>}:pinned      set of versions retention never deletes
 *     rlfeed:{<policy>}:owner       string with a TTL: the instance that writes the policy
 *
 * Encodings are in storage/codec.h and docs/storage.md.
 *
 * One sto_store is one hiredis connection with a timeout on every call. It
 * is not thread-safe: each thread that talks to Redis opens its own. No call
 * may be made from an nng callback (they block up to timeout_ms).
 *
 * After BASE_EIO (connection lost or timed out) the store is unusable until
 * sto_store_reconnect() succeeds.
 *
 * URLs: "tcp://HOST:PORT", "redis://HOST:PORT" or "unix:/path/to/socket".
 *
 * SIGPIPE: each exchange blocks SIGPIPE in the calling thread and consumes
 * one it raised, so a vanished server is BASE_EIO; the process-wide
 * disposition is not touched.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/record.h"

#define STO_KEY_MAX 256

typedef struct sto_store sto_store;

typedef enum sto_kind {
    STO_DECISIONS = 0, /* record: base_decision */
    STO_OUTCOMES,      /* record: base_outcome */
    STO_JOINED,        /* record: base_joined */
} sto_kind;

/*
 * sto_store_open() - connect to @url with @timeout_ms for connect and every
 * command. On failure a reason is written to @errbuf (may be NULL).
 * Return: BASE_OK; BASE_EINVAL for a bad URL; BASE_EIO if Redis is
 *         unreachable; BASE_ENOMEM.
 */
base_err sto_store_open(const char *url, int timeout_ms, sto_store **out, char *errbuf,
                        size_t errlen);
void sto_store_close(sto_store *s); /* accepts NULL */

/* Reconnect after BASE_EIO. Return: BASE_OK or BASE_EIO (BASE_ENOMEM if out of memory). */
base_err sto_store_reconnect(sto_store *s);

/* Return: BASE_OK if Redis answered PONG; BASE_EIO; BASE_ESTORE (BASE_EPROTO: not PONG). */
base_err sto_store_ping(sto_store *s);

/*
 * One record to append. @rec points to the record type named by @kind.
 * @id: the entry's explicit stream id ("<ms>-<seq>", storage/streamid.h),
 * or NULL or "" to let Redis pick one ("*"). An explicit id makes a retry
 * idempotent: Redis stores it at most once and refuses a second XADD with
 * the same id (out_behind).
 */
typedef struct sto_append {
    sto_kind kind;
    const char *policy;                  /* borrowed */
    const void *rec;                     /* borrowed */
    const char *id;                      /* borrowed; NULL or "": Redis picks */
    char out_id[BASE_STREAM_ID_MAX + 1]; /* the entry's stream id */
    base_err out_err;                    /* this item's result */
    bool out_behind;                     /* refused: @id is at or below the stream's top */
} sto_append;

/*
 * sto_store_append() - XADD each item to its stream, all @n pipelined in one
 * round trip. Each item's out_err and (on success) out_id are set.
 * Return: BASE_OK if the batch was exchanged (check each out_err:
 *         BASE_ELIMIT if a record encodes past STO_MAX_VALUE, BASE_EINVAL for
 *         a bad policy name, a malformed id or an invalid record (none is
 *         sent), BASE_ESTORE if Redis refused it — with out_behind set when
 *         the reason is that the explicit id is not above the stream's last
 *         id, so it may already be stored: see sto_store_match());
 *         BASE_EIO if the connection was lost. Replies are read in order, so
 *         on BASE_EIO the items have final results up to the first one whose
 *         out_err is BASE_EIO: that one and every later one may or may not be
 *         stored.
 * Large batches go out in pipelines of at most 1024 commands or ~8 MiB, so
 * the unread replies always fit in the socket buffers.
 */
base_err sto_store_append(sto_store *s, sto_append *items, size_t n);

/*
 * sto_store_last_id() - the last id the stream @kind of @policy has
 * generated or been given (XINFO STREAM "last-generated-id"; entries
 * trimmed or deleted since do not lower it), into @out_id
 * (BASE_STREAM_ID_MAX + 1 bytes). "0-0" when the stream does not exist.
 * An XADD with an explicit id succeeds only above it.
 * Return: BASE_OK; BASE_EINVAL for a bad policy; BASE_EIO; BASE_ESTORE
 *         (e.g. the key holds another type); BASE_EPROTO.
 */
base_err sto_store_last_id(sto_store *s, sto_kind kind, const char *policy, char *out_id);

/* Whether a stream holds a given record at a given id. */
typedef enum sto_match {
    STO_ABSENT = 0, /* no entry with that id */
    STO_SAME,       /* an entry whose record is byte for byte @rec's encoding */
    STO_DIFFERENT,  /* an entry with another record: someone else wrote that id */
} sto_match;

/*
 * sto_store_match() - look up entry @id of stream @kind of @policy (XRANGE
 * key id id) and compare it with the encoding of @rec (borrowed). Used to
 * settle an append refused with out_behind: STO_SAME means it was stored
 * before (a retry whose first reply was lost).
 * Return: BASE_OK with *out set; BASE_EINVAL (bad policy, id or record);
 *         BASE_EIO; BASE_ESTORE; BASE_EPROTO.
 */
base_err sto_store_match(sto_store *s, sto_kind kind, const char *policy, const char *id,
                         const void *rec, sto_match *out);

#define STO_MAX_VALUE (64u << 20) /* largest record or snapshot, bytes */

/*
 * A stream record by kind: @rec is a base_decision*, base_outcome* or
 * base_joined* as @kind says. Encode and decode as storage/codec.h does
 * (encode appends to @out; decode gives a new record in *out); free
 * accepts NULL.
 * Return: the codec's result; BASE_EINVAL for a NULL record or bad kind.
 */
base_err sto_record_encode(sto_kind kind, const void *rec, base_buf *out);
base_err sto_record_decode(sto_kind kind, const uint8_t *buf, size_t len, void **out);
void sto_record_free(sto_kind kind, void *rec);

/* One stream entry read back. */
typedef struct sto_entry {
    char id[BASE_STREAM_ID_MAX + 1];
    void *rec; /* base_decision*, base_outcome* or base_joined* by kind; owned */
} sto_entry;

/*
 * sto_store_read() - up to @max entries of stream @kind of @policy with ids
 * strictly after @after_id ("" or "0" for the start), oldest first.
 * *out is an array of *out_n entries, freed with sto_entries_free().
 * Return: BASE_OK (possibly *out_n = 0); BASE_EPROTO if an entry does not
 *         decode; BASE_EIO; BASE_ESTORE.
 */
base_err sto_store_read(sto_store *s, sto_kind kind, const char *policy, const char *after_id,
                        size_t max, sto_entry **out, size_t *out_n);
void sto_entries_free(sto_kind kind, sto_entry *e, size_t n);

/* XLEN of a stream. Return: BASE_OK; BASE_EIO; BASE_ESTORE. */
base_err sto_store_len(sto_store *s, sto_kind kind, const char *policy, uint64_t *out_len);

/*
 * sto_store_model_put() - store snapshot @m under
 * rlfeed:{m->policy}:model:<m->version> and point the registry's "online"
 * field at it, in one MULTI/EXEC; every reply inside is checked.
 * Return: BASE_OK; BASE_ELIMIT past STO_MAX_VALUE; BASE_ESTORE; BASE_EIO.
 */
base_err sto_store_model_put(sto_store *s, const base_snapshot *m);

/*
 * sto_store_model_get_online() - the snapshot the registry's "online" field
 * names. *out_found is false (and *out untouched) when there is none.
 * Return: BASE_OK; BASE_EPROTO if it does not decode; BASE_EIO; BASE_ESTORE.
 */
base_err sto_store_model_get_online(sto_store *s, const char *policy, base_snapshot **out,
                                    bool *out_found);

/*
 * sto_store_model_get() - snapshot @version of @policy. *out_found is false
 * (and *out untouched) when there is no such key.
 * Return: BASE_OK; BASE_EPROTO if it does not decode or its policy/version
 *         disagree with the key; BASE_EINVAL for a bad policy; BASE_EIO;
 *         BASE_ESTORE.
 */
base_err sto_store_model_get(sto_store *s, const char *policy, uint64_t version,
                             base_snapshot **out, bool *out_found);

/* The registry's serving mode, when set (it overrides the daemon's config). */
typedef enum sto_serve {
    STO_SERVE_UNSET = 0,
    STO_SERVE_ONLINE,
    STO_SERVE_PRODUCTION,
} sto_serve;

/* A policy's registry (rlfeed:{<policy>}:registry); absent fields read as unset. */
typedef struct sto_registry {
    uint64_t online;     /* newest online snapshot; 0: none */
    uint64_t production; /* the production slot's snapshot; 0: none, the base model serves */
    sto_serve serve;     /* field "serve": "online" or "production" */
    double canary;       /* field "canary": share in [0, 1]; < 0 when unset */
} sto_registry;

/*
 * sto_registry_get() - read @policy's registry (one HMGET).
 * Return: BASE_OK; BASE_EPROTO if a field is malformed (a version that is not
 *         decimal, an unknown serve mode, a canary outside [0, 1]);
 *         BASE_EINVAL for a bad policy; BASE_EIO; BASE_ESTORE.
 */
base_err sto_registry_get(sto_store *s, const char *policy, sto_registry *out);

/*
 * sto_store_trim() - XTRIM stream @kind of @policy with MINID @minid: every
 * entry with an id below @minid is removed (exact, not approximate).
 * *out_removed says how many. Return: BASE_OK; BASE_EIO; BASE_ESTORE.
 */
base_err sto_store_trim(sto_store *s, sto_kind kind, const char *policy, const char *minid,
                        uint64_t *out_removed);

/*
 * sto_store_model_prune() - delete every snapshot of @policy but the newest
 * @keep versions (rlfeed:{p}:models is the index, a sorted set filled by
 * sto_store_model_put()) and those whose version is in the set
 * rlfeed:{p}:pinned. *out_removed says how many were deleted.
 * Return: BASE_OK; BASE_EIO; BASE_ESTORE; BASE_EPROTO.
 */
base_err sto_store_model_prune(sto_store *s, const char *policy, uint32_t keep,
                               uint64_t *out_removed);

/*
 * Ownership leases. rlfeed:{<policy>}:owner is a string naming the one
 * rlfeedd instance allowed to write the policy's streams, with a TTL; the
 * owner renews it well before it runs out.
 *
 * sto_lease_acquire() - take or renew the lease of @policy for @owner
 * (<= STO_OWNER_MAX bytes) for @ttl_ms, atomically (one Lua script): it is
 * taken if nobody holds it or @owner already does. Otherwise *out_held is
 * false, @out_holder (@holder_size bytes) names the holder and
 * *out_left_ms says how long its lease still runs.
 * Return: BASE_OK; BASE_EINVAL for a bad policy or owner; BASE_EIO; BASE_ESTORE.
 */
#define STO_OWNER_MAX 200
base_err sto_lease_acquire(sto_store *s, const char *policy, const char *owner, uint32_t ttl_ms,
                           bool *out_held, char *out_holder, size_t holder_size,
                           int64_t *out_left_ms);

/* Give the lease of @policy up if @owner holds it. Return: BASE_OK; BASE_EIO; BASE_ESTORE. */
base_err sto_lease_release(sto_store *s, const char *policy, const char *owner);

#endif
