#include "service/inbox.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/thread.h"
#include "service/engine_impl.h"
#include "storage/store.h"

#define INBOX_BATCH 256

struct svc_inbox {
    const svc_config *cfg;
    svc_engine *eng;
    sto_store *store; /* the thread's only */
    pthread_t thread;
    bool started;
    pthread_mutex_t lk;
    pthread_cond_t cv;
    bool stop; /* guarded by lk */
};

/*
 * Take what @p's inbox holds after the last entry taken. Returns the entries taken; *out_busy
 * is set when it stopped early (the write queue is full, or Redis did not answer).
 */
static size_t take_some(svc_inbox *in, svc_prt *p, bool *out_busy)
{
    char after[BASE_STREAM_ID_MAX + 1];
    pthread_mutex_lock(&p->join_lk);
    memcpy(after, p->inbox_pos, sizeof(after));
    pthread_mutex_unlock(&p->join_lk);
    sto_inbox_entry *en = NULL;
    size_t n = 0, taken = 0;
    base_err e = sto_inbox_read(in->store, p->cfg->name, after, INBOX_BATCH, &en, &n);
    if (e != BASE_OK) {
        if (e == BASE_EIO) {
            (void)sto_store_reconnect(in->store);
        }
        *out_busy = true;
        return 0;
    }
    /*
     * Hold the gate: a takeover, a step-down or a definition change never sees half an
     * entry. Under it, the position read above must still be the policy's: a step-down
     * and a takeover in between would have moved it (then this batch is read again).
     */
    pthread_rwlock_rdlock(&p->gate);
    pthread_mutex_lock(&p->join_lk);
    bool moved = strcmp(after, p->inbox_pos) != 0;
    pthread_mutex_unlock(&p->join_lk);
    for (; taken < n && !moved && !atomic_load(&p->follower); taken++) {
        sto_inbox_entry *x = &en[taken];
        svc_take t = SVC_TAKE_BAD;
        if (x->kind == STO_DECISIONS) {
            t = svc_prt_take_decision(p, x->rec, x->id, x->from);
        } else if (x->kind == STO_OUTCOMES) {
            t = svc_prt_take_outcome(p, x->rec, x->id);
        } else {
            pthread_mutex_lock(&p->join_lk);
            base_strlcpy(p->inbox_pos, x->id, sizeof(p->inbox_pos));
            pthread_mutex_unlock(&p->join_lk);
        }
        if (t == SVC_TAKE_LATER) {
            *out_busy = true; /* the write queue is full: this entry again next round */
            break;
        }
        if (x->kind >= 0) {
            x->rec = NULL; /* taken (or dropped) by the callee */
        }
        if (t == SVC_TAKE_BAD) {
            atomic_fetch_add(&p->c.inbox_bad, 1);
            base_log_policy(BASE_LOG_WARN, p->cfg->name,
                            "policy %s: inbox entry %s (from \"%s\") is %s; skipped", p->cfg->name,
                            x->id, x->from,
                            x->kind < 0 ? "not a record"
                                        : "a decision that does not fit the policy's definition");
        } else {
            atomic_fetch_add(&p->c.inbox, 1);
        }
    }
    pthread_rwlock_unlock(&p->gate);
    sto_inbox_free(en, n);
    return taken;
}

static void *inbox_main(void *arg)
{
    base_thread_name("rlf-inbox");
    svc_inbox *in = arg;
    uint32_t idle_ms[SVC_MAX_POLICIES]; /* each policy's poll interval now */
    uint64_t due_ns[SVC_MAX_POLICIES];  /* base_mono_ns() of its next read */
    for (uint32_t i = 0; i < SVC_MAX_POLICIES; i++) {
        idle_ms[i] = 1;
        due_ns[i] = 0;
    }
    pthread_mutex_lock(&in->lk);
    while (!in->stop) {
        pthread_mutex_unlock(&in->lk);
        bool again = false;
        uint64_t now = base_mono_ns(), next = now + (uint64_t)SVC_INBOX_IDLE_MS * 1000000u;
        uint32_t n = atomic_load(&in->eng->n_pol);
        for (uint32_t i = 0; i < n; i++) {
            svc_prt *p = &in->eng->pol[i];
            if (atomic_load(&p->follower) || atomic_load(&p->retired)) {
                continue;
            }
            if (due_ns[i] > now) {
                next = due_ns[i] < next ? due_ns[i] : next;
                continue;
            }
            bool busy = false;
            size_t taken = take_some(in, p, &busy);
            /* Busy policies are read again soon, quiet ones less and less often. */
            idle_ms[i] = taken > 0                            ? 1
                         : idle_ms[i] * 2 > SVC_INBOX_IDLE_MS ? SVC_INBOX_IDLE_MS
                                                              : idle_ms[i] * 2;
            due_ns[i] = taken > 0 && !busy ? now : now + (uint64_t)idle_ms[i] * 1000000u;
            again = again || (taken > 0 && !busy); /* more may be waiting: read again at once */
            next = due_ns[i] < next ? due_ns[i] : next;
        }
        pthread_mutex_lock(&in->lk);
        if (in->stop || again) {
            continue;
        }
        uint64_t wait_ns = next > base_mono_ns() ? next - base_mono_ns() : 0;
        struct timespec until = base_mono_deadline(wait_ns);
        (void)pthread_cond_timedwait(&in->cv, &in->lk, &until); /* a timeout is the normal case */
    }
    pthread_mutex_unlock(&in->lk);
    return NULL;
}

base_err svc_inbox_start(const char *url, const svc_config *cfg, svc_engine *eng, svc_inbox **out,
                         char *errbuf, size_t errlen)
{
    svc_inbox *in = base_alloc_zero(1, sizeof(*in));
    if (in == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return BASE_ENOMEM;
    }
    in->cfg = cfg;
    in->eng = eng;
    pthread_mutex_init(&in->lk, NULL);
    (void)base_cond_init_mono(&in->cv);
    base_err e = sto_store_open(url, (int)cfg->redis_timeout_ms, &in->store, errbuf, errlen);
    if (e == BASE_OK && pthread_create(&in->thread, NULL, inbox_main, in) != 0) {
        snprintf(errbuf, errlen, "cannot start the inbox thread");
        e = BASE_ENOMEM;
    }
    if (e != BASE_OK) {
        svc_inbox_stop(in);
        return e;
    }
    in->started = true;
    *out = in;
    return BASE_OK;
}

void svc_inbox_stop(svc_inbox *in)
{
    if (in == NULL) {
        return;
    }
    if (in->started) {
        pthread_mutex_lock(&in->lk);
        in->stop = true;
        pthread_cond_signal(&in->cv);
        pthread_mutex_unlock(&in->lk);
        pthread_join(in->thread, NULL);
    }
    sto_store_close(in->store);
    pthread_cond_destroy(&in->cv);
    pthread_mutex_destroy(&in->lk);
    base_free(in);
}
