#include "base/alloc.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * The fault-injection counter is the one piece of process-wide mutable state
 * in base/: it exists only for torture tests and is atomic.
 */
static atomic_long fail_at = -1; /* -1: not read yet; 0: disabled */
static atomic_long n_allocs;

static int should_fail(void)
{
    long at = atomic_load(&fail_at);
    if (at < 0) {
        const char *s = getenv("BASE_ALLOC_FAIL_AT");
        char *end = NULL;
        long v = 0;
        if (s != NULL && *s != '\0') {
            v = strtol(s, &end, 10);
            if (*end != '\0' || v < 0) {
                v = 0;
            }
        }
        atomic_store(&fail_at, v);
        at = v;
    }
    if (at == 0) {
        return 0;
    }
    return atomic_fetch_add(&n_allocs, 1) + 1 == at;
}

void *base_alloc(size_t size)
{
    if (should_fail()) {
        return NULL;
    }
    return malloc(size == 0 ? 1 : size);
}

void *base_alloc_zero(size_t n, size_t size)
{
    if (should_fail()) {
        return NULL;
    }
    if (n == 0 || size == 0) {
        return calloc(1, 1);
    }
    return calloc(n, size);
}

void *base_alloc_array(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) {
        return NULL;
    }
    return base_alloc(n * size);
}

void *base_realloc_array(void *p, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) {
        return NULL;
    }
    if (should_fail()) {
        return NULL;
    }
    return realloc(p, n * size == 0 ? 1 : n * size);
}

char *base_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = base_alloc(n);
    if (d != NULL) {
        memcpy(d, s, n);
    }
    return d;
}

void base_free(void *p)
{
    free(p);
}

void base_alloc_tune_server(void)
{
    (void)mallopt(M_MMAP_THRESHOLD, 4 << 20);
    (void)mallopt(M_TRIM_THRESHOLD, 64 << 20);
    (void)mallopt(M_TOP_PAD, 1 << 20);
}
