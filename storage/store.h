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
 *     rlfeed:{<policy>}:audit       stream of registry changes and refused promotions
 *     rlfeed:{<policy>}:owner       string with a TTL: the instance that writes the policy
 *     rlfeed:{<policy>}:evidx:<hour>  hash with a TTL: event id -> decision stream id,
 *                                   "j:" event id -> joined stream id, "o:" event id ->
 *                                   its outcomes' stream ids (storage/evidx.c)
 *     rlfeed:{<policy>}:rollup      stream of per-minute rollups (storage/rollup.h)
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
 * URLs: "tcp://HOST:PORT", "redis://HOST:PORT" or "unix:/path/to/socket", a Redis Cluster
 * "cluster://HOST:PORT[,HOST:PORT...]" (storage/route.c: a connection per master, each
 * command routed by its key's slot, MOVED/ASK followed; docs/storage.md section 10), and
 * with credentials "tcp://[USER]:PASSWORD@HOST:PORT" (likewise redis://, cluster://) or
 * "unix://[USER]:PASSWORD@/path/to/socket": after connecting, the store sends AUTH
 * (AUTH USER PASSWORD with a user, else AUTH PASSWORD) and every reconnect does
 * again. USER and PASSWORD may carry %XX escapes (for '@', ':', '/', '%'). A URL with a
 * password is a secret: show it only through sto_url_redact().
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
 *         unreachable; BASE_ESTORE if it refused the credentials (or wants
 *         some: NOAUTH); BASE_ENOMEM.
 */
base_err sto_store_open(const char *url, int timeout_ms, sto_store **out, char *errbuf,
                        size_t errlen);

/*
 * sto_url_redact() - @url with its password replaced by "***" (and unchanged when it has
 * no '@'), for logs, errors and stats; in a URL that is not scheme://[user]:password@...
 * everything before the last '@' after the scheme. Always NUL-terminates @out.
 */
void sto_url_redact(const char *url, char *out, size_t size);

/* sto_url_valid() - whether sto_store_open() would take @url's form (nothing is connected). */
bool sto_url_valid(const char *url);
void sto_store_close(sto_store *s); /* accepts NULL */

/* Reconnect after BASE_EIO. Return: BASE_OK or BASE_EIO (BASE_ENOMEM if out of memory). */
base_err sto_store_reconnect(sto_store *s);

/*
 * Return: BASE_OK if Redis answered PONG (a cluster: every master says cluster_state:ok);
 *         BASE_EIO; BASE_ESTORE (BASE_EPROTO: not PONG).
 */
base_err sto_store_ping(sto_store *s);

/* Whether @s talks to a Redis Cluster (a cluster:// URL). */
bool sto_store_is_cluster(const sto_store *s);

/*
 * sto_store_wait() - WAIT @n @timeout_ms: block until @n replicas have every write this
 * connection made so far, or the timeout; *out_acked how many had (it may be fewer). On a
 * cluster, every master appended to since the last call is asked; the least count.
 * Return: BASE_OK; BASE_EIO; BASE_ESTORE; BASE_EPROTO.
 */
base_err sto_store_wait(sto_store *s, uint32_t n, uint32_t timeout_ms, uint32_t *out_acked);

/*
 * sto_store_wait_policies() - as sto_store_wait(), with a count per policy: out_acked[i] is
 * how many replicas have every write this store made so far to the master that holds
 * @policy[i]'s keys. On one Redis that is one WAIT for all; on a cluster one WAIT per master
 * the policies live on, so a master without replicas does not hold back the others.
 * Return: as sto_store_wait(); BASE_EIO on a cluster also when a policy's slot has no master.
 */
base_err sto_store_wait_policies(sto_store *s, const char *const *policy, size_t n_policy,
                                 uint32_t n, uint32_t timeout_ms, uint32_t *out_acked);

/*
 * sto_store_wait_current() - as sto_store_wait_policies() for @policy alone, but covering
 * everything its master holds now, not only what this connection wrote (a WAIT counts from
 * the connection's last write, so on a new connection it would count nothing): first one
 * small write to the policy's slot, SET rlfeed:{policy}:ack-mark 1 PX 60000.
 * Return: as sto_store_wait_policies(); also what the SET returns.
 */
base_err sto_store_wait_current(sto_store *s, const char *policy, uint32_t n, uint32_t timeout_ms,
                                uint32_t *out_acked);

/*
 * One record to append. @rec points to the record type named by @kind.
 * @id: the entry's explicit stream id ("<ms>-<seq>", storage/streamid.h),
 * or NULL or "" to let Redis pick one ("*"). An explicit id makes a retry
 * idempotent: Redis stores it at most once and refuses a second XADD with
 * the same id (out_behind).
 */
typedef struct sto_append {
    sto_kind kind;
    const char *policy; /* borrowed */
    const void *rec;    /* borrowed */
    const char *id;     /* borrowed; NULL or "": Redis picks */
    /*
     * > 0, with an explicit @id, for a decision or joined record: also index
     * its event id under the decision's hour (HSET + PEXPIRE of this many ms,
     * in the same pipeline; sto_event_lookup()); for an outcome addressed to
     * an event, under the hour of its arrival_ms (sto_event_outcomes()).
     * Index failures are not the item's: out_err is the XADD's.
     */
    uint64_t index_ttl_ms;
    char out_id[BASE_STREAM_ID_MAX + 1]; /* the entry's stream id */
    base_err out_err;                    /* this item's result */
    bool out_behind;                     /* refused: @id is at or below the stream's top */
    /*
     * Refused for now: Redis answered an error that says nothing of the record itself (out
     * of memory, loading, a read-only replica, a failing RDB save, a busy script, too few
     * replicas, no permission, a key of another type...). out_err stays BASE_EIO: send it
     * again later, as after a lost connection. The reply's text is in sto_store_refusal().
     */
    bool out_refused;
    /*
     * Non-NULL: store the item only while the policy's lease (rlfeed:{policy}:owner) is
     * held by @fence (storage/lease.c): consecutive items of one policy with the same fence
     * go in one Lua script that checks the lease and appends them, atomically. Refused:
     * out_err BASE_ESTORE with out_fenced (nothing of the group is stored).
     */
    const char *fence;
    bool out_fenced;
} sto_append;

/*
 * sto_store_append() - XADD each item to its stream, all @n pipelined in one
 * round trip. Each item's out_err and (on success) out_id are set.
 * Return: BASE_OK if the batch was exchanged (check each out_err:
 *         BASE_ELIMIT if a record encodes past STO_MAX_VALUE, BASE_EINVAL for
 *         a bad policy name, a malformed id or an invalid record (none is
 *         sent), BASE_ESTORE with out_behind when the explicit id is
 *         not above the stream's last id, so it may already be stored: see
 *         sto_store_match(); BASE_ESTORE with out_fenced (above); BASE_EPROTO
 *         for a reply that is neither an id nor an error; BASE_EIO with
 *         out_refused for any other error reply);
 *         BASE_EIO if the connection was lost; BASE_ENOMEM (nothing sent). Replies are read in order, so
 *         on BASE_EIO the items have final results up to the first one whose
 *         out_err is BASE_EIO: that one and every later one may or may not be
 *         stored.
 * Items with a fence (above) are checked against the policy's lease in the same step.
 * Large batches go out in pipelines of at most 1024 commands or ~8 MiB, so
 * the unread replies always fit in the socket buffers. On a cluster the batch is
 * split by master (each master's items in order, all masters at once), and the
 * "first BASE_EIO" rule above holds per master.
 */
base_err sto_store_append(sto_store *s, sto_append *items, size_t n);

/*
 * The text of the last error reply Redis gave @s: an append refused (out_refused), or the
 * last command of sto_run() (its BASE_ESTORE; each sto_run() clears it first); after a
 * BASE_EPROTO of sto_store_read() or sto_store_read_newest(), which entry of which stream
 * did not decode; "" if none.
 * For a log line; copy it before @s runs another command.
 */
const char *sto_store_refusal(const sto_store *s);

/*
 * @e's text for a log line or an error message: base_strerror(@e), and for BASE_ESTORE
 * after an error reply Redis's words too, as "store error (WRONGTYPE ...)", in @buf
 * (@len bytes). Call it right after the command that failed.
 */
const char *sto_store_strerror(const sto_store *s, base_err e, char *buf, size_t len);

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
 *         decode (sto_store_refusal() names it); BASE_EIO; BASE_ESTORE.
 */
base_err sto_store_read(sto_store *s, sto_kind kind, const char *policy, const char *after_id,
                        size_t max, sto_entry **out, size_t *out_n);
void sto_entries_free(sto_kind kind, sto_entry *e, size_t n);

/*
 * sto_store_read_newest() - the newest entry of stream @kind of @policy
 * (XREVRANGE key + - COUNT 1) into *out (one entry, freed with
 * sto_entries_free(kind, out, 1)). *out_found is false, and *out untouched,
 * when the stream is empty or absent.
 * Return: BASE_OK; BASE_EPROTO if it does not decode; BASE_EINVAL for a bad
 *         policy; BASE_EIO; BASE_ESTORE.
 */
base_err sto_store_read_newest(sto_store *s, sto_kind kind, const char *policy, sto_entry **out,
                               bool *out_found);

/*
 * sto_store_get() - entry @id of stream @kind of @policy (XRANGE key id id)
 * into *out (one entry, freed with sto_entries_free(kind, out, 1)).
 * *out_found is false, and *out untouched, when there is none (or it was
 * trimmed).
 * Return: BASE_OK; BASE_EINVAL (bad policy or id); BASE_EPROTO if it does not
 *         decode; BASE_EIO; BASE_ESTORE.
 */
base_err sto_store_get(sto_store *s, sto_kind kind, const char *policy, const char *id,
                       sto_entry **out, bool *out_found);

/*
 * sto_event_lookup() - the decision with @event_id of @policy, and its joined
 * record if stored, found through the event index (sto_append.index_ttl_ms):
 * the hour keys of [@from_ms, @to_ms] are probed newest first, pipelined in
 * one round trip (at most STO_EVIDX_MAX_HOURS of them: older hours are not
 * probed), then each record is read by its id. A decision is found only if
 * its record is still in the stream and carries @event_id. On success with
 * *out_found, *out_decision is a new decision and *out_joined a new joined
 * record or NULL (not joined yet, trimmed, or not indexed); both are the
 * caller's.
 * Return: BASE_OK; BASE_EINVAL (bad policy, empty @event_id); BASE_EPROTO;
 *         BASE_EIO; BASE_ESTORE; BASE_ENOMEM.
 */
#define STO_EVIDX_MAX_HOURS 1024
base_err sto_event_lookup(sto_store *s, const char *policy, const char *event_id, int64_t from_ms,
                          int64_t to_ms, base_decision **out_decision, base_joined **out_joined,
                          bool *out_found);

/*
 * sto_event_outcomes() - the outcome records addressed to @event_id of
 * @policy, found through the event index (sto_append.index_ttl_ms): the
 * "o:" fields of the hour keys of [@from_ms, @to_ms] (hours of the outcomes'
 * arrival, at most STO_EVIDX_MAX_HOURS, newest first) are probed in one
 * pipelined round trip, then the first @max (>= 1) ids in stream order are
 * read one XRANGE each. Records no longer in the stream, or not carrying
 * @event_id, are skipped. On success *out is a new array of *out_n entries
 * (NULL when 0; sto_entries_free(STO_OUTCOMES, ...)), in stream order, and
 * *out_more is true when more are indexed than were read, or an hour's
 * field was full (the index keeps at most STO_EVIDX_MAX_OUTCOMES ids per
 * event and hour: later ones are not indexed).
 * Return: BASE_OK; BASE_EINVAL (bad policy, empty @event_id, @max 0);
 *         BASE_EPROTO; BASE_EIO; BASE_ESTORE; BASE_ENOMEM.
 */
#define STO_EVIDX_MAX_OUTCOMES 128
base_err sto_event_outcomes(sto_store *s, const char *policy, const char *event_id, int64_t from_ms,
                            int64_t to_ms, size_t max, sto_entry **out, size_t *out_n,
                            bool *out_more);

/*
 * The event index hour of @ts_ms forgets stream entry @stream_id under @field (an event id,
 * "j:" or "o:" one): the field goes if it names that entry, an outcome list loses that id.
 */
base_err sto_evidx_forget(sto_store *s, const char *policy, int64_t ts_ms, const char *field,
                          const char *stream_id, bool *out_changed);

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
 * sto_store_model_put_fenced() - sto_store_model_put() only while @policy's lease is held by
 * @fence, checked and written in one Lua script. Refused: BASE_ESTORE with *out_fenced.
 */
base_err sto_store_model_put_fenced(sto_store *s, const base_snapshot *m, const char *fence,
                                    bool *out_fenced);

/*
 * sto_store_model_save() - store snapshot @m under
 * rlfeed:{m->policy}:model:<m->version> and index it in "models", in one
 * MULTI/EXEC, WITHOUT moving the registry's "online": for candidates
 * trained elsewhere, which rlfeed promote can then evaluate and promote.
 * A snapshot already stored under that version is replaced.
 * Return: as sto_store_model_put().
 */
base_err sto_store_model_save(sto_store *s, const base_snapshot *m);

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
 * Registry changes and the audit trail (storage/registry.c).
 *
 * rlfeed:{<policy>}:audit is a stream with one entry per decision taken
 * about the registry: promotions (done or refused), rollbacks and serving
 * overrides. Each entry is a list of field/value strings; the first field
 * is always "moved", written by the change itself: "1" if the entry's
 * change moved "production", else "0". A moving entry then has "from" (the
 * production version it replaced, "0" for the base model) and "to" (the new
 * one), also written by the change, so they are what happened, not what a
 * caller claimed. The caller's own pairs follow (action, who, verdict,
 * reason, report, ...: docs/storage.md).
 *
 *     XADD rlfeed:{faq}:audit * moved 1 from 0 to 1200 action promote who ops@h ...
 *
 * Atomicity. sto_registry_change() is one EVAL of one Lua script that
 * checks and then writes the registry, the pinned set and the audit
 * stream. Redis runs a script to its end without running any other
 * command in between, so no reader ever sees part of a change, and two
 * concurrent changes are serialized: one of them sees the other's
 * production and reports a conflict. The script does every check (the
 * expected production, the target snapshot's existence, the type of each
 * key, so no write can fail with WRONGTYPE) before its first write, and a
 * script stopped by an error keeps what it already wrote (no rollback), so
 * nothing it checks can fail half-way. An EVAL is one command: Redis runs it
 * once it has read all of it, whatever becomes of the caller afterwards, so
 * a caller killed with SIGKILL at any instant leaves either the whole change
 * or none of it (whether it happened is read back from the registry and the
 * audit stream, never inferred from the caller's fate). Redis 7 replicates
 * a script by its effects and wraps a script's writes in MULTI/EXEC in the
 * AOF and the replication stream; on loading an AOF whose tail was torn
 * inside such a block (a crash of Redis while writing it), Redis, with
 * aof-load-truncated on (the default), drops the whole unterminated block,
 * so the change is again all or nothing (tests/integration/test_sto_registry.c
 * tears one and checks). With appendfsync always, a change Redis answered
 * is on disk before the caller reads the answer.
 */

/* What a registry change does to one of the override fields. */
typedef enum sto_field_op {
    STO_FIELD_KEEP = 0, /* leave it as it is */
    STO_FIELD_SET,      /* set it to the given value */
    STO_FIELD_CLEAR,    /* delete it: the daemon's config applies again */
} sto_field_op;

/* One field/value pair of an audit entry, as given by a caller (borrowed strings). */
typedef struct sto_field {
    const char *name;  /* NUL-terminated, 1..STO_AUDIT_NAME_MAX bytes */
    const char *value; /* NUL-terminated */
} sto_field;

#define STO_AUDIT_NAME_MAX 64          /* bytes of a field name */
#define STO_AUDIT_MAX_FIELDS 64        /* caller pairs in one audit entry */
#define STO_AUDIT_MAX_BYTES (4u << 20) /* names and values of one entry together */

typedef struct sto_change {
    bool move;               /* move "production" from @expect to @to */
    bool check;              /* without @move: production must still be @expect */
    uint64_t expect;         /* production must be this now (0: absent or "0") */
    uint64_t to;             /* the new production (0: the base model) */
    sto_field_op serve_op;   /* field "serve" */
    sto_serve serve;         /* STO_SERVE_ONLINE or STO_SERVE_PRODUCTION, with STO_FIELD_SET */
    sto_field_op canary_op;  /* field "canary" */
    double canary;           /* in [0, 1], 0 or normal (>= DBL_MIN), with STO_FIELD_SET */
    const sto_field *fields; /* [n_fields] the audit entry's pairs (borrowed) */
    size_t n_fields;         /* <= STO_AUDIT_MAX_FIELDS */
} sto_change;

/* The size of a share's text from sto_format_share(), with its NUL. */
#define STO_SHARE_TEXT_MAX 32

/*
 * sto_format_share() - @v as the text the registry stores for a canary share:
 * the shortest of "%.15g" and "%.17g" that strtod() reads back as exactly @v
 * (so 0x0.8 and 5e-1 are both "0.5"). @size >= STO_SHARE_TEXT_MAX.
 */
void sto_format_share(double v, char *out, size_t size);

typedef enum sto_change_result {
    STO_CHANGED = 0, /* everything asked was written, with one audit entry */
    STO_CONFLICT,    /* production was not @expect: nothing written */
    STO_MISSING,     /* the snapshot @to does not exist: nothing written */
} sto_change_result;

/*
 * sto_registry_change() - atomically (see above) change @policy's registry
 * as @c says and append one audit entry:
 * 1. With @c->move or @c->check: if production is not @c->expect, STO_CONFLICT
 *    (nothing written). With @c->move: if @c->to
 *    is not 0 and rlfeed:{p}:model:<to> does not exist, STO_MISSING.
 *    Otherwise production := @c->to ("0" for the base model), and both
 *    @c->to and the version it replaces (when not 0) join the set
 *    rlfeed:{p}:pinned: promoted versions are never pruned.
 * 2. "serve" and "canary" are set or deleted as @c->serve_op and
 *    @c->canary_op say.
 * 3. One entry is appended to rlfeed:{p}:audit: "moved", then (when moving)
 *    "from" and "to", then @c->fields in order. With no change asked (no
 *    move, both ops KEEP) the entry alone is written: the record of a
 *    refused promotion.
 * *out_result says which; *out_production is production as it was before
 * (for STO_CONFLICT, the value that did not match). On STO_CHANGED,
 * @out_audit_id (BASE_STREAM_ID_MAX + 1 bytes, may be NULL) gets the
 * entry's id.
 * Return: BASE_OK with *out_result set; BASE_EINVAL for a bad policy, a bad
 *         serve or canary value, no field named "action", a field name that
 *         is empty, too long or reserved ("moved"; "from" and "to" when
 *         moving), too many fields; BASE_ELIMIT past STO_AUDIT_MAX_BYTES;
 *         BASE_ESTORE if Redis refused the script (a key of the wrong type:
 *         nothing written); BASE_EPROTO if production holds something that is
 *         not a version; BASE_EIO (the change may or may not have happened:
 *         read the registry and the audit stream to know).
 */
base_err sto_registry_change(sto_store *s, const char *policy, const sto_change *c,
                             sto_change_result *out_result, uint64_t *out_production,
                             char *out_audit_id);

/* One audit entry read back: its id and its field/value pairs, owned. */
typedef struct sto_audit_entry {
    char id[BASE_STREAM_ID_MAX + 1];
    size_t n_fields;
    char **name;  /* [n_fields] NUL-terminated copies */
    char **value; /* [n_fields] NUL-terminated copies (a value's own NUL bytes end it early) */
} sto_audit_entry;

/*
 * sto_audit_read() - up to @max entries of @policy's audit stream with ids
 * strictly after @after_id ("" or "0": from the start), oldest first, read
 * with XRANGE in batches of at most 256. *out is an array of *out_n
 * entries (NULL when 0), freed with sto_audit_free().
 * Return: BASE_OK; BASE_EINVAL for a bad policy or id; BASE_EPROTO for an
 *         entry that is not pairs of strings; BASE_ENOMEM; BASE_EIO;
 *         BASE_ESTORE.
 */
base_err sto_audit_read(sto_store *s, const char *policy, const char *after_id, size_t max,
                        sto_audit_entry **out, size_t *out_n);
/* sto_audit_read_newest() - the newest @max entries (XREVRANGE), returned oldest first. */
base_err sto_audit_read_newest(sto_store *s, const char *policy, size_t max, sto_audit_entry **out,
                               size_t *out_n);
void sto_audit_free(sto_audit_entry *e, size_t n); /* accepts NULL */

/* The value of the first field called @name of @e (borrowed), or NULL. */
const char *sto_audit_field(const sto_audit_entry *e, const char *name);

/* XLEN of @policy's audit stream. Return: BASE_OK; BASE_EINVAL; BASE_EIO; BASE_ESTORE. */
base_err sto_audit_len(sto_store *s, const char *policy, uint64_t *out_len);

/*
 * sto_pinned_get() - the versions in @policy's pinned set, ascending, into
 * a new array *out of *out_n (NULL when 0; free with base_free()).
 * Return: BASE_OK; BASE_EPROTO for a member that is not a version;
 *         BASE_EINVAL; BASE_ENOMEM; BASE_EIO; BASE_ESTORE.
 */
base_err sto_pinned_get(sto_store *s, const char *policy, uint64_t **out, size_t *out_n);

/*
 * Policy definitions (storage/catalog.c; docs/storage.md, "Policy catalog").
 *
 *     rlfeed:{<policy>}:def     hash: version, state (active | retired), text, actor, ts
 *     rlfeed:{<policy>}:defs    stream: one entry per version, the same fields
 *     rlfeed:{<policy>}:audit   one entry per change (action, who, policy_version, state, diff)
 *     rlfeed:catalog            set of the policies ever defined
 *     rlfeed:catalog:seq        counter bumped after every change
 *
 * A change is one EVAL over the policy's three keys (one hash tag, one slot): it checks the
 * expected version, then writes the audit entry, the history entry and the hash, so a reader
 * sees a version with its text and its audit entry, or none of them. The set and the
 * counter are written after it (they live outside the policy's slot): a reader that polls the
 * counter also rereads everything now and then, so a change whose announcement was lost (the
 * writer died between the two) is still found.
 */
#define STO_CATALOG_TEXT_MAX (256u * 1024u) /* bytes of one definition */

typedef struct sto_policy_def {
    uint64_t version; /* 1, 2, ... */
    bool retired;
    char *text;      /* the INI text, owned (sto_policy_def_fini) */
    char actor[256]; /* who made the change */
    int64_t ts_ms;   /* when (the writer's wall clock) */
} sto_policy_def;

typedef struct sto_catalog_put_req {
    uint64_t expect;         /* the current version (0: the policy is not defined yet) */
    const char *text;        /* the new definition; ignored when retiring */
    bool retire;             /* a new version in state retired, with the current text */
    const char *actor;       /* required */
    const char *diff;        /* what changed, for the audit entry (may be NULL) */
    const sto_field *fields; /* the audit entry's pairs; one must be "action" */
    size_t n_fields;
} sto_catalog_put_req;

typedef enum sto_catalog_result {
    STO_CATALOG_CHANGED = 0, /* written: *out_version is the new version */
    STO_CATALOG_CONFLICT,    /* the current version was not @expect (or nothing to retire) */
} sto_catalog_result;

/*
 * sto_catalog_put() - write a new version of @policy's definition as @q says, atomically
 * with its history entry and its audit entry, then announce it (set and counter).
 * Return: BASE_OK with *out_result (and *out_version: the new version, or the current one
 *         on a conflict; @out_audit_id as sto_registry_change()); BASE_EINVAL (no actor,
 *         an empty text to put, a reserved or missing audit field); BASE_EINVAL or
 *         BASE_ELIMIT past STO_CATALOG_TEXT_MAX or STO_AUDIT_MAX_BYTES; BASE_ESTORE (a key
 *         of the wrong type: nothing written); BASE_EPROTO; BASE_EIO (read back to know).
 */
base_err sto_catalog_put(sto_store *s, const char *policy, const sto_catalog_put_req *q,
                         sto_catalog_result *out_result, uint64_t *out_version, char *out_audit_id);

/*
 * sto_catalog_announce() - add @policy to the catalog's member set and count a change, as
 * sto_catalog_put() does after writing: again for a put whose announcement failed (the
 * definition was written, but readers would not list a new policy). Idempotent but for the
 * counter, which only makes readers read once more.
 * Return: BASE_OK; BASE_EIO; BASE_ESTORE (Redis refused: a key of the wrong type...).
 */
base_err sto_catalog_announce(sto_store *s, const char *policy);

/*
 * sto_catalog_get() - @policy's definition: the current one (@version 0) or that version
 * from the history. *out_found false when there is none (then *out holds nothing).
 * Return: BASE_OK; BASE_EPROTO for a malformed entry; BASE_EINVAL; BASE_ENOMEM; BASE_EIO;
 *         BASE_ESTORE.
 */
base_err sto_catalog_get(sto_store *s, const char *policy, uint64_t version, sto_policy_def *out,
                         bool *out_found);
void sto_policy_def_fini(sto_policy_def *d);

/* The catalog's policies, sorted, into a new array (base_free). Errors as sto_catalog_get(). */
base_err sto_catalog_list(sto_store *s, char (**out)[BASE_NAME_MAX + 1], size_t *out_n);

/* The change counter (0 before any change). Errors as sto_catalog_get(). */
base_err sto_catalog_seq(sto_store *s, uint64_t *out);

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
 * sto_lease_acquire() - take or renew the lease of @policy for instance @owner
 * (<= STO_OWNER_MAX bytes) for @ttl_ms, atomically (one Lua script): it is
 * taken if nobody holds it or this process does under @owner (the value stored is
 * sto_lease_value()'s), and with @t->restart (an instance's start) also if another
 * process holds it under the same @owner: a restart takes its leases over at once, and
 * a second live process with that id takes them from the first, whose renewals then
 * fail (@t->from_twin says it happened). Otherwise @t->held is false, @t->holder names the
 * holder's instance id, @t->left_ms says how long its lease still runs and
 * @t->holder_shared whether its holder runs shared = on (its value says so; a value from
 * before lease values had nonces counts as shared).
 * Return: BASE_OK; BASE_EINVAL for a bad policy or owner; BASE_EIO; BASE_ESTORE.
 */
#define STO_OWNER_MAX 200
typedef struct sto_lease_take {
    bool restart; /* in */
    bool held;
    bool holder_shared;
    bool from_twin;
    char holder[STO_OWNER_MAX + 1];
    int64_t left_ms;
} sto_lease_take;
base_err sto_lease_acquire(sto_store *s, const char *policy, const char *owner, uint32_t ttl_ms,
                           sto_lease_take *t);

/*
 * sto_lease_value() - the lease value this process stores for instance @owner: the id, '#',
 * a nonce drawn once per process and 's' after sto_lease_set_shared(true). The fences
 * (sto_append.fence, sto_store_model_put_fenced()) compare the lease with it. Return:
 * BASE_OK; BASE_EINVAL (@owner empty or too long, or @size below STO_LEASE_VALUE_MAX).
 */
#define STO_LEASE_VALUE_MAX (STO_OWNER_MAX + 19)
base_err sto_lease_value(const char *owner, char *out, size_t size);

/* Whether this process runs shared = on (its lease values say so); before any lease use. */
void sto_lease_set_shared(bool shared);

/* Give the lease of @policy up if @owner holds it. Return: BASE_OK; BASE_EIO; BASE_ESTORE. */
base_err sto_lease_release(sto_store *s, const char *policy, const char *owner);

/*
 * Who holds the lease of @policy now: its instance id into @out (@size bytes; "" if
 * nobody). Changes nothing.
 */
base_err sto_lease_holder(sto_store *s, const char *policy, char *out, size_t size);

/*
 * The inbox (storage/inbox.c; docs/storage.md, "The inbox"; shared = on): instances that
 * follow a policy hand its owner what they served and received through the stream
 * rlfeed:{<policy>}:inbox, with ids Redis gives, so that entries from many senders are in
 * one order.
 *
 * sto_inbox_add() - append record @rec of @kind (STO_DECISIONS or STO_OUTCOMES) sent by
 * instance @from (<= STO_OWNER_MAX bytes); its id into @out_id (BASE_STREAM_ID_MAX + 1
 * bytes; may be NULL). In cluster mode the master written is covered by the next
 * sto_store_wait(). A retry after a lost connection may store the record twice: the owner
 * drops the second copy (the join's duplicate checks).
 * Return: BASE_OK; BASE_EINVAL for a bad policy, kind or record; BASE_ELIMIT past
 *         STO_MAX_VALUE; BASE_ESTORE (an error reply); BASE_EIO.
 */
base_err sto_inbox_add(sto_store *s, const char *policy, sto_kind kind, const void *rec,
                       const char *from, char *out_id);

/* One record for sto_inbox_add_batch(). */
typedef struct sto_inbox_item {
    const char *policy;
    sto_kind kind;
    const void *rec;
    const char *from;
    base_err out_err; /* BASE_OK: stored; BASE_EIO: fate unknown (connection lost); else why not */
} sto_inbox_item;

/*
 * sto_inbox_add_batch() - sto_inbox_add() of @n items, pipelined: one round trip per policy
 * (per master in cluster mode) instead of one per record. Each item's out_err says what
 * became of it; an error reply is retried alone (redirections, a settling cluster).
 * Return: BASE_OK when every item has its answer; BASE_EIO when the connection broke (the
 *         items still at BASE_EIO may or may not be stored: retry them, the owner drops a
 *         copy).
 */
base_err sto_inbox_add_batch(sto_store *s, sto_inbox_item *items, size_t n);

typedef struct sto_inbox_entry {
    char id[BASE_STREAM_ID_MAX + 1];
    char from[STO_OWNER_MAX + 1]; /* the sender; "" if the entry does not say */
    int kind;                     /* sto_kind of rec; -1: malformed (rec NULL), to be skipped */
    void *rec;                    /* base_decision* or base_outcome*; owned */
} sto_inbox_entry;

/*
 * sto_inbox_read() - up to @max entries of @policy's inbox after @after_id ("" = from the
 * start), oldest first, into *out (free with sto_inbox_free()). An entry that does not
 * decode is returned with kind -1, so the reader can count it and go past it.
 * Return: BASE_OK; BASE_EINVAL; BASE_EPROTO (not a stream reply); BASE_ENOMEM;
 *         BASE_ESTORE; BASE_EIO.
 */
base_err sto_inbox_read(sto_store *s, const char *policy, const char *after_id, size_t max,
                        sto_inbox_entry **out, size_t *out_n);
void sto_inbox_free(sto_inbox_entry *e, size_t n);

/* Remove @policy's inbox entries below @min_id (XTRIM MINID). */
base_err sto_inbox_trim(sto_store *s, const char *policy, const char *min_id);

/* Erasure, stream compaction and the AOF rewrite after it: storage/erase.h. */

/*
 * sto_policy_known() - whether this Redis has anything of @policy: its audit stream (every
 * rlfeedd start writes one), registry, models index or decision stream.
 */
base_err sto_policy_known(sto_store *s, const char *policy, bool *out_known);

/*
 * sto_pseudonym_key() - the deployment's pseudonym key kept in Redis at STO_PSEUDONYM_KEY:
 * @fresh is stored if there is none yet (SET NX), and *out is what is stored.
 * Return: BASE_OK; BASE_EPROTO (the key holds something else); BASE_EIO; BASE_ESTORE.
 */
#define STO_PSEUDONYM_KEY "rlfeed:pseudonym-key"
base_err sto_pseudonym_key(sto_store *s, const uint8_t fresh[32], uint8_t out[32]);

/* The key kept in Redis, if any (*out_found), without storing one. */
base_err sto_pseudonym_key_get(sto_store *s, uint8_t out[32], bool *out_found);

/*
 * Kept state: what a process keeps across its own restart, as one string at
 * rlfeed:kept:@kind:@name with a TTL (not a policy's key: no hash tag). @name is the
 * process's instance id, so another instance never reads it.
 * sto_keep_put() - SET it, with PX @ttl_ms (> 0).
 * sto_keep_take() - GETDEL it: appended to @out with *out_found, or *out_found false when
 * there is none (expired, or never put).
 * Return: BASE_OK; BASE_EINVAL for a key longer than STO_KEEP_KEY_MAX or a bad TTL;
 *         BASE_EPROTO (take: the key holds another type); BASE_ENOMEM or BASE_ELIMIT
 *         (take: @out's bound); BASE_EIO; BASE_ESTORE.
 */
#define STO_KEEP_KEY_MAX 512
base_err sto_keep_put(sto_store *s, const char *kind, const char *name, const void *data,
                      size_t len, int64_t ttl_ms);
base_err sto_keep_take(sto_store *s, const char *kind, const char *name, base_buf *out,
                       bool *out_found);

#endif
