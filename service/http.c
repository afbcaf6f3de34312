#include "service/http.h"

#include <arpa/inet.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "service/dashboard.h"
#include "service/http_api.h"
#include "service/metrics.h"

#define METRICS_MAX_BYTES (16u << 20) /* the exposition of SVC_MAX_POLICIES policies fits */
#define REASON_MAX 256

struct svc_http {
    /*
     * Handlers read @eng under the read lock; close takes the write lock,
     * so no handler uses the engine once svc_http_close() has it.
     */
    pthread_rwlock_t lk;
    svc_engine *eng; /* guarded by lk; NULL while starting */
    bool closed;     /* guarded by lk */
    nng_url *url;
    nng_http_server *srv;
    svc_http_api *api; /* the /api/v1 routes (service/http_api.h) */
    svc_auth *auth;    /* borrowed from the dispatcher */
};

static base_err from_nng(int rv)
{
    switch (rv) {
    case 0:
        return BASE_OK;
    case NNG_ENOMEM:
        return BASE_ENOMEM;
    case NNG_EINVAL:
    case NNG_EADDRINVAL:
    case NNG_ENOTSUP:
        return BASE_EINVAL;
    default:
        return BASE_EIO;
    }
}

void svc_http_finish(nng_aio *aio, nng_http_res *res, int rv)
{
    if (rv != 0) {
        nng_http_res_free(res);
        nng_aio_finish(aio, rv);
        return;
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

void svc_http_respond(nng_aio *aio, uint16_t status, const char *type, const char *cache,
                      const char *name, const char *value, const void *body, size_t len,
                      bool borrow)
{
    nng_http_res *res = NULL;
    int rv = nng_http_res_alloc(&res);
    if (rv == 0) {
        rv = nng_http_res_set_status(res, status);
    }
    if (rv == 0) {
        rv = nng_http_res_set_header(res, "Content-Type", type);
    }
    if (rv == 0 && cache != NULL) {
        rv = nng_http_res_set_header(res, "Cache-Control", cache);
    }
    if (rv == 0 && name != NULL) {
        rv = nng_http_res_set_header(res, name, value);
    }
    if (rv == 0) {
        rv =
            borrow ? nng_http_res_set_data(res, body, len) : nng_http_res_copy_data(res, body, len);
    }
    svc_http_finish(aio, res, rv);
}

/* @line and a newline, as plain text; with an Allow header unless @allow is NULL. */
static void respond_line(nng_aio *aio, uint16_t status, const char *allow, const char *line)
{
    char text[REASON_MAX + 2];
    int n = snprintf(text, sizeof(text), "%s\n", line);
    size_t len = n > 0 && (size_t)n < sizeof(text) ? (size_t)n : strlen(text);
    svc_http_respond(aio, status, "text/plain; charset=utf-8", NULL, allow != NULL ? "Allow" : NULL,
                     allow, text, len, false);
}

static void respond_text(nng_aio *aio, uint16_t status, const char *line)
{
    respond_line(aio, status, NULL, line);
}

/* A GET route's handler data: the server and the route's own callback. */
typedef struct get_route {
    svc_http *h;
    void (*cb)(nng_aio *);
} get_route;

svc_http *svc_http_of(nng_aio *aio)
{
    nng_http_handler *hd = nng_aio_get_input(aio, 1);
    const get_route *rt = nng_http_handler_get_data(hd);
    return rt->h;
}

/* Every method comes here: GET and HEAD go to the route, the rest get 405 with Allow. */
static void on_get_route(nng_aio *aio)
{
    nng_http_handler *hd = nng_aio_get_input(aio, 1);
    const get_route *rt = nng_http_handler_get_data(hd);
    nng_http_req *req = nng_aio_get_input(aio, 0);
    const char *m = nng_http_req_get_method(req);
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) {
        rt->cb(aio);
        return;
    }
    char line[REASON_MAX];
    snprintf(line, sizeof(line), "method %.32s is not allowed here; use GET, HEAD", m);
    respond_line(aio, 405, "GET, HEAD", line);
}

static void on_healthz(nng_aio *aio)
{
    /* While requests in flight get their last 2 s, new connections are still taken. */
    svc_http *h = svc_http_of(aio);
    pthread_rwlock_rdlock(&h->lk);
    bool stopping = h->closed;
    pthread_rwlock_unlock(&h->lk);
    respond_text(aio, stopping ? 503 : 200, stopping ? "stopping" : "ok");
}

static void on_readyz(nng_aio *aio)
{
    svc_http *h = svc_http_of(aio);
    char why[REASON_MAX] = "starting";
    bool ready = false;
    pthread_rwlock_rdlock(&h->lk);
    if (h->closed) {
        base_strlcpy(why, "stopping", sizeof(why));
    } else if (h->eng != NULL) {
        ready = svc_engine_ready(h->eng, why, sizeof(why));
    }
    pthread_rwlock_unlock(&h->lk);
    respond_text(aio, ready ? 200 : 503, ready ? "ready" : why);
}

bool svc_http_ops_allowed(svc_http *h, nng_aio *aio)
{
    proto_error err;
    if (svc_auth_ops_pages_open(h->auth)) {
        return true;
    }
    nng_http_req *req = nng_aio_get_input(aio, 0);
    svc_auth_http proof = {nng_http_req_get_header(req, "Authorization"),
                           nng_http_req_get_method(req), nng_http_req_get_uri(req), NULL, 0};
    pthread_rwlock_rdlock(&h->lk);
    bool use = h->eng != NULL; /* else the page is answered "starting" */
    pthread_rwlock_unlock(&h->lk);
    proto_errcode code = svc_auth_check_scope(h->auth, &proof, SVC_SCOPE_OPS, "", use, &err);
    if (code == PROTO_E_NONE) {
        return true;
    }
    respond_text(aio,
                 code == PROTO_E_FORBIDDEN     ? 403
                 : code == PROTO_E_UNAVAILABLE ? 503
                                               : 401,
                 err.message);
    return false;
}

static void on_metrics(nng_aio *aio)
{
    svc_http *h = svc_http_of(aio);
    if (!svc_http_ops_allowed(h, aio)) {
        return;
    }
    base_buf b;
    base_buf_init(&b, METRICS_MAX_BYTES);
    base_err err = BASE_OK;
    bool serving = false;
    pthread_rwlock_rdlock(&h->lk);
    if (!h->closed && h->eng != NULL) {
        serving = true;
        err = svc_engine_metrics(h->eng, &b);
    }
    pthread_rwlock_unlock(&h->lk);
    if (!serving) {
        respond_text(aio, 503, "starting");
    } else if (err != BASE_OK) {
        respond_text(aio, 500, base_strerror(err));
    } else {
        svc_http_respond(aio, 200, SVC_METRICS_CONTENT_TYPE, NULL, NULL, NULL, b.data, b.len,
                         false);
    }
    base_buf_fini(&b);
}

int svc_http_add_get_route(svc_http *h, const char *path, void (*cb)(nng_aio *))
{
    nng_http_handler *hd = NULL;
    get_route *rt = base_alloc(sizeof(*rt));
    if (rt == NULL) {
        return NNG_ENOMEM;
    }
    *rt = (get_route){h, cb};
    int rv = nng_http_handler_alloc(&hd, path, on_get_route);
    if (rv == 0) {
        rv = nng_http_handler_set_method(hd, NULL); /* every method: see on_get_route() */
    }
    if (rv == 0) {
        rv = nng_http_handler_set_data(hd, rt, base_free); /* the handler frees it */
        rt = rv == 0 ? NULL : rt;
    }
    if (rv == 0) {
        rv = nng_http_server_add_handler(h->srv, hd); /* takes hd on success */
    }
    if (rv != 0 && hd != NULL) {
        nng_http_handler_free(hd);
    }
    base_free(rt);
    return rv;
}

/*
 * Every path no route takes: the HTTP server's own 404 page. Without this handler nng answers
 * it by itself, leaving a request body unread on the connection, where its bytes are read as
 * the next request (one smuggled inside the body would be carried out). A request with a body
 * is answered and its connection closed instead, unread.
 */
static void on_not_found(nng_aio *aio)
{
    nng_http_req *req = nng_aio_get_input(aio, 0);
    const char *len = nng_http_req_get_header(req, "Content-Length");
    bool body = (len != NULL && strcmp(len, "0") != 0) ||
                nng_http_req_get_header(req, "Transfer-Encoding") != NULL;
    nng_http_res *res = NULL;
    int rv = nng_http_res_alloc_error(&res, NNG_HTTP_STATUS_NOT_FOUND);
    if (rv == 0 && body) {
        rv = nng_http_res_set_header(res, "Connection", "close");
    }
    svc_http_finish(aio, res, rv);
}

static int add_not_found(svc_http *h)
{
    nng_http_handler *hd = NULL;
    int rv = nng_http_handler_alloc(&hd, "/", on_not_found);
    if (rv == 0) {
        rv = nng_http_handler_set_method(hd, NULL); /* every method */
    }
    if (rv == 0) {
        rv = nng_http_handler_collect_body(hd, false, 0); /* never read: the connection closes */
    }
    if (rv == 0) {
        rv = nng_http_handler_set_tree(hd); /* below every other route: the longest path wins */
    }
    if (rv == 0) {
        rv = nng_http_server_add_handler(h->srv, hd); /* takes hd on success */
    }
    if (rv != 0 && hd != NULL) {
        nng_http_handler_free(hd);
    }
    return rv;
}

/* The bound address as a URL; the configured one if it is not IPv4 or IPv6. */
static void bound_url(svc_http *h, const char *url, char *out, size_t len)
{
    nng_sockaddr sa;
    char host[INET6_ADDRSTRLEN] = "";
    const char *scheme = strncasecmp(url, "https://", 8) == 0 ? "https" : "http";
    snprintf(out, len, "%s", url);
    if (nng_http_server_get_addr(h->srv, &sa) != 0) {
        return;
    }
    if (sa.s_family == NNG_AF_INET &&
        inet_ntop(AF_INET, &sa.s_in.sa_addr, host, sizeof(host)) != NULL) {
        snprintf(out, len, "%s://%s:%u", scheme, host, (unsigned)ntohs(sa.s_in.sa_port));
    } else if (sa.s_family == NNG_AF_INET6 &&
               inet_ntop(AF_INET6, sa.s_in6.sa_addr, host, sizeof(host)) != NULL) {
        snprintf(out, len, "%s://[%s]:%u", scheme, host, (unsigned)ntohs(sa.s_in6.sa_port));
    }
}

base_err svc_http_open(const char *url, svc_dispatch *d, size_t max_body_bytes,
                       struct nng_tls_config *tls, svc_http **out, char *out_bound,
                       size_t bound_len, char *errbuf, size_t errlen)
{
    base_err e = BASE_ENOMEM;
    int rv = 0;
    const char *what = "parse it";
    svc_http *h = base_alloc_zero(1, sizeof(*h));
    if (h == NULL) {
        snprintf(errbuf, errlen, "http_url %s: out of memory", url);
        return BASE_ENOMEM;
    }
    pthread_rwlock_init(&h->lk, NULL);
    h->auth = d->auth;
    rv = nng_url_parse(&h->url, url);
    if (rv == 0) {
        what = "set up a server";
        rv = nng_http_server_hold(&h->srv, h->url);
    }
    if (rv == 0) {
        what = "add a route";
        rv = svc_http_add_get_route(h, "/healthz", on_healthz);
    }
    if (rv == 0) {
        rv = svc_http_add_get_route(h, "/readyz", on_readyz);
    }
    if (rv == 0) {
        rv = svc_http_add_get_route(h, "/metrics", on_metrics);
    }
    if (rv == 0) {
        rv = svc_dashboard_add_routes(h);
    }
    if (rv == 0) {
        rv = add_not_found(h);
    }
    if (rv == 0) {
        e = svc_http_api_open(h->srv, d, max_body_bytes, &h->api, errbuf, errlen);
        if (e != BASE_OK) {
            goto fail;
        }
        what = "use TLS";
        rv = strncasecmp(url, "https://", 8) != 0 ? 0
             : tls != NULL                        ? nng_http_server_set_tls(h->srv, tls)
                                                  : NNG_EINVAL;
    }
    if (rv == 0) {
        what = "listen";
        rv = nng_http_server_start(h->srv);
    }
    if (rv != 0) {
        e = from_nng(rv);
        snprintf(errbuf, errlen, "http_url %s: cannot %s: %s", url, what, nng_strerror(rv));
        goto fail;
    }
    bound_url(h, url, out_bound, bound_len);
    *out = h;
    return BASE_OK;
fail:
    svc_http_close(h);
    return e;
}

void svc_http_set_engine(svc_http *h, svc_engine *e)
{
    if (h == NULL) {
        return;
    }
    pthread_rwlock_wrlock(&h->lk);
    h->eng = e;
    pthread_rwlock_unlock(&h->lk);
}

svc_engine *svc_http_engine_hold(svc_http *h)
{
    pthread_rwlock_rdlock(&h->lk);
    return h->closed ? NULL : h->eng;
}

void svc_http_engine_release(svc_http *h)
{
    pthread_rwlock_unlock(&h->lk);
}

void svc_http_close(svc_http *h)
{
    if (h == NULL) {
        return;
    }
    pthread_rwlock_wrlock(&h->lk);
    h->closed = true;
    h->eng = NULL;
    pthread_rwlock_unlock(&h->lk);
    svc_http_api_close(h->api);
    if (h->srv != NULL) {
        nng_http_server_stop(h->srv);
        nng_http_server_release(h->srv);
    }
    svc_http_api_release(h->api);
    nng_url_free(h->url);
    pthread_rwlock_destroy(&h->lk);
    base_free(h);
}
