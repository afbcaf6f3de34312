#ifndef BASE_BUF_H
#define BASE_BUF_H

/*
 * A growable byte buffer with a hard cap.
 *
 * Invariants: 1. len <= cap <= max_bytes. 2. data is NULL iff cap == 0.
 * Appending past max_bytes fails with BASE_ELIMIT and leaves the buffer as it
 * was. Not thread-safe.
 *
 *   base_buf b;
 *   base_buf_init(&b, 1 << 20);
 *   base_buf_append(&b, "abc", 3);
 *   base_buf_fini(&b);
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct base_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t max_bytes;
} base_buf;

void base_buf_init(base_buf *b, size_t max_bytes);
void base_buf_fini(base_buf *b);  /* accepts a zeroed or finished buffer */
void base_buf_reset(base_buf *b); /* len = 0, keeps memory */

/* Return: BASE_OK; BASE_ELIMIT past max_bytes; BASE_ENOMEM. */
base_err base_buf_append(base_buf *b, const void *p, size_t n);
base_err base_buf_reserve(base_buf *b, size_t extra);

/*
 * A text writer over a buffer that remembers its first error, so a writer of
 * many pieces checks once at the end (the /metrics and JSON writers).
 * base_writer_printf() formats one piece of at most 1023 bytes; a longer one
 * is BASE_ELIMIT (a bug of the caller, not input).
 */
typedef struct base_writer {
    base_buf *b;
    base_err err;
} base_writer;

void base_writer_put(base_writer *w, const char *s, size_t n);
__attribute__((format(printf, 2, 3))) void base_writer_printf(base_writer *w, const char *fmt, ...);

/*
 * base_buf_release() - hand the bytes to the caller (free with base_free()).
 * The buffer is empty afterwards. Returns NULL (and *out_len = 0) when empty.
 */
uint8_t *base_buf_release(base_buf *b, size_t *out_len);

/*
 * base_buf_read_file() - append the whole file at @path to @b (up to @b's max_bytes).
 * Return: true; false with the reason in @why (strerror, or "larger than N bytes").
 */
bool base_buf_read_file(base_buf *b, const char *path, char *why, size_t whylen);

#endif
