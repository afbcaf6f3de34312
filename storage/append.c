/*
 * sto_store_append() (storage/store.h): a batch of records XADDed in pipelines, split by
 * Redis Cluster master (one lane per master, all written at once), with the event index
 * after each record (append_index.c) and, for fenced items, one Lua script per run of one
 * policy's records. On a single Redis each chunk is one MULTI ... EXEC.
 */
#include "storage/store.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "storage/append_index.h"
#include "storage/codec.h"
#include "storage/streamid.h"
#include "storage/store_impl.h"

/*
 * A fenced group: KEYS[1] the policy's lease, KEYS[2..] the items' streams (one hash tag);
 * ARGV[1] the fence (the lease holder the writer must be), then an id and a record per
 * item. Refused as a whole ("FENCED <holder>") unless the lease is held by the fence; else
 * each XADD's result, an id or its error, in order.
 */
static const char FENCED_XADD[] =
    "local h = redis.call('GET', KEYS[1]) "
    "if h ~= ARGV[1] then return redis.error_reply('FENCED ' .. tostring(h)) end "
    "local out = {} "
    "for i = 2, #KEYS do "
    "  local ok, r = pcall(redis.call, 'XADD', KEYS[i], ARGV[2 * i - 2], 'r', ARGV[2 * i - 1]) "
    "  if not ok and type(r) ~= 'table' then r = redis.error_reply(tostring(r)) end "
    "  out[#out + 1] = r "
    "end "
    "return out";

#define FENCE_GROUP_MAX 64u

/* Whether item @it can be stored: its stream key into @key, its id checked, encoded into @b. */
static base_err prepare(const sto_append *it, char *key, base_buf *b)
{
    sto_sid sid;
    base_err e = sto_stream_key(key, STO_KEY_MAX, it->kind, it->policy);
    bool explicit_id = it->id != NULL && it->id[0] != '\0';
    if (e == BASE_OK && explicit_id &&
        (strlen(it->id) > BASE_STREAM_ID_MAX || !sto_sid_parse(it->id, &sid))) {
        e = BASE_EINVAL;
    }
    return e == BASE_OK ? sto_record_encode(it->kind, it->rec, b) : e;
}

/*
 * Queue one fenced group: items[idx[0..n)] of one policy and fence. Items that fail locally
 * get their own error; the others go in one EVAL (group[] marks its head with the count of
 * its members, the other members with UINT16_MAX).
 */
static base_err queue_group(sto_store *s, sto_append *items, const size_t *idx, size_t n,
                            bool *sent, uint8_t *extra, uint16_t *group, size_t *cmds,
                            size_t *bytes, idx_pend *ip)
{
    char keys[FENCE_GROUP_MAX][STO_KEY_MAX]; /* 16 KiB: the writer has its stack to itself */
    char owner_key[STO_KEY_MAX], fence[STO_LEASE_VALUE_MAX];
    const char *argv[4 + FENCE_GROUP_MAX + 1 + 2 * FENCE_GROUP_MAX];
    size_t lens[4 + FENCE_GROUP_MAX + 1 + 2 * FENCE_GROUP_MAX];
    size_t off[FENCE_GROUP_MAX], len[FENCE_GROUP_MAX], member[FENCE_GROUP_MAX], m = 0;
    char numkeys[16];
    base_buf b;
    base_err e = BASE_OK;

    base_buf_init(&b, STO_MAX_VALUE);
    for (size_t i = 0; i < n; i++) {
        sto_append *it = &items[idx[i]];
        size_t at = b.len;
        sent[idx[i]] = false;
        extra[idx[i]] = 0;
        group[idx[i]] = 0;
        base_err ie = prepare(it, keys[m], &b);
        if (ie != BASE_OK) {
            it->out_err = ie;
            b.len = at;
            continue;
        }
        off[m] = at;
        len[m] = b.len - at;
        member[m++] = idx[i];
    }
    if (m == 0 ||
        sto_make_key(owner_key, sizeof(owner_key), items[member[0]].policy, "owner") != BASE_OK ||
        sto_lease_value(items[member[0]].fence, fence, sizeof(fence)) != BASE_OK) {
        goto fail;
    }
    int argc = 0;
    (void)snprintf(numkeys, sizeof(numkeys), "%zu", m + 1);
    argv[argc] = "EVAL";
    lens[argc++] = 4;
    argv[argc] = FENCED_XADD;
    lens[argc++] = sizeof(FENCED_XADD) - 1;
    argv[argc] = numkeys;
    lens[argc++] = strlen(numkeys);
    argv[argc] = owner_key;
    lens[argc++] = strlen(owner_key);
    for (size_t j = 0; j < m; j++) {
        argv[argc] = keys[j];
        lens[argc++] = strlen(keys[j]);
    }
    argv[argc] = fence;
    lens[argc++] = strlen(fence);
    for (size_t j = 0; j < m; j++) {
        const sto_append *it = &items[member[j]];
        const char *id = it->id != NULL && it->id[0] != '\0' ? it->id : "*";
        argv[argc] = id;
        lens[argc++] = strlen(id);
        argv[argc] = (const char *)b.data + off[j];
        lens[argc++] = len[j];
    }
    if (redisAppendCommandArgv(s->c, argc, argv, lens) != REDIS_OK) {
        e = BASE_EIO;
        goto fail;
    }
    for (size_t j = 0; j < m; j++) {
        sent[member[j]] = true;
        group[member[j]] = j == 0 ? (uint16_t)m : UINT16_MAX;
    }
    if (s->cluster) {
        s->conn[s->cur].dirty = true;
    }
    *bytes += b.len;
    (*cmds)++;
    e = sto_queue_indexes(s, items, member, m, sent, extra, cmds, ip);
fail:
    base_buf_fini(&b);
    return e;
}

/*
 * Queue on s->c the XADDs of the next chunk of @n items, items[idx[0..n)], that encode;
 * sent[k] (by item index) says which were queued, extra[k] how many index replies follow
 * its XADD's, group[k] its fenced group (queue_group()). An item that fails here gets its
 * own error; a queued one keeps BASE_EIO until its reply arrives. The chunk ends with the
 * decisions' and joined records' event index (@ip); *out_tail: how many replies that adds
 * after the items'. *out_used: how many of the @n the chunk took. With @tx the chunk is one
 * transaction, MULTI ... EXEC (reply_src).
 */
static base_err queue_chunk(sto_store *s, sto_append *items, const size_t *idx, size_t n, bool tx,
                            bool *sent, uint8_t *extra, uint16_t *group, idx_pend *ip,
                            size_t *out_used, size_t *out_tail)
{
    char key[STO_KEY_MAX];
    base_buf b;
    size_t used = 0, bytes = 0, cmds = 0;
    base_err e = BASE_OK;

    base_buf_init(&b, STO_MAX_VALUE);
    ip->n = 0; /* what a broken lane's chunk left */
    ip->n_keys = 0;
    if (tx && redisAppendCommand(s->c, "MULTI") != REDIS_OK) {
        e = BASE_EIO;
        goto fail;
    }
    /* Up to 3 commands an item (XADD, HSET, PEXPIRE): PIPE_MAX_ITEMS bounds them all. */
    while (used < n && cmds + 3 <= PIPE_MAX_ITEMS && bytes < PIPE_MAX_BYTES) {
        size_t k = idx[used];
        sto_append *it = &items[k];
        if (it->fence != NULL) {
            size_t g = 1;
            while (used + g < n && g < FENCE_GROUP_MAX && cmds + 3 * (g + 1) <= PIPE_MAX_ITEMS &&
                   items[idx[used + g]].fence != NULL &&
                   strcmp(items[idx[used + g]].fence, it->fence) == 0 &&
                   strcmp(items[idx[used + g]].policy, it->policy) == 0) {
                g++;
            }
            e = queue_group(s, items, idx + used, g, sent, extra, group, &cmds, &bytes, ip);
            if (e != BASE_OK) {
                goto fail;
            }
            used += g;
            continue;
        }
        bool explicit_id = it->id != NULL && it->id[0] != '\0';
        const char *id = explicit_id ? it->id : "*";
        sent[k] = false;
        extra[k] = 0;
        group[k] = 0;
        base_buf_reset(&b);
        base_err ie = prepare(it, key, &b);
        if (ie != BASE_OK) {
            it->out_err = ie;
        } else {
            const char *argv[] = {"XADD", key, id, "r", (const char *)b.data};
            size_t lens[] = {4, strlen(key), strlen(id), 1, b.len};
            if (redisAppendCommandArgv(s->c, 5, argv, lens) != REDIS_OK) {
                e = BASE_EIO; /* hiredis OOM while formatting: the context is unusable */
                goto fail;
            }
            sent[k] = true;
            if (s->cluster) {
                s->conn[s->cur].dirty = true; /* sto_store_wait() covers this master */
            }
            bytes += b.len;
            cmds++;
            e = sto_queue_indexes(s, items, &k, 1, sent, extra, &cmds, ip);
            if (e != BASE_OK) {
                goto fail;
            }
        }
        used++;
    }
    e = sto_idx_flush(s, ip, out_tail);
    if (e == BASE_OK && tx && redisAppendCommand(s->c, "EXEC") != REDIS_OK) {
        e = BASE_EIO;
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

/* One master's share of a batch (the whole batch on a single Redis). */
typedef struct lane {
    int node;    /* index in the slot map; -1 on a single Redis */
    size_t *idx; /* its items, in batch order (points into one shared array) */
    size_t n;    /* how many */
    size_t done; /* sent and answered */
    size_t used; /* in the chunk in flight */
    size_t tail; /* replies after its items' (the chunk's event index) */
    bool broken; /* its connection was lost: its remaining items keep BASE_EIO */
    bool tx;     /* each chunk is one MULTI ... EXEC */
} lane;

/* Make s->c lane @l's connection. */
static base_err lane_route(sto_store *s, const lane *l)
{
    if (s->cluster) {
        return sto_route_node(s, (uint32_t)l->node);
    }
    return s->c != NULL ? BASE_OK : BASE_EIO;
}

/*
 * Whether error reply @r refuses the write without saying anything of the record itself,
 * so that the same write may succeed later: any error but a fence's refusal and an explicit
 * id at or below the stream's top (those are answered by the caller). Some pass on their
 * own (OOM with maxmemory, LOADING, READONLY, MISCONF, BUSY, NOREPLICAS, MASTERDOWN,
 * TRYAGAIN); others (NOPERM, WRONGTYPE on a foreign key, an unknown command) need an
 * operator. Either way the record is not dropped: its decision or outcome may be applied
 * already, and the streams must hold everything the model has seen.
 */
static bool refused_for_now(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR && r->str != NULL && strncmp(r->str, "FENCED ", 7) != 0 &&
           !is_behind_error(r);
}

const char *sto_store_refusal(const sto_store *s)
{
    return s->refusal;
}

const char *sto_store_strerror(const sto_store *s, base_err e, char *buf, size_t len)
{
    if ((e != BASE_ESTORE && e != BASE_EPROTO) || s == NULL || s->refusal[0] == '\0' || len == 0) {
        return base_strerror(e);
    }
    (void)snprintf(buf, len, "%s (%s)", base_strerror(e), s->refusal);
    return buf;
}

/* The result of one XADD reply @r (alone, or an element of a fenced group's) for @it. */
static void take_result(sto_store *s, sto_append *it, const redisReply *r, bool *unsettled)
{
    if (r->type == REDIS_REPLY_STRING && r->len > 0 && r->len <= BASE_STREAM_ID_MAX) {
        memcpy(it->out_id, r->str, r->len);
        it->out_id[r->len] = '\0';
        it->out_err = BASE_OK;
    } else if (sto_cluster_note(s, r)) {
        /* Not run (MOVED, ASK, CLUSTERDOWN...): BASE_EIO, to be sent again. */
        *unsettled = *unsettled || strncmp(r->str, "MOVED ", 6) != 0;
    } else if (refused_for_now(r)) {
        it->out_refused = true; /* out_err stays BASE_EIO: to be sent again */
        base_strlcpy(s->refusal, r->str, sizeof(s->refusal));
    } else if (r->type == REDIS_REPLY_ERROR && r->str != NULL &&
               strncmp(r->str, "FENCED ", 7) == 0) {
        it->out_err = BASE_ESTORE;
        it->out_fenced = true;
    } else {
        it->out_err = r->type == REDIS_REPLY_ERROR ? BASE_ESTORE : BASE_EPROTO;
        it->out_behind = r->type == REDIS_REPLY_ERROR && is_behind_error(r);
    }
}

/*
 * Where lane_read() takes a chunk's replies from: the connection, one by one; or, for a
 * chunk sent as one transaction, EXEC's array, read whole first.
 */
typedef struct reply_src {
    bool tx;          /* false: straight from the connection (then @drop: EXEC's after) */
    bool drop;        /* MULTI was refused, so the commands ran one by one, unqueued */
    bool aborted;     /* Redis refused the transaction: nothing of it was stored */
    redisReply *exec; /* EXEC's array, its elements in command order */
    size_t next;
} reply_src;

/* The number of replies lane_read() takes for lane @l's chunk in flight. */
static size_t chunk_replies(const lane *l, const bool *sent, const uint8_t *extra,
                            const uint16_t *group)
{
    size_t n = l->tail;
    for (size_t i = 0; i < l->used; i++) {
        size_t k = l->idx[l->done + i];
        if (sent[k]) {
            n += (group[k] == UINT16_MAX ? 0u : 1u) + extra[k];
        }
    }
    return n;
}

/*
 * Read MULTI's reply, the @n QUEUED (or refusals) and EXEC's reply into @src. A refusal
 * while queueing (OOM, READONLY, NOPERM on one key, CROSSSLOT, ...) or at EXEC makes Redis
 * discard the transaction (EXECABORT): @src->aborted. Should Redis refuse MULTI itself (an
 * ACL without it), the commands behind it ran one by one and answered for themselves: they
 * are read from the connection, and EXEC's error after them.
 */
static base_err tx_collect(sto_store *s, size_t n, reply_src *src)
{
    for (size_t i = 0; i < n + 2; i++) {
        void *rv = NULL;
        if (redisGetReply(s->c, &rv) != REDIS_OK) {
            return BASE_EIO;
        }
        redisReply *r = rv;
        if (i == 0 && !sto_is_status(r, "OK")) {
            freeReplyObject(r);
            src->tx = false;
            src->drop = true;
            return BASE_OK;
        }
        if (i == n + 1 && !src->aborted && r->type == REDIS_REPLY_ARRAY) {
            if (r->elements != n) {
                freeReplyObject(r);
                return BASE_EPROTO; /* not the commands sent: the connection is not trusted */
            }
            src->exec = r;
            continue;
        }
        if (i == n + 1 || r->type == REDIS_REPLY_ERROR) {
            src->aborted = true; /* a refusal queueing, or EXEC's error or nil */
        }
        freeReplyObject(r); /* else +OK for MULTI, +QUEUED for the rest */
    }
    return BASE_OK;
}

/* The next reply of the chunk into *@r; src_put() when done with it. */
static base_err src_get(sto_store *s, reply_src *src, redisReply **r)
{
    if (!src->tx) {
        void *rv = NULL;
        if (redisGetReply(s->c, &rv) != REDIS_OK) {
            return BASE_EIO;
        }
        *r = rv;
        return BASE_OK;
    }
    if (src->exec == NULL || src->next >= src->exec->elements) {
        return BASE_EPROTO; /* counted by chunk_replies(): cannot happen */
    }
    *r = src->exec->element[src->next++];
    return BASE_OK;
}

static void src_put(reply_src *src, redisReply *r)
{
    if (!src->tx) {
        freeReplyObject(r);
    }
}

static void src_fini(reply_src *src)
{
    if (src->exec != NULL) {
        freeReplyObject(src->exec);
    }
}

/* Read the replies of lane @l's chunk in flight on s->c. */
static base_err lane_read(sto_store *s, lane *l, sto_append *items, const bool *sent,
                          const uint8_t *extra, const uint16_t *group, bool *unsettled)
{
    reply_src src = {.tx = l->tx};
    base_err e = BASE_OK;
    if (l->tx) {
        e = tx_collect(s, chunk_replies(l, sent, extra, group), &src);
        if (e == BASE_OK && src.aborted) {
            /*
             * Nothing of the chunk was stored. The rest of this batch goes as a plain
             * pipeline, starting with this chunk again, so each command gets its own
             * answer: one refused key or index command holds back only its own item.
             * Later batches too, until one is stored without a refusal (s->tx_off).
             */
            l->used = 0;
            l->tail = 0;
            l->tx = false;
            s->tx_off = true;
            return BASE_OK;
        }
    }
    for (size_t i = 0; i < l->used && e == BASE_OK; i++) {
        size_t k = l->idx[l->done + i];
        if (!sent[k] || group[k] == UINT16_MAX) {
            continue; /* not sent, or a fenced group's member read with its head */
        }
        redisReply *r = NULL;
        e = src_get(s, &src, &r);
        if (e != BASE_OK) {
            break;
        }
        size_t members = group[k] > 0 ? group[k] : 1, seen = 0;
        /* The members are the next sent items of the chunk, in order. */
        for (size_t j = i; j < l->used && seen < members; j++) {
            size_t mk = l->idx[l->done + j];
            if (!sent[mk] || (j > i && group[mk] != UINT16_MAX)) {
                continue;
            }
            const redisReply *one = r;
            if (group[k] > 0 && r->type == REDIS_REPLY_ARRAY) {
                one = seen < r->elements ? r->element[seen] : NULL;
            }
            if (one != NULL) {
                take_result(s, &items[mk], one, unsettled);
            } else {
                items[mk].out_err = BASE_EPROTO;
            }
            seen++;
        }
        src_put(&src, r);
        /* The index is a lookup aid: its replies are read, never the item's result. */
        seen = 0;
        for (size_t j = i; j < l->used && seen < members && e == BASE_OK; j++) {
            size_t mk = l->idx[l->done + j];
            if (!sent[mk] || (j > i && group[mk] != UINT16_MAX)) {
                continue;
            }
            for (uint8_t x = 0; x < extra[mk] && e == BASE_OK; x++) {
                e = src_get(s, &src, &r);
                if (e == BASE_OK) {
                    src_put(&src, r);
                }
            }
            seen++;
        }
    }
    /* The chunk's event index: read, never the items' result. */
    for (; l->tail > 0 && e == BASE_OK; l->tail--) {
        redisReply *r = NULL;
        e = src_get(s, &src, &r);
        if (e == BASE_OK) {
            src_put(&src, r);
        }
    }
    if (e == BASE_OK && src.drop) {
        redisReply *r = NULL;
        e = src_get(s, &src, &r); /* EXEC's "without MULTI" */
        if (e == BASE_OK) {
            src_put(&src, r);
        }
    }
    src_fini(&src);
    if (e == BASE_OK) {
        l->done += l->used;
        l->used = 0;
    }
    return e;
}

/*
 * Split items[0..n) into lanes, one per master that serves one of them (in cluster mode;
 * else one lane). Items whose policy is invalid get BASE_EINVAL; items of a slot no master
 * serves keep BASE_EIO and set *unsettled. Returns the number of lanes.
 */
static size_t make_lanes(sto_store *s, sto_append *items, size_t n, size_t *order, lane *lanes,
                         bool *unsettled)
{
    if (!s->cluster) {
        for (size_t i = 0; i < n; i++) {
            order[i] = i;
        }
        lanes[0] = (lane){.node = -1, .idx = order, .n = n, .tx = !s->tx_off};
        return 1;
    }
    uint8_t owner_of[PIPE_MAX_ITEMS];
    size_t count[STO_CLUSTER_NODES_MAX + 1] = {0};
    char key[STO_KEY_MAX];
    for (size_t i = 0; i < n; i++) {
        uint8_t o = STO_CLUSTER_NODES_MAX; /* none */
        if (sto_stream_key(key, sizeof(key), items[i].kind, items[i].policy) != BASE_OK) {
            items[i].out_err = BASE_EINVAL;
        } else if (s->map->owner[sto_cluster_slot(key, strlen(key))] == STO_SLOT_UNSERVED) {
            *unsettled = true;
            s->stale = true;
        } else {
            o = s->map->owner[sto_cluster_slot(key, strlen(key))];
        }
        owner_of[i] = o;
        count[o]++;
    }
    size_t n_lanes = 0, at = 0;
    for (uint32_t k = 0; k < s->map->n_nodes; k++) {
        if (count[k] == 0) {
            continue;
        }
        lane *l = &lanes[n_lanes++];
        *l = (lane){.node = (int)k, .idx = order + at};
        for (size_t i = 0; i < n; i++) {
            if (owner_of[i] == k) {
                l->idx[l->n++] = i;
            }
        }
        at += l->n;
    }
    return n_lanes;
}

/* Write out everything queued on s->c (so that several masters work at once). */
static base_err flush(sto_store *s)
{
    int done = 0;
    while (!done) {
        if (redisBufferWrite(s->c, &done) != REDIS_OK) {
            return BASE_EIO;
        }
    }
    return BASE_OK;
}

/*
 * In cluster mode the items are split by master; each round queues one chunk on every
 * master, writes them all out, then reads each master's replies, so the masters store
 * their shares at the same time.
 */
base_err sto_store_append(sto_store *s, sto_append *items, size_t n)
{
    bool sent[PIPE_MAX_ITEMS];
    uint8_t extra[PIPE_MAX_ITEMS]; /* index replies after each XADD's */
    uint16_t group[PIPE_MAX_ITEMS];
    size_t order[PIPE_MAX_ITEMS];
    lane lanes[STO_CLUSTER_NODES_MAX];
    base_err e = BASE_OK;
    bool unsettled = false; /* a cluster redirection other than MOVED, or the cluster down */
    pipe_guard g;

    /* Until answered, an item's fate is unknown: that is what BASE_EIO means here. */
    for (size_t i = 0; i < n; i++) {
        items[i].out_err = BASE_EIO;
        items[i].out_id[0] = '\0';
        items[i].out_behind = false;
        items[i].out_fenced = false;
        items[i].out_refused = false;
    }
    if (n > PIPE_MAX_ITEMS) {
        /* Larger batches go in slices (the arrays above are sized for one). */
        for (size_t at = 0; at < n && e == BASE_OK; at += PIPE_MAX_ITEMS) {
            e = sto_store_append(s, items + at, n - at < PIPE_MAX_ITEMS ? n - at : PIPE_MAX_ITEMS);
        }
        return e;
    }
    if (n == 0) {
        return BASE_OK;
    }
    idx_pend ip;
    if (!sto_idx_pend_init(&ip, n)) {
        sto_idx_pend_fini(&ip);
        return BASE_ENOMEM; /* nothing sent: every item keeps BASE_EIO */
    }
    sto_guard_begin(&g);
    if (s->cluster && (s->map == NULL || s->stale) && sto_cluster_refresh(s, NULL, 0) != BASE_OK) {
        e = BASE_EIO;
        goto fail;
    }
    size_t n_lanes = make_lanes(s, items, n, order, lanes, &unsettled);
    for (;;) {
        bool any = false;
        for (size_t k = 0; k < n_lanes; k++) {
            lane *l = &lanes[k];
            if (l->broken || l->done == l->n) {
                continue;
            }
            base_err le = lane_route(s, l);
            if (le == BASE_OK) {
                le = queue_chunk(s, items, l->idx + l->done, l->n - l->done, l->tx, sent, extra,
                                 group, &ip, &l->used, &l->tail);
            }
            if (le == BASE_OK && s->cluster) {
                le = flush(s);
            }
            if (le != BASE_OK) {
                l->broken = true;
                e = BASE_EIO;
                sto_mark_broken(s);
                continue;
            }
            any = true;
        }
        if (!any) {
            break;
        }
        for (size_t k = 0; k < n_lanes; k++) {
            lane *l = &lanes[k];
            if (l->broken || l->used == 0) {
                continue;
            }
            base_err le = lane_route(s, l);
            if (le == BASE_OK) {
                le = lane_read(s, l, items, sent, extra, group, &unsettled);
            }
            if (le != BASE_OK) {
                l->broken = true;
                e = BASE_EIO;
                sto_mark_broken(s);
            }
        }
    }
    if (unsettled) {
        e = BASE_EIO; /* the caller backs off and reconnects, which reads the map again */
    }
    if (e == BASE_OK && s->tx_off) {
        bool refused = false;
        for (size_t i = 0; i < n; i++) {
            refused = refused || items[i].out_refused;
        }
        s->tx_off = refused; /* stored without a refusal: transactions again */
    }
fail:
    if (e != BASE_OK && !s->cluster) {
        sto_mark_broken(s);
    }
    sto_guard_end(&g);
    sto_idx_pend_fini(&ip);
    return e;
}
