#ifndef BASE_CLOCK_H
#define BASE_CLOCK_H

/*
 * Injectable clocks. Every piece of logic that depends on wall time (join
 * windows, checkpoints, rate limits) reads it through a base_clock so tests
 * can run day-long windows in milliseconds.
 *
 * A system clock (base_clock_init_system()) reads CLOCK_REALTIME in
 * milliseconds since the epoch. A manual clock (base_clock_init_manual())
 * returns whatever base_clock_set() or base_clock_advance() last made it; it
 * is safe to move from one thread while others read (atomic).
 * base_mono_ns() is CLOCK_MONOTONIC in nanoseconds: for timeouts, deadlines
 * and latency measurements, never for anything that is logged or replayed.
 * base_thread_cpu_ns() is the calling thread's CPU time (benchmarks).
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct base_clock {
    int manual;                /* 0: system clock; 1: manual */
    _Atomic int64_t manual_ms; /* the manual clock's value */
} base_clock;

void base_clock_init_system(base_clock *c);
void base_clock_init_manual(base_clock *c, int64_t start_ms);
int64_t base_clock_now_ms(const base_clock *c);
/*
 * The latest time a manual clock may show: 9999-12-31T23:59:59.999Z. Times are added to
 * (a window of up to 400 days, then a memory of as long): a bound this far below INT64_MAX
 * keeps every such sum in range.
 */
#define BASE_CLOCK_MAX_MS 253402300799999LL

/*
 * Manual clocks only (else ignored, returning true): set it to @ms >= 0. Return: false,
 * and the clock unchanged, past BASE_CLOCK_MAX_MS.
 */
bool base_clock_set(base_clock *c, int64_t ms);
/*
 * Manual clocks only (else ignored): move it on by @ms >= 0. Return: false, and the clock
 * unchanged, when that would pass BASE_CLOCK_MAX_MS.
 */
bool base_clock_advance(base_clock *c, int64_t ms);

uint64_t base_mono_ns(void);
uint64_t base_thread_cpu_ns(void);

#endif
