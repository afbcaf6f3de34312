#ifndef BASE_HSET_H
#define BASE_HSET_H

/*
 * A hash set of non-zero 64-bit keys, each carrying a 32-bit value: open
 * addressing with linear probing, doubled when half full. Callers hash their
 * own keys (base_hash64 of a name or an id) and, where a 64-bit collision
 * matters, check the value they get back against the real key.
 *
 * Invariants: 1. cap is 0 or a power of two, and n < cap / 2 + 1. 2. key 0
 * marks an empty slot. Limits: at most @max_n keys (BASE_ELIMIT past it).
 * No removal. Not thread-safe: the owner serialises access (readers only,
 * concurrently, once it stops changing).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct base_hset {
    uint64_t *key; /* [cap] */
    uint32_t *val; /* [cap] */
    size_t cap;
    size_t n;
    size_t max_n;
} base_hset;

void base_hset_init(base_hset *s, size_t max_n);
void base_hset_fini(base_hset *s); /* accepts a zeroed set */

/*
 * base_hset_put() - set @key's value to @val, adding the key if absent.
 * Return: BASE_OK; BASE_EINVAL for key 0; BASE_ELIMIT past max_n;
 *         BASE_ENOMEM (the set is unchanged).
 */
base_err base_hset_put(base_hset *s, uint64_t key, uint32_t val);

/* Whether @key is in the set; its value into *out_val (may be NULL) if so. */
bool base_hset_get(const base_hset *s, uint64_t key, uint32_t *out_val);

#endif
