#include "service/observe.h"

#include <math.h>
#include <string.h>

void svc_lat_init(svc_lat *l)
{
    for (uint32_t op = 0; op < SVC_LAT_OPS; op++) {
        for (uint32_t k = 0; k <= SVC_LAT_BUCKETS; k++) {
            atomic_init(&l->bucket[op][k], 0);
        }
        atomic_init(&l->sum_ns[op], 0);
    }
}

void svc_lat_observe(svc_lat *l, uint32_t op, uint64_t ns)
{
    /* SVC_LAT_BOUNDS_S in ns, so the hot path compares integers. */
    static const uint64_t bounds_ns[SVC_LAT_BUCKETS] = {
        50000,    100000,   250000,   500000,    1000000,   2500000,   5000000,
        10000000, 25000000, 50000000, 100000000, 250000000, 500000000, 1000000000,
    };
    if (op >= SVC_LAT_OPS) {
        return;
    }
    uint32_t k = 0;
    while (k < SVC_LAT_BUCKETS && ns > bounds_ns[k]) {
        k++;
    }
    atomic_fetch_add_explicit(&l->bucket[op][k], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&l->sum_ns[op], ns, memory_order_relaxed);
}

void svc_lat_read(const svc_lat *l, svc_lat_reading *out)
{
    for (uint32_t op = 0; op < SVC_LAT_OPS; op++) {
        out->count[op] = 0;
        for (uint32_t k = 0; k <= SVC_LAT_BUCKETS; k++) {
            out->bucket[op][k] = atomic_load_explicit(&l->bucket[op][k], memory_order_relaxed);
            out->count[op] += out->bucket[op][k];
        }
        out->sum_s[op] = (double)atomic_load_explicit(&l->sum_ns[op], memory_order_relaxed) * 1e-9;
    }
}

double svc_lat_quantile(const uint64_t bucket[SVC_LAT_BUCKETS + 1], double q)
{
    static const double bounds[SVC_LAT_BUCKETS] = SVC_LAT_BOUNDS_S;
    uint64_t total = 0;
    for (uint32_t k = 0; k <= SVC_LAT_BUCKETS; k++) {
        total += bucket[k];
    }
    if (total == 0) {
        return NAN;
    }
    double rank = q * (double)total;
    uint64_t below = 0; /* requests in the buckets before k */
    for (uint32_t k = 0; k < SVC_LAT_BUCKETS; k++) {
        if (bucket[k] > 0 && (double)(below + bucket[k]) >= rank) {
            double lo = k == 0 ? 0.0 : bounds[k - 1];
            double frac = (rank - (double)below) / (double)bucket[k];
            return lo + (bounds[k] - lo) * (frac < 0.0 ? 0.0 : frac);
        }
        below += bucket[k];
    }
    return bounds[SVC_LAT_BUCKETS - 1];
}

void svc_ope_init(svc_ope_window *w)
{
    memset(w->b, 0, sizeof(w->b));
    pthread_mutex_init(&w->lk, NULL);
}

void svc_ope_fini(svc_ope_window *w)
{
    if (w != NULL) {
        pthread_mutex_destroy(&w->lk);
    }
}

/* Seconds are counted from 1 so that sec = 0 marks a bucket never used. */
static uint64_t second_of(uint64_t now_ns)
{
    return now_ns / 1000000000u + 1;
}

void svc_ope_add(svc_ope_window *w, uint64_t now_ns, double weight, double p_logged)
{
    uint64_t s = second_of(now_ns);
    pthread_mutex_lock(&w->lk);
    svc_ope_bucket *b = &w->b[s % SVC_OPE_WINDOW_S];
    if (b->sec != s) {
        b->sec = s;
        b->n = 0;
        b->sum_w = 0.0;
        b->sum_w2 = 0.0;
        b->min_p = 1.0;
    }
    b->n++;
    b->sum_w += weight;
    b->sum_w2 += weight * weight;
    if (p_logged < b->min_p) {
        b->min_p = p_logged;
    }
    pthread_mutex_unlock(&w->lk);
}

void svc_ope_read(svc_ope_window *w, uint64_t now_ns, svc_ope_reading *out)
{
    uint64_t s = second_of(now_ns);
    uint64_t n = 0;
    double sw = 0.0, sw2 = 0.0, min_p = 1.0;
    pthread_mutex_lock(&w->lk);
    for (uint32_t i = 0; i < SVC_OPE_WINDOW_S; i++) {
        const svc_ope_bucket *b = &w->b[i];
        if (b->sec != 0 && b->sec + SVC_OPE_WINDOW_S > s && b->sec <= s) {
            n += b->n;
            sw += b->sum_w;
            sw2 += b->sum_w2;
            if (b->min_p < min_p) {
                min_p = b->min_p;
            }
        }
    }
    pthread_mutex_unlock(&w->lk);
    out->n = n;
    out->ess = sw2 > 0.0 ? sw * sw / sw2 : 0.0;
    out->min_propensity = n > 0 ? min_p : 0.0;
}
