#ifndef STORAGE_ROLLUP_H
#define STORAGE_ROLLUP_H

/*
 * The rollup stream of a policy: one entry per period (a minute by default)
 * of numbers the daemon summarised from its counters, for the dashboard's
 * history (service/rollup.h says what the numbers are).
 *
 *     rlfeed:{<policy>}:rollup   stream; each entry is field/value pairs,
 *                                every value a decimal number ("%.17g",
 *                                "nan" for none)
 *
 *     XADD rlfeed:{faq}:rollup MAXLEN 10080 * t_ms 1767225660000 span_ms 60000 ...
 *
 * Invariants:
 * 1. An append trims the stream to at most @keep entries in the same command
 *    (exact MAXLEN, not "~"), so the stream never holds more than the newest
 *    @keep entries once an append has run.
 * 2. Field names and their order are the caller's; a reader asks for fields
 *    by name, and a field absent from an entry, or whose value is not a
 *    number, reads as NaN (entries written by older or newer versions still
 *    read).
 * 3. Entry ids are Redis's ("*"): the time of an entry is its own field.
 *
 * Limits: at most STO_ROLLUP_MAX_FIELDS fields of at most
 * STO_ROLLUP_NAME_MAX bytes per entry.
 * Thread-safety: as storage/store.h (one sto_store per thread).
 */

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "storage/store.h"

#define STO_ROLLUP_MAX_FIELDS 128
#define STO_ROLLUP_NAME_MAX 32

/*
 * sto_rollup_append() - append one entry, @names[i] = @values[i] for i < @n,
 * to @policy's rollup stream, trimming it to @keep (>= 1) entries.
 * @names: [n] borrowed   @values: [n] borrowed
 * Return: BASE_OK; BASE_EINVAL for a bad policy, @n 0 or past
 *         STO_ROLLUP_MAX_FIELDS, a name empty or past STO_ROLLUP_NAME_MAX,
 *         @keep 0; BASE_ESTORE if Redis refused it (e.g. the key holds
 *         another type); BASE_EIO.
 */
base_err sto_rollup_append(sto_store *s, const char *policy, uint64_t keep,
                           const char *const *names, const double *values, size_t n);

/*
 * sto_rollup_read() - the newest @max entries of @policy's rollup stream
 * (fewer if it holds fewer), oldest first: entry j's value of @names[k]
 * goes to @out[j * @n + k]. Read with XREVRANGE in batches of at most 1000.
 * @out: [max * n]; written up to *out_n entries (on failure, its content is undefined).
 * Return: BASE_OK (*out_n = 0 when the stream is empty or absent);
 *         BASE_EINVAL for a bad policy or @n past STO_ROLLUP_MAX_FIELDS;
 *         BASE_EPROTO for an entry that is not pairs of strings;
 *         BASE_ESTORE; BASE_EIO.
 */
base_err sto_rollup_read(sto_store *s, const char *policy, const char *const *names, size_t n,
                         size_t max, double *out, size_t *out_n);

/* XLEN of @policy's rollup stream. Return: BASE_OK; BASE_EINVAL; BASE_EIO; BASE_ESTORE. */
base_err sto_rollup_len(sto_store *s, const char *policy, uint64_t *out_len);

#endif
