/*
 * Unit tests for proto/auth.c: key derivation and stored form, key files, signing a
 * msgpack request and verifying it (every byte covered), the decoder's "auth" entry, and
 * the HTTP Authorization header.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "proto/auth.h"
#include "proto/json.h"
#include "proto/mp.h"
#include "proto/request.h"
#include "tap.h"

static const uint8_t secret[PROTO_AUTH_SECRET_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8};
static const uint8_t salt[PROTO_AUTH_SALT_BYTES] = {9, 9, 9};

static void derivation_depends_on_secret_and_salt(void)
{
    uint8_t k1[PROTO_AUTH_KEY_BYTES], k2[PROTO_AUTH_KEY_BYTES], s2[PROTO_AUTH_SALT_BYTES];
    char stored[PROTO_AUTH_KEY_STRING_LEN + 1];
    uint8_t back_salt[PROTO_AUTH_SALT_BYTES], back_key[PROTO_AUTH_KEY_BYTES];

    proto_auth_derive(secret, salt, k1);
    proto_auth_derive(secret, salt, k2);
    TST_TRUE(memcmp(k1, k2, sizeof(k1)) == 0);
    memcpy(s2, salt, sizeof(s2));
    s2[15] ^= 1;
    proto_auth_derive(secret, s2, k2);
    TST_TRUE(memcmp(k1, k2, sizeof(k1)) != 0);
    /* The derived key is neither the secret nor all zeros. */
    TST_TRUE(memcmp(k1, secret, sizeof(k1)) != 0);

    proto_auth_key_string(salt, k1, stored);
    TST_EQ(strlen(stored), (size_t)PROTO_AUTH_KEY_STRING_LEN);
    TST_TRUE(strncmp(stored, "s1$", 3) == 0);
    TST_TRUE(proto_auth_key_parse(stored, back_salt, back_key));
    TST_TRUE(memcmp(back_salt, salt, sizeof(salt)) == 0 && memcmp(back_key, k1, sizeof(k1)) == 0);
    stored[10] = 'x';
    TST_TRUE(!proto_auth_key_parse(stored, back_salt, back_key));
    TST_TRUE(!proto_auth_key_parse("s1$00", back_salt, back_key));
    TST_TRUE(!proto_auth_key_parse("", back_salt, back_key));
}

static void key_files_round_trip_and_refuse_garbage(void)
{
    proto_auth_keyfile kf, back;
    base_buf b;
    char why[160];

    memset(&kf, 0, sizeof(kf));
    strcpy(kf.client, "frontend-1");
    memcpy(kf.secret, secret, sizeof(secret));
    memcpy(kf.salt, salt, sizeof(salt));
    base_buf_init(&b, 4096);
    TST_OK(proto_auth_keyfile_format(&kf, &b));
    TST_OK(base_buf_append(&b, "", 1));
    TST_OK(proto_auth_keyfile_parse((const char *)b.data, &back, why, sizeof(why)));
    TST_STREQ(back.client, "frontend-1");
    uint8_t k[PROTO_AUTH_KEY_BYTES];
    proto_auth_derive(secret, salt, k);
    TST_TRUE(memcmp(back.key, k, sizeof(k)) == 0);
    base_buf_fini(&b);

    static const char *const bad[] = {
        "client = a\nsecret = 00\nsalt = 09090900000000000000000000000000\n",
        "client = a\nsalt = 09090900000000000000000000000000\n",
        "client = a b\nsecret = "
        "0102030405060708000000000000000000000000000000000000000000000000\nsalt = "
        "09090900000000000000000000000000\n",
        "colour = red\n",
        "client\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        TST_EQ(proto_auth_keyfile_parse(bad[i], &back, why, sizeof(why)), BASE_EINVAL);
        TST_TRUE(why[0] != '\0');
    }
}

/* A stats request map of @n_extra + 3 pairs (so the header form can be chosen). */
static void stats_with_pairs(base_buf *b, uint32_t n_extra)
{
    proto_writer w;
    base_buf_reset(b);
    proto_writer_init(&w, b);
    proto_w_map(&w, 3 + n_extra);
    proto_w_str(&w, "v");
    proto_w_int(&w, 1);
    proto_w_str(&w, "op");
    proto_w_str(&w, "stats");
    proto_w_str(&w, "policy");
    proto_w_str(&w, "faq");
    for (uint32_t i = 0; i < n_extra; i++) {
        char key[16];
        snprintf(key, sizeof(key), "x%u", i);
        proto_w_str(&w, key);
        proto_w_int(&w, i);
    }
    (void)proto_writer_finish(&w);
}

static void signed_requests_verify_and_every_byte_counts(void)
{
    uint8_t k[PROTO_AUTH_KEY_BYTES], other[PROTO_AUTH_KEY_BYTES];
    base_buf b;
    proto_request r;
    proto_error err;

    proto_auth_derive(secret, salt, k);
    memcpy(other, k, sizeof(k));
    other[0] ^= 0x80;
    base_buf_init(&b, 1u << 20);
    /* 3 + 12 = 15 pairs: signing makes 16, which no longer fits a fixmap header. */
    uint32_t extras[] = {0, 12, 13};
    for (size_t t = 0; t < 3; t++) {
        stats_with_pairs(&b, extras[t]);
        TST_OK(proto_auth_sign(&b, "fe", k, 1700000000123, "n-1"));
        TST_OK(proto_request_decode(b.data, b.len, &r, &err));
        TST_TRUE(r.auth.present);
        TST_STREQ(r.auth.client, "fe");
        TST_EQ(r.auth.ts_ms, 1700000000123);
        TST_STREQ(r.auth.nonce, "n-1");
        TST_STREQ(r.policy, "faq");
        TST_EQ(r.auth.mac_off, b.len - PROTO_AUTH_MAC_BYTES);
        TST_TRUE(proto_auth_verify(b.data, b.len, &r.auth, k));
        TST_TRUE(!proto_auth_verify(b.data, b.len, &r.auth, other));
        proto_request_fini(&r);
    }
    /* Flipping any byte outside the mac breaks the proof (or the message). */
    size_t broken = 0, n = b.len - PROTO_AUTH_MAC_BYTES;
    for (size_t i = 0; i < n; i++) {
        b.data[i] ^= 0x01;
        bool ok = proto_request_decode(b.data, b.len, &r, &err) == BASE_OK && r.auth.present &&
                  proto_auth_verify(b.data, b.len, &r.auth, k);
        broken += !ok;
        proto_request_fini(&r);
        b.data[i] ^= 0x01;
    }
    TST_EQ(broken, n);
    /* A request that is not a map cannot be signed; a bad nonce or client neither. */
    base_buf_reset(&b);
    TST_OK(base_buf_append(&b, "\x93\x01\x02\x03", 4));
    TST_EQ(proto_auth_sign(&b, "fe", k, 1, "n"), BASE_EINVAL);
    TST_EQ(b.len, (size_t)4);
    stats_with_pairs(&b, 0);
    TST_EQ(proto_auth_sign(&b, "fe", k, 1, ""), BASE_EINVAL);
    TST_EQ(proto_auth_sign(&b, "f e", k, 1, "n"), BASE_EINVAL);
    base_buf_fini(&b);
}

static void decoder_checks_the_shape_of_auth(void)
{
    static const struct {
        const char *json;
        const char *why;
    } bad[] = {
        {"{\"v\":1,\"op\":\"health\",\"auth\":1}", "auth must be a map"},
        {"{\"v\":1,\"op\":\"health\",\"auth\":{\"ts\":1,\"nonce\":\"n\"}}",
         "missing field 'auth.client'"},
        {"{\"v\":1,\"op\":\"health\",\"auth\":{\"client\":\"a\",\"nonce\":\"n\"}}",
         "missing field 'auth.ts'"},
        {"{\"v\":1,\"op\":\"health\",\"auth\":{\"client\":\"a\",\"ts\":-1,\"nonce\":\"n\"}}",
         "field 'auth.ts' must be a non-negative integer"},
        {"{\"v\":1,\"op\":\"health\",\"auth\":{\"client\":\"a\",\"ts\":1}}",
         "missing field 'auth.nonce'"},
        {"{\"v\":1,\"op\":\"health\",\"auth\":{\"client\":\"a\",\"ts\":1,\"nonce\":\"n\",\"mac\":"
         "\"00\"}}",
         "field 'auth.mac' must be a bin of 32 bytes"},
    };
    base_buf b;
    proto_request r;
    proto_error err;
    base_buf_init(&b, 4096);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char why[160];
        base_buf_reset(&b);
        TST_OK(proto_json_to_msgpack(bad[i].json, &b, why, sizeof(why)));
        TST_EQ(proto_request_decode(b.data, b.len, &r, &err), BASE_EINVAL);
        TST_EQ(err.code, PROTO_E_BAD_REQUEST);
        TST_STREQ(err.message, bad[i].why);
    }
    /* Without "auth" a request decodes as before, with no proof. */
    base_buf_reset(&b);
    stats_with_pairs(&b, 0);
    TST_OK(proto_request_decode(b.data, b.len, &r, &err));
    TST_TRUE(!r.auth.present);
    base_buf_fini(&b);
}

static void http_headers_round_trip_and_cover_the_request(void)
{
    uint8_t k[PROTO_AUTH_KEY_BYTES];
    char hdr[512];
    proto_auth a;
    proto_error err;
    const uint8_t body[] = "{\"policy\":\"faq\"}";
    size_t blen = sizeof(body) - 1;

    proto_auth_derive(secret, salt, k);
    TST_OK(proto_auth_http_header(hdr, sizeof(hdr), "fe", k, 42, "abc", "POST", "/api/v1/decide",
                                  body, blen));
    TST_TRUE(strncmp(hdr, "RLFEED-HMAC-SHA256 client=fe, ts=42, nonce=abc, mac=", 52) == 0);
    TST_OK(proto_auth_http_parse(hdr, &a, &err));
    TST_STREQ(a.client, "fe");
    TST_EQ(a.ts_ms, 42);
    TST_TRUE(proto_auth_http_verify(&a, k, "POST", "/api/v1/decide", body, blen));
    TST_TRUE(!proto_auth_http_verify(&a, k, "GET", "/api/v1/decide", body, blen));
    TST_TRUE(!proto_auth_http_verify(&a, k, "POST", "/api/v1/log", body, blen));
    TST_TRUE(!proto_auth_http_verify(&a, k, "POST", "/api/v1/decide", body, blen - 1));
    TST_EQ(proto_auth_http_header(hdr, 40, "fe", k, 42, "abc", "GET", "/", NULL, 0), BASE_ELIMIT);
    TST_EQ(proto_auth_http_header(hdr, sizeof(hdr), "fe", k, 42, "a b", "GET", "/", NULL, 0),
           BASE_EINVAL);

    static const char *const bad[] = {
        "Bearer abc",
        "RLFEED-HMAC-SHA256 client=fe, ts=42, nonce=abc",
        "RLFEED-HMAC-SHA256 client=fe, ts=x, nonce=abc, mac=00",
        "RLFEED-HMAC-SHA256 client=fe, client=fe, ts=1, nonce=abc, mac=00",
        "RLFEED-HMAC-SHA256 client=fe ts=1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        TST_EQ(proto_auth_http_parse(bad[i], &a, &err), BASE_EINVAL);
        TST_EQ(err.code, PROTO_E_UNAUTHORIZED);
        TST_TRUE(!a.present);
    }
    /* A ts of 2^63 or more is no time (bad_request, as auth.ts over msgpack), not a stale one. */
    char big[256];
    TST_OK(proto_auth_http_header(hdr, sizeof(hdr), "fe", k, 42, "abc", "GET", "/", NULL, 0));
    const char *mac = strstr(hdr, "mac=");
    snprintf(big, sizeof(big),
             "RLFEED-HMAC-SHA256 client=fe, ts=9223372036854775808, nonce=abc, %s",
             mac != NULL ? mac : "mac=00");
    TST_EQ(proto_auth_http_parse(big, &a, &err), BASE_EINVAL);
    TST_EQ(err.code, PROTO_E_BAD_REQUEST);
    TST_TRUE(!a.present);
}

static void pseudonyms_are_keyed_and_separate_domains(void)
{
    uint8_t k[PROTO_AUTH_KEY_BYTES], k2[PROTO_AUTH_KEY_BYTES];
    char a[PROTO_PSEUDONYM_LEN + 1], b[PROTO_PSEUDONYM_LEN + 1];
    proto_auth_derive(secret, salt, k);
    memcpy(k2, k, sizeof(k));
    k2[31] ^= 1;
    proto_pseudonym(k, "user", "cust-991", a);
    TST_EQ(strlen(a), (size_t)PROTO_PSEUDONYM_LEN);
    TST_TRUE(a[0] == '~' && strspn(a + 1, "0123456789abcdef") == PROTO_PSEUDONYM_LEN - 1);
    TST_TRUE(strstr(a, "cust") == NULL);
    proto_pseudonym(k, "user", "cust-991", b);
    TST_STREQ(a, b);
    proto_pseudonym(k, "conversation", "cust-991", b);
    TST_TRUE(strcmp(a, b) != 0);
    proto_pseudonym(k2, "user", "cust-991", b);
    TST_TRUE(strcmp(a, b) != 0);
    proto_pseudonym(k, "user", "cust-992", b);
    TST_TRUE(strcmp(a, b) != 0);
    proto_pseudonym(k, "user", "", b);
    TST_STREQ(b, "");
}

/* Write @text to DIR/NAME with @mode; the path in @out. */
static bool key_file(const char *dir, const char *name, const char *text, mode_t mode, char *out,
                     size_t size)
{
    snprintf(out, size, "%s/%s", dir, name);
    FILE *fp = fopen(out, "w");
    bool ok = fp != NULL && fputs(text, fp) >= 0;
    ok = fp != NULL && fclose(fp) == 0 && ok;
    return ok && chmod(out, mode) == 0;
}

/* The pseudonym key file: 64 hex digits, readable by its owner alone (docs/security.md). */
static void pseudonym_key_files(void)
{
    char dir[] = "/tmp/rlfeed-pkey.XXXXXX", path[128], why[160];
    uint8_t key[PROTO_AUTH_KEY_BYTES];
    const char *hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
    if (mkdtemp(dir) == NULL) {
        TST_TRUE(0 && "mkdtemp");
        return;
    }
    TST_TRUE(key_file(dir, "ok", hex, 0600, path, sizeof(path)));
    TST_TRUE(proto_pseudonym_key_load(path, key, why, sizeof(why)));
    TST_TRUE(key[0] == 0 && key[31] == 31);
    TST_TRUE(key_file(dir, "open", hex, 0644, path, sizeof(path)));
    TST_TRUE(!proto_pseudonym_key_load(path, key, why, sizeof(why)));
    TST_STREQ(why, "open to group or others (mode 0644): chmod 600 it");
    TST_TRUE(key_file(dir, "group", hex, 0640, path, sizeof(path)));
    TST_TRUE(!proto_pseudonym_key_load(path, key, why, sizeof(why)));
    TST_TRUE(key_file(dir, "short", "0a0b\n", 0600, path, sizeof(path)));
    TST_TRUE(!proto_pseudonym_key_load(path, key, why, sizeof(why)));
    TST_TRUE(strstr(why, "not 64 hex digits") != NULL);
    snprintf(path, sizeof(path), "%s/none", dir);
    TST_TRUE(!proto_pseudonym_key_load(path, key, why, sizeof(why)));
    TST_STREQ(why, "No such file or directory");
    /* A FIFO or a directory is no key file: refused at once, the open does not block. */
    snprintf(path, sizeof(path), "%s/fifo", dir);
    TST_EQ(mkfifo(path, 0600), 0);
    TST_TRUE(!proto_pseudonym_key_load(path, key, why, sizeof(why)));
    TST_STREQ(why, "not a regular file");
    TST_TRUE(!proto_pseudonym_key_load(dir, key, why, sizeof(why)));
    TST_STREQ(why, "not a regular file");
    const char *names[] = {"ok", "open", "group", "short", "fifo"};
    for (size_t i = 0; i < 5; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        (void)unlink(path);
    }
    (void)rmdir(dir);
}

int main(void)
{
    derivation_depends_on_secret_and_salt();
    key_files_round_trip_and_refuse_garbage();
    signed_requests_verify_and_every_byte_counts();
    decoder_checks_the_shape_of_auth();
    http_headers_round_trip_and_cover_the_request();
    pseudonyms_are_keyed_and_separate_domains();
    pseudonym_key_files();
    return tst_done();
}
