#ifndef BASE_LOG_H
#define BASE_LOG_H

/*
 * The logging sink. Only service/ and the command-line programs log; lower
 * layers return error codes. Lines go to stderr as
 *   2026-11-28T22:15:03.123Z info rlfeedd: listening on ipc:///tmp/x
 * Messages below the threshold set with base_log_set_level() are dropped.
 * Thread-safe (one fprintf per line).
 */

enum base_log_level { BASE_LOG_DEBUG, BASE_LOG_INFO, BASE_LOG_WARN, BASE_LOG_ERROR };

void base_log_set_level(enum base_log_level level);
void base_log(enum base_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
