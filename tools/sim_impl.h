#ifndef TOOLS_SIM_IMPL_H
#define TOOLS_SIM_IMPL_H

/*
 * The insides of `rlfeed sim` (tools/sim.h), shared by its files and no one
 * else: sim.c (the run: workers, interactions, conversations, setup),
 * sim_opts.c (options), sim_feedback.c (feedback and the per-frontend
 * delayed-feedback queue) and sim_report.c (rows, summary,
 * errors).
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/heap.h"
#include "base/record.h"
#include "bench/dataset.h"
#include "client/rlfeed_client.h"

#define SIM_MAX_N 100000000ull       /* interactions in one run */
#define SIM_MAX_CLIENTS 64u          /* frontend threads */
#define SIM_SHOW_ERRORS 10u          /* errors printed one by one; the rest are only counted */
#define SIM_MAX_TRANSPORT_ERRORS 20u /* give up after this many timeouts/lost connections */
#define SIM_DEFAULT_TIMEOUT_MS 5000
#define SIM_MAX_TURNS 1000u        /* turns per conversation */
#define SIM_MAX_DELAY_MS 3600000u  /* --delay-ms */
#define SIM_MAX_PENDING 65536u     /* delayed feedbacks queued per frontend */
#define SIM_DEMO_WINDOW_MS 1000u   /* window_ms of examples/demo.ini, for the --delay-ms warning */
#define ORDER_SALT 0x6f72646572ull /* "order" */
#define THUMBS_SALT 0x7468756d6273ull /* "thumbs" */
#define DELAY_SALT 0x64656c6179ull    /* "delay" */

#define SIM_MAX_PROMOTIONS 8u /* --promote-at points */

typedef struct sim_opts {
    const char *url;
    const char *redis;  /* --redis, else $RLFEED_REDIS: for --serve, --canary, --promote-at */
    const char *serve;  /* NULL: leave the registry's serving as it is */
    const char *canary; /* NULL: likewise */
    uint64_t promote_at[SIM_MAX_PROMOTIONS]; /* run `rlfeed promote` once these are done */
    uint32_t n_promote;
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
    atomic_uint_fast64_t done;            /* interactions finished (ok or not) */
    atomic_uint_fast64_t decided;         /* decides answered ok */
    atomic_uint_fast64_t base_hits;       /* argmax(base logits) == label */
    atomic_uint_fast64_t served_hits;     /* chosen == label */
    atomic_uint_fast64_t max_version;     /* highest model_version the online slot served */
    atomic_uint_fast64_t max_prod;        /* highest model_version the production slot served */
    atomic_uint_fast64_t slot_decided[2]; /* decides answered ok, by slot (online, production) */
    atomic_uint_fast64_t slot_hits[2];    /* of which chose the label */
    atomic_uint_fast64_t t_start_ns;
    atomic_uint_fast64_t t_done_ns;
    atomic_int complete; /* set after t_done_ns: the block may be printed */
} sim_block;

typedef struct sim_run {
    const sim_opts *o;
    const rlfeed_dataset *d;
    const rlfeed_base_model *m;
    uint32_t *order;                /* [n] dataset row of each interaction */
    char (*ids)[BASE_NAME_MAX + 1]; /* [n_classes] action ids */
    const char **id_ptr;            /* [n_classes] pointers into ids */
    sim_block *blocks;              /* [n_blocks] */
    uint64_t n_blocks;
    uint64_t start_ns;
    atomic_uint_fast64_t next; /* next conversation (turns == 1: interaction) to take */
    atomic_bool stop;
    atomic_uint_fast64_t n_errors;
    atomic_uint_fast64_t n_transport;
    atomic_uint_fast64_t by_code[PROTO_E_COUNT];     /* error replies */
    atomic_uint_fast64_t by_err[BASE_EINTERNAL + 1]; /* transport failures */
    atomic_uint_fast64_t n_conv_outcomes;            /* conversation-level outcomes acknowledged */
    atomic_uint_fast64_t n_late;       /* outcomes answered "late": after the join window */
    atomic_uint_fast64_t n_retried;    /* feedback sent again after "unavailable" */
    atomic_uint_fast64_t n_dropped;    /* delayed feedbacks not sent (the run stopped) */
    atomic_uint_fast64_t max_queued;   /* deepest delayed-feedback queue of any frontend */
    atomic_uint_fast64_t n_job_failed; /* `rlfeed serve`/`promote` runs that failed (exit 2) */
    pthread_mutex_t print_lk;
    pthread_cond_t printed; /* broadcast under print_lk: a block printed, a promotion due */
    atomic_uint_fast64_t n_finished; /* interactions finished, in any order */
    atomic_uint_fast64_t wake_at;    /* n_finished at which the promoter is woken (0: never) */
    uint64_t next_print;             /* guarded by print_lk */
    uint32_t promotions_done;        /* guarded by print_lk: --promote-at points handled */
    double last_served_acc;          /* guarded by print_lk; NAN before the first row */
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
    rlfeed_reply reply;
    /* Delayed feedbacks of sim_pending by (due_ns, seq), only this thread's. */
    base_heap queue; /* at most SIM_MAX_PENDING */
    uint64_t seq;
    pthread_t thread;
} sim_worker;

/* An empty feedback queue for @w (no allocation until the first push). */
void sim_queue_init(sim_worker *w);
void sim_note_reply_error(sim_run *run, uint64_t i, const char *what, const rlfeed_reply *r);
void sim_note_transport_error(sim_run *run, uint64_t i, const char *what, base_err e);
void sim_print_header(void);
void sim_print_ready(sim_run *run);
void sim_print_error_summary(sim_run *run);
void sim_print_summary(sim_run *run, double seconds);
void sim_describe_setup(const sim_opts *o, const rlfeed_dataset *d, const rlfeed_base_model *m);
void sim_print_feedback_warnings(sim_run *run);
bool sim_format_id(char *buf, size_t size, uint64_t seed, const char *kind, uint64_t n);
void sim_schedule(sim_worker *w, uint64_t i, enum sim_fb_kind kind, bool correct);
void sim_flush_due(sim_worker *w);
void sim_drain(sim_worker *w);
int sim_parse_opts(int argc, char **argv, sim_opts *o);

/*
 * sim_control.c: the registry, through the rlfeed program itself (a child
 * process, so its output and exit status stay its own).
 * sim_apply_serving() runs `rlfeed serve` for --serve/--canary before any
 * traffic and waits (up to 5 s) until the daemon on @c serves so (true if
 * there was nothing to do or both succeeded).
 * sim_promoter_main() is a thread: at each --promote-at point (once that
 * many interactions have finished, whichever they are) it runs `rlfeed
 * promote` while the traffic goes on, and prints its verdict and report
 * between the rows; it returns when all are done or the run stopped
 * (run->stop, then a broadcast of run->printed). sim_note_finished() counts
 * a finished interaction and wakes it at its point.
 */
bool sim_apply_serving(sim_run *run, rlfeed_client *c);
void *sim_promoter_main(void *arg);
void sim_note_finished(sim_run *run);

#endif
