/* Ownership leases: rlfeed:{<policy>}:owner (storage/store.h). */
#include "storage/store.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "storage/codec.h"
#include "storage/streamid.h"
#include "storage/store_impl.h"

/* ---- ownership leases ----------------------------------------------------- */

/*
 * A lease's value is the owner's instance id, '#' and this process's nonce (16 hex digits,
 * drawn once): a second live process started with the same instance id takes the leases
 * over at its start, as a restart does, and the first one's next renewal finds them taken
 * (docs/storage.md, the key table: rlfeed:{<policy>}:owner).
 */
#define NONCE_LEN 16

static pthread_once_t nonce_once = PTHREAD_ONCE_INIT;
static char nonce[NONCE_LEN + 1];

static void nonce_draw(void)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[NONCE_LEN / 2];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t r = getrandom(raw + got, sizeof(raw) - got, 0);
        if (r < 0 && errno != EINTR) {
            break;
        }
        got += r > 0 ? (size_t)r : 0;
    }
    if (got < sizeof(raw)) { /* no entropy source: the pid and the clock tell processes apart */
        struct timespec ts;
        (void)clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t v =
            ((uint64_t)getpid() << 40) ^ (uint64_t)ts.tv_sec * 1000000000u ^ (uint64_t)ts.tv_nsec;
        memcpy(raw, &v, sizeof(raw));
    }
    for (size_t i = 0; i < sizeof(raw); i++) {
        nonce[2 * i] = hex[raw[i] >> 4];
        nonce[2 * i + 1] = hex[raw[i] & 15];
    }
    nonce[NONCE_LEN] = '\0';
}

base_err sto_lease_value(const char *owner, char *out, size_t size)
{
    size_t n = strlen(owner);
    if (n == 0 || n > STO_OWNER_MAX || size < n + 2 + NONCE_LEN) {
        return BASE_EINVAL;
    }
    (void)pthread_once(&nonce_once, nonce_draw);
    memcpy(out, owner, n);
    out[n] = '#';
    memcpy(out + n + 1, nonce, NONCE_LEN + 1);
    return BASE_OK;
}

/* The instance id of lease value @v (@n bytes) into @out: without its nonce. */
static void lease_owner(const char *v, size_t n, char *out, size_t size)
{
    if (n > NONCE_LEN && v[n - NONCE_LEN - 1] == '#' &&
        strspn(v + n - NONCE_LEN, "0123456789abcdef") >= NONCE_LEN) {
        n -= NONCE_LEN + 1; /* a value written before the nonce is the id alone */
    }
    (void)snprintf(out, size, "%.*s", (int)n, v); /* cut if small: a name for a log line */
}

/*
 * KEYS[1] the lease; ARGV[1] the value, ARGV[2] the TTL in ms, ARGV[3] the instance id when
 * a lease held under it by another process (a nonce of NONCE_LEN) may be taken over, else
 * "". Returns {taken, holder's value, ms left}.
 */
static const char LEASE_TAKE[] =
    "local v = redis.call('GET', KEYS[1]) "
    "local id = ARGV[3] "
    "if v == false or v == ARGV[1] or (id ~= '' and (v == id or (#v == #id + 17 and "
    "string.sub(v, 1, #id + 1) == id .. '#'))) then "
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
    "return {1, ARGV[1], tonumber(ARGV[2])} end "
    "return {0, v, redis.call('PTTL', KEYS[1])}";

static const char LEASE_DROP[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
    "return 0";

base_err sto_lease_acquire(sto_store *s, const char *policy, const char *owner, uint32_t ttl_ms,
                           bool restart, bool *out_held, char *out_holder, size_t holder_size,
                           int64_t *out_left_ms)
{
    char key[STO_KEY_MAX], ttl[16], value[STO_LEASE_VALUE_MAX];
    redisReply *r = NULL;
    base_err e = sto_make_key(key, sizeof(key), policy, "owner");
    if (e == BASE_OK && ttl_ms == 0) {
        e = BASE_EINVAL;
    }
    if (e == BASE_OK) {
        e = sto_lease_value(owner, value, sizeof(value));
    }
    if (e != BASE_OK) {
        goto fail;
    }
    (void)snprintf(ttl, sizeof(ttl), "%u", ttl_ms); /* fits */
    const char *id = restart ? owner : "";
    const char *argv[] = {"EVAL", LEASE_TAKE, "1", key, value, ttl, id};
    size_t lens[] = {4,         sizeof(LEASE_TAKE) - 1, 1, strlen(key), strlen(value), strlen(ttl),
                     strlen(id)};
    e = sto_run(s, 7, argv, lens, &r);
    if (e != BASE_OK) {
        goto fail;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[2]->type != REDIS_REPLY_INTEGER) {
        e = BASE_EPROTO;
        goto fail;
    }
    *out_held = r->element[0]->integer == 1;
    lease_owner(r->element[1]->str, r->element[1]->len, out_holder, holder_size);
    *out_left_ms = r->element[2]->integer;
fail:
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

base_err sto_lease_release(sto_store *s, const char *policy, const char *owner)
{
    char key[STO_KEY_MAX], value[STO_LEASE_VALUE_MAX];
    redisReply *r = NULL;
    base_err e = sto_make_key(key, sizeof(key), policy, "owner");
    if (e == BASE_OK) {
        e = sto_lease_value(owner, value, sizeof(value));
    }
    if (e == BASE_OK) {
        const char *argv[] = {"EVAL", LEASE_DROP, "1", key, value};
        size_t lens[] = {4, sizeof(LEASE_DROP) - 1, 1, strlen(key), strlen(value)};
        e = sto_run(s, 5, argv, lens, &r);
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

base_err sto_lease_mark_shared(sto_store *s, const char *policy, const char *owner, uint32_t ttl_ms)
{
    char key[STO_KEY_MAX], ttl[16];
    redisReply *r = NULL;
    base_err e = sto_make_key(key, sizeof(key), policy, "shared");
    if (e == BASE_OK) {
        (void)snprintf(ttl, sizeof(ttl), "%u", ttl_ms);
        const char *argv[] = {"SET", key, owner, "PX", ttl};
        size_t lens[] = {3, strlen(key), strlen(owner), 2, strlen(ttl)};
        e = sto_run(s, 5, argv, lens, &r);
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

base_err sto_lease_holder_shared(sto_store *s, const char *policy, bool *out)
{
    char key[STO_KEY_MAX];
    uint64_t n = 0;
    base_err e = sto_make_key(key, sizeof(key), policy, "shared");
    if (e == BASE_OK) {
        const char *argv[] = {"EXISTS", key};
        size_t lens[] = {6, strlen(key)};
        e = sto_run_count(s, 2, argv, lens, &n);
    }
    *out = n > 0;
    return e;
}

base_err sto_lease_holder(sto_store *s, const char *policy, char *out, size_t size)
{
    char key[STO_KEY_MAX];
    redisReply *r = NULL;
    base_err e = sto_make_key(key, sizeof(key), policy, "owner");
    if (e == BASE_OK && size == 0) {
        e = BASE_EINVAL;
    }
    if (e == BASE_OK) {
        const char *argv[] = {"GET", key};
        size_t lens[] = {3, strlen(key)};
        e = sto_run(s, 2, argv, lens, &r);
    }
    if (e == BASE_OK) {
        out[0] = '\0';
        if (r->type == REDIS_REPLY_STRING) {
            lease_owner(r->str, r->len, out, size);
        } else if (r->type != REDIS_REPLY_NIL) {
            e = BASE_EPROTO;
        }
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}
