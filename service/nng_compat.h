#ifndef SERVICE_NNG_COMPAT_H
#define SERVICE_NNG_COMPAT_H

/*
 * Work-arounds, linked into rlfeedd only, for defects of the nng library as
 * Debian 12 ships it (libnng1 1.5.2-2). meson compiles each one in only for
 * the nng versions that need it (SVC_NNG_EPIPE_SHIM: nng < 1.6.0).
 *
 * The listener wedge (nng issue #1518, fixed upstream by PR #1519 in 1.6.0):
 * when a peer connects to an ipc:// listener and is gone before the daemon
 * writes its 8-byte SP greeting, sendmsg() fails with EPIPE, which nng maps
 * to NNG_ECLOSED (src/platform/posix/posix_debug.c:86). ipc_pipe_neg_cb() in
 * src/sp/transport/ipc/ipc.c (error path, line 281) hands that code unchanged
 * to the listener's pending accept, and listener_accept_cb() in
 * src/core/listener.c (line 384) reads NNG_ECLOSED as "this listener was
 * closed": it never accepts again. Every
 * later client completes the handshake and then waits forever in the
 * transport's wait list, holding a descriptor; once such a client hangs
 * up, its still level-triggered EPOLLHUP (masked out of the callback) spins
 * the poller thread. One `connect(); close();` does it, as does the
 * address-in-use probe of a second process listening on the same path.
 * NNG_OPT_RECVMAXSZ plays no part: the wedge happens without it.
 *
 * The work-around: rlfeedd defines sendmsg() itself (ELF interposition: the
 * executable's definition binds before libc's for libnng's calls) and
 * reports a peer that has gone away as ECONNRESET instead of EPIPE. nng
 * maps that to NNG_ECONNRESET, which the listener treats as a remote
 * condition and keeps accepting; an established pipe that sees it closes,
 * exactly as with NNG_ECLOSED. Nothing else in rlfeedd calls sendmsg().
 * Remove this file once the distribution ships nng >= 1.6.0.
 *
 * Thread-safe: no state.
 */

/* A one-line description of the work-arounds compiled in, for the start-up log; NULL if none. */
const char *svc_nng_compat_describe(void);

#endif
