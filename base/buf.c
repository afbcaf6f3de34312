#include "base/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"

void base_buf_init(base_buf *b, size_t max_bytes)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max_bytes = max_bytes;
}

void base_buf_fini(base_buf *b)
{
    if (b == NULL) {
        return;
    }
    base_free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void base_buf_reset(base_buf *b)
{
    b->len = 0;
}

base_err base_buf_reserve(base_buf *b, size_t extra)
{
    if (extra > b->max_bytes || b->len > b->max_bytes - extra) {
        return BASE_ELIMIT;
    }
    size_t need = b->len + extra;
    if (need <= b->cap) {
        return BASE_OK;
    }
    size_t ncap = b->cap < 256 ? 256 : b->cap;
    while (ncap < need) {
        ncap = ncap > b->max_bytes / 2 ? b->max_bytes : ncap * 2;
    }
    uint8_t *p = base_realloc_array(b->data, ncap, 1);
    if (p == NULL) {
        return BASE_ENOMEM;
    }
    b->data = p;
    b->cap = ncap;
    return BASE_OK;
}

base_err base_buf_append(base_buf *b, const void *p, size_t n)
{
    base_err e = base_buf_reserve(b, n);
    if (e != BASE_OK) {
        return e;
    }
    if (n > 0) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    return BASE_OK;
}

uint8_t *base_buf_release(base_buf *b, size_t *out_len)
{
    uint8_t *p = b->data;
    *out_len = b->len;
    if (b->len == 0) {
        base_free(p);
        p = NULL;
    }
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

void base_writer_put(base_writer *w, const char *s, size_t n)
{
    if (w->err == BASE_OK) {
        w->err = base_buf_append(w->b, s, n);
    }
}

void base_writer_printf(base_writer *w, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        if (w->err == BASE_OK) {
            w->err = BASE_ELIMIT;
        }
        return;
    }
    base_writer_put(w, line, (size_t)n);
}

bool base_buf_read_file(base_buf *b, const char *path, char *why, size_t whylen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return false;
    }
    bool ok = true;
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            snprintf(why, whylen, "%s", strerror(errno));
            ok = false;
            break;
        }
        if (n == 0) {
            break;
        }
        if (base_buf_append(b, chunk, (size_t)n) != BASE_OK) {
            snprintf(why, whylen, "larger than %zu bytes", b->max_bytes);
            ok = false;
            break;
        }
    }
    (void)close(fd); /* read-only: nothing to lose */
    return ok;
}
