/*
 * rlfeedd's TLS listeners (docs/security.md): a tls+tcp:// REQ/REP URL and an https://
 * http_url with a server certificate, and client certificates required (tls_client_ca).
 * Certificates are made for the test with the openssl command: a CA, the server's
 * (localhost, 127.0.0.1), a client's signed by the CA, and a rogue CA with a client of its
 * own. A client with a valid certificate is served; one without a certificate, with the
 * rogue one, or that does not trust the server's CA, is not. A TLS URL without a
 * certificate, or an unreadable certificate, stops the daemon at start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <nng/supplemental/tls/tls.h>

#include "base/alloc.h"
#include "client/rlfeed_client.h"
#include "daemon.h"
#include "proc.h"
#include "tap.h"

#define SHORT_MS 1500 /* a refused handshake shows as no reply: wait this long for it */

static char dir[512];

/* Run @step in the directory @d with sh. */
static bool sh(const char *step, const char *d)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "cd '%s' && %s", d, step);
    int st = system(cmd);
    return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* CA, server, client, rogue CA and rogue client under @d (quiet openssl commands). */
static bool make_certs(const char *d)
{
    static const char *const steps[] = {
        "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext",
        "for n in ca rogue; do openssl req -x509 -newkey ec -pkeyopt "
        "ec_paramgen_curve:prime256v1 -nodes -keyout $n.key -out $n.pem -days 2 "
        "-subj /CN=rlfeed-test-$n >/dev/null 2>&1 || exit 1; done",
        "for n in server client rclient; do openssl req -newkey ec -pkeyopt "
        "ec_paramgen_curve:prime256v1 -nodes -keyout $n.key -out $n.csr -subj /CN=$n "
        ">/dev/null 2>&1 || exit 1; done",
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out server.pem -days 2 -extfile san.ext >/dev/null 2>&1",
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out client.pem -days 2 >/dev/null 2>&1",
        "openssl x509 -req -in rclient.csr -CA rogue.pem -CAkey rogue.key "
        "-CAcreateserial -out rclient.pem -days 2 >/dev/null 2>&1",
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        if (!sh(steps[i], d)) {
            printf("# step %zu failed\n", i);
            return false;
        }
    }
    return true;
}

/*
 * Whether a REQ client over TLS with @ca, @cert (NULL: none), expecting the server's
 * certificate to name @name (NULL: the URL's host), gets a health reply within @ms.
 */
static bool served_as(const char *url, const char *ca, const char *cert, const char *name, int ms)
{
    char ca_path[600], cert_path[600], key_path[600];
    snprintf(ca_path, sizeof(ca_path), "%s/%s.pem", dir, ca);
    snprintf(cert_path, sizeof(cert_path), "%s/%s.pem", dir, cert != NULL ? cert : "");
    snprintf(key_path, sizeof(key_path), "%s/%s.key", dir, cert != NULL ? cert : "");
    rlfeed_tls tls = {ca_path, cert != NULL ? cert_path : NULL, cert != NULL ? key_path : NULL,
                      name};
    rlfeed_client *c = NULL;
    uint8_t *rep = NULL;
    size_t n = 0;
    rlfeed_reply r;
    bool ok = rlfeed_client_open_tls(url, ms, &tls, &c) == BASE_OK &&
              rlfeed_client_health(c, &rep, &n) == BASE_OK &&
              rlfeed_reply_decode(rep, n, &r) == BASE_OK && r.ok;
    base_free(rep);
    rlfeed_client_close(c);
    return ok;
}

/*
 * client.md: TLS files are read at the call: BASE_EIO unreadable, BASE_EINVAL refused, a
 * key_file without a cert_file, or a key that is not the certificate's.
 */
static void client_tls_files(const char *url)
{
    char missing[600], garbage[600];
    snprintf(missing, sizeof(missing), "%s/no-such-ca.pem", dir);
    snprintf(garbage, sizeof(garbage), "%s/garbage.pem", dir);
    FILE *fp = fopen(garbage, "w");
    if (fp != NULL) {
        fputs("not a certificate\n", fp);
        fclose(fp);
    }
    const struct {
        const char *ca;
        base_err want;
    } cases[] = {{missing, BASE_EIO}, {dir, BASE_EIO}, {garbage, BASE_EINVAL}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rlfeed_tls tls = {cases[i].ca, NULL, NULL, "localhost"};
        rlfeed_client *c = NULL;
        TST_EQ(rlfeed_client_open_tls(url, SHORT_MS, &tls, &c), cases[i].want);
        TST_TRUE(c == NULL);
        rlfeed_client_close(c);
    }
    /* A client certificate with another's key (the server's), or a key with no certificate. */
    char ca[600], cert[600], key[600];
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    snprintf(cert, sizeof(cert), "%s/client.pem", dir);
    snprintf(key, sizeof(key), "%s/server.key", dir);
    const rlfeed_tls pairs[] = {{ca, cert, key, "localhost"}, {ca, NULL, key, "localhost"}};
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        rlfeed_client *c = NULL;
        rlfeed_push *p = NULL;
        TST_EQ(rlfeed_client_open_tls(url, SHORT_MS, &pairs[i], &c), BASE_EINVAL);
        TST_EQ(rlfeed_push_open_tls(url, SHORT_MS, &pairs[i], &p), BASE_EINVAL);
        TST_TRUE(c == NULL && p == NULL);
        rlfeed_client_close(c);
        rlfeed_push_close(p);
    }
}

/*
 * served_as() naming the server as its certificate does (mbedTLS 2.28 matches DNS names).
 * served() expects a reply, so it waits as long as a busy machine may need; refused()
 * expects none, which shows only as no reply within SHORT_MS.
 */
static bool served(const char *url, const char *ca, const char *cert)
{
    return served_as(url, ca, cert, "localhost", TST_CLIENT_TIMEOUT_MS);
}

static bool refused(const char *url, const char *ca, const char *cert)
{
    return !served_as(url, ca, cert, "localhost", SHORT_MS);
}

/* GET @path over https with the CA and (when @with_cert) the client certificate. */
static int https_status(const char *base, const char *path, bool with_cert)
{
    char full[700], p1[600], p2[600];
    nng_url *u = NULL;
    nng_http_client *cl = NULL;
    nng_http_req *req = NULL;
    nng_http_res *res = NULL;
    nng_aio *aio = NULL;
    nng_tls_config *t = NULL;
    int status = -1;

    snprintf(full, sizeof(full), "%s%s", base, path);
    snprintf(p1, sizeof(p1), "%s/ca.pem", dir);
    if (nng_url_parse(&u, full) != 0 || nng_http_client_alloc(&cl, u) != 0 ||
        nng_tls_config_alloc(&t, NNG_TLS_MODE_CLIENT) != 0 || nng_tls_config_ca_file(t, p1) != 0 ||
        nng_tls_config_server_name(t, "localhost") != 0) {
        goto done;
    }
    if (with_cert) {
        snprintf(p1, sizeof(p1), "%s/client.pem", dir);
        snprintf(p2, sizeof(p2), "%s/client.key", dir);
        FILE *a = fopen(p1, "r"), *b = fopen(p2, "r");
        char cert[8192] = "", key[8192] = "";
        size_t na = a != NULL ? fread(cert, 1, sizeof(cert) - 1, a) : 0;
        size_t nb = b != NULL ? fread(key, 1, sizeof(key) - 1, b) : 0;
        cert[na] = '\0';
        key[nb] = '\0';
        if (a != NULL) {
            fclose(a);
        }
        if (b != NULL) {
            fclose(b);
        }
        if (nng_tls_config_own_cert(t, cert, key, NULL) != 0) {
            goto done;
        }
    }
    if (nng_http_client_set_tls(cl, t) != 0 || nng_http_req_alloc(&req, u) != 0 ||
        nng_http_res_alloc(&res) != 0 || nng_aio_alloc(&aio, NULL, NULL) != 0) {
        goto done;
    }
    /*
     * A refusal shows as no reply, so it is waited for SHORT_MS; an answer may take longer on
     * a busy machine (a handshake and a request; a fresh-clone run once took over 1.5 s).
     */
    nng_aio_set_timeout(aio, with_cert ? TST_CLIENT_TIMEOUT_MS : SHORT_MS);
    nng_http_client_transact(cl, req, res, aio);
    nng_aio_wait(aio);
    if (nng_aio_result(aio) == 0) {
        status = nng_http_res_get_status(res);
    } else if (with_cert) {
        printf("# https %s: %s\n", full, nng_strerror(nng_aio_result(aio)));
    }
done:
    nng_aio_free(aio);
    nng_http_res_free(res);
    nng_http_req_free(req);
    nng_http_client_free(cl);
    nng_tls_config_free(t);
    nng_url_free(u);
    return status;
}

/* rlfeedd --check on @config: its exit status, the output in DIR/check.log. */
static int check_config(const char *config, const char *const *extra)
{
    char conf[600], log[600];
    snprintf(conf, sizeof(conf), "%s/check.ini", dir);
    snprintf(log, sizeof(log), "%s/check.log", dir);
    FILE *fp = fopen(conf, "w");
    if (fp == NULL) {
        return -1;
    }
    fputs(config, fp);
    fclose(fp);
    (void)unlink(log); /* the spawn appends: each run's words alone */
    const char *args[8] = {"--config", conf, NULL};
    int n = 2;
    for (int i = 0; extra != NULL && extra[i] != NULL && n < 7; i++) {
        args[n++] = extra[i];
    }
    args[n] = NULL;
    return tst_run("RLFEEDD", args, log, 10000);
}

static void config_errors(void)
{
    char text[2048], log[600];
    snprintf(log, sizeof(log), "%s/check.log", dir);
    const char *pol = "[policy t]\ndim = 4\nactions = a, b\nsignal.s = 1\n";

    snprintf(text, sizeof(text), "[server]\nurl = tls+tcp://127.0.0.1:7450\n%s", pol);
    TST_EQ(check_config(text, NULL), 2);
    TST_TRUE(tst_file_has(log, "tls+tcp://127.0.0.1:7450 needs [server] tls_cert"));
    snprintf(text, sizeof(text), "[server]\nhttp_url = https://127.0.0.1:0\n%s", pol);
    TST_EQ(check_config(text, NULL), 2);
    /* Every TLS scheme nng listens on, in any case, needs the certificate too. */
    static const char *const tls_urls[] = {"TLS+TCP://127.0.0.1:7450", "wss4://127.0.0.1:7450/r",
                                           "Wss6://[::1]:7450/r", "HTTPS://127.0.0.1:0"};
    for (size_t i = 0; i < sizeof(tls_urls) / sizeof(tls_urls[0]); i++) {
        snprintf(text, sizeof(text), "[server]\n%s = %s\n%s",
                 strncasecmp(tls_urls[i], "https", 5) == 0 ? "http_url" : "url", tls_urls[i], pol);
        TST_EQ(check_config(text, NULL), 2);
        TST_TRUE(tst_file_has(log, "needs [server] tls_cert"));
    }
    /* A flag that replaces the file's TLS listener: nothing needs the certificate then. */
    snprintf(text, sizeof(text), "[server]\nurl = tls+tcp://127.0.0.1:7450\n%s", pol);
    const char *plain[] = {"--url", "ipc:///tmp/rlfeed-tls-none.sock", "--check", NULL};
    TST_EQ(check_config(text, plain), 0);
    snprintf(text, sizeof(text), "[server]\nhttp_url = https://127.0.0.1:0\n%s", pol);
    const char *no_http[] = {"--http-url", "", "--check", NULL};
    TST_EQ(check_config(text, no_http), 0);
    /* The flag is checked after the file: the file alone is fine. */
    snprintf(text, sizeof(text), "%s", pol);
    const char *flag[] = {"--url", "tls+tcp://127.0.0.1:7450", "--check", NULL};
    TST_EQ(check_config(text, flag), 2);
    snprintf(text, sizeof(text), "[server]\ntls_client_ca = /x.pem\n%s", pol);
    TST_EQ(check_config(text, NULL), 2);
    TST_TRUE(tst_file_has(log, "need tls_cert"));
    /* A TLS listener beyond loopback needs no insecure = true. */
    snprintf(text, sizeof(text),
             "[server]\nurl = tls+tcp://0.0.0.0:7450\ntls_cert = %s/server.pem\n"
             "tls_key = %s/server.key\nhttp_url =\n%s",
             dir, dir, pol);
    const char *check[] = {"--check", NULL};
    TST_EQ(check_config(text, check), 0);
    /*
     * Files the start reads and refuses stop it (exit 1), and --check, which reads them too:
     * an unreadable certificate; another certificate's key (nng would take it and fail every
     * handshake).
     */
    static const struct {
        const char *cert, *key, *needle;
    } bad_files[] = {
        {"nope.pem", "server.key", "tls_cert"},
        {"server.pem", "client.key", "client.key is not the key of the certificate in tls_cert"},
    };
    for (size_t i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
        snprintf(text, sizeof(text),
                 "[server]\nurl = tls+tcp://127.0.0.1:0\ntls_cert = %s/%s\ntls_key = %s/%s\n"
                 "http_url =\nredis = unix:/nonexistent/redis.sock\n%s",
                 dir, bad_files[i].cert, dir, bad_files[i].key, pol);
        for (int with_check = 0; with_check < 2; with_check++) {
            TST_EQ(check_config(text, with_check ? check : NULL), 1);
            TST_TRUE(tst_file_has(log, bad_files[i].needle));
            TST_TRUE(tst_file_has(log, bad_files[i].cert));
        }
    }
}

int main(void)
{
    tst_daemon f;
    char config[2048], tls_url[128], urls[800];
    char *d = tst_mkdtemp("rlfeed-tls");
    if (d == NULL) {
        printf("Bail out! no temp dir\n");
        return 1;
    }
    snprintf(dir, sizeof(dir), "%s", d);
    if (!make_certs(dir)) {
        printf("Bail out! openssl could not make the test certificates\n");
        tst_rm_rf(d);
        free(d);
        return 1;
    }
    config_errors();

    snprintf(tls_url, sizeof(tls_url), "tls+tcp://127.0.0.1:%d", tst_free_port());
    snprintf(config, sizeof(config),
             "[server]\ntls_cert = %s/server.pem\ntls_key = %s/server.key\n"
             "tls_client_ca = %s/ca.pem\nhttp_url = https://127.0.0.1:0\n"
             "[policy t]\ndim = 4\nactions = a, b\nsignal.s = 1\n",
             dir, dir, dir);
    if (!tst_daemon_init(&f, "rlfeed-tls-daemon", config)) {
        printf("Bail out! fixture\n");
        tst_daemon_fini(&f, false);
        return 1;
    }
    snprintf(urls, sizeof(urls), "%s,%s", f.url, tls_url);
    const char *extra[] = {"--url", urls, NULL};
    bool up = tst_daemon_start(&f, true, extra);
    TST_TRUE(up);
    if (up) {
        TST_TRUE(served(tls_url, "ca", "client"));
        TST_TRUE(refused(tls_url, "ca", NULL));        /* no client certificate */
        TST_TRUE(refused(tls_url, "ca", "rclient"));   /* one the CA did not sign */
        TST_TRUE(refused(tls_url, "rogue", "client")); /* the client does not trust the server */
        TST_TRUE(served(tls_url, "ca", "client"));     /* and still serves good clients */
        /* The server's name is checked: one its certificate does not hold is refused, and
         * without a name the URL's host is checked (127.0.0.1 is no DNS name of it). */
        TST_TRUE(!served_as(tls_url, "ca", "client", "other.example", SHORT_MS));
        TST_TRUE(!served_as(tls_url, "ca", "client", NULL, SHORT_MS));
        client_tls_files(tls_url);
        TST_TRUE(strncmp(f.http_url, "https://127.0.0.1:", 18) == 0);
        /* Served: a fresh-clone run once had one attempt fail on a loaded machine. */
        int st = -1;
        for (int k = 0; k < 3 && st != 200; k++) {
            st = https_status(f.http_url, "/healthz", true);
        }
        TST_EQ(st, 200);
        TST_EQ(https_status(f.http_url, "/healthz", false), -1);
        TST_EQ(tst_daemon_stop(&f), 0);
    }
    tst_daemon_fini(&f, tst_failed > 0);
    tst_rm_rf(d);
    free(d);
    return tst_done();
}
