#ifndef BASE_ALLOC_H
#define BASE_ALLOC_H

/*
 * Allocation wrappers. All project code allocates through these.
 *
 * 1. Array sizes are overflow-checked: base_alloc_array(n, size) returns NULL
 *    when n * size overflows, as if memory ran out.
 * 2. Setting the environment variable BASE_ALLOC_FAIL_AT=N makes the Nth
 *    allocation (counted from 1, process-wide) fail, for torture tests. The
 *    variable is read once, on the first allocation.
 * 3. base_free(NULL) is a no-op.
 *
 * Thread-safe.
 */

#include <stddef.h>

void *base_alloc(size_t size);                            /* uninitialised; NULL on failure */
void *base_alloc_zero(size_t n, size_t size);             /* zeroed array; NULL on failure */
void *base_alloc_array(size_t n, size_t size);            /* uninitialised array */
void *base_realloc_array(void *p, size_t n, size_t size); /* p is kept on failure */
char *base_strdup(const char *s);
void base_free(void *p);

/*
 * For a long-running server: keep freed memory in the process instead of
 * handing the top of the heap back to the kernel after every burst and
 * faulting it in again (zeroed pages) on the next. Fixes the mmap threshold
 * at 4 MiB and the trim threshold at 64 MiB. Call once, before threads start.
 */
void base_alloc_tune_server(void);

#endif
