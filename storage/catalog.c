/*
 * The policy catalog (storage/store.h, "Policy definitions"): each policy's definition as
 * INI text, a version per change, the history of versions, and an audit entry per change,
 * written by one Lua script per change; the catalog's member set and change counter.
 */
#include "storage/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include <time.h>
#include "storage/store_impl.h"

#define CATALOG_SET "rlfeed:catalog"
#define CATALOG_SEQ "rlfeed:catalog:seq"

/*
 * KEYS[1] the definition hash, KEYS[2] the history stream, KEYS[3] the audit stream (one
 * hash tag: one slot). ARGV[1] the expected version ("0": none yet), ARGV[2] the state
 * ("active" or "retired"), ARGV[3] the text ("" keeps the current one: a retirement),
 * ARGV[4] the actor, ARGV[5] the time (ms), ARGV[6] the diff, ARGV[7..] the caller's audit
 * pairs. Returns {"changed", version, audit id} or {"conflict", current version}. Every
 * check comes before the first write (the types, the version), as in registry.c.
 */
static const char PUT[] =
    "for _, kt in ipairs({{KEYS[1], 'hash'}, {KEYS[2], 'stream'}, {KEYS[3], 'stream'}}) do "
    "  local t = redis.call('TYPE', kt[1])['ok'] "
    "  if t ~= 'none' and t ~= kt[2] then "
    "    return redis.error_reply('WRONGTYPE ' .. kt[1] .. ' holds a ' .. t) "
    "  end "
    "end "
    "local cur = redis.call('HGET', KEYS[1], 'version') "
    "if cur == false then cur = '0' end "
    "if cur ~= ARGV[1] then return {'conflict', cur} end "
    "local text = ARGV[3] "
    "if text == '' then "
    "  text = redis.call('HGET', KEYS[1], 'text') "
    "  if text == false then return {'conflict', cur} end "
    "end "
    "local v = tostring(tonumber(cur) + 1) "
    "local entry = {'moved', '0'} "
    "for i = 7, #ARGV do entry[#entry + 1] = ARGV[i] end "
    "entry[#entry + 1] = 'policy_version' entry[#entry + 1] = v "
    "entry[#entry + 1] = 'state' entry[#entry + 1] = ARGV[2] "
    "entry[#entry + 1] = 'diff' entry[#entry + 1] = ARGV[6] "
    "local id = redis.call('XADD', KEYS[3], '*', unpack(entry)) "
    "redis.call('XADD', KEYS[2], '*', 'version', v, 'state', ARGV[2], 'text', text, "
    "  'actor', ARGV[4], 'ts', ARGV[5]) "
    "redis.call('HSET', KEYS[1], 'version', v, 'state', ARGV[2], 'text', text, "
    "  'actor', ARGV[4], 'ts', ARGV[5]) "
    "return {'changed', v, id}";

#define PUT_FIXED 12 /* EVAL, script, numkeys, 3 keys, 6 fixed ARGV */

/* The caller's audit pairs: names 1..STO_AUDIT_NAME_MAX, none reserved, sizes bounded. */
static base_err check_fields(const sto_field *f, size_t n, size_t base_bytes)
{
    static const char *const reserved[] = {"moved", "policy_version", "state", "diff"};
    size_t bytes = base_bytes;
    bool has_action = false;
    if (n > STO_AUDIT_MAX_FIELDS || (n > 0 && f == NULL)) {
        return BASE_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (f[i].name == NULL || f[i].value == NULL) {
            return BASE_EINVAL;
        }
        size_t nl = strlen(f[i].name);
        for (size_t r = 0; r < sizeof(reserved) / sizeof(reserved[0]); r++) {
            if (strcmp(f[i].name, reserved[r]) == 0) {
                return BASE_EINVAL;
            }
        }
        if (nl == 0 || nl > STO_AUDIT_NAME_MAX) {
            return BASE_EINVAL;
        }
        has_action = has_action || strcmp(f[i].name, "action") == 0;
        bytes += nl + strlen(f[i].value);
    }
    if (bytes > STO_AUDIT_MAX_BYTES) {
        return BASE_ELIMIT;
    }
    return has_action ? BASE_OK : BASE_EINVAL;
}

base_err sto_catalog_announce(sto_store *s, const char *policy)
{
    const char *sadd[] = {"SADD", CATALOG_SET, policy};
    const char *incr[] = {"INCR", CATALOG_SEQ};
    size_t sl[] = {4, sizeof(CATALOG_SET) - 1, strlen(policy)};
    size_t il[] = {4, sizeof(CATALOG_SEQ) - 1};
    uint64_t n = 0;
    base_err e = sto_run_count(s, 3, sadd, sl, &n);
    return e == BASE_OK ? sto_run_count(s, 2, incr, il, &n) : e;
}

base_err sto_catalog_put(sto_store *s, const char *policy, const sto_catalog_put_req *q,
                         sto_catalog_result *out_result, uint64_t *out_version, char *out_audit_id)
{
    char def[STO_KEY_MAX], hist[STO_KEY_MAX], audit[STO_KEY_MAX], expect[24], ts[24];
    const char *argv[PUT_FIXED + 2 * STO_AUDIT_MAX_FIELDS];
    size_t lens[PUT_FIXED + 2 * STO_AUDIT_MAX_FIELDS];
    const char *text = q->text != NULL ? q->text : "";
    const char *diff = q->diff != NULL ? q->diff : "";
    base_err e = BASE_OK;

    if (q->actor == NULL || q->actor[0] == '\0' || (!q->retire && text[0] == '\0') ||
        strlen(text) > STO_CATALOG_TEXT_MAX) {
        return BASE_EINVAL;
    }
    e = check_fields(q->fields, q->n_fields, strlen(diff));
    if (e == BASE_OK) {
        e = sto_make_key(def, sizeof(def), policy, "def");
    }
    if (e == BASE_OK) {
        e = sto_make_key(hist, sizeof(hist), policy, "defs");
    }
    if (e == BASE_OK) {
        e = sto_make_key(audit, sizeof(audit), policy, "audit");
    }
    if (e != BASE_OK) {
        return e;
    }
    (void)snprintf(expect, sizeof(expect), "%llu", (unsigned long long)q->expect);
    struct timespec now;
    (void)clock_gettime(CLOCK_REALTIME, &now);
    (void)snprintf(ts, sizeof(ts), "%lld",
                   (long long)now.tv_sec * 1000LL + (long long)(now.tv_nsec / 1000000L));
    int argc = 0;
    argv[argc++] = "EVAL";
    argv[argc++] = PUT;
    argv[argc++] = "3";
    argv[argc++] = def;
    argv[argc++] = hist;
    argv[argc++] = audit;
    argv[argc++] = expect;
    argv[argc++] = q->retire ? "retired" : "active";
    argv[argc++] = q->retire ? "" : text;
    argv[argc++] = q->actor;
    argv[argc++] = ts;
    argv[argc++] = diff;
    sto_change_reply rep;
    e = sto_run_change_script(s, argv, lens, argc, sizeof(PUT) - 1, q->fields, q->n_fields, &rep);
    if (e != BASE_OK) {
        return e;
    }
    *out_version = rep.version;
    if (strcmp(rep.word, "conflict") == 0) {
        *out_result = STO_CATALOG_CONFLICT;
        return BASE_OK;
    }
    if (strcmp(rep.word, "changed") != 0 || rep.id[0] == '\0') {
        return BASE_EPROTO;
    }
    if (out_audit_id != NULL) {
        memcpy(out_audit_id, rep.id, sizeof(rep.id));
    }
    *out_result = STO_CATALOG_CHANGED;
    /*
     * The definition is written; the announcement is a second step (the set and the counter
     * are not in the policy's hash slot). If it is lost, readers still find a change of a
     * listed policy at their periodic full read (sto_catalog_list() and each version); a new
     * one is listed once the put is run again (rlfeed policy announces an unchanged put).
     */
    return sto_catalog_announce(s, policy);
}

/* The string element @i of the flat field/value array @r named @name, or NULL. */
static const redisReply *field(const redisReply *r, const char *name)
{
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i];
        if (k->type == REDIS_REPLY_STRING && k->len == strlen(name) &&
            memcmp(k->str, name, k->len) == 0) {
            return r->element[i + 1]->type == REDIS_REPLY_STRING ? r->element[i + 1] : NULL;
        }
    }
    return NULL;
}

/* A definition from the field/value array @r (a hash's HGETALL or a stream entry's fields). */
static base_err def_from(const redisReply *r, sto_policy_def *out)
{
    const redisReply *v = field(r, "version"), *st = field(r, "state"), *tx = field(r, "text");
    const redisReply *ac = field(r, "actor"), *ts = field(r, "ts");
    memset(out, 0, sizeof(*out));
    if (v == NULL || st == NULL || tx == NULL || ac == NULL || ts == NULL ||
        !sto_parse_version(v->str, v->len, &out->version) || out->version == 0 ||
        ac->len >= sizeof(out->actor)) {
        return BASE_EPROTO;
    }
    if (st->len == 7 && memcmp(st->str, "retired", 7) == 0) {
        out->retired = true;
    } else if (st->len != 6 || memcmp(st->str, "active", 6) != 0) {
        return BASE_EPROTO;
    }
    char num[24];
    if (ts->len == 0 || ts->len >= sizeof(num)) {
        return BASE_EPROTO;
    }
    memcpy(num, ts->str, ts->len);
    num[ts->len] = '\0';
    out->ts_ms = strtoll(num, NULL, 10);
    memcpy(out->actor, ac->str, ac->len);
    out->actor[ac->len] = '\0';
    out->text = base_alloc_array(tx->len + 1, 1);
    if (out->text == NULL) {
        return BASE_ENOMEM;
    }
    memcpy(out->text, tx->str, tx->len);
    out->text[tx->len] = '\0';
    return BASE_OK;
}

base_err sto_catalog_get(sto_store *s, const char *policy, uint64_t version, sto_policy_def *out,
                         bool *out_found)
{
    char key[STO_KEY_MAX];
    redisReply *r = NULL;
    bool found = false;
    memset(out, 0, sizeof(*out));
    *out_found = false;
    base_err e = sto_make_key(key, sizeof(key), policy, version == 0 ? "def" : "defs");
    if (e != BASE_OK) {
        return e;
    }
    if (version == 0) {
        const char *argv[] = {"HGETALL", key};
        size_t lens[] = {7, strlen(key)};
        e = sto_run(s, 2, argv, lens, &r);
        if (e == BASE_OK && (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0)) {
            e = BASE_EPROTO;
        }
        found = e == BASE_OK && r->elements > 0;
        if (found) {
            e = def_from(r, out);
        }
    } else {
        /* The history is short: read it whole and take the entry of that version. */
        const char *argv[] = {"XRANGE", key, "-", "+"};
        size_t lens[] = {6, strlen(key), 1, 1};
        e = sto_run(s, 4, argv, lens, &r);
        if (e == BASE_OK && r->type != REDIS_REPLY_ARRAY) {
            e = BASE_EPROTO;
        }
        for (size_t i = 0; e == BASE_OK && !found && i < r->elements; i++) {
            const redisReply *en = r->element[i];
            if (en->type != REDIS_REPLY_ARRAY || en->elements != 2 ||
                en->element[1]->type != REDIS_REPLY_ARRAY || en->element[1]->elements % 2 != 0) {
                e = BASE_EPROTO;
                break;
            }
            sto_policy_def d;
            e = def_from(en->element[1], &d);
            if (e == BASE_OK && d.version == version) {
                *out = d;
                found = true;
            } else {
                sto_policy_def_fini(&d);
            }
        }
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
    if (e != BASE_OK || !found) {
        sto_policy_def_fini(out);
    }
    *out_found = e == BASE_OK && found;
    return e;
}

void sto_policy_def_fini(sto_policy_def *d)
{
    if (d != NULL) {
        base_free(d->text);
        d->text = NULL;
    }
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

base_err sto_catalog_list(sto_store *s, char (**out)[BASE_NAME_MAX + 1], size_t *out_n)
{
    const char *argv[] = {"SMEMBERS", CATALOG_SET};
    size_t lens[] = {8, sizeof(CATALOG_SET) - 1};
    redisReply *r = NULL;
    *out = NULL;
    *out_n = 0;
    base_err e = sto_run(s, 2, argv, lens, &r);
    if (e != BASE_OK) {
        return e;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return BASE_EPROTO;
    }
    char(*names)[BASE_NAME_MAX + 1] =
        base_alloc_zero(r->elements > 0 ? r->elements : 1, sizeof(*names));
    if (names == NULL) {
        freeReplyObject(r);
        return BASE_ENOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *m = r->element[i];
        if (m->type != REDIS_REPLY_STRING || m->len == 0 || m->len > BASE_NAME_MAX) {
            e = BASE_EPROTO;
            break;
        }
        memcpy(names[n], m->str, m->len);
        names[n++][m->len] = '\0';
    }
    freeReplyObject(r);
    if (e != BASE_OK) {
        base_free(names);
        return e;
    }
    qsort(names, n, sizeof(*names), name_cmp);
    *out = names;
    *out_n = n;
    return BASE_OK;
}

base_err sto_catalog_seq(sto_store *s, uint64_t *out)
{
    const char *argv[] = {"GET", CATALOG_SEQ};
    size_t lens[] = {3, sizeof(CATALOG_SEQ) - 1};
    redisReply *r = NULL;
    base_err e = sto_run(s, 2, argv, lens, &r);
    if (e != BASE_OK) {
        return e;
    }
    *out = 0;
    if (r->type == REDIS_REPLY_STRING) {
        e = sto_parse_version(r->str, r->len, out) ? BASE_OK : BASE_EPROTO;
    } else if (r->type != REDIS_REPLY_NIL) {
        e = BASE_EPROTO;
    }
    freeReplyObject(r);
    return e;
}
