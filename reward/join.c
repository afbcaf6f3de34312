#include "reward/join.h"

#include <string.h>

#include "base/alloc.h"
#include "reward/join_impl.h"

#include <stddef.h>

/*
 * The public calls. Each one classifies (join_classify.c) and then applies
 * what was decided to the indexes (join_index.c) and memories
 * (join_memory.c); the layout is described in reward/join_impl.h.
 */

const int64_t rwd_latency_bucket_ms[RWD_LATENCY_BUCKETS] = {
    0, 1000, 10000, 60000, 600000, 3600000, 21600000, 86400000,
};

static const char *const status_names[RWD_STATUS_COUNT] = {
    "matched",         "duplicate",      "corrected",     "late",
    "late_correction", "early",          "unknown_event", "rejected_signal",
    "rejected_value",  "rejected_limit", "rejected_rate",
};

const char *rwd_status_name(rwd_status s)
{
    return (unsigned)s < RWD_STATUS_COUNT ? status_names[s] : "unknown";
}

/* ---- life cycle --------------------------------------------------------- */

/* Buckets each hash table starts with (they double with what they hold). */
#define TABLE_MIN 1024

base_err rwd_join_new(const rwd_spec *spec, size_t max_pending, rwd_join **out)
{
    char why[160];
    if (max_pending == 0 || max_pending > ((size_t)1 << 26) ||
        rwd_spec_validate(spec, why, sizeof(why)) != BASE_OK) {
        return BASE_EINVAL;
    }
    rwd_join *j = base_alloc_zero(1, sizeof(*j));
    if (j == NULL) {
        return BASE_ENOMEM;
    }
    j->spec = *spec;
    if (j->spec.late_memory_ms < 0) {
        j->spec.late_memory_ms = j->spec.window_ms;
    }
    rwd_spec_version(&j->spec, j->version, sizeof(j->version));
    j->max_pending = max_pending;
    bool tables = base_itab_init(&j->ev, TABLE_MIN, offsetof(rwd_entry, next_hash),
                                 offsetof(rwd_entry, hash)) == BASE_OK;
    tables = tables && base_itab_init(&j->cv, TABLE_MIN, offsetof(rwd_conv, next_hash),
                                      offsetof(rwd_conv, hash)) == BASE_OK;
    tables = tables && base_itab_init(&j->cl, TABLE_MIN, offsetof(rwd_closed, next_hash),
                                      offsetof(rwd_closed, hash)) == BASE_OK;
    tables = tables && base_itab_init(&j->hd, TABLE_MIN, offsetof(rwd_held, next_hash),
                                      offsetof(rwd_held, hash)) == BASE_OK;
    tables = tables && base_itab_init(&j->sn, TABLE_MIN, offsetof(rwd_seen, next_hash),
                                      offsetof(rwd_seen, key)) == BASE_OK;
    base_heap_init(&j->heap, sizeof(rwd_entry *), max_pending, rwd_join_entry_before,
                   rwd_join_entry_placed);
    j->rate = j->spec.user_rate_per_s > 0.0
                  ? rwd_rate_new(j->spec.user_rate_per_s, j->spec.user_burst)
                  : NULL;
    if (!tables || base_heap_reserve(&j->heap, max_pending) != BASE_OK ||
        (j->spec.user_rate_per_s > 0.0 && j->rate == NULL)) {
        rwd_join_free(j);
        return BASE_ENOMEM;
    }
    *out = j;
    return BASE_OK;
}

void rwd_join_free(rwd_join *j)
{
    if (j == NULL) {
        return;
    }
    rwd_join_index_free(j);
    rwd_join_memory_free(j);
    base_itab_fini(&j->ev);
    base_itab_fini(&j->cv);
    base_itab_fini(&j->cl);
    base_itab_fini(&j->hd);
    base_itab_fini(&j->sn);
    base_heap_fini(&j->heap);
    rwd_rate_free(j->rate);
    base_free(j);
}

void rwd_join_contains(const rwd_join *j, const char *event_id, int64_t now_ms, bool *out_found)
{
    /* The newest entry of an id has the latest deadline: a new one waits for the last to close. */
    const rwd_entry *e = rwd_join_entry_find(j, event_id);
    *out_found = e != NULL && e->deadline > now_ms;
}

bool rwd_join_closed_recently(const rwd_join *j, const char *event_id)
{
    return rwd_join_closed_until(j, event_id, false) != INT64_MIN;
}

base_err rwd_join_peek(const rwd_join *j, const char *event_id, bool *out_found, base_joined **out)
{
    const rwd_entry *e = rwd_join_entry_find(j, event_id);
    rwd_reward r;
    *out_found = false;
    if (e == NULL) {
        return BASE_OK;
    }
    base_decision *d = base_decision_clone(e->d);
    base_joined *jo = d != NULL ? base_joined_new(d) : NULL;
    if (jo == NULL) {
        base_decision_free(d);
        return BASE_ENOMEM;
    }
    rwd_contrib_reward(&j->spec, e->c, e->n_contrib, &r);
    jo->reward = r.reward;
    jo->n_outcomes = r.n_outcomes;
    jo->defaulted = r.defaulted;
    jo->unknown = r.unknown;
    jo->credit = e->credit;
    jo->share = e->share;
    (void)base_strlcpy(jo->spec_version, j->version, sizeof(jo->spec_version));
    jo->joined_ts_ms = e->deadline;
    *out_found = true;
    *out = jo;
    return BASE_OK;
}

void rwd_join_peek_outcomes(const rwd_join *j, const char *event_id, rwd_outcome_view *out,
                            uint32_t max, uint32_t *out_n, uint32_t *out_total, bool *out_found)
{
    const rwd_entry *e = rwd_join_entry_find(j, event_id);
    uint32_t n = 0, total = 0;
    *out_found = e != NULL;
    if (e == NULL) {
        return;
    }
    for (uint32_t i = 0; i < e->n_contrib; i++) {
        const rwd_contrib *k = &e->c[i];
        if (k->conversation) {
            continue;
        }
        total++;
        if (n < max) {
            rwd_outcome_view *v = &out[n++];
            memset(v, 0, sizeof(*v));
            (void)base_strlcpy(v->signal, j->spec.signal[k->signal].name, sizeof(v->signal));
            (void)base_strlcpy(v->outcome_id, k->outcome_id, sizeof(v->outcome_id));
            v->value = k->raw;
            v->ts_ms = k->ts_ms;
            v->fate = k->active ? RWD_FATE_APPLIED : RWD_FATE_SUPERSEDED;
        }
    }
    *out_n = n;
    *out_total = total;
}

/* ---- decisions ---------------------------------------------------------- */

/*
 * Outcomes that arrived before @e (backward window) attach now, in arrival
 * order, so a held correction replaces the held outcome it supersedes.
 */
static void attach_held(rwd_join *j, rwd_entry *e, int64_t now)
{
    while (j->n_held > 0 && e->n_contrib < j->spec.max_outcomes) {
        rwd_held *h = rwd_join_held_oldest(j, e->d->event_id, now);
        if (h == NULL) {
            break;
        }
        uint32_t sig = 0;
        double val = 0.0;
        bool found = false;
        rwd_spec_find(&j->spec, h->o.signal, &sig, &found);
        if (found && rwd_spec_contribution(&j->spec, sig, h->o.value, &val) == BASE_OK) {
            bool correction =
                h->o.supersedes[0] != '\0' && rwd_join_contrib_find(e, h->o.supersedes) != NULL;
            if (rwd_join_contrib_add(j, e, &h->o, sig, val, h->seq) != BASE_OK) {
                break; /* out of memory: the rest stay held and may count as dangling */
            }
            if (correction) {
                rwd_join_contrib_deactivate(e, h->o.supersedes);
                e->c[e->n_contrib - 1].active = true;
            }
        }
        rwd_join_held_consume(h);
    }
}

base_err rwd_join_add_decision(rwd_join *j, base_decision *d, int64_t now_ms)
{
    bool open = false;
    rwd_join_contains(j, d->event_id, now_ms, &open);
    if (d->event_id[0] == '\0' || open) {
        return BASE_EINVAL;
    }
    if (j->heap.n >= j->max_pending) {
        return BASE_ELIMIT;
    }
    rwd_entry *e = base_alloc_zero(1, sizeof(*e));
    if (e == NULL) {
        return BASE_ENOMEM;
    }
    e->d = d;
    e->deferred = d->deferred != 0;
    e->deadline = d->ts_ms + j->spec.window_ms;
    e->seq = j->seq;
    base_err err = rwd_join_entry_insert(j, e);
    if (err != BASE_OK) {
        base_free(e);
        return err;
    }
    if (rwd_join_conv_link(j, e) != BASE_OK) {
        rwd_join_entry_remove(j, e);
        base_free(e);
        return BASE_ENOMEM;
    }
    j->seq++;
    j->n_deferred += e->deferred;
    attach_held(j, e, now_ms);
    return BASE_OK;
}

/* ---- outcomes ------------------------------------------------------------- */

static void count_latency(rwd_join *j, const base_decision *d, int64_t ts)
{
    if (j->replay) {
        return; /* counted by the process that received it */
    }
    int64_t dt = ts - d->ts_ms;
    int b = 0;
    while (b + 1 < RWD_LATENCY_BUCKETS && dt >= rwd_latency_bucket_ms[b + 1]) {
        b++;
    }
    j->st.latency[b]++;
}

/* Apply matched/corrected @o (contribution @val of signal @sig) to decision @e. */
static base_err apply_to_entry(rwd_join *j, rwd_entry *e, const base_outcome *o, rwd_status s,
                               uint32_t sig, double val)
{
    base_err err = rwd_join_contrib_add(j, e, o, sig, val, j->seq++);
    if (err != BASE_OK) {
        return err;
    }
    if (s == RWD_CORRECTED) {
        rwd_join_contrib_deactivate(e, o->supersedes);
        e->c[e->n_contrib - 1].active = true; /* the new one, even if ids repeat */
    }
    count_latency(j, e->d, o->ts_ms);
    return BASE_OK;
}

/*
 * Apply matched/corrected conversation-level @o to the open decisions of
 * @c, each with its share. Room for every decision's contribution is made
 * first, so nothing half-applies.
 */
static base_err apply_to_conv(rwd_join *j, rwd_conv *c, const base_outcome *o, rwd_status s,
                              uint32_t sig, double val, int64_t now)
{
    rwd_entry *list[RWD_MAX_OUTCOMES]; /* classify: c->n <= RWD_MAX_OUTCOMES */
    rwd_turn turns[RWD_MAX_OUTCOMES];
    double shares[RWD_MAX_OUTCOMES];
    uint32_t n = 0;
    for (rwd_entry *e = c->head; e != NULL; e = e->cv_next) {
        if (rwd_join_contrib_reserve(j, e) != BASE_OK) {
            return BASE_ENOMEM;
        }
    }
    for (rwd_entry *e = c->head; e != NULL; e = e->cv_next) {
        if (rwd_entry_open(e, now)) {
            list[n] = e;
            turns[n].turn = e->d->turn;
            turns[n].seq = e->seq;
            n++;
        }
    }
    rwd_credit_shares(j->spec.credit, j->spec.credit_gamma, turns, n, shares);
    uint64_t seq = j->seq++;
    for (uint32_t i = 0; i < n; i++) {
        rwd_entry *t = list[i];
        if (s == RWD_CORRECTED) {
            rwd_join_contrib_deactivate(t, o->supersedes);
        }
        if (shares[i] > 0.0) {
            (void)rwd_join_contrib_add(j, t, o, sig, val * shares[i], seq); /* reserved above */
            count_latency(j, t->d, o->ts_ms);
        }
        t->credit = j->spec.credit;
        t->share = shares[i];
    }
    return BASE_OK;
}

base_err rwd_join_add_outcome(rwd_join *j, const base_outcome *o, int64_t now_ms, rwd_status *out)
{
    rwd_verdict v;
    rwd_status s = rwd_join_classify(j, o, now_ms, &v);
    base_err err = BASE_OK;
    if (s == RWD_EARLY) {
        err = rwd_join_held_add(j, o, now_ms);
    } else if ((s == RWD_LATE || s == RWD_LATE_CORRECTION) && o->outcome_id[0] != '\0') {
        /* Logged once: its retry is a duplicate while the decision is remembered. */
        rwd_join_seen_remember_outcome(j, o, v.forget_at);
    } else if ((s == RWD_MATCHED || s == RWD_CORRECTED) && v.e != NULL) {
        err = apply_to_entry(j, v.e, o, s, v.sig, v.val);
    } else if (s == RWD_MATCHED || s == RWD_CORRECTED) {
        err = apply_to_conv(j, v.c, o, s, v.sig, v.val, now_ms);
    }
    if (err != BASE_OK) {
        return err;
    }
    if (j->rate != NULL && !j->replay && o->user_id[0] != '\0' && s != RWD_REJECT_SIGNAL &&
        s != RWD_REJECT_VALUE && s != RWD_REJECT_RATE) {
        rwd_rate_take(j->rate, o->user_id, now_ms);
    }
    if (!j->replay) {
        j->st.status[s]++; /* what this process received, as the daemon's own counters */
    }
    *out = s;
    return BASE_OK;
}

/* ---- activations ------------------------------------------------------- */

base_err rwd_join_activate(rwd_join *j, const char *event_id, int64_t now_ms, rwd_status *out)
{
    rwd_join_check_activate(j, event_id, now_ms, out);
    if (*out == RWD_MATCHED) {
        rwd_entry *e = rwd_join_entry_find(j, event_id);
        e->deferred = false;
        j->n_deferred--;
        e->deadline = now_ms + j->spec.window_ms;
        rwd_join_entry_moved(j, e);
        j->st.activations += j->replay ? 0 : 1;
    }
    return BASE_OK;
}

/* ---- expiry ---------------------------------------------------------------- */

size_t rwd_join_expire(rwd_join *j, int64_t now_ms, base_joined **out, size_t max_out)
{
    size_t n_out = 0;
    while (n_out < max_out && j->heap.n > 0 && rwd_join_entry_at(j, 0)->deadline <= now_ms) {
        rwd_entry *e = rwd_join_entry_at(j, 0);
        base_joined *jo = NULL;
        if (!e->deferred) {
            jo = base_joined_new(e->d);
            if (jo == NULL) {
                break; /* out of memory: try again next time */
            }
        }
        rwd_join_entry_remove(j, e);
        rwd_join_conv_unlink(j, e, e->deadline);
        rwd_join_closed_remember(j, e->d->event_id, false, e->deadline);
        rwd_join_seen_remember_entry(j, e);
        if (jo == NULL) {
            j->st.not_activated++;
            j->n_deferred--;
            rwd_join_entry_free(e);
            continue;
        }
        rwd_reward r;
        rwd_contrib_reward(&j->spec, e->c, e->n_contrib, &r);
        jo->unknown = r.unknown;
        jo->defaulted = r.defaulted;
        j->st.defaulted += jo->defaulted;
        j->st.unknown += jo->unknown;
        jo->reward = r.reward;
        jo->n_outcomes = r.n_outcomes;
        jo->credit = e->credit;
        jo->share = e->share;
        (void)base_strlcpy(jo->spec_version, j->version, sizeof(jo->spec_version));
        jo->joined_ts_ms = e->deadline;
        e->d = NULL; /* moved into jo */
        rwd_join_entry_free(e);
        j->st.joined++;
        out[n_out++] = jo;
    }
    rwd_join_memory_forget(j, now_ms);
    return n_out;
}

int64_t rwd_join_next_deadline(const rwd_join *j)
{
    return j->heap.n > 0 ? rwd_join_entry_at(j, 0)->deadline : INT64_MAX;
}

void rwd_join_get_stats(const rwd_join *j, rwd_join_stats *out)
{
    *out = j->st;
    out->pending = j->heap.n;
    out->deferred = j->n_deferred;
}

void rwd_join_carry_stats(rwd_join *to, const rwd_join *from)
{
    const rwd_join_stats *f = &from->st;
    rwd_join_stats *t = &to->st;
    t->joined += f->joined;
    t->defaulted += f->defaulted;
    t->unknown += f->unknown;
    t->not_activated += f->not_activated;
    for (int s = 0; s < RWD_STATUS_COUNT; s++) {
        t->status[s] += f->status[s];
    }
    t->dangling += f->dangling;
    t->activations += f->activations;
    for (int b = 0; b < RWD_LATENCY_BUCKETS; b++) {
        t->latency[b] += f->latency[b];
    }
}

/* ---- recovery ------------------------------------------------------------- */

void rwd_join_mark_closed(rwd_join *j, const char *event_id, const char *conversation_id,
                          int64_t closed_at_ms)
{
    if (event_id[0] != '\0' && rwd_join_closed_until(j, event_id, false) == INT64_MIN) {
        rwd_join_closed_remember(j, event_id, false, closed_at_ms);
    }
    if (conversation_id[0] != '\0' && rwd_join_conv_find(j, conversation_id) == NULL) {
        rwd_join_closed_remember(j, conversation_id, true, closed_at_ms);
    }
}

void rwd_join_set_replay(rwd_join *j, bool replay)
{
    j->replay = replay;
}

bool rwd_join_min_lsn(const rwd_join *j, uint64_t *out_lsn)
{
    bool any = false;
    uint64_t m = UINT64_MAX;
    for (size_t i = 0; i < j->heap.n; i++) {
        uint64_t l = rwd_join_entry_at(j, i)->d->lsn;
        m = l < m ? l : m;
        any = true;
    }
    any = rwd_join_held_min_lsn(j, &m) || any;
    if (any) {
        *out_lsn = m;
    }
    return any;
}
