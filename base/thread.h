#ifndef BASE_THREAD_H
#define BASE_THREAD_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/*
 * base_thread_name() - name the calling thread (at most 15 bytes kept), so that
 * `top -H`, `ps -L`, perf and gdb tell rlfeedd's threads apart ("rlf-writer").
 * Best effort: a name the system refuses is left unset.
 */
void base_thread_name(const char *name);

/*
 * Timed waits that a step of the wall clock (NTP, a resumed VM) neither stretches nor cuts
 * short. base_cond_init_mono() makes a condition variable whose pthread_cond_timedwait()
 * deadlines are on CLOCK_MONOTONIC (returns pthread_cond_init()'s result), and
 * base_mono_deadline() is the time @ns from now on that clock.
 */
int base_cond_init_mono(pthread_cond_t *cv);
struct timespec base_mono_deadline(uint64_t ns);

#endif
