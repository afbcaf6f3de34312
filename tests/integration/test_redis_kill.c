/*
 * kill -9 of rlfeedd's own (private) redis-server, the default set-up:
 *
 * 1. with the default configuration the private redis-server runs with
 *    appendfsync always; rlfeedd notices it died, starts it again on the
 *    same port and data directory, and serves acknowledged feedback again.
 *
 * Every wait polls a condition with a deadline.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/record.h"
#include "daemon.h"
#include "proc.h"
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
    svc_reply r;
    if (rlfeed_client_decide(c, POLICY, NULL, X, DIM, K, IDS, LOGITS, &r) != BASE_OK || !r.ok) {
        return false;
    }
    snprintf(out_event, size, "%s", r.event_id);
    return true;
}

static bool feedback(rlfeed_client *c, const char *event, const char *outcome_id)
{
    svc_reply r;
    return rlfeed_client_feedback(c, POLICY, event, "resolved", 1.0, outcome_id, &r) ==
               BASE_OK &&
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

/* The running server's appendfsync, asked with redis-cli ("" if it cannot be asked). */
static void appendfsync_of(const char *url, char *out, size_t size)
{
    char cmd[512], line[32];
    int port = 0;
    out[0] = '\0';
    if (sscanf(url, "tcp://127.0.0.1:%d", &port) != 1) {
        return;
    }
    snprintf(cmd, sizeof(cmd), "redis-cli -h 127.0.0.1 -p %d config get appendfsync 2>/dev/null",
             port);
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

static void private_server_is_restarted(void)
{
    printf("# kill -9 of the private redis-server: rlfeedd starts it again\n");
    tst_daemon f;
    if (!tst_daemon_init(&f, "rlfeed-kill-restart", CONFIG) || !tst_daemon_start(&f, false, NULL)) {
        TST_TRUE(0 && "fixture");
        tst_daemon_fini(&f, true);
        return;
    }
    char ev[BASE_ID_MAX + 1], url[256] = "";
    int pid = 0;
    (void)scan_log(&f, &pid, url, sizeof(url), NULL);
    TST_TRUE(pid > 0 && strncmp(url, "tcp://127.0.0.1:", 16) == 0);
    char fsync_mode[32];
    appendfsync_of(url, fsync_mode, sizeof(fsync_mode));
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
    TST_EQ(scan_log(&f, &pid, NULL, 0, "private redis-server killed by signal 9; restarting"), 1);
    TST_EQ(tst_daemon_stop(&f), 0);
    tst_daemon_fini(&f, tst_failed > 0);
}

int main(void)
{
    if (system("command -v redis-cli > /dev/null 2>&1") != 0) {
        tst_skip_all("redis-cli not found");
    }
    private_server_is_restarted();
    rlfeed_client_lib_fini();
    return tst_done();
}
