#include "policy/amap.h"

#include <math.h>

#include "base/alloc.h"
#include "base/hash.h"
#include "base/record.h"
#include "policy/fmap.h"
#include "policy/kernels.h"

/* Mixed into the seed so the projections are independent of ridge's and rff's. */
#define AMAP_SEED_X 0x2545f4914f6cdd1dULL
#define AMAP_SEED_Z 0x9fb21c651e98df25ULL

struct pol_amap {
    pol_amap_config cfg;
    uint32_t r, s, len;
    float *px; /* [r x dim] or NULL when dim == r */
    float *pz; /* [s x action_dim] or NULL when action_dim == s */
};

base_err pol_amap_resolve(const pol_amap_config *c, uint32_t *out_r, uint32_t *out_len)
{
    if (c->dim < 1 || c->dim > BASE_DIM_MAX || c->action_dim < 1 ||
        c->action_dim > BASE_ACTION_DIM_MAX || c->interaction_dim > c->dim) {
        return BASE_EINVAL;
    }
    uint64_t s = c->action_dim < POL_AMAP_ACTION_MAX ? c->action_dim : POL_AMAP_ACTION_MAX;
    uint64_t r = c->interaction_dim;
    if (r == 0) {
        if (c->budget < 2 * s) {
            return BASE_EINVAL;
        }
        r = (c->budget - s) / s;
        r = r < c->dim ? r : c->dim;
    }
    uint64_t len = s + r * s;
    if (len > POL_FMAP_OUT_MAX) {
        return BASE_EINVAL;
    }
    *out_r = (uint32_t)r;
    *out_len = (uint32_t)len;
    return BASE_OK;
}

/* Achlioptas signs scaled by 1/sqrt(cols): unit-variance inputs give unit-variance outputs. */
static float *signs(uint32_t rows, uint32_t cols, uint64_t seed)
{
    float *p = base_alloc_array((size_t)rows * cols, sizeof(float));
    if (p != NULL) {
        float v = (float)(1.0 / sqrt((double)cols));
        uint64_t st = seed;
        for (size_t i = 0; i < (size_t)rows * cols; i++) {
            p[i] = (base_splitmix64(&st) >> 63) ? v : -v;
        }
    }
    return p;
}

base_err pol_amap_new(const pol_amap_config *c, pol_amap **out)
{
    uint32_t r = 0, len = 0;
    base_err e = pol_amap_resolve(c, &r, &len);
    if (e != BASE_OK) {
        return e;
    }
    pol_amap *m = base_alloc_zero(1, sizeof(*m));
    if (m == NULL) {
        return BASE_ENOMEM;
    }
    m->cfg = *c;
    m->cfg.interaction_dim = r;
    m->r = r;
    m->s = c->action_dim < POL_AMAP_ACTION_MAX ? c->action_dim : POL_AMAP_ACTION_MAX;
    m->len = len;
    if (r != c->dim) {
        m->px = signs(r, c->dim, c->seed ^ AMAP_SEED_X);
    }
    if (m->s != c->action_dim) {
        m->pz = signs(m->s, c->action_dim, c->seed ^ AMAP_SEED_Z);
    }
    if ((r != c->dim && m->px == NULL) || (m->s != c->action_dim && m->pz == NULL)) {
        pol_amap_free(m);
        return BASE_ENOMEM;
    }
    *out = m;
    return BASE_OK;
}

void pol_amap_free(pol_amap *m)
{
    if (m != NULL) {
        base_free(m->px);
        base_free(m->pz);
        base_free(m);
    }
}

uint32_t pol_amap_len(const pol_amap *m)
{
    return m->len;
}

/* @out [rows] = @p [rows x cols] @in, or @in itself when @p is NULL (rows == cols). */
static void project(const float *p, uint32_t rows, uint32_t cols, const float *in, float *out)
{
    if (p == NULL) {
        for (uint32_t i = 0; i < rows; i++) {
            out[i] = in[i];
        }
        return;
    }
    pol_kern_sgemv(p, rows, cols, in, out);
}

static bool all_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i])) {
            return false;
        }
    }
    return true;
}

base_err pol_amap_apply(const pol_amap *m, const float *x, const float *z, uint32_t n, float *out)
{
    uint32_t r = m->r, s = m->s, k = m->cfg.action_dim;
    float u[BASE_DIM_MAX]; /* the context part, the same for every candidate */
    if (!all_finite(x, m->cfg.dim) || !all_finite(z, (size_t)n * k)) {
        return BASE_ENUMERIC;
    }
    project(m->px, r, m->cfg.dim, x, u);
    for (uint32_t c = 0; c < n; c++) {
        float *row = out + (size_t)c * m->len;
        float *v = row, *uv = row + s;
        project(m->pz, s, k, z + (size_t)c * k, v);
        for (uint32_t i = 0; i < r; i++) {
            float ui = u[i];
            for (uint32_t j = 0; j < s; j++) {
                uv[(size_t)i * s + j] = ui * v[j];
            }
        }
        if (!all_finite(row, m->len)) {
            return BASE_ENUMERIC;
        }
    }
    return BASE_OK;
}
