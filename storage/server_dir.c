/* Who may run a server on a data directory (storage/server_impl.h). */
#include "storage/server_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* Process @pid's name (comm) into @name, and its state and parent; false if it is gone. */
static bool proc_info(long pid, char *name, size_t size, char *state, long *parent)
{
    char path[64], buf[512];
    (void)snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *fp = fopen(path, "r");
    size_t n = fp != NULL ? fread(buf, 1, sizeof(buf) - 1, fp) : 0;
    if (fp != NULL) {
        fclose(fp);
    }
    buf[n] = '\0';
    const char *lp = strchr(buf, '('), *rp = strrchr(buf, ')'); /* the name may hold ')' */
    if (lp == NULL || rp == NULL || rp < lp || sscanf(rp + 1, " %c %ld", state, parent) != 2) {
        return false;
    }
    size_t len = (size_t)(rp - lp - 1) < size - 1 ? (size_t)(rp - lp - 1) : size - 1;
    memcpy(name, lp + 1, len);
    name[len] = '\0';
    return true;
}

/* Whether process @pid runs (a zombie does not) under the name @name. */
static bool proc_runs(long pid, const char *name)
{
    char comm[32], state = 0;
    long parent = 0;
    return proc_info(pid, comm, sizeof(comm), &state, &parent) && state != 'Z' && state != 'X' &&
           strcmp(comm, name) == 0;
}

/* Whether the redis-server @pid is gone within @ms (polled: it is not our child). */
static bool gone_within(long pid, int ms)
{
    int64_t until = sto_server_now_ms() + ms;
    while (proc_runs(pid, "redis-server")) {
        if (sto_server_now_ms() >= until) {
            return false;
        }
        struct timespec nap = {0, 10 * 1000000L};
        nanosleep(&nap, NULL);
    }
    return true;
}

/*
 * Only one process at a time may run a server on a directory it was given: an exclusive
 * flock() of DIR/rlfeedd.lock (which then names our pid), held until sto_server_stop()
 * and released by the kernel if the process dies. It covers what the pid file cannot: the
 * moments in which the holder's server is down (crashed, or being restarted).
 */
static base_err lock_dir(sto_server *s, char *errbuf, size_t errlen)
{
    char path[PATH_MAX + 16];
    (void)snprintf(path, sizeof(path), "%s/rlfeedd.lock", s->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        char what[PATH_MAX + 32];
        (void)snprintf(what, sizeof(what), "cannot open %s", path); /* may cut */
        sto_server_msg(errbuf, errlen, what, strerror(errno));
        return BASE_EIO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        char held[32] = "", detail[PATH_MAX + 96];
        /* The holder writes its pid right after it takes the lock: give it a moment. */
        bool live = false;
        for (int64_t until = sto_server_now_ms() + 200; err == EWOULDBLOCK && !live;
             sto_server_nap()) {
            ssize_t n = pread(fd, held, sizeof(held) - 1, 0);
            held[n > 0 ? n : 0] = '\0';
            held[strcspn(held, "\n")] = '\0';
            long pid = strtol(held, NULL, 10);
            live = pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
            if (sto_server_now_ms() >= until) {
                break;
            }
        }
        if (!live) {
            held[0] = '\0'; /* a pid left by an earlier holder names nobody now */
        }
        (void)close(fd);
        if (err != EWOULDBLOCK) {
            sto_server_msg(errbuf, errlen, "cannot lock the data directory", strerror(err));
            return BASE_EIO;
        }
        (void)snprintf(detail, sizeof(detail), "%s (its rlfeedd.lock is held by pid %s)", s->dir,
                       held[0] != '\0' ? held : "?");
        sto_server_msg(errbuf, errlen, "data directory in use by another rlfeedd", detail);
        return BASE_EINVAL;
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    /* The lock holds without its text, which only names the holder in a message. */
    bool named = ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) == n;
    (void)named;
    s->lock_fd = fd;
    return BASE_OK;
}

/*
 * A redis-server an earlier rlfeedd started on @s's directory (its pid file names a running
 * one) may still be there: rlfeedd was killed and the server, signalled, is still shutting
 * down, or it outlived an older rlfeedd. Two must never share one AOF directory: ask it to
 * stop (SIGTERM, which redis takes as a clean shutdown, also twice), then kill it;
 * s->leftover says which pid. One whose parent is a running rlfeedd is in use: refused.
 */
static base_err leftover_gone(sto_server *s, char *errbuf, size_t errlen)
{
    char path[PATH_MAX + 16], comm[32], state = 0;
    (void)snprintf(path, sizeof(path), "%s/redis.pid", s->dir);
    FILE *fp = fopen(path, "r");
    long pid = 0, parent = 0;
    bool named = fp != NULL && fscanf(fp, "%ld", &pid) == 1;
    if (fp != NULL) {
        fclose(fp);
    }
    if (!named || pid <= 1 || pid == (long)getpid() || !proc_runs(pid, "redis-server") ||
        !proc_info(pid, comm, sizeof(comm), &state, &parent)) {
        return BASE_OK; /* none, or a stale file */
    }
    if (parent > 1 && parent != (long)getpid() && proc_runs(parent, "rlfeedd")) {
        char detail[PATH_MAX + 64];
        (void)snprintf(detail, sizeof(detail), "%s (redis-server %ld of rlfeedd %ld)", s->dir, pid,
                       parent);
        sto_server_msg(errbuf, errlen, "data directory in use by another rlfeedd", detail);
        return BASE_EINVAL;
    }
    s->leftover = (pid_t)pid;
    (void)kill((pid_t)pid, SIGTERM);
    if (gone_within(pid, STOP_TIMEOUT_MS)) {
        return BASE_OK;
    }
    (void)kill((pid_t)pid, SIGKILL);
    if (gone_within(pid, STOP_TIMEOUT_MS)) {
        return BASE_OK;
    }
    sto_server_msg(errbuf, errlen, "a redis-server left on the data directory does not stop",
                   s->dir);
    return BASE_EIO;
}

base_err sto_server_claim_dir(sto_server *s, char *errbuf, size_t errlen)
{
    base_err e = lock_dir(s, errbuf, errlen);
    return e == BASE_OK ? leftover_gone(s, errbuf, errlen) : e;
}
