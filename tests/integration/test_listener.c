/*
 * rlfeedd's ipc listeners against peers that never speak SP: raw AF_UNIX
 * connections opened and closed without the handshake (a port scanner, a
 * health probe, or another program's "is this address in use?" check), on
 * both the REQ/REP and the PULL socket, and a second rlfeedd started on the
 * same URLs. After each, new clients must still be served and the daemon
 * must not hold one more descriptor per attempt.
 *
 * nng 1.5.2 (Debian 12) stopped accepting for good after one such connection
 * whose peer was gone before the daemon's SP greeting was written (see
 * docs/architecture.md, "nng 1.5.2 listener wedge").
 */
#include <dirent.h>
#include <grp.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "client/rlfeed_client.h"
#include "daemon.h"
#include "proc.h"
#include "tap.h"

#define TIMEOUT_MS 5000 /* generous: CI shares two cores */
#define BARE_PER_ROUND 5
#define ROUNDS 3

static const char CONFIG[] = "[server]\n"
                             "tick_ms = 5\n"
                             "[policy t]\n"
                             "dim = 4\n"
                             "actions = a, b, c\n"
                             "seed = 3\n"
                             "signal.resolved = 1.0\n"
                             "window_ms = 60000\n";

/* Connect to the unix socket at @path and close at once, @n times; how many connected. */
static int bare_connects(const char *path, int n)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0) {
            continue;
        }
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            ok++;
        }
        close(fd);
    }
    return ok;
}

/* Open descriptors of @pid, or -1. */
static int fd_count(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL) {
        return -1;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

/*
 * Wait (with a deadline) until @pid holds at most @want descriptors: pipes
 * of closed connections are released asynchronously. Returns the last count.
 */
static int fd_count_settled(pid_t pid, int want)
{
    int n = fd_count(pid);
    int64_t deadline = tst_now_ms() + TIMEOUT_MS;
    while (n > want && tst_now_ms() < deadline) {
        tst_nap();
        n = fd_count(pid);
    }
    return n;
}

/*
 * A new PUSH connection sends feedback for an unknown event; true once the
 * daemon has counted it (the PULL listener accepted and read it).
 */
static bool new_pusher_served(tst_daemon *f)
{
    json_t *before = tst_stats(f);
    if (before == NULL) {
        return false;
    }
    long long want = tst_rejected(before, "unknown_event") + 1;
    json_decref(before);
    rlfeed_push *p = NULL;
    if (rlfeed_push_open(f->pull_url, TIMEOUT_MS, &p) != BASE_OK) {
        return false;
    }
    bool seen = false;
    if (rlfeed_push_feedback(p, "t", "no-such-event", "resolved", 1.0, NULL) == BASE_OK) {
        int64_t deadline = tst_now_ms() + TIMEOUT_MS;
        while (!seen && tst_now_ms() < deadline) {
            json_t *s = tst_stats(f);
            seen = tst_rejected(s, "unknown_event") >= want;
            json_decref(s);
        }
    }
    rlfeed_push_close(p);
    return seen;
}

static void bare_connects_leave_listeners_serving(tst_daemon *f)
{
    const char *rep_path = f->url + strlen("ipc://");
    const char *pull_path = f->pull_url + strlen("ipc://");
    int base = fd_count(f->pid);
    TST_TRUE(base > 0);
    TST_TRUE(tst_new_client_served(f->url, TIMEOUT_MS));
    TST_TRUE(new_pusher_served(f));

    for (int round = 0; round < ROUNDS; round++) {
        TST_EQ(bare_connects(rep_path, BARE_PER_ROUND), BARE_PER_ROUND);
        TST_TRUE(tst_new_client_served(f->url, TIMEOUT_MS));
        TST_EQ(bare_connects(pull_path, BARE_PER_ROUND), BARE_PER_ROUND);
        TST_TRUE(new_pusher_served(f));
        /* The fixture's long-lived connection still works too. */
        uint8_t *rep = NULL;
        size_t len = 0;
        TST_OK(rlfeed_client_health(f->c, &rep, &len));
        base_free(rep);
    }
    /*
     * 2 * ROUNDS * BARE_PER_ROUND bare connections and 2 * ROUNDS served
     * ones later, nothing is left behind (slack 2 for a pipe still being
     * reaped on a loaded machine).
     */
    int after = fd_count_settled(f->pid, base);
    printf("# daemon descriptors: %d before, %d after %d bare connects\n", base, after,
           2 * ROUNDS * BARE_PER_ROUND);
    TST_TRUE(after >= 0 && after <= base + 2);
}

/*
 * A second rlfeedd on the same URLs (with its own embedded Redis, so it
 * cannot touch the first one's data) must refuse to start with "address in
 * use", and its probe of the address must not stop the first daemon from
 * accepting new clients.
 */
static void second_instance_fails_and_first_keeps_serving(tst_daemon *f)
{
    char log[700], data_dir[700];
    snprintf(log, sizeof(log), "%s/second.log", f->dir);
    snprintf(data_dir, sizeof(data_dir), "%s/second-redis", f->dir);
    char *argv[] = {(char *)(uintptr_t)f->bin,
                    "--config",
                    f->conf,
                    "--url",
                    f->url,
                    "--pull-url",
                    f->pull_url,
                    "--data-dir",
                    data_dir,
                    "--http-url",
                    "http://127.0.0.1:0",
                    NULL};
    for (int attempt = 0; attempt < 2; attempt++) {
        pid_t pid = tst_spawn(argv, log);
        TST_TRUE(pid > 0);
        if (pid <= 0) {
            return;
        }
        int st = 0;
        bool exited = tst_wait_exit(pid, 30000, &st);
        TST_TRUE(exited);
        if (!exited) {
            tst_stop(pid, 1000);
            return;
        }
        TST_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 0);
        TST_TRUE(tst_new_client_served(f->url, TIMEOUT_MS));
        TST_TRUE(new_pusher_served(f));
    }
    TST_TRUE(tst_file_has(log, "Address in use"));
}

/*
 * Start a second rlfeedd on @url with CONFIG plus @extra (appended [server] lines), its
 * own Redis under @name and its output in @log (f->dir/NAME.log). Its pid; 0 on failure.
 */
static pid_t spawn_with(tst_daemon *f, const char *name, const char *extra, const char *url,
                        char *log, size_t log_len)
{
    char data_dir[700], conf[700];
    snprintf(log, log_len, "%s/%s.log", f->dir, name);
    snprintf(conf, sizeof(conf), "%s/%s.ini", f->dir, name);
    snprintf(data_dir, sizeof(data_dir), "%s/%s-redis", f->dir, name);
    FILE *fp = fopen(conf, "w");
    TST_TRUE(fp != NULL);
    if (fp == NULL) {
        return 0;
    }
    /* One [server] section (a header given twice is refused): the extra lines go in it. */
    fprintf(fp, "[server]\n%s%s", extra, CONFIG + strlen("[server]\n"));
    fclose(fp);
    char *argv[] = {(char *)(uintptr_t)f->bin,
                    "--config",
                    conf,
                    "--url",
                    (char *)(uintptr_t)url,
                    "--data-dir",
                    data_dir,
                    "--http-url",
                    "",
                    NULL};
    pid_t pid = tst_spawn(argv, log);
    TST_TRUE(pid > 0);
    return pid > 0 ? pid : 0;
}

/*
 * Plain TCP on every interface: refused without insecure = true (exit status 2, the
 * reason on stderr, nothing started); with it, rlfeedd serves there and warns.
 */
static void plain_tcp_beyond_loopback_needs_insecure(tst_daemon *f)
{
    char log[700], url[64], local[64];
    int port = tst_free_port();
    TST_TRUE(port > 0);
    snprintf(url, sizeof(url), "tcp://0.0.0.0:%d", port);
    snprintf(local, sizeof(local), "tcp://127.0.0.1:%d", port);
    for (int insecure = 0; insecure < 2; insecure++) {
        pid_t pid = spawn_with(f, insecure ? "exposed-1" : "exposed-0",
                               insecure ? "insecure = true\n" : "", url, log, sizeof(log));
        if (pid == 0) {
            return;
        }
        if (!insecure) {
            int st = 0;
            bool exited = tst_wait_exit(pid, 30000, &st);
            TST_TRUE(exited && WIFEXITED(st) && WEXITSTATUS(st) == 2);
            if (!exited) {
                tst_stop(pid, 1000);
            }
            TST_TRUE(tst_file_has(log, "listens in the clear beyond this machine"));
            TST_TRUE(tst_file_has(log, "insecure = true"));
            continue;
        }
        TST_TRUE(tst_new_client_served(local, 30000));
        TST_TRUE(tst_file_has(log, "(insecure = true)"));
        tst_stop(pid, 10000);
    }
}

/* Mode and group of the socket file of @url ("ipc://PATH"); false if it cannot be read. */
static bool ipc_file(const char *url, int *mode, gid_t *gid)
{
    struct stat st;
    if (stat(url + 6, &st) != 0) {
        return false;
    }
    *mode = (int)(st.st_mode & 0777);
    *gid = st.st_gid;
    return true;
}

/*
 * ipc sockets are owner-only (0600) unless configured: ipc_mode and ipc_group open them to
 * a group, here this process's own.
 */
static void ipc_sockets_get_their_mode_and_group(tst_daemon *f)
{
    int mode = 0;
    gid_t gid = 0;
    TST_TRUE(ipc_file(f->url, &mode, &gid));
    TST_EQ(mode, 0600);
    TST_TRUE(ipc_file(f->pull_url, &mode, &gid));
    TST_EQ(mode, 0600);

    struct group *g = getgrgid(getgid());
    TST_TRUE(g != NULL);
    if (g == NULL) {
        return;
    }
    char log[700], url[700], extra[300];
    /* nng takes a scheme in any case: so does ipc_mode. */
    snprintf(url, sizeof(url), "IPC://%s/ipc-mode.sock", f->dir);
    snprintf(extra, sizeof(extra), "ipc_mode = 0660\nipc_group = %s\n", g->gr_name);
    pid_t pid = spawn_with(f, "ipc-mode", extra, url, log, sizeof(log));
    if (pid == 0) {
        return;
    }
    TST_TRUE(tst_new_client_served(url, 30000));
    TST_TRUE(ipc_file(url, &mode, &gid));
    TST_EQ(mode, 0660);
    TST_EQ(gid, g->gr_gid);
    tst_stop(pid, 10000);
}

int main(void)
{
    tst_daemon f;
    if (!tst_daemon_init(&f, "rlfeed-listener", CONFIG)) {
        TST_TRUE(0 && "fixture");
        tst_daemon_fini(&f, false);
        return tst_done();
    }
    /* Each check gets a fresh daemon: a wedged listener must not hide the next one. */
    bool up = tst_daemon_start(&f, true, NULL);
    TST_TRUE(up);
    if (up) {
        bare_connects_leave_listeners_serving(&f);
        ipc_sockets_get_their_mode_and_group(&f);
    }
    TST_EQ(tst_daemon_stop(&f), 0);
    up = tst_daemon_start(&f, true, NULL);
    TST_TRUE(up);
    if (up) {
        second_instance_fails_and_first_keeps_serving(&f);
    }
    TST_EQ(tst_daemon_stop(&f), 0);
    plain_tcp_beyond_loopback_needs_insecure(&f);
    tst_daemon_fini(&f, tst_failed > 0);
    rlfeed_client_lib_fini(); /* nng tears closed sockets down in the background */
    return tst_done();
}
