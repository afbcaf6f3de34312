#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "service/config.h"

/*
 * Policies as catalog text (docs/operations.md, "Policies at run time"): a policy's
 * definition is the INI text of its [policy NAME] section and its [signal NAME.SIGNAL]
 * sections, as a config file holds them. These cut that text out of a whole file and check
 * a definition on its own.
 */

/* The header name of @line ("policy faq" for "[policy faq]"), or false if it is none. */
static bool header(const char *line, size_t n, char *out, size_t size)
{
    while (n > 0 && (*line == ' ' || *line == '\t')) {
        line++;
        n--;
    }
    while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r')) {
        n--;
    }
    if (n < 2 || line[0] != '[' || line[n - 1] != ']' || n - 2 >= size) {
        return false;
    }
    memcpy(out, line + 1, n - 2);
    out[n - 2] = '\0';
    return true;
}

/* The policy names of the [policy NAME] headers seen so far in a text. */
typedef struct seen_policies {
    char name[SVC_MAX_POLICIES][BASE_NAME_MAX + 1];
    uint32_t n;
} seen_policies;

/*
 * Whether section @h belongs to policy @name: "policy NAME", or "signal NAME.X" where NAME is
 * the longest policy above it that the section's name begins with followed by "." (as the
 * config parser reads it: a policy name may hold dots, so [signal faq.v2.x] is faq.v2's).
 */
static bool belongs(const char *h, const char *name, const seen_policies *above)
{
    size_t nl = strlen(name);
    if (strncmp(h, "policy ", 7) == 0) {
        return strcmp(h + 7, name) == 0;
    }
    if (strncmp(h, "signal ", 7) != 0 || strncmp(h + 7, name, nl) != 0 || h[7 + nl] != '.') {
        return false;
    }
    for (uint32_t i = 0; i < above->n; i++) {
        size_t n = strlen(above->name[i]);
        if (n > nl && strncmp(h + 7, above->name[i], n) == 0 && h[7 + n] == '.') {
            return false; /* a longer policy name claims it */
        }
    }
    return true;
}

base_err svc_config_policy_text(const char *text, const char *name, base_buf *out)
{
    bool in = false, found = false;
    char h[BASE_NAME_MAX * 2 + 16];
    seen_policies *above = base_alloc_zero(1, sizeof(*above));
    if (above == NULL) {
        return BASE_ENOMEM;
    }
    base_err e = BASE_OK;
    for (const char *p = text; *p != '\0' && e == BASE_OK;) {
        const char *eol = strchr(p, '\n');
        size_t n = eol != NULL ? (size_t)(eol - p) : strlen(p);
        if (header(p, n, h, sizeof(h))) {
            in = belongs(h, name, above);
            found = found || (in && strncmp(h, "policy ", 7) == 0);
            if (strncmp(h, "policy ", 7) == 0 && above->n < SVC_MAX_POLICIES) {
                base_strlcpy(above->name[above->n++], h + 7, sizeof(above->name[0]));
            }
        }
        if (in) {
            e = base_buf_append(out, p, n);
            if (e == BASE_OK) {
                e = base_buf_append(out, "\n", 1);
            }
        }
        p += n + (eol != NULL);
    }
    base_free(above);
    return e != BASE_OK ? e : found ? BASE_OK : BASE_EINVAL;
}

base_err svc_config_check_policy_text(const char *text, char *out_name, size_t name_size,
                                      char *errbuf, size_t errlen)
{
    char h[BASE_NAME_MAX * 2 + 16];
    uint32_t line = 0;
    for (const char *p = text; *p != '\0';) {
        const char *eol = strchr(p, '\n');
        size_t n = eol != NULL ? (size_t)(eol - p) : strlen(p);
        line++;
        if (header(p, n, h, sizeof(h)) && strncmp(h, "policy ", 7) != 0 &&
            strncmp(h, "signal ", 7) != 0) {
            snprintf(errbuf, errlen,
                     "line %u: [%.64s]: a policy definition holds only [policy NAME] and "
                     "[signal NAME.SIGNAL] sections",
                     line, h);
            return BASE_EINVAL;
        }
        p += n + (eol != NULL);
    }
    svc_config *c = base_alloc_zero(1, sizeof(*c));
    if (c == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return BASE_ENOMEM;
    }
    base_err e = svc_config_load_string(text, c, errbuf, errlen);
    if (e == BASE_OK && c->n_policies != 1) {
        snprintf(errbuf, errlen, "a policy definition holds one [policy NAME] section, not %u",
                 c->n_policies);
        e = BASE_EINVAL;
    }
    if (e == BASE_OK && !base_strlcpy(out_name, c->policy[0].name, name_size)) {
        e = BASE_EINVAL;
    }
    if (e == BASE_OK) {
        svc_config_fini(c); /* a failed load holds nothing to free */
    }
    base_free(c);
    return e;
}
