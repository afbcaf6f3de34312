#include "reward/join_impl.h"

#include <string.h>

/*
 * The status of an outcome or an activation, in the order of the table in
 * reward/join.h. Nothing here changes the join: rwd_join_add_outcome() and
 * rwd_join_activate() apply what these functions decided, so a check
 * predicts the add exactly.
 */

/*
 * An event id neither open nor remembered, with a backward window: held
 * (RWD_EARLY), unless a held outcome already has its outcome_id
 * (RWD_DUPLICATE: a retry must not attach twice), the event already has
 * max_outcomes held, or the holding area is full (RWD_REJECT_LIMIT).
 */
static rwd_status classify_early(const rwd_join *j, const base_outcome *o, int64_t now)
{
    uint32_t n = 0;
    bool dup = false;
    rwd_join_held_scan(j, o, now, &n, &dup);
    if (dup) {
        return RWD_DUPLICATE;
    }
    if (n >= j->spec.max_outcomes || j->n_held >= j->max_pending) {
        return RWD_REJECT_LIMIT;
    }
    return RWD_EARLY;
}

/*
 * An event-addressed outcome that passed the signal, value and rate checks.
 * Once the decision's window closed, its outcome id is a duplicate if it is
 * on the decision (closed but not yet expired: answered as rwd_join_expire()
 * would have left it) or remembered: never late, early or unknown.
 */
static rwd_status classify_event(const rwd_join *j, const base_outcome *o, int64_t now,
                                 rwd_verdict *v)
{
    bool correction = o->supersedes[0] != '\0';
    rwd_status late = correction ? RWD_LATE_CORRECTION : RWD_LATE;
    rwd_entry *e = rwd_join_entry_find(j, o->event_id);
    if (e != NULL && rwd_entry_open(e, now)) {
        if (o->outcome_id[0] != '\0' && rwd_join_contrib_find(e, o->outcome_id) != NULL) {
            return RWD_DUPLICATE;
        }
        if (e->n_contrib >= j->spec.max_outcomes) {
            return RWD_REJECT_LIMIT;
        }
        v->e = e;
        return correction && rwd_join_contrib_find(e, o->supersedes) != NULL ? RWD_CORRECTED
                                                                             : RWD_MATCHED;
    }
    bool remembered = e != NULL && rwd_entry_remembered(j, e, now);
    if (o->outcome_id[0] != '\0' &&
        ((remembered && rwd_join_contrib_find(e, o->outcome_id) != NULL) ||
         rwd_join_seen_has(j, o, now))) {
        return RWD_DUPLICATE;
    }
    if (remembered) {
        v->forget_at = e->deadline + j->spec.late_memory_ms;
        return late;
    }
    int64_t until = e == NULL ? rwd_join_closed_until(j, o->event_id, false) : INT64_MIN;
    if (until > now) {
        v->forget_at = until;
        return late;
    }
    if (j->spec.backward_window_ms > 0) {
        return classify_early(j, o, now);
    }
    return RWD_UNKNOWN_EVENT;
}

/*
 * A conversation-level outcome that passed the signal, value and rate checks.
 * Its outcome id is a duplicate if it is on any decision of the conversation
 * that is open or remembered, or remembered for the conversation: so a retry
 * after some turns closed is not credited again to the open ones.
 */
static rwd_status classify_conv(const rwd_join *j, const base_outcome *o, int64_t now,
                                rwd_verdict *v)
{
    bool correction = o->supersedes[0] != '\0';
    rwd_status late = correction ? RWD_LATE_CORRECTION : RWD_LATE;
    rwd_conv *c = o->conversation_id[0] != '\0' ? rwd_join_conv_find(j, o->conversation_id) : NULL;
    if (c == NULL) {
        if (rwd_join_seen_has(j, o, now)) {
            return RWD_DUPLICATE;
        }
        int64_t until = rwd_join_closed_until(j, o->conversation_id, true);
        if (until > now) {
            v->forget_at = until;
            return late;
        }
        return RWD_UNKNOWN_EVENT;
    }
    if (c->n > RWD_MAX_OUTCOMES) {
        return RWD_REJECT_LIMIT; /* bounds the credit computation */
    }
    if (o->outcome_id[0] != '\0') {
        for (const rwd_entry *e = c->head; e != NULL; e = e->cv_next) {
            if (rwd_entry_counts(j, e, now) && rwd_join_contrib_find(e, o->outcome_id) != NULL) {
                return RWD_DUPLICATE;
            }
        }
        if (rwd_join_seen_has(j, o, now)) {
            return RWD_DUPLICATE;
        }
    }
    bool superseded = false;
    bool any_open = false;
    int64_t until = INT64_MIN;
    for (const rwd_entry *e = c->head; e != NULL; e = e->cv_next) {
        if (!rwd_entry_open(e, now)) {
            if (rwd_entry_remembered(j, e, now)) {
                int64_t t = e->deadline + j->spec.late_memory_ms;
                until = t > until ? t : until;
            }
            continue;
        }
        any_open = true;
        if (e->n_contrib >= j->spec.max_outcomes) {
            return RWD_REJECT_LIMIT;
        }
        superseded = superseded || (correction && rwd_join_contrib_find(e, o->supersedes) != NULL);
    }
    if (!any_open) {
        if (until > now) {
            v->forget_at = until;
            return late;
        }
        return RWD_UNKNOWN_EVENT;
    }
    v->c = c;
    return superseded ? RWD_CORRECTED : RWD_MATCHED;
}

/*
 * An outcome id remembered (its decision closed with it, or it was late once
 * already) makes a duplicate of what would otherwise be late, early or
 * unknown (and, for a conversation, matched to its open decisions).
 */
rwd_status rwd_join_classify(const rwd_join *j, const base_outcome *o, int64_t now,
                             rwd_verdict *out)
{
    bool found = false;
    memset(out, 0, sizeof(*out));
    rwd_spec_find(&j->spec, o->signal, &out->sig, &found);
    if (!found) {
        return RWD_REJECT_SIGNAL;
    }
    if (rwd_spec_contribution(&j->spec, out->sig, o->value, &out->val) != BASE_OK) {
        return RWD_REJECT_VALUE;
    }
    if (j->rate != NULL && !j->replay && o->user_id[0] != '\0' &&
        rwd_rate_tokens(j->rate, o->user_id, now) < 1.0) {
        return RWD_REJECT_RATE;
    }
    return o->event_id[0] != '\0' ? classify_event(j, o, now, out) : classify_conv(j, o, now, out);
}

base_err rwd_join_check_outcome(const rwd_join *j, const base_outcome *o, int64_t now_ms,
                                rwd_status *out)
{
    rwd_verdict v;
    *out = rwd_join_classify(j, o, now_ms, &v);
    return BASE_OK;
}

void rwd_join_check_activate(const rwd_join *j, const char *event_id, int64_t now_ms,
                             rwd_status *out)
{
    const rwd_entry *e = rwd_join_entry_find(j, event_id);
    if (e != NULL && rwd_entry_open(e, now_ms)) {
        *out = e->deferred ? RWD_MATCHED : RWD_DUPLICATE;
    } else if (e != NULL) {
        /* Its window closed: answer as after rwd_join_expire() joined or dropped it. */
        *out = rwd_entry_remembered(j, e, now_ms) ? RWD_LATE : RWD_UNKNOWN_EVENT;
    } else {
        *out = rwd_join_closed_until(j, event_id, false) > now_ms ? RWD_LATE : RWD_UNKNOWN_EVENT;
    }
}
