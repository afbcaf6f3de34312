#include "client/rlfeed_client.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "proto/reply.h"
#include "proto/request.h"
#include "proto/tls.h"
#include "proto/url.h"

/* The request id nng's REQ puts in front of every request: the daemon's cap counts it. */

#define DEFAULT_TIMEOUT_MS 5000
#define RECONNECT_MIN_MS 50
#define RECONNECT_MAX_MS 1000

struct rlfeed_client {
    nng_socket sock;
    int timeout_ms;
    bool signs; /* a key was loaded: every request is signed with it */
    proto_auth_keyfile key;
};

struct rlfeed_push {
    nng_socket sock;
    int timeout_ms;
    bool signs;
    proto_auth_keyfile key;
};

base_err rlfeed_key_load(const char *path, proto_auth_keyfile *out, char *errbuf, size_t errlen)
{
    char text[1024], why[160];
    base_err e = BASE_EINVAL;

    if (errbuf == NULL) {
        errlen = 0; /* no room for the reason */
    }
    if (path == NULL || out == NULL) {
        snprintf(errbuf, errlen, "rlfeed_key_load: %s is NULL", path == NULL ? "path" : "out");
        return BASE_EINVAL;
    }
    int fd = proto_secret_open(path, why, sizeof(why));
    if (fd < 0) {
        snprintf(errbuf, errlen, "%s: %s", path, why);
        return fd == PROTO_SECRET_UNREADABLE ? BASE_EIO : BASE_EINVAL;
    }
    ssize_t n = proto_secret_read(fd, text, sizeof(text) - 1);
    (void)close(fd);
    if (n < 0) {
        snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
        proto_secret_wipe(text, sizeof(text)); /* what was read before the error */
        return BASE_EIO;
    }
    text[n] = '\0';
    if ((size_t)n == sizeof(text) - 1) {
        snprintf(errbuf, errlen, "%s: too long for a key file", path);
    } else {
        e = proto_auth_keyfile_parse(text, out, why, sizeof(why));
        if (e != BASE_OK) {
            snprintf(errbuf, errlen, "%s: %s", path, why);
        }
    }
    proto_secret_wipe(text, sizeof(text)); /* the secret's hex */
    return e;
}

/* What a handle keeps of a key file: the name and the derived key (signing needs no more). */
static void keep_key(proto_auth_keyfile *dst, const proto_auth_keyfile *key)
{
    *dst = *key;
    proto_secret_wipe(dst->secret, sizeof(dst->secret));
    proto_secret_wipe(dst->salt, sizeof(dst->salt));
}

base_err rlfeed_client_use_key(rlfeed_client *c, const proto_auth_keyfile *key)
{
    if (c == NULL || key == NULL) {
        return BASE_EINVAL;
    }
    keep_key(&c->key, key);
    c->signs = true;
    return BASE_OK;
}

base_err rlfeed_push_use_key(rlfeed_push *p, const proto_auth_keyfile *key)
{
    if (p == NULL || key == NULL) {
        return BASE_EINVAL;
    }
    keep_key(&p->key, key);
    p->signs = true;
    return BASE_OK;
}

/* @req signed with @k into @out (now, a fresh nonce). */
static base_err sign_copy(const proto_auth_keyfile *k, const uint8_t *req, size_t len,
                          base_buf *out)
{
    char nonce[32];
    struct timespec ts;
    base_err e = base_buf_append(out, req, len);

    clock_gettime(CLOCK_REALTIME, &ts);
    proto_auth_nonce(nonce, sizeof(nonce));
    if (e == BASE_OK) {
        e = proto_auth_sign(out, k->client, k->key,
                            (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, nonce);
    }
    return e;
}

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
    return url != NULL && url[0] != '\0' && strlen(url) <= RLFEED_CLIENT_URL_MAX &&
           proto_url_dialable(url);
}

/*
 * What REP puts in front of a reply: the 4-byte request id. NNG_OPT_RECVMAXSZ caps the message
 * with it, and RLFEED_CLIENT_MAX_REPLY is the reply's own size, as the daemon's cap is the
 * request's.
 */
#define REPLY_HEADER_BYTES 4u

/* Options shared by REQ and PUSH sockets; the caller closes @s on failure. */
static base_err socket_setup(nng_socket s, int timeout_ms)
{
    int rv =
        nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, RLFEED_CLIENT_MAX_REPLY + REPLY_HEADER_BYTES);
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
 * The client side of TLS from @o for dialing @url: the server must chain to o->ca_file and
 * its certificate must name o->server_name, or else @url's host. (The config replaces the
 * dialer's own, so nng's default name from the URL would not apply: it is set here.)
 */
static base_err tls_client_config(const rlfeed_tls *o, const char *url, nng_tls_config **out)
{
    nng_tls_config *t = NULL;
    base_buf ca, cert, key;
    char why[128];
    base_err e = BASE_EINVAL;

    base_buf_init(&ca, 1u << 20);
    base_buf_init(&cert, 1u << 20);
    base_buf_init(&key, 1u << 20);
    if (o->ca_file == NULL || o->ca_file[0] == '\0' ||
        nng_tls_config_alloc(&t, NNG_TLS_MODE_CLIENT) != 0) {
        goto done;
    }
    /* Read here, as the certificate is: unreadable is BASE_EIO, refused BASE_EINVAL. */
    if (!base_buf_read_file(&ca, o->ca_file, why, sizeof(why)) ||
        base_buf_append(&ca, "", 1) != BASE_OK) {
        e = BASE_EIO;
        goto done;
    }
    int rv = nng_tls_config_ca_chain(t, (const char *)ca.data, NULL);
    if (rv == 0) {
        rv = nng_tls_config_auth_mode(t, NNG_TLS_AUTH_MODE_REQUIRED);
    }
    if (rv == 0 && o->server_name != NULL && o->server_name[0] != '\0') {
        rv = nng_tls_config_server_name(t, o->server_name);
    } else if (rv == 0) {
        nng_url *u = NULL;
        rv = nng_url_parse(&u, url);
        if (rv == 0) {
            rv = u->u_hostname != NULL && u->u_hostname[0] != '\0'
                     ? nng_tls_config_server_name(t, u->u_hostname)
                     : NNG_EINVAL;
            nng_url_free(u);
        }
    }
    bool has_cert = o->cert_file != NULL && o->cert_file[0] != '\0';
    bool has_key = o->key_file != NULL && o->key_file[0] != '\0';
    if (rv == 0 && has_key && !has_cert) {
        rv = NNG_EINVAL; /* a key with no certificate to go with it */
    }
    if (rv == 0 && has_cert) {
        if (!base_buf_read_file(&cert, o->cert_file, why, sizeof(why)) ||
            !base_buf_read_file(&key, has_key ? o->key_file : o->cert_file, why, sizeof(why)) ||
            base_buf_append(&cert, "", 1) != BASE_OK || base_buf_append(&key, "", 1) != BASE_OK) {
            e = BASE_EIO;
            goto done;
        }
        rv = nng_tls_config_own_cert(t, (const char *)cert.data, (const char *)key.data, NULL);
        if (rv == 0 && !proto_tls_key_is_certs(cert.data, cert.len, key.data, key.len)) {
            rv = NNG_EINVAL; /* another certificate's key: every handshake would fail */
        }
    }
    if (rv != 0) {
        goto done; /* BASE_EINVAL: a file refused, a key not the certificate's, a bad name */
    }
    *out = t;
    t = NULL;
    e = BASE_OK;
done:
    if (t != NULL) {
        nng_tls_config_free(t);
    }
    base_buf_fini(&ca);
    base_buf_fini(&cert);
    base_buf_fini(&key);
    return e;
}

/*
 * Open a socket with @open_fn, set it up, and dial @url in the background (a
 * frontend may start before the service does). For REQ, timer-driven resends
 * are off: a decide is not idempotent, and a resend after timeout_ms would
 * race the original (a request whose connection drops fails with BASE_EIO:
 * nng 1.5.2 does not send it again on the next connection).
 */
static base_err open_dialer(const char *url, int timeout_ms, const rlfeed_tls *tls,
                            int (*open_fn)(nng_socket *), bool is_req, nng_socket *out)
{
    nng_socket sock;
    nng_dialer d;
    nng_tls_config *t = NULL;
    int rv = open_fn(&sock);
    if (rv != 0) {
        return err_from_nng(rv);
    }
    base_err e = socket_setup(sock, timeout_ms);
    /* A TLS URL with nng's default client configuration would trust no CA: refused here. */
    bool tls_url = strncasecmp(url, "tls+", 4) == 0 || strncasecmp(url, "wss", 3) == 0;
    if (e == BASE_OK && tls_url && tls == NULL) {
        e = BASE_EINVAL;
    }
    if (e == BASE_OK && tls != NULL) {
        e = tls_client_config(tls, url, &t);
    }
    if (e == BASE_OK) {
        rv = is_req ? nng_socket_set_ms(sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE) : 0;
        if (rv == 0) {
            rv = nng_dialer_create(&d, sock, url);
        }
        if (rv == 0 && t != NULL) {
            rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, t); /* the dialer holds its own ref */
        }
        if (rv == 0) {
            rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
        }
        e = err_from_nng(rv);
    }
    if (t != NULL) {
        nng_tls_config_free(t);
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
    return rlfeed_client_open_tls(url, timeout_ms, NULL, out_c);
}

base_err rlfeed_client_open_tls(const char *url, int timeout_ms, const rlfeed_tls *tls,
                                rlfeed_client **out_c)
{
    if (!url_ok(url) || out_c == NULL) {
        return BASE_EINVAL;
    }
    rlfeed_client *c = base_alloc_zero(1, sizeof(*c));
    if (c == NULL) {
        return BASE_ENOMEM;
    }
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
    base_err e = open_dialer(url, c->timeout_ms, tls, nng_req0_open, true, &c->sock);
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
        proto_secret_wipe(&c->key, sizeof(c->key));
        base_free(c);
    }
}

base_err rlfeed_client_call(rlfeed_client *c, const uint8_t *req, size_t req_len,
                            uint8_t **out_reply, size_t *out_len)
{
    base_err e = BASE_EINVAL;
    nng_msg *msg = NULL;
    uint8_t *copy = NULL;
    base_buf signed_req = {0};
    size_t n;
    int rv;

    if (c == NULL || req == NULL || req_len == 0 || out_reply == NULL || out_len == NULL) {
        goto done;
    }
    e = BASE_ELIMIT;
    if (req_len > PROTO_MAX_MSG_BYTES) {
        goto done;
    }
    base_buf_init(&signed_req, PROTO_MAX_MSG_BYTES);
    if (c->signs) {
        e = sign_copy(&c->key, req, req_len, &signed_req);
        if (e != BASE_OK) {
            goto done;
        }
        req = signed_req.data;
        req_len = signed_req.len;
    }
    if (req_len > PROTO_MAX_MSG_BYTES) {
        e = BASE_ELIMIT; /* signed, past the daemon's cap (which leaves REQ's header out) */
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
    base_buf_fini(&signed_req);
    return e;
}

const char *rlfeed_errcode_name(rlfeed_errcode c)
{
    return proto_errcode_name(c);
}

base_err rlfeed_reply_decode(const uint8_t *buf, size_t len, rlfeed_reply *out)
{
    if (buf == NULL || out == NULL) {
        return BASE_EINVAL;
    }
    proto_reply *r = base_alloc(sizeof(*r)); /* 4.5 KiB: not on the caller's stack too */
    base_err e = BASE_ENOMEM;

    if (r == NULL) {
        goto done;
    }
    e = proto_reply_decode(buf, len, r);
    if (e != BASE_OK) {
        goto done;
    }
    out->ok = r->ok;
    out->error.code = r->error.code;
    memcpy(out->error.message, r->error.message, sizeof(out->error.message));
    memcpy(out->event_id, r->event_id, sizeof(out->event_id));
    memcpy(out->chosen, r->chosen, sizeof(out->chosen));
    out->chosen_index = r->chosen_index;
    out->n_pmf = r->n_pmf;
    memcpy(out->pmf, r->pmf, sizeof(out->pmf));
    out->model_version = r->model_version;
    memcpy(out->slot, r->slot, sizeof(out->slot));
    out->duplicate = r->duplicate;
    memcpy(out->status, r->status, sizeof(out->status));
    memcpy(out->redis, r->redis, sizeof(out->redis));

done:
    base_free(r);
    return e;
}

/* Send the request built in @b and decode its reply into @out. */
static base_err call_decoded(rlfeed_client *c, const base_buf *b, rlfeed_reply *out)
{
    uint8_t *rep = NULL;
    size_t rep_len = 0;
    base_err e;

    e = rlfeed_client_call(c, b->data, b->len, &rep, &rep_len);
    if (e != BASE_OK) {
        goto done;
    }
    e = rlfeed_reply_decode(rep, rep_len, out);

done:
    base_free(rep);
    return e;
}

base_err rlfeed_client_decide_ex(rlfeed_client *c, const char *policy,
                                 const rlfeed_decide_opts *opts, const float *embedding,
                                 uint32_t dim, uint32_t n_cand, const char *const *cand_ids,
                                 const float *base_logits, rlfeed_reply *out_reply)
{
    base_err e = BASE_EINVAL;
    base_buf b;
    proto_decide_req q = {
        .policy = policy,
        .embedding = embedding,
        .dim = dim,
        .n_cand = n_cand,
        .cand_ids = cand_ids,
        .base_logits = base_logits,
    };

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    if (c == NULL || out_reply == NULL) {
        goto done;
    }
    if (opts != NULL) {
        q.event_id = opts->event_id;
        q.conversation_id = opts->conversation_id;
        q.turn = opts->turn;
        q.deferred = opts->deferred;
        q.features = opts->features;
        q.action_dim = opts->action_dim;
    }
    e = proto_encode_decide(&b, &q);
    if (e != BASE_OK) {
        goto done;
    }
    e = call_decoded(c, &b, out_reply);

done:
    base_buf_fini(&b);
    return e;
}

base_err rlfeed_client_decide(rlfeed_client *c, const char *policy, const char *event_id,
                              const float *embedding, uint32_t dim, uint32_t n_cand,
                              const char *const *cand_ids, const float *base_logits,
                              rlfeed_reply *out_reply)
{
    rlfeed_decide_opts o = {.event_id = event_id};
    return rlfeed_client_decide_ex(c, policy, &o, embedding, dim, n_cand, cand_ids, base_logits,
                                   out_reply);
}

/*
 * Build a feedback request for @event_id or @conv_id (one of them NULL) into @b. proto
 * refuses it (BASE_EINVAL) when the one given is NULL or "", as without policy or signal.
 */
static base_err build_feedback(base_buf *b, const char *policy, const char *event_id,
                               const char *conv_id, const char *signal, double value,
                               const char *outcome_id)
{
    proto_feedback_req q = {
        .policy = policy,
        .event_id = event_id,
        .conversation_id = conv_id,
        .signal = signal,
        .value = value,
        .outcome_id = outcome_id,
    };

    return proto_encode_feedback(b, &q);
}

/* Build a feedback request with build_feedback() and wait for its reply. */
static base_err feedback_call(rlfeed_client *c, const char *policy, const char *event_id,
                              const char *conv_id, const char *signal, double value,
                              const char *outcome_id, rlfeed_reply *out_reply)
{
    base_err e = BASE_EINVAL;
    base_buf b;

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    if (c == NULL || out_reply == NULL) {
        goto done;
    }
    e = build_feedback(&b, policy, event_id, conv_id, signal, value, outcome_id);
    if (e != BASE_OK) {
        goto done;
    }
    e = call_decoded(c, &b, out_reply);

done:
    base_buf_fini(&b);
    return e;
}

base_err rlfeed_client_feedback(rlfeed_client *c, const char *policy, const char *event_id,
                                const char *signal, double value, const char *outcome_id,
                                rlfeed_reply *out_reply)
{
    return feedback_call(c, policy, event_id, NULL, signal, value, outcome_id, out_reply);
}

base_err rlfeed_client_feedback_conv(rlfeed_client *c, const char *policy,
                                     const char *conversation_id, const char *signal, double value,
                                     const char *outcome_id, rlfeed_reply *out_reply)
{
    return feedback_call(c, policy, NULL, conversation_id, signal, value, outcome_id, out_reply);
}

base_err rlfeed_client_activate(rlfeed_client *c, const char *policy, const char *event_id,
                                rlfeed_reply *out_reply)
{
    base_err e = BASE_EINVAL;
    base_buf b;

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    if (c == NULL || out_reply == NULL) {
        goto done;
    }
    e = proto_encode_activate(&b, policy, event_id);
    if (e != BASE_OK) {
        goto done;
    }
    e = call_decoded(c, &b, out_reply);

done:
    base_buf_fini(&b);
    return e;
}

/* Send the request built in @b (@e: how building it went) and return the raw reply. */
static base_err raw_call(rlfeed_client *c, base_buf *b, base_err e, uint8_t **out_reply,
                         size_t *out_len)
{
    if (e == BASE_OK) {
        e = rlfeed_client_call(c, b->data, b->len, out_reply, out_len);
    }
    base_buf_fini(b);
    return e;
}

base_err rlfeed_client_stats(rlfeed_client *c, const char *policy, uint8_t **out_reply,
                             size_t *out_len)
{
    base_buf b;

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    return raw_call(c, &b, proto_encode_stats(&b, policy), out_reply, out_len);
}

base_err rlfeed_client_explain(rlfeed_client *c, const char *policy, const char *event_id,
                               uint8_t **out_reply, size_t *out_len)
{
    base_buf b;

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    return raw_call(c, &b, proto_encode_explain(&b, policy, event_id), out_reply, out_len);
}

base_err rlfeed_client_health(rlfeed_client *c, uint8_t **out_reply, size_t *out_len)
{
    base_buf b;

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    return raw_call(c, &b, proto_encode_health(&b), out_reply, out_len);
}

base_err rlfeed_push_open(const char *url, int timeout_ms, rlfeed_push **out_p)
{
    return rlfeed_push_open_tls(url, timeout_ms, NULL, out_p);
}

base_err rlfeed_push_open_tls(const char *url, int timeout_ms, const rlfeed_tls *tls,
                              rlfeed_push **out_p)
{
    if (!url_ok(url) || out_p == NULL) {
        return BASE_EINVAL;
    }
    rlfeed_push *p = base_alloc_zero(1, sizeof(*p));
    if (p == NULL) {
        return BASE_ENOMEM;
    }
    p->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
    base_err e = open_dialer(url, p->timeout_ms, tls, nng_push0_open, false, &p->sock);
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
        proto_secret_wipe(&p->key, sizeof(p->key));
        base_free(p);
    }
}

base_err rlfeed_push_send(rlfeed_push *p, const uint8_t *msg, size_t len)
{
    base_err e = BASE_EINVAL;
    base_buf signed_msg = {0};

    if (p == NULL || msg == NULL || len == 0) {
        goto done;
    }
    e = BASE_ELIMIT;
    if (len > PROTO_MAX_MSG_BYTES) {
        goto done;
    }
    base_buf_init(&signed_msg, PROTO_MAX_MSG_BYTES);
    if (p->signs) {
        e = sign_copy(&p->key, msg, len, &signed_msg);
        if (e != BASE_OK) {
            goto done;
        }
        msg = signed_msg.data;
        len = signed_msg.len;
    }
    if (len > PROTO_MAX_MSG_BYTES) {
        e = BASE_ELIMIT; /* signed, it no longer fits */
        goto done;
    }
    e = err_from_nng(nng_send(p->sock, (void *)(uintptr_t)msg, len, 0)); /* copies */

done:
    base_buf_fini(&signed_msg);
    return e;
}

/* Queue a feedback request for @event_id or, when it is NULL, @conv_id. */
static base_err push_feedback(rlfeed_push *p, const char *policy, const char *event_id,
                              const char *conv_id, const char *signal, double value,
                              const char *outcome_id)
{
    base_err e = BASE_EINVAL;
    base_buf b;

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    if (p == NULL) {
        goto done;
    }
    e = build_feedback(&b, policy, event_id, conv_id, signal, value, outcome_id);
    if (e != BASE_OK) {
        goto done;
    }
    e = rlfeed_push_send(p, b.data, b.len);

done:
    base_buf_fini(&b);
    return e;
}

base_err rlfeed_push_feedback(rlfeed_push *p, const char *policy, const char *event_id,
                              const char *signal, double value, const char *outcome_id)
{
    return push_feedback(p, policy, event_id, NULL, signal, value, outcome_id);
}

base_err rlfeed_push_feedback_conv(rlfeed_push *p, const char *policy, const char *conversation_id,
                                   const char *signal, double value, const char *outcome_id)
{
    return push_feedback(p, policy, NULL, conversation_id, signal, value, outcome_id);
}

void rlfeed_client_lib_fini(void)
{
    nng_fini();
}
