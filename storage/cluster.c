#include "storage/cluster.h"

#include <hiredis/hiredis.h>
#include <string.h>

uint16_t sto_crc16(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)((uint16_t)b[i] << 8);
        for (int k = 0; k < 8; k++) {
            crc = (crc & 0x8000u) != 0 ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

uint16_t sto_cluster_slot(const char *key, size_t n)
{
    const char *open = memchr(key, '{', n);
    if (open != NULL) {
        size_t at = (size_t)(open - key) + 1;
        const char *close = memchr(open + 1, '}', n - at);
        if (close != NULL && close > open + 1) {
            return (uint16_t)(sto_crc16(open + 1, (size_t)(close - open - 1)) % STO_CLUSTER_SLOTS);
        }
    }
    return (uint16_t)(sto_crc16(key, n) % STO_CLUSTER_SLOTS);
}

/*
 * A node entry of CLUSTER SLOTS: [host, port, id?, ...] into @out. An empty or NULL host (a
 * node that has not learnt its own address: a cluster of one) is @self_host.
 */
static bool node_of(const redisReply *e, const char *self_host, sto_cluster_node *out)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
        e->element[1]->type != REDIS_REPLY_INTEGER || e->element[1]->integer < 1 ||
        e->element[1]->integer > 65535) {
        return false;
    }
    const redisReply *h = e->element[0];
    bool unknown = h->type == REDIS_REPLY_NIL || (h->type == REDIS_REPLY_STRING && h->len == 0);
    if (unknown && self_host != NULL && self_host[0] != '\0' &&
        strlen(self_host) <= STO_CLUSTER_HOST_MAX) {
        strcpy(out->host, self_host);
    } else if (h->type == REDIS_REPLY_STRING && h->len > 0 && h->len <= STO_CLUSTER_HOST_MAX) {
        memcpy(out->host, h->str, h->len);
        out->host[h->len] = '\0';
    } else {
        return false;
    }
    out->port = (uint16_t)e->element[1]->integer;
    return true;
}

base_err sto_slot_map_parse(const redisReply *r, const char *self_host, sto_slot_map *out)
{
    memset(out, 0, sizeof(*out));
    memset(out->owner, STO_SLOT_UNSERVED, sizeof(out->owner));
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        return BASE_EPROTO;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *range = r->element[i];
        sto_cluster_node master;
        if (range->type != REDIS_REPLY_ARRAY || range->elements < 3 ||
            range->element[0]->type != REDIS_REPLY_INTEGER ||
            range->element[1]->type != REDIS_REPLY_INTEGER ||
            !node_of(range->element[2], self_host, &master)) {
            return BASE_EPROTO;
        }
        long long lo = range->element[0]->integer, hi = range->element[1]->integer;
        if (lo < 0 || hi < lo || hi >= STO_CLUSTER_SLOTS) {
            return BASE_EPROTO;
        }
        uint32_t k = 0;
        while (k < out->n_nodes &&
               (strcmp(out->node[k].host, master.host) != 0 || out->node[k].port != master.port)) {
            k++;
        }
        if (k == out->n_nodes) {
            if (out->n_nodes == STO_CLUSTER_NODES_MAX) {
                return BASE_ELIMIT;
            }
            out->node[out->n_nodes++] = master;
        }
        memset(out->owner + lo, (int)k, (size_t)(hi - lo + 1));
    }
    return BASE_OK;
}

bool sto_slot_map_complete(const sto_slot_map *m)
{
    return memchr(m->owner, STO_SLOT_UNSERVED, sizeof(m->owner)) == NULL;
}

sto_redirect sto_cluster_redirect(const char *err, size_t n, uint16_t *out_slot,
                                  sto_cluster_node *out_node)
{
    sto_redirect kind = STO_REDIRECT_NONE;
    size_t at = 0;
    if (n > 6 && memcmp(err, "MOVED ", 6) == 0) {
        kind = STO_REDIRECT_MOVED;
        at = 6;
    } else if (n > 4 && memcmp(err, "ASK ", 4) == 0) {
        kind = STO_REDIRECT_ASK;
        at = 4;
    } else {
        return STO_REDIRECT_NONE;
    }
    uint32_t slot = 0;
    size_t digits = 0;
    while (at < n && err[at] >= '0' && err[at] <= '9' && digits < 6) {
        slot = slot * 10 + (uint32_t)(err[at++] - '0');
        digits++;
    }
    if (digits == 0 || slot >= STO_CLUSTER_SLOTS || at >= n || err[at] != ' ') {
        return STO_REDIRECT_NONE;
    }
    at++;
    /* host:port, the port after the last colon (an IPv6 host holds colons too) */
    size_t end = n;
    while (end > at && (err[end - 1] == '\r' || err[end - 1] == '\n' || err[end - 1] == ' ')) {
        end--;
    }
    size_t colon = end;
    while (colon > at && err[colon - 1] != ':') {
        colon--;
    }
    if (colon <= at + 1 || colon == end || colon - 1 - at > STO_CLUSTER_HOST_MAX) {
        return STO_REDIRECT_NONE;
    }
    uint32_t port = 0;
    for (size_t i = colon; i < end; i++) {
        if (err[i] < '0' || err[i] > '9' || port > 65535) {
            return STO_REDIRECT_NONE;
        }
        port = port * 10 + (uint32_t)(err[i] - '0');
    }
    if (port < 1 || port > 65535) {
        return STO_REDIRECT_NONE;
    }
    memcpy(out_node->host, err + at, colon - 1 - at);
    out_node->host[colon - 1 - at] = '\0';
    out_node->port = (uint16_t)port;
    *out_slot = (uint16_t)slot;
    return kind;
}
