#include "service/dispatch.h"

#include "base/buf.h"
#include "proto/reply.h"
#include "proto/request.h"

void svc_dispatch_init(svc_dispatch *d, bool manual_clock)
{
    d->manual_clock = manual_clock;
    atomic_init(&d->eng, NULL);
    atomic_init(&d->refused_starting, 0);
    for (size_t i = 0; i < PROTO_E_COUNT; i++) {
        atomic_init(&d->early[i], 0);
    }
}

/* Hand the refusals of @code counted while starting to @e's `rejected`. */
static void hand_over(svc_dispatch *d, svc_engine *e, proto_errcode code)
{
    for (uint64_t n = atomic_exchange(&d->early[code], 0); n > 0; n--) {
        svc_engine_count_reject(e, code);
    }
}

/*
 * Count a refusal under @code: in the engine's `rejected`, or while starting in early[],
 * which svc_dispatch_set_engine() hands over. A refusal counted in early[] just as the
 * engine is published is handed over by whichever of the two sees the other's step.
 */
static void count_reject(svc_dispatch *d, proto_errcode code)
{
    if (code <= PROTO_E_NONE || code >= PROTO_E_COUNT) {
        return;
    }
    svc_engine *e = atomic_load(&d->eng);
    if (e != NULL) {
        svc_engine_count_reject(e, code);
        return;
    }
    atomic_fetch_add(&d->early[code], 1);
    e = atomic_load(&d->eng);
    if (e != NULL) {
        hand_over(d, e, code);
    }
}

void svc_dispatch_set_auth(svc_dispatch *d, svc_auth *a)
{
    d->auth = a;
}

void svc_dispatch_set_engine(svc_dispatch *d, svc_engine *e)
{
    atomic_store(&d->eng, e);
    for (size_t code = 1; e != NULL && code < PROTO_E_COUNT; code++) {
        hand_over(d, e, (proto_errcode)code);
    }
}

uint64_t svc_dispatch_refused_starting(svc_dispatch *d)
{
    return atomic_load(&d->refused_starting);
}

bool svc_dispatch_pull_ready(void *arg, size_t pending)
{
    svc_dispatch *d = arg;
    svc_engine *e = atomic_load(&d->eng);
    return e != NULL && svc_engine_pull_room(e, pending);
}

/* An error reply, sent as it is: decode failures are not timed (docs/operations.md). */
static void reply_error(const svc_replier *r, proto_errcode code, const char *message)
{
    base_buf b;
    base_buf_init(&b, 4096);
    if (proto_reply_error(&b, code, message) == BASE_OK) {
        r->send(r->arg, b.data, b.len);
    } else {
        r->send(r->arg, (const uint8_t *)"", 0);
    }
    base_buf_fini(&b);
}

/* Before the engine is up: health says so, everything else is retryable. */
static void answer_starting(svc_dispatch *d, const proto_request *req, const svc_replier *r)
{
    if (req->op == PROTO_OP_CLOCK && !d->manual_clock) {
        /* Not retryable: refused as the engine refuses it once up. */
        count_reject(d, PROTO_E_UNKNOWN_OP);
        if (r->send != NULL) {
            reply_error(r, PROTO_E_UNKNOWN_OP, SVC_CLOCK_UNKNOWN);
        }
        return;
    }
    atomic_fetch_add(&d->refused_starting, 1);
    if (r->send == NULL) {
        return; /* nobody waits (the PULL socket waits for svc_dispatch_pull_ready() instead) */
    }
    if (req->op == PROTO_OP_HEALTH) {
        static const proto_health starting = {.status = PROTO_HEALTH_STARTING,
                                              .redis = PROTO_REDIS_UNKNOWN};
        base_buf b;
        base_buf_init(&b, 256);
        if (proto_reply_health(&b, &starting) == BASE_OK) {
            r->send(r->arg, b.data, b.len);
        } else {
            r->send(r->arg, (const uint8_t *)"", 0);
        }
        base_buf_fini(&b);
        return;
    }
    count_reject(d, PROTO_E_UNAVAILABLE);
    reply_error(r, PROTO_E_UNAVAILABLE, "starting up: rebuilding state from the log; retry");
}

static void run(svc_dispatch *d, const uint8_t *buf, size_t len, const svc_replier *r, int only_op,
                const svc_auth_http *http)
{
    svc_engine *e = atomic_load(&d->eng);
    proto_request req;
    proto_error err;
    proto_errcode refused = PROTO_E_NONE;
    if (proto_request_decode_reuse(buf, len, &req, &err) != BASE_OK) {
        svc_dispatch_reject(d, r, err.code, err.message);
        return;
    }
    req.limited = false;
    if (svc_auth_enabled(d->auth)) {
        /* While starting nothing is carried out (health says so): proofs stay unused. */
        bool use = e != NULL;
        refused = svc_auth_check(d->auth, &req, buf, len, http, req.op, req.policy, use, &err,
                                 &req.limited);
    }
    if (refused != PROTO_E_NONE) {
        svc_dispatch_reject(d, r, refused, err.message);
    } else if (e == NULL) {
        answer_starting(d, &req, r);
    } else if (only_op >= 0 && (int)req.op != only_op) {
        /* PULL is for fire-and-forget feedback only; nobody could read another op's reply. */
        svc_dispatch_reject(d, r, PROTO_E_OP_NOT_ALLOWED, "op not taken here");
    } else {
        svc_engine_pseudonymize(e, &req); /* the raw ids go no further than this */
        svc_engine_handle(e, &req, r);
    }
    proto_request_fini(&req);
}

void svc_dispatch_run(svc_dispatch *d, const uint8_t *buf, size_t len, const svc_replier *r,
                      int only_op)
{
    run(d, buf, len, r, only_op, NULL);
}

void svc_dispatch_run_http(svc_dispatch *d, const uint8_t *buf, size_t len, const svc_replier *r,
                           const svc_auth_http *http)
{
    run(d, buf, len, r, -1, http);
}

void svc_dispatch_reject(svc_dispatch *d, const svc_replier *r, proto_errcode code,
                         const char *message)
{
    count_reject(d, code);
    if (r->send != NULL) {
        reply_error(r, code, message);
    }
}
