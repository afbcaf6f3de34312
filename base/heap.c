#include "base/heap.h"

#include <string.h>

#include "base/alloc.h"

/*
 * Sifting moves a hole instead of swapping: the element being placed waits in
 * the scratch slot (index cap) while its ancestors or descendants move into
 * the hole, and is copied once into its final place.
 */

static void *scratch(const base_heap *h)
{
    return base_heap_at(h, h->cap);
}

/* Copy the element at @from into index @to and tell its owner. */
static void place(base_heap *h, size_t to, const void *from)
{
    void *dst = base_heap_at(h, to);
    memcpy(dst, from, h->size);
    if (h->moved != NULL) {
        h->moved(dst, to);
    }
}

/* Place *tmp (the scratch slot) at or above hole @i. Returns its final index. */
static size_t sift_up(base_heap *h, size_t i)
{
    const void *tmp = scratch(h);
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!h->less(tmp, base_heap_at(h, p))) {
            break;
        }
        place(h, i, base_heap_at(h, p));
        i = p;
    }
    place(h, i, tmp);
    return i;
}

/* Place *tmp (the scratch slot) at or below hole @i. Returns its final index. */
static size_t sift_down(base_heap *h, size_t i)
{
    const void *tmp = scratch(h);
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        const void *best = tmp;
        if (l < h->n && h->less(base_heap_at(h, l), best)) {
            m = l;
            best = base_heap_at(h, l);
        }
        if (l + 1 < h->n && h->less(base_heap_at(h, l + 1), best)) {
            m = l + 1;
        }
        if (m == i) {
            break;
        }
        place(h, i, base_heap_at(h, m));
        i = m;
    }
    place(h, i, tmp);
    return i;
}

void base_heap_init(base_heap *h, size_t elem_size, size_t max_n, base_heap_less_fn less,
                    base_heap_moved_fn moved)
{
    *h = (base_heap){.size = elem_size, .max_n = max_n, .less = less, .moved = moved};
}

void base_heap_fini(base_heap *h)
{
    base_free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

base_err base_heap_reserve(base_heap *h, size_t n)
{
    unsigned char *v;

    if (n > h->max_n) {
        n = h->max_n;
    }
    if (n <= h->cap && h->v != NULL) {
        return BASE_OK;
    }
    v = base_realloc_array(h->v, n + 1, h->size);
    if (v == NULL) {
        return BASE_ENOMEM;
    }
    h->v = v;
    h->cap = n;
    return BASE_OK;
}

base_err base_heap_push(base_heap *h, const void *elem)
{
    if (h->n >= h->max_n) {
        return BASE_ELIMIT;
    }
    if (h->n == h->cap) {
        size_t want = h->cap < 8 ? 16 : 2 * h->cap;
        base_err e = base_heap_reserve(h, want);
        if (e != BASE_OK) {
            return e;
        }
    }
    memcpy(scratch(h), elem, h->size);
    sift_up(h, h->n++);
    return BASE_OK;
}

void base_heap_remove(base_heap *h, size_t i, void *out)
{
    if (out != NULL) {
        memcpy(out, base_heap_at(h, i), h->size);
    }
    h->n--;
    if (i == h->n) {
        return;
    }
    memcpy(scratch(h), base_heap_at(h, h->n), h->size);
    if (sift_down(h, i) == i) {
        memcpy(scratch(h), base_heap_at(h, i), h->size);
        sift_up(h, i);
    }
}

void base_heap_fix(base_heap *h, size_t i)
{
    memcpy(scratch(h), base_heap_at(h, i), h->size);
    if (sift_down(h, i) == i) {
        memcpy(scratch(h), base_heap_at(h, i), h->size);
        sift_up(h, i);
    }
}
