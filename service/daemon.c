#include "service/daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mbedtls/platform_util.h>

#include "base/hash.h"
#include "base/clock.h"
#include "base/log.h"
#include "proto/auth.h"
#include "proto/request.h"
#include "service/audit.h"
#include "service/catalog.h"
#include "service/dispatch.h"
#include "service/engine.h"
#include "service/forward.h"
#include "service/http.h"
#include "service/inbox.h"
#include "service/lease.h"
#include "service/registry.h"
#include "service/rollup.h"
#include "service/net.h"
#include "service/nng_compat.h"
#include "service/persist.h"
#include "service/tls.h"
#include "storage/server.h"
#include "storage/spill.h"
#include "storage/store.h"

/*
 * Shutdown budget, from the signal (docs/operations.md, "Stopping"): the
 * learner joins and learns what is closed, the writer stores what is
 * queued, whatever is still unstored is spilled to data_dir, the private
 * redis-server is stopped. Together at most SHUTDOWN_MS, plus the time the
 * disk needs to write and fsync a spill file.
 */
#define SHUTDOWN_MS 10000
#define LEARN_DRAIN_MS 3000     /* Redis up: join, store and learn what is closed */
#define LEARN_DRAIN_AWAY_MS 500 /* Redis away: joined examples cannot be stored anyway */
#define STORE_BY_MS 7000        /* stop sending to Redis this long after the signal */
#define FORWARD_BY_MS 2000      /* shared = on: stop handing records to owners after this */
#define OUTAGE_WAIT_MS 2000     /* Redis away: wait this long for it before spilling */
#define REDIS_STOP_MIN_MS 1000  /* SIGTERM of the private redis-server: at least this long */
#define LEASE_STOP_MIN_MS 200   /* releasing the policy leases: at least this long */

#define SUPERVISE_MS 100        /* how often the private redis-server is checked */
#define RESTART_BACKOFF_MS 1000 /* a failed restart is tried again after this, doubling */
#define RESTART_BACKOFF_MAX_MS 30000

/* The private redis-server's keeper: restarts it when it dies (main thread only). */
typedef struct keeper {
    sto_server *srv;
    uint64_t next_try_ns;
    int backoff_ms;
} keeper;

static void send_to_slot(void *arg, const uint8_t *buf, size_t len)
{
    svc_net_reply_send(arg, buf, len);
}

/*
 * The nng handler: every request goes through the dispatcher, as the HTTP API's do. Runs on
 * nng callback threads. The listeners open before anything touches Redis, so a second
 * instance on the same endpoints fails before it can write; until recovery is done the
 * dispatcher answers "starting".
 */
static void dispatch(void *arg, const uint8_t *buf, size_t len, svc_net_reply *slot)
{
    svc_replier r = {slot != NULL ? send_to_slot : NULL, slot, NULL, base_mono_ns(), 0};
    svc_dispatch_run(arg, buf, len, &r, slot != NULL ? -1 : (int)PROTO_OP_FEEDBACK);
}

/*
 * If the private redis-server died (kill -9, a crash, the OOM killer),
 * start it again on the same port and data directory: its AOF brings back
 * everything it had acknowledged (all of it with appendfsync always), and
 * the writer, reconnecting meanwhile, sends again what it has not had
 * answered. Blocks while redis-server starts (up to its start timeout).
 */
static void keep_redis(keeper *k)
{
    int st = 0;
    if (k->srv == NULL) {
        return;
    }
    if (sto_server_pid(k->srv) > 0) {
        if (!sto_server_reap(k->srv, &st)) {
            return; /* running */
        }
        char shown[SVC_URL_MAX];
        sto_url_redact(sto_server_url(k->srv), shown, sizeof(shown));
        base_log(BASE_LOG_WARN, "private redis-server %s %d; restarting it on %s",
                 WIFSIGNALED(st) ? "killed by signal" : "exited with status",
                 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), shown);
        k->next_try_ns = 0;
        k->backoff_ms = RESTART_BACKOFF_MS;
    }
    if (base_mono_ns() < k->next_try_ns) {
        return;
    }
    char err[512] = "";
    if (sto_server_restart(k->srv, err, sizeof(err)) == BASE_OK) {
        base_log(BASE_LOG_INFO, "private redis-server restarted (pid %d)",
                 (int)sto_server_pid(k->srv));
        return;
    }
    base_log(BASE_LOG_ERROR, "cannot restart the private redis-server (%s); retrying in %d s", err,
             k->backoff_ms / 1000);
    k->next_try_ns = base_mono_ns() + (uint64_t)k->backoff_ms * 1000000u;
    k->backoff_ms =
        k->backoff_ms * 2 > RESTART_BACKOFF_MAX_MS ? RESTART_BACKOFF_MAX_MS : k->backoff_ms * 2;
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
        .unix_socket = true,
        .start_timeout_ms = 10000,
        .auth = true,
    };
    base_err e = sto_server_start(&o, out_srv, err, sizeof(err));
    if (e != BASE_OK) {
        base_log(BASE_LOG_ERROR, "cannot start redis-server: %s", err);
        return e;
    }
    if (sto_server_leftover(*out_srv) > 0) {
        base_log(BASE_LOG_WARN,
                 "a redis-server (pid %d) an earlier rlfeedd started on %s was still running: "
                 "waited for it to stop (or stopped it) before starting this one",
                 (int)sto_server_leftover(*out_srv), sto_server_dir(*out_srv));
    }
    *out_url = sto_server_url(*out_srv);
    char shown[SVC_URL_MAX + 64];
    sto_url_redact(*out_url, shown, sizeof(shown));
    base_log(BASE_LOG_INFO,
             "private redis-server at %s (pid %d, data in %s, appendfsync %s, password in "
             "redis.conf there)",
             shown, (int)sto_server_pid(*out_srv), sto_server_dir(*out_srv), cfg->appendfsync);
    return BASE_OK;
}

/*
 * data_dir, where a shutdown spills: created (mode 0700) if absent, so that the first
 * shutdown that needs it finds it; one that cannot be made or written stops the start.
 */
static base_err check_data_dir(const char *dir)
{
    struct stat st;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        base_log(BASE_LOG_ERROR, "data_dir %s: cannot create it: %s", dir, strerror(errno));
        return BASE_EIO;
    }
    if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
        base_log(BASE_LOG_ERROR, "data_dir %s: %s", dir, strerror(ENOTDIR));
        return BASE_EIO;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        base_log(BASE_LOG_ERROR,
                 "data_dir %s: %s; a shutdown could not spill unstored records there", dir,
                 strerror(errno));
        return BASE_EIO;
    }
    return BASE_OK;
}

/*
 * Append what a previous shutdown spilled to data_dir, before recovery
 * reads the streams. Idempotent (storage/spill.h): a start cut short
 * replays the same files again.
 */
static base_err replay_spills(const svc_config *cfg, const char *url, const char *owner)
{
    char err[512] = "";
    sto_store *s = NULL;
    sto_spill_report rep;
    memset(&rep, 0, sizeof(rep));
    base_err e = sto_store_open(url, (int)cfg->redis_timeout_ms, &s, err, sizeof(err));
    if (e == BASE_OK) {
        /* Instances that may take policies over replay only the policies they own. */
        e = cfg->standby || cfg->shared
                ? sto_spill_replay_as(s, cfg->data_dir, owner, &rep, err, sizeof(err))
                : sto_spill_replay(s, cfg->data_dir, &rep, err, sizeof(err));
    }
    sto_store_close(s);
    if (rep.partial > 0) {
        base_log(BASE_LOG_WARN,
                 "%u unfinished spill file(s) (rlfeed-spill-*.bin.tmp) in %s: a shutdown was cut "
                 "short while writing them and their records are lost; remove them",
                 rep.partial, cfg->data_dir);
    }
    if (rep.foreign > 0) {
        base_log(BASE_LOG_WARN,
                 "%" PRIu64 " spilled records not replayed: their policies were taken over by "
                 "another instance while this one was down (it writes their streams now); they "
                 "are lost, as unstored records are in a crash",
                 rep.foreign);
    }
    if (rep.files > 0) {
        base_log(BASE_LOG_INFO,
                 "replayed %u spill file(s) from %s: %" PRIu64 " records, %" PRIu64
                 " appended, %" PRIu64 " already stored, %" PRIu64 " under new ids",
                 rep.files, cfg->data_dir, rep.records, rep.appended, rep.present, rep.renumbered);
    }
    if (e != BASE_OK) {
        base_log(BASE_LOG_ERROR,
                 "replaying spill files in %s: %s (%s); nothing was lost: the file stays and "
                 "is replayed at the next start",
                 cfg->data_dir, err, base_strerror(e));
    }
    return e;
}

/* The pseudonym key: the file pseudonym_key names, else the one kept in Redis (made once). */
static base_err pseudonym_key(const svc_config *cfg, sto_store *s, svc_engine *eng)
{
    uint8_t key[32], fresh[32];
    char why[160] = "";
    base_err e = BASE_OK;
    if (cfg->pseudonym_key[0] != '\0') {
        if (!proto_pseudonym_key_load(cfg->pseudonym_key, key, why, sizeof(why))) {
            base_log(BASE_LOG_ERROR, "[server] pseudonym_key %s: %s", cfg->pseudonym_key, why);
            return BASE_EINVAL;
        }
    } else {
        base_entropy_fill(fresh, sizeof(fresh));
        e = sto_pseudonym_key(s, fresh, key);
        if (e != BASE_OK) {
            base_log(BASE_LOG_ERROR, "pseudonym key in redis (%s): %s", STO_PSEUDONYM_KEY,
                     base_strerror(e));
            return e;
        }
    }
    e = svc_engine_set_pseudonym_key(eng, key);
    mbedtls_platform_zeroize(key, sizeof(key)); /* the engine keeps its own copy */
    mbedtls_platform_zeroize(fresh, sizeof(fresh));
    if (e != BASE_OK) {
        base_log(BASE_LOG_ERROR, "out of memory");
        return BASE_ENOMEM;
    }
    base_log(BASE_LOG_INFO, "user and conversation ids are stored pseudonymised (key %s)",
             cfg->pseudonym_key[0] != '\0' ? cfg->pseudonym_key : "kept in redis");
    return BASE_OK;
}

/* What sto_keep_put() keeps the replay memory under (with the instance id). */
#define REPLAY_KEPT "replay-memory"

/*
 * auth = on: the replay memory a clean stop of this instance kept in Redis, back into
 * @auth, so that a proof used before the restart is still refused (docs/security.md).
 */
static void replay_memory_restore(svc_auth *auth, sto_store *s, const char *who)
{
    base_buf b;
    bool found = false;
    uint64_t n = 0;
    base_buf_init(&b, (size_t)1 << 30);
    base_err e = sto_keep_take(s, REPLAY_KEPT, who, &b, &found);
    if (e == BASE_OK && found) {
        e = svc_auth_restore(auth, b.data, b.len, &n);
    }
    if (e != BASE_OK) {
        base_log(BASE_LOG_WARN,
                 "replay memory: the last stop's not restored (%s): a request signed before "
                 "this start, within auth_window_ms, is not known as used%s",
                 base_strerror(e), n > 0 ? "" : " (none restored)");
    } else if (found) {
        base_log(BASE_LOG_INFO, "replay memory: %" PRIu64 " proofs of the last run restored", n);
    }
    base_buf_fini(&b);
}

/* auth = on, at a clean stop: the replay memory into Redis for the next start. */
static void replay_memory_keep(svc_auth *auth, const svc_config *cfg, const char *url,
                               const char *who)
{
    char err[512] = "";
    sto_store *s = NULL;
    base_buf b;
    base_buf_init(&b, (size_t)1 << 30);
    base_err e = svc_auth_keep(auth, &b);
    if (e == BASE_OK) {
        e = sto_store_open(url, (int)cfg->redis_timeout_ms, &s, err, sizeof(err));
    }
    if (e == BASE_OK) {
        /* Past three windows every generation kept would have rotated out. */
        e = sto_keep_put(s, REPLAY_KEPT, who, b.data, b.len, 3 * (int64_t)cfg->auth_window_ms);
        if (e == BASE_ESTORE) {
            (void)snprintf(err, sizeof(err), "%s (%s)", base_strerror(e), sto_store_refusal(s));
        }
    }
    if (e != BASE_OK) {
        base_log(BASE_LOG_WARN,
                 "replay memory: not kept for the next start (%s): it will not know the proofs "
                 "used in the last auth_window_ms",
                 err[0] != '\0' ? err : base_strerror(e));
    }
    sto_store_close(s);
    base_buf_fini(&b);
}

/* Rebuild every policy, then record it in the audit trail on the same connection. */
static base_err restore(svc_engine *eng, const svc_config *cfg, const char *url, const char *who,
                        svc_persist *persist, svc_auth *auth)
{
    char err[512] = "";
    sto_store *s = NULL;
    base_err e = sto_store_open(url, (int)cfg->redis_timeout_ms, &s, err, sizeof(err));
    if (e == BASE_OK && pseudonym_key(cfg, s, eng) != BASE_OK) {
        sto_store_close(s);
        return BASE_EINVAL;
    }
    if (e == BASE_OK && svc_auth_enabled(auth)) {
        replay_memory_restore(auth, s, who);
    }
    if (e == BASE_OK) {
        svc_log_reader r = svc_log_reader_of_store(s);
        e = svc_engine_restore(eng, &r, err, sizeof(err));
    }
    if (e == BASE_OK) {
        uint64_t failed = 0;
        svc_audit_startup(s, eng, cfg, who, &failed);
        svc_persist_count_audit_failed(persist, failed);
    }
    if (e != BASE_OK) {
        char shown[SVC_URL_MAX + 64];
        sto_url_redact(url, shown, sizeof(shown)); /* the private server's has its password */
        /* With the policy's field when one policy's restore failed (a JSON log filters on it). */
        const char *pol = eng != NULL ? svc_engine_restore_failed(eng) : "";
        base_log_policy(BASE_LOG_ERROR, pol[0] != '\0' ? pol : NULL, "restoring models from %s: %s",
                        shown, err);
    }
    sto_store_close(s);
    return e;
}

/* Say what shutdown could not store, and where it went. */
static void report_close(const svc_persist_report *rep, const svc_config *cfg)
{
    bool temporary = cfg->redis_url[0] == '\0' && cfg->data_dir[0] == '\0';
    if (rep->outage_ms > 0) {
        base_log(BASE_LOG_WARN, "shutdown: redis %s for the last %.1f s",
                 rep->refusing ? "refusing writes" : "unreachable", (double)rep->outage_ms / 1e3);
    }
    if (rep->spilled > 0) {
        base_log(BASE_LOG_WARN,
                 "shutdown: %" PRIu64 " records not stored in redis were spilled to %s; the "
                 "next start appends them before recovery",
                 rep->spilled, rep->spill_path);
    }
    if (rep->snapshots > 0 && !temporary) { /* else there is no next start to replay them */
        base_log(BASE_LOG_INFO,
                 "shutdown: %" PRIu64 " checkpoint(s) not stored; the next start replays the "
                 "streams from the last stored one",
                 rep->snapshots);
    }
    if (rep->lost > 0) {
        base_log(BASE_LOG_ERROR, "shutdown: %" PRIu64 " records were not stored and are lost: %s%s",
                 rep->lost, rep->error,
                 temporary ? " (without data_dir the private redis-server's data is temporary "
                             "too, and removed now)"
                           : "");
    }
}

/* shared = on: another instance took policy @i's lease: follow it (service/lease.h). */
static void on_lease_lost(void *arg, uint32_t i, const char *holder)
{
    svc_engine_step_down(arg, i, holder);
}

base_err svc_daemon_run(svc_config *cfg, int64_t manual_clock_ms)
{
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP); /* taken by the wait below and ignored: there is no reload */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* A file-size limit (ulimit -f) is a write error (EFBIG), as a full disk is, not a kill. */
    signal(SIGXFSZ, SIG_IGN);

    uint64_t started = base_mono_ns();
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
    svc_registry *reg = NULL;
    svc_catalog *cat = NULL;
    svc_forward *fwd = NULL; /* shared = on */
    svc_inbox *inbox = NULL; /* shared = on */
    svc_net *net = NULL;
    svc_http *http = NULL;
    const char *url = NULL;
    char err[512] = "";
    svc_dispatch disp;
    svc_auth *auth = NULL;
    svc_dispatch_init(&disp, manual_clock_ms >= 0);
    base_err e = svc_auth_new(cfg, &auth);
    if (e != BASE_OK) {
        base_log(BASE_LOG_ERROR, "out of memory");
        return e;
    }
    svc_dispatch_set_auth(&disp, auth);
    struct nng_tls_config *tls = NULL;
    if (cfg->auth) {
        base_log(BASE_LOG_INFO, "auth on: %u clients", cfg->n_clients);
    }

    /* Own the endpoints first: a second instance must fail before it touches Redis. */
    const char *urls[SVC_MAX_URLS];
    char *as_bound[SVC_MAX_URLS];
    for (uint32_t i = 0; i < cfg->n_urls; i++) {
        urls[i] = cfg->urls[i];
        as_bound[i] = cfg->urls[i]; /* as bound: the default instance id and stats name it */
    }
    svc_net_opts no = {
        .urls = urls,
        .n_urls = cfg->n_urls,
        .bound = as_bound,
        .bound_size = sizeof(cfg->urls[0]),
        .pull_url = cfg->pull_url,
        .pull_ready = svc_dispatch_pull_ready,
        .max_message_bytes = cfg->max_message_bytes,
        .contexts = cfg->contexts,
        .reply_timeout_ms = cfg->reply_timeout_ms,
        .ipc_mode = cfg->ipc_mode,
        .ipc_gid = -1,
    };
    gid_t gid;
    if (svc_config_ipc_gid(cfg, &gid)) {
        no.ipc_gid = (long)gid;
    }
    e = svc_tls_server(cfg, &tls, err, sizeof(err));
    if (e != BASE_OK) {
        base_log(BASE_LOG_ERROR, "%s", err);
        goto done;
    }
    no.tls = tls;
    e = svc_net_open(&no, dispatch, &disp, &net, err, sizeof(err));
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
    /* /healthz answers from here on; /readyz says "starting" until the engine is up. */
    if (cfg->http_url[0] != '\0') {
        char bound[SVC_URL_MAX];
        e = svc_http_open(cfg->http_url, &disp, cfg->max_message_bytes, tls, &http, bound,
                          sizeof(bound), err, sizeof(err));
        if (e != BASE_OK) {
            base_log(BASE_LOG_ERROR, "%s", err);
            goto done;
        }
        base_log(BASE_LOG_INFO, "http on %s", bound);
    }
    if (cfg->replicas_ack > 0 && cfg->redis_url[0] == '\0') {
        base_log(BASE_LOG_ERROR,
                 "replicas_ack = %u needs a redis URL: the private redis-server "
                 "has no replicas, so nothing could be acknowledged",
                 cfg->replicas_ack);
        e = BASE_EINVAL;
        goto done;
    }
    /* Before the private redis-server, which keeps its files there too. */
    if (cfg->data_dir[0] != '\0') {
        e = check_data_dir(cfg->data_dir);
        if (e != BASE_OK) {
            goto done;
        }
    }
    e = start_redis(cfg, &srv, &url);
    if (e != BASE_OK) {
        goto done;
    }
    /* The policy catalog's definitions in force, before the policies are owned and built. */
    e = svc_catalog_merge(cfg, url, err, sizeof(err));
    if (e != BASE_OK) {
        base_log(BASE_LOG_ERROR, "%s", err);
        goto done;
    }
    /* Then own the policies: nothing is read or written before. */
    char owner[SVC_URL_MAX];
    if (cfg->instance_id[0] != '\0') {
        base_strlcpy(owner, cfg->instance_id, sizeof(owner));
    } else {
        svc_lease_default_owner(cfg, owner, sizeof(owner));
    }
    sto_lease_set_shared(cfg->shared); /* the leases say whether followers' records are taken */
    for (uint32_t i = 0; cfg->shared && i < cfg->n_policies; i++) {
        if (cfg->policy[i].reward.backward_window_ms == 0) {
            base_log_policy(BASE_LOG_WARN, cfg->policy[i].name,
                            "policy %s: shared = on but backward_window_ms = 0: an outcome that "
                            "reaches its owner before the decision another instance served "
                            "is unknown_event (docs/operations.md, \"Several instances serving "
                            "one policy\")",
                            cfg->policy[i].name);
        }
    }
    if (cfg->standby || cfg->shared) {
        e = svc_lease_split(url, cfg, owner, err, sizeof(err));
        if (e != BASE_OK) {
            base_log(BASE_LOG_ERROR, "%s", err);
            goto done;
        }
    }
    e = svc_lease_start(url, cfg, owner, &lease, err, sizeof(err));
    if (e != BASE_OK) {
        base_log(BASE_LOG_ERROR, "%s", err);
        goto done;
    }
    uint32_t followed = 0;
    for (uint32_t i = 0; i < cfg->n_policies; i++) {
        followed += svc_config_follows(cfg, i);
    }
    base_log(BASE_LOG_INFO, "instance \"%s\" owns %u policies (lease %u ms)%s", owner,
             cfg->n_policies - followed, cfg->lease_ms,
             cfg->n_waiting > 0 ? "; stands by for the others"
             : followed > 0     ? "; follows the others (shared = on)"
                                : "");
    /* Records a shutdown could not store, before anything new is written. */
    if (cfg->data_dir[0] != '\0') {
        e = replay_spills(cfg, url, owner);
        if (e != BASE_OK) {
            goto done;
        }
    }
    e = svc_persist_new(url, (int)cfg->redis_timeout_ms, cfg->write_queue, &persist, err,
                        sizeof(err));
    if (e != BASE_OK) {
        base_log(BASE_LOG_ERROR, "storage: %s", err);
        goto done;
    }
    svc_persist_set_group_commit(persist, cfg->group_commit_us);
    svc_persist_set_replicas(persist, cfg->replicas_ack, cfg->replicas_ack_timeout_ms);
    if (cfg->replicas_ack > 0) {
        base_log(BASE_LOG_INFO, "acknowledged writes wait for %u replica(s), %u ms at most",
                 cfg->replicas_ack, cfg->replicas_ack_timeout_ms);
    }
    svc_log log = svc_log_of_persist(persist);
    e = svc_engine_new(cfg, &clock, &log, &eng, err, sizeof(err));
    if (e != BASE_OK) {
        base_log(BASE_LOG_ERROR, "%s", err);
        goto done;
    }
    if (cfg->shared) {
        svc_lease_on_lost(lease, on_lease_lost, eng); /* step down, do not stop */
    }
    svc_persist_set_who(persist, owner);
    /* Instances that may take over fence their writes. */
    svc_persist_set_fence(persist, cfg->standby || cfg->shared);
    if (cfg->shared) {
        e = svc_forward_new(url, (int)cfg->redis_timeout_ms, cfg->write_queue, owner,
                            cfg->replicas_ack, cfg->replicas_ack_timeout_ms, &fwd, err,
                            sizeof(err));
        if (e != BASE_OK) {
            base_log(BASE_LOG_ERROR, "forwarder: %s", err);
            goto done;
        }
        svc_engine_set_forward(eng, fwd);
    }
    e = restore(eng, cfg, url, owner, persist, auth);
    if (e == BASE_OK) {
        e = svc_engine_explain_open(eng, url, (int)cfg->redis_timeout_ms);
    }
    if (e != BASE_OK) {
        goto done;
    }
    /* The dashboard's history, before the engine is published to /dashboard. */
    e = svc_engine_rollup_open(eng, url, err, sizeof(err));
    if (e != BASE_OK) {
        base_log(BASE_LOG_ERROR, "rollups: %s", err);
        goto done;
    }
    /* The production slots the registry names, before the first decision. */
    e = svc_registry_start(url, cfg, eng, &reg, err, sizeof(err));
    if (e != BASE_OK) {
        base_log(BASE_LOG_ERROR, "registry: %s", err);
        goto done;
    }
    e = svc_catalog_start(url, cfg, eng, owner, &cat, err, sizeof(err));
    if (e != BASE_OK) {
        base_log(BASE_LOG_ERROR, "policy catalog: %s", err);
        goto done;
    }
    e = svc_engine_start(eng);
    if (e != BASE_OK) {
        base_log(BASE_LOG_ERROR, "cannot start the learner thread");
        goto done;
    }
    if (cfg->shared) {
        e = svc_inbox_start(url, cfg, eng, &inbox, err, sizeof(err));
        if (e != BASE_OK) {
            base_log(BASE_LOG_ERROR, "inbox: %s", err);
            goto done;
        }
    }
    if (svc_nng_compat_describe() != NULL) {
        base_log(BASE_LOG_INFO, "%s", svc_nng_compat_describe());
    }
    svc_engine_set_auth(eng, auth);
    svc_dispatch_set_engine(&disp, eng);
    svc_http_set_engine(http, eng);
    base_log(BASE_LOG_INFO, "ready: %u policies (%llu requests answered \"starting\" before)",
             cfg->n_policies, (unsigned long long)svc_dispatch_refused_starting(&disp));

    /* Wait for a signal, looking after the private redis-server meanwhile. */
    keeper kp = {srv, 0, RESTART_BACKOFF_MS};
    int sig = -1;
    while (sig < 0) {
        struct timespec tick = {0, SUPERVISE_MS * 1000000L};
        sig = sigtimedwait(&sigs, NULL, &tick); /* -1: timeout (EAGAIN) or EINTR */
        if (sig == SIGHUP) {
            base_log(BASE_LOG_WARN, "SIGHUP ignored: rlfeedd has no reload; restart it to apply "
                                    "a changed configuration (SIGTERM stops it)");
            sig = -1;
        }
        if (sig < 0) {
            keep_redis(&kp);
        }
    }
    if (sig == SIGTERM && svc_lease_lost(lease)) {
        base_log(BASE_LOG_INFO, "shutting down: ownership lost"); /* the lease thread's signal */
    } else {
        base_log(BASE_LOG_INFO, "signal %d: shutting down", sig);
    }
done:;
    /* Order matters: stop input, apply and snapshot, flush to Redis, spill, release. */
    uint64_t t0 = base_mono_ns();
    svc_http_close(http); /* first: it reads the engine, freed below */
    svc_net_close(net);
    svc_catalog_stop(cat); /* no new policy or change from here on */
    svc_registry_stop(reg);
    svc_inbox_stop(inbox); /* what is left in the inbox waits for the next owner */
    svc_forward_close(fwd, t0 + (uint64_t)FORWARD_BY_MS * 1000000u);
    bool up = persist != NULL && svc_persist_redis_up(persist);
    if (up && svc_auth_enabled(auth) && eng != NULL) { /* no request is checked any more */
        replay_memory_keep(auth, cfg, url, owner);
    }
    svc_engine_stop(eng, up ? LEARN_DRAIN_MS : LEARN_DRAIN_AWAY_MS);
    if (eng != NULL) {
        for (uint32_t i = 0; i < cfg->n_policies; i++) {
            uint64_t n = 0, sum = 0;
            if (svc_engine_model_info(eng, cfg->policy[i].name, &n, &sum)) {
                base_log_policy(BASE_LOG_INFO, cfg->policy[i].name,
                                "policy %s: %" PRIu64 " updates, checksum %016" PRIx64,
                                cfg->policy[i].name, n, sum);
            }
        }
    }
    svc_persist_close_opts co = {
        .deadline_ns = t0 + (uint64_t)STORE_BY_MS * 1000000u,
        .outage_wait_ms = OUTAGE_WAIT_MS,
        .spill_dir = cfg->data_dir,
    };
    svc_persist_report rep;
    svc_persist_close(persist, &co, &rep);
    report_close(&rep, cfg);
    /* After the last write: hands the policies over, leaving the redis-server its second. */
    uint64_t lease_by = t0 + (uint64_t)(SHUTDOWN_MS - REDIS_STOP_MIN_MS - 100) * 1000000u;
    uint64_t soonest = base_mono_ns() + (uint64_t)LEASE_STOP_MIN_MS * 1000000u;
    bool lost_lease = false; /* read by svc_lease_stop(), which frees the lease */
    bool lease_stopped =
        svc_lease_stop(lease, lease_by > soonest ? lease_by : soonest, &lost_lease);
    if (lost_lease) {
        e = BASE_ESTORE; /* another instance owns a policy now: not a clean stop */
    }
    if (lease_stopped) {
        svc_net_free(net);
        svc_engine_free(eng);
        svc_auth_free(auth); /* after everything that answers requests */
        svc_tls_free(tls);
    } /* else the lease thread may still call into the engine (a step-down): nothing is freed */
    uint64_t spent_ms = (base_mono_ns() - t0) / 1000000u;
    /* What is left of the 10 s, less a margin for the reaping and the exit itself. */
    int left_ms = spent_ms + 100 < SHUTDOWN_MS ? (int)(SHUTDOWN_MS - spent_ms - 100) : 0;
    sto_server_stop_within(srv, left_ms > REDIS_STOP_MIN_MS ? left_ms : REDIS_STOP_MIN_MS);
    if (e == BASE_OK && rep.lost > 0) {
        e = BASE_EIO; /* exit non-zero: records were lost */
    }
    if (e == BASE_OK) {
        base_log(BASE_LOG_INFO, "stopped %s after %.1f s",
                 rep.spilled > 0 ? "with records spilled" : "cleanly",
                 (double)(base_mono_ns() - t0) / 1e9);
    } else if (lost_lease || rep.lost > 0) {
        base_log(BASE_LOG_ERROR, "stopped after %.1f s: %s (exit status 1)",
                 (double)(base_mono_ns() - t0) / 1e9,
                 lost_lease ? "another instance owns a policy now" : "records were not stored");
    } else {
        /* How long the start tried (a hung Redis: about redis_timeout_ms), not the stop. */
        base_log(BASE_LOG_ERROR,
                 "stopped: the start failed after %.1f s, as logged above (exit status 1)",
                 (double)(base_mono_ns() - started) / 1e9);
    }
    if (!lease_stopped) {
        /*
         * The lease thread is still blocked on Redis and reads the configuration (and may
         * step a policy down in the engine) when it wakes: leave before the caller frees
         * them (main's exit status for @e).
         */
        fflush(NULL);
        _exit(e == BASE_OK ? 0 : 1);
    }
    return e;
}
