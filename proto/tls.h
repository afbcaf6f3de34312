#ifndef PROTO_TLS_H
#define PROTO_TLS_H

/*
 * Checks of TLS material that nng's own TLS does not make, shared by the daemon's listeners
 * (service/tls.c) and the client library's dialers (client/client.c).
 */

#include <stdbool.h>
#include <stddef.h>

/*
 * proto_tls_key_is_certs() - whether the private key in @key belongs to the first certificate
 * in @cert. Both are PEM text with their terminating NUL counted in the length (mbedTLS's
 * rule for PEM). nng 1.5.2 takes any pair, and an endpoint holding another certificate's key
 * fails every handshake instead of its set-up.
 */
bool proto_tls_key_is_certs(const unsigned char *cert, size_t cert_len, const unsigned char *key,
                            size_t key_len);

#endif
