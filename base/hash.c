#include "base/hash.h"

#include <sys/random.h>

static uint64_t mix64(uint64_t z)
{
    /* splitmix64 finaliser (Steele, Lea, Flood 2014). */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t base_fnv1a64(const void *p, size_t n, uint64_t h)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL; /* the 64-bit FNV prime */
    }
    return h;
}

uint64_t base_hash64(const void *p, size_t n, uint64_t seed)
{
    return mix64(base_fnv1a64(p, n, BASE_FNV_OFFSET ^ mix64(seed)));
}

uint64_t base_splitmix64(uint64_t *state)
{
    *state += 0x9e3779b97f4a7c15ULL;
    return mix64(*state);
}

double base_u64_to_unit(uint64_t u)
{
    return (double)(u >> 11) * (1.0 / 9007199254740992.0);
}

void base_entropy_fill(void *p, size_t n)
{
    uint8_t *b = p;
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(b + got, n - got, 0);
        got += r > 0 ? (size_t)r : 0; /* r < 0: EINTR, a signal came first */
    }
}
