#include "base/itab.h"

#include <stdbool.h>
#include <string.h>

#include "base/alloc.h"

/*
 * Buckets of the old array moved per insert or remove while the table doubles, and while
 * it halves: a halving table is at most an eighth full, its buckets mostly empty, and
 * moving 16 a step ends a halving within size / 16 steps, before removals alone could
 * empty it, so the next halving can start in time.
 */
#define STEP_BUCKETS 2
#define SHRINK_STEP_BUCKETS 16
/* The table halves once it holds fewer entries than its buckets / SHRINK_AT (never below
 * its initial size): after the halving it is at most a quarter full, so an insert or two
 * do not make it double again. */
#define SHRINK_AT 8

/* The link of @e (writable: const only says the walk does not change the table). */
static void **link_of(const base_itab *t, const void *e)
{
    return (void **)((uintptr_t)e + t->link_off);
}

static uint64_t hash_of(const base_itab *t, const void *e)
{
    uint64_t h;
    memcpy(&h, (const char *)e + t->hash_off, sizeof(h));
    return h;
}

base_err base_itab_init(base_itab *t, size_t min_size, size_t link_off, size_t hash_off)
{
    size_t n = 8;
    while (n < min_size && n < ((size_t)1 << 40)) {
        n *= 2;
    }
    memset(t, 0, sizeof(*t));
    t->link_off = link_off;
    t->hash_off = hash_off;
    t->t[0] = base_alloc_zero(n, sizeof(void *));
    if (t->t[0] == NULL) {
        return BASE_ENOMEM;
    }
    t->size[0] = n;
    t->min = n;
    return BASE_OK;
}

void base_itab_fini(base_itab *t)
{
    base_free(t->t[0]);
    base_free(t->t[1]);
    t->t[0] = t->t[1] = NULL;
    t->size[0] = t->size[1] = 0;
    t->moved = 0;
    t->count = 0;
    t->min = 0;
}

/*
 * Move chain @b of t[0] to t[1]. Growing, it splits into chains b and b + size[0];
 * shrinking, it joins chain b mod size[1] (which chain b + size[1] joins too: their
 * entries have different hashes). The chains of t[1] hold entries inserted since the
 * resize began, all newer than those of a hash still in t[0], and entries of other hashes:
 * the moved ones go after them, in their order, so every hash keeps its candidates newest
 * first.
 */
static void move_bucket(base_itab *t, size_t b)
{
    size_t dst[2] = {b & (t->size[1] - 1), b + t->size[0]};
    int n_dst = t->size[1] > t->size[0] ? 2 : 1;
    void **end[2] = {NULL, NULL};
    for (int k = 0; k < n_dst; k++) {
        end[k] = &t->t[1][dst[k]];
        while (*end[k] != NULL) {
            end[k] = link_of(t, *end[k]);
        }
    }
    void *e = t->t[0][b];
    t->t[0][b] = NULL;
    while (e != NULL) {
        void *next = *link_of(t, e);
        int k = (hash_of(t, e) & (t->size[1] - 1)) == dst[0] ? 0 : 1;
        *link_of(t, e) = NULL;
        *end[k] = e;
        end[k] = link_of(t, e);
        e = next;
    }
}

/* While resizing: move the next few chains (per_step); once all are moved, t[1] is the table. */
static void step(base_itab *t)
{
    if (t->t[1] == NULL) {
        return;
    }
    int per_step = t->size[1] > t->size[0] ? STEP_BUCKETS : SHRINK_STEP_BUCKETS;
    for (int i = 0; i < per_step && t->moved < t->size[0]; i++) {
        move_bucket(t, t->moved++);
    }
    if (t->moved == t->size[0]) {
        base_free(t->t[0]);
        t->t[0] = t->t[1];
        t->size[0] = t->size[1];
        t->t[1] = NULL;
        t->size[1] = 0;
        t->moved = 0;
    }
}

void base_itab_insert(base_itab *t, void *e)
{
    /* Full: start doubling (moving size[0] / STEP_BUCKETS times ends before it is full). */
    if (t->t[1] == NULL && t->count >= t->size[0] && t->size[0] <= ((size_t)1 << 40)) {
        void **bigger = base_alloc_zero(t->size[0] * 2, sizeof(void *));
        if (bigger != NULL) {
            t->t[1] = bigger;
            t->size[1] = t->size[0] * 2;
            t->moved = 0;
        }
    }
    step(t);
    int k = t->t[1] != NULL ? 1 : 0;
    void **head = &t->t[k][hash_of(t, e) & (t->size[k] - 1)];
    *link_of(t, e) = *head;
    *head = e;
    t->count++;
}

/* Unlink @e from its chain in t[@k]; whether it was there. */
static bool unlink_from(base_itab *t, int k, void *e)
{
    void **l = &t->t[k][hash_of(t, e) & (t->size[k] - 1)];
    while (*l != NULL && *l != e) {
        l = link_of(t, *l);
    }
    if (*l == NULL) {
        return false;
    }
    *l = *link_of(t, e);
    *link_of(t, e) = NULL;
    return true;
}

void base_itab_remove(base_itab *t, void *e)
{
    bool done = t->t[1] != NULL && unlink_from(t, 1, e);
    if (!done) {
        done = unlink_from(t, 0, e); /* a moved chain of t[0] is empty */
    }
    if (done) {
        t->count--;
    }
    /* Mostly empty after a peak: start halving. Without the memory it stays as it is. */
    if (t->t[1] == NULL && t->size[0] > t->min && t->count < t->size[0] / SHRINK_AT) {
        void **smaller = base_alloc_zero(t->size[0] / 2, sizeof(void *));
        if (smaller != NULL) {
            t->t[1] = smaller;
            t->size[1] = t->size[0] / 2;
            t->moved = 0;
        }
    }
    step(t);
}

/* From @e on, the next entry of w->hash: the rest of t[1]'s chain, then t[0]'s. */
static void *walk_from(const base_itab *t, base_itab_walk *w, void *e)
{
    for (;;) {
        while (e != NULL && hash_of(t, e) != w->hash) {
            e = *link_of(t, e);
        }
        if (e != NULL) {
            w->next = *link_of(t, e);
            return e;
        }
        if (w->table == 0) {
            return NULL;
        }
        w->table = 0;
        e = t->t[0][w->hash & (t->size[0] - 1)];
    }
}

void *base_itab_first(const base_itab *t, uint64_t hash, base_itab_walk *w)
{
    w->hash = hash;
    w->next = NULL;
    if (t->t[0] == NULL) {
        w->table = 0;
        return NULL;
    }
    w->table = t->t[1] != NULL ? 1 : 0;
    return walk_from(t, w, t->t[w->table][hash & (t->size[w->table] - 1)]);
}

void *base_itab_next(const base_itab *t, base_itab_walk *w)
{
    return walk_from(t, w, w->next);
}

void base_itab_drain(base_itab *t, void (*fn)(void *e))
{
    for (int k = 0; k < 2; k++) {
        for (size_t b = 0; t->t[k] != NULL && b < t->size[k]; b++) {
            void *e = t->t[k][b];
            t->t[k][b] = NULL;
            while (e != NULL) {
                void *next = *link_of(t, e);
                fn(e);
                e = next;
            }
        }
    }
    t->count = 0;
}
