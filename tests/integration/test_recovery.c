/*
 * Nothing lost, nothing double-counted: the same 20 000-interaction input
 * is played twice through rlfeedd and a real Redis, once uninterrupted and
 * once with rlfeedd killed with SIGKILL at seeded random points and
 * restarted. The final model must be bit-identical (same checksum and
 * version), and every acknowledged outcome must be in the outcome stream
 * exactly once.
 *
 * The input is fixed: decisions arrive as `log` requests (the frontend
 * sampled them, with their pmf), outcomes as acknowledged feedback with an
 * outcome_id, and the daemon runs on its manual clock, advanced by the test,
 * so join windows close at the same service times in both runs. The client
 * is sequential and retries a request whose connection died, as a real
 * frontend would: a retried log answered duplicate_event was stored, a
 * retried feedback answered duplicate was stored.
 *
 * With --open the policy has an open action set (docs/algorithms.md, "Open action sets"):
 * every candidate carries features, and the ids are new ones every 500 interactions, so the
 * records carry ids and features and the shared head learns from them; 8 000 interactions.
 *
 * With --change the policy's definition is changed halfway through with `rlfeed policy put`
 * (docs/operations.md, "Policies at run time"): "resolved" weighs 2 from then on, a new
 * reward spec version; each run waits until rlfeedd applied it before going on, so the
 * change falls at the same point of the input in every run; 8 000 interactions.
 */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"
#include "base/record.h"
#include "daemon.h"
#include "http.h"
#include "proc.h"
#include "storage/store.h"
#include "tap.h"

#define N_INTERACTIONS 20000
#define DIM 8
#define K 4
#define T0 1700000000000LL
#define STEP_MS 1000 /* manual clock advance every CHUNK interactions */
#define CHUNK 100
#define WINDOW_MS 30000

#define N_OPEN 8000 /* interactions with --open */
#define ACTION_DIM 4

#define CONFIG_HEAD "[server]\ntick_ms = 2\nsnapshot_interval_ms = 100\n"
#define CONFIG_POLICY                                                                              \
    "[policy r]\n"                                                                                 \
    "dim = 8\n"                                                                                    \
    "%s"                                                                                           \
    "window_ms = 30000\n"                                                                          \
    "signal.thumbs_up = 0.5\n"                                                                     \
    "[signal r.resolved]\n"                                                                        \
    "kind = flag\n"

static bool open_set;                     /* --open */
static bool change_midway;                /* --change */
static uint32_t n_inter = N_INTERACTIONS; /* interactions per run */
static char CONFIG[512], CONFIG_TRIM[512];

/* The configs of the closed or open set; the killed run also trims as hard as retention allows:
 * window 0, two snapshots. */
static void make_configs(void)
{
    const char *actions =
        open_set ? "actions = open\naction_dim = 4\n" : "actions = a0, a1, a2, a3\n";
    snprintf(CONFIG, sizeof(CONFIG), CONFIG_HEAD CONFIG_POLICY, actions);
    snprintf(CONFIG_TRIM, sizeof(CONFIG_TRIM),
             CONFIG_HEAD "retention_ms = 0\nkeep_snapshots = 2\n" CONFIG_POLICY, actions);
}

/* The id of candidate @a of interaction @i: a0..a3, or with --open new ids every 500. */
static void cand_name(uint32_t i, int a, char *out, size_t size)
{
    if (open_set) {
        snprintf(out, size, "n%u", (i / 500) * K + (uint32_t)a);
    } else {
        snprintf(out, size, "a%d", a);
    }
}

/* With --open, candidate @a's features: its id's, plus a mark when it is the label. */
static int put_features(char *out, size_t size, uint32_t i, int a, uint32_t label)
{
    uint32_t m = (i / 500) * K + (uint32_t)a;
    uint64_t st = base_hash64(&m, sizeof(m), 0xfea7);
    int n = snprintf(out, size, ",\"features\":[");
    for (int j = 0; j < ACTION_DIM; j++) {
        double v =
            base_u64_to_unit(base_splitmix64(&st)) - 0.5 + (j == 0 && a == (int)label ? 0.8 : 0);
        n += snprintf(out + n, size - (size_t)n, "%s%.9g", j ? "," : "", v);
    }
    return n + snprintf(out + n, size - (size_t)n, "]");
}

typedef struct run {
    tst_daemon f;
    long long now; /* the manual clock */
    int restarts;
    uint64_t acked; /* feedback acknowledged */
} run;

static bool start(run *r)
{
    return tst_daemon_start_clock(&r->f, r->now);
}

/* SIGKILL, then start again on the same Redis with the clock where it was. */
static bool crash_and_restart(run *r)
{
    (void)tst_daemon_kill(&r->f);
    r->restarts++;
    return start(r);
}

/* One request, retried across a restart if the connection fails. */
static bool request(run *r, rlfeed_reply *out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool request(run *r, rlfeed_reply *out, const char *fmt, ...)
{
    char body[4096], json[4200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    snprintf(json, sizeof(json), "{\"v\":1,%s", body + 1);
    for (int attempt = 0; attempt < 3; attempt++) {
        if (tst_call_json(&r->f, json, out) == BASE_OK) {
            return true;
        }
        /* If the daemon is gone, start it again; if it is alive, just retry. */
        if (r->f.pid <= 0 || tst_wait_exit(r->f.pid, 0, NULL)) {
            rlfeed_client_close(r->f.c);
            r->f.c = NULL;
            r->f.pid = 0;
            if (!start(r)) {
                return false;
            }
        }
    }
    return false;
}

static bool set_clock(run *r, long long now)
{
    rlfeed_reply rep;
    r->now = now;
    return request(r, &rep, "{\"op\":\"clock\",\"set_ms\":%lld}", now) && rep.ok;
}

/* The fixed input: context, base logits, logged pmf and choice, label of interaction i. */
static void interaction(uint32_t i, float *x, float *logit, float *pmf, uint32_t *chosen,
                        uint32_t *label)
{
    uint64_t st = base_hash64(&i, sizeof(i), 0xabcdef);
    *label = (uint32_t)(base_splitmix64(&st) % K);
    for (int j = 0; j < DIM; j++) {
        double u = base_u64_to_unit(base_splitmix64(&st)) - 0.5;
        x[j] = (float)(u + (j % K == (int)*label ? 0.8 : 0.0));
    }
    double z = 0;
    for (int a = 0; a < K; a++) {
        logit[a] = (float)(base_u64_to_unit(base_splitmix64(&st)) + (a == (int)*label ? 0.5 : 0));
        pmf[a] = 0;
    }
    for (int a = 0; a < K; a++) {
        z += exp((double)logit[a]);
    }
    double cum = 0, u = base_u64_to_unit(base_splitmix64(&st));
    *chosen = K - 1;
    bool picked = false;
    for (int a = 0; a < K; a++) {
        pmf[a] = (float)(exp((double)logit[a]) / z);
        cum += (double)pmf[a];
        if (!picked && u < cum) {
            *chosen = (uint32_t)a;
            picked = true;
        }
    }
}

static bool log_decision(run *r, uint32_t i)
{
    float x[DIM], logit[K], pmf[K];
    uint32_t chosen, label;
    interaction(i, x, logit, pmf, &chosen, &label);
    char ctx[256], cands[2048], pm[128], id[32], chosen_id[32];
    int n = snprintf(ctx, sizeof(ctx), "[");
    for (int j = 0; j < DIM; j++) {
        n += snprintf(ctx + n, sizeof(ctx) - (size_t)n, "%s%.9g", j ? "," : "", (double)x[j]);
    }
    snprintf(ctx + n, sizeof(ctx) - (size_t)n, "]");
    n = snprintf(cands, sizeof(cands), "[");
    int m = snprintf(pm, sizeof(pm), "[");
    for (int a = 0; a < K; a++) {
        cand_name(i, a, id, sizeof(id));
        n += snprintf(cands + n, sizeof(cands) - (size_t)n, "%s{\"id\":\"%s\",\"base_logit\":%.9g",
                      a ? "," : "", id, (double)logit[a]);
        if (open_set) {
            n += put_features(cands + n, sizeof(cands) - (size_t)n, i, a, label);
        }
        n += snprintf(cands + n, sizeof(cands) - (size_t)n, "}");
        m += snprintf(pm + m, sizeof(pm) - (size_t)m, "%s%.9g", a ? "," : "", (double)pmf[a]);
    }
    cand_name(i, (int)chosen, chosen_id, sizeof(chosen_id));
    snprintf(cands + n, sizeof(cands) - (size_t)n, "]");
    snprintf(pm + m, sizeof(pm) - (size_t)m, "]");
    rlfeed_reply rep;
    if (!request(r, &rep,
                 "{\"op\":\"log\",\"policy\":\"r\",\"event_id\":\"ev-%u\","
                 "\"context\":{\"embedding\":%s},\"candidates\":%s,\"chosen\":\"%s\","
                 "\"pmf\":%s}",
                 i, ctx, cands, chosen_id, pm)) {
        return false;
    }
    /* A retry of a log that was stored before the crash is a duplicate: fine. */
    return rep.ok || rep.error.code == PROTO_E_DUPLICATE_EVENT;
}

/* The outcome of interaction i; false if it could not be acknowledged. */
static bool feedback(run *r, uint32_t i, bool *out_lost_decision)
{
    float x[DIM], logit[K], pmf[K];
    uint32_t chosen, label;
    interaction(i, x, logit, pmf, &chosen, &label);
    rlfeed_reply rep;
    *out_lost_decision = false;
    if (!request(r, &rep,
                 "{\"op\":\"feedback\",\"policy\":\"r\",\"event_id\":\"ev-%u\","
                 "\"signal\":\"resolved\",\"value\":%d,\"outcome_id\":\"o-%u\"}",
                 i, chosen == label ? 1 : 0, i)) {
        return false;
    }
    if (!rep.ok && rep.error.code == PROTO_E_UNKNOWN_EVENT) {
        *out_lost_decision = true; /* answered before it was stored, then lost: log it again */
        return false;
    }
    if (rep.ok) {
        r->acked++;
    }
    return rep.ok;
}

/* Poll until all N joined examples are stored and learned; the model's version and checksum. */
static bool settle(run *r, long long *out_version, char *out_sum, size_t sum_len)
{
    int64_t deadline = tst_now_ms() + 60000;
    while (tst_now_ms() < deadline) {
        json_t *s = tst_stats(&r->f);
        long long version = tst_stat_int(s, "r", "model_version");
        long long pending = tst_stat_int(s, "r", "pending");
        snprintf(out_sum, sum_len, "%s", tst_stat_str(s, "r", "model_checksum"));
        json_decref(s);
        if (version == n_inter && pending == 0) {
            *out_version = version;
            return true;
        }
    }
    return false;
}

/*
 * Read back the joined stream: how many records, how many out of event order
 * (a decision joined twice or out of turn would show), and a hash chain of
 * (event id, reward) in stream order - the same chain the daemon reports as
 * learn_trace over what it learned.
 */
static void joined_stream(run *r, long *out_n, long *out_breaks, uint64_t *out_trace)
{
    sto_store *st = NULL;
    char err[128];
    *out_n = *out_breaks = 0;
    *out_trace = 0;
    if (sto_store_open(sto_server_url(r->f.redis), 5000, &st, err, sizeof(err)) != BASE_OK) {
        return;
    }
    char after[BASE_STREAM_ID_MAX + 1] = "";
    long prev = -1;
    for (;;) {
        sto_entry *en = NULL;
        size_t n = 0;
        if (sto_store_read(st, STO_JOINED, "r", after, 1000, &en, &n) != BASE_OK || n == 0) {
            break;
        }
        for (size_t k = 0; k < n; k++) {
            const base_joined *j = en[k].rec;
            const char *ev = j->decision->event_id;
            *out_trace = base_hash64(ev, strlen(ev), *out_trace);
            *out_trace = base_hash64(&j->reward, sizeof(j->reward), *out_trace);
            long idx = strtol(ev + 3, NULL, 10);
            *out_breaks += prev >= 0 && idx != prev + 1;
            prev = idx;
            (*out_n)++;
        }
        snprintf(after, sizeof(after), "%s", en[n - 1].id);
        sto_entries_free(STO_JOINED, en, n);
    }
    sto_store_close(st);
}

/*
 * --change: put the changed definition with the CLI, then wait until rlfeedd serves it
 * (its definition_version, GET /api/v1/policies/r). A kill may not fall in between: kills
 * come only after a log or a feedback.
 */
static bool change_definition(run *r)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/r.ini", r->f.dir);
    FILE *fp = fopen(path, "w");
    if (fp == NULL) {
        return false;
    }
    fputs("[policy r]\ndim = 8\nactions = a0, a1, a2, a3\nwindow_ms = 30000\n"
          "signal.thumbs_up = 0.5\n[signal r.resolved]\nkind = flag\nweight = 2\n",
          fp);
    fclose(fp);
    const char *args[] = {"policy", "put", "--file", path, NULL};
    if (tst_daemon_cli(&r->f, "test", args) != 0) {
        return false;
    }
    int64_t deadline = tst_now_ms() + 20000;
    while (tst_now_ms() < deadline) {
        tst_http_response h;
        memset(&h, 0, sizeof(h));
        bool got = r->f.http_url[0] != '\0' &&
                   tst_http_get(r->f.http_url, "/api/v1/policies/r", 5000, &h) && h.status == 200 &&
                   strstr(h.body, "\"definition_version\":1") != NULL;
        tst_http_response_fini(&h);
        if (got) {
            return true;
        }
        tst_nap();
    }
    return false;
}

static bool play(run *r, const uint32_t *kill_at, int n_kills, long long *out_version,
                 char *out_sum, size_t sum_len)
{
    int next_kill = 0;
    r->now = T0;
    if (!start(r)) {
        return false;
    }
    for (uint32_t i = 0; i < n_inter; i++) {
        if (i % CHUNK == 0 && !set_clock(r, T0 + (long long)(i / CHUNK) * STEP_MS)) {
            return false;
        }
        if (change_midway && i == n_inter / 2 && !change_definition(r)) {
            printf("# the definition change was not applied\n");
            return false;
        }
        /*
         * Kills alternate between right after a log (answered before it is
         * stored: the decision may still be queued, and lost) and right
         * after an acknowledged feedback.
         */
        bool kill_now = next_kill < n_kills && i == kill_at[next_kill];
        bool lost = false;
        bool ok = log_decision(r, i);
        if (ok && kill_now && next_kill % 2 == 1) {
            next_kill++;
            ok = crash_and_restart(r);
        }
        ok = ok && feedback(r, i, &lost);
        if (!ok && lost) {
            ok = log_decision(r, i) && feedback(r, i, &lost);
        }
        if (!ok) {
            printf("# interaction %u failed\n", i);
            return false;
        }
        if (kill_now && next_kill < n_kills && i == kill_at[next_kill]) {
            next_kill++;
            if (!crash_and_restart(r)) {
                return false;
            }
        }
    }
    /* Close every window. */
    if (!set_clock(r, T0 + (long long)(n_inter / CHUNK) * STEP_MS + WINDOW_MS + 1)) {
        return false;
    }
    return settle(r, out_version, out_sum, sum_len);
}

/* Every acknowledged outcome id o-0..o-(N-1) appears in the outcome stream exactly once. */
static void outcomes_exactly_once(run *r)
{
    sto_store *st = NULL;
    char err[128];
    TST_OK(sto_store_open(sto_server_url(r->f.redis), 5000, &st, err, sizeof(err)));
    if (st == NULL) {
        return;
    }
    unsigned char *seen = base_alloc_zero(n_inter, 1);
    char after[BASE_STREAM_ID_MAX + 1] = "";
    uint64_t total = 0, bad = 0;
    for (;;) {
        sto_entry *en = NULL;
        size_t n = 0;
        if (sto_store_read(st, STO_OUTCOMES, "r", after, 1000, &en, &n) != BASE_OK || n == 0) {
            sto_entries_free(STO_OUTCOMES, en, n);
            break;
        }
        for (size_t k = 0; k < n; k++) {
            const base_outcome *o = en[k].rec;
            unsigned long idx = 0;
            if (sscanf(o->outcome_id, "o-%lu", &idx) == 1 && idx < n_inter) {
                seen[idx]++;
            } else {
                bad++;
            }
            total++;
        }
        snprintf(after, sizeof(after), "%s", en[n - 1].id);
        sto_entries_free(STO_OUTCOMES, en, n);
    }
    uint64_t once = 0, twice = 0, missing = 0;
    for (uint32_t i = 0; i < n_inter; i++) {
        once += seen[i] == 1;
        twice += seen[i] > 1;
        missing += seen[i] == 0;
    }
    printf("# outcome stream: %llu entries, %llu ids once, %llu more than once, %llu missing\n",
           (unsigned long long)total, (unsigned long long)once, (unsigned long long)twice,
           (unsigned long long)missing);
    TST_EQ(once, n_inter);
    TST_EQ(twice, 0);
    TST_EQ(bad, 0);
    base_free(seen);
    sto_store_close(st);
}

static uint64_t stream_trace_a; /* the uninterrupted run's joined stream */

/* One killed run on a fresh fixture; checks common to both killed runs. */
static void killed_run(const char *name, const char *config, const run *a, long long va,
                       const char *sa, bool trims)
{
    run b;
    memset(&b, 0, sizeof(b));
    long long vb = 0;
    char sb[32] = "";
    if (!tst_daemon_init(&b.f, name, config)) {
        TST_TRUE(0 && "fixture");
        return;
    }
    /* Seeded random kill points, in order. */
    enum { KILLS = 4 };
    uint32_t kill_at[KILLS];
    uint64_t st = trims ? 777 : 20261128;
    for (int k = 0; k < KILLS; k++) {
        kill_at[k] = (uint32_t)(1000 + k * (n_inter / KILLS) +
                                base_splitmix64(&st) % (n_inter / KILLS - 1000));
    }
    bool ok_b = play(&b, kill_at, KILLS, &vb, sb, sizeof(sb));
    TST_TRUE(ok_b);
    TST_EQ(b.restarts, KILLS);
    printf("# %s: killed %d times at %u %u %u %u: version %lld checksum %s (uninterrupted: "
           "%lld %s)\n",
           name, b.restarts, kill_at[0], kill_at[1], kill_at[2], kill_at[3], vb, sb, va, sa);
    TST_EQ(vb, va);
    TST_STREQ(sb, sa);
    TST_EQ(b.acked, a->acked);
    if (ok_b && !trims) {
        outcomes_exactly_once(&b);
        /* The same joined stream as the uninterrupted run: nothing joined twice or lost. */
        long n_b = 0, breaks_b = 0;
        uint64_t trace_b = 0;
        joined_stream(&b, &n_b, &breaks_b, &trace_b);
        TST_EQ(n_b, n_inter);
        TST_EQ(breaks_b, 0);
        TST_TRUE(trace_b == stream_trace_a);
    }
    if (ok_b && trims) {
        /*
         * Retention trimmed the streams along the way (any of the processes
         * may have done it), so the identical model also shows it never
         * removed an entry a replay or the learner still needed.
         */
        sto_store *store = NULL;
        char err[128];
        uint64_t len_d = 0, len_j = 0;
        TST_OK(sto_store_open(sto_server_url(b.f.redis), 5000, &store, err, sizeof(err)));
        /* The checkpoint after the last windows closed may still be trimming: poll. */
        int64_t deadline = tst_now_ms() + 15000;
        do {
            TST_OK(sto_store_len(store, STO_DECISIONS, "r", &len_d));
            TST_OK(sto_store_len(store, STO_JOINED, "r", &len_j));
        } while (store != NULL && !(len_d < n_inter && len_j < n_inter) &&
                 tst_now_ms() < deadline && (tst_nap(), true));
        sto_store_close(store);
        printf("# after retention: %llu of %u decisions and %llu of %u joined records kept\n",
               (unsigned long long)len_d, n_inter, (unsigned long long)len_j, n_inter);
        TST_TRUE(len_d < n_inter && len_j < n_inter);
    }
    TST_EQ(tst_daemon_stop(&b.f), 0);
    tst_daemon_fini(&b.f, tst_failed > 0);
}

int main(int argc, char **argv)
{
    run a;
    open_set = argc > 1 && strcmp(argv[1], "--open") == 0;
    change_midway = argc > 1 && strcmp(argv[1], "--change") == 0;
    n_inter = open_set || change_midway ? N_OPEN : N_INTERACTIONS;
    make_configs();
    memset(&a, 0, sizeof(a));
    long long va = 0;
    char sa[32] = "";
    if (!tst_daemon_init(&a.f, "rlfeed-recovery-a", CONFIG)) {
        TST_TRUE(0 && "fixture");
        return tst_done();
    }
    bool ok_a = play(&a, NULL, 0, &va, sa, sizeof(sa));
    TST_TRUE(ok_a);
    TST_EQ(a.acked, n_inter);
    /* Every decision joined once, in order, and the head learned exactly that stream. */
    long n_a = 0, breaks_a = 0;
    joined_stream(&a, &n_a, &breaks_a, &stream_trace_a);
    json_t *s = tst_stats(&a.f);
    char daemon_trace[32];
    snprintf(daemon_trace, sizeof(daemon_trace), "%s", tst_stat_str(s, "r", "learn_trace"));
    /* The default portfolio is on (dim 8: ridge greedy and ridge on pairwise products, the
     * challenger mixed into what is served): the bit-identical recovery below covers both
     * learners, their pending covariance updates and the selector. */
    json_t *pr = json_object_get(json_object_get(s, "policies"), "r");
    json_t *pf = json_object_get(pr, "portfolio");
    /* Every decision here was logged, not served: no slot counts one (docs/protocol.md). */
    json_t *online = json_object_get(json_object_get(pr, "slots"), "online");
    TST_EQ(json_integer_value(json_object_get(online, "decisions")), 0);
    TST_EQ(json_integer_value(json_object_get(online, "joined")), 0);
    TST_EQ(tst_stat_int(s, "r", "logged"), n_inter);
    TST_EQ(json_array_size(json_object_get(pf, "members")), open_set ? 1 : 2);
    printf("# portfolio: serving %s after %lld switches\n",
           json_string_value(json_object_get(pf, "serving")),
           (long long)json_integer_value(json_object_get(pf, "switches")));
    json_decref(s);
    char want_trace[32];
    snprintf(want_trace, sizeof(want_trace), "%016llx", (unsigned long long)stream_trace_a);
    TST_EQ(n_a, n_inter);
    TST_EQ(breaks_a, 0);
    TST_STREQ(daemon_trace, want_trace);
    TST_EQ(tst_daemon_stop(&a.f), 0);
    tst_daemon_fini(&a.f, !ok_a);

    killed_run("rlfeed-recovery-b", CONFIG, &a, va, sa, false);
    killed_run("rlfeed-recovery-c", CONFIG_TRIM, &a, va, sa, true);
    rlfeed_client_lib_fini();
    return tst_done();
}
