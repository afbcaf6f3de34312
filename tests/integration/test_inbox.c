/*
 * The owner's side of the inbox (shared = on; docs/operations.md, "Several instances serving
 * one policy"; docs/storage.md, section 12). One rlfeedd owns policy "p"; the test plays a
 * follower and writes the policy's inbox itself: a decision, its outcome, a retried copy of
 * each (as a follower's forwarder may store after a lost connection), three entries that are
 * not records, then a second decision and an outcome that comes before it (early). The owner
 * takes every record once, in stream order, at the service times the entries carry: two
 * decisions pending, the copies dropped (a duplicate event, a duplicate outcome id), the bad
 * entries counted in stats (inbox_bad) and skipped; each record it writes to the policy's
 * streams carries its inbox id. The windows close: both decisions are learned. Then a copy
 * of a closed decision is dropped too, and decisions that do not fit the definition (another
 * shape, or another list of actions) are counted and skipped. A restart takes nothing from the inbox again and recovers the same
 * model.
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/record.h"
#include "client/rlfeed_client.h"
#include "daemon.h"
#include "proc.h"
#include "storage/store.h"
#include "tap.h"

#define T0 1000000LL

#define CONFIG                                                                                     \
    "[server]\ninstance_id = a\nshared = on\nsnapshot_interval_ms = 100\n"                         \
    "[policy p]\ndim = 2\nactions = a, b\nsignal.resolved = 1\nwindow_ms = 300\n"                  \
    "backward_window_ms = 2000\nlate_memory_ms = 60000\n"

/* A decision record as a follower hands it over: served at @ts_ms, action @chosen. */
static base_decision *decision(const char *event_id, int64_t ts_ms, uint32_t chosen)
{
    base_decision *d = base_decision_new(2, 2);
    if (d == NULL) {
        return NULL;
    }
    base_strlcpy(d->policy, "p", sizeof(d->policy));
    base_strlcpy(d->event_id, event_id, sizeof(d->event_id));
    d->ts_ms = ts_ms;
    d->embedding[0] = 1.0f;
    d->embedding[1] = (float)chosen;
    d->action[0] = 0;
    d->action[1] = 1;
    d->pmf[0] = 0.5f;
    d->pmf[1] = 0.5f;
    d->chosen = chosen;
    return d;
}

static void outcome(base_outcome *o, const char *event_id, const char *outcome_id, int64_t at)
{
    memset(o, 0, sizeof(*o));
    base_strlcpy(o->policy, "p", sizeof(o->policy));
    base_strlcpy(o->event_id, event_id, sizeof(o->event_id));
    base_strlcpy(o->outcome_id, outcome_id, sizeof(o->outcome_id));
    base_strlcpy(o->signal, "resolved", sizeof(o->signal));
    o->type = BASE_OUT_SIGNAL;
    o->value = 1.0;
    o->ts_ms = at;
    o->arrived_ms = at;
}

/* XADD an entry with raw field/value pairs (@n strings) to p's inbox; false on failure. */
static bool raw_entry(const char *socket_path, const char **fv, int n)
{
    redisContext *c = redisConnectUnix(socket_path);
    if (c == NULL || c->err) {
        if (c != NULL) {
            redisFree(c);
        }
        return false;
    }
    const char *argv[3 + 6] = {"XADD", "rlfeed:{p}:inbox", "*"};
    if (n > 6) {
        redisFree(c);
        return false;
    }
    for (int i = 0; i < n; i++) {
        argv[3 + i] = fv[i];
    }
    redisReply *r = redisCommandArgv(c, 3 + n, argv, NULL);
    bool ok = r != NULL && r->type == REDIS_REPLY_STRING;
    if (r != NULL) {
        freeReplyObject(r);
    }
    redisFree(c);
    return ok;
}

/* Poll stats until policy p's @key reaches @want (at most @ms); its last value. */
static long long wait_stat(tst_daemon *f, const char *key, long long want, int ms)
{
    long long v = -1;
    for (int64_t end = tst_now_ms() + ms; tst_now_ms() < end; tst_nap()) {
        json_t *s = tst_stats(f);
        v = tst_stat_int(s, "p", key);
        json_decref(s);
        if (v >= want) {
            break;
        }
    }
    return v;
}

/* How many records of stream @kind carry an inbox id, of *out_n in all; -1 on failure. */
static int with_inbox_id(sto_store *s, sto_kind kind, int *out_n)
{
    sto_entry *en = NULL;
    size_t n = 0;
    if (sto_store_read(s, kind, "p", "", 100, &en, &n) != BASE_OK) {
        return -1;
    }
    int marked = 0;
    for (size_t i = 0; i < n; i++) {
        const char *ib = kind == STO_DECISIONS ? ((const base_decision *)en[i].rec)->inbox_id
                                               : ((const base_outcome *)en[i].rec)->inbox_id;
        marked += ib[0] != '\0';
    }
    sto_entries_free(kind, en, n);
    *out_n = (int)n;
    return marked;
}

int main(void)
{
    tst_daemon f;
    sto_store *s = NULL;
    char err[256] = "";
    const char *clock[] = {"--manual-clock", "1000000", NULL};
    bool up = tst_daemon_init(&f, "rlfeed-inbox", CONFIG) && tst_daemon_start(&f, true, clock);
    TST_TRUE(up);
    const char *url = up ? sto_server_url(f.redis) : "";
    up = up && strncmp(url, "unix:", 5) == 0 &&
         sto_store_open(url, 5000, &s, err, sizeof(err)) == BASE_OK;
    TST_TRUE(up);
    if (up) {
        json_t *st = tst_stats(&f);
        TST_STREQ(tst_stat_str(st, "p", "role"), "owner");
        TST_STREQ(tst_stat_str(st, "p", "owner"), "a");
        json_decref(st);

        /* What a follower would hand over, with the copies a retry may leave. */
        base_decision *d1 = decision("fx-1", T0 + 10, 0), *d2 = decision("fx-2", T0 + 20, 1);
        base_outcome o1, o2;
        outcome(&o1, "fx-1", "o-1", T0 + 15);
        outcome(&o2, "fx-2", "o-2", T0 + 18); /* before its decision: early */
        const char *bad1[] = {"k", "d", "f", "evil", "r", "not msgpack"};
        const char *bad2[] = {"k", "z", "r", "x"};
        const char *bad3[] = {"nothing", "here"};
        const char *path = url + 5;
        TST_OK(sto_inbox_add(s, "p", STO_DECISIONS, d1, "b", NULL));
        TST_OK(sto_inbox_add(s, "p", STO_OUTCOMES, &o1, "b", NULL));
        TST_OK(sto_inbox_add(s, "p", STO_DECISIONS, d1, "b", NULL)); /* a retried copy */
        TST_OK(sto_inbox_add(s, "p", STO_OUTCOMES, &o1, "b", NULL)); /* a retried copy */
        TST_TRUE(raw_entry(path, bad1, 6));
        TST_TRUE(raw_entry(path, bad2, 4));
        TST_TRUE(raw_entry(path, bad3, 2));
        TST_OK(sto_inbox_add(s, "p", STO_OUTCOMES, &o2, "c", NULL));
        TST_OK(sto_inbox_add(s, "p", STO_DECISIONS, d2, "c", NULL));

        TST_EQ(wait_stat(&f, "inbox", 6, 10000), 6);
        st = tst_stats(&f);
        TST_EQ(tst_stat_int(st, "p", "inbox_bad"), 3);
        TST_EQ(tst_stat_int(st, "p", "pending"), 2);
        TST_EQ(tst_stat_join(st, "p", "duplicate"), 1);
        TST_EQ(tst_stat_join(st, "p", "matched"), 1);
        TST_EQ(tst_stat_join(st, "p", "early"), 1);
        TST_EQ(tst_rejected(st, "duplicate_event"), 0); /* an inbox copy is not a request */
        printf("# taken %lld, bad %lld, pending %lld\n", tst_stat_int(st, "p", "inbox"),
               tst_stat_int(st, "p", "inbox_bad"), tst_stat_int(st, "p", "pending"));
        TST_EQ(tst_stat_int(st, "p", "inbox_conflicts"), 0); /* a retried copy is no conflict */
        json_decref(st);
        TST_TRUE(tst_file_has(f.log, "is not a record; skipped"));

        /* Another decision under pending fx-2 (served by a second follower): counted, dropped. */
        base_decision *other = decision("fx-2", T0 + 21, 0);
        TST_TRUE(other != NULL &&
                 sto_inbox_add(s, "p", STO_DECISIONS, other, "d", NULL) == BASE_OK);
        base_decision_free(other);
        TST_EQ(wait_stat(&f, "inbox_conflicts", 1, 10000), 1);
        TST_TRUE(tst_file_has(f.log, "which another decision holds"));
        st = tst_stats(&f);
        TST_EQ(tst_stat_int(st, "p", "pending"), 2);
        json_decref(st);

        /* The windows close (service time): both learned, the outcomes applied. */
        TST_TRUE(tst_clock_set(&f, T0 + 5000));
        TST_EQ(wait_stat(&f, "joined", 2, 10000), 2);
        TST_EQ(wait_stat(&f, "model_version", 2, 10000), 2);
        int n = 0;
        TST_EQ(with_inbox_id(s, STO_DECISIONS, &n), 2);
        TST_EQ(n, 2);
        TST_EQ(with_inbox_id(s, STO_OUTCOMES, &n), 2);
        TST_EQ(n, 2);
        st = tst_stats(&f);
        long long ver = tst_stat_int(st, "p", "model_version");
        char sum[32];
        snprintf(sum, sizeof(sum), "%s", tst_stat_str(st, "p", "model_checksum"));
        TST_EQ(tst_stat_int(st, "p", "defaulted"), 0); /* both outcomes reached their decision */
        json_decref(st);
        long long snaps = wait_stat(&f, "snapshots", 1, 10000);
        TST_TRUE(snaps >= 1);

        /*
         * After its window closed: another copy of fx-1 is still a copy (remembered as
         * closed), and a decision of another shape (served under another definition) does
         * not fit: both dropped, the second counted.
         */
        base_decision *wide = base_decision_new(3, 2);
        TST_TRUE(wide != NULL);
        if (wide != NULL) {
            base_strlcpy(wide->policy, "p", sizeof(wide->policy));
            base_strlcpy(wide->event_id, "fx-3", sizeof(wide->event_id));
            wide->ts_ms = T0 + 5000;
            wide->action[1] = 1;
            wide->pmf[0] = wide->pmf[1] = 0.5f;
            TST_OK(sto_inbox_add(s, "p", STO_DECISIONS, d1, "b", NULL));
            TST_OK(sto_inbox_add(s, "p", STO_DECISIONS, wide, "b", NULL));
            base_decision_free(wide);
        }
        /*
         * One of the same shape served under another list of actions (a rename or a reorder
         * the follower saw first, or not yet): its indexes name other actions, so it does
         * not fit either.
         */
        base_decision *renamed = decision("fx-4", T0 + 5000, 1);
        TST_TRUE(renamed != NULL);
        if (renamed != NULL) {
            base_strlcpy(renamed->actions_hash, "a0123456789abcdef", sizeof(renamed->actions_hash));
            TST_OK(sto_inbox_add(s, "p", STO_DECISIONS, renamed, "b", NULL));
            base_decision_free(renamed);
        }
        TST_EQ(wait_stat(&f, "inbox_bad", 5, 10000), 5);
        st = tst_stats(&f);
        TST_EQ(tst_stat_int(st, "p", "inbox"), 8);
        TST_EQ(tst_stat_int(st, "p", "pending"), 0);
        TST_EQ(tst_stat_int(st, "p", "next_lsn"), 4); /* nothing new logged */
        json_decref(st);
        TST_TRUE(tst_file_has(f.log, "does not fit the policy's definition"));
        /* Taken without a record, they still move the position a checkpoint records. */
        TST_TRUE(wait_stat(&f, "snapshots", snaps + 1, 10000) > snaps);

        /* A restart takes nothing again: the cursor comes back from the checkpoint. */
        TST_EQ(tst_daemon_stop(&f), 0);
        const char *later[] = {"--manual-clock", "1005000", NULL};
        TST_TRUE(tst_daemon_start(&f, true, later));
        st = tst_stats(&f);
        TST_EQ(tst_stat_int(st, "p", "model_version"), ver);
        TST_STREQ(tst_stat_str(st, "p", "model_checksum"), sum);
        json_decref(st);
        TST_EQ(wait_stat(&f, "inbox", 1, 1000), 0); /* watched for 1 s: nothing taken */
        st = tst_stats(&f);
        TST_EQ(tst_stat_int(st, "p", "pending"), 0);
        json_decref(st);
        TST_EQ(tst_daemon_stop(&f), 0);
        base_decision_free(d1);
        base_decision_free(d2);
    }
    sto_store_close(s);
    tst_daemon_fini(&f, tst_failed > 0);
    rlfeed_client_lib_fini();
    return tst_done();
}
