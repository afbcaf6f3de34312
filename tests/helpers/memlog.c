#include "memlog.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "storage/codec.h"

#define MEMLOG_POLICIES 8

typedef struct entry {
    uint64_t n; /* id "<n>-0" */
    uint8_t *data;
    size_t len;
} entry;

typedef struct stream {
    entry *e;
    size_t n, cap;
} stream;

typedef struct plog {
    char name[BASE_NAME_MAX + 1];
    stream s[3];    /* by sto_kind */
    uint8_t *model; /* the registry's online snapshot, encoded */
    size_t model_len;
} plog;

struct tst_memlog {
    pthread_mutex_t lk;
    size_t capacity;
    size_t depth; /* what stats report as waiting (tst_memlog_set_depth) */
    uint64_t next_id;
    plog p[MEMLOG_POLICIES];
    size_t n_p;
    uint64_t written;
};

tst_memlog *tst_memlog_new(size_t capacity)
{
    tst_memlog *m = base_alloc_zero(1, sizeof(*m));
    if (m != NULL) {
        pthread_mutex_init(&m->lk, NULL);
        m->capacity = capacity;
        m->next_id = 1;
    }
    return m;
}

void tst_memlog_free(tst_memlog *m)
{
    if (m == NULL) {
        return;
    }
    for (size_t i = 0; i < m->n_p; i++) {
        for (int k = 0; k < 3; k++) {
            for (size_t j = 0; j < m->p[i].s[k].n; j++) {
                free(m->p[i].s[k].e[j].data);
            }
            free(m->p[i].s[k].e);
        }
        free(m->p[i].model);
    }
    pthread_mutex_destroy(&m->lk);
    base_free(m);
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n > 0 ? n : 1);
    if (d != NULL && n > 0) {
        memcpy(d, p, n);
    }
    return d;
}

tst_memlog *tst_memlog_clone(tst_memlog *m)
{
    tst_memlog *c = tst_memlog_new(m->capacity);
    if (c == NULL) {
        return NULL;
    }
    pthread_mutex_lock(&m->lk);
    c->next_id = m->next_id;
    c->n_p = m->n_p;
    c->written = m->written;
    for (size_t i = 0; i < m->n_p; i++) {
        memcpy(c->p[i].name, m->p[i].name, sizeof(c->p[i].name));
        for (int k = 0; k < 3; k++) {
            const stream *from = &m->p[i].s[k];
            stream *to = &c->p[i].s[k];
            to->e = calloc(from->n > 0 ? from->n : 1, sizeof(entry));
            to->cap = to->n = from->n;
            for (size_t j = 0; j < from->n; j++) {
                to->e[j].n = from->e[j].n;
                to->e[j].len = from->e[j].len;
                to->e[j].data = dup_bytes(from->e[j].data, from->e[j].len);
            }
        }
        if (m->p[i].model != NULL) {
            c->p[i].model = dup_bytes(m->p[i].model, m->p[i].model_len);
            c->p[i].model_len = m->p[i].model_len;
        }
    }
    pthread_mutex_unlock(&m->lk);
    return c;
}

/* Under lk: the policy's log, made on first use (NULL if the table is full). */
static plog *find(tst_memlog *m, const char *policy, bool make)
{
    for (size_t i = 0; i < m->n_p; i++) {
        if (strcmp(m->p[i].name, policy) == 0) {
            return &m->p[i];
        }
    }
    if (!make || m->n_p == MEMLOG_POLICIES) {
        return NULL;
    }
    plog *p = &m->p[m->n_p++];
    base_strlcpy(p->name, policy, sizeof(p->name));
    return p;
}

static base_err encode(const svc_persist_item *it, base_buf *b)
{
    return it->type == SVC_PERSIST_MODEL ? sto_codec_encode_model(it->rec, b)
                                         : sto_record_encode(it->kind, it->rec, b);
}

static base_err mem_submit(void *impl, svc_persist_item *it)
{
    tst_memlog *m = impl;
    base_buf b;
    base_buf_init(&b, 64u << 20);
    base_err e = it->type == SVC_PERSIST_BARRIER ? BASE_OK : encode(it, &b);
    pthread_mutex_lock(&m->lk);
    plog *p = e == BASE_OK ? find(m, it->policy, true) : NULL;
    if (e == BASE_OK && p == NULL) {
        e = BASE_ELIMIT;
    }
    if (e == BASE_OK && it->type == SVC_PERSIST_APPEND) {
        stream *s = &p->s[it->kind];
        if (s->n == s->cap) {
            size_t cap = s->cap == 0 ? 256 : 2 * s->cap;
            entry *ne = realloc(s->e, cap * sizeof(entry));
            if (ne == NULL) {
                e = BASE_ENOMEM;
            } else {
                s->e = ne;
                s->cap = cap;
            }
        }
        if (e == BASE_OK) {
            entry *en = &s->e[s->n++];
            en->n = m->next_id++;
            en->data = dup_bytes(b.data, b.len);
            en->len = b.len;
            snprintf(it->stream_id, sizeof(it->stream_id), "%llu-0", (unsigned long long)en->n);
            m->written++;
        }
    } else if (e == BASE_OK && it->type == SVC_PERSIST_MODEL) {
        free(p->model);
        p->model = dup_bytes(b.data, b.len);
        p->model_len = b.len;
    }
    pthread_mutex_unlock(&m->lk);
    base_buf_fini(&b);
    if (e != BASE_OK) {
        return e; /* the caller still owns @it */
    }
    if (it->done != NULL) {
        it->done(it->done_arg, it, BASE_OK);
    }
    svc_persist_item_free(it);
    return BASE_OK;
}

static void mem_stats(void *impl, svc_log_stats *out)
{
    tst_memlog *m = impl;
    pthread_mutex_lock(&m->lk);
    *out = (svc_log_stats){
        .up = true, .depth = m->depth, .capacity = m->capacity, .written = m->written, .url = ""};
    pthread_mutex_unlock(&m->lk);
}

static const svc_log_ops writer_ops = {mem_submit, mem_stats};

void tst_memlog_set_depth(tst_memlog *m, size_t depth)
{
    pthread_mutex_lock(&m->lk);
    m->depth = depth;
    pthread_mutex_unlock(&m->lk);
}

svc_log tst_memlog_writer(tst_memlog *m)
{
    return (svc_log){&writer_ops, m};
}

static base_err mem_read(void *impl, sto_kind kind, const char *policy, const char *after,
                         size_t max, sto_entry **out, size_t *out_n)
{
    tst_memlog *m = impl;
    unsigned long long from = 0, seq = 0;
    if (after[0] != '\0' && sscanf(after, "%llu-%llu", &from, &seq) != 2) {
        return BASE_EINVAL;
    }
    base_err e = BASE_OK;
    pthread_mutex_lock(&m->lk);
    plog *p = find(m, policy, false);
    const stream *s = p != NULL ? &p->s[kind] : NULL;
    size_t first = 0;
    while (s != NULL && first < s->n && s->e[first].n <= from) {
        first++;
    }
    size_t n = s == NULL || first >= s->n ? 0 : s->n - first;
    n = n > max ? max : n;
    sto_entry *en = base_alloc_zero(n > 0 ? n : 1, sizeof(*en));
    if (en == NULL) {
        e = BASE_ENOMEM;
    }
    size_t got = 0;
    for (; e == BASE_OK && got < n; got++) {
        const entry *x = &s->e[first + got];
        snprintf(en[got].id, sizeof(en[got].id), "%llu-0", (unsigned long long)x->n);
        e = sto_record_decode(kind, x->data, x->len, &en[got].rec);
    }
    pthread_mutex_unlock(&m->lk);
    if (e != BASE_OK) {
        sto_entries_free(kind, en, got);
        return e;
    }
    *out = en;
    *out_n = n;
    return BASE_OK;
}

static base_err mem_model(void *impl, const char *policy, base_snapshot **out, bool *out_found)
{
    tst_memlog *m = impl;
    base_err e = BASE_OK;
    pthread_mutex_lock(&m->lk);
    plog *p = find(m, policy, false);
    *out_found = p != NULL && p->model != NULL;
    if (*out_found) {
        e = sto_codec_decode_model(p->model, p->model_len, out);
    }
    pthread_mutex_unlock(&m->lk);
    return e;
}

static const char *mem_last_error(void *impl)
{
    (void)impl;
    return ""; /* no Redis behind it */
}

static const svc_log_reader_ops reader_ops = {mem_read, mem_model, mem_last_error};

svc_log_reader tst_memlog_reader(tst_memlog *m)
{
    return (svc_log_reader){&reader_ops, m};
}

size_t tst_memlog_len(tst_memlog *m, const char *policy, sto_kind kind, char *out_last)
{
    pthread_mutex_lock(&m->lk);
    plog *p = find(m, policy, false);
    size_t n = p != NULL ? p->s[kind].n : 0;
    if (out_last != NULL) {
        out_last[0] = '\0';
        if (n > 0) {
            snprintf(out_last, BASE_STREAM_ID_MAX + 1, "%llu-0",
                     (unsigned long long)p->s[kind].e[n - 1].n);
        }
    }
    pthread_mutex_unlock(&m->lk);
    return n;
}
