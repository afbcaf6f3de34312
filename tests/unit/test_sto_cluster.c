/*
 * storage/cluster: the hash slot of a key (CRC16 XMODEM, hash tags) and the parsing of
 * MOVED / ASK redirections, against the values the Redis Cluster specification gives.
 * The slot map is checked against a real cluster in tests/integration/test_sto_cluster_live.c.
 */
#include <string.h>

#include "storage/cluster.h"
#include "tap.h"

static uint16_t slot(const char *k)
{
    return sto_cluster_slot(k, strlen(k));
}

static void crc_and_slots(void)
{
    TST_EQ(sto_crc16("123456789", 9), 0x31C3); /* the specification's check value */
    TST_EQ(slot("foo"), 12182);                /* CLUSTER KEYSLOT foo */
    TST_EQ(slot("{user1000}.following"), slot("{user1000}.followers"));
    TST_EQ(slot("{user1000}.following"), slot("user1000"));
    TST_EQ(slot("foo{}{bar}"), sto_crc16("foo{}{bar}", 10) % 16384); /* empty tag: whole key */
    TST_EQ(slot("foo{{bar}}zap"), slot("{bar"));                     /* up to the first } */
    TST_EQ(slot("foo{bar}{zap}"), slot("bar"));
    TST_EQ(slot("rlfeed:{faq}:decisions"), slot("rlfeed:{faq}:model:12"));
    TST_EQ(slot("rlfeed:{faq}:def"), slot("faq"));
    TST_EQ(sto_cluster_slot("", 0), 0);
}

static void redirects(void)
{
    uint16_t s = 0;
    sto_cluster_node n;
    const char *moved = "MOVED 3999 127.0.0.1:6381";
    TST_EQ(sto_cluster_redirect(moved, strlen(moved), &s, &n), STO_REDIRECT_MOVED);
    TST_EQ(s, 3999);
    TST_STREQ(n.host, "127.0.0.1");
    TST_EQ(n.port, 6381);
    const char *ask = "ASK 12 ::1:7000";
    TST_EQ(sto_cluster_redirect(ask, strlen(ask), &s, &n), STO_REDIRECT_ASK);
    TST_EQ(s, 12);
    TST_STREQ(n.host, "::1");
    TST_EQ(n.port, 7000);
    const char *bad[] = {"MOVED",      "MOVED x 1.2.3.4:5", "MOVED 16384 h:1",        "MOVED 1 h:",
                         "MOVED 1 :1", "MOVED 1 h:70000",   "TRYAGAIN Multiple keys", "CLUSTERDOWN",
                         "ASK 1h:2",   "MOVED 1 h:1x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        TST_EQ(sto_cluster_redirect(bad[i], strlen(bad[i]), &s, &n), STO_REDIRECT_NONE);
    }
}

int main(void)
{
    crc_and_slots();
    redirects();
    return tst_done();
}
