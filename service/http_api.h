#ifndef SERVICE_HTTP_API_H
#define SERVICE_HTTP_API_H

/*
 * The JSON API under /api/v1 on rlfeedd's HTTP server (docs/protocol.md section 11):
 *
 *   GET  /api/v1/stats[?policy=P]        the stats op's reply
 *   GET  /api/v1/policies                every policy: serving slot, versions per slot
 *   GET  /api/v1/policies/{p}            one policy: versions, reward spec, configuration
 *   POST /api/v1/decide, /log, /feedback, /activate, /explain
 *                                        the msgpack request as a JSON body; "op" is the
 *                                        path's, "v" defaults to 1
 *   GET  /api/v1/explain/{event_id}?policy=P
 *
 * Every request becomes the msgpack request it stands for and goes through
 * svc_dispatch_run(), as on the nng sockets: the same checks, codes and rejection counters.
 * The reply is the msgpack reply printed as JSON (proto/json.h), with the HTTP status of
 * its code (proto_json_http_status()).
 *
 * Bodies: nng 1.5.2's own body collection answers a Content-Length over its cap with a bare
 * 400 and leaves the connection open, so the rest of the body is parsed as the next
 * request. This file reads bodies itself instead: a Content-Length over @max_body_bytes is
 * answered 413 (too_large, counted) without reading or allocating anything, and the
 * connection is closed; an accepted body is read as it arrives, into a buffer grown with it
 * (a client that announces much and sends little holds little), and must arrive within
 * SVC_HTTP_API_BODY_MS of the request's head: else it is counted as bad_request and the
 * connection is closed (the 408 written then is lost: nng 1.5.2 closes a connection whose
 * read times out). A body without Content-Length (chunked) is 411, connection closed.
 *
 * Replies: feedback and explain may be answered later, from the writer or explain thread.
 * Each request in flight is a call that the replier's send() answers and releases. Closing
 * is in two steps around nng_http_server_stop(): svc_http_api_close() first refuses every
 * new request (answered shutting_down in its handler) and waits, up to
 * SVC_HTTP_API_DRAIN_MS, for the answers of requests already dispatched; the handler aio
 * of any still unanswered is cancellable, so the server's stop finishes it (its connection
 * closes) and its later send() only releases it. svc_http_api_release() then drops the
 * server's reference.
 *
 * States: OPEN -> CLOSED [svc_http_api_close] -> released [svc_http_api_release]; the
 * memory goes with the last call in flight.
 * Threads: handlers and read callbacks on nng's threads; send() from any thread.
 */

#include <stddef.h>

#include "base/err.h"
#include "service/dispatch.h"

#define SVC_HTTP_API_BODY_MS 10000 /* a body must arrive within this long of its head */
#define SVC_HTTP_API_DRAIN_MS 2000 /* closing waits this long for dispatched requests */

struct nng_http_server;
typedef struct svc_http_api svc_http_api;

/*
 * svc_http_api_open() - add the /api/v1 routes to @srv (not started yet) and answer them
 * through @d (borrowed; must outlive the API).
 * @max_body_bytes: the largest request body taken (the daemon's max_message_bytes)
 * Return: BASE_OK; BASE_ENOMEM; BASE_EINVAL if a route cannot be added (nng's error text in
 *         @errbuf). On failure routes already added stay with @srv, which frees them.
 */
base_err svc_http_api_open(struct nng_http_server *srv, svc_dispatch *d, size_t max_body_bytes,
                           svc_http_api **out, char *errbuf, size_t errlen);

/*
 * svc_http_api_close() - call before nng_http_server_stop(): from now on every request is
 * answered shutting_down without reaching the dispatcher; wait for dispatches in progress,
 * and up to SVC_HTTP_API_DRAIN_MS for the answers of requests already dispatched. The
 * dispatcher's engine must stay alive until this returns. Accepts NULL.
 */
void svc_http_api_close(svc_http_api *a);

/*
 * svc_http_api_release() - call after nng_http_server_stop(): drop the server's reference
 * (the API is freed with the last call in flight). Accepts NULL.
 */
void svc_http_api_release(svc_http_api *a);

#endif
