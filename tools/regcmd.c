/* Options, connection and time helpers of the registry commands (tools/regcmd.h). */
#include "tools/regcmd.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/streamid.h"

int regcmd_opt(const char *cmd, int argc, char **argv, int *i, const char *name,
               const char **out_val)
{
    size_t n = strlen(name);
    const char *a = argv[*i];

    if (strncmp(a, name, n) != 0 || (a[n] != '=' && a[n] != '\0')) {
        return 0;
    }
    if (a[n] == '=') {
        *out_val = a + n + 1;
        return 1;
    }
    if (*i + 1 >= argc) {
        fprintf(stderr, "rlfeed %s: %s needs a value\n", cmd, name);
        return -1;
    }
    if (strncmp(argv[*i + 1], "--", 2) == 0 && argv[*i + 1][2] != '\0') {
        /* `--plot --json` would write a file named --json: an option is not a value. */
        fprintf(stderr,
                "rlfeed %s: %s needs a value, not the option '%s' (a value that starts with "
                "-- is written %s=VALUE)\n",
                cmd, name, argv[*i + 1], name);
        return -1;
    }
    *i += 1;
    *out_val = argv[*i];
    return 1;
}

int regcmd_take_common(regcmd_common *c, int argc, char **argv, int *i)
{
    const char *v = NULL;
    int rc = 0;

    if (strcmp(argv[*i], "--json") == 0) {
        c->json = true;
        return 1;
    }
    rc = regcmd_opt(c->cmd, argc, argv, i, "--policy", &v);
    if (rc == 1) {
        c->policy = v;
    }
    if (rc == 0) {
        rc = regcmd_opt(c->cmd, argc, argv, i, "--redis", &v);
        if (rc == 1) {
            c->redis_url = v;
        }
    }
    if (rc == 0) {
        rc = regcmd_opt(c->cmd, argc, argv, i, "--who", &v);
        if (rc == 1 && (v[0] == '\0' || strlen(v) > REGCMD_WHO_MAX)) {
            fprintf(stderr, "rlfeed %s: --who must be 1..%d bytes\n", c->cmd, REGCMD_WHO_MAX);
            rc = -1;
        } else if (rc == 1) {
            (void)snprintf(c->who, sizeof(c->who), "%s", v); /* length checked */
        }
    }
    return rc;
}

bool regcmd_finish_common(regcmd_common *c)
{
    if (c->policy == NULL || c->policy[0] == '\0') {
        fprintf(stderr, "rlfeed %s: --policy is required\n", c->cmd);
        return false;
    }
    if (c->redis_url == NULL) {
        const char *env = getenv("RLFEED_REDIS");
        c->redis_url = env != NULL && env[0] != '\0' ? env : NULL;
    }
    if (c->redis_url == NULL) {
        fprintf(stderr, "rlfeed %s: no Redis: give --redis URL or set RLFEED_REDIS\n", c->cmd);
        return false;
    }
    if (c->who[0] == '\0') {
        const char *user = getenv("USER");
        char host[256] = "";
        if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
            (void)snprintf(host, sizeof(host), "unknown-host");
        }
        int k = snprintf(c->who, sizeof(c->who), "%.64s@%.63s",
                         user != NULL && user[0] != '\0' ? user : "unknown", host);
        (void)k; /* at most 128 bytes: fits REGCMD_WHO_MAX */
    }
    return true;
}

sto_store *regcmd_open(const regcmd_common *c)
{
    sto_store *s = NULL;
    char err[512] = "";
    base_err e = sto_store_open(c->redis_url, REGCMD_TIMEOUT_MS, &s, err, sizeof(err));
    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed %s: %s: %s\n", c->cmd, base_strerror(e), err);
        return NULL;
    }
    return s;
}

const char *regcmd_strerror(const sto_store *s, base_err e)
{
    static char buf[400];
    if (e == BASE_EIO) {
        (void)snprintf(buf, sizeof(buf),
                       "%s: redis did not answer within %d s, or the connection broke",
                       base_strerror(e), REGCMD_TIMEOUT_MS / 1000);
        return buf;
    }
    return sto_store_strerror(s, e, buf, sizeof(buf));
}

sto_store *regcmd_open_policy(const regcmd_common *c)
{
    sto_store *s = regcmd_open(c);
    bool known = false;
    base_err e = s != NULL ? sto_policy_known(s, c->policy, &known) : BASE_OK;
    if (s != NULL && (e != BASE_OK || !known)) {
        if (e != BASE_OK) {
            char words[256];
            fprintf(stderr, "rlfeed %s: %s\n", c->cmd,
                    sto_store_strerror(s, e, words, sizeof(words)));
        } else {
            fprintf(stderr,
                    "rlfeed %s: no policy %s in this Redis (no audit stream, registry, models or "
                    "decisions): check --policy and %s\n",
                    c->cmd, c->policy, c->where != NULL ? c->where : "--redis");
        }
        sto_store_close(s);
        s = NULL;
    }
    return s;
}

bool regcmd_parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    bool ok = s != NULL && s[0] != '\0' && strlen(s) <= 20;
    for (size_t i = 0; ok && s[i] != '\0'; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        ok = d <= 9 && v <= (UINT64_MAX - d) / 10u;
        v = v * 10u + d;
    }
    if (ok) {
        *out = v;
    }
    return ok;
}

bool regcmd_parse_double(const char *s, double *out)
{
    char *end = NULL;
    if (s == NULL || s[0] == '\0' || isspace((unsigned char)s[0])) {
        return false; /* strtod() would skip leading blanks */
    }
    errno = 0;
    double v = strtod(s, &end);
    /* As strtod() refuses a decimal below DBL_MIN (ERANGE), so a hex one; -0 is 0. */
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || fpclassify(v) == FP_SUBNORMAL) {
        return false;
    }
    *out = v + 0.0;
    return true;
}

bool regcmd_parse_duration(const char *s, int64_t *out_ms)
{
    const int64_t max_ms = 10LL * 366 * 86400 * 1000;
    char *end = NULL;
    int64_t unit = 1000;

    if (s == NULL || s[0] < '0' || s[0] > '9') {
        return false;
    }
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s) {
        return false;
    }
    if (*end != '\0') {
        switch (*end) {
        case 's':
            unit = 1000;
            break;
        case 'm':
            unit = 60 * 1000;
            break;
        case 'h':
            unit = 3600 * 1000;
            break;
        case 'd':
            unit = 86400 * 1000;
            break;
        default:
            return false;
        }
        if (end[1] != '\0') {
            return false;
        }
    }
    double ms = v * (double)unit;
    if (!(ms >= 1.0 && ms <= (double)max_ms)) {
        return false;
    }
    *out_ms = (int64_t)ms;
    return true;
}

int64_t regcmd_now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_REALTIME, &ts); /* cannot fail with this clock */
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void regcmd_iso8601(int64_t ms, char *out, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms < 0 || gmtime_r(&t, &tm) == NULL) {
        (void)snprintf(out, size, "?");
        return;
    }
    (void)snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   (int)(ms % 1000)); /* 24 bytes + NUL for years < 10000 */
}

int64_t regcmd_id_ms(const char *id)
{
    sto_sid sid;
    if (!sto_sid_parse(id, &sid) || sid.ms > (uint64_t)INT64_MAX) {
        return -1;
    }
    return (int64_t)sid.ms;
}

const char *regcmd_version_text(uint64_t v, char *out, size_t size)
{
    if (v == 0) {
        (void)snprintf(out, size, "base model");
    } else {
        (void)snprintf(out, size, "%llu", (unsigned long long)v);
    }
    return out;
}
