#ifndef BASE_MPCHECK_H
#define BASE_MPCHECK_H

/*
 * A bounded structural check of msgpack bytes, run before any unpacker sees
 * them. msgpack-c 4.0 trusts the counts in headers: a 5-byte array32 header
 * makes it reserve gigabytes. This walker allocates nothing and verifies:
 *
 * 1. @buf holds exactly one msgpack object, with no trailing bytes;
 * 2. every str/bin/ext length fits in the bytes that remain, and every
 *    array/map count is at most the number of bytes that remain (each
 *    element needs at least one);
 * 3. nesting depth is at most @max_depth (<= BASE_MPCHECK_DEPTH_MAX) containers,
 *    empty ones included;
 * 4. at most @max_objects objects in total (map pairs count twice);
 * 5. the reserved byte 0xc1 does not occur.
 *
 * Pure and thread-safe.
 */

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define BASE_MPCHECK_DEPTH_MAX 64

/* Return: BASE_OK; BASE_EPROTO if malformed; BASE_ELIMIT past a depth or object cap. */
base_err base_mpcheck(const uint8_t *buf, size_t len, size_t max_depth, size_t max_objects);

#endif
