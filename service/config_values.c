#include "service/config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"

/*
 * The value parsers every part of the configuration shares (config.c, config_client.c):
 * numbers in a range, modes, booleans, strings that fit, URL lists, UTF-8 names.
 */

bool svc_config_parse_u32(const char *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x < (long long)lo || x > (long long)hi) {
        return false;
    }
    *out = (uint32_t)x;
    return true;
}

bool svc_config_parse_i64(const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x < lo || x > hi) {
        return false;
    }
    *out = x;
    return true;
}

bool svc_config_parse_double(const char *v, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double x = strtod(v, &end);
    if (errno != 0 || end == v || *end != '\0' || !isfinite(x) || x < lo || x > hi) {
        return false;
    }
    *out = x;
    return true;
}

/* An octal file mode ("0660", "600") of at most 0777 that lets the owner read and write. */
bool svc_config_parse_mode(const char *v, uint32_t *out)
{
    char *end = NULL;
    errno = 0;
    long m = strtol(v, &end, 8);
    if (errno != 0 || end == v || *end != '\0' || m < 0 || m > 0777 || (m & 0600) != 0600) {
        return false;
    }
    *out = (uint32_t)m;
    return true;
}

/* "true" or "false" into *out; false for anything else. */
bool svc_config_parse_bool(const char *v, bool *out)
{
    if (strcmp(v, "true") == 0) {
        *out = true;
    } else if (strcmp(v, "false") == 0) {
        *out = false;
    } else {
        return false;
    }
    return true;
}

/* Copy @v into @dst of @size bytes; false, and @dst untouched, if it does not fit. */
bool svc_config_copy_str(char *dst, size_t size, const char *v)
{
    size_t n = strlen(v);
    if (n >= size) {
        return false;
    }
    memcpy(dst, v, n + 1);
    return true;
}

/*
 * Split the URL list @v (separated by commas and blanks) into @urls; *out_n may be 0.
 * False if there are more than SVC_MAX_URLS or one is SVC_URL_MAX bytes or longer.
 */
bool svc_config_parse_urls(const char *v, char (*urls)[SVC_URL_MAX], uint32_t *out_n)
{
    uint32_t n = 0;
    const char *s = v;
    while (*s != '\0') {
        while (*s == ' ' || *s == '\t' || *s == ',') {
            s++;
        }
        const char *e = s;
        while (*e != '\0' && *e != ',' && *e != ' ' && *e != '\t') {
            e++;
        }
        if (e == s) {
            break;
        }
        if (n == SVC_MAX_URLS || (size_t)(e - s) >= SVC_URL_MAX) {
            return false;
        }
        memcpy(urls[n], s, (size_t)(e - s));
        urls[n][e - s] = '\0';
        if (!svc_config_listen_url_ok(urls[n])) {
            return false;
        }
        n++;
        s = e;
    }
    *out_n = n;
    return true;
}

/*
 * Names and versions end up in replies, records and stats, which are UTF-8: false, with a
 * reason in @why, if @v is not.
 */
bool svc_config_utf8_value(const char *v, char *why, size_t whylen)
{
    if (!base_utf8_valid(v, strlen(v))) {
        snprintf(why, whylen, "not valid UTF-8");
        return false;
    }
    return true;
}
