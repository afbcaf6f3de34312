#ifndef BASE_THREAD_H
#define BASE_THREAD_H

/*
 * base_thread_name() - name the calling thread (at most 15 bytes kept), so that
 * `top -H`, `ps -L`, perf and gdb tell rlfeedd's threads apart ("rlf-writer").
 * Best effort: a name the system refuses is left unset.
 */
void base_thread_name(const char *name);

#endif
