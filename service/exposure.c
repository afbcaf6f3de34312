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

/* Every exposed listener of @c, named in @list as "URL, URL and URL"; how many. */
static size_t exposed_list(const svc_config *c, char *list, size_t len)
{
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
    list[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(list);
        snprintf(list + used, len - used, "%s%s",
                 i == 0       ? ""
                 : i + 1 == n ? " and "
                              : ", ",
                 found[i]);
    }
    return n;
}

/* The sentence both the refusal and the warning say: @why in its parentheses, @list cut at @cut. */
static void say(char *out, size_t len, const char *list, int cut, size_t n, const char *why)
{
    snprintf(out, len,
             "%.*s %s in the clear beyond this machine (%s): anyone who can reach %s may "
             "decide, post rewards and read statistics",
             cut, list, n == 1 ? "listens" : "listen", why, n == 1 ? "it" : "them");
}

/*
 * The first abstract:// listener of @c, or NULL: such a socket has no file permissions
 * (ipc_mode and ipc_group cannot apply), so every local user may connect.
 */
static const char *abstract_listener(const svc_config *c)
{
    for (uint32_t i = 0; i < c->n_urls; i++) {
        if (strncasecmp(c->urls[i], "abstract://", 11) == 0) {
            return c->urls[i];
        }
    }
    return strncasecmp(c->pull_url, "abstract://", 11) == 0 ? c->pull_url : NULL;
}

base_err svc_config_check_exposure(const svc_config *c, char *exposed, size_t exposed_len,
                                   char *errbuf, size_t errlen)
{
    const char *abstract = abstract_listener(c);
    if (abstract != NULL && !c->auth && !c->insecure) {
        snprintf(errbuf, errlen,
                 "%.300s: an abstract socket has no file permissions (ipc_mode does not apply): "
                 "every local user may decide, post rewards and read statistics; listen on "
                 "ipc://, set auth = on, or set insecure = true in [server] to accept that",
                 abstract);
        return BASE_EINVAL;
    }
    char list[3 * SVC_URL_MAX];
    size_t n = exposed_list(c, list, sizeof(list));
    if (exposed != NULL && exposed_len > 0) {
        base_strlcpy(exposed, list, exposed_len);
    }
    if (n > 0 && !c->insecure) {
        char sentence[512];
        say(sentence, sizeof(sentence), list, 300, n, "not a loopback address");
        snprintf(errbuf, errlen,
                 "%s; listen on loopback or ipc, or set insecure = true in [server] to accept "
                 "that",
                 sentence);
        return BASE_EINVAL;
    }
    return BASE_OK;
}

bool svc_config_exposure_warning(const svc_config *c, char *out, size_t len)
{
    char list[3 * SVC_URL_MAX];
    size_t n = exposed_list(c, list, sizeof(list));
    if (n > 0) {
        say(out, len, list, (int)sizeof(list), n, "insecure = true");
    }
    return n > 0;
}
