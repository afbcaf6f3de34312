#include "proto/url.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define UNIX_PATH_MAX 107 /* sizeof(sockaddr_un.sun_path) less its NUL */

bool proto_url_port_ok(const char *s)
{
    size_t n = strspn(s, "0123456789");
    return n >= 1 && n <= 5 && s[n] == '\0' && atol(s) <= 65535;
}

bool proto_url_written_port(const char *u, char *out, size_t size)
{
    const char *auth = strstr(u, "://");
    if (auth == NULL) {
        return false;
    }
    auth += 3;
    size_t n = strcspn(auth, "/?#");
    const char *host_end = auth;
    if (auth[0] == '[') { /* an IPv6 literal: its colons are not the port's */
        const char *close = memchr(auth, ']', n);
        if (close == NULL) {
            return false;
        }
        host_end = close + 1;
    }
    const char *colon = NULL;
    for (const char *s = host_end; s < auth + n; s++) {
        colon = *s == ':' ? s : colon;
    }
    size_t len = colon != NULL ? (size_t)(auth + n - colon - 1) : 0;
    if (colon == NULL || len >= size) {
        return false;
    }
    memcpy(out, colon + 1, len);
    out[len] = '\0';
    return true;
}

bool proto_url_dialable(const char *u)
{
    if (strncasecmp(u, "ipc://", 6) == 0) {
        size_t n = strlen(u + 6);
        return n >= 1 && n <= UNIX_PATH_MAX && u[6 + n - 1] != '/';
    }
    char port[1100]; /* longer than any URL the callers take */
    if (strstr(u, "://") == NULL || strncasecmp(u, "abstract://", 11) == 0 ||
        strncasecmp(u, "inproc://", 9) == 0) {
        return true;
    }
    /* A colon after the host writes a port: it must be one, also an empty one (":"). */
    return !proto_url_written_port(u, port, sizeof(port)) || proto_url_port_ok(port);
}
