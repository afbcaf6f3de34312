#ifndef STORAGE_CLUSTER_H
#define STORAGE_CLUSTER_H

/*
 * Redis Cluster routing, as the Redis Cluster specification says (issue 16; hiredis 0.14
 * has none and Debian ships no cluster client): the hash slot of a key, the slot map of a
 * CLUSTER SLOTS reply, and the MOVED and ASK redirections. Pure functions and plain data:
 * the store (storage/redis.c) routes with them.
 *
 * - Slot: CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0, no reflection, no final xor)
 *   of the key modulo 16384; when the key holds a "{" followed later by a "}" with at least
 *   one byte between them, only the bytes between the first "{" and the first "}" after it
 *   are hashed (a hash tag). rlfeed's keys are rlfeed:{<policy>}:..., so one policy's keys
 *   share a slot and its multi-key scripts stay legal.
 * - Slot map: for each of the 16384 slots, the master serving it (host and port), from the
 *   ranges CLUSTER SLOTS lists (each: first slot, last slot, master, then replicas).
 * - Redirections: "MOVED <slot> <host>:<port>" (the slot lives there now: refresh the map)
 *   and "ASK <slot> <host>:<port>" (this one command goes there, preceded by ASKING).
 *
 * Threads: none inside; a map is read-only once parsed.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define STO_CLUSTER_SLOTS 16384
#define STO_CLUSTER_NODES_MAX 64 /* distinct masters a map may name */
#define STO_CLUSTER_HOST_MAX 255

struct redisReply;

/* The CRC16 of @n bytes at @p (XMODEM), and the hash slot of key @key of @n bytes. */
uint16_t sto_crc16(const void *p, size_t n);
uint16_t sto_cluster_slot(const char *key, size_t n);

typedef struct sto_cluster_node {
    char host[STO_CLUSTER_HOST_MAX + 1];
    uint16_t port;
} sto_cluster_node;

typedef struct sto_slot_map {
    uint32_t n_nodes;
    sto_cluster_node node[STO_CLUSTER_NODES_MAX];
    uint8_t owner[STO_CLUSTER_SLOTS]; /* index into node; 0xff: no master serves the slot */
} sto_slot_map;

#define STO_SLOT_UNSERVED 0xff

/*
 * sto_slot_map_parse() - the map of the CLUSTER SLOTS reply @r (slots no range covers are
 * STO_SLOT_UNSERVED), asked of a node at @self_host: a master named with an empty or NULL
 * host (a node that has not learnt its own address, as in a cluster of one) is there.
 * Return: BASE_OK; BASE_EPROTO for a reply of another shape (a range out of order or past
 *         16383, a port out of range, a host too long); BASE_ELIMIT past
 *         STO_CLUSTER_NODES_MAX masters.
 */
base_err sto_slot_map_parse(const struct redisReply *r, const char *self_host, sto_slot_map *out);

/* Whether every slot is served (the cluster is usable as a whole). */
bool sto_slot_map_complete(const sto_slot_map *m);

typedef enum sto_redirect {
    STO_REDIRECT_NONE = 0, /* not a redirection */
    STO_REDIRECT_MOVED,
    STO_REDIRECT_ASK,
} sto_redirect;

/*
 * sto_cluster_redirect() - the redirection an error reply's text @err (@n bytes) asks for,
 * with its slot and node; STO_REDIRECT_NONE for any other error (TRYAGAIN, CLUSTERDOWN,
 * ... included) or a malformed one.
 */
sto_redirect sto_cluster_redirect(const char *err, size_t n, uint16_t *out_slot,
                                  sto_cluster_node *out_node);

#endif
