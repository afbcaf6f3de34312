#include "bench/serve_lat.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

void bench_lat_add(bench_lat *l, uint64_t ns)
{
    if (l->n == l->cap && l->cap < BENCH_LAT_MAX) {
        size_t cap = l->cap == 0 ? 4096 : l->cap * 2;
        uint64_t *g = base_realloc_array(l->ns, cap, sizeof(*g));
        if (g != NULL) {
            l->ns = g;
            l->cap = cap;
        }
    }
    if (l->n < l->cap) {
        l->ns[l->n++] = ns;
    }
}

void bench_lat_fini(bench_lat *l)
{
    base_free(l->ns);
    memset(l, 0, sizeof(*l));
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

void bench_sort_ns(uint64_t *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_u64);
}

double bench_quantile_ms(const uint64_t *v, size_t n, double q)
{
    if (n == 0) {
        return 0.0;
    }
    size_t k = (size_t)(q * (double)n + 0.999999);
    k = k == 0 ? 1 : k > n ? n : k;
    return (double)v[k - 1] / 1e6;
}

base_err bench_lat_summarise(const bench_lat *lats, size_t n_lats, bench_result *out)
{
    size_t n = 0;
    for (size_t i = 0; i < n_lats; i++) {
        n += lats[i].n;
    }
    uint64_t *all = base_alloc_array(n > 0 ? n : 1, sizeof(*all));
    if (all == NULL) {
        return BASE_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n_lats; i++) {
        if (lats[i].n > 0) {
            memcpy(all + k, lats[i].ns, lats[i].n * sizeof(*all));
            k += lats[i].n;
        }
    }
    bench_sort_ns(all, k);
    out->p50_ms = bench_quantile_ms(all, k, 0.50);
    out->p99_ms = bench_quantile_ms(all, k, 0.99);
    out->p999_ms = bench_quantile_ms(all, k, 0.999);
    base_free(all);
    return BASE_OK;
}
