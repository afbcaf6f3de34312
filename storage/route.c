/*
 * The Redis Cluster mode of a sto_store (a cluster:// URL): the slot map, a connection per
 * master opened on first use, each command routed to the master that serves its key's hash
 * slot, and the redirections of the Redis Cluster specification: MOVED (read the map again
 * and resend), ASK (resend this one command to the importing master, after ASKING), and a
 * bounded retry with backoff while the cluster answers CLUSTERDOWN, TRYAGAIN, READONLY (a
 * demoted master) or LOADING. storage/cluster.c has the pure parts (CRC16, CLUSTER SLOTS,
 * MOVED/ASK parsing).
 *
 * A command never follows a redirection it did not get: a connection lost with a command
 * in flight is BASE_EIO (its fate is unknown), as on a single Redis.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/alloc.h"
#include "storage/store_impl.h"

#define REDIRECTS_MAX 5 /* MOVED and ASK followed for one command */
#define DOWN_NAP_MIN_MS 10
#define DOWN_NAP_MAX_MS 200

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sto_cluster_drop(sto_store *s, int i)
{
    uint32_t n = s->map != NULL ? s->map->n_nodes : 0;
    for (uint32_t k = 0; k < n; k++) {
        if ((i == STO_CLUSTER_NODES_MAX || (int)k == i) && s->conn[k].c != NULL) {
            redisFree(s->conn[k].c);
            s->conn[k].c = NULL;
            s->conn[k].dirty = false;
        }
    }
    if (i == STO_CLUSTER_NODES_MAX || i == s->cur) {
        s->c = NULL;
        s->cur = -1;
    }
    s->stale = true; /* a lost master may have failed over: read the map again */
}

/* Whether the node on @c says cluster_state:ok (false also when it cannot say). */
static bool state_ok(redisContext *c)
{
    pipe_guard g;
    sto_guard_begin(&g);
    redisReply *r = redisCommand(c, "CLUSTER INFO");
    sto_guard_end(&g);
    bool ok = r != NULL && r->type == REDIS_REPLY_STRING && r->str != NULL &&
              strstr(r->str, "cluster_state:ok") != NULL;
    if (r != NULL) {
        freeReplyObject(r);
    }
    return ok;
}

/*
 * CLUSTER SLOTS on @c into @m; *out_ok whether that node says the cluster is ok. BASE_ESTORE
 * with a reason for an error reply.
 */
static base_err slots_from(redisContext *c, const char *host, const char *where, sto_slot_map *m,
                           bool *out_ok, char *errbuf, size_t errlen)
{
    pipe_guard g;
    *out_ok = state_ok(c);
    sto_guard_begin(&g);
    redisReply *r = redisCommand(c, "CLUSTER SLOTS");
    sto_guard_end(&g);
    if (r == NULL) {
        return BASE_EIO;
    }
    base_err e = BASE_OK;
    if (r->type == REDIS_REPLY_ERROR) {
        e = BASE_ESTORE;
        if (errbuf != NULL && errlen > 0) {
            (void)snprintf(errbuf, errlen, "redis at %s is not a usable cluster node: %s", where,
                           r->str != NULL ? r->str : "");
        }
    } else {
        e = sto_slot_map_parse(r, host, m);
        if (e == BASE_OK && m->n_nodes == 0) {
            e = BASE_EIO; /* a node that knows no slots yet (joining): ask another */
        }
    }
    freeReplyObject(r);
    return e;
}

/* Take @m as the map: keep the connections of masters it still names, close the others. */
static void install(sto_store *s, sto_slot_map *m)
{
    sto_node_conn kept[STO_CLUSTER_NODES_MAX];
    memset(kept, 0, sizeof(kept));
    uint32_t n_old = s->map != NULL ? s->map->n_nodes : 0;
    for (uint32_t k = 0; k < n_old; k++) {
        if (s->conn[k].c == NULL) {
            continue;
        }
        uint32_t j = 0;
        while (j < m->n_nodes && (strcmp(m->node[j].host, s->map->node[k].host) != 0 ||
                                  m->node[j].port != s->map->node[k].port)) {
            j++;
        }
        if (j < m->n_nodes) {
            kept[j] = s->conn[k];
        } else {
            redisFree(s->conn[k].c);
        }
    }
    memcpy(s->conn, kept, sizeof(kept));
    base_free(s->map);
    s->map = m;
    s->c = NULL;
    s->cur = -1;
    s->stale = false;
}

/*
 * Read the map. A node that says the cluster is not ok (a master restarted from an old
 * nodes file that has not yet learnt its slots moved, a node cut off) may describe a map
 * that is no longer true, so the first map of a node that says ok is taken; only when no
 * node says ok is the first map read taken (the commands then meet CLUSTERDOWN and retry).
 */
base_err sto_cluster_refresh(sto_store *s, char *errbuf, size_t errlen)
{
    sto_slot_map *m = base_alloc_zero(1, sizeof(*m));
    sto_slot_map *fallback = NULL;
    base_err e = BASE_EIO;
    if (m == NULL) {
        return BASE_ENOMEM;
    }
    if (errbuf != NULL && errlen > 0) {
        (void)snprintf(errbuf, errlen, "cannot reach any node of the redis cluster");
    }
    /* Ask the masters already connected, then those of the map, then the URL's nodes. */
    uint32_t n_map = s->map != NULL ? s->map->n_nodes : 0;
    for (uint32_t pass = 0; pass < 3 && e != BASE_OK; pass++) {
        uint32_t n = pass == 2 ? s->n_seeds : n_map;
        for (uint32_t k = 0; k < n && e != BASE_OK; k++) {
            const sto_cluster_node *node = pass == 2 ? &s->seed[k] : &s->map->node[k];
            redisContext *c = pass < 2 ? s->conn[k].c : NULL;
            if ((pass == 0) != (c != NULL)) {
                continue;
            }
            char where[STO_CLUSTER_HOST_MAX + 8];
            (void)snprintf(where, sizeof(where), "%s:%u", node->host, (unsigned)node->port);
            redisContext *tmp = NULL;
            if (c == NULL) {
                base_err ce = sto_open_ctx(s, node->host, node->port, &tmp, errbuf, errlen);
                if (ce == BASE_ESTORE || ce == BASE_ENOMEM) {
                    e = ce; /* credentials refused: no other node will take them either */
                    break;
                }
                c = tmp;
            }
            if (c != NULL) {
                bool ok = false;
                base_err se = slots_from(c, node->host, where, m, &ok, errbuf, errlen);
                if (se == BASE_OK && !ok) {
                    if (fallback == NULL) {
                        fallback = m;
                        m = base_alloc_zero(1, sizeof(*m));
                        if (m == NULL) {
                            m = fallback; /* out of memory: take the map we have */
                            fallback = NULL;
                            e = BASE_OK;
                            break;
                        }
                    }
                    se = BASE_EIO; /* ask the next node */
                }
                e = se == BASE_OK ? BASE_OK : (se == BASE_ESTORE ? se : e);
                if (se == BASE_EIO && tmp == NULL) {
                    redisFree(s->conn[k].c); /* a connected master that no longer answers */
                    s->conn[k].c = NULL;
                    s->conn[k].dirty = false;
                }
            }
            if (tmp != NULL) {
                redisFree(tmp);
            }
        }
        if (e == BASE_ESTORE || e == BASE_ENOMEM) {
            break;
        }
    }
    if (e != BASE_OK && fallback != NULL && e != BASE_ESTORE && e != BASE_ENOMEM) {
        base_free(m);
        m = fallback; /* no node says ok: the first map read */
        fallback = NULL;
        e = BASE_OK;
    }
    base_free(fallback);
    if (e != BASE_OK) {
        base_free(m);
        s->c = NULL;
        s->cur = -1;
        s->stale = true;
        return e;
    }
    install(s, m);
    return BASE_OK;
}

base_err sto_route_node(sto_store *s, uint32_t k)
{
    if (s->conn[k].c == NULL) {
        base_err e =
            sto_open_ctx(s, s->map->node[k].host, s->map->node[k].port, &s->conn[k].c, NULL, 0);
        if (e != BASE_OK) {
            s->conn[k].c = NULL;
            s->c = NULL;
            s->cur = -1;
            s->stale = true;
            return e == BASE_ESTORE ? BASE_ESTORE : BASE_EIO;
        }
        s->conn[k].dirty = false;
    }
    s->c = s->conn[k].c;
    s->cur = (int)k;
    return BASE_OK;
}

static base_err route_slot(sto_store *s, uint16_t slot)
{
    if (s->map == NULL || s->stale) {
        base_err e = sto_cluster_refresh(s, NULL, 0);
        if (e != BASE_OK) {
            return e == BASE_ENOMEM ? e : BASE_EIO;
        }
    }
    uint8_t k = s->map->owner[slot];
    if (k == STO_SLOT_UNSERVED || k >= s->map->n_nodes) {
        s->stale = true;
        s->c = NULL;
        s->cur = -1;
        return BASE_EIO;
    }
    return sto_route_node(s, k);
}

base_err sto_route_key(sto_store *s, const char *key, size_t n)
{
    return s->cluster ? route_slot(s, sto_cluster_slot(key, n)) : BASE_OK;
}

base_err sto_route_policy(sto_store *s, const char *policy)
{
    if (!s->cluster) {
        return BASE_OK;
    }
    /* The slot of rlfeed:{policy}:... is that of the policy's name (the hash tag). */
    size_t n = policy != NULL ? strlen(policy) : 0;
    return route_slot(s, n > 0 ? sto_cluster_slot(policy, n) : 0);
}

/* The errors after which the same command may succeed once the cluster has settled. */
static bool is_unsettled(const redisReply *r)
{
    static const char *const words[] = {"CLUSTERDOWN ", "TRYAGAIN ", "READONLY ", "LOADING ",
                                        "MASTERDOWN "};
    for (size_t i = 0; r->str != NULL && i < sizeof(words) / sizeof(words[0]); i++) {
        if (strncmp(r->str, words[i], strlen(words[i])) == 0) {
            return true;
        }
    }
    return false;
}

bool sto_cluster_note(sto_store *s, const redisReply *r)
{
    uint16_t slot = 0;
    sto_cluster_node node;
    if (!s->cluster || r == NULL || r->type != REDIS_REPLY_ERROR || r->str == NULL) {
        return false;
    }
    if (sto_cluster_redirect(r->str, r->len, &slot, &node) != STO_REDIRECT_NONE ||
        is_unsettled(r)) {
        s->stale = true;
        return true;
    }
    return false;
}

/* The key a command routes by (false: none, any master answers it). */
static bool command_key(int argc, const char **argv, const size_t *lens, const char **key,
                        size_t *n)
{
    static const char *const keyless[] = {"WAIT",    "PING",    "AUTH",   "MULTI",  "EXEC",
                                          "ASKING",  "CLUSTER", "INFO",   "SCRIPT", "CONFIG",
                                          "DISCARD", "ROLE",    "DBSIZE", "TIME"};
    int at = 1;
    if (argc < 2) {
        return false;
    }
    for (size_t i = 0; i < sizeof(keyless) / sizeof(keyless[0]); i++) {
        if (strcasecmp(argv[0], keyless[i]) == 0) {
            return false;
        }
    }
    if (strcasecmp(argv[0], "EVAL") == 0 || strcasecmp(argv[0], "EVALSHA") == 0) {
        if (argc < 4 || (lens[2] == 1 && argv[2][0] == '0')) {
            return false; /* no keys */
        }
        at = 3;
    } else if (strcasecmp(argv[0], "XINFO") == 0 || strcasecmp(argv[0], "XGROUP") == 0) {
        at = 2;
    }
    if (at >= argc) {
        return false;
    }
    *key = argv[at];
    *n = lens[at];
    return true;
}

/* The index in the map of master @node; refreshes the map once if it is not there. */
static int node_index(sto_store *s, const sto_cluster_node *node)
{
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t k = 0; s->map != NULL && k < s->map->n_nodes; k++) {
            if (strcmp(s->map->node[k].host, node->host) == 0 &&
                s->map->node[k].port == node->port) {
                return (int)k;
            }
        }
        if (pass == 0 && sto_cluster_refresh(s, NULL, 0) != BASE_OK) {
            break;
        }
    }
    return -1;
}

base_err sto_cluster_run(sto_store *s, int argc, const char **argv, const size_t *lens,
                         redisReply **out)
{
    const char *key = NULL;
    size_t kn = 0;
    bool keyed = command_key(argc, argv, lens, &key, &kn);
    int64_t deadline = now_ms() + s->timeout_ms;
    int redirects = 0, nap = DOWN_NAP_MIN_MS, ask = -1;

    for (;;) {
        base_err e = BASE_OK;
        if (ask >= 0) {
            e = sto_route_node(s, (uint32_t)ask);
        } else if (keyed) {
            e = route_slot(s, sto_cluster_slot(key, kn));
        } else if (s->c == NULL || s->stale) {
            e = route_slot(s, 0); /* any master */
        }
        if (e == BASE_OK && ask >= 0) {
            const char *asking[] = {"ASKING"};
            size_t asking_len[] = {6};
            redisReply *ar = NULL;
            e = sto_run_here(s, 1, asking, asking_len, &ar);
            if (ar != NULL) {
                freeReplyObject(ar);
            }
        }
        ask = -1;
        if (e != BASE_OK) {
            return e;
        }
        redisReply *r = NULL;
        e = sto_run_here(s, argc, argv, lens, &r);
        if (e != BASE_OK) {
            return e;
        }
        uint16_t slot = 0;
        sto_cluster_node node;
        sto_redirect rd = r->type == REDIS_REPLY_ERROR && r->str != NULL
                              ? sto_cluster_redirect(r->str, r->len, &slot, &node)
                              : STO_REDIRECT_NONE;
        bool unsettled = rd == STO_REDIRECT_NONE && r->type == REDIS_REPLY_ERROR && is_unsettled(r);
        if (rd != STO_REDIRECT_NONE && redirects < REDIRECTS_MAX) {
            redirects++;
            if (rd == STO_REDIRECT_MOVED) {
                s->stale = true;
            } else {
                ask = node_index(s, &node);
            }
            if (rd == STO_REDIRECT_MOVED || ask >= 0) {
                freeReplyObject(r);
                continue;
            }
        }
        if (unsettled && now_ms() + nap <= deadline) {
            s->stale = true;
            freeReplyObject(r);
            nap_ms(nap);
            nap = nap * 2 > DOWN_NAP_MAX_MS ? DOWN_NAP_MAX_MS : nap * 2;
            continue;
        }
        (void)sto_cluster_note(s, r);
        *out = r;
        return BASE_OK;
    }
}

/* "WAIT n timeout_ms" as an argument vector. */
typedef struct wait_cmd {
    char num[16], ms[16];
    const char *argv[3];
    size_t lens[3];
} wait_cmd;

static void wait_cmd_init(wait_cmd *w, uint32_t n, uint32_t timeout_ms)
{
    (void)snprintf(w->num, sizeof(w->num), "%u", n);
    (void)snprintf(w->ms, sizeof(w->ms), "%u", timeout_ms);
    w->argv[0] = "WAIT";
    w->argv[1] = w->num;
    w->argv[2] = w->ms;
    w->lens[0] = 4;
    w->lens[1] = strlen(w->num);
    w->lens[2] = strlen(w->ms);
}

/* @w on node @k; its count into *out. */
static base_err wait_on(sto_store *s, uint32_t k, wait_cmd *w, uint32_t *out)
{
    redisReply *r = NULL;
    base_err e = sto_route_node(s, k);
    if (e == BASE_OK) {
        e = sto_run_here(s, 3, w->argv, w->lens, &r);
    }
    if (e != BASE_OK) {
        return e;
    }
    s->conn[k].dirty = false;
    bool ok = r->type == REDIS_REPLY_INTEGER && r->integer >= 0;
    if (ok) {
        *out = (uint64_t)r->integer > UINT32_MAX ? UINT32_MAX : (uint32_t)r->integer;
    }
    e = ok ? BASE_OK : (r->type == REDIS_REPLY_ERROR ? BASE_ESTORE : BASE_EPROTO);
    freeReplyObject(r);
    return e;
}

base_err sto_cluster_wait(sto_store *s, uint32_t n, uint32_t timeout_ms, uint32_t *out_acked)
{
    wait_cmd w;
    wait_cmd_init(&w, n, timeout_ms);
    uint32_t least = UINT32_MAX;
    int prev = s->cur;
    bool any = false;

    for (uint32_t k = 0; s->map != NULL && k <= s->map->n_nodes; k++) {
        /* Every master appended to; with none, the current connection (as on one Redis). */
        bool last = k == s->map->n_nodes;
        if (last ? any || prev < 0 : !s->conn[k].dirty) {
            continue;
        }
        uint32_t at = last ? (uint32_t)prev : k, got = 0;
        any = true;
        base_err e = wait_on(s, at, &w, &got);
        if (e != BASE_OK) {
            return e;
        }
        least = got < least ? got : least;
    }
    if (!any) {
        return BASE_EIO; /* no connection at all: nothing can be confirmed */
    }
    *out_acked = least;
    return BASE_OK;
}

base_err sto_cluster_wait_policies(sto_store *s, const char *const *policy, size_t n_policy,
                                   uint32_t n, uint32_t timeout_ms, uint32_t *out_acked)
{
    wait_cmd w;
    wait_cmd_init(&w, n, timeout_ms);
    if (s->map == NULL || s->stale) {
        base_err e = sto_cluster_refresh(s, NULL, 0);
        if (e != BASE_OK) {
            return e == BASE_ENOMEM ? e : BASE_EIO;
        }
    }
    /* One WAIT per master the policies live on, each policy given its master's count. */
    bool asked[STO_CLUSTER_NODES_MAX] = {false};
    uint32_t count[STO_CLUSTER_NODES_MAX] = {0};
    for (size_t i = 0; i < n_policy; i++) {
        size_t len = strlen(policy[i]);
        uint8_t k = s->map->owner[len > 0 ? sto_cluster_slot(policy[i], len) : 0];
        if (k == STO_SLOT_UNSERVED || k >= s->map->n_nodes) {
            s->stale = true;
            return BASE_EIO; /* no master for it now: nothing can be confirmed */
        }
        if (!asked[k]) {
            base_err e = wait_on(s, k, &w, &count[k]);
            if (e != BASE_OK) {
                return e;
            }
            asked[k] = true;
        }
        out_acked[i] = count[k];
    }
    return BASE_OK;
}

base_err sto_cluster_ping(sto_store *s)
{
    if (s->map == NULL || s->stale) {
        base_err e = sto_cluster_refresh(s, NULL, 0);
        if (e != BASE_OK) {
            return e == BASE_ENOMEM ? e : BASE_EIO;
        }
    }
    if (!sto_slot_map_complete(s->map)) {
        s->stale = true;
        return BASE_EIO; /* some slots have no master: the cluster is not whole */
    }
    const char *argv[] = {"CLUSTER", "INFO"};
    size_t lens[] = {7, 4};
    for (uint32_t k = 0; k < s->map->n_nodes; k++) {
        redisReply *r = NULL;
        base_err e = sto_route_node(s, k);
        if (e == BASE_OK) {
            e = sto_run_here(s, 2, argv, lens, &r);
        }
        if (e != BASE_OK) {
            return e;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            e = BASE_ESTORE; /* LOADING, MISCONF, ... */
        } else if (r->type != REDIS_REPLY_STRING || r->str == NULL) {
            e = BASE_EPROTO;
        } else if (strstr(r->str, "cluster_state:ok") == NULL) {
            s->stale = true;
            e = BASE_EIO; /* the cluster is down, or this master has not caught up yet */
        }
        freeReplyObject(r);
        if (e != BASE_OK) {
            return e;
        }
    }
    return BASE_OK;
}
