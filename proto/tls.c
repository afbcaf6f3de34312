#include "proto/tls.h"

#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

bool proto_tls_key_is_certs(const unsigned char *cert, size_t cert_len, const unsigned char *key,
                            size_t key_len)
{
    mbedtls_x509_crt crt;
    mbedtls_pk_context pk;
    mbedtls_x509_crt_init(&crt);
    mbedtls_pk_init(&pk);
    bool ok = mbedtls_x509_crt_parse(&crt, cert, cert_len) >= 0 &&
              mbedtls_pk_parse_key(&pk, key, key_len, NULL, 0) == 0 &&
              mbedtls_pk_check_pair(&crt.pk, &pk) == 0;
    mbedtls_pk_free(&pk);
    mbedtls_x509_crt_free(&crt);
    return ok;
}
