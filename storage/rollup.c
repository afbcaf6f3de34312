/*
 * The rollup stream (storage/rollup.h): one XADD with an exact MAXLEN per
 * entry, XREVRANGE in batches to read the newest entries back.
 */
#include "storage/rollup.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_impl.h"

#define READ_BATCH 1000
#define VALUE_MAX 40 /* "%.17g" of a double, with sign and exponent */

static base_err rollup_key(char *key, size_t size, const char *policy)
{
    return sto_make_key(key, size, policy, "rollup");
}

base_err sto_rollup_append(sto_store *s, const char *policy, uint64_t keep,
                           const char *const *names, const double *values, size_t n)
{
    char key[STO_KEY_MAX], maxlen[24];
    char vals[STO_ROLLUP_MAX_FIELDS][VALUE_MAX];
    const char *argv[6 + 2 * STO_ROLLUP_MAX_FIELDS];
    size_t lens[6 + 2 * STO_ROLLUP_MAX_FIELDS];
    redisReply *r = NULL;

    if (n == 0 || n > STO_ROLLUP_MAX_FIELDS || keep == 0 ||
        rollup_key(key, sizeof(key), policy) != BASE_OK) {
        return BASE_EINVAL;
    }
    snprintf(maxlen, sizeof(maxlen), "%llu", (unsigned long long)keep);
    int argc = 0;
    argv[argc++] = "XADD";
    argv[argc++] = key;
    argv[argc++] = "MAXLEN";
    argv[argc++] = maxlen;
    argv[argc++] = "*";
    for (size_t i = 0; i < n; i++) {
        size_t nl = names[i] != NULL ? strlen(names[i]) : 0;
        if (nl == 0 || nl > STO_ROLLUP_NAME_MAX) {
            return BASE_EINVAL;
        }
        argv[argc++] = names[i];
        /* %.17g round-trips; NaN and infinities print as "nan", "inf" (strtod reads them). */
        (void)snprintf(vals[i], sizeof(vals[i]), "%.17g", values[i]); /* always fits */
        argv[argc++] = vals[i];
    }
    for (int i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }
    base_err e = sto_run(s, argc, argv, lens, &r);
    if (e == BASE_OK) {
        freeReplyObject(r); /* the new entry's id: not needed */
    }
    return e;
}

/* The value of a field as a number; NaN when it is not one. */
static double number_of(const redisReply *v)
{
    char buf[VALUE_MAX + 1];
    if (v->type != REDIS_REPLY_STRING || v->len == 0 || v->len > VALUE_MAX) {
        return NAN;
    }
    memcpy(buf, v->str, v->len);
    buf[v->len] = '\0';
    char *end = NULL;
    errno = 0;
    double d = strtod(buf, &end);
    if (end == buf || *end != '\0' || errno == ERANGE) {
        return NAN;
    }
    return d;
}

/* The index of field @name (len @len) among @names, trying @hint first; -1 if none. */
static long find_name(const char *const *names, size_t n, const char *name, size_t len, size_t hint)
{
    if (hint < n && strlen(names[hint]) == len && memcmp(names[hint], name, len) == 0) {
        return (long)hint;
    }
    for (size_t k = 0; k < n; k++) {
        if (strlen(names[k]) == len && memcmp(names[k], name, len) == 0) {
            return (long)k;
        }
    }
    return -1;
}

/* Decode one XRANGE entry, [id, [f, v, f, v ...]], into @row ([n]). */
static base_err decode_entry(const redisReply *ent, const char *const *names, size_t n, double *row,
                             char *out_id, size_t id_size)
{
    if (ent->type != REDIS_REPLY_ARRAY || ent->elements != 2 ||
        ent->element[0]->type != REDIS_REPLY_STRING || ent->element[0]->len >= id_size ||
        ent->element[1]->type != REDIS_REPLY_ARRAY || ent->element[1]->elements % 2 != 0) {
        return BASE_EPROTO;
    }
    memcpy(out_id, ent->element[0]->str, ent->element[0]->len);
    out_id[ent->element[0]->len] = '\0';
    for (size_t k = 0; k < n; k++) {
        row[k] = NAN;
    }
    const redisReply *kv = ent->element[1];
    for (size_t i = 0; i + 1 < kv->elements; i += 2) {
        const redisReply *f = kv->element[i];
        if (f->type != REDIS_REPLY_STRING) {
            return BASE_EPROTO;
        }
        long k = find_name(names, n, f->str, f->len, i / 2);
        if (k >= 0) {
            row[k] = number_of(kv->element[i + 1]);
        }
    }
    return BASE_OK;
}

base_err sto_rollup_read(sto_store *s, const char *policy, const char *const *names, size_t n,
                         size_t max, double *out, size_t *out_n)
{
    char key[STO_KEY_MAX], count[24];
    char end[BASE_STREAM_ID_MAX + 2] = "+"; /* "+" or "(" and the last id read */
    char id[BASE_STREAM_ID_MAX + 1];
    size_t got = 0;
    base_err e = BASE_OK;

    if (n == 0 || n > STO_ROLLUP_MAX_FIELDS || rollup_key(key, sizeof(key), policy) != BASE_OK) {
        return BASE_EINVAL;
    }
    /* Newest first into out[0..], reversed at the end. */
    while (got < max) {
        size_t want = max - got < READ_BATCH ? max - got : READ_BATCH;
        redisReply *r = NULL;
        snprintf(count, sizeof(count), "%zu", want);
        const char *argv[] = {"XREVRANGE", key, end, "-", "COUNT", count};
        size_t lens[] = {9, strlen(key), strlen(end), 1, 5, strlen(count)};
        e = sto_run(s, 6, argv, lens, &r);
        if (e != BASE_OK) {
            return e;
        }
        size_t m = 0;
        if (r->type != REDIS_REPLY_ARRAY || r->elements > want) {
            e = BASE_EPROTO;
        }
        for (; e == BASE_OK && m < r->elements; m++) {
            e = decode_entry(r->element[m], names, n, &out[(got + m) * n], id, sizeof(id));
        }
        freeReplyObject(r);
        if (e != BASE_OK) {
            return e;
        }
        got += m;
        if (m < want) {
            break; /* the stream's oldest entry was read */
        }
        snprintf(end, sizeof(end), "(%s", id); /* exclusive ranges: Redis >= 6.2 */
    }
    for (size_t i = 0; i < got / 2; i++) {
        double *a = &out[i * n], *b = &out[(got - 1 - i) * n];
        for (size_t k = 0; k < n; k++) {
            double t = a[k];
            a[k] = b[k];
            b[k] = t;
        }
    }
    *out_n = got;
    return BASE_OK;
}

base_err sto_rollup_len(sto_store *s, const char *policy, uint64_t *out_len)
{
    char key[STO_KEY_MAX];
    if (rollup_key(key, sizeof(key), policy) != BASE_OK) {
        return BASE_EINVAL;
    }
    const char *argv[] = {"XLEN", key};
    size_t lens[] = {4, strlen(key)};
    return sto_run_count(s, 2, argv, lens, out_len);
}
