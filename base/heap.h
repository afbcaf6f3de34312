#ifndef BASE_HEAP_H
#define BASE_HEAP_H

/*
 * A binary min-heap of fixed-size elements stored by value, ordered by the
 * caller's @less. Elements are small (a pointer, or a short struct); the heap
 * copies them with memcpy. A caller that must find its elements again (to
 * remove one, or to restore the order after its key changed) passes @moved,
 * which is called with an element's new index every time it is placed.
 *
 * Invariants: 1. less(at(parent(i)), at(i)) is false for every i > 0.
 * 2. n <= cap <= max_n. Storage grows by doubling, up to max_n; one spare
 * slot past cap holds the element being sifted. Not thread-safe: the owner
 * serialises access.
 */

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

typedef bool (*base_heap_less_fn)(const void *a, const void *b);
typedef void (*base_heap_moved_fn)(void *elem, size_t i);

typedef struct base_heap {
    unsigned char *v; /* [(cap + 1) * size]; slot cap is scratch */
    size_t size;      /* bytes per element */
    size_t n;
    size_t cap;
    size_t max_n;
    base_heap_less_fn less;
    base_heap_moved_fn moved; /* may be NULL */
} base_heap;

/* An empty heap of @elem_size-byte elements, at most @max_n of them. No allocation. */
void base_heap_init(base_heap *h, size_t elem_size, size_t max_n, base_heap_less_fn less,
                    base_heap_moved_fn moved);
void base_heap_fini(base_heap *h); /* accepts a zeroed heap */

/*
 * base_heap_reserve() - make room for @n elements now (capped at max_n), so
 * later pushes up to that count do not allocate.
 * Return: BASE_OK; BASE_ENOMEM (the heap is unchanged).
 */
base_err base_heap_reserve(base_heap *h, size_t n);

/*
 * base_heap_push() - add a copy of *@elem.
 * Return: BASE_OK; BASE_ELIMIT when max_n elements are held; BASE_ENOMEM
 *         (the heap is unchanged either way).
 */
base_err base_heap_push(base_heap *h, const void *elem);

/* The element at index @i (0 is the least), valid until the heap next changes. */
static inline void *base_heap_at(const base_heap *h, size_t i)
{
    return h->v + i * h->size;
}

/* Remove the element at index @i (< n), copying it into *@out (may be NULL). */
void base_heap_remove(base_heap *h, size_t i, void *out);

/* Remove the least element into *@out (may be NULL). The heap must not be empty. */
static inline void base_heap_pop(base_heap *h, void *out)
{
    base_heap_remove(h, 0, out);
}

/* Restore the order after the key of the element at index @i changed. */
void base_heap_fix(base_heap *h, size_t i);

#endif
