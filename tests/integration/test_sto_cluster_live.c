/*
 * storage/ against a real Redis Cluster: three masters on loopback ports (redis-cli
 * --cluster create; tests/helpers/rcluster.c).
 *
 * 1. The routing functions: the slot map parsed from CLUSTER SLOTS covers every slot, the
 *    slot of 3 000 keys (rlfeed's and random ones) is what CLUSTER KEYSLOT says, and a
 *    command sent to the wrong master is redirected (MOVED) to the master the map names.
 * 2. A store opened with a cluster:// URL naming one node: appends to 24 policies in one
 *    pipelined call land on all three masters and read back equal; snapshots (MULTI/EXEC),
 *    the registry, the catalog (its global set on another slot), leases, WAIT and PING work.
 * 3. A policy's slot moved by hand while the store holds the old map: during the migration
 *    a missing key is answered through ASK (ASKING, then the command on the importing
 *    master); after it, reads follow MOVED, and an append refused with MOVED is stored by
 *    the next call, once.
 * Every process is stopped and the directory removed at the end.
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"
#include "base/record.h"
#include "proc.h"
#include "rcluster.h"
#include "storage/cluster.h"
#include "storage/store.h"
#include "lease.h"
#include "tap.h"

#define N_MASTERS 3
#define N_POL 24
#define TIMEOUT_MS 5000

static void check_routing(tst_rcluster *cl)
{
    sto_slot_map m;
    redisReply *r = redisCommand(cl->node[0].c, "CLUSTER SLOTS");
    TST_OK(sto_slot_map_parse(r, "127.0.0.1", &m));
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
        r = redisCommand(cl->node[0].c, "CLUSTER KEYSLOT %s", key);
        same += r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == ours;
        freeReplyObject(r);
        /* The map's master takes the key; another one redirects to it. */
        const sto_cluster_node *owner = &m.node[m.owner[ours]];
        for (int k = 0; k < N_MASTERS; k++) {
            r = redisCommand(cl->node[k].c, "SET %s v", key);
            if (cl->node[k].port == owner->port) {
                routed += r != NULL && r->type == REDIS_REPLY_STATUS;
            } else if (r != NULL && r->type == REDIS_REPLY_ERROR) {
                uint16_t s = 0;
                sto_cluster_node to;
                redirected += sto_cluster_redirect(r->str, r->len, &s, &to) == STO_REDIRECT_MOVED &&
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

static base_decision *decision(const char *policy, int i)
{
    base_decision *d = base_decision_new(4, 3);
    base_strlcpy(d->policy, policy, sizeof(d->policy));
    snprintf(d->event_id, sizeof(d->event_id), "ev-%s-%d", policy, i);
    base_strlcpy(d->conversation_id, "c", sizeof(d->conversation_id));
    d->ts_ms = 1700000000000 + i;
    d->turn = 1;
    d->chosen = 1;
    for (uint32_t k = 0; k < 4; k++) {
        d->embedding[k] = (float)i + (float)k * 0.25f;
    }
    for (uint32_t k = 0; k < 3; k++) {
        d->action[k] = k;
        d->base_logit[k] = (float)k;
        d->pmf[k] = 1.0f / 3.0f;
    }
    return d;
}

/* Entries of @policy's decision stream, or -1 on a failure. */
static int count_decisions(sto_store *s, const char *policy)
{
    sto_entry *e = NULL;
    size_t n = 0;
    if (sto_store_read(s, STO_DECISIONS, policy, "", 1000, &e, &n) != BASE_OK) {
        return -1;
    }
    sto_entries_free(STO_DECISIONS, e, n);
    return (int)n;
}

/* The node id of cluster node @i. */
static void node_id(tst_rcluster *cl, int i, char *out, size_t size)
{
    redisReply *r = redisCommand(cl->node[i].c, "CLUSTER MYID");
    snprintf(out, size, "%s", r != NULL && r->type == REDIS_REPLY_STRING ? r->str : "?");
    freeReplyObject(r);
}

/* Move slot @slot from node @a to node @b by hand; @finish false stops after MIGRATING. */
static bool migrate_slot(tst_rcluster *cl, int slot, int a, int b, bool finish)
{
    char ida[64], idb[64];
    node_id(cl, a, ida, sizeof(ida));
    node_id(cl, b, idb, sizeof(idb));
    bool ok = true;
    redisReply *r = redisCommand(cl->node[b].c, "CLUSTER SETSLOT %d IMPORTING %s", slot, ida);
    ok = ok && r != NULL && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    r = redisCommand(cl->node[a].c, "CLUSTER SETSLOT %d MIGRATING %s", slot, idb);
    ok = ok && r != NULL && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    if (!ok || !finish) {
        return ok;
    }
    r = redisCommand(cl->node[a].c, "CLUSTER GETKEYSINSLOT %d 1000", slot);
    ok = r != NULL && r->type == REDIS_REPLY_ARRAY;
    for (size_t k = 0; ok && k < r->elements; k++) {
        redisReply *m = redisCommand(cl->node[a].c, "MIGRATE 127.0.0.1 %d %s 0 5000",
                                     cl->node[b].port, r->element[k]->str);
        ok = m != NULL && m->type == REDIS_REPLY_STATUS;
        freeReplyObject(m);
    }
    freeReplyObject(r);
    for (int i = 0; ok && i < cl->n; i++) {
        r = redisCommand(cl->node[i].c, "CLUSTER SETSLOT %d NODE %s", slot, idb);
        ok = r != NULL && r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
    }
    return ok;
}

static void check_store(tst_rcluster *cl)
{
    char url[64], err[256] = "", pol[N_POL][32];
    snprintf(url, sizeof(url), "cluster://127.0.0.1:%d", cl->node[1].port);
    sto_store *s = NULL;
    TST_OK(sto_store_open(url, TIMEOUT_MS, &s, err, sizeof(err)));
    if (s == NULL) {
        printf("# %s\n", err);
        return;
    }
    TST_OK(sto_store_ping(s));

    /* 24 policies, three decisions each, interleaved in one call. */
    base_decision *d[N_POL * 3];
    sto_append a[N_POL * 3];
    memset(a, 0, sizeof(a));
    bool on[N_MASTERS + 1] = {false};
    for (int i = 0; i < N_POL; i++) {
        snprintf(pol[i], sizeof(pol[i]), "pol-%d", i);
        char key[64];
        snprintf(key, sizeof(key), "rlfeed:{%s}:decisions", pol[i]);
        int m = tst_rcluster_master_of(cl, key);
        on[m >= 0 && m < N_MASTERS ? m : N_MASTERS] = true;
    }
    for (int k = 0; k < N_POL * 3; k++) {
        d[k] = decision(pol[k % N_POL], k / N_POL);
        a[k].kind = STO_DECISIONS;
        a[k].policy = pol[k % N_POL];
        a[k].rec = d[k];
    }
    TST_OK(sto_store_append(s, a, N_POL * 3));
    int ok = 0, read_back = 0;
    for (int k = 0; k < N_POL * 3; k++) {
        ok += a[k].out_err == BASE_OK;
    }
    for (int i = 0; i < N_POL; i++) {
        read_back += count_decisions(s, pol[i]) == 3;
    }
    printf("# %d appends stored; %d of %d policies read back 3 entries; masters used: %d %d %d\n",
           ok, read_back, N_POL, on[0], on[1], on[2]);
    TST_EQ(ok, N_POL * 3);
    TST_EQ(read_back, N_POL);
    TST_TRUE(on[0] && on[1] && on[2] && !on[N_MASTERS]);
    sto_entry *first = NULL;
    size_t n_first = 0;
    TST_OK(sto_store_read(s, STO_DECISIONS, pol[5], "", 10, &first, &n_first));
    TST_EQ(n_first, 3);
    TST_TRUE(n_first > 0 && strcmp(((base_decision *)first[0].rec)->event_id, "ev-pol-5-0") == 0);
    sto_entries_free(STO_DECISIONS, first, n_first);

    /* Snapshots (MULTI/EXEC on the policy's master), the registry, the catalog, leases. */
    base_snapshot *m = base_snapshot_new(0, 0);
    base_strlcpy(m->policy, pol[7], sizeof(m->policy));
    base_strlcpy(m->learner, "ridge", sizeof(m->learner));
    m->version = 3;
    TST_OK(sto_store_model_put(s, m));
    base_snapshot *back = NULL;
    bool found = false;
    TST_OK(sto_store_model_get_online(s, pol[7], &back, &found));
    TST_TRUE(found && back != NULL && back->version == 3);
    base_snapshot_free(back);
    sto_registry reg;
    TST_OK(sto_registry_get(s, pol[7], &reg));
    TST_EQ(reg.online, 3);

    sto_field fields[] = {{"action", "put"}};
    sto_catalog_put_req q = {.expect = 0,
                             .text = "[policy]\nname = x\n",
                             .actor = "test",
                             .fields = fields,
                             .n_fields = 1};
    sto_catalog_result res;
    uint64_t ver = 0, seq = 0;
    int in_list = 0;
    for (int i = 0; i < 6; i++) {
        TST_OK(sto_catalog_put(s, pol[i], &q, &res, &ver, NULL));
        TST_EQ(res, STO_CATALOG_CHANGED);
    }
    char(*names)[BASE_NAME_MAX + 1] = NULL;
    size_t n_names = 0;
    TST_OK(sto_catalog_list(s, &names, &n_names));
    for (size_t i = 0; i < n_names; i++) {
        in_list += strncmp(names[i], "pol-", 4) == 0;
    }
    base_free(names);
    TST_EQ(in_list, 6);
    TST_OK(sto_catalog_seq(s, &seq));
    TST_EQ(seq, 6);

    bool held = false;
    char holder[64];
    int64_t left = 0;
    TST_OK(tst_lease_take(s, pol[9], "inst-a", 10000, false, &held, holder, sizeof(holder), &left));
    TST_TRUE(held);
    TST_OK(tst_lease_take(s, pol[9], "inst-b", 10000, false, &held, holder, sizeof(holder), &left));
    TST_TRUE(!held && strcmp(holder, "inst-a") == 0);

    uint32_t acked = 99;
    TST_OK(sto_store_wait(s, 0, 100, &acked));
    TST_EQ(acked, 0); /* no replicas in this cluster */

    /* A slot in migration: a key the source lacks is answered by the target (ASK). */
    const char *p = pol[11];
    char key[64];
    snprintf(key, sizeof(key), "rlfeed:{%s}:decisions", p);
    int src = tst_rcluster_master_of(cl, key), dst = (src + 1) % N_MASTERS;
    int slot = sto_cluster_slot(key, strlen(key));
    TST_TRUE(src >= 0 && migrate_slot(cl, slot, src, dst, false));
    TST_OK(tst_lease_take(s, p, "inst-a", 60000, false, &held, holder, sizeof(holder), &left));
    TST_TRUE(held);
    redisReply *r = redisCommand(cl->node[dst].c, "ASKING");
    freeReplyObject(r);
    r = redisCommand(cl->node[dst].c, "EXISTS rlfeed:{%s}:owner", p);
    TST_TRUE(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1); /* on the target */
    freeReplyObject(r);
    TST_EQ(count_decisions(s, p), 3); /* the stream is still on the source */

    /* Finished: the store's map is stale; reads follow MOVED. */
    TST_TRUE(migrate_slot(cl, slot, src, dst, true));
    TST_EQ(tst_rcluster_master_of(cl, key), dst);
    TST_EQ(count_decisions(s, p), 3);
    char owner[64] = "";
    TST_OK(sto_lease_holder(s, p, owner, sizeof(owner)));
    TST_STREQ(owner, "inst-a");

    /* Moved back: an append refused with MOVED is stored by the next call, once. */
    TST_TRUE(migrate_slot(cl, slot, dst, src, true));
    base_decision *extra = decision(p, 3);
    sto_append one = {.kind = STO_DECISIONS, .policy = p, .rec = extra, .id = "9999999999999-0"};
    int calls = 0;
    do {
        calls++;
        (void)sto_store_append(s, &one, 1);
    } while (one.out_err == BASE_EIO && calls < 3);
    printf("# append after the move back: stored by call %d\n", calls);
    TST_EQ(one.out_err, BASE_OK);
    TST_TRUE(calls <= 2);
    TST_EQ(count_decisions(s, p), 4);
    base_decision_free(extra);

    for (int k = 0; k < N_POL * 3; k++) {
        base_decision_free(d[k]);
    }
    base_snapshot_free(m);
    sto_store_close(s);

    /* A URL naming no cluster node is refused with a reason. */
    snprintf(url, sizeof(url), "cluster://127.0.0.1:%d", tst_free_port());
    TST_EQ(sto_store_open(url, 500, &s, err, sizeof(err)), BASE_EIO);
    printf("# unreachable: %s\n", err);
}

int main(void)
{
    tst_rcluster cl;
    bool up = tst_rcluster_start(&cl, N_MASTERS, 0, 5000, false);
    TST_TRUE(up);
    if (up) {
        check_routing(&cl);
        check_store(&cl);
    }
    tst_rcluster_stop(&cl);
    return tst_done();
}
