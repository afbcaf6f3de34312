/*
 * Redis outages under load, with a real rlfeedd and a real redis-server:
 *
 * 0. Redis killed, then hung, while nothing is written: health turns
 *    "degraded" (the idle writer PINGs) and back to "ready";
 * 1. kill -9 of redis-server under load with appendfsync always, restarted
 *    after a short outage: every acknowledged outcome is in the outcome
 *    stream, and every outcome at most once (a batch retried after the
 *    broken connection reuses its stream ids);
 * 2. the same with appendfsync everysec: acknowledged outcomes missing after
 *    the kill are bounded by those acknowledged in the last EVERYSEC_BOUND_MS
 *    before it (docs/operations.md: a process kill loses nothing Redis has
 *    written; a write Redis postponed behind a slow fsync can be up to 2 s
 *    old); none is stored twice;
 * 3. Redis hung (SIGSTOP) and Redis killed, each for OUTAGE_MS: decide
 *    never waits for Redis (its p99 during the outage stays far below the
 *    Redis command timeout; both p99s are printed); health says "degraded"
 *    during and "ready" after; feedback sent during the outage is answered
 *    "unavailable" after ack_timeout_ms and its retries get a final status
 *    only after Redis is back, and the queue drains in order (decisions and PULL outcomes appear
 *    in the streams in the order they were made);
 * 4. a full write queue (write_queue = 64, Redis hung): the PULL socket
 *    stops taking feedback at seven eighths (the rest waits in the
 *    sockets, none is refused), decide still answers (the last eighth logs
 *    some, the rest are counted "unlogged"), acknowledged feedback is
 *    answered "unavailable" at once; after Redis returns, the waiting PULL
 *    feedback is taken, retried feedback is stored, nothing is lost, and
 *    nothing is stored twice (the batch the hung Redis executed after the
 *    writer had given up on it is sent again with the same ids).
 *
 * Every wait polls a condition with a deadline; the only deliberate pauses
 * are the outages themselves, timed with tst_now_ms().
 */
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/record.h"
#include "daemon.h"
#include "proc.h"
#include "storage/store.h"
#include "tap.h"

#define DIM 4
#define K 4
#define POLICY "o"

#define N_LOADERS 2
#define LOADER_MAX 200000      /* outcomes per loader thread */
#define KILL_AFTER_MS 2500     /* load before the kill (longer than EVERYSEC_BOUND_MS) */
#define KILL_OUTAGE_MS 500     /* Redis dead this long (at least) */
#define LOAD_AFTER_MS 1500     /* load after the restart */
#define EVERYSEC_BOUND_MS 2000 /* the documented loss window of everysec, see above */
#define ACK_SLACK_MS 200       /* delivery of an answer sent just before the kill */

#define NORMAL_MIN_SAMPLES 2000 /* decide latency samples with Redis up, at least */
#define NORMAL_MS 2000          /* ... and for at least this long */
#define OUTAGE_MS 3000          /* Redis away this long while decide is measured */
#define POOL 300                /* decisions the feedback thread reports on */

#define FULL_QUEUE 64
#define FULL_PUSH 300
#define FULL_ACKED 50
#define FULL_DECIDES 50

static const float X[DIM] = {0.25f, -0.5f, 0.75f, 0.1f};
static const char *const IDS[K] = {"a0", "a1", "a2", "a3"};
static const float LOGITS[K] = {0.1f, 0.2f, 0.3f, 0.4f};

/*
 * redis_timeout_ms = 500: a hung Redis (SIGSTOP) is noticed after one
 * command timeout; the default 2 s would leave little of a 3 s outage.
 * The window is long so every decision stays pending for its feedback.
 */
static const char CONFIG_FMT[] = "[server]\n"
                                 "redis_timeout_ms = 500\n"
                                 "snapshot_interval_ms = 3600000\n"
                                 "%s"
                                 "[policy " POLICY "]\n"
                                 "dim = 4\n"
                                 "actions = a0, a1, a2, a3\n"
                                 "window_ms = 3600000\n"
                                 "[signal " POLICY ".resolved]\n"
                                 "kind = flag\n";

static void make_config(char *out, size_t size, const char *server_extra)
{
    snprintf(out, size, CONFIG_FMT, server_extra);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Decide with the fixed context; the event id on success. */
static bool decide(rlfeed_client *c, char *out_event, size_t size)
{
    rlfeed_reply r;
    if (rlfeed_client_decide(c, POLICY, NULL, X, DIM, K, IDS, LOGITS, &r) != BASE_OK || !r.ok) {
        return false;
    }
    if (out_event != NULL) {
        snprintf(out_event, size, "%s", r.event_id);
    }
    return true;
}

/* Acknowledged feedback: true when answered ok (matched or duplicate); *out_code otherwise. */
static bool feedback(rlfeed_client *c, const char *event, const char *outcome_id,
                     rlfeed_errcode *out_code)
{
    rlfeed_reply r;
    base_err e = rlfeed_client_feedback(c, POLICY, event, "resolved", 1.0, outcome_id, &r);
    if (out_code != NULL) {
        *out_code = e != BASE_OK ? PROTO_E_NONE : r.error.code;
    }
    return e == BASE_OK && r.ok;
}

/* "ready", "degraded" or "" (no answer). */
static void health(rlfeed_client *c, char *out, size_t size)
{
    uint8_t *rep = NULL;
    size_t len = 0;
    rlfeed_reply r;
    out[0] = '\0';
    if (rlfeed_client_health(c, &rep, &len) == BASE_OK) {
        if (rlfeed_reply_decode(rep, len, &r) == BASE_OK && r.ok) {
            snprintf(out, size, "%s", r.status);
        }
        base_free(rep);
    }
}

static long long storage_int(json_t *s, const char *key)
{
    json_t *v = json_object_get(json_object_get(s, "storage"), key);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* Poll until Redis is up and the write queue is empty. */
static bool wait_drained(tst_daemon *f, int timeout_ms)
{
    int64_t deadline = tst_now_ms() + timeout_ms;
    while (tst_now_ms() < deadline) {
        json_t *s = tst_stats(f);
        json_t *redis = json_object_get(json_object_get(s, "storage"), "redis");
        bool up = json_is_string(redis) && strcmp(json_string_value(redis), "up") == 0;
        long long depth = storage_int(s, "queue_depth");
        json_decref(s);
        if (up && depth == 0) {
            return true;
        }
        tst_nap();
    }
    return false;
}

/* The ids of a stream in stream order: outcome_id of outcomes, event_id of decisions. */
typedef struct idlist {
    char (*id)[BASE_ID_MAX + 1];
    size_t n, cap;
} idlist;

static bool read_ids(tst_daemon *f, sto_kind kind, idlist *out)
{
    sto_store *st = NULL;
    char err[128] = "";
    memset(out, 0, sizeof(*out));
    if (sto_store_open(sto_server_url(f->redis), 5000, &st, err, sizeof(err)) != BASE_OK) {
        printf("# reading the stream: %s\n", err);
        return false;
    }
    char after[BASE_STREAM_ID_MAX + 1] = "";
    bool ok = true;
    for (;;) {
        sto_entry *en = NULL;
        size_t n = 0;
        base_err e = sto_store_read(st, kind, POLICY, after, 1000, &en, &n);
        if (e != BASE_OK || n == 0) {
            ok = e == BASE_OK;
            sto_entries_free(kind, en, n);
            break;
        }
        if (out->n + n > out->cap) {
            size_t cap = (out->n + n) * 2;
            void *g = realloc(out->id, cap * sizeof(out->id[0]));
            if (g == NULL) {
                ok = false;
                sto_entries_free(kind, en, n);
                break;
            }
            out->id = g;
            out->cap = cap;
        }
        for (size_t k = 0; k < n; k++) {
            const char *id = kind == STO_OUTCOMES ? ((const base_outcome *)en[k].rec)->outcome_id
                                                  : ((const base_decision *)en[k].rec)->event_id;
            snprintf(out->id[out->n++], sizeof(out->id[0]), "%s", id);
        }
        snprintf(after, sizeof(after), "%s", en[n - 1].id);
        sto_entries_free(kind, en, n);
    }
    sto_store_close(st);
    return ok;
}

static void idlist_free(idlist *l)
{
    free(l->id);
    memset(l, 0, sizeof(*l));
}

/* ---- 0: an outage while nothing is written ---------------------------------- */

/*
 * With no traffic the writer has nothing to write; its idle PING must still
 * notice Redis gone (killed, then hung) and back. Health requests do not
 * touch Redis, so they do not help it notice.
 */
static void idle_outage(void)
{
    printf("# Redis away while the write queue is idle\n");
    tst_daemon f;
    char cfg[1024];
    make_config(cfg, sizeof(cfg), "");
    if (!tst_daemon_init(&f, "rlfeed-outage-idle", cfg) || !tst_daemon_start(&f, true, NULL)) {
        TST_TRUE(0 && "fixture");
        tst_daemon_fini(&f, true);
        return;
    }
    TST_TRUE(decide(f.c, NULL, 0));
    TST_TRUE(wait_drained(&f, 10000));
    int64_t t0 = tst_now_ms();
    sto_server_kill(f.redis);
    bool killed_seen = tst_wait_health(f.c, "degraded", 5000);
    int64_t t_killed_seen = tst_now_ms() - t0;
    char err[256] = "";
    TST_OK(sto_server_restart(f.redis, err, sizeof(err)));
    t0 = tst_now_ms();
    bool back_after_kill = tst_wait_health(f.c, "ready", 10000);
    int64_t t_back1 = tst_now_ms() - t0;

    pid_t rpid = sto_server_pid(f.redis);
    t0 = tst_now_ms();
    kill(rpid, SIGSTOP);
    bool hung_seen = tst_wait_health(f.c, "degraded", 5000);
    int64_t t_hung_seen = tst_now_ms() - t0;
    kill(rpid, SIGCONT);
    t0 = tst_now_ms();
    bool back_after_hang = tst_wait_health(f.c, "ready", 10000);
    int64_t t_back2 = tst_now_ms() - t0;
    printf("# idle: killed Redis seen after %lld ms, ready %lld ms after the restart; hung Redis "
           "seen after %lld ms, ready %lld ms after SIGCONT\n",
           (long long)t_killed_seen, (long long)t_back1, (long long)t_hung_seen,
           (long long)t_back2);
    TST_TRUE(killed_seen);
    TST_TRUE(back_after_kill);
    TST_TRUE(hung_seen);
    TST_TRUE(back_after_hang);
    TST_EQ(tst_daemon_stop(&f), 0);
    tst_daemon_fini(&f, tst_failed > 0);
}

/* ---- 1 and 2: kill -9 under load ----------------------------------------- */

typedef struct loader {
    const char *url;
    int idx;
    atomic_bool *stop;
    uint32_t n;                     /* outcomes attempted: [0, n) */
    int64_t *ack_ms;                /* [LOADER_MAX] tst_now_ms() of the ack; 0: not acked */
    char (*event)[BASE_ID_MAX + 1]; /* [LOADER_MAX] the decision each outcome is for */
    atomic_uint acked;
    uint32_t decide_failed;
    uint32_t open_failed;
} loader;

static void outcome_name(char *out, size_t size, int loader_idx, uint32_t i)
{
    snprintf(out, size, "o-%d-%u", loader_idx, i);
}

/* Decide, then acknowledged feedback with a unique outcome_id, until told to stop. */
static void *loader_main(void *arg)
{
    loader *l = arg;
    rlfeed_client *c = NULL;
    /* Longer than any outage here: a feedback waits for Redis, it is not answered early. */
    if (rlfeed_client_open(l->url, 10000, &c) != BASE_OK) {
        l->open_failed = 1;
        return NULL;
    }
    while (!atomic_load(l->stop) && l->n < LOADER_MAX) {
        uint32_t i = l->n;
        if (!decide(c, l->event[i], sizeof(l->event[i]))) {
            if (++l->decide_failed >= 100) {
                break; /* reported by the main thread */
            }
            continue;
        }
        char oid[64];
        outcome_name(oid, sizeof(oid), l->idx, i);
        l->n++;
        if (feedback(c, l->event[i], oid, NULL)) {
            l->ack_ms[i] = tst_now_ms();
            atomic_fetch_add(&l->acked, 1);
        }
    }
    rlfeed_client_close(c);
    return NULL;
}

static unsigned total_acked(loader *ls)
{
    unsigned n = 0;
    for (int t = 0; t < N_LOADERS; t++) {
        n += atomic_load(&ls[t].acked);
    }
    return n;
}

static void kill_under_load(const char *appendfsync)
{
    printf("# kill -9 redis-server under load, appendfsync %s\n", appendfsync);
    tst_daemon f;
    char cfg[1024], name[64];
    make_config(cfg, sizeof(cfg), "");
    snprintf(name, sizeof(name), "rlfeed-outage-%s", appendfsync);
    if (!tst_daemon_init_fsync(&f, name, cfg, appendfsync) || !tst_daemon_start(&f, true, NULL)) {
        TST_TRUE(0 && "fixture");
        tst_daemon_fini(&f, true);
        return;
    }
    atomic_bool stop = false;
    loader ls[N_LOADERS];
    pthread_t th[N_LOADERS];
    memset(ls, 0, sizeof(ls));
    for (int t = 0; t < N_LOADERS; t++) {
        ls[t].url = f.url;
        ls[t].idx = t;
        ls[t].stop = &stop;
        ls[t].ack_ms = calloc(LOADER_MAX, sizeof(int64_t));
        ls[t].event = calloc(LOADER_MAX, sizeof(ls[t].event[0]));
        if (ls[t].ack_ms == NULL || ls[t].event == NULL ||
            pthread_create(&th[t], NULL, loader_main, &ls[t]) != 0) {
            abort(); /* the test cannot run at all */
        }
    }
    int64_t t0 = tst_now_ms();
    while (tst_now_ms() - t0 < KILL_AFTER_MS || total_acked(ls) < 100) {
        if (tst_now_ms() - t0 > 20000) {
            break;
        }
        tst_nap();
    }
    unsigned acked_before = total_acked(ls);
    int64_t t_kill = tst_now_ms();
    sto_server_kill(f.redis);
    int64_t t_killed = tst_now_ms();
    /* The outage: at least KILL_OUTAGE_MS, and until health has said "degraded". */
    bool degraded = false;
    char st[32];
    while (tst_now_ms() - t_killed < KILL_OUTAGE_MS ||
           (!degraded && tst_now_ms() - t_killed < 5000)) {
        health(f.c, st, sizeof(st));
        degraded = degraded || strcmp(st, "degraded") == 0;
        tst_nap();
    }
    char err[256] = "";
    base_err re = sto_server_restart(f.redis, err, sizeof(err));
    TST_OK(re);
    if (re != BASE_OK) {
        printf("# restart: %s\n", err);
    }
    int64_t t_back = tst_now_ms();
    unsigned acked_at_back = total_acked(ls);
    while (tst_now_ms() - t_back < LOAD_AFTER_MS || total_acked(ls) < acked_at_back + 100) {
        if (tst_now_ms() - t_back > 20000) {
            break;
        }
        tst_nap();
    }
    atomic_store(&stop, true);
    for (int t = 0; t < N_LOADERS; t++) {
        pthread_join(th[t], NULL);
    }
    unsigned acked_after = total_acked(ls) - acked_at_back;
    /*
     * An answer Redis sent just before it died may reach the client a little
     * after the kill; past ACK_SLACK_MS nothing can be acknowledged until
     * Redis is back, because nothing can be stored.
     */
    int64_t ack_cut = t_killed + ACK_SLACK_MS;
    unsigned acked_dead = 0;
    for (int t = 0; t < N_LOADERS; t++) {
        for (uint32_t i = 0; i < ls[t].n; i++) {
            acked_dead += ls[t].ack_ms[i] > ack_cut && ls[t].ack_ms[i] < t_back;
        }
    }
    printf("# acked %u before the kill, %u while Redis was dead (%lld ms), %u after the restart\n",
           acked_before, acked_dead, (long long)(t_back - t_killed), acked_after);
    TST_TRUE(degraded);
    TST_TRUE(acked_after >= 100); /* acknowledged feedback resumed */
    TST_EQ(acked_dead, 0);        /* nothing is acknowledged before Redis has it */

    /* Retry what was not acknowledged: answered matched, or duplicate if already queued. */
    uint32_t attempted = 0, unacked = 0, retried_ok = 0;
    for (int t = 0; t < N_LOADERS; t++) {
        TST_EQ(ls[t].open_failed, 0);
        TST_EQ(ls[t].decide_failed, 0);
        attempted += ls[t].n;
        for (uint32_t i = 0; i < ls[t].n; i++) {
            if (ls[t].ack_ms[i] != 0) {
                continue;
            }
            unacked++;
            char oid[64];
            outcome_name(oid, sizeof(oid), t, i);
            for (int a = 0; a < 3 && ls[t].ack_ms[i] == 0; a++) {
                if (feedback(f.c, ls[t].event[i], oid, NULL)) {
                    ls[t].ack_ms[i] = tst_now_ms();
                    retried_ok++;
                }
            }
        }
    }
    TST_EQ(retried_ok, unacked);
    TST_TRUE(wait_drained(&f, 20000));

    idlist out;
    TST_TRUE(read_ids(&f, STO_OUTCOMES, &out));
    unsigned char *seen[N_LOADERS];
    uint64_t entries = out.n, dups = 0, foreign = 0;
    for (int t = 0; t < N_LOADERS; t++) {
        seen[t] = calloc(LOADER_MAX, 1);
    }
    for (size_t k = 0; k < out.n; k++) {
        int t = -1;
        unsigned i = 0;
        if (sscanf(out.id[k], "o-%d-%u", &t, &i) != 2 || t < 0 || t >= N_LOADERS ||
            i >= LOADER_MAX) {
            foreign++;
            continue;
        }
        dups += seen[t][i] > 0;
        seen[t][i] = 1;
    }
    uint64_t acked = 0, missing = 0, missing_in_window = 0, missing_after = 0;
    uint64_t acked_in_window = 0;
    for (int t = 0; t < N_LOADERS; t++) {
        for (uint32_t i = 0; i < ls[t].n; i++) {
            int64_t at = ls[t].ack_ms[i];
            if (at == 0) {
                continue;
            }
            acked++;
            bool in_window = at >= t_kill - EVERYSEC_BOUND_MS && at <= ack_cut;
            acked_in_window += in_window;
            if (!seen[t][i]) {
                missing++;
                missing_in_window += in_window;
                missing_after += at > ack_cut;
            }
        }
    }
    printf("# appendfsync %s: %u outcomes sent, %llu acknowledged (%u after a retry); stream: "
           "%llu entries, %llu duplicates; missing: %llu (%llu of the %llu acknowledged in the "
           "%d ms before the kill)\n",
           appendfsync, attempted, (unsigned long long)acked, retried_ok,
           (unsigned long long)entries, (unsigned long long)dups, (unsigned long long)missing,
           (unsigned long long)missing_in_window, (unsigned long long)acked_in_window,
           EVERYSEC_BOUND_MS);
    TST_EQ(foreign, 0);
    TST_EQ(dups, 0);
    TST_EQ(acked, attempted);
    TST_EQ(missing_after, 0); /* Redis was not killed again: nothing acked since may be lost */
    if (strcmp(appendfsync, "always") == 0) {
        TST_EQ(missing, 0);
    } else {
        TST_EQ(missing, missing_in_window);
    }
    for (int t = 0; t < N_LOADERS; t++) {
        free(seen[t]);
        free(ls[t].ack_ms);
        free(ls[t].event);
    }
    idlist_free(&out);
    TST_EQ(tst_daemon_stop(&f), 0);
    tst_daemon_fini(&f, tst_failed > 0);
}

/* ---- 3: decide latency while Redis is away --------------------------------- */

typedef enum outage_mode { OUTAGE_STOP, OUTAGE_KILL } outage_mode;

/* The feedback thread of the latency test; phases are driven by the main thread. */
typedef struct fb_thread {
    tst_daemon *f;
    atomic_int phase;               /* 0 setup, 1 pool ready, 2 outage started, 3 Redis back */
    char (*event)[BASE_ID_MAX + 1]; /* [POOL] */
    bool setup_ok;
    uint32_t pushed;             /* p-0 .. p-(pushed-1), in this order */
    bool acked_during;           /* the acked feedback sent during the outage ... */
    int64_t acked_during_ms;     /* ... and when its final answer came */
    uint32_t unavailable_during; /* its answers "unavailable" (ack_timeout_ms) before that */
    bool acked_after;            /* one sent after Redis came back */
} fb_thread;

static void *fb_main(void *arg)
{
    fb_thread *b = arg;
    rlfeed_client *c = NULL;
    rlfeed_push *push = NULL;
    b->setup_ok = rlfeed_client_open(b->f->url, 20000, &c) == BASE_OK &&
                  rlfeed_push_open(b->f->pull_url, 5000, &push) == BASE_OK;
    for (int i = 0; i < POOL && b->setup_ok; i++) {
        b->setup_ok = decide(c, b->event[i], sizeof(b->event[i]));
    }
    atomic_store(&b->phase, 1);
    while (b->setup_ok && atomic_load(&b->phase) < 2) {
        tst_nap();
    }
    for (int i = 0; b->setup_ok && i < POOL - 2; i++) {
        char oid[32];
        snprintf(oid, sizeof(oid), "p-%d", i);
        if (rlfeed_push_feedback(push, POLICY, b->event[i], "resolved", 1.0, oid) == BASE_OK) {
            b->pushed++;
        } else {
            break;
        }
    }
    if (b->setup_ok) {
        /*
         * As a client should: Redis away, the answer is "unavailable" after
         * ack_timeout_ms (the outcome stays queued); retry with the same
         * outcome_id until a final status.
         */
        int64_t until = tst_now_ms() + 30000;
        rlfeed_errcode code = PROTO_E_NONE;
        while (!(b->acked_during = feedback(c, b->event[POOL - 2], "a-0", &code)) &&
               code == PROTO_E_UNAVAILABLE && tst_now_ms() < until) {
            b->unavailable_during++;
        }
        b->acked_during_ms = tst_now_ms();
    }
    while (b->setup_ok && atomic_load(&b->phase) < 3) {
        tst_nap();
    }
    if (b->setup_ok) {
        b->acked_after = feedback(c, b->event[POOL - 1], "a-1", NULL);
    }
    rlfeed_push_close(push);
    rlfeed_client_close(c);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t p99(int64_t *v, size_t n)
{
    if (n == 0) {
        return 0;
    }
    qsort(v, n, sizeof(v[0]), cmp_i64);
    size_t k = (n * 99 + 99) / 100; /* ceil(0.99 n) */
    return v[k - 1];
}

/* Timed decides until @ms passed and @min_samples were taken; health polled every 50 (untimed). */
typedef struct lat_run {
    int64_t *ns;
    size_t n, cap;
    uint64_t failed;
    int64_t first_degraded_ms;    /* since the start, -1 if never */
    uint64_t first_seq, last_seq; /* event id sequence numbers of the decisions made */
} lat_run;

static uint64_t event_seq(const char *event)
{
    const char *dash = strrchr(event, '-');
    return dash != NULL ? strtoull(dash + 1, NULL, 10) : 0;
}

static void measure(tst_daemon *f, lat_run *r, int ms, size_t min_samples)
{
    int64_t t0 = tst_now_ms();
    r->first_degraded_ms = -1;
    r->first_seq = r->last_seq = 0;
    /* A daemon that stops answering must fail the test, not hang it: 30 s past @ms at most. */
    while ((tst_now_ms() - t0 < ms || r->n < min_samples) && r->n < r->cap &&
           tst_now_ms() - t0 < ms + 30000) {
        char ev[BASE_ID_MAX + 1];
        int64_t a = now_ns();
        bool ok = decide(f->c, ev, sizeof(ev));
        int64_t b = now_ns();
        if (!ok) {
            r->failed++;
            continue;
        }
        r->ns[r->n++] = b - a;
        r->last_seq = event_seq(ev);
        if (r->first_seq == 0) {
            r->first_seq = r->last_seq;
        }
        if (r->n % 50 == 0) {
            char st[32];
            health(f->c, st, sizeof(st));
            if (r->first_degraded_ms < 0 && strcmp(st, "degraded") == 0) {
                r->first_degraded_ms = tst_now_ms() - t0;
            }
        }
    }
}

/*
 * Check that the ids [first, last] (by @num) appear in @l, each at least
 * once, and in increasing order of first appearance.
 */
static void check_order(const idlist *l, uint64_t first, uint64_t last,
                        bool (*num)(const char *, uint64_t *), const char *what)
{
    if (last < first) {
        TST_TRUE(0 && "empty range");
        return;
    }
    size_t span = (size_t)(last - first + 1);
    unsigned char *seen = calloc(span, 1);
    uint64_t present = 0, out_of_order = 0, dups = 0;
    uint64_t max_seen = 0;
    bool any = false;
    for (size_t k = 0; k < l->n; k++) {
        uint64_t v = 0;
        if (!num(l->id[k], &v) || v < first || v > last) {
            continue;
        }
        if (seen[v - first]) {
            dups++;
            continue;
        }
        seen[v - first] = 1;
        present++;
        if (any && v < max_seen) {
            out_of_order++;
        }
        if (!any || v > max_seen) {
            max_seen = v;
        }
        any = true;
    }
    printf("# %s: %zu expected, %llu present, %llu out of order, %llu duplicates\n", what, span,
           (unsigned long long)present, (unsigned long long)out_of_order, (unsigned long long)dups);
    TST_EQ(present, span);
    TST_EQ(out_of_order, 0);
    free(seen);
}

static bool num_event(const char *id, uint64_t *out)
{
    *out = event_seq(id);
    return id[0] == 'e';
}

static bool num_push(const char *id, uint64_t *out)
{
    unsigned long long v = 0;
    if (sscanf(id, "p-%llu", &v) != 1) {
        return false;
    }
    *out = v;
    return true;
}

static void outage_latency(outage_mode mode)
{
    const char *how = mode == OUTAGE_STOP ? "SIGSTOP" : "kill -9";
    printf("# decide latency, Redis away (%s) for %d ms\n", how, OUTAGE_MS);
    tst_daemon f;
    char cfg[1024];
    /* Room for every decision of the outage: a full queue would leave some unlogged. */
    make_config(cfg, sizeof(cfg), "write_queue = 1048576\n");
    if (!tst_daemon_init(&f, mode == OUTAGE_STOP ? "rlfeed-outage-stop" : "rlfeed-outage-kill",
                         cfg) ||
        !tst_daemon_start(&f, true, NULL)) {
        TST_TRUE(0 && "fixture");
        tst_daemon_fini(&f, true);
        return;
    }
    fb_thread fb;
    memset(&fb, 0, sizeof(fb));
    fb.f = &f;
    fb.event = calloc(POOL, sizeof(fb.event[0]));
    pthread_t th;
    if (fb.event == NULL || pthread_create(&th, NULL, fb_main, &fb) != 0) {
        abort();
    }
    for (int i = 0; i < 200; i++) { /* warm up */
        (void)decide(f.c, NULL, 0);
    }
    int64_t deadline = tst_now_ms() + 20000;
    while (atomic_load(&fb.phase) < 1 && tst_now_ms() < deadline) {
        tst_nap();
    }
    TST_TRUE(wait_drained(&f, 10000));

    enum { CAP = 1 << 20 };
    lat_run normal = {.ns = calloc(CAP, sizeof(int64_t)), .cap = CAP};
    lat_run away = {.ns = calloc(CAP, sizeof(int64_t)), .cap = CAP};
    measure(&f, &normal, NORMAL_MS, NORMAL_MIN_SAMPLES);

    pid_t rpid = sto_server_pid(f.redis);
    if (mode == OUTAGE_STOP) {
        kill(rpid, SIGSTOP);
    } else {
        sto_server_kill(f.redis);
    }
    atomic_store(&fb.phase, 2);
    measure(&f, &away, OUTAGE_MS, NORMAL_MIN_SAMPLES);
    bool degraded = away.first_degraded_ms >= 0;
    if (!degraded) {
        degraded = tst_wait_health(f.c, "degraded", 5000); /* still away: keep looking */
    }
    int64_t t_resume = tst_now_ms();
    if (mode == OUTAGE_STOP) {
        kill(rpid, SIGCONT);
    } else {
        char err[256] = "";
        TST_OK(sto_server_restart(f.redis, err, sizeof(err)));
    }
    bool ready = tst_wait_health(f.c, "ready", 15000);
    int64_t t_ready = tst_now_ms();
    atomic_store(&fb.phase, 3);
    pthread_join(th, NULL);

    int64_t p99_normal = p99(normal.ns, normal.n), p99_away = p99(away.ns, away.n);
    printf("# %s: decide p99 %.1f us with Redis up (%zu samples), %.1f us with Redis away (%zu "
           "samples), ratio %.2f; degraded after %lld ms, ready %lld ms after the resume\n",
           how, (double)p99_normal / 1e3, normal.n, (double)p99_away / 1e3, away.n,
           p99_normal > 0 ? (double)p99_away / (double)p99_normal : 0.0,
           (long long)away.first_degraded_ms, (long long)(t_ready - t_resume));
    TST_EQ(normal.failed, 0);
    TST_EQ(away.failed, 0);
    TST_TRUE(normal.n >= NORMAL_MIN_SAMPLES && away.n >= NORMAL_MIN_SAMPLES);
    /*
     * Not a ratio of two p99s: on a machine shared with other work that
     * fails by chance. Decide must simply never wait for Redis, whose
     * commands time out after redis_timeout_ms (500 ms): a p99 far below
     * that holds on a loaded machine and still catches a decide that blocks.
     * The strict numbers are bench/'s business.
     */
    TST_TRUE(p99_away < 250 * 1000000LL);
    TST_TRUE(degraded);
    TST_TRUE(ready);
    TST_TRUE(fb.setup_ok);
    TST_EQ(fb.pushed, POOL - 2);
    /* The feedback sent during the outage is acknowledged, and only once Redis is back. */
    TST_TRUE(fb.acked_during);
    TST_TRUE(fb.acked_during_ms >= t_resume);
    TST_TRUE(fb.unavailable_during >= 1); /* OUTAGE_MS is longer than ack_timeout_ms */
    TST_TRUE(fb.acked_after);

    TST_TRUE(wait_drained(&f, 20000));
    idlist dec, out;
    TST_TRUE(read_ids(&f, STO_DECISIONS, &dec));
    TST_TRUE(read_ids(&f, STO_OUTCOMES, &out));
    check_order(&dec, away.first_seq, away.last_seq, num_event, "decisions made during the outage");
    check_order(&out, 0, fb.pushed - 1, num_push, "PULL outcomes sent during the outage");
    idlist_free(&dec);
    idlist_free(&out);
    free(normal.ns);
    free(away.ns);
    free(fb.event);
    TST_EQ(tst_daemon_stop(&f), 0);
    tst_daemon_fini(&f, tst_failed > 0);
}

/* ---- 4: a full write queue ------------------------------------------------- */

static void queue_full(void)
{
    printf("# write_queue = %d, Redis hung (SIGSTOP)\n", FULL_QUEUE);
    tst_daemon f;
    char cfg[1024], extra[64];
    snprintf(extra, sizeof(extra), "write_queue = %d\n", FULL_QUEUE);
    make_config(cfg, sizeof(cfg), extra);
    if (!tst_daemon_init(&f, "rlfeed-outage-full", cfg) || !tst_daemon_start(&f, true, NULL)) {
        TST_TRUE(0 && "fixture");
        tst_daemon_fini(&f, true);
        return;
    }
    enum { N = FULL_PUSH + FULL_ACKED };
    char(*ev)[BASE_ID_MAX + 1] = calloc(N, sizeof(*ev));
    bool pool_ok = true;
    for (int i = 0; i < N && pool_ok; i++) {
        /* Paced by the queue: with 64 slots, let the writer keep up. */
        pool_ok = decide(f.c, ev[i], sizeof(ev[i]));
        if (i % 32 == 31) {
            pool_ok = pool_ok && wait_drained(&f, 10000);
        }
    }
    TST_TRUE(pool_ok);
    TST_TRUE(wait_drained(&f, 10000));
    json_t *s0 = tst_stats(&f);
    long long fb0 = tst_stat_int(s0, POLICY, "feedback");
    long long unav0 = tst_rejected(s0, "unavailable");
    long long unlogged0 = tst_stat_int(s0, POLICY, "unlogged");
    long long paused0 = storage_int(s0, "pull_paused");
    json_decref(s0);

    pid_t rpid = sto_server_pid(f.redis);
    kill(rpid, SIGSTOP);

    rlfeed_push *push = NULL;
    TST_OK(rlfeed_push_open(f.pull_url, 5000, &push));
    int pushed = 0;
    for (int i = 0; i < FULL_PUSH && push != NULL; i++) {
        char oid[32];
        snprintf(oid, sizeof(oid), "q-%d", i);
        pushed += rlfeed_push_feedback(push, POLICY, ev[i], "resolved", 1.0, oid) == BASE_OK;
    }
    TST_EQ(pushed, FULL_PUSH);
    /*
     * The PULL socket takes messages while more than an eighth of the queue is free, then
     * pauses with exactly the last eighth free: the rest wait in the sockets, none is refused.
     */
    long long accepted = 0, dropped = 0, depth = 0, cap = 0, paused = 0;
    int64_t deadline = tst_now_ms() + 10000;
    while (tst_now_ms() < deadline) {
        json_t *s = tst_stats(&f);
        accepted = tst_stat_int(s, POLICY, "feedback") - fb0;
        dropped = tst_rejected(s, "unavailable") - unav0;
        depth = storage_int(s, "queue_depth");
        cap = storage_int(s, "queue_capacity");
        paused = storage_int(s, "pull_paused") - paused0;
        json_decref(s);
        if (paused > 0 && depth + FULL_QUEUE / 8 >= FULL_QUEUE) {
            break;
        }
        tst_nap();
    }
    TST_EQ(cap, FULL_QUEUE);
    /*
     * Paused at least once: twice when the queue had room for a moment as the two PULL
     * workers handed over what they held (the room counts their messages until then).
     */
    TST_TRUE(paused >= 1);
    TST_EQ(depth, FULL_QUEUE - FULL_QUEUE / 8);
    TST_EQ(dropped, 0);
    TST_TRUE(accepted > 0 && accepted < pushed);
    long long taken_paused = accepted;

    /* Decide still answers; the last eighth of the queue logs some, the rest are unlogged. */
    int decided = 0;
    for (int i = 0; i < FULL_DECIDES; i++) {
        decided += decide(f.c, NULL, 0);
    }
    /* Acknowledged feedback on a full queue: "unavailable" at once, not a wait for Redis. */
    int unavailable = 0;
    int64_t t0 = tst_now_ms();
    for (int i = FULL_PUSH; i < N; i++) {
        char oid[32];
        rlfeed_errcode code = PROTO_E_NONE;
        snprintf(oid, sizeof(oid), "q-%d", i);
        if (!feedback(f.c, ev[i], oid, &code) && code == PROTO_E_UNAVAILABLE) {
            unavailable++;
        }
    }
    int64_t acked_ms = tst_now_ms() - t0;
    bool degraded = tst_wait_health(f.c, "degraded", 5000);
    json_t *s1 = tst_stats(&f);
    long long unav1 = tst_rejected(s1, "unavailable") - unav0;
    long long unlogged1 = tst_stat_int(s1, POLICY, "unlogged") - unlogged0;
    long long accepted1 = tst_stat_int(s1, POLICY, "feedback") - fb0;
    depth = storage_int(s1, "queue_depth");
    json_decref(s1);
    printf("# queue full: %d PULL messages, %lld taken before the pause (%lld in the queue "
           "then), %lld dropped; %d of %d acked feedback answered unavailable in %lld ms; %d "
           "decides ok, %lld unlogged; rejected.unavailable %lld\n",
           pushed, taken_paused, depth, dropped, unavailable, FULL_ACKED, (long long)acked_ms,
           decided, unlogged1, unav1);
    TST_EQ(accepted1, taken_paused); /* still paused */
    TST_EQ(depth, FULL_QUEUE);
    TST_EQ(unavailable, FULL_ACKED);
    TST_TRUE(acked_ms < 2000); /* answered without waiting for Redis (client timeout 1 s each) */
    TST_EQ(decided, FULL_DECIDES);
    TST_EQ(unlogged1, FULL_DECIDES - FULL_QUEUE / 8); /* the last eighth logged some */
    TST_EQ(unav1, FULL_ACKED);
    TST_TRUE(degraded);

    kill(rpid, SIGCONT);
    TST_TRUE(tst_wait_health(f.c, "ready", 15000));
    /* The waiting PULL messages are taken once there is room: every one, none refused. */
    deadline = tst_now_ms() + 20000;
    while (tst_now_ms() < deadline) {
        json_t *s = tst_stats(&f);
        accepted = tst_stat_int(s, POLICY, "feedback") - fb0;
        dropped = tst_rejected(s, "unavailable") - unav0 - FULL_ACKED;
        json_decref(s);
        if (accepted + dropped >= pushed) {
            break;
        }
        tst_nap();
    }
    TST_EQ(accepted, pushed);
    TST_EQ(dropped, 0);
    TST_TRUE(wait_drained(&f, 20000));
    /* Retry everything: dropped and refused outcomes are stored now, queued ones are duplicates. */
    int ok = 0, dup = 0;
    for (int i = 0; i < N; i++) {
        char oid[32];
        rlfeed_reply r;
        snprintf(oid, sizeof(oid), "q-%d", i);
        if (rlfeed_client_feedback(f.c, POLICY, ev[i], "resolved", 1.0, oid, &r) == BASE_OK &&
            r.ok) {
            ok++;
            dup += r.duplicate;
        }
    }
    TST_EQ(ok, N);
    TST_EQ(dup, FULL_PUSH); /* every PULL outcome was stored */
    TST_TRUE(wait_drained(&f, 20000));
    idlist out;
    TST_TRUE(read_ids(&f, STO_OUTCOMES, &out));
    unsigned char *seen = calloc(N, 1);
    int present = 0;
    for (size_t k = 0; k < out.n; k++) {
        int i = -1;
        if (sscanf(out.id[k], "q-%d", &i) == 1 && i >= 0 && i < N && !seen[i]) {
            seen[i] = 1;
            present++;
        }
    }
    printf("# after the retries: %d of %d outcomes in the stream (%zu entries)\n", present, N,
           out.n);
    TST_EQ(present, N);
    TST_EQ(out.n, N);
    free(seen);
    idlist_free(&out);
    rlfeed_push_close(push);
    free(ev);
    TST_EQ(tst_daemon_stop(&f), 0);
    tst_daemon_fini(&f, tst_failed > 0);
}

/* ---- replies that wait for Redis: bounded, and never early for retries ---- */

#define WAITERS 30 /* more acknowledged feedback than 3/4 of the 32 contexts it configures */

typedef struct waiter {
    const char *url;
    char event[BASE_ID_MAX + 1];
    char outcome_id[32];
    bool ok;
    rlfeed_errcode code;
} waiter;

static void *waiter_main(void *arg)
{
    waiter *w = arg;
    rlfeed_client *c = NULL;
    if (rlfeed_client_open(w->url, 20000, &c) == BASE_OK) {
        w->ok = feedback(c, w->event, w->outcome_id, &w->code);
        rlfeed_client_close(c);
    }
    return NULL;
}

static void waiting_is_bounded_and_retries_wait(void)
{
    printf("# replies waiting for Redis: bounded, and a retried outcome waits for the original\n");
    tst_daemon f;
    char cfg[1024];
    /* Answers wait for Redis longer than the hang, so the waiting itself is what is bounded. */
    make_config(cfg, sizeof(cfg), "ack_timeout_ms = 20000\ncontexts = 32\n");
    if (!tst_daemon_init(&f, "rlfeed-outage-wait", cfg) || !tst_daemon_start(&f, true, NULL)) {
        TST_TRUE(0 && "fixture");
        tst_daemon_fini(&f, true);
        return;
    }
    waiter w[WAITERS + 1];
    memset(w, 0, sizeof(w));
    bool pool_ok = true;
    for (int i = 0; i <= WAITERS && pool_ok; i++) {
        pool_ok = decide(f.c, w[i].event, sizeof(w[i].event));
        w[i].url = f.url;
        snprintf(w[i].outcome_id, sizeof(w[i].outcome_id), "w-%d", i);
    }
    TST_TRUE(pool_ok);
    TST_TRUE(wait_drained(&f, 10000));
    pid_t rpid = sto_server_pid(f.redis);
    kill(rpid, SIGSTOP);

    /* A retry must not be acknowledged before the original is stored. */
    rlfeed_client *quick = NULL;
    TST_OK(rlfeed_client_open(f.url, 300, &quick));
    rlfeed_reply r;
    base_err first =
        rlfeed_client_feedback(quick, POLICY, w[WAITERS].event, "resolved", 1.0, "w-retry", &r);
    base_err retry =
        rlfeed_client_feedback(quick, POLICY, w[WAITERS].event, "resolved", 1.0, "w-retry", &r);
    TST_EQ(first, BASE_ETIMEDOUT);
    TST_EQ(retry, BASE_ETIMEDOUT); /* not "duplicate" while the original waits */
    rlfeed_client_close(quick);

    /* More waiting requests than allowed: the excess is refused at once, decide still works. */
    pthread_t th[WAITERS];
    for (int i = 0; i < WAITERS; i++) {
        pthread_create(&th[i], NULL, waiter_main, &w[i]);
    }
    int decided = 0;
    int64_t deadline = tst_now_ms() + 3000;
    rlfeed_client *dc = NULL;
    TST_OK(rlfeed_client_open(f.url, 1000, &dc));
    while (tst_now_ms() < deadline) {
        decided += decide(dc, NULL, 0);
    }
    rlfeed_client_close(dc);
    kill(rpid, SIGCONT);
    int ok = 0, refused = 0;
    for (int i = 0; i < WAITERS; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok;
        refused += !w[i].ok && w[i].code == PROTO_E_UNAVAILABLE;
    }
    printf("# during the hang: %d decides answered; of %d waiting feedbacks %d acknowledged "
           "after Redis returned, %d refused unavailable\n",
           decided, WAITERS, ok, refused);
    TST_TRUE(decided > 100);
    TST_EQ(ok + refused, WAITERS);
    TST_TRUE(refused >= WAITERS - 24); /* 32 contexts: at most 24 may wait for Redis */
    TST_TRUE(ok >= 20);
    /* Now the retry is a plain duplicate. */
    rlfeed_client *late = NULL;
    TST_OK(rlfeed_client_open(f.url, 10000, &late));
    TST_OK(rlfeed_client_feedback(late, POLICY, w[WAITERS].event, "resolved", 1.0, "w-retry", &r));
    TST_TRUE(r.ok && r.duplicate);
    rlfeed_client_close(late);
    TST_EQ(tst_daemon_stop(&f), 0);
    tst_daemon_fini(&f, tst_failed > 0);
}

int main(void)
{
    idle_outage();
    kill_under_load("always");
    kill_under_load("everysec");
    outage_latency(OUTAGE_STOP);
    outage_latency(OUTAGE_KILL);
    queue_full();
    waiting_is_bounded_and_retries_wait();
    rlfeed_client_lib_fini();
    return tst_done();
}
