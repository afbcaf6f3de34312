/*
 * _GNU_SOURCE for syscall(): this file replaces libc's sendmsg() and so
 * must reach the system call without going back through the symbol.
 */
#define _GNU_SOURCE

#include "service/nng_compat.h"

#include <errno.h>
#include <stddef.h>

#ifdef SVC_NNG_EPIPE_SHIM
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * Overrides libc's sendmsg() for the whole of rlfeedd (see the header). Same
 * contract as sendmsg(2), except that EPIPE ("the peer has gone") is
 * reported as ECONNRESET, so that nng 1.5.2 does not mistake a vanished
 * peer for a closed listener.
 */
ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    long n = syscall(SYS_sendmsg, fd, msg, flags);
    if (n < 0 && errno == EPIPE) {
        errno = ECONNRESET;
    }
    return (ssize_t)n;
}

const char *svc_nng_compat_describe(void)
{
    return "nng < 1.6 listener work-around: sendmsg() reports EPIPE as ECONNRESET";
}
#else
const char *svc_nng_compat_describe(void)
{
    return NULL;
}
#endif
