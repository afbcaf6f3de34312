/*
 * Fuzz target for the spill file decoder (storage/spill.h): any bytes
 * either fail cleanly (BASE_EPROTO, or BASE_ENOMEM) or decode into records
 * that are complete: a valid kind, a policy, a stream id and a record. Any
 * violation aborts, which the fuzzer and the corpus replay report as a
 * crash. The decoder's bounds on counts and lengths are what is exercised.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "storage/spill.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sto_spill_rec *r = NULL;
    size_t n = 0;
    base_err e = sto_spill_decode(data, size, &r, &n);
    if (e != BASE_OK) {
        if (e != BASE_EPROTO && e != BASE_ENOMEM) {
            abort();
        }
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (r[i].rec == NULL || (unsigned)r[i].kind > STO_JOINED || r[i].policy[0] == '\0' ||
            r[i].id[0] == '\0') {
            abort();
        }
    }
    sto_spill_recs_free(r, n);
    return 0;
}
