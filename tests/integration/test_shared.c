/*
 * shared = on (docs/operations.md): three rlfeedd instances, "a", "b" and "c", on one Redis
 * Cluster (3 masters with a replica each, cluster-node-timeout 1 s, replicas_ack = 1) all
 * serve one policy. "a" starts first and owns it (lease_ms 6000); "b" and "c" follow: they
 * decide from "a"'s newest checkpoint and forward decisions and feedback to it through
 * Redis. The traffic is deterministic, phase by phase: each interaction sets every live
 * instance's manual clock to its own service time, decides on one instance and gives its
 * feedback on the next one (retried while unavailable); after a phase, once the owner holds
 * every decision of it, the clocks move past the windows and the owner learns; the next
 * phase starts only when every follower serves the owner's new model.
 * - phase 1: 30 interactions on the three instances;
 * - phase 2: 30 more through the kill -9 of the Redis master of the policy's slot (its
 *   replica is promoted, the killed node started again once it is);
 * - phase 3: the owner is killed -9 at a quiet point; 30 interactions on the two live
 *   instances through the takeover: another instance owns the policy within 10 s and learns;
 * - phase 4: the killed instance is started again (it follows) and 30 more on all three.
 * Then every acknowledged outcome is in the outcomes stream exactly once, the model learned,
 * and every instance serves the same model version and checksum as a single rlfeedd (its
 * own plain Redis, not shared) driven by exactly the same sequence (the reference).
 * backward_window_ms is set (as docs/operations.md asks for shared policies): feedback given
 * to the owner may come before the follower's decision is taken from the inbox.
 * --lease-ms MS runs it with another lease (default 6000).
 * Every process is stopped and every directory removed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "client/rlfeed_client.h"
#include "daemon.h"
#include "proc.h"
#include "rcluster.h"
#include "storage/store.h"
#include "tap.h"

#define POL "pol0"
#define N_INST 3
#define N_PHASES 4
#define PHASE 30 /* interactions per phase */
#define TOTAL (N_PHASES * PHASE)
#define WINDOW_MS 3000
#define CLOCK0 1000000LL /* --manual-clock */
#define POLICY                                                                                     \
    "[policy " POL "]\ndim = 2\nactions = a, b\nsignal.resolved = 1\nsignal.escalated = -0.5\n"    \
    "window_ms = 3000\nbackward_window_ms = 5000\nlearner = ridge\n"
#define SERVER                                                                                     \
    "[server]\ninstance_id = %s\nshared = on\nlease_ms = %d\nreplicas_ack = 1\n"                   \
    "replicas_ack_timeout_ms = 1000\nredis_timeout_ms = 1000\nsnapshot_interval_ms = 100\n"

static const char *const ids[N_INST] = {"a", "b", "c"};
static int lease_ms = 6000; /* --lease-ms */

/* One run: the shared instances (n = 3) or the reference (n = 1, not shared). */
typedef struct world {
    const char *name;
    int n;
    tst_daemon *d[N_INST];
    bool alive[N_INST];
    bool shared;
    long long clk; /* the service time of every live instance */
    int ev;        /* interactions so far: ev-<i>, o-<i> */
    int acked[TOTAL];
    int n_acked;
    int n_status[8];
    long long ver[N_PHASES];
    char sum[N_PHASES][32];
} world;

static const char *const statuses[8] = {"matched",   "accepted",  "early",           "late",
                                        "corrected", "duplicate", "late_correction", "other"};

static tst_rcluster cl;
static bool cl_up;
static int killed = -1;             /* the killed Redis master, until it is back */
static int64_t promoted;            /* when the replica was promoted (the killed node restarted) */
static int64_t kill_ms;             /* when the owner instance was killed (phase 3), or 0 */
static int64_t owner_ms = -1;       /* ms from kill_ms until another instance said owner */
static long long resume_above = -1; /* learning resumed: the owner's version above this */
static int64_t resume_ms = -1;      /* ms from kill_ms until it did */

/* Ops after the Redis master's kill (as in test_cluster): restart it once it is replaced. */
static void tend(void)
{
    if (killed >= 0 && tst_rcluster_ok(&cl) &&
        tst_rcluster_master_of(&cl, "rlfeed:{" POL "}:outcomes") >= 0 &&
        tst_rcluster_master_of(&cl, "rlfeed:{" POL "}:outcomes") != killed) {
        promoted = tst_now_ms();
        if (tst_rcluster_restart(&cl, killed)) {
            killed = -1;
        }
    }
}

static void pause_ms(int ms)
{
    for (int64_t t = tst_now_ms() + ms; tst_now_ms() < t;) {
        tst_nap();
    }
}

/* The instance that serves interaction side @k (i % 3 or (i + 1) % 3): the next live one. */
static int pick(const world *w, int k)
{
    k %= w->n;
    for (int j = 0; j < w->n; j++) {
        if (w->alive[(k + j) % w->n]) {
            return (k + j) % w->n;
        }
    }
    return -1;
}

/*
 * The owner: the only live instance whose stats say role "owner" (the reference: its only
 * instance); -1 if none or more than one. @st (optional) gets its stats (json_decref them).
 */
static int owner_of(world *w, json_t **st)
{
    if (st != NULL) {
        *st = NULL;
    }
    if (!w->shared) {
        if (st != NULL) {
            *st = tst_stats(w->d[0]);
        }
        return 0;
    }
    int owner = -1, owners = 0;
    for (int k = 0; k < w->n; k++) {
        if (!w->alive[k]) {
            continue;
        }
        json_t *s = tst_stats(w->d[k]);
        if (s != NULL && strcmp(tst_stat_str(s, POL, "role"), "owner") == 0) {
            owners++;
            owner = k;
            if (st != NULL) {
                json_decref(*st);
                *st = s;
                s = NULL;
            }
        }
        json_decref(s);
    }
    if (owners != 1) {
        if (st != NULL) {
            json_decref(*st);
            *st = NULL;
        }
        return -1;
    }
    if (kill_ms > 0 && owner_ms < 0) {
        owner_ms = tst_now_ms() - kill_ms;
    }
    return owner;
}

/* Whether live instance @k exited on its own (reaped and reported then). */
static bool exited(world *w, int k)
{
    int st = 0;
    if (!w->alive[k] || w->d[k]->pid <= 0 || !tst_wait_exit(w->d[k]->pid, 0, &st)) {
        return false;
    }
    printf("# %s: instance %s exited on its own (status %d)\n", w->name, ids[k],
           WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    w->d[k]->pid = 0;
    return true;
}

/* Every live instance's clock to w->clk. */
static bool set_clocks(world *w)
{
    for (int k = 0; k < w->n; k++) {
        int64_t deadline = tst_now_ms() + 20000;
        while (w->alive[k] && !tst_clock_set(w->d[k], w->clk)) {
            if (tst_now_ms() > deadline || exited(w, k)) {
                printf("# %s: clock of %s not set to %lld\n", w->name, ids[k], w->clk);
                return false;
            }
            tend();
            tst_nap();
        }
    }
    return true;
}

/* decide ev-<i> on instance @k, retried (same event id, same clock) while unavailable. */
static bool decide(world *w, int k, int i)
{
    rlfeed_reply r;
    bool retried = false;
    int64_t deadline = tst_now_ms() + 30000;
    while (tst_now_ms() < deadline) {
        base_err e = tst_callf(
            w->d[k], &r,
            "{\"op\":\"decide\",\"policy\":\"" POL "\",\"event_id\":\"ev-%d\",\"context\":"
            "{\"embedding\":[%d,1]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0},"
            "{\"id\":\"b\",\"base_logit\":0}]}",
            i, i % 2);
        if (e == BASE_OK && r.ok) {
            return true;
        }
        if (e == BASE_OK && retried && r.error.code == PROTO_E_DUPLICATE_EVENT) {
            printf("# %s: decide ev-%d on %s: taken by an earlier try\n", w->name, i, ids[k]);
            return true;
        }
        if (e == BASE_OK && r.error.code != PROTO_E_UNAVAILABLE) {
            printf("# %s: decide ev-%d on %s: %s\n", w->name, i, ids[k], r.error.message);
            return false;
        }
        retried = true;
        tend();
        if (kill_ms > 0) {
            (void)owner_of(w, NULL);
        }
        tst_nap();
    }
    printf("# %s: decide ev-%d on %s: no answer within 30 s\n", w->name, i, ids[k]);
    return false;
}

/* feedback for ev-<i> (outcome o-<i>) on instance @k until acknowledged. */
static bool feedback(world *w, int k, int i)
{
    rlfeed_reply r;
    int64_t deadline = tst_now_ms() + 30000;
    while (tst_now_ms() < deadline) {
        base_err e = tst_callf(w->d[k], &r,
                               "{\"op\":\"feedback\",\"policy\":\"" POL "\",\"event_id\":\"ev-%d\","
                               "\"signal\":\"%s\",\"outcome_id\":\"o-%d\"}",
                               i, i % 3 == 0 ? "resolved" : "escalated", i);
        if (e == BASE_OK && r.ok) {
            w->acked[i]++;
            w->n_acked++;
            int s = 7;
            for (int j = 0; j < 7; j++) {
                s = strcmp(r.status, statuses[j]) == 0 ? j : s;
            }
            w->n_status[s]++;
            return true;
        }
        if (e == BASE_OK && r.error.code != PROTO_E_UNAVAILABLE) {
            printf("# %s: feedback ev-%d on %s: %s\n", w->name, i, ids[k], r.error.message);
            return false;
        }
        tend();
        if (kill_ms > 0) {
            (void)owner_of(w, NULL);
        }
        tst_nap();
    }
    printf("# %s: feedback ev-%d on %s: not acknowledged within 30 s\n", w->name, i, ids[k]);
    return false;
}

/* Print every live instance's view of the policy. */
static void show(world *w)
{
    for (int k = 0; k < w->n; k++) {
        if (!w->alive[k]) {
            printf("# %s %s: down\n", w->name, ids[k]);
            continue;
        }
        json_t *s = tst_stats(w->d[k]);
        printf("# %s %s: role %s owner %s version %lld checksum %s pending %lld forwarded "
               "%lld inbox %lld feedback %lld joined %lld\n",
               w->name, ids[k], tst_stat_str(s, POL, "role"), tst_stat_str(s, POL, "owner"),
               tst_stat_int(s, POL, "model_version"), tst_stat_str(s, POL, "model_checksum"),
               tst_stat_int(s, POL, "pending"), tst_stat_int(s, POL, "forwarded"),
               tst_stat_int(s, POL, "inbox"), tst_stat_int(s, POL, "feedback"),
               tst_stat_int(s, POL, "joined"));
        json_decref(s);
    }
}

/* Wait until the owner holds @n decisions pending (all forwarded ones applied). */
static bool wait_pending(world *w, long long n)
{
    int64_t deadline = tst_now_ms() + 30000;
    long long got = -1;
    while (tst_now_ms() < deadline) {
        json_t *s = NULL;
        int o = owner_of(w, &s);
        got = o >= 0 ? tst_stat_int(s, POL, "pending") : -1;
        json_decref(s);
        if (got == n) {
            return true;
        }
        tend();
        pause_ms(20);
    }
    printf("# %s: the owner holds %lld decisions pending, not %lld\n", w->name, got, n);
    show(w);
    return false;
}

/*
 * Wait until the owner has nothing pending and its version holds still, and every live
 * follower follows it and serves its version and checksum; those into *ver, sum.
 */
static bool converge(world *w, long long *ver, char *sum, size_t len)
{
    int64_t deadline = tst_now_ms() + 30000;
    long long prev = -1;
    int stable = 0;
    while (tst_now_ms() < deadline && stable < 3) {
        json_t *s = NULL;
        int o = owner_of(w, &s);
        bool same = o >= 0 && s != NULL && tst_stat_int(s, POL, "pending") == 0;
        *ver = tst_stat_int(s, POL, "model_version");
        snprintf(sum, len, "%s", tst_stat_str(s, POL, "model_checksum"));
        json_decref(s);
        same = same && *ver == prev;
        prev = *ver;
        if (o >= 0 && resume_above >= 0 && resume_ms < 0 && *ver > resume_above) {
            resume_ms = tst_now_ms() - kill_ms;
        }
        for (int k = 0; k < w->n && same; k++) {
            if (k == o || !w->alive[k]) {
                continue;
            }
            json_t *f = tst_stats(w->d[k]);
            same = f != NULL && strcmp(tst_stat_str(f, POL, "role"), "follower") == 0 &&
                   strcmp(tst_stat_str(f, POL, "owner"), ids[o]) == 0 &&
                   tst_stat_int(f, POL, "model_version") == *ver &&
                   strcmp(tst_stat_str(f, POL, "model_checksum"), sum) == 0;
            json_decref(f);
        }
        stable = same ? stable + 1 : 0;
        tend();
        pause_ms(300);
    }
    if (stable < 3) {
        printf("# %s: the instances did not settle on one model within 30 s\n", w->name);
        show(w);
    }
    return stable >= 3;
}

/* One phase of @n interactions, then its learning; its model into w->ver/sum[@ph]. */
static bool phase(world *w, int ph, int n)
{
    int64_t t0 = tst_now_ms();
    int acked = 0;
    for (int j = 0; j < n; j++) {
        int i = w->ev++;
        w->clk++;
        if (!set_clocks(w)) {
            return false;
        }
        if (!decide(w, pick(w, i), i)) {
            return false;
        }
        acked += feedback(w, pick(w, i + 1), i);
        tend();
        if (kill_ms > 0) {
            (void)owner_of(w, NULL);
        }
    }
    int64_t t1 = tst_now_ms();
    bool ok = acked == n && wait_pending(w, n);
    int64_t t2 = tst_now_ms();
    w->clk += WINDOW_MS + 1000; /* every window closes */
    ok = ok && set_clocks(w) && converge(w, &w->ver[ph], w->sum[ph], sizeof(w->sum[ph]));
    printf("# %s phase %d: %d of %d acknowledged in %lld ms; the owner held them all after "
           "%lld ms more; learned: version %lld checksum %s (%lld ms)\n",
           w->name, ph + 1, acked, n, (long long)(t1 - t0), (long long)(t2 - t1), w->ver[ph],
           w->sum[ph], (long long)(tst_now_ms() - t2));
    return ok;
}

static void world_init(world *w, const char *name, int n, bool shared)
{
    memset(w, 0, sizeof(*w));
    w->name = name;
    w->n = n;
    w->shared = shared;
    w->clk = CLOCK0 + 1000;
    for (int k = 0; k < N_PHASES; k++) {
        w->ver[k] = -1;
    }
}

/* The reference: one rlfeedd on its own Redis, the same sequence; false if it broke. */
static bool reference(world *w)
{
    tst_daemon ref;
    world_init(w, "reference", 1, false);
    w->d[0] = &ref;
    const char *extra[] = {"--manual-clock", "1000000", NULL};
    bool up = tst_daemon_init(&ref, "rlfeed-shared-ref", POLICY);
    up = up && tst_daemon_start(&ref, true, extra);
    TST_TRUE(up);
    w->alive[0] = up;
    for (int ph = 0; up && ph < N_PHASES; ph++) {
        up = phase(w, ph, PHASE);
    }
    TST_TRUE(up);
    TST_EQ(w->n_acked, TOTAL);
    if (up) {
        TST_EQ(tst_daemon_stop(&ref), 0);
    }
    tst_daemon_fini(&ref, tst_failed > 0);
    return up;
}

/* Start instance @k and wait until it says it is @role of POL with owner @owner. */
static bool start_instance(world *w, int k, const char *role, const char *owner)
{
    const char *extra[] = {"--redis", cl.url, "--manual-clock", "1000000", NULL};
    if (!tst_daemon_start(w->d[k], false, extra)) {
        printf("# %s: %s did not start\n", w->name, ids[k]);
        return false;
    }
    w->alive[k] = true;
    int64_t t0 = tst_now_ms(), deadline = t0 + 20000;
    while (tst_now_ms() < deadline) {
        json_t *s = tst_stats(w->d[k]);
        bool there = strcmp(tst_stat_str(s, POL, "role"), role) == 0 &&
                     strcmp(tst_stat_str(s, POL, "owner"), owner) == 0;
        json_decref(s);
        if (there) {
            printf("# %s: %s is %s (owner %s) %lld ms after its start\n", w->name, ids[k], role,
                   owner, (long long)(tst_now_ms() - t0));
            return set_clocks(w);
        }
        tend();
        pause_ms(20);
    }
    printf("# %s: %s is not %s with owner %s within 20 s\n", w->name, ids[k], role, owner);
    show(w);
    return false;
}

/* kill -9 instance @k and reap it. */
static void kill_instance(world *w, int k)
{
    tst_daemon *f = w->d[k];
    if (f->pid > 0) {
        kill(f->pid, SIGKILL);
        (void)tst_wait_exit(f->pid, 10000, NULL);
        f->pid = 0;
    }
    rlfeed_client_close(f->c);
    f->c = NULL;
    w->alive[k] = false;
}

/* The shared run; false if it broke. */
static bool shared(world *w, tst_daemon *d)
{
    world_init(w, "shared", N_INST, true);
    bool up = true;
    for (int k = 0; k < N_INST; k++) {
        w->d[k] = &d[k];
    }
    for (int k = 0; k < N_INST && up; k++) {
        char config[1024], name[32];
        snprintf(config, sizeof(config), SERVER POLICY, ids[k], lease_ms);
        snprintf(name, sizeof(name), "rlfeed-shared-%s", ids[k]);
        up = tst_daemon_init(&d[k], name, config);
    }
    TST_TRUE(up);
    int master = up ? tst_rcluster_master_of(&cl, "rlfeed:{" POL "}:outcomes") : -1;
    printf("# %s: policy %s, its slot on node %d (port %d)\n", w->name, POL, master,
           master >= 0 ? cl.node[master].port : 0);
    TST_TRUE(master >= 0);
    up = up && master >= 0;

    /* "a" first: it owns the policy; then "b" and "c" follow it. */
    up = up && start_instance(w, 0, "owner", "a");
    up = up && start_instance(w, 1, "follower", "a");
    up = up && start_instance(w, 2, "follower", "a");
    TST_TRUE(up);
    if (!up) {
        return false;
    }

    /* Phase 1: all three, a whole cluster. */
    up = phase(w, 0, PHASE);
    TST_TRUE(up);

    /* Phase 2: through the kill -9 of the policy's Redis master. */
    if (up) {
        tst_rcluster_kill(&cl, master);
        killed = master;
        int64_t t = tst_now_ms();
        up = phase(w, 1, PHASE);
        int64_t deadline = tst_now_ms() + 20000;
        while ((killed >= 0 || !tst_rcluster_ok(&cl)) && tst_now_ms() < deadline) {
            tend();
            tst_nap();
        }
        printf("# %s: redis master %d killed; its replica promoted within %lld ms; the "
               "cluster %s\n",
               w->name, master, promoted > 0 ? (long long)(promoted - t) : -1LL,
               killed < 0 && tst_rcluster_ok(&cl) ? "whole again" : "NOT whole again");
        TST_TRUE(up);
        TST_TRUE(killed < 0 && tst_rcluster_ok(&cl));
        up = up && killed < 0;
    }

    /* Phase 3: the owner killed -9 at a quiet point; traffic on the other two. */
    int dead = -1;
    if (up) {
        dead = owner_of(w, NULL);
        TST_TRUE(dead >= 0);
        up = dead >= 0;
    }
    if (up) {
        show(w);
        resume_above = w->ver[1];
        kill_ms = tst_now_ms();
        kill_instance(w, dead);
        printf("# %s: instance %s (the owner) killed -9\n", w->name, ids[dead]);
        up = phase(w, 2, PHASE);
        int o = owner_of(w, NULL);
        printf("# %s: %s owns %s %lld ms after the kill of %s (lease %d ms); learning "
               "resumed %lld ms after it (version %lld -> %lld)\n",
               w->name, o >= 0 ? ids[o] : "nobody", POL, (long long)owner_ms, ids[dead], lease_ms,
               (long long)resume_ms, w->ver[1], w->ver[2]);
        TST_TRUE(up);
        TST_TRUE(o >= 0 && o != dead);
        TST_TRUE(owner_ms >= 0 && owner_ms <= 10000);
        TST_TRUE(resume_ms >= 0 && resume_ms <= 10000); /* learning resumed within 10 s */
        TST_TRUE(w->ver[2] > w->ver[1]);
        kill_ms = 0;
        resume_above = -1;
        up = up && o >= 0;
    }

    /* Phase 4: the killed instance back (following), traffic on all three. */
    if (up) {
        int o = owner_of(w, NULL);
        up = o >= 0 && start_instance(w, dead, "follower", ids[o]);
        long long v = -1;
        char sum[32] = "";
        up = up && converge(w, &v, sum, sizeof(sum));
        printf("# %s: %s back, following %s: version %lld checksum %s\n", w->name, ids[dead],
               o >= 0 ? ids[o] : "nobody", v, sum);
        TST_TRUE(up);
        up = up && phase(w, 3, PHASE);
        TST_TRUE(up);
    }
    if (up) {
        show(w);
    }
    return up;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : -1;
        if (strcmp(argv[i], "--lease-ms") == 0 && end != argv[i + 1] && *end == '\0' && v >= 100 &&
            v <= 600000) {
            lease_ms = (int)v;
            i++;
        } else {
            fprintf(stderr, "usage: %s [--lease-ms MS]\n", argv[0]);
            return 2;
        }
    }
    tst_daemon d[N_INST];
    memset(d, 0, sizeof(d));
    static world ref, sh;

    bool ref_ok = reference(&ref);
    cl_up = ref_ok && tst_rcluster_start(&cl, 3, 1, 1000, false);
    TST_TRUE(cl_up);
    bool up = cl_up && shared(&sh, d);

    if (up) {
        /* Every acknowledged outcome stored once: none lost, none counted twice. */
        int times[TOTAL];
        memset(times, 0, sizeof(times));
        int total = tst_count_outcome_ids(cl.url, POL, times, TOTAL);
        int once = 0, twice = 0, lost = 0;
        for (int i = 0; i < TOTAL; i++) {
            if (sh.acked[i] > 0 && times[i] != 1) {
                printf("# o-%d acknowledged, stored %d times\n", i, times[i]);
            }
            once += sh.acked[i] > 0 && times[i] == 1;
            twice += times[i] > 1;
            lost += sh.acked[i] > 0 && times[i] == 0;
        }
        printf("# outcomes: %d acknowledged (", sh.n_acked);
        for (int s = 0; s < 8; s++) {
            if (sh.n_status[s] > 0) {
                printf(" %s %d", statuses[s], sh.n_status[s]);
            }
        }
        printf(" ); %d in the stream, %d acknowledged ids stored once, %d lost, %d stored more "
               "than once\n",
               total, once, lost, twice);
        TST_EQ(sh.n_acked, TOTAL);
        TST_EQ(total, TOTAL);
        TST_EQ(once, TOTAL);
        TST_EQ(lost, 0);
        TST_EQ(twice, 0);

        /* The same models as the reference, phase by phase and at the end, on every instance. */
        for (int ph = 0; ph < N_PHASES; ph++) {
            printf("# phase %d: shared version %lld checksum %s; reference %lld %s%s\n", ph + 1,
                   sh.ver[ph], sh.sum[ph], ref.ver[ph], ref.sum[ph],
                   sh.ver[ph] == ref.ver[ph] && strcmp(sh.sum[ph], ref.sum[ph]) == 0
                       ? ""
                       : "  <- differs");
        }
        TST_TRUE(sh.ver[N_PHASES - 1] > 0);
        int same = 0;
        for (int k = 0; k < N_INST; k++) {
            json_t *s = tst_stats(&d[k]);
            long long v = tst_stat_int(s, POL, "model_version");
            const char *cs = tst_stat_str(s, POL, "model_checksum");
            printf("# %s: %s, version %lld checksum %s; the reference %lld %s\n", ids[k],
                   tst_stat_str(s, POL, "role"), v, cs, ref.ver[N_PHASES - 1],
                   ref.sum[N_PHASES - 1]);
            TST_EQ(v, ref.ver[N_PHASES - 1]);
            TST_STREQ(cs, ref.sum[N_PHASES - 1]);
            same += v == ref.ver[N_PHASES - 1] && strcmp(cs, ref.sum[N_PHASES - 1]) == 0;
            json_decref(s);
        }
        TST_EQ(same, N_INST);
    }

    for (int k = 0; k < N_INST; k++) {
        if (d[k].pid > 0) {
            TST_EQ(tst_daemon_stop(&d[k]), 0);
        }
    }
    for (int k = 0; k < N_INST; k++) {
        if (d[k].dir != NULL) {
            tst_daemon_fini(&d[k], tst_failed > 0);
        }
    }
    if (cl_up || cl.dir != NULL) {
        tst_rcluster_stop(&cl);
    }
    rlfeed_client_lib_fini();
    return tst_done();
}
