#ifndef RLFEED_STORAGE_APPEND_INDEX_H
#define RLFEED_STORAGE_APPEND_INDEX_H

/*
 * The event index of an append's chunk (storage.md, the event index): sto_store_append()
 * (append.c) queues each sent item's entry here and the chunk's index commands after its
 * XADDs. Internal to storage/.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/store.h"
#include "storage/store_impl.h"

/* Hour keys one chunk's index entries may use; an item of another is indexed at once. */
#define IDX_KEYS_MAX 8u

/* Index entries an item indexed at once, alone, needs argv for. */
#define IDX_ARGV_ONE 16

/* An hour key of the event index, with its policy and the TTL its last item asks for. */
typedef struct idx_key {
    char name[STO_KEY_MAX];
    const char *policy;
    uint64_t ttl;
} idx_key;

/* One item's index entry: under keys[key], @field -> @id (set, or appended for outcomes). */
typedef struct idx_ent {
    uint8_t key;
    bool append;
    char field[STO_EVIDX_FIELD_MAX];
    const char *id;
} idx_ent;

/*
 * The event index of a chunk's items, written after its XADDs: per hour key one HSET of all
 * its decisions' and joined records' fields, per policy one script that appends all its
 * outcomes' ids (STO_EVIDX_APPEND_OUTCOMES), then per key one PEXPIRE of the last item's
 * TTL (each write renews it): a few commands a chunk instead of two an item.
 */
typedef struct idx_pend {
    idx_ent *e; /* [cap] */
    size_t n, cap;
    const char **argv; /* [4 + IDX_KEYS_MAX + 3 cap] */
    size_t *lens;
    idx_key keys[IDX_KEYS_MAX];
    size_t n_keys;
} idx_pend;

/* Room for @cap entries; false (free with sto_idx_pend_fini() all the same) on no memory. */
bool sto_idx_pend_init(idx_pend *p, size_t cap);
void sto_idx_pend_fini(idx_pend *p);

/* Queue the chunk's pending entries; *tail counts their replies. */
base_err sto_idx_flush(sto_store *s, idx_pend *p, size_t *tail);

/*
 * The event-index entries of each sent item of @k[0..n) (after its XADD or group) into @p
 * for the chunk's end; once the chunk has IDX_KEYS_MAX other hour keys, an item's own
 * commands at once, their replies counted in extra[] (read after the item's).
 */
base_err sto_queue_indexes(sto_store *s, sto_append *items, const size_t *k, size_t n,
                           const bool *sent, uint8_t *extra, size_t *cmds, idx_pend *p);

#endif
