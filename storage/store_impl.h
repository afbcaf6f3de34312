#ifndef STORAGE_STORE_IMPL_H
#define STORAGE_STORE_IMPL_H

/*
 * The insides of storage/store.h, shared by its files and no one else:
 * redis.c (the hiredis connection, command helpers, key names), append.c (appends), store.c
 * (streams), store_model.c (snapshots, registry, retention), registry.c
 * (registry changes, the audit stream, the pinned set) and lease.c
 * (ownership leases), evidx.c (the event index) and rollup.c (the rollup
 * stream, storage/rollup.h). Only these files include hiredis.h.
 */

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "storage/cluster.h"
#include "storage/store.h"

/*
 * A pipelined append is sent in chunks of at most PIPE_MAX_ITEMS commands
 * or about PIPE_MAX_BYTES of records. Bounding the outstanding replies keeps
 * them inside the socket buffers: hiredis writes the whole pipeline before it
 * reads, and a blocking writer facing a server blocked on its own replies
 * would deadlock.
 */
#define PIPE_MAX_ITEMS 1024u
#define PIPE_MAX_BYTES (8u << 20)
#define HOST_MAX 255u
#define PATH_MAX_UNIX 107u /* sun_path holds 108 bytes with the NUL */
#define STO_CRED_MAX 255u  /* bytes of a user name or password in a URL, decoded */

#define STO_SEEDS_MAX 16u /* host:port pairs a cluster:// URL may list */

/* One master's connection in cluster mode. */
typedef struct sto_node_conn {
    redisContext *c; /* NULL until first routed to, or after it broke */
    bool dirty;      /* appended to since the last sto_store_wait() */
} sto_node_conn;

struct sto_store {
    /*
     * The connection of the command at hand: the only one, or in cluster mode the
     * connection of the master the last sto_route_*() chose (owned by conn[]). NULL while
     * broken: every call then fails with BASE_EIO.
     */
    redisContext *c;
    int is_unix;
    char host[HOST_MAX + 1];
    int port;
    char path[PATH_MAX_UNIX + 1];
    char user[STO_CRED_MAX + 1]; /* "" = the default user */
    char pass[STO_CRED_MAX + 1]; /* "" = no AUTH */
    int timeout_ms;
    /* Cluster mode (a cluster:// URL; storage/cluster.h). */
    bool cluster;
    bool stale; /* the map is to be read again before the next routing */
    int cur;    /* the index in map->node whose connection c is; -1: none */
    uint32_t n_seeds;
    sto_cluster_node seed[STO_SEEDS_MAX]; /* the URL's nodes, where a first map is read */
    sto_slot_map *map;                    /* NULL until first read */
    sto_node_conn conn[STO_CLUSTER_NODES_MAX];
    char refusal[320]; /* the last error reply, or entry that did not decode (sto_store_refusal) */
    /*
     * Redis refused a transaction (append.c): chunks go as plain pipelines, each command
     * answered on its own, until a batch is stored without a refusal. A refusal that lasts
     * (OOM, an ACL) then costs one send of each record per retry, not two.
     */
    bool tx_off;
};

/*
 * Routing (cluster mode; a no-op on a single Redis): make s->c the connection of the master
 * that serves @policy's keys (rlfeed:{policy}:..., one hash slot), of the slot of @key, or
 * of any master. Reads the slot map when stale, connects to the master on first use.
 * Return: BASE_OK; BASE_EIO (no master serves the slot, or it cannot be reached; the map
 *         is read again next time); BASE_ENOMEM.
 */
base_err sto_route_policy(sto_store *s, const char *policy);
base_err sto_route_key(sto_store *s, const char *key, size_t n);
/* Cluster mode: make s->c the connection of master @k of the map, connecting if need be. */
base_err sto_route_node(sto_store *s, uint32_t k);

/*
 * In cluster mode, note what an error reply @r says about the map: MOVED, ASK,
 * CLUSTERDOWN and TRYAGAIN make it stale. Returns whether @r was one of those (the command
 * did not run; it may be sent again).
 */
bool sto_cluster_note(sto_store *s, const redisReply *r);

/*
 * redis.c, for route.c: connect to @host:@port (NULL: the unix socket s->path) with the
 * store's timeout and credentials.
 * Return: BASE_OK; BASE_EIO; BASE_ESTORE (credentials refused); BASE_ENOMEM.
 */
base_err sto_open_ctx(const sto_store *s, const char *host, int port, redisContext **out,
                      char *errbuf, size_t errlen);

/* Cluster mode: read the slot map from a master or a seed (on any connection). */
base_err sto_cluster_refresh(sto_store *s, char *errbuf, size_t errlen);

/* Cluster mode: close master @i's connection (-1: none; STO_CLUSTER_NODES_MAX: all of them). */
void sto_cluster_drop(sto_store *s, int i);

/* Cluster mode: sto_run_any() routed by the command's key, following redirections. */
base_err sto_cluster_run(sto_store *s, int argc, const char **argv, const size_t *lens,
                         redisReply **out);

/* Cluster mode: sto_store_wait() on every master appended to since the last; the least count. */
base_err sto_cluster_wait(sto_store *s, uint32_t n, uint32_t timeout_ms, uint32_t *out_acked);
/* Cluster mode: sto_store_wait_policies(). */
base_err sto_cluster_wait_policies(sto_store *s, const char *const *policy, size_t n_policy,
                                   uint32_t n, uint32_t timeout_ms, uint32_t *out_acked);

/*
 * Cluster mode: every slot has a master in the map and every master answers CLUSTER INFO
 * with cluster_state:ok (else BASE_EIO: the cluster is down or settling).
 */
base_err sto_cluster_ping(sto_store *s);

/* One command on s->c as it is (no routing). As sto_run_any(). */
base_err sto_run_here(sto_store *s, int argc, const char **argv, const size_t *lens,
                      redisReply **out);

/*
 * SIGPIPE guard around one exchange (see redis.c): blocks SIGPIPE in the
 * calling thread and consumes one the exchange raised.
 */
typedef struct pipe_guard {
    sigset_t old;
    int was_pending;
} pipe_guard;
void sto_guard_begin(pipe_guard *g);
void sto_guard_end(pipe_guard *g);

/* The connection broke: free it; every call fails with BASE_EIO until a reconnect. */
void sto_mark_broken(sto_store *s);

/* Run one command. On BASE_OK *out is its reply, an error reply included; the caller frees it. */
base_err sto_run_any(sto_store *s, int argc, const char **argv, const size_t *lens,
                     redisReply **out);

/*
 * Run one command. On BASE_OK *out is a non-error reply the caller frees;
 * an error reply is freed here and reported as BASE_ESTORE.
 */
base_err sto_run(sto_store *s, int argc, const char **argv, const size_t *lens, redisReply **out);

/* sto_run() of a command whose reply only says it was done: the reply is dropped. */
base_err sto_run_ok(sto_store *s, int argc, const char **argv, const size_t *lens);

/*
 * Run one command whose reply is a count (XLEN, XTRIM...): *out gets it.
 * Return: sto_run()'s errors; BASE_EPROTO if the reply is not an integer >= 0.
 */
base_err sto_run_count(sto_store *s, int argc, const char **argv, const size_t *lens,
                       uint64_t *out);

/* The reply of a change script (registry.c, catalog.c): {word, version, [stream id]}. */
typedef struct sto_change_reply {
    char word[16];                   /* "changed", "conflict", ... */
    uint64_t version;                /* the version the script answered */
    char id[BASE_STREAM_ID_MAX + 1]; /* the audit entry's id; "" when absent */
} sto_change_reply;

/*
 * sto_run_change_script() - append the audit pairs @fields to @argv (which holds @argc
 * arguments: EVAL, the script of @script_len bytes, its keys and fixed arguments; room for
 * 2 * @n_fields more, as @lens), run it, and read its reply into @out.
 * Return: sto_run()'s errors; BASE_EPROTO for a reply of another shape.
 */
base_err sto_run_change_script(sto_store *s, const char **argv, size_t *lens, int argc,
                               size_t script_len, const struct sto_field *fields, size_t n_fields,
                               sto_change_reply *out);

/* Whether @r is the status reply @want ("OK", "PONG", "QUEUED"). */
bool sto_is_status(const redisReply *r, const char *want);

/*
 * A version as Redis holds it (registry fields, set members): 1..20 decimal
 * digits, no sign, no overflow. *out is written only on success.
 */
bool sto_parse_version(const char *p, size_t n, uint64_t *out);

/*
 * "rlfeed:{<policy>}:<suffix>" into @dst. The policy must be non-empty, fit
 * its field and contain no brace: a brace would move the Cluster hash tag.
 * Return: BASE_OK; BASE_EINVAL.
 */
base_err sto_make_key(char *dst, size_t size, const char *policy, const char *suffix);

/* The key of stream @kind of @policy. Return: BASE_OK; BASE_EINVAL. */
base_err sto_stream_key(char *dst, size_t size, sto_kind kind, const char *policy);

/*
 * XRANGE @key after @after_id ("" or "0": from the start; <= BASE_STREAM_ID_MAX bytes,
 * checked by the caller) COUNT @max: on BASE_OK *out is an array reply of at most @max
 * entries (the caller frees it). Return: BASE_OK; BASE_EPROTO (not such an array);
 * sto_run()'s errors.
 */
base_err sto_xrange_after(sto_store *s, const char *key, const char *after_id, size_t max,
                          redisReply **out);

/* The longest event-index field: an event id behind "j:" (joined) or "o:" (outcomes). */
#define STO_EVIDX_FIELD_MAX (BASE_ID_MAX + 3)

/* How an item is indexed (sto_evidx_entry()). */
typedef enum sto_evidx_op {
    STO_EVIDX_NONE,   /* not indexed */
    STO_EVIDX_SET,    /* a decision or joined record: HSET key field id */
    STO_EVIDX_APPEND, /* an outcome: its id appended to the field (STO_EVIDX_APPEND_OUTCOMES) */
} sto_evidx_op;

/*
 * evidx.c: how @it (with an index_ttl_ms; storage.md, the event index) is indexed, its hour
 * key into @key [STO_KEY_MAX] and its field into @field [STO_EVIDX_FIELD_MAX]. The caller
 * writes the entries of many items together (storage/append.c).
 */
sto_evidx_op sto_evidx_entry(const sto_append *it, char *key, char *field);

/*
 * The script that appends outcome ids to their fields: KEYS hour keys of one policy (one
 * slot on a cluster), ARGV[1] STO_EVIDX_MAX_OUTCOMES, then (key index, field, id) per
 * outcome.
 */
extern const char STO_EVIDX_APPEND_OUTCOMES[];

#endif
