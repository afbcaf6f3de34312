#include "service/persist.h"
#include "service/persist_impl.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/queue.h"
#include "base/thread.h"
#include "storage/streamid.h"

svc_persist_item *svc_persist_item_new(svc_persist_type type, sto_kind kind, const char *policy,
                                       void *rec)
{
    svc_persist_item *it = base_alloc_zero(1, sizeof(*it));
    if (it == NULL) {
        return NULL;
    }
    it->type = type;
    it->kind = kind;
    base_strlcpy(it->policy, policy, sizeof(it->policy));
    it->rec = rec;
    return it;
}

static void free_rec(svc_persist_item *it)
{
    if (it->rec == NULL) {
        return;
    }
    if (it->type == SVC_PERSIST_MODEL) {
        base_snapshot_free(it->rec);
    } else if (it->kind == STO_DECISIONS) {
        base_decision_free(it->rec);
    } else if (it->kind == STO_OUTCOMES) {
        base_free(it->rec);
    } else {
        base_joined_free(it->rec);
    }
    it->rec = NULL;
}

void svc_persist_item_free(svc_persist_item *it)
{
    if (it == NULL) {
        return;
    }
    free_rec(it);
    base_free(it);
}

/* An item refused by the fence: logged for the first few. */
void svc_persist_note_fenced(svc_persist *p, const char *policy)
{
    if (atomic_fetch_add(&p->fenced, 1) < 8) {
        base_log_policy(BASE_LOG_ERROR, policy,
                        "policy %s: a write was refused: its lease is no longer held by "
                        "\"%s\" (another instance took the policy over)",
                        policy, p->who);
    }
}

void svc_persist_complete(svc_persist *p, svc_persist_item *it, base_err result)
{
    if (p->in_hand > 0) {
        p->in_hand--;
    }
    /*
     * written: records stored (with replicas_ack, also one the replicas did not confirm in
     * time: it is on the master, and its request is answered as stored). failed: records
     * ended unstored, and checkpoints Redis refused. A stored checkpoint counts neither.
     */
    if (it->type == SVC_PERSIST_APPEND && (result == BASE_OK || result == BASE_ETIMEDOUT)) {
        atomic_fetch_add(&p->written, 1);
    } else if (result != BASE_OK) {
        atomic_fetch_add(&p->failed, 1);
    }
    if (it->done != NULL) {
        it->done(it->done_arg, it, result);
    }
    svc_persist_item_free(it);
}

/*
 * Keep @it for the spill at close: it was not stored and will not be. On
 * out of memory it completes now, unstored (counted lost at close).
 */
void svc_persist_leave(svc_persist *p, svc_persist_item *it)
{
    if (p->n_left == p->cap_left) {
        size_t cap = p->cap_left == 0 ? 1024 : p->cap_left * 2;
        svc_persist_item **g = base_realloc_array(p->left, cap, sizeof(*g));
        if (g == NULL) {
            p->lost_oom += it->type == SVC_PERSIST_APPEND;
            svc_persist_complete(p, it, BASE_ECLOSED);
            return;
        }
        p->left = g;
        p->cap_left = cap;
    }
    if (p->in_hand > 0) {
        p->in_hand--;
    }
    p->left[p->n_left++] = it;
}

/*
 * While closing: the time after which the writer stops trying Redis. The
 * deadline, and, while Redis is away, @outage_wait after the later of the
 * outage's start and the close.
 */
static uint64_t give_up_ns(const svc_persist *p)
{
    uint64_t t = p->deadline_ns;
    if (p->down_since_ns != 0) {
        uint64_t from = p->down_since_ns > p->close_ns ? p->down_since_ns : p->close_ns;
        if (from + p->outage_wait_ns < t) {
            t = from + p->outage_wait_ns;
        }
    }
    return t;
}

bool svc_persist_past_deadline(const svc_persist *p)
{
    return atomic_load(&p->closing) && base_mono_ns() >= p->deadline_ns;
}

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/*
 * Redis went away: note when, and say so once per outage (not per retry),
 * with the number of records waiting.
 */
static void mark_down(svc_persist *p)
{
    if (p->down_since_ns == 0) {
        p->down_since_ns = base_mono_ns();
    }
    atomic_store(&p->redis_refusing, false); /* unreachable now, whatever it answered before */
    if (atomic_exchange(&p->redis_up, false)) {
        base_log(BASE_LOG_WARN,
                 "redis: unreachable; writes wait in the queue (%zu queued), reconnecting with "
                 "backoff",
                 base_queue_len(p->q) + p->in_hand);
    }
}

/* Redis answers again: say so once, with the length of the outage. */
static void mark_up(svc_persist *p)
{
    uint64_t since = p->down_since_ns;
    p->down_since_ns = 0;
    atomic_store(&p->redis_refusing, false);
    if (!atomic_exchange(&p->redis_up, true)) {
        base_log(BASE_LOG_INFO, "redis: reachable again after %.1f s (%zu queued)",
                 since != 0 ? (double)(base_mono_ns() - since) / 1e9 : 0.0,
                 base_queue_len(p->q) + p->in_hand);
    }
}

/*
 * Sleep *@backoff ms (while closing, not past give_up_ns()), then double it, up to 2 s: the
 * back-off of a Redis that is away or refuses writes.
 */
static void backoff_nap(const svc_persist *p, int *backoff)
{
    int nap = *backoff;
    if (atomic_load(&p->closing)) {
        uint64_t now = base_mono_ns(), end = give_up_ns(p);
        if (now < end && (end - now) / 1000000u < (uint64_t)nap) {
            nap = (int)((end - now) / 1000000u) + 1;
        }
    }
    nap_ms(nap);
    *backoff = *backoff * 2 > 2000 ? 2000 : *backoff * 2;
}

/*
 * Reconnect with exponential backoff. Returns false when closing and Redis
 * stayed away past give_up_ns(), or, for an @idle writer (no batch in
 * hand), as soon as it is closing with nothing queued: there is nothing
 * left to store, so shutdown need not wait for Redis.
 */
bool svc_persist_reconnect(svc_persist *p, bool idle)
{
    int backoff = 50;
    mark_down(p);
    for (;;) {
        base_err e = BASE_EIO;
        if (p->store == NULL) {
            e = sto_store_open(p->url, p->timeout_ms, &p->store, NULL, 0);
        } else {
            e = sto_store_reconnect(p->store);
        }
        if (e == BASE_OK && sto_store_ping(p->store) == BASE_OK) {
            /* Maybe another Redis, or the same one with less data: read the tops again. */
            for (size_t i = 0; i < p->n_pos; i++) {
                p->pos[i].synced = false;
            }
            if (p->refusing) {
                /* Reachable, but it refused writes before: up once a batch is taken. */
                atomic_store(&p->redis_refusing, true);
            } else {
                mark_up(p);
            }
            p->last_ok_ns = base_mono_ns();
            return true;
        }
        if (atomic_load(&p->closing) &&
            ((idle && base_queue_len(p->q) == 0) || base_mono_ns() >= give_up_ns(p))) {
            return false;
        }
        backoff_nap(p, &backoff);
    }
}

/* The position of stream (@policy, @kind); NULL if it cannot be added (out of memory). */
static stream_pos *find_pos(svc_persist *p, const char *policy, sto_kind kind)
{
    for (size_t i = 0; i < p->n_pos; i++) {
        if (p->pos[i].kind == kind && strcmp(p->pos[i].policy, policy) == 0) {
            return &p->pos[i];
        }
    }
    if (p->n_pos == p->cap_pos) {
        size_t cap = p->cap_pos == 0 ? 16 : p->cap_pos * 2;
        stream_pos *g = base_realloc_array(p->pos, cap, sizeof(*g));
        if (g == NULL) {
            return NULL;
        }
        p->pos = g;
        p->cap_pos = cap;
    }
    stream_pos *sp = &p->pos[p->n_pos++];
    memset(sp, 0, sizeof(*sp));
    base_strlcpy(sp->policy, policy, sizeof(sp->policy));
    sp->kind = kind;
    return sp;
}

/*
 * Give @it its stream id if it has none yet: above the stream's last id in
 * Redis (read once per connection; @may_sync false when Redis cannot be
 * asked) and above every id assigned before, following the wall clock.
 * Return: BASE_OK; BASE_EIO if reading the last id lost the connection;
 *         BASE_ENOMEM (the item is then sent without an id: Redis picks one).
 */
base_err svc_persist_assign_id(svc_persist *p, svc_persist_item *it, bool may_sync)
{
    if (it->stream_id[0] != '\0') {
        return BASE_OK;
    }
    stream_pos *sp = find_pos(p, it->policy, it->kind);
    if (sp == NULL) {
        return BASE_ENOMEM;
    }
    if (!sp->synced && may_sync && p->store != NULL) {
        char top[BASE_STREAM_ID_MAX + 1];
        sto_sid t;
        base_err e = sto_store_last_id(p->store, it->kind, it->policy, top);
        if (e == BASE_EIO) {
            return e;
        }
        /* Other errors (a bad policy name, a key of another type) fail the XADD itself. */
        if (e == BASE_OK && sto_sid_parse(top, &t)) {
            if (sto_sid_cmp(t, sp->last) > 0) {
                sp->last = t;
            }
            sp->synced = true;
        }
    }
    sp->last = sto_sid_next(sp->last, (uint64_t)base_clock_now_ms(&p->wall));
    (void)sto_sid_format(sp->last, it->stream_id, sizeof(it->stream_id)); /* 41 bytes at most */
    return BASE_OK;
}

/* Give up @it's id: it is not stored there, and the stream moved past it. */
static void drop_id(svc_persist *p, svc_persist_item *it)
{
    stream_pos *sp = find_pos(p, it->policy, it->kind);
    if (sp != NULL) {
        sp->synced = false; /* read the top again before the next id */
    }
    it->stream_id[0] = '\0';
}

/*
 * Settle an append Redis refused because its id is not above the stream's
 * last id. If an earlier attempt went unanswered (@maybe_stored), the
 * record may be there: look. Otherwise, or if the entry there is not this
 * record (another writer, or a Redis restored from elsewhere), *out_again
 * is set: the record takes a new id above the top and is sent again.
 * Return: the item's result; BASE_EIO if the connection broke meanwhile.
 */
static base_err settle_behind(svc_persist *p, svc_persist_item *it, bool maybe_stored,
                              bool *out_again)
{
    sto_match m = STO_ABSENT;
    base_err e = BASE_OK;
    *out_again = false;
    if (maybe_stored) {
        e = sto_store_match(p->store, it->kind, it->policy, it->stream_id, it->rec, &m);
        if (e != BASE_OK || m == STO_SAME) {
            return e; /* BASE_OK: stored by an earlier attempt whose reply was lost */
        }
    }
    drop_id(p, it);
    *out_again = true;
    return BASE_OK;
}

/*
 * Write items[0..n) (all APPEND), pipelined, in rounds; false if Redis is
 * gone for good. Each record keeps the id it was first sent with, so a
 * record sent again is stored once: Redis refuses it as behind the stream's
 * top, and settle_behind() finds it there. Only items without a final
 * result go into the next round; a reply already read is final. Items
 * complete in stream order: in the order given, except that a record that
 * had to take a new id completes after the ones now below it.
 */
/*
 * With replicas_ack N > 0 and acknowledged items stored in this batch: WAIT until N replicas
 * have them, per master on a cluster (sto_store_wait_policies). unconfirmed[i] says whether
 * item i is an acknowledged one its master's replicas did not confirm in time (all of them
 * when the WAIT itself failed).
 */
static void replicated(svc_persist *p, svc_persist_item **todo, const sto_append *a, size_t n,
                       bool *unconfirmed)
{
    uint32_t want = atomic_load(&p->replicas_ack);
    const char *policy[SVC_PERSIST_BATCH];
    uint32_t acked[SVC_PERSIST_BATCH];
    size_t n_policy = 0;
    memset(unconfirmed, 0, n * sizeof(*unconfirmed));
    for (size_t i = 0; i < n && want > 0; i++) {
        bool needed = !todo[i]->lazy && a[i].out_err == BASE_OK;
        size_t k = 0;
        while (needed && k < n_policy && strcmp(policy[k], todo[i]->policy) != 0) {
            k++;
        }
        if (needed && k == n_policy) {
            policy[n_policy++] = todo[i]->policy;
        }
    }
    if (n_policy == 0) {
        return;
    }
    base_err e = sto_store_wait_policies(p->store, policy, n_policy, want,
                                         atomic_load(&p->replicas_timeout_ms), acked);
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < n_policy && strcmp(policy[k], todo[i]->policy) != 0) {
            k++;
        }
        unconfirmed[i] = k < n_policy && (e != BASE_OK || acked[k] < want);
    }
}

/*
 * Redis answered, but refused @n writes (out of memory, read-only, loading, no permission,
 * a key of the wrong type, ...): like an outage, the records stay in hand, in order, and go
 * again after *@backoff ms. Health is degraded meanwhile; the first refusal of an episode is
 * logged with Redis's words.
 */
static void refused_wait(svc_persist *p, const char *words, size_t n, int *backoff)
{
    atomic_store(&p->redis_refusing, true); /* also after a reconnect within the episode */
    if (!p->refusing) {
        p->refusing = true;
        if (p->down_since_ns == 0) {
            p->down_since_ns = base_mono_ns();
        }
        atomic_store(&p->redis_up, false);
        base_log(BASE_LOG_WARN,
                 "redis: refuses writes (%.100s); %zu record(s) of this batch and %zu queued "
                 "wait and go again with backoff until it takes them",
                 words, n, base_queue_len(p->q));
    }
    backoff_nap(p, backoff);
}

static bool write_appends(svc_persist *p, svc_persist_item **items, size_t n)
{
    sto_append a[SVC_PERSIST_BATCH];
    svc_persist_item *todo[SVC_PERSIST_BATCH];
    bool maybe_stored[SVC_PERSIST_BATCH]; /* an attempt went unanswered */
    size_t n_todo = n;
    int refused_backoff = 50; /* ms: while Redis refuses writes */
    bool gave_up = false;     /* closing, and Redis refused writes past give_up_ns() */
    memcpy(todo, items, n * sizeof(todo[0]));
    memset(maybe_stored, 0, sizeof(maybe_stored));
    while (n_todo > 0) {
        base_err e = BASE_OK;
        for (size_t i = 0; i < n_todo && e != BASE_EIO; i++) {
            e = svc_persist_assign_id(p, todo[i], true);
        }
        bool broken = e == BASE_EIO;
        if (!broken) {
            for (size_t i = 0; i < n_todo; i++) {
                memset(&a[i], 0, sizeof(a[i]));
                a[i].kind = todo[i]->kind;
                a[i].policy = todo[i]->policy;
                a[i].rec = todo[i]->rec;
                a[i].id = todo[i]->stream_id;
                a[i].index_ttl_ms = todo[i]->index_ttl_ms;
                a[i].fence = atomic_load(&p->fence) && p->who[0] != '\0' ? p->who : NULL;
            }
            broken = sto_store_append(p->store, a, n_todo) != BASE_OK;
            if (!broken) {
                p->last_ok_ns = base_mono_ns();
            }
            char words[128]; /* a refusal's, before another command clears them */
            base_strlcpy(words, sto_store_refusal(p->store), sizeof(words));
            bool unconfirmed[SVC_PERSIST_BATCH] = {false};
            if (!broken) {
                replicated(p, todo, a, n_todo, unconfirmed);
            }
            size_t kept = 0, renumbered = 0, refused = 0;
            for (size_t i = 0; i < n_todo; i++) {
                svc_persist_item *it = todo[i];
                base_err r = a[i].out_err;
                bool was_maybe = maybe_stored[i], renumber = false;
                char sent_id[BASE_STREAM_ID_MAX + 1];
                base_strlcpy(sent_id, it->stream_id, sizeof(sent_id));
                if (a[i].out_fenced) {
                    it->fenced = true;
                    svc_persist_note_fenced(p, it->policy);
                }
                if (r != BASE_EIO && a[i].out_behind) {
                    r = settle_behind(p, it, was_maybe, &renumber);
                    broken = broken || r == BASE_EIO;
                }
                bool again = r == BASE_EIO || renumber;
                refused += a[i].out_refused;
                if (renumber && renumbered++ == 0) {
                    static const char *const names[] = {"decisions", "outcomes", "joined"};
                    base_log_policy(
                        BASE_LOG_WARN, it->policy,
                        "redis: the %s stream of policy %s is already past id %s and does "
                        "not hold that record there (another writer, or a restored Redis): "
                        "storing it, and any like it in this batch, under new ids",
                        names[it->kind], it->policy, sent_id);
                }
                if (again) {
                    todo[kept] = it;
                    maybe_stored[kept] = it->stream_id[0] != '\0' && (was_maybe || r == BASE_EIO);
                    kept++;
                    continue;
                }
                if (r == BASE_OK && it->stream_id[0] == '\0') {
                    base_strlcpy(it->stream_id, a[i].out_id, sizeof(it->stream_id)); /* no id */
                }
                if (r == BASE_OK && unconfirmed[i] && !it->lazy) {
                    /* Stored on the master, not confirmed by replicas_ack replicas in time. */
                    r = BASE_ETIMEDOUT;
                    atomic_fetch_add(&p->unreplicated, 1);
                }
                svc_persist_complete(p, it, r);
            }
            n_todo = kept;
            /* Closing: refusals count as an outage for how long to keep trying. */
            gave_up = refused > 0 && atomic_load(&p->closing) && base_mono_ns() >= give_up_ns(p);
            if (!broken && refused > 0 && !gave_up && !svc_persist_past_deadline(p)) {
                refused_wait(p, words, refused, &refused_backoff);
            } else if (refused == 0 && p->refusing && (!broken || kept == 0)) {
                /*
                 * Every write of the round taken: the episode is over. Cut after its replies
                 * (reading the index's), Redis is marked down, so the idle loop reconnects.
                 */
                p->refusing = false;
                if (broken) {
                    mark_down(p);
                } else {
                    mark_up(p);
                }
            }
        }
        if (n_todo > 0 && (gave_up || svc_persist_past_deadline(p) ||
                           (broken && !svc_persist_reconnect(p, false)))) {
            for (size_t i = 0; i < n_todo; i++) {
                svc_persist_leave(p, todo[i]); /* spilled at close, with the id it was sent with */
            }
            return false;
        }
    }
    return true;
}

/* True when the connection has been quiet for SVC_PERSIST_PING_MS. */
static bool idle_ping_due(const svc_persist *p)
{
    return base_mono_ns() - p->last_ok_ns >= (uint64_t)SVC_PERSIST_PING_MS * 1000000u;
}

static void *writer_main(void *arg)
{
    base_thread_name("rlf-writer");
    svc_persist *p = arg;
    void *batch[SVC_PERSIST_BATCH];
    bool alive = true;
    for (;;) {
        size_t n = 0;
        base_err e = base_queue_pop_linger(
            p->q, batch, SVC_PERSIST_BATCH, 100,
            atomic_load_explicit(&p->group_commit_us, memory_order_relaxed), &n);
        if (e == BASE_ECLOSED) {
            break;
        }
        p->in_hand = n;
        if (n == 0) {
            if (alive && atomic_load(&p->redis_up) && idle_ping_due(p)) {
                /* Nothing to write: find out whether Redis is still there. */
                if (sto_store_ping(p->store) == BASE_OK) {
                    p->last_ok_ns = base_mono_ns();
                } else {
                    mark_down(p);
                }
            }
            /* Not while Redis refuses writes: it answers, the connection is fine. */
            if (alive && !atomic_load(&p->redis_up) && !p->refusing) {
                alive = svc_persist_reconnect(p, true);
            }
            continue;
        }
        if (alive && !atomic_load(&p->redis_up) && !p->refusing) {
            alive = svc_persist_reconnect(p, false);
        }
        size_t i = 0;
        while (i < n) {
            svc_persist_item *it = batch[i];
            if (!alive || svc_persist_past_deadline(p)) {
                alive = false; /* closing: the rest is spilled */
                svc_persist_leave(p, it);
                i++;
                continue;
            }
            if (it->type == SVC_PERSIST_MODEL) {
                alive = svc_persist_write_model(p, it);
                i++;
                continue;
            }
            if (it->type == SVC_PERSIST_BARRIER) {
                /*
                 * Everything queued before it is stored (or failed): done, no I/O, but with
                 * replicas_ack, stored is not enough for whoever waits on it (a retry answered
                 * `duplicate`): its policy's master must confirm what it has, the original
                 * included, as for the original's own answer.
                 */
                p->in_hand--;
                base_err r = BASE_OK;
                uint32_t want = atomic_load(&p->replicas_ack), acked = 0;
                if (it->done != NULL && want > 0 && alive) {
                    /* The original may have gone through an earlier connection. */
                    base_err we = sto_store_wait_current(
                        p->store, it->policy, want, atomic_load(&p->replicas_timeout_ms), &acked);
                    r = we == BASE_OK && acked >= want ? BASE_OK : BASE_ETIMEDOUT;
                }
                if (it->done != NULL) {
                    it->done(it->done_arg, it, r);
                }
                svc_persist_item_free(it);
                i++;
                continue;
            }
            size_t j = i;
            while (j < n && ((svc_persist_item *)batch[j])->type == SVC_PERSIST_APPEND) {
                j++;
            }
            alive = write_appends(p, (svc_persist_item **)&batch[i], j - i);
            i = j;
        }
    }
    return NULL;
}

base_err svc_persist_new(const char *url, int timeout_ms, size_t capacity, svc_persist **out,
                         char *errbuf, size_t errlen)
{
    base_err e = BASE_ENOMEM;
    svc_persist *p = base_alloc_zero(1, sizeof(*p));
    if (p == NULL) {
        goto fail;
    }
    p->q = base_queue_new(capacity);
    if (p->q == NULL) {
        goto fail;
    }
    p->url = base_strdup(url);
    if (p->url == NULL) {
        goto fail;
    }
    p->timeout_ms = timeout_ms;
    e = sto_store_open(url, timeout_ms, &p->store, errbuf, errlen);
    if (e == BASE_EIO) {
        p->store = NULL; /* start anyway: the writer keeps trying */
    } else if (e != BASE_OK) {
        goto fail;
    }
    atomic_store(&p->redis_up, p->store != NULL);
    base_clock_init_system(&p->wall);
    p->last_ok_ns = base_mono_ns();
    if (pthread_create(&p->thread, NULL, writer_main, p) != 0) {
        e = BASE_ENOMEM;
        goto fail;
    }
    *out = p;
    return BASE_OK;
fail:
    if (p != NULL) {
        sto_store_close(p->store);
        base_queue_free(p->q);
        base_free(p->url);
        base_free(p);
    }
    return e;
}

base_err svc_persist_submit(svc_persist *p, svc_persist_item *it)
{
    return it->lazy ? base_queue_push_lazy(p->q, it) : base_queue_push(p->q, it);
}

void svc_persist_set_group_commit(svc_persist *p, uint32_t us)
{
    atomic_store_explicit(&p->group_commit_us, us, memory_order_relaxed);
}

size_t svc_persist_depth(svc_persist *p)
{
    return base_queue_len(p->q);
}

size_t svc_persist_capacity(const svc_persist *p)
{
    return base_queue_capacity(p->q);
}

bool svc_persist_redis_up(const svc_persist *p)
{
    return atomic_load(&p->redis_up);
}

bool svc_persist_redis_refusing(const svc_persist *p)
{
    return atomic_load(&p->redis_refusing);
}

bool svc_persist_checkpoints_refused(const svc_persist *p)
{
    return atomic_load(&p->ckpt_refused);
}

uint64_t svc_persist_written(const svc_persist *p)
{
    return atomic_load(&p->written);
}

const char *svc_persist_url(const svc_persist *p)
{
    return p->url;
}

void svc_persist_set_replicas(svc_persist *p, uint32_t n, uint32_t timeout_ms)
{
    atomic_store(&p->replicas_ack, n);
    atomic_store(&p->replicas_timeout_ms, timeout_ms);
}

uint64_t svc_persist_unreplicated(const svc_persist *p)
{
    return atomic_load(&p->unreplicated);
}

void svc_persist_set_fence(svc_persist *p, bool on)
{
    atomic_store(&p->fence, on);
}

void svc_persist_set_who(svc_persist *p, const char *who)
{
    base_strlcpy(p->who, who, sizeof(p->who));
}

uint64_t svc_persist_audit_failed(const svc_persist *p)
{
    return atomic_load(&p->audit_failed);
}

void svc_persist_count_audit_failed(svc_persist *p, uint64_t n)
{
    atomic_fetch_add(&p->audit_failed, n);
}

uint64_t svc_persist_trimmed(const svc_persist *p)
{
    return atomic_load(&p->trimmed);
}

uint64_t svc_persist_failed(const svc_persist *p)
{
    return atomic_load(&p->failed);
}
