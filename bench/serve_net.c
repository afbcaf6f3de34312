#include "bench/serve_net.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "proto/reply.h"
#include "proto/request.h"

#define OUTCOME_ID_MAX 64   /* bytes of an outcome id, NUL included */
#define DRAIN_EXTRA_MS 2000 /* past the last timeout, slots are closed */
#define PACE_EARLY_NS 20000 /* a paced operation starts at most this early */

/* Where a slot's operation is. */
enum phase { PH_SEND_DECIDE, PH_RECV_DECIDE, PH_SEND_FB, PH_RECV_FB, PH_SEND_PUSH, PH_WAIT };

struct load;

/* One client: a socket with one connection and one operation outstanding. */
typedef struct slot {
    struct load *ld;
    uint32_t idx;
    nng_socket sock;
    bool sock_open;
    nng_aio *aio;
    enum phase phase;
    bool running;                /* guarded by ld->mu: set at start, cleared once by finish() */
    uint64_t t0_ns;              /* start of the current operation */
    uint64_t next_ns, period_ns; /* paced: when the next operation is due, and the step */
    bool waiting;                /* guarded by ld->mu: paced and early; the pacer begins it */
    uint64_t seq;                /* operations begun: the outcome id's counter */
    base_buf fb;                 /* the feedback request being sent */
    proto_reply *reply;
    bench_lat lat;
    uint64_t done, sent, errors;
    char err[BENCH_ERRTEXT_MAX];
} slot;

typedef struct load {
    const bench_load_spec *spec;
    uint64_t measure_from_ns, end_ns;
    atomic_uint_fast64_t pushed; /* PUSH: messages begun, against push_max */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t running; /* guarded by mu */
    slot *slots;
    /*
     * Paced runs: a thread of our own starts each early slot at its time (a timed wait on
     * the monotonic clock). Not nng_sleep_aio(): nng 1.5.2's timers step in milliseconds,
     * and its expire thread spins through the last millisecond of each one, a core's worth
     * of CPU taken from what is measured.
     */
    pthread_cond_t pace_cv; /* with mu: a slot became waiting, or pacer_stop */
    pthread_t pacer;
    bool have_pacer;
    bool pacer_stop; /* guarded by mu */
} load;

static void finish(slot *s)
{
    pthread_mutex_lock(&s->ld->mu);
    if (s->running) {
        s->running = false;
        s->ld->running--;
        pthread_cond_broadcast(&s->ld->cv);
    }
    pthread_mutex_unlock(&s->ld->mu);
}

static void note_error(slot *s, const char *what, const char *detail)
{
    if (s->errors++ == 0) {
        snprintf(s->err, sizeof(s->err), "%s: %.120s", what, detail); /* cut */
    }
}

/* Send @len bytes of @buf on the slot's aio. */
static bool send_bytes(slot *s, const uint8_t *buf, size_t len)
{
    nng_msg *m = NULL;
    if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, buf, len) != 0) {
        nng_msg_free(m);
        note_error(s, "send", "out of memory");
        return false;
    }
    nng_aio_set_msg(s->aio, m);
    nng_aio_set_timeout(s->aio, s->ld->spec->timeout_ms);
    nng_send_aio(s->sock, s->aio);
    return true;
}

static bool encode_feedback(slot *s, const char *event_id)
{
    const bench_load_spec *sp = s->ld->spec;
    char oid[OUTCOME_ID_MAX];
    snprintf(oid, sizeof(oid), "%s-%" PRIu32 "-%" PRIu64, sp->tag, s->idx, s->seq);
    proto_feedback_req q = {.policy = sp->policy,
                            .event_id = event_id,
                            .signal = sp->signal,
                            .value = 1.0,
                            .outcome_id = oid};
    base_buf_reset(&s->fb);
    if (proto_encode_feedback(&s->fb, &q) != BASE_OK) {
        note_error(s, "feedback", "cannot encode");
        return false;
    }
    return true;
}

/* Begin the next operation, or stop the slot once the run is over. */
static void begin(slot *s)
{
    const bench_load_spec *sp = s->ld->spec;
    uint64_t now = base_mono_ns();
    if (now >= s->ld->end_ns) {
        finish(s);
        return;
    }
    s->t0_ns = now;
    if (s->period_ns > 0) {
        if (s->next_ns > now + PACE_EARLY_NS) {
            /* Early: the pacer begins it at its time (counted from the real start). */
            pthread_mutex_lock(&s->ld->mu);
            s->phase = PH_WAIT;
            s->waiting = true;
            pthread_cond_signal(&s->ld->pace_cv);
            pthread_mutex_unlock(&s->ld->mu);
            return;
        }
        /* Behind schedule: the operation counts from when it was due. */
        s->t0_ns = s->next_ns < now ? s->next_ns : now;
        s->next_ns += s->period_ns;
    }
    s->seq++;
    bool ok;
    if (sp->kind == BENCH_LOAD_PUSH) {
        if (sp->push_max > 0 && atomic_fetch_add(&s->ld->pushed, 1) >= sp->push_max) {
            finish(s);
            return;
        }
        uint64_t k = (s->seq * sp->inflight + s->idx) % sp->n_events;
        s->phase = PH_SEND_PUSH;
        ok = encode_feedback(s, sp->event_ids[k]) && send_bytes(s, s->fb.data, s->fb.len);
    } else {
        s->phase = PH_SEND_DECIDE;
        ok = send_bytes(s, sp->decide_req, sp->decide_len);
    }
    if (!ok) {
        finish(s); /* only out of memory gets here: stop this slot rather than spin */
    }
}

/* The operation that started at s->t0_ns completed now. */
static void complete(slot *s)
{
    uint64_t now = base_mono_ns();
    if (now >= s->ld->measure_from_ns && now < s->ld->end_ns) {
        s->done++;
        bench_lat_add(&s->lat, now - s->t0_ns);
    }
}

static void stop_pacer(load *ld)
{
    if (!ld->have_pacer) {
        return;
    }
    pthread_mutex_lock(&ld->mu);
    ld->pacer_stop = true;
    pthread_cond_signal(&ld->pace_cv);
    pthread_mutex_unlock(&ld->mu);
    pthread_join(ld->pacer, NULL);
    ld->have_pacer = false;
}

/* The pacer: begins each waiting slot at its next_ns, earliest first (see struct load). */
static void *pacer_main(void *arg)
{
    load *ld = arg;
    pthread_mutex_lock(&ld->mu);
    while (!ld->pacer_stop) {
        slot *due = NULL;
        for (uint32_t i = 0; i < ld->spec->inflight; i++) {
            slot *s = &ld->slots[i];
            if (s->waiting && (due == NULL || s->next_ns < due->next_ns)) {
                due = s;
            }
        }
        if (due == NULL) {
            pthread_cond_wait(&ld->pace_cv, &ld->mu);
            continue;
        }
        uint64_t at = due->next_ns - PACE_EARLY_NS;
        if (base_mono_ns() < at) {
            struct timespec ts = {(time_t)(at / 1000000000u), (long)(at % 1000000000u)};
            (void)pthread_cond_timedwait(&ld->pace_cv, &ld->mu, &ts); /* or an earlier one */
            continue;
        }
        due->waiting = false;
        pthread_mutex_unlock(&ld->mu);
        begin(due);
        pthread_mutex_lock(&ld->mu);
    }
    pthread_mutex_unlock(&ld->mu);
    return NULL;
}

/* A decoded reply; false (and an error noted) if it is not an ok reply. */
static bool take_reply(slot *s, nng_msg *m, const char *what)
{
    bool ok = proto_reply_decode(nng_msg_body(m), nng_msg_len(m), s->reply) == BASE_OK;
    nng_msg_free(m);
    if (!ok) {
        note_error(s, what, "undecodable reply");
    } else if (!s->reply->ok) {
        note_error(s, what, s->reply->error.message);
        ok = false;
    }
    return ok;
}

static void slot_cb(void *arg)
{
    slot *s = arg;
    const bench_load_spec *sp = s->ld->spec;
    int rv = nng_aio_result(s->aio);
    if (rv != 0) {
        if (s->phase == PH_SEND_DECIDE || s->phase == PH_SEND_FB || s->phase == PH_SEND_PUSH) {
            nng_msg_free(nng_aio_get_msg(s->aio)); /* a failed send leaves it with us */
            nng_aio_set_msg(s->aio, NULL);
        }
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
            finish(s);
            return;
        }
        note_error(s, "transport", nng_strerror(rv));
        begin(s);
        return;
    }
    switch (s->phase) {
    case PH_SEND_DECIDE:
        s->phase = PH_RECV_DECIDE;
        nng_recv_aio(s->sock, s->aio);
        return;
    case PH_SEND_FB:
        s->phase = PH_RECV_FB;
        nng_recv_aio(s->sock, s->aio);
        return;
    case PH_SEND_PUSH:
        s->sent++;
        complete(s);
        break;
    case PH_RECV_DECIDE:
        if (!take_reply(s, nng_aio_get_msg(s->aio), "decide")) {
            break;
        }
        if (sp->kind == BENCH_LOAD_DECIDE) {
            complete(s);
            break;
        }
        s->phase = PH_SEND_FB;
        if (!encode_feedback(s, s->reply->event_id) || !send_bytes(s, s->fb.data, s->fb.len)) {
            break;
        }
        return;
    case PH_RECV_FB:
        if (take_reply(s, nng_aio_get_msg(s->aio), "feedback")) {
            complete(s);
        }
        break;
    case PH_WAIT:
        break; /* a failed sleep: begin again below */
    }
    begin(s);
}

static base_err check_spec(const bench_load_spec *sp)
{
    bool ok = sp->url != NULL && sp->inflight >= 1 && sp->inflight <= BENCH_INFLIGHT_MAX &&
              sp->tag != NULL && sp->timeout_ms > 0;
    if (sp->kind == BENCH_LOAD_PUSH) {
        ok = ok && sp->event_ids != NULL && sp->n_events > 0;
    } else {
        ok = ok && sp->decide_req != NULL && sp->decide_len > 0;
    }
    if (sp->kind != BENCH_LOAD_DECIDE) {
        ok = ok && sp->policy != NULL && sp->signal != NULL && sp->rate_per_s == 0.0;
    }
    ok = ok && sp->rate_per_s >= 0.0 && sp->rate_per_s <= 1e7;
    return ok ? BASE_OK : BASE_EINVAL;
}

static base_err open_slot(load *ld, slot *s, uint32_t idx)
{
    const bench_load_spec *sp = ld->spec;
    s->ld = ld;
    s->idx = idx;
    base_buf_init(&s->fb, BENCH_MAX_MSG);
    s->reply = base_alloc(sizeof(*s->reply));
    if (s->reply == NULL || nng_aio_alloc(&s->aio, slot_cb, s) != 0) {
        return BASE_ENOMEM;
    }
    int rv = sp->kind == BENCH_LOAD_PUSH ? nng_push0_open(&s->sock) : nng_req0_open(&s->sock);
    if (rv != 0) {
        return BASE_EIO;
    }
    s->sock_open = true;
    (void)nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, BENCH_MAX_MSG); /* a bound only */
    /* Non-blocking: nng keeps dialling; the warm-up covers connecting. */
    rv = nng_dial(s->sock, sp->url, NULL, NNG_FLAG_NONBLOCK);
    return rv == 0 ? BASE_OK : rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP ? BASE_EINVAL : BASE_EIO;
}

static void close_slot(slot *s)
{
    if (s->sock_open) {
        nng_close(s->sock);
        s->sock_open = false;
    }
    if (s->aio != NULL) {
        nng_aio_stop(s->aio);
        nng_aio_free(s->aio);
        s->aio = NULL;
    }
    base_buf_fini(&s->fb);
    base_free(s->reply);
    s->reply = NULL;
    bench_lat_fini(&s->lat);
}

base_err bench_load_run(const bench_load_spec *spec, bench_result *out)
{
    base_err e = check_spec(spec);
    if (e != BASE_OK) {
        return e;
    }
    load ld = {.spec = spec};
    atomic_init(&ld.pushed, 0);
    pthread_mutex_init(&ld.mu, NULL);
    pthread_cond_init(&ld.cv, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* base_mono_ns()'s clock */
    pthread_cond_init(&ld.pace_cv, &ca);
    pthread_condattr_destroy(&ca);
    ld.slots = base_alloc_zero(spec->inflight, sizeof(*ld.slots));
    uint32_t n_open = 0;
    if (ld.slots == NULL) {
        e = BASE_ENOMEM;
        goto fail;
    }
    for (; n_open < spec->inflight; n_open++) {
        e = open_slot(&ld, &ld.slots[n_open], n_open);
        if (e != BASE_OK) {
            n_open++; /* half-built: closed below */
            goto fail;
        }
    }
    uint64_t start = base_mono_ns();
    ld.measure_from_ns = start + spec->warmup_ms * 1000000u;
    ld.end_ns = ld.measure_from_ns + spec->measure_ms * 1000000u;
    ld.running = spec->inflight;
    for (uint32_t i = 0; i < spec->inflight; i++) {
        slot *s = &ld.slots[i];
        s->running = true;
        if (spec->rate_per_s > 0.0) {
            s->period_ns = (uint64_t)((double)spec->inflight * 1e9 / spec->rate_per_s);
            s->next_ns = start + s->period_ns * i / spec->inflight; /* staggered */
        }
    }
    if (spec->rate_per_s > 0.0) {
        if (pthread_create(&ld.pacer, NULL, pacer_main, &ld) != 0) {
            e = BASE_ENOMEM;
            goto fail;
        }
        ld.have_pacer = true;
    }
    for (uint32_t i = 0; i < spec->inflight; i++) {
        pthread_mutex_lock(&ld.mu);
        bool stop = !ld.slots[i].running;
        pthread_mutex_unlock(&ld.mu);
        if (!stop) {
            begin(&ld.slots[i]);
        }
    }
    /* Wait for the slots to stop; past a last timeout, closing the sockets stops them. */
    struct timespec dl;
    uint64_t limit_ns = ld.end_ns + (uint64_t)(2 * spec->timeout_ms + DRAIN_EXTRA_MS) * 1000000u;
    clock_gettime(CLOCK_REALTIME, &dl);
    uint64_t wait_ns = limit_ns - start;
    dl.tv_sec += (time_t)(wait_ns / 1000000000u);
    dl.tv_nsec += (long)(wait_ns % 1000000000u);
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&ld.mu);
    while (ld.running > 0) {
        if (pthread_cond_timedwait(&ld.cv, &ld.mu, &dl) != 0) {
            break;
        }
    }
    pthread_mutex_unlock(&ld.mu);
    stop_pacer(&ld);
    for (uint32_t i = 0; i < n_open; i++) {
        if (ld.slots[i].sock_open) {
            nng_close(ld.slots[i].sock); /* aborts what is outstanding: ECLOSED */
            ld.slots[i].sock_open = false;
        }
        nng_aio_stop(ld.slots[i].aio);
    }
    bench_result r = {.seconds = (double)spec->measure_ms / 1000.0};
    bench_lat *lats = base_alloc_zero(n_open, sizeof(*lats));
    if (lats == NULL) {
        e = BASE_ENOMEM;
        goto fail;
    }
    for (uint32_t i = 0; i < n_open; i++) {
        const slot *s = &ld.slots[i];
        r.done += s->done;
        r.sent += s->sent;
        r.errors += s->errors;
        if (r.first_error[0] == '\0' && s->err[0] != '\0') {
            snprintf(r.first_error, sizeof(r.first_error), "%s", s->err);
        }
        lats[i] = s->lat;
    }
    r.per_s = r.seconds > 0 ? (double)r.done / r.seconds : 0.0;
    e = bench_lat_summarise(lats, n_open, &r);
    base_free(lats);
    if (e == BASE_OK) {
        *out = r;
    }
fail:
    stop_pacer(&ld);
    for (uint32_t i = 0; ld.slots != NULL && i < n_open; i++) {
        close_slot(&ld.slots[i]);
    }
    base_free(ld.slots);
    pthread_cond_destroy(&ld.cv);
    pthread_cond_destroy(&ld.pace_cv);
    pthread_mutex_destroy(&ld.mu);
    return e;
}

/* The echo server: one aio per REP context, receive -> fixed reply -> receive. */
typedef struct echo_ctx {
    struct bench_echo *e;
    nng_ctx ctx;
    nng_aio *aio;
    bool sending;
} echo_ctx;

struct bench_echo {
    nng_socket sock;
    bool sock_open;
    uint8_t *reply;
    size_t reply_len;
    uint32_t n_ctx;
    echo_ctx *ctx;
};

static void echo_cb(void *arg)
{
    echo_ctx *c = arg;
    int rv = nng_aio_result(c->aio);
    if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
        if (c->sending) {
            nng_msg_free(nng_aio_get_msg(c->aio));
        }
        return;
    }
    if (c->sending || rv != 0) {
        if (c->sending && rv != 0) {
            nng_msg_free(nng_aio_get_msg(c->aio)); /* not sent: still ours */
        }
        c->sending = false;
        nng_ctx_recv(c->ctx, c->aio);
        return;
    }
    nng_msg *m = nng_aio_get_msg(c->aio);
    /* Reuse the request's message for the reply: no allocation on the ceiling's path. */
    nng_msg_clear(m);
    if (nng_msg_append(m, c->e->reply, c->e->reply_len) != 0) {
        nng_msg_free(m);
        nng_ctx_recv(c->ctx, c->aio);
        return;
    }
    c->sending = true;
    nng_aio_set_msg(c->aio, m);
    nng_ctx_send(c->ctx, c->aio);
}

static void put_err(char *errbuf, size_t errlen, const char *what, const char *url, int rv)
{
    if (errbuf != NULL && errlen > 0) {
        snprintf(errbuf, errlen, "%s %s: %s", what, url, nng_strerror(rv));
    }
}

base_err bench_echo_open(const char *url, uint32_t contexts, const uint8_t *reply, size_t reply_len,
                         bench_echo **out, char *errbuf, size_t errlen)
{
    if (url == NULL || contexts == 0 || contexts > BENCH_INFLIGHT_MAX || reply == NULL ||
        reply_len == 0) {
        return BASE_EINVAL;
    }
    base_err e = BASE_ENOMEM;
    bench_echo *ec = base_alloc_zero(1, sizeof(*ec));
    if (ec == NULL) {
        goto fail;
    }
    ec->reply = base_alloc(reply_len);
    ec->ctx = base_alloc_zero(contexts, sizeof(*ec->ctx));
    if (ec->reply == NULL || ec->ctx == NULL) {
        goto fail;
    }
    memcpy(ec->reply, reply, reply_len);
    ec->reply_len = reply_len;
    int rv = nng_rep0_open(&ec->sock);
    if (rv != 0) {
        e = BASE_EIO;
        put_err(errbuf, errlen, "rep socket", url, rv);
        goto fail;
    }
    ec->sock_open = true;
    (void)nng_socket_set_size(ec->sock, NNG_OPT_RECVMAXSZ, BENCH_MAX_MSG); /* a bound only */
    for (; ec->n_ctx < contexts; ec->n_ctx++) {
        echo_ctx *c = &ec->ctx[ec->n_ctx];
        c->e = ec;
        if (nng_aio_alloc(&c->aio, echo_cb, c) != 0) {
            goto fail;
        }
        if (nng_ctx_open(&c->ctx, ec->sock) != 0) {
            nng_aio_free(c->aio);
            c->aio = NULL;
            goto fail;
        }
    }
    rv = nng_listen(ec->sock, url, NULL, 0);
    if (rv != 0) {
        e = rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP ? BASE_EINVAL : BASE_EIO;
        put_err(errbuf, errlen, "listen", url, rv);
        goto fail;
    }
    for (uint32_t i = 0; i < ec->n_ctx; i++) {
        nng_ctx_recv(ec->ctx[i].ctx, ec->ctx[i].aio);
    }
    *out = ec;
    return BASE_OK;
fail:
    bench_echo_close(ec);
    return e;
}

void bench_echo_close(bench_echo *ec)
{
    if (ec == NULL) {
        return;
    }
    if (ec->sock_open) {
        nng_close(ec->sock);
    }
    for (uint32_t i = 0; i < ec->n_ctx; i++) {
        nng_aio_stop(ec->ctx[i].aio);
        nng_aio_free(ec->ctx[i].aio);
    }
    base_free(ec->ctx);
    base_free(ec->reply);
    base_free(ec);
}

struct bench_sink {
    nng_socket sock;
    bool sock_open;
    nng_aio *aio;
    atomic_uint_fast64_t n;
};

static void sink_cb(void *arg)
{
    bench_sink *s = arg;
    int rv = nng_aio_result(s->aio);
    if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
        return;
    }
    if (rv == 0) {
        nng_msg_free(nng_aio_get_msg(s->aio));
        atomic_fetch_add(&s->n, 1);
    }
    nng_recv_aio(s->sock, s->aio);
}

base_err bench_sink_open(const char *url, bench_sink **out, char *errbuf, size_t errlen)
{
    if (url == NULL) {
        return BASE_EINVAL;
    }
    base_err e = BASE_ENOMEM;
    bench_sink *s = base_alloc_zero(1, sizeof(*s));
    if (s == NULL) {
        goto fail;
    }
    atomic_init(&s->n, 0);
    if (nng_aio_alloc(&s->aio, sink_cb, s) != 0) {
        goto fail;
    }
    int rv = nng_pull0_open(&s->sock);
    if (rv != 0) {
        e = BASE_EIO;
        put_err(errbuf, errlen, "pull socket", url, rv);
        goto fail;
    }
    s->sock_open = true;
    (void)nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, BENCH_MAX_MSG); /* a bound only */
    (void)nng_socket_set_int(s->sock, NNG_OPT_RECVBUF, 1024); /* as rlfeedd: service/net.c */
    rv = nng_listen(s->sock, url, NULL, 0);
    if (rv != 0) {
        e = rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP ? BASE_EINVAL : BASE_EIO;
        put_err(errbuf, errlen, "listen", url, rv);
        goto fail;
    }
    nng_recv_aio(s->sock, s->aio);
    *out = s;
    return BASE_OK;
fail:
    bench_sink_close(s);
    return e;
}

uint64_t bench_sink_count(bench_sink *s)
{
    return atomic_load(&s->n);
}

void bench_sink_close(bench_sink *s)
{
    if (s == NULL) {
        return;
    }
    if (s->sock_open) {
        nng_close(s->sock);
    }
    if (s->aio != NULL) {
        nng_aio_stop(s->aio);
        nng_aio_free(s->aio);
    }
    base_free(s);
}

void bench_net_fini(void)
{
    nng_fini();
}
