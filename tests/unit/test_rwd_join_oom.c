/*
 * Torture test for reward/join: every allocation of one scenario fails in
 * turn (BASE_ALLOC_FAIL_AT=N, N = 1, 2, ...), each in a child process (the
 * counter is process-wide and read once). In every child, whichever
 * allocation failed:
 *   - every call returns BASE_OK or BASE_ENOMEM, and rwd_join_check_outcome()
 *     predicts what rwd_join_add_outcome() then does;
 *   - an add that fails with BASE_ENOMEM changes nothing (a second check
 *     answers as the first);
 *   - a retry of a stored outcome after its window is never applied again:
 *     it is a duplicate, or at worst late or unknown when the memory of it
 *     was what failed (the harmless degradation);
 *   - every decision taken is emitted once expiry is retried;
 *   - nothing leaks (under ASan the child's leak check fails its exit code).
 * The parent stops at the first N past the scenario's last allocation: that
 * child's extra probe allocation is the one that fails, and it exits 2.
 */

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "proc.h"
#include "reward/join.h"
#include "tap.h"

#define DAY_MS 86400000LL
#define MIN_MS 60000LL
#define MAX_FAIL_AT 2000 /* far more allocations than the scenario makes */

static bool child_bad;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);                             \
            child_bad = true;                                                                      \
        }                                                                                          \
    } while (0)

static base_outcome mk_out(const char *event, const char *conv, const char *signal, double value,
                           const char *outcome_id, int64_t ts)
{
    base_outcome o;
    memset(&o, 0, sizeof(o));
    (void)base_strlcpy(o.policy, "p", sizeof(o.policy));
    (void)base_strlcpy(o.event_id, event, sizeof(o.event_id));
    (void)base_strlcpy(o.conversation_id, conv, sizeof(o.conversation_id));
    (void)base_strlcpy(o.signal, signal, sizeof(o.signal));
    (void)base_strlcpy(o.outcome_id, outcome_id, sizeof(o.outcome_id));
    o.type = BASE_OUT_SIGNAL;
    o.value = value;
    o.ts_ms = ts;
    return o;
}

/* Add a decision; true if the join took it (out of memory is allowed). */
static bool dec(rwd_join *j, const char *id, const char *conv, uint32_t turn, int64_t now)
{
    base_decision *d = base_decision_new(2, 1);
    if (d == NULL) {
        return false;
    }
    (void)base_strlcpy(d->policy, "p", sizeof(d->policy));
    (void)base_strlcpy(d->event_id, id, sizeof(d->event_id));
    (void)base_strlcpy(d->conversation_id, conv, sizeof(d->conversation_id));
    d->turn = turn;
    d->ts_ms = now;
    d->pmf[0] = 1.0f;
    base_err e = rwd_join_add_decision(j, d, now);
    CHECK(e == BASE_OK || e == BASE_ENOMEM);
    if (e != BASE_OK) {
        base_decision_free(d);
    }
    return e == BASE_OK;
}

/* Check, then apply @o; its status, or RWD_STATUS_COUNT when the add ran out of memory. */
static rwd_status step(rwd_join *j, base_outcome o, int64_t now)
{
    rwd_status c = RWD_STATUS_COUNT, a = RWD_STATUS_COUNT, c2 = RWD_STATUS_COUNT;
    CHECK(rwd_join_check_outcome(j, &o, now, &c) == BASE_OK);
    base_err e = rwd_join_add_outcome(j, &o, now, &a);
    CHECK(e == BASE_OK || e == BASE_ENOMEM);
    if (e != BASE_OK) {
        CHECK(rwd_join_check_outcome(j, &o, now, &c2) == BASE_OK);
        CHECK(c2 == c);
        return RWD_STATUS_COUNT;
    }
    CHECK(a == c);
    return a;
}

static bool stored(rwd_status s)
{
    return s == RWD_MATCHED || s == RWD_CORRECTED || s == RWD_EARLY || s == RWD_LATE ||
           s == RWD_LATE_CORRECTION;
}

/*
 * A retry after the window of an outcome that was stored is never applied
 * again. (An early outcome whose decision never arrived, @taken false, is
 * not: it dangled, and its retry is held again.)
 */
static void retry_not_applied(rwd_join *j, base_outcome o, int64_t now, rwd_status first,
                              bool taken)
{
    rwd_status s = step(j, o, now);
    if (stored(first) && (first != RWD_EARLY || taken)) {
        CHECK(s == RWD_DUPLICATE || s == RWD_LATE || s == RWD_LATE_CORRECTION ||
              s == RWD_UNKNOWN_EVENT || s == RWD_STATUS_COUNT);
    }
}

/* Expire until nothing is due (an expiry that runs out of memory retries next time). */
static size_t expire_all(rwd_join *j, int64_t now)
{
    size_t total = 0;
    for (int tries = 0; tries < 4; tries++) {
        base_joined *out[8];
        size_t n = rwd_join_expire(j, now, out, 8);
        for (size_t i = 0; i < n; i++) {
            base_joined_free(out[i]);
        }
        total += n;
    }
    return total;
}

static void scenario(void)
{
    rwd_spec s;
    rwd_spec_default(&s);
    s.window_ms = DAY_MS;
    s.backward_window_ms = MIN_MS;
    s.credit = BASE_CREDIT_UNIFORM;
    rwd_signal *g = &s.signal[s.n_signals++];
    rwd_signal_default(g, "thumbs_up", RWD_EVENT);
    g->weight = 0.5;
    rwd_join *j = NULL;
    base_err e = rwd_join_new(&s, 4, &j);
    CHECK(e == BASE_OK || e == BASE_ENOMEM);
    if (e != BASE_OK) {
        return;
    }
    bool a = dec(j, "a", "k", 1, 0);
    bool b = dec(j, "b", "k", 2, 0);
    bool c = dec(j, "c", "", 0, 0);
    const base_outcome o1 = mk_out("a", "", "thumbs_up", 1.0, "o1", 5);
    const base_outcome s1 = mk_out("", "k", "thumbs_up", 1.0, "s1", 6);
    const base_outcome h1 = mk_out("e", "", "thumbs_up", 1.0, "h1", 7);
    rwd_status so1 = step(j, o1, 5);
    rwd_status ss1 = step(j, s1, 6);
    rwd_status sh1 = step(j, h1, 7); /* early: held until "e" arrives */
    bool ev = dec(j, "e", "", 0, 8);
    if (so1 == RWD_MATCHED) {
        CHECK(step(j, o1, 9) == RWD_DUPLICATE);
    }
    CHECK(expire_all(j, DAY_MS + 8) == (size_t)a + b + c + ev);
    retry_not_applied(j, o1, DAY_MS + 9, so1, a);
    retry_not_applied(j, s1, DAY_MS + 9, ss1, true);
    retry_not_applied(j, h1, DAY_MS + 9, sh1, ev);
    const base_outcome l1 = mk_out("c", "", "thumbs_up", 1.0, "l1", DAY_MS);
    rwd_status sl1 = step(j, l1, DAY_MS + 10);
    retry_not_applied(j, l1, DAY_MS + 11, sl1, c);
    CHECK(expire_all(j, 3 * DAY_MS) == 0);
    rwd_join_free(j);
}

/* Copy @path to stdout as TAP comments. */
static void print_log(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[256];
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        printf("#   %s", line);
    }
    if (f != NULL) {
        fclose(f);
    }
}

static int child(void)
{
    scenario();
    void *probe = base_alloc(1);
    if (probe == NULL) {
        return 2; /* the failure came after the scenario: every allocation is covered */
    }
    base_free(probe);
    return child_bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "child") == 0) {
        return child();
    }
    base_free(base_alloc(1)); /* reads the (unset) variable now: the parent never fails */
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *dir = tst_mkdtemp("rwd-join-oom");
    if (len <= 0 || dir == NULL) {
        TST_TRUE(len > 0 && dir != NULL);
        free(dir);
        return tst_done();
    }
    exe[len] = '\0';
    char *args[] = {exe, "child", NULL};
    bool covered = false;
    for (int n = 1; n <= MAX_FAIL_AT && !covered; n++) {
        char num[16], log[PATH_MAX];
        snprintf(num, sizeof(num), "%d", n);
        snprintf(log, sizeof(log), "%s/fail-at-%d.log", dir, n);
        setenv("BASE_ALLOC_FAIL_AT", num, 1);
        pid_t pid = tst_spawn(args, log);
        int status = 0;
        bool exited = pid > 0 && tst_wait_exit(pid, 30000, &status);
        if (pid > 0 && !exited) {
            tst_stop(pid, 1000);
        }
        int code = exited && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        covered = code == 2;
        if (code != 0 && code != 2) {
            printf("# BASE_ALLOC_FAIL_AT=%d: exit %d\n", n, code);
            print_log(log);
        }
        TST_TRUE(code == 0 || code == 2);
    }
    unsetenv("BASE_ALLOC_FAIL_AT");
    TST_TRUE(covered);
    tst_rm_rf(dir);
    free(dir);
    return tst_done();
}
