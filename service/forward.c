#include "service/forward.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/queue.h"
#include "base/thread.h"

#define FWD_BATCH 256
#define FWD_BACKOFF_MIN_MS 50
#define FWD_BACKOFF_MAX_MS 1000
#define FWD_REFUSALS_MAX 20 /* error replies (not a lost connection) before an item fails */

struct svc_forward {
    sto_store *store; /* the thread's only */
    base_queue *q;
    char who[STO_OWNER_MAX + 1];
    uint32_t replicas, replicas_timeout_ms;
    pthread_t thread;
    bool started;
    _Atomic uint64_t deadline_ns; /* 0 while running; set by close */
    atomic_uint_fast64_t stored, failed;
};

svc_fwd_item *svc_fwd_item_new(sto_kind kind, const char *policy, void *rec)
{
    svc_fwd_item *it = base_alloc_zero(1, sizeof(*it));
    if (it != NULL) {
        it->kind = kind;
        base_strlcpy(it->policy, policy, sizeof(it->policy));
        it->rec = rec;
    }
    return it;
}

void svc_fwd_item_free(svc_fwd_item *it)
{
    if (it != NULL) {
        if (it->rec != NULL) {
            sto_record_free(it->kind, it->rec);
        }
        base_free(it);
    }
}

static void nap_ms(uint32_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L};
    (void)nanosleep(&ts, NULL);
}

/* Whether the close deadline has passed (never while running). */
static bool past_deadline(const svc_forward *f)
{
    uint64_t d = atomic_load(&f->deadline_ns);
    return d != 0 && base_mono_ns() >= d;
}

/* Append @it, retrying while Redis is away until it is stored or the deadline passes. */
static base_err append_one(svc_forward *f, svc_fwd_item *it, bool *warned)
{
    uint32_t backoff = FWD_BACKOFF_MIN_MS, refusals = 0;
    for (;;) {
        base_err e = sto_inbox_add(f->store, it->policy, it->kind, it->rec, f->who, NULL);
        if (e == BASE_OK) {
            if (*warned) {
                base_log(BASE_LOG_INFO, "forwarder: Redis answers again");
                *warned = false;
            }
            return BASE_OK;
        }
        if (e != BASE_EIO && e != BASE_ESTORE) {
            base_log_policy(BASE_LOG_ERROR, it->policy,
                            "policy %s: a record could not be forwarded to its owner: %s",
                            it->policy, base_strerror(e));
            return e; /* the record itself is wrong: retrying cannot help */
        }
        if (!*warned) {
            base_log(BASE_LOG_WARN, "forwarder: cannot append to an inbox (%s); retrying",
                     base_strerror(e));
            *warned = true;
        }
        if (past_deadline(f)) {
            return BASE_ECLOSED;
        }
        if (e == BASE_ESTORE && ++refusals >= FWD_REFUSALS_MAX) {
            base_log_policy(BASE_LOG_ERROR, it->policy,
                            "policy %s: its inbox refused a record %u times; given up", it->policy,
                            refusals);
            return e; /* a cluster still down after ~15 s, or a key of the wrong type */
        }
        nap_ms(backoff);
        backoff = backoff * 2 > FWD_BACKOFF_MAX_MS ? FWD_BACKOFF_MAX_MS : backoff * 2;
        if (e == BASE_EIO) {
            (void)sto_store_reconnect(f->store);
        }
    }
}

static void *forward_main(void *arg)
{
    base_thread_name("rlf-forward");
    svc_forward *f = arg;
    void *items[FWD_BATCH];
    base_err res[FWD_BATCH];
    bool warned = false;
    for (;;) {
        size_t n = 0;
        base_err pe = base_queue_pop_batch(f->q, items, FWD_BATCH, 100, &n);
        if (pe == BASE_ECLOSED) {
            break;
        }
        if (past_deadline(f)) {
            /* Closing and out of time: no more I/O, whatever Redis does. */
            for (size_t i = 0; i < n; i++) {
                svc_fwd_item *it = items[i];
                atomic_fetch_add(&f->failed, 1);
                if (it->done != NULL) {
                    it->done(it->done_arg, it, BASE_ECLOSED);
                }
                svc_fwd_item_free(it);
            }
            continue;
        }
        /* The batch in one pipeline per policy; what that did not store, one at a time. */
        sto_inbox_item batch[FWD_BATCH];
        for (size_t i = 0; i < n; i++) {
            svc_fwd_item *it = items[i];
            batch[i] = (sto_inbox_item){it->policy, it->kind, it->rec, f->who, BASE_EIO};
        }
        if (n > 0 && sto_inbox_add_batch(f->store, batch, n) == BASE_EIO) {
            (void)sto_store_reconnect(f->store);
        }
        bool any_acked = false;
        for (size_t i = 0; i < n; i++) {
            svc_fwd_item *it = items[i];
            res[i] = batch[i].out_err;
            if (res[i] != BASE_OK) {
                res[i] = past_deadline(f) ? BASE_ECLOSED : append_one(f, it, &warned);
            }
            any_acked = any_acked || (it->acked && res[i] == BASE_OK);
        }
        if (any_acked && f->replicas > 0) {
            uint32_t got = 0;
            base_err we = sto_store_wait(f->store, f->replicas, f->replicas_timeout_ms, &got);
            if (we != BASE_OK || got < f->replicas) {
                for (size_t i = 0; i < n; i++) {
                    svc_fwd_item *it = items[i];
                    res[i] = it->acked && res[i] == BASE_OK ? BASE_ETIMEDOUT : res[i];
                }
            }
        }
        for (size_t i = 0; i < n; i++) {
            svc_fwd_item *it = items[i];
            if (res[i] == BASE_OK || res[i] == BASE_ETIMEDOUT) {
                atomic_fetch_add(&f->stored, 1);
            }
            if (res[i] != BASE_OK) {
                atomic_fetch_add(&f->failed, 1);
            }
            if (it->done != NULL) {
                it->done(it->done_arg, it, res[i]);
            }
            svc_fwd_item_free(it);
        }
    }
    return NULL;
}

base_err svc_forward_new(const char *url, int timeout_ms, size_t capacity, const char *who,
                         uint32_t replicas, uint32_t replicas_timeout_ms, svc_forward **out,
                         char *errbuf, size_t errlen)
{
    svc_forward *f = base_alloc_zero(1, sizeof(*f));
    base_err e = BASE_ENOMEM;
    if (f == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return e;
    }
    f->replicas = replicas;
    f->replicas_timeout_ms = replicas_timeout_ms;
    if (!base_strlcpy(f->who, who, sizeof(f->who))) {
        snprintf(errbuf, errlen, "instance_id is longer than %d bytes", STO_OWNER_MAX);
        e = BASE_EINVAL;
        goto fail;
    }
    f->q = base_queue_new(capacity);
    if (f->q == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        goto fail;
    }
    e = sto_store_open(url, timeout_ms, &f->store, errbuf, errlen);
    if (e != BASE_OK) {
        goto fail;
    }
    if (pthread_create(&f->thread, NULL, forward_main, f) != 0) {
        snprintf(errbuf, errlen, "cannot start the forwarder thread");
        e = BASE_ENOMEM;
        goto fail;
    }
    f->started = true;
    *out = f;
    return BASE_OK;
fail:
    svc_forward_close(f, 0);
    return e;
}

base_err svc_forward_submit(svc_forward *f, svc_fwd_item *it)
{
    return base_queue_push(f->q, it);
}

uint64_t svc_forward_stored(const svc_forward *f)
{
    return f != NULL ? atomic_load(&f->stored) : 0;
}

uint64_t svc_forward_failed(const svc_forward *f)
{
    return f != NULL ? atomic_load(&f->failed) : 0;
}

size_t svc_forward_depth(svc_forward *f)
{
    return f != NULL ? base_queue_len(f->q) : 0;
}

size_t svc_forward_capacity(const svc_forward *f)
{
    return f != NULL ? base_queue_capacity(f->q) : 0;
}

void svc_forward_close(svc_forward *f, uint64_t deadline_ns)
{
    if (f == NULL) {
        return;
    }
    atomic_store(&f->deadline_ns, deadline_ns > 0 ? deadline_ns : 1);
    if (f->q != NULL) {
        base_queue_close(f->q);
    }
    if (f->started) {
        pthread_join(f->thread, NULL); /* it drains the queue, failing what is past the deadline */
    }
    sto_store_close(f->store);
    base_queue_free(f->q);
    base_free(f);
}
