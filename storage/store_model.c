/* Model snapshots, the registry, and retention (trim, prune). */
#include "storage/store.h"

#include <ctype.h>
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

/* ---- models ------------------------------------------------------------- */

/*
 * Read the replies of MULTI's @n_cmds queued commands and of EXEC; BASE_OK
 * only if every command was queued and EXEC applied them all. The EXEC
 * reply is [SET +OK, (HSET :n,) ZADD :n]; nil if aborted; an error after a
 * bad queue.
 */
static base_err exec_replies(sto_store *s, size_t n_cmds)
{
    base_err e = BASE_OK;

    for (size_t i = 0; i <= n_cmds; i++) {
        void *rv = NULL;
        if (redisGetReply(s->c, &rv) != REDIS_OK) {
            e = BASE_EIO;
            break;
        }
        redisReply *r = rv;
        (void)sto_cluster_note(s, r); /* a MOVED while queueing: the next call reads the map */
        bool ok;
        if (i < n_cmds) {
            ok = sto_is_status(r, "QUEUED");
        } else {
            ok = r->type == REDIS_REPLY_ARRAY && r->elements == n_cmds &&
                 sto_is_status(r->element[0], "OK");
            for (size_t k = 1; ok && k < n_cmds; k++) {
                ok = r->element[k]->type == REDIS_REPLY_INTEGER;
            }
        }
        if (!ok && e == BASE_OK) {
            e = r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_NIL ||
                        r->type == REDIS_REPLY_ARRAY
                    ? BASE_ESTORE
                    : BASE_EPROTO;
            /* Redis's words for sto_store_refusal(): the refused command's, or EXEC's. */
            const redisReply *w = r;
            for (size_t k = 0; r->type == REDIS_REPLY_ARRAY && k < r->elements; k++) {
                w = r->element[k]->type == REDIS_REPLY_ERROR && w == r ? r->element[k] : w;
            }
            if (w->type == REDIS_REPLY_ERROR && w->str != NULL) {
                base_strlcpy(s->refusal, w->str, sizeof(s->refusal));
            }
        }
        freeReplyObject(r);
    }
    return e;
}

/* The keys of snapshot @m (its own, the registry, the index), its version text, its encoding. */
typedef struct model_keys {
    char key[STO_KEY_MAX], reg[STO_KEY_MAX], idx[STO_KEY_MAX], ver[24];
} model_keys;

static base_err model_prepare(const base_snapshot *m, model_keys *k, base_buf *b)
{
    char suffix[40];
    (void)snprintf(suffix, sizeof(suffix), "model:%llu", (unsigned long long)m->version); /* fits */
    (void)snprintf(k->ver, sizeof(k->ver), "%llu", (unsigned long long)m->version);       /* fits */
    base_err e = sto_make_key(k->key, sizeof(k->key), m->policy, suffix);
    if (e == BASE_OK) {
        e = sto_make_key(k->reg, sizeof(k->reg), m->policy, "registry");
    }
    if (e == BASE_OK) {
        e = sto_make_key(k->idx, sizeof(k->idx), m->policy, "models");
    }
    return e == BASE_OK ? sto_codec_encode_model(m, b) : e;
}

/*
 * Store @m under its key and index it in "models", in one MULTI/EXEC, and
 * with @move_online also point the registry's "online" at it. The one
 * writer of snapshots: sto_store_model_put() and sto_store_model_save().
 */
static base_err model_store(sto_store *s, const base_snapshot *m, bool move_online)
{
    redisReply *r = NULL;
    base_buf b;
    pipe_guard g;
    base_err e;

    model_keys k;
    base_buf_init(&b, STO_MAX_VALUE);
    e = model_prepare(m, &k, &b);
    const char *key = k.key, *reg = k.reg, *idx = k.idx, *ver = k.ver;
    if (e != BASE_OK) {
        goto fail;
    }
    /*
     * MULTI gets its own round trip: if it failed, the commands after it would
     * run outside any transaction. Redis does not roll back, so each queued
     * reply and every EXEC result is checked.
     */
    const char *multi[] = {"MULTI"};
    size_t multi_len[] = {5};
    e = sto_route_policy(s, m->policy); /* MULTI has no key: go to the policy's master first */
    if (e == BASE_OK) {
        e = sto_run(s, 1, multi, multi_len, &r);
    }
    if (e != BASE_OK) {
        goto fail;
    }
    if (!sto_is_status(r, "OK")) {
        e = BASE_EPROTO;
        sto_mark_broken(s); /* the connection's transaction state is unknown */
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
    sto_guard_begin(&g);
    if (redisAppendCommandArgv(s->c, 3, set, set_len) != REDIS_OK ||
        (move_online && redisAppendCommandArgv(s->c, 4, hset, hset_len) != REDIS_OK) ||
        redisAppendCommandArgv(s->c, 4, zadd, zadd_len) != REDIS_OK ||
        redisAppendCommandArgv(s->c, 1, exec, exec_len) != REDIS_OK) {
        e = BASE_EIO;
    } else {
        e = exec_replies(s, move_online ? 3 : 2);
    }
    sto_guard_end(&g);
    if (e == BASE_EIO) {
        sto_mark_broken(s);
    }
fail:
    if (r != NULL) {
        freeReplyObject(r);
    }
    base_buf_fini(&b);
    return e;
}

base_err sto_store_model_put(sto_store *s, const base_snapshot *m)
{
    return model_store(s, m, true);
}

/* KEYS: lease, snapshot, registry, index; ARGV: fence, snapshot bytes, version. */
static const char FENCED_PUT[] =
    "local h = redis.call('GET', KEYS[1]) "
    "if h ~= ARGV[1] then return redis.error_reply('FENCED ' .. tostring(h)) end "
    "redis.call('SET', KEYS[2], ARGV[2]) "
    "redis.call('HSET', KEYS[3], 'online', ARGV[3]) "
    "redis.call('ZADD', KEYS[4], ARGV[3], ARGV[3]) "
    "return 'OK'";

base_err sto_store_model_put_fenced(sto_store *s, const base_snapshot *m, const char *fence,
                                    bool *out_fenced)
{
    char lease[STO_KEY_MAX], value[STO_LEASE_VALUE_MAX];
    redisReply *r = NULL;
    base_buf b;
    *out_fenced = false;
    model_keys k;
    base_buf_init(&b, STO_MAX_VALUE);
    base_err e = sto_make_key(lease, sizeof(lease), m->policy, "owner");
    if (e == BASE_OK) {
        e = sto_lease_value(fence, value, sizeof(value));
    }
    if (e == BASE_OK) {
        e = model_prepare(m, &k, &b);
    }
    const char *key = k.key, *reg = k.reg, *idx = k.idx, *ver = k.ver;
    if (e == BASE_OK) {
        const char *argv[] = {"EVAL", FENCED_PUT,           "4", lease, key, reg, idx,
                              value,  (const char *)b.data, ver};
        size_t lens[] = {
            4,           sizeof(FENCED_PUT) - 1, 1,     strlen(lease), strlen(key), strlen(reg),
            strlen(idx), strlen(value),          b.len, strlen(ver)};
        e = sto_run_any(s, 10, argv, lens, &r);
    }
    if (e == BASE_OK) {
        if (r->type == REDIS_REPLY_ERROR) {
            *out_fenced = r->str != NULL && strncmp(r->str, "FENCED ", 7) == 0;
            base_strlcpy(s->refusal, r->str != NULL ? r->str : "", sizeof(s->refusal));
            e = BASE_ESTORE;
        } else if (!sto_is_status(r, "OK") && !(r->type == REDIS_REPLY_STRING && r->len == 2 &&
                                                memcmp(r->str, "OK", 2) == 0)) {
            e = BASE_EPROTO;
        }
        freeReplyObject(r);
    }
    base_buf_fini(&b);
    return e;
}

base_err sto_store_model_save(sto_store *s, const base_snapshot *m)
{
    return model_store(s, m, false);
}

/* A registry value: decimal digits only, no sign, no overflow. */
static bool parse_version(const redisReply *r, uint64_t *out)
{
    return r->type == REDIS_REPLY_STRING && sto_parse_version(r->str, r->len, out);
}

base_err sto_store_model_get(sto_store *s, const char *policy, uint64_t version,
                             base_snapshot **out, bool *out_found)
{
    char key[STO_KEY_MAX], suffix[40];
    redisReply *r = NULL;
    base_snapshot *m = NULL;
    base_err e;

    (void)snprintf(suffix, sizeof(suffix), "model:%llu", (unsigned long long)version); /* fits */
    e = sto_make_key(key, sizeof(key), policy, suffix);
    if (e != BASE_OK) {
        goto fail;
    }
    const char *get[] = {"GET", key};
    size_t get_len[] = {3, strlen(key)};
    e = sto_run(s, 2, get, get_len, &r);
    if (e != BASE_OK) {
        goto fail;
    }
    if (r->type == REDIS_REPLY_NIL) {
        *out_found = false;
        goto fail;
    }
    if (r->type != REDIS_REPLY_STRING) {
        e = BASE_EPROTO;
        (void)snprintf(s->refusal, sizeof(s->refusal), "%s is not a string", key);
        goto fail;
    }
    e = sto_codec_decode_model((const uint8_t *)r->str, r->len, &m);
    if (e != BASE_OK) {
        (void)snprintf(s->refusal, sizeof(s->refusal), "%s does not decode as a snapshot", key);
        goto fail;
    }
    if (m->version != version || strcmp(m->policy, policy) != 0) {
        e = BASE_EPROTO;
        (void)snprintf(s->refusal, sizeof(s->refusal),
                       "%.200s holds version %llu of policy \"%.64s\"", key,
                       (unsigned long long)m->version, m->policy);
        goto fail;
    }
    *out = m;
    *out_found = true;
    m = NULL;
fail:
    base_snapshot_free(m);
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

base_err sto_registry_get(sto_store *s, const char *policy, sto_registry *out)
{
    char reg[STO_KEY_MAX];
    redisReply *r = NULL;
    sto_registry g = {.canary = -1.0};
    base_err e = sto_make_key(reg, sizeof(reg), policy, "registry");

    if (e != BASE_OK) {
        goto fail;
    }
    const char *hmget[] = {"HMGET", reg, "online", "production", "serve", "canary"};
    size_t hmget_len[] = {5, strlen(reg), 6, 10, 5, 6};
    e = sto_run(s, 6, hmget, hmget_len, &r);
    if (e != BASE_OK) {
        goto fail;
    }
    e = BASE_EPROTO;
    /* Until the fields are read: the words of an EPROTO (sto_store_strerror()). */
    (void)snprintf(s->refusal, sizeof(s->refusal),
                   "%.150s: a field is not as the registry writes it (online and production a "
                   "version without leading zeros, serve online or production, canary a "
                   "share in [0, 1])",
                   reg);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
        goto fail;
    }
    const redisReply *on = r->element[0], *pr = r->element[1], *sv = r->element[2],
                     *cn = r->element[3];
    if ((on->type != REDIS_REPLY_NIL && !parse_version(on, &g.online)) ||
        (pr->type != REDIS_REPLY_NIL && !parse_version(pr, &g.production))) {
        goto fail;
    }
    if (sv->type == REDIS_REPLY_STRING) {
        if (sv->len == 6 && memcmp(sv->str, "online", 6) == 0) {
            g.serve = STO_SERVE_ONLINE;
        } else if (sv->len == 10 && memcmp(sv->str, "production", 10) == 0) {
            g.serve = STO_SERVE_PRODUCTION;
        } else {
            goto fail;
        }
    } else if (sv->type != REDIS_REPLY_NIL) {
        goto fail;
    }
    if (cn->type == REDIS_REPLY_STRING) {
        char buf[32], *end = NULL;
        if (cn->len == 0 || cn->len >= sizeof(buf)) {
            goto fail;
        }
        memcpy(buf, cn->str, cn->len);
        buf[cn->len] = '\0';
        /* As %.15g writes it: no blank, sign, hex, inf or nan. */
        if (strspn(buf, "0123456789.eE+-") != cn->len ||
            (buf[0] != '.' && !isdigit((unsigned char)buf[0]))) {
            goto fail;
        }
        errno = 0;
        double c = strtod(buf, &end);
        if (errno != 0 || end != buf + cn->len || !(c >= 0.0 && c <= 1.0)) {
            goto fail;
        }
        g.canary = c;
    } else if (cn->type != REDIS_REPLY_NIL) {
        goto fail;
    }
    *out = g;
    e = BASE_OK;
    s->refusal[0] = '\0';
fail:
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

base_err sto_store_model_get_online(sto_store *s, const char *policy, base_snapshot **out,
                                    bool *out_found)
{
    sto_registry g;
    base_err e = sto_registry_get(s, policy, &g);
    if (e != BASE_OK) {
        return e;
    }
    if (g.online == 0) {
        *out_found = false;
        return BASE_OK;
    }
    e = sto_store_model_get(s, policy, g.online, out, out_found);
    if (e == BASE_OK && !*out_found) {
        e = BASE_EPROTO; /* the registry names a snapshot that must exist: put writes both */
        (void)snprintf(s->refusal, sizeof(s->refusal),
                       "the registry's online field names snapshot %llu, which is not stored",
                       (unsigned long long)g.online);
    }
    return e;
}

/* ---- retention ----------------------------------------------------------- */

base_err sto_store_trim(sto_store *s, sto_kind kind, const char *policy, const char *minid,
                        uint64_t *out_removed)
{
    char key[STO_KEY_MAX];
    base_err e = sto_stream_key(key, sizeof(key), kind, policy);
    if (e != BASE_OK) {
        return e;
    }
    const char *argv[] = {"XTRIM", key, "MINID", minid};
    size_t lens[] = {5, strlen(key), 5, strlen(minid)};
    return sto_run_count(s, 4, argv, lens, out_removed);
}

base_err sto_store_model_prune(sto_store *s, const char *policy, uint32_t keep,
                               uint64_t *out_removed)
{
    char idx[STO_KEY_MAX], pinned[STO_KEY_MAX], stop[24];
    redisReply *r = NULL;
    uint64_t removed = 0;
    base_err e = sto_make_key(idx, sizeof(idx), policy, "models");
    if (e == BASE_OK) {
        e = sto_make_key(pinned, sizeof(pinned), policy, "pinned");
    }
    if (e != BASE_OK) {
        goto fail;
    }
    /* Every version but the newest @keep, oldest first. */
    (void)snprintf(stop, sizeof(stop), "%lld", -(long long)keep - 1); /* fits */
    const char *range[] = {"ZRANGE", idx, "0", stop};
    size_t range_len[] = {6, strlen(idx), 1, strlen(stop)};
    e = sto_run(s, 4, range, range_len, &r);
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
        e = sto_run(s, 3, ism, ism_len, &q);
        bool is_pinned = e == BASE_OK && q->type == REDIS_REPLY_INTEGER && q->integer == 1;
        if (q != NULL) {
            freeReplyObject(q);
            q = NULL;
        }
        if (e != BASE_OK || is_pinned) {
            continue;
        }
        (void)snprintf(suffix, sizeof(suffix), "model:%.*s", (int)v->len, v->str); /* fits */
        e = sto_make_key(key, sizeof(key), policy, suffix);
        const char *del[] = {"DEL", key};
        size_t del_len[] = {3, strlen(key)};
        if (e == BASE_OK) {
            e = sto_run(s, 2, del, del_len, &q);
        }
        if (q != NULL) {
            freeReplyObject(q);
            q = NULL;
        }
        const char *zrem[] = {"ZREM", idx, v->str};
        size_t zrem_len[] = {4, strlen(idx), v->len};
        if (e == BASE_OK) {
            e = sto_run(s, 3, zrem, zrem_len, &q);
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
