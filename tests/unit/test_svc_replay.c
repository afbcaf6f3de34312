/*
 * Replay and checkpoints against an in-memory log (tests/helpers/memlog.h),
 * without Redis: the engine is driven in-process on a manual clock.
 *
 *   - checkpoint: after a clean stop the log's online snapshot holds the
 *     head that learned every joined record, names the last of them, and a
 *     fresh engine restored from it has the same model and nothing pending;
 *   - replay: a run cut at several points ("what Redis held when the process
 *     died": a copy of the log at that instant, with checkpoints taken every
 *     few examples) and continued by a fresh engine restored from that copy
 *     ends at the model of a run that never stopped, bit for bit.
 *
 * Both for the default (linear) head and for one with a feature map (rff),
 * whose random features must be drawn again identically from the
 * checkpoint's settings.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/hash.h"
#include "memlog.h"
#include "policy/numerics.h"
#include "proc.h"
#include "service/config.h"
#include "service/engine.h"
#include "proto/reply.h"
#include "proto/request.h"
#include "tap.h"

#define N_EVENTS 600
#define DIM 4
#define K 3
#define T0 1800000000000LL
#define STEP_MS 100

#define CONFIG_TAIL                                                                                \
    "window_ms = 1000\n"                                                                           \
    "[signal t.resolved]\n"                                                                        \
    "kind = flag\n"                                                                                \
    "weight = 1.0\n"

static const char CONFIG_LINEAR[] = "[server]\n"
                                    "tick_ms = 1\n"
                                    "snapshot_interval_ms = 600000\n"
                                    "snapshot_every = 40\n"
                                    "[policy t]\n"
                                    "dim = 4\n"
                                    "actions = a, b, c\n"
                                    "epsilon = 0.2\n"
                                    "seed = 5\n" CONFIG_TAIL;

static const char CONFIG_RFF[] = "[server]\n"
                                 "tick_ms = 1\n"
                                 "snapshot_interval_ms = 600000\n"
                                 "snapshot_every = 40\n"
                                 "[policy t]\n"
                                 "dim = 4\n"
                                 "actions = a, b, c\n"
                                 "epsilon = 0.2\n"
                                 "seed = 5\n"
                                 "features = rff\n"
                                 "rff_dim = 24\n"
                                 "bandwidth = 0.7\n" CONFIG_TAIL;

/* Compact embeddings: learning and replay on the stored (rounded) values. */
#define CONFIG_COMPACT(kind)                                                                       \
    "[server]\n"                                                                                   \
    "tick_ms = 1\n"                                                                                \
    "snapshot_interval_ms = 600000\n"                                                              \
    "snapshot_every = 40\n"                                                                        \
    "[policy t]\n"                                                                                 \
    "dim = 4\n"                                                                                    \
    "actions = a, b, c\n"                                                                          \
    "epsilon = 0.2\n"                                                                              \
    "seed = 5\n"                                                                                   \
    "embedding_storage = " kind "\n" CONFIG_TAIL

static const char CONFIG_F16[] = CONFIG_COMPACT("f16");
static const char CONFIG_I8[] = CONFIG_COMPACT("i8");

static const char *config = CONFIG_LINEAR; /* the run's; set by main() */

static const char *const IDS[K] = {"a", "b", "c"};

/* The last reply an engine sent, for the request just handled (calls are synchronous). */
typedef struct catcher {
    proto_reply r;
    bool got;
} catcher;

static void catch_reply(void *arg, const uint8_t *buf, size_t len)
{
    catcher *c = arg;
    c->got = proto_reply_decode(buf, len, &c->r) == BASE_OK;
}

/* Event @i: its context and the action a customer would be helped by. */
static uint32_t make_event(uint32_t i, float *x)
{
    uint64_t st = base_hash64(&i, sizeof(i), 0x7265706c6179ULL);
    uint32_t label = i % K;
    for (uint32_t d = 0; d < DIM; d++) {
        x[d] = (float)(base_u64_to_unit(base_splitmix64(&st)) - 0.5);
    }
    x[label] += 1.0f;
    return label;
}

/*
 * Log event @i at its time (a frontend's choice, uniform over the actions,
 * drawn from the event number: the learned head never changes what is
 * served, so every run produces the same joined stream however far its
 * learner got), then report whether the served action helped.
 */
static bool play_one(svc_engine *e, base_clock *clock, uint32_t i)
{
    float x[DIM];
    uint32_t label = make_event(i, x);
    uint32_t chosen = (uint32_t)(base_hash64(&i, sizeof(i), 0x63686f696365ULL) % K);
    base_clock_set(clock, T0 + (int64_t)i * STEP_MS);
    catcher c = {.got = false};
    svc_replier rp = {.send = catch_reply, .arg = &c};
    proto_request q;
    memset(&q, 0, sizeof(q));
    q.op = PROTO_OP_LOG;
    snprintf(q.policy, sizeof(q.policy), "t");
    snprintf(q.event_id, sizeof(q.event_id), "ev-%u", i);
    q.dim = DIM;
    q.embedding = x;
    proto_candidate cand[K];
    float pmf[K];
    for (uint32_t a = 0; a < K; a++) {
        snprintf(cand[a].id, sizeof(cand[a].id), "%s", IDS[a]);
        cand[a].base_logit = 0.0f;
        pmf[a] = 1.0f / K;
    }
    q.n_cand = K;
    q.cand = cand;
    q.pmf = pmf;
    snprintf(q.chosen, sizeof(q.chosen), "%s", IDS[chosen]);
    q.clock_set_ms = q.clock_advance_ms = -1;
    svc_engine_handle(e, &q, &rp);
    if (!c.got || !c.r.ok) {
        return false;
    }
    c.got = false;
    memset(&q, 0, sizeof(q));
    q.op = PROTO_OP_FEEDBACK;
    snprintf(q.policy, sizeof(q.policy), "t");
    snprintf(q.event_id, sizeof(q.event_id), "ev-%u", i);
    snprintf(q.signal, sizeof(q.signal), "resolved");
    snprintf(q.outcome_id, sizeof(q.outcome_id), "o-%u", i);
    q.value = chosen == label ? 1.0 : 0.0;
    q.clock_set_ms = q.clock_advance_ms = -1;
    svc_engine_handle(e, &q, &rp);
    return c.got && c.r.ok && strcmp(c.r.status, "matched") == 0;
}

typedef struct run {
    svc_config cfg;
    base_clock clock;
    tst_memlog *log;
    svc_log writer;
    svc_engine *eng;
} run;

static bool run_open(run *r, tst_memlog *log)
{
    char err[256] = "";
    memset(r, 0, sizeof(*r));
    if (svc_config_load_string(config, &r->cfg, err, sizeof(err)) != BASE_OK) {
        printf("# config: %s\n", err);
        return false;
    }
    base_clock_init_manual(&r->clock, T0);
    r->log = log;
    r->writer = tst_memlog_writer(log);
    svc_log_reader rd = tst_memlog_reader(log);
    bool ok =
        svc_engine_new(&r->cfg, &r->clock, &r->writer, &r->eng, err, sizeof(err)) == BASE_OK &&
        svc_engine_restore(r->eng, &rd, err, sizeof(err)) == BASE_OK &&
        svc_engine_start(r->eng) == BASE_OK;
    if (!ok) {
        printf("# engine: %s\n", err);
    }
    return ok;
}

static void run_close(run *r)
{
    svc_engine_stop(r->eng, 5000);
    svc_engine_free(r->eng);
    svc_config_fini(&r->cfg);
}

/* Close every window and wait (deadline) until the head learned @n examples. */
static bool settle(run *r, uint64_t n)
{
    base_clock_set(&r->clock, T0 + (int64_t)(N_EVENTS + 100) * STEP_MS);
    uint64_t got = 0, sum = 0;
    int64_t deadline = tst_now_ms() + 20000;
    while (got < n && tst_now_ms() < deadline) {
        (void)svc_engine_model_info(r->eng, "t", &got, &sum);
    }
    return got == n;
}

static void checkpoint_holds_what_was_learned(uint64_t *out_sum)
{
    tst_memlog *log = tst_memlog_new(1u << 20);
    run r;
    TST_TRUE(run_open(&r, log));
    int ok = 0;
    for (uint32_t i = 0; i < N_EVENTS; i++) {
        ok += play_one(r.eng, &r.clock, i);
    }
    TST_EQ(ok, N_EVENTS);
    TST_TRUE(settle(&r, N_EVENTS));
    uint64_t n = 0, sum = 0;
    TST_TRUE(svc_engine_model_info(r.eng, "t", &n, &sum));
    run_close(&r); /* the final checkpoint */
    *out_sum = sum;

    char last_joined[BASE_STREAM_ID_MAX + 1];
    TST_EQ(tst_memlog_len(log, "t", STO_JOINED, last_joined), N_EVENTS);
    TST_EQ(tst_memlog_len(log, "t", STO_DECISIONS, NULL), N_EVENTS);
    TST_EQ(tst_memlog_len(log, "t", STO_OUTCOMES, NULL), N_EVENTS);
    svc_log_reader rd = tst_memlog_reader(log);
    base_snapshot *m = NULL;
    bool found = false;
    TST_OK(rd.ops->model(rd.impl, "t", &m, &found));
    TST_TRUE(found && m != NULL);
    if (m != NULL) {
        TST_EQ(m->version, N_EVENTS);
        TST_EQ(m->n_updates, N_EVENTS);
        TST_STREQ(m->last_joined_id, last_joined);
        TST_EQ(m->next_lsn, 2 * N_EVENTS); /* one decision and one outcome each */
        base_snapshot_free(m);
    }
    /* A fresh engine from that log: the same head, nothing left to replay. */
    run again;
    TST_TRUE(run_open(&again, log));
    uint64_t n2 = 0, sum2 = 0;
    TST_TRUE(svc_engine_model_info(again.eng, "t", &n2, &sum2));
    TST_EQ(n2, N_EVENTS);
    TST_EQ(sum2, sum);
    run_close(&again);
    tst_memlog_free(log);
    printf("# uninterrupted: %d events, checksum %016" PRIx64 "\n", N_EVENTS, sum);
}

/*
 * Cut the run after @cut events (a copy of the log), continue from the copy.
 * With @learned_first the cut waits until the head learned every event
 * before it, so the copy holds joined records stored after the last
 * checkpoint (one every 40 updates) that the replay must learn again.
 */
static void replay_after_cut_matches(uint32_t cut, bool learned_first, uint64_t want_sum)
{
    tst_memlog *log = tst_memlog_new(1u << 20);
    run r;
    TST_TRUE(run_open(&r, log));
    for (uint32_t i = 0; i < cut; i++) {
        (void)play_one(r.eng, &r.clock, i);
    }
    if (learned_first) {
        base_clock_set(&r.clock, T0 + (int64_t)(cut + 10) * STEP_MS); /* their windows closed */
        uint64_t got = 0, sum = 0;
        int64_t deadline = tst_now_ms() + 20000;
        while (got < cut && tst_now_ms() < deadline) {
            (void)svc_engine_model_info(r.eng, "t", &got, &sum);
        }
        TST_EQ(got, cut);
    }
    tst_memlog *held = tst_memlog_clone(log); /* what Redis had when the process died */
    run_close(&r);
    tst_memlog_free(log);
    if (held == NULL) {
        TST_TRUE(held != NULL);
        return;
    }
    run next;
    TST_TRUE(run_open(&next, held));
    base_clock_set(&next.clock, T0 + (int64_t)cut * STEP_MS);
    if (learned_first) {
        uint64_t n0 = 0, s0 = 0;
        (void)svc_engine_model_info(next.eng, "t", &n0, &s0);
        TST_EQ(n0, cut); /* the checkpoint plus the joined records after it */
    }
    int ok = 0;
    for (uint32_t i = cut; i < N_EVENTS; i++) {
        ok += play_one(next.eng, &next.clock, i);
    }
    TST_EQ(ok, N_EVENTS - cut);
    TST_TRUE(settle(&next, N_EVENTS));
    uint64_t n = 0, sum = 0;
    TST_TRUE(svc_engine_model_info(next.eng, "t", &n, &sum));
    printf("# cut after %u%s: %" PRIu64 " examples, checksum %016" PRIx64 "\n", cut,
           learned_first ? " (learned)" : "", n, sum);
    TST_EQ(n, N_EVENTS);
    TST_EQ(sum, want_sum);
    run_close(&next);
    TST_EQ(tst_memlog_len(held, "t", STO_JOINED, NULL), N_EVENTS); /* each joined once */
    tst_memlog_free(held);
}

/* health says "degraded" while the write queue is full, as /readyz does, though Redis is up. */
static void health_is_degraded_on_a_full_queue(void)
{
    tst_memlog *log = tst_memlog_new(64);
    run r;
    TST_TRUE(run_open(&r, log));
    for (int full = 0; full < 2; full++) {
        tst_memlog_set_depth(log, full ? 64 : 0);
        catcher c = {.got = false};
        svc_replier rp = {.send = catch_reply, .arg = &c};
        proto_request q;
        memset(&q, 0, sizeof(q));
        q.op = PROTO_OP_HEALTH;
        q.clock_set_ms = q.clock_advance_ms = -1;
        svc_engine_handle(r.eng, &q, &rp);
        TST_TRUE(c.got && c.r.ok);
        TST_STREQ(c.r.status, full ? "degraded" : "ready");
        TST_STREQ(c.r.redis, "up");
        char why[64] = "";
        TST_EQ(svc_engine_ready(r.eng, why, sizeof(why)), !full);
    }
    tst_memlog_set_depth(log, 0);
    run_close(&r);
    tst_memlog_free(log);
}

int main(void)
{
    pol_numerics_init();
    const char *configs[] = {CONFIG_LINEAR, CONFIG_RFF, CONFIG_F16, CONFIG_I8};
    const char *names[] = {"linear", "rff", "linear, f16 records", "linear, i8 records"};
    uint64_t sums[4] = {0, 0, 0, 0};
    for (size_t c = 0; c < 4; c++) {
        printf("# %s head\n", names[c]);
        config = configs[c];
        checkpoint_holds_what_was_learned(&sums[c]);
        static const uint32_t cuts[] = {1, 37, 250, 421, N_EVENTS - 1};
        for (size_t k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++) {
            replay_after_cut_matches(cuts[k], false, sums[c]);
            replay_after_cut_matches(cuts[k], true, sums[c]);
        }
    }
    TST_TRUE(sums[0] != sums[1]); /* the map is in force */
    TST_TRUE(sums[0] != sums[2] && sums[0] != sums[3] && sums[2] != sums[3]); /* so is rounding */
    config = CONFIG_LINEAR;
    health_is_degraded_on_a_full_queue();
    return tst_done();
}
