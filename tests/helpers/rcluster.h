#ifndef TESTS_HELPERS_RCLUSTER_H
#define TESTS_HELPERS_RCLUSTER_H

/*
 * A Redis Cluster for integration tests: masters and their replicas on loopback ports in a
 * temporary directory, created with redis-cli --cluster create, stopped and removed by
 * tst_rcluster_stop(). Readiness is polled with a deadline, never slept for.
 */

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <sys/types.h>

#define TST_RC_MAX 8

typedef struct tst_rnode {
    int port;
    pid_t pid; /* 0 once killed */
    redisContext *c;
} tst_rnode;

typedef struct tst_rcluster {
    char *dir;
    int n; /* nodes: the masters first, then the replicas */
    tst_rnode node[TST_RC_MAX];
    char url[256]; /* "cluster://127.0.0.1:P,127.0.0.1:P,..." (every node) */
    int node_timeout_ms;
    bool aof;
} tst_rcluster;

/*
 * Start @masters masters with @replicas replicas each (cluster-node-timeout
 * @node_timeout_ms, appendonly with appendfsync always when @aof), create the cluster and
 * wait until every node says cluster_state:ok and every replica is in sync.
 */
bool tst_rcluster_start(tst_rcluster *c, int masters, int replicas, int node_timeout_ms, bool aof);

/* Whether every running node says cluster_state:ok and agrees on the masters. */
bool tst_rcluster_ok(tst_rcluster *c);

/* The node now serving @key's slot as a master (asked of a running node); -1 if none. */
int tst_rcluster_master_of(tst_rcluster *c, const char *key);

/* A node replicating @key's slot's master (asked of a running node); -1 if none. */
int tst_rcluster_replica_of(tst_rcluster *c, const char *key);

/* kill -9 node @i and reap it. */
void tst_rcluster_kill(tst_rcluster *c, int i);

/* Start killed node @i again on its port with its nodes file (it rejoins the cluster). */
bool tst_rcluster_restart(tst_rcluster *c, int i);

/* Stop every node and remove the directory. */
void tst_rcluster_stop(tst_rcluster *c);

#endif
