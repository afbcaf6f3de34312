#ifndef TESTS_HELPERS_HTTP_H
#define TESTS_HELPERS_HTTP_H

/*
 * A tiny HTTP/1.1 client over a raw socket, for tests: connect to
 * http://HOST:PORT (IPv4 literal or "localhost"), send one request (GET, or
 * any method with a body and its Content-Length) with "Connection: close",
 * read the whole response within a deadline.
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
    char allow[64];     /* the Allow header, "" if none */
    char location[128]; /* the Location header, "" if none */
    char *body;         /* NUL-terminated, owned */
    size_t body_len;
} tst_http_response;

/* GET @path from @base_url; false (and a TAP comment) on any failure. */
bool tst_http_get(const char *base_url, const char *path, int timeout_ms, tst_http_response *out);
/* The same, without a comment when nobody listens yet (polling a server that is starting). */
bool tst_http_try_get(const char *base_url, const char *path, int timeout_ms,
                      tst_http_response *out);
/* POST the JSON text @json (Content-Type: application/json) to @path. */
bool tst_http_post(const char *base_url, const char *path, const char *json, int timeout_ms,
                   tst_http_response *out);
/*
 * Any request: @method @path, extra header lines @headers (each ending "\r\n"; NULL for
 * none), and with @body (NULL: no body, no Content-Length) of @body_len bytes.
 */
bool tst_http_request(const char *base_url, const char *method, const char *path,
                      const char *headers, const char *body, size_t body_len, int timeout_ms,
                      tst_http_response *out);
void tst_http_response_fini(tst_http_response *r); /* accepts a zeroed response */

/* A TCP connection to @base_url's host and port, for hand-made requests; -1 on failure. */
int tst_http_connect(const char *base_url);

/* @s with every byte outside [A-Za-z0-9-_.~] percent-encoded, into @out; false if too long. */
bool tst_http_query_escape(const char *s, char *out, size_t len);

#endif
