#include "reward/join.h"

#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"
#include "reward/credit.h"
#include "reward/rate.h"

/*
 * Layout. Pending decisions live in a hash table by event id and in a
 * binary min-heap by (deadline, arrival); decisions of one conversation are
 * also linked in a list hanging off a conversation record. Closed decisions
 * (event id only) and emptied conversations (conversation id) are remembered
 * in a FIFO + hash set for late_memory_ms, at most 2 * max_pending of them.
 * The outcome ids of closed decisions, and of late outcomes, are remembered
 * as 64-bit keys (hash of scope and outcome id) in another FIFO + hash set,
 * as long as their decision is, at most 2 * max_pending of them, so a retry
 * stays a duplicate. Outcomes that arrive before their decision are held in
 * a third FIFO + hash for backward_window_ms. The user rate cap is
 * reward/rate.h.
 */

const int64_t rwd_latency_bucket_ms[RWD_LATENCY_BUCKETS] = {
    0, 1000, 10000, 60000, 600000, 3600000, 21600000, 86400000,
};

static const char *const status_names[RWD_STATUS_COUNT] = {
    "matched", "duplicate", "corrected", "late", "late_correction", "early",
    "unknown_event", "rejected_signal", "rejected_value", "rejected_limit", "rejected_rate",
};

const char *rwd_status_name(rwd_status s)
{
    return (unsigned)s < RWD_STATUS_COUNT ? status_names[s] : "unknown";
}

typedef rwd_contrib contrib;

typedef struct conv conv;

typedef struct entry {
    base_decision *d;
    int64_t deadline;
    uint64_t seq;
    size_t heap_i;
    bool deferred;
    uint32_t n_contrib;
    uint32_t cap_contrib;
    contrib *c;
    uint32_t credit;
    double share;
    struct entry *next_hash;
    conv *cv;
    struct entry *cv_next;
    struct entry *cv_prev;
} entry;

struct conv {
    char id[BASE_ID_MAX + 1];
    entry *head;
    uint32_t n;
    conv *next_hash;
};

/*
 * A closed decision's event id (or a conversation id once its last pending
 * decision closed), remembered to classify late outcomes.
 */
typedef struct closed {
    char id[BASE_ID_MAX + 1];
    bool conv;        /* id is a conversation id */
    int64_t forget_at;
    struct closed *next_hash;
    struct closed *next_fifo;
} closed;

/*
 * An outcome id remembered after its decision closed (or of a late outcome),
 * under seen_key() of its event id or its conversation id.
 */
typedef struct seen {
    uint64_t key;
    int64_t forget_at;
    struct seen *next_hash;
    struct seen *next_fifo;
} seen;

/* An outcome held for a decision that has not arrived yet. */
typedef struct held {
    base_outcome o;
    int64_t expire_at;
    uint64_t seq;     /* arrival order, kept for first/last once attached */
    size_t bucket;    /* its chain in hd[] (the id is cleared once consumed) */
    struct held *next_hash;
    struct held *next_fifo;
} held;

struct rwd_join {
    rwd_spec spec;
    char version[BASE_NAME_MAX + 1];
    size_t max_pending;
    uint64_t seq;

    entry **ev;        /* [n_ev] chains by event id */
    size_t n_ev;
    entry **heap;      /* [max_pending] */
    size_t n_heap;
    size_t n_deferred;
    conv **cv;         /* [n_ev] chains by conversation id */

    closed **cl;       /* [n_ev] chains */
    closed *cl_head, *cl_tail;
    size_t n_closed;

    seen **sn;         /* [n_ev] chains by key */
    seen *sn_head, *sn_tail;
    size_t n_seen;

    held **hd;         /* [n_ev] chains */
    held *hd_head, *hd_tail;
    size_t n_held;

    rwd_rate *rate;    /* NULL without a rate cap */
    bool replay;       /* re-applying logged outcomes: no rate cap */

    rwd_join_stats st;
};

static size_t slot(const rwd_join *j, const char *id)
{
    return (size_t)(base_hash64(id, strlen(id), 0x6a6f696e) & (j->n_ev - 1));
}

/* ---- heap ordered by (deadline, seq) ---------------------------------- */

static bool before(const entry *a, const entry *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_set(rwd_join *j, size_t i, entry *e)
{
    j->heap[i] = e;
    e->heap_i = i;
}

static void sift_up(rwd_join *j, size_t i)
{
    entry *e = j->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(e, j->heap[p])) {
            break;
        }
        heap_set(j, i, j->heap[p]);
        i = p;
    }
    heap_set(j, i, e);
}

static void sift_down(rwd_join *j, size_t i)
{
    entry *e = j->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const entry *best = e;
        if (l < j->n_heap && before(j->heap[l], best)) {
            m = l;
            best = j->heap[l];
        }
        if (r < j->n_heap && before(j->heap[r], best)) {
            m = r;
        }
        if (m == i) {
            break;
        }
        heap_set(j, i, j->heap[m]);
        i = m;
    }
    heap_set(j, i, e);
}

static void heap_remove(rwd_join *j, size_t i)
{
    j->n_heap--;
    if (i == j->n_heap) {
        return;
    }
    heap_set(j, i, j->heap[j->n_heap]);
    sift_down(j, i);
    sift_up(j, j->heap[i]->heap_i);
}

/* ---- lookups ------------------------------------------------------------ */

static entry *find_entry(const rwd_join *j, const char *id)
{
    for (entry *e = j->ev[slot(j, id)]; e != NULL; e = e->next_hash) {
        if (strcmp(e->d->event_id, id) == 0) {
            return e;
        }
    }
    return NULL;
}

static conv *find_conv(const rwd_join *j, const char *id)
{
    for (conv *c = j->cv[slot(j, id)]; c != NULL; c = c->next_hash) {
        if (strcmp(c->id, id) == 0) {
            return c;
        }
    }
    return NULL;
}

/*
 * Until when @id (an event id, or a conversation id when @is_conv) is
 * remembered as closed; INT64_MIN if it is not. The latest record wins.
 */
static int64_t closed_until(const rwd_join *j, const char *id, bool is_conv)
{
    for (closed *c = j->cl[slot(j, id)]; c != NULL; c = c->next_hash) {
        if (c->conv == is_conv && strcmp(c->id, id) == 0) {
            return c->forget_at;
        }
    }
    return INT64_MIN;
}

/*
 * Whether @id closed less than late_memory_ms before @now. Checks forget_at
 * itself, so the answer does not depend on when rwd_join_expire() last ran.
 */
static bool is_closed(const rwd_join *j, const char *id, bool is_conv, int64_t now)
{
    return closed_until(j, id, is_conv) > now;
}

/*
 * A decision whose window has closed (deadline <= now) is closed even before
 * rwd_join_expire() emits it: outcomes and activations are judged by @now,
 * never by how promptly the caller expires. Such an entry answers as a
 * remembered closed id would.
 */
static bool entry_open(const entry *e, int64_t now)
{
    return e->deadline > now;
}

static bool entry_remembered(const rwd_join *j, const entry *e, int64_t now)
{
    return j->spec.late_memory_ms > 0 && e->deadline + j->spec.late_memory_ms > now;
}

/* Whether outcome ids on @e count as applied at @now: open, or closed and remembered. */
static bool entry_counts(const rwd_join *j, const entry *e, int64_t now)
{
    return entry_open(e, now) || entry_remembered(j, e, now);
}

static const contrib *find_contrib(const entry *e, const char *outcome_id)
{
    for (uint32_t i = 0; i < e->n_contrib; i++) {
        if (strcmp(e->c[i].outcome_id, outcome_id) == 0) {
            return &e->c[i];
        }
    }
    return NULL;
}

/* ---- life cycle --------------------------------------------------------- */

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
    j->n_ev = 16;
    while (j->n_ev < 2 * max_pending) {
        j->n_ev *= 2;
    }
    j->ev = base_alloc_zero(j->n_ev, sizeof(entry *));
    j->cv = base_alloc_zero(j->n_ev, sizeof(conv *));
    j->cl = base_alloc_zero(j->n_ev, sizeof(closed *));
    j->hd = base_alloc_zero(j->n_ev, sizeof(held *));
    j->sn = base_alloc_zero(j->n_ev, sizeof(seen *));
    j->heap = base_alloc_array(max_pending, sizeof(entry *));
    j->rate = j->spec.user_rate_per_s > 0.0
                  ? rwd_rate_new(j->spec.user_rate_per_s, j->spec.user_burst)
                  : NULL;
    if (j->ev == NULL || j->cv == NULL || j->cl == NULL || j->hd == NULL || j->sn == NULL ||
        j->heap == NULL || (j->spec.user_rate_per_s > 0.0 && j->rate == NULL)) {
        rwd_join_free(j);
        return BASE_ENOMEM;
    }
    *out = j;
    return BASE_OK;
}

static void free_entry(entry *e)
{
    if (e != NULL) {
        base_decision_free(e->d);
        base_free(e->c);
        base_free(e);
    }
}

void rwd_join_free(rwd_join *j)
{
    if (j == NULL) {
        return;
    }
    for (size_t i = 0; i < j->n_heap; i++) {
        free_entry(j->heap[i]);
    }
    for (size_t i = 0; j->cv != NULL && i < j->n_ev; i++) {
        conv *c = j->cv[i];
        while (c != NULL) {
            conv *n = c->next_hash;
            base_free(c);
            c = n;
        }
    }
    for (closed *c = j->cl_head; c != NULL;) {
        closed *n = c->next_fifo;
        base_free(c);
        c = n;
    }
    for (held *h = j->hd_head; h != NULL;) {
        held *n = h->next_fifo;
        base_free(h);
        h = n;
    }
    for (seen *x = j->sn_head; x != NULL;) {
        seen *n = x->next_fifo;
        base_free(x);
        x = n;
    }
    base_free(j->ev);
    base_free(j->cv);
    base_free(j->cl);
    base_free(j->hd);
    base_free(j->sn);
    base_free(j->heap);
    rwd_rate_free(j->rate);
    base_free(j);
}

void rwd_join_contains(const rwd_join *j, const char *event_id, bool *out_found)
{
    *out_found = find_entry(j, event_id) != NULL;
}

static void remember_closed(rwd_join *j, const char *id, bool is_conv, int64_t at);

/*
 * Unlink @e from its conversation, freeing the conversation when empty; an
 * emptied conversation is remembered as closed at @at, so a conversation-level
 * outcome arriving after its last window is late, not unknown.
 */
static void conv_unlink(rwd_join *j, entry *e, int64_t at)
{
    conv *c = e->cv;
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
        conv **pp = &j->cv[slot(j, c->id)];
        while (*pp != c) {
            pp = &(*pp)->next_hash;
        }
        *pp = c->next_hash;
        remember_closed(j, c->id, true, at);
        base_free(c);
    }
}

static base_err conv_link(rwd_join *j, entry *e)
{
    const char *id = e->d->conversation_id;
    if (id[0] == '\0') {
        return BASE_OK;
    }
    conv *c = find_conv(j, id);
    if (c == NULL) {
        c = base_alloc_zero(1, sizeof(*c));
        if (c == NULL) {
            return BASE_ENOMEM;
        }
        (void)base_strlcpy(c->id, id, sizeof(c->id));
        size_t s = slot(j, id);
        c->next_hash = j->cv[s];
        j->cv[s] = c;
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

static void unhash_entry(rwd_join *j, entry *e)
{
    entry **pp = &j->ev[slot(j, e->d->event_id)];
    while (*pp != e) {
        pp = &(*pp)->next_hash;
    }
    *pp = e->next_hash;
}

/* Remember a closed event id; if the memory is full, forget the oldest. */
static void remember_closed(rwd_join *j, const char *id, bool is_conv, int64_t at)
{
    if (j->spec.late_memory_ms == 0) {
        return;
    }
    closed *c = NULL;
    if (j->n_closed >= 2 * j->max_pending && j->cl_head != NULL) { /* an event + its conv */
        /* Reuse the oldest record. */
        c = j->cl_head;
        j->cl_head = c->next_fifo;
        if (j->cl_head == NULL) {
            j->cl_tail = NULL;
        }
        closed **pp = &j->cl[slot(j, c->id)];
        while (*pp != c) {
            pp = &(*pp)->next_hash;
        }
        *pp = c->next_hash;
        j->n_closed--;
    } else {
        c = base_alloc(sizeof(*c));
        if (c == NULL) {
            return; /* late outcomes for this id will count as unknown: harmless */
        }
    }
    (void)base_strlcpy(c->id, id, sizeof(c->id));
    c->conv = is_conv;
    c->forget_at = at + j->spec.late_memory_ms;
    size_t s = slot(j, id);
    c->next_hash = j->cl[s];
    j->cl[s] = c;
    c->next_fifo = NULL;
    if (j->cl_tail != NULL) {
        j->cl_tail->next_fifo = c;
    } else {
        j->cl_head = c;
    }
    j->cl_tail = c;
    j->n_closed++;
}

/* ---- outcome-id memory --------------------------------------------------- */

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

static seen *find_seen(const rwd_join *j, uint64_t key)
{
    for (seen *x = j->sn[key & (j->n_ev - 1)]; x != NULL; x = x->next_hash) {
        if (x->key == key) {
            return x;
        }
    }
    return NULL;
}

/*
 * Whether @o has an outcome id remembered at @now. Checks forget_at itself,
 * as is_closed() does.
 */
static bool seen_has(const rwd_join *j, const base_outcome *o, int64_t now)
{
    if (o->outcome_id[0] == '\0') {
        return false;
    }
    const seen *x = find_seen(j, outcome_key(o));
    return x != NULL && x->forget_at > now;
}

/* Unlink the oldest remembered id (there is one) and return it. */
static seen *unlink_oldest_seen(rwd_join *j)
{
    seen *x = j->sn_head;
    j->sn_head = x->next_fifo;
    if (j->sn_head == NULL) {
        j->sn_tail = NULL;
    }
    seen **pp = &j->sn[x->key & (j->n_ev - 1)];
    while (*pp != x) {
        pp = &(*pp)->next_hash;
    }
    *pp = x->next_hash;
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
    seen *x = find_seen(j, key);
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
    size_t s = (size_t)(key & (j->n_ev - 1));
    x->next_hash = j->sn[s];
    j->sn[s] = x;
    x->next_fifo = NULL;
    if (j->sn_tail != NULL) {
        j->sn_tail->next_fifo = x;
    } else {
        j->sn_head = x;
    }
    j->sn_tail = x;
    j->n_seen++;
}

/*
 * @e is closing: remember the outcome ids of its contributions (superseded
 * ones too) under its event id and, if it has one, its conversation id, for
 * as long as the decision itself is remembered.
 */
static void remember_contribs(rwd_join *j, const entry *e)
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

/* ---- classification ----------------------------------------------------- */

/*
 * The open decisions of @c (at least one) into list[0..*out_n), and their
 * credit shares under the spec's rule: list[i] gets shares[i].
 */
static void compute_shares(const rwd_join *j, conv *c, int64_t now, double *shares,
                           entry **list, uint32_t *out_n)
{
    rwd_turn turns[RWD_MAX_OUTCOMES]; /* classify: c->n <= RWD_MAX_OUTCOMES */
    uint32_t n = 0;
    for (entry *e = c->head; e != NULL; e = e->cv_next) {
        if (!entry_open(e, now)) {
            continue;
        }
        list[n] = e;
        turns[n].turn = e->d->turn;
        turns[n].seq = e->seq;
        n++;
    }
    rwd_credit_shares(j->spec.credit, j->spec.credit_gamma, turns, n, shares);
    *out_n = n;
}

/*
 * The status of an outcome for an event that is neither open nor remembered,
 * with a backward window: held (RWD_EARLY), unless a held outcome already has
 * its outcome_id (RWD_DUPLICATE: a retry must not attach twice), the event
 * already has max_outcomes held, or the holding area is full (RWD_REJECT_LIMIT).
 */
static rwd_status classify_early(const rwd_join *j, const base_outcome *o, int64_t now)
{
    uint32_t n = 0;
    for (const held *h = j->hd[slot(j, o->event_id)]; h != NULL; h = h->next_hash) {
        if (h->expire_at < now || strcmp(h->o.event_id, o->event_id) != 0) {
            continue; /* consumed (id cleared), expired, or another event */
        }
        if (o->outcome_id[0] != '\0' && strcmp(h->o.outcome_id, o->outcome_id) == 0) {
            return RWD_DUPLICATE;
        }
        n++;
    }
    if (n >= j->spec.max_outcomes || j->n_held >= j->max_pending) {
        return RWD_REJECT_LIMIT;
    }
    return RWD_EARLY;
}

/* What classify() found, beyond the status. */
typedef struct verdict {
    uint32_t sig;      /* the signal's index in the spec */
    double val;        /* its contribution */
    entry *e;          /* RWD_MATCHED/CORRECTED for an event: its decision */
    conv *c;           /* RWD_MATCHED/CORRECTED for a conversation */
    int64_t forget_at; /* RWD_LATE/LATE_CORRECTION: when the closed decision is forgotten */
} verdict;

/*
 * An event-addressed outcome that passed the signal, value and rate checks.
 * Once the decision's window closed, its outcome id is a duplicate if it is
 * on the decision (closed but not yet expired: answered as rwd_join_expire()
 * would have left it) or remembered: never late, early or unknown.
 */
static rwd_status classify_event(const rwd_join *j, const base_outcome *o, int64_t now,
                                 verdict *v)
{
    bool correction = o->supersedes[0] != '\0';
    rwd_status late = correction ? RWD_LATE_CORRECTION : RWD_LATE;
    entry *e = find_entry(j, o->event_id);
    if (e != NULL && entry_open(e, now)) {
        if (o->outcome_id[0] != '\0' && find_contrib(e, o->outcome_id) != NULL) {
            return RWD_DUPLICATE;
        }
        if (e->n_contrib >= j->spec.max_outcomes) {
            return RWD_REJECT_LIMIT;
        }
        v->e = e;
        return correction && find_contrib(e, o->supersedes) != NULL ? RWD_CORRECTED
                                                                     : RWD_MATCHED;
    }
    bool remembered = e != NULL && entry_remembered(j, e, now);
    if (o->outcome_id[0] != '\0' &&
        ((remembered && find_contrib(e, o->outcome_id) != NULL) || seen_has(j, o, now))) {
        return RWD_DUPLICATE;
    }
    if (remembered) {
        v->forget_at = e->deadline + j->spec.late_memory_ms;
        return late;
    }
    int64_t until = e == NULL ? closed_until(j, o->event_id, false) : INT64_MIN;
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
                                verdict *v)
{
    bool correction = o->supersedes[0] != '\0';
    rwd_status late = correction ? RWD_LATE_CORRECTION : RWD_LATE;
    conv *c = o->conversation_id[0] != '\0' ? find_conv(j, o->conversation_id) : NULL;
    if (c == NULL) {
        if (seen_has(j, o, now)) {
            return RWD_DUPLICATE;
        }
        int64_t until = closed_until(j, o->conversation_id, true);
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
        for (const entry *e = c->head; e != NULL; e = e->cv_next) {
            if (entry_counts(j, e, now) && find_contrib(e, o->outcome_id) != NULL) {
                return RWD_DUPLICATE;
            }
        }
        if (seen_has(j, o, now)) {
            return RWD_DUPLICATE;
        }
    }
    bool superseded = false;
    bool any_open = false;
    int64_t until = INT64_MIN;
    for (entry *e = c->head; e != NULL; e = e->cv_next) {
        if (!entry_open(e, now)) {
            if (entry_remembered(j, e, now)) {
                int64_t t = e->deadline + j->spec.late_memory_ms;
                until = t > until ? t : until;
            }
            continue;
        }
        any_open = true;
        if (e->n_contrib >= j->spec.max_outcomes) {
            return RWD_REJECT_LIMIT;
        }
        superseded = superseded || (correction && find_contrib(e, o->supersedes) != NULL);
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
 * The status of @o, without changing anything; *v says where it applies.
 * An outcome id remembered (its decision closed with it, or it was late once
 * already) makes a duplicate of what would otherwise be late, early or
 * unknown (and, for a conversation, matched to its open decisions).
 */
static rwd_status classify(const rwd_join *j, const base_outcome *o, int64_t now, verdict *v)
{
    bool found = false;
    memset(v, 0, sizeof(*v));
    rwd_spec_find(&j->spec, o->signal, &v->sig, &found);
    if (!found) {
        return RWD_REJECT_SIGNAL;
    }
    if (rwd_spec_contribution(&j->spec, v->sig, o->value, &v->val) != BASE_OK) {
        return RWD_REJECT_VALUE;
    }
    if (j->rate != NULL && !j->replay && o->user_id[0] != '\0' &&
        rwd_rate_tokens(j->rate, o->user_id, now) < 1.0) {
        return RWD_REJECT_RATE;
    }
    return o->event_id[0] != '\0' ? classify_event(j, o, now, v) : classify_conv(j, o, now, v);
}

base_err rwd_join_check_outcome(const rwd_join *j, const base_outcome *o, int64_t now_ms,
                                rwd_status *out)
{
    verdict v;
    *out = classify(j, o, now_ms, &v);
    return BASE_OK;
}

/* Record @o's contribution @value on @e; @seq is its arrival order. */
static base_err add_contrib(rwd_join *j, entry *e, const base_outcome *o, uint32_t sig,
                            double value, uint64_t seq)
{
    if (e->n_contrib == e->cap_contrib) {
        uint32_t cap = e->cap_contrib == 0 ? 2 : e->cap_contrib * 2;
        cap = cap > j->spec.max_outcomes ? j->spec.max_outcomes : cap;
        contrib *nc = base_realloc_array(e->c, cap, sizeof(contrib));
        if (nc == NULL) {
            return BASE_ENOMEM;
        }
        e->c = nc;
        e->cap_contrib = cap;
    }
    contrib *k = &e->c[e->n_contrib++];
    memcpy(k->outcome_id, o->outcome_id, sizeof(k->outcome_id));
    k->signal = sig;
    k->active = true;
    k->value = value;
    k->raw = o->value;
    k->ts_ms = o->ts_ms;
    k->seq = seq;
    return BASE_OK;
}

static void deactivate(entry *e, const char *outcome_id)
{
    for (uint32_t i = 0; i < e->n_contrib; i++) {
        if (strcmp(e->c[i].outcome_id, outcome_id) == 0) {
            e->c[i].active = false;
        }
    }
}

static void count_latency(rwd_join *j, const base_decision *d, int64_t ts)
{
    int64_t dt = ts - d->ts_ms;
    int b = 0;
    while (b + 1 < RWD_LATENCY_BUCKETS && dt >= rwd_latency_bucket_ms[b + 1]) {
        b++;
    }
    j->st.latency[b]++;
}

/* Make room for every conversation decision's contribution first, so nothing half-applies. */
static base_err reserve_conv(rwd_join *j, conv *c)
{
    for (entry *e = c->head; e != NULL; e = e->cv_next) {
        if (e->n_contrib == e->cap_contrib) {
            uint32_t cap = e->cap_contrib == 0 ? 2 : e->cap_contrib * 2;
            cap = cap > j->spec.max_outcomes ? j->spec.max_outcomes : cap;
            contrib *nc = base_realloc_array(e->c, cap, sizeof(contrib));
            if (nc == NULL) {
                return BASE_ENOMEM;
            }
            e->c = nc;
            e->cap_contrib = cap;
        }
    }
    return BASE_OK;
}

static base_err hold(rwd_join *j, const base_outcome *o, int64_t now)
{
    held *h = base_alloc(sizeof(*h));
    if (h == NULL) {
        return BASE_ENOMEM;
    }
    h->o = *o;
    h->expire_at = now + j->spec.backward_window_ms;
    h->seq = j->seq++;
    size_t s = slot(j, o->event_id);
    h->bucket = s;
    h->next_hash = j->hd[s];
    j->hd[s] = h;
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

base_err rwd_join_add_outcome(rwd_join *j, const base_outcome *o, int64_t now_ms,
                              rwd_status *out)
{
    verdict v;
    rwd_status s = classify(j, o, now_ms, &v);
    entry *e = v.e;
    conv *c = v.c;
    uint32_t sig = v.sig;
    double val = v.val;
    base_err err = BASE_OK;
    if (s == RWD_EARLY) {
        err = hold(j, o, now_ms);
    } else if ((s == RWD_LATE || s == RWD_LATE_CORRECTION) && o->outcome_id[0] != '\0') {
        /* Logged once: its retry is a duplicate while the decision is remembered. */
        remember_seen(j, outcome_key(o), v.forget_at);
    } else if ((s == RWD_MATCHED || s == RWD_CORRECTED) && e != NULL) {
        err = add_contrib(j, e, o, sig, val, j->seq++);
        if (err == BASE_OK && s == RWD_CORRECTED) {
            deactivate(e, o->supersedes);
            e->c[e->n_contrib - 1].active = true; /* the new one, even if ids repeat */
        }
        if (err == BASE_OK) {
            count_latency(j, e->d, o->ts_ms);
        }
    } else if (s == RWD_MATCHED || s == RWD_CORRECTED) {
        entry *list[RWD_MAX_OUTCOMES];
        double shares[RWD_MAX_OUTCOMES];
        uint32_t n = 0;
        err = reserve_conv(j, c);
        if (err == BASE_OK) {
            compute_shares(j, c, now_ms, shares, list, &n);
            uint64_t seq = j->seq++;
            for (uint32_t i = 0; i < n; i++) {
                entry *t = list[i];
                if (s == RWD_CORRECTED) {
                    deactivate(t, o->supersedes);
                }
                if (shares[i] > 0.0) {
                    (void)add_contrib(j, t, o, sig, val * shares[i], seq); /* reserved above */
                    count_latency(j, t->d, o->ts_ms);
                }
                t->credit = j->spec.credit;
                t->share = shares[i];
            }
        }
    }
    if (err != BASE_OK) {
        return err;
    }
    if (j->rate != NULL && !j->replay && o->user_id[0] != '\0' && s != RWD_REJECT_SIGNAL &&
        s != RWD_REJECT_VALUE && s != RWD_REJECT_RATE) {
        rwd_rate_take(j->rate, o->user_id, now_ms);
    }
    j->st.status[s]++;
    *out = s;
    return BASE_OK;
}

/* ---- decisions ---------------------------------------------------------- */

base_err rwd_join_add_decision(rwd_join *j, base_decision *d, int64_t now_ms)
{
    if (d->event_id[0] == '\0' || find_entry(j, d->event_id) != NULL) {
        return BASE_EINVAL;
    }
    if (j->n_heap >= j->max_pending) {
        return BASE_ELIMIT;
    }
    entry *e = base_alloc_zero(1, sizeof(*e));
    if (e == NULL) {
        return BASE_ENOMEM;
    }
    e->d = d;
    e->deferred = d->deferred != 0;
    e->deadline = d->ts_ms + j->spec.window_ms;
    if (conv_link(j, e) != BASE_OK) {
        base_free(e);
        return BASE_ENOMEM;
    }
    e->seq = j->seq++;
    j->n_deferred += e->deferred;
    size_t s = slot(j, d->event_id);
    e->next_hash = j->ev[s];
    j->ev[s] = e;
    heap_set(j, j->n_heap++, e);
    sift_up(j, e->heap_i);

    /*
     * Outcomes that arrived first (backward window) attach now, in arrival
     * order, so a held correction replaces the held outcome it supersedes.
     * The chain is newest first, so take the oldest unconsumed one each time:
     * at most max_outcomes are held per event (classify_early), so this is
     * O(max_outcomes * chain).
     */
    while (j->n_held > 0 && e->n_contrib < j->spec.max_outcomes) {
        held *h = NULL;
        for (held *x = j->hd[slot(j, d->event_id)]; x != NULL; x = x->next_hash) {
            if (x->expire_at >= now_ms && strcmp(x->o.event_id, d->event_id) == 0 &&
                (h == NULL || x->seq < h->seq)) {
                h = x;
            }
        }
        if (h == NULL) {
            break;
        }
        uint32_t sig = 0;
        double val = 0.0;
        bool found = false;
        rwd_spec_find(&j->spec, h->o.signal, &sig, &found);
        if (found && rwd_spec_contribution(&j->spec, sig, h->o.value, &val) == BASE_OK) {
            bool correction =
                h->o.supersedes[0] != '\0' && find_contrib(e, h->o.supersedes) != NULL;
            if (add_contrib(j, e, &h->o, sig, val, h->seq) != BASE_OK) {
                break; /* out of memory: the rest stay held and may count as dangling */
            }
            if (correction) {
                deactivate(e, h->o.supersedes);
                e->c[e->n_contrib - 1].active = true;
            }
        }
        h->o.event_id[0] = '\0'; /* consumed: expiry will not count it */
        h->expire_at = INT64_MIN;
    }
    return BASE_OK;
}

void rwd_join_check_activate(const rwd_join *j, const char *event_id, int64_t now_ms,
                             rwd_status *out)
{
    const entry *e = find_entry(j, event_id);
    if (e != NULL && entry_open(e, now_ms)) {
        *out = e->deferred ? RWD_MATCHED : RWD_DUPLICATE;
    } else if (e != NULL) {
        /* Its window closed: answer as after rwd_join_expire() joined or dropped it. */
        *out = entry_remembered(j, e, now_ms) ? RWD_LATE : RWD_UNKNOWN_EVENT;
    } else {
        *out = is_closed(j, event_id, false, now_ms) ? RWD_LATE : RWD_UNKNOWN_EVENT;
    }
}

base_err rwd_join_activate(rwd_join *j, const char *event_id, int64_t now_ms, rwd_status *out)
{
    rwd_join_check_activate(j, event_id, now_ms, out);
    if (*out == RWD_MATCHED) {
        entry *e = find_entry(j, event_id);
        e->deferred = false;
        j->n_deferred--;
        e->deadline = now_ms + j->spec.window_ms;
        sift_down(j, e->heap_i);
        sift_up(j, e->heap_i);
        j->st.activations++;
    }
    return BASE_OK;
}

/* ---- expiry --------------------------------------------------------------- */

static void forget_old(rwd_join *j, int64_t now)
{
    while (j->cl_head != NULL && j->cl_head->forget_at <= now) {
        closed *c = j->cl_head;
        j->cl_head = c->next_fifo;
        if (j->cl_head == NULL) {
            j->cl_tail = NULL;
        }
        closed **pp = &j->cl[slot(j, c->id)];
        while (*pp != c) {
            pp = &(*pp)->next_hash;
        }
        *pp = c->next_hash;
        j->n_closed--;
        base_free(c);
    }
    while (j->sn_head != NULL && j->sn_head->forget_at <= now) {
        base_free(unlink_oldest_seen(j));
    }
    while (j->hd_head != NULL && j->hd_head->expire_at < now) {
        held *h = j->hd_head;
        j->hd_head = h->next_fifo;
        if (j->hd_head == NULL) {
            j->hd_tail = NULL;
        }
        held **pp = &j->hd[h->bucket];
        while (*pp != h) {
            pp = &(*pp)->next_hash;
        }
        *pp = h->next_hash;
        if (h->o.event_id[0] != '\0') {
            j->st.dangling++;
        }
        j->n_held--;
        base_free(h);
    }
}

size_t rwd_join_expire(rwd_join *j, int64_t now_ms, base_joined **out, size_t max_out)
{
    size_t n_out = 0;
    while (n_out < max_out && j->n_heap > 0 && j->heap[0]->deadline <= now_ms) {
        entry *e = j->heap[0];
        base_joined *jo = NULL;
        if (!e->deferred) {
            jo = base_joined_new(e->d);
            if (jo == NULL) {
                break; /* out of memory: try again next time */
            }
        }
        heap_remove(j, 0);
        unhash_entry(j, e);
        conv_unlink(j, e, e->deadline);
        remember_closed(j, e->d->event_id, false, e->deadline);
        remember_contribs(j, e);
        if (jo == NULL) {
            j->st.not_activated++;
            j->n_deferred--;
            free_entry(e);
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
        free_entry(e);
        j->st.joined++;
        out[n_out++] = jo;
    }
    forget_old(j, now_ms);
    return n_out;
}

int64_t rwd_join_next_deadline(const rwd_join *j)
{
    return j->n_heap > 0 ? j->heap[0]->deadline : INT64_MAX;
}

void rwd_join_get_stats(const rwd_join *j, rwd_join_stats *out)
{
    *out = j->st;
    out->pending = j->n_heap;
    out->deferred = j->n_deferred;
}

void rwd_join_mark_closed(rwd_join *j, const char *event_id, const char *conversation_id,
                          int64_t closed_at_ms)
{
    if (event_id[0] != '\0' && !is_closed(j, event_id, false, INT64_MIN)) {
        remember_closed(j, event_id, false, closed_at_ms);
    }
    if (conversation_id[0] != '\0' && find_conv(j, conversation_id) == NULL) {
        remember_closed(j, conversation_id, true, closed_at_ms);
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
    for (size_t i = 0; i < j->n_heap; i++) {
        uint64_t l = j->heap[i]->d->lsn;
        m = l < m ? l : m;
        any = true;
    }
    for (const held *h = j->hd_head; h != NULL; h = h->next_fifo) {
        if (h->o.event_id[0] != '\0') {
            m = h->o.lsn < m ? h->o.lsn : m;
            any = true;
        }
    }
    if (any) {
        *out_lsn = m;
    }
    return any;
}
