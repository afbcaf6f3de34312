#ifndef SERVICE_TLS_H
#define SERVICE_TLS_H

/*
 * TLS for rlfeedd's own listeners (docs/security.md): tls+tcp:// REQ/REP and PULL URLs and
 * an https:// http_url, with nng's TLS (mbedTLS in Debian's build). One server configuration
 * from [server] tls_cert, tls_key and tls_client_ca serves them all; with tls_client_ca a
 * client must present a certificate that CA signed (mutual TLS), else the handshake fails.
 */

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "service/config.h"

struct nng_tls_config;

/* Whether @url is a TLS scheme (tls+tcp://, tls+tcp4://, tls+tcp6://, wss://, https://). */
bool svc_tls_url(const char *url);

/*
 * svc_tls_server() - the listeners' TLS configuration from @c; *out NULL when tls_cert is
 * empty. Files are read now: a missing or malformed one is an error here, at start.
 * Return: BASE_OK; BASE_EIO (a file cannot be read) or BASE_EINVAL (nng refuses its
 *         contents), the reason in @errbuf; BASE_ENOMEM.
 */
base_err svc_tls_server(const svc_config *c, struct nng_tls_config **out, char *errbuf,
                        size_t errlen);

/* Release a configuration of svc_tls_server(); accepts NULL. */
void svc_tls_free(struct nng_tls_config *t);

#endif
