#ifndef BASE_QUEUE_H
#define BASE_QUEUE_H

/*
 * A bounded, blocking FIFO of pointers, safe for many producers and many
 * consumers.
 *
 * States: OPEN -> CLOSED [base_queue_close]. Pushing never blocks: a full
 * queue answers BASE_ELIMIT (backpressure is the caller's decision). Popping
 * waits up to a timeout. After close, pushes fail with BASE_ECLOSED and pops
 * drain what is left, then report BASE_ECLOSED.
 *
 * The queue never owns the items: whoever pops one owns it; items left in a
 * queue at base_queue_free() must be drained by the caller first.
 */

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct base_queue base_queue;

base_queue *base_queue_new(size_t capacity); /* NULL on OOM or capacity 0 */
void base_queue_free(base_queue *q);

/* Return: BASE_OK; BASE_ELIMIT if full; BASE_ECLOSED after close. */
base_err base_queue_push(base_queue *q, void *item);

/*
 * base_queue_push_lazy() - push an item nobody waits for: it does not cut
 * short a consumer's linger (base_queue_pop_linger) unless it fills the
 * batch. It still wakes a consumer waiting on an empty queue.
 */
base_err base_queue_push_lazy(base_queue *q, void *item);

/*
 * base_queue_pop_batch() - move up to @max items into @out, oldest first.
 * Waits up to @timeout_ms (< 0: forever) for the first item.
 * Return: BASE_OK with *out_n >= 1; BASE_ETIMEDOUT with *out_n = 0;
 *         BASE_ECLOSED with *out_n = 0 once closed and empty.
 */
base_err base_queue_pop_batch(base_queue *q, void **out, size_t max, int timeout_ms, size_t *out_n);

/*
 * base_queue_pop_linger() - group commit: like base_queue_pop_batch(), but
 * once an item is there, keep waiting up to @linger_us more for the batch to
 * fill, unless an item pushed with base_queue_push() (someone waits for it)
 * is queued, @max items are (or half the queue's capacity, if less: lingering
 * never lets the queue fill up), or the queue is closed. @linger_us 0 is
 * base_queue_pop_batch().
 */
base_err base_queue_pop_linger(base_queue *q, void **out, size_t max, int timeout_ms,
                               uint32_t linger_us, size_t *out_n);

void base_queue_close(base_queue *q);
/* Items queued, as the last push or pop left them; takes no lock (any thread, any time). */
size_t base_queue_len(base_queue *q);
size_t base_queue_capacity(const base_queue *q);

#endif
