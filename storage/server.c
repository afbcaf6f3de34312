#include "storage/server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/hash.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "storage/server_impl.h"
#include "storage/store.h"

#define START_TIMEOUT_MS_DEFAULT 10000
#define PROBE_TIMEOUT_MS 500
#define PORT_ATTEMPTS 3 /* a free port can be taken between probe and bind */
#define ARGV_MAX 32
#define RM_DEPTH_MAX 4      /* redis writes DIR and DIR/appendonlydir only */
#define SUN_PATH_MAX 107u   /* sun_path is 108 bytes with the NUL */
#define FD_CLOSE_MAX 65536L /* close inherited descriptors below this in the child */
#define READY_LINE "eady to accept connections" /* "Ready ..." (tcp), "... now ready ..." (unix) */
#define LOG_SCAN_MAX (1u << 20)

static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int port = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0) {
        goto fail;
    }
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &alen) == 0) {
        port = ntohs(a.sin_port);
    }
    (void)close(fd); /* nothing was written */
fail:
    return port;
}

/* Remove @path and, for a directory, what it holds, at most @depth levels down. */
static void rm_tree(const char *path, int depth)
{
    struct stat st;
    DIR *d = NULL;

    if (lstat(path, &st) != 0) {
        goto fail;
    }
    if (!S_ISDIR(st.st_mode)) {
        (void)unlink(path); /* best effort: stop must not fail */
        goto fail;
    }
    d = depth > 0 ? opendir(path) : NULL;
    if (d != NULL) {
        struct dirent *ent;
        while ((ent = readdir(d)) != NULL) {
            char sub[PATH_MAX];
            if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) {
                continue;
            }
            int n = snprintf(sub, sizeof(sub), "%s/%s", path, ent->d_name);
            if (n > 0 && (size_t)n < sizeof(sub)) {
                rm_tree(sub, depth - 1);
            }
        }
        (void)closedir(d); /* read-only handle */
    }
    (void)rmdir(path); /* best effort */
fail:
    return;
}

static bool log_path(const sto_server *s, char *dst, size_t size)
{
    int n = snprintf(dst, size, "%s/redis.log", s->dir);
    return n > 0 && (size_t)n < size;
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : 0;
}

/* The last bytes of redis.log, newlines flattened, into @errbuf after @what. */
static void log_tail(const sto_server *s, const char *what, char *errbuf, size_t errlen)
{
    char path[PATH_MAX], tail[600];
    ssize_t got = 0;

    if (log_path(s, path, sizeof(path))) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            off_t size = file_size(path);
            off_t from = size > (off_t)sizeof(tail) - 1 ? size - ((off_t)sizeof(tail) - 1) : 0;
            if (lseek(fd, from, SEEK_SET) == from) {
                got = read(fd, tail, sizeof(tail) - 1);
            }
            (void)close(fd); /* read-only */
        }
    }
    if (got < 0) {
        got = 0;
    }
    tail[got] = '\0';
    for (ssize_t i = 0; i < got; i++) {
        if (tail[i] == '\n' || tail[i] == '\r') {
            tail[i] = ' ';
        }
    }
    /*
     * What fits of it after "@what: " is its end, where redis-server says why it stopped: cut
     * at the front, after a blank, and marked "...".
     */
    const char *shown = tail;
    size_t room = errlen > strlen(what) + 6 ? errlen - strlen(what) - 6 : 0;
    char cut[sizeof(tail) + 4];
    if ((size_t)got > room && room > 0) {
        shown = tail + (size_t)got - room;
        const char *blank = strchr(shown, ' ');
        shown = blank != NULL && blank[1] != '\0' ? blank + 1 : shown;
        (void)snprintf(cut, sizeof(cut), "...%s", shown);
        shown = cut;
    }
    sto_server_msg(errbuf, errlen, what, got > 0 ? shown : "(redis.log is empty)");
}

/*
 * True if redis.log, from byte @from on, holds the line redis writes once it
 * listens. Together with a PONG this shows that our child answered, not
 * another server that took the port first.
 */
static bool log_says_ready(const sto_server *s, off_t from)
{
    char path[PATH_MAX], chunk[4096];
    const size_t nl = sizeof(READY_LINE) - 1;
    size_t keep = 0, scanned = 0;
    bool found = false;
    int fd = -1;

    if (!log_path(s, path, sizeof(path))) {
        goto fail;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && lseek(fd, from, SEEK_SET) == from) {
        while (!found && scanned < LOG_SCAN_MAX) {
            ssize_t got = read(fd, chunk + keep, sizeof(chunk) - keep);
            if (got <= 0) {
                break;
            }
            size_t have = keep + (size_t)got;
            scanned += (size_t)got;
            for (size_t i = 0; !found && i + nl <= have; i++) {
                found = memcmp(chunk + i, READY_LINE, nl) == 0;
            }
            /* Keep a needle's length of overlap for a line split across reads. */
            keep = have < nl ? have : nl - 1;
            memmove(chunk, chunk + have - keep, keep);
        }
    }
fail:
    if (fd >= 0) {
        (void)close(fd); /* read-only */
    }
    return found;
}

/* Free a NULL-terminated argv built by build_argv(). */
static void free_argv(char **argv)
{
    for (size_t i = 0; argv[i] != NULL; i++) {
        base_free(argv[i]);
    }
}

static bool push(char **argv, size_t *n, const char *arg)
{
    bool ok = *n < ARGV_MAX;
    if (ok) {
        argv[*n] = base_strdup(arg);
        ok = argv[*n] != NULL;
    }
    if (ok) {
        (*n)++;
        argv[*n] = NULL;
    }
    return ok;
}

/* Every setting on the command line: no config file to write or clean up. */
static base_err build_argv(const sto_server *s, char **argv)
{
    char port[16], path[PATH_MAX + 16];
    size_t n = 0;
    bool ok = true;

    argv[0] = NULL;
    (void)snprintf(port, sizeof(port), "%d", s->port); /* fits */
    ok = ok && push(argv, &n, s->bin);
    if (s->pass[0] != '\0') {
        /* The password goes in a 0600 file, never on a command line others can read. */
        (void)snprintf(path, sizeof(path), "%s/redis.conf", s->dir); /* checked at start */
        ok = ok && push(argv, &n, path);
    }
    ok = ok && push(argv, &n, "--bind") && push(argv, &n, "127.0.0.1");
    ok = ok && push(argv, &n, "--port") && push(argv, &n, port);
    if (s->unix_socket) {
        (void)snprintf(path, sizeof(path), "%s/redis.sock", s->dir); /* checked at start */
        ok = ok && push(argv, &n, "--unixsocket") && push(argv, &n, path);
        ok = ok && push(argv, &n, "--unixsocketperm") && push(argv, &n, "700");
    }
    ok = ok && push(argv, &n, "--dir") && push(argv, &n, s->dir);
    (void)snprintf(path, sizeof(path), "%s/redis.pid", s->dir); /* checked at start */
    ok = ok && push(argv, &n, "--pidfile") && push(argv, &n, path);
    ok = ok && push(argv, &n, "--appendonly") && push(argv, &n, "yes");
    ok = ok && push(argv, &n, "--appendfsync") && push(argv, &n, s->appendfsync);
    ok = ok && push(argv, &n, "--save") && push(argv, &n, "");
    ok = ok && push(argv, &n, "--rdbcompression") && push(argv, &n, "no");
    ok = ok && push(argv, &n, "--daemonize") && push(argv, &n, "no");
    ok = ok && push(argv, &n, "--protected-mode") && push(argv, &n, "yes");
    (void)snprintf(path, sizeof(path), "%s/redis.log", s->dir); /* checked at start */
    ok = ok && push(argv, &n, "--logfile") && push(argv, &n, path);
    if (!ok) {
        free_argv(argv);
    }
    return ok ? BASE_OK : BASE_ENOMEM;
}

/*
 * fork + exec. Between fork and exec the child calls only async-signal-safe
 * functions: the parent may have other threads holding locks.
 */
static base_err spawn(sto_server *s, char **argv, char *errbuf, size_t errlen)
{
    char log[PATH_MAX];
    long max_fd = sysconf(_SC_OPEN_MAX);
    sigset_t none;
    base_err e = BASE_EINVAL;

    if (!log_path(s, log, sizeof(log))) {
        sto_server_msg(errbuf, errlen, "data directory path too long", s->dir);
        goto fail;
    }
    if (max_fd < 0 || max_fd > FD_CLOSE_MAX) {
        max_fd = FD_CLOSE_MAX;
    }
    sigemptyset(&none);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        e = BASE_EIO;
        sto_server_msg(errbuf, errlen, "fork failed", strerror(errno));
        goto fail;
    }
    if (pid == 0) {
        /*
         * The server goes down with this process, even killed (SIGTERM: it shuts down cleanly,
         * AOF synced), instead of living on beside the next one's on the same directory. The
         * signal follows the thread that forked: here always a thread that lasts.
         */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent) {
            _exit(125);
        }
        /* Early failures (bad arguments) go to stderr before redis opens its logfile. */
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int null_fd = open("/dev/null", O_RDONLY);
        if (fd < 0 || null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 ||
            dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0) {
            _exit(126);
        }
        /* Do not leak the parent's sockets into redis; undo a blocked SIGTERM. */
        for (long i = STDERR_FILENO + 1; i < max_fd; i++) {
            (void)close((int)i);
        }
        (void)sigprocmask(SIG_SETMASK, &none, NULL);
        /* Ignored signals stay ignored across exec: redis gets the defaults it expects. */
        (void)signal(SIGPIPE, SIG_DFL);
        (void)signal(SIGXFSZ, SIG_DFL);
        execvp(argv[0], argv);
        _exit(127);
    }
    s->pid = pid;
    e = BASE_OK;
fail:
    return e;
}

static void reap_blocking(pid_t pid)
{
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
}

/* SIGKILL and reap the child if it is running. */
static void kill_child(sto_server *s)
{
    if (s->pid > 0) {
        (void)kill(s->pid, SIGKILL); /* ESRCH cannot happen: the child is not reaped yet */
        reap_blocking(s->pid);
        s->pid = -1;
    }
}

/*
 * One start attempt on the current port or socket. *out_exited is set when
 * the child exited by itself (port taken, bad option).
 */
static base_err launch(sto_server *s, bool *out_exited, char *errbuf, size_t errlen)
{
    char *argv[ARGV_MAX + 1];
    char log[PATH_MAX];
    int64_t deadline;
    base_err e;

    *out_exited = false;
    if (s->unix_socket && s->pass[0] != '\0') {
        (void)snprintf(s->url, sizeof(s->url), "unix://:%s@%s/redis.sock", s->pass, s->dir);
    } else if (s->unix_socket) {
        (void)snprintf(s->url, sizeof(s->url), "unix:%s/redis.sock", s->dir); /* checked */
    } else if (s->pass[0] != '\0') {
        (void)snprintf(s->url, sizeof(s->url), "tcp://:%s@127.0.0.1:%d", s->pass, s->port);
    } else {
        (void)snprintf(s->url, sizeof(s->url), "tcp://127.0.0.1:%d", s->port); /* fits */
    }
    off_t log_from = log_path(s, log, sizeof(log)) ? file_size(log) : 0;
    e = build_argv(s, argv);
    if (e != BASE_OK) {
        sto_server_msg(errbuf, errlen, "out of memory", "");
        goto fail;
    }
    e = spawn(s, argv, errbuf, errlen);
    free_argv(argv);
    if (e != BASE_OK) {
        goto fail;
    }
    deadline = sto_server_now_ms() + s->start_timeout_ms;
    for (;;) {
        int status = 0;
        pid_t r = waitpid(s->pid, &status, WNOHANG);
        if (r == s->pid) {
            char what[96];
            s->pid = -1;
            *out_exited = true;
            (void)snprintf(what, sizeof(what), "redis-server exited early (%s %d)",
                           WIFEXITED(status) ? "status" : "signal",
                           WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            log_tail(s, what, errbuf, errlen);
            e = BASE_EIO;
            goto fail;
        }
        sto_store *st = NULL;
        if (sto_store_open(s->url, PROBE_TIMEOUT_MS, &st, NULL, 0) == BASE_OK) {
            base_err pe = sto_store_ping(st);
            sto_store_close(st);
            if (pe == BASE_OK && log_says_ready(s, log_from)) {
                break;
            }
        }
        if (sto_server_now_ms() >= deadline) {
            kill_child(s);
            log_tail(s, "redis-server did not answer PING in time", errbuf, errlen);
            e = BASE_EIO;
            goto fail;
        }
        sto_server_nap();
    }
    e = BASE_OK;
fail:
    return e;
}

/* Make @dir (or a fresh temporary one) and store its absolute path in s->dir. */
static base_err make_dir(sto_server *s, const char *dir, char *errbuf, size_t errlen)
{
    char tmpl[PATH_MAX], cwd[PATH_MAX];
    base_err e = BASE_EIO;
    int n;

    if (dir == NULL) {
        const char *tmp = getenv("TMPDIR");
        if (tmp == NULL || tmp[0] == '\0') {
            tmp = "/tmp";
        }
        n = snprintf(tmpl, sizeof(tmpl), "%s/rlfeed-redis.XXXXXX", tmp);
        if (n < 0 || (size_t)n >= sizeof(tmpl)) {
            e = BASE_EINVAL;
            sto_server_msg(errbuf, errlen, "TMPDIR too long", tmp);
            goto fail;
        }
        if (mkdtemp(tmpl) == NULL) {
            sto_server_msg(errbuf, errlen, "mkdtemp failed", strerror(errno));
            goto fail;
        }
        s->own_dir = true;
        dir = tmpl;
    } else if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        sto_server_msg(errbuf, errlen, "cannot create data directory", strerror(errno));
        goto fail;
    } else {
        struct stat st;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) { /* nothing in it is touched then */
            const char *why = stat(dir, &st) != 0 ? strerror(errno) : strerror(ENOTDIR);
            char what[PATH_MAX + 32];
            (void)snprintf(what, sizeof(what), "data directory %s", dir); /* may cut */
            sto_server_msg(errbuf, errlen, what, why);
            goto fail;
        }
    }
    /* realpath() is XSI; an absolute path is all redis and the socket URL need. */
    if (dir[0] == '/') {
        n = snprintf(s->dir, sizeof(s->dir), "%s", dir);
    } else if (getcwd(cwd, sizeof(cwd)) != NULL) {
        n = snprintf(s->dir, sizeof(s->dir), "%s/%s", cwd, dir);
    } else {
        sto_server_msg(errbuf, errlen, "cannot resolve data directory", strerror(errno));
        goto fail;
    }
    if (n < 0 || (size_t)n >= sizeof(s->dir)) {
        e = BASE_EINVAL;
        sto_server_msg(errbuf, errlen, "data directory path too long", dir);
        goto fail;
    }
    e = BASE_OK;
fail:
    if (e != BASE_OK && s->own_dir) {
        (void)rmdir(dir); /* just made, still empty */
        s->own_dir = false;
        s->dir[0] = '\0';
    }
    return e;
}

/*
 * A new random password in s->pass and DIR/redis.conf (0600: "requirepass"), and DIR made
 * 0700, so that neither the password nor the data can be read by another user.
 */
static base_err make_password(sto_server *s, char *errbuf, size_t errlen)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[PASS_BYTES];
    char path[PATH_MAX + 16];
    base_entropy_fill(raw, sizeof(raw));
    for (size_t i = 0; i < sizeof(raw); i++) {
        s->pass[2 * i] = hex[raw[i] >> 4];
        s->pass[2 * i + 1] = hex[raw[i] & 15];
    }
    s->pass[2 * sizeof(raw)] = '\0';
    if (chmod(s->dir, 0700) != 0) {
        sto_server_msg(errbuf, errlen, "cannot make the data directory private (chmod 0700)",
                       strerror(errno));
        return BASE_EIO;
    }
    (void)snprintf(path, sizeof(path), "%s/redis.conf", s->dir); /* the dir fits a socket path */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || fchmod(fd, 0600) != 0) {
        sto_server_msg(errbuf, errlen, "cannot write redis.conf", strerror(errno));
        if (fd >= 0) {
            (void)close(fd);
        }
        return BASE_EIO;
    }
    char line[sizeof(s->pass) + 32];
    int n = snprintf(line, sizeof(line), "requirepass %s\n", s->pass);
    bool ok = write(fd, line, (size_t)n) == (ssize_t)n;
    ok = close(fd) == 0 && ok;
    if (!ok) {
        sto_server_msg(errbuf, errlen, "cannot write redis.conf", strerror(errno));
        return BASE_EIO;
    }
    return BASE_OK;
}

/* Start on a fresh port (up to PORT_ATTEMPTS tries), or on the fixed port or socket. */
static base_err start_attempts(sto_server *s, bool fixed_port, char *errbuf, size_t errlen)
{
    base_err e = BASE_EIO;
    int attempts = s->unix_socket || fixed_port ? 1 : PORT_ATTEMPTS;

    for (int i = 0; i < attempts; i++) {
        bool exited = false;
        if (!s->unix_socket && !fixed_port) {
            s->port = free_port();
            if (s->port == 0) {
                sto_server_msg(errbuf, errlen, "no free port on 127.0.0.1", strerror(errno));
                e = BASE_EIO;
                break;
            }
        }
        e = launch(s, &exited, errbuf, errlen);
        if (e == BASE_OK || !exited) {
            break;
        }
    }
    return e;
}

pid_t sto_server_leftover(const sto_server *s)
{
    return s->leftover;
}

base_err sto_server_start(const sto_server_opts *opts, sto_server **out, char *errbuf,
                          size_t errlen)
{
    sto_server_opts def = {NULL, NULL, NULL, false, 0, false};
    sto_server *s = NULL;
    base_err e = BASE_EINVAL;

    if (opts == NULL) {
        opts = &def;
    }
    const char *fsync = opts->appendfsync != NULL ? opts->appendfsync : "always";
    if (strcmp(fsync, "everysec") != 0 && strcmp(fsync, "always") != 0 &&
        strcmp(fsync, "no") != 0) {
        sto_server_msg(errbuf, errlen, "appendfsync must be everysec, always or no", fsync);
        goto fail;
    }
    s = base_alloc_zero(1, sizeof(*s));
    if (s == NULL) {
        e = BASE_ENOMEM;
        sto_server_msg(errbuf, errlen, "out of memory", "");
        goto fail;
    }
    s->pid = -1;
    s->lock_fd = -1;
    s->unix_socket = opts->unix_socket;
    s->start_timeout_ms =
        opts->start_timeout_ms > 0 ? opts->start_timeout_ms : START_TIMEOUT_MS_DEFAULT;
    (void)base_strlcpy(s->appendfsync, fsync, sizeof(s->appendfsync)); /* validated above */
    s->bin = base_strdup(opts->redis_bin != NULL ? opts->redis_bin : "redis-server");
    if (s->bin == NULL) {
        e = BASE_ENOMEM;
        sto_server_msg(errbuf, errlen, "out of memory", "");
        goto fail;
    }
    e = make_dir(s, opts->dir, errbuf, errlen);
    if (e != BASE_OK) {
        goto fail;
    }
    if (strlen(s->dir) + sizeof("/redis.sock") - 1 > SUN_PATH_MAX) {
        e = BASE_EINVAL;
        sto_server_msg(errbuf, errlen, "data directory too long for a unix socket path", s->dir);
        goto fail;
    }
    /* Before anything in the directory changes: another rlfeedd's server reads redis.conf. */
    e = s->own_dir ? BASE_OK : sto_server_claim_dir(s, errbuf, errlen);
    if (e != BASE_OK) {
        goto fail;
    }
    if (opts->auth) {
        e = make_password(s, errbuf, errlen);
        if (e != BASE_OK) {
            goto fail;
        }
    }
    e = start_attempts(s, false, errbuf, errlen);
    if (e != BASE_OK) {
        goto fail;
    }
    *out = s;
    s = NULL;
fail:
    sto_server_stop(s);
    return e;
}

const char *sto_server_url(const sto_server *s)
{
    return s->url;
}

const char *sto_server_dir(const sto_server *s)
{
    return s->dir;
}

pid_t sto_server_pid(const sto_server *s)
{
    return s->pid;
}

void sto_server_stop(sto_server *s)
{
    sto_server_stop_within(s, STOP_TIMEOUT_MS);
}

void sto_server_stop_within(sto_server *s, int timeout_ms)
{
    if (s == NULL) {
        return;
    }
    if (timeout_ms < 0 || timeout_ms > STOP_TIMEOUT_MS) {
        timeout_ms = STOP_TIMEOUT_MS;
    }
    if (s->pid > 0) {
        /* SIGTERM lets redis flush and close the AOF; SIGKILL if it takes too long. */
        int64_t deadline = sto_server_now_ms() + timeout_ms;
        bool reaped = false;
        (void)kill(s->pid, SIGTERM); /* the child is ours and not yet reaped */
        while (!reaped && sto_server_now_ms() < deadline) {
            pid_t r = waitpid(s->pid, NULL, WNOHANG);
            reaped = r == s->pid || (r < 0 && errno != EINTR);
            if (!reaped) {
                sto_server_nap();
            }
        }
        if (reaped) {
            s->pid = -1;
        } else {
            kill_child(s);
        }
    }
    if (s->own_dir && s->dir[0] != '\0') {
        rm_tree(s->dir, RM_DEPTH_MAX);
    }
    if (s->lock_fd >= 0) {
        (void)close(s->lock_fd); /* after the server is gone; the file stays (see lock_dir) */
    }
    base_free(s->bin);
    base_free(s);
}

bool sto_server_reap(sto_server *s, int *out_wstatus)
{
    int status = 0;
    if (s == NULL || s->pid <= 0 || waitpid(s->pid, &status, WNOHANG) != s->pid) {
        return false;
    }
    s->pid = -1;
    if (out_wstatus != NULL) {
        *out_wstatus = status;
    }
    return true;
}

void sto_server_kill(sto_server *s)
{
    if (s != NULL) {
        kill_child(s);
    }
}

base_err sto_server_restart(sto_server *s, char *errbuf, size_t errlen)
{
    kill_child(s);
    return start_attempts(s, true, errbuf, errlen);
}
