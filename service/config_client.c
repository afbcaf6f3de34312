#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nng/nng.h>

#include "base/utf8.h"
#include "proto/url.h"
#include "service/config.h"
#include "service/tls.h"

/*
 * The security keys of [server] (auth, auth_window_ms, auth_replay_max, ops_pages_open,
 * tls_cert, tls_key, tls_client_ca, pseudonym_key) and [client NAME] sections
 * (docs/configuration.md, docs/security.md). Split from config.c, which parses everything
 * else; the same rules: the first problem stops the load with a message naming the key.
 */

int svc_config_auth_key(svc_config *c, const char *k, const char *v, char *errbuf, size_t errlen)
{
    bool ok = true;
    if (strcmp(k, "auth") == 0) {
        ok = strcmp(v, "on") == 0 || strcmp(v, "off") == 0;
        c->auth = strcmp(v, "on") == 0;
    } else if (strcmp(k, "auth_window_ms") == 0) {
        ok = svc_config_parse_u32(v, 1000, 600000, &c->auth_window_ms);
    } else if (strcmp(k, "tls_cert") == 0 || strcmp(k, "tls_key") == 0 ||
               strcmp(k, "tls_client_ca") == 0) {
        char *dst = strcmp(k, "tls_cert") == 0  ? c->tls_cert
                    : strcmp(k, "tls_key") == 0 ? c->tls_key
                                                : c->tls_client_ca;
        ok = strlen(v) < SVC_URL_MAX && (v[0] == '\0' || v[0] == '/');
        if (ok) {
            strcpy(dst, v);
        }
    } else if (strcmp(k, "pseudonym_key") == 0) {
        ok = strlen(v) < sizeof(c->pseudonym_key) && (v[0] == '\0' || v[0] == '/');
        if (ok) {
            strcpy(c->pseudonym_key, v);
        }
    } else if (strcmp(k, "ops_pages_open") == 0) {
        ok = strcmp(v, "true") == 0 || strcmp(v, "false") == 0;
        c->ops_pages_open = strcmp(v, "true") == 0;
    } else if (strcmp(k, "auth_replay_max") == 0) {
        ok = svc_config_parse_u32(v, 1024, 64u << 20, &c->auth_replay_max);
    } else {
        return -1;
    }
    if (!ok) {
        snprintf(errbuf, errlen, "[server]: invalid value \"%s\" for %s", v, k);
    }
    return ok ? 1 : 0;
}

static bool parse_scopes(const char *v, uint32_t *out)
{
    char copy[256];
    if (strlen(v) >= sizeof(copy)) {
        return false;
    }
    strcpy(copy, v);
    *out = 0;
    for (char *save = NULL, *t = strtok_r(copy, ", \t", &save); t != NULL;
         t = strtok_r(NULL, ", \t", &save)) {
        if (strcmp(t, "decide") == 0) {
            *out |= SVC_SCOPE_DECIDE;
        } else if (strcmp(t, "feedback") == 0) {
            *out |= SVC_SCOPE_FEEDBACK;
        } else if (strcmp(t, "ops") == 0) {
            *out |= SVC_SCOPE_OPS;
        } else if (strcmp(t, "admin") == 0) {
            *out |= SVC_SCOPE_ADMIN;
        } else {
            return false;
        }
    }
    return *out != 0;
}

/* What a [client NAME] header can hold (docs/configuration.md, "[policy NAME]": libinih). */
#define CLIENT_NAME_MAX 42

static svc_client_config *client_named(svc_config *c, const char *name, char *errbuf, size_t errlen)
{
    for (uint32_t i = 0; i < c->n_clients; i++) {
        if (strcmp(c->client[i].name, name) == 0) {
            return &c->client[i];
        }
    }
    if (!proto_auth_name_ok(name, CLIENT_NAME_MAX)) {
        snprintf(errbuf, errlen,
                 "bad client name \"%.64s\" (1..%d bytes of " PROTO_AUTH_NAME_RULE ")", name,
                 CLIENT_NAME_MAX);
        return NULL;
    }
    if (c->n_clients == SVC_MAX_CLIENTS) {
        snprintf(errbuf, errlen, "too many clients (at most %d)", SVC_MAX_CLIENTS);
        return NULL;
    }
    svc_client_config *cl = &c->client[c->n_clients++];
    memset(cl, 0, sizeof(*cl));
    strcpy(cl->name, name);
    cl->outcome_burst = -1.0; /* unset: finish() makes it 10 s of the rate (at least 10) */
    return cl;
}

static bool parse_keys(const char *v, svc_client_config *cl)
{
    char copy[(PROTO_AUTH_KEY_STRING_LEN + 2) * SVC_CLIENT_KEYS_MAX + 16];
    uint8_t salt[PROTO_AUTH_SALT_BYTES];
    if (strlen(v) >= sizeof(copy)) {
        return false;
    }
    strcpy(copy, v);
    cl->n_keys = 0;
    for (char *save = NULL, *t = strtok_r(copy, ", \t", &save); t != NULL;
         t = strtok_r(NULL, ", \t", &save)) {
        if (cl->n_keys == SVC_CLIENT_KEYS_MAX ||
            !proto_auth_key_parse(t, salt, cl->key[cl->n_keys])) {
            return false;
        }
        cl->n_keys++;
    }
    return cl->n_keys > 0;
}

base_err svc_config_client_open(svc_config *c, const char *name, char *errbuf, size_t errlen)
{
    return client_named(c, name, errbuf, errlen) != NULL ? BASE_OK : BASE_EINVAL;
}

int svc_config_client_key(svc_config *c, const char *client, const char *k, const char *v,
                          char *errbuf, size_t errlen)
{
    svc_client_config *cl = client_named(c, client, errbuf, errlen);
    bool ok = true;
    if (cl == NULL) {
        return 0;
    }
    if (strcmp(k, "key") == 0) {
        ok = parse_keys(v, cl);
    } else if (strcmp(k, "ops") == 0) {
        ok = parse_scopes(v, &cl->scopes);
    } else if (strcmp(k, "policies") == 0) {
        ok = strlen(v) < sizeof(cl->policies) && v[0] != '\0';
        if (ok) {
            strcpy(cl->policies, v);
        }
    } else if (strcmp(k, "outcome_rate_per_s") == 0) {
        ok = svc_config_parse_double(v, 0.0, 1e9, &cl->outcome_rate_per_s);
    } else if (strcmp(k, "outcome_burst") == 0) {
        ok = svc_config_parse_double(v, 0.0, 1e9, &cl->outcome_burst) && cl->outcome_burst >= 1.0;
    } else {
        snprintf(errbuf, errlen, "[client %s]: unknown key \"%s\"", client, k);
        return 0;
    }
    if (!ok) {
        snprintf(errbuf, errlen, "[client %s]: invalid value for %s%s", client, k,
                 strcmp(k, "key") == 0
                     ? " (1 to 4 keys \"s1$SALT$KEY\" as `rlfeed key new` prints them)"
                 : strcmp(k, "ops") == 0 ? " (a list of decide, feedback, ops, admin)"
                                         : "");
    }
    return ok ? 1 : 0;
}

static base_err resolve_policies(svc_config *c, svc_client_config *cl, char *errbuf, size_t errlen)
{
    char copy[sizeof(cl->policies)];
    strcpy(copy, cl->policies[0] != '\0' ? cl->policies : "*");
    cl->policy_mask = 0;
    cl->all_policies = false;
    unsigned n = 0;
    for (char *save = NULL, *t = strtok_r(copy, ", \t", &save); t != NULL;
         t = strtok_r(NULL, ", \t", &save), n++) {
        bool found = false;
        if (strcmp(t, "*") == 0) {
            cl->all_policies = true;
            continue;
        }
        for (uint32_t i = 0; i < c->n_policies && !found; i++) {
            if (strcmp(c->policy[i].name, t) == 0) {
                cl->policy_mask |= 1ull << i;
                found = true;
            }
        }
        if (!found) {
            snprintf(errbuf, errlen, "[client %s]: policies: no policy \"%.64s\"", cl->name, t);
            return BASE_EINVAL;
        }
    }
    if (n == 0 || (cl->all_policies && n > 1)) {
        snprintf(errbuf, errlen,
                 "[client %s]: policies: a list of policy names, or * alone for all of them",
                 cl->name);
        return BASE_EINVAL;
    }
    return BASE_OK;
}

/*
 * A URL nng can listen on for rlfeedd (url, pull_url): a transport it serves and, beyond
 * ipc, a numeric port written out (nng fills in 80 for a ws:// without one); checked here
 * so --check catches it, not the start.
 */
bool svc_config_listen_url_ok(const char *u)
{
    static const char *const schemes[] = {"ipc",  "abstract", "inproc",   "tcp",      "tcp4",
                                          "tcp6", "tls+tcp",  "tls+tcp4", "tls+tcp6", "ws",
                                          "ws4",  "ws6",      "wss",      "wss4",     "wss6"};
    nng_url *p = NULL;
    if (nng_url_parse(&p, u) != 0) {
        return false;
    }
    bool ok = false;
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        ok = ok || strcmp(p->u_scheme, schemes[i]) == 0;
    }
    if (ok && (strcmp(p->u_scheme, "ipc") == 0 || strcmp(p->u_scheme, "abstract") == 0 ||
               strcmp(p->u_scheme, "inproc") == 0)) {
        /* nng 1.5.2 leaves the parts of "ipc://" NULL. */
        ok = (p->u_path != NULL && p->u_path[0] != '\0') ||
             (p->u_hostname != NULL && p->u_hostname[0] != '\0');
    } else if (ok) {
        char port[8];
        ok = p->u_port != NULL && proto_url_port_ok(p->u_port) &&
             proto_url_written_port(u, port, sizeof(port)) && proto_url_port_ok(port);
    }
    nng_url_free(p);
    return ok;
}

/* An http_url: http:// or https://, a host and a numeric port, written out. */
bool svc_config_http_url_ok(const char *u)
{
    nng_url *p = NULL;
    char port[8];
    if ((strncasecmp(u, "http://", 7) != 0 && strncasecmp(u, "https://", 8) != 0) ||
        !proto_url_written_port(u, port, sizeof(port)) || !proto_url_port_ok(port) ||
        nng_url_parse(&p, u) != 0) {
        return false;
    }
    bool ok = p->u_port != NULL && proto_url_port_ok(p->u_port);
    nng_url_free(p);
    return ok;
}

base_err svc_config_check_storage(const svc_config *c, char *errbuf, size_t errlen)
{
    if (c->replicas_ack > 0 && c->redis_url[0] == '\0') {
        snprintf(errbuf, errlen,
                 "[server] replicas_ack = %u needs a redis URL (redis = or --redis): the "
                 "private redis-server has no replicas, so nothing could be acknowledged",
                 c->replicas_ack);
        return BASE_EINVAL;
    }
    return BASE_OK;
}

base_err svc_config_check_tls(const svc_config *c, char *errbuf, size_t errlen)
{
    const char *tls_url = NULL;
    for (uint32_t i = 0; i < c->n_urls && tls_url == NULL; i++) {
        tls_url = svc_tls_url(c->urls[i]) ? c->urls[i] : NULL;
    }
    if (tls_url == NULL && svc_tls_url(c->pull_url)) {
        tls_url = c->pull_url;
    }
    if (tls_url == NULL && svc_tls_url(c->http_url)) {
        tls_url = c->http_url;
    }
    if (tls_url != NULL && c->tls_cert[0] == '\0') {
        snprintf(errbuf, errlen, "%.200s needs [server] tls_cert (and tls_key)", tls_url);
        return BASE_EINVAL;
    }
    if (c->tls_cert[0] == '\0' && (c->tls_key[0] != '\0' || c->tls_client_ca[0] != '\0')) {
        snprintf(errbuf, errlen, "[server] tls_key and tls_client_ca need tls_cert");
        return BASE_EINVAL;
    }
    return BASE_OK;
}

base_err svc_config_clients_finish(svc_config *c, char *errbuf, size_t errlen)
{
    if (c->auth && c->n_clients == 0) {
        snprintf(errbuf, errlen, "[server] auth = on needs at least one [client NAME] section");
        return BASE_EINVAL;
    }
    for (uint32_t i = 0; i < c->n_clients; i++) {
        svc_client_config *cl = &c->client[i];
        if (cl->n_keys == 0) {
            snprintf(errbuf, errlen, "[client %s]: key is required (`rlfeed key new %s`)", cl->name,
                     cl->name);
            return BASE_EINVAL;
        }
        if (cl->scopes == 0) {
            snprintf(errbuf, errlen, "[client %s]: ops is required (decide, feedback, ops, admin)",
                     cl->name);
            return BASE_EINVAL;
        }
        if (resolve_policies(c, cl, errbuf, errlen) != BASE_OK) {
            return BASE_EINVAL;
        }
        if (cl->outcome_burst < 0.0) {
            double b = 10.0 * cl->outcome_rate_per_s;
            cl->outcome_burst = b > 10.0 ? b : 10.0;
        }
    }
    return BASE_OK;
}

const svc_client_config *svc_config_client(const svc_config *c, const char *name)
{
    for (uint32_t i = 0; i < c->n_clients; i++) {
        if (strcmp(c->client[i].name, name) == 0) {
            return &c->client[i];
        }
    }
    return NULL;
}
