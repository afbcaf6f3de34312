/*
 * Two rlfeedd processes given the same instance_id (configuration.md, `instance_id`) on one
 * Redis: the second one's start takes the policy's lease over at once, as a restart does,
 * and the first one finds it taken at its next renewal and stops with a non-zero status,
 * naming the cause; it does not go on writing the policy beside the second. The second one
 * serves on and stops cleanly. Every process is stopped.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "client/rlfeed_client.h"
#include "daemon.h"
#include "proc.h"
#include "storage/store.h"
#include "tap.h"

#define CONFIG                                                                                     \
    "[server]\ninstance_id = twin\nlease_ms = 900\n"                                               \
    "[policy p]\ndim = 2\nactions = a, b\nsignal.resolved = 1\nsignal.escalated = -0.5\n"          \
    "window_ms = 300\n"

int main(void)
{
    tst_daemon a, b;
    memset(&b, 0, sizeof(b));
    bool up = tst_daemon_init(&a, "rlfeed-same-id-a", CONFIG);
    up = up && tst_daemon_init(&b, "rlfeed-same-id-b", CONFIG);
    char url[600];
    snprintf(url, sizeof(url), "%s", up ? sto_server_url(a.redis) : "");
    const char *on_a[] = {"--redis", url, NULL};
    up = up && tst_daemon_start(&a, true, NULL);
    TST_TRUE(up && tst_decide_feedback(&a, &a, 1));
    up = up && tst_daemon_start(&b, false, on_a);
    TST_TRUE(up);
    if (up) {
        /* "b" took the lease at its start; "a" finds it gone at a renewal (every 300 ms). */
        int status = -1;
        bool exited = tst_wait_exit(a.pid, 10000, &status);
        if (!exited) {
            kill(a.pid, SIGKILL);
            (void)tst_wait_exit(a.pid, 5000, NULL);
        }
        a.pid = 0;
        rlfeed_client_close(a.c);
        a.c = NULL;
        printf("# a %s (status %d)\n", exited ? "stopped" : "ran on: killed",
               exited && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        TST_TRUE(exited && WIFEXITED(status) && WEXITSTATUS(status) != 0);
        TST_TRUE(tst_file_has(a.log, "lost ownership"));
        TST_TRUE(tst_file_has(a.log, "started with this instance_id"));
        TST_TRUE(tst_decide_feedback(&b, &b, 2));
        TST_EQ(tst_daemon_stop(&b), 0);
    }
    tst_daemon_fini(&b, tst_failed > 0);
    tst_daemon_fini(&a, tst_failed > 0);
    rlfeed_client_lib_fini();
    return tst_done();
}
