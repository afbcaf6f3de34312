#ifndef SERVICE_DISPATCH_H
#define SERVICE_DISPATCH_H

/*
 * The one path every request takes, whatever carried it: the nng REQ/REP and PULL sockets
 * (service/net.c) and the HTTP API (service/http_api.c) hand their msgpack bytes to
 * svc_dispatch_run(), so validation, error codes and the rejection counters are the same
 * for all of them (docs/protocol.md sections 8 and 11).
 *
 *   bytes -> proto_request_decode() -- fails --> counted under its code, error reply
 *         -> svc_auth_check() ------- refused --> counted under its code (auth = on only)
 *         -> engine not published yet ---------> "starting": health answers, others
 *                                                 `unavailable` (counted apart)
 *         -> op not taken by this carrier -----> counted as op_not_allowed (PULL)
 *         -> svc_engine_handle()
 *
 * States: STARTING -> SERVING [svc_dispatch_set_engine]. The engine is published once,
 * after every policy is restored, and must outlive every call that can still be running
 * (the daemon closes HTTP and the sockets before it frees the engine).
 *
 * Threads: svc_dispatch_run() and svc_dispatch_reject() run on any thread, concurrently;
 * they never block.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/errors.h"
#include "service/auth.h"
#include "service/engine.h"

typedef struct svc_dispatch {
    _Atomic(svc_engine *) eng;             /* NULL while starting */
    svc_auth *auth;                        /* borrowed; NULL or disabled: no proofs asked */
    bool manual_clock;                     /* --manual-clock: the `clock` op is known */
    atomic_uint_fast64_t refused_starting; /* requests answered before the engine was up */
    /* refusals made before the engine was up, by code: handed to its `rejected` then */
    atomic_uint_fast64_t early[PROTO_E_COUNT];
} svc_dispatch;

/*
 * A dispatcher in state STARTING (caller's storage; nothing to release). @manual_clock:
 * the daemon runs on the manual clock, so `clock` is an op it knows while starting too.
 */
void svc_dispatch_init(svc_dispatch *d, bool manual_clock);

/* Require proofs checked by @a (borrowed, outlives every call); before any request. */
void svc_dispatch_set_auth(svc_dispatch *d, svc_auth *a);

/*
 * Publish @e (borrowed; it must outlive every later call): STARTING -> SERVING. The
 * refusals counted while starting go into @e's `rejected` counters.
 */
void svc_dispatch_set_engine(svc_dispatch *d, svc_engine *e);

/* Requests answered "starting" so far (the ready log line). */
uint64_t svc_dispatch_refused_starting(svc_dispatch *d);

/*
 * svc_dispatch_run() - decode the msgpack request @buf and run it, answering through @r
 * (exactly once; r->send NULL: nobody waits, as on PULL, and nothing is answered).
 * @buf: @len bytes, borrowed for the call   @r: copied; r->t0_ns the time the request
 *   arrived (base_mono_ns()), or 0
 * @only_op: -1 for any op; else the one op this carrier takes (PROTO_OP_FEEDBACK on PULL):
 *   another decoded op is counted as op_not_allowed (and answered so, if @r has a send)
 *   and not carried out.
 */
void svc_dispatch_run(svc_dispatch *d, const uint8_t *buf, size_t len, const svc_replier *r,
                      int only_op);

/*
 * svc_dispatch_pull_ready() - whether a fire-and-forget message (PULL) may be taken now: the
 * engine is published and has room to store it beside the @pending messages taken and not
 * yet handled (svc_engine_pull_room()). The PULL socket takes its next message only then,
 * so a sender meets back-pressure (its messages wait in the sockets) rather than refusals.
 * @d is a svc_dispatch. Any thread.
 */
bool svc_dispatch_pull_ready(void *d, size_t pending);

/*
 * svc_dispatch_run_http() - svc_dispatch_run() for the HTTP API: the proof is @http's
 * Authorization header (the msgpack "auth" entry, if any, is not read).
 */
void svc_dispatch_run_http(svc_dispatch *d, const uint8_t *buf, size_t len, const svc_replier *r,
                           const svc_auth_http *http);

/*
 * svc_dispatch_reject() - refuse a request before it could be decoded (the HTTP API's body
 * and JSON checks): count it under @code, as svc_dispatch_run() counts a decode failure
 * (once the engine is published; refusals while starting are not counted), and answer
 * {"ok":false, "error":{"code":@code, "message":@message}} through @r.
 */
void svc_dispatch_reject(svc_dispatch *d, const svc_replier *r, proto_errcode code,
                         const char *message);

#endif
