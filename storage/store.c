#include "storage/store.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "storage/codec.h"
#include "storage/streamid.h"
#include "storage/store_impl.h"

/* ---- streams ------------------------------------------------------------ */

base_err sto_record_encode(sto_kind kind, const void *rec, base_buf *out)
{
    base_err e = BASE_EINVAL;
    if (rec == NULL) {
        goto fail;
    }
    switch (kind) {
    case STO_DECISIONS:
        e = sto_codec_encode_decision(rec, out);
        break;
    case STO_OUTCOMES:
        e = sto_codec_encode_outcome(rec, out);
        break;
    case STO_JOINED:
        e = sto_codec_encode_joined(rec, out);
        break;
    }
fail:
    return e;
}

base_err sto_record_decode(sto_kind kind, const uint8_t *buf, size_t len, void **out)
{
    base_err e = BASE_EINVAL;
    switch (kind) {
    case STO_DECISIONS: {
        base_decision *d = NULL;
        e = sto_codec_decode_decision(buf, len, &d);
        *out = d;
        break;
    }
    case STO_OUTCOMES: {
        base_outcome *o = NULL;
        e = sto_codec_decode_outcome(buf, len, &o);
        *out = o;
        break;
    }
    case STO_JOINED: {
        base_joined *j = NULL;
        e = sto_codec_decode_joined(buf, len, &j);
        *out = j;
        break;
    }
    }
    return e;
}

void sto_record_free(sto_kind kind, void *rec)
{
    switch (kind) {
    case STO_DECISIONS:
        base_decision_free(rec);
        break;
    case STO_OUTCOMES:
        base_free(rec);
        break;
    case STO_JOINED:
        base_joined_free(rec);
        break;
    }
}

base_err sto_store_last_id(sto_store *s, sto_kind kind, const char *policy, char *out_id)
{
    char key[STO_KEY_MAX];
    redisReply *r = NULL;
    const redisReply *val = NULL;
    sto_sid sid;
    base_err e = sto_stream_key(key, sizeof(key), kind, policy);

    if (e != BASE_OK) {
        goto fail;
    }
    const char *argv[] = {"XINFO", "STREAM", key};
    size_t lens[] = {5, 6, strlen(key)};
    e = sto_run_any(s, 3, argv, lens, &r);
    if (e != BASE_OK) {
        goto fail;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        /* "ERR no such key": a stream that was never written accepts any id above 0-0. */
        e = r->str != NULL && strstr(r->str, "no such key") != NULL ? BASE_OK : BASE_ESTORE;
        if (e == BASE_OK) {
            memcpy(out_id, "0-0", 4);
        } else {
            base_strlcpy(s->refusal, r->str != NULL ? r->str : "", sizeof(s->refusal));
        }
        goto fail;
    }
    /* RESP2: a flat array of field names and values. */
    e = BASE_EPROTO;
    if (r->type != REDIS_REPLY_ARRAY) {
        goto fail;
    }
    for (size_t i = 0; val == NULL && i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i];
        if (f->type == REDIS_REPLY_STRING && f->len == 17 &&
            memcmp(f->str, "last-generated-id", 17) == 0) {
            val = r->element[i + 1];
        }
    }
    if (val == NULL || val->type != REDIS_REPLY_STRING || val->len == 0 ||
        val->len > BASE_STREAM_ID_MAX || strlen(val->str) != val->len ||
        !sto_sid_parse(val->str, &sid)) {
        goto fail;
    }
    memcpy(out_id, val->str, val->len + 1);
    e = BASE_OK;
fail:
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

base_err sto_store_match(sto_store *s, sto_kind kind, const char *policy, const char *id,
                         const void *rec, sto_match *out)
{
    char key[STO_KEY_MAX];
    redisReply *r = NULL;
    sto_sid sid;
    base_buf b;
    base_err e = sto_stream_key(key, sizeof(key), kind, policy);

    base_buf_init(&b, STO_MAX_VALUE);
    if (e == BASE_OK &&
        (id == NULL || strlen(id) > BASE_STREAM_ID_MAX || !sto_sid_parse(id, &sid))) {
        e = BASE_EINVAL;
    }
    if (e == BASE_OK) {
        e = sto_record_encode(kind, rec, &b);
    }
    if (e != BASE_OK) {
        goto fail;
    }
    const char *argv[] = {"XRANGE", key, id, id, "COUNT", "1"};
    size_t lens[] = {6, strlen(key), strlen(id), strlen(id), 5, 1};
    e = sto_run(s, 6, argv, lens, &r);
    if (e != BASE_OK) {
        goto fail;
    }
    e = BASE_EPROTO;
    if (r->type != REDIS_REPLY_ARRAY || r->elements > 1) {
        goto fail;
    }
    if (r->elements == 0) {
        *out = STO_ABSENT;
        e = BASE_OK;
        goto fail;
    }
    const redisReply *el = r->element[0], *val = NULL;
    if (el->type != REDIS_REPLY_ARRAY || el->elements != 2 ||
        el->element[1]->type != REDIS_REPLY_ARRAY) {
        goto fail;
    }
    const redisReply *fields = el->element[1];
    for (size_t i = 0; val == NULL && i + 1 < fields->elements; i += 2) {
        const redisReply *f = fields->element[i];
        if (f->type == REDIS_REPLY_STRING && f->len == 1 && f->str[0] == 'r') {
            val = fields->element[i + 1];
        }
    }
    bool same = val != NULL && val->type == REDIS_REPLY_STRING && val->len == b.len &&
                memcmp(val->str, b.data, b.len) == 0;
    *out = same ? STO_SAME : STO_DIFFERENT;
    e = BASE_OK;
fail:
    if (r != NULL) {
        freeReplyObject(r);
    }
    base_buf_fini(&b);
    return e;
}

void sto_entries_free(sto_kind kind, sto_entry *e, size_t n)
{
    if (e == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        sto_record_free(kind, e[i].rec);
    }
    base_free(e);
}

/* Decode one XRANGE element [id, [field, value, ...]] into @out. */
static base_err entry_from(sto_kind kind, const redisReply *el, sto_entry *out)
{
    const redisReply *fields, *val = NULL;
    base_err e = BASE_EPROTO;

    if (el->type != REDIS_REPLY_ARRAY || el->elements != 2 ||
        el->element[0]->type != REDIS_REPLY_STRING || el->element[0]->len == 0 ||
        el->element[0]->len > BASE_STREAM_ID_MAX || el->element[1]->type != REDIS_REPLY_ARRAY) {
        goto fail;
    }
    fields = el->element[1];
    for (size_t i = 0; val == NULL && i + 1 < fields->elements; i += 2) {
        const redisReply *f = fields->element[i];
        if (f->type == REDIS_REPLY_STRING && f->len == 1 && f->str[0] == 'r') {
            val = fields->element[i + 1];
        }
    }
    if (val == NULL || val->type != REDIS_REPLY_STRING) {
        goto fail;
    }
    e = sto_record_decode(kind, (const uint8_t *)val->str, val->len, &out->rec);
    if (e == BASE_OK) {
        memcpy(out->id, el->element[0]->str, el->element[0]->len);
        out->id[el->element[0]->len] = '\0';
    }
fail:
    return e;
}

/* entry_from(); an entry that does not decode is named in sto_store_refusal(). */
static base_err entry_named(sto_store *s, const char *key, sto_kind kind, const redisReply *el,
                            sto_entry *out)
{
    base_err e = entry_from(kind, el, out);
    if (e == BASE_EPROTO) {
        bool has_id = el->type == REDIS_REPLY_ARRAY && el->elements >= 1 &&
                      el->element[0]->type == REDIS_REPLY_STRING &&
                      el->element[0]->len <= BASE_STREAM_ID_MAX;
        (void)snprintf(s->refusal, sizeof(s->refusal), "%s entry %s does not decode", key,
                       has_id ? el->element[0]->str : "(no id)");
    }
    return e;
}

base_err sto_xrange_after(sto_store *s, const char *key, const char *after_id, size_t max,
                          redisReply **out)
{
    char start[BASE_STREAM_ID_MAX + 2], count[24];
    redisReply *r = NULL;
    if (after_id[0] == '\0' || strcmp(after_id, "0") == 0) {
        (void)snprintf(start, sizeof(start), "-"); /* fits */
    } else {
        (void)snprintf(start, sizeof(start), "(%s", after_id); /* the caller checked its length */
    }
    (void)snprintf(count, sizeof(count), "%zu", max); /* a size_t fits in 24 bytes */
    const char *argv[] = {"XRANGE", key, start, "+", "COUNT", count};
    size_t lens[] = {6, strlen(key), strlen(start), 1, 5, strlen(count)};
    base_err e = sto_run(s, 6, argv, lens, &r);
    if (e == BASE_OK && (r->type != REDIS_REPLY_ARRAY || r->elements > max)) {
        freeReplyObject(r);
        return BASE_EPROTO;
    }
    if (e == BASE_OK) {
        *out = r;
    }
    return e;
}

base_err sto_store_read(sto_store *s, sto_kind kind, const char *policy, const char *after_id,
                        size_t max, sto_entry **out, size_t *out_n)
{
    char key[STO_KEY_MAX];
    redisReply *r = NULL;
    sto_entry *ents = NULL;
    size_t n = 0;
    base_err e = sto_stream_key(key, sizeof(key), kind, policy);

    if (e != BASE_OK) {
        goto fail;
    }
    if (after_id == NULL || strlen(after_id) > BASE_STREAM_ID_MAX) {
        e = BASE_EINVAL;
        goto fail;
    }
    if (max == 0) {
        goto done;
    }
    e = sto_xrange_after(s, key, after_id, max, &r);
    if (e != BASE_OK) {
        goto fail;
    }
    if (r->elements > 0) {
        ents = base_alloc_zero(r->elements, sizeof(*ents));
        if (ents == NULL) {
            e = BASE_ENOMEM;
            goto fail;
        }
    }
    for (; n < r->elements; n++) {
        e = entry_named(s, key, kind, r->element[n], &ents[n]);
        if (e != BASE_OK) {
            goto fail;
        }
    }
done:
    *out = ents;
    *out_n = n;
    ents = NULL;
    n = 0;
fail:
    sto_entries_free(kind, ents, n);
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

base_err sto_store_read_newest(sto_store *s, sto_kind kind, const char *policy, sto_entry **out,
                               bool *out_found)
{
    char key[STO_KEY_MAX];
    redisReply *r = NULL;
    sto_entry *ent = NULL;
    base_err e = sto_stream_key(key, sizeof(key), kind, policy);

    if (e != BASE_OK) {
        goto fail;
    }
    const char *argv[] = {"XREVRANGE", key, "+", "-", "COUNT", "1"};
    size_t lens[] = {9, strlen(key), 1, 1, 5, 1};
    e = sto_run(s, 6, argv, lens, &r);
    if (e != BASE_OK) {
        goto fail;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements > 1) {
        e = BASE_EPROTO;
        goto fail;
    }
    if (r->elements == 0) {
        *out_found = false;
        goto fail;
    }
    ent = base_alloc_zero(1, sizeof(*ent));
    if (ent == NULL) {
        e = BASE_ENOMEM;
        goto fail;
    }
    e = entry_named(s, key, kind, r->element[0], ent);
    if (e != BASE_OK) {
        goto fail;
    }
    *out = ent;
    *out_found = true;
    ent = NULL;
fail:
    sto_entries_free(kind, ent, 0);
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

base_err sto_store_get(sto_store *s, sto_kind kind, const char *policy, const char *id,
                       sto_entry **out, bool *out_found)
{
    char key[STO_KEY_MAX];
    redisReply *r = NULL;
    sto_entry *ent = NULL;
    sto_sid sid;
    base_err e = sto_stream_key(key, sizeof(key), kind, policy);

    if (e == BASE_OK &&
        (id == NULL || strlen(id) > BASE_STREAM_ID_MAX || !sto_sid_parse(id, &sid))) {
        e = BASE_EINVAL;
    }
    if (e != BASE_OK) {
        goto fail;
    }
    const char *argv[] = {"XRANGE", key, id, id, "COUNT", "1"};
    size_t lens[] = {6, strlen(key), strlen(id), strlen(id), 5, 1};
    e = sto_run(s, 6, argv, lens, &r);
    if (e != BASE_OK) {
        goto fail;
    }
    e = BASE_EPROTO;
    if (r->type != REDIS_REPLY_ARRAY || r->elements > 1) {
        goto fail;
    }
    if (r->elements == 0) {
        *out_found = false;
        e = BASE_OK;
        goto fail;
    }
    ent = base_alloc_zero(1, sizeof(*ent));
    if (ent == NULL) {
        e = BASE_ENOMEM;
        goto fail;
    }
    e = entry_from(kind, r->element[0], ent);
    if (e != BASE_OK) {
        goto fail;
    }
    *out = ent;
    *out_found = true;
    ent = NULL;
fail:
    base_free(ent);
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

base_err sto_store_len(sto_store *s, sto_kind kind, const char *policy, uint64_t *out_len)
{
    char key[STO_KEY_MAX];
    base_err e = sto_stream_key(key, sizeof(key), kind, policy);
    if (e != BASE_OK) {
        return e;
    }
    const char *argv[] = {"XLEN", key};
    size_t lens[] = {4, strlen(key)};
    return sto_run_count(s, 2, argv, lens, out_len);
}
