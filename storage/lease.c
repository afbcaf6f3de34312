/* Ownership leases: rlfeed:{<policy>}:owner (storage/store.h). */
#include "storage/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "proto/auth.h"
#include "storage/codec.h"
#include "storage/streamid.h"
#include "storage/store_impl.h"

/* ---- ownership leases ----------------------------------------------------- */

/*
 * A lease's value is the owner's instance id, '#', this process's nonce (16 hex digits,
 * drawn once) and, from a process that runs shared = on, 's': a second live process started
 * with the same instance id takes the leases over at its start, as a restart does, and the
 * first one's next renewal finds them taken; an instance that would follow a policy can tell
 * whether its owner takes what followers forward (docs/storage.md, the key table:
 * rlfeed:{<policy>}:owner).
 */
#define NONCE_LEN 16

static pthread_once_t nonce_once = PTHREAD_ONCE_INIT;
static char nonce[NONCE_LEN + 2]; /* the digits, then 's' when set shared */
static atomic_bool process_shared;

static void nonce_draw(void)
{
    char drawn[2 * 12 + 1]; /* proto_auth_nonce(): 12 random bytes in hex, the first 8 kept */
    proto_auth_nonce(drawn, sizeof(drawn));
    memcpy(nonce, drawn, NONCE_LEN);
    nonce[NONCE_LEN] = '\0';
}

void sto_lease_set_shared(bool shared)
{
    atomic_store(&process_shared, shared);
}

base_err sto_lease_value(const char *owner, char *out, size_t size)
{
    size_t n = strlen(owner);
    if (n == 0 || n > STO_OWNER_MAX || size < n + 3 + NONCE_LEN) {
        return BASE_EINVAL;
    }
    (void)pthread_once(&nonce_once, nonce_draw);
    memcpy(out, owner, n);
    out[n] = '#';
    memcpy(out + n + 1, nonce, NONCE_LEN);
    size_t end = n + 1 + NONCE_LEN;
    if (atomic_load(&process_shared)) {
        out[end++] = 's';
    }
    out[end] = '\0';
    return BASE_OK;
}

/*
 * The instance id of lease value @v (@n bytes) into @out: without its nonce; *@shared whether
 * its holder runs shared = on (a value from before nonces, the id alone, counts as shared).
 */
static void lease_owner(const char *v, size_t n, char *out, size_t size, bool *shared)
{
    bool s = n > NONCE_LEN + 1 && v[n - 1] == 's';
    size_t tail = NONCE_LEN + 1 + (s ? 1 : 0); /* '#', the digits, the 's' */
    *shared = true;
    if (n > tail && v[n - tail] == '#' &&
        strspn(v + n - tail + 1, "0123456789abcdef") >= NONCE_LEN) {
        n -= tail;
        *shared = s;
    }
    (void)snprintf(out, size, "%.*s", (int)n, v); /* cut if small: a name for a log line */
}

/*
 * KEYS[1] the lease; ARGV[1] the value, ARGV[2] the TTL in ms, ARGV[3] the instance id when
 * a lease held under it by another process (its nonce, with or without 's') may be taken
 * over, else "". Returns {taken, holder's value, ms left, taken from another process with the
 * same id}.
 */
static const char LEASE_TAKE[] = "local v = redis.call('GET', KEYS[1]) "
                                 "local id = ARGV[3] "
                                 "local mine = v == false or v == ARGV[1] "
                                 "local twin = (not mine) and id ~= '' and (v == id or "
                                 "(string.sub(v, 1, #id + 1) == id .. '#' and (#v == #id + 17 or "
                                 "(#v == #id + 18 and string.sub(v, -1) == 's')))) "
                                 "if mine or twin then "
                                 "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
                                 "return {1, ARGV[1], tonumber(ARGV[2]), twin and 1 or 0} end "
                                 "return {0, v, redis.call('PTTL', KEYS[1]), 0}";

static const char LEASE_DROP[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
    "return 0";

base_err sto_lease_acquire(sto_store *s, const char *policy, const char *owner, uint32_t ttl_ms,
                           sto_lease_take *t)
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
    const char *id = t->restart ? owner : "";
    const char *argv[] = {"EVAL", LEASE_TAKE, "1", key, value, ttl, id};
    size_t lens[] = {4,         sizeof(LEASE_TAKE) - 1, 1, strlen(key), strlen(value), strlen(ttl),
                     strlen(id)};
    e = sto_run(s, 7, argv, lens, &r);
    if (e != BASE_OK) {
        goto fail;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[2]->type != REDIS_REPLY_INTEGER || r->element[3]->type != REDIS_REPLY_INTEGER) {
        e = BASE_EPROTO;
        goto fail;
    }
    t->held = r->element[0]->integer == 1;
    lease_owner(r->element[1]->str, r->element[1]->len, t->holder, sizeof(t->holder),
                &t->holder_shared);
    t->left_ms = r->element[2]->integer;
    t->from_twin = r->element[3]->integer == 1;
fail:
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

base_err sto_lease_release(sto_store *s, const char *policy, const char *owner)
{
    char key[STO_KEY_MAX], value[STO_LEASE_VALUE_MAX];
    base_err e = sto_make_key(key, sizeof(key), policy, "owner");
    if (e == BASE_OK) {
        e = sto_lease_value(owner, value, sizeof(value));
    }
    if (e == BASE_OK) {
        const char *argv[] = {"EVAL", LEASE_DROP, "1", key, value};
        size_t lens[] = {4, sizeof(LEASE_DROP) - 1, 1, strlen(key), strlen(value)};
        e = sto_run_ok(s, 5, argv, lens);
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
            bool shared = false;
            lease_owner(r->str, r->len, out, size, &shared);
        } else if (r->type != REDIS_REPLY_NIL) {
            e = BASE_EPROTO;
        }
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}
