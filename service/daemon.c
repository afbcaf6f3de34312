#include "service/daemon.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "proto/reply.h"
#include "proto/request.h"
#include "service/engine.h"
#include "service/lease.h"
#include "service/net.h"
#include "service/persist.h"
#include "storage/server.h"
#include "storage/store.h"

#define DRAIN_TIMEOUT_MS 10000

/*
 * What the nng handler needs. The listeners open before anything touches
 * Redis, so a second instance on the same endpoints fails before it can
 * write; until recovery is done @eng is NULL and requests are answered
 * "starting".
 */
typedef struct daemon_ctx {
    _Atomic(svc_engine *) eng;
    atomic_uint_fast64_t refused_starting; /* requests answered before the engine was up */
} daemon_ctx;

static void reply_error(svc_net_reply *slot, proto_errcode code, const char *message)
{
    base_buf b;
    base_buf_init(&b, 4096);
    if (proto_reply_error(&b, code, message) == BASE_OK) {
        svc_net_reply_send(slot, b.data, b.len);
    } else {
        svc_net_reply_send(slot, (const uint8_t *)"", 0);
    }
    base_buf_fini(&b);
}

/* Before the engine is up: health says so, everything else is retryable. */
static void answer_starting(daemon_ctx *d, const proto_request *req, svc_net_reply *slot)
{
    atomic_fetch_add(&d->refused_starting, 1);
    if (slot == NULL) {
        return; /* PULL feedback before start-up: dropped, counted in the ready log line */
    }
    if (req->op == PROTO_OP_HEALTH) {
        static const proto_health starting = {PROTO_HEALTH_STARTING, PROTO_REDIS_UNKNOWN};
        base_buf b;
        base_buf_init(&b, 256);
        if (proto_reply_health(&b, &starting) == BASE_OK) {
            svc_net_reply_send(slot, b.data, b.len);
        }
        base_buf_fini(&b);
        return;
    }
    reply_error(slot, PROTO_E_UNAVAILABLE, "starting up: rebuilding state from the log; retry");
}

static void send_to_slot(void *arg, const uint8_t *buf, size_t len)
{
    svc_net_reply_send(arg, buf, len);
}

/* The nng handler: decode, route, reply. Runs on nng callback threads. */
static void dispatch(void *arg, const uint8_t *buf, size_t len, svc_net_reply *slot)
{
    daemon_ctx *d = arg;
    svc_engine *e = atomic_load(&d->eng);
    svc_replier r = {slot != NULL ? send_to_slot : NULL, slot};
    proto_request req;
    proto_error err;
    if (proto_request_decode(buf, len, &req, &err) != BASE_OK) {
        if (e != NULL) {
            svc_engine_count_reject(e, err.code);
        }
        if (slot != NULL) {
            reply_error(slot, err.code, err.message);
        }
        return;
    }
    if (e == NULL) {
        answer_starting(d, &req, slot);
    } else if (slot == NULL && req.op != PROTO_OP_FEEDBACK) {
        /* PULL is for fire-and-forget feedback only; nobody could read another op's reply. */
        svc_engine_count_reject(e, PROTO_E_OP_NOT_ALLOWED);
    } else {
        svc_engine_handle(e, &req, &r);
    }
    proto_request_fini(&req);
}

static base_err start_redis(const svc_config *cfg, sto_server **out_srv, const char **out_url)
{
    if (cfg->redis_url[0] != '\0') {
        *out_url = cfg->redis_url;
        return BASE_OK;
    }
    char err[512] = "";
    sto_server_opts o = {
        .redis_bin = cfg->redis_bin,
        .dir = cfg->data_dir[0] != '\0' ? cfg->data_dir : NULL,
        .appendfsync = cfg->appendfsync,
        .unix_socket = false,
        .start_timeout_ms = 10000,
    };
    base_err e = sto_server_start(&o, out_srv, err, sizeof(err));
    if (e != BASE_OK) {
        base_log(BASE_LOG_ERROR, "cannot start redis-server: %s", err);
        return e;
    }
    *out_url = sto_server_url(*out_srv);
    base_log(BASE_LOG_INFO, "private redis-server at %s (data in %s, appendfsync %s)", *out_url,
             sto_server_dir(*out_srv), cfg->appendfsync);
    return BASE_OK;
}

static base_err restore(svc_engine *eng, const svc_config *cfg, const char *url)
{
    char err[512] = "";
    sto_store *s = NULL;
    base_err e = sto_store_open(url, (int)cfg->redis_timeout_ms, &s, err, sizeof(err));
    if (e == BASE_OK) {
        e = svc_engine_restore(eng, s, err, sizeof(err));
    }
    if (e != BASE_OK) {
        base_log(BASE_LOG_ERROR, "restoring models from %s: %s", url, err);
    }
    sto_store_close(s);
    return e;
}

base_err svc_daemon_run(const svc_config *cfg, int64_t manual_clock_ms)
{
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    base_clock clock;
    if (manual_clock_ms >= 0) {
        base_clock_init_manual(&clock, manual_clock_ms);
        base_log(BASE_LOG_WARN, "manual clock at %lld ms: time moves only by the 'clock' op",
                 (long long)manual_clock_ms);
    } else {
        base_clock_init_system(&clock);
    }
    sto_server *srv = NULL;
    svc_lease *lease = NULL;
    svc_persist *persist = NULL;
    svc_engine *eng = NULL;
    svc_net *net = NULL;
    const char *url = NULL;
    char err[512] = "";
    daemon_ctx ctx;
    atomic_init(&ctx.eng, NULL);
    atomic_init(&ctx.refused_starting, 0);

    /* Own the endpoints first: a second instance must fail before it touches Redis. */
    const char *urls[SVC_MAX_URLS];
    for (uint32_t i = 0; i < cfg->n_urls; i++) {
        urls[i] = cfg->urls[i];
    }
    svc_net_opts no = {
        .urls = urls,
        .n_urls = cfg->n_urls,
        .pull_url = cfg->pull_url,
        .max_message_bytes = cfg->max_message_bytes,
        .contexts = cfg->contexts,
    };
    base_err e = svc_net_open(&no, dispatch, &ctx, &net, err, sizeof(err));
    if (e != BASE_OK) {
        base_log(BASE_LOG_ERROR, "%s", err);
        goto done;
    }
    for (uint32_t i = 0; i < cfg->n_urls; i++) {
        base_log(BASE_LOG_INFO, "listening on %s (starting)", cfg->urls[i]);
    }
    if (cfg->pull_url[0] != '\0') {
        base_log(BASE_LOG_INFO, "pulling feedback on %s", cfg->pull_url);
    }
    e = start_redis(cfg, &srv, &url);
    if (e != BASE_OK) {
        goto done;
    }
    /* Then own the policies: nothing is read or written before. */
    char owner[SVC_URL_MAX];
    if (cfg->instance_id[0] != '\0') {
        base_strlcpy(owner, cfg->instance_id, sizeof(owner));
    } else {
        svc_lease_default_owner(cfg, owner, sizeof(owner));
    }
    e = svc_lease_start(url, cfg, owner, &lease, err, sizeof(err));
    if (e != BASE_OK) {
        base_log(BASE_LOG_ERROR, "%s", err);
        goto done;
    }
    base_log(BASE_LOG_INFO, "instance \"%s\" owns %u policies (lease %u ms)", owner,
             cfg->n_policies, cfg->lease_ms);
    e = svc_persist_new(url, (int)cfg->redis_timeout_ms, cfg->write_queue, &persist, err,
                        sizeof(err));
    if (e != BASE_OK) {
        base_log(BASE_LOG_ERROR, "storage: %s", err);
        goto done;
    }
    e = svc_engine_new(cfg, &clock, persist, &eng, err, sizeof(err));
    if (e != BASE_OK) {
        base_log(BASE_LOG_ERROR, "%s", err);
        goto done;
    }
    e = restore(eng, cfg, url);
    if (e != BASE_OK) {
        goto done;
    }
    e = svc_engine_start(eng);
    if (e != BASE_OK) {
        base_log(BASE_LOG_ERROR, "cannot start the learner thread");
        goto done;
    }
    atomic_store(&ctx.eng, eng);
    base_log(BASE_LOG_INFO, "ready: %u policies (%llu requests answered \"starting\" before)",
             cfg->n_policies, (unsigned long long)atomic_load(&ctx.refused_starting));

    int sig = 0;
    sigwait(&sigs, &sig);
    base_log(BASE_LOG_INFO, "signal %d: shutting down", sig);
done:
    /* Order matters: stop input, apply and snapshot, flush to Redis, release. */
    svc_net_close(net);
    svc_engine_stop(eng, DRAIN_TIMEOUT_MS);
    if (eng != NULL) {
        for (uint32_t i = 0; i < cfg->n_policies; i++) {
            uint64_t n = 0, sum = 0;
            if (svc_engine_model_info(eng, cfg->policy[i].name, &n, &sum)) {
                base_log(BASE_LOG_INFO, "policy %s: %" PRIu64 " updates, checksum %016" PRIx64,
                         cfg->policy[i].name, n, sum);
            }
        }
    }
    svc_persist_close(persist, DRAIN_TIMEOUT_MS);
    if (svc_lease_lost(lease)) {
        e = BASE_ESTORE; /* another instance owns a policy now: not a clean stop */
    }
    svc_lease_stop(lease); /* after the last write: hands the policies over */
    svc_net_free(net);
    svc_engine_free(eng);
    sto_server_stop(srv);
    if (e == BASE_OK) {
        base_log(BASE_LOG_INFO, "stopped cleanly");
    }
    return e;
}
