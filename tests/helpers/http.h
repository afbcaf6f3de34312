#ifndef TESTS_HELPERS_HTTP_H
#define TESTS_HELPERS_HTTP_H

/*
 * A tiny HTTP/1.1 GET over a raw socket, for tests: connect to
 * http://HOST:PORT (IPv4 literal or "localhost"), send one request with
 * "Connection: close", read the whole response within a deadline.
 *
 *   tst_http_response r;
 *   if (tst_http_get("http://127.0.0.1:9808", "/metrics", 5000, &r)) { ... r.status, r.body ... }
 *   tst_http_response_fini(&r);
 *
 * Bodies are read up to Content-Length, or to the end of the connection;
 * chunked encoding is not supported. Limit: TST_HTTP_MAX_BYTES per response.
 */

#include <stdbool.h>
#include <stddef.h>

#define TST_HTTP_MAX_BYTES (32u << 20)

typedef struct tst_http_response {
    int status;
    char content_type[128];
    char *body; /* NUL-terminated, owned */
    size_t body_len;
} tst_http_response;

/* GET @path from @base_url; false (and a TAP comment) on any failure. */
bool tst_http_get(const char *base_url, const char *path, int timeout_ms, tst_http_response *out);
/* The same, without a comment when nobody listens yet (polling a server that is starting). */
bool tst_http_try_get(const char *base_url, const char *path, int timeout_ms,
                      tst_http_response *out);
void tst_http_response_fini(tst_http_response *r); /* accepts a zeroed response */

/* @s with every byte outside [A-Za-z0-9-_.~] percent-encoded, into @out; false if too long. */
bool tst_http_query_escape(const char *s, char *out, size_t len);

#endif
