#include "proto/auth.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

#include "base/hash.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/utf8.h"
#include "proto/mp.h"

/*
 * HMAC-SHA256 comes from mbedTLS (the library nng's TLS is built on). Everything that
 * compares a mac does so in constant time.
 */

#define DERIVE_LABEL "rlfeed-key-v1"

/*
 * HMAC-SHA256 (RFC 2104) on mbedTLS's SHA-256, with the key's two padded blocks hashed once:
 * a prepared key holds the hash states after them, and each mac clones those, so a mac costs
 * the message's blocks plus two, with no allocation.
 */
struct proto_mac_key {
    mbedtls_sha256_context inner, outer;
};

static void mac_key_prepare(proto_mac_key *k, const uint8_t *key, size_t key_len)
{
    uint8_t block[64] = {0}, ipad[64], opad[64];
    if (key_len > sizeof(block)) {
        (void)mbedtls_sha256_ret(key, key_len, block, 0);
    } else {
        memcpy(block, key, key_len);
    }
    for (size_t i = 0; i < sizeof(block); i++) {
        ipad[i] = block[i] ^ 0x36;
        opad[i] = block[i] ^ 0x5c;
    }
    mbedtls_sha256_init(&k->inner);
    mbedtls_sha256_init(&k->outer);
    (void)mbedtls_sha256_starts_ret(&k->inner, 0);
    (void)mbedtls_sha256_update_ret(&k->inner, ipad, sizeof(ipad));
    (void)mbedtls_sha256_starts_ret(&k->outer, 0);
    (void)mbedtls_sha256_update_ret(&k->outer, opad, sizeof(opad));
    /* The key can be read back from these: they go nowhere else. */
    mbedtls_platform_zeroize(block, sizeof(block));
    mbedtls_platform_zeroize(ipad, sizeof(ipad));
    mbedtls_platform_zeroize(opad, sizeof(opad));
}

/* One HMAC over a list of parts. */
typedef struct part {
    const void *p;
    size_t n;
} part;

static void mac_parts(const proto_mac_key *k, const part *parts, size_t n_parts,
                      uint8_t out[PROTO_AUTH_MAC_BYTES])
{
    mbedtls_sha256_context c;
    uint8_t inner[32];
    mbedtls_sha256_init(&c);
    mbedtls_sha256_clone(&c, &k->inner);
    for (size_t i = 0; i < n_parts; i++) {
        if (parts[i].n > 0) {
            (void)mbedtls_sha256_update_ret(&c, parts[i].p, parts[i].n);
        }
    }
    (void)mbedtls_sha256_finish_ret(&c, inner);
    mbedtls_sha256_clone(&c, &k->outer);
    (void)mbedtls_sha256_update_ret(&c, inner, sizeof(inner));
    (void)mbedtls_sha256_finish_ret(&c, out);
    mbedtls_sha256_free(&c);
}

static bool hmac_parts(const uint8_t *key, size_t key_len, const part *parts, size_t n_parts,
                       uint8_t out[PROTO_AUTH_MAC_BYTES])
{
    proto_mac_key k;
    mac_key_prepare(&k, key, key_len);
    mac_parts(&k, parts, n_parts, out);
    mbedtls_sha256_free(&k.inner);
    mbedtls_sha256_free(&k.outer);
    return true;
}

proto_mac_key *proto_mac_key_new(const uint8_t key[PROTO_AUTH_KEY_BYTES])
{
    proto_mac_key *k = base_alloc(sizeof(*k));
    if (k != NULL) {
        mac_key_prepare(k, key, PROTO_AUTH_KEY_BYTES);
    }
    return k;
}

void proto_mac_key_free(proto_mac_key *k)
{
    if (k != NULL) {
        mbedtls_sha256_free(&k->inner);
        mbedtls_sha256_free(&k->outer);
        base_free(k);
    }
}

static bool same_mac(const uint8_t *a, const uint8_t *b)
{
    unsigned diff = 0;
    for (size_t i = 0; i < PROTO_AUTH_MAC_BYTES; i++) {
        diff |= (unsigned)(a[i] ^ b[i]);
    }
    return diff == 0;
}

void proto_auth_derive(const uint8_t secret[PROTO_AUTH_SECRET_BYTES],
                       const uint8_t salt[PROTO_AUTH_SALT_BYTES], uint8_t key[PROTO_AUTH_KEY_BYTES])
{
    const part parts[] = {{DERIVE_LABEL, strlen(DERIVE_LABEL)}, {salt, PROTO_AUTH_SALT_BYTES}};
    (void)hmac_parts(secret, PROTO_AUTH_SECRET_BYTES, parts, 2, key);
}

void proto_auth_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

void proto_secret_wipe(void *p, size_t n)
{
    mbedtls_platform_zeroize(p, n);
}

int proto_secret_open(const char *path, char *why, size_t whylen)
{
    struct stat st;
    /* O_NONBLOCK: a FIFO must not block the open; a regular file reads the same with it. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0 || fstat(fd, &st) != 0) { /* the mode of the file read, not of a name */
        snprintf(why, whylen, "%s", strerror(errno));
        if (fd >= 0) {
            (void)close(fd);
        }
        return PROTO_SECRET_UNREADABLE;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "not a regular file");
    } else if ((st.st_mode & 077) != 0) {
        snprintf(why, whylen, "open to group or others (mode %04o): chmod 600 it",
                 (unsigned)(st.st_mode & 07777));
    } else {
        return fd;
    }
    (void)close(fd);
    return PROTO_SECRET_REFUSED;
}

ssize_t proto_secret_read(int fd, char *buf, size_t size)
{
    size_t n = 0;
    while (n < size) {
        ssize_t r = read(fd, buf + n, size - n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            return -1;
        }
        if (r == 0) {
            break;
        }
        n += (size_t)r;
    }
    return (ssize_t)n;
}

bool proto_pseudonym_key_load(const char *path, uint8_t key[PROTO_AUTH_KEY_BYTES], char *why,
                              size_t whylen)
{
    char text[160]; /* 64 hex digits and a line break; more is not a key */
    size_t n = 0;
    bool ok = false, read_ok = true;
    int fd = proto_secret_open(path, why, whylen);
    if (fd >= 0) {
        ssize_t got = proto_secret_read(fd, text, sizeof(text));
        read_ok = got >= 0;
        n = got > 0 ? (size_t)got : 0;
        while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r')) {
            n--;
        }
        ok = read_ok && proto_auth_unhex(text, n, key, PROTO_AUTH_KEY_BYTES);
        if (!read_ok) {
            snprintf(why, whylen, "%s", strerror(errno));
        } else if (!ok) {
            snprintf(why, whylen, "not 64 hex digits (rlfeed key pseudonym makes one)");
        }
    }
    proto_secret_wipe(text, sizeof(text)); /* the key's text goes nowhere else */
    if (fd >= 0) {
        (void)close(fd);
    }
    return ok;
}

bool proto_auth_unhex(const char *s, size_t slen, uint8_t *p, size_t n)
{
    if (slen != 2 * n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        p[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

void proto_auth_key_string(const uint8_t salt[PROTO_AUTH_SALT_BYTES],
                           const uint8_t key[PROTO_AUTH_KEY_BYTES],
                           char out[PROTO_AUTH_KEY_STRING_LEN + 1])
{
    memcpy(out, "s1$", 3);
    proto_auth_hex(salt, PROTO_AUTH_SALT_BYTES, out + 3);
    out[3 + 2 * PROTO_AUTH_SALT_BYTES] = '$';
    proto_auth_hex(key, PROTO_AUTH_KEY_BYTES, out + 4 + 2 * PROTO_AUTH_SALT_BYTES);
}

bool proto_auth_key_parse(const char *s, uint8_t salt[PROTO_AUTH_SALT_BYTES],
                          uint8_t key[PROTO_AUTH_KEY_BYTES])
{
    const size_t salt_hex = 2 * PROTO_AUTH_SALT_BYTES;
    return strlen(s) == PROTO_AUTH_KEY_STRING_LEN && strncmp(s, "s1$", 3) == 0 &&
           s[3 + salt_hex] == '$' &&
           proto_auth_unhex(s + 3, salt_hex, salt, PROTO_AUTH_SALT_BYTES) &&
           proto_auth_unhex(s + 4 + salt_hex, 2 * PROTO_AUTH_KEY_BYTES, key, PROTO_AUTH_KEY_BYTES);
}

/* ------------------------------------------------------------- key files */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) {
        s[--n] = '\0';
    }
    return s;
}

bool proto_auth_name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    return n > 0 && n <= max && base_utf8_valid(s, n) && strpbrk(s, " \t,=$\"[]") == NULL;
}

static base_err keyfile_parse(const char *text, proto_auth_keyfile *out, char *errbuf,
                              size_t errlen, char line[256])
{
    bool have_client = false, have_secret = false, have_salt = false;
    unsigned lineno = 0;

    memset(out, 0, sizeof(*out));
    while (*text != '\0') {
        size_t n = strcspn(text, "\n");
        lineno++;
        if (n >= 256) {
            snprintf(errbuf, errlen, "line %u: too long", lineno);
            return BASE_EINVAL;
        }
        memcpy(line, text, n);
        line[n] = '\0';
        text += n + (text[n] == '\n');
        char *l = trim(line);
        if (*l == '\0' || *l == '#') {
            continue;
        }
        char *eq = strchr(l, '=');
        if (eq == NULL) {
            snprintf(errbuf, errlen, "line %u: expected NAME = VALUE", lineno);
            return BASE_EINVAL;
        }
        *eq = '\0';
        char *k = trim(l), *v = trim(eq + 1);
        if (strcmp(k, "client") == 0) {
            if (!proto_auth_name_ok(v, BASE_NAME_MAX)) {
                snprintf(errbuf, errlen,
                         "line %u: client must be 1..64 bytes of " PROTO_AUTH_NAME_RULE, lineno);
                return BASE_EINVAL;
            }
            strcpy(out->client, v);
            have_client = true;
        } else if (strcmp(k, "secret") == 0) {
            if (!proto_auth_unhex(v, strlen(v), out->secret, PROTO_AUTH_SECRET_BYTES)) {
                snprintf(errbuf, errlen, "line %u: secret must be 64 hex digits", lineno);
                return BASE_EINVAL;
            }
            have_secret = true;
        } else if (strcmp(k, "salt") == 0) {
            if (!proto_auth_unhex(v, strlen(v), out->salt, PROTO_AUTH_SALT_BYTES)) {
                snprintf(errbuf, errlen, "line %u: salt must be 32 hex digits", lineno);
                return BASE_EINVAL;
            }
            have_salt = true;
        } else {
            snprintf(errbuf, errlen, "line %u: unknown key \"%.32s\"", lineno, k);
            return BASE_EINVAL;
        }
    }
    if (!have_client || !have_secret || !have_salt) {
        snprintf(errbuf, errlen, "missing %s",
                 !have_client   ? "client"
                 : !have_secret ? "secret"
                                : "salt");
        return BASE_EINVAL;
    }
    proto_auth_derive(out->secret, out->salt, out->key);
    return BASE_OK;
}

base_err proto_auth_keyfile_parse(const char *text, proto_auth_keyfile *out, char *errbuf,
                                  size_t errlen)
{
    char line[256];
    base_err e = keyfile_parse(text, out, errbuf, errlen, line);
    proto_secret_wipe(line, sizeof(line)); /* it held the secret's hex */
    if (e != BASE_OK) {
        proto_secret_wipe(out, sizeof(*out));
    }
    return e;
}

base_err proto_auth_keyfile_format(const proto_auth_keyfile *kf, base_buf *out)
{
    char secret[2 * PROTO_AUTH_SECRET_BYTES + 1], salt[2 * PROTO_AUTH_SALT_BYTES + 1];
    char text[512];

    proto_auth_hex(kf->secret, PROTO_AUTH_SECRET_BYTES, secret);
    proto_auth_hex(kf->salt, PROTO_AUTH_SALT_BYTES, salt);
    int n = snprintf(text, sizeof(text),
                     "# rlfeed client key: keep this file private (mode 0600)\n"
                     "client = %s\nsecret = %s\nsalt = %s\n",
                     kf->client, secret, salt);
    base_err e = base_buf_append(out, text, (size_t)n);
    proto_secret_wipe(secret, sizeof(secret));
    proto_secret_wipe(text, sizeof(text));
    return e;
}

void proto_auth_nonce(char *out, size_t size)
{
    uint8_t raw[12];
    base_entropy_fill(raw, sizeof(raw));
    if (size >= 2 * sizeof(raw) + 1) {
        proto_auth_hex(raw, sizeof(raw), out);
    } else if (size > 0) {
        out[0] = '\0';
    }
}

/* ------------------------------------------------------------- msgpack */

/* The pair count and header size of the map at the start of @p; false when not a map. */
static bool map_header(const uint8_t *p, size_t len, uint32_t *n, size_t *hdr)
{
    if (len >= 1 && (p[0] & 0xf0) == 0x80) {
        *n = p[0] & 0x0f;
        *hdr = 1;
    } else if (len >= 3 && p[0] == 0xde) {
        *n = (uint32_t)p[1] << 8 | p[2];
        *hdr = 3;
    } else if (len >= 5 && p[0] == 0xdf) {
        *n = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
        *hdr = 5;
    } else {
        return false;
    }
    return true;
}

base_err proto_auth_sign(base_buf *msg, const char *client, const uint8_t key[PROTO_AUTH_KEY_BYTES],
                         int64_t ts_ms, const char *nonce)
{
    static const uint8_t zeros[PROTO_AUTH_MAC_BYTES];
    uint32_t n = 0;
    size_t hdr = 0;
    base_buf out;
    proto_writer w;
    base_err e;

    if (!map_header(msg->data, msg->len, &n, &hdr) || n == UINT32_MAX ||
        !proto_auth_name_ok(client, BASE_NAME_MAX) || nonce == NULL || nonce[0] == '\0' ||
        strlen(nonce) > BASE_ID_MAX || !base_utf8_valid(nonce, strlen(nonce))) {
        return BASE_EINVAL;
    }
    base_buf_init(&out, msg->max_bytes);
    proto_writer_init(&w, &out);
    proto_w_map(&w, n + 1);
    e = proto_writer_finish(&w);
    if (e == BASE_OK) {
        e = base_buf_append(&out, msg->data + hdr, msg->len - hdr);
    }
    if (e == BASE_OK) {
        proto_w_str(&w, "auth");
        proto_w_map(&w, 4);
        proto_w_str(&w, "client");
        proto_w_str(&w, client);
        proto_w_str(&w, "ts");
        proto_w_int(&w, ts_ms);
        proto_w_str(&w, "nonce");
        proto_w_str(&w, nonce);
        proto_w_str(&w, "mac");
        proto_w_bin(&w, zeros, sizeof(zeros));
        e = proto_writer_finish(&w);
    }
    if (e == BASE_OK) {
        const part whole = {out.data, out.len};
        if (!hmac_parts(key, PROTO_AUTH_KEY_BYTES, &whole, 1,
                        out.data + out.len - PROTO_AUTH_MAC_BYTES)) {
            e = BASE_ENOMEM;
        }
    }
    if (e == BASE_OK) {
        base_buf_reset(msg);
        e = base_buf_append(msg, out.data, out.len);
    }
    base_buf_fini(&out);
    return e;
}

bool proto_auth_verify_with(const proto_mac_key *k, const uint8_t *msg, size_t len,
                            const proto_auth *a)
{
    static const uint8_t zeros[PROTO_AUTH_MAC_BYTES];
    uint8_t want[PROTO_AUTH_MAC_BYTES];

    if (!a->present || a->mac_off > len || len - a->mac_off < PROTO_AUTH_MAC_BYTES) {
        return false;
    }
    const part parts[] = {
        {msg, a->mac_off},
        {zeros, PROTO_AUTH_MAC_BYTES},
        {msg + a->mac_off + PROTO_AUTH_MAC_BYTES, len - a->mac_off - PROTO_AUTH_MAC_BYTES}};
    mac_parts(k, parts, 3, want);
    return same_mac(want, a->mac);
}

bool proto_auth_verify(const uint8_t *msg, size_t len, const proto_auth *a,
                       const uint8_t key[PROTO_AUTH_KEY_BYTES])
{
    proto_mac_key k;
    mac_key_prepare(&k, key, PROTO_AUTH_KEY_BYTES);
    bool ok = proto_auth_verify_with(&k, msg, len, a);
    mbedtls_sha256_free(&k.inner);
    mbedtls_sha256_free(&k.outer);
    return ok;
}

/* ------------------------------------------------------------- HTTP */

static bool http_mac_with(const proto_mac_key *k, const char *client, int64_t ts_ms,
                          const char *nonce, const char *method, const char *target,
                          const uint8_t *body, size_t body_len, uint8_t out[PROTO_AUTH_MAC_BYTES])
{
    char ts[24];
    snprintf(ts, sizeof(ts), "%" PRId64, ts_ms);
    const part parts[] = {{PROTO_AUTH_SCHEME "\n", strlen(PROTO_AUTH_SCHEME) + 1},
                          {method, strlen(method)},
                          {"\n", 1},
                          {target, strlen(target)},
                          {"\n", 1},
                          {client, strlen(client)},
                          {"\n", 1},
                          {ts, strlen(ts)},
                          {"\n", 1},
                          {nonce, strlen(nonce)},
                          {"\n", 1},
                          {body, body_len}};
    mac_parts(k, parts, sizeof(parts) / sizeof(parts[0]), out);
    return true;
}

static bool http_mac(const uint8_t key[PROTO_AUTH_KEY_BYTES], const char *client, int64_t ts_ms,
                     const char *nonce, const char *method, const char *target, const uint8_t *body,
                     size_t body_len, uint8_t out[PROTO_AUTH_MAC_BYTES])
{
    proto_mac_key k;
    mac_key_prepare(&k, key, PROTO_AUTH_KEY_BYTES);
    bool ok = http_mac_with(&k, client, ts_ms, nonce, method, target, body, body_len, out);
    mbedtls_sha256_free(&k.inner);
    mbedtls_sha256_free(&k.outer);
    return ok;
}

/* A nonce in a header: 1..64 bytes of letters, digits, '-', '_' or '.'. */
static bool valid_http_nonce(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > BASE_ID_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.') {
            return false;
        }
    }
    return true;
}

base_err proto_auth_http_header(char *out, size_t size, const char *client,
                                const uint8_t key[PROTO_AUTH_KEY_BYTES], int64_t ts_ms,
                                const char *nonce, const char *method, const char *target,
                                const uint8_t *body, size_t body_len)
{
    uint8_t mac[PROTO_AUTH_MAC_BYTES];
    char hex[2 * PROTO_AUTH_MAC_BYTES + 1];

    if (!proto_auth_name_ok(client, BASE_NAME_MAX) || !valid_http_nonce(nonce)) {
        return BASE_EINVAL;
    }
    if (!http_mac(key, client, ts_ms, nonce, method, target, body, body_len, mac)) {
        return BASE_ENOMEM;
    }
    proto_auth_hex(mac, sizeof(mac), hex);
    int n = snprintf(out, size, PROTO_AUTH_SCHEME " client=%s, ts=%" PRId64 ", nonce=%s, mac=%s",
                     client, ts_ms, nonce, hex);
    return n > 0 && (size_t)n < size ? BASE_OK : BASE_ELIMIT;
}

base_err proto_auth_http_parse(const char *value, proto_auth *out, proto_error *err)
{
    const size_t scheme = strlen(PROTO_AUTH_SCHEME);
    char copy[512];
    bool have_client = false, have_ts = false, have_nonce = false, have_mac = false;

    memset(out, 0, sizeof(*out));
    if (strlen(value) >= sizeof(copy) || strncmp(value, PROTO_AUTH_SCHEME, scheme) != 0 ||
        value[scheme] != ' ') {
        return proto_error_set(err, PROTO_E_UNAUTHORIZED,
                               "Authorization must use the " PROTO_AUTH_SCHEME " scheme");
    }
    strcpy(copy, value + scheme + 1);
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        char *t = trim(tok), *eq = strchr(t, '=');
        if (eq == NULL) {
            return proto_error_set(err, PROTO_E_UNAUTHORIZED, "Authorization: expected NAME=VALUE");
        }
        *eq = '\0';
        const char *v = eq + 1;
        char *end = NULL;
        if (strcmp(t, "client") == 0 && !have_client && proto_auth_name_ok(v, BASE_NAME_MAX)) {
            strcpy(out->client, v);
            have_client = true;
        } else if (strcmp(t, "ts") == 0 && !have_ts && *v >= '0' && *v <= '9') {
            errno = 0;
            long long ts = strtoll(v, &end, 10);
            if (errno == ERANGE && *end == '\0') {
                /* As auth.ts over msgpack: 2^63 or more is no time, not a stale one. */
                return proto_error_set(err, PROTO_E_BAD_REQUEST,
                                       "field 'ts' must be a non-negative integer");
            }
            if (*end != '\0' || ts < 0) {
                break;
            }
            out->ts_ms = ts;
            have_ts = true;
        } else if (strcmp(t, "nonce") == 0 && !have_nonce && valid_http_nonce(v)) {
            strcpy(out->nonce, v);
            have_nonce = true;
        } else if (strcmp(t, "mac") == 0 && !have_mac &&
                   proto_auth_unhex(v, strlen(v), out->mac, PROTO_AUTH_MAC_BYTES)) {
            have_mac = true;
        } else {
            return proto_error_set(err, PROTO_E_UNAUTHORIZED,
                                   "Authorization: bad or repeated '%.8s'", t);
        }
    }
    if (!have_client || !have_ts || !have_nonce || !have_mac) {
        return proto_error_set(err, PROTO_E_UNAUTHORIZED,
                               "Authorization needs client, ts, nonce and mac");
    }
    out->present = true;
    return BASE_OK;
}

bool proto_auth_http_verify(const proto_auth *a, const uint8_t key[PROTO_AUTH_KEY_BYTES],
                            const char *method, const char *target, const uint8_t *body,
                            size_t body_len)
{
    uint8_t want[PROTO_AUTH_MAC_BYTES];
    return a->present &&
           http_mac(key, a->client, a->ts_ms, a->nonce, method, target, body, body_len, want) &&
           same_mac(want, a->mac);
}

bool proto_auth_http_verify_with(const proto_mac_key *k, const proto_auth *a, const char *method,
                                 const char *target, const uint8_t *body, size_t body_len)
{
    uint8_t want[PROTO_AUTH_MAC_BYTES];
    return a->present &&
           http_mac_with(k, a->client, a->ts_ms, a->nonce, method, target, body, body_len, want) &&
           same_mac(want, a->mac);
}

void proto_pseudonym_with(const proto_mac_key *k, const char *domain, const char *id, char *out)
{
    uint8_t mac[PROTO_AUTH_MAC_BYTES];
    if (id[0] == '\0') {
        out[0] = '\0';
        return;
    }
    const part parts[] = {{domain, strlen(domain)}, {"\n", 1}, {id, strlen(id)}};
    mac_parts(k, parts, 3, mac);
    out[0] = '~';
    proto_auth_hex(mac, (PROTO_PSEUDONYM_LEN - 1) / 2, out + 1);
}

void proto_pseudonym(const uint8_t key[PROTO_AUTH_KEY_BYTES], const char *domain, const char *id,
                     char *out)
{
    proto_mac_key k;
    mac_key_prepare(&k, key, PROTO_AUTH_KEY_BYTES);
    proto_pseudonym_with(&k, domain, id, out);
    mbedtls_sha256_free(&k.inner);
    mbedtls_sha256_free(&k.outer);
}
