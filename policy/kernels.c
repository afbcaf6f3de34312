#include "policy/kernels.h"

#include <stdatomic.h>
#include <string.h>

/*
 * Four doubles. Where the target has no 256-bit registers GCC carries one in
 * two SSE2 registers; the arithmetic per lane is the same IEEE operation
 * either way, and policy/meson.build builds this file with
 * -ffp-contract=off, so no variant fuses a multiply into an add.
 */
typedef double v4d __attribute__((vector_size(4 * sizeof(double))));

#define V4_LOAD(v, ptr) memcpy(&(v), (ptr), sizeof(v4d))
#define V4_STORE(ptr, v) memcpy((ptr), &(v), sizeof(v4d))
#define V4_SUM(v) (((v)[0] + (v)[1]) + ((v)[2] + (v)[3]))
#define INLINE static inline __attribute__((always_inline))

/* The bodies, inlined into one variant per target below. */

INLINE double dot_body(const double *a, const double *b, size_t n)
{
    v4d s0 = {0.0, 0.0, 0.0, 0.0};
    v4d s1 = s0;
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        v4d a0, b0, a1, b1;
        V4_LOAD(a0, a + j);
        V4_LOAD(b0, b + j);
        V4_LOAD(a1, a + j + 4);
        V4_LOAD(b1, b + j + 4);
        s0 += a0 * b0;
        s1 += a1 * b1;
    }
    if (j + 4 <= n) {
        v4d a0, b0;
        V4_LOAD(a0, a + j);
        V4_LOAD(b0, b + j);
        s0 += a0 * b0;
        j += 4;
    }
    s0 += s1;
    double s = V4_SUM(s0);
    for (; j < n; j++) {
        s += a[j] * b[j];
    }
    return s;
}

/*
 * Row i of the lower triangle contributes row[0..i] . x to out[i] and
 * row[j] x[i] to out[j] for j < i: one pass over the row does both.
 */
INLINE void symv_body(const double *P, const double *x, double *out, size_t p)
{
    for (size_t i = 0; i < p; i++) {
        out[i] = 0.0;
    }
    for (size_t i = 0; i < p; i++) {
        const double *row = P + i * p;
        double xi = x[i];
        v4d xv = {xi, xi, xi, xi};
        v4d s0 = {0.0, 0.0, 0.0, 0.0};
        size_t j = 0;
        for (; j + 4 <= i; j += 4) {
            v4d r, xj, o;
            V4_LOAD(r, row + j);
            V4_LOAD(xj, x + j);
            V4_LOAD(o, out + j);
            s0 += r * xj;
            o += r * xv;
            V4_STORE(out + j, o);
        }
        double s = V4_SUM(s0);
        for (; j < i; j++) {
            s += row[j] * x[j];
            out[j] += row[j] * xi;
        }
        out[i] += s + row[i] * xi;
    }
}

INLINE double quad_body(const double *P, const double *x, size_t p)
{
    double q = 0.0;
    for (size_t i = 0; i < p; i++) {
        const double *row = P + i * p;
        q += x[i] * (row[i] * x[i] + 2.0 * dot_body(row, x, i));
    }
    return q;
}

INLINE void syr_body(double *P, double alpha, const double *u, size_t p)
{
    for (size_t i = 0; i < p; i++) {
        double *row = P + i * p;
        double ai = alpha * u[i];
        v4d av = {ai, ai, ai, ai};
        size_t j = 0;
        for (; j + 4 <= i + 1; j += 4) {
            v4d r, uj;
            V4_LOAD(r, row + j);
            V4_LOAD(uj, u + j);
            r += av * uj;
            V4_STORE(row + j, r);
        }
        for (; j <= i; j++) {
            row[j] += ai * u[j];
        }
    }
}

#define VARIANTS(attr, sfx)                                                                        \
    attr static double dot_##sfx(const double *a, const double *b, size_t n)                       \
    {                                                                                              \
        return dot_body(a, b, n);                                                                  \
    }                                                                                              \
    attr static void symv_##sfx(const double *P, const double *x, double *out, size_t p)           \
    {                                                                                              \
        symv_body(P, x, out, p);                                                                   \
    }                                                                                              \
    attr static double quad_##sfx(const double *P, const double *x, size_t p)                      \
    {                                                                                              \
        return quad_body(P, x, p);                                                                 \
    }                                                                                              \
    attr static void syr_##sfx(double *P, double alpha, const double *u, size_t p)                 \
    {                                                                                              \
        syr_body(P, alpha, u, p);                                                                  \
    }

VARIANTS(, base)

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_AVX2_VARIANT 1
VARIANTS(__attribute__((target("avx2"))), avx2)
#endif

/* -1: not decided yet; 0: baseline; 1: AVX2. */
static atomic_int kern_mode = -1;

static bool cpu_has_avx2(void)
{
#ifdef HAVE_AVX2_VARIANT
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
#else
    return false;
#endif
}

bool pol_kern_use_avx2(bool on)
{
    int m = on && cpu_has_avx2() ? 1 : 0;
    atomic_store_explicit(&kern_mode, m, memory_order_relaxed);
    return m == 1;
}

bool pol_kern_avx2_active(void)
{
    int m = atomic_load_explicit(&kern_mode, memory_order_relaxed);
    if (m < 0) {
        m = cpu_has_avx2() ? 1 : 0;
        atomic_store_explicit(&kern_mode, m, memory_order_relaxed);
    }
    return m == 1;
}

#ifdef HAVE_AVX2_VARIANT
#define DISPATCH(name, ...)                                                                        \
    (pol_kern_avx2_active() ? name##_avx2(__VA_ARGS__) : name##_base(__VA_ARGS__))
#else
#define DISPATCH(name, ...) name##_base(__VA_ARGS__)
#endif

double pol_kern_dot(const double *a, const double *b, size_t n)
{
    return DISPATCH(dot, a, b, n);
}

void pol_kern_symv_lower(const double *P, const double *x, double *out, size_t p)
{
    DISPATCH(symv, P, x, out, p);
}

double pol_kern_quad_lower(const double *P, const double *x, size_t p)
{
    return DISPATCH(quad, P, x, p);
}

void pol_kern_syr_lower(double *P, double alpha, const double *u, size_t p)
{
    DISPATCH(syr, P, alpha, u, p);
}
