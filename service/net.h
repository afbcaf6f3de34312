#ifndef SERVICE_NET_H
#define SERVICE_NET_H

/*
 * The nng endpoints: REQ/REP listeners served by several contexts with aio
 * callbacks, and an optional PULL listener for fire-and-forget messages.
 * This is the only file that includes nng.h.
 *
 * Each REP context cycles RECV -> HANDLE -> SEND -> RECV. The handler runs on
 * an nng callback thread with the message body (borrowed for the duration of
 * the call) and a reply slot; it must answer through svc_net_reply_send()
 * exactly once, either before it returns or later from any thread. Messages
 * from the PULL socket are handled with a NULL slot (nobody waits) on the
 * PULL socket's own worker threads, each connection's in the order it sent
 * them, each taken once svc_net_opts.pull_ready says there is room for it.
 *
 * Every socket sets NNG_OPT_RECVMAXSZ: nng 1.5.2 has no default limit and
 * would allocate whatever size a peer's header claims. Oversized messages
 * drop the peer's connection at the header; they are never seen here.
 *
 * A peer that sends requests but does not read its replies cannot hold the
 * contexts: a reply its connection has not taken within reply_timeout_ms is
 * dropped (logged once per run of drops on one connection) and the context goes back to
 * receiving. A connection that already has a quarter of a socket's contexts
 * (at least one) waiting on it gets a quarter of reply_timeout_ms for each
 * further reply (250 ms by default). Contexts take requests from
 * connections in turn, so others are served while such a peer's replies
 * expire. The connection itself stays open (see reply_dropped() in net.c for
 * why it is not closed). A reply waits only while an earlier reply to the
 * same connection cannot be written (the peer's socket buffer is full), so a
 * peer that reads its replies is not cut off; one that pipelines large
 * replies over a slow link may need a larger reply_timeout_ms.
 *
 * States: OPEN -> CLOSED [svc_net_close] -> freed [svc_net_free]. After
 * close no new request is handled; replies still being sent fail quietly.
 * Free only after every outstanding reply slot has been answered.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct svc_net svc_net;
typedef struct svc_net_reply svc_net_reply;

typedef void (*svc_net_handler)(void *arg, const uint8_t *buf, size_t len, svc_net_reply *slot);

struct nng_tls_config;

typedef struct svc_net_opts {
    const char *const *urls; /* REQ/REP listen URLs (tcp:// or ipc://) */
    size_t n_urls;
    const char *pull_url;       /* NULL or "" for none */
    size_t max_message_bytes;   /* NNG_OPT_RECVMAXSZ */
    uint32_t contexts;          /* REP contexts per listening socket */
    uint32_t reply_timeout_ms;  /* longest a reply may wait for its peer to take it, >= 10 */
    uint32_t ipc_mode;          /* file mode of ipc:// sockets (0: nng's default) */
    long ipc_gid;               /* their group (-1: the process's) */
    struct nng_tls_config *tls; /* for tls+tcp:// URLs (service/tls.h); NULL: none */
    /*
     * The PULL socket takes its next message only once this says yes (called with the
     * handler's arg and the number of messages taken but not yet handled; asked again every
     * PULL_WAIT_MS while it says no). Meanwhile messages wait in the connections' buffers
     * and then in the senders': back-pressure, not loss. NULL: always yes.
     */
    bool (*pull_ready)(void *arg, size_t pending);
    /*
     * Non-NULL: bound[i] (bound_size bytes) receives the URL urls[i] listens on, as another
     * process would have to name it: a TCP port 0 replaced by the port the system bound, a
     * relative ipc:// path made absolute (it may be urls[i] itself).
     */
    char *const *bound;
    size_t bound_size;
} svc_net_opts;

/*
 * svc_net_open() - listen on every URL and start receiving.
 * Return: BASE_OK; BASE_EINVAL for a bad URL; BASE_EIO if a listener fails
 *         (reason in @errbuf); BASE_ENOMEM.
 */
base_err svc_net_open(const svc_net_opts *o, svc_net_handler h, void *arg, svc_net **out,
                      char *errbuf, size_t errlen);

/* Answer the request of @slot with @len bytes at @buf (copied). */
void svc_net_reply_send(svc_net_reply *slot, const uint8_t *buf, size_t len);

/*
 * Stop receiving; close the sockets; handle the PULL messages already taken (on the PULL
 * workers, which then stop); wait (up to 2 s) until no request handler is running, so what
 * handlers submit to can be closed next.
 */
void svc_net_close(svc_net *n);
/* Release everything (stopping the PULL workers, if svc_net_close() did not). Accepts NULL. */
void svc_net_free(svc_net *n);

#endif
