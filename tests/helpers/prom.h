#ifndef TESTS_HELPERS_PROM_H
#define TESTS_HELPERS_PROM_H

/*
 * Checks of a Prometheus text exposition (format 0.0.4) for tests, by the
 * rules rlfeed keeps (docs/operations.md, "Metrics"):
 *   - every sample's family has one # HELP and one # TYPE line before it;
 *   - every name starts with @prefix; counters end in _total;
 *   - a histogram's buckets, per label set, are cumulative (non-decreasing),
 *     end with le="+Inf", and that bucket equals the series' _count;
 *   - every value parses as a float.
 * And lookups of one sample's value.
 */

#include <stdbool.h>
#include <stddef.h>

/* Whether @text follows the rules; if not, the first problem in @why. */
bool tst_prom_check(const char *text, const char *prefix, char *why, size_t whylen);

/*
 * The value of the sample whose name-and-labels are exactly @series
 * ("rlfeed_decisions_total{policy=\"faq\",slot=\"online\"}", or a bare name).
 * Return: false if there is no such sample.
 */
bool tst_prom_value(const char *text, const char *series, double *out);

#endif
