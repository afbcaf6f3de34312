#ifndef RLFEED_POLICY_KERNELS_H
#define RLFEED_POLICY_KERNELS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The dense kernels of the learners (double precision) and of the
 * projections (single).
 *
 * Each is written on 4-lane vectors with one fixed order of operations
 * (vector lanes, then a fixed pairwise sum, then the scalar tail), and built
 * twice: for the baseline x86-64 target and for AVX2, chosen at run time.
 * Both give bit-identical results, so a model's numbers, its checksum and
 * recovery by replay do not depend on the CPU that computed them.
 *
 * Symmetric matrices are [p x p] row-major with only the lower triangle
 * (column <= row) read or written.
 */

/* a . b over @n doubles. */
double pol_kern_dot(const double *a, const double *b, size_t n);

/* a . x over @n, x widened to double: pol_kern_dot()'s order and bits. */
double pol_kern_dot_df(const double *a, const float *x, size_t n);

/*
 * @out [rows] = A x, A [rows x cols] row-major, in single precision (the
 * projections of ridge and the action map). Each row's result depends only
 * on that row and x, not on @rows. @out must not alias.
 */
void pol_kern_sgemv(const float *A, size_t rows, size_t cols, const float *x, float *out);

/* @out [p] = P x. @out must not alias @P or @x. */
void pol_kern_symv_lower(const double *P, const double *x, double *out, size_t p);

/* x' P x. */
double pol_kern_quad_lower(const double *P, const double *x, size_t p);

/* P += alpha u u'. */
void pol_kern_syr_lower(double *P, double alpha, const double *u, size_t p);

/*
 * P += alpha u u', then @out = P x: the two above in one pass over P, with
 * the same bits in P and @out as calling them in turn. @out must not alias.
 */
void pol_kern_syr_symv_lower(double *P, double alpha, const double *u, const double *x, double *out,
                             size_t p);

/* x' (P + alpha u u') x, bit for bit as after pol_kern_syr_lower(); P unchanged. */
double pol_kern_quad_lower_upd(const double *P, double alpha, const double *u, const double *x,
                               size_t p);

/*
 * Whether the AVX2 variants run. Tests turn them off and on to check that
 * both variants agree to the bit; turning them on where the CPU lacks AVX2
 * leaves them off. Returns the state in force afterwards.
 */
bool pol_kern_use_avx2(bool on);
bool pol_kern_avx2_active(void);

#endif
