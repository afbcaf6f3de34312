#include "service/http_api.h"

#include <errno.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/thread.h"
#include "base/utf8.h"
#include "proto/json.h"
#include "proto/request.h"
#include "service/http.h"

#define PREFIX "/api/v1/"
#define FIRST_READ_BYTES 65536     /* the body buffer starts here and doubles as bytes arrive */
#define NAME_MAX_BYTES 256         /* a decoded path segment or query value; longer is refused */
#define REPLY_MAX_BYTES (4u << 20) /* stats and policy replies; as the stats op's cap */

typedef struct api_call api_call;

struct svc_http_api {
    pthread_mutex_t lk;
    pthread_cond_t idle;
    unsigned refs;      /* guarded by lk: the server's, plus one per call not released */
    unsigned busy;      /* guarded by lk: dispatches in progress */
    unsigned waiting;   /* guarded by lk: calls dispatched and not answered yet */
    bool closed;        /* guarded by lk */
    api_call *calls;    /* guarded by lk: calls whose handler aio is not finished */
    svc_dispatch *disp; /* borrowed */
    size_t max_body;
};

/* One request in flight, from its handler to its answer. */
struct api_call {
    svc_http_api *api;
    nng_aio *aio;          /* the handler's; NULL once finished (guarded by api->lk) */
    api_call *prev, *next; /* in api->calls while aio is set (guarded by api->lk) */
    nng_http_conn *conn;
    nng_aio *rd;       /* the body read; NULL if none */
    const char *op;    /* the path's op ("decide"), for POST routes */
    uint16_t status;   /* 0: the reply code's status; else this one (a refusal before decoding) */
    const char *allow; /* with 405: the Allow header */
    bool close;        /* answer with Connection: close (a body was left unread) */
    bool dispatched;   /* counted in api->waiting until send() */
    uint8_t *body;
    size_t body_len, body_cap, body_want;
    uint64_t deadline_ns;
    /* the proof of auth = on, copied when the handler runs (service/auth.h) */
    char *auth_header; /* NULL: none sent */
    char *target;      /* the request target as sent */
    char method[8];
};

/* ----------------------------------------------------------- calls and answers */

static void api_unref(svc_http_api *a)
{
    pthread_mutex_lock(&a->lk);
    bool last = --a->refs == 0;
    pthread_mutex_unlock(&a->lk);
    if (last) {
        pthread_cond_destroy(&a->idle);
        pthread_mutex_destroy(&a->lk);
        base_free(a);
    }
}

static void unlink_locked(svc_http_api *a, api_call *c)
{
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        a->calls = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->prev = c->next = NULL;
}

/* The handler aio of @c, taken: after this nobody else finishes it. NULL if already taken. */
static nng_aio *take_aio(api_call *c)
{
    svc_http_api *a = c->api;
    pthread_mutex_lock(&a->lk);
    nng_aio *aio = c->aio;
    if (aio != NULL) {
        c->aio = NULL;
        unlink_locked(a, c);
    }
    pthread_mutex_unlock(&a->lk);
    return aio;
}

/*
 * nng cancels the handler aio when the server stops (the connection is closed): finish it
 * now; the call is released later by its send(), or by its read callback. @arg is the API,
 * which outlives the server's stop, never the call, which may be gone already.
 */
static void cancel_call(nng_aio *aio, void *arg, int rv)
{
    svc_http_api *a = arg;
    bool found = false;
    pthread_mutex_lock(&a->lk);
    for (api_call *c = a->calls; c != NULL; c = c->next) {
        if (c->aio == aio) {
            c->aio = NULL;
            unlink_locked(a, c);
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&a->lk);
    if (found) {
        nng_aio_finish(aio, rv);
    }
}

static void release(api_call *c)
{
    svc_http_api *a = c->api;
    if (c->rd != NULL) {
        nng_aio_reap(c->rd); /* may run inside its own callback */
    }
    base_free(c->body);
    base_free(c->auth_header);
    base_free(c->target);
    base_free(c);
    api_unref(a);
}

/* Answer @aio with @status and the JSON @body; a hard close if the response cannot be built. */
static void respond(nng_aio *aio, const api_call *c, uint16_t status, const char *body, size_t len)
{
    nng_http_res *res = NULL;
    int rv = nng_http_res_alloc(&res);
    if (rv == 0) {
        rv = nng_http_res_set_status(res, status);
    }
    if (rv == 0) {
        rv = nng_http_res_set_header(res, "Content-Type", "application/json");
    }
    if (rv == 0 && c->allow != NULL) {
        rv = nng_http_res_set_header(res, "Allow", c->allow);
    }
    if (rv == 0 && c->close) {
        rv = nng_http_res_set_header(res, "Connection", "close");
    }
    if (rv == 0) {
        rv = nng_http_res_copy_data(res, body, len);
    }
    svc_http_finish(aio, res, rv);
}

/*
 * The replier's send(): exactly once per call, from any thread. Prints the msgpack reply
 * @buf as JSON, answers the handler aio if the server has not cancelled it, and releases
 * the call.
 */
static void api_send(void *arg, const uint8_t *buf, size_t len)
{
    api_call *c = arg;
    nng_aio *aio = take_aio(c);
    if (c->dispatched) {
        pthread_mutex_lock(&c->api->lk);
        if (--c->api->waiting == 0) {
            pthread_cond_broadcast(&c->api->idle);
        }
        pthread_mutex_unlock(&c->api->lk);
    }
    if (aio != NULL) {
        char *json = NULL;
        size_t n = 0;
        proto_errcode code = PROTO_E_INTERNAL;
        if (proto_json_from_reply(buf, len, &json, &n, &code) == BASE_OK) {
            json[n] = '\n'; /* the NUL: one line of JSON */
            respond(aio, c, c->status != 0 ? c->status : (uint16_t)proto_json_http_status(code),
                    json, n + 1);
        } else {
            static const char broken[] = "{\"ok\":false,\"error\":{\"code\":\"internal\","
                                         "\"message\":\"reply cannot be printed as JSON\"}}\n";
            respond(aio, c, 500, broken, sizeof(broken) - 1);
        }
        base_free(json);
    }
    release(c);
}

static svc_replier replier(api_call *c)
{
    svc_replier r = {api_send, c, NULL, base_mono_ns(), 0};
    return r;
}

/* A refusal before decoding: counted under @code, answered with @status. Releases @c. */
static void refuse(api_call *c, uint16_t status, proto_errcode code, const char *message)
{
    svc_replier r = replier(c);
    c->status = status;
    svc_dispatch_reject(c->api->disp, &r, code, message);
}

/*
 * Enter the dispatcher, unless closing; false: @c was answered shutting_down (released).
 * With @dispatch, @c counts as waiting for its answer until send().
 */
static bool enter(api_call *c, bool dispatch)
{
    svc_http_api *a = c->api;
    pthread_mutex_lock(&a->lk);
    bool open = !a->closed;
    a->busy += open;
    a->waiting += open && dispatch;
    c->dispatched = open && dispatch;
    pthread_mutex_unlock(&a->lk);
    if (!open) {
        svc_replier r = replier(c);
        svc_dispatch_reject(a->disp, &r, PROTO_E_SHUTTING_DOWN, "shutting down");
    }
    return open;
}

static void leave(svc_http_api *a)
{
    pthread_mutex_lock(&a->lk);
    if (--a->busy == 0) {
        pthread_cond_broadcast(&a->idle);
    }
    pthread_mutex_unlock(&a->lk);
}

/* The proof of @c's request, over its body (@body, @body_len: what was read). */
static svc_auth_http proof_of(const api_call *c, const uint8_t *body, size_t body_len)
{
    svc_auth_http h = {c->auth_header, c->method, c->target != NULL ? c->target : "", body,
                       body_len};
    return h;
}

/*
 * Run the msgpack request @b through the dispatcher as the sockets do; @body is the HTTP
 * body it came from (what an auth proof covers). Releases @c.
 */
static void run(api_call *c, const base_buf *b, const uint8_t *body, size_t body_len)
{
    svc_http_api *a = c->api;
    svc_auth_http proof = proof_of(c, body, body_len);
    if (enter(c, true)) {
        svc_replier r = replier(c);
        svc_dispatch_run_http(a->disp, b->data, b->len, &r, &proof);
        leave(a);
    }
}

/*
 * A new call for the handler @aio, registered so that a stopping server can cancel it.
 * NULL (and @aio finished) when out of memory.
 */
static api_call *call_new(nng_aio *aio)
{
    nng_http_handler *h = nng_aio_get_input(aio, 1);
    svc_http_api *a = nng_http_handler_get_data(h);
    api_call *c = base_alloc_zero(1, sizeof(*c));
    if (c == NULL) {
        nng_aio_finish(aio, NNG_ENOMEM);
        return NULL;
    }
    c->api = a;
    c->aio = aio;
    c->conn = nng_aio_get_input(aio, 2);
    if (svc_auth_enabled(a->disp->auth)) {
        nng_http_req *req = nng_aio_get_input(aio, 0);
        const char *hdr = nng_http_req_get_header(req, "Authorization");
        c->auth_header = hdr != NULL ? base_strdup(hdr) : NULL;
        c->target = base_strdup(nng_http_req_get_uri(req));
        (void)base_strlcpy(c->method, nng_http_req_get_method(req), sizeof(c->method));
    }
    pthread_mutex_lock(&a->lk);
    a->refs++;
    c->next = a->calls;
    if (a->calls != NULL) {
        a->calls->prev = c;
    }
    a->calls = c;
    pthread_mutex_unlock(&a->lk);
    nng_aio_defer(aio, cancel_call, a);
    return c;
}

/* ------------------------------------------------------------------ requests */

static nng_http_req *req_of(nng_aio *aio)
{
    return nng_aio_get_input(aio, 0);
}

/* Whether the request carries a body (which, unread, must close the connection). */
static bool has_body(nng_http_req *req)
{
    const char *cl = nng_http_req_get_header(req, "Content-Length");
    return nng_http_req_get_header(req, "Transfer-Encoding") != NULL ||
           (cl != NULL && strcmp(cl, "0") != 0);
}

/* True if the method of @req is @m (HEAD counts as GET: nng sends no body then). */
static bool method_is(nng_http_req *req, const char *m)
{
    const char *got = nng_http_req_get_method(req);
    return strcmp(got, m) == 0 || (strcmp(m, "GET") == 0 && strcmp(got, "HEAD") == 0);
}

static void refuse_method(api_call *c, nng_http_req *req, const char *allow)
{
    char msg[PROTO_ERRMSG_MAX];
    snprintf(msg, sizeof(msg), "method %.16s is not allowed here; use %s",
             nng_http_req_get_method(req), allow);
    c->allow = allow;
    c->close = has_body(req);
    refuse(c, 405, PROTO_E_BAD_REQUEST, msg);
}

/* ----------------------------------------------------------------- POST bodies */

/* The body is in: JSON to msgpack, then the dispatcher. Releases @c. */
static void body_done(api_call *c)
{
    base_buf b;
    proto_error err;
    base_buf_init(&b, c->api->max_body * 4 + 4096);
    if (proto_json_request((const char *)c->body, c->body_len, c->op, &b, &err) != BASE_OK) {
        refuse(c, 0, err.code, err.message);
    } else {
        uint8_t *body = c->body;
        size_t body_len = c->body_len;
        c->body = NULL; /* run() may release @c */
        run(c, &b, body, body_len);
        base_free(body);
    }
    base_buf_fini(&b);
}

/* Read what has arrived of the body, at most what is still wanted. */
static void read_more(api_call *c)
{
    if (c->body_len == c->body_cap) {
        size_t cap = c->body_cap * 2 < c->body_want ? c->body_cap * 2 : c->body_want;
        uint8_t *nb = base_realloc_array(c->body, cap, 1);
        if (nb == NULL) {
            c->close = true;
            refuse(c, 500, PROTO_E_INTERNAL, "out of memory");
            return;
        }
        c->body = nb;
        c->body_cap = cap;
    }
    nng_iov iov = {c->body + c->body_len, c->body_cap - c->body_len};
    uint64_t now = base_mono_ns();
    nng_duration left =
        now < c->deadline_ns ? (nng_duration)((c->deadline_ns - now) / 1000000u) : 0;
    nng_aio_set_iov(c->rd, 1, &iov);
    nng_aio_set_timeout(c->rd, left > 0 ? left : 1);
    /*
     * Under the lock: a stopping server cancels the handler aio (cancel_call() takes the
     * lock) before it frees the connection, so @c->conn is alive while the aio is ours.
     */
    pthread_mutex_lock(&c->api->lk);
    bool ours = c->aio != NULL && !c->api->closed;
    if (ours) {
        nng_http_conn_read(c->conn, c->rd);
    }
    pthread_mutex_unlock(&c->api->lk);
    if (!ours) {
        c->close = true;
        refuse(c, 0, PROTO_E_SHUTTING_DOWN, "shutting down");
    }
}

static void read_cb(void *arg)
{
    api_call *c = arg;
    int rv = nng_aio_result(c->rd);
    if (rv == NNG_ETIMEDOUT) {
        char msg[PROTO_ERRMSG_MAX];
        snprintf(msg, sizeof(msg), "request body not received within %d ms (%zu of %zu bytes)",
                 SVC_HTTP_API_BODY_MS, c->body_len, c->body_want);
        c->close = true;
        refuse(c, 408, PROTO_E_BAD_REQUEST, msg);
        return;
    }
    if (rv != 0) {
        nng_aio *aio = take_aio(c); /* the connection is gone: nobody to answer */
        if (aio != NULL) {
            nng_aio_finish(aio, rv);
        }
        release(c);
        return;
    }
    c->body_len += nng_aio_count(c->rd);
    if (c->body_len < c->body_want) {
        read_more(c);
        return;
    }
    body_done(c);
}

/* Whether the Content-Type of @req, if any, is JSON. */
static bool json_type(nng_http_req *req)
{
    const char *t = nng_http_req_get_header(req, "Content-Type");
    if (t == NULL) {
        return true;
    }
    size_t n = strcspn(t, "; \t");
    return n == strlen("application/json") && strncasecmp(t, "application/json", n) == 0;
}

/* POST /api/v1/{op}: check the head, then read the body. Releases @c. */
static void post_op(api_call *c, nng_http_req *req)
{
    char msg[PROTO_ERRMSG_MAX];
    const char *cl = nng_http_req_get_header(req, "Content-Length");
    char *end = NULL;
    unsigned long long want = 0;
    if (!json_type(req)) {
        c->close = has_body(req);
        snprintf(msg, sizeof(msg), "Content-Type %.64s is not application/json",
                 nng_http_req_get_header(req, "Content-Type"));
        refuse(c, 415, PROTO_E_BAD_REQUEST, msg);
        return;
    }
    if (nng_http_req_get_header(req, "Transfer-Encoding") != NULL || cl == NULL) {
        c->close = true;
        refuse(c, 411, PROTO_E_BAD_REQUEST, "a body with Content-Length is required");
        return;
    }
    errno = 0;
    want = strtoull(cl, &end, 10);
    if (end == cl || *end != '\0' || errno != 0 || cl[0] == '-') {
        c->close = true;
        refuse(c, 400, PROTO_E_BAD_REQUEST, "Content-Length is not a number");
        return;
    }
    if (want > c->api->max_body) {
        /* Nothing is read or allocated: the rest of the body dies with the connection. */
        c->close = true;
        snprintf(msg, sizeof(msg), "body of %llu bytes is over the cap of %zu bytes", want,
                 c->api->max_body);
        refuse(c, 413, PROTO_E_TOO_LARGE, msg);
        return;
    }
    c->body_want = (size_t)want;
    c->body_cap = want < FIRST_READ_BYTES ? (size_t)want : FIRST_READ_BYTES;
    c->deadline_ns = base_mono_ns() + (uint64_t)SVC_HTTP_API_BODY_MS * 1000000u;
    if (want == 0) {
        body_done(c);
        return;
    }
    c->body = base_alloc(c->body_cap); /* grows with what arrives (read_more()) */
    if (c->body == NULL || nng_aio_alloc(&c->rd, read_cb, c) != 0) {
        c->close = true;
        refuse(c, 500, PROTO_E_INTERNAL, "out of memory");
        return;
    }
    read_more(c);
}

/* ----------------------------------------------------------------- routes */

/* POST /api/v1/@op. */
static void on_op(nng_aio *aio, const char *op)
{
    api_call *c = call_new(aio);
    if (c == NULL) {
        return;
    }
    nng_http_req *req = req_of(aio);
    c->op = op;
    if (strcmp(nng_http_req_get_method(req), "POST") != 0) {
        refuse_method(c, req, "POST");
        return;
    }
    post_op(c, req);
}

static void on_decide(nng_aio *aio)
{
    on_op(aio, "decide");
}

static void on_log(nng_aio *aio)
{
    on_op(aio, "log");
}

static void on_feedback(nng_aio *aio)
{
    on_op(aio, "feedback");
}

static void on_activate(nng_aio *aio)
{
    on_op(aio, "activate");
}

/* POST /api/v1/explain, and GET /api/v1/explain/{event_id}?policy=P. */
static void on_explain(nng_aio *aio)
{
    api_call *c = call_new(aio);
    if (c == NULL) {
        return;
    }
    nng_http_req *req = req_of(aio);
    char event_id[NAME_MAX_BYTES], policy[NAME_MAX_BYTES];
    c->op = "explain";
    /* Two routes: /api/v1/explain takes POST, /api/v1/explain/{event_id} GET (and HEAD). */
    const char *uri = nng_http_req_get_uri(req);
    size_t n = strlen(PREFIX "explain");
    /* With a trailing '/' too: the route without a path argument (protocol.md section 11). */
    size_t slash = strncmp(uri, PREFIX "explain/", n + 1) == 0 ? 1 : 0;
    bool by_body =
        strncmp(uri, PREFIX "explain", n) == 0 && (uri[n + slash] == '\0' || uri[n + slash] == '?');
    if (by_body) {
        if (strcmp(nng_http_req_get_method(req), "POST") != 0) {
            refuse_method(c, req, "POST");
            return;
        }
        post_op(c, req);
        return;
    }
    if (!method_is(req, "GET")) {
        refuse_method(c, req, "GET, HEAD");
        return;
    }
    c->close = has_body(req);
    if (!proto_http_target(nng_http_req_get_uri(req), PREFIX "explain/", event_id, sizeof(event_id),
                           policy, sizeof(policy))) {
        refuse(c, 0, PROTO_E_BAD_REQUEST, "the event id or the policy is not a valid name");
        return;
    }
    if (event_id[0] == '\0' || policy[0] == '\0') {
        refuse(c, 0, PROTO_E_BAD_REQUEST,
               "GET /api/v1/explain/{event_id}?policy=P needs both; or POST a body");
        return;
    }
    base_buf b;
    base_buf_init(&b, 4096);
    if (proto_encode_explain(&b, policy, event_id) == BASE_OK) {
        run(c, &b, NULL, 0);
    } else {
        refuse(c, 0, PROTO_E_INTERNAL, "out of memory");
    }
    base_buf_fini(&b);
}

/* GET /api/v1/stats[?policy=P]: the stats op. */
static void on_stats(nng_aio *aio)
{
    api_call *c = call_new(aio);
    if (c == NULL) {
        return;
    }
    nng_http_req *req = req_of(aio);
    char rest[NAME_MAX_BYTES], policy[NAME_MAX_BYTES];
    if (!method_is(req, "GET")) {
        refuse_method(c, req, "GET, HEAD");
        return;
    }
    c->close = has_body(req);
    if (!proto_http_target(nng_http_req_get_uri(req), PREFIX "stats", rest, sizeof(rest), policy,
                           sizeof(policy))) {
        refuse(c, 0, PROTO_E_BAD_REQUEST, "the policy is not a valid name");
        return;
    }
    base_buf b;
    base_buf_init(&b, 4096);
    if (proto_encode_stats(&b, policy) == BASE_OK) {
        run(c, &b, NULL, 0);
    } else {
        refuse(c, 0, PROTO_E_INTERNAL, "out of memory");
    }
    base_buf_fini(&b);
}

/* GET /api/v1/policies and /api/v1/policies/{p}: from the engine, under its stats locks. */
static void on_policies(nng_aio *aio)
{
    api_call *c = call_new(aio);
    if (c == NULL) {
        return;
    }
    svc_http_api *a = c->api;
    nng_http_req *req = req_of(aio);
    char msg[PROTO_ERRMSG_MAX];
    if (!method_is(req, "GET")) {
        refuse_method(c, req, "GET, HEAD");
        return;
    }
    c->close = has_body(req);
    /* Room for any name the URI holds: one too long for a policy is unknown, not malformed. */
    const char *uri = nng_http_req_get_uri(req);
    char *name = base_alloc(strlen(uri) + 1);
    if (name == NULL) {
        refuse(c, 0, PROTO_E_INTERNAL, "out of memory");
        return;
    }
    if (!proto_http_target(uri, PREFIX "policies/", name, strlen(uri) + 1, NULL, 0)) {
        refuse(c, 0, PROTO_E_BAD_REQUEST, "the policy is not a valid name");
        goto done;
    }
    if (svc_auth_enabled(a->disp->auth)) {
        proto_error err;
        svc_auth_http proof = proof_of(c, NULL, 0);
        bool use = atomic_load(&a->disp->eng) != NULL; /* else answered "starting" below */
        proto_errcode code =
            svc_auth_check_scope(a->disp->auth, &proof, SVC_SCOPE_OPS, name, use, &err);
        if (code != PROTO_E_NONE) {
            refuse(c, 0, code, err.message);
            goto done;
        }
    }
    if (!enter(c, false)) {
        goto done;
    }
    svc_engine *e = atomic_load(&a->disp->eng);
    if (e == NULL) {
        atomic_fetch_add(&a->disp->refused_starting, 1); /* in the `ready:` line, as others */
        refuse(c, 0, PROTO_E_UNAVAILABLE, "starting up: rebuilding state from the log; retry");
        leave(a);
        goto done;
    }
    base_buf b;
    base_buf_init(&b, REPLY_MAX_BYTES);
    proto_errcode code = svc_engine_policies(e, name[0] != '\0' ? name : NULL, &b);
    if (code == PROTO_E_NONE) {
        api_send(c, b.data, b.len);
    } else if (code == PROTO_E_UNAVAILABLE &&
               svc_engine_standby_message(e, name, msg, sizeof(msg))) {
        refuse(c, 0, code, msg); /* stood by for: as its requests are answered */
    } else {
        snprintf(msg, sizeof(msg), "no policy named \"%.64s\"", name);
        refuse(c, 0, code, code == PROTO_E_UNKNOWN_POLICY ? msg : "out of memory");
    }
    base_buf_fini(&b);
    leave(a);
done:
    base_free(name);
}

static int add(nng_http_server *srv, svc_http_api *a, const char *path, bool tree,
               void (*cb)(nng_aio *))
{
    nng_http_handler *h = NULL;
    int rv = nng_http_handler_alloc(&h, path, cb);
    if (rv == 0) {
        rv = nng_http_handler_set_method(h, NULL); /* every method: wrong ones get JSON 405 */
    }
    if (rv == 0) {
        rv = nng_http_handler_collect_body(h, false, 0); /* read here, see http_api.h */
    }
    if (rv == 0 && tree) {
        rv = nng_http_handler_set_tree(h);
    }
    if (rv == 0) {
        rv = nng_http_handler_set_data(h, a, NULL);
    }
    if (rv == 0) {
        rv = nng_http_server_add_handler(srv, h); /* takes h on success */
    }
    if (rv != 0 && h != NULL) {
        nng_http_handler_free(h);
    }
    return rv;
}

base_err svc_http_api_open(struct nng_http_server *srv, svc_dispatch *d, size_t max_body_bytes,
                           svc_http_api **out, char *errbuf, size_t errlen)
{
    svc_http_api *a = base_alloc_zero(1, sizeof(*a));
    int rv = 0;
    if (a == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return BASE_ENOMEM;
    }
    pthread_mutex_init(&a->lk, NULL);
    (void)base_cond_init_mono(&a->idle);
    a->refs = 1;
    a->disp = d;
    a->max_body = max_body_bytes;
    static const struct {
        const char *path;
        bool tree;
        void (*cb)(nng_aio *);
    } routes[] = {
        {PREFIX "decide", false, on_decide},     {PREFIX "log", false, on_log},
        {PREFIX "feedback", false, on_feedback}, {PREFIX "activate", false, on_activate},
        {PREFIX "explain", true, on_explain},    {PREFIX "stats", false, on_stats},
        {PREFIX "policies", true, on_policies},
    };
    for (size_t i = 0; rv == 0 && i < sizeof(routes) / sizeof(routes[0]); i++) {
        rv = add(srv, a, routes[i].path, routes[i].tree, routes[i].cb);
    }
    if (rv != 0) {
        snprintf(errbuf, errlen, "cannot add the /api/v1 routes: %s", nng_strerror(rv));
        /* Handlers already added point at @a: keep it (a few bytes) for the server's life. */
        return rv == NNG_ENOMEM ? BASE_ENOMEM : BASE_EINVAL;
    }
    *out = a;
    return BASE_OK;
}

void svc_http_api_close(svc_http_api *a)
{
    if (a == NULL) {
        return;
    }
    struct timespec until = base_mono_deadline((uint64_t)SVC_HTTP_API_DRAIN_MS * 1000000u);
    pthread_mutex_lock(&a->lk);
    a->closed = true;
    int rv = 0;
    while (a->busy > 0 || (a->waiting > 0 && rv == 0)) {
        rv = a->busy > 0 ? pthread_cond_wait(&a->idle, &a->lk)
                         : pthread_cond_timedwait(&a->idle, &a->lk, &until);
    }
    pthread_mutex_unlock(&a->lk);
}

void svc_http_api_release(svc_http_api *a)
{
    if (a != NULL) {
        api_unref(a);
    }
}
