#ifndef STORAGE_ERASE_H
#define STORAGE_ERASE_H

/*
 * Erasure of one customer's records and what makes it final: the streams rewritten without
 * the deleted entries' bytes, and the AOF rewritten (docs/security.md, "Erasure").
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/store.h"

/*
 * Erasure (storage/erase.c; docs/security.md, "Erasure"): sto_erase() removes from
 * @policy's streams every record of one customer: decisions and outcomes that name
 * @user (pseudonymised, as stored; "" for none), every record of their conversations and of
 * @conversation ("" for none), every outcome addressed to one of those decisions (by event
 * id and time: ids are reused once a decision closed), and the joined records of those
 * decisions (XDEL), with their event index entries, also from the inbox. Then
 * sto_erase_compact() rewrites the streams so that the removed bytes are gone. With
 * @dry_run nothing is deleted and @rep counts what would be. Run it while no rlfeedd holds
 * the policy (sto_lease_holder()): the daemon's in-memory join would write them again.
 * Return: BASE_OK; BASE_EINVAL (neither given, or too long); BASE_EPROTO (an entry that
 *         does not decode; a Redis before 7.0, before anything is deleted); BASE_EIO;
 *         BASE_ESTORE (a stream with consumer groups, before anything is deleted);
 *         BASE_ENOMEM. On an error @rep still counts what was removed before it.
 */
typedef struct sto_erase_report {
    uint64_t decisions, outcomes, joined; /* entries removed */
    uint64_t inbox;                       /* inbox entries removed (shared = on) */
    uint64_t index_fields;                /* event index fields removed */
    uint64_t conversations;               /* conversations found */
} sto_erase_report;
base_err sto_erase(sto_store *s, const char *policy, const char *user, const char *conversation,
                   bool dry_run, sto_erase_report *rep);

/*
 * sto_erase_compact() - sto_stream_compact() of each of @policy's streams and its inbox;
 * *out_compacted how many were rewritten. Run again after an error: it finishes.
 */
base_err sto_erase_compact(sto_store *s, const char *policy, uint64_t *out_compacted);

/*
 * A stream's state (XINFO STREAM): whether it exists, its length, last id, entries-added
 * count, largest deleted id ("0-0": none ever) and consumer groups. sto_stream_state():
 * BASE_EPROTO (with words) from a Redis before 7.0, which reports neither of the two.
 */
typedef struct sto_stream_info {
    bool exists;
    long long length, entries_added, groups;
    char last_id[BASE_STREAM_ID_MAX + 1];
    char max_deleted[BASE_STREAM_ID_MAX + 1];
} sto_stream_info;
base_err sto_stream_state(sto_store *s, const char *key, sto_stream_info *out);

/*
 * sto_stream_compact() - if entries were ever deleted from stream @key of @policy, rewrite it
 * so that their bytes are gone from Redis (storage/compact.c): copied under the same ids to
 * @key:compact, which replaces it, unless an rlfeedd holds the policy or the stream changed
 * meanwhile (BASE_ESTORE, with words). *out_done whether it was rewritten.
 * Return: BASE_OK; BASE_ESTORE; BASE_EPROTO; BASE_EIO.
 */
base_err sto_stream_compact(sto_store *s, const char *policy, const char *key, bool *out_done);

/*
 * sto_rewrite_aof() - after an erasure: have Redis rewrite its append-only file
 * (BGREWRITEAOF, after one already running) and wait up to @timeout_ms for it, so that the
 * removed records leave the disk. *out_rewritten false with the reason in @why when there is
 * no AOF (aof_enabled 0), on a cluster, when the rewrite failed or did not finish in time.
 * Return: BASE_OK; BASE_EIO; BASE_ESTORE (refused: an ACL); BASE_EPROTO; BASE_ENOMEM.
 */
base_err sto_rewrite_aof(sto_store *s, int timeout_ms, bool *out_rewritten, char *why,
                         size_t whylen);

/* SAVE: write the RDB file now, in the foreground (a private server the erase started). */
base_err sto_save_rdb(sto_store *s);

#endif
