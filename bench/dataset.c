#include "bench/dataset.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "base/alloc.h"
#include "base/hash.h"

#define PI 3.14159265358979323846
#define BISECT_ITERS 50
#define SYNTH_CALIB_ROWS 8000u
#define EMBED_BIAS_SD 0.5
#define NOISE_SALT 0x6e6f697365ull /* "noise": decorrelates row noise from other seeds */

struct rlfeed_base_model {
    const rlfeed_dataset *d; /* borrowed */
    uint32_t dim;
    uint64_t seed;
    double *w;          /* [dim * n_features], row-major */
    double *b;          /* [dim] */
    double *centroid;   /* [n_classes * n_features] */
    double logit_scale; /* divides the centred centroid scores, > 0 */
    double noise_scale; /* sd of the per-row logit noise */
    double sharpness;   /* final multiplier of the logits: the max-likelihood temperature */
    double calib_acc;
    double calib_soft_acc; /* mean softmax probability of the label */
};

/* ---- small numeric helpers ---- */

static uint32_t argmax_d(const double *v, uint32_t n)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++) {
        if (v[i] > v[best]) {
            best = i;
        }
    }
    return best;
}

static double sq_dist(const double *a, const double *b, uint32_t n)
{
    double s = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        double t = a[i] - b[i];
        s += t * t;
    }
    return s;
}

/* One standard normal from a splitmix64 stream (Box-Muller, cosine branch). */
static double normal_from(uint64_t *state)
{
    double u1 = 1.0 - base_u64_to_unit(base_splitmix64(state)); /* (0, 1]: log is finite */
    double u2 = base_u64_to_unit(base_splitmix64(state));
    return sqrt(-2.0 * log(u1)) * cos(2.0 * PI * u2);
}

static gsl_rng *rng_new(uint64_t seed)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (r != NULL) {
        gsl_rng_set(r, (unsigned long)seed);
    }
    return r;
}

/* "line N: what", or just "what" for line 0. Truncation is acceptable here. */
static void set_err(char *errbuf, size_t errlen, unsigned long line, const char *what)
{
    int n = 0;

    if (errbuf != NULL && errlen > 0) {
        if (line > 0) {
            n = snprintf(errbuf, errlen, "line %lu: %s", line, what);
        } else {
            n = snprintf(errbuf, errlen, "%s", what);
        }
        if (n < 0) {
            errbuf[0] = '\0';
        }
    }
}

/* ---- datasets ---- */

/* An OOM-only constructor: NULL on failure. */
static rlfeed_dataset *dataset_alloc(uint32_t n_rows, uint32_t n_features)
{
    rlfeed_dataset *d = base_alloc_zero(1, sizeof(*d));
    if (d != NULL) {
        d->n_rows = n_rows;
        d->n_features = n_features;
        d->label = base_alloc_array(n_rows, sizeof(*d->label));
        d->x = base_alloc_array((size_t)n_rows * n_features, sizeof(*d->x));
        if (d->label == NULL || d->x == NULL) {
            rlfeed_dataset_free(d);
            d = NULL;
        }
    }
    return d;
}

void rlfeed_dataset_free(rlfeed_dataset *d)
{
    if (d != NULL) {
        base_free(d->label);
        base_free(d->x);
        base_free(d);
    }
}

/* Standardise every feature over the rows (two passes, so no cancellation). */
static void standardise(rlfeed_dataset *d)
{
    uint32_t nf = d->n_features;
    for (uint32_t f = 0; f < nf; f++) {
        double mean = 0.0;
        double var = 0.0;
        for (uint32_t i = 0; i < d->n_rows; i++) {
            mean += d->x[(size_t)i * nf + f];
        }
        mean /= d->n_rows;
        for (uint32_t i = 0; i < d->n_rows; i++) {
            double t = d->x[(size_t)i * nf + f] - mean;
            var += t * t;
        }
        var /= d->n_rows;
        double sd = var > 0.0 ? sqrt(var) : 1.0; /* a constant feature is only centred */
        for (uint32_t i = 0; i < d->n_rows; i++) {
            d->x[(size_t)i * nf + f] = (d->x[(size_t)i * nf + f] - mean) / sd;
        }
    }
}

/* Nearest-mean accuracy of x = mu_y + sd * z over a fixed calibration sample. */
static double synth_accuracy(const double *mu, const uint32_t *y, const double *z, uint32_t n,
                             double sd, double *scratch)
{
    uint32_t nf = RLFEED_SYNTH_FEATURES;
    double dist[RLFEED_SYNTH_CLASSES];
    uint32_t hits = 0;

    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t f = 0; f < nf; f++) {
            scratch[f] = mu[y[i] * nf + f] + sd * z[(size_t)i * nf + f];
        }
        for (uint32_t k = 0; k < RLFEED_SYNTH_CLASSES; k++) {
            dist[k] = -sq_dist(scratch, mu + k * nf, nf);
        }
        hits += argmax_d(dist, RLFEED_SYNTH_CLASSES) == y[i];
    }
    return (double)hits / n;
}

base_err rlfeed_dataset_synthetic(uint64_t seed, rlfeed_dataset **out_d)
{
    const uint32_t nf = RLFEED_SYNTH_FEATURES;
    const uint32_t nk = RLFEED_SYNTH_CLASSES;
    const uint32_t nc = SYNTH_CALIB_ROWS;
    base_err e = BASE_ENOMEM;
    rlfeed_dataset *d = NULL;
    gsl_rng *r = rng_new(seed);
    double *mu = base_alloc_array((size_t)nk * nf, sizeof(*mu));
    uint32_t *cy = base_alloc_array(nc, sizeof(*cy));
    double *cz = base_alloc_array((size_t)nc * nf, sizeof(*cz));
    double scratch[RLFEED_SYNTH_FEATURES];
    double lo = 0.0;
    double hi = 1.0;

    if (r == NULL || mu == NULL || cy == NULL || cz == NULL) {
        goto done;
    }
    for (uint32_t i = 0; i < nk * nf; i++) {
        mu[i] = gsl_ran_gaussian(r, 1.0);
    }
    for (uint32_t i = 0; i < nc; i++) {
        cy[i] = (uint32_t)gsl_rng_uniform_int(r, nk);
        for (uint32_t f = 0; f < nf; f++) {
            cz[(size_t)i * nf + f] = gsl_ran_gaussian(r, 1.0);
        }
    }
    /* Accuracy falls from 1 towards 1/K as the noise grows: bracket, then bisect. */
    for (int i = 0; i < 30 && synth_accuracy(mu, cy, cz, nc, hi, scratch) > RLFEED_SYNTH_BAYES_ACC;
         i++) {
        lo = hi;
        hi *= 2.0;
    }
    for (int i = 0; i < BISECT_ITERS; i++) {
        double mid = 0.5 * (lo + hi);
        if (synth_accuracy(mu, cy, cz, nc, mid, scratch) > RLFEED_SYNTH_BAYES_ACC) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    d = dataset_alloc(RLFEED_SYNTH_ROWS, nf);
    if (d == NULL) {
        goto done;
    }
    d->n_classes = nk;
    d->synth_sd = 0.5 * (lo + hi);
    d->synth_bayes_acc = synth_accuracy(mu, cy, cz, nc, d->synth_sd, scratch);
    for (uint32_t i = 0; i < d->n_rows; i++) {
        uint32_t y = (uint32_t)gsl_rng_uniform_int(r, nk);
        d->label[i] = y;
        for (uint32_t f = 0; f < nf; f++) {
            d->x[(size_t)i * nf + f] = mu[y * nf + f] + gsl_ran_gaussian(r, d->synth_sd);
        }
    }
    standardise(d);
    *out_d = d;
    d = NULL;
    e = BASE_OK;

done:
    rlfeed_dataset_free(d);
    base_free(cz);
    base_free(cy);
    base_free(mu);
    if (r != NULL) {
        gsl_rng_free(r);
    }
    return e;
}

/* ---- CSV ---- */

static const char *skip_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    return p;
}

/* After a field: a comma (consumed, *out_more = true) or the end of the line. */
static bool field_end(const char **pp, bool *out_more)
{
    const char *p = skip_blanks(*pp);
    bool ok = true;

    if (*p == ',') {
        *out_more = true;
        p++;
    } else if (*p == '\0' || *p == '\n' || *p == '\r') {
        *out_more = false;
    } else {
        ok = false;
    }
    *pp = p;
    return ok;
}

typedef struct csv_rows {
    uint32_t *label;
    double *x;
    size_t n_rows;
    size_t cap_rows;
    uint32_t n_features; /* 0 until the first data row */
    uint32_t max_label;
} csv_rows;

static base_err csv_grow(csv_rows *t)
{
    base_err e = BASE_ELIMIT;
    size_t cap = t->cap_rows == 0 ? 1024 : t->cap_rows * 2;

    if (t->n_rows >= RLFEED_DATASET_MAX_ROWS) {
        goto done;
    }
    if (cap > RLFEED_DATASET_MAX_ROWS) {
        cap = RLFEED_DATASET_MAX_ROWS;
    }
    e = BASE_ENOMEM;
    uint32_t *label = base_realloc_array(t->label, cap, sizeof(*label));
    if (label == NULL) {
        goto done;
    }
    t->label = label;
    double *x = base_realloc_array(t->x, cap * t->n_features, sizeof(*x));
    if (x == NULL) {
        goto done;
    }
    t->x = x;
    t->cap_rows = cap;
    e = BASE_OK;

done:
    return e;
}

/* Count the comma-separated fields of a line (for the first data row). */
static uint32_t count_fields(const char *line)
{
    uint32_t n = 1;
    for (const char *p = line; *p != '\0' && *p != '\n'; p++) {
        n += *p == ',';
    }
    return n;
}

static base_err csv_parse_line(csv_rows *t, const char *line, unsigned long lineno, char *errbuf,
                               size_t errlen)
{
    base_err e = BASE_EINVAL;
    const char *p = skip_blanks(line);
    char *end = NULL;
    bool more = false;
    long lab;

    if (t->n_features == 0) {
        uint32_t nf = count_fields(line);
        if (nf < 2) {
            set_err(errbuf, errlen, lineno, "need a label and >= 1 feature");
            goto done;
        }
        if (nf - 1 > RLFEED_DATASET_MAX_FEATURES) {
            e = BASE_ELIMIT;
            set_err(errbuf, errlen, lineno, "too many features");
            goto done;
        }
        t->n_features = nf - 1;
    }
    if (t->n_rows == t->cap_rows) {
        e = csv_grow(t);
        if (e != BASE_OK) {
            set_err(errbuf, errlen, lineno, e == BASE_ELIMIT ? "too many rows" : "out of memory");
            goto done;
        }
        e = BASE_EINVAL;
    }
    errno = 0;
    lab = strtol(p, &end, 10);
    if (end == p || errno != 0 || lab < 0 || lab >= (long)RLFEED_DATASET_MAX_CLASSES) {
        set_err(errbuf, errlen, lineno, "label must be an integer 0..1023");
        goto done;
    }
    p = end;
    if (!field_end(&p, &more) || !more) {
        set_err(errbuf, errlen, lineno, "bad label field");
        goto done;
    }
    double *row = t->x + t->n_rows * t->n_features;
    for (uint32_t f = 0; f < t->n_features; f++) {
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || !isfinite(v)) {
            set_err(errbuf, errlen, lineno, "feature is not a finite number");
            goto done;
        }
        p = end;
        if (!field_end(&p, &more) || more != (f + 1 < t->n_features)) {
            set_err(errbuf, errlen, lineno,
                    "wrong number of fields (must match the first data row)");
            goto done;
        }
        row[f] = v;
    }
    t->label[t->n_rows] = (uint32_t)lab;
    if ((uint32_t)lab > t->max_label) {
        t->max_label = (uint32_t)lab;
    }
    t->n_rows++;
    e = BASE_OK;

done:
    return e;
}

static bool blank_line(const char *s)
{
    s = skip_blanks(s);
    return *s == '\0' || *s == '\n' || *s == '\r';
}

base_err rlfeed_dataset_load_csv(const char *path, rlfeed_dataset **out_d, char *errbuf,
                                 size_t errlen)
{
    base_err e = BASE_ENOMEM;
    csv_rows t = {0};
    rlfeed_dataset *d = NULL;
    FILE *fp = NULL;
    char *line = base_alloc(RLFEED_CSV_LINE_MAX + 1);
    unsigned long lineno = 0;

    if (line == NULL) {
        set_err(errbuf, errlen, 0, "out of memory");
        goto done;
    }
    fp = fopen(path, "r");
    if (fp == NULL) {
        e = BASE_EIO;
        set_err(errbuf, errlen, 0, strerror(errno));
        goto done;
    }
    while (fgets(line, RLFEED_CSV_LINE_MAX + 1, fp) != NULL) {
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(fp)) {
            /* fgets() stopped short of a full buffer: a NUL byte hides the rest. */
            bool nul = strlen(line) < RLFEED_CSV_LINE_MAX;
            e = nul ? BASE_EINVAL : BASE_ELIMIT;
            set_err(errbuf, errlen, lineno, nul ? "holds a NUL byte" : "line too long");
            goto done;
        }
        if (lineno == 1 || blank_line(line)) {
            continue; /* the header, and blank lines */
        }
        e = csv_parse_line(&t, line, lineno, errbuf, errlen);
        if (e != BASE_OK) {
            goto done;
        }
    }
    e = BASE_EIO;
    if (ferror(fp)) {
        set_err(errbuf, errlen, lineno, "read error");
        goto done;
    }
    e = BASE_EINVAL;
    if (t.n_rows == 0 || t.max_label < 1) {
        set_err(errbuf, errlen, lineno, "need rows of at least two classes");
        goto done;
    }
    e = BASE_ENOMEM;
    d = base_alloc_zero(1, sizeof(*d));
    if (d == NULL) {
        goto done;
    }
    d->n_rows = (uint32_t)t.n_rows;
    d->n_features = t.n_features;
    d->n_classes = t.max_label + 1;
    d->label = t.label;
    d->x = t.x;
    t.label = NULL;
    t.x = NULL;
    standardise(d);
    *out_d = d;
    e = BASE_OK;

done:
    if (fp != NULL) {
        (void)fclose(fp); /* read-only: nothing to lose */
    }
    base_free(t.x);
    base_free(t.label);
    base_free(line);
    return e;
}

/* ---- the frozen base model ---- */

/* Centred, scaled centroid scores of row @row (no noise), into out[n_classes]. */
static void clean_logits(const rlfeed_base_model *m, uint32_t row, double *out)
{
    const rlfeed_dataset *d = m->d;
    const double *r = d->x + (size_t)row * d->n_features;
    double mean = 0.0;

    for (uint32_t k = 0; k < d->n_classes; k++) {
        out[k] = -sq_dist(r, m->centroid + (size_t)k * d->n_features, d->n_features);
        mean += out[k];
    }
    mean /= d->n_classes;
    for (uint32_t k = 0; k < d->n_classes; k++) {
        out[k] = (out[k] - mean) / m->logit_scale;
    }
}

/* The per-row noise z[n_classes] ~ N(0, I), a fixed function of (seed, row). */
static void row_noise(const rlfeed_base_model *m, uint32_t row, double *out)
{
    uint64_t state = base_hash64(&row, sizeof(row), m->seed ^ NOISE_SALT);
    for (uint32_t k = 0; k < m->d->n_classes; k++) {
        out[k] = normal_from(&state);
    }
}

/* Accuracy of argmax(clean + s * z) over the calibration rows. */
static double base_accuracy(const rlfeed_base_model *m, const uint32_t *rows, uint32_t n,
                            const double *clean, const double *z, double s)
{
    uint32_t nk = m->d->n_classes;
    double v[RLFEED_DATASET_MAX_CLASSES];
    uint32_t hits = 0;

    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t k = 0; k < nk; k++) {
            v[k] = clean[(size_t)i * nk + k] + s * z[(size_t)i * nk + k];
        }
        hits += argmax_d(v, nk) == m->d->label[rows[i]];
    }
    return (double)hits / n;
}

/* Centroids from RLFEED_BASE_PER_CLASS reservoir-sampled rows of each class. */
static base_err pick_centroids(rlfeed_base_model *m, gsl_rng *r)
{
    const rlfeed_dataset *d = m->d;
    const uint32_t per = RLFEED_BASE_PER_CLASS;
    base_err e = BASE_ENOMEM;
    uint32_t *pick = base_alloc_array((size_t)d->n_classes * per, sizeof(*pick));
    uint32_t *seen = base_alloc_zero(d->n_classes, sizeof(*seen));

    if (pick == NULL || seen == NULL) {
        goto done;
    }
    for (uint32_t i = 0; i < d->n_rows; i++) {
        uint32_t k = d->label[i];
        uint32_t j = seen[k] < per ? seen[k] : (uint32_t)gsl_rng_uniform_int(r, seen[k] + 1);
        seen[k]++;
        if (j < per) {
            pick[k * per + j] = i;
        }
    }
    for (uint32_t k = 0; k < d->n_classes; k++) {
        double *c = m->centroid + (size_t)k * d->n_features;
        uint32_t n = seen[k] < per ? seen[k] : per;
        for (uint32_t f = 0; f < d->n_features; f++) {
            c[f] = 0.0; /* a class without rows keeps the overall mean, 0 */
        }
        for (uint32_t j = 0; j < n; j++) {
            const double *x = d->x + (size_t)pick[k * per + j] * d->n_features;
            for (uint32_t f = 0; f < d->n_features; f++) {
                c[f] += x[f] / n;
            }
        }
    }
    e = BASE_OK;

done:
    base_free(seen);
    base_free(pick);
    return e;
}

/* The global logit scale: mean over @rows of the sd of the centred scores. */
static void fit_scale(rlfeed_base_model *m, const uint32_t *rows, uint32_t n, double *tmp)
{
    uint32_t nk = m->d->n_classes;
    double sum_sd = 0.0;

    m->logit_scale = 1.0;
    for (uint32_t i = 0; i < n; i++) {
        double ss = 0.0;
        clean_logits(m, rows[i], tmp);
        for (uint32_t k = 0; k < nk; k++) {
            ss += tmp[k] * tmp[k];
        }
        sum_sd += sqrt(ss / nk);
    }
    if (sum_sd > 0.0) {
        m->logit_scale = sum_sd / n;
    }
}

/*
 * Mean over the rows of d/dt log softmax(t * v)[label] = v[label] - E_p[v],
 * and (through @out_soft_acc) the mean softmax probability of the label.
 * Deliberately not policy/softmax.h: it forms exp(t * (v - top)), not
 * exp(t * v - max), so it rounds differently, and the calibrated base model
 * (shared with `rlfeed sim`) must not move.
 */
static double nll_slope(const rlfeed_base_model *m, const uint32_t *rows, uint32_t n,
                        const double *v, double t, double *out_soft_acc)
{
    uint32_t nk = m->d->n_classes;
    double slope = 0.0;
    double soft = 0.0;

    for (uint32_t i = 0; i < n; i++) {
        const double *vi = v + (size_t)i * nk;
        uint32_t y = m->d->label[rows[i]];
        double top = vi[argmax_d(vi, nk)];
        double z = 0.0;
        double ev = 0.0;
        for (uint32_t k = 0; k < nk; k++) {
            double p = exp(t * (vi[k] - top)); /* <= 1: no overflow */
            z += p;
            ev += p * vi[k];
        }
        slope += vi[y] - ev / z;
        soft += exp(t * (vi[y] - top)) / z;
    }
    *out_soft_acc = soft / n;
    return slope / n;
}

/*
 * Temperature scaling (Guo et al. 2017): the multiplier t that maximises the
 * likelihood of the labels under softmax(t * v), so the base model's softmax
 * is a calibrated probability, as a served LLM's scores would be. The
 * log-likelihood is concave in t: bisect on the sign of its slope, in log t.
 */
static void fit_sharpness(rlfeed_base_model *m, const uint32_t *rows, uint32_t n, const double *v)
{
    double lo = log(1e-3);
    double hi = log(1e3);
    double soft = 0.0;

    for (int i = 0; i < BISECT_ITERS; i++) {
        double mid = 0.5 * (lo + hi);
        if (nll_slope(m, rows, n, v, exp(mid), &soft) > 0.0) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    m->sharpness = exp(0.5 * (lo + hi));
    (void)nll_slope(m, rows, n, v, m->sharpness, &soft); /* only the accuracy is wanted */
    m->calib_soft_acc = soft;
}

/* Find noise_scale by bisection on the calibration sample. */
static base_err calibrate(rlfeed_base_model *m, gsl_rng *r, double target_acc)
{
    const rlfeed_dataset *d = m->d;
    uint32_t nk = d->n_classes;
    uint32_t n = d->n_rows < RLFEED_BASE_CALIB_ROWS ? d->n_rows : RLFEED_BASE_CALIB_ROWS;
    base_err e = BASE_ENOMEM;
    uint32_t *rows = base_alloc_array(n, sizeof(*rows));
    double *clean = base_alloc_array((size_t)n * nk, sizeof(*clean));
    double *z = base_alloc_array((size_t)n * nk, sizeof(*z));
    double lo = 0.0;
    double hi = 1.0;

    if (rows == NULL || clean == NULL || z == NULL) {
        goto done;
    }
    for (uint32_t i = 0; i < n; i++) {
        rows[i] = n == d->n_rows ? i : (uint32_t)gsl_rng_uniform_int(r, d->n_rows);
    }
    fit_scale(m, rows, n, clean);
    for (uint32_t i = 0; i < n; i++) {
        clean_logits(m, rows[i], clean + (size_t)i * nk);
        row_noise(m, rows[i], z + (size_t)i * nk);
    }
    m->noise_scale = 0.0;
    if (base_accuracy(m, rows, n, clean, z, 0.0) > target_acc) {
        for (int i = 0; i < 30 && base_accuracy(m, rows, n, clean, z, hi) > target_acc; i++) {
            lo = hi;
            hi *= 2.0;
        }
        for (int i = 0; i < BISECT_ITERS; i++) {
            double mid = 0.5 * (lo + hi);
            if (base_accuracy(m, rows, n, clean, z, mid) > target_acc) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        m->noise_scale = 0.5 * (lo + hi);
    }
    m->calib_acc = base_accuracy(m, rows, n, clean, z, m->noise_scale);
    for (size_t i = 0; i < (size_t)n * nk; i++) {
        clean[i] += m->noise_scale * z[i]; /* clean now holds the unsharpened logits */
    }
    fit_sharpness(m, rows, n, clean);
    e = BASE_OK;

done:
    base_free(z);
    base_free(clean);
    base_free(rows);
    return e;
}

base_err rlfeed_base_model_new(const rlfeed_dataset *d, uint32_t dim, uint64_t seed,
                               double target_acc, rlfeed_base_model **out_m)
{
    base_err e = BASE_EINVAL;
    rlfeed_base_model *m = NULL;
    gsl_rng *r = NULL;

    if (d == NULL || out_m == NULL || dim == 0 || dim > RLFEED_DATASET_MAX_FEATURES ||
        !(target_acc > 0.0 && target_acc < 1.0)) {
        goto done;
    }
    e = BASE_ENOMEM;
    m = base_alloc_zero(1, sizeof(*m));
    r = rng_new(seed);
    if (m == NULL || r == NULL) {
        goto done;
    }
    m->d = d;
    m->dim = dim;
    m->seed = seed;
    m->w = base_alloc_array((size_t)dim * d->n_features, sizeof(*m->w));
    m->b = base_alloc_array(dim, sizeof(*m->b));
    m->centroid = base_alloc_array((size_t)d->n_classes * d->n_features, sizeof(*m->centroid));
    if (m->w == NULL || m->b == NULL || m->centroid == NULL) {
        goto done;
    }
    /* W: dim x n_features, N(0, 1/n_features), so W r has unit variance for standardised r. */
    for (size_t i = 0; i < (size_t)dim * d->n_features; i++) {
        m->w[i] = gsl_ran_gaussian(r, 1.0 / sqrt((double)d->n_features));
    }
    for (uint32_t j = 0; j < dim; j++) {
        m->b[j] = gsl_ran_gaussian(r, EMBED_BIAS_SD);
    }
    e = pick_centroids(m, r);
    if (e != BASE_OK) {
        goto done;
    }
    e = calibrate(m, r, target_acc);
    if (e != BASE_OK) {
        goto done;
    }
    *out_m = m;
    m = NULL;

done:
    rlfeed_base_model_free(m);
    if (r != NULL) {
        gsl_rng_free(r);
    }
    return e;
}

void rlfeed_base_model_free(rlfeed_base_model *m)
{
    if (m != NULL) {
        base_free(m->w);
        base_free(m->b);
        base_free(m->centroid);
        base_free(m);
    }
}

void rlfeed_base_model_embed(const rlfeed_base_model *m, uint32_t row, float *out_emb)
{
    uint32_t nf = m->d->n_features;
    const double *r = m->d->x + (size_t)row * nf;

    for (uint32_t j = 0; j < m->dim; j++) {
        const double *wj = m->w + (size_t)j * nf;
        double a = m->b[j];
        for (uint32_t f = 0; f < nf; f++) {
            a += wj[f] * r[f];
        }
        out_emb[j] = (float)tanh(a);
    }
}

void rlfeed_base_model_logits(const rlfeed_base_model *m, uint32_t row, float *out_logits)
{
    double clean[RLFEED_DATASET_MAX_CLASSES];
    double z[RLFEED_DATASET_MAX_CLASSES];

    clean_logits(m, row, clean);
    row_noise(m, row, z);
    for (uint32_t k = 0; k < m->d->n_classes; k++) {
        out_logits[k] = (float)(m->sharpness * (clean[k] + m->noise_scale * z[k]));
    }
}

double rlfeed_base_model_noise_scale(const rlfeed_base_model *m)
{
    return m->noise_scale;
}

double rlfeed_base_model_calib_accuracy(const rlfeed_base_model *m)
{
    return m->calib_acc;
}

double rlfeed_base_model_sharpness(const rlfeed_base_model *m)
{
    return m->sharpness;
}

double rlfeed_base_model_calib_softmax_accuracy(const rlfeed_base_model *m)
{
    return m->calib_soft_acc;
}
