#include "base/queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "base/alloc.h"
#include "base/thread.h"

struct base_queue {
    pthread_mutex_t lk;
    pthread_cond_t nonempty;
    /* guarded by lk */
    void **ring;
    size_t cap;
    size_t head;
    size_t len;
    bool closed;
    bool urgent;        /* an item pushed with base_queue_push() is queued */
    size_t linger_fill; /* a consumer lingers until len reaches this; 0: none lingers */
    /* len as last set under lk, for base_queue_len() without the lock */
    atomic_size_t len_seen;
};

base_queue *base_queue_new(size_t capacity)
{
    if (capacity == 0) {
        return NULL;
    }
    base_queue *q = base_alloc_zero(1, sizeof(*q));
    if (q == NULL) {
        return NULL;
    }
    q->ring = base_alloc_array(capacity, sizeof(void *));
    if (q->ring == NULL) {
        base_free(q);
        return NULL;
    }
    q->cap = capacity;
    atomic_init(&q->len_seen, 0);
    pthread_mutex_init(&q->lk, NULL);
    (void)base_cond_init_mono(&q->nonempty);
    return q;
}

void base_queue_free(base_queue *q)
{
    if (q == NULL) {
        return;
    }
    pthread_mutex_destroy(&q->lk);
    pthread_cond_destroy(&q->nonempty);
    base_free(q->ring);
    base_free(q);
}

static base_err push(base_queue *q, void *item, bool lazy)
{
    base_err e = BASE_OK;
    pthread_mutex_lock(&q->lk);
    if (q->closed) {
        e = BASE_ECLOSED;
    } else if (q->len == q->cap) {
        e = BASE_ELIMIT;
    } else {
        q->ring[(q->head + q->len) % q->cap] = item;
        q->len++;
        atomic_store(&q->len_seen, q->len);
        q->urgent = q->urgent || !lazy;
        /* A lingering consumer sleeps on: it is woken only when the wait is over. */
        if (!lazy || q->linger_fill == 0 || q->len >= q->linger_fill) {
            pthread_cond_signal(&q->nonempty);
        }
    }
    pthread_mutex_unlock(&q->lk);
    return e;
}

base_err base_queue_push(base_queue *q, void *item)
{
    return push(q, item, false);
}

base_err base_queue_push_lazy(base_queue *q, void *item)
{
    return push(q, item, true);
}

base_err base_queue_pop_batch(base_queue *q, void **out, size_t max, int timeout_ms, size_t *out_n)
{
    return base_queue_pop_linger(q, out, max, timeout_ms, 0, out_n);
}

base_err base_queue_pop_linger(base_queue *q, void **out, size_t max, int timeout_ms,
                               uint32_t linger_us, size_t *out_n)
{
    struct timespec dl = base_mono_deadline(timeout_ms > 0 ? (uint64_t)timeout_ms * 1000000u : 0);
    base_err e = BASE_OK;
    *out_n = 0;
    /* A batch is full at @max items, or at half the queue: producers must never find it full. */
    size_t fill = max < q->cap / 2 ? max : (q->cap / 2 > 0 ? q->cap / 2 : 1);
    bool timed_out = timeout_ms == 0;
    pthread_mutex_lock(&q->lk);
    for (;;) {
        while (q->len == 0 && !q->closed && !timed_out) {
            if (timeout_ms < 0) {
                pthread_cond_wait(&q->nonempty, &q->lk);
            } else if (pthread_cond_timedwait(&q->nonempty, &q->lk, &dl) == ETIMEDOUT) {
                timed_out = true;
            }
        }
        if (linger_us > 0 && q->len > 0 && q->len < fill && !q->urgent && !q->closed) {
            struct timespec ldl = base_mono_deadline((uint64_t)linger_us * 1000u);
            q->linger_fill = fill;
            while (q->len < fill && !q->urgent && !q->closed &&
                   pthread_cond_timedwait(&q->nonempty, &q->lk, &ldl) != ETIMEDOUT) {
            }
            q->linger_fill = 0;
        }
        /* Another consumer may have taken what this one lingered on: wait again, as asked. */
        if (q->len > 0 || q->closed || timed_out) {
            break;
        }
    }
    size_t n = 0;
    while (n < max && q->len > 0) {
        out[n++] = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->len--;
    }
    atomic_store(&q->len_seen, q->len);
    if (q->len == 0) {
        q->urgent = false; /* else some may still be queued: the next pop does not linger */
    }
    if (n == 0) {
        e = q->closed ? BASE_ECLOSED : BASE_ETIMEDOUT;
    }
    pthread_mutex_unlock(&q->lk);
    *out_n = n;
    return e;
}

void base_queue_close(base_queue *q)
{
    pthread_mutex_lock(&q->lk);
    q->closed = true;
    pthread_cond_broadcast(&q->nonempty);
    pthread_mutex_unlock(&q->lk);
}

size_t base_queue_len(base_queue *q)
{
    return atomic_load(&q->len_seen); /* a moment's value either way: no lock needed */
}

size_t base_queue_capacity(const base_queue *q)
{
    return q->cap;
}
