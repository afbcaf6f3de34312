#define _GNU_SOURCE /* pthread_setname_np() */
#include "base/thread.h"

#include <pthread.h>
#include <string.h>

void base_thread_name(const char *name)
{
    char cut[16];
    size_t n = strlen(name);
    if (n > sizeof(cut) - 1) {
        n = sizeof(cut) - 1;
    }
    memcpy(cut, name, n);
    cut[n] = '\0';
    (void)pthread_setname_np(pthread_self(), cut);
}

int base_cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc != 0) {
        return rc;
    }
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0) {
        rc = pthread_cond_init(cv, &ca);
    }
    (void)pthread_condattr_destroy(&ca);
    return rc;
}

struct timespec base_mono_deadline(uint64_t ns)
{
    struct timespec t;
    (void)clock_gettime(CLOCK_MONOTONIC, &t); /* cannot fail with this clock */
    ns += (uint64_t)t.tv_nsec;
    t.tv_sec += (time_t)(ns / 1000000000u);
    t.tv_nsec = (long)(ns % 1000000000u);
    return t;
}
