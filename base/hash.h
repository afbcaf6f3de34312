#ifndef BASE_HASH_H
#define BASE_HASH_H

/*
 * Deterministic hashing and seeded randomness.
 *
 * All randomness that affects a decision or learning is derived from stable
 * inputs (event ids, configured seeds) through these functions, so any
 * decision can be replayed and learning is deterministic given its input
 * order. The functions are pure and thread-safe.
 */

#include <stddef.h>
#include <stdint.h>

/* 64-bit FNV-1a over @n bytes, finished with a splitmix64 mix. */
uint64_t base_hash64(const void *p, size_t n, uint64_t seed);

/* The splitmix64 step: advances *state and returns the next output. */
uint64_t base_splitmix64(uint64_t *state);

/* A double uniform in [0, 1) from the top 53 bits of @u. */
double base_u64_to_unit(uint64_t u);

#endif
