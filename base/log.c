#include "base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/utf8.h"

/* The threshold and format are process-wide by nature (one stderr); atomic. */
static atomic_int threshold = BASE_LOG_INFO;
static atomic_int format = BASE_LOG_TEXT;

void base_log_set_level(enum base_log_level level)
{
    atomic_store(&threshold, (int)level);
}

void base_log_set_format(enum base_log_format f)
{
    atomic_store(&format, (int)f);
}

const char *base_log_level_name(enum base_log_level level)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    return (unsigned)level < 4u ? names[level] : "error";
}

/* A bounded writer that counts what it could not write, as snprintf does. */
typedef struct out_buf {
    char *p;
    size_t size, len;
} out_buf;

static void put(out_buf *o, const char *s, size_t n)
{
    if (o->len < o->size) {
        size_t room = o->size - o->len;
        memcpy(o->p + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void put_str(out_buf *o, const char *s)
{
    put(o, s, strlen(s));
}

/* @s as a JSON string with its quotes: escaped, invalid UTF-8 as U+FFFD per byte. */
static void put_json_string(out_buf *o, const char *s)
{
    size_t n = strlen(s);
    put(o, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(o, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            const char *named = c == '\n'   ? "\\n"
                                : c == '\r' ? "\\r"
                                : c == '\t' ? "\\t"
                                : c == '\b' ? "\\b"
                                : c == '\f' ? "\\f"
                                            : NULL;
            if (named != NULL) {
                put_str(o, named);
            } else {
                (void)snprintf(esc, sizeof(esc), "\\u%04x", c);
                put_str(o, esc);
            }
            i++;
        } else if (c < 0x80) {
            put(o, s + i, 1);
            i++;
        } else {
            size_t k = base_utf8_char_len(s + i, n - i);
            if (k == 0) {
                put_str(o, "\xef\xbf\xbd"); /* U+FFFD for this one byte */
                i++;
            } else {
                put(o, s + i, k);
                i += k;
            }
        }
    }
    put(o, "\"", 1);
}

static void iso8601(int64_t ms, char *out, size_t size)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    gmtime_r(&sec, &tm);
    (void)snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

size_t base_log_format_json(char *out, size_t size, int64_t ts_ms, enum base_log_level level,
                            const char *msg, const char *policy, long pid)
{
    out_buf o = {out, size, 0};
    char ts[96], tail[40];
    iso8601(ts_ms, ts, sizeof(ts));
    put_str(&o, "{\"ts\":\"");
    put_str(&o, ts);
    put_str(&o, "\",\"level\":\"");
    put_str(&o, base_log_level_name(level));
    put_str(&o, "\",\"msg\":");
    put_json_string(&o, msg);
    if (policy != NULL) {
        put_str(&o, ",\"policy\":");
        put_json_string(&o, policy);
    }
    (void)snprintf(tail, sizeof(tail), ",\"pid\":%ld}\n", pid);
    put_str(&o, tail);
    if (size > 0) {
        out[o.len < size ? o.len : size - 1] = '\0';
    }
    return o.len;
}

static void emit(enum base_log_level level, const char *policy, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void emit(enum base_log_level level, const char *policy, const char *fmt, va_list ap)
{
    if ((int)level < atomic_load(&threshold)) {
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000L;
    char msg[BASE_LOG_MSG_MAX + 1];
    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0) {
        return;
    }
    if (atomic_load(&format) == BASE_LOG_JSON) {
        /* Each byte escapes to at most 6 (\u00XX): room for a whole cut message. */
        char line[6 * (BASE_LOG_MSG_MAX + 1) + 6 * (64 + 1) + 128];
        size_t n = base_log_format_json(line, sizeof(line), ms, level, msg, policy, (long)getpid());
        if (n >= sizeof(line)) { /* only a policy name far past BASE_NAME_MAX does that */
            n = base_log_format_json(line, sizeof(line), ms, level, msg, NULL, (long)getpid());
        }
        if (n < sizeof(line)) {
            fputs(line, stderr);
        }
        return;
    }
    char when[96];
    iso8601(ms, when, sizeof(when));
    fprintf(stderr, "%s %s %s\n", when, base_log_level_name(level), msg);
}

void base_log(enum base_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(level, NULL, fmt, ap);
    va_end(ap);
}

void base_log_policy(enum base_log_level level, const char *policy, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(level, policy, fmt, ap);
    va_end(ap);
}
