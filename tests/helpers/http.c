#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proc.h"

/* "http://HOST:PORT[/...]" into an IPv4 address; false if it is not one. */
static bool parse_base(const char *url, struct sockaddr_in *out, char *host, size_t hostlen)
{
    const char *p = url;
    if (strncmp(p, "http://", 7) != 0) {
        return false;
    }
    p += 7;
    const char *colon = strchr(p, ':');
    if (colon == NULL || (size_t)(colon - p) >= hostlen) {
        return false;
    }
    memcpy(host, p, (size_t)(colon - p));
    host[colon - p] = '\0';
    char *end = NULL;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || (*end != '\0' && *end != '/') || port <= 0 ||
        port > 65535) {
        return false;
    }
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)port);
    const char *ip = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
    return inet_pton(AF_INET, ip, &out->sin_addr) == 1;
}

/* Wait for @fd to be ready for @events until @deadline_ms. */
static bool wait_fd(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - tst_now_ms();
        if (left <= 0) {
            return false;
        }
        struct pollfd pfd = {fd, events, 0};
        int rv = poll(&pfd, 1, (int)left);
        if (rv > 0) {
            return true;
        }
        if (rv < 0 && errno != EINTR) {
            return false;
        }
    }
}

/* The value of the header @line (@n bytes, its name @name_len of them) into @out, cut to fit. */
static void header_value(const char *line, size_t n, size_t name_len, char *out, size_t size)
{
    const char *v = line + name_len;
    while (*v == ' ') {
        v++;
    }
    size_t vn = n - (size_t)(v - line);
    if (vn >= size) {
        vn = size - 1;
    }
    memcpy(out, v, vn);
    out[vn] = '\0';
}

/* Parse the head in @buf[0, head_len); sets status, content type, content length (-1: none). */
static bool parse_head(const char *buf, tst_http_response *out, long *out_clen)
{
    int major = 0, minor = 0, status = 0;
    if (sscanf(buf, "HTTP/%d.%d %d", &major, &minor, &status) != 3) {
        return false;
    }
    out->status = status;
    *out_clen = -1;
    const char *line = strstr(buf, "\r\n");
    while (line != NULL && strncmp(line, "\r\n\r\n", 4) != 0) {
        line += 2;
        const char *eol = strstr(line, "\r\n");
        size_t n = eol != NULL ? (size_t)(eol - line) : strlen(line);
        if (n > 15 && strncasecmp(line, "Content-Length:", 15) == 0) {
            *out_clen = strtol(line + 15, NULL, 10);
        } else if (n > 13 && strncasecmp(line, "Content-Type:", 13) == 0) {
            header_value(line, n, 13, out->content_type, sizeof(out->content_type));
        } else if (n > 6 && strncasecmp(line, "Allow:", 6) == 0) {
            header_value(line, n, 6, out->allow, sizeof(out->allow));
        } else if (n > 9 && strncasecmp(line, "Location:", 9) == 0) {
            header_value(line, n, 9, out->location, sizeof(out->location));
        }
        line = eol;
    }
    return true;
}

/* Write all of @buf[0, len) to @fd before @deadline_ms. */
static bool write_all(int fd, const char *buf, size_t len, int64_t deadline_ms)
{
    size_t done = 0;
    while (done < len) {
        if (!wait_fd(fd, POLLOUT, deadline_ms)) {
            return false;
        }
        ssize_t n = write(fd, buf + done, len - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        done += (size_t)n;
    }
    return true;
}

static bool request(const char *base_url, const char *method, const char *path, const char *headers,
                    const char *body, size_t body_len, int timeout_ms, tst_http_response *out,
                    bool quiet)
{
    memset(out, 0, sizeof(*out));
    int64_t deadline = tst_now_ms() + timeout_ms;
    struct sockaddr_in sa;
    char host[64];
    char *buf = NULL;
    size_t len = 0, cap = 0;
    bool ok = false;
    int fd = -1;
    if (!parse_base(base_url, &sa, host, sizeof(host))) {
        printf("# http: cannot parse %s\n", base_url);
        return false;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (!quiet) {
            printf("# http: connect %s: %s\n", base_url, strerror(errno));
        }
        goto done;
    }
    char req[2048];
    int n = body != NULL ? snprintf(req, sizeof(req),
                                    "%s %s HTTP/1.1\r\nHost: %s:%u\r\nConnection: close\r\n"
                                    "Content-Length: %zu\r\n%s\r\n",
                                    method, path, host, (unsigned)ntohs(sa.sin_port), body_len,
                                    headers != NULL ? headers : "")
                         : snprintf(req, sizeof(req),
                                    "%s %s HTTP/1.1\r\nHost: %s:%u\r\nConnection: close\r\n"
                                    "%s\r\n",
                                    method, path, host, (unsigned)ntohs(sa.sin_port),
                                    headers != NULL ? headers : "");
    if (n < 0 || (size_t)n >= sizeof(req) || !write_all(fd, req, (size_t)n, deadline) ||
        (body != NULL && !write_all(fd, body, body_len, deadline))) {
        printf("# http: cannot send the request for %s\n", path);
        goto done;
    }
    long clen = -1;
    size_t head_len = 0;
    for (;;) {
        if (head_len > 0 && clen >= 0 && len - head_len >= (size_t)clen) {
            break;
        }
        if (cap - len < 65536) {
            size_t ncap = cap == 0 ? 131072 : cap * 2;
            char *nb = ncap <= TST_HTTP_MAX_BYTES ? realloc(buf, ncap + 1) : NULL;
            if (nb == NULL) {
                printf("# http: response to %s too large\n", path);
                goto done;
            }
            buf = nb;
            cap = ncap;
        }
        if (!wait_fd(fd, POLLIN, deadline)) {
            printf("# http: timed out reading %s\n", path);
            goto done;
        }
        ssize_t got = read(fd, buf + len, cap - len);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            printf("# http: read %s: %s\n", path, strerror(errno));
            goto done;
        }
        if (got == 0) {
            break; /* the server closed: the body ends here */
        }
        len += (size_t)got;
        buf[len] = '\0';
        if (head_len == 0) {
            char *end = strstr(buf, "\r\n\r\n");
            if (end != NULL) {
                head_len = (size_t)(end - buf) + 4;
                if (!parse_head(buf, out, &clen)) {
                    printf("# http: bad status line for %s\n", path);
                    goto done;
                }
            }
        }
    }
    if (head_len == 0) {
        printf("# http: no response head for %s\n", path);
        goto done;
    }
    size_t got = len - head_len;
    if (clen >= 0 && (size_t)clen < got) {
        got = (size_t)clen;
    }
    out->body = malloc(got + 1);
    if (out->body == NULL) {
        goto done;
    }
    memcpy(out->body, buf + head_len, got);
    out->body[got] = '\0';
    out->body_len = got;
    ok = true;
done:
    if (fd >= 0) {
        close(fd);
    }
    free(buf);
    return ok;
}

int tst_http_connect(const char *base_url)
{
    struct sockaddr_in sa;
    char host[64];
    if (!parse_base(base_url, &sa, host, sizeof(host))) {
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

bool tst_http_get(const char *base_url, const char *path, int timeout_ms, tst_http_response *out)
{
    return request(base_url, "GET", path, NULL, NULL, 0, timeout_ms, out, false);
}

bool tst_http_try_get(const char *base_url, const char *path, int timeout_ms,
                      tst_http_response *out)
{
    return request(base_url, "GET", path, NULL, NULL, 0, timeout_ms, out, true);
}

bool tst_http_post(const char *base_url, const char *path, const char *json, int timeout_ms,
                   tst_http_response *out)
{
    return request(base_url, "POST", path, "Content-Type: application/json\r\n", json, strlen(json),
                   timeout_ms, out, false);
}

bool tst_http_request(const char *base_url, const char *method, const char *path,
                      const char *headers, const char *body, size_t body_len, int timeout_ms,
                      tst_http_response *out)
{
    return request(base_url, method, path, headers, body, body_len, timeout_ms, out, false);
}

void tst_http_response_fini(tst_http_response *r)
{
    if (r != NULL) {
        free(r->body);
        r->body = NULL;
    }
}

bool tst_http_query_escape(const char *s, char *out, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
        bool plain = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                     (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.' || *c == '~';
        if (o + (plain ? 1 : 3) >= len) {
            return false;
        }
        if (plain) {
            out[o++] = (char)*c;
        } else {
            out[o++] = '%';
            out[o++] = hex[*c >> 4];
            out[o++] = hex[*c & 15];
        }
    }
    out[o] = '\0';
    return true;
}
