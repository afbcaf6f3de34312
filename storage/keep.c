/*
 * A process's own state kept across its restart (store.h, "Kept state"): one string value
 * with a TTL, read and deleted at once by the next start.
 */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "storage/store.h"
#include "storage/store_impl.h"

/* rlfeed:kept:@kind:@name into @key. */
static base_err kept_key(char *key, size_t size, const char *kind, const char *name)
{
    int n = snprintf(key, size, "rlfeed:kept:%s:%s", kind, name);
    return n > 0 && (size_t)n < size ? BASE_OK : BASE_EINVAL;
}

base_err sto_keep_put(sto_store *s, const char *kind, const char *name, const void *data,
                      size_t len, int64_t ttl_ms)
{
    char key[STO_KEEP_KEY_MAX], px[24];
    base_err e = kept_key(key, sizeof(key), kind, name);
    if (e != BASE_OK || ttl_ms <= 0) {
        return BASE_EINVAL;
    }
    (void)snprintf(px, sizeof(px), "%lld", (long long)ttl_ms);
    const char *argv[] = {"SET", key, data, "PX", px};
    size_t lens[] = {3, strlen(key), len, 2, strlen(px)};
    return sto_run_ok(s, 5, argv, lens);
}

base_err sto_keep_take(sto_store *s, const char *kind, const char *name, base_buf *out,
                       bool *out_found)
{
    char key[STO_KEEP_KEY_MAX];
    redisReply *r = NULL;
    *out_found = false;
    base_err e = kept_key(key, sizeof(key), kind, name);
    if (e != BASE_OK) {
        return e;
    }
    const char *argv[] = {"GETDEL", key};
    size_t lens[] = {6, strlen(key)};
    e = sto_run(s, 2, argv, lens, &r);
    if (e == BASE_OK && r->type == REDIS_REPLY_STRING) {
        e = base_buf_append(out, r->str, r->len);
        *out_found = e == BASE_OK;
    } else if (e == BASE_OK && r->type != REDIS_REPLY_NIL) {
        e = BASE_EPROTO;
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}
