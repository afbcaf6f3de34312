#ifndef BASE_LOG_H
#define BASE_LOG_H

/*
 * The logging sink. Only service/ and the command-line programs log; lower
 * layers return error codes. Each event is one line on stderr, in one of two
 * formats (base_log_set_format()):
 *
 *   text (the default):
 *     2026-11-28T22:15:03.123Z info rlfeedd: listening on ipc:///tmp/x
 *   json, one object per line (docs/operations.md, "Logs"):
 *     {"ts":"2026-11-28T22:15:03.123Z","level":"info","msg":"listening on ...","pid":4242}
 *     with "policy":"faq" after "msg" when the event is about one policy
 *     (base_log_policy()).
 *
 * JSON strings are escaped (RFC 8259): '"' and '\\', control characters
 * (U+0000..U+001F, as \n, \t, ... or \u00XX) and DEL (\u007f); bytes that
 * are not valid UTF-8 (base/utf8.h) are replaced by U+FFFD, one per byte.
 * Messages longer than BASE_LOG_MSG_MAX bytes are cut.
 *
 * Messages below the threshold set with base_log_set_level() are dropped.
 * The level and format are process-wide (one stderr), set at start-up.
 * Thread-safe (one fprintf per line).
 */

#include <stddef.h>
#include <stdint.h>

enum base_log_level { BASE_LOG_DEBUG, BASE_LOG_INFO, BASE_LOG_WARN, BASE_LOG_ERROR };
enum base_log_format { BASE_LOG_TEXT, BASE_LOG_JSON };

#define BASE_LOG_MSG_MAX 1023 /* bytes of one formatted message */

void base_log_set_level(enum base_log_level level);
void base_log_set_format(enum base_log_format format);

void base_log(enum base_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* As base_log(), about one policy: JSON lines carry "policy" (@policy may be NULL: none). */
void base_log_policy(enum base_log_level level, const char *policy, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The name of @level: "debug", "info", "warn", "error". */
const char *base_log_level_name(enum base_log_level level);

/*
 * base_log_format_json() - the JSON line of one event, with its newline,
 * into @out (@size bytes, NUL-terminated). @ts_ms: milliseconds since the
 * epoch; @msg and @policy (may be NULL) need not be valid UTF-8. Pure.
 * Return: the line's length; if it is >= @size, the line did not fit and
 *         @out holds nothing usable (as snprintf).
 */
size_t base_log_format_json(char *out, size_t size, int64_t ts_ms, enum base_log_level level,
                            const char *msg, const char *policy, long pid);

#endif
