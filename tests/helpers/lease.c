#include "lease.h"

#include <string.h>

base_err tst_lease_take(sto_store *s, const char *policy, const char *owner, uint32_t ttl_ms,
                        bool restart, bool *held, char *holder, size_t size, int64_t *left)
{
    sto_lease_take t = {.restart = restart};
    base_err e = sto_lease_acquire(s, policy, owner, ttl_ms, &t);
    *held = t.held;
    size_t n = strlen(t.holder) < size ? strlen(t.holder) : size - 1; /* size > 0 */
    memcpy(holder, t.holder, n);
    holder[n] = '\0';
    *left = t.left_ms;
    return e;
}
