/*
 * A policy's inbox (shared = on; docs/storage.md, "The inbox"): the stream
 * rlfeed:{<policy>}:inbox through which instances that follow a policy hand
 * the decisions they served and the outcomes they received to its owner. Each
 * entry is "k" (d: a decision record, o: an outcome record), "f" (the sending
 * instance) and "r" (the record, encoded as in its own stream); Redis gives
 * the ids, so entries from many senders are in one order, the order the owner
 * consumes them in.
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "storage/store_impl.h"

#define INBOX_SUFFIX "inbox"

base_err sto_inbox_add(sto_store *s, const char *policy, sto_kind kind, const void *rec,
                       const char *from, char *out_id)
{
    char key[STO_KEY_MAX];
    redisReply *r = NULL;
    base_buf b;
    base_buf_init(&b, STO_MAX_VALUE);
    base_err e = sto_make_key(key, sizeof(key), policy, INBOX_SUFFIX);
    if (e == BASE_OK && (kind == STO_JOINED || from == NULL || strlen(from) > STO_OWNER_MAX)) {
        e = BASE_EINVAL;
    }
    if (e == BASE_OK) {
        e = sto_record_encode(kind, rec, &b);
    }
    if (e != BASE_OK) {
        goto fail;
    }
    const char *k = kind == STO_DECISIONS ? "d" : "o";
    const char *argv[] = {"XADD", key, "*", "k", k, "f", from, "r", (const char *)b.data};
    size_t lens[] = {4, strlen(key), 1, 1, 1, 1, strlen(from), 1, b.len};
    e = sto_run(s, 9, argv, lens, &r);
    if (e != BASE_OK) {
        goto fail;
    }
    if (s->cluster && s->cur >= 0) {
        s->conn[s->cur].dirty = true; /* sto_store_wait() covers this master */
    }
    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > BASE_STREAM_ID_MAX) {
        e = BASE_EPROTO;
        goto fail;
    }
    if (out_id != NULL) {
        memcpy(out_id, r->str, r->len);
        out_id[r->len] = '\0';
    }
fail:
    if (r != NULL) {
        freeReplyObject(r);
    }
    base_buf_fini(&b);
    return e;
}

/* Queue the XADD of @it on s->c (encoded through @b). */
static base_err queue_add(sto_store *s, const sto_inbox_item *it, base_buf *b)
{
    char key[STO_KEY_MAX];
    base_buf_reset(b);
    base_err e = sto_make_key(key, sizeof(key), it->policy, INBOX_SUFFIX);
    if (e == BASE_OK &&
        (it->kind == STO_JOINED || it->from == NULL || strlen(it->from) > STO_OWNER_MAX)) {
        e = BASE_EINVAL;
    }
    if (e == BASE_OK) {
        e = sto_record_encode(it->kind, it->rec, b);
    }
    if (e != BASE_OK) {
        return e;
    }
    const char *k = it->kind == STO_DECISIONS ? "d" : "o";
    const char *argv[] = {"XADD", key, "*", "k", k, "f", it->from, "r", (const char *)b->data};
    size_t lens[] = {4, strlen(key), 1, 1, 1, 1, strlen(it->from), 1, b->len};
    return redisAppendCommandArgv(s->c, 9, argv, lens) == REDIS_OK ? BASE_OK : BASE_EIO;
}

/*
 * One pipeline for the items of @policy in @items[from..n) still unsent (out_err BASE_EIO
 * and !*done): their XADDs, then their replies. An item that gets an error reply (a
 * redirection, the cluster down) is left to sto_inbox_add(), which follows it.
 */
static base_err add_policy(sto_store *s, sto_inbox_item *items, size_t from, size_t n, bool *done,
                           base_buf *b)
{
    size_t idx[PIPE_MAX_ITEMS], m = 0;
    const char *policy = items[from].policy;
    base_err e = sto_route_policy(s, policy);
    if (e == BASE_OK && s->c == NULL) {
        e = BASE_EIO;
    }
    for (size_t i = from; e == BASE_OK && i < n && m < PIPE_MAX_ITEMS; i++) {
        if (done[i] || strcmp(items[i].policy, policy) != 0) {
            continue;
        }
        done[i] = true;
        base_err qe = queue_add(s, &items[i], b);
        if (qe == BASE_EIO) {
            e = BASE_EIO;
        } else if (qe != BASE_OK) {
            items[i].out_err = qe; /* this record cannot be stored: not sent */
        } else {
            idx[m++] = i;
        }
    }
    if (e != BASE_OK) {
        if (m > 0) {
            sto_mark_broken(s); /* replies owed that will not be read */
        }
        return e;
    }
    for (size_t k = 0; k < m; k++) {
        redisReply *r = NULL;
        if (redisGetReply(s->c, (void **)&r) != REDIS_OK || r == NULL) {
            sto_mark_broken(s); /* the rest keep BASE_EIO: fate unknown */
            return BASE_EIO;
        }
        sto_inbox_item *it = &items[idx[k]];
        if (r->type == REDIS_REPLY_STRING && r->len > 0 && r->len <= BASE_STREAM_ID_MAX) {
            it->out_err = BASE_OK;
            if (s->cluster && s->cur >= 0) {
                s->conn[s->cur].dirty = true; /* sto_store_wait() covers this master */
            }
        } else if (r->type == REDIS_REPLY_ERROR) {
            it->out_err = BASE_ESTORE; /* sto_inbox_add() below tries it alone */
        } else {
            it->out_err = BASE_EPROTO;
        }
        freeReplyObject(r);
    }
    return BASE_OK;
}

base_err sto_inbox_add_batch(sto_store *s, sto_inbox_item *items, size_t n)
{
    bool done[PIPE_MAX_ITEMS];
    base_buf b;
    pipe_guard g;
    base_err e = BASE_OK;
    if (n > PIPE_MAX_ITEMS) {
        for (size_t at = 0; at < n && e == BASE_OK; at += PIPE_MAX_ITEMS) {
            e = sto_inbox_add_batch(s, items + at,
                                    n - at < PIPE_MAX_ITEMS ? n - at : PIPE_MAX_ITEMS);
        }
        return e;
    }
    for (size_t i = 0; i < n; i++) {
        items[i].out_err = BASE_EIO;
        done[i] = false;
    }
    base_buf_init(&b, STO_MAX_VALUE);
    sto_guard_begin(&g);
    for (size_t i = 0; i < n && e == BASE_OK; i++) {
        if (!done[i]) {
            e = add_policy(s, items, i, n, done, &b);
        }
    }
    sto_guard_end(&g);
    base_buf_fini(&b);
    /* Error replies: one at a time, so redirections and a settling cluster are followed. */
    for (size_t i = 0; i < n && e == BASE_OK; i++) {
        if (items[i].out_err == BASE_ESTORE) {
            items[i].out_err =
                sto_inbox_add(s, items[i].policy, items[i].kind, items[i].rec, items[i].from, NULL);
            e = items[i].out_err == BASE_EIO ? BASE_EIO : BASE_OK;
        }
    }
    return e;
}

/* One XRANGE element into @out; a malformed entry keeps its id with kind -1 and no record. */
static base_err inbox_entry(const redisReply *el, sto_inbox_entry *out)
{
    if (el->type != REDIS_REPLY_ARRAY || el->elements != 2 ||
        el->element[0]->type != REDIS_REPLY_STRING || el->element[0]->len == 0 ||
        el->element[0]->len > BASE_STREAM_ID_MAX || el->element[1]->type != REDIS_REPLY_ARRAY) {
        return BASE_EPROTO; /* not a stream entry at all: the reply is wrong, not the entry */
    }
    memcpy(out->id, el->element[0]->str, el->element[0]->len);
    out->id[el->element[0]->len] = '\0';
    out->kind = -1;
    const redisReply *fields = el->element[1], *k = NULL, *f = NULL, *v = NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *name = fields->element[i], *val = fields->element[i + 1];
        if (name->type != REDIS_REPLY_STRING || name->len != 1 || val->type != REDIS_REPLY_STRING) {
            continue;
        }
        k = name->str[0] == 'k' ? val : k;
        f = name->str[0] == 'f' ? val : f;
        v = name->str[0] == 'r' ? val : v;
    }
    if (f != NULL && f->len <= STO_OWNER_MAX) {
        memcpy(out->from, f->str, f->len);
        out->from[f->len] = '\0';
    }
    if (k == NULL || v == NULL || k->len != 1 || (k->str[0] != 'd' && k->str[0] != 'o')) {
        return BASE_OK;
    }
    sto_kind kind = k->str[0] == 'd' ? STO_DECISIONS : STO_OUTCOMES;
    if (sto_record_decode(kind, (const uint8_t *)v->str, v->len, &out->rec) == BASE_OK) {
        out->kind = (int)kind;
    }
    return BASE_OK;
}

base_err sto_inbox_read(sto_store *s, const char *policy, const char *after_id, size_t max,
                        sto_inbox_entry **out, size_t *out_n)
{
    char key[STO_KEY_MAX];
    redisReply *r = NULL;
    sto_inbox_entry *ents = NULL;
    size_t n = 0;
    base_err e = sto_make_key(key, sizeof(key), policy, INBOX_SUFFIX);
    *out = NULL;
    *out_n = 0;
    if (e != BASE_OK || after_id == NULL || strlen(after_id) > BASE_STREAM_ID_MAX || max == 0) {
        return e != BASE_OK ? e : BASE_EINVAL;
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
        e = inbox_entry(r->element[n], &ents[n]);
        if (e != BASE_OK) {
            goto fail;
        }
    }
    *out = ents;
    *out_n = n;
    ents = NULL;
    n = 0;
fail:
    sto_inbox_free(ents, n);
    if (r != NULL) {
        freeReplyObject(r);
    }
    return e;
}

void sto_inbox_free(sto_inbox_entry *e, size_t n)
{
    for (size_t i = 0; e != NULL && i < n; i++) {
        if (e[i].kind >= 0 && e[i].rec != NULL) {
            sto_record_free((sto_kind)e[i].kind, e[i].rec);
        }
    }
    base_free(e);
}

base_err sto_inbox_trim(sto_store *s, const char *policy, const char *min_id)
{
    char key[STO_KEY_MAX];
    base_err e = sto_make_key(key, sizeof(key), policy, INBOX_SUFFIX);
    if (e != BASE_OK || min_id == NULL || min_id[0] == '\0' ||
        strlen(min_id) > BASE_STREAM_ID_MAX) {
        return e != BASE_OK ? e : BASE_EINVAL;
    }
    const char *argv[] = {"XTRIM", key, "MINID", min_id};
    size_t lens[] = {5, strlen(key), 5, strlen(min_id)};
    uint64_t removed = 0;
    return sto_run_count(s, 4, argv, lens, &removed);
}
