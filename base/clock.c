#include "base/clock.h"

#include <stdint.h>
#include <time.h>

void base_clock_init_system(base_clock *c)
{
    c->manual = 0;
    atomic_store(&c->manual_ms, 0);
}

void base_clock_init_manual(base_clock *c, int64_t start_ms)
{
    c->manual = 1;
    atomic_store(&c->manual_ms, start_ms);
}

int64_t base_clock_now_ms(const base_clock *c)
{
    if (c->manual) {
        return atomic_load(&c->manual_ms);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool base_clock_set(base_clock *c, int64_t ms)
{
    if (ms > BASE_CLOCK_MAX_MS) {
        return !c->manual;
    }
    if (c->manual) {
        atomic_store(&c->manual_ms, ms);
    }
    return true;
}

bool base_clock_advance(base_clock *c, int64_t ms)
{
    if (!c->manual) {
        return true;
    }
    int64_t now = atomic_load(&c->manual_ms);
    do {
        if (ms > BASE_CLOCK_MAX_MS - now) {
            return false;
        }
    } while (!atomic_compare_exchange_weak(&c->manual_ms, &now, now + ms));
    return true;
}

uint64_t base_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t base_thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
