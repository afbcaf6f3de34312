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
