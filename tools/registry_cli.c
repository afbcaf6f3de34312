/* rlfeed rollback, history, audit and serve (tools/registry_cli.h). */
#include "tools/registry_cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/alloc.h"
#include "policy/head.h"
#include "storage/store.h"
#include "tools/regcmd.h"

#define AUDIT_MAX 1000000u /* the newest entries a command reads from the audit stream */
#define REASON_MAX 512

/* ---- rollback ------------------------------------------------------------- */

/* The version production had before it became @current: the newest move to it. */
static bool previous_version(const sto_audit_entry *a, size_t n, uint64_t current, uint64_t *out)
{
    for (size_t i = n; i-- > 0;) {
        const char *moved = sto_audit_field(&a[i], "moved");
        const char *to = sto_audit_field(&a[i], "to");
        const char *from = sto_audit_field(&a[i], "from");
        uint64_t t = 0, f = 0;
        if (moved != NULL && strcmp(moved, "1") == 0 && to != NULL && from != NULL &&
            regcmd_parse_u64(to, &t) && t == current && regcmd_parse_u64(from, &f)) {
            *out = f;
            return true;
        }
    }
    return false;
}

/*
 * Whether the daemon can serve snapshot @version of @policy (service/registry.c): it makes a
 * head, and has the shape and action list of the newest checkpoint @online (the daemon's
 * definition when it took it; not checked when there is none). Else false, why in @why.
 */
static bool servable(sto_store *s, const char *policy, uint64_t version, uint64_t online, char *why,
                     size_t whylen)
{
    base_snapshot *m = NULL, *o = NULL;
    pol_head *h = NULL;
    bool found = false, have_online = false, ok = false;
    base_err e = sto_store_model_get(s, policy, version, &m, &found);
    if (e != BASE_OK || !found) {
        snprintf(why, whylen, "%s", e != BASE_OK ? regcmd_strerror(s, e) : "it does not exist");
    } else if ((e = pol_head_from_snapshot(m, &h)) != BASE_OK) {
        snprintf(why, whylen, "it does not make a head (%s learner, %s): %s", m->learner,
                 m->settings.explorer[0] != '\0' ? "settings recorded" : "no settings recorded",
                 base_strerror(e));
    } else if (online != 0 && online != version &&
               (e = sto_store_model_get(s, policy, online, &o, &have_online)) != BASE_OK) {
        snprintf(why, whylen, "reading the newest checkpoint %llu: %s", (unsigned long long)online,
                 regcmd_strerror(s, e));
    } else if (have_online && !base_snapshot_same_shape(o, m)) {
        snprintf(why, whylen,
                 "it has dim %u, %u actions, action_dim %u; the newest checkpoint (%llu) %u, "
                 "%u, %u",
                 m->dim, m->n_actions, m->settings.action_dim, (unsigned long long)online, o->dim,
                 o->n_actions, o->settings.action_dim);
    } else if (have_online && base_actions_differ(o->actions_hash, m->actions_hash)) {
        snprintf(why, whylen,
                 "it was learned for other action names or another order (%s) than the newest "
                 "checkpoint, %llu (%s)",
                 m->actions_hash, (unsigned long long)online, o->actions_hash);
    } else {
        ok = true;
    }
    pol_head_free(h);
    base_snapshot_free(o);
    base_snapshot_free(m);
    return ok;
}

static void print_move(const regcmd_common *c, const char *action, uint64_t from, uint64_t to,
                       const char *audit_id)
{
    char a[32], b[32];
    if (c->json) {
        json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s}", "policy", c->policy, "action",
                              action, "from", (json_int_t)from, "to", (json_int_t)to, "audit_id",
                              audit_id, "who", c->who);
        char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
        printf("%s\n", text != NULL ? text : "{}");
        base_free(text); /* jansson allocates through base_alloc (set in main) */
        json_decref(o);
    } else {
        printf("%s %s: production %s -> %s (audit %s)\n", c->policy, action,
               regcmd_version_text(from, a, sizeof(a)), regcmd_version_text(to, b, sizeof(b)),
               audit_id);
    }
}

int rlfeed_rollback_main(int argc, char **argv)
{
    regcmd_common c = {.cmd = "rollback"};
    const char *to_text = NULL, *reason_arg = NULL;
    sto_store *s = NULL;
    sto_audit_entry *a = NULL;
    size_t n = 0;
    int status = REGCMD_EXIT_ERROR;
    base_err e;

    for (int i = 0; i < argc; i++) {
        int rc = regcmd_take_common(&c, argc, argv, &i);
        if (rc == 0) {
            rc = regcmd_opt(c.cmd, argc, argv, &i, "--to", &to_text);
        }
        if (rc == 0) {
            rc = regcmd_opt(c.cmd, argc, argv, &i, "--reason", &reason_arg);
        }
        if (rc == 0) {
            fprintf(stderr, "rlfeed rollback: unknown argument '%s'\n", argv[i]);
        }
        if (rc != 1) {
            goto done;
        }
    }
    uint64_t target = 0;
    if (to_text != NULL && !regcmd_parse_u64(to_text, &target)) {
        fprintf(stderr, "rlfeed rollback: bad --to '%s' (a version, 0 = the base model)\n",
                to_text);
        goto done;
    }
    if (!regcmd_finish_common(&c)) {
        goto done;
    }
    s = regcmd_open_policy(&c);
    if (s == NULL) {
        goto done;
    }
    sto_registry g;
    e = sto_registry_get(s, c.policy, &g);
    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed rollback: cannot read the registry: %s\n", regcmd_strerror(s, e));
        goto done;
    }
    if (to_text == NULL) {
        e = sto_audit_read_newest(s, c.policy, AUDIT_MAX, &a, &n);
        if (e != BASE_OK) {
            fprintf(stderr, "rlfeed rollback: cannot read the audit stream: %s\n",
                    regcmd_strerror(s, e));
            goto done;
        }
        if (!previous_version(a, n, g.production, &target)) {
            fprintf(stderr,
                    "rlfeed rollback: nothing to roll back to: no audit entry moved production "
                    "to %llu (use --to VERSION)\n",
                    (unsigned long long)g.production);
            goto done;
        }
    }
    if (target == g.production) {
        fprintf(stderr, "rlfeed rollback: production is already %llu\n",
                (unsigned long long)target);
        goto done;
    }
    char why_not[512];
    if (target != 0 && !servable(s, c.policy, target, g.online, why_not, sizeof(why_not))) {
        fprintf(stderr, "rlfeed rollback: snapshot %llu cannot be served: %s; nothing changed\n",
                (unsigned long long)target, why_not);
        goto done;
    }
    char reason[REASON_MAX], id[BASE_STREAM_ID_MAX + 1] = "";
    if (reason_arg != NULL && reason_arg[strspn(reason_arg, " \t\r\n")] != '\0') {
        (void)snprintf(reason, sizeof(reason), "%s", reason_arg); /* cut: a label */
    } else {
        (void)snprintf(reason, sizeof(reason), "%s",
                       to_text != NULL ? "rollback to --to"
                                       : "rollback to the version production replaced");
    }
    sto_field fields[] = {{"action", "rollback"}, {"who", c.who}, {"reason", reason}};
    sto_change ch = {
        .move = true, .expect = g.production, .to = target, .fields = fields, .n_fields = 3};
    sto_change_result res;
    uint64_t was = 0;
    e = sto_registry_change(s, c.policy, &ch, &res, &was, id);
    if (e != BASE_OK) {
        char words[256];
        fprintf(stderr, "rlfeed rollback: the registry change failed: %s%s\n",
                sto_store_strerror(s, e, words, sizeof(words)),
                e == BASE_EIO ? " (it may or may not have happened: rlfeed history tells)" : "");
    } else if (res == STO_CONFLICT) {
        fprintf(stderr, "rlfeed rollback: production moved meanwhile (now %llu): rerun\n",
                (unsigned long long)was);
    } else if (res == STO_MISSING) {
        fprintf(stderr, "rlfeed rollback: snapshot %llu does not exist\n",
                (unsigned long long)target);
    } else {
        print_move(&c, "rollback", was, target, id);
        status = REGCMD_EXIT_OK;
    }
done:
    sto_audit_free(a, n);
    sto_store_close(s);
    return status;
}

/* ---- history -------------------------------------------------------------- */

/* "dr diff +0.0412 [+0.0301, +0.0523], n 3000" from a stored report, or "". */
static void estimate_summary(const char *report, const char *estimator, char *out, size_t size)
{
    json_t *r = report != NULL ? json_loads(report, 0, NULL) : NULL;
    json_t *d = json_object_get(json_object_get(json_object_get(r, "estimates"), "difference"),
                                estimator != NULL ? estimator : "dr");
    json_t *est = json_object_get(d, "est"), *lo = json_object_get(d, "lo"),
           *hi = json_object_get(d, "hi");
    out[0] = '\0';
    if (json_is_number(est) && json_is_number(lo) && json_is_number(hi)) {
        (void)snprintf(out, size, "%s diff %+.4f [%+.4f, %+.4f], n %lld",
                       estimator != NULL ? estimator : "dr", json_number_value(est),
                       json_number_value(lo), json_number_value(hi),
                       (long long)json_integer_value(json_object_get(r, "n")));
    } else if (json_is_integer(json_object_get(r, "n"))) {
        (void)snprintf(out, size, "n %lld", (long long)json_integer_value(json_object_get(r, "n")));
    }
    json_decref(r);
}

static const char *field_or(const sto_audit_entry *e, const char *name, const char *dflt)
{
    const char *v = sto_audit_field(e, name);
    return v != NULL ? v : dflt;
}

/* The actions `rlfeed history` shows: those of the registry (promotions, rollbacks, overrides). */
static bool is_registry_action(const char *action)
{
    return strcmp(action, "promote") == 0 || strcmp(action, "rollback") == 0 ||
           strcmp(action, "serve") == 0;
}

/*
 * A registry entry's change: "0 -> 1000", "0 stays (2000 refused)", "0 stays (no candidate)",
 * "serve online, canary -".
 */
static void change_summary(const sto_audit_entry *e, char *out, size_t size)
{
    const char *action = field_or(e, "action", "?");
    const char *from = sto_audit_field(e, "from"), *to = sto_audit_field(e, "to");
    if (strcmp(field_or(e, "moved", "0"), "1") == 0) {
        (void)snprintf(out, size, "%s -> %s", from != NULL ? from : "?", to != NULL ? to : "?");
    } else if (strcmp(action, "serve") == 0) {
        (void)snprintf(out, size, "serve %s, canary %s", field_or(e, "serve", "-"),
                       field_or(e, "canary", "-"));
    } else if (from != NULL && to != NULL && strcmp(to, "0") == 0) {
        (void)snprintf(out, size, "%s stays (no candidate)", from); /* the base model is none */
    } else if (from != NULL && to != NULL) {
        (void)snprintf(out, size, "%s stays (%s refused)", from, to);
    } else {
        (void)snprintf(out, size, "-");
    }
}

/*
 * @s on one line: a value's line breaks and tabs (a policy-put diff has them), and any other
 * control character (a terminal escape in a stored reason), as blanks.
 */
static void one_line(char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            *s = ' ';
        }
    }
}

static void print_history_line(const sto_audit_entry *e)
{
    char when[40], change[96], est[160], who[128], reason[REASON_MAX];
    const char *verdict = sto_audit_field(e, "verdict");

    regcmd_iso8601(regcmd_id_ms(e->id), when, sizeof(when));
    change_summary(e, change, sizeof(change));
    estimate_summary(sto_audit_field(e, "report"), sto_audit_field(e, "estimator"), est,
                     sizeof(est));
    base_strlcpy(who, field_or(e, "who", "?"), sizeof(who));
    base_strlcpy(reason, field_or(e, "reason", ""), sizeof(reason));
    one_line(who);
    one_line(reason);
    printf("%-24s  %-8s  %-20s  %-28s  %-8s  %s%s%s\n", when, field_or(e, "action", "?"), who,
           change, verdict != NULL ? verdict : "-", est, est[0] != '\0' ? "; " : "", reason);
}

/*
 * One line of `rlfeed audit`: when, action, who, a summary, the reason. The
 * summary of a registry entry is history's (change, verdict, estimate); of
 * the daemon's entries, their detail fields as "name value" pairs.
 */
static void print_audit_line(const sto_audit_entry *e)
{
    static const char *const skip[] = {"moved", "action", "who", "reason", "report", "estimator"};
    char when[40], summary[1024], est[160];
    const char *action = field_or(e, "action", "?");
    size_t len = 0;

    regcmd_iso8601(regcmd_id_ms(e->id), when, sizeof(when));
    summary[0] = '\0';
    if (is_registry_action(action)) {
        const char *verdict = sto_audit_field(e, "verdict");
        char change[96];
        change_summary(e, change, sizeof(change));
        estimate_summary(sto_audit_field(e, "report"), sto_audit_field(e, "estimator"), est,
                         sizeof(est));
        (void)snprintf(summary, sizeof(summary), "%s%s%s%s%s", change, verdict != NULL ? ", " : "",
                       verdict != NULL ? verdict : "", est[0] != '\0' ? ", " : "", est);
    } else {
        for (size_t i = 0; i < e->n_fields; i++) {
            bool shown = true;
            for (size_t k = 0; k < sizeof(skip) / sizeof(skip[0]); k++) {
                shown = shown && strcmp(e->name[i], skip[k]) != 0;
            }
            int n = shown ? snprintf(summary + len, sizeof(summary) - len, "%s%s %s",
                                     len > 0 ? ", " : "", e->name[i],
                                     e->value[i][0] != '\0' ? e->value[i] : "-")
                          : 0;
            if (n < 0 || (size_t)n >= sizeof(summary) - len) {
                break; /* cut: the JSON output has every field */
            }
            len += (size_t)n;
        }
    }
    char reason[REASON_MAX], who[128];
    base_strlcpy(reason, field_or(e, "reason", ""), sizeof(reason));
    base_strlcpy(who, field_or(e, "who", "?"), sizeof(who));
    one_line(summary);
    one_line(reason);
    one_line(who);
    printf("%-24s  %-9s  %-20s  %s%s%s\n", when, action, who, summary,
           summary[0] != '\0' && reason[0] != '\0' ? "; " : "", reason);
}

/* One audit entry as a JSON object: its fields, typed where we know them, the report parsed. */
static json_t *entry_json(const sto_audit_entry *e)
{
    char when[40];
    json_t *o = json_object();
    regcmd_iso8601(regcmd_id_ms(e->id), when, sizeof(when));
    json_object_set_new(o, "id", json_string(e->id));
    json_object_set_new(o, "when", json_string(when));
    for (size_t i = 0; i < e->n_fields; i++) {
        const char *k = e->name[i], *v = e->value[i];
        uint64_t u = 0;
        json_t *val = NULL;
        if (strcmp(k, "moved") == 0) {
            val = json_boolean(strcmp(v, "1") == 0);
        } else if ((strcmp(k, "from") == 0 || strcmp(k, "to") == 0) && regcmd_parse_u64(v, &u) &&
                   u <= (uint64_t)INT64_MAX) {
            val = json_integer((json_int_t)u);
        } else if (strcmp(k, "report") == 0) {
            val = json_loads(v, 0, NULL);
        }
        if (val == NULL) {
            val = json_string(v); /* invalid UTF-8 gives NULL: the field is then left out */
        }
        if (val != NULL && json_object_get(o, k) == NULL) {
            json_object_set_new(o, k, val);
        } else {
            json_decref(val);
        }
    }
    return o;
}

/*
 * rlfeed history and rlfeed audit: read the whole audit stream, keep the
 * registry's entries (@all false) or all of them, print the newest --limit
 * of those, oldest first.
 */
static int list_main(const char *cmd, bool all, int argc, char **argv)
{
    regcmd_common c = {.cmd = cmd};
    const char *limit_text = NULL;
    uint64_t limit = AUDIT_MAX;
    sto_store *s = NULL;
    sto_audit_entry *a = NULL;
    const sto_audit_entry **shown = NULL;
    size_t n = 0, n_shown = 0;
    int status = REGCMD_EXIT_ERROR;

    for (int i = 0; i < argc; i++) {
        int rc = regcmd_take_common(&c, argc, argv, &i);
        if (rc == 0) {
            rc = regcmd_opt(c.cmd, argc, argv, &i, "--limit", &limit_text);
        }
        if (rc == 0) {
            fprintf(stderr, "rlfeed %s: unknown argument '%s'\n", cmd, argv[i]);
        }
        if (rc != 1) {
            goto done;
        }
    }
    if (limit_text != NULL && (!regcmd_parse_u64(limit_text, &limit) || limit == 0)) {
        fprintf(stderr, "rlfeed %s: bad --limit '%s'\n", cmd, limit_text);
        goto done;
    }
    if (!regcmd_finish_common(&c)) {
        goto done;
    }
    s = regcmd_open_policy(&c); /* a mistyped name is not an empty history */
    if (s == NULL) {
        goto done;
    }
    base_err e = sto_audit_read_newest(s, c.policy, AUDIT_MAX, &a, &n);
    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed %s: cannot read the audit stream: %s\n", cmd,
                regcmd_strerror(s, e));
        goto done;
    }
    shown = base_alloc_array(n > 0 ? n : 1, sizeof(*shown));
    if (shown == NULL) {
        fprintf(stderr, "rlfeed %s: out of memory\n", cmd);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (all || is_registry_action(field_or(&a[i], "action", ""))) {
            shown[n_shown++] = &a[i];
        }
    }
    size_t first = n_shown > limit ? n_shown - (size_t)limit : 0;
    if (c.json) {
        json_t *arr = json_array();
        for (size_t i = first; i < n_shown; i++) {
            json_array_append_new(arr, entry_json(shown[i]));
        }
        char *text = json_dumps(arr, JSON_COMPACT);
        printf("%s\n", text != NULL ? text : "[]");
        base_free(text);
        json_decref(arr);
    } else if (all) {
        printf("%-24s  %-9s  %-20s  %s\n", "when", "action", "who", "summary; reason");
        for (size_t i = first; i < n_shown; i++) {
            print_audit_line(shown[i]);
        }
    } else {
        printf("%-24s  %-8s  %-20s  %-28s  %-8s  %s\n", "when", "action", "who", "production",
               "verdict", "estimate; reason");
        for (size_t i = first; i < n_shown; i++) {
            print_history_line(shown[i]);
        }
    }
    status = fflush(stdout) == 0 ? REGCMD_EXIT_OK : REGCMD_EXIT_ERROR;
done:
    base_free(shown);
    sto_audit_free(a, n);
    sto_store_close(s);
    return status;
}

int rlfeed_history_main(int argc, char **argv)
{
    return list_main("history", false, argc, argv);
}

int rlfeed_audit_main(int argc, char **argv)
{
    return list_main("audit", true, argc, argv);
}

/* ---- serve ---------------------------------------------------------------- */

int rlfeed_serve_main(int argc, char **argv)
{
    regcmd_common c = {.cmd = "serve"};
    const char *mode = NULL, *canary_text = NULL;
    bool clear = false;
    sto_store *s = NULL;
    int status = REGCMD_EXIT_ERROR;
    sto_change ch = {0};

    for (int i = 0; i < argc; i++) {
        int rc = regcmd_take_common(&c, argc, argv, &i);
        if (rc == 0 && strcmp(argv[i], "--clear") == 0) {
            clear = true;
            rc = 1;
        }
        if (rc == 0) {
            rc = regcmd_opt(c.cmd, argc, argv, &i, "--mode", &mode);
        }
        if (rc == 0) {
            rc = regcmd_opt(c.cmd, argc, argv, &i, "--canary", &canary_text);
        }
        if (rc == 0) {
            fprintf(stderr, "rlfeed serve: unknown argument '%s'\n", argv[i]);
        }
        if (rc != 1) {
            goto done;
        }
    }
    if (clear == (mode != NULL || canary_text != NULL)) {
        fprintf(stderr, "rlfeed serve: give --mode and/or --canary, or --clear alone\n");
        goto done;
    }
    if (mode != NULL) {
        ch.serve_op = STO_FIELD_SET;
        if (strcmp(mode, "online") == 0) {
            ch.serve = STO_SERVE_ONLINE;
        } else if (strcmp(mode, "production") == 0) {
            ch.serve = STO_SERVE_PRODUCTION;
        } else {
            fprintf(stderr, "rlfeed serve: --mode is online or production, not '%s'\n", mode);
            goto done;
        }
    }
    if (canary_text != NULL) {
        ch.canary_op = STO_FIELD_SET;
        if (!regcmd_parse_double(canary_text, &ch.canary) || ch.canary < 0.0 || ch.canary > 1.0) {
            fprintf(stderr, "rlfeed serve: --canary is a share in [0, 1], not '%s'\n", canary_text);
            goto done;
        }
    }
    if (clear) {
        ch.serve_op = STO_FIELD_CLEAR;
        ch.canary_op = STO_FIELD_CLEAR;
    }
    if (!regcmd_finish_common(&c)) {
        goto done;
    }
    s = regcmd_open_policy(&c);
    if (s == NULL) {
        goto done;
    }
    const char *serve_v = clear ? "cleared" : mode != NULL ? mode : "unchanged";
    char share[STO_SHARE_TEXT_MAX] = "";
    if (canary_text != NULL) {
        sto_format_share(ch.canary, share, sizeof(share)); /* as stored, not as typed */
    }
    const char *canary_v = clear ? "cleared" : canary_text != NULL ? share : "unchanged";
    sto_field fields[] = {
        {"action", "serve"}, {"who", c.who}, {"serve", serve_v}, {"canary", canary_v}};
    ch.fields = fields;
    ch.n_fields = 4;
    sto_change_result res;
    uint64_t prod = 0;
    char id[BASE_STREAM_ID_MAX + 1] = "";
    base_err e = sto_registry_change(s, c.policy, &ch, &res, &prod, id);
    sto_registry g = {.canary = -1.0};
    if (e == BASE_OK) {
        e = sto_registry_get(s, c.policy, &g);
    }
    if (e != BASE_OK) {
        char words[256];
        fprintf(stderr, "rlfeed serve: %s\n", sto_store_strerror(s, e, words, sizeof(words)));
        goto done;
    }
    const char *now_serve = g.serve == STO_SERVE_ONLINE       ? "online"
                            : g.serve == STO_SERVE_PRODUCTION ? "production"
                                                              : "config";
    if (c.json) {
        json_t *o = json_pack("{s:s, s:s, s:o, s:s, s:s}", "policy", c.policy, "serve", now_serve,
                              "canary", g.canary >= 0.0 ? json_real(g.canary) : json_null(),
                              "audit_id", id, "who", c.who);
        char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
        printf("%s\n", text != NULL ? text : "{}");
        base_free(text);
        json_decref(o);
    } else if (g.canary >= 0.0) {
        printf("%s: serve %s, canary %g (audit %s)\n", c.policy, now_serve, g.canary, id);
    } else {
        printf("%s: serve %s, canary from config (audit %s)\n", c.policy, now_serve, id);
    }
    status = REGCMD_EXIT_OK;
done:
    sto_store_close(s);
    return status;
}
