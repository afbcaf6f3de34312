#include "reward/rate.h"

#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"

typedef struct bucket {
    uint64_t key; /* hash of the user id; 0 = empty */
    double tokens;
    int64_t last_ms;
} bucket;

struct rwd_rate {
    double per_s;
    double burst;
    bucket b[]; /* [RWD_RATE_SETS * RWD_RATE_WAYS] */
};

rwd_rate *rwd_rate_new(double per_s, double burst)
{
    size_t n = (size_t)RWD_RATE_SETS * RWD_RATE_WAYS;
    rwd_rate *r = base_alloc_zero(1, sizeof(rwd_rate) + n * sizeof(bucket));
    if (r != NULL) {
        r->per_s = per_s;
        r->burst = burst;
    }
    return r;
}

void rwd_rate_free(rwd_rate *r)
{
    base_free(r);
}

static uint64_t user_key(const char *user)
{
    return base_hash64(user, strlen(user), 0x72617465) | 1u;
}

/* The first bucket of @key's set. */
static size_t set_start(uint64_t key)
{
    return (size_t)(key % RWD_RATE_SETS) * RWD_RATE_WAYS;
}

/* Tokens @key would have at @now (no state change); *out_i its bucket, or SIZE_MAX. */
static double tokens(const rwd_rate *r, uint64_t key, int64_t now, size_t *out_i)
{
    const bucket *set = &r->b[set_start(key)];
    *out_i = SIZE_MAX;
    for (int w = 0; w < RWD_RATE_WAYS; w++) {
        if (set[w].key == key) {
            *out_i = set_start(key) + (size_t)w;
            double dt = (double)(now - set[w].last_ms) / 1000.0;
            double t = set[w].tokens + (dt > 0 ? dt : 0) * r->per_s;
            return t < r->burst ? t : r->burst;
        }
    }
    return r->burst;
}

double rwd_rate_tokens(const rwd_rate *r, const char *user_id, int64_t now_ms)
{
    size_t i;
    return tokens(r, user_key(user_id), now_ms, &i);
}

void rwd_rate_take(rwd_rate *r, const char *user_id, int64_t now_ms)
{
    uint64_t key = user_key(user_id);
    size_t i;
    double t = tokens(r, key, now_ms, &i);
    bucket *b = NULL;
    if (i != SIZE_MAX) {
        b = &r->b[i];
    } else {
        bucket *set = &r->b[set_start(key)];
        b = &set[0];
        for (int w = 1; w < RWD_RATE_WAYS; w++) { /* an empty way, else the least recent */
            if (set[w].key == 0 || (b->key != 0 && set[w].last_ms < b->last_ms)) {
                b = &set[w];
            }
        }
        b->key = key;
    }
    b->tokens = t - 1.0;
    b->last_ms = now_ms;
}
