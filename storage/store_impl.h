#ifndef STORAGE_STORE_IMPL_H
#define STORAGE_STORE_IMPL_H

/*
 * The insides of storage/store.h, shared by its files and no one else:
 * redis.c (the hiredis connection, command helpers, key names), store.c
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

struct sto_store {
    redisContext *c; /* NULL while broken: every call then fails with BASE_EIO */
    int is_unix;
    char host[HOST_MAX + 1];
    int port;
    char path[PATH_MAX_UNIX + 1];
    char user[STO_CRED_MAX + 1]; /* "" = the default user */
    char pass[STO_CRED_MAX + 1]; /* "" = no AUTH */
    int timeout_ms;
};

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
 * evidx.c: queue the event-index commands of @it (stored under @id) on the
 * pipeline, after its XADD. *out_n is how many replies to read and discard
 * (0 when @it is not indexed). Return: BASE_OK; BASE_EIO (hiredis OOM: the
 * context is unusable).
 */
base_err sto_evidx_queue(sto_store *s, const sto_append *it, const char *id, size_t *out_n);

#endif
