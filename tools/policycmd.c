#include "tools/policycmd.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "service/config.h"
#include "tools/regcmd.h"

/*
 * rlfeed policy put|get|list|retire (docs/operations.md, "Policies at run time"): the policy
 * catalog in Redis (storage/store.h, "Policy definitions"), which rlfeedd follows. Like the
 * registry commands they talk to Redis, not to the daemon.
 */

#define DIFF_MAX (64u * 1024u) /* bytes of diff kept in the audit entry */

/*
 * The lines of @a not in @b, each prefixed with @mark, appended to @out (a line-set
 * difference: enough to say which settings changed; order of @a kept).
 */
static void lines_not_in(const char *a, const char *b, char mark, base_buf *out)
{
    for (const char *p = a; *p != '\0';) {
        const char *eol = strchr(p, '\n');
        size_t n = eol != NULL ? (size_t)(eol - p) : strlen(p);
        bool blank = true;
        for (size_t k = 0; k < n && blank; k++) {
            blank = p[k] == ' ' || p[k] == '\t' || p[k] == '\r';
        }
        bool found = blank;
        for (const char *q = b; !found && *q != '\0';) {
            const char *qe = strchr(q, '\n');
            size_t m = qe != NULL ? (size_t)(qe - q) : strlen(q);
            found = m == n && memcmp(p, q, n) == 0;
            q += m + (qe != NULL);
        }
        if (!found && out->len + n + 3 < DIFF_MAX) {
            char pre[2] = {mark, ' '};
            (void)base_buf_append(out, pre, 2);
            (void)base_buf_append(out, p, n);
            (void)base_buf_append(out, "\n", 1);
        }
        p += n + (eol != NULL);
    }
}

/* The definition to put: the file itself, or the sections of --policy cut out of it. */
static bool read_definition(const char *file, const char *policy, base_buf *out, char *name,
                            size_t name_size)
{
    char why[512] = "";
    base_buf raw;
    base_buf_init(&raw, STO_CATALOG_TEXT_MAX * 4u);
    bool ok = base_buf_read_file(&raw, file, why, sizeof(why)) &&
              base_buf_append(&raw, "", 1) == BASE_OK; /* NUL-terminated */
    if (!ok) {
        fprintf(stderr, "rlfeed policy put: %s: %s\n", file, why[0] != '\0' ? why : "too large");
    } else if (policy != NULL) {
        ok = svc_config_policy_text((const char *)raw.data, policy, out) == BASE_OK;
        if (!ok) {
            fprintf(stderr, "rlfeed policy put: %s has no [policy %s] section\n", file, policy);
        }
    } else {
        ok = base_buf_append(out, raw.data, raw.len - 1) == BASE_OK;
    }
    base_buf_fini(&raw);
    ok = ok && base_buf_append(out, "", 1) == BASE_OK;
    if (ok && out->len - 1 > STO_CATALOG_TEXT_MAX) {
        fprintf(stderr, "rlfeed policy put: the definition is over %u bytes\n",
                STO_CATALOG_TEXT_MAX);
        ok = false;
    }
    if (ok && svc_config_check_policy_text((const char *)out->data, name, name_size, why,
                                           sizeof(why)) != BASE_OK) {
        fprintf(stderr, "rlfeed policy put: %s: %s\n", file, why);
        ok = false;
    }
    return ok;
}

static void print_change(const regcmd_common *c, const char *verb, uint64_t from, uint64_t to,
                         const char *diff)
{
    if (c->json) {
        json_t *o =
            json_pack("{s:s, s:s, s:I, s:I, s:s}", "policy", c->policy, "action", verb, "version",
                      (json_int_t)to, "previous", (json_int_t)from, "diff", diff);
        char *txt = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
        printf("%s\n", txt != NULL ? txt : "{}");
        base_free(txt);
        json_decref(o);
    } else {
        printf("policy %s: %s, version %" PRIu64 " (was %" PRIu64 ")\n", c->policy, verb, to, from);
        if (diff[0] != '\0') {
            printf("%s", diff);
        }
    }
}

/* put or retire: the new version after the current one, refused if someone changed it since. */
static int change(regcmd_common *c, sto_store *s, const char *text)
{
    sto_policy_def cur;
    bool found = false;
    base_err e = sto_catalog_get(s, c->policy, 0, &cur, &found);
    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed policy: cannot read %s's definition: %s\n", c->policy,
                regcmd_strerror(s, e));
        return REGCMD_EXIT_ERROR;
    }
    bool retire = text == NULL;
    if (retire && (!found || cur.retired)) {
        fprintf(stderr, "rlfeed policy retire: %s is %s\n", c->policy,
                found ? "already retired" : "not in the catalog");
        sto_policy_def_fini(&cur);
        return REGCMD_EXIT_ERROR;
    }
    if (!retire && found && !cur.retired && strcmp(cur.text, text) == 0) {
        /* Announced again: the put that wrote it may have failed to (rlfeed policy exit 2). */
        uint64_t in_force = cur.version;
        sto_policy_def_fini(&cur);
        e = sto_catalog_announce(s, c->policy);
        if (e != BASE_OK) {
            fprintf(stderr, "rlfeed policy: %s: announcing it: %s\n", c->policy,
                    regcmd_strerror(s, e));
            return REGCMD_EXIT_ERROR;
        }
        print_change(c, "unchanged", in_force, in_force, "");
        return REGCMD_EXIT_OK;
    }
    base_buf diff;
    base_buf_init(&diff, DIFF_MAX);
    if (retire) {
        (void)base_buf_append(&diff, "retired\n", 8);
    } else {
        if (found && cur.retired) {
            (void)base_buf_append(&diff, "restored\n", 9);
        }
        lines_not_in(found ? cur.text : "", text, '-', &diff);
        lines_not_in(text, found ? cur.text : "", '+', &diff);
    }
    (void)base_buf_append(&diff, "", 1);
    const char *action = retire ? "policy-retire" : "policy-put";
    const sto_field fields[] = {{"action", action}, {"who", c->who}};
    sto_catalog_put_req q = {.expect = found ? cur.version : 0,
                             .text = text,
                             .retire = retire,
                             .actor = c->who,
                             .diff = (const char *)diff.data,
                             .fields = fields,
                             .n_fields = 2};
    sto_catalog_result res = STO_CATALOG_CONFLICT;
    uint64_t v = 0;
    int status = REGCMD_EXIT_ERROR;
    e = sto_catalog_put(s, c->policy, &q, &res, &v, NULL);
    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed policy: %s: %s\n", c->policy, regcmd_strerror(s, e));
    } else if (res == STO_CATALOG_CONFLICT) {
        fprintf(stderr,
                "rlfeed policy: %s changed meanwhile (now version %" PRIu64 "): read it and try "
                "again\n",
                c->policy, v);
    } else {
        print_change(c,
                     retire  ? "retired"
                     : found ? "changed"
                             : "created",
                     found ? cur.version : 0, v, (const char *)diff.data);
        status = REGCMD_EXIT_OK;
    }
    base_buf_fini(&diff);
    sto_policy_def_fini(&cur);
    return status;
}

static int get(const regcmd_common *c, sto_store *s, uint64_t version)
{
    sto_policy_def d;
    bool found = false;
    base_err e = sto_catalog_get(s, c->policy, version, &d, &found);
    if (e != BASE_OK || !found) {
        char which[48] = "";
        if (version > 0) {
            (void)snprintf(which, sizeof(which), " version %" PRIu64, version);
        }
        fprintf(stderr, "rlfeed policy get: %s%s: %s\n", c->policy, which,
                e != BASE_OK ? regcmd_strerror(s, e) : "not in the catalog");
        return REGCMD_EXIT_ERROR;
    }
    if (c->json) {
        json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:I, s:s}", "policy", c->policy, "version",
                              (json_int_t)d.version, "state", d.retired ? "retired" : "active",
                              "actor", d.actor, "ts_ms", (json_int_t)d.ts_ms, "text", d.text);
        char *txt = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
        printf("%s\n", txt != NULL ? txt : "{}");
        base_free(txt);
        json_decref(o);
    } else {
        char when[32];
        regcmd_iso8601(d.ts_ms, when, sizeof(when));
        printf("# policy %s version %" PRIu64 "%s, by %s at %s\n%s", c->policy, d.version,
               d.retired ? " (retired)" : "", d.actor, when, d.text);
    }
    sto_policy_def_fini(&d);
    return REGCMD_EXIT_OK;
}

static int list(const regcmd_common *c, sto_store *s)
{
    char(*names)[BASE_NAME_MAX + 1] = NULL;
    size_t n = 0;
    base_err e = sto_catalog_list(s, &names, &n);
    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed policy list: %s\n", regcmd_strerror(s, e));
        return REGCMD_EXIT_ERROR;
    }
    json_t *arr = c->json ? json_array() : NULL;
    int status = REGCMD_EXIT_OK;
    if (!c->json) {
        printf("%-24s %8s %-8s %-24s %s\n", "policy", "version", "state", "changed", "by");
    }
    for (size_t i = 0; i < n; i++) {
        sto_policy_def d;
        bool found = false;
        e = sto_catalog_get(s, names[i], 0, &d, &found);
        if (e != BASE_OK || !found) {
            fprintf(stderr, "rlfeed policy list: %s: %s\n", names[i],
                    e != BASE_OK ? regcmd_strerror(s, e) : "listed but not defined");
            status = REGCMD_EXIT_ERROR;
            continue;
        }
        char when[32];
        regcmd_iso8601(d.ts_ms, when, sizeof(when));
        if (c->json) {
            (void)json_array_append_new(
                arr, json_pack("{s:s, s:I, s:s, s:s, s:I}", "policy", names[i], "version",
                               (json_int_t)d.version, "state", d.retired ? "retired" : "active",
                               "actor", d.actor, "ts_ms", (json_int_t)d.ts_ms));
        } else {
            printf("%-24s %8" PRIu64 " %-8s %-24s %s\n", names[i], d.version,
                   d.retired ? "retired" : "active", when, d.actor);
        }
        sto_policy_def_fini(&d);
    }
    if (c->json) {
        char *txt = json_dumps(arr, JSON_COMPACT);
        printf("%s\n", txt != NULL ? txt : "[]");
        base_free(txt);
        json_decref(arr);
    }
    base_free(names);
    return status;
}

int rlfeed_policy_main(int argc, char **argv)
{
    const char *sub = argc > 0 ? argv[0] : "";
    regcmd_common c = {.cmd = "policy"};
    const char *file = NULL, *version = NULL;
    uint64_t ver = 0;
    int status = REGCMD_EXIT_ERROR;
    bool is_list = strcmp(sub, "list") == 0;

    if (!is_list && strcmp(sub, "put") != 0 && strcmp(sub, "get") != 0 &&
        strcmp(sub, "retire") != 0) {
        fprintf(stderr, "usage: rlfeed policy put --file P.ini [--policy P] | get --policy P "
                        "[--version N] | list | retire --policy P  [--redis URL] [--who NAME] "
                        "[--json]\n");
        return REGCMD_EXIT_ERROR;
    }
    for (int i = 1; i < argc; i++) {
        int rc = regcmd_take_common(&c, argc, argv, &i);
        if (rc == 0) {
            rc = regcmd_opt("policy", argc, argv, &i, "--file", &file);
        }
        if (rc == 0) {
            rc = regcmd_opt("policy", argc, argv, &i, "--version", &version);
        }
        if (rc == 0) {
            fprintf(stderr, "rlfeed policy %s: unknown argument '%s'\n", sub, argv[i]);
        }
        if (rc != 1) {
            return REGCMD_EXIT_ERROR;
        }
    }
    if (version != NULL && (!regcmd_parse_u64(version, &ver) || ver == 0)) {
        fprintf(stderr, "rlfeed policy get: --version is a version number (1, 2, ...)\n");
        return REGCMD_EXIT_ERROR;
    }
    base_buf def;
    base_buf_init(&def, STO_CATALOG_TEXT_MAX * 4u + 1); /* room to say a file is too long */
    char name[BASE_NAME_MAX + 1] = "";
    if (strcmp(sub, "put") == 0) {
        if (file == NULL) {
            fprintf(stderr, "rlfeed policy put: --file is required\n");
            goto done;
        }
        if (!read_definition(file, c.policy, &def, name, sizeof(name))) {
            goto done;
        }
        c.policy = name;
    }
    if (is_list && c.policy == NULL) {
        c.policy = "*"; /* regcmd_finish_common() wants one; list reads them all */
    }
    if (!regcmd_finish_common(&c)) {
        goto done;
    }
    sto_store *s = regcmd_open(&c);
    if (s == NULL) {
        goto done;
    }
    if (strcmp(sub, "put") == 0) {
        status = change(&c, s, (const char *)def.data);
    } else if (strcmp(sub, "retire") == 0) {
        status = change(&c, s, NULL);
    } else if (strcmp(sub, "get") == 0) {
        status = get(&c, s, ver);
    } else {
        status = list(&c, s);
    }
    sto_store_close(s);
done:
    base_buf_fini(&def);
    return status;
}
