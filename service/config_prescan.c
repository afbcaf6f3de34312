/*
 * What libinih does not say about a config file, checked over its lines before it is parsed
 * (service/config.h, svc_config_prescan()).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "base/alloc.h"
#include "service/config.h"

#define PRESCAN_KEYS 512 /* keys remembered per section; more are not checked for repeats */
#define PRESCAN_KEY 72   /* bytes of a key compared */

/*
 * What libinih does not say, checked over the lines before it parses them: a section header
 * longer than it keeps (SVC_INI_SECTION_MAX, cut to a name nobody wrote), and a key given
 * twice in one section (libinih hands both over; the last would win without a word).
 */
typedef struct prescan {
    char (*key)[PRESCAN_KEY]; /* the current section's keys */
    int *line;                /* and the line each was on */
    size_t n;
    char section[SVC_INI_SECTION_MAX + 1];
    bool in_key; /* a key line came last: an indented line continues its value */
} prescan;

static bool prescan_line(prescan *ps, const char *line, size_t n, int lineno, char *errbuf,
                         size_t errlen)
{
    size_t i = 0;
    if (lineno == 1 && n >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
        i = 3; /* a UTF-8 byte order mark, which libinih skips */
    }
    size_t indent = i;
    while (i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) {
        i++;
    }
    if (i >= n || line[i] == ';' || line[i] == '#') {
        return true; /* blank, or a comment */
    }
    if (line[i] == '[') {
        const char *name = line + i + 1;
        const char *end = memchr(name, ']', n - i - 1);
        size_t len = end != NULL ? (size_t)(end - name) : n - i - 1;
        if (len > SVC_INI_SECTION_MAX) {
            snprintf(errbuf, errlen,
                     "line %d: section [%.24s...] is %zu bytes long; at most %d fit: a policy or "
                     "client name of at most %d bytes, a signal's policy and name of at most %d "
                     "together",
                     lineno, name, len, SVC_INI_SECTION_MAX, SVC_SECTION_NAME_MAX,
                     SVC_SECTION_NAME_MAX - 1);
            return false;
        }
        memcpy(ps->section, name, len);
        ps->section[len] = '\0';
        ps->n = 0;
        ps->in_key = false;
        return true;
    }
    if (i > indent && ps->in_key) {
        return true; /* continues the last key's value */
    }
    size_t k = i + strcspn(line + i, "=:");
    if (k >= n) {
        ps->in_key = false;
        return true; /* not a key line: libinih says so */
    }
    size_t e = k;
    while (e > i && (line[e - 1] == ' ' || line[e - 1] == '\t')) {
        e--;
    }
    char key[PRESCAN_KEY];
    size_t len = e - i < sizeof(key) - 1 ? e - i : sizeof(key) - 1;
    memcpy(key, line + i, len);
    key[len] = '\0';
    ps->in_key = true;
    for (size_t j = 0; j < ps->n; j++) {
        if (strcmp(ps->key[j], key) == 0) {
            snprintf(errbuf, errlen, "line %d: [%s] %s given twice (first on line %d)", lineno,
                     ps->section, key, ps->line[j]);
            return false;
        }
    }
    if (ps->n < PRESCAN_KEYS) {
        memcpy(ps->key[ps->n], key, len + 1);
        ps->line[ps->n++] = lineno;
    }
    return true;
}

base_err svc_config_prescan(const char *text, FILE *fp, char *errbuf, size_t errlen)
{
    prescan ps = {.key = base_alloc_array(PRESCAN_KEYS, PRESCAN_KEY),
                  .line = base_alloc_array(PRESCAN_KEYS, sizeof(int))};
    char *buf = NULL;
    size_t cap = 0;
    bool ok = ps.key != NULL && ps.line != NULL;
    base_err e = ok ? BASE_OK : BASE_ENOMEM;
    for (int lineno = 1; ok && fp != NULL; lineno++) {
        ssize_t n = getline(&buf, &cap, fp);
        if (n < 0) {
            break;
        }
        ok = prescan_line(&ps, buf, (size_t)n, lineno, errbuf, errlen);
    }
    for (int lineno = 1; ok && fp == NULL && text != NULL; lineno++) {
        const char *eol = strchr(text, '\n');
        size_t n = eol != NULL ? (size_t)(eol - text) : strlen(text);
        ok = prescan_line(&ps, text, n, lineno, errbuf, errlen);
        text = eol != NULL ? eol + 1 : NULL;
    }
    if (fp != NULL) {
        rewind(fp);
    }
    free(buf);
    base_free(ps.key);
    base_free(ps.line);
    return e == BASE_OK && !ok ? BASE_EINVAL : e;
}
