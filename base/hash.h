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

/* The 64-bit FNV-1a offset basis: the state of a hash over no bytes. */
#define BASE_FNV_OFFSET 0xcbf29ce484222325ULL

/*
 * base_fnv1a64() - 64-bit FNV-1a (Fowler, Noll, Vo) of @n bytes at @p,
 * continuing from state @h (BASE_FNV_OFFSET to start). Streams: hashing
 * "foo" then "bar" from the first result equals hashing "foobar". No
 * finishing mix, so equal states give equal continuations; checksums over
 * model parameters use it directly. @p may be NULL when @n is 0.
 * Example: base_fnv1a64("a", 1, BASE_FNV_OFFSET) == 0xaf63dc4c8601ec8c.
 */
uint64_t base_fnv1a64(const void *p, size_t n, uint64_t h);

/*
 * base_hash64() - a seeded 64-bit hash of @n bytes: base_fnv1a64() from
 * BASE_FNV_OFFSET ^ mix(@seed), finished with a splitmix64 mix, so nearby
 * seeds and inputs give unrelated outputs.
 */
uint64_t base_hash64(const void *p, size_t n, uint64_t seed);

/* The splitmix64 step: advances *state and returns the next output. */
uint64_t base_splitmix64(uint64_t *state);

/* A double uniform in [0, 1) from the top 53 bits of @u. */
double base_u64_to_unit(uint64_t u);

/*
 * base_entropy_fill() - @n bytes from the kernel's random source (getrandom(2)), for
 * secrets, passwords and nonces: never for anything a decision or learning depends on (see
 * above). Blocks until the source is seeded at boot; retries interrupted and short reads.
 * getrandom() fails otherwise only for bad arguments or a kernel older than 3.17, which
 * Debian 12 does not run.
 */
void base_entropy_fill(void *p, size_t n);

#endif
