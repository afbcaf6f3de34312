#include "reward/join_impl.h"

#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"

/*
 * Pending decisions: the table by event id, the binary min-heap by
 * (deadline, arrival), the conversations, and each decision's
 * contributions.
 */

uint64_t rwd_join_hash(const char *id)
{
    return base_hash64(id, strlen(id), 0x6a6f696e);
}

/* ---- heap ordered by (deadline, seq) ---------------------------------- */

bool rwd_join_entry_before(const void *a, const void *b)
{
    const rwd_entry *x = *(rwd_entry *const *)a, *y = *(rwd_entry *const *)b;
    return x->deadline < y->deadline || (x->deadline == y->deadline && x->seq < y->seq);
}

void rwd_join_entry_placed(void *elem, size_t i)
{
    (*(rwd_entry **)elem)->heap_i = i;
}

rwd_entry *rwd_join_entry_at(const rwd_join *j, size_t i)
{
    return *(rwd_entry **)base_heap_at(&j->heap, i);
}

/* ---- decisions ------------------------------------------------------------ */

rwd_entry *rwd_join_entry_find(const rwd_join *j, const char *event_id)
{
    base_itab_walk w;
    for (rwd_entry *e = base_itab_first(&j->ev, rwd_join_hash(event_id), &w); e != NULL;
         e = base_itab_next(&j->ev, &w)) {
        if (strcmp(e->d->event_id, event_id) == 0) {
            return e;
        }
    }
    return NULL;
}

base_err rwd_join_entry_insert(rwd_join *j, rwd_entry *e)
{
    base_err err = base_heap_push(&j->heap, &e);
    if (err != BASE_OK) {
        return err;
    }
    e->hash = rwd_join_hash(e->d->event_id);
    base_itab_insert(&j->ev, e);
    return BASE_OK;
}

void rwd_join_entry_remove(rwd_join *j, rwd_entry *e)
{
    base_heap_remove(&j->heap, e->heap_i, NULL);
    base_itab_remove(&j->ev, e);
}

void rwd_join_entry_moved(rwd_join *j, rwd_entry *e)
{
    base_heap_fix(&j->heap, e->heap_i);
}

void rwd_join_entry_free(rwd_entry *e)
{
    if (e != NULL) {
        base_decision_free(e->d);
        base_free(e->c);
        base_free(e);
    }
}

/* ---- conversations ---------------------------------------------------------- */

rwd_conv *rwd_join_conv_find(const rwd_join *j, const char *id)
{
    base_itab_walk w;
    for (rwd_conv *c = base_itab_first(&j->cv, rwd_join_hash(id), &w); c != NULL;
         c = base_itab_next(&j->cv, &w)) {
        if (strcmp(c->id, id) == 0) {
            return c;
        }
    }
    return NULL;
}

base_err rwd_join_conv_link(rwd_join *j, rwd_entry *e)
{
    const char *id = e->d->conversation_id;
    if (id[0] == '\0') {
        return BASE_OK;
    }
    rwd_conv *c = rwd_join_conv_find(j, id);
    if (c == NULL) {
        c = base_alloc_zero(1, sizeof(*c));
        if (c == NULL) {
            return BASE_ENOMEM;
        }
        (void)base_strlcpy(c->id, id, sizeof(c->id));
        c->hash = rwd_join_hash(id);
        base_itab_insert(&j->cv, c);
    }
    e->cv = c;
    e->cv_prev = NULL;
    e->cv_next = c->head;
    if (c->head != NULL) {
        c->head->cv_prev = e;
    }
    c->head = e;
    c->n++;
    return BASE_OK;
}

/*
 * An emptied conversation is remembered as closed at @at, so a
 * conversation-level outcome arriving after its last window is late, not
 * unknown.
 */
void rwd_join_conv_unlink(rwd_join *j, rwd_entry *e, int64_t at)
{
    rwd_conv *c = e->cv;
    if (c == NULL) {
        return;
    }
    if (e->cv_prev != NULL) {
        e->cv_prev->cv_next = e->cv_next;
    } else {
        c->head = e->cv_next;
    }
    if (e->cv_next != NULL) {
        e->cv_next->cv_prev = e->cv_prev;
    }
    e->cv = NULL;
    if (--c->n == 0) {
        base_itab_remove(&j->cv, c);
        rwd_join_closed_remember(j, c->id, true, at);
        base_free(c);
    }
}

/* ---- contributions ---------------------------------------------------------- */

const rwd_contrib *rwd_join_contrib_find(const rwd_entry *e, const char *outcome_id)
{
    for (uint32_t i = 0; i < e->n_contrib; i++) {
        if (strcmp(e->c[i].outcome_id, outcome_id) == 0) {
            return &e->c[i];
        }
    }
    return NULL;
}

/* Grows by doubling, up to max_outcomes (the classification keeps n_contrib below it). */
base_err rwd_join_contrib_reserve(rwd_join *j, rwd_entry *e)
{
    if (e->n_contrib == e->cap_contrib) {
        uint32_t cap = e->cap_contrib == 0 ? 2 : e->cap_contrib * 2;
        cap = cap > j->spec.max_outcomes ? j->spec.max_outcomes : cap;
        rwd_contrib *nc = base_realloc_array(e->c, cap, sizeof(rwd_contrib));
        if (nc == NULL) {
            return BASE_ENOMEM;
        }
        e->c = nc;
        e->cap_contrib = cap;
    }
    return BASE_OK;
}

base_err rwd_join_contrib_add(rwd_join *j, rwd_entry *e, const base_outcome *o, uint32_t sig,
                              double value, uint64_t seq)
{
    if (rwd_join_contrib_reserve(j, e) != BASE_OK) {
        return BASE_ENOMEM;
    }
    rwd_contrib *k = &e->c[e->n_contrib++];
    memcpy(k->outcome_id, o->outcome_id, sizeof(k->outcome_id));
    k->signal = sig;
    k->active = true;
    k->conversation = o->event_id[0] == '\0';
    k->value = value;
    k->raw = o->value;
    k->ts_ms = o->ts_ms;
    k->seq = seq;
    return BASE_OK;
}

void rwd_join_contrib_deactivate(rwd_entry *e, const char *outcome_id)
{
    for (uint32_t i = 0; i < e->n_contrib; i++) {
        if (strcmp(e->c[i].outcome_id, outcome_id) == 0) {
            e->c[i].active = false;
        }
    }
}

void rwd_join_index_free(rwd_join *j)
{
    for (size_t i = 0; i < j->heap.n; i++) {
        rwd_join_entry_free(rwd_join_entry_at(j, i));
    }
    base_itab_drain(&j->cv, base_free);
}
