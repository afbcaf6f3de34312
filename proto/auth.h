#ifndef PROTO_AUTH_H
#define PROTO_AUTH_H

/*
 * Client authentication: how a request proves which client sent it (docs/protocol.md
 * section 2a, docs/security.md).
 *
 * A client holds a key file: its name, a 32-byte secret and a 16-byte salt. Both sides
 * derive the signing key  K = HMAC-SHA256(secret, "rlfeed-key-v1" || salt); the daemon's
 * configuration holds only salt and K (proto_auth_key_string()), never the secret.
 *
 * Over msgpack a request carries one more top-level entry,
 *     "auth": {"client": NAME, "ts": MS, "nonce": STR, "mac": <bin 32>}
 * and mac = HMAC-SHA256(K, the whole message with the 32 mac bytes set to zero), so the
 * proof covers every byte of the request, the timestamp and the nonce included, and the key
 * itself is never sent. proto_auth_sign() appends that entry to an encoded request.
 *
 * Over HTTP the request carries a header instead,
 *     Authorization: RLFEED-HMAC-SHA256 client=NAME, ts=MS, nonce=STR, mac=HEX64
 * with mac = HMAC-SHA256(K, "RLFEED-HMAC-SHA256\n" METHOD "\n" TARGET "\n" NAME "\n" TS
 * "\n" NONCE "\n" BODY), TARGET the request target as sent (path and query).
 *
 * What the daemon does with a verified proof (clock window, replay memory, scopes) is
 * service/auth.h's. Every function here is reentrant.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/record.h"
#include "proto/errors.h"

#define PROTO_AUTH_MAC_BYTES 32
#define PROTO_AUTH_KEY_BYTES 32    /* the derived signing key */
#define PROTO_AUTH_SECRET_BYTES 32 /* a key file's secret */
#define PROTO_AUTH_SALT_BYTES 16
#define PROTO_AUTH_SCHEME "RLFEED-HMAC-SHA256"
/* "s1$" SALT(32 hex) "$" KEY(64 hex): the stored form of a derived key */
#define PROTO_AUTH_KEY_STRING_LEN (3 + 2 * PROTO_AUTH_SALT_BYTES + 1 + 2 * PROTO_AUTH_KEY_BYTES)

/* The "auth" entry of a decoded request (or the Authorization header of an HTTP one). */
typedef struct proto_auth {
    bool present;
    char client[BASE_NAME_MAX + 1];
    int64_t ts_ms; /* the client's clock, ms since the epoch */
    char nonce[BASE_ID_MAX + 1];
    uint8_t mac[PROTO_AUTH_MAC_BYTES];
    size_t mac_off; /* msgpack: where the 32 mac bytes sit in the message */
} proto_auth;

/*
 * proto_auth_name_ok() - whether @s can be a client's name: 1..@max bytes of UTF-8 without
 * blanks, ',', '=', '$' or '"' (they delimit the stored key and the Authorization header),
 * '[' or ']' (they delimit the configuration's [client NAME] section). PROTO_AUTH_NAME_RULE
 * says so in words.
 */
#define PROTO_AUTH_NAME_RULE "UTF-8 without blanks, ',', '=', '$', '\"', '[' or ']'"
bool proto_auth_name_ok(const char *s, size_t max);

/* A client's key file, as proto_auth_keyfile_parse() reads it. */
typedef struct proto_auth_keyfile {
    char client[BASE_NAME_MAX + 1];
    uint8_t secret[PROTO_AUTH_SECRET_BYTES];
    uint8_t salt[PROTO_AUTH_SALT_BYTES];
    uint8_t key[PROTO_AUTH_KEY_BYTES]; /* derived */
} proto_auth_keyfile;

/*
 * A signing key prepared for many macs (its padded blocks hashed once): what a server that
 * checks every request, or pseudonymises every id, keeps. Read-only once made: any thread
 * may use it concurrently. NULL when out of memory.
 */
typedef struct proto_mac_key proto_mac_key;
proto_mac_key *proto_mac_key_new(const uint8_t key[PROTO_AUTH_KEY_BYTES]);
void proto_mac_key_free(proto_mac_key *k); /* accepts NULL */

/* K = HMAC-SHA256(@secret, "rlfeed-key-v1" || @salt). */
void proto_auth_derive(const uint8_t secret[PROTO_AUTH_SECRET_BYTES],
                       const uint8_t salt[PROTO_AUTH_SALT_BYTES],
                       uint8_t key[PROTO_AUTH_KEY_BYTES]);

/* "s1$SALTHEX$KEYHEX" into @out (PROTO_AUTH_KEY_STRING_LEN + 1 bytes). */
void proto_auth_key_string(const uint8_t salt[PROTO_AUTH_SALT_BYTES],
                           const uint8_t key[PROTO_AUTH_KEY_BYTES],
                           char out[PROTO_AUTH_KEY_STRING_LEN + 1]);

/* Parse a stored key ("s1$..."); false when malformed. */
bool proto_auth_key_parse(const char *s, uint8_t salt[PROTO_AUTH_SALT_BYTES],
                          uint8_t key[PROTO_AUTH_KEY_BYTES]);

/*
 * proto_auth_keyfile_parse() - read a key file's text: lines "client = NAME",
 * "secret = HEX64", "salt = HEX32" ('#' comments and blank lines allowed) and derive the key.
 * Return: BASE_OK; BASE_EINVAL with the reason in @errbuf.
 */
base_err proto_auth_keyfile_parse(const char *text, proto_auth_keyfile *out, char *errbuf,
                                  size_t errlen);

/* The text of a key file for @kf (client, secret, salt), into @out. */
base_err proto_auth_keyfile_format(const proto_auth_keyfile *kf, base_buf *out);

/*
 * proto_auth_sign() - append the "auth" entry to the encoded request in @msg (one msgpack
 * map without an "auth" key) and fill in its mac.
 * @nonce: 1..64 bytes of UTF-8; make it unique per request (proto_auth_nonce())
 * Return: BASE_OK; BASE_EINVAL (@msg is not a map, or @client/@nonce empty or too long);
 *         BASE_ENOMEM or BASE_ELIMIT from @msg, which is then left as it was.
 */
base_err proto_auth_sign(base_buf *msg, const char *client, const uint8_t key[PROTO_AUTH_KEY_BYTES],
                         int64_t ts_ms, const char *nonce);

/* A fresh random nonce (24 hex digits) into @out (at least 25 bytes). */
void proto_auth_nonce(char *out, size_t size);

/* Whether @a's mac is the one @key gives over the @len bytes of @msg (constant time). */
bool proto_auth_verify(const uint8_t *msg, size_t len, const proto_auth *a,
                       const uint8_t key[PROTO_AUTH_KEY_BYTES]);
bool proto_auth_verify_with(const proto_mac_key *k, const uint8_t *msg, size_t len,
                            const proto_auth *a);

/*
 * proto_auth_http_header() - the value of the Authorization header for an HTTP request
 * (@method, @target as sent, @body of @body_len bytes) into @out.
 * Return: BASE_OK; BASE_ELIMIT when @out is too small; BASE_EINVAL for a bad client/nonce.
 */
base_err proto_auth_http_header(char *out, size_t size, const char *client,
                                const uint8_t key[PROTO_AUTH_KEY_BYTES], int64_t ts_ms,
                                const char *nonce, const char *method, const char *target,
                                const uint8_t *body, size_t body_len);

/*
 * proto_auth_http_parse() - read an Authorization header value into @out.
 * Return: BASE_OK; BASE_EINVAL (code unauthorized, the reason in @err) when it is not
 *         "RLFEED-HMAC-SHA256 client=..., ts=..., nonce=..., mac=..." with valid fields.
 */
base_err proto_auth_http_parse(const char *value, proto_auth *out, proto_error *err);

/* Whether @a's mac is the one @key gives over the HTTP request (constant time). */
bool proto_auth_http_verify(const proto_auth *a, const uint8_t key[PROTO_AUTH_KEY_BYTES],
                            const char *method, const char *target, const uint8_t *body,
                            size_t body_len);
bool proto_auth_http_verify_with(const proto_mac_key *k, const proto_auth *a, const char *method,
                                 const char *target, const uint8_t *body, size_t body_len);

/*
 * proto_pseudonym() - the stored form of a user or conversation id (docs/security.md,
 * "Pseudonyms"): "~" and 32 hex digits of HMAC-SHA256(@key, @domain "\n" @id), so a store
 * never holds the raw id and the same id always maps to the same pseudonym under one key.
 * @domain: "user" or "conversation"   @out: at least PROTO_PSEUDONYM_LEN + 1 bytes; "" for
 * an empty @id.
 */
#define PROTO_PSEUDONYM_LEN 33
void proto_pseudonym(const uint8_t key[PROTO_AUTH_KEY_BYTES], const char *domain, const char *id,
                     char *out);
void proto_pseudonym_with(const proto_mac_key *k, const char *domain, const char *id, char *out);

/* @n bytes as lowercase hex into @out (2n + 1 bytes). */
void proto_auth_hex(const uint8_t *p, size_t n, char *out);

/* Exactly 2n hex digits at @s into @p; false otherwise. */
bool proto_auth_unhex(const char *s, size_t slen, uint8_t *p, size_t n);

/*
 * proto_pseudonym_key_load() - the pseudonym key in the file at @path (`rlfeed key pseudonym`:
 * 64 hex digits, a line break allowed), which group and others may not read or write.
 * Return: true with @key set; false with the reason in @why ("not 64 hex digits", "open to
 *         group or others (mode 0644): chmod 600 it", "not a regular file", or the system's
 *         error).
 */
bool proto_pseudonym_key_load(const char *path, uint8_t key[PROTO_AUTH_KEY_BYTES], char *why,
                              size_t whylen);

/*
 * Secret files (key files, the pseudonym key). proto_secret_open() opens @path for reading
 * (never blocking on a FIFO) and checks what it opened: a regular file that group and others
 * have no permission on. Return: the descriptor (close it); PROTO_SECRET_UNREADABLE (it cannot
 * be opened) or PROTO_SECRET_REFUSED ("not a regular file", or "open to group or others
 * (mode 0644): chmod 600 it"), the reason in @why. proto_secret_read() reads up to @size
 * bytes (less at the end of the file); -1 on a read error. proto_secret_wipe() clears @p
 * so that the compiler cannot drop it (mbedTLS's zeroize).
 */
#define PROTO_SECRET_UNREADABLE (-1)
#define PROTO_SECRET_REFUSED (-2)
int proto_secret_open(const char *path, char *why, size_t whylen);
ssize_t proto_secret_read(int fd, char *buf, size_t size);
void proto_secret_wipe(void *p, size_t n);

#endif
