#include "eval/interval.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_sort_double.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"

/*
 * Sums of the centred columns u over some rows, and of the products that
 * some statistic's variance needs: every pair within {WR0, WR1, W0, W1}
 * and within {DR0, DR1}. No statistic mixes the two groups.
 */
typedef struct moments {
    double s1[EV_T_N];
    double ww[4][4]; /* u_a u_b, a <= b < EV_T_DR0 (upper triangle) */
    double dd[2][2]; /* u_a u_b, EV_T_DR0 <= a <= b (upper triangle) */
} moments;

/* The sum of u_a u_b (any order); 0 across the groups, where no statistic looks. */
static double cross(const moments *m, int a, int b)
{
    int lo = a < b ? a : b, hi = a < b ? b : a;
    if (hi < EV_T_DR0) {
        return m->ww[lo][hi];
    }
    if (lo >= EV_T_DR0) {
        return m->dd[lo - EV_T_DR0][hi - EV_T_DR0];
    }
    return 0.0;
}

static void add_row(moments *m, const double *u)
{
    for (int a = 0; a < EV_T_N; a++) {
        m->s1[a] += u[a];
    }
    for (int a = 0; a < EV_T_DR0; a++) {
        for (int b = a; b < EV_T_DR0; b++) {
            m->ww[a][b] += u[a] * u[b];
        }
    }
    m->dd[0][0] += u[EV_T_DR0] * u[EV_T_DR0];
    m->dd[0][1] += u[EV_T_DR0] * u[EV_T_DR1];
    m->dd[1][1] += u[EV_T_DR1] * u[EV_T_DR1];
}

/*
 * @n indices uniform below @n (<= EV_MAX_SAMPLES < 2^32) into @idx, exact:
 * Lemire's multiply-shift with rejection ("Fast random integer generation
 * in an interval", 2019) on mt19937's 32-bit outputs, each split into two
 * 16-bit draws when n <= 2^16. Half the generator calls and no division
 * per draw, unlike gsl_rng_uniform_int(): the generator is most of the
 * bootstrap's cost.
 */
static void pick(gsl_rng *rng, uint32_t n, uint32_t *idx)
{
    size_t k = 0;
    if (n <= UINT32_C(1) << 16) {
        uint32_t thresh = (UINT32_C(1) << 16) % n;
        while (k < n) {
            uint32_t x = (uint32_t)gsl_rng_get(rng);
            uint32_t m0 = (x & 0xffffu) * n, m1 = (x >> 16) * n;
            if ((m0 & 0xffffu) >= thresh) {
                idx[k++] = m0 >> 16;
            }
            if ((m1 & 0xffffu) >= thresh && k < n) {
                idx[k++] = m1 >> 16;
            }
        }
    } else {
        uint32_t thresh = (uint32_t)((UINT64_C(1) << 32) % n);
        while (k < n) {
            uint64_t m = (uint64_t)(uint32_t)gsl_rng_get(rng) * n;
            if ((uint32_t)m >= thresh) {
                idx[k++] = (uint32_t)(m >> 32);
            }
        }
    }
}

/*
 * The moments of the @n rows of @u listed in @idx. The accumulators are
 * locals and the loop calls nothing, so they can live in registers: with
 * pick() this loop is the whole cost of the bootstrap.
 */
static void draw(const double *u, const uint32_t *idx, size_t n, moments *out)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0;
    double p00 = 0, p01 = 0, p02 = 0, p03 = 0, p11 = 0, p12 = 0, p13 = 0, p22 = 0, p23 = 0, p33 = 0,
           q00 = 0, q01 = 0, q11 = 0;
    for (size_t t = 0; t < n; t++) {
        const double *r = u + (size_t)idx[t] * EV_T_N;
        double a = r[0], b = r[1], c = r[2], d = r[3], e = r[4], f = r[5];
        s0 += a;
        s1 += b;
        s2 += c;
        s3 += d;
        s4 += e;
        s5 += f;
        p00 += a * a;
        p01 += a * b;
        p02 += a * c;
        p03 += a * d;
        p11 += b * b;
        p12 += b * c;
        p13 += b * d;
        p22 += c * c;
        p23 += c * d;
        p33 += d * d;
        q00 += e * e;
        q01 += e * f;
        q11 += f * f;
    }
    memset(out, 0, sizeof(*out));
    double sums[EV_T_N] = {s0, s1, s2, s3, s4, s5};
    memcpy(out->s1, sums, sizeof(sums));
    out->ww[0][0] = p00;
    out->ww[0][1] = p01;
    out->ww[0][2] = p02;
    out->ww[0][3] = p03;
    out->ww[1][1] = p11;
    out->ww[1][2] = p12;
    out->ww[1][3] = p13;
    out->ww[2][2] = p22;
    out->ww[2][3] = p23;
    out->ww[3][3] = p33;
    out->dd[0][0] = q00;
    out->dd[0][1] = q01;
    out->dd[1][1] = q11;
}

/*
 * The nine statistics of a (re)sample of @n rows with moments @m, of the
 * table centred at @c, and their standard errors sqrt(Var(L . u) / (n - 1))
 * (Var with divisor n: the unbiased variance over n). A SNIPS statistic
 * whose weights sum to 0 is 0 with @ok false and se 0.
 */
static void evaluate(const moments *m, const double c[EV_T_N], double n, double stat[EV_N_STATS],
                     double se[EV_N_STATS], bool ok[EV_N_STATS])
{
    double sums[EV_T_N];
    double l[EV_N_STATS][EV_T_N]; /* influence coefficients */
    memset(l, 0, sizeof(l));
    for (int a = 0; a < EV_T_N; a++) {
        sums[a] = m->s1[a] + n * c[a];
    }
    for (int p = 0; p < 2; p++) {
        int k = EV_N_ESTIMATORS * p;
        double sw = sums[EV_T_W0 + p];
        stat[k + EV_IPS] = sums[EV_T_WR0 + p] / n;
        l[k + EV_IPS][EV_T_WR0 + p] = 1.0;
        ok[k + EV_IPS] = true;
        /* No weight at all: no evidence either way; 0, like IPS. */
        ok[k + EV_SNIPS] = sw > 0.0;
        stat[k + EV_SNIPS] = 0.0;
        if (sw > 0.0) {
            /* psi = w (r - V) / mean(w) (Hesterberg 1995; Swaminathan and Joachims 2015). */
            double v = sums[EV_T_WR0 + p] / sw, mw = sw / n;
            stat[k + EV_SNIPS] = v;
            l[k + EV_SNIPS][EV_T_WR0 + p] = 1.0 / mw;
            l[k + EV_SNIPS][EV_T_W0 + p] = -v / mw;
        }
        stat[k + EV_DR] = sums[EV_T_DR0 + p] / n;
        l[k + EV_DR][EV_T_DR0 + p] = 1.0;
        ok[k + EV_DR] = true;
    }
    for (int e = 0; e < EV_N_ESTIMATORS; e++) {
        int k = EV_STAT_DIFF + e;
        stat[k] = stat[e] - stat[EV_N_ESTIMATORS + e];
        ok[k] = ok[e] && ok[EV_N_ESTIMATORS + e];
        for (int a = 0; a < EV_T_N; a++) {
            l[k][a] = l[e][a] - l[EV_N_ESTIMATORS + e][a];
        }
    }
    for (int k = 0; k < EV_N_STATS; k++) {
        double q = 0.0, lin = 0.0;
        for (int a = 0; a < EV_T_N; a++) {
            lin += l[k][a] * m->s1[a];
            q += l[k][a] * l[k][a] * cross(m, a, a);
            for (int b = a + 1; b < EV_T_N; b++) {
                q += 2.0 * l[k][a] * l[k][b] * cross(m, a, b);
            }
        }
        double var = q / n - (lin / n) * (lin / n);
        se[k] = ok[k] && n > 1.0 ? sqrt(fmax(var, 0.0) / (n - 1.0)) : 0.0;
    }
}

/*
 * Quantile @f of the @m sorted values @x: the (m + 1) f-th smallest,
 * interpolated (Hyndman and Fan type 6), the usual bootstrap endpoint
 * (Davison and Hinkley 1997, sec. 5.2). The common type 7 pulls extreme
 * quantiles inwards: with m = 300 its 2.5% point of normal replicates
 * sits at about -1.93 sd instead of -1.96, enough to lose half a point of
 * coverage.
 */
static double quantile(const double *x, size_t m, double f)
{
    double h = (double)(m + 1) * f - 1.0; /* 0-based position */
    if (h <= 0.0) {
        return x[0];
    }
    if (h >= (double)(m - 1)) {
        return x[m - 1];
    }
    size_t i = (size_t)floor(h);
    double d = h - (double)i;
    if (d == 0.0 || x[i] == x[i + 1]) {
        return x[i];
    }
    if (!isfinite(x[i]) || !isfinite(x[i + 1])) {
        return d < 0.5 ? x[i] : x[i + 1]; /* no inf - inf */
    }
    return x[i] + d * (x[i + 1] - x[i]);
}

/* The bootstrap replicates' statistics into @rep and studentized statistics into @tst. */
static void resample(const double *u, size_t n, const double c[EV_T_N], uint32_t n_boot,
                     gsl_rng *rng, uint32_t *idx, const double est[EV_N_STATS], double *rep,
                     double *tst)
{
    for (uint32_t b = 0; b < n_boot; b++) {
        moments m;
        pick(rng, (uint32_t)n, idx);
        draw(u, idx, n, &m);
        double stat[EV_N_STATS], se[EV_N_STATS];
        bool ok[EV_N_STATS];
        evaluate(&m, c, (double)n, stat, se, ok);
        for (int k = 0; k < EV_N_STATS; k++) {
            double d = stat[k] - est[k];
            rep[(size_t)k * n_boot + b] = stat[k];
            /* A replicate without spread says nothing about scale: +-inf, or 0 on the spot. */
            tst[(size_t)k * n_boot + b] = se[k] > 0.0 ? d / se[k]
                                          : d > 0.0   ? INFINITY
                                          : d < 0.0   ? -INFINITY
                                                      : 0.0;
        }
    }
}

base_err ev_intervals(double *terms, size_t n, ev_interval_kind kind, double confidence,
                      uint32_t n_boot, uint64_t seed, ev_interval out[EV_N_STATS])
{
    base_err e = BASE_OK;
    gsl_rng *rng = NULL;
    double *rep = NULL;   /* [EV_N_STATS x n_boot]: replicate b of statistic k at k * n_boot + b */
    double *tst = NULL;   /* the same, studentized */
    uint32_t *idx = NULL; /* [n] one resample's rows */
    double c[EV_T_N] = {0}, est[EV_N_STATS], se[EV_N_STATS];
    bool ok[EV_N_STATS];
    ev_interval res[EV_N_STATS];
    moments m;

    /* Centre: Var(L . u) from sums of products loses nothing to a large mean. */
    for (size_t i = 0; i < n; i++) {
        for (int a = 0; a < EV_T_N; a++) {
            c[a] += terms[i * EV_T_N + a];
        }
    }
    for (int a = 0; a < EV_T_N; a++) {
        c[a] /= (double)n;
    }
    memset(&m, 0, sizeof(m));
    for (size_t i = 0; i < n; i++) {
        for (int a = 0; a < EV_T_N; a++) {
            terms[i * EV_T_N + a] -= c[a];
        }
        add_row(&m, terms + i * EV_T_N);
    }
    evaluate(&m, c, (double)n, est, se, ok);
    for (int k = 0; k < EV_N_STATS; k++) {
        res[k].est = est[k];
        res[k].se = se[k];
        res[k].lo = est[k];
        res[k].hi = est[k];
    }
    double alpha = 1.0 - confidence;
    if (kind == EV_NORMAL && n >= 2) {
        double tq = gsl_cdf_tdist_Pinv(1.0 - alpha / 2.0, (double)(n - 1));
        for (int k = 0; k < EV_N_STATS; k++) {
            res[k].lo = est[k] - tq * se[k];
            res[k].hi = est[k] + tq * se[k];
        }
    } else if (kind != EV_NORMAL && n >= 2) {
        rep = base_alloc_array((size_t)EV_N_STATS * n_boot, sizeof(double));
        tst = base_alloc_array((size_t)EV_N_STATS * n_boot, sizeof(double));
        idx = base_alloc_array(n, sizeof(uint32_t));
        rng = gsl_rng_alloc(gsl_rng_mt19937);
        if (rep == NULL || tst == NULL || idx == NULL || rng == NULL) {
            e = BASE_ENOMEM;
            goto fail;
        }
        /* mt19937 keeps only 32 bits of its seed: mix all 64 into them. */
        uint64_t st = seed;
        gsl_rng_set(rng, (unsigned long)(base_splitmix64(&st) >> 32));
        resample(terms, n, c, n_boot, rng, idx, est, rep, tst);
        for (int k = 0; k < EV_N_STATS; k++) {
            double *r = rep + (size_t)k * n_boot, *t = tst + (size_t)k * n_boot;
            if (kind == EV_PERCENTILE) {
                gsl_sort(r, 1, n_boot);
                res[k].lo = quantile(r, n_boot, alpha / 2.0);
                res[k].hi = quantile(r, n_boot, 1.0 - alpha / 2.0);
            } else if (se[k] > 0.0) {
                /* Bootstrap-t (Efron and Tibshirani 1993, ch. 12): est - t*_(1-a/2) se, ... */
                gsl_sort(t, 1, n_boot);
                res[k].lo = est[k] - quantile(t, n_boot, 1.0 - alpha / 2.0) * se[k];
                res[k].hi = est[k] - quantile(t, n_boot, alpha / 2.0) * se[k];
            }
        }
    }
    for (int k = 0; k < EV_N_STATS; k++) {
        if (n < 2 || !ok[k]) {
            /* One sample, or SNIPS without weight: nothing bounds the value. */
            res[k].lo = -INFINITY;
            res[k].hi = INFINITY;
            res[k].se = INFINITY;
        }
    }
    memcpy(out, res, sizeof(res));
fail:
    gsl_rng_free(rng);
    base_free(idx);
    base_free(tst);
    base_free(rep);
    return e;
}
