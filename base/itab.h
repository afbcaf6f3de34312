#ifndef BASE_ITAB_H
#define BASE_ITAB_H

/*
 * An intrusive chained hash table that doubles and halves, a few buckets at a
 * time. Entries are the caller's structs; each carries a `void *` link and
 * its own 64-bit hash (set before base_itab_insert() and not changed while it
 * is in the table); the table stores neither keys nor copies, so callers
 * compare their own keys while walking the candidates of a hash.
 *
 * Order: the candidates of one hash come newest first (the order they were
 * inserted, reversed), also across a resize, so "the first match" means "the
 * newest one", as in a plain array of chains.
 *
 * Memory follows the count: the table starts at @min_size buckets, doubles
 * when it holds more entries than buckets and halves (never below its initial
 * size) when it holds fewer than an eighth of them, so after a peak it gives
 * the memory back. While it resizes, each insert and remove moves a few
 * buckets of the old array to the new one (2 while doubling, 16 mostly empty
 * ones while halving), so a doubling is over before the new array can fill
 * and there is no pause longer than those moves; lookups walk both arrays.
 * Without memory for a new array it keeps its size (its chains grow).
 *
 * Not thread-safe: the owner serialises all calls (lookups too: inserts move
 * entries between the arrays).
 */

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct base_itab {
    void **t[2];     /* t[0] the table; t[1] the next one while resizing, else NULL */
    size_t size[2];  /* buckets, powers of two */
    size_t moved;    /* buckets of t[0] moved to t[1] so far (while resizing) */
    size_t min;      /* the initial size: it never halves below */
    size_t count;    /* entries */
    size_t link_off; /* offsetof(entry, its void * link) */
    size_t hash_off; /* offsetof(entry, its uint64_t hash) */
} base_itab;

/* A walk over the candidates of one hash (base_itab_first()). */
typedef struct base_itab_walk {
    uint64_t hash;
    int table;  /* the array being walked: 1 first while resizing, then 0 */
    void *next; /* the next entry of its chain */
} base_itab_walk;

/*
 * base_itab_init() - an empty table of @min_size buckets (rounded up to a
 * power of two, at least 8) for entries with a `void *` link at @link_off and
 * a uint64_t hash at @hash_off. Return: BASE_OK; BASE_ENOMEM.
 */
base_err base_itab_init(base_itab *t, size_t min_size, size_t link_off, size_t hash_off);

/* Free the bucket arrays (not the entries). Accepts a zeroed table. */
void base_itab_fini(base_itab *t);

/* Insert @e (its hash set): the newest candidate of its hash. */
void base_itab_insert(base_itab *t, void *e);

/* Remove @e, which is in @t. */
void base_itab_remove(base_itab *t, void *e);

/*
 * base_itab_first() - the newest entry whose hash is @hash, or NULL;
 * base_itab_next() the next older one. Nothing may be inserted or removed
 * during a walk.
 */
void *base_itab_first(const base_itab *t, uint64_t hash, base_itab_walk *w);
void *base_itab_next(const base_itab *t, base_itab_walk *w);

/* Call @fn on every entry (any order) and empty the table; @fn may free them. */
void base_itab_drain(base_itab *t, void (*fn)(void *e));

#endif
