/*
 * The dashboard's routes (service/dashboard.h): the page compiled in,
 * Chart.js from the Debian package, and the rollups as JSON.
 */
#include "service/dashboard.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/utf8.h"
#include "proto/json.h"
#include "service/dashboard_page.h"
#include "service/rollup.h"

#define CHARTJS_MAX_BYTES (16u << 20) /* Chart.js 3.9 is 200 KB minified, 550 KB not */
#define HISTORY_MAX_BYTES (256u << 20)
#define HISTORY_DEFAULT_LAST 1440 /* a day of minutes */
#define QUERY_VALUE_MAX 128

/* @text as plain text, never cached. */
static void respond_text(nng_aio *aio, uint16_t status, const char *text)
{
    svc_http_respond(aio, status, "text/plain; charset=utf-8", "no-store", NULL, NULL, text,
                     strlen(text), false);
}

static void on_page(nng_aio *aio)
{
    /*
     * nng serves /dashboard/ here too, where the page's relative links (dashboard/chart.js)
     * would name /dashboard/dashboard/...: send the browser to /dashboard, relatively, so that
     * a reverse proxy's prefix stays.
     */
    nng_http_req *req = nng_aio_get_input(aio, 0);
    const char *uri = req != NULL ? nng_http_req_get_uri(req) : "";
    size_t path = strcspn(uri, "?#");
    if (path > 0 && uri[path - 1] == '/') {
        static const char moved[] = "moved to ../dashboard\n";
        svc_http_respond(aio, 308, "text/plain; charset=utf-8", NULL, "Location", "../dashboard",
                         moved, sizeof(moved) - 1, true);
        return;
    }
    svc_http_respond(aio, 200, "text/html; charset=utf-8", "no-cache", NULL, NULL,
                     svc_dashboard_html, svc_dashboard_html_len, true);
}

static void on_chartjs(nng_aio *aio)
{
    svc_http *h = svc_http_of(aio);
    char path[SVC_URL_MAX] = "";
    svc_engine *e = svc_http_engine_hold(h);
    if (e != NULL) {
        base_strlcpy(path, svc_engine_config(e)->dashboard_chartjs, sizeof(path));
    }
    svc_http_engine_release(h);
    if (path[0] == '\0') {
        respond_text(aio, 503, "starting\n");
        return;
    }
    base_buf b;
    base_buf_init(&b, CHARTJS_MAX_BYTES);
    char why[256] = "", text[SVC_URL_MAX + 512];
    if (base_buf_read_file(&b, path, why, sizeof(why))) {
        svc_http_respond(aio, 200, "text/javascript; charset=utf-8", "max-age=3600", NULL, NULL,
                         b.data, b.len, false);
    } else {
        snprintf(text, sizeof(text),
                 "Chart.js cannot be read from %s (%s): install the Debian package "
                 "libjs-chart.js, or set dashboard_chartjs\n",
                 path, why);
        respond_text(aio, 404, text);
    }
    base_buf_fini(&b);
}

typedef base_writer writer;

/* A JSON string: quotes, backslashes and control characters escaped. */
static void put_str(writer *w, const char *s)
{
    base_writer_put(w, "\"", 1);
    for (const char *c = s; *c != '\0'; c++) {
        if (*c == '"' || *c == '\\') {
            base_writer_printf(w, "\\%c", *c);
        } else if ((unsigned char)*c < 0x20) {
            base_writer_printf(w, "\\u%04x", (unsigned)(unsigned char)*c);
        } else {
            base_writer_put(w, c, 1);
        }
    }
    base_writer_put(w, "\"", 1);
}

/* A number; NaN and infinities (no JSON form) as null. 15 digits: t_ms stays exact. */
static void put_num(writer *w, double v)
{
    if (isfinite(v)) {
        base_writer_printf(w, "%.15g", v);
    } else {
        base_writer_put(w, "null", 4);
    }
}

static void put_policy(writer *w, svc_engine *e, uint32_t i, size_t last)
{
    double *rows = NULL;
    size_t n = 0;
    base_err err = svc_rollup_history(e, i, last, &rows, &n);
    if (err != BASE_OK && err != BASE_EINVAL) {
        w->err = err;
        return;
    }
    base_writer_put(w, "{\"name\":", 8);
    put_str(w, svc_engine_config(e)->policy[i].name);
    base_writer_printf(w, ",\"rows\":%zu,\"series\":{", n);
    for (uint32_t k = 0; k < SVC_RU_NFIELDS; k++) {
        base_writer_printf(w, "%s\"%s\":[", k > 0 ? "," : "", svc_ru_field_name(k));
        for (size_t j = 0; j < n; j++) {
            if (j > 0) {
                base_writer_put(w, ",", 1);
            }
            put_num(w, rows[j * SVC_RU_NFIELDS + k]);
        }
        base_writer_put(w, "]", 1);
    }
    base_writer_put(w, "}}", 2);
    base_free(rows);
}

typedef enum query_value { QUERY_ABSENT, QUERY_OK, QUERY_MALFORMED } query_value;

/*
 * The value of query parameter @key in @uri, percent-decoded, into @out: QUERY_MALFORMED if
 * it does not fit in @len bytes or holds a bad escape (or a NUL byte).
 */
static query_value query_param(const char *uri, const char *key, char *out, size_t len)
{
    int r = proto_http_query(uri, key, out, len); /* the last one given, as in the API */
    return r > 0 ? QUERY_OK : r == 0 ? QUERY_ABSENT : QUERY_MALFORMED;
}

static void on_history(nng_aio *aio)
{
    svc_http *h = svc_http_of(aio);
    if (!svc_http_ops_allowed(h, aio)) {
        return; /* the page and Chart.js hold no data; the history does */
    }
    nng_http_req *req = nng_aio_get_input(aio, 0);
    const char *uri = nng_http_req_get_uri(req);
    char v[QUERY_VALUE_MAX];
    base_buf b;
    base_buf_init(&b, HISTORY_MAX_BYTES);
    writer w = {&b, BASE_OK};
    uint16_t status = 200;
    const char *msg = NULL;

    svc_engine *e = svc_http_engine_hold(h);
    const svc_config *cfg = e != NULL ? svc_engine_config(e) : NULL;
    size_t last = cfg != NULL && cfg->rollup_keep < HISTORY_DEFAULT_LAST ? cfg->rollup_keep
                                                                         : HISTORY_DEFAULT_LAST;
    long only = -1;
    if (e == NULL) {
        status = 503;
        msg = "starting\n";
        goto done;
    }
    query_value qv = query_param(uri, "last", v, sizeof(v));
    if (qv != QUERY_ABSENT) {
        char *end = NULL;
        errno = 0;
        unsigned long n = qv == QUERY_OK ? strtoul(v, &end, 10) : 0;
        if (qv != QUERY_OK || end == v || *end != '\0' || errno != 0 || v[0] == '-' || n < 1) {
            status = 400;
            msg = "last: want a number of rollups, at least 1\n";
            goto done;
        }
        last = n < cfg->rollup_keep ? n : cfg->rollup_keep;
    }
    qv = query_param(uri, "policy", v, sizeof(v));
    if (qv == QUERY_MALFORMED) {
        status = 400;
        msg = "policy: not a percent-encoded policy name\n";
        goto done;
    }
    if (qv == QUERY_OK) {
        for (uint32_t i = 0; i < cfg->n_policies && only < 0; i++) {
            if (strcmp(cfg->policy[i].name, v) == 0) {
                only = (long)i;
            }
        }
        if (only < 0) {
            status = 404;
            msg = "no such policy\n";
            goto done;
        }
    }
    struct stat st;
    base_writer_printf(&w, "{\"period_ms\":%u,\"keep\":%u,\"chartjs_path\":", cfg->rollup_period_ms,
                       cfg->rollup_keep);
    put_str(&w, cfg->dashboard_chartjs);
    base_writer_printf(&w, ",\"chartjs\":%s,\"fields\":[",
                       stat(cfg->dashboard_chartjs, &st) == 0 && S_ISREG(st.st_mode) ? "true"
                                                                                     : "false");
    for (uint32_t k = 0; k < SVC_RU_NFIELDS; k++) {
        base_writer_printf(&w, "%s\"%s\"", k > 0 ? "," : "", svc_ru_field_name(k));
    }
    base_writer_put(&w, "],\"policies\":[", 14);
    bool first = true;
    for (uint32_t i = 0; i < cfg->n_policies; i++) {
        if (only >= 0 && (uint32_t)only != i) {
            continue;
        }
        if (!first) {
            base_writer_put(&w, ",", 1);
        }
        first = false;
        put_policy(&w, e, i, last);
    }
    base_writer_put(&w, "]}\n", 3);
done:
    svc_http_engine_release(h);
    if (msg != NULL) {
        respond_text(aio, status, msg);
    } else if (w.err != BASE_OK) {
        respond_text(aio, 500, base_strerror(w.err));
    } else {
        svc_http_respond(aio, 200, "application/json", "no-store", NULL, NULL, b.data, b.len,
                         false);
    }
    base_buf_fini(&b);
}

int svc_dashboard_add_routes(svc_http *h)
{
    int rv = svc_http_add_get_route(h, "/dashboard", on_page);
    if (rv == 0) {
        rv = svc_http_add_get_route(h, "/dashboard/chart.js", on_chartjs);
    }
    if (rv == 0) {
        rv = svc_http_add_get_route(h, "/dashboard/history.json", on_history);
    }
    return rv;
}
