#include "proc.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

char *tst_mkdtemp(const char *prefix)
{
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] == '\0') {
        tmp = "/tmp";
    }
    size_t n = strlen(tmp) + strlen(prefix) + 16;
    char *p = malloc(n);
    if (p == NULL) {
        return NULL;
    }
    snprintf(p, n, "%s/%s.XXXXXX", tmp, prefix);
    if (mkdtemp(p) == NULL) {
        free(p);
        return NULL;
    }
    return p;
}

void tst_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d != NULL) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                    continue;
                }
                char sub[4096];
                int k = snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
                if (k > 0 && (size_t)k < sizeof(sub)) {
                    tst_rm_rf(sub);
                }
            }
            closedir(d);
        }
        (void)rmdir(path); /* best effort */
    } else {
        (void)unlink(path); /* best effort */
    }
}

pid_t tst_spawn(char *const argv[], const char *log_path)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        /* A test killed mid-way (a signal, a closed stdout) leaves nothing running. */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent) {
            _exit(127);
        }
        if (log_path != NULL) {
            int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, STDOUT_FILENO);
                dup2(fd, STDERR_FILENO);
                close(fd);
            }
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

int64_t tst_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tst_nap(void)
{
    struct timespec ts = {0, 1000000L};
    nanosleep(&ts, NULL);
}

bool tst_wait_exit(pid_t pid, int timeout_ms, int *out_status)
{
    int64_t deadline = tst_now_ms() + timeout_ms;
    for (;;) {
        int st = 0;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            if (out_status != NULL) {
                *out_status = st;
            }
            return true;
        }
        if (r < 0 && errno != EINTR) {
            return false;
        }
        if (tst_now_ms() >= deadline) {
            return false;
        }
        tst_nap();
    }
}

void tst_stop(pid_t pid, int timeout_ms)
{
    if (pid <= 0) {
        return;
    }
    kill(pid, SIGTERM);
    if (!tst_wait_exit(pid, timeout_ms, NULL)) {
        kill(pid, SIGKILL);
        (void)tst_wait_exit(pid, 5000, NULL); /* reap */
    }
}

int tst_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return 0;
    }
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof(a);
    int port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        port = ntohs(a.sin_port);
    }
    close(fd);
    return port;
}

const char *tst_env_path(const char *env)
{
    const char *p = getenv(env);
    if (p == NULL || p[0] == '\0' || access(p, X_OK) != 0) {
        return NULL;
    }
    return p;
}

int tst_run(const char *env, const char *const *args, const char *log_path, int timeout_ms)
{
    const char *bin = tst_env_path(env);
    char *argv[32];
    int n = 0;
    if (bin == NULL) {
        return -1;
    }
    argv[n++] = (char *)(uintptr_t)bin;
    for (int k = 0; args[k] != NULL && n < 31; k++) {
        argv[n++] = (char *)(uintptr_t)args[k];
    }
    argv[n] = NULL;
    pid_t pid = tst_spawn(argv, log_path);
    int st = 0;
    if (pid < 0) {
        return -1;
    }
    if (!tst_wait_exit(pid, timeout_ms, &st)) {
        printf("# %s did not exit within %d ms: stopped\n", argv[0], timeout_ms);
        tst_stop(pid, 1000); /* nothing is left running */
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void tst_print_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    char line[1024];
    while (fp != NULL && fgets(line, sizeof(line), fp) != NULL) {
        printf("#   %s%s", line, strchr(line, '\n') != NULL ? "" : "\n");
    }
    if (fp != NULL) {
        fclose(fp);
    }
}
