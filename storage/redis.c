/*
 * The hiredis connection of a sto_store: URL parsing, connect and reconnect
 * with timeouts, one-command helpers, SIGPIPE handling and key names. The
 * one place hiredis's own errors (NULL replies, c->err) become base_err.
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/utf8.h"
#include "storage/codec.h"
#include "storage/streamid.h"
#include "storage/store_impl.h"

/* ---- SIGPIPE ------------------------------------------------------------ */

/*
 * hiredis 0.14 writes with write(2), so a write to a socket the server has
 * closed raises SIGPIPE, whose default action kills the process. A library
 * must not change the process's disposition, so each exchange blocks SIGPIPE
 * in the calling thread and consumes one it raised itself (the libpq
 * pq_block_sigpipe() pattern). The write then fails with EPIPE, which
 * hiredis reports as an I/O error.
 */

void sto_guard_begin(pipe_guard *g)
{
    sigset_t pipe_set, pending;

    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    (void)pthread_sigmask(SIG_BLOCK, &pipe_set, &g->old); /* fails only for a bad 'how' */
    sigemptyset(&pending);
    (void)sigpending(&pending); /* cannot fail with a valid set */
    g->was_pending = sigismember(&pending, SIGPIPE) == 1;
}

void sto_guard_end(pipe_guard *g)
{
    sigset_t pipe_set, pending;

    if (!g->was_pending) {
        sigemptyset(&pending);
        (void)sigpending(&pending); /* cannot fail with a valid set */
        if (sigismember(&pending, SIGPIPE) == 1) {
            struct timespec zero = {0, 0};
            sigemptyset(&pipe_set);
            sigaddset(&pipe_set, SIGPIPE);
            (void)sigtimedwait(&pipe_set, NULL, &zero); /* consume ours; EAGAIN if raced */
        }
    }
    (void)pthread_sigmask(SIG_SETMASK, &g->old, NULL); /* restores the caller's mask */
}

/* ---- connection --------------------------------------------------------- */

static void put_err(char *errbuf, size_t errlen, const char *what, const char *detail)
{
    if (errbuf != NULL && errlen > 0) {
        (void)snprintf(errbuf, errlen, "%s%s%s", what, detail[0] != '\0' ? ": " : "",
                       detail); /* truncation is acceptable for a message */
    }
}

/*
 * If @rest starts with "[USER]:PASSWORD@" (before any '/'), take the credentials into @s
 * and return what follows; @rest itself when there are none; NULL when malformed.
 */
static const char *take_creds(sto_store *s, const char *rest)
{
    size_t span = strcspn(rest, "/");
    const char *at = memchr(rest, '@', span);
    if (at == NULL) {
        return rest;
    }
    const char *colon = memchr(rest, ':', (size_t)(at - rest));
    if (colon == NULL || colon + 1 == at) {
        return NULL; /* a user without a password, or an empty password */
    }
    if (!base_percent_decode(rest, (size_t)(colon - rest), false, s->user, sizeof(s->user)) ||
        !base_percent_decode(colon + 1, (size_t)(at - colon - 1), false, s->pass,
                             sizeof(s->pass))) {
        return NULL;
    }
    return at + 1;
}

/*
 * "HOST:PORT" or "[V6HOST]:PORT" of @n bytes at @p into @host and @port. Database numbers
 * ("/N") and anything else after the port are refused.
 */
static bool parse_hostport(const char *p, size_t n, char *host, int *port)
{
    char tmp[HOST_MAX + 8];
    if (n == 0 || n >= sizeof(tmp) || memchr(p, '@', n) != NULL || memchr(p, '/', n) != NULL) {
        return false;
    }
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    const char *colon = strrchr(tmp, ':');
    if (colon == NULL) {
        return false;
    }
    const char *h = tmp;
    size_t hn = (size_t)(colon - tmp);
    if (hn >= 2 && h[0] == '[' && h[hn - 1] == ']') {
        h++;
        hn -= 2;
    }
    /* A bracket left over is one unmatched ("[::1:6379"); the port is digits alone. */
    if (hn == 0 || hn > HOST_MAX || memchr(h, '[', hn) != NULL || memchr(h, ']', hn) != NULL ||
        !isdigit((unsigned char)colon[1])) {
        return false;
    }
    char *end = NULL;
    errno = 0;
    long v = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || v < 1 || v > 65535) {
        return false;
    }
    memcpy(host, h, hn);
    host[hn] = '\0';
    *port = (int)v;
    return true;
}

/* "HOST:PORT[,HOST:PORT...]" (a cluster:// URL's nodes) into s->seed. */
static bool parse_seeds(sto_store *s, const char *rest)
{
    s->n_seeds = 0;
    for (;;) {
        size_t n = strcspn(rest, ",");
        int port = 0;
        if (s->n_seeds == STO_SEEDS_MAX ||
            !parse_hostport(rest, n, s->seed[s->n_seeds].host, &port)) {
            return false;
        }
        s->seed[s->n_seeds++].port = (uint16_t)port;
        if (rest[n] == '\0') {
            return true;
        }
        rest += n + 1;
    }
}

/*
 * Parse "unix:/path", "unix://[USER]:PASS@/path", "tcp://[CREDS@]HOST:PORT",
 * "redis://[CREDS@]HOST:PORT" or "cluster://[CREDS@]HOST:PORT[,HOST:PORT...]" into @s.
 */
static base_err parse_url(sto_store *s, const char *url)
{
    const char *rest = NULL;
    base_err e = BASE_EINVAL;

    if (url == NULL) {
        goto fail;
    }
    if (strncasecmp(url, "unix://", 7) == 0) {
        const char *path = take_creds(s, url + 7);
        size_t n = path != NULL ? strlen(path) : 0;
        if (path == NULL || path == url + 7 || path[0] != '/' || n > PATH_MAX_UNIX) {
            goto fail; /* unix:// is only for credentials: plain paths are unix:/path */
        }
        memcpy(s->path, path, n + 1);
        s->is_unix = 1;
        e = BASE_OK;
        goto fail;
    }
    if (strncasecmp(url, "unix:", 5) == 0) {
        size_t n = strlen(url + 5);
        if (n == 0 || n > PATH_MAX_UNIX) {
            goto fail;
        }
        memcpy(s->path, url + 5, n + 1);
        s->is_unix = 1;
        e = BASE_OK;
        goto fail;
    }
    if (strncasecmp(url, "cluster://", 10) == 0) {
        rest = take_creds(s, url + 10);
        if (rest != NULL && parse_seeds(s, rest)) {
            s->cluster = true;
            s->stale = true;
            e = BASE_OK;
        }
        goto fail;
    }
    if (strncasecmp(url, "tcp://", 6) == 0) {
        rest = url + 6;
    } else if (strncasecmp(url, "redis://", 8) == 0) {
        rest = url + 8;
    } else {
        goto fail;
    }
    rest = take_creds(s, rest);
    if (rest == NULL || !parse_hostport(rest, strlen(rest), s->host, &s->port)) {
        goto fail;
    }
    s->is_unix = 0;
    e = BASE_OK;
fail:
    return e;
}

/*
 * AUTH on the new connection @c with the store's credentials: BASE_ESTORE if Redis
 * refuses, BASE_EIO if the connection is lost.
 */
static base_err authenticate(const sto_store *s, redisContext *c, char *errbuf, size_t errlen)
{
    bool user = s->user[0] != '\0';
    const char *argv[] = {"AUTH", user ? s->user : s->pass, s->pass};
    size_t lens[] = {4, strlen(argv[1]), strlen(s->pass)};
    pipe_guard g;
    sto_guard_begin(&g);
    redisReply *r = redisCommandArgv(c, user ? 3 : 2, argv, lens);
    sto_guard_end(&g);
    if (r == NULL) {
        put_err(errbuf, errlen, "lost redis during AUTH", "");
        return BASE_EIO;
    }
    base_err e = BASE_OK;
    if (r->type == REDIS_REPLY_ERROR) {
        e = BASE_ESTORE;
        put_err(errbuf, errlen, "redis refused the credentials", r->str != NULL ? r->str : "");
    }
    freeReplyObject(r);
    return e;
}

base_err sto_open_ctx(const sto_store *s, const char *host, int port, redisContext **out,
                      char *errbuf, size_t errlen)
{
    struct timeval tv = {s->timeout_ms / 1000, (s->timeout_ms % 1000) * 1000};
    redisContext *c;
    base_err e = BASE_OK;

    if (host == NULL) {
        c = redisConnectUnixWithTimeout(s->path, tv);
    } else {
        c = redisConnectWithTimeout(host, port, tv);
    }
    if (c == NULL) {
        e = BASE_ENOMEM;
        put_err(errbuf, errlen, "out of memory", "");
        goto fail;
    }
    if (c->err != 0) {
        e = BASE_EIO;
        put_err(errbuf, errlen, "cannot connect to redis", c->errstr);
        goto fail;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        e = BASE_EIO;
        put_err(errbuf, errlen, "cannot set redis timeout", c->errstr);
        goto fail;
    }
    if (s->pass[0] != '\0') {
        e = authenticate(s, c, errbuf, errlen);
        if (e != BASE_OK) {
            goto fail;
        }
    }
    *out = c;
    c = NULL;
fail:
    if (c != NULL) {
        redisFree(c);
    }
    return e;
}

static base_err connect_ctx(sto_store *s, char *errbuf, size_t errlen)
{
    if (s->cluster) {
        return sto_cluster_refresh(s, errbuf, errlen);
    }
    return sto_open_ctx(s, s->is_unix ? NULL : s->host, s->port, &s->c, errbuf, errlen);
}

/* After any hiredis I/O or protocol error the context is unusable. */
void sto_mark_broken(sto_store *s)
{
    if (s->cluster) {
        sto_cluster_drop(s, s->cur);
        return;
    }
    if (s->c != NULL) {
        redisFree(s->c);
        s->c = NULL;
    }
}

bool sto_url_valid(const char *url)
{
    sto_store *s = base_alloc_zero(1, sizeof(*s));
    bool ok = s != NULL && parse_url(s, url) == BASE_OK;
    if (s != NULL) {
        volatile unsigned char *b = (volatile unsigned char *)s; /* it may hold a password */
        for (size_t i = 0; i < sizeof(*s); i++) {
            b[i] = 0;
        }
        base_free(s);
    }
    return ok;
}

base_err sto_store_open(const char *url, int timeout_ms, sto_store **out, char *errbuf,
                        size_t errlen)
{
    sto_store *s = NULL;
    base_err e = BASE_EINVAL;

    if (timeout_ms <= 0) {
        put_err(errbuf, errlen, "timeout must be positive", "");
        goto fail;
    }
    s = base_alloc_zero(1, sizeof(*s));
    if (s == NULL) {
        e = BASE_ENOMEM;
        put_err(errbuf, errlen, "out of memory", "");
        goto fail;
    }
    s->timeout_ms = timeout_ms;
    s->cur = -1;
    e = parse_url(s, url);
    if (e != BASE_OK) {
        char shown[512];
        sto_url_redact(url != NULL ? url : "(null)", shown, sizeof(shown));
        put_err(errbuf, errlen,
                "bad redis url (want tcp://[USER:PASS@]HOST:PORT, redis://[USER:PASS@]HOST:PORT, "
                "unix:/path, unix://[USER]:PASS@/path or "
                "cluster://[USER:PASS@]HOST:PORT[,HOST:PORT...])",
                shown);
        goto fail;
    }
    e = connect_ctx(s, errbuf, errlen);
    if (e != BASE_OK) {
        goto fail;
    }
    *out = s;
    s = NULL;
fail:
    sto_store_close(s);
    return e;
}

void sto_url_redact(const char *url, char *out, size_t size)
{
    if (size == 0) {
        return;
    }
    const char *last = strrchr(url, '@');
    if (last == NULL) {
        (void)snprintf(out, size, "%s", url); /* no credentials */
        return;
    }
    /*
     * The well-formed case keeps the user name: scheme://[user]:password@host... Anything
     * else with an '@' (a malformed URL, a '/' or '@' inside the password, no "://") may
     * hide a password anywhere before its last '@': all of that is replaced.
     */
    const char *sep = strstr(url, "://");
    const char *rest = sep != NULL ? sep + 3 : NULL;
    const char *at = rest != NULL ? memchr(rest, '@', strcspn(rest, "/")) : NULL;
    const char *colon = at == last ? memchr(rest, ':', (size_t)(at - rest)) : NULL;
    size_t keep = colon != NULL ? (size_t)(colon + 1 - url)
                  : sep != NULL ? (size_t)(rest - url)
                                : 0;
    (void)snprintf(out, size, "%.*s***%s", (int)keep, url, last); /* may cut */
}

void sto_store_close(sto_store *s)
{
    if (s == NULL) {
        return;
    }
    sto_mark_broken(s);
    if (s->cluster) {
        sto_cluster_drop(s, STO_CLUSTER_NODES_MAX);
        base_free(s->map);
    }
    base_free(s);
}

bool sto_store_is_cluster(const sto_store *s)
{
    return s->cluster;
}

base_err sto_store_reconnect(sto_store *s)
{
    if (s->cluster) {
        sto_cluster_drop(s, STO_CLUSTER_NODES_MAX);
        s->stale = true;
    }
    sto_mark_broken(s);
    return connect_ctx(s, NULL, 0);
}

base_err sto_run_here(sto_store *s, int argc, const char **argv, const size_t *lens,
                      redisReply **out)
{
    pipe_guard g;
    redisReply *r = NULL;
    base_err e = BASE_EIO;

    if (s->c == NULL) {
        goto fail;
    }
    sto_guard_begin(&g);
    r = redisCommandArgv(s->c, argc, argv, lens);
    sto_guard_end(&g);
    if (r == NULL) {
        sto_mark_broken(s);
        goto fail;
    }
    *out = r;
    e = BASE_OK;
fail:
    return e;
}

/* Run one command. On BASE_OK *out is its reply, an error reply included; the caller frees it. */
base_err sto_run_any(sto_store *s, int argc, const char **argv, const size_t *lens,
                     redisReply **out)
{
    return s->cluster ? sto_cluster_run(s, argc, argv, lens, out)
                      : sto_run_here(s, argc, argv, lens, out);
}

/*
 * Run one command. On BASE_OK *out is a non-error reply the caller frees;
 * an error reply is freed here and reported as BASE_ESTORE.
 */
base_err sto_run(sto_store *s, int argc, const char **argv, const size_t *lens, redisReply **out)
{
    redisReply *r = NULL;
    s->refusal[0] = '\0'; /* a BASE_ESTORE of this command names its own words, or none */
    base_err e = sto_run_any(s, argc, argv, lens, &r);

    if (e != BASE_OK) {
        goto fail;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        base_strlcpy(s->refusal, r->str != NULL ? r->str : "", sizeof(s->refusal));
        e = BASE_ESTORE;
        goto fail;
    }
    *out = r;
    r = NULL;
fail:
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

base_err sto_run_ok(sto_store *s, int argc, const char **argv, const size_t *lens)
{
    redisReply *r = NULL;
    base_err e = sto_run(s, argc, argv, lens, &r);
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

base_err sto_run_count(sto_store *s, int argc, const char **argv, const size_t *lens, uint64_t *out)
{
    redisReply *r = NULL;
    base_err e = sto_run(s, argc, argv, lens, &r);
    if (e == BASE_OK) {
        if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
            *out = (uint64_t)r->integer;
        } else {
            e = BASE_EPROTO;
        }
        freeReplyObject(r);
    }
    return e;
}

bool sto_is_status(const redisReply *r, const char *want)
{
    return r->type == REDIS_REPLY_STATUS && r->len == strlen(want) && strcmp(r->str, want) == 0;
}

base_err sto_store_wait(sto_store *s, uint32_t n, uint32_t timeout_ms, uint32_t *out_acked)
{
    if (s->cluster) {
        return sto_cluster_wait(s, n, timeout_ms, out_acked);
    }
    char num[16], ms[16];
    snprintf(num, sizeof(num), "%u", n);
    snprintf(ms, sizeof(ms), "%u", timeout_ms);
    const char *argv[] = {"WAIT", num, ms};
    size_t lens[] = {4, strlen(num), strlen(ms)};
    uint64_t acked = 0;
    base_err e = sto_run_count(s, 3, argv, lens, &acked);
    if (e == BASE_OK) {
        *out_acked = acked > UINT32_MAX ? UINT32_MAX : (uint32_t)acked;
    }
    return e;
}

base_err sto_store_wait_policies(sto_store *s, const char *const *policy, size_t n_policy,
                                 uint32_t n, uint32_t timeout_ms, uint32_t *out_acked)
{
    if (s->cluster) {
        return sto_cluster_wait_policies(s, policy, n_policy, n, timeout_ms, out_acked);
    }
    uint32_t acked = 0;
    base_err e = sto_store_wait(s, n, timeout_ms, &acked);
    for (size_t i = 0; i < n_policy && e == BASE_OK; i++) {
        out_acked[i] = acked;
    }
    return e;
}

base_err sto_store_wait_current(sto_store *s, const char *policy, uint32_t n, uint32_t timeout_ms,
                                uint32_t *out_acked)
{
    char key[STO_KEY_MAX];
    base_err e = sto_make_key(key, sizeof(key), policy, "ack-mark");
    if (e == BASE_OK) {
        /* One write through this connection: WAIT then counts from the master's offset now. */
        const char *argv[] = {"SET", key, "1", "PX", "60000"};
        size_t lens[] = {3, strlen(key), 1, 2, 5};
        e = sto_run_ok(s, 5, argv, lens);
    }
    if (e == BASE_OK) {
        const char *pol[1] = {policy};
        e = sto_store_wait_policies(s, pol, 1, n, timeout_ms, out_acked);
    }
    return e;
}

base_err sto_store_ping(sto_store *s)
{
    if (s->cluster) {
        return sto_cluster_ping(s);
    }
    const char *argv[] = {"PING"};
    size_t lens[] = {4};
    redisReply *r = NULL;
    base_err e = sto_run(s, 1, argv, lens, &r);

    if (e == BASE_OK && !sto_is_status(r, "PONG")) {
        e = BASE_EPROTO;
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

bool sto_parse_version(const char *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    bool ok = n > 0 && n <= 20 && (n == 1 || p[0] != '0'); /* decimal, no leading zero */
    for (size_t i = 0; ok && i < n; i++) {
        unsigned dgt = (unsigned)(unsigned char)p[i] - '0';
        ok = dgt <= 9 && v <= (UINT64_MAX - dgt) / 10u;
        v = v * 10u + dgt;
    }
    if (ok) {
        *out = v;
    }
    return ok;
}

/* ---- keys --------------------------------------------------------------- */

/*
 * "rlfeed:{<policy>}:<suffix>". The policy must be non-empty, fit its field
 * and contain no brace: a brace would move the Cluster hash tag.
 */
base_err sto_make_key(char *dst, size_t size, const char *policy, const char *suffix)
{
    base_err e = BASE_EINVAL;

    if (policy == NULL || policy[0] == '\0' || strlen(policy) > BASE_NAME_MAX ||
        strpbrk(policy, "{}") != NULL || suffix == NULL) {
        goto fail;
    }
    int n = snprintf(dst, size, "rlfeed:{%s}:%s", policy, suffix);
    if (n > 0 && (size_t)n < size) {
        e = BASE_OK;
    }
fail:
    return e;
}

base_err sto_stream_key(char *dst, size_t size, sto_kind kind, const char *policy)
{
    const char *suffix = NULL;
    switch (kind) {
    case STO_DECISIONS:
        suffix = "decisions";
        break;
    case STO_OUTCOMES:
        suffix = "outcomes";
        break;
    case STO_JOINED:
        suffix = "joined";
        break;
    }
    return sto_make_key(dst, size, policy, suffix);
}
