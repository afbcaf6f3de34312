#ifndef STORAGE_SPILL_H
#define STORAGE_SPILL_H

/*
 * Spill files: stream records the daemon could not store in Redis before it
 * stopped, kept on local disk with the stream ids they were given, and
 * appended to their streams at the next start, before recovery reads them.
 *
 * Invariants:
 * 1. A spill file appears under its final name only complete and durable:
 *    it is written as NAME.tmp, fsynced, linked to NAME (never replacing a
 *    file), and the directory is fsynced. A crash while writing leaves only
 *    the .tmp file, which replay reports (partial) and leaves alone.
 * 2. Every record keeps the explicit stream id it was given, so a replay is
 *    idempotent (docs/storage.md, "Idempotent appends"): a replay cut short
 *    and run again stores each record once. A file is removed only after
 *    every record in it is in Redis.
 * 3. Records are replayed in file order, files in name order (names carry
 *    the time they were written), so each stream keeps its order.
 *
 * Names: DIR/rlfeed-spill-<ms, 16 digits>.bin, e.g.
 *     /var/lib/rlfeed/rlfeed-spill-0001764633600123.bin
 *
 * Format (integers little-endian):
 *     header  "RLFSPILL", u32 version = 1
 *     frame   u32 len (1 .. STO_SPILL_FRAME_MAX), then len bytes:
 *             u8 kind (sto_kind), u8 n, n bytes policy, u8 m, m bytes
 *             stream id "<ms>-<seq>", then the record encoded exactly as
 *             in Redis (storage/codec.h)
 *     ...     one frame per record
 *     end     u32 0, u64 number of frames, u64 checksum: base_hash64
 *             chained over the header, then over each frame (its length
 *             field included)
 * An outcome of policy "p" at id "5-0" is the frame
 *     len, 01, 01 'p', 03 '5' '-' '0', 88 a1 76 01 ... (the outcome's map)
 *
 * Threads: a writer (sto_spill) belongs to one thread; the other calls are
 * independent. Limits: a record at most STO_MAX_VALUE bytes.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/record.h"
#include "storage/store.h"

#define STO_SPILL_VERSION 1
#define STO_SPILL_FRAME_MAX (STO_MAX_VALUE + 256u) /* a record plus its frame header */

typedef struct sto_spill sto_spill;

/*
 * sto_spill_create() - start a new spill file in directory @dir (it must
 * exist), named for the current wall-clock time (a later time if that name
 * is taken). Nothing is visible under the final name until commit.
 * Return: BASE_OK; BASE_EINVAL if the path is too long; BASE_EIO (reason in
 *         @errbuf); BASE_ENOMEM.
 */
base_err sto_spill_create(const char *dir, sto_spill **out, char *errbuf, size_t errlen);

/*
 * sto_spill_add() - append record @rec (borrowed; the type named by @kind)
 * of @policy with stream id @id. Errors are sticky: after one, later adds
 * fail the same way and commit refuses.
 * Return: BASE_OK; BASE_EINVAL (bad kind, policy, id or record);
 *         BASE_ELIMIT past STO_MAX_VALUE; BASE_EIO; BASE_ENOMEM.
 */
base_err sto_spill_add(sto_spill *w, sto_kind kind, const char *policy, const char *id,
                       const void *rec);

/*
 * sto_spill_commit() - finish the file: end marker, fsync, publish under
 * its final name (copied into @out_path, may be NULL), fsync the directory.
 * Frees @w whatever the result; on failure nothing is published.
 * Return: BASE_OK; the first error of an add; BASE_EIO (reason in @errbuf).
 */
base_err sto_spill_commit(sto_spill *w, char *out_path, size_t path_len, char *errbuf,
                          size_t errlen);

/* Remove the unfinished file and free @w. Accepts NULL. */
void sto_spill_abort(sto_spill *w);

/* One record read back from a spill file. */
typedef struct sto_spill_rec {
    sto_kind kind;
    char policy[BASE_NAME_MAX + 1];
    char id[BASE_STREAM_ID_MAX + 1];
    void *rec; /* base_decision*, base_outcome* or base_joined* by kind; owned */
} sto_spill_rec;

/*
 * sto_spill_decode() - decode a whole spill file held in @buf. A pure
 * function, safe on any bytes: checks the header, every frame's bounds,
 * kind, policy, id and record (storage/codec.h), the end marker, the frame
 * count and the checksum; trailing bytes are an error.
 * *out is an array of *out_n records (NULL when 0), freed with
 * sto_spill_recs_free().
 * Return: BASE_OK; BASE_EPROTO; BASE_ENOMEM.
 */
base_err sto_spill_decode(const uint8_t *buf, size_t len, sto_spill_rec **out, size_t *out_n);
void sto_spill_recs_free(sto_spill_rec *r, size_t n);

/* What sto_spill_replay() did. */
typedef struct sto_spill_report {
    uint32_t files;      /* spill files replayed and removed */
    uint64_t records;    /* records in them */
    uint64_t appended;   /* appended now */
    uint64_t present;    /* already in Redis (an earlier attempt whose reply was lost) */
    uint64_t renumbered; /* given a new id: their stream had moved past theirs */
    uint32_t partial;    /* unfinished NAME.tmp files found and left alone */
    uint64_t foreign;    /* not appended: their policy's lease is another instance's now */
} sto_spill_report;

/*
 * sto_spill_replay() - append the records of every spill file in @dir to
 * their streams through @s, oldest file first, each with its own id, and
 * remove each file once all its records are in Redis. A record whose id is
 * at or below its stream's last id is looked up there (sto_store_match):
 * found, it is not appended again; not there (the stream moved past it:
 * another writer, or a Redis restored from elsewhere), it gets a new id
 * above the top, and the file is first rewritten with the new ids, so
 * that a replay cut short stays idempotent.
 * Blocks on Redis (each call bounded by @s's timeout). *out is filled in
 * also on failure (what was done so far).
 * Return: BASE_OK (also when there is nothing to replay); BASE_EIO (file
 *         system or Redis connection; reason in @errbuf); BASE_EPROTO (a
 *         file that does not decode, named in @errbuf); BASE_ESTORE (Redis
 *         refused a record); BASE_ENOMEM. On failure the file being replayed
 *         is kept and the next replay starts it again.
 */
base_err sto_spill_replay(sto_store *s, const char *dir, sto_spill_report *out, char *errbuf,
                          size_t errlen);

/*
 * sto_spill_replay_as() - sto_spill_replay() by instance @owner (its lease id): the records
 * of a policy whose lease another instance holds now (it took the policy over while this one
 * was down) are not appended but dropped with their file (counted in out->foreign): only
 * the lease holder writes a policy's streams. A policy with no lease holder is replayed.
 */
base_err sto_spill_replay_as(sto_store *s, const char *dir, const char *owner,
                             sto_spill_report *out, char *errbuf, size_t errlen);

#endif
