#include "service/persist.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/queue.h"

struct svc_persist {
    char *url;
    int timeout_ms;
    sto_store *store;          /* writer thread only; NULL until the first connect */
    base_queue *q;
    pthread_t thread;
    atomic_bool redis_up;
    atomic_bool closing;
    uint64_t last_ok_ns;       /* writer thread only: the last exchange Redis answered */
    atomic_int drain_timeout_ms;
    atomic_uint_fast64_t written;
    atomic_uint_fast64_t failed;
    atomic_uint_fast64_t trimmed;
};

svc_persist_item *svc_persist_item_new(svc_persist_type type, sto_kind kind, const char *policy,
                                       void *rec)
{
    svc_persist_item *it = base_alloc_zero(1, sizeof(*it));
    if (it == NULL) {
        return NULL;
    }
    it->type = type;
    it->kind = kind;
    base_strlcpy(it->policy, policy, sizeof(it->policy));
    it->rec = rec;
    return it;
}

static void free_rec(svc_persist_item *it)
{
    if (it->rec == NULL) {
        return;
    }
    if (it->type == SVC_PERSIST_MODEL) {
        base_model_free(it->rec);
    } else if (it->kind == STO_DECISIONS) {
        base_decision_free(it->rec);
    } else if (it->kind == STO_OUTCOMES) {
        base_free(it->rec);
    } else {
        base_joined_free(it->rec);
    }
    it->rec = NULL;
}

void svc_persist_item_free(svc_persist_item *it)
{
    if (it == NULL) {
        return;
    }
    free_rec(it);
    base_free(it);
}

static void complete(svc_persist *p, svc_persist_item *it, base_err result)
{
    if (result == BASE_OK) {
        atomic_fetch_add(&p->written, 1);
    } else {
        atomic_fetch_add(&p->failed, 1);
    }
    if (it->done != NULL) {
        it->done(it->done_arg, it, result);
    }
    svc_persist_item_free(it);
}

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/*
 * Reconnect with exponential backoff. Returns false when closing and the
 * drain deadline passed while Redis stayed away, or, for an @idle writer
 * (no batch in hand), as soon as it is closing with nothing queued: there
 * is nothing left to store, so shutdown need not wait for Redis.
 */
static bool reconnect(svc_persist *p, uint64_t *down_since_ns, bool idle)
{
    int backoff = 50;
    atomic_store(&p->redis_up, false);
    if (*down_since_ns == 0) {
        *down_since_ns = base_mono_ns();
    }
    for (;;) {
        base_err e = BASE_EIO;
        if (p->store == NULL) {
            e = sto_store_open(p->url, p->timeout_ms, &p->store, NULL, 0);
        } else {
            e = sto_store_reconnect(p->store);
        }
        if (e == BASE_OK && sto_store_ping(p->store) == BASE_OK) {
            atomic_store(&p->redis_up, true);
            *down_since_ns = 0;
            p->last_ok_ns = base_mono_ns();
            return true;
        }
        if (atomic_load(&p->closing) && idle && base_queue_len(p->q) == 0) {
            return false;
        }
        if (atomic_load(&p->closing)) {
            uint64_t waited_ms = (base_mono_ns() - *down_since_ns) / 1000000u;
            if (waited_ms >= (uint64_t)atomic_load(&p->drain_timeout_ms)) {
                return false;
            }
        }
        nap_ms(backoff);
        backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
    }
}

/* Write items[0..n) (all APPEND) in one pipelined call; false if Redis is gone for good. */
static bool write_appends(svc_persist *p, svc_persist_item **items, size_t n,
                          uint64_t *down_since_ns)
{
    sto_append a[SVC_PERSIST_BATCH];
    for (size_t i = 0; i < n; i++) {
        memset(&a[i], 0, sizeof(a[i]));
        a[i].kind = items[i]->kind;
        a[i].policy = items[i]->policy;
        a[i].rec = items[i]->rec;
    }
    for (;;) {
        base_err e = sto_store_append(p->store, a, n);
        if (e == BASE_OK) {
            p->last_ok_ns = base_mono_ns();
            break;
        }
        /*
         * The connection broke mid-batch: some records may be stored. The
         * retry can duplicate them in the stream; readers dedupe by event
         * and outcome ids.
         */
        if (!reconnect(p, down_since_ns, false)) {
            for (size_t i = 0; i < n; i++) {
                complete(p, items[i], BASE_ECLOSED);
            }
            return false;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (a[i].out_err == BASE_OK) {
            base_strlcpy(items[i]->stream_id, a[i].out_id, sizeof(items[i]->stream_id));
        }
        complete(p, items[i], a[i].out_err);
    }
    return true;
}

/* Retention after a stored checkpoint; failures only delay it to the next one. */
static void retain(svc_persist *p, const svc_persist_item *it)
{
    for (int k = 0; k < 3; k++) {
        uint64_t n = 0;
        if (it->trim.minid[k][0] != '\0' &&
            sto_store_trim(p->store, (sto_kind)k, it->policy, it->trim.minid[k], &n) == BASE_OK) {
            atomic_fetch_add(&p->trimmed, n);
        }
    }
    uint64_t n = 0;
    if (it->trim.keep_snapshots > 0) {
        (void)sto_store_model_prune(p->store, it->policy, it->trim.keep_snapshots, &n);
    }
}

static bool write_model(svc_persist *p, svc_persist_item *it, uint64_t *down_since_ns)
{
    for (;;) {
        base_err e = sto_store_model_put(p->store, it->rec);
        if (e == BASE_OK) {
            retain(p, it);
        }
        if (e != BASE_EIO) {
            p->last_ok_ns = base_mono_ns();
            complete(p, it, e);
            return true;
        }
        if (!reconnect(p, down_since_ns, false)) {
            complete(p, it, BASE_ECLOSED);
            return false;
        }
    }
}

/* True when the connection has been quiet for SVC_PERSIST_PING_MS. */
static bool idle_ping_due(const svc_persist *p)
{
    return base_mono_ns() - p->last_ok_ns >= (uint64_t)SVC_PERSIST_PING_MS * 1000000u;
}

static void *writer_main(void *arg)
{
    svc_persist *p = arg;
    void *batch[SVC_PERSIST_BATCH];
    uint64_t down_since_ns = 0;
    bool alive = true;
    for (;;) {
        size_t n = 0;
        base_err e = base_queue_pop_batch(p->q, batch, SVC_PERSIST_BATCH, 100, &n);
        if (e == BASE_ECLOSED) {
            break;
        }
        if (n == 0) {
            if (alive && atomic_load(&p->redis_up) && idle_ping_due(p)) {
                /* Nothing to write: find out whether Redis is still there. */
                if (sto_store_ping(p->store) == BASE_OK) {
                    p->last_ok_ns = base_mono_ns();
                } else {
                    atomic_store(&p->redis_up, false);
                }
            }
            if (alive && !atomic_load(&p->redis_up)) {
                alive = reconnect(p, &down_since_ns, true);
            }
            continue;
        }
        if (alive && !atomic_load(&p->redis_up)) {
            alive = reconnect(p, &down_since_ns, false);
        }
        size_t i = 0;
        while (i < n) {
            svc_persist_item *it = batch[i];
            if (!alive) {
                complete(p, it, BASE_ECLOSED);
                i++;
                continue;
            }
            if (it->type == SVC_PERSIST_MODEL) {
                alive = write_model(p, it, &down_since_ns);
                i++;
                continue;
            }
            if (it->type == SVC_PERSIST_BARRIER) {
                /* Everything queued before it is stored (or failed): done, no I/O. */
                if (it->done != NULL) {
                    it->done(it->done_arg, it, BASE_OK);
                }
                svc_persist_item_free(it);
                i++;
                continue;
            }
            size_t j = i;
            while (j < n && ((svc_persist_item *)batch[j])->type == SVC_PERSIST_APPEND) {
                j++;
            }
            alive = write_appends(p, (svc_persist_item **)&batch[i], j - i, &down_since_ns);
            i = j;
        }
    }
    return NULL;
}

base_err svc_persist_new(const char *url, int timeout_ms, size_t capacity, svc_persist **out,
                         char *errbuf, size_t errlen)
{
    base_err e = BASE_ENOMEM;
    svc_persist *p = base_alloc_zero(1, sizeof(*p));
    if (p == NULL) {
        goto fail;
    }
    p->q = base_queue_new(capacity);
    if (p->q == NULL) {
        goto fail;
    }
    p->url = base_strdup(url);
    if (p->url == NULL) {
        goto fail;
    }
    p->timeout_ms = timeout_ms;
    e = sto_store_open(url, timeout_ms, &p->store, errbuf, errlen);
    if (e == BASE_EIO) {
        p->store = NULL; /* start anyway: the writer keeps trying */
    } else if (e != BASE_OK) {
        goto fail;
    }
    atomic_store(&p->redis_up, p->store != NULL);
    atomic_store(&p->drain_timeout_ms, 5000);
    p->last_ok_ns = base_mono_ns();
    if (pthread_create(&p->thread, NULL, writer_main, p) != 0) {
        e = BASE_ENOMEM;
        goto fail;
    }
    *out = p;
    return BASE_OK;
fail:
    if (p != NULL) {
        sto_store_close(p->store);
        base_queue_free(p->q);
        base_free(p->url);
        base_free(p);
    }
    return e;
}

base_err svc_persist_submit(svc_persist *p, svc_persist_item *it)
{
    return base_queue_push(p->q, it);
}

size_t svc_persist_depth(svc_persist *p)
{
    return base_queue_len(p->q);
}

size_t svc_persist_capacity(const svc_persist *p)
{
    return base_queue_capacity(p->q);
}

bool svc_persist_redis_up(const svc_persist *p)
{
    return atomic_load(&p->redis_up);
}

uint64_t svc_persist_written(const svc_persist *p)
{
    return atomic_load(&p->written);
}

uint64_t svc_persist_trimmed(const svc_persist *p)
{
    return atomic_load(&p->trimmed);
}

uint64_t svc_persist_failed(const svc_persist *p)
{
    return atomic_load(&p->failed);
}

void svc_persist_close(svc_persist *p, int drain_timeout_ms)
{
    if (p == NULL) {
        return;
    }
    atomic_store(&p->drain_timeout_ms, drain_timeout_ms);
    /* Close first: once closing is seen, an empty queue stays empty (see reconnect). */
    base_queue_close(p->q);
    atomic_store(&p->closing, true);
    pthread_join(p->thread, NULL);
    sto_store_close(p->store);
    base_queue_free(p->q);
    base_free(p->url);
    base_free(p);
}
