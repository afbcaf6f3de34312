#include "base/record.h"

#include <stddef.h>
#include <string.h>

#include "base/alloc.h"

/* Round up to the alignment of the widest member type stored after. */
static size_t align8(size_t n)
{
    return (n + 7u) & ~(size_t)7u;
}

base_decision *base_decision_new_open(uint32_t dim, uint32_t n_cand, uint32_t action_dim)
{
    if (dim > BASE_DIM_MAX || n_cand > BASE_CAND_MAX || action_dim > BASE_ACTION_DIM_MAX) {
        return NULL;
    }
    size_t head = align8(sizeof(base_decision));
    size_t n_emb = (size_t)dim + (size_t)n_cand * action_dim; /* context, then features */
    size_t ids = action_dim > 0 ? (size_t)n_cand * (BASE_NAME_MAX + 1) : 0;
    size_t total = head + align8(n_emb * sizeof(float)) +
                   align8((size_t)n_cand * sizeof(uint32_t)) +
                   4 * align8((size_t)n_cand * sizeof(float)) + align8(ids);
    unsigned char *p = base_alloc_zero(1, total);
    if (p == NULL) {
        return NULL;
    }
    base_decision *d = (base_decision *)(void *)p;
    size_t off = head;
    d->embedding = (float *)(void *)(p + off);
    off += align8(n_emb * sizeof(float));
    d->action = (uint32_t *)(void *)(p + off);
    off += align8((size_t)n_cand * sizeof(uint32_t));
    d->base_logit = (float *)(void *)(p + off);
    off += align8((size_t)n_cand * sizeof(float));
    d->pmf = (float *)(void *)(p + off);
    off += align8((size_t)n_cand * sizeof(float));
    d->head_score = (float *)(void *)(p + off);
    off += align8((size_t)n_cand * sizeof(float));
    d->explore = (float *)(void *)(p + off);
    off += align8((size_t)n_cand * sizeof(float));
    if (action_dim > 0) {
        d->features = d->embedding + dim;
        d->cand_id = (char(*)[BASE_NAME_MAX + 1])(void *)(p + off);
    }
    d->dim = dim;
    d->n_cand = n_cand;
    d->action_dim = action_dim;
    return d;
}

base_decision *base_decision_new(uint32_t dim, uint32_t n_cand)
{
    return base_decision_new_open(dim, n_cand, 0);
}

base_decision *base_decision_clone(const base_decision *d)
{
    base_decision *c = base_decision_new_open(d->dim, d->n_cand, d->action_dim);
    if (c == NULL) {
        return NULL;
    }
    base_decision arrays = *c;
    *c = *d;
    c->embedding = arrays.embedding;
    c->action = arrays.action;
    c->base_logit = arrays.base_logit;
    c->pmf = arrays.pmf;
    c->head_score = arrays.head_score;
    c->explore = arrays.explore;
    c->features = arrays.features;
    c->cand_id = arrays.cand_id;
    size_t n_emb = (size_t)d->dim + (size_t)d->n_cand * d->action_dim;
    memcpy(c->embedding, d->embedding, n_emb * sizeof(float));
    memcpy(c->action, d->action, (size_t)d->n_cand * sizeof(uint32_t));
    memcpy(c->base_logit, d->base_logit, (size_t)d->n_cand * sizeof(float));
    memcpy(c->pmf, d->pmf, (size_t)d->n_cand * sizeof(float));
    memcpy(c->head_score, d->head_score, (size_t)d->n_cand * sizeof(float));
    memcpy(c->explore, d->explore, (size_t)d->n_cand * sizeof(float));
    if (d->action_dim > 0) {
        memcpy(c->cand_id, d->cand_id, (size_t)d->n_cand * sizeof(*d->cand_id));
    }
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

bool base_actions_differ(const char *a, const char *b)
{
    return a[0] != '\0' && b[0] != '\0' && strcmp(a, b) != 0;
}

bool base_snapshot_same_shape(const base_snapshot *a, const base_snapshot *b)
{
    return a->dim == b->dim && a->n_actions == b->n_actions &&
           a->settings.action_dim == b->settings.action_dim;
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
