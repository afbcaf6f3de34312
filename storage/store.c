#include "storage/store.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "storage/codec.h"
#include "storage/streamid.h"

/*
 * A pipelined append is sent in chunks of at most PIPE_MAX_ITEMS commands
 * or about PIPE_MAX_BYTES of records. Bounding the outstanding replies keeps
 * them inside the socket buffers: hiredis writes the whole pipeline before it
 * reads, and a blocking writer facing a server blocked on its own replies
 * would deadlock.
 */
#define PIPE_MAX_ITEMS 1024u
#define PIPE_MAX_BYTES (8u << 20)
#define HOST_MAX 255u
#define PATH_MAX_UNIX 107u /* sun_path holds 108 bytes with the NUL */

struct sto_store {
    redisContext *c; /* NULL while broken: every call then fails with BASE_EIO */
    int is_unix;
    char host[HOST_MAX + 1];
    int port;
    char path[PATH_MAX_UNIX + 1];
    int timeout_ms;
};

/* ---- SIGPIPE ------------------------------------------------------------ */

/*
 * hiredis 0.14 writes with write(2), so a write to a socket the server has
 * closed raises SIGPIPE, whose default action kills the process. A library
 * must not change the process's disposition, so each exchange blocks SIGPIPE
 * in the calling thread and consumes one it raised itself (the libpq
 * pq_block_sigpipe() pattern). The write then fails with EPIPE, which
 * hiredis reports as an I/O error.
 */
typedef struct pipe_guard {
    sigset_t old;
    int was_pending;
} pipe_guard;

static void guard_begin(pipe_guard *g)
{
    sigset_t pipe_set, pending;

    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    (void)pthread_sigmask(SIG_BLOCK, &pipe_set, &g->old); /* fails only for a bad 'how' */
    sigemptyset(&pending);
    (void)sigpending(&pending); /* cannot fail with a valid set */
    g->was_pending = sigismember(&pending, SIGPIPE) == 1;
}

static void guard_end(pipe_guard *g)
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

/* Parse "unix:/path", "tcp://HOST:PORT" or "redis://HOST:PORT" into @s. */
static base_err parse_url(sto_store *s, const char *url)
{
    const char *rest = NULL;
    base_err e = BASE_EINVAL;

    if (url == NULL) {
        goto fail;
    }
    if (strncmp(url, "unix:", 5) == 0) {
        size_t n = strlen(url + 5);
        if (n == 0 || n > PATH_MAX_UNIX) {
            goto fail;
        }
        memcpy(s->path, url + 5, n + 1);
        s->is_unix = 1;
        e = BASE_OK;
        goto fail;
    }
    if (strncmp(url, "tcp://", 6) == 0) {
        rest = url + 6;
    } else if (strncmp(url, "redis://", 8) == 0) {
        rest = url + 8;
    } else {
        goto fail;
    }
    const char *colon = strrchr(rest, ':');
    if (colon == NULL || strpbrk(rest, "@/") != NULL) {
        goto fail; /* credentials and database numbers are not supported */
    }
    const char *h = rest;
    size_t hn = (size_t)(colon - rest);
    if (hn >= 2 && h[0] == '[' && h[hn - 1] == ']') {
        h++;
        hn -= 2;
    }
    if (hn == 0 || hn > HOST_MAX) {
        goto fail;
    }
    char *end = NULL;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || port < 1 || port > 65535) {
        goto fail;
    }
    memcpy(s->host, h, hn);
    s->host[hn] = '\0';
    s->port = (int)port;
    s->is_unix = 0;
    e = BASE_OK;
fail:
    return e;
}

static base_err connect_ctx(sto_store *s, char *errbuf, size_t errlen)
{
    struct timeval tv = {s->timeout_ms / 1000, (s->timeout_ms % 1000) * 1000};
    redisContext *c;
    base_err e = BASE_OK;

    if (s->is_unix) {
        c = redisConnectUnixWithTimeout(s->path, tv);
    } else {
        c = redisConnectWithTimeout(s->host, s->port, tv);
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
    s->c = c;
    c = NULL;
fail:
    if (c != NULL) {
        redisFree(c);
    }
    return e;
}

/* After any hiredis I/O or protocol error the context is unusable. */
static void mark_broken(sto_store *s)
{
    if (s->c != NULL) {
        redisFree(s->c);
        s->c = NULL;
    }
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
    e = parse_url(s, url);
    if (e != BASE_OK) {
        put_err(errbuf, errlen, "bad redis url (want tcp://HOST:PORT, redis://HOST:PORT or "
                                "unix:/path)", url != NULL ? url : "(null)");
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

void sto_store_close(sto_store *s)
{
    if (s == NULL) {
        return;
    }
    mark_broken(s);
    base_free(s);
}

base_err sto_store_reconnect(sto_store *s)
{
    mark_broken(s);
    return connect_ctx(s, NULL, 0);
}

/* Run one command. On BASE_OK *out is its reply, an error reply included; the caller frees it. */
static base_err run_any(sto_store *s, int argc, const char **argv, const size_t *lens,
                        redisReply **out)
{
    pipe_guard g;
    redisReply *r = NULL;
    base_err e = BASE_EIO;

    if (s->c == NULL) {
        goto fail;
    }
    guard_begin(&g);
    r = redisCommandArgv(s->c, argc, argv, lens);
    guard_end(&g);
    if (r == NULL) {
        mark_broken(s);
        goto fail;
    }
    *out = r;
    e = BASE_OK;
fail:
    return e;
}

/*
 * Run one command. On BASE_OK *out is a non-error reply the caller frees;
 * an error reply is freed here and reported as BASE_ESTORE.
 */
static base_err run(sto_store *s, int argc, const char **argv, const size_t *lens,
                    redisReply **out)
{
    redisReply *r = NULL;
    base_err e = run_any(s, argc, argv, lens, &r);

    if (e != BASE_OK) {
        goto fail;
    }
    if (r->type == REDIS_REPLY_ERROR) {
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

static bool is_status(const redisReply *r, const char *want)
{
    return r->type == REDIS_REPLY_STATUS && r->len == strlen(want) && strcmp(r->str, want) == 0;
}

base_err sto_store_ping(sto_store *s)
{
    const char *argv[] = {"PING"};
    size_t lens[] = {4};
    redisReply *r = NULL;
    base_err e = run(s, 1, argv, lens, &r);

    if (e == BASE_OK && !is_status(r, "PONG")) {
        e = BASE_EPROTO;
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

/* ---- keys --------------------------------------------------------------- */

/*
 * "rlfeed:{<policy>}:<suffix>". The policy must be non-empty, fit its field
 * and contain no brace: a brace would move the Cluster hash tag.
 */
static base_err make_key(char *dst, size_t size, const char *policy, const char *suffix)
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

static base_err stream_key(char *dst, size_t size, sto_kind kind, const char *policy)
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
    return make_key(dst, size, policy, suffix);
}

/* ---- streams ------------------------------------------------------------ */

static base_err encode_rec(sto_kind kind, const void *rec, base_buf *out)
{
    base_err e = BASE_EINVAL;
    if (rec == NULL) {
        goto fail;
    }
    switch (kind) {
    case STO_DECISIONS:
        e = sto_codec_encode_decision(rec, out);
        break;
    case STO_OUTCOMES:
        e = sto_codec_encode_outcome(rec, out);
        break;
    case STO_JOINED:
        e = sto_codec_encode_joined(rec, out);
        break;
    }
fail:
    return e;
}

static base_err decode_rec(sto_kind kind, const uint8_t *buf, size_t len, void **out)
{
    base_err e = BASE_EINVAL;
    switch (kind) {
    case STO_DECISIONS: {
        base_decision *d = NULL;
        e = sto_codec_decode_decision(buf, len, &d);
        *out = d;
        break;
    }
    case STO_OUTCOMES: {
        base_outcome *o = NULL;
        e = sto_codec_decode_outcome(buf, len, &o);
        *out = o;
        break;
    }
    case STO_JOINED: {
        base_joined *j = NULL;
        e = sto_codec_decode_joined(buf, len, &j);
        *out = j;
        break;
    }
    }
    return e;
}

static void free_rec(sto_kind kind, void *rec)
{
    switch (kind) {
    case STO_DECISIONS:
        base_decision_free(rec);
        break;
    case STO_OUTCOMES:
        base_free(rec);
        break;
    case STO_JOINED:
        base_joined_free(rec);
        break;
    }
}

/*
 * Queue XADD for the items of the next chunk that encode; sent[i] says which
 * were queued. An item that fails here gets its own error; a queued one keeps
 * BASE_EIO until its reply arrives.
 */
static base_err queue_chunk(sto_store *s, sto_append *items, size_t n, bool *sent,
                            size_t *out_used)
{
    char key[STO_KEY_MAX];
    base_buf b;
    size_t used = 0, bytes = 0;
    base_err e = BASE_OK;

    base_buf_init(&b, STO_MAX_VALUE);
    while (used < n && used < PIPE_MAX_ITEMS && bytes < PIPE_MAX_BYTES) {
        sto_append *it = &items[used];
        base_err ie = stream_key(key, sizeof(key), it->kind, it->policy);
        bool explicit_id = it->id != NULL && it->id[0] != '\0';
        const char *id = explicit_id ? it->id : "*";
        sto_sid sid;
        sent[used] = false;
        base_buf_reset(&b);
        if (ie == BASE_OK && explicit_id &&
            (strlen(it->id) > BASE_STREAM_ID_MAX || !sto_sid_parse(it->id, &sid))) {
            ie = BASE_EINVAL;
        }
        if (ie == BASE_OK) {
            ie = encode_rec(it->kind, it->rec, &b);
        }
        if (ie != BASE_OK) {
            it->out_err = ie;
        } else {
            const char *argv[] = {"XADD", key, id, "r", (const char *)b.data};
            size_t lens[] = {4, strlen(key), strlen(id), 1, b.len};
            if (redisAppendCommandArgv(s->c, 5, argv, lens) != REDIS_OK) {
                e = BASE_EIO; /* hiredis OOM while formatting: the context is unusable */
                goto fail;
            }
            sent[used] = true;
            bytes += b.len;
        }
        used++;
    }
    *out_used = used;
fail:
    base_buf_fini(&b);
    return e;
}

/*
 * Redis 7 (t_stream.c) refuses an explicit XADD id that is not above the
 * stream's last id with "ERR The ID specified in XADD is equal or smaller
 * than the target stream top item".
 */
static bool is_behind_error(const redisReply *r)
{
    static const char needle[] = "equal or smaller than the target stream top item";
    return r->str != NULL && strstr(r->str, needle) != NULL;
}

base_err sto_store_append(sto_store *s, sto_append *items, size_t n)
{
    bool sent[PIPE_MAX_ITEMS];
    size_t done = 0;
    base_err e = BASE_OK;
    pipe_guard g;

    /* Until answered, an item's fate is unknown: that is what BASE_EIO means here. */
    for (size_t i = 0; i < n; i++) {
        items[i].out_err = BASE_EIO;
        items[i].out_id[0] = '\0';
        items[i].out_behind = false;
    }
    guard_begin(&g);
    while (done < n) {
        size_t used = 0;
        if (s->c == NULL) {
            e = BASE_EIO;
            goto fail;
        }
        e = queue_chunk(s, items + done, n - done, sent, &used);
        if (e != BASE_OK) {
            goto fail;
        }
        for (size_t i = 0; i < used; i++) {
            sto_append *it = &items[done + i];
            void *rv = NULL;
            if (!sent[i]) {
                continue;
            }
            if (redisGetReply(s->c, &rv) != REDIS_OK) {
                e = BASE_EIO;
                goto fail;
            }
            redisReply *r = rv;
            if (r->type == REDIS_REPLY_STRING && r->len > 0 && r->len <= BASE_STREAM_ID_MAX) {
                memcpy(it->out_id, r->str, r->len);
                it->out_id[r->len] = '\0';
                it->out_err = BASE_OK;
            } else {
                it->out_err = r->type == REDIS_REPLY_ERROR ? BASE_ESTORE : BASE_EPROTO;
                it->out_behind = r->type == REDIS_REPLY_ERROR && is_behind_error(r);
            }
            freeReplyObject(r);
        }
        done += used;
    }
fail:
    if (e != BASE_OK) {
        mark_broken(s);
    }
    guard_end(&g);
    return e;
}

base_err sto_store_last_id(sto_store *s, sto_kind kind, const char *policy, char *out_id)
{
    char key[STO_KEY_MAX];
    redisReply *r = NULL;
    const redisReply *val = NULL;
    sto_sid sid;
    base_err e = stream_key(key, sizeof(key), kind, policy);

    if (e != BASE_OK) {
        goto fail;
    }
    const char *argv[] = {"XINFO", "STREAM", key};
    size_t lens[] = {5, 6, strlen(key)};
    e = run_any(s, 3, argv, lens, &r);
    if (e != BASE_OK) {
        goto fail;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        /* "ERR no such key": a stream that was never written accepts any id above 0-0. */
        e = r->str != NULL && strstr(r->str, "no such key") != NULL ? BASE_OK : BASE_ESTORE;
        if (e == BASE_OK) {
            memcpy(out_id, "0-0", 4);
        }
        goto fail;
    }
    /* RESP2: a flat array of field names and values. */
    e = BASE_EPROTO;
    if (r->type != REDIS_REPLY_ARRAY) {
        goto fail;
    }
    for (size_t i = 0; val == NULL && i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i];
        if (f->type == REDIS_REPLY_STRING && f->len == 17 &&
            memcmp(f->str, "last-generated-id", 17) == 0) {
            val = r->element[i + 1];
        }
    }
    if (val == NULL || val->type != REDIS_REPLY_STRING || val->len == 0 ||
        val->len > BASE_STREAM_ID_MAX || strlen(val->str) != val->len ||
        !sto_sid_parse(val->str, &sid)) {
        goto fail;
    }
    memcpy(out_id, val->str, val->len + 1);
    e = BASE_OK;
fail:
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

base_err sto_store_match(sto_store *s, sto_kind kind, const char *policy, const char *id,
                         const void *rec, sto_match *out)
{
    char key[STO_KEY_MAX];
    redisReply *r = NULL;
    sto_sid sid;
    base_buf b;
    base_err e = stream_key(key, sizeof(key), kind, policy);

    base_buf_init(&b, STO_MAX_VALUE);
    if (e == BASE_OK && (id == NULL || strlen(id) > BASE_STREAM_ID_MAX ||
                         !sto_sid_parse(id, &sid))) {
        e = BASE_EINVAL;
    }
    if (e == BASE_OK) {
        e = encode_rec(kind, rec, &b);
    }
    if (e != BASE_OK) {
        goto fail;
    }
    const char *argv[] = {"XRANGE", key, id, id, "COUNT", "1"};
    size_t lens[] = {6, strlen(key), strlen(id), strlen(id), 5, 1};
    e = run(s, 6, argv, lens, &r);
    if (e != BASE_OK) {
        goto fail;
    }
    e = BASE_EPROTO;
    if (r->type != REDIS_REPLY_ARRAY || r->elements > 1) {
        goto fail;
    }
    if (r->elements == 0) {
        *out = STO_ABSENT;
        e = BASE_OK;
        goto fail;
    }
    const redisReply *el = r->element[0], *val = NULL;
    if (el->type != REDIS_REPLY_ARRAY || el->elements != 2 ||
        el->element[1]->type != REDIS_REPLY_ARRAY) {
        goto fail;
    }
    const redisReply *fields = el->element[1];
    for (size_t i = 0; val == NULL && i + 1 < fields->elements; i += 2) {
        const redisReply *f = fields->element[i];
        if (f->type == REDIS_REPLY_STRING && f->len == 1 && f->str[0] == 'r') {
            val = fields->element[i + 1];
        }
    }
    bool same = val != NULL && val->type == REDIS_REPLY_STRING && val->len == b.len &&
                memcmp(val->str, b.data, b.len) == 0;
    *out = same ? STO_SAME : STO_DIFFERENT;
    e = BASE_OK;
fail:
    if (r != NULL) {
        freeReplyObject(r);
    }
    base_buf_fini(&b);
    return e;
}

void sto_entries_free(sto_kind kind, sto_entry *e, size_t n)
{
    if (e == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        free_rec(kind, e[i].rec);
    }
    base_free(e);
}

/* Decode one XRANGE element [id, [field, value, ...]] into @out. */
static base_err entry_from(sto_kind kind, const redisReply *el, sto_entry *out)
{
    const redisReply *fields, *val = NULL;
    base_err e = BASE_EPROTO;

    if (el->type != REDIS_REPLY_ARRAY || el->elements != 2 ||
        el->element[0]->type != REDIS_REPLY_STRING || el->element[0]->len == 0 ||
        el->element[0]->len > BASE_STREAM_ID_MAX || el->element[1]->type != REDIS_REPLY_ARRAY) {
        goto fail;
    }
    fields = el->element[1];
    for (size_t i = 0; val == NULL && i + 1 < fields->elements; i += 2) {
        const redisReply *f = fields->element[i];
        if (f->type == REDIS_REPLY_STRING && f->len == 1 && f->str[0] == 'r') {
            val = fields->element[i + 1];
        }
    }
    if (val == NULL || val->type != REDIS_REPLY_STRING) {
        goto fail;
    }
    e = decode_rec(kind, (const uint8_t *)val->str, val->len, &out->rec);
    if (e == BASE_OK) {
        memcpy(out->id, el->element[0]->str, el->element[0]->len);
        out->id[el->element[0]->len] = '\0';
    }
fail:
    return e;
}

base_err sto_store_read(sto_store *s, sto_kind kind, const char *policy, const char *after_id,
                        size_t max, sto_entry **out, size_t *out_n)
{
    char key[STO_KEY_MAX], start[BASE_STREAM_ID_MAX + 2], count[24];
    redisReply *r = NULL;
    sto_entry *ents = NULL;
    size_t n = 0;
    base_err e = stream_key(key, sizeof(key), kind, policy);

    if (e != BASE_OK) {
        goto fail;
    }
    if (after_id == NULL || strlen(after_id) > BASE_STREAM_ID_MAX) {
        e = BASE_EINVAL;
        goto fail;
    }
    if (max == 0) {
        goto done;
    }
    if (after_id[0] == '\0' || strcmp(after_id, "0") == 0) {
        (void)snprintf(start, sizeof(start), "-"); /* fits */
    } else {
        (void)snprintf(start, sizeof(start), "(%s", after_id); /* length checked above */
    }
    (void)snprintf(count, sizeof(count), "%zu", max); /* a size_t fits in 24 bytes */
    const char *argv[] = {"XRANGE", key, start, "+", "COUNT", count};
    size_t lens[] = {6, strlen(key), strlen(start), 1, 5, strlen(count)};
    e = run(s, 6, argv, lens, &r);
    if (e != BASE_OK) {
        goto fail;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements > max) {
        e = BASE_EPROTO;
        goto fail;
    }
    if (r->elements > 0) {
        ents = base_alloc_zero(r->elements, sizeof(*ents));
        if (ents == NULL) {
            e = BASE_ENOMEM;
            goto fail;
        }
    }
    for (; n < r->elements; n++) {
        e = entry_from(kind, r->element[n], &ents[n]);
        if (e != BASE_OK) {
            goto fail;
        }
    }
done:
    *out = ents;
    *out_n = n;
    ents = NULL;
    n = 0;
fail:
    sto_entries_free(kind, ents, n);
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

base_err sto_store_len(sto_store *s, sto_kind kind, const char *policy, uint64_t *out_len)
{
    char key[STO_KEY_MAX];
    redisReply *r = NULL;
    base_err e = stream_key(key, sizeof(key), kind, policy);

    if (e != BASE_OK) {
        goto fail;
    }
    const char *argv[] = {"XLEN", key};
    size_t lens[] = {4, strlen(key)};
    e = run(s, 2, argv, lens, &r);
    if (e != BASE_OK) {
        goto fail;
    }
    if (r->type != REDIS_REPLY_INTEGER || r->integer < 0) {
        e = BASE_EPROTO;
        goto fail;
    }
    *out_len = (uint64_t)r->integer;
fail:
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

/* ---- models ------------------------------------------------------------- */

/* Read the three replies queued after MULTI; BASE_OK only if EXEC applied both. */
static base_err exec_replies(sto_store *s)
{
    base_err e = BASE_OK;

    for (int i = 0; i < 4; i++) {
        void *rv = NULL;
        if (redisGetReply(s->c, &rv) != REDIS_OK) {
            e = BASE_EIO;
            break;
        }
        redisReply *r = rv;
        bool ok;
        if (i < 3) {
            ok = is_status(r, "QUEUED");
        } else {
            /* EXEC: [SET's +OK, HSET's :n, ZADD's :n]; nil if aborted; an error after a bad queue. */
            ok = r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                 is_status(r->element[0], "OK") && r->element[1]->type == REDIS_REPLY_INTEGER &&
                 r->element[2]->type == REDIS_REPLY_INTEGER;
        }
        if (!ok && e == BASE_OK) {
            e = r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_NIL ||
                        r->type == REDIS_REPLY_ARRAY
                    ? BASE_ESTORE
                    : BASE_EPROTO;
        }
        freeReplyObject(r);
    }
    return e;
}

base_err sto_store_model_put(sto_store *s, const base_model *m)
{
    char key[STO_KEY_MAX], reg[STO_KEY_MAX], idx[STO_KEY_MAX], suffix[40], ver[24];
    redisReply *r = NULL;
    base_buf b;
    pipe_guard g;
    base_err e;

    base_buf_init(&b, STO_MAX_VALUE);
    (void)snprintf(suffix, sizeof(suffix), "model:%llu", (unsigned long long)m->version); /* fits */
    (void)snprintf(ver, sizeof(ver), "%llu", (unsigned long long)m->version);            /* fits */
    e = make_key(key, sizeof(key), m->policy, suffix);
    if (e == BASE_OK) {
        e = make_key(reg, sizeof(reg), m->policy, "registry");
    }
    if (e == BASE_OK) {
        e = make_key(idx, sizeof(idx), m->policy, "models");
    }
    if (e == BASE_OK) {
        e = sto_codec_encode_model(m, &b);
    }
    if (e != BASE_OK) {
        goto fail;
    }
    /*
     * MULTI gets its own round trip: if it failed, the commands after it would
     * run outside any transaction. Redis does not roll back, so each queued
     * reply and both EXEC results are checked.
     */
    const char *multi[] = {"MULTI"};
    size_t multi_len[] = {5};
    e = run(s, 1, multi, multi_len, &r);
    if (e != BASE_OK) {
        goto fail;
    }
    if (!is_status(r, "OK")) {
        e = BASE_EPROTO;
        mark_broken(s); /* the connection's transaction state is unknown */
        goto fail;
    }
    const char *set[] = {"SET", key, (const char *)b.data};
    size_t set_len[] = {3, strlen(key), b.len};
    const char *hset[] = {"HSET", reg, "online", ver};
    size_t hset_len[] = {4, strlen(reg), 6, strlen(ver)};
    const char *zadd[] = {"ZADD", idx, ver, ver};
    size_t zadd_len[] = {4, strlen(idx), strlen(ver), strlen(ver)};
    const char *exec[] = {"EXEC"};
    size_t exec_len[] = {4};
    guard_begin(&g);
    if (redisAppendCommandArgv(s->c, 3, set, set_len) != REDIS_OK ||
        redisAppendCommandArgv(s->c, 4, hset, hset_len) != REDIS_OK ||
        redisAppendCommandArgv(s->c, 4, zadd, zadd_len) != REDIS_OK ||
        redisAppendCommandArgv(s->c, 1, exec, exec_len) != REDIS_OK) {
        e = BASE_EIO;
    } else {
        e = exec_replies(s);
    }
    guard_end(&g);
    if (e == BASE_EIO) {
        mark_broken(s);
    }
fail:
    if (r != NULL) {
        freeReplyObject(r);
    }
    base_buf_fini(&b);
    return e;
}

/* A registry value: decimal digits only, no sign, no overflow. */
static bool parse_version(const redisReply *r, uint64_t *out)
{
    uint64_t v = 0;
    bool ok = r->type == REDIS_REPLY_STRING && r->len > 0 && r->len <= 20;
    for (size_t i = 0; ok && i < r->len; i++) {
        unsigned dgt = (unsigned)(unsigned char)r->str[i] - '0';
        ok = dgt <= 9 && v <= (UINT64_MAX - dgt) / 10u;
        v = v * 10u + dgt;
    }
    if (ok) {
        *out = v;
    }
    return ok;
}

base_err sto_store_model_get_online(sto_store *s, const char *policy, base_model **out,
                                    bool *out_found)
{
    char reg[STO_KEY_MAX], key[STO_KEY_MAX], suffix[40];
    redisReply *r = NULL;
    base_model *m = NULL;
    bool found = false;
    uint64_t version;
    base_err e = make_key(reg, sizeof(reg), policy, "registry");

    if (e != BASE_OK) {
        goto fail;
    }
    const char *hget[] = {"HGET", reg, "online"};
    size_t hget_len[] = {4, strlen(reg), 6};
    e = run(s, 3, hget, hget_len, &r);
    if (e != BASE_OK) {
        goto fail;
    }
    if (r->type == REDIS_REPLY_NIL) {
        goto done;
    }
    if (!parse_version(r, &version)) {
        e = BASE_EPROTO;
        goto fail;
    }
    freeReplyObject(r);
    r = NULL;
    (void)snprintf(suffix, sizeof(suffix), "model:%llu", (unsigned long long)version); /* fits */
    e = make_key(key, sizeof(key), policy, suffix);
    if (e != BASE_OK) {
        goto fail;
    }
    const char *get[] = {"GET", key};
    size_t get_len[] = {3, strlen(key)};
    e = run(s, 2, get, get_len, &r);
    if (e != BASE_OK) {
        goto fail;
    }
    /* The registry names a snapshot that must exist: put writes both at once. */
    if (r->type != REDIS_REPLY_STRING) {
        e = BASE_EPROTO;
        goto fail;
    }
    e = sto_codec_decode_model((const uint8_t *)r->str, r->len, &m);
    if (e != BASE_OK) {
        goto fail;
    }
    if (m->version != version || strcmp(m->policy, policy) != 0) {
        e = BASE_EPROTO;
        goto fail;
    }
    found = true;
    *out = m;
    m = NULL;
done:
    *out_found = found;
fail:
    base_model_free(m);
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

/* ---- retention ----------------------------------------------------------- */

base_err sto_store_trim(sto_store *s, sto_kind kind, const char *policy, const char *minid,
                        uint64_t *out_removed)
{
    char key[STO_KEY_MAX];
    redisReply *r = NULL;
    base_err e = stream_key(key, sizeof(key), kind, policy);
    if (e != BASE_OK) {
        goto fail;
    }
    const char *argv[] = {"XTRIM", key, "MINID", minid};
    size_t lens[] = {5, strlen(key), 5, strlen(minid)};
    e = run(s, 4, argv, lens, &r);
    if (e != BASE_OK) {
        goto fail;
    }
    if (r->type != REDIS_REPLY_INTEGER || r->integer < 0) {
        e = BASE_EPROTO;
        goto fail;
    }
    *out_removed = (uint64_t)r->integer;
fail:
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

base_err sto_store_model_prune(sto_store *s, const char *policy, uint32_t keep,
                               uint64_t *out_removed)
{
    char idx[STO_KEY_MAX], pinned[STO_KEY_MAX], stop[24];
    redisReply *r = NULL;
    uint64_t removed = 0;
    base_err e = make_key(idx, sizeof(idx), policy, "models");
    if (e == BASE_OK) {
        e = make_key(pinned, sizeof(pinned), policy, "pinned");
    }
    if (e != BASE_OK) {
        goto fail;
    }
    /* Every version but the newest @keep, oldest first. */
    (void)snprintf(stop, sizeof(stop), "%lld", -(long long)keep - 1); /* fits */
    const char *range[] = {"ZRANGE", idx, "0", stop};
    size_t range_len[] = {6, strlen(idx), 1, strlen(stop)};
    e = run(s, 4, range, range_len, &r);
    if (e != BASE_OK) {
        goto fail;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        e = BASE_EPROTO;
        goto fail;
    }
    for (size_t i = 0; i < r->elements && e == BASE_OK; i++) {
        const redisReply *v = r->element[i];
        char suffix[48], key[STO_KEY_MAX];
        redisReply *q = NULL;
        if (v->type != REDIS_REPLY_STRING || v->len > 20) {
            e = BASE_EPROTO;
            break;
        }
        const char *ism[] = {"SISMEMBER", pinned, v->str};
        size_t ism_len[] = {9, strlen(pinned), v->len};
        e = run(s, 3, ism, ism_len, &q);
        bool is_pinned = e == BASE_OK && q->type == REDIS_REPLY_INTEGER && q->integer == 1;
        if (q != NULL) {
            freeReplyObject(q);
            q = NULL;
        }
        if (e != BASE_OK || is_pinned) {
            continue;
        }
        (void)snprintf(suffix, sizeof(suffix), "model:%.*s", (int)v->len, v->str); /* fits */
        e = make_key(key, sizeof(key), policy, suffix);
        const char *del[] = {"DEL", key};
        size_t del_len[] = {3, strlen(key)};
        if (e == BASE_OK) {
            e = run(s, 2, del, del_len, &q);
        }
        if (q != NULL) {
            freeReplyObject(q);
            q = NULL;
        }
        const char *zrem[] = {"ZREM", idx, v->str};
        size_t zrem_len[] = {4, strlen(idx), v->len};
        if (e == BASE_OK) {
            e = run(s, 3, zrem, zrem_len, &q);
        }
        if (q != NULL) {
            freeReplyObject(q);
        }
        removed += e == BASE_OK;
    }
    *out_removed = removed;
fail:
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

/* ---- ownership leases ----------------------------------------------------- */

/* KEYS[1] the lease; ARGV[1] the owner, ARGV[2] the TTL in ms. Returns {taken, holder, ms left}. */
static const char LEASE_TAKE[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if v == false or v == ARGV[1] then "
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
    "return {1, ARGV[1], tonumber(ARGV[2])} end "
    "return {0, v, redis.call('PTTL', KEYS[1])}";

static const char LEASE_DROP[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
    "return 0";

static bool owner_ok(const char *owner)
{
    size_t n = strlen(owner);
    return n > 0 && n <= STO_OWNER_MAX;
}

base_err sto_lease_acquire(sto_store *s, const char *policy, const char *owner, uint32_t ttl_ms,
                           bool *out_held, char *out_holder, size_t holder_size,
                           int64_t *out_left_ms)
{
    char key[STO_KEY_MAX], ttl[16];
    redisReply *r = NULL;
    base_err e = make_key(key, sizeof(key), policy, "owner");
    if (e == BASE_OK && (!owner_ok(owner) || ttl_ms == 0)) {
        e = BASE_EINVAL;
    }
    if (e != BASE_OK) {
        goto fail;
    }
    (void)snprintf(ttl, sizeof(ttl), "%u", ttl_ms); /* fits */
    const char *argv[] = {"EVAL", LEASE_TAKE, "1", key, owner, ttl};
    size_t lens[] = {4, sizeof(LEASE_TAKE) - 1, 1, strlen(key), strlen(owner), strlen(ttl)};
    e = run(s, 6, argv, lens, &r);
    if (e != BASE_OK) {
        goto fail;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[2]->type != REDIS_REPLY_INTEGER) {
        e = BASE_EPROTO;
        goto fail;
    }
    *out_held = r->element[0]->integer == 1;
    (void)snprintf(out_holder, holder_size, "%.*s", (int)r->element[1]->len,
                   r->element[1]->str); /* cut if small: a name for a log line */
    *out_left_ms = r->element[2]->integer;
fail:
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

base_err sto_lease_release(sto_store *s, const char *policy, const char *owner)
{
    char key[STO_KEY_MAX];
    redisReply *r = NULL;
    base_err e = make_key(key, sizeof(key), policy, "owner");
    if (e == BASE_OK && !owner_ok(owner)) {
        e = BASE_EINVAL;
    }
    if (e == BASE_OK) {
        const char *argv[] = {"EVAL", LEASE_DROP, "1", key, owner};
        size_t lens[] = {4, sizeof(LEASE_DROP) - 1, 1, strlen(key), strlen(owner)};
        e = run(s, 5, argv, lens, &r);
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}
