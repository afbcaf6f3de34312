/* Ownership leases: rlfeed:{<policy>}:owner (storage/store.h). */
#include "storage/store.h"

#include <errno.h>
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
#include "storage/store_impl.h"

/* ---- ownership leases ----------------------------------------------------- */

/* KEYS[1] the lease; ARGV[1] the owner, ARGV[2] the TTL in ms. Returns {taken, holder, ms left}. */
static const char LEASE_TAKE[] = "local v = redis.call('GET', KEYS[1]) "
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
    base_err e = sto_make_key(key, sizeof(key), policy, "owner");
    if (e == BASE_OK && (!owner_ok(owner) || ttl_ms == 0)) {
        e = BASE_EINVAL;
    }
    if (e != BASE_OK) {
        goto fail;
    }
    (void)snprintf(ttl, sizeof(ttl), "%u", ttl_ms); /* fits */
    const char *argv[] = {"EVAL", LEASE_TAKE, "1", key, owner, ttl};
    size_t lens[] = {4, sizeof(LEASE_TAKE) - 1, 1, strlen(key), strlen(owner), strlen(ttl)};
    e = sto_run(s, 6, argv, lens, &r);
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
    base_err e = sto_make_key(key, sizeof(key), policy, "owner");
    if (e == BASE_OK && !owner_ok(owner)) {
        e = BASE_EINVAL;
    }
    if (e == BASE_OK) {
        const char *argv[] = {"EVAL", LEASE_DROP, "1", key, owner};
        size_t lens[] = {4, sizeof(LEASE_DROP) - 1, 1, strlen(key), strlen(owner)};
        e = sto_run(s, 5, argv, lens, &r);
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
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
            size_t n = r->len < size - 1 ? r->len : size - 1;
            memcpy(out, r->str, n);
            out[n] = '\0';
        } else if (r->type != REDIS_REPLY_NIL) {
            e = BASE_EPROTO;
        }
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}
