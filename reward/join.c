#include "reward/join.h"

#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"

/*
 * Layout: a chained hash table event_id -> pending, with a power-of-two
 * bucket count >= max_pending (load factor <= 1), and a singly linked FIFO in
 * arrival order for expiry. A pending entry leaves only through expiry, and
 * always from the FIFO head, so neither list needs back links.
 *
 * Each entry is allocated with room for max_outcomes ids (<= RWD_MAX_OUTCOMES),
 * so applying an outcome never allocates: a BASE_OK from
 * rwd_join_check_outcome() guarantees the add that follows succeeds, which
 * the service relies on (it queues the outcome for storage in between).
 *
 * Expiry walks the FIFO from its head and stops at the first open window. A
 * decision that arrives with a ts_ms older than its predecessor (header rule
 * 4 broken) is therefore emitted late, never lost.
 */

#define JOIN_HASH_SEED 0x726c66656564ULL /* "rlfeed"; fixed: bucket order is never observable */

typedef char outcome_id[BASE_ID_MAX + 1];

typedef struct pending {
    base_decision *d;     /* owned */
    struct pending *next_bucket;
    struct pending *next_fifo;
    double sum;           /* sum of weight * value over applied outcomes, in arrival order */
    uint32_t n_outcomes;  /* outcomes applied, <= spec.max_outcomes */
    uint32_t n_ids;       /* non-empty outcome ids applied, <= n_outcomes */
    outcome_id ids[];     /* [spec.max_outcomes], allocated with the entry */
} pending;

struct rwd_join {
    rwd_spec spec;
    size_t max_pending;
    size_t n_buckets; /* power of two */
    pending **bucket; /* [n_buckets] */
    pending *fifo_head; /* oldest */
    pending *fifo_tail;
    rwd_join_stats stats;
};

void rwd_spec_default(rwd_spec *spec)
{
    memset(spec, 0, sizeof(*spec));
    spec->n_signals = 0;
    spec->clip_min = -1.0;
    spec->clip_max = 1.0;
    spec->default_reward = 0.0;
    spec->window_ms = 10 * 60 * 1000;
    spec->max_outcomes = 16;
}

/* True if @s holds a NUL within its @size bytes and is not empty. */
static bool name_ok(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL && s[0] != '\0';
}

void rwd_spec_find(const rwd_spec *spec, const char *name, uint32_t *out_index, bool *out_found)
{
    bool found = false;
    uint32_t n = spec->n_signals < RWD_MAX_SIGNALS ? spec->n_signals : RWD_MAX_SIGNALS;
    for (uint32_t i = 0; i < n && !found; i++) {
        if (strncmp(spec->signal[i].name, name, sizeof(spec->signal[i].name)) == 0) {
            *out_index = i;
            found = true;
        }
    }
    *out_found = found;
}

static bool spec_valid(const rwd_spec *spec)
{
    bool ok = spec->n_signals <= RWD_MAX_SIGNALS && spec->window_ms > 0 &&
              spec->max_outcomes >= 1 && spec->max_outcomes <= RWD_MAX_OUTCOMES;
    ok = ok && isfinite(spec->clip_min) && isfinite(spec->clip_max) &&
         spec->clip_min <= spec->clip_max && isfinite(spec->default_reward);
    for (uint32_t i = 0; ok && i < spec->n_signals; i++) {
        const rwd_signal *s = &spec->signal[i];
        ok = name_ok(s->name, sizeof(s->name)) && isfinite(s->weight);
        for (uint32_t k = 0; ok && k < i; k++) {
            ok = strcmp(spec->signal[k].name, s->name) != 0;
        }
    }
    return ok;
}

base_err rwd_join_new(const rwd_spec *spec, size_t max_pending, rwd_join **out)
{
    base_err e = BASE_OK;
    rwd_join *j = NULL;
    if (!spec_valid(spec) || max_pending == 0 || max_pending > SIZE_MAX / 4) {
        e = BASE_EINVAL;
        goto fail;
    }
    j = base_alloc_zero(1, sizeof(*j));
    if (j == NULL) {
        e = BASE_ENOMEM;
        goto fail;
    }
    j->spec = *spec;
    j->max_pending = max_pending;
    j->n_buckets = 1;
    while (j->n_buckets < max_pending) {
        j->n_buckets <<= 1;
    }
    j->bucket = base_alloc_zero(j->n_buckets, sizeof(pending *));
    if (j->bucket == NULL) {
        e = BASE_ENOMEM;
        goto fail;
    }
    *out = j;
    j = NULL;
fail:
    rwd_join_free(j); /* NULL on success */
    return e;
}

static void pending_free(pending *p)
{
    if (p != NULL) {
        base_decision_free(p->d);
        base_free(p);
    }
}

void rwd_join_free(rwd_join *j)
{
    if (j != NULL) {
        pending *p = j->fifo_head;
        while (p != NULL) {
            pending *next = p->next_fifo;
            pending_free(p);
            p = next;
        }
        base_free(j->bucket);
        base_free(j);
    }
}

static size_t bucket_of(const rwd_join *j, const char *event_id)
{
    uint64_t hash = base_hash64(event_id, strlen(event_id), JOIN_HASH_SEED);
    return (size_t)(hash & (uint64_t)(j->n_buckets - 1));
}

/* The pending entry for @event_id (NUL-terminated, non-empty), or NULL. */
static pending *lookup(const rwd_join *j, const char *event_id)
{
    pending *p = j->bucket[bucket_of(j, event_id)];
    while (p != NULL && strcmp(p->d->event_id, event_id) != 0) {
        p = p->next_bucket;
    }
    return p;
}

base_err rwd_join_add_decision(rwd_join *j, base_decision *d)
{
    base_err e = BASE_OK;
    if (!name_ok(d->event_id, sizeof(d->event_id)) || lookup(j, d->event_id) != NULL) {
        e = BASE_EINVAL;
        goto out;
    }
    if (j->stats.pending >= j->max_pending) {
        e = BASE_ELIMIT;
        goto out;
    }
    /* <= RWD_MAX_OUTCOMES ids: the size cannot overflow. */
    pending *p = base_alloc_zero(1, sizeof(*p) + j->spec.max_outcomes * sizeof(outcome_id));
    if (p == NULL) {
        e = BASE_ENOMEM;
        goto out;
    }
    p->d = d;
    size_t b = bucket_of(j, d->event_id);
    p->next_bucket = j->bucket[b];
    j->bucket[b] = p;
    if (j->fifo_tail != NULL) {
        j->fifo_tail->next_fifo = p;
    } else {
        j->fifo_head = p;
    }
    j->fifo_tail = p;
    j->stats.pending++;
out:
    return e;
}

void rwd_join_contains(const rwd_join *j, const char *event_id, bool *out_found)
{
    *out_found = event_id[0] != '\0' && lookup(j, event_id) != NULL;
}

static bool has_id(const pending *p, const char *id)
{
    bool found = false;
    for (uint32_t i = 0; i < p->n_ids && !found; i++) {
        found = strcmp(p->ids[i], id) == 0;
    }
    return found;
}

/*
 * The shared decision of check and add: validates @o, finds its entry
 * (*out_p, NULL unless RWD_MATCHED) and the signal's weight. Changes nothing.
 */
static base_err classify(const rwd_join *j, const base_outcome *o, rwd_match *out_m,
                         pending **out_p, double *out_weight)
{
    base_err e = BASE_OK;
    uint32_t si = 0;
    bool known = false;
    if (memchr(o->signal, '\0', sizeof(o->signal)) != NULL) {
        rwd_spec_find(&j->spec, o->signal, &si, &known);
    }
    if (!known || !isfinite(o->value) || memchr(o->event_id, '\0', sizeof(o->event_id)) == NULL ||
        memchr(o->outcome_id, '\0', sizeof(o->outcome_id)) == NULL) {
        e = BASE_EINVAL;
        goto out;
    }
    rwd_match m = RWD_UNKNOWN_EVENT;
    /* Outcomes addressed only to a conversation wait for the conversation credit rule. */
    pending *p = o->event_id[0] != '\0' ? lookup(j, o->event_id) : NULL;
    if (p != NULL && o->outcome_id[0] != '\0' && has_id(p, o->outcome_id)) {
        m = RWD_DUPLICATE;
        p = NULL;
    } else if (p != NULL && p->n_outcomes >= j->spec.max_outcomes) {
        e = BASE_ELIMIT;
        goto out;
    } else if (p != NULL && !isfinite(p->sum + j->spec.signal[si].weight * o->value)) {
        e = BASE_ENUMERIC; /* finite inputs whose sum overflows */
        goto out;
    } else if (p != NULL) {
        m = RWD_MATCHED;
    }
    *out_m = m;
    *out_p = p;
    *out_weight = j->spec.signal[si].weight;
out:
    return e;
}

base_err rwd_join_check_outcome(const rwd_join *j, const base_outcome *o, rwd_match *out)
{
    pending *p = NULL;
    double weight = 0.0;
    return classify(j, o, out, &p, &weight);
}

base_err rwd_join_add_outcome(rwd_join *j, const base_outcome *o, rwd_match *out)
{
    pending *p = NULL;
    double weight = 0.0;
    rwd_match m = RWD_UNKNOWN_EVENT;
    base_err e = classify(j, o, &m, &p, &weight);
    if (e != BASE_OK) {
        goto out;
    }
    if (m == RWD_MATCHED) {
        if (o->outcome_id[0] != '\0') {
            memcpy(p->ids[p->n_ids], o->outcome_id, sizeof(outcome_id));
            p->n_ids++;
        }
        p->sum += weight * o->value;
        p->n_outcomes++;
        j->stats.matched++;
    } else if (m == RWD_DUPLICATE) {
        j->stats.duplicates++;
    } else {
        j->stats.unknown_event++;
    }
    *out = m;
out:
    return e;
}

/* ts + window, saturating instead of overflowing (window > 0). */
static int64_t close_ts(int64_t ts_ms, int64_t window_ms)
{
    return ts_ms > INT64_MAX - window_ms ? INT64_MAX : ts_ms + window_ms;
}

/* Unlinks @p, the FIFO head, from its bucket chain and the FIFO. */
static void unlink_head(rwd_join *j, pending *p)
{
    pending **link = &j->bucket[bucket_of(j, p->d->event_id)];
    while (*link != p) {
        link = &(*link)->next_bucket;
    }
    *link = p->next_bucket;
    j->fifo_head = p->next_fifo;
    if (j->fifo_head == NULL) {
        j->fifo_tail = NULL;
    }
    j->stats.pending--;
}

size_t rwd_join_expire(rwd_join *j, int64_t now_ms, base_joined **out, size_t max_out)
{
    size_t n = 0;
    bool more = true;
    while (more && n < max_out && j->fifo_head != NULL) {
        pending *p = j->fifo_head;
        int64_t closed_at = close_ts(p->d->ts_ms, j->spec.window_ms);
        /* On OOM the entry stays pending and the next call retries it. */
        base_joined *jn = closed_at <= now_ms ? base_joined_new(p->d) : NULL;
        more = jn != NULL;
        if (more) {
            unlink_head(j, p);
            if (p->n_outcomes == 0) {
                jn->reward = j->spec.default_reward;
                jn->defaulted = true;
                j->stats.defaulted++;
            } else {
                double r = p->sum;
                r = r < j->spec.clip_min ? j->spec.clip_min : r;
                r = r > j->spec.clip_max ? j->spec.clip_max : r;
                jn->reward = r;
                jn->defaulted = false;
            }
            jn->n_outcomes = p->n_outcomes;
            /* When the window closed, not when expire ran: replays give the same record. */
            jn->joined_ts_ms = closed_at;
            p->d = NULL; /* now owned by jn */
            pending_free(p);
            j->stats.joined++;
            out[n++] = jn;
        }
    }
    return n;
}

void rwd_join_get_stats(const rwd_join *j, rwd_join_stats *out)
{
    *out = j->stats;
}
