/*
 * rlfeedd: the rlfeed daemon. Parses arguments, loads the configuration,
 * and runs the daemon until SIGINT or SIGTERM (service/daemon.h).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "policy/numerics.h"
#include "proto/auth.h"
#include "service/config.h"
#include "service/daemon.h"
#include "service/tls.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: rlfeedd --config FILE [options]\n"
               "  --config FILE        INI configuration (docs/configuration.md)\n"
               "  --url URL[,URL...]   REQ/REP listen URLs, replace [server] url\n"
               "  --pull-url URL       PULL listen URL for fire-and-forget feedback\n"
               "  --http-url URL       HTTP listen URL for /healthz, /readyz, /metrics,\n"
               "                       /dashboard and /api/v1 (default\n"
               "                       http://127.0.0.1:9808; \"\": none)\n"
               "  --redis URL          use this Redis (tcp://HOST:PORT, redis://HOST:PORT,\n"
               "                       unix:/PATH, cluster://HOST:PORT[,...]; a password as\n"
               "                       tcp://:PASSWORD@HOST:PORT or unix://:PASSWORD@/PATH:\n"
               "                       better in the config file) instead of starting a\n"
               "                       private redis-server\n"
               "  --data-dir DIR       data directory of the private redis-server\n"
               "  --appendfsync MODE   always (default), everysec or no\n"
               "  --log-level LEVEL    debug, info (default), warn or error\n"
               "  --log-format FORMAT  text (default) or json, replaces [server] log_format\n"
               "  --check              load and validate the configuration, then exit\n"
               "  --manual-clock MS    tests only: the service clock starts at MS and moves\n"
               "                       only by the 'clock' op\n"
               "  --help\n");
}

/*
 * For --check: the files the start reads, read as it reads them (the TLS certificate and
 * key, the client CAs, the pseudonym key); false, said on stderr, where the start would stop.
 */
static bool files_load(const svc_config *cfg)
{
    char err[512] = "";
    struct nng_tls_config *tls = NULL;
    bool ok = svc_tls_server(cfg, &tls, err, sizeof(err)) == BASE_OK;
    svc_tls_free(tls);
    if (!ok) {
        fprintf(stderr, "rlfeedd: %s\n", err);
        return false;
    }
    uint8_t key[PROTO_AUTH_KEY_BYTES];
    ok = cfg->pseudonym_key[0] == '\0' ||
         proto_pseudonym_key_load(cfg->pseudonym_key, key, err, sizeof(err));
    mbedtls_platform_zeroize(key, sizeof(key)); /* read to be checked, not kept */
    if (!ok) {
        fprintf(stderr, "rlfeedd: [server] pseudonym_key %s: %s\n", cfg->pseudonym_key, err);
    }
    return ok;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"url", required_argument, NULL, 'u'},
        {"pull-url", required_argument, NULL, 'p'},
        {"http-url", required_argument, NULL, 't'},
        {"redis", required_argument, NULL, 'r'},
        {"data-dir", required_argument, NULL, 'd'},
        {"appendfsync", required_argument, NULL, 'a'},
        {"log-level", required_argument, NULL, 'l'},
        {"log-format", required_argument, NULL, 'f'},
        {"check", no_argument, NULL, 'k'},
        {"manual-clock", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* Flags that override [server] keys, applied in this order after the file is loaded. */
    static const char *const names[] = {"url",         "pull-url",   "redis",   "data-dir",
                                        "appendfsync", "log-format", "http-url"};
    const char *values[] = {NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    const char *path = NULL;
    int check_only = 0;
    long long manual_clock = -1;
    int c;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'u':
            values[0] = optarg;
            break;
        case 'p':
            values[1] = optarg;
            break;
        case 'r':
            values[2] = optarg;
            break;
        case 'd':
            values[3] = optarg;
            break;
        case 'a':
            values[4] = optarg;
            break;
        case 'f':
            values[5] = optarg;
            break;
        case 't':
            values[6] = optarg;
            break;
        case 'k':
            check_only = 1;
            break;
        case 'm': {
            char *end = NULL;
            manual_clock = strtoll(optarg, &end, 10);
            if (end == optarg || *end != '\0' || manual_clock < 0 ||
                manual_clock > BASE_CLOCK_MAX_MS) {
                fprintf(stderr, "rlfeedd: --manual-clock needs a time in ms, 0 .. %lld\n",
                        BASE_CLOCK_MAX_MS);
                return 2;
            }
            break;
        }
        case 'l':
            if (strcmp(optarg, "debug") == 0) {
                base_log_set_level(BASE_LOG_DEBUG);
            } else if (strcmp(optarg, "info") == 0) {
                base_log_set_level(BASE_LOG_INFO);
            } else if (strcmp(optarg, "warn") == 0) {
                base_log_set_level(BASE_LOG_WARN);
            } else if (strcmp(optarg, "error") == 0) {
                base_log_set_level(BASE_LOG_ERROR);
            } else {
                fprintf(stderr,
                        "rlfeedd: --log-level: unknown level \"%s\" (debug, info, warn or "
                        "error)\n",
                        optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (path == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    pol_numerics_init();
    base_alloc_tune_server();

    svc_config *cfg = base_alloc_zero(1, sizeof(*cfg));
    if (cfg == NULL) {
        fprintf(stderr, "rlfeedd: out of memory\n");
        return 1;
    }
    char err[512] = "";
    if (svc_config_load(path, cfg, err, sizeof(err)) != BASE_OK) {
        fprintf(stderr, "rlfeedd: %s: %s\n", path, err);
        base_free(cfg);
        return 2;
    }
    int rc = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && rc == 0; i++) {
        if (values[i] != NULL &&
            svc_config_apply_flag(cfg, names[i], values[i], err, sizeof(err)) != BASE_OK) {
            fprintf(stderr, "rlfeedd: %s\n", err);
            rc = 2;
        }
    }
    base_log_set_format(strcmp(cfg->log_format, "json") == 0 ? BASE_LOG_JSON : BASE_LOG_TEXT);
    if (rc == 0 && (svc_config_check_tls(cfg, err, sizeof(err)) != BASE_OK ||
                    svc_config_check_storage(cfg, err, sizeof(err)) != BASE_OK ||
                    svc_config_check_exposure(cfg, NULL, 0, err, sizeof(err)) != BASE_OK)) {
        fprintf(stderr, "rlfeedd: %s\n", err);
        rc = 2;
    } else if (rc == 0) {
        char warning[3 * SVC_URL_MAX + 160];
        if (svc_config_exposure_warning(cfg, warning, sizeof(warning))) {
            base_log(BASE_LOG_WARN, "%s", warning);
        }
    }
    if (rc == 0 && check_only && !files_load(cfg)) {
        rc = 1; /* as the start would fail */
    } else if (rc == 0 && check_only) {
        printf("%s: ok (%u policies)\n", path, cfg->n_policies);
    } else if (rc == 0) {
        rc = svc_daemon_run(cfg, (int64_t)manual_clock) == BASE_OK ? 0 : 1;
    }
    svc_config_fini(cfg);
    base_free(cfg);
    return rc;
}
