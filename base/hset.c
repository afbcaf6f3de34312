#include "base/hset.h"

#include "base/alloc.h"

void base_hset_init(base_hset *s, size_t max_n)
{
    *s = (base_hset){NULL, NULL, 0, 0, max_n};
}

void base_hset_fini(base_hset *s)
{
    if (s == NULL) {
        return;
    }
    base_free(s->key);
    base_free(s->val);
    s->key = NULL;
    s->val = NULL;
    s->cap = s->n = 0;
}

/* The slot of @key, or of the empty slot where it would go (cap > 0). */
static size_t find(const base_hset *s, uint64_t key)
{
    size_t i = (size_t)(key ^ (key >> 29)) & (s->cap - 1);
    while (s->key[i] != 0 && s->key[i] != key) {
        i = (i + 1) & (s->cap - 1);
    }
    return i;
}

static base_err grow(base_hset *s)
{
    size_t cap = s->cap == 0 ? 16 : 2 * s->cap;
    base_hset g = {base_alloc_zero(cap, sizeof(uint64_t)), base_alloc_zero(cap, sizeof(uint32_t)),
                   cap, s->n, s->max_n};
    if (g.key == NULL || g.val == NULL) {
        base_hset_fini(&g);
        return BASE_ENOMEM;
    }
    for (size_t i = 0; i < s->cap; i++) {
        if (s->key[i] != 0) {
            size_t j = find(&g, s->key[i]);
            g.key[j] = s->key[i];
            g.val[j] = s->val[i];
        }
    }
    base_hset_fini(s);
    *s = g;
    return BASE_OK;
}

base_err base_hset_put(base_hset *s, uint64_t key, uint32_t val)
{
    if (key == 0) {
        return BASE_EINVAL;
    }
    if (s->cap > 0) {
        size_t i = find(s, key);
        if (s->key[i] == key) {
            s->val[i] = val;
            return BASE_OK;
        }
    }
    if (s->n >= s->max_n) {
        return BASE_ELIMIT;
    }
    if (2 * (s->n + 1) > s->cap) {
        base_err e = grow(s);
        if (e != BASE_OK) {
            return e;
        }
    }
    size_t i = find(s, key);
    s->key[i] = key;
    s->val[i] = val;
    s->n++;
    return BASE_OK;
}

bool base_hset_get(const base_hset *s, uint64_t key, uint32_t *out_val)
{
    if (s->cap == 0 || key == 0) {
        return false;
    }
    size_t i = find(s, key);
    if (s->key[i] != key) {
        return false;
    }
    if (out_val != NULL) {
        *out_val = s->val[i];
    }
    return true;
}
