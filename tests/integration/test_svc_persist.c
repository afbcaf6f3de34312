/*
 * service/persist (the write queue and its writer thread) against a real
 * redis-server on a unix socket:
 *
 * 1. a batch whose replies never came (Redis hung past the command timeout,
 *    then resumed and executed it) is retried and still stored exactly once;
 *    the outage is logged once when it begins and once when it ends, with
 *    its length and the number of records waiting, however many
 *    reconnection attempts it took;
 * 2. an entry written by someone else above the writer's ids makes it move
 *    its ids past the stream's top: nothing is dropped, nothing duplicated;
 * 3. a stream whose top is in the future (a clock that went back) gets ids
 *    above that top from the first write;
 * 4. closing while Redis is hung gives up by the deadline and spills every
 *    unstored record with its id; once Redis resumes (and executes the batch
 *    it had received), replaying the spill stores every record exactly once,
 *    in order;
 * 5. closing while Redis is hung with nowhere to spill (no directory, or one
 *    that cannot be written) reports the records lost, and why.
 *
 * Every wait polls a condition with a deadline.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/record.h"
#include "proc.h"
#include "service/persist.h"
#include "storage/server.h"
#include "storage/spill.h"
#include "storage/store.h"
#include "storage/streamid.h"
#include "tap.h"

#define TIMEOUT_MS 300 /* the writer's command timeout: a hung Redis is noticed quickly */
#define MAX_ITEMS 512

/* What the completion callback saw for one submitted record. */
typedef struct slot {
    atomic_int done; /* 0 until completed */
    base_err result;
    char id[BASE_STREAM_ID_MAX + 1];
} slot;

typedef struct fixture {
    sto_server *srv;
    sto_store *st; /* the test's own connection, for reading back */
    svc_persist *p;
    slot slots[MAX_ITEMS];
    atomic_int completed;
} fixture;

static void on_done(void *arg, svc_persist_item *it, base_err result)
{
    slot *s = arg;
    s->result = result;
    snprintf(s->id, sizeof(s->id), "%s", it->stream_id);
    atomic_store(&s->done, 1);
}

static bool fixture_init(fixture *f, const char *policy_hint)
{
    char err[512] = "";
    memset(f, 0, sizeof(*f));
    sto_server_opts o = {.unix_socket = true, .appendfsync = "always"};
    if (sto_server_start(&o, &f->srv, err, sizeof(err)) != BASE_OK) {
        printf("# redis (%s): %s\n", policy_hint, err);
        return false;
    }
    if (sto_store_open(sto_server_url(f->srv), 5000, &f->st, err, sizeof(err)) != BASE_OK ||
        svc_persist_new(sto_server_url(f->srv), TIMEOUT_MS, 4096, &f->p, err, sizeof(err)) !=
            BASE_OK) {
        printf("# open: %s\n", err);
        return false;
    }
    return true;
}

static void fixture_fini(fixture *f)
{
    svc_persist_close_opts co = {.deadline_ns = base_mono_ns() + 5000000000u,
                                 .outage_wait_ms = 5000};
    svc_persist_close(f->p, &co, NULL);
    sto_store_close(f->st);
    sto_server_stop(f->srv);
}

/* Queue outcome "o-<i>" of @policy with slot @i; false if the queue refused it. */
static bool submit(fixture *f, const char *policy, int i)
{
    base_outcome *o = base_alloc_zero(1, sizeof(*o));
    if (o == NULL) {
        return false;
    }
    snprintf(o->policy, sizeof(o->policy), "%s", policy);
    snprintf(o->event_id, sizeof(o->event_id), "ev-%d", i);
    snprintf(o->outcome_id, sizeof(o->outcome_id), "o-%d", i);
    snprintf(o->signal, sizeof(o->signal), "resolved");
    o->value = 1.0;
    o->ts_ms = 1700000000000 + i;
    o->lsn = (uint64_t)i;
    svc_persist_item *it = svc_persist_item_new(SVC_PERSIST_APPEND, STO_OUTCOMES, policy, o);
    if (it == NULL) {
        base_free(o);
        return false;
    }
    it->done = on_done;
    it->done_arg = &f->slots[i];
    if (svc_persist_submit(f->p, it) != BASE_OK) {
        svc_persist_item_free(it);
        return false;
    }
    return true;
}

/* Wait until slots [from, to) completed. */
static bool wait_done(fixture *f, int from, int to, int timeout_ms)
{
    int64_t deadline = tst_now_ms() + timeout_ms;
    for (;;) {
        int n = 0;
        for (int i = from; i < to; i++) {
            n += atomic_load(&f->slots[i].done);
        }
        if (n == to - from) {
            return true;
        }
        if (tst_now_ms() > deadline) {
            return false;
        }
        tst_nap();
    }
}

static bool wait_redis_up(fixture *f, bool want, int timeout_ms)
{
    int64_t deadline = tst_now_ms() + timeout_ms;
    while (svc_persist_redis_up(f->p) != want) {
        if (tst_now_ms() > deadline) {
            return false;
        }
        tst_nap();
    }
    return true;
}

/*
 * Read the outcome stream of @policy: count each "o-<i>" (i < MAX_ITEMS)
 * into @seen, and check that the lsns (= i here) increase in stream order.
 */
static size_t read_stream(fixture *f, const char *policy, int *seen, bool *out_in_order)
{
    char after[BASE_STREAM_ID_MAX + 1] = "";
    size_t total = 0;
    long long prev = -1;
    *out_in_order = true;
    memset(seen, 0, sizeof(int) * MAX_ITEMS);
    for (;;) {
        sto_entry *en = NULL;
        size_t n = 0;
        if (sto_store_read(f->st, STO_OUTCOMES, policy, after, 1000, &en, &n) != BASE_OK ||
            n == 0) {
            sto_entries_free(STO_OUTCOMES, en, n);
            break;
        }
        for (size_t k = 0; k < n; k++) {
            const base_outcome *o = en[k].rec;
            int i = -1;
            if (sscanf(o->outcome_id, "o-%d", &i) == 1 && i >= 0 && i < MAX_ITEMS) {
                seen[i]++;
            }
            *out_in_order = *out_in_order && (long long)o->lsn > prev;
            prev = (long long)o->lsn;
            total++;
        }
        snprintf(after, sizeof(after), "%s", en[n - 1].id);
        sto_entries_free(STO_OUTCOMES, en, n);
    }
    return total;
}

/* ---- 1 ------------------------------------------------------------------- */

/* stderr (where base_log writes) goes to a file while a test runs. */
typedef struct capture {
    char path[256];
    int saved;
} capture;

static bool capture_begin(capture *c)
{
    snprintf(c->path, sizeof(c->path), "%s/rlfeed-persist-log.XXXXXX",
             getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
    int fd = mkstemp(c->path);
    fflush(stderr);
    c->saved = dup(2);
    if (fd < 0 || c->saved < 0 || dup2(fd, 2) < 0) {
        return false;
    }
    close(fd);
    return true;
}

/* Restore stderr; count the lines of the capture containing @a and @b. */
static void capture_end(capture *c, const char *a, int *out_a, const char *b, int *out_b)
{
    char line[1024];
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    *out_a = *out_b = 0;
    FILE *fp = fopen(c->path, "r");
    while (fp != NULL && fgets(line, sizeof(line), fp) != NULL) {
        printf("# log: %s", line);
        *out_a += strstr(line, a) != NULL;
        *out_b += strstr(line, b) != NULL;
    }
    if (fp != NULL) {
        fclose(fp);
    }
    unlink(c->path);
}

static void unanswered_batch_is_stored_once(void)
{
    enum { N = 200 };
    printf("# a batch sent to a hung Redis is retried and stored once\n");
    fixture f;
    if (!fixture_init(&f, "hung")) {
        TST_TRUE(0 && "fixture");
        fixture_fini(&f);
        return;
    }
    /* A first record, so the next batch goes out at once (no idle PING is due). */
    TST_TRUE(submit(&f, "h", 0));
    TST_TRUE(wait_done(&f, 0, 1, 5000));
    capture cap;
    TST_TRUE(capture_begin(&cap));
    pid_t rpid = sto_server_pid(f.srv);
    kill(rpid, SIGSTOP);
    bool queued = true;
    for (int i = 1; i <= N; i++) {
        queued = queued && submit(&f, "h", i);
    }
    TST_TRUE(queued);
    /* The writer sent the batch, waited TIMEOUT_MS for replies and gave up on the connection. */
    bool noticed = wait_redis_up(&f, false, 10000);
    TST_TRUE(noticed);
    /* Keep it hung for several reconnection attempts (each one times out after TIMEOUT_MS). */
    int64_t t_hang = tst_now_ms();
    while (tst_now_ms() - t_hang < 4 * TIMEOUT_MS) {
        tst_nap();
    }
    kill(rpid, SIGCONT); /* Redis now executes the batch it had received, unanswered */
    TST_TRUE(wait_done(&f, 1, N + 1, 20000));
    TST_TRUE(wait_redis_up(&f, true, 10000));
    int downs = 0, ups = 0;
    capture_end(&cap, "redis: unreachable; writes wait in the queue (", &downs,
                "redis: reachable again after ", &ups);
    TST_EQ(downs, 1);
    TST_EQ(ups, 1);
    int ok = 0;
    for (int i = 0; i <= N; i++) {
        ok += f.slots[i].result == BASE_OK;
    }
    TST_EQ(ok, N + 1);
    int seen[MAX_ITEMS];
    bool in_order = false;
    size_t total = read_stream(&f, "h", seen, &in_order);
    int once = 0, more = 0;
    for (int i = 0; i <= N; i++) {
        once += seen[i] == 1;
        more += seen[i] > 1;
    }
    printf("# stream: %zu entries for %d records; %d once, %d more than once\n", total, N + 1, once,
           more);
    TST_EQ(total, N + 1);
    TST_EQ(once, N + 1);
    TST_EQ(more, 0);
    TST_TRUE(in_order);
    fixture_fini(&f);
}

/* ---- 2 and 3 ------------------------------------------------------------- */

/* Write @rec at @id behind the writer's back. */
static base_err foreign_write(fixture *f, const char *policy, const char *id, int i)
{
    base_outcome o;
    memset(&o, 0, sizeof(o));
    snprintf(o.policy, sizeof(o.policy), "%s", policy);
    snprintf(o.outcome_id, sizeof(o.outcome_id), "foreign-%d", i);
    snprintf(o.signal, sizeof(o.signal), "resolved");
    o.value = 1.0;
    o.lsn = 1000000; /* not one of ours: excluded from the order check below */
    sto_append a = {.kind = STO_OUTCOMES, .policy = policy, .rec = &o, .id = id};
    base_err e = sto_store_append(f->st, &a, 1);
    return e != BASE_OK ? e : a.out_err;
}

static void ids_move_past_a_foreign_top(void)
{
    enum { N1 = 20, N2 = 20 };
    printf("# an entry above the writer's ids: it moves past the stream's top\n");
    fixture f;
    if (!fixture_init(&f, "foreign")) {
        TST_TRUE(0 && "fixture");
        fixture_fini(&f);
        return;
    }
    /* 3: a stream whose top is a day ahead of the clock, before the writer's first write. */
    char future[BASE_STREAM_ID_MAX + 1];
    char top[BASE_STREAM_ID_MAX + 1] = "";
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t day_ahead = (uint64_t)now.tv_sec * 1000u + 86400000u;
    snprintf(future, sizeof(future), "%llu-5", (unsigned long long)day_ahead);
    TST_OK(foreign_write(&f, "g", future, 0));
    bool queued = true;
    for (int i = 0; i < N1; i++) {
        queued = queued && submit(&f, "g", i);
    }
    TST_TRUE(wait_done(&f, 0, N1, 10000));
    sto_sid fut, first;
    TST_TRUE(sto_sid_parse(future, &fut));
    TST_TRUE(sto_sid_parse(f.slots[0].id, &first));
    TST_TRUE(f.slots[0].result == BASE_OK && sto_sid_cmp(first, fut) > 0);

    /* 2: someone else appends above what the writer has given out so far. */
    sto_sid last;
    TST_TRUE(sto_sid_parse(f.slots[N1 - 1].id, &last));
    last.ms += 60000;
    TST_TRUE(sto_sid_format(last, top, sizeof(top)));
    TST_OK(foreign_write(&f, "g", top, 1));
    for (int i = N1; i < N1 + N2; i++) {
        queued = queued && submit(&f, "g", i);
    }
    TST_TRUE(queued);
    TST_TRUE(wait_done(&f, N1, N1 + N2, 10000));
    int ok = 0, above = 0;
    for (int i = 0; i < N1 + N2; i++) {
        sto_sid id;
        ok += f.slots[i].result == BASE_OK;
        above += i >= N1 && sto_sid_parse(f.slots[i].id, &id) && sto_sid_cmp(id, last) > 0;
    }
    TST_EQ(ok, N1 + N2);
    TST_EQ(above, N2);
    int seen[MAX_ITEMS];
    bool in_order = false;
    size_t total = read_stream(&f, "g", seen, &in_order);
    int once = 0;
    for (int i = 0; i < N1 + N2; i++) {
        once += seen[i] == 1;
    }
    printf("# stream: %zu entries (2 foreign); %d of %d records once\n", total, once, N1 + N2);
    TST_EQ(total, N1 + N2 + 2);
    TST_EQ(once, N1 + N2);
    fixture_fini(&f);
}

/* ---- 4 and 5 ------------------------------------------------------------- */

/* Close @f's writer with Redis hung; returns how long close took, in ms. */
static int64_t close_hung(fixture *f, const char *spill_dir, int n, svc_persist_report *rep)
{
    TST_TRUE(submit(f, "s", 0));
    TST_TRUE(wait_done(f, 0, 1, 5000));
    kill(sto_server_pid(f->srv), SIGSTOP);
    bool queued = true;
    for (int i = 1; i <= n; i++) {
        queued = queued && submit(f, "s", i);
    }
    TST_TRUE(queued);
    TST_TRUE(wait_redis_up(f, false, 10000)); /* the first batch went out, unanswered */
    svc_persist_close_opts co = {
        .deadline_ns = base_mono_ns() + 3000000000u, .outage_wait_ms = 500, .spill_dir = spill_dir};
    int64_t t0 = tst_now_ms();
    svc_persist_close(f->p, &co, rep);
    f->p = NULL;
    int64_t took = tst_now_ms() - t0;
    kill(sto_server_pid(f->srv), SIGCONT);
    return took;
}

static void close_spills_and_replay_stores_once(void)
{
    enum { N = 300 };
    printf("# closing while Redis is hung: spill, then replay once Redis is back\n");
    fixture f;
    char *dir = tst_mkdtemp("rlfeed-persist-spill");
    if (dir == NULL || !fixture_init(&f, "spill")) {
        TST_TRUE(0 && "fixture");
        fixture_fini(&f);
        return;
    }
    svc_persist_report rep;
    int64_t took = close_hung(&f, dir, N, &rep);
    printf("# close took %lld ms: %llu spilled to %s, %llu lost, outage %llu ms\n", (long long)took,
           (unsigned long long)rep.spilled, rep.spill_path, (unsigned long long)rep.lost,
           (unsigned long long)rep.outage_ms);
    TST_TRUE(took < 10000); /* the deadline (3 s) plus a command timeout, with slack */
    TST_EQ(rep.spilled, N);
    TST_EQ(rep.lost, 0);
    TST_TRUE(rep.outage_ms > 0);
    TST_TRUE(strstr(rep.spill_path, dir) == rep.spill_path);
    int not_stored = 0;
    for (int i = 1; i <= N; i++) {
        not_stored += atomic_load(&f.slots[i].done) && f.slots[i].result == BASE_ECLOSED;
    }
    TST_EQ(not_stored, N);

    /* Redis resumed and ran the batch it had; the replay must not store it again. */
    sto_spill_report sr;
    char err[512] = "";
    TST_OK(sto_store_ping(f.st) == BASE_OK ? BASE_OK : sto_store_reconnect(f.st));
    TST_OK(sto_spill_replay(f.st, dir, &sr, err, sizeof(err)));
    printf("# replay: %u file, %llu records: %llu appended, %llu already stored, %llu "
           "renumbered\n",
           sr.files, (unsigned long long)sr.records, (unsigned long long)sr.appended,
           (unsigned long long)sr.present, (unsigned long long)sr.renumbered);
    TST_TRUE(sr.files == 1 && sr.records == N && sr.appended + sr.present == N);
    TST_EQ(sr.renumbered, 0);
    int seen[MAX_ITEMS];
    bool in_order = false;
    size_t total = read_stream(&f, "s", seen, &in_order);
    int once = 0;
    for (int i = 0; i <= N; i++) {
        once += seen[i] == 1;
    }
    TST_EQ(total, N + 1);
    TST_EQ(once, N + 1);
    TST_TRUE(in_order);
    fixture_fini(&f);
    tst_rm_rf(dir);
    free(dir);
}

static void close_without_a_spill_dir_reports_the_loss(void)
{
    enum { N = 50 };
    printf("# closing while Redis is hung, with nowhere to spill\n");
    fixture f;
    if (!fixture_init(&f, "lost")) {
        TST_TRUE(0 && "fixture");
        fixture_fini(&f);
        return;
    }
    svc_persist_report rep;
    (void)close_hung(&f, NULL, N, &rep);
    printf("# %llu lost: %s\n", (unsigned long long)rep.lost, rep.error);
    TST_EQ(rep.spilled, 0);
    TST_EQ(rep.lost, N);
    TST_TRUE(strstr(rep.error, "data_dir") != NULL);
    fixture_fini(&f);

    /* A spill directory that does not exist: the spill file cannot be created. */
    if (!fixture_init(&f, "lost-dir")) {
        TST_TRUE(0 && "fixture");
        fixture_fini(&f);
        return;
    }
    (void)close_hung(&f, "/nonexistent/rlfeed-spill-dir", N, &rep);
    printf("# %llu lost: %s\n", (unsigned long long)rep.lost, rep.error);
    TST_EQ(rep.spilled, 0);
    TST_EQ(rep.lost, N);
    TST_TRUE(strstr(rep.error, "/nonexistent/rlfeed-spill-dir") != NULL);
    TST_STREQ(rep.spill_path, "");
    fixture_fini(&f);
}

/* ---- counters ------------------------------------------------------------ */

/* `written` counts the records stored, not the checkpoints (operations.md). */
static void written_counts_records_only(void)
{
    printf("# written counts records, not checkpoints\n");
    fixture f;
    if (!fixture_init(&f, "written")) {
        TST_TRUE(0 && "fixture");
        fixture_fini(&f);
        return;
    }
    for (int i = 0; i < 3; i++) {
        TST_TRUE(submit(&f, "w", i));
    }
    base_snapshot *m = base_snapshot_new(6, 4);
    svc_persist_item *it =
        m != NULL ? svc_persist_item_new(SVC_PERSIST_MODEL, STO_JOINED, "w", m) : NULL;
    TST_TRUE(it != NULL);
    if (it != NULL) {
        snprintf(m->policy, sizeof(m->policy), "w");
        snprintf(m->learner, sizeof(m->learner), "linucb");
        m->version = 1;
        m->dim = 2;
        m->n_actions = 3;
        it->done = on_done;
        it->done_arg = &f.slots[3];
        TST_OK(svc_persist_submit(f.p, it));
        TST_TRUE(wait_done(&f, 0, 4, 5000));
        TST_OK(f.slots[3].result);
    } else {
        base_snapshot_free(m);
    }
    TST_EQ(svc_persist_written(f.p), 3);
    fixture_fini(&f);
}

int main(void)
{
    if (system("command -v redis-server > /dev/null 2>&1") != 0) {
        tst_skip_all("redis-server not found");
    }
    unanswered_batch_is_stored_once();
    ids_move_past_a_foreign_top();
    close_spills_and_replay_stores_once();
    close_without_a_spill_dir_reports_the_loss();
    written_counts_records_only();
    return tst_done();
}
