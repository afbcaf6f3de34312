/*
 * storage/cluster against a real Redis Cluster: three masters on loopback ports (redis-cli
 * --cluster create), then the slot map parsed from CLUSTER SLOTS covers every slot, the slot
 * of 3 000 keys (rlfeed's and random ones) is what CLUSTER KEYSLOT says, and a command sent to
 * the wrong master is redirected (MOVED) to the master the map names, with the slot computed.
 * Every process is stopped and the directory removed at the end.
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "base/hash.h"
#include "proc.h"
#include "storage/cluster.h"
#include "tap.h"

#define N_MASTERS 3

typedef struct node {
    int port;
    pid_t pid;
    redisContext *c;
} node;

static bool port_pair_free(int *out)
{
    for (int tries = 0; tries < 50; tries++) {
        int p = tst_free_port();
        if (p > 0 && p + 10000 < 65536) {
            /* The cluster bus listens on port + 10000: it must be free too. */
            redisContext *probe = redisConnect("127.0.0.1", p + 10000);
            bool taken = probe != NULL && probe->err == 0;
            redisFree(probe);
            if (!taken) {
                *out = p;
                return true;
            }
        }
    }
    return false;
}

static bool start_node(char *dir, node *n)
{
    char port[16], conf[600], log[600];
    snprintf(port, sizeof(port), "%d", n->port);
    snprintf(conf, sizeof(conf), "nodes-%d.conf", n->port);
    snprintf(log, sizeof(log), "%s/redis-%d.log", dir, n->port);
    char *argv[] = {"redis-server",
                    "--port",
                    port,
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    conf,
                    "--dir",
                    dir,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    NULL};
    n->pid = tst_spawn(argv, log);
    int64_t deadline = tst_now_ms() + 10000;
    while (n->pid > 0 && tst_now_ms() < deadline) {
        struct timeval tv = {1, 0};
        n->c = redisConnectWithTimeout("127.0.0.1", n->port, tv);
        if (n->c != NULL && n->c->err == 0) {
            redisReply *r = redisCommand(n->c, "PING");
            bool ok = r != NULL && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
            if (ok) {
                return true;
            }
        }
        redisFree(n->c);
        n->c = NULL;
        tst_nap();
    }
    return false;
}

static bool cluster_ok(node *nodes)
{
    for (int i = 0; i < N_MASTERS; i++) {
        redisReply *r = redisCommand(nodes[i].c, "CLUSTER INFO");
        bool ok = r != NULL && r->type == REDIS_REPLY_STRING &&
                  strstr(r->str, "cluster_state:ok") != NULL;
        freeReplyObject(r);
        if (!ok) {
            return false;
        }
    }
    return true;
}

int main(void)
{
    char *dir = tst_mkdtemp("rlfeed-cluster");
    node nodes[N_MASTERS];
    memset(nodes, 0, sizeof(nodes));
    bool up = dir != NULL;
    for (int i = 0; up && i < N_MASTERS; i++) {
        up = port_pair_free(&nodes[i].port) && start_node(dir, &nodes[i]);
    }
    TST_TRUE(up);
    if (up) {
        char a[N_MASTERS][32], log[600];
        snprintf(log, sizeof(log), "%s/create.log", dir);
        for (int i = 0; i < N_MASTERS; i++) {
            snprintf(a[i], sizeof(a[i]), "127.0.0.1:%d", nodes[i].port);
        }
        char *argv[] = {"redis-cli",          "--cluster", "create",        a[0], a[1], a[2],
                        "--cluster-replicas", "0",         "--cluster-yes", NULL};
        pid_t pid = tst_spawn(argv, log);
        int status = -1;
        up = pid > 0 && tst_wait_exit(pid, 30000, &status) && status == 0;
        if (!up) {
            tst_print_file(log);
        }
        int64_t deadline = tst_now_ms() + 20000;
        while (up && !cluster_ok(nodes) && tst_now_ms() < deadline) {
            tst_nap();
        }
        up = up && cluster_ok(nodes);
        TST_TRUE(up);
    }
    if (up) {
        sto_slot_map m;
        redisReply *r = redisCommand(nodes[0].c, "CLUSTER SLOTS");
        TST_OK(sto_slot_map_parse(r, &m));
        freeReplyObject(r);
        TST_EQ(m.n_nodes, N_MASTERS);
        TST_TRUE(sto_slot_map_complete(&m));

        int same = 0, redirected = 0, routed = 0;
        uint64_t rng = 7;
        for (int i = 0; i < 3000; i++) {
            char key[96];
            if (i % 2 == 0) {
                snprintf(key, sizeof(key), "rlfeed:{policy-%d}:%s", i / 2,
                         i % 4 == 0 ? "decisions" : "model:7");
            } else {
                snprintf(key, sizeof(key), "k%016llx", (unsigned long long)base_splitmix64(&rng));
            }
            uint16_t ours = sto_cluster_slot(key, strlen(key));
            r = redisCommand(nodes[0].c, "CLUSTER KEYSLOT %s", key);
            same += r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == ours;
            freeReplyObject(r);
            /* The map's master takes the key; another one redirects to it. */
            const sto_cluster_node *owner = &m.node[m.owner[ours]];
            for (int k = 0; k < N_MASTERS; k++) {
                r = redisCommand(nodes[k].c, "SET %s v", key);
                bool is_owner = nodes[k].port == owner->port;
                if (is_owner) {
                    routed += r != NULL && r->type == REDIS_REPLY_STATUS;
                } else if (r != NULL && r->type == REDIS_REPLY_ERROR) {
                    uint16_t s = 0;
                    sto_cluster_node to;
                    redirected +=
                        sto_cluster_redirect(r->str, r->len, &s, &to) == STO_REDIRECT_MOVED &&
                        s == ours && to.port == owner->port;
                }
                freeReplyObject(r);
            }
        }
        printf("# 3000 keys: slot as CLUSTER KEYSLOT %d, stored by the map's master %d, "
               "redirected there by the others %d of 6000\n",
               same, routed, redirected);
        TST_EQ(same, 3000);
        TST_EQ(routed, 3000);
        TST_EQ(redirected, 6000);
    }
    for (int i = 0; i < N_MASTERS; i++) {
        redisFree(nodes[i].c);
        if (nodes[i].pid > 0) {
            tst_stop(nodes[i].pid, 5000);
        }
    }
    if (dir != NULL) {
        tst_rm_rf(dir);
        free(dir);
    }
    return tst_done();
}
