#include "service/net.h"

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/reqrep0/rep.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <limits.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/queue.h"
#include "base/thread.h"
#include "service/tls.h"

#define CLOSE_WAIT_MS 2000   /* longest close waits for requests being handled */
#define SOCKET_CLOSE_MS 2000 /* longest close waits for nng to close the sockets */
#define PULL_WAIT_MS 1       /* between asks whether a PULL message may be taken */
#define PULL_DRAIN_MAX 64    /* PULL messages taken per receive callback */
#define PULL_WORKERS 2       /* threads handling PULL messages, a connection's on one */
#define PULL_QUEUE 256       /* PULL messages waiting for each of them */
/*
 * What REQ adds in front of each request: its 4-byte request id. NNG_OPT_RECVMAXSZ caps the
 * message as the transport carries it, header included, so a REP socket allows this much
 * more, and a request body of exactly max_message_bytes is taken (PUSH adds nothing).
 */
#define REQ_HEADER_BYTES 4

enum slot_state { SLOT_RECV, SLOT_HANDLE, SLOT_SEND };

struct svc_net_reply {
    svc_net *net;
    nng_ctx ctx;
    nng_aio *aio;
    enum slot_state state;
    size_t sock;      /* index of the REP socket this context belongs to */
    uint32_t pipe_id; /* connection of the request held (0: unknown) */
    bool waiting;     /* a reply to pipe_id is being sent; guarded by net->wait_lk */
};

/* A thread handling the PULL messages of the connections hashed to it, in their order. */
typedef struct pull_worker {
    svc_net *net;
    base_queue *q;       /* nng_msg * */
    atomic_size_t depth; /* taken for it, not yet handled */
    pthread_t thr;
    bool started;
} pull_worker;

struct svc_net {
    /*
     * Replies may come from any thread (the writer acknowledges feedback);
     * closing waits for the ones in progress and makes later ones no-ops,
     * so no nng_ctx_send() ever races nng_close() (nng 1.5.2 can panic on
     * a context of a socket being torn down).
     */
    pthread_rwlock_t close_lk;
    atomic_bool closed; /* written under close_lk; the request path reads it without */
    /*
     * Requests being handled (the handler running on an nng callback thread): close waits
     * for them, so nothing a handler submits to (the writer, the forwarder) is freed under
     * it.
     */
    atomic_uint busy;
    svc_net_handler handler;
    void *arg;
    nng_socket *rep; /* [n_rep] */
    size_t n_rep;
    svc_net_reply *slots; /* [n_slots]; those of rep[i] at [i * contexts, (i + 1) * contexts) */
    size_t n_slots;
    uint32_t contexts;
    /*
     * Replies waiting for their connection to take them (see net.h): a
     * connection may hold `share` contexts for up to reply_ms each, any
     * more for up to over_share_ms each.
     */
    pthread_mutex_t wait_lk;
    uint32_t share;
    nng_duration reply_ms;
    nng_duration over_share_ms;
    uint32_t last_dropped_pipe; /* guarded by wait_lk */
    nng_socket pull;
    bool have_pull;
    nng_aio *pull_aio;
    nng_aio *pull_now; /* no callback: pull_cb's non-blocking receives (pull_take_now()) */
    bool (*pull_ready)(void *arg, size_t pending); /* NULL: always */
    /*
     * While pull_ready says no, the waiter thread asks again every PULL_WAIT_MS. A thread
     * and not nng_sleep_aio(): nng 1.5.2's expire thread spins through the last
     * millisecond of every timer (it expires an aio only once the clock is past it).
     */
    pthread_t pull_thr;
    bool have_pull_thr;
    pthread_mutex_t pull_lk;
    pthread_cond_t pull_cv;
    pull_worker pull_w[PULL_WORKERS];
    bool pull_paused; /* guarded by pull_lk: the waiter owns the next receive */
    bool pull_stop;   /* guarded by pull_lk */
    bool stuck;       /* nng_close() did not return within SOCKET_CLOSE_MS (close_sockets()) */
};

/* The sockets close_sockets() closes on a thread of its own. */
typedef struct closing {
    atomic_bool done;
    size_t n;
    nng_socket socks[];
} closing;

static void *close_thread(void *arg)
{
    base_thread_name("rlf-net-close");
    closing *c = arg;
    for (size_t i = 0; i < c->n; i++) {
        nng_close(c->socks[i]);
    }
    atomic_store(&c->done, true); /* the last touch of c: the closer frees it */
    return NULL;
}

/*
 * nng_close() each REP socket and the PULL socket, waiting at most SOCKET_CLOSE_MS. nng
 * 1.5.2 can wait for ever there: a connection closed while its receive callback is between
 * a message's header and its body (sp/transport/ipc/ipc.c, ipc_pipe_recv_cb()) resubmits
 * the stopped receive, which nni_aio_begin() then drops without a callback, so the pipe's
 * teardown (pipe_destroy(), on nng's only reaper thread) waits for it, and nng_close() for
 * the pipe. Then the thread is left behind, n->stuck is set, and the shutdown goes on: it
 * still has records to store and spill, and nothing reads the sockets any more.
 */
static void close_sockets(svc_net *n)
{
    size_t count = n->n_rep + (n->have_pull ? 1 : 0);
    closing *c = base_alloc(sizeof(*c) + count * sizeof(nng_socket));
    pthread_t t;
    if (c != NULL) {
        atomic_init(&c->done, false);
        c->n = 0;
        for (size_t i = 0; i < n->n_rep; i++) {
            c->socks[c->n++] = n->rep[i];
        }
        if (n->have_pull) {
            c->socks[c->n++] = n->pull;
        }
    }
    if (c == NULL || pthread_create(&t, NULL, close_thread, c) != 0) {
        if (c != NULL) {
            (void)close_thread(c); /* no thread: close here, unbounded */
        } else {
            for (size_t i = 0; i < n->n_rep; i++) {
                nng_close(n->rep[i]);
            }
            if (n->have_pull) {
                nng_close(n->pull);
            }
        }
        base_free(c);
        return;
    }
    uint64_t deadline = base_mono_ns() + (uint64_t)SOCKET_CLOSE_MS * 1000000u;
    while (!atomic_load(&c->done) && base_mono_ns() < deadline) {
        struct timespec ts = {0, 1000000L};
        (void)nanosleep(&ts, NULL);
    }
    if (atomic_load(&c->done)) {
        (void)pthread_join(t, NULL);
        base_free(c);
        return;
    }
    (void)pthread_detach(t); /* it keeps c: both end with the process */
    n->stuck = true;
    base_log(BASE_LOG_WARN,
             "shutdown: nng did not close the sockets within %d ms (a connection stuck in "
             "nng 1.5.2's teardown); going on without them",
             SOCKET_CLOSE_MS);
}

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
    case NNG_ETIMEDOUT:
        return BASE_ETIMEDOUT;
    case NNG_ECLOSED:
        return BASE_ECLOSED;
    default:
        return BASE_EIO;
    }
}

/*
 * Errors that mean "shutting down": the socket was closed, or nng_aio_stop()
 * cancelled the operation. Starting another operation then would outlive
 * the aio (svc_net_free() frees it right after stopping it).
 */
static bool stopping(int rv)
{
    return rv == NNG_ECLOSED || rv == NNG_ECANCELED;
}

static void reply_locked(svc_net_reply *s, const uint8_t *buf, size_t len);

/* Back to receiving; a receive waits as long as it takes. */
static void recv_next(svc_net_reply *s)
{
    s->state = SLOT_RECV;
    nng_aio_set_timeout(s->aio, NNG_DURATION_INFINITE);
    nng_ctx_recv(s->ctx, s->aio);
}

/*
 * Mark @s as waiting to send to its connection; how long the send may wait:
 * reply_ms, or over_share_ms if that connection already holds its share of
 * this socket's contexts with replies it has not taken.
 */
static nng_duration wait_begin(svc_net_reply *s)
{
    svc_net *n = s->net;
    uint32_t held = 0;
    pthread_mutex_lock(&n->wait_lk);
    const svc_net_reply *first = &n->slots[s->sock * n->contexts];
    for (uint32_t k = 0; k < n->contexts && s->pipe_id != 0; k++) {
        held += first[k].waiting && first[k].pipe_id == s->pipe_id;
    }
    s->waiting = true;
    pthread_mutex_unlock(&n->wait_lk);
    return held >= n->share ? n->over_share_ms : n->reply_ms;
}

static void wait_end(svc_net_reply *s)
{
    pthread_mutex_lock(&s->net->wait_lk);
    s->waiting = false;
    pthread_mutex_unlock(&s->net->wait_lk);
}

/*
 * A reply waited longer than allowed and was dropped: its peer sends
 * requests but does not read. Logged once per connection in a row, so a
 * flood of such replies is one line.
 *
 * The connection is deliberately left open. Closing it from here
 * (nng_pipe_close()) while the peer is still sending races nng 1.5.2's ipc
 * receive path: if the pipe's transport receive has just completed,
 * ipc_pipe_recv_cb() resubmits on an aio that the close has stopped, no
 * callback ever follows, and the reaper thread then waits forever in
 * pipe_destroy() (every later connection leaks, nng_close() hangs). With
 * such a close, test_slow_peer's daemon hung at shutdown in 7 of 126 runs
 * under load; without it, in none of 36 (docs/architecture.md).
 */
static void reply_dropped(svc_net_reply *s)
{
    svc_net *n = s->net;
    pthread_mutex_lock(&n->wait_lk);
    bool first = s->pipe_id != n->last_dropped_pipe;
    n->last_dropped_pipe = s->pipe_id;
    pthread_mutex_unlock(&n->wait_lk);
    if (first) {
        base_log(BASE_LOG_WARN,
                 "dropped a reply to connection %u: not taken in time (the peer is not "
                 "reading replies)",
                 (unsigned)s->pipe_id);
    }
}

static void slot_cb(void *arg)
{
    svc_net_reply *s = arg;
    int rv = nng_aio_result(s->aio);
    switch (s->state) {
    case SLOT_RECV: {
        if (rv != 0) {
            if (stopping(rv)) {
                return;
            }
            nng_ctx_recv(s->ctx, s->aio); /* a transient error: keep serving */
            return;
        }
        nng_msg *m = nng_aio_get_msg(s->aio);
        s->state = SLOT_HANDLE;
        s->pipe_id = nng_msg_get_pipe(m).id;
        atomic_fetch_add(&s->net->busy, 1);
        /*
         * After close nothing is handled: a socket whose nng_close() never came (an earlier
         * one wedged close_sockets()) still receives, and what the handler uses goes away.
         * busy is raised first, so either close sees it and waits, or this sees closed.
         */
        if (atomic_load(&s->net->closed)) {
            atomic_fetch_sub(&s->net->busy, 1);
            nng_msg_free(m);
            return;
        }
        s->net->handler(s->net->arg, nng_msg_body(m), nng_msg_len(m), s);
        atomic_fetch_sub(&s->net->busy, 1);
        nng_msg_free(m);
        return;
    }
    case SLOT_SEND:
        wait_end(s);
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(s->aio)); /* not sent: still ours */
            if (stopping(rv)) {
                return;
            }
            if (rv == NNG_ETIMEDOUT) {
                reply_dropped(s);
            }
        }
        recv_next(s);
        return;
    case SLOT_HANDLE:
        return;
    }
}

void svc_net_reply_send(svc_net_reply *s, const uint8_t *buf, size_t len)
{
    pthread_rwlock_rdlock(&s->net->close_lk);
    if (atomic_load(&s->net->closed)) {
        pthread_rwlock_unlock(&s->net->close_lk);
        return; /* shutting down: the client's REQ times out and retries elsewhere */
    }
    reply_locked(s, buf, len);
    pthread_rwlock_unlock(&s->net->close_lk);
}

static void reply_locked(svc_net_reply *s, const uint8_t *buf, size_t len)
{
    nng_msg *m = NULL;
    if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, buf, len) != 0) {
        /*
         * Out of memory: the request cannot be answered. Return the context
         * to receiving; the client's REQ times out and retries.
         */
        nng_msg_free(m);
        recv_next(s);
        return;
    }
    s->state = SLOT_SEND;
    nng_aio_set_timeout(s->aio, wait_begin(s));
    nng_aio_set_msg(s->aio, m);
    nng_ctx_send(s->ctx, s->aio);
}

/*
 * Take the next PULL message once there is room for it; until then nothing is received and
 * messages wait in the connections (nng's pull0 reads one message per connection ahead, then
 * the kernel's buffers) and in the senders, so a sender is slowed down rather than refused.
 * After close the receive fails at once.
 *
 * One receive at a time takes the messages, in the order each connection delivers them, and
 * hands each to the worker its connection hashes to: a connection's messages are handled in
 * order, different connections' on PULL_WORKERS threads at once. Taking stays the only
 * serial step, and a cheap one.
 */
typedef enum pull_state { PULL_TAKE, PULL_WAIT, PULL_CLOSED } pull_state;

/* Messages taken and not yet handled; whether every worker has room for one more. */
static size_t pull_pending(svc_net *n, bool *room)
{
    size_t sum = 0;
    *room = true;
    for (size_t k = 0; k < PULL_WORKERS; k++) {
        size_t d = atomic_load(&n->pull_w[k].depth);
        sum += d;
        *room = *room && d < PULL_QUEUE;
    }
    return sum;
}

/* Whether the next PULL message may be taken now. Never asks once closed (arg may be gone). */
static pull_state pull_may_take(svc_net *n)
{
    atomic_fetch_add(&n->busy, 1); /* so close waits for the ask */
    pthread_rwlock_rdlock(&n->close_lk);
    bool closed = atomic_load(&n->closed);
    pthread_rwlock_unlock(&n->close_lk);
    bool room = false;
    size_t pending = pull_pending(n, &room);
    bool wait = !closed && (!room || (n->pull_ready != NULL && !n->pull_ready(n->arg, pending)));
    atomic_fetch_sub(&n->busy, 1);
    return closed ? PULL_CLOSED : wait ? PULL_WAIT : PULL_TAKE;
}

/*
 * Hand a taken message to its connection's worker. The receive path is the only producer and
 * asked pull_may_take() first, so the queue has room; it refuses only once closed, when the
 * message is lost like those still in the sockets.
 */
static void pull_dispatch(svc_net *n, nng_msg *m)
{
    /*
     * nng numbers pipes from one counter shared with the REP sockets, so a client opening a
     * REQ and then a PUSH connection gives every PUSH pipe the same parity: mix the bits.
     */
    uint32_t pipe = (uint32_t)nng_pipe_id(nng_msg_get_pipe(m));
    uint32_t mixed = pipe * 0x9E3779B1u;
    pull_worker *w = &n->pull_w[((uint64_t)mixed * PULL_WORKERS) >> 32];
    atomic_fetch_add(&w->depth, 1);
    if (base_queue_push(w->q, m) != BASE_OK) {
        atomic_fetch_sub(&w->depth, 1);
        nng_msg_free(m);
    }
}

static void *pull_worker_main(void *arg)
{
    base_thread_name("rlf-pull");
    pull_worker *w = arg;
    svc_net *n = w->net;
    void *items[64];
    size_t got = 0;
    while (base_queue_pop_batch(w->q, items, 64, -1, &got) == BASE_OK) {
        for (size_t k = 0; k < got; k++) {
            nng_msg *m = items[k];
            atomic_fetch_add(&n->busy, 1);
            n->handler(n->arg, nng_msg_body(m), nng_msg_len(m), NULL);
            atomic_fetch_sub(&n->busy, 1);
            nng_msg_free(m);
            atomic_fetch_sub(&w->depth, 1);
        }
    }
    return NULL; /* closed and drained */
}

static void pull_next(svc_net *n)
{
    switch (pull_may_take(n)) {
    case PULL_CLOSED:
        return;
    case PULL_WAIT:
        pthread_mutex_lock(&n->pull_lk);
        n->pull_paused = true;
        pthread_cond_signal(&n->pull_cv);
        pthread_mutex_unlock(&n->pull_lk);
        return;
    case PULL_TAKE:
        nng_recv_aio(n->pull, n->pull_aio);
        return;
    }
}

static void *pull_waiter(void *arg)
{
    base_thread_name("rlf-pull-wait");
    svc_net *n = arg;
    pthread_mutex_lock(&n->pull_lk);
    for (;;) {
        while (!n->pull_paused && !n->pull_stop) {
            pthread_cond_wait(&n->pull_cv, &n->pull_lk);
        }
        if (n->pull_stop) {
            break;
        }
        pthread_mutex_unlock(&n->pull_lk);
        struct timespec ts = {0, PULL_WAIT_MS * 1000000L};
        (void)nanosleep(&ts, NULL);
        pthread_mutex_lock(&n->pull_lk);
        if (n->pull_stop) {
            break;
        }
        n->pull_paused = false;
        pthread_mutex_unlock(&n->pull_lk);
        pull_next(n); /* may pause again */
        pthread_mutex_lock(&n->pull_lk);
    }
    pthread_mutex_unlock(&n->pull_lk);
    return NULL;
}

/*
 * The next message a connection already delivered, or NULL: nng_recvmsg() with
 * NNG_FLAG_NONBLOCK, on one aio kept for it (nng 1.5.2's nng_recvmsg() allocates an aio per
 * call, and with it reads getrandom(2)). pull_cb only: its calls never overlap.
 */
static nng_msg *pull_take_now(svc_net *n)
{
    nng_aio_set_timeout(n->pull_now, NNG_DURATION_ZERO);
    nng_recv_aio(n->pull, n->pull_now);
    nng_aio_wait(n->pull_now);
    if (nng_aio_result(n->pull_now) != 0) {
        return NULL;
    }
    nng_msg *m = nng_aio_get_msg(n->pull_now);
    nng_aio_set_msg(n->pull_now, NULL);
    return m;
}

static void pull_cb(void *arg)
{
    svc_net *n = arg;
    int rv = nng_aio_result(n->pull_aio);
    if (stopping(rv)) {
        return;
    }
    if (rv == 0) {
        pull_dispatch(n, nng_aio_get_msg(n->pull_aio));
        /*
         * Then what other connections already delivered, here and in order: a receive
         * without a callback completes on this thread, where each aio completion would
         * be a hand-off to another nng thread.
         */
        nng_msg *m = NULL;
        for (int k = 0;
             k < PULL_DRAIN_MAX && pull_may_take(n) == PULL_TAKE && (m = pull_take_now(n)) != NULL;
             k++) {
            pull_dispatch(n, m);
        }
    }
    pull_next(n);
}

/*
 * Listen on @url, taking messages of up to o->max_message_bytes after the protocol's own
 * @header_bytes. An ipc:// socket file gets @o's mode (nng applies it before the socket
 * accepts connections) and then its group.
 */
/* @url as listener @l is bound (svc_net_opts.bound) into @out. */
static void bound_url(nng_listener l, const char *url, char *out, size_t size)
{
    char copy[1024], cwd[PATH_MAX];
    (void)snprintf(copy, sizeof(copy), "%s", url);
    size_t n = strlen(copy);
    int port = 0;
    if (strncasecmp(copy, "ipc://", 6) == 0 && copy[6] != '/' && getcwd(cwd, sizeof(cwd)) != NULL) {
        (void)snprintf(out, size, "ipc://%s/%s", cwd, copy + 6);
    } else if (n >= 2 && strcmp(copy + n - 2, ":0") == 0 &&
               nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) == 0 && port > 0) {
        (void)snprintf(out, size, "%.*s:%d", (int)(n - 2), copy, port);
    } else {
        (void)snprintf(out, size, "%s", copy);
    }
}

static base_err listen_on(nng_socket s, const char *url, size_t header_bytes, const svc_net_opts *o,
                          char *bound, char *errbuf, size_t errlen)
{
    bool ipc = strncasecmp(url, "ipc://", 6) == 0; /* nng takes a scheme in any case */
    nng_listener l;
    int rv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, o->max_message_bytes + header_bytes);
    if (rv == 0) {
        rv = nng_listener_create(&l, s, url);
    }
    if (rv == 0 && ipc && o->ipc_mode != 0) {
        rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, (int)o->ipc_mode);
    }
    if (rv == 0 && svc_tls_url(url)) {
        rv = o->tls != NULL ? nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, o->tls) : NNG_EINVAL;
    }
    if (rv == 0) {
        rv = nng_listener_start(l, 0);
    }
    if (rv != 0) {
        snprintf(errbuf, errlen, "cannot listen on %s: %s", url, nng_strerror(rv));
        return from_nng(rv);
    }
    if (ipc && o->ipc_gid >= 0 && chown(url + 6, (uid_t)-1, (gid_t)o->ipc_gid) != 0) {
        snprintf(errbuf, errlen, "cannot give %s to group %ld: %s", url, o->ipc_gid,
                 strerror(errno));
        return BASE_EIO;
    }
    if (bound != NULL) {
        bound_url(l, url, bound, o->bound_size);
    }
    return BASE_OK;
}

base_err svc_net_open(const svc_net_opts *o, svc_net_handler h, void *arg, svc_net **out,
                      char *errbuf, size_t errlen)
{
    base_err e = BASE_ENOMEM;
    svc_net *n = base_alloc_zero(1, sizeof(*n));
    if (n == NULL) {
        goto fail;
    }
    pthread_rwlock_init(&n->close_lk, NULL);
    atomic_init(&n->closed, false);
    for (size_t k = 0; k < PULL_WORKERS; k++) {
        atomic_init(&n->pull_w[k].depth, 0);
    }
    pthread_mutex_init(&n->wait_lk, NULL);
    pthread_mutex_init(&n->pull_lk, NULL);
    pthread_cond_init(&n->pull_cv, NULL);
    n->handler = h;
    n->arg = arg;
    n->contexts = o->contexts;
    n->share = o->contexts / 4 > 0 ? o->contexts / 4 : 1;
    n->reply_ms = (nng_duration)o->reply_timeout_ms;
    n->over_share_ms = (nng_duration)(o->reply_timeout_ms / 4 > 0 ? o->reply_timeout_ms / 4 : 1);
    n->rep = base_alloc_zero(o->n_urls, sizeof(nng_socket));
    n->slots = base_alloc_zero(o->n_urls * o->contexts, sizeof(svc_net_reply));
    if (n->rep == NULL || n->slots == NULL) {
        goto fail;
    }
    for (size_t i = 0; i < o->n_urls; i++) {
        int rv = nng_rep0_open(&n->rep[i]);
        if (rv != 0) {
            e = from_nng(rv);
            snprintf(errbuf, errlen, "rep socket: %s", nng_strerror(rv));
            goto fail;
        }
        n->n_rep = i + 1;
        e = listen_on(n->rep[i], o->urls[i], REQ_HEADER_BYTES, o,
                      o->bound != NULL ? o->bound[i] : NULL, errbuf, errlen);
        if (e != BASE_OK) {
            goto fail;
        }
        for (uint32_t k = 0; k < o->contexts; k++) {
            svc_net_reply *s = &n->slots[n->n_slots];
            s->net = n;
            s->sock = i;
            if (nng_aio_alloc(&s->aio, slot_cb, s) != 0) {
                e = BASE_ENOMEM;
                goto fail;
            }
            if (nng_ctx_open(&s->ctx, n->rep[i]) != 0) {
                nng_aio_free(s->aio);
                s->aio = NULL;
                e = BASE_ENOMEM;
                goto fail;
            }
            n->n_slots++;
        }
    }
    if (o->pull_url != NULL && o->pull_url[0] != '\0') {
        int rv = nng_pull0_open(&n->pull);
        if (rv != 0) {
            e = from_nng(rv);
            snprintf(errbuf, errlen, "pull socket: %s", nng_strerror(rv));
            goto fail;
        }
        n->have_pull = true;
        (void)nng_socket_set_int(n->pull, NNG_OPT_RECVBUF,
                                 1024); /* a hint: 1.5.2's pull0 has none */
        e = listen_on(n->pull, o->pull_url, 0, o, NULL, errbuf, errlen);
        if (e != BASE_OK) {
            goto fail;
        }
        if (nng_aio_alloc(&n->pull_now, NULL, NULL) != 0 ||
            nng_aio_alloc(&n->pull_aio, pull_cb, n) != 0) {
            e = BASE_ENOMEM;
            goto fail;
        }
        for (size_t k = 0; k < PULL_WORKERS; k++) {
            pull_worker *w = &n->pull_w[k];
            w->net = n;
            w->q = base_queue_new(PULL_QUEUE);
            if (w->q == NULL || pthread_create(&w->thr, NULL, pull_worker_main, w) != 0) {
                e = BASE_ENOMEM;
                snprintf(errbuf, errlen, "cannot start the PULL socket's workers");
                goto fail;
            }
            w->started = true;
        }
        n->pull_ready = o->pull_ready;
        /* Also without pull_ready: a full worker queue pauses the receive too. */
        if (pthread_create(&n->pull_thr, NULL, pull_waiter, n) != 0) {
            e = BASE_ENOMEM;
            snprintf(errbuf, errlen, "cannot start the PULL socket's thread");
            goto fail;
        }
        n->have_pull_thr = true;
    }
    /* Everything is in place: start receiving. */
    for (size_t k = 0; k < n->n_slots; k++) {
        recv_next(&n->slots[k]);
    }
    if (n->pull_aio != NULL) {
        pull_next(n);
    }
    *out = n;
    return BASE_OK;
fail:
    svc_net_close(n);
    svc_net_free(n);
    return e;
}

/* Close the PULL workers' queues; with @join, also wait until the workers drained them. */
static void stop_pull_workers(svc_net *n, bool join)
{
    for (size_t k = 0; k < PULL_WORKERS; k++) {
        pull_worker *w = &n->pull_w[k];
        if (w->started) {
            base_queue_close(w->q);
            if (join) {
                pthread_join(w->thr, NULL);
                w->started = false;
            }
        }
    }
}

void svc_net_close(svc_net *n)
{
    if (n == NULL) {
        return;
    }
    pthread_rwlock_wrlock(&n->close_lk);
    atomic_store(&n->closed, true);
    pthread_rwlock_unlock(&n->close_lk);
    close_sockets(n);
    if (n->have_pull_thr) {
        pthread_mutex_lock(&n->pull_lk);
        n->pull_stop = true;
        pthread_cond_signal(&n->pull_cv);
        pthread_mutex_unlock(&n->pull_lk);
        pthread_join(n->pull_thr, NULL);
        n->have_pull_thr = false;
    }
    /*
     * PULL messages already taken are handled (their senders saw them go): the workers drain
     * their queues, which take nothing more, and stop (joined below). Request handlers
     * already running finish (they never block); no request is taken any more.
     */
    stop_pull_workers(n, false);
    uint64_t deadline = base_mono_ns() + (uint64_t)CLOSE_WAIT_MS * 1000000u;
    while (atomic_load(&n->busy) > 0 && base_mono_ns() < deadline) {
        struct timespec ts = {0, 1000000L};
        (void)nanosleep(&ts, NULL);
    }
    if (atomic_load(&n->busy) > 0) {
        base_log(BASE_LOG_WARN, "shutdown: %u request(s) still being handled after %d ms",
                 atomic_load(&n->busy), CLOSE_WAIT_MS);
    }
    stop_pull_workers(n, true);
}

/* A net whose sockets nng did not close: kept, and reachable, until the process exits. */
static svc_net *kept_stuck;

void svc_net_free(svc_net *n)
{
    if (n != NULL && n->stuck) {
        kept_stuck = n; /* nng may still call back into its slots */
        return;
    }
    if (n == NULL) {
        return;
    }
    for (size_t k = 0; k < n->n_slots; k++) {
        nng_aio_stop(n->slots[k].aio);
    }
    if (n->pull_aio != NULL) {
        nng_aio_stop(n->pull_aio);
        nng_aio_free(n->pull_aio);
    }
    if (n->pull_now != NULL) {
        nng_aio_stop(n->pull_now);
        nng_aio_free(n->pull_now);
    }
    for (size_t k = 0; k < n->n_slots; k++) {
        nng_ctx_close(n->slots[k].ctx);
        nng_aio_free(n->slots[k].aio);
    }
    stop_pull_workers(n, true); /* svc_net_close() did, unless it was not called */
    for (size_t k = 0; k < PULL_WORKERS; k++) {
        base_queue_free(n->pull_w[k].q); /* empty: the worker drained it */
    }
    base_free(n->slots);
    base_free(n->rep);
    pthread_mutex_destroy(&n->wait_lk);
    pthread_mutex_destroy(&n->pull_lk);
    pthread_cond_destroy(&n->pull_cv);
    pthread_rwlock_destroy(&n->close_lk);
    base_free(n);
}
