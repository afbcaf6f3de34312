#ifndef SERVICE_ROLLUP_H
#define SERVICE_ROLLUP_H

/*
 * Rollups: the history behind /dashboard. Once per rollup_period_ms of the
 * engine's clock (a minute by default; a manual clock moves it too) a
 * thread reads each policy's counters once, takes the difference from the
 * previous reading, and appends one row per policy to an in-memory ring and
 * to the policy's rollup stream in Redis (storage/rollup.h,
 * rlfeed:{<policy>}:rollup, trimmed to rollup_keep entries). At start the
 * rings are loaded from those streams, so the charts survive a restart.
 *
 * A row (its fields are enum svc_ru_field; names as svc_ru_field_name()
 * says, the same in Redis and in /dashboard/history.json):
 *   - t_ms: the end of the interval, a multiple of the period (engine clock,
 *     ms since the epoch); span_ms: its length (the first interval after a
 *     start is shorter, a clock that jumped makes one longer).
 *   - counts over the interval: decisions by serving slot; joined examples,
 *     their reward sum and mean, for all of them ("served": whatever slot
 *     served), by the slot that served the decision, and for the base model
 *     (decisions the production slot served while it served version 0,
 *     read from each decision record's production version); outcomes by the
 *     join's status; joined examples defaulted or unknown; dangling outcomes;
 *     requests rejected (all policies of this instance).
 *   - latency percentiles p50, p90, p99 in ms of decide, feedback, log and
 *     activate over the interval (this instance, all policies), from the
 *     differences of the latency histograms (svc_lat_quantile()); NaN when
 *     no such request.
 *   - gauges at the end: model version of each slot, the slot serving by
 *     default and the canary share, the OPE window (the last 60 s: n, ESS,
 *     minimum propensity), pending decisions, write queue depth, Redis up.
 * Means are NaN without joined examples. Counts are rewards joined in the
 * interval, not of decisions made in it: a decision's reward lands in the
 * interval its join window closed in.
 *
 * Invariants:
 * 1. Counters are read once per period, never on the request path; a
 *    restart starts a new baseline (counters rebuilt by recovery are not
 *    counted again). The interval in progress at shutdown is not recorded.
 * 2. A ring holds at most rollup_keep rows, the stream at most rollup_keep
 *    entries. Rows Redis did not take stay in memory and are appended, in
 *    order, once it answers again (retried at most once a second).
 *
 * Memory: rollup_keep * SVC_RU_NFIELDS * 8 bytes per policy, allocated at
 * open (3.9 MiB with the default 10080), touched as rows arrive.
 *
 * Threads: svc_engine_rollup_open() and svc_rollup_close() from the main
 * thread (close from svc_engine_stop()); the rollup thread reads the engine's
 * counters under their usual short locks; svc_rollup_history() from any
 * thread (HTTP handlers), under the rings' mutex, a leaf lock.
 */

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "service/engine.h"

enum svc_ru_field {
    SVC_RU_T_MS = 0,
    SVC_RU_SPAN_MS,
    SVC_RU_DECISIONS_ONLINE,
    SVC_RU_DECISIONS_PRODUCTION,
    SVC_RU_LOGGED,
    SVC_RU_JOINED,
    SVC_RU_REWARD_SUM,
    SVC_RU_REWARD_MEAN,
    SVC_RU_JOINED_ONLINE,
    SVC_RU_REWARD_SUM_ONLINE,
    SVC_RU_REWARD_MEAN_ONLINE,
    SVC_RU_JOINED_PRODUCTION,
    SVC_RU_REWARD_SUM_PRODUCTION,
    SVC_RU_REWARD_MEAN_PRODUCTION,
    SVC_RU_JOINED_BASE,
    SVC_RU_REWARD_SUM_BASE,
    SVC_RU_REWARD_MEAN_BASE,
    SVC_RU_FEEDBACK,      /* outcomes received, every status */
    SVC_RU_MATCHED,       /* matched or corrected within the window */
    SVC_RU_LATE,          /* after the window: logged, not learned */
    SVC_RU_EARLY,         /* before their decision: waiting for it */
    SVC_RU_DUPLICATE,     /* same outcome_id again */
    SVC_RU_UNKNOWN_EVENT, /* no such decision */
    SVC_RU_REFUSED,       /* rejected signal, value, limit or rate */
    SVC_RU_DEFAULTED,     /* joined with no outcome: default reward */
    SVC_RU_UNKNOWN,       /* joined with no outcome and no default */
    SVC_RU_DANGLING,      /* early outcomes that never found their decision */
    SVC_RU_NOT_ACTIVATED, /* deferred decisions never shown */
    SVC_RU_LAT_DECIDE_P50,
    SVC_RU_LAT_DECIDE_P90,
    SVC_RU_LAT_DECIDE_P99,
    SVC_RU_LAT_FEEDBACK_P50,
    SVC_RU_LAT_FEEDBACK_P90,
    SVC_RU_LAT_FEEDBACK_P99,
    SVC_RU_LAT_LOG_P50,
    SVC_RU_LAT_LOG_P90,
    SVC_RU_LAT_LOG_P99,
    SVC_RU_LAT_ACTIVATE_P50,
    SVC_RU_LAT_ACTIVATE_P90,
    SVC_RU_LAT_ACTIVATE_P99,
    SVC_RU_VERSION_ONLINE,
    SVC_RU_VERSION_PRODUCTION, /* 0: the base model */
    SVC_RU_SERVE_PRODUCTION,   /* 1 if the production slot serves by default, else 0 */
    SVC_RU_CANARY,
    SVC_RU_OPE_N,
    SVC_RU_OPE_ESS,
    SVC_RU_OPE_MIN_PROPENSITY,
    SVC_RU_REJECTED,
    SVC_RU_PENDING,
    SVC_RU_QUEUE_DEPTH,
    SVC_RU_REDIS_UP,
    SVC_RU_NFIELDS
};

/* The name of field @k ("t_ms", "reward_mean_base", ...); NULL past the enum. */
const char *svc_ru_field_name(uint32_t k);

/*
 * svc_engine_rollup_open() - load each policy's rollups from Redis at @url
 * (a policy whose stream cannot be read starts empty, logged), take the
 * counters' baseline, and start the rollup thread with its own connection.
 * Call after svc_engine_restore(), before the engine is published.
 * Return: BASE_OK; BASE_EIO if Redis cannot be reached (reason in
 *         @errbuf); BASE_ENOMEM; BASE_EINTERNAL if the thread cannot start.
 */
base_err svc_engine_rollup_open(svc_engine *e, const char *url, char *errbuf, size_t errlen);

/*
 * svc_rollup_close() - stop the thread, join it, free the rings. Accepts
 * an engine without rollups. Rows not yet in Redis are dropped.
 */
void svc_rollup_close(svc_engine *e);

/*
 * svc_rollup_history() - copy the newest @max rows (fewer if fewer are
 * kept) of the @i-th configured policy, oldest first, into a new array
 * *out_rows of *out_n * SVC_RU_NFIELDS doubles (base_free() it; NULL when
 * *out_n is 0). Any thread.
 * Return: BASE_OK; BASE_EINVAL if @i is out of range or the engine has no
 *         rollups; BASE_ENOMEM.
 */
base_err svc_rollup_history(svc_engine *e, uint32_t i, size_t max, double **out_rows,
                            size_t *out_n);

#endif
