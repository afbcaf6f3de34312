#ifndef SERVICE_METRICS_H
#define SERVICE_METRICS_H

/*
 * The Prometheus text exposition (format 0.0.4) of the daemon's counters:
 * a pure function from a filled proto_stats (the same data the stats op
 * sends), the latency histograms and the OPE windows to text. Every family
 * and its labels are listed in docs/operations.md, "Metrics".
 *
 *     # HELP rlfeed_decisions_total Decide requests served, by serving slot.
 *     # TYPE rlfeed_decisions_total counter
 *     rlfeed_decisions_total{policy="faq",slot="online"} 120
 *
 * Invariants:
 * 1. Every family has one # HELP and one # TYPE line, before its samples;
 *    names start with rlfeed_, use base units (seconds), and counters end in
 *    _total.
 * 2. Label values are escaped (backslash, double quote, newline).
 * 3. Histogram buckets are cumulative and end with le="+Inf", equal to _count.
 *
 * Thread-safety: reentrant.
 */

#include "base/buf.h"
#include "base/err.h"
#include "proto/stats.h"
#include "service/observe.h"

#define SVC_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct svc_metrics_input {
    const proto_stats *stats;   /* borrowed */
    const svc_ope_reading *ope; /* [stats->n_policies], borrowed */
    const svc_lat_reading *lat; /* borrowed */
} svc_metrics_input;

/*
 * svc_metrics_write() - append the exposition of @in to @out.
 * Return: BASE_OK; BASE_ELIMIT or BASE_ENOMEM from @out (its content is then
 *         incomplete).
 */
base_err svc_metrics_write(base_buf *out, const svc_metrics_input *in);

#endif
