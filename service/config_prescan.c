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
#include "base/record.h"
#include "service/config.h"

#define PRESCAN_KEYS 512 /* keys remembered per section; more are not checked for repeats */
#define PRESCAN_KEY 72   /* bytes of a key compared */

/*
 * What libinih does not say, checked over the lines before it parses them: a section header
 * longer than it keeps (SVC_INI_SECTION_MAX, cut to a name nobody wrote), a header given
 * twice (libinih would merge the two sections), one indented under a key (libinih takes it
 * as the key's next line), and a key given twice in one section (libinih hands both over;
 * the last would win without a word). The headers are kept, in file order, for the loader:
 * libinih reports keys only, so a section without any would go unseen.
 */
typedef struct prescan {
    char (*key)[PRESCAN_KEY]; /* the current section's keys */
    int *line;                /* and the line each was on */
    size_t n;
    char section[SVC_INI_SECTION_MAX + 1];
    bool in_key;              /* a key line came last: an indented line continues its value */
    svc_config_sections *out; /* the headers so far */
    int *header_line;         /* [out->n]: the line of each */
    uint32_t cap;             /* of out->name and header_line */
    bool oom;
} prescan;

/* Whether libinih would end header @name of @len bytes before "]": at a " ;" comment. */
static bool has_comment(const char *name, size_t len)
{
    for (size_t j = 1; j < len; j++) {
        if (name[j] == ';' && (name[j - 1] == ' ' || name[j - 1] == '\t')) {
            return true;
        }
    }
    return false;
}

/* Remember header @name (unique) of line @lineno; false (the reason in @errbuf) if not. */
static bool add_header(prescan *ps, const char *name, int lineno, char *errbuf, size_t errlen)
{
    svc_config_sections *o = ps->out;
    for (uint32_t j = 0; j < o->n; j++) {
        if (strcmp(o->name[j], name) == 0) {
            snprintf(errbuf, errlen, "line %d: section [%s] given twice (first on line %d)", lineno,
                     name, ps->header_line[j]);
            return false;
        }
    }
    if (o->n == SVC_INI_SECTIONS_MAX) {
        snprintf(errbuf, errlen, "line %d: more than %d sections", lineno, SVC_INI_SECTIONS_MAX);
        return false;
    }
    if (o->n == ps->cap) {
        uint32_t cap = ps->cap == 0 ? 16 : ps->cap * 2;
        void *names = base_realloc_array(o->name, cap, sizeof(*o->name));
        o->name = names != NULL ? names : o->name;
        void *lines = base_realloc_array(ps->header_line, cap, sizeof(*ps->header_line));
        ps->header_line = lines != NULL ? lines : ps->header_line;
        if (names == NULL || lines == NULL) {
            snprintf(errbuf, errlen, "out of memory");
            ps->oom = true;
            return false;
        }
        ps->cap = cap;
    }
    base_strlcpy(o->name[o->n], name, sizeof(o->name[0]));
    ps->header_line[o->n++] = lineno;
    return true;
}

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
        if (end == NULL || has_comment(name, len)) {
            size_t shown = len;
            while (shown > 0 && (name[shown - 1] == '\n' || name[shown - 1] == '\r')) {
                shown--;
            }
            snprintf(errbuf, errlen, "line %d: section header [%.*s needs its closing ]", lineno,
                     (int)shown, name);
            return false;
        }
        /* libinih drops what follows the first ']': [client a]b] would be client a. */
        const char *rest = end + 1, *stop = line + n;
        while (rest < stop && (*rest == ' ' || *rest == '\t' || *rest == '\r' || *rest == '\n')) {
            rest++;
        }
        if (rest < stop && *rest != ';' && *rest != '#') {
            snprintf(errbuf, errlen,
                     "line %d: text after the section header [%.*s]: a name holds no ']', and a "
                     "comment after a header starts with ';' or '#'",
                     lineno, (int)(len < 64 ? len : 64), name);
            return false;
        }
        memcpy(ps->section, name, len);
        ps->section[len] = '\0';
        if (i > indent && ps->in_key) {
            snprintf(errbuf, errlen,
                     "line %d: section header [%s] is indented under a key, whose value it would "
                     "continue; start it at the beginning of the line",
                     lineno, ps->section);
            return false;
        }
        ps->n = 0;
        ps->in_key = false;
        return add_header(ps, ps->section, lineno, errbuf, errlen);
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

base_err svc_config_prescan(const char *text, FILE *fp, svc_config_sections *out, char *errbuf,
                            size_t errlen)
{
    prescan ps = {.key = base_alloc_array(PRESCAN_KEYS, PRESCAN_KEY),
                  .line = base_alloc_array(PRESCAN_KEYS, sizeof(int)),
                  .out = out};
    char *buf = NULL;
    size_t cap = 0;
    bool ok = ps.key != NULL && ps.line != NULL;
    base_err e = ok ? BASE_OK : BASE_ENOMEM;
    out->name = NULL;
    out->n = 0;
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
    base_free(ps.header_line);
    if (e == BASE_ENOMEM || ps.oom) {
        snprintf(errbuf, errlen, "out of memory");
        e = BASE_ENOMEM;
    } else if (!ok) {
        e = BASE_EINVAL;
    }
    if (e != BASE_OK) {
        svc_config_sections_fini(out);
    }
    return e;
}

void svc_config_sections_fini(svc_config_sections *s)
{
    if (s == NULL) {
        return;
    }
    base_free(s->name);
    s->name = NULL;
    s->n = 0;
}
