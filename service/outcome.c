#include "service/engine_impl.h"

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"

typedef struct ack_ctx {
    svc_prt *p;
    svc_replier r;
    rwd_status status;
} ack_ctx;

/* Runs on the writer thread once Redis has (or refused) the outcome or activation. */
static void on_outcome_stored(void *arg, svc_persist_item *it, base_err result)
{
    ack_ctx *a = arg;
    if (a->r.send != NULL) {
        atomic_fetch_sub(&a->p->eng->waiting, 1);
    }
    if (result == BASE_OK) {
        svc_prt_set_tail(a->p, STO_OUTCOMES, it->stream_id);
        svc_engine_reply_str(&a->r, "status", rwd_status_name(a->status));
    } else {
        atomic_fetch_add(&a->p->c.store_errors, 1);
        svc_engine_reject(a->p->eng, &a->r, SVC_E_UNAVAILABLE, "the outcome could not be stored; retry");
    }
    base_free(a);
}

/* Writer-thread completion of a duplicate's barrier: the original is stored. */
static void on_duplicate_stored(void *arg, svc_persist_item *it, base_err result)
{
    ack_ctx *a = arg;
    (void)it;
    (void)result; /* a barrier always completes OK */
    atomic_fetch_sub(&a->p->eng->waiting, 1);
    svc_engine_reply_duplicate(&a->r);
    base_free(a);
}

/* Rejections by the reward engine, as wire codes. */
static svc_errcode status_error(rwd_status st)
{
    switch (st) {
    case RWD_REJECT_SIGNAL:
        return SVC_E_UNKNOWN_SIGNAL;
    case RWD_REJECT_VALUE:
        return SVC_E_OUT_OF_RANGE;
    case RWD_REJECT_LIMIT:
        return SVC_E_LIMIT;
    case RWD_REJECT_RATE:
        return SVC_E_RATE_LIMITED;
    case RWD_UNKNOWN_EVENT:
        return SVC_E_UNKNOWN_EVENT;
    default:
        return SVC_E_NONE;
    }
}

/* Statuses whose outcome is written to the outcome stream (the log of record). */
static bool logged_status(rwd_status st)
{
    return st == RWD_MATCHED || st == RWD_CORRECTED || st == RWD_EARLY || st == RWD_LATE ||
           st == RWD_LATE_CORRECTION;
}

/*
 * Under the join lock: predict the status; if the outcome is to be logged,
 * queue it (the reply follows once Redis has it) and only then apply it, so
 * a full queue leaves no trace. Everything else is counted and answered now.
 */
static void submit_outcome(svc_engine *e, svc_prt *p, base_outcome *o, const svc_replier *r)
{
    char msg[SVC_WIRE_MSG_MAX];
    ack_ctx *ack = base_alloc_zero(1, sizeof(*ack));
    svc_persist_item *it =
        ack == NULL ? NULL : svc_persist_item_new(SVC_PERSIST_APPEND, STO_OUTCOMES, p->cfg->name, o);
    if (it == NULL) {
        base_free(o);
        base_free(ack);
        svc_engine_reject(e, r, SVC_E_INTERNAL, "out of memory");
        return;
    }
    int64_t now = base_clock_now_ms(e->clock);
    base_outcome applied = *o;
    rwd_status st = RWD_MATCHED;
    svc_errcode code = SVC_E_NONE;
    bool deferred_dup = false;
    bool waits = r != NULL && r->send != NULL;
    if (waits && atomic_fetch_add(&e->waiting, 1) >= e->max_waiting) {
        /* Every REP context would be waiting for Redis: keep some for decide. */
        atomic_fetch_sub(&e->waiting, 1);
        svc_persist_item_free(it);
        base_free(ack);
        svc_engine_reject(e, r, SVC_E_UNAVAILABLE, "too many requests waiting for storage; retry");
        return;
    }
    pthread_mutex_lock(&p->join_lk);
    if (o->type == BASE_OUT_ACTIVATE) {
        rwd_join_check_activate(p->join, o->event_id, now, &st);
    } else {
        (void)rwd_join_check_outcome(p->join, o, now, &st); /* cannot fail */
    }
    bool logged = o->type == BASE_OUT_ACTIVATE ? st == RWD_MATCHED : logged_status(st);
    if (st == RWD_DUPLICATE && r != NULL && r->send != NULL) {
        /*
         * A retry of an outcome already applied: answer only once the original
         * is stored, or an acknowledged duplicate could precede (and outlive)
         * a crash that loses the original from the queue. A barrier behind it
         * in the write queue does that.
         */
        ack_ctx *dup = base_alloc_zero(1, sizeof(*dup));
        svc_persist_item *bar =
            dup == NULL ? NULL
                        : svc_persist_item_new(SVC_PERSIST_BARRIER, STO_OUTCOMES, p->cfg->name, NULL);
        if (bar != NULL) {
            dup->p = p;
            dup->r = *r;
            dup->status = st;
            bar->done = on_duplicate_stored;
            bar->done_arg = dup;
        }
        if (bar == NULL || svc_persist_submit(e->persist, bar) != BASE_OK) {
            svc_persist_item_free(bar);
            base_free(dup);
            code = SVC_E_UNAVAILABLE;
        } else {
            deferred_dup = true;
        }
    }
    if (logged) {
        o->arrived_ms = now;
        o->lsn = svc_prt_take_lsn(p);
        applied.arrived_ms = o->arrived_ms;
        applied.lsn = o->lsn;
        ack->p = p;
        ack->r = r != NULL ? *r : (svc_replier){0};
        ack->status = st;
        it->done = on_outcome_stored;
        it->done_arg = ack;
        if (svc_persist_submit(e->persist, it) != BASE_OK) {
            code = SVC_E_UNAVAILABLE;
            it->done = NULL;
        } else {
            it = NULL; /* the writer owns it (and o) now */
            ack = NULL;
        }
    }
    base_err err = BASE_OK;
    if (code == SVC_E_NONE) {
        /* Logged statuses: checked above, under this lock, so this applies as predicted. */
        if (applied.type == BASE_OUT_ACTIVATE) {
            err = rwd_join_activate(p->join, applied.event_id, now, &st);
        } else {
            err = rwd_join_add_outcome(p->join, &applied, now, &st);
        }
    }
    pthread_mutex_unlock(&p->join_lk);
    svc_persist_item_free(it);
    base_free(ack);
    if (err != BASE_OK) {
        atomic_fetch_add(&p->c.learn_errors, 1); /* logged but not applied: out of memory */
    }
    bool answered_later = code == SVC_E_NONE && (logged || deferred_dup);
    if (waits && !answered_later) {
        atomic_fetch_sub(&e->waiting, 1);
    }
    if (code == SVC_E_UNAVAILABLE) {
        svc_engine_reject(e, r, code, "storage queue full; retry");
        return;
    }
    if (logged) {
        /* Late and early outcomes are in the log of record, but not (yet) applied. */
        if (applied.type != BASE_OUT_ACTIVATE && (st == RWD_MATCHED || st == RWD_CORRECTED)) {
            atomic_fetch_add(&p->c.feedback, 1);
        }
        return; /* answered by on_outcome_stored */
    }
    code = status_error(st);
    if (applied.type == BASE_OUT_ACTIVATE && st == RWD_DUPLICATE) {
        code = SVC_E_NONE;
    }
    if (code == SVC_E_NONE) {
        if (st == RWD_DUPLICATE) {
            if (applied.type != BASE_OUT_ACTIVATE) {
                atomic_fetch_add(&p->c.duplicates, 1); /* outcome ids; activations are idempotent */
            }
            if (!deferred_dup) {
                svc_engine_reply_duplicate(r); /* PULL: nobody waits */
            }
        } else {
            svc_engine_reply_str(r, "status", rwd_status_name(st));
        }
        return;
    }
    if (st == RWD_UNKNOWN_EVENT) {
        atomic_fetch_add(&p->c.unknown_event, 1);
    }
    switch (code) {
    case SVC_E_UNKNOWN_SIGNAL:
        snprintf(msg, sizeof(msg), "signal \"%.48s\" is not in the reward spec of policy %.48s",
                 applied.signal, p->cfg->name);
        break;
    case SVC_E_OUT_OF_RANGE:
        snprintf(msg, sizeof(msg), "value %.17g is not allowed for signal \"%.48s\"",
                 applied.value, applied.signal);
        break;
    case SVC_E_LIMIT:
        snprintf(msg, sizeof(msg), "the decision already has the maximum %u outcomes",
                 p->cfg->reward.max_outcomes);
        break;
    case SVC_E_RATE_LIMITED:
        snprintf(msg, sizeof(msg), "user_id \"%.48s\" is over its outcome rate", applied.user_id);
        break;
    default:
        snprintf(msg, sizeof(msg), "no pending decision with %s \"%.64s\"",
                 applied.event_id[0] != '\0' ? "event_id" : "conversation_id",
                 applied.event_id[0] != '\0' ? applied.event_id : applied.conversation_id);
        break;
    }
    svc_engine_reject(e, r, code, msg);
}

/* feedback and activate: the outcome-stream record of request @q, then submit_outcome(). */
void svc_op_outcome(svc_engine *e, svc_prt *p, const svc_request *q, const svc_replier *r,
                       uint32_t type)
{
    base_outcome *o = base_alloc_zero(1, sizeof(*o));
    if (o == NULL) {
        svc_engine_reject(e, r, SVC_E_INTERNAL, "out of memory");
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
    submit_outcome(e, p, o, r);
}
