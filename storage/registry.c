/*
 * Registry changes and the audit trail (storage/store.h): the one Lua
 * script that moves production, pins versions, sets the serving overrides
 * and appends the audit entry; reading the audit stream and the pinned set.
 */
#include "storage/store.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "storage/streamid.h"
#include "storage/store_impl.h"

#define AUDIT_BATCH 256u /* entries per XRANGE */

/*
 * KEYS[1] registry hash, KEYS[2] audit stream, KEYS[3] pinned set,
 * KEYS[4] the target snapshot's key (named even when unused, so a cluster
 * routes the script by all the keys it may touch; one hash tag: one slot).
 * ARGV[1] "1" to move production, ARGV[2] the expected production, ARGV[3]
 * the new one; ARGV[4]/[5] serve op ("k" keep, "s" set, "c" clear) and
 * value; ARGV[6]/[7] the same for canary; ARGV[8..] the caller's pairs.
 * Returns {"changed", previous production, audit id}, {"conflict", current}
 * or {"missing", current}.
 *
 * Every check comes before the first write, and the first write is the
 * XADD, the only one that could still fail (a stream at the largest id):
 * Redis does not undo a script's writes when it stops on an error, so
 * nothing after a write may fail. The types are checked so that HSET and
 * SADD cannot meet WRONGTYPE.
 */
static const char CHANGE[] =
    "for _, kt in ipairs({{KEYS[1], 'hash'}, {KEYS[2], 'stream'}, {KEYS[3], 'set'}}) do "
    "  local t = redis.call('TYPE', kt[1])['ok'] "
    "  if t ~= 'none' and t ~= kt[2] then "
    "    return redis.error_reply('WRONGTYPE ' .. kt[1] .. ' holds a ' .. t) "
    "  end "
    "end "
    "local cur = redis.call('HGET', KEYS[1], 'production') "
    "if cur == false then cur = '0' end "
    "local move = ARGV[1] == '1' "
    "if (move or ARGV[1] == '2') and cur ~= ARGV[2] then return {'conflict', cur} end "
    "if move then "
    "  if ARGV[3] ~= '0' and redis.call('EXISTS', KEYS[4]) == 0 then "
    "    return {'missing', cur} "
    "  end "
    "end "
    "local entry = {'moved', '0'} "
    "if move then entry = {'moved', '1', 'from', cur, 'to', ARGV[3]} end "
    "for i = 8, #ARGV do entry[#entry + 1] = ARGV[i] end "
    "local id = redis.call('XADD', KEYS[2], '*', unpack(entry)) "
    "if move then "
    "  redis.call('HSET', KEYS[1], 'production', ARGV[3]) "
    "  if ARGV[3] ~= '0' then redis.call('SADD', KEYS[3], ARGV[3]) end "
    "  if cur ~= '0' then redis.call('SADD', KEYS[3], cur) end "
    "end "
    "if ARGV[4] == 's' then redis.call('HSET', KEYS[1], 'serve', ARGV[5]) "
    "elseif ARGV[4] == 'c' then redis.call('HDEL', KEYS[1], 'serve') end "
    "if ARGV[6] == 's' then redis.call('HSET', KEYS[1], 'canary', ARGV[7]) "
    "elseif ARGV[6] == 'c' then redis.call('HDEL', KEYS[1], 'canary') end "
    "return {'changed', cur, id}";

#define CHANGE_FIXED 14 /* EVAL, script, numkeys, 4 keys, 7 fixed ARGV */

static const char *op_code(sto_field_op op)
{
    return op == STO_FIELD_SET ? "s" : op == STO_FIELD_CLEAR ? "c" : "k";
}

/* The caller's part of @c is well formed; @bytes gets the pairs' total size. */
static base_err check_change(const sto_change *c, size_t *out_bytes)
{
    size_t bytes = 0;
    bool has_action = false;

    if (c->n_fields > STO_AUDIT_MAX_FIELDS || (c->n_fields > 0 && c->fields == NULL) ||
        c->serve_op > STO_FIELD_CLEAR || c->canary_op > STO_FIELD_CLEAR) {
        return BASE_EINVAL;
    }
    if (c->serve_op == STO_FIELD_SET && c->serve != STO_SERVE_ONLINE &&
        c->serve != STO_SERVE_PRODUCTION) {
        return BASE_EINVAL;
    }
    /* A subnormal share would not read back (strtod: ERANGE); -0 is written as 0. */
    if (c->canary_op == STO_FIELD_SET &&
        !(c->canary >= 0.0 && c->canary <= 1.0 && (c->canary == 0.0 || c->canary >= DBL_MIN))) {
        return BASE_EINVAL; /* also NaN */
    }
    for (size_t i = 0; i < c->n_fields; i++) {
        const sto_field *f = &c->fields[i];
        if (f->name == NULL || f->value == NULL) {
            return BASE_EINVAL;
        }
        size_t nl = strlen(f->name);
        bool reserved = strcmp(f->name, "moved") == 0 ||
                        (c->move && (strcmp(f->name, "from") == 0 || strcmp(f->name, "to") == 0));
        if (nl == 0 || nl > STO_AUDIT_NAME_MAX || reserved) {
            return BASE_EINVAL;
        }
        has_action = has_action || strcmp(f->name, "action") == 0;
        bytes += nl + strlen(f->value);
        if (bytes > STO_AUDIT_MAX_BYTES) {
            return BASE_ELIMIT;
        }
    }
    if (!has_action) {
        return BASE_EINVAL;
    }
    *out_bytes = bytes;
    return BASE_OK;
}

void sto_format_share(double v, char *out, size_t size)
{
    v += 0.0;                              /* -0 is 0 */
    (void)snprintf(out, size, "%.15g", v); /* a double fits in STO_SHARE_TEXT_MAX bytes */
    if (strtod(out, NULL) != v) {
        (void)snprintf(out, size, "%.17g", v);
    }
}

base_err sto_run_change_script(sto_store *s, const char **argv, size_t *lens, int argc,
                               size_t script_len, const sto_field *fields, size_t n_fields,
                               sto_change_reply *out)
{
    for (size_t i = 0; i < n_fields; i++) {
        argv[argc++] = fields[i].name;
        argv[argc++] = fields[i].value;
    }
    for (int i = 0; i < argc; i++) {
        lens[i] = i == 1 ? script_len : strlen(argv[i]);
    }
    redisReply *r = NULL;
    base_err e = sto_run(s, argc, argv, lens, &r);
    if (e != BASE_OK) {
        return e;
    }
    e = BASE_EPROTO;
    memset(out, 0, sizeof(*out));
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 && r->elements <= 3 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING &&
        r->element[0]->len < sizeof(out->word) &&
        sto_parse_version(r->element[1]->str, r->element[1]->len, &out->version)) {
        memcpy(out->word, r->element[0]->str, r->element[0]->len);
        const redisReply *id = r->elements == 3 ? r->element[2] : NULL;
        bool id_ok = id == NULL || (id->type == REDIS_REPLY_STRING && id->len > 0 &&
                                    id->len <= BASE_STREAM_ID_MAX);
        if (id_ok && id != NULL) {
            memcpy(out->id, id->str, id->len);
        }
        e = id_ok ? BASE_OK : BASE_EPROTO;
    }
    freeReplyObject(r);
    return e;
}

base_err sto_registry_change(sto_store *s, const char *policy, const sto_change *c,
                             sto_change_result *out_result, uint64_t *out_production,
                             char *out_audit_id)
{
    char reg[STO_KEY_MAX], audit[STO_KEY_MAX], pinned[STO_KEY_MAX], model[STO_KEY_MAX];
    char suffix[40], expect[24], to[24], canary[STO_SHARE_TEXT_MAX];
    const char *argv[CHANGE_FIXED + 2 * STO_AUDIT_MAX_FIELDS];
    size_t lens[CHANGE_FIXED + 2 * STO_AUDIT_MAX_FIELDS];
    size_t bytes = 0;
    base_err e = check_change(c, &bytes);

    if (e != BASE_OK) {
        goto fail;
    }
    (void)snprintf(suffix, sizeof(suffix), "model:%llu", (unsigned long long)c->to); /* fits */
    e = sto_make_key(reg, sizeof(reg), policy, "registry");
    if (e == BASE_OK) {
        e = sto_make_key(audit, sizeof(audit), policy, "audit");
    }
    if (e == BASE_OK) {
        e = sto_make_key(pinned, sizeof(pinned), policy, "pinned");
    }
    if (e == BASE_OK) {
        e = sto_make_key(model, sizeof(model), policy, suffix);
    }
    if (e != BASE_OK) {
        goto fail;
    }
    (void)snprintf(expect, sizeof(expect), "%llu", (unsigned long long)c->expect); /* fits */
    (void)snprintf(to, sizeof(to), "%llu", (unsigned long long)c->to);             /* fits */
    sto_format_share(c->canary_op == STO_FIELD_SET ? c->canary : 0.0, canary, sizeof(canary));
    const char *serve = c->serve == STO_SERVE_PRODUCTION ? "production" : "online";

    int argc = 0;
    argv[argc++] = "EVAL";
    argv[argc++] = CHANGE;
    argv[argc++] = "4";
    argv[argc++] = reg;
    argv[argc++] = audit;
    argv[argc++] = pinned;
    argv[argc++] = model;
    argv[argc++] = c->move ? "1" : c->check ? "2" : "0";
    argv[argc++] = expect;
    argv[argc++] = to;
    argv[argc++] = op_code(c->serve_op);
    argv[argc++] = serve;
    argv[argc++] = op_code(c->canary_op);
    argv[argc++] = canary;
    sto_change_reply rep;
    e = sto_run_change_script(s, argv, lens, argc, sizeof(CHANGE) - 1, c->fields, c->n_fields,
                              &rep);
    if (e != BASE_OK) {
        goto fail;
    }
    e = BASE_EPROTO;
    uint64_t production = rep.version;
    sto_change_result res;
    if (strcmp(rep.word, "changed") == 0) {
        if (rep.id[0] == '\0') {
            goto fail;
        }
        if (out_audit_id != NULL) {
            memcpy(out_audit_id, rep.id, sizeof(rep.id));
        }
        res = STO_CHANGED;
    } else if (strcmp(rep.word, "conflict") == 0) {
        if (production == c->expect) {
            goto fail; /* equal in value, not in text: "007" is not a version we write */
        }
        res = STO_CONFLICT;
    } else if (strcmp(rep.word, "missing") == 0) {
        res = STO_MISSING;
    } else {
        goto fail;
    }
    *out_result = res;
    *out_production = production;
    e = BASE_OK;
fail:
    return e;
}

/* ---- the audit stream ----------------------------------------------------- */

static void audit_entry_fini(sto_audit_entry *a)
{
    for (size_t i = 0; i < a->n_fields; i++) {
        base_free(a->name[i]);
        base_free(a->value[i]);
    }
    base_free(a->name);
    base_free(a->value);
    a->name = NULL;
    a->value = NULL;
    a->n_fields = 0;
}

void sto_audit_free(sto_audit_entry *e, size_t n)
{
    if (e == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        audit_entry_fini(&e[i]);
    }
    base_free(e);
}

static char *copy_str(const redisReply *r)
{
    char *p = base_alloc(r->len + 1);
    if (p != NULL) {
        memcpy(p, r->str, r->len);
        p[r->len] = '\0';
    }
    return p;
}

/* One XRANGE element [id, [field, value, ...]] into @out (zeroed by the caller). */
static base_err audit_entry_from(const redisReply *el, sto_audit_entry *out)
{
    base_err e = BASE_EPROTO;

    if (el->type != REDIS_REPLY_ARRAY || el->elements != 2 ||
        el->element[0]->type != REDIS_REPLY_STRING || el->element[0]->len == 0 ||
        el->element[0]->len > BASE_STREAM_ID_MAX || el->element[1]->type != REDIS_REPLY_ARRAY ||
        el->element[1]->elements % 2 != 0) {
        goto fail;
    }
    const redisReply *kv = el->element[1];
    size_t n = kv->elements / 2;
    for (size_t i = 0; i < kv->elements; i++) {
        if (kv->element[i]->type != REDIS_REPLY_STRING) {
            goto fail;
        }
    }
    memcpy(out->id, el->element[0]->str, el->element[0]->len);
    out->id[el->element[0]->len] = '\0';
    e = BASE_ENOMEM;
    if (n > 0) {
        out->name = base_alloc_zero(n, sizeof(char *));
        out->value = base_alloc_zero(n, sizeof(char *));
        if (out->name == NULL || out->value == NULL) {
            goto fail;
        }
    }
    for (size_t i = 0; i < n; i++) {
        out->n_fields = i + 1; /* so that fini frees what this pair gets */
        out->name[i] = copy_str(kv->element[2 * i]);
        out->value[i] = copy_str(kv->element[2 * i + 1]);
        if (out->name[i] == NULL || out->value[i] == NULL) {
            goto fail;
        }
    }
    out->n_fields = n;
    e = BASE_OK;
fail:
    if (e != BASE_OK) {
        audit_entry_fini(out);
    }
    return e;
}

/*
 * Up to @max entries after @after_id, oldest first (XRANGE); or with @newest the newest @max
 * of the whole stream (XREVRANGE, then put oldest first).
 */
static base_err audit_read(sto_store *s, const char *policy, const char *after_id, size_t max,
                           bool newest, sto_audit_entry **out, size_t *out_n)
{
    char key[STO_KEY_MAX], start[BASE_STREAM_ID_MAX + 2], count[24];
    redisReply *r = NULL;
    sto_audit_entry *ents = NULL;
    size_t n = 0, cap = 0;
    base_err e = sto_make_key(key, sizeof(key), policy, "audit");

    if (e == BASE_OK && (after_id == NULL || strlen(after_id) > BASE_STREAM_ID_MAX)) {
        e = BASE_EINVAL;
    }
    if (e != BASE_OK) {
        goto fail;
    }
    if (newest) {
        (void)snprintf(start, sizeof(start), "+"); /* XREVRANGE from the end */
    } else if (after_id[0] == '\0' || strcmp(after_id, "0") == 0) {
        (void)snprintf(start, sizeof(start), "-"); /* fits */
    } else {
        (void)snprintf(start, sizeof(start), "(%s", after_id); /* length checked above */
    }
    while (n < max) {
        size_t want = max - n < AUDIT_BATCH ? max - n : AUDIT_BATCH;
        (void)snprintf(count, sizeof(count), "%zu", want); /* fits */
        const char *argv[] = {
            newest ? "XREVRANGE" : "XRANGE", key, start, newest ? "-" : "+", "COUNT", count};
        size_t lens[] = {strlen(argv[0]), strlen(key), strlen(start), 1, 5, strlen(count)};
        e = sto_run(s, 6, argv, lens, &r);
        if (e != BASE_OK) {
            goto fail;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements > want) {
            e = BASE_EPROTO;
            goto fail;
        }
        if (n + r->elements > cap) {
            size_t ncap = cap == 0 ? r->elements : cap * 2;
            ncap = ncap < n + r->elements ? n + r->elements : ncap;
            sto_audit_entry *grown = base_realloc_array(ents, ncap, sizeof(*ents));
            if (grown == NULL) {
                e = BASE_ENOMEM;
                goto fail;
            }
            memset(grown + cap, 0, (ncap - cap) * sizeof(*ents));
            ents = grown;
            cap = ncap;
        }
        for (size_t i = 0; i < r->elements; i++) {
            e = audit_entry_from(r->element[i], &ents[n]);
            if (e != BASE_OK) {
                goto fail;
            }
            n++;
        }
        bool last = r->elements < want;
        freeReplyObject(r);
        r = NULL;
        if (last || n == 0) {
            break;
        }
        (void)snprintf(start, sizeof(start), "(%s", ents[n - 1].id); /* id <= 48 bytes */
    }
    for (size_t i = 0; newest && i < n / 2; i++) {
        sto_audit_entry t = ents[i];
        ents[i] = ents[n - 1 - i];
        ents[n - 1 - i] = t;
    }
    *out = ents;
    *out_n = n;
    ents = NULL;
    n = 0;
fail:
    sto_audit_free(ents, n);
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

base_err sto_audit_read(sto_store *s, const char *policy, const char *after_id, size_t max,
                        sto_audit_entry **out, size_t *out_n)
{
    return audit_read(s, policy, after_id, max, false, out, out_n);
}

base_err sto_audit_read_newest(sto_store *s, const char *policy, size_t max, sto_audit_entry **out,
                               size_t *out_n)
{
    return audit_read(s, policy, "", max, true, out, out_n);
}

const char *sto_audit_field(const sto_audit_entry *e, const char *name)
{
    for (size_t i = 0; i < e->n_fields; i++) {
        if (strcmp(e->name[i], name) == 0) {
            return e->value[i];
        }
    }
    return NULL;
}

base_err sto_audit_len(sto_store *s, const char *policy, uint64_t *out_len)
{
    char key[STO_KEY_MAX];
    base_err e = sto_make_key(key, sizeof(key), policy, "audit");
    if (e != BASE_OK) {
        return e;
    }
    const char *argv[] = {"XLEN", key};
    size_t lens[] = {4, strlen(key)};
    return sto_run_count(s, 2, argv, lens, out_len);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

base_err sto_pinned_get(sto_store *s, const char *policy, uint64_t **out, size_t *out_n)
{
    char key[STO_KEY_MAX];
    redisReply *r = NULL;
    uint64_t *v = NULL;
    base_err e = sto_make_key(key, sizeof(key), policy, "pinned");

    if (e != BASE_OK) {
        goto fail;
    }
    const char *argv[] = {"SMEMBERS", key};
    size_t lens[] = {8, strlen(key)};
    e = sto_run(s, 2, argv, lens, &r);
    if (e != BASE_OK) {
        goto fail;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        e = BASE_EPROTO;
        goto fail;
    }
    if (r->elements > 0) {
        v = base_alloc_array(r->elements, sizeof(*v));
        if (v == NULL) {
            e = BASE_ENOMEM;
            goto fail;
        }
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *m = r->element[i];
        if (m->type != REDIS_REPLY_STRING || !sto_parse_version(m->str, m->len, &v[i])) {
            e = BASE_EPROTO;
            goto fail;
        }
    }
    if (r->elements > 1) {
        qsort(v, r->elements, sizeof(*v), cmp_u64);
    }
    *out = v;
    *out_n = r->elements;
    v = NULL;
fail:
    base_free(v);
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}
