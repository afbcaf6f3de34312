#ifndef SERVICE_HTTP_H
#define SERVICE_HTTP_H

/*
 * The HTTP endpoint for operators, on nng's own HTTP server and its own
 * listen address (http_url): GET /healthz, /readyz and /metrics, the
 * dashboard's routes (service/dashboard.h) and the JSON API under /api/v1
 * (service/http_api.h). This file, service/dashboard.c, service/http_api.c,
 * service/net.c and service/tls.c are the only ones that include nng headers.
 *
 *   /healthz  200 "ok" while the process runs, also while starting.
 *   /readyz   200 "ready" once the engine is published (every policy
 *             restored), Redis is reachable and the write queue is below its
 *             capacity; else 503 with a one-line reason ("starting",
 *             "redis unreachable", "redis refuses writes", "write queue full (...)").
 *   /metrics  the Prometheus text exposition (service/metrics.h); 503
 *             "starting" before the engine is published.
 *
 * States: OPEN (starting) -> SERVING [svc_http_set_engine] -> freed
 * [svc_http_close]. Handlers run on nng's HTTP threads; they read the
 * engine's counters under the same short locks as the stats op and never
 * touch Redis. svc_http_close() waits for handlers in progress, so the
 * engine may be freed right after it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "service/dispatch.h"
#include "service/engine.h"

typedef struct svc_http svc_http;

/*
 * svc_http_open() - listen on @url (http://HOST:PORT, or https:// with @tls,
 * service/tls.h; port 0 picks a free one) and start serving, the JSON API under /api/v1 included
 * (service/http_api.h: its requests go through @d, borrowed until
 * svc_http_close(), with bodies of at most @max_body_bytes). The address
 * actually bound, as a URL, goes to @out_bound.
 * Return: BASE_OK; BASE_EINVAL for a URL nng rejects; BASE_EIO if it cannot
 *         listen (reason in @errbuf); BASE_ENOMEM.
 */
struct nng_tls_config;
base_err svc_http_open(const char *url, svc_dispatch *d, size_t max_body_bytes,
                       struct nng_tls_config *tls, svc_http **out, char *out_bound,
                       size_t bound_len, char *errbuf, size_t errlen);

/*
 * svc_http_ops_allowed() - for the handlers of ops pages (/metrics, /dashboard): true when
 * the request may be served (auth off, ops_pages_open, or a proof by a client with the ops
 * scope); otherwise @aio has been answered 401, 403 or 503 with the reason.
 */
struct nng_aio;
struct nng_http_res;
bool svc_http_ops_allowed(svc_http *h, struct nng_aio *aio);

/*
 * svc_http_add_get_route() - serve GET (and HEAD) at @path with @cb, which finds @h with
 * svc_http_of(); other methods are answered 405 with "Allow: GET, HEAD" (nng's own 405 page
 * has no Allow header). For route modules (service/dashboard.c). Return: 0 or an nng error.
 */
int svc_http_add_get_route(svc_http *h, const char *path, void (*cb)(struct nng_aio *));
svc_http *svc_http_of(struct nng_aio *aio);

/*
 * svc_http_finish() - finish @aio with response @res when @rv is 0 (the server sends and frees
 * it), else free @res (may be NULL) and finish @aio with the error @rv.
 */
void svc_http_finish(struct nng_aio *aio, struct nng_http_res *res, int rv);

/*
 * svc_http_respond() - finish @aio with @status, Content-Type @type, optional Cache-Control
 * @cache, one more header @name: @value (@name NULL: none), and @body (@len bytes; @borrow: not copied, it must
 * outlive the response, as static data does); an nng error finishes @aio if it cannot be built.
 */
void svc_http_respond(struct nng_aio *aio, uint16_t status, const char *type, const char *cache,
                      const char *name, const char *value, const void *body, size_t len,
                      bool borrow);

/* Serve /readyz and /metrics from @e (borrowed until svc_http_close()). */
void svc_http_set_engine(svc_http *h, svc_engine *e);

/*
 * svc_http_engine_hold() - for the handlers of route modules
 * (service/dashboard.c): the engine, or NULL while starting or stopping.
 * Either way the caller then holds @h's read lock and must call
 * svc_http_engine_release() once; the engine stays valid until then.
 */
svc_engine *svc_http_engine_hold(svc_http *h);
void svc_http_engine_release(svc_http *h);

/* Stop listening, wait for handlers in progress, free. Accepts NULL. */
void svc_http_close(svc_http *h);

#endif
