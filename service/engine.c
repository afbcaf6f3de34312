#include "service/engine.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/queue.h"
#include "policy/head.h"
#include "reward/join.h"

#define EXPIRE_BATCH 256

/* Counters of one policy; all monotonic, read by stats without locks. */
typedef struct pol_counters {
    atomic_uint_fast64_t decisions;   /* decide requests answered */
    atomic_uint_fast64_t logged;      /* log requests accepted */
    atomic_uint_fast64_t unlogged;    /* decisions served but not logged: queue full */
    atomic_uint_fast64_t feedback;    /* outcomes accepted (matched) */
    atomic_uint_fast64_t duplicates;  /* outcomes ignored by outcome_id */
    atomic_uint_fast64_t unknown_event;
    atomic_uint_fast64_t joined;      /* joined examples stored */
    atomic_uint_fast64_t defaulted;   /* of which had no outcome */
    atomic_uint_fast64_t updates;     /* examples applied to the head */
    atomic_uint_fast64_t learn_errors;
    atomic_uint_fast64_t store_errors; /* records Redis did not take */
    atomic_uint_fast64_t snapshots;
    atomic_int_fast64_t reward_micro; /* sum of joined rewards, in 1e-6 units */
} pol_counters;

/*
 * A recovery mark: the stream ids last stored (joined read first, then
 * decisions and outcomes) just before the record with log sequence number
 * @lsn was queued. Every record with lsn >= @lsn, and the joined record of
 * any such decision, was stored after these ids: replaying the streams from
 * a mark at or below the oldest pending lsn rebuilds the join (the writer
 * stores in queue order, and a decision is queued before its outcomes and
 * its joined record).
 */
typedef struct mark {
    uint64_t lsn;
    char tail[3][BASE_STREAM_ID_MAX + 1];
} mark;

#define MARK_EVERY 64    /* lsns between marks */
#define MARK_RING 4096   /* marks kept per policy */

typedef struct pol_rt {
    svc_engine *eng;
    const svc_policy_config *cfg;
    /* action name -> index: open addressing, value index + 1, read-only after build */
    uint32_t *act_slot;
    uint32_t act_cap;

    pthread_rwlock_t head_lk;
    pol_head *head;              /* guarded by head_lk; written by the learner only */
    atomic_uint_fast64_t n_updates; /* published copy of the head's update count */

    pthread_mutex_t join_lk;
    rwd_join *join;              /* guarded by join_lk */
    uint64_t next_lsn;           /* guarded by join_lk: the next log sequence number */
    mark *marks;                 /* guarded by join_lk: ring of recovery marks, oldest first */
    size_t mark_head, n_marks;

    pthread_mutex_t tail_lk;
    char tail[3][BASE_STREAM_ID_MAX + 1]; /* guarded by tail_lk: last stored id per sto_kind */

    /* learner thread only */
    char last_joined_id[BASE_STREAM_ID_MAX + 1];
    uint64_t snapshot_updates;   /* n_updates at the last checkpoint */
    uint64_t snapshot_lsn;       /* next_lsn at the last checkpoint */
    uint64_t last_version;       /* version of the last checkpoint queued (its parent link) */
    uint64_t trace;              /* guarded by head_lk: hash chain of (event, reward) learned */
    base_joined *backlog[EXPIRE_BATCH]; /* expired, not yet accepted by persist */
    size_t n_backlog;

    pol_counters c;
} pol_rt;

struct svc_engine {
    const svc_config *cfg;
    base_clock *clock;
    svc_persist *persist;
    uint32_t n_pol;
    pol_rt *pol;

    base_queue *learn_q;          /* joined examples stored, waiting to be applied */
    atomic_size_t learn_inflight; /* expired and not yet applied (bounds learn_q) */
    size_t learn_cap;

    pthread_t thread;
    bool started;
    atomic_bool stop;
    atomic_int drain_timeout_ms;

    atomic_uint waiting;          /* requests whose reply waits for Redis (each holds a context) */
    uint32_t max_waiting;         /* past it such requests are refused, so decide keeps contexts */
    uint64_t id_prefix;           /* random per process start */
    atomic_uint_fast64_t id_seq;
    atomic_uint_fast64_t rejected[SVC_E_COUNT];
};

/* A joined example on its way to the learner, with the policy it belongs to. */
typedef struct learn_item {
    pol_rt *pol;
    base_joined *j;
    char stream_id[BASE_STREAM_ID_MAX + 1];
} learn_item;

static uint32_t name_hash(const char *s)
{
    return (uint32_t)base_hash64(s, strlen(s), 0x5eed);
}

static base_err build_action_index(pol_rt *p)
{
    uint32_t cap = 16;
    while (cap < p->cfg->n_actions * 2u) {
        cap *= 2;
    }
    p->act_slot = base_alloc_zero(cap, sizeof(uint32_t));
    if (p->act_slot == NULL) {
        return BASE_ENOMEM;
    }
    p->act_cap = cap;
    for (uint32_t a = 0; a < p->cfg->n_actions; a++) {
        uint32_t i = name_hash(p->cfg->actions[a]) & (cap - 1);
        while (p->act_slot[i] != 0) {
            i = (i + 1) & (cap - 1);
        }
        p->act_slot[i] = a + 1;
    }
    return BASE_OK;
}

static bool find_action(const pol_rt *p, const char *name, uint32_t *out)
{
    uint32_t i = name_hash(name) & (p->act_cap - 1);
    while (p->act_slot[i] != 0) {
        uint32_t a = p->act_slot[i] - 1;
        if (strcmp(p->cfg->actions[a], name) == 0) {
            *out = a;
            return true;
        }
        i = (i + 1) & (p->act_cap - 1);
    }
    return false;
}

static pol_rt *find_policy(svc_engine *e, const char *name)
{
    for (uint32_t i = 0; i < e->n_pol; i++) {
        if (strcmp(e->pol[i].cfg->name, name) == 0) {
            return &e->pol[i];
        }
    }
    return NULL;
}

static uint64_t random_u64(void)
{
    uint64_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f != NULL) {
        if (fread(&v, sizeof(v), 1, f) != 1) {
            v = 0;
        }
        fclose(f);
    }
    if (v == 0) {
        v = base_mono_ns() ^ ((uint64_t)(uintptr_t)&v << 16);
    }
    return v;
}

base_err svc_engine_new(const svc_config *cfg, base_clock *clock, svc_persist *persist,
                        svc_engine **out, char *errbuf, size_t errlen)
{
    base_err e = BASE_ENOMEM;
    svc_engine *eng = base_alloc_zero(1, sizeof(*eng));
    if (eng == NULL) {
        goto fail;
    }
    eng->cfg = cfg;
    eng->clock = clock;
    eng->persist = persist;
    eng->id_prefix = random_u64();
    /* A quarter of the REP contexts (at least one) stays free for decide. */
    uint32_t contexts = cfg->contexts * (cfg->n_urls > 0 ? cfg->n_urls : 1);
    uint32_t reserve = contexts / 4 > 0 ? contexts / 4 : 1;
    eng->max_waiting = contexts > reserve ? contexts - reserve : 0;
    eng->pol = base_alloc_zero(cfg->n_policies, sizeof(pol_rt));
    if (eng->pol == NULL) {
        goto fail;
    }
    eng->learn_cap = svc_persist_capacity(persist);
    eng->learn_q = base_queue_new(eng->learn_cap);
    if (eng->learn_q == NULL) {
        goto fail;
    }
    for (uint32_t i = 0; i < cfg->n_policies; i++) {
        pol_rt *p = &eng->pol[i];
        p->eng = eng;
        p->cfg = &cfg->policy[i];
        pthread_rwlock_init(&p->head_lk, NULL);
        pthread_mutex_init(&p->join_lk, NULL);
        pthread_mutex_init(&p->tail_lk, NULL);
        p->marks = base_alloc_array(MARK_RING, sizeof(mark));
        if (p->marks == NULL) {
            eng->n_pol = i + 1;
            e = BASE_ENOMEM;
            goto fail;
        }
        eng->n_pol = i + 1;
        e = build_action_index(p);
        if (e != BASE_OK) {
            goto fail;
        }
        e = pol_head_new(&p->cfg->head, &p->head);
        if (e != BASE_OK) {
            snprintf(errbuf, errlen, "policy \"%s\": head: %s", p->cfg->name, base_strerror(e));
            goto fail;
        }
        e = rwd_join_new(&p->cfg->reward, p->cfg->max_pending, &p->join);
        if (e != BASE_OK) {
            snprintf(errbuf, errlen, "policy \"%s\": reward spec: %s", p->cfg->name,
                     base_strerror(e));
            goto fail;
        }
    }
    *out = eng;
    return BASE_OK;
fail:
    svc_engine_free(eng);
    return e;
}

void svc_engine_free(svc_engine *e)
{
    if (e == NULL) {
        return;
    }
    for (uint32_t i = 0; i < e->n_pol; i++) {
        pol_rt *p = &e->pol[i];
        for (size_t k = 0; k < p->n_backlog; k++) {
            base_joined_free(p->backlog[k]);
        }
        pol_head_free(p->head);
        rwd_join_free(p->join);
        base_free(p->act_slot);
        pthread_rwlock_destroy(&p->head_lk);
        pthread_mutex_destroy(&p->join_lk);
        pthread_mutex_destroy(&p->tail_lk);
        base_free(p->marks);
    }
    if (e->learn_q != NULL) {
        void *items[64];
        size_t n = 0;
        base_queue_close(e->learn_q);
        while (base_queue_pop_batch(e->learn_q, items, 64, 0, &n) == BASE_OK) {
            for (size_t k = 0; k < n; k++) {
                learn_item *li = items[k];
                base_joined_free(li->j);
                base_free(li);
            }
        }
        base_queue_free(e->learn_q);
    }
    base_free(e->pol);
    base_free(e);
}

/* ---- log sequence numbers, stored tails, recovery marks ----------------- */

static void set_tail(pol_rt *p, sto_kind kind, const char *id)
{
    pthread_mutex_lock(&p->tail_lk);
    base_strlcpy(p->tail[kind], id, sizeof(p->tail[kind]));
    pthread_mutex_unlock(&p->tail_lk);
}

/* The stored tails, joined first (see struct mark for why the order matters). */
static void read_tails(pol_rt *p, char (*out)[BASE_STREAM_ID_MAX + 1])
{
    pthread_mutex_lock(&p->tail_lk);
    memcpy(out[STO_JOINED], p->tail[STO_JOINED], sizeof(p->tail[0]));
    memcpy(out[STO_DECISIONS], p->tail[STO_DECISIONS], sizeof(p->tail[0]));
    memcpy(out[STO_OUTCOMES], p->tail[STO_OUTCOMES], sizeof(p->tail[0]));
    pthread_mutex_unlock(&p->tail_lk);
}

/*
 * The next lsn, recording a mark first when one is due. Called under
 * join_lk, before the record is queued. A full ring records nothing: the
 * older marks stay valid, only less tight.
 */
static uint64_t take_lsn(pol_rt *p)
{
    uint64_t lsn = p->next_lsn++;
    const mark *last = p->n_marks > 0 ? &p->marks[(p->mark_head + p->n_marks - 1) % MARK_RING]
                                      : NULL;
    if ((last == NULL || lsn - last->lsn >= MARK_EVERY) && p->n_marks < MARK_RING) {
        mark *m = &p->marks[(p->mark_head + p->n_marks) % MARK_RING];
        m->lsn = lsn;
        read_tails(p, m->tail);
        p->n_marks++;
    }
    return lsn;
}

/* Writer-thread completion of a decision record: only its stream id matters. */
static void on_decision_stored(void *arg, svc_persist_item *it, base_err result)
{
    pol_rt *p = arg;
    if (result == BASE_OK) {
        set_tail(p, STO_DECISIONS, it->stream_id);
    } else {
        atomic_fetch_add(&p->c.store_errors, 1);
    }
}

/* ---- replies ---------------------------------------------------------- */

static void send_buf(const svc_replier *r, base_buf *b)
{
    if (r != NULL && r->send != NULL) {
        r->send(r->arg, b->data, b->len);
    }
}

static void reject(svc_engine *e, const svc_replier *r, svc_errcode code, const char *msg)
{
    atomic_fetch_add(&e->rejected[code], 1);
    if (r == NULL || r->send == NULL) {
        return;
    }
    base_buf b;
    base_buf_init(&b, 4096);
    if (svc_wire_reply_error(&b, code, msg) == BASE_OK) {
        send_buf(r, &b);
    }
    base_buf_fini(&b);
}

static void reply_ok(const svc_replier *r, bool duplicate)
{
    if (r == NULL || r->send == NULL) {
        return;
    }
    base_buf b;
    base_buf_init(&b, 256);
    svc_writer w;
    svc_writer_init(&w, &b);
    if (duplicate) {
        svc_w_map(&w, 3);
        svc_w_str(&w, "ok");
        svc_w_bool(&w, true);
        svc_w_str(&w, "duplicate");
        svc_w_bool(&w, true);
        svc_w_str(&w, "status");
        svc_w_str(&w, "duplicate");
    } else {
        svc_w_map(&w, 1);
        svc_w_str(&w, "ok");
        svc_w_bool(&w, true);
    }
    if (svc_writer_finish(&w) == BASE_OK) {
        send_buf(r, &b);
    }
    base_buf_fini(&b);
}

void svc_engine_count_reject(svc_engine *e, svc_errcode code)
{
    if (code > SVC_E_NONE && code < SVC_E_COUNT) {
        atomic_fetch_add(&e->rejected[code], 1);
    }
}

/* ---- decide and log --------------------------------------------------- */

/*
 * Checks shared by decide and log, then builds the decision record: policy
 * shape, candidate count and ids. On failure *out_code/msg say why.
 */
static base_decision *build_decision(pol_rt *p, const svc_request *q, svc_errcode *out_code,
                                     char *msg, size_t msglen)
{
    const svc_policy_config *pc = p->cfg;
    if (q->dim != pc->head.dim) {
        *out_code = SVC_E_BAD_DIMENSION;
        snprintf(msg, msglen, "context.embedding has %u values, policy %s expects %u", q->dim,
                 pc->name, pc->head.dim);
        return NULL;
    }
    if (q->n_cand > pc->max_candidates) {
        *out_code = SVC_E_TOO_MANY_CANDIDATES;
        snprintf(msg, msglen, "%u candidates, policy %s allows %u", q->n_cand, pc->name,
                 pc->max_candidates);
        return NULL;
    }
    base_decision *d = base_decision_new(q->dim, q->n_cand);
    if (d == NULL) {
        *out_code = SVC_E_INTERNAL;
        snprintf(msg, msglen, "out of memory");
        return NULL;
    }
    for (uint32_t c = 0; c < q->n_cand; c++) {
        uint32_t a = 0;
        if (!find_action(p, q->cand[c].id, &a)) {
            *out_code = SVC_E_UNKNOWN_ACTION;
            snprintf(msg, msglen, "candidates[%u].id \"%.48s\" is not an action of policy %.48s", c,
                     q->cand[c].id, pc->name);
            goto fail;
        }
        for (uint32_t k = 0; k < c; k++) {
            if (d->action[k] == a) {
                *out_code = SVC_E_BAD_REQUEST;
                snprintf(msg, msglen, "candidates[%u].id \"%s\" repeats candidates[%u]", c,
                         q->cand[c].id, k);
                goto fail;
            }
        }
        d->action[c] = a;
        d->base_logit[c] = q->cand[c].base_logit;
    }
    memcpy(d->embedding, q->embedding, (size_t)q->dim * sizeof(float));
    base_strlcpy(d->policy, pc->name, sizeof(d->policy));
    base_strlcpy(d->conversation_id, q->conversation_id, sizeof(d->conversation_id));
    d->turn = q->turn;
    return d;
fail:
    base_decision_free(d);
    return NULL;
}

/*
 * Make @d pending and queue its record for Redis, under the join lock so a
 * duplicate event id is caught before anything is logged. Takes @d on
 * success.
 */
static svc_errcode admit_decision(pol_rt *p, base_decision *d, char *msg, size_t msglen)
{
    svc_errcode code = SVC_E_NONE;
    svc_persist_item *it = svc_persist_item_new(SVC_PERSIST_APPEND, STO_DECISIONS, d->policy, NULL);
    if (it == NULL) {
        snprintf(msg, msglen, "out of memory");
        return SVC_E_INTERNAL;
    }
    it->done = on_decision_stored;
    it->done_arg = p;
    pthread_mutex_lock(&p->join_lk);
    bool dup = false;
    rwd_join_stats js;
    rwd_join_contains(p->join, d->event_id, &dup);
    rwd_join_get_stats(p->join, &js);
    if (dup) {
        code = SVC_E_DUPLICATE_EVENT;
        snprintf(msg, msglen, "event_id \"%s\" is already pending", d->event_id);
    } else if (js.pending >= p->cfg->max_pending) {
        /* Served, not logged: the log holds only decisions the join holds. */
        atomic_fetch_add(&p->c.unlogged, 1);
        base_decision_free(d);
    } else {
        d->lsn = take_lsn(p);
        it->rec = base_decision_clone(d);
        if (it->rec == NULL || svc_persist_submit(p->eng->persist, it) != BASE_OK) {
            /* Served but not logged: the storage queue is full. Counted, not learned from. */
            atomic_fetch_add(&p->c.unlogged, 1);
            base_decision_free(d);
        } else {
            it = NULL;
            /* Cannot fail: not a duplicate and below max_pending, checked under this lock. */
            (void)rwd_join_add_decision(p->join, d, base_clock_now_ms(p->eng->clock));
        }
    }
    pthread_mutex_unlock(&p->join_lk);
    svc_persist_item_free(it);
    return code;
}

static void make_event_id(svc_engine *e, char *out, size_t size)
{
    uint64_t seq = atomic_fetch_add(&e->id_seq, 1) + 1;
    snprintf(out, size, "e%016" PRIx64 "-%" PRIu64, e->id_prefix, seq);
}

static void op_decide(svc_engine *e, pol_rt *p, const svc_request *q, const svc_replier *r)
{
    char msg[SVC_WIRE_MSG_MAX];
    svc_errcode code = SVC_E_NONE;
    base_decision *d = build_decision(p, q, &code, msg, sizeof(msg));
    if (d == NULL) {
        reject(e, r, code, msg);
        return;
    }
    if (q->event_id[0] != '\0') {
        base_strlcpy(d->event_id, q->event_id, sizeof(d->event_id));
    } else {
        make_event_id(e, d->event_id, sizeof(d->event_id));
    }
    d->source = BASE_SRC_DECIDE;
    d->deferred = q->deferred ? 1 : 0;
    d->ts_ms = base_clock_now_ms(e->clock);

    pthread_rwlock_rdlock(&p->head_lk);
    base_err err = pol_head_pmf(p->head, d->embedding, d->n_cand, d->action, d->base_logit,
                                d->pmf);
    d->model_version = pol_head_n_updates(p->head);
    pthread_rwlock_unlock(&p->head_lk);
    if (err != BASE_OK) {
        base_decision_free(d);
        reject(e, r, err == BASE_ENUMERIC ? SVC_E_NOT_FINITE : SVC_E_BAD_REQUEST,
               "scoring failed on this input");
        return;
    }
    d->chosen = pol_sample(d->pmf, d->n_cand, d->event_id, p->cfg->head.seed);

    /* Encode the reply before the record changes hands. */
    base_buf b;
    base_buf_init(&b, 64u * 1024u);
    err = svc_wire_reply_decide(&b, d->event_id, q->cand[d->chosen].id, d->chosen, d->pmf,
                                d->n_cand, d->model_version, "online");
    if (err != BASE_OK) {
        base_buf_fini(&b);
        base_decision_free(d);
        reject(e, r, SVC_E_INTERNAL, "reply encoding failed");
        return;
    }
    code = admit_decision(p, d, msg, sizeof(msg));
    if (code != SVC_E_NONE) {
        base_decision_free(d);
        reject(e, r, code, msg);
    } else {
        atomic_fetch_add(&p->c.decisions, 1);
        send_buf(r, &b);
    }
    base_buf_fini(&b);
}

static void op_log(svc_engine *e, pol_rt *p, const svc_request *q, const svc_replier *r)
{
    char msg[SVC_WIRE_MSG_MAX];
    svc_errcode code = SVC_E_NONE;
    base_decision *d = build_decision(p, q, &code, msg, sizeof(msg));
    if (d == NULL) {
        reject(e, r, code, msg);
        return;
    }
    base_strlcpy(d->event_id, q->event_id, sizeof(d->event_id));
    d->source = BASE_SRC_LOG;
    d->ts_ms = base_clock_now_ms(e->clock);
    bool found = false;
    for (uint32_t c = 0; c < d->n_cand; c++) {
        d->pmf[c] = q->pmf[c];
        if (strcmp(q->cand[c].id, q->chosen) == 0) {
            d->chosen = c;
            found = true;
        }
    }
    if (!found || d->pmf[d->chosen] <= 0.0f) {
        base_decision_free(d);
        reject(e, r, SVC_E_BAD_REQUEST, "chosen must be a candidate with pmf > 0");
        return;
    }
    d->model_version = atomic_load(&p->n_updates);
    code = admit_decision(p, d, msg, sizeof(msg));
    if (code != SVC_E_NONE) {
        base_decision_free(d);
        reject(e, r, code, msg);
        return;
    }
    atomic_fetch_add(&p->c.logged, 1);
    reply_ok(r, false);
}

/* ---- feedback and activation ------------------------------------------ */

typedef struct ack_ctx {
    pol_rt *p;
    svc_replier r;
    rwd_status status;
} ack_ctx;

static void reply_status(const svc_replier *r, const char *status)
{
    if (r == NULL || r->send == NULL) {
        return;
    }
    base_buf b;
    base_buf_init(&b, 256);
    svc_writer w;
    svc_writer_init(&w, &b);
    svc_w_map(&w, 2);
    svc_w_str(&w, "ok");
    svc_w_bool(&w, true);
    svc_w_str(&w, "status");
    svc_w_str(&w, status);
    if (svc_writer_finish(&w) == BASE_OK) {
        send_buf(r, &b);
    }
    base_buf_fini(&b);
}

/* Runs on the writer thread once Redis has (or refused) the outcome or activation. */
static void on_outcome_stored(void *arg, svc_persist_item *it, base_err result)
{
    ack_ctx *a = arg;
    if (a->r.send != NULL) {
        atomic_fetch_sub(&a->p->eng->waiting, 1);
    }
    if (result == BASE_OK) {
        set_tail(a->p, STO_OUTCOMES, it->stream_id);
        reply_status(&a->r, rwd_status_name(a->status));
    } else {
        atomic_fetch_add(&a->p->c.store_errors, 1);
        reject(a->p->eng, &a->r, SVC_E_UNAVAILABLE, "the outcome could not be stored; retry");
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
    reply_ok(&a->r, true);
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
static void submit_outcome(svc_engine *e, pol_rt *p, base_outcome *o, const svc_replier *r)
{
    char msg[SVC_WIRE_MSG_MAX];
    ack_ctx *ack = base_alloc_zero(1, sizeof(*ack));
    svc_persist_item *it =
        ack == NULL ? NULL : svc_persist_item_new(SVC_PERSIST_APPEND, STO_OUTCOMES, p->cfg->name, o);
    if (it == NULL) {
        base_free(o);
        base_free(ack);
        reject(e, r, SVC_E_INTERNAL, "out of memory");
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
        reject(e, r, SVC_E_UNAVAILABLE, "too many requests waiting for storage; retry");
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
        o->lsn = take_lsn(p);
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
        reject(e, r, code, "storage queue full; retry");
        return;
    }
    if (logged) {
        if (applied.type != BASE_OUT_ACTIVATE) {
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
            atomic_fetch_add(&p->c.duplicates, 1);
            if (!deferred_dup) {
                reply_ok(r, true); /* PULL: nobody waits */
            }
        } else {
            reply_status(r, rwd_status_name(st));
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
    reject(e, r, code, msg);
}

/* feedback and activate: the outcome-stream record of request @q, then submit_outcome(). */
static void op_outcome(svc_engine *e, pol_rt *p, const svc_request *q, const svc_replier *r,
                       uint32_t type)
{
    base_outcome *o = base_alloc_zero(1, sizeof(*o));
    if (o == NULL) {
        reject(e, r, SVC_E_INTERNAL, "out of memory");
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

static void op_clock(svc_engine *e, const svc_request *q, const svc_replier *r)
{
    if (!e->clock->manual) {
        reject(e, r, SVC_E_UNKNOWN_OP, "op 'clock' needs a daemon started with --manual-clock");
        return;
    }
    if (q->clock_set_ms >= 0) {
        base_clock_set(e->clock, q->clock_set_ms);
    } else {
        base_clock_advance(e->clock, q->clock_advance_ms);
    }
    base_buf b;
    base_buf_init(&b, 256);
    svc_writer w;
    svc_writer_init(&w, &b);
    svc_w_map(&w, 2);
    svc_w_str(&w, "ok");
    svc_w_bool(&w, true);
    svc_w_str(&w, "now_ms");
    svc_w_int(&w, base_clock_now_ms(e->clock));
    if (svc_writer_finish(&w) == BASE_OK) {
        send_buf(r, &b);
    }
    base_buf_fini(&b);
}

/* ---- recovery ------------------------------------------------------------ */

static void learn_one(pol_rt *p, const base_joined *j, const char *stream_id);

/*
 * Start-up rebuild of a policy from its checkpoint and the streams:
 * 1. joined records after scan_joined: remembered as closed (late outcomes
 *    stay late); those after the checkpoint's last applied id are learned,
 *    in stream order, exactly as the learner would have;
 * 2. decisions after scan_decisions and outcomes after scan_outcomes,
 *    merged by lsn (the order they were admitted in): decisions without a
 *    joined record become pending again, outcomes and activations are
 *    re-applied (rate caps off: each was accepted once).
 * The head is then what it would have been had the process never stopped,
 * and the join holds what it held, so the next windows close identically.
 */

/* An open-addressing set of 64-bit event-id hashes (0 marks an empty slot). */
typedef struct idset {
    uint64_t *slot;
    size_t cap;
    size_t n;
} idset;

static uint64_t id_hash(const char *id)
{
    return base_hash64(id, strlen(id), 0x6a6f696e6564ULL) | 1u;
}

static bool idset_has(const idset *s, uint64_t h)
{
    for (size_t i = h & (s->cap - 1); s->cap > 0 && s->slot[i] != 0; i = (i + 1) & (s->cap - 1)) {
        if (s->slot[i] == h) {
            return true;
        }
    }
    return false;
}

static base_err idset_add(idset *s, uint64_t h)
{
    if (2 * (s->n + 1) > s->cap) {
        idset g = {base_alloc_zero(s->cap == 0 ? 1024 : 2 * s->cap, sizeof(uint64_t)),
                   s->cap == 0 ? 1024 : 2 * s->cap, 0};
        if (g.slot == NULL) {
            return BASE_ENOMEM;
        }
        for (size_t i = 0; i < s->cap; i++) {
            if (s->slot[i] != 0) {
                (void)idset_add(&g, s->slot[i]); /* cannot grow again */
            }
        }
        base_free(s->slot);
        *s = g;
    }
    size_t i = h & (s->cap - 1);
    while (s->slot[i] != 0 && s->slot[i] != h) {
        i = (i + 1) & (s->cap - 1);
    }
    if (s->slot[i] == 0) {
        s->slot[i] = h;
        s->n++;
    }
    return BASE_OK;
}

/* Order of Redis stream ids "ms-seq"; "" sorts first. */
static int id_cmp(const char *a, const char *b)
{
    unsigned long long am = 0, as = 0, bm = 0, bs = 0;
    int na = a[0] != '\0' ? sscanf(a, "%llu-%llu", &am, &as) : 0;
    int nb = b[0] != '\0' ? sscanf(b, "%llu-%llu", &bm, &bs) : 0;
    if (na == 0 || nb == 0) {
        return (na != 0) - (nb != 0);
    }
    if (am != bm) {
        return am < bm ? -1 : 1;
    }
    return as < bs ? -1 : as > bs;
}

#define REPLAY_BATCH 256

/* A stream being read in batches. */
typedef struct cursor {
    sto_kind kind;
    char after[BASE_STREAM_ID_MAX + 1];
    sto_entry *en;
    size_t n;
    size_t i;
    bool done;
} cursor;

static base_err cursor_fill(sto_store *st, const char *policy, cursor *c)
{
    if (c->done || c->i < c->n) {
        return BASE_OK;
    }
    sto_entries_free(c->kind, c->en, c->n);
    c->en = NULL;
    c->n = c->i = 0;
    base_err e = sto_store_read(st, c->kind, policy, c->after, REPLAY_BATCH, &c->en, &c->n);
    if (e == BASE_OK && c->n == 0) {
        c->done = true;
    } else if (e == BASE_OK) {
        base_strlcpy(c->after, c->en[c->n - 1].id, sizeof(c->after));
    }
    return e;
}

static uint64_t cursor_lsn(const cursor *c)
{
    const void *r = c->en[c->i].rec;
    return c->kind == STO_DECISIONS ? ((const base_decision *)r)->lsn
                                    : ((const base_outcome *)r)->lsn;
}

static base_err replay_joined(pol_rt *p, sto_store *st, const char *from, const char *applied,
                              idset *joined, uint64_t *out_learned)
{
    cursor c = {.kind = STO_JOINED};
    base_strlcpy(c.after, from, sizeof(c.after));
    base_err e = BASE_OK;
    for (;;) {
        e = cursor_fill(st, p->cfg->name, &c);
        if (e != BASE_OK || c.done) {
            break;
        }
        for (; c.i < c.n && e == BASE_OK; c.i++) {
            const base_joined *j = c.en[c.i].rec;
            const char *id = c.en[c.i].id;
            e = idset_add(joined, id_hash(j->decision->event_id));
            rwd_join_mark_closed(p->join, j->decision->event_id, j->decision->conversation_id,
                                 j->joined_ts_ms);
            if (id_cmp(id, applied) > 0) {
                learn_one(p, j, id);
                (*out_learned)++;
            }
            set_tail(p, STO_JOINED, id);
        }
    }
    sto_entries_free(c.kind, c.en, c.n);
    return e;
}

static base_err replay_join(pol_rt *p, sto_store *st, const char *from_d, const char *from_o,
                            const idset *joined, uint64_t *io_next_lsn, uint64_t *out_pending)
{
    cursor cd = {.kind = STO_DECISIONS}, co = {.kind = STO_OUTCOMES};
    base_strlcpy(cd.after, from_d, sizeof(cd.after));
    base_strlcpy(co.after, from_o, sizeof(co.after));
    base_err e = BASE_OK;
    rwd_join_set_replay(p->join, true);
    for (;;) {
        e = cursor_fill(st, p->cfg->name, &cd);
        if (e == BASE_OK) {
            e = cursor_fill(st, p->cfg->name, &co);
        }
        if (e != BASE_OK || (cd.done && co.done)) {
            break;
        }
        bool take_d = !cd.done && (co.done || cursor_lsn(&cd) < cursor_lsn(&co));
        cursor *c = take_d ? &cd : &co;
        uint64_t lsn = cursor_lsn(c);
        *io_next_lsn = lsn + 1 > *io_next_lsn ? lsn + 1 : *io_next_lsn;
        set_tail(p, c->kind, c->en[c->i].id);
        if (take_d) {
            const base_decision *d = c->en[c->i].rec;
            if (!idset_has(joined, id_hash(d->event_id))) {
                base_decision *copy = base_decision_clone(d);
                if (copy == NULL) {
                    e = BASE_ENOMEM;
                    break;
                }
                if (rwd_join_add_decision(p->join, copy, d->ts_ms) == BASE_OK) {
                    (*out_pending)++;
                } else {
                    base_decision_free(copy); /* a duplicate in the stream (a retried write) */
                }
            }
        } else {
            const base_outcome *o = c->en[c->i].rec;
            rwd_status rs;
            e = o->type == BASE_OUT_ACTIVATE
                    ? rwd_join_activate(p->join, o->event_id, o->arrived_ms, &rs)
                    : rwd_join_add_outcome(p->join, o, o->arrived_ms, &rs);
        }
        c->i++;
        if (e != BASE_OK) {
            break;
        }
    }
    rwd_join_set_replay(p->join, false);
    sto_entries_free(cd.kind, cd.en, cd.n);
    sto_entries_free(co.kind, co.en, co.n);
    return e;
}

base_err svc_engine_restore(svc_engine *e, sto_store *store, char *errbuf, size_t errlen)
{
    for (uint32_t i = 0; i < e->n_pol; i++) {
        pol_rt *p = &e->pol[i];
        base_model *m = NULL;
        bool found = false;
        base_err err = sto_store_model_get_online(store, p->cfg->name, &m, &found);
        if (err != BASE_OK) {
            snprintf(errbuf, errlen, "policy \"%s\": loading snapshot: %s", p->cfg->name,
                     base_strerror(err));
            return err;
        }
        if (found) {
            err = pol_head_restore(p->head, m);
            if (err != BASE_OK) {
                snprintf(errbuf, errlen,
                         "policy \"%s\": snapshot version %" PRIu64 " does not fit the configured "
                         "head (dim %u, %u actions, learner %s): %s",
                         p->cfg->name, m->version, m->dim, m->n_actions, m->learner,
                         base_strerror(err));
                base_model_free(m);
                return err;
            }
            base_strlcpy(p->last_joined_id, m->last_joined_id, sizeof(p->last_joined_id));
            atomic_store(&p->n_updates, pol_head_n_updates(p->head));
            p->last_version = m->version;
        }
        char sd[BASE_STREAM_ID_MAX + 1] = "", so[BASE_STREAM_ID_MAX + 1] = "";
        char sj[BASE_STREAM_ID_MAX + 1] = "";
        uint64_t next_lsn = 0, learned = 0, pending = 0;
        if (found) {
            base_strlcpy(sd, m->scan_decisions, sizeof(sd));
            base_strlcpy(so, m->scan_outcomes, sizeof(so));
            base_strlcpy(sj, m->scan_joined, sizeof(sj));
            next_lsn = m->next_lsn;
        }
        idset joined = {NULL, 0, 0};
        err = replay_joined(p, store, sj, p->last_joined_id, &joined, &learned);
        if (err == BASE_OK) {
            err = replay_join(p, store, sd, so, &joined, &next_lsn, &pending);
        }
        base_free(joined.slot);
        if (err != BASE_OK) {
            snprintf(errbuf, errlen, "policy \"%s\": replaying the streams: %s", p->cfg->name,
                     base_strerror(err));
            base_model_free(m);
            return err;
        }
        /* The scan positions cover everything rebuilt: the first mark. */
        p->next_lsn = next_lsn;
        p->mark_head = 0;
        p->n_marks = 1;
        p->marks[0].lsn = 0;
        base_strlcpy(p->marks[0].tail[STO_DECISIONS], sd, sizeof(p->marks[0].tail[0]));
        base_strlcpy(p->marks[0].tail[STO_OUTCOMES], so, sizeof(p->marks[0].tail[0]));
        base_strlcpy(p->marks[0].tail[STO_JOINED], sj, sizeof(p->marks[0].tail[0]));
        p->snapshot_updates = atomic_load(&p->n_updates);
        p->snapshot_lsn = found ? m->next_lsn : 0;
        base_log(BASE_LOG_INFO,
                 "policy %s: %s; replayed %" PRIu64 " joined examples and rebuilt %" PRIu64
                 " pending decisions (model version %" PRIu64 ", next lsn %" PRIu64 ")",
                 p->cfg->name, found ? "restored the checkpoint" : "no checkpoint", learned,
                 pending, (uint64_t)atomic_load(&p->n_updates), next_lsn);
        base_model_free(m);
    }
    return BASE_OK;
}

/* ---- the learner thread ----------------------------------------------- */

/* Runs on the writer thread once Redis has (or refused) a joined example. */
static void on_joined_stored(void *arg, svc_persist_item *it, base_err result)
{
    pol_rt *p = arg;
    svc_engine *e = p->eng;
    learn_item *li = NULL;
    if (result == BASE_OK) {
        li = base_alloc_zero(1, sizeof(*li));
    }
    if (li == NULL) {
        atomic_fetch_add(&p->c.store_errors, 1);
        atomic_fetch_sub(&e->learn_inflight, 1);
        return;
    }
    set_tail(p, STO_JOINED, it->stream_id);
    li->pol = p;
    li->j = it->rec;
    it->rec = NULL;
    base_strlcpy(li->stream_id, it->stream_id, sizeof(li->stream_id));
    /* Cannot be full: learn_inflight bounds what is expired but not applied. */
    if (base_queue_push(e->learn_q, li) != BASE_OK) {
        atomic_fetch_add(&p->c.learn_errors, 1);
        atomic_fetch_sub(&e->learn_inflight, 1);
        base_joined_free(li->j);
        base_free(li);
    }
}

/* Learn from joined example @j stored at @stream_id (learner thread, or start-up). */
static void learn_one(pol_rt *p, const base_joined *j, const char *stream_id)
{
    base_err err = BASE_OK;
    /* last_joined_id changes under the head's lock, so stats read a consistent pair. */
    pthread_rwlock_wrlock(&p->head_lk);
    /* Unknown examples are in the joined stream for evaluation, but never learned from. */
    if (!j->unknown) {
        err = pol_head_learn(p->head, j->decision, j->reward);
    }
    uint64_t n = pol_head_n_updates(p->head);
    base_strlcpy(p->last_joined_id, stream_id, sizeof(p->last_joined_id));
    p->trace = base_hash64(j->decision->event_id, strlen(j->decision->event_id), p->trace);
    p->trace = base_hash64(&j->reward, sizeof(j->reward), p->trace);
    pthread_rwlock_unlock(&p->head_lk);
    if (j->unknown) {
        return;
    }
    atomic_store(&p->n_updates, n);
    if (err == BASE_OK) {
        atomic_fetch_add(&p->c.updates, 1);
    } else {
        atomic_fetch_add(&p->c.learn_errors, 1);
    }
    atomic_fetch_add(&p->c.joined, 1);
    if (j->defaulted) {
        atomic_fetch_add(&p->c.defaulted, 1);
    }
    atomic_fetch_add(&p->c.reward_micro, (int_fast64_t)llround(j->reward * 1e6));
}

static void apply(svc_engine *e, learn_item *li)
{
    learn_one(li->pol, li->j, li->stream_id);
    base_joined_free(li->j);
    base_free(li);
    atomic_fetch_sub(&e->learn_inflight, 1);
}

/* Hand the policy's backlog of expired examples to persist, oldest first. */
static void flush_backlog(svc_engine *e, pol_rt *p)
{
    size_t k = 0;
    while (k < p->n_backlog) {
        svc_persist_item *it =
            svc_persist_item_new(SVC_PERSIST_APPEND, STO_JOINED, p->cfg->name, p->backlog[k]);
        if (it == NULL) {
            break;
        }
        it->done = on_joined_stored;
        it->done_arg = p;
        if (svc_persist_submit(e->persist, it) != BASE_OK) {
            it->rec = NULL;
            svc_persist_item_free(it);
            break;
        }
        k++;
    }
    memmove(p->backlog, p->backlog + k, (p->n_backlog - k) * sizeof(p->backlog[0]));
    p->n_backlog -= k;
}

static void expire(svc_engine *e, pol_rt *p, int64_t now_ms)
{
    flush_backlog(e, p);
    if (p->n_backlog > 0) {
        return; /* persist is full; try again next tick */
    }
    size_t inflight = atomic_load(&e->learn_inflight);
    size_t room = e->learn_cap > inflight ? e->learn_cap - inflight : 0;
    if (room > EXPIRE_BATCH) {
        room = EXPIRE_BATCH;
    }
    if (room == 0) {
        return;
    }
    pthread_mutex_lock(&p->join_lk);
    size_t n = rwd_join_expire(p->join, now_ms, p->backlog, room);
    pthread_mutex_unlock(&p->join_lk);
    atomic_fetch_add(&e->learn_inflight, n);
    p->n_backlog = n;
    flush_backlog(e, p);
}

/*
 * Apply every expired example (expiring nothing new meanwhile). True once
 * nothing is in flight between the join and the head, the precondition of a
 * checkpoint; false if that did not happen within @timeout_ms (Redis away).
 */
static bool drain_inflight(svc_engine *e, int timeout_ms)
{
    void *items[64];
    uint64_t deadline = base_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    while (atomic_load(&e->learn_inflight) > 0 && base_mono_ns() < deadline) {
        for (uint32_t i = 0; i < e->n_pol; i++) {
            flush_backlog(e, &e->pol[i]);
        }
        size_t n = 0;
        (void)base_queue_pop_batch(e->learn_q, items, 64, 5, &n); /* timeout is normal */
        for (size_t k = 0; k < n; k++) {
            apply(e, items[k]);
        }
    }
    return atomic_load(&e->learn_inflight) == 0;
}

/*
 * Queue a checkpoint of @p: the head, the last applied joined id, and where
 * a replay must start to rebuild the join (docs/architecture.md,
 * "Recovery"). Needs drain_inflight() first: then every decision is either
 * pending (lsn >= the oldest pending lsn, covered by a mark) or joined,
 * stored and applied. Skipped when nothing changed since the last one.
 */
/*
 * What a checkpoint lets retention remove: entries older than the retention
 * window (by the streams' own Redis-time ids), but never at or after a replay
 * position or, for the joined stream, the last applied id. "" = keep all.
 */
static void retention(const svc_engine *e, pol_rt *p, char (*pos)[BASE_STREAM_ID_MAX + 1],
                      svc_trim *out)
{
    char tails[3][BASE_STREAM_ID_MAX + 1];
    memset(out, 0, sizeof(*out));
    out->keep_snapshots = e->cfg->keep_snapshots;
    read_tails(p, tails);
    for (int k = 0; k < 3; k++) {
        unsigned long long ms = 0, seq = 0;
        const char *floor_id = pos[k];
        if (k == STO_JOINED && id_cmp(p->last_joined_id, floor_id) < 0) {
            floor_id = p->last_joined_id;
        }
        if (floor_id[0] == '\0' || sscanf(tails[k], "%llu-%llu", &ms, &seq) != 2 ||
            ms < (unsigned long long)e->cfg->retention_ms) {
            continue; /* replay from the start, or nothing old enough */
        }
        char bound[BASE_STREAM_ID_MAX + 1];
        snprintf(bound, sizeof(bound), "%llu-0", ms - (unsigned long long)e->cfg->retention_ms);
        base_strlcpy(out->minid[k], id_cmp(bound, floor_id) < 0 ? bound : floor_id,
                     sizeof(out->minid[k]));
    }
}

/*
 * A hash of what makes a policy's head and rewards what they are: shape,
 * actions in order, learner settings and the reward spec's version. Stamped
 * on snapshots so a snapshot can be matched to the configuration it grew
 * under.
 */
static void config_hash(const svc_policy_config *c, char *out, size_t size)
{
    char text[512];
    const pol_head_config *h = &c->head;
    char rv[BASE_NAME_MAX + 1];
    rwd_spec_version(&c->reward, rv, sizeof(rv));
    snprintf(text, sizeof(text), "dim %u learner %d explorer %d eps %.17g T %.17g lr %.17g "
             "lambda %.17g prior %.17g bw %.17g gamma %.17g alpha %.17g kl %.17g seed %llu "
             "reward %s",
             h->dim, (int)h->learner, (int)h->explorer, h->epsilon, h->temperature,
             h->learning_rate, h->lambda, h->prior_mean, h->base_weight, h->gamma, h->ucb_alpha,
             h->kl, (unsigned long long)h->seed, rv);
    uint64_t x = base_hash64(text, strlen(text), 0x636f6e66);
    for (uint32_t a = 0; a < c->n_actions; a++) {
        x = base_hash64(c->actions[a], strlen(c->actions[a]), x);
    }
    snprintf(out, size, "c%016llx", (unsigned long long)x);
}

static void checkpoint(svc_engine *e, pol_rt *p)
{
    char pos[3][BASE_STREAM_ID_MAX + 1];
    uint64_t min_lsn = 0;
    pthread_mutex_lock(&p->join_lk);
    bool any = rwd_join_min_lsn(p->join, &min_lsn);
    uint64_t next_lsn = p->next_lsn;
    if (!any) {
        /* Nothing pending: everything stored so far is joined; start at the tails. */
        read_tails(p, pos);
        p->n_marks = 0;
    } else {
        /* The newest mark at or below the oldest pending lsn; older marks are done. */
        size_t keep = 0;
        for (size_t k = 0; k < p->n_marks; k++) {
            if (p->marks[(p->mark_head + k) % MARK_RING].lsn <= min_lsn) {
                keep = k;
            }
        }
        const mark *m = &p->marks[(p->mark_head + keep) % MARK_RING];
        memcpy(pos, m->tail, sizeof(pos));
        p->mark_head = (p->mark_head + keep) % MARK_RING;
        p->n_marks -= keep;
    }
    pthread_mutex_unlock(&p->join_lk);

    uint64_t n = atomic_load(&p->n_updates);
    if (n == p->snapshot_updates && next_lsn == p->snapshot_lsn) {
        return;
    }
    base_model *m = NULL;
    /* The learner thread is the head's only writer: reading it here needs no lock. */
    if (pol_head_snapshot(p->head, &m) != BASE_OK) {
        atomic_fetch_add(&p->c.store_errors, 1);
        return;
    }
    base_strlcpy(m->policy, p->cfg->name, sizeof(m->policy));
    base_strlcpy(m->last_joined_id, p->last_joined_id, sizeof(m->last_joined_id));
    base_strlcpy(m->scan_decisions, pos[STO_DECISIONS], sizeof(m->scan_decisions));
    base_strlcpy(m->scan_outcomes, pos[STO_OUTCOMES], sizeof(m->scan_outcomes));
    base_strlcpy(m->scan_joined, pos[STO_JOINED], sizeof(m->scan_joined));
    m->next_lsn = next_lsn;
    m->parent = p->last_version;
    rwd_spec_version(&p->cfg->reward, m->spec_version, sizeof(m->spec_version));
    base_strlcpy(m->base_version, p->cfg->base_version, sizeof(m->base_version));
    config_hash(p->cfg, m->config_hash, sizeof(m->config_hash));
    m->version = m->n_updates;
    m->ts_ms = base_clock_now_ms(e->clock);
    svc_persist_item *it = svc_persist_item_new(SVC_PERSIST_MODEL, STO_JOINED, p->cfg->name, m);
    if (it == NULL) {
        base_model_free(m);
        return;
    }
    retention(e, p, pos, &it->trim);
    if (svc_persist_submit(e->persist, it) != BASE_OK) {
        svc_persist_item_free(it);
        return; /* queue full: the next interval tries again */
    }
    p->snapshot_updates = n;
    p->snapshot_lsn = next_lsn;
    p->last_version = n;
    atomic_fetch_add(&p->c.snapshots, 1);
}

static void checkpoint_all(svc_engine *e)
{
    if (!drain_inflight(e, 2000)) {
        return; /* Redis is away: keep the last checkpoint */
    }
    for (uint32_t i = 0; i < e->n_pol; i++) {
        checkpoint(e, &e->pol[i]);
    }
}

static void *learner_main(void *arg)
{
    svc_engine *e = arg;
    void *items[64];
    uint64_t last_tick_ns = 0;
    uint64_t last_snap_ns = base_mono_ns();
    const int tick_ms = (int)e->cfg->tick_ms;
    while (!atomic_load(&e->stop)) {
        size_t n = 0;
        (void)base_queue_pop_batch(e->learn_q, items, 64, tick_ms, &n); /* timeout is normal */
        for (size_t k = 0; k < n; k++) {
            apply(e, items[k]);
        }
        /* Ticks follow real time; windows follow the (possibly manual) service clock. */
        uint64_t mono = base_mono_ns();
        if ((mono - last_tick_ns) / 1000000u >= (uint64_t)tick_ms) {
            last_tick_ns = mono;
            int64_t now = base_clock_now_ms(e->clock);
            for (uint32_t i = 0; i < e->n_pol; i++) {
                expire(e, &e->pol[i], now);
            }
        }
        bool due = (mono - last_snap_ns) / 1000000u >= e->cfg->snapshot_interval_ms;
        for (uint32_t i = 0; i < e->n_pol && !due; i++) {
            const pol_rt *p = &e->pol[i];
            due = atomic_load(&p->n_updates) - p->snapshot_updates >= e->cfg->snapshot_every;
        }
        if (due) {
            last_snap_ns = mono;
            checkpoint_all(e);
        }
    }
    /*
     * Drain: join every window already closed, store and apply those
     * examples, then take a final checkpoint. Windows still open stay in the
     * decision and outcome streams, and the checkpoint says where.
     */
    uint64_t deadline = base_mono_ns() + (uint64_t)atomic_load(&e->drain_timeout_ms) * 1000000u;
    int64_t now = base_clock_now_ms(e->clock);
    for (;;) {
        size_t expired = 0;
        for (uint32_t i = 0; i < e->n_pol; i++) {
            size_t before = atomic_load(&e->learn_inflight);
            expire(e, &e->pol[i], now);
            expired += atomic_load(&e->learn_inflight) - before;
        }
        size_t n = 0;
        (void)base_queue_pop_batch(e->learn_q, items, 64, 10, &n); /* timeout is normal */
        for (size_t k = 0; k < n; k++) {
            apply(e, items[k]);
        }
        bool idle = expired == 0 && atomic_load(&e->learn_inflight) == 0;
        if (idle || base_mono_ns() >= deadline) {
            break;
        }
    }
    if (atomic_load(&e->learn_inflight) == 0) {
        for (uint32_t i = 0; i < e->n_pol; i++) {
            checkpoint(e, &e->pol[i]);
        }
    }
    return NULL;
}

base_err svc_engine_start(svc_engine *e)
{
    atomic_store(&e->stop, false);
    if (pthread_create(&e->thread, NULL, learner_main, e) != 0) {
        return BASE_ENOMEM;
    }
    e->started = true;
    return BASE_OK;
}

void svc_engine_stop(svc_engine *e, int drain_timeout_ms)
{
    if (e == NULL || !e->started) {
        return;
    }
    atomic_store(&e->drain_timeout_ms, drain_timeout_ms);
    atomic_store(&e->stop, true);
    pthread_join(e->thread, NULL);
    e->started = false;
}

/* ---- stats and health ------------------------------------------------- */

/* The join's health: statuses of outcomes, expiry results, decision -> outcome latency. */
static void write_join_health(svc_writer *w, const rwd_join_stats *js)
{
    static const char *const bucket_names[RWD_LATENCY_BUCKETS] = {
        "lt_1s", "lt_10s", "lt_1m", "lt_10m", "lt_1h", "lt_6h", "lt_1d", "ge_1d",
    };
    svc_w_str(w, "join");
    svc_w_map(w, 8 + RWD_STATUS_COUNT);
    svc_w_str(w, "pending");
    svc_w_uint(w, js->pending);
    svc_w_str(w, "deferred");
    svc_w_uint(w, js->deferred);
    svc_w_str(w, "joined");
    svc_w_uint(w, js->joined);
    svc_w_str(w, "defaulted");
    svc_w_uint(w, js->defaulted);
    svc_w_str(w, "unknown");
    svc_w_uint(w, js->unknown);
    svc_w_str(w, "not_activated");
    svc_w_uint(w, js->not_activated);
    svc_w_str(w, "dangling");
    svc_w_uint(w, js->dangling + js->status[RWD_UNKNOWN_EVENT]);
    for (int s = 0; s < RWD_STATUS_COUNT; s++) {
        svc_w_str(w, rwd_status_name((rwd_status)s));
        svc_w_uint(w, js->status[s]);
    }
    svc_w_str(w, "latency");
    svc_w_map(w, RWD_LATENCY_BUCKETS);
    for (int b = 0; b < RWD_LATENCY_BUCKETS; b++) {
        svc_w_str(w, bucket_names[b]);
        svc_w_uint(w, js->latency[b]);
    }
}

static void op_stats(svc_engine *e, const svc_request *q, const svc_replier *r)
{
    pol_rt *only = NULL;
    if (q->policy[0] != '\0') {
        only = find_policy(e, q->policy);
        if (only == NULL) {
            reject(e, r, SVC_E_UNKNOWN_POLICY, "no such policy");
            return;
        }
    }
    base_buf b;
    base_buf_init(&b, 4u << 20);
    svc_writer w;
    svc_writer_init(&w, &b);
    svc_w_map(&w, 4);
    svc_w_str(&w, "ok");
    svc_w_bool(&w, true);
    svc_w_str(&w, "policies");
    svc_w_map(&w, only != NULL ? 1 : e->n_pol);
    for (uint32_t i = 0; i < e->n_pol; i++) {
        pol_rt *p = &e->pol[i];
        if (only != NULL && p != only) {
            continue;
        }
        rwd_join_stats js;
        pthread_mutex_lock(&p->join_lk);
        rwd_join_get_stats(p->join, &js);
        pthread_mutex_unlock(&p->join_lk);
        /* The head lock also guards last_joined_id for readers: the learner updates it
         * right after learning, under no lock, so copy it through the same path. */
        char applied[BASE_STREAM_ID_MAX + 1];
        pthread_rwlock_rdlock(&p->head_lk);
        uint64_t checksum = pol_head_checksum(p->head);
        uint64_t model_version = pol_head_n_updates(p->head); /* same instant as the checksum */
        memcpy(applied, p->last_joined_id, sizeof(applied));
        uint64_t trace = p->trace;
        pthread_rwlock_unlock(&p->head_lk);
        pthread_mutex_lock(&p->join_lk);
        uint64_t next_lsn = p->next_lsn;
        pthread_mutex_unlock(&p->join_lk);
        uint64_t joined = atomic_load(&p->c.joined);
        int64_t rsum = atomic_load(&p->c.reward_micro);
        svc_w_str(&w, p->cfg->name);
        svc_w_map(&w, 22);
        svc_w_str(&w, "decisions");
        svc_w_uint(&w, atomic_load(&p->c.decisions));
        svc_w_str(&w, "logged");
        svc_w_uint(&w, atomic_load(&p->c.logged));
        svc_w_str(&w, "unlogged");
        svc_w_uint(&w, atomic_load(&p->c.unlogged));
        svc_w_str(&w, "feedback");
        svc_w_uint(&w, atomic_load(&p->c.feedback));
        svc_w_str(&w, "duplicates");
        svc_w_uint(&w, atomic_load(&p->c.duplicates));
        svc_w_str(&w, "unknown_event");
        svc_w_uint(&w, atomic_load(&p->c.unknown_event));
        svc_w_str(&w, "pending");
        svc_w_uint(&w, js.pending);
        svc_w_str(&w, "joined");
        svc_w_uint(&w, joined);
        svc_w_str(&w, "defaulted");
        svc_w_uint(&w, atomic_load(&p->c.defaulted));
        svc_w_str(&w, "mean_reward");
        svc_w_double(&w, joined > 0 ? (double)rsum * 1e-6 / (double)joined : 0.0);
        svc_w_str(&w, "updates");
        svc_w_uint(&w, atomic_load(&p->c.updates));
        svc_w_str(&w, "learn_errors");
        svc_w_uint(&w, atomic_load(&p->c.learn_errors));
        svc_w_str(&w, "store_errors");
        svc_w_uint(&w, atomic_load(&p->c.store_errors));
        svc_w_str(&w, "snapshots");
        svc_w_uint(&w, atomic_load(&p->c.snapshots));
        svc_w_str(&w, "model_version");
        svc_w_uint(&w, model_version);
        svc_w_str(&w, "model_checksum");
        char hex[17];
        snprintf(hex, sizeof(hex), "%016" PRIx64, checksum);
        svc_w_str(&w, hex);
        svc_w_str(&w, "dim");
        svc_w_uint(&w, p->cfg->head.dim);
        svc_w_str(&w, "last_applied_id");
        svc_w_str(&w, applied);
        svc_w_str(&w, "next_lsn");
        svc_w_uint(&w, next_lsn);
        svc_w_str(&w, "learn_trace");
        char th[17];
        snprintf(th, sizeof(th), "%016" PRIx64, trace);
        svc_w_str(&w, th);
        svc_w_str(&w, "reward_version");
        char version[BASE_NAME_MAX + 1];
        rwd_spec_version(&p->cfg->reward, version, sizeof(version));
        svc_w_str(&w, version);
        write_join_health(&w, &js);
    }
    svc_w_str(&w, "rejected");
    uint32_t n_rej = 0;
    for (int c = 1; c < SVC_E_COUNT; c++) {
        n_rej += atomic_load(&e->rejected[c]) > 0;
    }
    svc_w_map(&w, n_rej);
    for (int c = 1; c < SVC_E_COUNT; c++) {
        uint64_t v = atomic_load(&e->rejected[c]);
        if (v > 0) {
            svc_w_str(&w, svc_errcode_name((svc_errcode)c));
            svc_w_uint(&w, v);
        }
    }
    svc_w_str(&w, "storage");
    svc_w_map(&w, 6);
    svc_w_str(&w, "redis");
    svc_w_str(&w, svc_persist_redis_up(e->persist) ? "up" : "down");
    svc_w_str(&w, "queue_depth");
    svc_w_uint(&w, svc_persist_depth(e->persist));
    svc_w_str(&w, "queue_capacity");
    svc_w_uint(&w, svc_persist_capacity(e->persist));
    svc_w_str(&w, "written");
    svc_w_uint(&w, svc_persist_written(e->persist));
    svc_w_str(&w, "failed");
    svc_w_uint(&w, svc_persist_failed(e->persist));
    svc_w_str(&w, "trimmed");
    svc_w_uint(&w, svc_persist_trimmed(e->persist));
    if (svc_writer_finish(&w) == BASE_OK) {
        send_buf(r, &b);
    } else {
        reject(e, r, SVC_E_INTERNAL, "stats too large");
    }
    base_buf_fini(&b);
}

static void op_health(svc_engine *e, const svc_replier *r)
{
    bool up = svc_persist_redis_up(e->persist);
    base_buf b;
    base_buf_init(&b, 256);
    svc_writer w;
    svc_writer_init(&w, &b);
    svc_w_map(&w, 3);
    svc_w_str(&w, "ok");
    svc_w_bool(&w, true);
    svc_w_str(&w, "status");
    svc_w_str(&w, up ? "ready" : "degraded");
    svc_w_str(&w, "redis");
    svc_w_str(&w, up ? "up" : "down");
    if (svc_writer_finish(&w) == BASE_OK) {
        send_buf(r, &b);
    }
    base_buf_fini(&b);
}

void svc_engine_handle(svc_engine *e, const svc_request *q, const svc_replier *r)
{
    if (q->op == SVC_OP_HEALTH) {
        op_health(e, r);
        return;
    }
    if (q->op == SVC_OP_STATS) {
        op_stats(e, q, r);
        return;
    }
    if (q->op == SVC_OP_CLOCK) {
        op_clock(e, q, r);
        return;
    }
    pol_rt *p = find_policy(e, q->policy);
    if (p == NULL) {
        char msg[SVC_WIRE_MSG_MAX];
        snprintf(msg, sizeof(msg), "no policy named \"%s\"", q->policy);
        reject(e, r, SVC_E_UNKNOWN_POLICY, msg);
        return;
    }
    switch (q->op) {
    case SVC_OP_DECIDE:
        op_decide(e, p, q, r);
        break;
    case SVC_OP_LOG:
        op_log(e, p, q, r);
        break;
    case SVC_OP_FEEDBACK:
        op_outcome(e, p, q, r, BASE_OUT_SIGNAL);
        break;
    case SVC_OP_ACTIVATE:
        op_outcome(e, p, q, r, BASE_OUT_ACTIVATE);
        break;
    default:
        reject(e, r, SVC_E_UNKNOWN_OP, "unknown op");
        break;
    }
}

bool svc_engine_model_info(svc_engine *e, const char *name, uint64_t *out_n_updates,
                           uint64_t *out_checksum)
{
    pol_rt *p = find_policy(e, name);
    if (p == NULL) {
        return false;
    }
    pthread_rwlock_rdlock(&p->head_lk);
    *out_n_updates = pol_head_n_updates(p->head);
    *out_checksum = pol_head_checksum(p->head);
    pthread_rwlock_unlock(&p->head_lk);
    return true;
}
