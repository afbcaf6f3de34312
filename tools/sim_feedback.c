#include "tools/sim_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "base/clock.h"
#include "base/hash.h"
#include "base/record.h"
#include "bench/dataset.h"
#include "client/rlfeed_client.h"

#define SIM_FEEDBACK_TRIES 8 /* sends of one feedback answered "unavailable" */

/* "sim-<seed>-<i>" for event ids, "sim-<seed>-c<n>" for conversation n. */
bool sim_format_id(char *buf, size_t size, uint64_t seed, const char *kind, uint64_t n)
{
    int len = snprintf(buf, size, "sim-%" PRIu64 "-%s%" PRIu64, seed, kind, n);
    return len >= 0 && (size_t)len < size;
}

/*
 * Acknowledged feedback for @id: an event id, or with @conv a conversation id.
 * Returns false (after counting it) if it failed.
 */
static bool send_feedback(sim_worker *w, uint64_t i, const char *id, bool conv, const char *signal,
                          double value, const char *oid_suffix)
{
    sim_run *run = w->run;
    char oid[BASE_ID_MAX + 1];
    bool ok = false;
    base_err e;
    int n;

    n = snprintf(oid, sizeof(oid), "%s-%s", id, oid_suffix);
    if (n < 0 || (size_t)n >= sizeof(oid)) {
        sim_note_transport_error(run, i, "feedback outcome_id", BASE_ELIMIT);
        goto done;
    }
    /*
     * "unavailable" asks for a retry with the same outcome_id (Redis slow or away: the
     * outcome may be queued already, and the id makes a second copy a duplicate), as a
     * frontend would: up to SIM_FEEDBACK_TRIES sends, 10 ms apart, doubling (640 ms last).
     */
    for (int attempt = 0;; attempt++) {
        if (conv) {
            e = rlfeed_client_feedback_conv(w->client, run->o->policy, id, signal, value, oid,
                                            &w->reply);
        } else {
            e = rlfeed_client_feedback(w->client, run->o->policy, id, signal, value, oid,
                                       &w->reply);
        }
        if (e != BASE_OK || w->reply.ok || w->reply.error.code != PROTO_E_UNAVAILABLE ||
            attempt + 1 == SIM_FEEDBACK_TRIES) {
            break;
        }
        atomic_fetch_add(&run->n_retried, 1);
        long ms = 10L << attempt; /* attempt < SIM_FEEDBACK_TRIES - 1 = 7 */
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        (void)nanosleep(&ts, NULL); /* a back-off: an early wake-up only retries sooner */
    }
    if (e != BASE_OK) {
        sim_note_transport_error(run, i, "feedback", e);
    } else if (!w->reply.ok) {
        sim_note_reply_error(run, i, "feedback", &w->reply);
    } else {
        ok = true;
        if (strcmp(w->reply.status, "late") == 0) {
            atomic_fetch_add(&run->n_late, 1); /* accepted, but never learned from */
        }
    }

done:
    return ok;
}

/* Thumbs: with probability thumbs_rate, matching @correct unless flipped. */
static void maybe_thumbs(sim_worker *w, uint64_t i, const char *event_id, bool correct)
{
    const sim_opts *o = w->run->o;
    uint64_t state = base_hash64(&i, sizeof(i), o->seed ^ THUMBS_SALT);
    double u_rate = base_u64_to_unit(base_splitmix64(&state));
    double u_flip = base_u64_to_unit(base_splitmix64(&state));

    if (u_rate < o->thumbs_rate) {
        bool up = u_flip < o->thumbs_noise ? !correct : correct;
        (void)send_feedback(w, i, event_id, false, up ? "thumbs_up" : "thumbs_down", 1.0,
                            "thumbs"); /* failures are counted inside */
    }
}

/* Send what @p stands for, now. */
static void deliver(sim_worker *w, const sim_pending *p)
{
    sim_run *run = w->run;
    const sim_opts *o = run->o;
    char id[BASE_ID_MAX + 1];
    double value = p->correct ? 1.0 : 0.0;

    if (p->kind == SIM_FB_CONV) {
        if (!sim_format_id(id, sizeof(id), o->seed, "c", p->i / o->turns)) {
            sim_note_transport_error(run, p->i, "conversation_id", BASE_ELIMIT);
        } else if (send_feedback(w, p->i, id, true, "resolved", value, "resolved")) {
            atomic_fetch_add(&run->n_conv_outcomes, 1);
        }
    } else if (!sim_format_id(id, sizeof(id), o->seed, "", p->i)) {
        sim_note_transport_error(run, p->i, "event_id", BASE_ELIMIT);
    } else if (o->turns > 1) {
        maybe_thumbs(w, p->i, id, p->correct); /* "resolved" is the conversation's */
    } else if (send_feedback(w, p->i, id, false, "resolved", value, "resolved")) {
        maybe_thumbs(w, p->i, id, p->correct);
    }
}

static bool pending_before(const void *a, const void *b)
{
    const sim_pending *x = a, *y = b;
    return x->due_ns < y->due_ns || (x->due_ns == y->due_ns && x->seq < y->seq);
}

void sim_queue_init(sim_worker *w)
{
    base_heap_init(&w->queue, sizeof(sim_pending), SIM_MAX_PENDING, pending_before, NULL);
}

/* Sleep until base_mono_ns() reaches @due_ns (a due time, not an event to wait for). */
static void sleep_until(uint64_t due_ns)
{
    uint64_t now = base_mono_ns();

    while (now < due_ns) {
        uint64_t left = due_ns - now;
        struct timespec ts = {.tv_sec = (time_t)(left / 1000000000u),
                              .tv_nsec = (long)(left % 1000000000u)};
        (void)nanosleep(&ts, NULL); /* an early wake-up (EINTR) just loops */
        now = base_mono_ns();
    }
}

/* Send every queued feedback due by now. */
void sim_flush_due(sim_worker *w)
{
    uint64_t now = base_mono_ns();
    sim_pending p;

    while (w->queue.n > 0 && ((const sim_pending *)base_heap_at(&w->queue, 0))->due_ns <= now) {
        base_heap_pop(&w->queue, &p);
        deliver(w, &p);
        now = base_mono_ns();
    }
}

/*
 * Queue the feedback of interaction @i (kind @kind) to go out D' ms after now,
 * D' uniform in [0, delay_ms] from hash(i, seed). With no delay it goes out at
 * once, as without a queue. A full queue (SIM_MAX_PENDING, or no memory) first
 * sends its earliest entry, waiting for its due time: memory stays bounded and
 * no feedback goes out early.
 */
void sim_schedule(sim_worker *w, uint64_t i, enum sim_fb_kind kind, bool correct)
{
    const sim_opts *o = w->run->o;
    sim_pending p = {.i = i, .kind = (uint8_t)kind, .correct = correct, .seq = w->seq++};
    uint64_t state = base_hash64(&i, sizeof(i), o->seed ^ DELAY_SALT);
    double u = base_u64_to_unit(base_splitmix64(&state));

    if (o->delay_ms == 0) {
        deliver(w, &p);
        return;
    }
    if (kind == SIM_FB_CONV) {
        u = base_u64_to_unit(base_splitmix64(&state)); /* not the final turn's own delay */
    }
    p.due_ns = base_mono_ns() + (uint64_t)(u * (double)o->delay_ms * 1e6);
    if (base_heap_push(&w->queue, &p) != BASE_OK) {
        sim_pending first = p;
        if (w->queue.n > 0) { /* full: swap the earliest out, into the slot it frees */
            base_heap_pop(&w->queue, &first);
            (void)base_heap_push(&w->queue, &p); /* cannot fail: n < cap now */
        }
        sleep_until(first.due_ns);
        deliver(w, &first);
    }
    uint64_t seen = atomic_load(&w->run->max_queued);
    while (w->queue.n > seen &&
           !atomic_compare_exchange_weak(&w->run->max_queued, &seen, w->queue.n)) {
        /* seen was reloaded: retry while ours is still higher */
    }
}

/* At the end: send the rest at their due times, or count them dropped if the run stopped. */
void sim_drain(sim_worker *w)
{
    sim_pending p;

    while (w->queue.n > 0) {
        base_heap_pop(&w->queue, &p);
        if (atomic_load(&w->run->stop)) {
            atomic_fetch_add(&w->run->n_dropped, 1);
            continue;
        }
        sleep_until(p.due_ns);
        deliver(w, &p);
    }
}
