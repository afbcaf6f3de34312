#ifndef POLICY_FMAP_H
#define POLICY_FMAP_H

/*
 * Feature maps: what the head hands its learner in place of the raw context
 * (docs/algorithms.md, "Feature maps"). The learner is built with the
 * mapped length and never sees the raw context; the base-probability and
 * bias features are the learner's own and come after the map's output.
 *
 * Maps of a context x (dim values):
 * - "linear": x itself (the head skips the map: bit for bit the head
 *   without one).
 * - "quad":   [x, x_i x_j for 0 <= i <= j < dim], row by row:
 *             dim + dim (dim + 1) / 2 values, e.g. dim 2:
 *             [x0, x1, x0 x0, x0 x1, x1 x1]. Only for dim <= POL_QUAD_DIM_MAX.
 * - "rff":    [x, sqrt(2) cos(W x + b)], rff_dim cosines (random Fourier
 *             features, Rahimi and Recht 2007) with W [rff_dim x dim]
 *             entries N(0, 1 / sigma^2), sigma = bandwidth * sqrt(dim), and
 *             b uniform on [0, 2 pi).
 * - "rff_norm": the same on u = sqrt(dim) x / |x| (u = 0 when x = 0): the
 *             cosines see only the direction of x, so the map ignores the
 *             scale of the embedding (and with it any radial structure).
 *
 * Invariants:
 * 1. The map is a pure function of its configuration: W and b are drawn at
 *    pol_fmap_new() from a splitmix64 stream of the seed, so two maps with
 *    the same configuration give bit-identical outputs (same binary and libm),
 *    and a head rebuilt from a snapshot maps exactly as the one snapshotted.
 * 2. The first dim outputs are x itself: every map contains the linear
 *    model, so a nonlinear head can do at least what the linear one can,
 *    given data.
 * 3. The output length is at most POL_FMAP_OUT_MAX.
 *
 * Scale. sigma = bandwidth * sqrt(dim) assumes features of unit variance
 * (typical squared distance between two contexts 2 dim, so bandwidth 1 puts
 * the kernel exp(-|x - y|^2 / (2 sigma^2)) near e^-1 between random pairs).
 * Each cosine has variance 1, like a standardised feature, so ridge's prior
 * (lambda = p / 2) weighs it like any other feature; the kernel-approximation
 * normalisation sqrt(2 / rff_dim) would make that prior rff_dim times tighter
 * on the nonlinear part.
 *
 * Cost of one map: quad O(dim^2); rff O(rff_dim * dim) multiply-adds plus
 * rff_dim cosines. Memory: rff keeps W as floats (rff_dim * dim * 4 bytes).
 *
 * Threads: none inside. pol_fmap_apply() is const and may run concurrently.
 */

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "base/record.h"

typedef enum pol_features {
    POL_FEATURES_LINEAR = 0,
    POL_FEATURES_QUAD,
    POL_FEATURES_RFF,
    POL_FEATURES_RFF_NORM,
} pol_features;

#define POL_QUAD_DIM_MAX 32           /* quad: 32 + 528 = 560 features */
#define POL_RFF_DIM_MAX 2048          /* cosines */
#define POL_RFF_DEFAULT_DIM 64        /* when the config's is 0 */
#define POL_RFF_DEFAULT_BANDWIDTH 1.0 /* when the config's is <= 0 */
#define POL_FMAP_OUT_MAX BASE_DIM_MAX /* longest map output */

typedef struct pol_fmap pol_fmap;

typedef struct pol_fmap_config {
    pol_features kind;
    uint32_t dim;     /* context length, 1..BASE_DIM_MAX */
    uint32_t rff_dim; /* rff, rff_norm: cosines, 1..POL_RFF_DIM_MAX */
    double bandwidth; /* rff, rff_norm: > 0, in units of sqrt(dim) */
    uint64_t seed;    /* rff, rff_norm: draws W and b */
} pol_fmap_config;

/* The name of a map ("linear", "quad", "rff", "rff_norm"), and back. */
const char *pol_features_name(pol_features f);
bool pol_features_from_name(const char *name, pol_features *out);

/*
 * pol_fmap_out_len() - the output length of the map @c describes.
 * Return: BASE_OK; BASE_EINVAL for an unknown kind, a dim out of range,
 *         quad past POL_QUAD_DIM_MAX, an rff_dim or bandwidth out of range,
 *         or an output longer than POL_FMAP_OUT_MAX.
 */
base_err pol_fmap_out_len(const pol_fmap_config *c, uint32_t *out);

/*
 * pol_fmap_new() - the map @c describes (not retained); for rff its W and b.
 * Return: BASE_OK; the errors of pol_fmap_out_len(); BASE_ENOMEM.
 */
base_err pol_fmap_new(const pol_fmap_config *c, pol_fmap **out);
void pol_fmap_free(pol_fmap *m);

/* Its output length. */
uint32_t pol_fmap_len(const pol_fmap *m);

/*
 * pol_fmap_apply() - the features of @x [dim] into @out [pol_fmap_len()].
 * Return: BASE_OK; BASE_ENUMERIC if an input or output is not finite (@out
 *         then holds garbage).
 */
base_err pol_fmap_apply(const pol_fmap *m, const float *x, float *out);

#endif
