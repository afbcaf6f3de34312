#include "prom.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FAMILIES 256
#define NAME_MAX_LEN 128

typedef struct fam {
    char name[NAME_MAX_LEN];
    char type[32];
    bool help, typed;
} fam;

typedef struct checker {
    fam f[MAX_FAMILIES];
    size_t n;
    /* the histogram series being read: its family, labels without le, last bucket */
    char h_key[600];
    double h_prev;
    double h_inf;
    bool h_open;    /* buckets seen, +Inf not yet */
    bool h_has_inf; /* +Inf seen for h_key */
} checker;

static fam *find(checker *c, const char *name, bool add)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->f[i].name, name) == 0) {
            return &c->f[i];
        }
    }
    if (!add || c->n == MAX_FAMILIES || strlen(name) >= NAME_MAX_LEN) {
        return NULL;
    }
    fam *f = &c->f[c->n++];
    memset(f, 0, sizeof(*f));
    snprintf(f->name, sizeof(f->name), "%s", name);
    return f;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool parse_value(const char *s, double *out)
{
    if (strcmp(s, "NaN") == 0) {
        *out = NAN;
        return true;
    }
    if (strcmp(s, "+Inf") == 0) {
        *out = INFINITY;
        return true;
    }
    if (strcmp(s, "-Inf") == 0) {
        *out = -INFINITY;
        return true;
    }
    char *end = NULL;
    errno = 0;
    *out = strtod(s, &end);
    return errno == 0 && end != s && *end == '\0';
}

/* Split "name{labels} value" into its parts (in place); false if malformed. */
static bool split_sample(char *line, char **name, char **labels, char **value)
{
    *name = line;
    *labels = NULL;
    char *p = line + strcspn(line, "{ ");
    if (*p == '{') {
        *p = '\0';
        *labels = p + 1;
        char *close = strrchr(*labels, '}');
        if (close == NULL) {
            return false;
        }
        *close = '\0';
        p = close + 1;
    } else if (*p == ' ') {
        *p = '\0';
        p++;
    } else {
        return false;
    }
    while (*p == ' ') {
        p++;
    }
    *value = p;
    p[strcspn(p, " ")] = '\0'; /* a timestamp would follow; rlfeed writes none */
    return **name != '\0' && **value != '\0';
}

/* Remove le="..." from @labels into @out_le; the rest, joined, into @key. */
static bool take_le(const char *labels, char *le, size_t lelen, char *key, size_t keylen)
{
    const char *at = strstr(labels != NULL ? labels : "", "le=\"");
    if (at == NULL) {
        return false;
    }
    const char *v = at + 4;
    const char *q = strchr(v, '"');
    if (q == NULL || (size_t)(q - v) >= lelen) {
        return false;
    }
    memcpy(le, v, (size_t)(q - v));
    le[q - v] = '\0';
    snprintf(key, keylen, "%.*s%s", (int)(at - labels), labels, q[1] == ',' ? q + 2 : q + 1);
    size_t kn = strlen(key);
    if (kn > 0 && key[kn - 1] == ',') {
        key[kn - 1] = '\0'; /* le was the last label */
    }
    return true;
}

static bool check_histogram(checker *c, const char *name, const char *base, const char *labels,
                            double v, char *why, size_t whylen)
{
    char key[512];
    if (ends_with(name, "_bucket")) {
        char le[64];
        if (!take_le(labels, le, sizeof(le), key, sizeof(key) - strlen(base) - 2)) {
            snprintf(why, whylen, "%s{%s}: bucket without le", name, labels ? labels : "");
            return false;
        }
        char full[600];
        snprintf(full, sizeof(full), "%s|%s", base, key);
        if (!c->h_open || strcmp(full, c->h_key) != 0) {
            if (c->h_open) {
                snprintf(why, whylen, "%s: buckets of %s end without +Inf", name, c->h_key);
                return false;
            }
            snprintf(c->h_key, sizeof(c->h_key), "%s", full);
            c->h_open = true;
            c->h_has_inf = false;
            c->h_prev = 0.0;
        }
        if (v < c->h_prev) {
            snprintf(why, whylen, "%s{%s}: buckets not cumulative (%g after %g)", name, labels, v,
                     c->h_prev);
            return false;
        }
        c->h_prev = v;
        if (strcmp(le, "+Inf") == 0) {
            c->h_open = false;
            c->h_has_inf = true;
            c->h_inf = v;
        }
        return true;
    }
    if (ends_with(name, "_count")) {
        char full[600];
        snprintf(full, sizeof(full), "%s|%s", base, labels != NULL ? labels : "");
        if (!c->h_has_inf || strcmp(full, c->h_key) != 0 || c->h_inf != v) {
            snprintf(why, whylen, "%s{%s} = %g: not the +Inf bucket of its series", name,
                     labels ? labels : "", v);
            return false;
        }
    }
    return true;
}

bool tst_prom_check(const char *text, const char *prefix, char *why, size_t whylen)
{
    checker *c = calloc(1, sizeof(*c));
    char *copy = strdup(text);
    bool ok = c != NULL && copy != NULL;
    size_t n_samples = 0;
    snprintf(why, whylen, "out of memory");
    for (char *line = copy, *next = NULL; ok && line != NULL && *line != '\0'; line = next) {
        char *nl = strchr(line, '\n');
        next = nl != NULL ? nl + 1 : NULL;
        if (nl != NULL) {
            *nl = '\0';
        }
        if (*line == '\0') {
            continue;
        }
        char name[NAME_MAX_LEN], word[32];
        if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
            bool help = line[2] == 'H';
            word[0] = '\0';
            if (sscanf(line + 7, "%127s %31s", name, word) < (help ? 1 : 2)) {
                snprintf(why, whylen, "malformed: %s", line);
                ok = false;
                break;
            }
            fam *f = find(c, name, true);
            if (f == NULL || (help ? f->help : f->typed)) {
                snprintf(why, whylen, "%s: repeated or too many families", line);
                ok = false;
                break;
            }
            if (help) {
                f->help = true;
            } else {
                f->typed = true;
                snprintf(f->type, sizeof(f->type), "%s", word);
                if (strcmp(word, "counter") == 0 && !ends_with(name, "_total")) {
                    snprintf(why, whylen, "counter %s does not end in _total", name);
                    ok = false;
                }
                if (strncmp(name, prefix, strlen(prefix)) != 0) {
                    snprintf(why, whylen, "%s does not start with %s", name, prefix);
                    ok = false;
                }
            }
            continue;
        }
        if (line[0] == '#') {
            continue;
        }
        char *sname, *labels, *value;
        double v = 0.0;
        if (!split_sample(line, &sname, &labels, &value) || !parse_value(value, &v)) {
            snprintf(why, whylen, "malformed sample: %.200s", line);
            ok = false;
            break;
        }
        n_samples++;
        fam *f = find(c, sname, false);
        char base[NAME_MAX_LEN] = "";
        if (f == NULL) {
            static const char *const sfx[] = {"_bucket", "_sum", "_count"};
            for (size_t k = 0; k < 3 && f == NULL; k++) {
                if (ends_with(sname, sfx[k]) && strlen(sname) < sizeof(base)) {
                    snprintf(base, sizeof(base), "%.*s", (int)(strlen(sname) - strlen(sfx[k])),
                             sname);
                    f = find(c, base, false);
                    if (f != NULL && strcmp(f->type, "histogram") != 0) {
                        f = NULL;
                    }
                }
            }
        }
        if (f == NULL || !f->help || !f->typed) {
            snprintf(why, whylen, "sample %s has no family with # HELP and # TYPE before it",
                     sname);
            ok = false;
            break;
        }
        if (strcmp(f->type, "histogram") == 0 &&
            !check_histogram(c, sname, f->name, labels, v, why, whylen)) {
            ok = false;
        }
    }
    if (ok && c->h_open) {
        snprintf(why, whylen, "histogram %s ends without +Inf", c->h_key);
        ok = false;
    }
    if (ok && n_samples == 0) {
        snprintf(why, whylen, "no samples");
        ok = false;
    }
    free(copy);
    free(c);
    return ok;
}

bool tst_prom_value(const char *text, const char *series, double *out)
{
    size_t n = strlen(series);
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *nl = strchr(line, '\n');
        if (strncmp(line, series, n) == 0 && line[n] == ' ') {
            char val[64];
            size_t vn = (nl != NULL ? (size_t)(nl - line) : strlen(line)) - n - 1;
            if (vn >= sizeof(val)) {
                return false;
            }
            memcpy(val, line + n + 1, vn);
            val[vn] = '\0';
            return parse_value(val, out);
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    return false;
}
