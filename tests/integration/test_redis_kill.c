/*
 * kill -9 of rlfeedd's own (private) redis-server, the default set-up:
 *
 * 1. with the default configuration the private redis-server runs with
 *    appendfsync always; rlfeedd notices it died, starts it again on the
 *    same port and data directory, and serves acknowledged feedback again.
 * 2. kill -9 of it, repeatedly, under acknowledged feedback load, while
 *    another thread keeps the disk busy (large writes, each fdatasync'ed,
 *    so Redis's own fsyncs are slow): every acknowledged outcome is in the
 *    outcome stream, and no outcome or decision is stored twice.
 *
 * Options (for the manual soak; the defaults are the CI run):
 *   --kills N          kills in case 2 (default 3)
 *   --disk-mb M        size the disk writer cycles over, 0 = none (default 64)
 *   --appendfsync MODE passed to rlfeedd (default: not passed, the default)
 * The soak "meson test --suite slow test_redis_kill_10x" runs 10 kills over
 * a 2000 MB cycle.
 *
 * Every wait polls a condition with a deadline.
 */
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/record.h"
#include "daemon.h"
#include "proc.h"
#include "storage/server.h"
#include "storage/store.h"
#include "tap.h"

#define POLICY "k"
#define DIM 4
#define K 4

static const char CONFIG[] = "[server]\n"
                             "redis_timeout_ms = 1000\n"
                             "snapshot_interval_ms = 3600000\n"
                             "[policy " POLICY "]\n"
                             "dim = 4\n"
                             "actions = a0, a1, a2, a3\n"
                             "window_ms = 3600000\n"
                             "[signal " POLICY ".resolved]\n"
                             "kind = flag\n";

static const float X[DIM] = {0.25f, -0.5f, 0.75f, 0.1f};
static const char *const IDS[K] = {"a0", "a1", "a2", "a3"};
static const float LOGITS[K] = {0.1f, 0.2f, 0.3f, 0.4f};

static bool decide(rlfeed_client *c, char *out_event, size_t size)
{
    rlfeed_reply r;
    if (rlfeed_client_decide(c, POLICY, NULL, X, DIM, K, IDS, LOGITS, &r) != BASE_OK || !r.ok) {
        return false;
    }
    snprintf(out_event, size, "%s", r.event_id);
    return true;
}

static bool feedback(rlfeed_client *c, const char *event, const char *outcome_id)
{
    rlfeed_reply r;
    return rlfeed_client_feedback(c, POLICY, event, "resolved", 1.0, outcome_id, &r) == BASE_OK &&
           r.ok;
}

/*
 * From the daemon's log: the private redis-server's latest pid ("at URL (pid
 * N," at start, "restarted (pid N)" later) and its URL; lines with @count.
 */
static int scan_log(const tst_daemon *f, int *out_pid, char *out_url, size_t url_len,
                    const char *count)
{
    char line[2048];
    int n = 0;
    FILE *fp = fopen(f->log, "r");
    while (fp != NULL && fgets(line, sizeof(line), fp) != NULL) {
        const char *at = strstr(line, "private redis-server at ");
        const char *re = strstr(line, "private redis-server restarted (pid ");
        int pid = 0;
        char url[256];
        if (at != NULL && sscanf(at, "private redis-server at %255s (pid %d,", url, &pid) == 2) {
            *out_pid = pid;
            if (out_url != NULL) {
                snprintf(out_url, url_len, "%s", url);
            }
        } else if (re != NULL && sscanf(re, "private redis-server restarted (pid %d)", &pid) == 1) {
            *out_pid = pid;
        }
        n += count != NULL && strstr(line, count) != NULL;
    }
    if (fp != NULL) {
        fclose(fp);
    }
    return n;
}

/* Wait until the log names a private redis-server pid other than @old. */
static int wait_new_pid(const tst_daemon *f, int old, int timeout_ms)
{
    int64_t deadline = tst_now_ms() + timeout_ms;
    while (tst_now_ms() < deadline) {
        int pid = 0;
        (void)scan_log(f, &pid, NULL, 0, NULL);
        if (pid > 0 && pid != old) {
            return pid;
        }
        tst_nap();
    }
    return 0;
}

/* The private redis-server's password, from the redis.conf rlfeedd wrote ("" if none). */
static void private_password(const tst_daemon *f, char *out, size_t size)
{
    char path[700], line[256];
    out[0] = '\0';
    snprintf(path, sizeof(path), "%s/embedded/redis.conf", f->dir);
    FILE *fp = fopen(path, "r");
    while (fp != NULL && fgets(line, sizeof(line), fp) != NULL) {
        char pw[200];
        if (sscanf(line, "requirepass %199s", pw) == 1) {
            snprintf(out, size, "%s", pw);
        }
    }
    if (fp != NULL) {
        fclose(fp);
    }
}

/* The running private server's appendfsync, asked with redis-cli ("" if it cannot be asked). */
static void appendfsync_of(const tst_daemon *f, const char *pass, char *out, size_t size)
{
    char cmd[1024], line[32];
    out[0] = '\0';
    snprintf(cmd, sizeof(cmd),
             "redis-cli -s %s/embedded/redis.sock -a %s --no-auth-warning config get appendfsync "
             "2>/dev/null",
             f->dir, pass);
    FILE *p = popen(cmd, "r");
    /* Two lines: the name, then the value. */
    for (int i = 0; p != NULL && i < 2 && fgets(line, sizeof(line), p) != NULL; i++) {
        line[strcspn(line, "\r\n")] = '\0';
        if (i == 1) {
            snprintf(out, size, "%s", line);
        }
    }
    if (p != NULL) {
        pclose(p);
    }
}

/* Whether a client without the password is refused by the private server. */
static bool refuses_without_password(const tst_daemon *f)
{
    char url[700];
    snprintf(url, sizeof(url), "unix:%s/embedded/redis.sock", f->dir);
    sto_store *st = NULL;
    if (sto_store_open(url, 5000, &st, NULL, 0) != BASE_OK) {
        return false; /* the socket should be there: only AUTH is missing */
    }
    base_err e = sto_store_ping(st);
    sto_store_close(st);
    return e == BASE_ESTORE;
}

/* rlfeedd with its own private redis-server (the default set-up); false, cleaned up, if not. */
static bool start_private(tst_daemon *f, const char *name)
{
    if (!tst_daemon_init(f, name, CONFIG) || !tst_daemon_start(f, false, NULL)) {
        TST_TRUE(0 && "fixture");
        tst_daemon_fini(f, true);
        return false;
    }
    return true;
}

/*
 * A second rlfeedd on @f's data directory (its own endpoints) is refused before it changes
 * anything there: the first one's redis.conf, whose password a restarted server reads, stays.
 */
static void second_on_the_data_dir_changes_nothing(tst_daemon *f, const char *pass)
{
    char log[700], url[700], data_dir[700], now[200];
    snprintf(log, sizeof(log), "%s/second.log", f->dir);
    snprintf(url, sizeof(url), "ipc://%s/second.sock", f->dir);
    snprintf(data_dir, sizeof(data_dir), "%s/embedded", f->dir);
    const char *args[] = {"--config", f->conf,      "--url",  url, "--http-url",
                          "",         "--data-dir", data_dir, NULL};
    TST_EQ(tst_run("RLFEEDD", args, log, 20000), 1);
    TST_TRUE(tst_file_has(log, "data directory in use by another rlfeedd"));
    private_password(f, now, sizeof(now));
    TST_STREQ(now, pass);

    /*
     * Also while the first one's server is down (crashed, being restarted): its pid file
     * then names no running redis-server, but the first rlfeedd still holds the directory.
     * Here the pid file is made stale by hand, and put back.
     */
    char pidfile[720], saved[64] = "";
    snprintf(pidfile, sizeof(pidfile), "%s/redis.pid", data_dir);
    FILE *pf = fopen(pidfile, "r");
    TST_TRUE(pf != NULL && fgets(saved, sizeof(saved), pf) != NULL);
    if (pf != NULL) {
        fclose(pf);
    }
    pf = fopen(pidfile, "w");
    TST_TRUE(pf != NULL && fputs("999999999\n", pf) >= 0 && fclose(pf) == 0);
    TST_EQ(tst_run("RLFEEDD", args, log, 20000), 1);
    TST_TRUE(tst_file_has(log, "data directory in use by another rlfeedd"));
    TST_TRUE(tst_file_has(log, "rlfeedd.lock is held by pid"));
    private_password(f, now, sizeof(now));
    TST_STREQ(now, pass);
    pf = fopen(pidfile, "w");
    TST_TRUE(pf != NULL && fputs(saved, pf) >= 0 && fclose(pf) == 0);

    /* A data directory that is a file: refused, and the file left as it was (mode too). */
    char file[700], err[512] = "";
    snprintf(file, sizeof(file), "%s/not-a-dir", f->dir);
    FILE *fp = fopen(file, "w");
    TST_TRUE(fp != NULL && fclose(fp) == 0 && chmod(file, 0644) == 0);
    sto_server_opts ro = {.dir = file, .unix_socket = true, .auth = true};
    sto_server *srv = NULL;
    TST_EQ(sto_server_start(&ro, &srv, err, sizeof(err)), BASE_EIO);
    TST_TRUE(srv == NULL && strstr(err, "Not a directory") != NULL);
    struct stat st;
    TST_TRUE(stat(file, &st) == 0 && (st.st_mode & 0777) == 0644 && st.st_size == 0);

    /* rlfeedd on a data_dir it cannot create: the words operations.md gives, naming it. */
    char under[720], want[800];
    snprintf(under, sizeof(under), "%s/data", file);
    const char *bad[] = {"--config", f->conf,      "--url", url, "--http-url",
                         "",         "--data-dir", under,   NULL};
    TST_EQ(tst_run("RLFEEDD", bad, log, 20000), 1);
    snprintf(want, sizeof(want), "data_dir %s: cannot create it: Not a directory", under);
    TST_TRUE(tst_file_has(log, want));
}

static void private_server_is_restarted(void)
{
    printf("# kill -9 of the private redis-server: rlfeedd starts it again\n");
    tst_daemon f;
    if (!start_private(&f, "rlfeed-kill-restart")) {
        return;
    }
    char ev[BASE_ID_MAX + 1], url[256] = "", pass[200];
    int pid = 0;
    (void)scan_log(&f, &pid, url, sizeof(url), NULL);
    private_password(&f, pass, sizeof(pass));
    /* A unix socket with a generated password, which the log never shows. */
    TST_TRUE(pid > 0 && strncmp(url, "unix://:***@/", 13) == 0);
    TST_TRUE(strlen(pass) == 48 && !tst_file_has(f.log, pass));
    if (pid <= 0) {
        tst_daemon_fini(&f, true); /* never kill(0, ...): that is our own process group */
        return;
    }
    TST_TRUE(refuses_without_password(&f));
    second_on_the_data_dir_changes_nothing(&f, pass);
    char fsync_mode[32];
    appendfsync_of(&f, pass, fsync_mode, sizeof(fsync_mode));
    TST_STREQ(fsync_mode, "always"); /* the default */
    TST_TRUE(decide(f.c, ev, sizeof(ev)) && feedback(f.c, ev, "before"));
    kill(pid, SIGKILL);
    int pid2 = wait_new_pid(&f, pid, 20000);
    printf("# redis-server pid %d killed; restarted as pid %d\n", pid, pid2);
    TST_TRUE(pid2 > 0);
    /* Acknowledged feedback works again (the client waits while the writer reconnects). */
    rlfeed_client *c = NULL;
    TST_OK(rlfeed_client_open(f.url, 15000, &c));
    bool ok = c != NULL && decide(c, ev, sizeof(ev)) && feedback(c, ev, "after");
    TST_TRUE(ok);
    rlfeed_client_close(c);
    TST_TRUE(refuses_without_password(&f)); /* the restarted server keeps its password */
    TST_EQ(scan_log(&f, &pid, NULL, 0, "private redis-server killed by signal 9; restarting"), 1);
    TST_TRUE(!tst_file_has(f.log, pass)); /* nor does the restart's line */
    TST_EQ(tst_daemon_stop(&f), 0);
    tst_daemon_fini(&f, tst_failed > 0);
}

/* Whether process @pid is gone (or a zombie) within @ms. */
static bool process_gone(int pid, int ms)
{
    for (int64_t dl = tst_now_ms() + ms;; tst_nap()) {
        char path[64], buf[256] = "";
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        FILE *fp = fopen(path, "r");
        size_t n = fp != NULL ? fread(buf, 1, sizeof(buf) - 1, fp) : 0;
        if (fp != NULL) {
            fclose(fp);
        }
        buf[n] = '\0';
        const char *rp = strrchr(buf, ')');
        if (fp == NULL || (rp != NULL && (rp[2] == 'Z' || rp[2] == 'X'))) {
            return true;
        }
        if (tst_now_ms() >= dl) {
            return false;
        }
    }
}

/*
 * A redis-server as a dead rlfeedd may leave it on its data directory @dir/embedded: running,
 * named by redis.pid, and the directory's lock free (no sto_server holds it). Its pid, or 0.
 */
static pid_t start_leftover(const char *dir)
{
    char data[700], sock[720], pidfile[720], log[720];
    snprintf(data, sizeof(data), "%s/embedded", dir);
    snprintf(sock, sizeof(sock), "%s/left.sock", data);
    snprintf(pidfile, sizeof(pidfile), "%s/redis.pid", data);
    snprintf(log, sizeof(log), "%s/leftover-redis.log", dir); /* not the TAP stream */
    char *argv[] = {"redis-server", "--port",    "0",     "--unixsocket", sock, "--dir",
                    data,           "--pidfile", pidfile, "--save",       "",   NULL};
    pid_t pid = tst_spawn(argv, log);
    for (int64_t dl = tst_now_ms() + 10000; pid > 0; tst_nap()) {
        long named = 0;
        FILE *fp = fopen(pidfile, "r");
        bool got = fp != NULL && fscanf(fp, "%ld", &named) == 1;
        if (fp != NULL) {
            fclose(fp);
        }
        if (got && named == (long)pid) {
            return pid;
        }
        if (tst_now_ms() >= dl) {
            tst_stop(pid, 5000);
            return 0;
        }
    }
    return 0;
}

/*
 * kill -9 of rlfeedd: its private redis-server goes too (it is signalled when its parent
 * dies), so the next rlfeedd never runs a second one on the same AOF directory. And one left
 * there anyway (here one this test starts, with the pid file rlfeedd's would have and the
 * directory's lock free, as a dead rlfeedd leaves them) is stopped before the new one starts.
 */
static void private_server_goes_with_rlfeedd(void)
{
    printf("# kill -9 of rlfeedd: its private redis-server goes too\n");
    tst_daemon f;
    if (!start_private(&f, "rlfeed-kill-owner")) {
        return;
    }
    int pid = 0;
    (void)scan_log(&f, &pid, NULL, 0, NULL);
    TST_TRUE(pid > 0);
    TST_TRUE(tst_daemon_kill(&f));
    TST_TRUE(pid > 0 && process_gone(pid, 10000));

    pid_t left_pid = start_leftover(f.dir);
    TST_TRUE(left_pid > 0);
    TST_TRUE(tst_daemon_start(&f, false, NULL));
    TST_TRUE(left_pid > 0 && process_gone(left_pid, 1));
    TST_TRUE(tst_file_has(f.log, "an earlier rlfeedd started on"));
    int pid2 = 0;
    (void)scan_log(&f, &pid2, NULL, 0, NULL);
    TST_TRUE(pid2 > 0 && pid2 != left_pid);
    char ev[BASE_ID_MAX + 1];
    TST_TRUE(decide(f.c, ev, sizeof(ev)) && feedback(f.c, ev, "after-leftover"));
    TST_EQ(tst_daemon_stop(&f), 0);
    if (left_pid > 0) {
        tst_stop(left_pid, 5000); /* reaps it */
    }
    tst_daemon_fini(&f, tst_failed > 0);
}

/* ---- 2: kill -9 under load ---------------------------------------------- */

#define N_LOADERS 4
#define LOADER_MAX 400000    /* outcomes per loader thread */
#define LOAD_BETWEEN_MS 1500 /* load between kills (and before the first) */
#define ACKS_BETWEEN 200     /* ... and at least this many acknowledgements */

typedef struct loader {
    const char *url;
    int idx;
    atomic_bool *stop;
    uint32_t n;                     /* outcomes attempted: [0, n) */
    unsigned char *acked;           /* [LOADER_MAX] */
    char (*event)[BASE_ID_MAX + 1]; /* [LOADER_MAX] the decision each outcome is for */
    atomic_uint n_acked;
    uint32_t failed; /* decide or feedback answered with an error */
} loader;

static void outcome_name(char *out, size_t size, int t, uint32_t i)
{
    snprintf(out, size, "o-%d-%u", t, i);
}

/* Decide, then acknowledged feedback with a unique outcome_id, until told to stop. */
static void *loader_main(void *arg)
{
    loader *l = arg;
    rlfeed_client *c = NULL;
    /* Longer than a kill and restart: feedback waits for Redis rather than failing. */
    if (rlfeed_client_open(l->url, 30000, &c) != BASE_OK) {
        l->failed++;
        return NULL;
    }
    while (!atomic_load(l->stop) && l->n < LOADER_MAX) {
        uint32_t i = l->n;
        char oid[64];
        if (!decide(c, l->event[i], sizeof(l->event[i]))) {
            l->failed++;
            continue;
        }
        outcome_name(oid, sizeof(oid), l->idx, i);
        l->n++;
        if (feedback(c, l->event[i], oid)) {
            l->acked[i] = 1;
            atomic_fetch_add(&l->n_acked, 1);
        }
    }
    rlfeed_client_close(c);
    return NULL;
}

static unsigned total_acked(loader *ls)
{
    unsigned n = 0;
    for (int t = 0; t < N_LOADERS; t++) {
        n += atomic_load(&ls[t].n_acked);
    }
    return n;
}

/* Keeps the disk busy: writes of 8 MiB, each fdatasync'ed, cycling over @mb MiB. */
typedef struct disk_hog {
    char path[700];
    long mb;
    atomic_bool stop;
    uint64_t written_mb;
} disk_hog;

static void *hog_main(void *arg)
{
    disk_hog *h = arg;
    enum { CHUNK = 8 << 20 };
    char *buf = calloc(1, CHUNK);
    int fd = open(h->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    long off_mb = 0;
    while (buf != NULL && fd >= 0 && !atomic_load(&h->stop)) {
        if (pwrite(fd, buf, CHUNK, (off_t)off_mb << 20) != CHUNK || fdatasync(fd) != 0) {
            break;
        }
        h->written_mb += 8;
        off_mb = off_mb + 8 >= h->mb ? 0 : off_mb + 8;
    }
    if (fd >= 0) {
        close(fd);
    }
    unlink(h->path);
    free(buf);
    return NULL;
}

/* Wait until @ls has @n more acknowledgements than @from and @ms passed. */
static bool wait_load(loader *ls, unsigned from, unsigned n, int ms)
{
    int64_t t0 = tst_now_ms();
    while (tst_now_ms() - t0 < ms || total_acked(ls) < from + n) {
        if (tst_now_ms() - t0 > 60000) {
            return false;
        }
        tst_nap();
    }
    return true;
}

/* Outcome stream of the server at @url: entries, ids seen more than once, ids not ours. */
static bool read_outcomes(const char *url, unsigned char **seen, uint64_t *out_entries,
                          uint64_t *out_dups, uint64_t *out_foreign)
{
    sto_store *st = NULL;
    char err[256] = "", after[BASE_STREAM_ID_MAX + 1] = "";
    if (sto_store_open(url, 10000, &st, err, sizeof(err)) != BASE_OK) {
        printf("# reading the outcome stream: %s\n", err);
        return false;
    }
    bool ok = true;
    for (;;) {
        sto_entry *en = NULL;
        size_t got = 0;
        base_err e = sto_store_read(st, STO_OUTCOMES, POLICY, after, 1000, &en, &got);
        if (e != BASE_OK || got == 0) {
            ok = e == BASE_OK;
            sto_entries_free(STO_OUTCOMES, en, got);
            break;
        }
        for (size_t k = 0; k < got; k++) {
            int t = -1;
            unsigned i = 0;
            const base_outcome *o = en[k].rec;
            (*out_entries)++;
            if (sscanf(o->outcome_id, "o-%d-%u", &t, &i) != 2 || t < 0 || t >= N_LOADERS ||
                i >= LOADER_MAX) {
                (*out_foreign)++;
                continue;
            }
            *out_dups += seen[t][i] > 0;
            seen[t][i] = 1;
        }
        snprintf(after, sizeof(after), "%s", en[got - 1].id);
        sto_entries_free(STO_OUTCOMES, en, got);
    }
    sto_store_close(st);
    return ok;
}

/* Decision stream: entries, and event ids stored more than once. */
static bool read_decisions(const char *url, uint64_t *out_entries, uint64_t *out_dups)
{
    sto_store *st = NULL;
    char err[256] = "", after[BASE_STREAM_ID_MAX + 1] = "";
    json_t *ids = json_object(); /* a set of event ids */
    if (ids == NULL || sto_store_open(url, 10000, &st, err, sizeof(err)) != BASE_OK) {
        json_decref(ids);
        return false;
    }
    bool ok = true;
    for (;;) {
        sto_entry *en = NULL;
        size_t got = 0;
        base_err e = sto_store_read(st, STO_DECISIONS, POLICY, after, 1000, &en, &got);
        if (e != BASE_OK || got == 0) {
            ok = e == BASE_OK;
            sto_entries_free(STO_DECISIONS, en, got);
            break;
        }
        for (size_t k = 0; k < got; k++) {
            const char *ev = ((const base_decision *)en[k].rec)->event_id;
            (*out_entries)++;
            *out_dups += json_object_get(ids, ev) != NULL;
            json_object_set_new(ids, ev, json_true());
        }
        snprintf(after, sizeof(after), "%s", en[got - 1].id);
        sto_entries_free(STO_DECISIONS, en, got);
    }
    sto_store_close(st);
    json_decref(ids);
    return ok;
}

static void kill_under_load(int kills, long disk_mb, const char *appendfsync)
{
    printf("# kill -9 of the private redis-server %d times under acknowledged load, disk writer "
           "over %ld MB, appendfsync %s\n",
           kills, disk_mb, appendfsync != NULL ? appendfsync : "(default)");
    tst_daemon f;
    const char *extra[] = {"--appendfsync", appendfsync, NULL};
    if (!tst_daemon_init(&f, "rlfeed-kill-load", CONFIG) ||
        !tst_daemon_start(&f, false, appendfsync != NULL ? extra : NULL)) {
        TST_TRUE(0 && "fixture");
        tst_daemon_fini(&f, true);
        return;
    }
    char url[256] = "";
    int pid = 0;
    (void)scan_log(&f, &pid, url, sizeof(url), NULL);
    disk_hog hog;
    memset(&hog, 0, sizeof(hog));
    hog.mb = disk_mb;
    snprintf(hog.path, sizeof(hog.path), "%s/disk-hog", f.dir);
    pthread_t hog_th;
    bool hogging = disk_mb > 0 && pthread_create(&hog_th, NULL, hog_main, &hog) == 0;

    atomic_bool stop = false;
    loader ls[N_LOADERS];
    pthread_t th[N_LOADERS];
    memset(ls, 0, sizeof(ls));
    for (int t = 0; t < N_LOADERS; t++) {
        ls[t].url = f.url;
        ls[t].idx = t;
        ls[t].stop = &stop;
        ls[t].acked = calloc(LOADER_MAX, 1);
        ls[t].event = calloc(LOADER_MAX, sizeof(ls[t].event[0]));
        if (ls[t].acked == NULL || ls[t].event == NULL ||
            pthread_create(&th[t], NULL, loader_main, &ls[t]) != 0) {
            abort(); /* the test cannot run at all */
        }
    }
    int done_kills = 0;
    for (int k = 0; k < kills; k++) {
        if (!wait_load(ls, total_acked(ls), ACKS_BETWEEN, LOAD_BETWEEN_MS)) {
            break;
        }
        (void)scan_log(&f, &pid, NULL, 0, NULL);
        if (pid <= 0) {
            break; /* no pid in the log: never kill(0, ...), our own process group */
        }
        unsigned at_kill = total_acked(ls);
        kill(pid, SIGKILL);
        int pid2 = wait_new_pid(&f, pid, 30000);
        printf("# kill %d: pid %d after %u acknowledged; restarted as pid %d\n", k + 1, pid,
               at_kill, pid2);
        if (pid2 <= 0) {
            break;
        }
        done_kills++;
    }
    TST_EQ(done_kills, kills);
    TST_TRUE(wait_load(ls, total_acked(ls), ACKS_BETWEEN, LOAD_BETWEEN_MS));
    atomic_store(&stop, true);
    for (int t = 0; t < N_LOADERS; t++) {
        pthread_join(th[t], NULL);
    }
    atomic_store(&hog.stop, true);
    if (hogging) {
        pthread_join(hog_th, NULL);
    }
    /* Retry what was not acknowledged: matched, or duplicate if it was stored. */
    uint32_t attempted = 0, unacked = 0, retried_ok = 0, failed = 0;
    rlfeed_client *c = NULL;
    TST_OK(rlfeed_client_open(f.url, 30000, &c));
    for (int t = 0; t < N_LOADERS && c != NULL; t++) {
        attempted += ls[t].n;
        failed += ls[t].failed;
        for (uint32_t i = 0; i < ls[t].n; i++) {
            char oid[64];
            if (ls[t].acked[i]) {
                continue;
            }
            unacked++;
            outcome_name(oid, sizeof(oid), t, i);
            for (int a = 0; a < 3 && !ls[t].acked[i]; a++) {
                if (feedback(c, ls[t].event[i], oid)) {
                    ls[t].acked[i] = 1;
                    retried_ok++;
                }
            }
        }
    }
    rlfeed_client_close(c);

    unsigned char *seen[N_LOADERS];
    for (int t = 0; t < N_LOADERS; t++) {
        seen[t] = calloc(LOADER_MAX, 1);
    }
    uint64_t entries = 0, dups = 0, foreign = 0, missing = 0, acked = 0;
    uint64_t d_entries = 0, d_dups = 0;
    /* Stop rlfeedd first: everything it had queued is then stored (Redis is up). */
    TST_EQ(tst_daemon_stop(&f), 0);
    /* The private server stopped with rlfeedd; read its AOF back from the data directory. */
    sto_server *srv = NULL;
    char data_dir[700], err[512] = "";
    snprintf(data_dir, sizeof(data_dir), "%s/embedded", f.dir);
    sto_server_opts ro = {.dir = data_dir, .unix_socket = true};
    TST_OK(sto_server_start(&ro, &srv, err, sizeof(err)));
    bool read_ok = srv != NULL &&
                   read_outcomes(sto_server_url(srv), seen, &entries, &dups, &foreign) &&
                   read_decisions(sto_server_url(srv), &d_entries, &d_dups);
    TST_TRUE(read_ok);
    sto_server_stop(srv);
    for (int t = 0; t < N_LOADERS; t++) {
        for (uint32_t i = 0; i < ls[t].n; i++) {
            acked += ls[t].acked[i];
            missing += ls[t].acked[i] && !seen[t][i];
        }
    }
    printf("# %d kills, disk writer %llu MB written: %u outcomes sent, %u acknowledged at once, "
           "%u after a retry; outcome stream %llu entries: %llu acknowledged missing, %llu "
           "stored twice; decision stream %llu entries, %llu stored twice\n",
           done_kills, (unsigned long long)hog.written_mb, attempted, attempted - unacked,
           retried_ok, (unsigned long long)entries, (unsigned long long)missing,
           (unsigned long long)dups, (unsigned long long)d_entries, (unsigned long long)d_dups);
    TST_EQ(failed, 0);
    TST_EQ(acked, attempted);
    TST_EQ(foreign, 0);
    TST_EQ(missing, 0);
    TST_EQ(dups, 0);
    TST_EQ(d_dups, 0);
    for (int t = 0; t < N_LOADERS; t++) {
        free(seen[t]);
        free(ls[t].acked);
        free(ls[t].event);
    }
    tst_daemon_fini(&f, tst_failed > 0);
}

int main(int argc, char **argv)
{
    int kills = 3;
    long disk_mb = 64;
    const char *appendfsync = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        char *end = NULL;
        long v = strtol(argv[i + 1], &end, 10);
        bool num = end != argv[i + 1] && *end == '\0' && v >= 0 && v <= 100000;
        if (strcmp(argv[i], "--kills") == 0 && num) {
            kills = (int)v;
        } else if (strcmp(argv[i], "--disk-mb") == 0 && num) {
            disk_mb = v;
        } else if (strcmp(argv[i], "--appendfsync") == 0) {
            appendfsync = argv[i + 1];
        } else {
            fprintf(stderr, "usage: %s [--kills N] [--disk-mb M] [--appendfsync MODE]\n", argv[0]);
            return 2;
        }
    }
    if (system("command -v redis-cli > /dev/null 2>&1") != 0) {
        tst_skip_all("redis-cli not found");
    }
    private_server_is_restarted();
    private_server_goes_with_rlfeedd();
    kill_under_load(kills, disk_mb, appendfsync);
    rlfeed_client_lib_fini();
    return tst_done();
}
