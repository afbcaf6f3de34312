#ifndef SERVICE_DASHBOARD_H
#define SERVICE_DASHBOARD_H

/*
 * The dashboard's HTTP routes, added to the daemon's HTTP server
 * (service/http.c) by one call. No external network: the page, its script
 * and its data all come from rlfeedd.
 *
 *   /dashboard               the page (service/dashboard.html, compiled in):
 *                            a headline row and six charts, refreshed every
 *                            rollup period.
 *   /dashboard/chart.js      Chart.js, read from dashboard_chartjs (default
 *                            the Debian package libjs-chart.js's
 *                            /usr/share/javascript/chart.js/chart.min.js) at
 *                            each request; 404 with the reason when it
 *                            cannot be read (the page then says so).
 *   /dashboard/history.json  the rollups (service/rollup.h), columnar:
 *
 *     {"period_ms":60000,"keep":10080,
 *      "chartjs_path":"/usr/share/javascript/chart.js/chart.min.js","chartjs":true,
 *      "fields":["t_ms","span_ms",...],
 *      "policies":[{"name":"faq","rows":2,
 *                   "series":{"t_ms":[1767225660000,1767225720000],...,
 *                             "reward_mean_base":[0.41,null],...}}]}
 *
 *     Query: last=N (the newest N >= 1 rollups, at most rollup_keep; default 1440),
 *     policy=NAME (only that policy; 404 if there is none). NaN is null.
 *     400 for a malformed query.
 *
 * The history and chart.js answer 503 "starting" until the engine is
 * published. Handlers run on nng's HTTP threads and never touch Redis: the
 * history is copied from the rollups' rings in memory.
 */

#include "service/http.h"

/*
 * svc_dashboard_add_routes() - add the routes above to @h's server (GET and HEAD; other
 * methods get 405); their handlers reach the engine through @h (svc_http_engine_hold()).
 * Return: 0, or the nng error of the route that could not be added.
 */
int svc_dashboard_add_routes(svc_http *h);

#endif
