/*
 * Pseudonyms and erasure (docs/security.md): rlfeedd stores user and conversation ids only as
 * keyed pseudonyms, and `rlfeed erase` removes one customer's records while rlfeedd is
 * stopped. Two customers talk to policy e; some of alice's decisions are joined and learned,
 * some still pending at the stop. Checked by reading every key of Redis (every type):
 *   - before: neither raw id is anywhere; alice's pseudonyms are;
 *   - `rlfeed erase` refuses while rlfeedd holds the policy;
 *   - after: neither alice's raw ids nor her pseudonyms are anywhere; bob's are; the audit
 *     entry names no id;
 *   - a restart recovers the same model (version and checksum) as before the erasure.
 */
#include <dirent.h>
#include <hiredis.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "client/rlfeed_client.h"
#include "daemon.h"
#include "proc.h"
#include "proto/auth.h"
#include "proto/json.h"
#include "proto/request.h"
#include "storage/store.h"
#include "tap.h"

#define T0 1700000000000LL

/* Append every reply string under @r to @out (one per line). */
static void flatten(const redisReply *r, base_buf *out)
{
    if (r == NULL) {
        return;
    }
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
        (void)base_buf_append(out, r->str, r->len);
        (void)base_buf_append(out, "\n", 1);
    }
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        flatten(r->element[i], out);
    }
}

/* Every key and value of the Redis at @path into @out. */
static bool dump_redis(const char *path, base_buf *out)
{
    redisContext *c = redisConnectUnix(path);
    if (c == NULL || c->err) {
        if (c != NULL) {
            redisFree(c);
        }
        return false;
    }
    base_buf_reset(out);
    char cursor[32] = "0";
    do {
        redisReply *r = redisCommand(c, "SCAN %s COUNT 1000", cursor);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            freeReplyObject(r);
            redisFree(c);
            return false;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *key = r->element[1]->element[i]->str;
            redisReply *t = redisCommand(c, "TYPE %s", key);
            const char *ty = t != NULL && t->type == REDIS_REPLY_STATUS ? t->str : "";
            redisReply *v = strcmp(ty, "string") == 0   ? redisCommand(c, "GET %s", key)
                            : strcmp(ty, "hash") == 0   ? redisCommand(c, "HGETALL %s", key)
                            : strcmp(ty, "stream") == 0 ? redisCommand(c, "XRANGE %s - +", key)
                            : strcmp(ty, "set") == 0    ? redisCommand(c, "SMEMBERS %s", key)
                            : strcmp(ty, "zset") == 0   ? redisCommand(c, "ZRANGE %s 0 -1", key)
                                                        : redisCommand(c, "LRANGE %s 0 -1", key);
            (void)base_buf_append(out, key, strlen(key));
            (void)base_buf_append(out, "\n", 1);
            flatten(v, out);
            freeReplyObject(v);
            freeReplyObject(t);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    redisFree(c);
    return true;
}

static bool has(const base_buf *b, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i + n <= b->len; i++) {
        if (memcmp(b->data + i, s, n) == 0) {
            return true;
        }
    }
    return false;
}

/* A decide for @user in @conv, event @ev, then (when @resolved) feedback for it. */
static bool talk(tst_daemon *f, const char *user, const char *conv, const char *ev, bool resolved)
{
    const float emb[4] = {1.0f, 0.5f, -0.5f, 0.25f};
    const char *ids[2] = {"a", "b"};
    const float bl[2] = {0.1f, 0.2f};
    proto_decide_req q = {.policy = "e",
                          .event_id = ev,
                          .conversation_id = conv,
                          .user_id = user,
                          .embedding = emb,
                          .dim = 4,
                          .n_cand = 2,
                          .cand_ids = ids,
                          .base_logits = bl};
    base_buf b;
    rlfeed_reply r;
    base_buf_init(&b, 1u << 20);
    bool ok = proto_encode_decide(&b, &q) == BASE_OK &&
              tst_call_raw(f, b.data, b.len, &r) == BASE_OK && r.ok;
    if (ok && resolved) {
        proto_feedback_req fb = {
            .policy = "e", .event_id = ev, .signal = "resolved", .value = 1.0, .user_id = user};
        base_buf_reset(&b);
        ok = proto_encode_feedback(&b, &fb) == BASE_OK &&
             tst_call_raw(f, b.data, b.len, &r) == BASE_OK && r.ok;
    }
    base_buf_fini(&b);
    return ok;
}

/* A conversation-level outcome without a user id (alice's bot says she came back). */
static bool conv_outcome(tst_daemon *f, const char *conv)
{
    rlfeed_reply r;
    return tst_callf(f, &r,
                     "{\"op\":\"feedback\",\"policy\":\"e\",\"conversation_id\":\"%s\","
                     "\"signal\":\"resolved\"}",
                     conv) == BASE_OK &&
           r.ok;
}

/*
 * shared = on keeps forwarded copies in the policy's inbox: put copies of the stored
 * decisions and outcomes there, as followers would have sent them. Their number, or -1.
 */
static int forward_copies(tst_daemon *f)
{
    sto_store *s = NULL;
    char err[256];
    int n = 0;
    if (sto_store_open(sto_server_url(f->redis), 5000, &s, err, sizeof(err)) != BASE_OK) {
        return -1;
    }
    for (int k = STO_DECISIONS; k <= STO_OUTCOMES && n >= 0; k++) {
        sto_entry *ent = NULL;
        size_t got = 0;
        if (sto_store_read(s, (sto_kind)k, "e", "", 1000, &ent, &got) != BASE_OK) {
            n = -1;
            break;
        }
        for (size_t i = 0; i < got && n >= 0; i++) {
            n = sto_inbox_add(s, "e", (sto_kind)k, ent[i].rec, "follower", NULL) == BASE_OK ? n + 1
                                                                                            : -1;
        }
        sto_entries_free((sto_kind)k, ent, got);
    }
    sto_store_close(s);
    return n;
}

/* XLEN of @key, or -1. */
static long long xlen(const char *sock, const char *key)
{
    redisContext *c = redisConnectUnix(sock);
    redisReply *r = c != NULL && !c->err ? redisCommand(c, "XLEN %s", key) : NULL;
    long long n = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

/* Whether a file of @dir/appendonlydir (the AOF: base, increments) holds @needle. */
static bool aof_has(const char *dir, const char *needle)
{
    char path[1200];
    snprintf(path, sizeof(path), "%s/appendonlydir", dir);
    DIR *d = opendir(path);
    bool found = false;
    base_buf b;
    base_buf_init(&b, 256u << 20);
    for (struct dirent *de = d != NULL ? readdir(d) : NULL; de != NULL && !found; de = readdir(d)) {
        char file[1500], why[128];
        snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
        base_buf_reset(&b);
        found = de->d_name[0] != '.' && base_buf_read_file(&b, file, why, sizeof(why)) &&
                has(&b, needle);
    }
    if (d != NULL) {
        closedir(d);
    }
    base_buf_fini(&b);
    return found;
}

/*
 * Whether @needle leaves the AOF within 5 s: Redis unlinks the files a rewrite replaced in a
 * background thread, after it reports the rewrite done.
 */
static bool aof_loses(const char *dir, const char *needle)
{
    int64_t deadline = tst_now_ms() + 5000;
    bool there = aof_has(dir, needle);
    while (there && tst_now_ms() < deadline) {
        tst_nap();
        there = aof_has(dir, needle);
    }
    return !there;
}

/* rlfeed erase of @who (--user or --conversation) @id on data directory @dir's redis-server. */
static int erase_dir_of(const char *log, const char *dir, const char *who, const char *id)
{
    char arg[700];
    snprintf(arg, sizeof(arg), "--data-dir=%s", dir);
    const char *args[] = {"erase", "--policy", "e", who, id, arg, "--json", NULL};
    return tst_run("RLFEED", args, log, 30000);
}

static int erase_dir(const char *log, const char *dir)
{
    return erase_dir_of(log, dir, "--user", "u-alice");
}

/* Feedback for @ev naming user @user only (no conversation). */
static bool user_feedback(tst_daemon *f, const char *ev, const char *user)
{
    rlfeed_reply r;
    return tst_callf(f, &r,
                     "{\"op\":\"feedback\",\"policy\":\"e\",\"event_id\":\"%s\","
                     "\"signal\":\"resolved\",\"user_id\":\"%s\"}",
                     ev, user) == BASE_OK &&
           r.ok;
}

/* --redis=URL of @f's Redis (a static buffer). */
static const char *redis_arg(const tst_daemon *f)
{
    static char arg[700];
    snprintf(arg, sizeof(arg), "--redis=%s", sto_server_url(f->redis));
    return arg;
}

static int erase(tst_daemon *f, const char *log, const char *extra)
{
    char redis[700];
    snprintf(redis, sizeof(redis), "--redis=%s", sto_server_url(f->redis));
    const char *args[] = {"erase", "--policy", "e",   "--user", "u-alice",
                          redis,   "--who",    "dpo", extra,    NULL};
    return tst_run("RLFEED", args, log, 30000);
}

int main(void)
{
    tst_daemon f;
    base_buf dump;
    char start[32], log[600], version[32] = "", checksum[32] = "";
    const char *config = "[server]\ntick_ms = 5\n"
                         "[policy e]\ndim = 4\nactions = a, b\nseed = 3\nsignal.resolved = 1.0\n"
                         "window_ms = 60000\n";
    if (!tst_daemon_init(&f, "rlfeed-erase", config)) {
        printf("Bail out! fixture\n");
        tst_daemon_fini(&f, false);
        return 1;
    }
    base_buf_init(&dump, 64u << 20);
    snprintf(log, sizeof(log), "%s/erase.log", f.dir);
    snprintf(start, sizeof(start), "%lld", T0);
    const char *extra[] = {"--manual-clock", start, NULL};
    bool up = tst_daemon_start(&f, true, extra);
    TST_TRUE(up);
    if (!up) {
        goto out;
    }
    /* Joined before the stop: the first round; pending at the stop: the second. */
    bool ok = true;
    for (int round = 0; round < 2 && ok; round++) {
        for (int i = 0; i < 6 && ok; i++) {
            char ev[32];
            snprintf(ev, sizeof(ev), "alice-%d-%d", round, i);
            ok = talk(&f, "u-alice", "conv-alice", ev, i % 2 == 0);
            snprintf(ev, sizeof(ev), "bob-%d-%d", round, i);
            ok = ok && talk(&f, "u-bob", "conv-bob", ev, i % 3 == 0);
        }
        ok = ok && conv_outcome(&f, "conv-alice");
        if (round == 0) {
            ok = ok && tst_clock_set(&f, T0 + 61000);
            int64_t deadline = tst_now_ms() + 10000;
            long long joined = 0;
            while (ok && joined < 12 && tst_now_ms() < deadline) {
                json_t *s = tst_stats(&f);
                joined = tst_stat_int(s, "e", "updates");
                json_decref(s);
                tst_nap();
            }
            TST_EQ(joined, 12);
        }
    }
    TST_TRUE(ok);
    json_t *s = tst_stats(&f);
    snprintf(version, sizeof(version), "%lld", tst_stat_int(s, "e", "model_version"));
    snprintf(checksum, sizeof(checksum), "%s", tst_stat_str(s, "e", "model_checksum"));
    json_decref(s);

    /* Pseudonyms, not ids, are stored. */
    uint8_t key[32];
    char pa[PROTO_PSEUDONYM_LEN + 1], pca[PROTO_PSEUDONYM_LEN + 1], pb[PROTO_PSEUDONYM_LEN + 1];
    const char *sock = sto_server_url(f.redis) + 5;
    TST_TRUE(dump_redis(sock, &dump));
    TST_TRUE(!has(&dump, "u-alice") && !has(&dump, "conv-alice") && !has(&dump, "u-bob"));
    redisContext *rc = redisConnectUnix(sock);
    redisReply *kr = rc != NULL ? redisCommand(rc, "GET rlfeed:pseudonym-key") : NULL;
    TST_TRUE(kr != NULL && kr->type == REDIS_REPLY_STRING &&
             proto_auth_unhex(kr->str, kr->len, key, sizeof(key)));
    freeReplyObject(kr);
    redisFree(rc);
    proto_pseudonym(key, "user", "u-alice", pa);
    proto_pseudonym(key, "conversation", "conv-alice", pca);
    proto_pseudonym(key, "user", "u-bob", pb);
    TST_TRUE(has(&dump, pa) && has(&dump, pca) && has(&dump, pb));

    /* Not while rlfeedd holds the policy. */
    TST_EQ(erase(&f, log, "--dry-run"), 2);
    TST_TRUE(tst_file_has(log, "holds policy e: stop it first"));
    TST_EQ(tst_daemon_stop(&f), 0);

    /* Forwarded copies in the inbox (shared = on) go too: alice's 12 decisions and 8 outcomes. */
    int copies = forward_copies(&f);
    TST_TRUE(copies > 20);
    TST_EQ(erase(&f, log, "--dry-run"), 0);
    TST_TRUE(tst_file_has(log, "e: would erase 12 decisions"));
    TST_TRUE(tst_file_has(log, "20 inbox entries"));
    TST_TRUE(dump_redis(sock, &dump) && has(&dump, pa));
    const char *rdir = sto_server_dir(f.redis);
    TST_TRUE(aof_has(rdir, pa) && aof_has(rdir, "alice-0-1"));
    TST_EQ(erase(&f, log, "--json"), 0);
    TST_TRUE(tst_file_has(log, "\"decisions\":12"));
    TST_TRUE(tst_file_has(log, "\"inbox\":20"));
    /* ... and from the disk: the append-only file is rewritten. */
    TST_TRUE(tst_file_has(log, "\"aof_rewritten\":true"));
    TST_TRUE(aof_loses(rdir, pa) && aof_loses(rdir, "alice-0-1"));
    TST_TRUE(aof_has(rdir, pb));
    TST_EQ(xlen(sock, "rlfeed:{e}:inbox"), copies - 20);
    TST_TRUE(dump_redis(sock, &dump));
    TST_TRUE(!has(&dump, pa) && !has(&dump, pca) && !has(&dump, "u-alice") &&
             !has(&dump, "conv-alice") && !has(&dump, "alice-"));
    TST_TRUE(has(&dump, pb) && has(&dump, "bob-0-0"));
    TST_TRUE(has(&dump, "erase") && has(&dump, "dpo"));

    /*
     * An erase that found nothing writes no audit entry, but still rewrites a stream an
     * interrupted one had deleted from (its XDEL'd bytes stay until then): here bob's inbox
     * copy of bob-0-1, deleted by hand.
     */
    char ib_id[64] = "";
    redisContext *ic = redisConnectUnix(sock);
    redisReply *ir = ic != NULL ? redisCommand(ic, "XRANGE rlfeed:{e}:inbox - + COUNT 1") : NULL;
    if (ir != NULL && ir->type == REDIS_REPLY_ARRAY && ir->elements == 1) {
        snprintf(ib_id, sizeof(ib_id), "%s", ir->element[0]->element[0]->str);
    }
    freeReplyObject(ir);
    ir =
        ic != NULL && ib_id[0] != '\0' ? redisCommand(ic, "XDEL rlfeed:{e}:inbox %s", ib_id) : NULL;
    TST_TRUE(ir != NULL && ir->type == REDIS_REPLY_INTEGER && ir->integer == 1);
    freeReplyObject(ir);
    redisFree(ic);
    TST_TRUE(aof_has(rdir, "bob-0-0")); /* the inbox's first copy, deleted but not gone */
    const char *nobody[] = {"erase",       "--policy", "e",   "--user", "u-nobody",
                            redis_arg(&f), "--who",    "dpo", "--json", NULL};
    long long audits = xlen(sock, "rlfeed:{e}:audit");
    TST_EQ(tst_run("RLFEED", nobody, log, 30000), 0);
    TST_TRUE(tst_file_has(log, "nothing of that customer"));
    TST_EQ(xlen(sock, "rlfeed:{e}:audit"), audits);
    TST_TRUE(tst_file_has(log, "\"decisions\":0") && tst_file_has(log, "\"aof_rewritten\":true"));

    /* The model comes back as it was. */
    up = tst_daemon_start(&f, true, extra);
    TST_TRUE(up);
    if (up) {
        s = tst_stats(&f);
        char v2[32];
        snprintf(v2, sizeof(v2), "%lld", tst_stat_int(s, "e", "model_version"));
        TST_STREQ(v2, version);
        TST_STREQ(tst_stat_str(s, "e", "model_checksum"), checksum);
        TST_EQ(tst_stat_join(s, "e", "pending"), 6); /* bob's second round only */
        json_decref(s);
        TST_EQ(tst_daemon_stop(&f), 0);
    }
    /*
     * A private redis-server (no redis URL): erase --data-dir starts it on the stopped
     * daemon's data directory, and refuses while the daemon runs there.
     */
    char embedded[700];
    snprintf(embedded, sizeof(embedded), "%s/embedded", f.dir);
    up = tst_daemon_start(&f, false, extra);
    TST_TRUE(up);
    if (up) {
        TST_TRUE(talk(&f, "u-alice", "conv-alice2", "alice-9-0", true) &&
                 talk(&f, "u-bob", "conv-bob2", "bob-9-0", true));
        /* An event id alice used is bob's once her decision closed: his stays. */
        TST_TRUE(talk(&f, "u-alice", "conv-alice3", "reused-1", false));
        TST_TRUE(tst_clock_set(&f, T0 + 200000));
        long long pending = -1;
        for (int64_t end = tst_now_ms() + 10000; pending != 0 && tst_now_ms() < end; tst_nap()) {
            json_t *ps = tst_stats(&f);
            pending = tst_stat_int(ps, "e", "pending");
            json_decref(ps);
        }
        TST_EQ(pending, 0); /* alice's reused-1 is closed and forgotten */
        TST_TRUE(talk(&f, "u-bob", "conv-bob3", "reused-1", true));
        /* Alice's conversation-level outcome in bob's conversation does not make it hers. */
        rlfeed_reply cr;
        TST_TRUE(talk(&f, "u-bob", "conv-bob4", "bob-4", false) &&
                 tst_callf(&f, &cr,
                           "{\"op\":\"feedback\",\"policy\":\"e\",\"conversation_id\":"
                           "\"conv-bob4\",\"user_id\":\"u-alice\",\"signal\":\"resolved\"}") ==
                     BASE_OK &&
                 cr.ok);
        /* A decision of conversation conv-carol with no user, and bob's outcome for it. */
        TST_TRUE(talk(&f, "", "conv-carol", "carol-1", false) &&
                 user_feedback(&f, "carol-1", "u-bob"));
        TST_EQ(erase_dir(log, embedded), 2);
        TST_TRUE(tst_file_has(log, "stop rlfeedd first"));
        TST_EQ(tst_daemon_stop(&f), 0);
        TST_TRUE(aof_has(embedded, "alice-9-0"));
        TST_EQ(erase_dir(log, embedded), 0);
        /* alice-9-0's outcome and her conversation-level one in bob's conversation */
        TST_TRUE(tst_file_has(log, "\"decisions\":2,") && tst_file_has(log, "\"outcomes\":2,") &&
                 tst_file_has(log, "\"aof_rewritten\":true"));
        TST_TRUE(aof_loses(embedded, "alice-9-0") && aof_has(embedded, "bob-9-0") &&
                 aof_has(embedded, "bob-4"));
        /* Nothing interrupted: the next erase has nothing to rewrite. */
        char log2[700];
        snprintf(log2, sizeof(log2), "%s/erase-nobody.log", f.dir);
        TST_EQ(erase_dir_of(log2, embedded, "--user", "u-nobody"), 0);
        TST_TRUE(tst_file_has(log2, "nothing of that customer") &&
                 !tst_file_has(log2, "finished what an earlier") &&
                 tst_file_has(log2, "\"aof_rewritten\":false"));
        /*
         * Erasing a conversation takes the outcome addressed to its decision, also one that
         * names another user: it is inside the conversation.
         */
        TST_TRUE(aof_has(embedded, "carol-1"));
        TST_EQ(erase_dir_of(log, embedded, "--conversation", "conv-carol"), 0);
        TST_TRUE(tst_file_has(log, "\"decisions\":1,\"outcomes\":1,"));
        TST_TRUE(aof_loses(embedded, "carol-1"));
        TST_TRUE(tst_daemon_start(&f, false, extra));
        TST_EQ(tst_daemon_stop(&f), 0);
    }
out:
    base_buf_fini(&dump);
    tst_daemon_fini(&f, tst_failed > 0);
    return tst_done();
}
