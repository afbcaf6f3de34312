#include "client/sim.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/hash.h"
#include "base/record.h"
#include "bench/dataset.h"
#include "client/rlfeed_client.h"

#define SIM_MAX_N 100000000ull      /* interactions in one run */
#define SIM_MAX_CLIENTS 64u         /* frontend threads */
#define SIM_SHOW_ERRORS 10u         /* errors printed one by one; the rest are only counted */
#define SIM_MAX_TRANSPORT_ERRORS 20u /* give up after this many timeouts/lost connections */
#define SIM_DEFAULT_TIMEOUT_MS 5000
#define SIM_MAX_TURNS 1000u         /* turns per conversation */
#define SIM_MAX_DELAY_MS 3600000u   /* --delay-ms */
#define SIM_MAX_PENDING 65536u      /* delayed feedbacks queued per frontend */
#define SIM_DEMO_WINDOW_MS 1000u    /* window_ms of examples/demo.ini, for the --delay-ms warning */
#define ORDER_SALT 0x6f72646572ull  /* "order" */
#define THUMBS_SALT 0x7468756d6273ull /* "thumbs" */
#define DELAY_SALT 0x64656c6179ull  /* "delay" */

typedef struct sim_opts {
    const char *url;
    const char *policy;
    const char *data; /* NULL: the synthetic intents */
    const char *prefix;
    uint64_t n;
    uint64_t block;
    uint64_t seed;
    uint32_t clients;
    uint32_t dim;
    uint32_t turns;    /* interactions per conversation; 1: no conversations */
    uint64_t delay_ms; /* feedback is posted uniform [0, delay_ms] after its decide */
    double base_acc;
    double thumbs_rate;
    double thumbs_noise;
    int timeout_ms;
} sim_opts;

/* Per-block accumulators, written by any worker; read by the printer once complete. */
typedef struct sim_block {
    atomic_uint_fast64_t done;        /* interactions finished (ok or not) */
    atomic_uint_fast64_t decided;     /* decides answered ok */
    atomic_uint_fast64_t base_hits;   /* argmax(base logits) == label */
    atomic_uint_fast64_t served_hits; /* chosen == label */
    atomic_uint_fast64_t max_version; /* highest model_version seen */
    atomic_uint_fast64_t t_start_ns;
    atomic_uint_fast64_t t_done_ns;
    atomic_int complete;              /* set after t_done_ns: the block may be printed */
} sim_block;

typedef struct sim_run {
    const sim_opts *o;
    const rlfeed_dataset *d;
    const rlfeed_base_model *m;
    uint32_t *order;      /* [n] dataset row of each interaction */
    char (*ids)[BASE_NAME_MAX + 1]; /* [n_classes] action ids */
    const char **id_ptr;  /* [n_classes] pointers into ids */
    sim_block *blocks;    /* [n_blocks] */
    uint64_t n_blocks;
    uint64_t start_ns;
    atomic_uint_fast64_t next; /* next conversation (turns == 1: interaction) to take */
    atomic_bool stop;
    atomic_uint_fast64_t n_errors;
    atomic_uint_fast64_t n_transport;
    atomic_uint_fast64_t by_code[SVC_E_COUNT];      /* error replies */
    atomic_uint_fast64_t by_err[BASE_EINTERNAL + 1]; /* transport failures */
    atomic_uint_fast64_t n_conv_outcomes; /* conversation-level outcomes acknowledged */
    atomic_uint_fast64_t n_late;          /* outcomes answered "late": after the join window */
    atomic_uint_fast64_t n_dropped;       /* delayed feedbacks not sent (the run stopped) */
    atomic_uint_fast64_t max_queued;      /* deepest delayed-feedback queue of any frontend */
    pthread_mutex_t print_lk;
    uint64_t next_print;       /* guarded by print_lk */
    double last_served_acc;    /* guarded by print_lk; NAN before the first row */
} sim_run;

/* What a queued feedback sends when it falls due. */
enum sim_fb_kind {
    SIM_FB_TURN, /* turns == 1: "resolved", then maybe thumbs; turns > 1: maybe thumbs */
    SIM_FB_CONV, /* "resolved" for the conversation, by conversation_id */
};

/* One delayed feedback: all of it is derived again from (seed, i) when sent. */
typedef struct sim_pending {
    uint64_t due_ns; /* base_mono_ns() time to send it */
    uint64_t seq;    /* tie-break: equal due times go out in scheduling order */
    uint64_t i;      /* the interaction it follows (for SIM_FB_CONV: the final turn) */
    uint8_t kind;    /* enum sim_fb_kind */
    bool correct;    /* the served intent was the label */
} sim_pending;

typedef struct sim_worker {
    sim_run *run;
    rlfeed_client *client;
    float *emb;    /* [dim] */
    float *logits; /* [n_classes] */
    svc_reply reply;
    base_buf req;  /* conversation requests, reused */
    /* Delayed feedbacks: a binary min-heap on (due_ns, seq), only this thread's. */
    sim_pending *heap; /* [cap], cap <= SIM_MAX_PENDING */
    uint32_t n_heap;
    uint32_t cap;
    uint64_t seq;
    pthread_t thread;
} sim_worker;

static const char usage_text[] =
    "usage: rlfeed sim [options]\n"
    "  --url URL            service (default $RLFEED_URL or " RLFEED_CLIENT_DEFAULT_URL ")\n"
    "  --policy NAME        policy (default intents)\n"
    "  --data CSV           header line, then label,feature,... rows (default: synthetic\n"
    "                       intents, 8 classes x 24 features)\n"
    "  --n N                interactions (default 60000)\n"
    "  --clients C          concurrent frontends, one thread + connection each (default 4)\n"
    "  --block B            interactions per output row (default 5000)\n"
    "  --seed S             seed of data, base model, order and feedback (default 1)\n"
    "  --dim D              embedding dimension (default 64)\n"
    "  --actions-prefix P   action ids are P0..P{K-1} (default intent_)\n"
    "  --base-accuracy A    target accuracy of the frozen base model (default 0.68)\n"
    "  --thumbs-rate R      probability of a thumbs signal (default 0.3)\n"
    "  --thumbs-noise Q     probability a thumbs signal is flipped (default 0.1)\n"
    "  --turns T            interactions per conversation (default 1: none); with T > 1\n"
    "                       \"resolved\" is sent once per conversation, by conversation_id\n"
    "  --delay-ms D         post each outcome uniform [0, D] ms after its decide\n"
    "                       (default 0); keep D below the policy's window_ms\n"
    "  --timeout-ms N       per request send/receive bound (default 5000)\n";

const char *rlfeed_sim_usage(void)
{
    return usage_text;
}

/* ---- option parsing ---- */

/*
 * Match "--name VALUE" or "--name=VALUE" at argv[*i]. Returns 1 and *out_val
 * on a match (advancing *i past a separate value), -1 if the value is
 * missing, 0 if argv[*i] is another option.
 */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **out_val)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    int rc = 0;

    if (strncmp(a, name, n) == 0) {
        if (a[n] == '=') {
            *out_val = a + n + 1;
            rc = 1;
        } else if (a[n] == '\0') {
            rc = -1;
            if (*i + 1 < argc) {
                *i += 1;
                *out_val = argv[*i];
                rc = 1;
            }
        }
    }
    return rc;
}

static bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v;
    bool ok = false;

    if (s != NULL && s[0] >= '0' && s[0] <= '9') {
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno == 0 && *end == '\0' && v >= lo && v <= hi) {
            *out = v;
            ok = true;
        }
    }
    return ok;
}

static bool parse_prob(const char *s, bool open_interval, double *out)
{
    char *end = NULL;
    double v;
    bool ok = false;

    if (s != NULL && s[0] != '\0') {
        errno = 0;
        v = strtod(s, &end);
        if (errno == 0 && *end == '\0' && v >= 0.0 && v <= 1.0 &&
            (!open_interval || (v > 0.0 && v < 1.0))) {
            *out = v;
            ok = true;
        }
    }
    return ok;
}

enum opt_kind { OPT_STR, OPT_U64, OPT_U32, OPT_INT, OPT_PROB, OPT_PROB_OPEN };

typedef struct opt_spec {
    const char *name;
    enum opt_kind kind;
    void *dst;      /* const char **, uint64_t *, uint32_t *, int * or double * */
    uint64_t lo;    /* integer kinds: inclusive bounds */
    uint64_t hi;
} opt_spec;

static bool opt_store(const opt_spec *s, const char *v)
{
    uint64_t u = 0;
    bool ok = true;

    switch (s->kind) {
    case OPT_STR:
        *(const char **)s->dst = v;
        break;
    case OPT_U64:
        ok = parse_u64(v, s->lo, s->hi, s->dst);
        break;
    case OPT_U32:
        ok = parse_u64(v, s->lo, s->hi, &u);
        *(uint32_t *)s->dst = (uint32_t)u;
        break;
    case OPT_INT:
        ok = parse_u64(v, s->lo, s->hi, &u);
        *(int *)s->dst = (int)u;
        break;
    case OPT_PROB:
    case OPT_PROB_OPEN:
        ok = parse_prob(v, s->kind == OPT_PROB_OPEN, s->dst);
        break;
    }
    return ok;
}

/* Returns 0 to run, 1 after --help, 2 on a usage error (reported on stderr). */
static int parse_opts(int argc, char **argv, sim_opts *o)
{
    const opt_spec specs[] = {
        {"--url", OPT_STR, &o->url, 0, 0},
        {"--policy", OPT_STR, &o->policy, 0, 0},
        {"--data", OPT_STR, &o->data, 0, 0},
        {"--actions-prefix", OPT_STR, &o->prefix, 0, 0},
        {"--n", OPT_U64, &o->n, 1, SIM_MAX_N},
        {"--block", OPT_U64, &o->block, 1, SIM_MAX_N},
        {"--seed", OPT_U64, &o->seed, 0, UINT64_MAX},
        {"--clients", OPT_U32, &o->clients, 1, SIM_MAX_CLIENTS},
        {"--dim", OPT_U32, &o->dim, 1, BASE_DIM_MAX},
        {"--turns", OPT_U32, &o->turns, 1, SIM_MAX_TURNS},
        {"--delay-ms", OPT_U64, &o->delay_ms, 0, SIM_MAX_DELAY_MS},
        {"--timeout-ms", OPT_INT, &o->timeout_ms, 1, 3600000},
        {"--base-accuracy", OPT_PROB_OPEN, &o->base_acc, 0, 0},
        {"--thumbs-rate", OPT_PROB, &o->thumbs_rate, 0, 0},
        {"--thumbs-noise", OPT_PROB, &o->thumbs_noise, 0, 0},
    };
    const size_t n_specs = sizeof(specs) / sizeof(specs[0]);
    int rc = 2;

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        size_t s = 0;
        int m = 0;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            rc = 1;
            goto done;
        }
        while (s < n_specs && m == 0) {
            m = opt_value(argc, argv, &i, specs[s].name, &v);
            s += m == 0;
        }
        if (m == 0) {
            fprintf(stderr, "rlfeed sim: unknown argument '%s'\n", a);
            goto done;
        }
        if (m < 0) {
            fprintf(stderr, "rlfeed sim: %s needs a value\n", a);
            goto done;
        }
        if (!opt_store(&specs[s], v)) {
            fprintf(stderr, "rlfeed sim: bad value '%s' for %s\n", v, specs[s].name);
            goto done;
        }
    }
    rc = 0;

done:
    return rc;
}

/* ---- errors ---- */

static void note_reply_error(sim_run *run, uint64_t i, const char *what, const svc_reply *r)
{
    svc_errcode c = r->error.code < SVC_E_COUNT ? r->error.code : SVC_E_INTERNAL;

    atomic_fetch_add(&run->by_code[c], 1);
    if (atomic_fetch_add(&run->n_errors, 1) < SIM_SHOW_ERRORS) {
        fprintf(stderr, "rlfeed sim: interaction %" PRIu64 ": %s: %s: %s\n", i, what,
                svc_errcode_name(c), r->error.message);
    }
}

static void note_transport_error(sim_run *run, uint64_t i, const char *what, base_err e)
{
    unsigned idx = (unsigned)e <= BASE_EINTERNAL ? (unsigned)e : BASE_EINTERNAL;

    atomic_fetch_add(&run->by_err[idx], 1);
    if (atomic_fetch_add(&run->n_errors, 1) < SIM_SHOW_ERRORS) {
        fprintf(stderr, "rlfeed sim: interaction %" PRIu64 ": %s: %s\n", i, what,
                base_strerror(e));
    }
    if (atomic_fetch_add(&run->n_transport, 1) + 1 == SIM_MAX_TRANSPORT_ERRORS) {
        fprintf(stderr, "rlfeed sim: %u transport errors, stopping\n",
                SIM_MAX_TRANSPORT_ERRORS);
        atomic_store(&run->stop, true);
    }
}

/* ---- output ---- */

static double ratio(uint64_t num, uint64_t den)
{
    return den == 0 ? NAN : (double)num / (double)den;
}

static void print_header(void)
{
    printf("%5s %12s %9s %10s %13s %13s\n", "block", "interactions", "base_acc", "served_acc",
           "model_version", "decides_per_s");
    fflush(stdout);
}

/* Print every complete block that follows the last printed one, in order. */
static void print_ready(sim_run *run)
{
    const sim_opts *o = run->o;

    pthread_mutex_lock(&run->print_lk);
    while (run->next_print < run->n_blocks &&
           atomic_load(&run->blocks[run->next_print].complete)) {
        sim_block *b = &run->blocks[run->next_print];
        uint64_t done = atomic_load(&b->done);
        uint64_t decided = atomic_load(&b->decided);
        uint64_t so_far = (run->next_print + 1) * o->block;
        double secs = (double)(atomic_load(&b->t_done_ns) - atomic_load(&b->t_start_ns)) / 1e9;
        double served = ratio(atomic_load(&b->served_hits), decided);

        if (so_far > o->n) {
            so_far = o->n;
        }
        printf("%5" PRIu64 " %12" PRIu64 " %9.4f %10.4f %13" PRIu64 " %13.0f\n",
               run->next_print + 1, so_far, ratio(atomic_load(&b->base_hits), done), served,
               (uint64_t)atomic_load(&b->max_version), secs > 0.0 ? (double)decided / secs : 0.0);
        fflush(stdout);
        run->last_served_acc = served;
        run->next_print++;
    }
    pthread_mutex_unlock(&run->print_lk);
}

/* ---- requests the client library has no call for ---- */

/* {"v":1, "op":@op, ...}: @n_more pairs follow. */
static void write_header(svc_writer *wr, const char *op, uint32_t n_more)
{
    svc_w_map(wr, 2 + n_more);
    svc_w_str(wr, "v");
    svc_w_int(wr, SVC_WIRE_VERSION);
    svc_w_str(wr, "op");
    svc_w_str(wr, op);
}

/* Send the request built in w->req and decode its reply into w->reply. */
static base_err call_req(sim_worker *w)
{
    uint8_t *rep = NULL;
    size_t rep_len = 0;
    base_err e;

    e = rlfeed_client_call(w->client, w->req.data, w->req.len, &rep, &rep_len);
    if (e == BASE_OK) {
        e = svc_wire_decode_reply(rep, rep_len, &w->reply);
    }
    base_free(rep);
    return e;
}

/* rlfeed_client_decide() plus "conversation_id" and "turn" (protocol.md section 3). */
static base_err decide_turn(sim_worker *w, const char *event_id, const char *conv_id,
                            uint32_t turn)
{
    const sim_run *run = w->run;
    uint32_t k = run->d->n_classes;
    svc_writer wr;
    base_err e;

    base_buf_reset(&w->req);
    svc_writer_init(&wr, &w->req);
    write_header(&wr, "decide", 6);
    svc_w_str(&wr, "policy");
    svc_w_str(&wr, run->o->policy);
    svc_w_str(&wr, "event_id");
    svc_w_str(&wr, event_id);
    svc_w_str(&wr, "conversation_id");
    svc_w_str(&wr, conv_id);
    svc_w_str(&wr, "turn");
    svc_w_uint(&wr, turn);
    svc_w_str(&wr, "context");
    svc_w_map(&wr, 1);
    svc_w_str(&wr, "embedding");
    svc_w_f32_bin(&wr, w->emb, run->o->dim);
    svc_w_str(&wr, "candidates");
    svc_w_array(&wr, k);
    for (uint32_t a = 0; a < k; a++) {
        svc_w_map(&wr, 2);
        svc_w_str(&wr, "id");
        svc_w_str(&wr, run->id_ptr[a]);
        svc_w_str(&wr, "base_logit");
        svc_w_double(&wr, w->logits[a]);
    }
    e = svc_writer_finish(&wr);
    if (e == BASE_OK) {
        e = call_req(w);
    }
    return e;
}

/* Acknowledged feedback addressed to a conversation instead of an event. */
static base_err feedback_conv(sim_worker *w, const char *conv_id, const char *signal,
                              double value, const char *outcome_id)
{
    svc_writer wr;
    base_err e;

    base_buf_reset(&w->req);
    svc_writer_init(&wr, &w->req);
    write_header(&wr, "feedback", 5);
    svc_w_str(&wr, "policy");
    svc_w_str(&wr, w->run->o->policy);
    svc_w_str(&wr, "conversation_id");
    svc_w_str(&wr, conv_id);
    svc_w_str(&wr, "signal");
    svc_w_str(&wr, signal);
    svc_w_str(&wr, "value");
    svc_w_double(&wr, value);
    svc_w_str(&wr, "outcome_id");
    svc_w_str(&wr, outcome_id);
    e = svc_writer_finish(&wr);
    if (e == BASE_OK) {
        e = call_req(w);
    }
    return e;
}

/* ---- feedback ---- */

/* "sim-<seed>-<i>" for event ids, "sim-<seed>-c<n>" for conversation n. */
static bool format_id(char *buf, size_t size, uint64_t seed, const char *kind, uint64_t n)
{
    int len = snprintf(buf, size, "sim-%" PRIu64 "-%s%" PRIu64, seed, kind, n);
    return len >= 0 && (size_t)len < size;
}

/*
 * Acknowledged feedback for @id: an event id, or with @conv a conversation id.
 * Returns false (after counting it) if it failed.
 */
static bool send_feedback(sim_worker *w, uint64_t i, const char *id, bool conv,
                          const char *signal, double value, const char *oid_suffix)
{
    sim_run *run = w->run;
    char oid[BASE_ID_MAX + 1];
    bool ok = false;
    base_err e;
    int n;

    n = snprintf(oid, sizeof(oid), "%s-%s", id, oid_suffix);
    if (n < 0 || (size_t)n >= sizeof(oid)) {
        note_transport_error(run, i, "feedback outcome_id", BASE_ELIMIT);
        goto done;
    }
    if (conv) {
        e = feedback_conv(w, id, signal, value, oid);
    } else {
        e = rlfeed_client_feedback(w->client, run->o->policy, id, signal, value, oid,
                                   &w->reply);
    }
    if (e != BASE_OK) {
        note_transport_error(run, i, "feedback", e);
    } else if (!w->reply.ok) {
        note_reply_error(run, i, "feedback", &w->reply);
    } else {
        ok = true;
        if (strcmp(w->reply.status, "late") == 0) {
            atomic_fetch_add(&run->n_late, 1); /* accepted, but never learned from */
        }
    }

done:
    return ok;
}

/* Thumbs: with probability thumbs_rate, matching @correct unless flipped. */
static void maybe_thumbs(sim_worker *w, uint64_t i, const char *event_id, bool correct)
{
    const sim_opts *o = w->run->o;
    uint64_t state = base_hash64(&i, sizeof(i), o->seed ^ THUMBS_SALT);
    double u_rate = base_u64_to_unit(base_splitmix64(&state));
    double u_flip = base_u64_to_unit(base_splitmix64(&state));

    if (u_rate < o->thumbs_rate) {
        bool up = u_flip < o->thumbs_noise ? !correct : correct;
        (void)send_feedback(w, i, event_id, false, up ? "thumbs_up" : "thumbs_down", 1.0,
                            "thumbs"); /* failures are counted inside */
    }
}

/* Send what @p stands for, now. */
static void deliver(sim_worker *w, const sim_pending *p)
{
    sim_run *run = w->run;
    const sim_opts *o = run->o;
    char id[BASE_ID_MAX + 1];
    double value = p->correct ? 1.0 : 0.0;

    if (p->kind == SIM_FB_CONV) {
        if (!format_id(id, sizeof(id), o->seed, "c", p->i / o->turns)) {
            note_transport_error(run, p->i, "conversation_id", BASE_ELIMIT);
        } else if (send_feedback(w, p->i, id, true, "resolved", value, "resolved")) {
            atomic_fetch_add(&run->n_conv_outcomes, 1);
        }
    } else if (!format_id(id, sizeof(id), o->seed, "", p->i)) {
        note_transport_error(run, p->i, "event_id", BASE_ELIMIT);
    } else if (o->turns > 1) {
        maybe_thumbs(w, p->i, id, p->correct); /* "resolved" is the conversation's */
    } else if (send_feedback(w, p->i, id, false, "resolved", value, "resolved")) {
        maybe_thumbs(w, p->i, id, p->correct);
    }
}

/* ---- the delayed-feedback queue (one per frontend, no locking) ---- */

static bool pending_before(const sim_pending *a, const sim_pending *b)
{
    return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->seq < b->seq);
}

static void heap_swap(sim_pending *h, uint32_t a, uint32_t b)
{
    sim_pending t = h[a];
    h[a] = h[b];
    h[b] = t;
}

/* Remove the earliest entry into *out. The heap must not be empty. */
static void heap_pop(sim_worker *w, sim_pending *out)
{
    sim_pending *h = w->heap;
    uint32_t i = 0;

    *out = h[0];
    h[0] = h[--w->n_heap];
    for (;;) {
        uint32_t l = 2 * i + 1;
        uint32_t best = i;
        if (l < w->n_heap && pending_before(&h[l], &h[best])) {
            best = l;
        }
        if (l + 1 < w->n_heap && pending_before(&h[l + 1], &h[best])) {
            best = l + 1;
        }
        if (best == i) {
            break;
        }
        heap_swap(h, i, best);
        i = best;
    }
}

/* Grow the heap by doubling, up to SIM_MAX_PENDING. Returns false if it cannot. */
static bool heap_grow(sim_worker *w)
{
    uint32_t cap = w->cap == 0 ? 256 : 2 * w->cap;
    sim_pending *h;

    if (w->cap >= SIM_MAX_PENDING) {
        return false;
    }
    if (cap > SIM_MAX_PENDING) {
        cap = SIM_MAX_PENDING;
    }
    h = base_realloc_array(w->heap, cap, sizeof(*h));
    if (h == NULL) {
        return false;
    }
    w->heap = h;
    w->cap = cap;
    return true;
}

/* Sleep until base_mono_ns() reaches @due_ns (a due time, not an event to wait for). */
static void sleep_until(uint64_t due_ns)
{
    uint64_t now = base_mono_ns();

    while (now < due_ns) {
        uint64_t left = due_ns - now;
        struct timespec ts = {.tv_sec = (time_t)(left / 1000000000u),
                              .tv_nsec = (long)(left % 1000000000u)};
        (void)nanosleep(&ts, NULL); /* an early wake-up (EINTR) just loops */
        now = base_mono_ns();
    }
}

/* Send every queued feedback due by now. */
static void flush_due(sim_worker *w)
{
    uint64_t now = base_mono_ns();
    sim_pending p;

    while (w->n_heap > 0 && w->heap[0].due_ns <= now) {
        heap_pop(w, &p);
        deliver(w, &p);
        now = base_mono_ns();
    }
}

/*
 * Queue the feedback of interaction @i (kind @kind) to go out D' ms after now,
 * D' uniform in [0, delay_ms] from hash(i, seed). With no delay it goes out at
 * once, as without a queue. A full queue (SIM_MAX_PENDING, or no memory) first
 * sends its earliest entry, waiting for its due time: memory stays bounded and
 * no feedback goes out early.
 */
static void schedule(sim_worker *w, uint64_t i, enum sim_fb_kind kind, bool correct)
{
    const sim_opts *o = w->run->o;
    sim_pending p = {.i = i, .kind = (uint8_t)kind, .correct = correct, .seq = w->seq++};
    uint64_t state = base_hash64(&i, sizeof(i), o->seed ^ DELAY_SALT);
    double u = base_u64_to_unit(base_splitmix64(&state));
    uint32_t at;

    if (o->delay_ms == 0) {
        deliver(w, &p);
        return;
    }
    if (kind == SIM_FB_CONV) {
        u = base_u64_to_unit(base_splitmix64(&state)); /* not the final turn's own delay */
    }
    p.due_ns = base_mono_ns() + (uint64_t)(u * (double)o->delay_ms * 1e6);
    if (w->n_heap == w->cap && !heap_grow(w)) {
        sim_pending first;
        heap_pop(w, &first);
        sleep_until(first.due_ns);
        deliver(w, &first);
    }
    at = w->n_heap++;
    w->heap[at] = p;
    while (at > 0 && pending_before(&w->heap[at], &w->heap[(at - 1) / 2])) {
        heap_swap(w->heap, at, (at - 1) / 2);
        at = (at - 1) / 2;
    }
    uint64_t seen = atomic_load(&w->run->max_queued);
    while (w->n_heap > seen &&
           !atomic_compare_exchange_weak(&w->run->max_queued, &seen, w->n_heap)) {
        /* seen was reloaded: retry while ours is still higher */
    }
}

/* At the end: send the rest at their due times, or count them dropped if the run stopped. */
static void drain(sim_worker *w)
{
    sim_pending p;

    while (w->n_heap > 0) {
        heap_pop(w, &p);
        if (atomic_load(&w->run->stop)) {
            atomic_fetch_add(&w->run->n_dropped, 1);
            continue;
        }
        sleep_until(p.due_ns);
        deliver(w, &p);
    }
}

/* ---- one interaction ---- */

/* Interactions in block @b: the last one may be short. */
static uint64_t block_size(const sim_run *run, uint64_t b)
{
    uint64_t first = b * run->o->block;
    uint64_t left = run->o->n - first;
    return left < run->o->block ? left : run->o->block;
}

static uint32_t argmax_f(const float *v, uint32_t n)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++) {
        if (v[i] > v[best]) {
            best = i;
        }
    }
    return best;
}

/*
 * Interaction @i, turn @turn (1-based; 0 without conversations) of
 * conversation @conv_id (NULL without). Returns whether the decide succeeded,
 * and *out_correct whether it served the label.
 */
static bool interact(sim_worker *w, uint64_t i, const char *conv_id, uint32_t turn,
                     bool *out_correct)
{
    sim_run *run = w->run;
    const sim_opts *o = run->o;
    uint32_t row = run->order[i];
    uint32_t label = run->d->label[row];
    uint32_t k = run->d->n_classes;
    sim_block *b = &run->blocks[i / o->block];
    char event_id[BASE_ID_MAX + 1];
    bool base_hit;
    bool served_hit = false;
    bool decided = false;
    uint64_t total;
    base_err e;

    if (i % o->block == 0) {
        atomic_store(&b->t_start_ns, base_mono_ns());
    }
    rlfeed_base_model_embed(run->m, row, w->emb);
    rlfeed_base_model_logits(run->m, row, w->logits);
    base_hit = argmax_f(w->logits, k) == label;
    if (!format_id(event_id, sizeof(event_id), o->seed, "", i)) {
        note_transport_error(run, i, "event_id", BASE_ELIMIT);
        goto account;
    }
    if (conv_id != NULL) {
        e = decide_turn(w, event_id, conv_id, turn);
    } else {
        e = rlfeed_client_decide(w->client, o->policy, event_id, w->emb, o->dim, k,
                                 run->id_ptr, w->logits, &w->reply);
    }
    if (e != BASE_OK) {
        note_transport_error(run, i, "decide", e);
        goto account;
    }
    if (!w->reply.ok) {
        note_reply_error(run, i, "decide", &w->reply);
        goto account;
    }
    if (w->reply.chosen_index >= k ||
        strcmp(w->reply.chosen, run->ids[w->reply.chosen_index]) != 0) {
        note_transport_error(run, i, "decide reply names no candidate", BASE_EPROTO);
        goto account;
    }
    decided = true;
    served_hit = w->reply.chosen_index == label;
    uint64_t v = w->reply.model_version;
    uint64_t seen = atomic_load(&b->max_version);
    while (v > seen && !atomic_compare_exchange_weak(&b->max_version, &seen, v)) {
        /* seen was reloaded: retry while ours is still higher */
    }
    schedule(w, i, SIM_FB_TURN, served_hit);

account:
    atomic_fetch_add(&b->base_hits, base_hit);
    atomic_fetch_add(&b->served_hits, served_hit);
    atomic_fetch_add(&b->decided, decided);
    total = atomic_fetch_add(&b->done, 1) + 1;
    if (total == block_size(run, i / o->block)) {
        atomic_store(&b->t_done_ns, base_mono_ns());
        atomic_store(&b->complete, 1);
        print_ready(run);
    }
    *out_correct = served_hit;
    return decided;
}

/*
 * Conversation @c: interactions c*T .. min(c*T + T, n) - 1, one frontend, in
 * order, turns 1..T. Its "resolved" (1 if the final turn served the label)
 * follows the final turn's decide, addressed by conversation_id, so the
 * daemon's credit rule spreads it over the conversation's open decisions.
 */
static void converse(sim_worker *w, uint64_t c)
{
    const sim_opts *o = w->run->o;
    uint64_t first = c * o->turns;
    uint64_t end = first + o->turns < o->n ? first + o->turns : o->n;
    char conv_id[BASE_ID_MAX + 1];
    bool correct = false;
    bool decided = false;
    uint64_t i = first;

    if (o->turns == 1) {
        flush_due(w);
        (void)interact(w, first, NULL, 0, &correct); /* errors are counted inside */
        return;
    }
    if (!format_id(conv_id, sizeof(conv_id), o->seed, "c", c)) {
        note_transport_error(w->run, first, "conversation_id", BASE_ELIMIT);
        return;
    }
    for (; i < end && !atomic_load(&w->run->stop); i++) {
        flush_due(w);
        decided = interact(w, i, conv_id, (uint32_t)(i - first + 1), &correct);
    }
    if (i == end && decided) { /* else no final decision: nothing to resolve */
        schedule(w, end - 1, SIM_FB_CONV, correct);
    }
}

static void *worker_main(void *arg)
{
    sim_worker *w = arg;
    sim_run *run = w->run;

    while (!atomic_load(&run->stop)) {
        uint64_t c = atomic_fetch_add(&run->next, 1);
        if (c * run->o->turns >= run->o->n) {
            break;
        }
        converse(w, c);
    }
    drain(w);
    return NULL;
}

/* ---- setup ---- */

/* Interaction order: a seeded permutation of the rows, or uniform draws when n > rows. */
static base_err make_order(sim_run *run)
{
    uint64_t n = run->o->n;
    uint32_t rows = run->d->n_rows;
    uint64_t state = base_hash64(&run->o->seed, sizeof(run->o->seed), ORDER_SALT);
    base_err e = BASE_ENOMEM;
    uint32_t *perm = NULL;

    run->order = base_alloc_array(n, sizeof(*run->order));
    if (run->order == NULL) {
        goto done;
    }
    if (n > rows) {
        for (uint64_t i = 0; i < n; i++) {
            run->order[i] = (uint32_t)(base_u64_to_unit(base_splitmix64(&state)) * rows);
        }
    } else {
        perm = base_alloc_array(rows, sizeof(*perm));
        if (perm == NULL) {
            goto done;
        }
        for (uint32_t i = 0; i < rows; i++) {
            perm[i] = i;
        }
        for (uint32_t i = rows - 1; i > 0; i--) { /* Fisher-Yates */
            uint32_t j = (uint32_t)(base_u64_to_unit(base_splitmix64(&state)) * (i + 1.0));
            uint32_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        memcpy(run->order, perm, n * sizeof(*perm));
    }
    e = BASE_OK;

done:
    base_free(perm);
    return e;
}

/* Action ids prefix0..prefix{K-1}. Returns false if one does not fit. */
static bool make_ids(sim_run *run)
{
    uint32_t k = run->d->n_classes;
    bool ok = false;

    run->ids = base_alloc_array(k, sizeof(*run->ids));
    run->id_ptr = base_alloc_array(k, sizeof(*run->id_ptr));
    if (run->ids == NULL || run->id_ptr == NULL) {
        fprintf(stderr, "rlfeed sim: out of memory\n");
        goto done;
    }
    for (uint32_t a = 0; a < k; a++) {
        int n = snprintf(run->ids[a], sizeof(run->ids[a]), "%s%" PRIu32, run->o->prefix, a);
        if (n < 0 || (size_t)n >= sizeof(run->ids[a])) {
            fprintf(stderr, "rlfeed sim: action id too long (max %d bytes)\n", BASE_NAME_MAX);
            goto done;
        }
        run->id_ptr[a] = run->ids[a];
    }
    ok = true;

done:
    return ok;
}

/* One stderr line with the failed requests by error code (nothing if none failed). */
static void print_error_summary(sim_run *run)
{
    uint64_t total = atomic_load(&run->n_errors);

    if (total > 0) {
        fprintf(stderr, "rlfeed sim: %" PRIu64 " failed requests:", total);
        for (unsigned c = 0; c < SVC_E_COUNT; c++) {
            uint64_t n = atomic_load(&run->by_code[c]);
            if (n > 0) {
                fprintf(stderr, " %s=%" PRIu64, svc_errcode_name((svc_errcode)c), n);
            }
        }
        for (unsigned c = 0; c <= BASE_EINTERNAL; c++) {
            uint64_t n = atomic_load(&run->by_err[c]);
            if (n > 0) {
                fprintf(stderr, " \"%s\"=%" PRIu64, base_strerror((base_err)c), n);
            }
        }
        fprintf(stderr, "\n");
    }
}

/* A JSON number, or null for NaN (no decisions). */
static json_t *json_num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static void print_summary(sim_run *run, double seconds)
{
    const sim_opts *o = run->o;
    uint64_t done = 0;
    uint64_t decided = 0;
    uint64_t base_hits = 0;
    uint64_t served_hits = 0;
    json_t *j = json_object();
    json_t *src = NULL;
    char *text = NULL;

    for (uint64_t b = 0; b < run->n_blocks; b++) {
        done += atomic_load(&run->blocks[b].done);
        decided += atomic_load(&run->blocks[b].decided);
        base_hits += atomic_load(&run->blocks[b].base_hits);
        served_hits += atomic_load(&run->blocks[b].served_hits);
    }
    src = o->data != NULL ? json_string(o->data) : json_string("synthetic");
    if (j == NULL || src == NULL) {
        json_decref(src);
        fprintf(stderr, "rlfeed sim: cannot build the summary (out of memory or bad path)\n");
        goto done;
    }
    (void)json_object_set_new(j, "dataset", src); /* failures surface as missing keys */
    (void)json_object_set_new(j, "interactions", json_integer((json_int_t)done));
    (void)json_object_set_new(j, "clients", json_integer(o->clients));
    (void)json_object_set_new(j, "turns", json_integer(o->turns));
    (void)json_object_set_new(j, "delay_ms", json_integer((json_int_t)o->delay_ms));
    (void)json_object_set_new(j, "base_accuracy", json_num(ratio(base_hits, done)));
    (void)json_object_set_new(j, "served_accuracy_last_block", json_num(run->last_served_acc));
    (void)json_object_set_new(j, "served_accuracy", json_num(ratio(served_hits, decided)));
    (void)json_object_set_new(
        j, "conversation_outcomes",
        json_integer((json_int_t)atomic_load(&run->n_conv_outcomes)));
    (void)json_object_set_new(j, "late_outcomes",
                              json_integer((json_int_t)atomic_load(&run->n_late)));
    (void)json_object_set_new(j, "max_queued_feedback",
                              json_integer((json_int_t)atomic_load(&run->max_queued)));
    (void)json_object_set_new(j, "seconds", json_real(seconds));
    (void)json_object_set_new(j, "errors",
                              json_integer((json_int_t)atomic_load(&run->n_errors)));
    text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
    if (text == NULL) {
        fprintf(stderr, "rlfeed sim: cannot print the summary\n");
        goto done;
    }
    printf("%s\n", text);
    fflush(stdout);

done:
    base_free(text); /* jansson allocates through base_alloc (set in main) */
    json_decref(j);
}

static bool load_data(const sim_opts *o, rlfeed_dataset **out_d)
{
    char errbuf[256] = "";
    base_err e;

    if (o->data == NULL) {
        e = rlfeed_dataset_synthetic(o->seed, out_d);
    } else {
        e = rlfeed_dataset_load_csv(o->data, out_d, errbuf, sizeof(errbuf));
    }
    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed sim: %s: %s%s%s\n", o->data != NULL ? o->data : "synthetic",
                base_strerror(e), errbuf[0] != '\0' ? ": " : "", errbuf);
    } else if ((*out_d)->n_classes > BASE_CAND_MAX) {
        fprintf(stderr, "rlfeed sim: %u classes, more than %d candidates\n",
                (*out_d)->n_classes, BASE_CAND_MAX);
        rlfeed_dataset_free(*out_d);
        *out_d = NULL;
        e = BASE_ELIMIT;
    }
    return e == BASE_OK;
}

static void describe_setup(const sim_opts *o, const rlfeed_dataset *d,
                           const rlfeed_base_model *m)
{
    fprintf(stderr, "rlfeed sim: dataset %s: %u rows, %u classes, %u features",
            o->data != NULL ? o->data : "synthetic", d->n_rows, d->n_classes, d->n_features);
    if (o->data == NULL) {
        fprintf(stderr, " (within-class sd %.3f, nearest-true-mean accuracy %.3f)",
                d->synth_sd, d->synth_bayes_acc);
    }
    fprintf(stderr,
            "\nrlfeed sim: base model: dim %u, logit noise %.3f, sharpness %.3f; calibrated "
            "base accuracy %.4f (target %.4f), softmax-sampled %.4f\n",
            o->dim, rlfeed_base_model_noise_scale(m), rlfeed_base_model_sharpness(m),
            rlfeed_base_model_calib_accuracy(m), o->base_acc,
            rlfeed_base_model_calib_softmax_accuracy(m));
    fprintf(stderr, "rlfeed sim: %" PRIu64 " interactions, %u clients, policy %s at %s\n",
            o->n, o->clients, o->policy, o->url);
    if (o->turns > 1) {
        fprintf(stderr,
                "rlfeed sim: conversations of %u turns (sim-%" PRIu64 "-c<n>); \"resolved\" "
                "once per conversation, by conversation_id\n",
                o->turns, o->seed);
    }
    if (o->delay_ms > 0) {
        fprintf(stderr,
                "rlfeed sim: feedback posted uniform [0, %" PRIu64 "] ms after its decide\n",
                o->delay_ms);
    }
    if (o->delay_ms >= SIM_DEMO_WINDOW_MS) {
        fprintf(stderr,
                "rlfeed sim: warning: --delay-ms %" PRIu64 " is not below %u ms, the window_ms of "
                "examples/demo.ini: outcomes after a policy's window_ms are \"late\" and never "
                "learned from\n",
                o->delay_ms, SIM_DEMO_WINDOW_MS);
    }
}

/* Outcomes the service took but will not learn from, and feedback never sent. */
static void print_feedback_warnings(sim_run *run)
{
    uint64_t late = atomic_load(&run->n_late);
    uint64_t dropped = atomic_load(&run->n_dropped);

    if (late > 0) {
        fprintf(stderr,
                "rlfeed sim: warning: %" PRIu64 " outcomes arrived after their join window closed "
                "(\"late\"): --delay-ms (plus a conversation's length) must stay below the "
                "policy's window_ms\n",
                late);
    }
    if (dropped > 0) {
        fprintf(stderr, "rlfeed sim: %" PRIu64 " delayed feedbacks not sent: the run stopped\n",
                dropped);
    }
}

/* One health call before the traffic starts, so a missing daemon fails fast. */
static bool check_service(const sim_run *run, rlfeed_client *c)
{
    uint8_t *rep = NULL;
    size_t len = 0;
    base_err e = rlfeed_client_health(c, &rep, &len);

    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed sim: no answer from %s within %d ms (%s): is rlfeedd running?\n",
                run->o->url, run->o->timeout_ms, base_strerror(e));
    }
    base_free(rep);
    return e == BASE_OK;
}

static bool open_workers(sim_run *run, sim_worker *ws)
{
    const sim_opts *o = run->o;
    bool ok = false;

    for (uint32_t t = 0; t < o->clients; t++) {
        sim_worker *w = &ws[t];
        w->run = run;
        base_buf_init(&w->req, SVC_WIRE_MAX_MSG);
        w->emb = base_alloc_array(o->dim, sizeof(*w->emb));
        w->logits = base_alloc_array(run->d->n_classes, sizeof(*w->logits));
        if (w->emb == NULL || w->logits == NULL) {
            fprintf(stderr, "rlfeed sim: out of memory\n");
            goto done;
        }
        base_err e = rlfeed_client_open(o->url, o->timeout_ms, &w->client);
        if (e != BASE_OK) {
            fprintf(stderr, "rlfeed sim: cannot open a client for %s: %s\n", o->url,
                    base_strerror(e));
            goto done;
        }
    }
    ok = check_service(run, ws[0].client);

done:
    return ok;
}

static void run_fini(sim_run *run, sim_worker *ws)
{
    if (ws != NULL) {
        for (uint32_t t = 0; t < run->o->clients; t++) {
            rlfeed_client_close(ws[t].client);
            base_free(ws[t].emb);
            base_free(ws[t].logits);
            base_free(ws[t].heap);
            base_buf_fini(&ws[t].req);
        }
        base_free(ws);
    }
    base_free(run->blocks);
    base_free(run->order);
    base_free(run->ids);
    base_free(run->id_ptr);
}

int rlfeed_sim_main(int argc, char **argv, const char *default_url)
{
    sim_opts o = {
        .url = default_url, .policy = "intents", .prefix = "intent_", .n = 60000,
        .block = 5000, .seed = 1, .clients = 4, .dim = 64, .turns = 1, .delay_ms = 0,
        .base_acc = 0.68,
        .thumbs_rate = 0.3, .thumbs_noise = 0.1, .timeout_ms = SIM_DEFAULT_TIMEOUT_MS,
    };
    sim_run run = {.o = &o, .last_served_acc = NAN};
    sim_worker *ws = NULL;
    rlfeed_dataset *d = NULL;
    rlfeed_base_model *m = NULL;
    bool lock_ready = false;
    int status = 2;
    uint32_t n_started = 0;
    base_err e;

    status = parse_opts(argc, argv, &o);
    if (status != 0) {
        if (status == 1) {
            fputs(usage_text, stdout);
        } else {
            fputs("(rlfeed sim --help lists the options)\n", stderr);
        }
        status = status == 1 ? 0 : 2;
        goto done;
    }
    status = 2;
    if (!load_data(&o, &d)) {
        goto done;
    }
    run.d = d;
    e = rlfeed_base_model_new(d, o.dim, o.seed, o.base_acc, &m);
    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed sim: base model: %s\n", base_strerror(e));
        goto done;
    }
    run.m = m;
    describe_setup(&o, d, m);
    run.n_blocks = (o.n + o.block - 1) / o.block;
    run.blocks = base_alloc_zero(run.n_blocks, sizeof(*run.blocks));
    ws = base_alloc_zero(o.clients, sizeof(*ws));
    if (run.blocks == NULL || ws == NULL || make_order(&run) != BASE_OK) {
        fprintf(stderr, "rlfeed sim: out of memory\n");
        goto done;
    }
    if (!make_ids(&run) || !open_workers(&run, ws)) {
        goto done;
    }
    if (pthread_mutex_init(&run.print_lk, NULL) != 0) {
        fprintf(stderr, "rlfeed sim: cannot create a mutex\n");
        goto done;
    }
    lock_ready = true;
    print_header();
    run.start_ns = base_mono_ns();
    for (uint32_t t = 0; t < o.clients; t++) {
        if (pthread_create(&ws[t].thread, NULL, worker_main, &ws[t]) != 0) {
            fprintf(stderr, "rlfeed sim: cannot start thread %u\n", t);
            atomic_store(&run.stop, true);
            atomic_fetch_add(&run.n_errors, 1); /* the run is incomplete: fail it */
            break;
        }
        n_started++;
    }
    for (uint32_t t = 0; t < n_started; t++) {
        (void)pthread_join(ws[t].thread, NULL); /* fails only for a bad thread id */
    }
    print_ready(&run);
    print_summary(&run, (double)(base_mono_ns() - run.start_ns) / 1e9);
    print_feedback_warnings(&run);
    print_error_summary(&run);
    status = atomic_load(&run.n_errors) == 0 ? 0 : 1;

done:
    if (lock_ready) {
        pthread_mutex_destroy(&run.print_lk);
    }
    run_fini(&run, ws);
    rlfeed_base_model_free(m);
    rlfeed_dataset_free(d);
    return status;
}
