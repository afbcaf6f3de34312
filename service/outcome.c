/*
 * feedback and activate: the reward engine predicts the outcome's status;
 * outcomes that belong in the log of record are queued for Redis and then
 * applied, and their answer is owed until Redis has them; everything else is
 * counted and answered at once.
 *
 * Owed answers. An answer that waits for Redis is an ack linked in the
 * engine's list (ack_lk) with a deadline of ack_timeout_ms. Whoever unlinks
 * it answers, exactly once: the writer's completion (the status, or
 * `unavailable` if Redis refused the record) or, past the deadline, the
 * learner thread's sweep (`unavailable`: the record stays queued and is
 * stored when Redis returns; a retry with the same outcome_id then gets
 * `duplicate`). The completion always frees the ack, so the sweep copies
 * what it needs while it holds ack_lk. Lock order: join_lk -> ack_lk.
 */
#include "service/engine_impl.h"

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "service/explain.h"
#include "service/forward.h"

struct svc_ack {
    svc_prt *p;
    svc_replier r;
    rwd_status status;    /* answered on success; RWD_DUPLICATE for a retry's barrier */
    uint64_t deadline_ns; /* base_mono_ns() past which the sweep answers */
    bool owed;            /* guarded by ack_lk: linked, not answered yet */
    bool linked;          /* set before it is linked: someone waits for the answer */
    svc_ack *prev, *next; /* guarded by ack_lk */
};

/* An ack for @r; linked (owed) only if someone waits for the answer. NULL on OOM. */
static svc_ack *ack_new(svc_engine *e, svc_prt *p, const svc_replier *r, rwd_status status)
{
    svc_ack *a = base_alloc_zero(1, sizeof(*a));
    if (a == NULL) {
        return NULL;
    }
    a->p = p;
    a->status = status;
    if (r == NULL || r->send == NULL) {
        return a;
    }
    a->r = *r;
    a->deadline_ns = base_mono_ns() + e->ack_timeout_ns;
    a->linked = true;
    pthread_mutex_lock(&e->ack_lk);
    a->owed = true;
    a->prev = e->ack_tail;
    if (e->ack_tail != NULL) {
        e->ack_tail->next = a;
    } else {
        e->ack_head = a;
    }
    e->ack_tail = a;
    pthread_mutex_unlock(&e->ack_lk);
    return a;
}

/* Under ack_lk: take @a out of the list. */
static void ack_unlink(svc_engine *e, svc_ack *a)
{
    if (a->prev != NULL) {
        a->prev->next = a->next;
    } else {
        e->ack_head = a->next;
    }
    if (a->next != NULL) {
        a->next->prev = a->prev;
    } else {
        e->ack_tail = a->prev;
    }
    a->prev = a->next = NULL;
    a->owed = false;
}

/* Whether the caller now owes @a's answer (it was still owed); unlinks it. */
static bool ack_claim(svc_engine *e, svc_ack *a)
{
    pthread_mutex_lock(&e->ack_lk);
    bool owed = a->owed;
    if (owed) {
        ack_unlink(e, a);
    }
    pthread_mutex_unlock(&e->ack_lk);
    if (owed) {
        atomic_fetch_sub(&e->waiting, 1);
    }
    return owed;
}

/*
 * Drop an ack whose record was never queued. Whether the caller answers instead (and gives
 * its waiting slot back): false when the sweep (svc_acks_expire) found it past its deadline
 * meanwhile and answered it; decided under ack_lk, as the sweep decides.
 */
static bool ack_cancel(svc_engine *e, svc_ack *a)
{
    bool caller_answers = true;
    if (a != NULL && a->linked) {
        pthread_mutex_lock(&e->ack_lk);
        caller_answers = a->owed;
        if (a->owed) {
            ack_unlink(e, a);
        }
        pthread_mutex_unlock(&e->ack_lk);
    }
    base_free(a);
    return caller_answers;
}

void svc_acks_expire(svc_engine *e)
{
    enum { BATCH = 64 };
    svc_replier late[BATCH];
    size_t n = 0;
    uint64_t now = base_mono_ns();
    do {
        n = 0;
        pthread_mutex_lock(&e->ack_lk);
        while (n < BATCH && e->ack_head != NULL && e->ack_head->deadline_ns <= now) {
            svc_ack *a = e->ack_head;
            late[n++] = a->r;
            ack_unlink(e, a);
        }
        pthread_mutex_unlock(&e->ack_lk);
        for (size_t k = 0; k < n; k++) {
            atomic_fetch_sub(&e->waiting, 1);
            svc_engine_reject(e, &late[k], PROTO_E_UNAVAILABLE,
                              "not stored yet (Redis is slow or away); it stays queued: retry "
                              "with the same outcome_id for its final status");
        }
    } while (n == BATCH);
}

/* The answer to acknowledged feedback the fence refused: another instance took the policy. */
static const char OWNED_ELSEWHERE[] = "another instance owns this policy now; retry";
/* The answers to an acknowledged outcome [0] or activation [1] stored on the master only
 * (replicas_ack), and to one not stored. */
static const char *const UNREPLICATED[2] = {
    "the outcome is stored, but not on replicas_ack replicas in time; retry",
    "the activation is stored, but not on replicas_ack replicas in time; retry"};
static const char *const NOT_STORED[2] = {"the outcome could not be stored; retry",
                                          "the activation could not be stored; retry"};

/* Runs on the writer thread once Redis has (or refused) the outcome or activation. */
static void on_outcome_stored(void *arg, svc_persist_item *it, base_err result)
{
    svc_ack *a = arg;
    svc_engine *e = a->p->eng;
    if (result == BASE_OK || result == BASE_ETIMEDOUT) {
        svc_prt_set_tail(a->p, STO_OUTCOMES, it->stream_id); /* stored (on the master) */
    } else {
        atomic_fetch_add(&a->p->c.store_errors, 1);
        if (it->fenced) {
            atomic_store(&a->p->fenced, true);
        }
    }
    if (ack_claim(e, a)) {
        const base_outcome *o = it->rec;
        bool act = o != NULL && o->type == BASE_OUT_ACTIVATE; /* named as what it is */
        if (result == BASE_OK) {
            svc_engine_reply_status(&a->r, a->status);
        } else {
            svc_engine_reject(e, &a->r, PROTO_E_UNAVAILABLE,
                              result == BASE_ETIMEDOUT ? UNREPLICATED[act]
                              : it->fenced             ? OWNED_ELSEWHERE
                                                       : NOT_STORED[act]);
        }
    }
    base_free(a);
}

/*
 * Writer-thread completion of a retry's barrier: the original is stored (@result OK), or with
 * replicas_ack not confirmed on the replicas in time (BASE_ETIMEDOUT).
 */
static void on_duplicate_stored(void *arg, svc_persist_item *it, base_err result)
{
    svc_ack *a = arg;
    (void)it;
    if (ack_claim(a->p->eng, a)) {
        if (atomic_load(&a->p->fenced)) {
            /* The original may be one the fence refused: not `duplicate` from here. */
            svc_engine_reject(a->p->eng, &a->r, PROTO_E_UNAVAILABLE, OWNED_ELSEWHERE);
        } else if (result != BASE_OK) {
            svc_engine_reject(a->p->eng, &a->r, PROTO_E_UNAVAILABLE, UNREPLICATED[0]);
        } else {
            svc_engine_reply_duplicate(&a->r);
        }
    }
    base_free(a);
}

/* Rejections by the reward engine, as wire codes. */
static proto_errcode status_error(rwd_status st)
{
    switch (st) {
    case RWD_REJECT_SIGNAL:
        return PROTO_E_UNKNOWN_SIGNAL;
    case RWD_REJECT_VALUE:
        return PROTO_E_OUT_OF_RANGE;
    case RWD_REJECT_LIMIT:
        return PROTO_E_LIMIT;
    case RWD_REJECT_RATE:
        return PROTO_E_RATE_LIMITED;
    case RWD_UNKNOWN_EVENT:
        return PROTO_E_UNKNOWN_EVENT;
    default:
        return PROTO_E_NONE;
    }
}

/* Statuses whose outcome is written to the outcome stream (the log of record). */
static bool logged_status(rwd_status st)
{
    return st == RWD_MATCHED || st == RWD_CORRECTED || st == RWD_EARLY || st == RWD_LATE ||
           st == RWD_LATE_CORRECTION;
}

/*
 * Queue a record for Redis whose completion @done answers through a new ack.
 * Takes @it on success; on failure the caller still owns it, and answers unless
 * *@out_answered says the ack's deadline sweep already did (svc_acks_expire).
 */
static bool submit_owed(svc_engine *e, svc_prt *p, svc_persist_item *it, const svc_replier *r,
                        rwd_status status, svc_persist_done done, bool *out_answered)
{
    *out_answered = false;
    svc_ack *a = ack_new(e, p, r, status);
    if (a == NULL) {
        return false;
    }
    it->done = done;
    it->done_arg = a;
    if (svc_log_submit(&e->log, it) != BASE_OK) {
        it->done = NULL;
        it->done_arg = NULL;
        *out_answered = !ack_cancel(e, a);
        return false;
    }
    return true;
}

/*
 * Whether decisions of @p may have been served without being logged
 * recently enough that feedback for them is still arriving: then an
 * unknown event may be one of them, and the honest answer is `unavailable`.
 */
static bool maybe_unlogged(svc_engine *e, svc_prt *p, int64_t now)
{
    svc_log_stats ls;
    svc_log_get_stats(&e->log, &ls);
    if (ls.depth >= ls.capacity) {
        return true;
    }
    int64_t last = atomic_load(&p->last_unlogged_ms);
    return last != INT64_MIN && now - last <= p->cfg->reward.window_ms;
}

static void reject_status(svc_engine *e, svc_prt *p, const base_outcome *o, rwd_status st,
                          int64_t now, const svc_replier *r)
{
    char msg[PROTO_ERRMSG_MAX];
    proto_errcode code = status_error(st);
    const char *addr = o->event_id[0] != '\0' ? "event_id" : "conversation_id";
    const char *id = o->event_id[0] != '\0' ? o->event_id : o->conversation_id;
    switch (code) {
    case PROTO_E_UNKNOWN_SIGNAL:
        snprintf(msg, sizeof(msg), "signal \"%.48s\" is not in the reward spec of policy %.48s",
                 o->signal, p->cfg->name);
        break;
    case PROTO_E_OUT_OF_RANGE:
        snprintf(msg, sizeof(msg), "value %.17g is not allowed for signal \"%.48s\"", o->value,
                 o->signal);
        break;
    case PROTO_E_LIMIT:
        if (o->event_id[0] != '\0') {
            snprintf(msg, sizeof(msg),
                     "event_id \"%.48s\" has its maximum %u outcomes (applied or held), or the "
                     "early holding area is full",
                     o->event_id, p->cfg->reward.max_outcomes);
        } else {
            snprintf(msg, sizeof(msg),
                     "conversation_id \"%.48s\": a decision has its maximum %u outcomes, or it "
                     "has over %u open decisions",
                     o->conversation_id, p->cfg->reward.max_outcomes, (unsigned)RWD_MAX_OUTCOMES);
        }
        break;
    case PROTO_E_RATE_LIMITED:
        snprintf(msg, sizeof(msg), "user_id \"%.48s\" is over its outcome rate", o->user_id);
        break;
    default:
        atomic_fetch_add(&p->c.unknown_event, 1);
        if (maybe_unlogged(e, p, now)) {
            code = PROTO_E_UNAVAILABLE;
            snprintf(msg, sizeof(msg),
                     "no pending decision with %s \"%.48s\", but decisions were served unlogged "
                     "(storage queue full); retry",
                     addr, id);
        } else {
            snprintf(msg, sizeof(msg), "no pending decision with %s \"%.64s\"", addr, id);
        }
        break;
    }
    svc_engine_reject(e, r, code, msg);
}

/*
 * Under the join lock: predict the status; if the outcome is to be logged,
 * queue it (the answer is owed until Redis has it) and only then apply it, so
 * a full queue leaves no trace. A retry of an outcome already applied is
 * answered `duplicate` only once the original is stored (a barrier behind it
 * in the write queue), or an acknowledged duplicate could precede, and
 * outlive, a crash that loses the original from the queue. Everything else
 * is counted and answered now.
 */
static bool submit_outcome(svc_engine *e, svc_prt *p, base_outcome *o, int64_t now,
                           const char *inbox_id, const svc_replier *r)
{
    svc_persist_item *it = svc_persist_item_new(SVC_PERSIST_APPEND, STO_OUTCOMES, p->cfg->name, o);
    if (it == NULL) {
        base_free(o);
        if (inbox_id != NULL) {
            return false; /* not taken: the inbox keeps the entry for the next round */
        }
        svc_engine_reject(e, r, PROTO_E_INTERNAL, "out of memory");
        return true;
    }
    it->index_ttl_ms = svc_explain_index_ttl_ms(e->cfg); /* explain lists it (storage/evidx.c) */
    base_outcome applied = *o;                           /* @o belongs to the writer once queued */
    bool waits = r != NULL && r->send != NULL;
    it->lazy = !waits; /* PUSH, an inbox entry: nobody waits, so it may join a fuller batch */
    if (waits && atomic_fetch_add(&e->waiting, 1) >= e->max_waiting) {
        /* Every REP context would be waiting for Redis: keep some for decide. */
        atomic_fetch_sub(&e->waiting, 1);
        svc_persist_item_free(it);
        svc_engine_reject(e, r, PROTO_E_UNAVAILABLE,
                          "too many requests waiting for storage; retry");
        return false;
    }
    bool activate = o->type == BASE_OUT_ACTIVATE;
    rwd_status st = RWD_MATCHED;
    bool queued = false, full = false, answered = false;
    base_err err = BASE_OK;
    pthread_mutex_lock(&p->join_lk);
    if (activate) {
        rwd_join_check_activate(p->join, o->event_id, now, &st);
    } else {
        (void)rwd_join_check_outcome(p->join, o, now, &st); /* cannot fail */
    }
    bool logged = activate ? st == RWD_MATCHED : logged_status(st);
    if (logged) {
        o->arrived_ms = applied.arrived_ms = now;
        o->lsn = applied.lsn = svc_prt_take_lsn(p);
        queued = submit_owed(e, p, it, r, st, on_outcome_stored, &answered);
        full = !queued;
        if (queued) {
            it = NULL; /* the writer owns it (and @o) now */
        }
    } else if (st == RWD_DUPLICATE && waits) {
        svc_persist_item *bar =
            svc_persist_item_new(SVC_PERSIST_BARRIER, STO_OUTCOMES, p->cfg->name, NULL);
        queued = bar != NULL && submit_owed(e, p, bar, r, st, on_duplicate_stored, &answered);
        full = !queued;
        if (!queued) {
            svc_persist_item_free(bar);
        }
    }
    if (!full && inbox_id != NULL) {
        base_strlcpy(p->inbox_pos, inbox_id, sizeof(p->inbox_pos)); /* taken */
    }
    if (!full) {
        /*
         * Predicted above, under this lock, so this applies as predicted; for
         * statuses that change nothing it only counts them (and takes a rate
         * token where the spec says so).
         */
        err = activate ? rwd_join_activate(p->join, applied.event_id, now, &st)
                       : rwd_join_add_outcome(p->join, &applied, now, &st);
    }
    pthread_mutex_unlock(&p->join_lk);
    svc_persist_item_free(it);
    if (err != BASE_OK) {
        atomic_fetch_add(&p->c.learn_errors, 1); /* logged but not applied: out of memory */
    }
    if (waits && !queued && !answered) {
        atomic_fetch_sub(&e->waiting, 1); /* answered below, not owed */
    }
    if (st == RWD_DUPLICATE && !activate && !full) {
        atomic_fetch_add(&p->c.duplicates, 1); /* outcome ids; activations are idempotent */
    }
    if (full && answered) {
        /* the deadline sweep answered it `unavailable` while it was being queued */
    } else if (full) {
        svc_engine_reject(e, r, PROTO_E_UNAVAILABLE, "storage queue full; retry");
    } else if (queued) {
        /* Late and early outcomes are in the log of record, but not (yet) applied. */
        if (logged && !activate && (st == RWD_MATCHED || st == RWD_CORRECTED)) {
            atomic_fetch_add(&p->c.feedback, 1);
        }
    } else if (st == RWD_DUPLICATE) {
        svc_engine_reply_duplicate(r); /* nobody waits (PULL), or nothing was ever logged */
    } else if (status_error(st) == PROTO_E_NONE) {
        svc_engine_reply_status(r, st);
    } else {
        reject_status(e, p, &applied, st, now, r);
    }
    return !full;
}

/* Forwarder-thread completion of a follower's outcome: its answer is `accepted`. */
static void on_outcome_forwarded(void *arg, svc_fwd_item *it, base_err result)
{
    svc_ack *a = arg;
    svc_engine *e = a->p->eng;
    (void)it;
    bool stored = result == BASE_OK || result == BASE_ETIMEDOUT;
    atomic_fetch_add(stored ? &a->p->c.forwarded : &a->p->c.store_errors, 1);
    if (ack_claim(e, a)) {
        if (result == BASE_OK) {
            svc_engine_reply_accepted(&a->r);
        } else {
            svc_engine_reject(e, &a->r, PROTO_E_UNAVAILABLE,
                              result == BASE_ETIMEDOUT
                                  ? UNREPLICATED[0]
                                  : "the outcome could not be handed to the policy's owner; "
                                    "retry");
        }
    }
    base_free(a);
}

/*
 * A follower's outcome or activation (shared = on): the owner judges it, so it is handed
 * to the owner's inbox, stamped with its arrival here (@now), and answered `accepted` once
 * stored there (and on replicas_ack replicas). Takes @o.
 */
static void forward_outcome(svc_engine *e, svc_prt *p, base_outcome *o, int64_t now,
                            const svc_replier *r)
{
    o->arrived_ms = now;
    bool waits = r != NULL && r->send != NULL;
    svc_fwd_item *it = svc_fwd_item_new(STO_OUTCOMES, p->cfg->name, o);
    if (it == NULL) {
        base_free(o);
        svc_engine_reject(e, r, PROTO_E_INTERNAL, "out of memory");
        return;
    }
    if (waits && atomic_fetch_add(&e->waiting, 1) >= e->max_waiting) {
        atomic_fetch_sub(&e->waiting, 1);
        svc_fwd_item_free(it);
        svc_engine_reject(e, r, PROTO_E_UNAVAILABLE,
                          "too many requests waiting for storage; retry");
        return;
    }
    svc_ack *a = ack_new(e, p, r, RWD_MATCHED);
    if (a != NULL) {
        it->acked = waits;
        it->done = on_outcome_forwarded;
        it->done_arg = a;
    }
    if (a == NULL || e->forward == NULL || svc_forward_submit(e->forward, it) != BASE_OK) {
        it->done = NULL;
        bool caller_answers = ack_cancel(e, a); /* false: the deadline sweep answered it */
        svc_fwd_item_free(it);
        if (caller_answers) {
            if (waits) {
                atomic_fetch_sub(&e->waiting, 1);
            }
            svc_engine_reject(e, r, PROTO_E_UNAVAILABLE, "forwarding queue full; retry");
        }
    }
}

/* feedback and activate: the outcome-stream record of request @q, then submit_outcome(). */
void svc_op_outcome(svc_engine *e, svc_prt *p, const proto_request *q, const svc_replier *r,
                    uint32_t type)
{
    base_outcome *o = base_alloc_zero(1, sizeof(*o));
    if (o == NULL) {
        svc_engine_reject(e, r, PROTO_E_INTERNAL, "out of memory");
        return;
    }
    int64_t now = base_clock_now_ms(e->clock);
    base_strlcpy(o->policy, p->cfg->name, sizeof(o->policy));
    base_strlcpy(o->event_id, q->event_id, sizeof(o->event_id));
    o->type = type;
    o->value = 1.0;
    o->ts_ms = now;
    if (type == BASE_OUT_SIGNAL) {
        base_strlcpy(o->conversation_id, q->conversation_id, sizeof(o->conversation_id));
        base_strlcpy(o->outcome_id, q->outcome_id, sizeof(o->outcome_id));
        base_strlcpy(o->supersedes, q->supersedes, sizeof(o->supersedes));
        base_strlcpy(o->user_id, q->user_id, sizeof(o->user_id));
        base_strlcpy(o->signal, q->signal, sizeof(o->signal));
        o->value = q->value;
        o->ts_ms = q->ts_ms != 0 ? q->ts_ms : now;
    }
    if (atomic_load(&p->follower)) {
        /* What the spec alone refuses is refused here, as the owner would. */
        uint32_t sig = 0;
        bool known = type != BASE_OUT_SIGNAL;
        double v = 0.0;
        if (!known) {
            rwd_spec_find(&p->cfg->reward, o->signal, &sig, &known);
        }
        if (!known || (type == BASE_OUT_SIGNAL &&
                       rwd_spec_contribution(&p->cfg->reward, sig, o->value, &v) != BASE_OK)) {
            reject_status(e, p, o, known ? RWD_REJECT_VALUE : RWD_REJECT_SIGNAL, now, r);
            base_free(o);
            return;
        }
        forward_outcome(e, p, o, now, r);
    } else {
        (void)submit_outcome(e, p, o, now, NULL, r); /* a full queue was answered */
    }
}

svc_take svc_prt_take_outcome(svc_prt *p, base_outcome *o, const char *id)
{
    /* A copy goes in: a full queue frees it, and @o stays the caller's to take again. */
    base_outcome *copy = base_alloc(sizeof(*copy));
    if (copy == NULL) {
        return SVC_TAKE_LATER;
    }
    *copy = *o;
    base_strlcpy(copy->inbox_id, id, sizeof(copy->inbox_id));
    copy->lsn = 0;
    if (!submit_outcome(p->eng, p, copy, o->arrived_ms, id, NULL)) { /* judged at its arrival */
        return SVC_TAKE_LATER;
    }
    base_free(o);
    return SVC_TAKE_OK;
}
