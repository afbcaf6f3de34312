#include "rcluster.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "proc.h"

/* A free port whose cluster bus port (port + 10000) is free too. */
static bool port_pair_free(int *out)
{
    for (int tries = 0; tries < 50; tries++) {
        int p = tst_free_port();
        if (p > 0 && p + 10000 < 65536) {
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

static bool start_node(char *dir, tst_rnode *n, int node_timeout_ms, bool aof)
{
    char port[16], conf[64], log[600], nto[16], adir[64];
    snprintf(port, sizeof(port), "%d", n->port);
    snprintf(conf, sizeof(conf), "nodes-%d.conf", n->port);
    snprintf(log, sizeof(log), "%s/redis-%d.log", dir, n->port);
    snprintf(nto, sizeof(nto), "%d", node_timeout_ms);
    snprintf(adir, sizeof(adir), "aof-%d", n->port);
    char *argv[] = {"redis-server",
                    "--port",
                    port,
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    conf,
                    "--cluster-node-timeout",
                    nto,
                    "--dir",
                    dir,
                    "--save",
                    "",
                    "--appendonly",
                    aof ? "yes" : "no",
                    "--appendfsync",
                    "always",
                    "--appenddirname",
                    adir,
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

bool tst_rcluster_ok(tst_rcluster *c)
{
    for (int i = 0; i < c->n; i++) {
        if (c->node[i].pid == 0) {
            continue;
        }
        redisReply *r = redisCommand(c->node[i].c, "CLUSTER INFO");
        bool ok = r != NULL && r->type == REDIS_REPLY_STRING &&
                  strstr(r->str, "cluster_state:ok") != NULL;
        freeReplyObject(r);
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* Whether every running replica reports master_link_status:up. */
static bool replicas_synced(tst_rcluster *c)
{
    for (int i = 0; i < c->n; i++) {
        if (c->node[i].pid == 0) {
            continue;
        }
        redisReply *r = redisCommand(c->node[i].c, "INFO replication");
        bool ok = r != NULL && r->type == REDIS_REPLY_STRING &&
                  (strstr(r->str, "role:master") != NULL ||
                   strstr(r->str, "master_link_status:up") != NULL);
        freeReplyObject(r);
        if (!ok) {
            return false;
        }
    }
    return true;
}

bool tst_rcluster_start(tst_rcluster *c, int masters, int replicas, int node_timeout_ms, bool aof)
{
    memset(c, 0, sizeof(*c));
    c->n = masters * (1 + replicas);
    if (masters < 1 || replicas < 0 || c->n > TST_RC_MAX) {
        return false;
    }
    c->node_timeout_ms = node_timeout_ms;
    c->aof = aof;
    c->dir = tst_mkdtemp("rlfeed-rcluster");
    bool up = c->dir != NULL;
    size_t at = (size_t)snprintf(c->url, sizeof(c->url), "cluster://");
    for (int i = 0; up && i < c->n; i++) {
        up = port_pair_free(&c->node[i].port) &&
             start_node(c->dir, &c->node[i], node_timeout_ms, aof);
        at += (size_t)snprintf(c->url + at, sizeof(c->url) - at, "%s127.0.0.1:%d", i > 0 ? "," : "",
                               c->node[i].port);
    }
    if (!up) {
        return false;
    }
    char addr[TST_RC_MAX][32], nrep[16], log[600];
    char *argv[TST_RC_MAX + 8];
    int argc = 0;
    argv[argc++] = "redis-cli";
    argv[argc++] = "--cluster";
    argv[argc++] = "create";
    for (int i = 0; i < c->n; i++) {
        snprintf(addr[i], sizeof(addr[i]), "127.0.0.1:%d", c->node[i].port);
        argv[argc++] = addr[i];
    }
    snprintf(nrep, sizeof(nrep), "%d", replicas);
    argv[argc++] = "--cluster-replicas";
    argv[argc++] = nrep;
    argv[argc++] = "--cluster-yes";
    argv[argc] = NULL;
    snprintf(log, sizeof(log), "%s/create.log", c->dir);
    pid_t pid = tst_spawn(argv, log);
    int status = -1;
    up = pid > 0 && tst_wait_exit(pid, 60000, &status) && status == 0;
    if (!up) {
        tst_print_file(log);
        return false;
    }
    int64_t deadline = tst_now_ms() + 30000;
    while ((!tst_rcluster_ok(c) || !replicas_synced(c)) && tst_now_ms() < deadline) {
        tst_nap();
    }
    return tst_rcluster_ok(c) && replicas_synced(c);
}

/* The node in place @at of @key's slot in CLUSTER SLOTS (2: its master, 3: a replica). */
static int serving(tst_rcluster *c, const char *key, size_t at)
{
    for (int i = 0; i < c->n; i++) {
        if (c->node[i].pid == 0) {
            continue;
        }
        redisReply *ks = redisCommand(c->node[i].c, "CLUSTER KEYSLOT %s", key);
        redisReply *r = redisCommand(c->node[i].c, "CLUSTER SLOTS");
        int found = -1;
        if (ks != NULL && ks->type == REDIS_REPLY_INTEGER && r != NULL &&
            r->type == REDIS_REPLY_ARRAY) {
            for (size_t k = 0; k < r->elements && found < 0; k++) {
                const redisReply *e = r->element[k];
                if (e->element[0]->integer <= ks->integer &&
                    ks->integer <= e->element[1]->integer && e->elements > at) {
                    int port = (int)e->element[at]->element[1]->integer;
                    for (int j = 0; j < c->n; j++) {
                        found = c->node[j].port == port ? j : found;
                    }
                }
            }
        }
        freeReplyObject(ks);
        freeReplyObject(r);
        return found;
    }
    return -1;
}

int tst_rcluster_master_of(tst_rcluster *c, const char *key)
{
    return serving(c, key, 2);
}

int tst_rcluster_replica_of(tst_rcluster *c, const char *key)
{
    return serving(c, key, 3);
}

void tst_rcluster_kill(tst_rcluster *c, int i)
{
    if (c->node[i].pid > 0) {
        kill(c->node[i].pid, SIGKILL);
        int st = 0;
        (void)tst_wait_exit(c->node[i].pid, 10000, &st);
        c->node[i].pid = 0;
    }
    redisFree(c->node[i].c);
    c->node[i].c = NULL;
}

bool tst_rcluster_restart(tst_rcluster *c, int i)
{
    return c->node[i].pid == 0 && start_node(c->dir, &c->node[i], c->node_timeout_ms, c->aof);
}

void tst_rcluster_stop(tst_rcluster *c)
{
    for (int i = 0; i < c->n; i++) {
        redisFree(c->node[i].c);
        c->node[i].c = NULL;
        if (c->node[i].pid > 0) {
            tst_stop(c->node[i].pid, 5000);
            c->node[i].pid = 0;
        }
    }
    if (c->dir != NULL) {
        tst_rm_rf(c->dir);
        free(c->dir);
        c->dir = NULL;
    }
}
