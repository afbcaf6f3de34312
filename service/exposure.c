/*
 * Which listeners of a configuration carry requests in the clear beyond this machine
 * (svc_config_check_exposure(), declared in service/config.h): the listener side of
 * docs/configuration.md's `insecure`.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/record.h"
#include "service/config.h"

/* Whether @host (no brackets) names this machine's loopback interface. */
static bool loopback_host(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcasecmp(host, "localhost") == 0) { /* host names have no case */
        return true;
    }
    if (inet_pton(AF_INET, host, &a4) == 1) {
        return (ntohl(a4.s_addr) >> 24) == 127;
    }
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    }
    return false;
}

/* Whether @url is a plain-text network listener (see svc_config_check_exposure) beyond loopback. */
static bool exposed_url(const char *url, bool http)
{
    /* Every plain-text network scheme nng 1.5.2 listens on; it takes them in any case. */
    static const char *const nng_plain[] = {"tcp://", "tcp4://", "tcp6://",
                                            "ws://",  "ws4://",  "ws6://"};
    static const char *const http_plain[] = {"http://"};
    const char *const *schemes = http ? http_plain : nng_plain;
    size_t n = http ? 1 : sizeof(nng_plain) / sizeof(nng_plain[0]);
    const char *rest = NULL;
    for (size_t i = 0; i < n && rest == NULL; i++) {
        if (strncasecmp(url, schemes[i], strlen(schemes[i])) == 0) {
            rest = url + strlen(schemes[i]);
        }
    }
    if (rest == NULL) {
        return false; /* ipc://, inproc://, or a TLS scheme */
    }
    char host[SVC_URL_MAX];
    size_t len = strcspn(rest, "/");
    if (rest[0] == '[') {
        const char *close = memchr(rest, ']', len);
        if (close == NULL) {
            return true; /* malformed: the listener fails anyway; say it is exposed */
        }
        len = (size_t)(close - rest - 1);
        rest++;
    } else {
        const char *colon = memchr(rest, ':', len);
        if (colon != NULL) {
            len = (size_t)(colon - rest);
        }
    }
    if (len >= sizeof(host)) {
        return true;
    }
    memcpy(host, rest, len);
    host[len] = '\0';
    return !loopback_host(host);
}

base_err svc_config_check_exposure(const svc_config *c, char *exposed, size_t exposed_len,
                                   char *errbuf, size_t errlen)
{
    /* Every such listener, named in one list: "URL, URL and URL". */
    const char *found[SVC_MAX_URLS + 2];
    size_t n = 0;
    for (uint32_t i = 0; i < c->n_urls; i++) {
        if (exposed_url(c->urls[i], false)) {
            found[n++] = c->urls[i];
        }
    }
    if (c->pull_url[0] != '\0' && exposed_url(c->pull_url, false)) {
        found[n++] = c->pull_url;
    }
    if (c->http_url[0] != '\0' && exposed_url(c->http_url, true)) {
        found[n++] = c->http_url;
    }
    char list[3 * SVC_URL_MAX] = "";
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof(list) - used, "%s%s",
                 i == 0       ? ""
                 : i + 1 == n ? " and "
                              : ", ",
                 found[i]);
    }
    if (exposed != NULL && exposed_len > 0) {
        base_strlcpy(exposed, list, exposed_len);
    }
    if (n > 0 && !c->insecure) {
        snprintf(errbuf, errlen,
                 "%.300s %s in the clear beyond this machine (not a loopback address): anyone "
                 "who can reach %s may decide, post rewards and read statistics; listen on "
                 "loopback or ipc, or set insecure = true in [server] to accept that",
                 list, n == 1 ? "listens" : "listen", n == 1 ? "it" : "them");
        return BASE_EINVAL;
    }
    return BASE_OK;
}
