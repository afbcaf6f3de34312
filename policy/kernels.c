#include "policy/kernels.h"

#include <stdatomic.h>
#include <stdint.h>
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

/*
 * The order every reduction here uses: four vector accumulators over blocks
 * of 16, then blocks of 4 into the first, the accumulators summed
 * ((s0 + s1) + (s2 + s3)), then its lanes V4_SUM, then the scalar tail in
 * order. Four chains keep the adds from waiting on each other's latency.
 */
INLINE double dot_upd_body(const double *a, const double *b, size_t n, bool upd, double ai,
                           const double *u)
{
    v4d s0 = {0.0, 0.0, 0.0, 0.0};
    v4d s1 = s0, s2 = s0, s3 = s0;
    v4d av = {ai, ai, ai, ai};
    size_t j = 0;
    for (; j + 16 <= n; j += 16) {
        v4d a0, b0, a1, b1, a2, b2, a3, b3;
        V4_LOAD(a0, a + j);
        V4_LOAD(b0, b + j);
        V4_LOAD(a1, a + j + 4);
        V4_LOAD(b1, b + j + 4);
        V4_LOAD(a2, a + j + 8);
        V4_LOAD(b2, b + j + 8);
        V4_LOAD(a3, a + j + 12);
        V4_LOAD(b3, b + j + 12);
        if (upd) {
            v4d u0, u1, u2, u3;
            V4_LOAD(u0, u + j);
            V4_LOAD(u1, u + j + 4);
            V4_LOAD(u2, u + j + 8);
            V4_LOAD(u3, u + j + 12);
            a0 += av * u0;
            a1 += av * u1;
            a2 += av * u2;
            a3 += av * u3;
        }
        s0 += a0 * b0;
        s1 += a1 * b1;
        s2 += a2 * b2;
        s3 += a3 * b3;
    }
    for (; j + 4 <= n; j += 4) {
        v4d a0, b0;
        V4_LOAD(a0, a + j);
        V4_LOAD(b0, b + j);
        if (upd) {
            v4d u0;
            V4_LOAD(u0, u + j);
            a0 += av * u0;
        }
        s0 += a0 * b0;
    }
    s0 = (s0 + s1) + (s2 + s3);
    double s = V4_SUM(s0);
    for (; j < n; j++) {
        double aj = upd ? a[j] + ai * u[j] : a[j];
        s += aj * b[j];
    }
    return s;
}

INLINE double dot_body(const double *a, const double *b, size_t n)
{
    return dot_upd_body(a, b, n, false, 0.0, NULL);
}

/* a . x with x in single precision, each x[j] widened exactly: dot_body()'s order. */
INLINE double dot_df_body(const double *a, const float *x, size_t n)
{
    typedef float v4f __attribute__((vector_size(4 * sizeof(float))));
    v4d s0 = {0.0, 0.0, 0.0, 0.0};
    v4d s1 = s0, s2 = s0, s3 = s0;
    size_t j = 0;
    for (; j + 16 <= n; j += 16) {
        v4d a0, a1, a2, a3;
        v4f f0, f1, f2, f3;
        V4_LOAD(a0, a + j);
        V4_LOAD(a1, a + j + 4);
        V4_LOAD(a2, a + j + 8);
        V4_LOAD(a3, a + j + 12);
        memcpy(&f0, x + j, sizeof(f0));
        memcpy(&f1, x + j + 4, sizeof(f1));
        memcpy(&f2, x + j + 8, sizeof(f2));
        memcpy(&f3, x + j + 12, sizeof(f3));
        s0 += a0 * __builtin_convertvector(f0, v4d);
        s1 += a1 * __builtin_convertvector(f1, v4d);
        s2 += a2 * __builtin_convertvector(f2, v4d);
        s3 += a3 * __builtin_convertvector(f3, v4d);
    }
    for (; j + 4 <= n; j += 4) {
        v4d a0;
        v4f f0;
        V4_LOAD(a0, a + j);
        memcpy(&f0, x + j, sizeof(f0));
        s0 += a0 * __builtin_convertvector(f0, v4d);
    }
    s0 = (s0 + s1) + (s2 + s3);
    double s = V4_SUM(s0);
    for (; j < n; j++) {
        s += a[j] * (double)x[j];
    }
    return s;
}

/* Row element j of the update: row[j] + ai u[j] in place (with @upd), then its value. */
#define UPD1(row, j, ai, u, upd) ((upd) ? ((row)[j] = (row)[j] + (ai) * (u)[j]) : (row)[j])

/* Four elements of it: the same operation on each lane. */
#define UPD4(r, row, j, av, u, upd)                                                                \
    do {                                                                                           \
        V4_LOAD(r, (row) + (j));                                                                   \
        if (upd) {                                                                                 \
            v4d u_;                                                                                \
            V4_LOAD(u_, (u) + (j));                                                                \
            r += (av)*u_;                                                                          \
            V4_STORE((row) + (j), r);                                                              \
        }                                                                                          \
    } while (0)

/*
 * out = P x, two rows at a time. Rows i and i + 1 (i even) contribute
 * row[0..i) . x to out[i] and out[i + 1] and row[j] x[i], row[j] x[i + 1]
 * to out[j], j < i, in that order: one pass over both rows shares the loads
 * of x and out. Each row's dot product runs in dot_body()'s order over
 * j < i, then adds its remaining elements in order (row i + 1's element i,
 * then each row's diagonal). With @upd, each element of row i first becomes
 * row[j] + (alpha u[i]) u[j] and is stored: syr_body()'s update, the same
 * operation on the same values, so P and out come out as syr then symv
 * would leave them, from one pass over P instead of two.
 */
INLINE void symv_body(double *P, const double *x, double *out, size_t p, bool upd, double alpha,
                      const double *u)
{
    for (size_t i = 0; i < p; i++) {
        out[i] = 0.0;
    }
    for (size_t i = 0; i < p; i += 2) {
        bool two = i + 1 < p;
        double *ra = P + i * p;
        double *rb = two ? ra + p : ra; /* one row: rb's results are not used */
        double xa = x[i], xb = two ? x[i + 1] : 0.0;
        double aa = upd ? alpha * u[i] : 0.0, ab = upd && two ? alpha * u[i + 1] : 0.0;
        v4d xva = {xa, xa, xa, xa}, xvb = {xb, xb, xb, xb};
        v4d ava = {aa, aa, aa, aa}, avb = {ab, ab, ab, ab};
        v4d z = {0.0, 0.0, 0.0, 0.0};
        v4d a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z;
        size_t j = 0;
        for (; j + 16 <= i; j += 16) {
            for (size_t q = 0; q < 16; q += 4) {
                v4d r, t, xj, o;
                UPD4(r, ra, j + q, ava, u, upd);
                V4_LOAD(xj, x + j + q);
                V4_LOAD(o, out + j + q);
                v4d *sa = q == 0 ? &a0 : q == 4 ? &a1 : q == 8 ? &a2 : &a3;
                *sa += r * xj;
                o += r * xva;
                if (two) {
                    UPD4(t, rb, j + q, avb, u, upd);
                    v4d *sb = q == 0 ? &b0 : q == 4 ? &b1 : q == 8 ? &b2 : &b3;
                    *sb += t * xj;
                    o += t * xvb;
                }
                V4_STORE(out + j + q, o);
            }
        }
        for (; j + 4 <= i; j += 4) {
            v4d r, t, xj, o;
            UPD4(r, ra, j, ava, u, upd);
            V4_LOAD(xj, x + j);
            V4_LOAD(o, out + j);
            a0 += r * xj;
            o += r * xva;
            if (two) {
                UPD4(t, rb, j, avb, u, upd);
                b0 += t * xj;
                o += t * xvb;
            }
            V4_STORE(out + j, o);
        }
        a0 = (a0 + a1) + (a2 + a3);
        b0 = (b0 + b1) + (b2 + b3);
        double sa = V4_SUM(a0), sb = V4_SUM(b0);
        for (; j < i; j++) {
            double r = UPD1(ra, j, aa, u, upd);
            sa += r * x[j];
            out[j] += r * xa;
            if (two) {
                double t = UPD1(rb, j, ab, u, upd);
                sb += t * x[j];
                out[j] += t * xb;
            }
        }
        out[i] += sa + UPD1(ra, i, aa, u, upd) * xa;
        if (two) {
            double t = UPD1(rb, i, ab, u, upd);
            sb += t * x[i];
            out[i] += t * xb;
            out[i + 1] += sb + UPD1(rb, i + 1, ab, u, upd) * xb;
        }
    }
}

/* x' P x, with @upd of P + alpha u u' as syr_body() would leave it (P unchanged). */
INLINE double quad_body(const double *P, const double *x, size_t p, bool upd, double alpha,
                        const double *u)
{
    double q = 0.0;
    for (size_t i = 0; i < p; i++) {
        const double *row = P + i * p;
        double ai = upd ? alpha * u[i] : 0.0;
        double rii = upd ? row[i] + ai * u[i] : row[i];
        q += x[i] * (rii * x[i] + 2.0 * dot_upd_body(row, x, i, upd, ai, u));
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

/*
 * Single precision, for the projections: eight floats. As with v4d, the
 * baseline carries one in two SSE2 registers with the same per-lane IEEE
 * operations, so both variants give the same bits.
 */
typedef float v8f __attribute__((vector_size(8 * sizeof(float))));

#define V8_LOAD(v, ptr) memcpy(&(v), (ptr), sizeof(v8f))
#define V8_SUM(v)                                                                                  \
    ((((v)[0] + (v)[4]) + ((v)[2] + (v)[6])) + (((v)[1] + (v)[5]) + ((v)[3] + (v)[7])))

/*
 * out = A x, A [rows x cols] row-major. Each row's order: one 8-lane
 * accumulator over blocks of 8 (product, then add), its lanes V8_SUM, then
 * the scalar tail in order. A row's result does not depend on the rows
 * beside it; four are done at a time so that the loads of x are shared and
 * four add chains run side by side.
 */
INLINE void sgemv_body(const float *A, size_t rows, size_t cols, const float *x, float *out)
{
    size_t i = 0;
    for (; i + 4 <= rows; i += 4) {
        const float *r0 = A + i * cols, *r1 = r0 + cols, *r2 = r1 + cols, *r3 = r2 + cols;
        v8f s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
        size_t j = 0;
        for (; j + 8 <= cols; j += 8) {
            v8f xv, a0, a1, a2, a3;
            V8_LOAD(xv, x + j);
            V8_LOAD(a0, r0 + j);
            V8_LOAD(a1, r1 + j);
            V8_LOAD(a2, r2 + j);
            V8_LOAD(a3, r3 + j);
            s0 += a0 * xv;
            s1 += a1 * xv;
            s2 += a2 * xv;
            s3 += a3 * xv;
        }
        float t0 = V8_SUM(s0), t1 = V8_SUM(s1), t2 = V8_SUM(s2), t3 = V8_SUM(s3);
        for (; j < cols; j++) {
            t0 += r0[j] * x[j];
            t1 += r1[j] * x[j];
            t2 += r2[j] * x[j];
            t3 += r3[j] * x[j];
        }
        out[i] = t0;
        out[i + 1] = t1;
        out[i + 2] = t2;
        out[i + 3] = t3;
    }
    for (; i < rows; i++) {
        const float *r0 = A + i * cols;
        v8f s0 = {0};
        size_t j = 0;
        for (; j + 8 <= cols; j += 8) {
            v8f xv, a0;
            V8_LOAD(xv, x + j);
            V8_LOAD(a0, r0 + j);
            s0 += a0 * xv;
        }
        float t0 = V8_SUM(s0);
        for (; j < cols; j++) {
            t0 += r0[j] * x[j];
        }
        out[i] = t0;
    }
}

#define VARIANTS(attr, sfx)                                                                        \
    attr static double dot_##sfx(const double *a, const double *b, size_t n)                       \
    {                                                                                              \
        return dot_body(a, b, n);                                                                  \
    }                                                                                              \
    attr static double dot_df_##sfx(const double *a, const float *x, size_t n)                     \
    {                                                                                              \
        return dot_df_body(a, x, n);                                                               \
    }                                                                                              \
    attr static void sgemv_##sfx(const float *A, size_t rows, size_t cols, const float *x,         \
                                 float *out)                                                       \
    {                                                                                              \
        sgemv_body(A, rows, cols, x, out);                                                         \
    }                                                                                              \
    attr static void symv_##sfx(const double *P, const double *x, double *out, size_t p)           \
    {                                                                                              \
        symv_body((double *)(uintptr_t)P, x, out, p, false, 0.0, NULL);                            \
    }                                                                                              \
    attr static void syr_symv_##sfx(double *P, double alpha, const double *u, const double *x,     \
                                    double *out, size_t p)                                         \
    {                                                                                              \
        symv_body(P, x, out, p, true, alpha, u);                                                   \
    }                                                                                              \
    attr static double quad_##sfx(const double *P, const double *x, size_t p)                      \
    {                                                                                              \
        return quad_body(P, x, p, false, 0.0, NULL);                                               \
    }                                                                                              \
    attr static double quad_upd_##sfx(const double *P, double alpha, const double *u,              \
                                      const double *x, size_t p)                                   \
    {                                                                                              \
        return quad_body(P, x, p, true, alpha, u);                                                 \
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

double pol_kern_dot_df(const double *a, const float *x, size_t n)
{
    return DISPATCH(dot_df, a, x, n);
}

void pol_kern_sgemv(const float *A, size_t rows, size_t cols, const float *x, float *out)
{
    DISPATCH(sgemv, A, rows, cols, x, out);
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

void pol_kern_syr_symv_lower(double *P, double alpha, const double *u, const double *x, double *out,
                             size_t p)
{
    DISPATCH(syr_symv, P, alpha, u, x, out, p);
}

double pol_kern_quad_lower_upd(const double *P, double alpha, const double *u, const double *x,
                               size_t p)
{
    return DISPATCH(quad_upd, P, alpha, u, x, p);
}
