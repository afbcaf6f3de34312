#ifndef STORAGE_SERVER_IMPL_H
#define STORAGE_SERVER_IMPL_H

/*
 * The insides of storage/server.c, shared with storage/server_dir.c (who may run a server
 * on a data directory: its lock, and a server a dead process left there).
 */

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include "base/clock.h"
#include "base/err.h"
#include "storage/server.h"

#define STOP_TIMEOUT_MS 5000
#define PASS_BYTES 24 /* random bytes of a generated password */

struct sto_server {
    pid_t pid; /* -1 when not running */
    bool own_dir;
    bool unix_socket;
    int port; /* 0 with unix_socket */
    int start_timeout_ms;
    char *bin;
    char appendfsync[16];
    char dir[PATH_MAX];
    char pass[2 * PASS_BYTES + 1]; /* hex; "" without auth */
    char url[PATH_MAX + 2 * PASS_BYTES + 32];
    pid_t leftover; /* a redis-server an earlier rlfeedd left on dir, stopped at start; 0: none */
    int lock_fd;    /* DIR/rlfeedd.lock, flock()ed while @s lives; -1: none (own_dir) */
};

static inline void sto_server_msg(char *errbuf, size_t errlen, const char *what, const char *detail)
{
    if (errbuf != NULL && errlen > 0) {
        (void)snprintf(errbuf, errlen, "%s%s%s", what, detail[0] != '\0' ? ": " : "",
                       detail); /* truncation is acceptable for a message */
    }
}

static inline int64_t sto_server_now_ms(void)
{
    return (int64_t)(base_mono_ns() / 1000000u);
}

/* A short pause between polls of a condition that has its own deadline. */
static inline void sto_server_nap(void)
{
    struct timespec ts = {0, 2000000L};
    (void)nanosleep(&ts, NULL); /* an early wake-up only shortens the pause */
}

/* A TCP port on 127.0.0.1 that was free a moment ago; 0 on failure. */

/*
 * sto_server_claim_dir() - make @s's given directory this process's: its lock taken, a
 * redis-server a dead process left there stopped (s->leftover). BASE_EINVAL, the reason in
 * @errbuf, if another process runs a server there; BASE_EIO if it cannot be locked or a
 * leftover does not stop. Before anything in the directory changes.
 */
base_err sto_server_claim_dir(sto_server *s, char *errbuf, size_t errlen);

#endif
