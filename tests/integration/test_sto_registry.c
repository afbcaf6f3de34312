/*
 * storage/registry.c against a private redis-server on a unix socket, with
 * appendfsync always: registry changes (moves, conflicts, missing
 * snapshots, overrides, refusals), pinning against retention, the audit
 * stream, malformed registry fields, and the all-or-nothing claims of
 * store.h (a script whose AOF block was torn loads as none of it). Raw
 * commands (to corrupt fields) go through hiredis directly.
 */
#include <dirent.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/record.h"
#include "proc.h"
#include "storage/server.h"
#include "storage/store.h"
#include "tap.h"

#define TIMEOUT_MS 5000

typedef struct fixture {
    sto_server *srv;
    sto_store *s;
    redisContext *raw;
} fixture;

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

/* A raw command's reply as a string ("" for nil, "ERR.." for errors, the number for integers). */
static void raw(fixture *f, char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void raw(fixture *f, char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(f->raw, fmt, ap);
    va_end(ap);
    if (out != NULL && size > 0) {
        out[0] = '\0';
    }
    if (r == NULL) {
        if (out != NULL) {
            (void)snprintf(out, size, "IOERR");
        }
        return;
    }
    if (out != NULL) {
        if (r->type == REDIS_REPLY_INTEGER) {
            (void)snprintf(out, size, "%lld", r->integer);
        } else if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
                   r->type == REDIS_REPLY_ERROR) {
            (void)snprintf(out, size, "%.*s", (int)r->len, r->str);
        }
    }
    freeReplyObject(r);
}

static base_snapshot *make_model(const char *policy, uint64_t version)
{
    base_snapshot *m = base_snapshot_new(4, 2);
    if (m == NULL) {
        return NULL;
    }
    base_strlcpy(m->policy, policy, sizeof(m->policy));
    base_strlcpy(m->learner, "ridge", sizeof(m->learner));
    m->version = version;
    m->n_updates = version;
    m->dim = 1;
    m->n_actions = 1;
    for (uint32_t i = 0; i < 4; i++) {
        m->params[i] = (float)version + (float)i;
    }
    m->state[0] = 1.0;
    m->state[1] = 2.0;
    return m;
}

static bool save(fixture *f, const char *policy, uint64_t version)
{
    base_snapshot *m = make_model(policy, version);
    bool ok = m != NULL && sto_store_model_save(f->s, m) == BASE_OK;
    base_snapshot_free(m);
    return ok;
}

static uint64_t production_of(fixture *f, const char *policy)
{
    sto_registry g = {0};
    return sto_registry_get(f->s, policy, &g) == BASE_OK ? g.production : UINT64_MAX;
}

static uint64_t audit_len(fixture *f, const char *policy)
{
    uint64_t n = UINT64_MAX;
    return sto_audit_len(f->s, policy, &n) == BASE_OK ? n : UINT64_MAX;
}

static base_err move(fixture *f, const char *policy, uint64_t expect, uint64_t to,
                     sto_change_result *res, uint64_t *prev, char *id)
{
    sto_field fields[] = {{"action", "promote"}, {"who", "test@host"}, {"report", "{\"n\":3}"}};
    sto_change c = {.move = true, .expect = expect, .to = to, .fields = fields, .n_fields = 3};
    return sto_registry_change(f->s, policy, &c, res, prev, id);
}

/* save() indexes without moving online; put moves it. */
static void save_does_not_move_online(fixture *f)
{
    TST_TRUE(save(f, "sv", 5));
    sto_registry g;
    TST_OK(sto_registry_get(f->s, "sv", &g));
    TST_EQ(g.online, 0);
    base_snapshot *m = NULL;
    bool found = false;
    TST_OK(sto_store_model_get(f->s, "sv", 5, &m, &found));
    TST_TRUE(found && m != NULL && m->version == 5 && m->params[3] == 8.0f);
    base_snapshot_free(m);
    char out[64];
    raw(f, out, sizeof(out), "ZSCORE rlfeed:{sv}:models 5");
    TST_STREQ(out, "5");
    base_snapshot *m7 = make_model("sv", 7);
    TST_OK(sto_store_model_put(f->s, m7));
    base_snapshot_free(m7);
    TST_OK(sto_registry_get(f->s, "sv", &g));
    TST_EQ(g.online, 7);
}

static void changes_move_pin_and_audit(fixture *f)
{
    sto_change_result res = STO_MISSING;
    uint64_t prev = 99;
    char id[BASE_STREAM_ID_MAX + 1] = "";
    TST_TRUE(save(f, "rg", 10) && save(f, "rg", 20));

    /* 0 -> 10: moved, pinned, one audit entry whose from/to the script wrote. */
    TST_OK(move(f, "rg", 0, 10, &res, &prev, id));
    TST_EQ(res, STO_CHANGED);
    TST_EQ(prev, 0);
    TST_TRUE(id[0] != '\0');
    TST_EQ(production_of(f, "rg"), 10);
    TST_EQ(audit_len(f, "rg"), 1);

    /* A stale expectation: a conflict, with the current value, and nothing written. */
    TST_OK(move(f, "rg", 0, 20, &res, &prev, NULL));
    TST_EQ(res, STO_CONFLICT);
    TST_EQ(prev, 10);
    TST_EQ(production_of(f, "rg"), 10);
    TST_EQ(audit_len(f, "rg"), 1);

    /* A target that is not stored: missing, nothing written. */
    TST_OK(move(f, "rg", 10, 30, &res, &prev, NULL));
    TST_EQ(res, STO_MISSING);
    TST_EQ(prev, 10);
    TST_EQ(production_of(f, "rg"), 10);
    TST_EQ(audit_len(f, "rg"), 1);

    /* 10 -> 20 -> 0 (the base model needs no snapshot); both versions pinned. */
    TST_OK(move(f, "rg", 10, 20, &res, &prev, NULL));
    TST_TRUE(res == STO_CHANGED && prev == 10);
    TST_OK(move(f, "rg", 20, 0, &res, &prev, NULL));
    TST_TRUE(res == STO_CHANGED && prev == 20);
    char out[64];
    raw(f, out, sizeof(out), "HGET rlfeed:{rg}:registry production");
    TST_STREQ(out, "0");
    TST_EQ(production_of(f, "rg"), 0);
    uint64_t *pin = NULL;
    size_t n_pin = 0;
    TST_OK(sto_pinned_get(f->s, "rg", &pin, &n_pin));
    TST_EQ(n_pin, 2);
    TST_TRUE(n_pin == 2 && pin[0] == 10 && pin[1] == 20);
    base_free(pin);

    /* A refused promotion: only the audit entry, moved 0, its own from/to. */
    sto_field refused[] = {{"action", "promote"}, {"verdict", "hold"}, {"from", "0"}, {"to", "20"}};
    sto_change c = {.fields = refused, .n_fields = 4};
    TST_OK(sto_registry_change(f->s, "rg", &c, &res, &prev, NULL));
    TST_EQ(res, STO_CHANGED);
    TST_EQ(production_of(f, "rg"), 0);
    TST_EQ(audit_len(f, "rg"), 4);
    /* One that names a production no longer there (checked): a conflict, nothing written. */
    sto_change stale = {.check = true, .expect = 20, .fields = refused, .n_fields = 4};
    TST_OK(sto_registry_change(f->s, "rg", &stale, &res, &prev, NULL));
    TST_TRUE(res == STO_CONFLICT && prev == 0);
    TST_EQ(audit_len(f, "rg"), 4);
    stale.expect = 0; /* still 0: recorded */
    TST_OK(sto_registry_change(f->s, "rg", &stale, &res, &prev, NULL));
    TST_TRUE(res == STO_CHANGED && prev == 0);
    TST_EQ(audit_len(f, "rg"), 5);

    /* The trail, oldest first. */
    sto_audit_entry *a = NULL;
    size_t n = 0;
    TST_OK(sto_audit_read(f->s, "rg", "", 100, &a, &n));
    TST_EQ(n, 5);
    if (n == 5) {
        TST_STREQ(a[0].id, id);
        TST_STREQ(a[0].name[0], "moved"); /* first, always */
        TST_STREQ(sto_audit_field(&a[0], "moved"), "1");
        TST_STREQ(sto_audit_field(&a[0], "from"), "0");
        TST_STREQ(sto_audit_field(&a[0], "to"), "10");
        TST_STREQ(sto_audit_field(&a[0], "action"), "promote");
        TST_STREQ(sto_audit_field(&a[0], "report"), "{\"n\":3}");
        TST_TRUE(sto_audit_field(&a[0], "verdict") == NULL);
        TST_STREQ(sto_audit_field(&a[1], "to"), "20");
        TST_STREQ(sto_audit_field(&a[2], "from"), "20");
        TST_STREQ(sto_audit_field(&a[2], "to"), "0");
        TST_STREQ(sto_audit_field(&a[3], "moved"), "0");
        TST_STREQ(sto_audit_field(&a[3], "verdict"), "hold");
    }
    sto_audit_free(a, n);

    /* Reserved or missing names are refused before any I/O. */
    sto_field bad_from[] = {{"action", "promote"}, {"from", "3"}};
    sto_change cb = {.move = true, .expect = 0, .to = 10, .fields = bad_from, .n_fields = 2};
    TST_EQ(sto_registry_change(f->s, "rg", &cb, &res, &prev, NULL), BASE_EINVAL);
    sto_field no_action[] = {{"who", "x"}};
    sto_change cn = {.fields = no_action, .n_fields = 1};
    TST_EQ(sto_registry_change(f->s, "rg", &cn, &res, &prev, NULL), BASE_EINVAL);
    sto_field moved[] = {{"action", "x"}, {"moved", "1"}};
    sto_change cm = {.fields = moved, .n_fields = 2};
    TST_EQ(sto_registry_change(f->s, "rg", &cm, &res, &prev, NULL), BASE_EINVAL);
    sto_change cc = {.canary_op = STO_FIELD_SET, .canary = 1.5, .fields = refused, .n_fields = 1};
    TST_EQ(sto_registry_change(f->s, "rg", &cc, &res, &prev, NULL), BASE_EINVAL);
    sto_change cs = {.serve_op = STO_FIELD_SET, .fields = refused, .n_fields = 1};
    TST_EQ(sto_registry_change(f->s, "rg", &cs, &res, &prev, NULL), BASE_EINVAL);
    TST_EQ(sto_registry_change(f->s, "r{g", &c, &res, &prev, NULL), BASE_EINVAL);
    TST_EQ(audit_len(f, "rg"), 5);
}

static void overrides_set_and_clear(fixture *f)
{
    sto_change_result res;
    uint64_t prev;
    sto_field fields[] = {{"action", "serve"}};
    sto_change c = {.serve_op = STO_FIELD_SET,
                    .serve = STO_SERVE_PRODUCTION,
                    .canary_op = STO_FIELD_SET,
                    .canary = 0.1,
                    .fields = fields,
                    .n_fields = 1};
    TST_OK(sto_registry_change(f->s, "ov", &c, &res, &prev, NULL));
    sto_registry g;
    TST_OK(sto_registry_get(f->s, "ov", &g));
    TST_TRUE(g.serve == STO_SERVE_PRODUCTION && g.canary == 0.1 && g.production == 0);
    char out[64];
    raw(f, out, sizeof(out), "HGET rlfeed:{ov}:registry canary");
    TST_STREQ(out, "0.1"); /* readable, and read back exactly */

    c.serve_op = STO_FIELD_KEEP;
    c.canary = 1.0 / 3.0;
    TST_OK(sto_registry_change(f->s, "ov", &c, &res, &prev, NULL));
    TST_OK(sto_registry_get(f->s, "ov", &g));
    TST_TRUE(g.serve == STO_SERVE_PRODUCTION && g.canary == 1.0 / 3.0);

    c.serve_op = STO_FIELD_CLEAR;
    c.canary_op = STO_FIELD_CLEAR;
    TST_OK(sto_registry_change(f->s, "ov", &c, &res, &prev, NULL));
    TST_OK(sto_registry_get(f->s, "ov", &g));
    TST_TRUE(g.serve == STO_SERVE_UNSET && g.canary < 0);
    TST_EQ(audit_len(f, "ov"), 3);
}

/* Promoted versions are pinned: retention keeps them whatever their age. */
static void pinned_survive_prune(fixture *f)
{
    sto_change_result res;
    uint64_t prev, removed = 0;
    for (uint64_t v = 1; v <= 6; v++) {
        TST_TRUE(save(f, "pr", v));
    }
    TST_OK(move(f, "pr", 0, 2, &res, &prev, NULL));
    TST_OK(move(f, "pr", 2, 3, &res, &prev, NULL));
    TST_OK(sto_store_model_prune(f->s, "pr", 1, &removed));
    TST_EQ(removed, 3); /* 1, 4, 5 */
    for (uint64_t v = 1; v <= 6; v++) {
        base_snapshot *m = NULL;
        bool found = false;
        TST_OK(sto_store_model_get(f->s, "pr", v, &m, &found));
        TST_EQ(found, v == 2 || v == 3 || v == 6);
        base_snapshot_free(m);
    }
}

/* Six hundred entries read in batches: complete, in order, after an id, up to max. */
static void audit_reads_in_batches(fixture *f)
{
    sto_change_result res;
    uint64_t prev;
    bool all = true;
    for (int i = 0; i < 600; i++) {
        char k[16];
        (void)snprintf(k, sizeof(k), "%d", i);
        sto_field fields[] = {{"action", "note"}, {"k", k}};
        sto_change c = {.fields = fields, .n_fields = 2};
        all = all && sto_registry_change(f->s, "au", &c, &res, &prev, NULL) == BASE_OK;
    }
    TST_TRUE(all);
    sto_audit_entry *a = NULL;
    size_t n = 0;
    TST_OK(sto_audit_read(f->s, "au", "0", 10000, &a, &n));
    TST_EQ(n, 600);
    size_t in_order = 0;
    for (size_t i = 0; i < n; i++) {
        char k[24];
        (void)snprintf(k, sizeof(k), "%zu", i);
        const char *got = sto_audit_field(&a[i], "k");
        in_order += got != NULL && strcmp(got, k) == 0;
    }
    TST_EQ(in_order, 600);
    char after[BASE_STREAM_ID_MAX + 1] = "";
    if (n == 600) {
        (void)snprintf(after, sizeof(after), "%s", a[299].id);
    }
    sto_audit_free(a, n);
    TST_OK(sto_audit_read(f->s, "au", after, 257, &a, &n));
    TST_EQ(n, 257);
    if (n == 257) {
        TST_STREQ(sto_audit_field(&a[0], "k"), "300");
        TST_STREQ(sto_audit_field(&a[256], "k"), "556");
    }
    sto_audit_free(a, n);
    /* The newest 300 (more than a batch of 256), oldest first: entries 300..599. */
    TST_OK(sto_audit_read_newest(f->s, "au", 300, &a, &n));
    TST_EQ(n, 300);
    if (n == 300) {
        TST_STREQ(sto_audit_field(&a[0], "k"), "300");
        TST_STREQ(sto_audit_field(&a[299], "k"), "599");
    }
    sto_audit_free(a, n);
    TST_OK(sto_audit_read_newest(f->s, "au", 10000, &a, &n));
    TST_EQ(n, 600);
    if (n == 600) {
        TST_STREQ(sto_audit_field(&a[0], "k"), "0");
        TST_STREQ(sto_audit_field(&a[599], "k"), "599");
    }
    sto_audit_free(a, n);
    TST_OK(sto_audit_read(f->s, "none", "", 10, &a, &n));
    TST_TRUE(n == 0 && a == NULL);
    TST_EQ(sto_audit_read(f->s, "", "", 10, &a, &n), BASE_EINVAL);
}

/* Fields nobody of ours wrote are refused, never guessed at. */
static void malformed_registry_is_eproto(fixture *f)
{
    const char *bad[][2] = {
        {"production", "abc"},
        {"production", "-1"},
        {"production", ""},
        {"online", "1x"},
        {"online", "99999999999999999999999"},
        {"serve", "both"},
        {"canary", "1.5"},
        {"canary", "nan"},
        {"canary", "-0.1"},
        {"canary", "0.5 "},
        {"production", "0011"},
        {"canary", " 0.25"},
        {"canary", "0x0.4p0"},
        {"canary", "+0.5"},
        {"canary", "infinity"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sto_registry g;
        raw(f, NULL, 0, "DEL rlfeed:{mf}:registry");
        raw(f, NULL, 0, "HSET rlfeed:{mf}:registry %s %s", bad[i][0], bad[i][1]);
        base_err e = sto_registry_get(f->s, "mf", &g);
        TST_EQ(e, BASE_EPROTO);
        if (e != BASE_EPROTO) {
            printf("#   field %s = '%s'\n", bad[i][0], bad[i][1]);
        }
        char words[400];
        TST_TRUE(strstr(sto_store_strerror(f->s, e, words, sizeof(words)),
                        "rlfeed:{mf}:registry: a field is not as the registry writes it") != NULL);
    }
    /* The registry naming a snapshot that is not stored says which. */
    raw(f, NULL, 0, "DEL rlfeed:{mf}:registry");
    raw(f, NULL, 0, "HSET rlfeed:{mf}:registry online 424242");
    base_snapshot *none = NULL;
    bool found = false;
    base_err ge = sto_store_model_get_online(f->s, "mf", &none, &found);
    TST_EQ(ge, BASE_EPROTO);
    char gwords[400];
    TST_TRUE(strstr(sto_store_strerror(f->s, ge, gwords, sizeof(gwords)),
                    "names snapshot 424242, which is not stored") != NULL);
    /* A change cannot compare against a production that is not a version. */
    sto_change_result res;
    uint64_t prev;
    raw(f, NULL, 0, "DEL rlfeed:{mf}:registry");
    raw(f, NULL, 0, "HSET rlfeed:{mf}:registry production abc");
    TST_EQ(move(f, "mf", 0, 0, &res, &prev, NULL), BASE_EPROTO);
    raw(f, NULL, 0, "HSET rlfeed:{mf}:registry production 007");
    TST_EQ(move(f, "mf", 7, 0, &res, &prev, NULL), BASE_EPROTO);
    TST_EQ(audit_len(f, "mf"), 0);

    /* A key of the wrong type: refused before any write. */
    raw(f, NULL, 0, "DEL rlfeed:{wt}:registry");
    raw(f, NULL, 0, "SET rlfeed:{wt}:pinned oops");
    TST_TRUE(save(f, "wt", 4));
    TST_EQ(move(f, "wt", 0, 4, &res, &prev, NULL), BASE_ESTORE);
    TST_EQ(production_of(f, "wt"), 0);
    TST_EQ(audit_len(f, "wt"), 0);
    uint64_t *pin = NULL;
    size_t n_pin = 0;
    TST_EQ(sto_pinned_get(f->s, "wt", &pin, &n_pin), BASE_ESTORE);
}

static void newest_entry(fixture *f)
{
    sto_entry *e = NULL;
    bool found = true;
    TST_OK(sto_store_read_newest(f->s, STO_JOINED, "nw", &e, &found));
    TST_TRUE(!found && e == NULL);
    for (int i = 0; i < 3; i++) {
        base_decision *d = base_decision_new(0, 1);
        base_joined *j = d != NULL ? base_joined_new(d) : NULL;
        if (j == NULL) {
            base_decision_free(d);
            TST_TRUE(false);
            return;
        }
        base_strlcpy(d->policy, "nw", sizeof(d->policy));
        (void)snprintf(d->event_id, sizeof(d->event_id), "ev-%d", i);
        d->pmf[0] = 1.0f;
        (void)snprintf(j->spec_version, sizeof(j->spec_version), "spec-%d", i);
        sto_append a = {.kind = STO_JOINED, .policy = "nw", .rec = j};
        TST_OK(sto_store_append(f->s, &a, 1));
        TST_OK(a.out_err);
        base_joined_free(j);
    }
    TST_OK(sto_store_read_newest(f->s, STO_JOINED, "nw", &e, &found));
    TST_TRUE(found && e != NULL);
    if (found && e != NULL) {
        const base_joined *j = e[0].rec;
        TST_STREQ(j->spec_version, "spec-2");
        TST_STREQ(j->decision->event_id, "ev-2");
        sto_entries_free(STO_JOINED, e, 1);
    }
}

/* The path of the incremental AOF file in @dir/appendonlydir, into @out. */
static bool find_incr_aof(const char *dir, char *out, size_t size)
{
    char sub[2048];
    bool found = false;
    (void)snprintf(sub, sizeof(sub), "%.1000s/appendonlydir", dir);
    DIR *d = opendir(sub);
    struct dirent *ent;
    while (d != NULL && (ent = readdir(d)) != NULL) {
        if (strstr(ent->d_name, ".incr.aof") != NULL) {
            (void)snprintf(out, size, "%s/%s", sub, ent->d_name);
            found = true;
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    return found;
}

static char *read_file(const char *path, size_t *out_len)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    long n = -1;
    if (fp != NULL && fseek(fp, 0, SEEK_END) == 0) {
        n = ftell(fp);
    }
    if (n >= 0 && fseek(fp, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
    }
    if (buf != NULL && fread(buf, 1, (size_t)n, fp) == (size_t)n) {
        buf[n] = '\0';
        *out_len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    if (fp != NULL) {
        fclose(fp);
    }
    return buf;
}

static const char *last_of(const char *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = n >= k ? n - k + 1 : 0; i-- > 0;) {
        if (memcmp(hay + i, needle, k) == 0) {
            return hay + i;
        }
    }
    return NULL;
}

static bool reconnect_raw(fixture *f)
{
    if (f->raw != NULL) {
        redisFree(f->raw);
    }
    f->raw = redisConnectUnix(sto_server_url(f->srv) + 5);
    return f->raw != NULL && f->raw->err == 0;
}

/*
 * A change survives SIGKILL of Redis (appendfsync always), and its writes
 * sit in the AOF as one MULTI/EXEC block: torn inside, none of it loads.
 */
static void change_is_one_block_in_the_aof(fixture *f)
{
    sto_change_result res;
    uint64_t prev;
    char err[512] = "", aof[4400];
    TST_TRUE(save(f, "aof", 1) && save(f, "aof", 2));
    TST_OK(move(f, "aof", 0, 1, &res, &prev, NULL));
    TST_OK(move(f, "aof", 1, 2, &res, &prev, NULL));
    TST_EQ(production_of(f, "aof"), 2);

    sto_server_kill(f->srv);
    base_err e = sto_server_restart(f->srv, err, sizeof(err));
    TST_OK(e);
    if (e != BASE_OK) {
        printf("# restart: %s\n", err);
        return;
    }
    TST_OK(sto_store_reconnect(f->s));
    TST_EQ(production_of(f, "aof"), 2);
    TST_EQ(audit_len(f, "aof"), 2);

    /* The last script's effects: MULTI, XADD, HSET, SADD x2, EXEC. */
    TST_TRUE(find_incr_aof(sto_server_dir(f->srv), aof, sizeof(aof)));
    size_t len = 0;
    char *text = read_file(aof, &len);
    TST_TRUE(text != NULL);
    if (text == NULL) {
        return;
    }
    const char *multi = last_of(text, len, "*1\r\n$5\r\nMULTI\r\n");
    const char *xadd = last_of(text, len, "$4\r\nXADD\r\n");
    const char *hset = last_of(text, len, "$4\r\nHSET\r\n");
    const char *exec = last_of(text, len, "*1\r\n$4\r\nEXEC\r\n");
    TST_TRUE(multi != NULL && xadd != NULL && hset != NULL && exec != NULL);
    TST_TRUE(multi < xadd && xadd < hset && hset < exec);

    /* Tear the block just after its HSET began, as a crash mid-write would. */
    if (multi != NULL && hset != NULL && hset > multi) {
        sto_server_kill(f->srv);
        TST_TRUE(truncate(aof, (off_t)(hset - text) + 6) == 0);
        e = sto_server_restart(f->srv, err, sizeof(err));
        TST_OK(e);
        if (e == BASE_OK) {
            TST_OK(sto_store_reconnect(f->s));
            TST_EQ(production_of(f, "aof"), 1); /* the move 1 -> 2 is gone whole */
            TST_EQ(audit_len(f, "aof"), 1);     /* and so is its audit entry */
            TST_TRUE(reconnect_raw(f));
        } else {
            printf("# restart: %s\n", err);
        }
    }
    free(text);
}

/* The policy catalog: versions with expected-version checks, history, audit, set, counter. */
static void catalog_versions_history_and_audit(fixture *f)
{
    const sto_field put[] = {{"action", "policy-put"}, {"who", "ops@host"}};
    sto_catalog_put_req q = {.expect = 0,
                             .text = "[policy cat]\ndim = 2\nactions = a, b\nsignal.s = 1\n",
                             .actor = "ops@host",
                             .diff = "+ new policy",
                             .fields = put,
                             .n_fields = 2};
    sto_catalog_result res = STO_CATALOG_CONFLICT;
    uint64_t v = 0, seq0 = 0, seq = 0;
    char audit_id[BASE_STREAM_ID_MAX + 1] = "";
    TST_OK(sto_catalog_seq(f->s, &seq0));
    TST_OK(sto_catalog_put(f->s, "cat", &q, &res, &v, audit_id));
    TST_EQ(res, STO_CATALOG_CHANGED);
    TST_EQ(v, 1);
    TST_TRUE(audit_id[0] != '\0');
    TST_OK(sto_catalog_seq(f->s, &seq));
    TST_EQ(seq, seq0 + 1);
    /* The same expected version again: a conflict naming the current one, nothing written. */
    TST_OK(sto_catalog_put(f->s, "cat", &q, &res, &v, NULL));
    TST_EQ(res, STO_CATALOG_CONFLICT);
    TST_EQ(v, 1);
    q.expect = 1;
    q.text = "[policy cat]\ndim = 2\nactions = a, b, c\nsignal.s = 1\n";
    q.diff = "- actions = a, b\n+ actions = a, b, c";
    TST_OK(sto_catalog_put(f->s, "cat", &q, &res, &v, NULL));
    TST_TRUE(res == STO_CATALOG_CHANGED && v == 2);
    sto_policy_def d;
    bool found = false;
    TST_OK(sto_catalog_get(f->s, "cat", 0, &d, &found));
    TST_TRUE(found && d.version == 2 && !d.retired && strstr(d.text, "a, b, c") != NULL);
    TST_STREQ(d.actor, "ops@host");
    TST_TRUE(d.ts_ms > 1700000000000LL);
    sto_policy_def_fini(&d);
    TST_OK(sto_catalog_get(f->s, "cat", 1, &d, &found));
    TST_TRUE(found && d.version == 1 && strstr(d.text, "a, b\n") != NULL);
    sto_policy_def_fini(&d);
    TST_OK(sto_catalog_get(f->s, "cat", 9, &d, &found));
    TST_TRUE(!found && d.text == NULL);
    TST_OK(sto_catalog_get(f->s, "nothing", 0, &d, &found));
    TST_TRUE(!found);
    /* Retire: a new version with the current text. */
    const sto_field ret[] = {{"action", "policy-retire"}, {"who", "ops@host"}};
    sto_catalog_put_req rq = {
        .expect = 2, .retire = true, .actor = "ops@host", .fields = ret, .n_fields = 2};
    TST_OK(sto_catalog_put(f->s, "cat", &rq, &res, &v, NULL));
    TST_TRUE(res == STO_CATALOG_CHANGED && v == 3);
    TST_OK(sto_catalog_get(f->s, "cat", 0, &d, &found));
    TST_TRUE(found && d.retired && strstr(d.text, "a, b, c") != NULL);
    sto_policy_def_fini(&d);
    /* Nothing to retire: a conflict. */
    rq.expect = 0;
    TST_OK(sto_catalog_put(f->s, "never", &rq, &res, &v, NULL));
    TST_EQ(res, STO_CATALOG_CONFLICT);
    char(*names)[BASE_NAME_MAX + 1] = NULL;
    size_t n = 0;
    TST_OK(sto_catalog_list(f->s, &names, &n));
    TST_TRUE(n == 1 && strcmp(names[0], "cat") == 0);
    base_free(names);
    /* The audit trail: three entries, each with its version, state and diff. */
    sto_audit_entry *a = NULL;
    size_t na = 0;
    TST_OK(sto_audit_read(f->s, "cat", "", 100, &a, &na));
    TST_EQ(na, 3);
    if (na == 3) {
        TST_STREQ(sto_audit_field(&a[0], "action"), "policy-put");
        TST_STREQ(sto_audit_field(&a[1], "policy_version"), "2");
        TST_STREQ(sto_audit_field(&a[1], "diff"), "- actions = a, b\n+ actions = a, b, c");
        TST_STREQ(sto_audit_field(&a[2], "state"), "retired");
        TST_STREQ(sto_audit_field(&a[2], "action"), "policy-retire");
    }
    sto_audit_free(a, na);
    /* Refusals: no action field, a reserved field, no text, no actor; nothing written. */
    const sto_field bad[] = {{"who", "x"}}, reserved[] = {{"action", "x"}, {"diff", "y"}};
    sto_catalog_put_req b = {.expect = 3, .text = "x", .actor = "a", .fields = bad, .n_fields = 1};
    TST_EQ(sto_catalog_put(f->s, "cat", &b, &res, &v, NULL), BASE_EINVAL);
    b.fields = reserved;
    b.n_fields = 2;
    TST_EQ(sto_catalog_put(f->s, "cat", &b, &res, &v, NULL), BASE_EINVAL);
    b.fields = put;
    b.text = "";
    TST_EQ(sto_catalog_put(f->s, "cat", &b, &res, &v, NULL), BASE_EINVAL);
    b.text = "x";
    b.actor = NULL;
    TST_EQ(sto_catalog_put(f->s, "cat", &b, &res, &v, NULL), BASE_EINVAL);
    /* A key of the wrong type: refused by the script before any write. */
    raw(f, NULL, 0, "SET rlfeed:{odd}:defs x");
    b.actor = "a";
    b.expect = 0;
    TST_EQ(sto_catalog_put(f->s, "odd", &b, &res, &v, NULL), BASE_ESTORE);
    char out[64];
    raw(f, out, sizeof(out), "EXISTS rlfeed:{odd}:def");
    TST_STREQ(out, "0");
}

int main(void)
{
    sto_server_opts opts = {NULL, NULL, "always", true, 10000, false};
    fixture f = {0};
    char err[512] = "";

    if (!on_path("redis-server")) {
        tst_skip_all("redis-server not found on PATH");
    }
    base_err e = sto_server_start(&opts, &f.srv, err, sizeof(err));
    TST_OK(e);
    if (e != BASE_OK) {
        printf("# start: %s\n", err);
        goto done;
    }
    e = sto_store_open(sto_server_url(f.srv), TIMEOUT_MS, &f.s, err, sizeof(err));
    TST_OK(e);
    TST_TRUE(reconnect_raw(&f));
    if (e != BASE_OK || f.raw == NULL || f.raw->err != 0) {
        goto done;
    }
    save_does_not_move_online(&f);
    changes_move_pin_and_audit(&f);
    overrides_set_and_clear(&f);
    pinned_survive_prune(&f);
    audit_reads_in_batches(&f);
    catalog_versions_history_and_audit(&f);
    malformed_registry_is_eproto(&f);
    newest_entry(&f);
    change_is_one_block_in_the_aof(&f);
done:
    if (f.raw != NULL) {
        redisFree(f.raw);
    }
    sto_store_close(f.s);
    sto_server_stop(f.srv);
    return tst_done();
}
