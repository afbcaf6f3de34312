#ifndef BENCH_DATASET_H
#define BENCH_DATASET_H

/*
 * Labelled examples and the frozen base model for `rlfeed sim`.
 *
 * A dataset is a table of rows: a class label in 0..n_classes-1 and
 * n_features numeric features, standardised per feature (mean 0, sd 1 over
 * the table; a constant feature is only centred). It comes from a CSV file
 * or is synthesised:
 *
 *   label,f1,f2,f3          <- header line, ignored
 *   2,0.13,-1.5,7
 *   0,1.0,2.25,-3
 *
 * The synthetic set has RLFEED_SYNTH_CLASSES Gaussian classes in
 * RLFEED_SYNTH_FEATURES dimensions: class means ~ N(0, 1) per feature and a
 * shared isotropic within-class noise sd, found by bisection so that the
 * Bayes classifier (nearest true mean, which is linear) scores about
 * RLFEED_SYNTH_BAYES_ACC.
 *
 * The frozen base model plays the LLM in front of rlfeed, as a fixed function
 * of (seed, dataset, row):
 * 1. embedding e = tanh(W r + b): W is dim x n_features with entries
 *    N(0, 1/n_features), b ~ N(0, 0.25), both from gsl_rng_mt19937 seeded
 *    with the seed; for standardised r the pre-activations have variance
 *    about 1.25, so entries of e are O(1) and not saturated.
 * 2. base logits = a weak nearest-centroid classifier plus noise: centroids
 *    are the means of RLFEED_BASE_PER_CLASS rows per class (reservoir-sampled
 *    with the seed); the scores -|r - c_k|^2 are centred per row and divided
 *    by one global scale (their mean per-row sd on the calibration sample),
 *    then noise_scale * z_k is added, z_k ~ N(0, 1) drawn from a generator
 *    seeded by (seed, row). noise_scale is found by bisection so the argmax
 *    accuracy on a calibration sample of up to RLFEED_BASE_CALIB_ROWS rows
 *    is about the requested target (0 if the centroids alone are weaker).
 * 3. finally all logits are multiplied by one "sharpness" t, fitted by
 *    maximum likelihood on the calibration sample (temperature scaling,
 *    Guo et al. 2017), so softmax(logits) is a calibrated probability, as an
 *    LLM's scores would be. This does not change any argmax.
 *
 * Limits: at most RLFEED_DATASET_MAX_ROWS rows, RLFEED_DATASET_MAX_FEATURES
 * features, RLFEED_DATASET_MAX_CLASSES classes, CSV lines of at most
 * RLFEED_CSV_LINE_MAX bytes. Past any of them loading fails with BASE_ELIMIT.
 *
 * Thread-safety: building is single-threaded; afterwards datasets and models
 * are read-only, and rlfeed_base_model_embed()/_logits() may be called from
 * any number of threads at once.
 */

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define RLFEED_DATASET_MAX_ROWS 10000000u
#define RLFEED_DATASET_MAX_FEATURES 4096u
#define RLFEED_DATASET_MAX_CLASSES 1024u
#define RLFEED_CSV_LINE_MAX (1u << 20)

#define RLFEED_SYNTH_CLASSES 8u
#define RLFEED_SYNTH_FEATURES 24u
#define RLFEED_SYNTH_ROWS 20000u
#define RLFEED_SYNTH_BAYES_ACC 0.9

#define RLFEED_BASE_PER_CLASS 5u
#define RLFEED_BASE_CALIB_ROWS 4000u

typedef struct rlfeed_dataset {
    uint32_t n_rows;
    uint32_t n_features;
    uint32_t n_classes;     /* max label + 1, >= 2 */
    uint32_t *label;        /* [n_rows] */
    double *x;              /* [n_rows * n_features], row-major, standardised */
    double synth_sd;        /* synthetic only: within-class noise sd before standardising */
    double synth_bayes_acc; /* synthetic only: nearest-true-mean accuracy at synth_sd */
} rlfeed_dataset;

/*
 * rlfeed_dataset_load_csv() - read and standardise a CSV file.
 * @path: borrowed   @errbuf: receives a reason naming the line on failure
 * Return: BASE_OK and *out_d; BASE_EIO if the file cannot be read; BASE_EINVAL
 *         for a malformed line or label, a non-finite value, fewer than two
 *         classes or no rows; BASE_ELIMIT past a cap; BASE_ENOMEM.
 */
base_err rlfeed_dataset_load_csv(const char *path, rlfeed_dataset **out_d, char *errbuf,
                                 size_t errlen);

/*
 * rlfeed_dataset_synthetic() - the built-in synthetic intents, deterministic
 * given @seed: RLFEED_SYNTH_ROWS rows, labels uniform over the classes.
 * Return: BASE_OK and *out_d; BASE_ENOMEM.
 */
base_err rlfeed_dataset_synthetic(uint64_t seed, rlfeed_dataset **out_d);

void rlfeed_dataset_free(rlfeed_dataset *d); /* accepts NULL */

typedef struct rlfeed_base_model rlfeed_base_model;

/*
 * rlfeed_base_model_new() - build the frozen base model for @d (see above).
 * @d: borrowed; must outlive the model   @dim: embedding length, 1..4096
 * @target_acc: wanted argmax accuracy of the base logits, in (0, 1)
 * Return: BASE_OK and *out_m; BASE_EINVAL for a bad @dim or @target_acc;
 *         BASE_ENOMEM.
 */
base_err rlfeed_base_model_new(const rlfeed_dataset *d, uint32_t dim, uint64_t seed,
                               double target_acc, rlfeed_base_model **out_m);
void rlfeed_base_model_free(rlfeed_base_model *m); /* accepts NULL */

/* Write the embedding of row @row (< d->n_rows) into @out_emb[dim]. */
void rlfeed_base_model_embed(const rlfeed_base_model *m, uint32_t row, float *out_emb);

/* Write the base logits of row @row into @out_logits[n_classes]. */
void rlfeed_base_model_logits(const rlfeed_base_model *m, uint32_t row, float *out_logits);

/*
 * Calibration results: the noise scale, the argmax accuracy it achieved on
 * the calibration sample, the max-likelihood logit multiplier, and the mean
 * softmax probability of the true label (the accuracy of sampling from the
 * base model's softmax at temperature 1).
 */
double rlfeed_base_model_noise_scale(const rlfeed_base_model *m);
double rlfeed_base_model_calib_accuracy(const rlfeed_base_model *m);
double rlfeed_base_model_sharpness(const rlfeed_base_model *m);
double rlfeed_base_model_calib_softmax_accuracy(const rlfeed_base_model *m);

#endif
