#include "policy/fmap.h"

#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"

#define TWO_PI 6.283185307179586
#define SQRT2 1.4142135623730951

/* Mixed into the seed so W is independent of ridge's projection (same seed). */
#define RFF_SEED_MIX 0x5851f42d4c957f2dULL

/* Cosines computed together: 64 floats and 64 doubles on the stack. */
#define RFF_BLOCK 64

struct pol_fmap {
    pol_fmap_config cfg;
    uint32_t len;  /* output length */
    float *w;      /* rff: [dim x rff_dim] W^T / (2 pi): column i, cosine i's frequency in turns */
    double *phase; /* rff: [rff_dim] b / (2 pi), in [0, 1) */
};

static const char *const names[] = {
    [POL_FEATURES_LINEAR] = "linear",
    [POL_FEATURES_QUAD] = "quad",
    [POL_FEATURES_RFF] = "rff",
    [POL_FEATURES_RFF_NORM] = "rff_norm",
};
#define N_KINDS (sizeof(names) / sizeof(names[0]))

const char *pol_features_name(pol_features f)
{
    return (unsigned)f < N_KINDS ? names[f] : "unknown";
}

bool pol_features_from_name(const char *name, pol_features *out)
{
    for (unsigned i = 0; i < N_KINDS; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (pol_features)i;
            return true;
        }
    }
    return false;
}

static bool is_rff(pol_features f)
{
    return f == POL_FEATURES_RFF || f == POL_FEATURES_RFF_NORM;
}

base_err pol_fmap_out_len(const pol_fmap_config *c, uint32_t *out)
{
    uint64_t len = 0;
    if (c->dim < 1 || c->dim > BASE_DIM_MAX) {
        return BASE_EINVAL;
    }
    switch (c->kind) {
    case POL_FEATURES_LINEAR:
        len = c->dim;
        break;
    case POL_FEATURES_QUAD:
        if (c->dim > POL_QUAD_DIM_MAX) {
            return BASE_EINVAL;
        }
        len = c->dim + (uint64_t)c->dim * (c->dim + 1) / 2;
        break;
    case POL_FEATURES_RFF:
    case POL_FEATURES_RFF_NORM:
        if (c->rff_dim < 1 || c->rff_dim > POL_RFF_DIM_MAX ||
            !(isfinite(c->bandwidth) && c->bandwidth > 0.0)) {
            return BASE_EINVAL;
        }
        len = (uint64_t)c->dim + c->rff_dim;
        break;
    default:
        return BASE_EINVAL;
    }
    if (len > POL_FMAP_OUT_MAX) {
        return BASE_EINVAL;
    }
    *out = (uint32_t)len;
    return BASE_OK;
}

/* A standard normal (Box-Muller, one of the pair); u1 in [0, 1), so log1p(-u1) is finite. */
static double gauss(uint64_t *st)
{
    double u1 = base_u64_to_unit(base_splitmix64(st));
    double u2 = base_u64_to_unit(base_splitmix64(st));
    return sqrt(-2.0 * log1p(-u1)) * cos(TWO_PI * u2);
}

base_err pol_fmap_new(const pol_fmap_config *c, pol_fmap **out)
{
    uint32_t len = 0;
    base_err e = pol_fmap_out_len(c, &len);
    if (e != BASE_OK) {
        return e;
    }
    pol_fmap *m = base_alloc_zero(1, sizeof(*m));
    if (m == NULL) {
        return BASE_ENOMEM;
    }
    m->cfg = *c;
    m->len = len;
    if (is_rff(c->kind)) {
        size_t n = (size_t)c->rff_dim * c->dim;
        m->w = base_alloc_array(n, sizeof(float));
        m->phase = base_alloc_array(c->rff_dim, sizeof(double));
        if (m->w == NULL || m->phase == NULL) {
            pol_fmap_free(m);
            return BASE_ENOMEM;
        }
        /*
         * W ~ N(0, 1 / sigma^2): the spectral density of the Gaussian kernel
         * of width sigma. Kept in turns (W / 2 pi, b / 2 pi) for cos_turns().
         */
        double inv_sigma = 1.0 / (TWO_PI * c->bandwidth * sqrt((double)c->dim));
        uint64_t st = c->seed ^ RFF_SEED_MIX;
        /* Drawn cosine by cosine (row by row of W), stored transposed. */
        for (uint32_t i = 0; i < c->rff_dim; i++) {
            for (uint32_t j = 0; j < c->dim; j++) {
                m->w[(size_t)j * c->rff_dim + i] = (float)(gauss(&st) * inv_sigma);
            }
        }
        for (uint32_t i = 0; i < c->rff_dim; i++) {
            m->phase[i] = base_u64_to_unit(base_splitmix64(&st));
        }
    }
    *out = m;
    return BASE_OK;
}

void pol_fmap_free(pol_fmap *m)
{
    if (m != NULL) {
        base_free(m->phase);
        base_free(m->w);
        base_free(m);
    }
}

uint32_t pol_fmap_len(const pol_fmap *m)
{
    return m->len;
}

/*
 * cos(2 pi t) for |t| < 2^50, |error| < 1e-10. libm's cos was half the time
 * of an rff head, and does not vectorise: this rounds t to the nearest
 * period (the 1.5 * 2^52 trick, exact without -ffast-math) and sums the
 * Taylor series of cos on [-pi, pi] to y^20, whose first omitted term is
 * below pi^22 / 22! < 8e-11. Pure arithmetic: it rounds the same with any
 * libm.
 */
static inline double cos_turns(double t)
{
    const double magic = 0x1.8p52;
    double k = (t + magic) - magic;
    double y = TWO_PI * (t - k); /* [-pi, pi] */
    double y2 = y * y;
    /* 1 - y^2/2! + y^4/4! - ... + y^20/20!, Horner in y^2 from the top. */
    double r = 1.0 / 2432902008176640000.0;
    r = r * y2 - 1.0 / 6402373705728000.0;
    r = r * y2 + 1.0 / 20922789888000.0;
    r = r * y2 - 1.0 / 87178291200.0;
    r = r * y2 + 1.0 / 479001600.0;
    r = r * y2 - 1.0 / 3628800.0;
    r = r * y2 + 1.0 / 40320.0;
    r = r * y2 - 1.0 / 720.0;
    r = r * y2 + 1.0 / 24.0;
    r = r * y2 - 1.0 / 2.0;
    return r * y2 + 1.0;
}

/* x_i x_j for i <= j, row by row, into @out [dim (dim + 1) / 2]. */
static void quad(const float *x, uint32_t dim, float *out)
{
    size_t k = 0;
    for (uint32_t i = 0; i < dim; i++) {
        float xi = x[i];
        for (uint32_t j = i; j < dim; j++) {
            out[k++] = xi * x[j];
        }
    }
}

/*
 * sqrt(2) cos(W u + b) into @out [rff_dim], u = x or its rescaled direction,
 * RFF_BLOCK cosines at a time: W u in float (W is stored transposed, so the
 * inner loop runs along a block of cosines and vectorises whatever dim is),
 * the phase and the cosine in double.
 */
static void rff(const pol_fmap *m, const float *x, float *out)
{
    float acc[RFF_BLOCK];
    double t[RFF_BLOCK];
    uint32_t d = m->cfg.dim, n = m->cfg.rff_dim;
    double scale = 1.0;
    if (m->cfg.kind == POL_FEATURES_RFF_NORM) {
        double nn = 0.0;
        for (uint32_t j = 0; j < d; j++) {
            nn += (double)x[j] * (double)x[j];
        }
        /* u = sqrt(dim) x / |x|: unit-variance scale whatever the embedding's. */
        scale = nn > 0.0 ? sqrt((double)d / nn) : 0.0;
    }
    for (uint32_t i0 = 0; i0 < n; i0 += RFF_BLOCK) {
        uint32_t nb = n - i0 < RFF_BLOCK ? n - i0 : RFF_BLOCK;
        memset(acc, 0, sizeof(acc));
        for (uint32_t j = 0; j < d; j++) {
            const float *col = m->w + (size_t)j * n + i0;
            float xj = x[j];
#pragma omp simd
            for (uint32_t i = 0; i < nb; i++) {
                acc[i] += col[i] * xj;
            }
        }
        bool tame = true;
        for (uint32_t i = 0; i < nb; i++) {
            t[i] = (double)acc[i] * scale + m->phase[i0 + i];
            tame = tame && fabs(t[i]) < 0x1p50;
        }
        if (tame) {
            float *o = out + i0;
#pragma omp simd
            for (uint32_t i = 0; i < nb; i++) {
                t[i] = SQRT2 * cos_turns(t[i]);
            }
#pragma omp simd
            for (uint32_t i = 0; i < nb; i++) {
                o[i] = (float)t[i];
            }
        } else {
            /* Huge (or non-finite) phases: features that mean nothing, but defined. */
            for (uint32_t i = 0; i < nb; i++) {
                out[i0 + i] = (float)(SQRT2 * cos(TWO_PI * t[i]));
            }
        }
    }
}

base_err pol_fmap_apply(const pol_fmap *m, const float *x, float *out)
{
    uint32_t d = m->cfg.dim;
    for (uint32_t j = 0; j < d; j++) {
        if (!isfinite(x[j])) {
            return BASE_ENUMERIC;
        }
    }
    memcpy(out, x, (size_t)d * sizeof(float));
    if (m->cfg.kind == POL_FEATURES_QUAD) {
        quad(x, d, out + d);
    } else if (is_rff(m->cfg.kind)) {
        rff(m, x, out + d);
    }
    /* Products can overflow a float, and W x too; cos of an infinity is NaN. */
    for (uint32_t j = d; j < m->len; j++) {
        if (!isfinite(out[j])) {
            return BASE_ENUMERIC;
        }
    }
    return BASE_OK;
}
