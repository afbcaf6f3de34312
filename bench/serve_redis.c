#include "bench/serve_redis.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "base/alloc.h"
#include "base/clock.h"

#define INFLIGHT_MAX 4096

struct bench_redis {
    redisContext *c;
};

base_err bench_redis_open(const char *url, int timeout_ms, bench_redis **out, char *errbuf,
                          size_t errlen)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    redisContext *c = NULL;
    if (strncmp(url, "unix:", 5) == 0) {
        c = redisConnectUnixWithTimeout(url + 5, tv);
    } else if (strncmp(url, "tcp://", 6) == 0) {
        char host[256];
        const char *colon = strrchr(url + 6, ':');
        char *end = NULL;
        long port = colon != NULL ? strtol(colon + 1, &end, 10) : 0;
        size_t hl = colon != NULL ? (size_t)(colon - (url + 6)) : 0;
        if (colon == NULL || end == colon + 1 || *end != '\0' || port <= 0 || port > 65535 ||
            hl == 0 || hl >= sizeof(host)) {
            return BASE_EINVAL;
        }
        memcpy(host, url + 6, hl);
        host[hl] = '\0';
        c = redisConnectWithTimeout(host, (int)port, tv);
    } else {
        return BASE_EINVAL;
    }
    if (c == NULL) {
        return BASE_ENOMEM;
    }
    if (c->err != 0 || redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(errbuf, errlen, "redis %s: %s", url, c->errstr);
        redisFree(c);
        return BASE_EIO;
    }
    bench_redis *r = base_alloc_zero(1, sizeof(*r));
    if (r == NULL) {
        redisFree(c);
        return BASE_ENOMEM;
    }
    r->c = c;
    *out = r;
    return BASE_OK;
}

void bench_redis_close(bench_redis *r)
{
    if (r == NULL) {
        return;
    }
    redisFree(r->c);
    base_free(r);
}

base_err bench_redis_last_len(bench_redis *r, const char *key, size_t *out_len)
{
    redisReply *rep = redisCommand(r->c, "XREVRANGE %s + - COUNT 1", key);
    if (rep == NULL) {
        return BASE_EIO;
    }
    base_err e = BASE_OK;
    size_t len = 0;
    if (rep->type == REDIS_REPLY_ERROR) {
        e = BASE_ESTORE;
    } else if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1) {
        /* [[id, [field, value, ...]]] */
        const redisReply *entry = rep->element[0];
        if (entry->type == REDIS_REPLY_ARRAY && entry->elements == 2 &&
            entry->element[1]->type == REDIS_REPLY_ARRAY) {
            const redisReply *kv = entry->element[1];
            for (size_t i = 0; i + 1 < kv->elements; i += 2) {
                if (kv->element[i]->type == REDIS_REPLY_STRING && kv->element[i]->len == 1 &&
                    kv->element[i]->str[0] == 'r') {
                    len = kv->element[i + 1]->len;
                }
            }
        }
    }
    freeReplyObject(rep);
    if (e == BASE_OK) {
        *out_len = len;
    }
    return e;
}

base_err bench_redis_del(bench_redis *r, const char *key)
{
    redisReply *rep = redisCommand(r->c, "DEL %s", key);
    if (rep == NULL) {
        return BASE_EIO;
    }
    base_err e = rep->type == REDIS_REPLY_ERROR ? BASE_ESTORE : BASE_OK;
    freeReplyObject(rep);
    return e;
}

/* Append one pair's two XADDs to the output buffer. */
static bool append_pair(redisContext *c, const char *key_a, const uint8_t *a, size_t len_a,
                        const char *key_b, const uint8_t *b, size_t len_b)
{
    return redisAppendCommand(c, "XADD %s * r %b", key_a, a, len_a) == REDIS_OK &&
           redisAppendCommand(c, "XADD %s * r %b", key_b, b, len_b) == REDIS_OK;
}

/*
 * One reply; false if the connection failed. An error reply counts in *errors; with @exec,
 * EXEC's: each error in its array counts, and an error or nil instead of the array (the
 * transaction discarded) counts once.
 */
static bool read_reply(redisContext *c, bool exec, uint64_t *errors)
{
    void *v = NULL;
    if (redisGetReply(c, &v) != REDIS_OK || v == NULL) {
        return false;
    }
    redisReply *rep = v;
    if (exec && rep->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < rep->elements; i++) {
            *errors += rep->element[i]->type == REDIS_REPLY_ERROR;
        }
    } else if (exec || rep->type == REDIS_REPLY_ERROR) {
        (*errors)++;
    }
    freeReplyObject(rep);
    return true;
}

/* One measurement of the pair ceiling: the records, their keys, the window. */
typedef struct pair_job {
    redisContext *c;
    const char *key_a, *key_b;
    const uint8_t *a, *b;
    size_t len_a, len_b;
    uint32_t inflight;
    uint64_t from, end; /* the measured window, base_mono_ns() */
    bench_result *res;
    bench_lat *lat;
} pair_job;

static bool append_job_pair(const pair_job *j)
{
    return append_pair(j->c, j->key_a, j->a, j->len_a, j->key_b, j->b, j->len_b);
}

/* A pair completed at @now, begun at @sent: counted if @now falls in the window. */
static void pair_done(const pair_job *j, uint64_t sent, uint64_t now)
{
    if (now >= j->from && now < j->end) {
        j->res->done++;
        bench_lat_add(j->lat, now - sent);
    }
}

/* Plain: @inflight pairs always outstanding; a new one appended as each completes. */
static bool pairs_plain(const pair_job *j, uint64_t *t0)
{
    uint32_t head = 0, n_out = 0;
    for (; n_out < j->inflight; n_out++) {
        t0[n_out] = base_mono_ns();
        if (!append_job_pair(j)) {
            return false;
        }
    }
    while (n_out > 0) {
        /* redisGetReply() writes out what was appended before it waits. */
        if (!read_reply(j->c, false, &j->res->errors) ||
            !read_reply(j->c, false, &j->res->errors)) {
            return false;
        }
        uint64_t now = base_mono_ns();
        pair_done(j, t0[head], now);
        head = (head + 1) % j->inflight;
        n_out--;
        if (now < j->end) {
            t0[(head + n_out) % j->inflight] = now;
            if (!append_job_pair(j)) {
                return false;
            }
            n_out++;
        }
    }
    return true;
}

/*
 * Transactions: @inflight pairs in one MULTI ... EXEC, one transaction at a time, as
 * rlfeedd's writer sends a batch; every pair of it completes with EXEC's reply.
 */
static bool pairs_tx(const pair_job *j)
{
    for (uint64_t sent = base_mono_ns(); sent < j->end; sent = base_mono_ns()) {
        bool ok = redisAppendCommand(j->c, "MULTI") == REDIS_OK;
        for (uint32_t i = 0; ok && i < j->inflight; i++) {
            ok = append_job_pair(j);
        }
        ok = ok && redisAppendCommand(j->c, "EXEC") == REDIS_OK;
        for (uint32_t i = 0; ok && i < 1 + 2 * j->inflight; i++) {
            ok = read_reply(j->c, false, &j->res->errors); /* +OK, then +QUEUED each */
        }
        if (!ok || !read_reply(j->c, true, &j->res->errors)) {
            return false;
        }
        uint64_t now = base_mono_ns();
        for (uint32_t i = 0; i < j->inflight; i++) {
            pair_done(j, sent, now);
        }
    }
    return true;
}

base_err bench_redis_pairs(bench_redis *r, const char *key_a, size_t len_a, const char *key_b,
                           size_t len_b, uint32_t inflight, bool tx, uint64_t warmup_ms,
                           uint64_t measure_ms, bench_result *out)
{
    if (inflight == 0 || inflight > INFLIGHT_MAX || len_a == 0 || len_a > BENCH_RECORD_MAX ||
        len_b == 0 || len_b > BENCH_RECORD_MAX) {
        return BASE_EINVAL;
    }
    base_err e = BASE_ENOMEM;
    bench_lat lat = {0};
    uint8_t *a = base_alloc(len_a), *b = base_alloc(len_b);
    uint64_t *t0 = base_alloc_array(inflight, sizeof(*t0)); /* ring of send times */
    if (a == NULL || b == NULL || t0 == NULL) {
        goto fail;
    }
    /* Not all zeros, so nothing could compress it on the way. */
    for (size_t i = 0; i < len_a; i++) {
        a[i] = (uint8_t)(i * 131u + 7u);
    }
    for (size_t i = 0; i < len_b; i++) {
        b[i] = (uint8_t)(i * 137u + 11u);
    }
    bench_result res = {.seconds = (double)measure_ms / 1000.0};
    uint64_t start = base_mono_ns();
    uint64_t from = start + warmup_ms * 1000000u, end = from + measure_ms * 1000000u;
    pair_job j = {.c = r->c,
                  .key_a = key_a,
                  .key_b = key_b,
                  .a = a,
                  .b = b,
                  .len_a = len_a,
                  .len_b = len_b,
                  .inflight = inflight,
                  .from = from,
                  .end = end,
                  .res = &res,
                  .lat = &lat};
    e = BASE_EIO;
    if (!(tx ? pairs_tx(&j) : pairs_plain(&j, t0))) {
        goto fail;
    }
    res.per_s = res.seconds > 0 ? (double)res.done / res.seconds : 0.0;
    e = bench_lat_summarise(&lat, 1, &res);
    if (e == BASE_OK) {
        *out = res;
    }
fail:
    bench_lat_fini(&lat);
    base_free(t0);
    base_free(b);
    base_free(a);
    return e;
}
