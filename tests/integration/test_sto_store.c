/*
 * storage/store against a private redis-server (storage/server) on a unix
 * socket in a temporary directory, with appendfsync always so a SIGKILL
 * loses nothing that was acknowledged. The server is always stopped, and its
 * directory removed, before the test exits.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "base/alloc.h"
#include "base/record.h"
#include "proc.h"
#include "storage/server.h"
#include "storage/spill.h"
#include "storage/store.h"
#include "storage/streamid.h"
#include "lease.h"
#include "tap.h"

#define TIMEOUT_MS 5000
#define N_BULK 1000

/* True if @name is an executable file in a $PATH directory. */

static bool on_path(const char *name)
{
    const char *path = getenv("PATH");
    bool found = false;
    while (path != NULL && *path != '\0' && !found) {
        const char *colon = strchr(path, ':');
        size_t n = colon != NULL ? (size_t)(colon - path) : strlen(path);
        char full[4096];
        int k = snprintf(full, sizeof(full), "%.*s/%s", (int)n, path, name);
        found = k > 0 && (size_t)k < sizeof(full) && access(full, X_OK) == 0;
        path = colon != NULL ? colon + 1 : NULL;
    }
    return found;
}

static base_decision *make_decision(const char *policy, const char *event, uint32_t dim,
                                    uint32_t n_cand, float salt)
{
    base_decision *d = base_decision_new(dim, n_cand);
    if (d == NULL) {
        return NULL;
    }
    base_strlcpy(d->policy, policy, sizeof(d->policy));
    base_strlcpy(d->event_id, event, sizeof(d->event_id));
    base_strlcpy(d->conversation_id, "conv-1", sizeof(d->conversation_id));
    d->ts_ms = 1700000000000 + (int64_t)salt;
    d->model_version = 2;
    d->turn = 1;
    d->chosen = n_cand / 2;
    for (uint32_t i = 0; i < dim; i++) {
        d->embedding[i] = salt + (float)i * 0.5f;
    }
    for (uint32_t i = 0; i < n_cand; i++) {
        d->action[i] = i + 10;
        d->base_logit[i] = salt - (float)i;
        d->pmf[i] = 1.0f / (float)n_cand;
    }
    return d;
}

static bool decision_eq(const base_decision *a, const base_decision *b)
{
    return strcmp(a->policy, b->policy) == 0 && strcmp(a->event_id, b->event_id) == 0 &&
           strcmp(a->conversation_id, b->conversation_id) == 0 && a->ts_ms == b->ts_ms &&
           a->model_version == b->model_version && a->turn == b->turn && a->source == b->source &&
           a->dim == b->dim && a->n_cand == b->n_cand && a->chosen == b->chosen &&
           memcmp(a->embedding, b->embedding, (size_t)a->dim * 4) == 0 &&
           memcmp(a->action, b->action, (size_t)a->n_cand * 4) == 0 &&
           memcmp(a->base_logit, b->base_logit, (size_t)a->n_cand * 4) == 0 &&
           memcmp(a->pmf, b->pmf, (size_t)a->n_cand * 4) == 0;
}

static void make_outcome(base_outcome *o, const char *policy, int i)
{
    memset(o, 0, sizeof(*o));
    base_strlcpy(o->policy, policy, sizeof(o->policy));
    (void)snprintf(o->event_id, sizeof(o->event_id), "ev-%d", i);
    (void)snprintf(o->outcome_id, sizeof(o->outcome_id), "out-%d", i);
    base_strlcpy(o->signal, i % 2 ? "thumbs_up" : "resolved", sizeof(o->signal));
    o->value = (double)i / 7.0;
    o->ts_ms = 1700000000000 + i;
}

static bool outcome_eq(const base_outcome *a, const base_outcome *b)
{
    return strcmp(a->policy, b->policy) == 0 && strcmp(a->event_id, b->event_id) == 0 &&
           strcmp(a->conversation_id, b->conversation_id) == 0 &&
           strcmp(a->outcome_id, b->outcome_id) == 0 && strcmp(a->signal, b->signal) == 0 &&
           a->value == b->value && a->ts_ms == b->ts_ms;
}

static base_snapshot *make_model(const char *policy, uint64_t version)
{
    base_snapshot *m = base_snapshot_new(6, 4);
    if (m == NULL) {
        return NULL;
    }
    base_strlcpy(m->policy, policy, sizeof(m->policy));
    base_strlcpy(m->learner, "linucb", sizeof(m->learner));
    (void)snprintf(m->last_joined_id, sizeof(m->last_joined_id), "1700000000000-%llu",
                   (unsigned long long)version);
    m->version = version;
    m->n_updates = version * 100;
    m->dim = 2;
    m->n_actions = 3;
    for (uint32_t i = 0; i < 6; i++) {
        m->params[i] = (float)version + (float)i / 8.0f;
    }
    for (uint32_t i = 0; i < 4; i++) {
        m->state[i] = (double)version / (double)(i + 3);
    }
    return m;
}

static bool model_eq(const base_snapshot *a, const base_snapshot *b)
{
    return strcmp(a->policy, b->policy) == 0 && strcmp(a->learner, b->learner) == 0 &&
           strcmp(a->last_joined_id, b->last_joined_id) == 0 && a->version == b->version &&
           a->n_updates == b->n_updates && a->ts_ms == b->ts_ms && a->dim == b->dim &&
           a->n_actions == b->n_actions && a->n_params == b->n_params && a->n_state == b->n_state &&
           memcmp(a->params, b->params, (size_t)a->n_params * 4) == 0 &&
           memcmp(a->state, b->state, (size_t)a->n_state * 8) == 0;
}

/* Bad URLs are refused before any I/O; unreachable ones fail with BASE_EIO. */
static void open_rejects_bad_and_unreachable_urls(void)
{
    const char *bad[] = {"http://127.0.0.1:6379",
                         "tcp://127.0.0.1",
                         "tcp://:6379",
                         "tcp://127.0.0.1:0",
                         "tcp://127.0.0.1:99999",
                         "tcp://127.0.0.1:12x",
                         "redis://user@127.0.0.1:6379",
                         "tcp://:@127.0.0.1:6379",
                         "tcp://u:p%zz@127.0.0.1:6379",
                         "tcp://u:p%4@127.0.0.1:6379",
                         "tcp://u:p%00@127.0.0.1:6379",
                         "unix:///tmp/redis.sock",
                         "unix://:pw@tmp/redis.sock",
                         "unix://:pw@",
                         "unix:",
                         ""};
    char err[256];
    sto_store *s = NULL;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        TST_EQ(sto_store_open(bad[i], TIMEOUT_MS, &s, err, sizeof(err)), BASE_EINVAL);
    }
    TST_EQ(sto_store_open(NULL, TIMEOUT_MS, &s, NULL, 0), BASE_EINVAL);
    TST_EQ(sto_store_open("unix:/tmp/x", 0, &s, NULL, 0), BASE_EINVAL);
    TST_TRUE(s == NULL);

    int port = tst_free_port();
    char url[64];
    (void)snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
    TST_EQ(sto_store_open(url, TIMEOUT_MS, &s, err, sizeof(err)), BASE_EIO);
    TST_TRUE(strlen(err) > 0);
    TST_EQ(sto_store_open("unix:/nonexistent-rlfeed/redis.sock", TIMEOUT_MS, &s, err, sizeof(err)),
           BASE_EIO);
    /* A scheme has no case (RFC 3986): these are parsed, then fail to connect, not refused. */
    (void)snprintf(url, sizeof(url), "REDIS://127.0.0.1:%d", port);
    TST_EQ(sto_store_open(url, TIMEOUT_MS, &s, err, sizeof(err)), BASE_EIO);
    TST_EQ(sto_store_open("Unix:/nonexistent-rlfeed/redis.sock", TIMEOUT_MS, &s, err, sizeof(err)),
           BASE_EIO);
    TST_TRUE(s == NULL);
}

static void mixed_batch_reads_back_in_order(sto_store *s)
{
    base_decision *d0 = make_decision("faq", "ev-a", 3, 2, 1.0f);
    base_decision *d1 = make_decision("faq", "ev-b", 0, 1, 2.0f);
    base_joined *j = base_joined_new(make_decision("faq", "ev-a", 3, 2, 1.0f));
    base_outcome o0, o1;
    make_outcome(&o0, "faq", 1);
    make_outcome(&o1, "faq", 2);
    j->reward = 0.25;
    j->n_outcomes = 1;
    j->joined_ts_ms = 1700000099000;

    sto_append items[] = {
        {.kind = STO_DECISIONS, .policy = "faq", .rec = d0},
        {.kind = STO_OUTCOMES, .policy = "faq", .rec = &o0},
        {.kind = STO_DECISIONS, .policy = "", .rec = d1}, /* no policy: refused locally */
        {.kind = STO_DECISIONS, .policy = "faq", .rec = d1},
        {.kind = STO_JOINED, .policy = "faq", .rec = j},
        {.kind = STO_OUTCOMES, .policy = "faq", .rec = &o1},
        {.kind = STO_OUTCOMES, .policy = "a{b}", .rec = &o1},
    };
    size_t n = sizeof(items) / sizeof(items[0]);
    TST_OK(sto_store_append(s, items, n));
    TST_OK(items[0].out_err);
    TST_OK(items[1].out_err);
    TST_EQ(items[2].out_err, BASE_EINVAL);
    TST_OK(items[3].out_err);
    TST_OK(items[4].out_err);
    TST_OK(items[5].out_err);
    TST_EQ(items[6].out_err, BASE_EINVAL);
    TST_TRUE(items[0].out_id[0] != '\0' && strchr(items[0].out_id, '-') != NULL);

    sto_entry *e = NULL;
    size_t got = 0;
    TST_OK(sto_store_read(s, STO_DECISIONS, "faq", "", 100, &e, &got));
    TST_EQ(got, 2);
    if (got == 2) {
        TST_STREQ(e[0].id, items[0].out_id);
        TST_STREQ(e[1].id, items[3].out_id);
        TST_TRUE(decision_eq(e[0].rec, d0));
        TST_TRUE(decision_eq(e[1].rec, d1));
    }
    sto_entries_free(STO_DECISIONS, e, got);

    TST_OK(sto_store_read(s, STO_OUTCOMES, "faq", "0", 100, &e, &got));
    TST_EQ(got, 2);
    if (got == 2) {
        TST_STREQ(e[0].id, items[1].out_id);
        TST_STREQ(e[1].id, items[5].out_id);
        TST_TRUE(outcome_eq(e[0].rec, &o0));
        TST_TRUE(outcome_eq(e[1].rec, &o1));
    }
    sto_entries_free(STO_OUTCOMES, e, got);

    TST_OK(sto_store_read(s, STO_JOINED, "faq", "", 100, &e, &got));
    TST_EQ(got, 1);
    if (got == 1) {
        const base_joined *g = e[0].rec;
        TST_STREQ(e[0].id, items[4].out_id);
        TST_TRUE(decision_eq(g->decision, j->decision));
        TST_TRUE(g->reward == 0.25 && g->n_outcomes == 1 && !g->defaulted &&
                 g->joined_ts_ms == 1700000099000);
    }
    sto_entries_free(STO_JOINED, e, got);

    TST_OK(sto_store_read(s, STO_JOINED, "nobody", "", 100, &e, &got));
    TST_EQ(got, 0);
    sto_entries_free(STO_JOINED, e, got);

    base_decision_free(d0);
    base_decision_free(d1);
    base_joined_free(j);
}

static void bulk_batch_lands_complete_and_reads_after_id(sto_store *s)
{
    base_outcome *o = base_alloc_array(N_BULK, sizeof(*o));
    sto_append *items = base_alloc_zero(N_BULK, sizeof(*items));
    TST_TRUE(o != NULL && items != NULL);
    if (o == NULL || items == NULL) {
        goto done;
    }
    for (int i = 0; i < N_BULK; i++) {
        make_outcome(&o[i], "bulk", i);
        items[i].kind = STO_OUTCOMES;
        items[i].policy = "bulk";
        items[i].rec = &o[i];
    }
    TST_OK(sto_store_append(s, items, N_BULK));
    size_t ok = 0;
    for (int i = 0; i < N_BULK; i++) {
        ok += items[i].out_err == BASE_OK;
    }
    TST_EQ(ok, N_BULK);
    uint64_t len = 0;
    TST_OK(sto_store_len(s, STO_OUTCOMES, "bulk", &len));
    TST_EQ(len, N_BULK);

    sto_entry *e = NULL;
    size_t got = 0;
    TST_OK(sto_store_read(s, STO_OUTCOMES, "bulk", items[499].out_id, N_BULK, &e, &got));
    TST_EQ(got, N_BULK - 500);
    if (got == N_BULK - 500) {
        size_t same = 0;
        for (size_t i = 0; i < got; i++) {
            same +=
                strcmp(e[i].id, items[500 + i].out_id) == 0 && outcome_eq(e[i].rec, &o[500 + i]);
        }
        TST_EQ(same, got);
    }
    sto_entries_free(STO_OUTCOMES, e, got);

    TST_OK(sto_store_read(s, STO_OUTCOMES, "bulk", items[10].out_id, 5, &e, &got));
    TST_EQ(got, 5);
    if (got == 5) {
        TST_STREQ(e[0].id, items[11].out_id);
        TST_STREQ(e[4].id, items[15].out_id);
    }
    sto_entries_free(STO_OUTCOMES, e, got);

    TST_OK(sto_store_read(s, STO_OUTCOMES, "bulk", items[N_BULK - 1].out_id, 10, &e, &got));
    TST_EQ(got, 0);
    sto_entries_free(STO_OUTCOMES, e, got);
done:
    base_free(o);
    base_free(items);
}

static void model_put_and_get_online(sto_store *s)
{
    base_snapshot *m1 = make_model("faq", 1);
    base_snapshot *m2 = make_model("faq", 2);
    base_snapshot *got = NULL;
    bool found = true;

    TST_OK(sto_store_model_get_online(s, "empty", &got, &found));
    TST_TRUE(!found && got == NULL);

    TST_OK(sto_store_model_put(s, m1));
    TST_OK(sto_store_model_get_online(s, "faq", &got, &found));
    TST_TRUE(found && got != NULL && model_eq(got, m1));
    base_snapshot_free(got);
    got = NULL;

    TST_OK(sto_store_model_put(s, m2));
    TST_OK(sto_store_model_get_online(s, "faq", &got, &found));
    TST_TRUE(found && got != NULL && model_eq(got, m2));
    base_snapshot_free(got);
    got = NULL;

    /* Any stored version by number; the registry names the newest as online. */
    TST_OK(sto_store_model_get(s, "faq", 1, &got, &found));
    TST_TRUE(found && got != NULL && model_eq(got, m1));
    base_snapshot_free(got);
    got = NULL;
    TST_OK(sto_store_model_get(s, "faq", 99, &got, &found));
    TST_TRUE(!found && got == NULL);
    sto_registry g;
    TST_OK(sto_registry_get(s, "faq", &g));
    TST_TRUE(g.online == 2 && g.production == 0 && g.serve == STO_SERVE_UNSET && g.canary < 0);
    TST_OK(sto_registry_get(s, "empty", &g));
    TST_TRUE(g.online == 0 && g.production == 0);

    base_snapshot_free(m1);
    base_snapshot_free(m2);
}

/*
 * Explicit ids: stored as given; the same XADD again is refused as behind
 * the stream's top and sto_store_match() tells a stored copy from a
 * stranger; malformed ids are refused before anything is sent.
 */
static void explicit_ids_make_retries_idempotent(sto_store *s)
{
    base_outcome o[4];
    char top[BASE_STREAM_ID_MAX + 1] = "";
    for (int i = 0; i < 4; i++) {
        make_outcome(&o[i], "ids", 100 + i);
    }
    TST_OK(sto_store_last_id(s, STO_OUTCOMES, "ids", top));
    TST_STREQ(top, "0-0"); /* a stream never written */

    sto_append first[] = {
        {.kind = STO_OUTCOMES, .policy = "ids", .rec = &o[0], .id = "1700000000000-0"},
        {.kind = STO_OUTCOMES, .policy = "ids", .rec = &o[1], .id = "1700000000000-1"},
    };
    TST_OK(sto_store_append(s, first, 2));
    TST_OK(first[0].out_err);
    TST_OK(first[1].out_err);
    TST_STREQ(first[0].out_id, "1700000000000-0");
    TST_STREQ(first[1].out_id, "1700000000000-1");
    TST_TRUE(!first[0].out_behind && !first[1].out_behind);

    /* The pipeline sent again, one record longer: as after a lost connection. */
    sto_append again[] = {
        {.kind = STO_OUTCOMES, .policy = "ids", .rec = &o[0], .id = "1700000000000-0"},
        {.kind = STO_OUTCOMES, .policy = "ids", .rec = &o[1], .id = "1700000000000-1"},
        {.kind = STO_OUTCOMES, .policy = "ids", .rec = &o[2], .id = "1700000000005-0"},
    };
    TST_OK(sto_store_append(s, again, 3));
    TST_EQ(again[0].out_err, BASE_ESTORE);
    TST_TRUE(again[0].out_behind);
    TST_EQ(again[1].out_err, BASE_ESTORE);
    TST_TRUE(again[1].out_behind);
    TST_OK(again[2].out_err);
    TST_STREQ(again[2].out_id, "1700000000005-0");

    sto_match m = STO_DIFFERENT;
    TST_OK(sto_store_match(s, STO_OUTCOMES, "ids", "1700000000000-1", &o[1], &m));
    TST_EQ(m, STO_SAME);
    TST_OK(sto_store_match(s, STO_OUTCOMES, "ids", "1700000000000-1", &o[3], &m));
    TST_EQ(m, STO_DIFFERENT);
    TST_OK(sto_store_match(s, STO_OUTCOMES, "ids", "1700000000000-2", &o[3], &m));
    TST_EQ(m, STO_ABSENT);
    TST_EQ(sto_store_match(s, STO_OUTCOMES, "ids", "17-x", &o[3], &m), BASE_EINVAL);

    uint64_t len = 0;
    TST_OK(sto_store_len(s, STO_OUTCOMES, "ids", &len));
    TST_EQ(len, 3);
    TST_OK(sto_store_last_id(s, STO_OUTCOMES, "ids", top));
    TST_STREQ(top, "1700000000005-0");

    /* Malformed ids fail locally and do not disturb their neighbours. */
    sto_append bad[] = {
        {.kind = STO_OUTCOMES, .policy = "ids", .rec = &o[3], .id = "17000000000060"},
        {.kind = STO_OUTCOMES, .policy = "ids", .rec = &o[3], .id = "1700000000006-0"},
        {.kind = STO_OUTCOMES, .policy = "ids", .rec = &o[3], .id = "*"},
        {.kind = STO_OUTCOMES, .policy = "ids", .rec = &o[3], .id = "01-1"},
    };
    TST_OK(sto_store_append(s, bad, 4));
    TST_EQ(bad[0].out_err, BASE_EINVAL);
    TST_OK(bad[1].out_err);
    TST_EQ(bad[2].out_err, BASE_EINVAL);
    TST_EQ(bad[3].out_err, BASE_EINVAL);

    /* Trimming every entry does not lower the last id: XADD is checked against it. */
    uint64_t removed = 0;
    TST_OK(sto_store_trim(s, STO_OUTCOMES, "ids", "1800000000000-0", &removed));
    TST_EQ(removed, 4);
    TST_OK(sto_store_last_id(s, STO_OUTCOMES, "ids", top));
    TST_STREQ(top, "1700000000006-0");
    sto_append after_trim = {
        .kind = STO_OUTCOMES, .policy = "ids", .rec = &o[3], .id = "1700000000006-0"};
    TST_OK(sto_store_append(s, &after_trim, 1));
    TST_TRUE(after_trim.out_err == BASE_ESTORE && after_trim.out_behind);
    TST_OK(sto_store_match(s, STO_OUTCOMES, "ids", "1700000000006-0", &o[3], &m));
    TST_EQ(m, STO_ABSENT); /* behind, yet not there: trimmed */
}

/* Spill files in @dir (".tmp" ones included). */
/*
 * Indexed appends (one pipeline: XADD, HSET, PEXPIRE) find decisions and
 * joined records by event id across hours, newest first; unindexed or
 * out-of-range ones are not found.
 */
static void event_index_finds_decisions_and_joined(sto_store *s)
{
    const int64_t h = 3600000;
    base_decision *d0 = make_decision("idx", "ev-a", 2, 3, 0.0f); /* hour H */
    base_decision *d1 = make_decision("idx", "ev-b", 2, 3, 1.0f); /* hour H */
    base_decision *d2 = make_decision("idx", "ev-c", 2, 3, 2.0f); /* not indexed */
    base_decision *d3 = make_decision("idx", "ev-a", 2, 3, 3.0f); /* ev-a again, 3 h later */
    d3->ts_ms += 3 * h;
    base_decision *dj = base_decision_clone(d0);
    base_joined *j0 = base_joined_new(dj);
    j0->reward = 0.75;
    base_strlcpy(j0->spec_version, "v1", sizeof(j0->spec_version));
    int64_t t0 = d0->ts_ms;
    sto_append a[] = {
        {.kind = STO_DECISIONS,
         .policy = "idx",
         .rec = d0,
         .id = "1700000000000-0",
         .index_ttl_ms = 60000},
        {.kind = STO_DECISIONS,
         .policy = "idx",
         .rec = d1,
         .id = "1700000000001-0",
         .index_ttl_ms = 60000},
        {.kind = STO_DECISIONS, .policy = "idx", .rec = d2, .id = "1700000000002-0"},
        {.kind = STO_JOINED,
         .policy = "idx",
         .rec = j0,
         .id = "1700000000010-0",
         .index_ttl_ms = 60000},
    };
    TST_OK(sto_store_append(s, a, 4));
    for (int i = 0; i < 4; i++) {
        TST_OK(a[i].out_err);
    }
    base_decision *gd = NULL;
    base_joined *gj = NULL;
    bool found = false;
    TST_OK(sto_event_lookup(s, "idx", "ev-a", t0 - 2 * h, t0 + h, &gd, &gj, &found));
    TST_TRUE(found && gd != NULL && decision_eq(d0, gd) && gj != NULL);
    TST_TRUE(gj != NULL && gj->reward == 0.75 && strcmp(gj->spec_version, "v1") == 0);
    base_decision_free(gd);
    base_joined_free(gj);
    gd = NULL;
    gj = NULL;
    TST_OK(sto_event_lookup(s, "idx", "ev-b", t0, t0, &gd, &gj, &found));
    TST_TRUE(found && gd != NULL && decision_eq(d1, gd) && gj == NULL);
    base_decision_free(gd);
    gd = NULL;
    TST_OK(sto_event_lookup(s, "idx", "ev-c", t0 - h, t0 + h, &gd, &gj, &found));
    TST_TRUE(!found && gd == NULL);
    TST_OK(sto_event_lookup(s, "idx", "ev-b", t0 + h, t0 + 5 * h, &gd, &gj, &found));
    TST_TRUE(!found); /* outside the range probed */
    /* ev-a again later: the newest hour wins. */
    sto_append b[] = {{.kind = STO_DECISIONS,
                       .policy = "idx",
                       .rec = d3,
                       .id = "1700000000020-0",
                       .index_ttl_ms = 60000}};
    TST_OK(sto_store_append(s, b, 1));
    TST_OK(b[0].out_err);
    TST_OK(sto_event_lookup(s, "idx", "ev-a", t0 - h, t0 + 4 * h, &gd, &gj, &found));
    TST_TRUE(found && gd != NULL && decision_eq(d3, gd) && gj == NULL);
    base_decision_free(gd);
    TST_EQ(sto_event_lookup(s, "idx", "", t0, t0, &gd, &gj, &found), BASE_EINVAL);
    base_decision_free(d1);
    base_decision_free(d2);
    base_decision_free(d3);
    base_decision_free(d0);
    base_joined_free(j0);
}

/* An outcome for @event (conversation-level when ""), arrived at @arrived. */
static void idx_outcome(base_outcome *o, const char *event, int i, int64_t arrived)
{
    make_outcome(o, "oidx", i);
    base_strlcpy(o->event_id, event, sizeof(o->event_id));
    if (event[0] == '\0') {
        base_strlcpy(o->conversation_id, "cv-1", sizeof(o->conversation_id));
    }
    o->arrived_ms = arrived;
}

/*
 * Outcomes addressed to an event are indexed under the hour of their
 * arrival and read back in stream order across hours, at most @max, with
 * "more" past it; conversation-level outcomes, activations and unindexed
 * appends are not found. An hour keeps at most STO_EVIDX_MAX_OUTCOMES ids
 * of one event.
 */
/*
 * One batch of outcomes of two policies over ten hours each (twenty hour keys: more than a
 * chunk gathers, so some are indexed one by one) and five events: each event's outcomes are
 * found, in stream order, across the hours.
 */
static void event_index_appends_outcomes_of_many_keys(sto_store *s)
{
    enum { N = 60, EVENTS = 5, HOURS = 10 };
    const int64_t h = 3600000, t0 = 1700000000000;
    static const char *const pol[2] = {"oa", "ob"};
    base_outcome o[N];
    sto_append a[N];
    char ids[N][32], ev[EVENTS][16];
    for (int e = 0; e < EVENTS; e++) {
        snprintf(ev[e], sizeof(ev[e]), "me-%d", e);
    }
    for (int i = 0; i < N; i++) {
        idx_outcome(&o[i], ev[i % EVENTS], i, t0 + (int64_t)(i % HOURS) * h);
        base_strlcpy(o[i].policy, pol[i % 2], sizeof(o[i].policy));
        snprintf(ids[i], sizeof(ids[i]), "1700000002%03d-0", i);
        a[i] = (sto_append){.kind = STO_OUTCOMES,
                            .policy = pol[i % 2],
                            .rec = &o[i],
                            .id = ids[i],
                            .index_ttl_ms = 60000};
    }
    TST_OK(sto_store_append(s, a, N));
    int stored = 0, right = 0, lists = 0;
    for (int i = 0; i < N; i++) {
        stored += a[i].out_err == BASE_OK;
    }
    TST_EQ(stored, N);
    for (int p = 0; p < 2; p++) {
        for (int e = 0; e < EVENTS; e++) {
            sto_entry *got = NULL;
            size_t n = 0;
            bool more = true;
            if (sto_event_outcomes(s, pol[p], ev[e], t0, t0 + HOURS * h, 100, &got, &n, &more) !=
                BASE_OK) {
                continue;
            }
            size_t k = 0;
            bool ok = !more;
            for (int i = 0; i < N; i++) {
                if (i % 2 == p && i % EVENTS == e) {
                    ok = ok && k < n && strcmp(got[k].id, ids[i]) == 0;
                    k++;
                }
            }
            right += ok && k == n;
            lists++;
            sto_entries_free(STO_OUTCOMES, got, n);
        }
    }
    TST_EQ(lists, 2 * EVENTS);
    TST_EQ(right, 2 * EVENTS);
}

/*
 * One batch whose decisions fall in more hours than a chunk keeps index keys for
 * (IDX_KEYS_MAX, storage/append.c), interleaved, with an outcome among them: every decision
 * is found by its event id, and every hour key has its TTL.
 */
static void event_index_spans_many_hours_in_one_batch(sto_store *s, const sto_server *srv)
{
    enum { N = 40, HOURS = 12 };
    const int64_t h = 3600000;
    base_decision *d[N];
    sto_append a[N + 1];
    char ids[N + 1][32];
    base_outcome o;
    memset(a, 0, sizeof(a));
    for (int i = 0; i < N; i++) {
        char ev[16];
        snprintf(ev, sizeof(ev), "hv-%d", i);
        d[i] = make_decision("idxh", ev, 2, 3, (float)i);
        d[i]->ts_ms += (int64_t)(i % HOURS) * h;
        snprintf(ids[i], sizeof(ids[i]), "1700000000%03d-0", i);
        a[i] = (sto_append){.kind = STO_DECISIONS,
                            .policy = "idxh",
                            .rec = d[i],
                            .id = ids[i],
                            .index_ttl_ms = 60000};
    }
    make_outcome(&o, "idxh", 1);
    base_strlcpy(o.event_id, "hv-3", sizeof(o.event_id));
    snprintf(ids[N], sizeof(ids[N]), "1700000000500-0");
    a[N] = (sto_append){
        .kind = STO_OUTCOMES, .policy = "idxh", .rec = &o, .id = ids[N], .index_ttl_ms = 60000};
    TST_OK(sto_store_append(s, a, N + 1));
    int stored = 0, found_n = 0;
    for (int i = 0; i <= N; i++) {
        stored += a[i].out_err == BASE_OK;
    }
    for (int i = 0; i <= N; i++) {
        if (a[i].out_err != BASE_OK) {
            printf("# item %d: %s refused=%d\n", i, base_strerror(a[i].out_err), a[i].out_refused);
        }
    }
    TST_EQ(stored, N + 1);
    for (int i = 0; i < N; i++) {
        base_decision *gd = NULL;
        base_joined *gj = NULL;
        bool found = false;
        base_err e =
            sto_event_lookup(s, "idxh", d[i]->event_id, d[i]->ts_ms, d[i]->ts_ms, &gd, &gj, &found);
        found_n += e == BASE_OK && found && gd != NULL && decision_eq(d[i], gd);
        base_decision_free(gd);
        base_joined_free(gj);
    }
    TST_EQ(found_n, N);
    redisContext *c = redisConnectUnix(sto_server_url(srv) + strlen("unix:"));
    int with_ttl = 0;
    for (int k = 0; c != NULL && !c->err && k < HOURS; k++) {
        redisReply *r =
            redisCommand(c, "PTTL rlfeed:{idxh}:evidx:%lld", (long long)((d[k]->ts_ms) / h));
        with_ttl +=
            r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer > 0 && r->integer <= 60000;
        freeReplyObject(r);
    }
    TST_EQ(with_ttl, HOURS);
    redisFree(c);
    for (int i = 0; i < N; i++) {
        base_decision_free(d[i]);
    }
}

static void event_index_finds_outcomes(sto_store *s)
{
    const int64_t h = 3600000, t0 = 1700000000000;
    base_outcome o[6];
    idx_outcome(&o[0], "ev-o", 0, t0);         /* hour H */
    idx_outcome(&o[1], "ev-other", 1, t0);     /* another event */
    idx_outcome(&o[2], "", 2, t0);             /* its conversation: not indexed */
    idx_outcome(&o[3], "ev-o", 3, t0 + 2 * h); /* hour H + 2 */
    idx_outcome(&o[4], "ev-o", 4, t0 + 10);    /* hour H */
    idx_outcome(&o[5], "ev-o", 5, t0 + 20);    /* activation: not indexed */
    o[5].type = BASE_OUT_ACTIVATE;
    const char *ids[] = {"1700000000000-0", "1700000000001-0", "1700000000002-0",
                         "1700000000003-0", "1700000000004-0", "1700000000005-0"};
    sto_append a[6];
    for (int i = 0; i < 6; i++) {
        a[i] = (sto_append){.kind = STO_OUTCOMES,
                            .policy = "oidx",
                            .rec = &o[i],
                            .id = ids[i],
                            .index_ttl_ms = 60000};
    }
    a[4].index_ttl_ms = 0; /* not indexed */
    TST_OK(sto_store_append(s, a, 6));
    for (int i = 0; i < 6; i++) {
        TST_OK(a[i].out_err);
    }
    sto_entry *got = NULL;
    size_t n = 0;
    bool more = true;
    TST_OK(sto_event_outcomes(s, "oidx", "ev-o", t0 - h, t0 + 3 * h, 8, &got, &n, &more));
    TST_EQ(n, 2);
    TST_TRUE(!more);
    if (n == 2) {
        TST_STREQ(got[0].id, ids[0]);
        TST_TRUE(outcome_eq(got[0].rec, &o[0]));
        TST_STREQ(got[1].id, ids[3]);
        TST_TRUE(outcome_eq(got[1].rec, &o[3]));
    }
    sto_entries_free(STO_OUTCOMES, got, n);
    got = NULL;
    TST_OK(sto_event_outcomes(s, "oidx", "ev-o", t0 - h, t0 + 3 * h, 1, &got, &n, &more));
    TST_TRUE(n == 1 && more);
    sto_entries_free(STO_OUTCOMES, got, n);
    got = NULL;
    TST_OK(sto_event_outcomes(s, "oidx", "ev-o", t0 + h, t0 + 3 * h, 8, &got, &n, &more));
    TST_TRUE(n == 1 && !more); /* hour H is outside the range probed */
    sto_entries_free(STO_OUTCOMES, got, n);
    got = (sto_entry *)1;
    TST_OK(sto_event_outcomes(s, "oidx", "ev-none", t0, t0, 8, &got, &n, &more));
    TST_TRUE(n == 0 && got == NULL && !more);
    TST_EQ(sto_event_outcomes(s, "oidx", "", t0, t0, 8, &got, &n, &more), BASE_EINVAL);
    TST_EQ(sto_event_outcomes(s, "oidx", "ev-o", t0, t0, 0, &got, &n, &more), BASE_EINVAL);

    /* A full hour: later outcomes are stored but not indexed; "more" says so. */
    enum { N_FULL = STO_EVIDX_MAX_OUTCOMES + 2 };
    static base_outcome f[N_FULL];
    static sto_append fa[N_FULL];
    static char fid[N_FULL][BASE_STREAM_ID_MAX + 1];
    for (int i = 0; i < N_FULL; i++) {
        idx_outcome(&f[i], "ev-full", i, t0 + 5 * h);
        (void)snprintf(fid[i], sizeof(fid[i]), "1700000001000-%d", i);
        fa[i] = (sto_append){.kind = STO_OUTCOMES,
                             .policy = "oidx",
                             .rec = &f[i],
                             .id = fid[i],
                             .index_ttl_ms = 60000};
    }
    TST_OK(sto_store_append(s, fa, N_FULL));
    TST_OK(fa[N_FULL - 1].out_err);
    got = NULL;
    TST_OK(sto_event_outcomes(s, "oidx", "ev-full", t0, t0 + 6 * h, 1000, &got, &n, &more));
    TST_EQ(n, STO_EVIDX_MAX_OUTCOMES);
    TST_TRUE(more);
    TST_TRUE(n > 0 && strcmp(got[n - 1].id, fid[STO_EVIDX_MAX_OUTCOMES - 1]) == 0);
    sto_entries_free(STO_OUTCOMES, got, n);
}

static int count_spills(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *ent;
    while (d != NULL && (ent = readdir(d)) != NULL) {
        n += strncmp(ent->d_name, "rlfeed-spill-", 13) == 0;
    }
    if (d != NULL) {
        closedir(d);
    }
    return n;
}

/* Write outcomes "out-<first>".. (@n of them) of @policy at ids "<ms>-<k>" to a new spill file. */
static bool spill_outcomes(const char *dir, const char *policy, int first, int n, uint64_t ms,
                           char *out_path, size_t path_len)
{
    char err[256] = "";
    sto_spill *w = NULL;
    if (sto_spill_create(dir, &w, err, sizeof(err)) != BASE_OK) {
        printf("# spill: %s\n", err);
        return false;
    }
    for (int k = 0; k < n; k++) {
        base_outcome o;
        char id[BASE_STREAM_ID_MAX + 1];
        make_outcome(&o, policy, first + k);
        (void)snprintf(id, sizeof(id), "%llu-%d", (unsigned long long)ms, k);
        if (sto_spill_add(w, STO_OUTCOMES, policy, id, &o) != BASE_OK) {
            sto_spill_abort(w);
            return false;
        }
    }
    return sto_spill_commit(w, out_path, path_len, err, sizeof(err)) == BASE_OK;
}

/* The outcome ids of @policy's stream, in stream order, as one string "out-1,out-2,". */
static void stream_outcome_ids(sto_store *s, const char *policy, char *out, size_t size)
{
    sto_entry *e = NULL;
    size_t got = 0;
    size_t used = 0;
    out[0] = '\0';
    if (sto_store_read(s, STO_OUTCOMES, policy, "", 1000, &e, &got) != BASE_OK) {
        return;
    }
    for (size_t k = 0; k < got && used < size; k++) {
        const base_outcome *o = e[k].rec;
        int w = snprintf(out + used, size - used, "%s,", o->outcome_id);
        used += w > 0 ? (size_t)w : 0;
    }
    sto_entries_free(STO_OUTCOMES, e, got);
}

/*
 * Replaying spill files: records already stored (an attempt whose reply was
 * lost) are not appended again; a second replay of the same file stores
 * nothing; records whose ids the stream has moved past get new ids above
 * its top, in file order; unfinished and undecodable files are left alone.
 */
static void spill_replay_is_idempotent(sto_store *s, const char *dir)
{
    char spill_dir[4200], path[4400], copy[4400], ids[2048], err[512] = "";
    sto_spill_report rep;
    (void)snprintf(spill_dir, sizeof(spill_dir), "%s/spill", dir);
    mkdir(spill_dir, 0700);

    /* Nothing to replay: a missing directory is fine too. */
    (void)snprintf(path, sizeof(path), "%s/none", dir);
    TST_OK(sto_spill_replay(s, path, &rep, err, sizeof(err)));
    TST_EQ(rep.files, 0);

    /* Five outcomes; the first two reached Redis before the writer gave up. */
    TST_TRUE(spill_outcomes(spill_dir, "sp", 0, 5, 1700000005000ull, path, sizeof(path)));
    for (int k = 0; k < 2; k++) {
        base_outcome o;
        char id[32];
        make_outcome(&o, "sp", k);
        (void)snprintf(id, sizeof(id), "1700000005000-%d", k);
        sto_append a = {.kind = STO_OUTCOMES, .policy = "sp", .rec = &o, .id = id};
        TST_OK(sto_store_append(s, &a, 1));
        TST_OK(a.out_err);
    }
    (void)snprintf(copy, sizeof(copy), "%s/keep", dir);
    TST_TRUE(link(path, copy) == 0);
    TST_OK(sto_spill_replay(s, spill_dir, &rep, err, sizeof(err)));
    TST_TRUE(rep.files == 1 && rep.records == 5 && rep.present == 2 && rep.appended == 3 &&
             rep.renumbered == 0);
    TST_EQ(count_spills(spill_dir), 0);
    stream_outcome_ids(s, "sp", ids, sizeof(ids));
    TST_STREQ(ids, "out-0,out-1,out-2,out-3,out-4,");

    /* The same file again (a replay cut short before the file was removed). */
    TST_TRUE(link(copy, path) == 0);
    TST_OK(sto_spill_replay(s, spill_dir, &rep, err, sizeof(err)));
    TST_TRUE(rep.files == 1 && rep.present == 5 && rep.appended == 0);
    stream_outcome_ids(s, "sp", ids, sizeof(ids));
    TST_STREQ(ids, "out-0,out-1,out-2,out-3,out-4,");
    unlink(copy);

    /* A stream that moved past the spilled ids: new ids above the top, in file order. */
    base_outcome fo;
    make_outcome(&fo, "sp2", 99);
    sto_append a = {.kind = STO_OUTCOMES, .policy = "sp2", .rec = &fo, .id = "1800000000000-0"};
    TST_OK(sto_store_append(s, &a, 1));
    TST_TRUE(spill_outcomes(spill_dir, "sp2", 10, 3, 1700000006000ull, path, sizeof(path)));
    TST_OK(sto_spill_replay(s, spill_dir, &rep, err, sizeof(err)));
    TST_TRUE(rep.files == 1 && rep.appended == 3 && rep.renumbered == 3 && rep.present == 0);
    stream_outcome_ids(s, "sp2", ids, sizeof(ids));
    TST_STREQ(ids, "out-99,out-10,out-11,out-12,");
    TST_EQ(count_spills(spill_dir), 0);

    /*
     * Replayed as an instance: a policy another instance holds the lease of now is not
     * appended (dropped with the file, counted); one this instance holds, or nobody, is.
     */
    bool held = false;
    char holder[64];
    int64_t left = 0;
    TST_OK(tst_lease_take(s, "sp5", "inst-b", 60000, false, &held, holder, sizeof(holder), &left));
    TST_OK(tst_lease_take(s, "sp6", "inst-a", 60000, false, &held, holder, sizeof(holder), &left));
    TST_OK(sto_lease_holder(s, "sp5", holder, sizeof(holder)));
    TST_STREQ(holder, "inst-b");
    TST_OK(sto_lease_holder(s, "sp7", holder, sizeof(holder)));
    TST_STREQ(holder, "");
    TST_TRUE(spill_outcomes(spill_dir, "sp5", 0, 2, 1700000006500ull, path, sizeof(path)));
    TST_TRUE(spill_outcomes(spill_dir, "sp6", 0, 2, 1700000006600ull, path, sizeof(path)));
    TST_TRUE(spill_outcomes(spill_dir, "sp7", 0, 1, 1700000006700ull, path, sizeof(path)));
    TST_OK(sto_spill_replay_as(s, spill_dir, "inst-a", &rep, err, sizeof(err)));
    TST_TRUE(rep.files == 3 && rep.appended == 3 && rep.foreign == 2);
    uint64_t len = 0;
    TST_OK(sto_store_len(s, STO_OUTCOMES, "sp5", &len));
    TST_EQ(len, 0);
    TST_OK(sto_store_len(s, STO_OUTCOMES, "sp6", &len));
    TST_EQ(len, 2);
    TST_OK(sto_store_len(s, STO_OUTCOMES, "sp7", &len));
    TST_EQ(len, 1);
    TST_EQ(count_spills(spill_dir), 0);

    /* Two files replay oldest first; an unfinished .tmp is reported and kept. */
    char p1[4400], p2[4400], tmp[4500];
    TST_TRUE(spill_outcomes(spill_dir, "sp3", 0, 2, 1700000007000ull, p1, sizeof(p1)));
    TST_TRUE(spill_outcomes(spill_dir, "sp3", 2, 2, 1700000008000ull, p2, sizeof(p2)));
    TST_TRUE(strcmp(p1, p2) < 0);
    (void)snprintf(tmp, sizeof(tmp), "%s/rlfeed-spill-0000000000000001.bin.tmp", spill_dir);
    FILE *f = fopen(tmp, "w");
    TST_TRUE(f != NULL);
    if (f != NULL) {
        fputs("half", f);
        fclose(f);
    }
    TST_OK(sto_spill_replay(s, spill_dir, &rep, err, sizeof(err)));
    TST_TRUE(rep.files == 2 && rep.appended == 4 && rep.partial == 1);
    stream_outcome_ids(s, "sp3", ids, sizeof(ids));
    TST_STREQ(ids, "out-0,out-1,out-2,out-3,");
    TST_EQ(count_spills(spill_dir), 1);
    unlink(tmp);

    /* A file that does not decode stops the replay and stays. */
    (void)snprintf(path, sizeof(path), "%s/rlfeed-spill-0000000000000002.bin", spill_dir);
    f = fopen(path, "w");
    if (f != NULL) {
        fputs("RLFSPILL garbage", f);
        fclose(f);
    }
    TST_EQ(sto_spill_replay(s, spill_dir, &rep, err, sizeof(err)), BASE_EPROTO);
    TST_TRUE(strstr(err, "rlfeed-spill-0000000000000002.bin") != NULL);
    TST_EQ(count_spills(spill_dir), 1);
    unlink(path);
    rmdir(spill_dir);
}

/* A killed server loses nothing (appendfsync always); the store reconnects. */
static void data_survives_kill_and_store_recovers(sto_server *srv, sto_store *s)
{
    char err[512] = "";
    base_outcome o;
    sto_append item = {.kind = STO_OUTCOMES, .policy = "bulk", .rec = &o};
    make_outcome(&o, "bulk", N_BULK);

    pid_t old = sto_server_pid(srv);
    sto_server_kill(srv);
    TST_TRUE(sto_server_pid(srv) <= 0);
    TST_EQ(sto_store_ping(s), BASE_EIO);
    TST_EQ(sto_store_append(s, &item, 1), BASE_EIO);
    TST_EQ(item.out_err, BASE_EIO);
    uint64_t len = 0;
    TST_EQ(sto_store_len(s, STO_OUTCOMES, "bulk", &len), BASE_EIO);

    base_err e = sto_server_restart(srv, err, sizeof(err));
    TST_OK(e);
    if (e != BASE_OK) {
        printf("# restart: %s\n", err);
        return;
    }
    TST_TRUE(sto_server_pid(srv) > 0 && sto_server_pid(srv) != old);
    TST_EQ(sto_store_ping(s), BASE_EIO); /* still broken until reconnect */
    TST_OK(sto_store_reconnect(s));
    TST_OK(sto_store_ping(s));
    TST_OK(sto_store_len(s, STO_OUTCOMES, "bulk", &len));
    TST_EQ(len, N_BULK);
    sto_entry *ent = NULL;
    size_t got = 0;
    TST_OK(sto_store_read(s, STO_DECISIONS, "faq", "", 10, &ent, &got));
    TST_EQ(got, 2);
    sto_entries_free(STO_DECISIONS, ent, got);
    base_snapshot *m = NULL;
    bool found = false;
    TST_OK(sto_store_model_get_online(s, "faq", &m, &found));
    TST_TRUE(found && m != NULL && m->version == 2);
    base_snapshot_free(m);
    TST_OK(sto_store_append(s, &item, 1));
    TST_OK(item.out_err);
}

/*
 * An error reply that says nothing of the record (here WRONGTYPE: a foreign key where the
 * stream should be) leaves the item unsettled and marked refused, with Redis's words, so
 * the writer keeps it and sends it again; once the key is gone it is stored.
 */
static void refusals_leave_the_record_unsettled(sto_store *s, const sto_server *srv)
{
    base_outcome o;
    make_outcome(&o, "wrongtype", 1);
    redisContext *c = redisConnectUnix(sto_server_url(srv) + strlen("unix:"));
    TST_TRUE(c != NULL && !c->err);
    if (c == NULL || c->err) {
        redisFree(c);
        return;
    }
    redisReply *r = redisCommand(c, "SET rlfeed:{wrongtype}:outcomes foreign");
    TST_TRUE(r != NULL && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    sto_append a = {.kind = STO_OUTCOMES, .policy = "wrongtype", .rec = &o};
    TST_OK(sto_store_append(s, &a, 1));
    TST_EQ(a.out_err, BASE_EIO);
    TST_TRUE(a.out_refused && !a.out_behind && !a.out_fenced);
    TST_TRUE(strncmp(sto_store_refusal(s), "WRONGTYPE", 9) == 0);
    r = redisCommand(c, "DEL rlfeed:{wrongtype}:outcomes");
    TST_TRUE(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    freeReplyObject(r);
    TST_OK(sto_store_append(s, &a, 1));
    TST_OK(a.out_err);
    TST_TRUE(!a.out_refused && a.out_id[0] != '\0');
    redisFree(c);
}

/* XLEN of @key through @c, or -1. */
static long long xlen(redisContext *c, const char *key)
{
    redisReply *r = redisCommand(c, "XLEN %s", key);
    long long n = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

/* A counter of @cmd in INFO commandstats ("calls", "rejected_calls"), 0 if absent; -1 on error. */
static long long cmdstat(redisContext *c, const char *cmd, const char *counter)
{
    redisReply *r = redisCommand(c, "INFO commandstats");
    long long v = -1;
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        char line[64], key[64];
        (void)snprintf(line, sizeof(line), "cmdstat_%s:", cmd);
        (void)snprintf(key, sizeof(key), "%s=", counter);
        const char *at = strstr(r->str, line);
        const char *eol = at != NULL ? strchr(at, '\n') : NULL;
        const char *f = at != NULL ? strstr(at, key) : NULL;
        v = 0;
        if (f != NULL && (eol == NULL || f < eol) && (f == at + strlen(line) || f[-1] == ',')) {
            v = strtoll(f + strlen(key), NULL, 10);
        }
    }
    freeReplyObject(r);
    return v;
}

static bool redis_ok(redisContext *c, const char *cmd)
{
    redisReply *r = redisCommand(c, cmd);
    bool ok = r != NULL && r->type != REDIS_REPLY_ERROR;
    freeReplyObject(r);
    return ok;
}

/*
 * On a single Redis each chunk is one MULTI ... EXEC (storage.md, sto_store_append): a
 * record Redis refuses while running it (WRONGTYPE) fails alone and the rest of the batch
 * is stored; a transaction Redis will not run (OOM, or a key the user may not write) is sent
 * again as a plain pipeline, so each item gets its own answer (all refused under OOM, only
 * the denied key's with the ACL), and later batches go plain until one is stored without a
 * refusal; and a user whose ACL lacks MULTI still gets each record stored exactly once,
 * each with its own result.
 */
static void chunks_are_transactions(sto_store *s, const sto_server *srv)
{
    redisContext *c = redisConnectUnix(sto_server_url(srv) + strlen("unix:"));
    TST_TRUE(c != NULL && !c->err);
    if (c == NULL || c->err) {
        redisFree(c);
        return;
    }
    base_outcome o[4];
    sto_append a[4];
    for (int i = 0; i < 4; i++) {
        make_outcome(&o[i], i == 1 ? "txbad" : "txok", 40 + i);
        a[i] = (sto_append){.kind = STO_OUTCOMES, .policy = o[i].policy, .rec = &o[i]};
    }
    TST_TRUE(redis_ok(c, "SET rlfeed:{txbad}:outcomes foreign"));
    TST_OK(sto_store_append(s, a, 4));
    TST_TRUE(a[0].out_err == BASE_OK && a[2].out_err == BASE_OK && a[3].out_err == BASE_OK);
    TST_TRUE(a[1].out_err == BASE_EIO && a[1].out_refused);
    TST_EQ(xlen(c, "rlfeed:{txok}:outcomes"), 3);
    TST_TRUE(redis_ok(c, "DEL rlfeed:{txbad}:outcomes"));

    /* Refused as a whole: nothing stored, every item refused with Redis's words. */
    TST_TRUE(redis_ok(c, "CONFIG SET maxmemory 1"));
    for (int i = 0; i < 4; i++) {
        make_outcome(&o[i], "txoom", 50 + i);
    }
    long long rejected = cmdstat(c, "xadd", "rejected_calls");
    TST_OK(sto_store_append(s, a, 4));
    int refused = 0;
    for (int i = 0; i < 4; i++) {
        refused += a[i].out_err == BASE_EIO && a[i].out_refused;
    }
    TST_EQ(refused, 4);
    TST_TRUE(strncmp(sto_store_refusal(s), "OOM", 3) == 0);
    TST_EQ(xlen(c, "rlfeed:{txoom}:outcomes"), 0);
    /* Each XADD refused twice: queued in the transaction, then sent again alone. */
    TST_EQ(cmdstat(c, "xadd", "rejected_calls") - rejected, 8);
    /* A checkpoint refused the same way names Redis's words too. */
    base_snapshot *oom = make_model("txoom", 3);
    TST_TRUE(oom != NULL && sto_store_model_put(s, oom) == BASE_ESTORE);
    TST_TRUE(strncmp(sto_store_refusal(s), "OOM", 3) == 0);
    base_snapshot_free(oom);

    /* While the refusal lasts a retry is a plain pipeline: each record is sent once. */
    rejected = cmdstat(c, "xadd", "rejected_calls");
    long long multis = cmdstat(c, "multi", "calls");
    TST_OK(sto_store_append(s, a, 4));
    TST_TRUE(a[0].out_refused && a[3].out_refused);
    TST_EQ(cmdstat(c, "xadd", "rejected_calls") - rejected, 4);
    TST_EQ(cmdstat(c, "multi", "calls"), multis);

    /* Stored without a refusal (still plain), then the next batch is a transaction again. */
    TST_TRUE(redis_ok(c, "CONFIG SET maxmemory 0"));
    TST_OK(sto_store_append(s, a, 4));
    TST_TRUE(a[0].out_err == BASE_OK && a[3].out_err == BASE_OK);
    TST_EQ(xlen(c, "rlfeed:{txoom}:outcomes"), 4);
    TST_EQ(cmdstat(c, "multi", "calls"), multis);
    for (int i = 0; i < 4; i++) {
        make_outcome(&o[i], "txoom", 54 + i);
    }
    TST_OK(sto_store_append(s, a, 4));
    TST_TRUE(a[0].out_err == BASE_OK && a[3].out_err == BASE_OK);
    TST_EQ(xlen(c, "rlfeed:{txoom}:outcomes"), 8);
    TST_EQ(cmdstat(c, "multi", "calls"), multis + 1);

    /* No MULTI for this user: the commands run one by one, each stored once. */
    TST_TRUE(redis_ok(c, "ACL SETUSER nomulti on >pw ~* &* +@all -multi -exec"));
    char url[4400];
    (void)snprintf(url, sizeof(url), "unix://nomulti:pw@%s", sto_server_url(srv) + strlen("unix:"));
    sto_store *st = NULL;
    TST_OK(sto_store_open(url, TIMEOUT_MS, &st, NULL, 0));
    if (st != NULL) {
        for (int i = 0; i < 4; i++) {
            make_outcome(&o[i], "txacl", 60 + i);
        }
        TST_OK(sto_store_append(st, a, 4));
        int stored = 0;
        for (int i = 0; i < 4; i++) {
            stored += a[i].out_err == BASE_OK && a[i].out_id[0] != '\0' && !a[i].out_refused;
        }
        TST_EQ(stored, 4);
        TST_EQ(xlen(c, "rlfeed:{txacl}:outcomes"), 4);
        TST_OK(sto_store_ping(st));
    }
    sto_store_close(st);
    TST_TRUE(redis_ok(c, "ACL DELUSER nomulti"));

    /* A user denied one policy's keys: the transaction is refused, the chunk goes again as
     * a plain pipeline, and only that policy's item is held back. */
    TST_TRUE(redis_ok(c, "ACL SETUSER onepol on >pw ~rlfeed:{txmine}:* &* +@all"));
    (void)snprintf(url, sizeof(url), "unix://onepol:pw@%s", sto_server_url(srv) + strlen("unix:"));
    st = NULL;
    TST_OK(sto_store_open(url, TIMEOUT_MS, &st, NULL, 0));
    if (st != NULL) {
        for (int i = 0; i < 4; i++) {
            make_outcome(&o[i], i == 2 ? "txdenied" : "txmine", 70 + i);
        }
        TST_OK(sto_store_append(st, a, 4));
        TST_TRUE(a[0].out_err == BASE_OK && a[1].out_err == BASE_OK && a[3].out_err == BASE_OK);
        TST_TRUE(a[2].out_err == BASE_EIO && a[2].out_refused);
        TST_TRUE(strncmp(sto_store_refusal(st), "NOPERM", 6) == 0);
        TST_EQ(xlen(c, "rlfeed:{txmine}:outcomes"), 3);
        TST_EQ(xlen(c, "rlfeed:{txdenied}:outcomes"), 0);
    }
    sto_store_close(st);
    TST_TRUE(redis_ok(c, "ACL DELUSER onepol"));
    redisFree(c);
}

/*
 * The lease's value is the instance id and this process's nonce: another process with the
 * same id (its value written here by hand) is taken over only at a start (@restart), as is a
 * value written before nonces; an id that only begins with ours is another instance.
 */
static void lease_takeover_by_the_same_id(sto_store *s, const sto_server *srv)
{
    redisContext *c = redisConnectUnix(sto_server_url(srv) + strlen("unix:"));
    TST_TRUE(c != NULL && !c->err);
    if (c == NULL || c->err) {
        redisFree(c);
        return;
    }
    bool held = false;
    char holder[STO_OWNER_MAX + 1], value[STO_LEASE_VALUE_MAX];
    int64_t left = 0;
    TST_OK(sto_lease_value("host-a:ipc", value, sizeof(value)));
    TST_TRUE(strncmp(value, "host-a:ipc#", 11) == 0 && strlen(value) == 11 + 16);
    TST_TRUE(redis_ok(c, "SET rlfeed:{same}:owner host-a:ipc#0123456789abcdef PX 60000"));
    TST_OK(sto_lease_holder(s, "same", holder, sizeof(holder)));
    TST_STREQ(holder, "host-a:ipc");
    TST_OK(tst_lease_take(s, "same", "host-a:ipc", 60000, false, &held, holder, sizeof(holder),
                          &left));
    TST_TRUE(!held);
    TST_STREQ(holder, "host-a:ipc");
    TST_OK(
        tst_lease_take(s, "same", "host-a:ipc", 60000, true, &held, holder, sizeof(holder), &left));
    TST_TRUE(held);
    redisReply *r = redisCommand(c, "GET rlfeed:{same}:owner");
    TST_TRUE(r != NULL && r->type == REDIS_REPLY_STRING && strcmp(r->str, value) == 0);
    freeReplyObject(r);
    /* The fence is this process's value: the earlier process's writes are refused. */
    TST_TRUE(redis_ok(c, "SET rlfeed:{same}:owner host-a:ipc#0123456789abcdef PX 60000"));
    base_decision *d = make_decision("same", "same-0", 4, 3, 1.0f);
    sto_append a = {.kind = STO_DECISIONS, .policy = "same", .rec = d, .fence = "host-a:ipc"};
    TST_OK(sto_store_append(s, &a, 1));
    TST_TRUE(a.out_err == BASE_ESTORE && a.out_fenced);
    base_decision_free(d);
    /* A value from before nonces: the id alone. */
    TST_TRUE(redis_ok(c, "SET rlfeed:{same}:owner host-a:ipc PX 60000"));
    TST_OK(tst_lease_take(s, "same", "host-a:ipc", 60000, false, &held, holder, sizeof(holder),
                          &left));
    TST_TRUE(!held);
    TST_OK(
        tst_lease_take(s, "same", "host-a:ipc", 60000, true, &held, holder, sizeof(holder), &left));
    TST_TRUE(held);
    /* Instance "host-a:ipc#x" is not instance "host-a:ipc". */
    TST_TRUE(redis_ok(c, "SET rlfeed:{same}:owner host-a:ipc#x#0123456789abcdef PX 60000"));
    TST_OK(
        tst_lease_take(s, "same", "host-a:ipc", 60000, true, &held, holder, sizeof(holder), &left));
    TST_TRUE(!held);
    TST_STREQ(holder, "host-a:ipc#x");
    TST_TRUE(redis_ok(c, "DEL rlfeed:{same}:owner"));
    redisFree(c);
}

static void lease_has_one_owner(sto_store *s)
{
    bool held = false;
    char holder[STO_OWNER_MAX + 1];
    int64_t left = 0;
    TST_OK(
        tst_lease_take(s, "faq", "host-a:ipc", 60000, false, &held, holder, sizeof(holder), &left));
    TST_TRUE(held);
    TST_STREQ(holder, "host-a:ipc");
    /* Another owner is refused and told who holds it and for how long. */
    TST_OK(
        tst_lease_take(s, "faq", "host-b:ipc", 60000, false, &held, holder, sizeof(holder), &left));
    TST_TRUE(!held);
    TST_STREQ(holder, "host-a:ipc");
    TST_TRUE(left > 0 && left <= 60000);
    /* The owner renews; a stranger's release changes nothing. */
    TST_OK(
        tst_lease_take(s, "faq", "host-a:ipc", 60000, false, &held, holder, sizeof(holder), &left));
    TST_TRUE(held);
    TST_OK(sto_lease_release(s, "faq", "host-b:ipc"));
    TST_OK(
        tst_lease_take(s, "faq", "host-b:ipc", 60000, false, &held, holder, sizeof(holder), &left));
    TST_TRUE(!held);
    /* Released by its owner: free for the next. */
    TST_OK(sto_lease_release(s, "faq", "host-a:ipc"));
    TST_OK(
        tst_lease_take(s, "faq", "host-b:ipc", 100, false, &held, holder, sizeof(holder), &left));
    TST_TRUE(held);
    /* A lease that runs out is free too (polled, not slept for). */
    int64_t deadline = tst_now_ms() + 5000;
    held = false;
    while (!held && tst_now_ms() < deadline) {
        TST_OK(tst_lease_take(s, "faq", "host-c:ipc", 60000, false, &held, holder, sizeof(holder),
                              &left));
    }
    TST_TRUE(held);
    TST_OK(sto_lease_release(s, "faq", "host-c:ipc"));
    TST_EQ(tst_lease_take(s, "faq", "", 1000, false, &held, holder, sizeof(holder), &left),
           BASE_EINVAL);
    TST_EQ(tst_lease_take(s, "f{aq", "x", 1000, false, &held, holder, sizeof(holder), &left),
           BASE_EINVAL);
}

static int mode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
}

/* PING through @url: BASE_OK, or why not (BASE_ESTORE: refused). */
static base_err ping_url(const char *url)
{
    sto_store *st = NULL;
    base_err e = sto_store_open(url, TIMEOUT_MS, &st, NULL, 0);
    if (e == BASE_OK) {
        e = sto_store_ping(st);
    }
    sto_store_close(st);
    return e;
}

/*
 * A private server with a generated password (the daemon's): its URL carries it, only its
 * owner can read its files, and a client without it, or with another, is refused, also
 * after a restart. Credentials in URLs: the user form, %XX escapes, redaction.
 */
/*
 * Fenced appends: with the lease held by "inst-a", items fenced by "inst-a" are stored (in
 * one script per run of one policy, each with its own result: a bad id is refused alone),
 * items fenced by "inst-b" are refused as a group (out_fenced) and nothing of them is stored;
 * unfenced items in the same batch are not affected; a policy without a lease refuses all.
 */
static void fenced_appends_need_the_lease(sto_store *s)
{
    bool held = false;
    char holder[64];
    int64_t left = 0;
    TST_OK(
        tst_lease_take(s, "fenced", "inst-a", 60000, false, &held, holder, sizeof(holder), &left));
    TST_TRUE(held);
    base_decision *d[6];
    sto_append a[6];
    memset(a, 0, sizeof(a));
    static const char *const fence[6] = {"inst-a", "inst-a", "inst-a", "inst-b", NULL, "inst-a"};
    static const char *const pol[6] = {"fenced", "fenced", "fenced", "fenced", "fenced", "nolease"};
    static const char *const ids[6] = {"100-1", "100-2", "100-2", "100-3", "100-4", "100-1"};
    for (int i = 0; i < 6; i++) {
        char ev[16];
        snprintf(ev, sizeof(ev), "f-%d", i);
        d[i] = make_decision(pol[i], ev, 4, 3, (float)i);
        a[i].kind = STO_DECISIONS;
        a[i].policy = pol[i];
        a[i].rec = d[i];
        a[i].id = ids[i];
        a[i].fence = fence[i];
    }
    TST_OK(sto_store_append(s, a, 6));
    TST_EQ(a[0].out_err, BASE_OK);
    TST_EQ(a[1].out_err, BASE_OK);
    TST_TRUE(a[2].out_err == BASE_ESTORE && a[2].out_behind && !a[2].out_fenced);
    TST_TRUE(a[3].out_err == BASE_ESTORE && a[3].out_fenced);
    TST_EQ(a[4].out_err, BASE_OK);
    TST_TRUE(a[5].out_err == BASE_ESTORE && a[5].out_fenced);
    TST_STREQ(a[1].out_id, "100-2");
    uint64_t n = 0;
    TST_OK(sto_store_len(s, STO_DECISIONS, "fenced", &n));
    TST_EQ(n, 3);
    TST_OK(sto_store_len(s, STO_DECISIONS, "nolease", &n));
    TST_EQ(n, 0);
    for (int i = 0; i < 6; i++) {
        base_decision_free(d[i]);
    }
}

/* The inbox (shared = on): Redis orders entries of many senders; read after an id; trim. */
static void inbox_orders_reads_and_trims(sto_store *s)
{
    base_decision *d = make_decision("inboxed", "ib-0", 4, 3, 1.0f);
    base_outcome o;
    make_outcome(&o, "inboxed", 1);
    char id[3][BASE_STREAM_ID_MAX + 1];
    TST_OK(sto_inbox_add(s, "inboxed", STO_DECISIONS, d, "inst-b", id[0]));
    TST_OK(sto_inbox_add(s, "inboxed", STO_OUTCOMES, &o, "inst-c", id[1]));
    TST_OK(sto_inbox_add(s, "inboxed", STO_DECISIONS, d, "inst-b", id[2])); /* a retried copy */
    TST_TRUE(sto_sid_cmp_text(id[0], id[1]) < 0 && sto_sid_cmp_text(id[1], id[2]) < 0);
    TST_EQ(sto_inbox_add(s, "inboxed", STO_JOINED, d, "inst-b", NULL), BASE_EINVAL);
    TST_EQ(sto_inbox_add(s, "in{boxed", STO_DECISIONS, d, "inst-b", NULL), BASE_EINVAL);
    sto_inbox_entry *en = NULL;
    size_t n = 0;
    TST_OK(sto_inbox_read(s, "inboxed", "", 10, &en, &n));
    TST_EQ(n, 3);
    if (n == 3) {
        TST_TRUE(en[0].kind == STO_DECISIONS && decision_eq(en[0].rec, d));
        TST_STREQ(en[0].from, "inst-b");
        TST_STREQ(en[0].id, id[0]);
        const base_outcome *got = en[1].rec;
        TST_TRUE(en[1].kind == STO_OUTCOMES && strcmp(got->outcome_id, o.outcome_id) == 0 &&
                 got->arrived_ms == o.arrived_ms);
        TST_STREQ(en[1].from, "inst-c");
    }
    sto_inbox_free(en, n);
    TST_OK(sto_inbox_read(s, "inboxed", id[0], 1, &en, &n)); /* after, and at most 1 */
    TST_TRUE(n == 1 && strcmp(en[0].id, id[1]) == 0);
    sto_inbox_free(en, n);
    TST_OK(sto_inbox_read(s, "inboxed", id[2], 10, &en, &n));
    TST_EQ(n, 0);
    sto_inbox_free(en, n);
    TST_OK(sto_inbox_trim(s, "inboxed", id[1])); /* below id[1]: only id[0] goes */
    TST_OK(sto_inbox_read(s, "inboxed", "", 10, &en, &n));
    TST_TRUE(n == 2 && strcmp(en[0].id, id[1]) == 0);
    sto_inbox_free(en, n);
    TST_OK(sto_inbox_read(s, "empty-inbox", "", 10, &en, &n)); /* no stream: nothing */
    TST_EQ(n, 0);
    sto_inbox_free(en, n);

    /* A batch: one pipeline per policy, each item answered; a bad one alone refused. */
    sto_inbox_item b[5] = {
        {"inbox-x", STO_DECISIONS, d, "inst-b", BASE_OK},
        {"inbox-y", STO_OUTCOMES, &o, "inst-b", BASE_OK},
        {"inbox-x", STO_OUTCOMES, &o, "inst-b", BASE_OK},
        {"inbox-x", STO_JOINED, d, "inst-b", BASE_OK}, /* not a kind an inbox takes */
        {"inbox-y", STO_DECISIONS, d, "inst-c", BASE_OK},
    };
    TST_OK(sto_inbox_add_batch(s, b, 5));
    TST_TRUE(b[0].out_err == BASE_OK && b[1].out_err == BASE_OK && b[2].out_err == BASE_OK &&
             b[4].out_err == BASE_OK);
    TST_EQ(b[3].out_err, BASE_EINVAL);
    TST_OK(sto_inbox_read(s, "inbox-x", "", 10, &en, &n));
    TST_TRUE(n == 2 && en[0].kind == STO_DECISIONS && en[1].kind == STO_OUTCOMES);
    sto_inbox_free(en, n);
    TST_OK(sto_inbox_read(s, "inbox-y", "", 10, &en, &n));
    TST_TRUE(n == 2 && en[0].kind == STO_OUTCOMES && en[1].kind == STO_DECISIONS &&
             strcmp(en[1].from, "inst-c") == 0);
    sto_inbox_free(en, n);
    base_decision_free(d);
}

/*
 * A redis-server that exits at start: the error ends with the end of what it wrote (storage.md
 * section 5: "the tail of redis.log"), where it says why, however long the lines before it.
 */
static void early_exit_shows_the_end_of_its_log(void)
{
    char *dir = tst_mkdtemp("rlfeed-early-exit");
    char script[4200], err[256] = "";
    TST_TRUE(dir != NULL);
    if (dir == NULL) {
        return;
    }
    (void)snprintf(script, sizeof(script), "%s/redis-server", dir);
    FILE *fp = fopen(script, "w");
    if (fp != NULL) {
        fputs("#!/bin/sh\n"
              "i=0; while [ $i -lt 20 ]; do\n"
              "  echo 'a line of start-up chatter that says nothing of the cause' >&2\n"
              "  i=$((i+1)); done\n"
              "echo 'the cause: Bad file format reading the append only file' >&2\n"
              "exit 1\n",
              fp);
        fclose(fp);
    }
    TST_TRUE(chmod(script, 0700) == 0);
    sto_server_opts o = {.redis_bin = script, .appendfsync = "always", .unix_socket = true};
    sto_server *srv = NULL;
    TST_TRUE(sto_server_start(&o, &srv, err, sizeof(err)) != BASE_OK);
    TST_TRUE(srv == NULL);
    printf("# %s\n", err);
    TST_TRUE(strstr(err, "the cause: Bad file format reading the append only file") != NULL);
    TST_TRUE(strncmp(err, "redis-server exited early", 25) == 0);
    tst_rm_rf(dir);
    free(dir);
}

static void private_server_requires_its_password(bool unix_socket)
{
    sto_server_opts o = {.appendfsync = "everysec", .unix_socket = unix_socket, .auth = true};
    sto_server *srv = NULL;
    char err[512] = "", url[4400], path[4200], shown[4400];
    TST_OK(sto_server_start(&o, &srv, err, sizeof(err)));
    if (srv == NULL) {
        printf("# start: %s\n", err);
        return;
    }
    const char *u = sto_server_url(srv);
    const char *dir = sto_server_dir(srv);
    const char *prefix = unix_socket ? "unix://:" : "tcp://:";
    TST_TRUE(strncmp(u, prefix, strlen(prefix)) == 0);
    const char *at = strchr(u, '@');
    TST_TRUE(at != NULL && at - u - (long)strlen(prefix) == 48);
    char pass[64] = "";
    if (at != NULL && at - u - (long)strlen(prefix) == 48) {
        memcpy(pass, u + strlen(prefix), 48);
    }
    TST_OK(ping_url(u));
    TST_EQ(mode_of(dir), 0700);
    snprintf(path, sizeof(path), "%s/redis.conf", dir);
    TST_EQ(mode_of(path), 0600);
    if (unix_socket) {
        snprintf(path, sizeof(path), "%s/redis.sock", dir);
        TST_EQ(mode_of(path), 0700);
        snprintf(url, sizeof(url), "unix:%s/redis.sock", dir);
    } else {
        snprintf(url, sizeof(url), "tcp://%s", at + 1);
    }
    TST_EQ(ping_url(url), BASE_ESTORE); /* NOAUTH */
    const char *where = unix_socket ? path : at + 1;
    const char *scheme = unix_socket ? "unix://" : "tcp://";
    snprintf(url, sizeof(url), "%s:%c%s@%s", scheme, pass[0] == '0' ? '1' : '0', pass + 1, where);
    sto_store *st = NULL;
    TST_EQ(sto_store_open(url, TIMEOUT_MS, &st, err, sizeof(err)), BASE_ESTORE);
    TST_TRUE(strstr(err, "refused the credentials") != NULL && strstr(err, pass) == NULL);
    snprintf(url, sizeof(url), "%sdefault:%s@%s", scheme, pass, where);
    TST_OK(ping_url(url));
    snprintf(url, sizeof(url), "%sdefault:%%%02x%s@%s", scheme, (unsigned)pass[0], pass + 1, where);
    TST_OK(ping_url(url)); /* the first character escaped */
    sto_url_redact(u, shown, sizeof(shown));
    TST_TRUE(strstr(shown, pass) == NULL && strstr(shown, ":***@") != NULL);
    TST_TRUE(strncmp(shown, prefix, strlen(prefix)) == 0 && strcmp(strchr(shown, '@'), at) == 0);
    sto_server_kill(srv);
    TST_OK(sto_server_restart(srv, err, sizeof(err)));
    TST_OK(ping_url(sto_server_url(srv)));
    TST_STREQ(sto_server_url(srv), u); /* same address, same password */
    sto_server_stop(srv);

    /* Malformed ones show no part of a password, wherever its '@' or '/' fall. */
    static const char *const redacted[][2] = {
        {"tcp://u:p%40ss@h:1", "tcp://u:***@h:1"},
        {"unix:/a/b.sock", "unix:/a/b.sock"},
        {"tcp://127.0.0.1:6379", "tcp://127.0.0.1:6379"},
        {"tcp://user:pa/ss@127.0.0.1:6379", "tcp://***@127.0.0.1:6379"},
        {"tcp://:p@ss@h:1", "tcp://***@h:1"},
        {"tcp:/:secretpw@h:1", "***@h:1"},
        {"tcp//u:secretpw@h:1", "***@h:1"},
        {"unix://:pw@/tmp/redis.sock", "unix://:***@/tmp/redis.sock"},
    };
    for (size_t i = 0; i < sizeof(redacted) / sizeof(redacted[0]); i++) {
        sto_url_redact(redacted[i][0], shown, sizeof(shown));
        TST_STREQ(shown, redacted[i][1]);
    }
}

int main(void)
{
    sto_server_opts opts = {NULL, NULL, "always", true, 10000, false};
    sto_server *srv = NULL;
    sto_store *s = NULL;
    char err[512] = "";
    char dir[4096] = "";

    if (!on_path("redis-server")) {
        tst_skip_all("redis-server not found on PATH");
    }
    open_rejects_bad_and_unreachable_urls();
    early_exit_shows_the_end_of_its_log();
    private_server_requires_its_password(true);
    private_server_requires_its_password(false);
    base_err e = sto_server_start(&opts, &srv, err, sizeof(err));
    TST_OK(e);
    if (e != BASE_OK) {
        printf("# start: %s\n", err);
        goto done;
    }
    (void)snprintf(dir, sizeof(dir), "%s", sto_server_dir(srv));
    TST_TRUE(strncmp(sto_server_url(srv), "unix:", 5) == 0);
    e = sto_store_open(sto_server_url(srv), TIMEOUT_MS, &s, err, sizeof(err));
    TST_OK(e);
    if (e != BASE_OK) {
        printf("# open: %s\n", err);
        goto done;
    }
    TST_OK(sto_store_ping(s));
    mixed_batch_reads_back_in_order(s);
    bulk_batch_lands_complete_and_reads_after_id(s);
    model_put_and_get_online(s);
    lease_has_one_owner(s);
    lease_takeover_by_the_same_id(s, srv);
    fenced_appends_need_the_lease(s);
    refusals_leave_the_record_unsettled(s, srv);
    chunks_are_transactions(s, srv);
    inbox_orders_reads_and_trims(s);
    explicit_ids_make_retries_idempotent(s);
    event_index_finds_decisions_and_joined(s);
    event_index_finds_outcomes(s);
    event_index_spans_many_hours_in_one_batch(s, srv);
    event_index_appends_outcomes_of_many_keys(s);
    spill_replay_is_idempotent(s, dir);
    data_survives_kill_and_store_recovers(srv, s);
done:
    sto_store_close(s);
    sto_server_stop(srv);
    if (dir[0] != '\0') {
        struct stat st;
        TST_TRUE(stat(dir, &st) != 0); /* the temporary directory is gone */
    }
    return tst_done();
}
