/*
 * Two rlfeedd processes given the same instance_id (configuration.md, `instance_id`) on one
 * Redis: the second one's start takes the policy's lease over at once, as a restart does,
 * and the first one finds it taken at its next renewal and stops with a non-zero status,
 * naming the cause; it does not go on writing the policy beside the second. The second one
 * serves on and stops cleanly.
 *
 * Then an owner without shared = on and a third instance with it: the third does not follow
 * a policy whose owner would never take what it forwarded; it stands by, answering its
 * requests unavailable with the owner's name. Every process is stopped.
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

        /* "b" (no shared = on) owns p; "c" runs shared = on. */
        tst_daemon c;
        bool c_up = tst_daemon_init(&c, "rlfeed-same-id-c",
                                    "[server]\ninstance_id = c\nshared = on\nlease_ms = 900\n"
                                    "[policy p]\nbackward_window_ms = 1000\ndim = 2\n"
                                    "actions = a, b\nsignal.resolved = 1\n"
                                    "signal.escalated = -0.5\nwindow_ms = 300\n") &&
                    tst_daemon_start(&c, false, on_a);
        TST_TRUE(c_up);
        if (c_up) {
            rlfeed_reply r;
            TST_OK(tst_callf(&c, &r,
                             "{\"op\":\"decide\",\"policy\":\"p\",\"context\":{\"embedding\":"
                             "[1,0]},\"candidates\":[{\"id\":\"a\",\"base_logit\":0},"
                             "{\"id\":\"b\",\"base_logit\":0}]}"));
            TST_TRUE(!r.ok && r.error.code == PROTO_E_UNAVAILABLE &&
                     strstr(r.error.message, "\"twin\"") != NULL);
            TST_TRUE(tst_file_has(c.log, "which does not run shared = on"));
            TST_EQ(tst_daemon_stop(&c), 0);
        }
        tst_daemon_fini(&c, tst_failed > 0);
        TST_EQ(tst_daemon_stop(&b), 0);
    }
    tst_daemon_fini(&b, tst_failed > 0);
    tst_daemon_fini(&a, tst_failed > 0);
    rlfeed_client_lib_fini();
    return tst_done();
}
