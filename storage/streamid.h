#ifndef STORAGE_STREAMID_H
#define STORAGE_STREAMID_H

/*
 * Redis stream ids, "<ms>-<seq>" (two decimal uint64), as values.
 *
 * rlfeed gives every record it appends an explicit id the first time it
 * sends it and reuses that id on every retry, so a retried XADD is either
 * stored once or refused as "equal or smaller than the target stream top
 * item" (docs/storage.md, "Idempotent appends"). Ids are wall-clock based,
 * as Redis's own: retention (XTRIM MINID) measures age on them.
 *
 *     1764633600123-0   the first id of that millisecond
 *     1764633600123-7   the eighth
 *
 * Invariants: 1. sto_sid_next(last, now) > last. 2. the text form of a
 * parsed id formats back to the same text (no sign, no leading zeros, no
 * spaces). Pure functions, any thread.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sto_sid {
    uint64_t ms;
    uint64_t seq;
} sto_sid;

/*
 * sto_sid_parse() - parse "<ms>-<seq>" (decimal digits only, no leading
 * zeros but for "0", each part at most UINT64_MAX) into *out.
 * Return: true on success; false (and *out untouched) otherwise.
 */
bool sto_sid_parse(const char *s, sto_sid *out);

/* Format @id into @out (BASE_STREAM_ID_MAX + 1 bytes suffice). False if it did not fit. */
bool sto_sid_format(sto_sid id, char *out, size_t size);

/* -1, 0 or 1 as @a is below, equal to or above @b. */
int sto_sid_cmp(sto_sid a, sto_sid b);

/*
 * sto_sid_cmp_text() - the same order on ids in text form, where "" (no id:
 * the start of a stream) sorts first, as does text that does not parse.
 */
int sto_sid_cmp_text(const char *a, const char *b);

/*
 * sto_sid_next() - the id to assign after @last at wall time @now_ms: ms =
 * max(now_ms, last.ms); seq = last.seq + 1 in the same millisecond, else 0
 * (a full sequence moves to the next millisecond). Always above @last,
 * except past the largest id, which Redis cannot go beyond either.
 */
sto_sid sto_sid_next(sto_sid last, uint64_t now_ms);

#endif
