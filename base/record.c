#include "base/record.h"

#include <stddef.h>
#include <string.h>

#include "base/alloc.h"

/* Round up to the alignment of the widest member type stored after. */
static size_t align8(size_t n)
{
    return (n + 7u) & ~(size_t)7u;
}

base_decision *base_decision_new(uint32_t dim, uint32_t n_cand)
{
    if (dim > BASE_DIM_MAX || n_cand > BASE_CAND_MAX) {
        return NULL;
    }
    size_t head = align8(sizeof(base_decision));
    size_t total = head + align8((size_t)dim * sizeof(float)) +
                   align8((size_t)n_cand * sizeof(uint32_t)) +
                   4 * align8((size_t)n_cand * sizeof(float));
    unsigned char *p = base_alloc_zero(1, total);
    if (p == NULL) {
        return NULL;
    }
    base_decision *d = (base_decision *)(void *)p;
    size_t off = head;
    d->embedding = (float *)(void *)(p + off);
    off += align8((size_t)dim * sizeof(float));
    d->action = (uint32_t *)(void *)(p + off);
    off += align8((size_t)n_cand * sizeof(uint32_t));
    d->base_logit = (float *)(void *)(p + off);
    off += align8((size_t)n_cand * sizeof(float));
    d->pmf = (float *)(void *)(p + off);
    off += align8((size_t)n_cand * sizeof(float));
    d->head_score = (float *)(void *)(p + off);
    off += align8((size_t)n_cand * sizeof(float));
    d->explore = (float *)(void *)(p + off);
    d->dim = dim;
    d->n_cand = n_cand;
    return d;
}

base_decision *base_decision_clone(const base_decision *d)
{
    base_decision *c = base_decision_new(d->dim, d->n_cand);
    if (c == NULL) {
        return NULL;
    }
    float *emb = c->embedding;
    uint32_t *act = c->action;
    float *bl = c->base_logit;
    float *pmf = c->pmf;
    float *sc = c->head_score;
    float *xs = c->explore;
    *c = *d;
    c->embedding = emb;
    c->action = act;
    c->base_logit = bl;
    c->pmf = pmf;
    c->head_score = sc;
    c->explore = xs;
    memcpy(emb, d->embedding, (size_t)d->dim * sizeof(float));
    memcpy(act, d->action, (size_t)d->n_cand * sizeof(uint32_t));
    memcpy(bl, d->base_logit, (size_t)d->n_cand * sizeof(float));
    memcpy(pmf, d->pmf, (size_t)d->n_cand * sizeof(float));
    memcpy(sc, d->head_score, (size_t)d->n_cand * sizeof(float));
    memcpy(xs, d->explore, (size_t)d->n_cand * sizeof(float));
    return c;
}

void base_decision_free(base_decision *d)
{
    base_free(d);
}

base_joined *base_joined_new(base_decision *d)
{
    base_joined *j = base_alloc_zero(1, sizeof(*j));
    if (j != NULL) {
        j->decision = d;
    }
    return j;
}

void base_joined_free(base_joined *j)
{
    if (j == NULL) {
        return;
    }
    base_decision_free(j->decision);
    base_free(j);
}

base_snapshot *base_snapshot_new(uint32_t n_params, uint32_t n_state)
{
    size_t head = align8(sizeof(base_snapshot));
    size_t total =
        head + align8((size_t)n_params * sizeof(float)) + (size_t)n_state * sizeof(double);
    unsigned char *p = base_alloc_zero(1, total);
    if (p == NULL) {
        return NULL;
    }
    base_snapshot *m = (base_snapshot *)(void *)p;
    m->params = (float *)(void *)(p + head);
    m->state = (double *)(void *)(p + head + align8((size_t)n_params * sizeof(float)));
    m->n_params = n_params;
    m->n_state = n_state;
    return m;
}

void base_snapshot_free(base_snapshot *m)
{
    if (m == NULL) {
        return;
    }
    for (uint32_t i = 0; i < m->pf_n_learners && m->pf_learner != NULL; i++) {
        base_snapshot_free(m->pf_learner[i]);
    }
    base_free(m->pf_learner);
    base_free(m->pf_sel);
    base_free(m);
}

bool base_strlcpy(char *dst, const char *src, size_t size)
{
    size_t n = strlen(src);
    if (size == 0) {
        return n == 0;
    }
    size_t k = n < size - 1 ? n : size - 1;
    memcpy(dst, src, k);
    dst[k] = '\0';
    return k == n;
}

const char *base_slot_name(uint32_t slot)
{
    switch (slot) {
    case BASE_SLOT_ONLINE:
        return "online";
    case BASE_SLOT_PRODUCTION:
        return "production";
    default:
        return "unknown";
    }
}

bool base_slot_from_name(const char *name, uint32_t *out)
{
    for (uint32_t s = BASE_SLOT_ONLINE; s <= BASE_SLOT_PRODUCTION; s++) {
        if (strcmp(name, base_slot_name(s)) == 0) {
            *out = s;
            return true;
        }
    }
    return false;
}
