#include "bench/serve_daemon.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "client/rlfeed_client.h"

#define POLL_NS 10000000L /* 10 ms between two polls of a condition */
#define FD_CLOSE_MAX 4096

static void nap(void)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = POLL_NS};
    (void)nanosleep(&ts, NULL); /* a poll interval; an early wake-up only polls sooner */
}

/* Whether @pid exited (reaped, status in *out_status), waiting up to @timeout_ms. */
static bool wait_exit(pid_t pid, int timeout_ms, int *out_status)
{
    uint64_t deadline = base_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        int st = 0;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD)) {
            *out_status = r == pid ? st : -1;
            return true;
        }
        if (base_mono_ns() >= deadline) {
            return false;
        }
        nap();
    }
}

/* fork + exec; the child calls only async-signal-safe functions before exec. */
static pid_t spawn(char *const argv[], const char *log_path)
{
    long max_fd = sysconf(_SC_OPEN_MAX);
    if (max_fd < 0 || max_fd > FD_CLOSE_MAX) {
        max_fd = FD_CLOSE_MAX;
    }
    pid_t parent = getpid();
    sigset_t none;
    sigemptyset(&none);
    pid_t pid = fork();
    if (pid != 0) {
        return pid;
    }
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int null_fd = open("/dev/null", O_RDONLY);
    if (fd < 0 || null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(fd, STDOUT_FILENO) < 0 ||
        dup2(fd, STDERR_FILENO) < 0) {
        _exit(126);
    }
    for (long i = STDERR_FILENO + 1; i < max_fd; i++) {
        (void)close((int)i); /* none of the benchmark's sockets leak into the daemon */
    }
    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) {
        _exit(125); /* the benchmark died before prctl() took effect */
    }
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    execv(argv[0], argv);
    _exit(127);
}

/* Whether rlfeedd at @c answers health with a status other than "starting". */
static bool ready(rlfeed_client *c)
{
    uint8_t *rep = NULL;
    size_t len = 0;
    rlfeed_reply *r = base_alloc(sizeof(*r));
    bool up = false;
    if (r != NULL && rlfeed_client_health(c, &rep, &len) == BASE_OK) {
        up = rlfeed_reply_decode(rep, len, r) == BASE_OK && r->ok &&
             strcmp(r->status, "starting") != 0;
    }
    base_free(rep);
    base_free(r);
    return up;
}

base_err bench_daemon_start(char *const argv[], const char *log_path, const char *url,
                            int timeout_ms, pid_t *out_pid, char *errbuf, size_t errlen)
{
    rlfeed_client *c = NULL;
    pid_t pid = spawn(argv, log_path);
    if (pid < 0) {
        snprintf(errbuf, errlen, "fork: %s", strerror(errno));
        return BASE_EIO;
    }
    base_err e = BASE_EIO;
    if (rlfeed_client_open(url, 500, &c) != BASE_OK) {
        snprintf(errbuf, errlen, "cannot open a client for %s", url);
        goto fail;
    }
    uint64_t deadline = base_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        if (ready(c)) {
            e = BASE_OK;
            break;
        }
        int st = 0;
        if (wait_exit(pid, 0, &st)) {
            snprintf(errbuf, errlen, "%s exited (status %d) before it was ready; see %s", argv[0],
                     WIFEXITED(st) ? WEXITSTATUS(st) : -1, log_path);
            pid = 0;
            goto fail;
        }
        if (base_mono_ns() >= deadline) {
            snprintf(errbuf, errlen, "%s was not ready within %d ms; see %s", argv[0], timeout_ms,
                     log_path);
            goto fail;
        }
        nap();
    }
    *out_pid = pid;
fail:
    rlfeed_client_close(c);
    if (e != BASE_OK && pid > 0) {
        (void)bench_daemon_stop(pid, 2000);
    }
    return e;
}

int bench_daemon_stop(pid_t pid, int timeout_ms)
{
    if (pid <= 0) {
        return -1;
    }
    int st = 0;
    (void)kill(pid, SIGTERM); /* it may have exited already: reaped below */
    if (!wait_exit(pid, timeout_ms, &st)) {
        (void)kill(pid, SIGKILL);
        (void)waitpid(pid, &st, 0);
        return -1;
    }
    return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

base_err bench_mkdtemp(const char *prefix, char *out, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    int n =
        snprintf(out, len, "%s/%s.XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp", prefix);
    if (n < 0 || (size_t)n >= len) {
        return BASE_ELIMIT;
    }
    return mkdtemp(out) != NULL ? BASE_OK : BASE_EIO;
}

void bench_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        for (struct dirent *ent = d != NULL ? readdir(d) : NULL; ent != NULL; ent = readdir(d)) {
            if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) {
                continue;
            }
            char sub[4096];
            int k = snprintf(sub, sizeof(sub), "%s/%s", path, ent->d_name);
            if (k > 0 && (size_t)k < sizeof(sub)) {
                bench_rm_rf(sub);
            }
        }
        if (d != NULL) {
            closedir(d);
        }
        (void)rmdir(path); /* best effort: what is left is reported by nobody */
    } else {
        (void)unlink(path); /* best effort */
    }
}
