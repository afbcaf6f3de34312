#ifndef CLIENT_RLFEED_CLIENT_H
#define CLIENT_RLFEED_CLIENT_H

/*
 * The C client library for chatbot frontends: msgpack requests to rlfeedd
 * over nng. The protocol is described in docs/protocol.md; this library's
 * contracts in docs/client.md.
 *
 * Two handles:
 * - rlfeed_client: an nng REQ socket. Every call sends one request and waits
 *   for its reply (decide, log, acknowledged feedback, stats, health).
 * - rlfeed_push: an nng PUSH socket for fire-and-forget feedback. A send
 *   returns once nng has queued the message; nothing says whether the service
 *   accepted it.
 *
 * Invariants:
 * 1. Every request this library builds is encoded by proto/request.h (a
 *    msgpack map carrying "v":1 and "op"); embeddings travel as bin of
 *    little-endian float32.
 * 2. Every socket has NNG_OPT_RECVMAXSZ set (RLFEED_CLIENT_MAX_REPLY, plus the 4-byte
 *    request id in front of a reply), so a peer cannot make the client allocate more
 *    than that per reply.
 * 3. Every call is bounded by the handle's timeout_ms (send, then receive).
 *
 * States: CLOSED -> OPEN [rlfeed_client_open] -> CLOSED [rlfeed_client_close].
 * Once open, a lost connection is re-dialled by nng in the background
 * (backoff 50 ms .. 1 s); calls made while it is down wait up to timeout_ms
 * and then fail with BASE_ETIMEDOUT. A request that was in flight when the
 * connection dropped fails with BASE_EIO (it is not re-sent: a decide is not
 * idempotent); sending it again is the caller's choice: a decide with an
 * explicit event_id may then be answered "duplicate_event", feedback with an
 * outcome_id "duplicate".
 *
 * Errors: transport failures are base_err codes (timeouts BASE_ETIMEDOUT, a
 * closed socket BASE_ECLOSED, which a live handle does not meet: its socket
 * closes only in the close calls; a bad URL BASE_EINVAL, out of memory
 * BASE_ENOMEM, anything else from nng BASE_EIO). An error *reply* from the
 * service is not a transport failure: the call returns BASE_OK with
 * out_reply->ok == false and out_reply->error filled in.
 *
 * Thread-safety: one rlfeed_client (and one rlfeed_push) per thread. A REQ
 * socket carries one outstanding request at a time; calls on one handle from
 * two threads are a bug. Different handles are independent.
 *
 * Limits: replies up to RLFEED_CLIENT_MAX_REPLY bytes; requests up to
 * PROTO_MAX_MSG_BYTES bytes (signed, when a key is used; REQ's 4-byte header is not
 * counted, as the daemon's cap does not count it; BASE_ELIMIT past it, before anything
 * is sent); candidates and dims up to the
 * caps of base/record.h (BASE_CAND_MAX, BASE_DIM_MAX).
 *
 * Example:
 *   rlfeed_client *c;
 *   rlfeed_reply r;
 *   if (rlfeed_client_open("ipc:///tmp/rlfeed.sock", 1000, &c) == BASE_OK) {
 *       if (rlfeed_client_decide(c, "intents", NULL, emb, 64, 3, ids, logits, &r) == BASE_OK
 *           && r.ok) {
 *           use(r.chosen, r.event_id);
 *       }
 *       rlfeed_client_close(c);
 *   }
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/alloc.h" /* base_free(), for the raw replies below */
#include "base/err.h"
#include "base/record.h"
#include "proto/auth.h"
#include "proto/errors.h"

#define RLFEED_CLIENT_MAX_REPLY (1u << 20) /* NNG_OPT_RECVMAXSZ on every socket, bytes */
#define RLFEED_CLIENT_DEFAULT_URL "ipc:///tmp/rlfeed.sock"
#define RLFEED_CLIENT_URL_MAX 1024 /* bytes of a dial URL */

typedef struct rlfeed_client rlfeed_client;
typedef struct rlfeed_push rlfeed_push;

/*
 * The service's error codes: PROTO_E_BAD_REQUEST, PROTO_E_UNKNOWN_SIGNAL, ... of
 * proto/errors.h, the protocol's own list (docs/protocol.md section 8). A code this library
 * does not know arrives as PROTO_E_INTERNAL.
 */
typedef proto_errcode rlfeed_errcode;

#define RLFEED_ERRMSG_MAX PROTO_ERRMSG_MAX /* bytes of rlfeed_error.message, NUL included */

/* An error reply from the service. */
typedef struct rlfeed_error {
    rlfeed_errcode code;
    char message[RLFEED_ERRMSG_MAX]; /* for people, not programs: act on code; UTF-8 */
} rlfeed_error;

/*
 * A decoded reply. Fields a reply does not carry are 0 or "". About 4.5 KiB (the pmf):
 * caller storage, kept off small stacks.
 */
typedef struct rlfeed_reply {
    bool ok;
    rlfeed_error error;             /* when !ok */
    char event_id[BASE_ID_MAX + 1]; /* decide: quote it in feedback */
    char chosen[BASE_NAME_MAX + 1]; /* decide: the candidate to serve */
    uint32_t chosen_index;          /* decide: its index in the request's candidates */
    uint32_t n_pmf;
    float pmf[BASE_CAND_MAX];     /* decide: each candidate's probability, request order */
    uint64_t model_version;       /* decide */
    char slot[BASE_NAME_MAX + 1]; /* decide: the model slot that served */
    bool duplicate;               /* feedback: the outcome_id was seen before */
    char status[32];              /* feedback, activate: "matched", "late"...; health */
    char redis[16];               /* health: "up", "down", "unknown" */
} rlfeed_reply;

/* rlfeed_errcode_name() - the wire name of @c ("unknown_signal"); "internal" if unknown. */
const char *rlfeed_errcode_name(rlfeed_errcode c);

/*
 * rlfeed_reply_decode() - decode a raw reply (from rlfeed_client_call(), or
 * rlfeed_client_health()) into @out; *out is written only on success.
 * Return: BASE_OK; BASE_EINVAL for a NULL @buf or @out; BASE_EPROTO if @buf is not a
 *         reply map; BASE_ENOMEM.
 */
base_err rlfeed_reply_decode(const uint8_t *buf, size_t len, rlfeed_reply *out);

/*
 * rlfeed_client_open() - open a REQ socket and start dialling @url.
 * @url: "tcp://host:port" or "ipc:///path", <= RLFEED_CLIENT_URL_MAX bytes (borrowed)
 * @timeout_ms: bound on each send and each receive; <= 0 means 5000
 * The dial runs in the background and is retried until the handle is
 * closed, so a client may be opened before the service listens; calls made
 * before a connection exists wait up to timeout_ms (BASE_ETIMEDOUT). To
 * check readiness, poll rlfeed_client_health().
 * Return: BASE_OK and *out_c; BASE_EINVAL for a malformed or unsupported URL;
 *         BASE_ENOMEM; BASE_EIO if nng cannot create the socket or dialer.
 */
base_err rlfeed_client_open(const char *url, int timeout_ms, rlfeed_client **out_c);

/*
 * rlfeed_key_load() - read the key file at @path (docs/security.md: `rlfeed key new`),
 * which group and others must have no permission on (mode 0600 or stricter).
 * @errbuf: @errlen bytes for the reason (NULL: none wanted)
 * Return: BASE_OK; BASE_EIO (cannot open it); BASE_EINVAL (NULL @path or @out, not a
 *         regular file, mode, syntax), the reason in @errbuf.
 */
base_err rlfeed_key_load(const char *path, proto_auth_keyfile *out, char *errbuf, size_t errlen);

/*
 * rlfeed_client_use_key() / rlfeed_push_use_key() - sign every request sent from now on
 * with @key (copied): the "auth" entry of docs/protocol.md section 2a, the current time and
 * a fresh nonce, so each request is accepted once. Requests passed to rlfeed_client_call()
 * or rlfeed_push_send() must then not carry an "auth" entry of their own, and must be one
 * msgpack map (the entry is added to it): anything else is BASE_EINVAL, and not sent.
 * Return: BASE_OK; BASE_EINVAL for NULL.
 */
base_err rlfeed_client_use_key(rlfeed_client *c, const proto_auth_keyfile *key);
base_err rlfeed_push_use_key(rlfeed_push *p, const proto_auth_keyfile *key);

/*
 * TLS to a tls+tcp:// URL (docs/security.md). Every path is borrowed for the open call only.
 */
typedef struct rlfeed_tls {
    const char *ca_file;     /* required: PEM CAs the server's certificate must chain to */
    const char *cert_file;   /* NULL: no client certificate; else PEM certificate (mutual TLS) */
    const char *key_file;    /* NULL: cert_file holds the key too */
    const char *server_name; /* NULL: the URL's host; else the name its certificate must carry */
} rlfeed_tls;

/*
 * rlfeed_client_open_tls() / rlfeed_push_open_tls() - as rlfeed_client_open() and
 * rlfeed_push_open(), with @tls for tls+tcp:// and wss:// URLs (required there: such a URL
 * with @tls NULL, also through rlfeed_client_open(), is BASE_EINVAL; @tls with any other
 * URL is BASE_EINVAL too). The files are read now.
 * A server that fails verification (or refuses the client's certificate) looks like one
 * that does not answer: calls time out (BASE_ETIMEDOUT) while the dialer retries.
 * Return: as rlfeed_client_open(); also BASE_EINVAL for no ca_file, a file nng refuses, a
 *         key_file without a cert_file or a key that is not the certificate's; BASE_EIO for
 *         a certificate or key file that cannot be read.
 */
base_err rlfeed_client_open_tls(const char *url, int timeout_ms, const rlfeed_tls *tls,
                                rlfeed_client **out_c);
base_err rlfeed_push_open_tls(const char *url, int timeout_ms, const rlfeed_tls *tls,
                              rlfeed_push **out_p);

/* rlfeed_client_close() - close the socket and free @c. Accepts NULL. */
void rlfeed_client_close(rlfeed_client *c);

/*
 * rlfeed_client_call() - send the msgpack request @req and return the raw reply.
 * @req: @req_len bytes (borrowed; not validated here, the service does that, but with a key
 *       loaded (rlfeed_client_use_key()) it must be one msgpack map, to be signed)
 * On success *out_reply is a base_alloc()ed copy of the reply (free with
 * base_free()) and *out_len its length (>= 1). Nothing is written on failure.
 * Return: BASE_OK; BASE_EINVAL if @req_len is 0 (or, signing, @req is not a map); BASE_ELIMIT past
 *         PROTO_MAX_MSG_BYTES; BASE_EPROTO for an empty reply; BASE_ETIMEDOUT;
 *         BASE_ECLOSED; BASE_EIO; BASE_ENOMEM.
 */
base_err rlfeed_client_call(rlfeed_client *c, const uint8_t *req, size_t req_len,
                            uint8_t **out_reply, size_t *out_len);

/* The optional fields of a decide; every pointer is borrowed. Zeroed: none of them. */
typedef struct rlfeed_decide_opts {
    const char *event_id;        /* NULL or "": the service assigns one */
    const char *conversation_id; /* NULL or "": not part of a conversation */
    uint32_t turn;               /* 0: not sent; else the turn within the conversation */
    bool deferred;               /* learn only once rlfeed_client_activate() says it was shown */
    const float *features;       /* NULL, or [n_cand x action_dim]: an open action set's */
    uint32_t action_dim;         /*   candidate features, row per candidate */
} rlfeed_decide_opts;

/*
 * rlfeed_client_decide_ex() - ask which candidate to serve.
 * @policy: policy name (borrowed)   @opts: NULL for none (borrowed)
 * @embedding: [dim] context embedding (borrowed), sent as a float32 bin
 * @cand_ids: [n_cand] action ids (borrowed)   @base_logits: [n_cand] base model scores
 * On BASE_OK, *out_reply holds the decoded reply: if out_reply->ok, the fields
 * event_id, chosen, chosen_index, pmf[n_pmf], model_version and slot; otherwise
 * out_reply->error (code and message).
 * Return: BASE_OK; BASE_EINVAL (NULL arguments or a NULL id, an empty policy, n_cand 0 or
 *         > BASE_CAND_MAX, dim > BASE_DIM_MAX); BASE_EPROTO if the reply could not be
 *         decoded; the transport errors of rlfeed_client_call().
 */
base_err rlfeed_client_decide_ex(rlfeed_client *c, const char *policy,
                                 const rlfeed_decide_opts *opts, const float *embedding,
                                 uint32_t dim, uint32_t n_cand, const char *const *cand_ids,
                                 const float *base_logits, rlfeed_reply *out_reply);

/* rlfeed_client_decide() - rlfeed_client_decide_ex() with only an @event_id (NULL or ""). */
base_err rlfeed_client_decide(rlfeed_client *c, const char *policy, const char *event_id,
                              const float *embedding, uint32_t dim, uint32_t n_cand,
                              const char *const *cand_ids, const float *base_logits,
                              rlfeed_reply *out_reply);

/*
 * rlfeed_client_feedback() - report an outcome and wait for the acknowledgement.
 * @event_id: the decision it belongs to   @signal: a signal of the policy's reward spec
 * @value: the signal's value (1.0 for plain events)
 * @outcome_id: NULL or "" for none; otherwise an idempotency key: the service
 *   applies an outcome_id once and answers repeats with out_reply->duplicate.
 * On BASE_OK, out_reply->status says what happened ("matched", "late", ...).
 * Return: as rlfeed_client_decide_ex(), and BASE_EINVAL without a policy, an
 *         event_id or a signal; service-side rejections (unknown_event,
 *         unknown_signal, ...) arrive as out_reply->ok == false.
 */
base_err rlfeed_client_feedback(rlfeed_client *c, const char *policy, const char *event_id,
                                const char *signal, double value, const char *outcome_id,
                                rlfeed_reply *out_reply);

/*
 * rlfeed_client_feedback_conv() - rlfeed_client_feedback() for a whole conversation: the
 * service credits the outcome to the conversation's open decisions by the policy's credit
 * rule (docs/rewards.md). @conversation_id: as given to rlfeed_client_decide_ex().
 */
base_err rlfeed_client_feedback_conv(rlfeed_client *c, const char *policy,
                                     const char *conversation_id, const char *signal, double value,
                                     const char *outcome_id, rlfeed_reply *out_reply);

/*
 * rlfeed_client_activate() - the deferred decision @event_id was shown: learn from it,
 * with its join window starting now. out_reply->status is "matched", "duplicate" (already
 * active) or "late" (its window had closed).
 * Return: as rlfeed_client_decide_ex(); BASE_EINVAL without a policy or event_id.
 */
base_err rlfeed_client_activate(rlfeed_client *c, const char *policy, const char *event_id,
                                rlfeed_reply *out_reply);

/*
 * rlfeed_client_stats() / rlfeed_client_health() - raw calls for ops.
 * @policy: NULL for all policies (stats only)
 * The reply is returned undecoded, as by rlfeed_client_call() (free it with
 * base_free()): read health with rlfeed_reply_decode() (status, redis) and
 * stats with proto_stats_decode() (proto/stats.h), which reads every counter.
 */
base_err rlfeed_client_stats(rlfeed_client *c, const char *policy, uint8_t **out_reply,
                             size_t *out_len);

/*
 * rlfeed_client_explain() - a raw explain call for decision @event_id of
 * @policy (docs/protocol.md, section 5c): read an error with
 * rlfeed_reply_decode() and the breakdown with proto_explain_decode()
 * (proto/explain.h). Free the reply with base_free().
 * Return: BASE_OK; BASE_EINVAL (NULL or empty argument); the transport
 *         errors of rlfeed_client_call().
 */
base_err rlfeed_client_explain(rlfeed_client *c, const char *policy, const char *event_id,
                               uint8_t **out_reply, size_t *out_len);
base_err rlfeed_client_health(rlfeed_client *c, uint8_t **out_reply, size_t *out_len);

/*
 * rlfeed_push_open() - open a PUSH socket and dial @url (the service's
 * feedback PULL endpoint, rlfeedd --pull-url, not its REQ/REP one). URL
 * rules, timeout, background dialling and errors as rlfeed_client_open().
 */
base_err rlfeed_push_open(const char *url, int timeout_ms, rlfeed_push **out_p);

/* rlfeed_push_close() - close the socket and free @p. Accepts NULL. */
void rlfeed_push_close(rlfeed_push *p);

/*
 * rlfeed_push_feedback() - queue a feedback message without waiting for an
 * answer. Arguments as rlfeed_client_feedback(). There is no reply: use an
 * @outcome_id if the caller may retry.
 * Blocks at most timeout_ms when no peer is connected or nng's queue is full.
 * Return: BASE_OK once queued; BASE_EINVAL; BASE_ELIMIT; BASE_ETIMEDOUT;
 *         BASE_ECLOSED; BASE_EIO; BASE_ENOMEM.
 */
base_err rlfeed_push_feedback(rlfeed_push *p, const char *policy, const char *event_id,
                              const char *signal, double value, const char *outcome_id);

/* rlfeed_push_feedback_conv() - rlfeed_push_feedback() for a conversation's outcome. */
base_err rlfeed_push_feedback_conv(rlfeed_push *p, const char *policy, const char *conversation_id,
                                   const char *signal, double value, const char *outcome_id);

/* rlfeed_push_send() - queue raw msgpack bytes (borrowed). Errors as above. */
base_err rlfeed_push_send(rlfeed_push *p, const uint8_t *msg, size_t len);

/*
 * rlfeed_client_lib_fini() - release nng's process-wide state (its threads
 * and sockets still being torn down in the background) once every client and
 * push handle is closed. Optional; for programs run under leak checkers.
 * No client call may follow it.
 */
void rlfeed_client_lib_fini(void);

#endif
