#include "reward/join_impl.h"

#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"

/*
 * What the join remembers beyond its pending decisions, each in a FIFO (for
 * forgetting, oldest first) and a hash table (for lookups): closed event and
 * conversation ids, the outcome ids of closed decisions and of late
 * outcomes, and outcomes held for a decision that has not arrived. Lookups
 * check the times themselves, so no answer depends on when
 * rwd_join_memory_forget() last ran; forgetting only frees memory.
 */

/* ---- closed event and conversation ids ----------------------------------- */

/* Unlink the oldest closed id (there is one) and return it. */
static rwd_closed *unlink_oldest_closed(rwd_join *j)
{
    rwd_closed *c = j->cl_head;
    j->cl_head = c->next_fifo;
    if (j->cl_head == NULL) {
        j->cl_tail = NULL;
    }
    base_itab_remove(&j->cl, c);
    j->n_closed--;
    return c;
}

void rwd_join_closed_remember(rwd_join *j, const char *id, bool is_conv, int64_t at)
{
    if (j->spec.late_memory_ms == 0) {
        return;
    }
    rwd_closed *c = NULL;
    if (j->n_closed >= 2 * j->max_pending && j->cl_head != NULL) { /* an event + its conv */
        c = unlink_oldest_closed(j);                               /* reuse its record */
    } else {
        c = base_alloc(sizeof(*c));
        if (c == NULL) {
            return; /* late outcomes for this id will count as unknown: harmless */
        }
    }
    (void)base_strlcpy(c->id, id, sizeof(c->id));
    c->conv = is_conv;
    c->forget_at = at + j->spec.late_memory_ms;
    c->hash = rwd_join_hash(id);
    base_itab_insert(&j->cl, c);
    c->next_fifo = NULL;
    if (j->cl_tail != NULL) {
        j->cl_tail->next_fifo = c;
    } else {
        j->cl_head = c;
    }
    j->cl_tail = c;
    j->n_closed++;
}

int64_t rwd_join_closed_until(const rwd_join *j, const char *id, bool is_conv)
{
    base_itab_walk w;
    for (const rwd_closed *c = base_itab_first(&j->cl, rwd_join_hash(id), &w); c != NULL;
         c = base_itab_next(&j->cl, &w)) {
        if (c->conv == is_conv && strcmp(c->id, id) == 0) {
            return c->forget_at;
        }
    }
    return INT64_MIN;
}

/* ---- outcome ids ------------------------------------------------------------ */

/*
 * The memory key of @outcome_id under @scope: an event id, or a conversation
 * id when @is_conv (another seed, so an event and a conversation with the
 * same id never share keys). 64 bits: a false duplicate needs a collision
 * among the remembered keys (about n / 2^64 per lookup).
 */
static uint64_t seen_key(const char *scope, bool is_conv, const char *outcome_id)
{
    uint64_t h = base_hash64(scope, strlen(scope), is_conv ? 0x636f6e76 : 0x6576656e);
    return base_hash64(outcome_id, strlen(outcome_id), h);
}

/* The key of @o's outcome id: under its event id, else under its conversation id. */
static uint64_t outcome_key(const base_outcome *o)
{
    return o->event_id[0] != '\0' ? seen_key(o->event_id, false, o->outcome_id)
                                  : seen_key(o->conversation_id, true, o->outcome_id);
}

static rwd_seen *find_seen(const rwd_join *j, uint64_t key)
{
    base_itab_walk w;
    return base_itab_first(&j->sn, key, &w); /* the walk matches the whole key */
}

bool rwd_join_seen_has(const rwd_join *j, const base_outcome *o, int64_t now)
{
    if (o->outcome_id[0] == '\0') {
        return false;
    }
    const rwd_seen *x = find_seen(j, outcome_key(o));
    return x != NULL && x->forget_at > now;
}

/* Unlink the oldest remembered id (there is one) and return it. */
static rwd_seen *unlink_oldest_seen(rwd_join *j)
{
    rwd_seen *x = j->sn_head;
    j->sn_head = x->next_fifo;
    if (j->sn_head == NULL) {
        j->sn_tail = NULL;
    }
    base_itab_remove(&j->sn, x);
    j->n_seen--;
    return x;
}

/*
 * Remember @key until @forget_at (or until the later of the two times, if it
 * is remembered already). When 2 * max_pending keys are remembered, the
 * oldest is forgotten. Out of memory, @key is not remembered: its retry is
 * then late (or unknown), as if the memory were full.
 */
static void remember_seen(rwd_join *j, uint64_t key, int64_t forget_at)
{
    rwd_seen *x = find_seen(j, key);
    if (x != NULL) {
        x->forget_at = forget_at > x->forget_at ? forget_at : x->forget_at;
        return;
    }
    if (j->n_seen >= 2 * j->max_pending) {
        x = unlink_oldest_seen(j); /* reuse its record */
    } else {
        x = base_alloc(sizeof(*x));
        if (x == NULL) {
            return;
        }
    }
    x->key = key;
    x->forget_at = forget_at;
    base_itab_insert(&j->sn, x);
    x->next_fifo = NULL;
    if (j->sn_tail != NULL) {
        j->sn_tail->next_fifo = x;
    } else {
        j->sn_head = x;
    }
    j->sn_tail = x;
    j->n_seen++;
}

void rwd_join_seen_remember_outcome(rwd_join *j, const base_outcome *o, int64_t forget_at)
{
    remember_seen(j, outcome_key(o), forget_at);
}

/*
 * The outcome ids of @e's contributions (superseded ones too), under its
 * event id and, if it has one, its conversation id, for as long as the
 * decision itself is remembered.
 */
void rwd_join_seen_remember_entry(rwd_join *j, const rwd_entry *e)
{
    if (j->spec.late_memory_ms == 0) {
        return;
    }
    const base_decision *d = e->d;
    int64_t forget_at = e->deadline + j->spec.late_memory_ms;
    for (uint32_t i = 0; i < e->n_contrib; i++) {
        const char *id = e->c[i].outcome_id;
        if (id[0] == '\0') {
            continue;
        }
        remember_seen(j, seen_key(d->event_id, false, id), forget_at);
        if (d->conversation_id[0] != '\0') {
            remember_seen(j, seen_key(d->conversation_id, true, id), forget_at);
        }
    }
}

/* ---- held early outcomes ---------------------------------------------------- */

base_err rwd_join_held_add(rwd_join *j, const base_outcome *o, int64_t now)
{
    rwd_held *h = base_alloc(sizeof(*h));
    if (h == NULL) {
        return BASE_ENOMEM;
    }
    h->o = *o;
    h->expire_at = now + j->spec.backward_window_ms;
    h->seq = j->seq++;
    h->hash = rwd_join_hash(o->event_id);
    base_itab_insert(&j->hd, h);
    h->next_fifo = NULL;
    if (j->hd_tail != NULL) {
        j->hd_tail->next_fifo = h;
    } else {
        j->hd_head = h;
    }
    j->hd_tail = h;
    j->n_held++;
    return BASE_OK;
}

void rwd_join_held_scan(const rwd_join *j, const base_outcome *o, int64_t now, uint32_t *out_n,
                        bool *out_dup)
{
    uint32_t n = 0;
    *out_dup = false;
    base_itab_walk w;
    for (const rwd_held *h = base_itab_first(&j->hd, rwd_join_hash(o->event_id), &w); h != NULL;
         h = base_itab_next(&j->hd, &w)) {
        if (h->expire_at < now || strcmp(h->o.event_id, o->event_id) != 0) {
            continue; /* consumed (id cleared), expired, or another event */
        }
        if (o->outcome_id[0] != '\0' && strcmp(h->o.outcome_id, o->outcome_id) == 0) {
            *out_dup = true;
        }
        n++;
    }
    *out_n = n;
}

/*
 * The chain is newest first, so this scans it whole: at most max_outcomes
 * are held per event, so attaching them all is O(max_outcomes * chain).
 */
rwd_held *rwd_join_held_oldest(const rwd_join *j, const char *event_id, int64_t now)
{
    rwd_held *h = NULL;
    base_itab_walk w;
    for (rwd_held *x = base_itab_first(&j->hd, rwd_join_hash(event_id), &w); x != NULL;
         x = base_itab_next(&j->hd, &w)) {
        if (x->expire_at >= now && strcmp(x->o.event_id, event_id) == 0 &&
            (h == NULL || x->seq < h->seq)) {
            h = x;
        }
    }
    return h;
}

void rwd_join_held_consume(rwd_held *h)
{
    h->o.event_id[0] = '\0'; /* expiry will not count it */
    h->expire_at = INT64_MIN;
}

bool rwd_join_held_min_lsn(const rwd_join *j, uint64_t *io_lsn)
{
    bool any = false;
    for (const rwd_held *h = j->hd_head; h != NULL; h = h->next_fifo) {
        if (h->o.event_id[0] != '\0') {
            *io_lsn = h->o.lsn < *io_lsn ? h->o.lsn : *io_lsn;
            any = true;
        }
    }
    return any;
}

/* ---- forgetting --------------------------------------------------------------- */

void rwd_join_memory_forget(rwd_join *j, int64_t now)
{
    while (j->cl_head != NULL && j->cl_head->forget_at <= now) {
        base_free(unlink_oldest_closed(j));
    }
    while (j->sn_head != NULL && j->sn_head->forget_at <= now) {
        base_free(unlink_oldest_seen(j));
    }
    while (j->hd_head != NULL && j->hd_head->expire_at < now) {
        rwd_held *h = j->hd_head;
        j->hd_head = h->next_fifo;
        if (j->hd_head == NULL) {
            j->hd_tail = NULL;
        }
        base_itab_remove(&j->hd, h);
        if (h->o.event_id[0] != '\0') {
            j->st.dangling++;
        }
        j->n_held--;
        base_free(h);
    }
}

void rwd_join_memory_free(rwd_join *j)
{
    for (rwd_closed *c = j->cl_head; c != NULL;) {
        rwd_closed *n = c->next_fifo;
        base_free(c);
        c = n;
    }
    for (rwd_held *h = j->hd_head; h != NULL;) {
        rwd_held *n = h->next_fifo;
        base_free(h);
        h = n;
    }
    for (rwd_seen *x = j->sn_head; x != NULL;) {
        rwd_seen *n = x->next_fifo;
        base_free(x);
        x = n;
    }
}
