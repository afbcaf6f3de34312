#include "client/rlfeed_client.h"

#include <stdbool.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/reqrep0/req.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "proto/mp.h"
#include "proto/request.h"

#define DEFAULT_TIMEOUT_MS 5000
#define RECONNECT_MIN_MS 50
#define RECONNECT_MAX_MS 1000

struct rlfeed_client {
    nng_socket sock;
    int timeout_ms;
};

struct rlfeed_push {
    nng_socket sock;
    int timeout_ms;
};

/* The one place nng error numbers become base_err codes. */
static base_err err_from_nng(int rv)
{
    switch (rv) {
    case 0:
        return BASE_OK;
    case NNG_ETIMEDOUT:
        return BASE_ETIMEDOUT;
    case NNG_ECLOSED:
        return BASE_ECLOSED;
    case NNG_ENOMEM:
        return BASE_ENOMEM;
    case NNG_EADDRINVAL:
    case NNG_ENOTSUP:
    case NNG_EINVAL:
        return BASE_EINVAL;
    default:
        return BASE_EIO;
    }
}

static bool url_ok(const char *url)
{
    return url != NULL && url[0] != '\0' && strlen(url) <= RLFEED_CLIENT_URL_MAX;
}

/* Options shared by REQ and PUSH sockets; the caller closes @s on failure. */
static base_err socket_setup(nng_socket s, int timeout_ms)
{
    int rv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, RLFEED_CLIENT_MAX_REPLY);
    if (rv == 0) {
        rv = nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, timeout_ms);
    }
    if (rv == 0) {
        rv = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, timeout_ms);
    }
    if (rv == 0) {
        rv = nng_socket_set_ms(s, NNG_OPT_RECONNMINT, RECONNECT_MIN_MS);
    }
    if (rv == 0) {
        rv = nng_socket_set_ms(s, NNG_OPT_RECONNMAXT, RECONNECT_MAX_MS);
    }
    return err_from_nng(rv);
}

/*
 * Open a socket with @open_fn, set it up, and dial @url in the background (a
 * frontend may start before the service does). For REQ, timer-driven resends
 * are off: a decide is not idempotent, and a resend after timeout_ms would
 * race the original (nng still re-sends a request whose connection dropped).
 */
static base_err open_dialer(const char *url, int timeout_ms, int (*open_fn)(nng_socket *),
                            bool is_req, nng_socket *out)
{
    nng_socket sock;
    int rv = open_fn(&sock);
    if (rv != 0) {
        return err_from_nng(rv);
    }
    base_err e = socket_setup(sock, timeout_ms);
    if (e == BASE_OK) {
        rv = is_req ? nng_socket_set_ms(sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE) : 0;
        if (rv == 0) {
            rv = nng_dial(sock, url, NULL, NNG_FLAG_NONBLOCK);
        }
        e = err_from_nng(rv);
    }
    if (e != BASE_OK) {
        (void)nng_close(sock); /* nothing useful to do with a close error */
        return e;
    }
    *out = sock;
    return BASE_OK;
}

base_err rlfeed_client_open(const char *url, int timeout_ms, rlfeed_client **out_c)
{
    if (!url_ok(url) || out_c == NULL) {
        return BASE_EINVAL;
    }
    rlfeed_client *c = base_alloc_zero(1, sizeof(*c));
    if (c == NULL) {
        return BASE_ENOMEM;
    }
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
    base_err e = open_dialer(url, c->timeout_ms, nng_req0_open, true, &c->sock);
    if (e != BASE_OK) {
        base_free(c);
        return e;
    }
    *out_c = c;
    return BASE_OK;
}

void rlfeed_client_close(rlfeed_client *c)
{
    if (c != NULL) {
        (void)nng_close(c->sock); /* the socket is gone either way */
        base_free(c);
    }
}

base_err rlfeed_client_call(rlfeed_client *c, const uint8_t *req, size_t req_len,
                            uint8_t **out_reply, size_t *out_len)
{
    base_err e = BASE_EINVAL;
    nng_msg *msg = NULL;
    uint8_t *copy = NULL;
    size_t n;
    int rv;

    if (c == NULL || req == NULL || req_len == 0 || out_reply == NULL || out_len == NULL) {
        goto done;
    }
    e = BASE_ELIMIT;
    if (req_len > PROTO_MAX_MSG_BYTES) {
        goto done;
    }
    rv = nng_send(c->sock, (void *)(uintptr_t)req, req_len, 0); /* nng copies, never writes */
    if (rv != 0) {
        e = err_from_nng(rv);
        goto done;
    }
    rv = nng_recvmsg(c->sock, &msg, 0);
    if (rv != 0) {
        e = err_from_nng(rv);
        goto done;
    }
    n = nng_msg_len(msg);
    e = BASE_EPROTO;
    if (n == 0) {
        goto done;
    }
    e = BASE_ENOMEM;
    copy = base_alloc(n);
    if (copy == NULL) {
        goto done;
    }
    memcpy(copy, nng_msg_body(msg), n);
    *out_reply = copy;
    *out_len = n;
    e = BASE_OK;

done:
    if (msg != NULL) { /* freed on success too: the reply was copied out */
        nng_msg_free(msg);
    }
    return e;
}

/* Send the request built in @b and decode its reply into @out. */
static base_err call_decoded(rlfeed_client *c, base_buf *b, proto_reply *out)
{
    uint8_t *rep = NULL;
    size_t rep_len = 0;
    base_err e;

    e = rlfeed_client_call(c, b->data, b->len, &rep, &rep_len);
    if (e != BASE_OK) {
        goto done;
    }
    e = proto_reply_decode(rep, rep_len, out);

done:
    base_free(rep);
    return e;
}

static bool str_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* {"v":1, "op":@op, ...}: the header every request starts with; @n_more pairs follow. */
static void write_header(proto_writer *w, const char *op, uint32_t n_more)
{
    proto_w_map(w, 2 + n_more);
    proto_w_str(w, "v");
    proto_w_int(w, PROTO_VERSION);
    proto_w_str(w, "op");
    proto_w_str(w, op);
}

base_err rlfeed_client_decide(rlfeed_client *c, const char *policy, const char *event_id,
                              const float *embedding, uint32_t dim, uint32_t n_cand,
                              const char *const *cand_ids, const float *base_logits,
                              proto_reply *out_reply)
{
    base_err e = BASE_EINVAL;
    base_buf b;
    proto_writer w;
    bool with_id = str_set(event_id);

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    if (c == NULL || policy == NULL || embedding == NULL || cand_ids == NULL ||
        base_logits == NULL || out_reply == NULL || dim > BASE_DIM_MAX || n_cand == 0 ||
        n_cand > BASE_CAND_MAX) {
        goto done;
    }
    proto_writer_init(&w, &b);
    write_header(&w, "decide", with_id ? 4 : 3);
    proto_w_str(&w, "policy");
    proto_w_str(&w, policy);
    if (with_id) {
        proto_w_str(&w, "event_id");
        proto_w_str(&w, event_id);
    }
    proto_w_str(&w, "context");
    proto_w_map(&w, 1);
    proto_w_str(&w, "embedding");
    proto_w_f32_bin(&w, embedding, dim);
    proto_w_str(&w, "candidates");
    proto_w_array(&w, n_cand);
    for (uint32_t i = 0; i < n_cand; i++) {
        if (cand_ids[i] == NULL) {
            e = BASE_EINVAL;
            goto done;
        }
        proto_w_map(&w, 2);
        proto_w_str(&w, "id");
        proto_w_str(&w, cand_ids[i]);
        proto_w_str(&w, "base_logit");
        proto_w_double(&w, base_logits[i]);
    }
    e = proto_writer_finish(&w);
    if (e != BASE_OK) {
        goto done;
    }
    e = call_decoded(c, &b, out_reply);

done:
    base_buf_fini(&b);
    return e;
}

/* Build a feedback request into @b. */
static base_err build_feedback(base_buf *b, const char *policy, const char *event_id,
                               const char *signal, double value, const char *outcome_id)
{
    base_err e = BASE_EINVAL;
    proto_writer w;
    bool with_oid = str_set(outcome_id);

    if (policy == NULL || !str_set(event_id) || !str_set(signal)) {
        goto done;
    }
    proto_writer_init(&w, b);
    write_header(&w, "feedback", with_oid ? 5 : 4);
    proto_w_str(&w, "policy");
    proto_w_str(&w, policy);
    proto_w_str(&w, "event_id");
    proto_w_str(&w, event_id);
    proto_w_str(&w, "signal");
    proto_w_str(&w, signal);
    proto_w_str(&w, "value");
    proto_w_double(&w, value);
    if (with_oid) {
        proto_w_str(&w, "outcome_id");
        proto_w_str(&w, outcome_id);
    }
    e = proto_writer_finish(&w);

done:
    return e;
}

base_err rlfeed_client_feedback(rlfeed_client *c, const char *policy, const char *event_id,
                                const char *signal, double value, const char *outcome_id,
                                proto_reply *out_reply)
{
    base_err e = BASE_EINVAL;
    base_buf b;

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    if (c == NULL || out_reply == NULL) {
        goto done;
    }
    e = build_feedback(&b, policy, event_id, signal, value, outcome_id);
    if (e != BASE_OK) {
        goto done;
    }
    e = call_decoded(c, &b, out_reply);

done:
    base_buf_fini(&b);
    return e;
}

/* A request with only "v", "op" and an optional "policy". */
static base_err simple_call(rlfeed_client *c, const char *op, const char *policy,
                            uint8_t **out_reply, size_t *out_len)
{
    base_err e;
    base_buf b;
    proto_writer w;
    bool with_policy = str_set(policy);

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    proto_writer_init(&w, &b);
    write_header(&w, op, with_policy ? 1 : 0);
    if (with_policy) {
        proto_w_str(&w, "policy");
        proto_w_str(&w, policy);
    }
    e = proto_writer_finish(&w);
    if (e != BASE_OK) {
        goto done;
    }
    e = rlfeed_client_call(c, b.data, b.len, out_reply, out_len);

done:
    base_buf_fini(&b);
    return e;
}

base_err rlfeed_client_stats(rlfeed_client *c, const char *policy, uint8_t **out_reply,
                             size_t *out_len)
{
    return simple_call(c, "stats", policy, out_reply, out_len);
}

base_err rlfeed_client_health(rlfeed_client *c, uint8_t **out_reply, size_t *out_len)
{
    return simple_call(c, "health", NULL, out_reply, out_len);
}

base_err rlfeed_push_open(const char *url, int timeout_ms, rlfeed_push **out_p)
{
    if (!url_ok(url) || out_p == NULL) {
        return BASE_EINVAL;
    }
    rlfeed_push *p = base_alloc_zero(1, sizeof(*p));
    if (p == NULL) {
        return BASE_ENOMEM;
    }
    p->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
    base_err e = open_dialer(url, p->timeout_ms, nng_push0_open, false, &p->sock);
    if (e != BASE_OK) {
        base_free(p);
        return e;
    }
    *out_p = p;
    return BASE_OK;
}

void rlfeed_push_close(rlfeed_push *p)
{
    if (p != NULL) {
        (void)nng_close(p->sock); /* the socket is gone either way */
        base_free(p);
    }
}

base_err rlfeed_push_send(rlfeed_push *p, const uint8_t *msg, size_t len)
{
    base_err e = BASE_EINVAL;

    if (p == NULL || msg == NULL || len == 0) {
        goto done;
    }
    e = BASE_ELIMIT;
    if (len > PROTO_MAX_MSG_BYTES) {
        goto done;
    }
    e = err_from_nng(nng_send(p->sock, (void *)(uintptr_t)msg, len, 0)); /* copies */

done:
    return e;
}

base_err rlfeed_push_feedback(rlfeed_push *p, const char *policy, const char *event_id,
                              const char *signal, double value, const char *outcome_id)
{
    base_err e = BASE_EINVAL;
    base_buf b;

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    if (p == NULL) {
        goto done;
    }
    e = build_feedback(&b, policy, event_id, signal, value, outcome_id);
    if (e != BASE_OK) {
        goto done;
    }
    e = rlfeed_push_send(p, b.data, b.len);

done:
    base_buf_fini(&b);
    return e;
}

void rlfeed_client_lib_fini(void)
{
    nng_fini();
}
