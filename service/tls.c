#include "service/tls.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "base/buf.h"
#include "proto/tls.h"

#define PEM_MAX_BYTES (1u << 20)

bool svc_tls_url(const char *url)
{
    /* Every TLS scheme nng 1.5.2 listens on, in any case (it lower-cases them). */
    static const char *const schemes[] = {"tls+tcp://", "tls+tcp4://", "tls+tcp6://", "wss://",
                                          "wss4://",    "wss6://",     "https://"};
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        if (strncasecmp(url, schemes[i], strlen(schemes[i])) == 0) {
            return true;
        }
    }
    return false;
}

/* The file @path, NUL-terminated (nng parses PEM text), into @b. */
static bool read_pem(const char *key, const char *path, base_buf *b, char *errbuf, size_t errlen)
{
    char why[128];
    if (!base_buf_read_file(b, path, why, sizeof(why)) || base_buf_append(b, "", 1) != BASE_OK) {
        snprintf(errbuf, errlen, "[server] %s %s: %s", key, path, why);
        return false;
    }
    return true;
}

base_err svc_tls_server(const svc_config *c, struct nng_tls_config **out, char *errbuf,
                        size_t errlen)
{
    nng_tls_config *t = NULL;
    base_buf cert, key;
    base_err e = BASE_EIO;
    int rv;

    *out = NULL;
    if (c->tls_cert[0] == '\0') {
        return BASE_OK;
    }
    base_buf_init(&cert, PEM_MAX_BYTES);
    base_buf_init(&key, PEM_MAX_BYTES);
    if (!read_pem("tls_cert", c->tls_cert, &cert, errbuf, errlen) ||
        !read_pem("tls_key", c->tls_key[0] != '\0' ? c->tls_key : c->tls_cert, &key, errbuf,
                  errlen)) {
        goto done;
    }
    e = BASE_EINVAL;
    rv = nng_tls_config_alloc(&t, NNG_TLS_MODE_SERVER);
    if (rv != 0) {
        snprintf(errbuf, errlen, "TLS: %s", nng_strerror(rv));
        e = rv == NNG_ENOMEM ? BASE_ENOMEM : BASE_EINVAL;
        goto done;
    }
    rv = nng_tls_config_version(t, NNG_TLS_1_2, NNG_TLS_1_3);
    if (rv == 0) {
        rv = nng_tls_config_own_cert(t, (const char *)cert.data, (const char *)key.data, NULL);
        if (rv != 0) {
            snprintf(errbuf, errlen,
                     "[server] tls_cert %s / tls_key: not a PEM certificate and matching key: %s",
                     c->tls_cert, nng_strerror(rv));
            goto done;
        }
        if (!proto_tls_key_is_certs(cert.data, cert.len, key.data, key.len)) {
            snprintf(errbuf, errlen,
                     "[server] tls_key %s is not the key of the certificate in tls_cert %s",
                     c->tls_key[0] != '\0' ? c->tls_key : c->tls_cert, c->tls_cert);
            goto done;
        }
    }
    if (rv == 0 && c->tls_client_ca[0] != '\0') {
        rv = nng_tls_config_ca_file(t, c->tls_client_ca);
        if (rv != 0) {
            snprintf(errbuf, errlen, "[server] tls_client_ca %s: not readable PEM certificates: %s",
                     c->tls_client_ca, nng_strerror(rv));
            goto done;
        }
        rv = nng_tls_config_auth_mode(t, NNG_TLS_AUTH_MODE_REQUIRED);
    }
    if (rv != 0) {
        snprintf(errbuf, errlen, "TLS: %s", nng_strerror(rv));
        goto done;
    }
    *out = t;
    t = NULL;
    e = BASE_OK;
done:
    if (t != NULL) {
        nng_tls_config_free(t);
    }
    base_buf_fini(&cert);
    base_buf_fini(&key);
    return e;
}

void svc_tls_free(struct nng_tls_config *t)
{
    if (t != NULL) {
        nng_tls_config_free(t);
    }
}
