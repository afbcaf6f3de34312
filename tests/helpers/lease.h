#ifndef TESTS_HELPERS_LEASE_H
#define TESTS_HELPERS_LEASE_H

/* sto_lease_acquire() with the fields storage tests read, as separate outputs. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/store.h"

base_err tst_lease_take(sto_store *s, const char *policy, const char *owner, uint32_t ttl_ms,
                        bool restart, bool *held, char *holder, size_t size, int64_t *left);

#endif
