#include "service/audit.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"

base_err svc_audit_append(sto_store *s, const char *policy, const char *action, const char *who,
                          const char *reason, const sto_field *details, size_t n_details)
{
    if (n_details > SVC_AUDIT_MAX_DETAILS) {
        return BASE_EINVAL;
    }
    sto_field f[3 + SVC_AUDIT_MAX_DETAILS] = {
        {"action", action},
        {"who", who},
        {"reason", reason},
    };
    for (size_t i = 0; i < n_details; i++) {
        f[3 + i] = details[i];
    }
    sto_change c = {.fields = f, .n_fields = 3 + n_details}; /* no move, no override */
    sto_change_result res = STO_CHANGED;
    uint64_t prod = 0;
    return sto_registry_change(s, policy, &c, &res, &prod, NULL);
}

bool svc_audit_append_logged(sto_store *s, const char *policy, const char *action, const char *who,
                             const char *reason, const sto_field *d, size_t n)
{
    base_err e = svc_audit_append(s, policy, action, who, reason, d, n);
    if (e != BASE_OK) {
        const char *words = e == BASE_ESTORE ? sto_store_refusal(s) : "";
        base_log_policy(BASE_LOG_WARN, policy,
                        "policy %s: cannot append the %s audit entry: %s%s%s%s", policy, action,
                        base_strerror(e), words[0] != '\0' ? " (" : "", words,
                        words[0] != '\0' ? ")" : "");
    }
    return e == BASE_OK;
}

static void append_logged(sto_store *s, const char *policy, const char *action, const char *who,
                          const char *reason, const sto_field *d, size_t n, uint64_t *io_failed)
{
    *io_failed += !svc_audit_append_logged(s, policy, action, who, reason, d, n);
}

/* "a -> b" into @out when @from and @to differ (an unstamped "" reads as "-"). */
static bool changed(const char *from, const char *to, char *out, size_t size)
{
    if (strcmp(from, to) == 0) {
        return false;
    }
    (void)snprintf(out, size, "%s -> %s", from[0] != '\0' ? from : "-", to);
    return true;
}

void svc_audit_startup(sto_store *s, const svc_engine *e, const svc_config *cfg, const char *who,
                       uint64_t *io_failed)
{
    for (uint32_t i = 0; i < cfg->n_policies; i++) {
        const char *policy = cfg->policy[i].name;
        svc_restored r;
        if (!svc_engine_restored(e, i, &r)) {
            continue;
        }
        char version[24], learned[24], pending[24];
        (void)snprintf(version, sizeof(version), "%" PRIu64, r.version);
        (void)snprintf(learned, sizeof(learned), "%" PRIu64, r.learned);
        (void)snprintf(pending, sizeof(pending), "%" PRIu64, r.pending);
        const sto_field rd[] = {
            {"version", version}, {"learned", learned}, {"pending", pending},
            {"spec", r.spec},     {"base", r.base},     {"config_hash", r.config_hash},
        };
        append_logged(s, policy, "restore", who,
                      r.found ? "start-up: restored the checkpoint"
                              : "start-up: no checkpoint, from the base model",
                      rd, sizeof(rd) / sizeof(rd[0]), io_failed);
        char spec[2 * BASE_NAME_MAX + 8], base[2 * BASE_NAME_MAX + 8], hash[64];
        bool c_spec = changed(r.snap_spec, r.spec, spec, sizeof(spec));
        bool c_base = changed(r.snap_base, r.base, base, sizeof(base));
        bool c_hash = changed(r.snap_config_hash, r.config_hash, hash, sizeof(hash));
        /*
         * The configuration changed if its hash did (it covers the spec version) or the base
         * model did. The spec alone differs too when nothing was learned since a change that
         * an earlier start already recorded: a checkpoint keeps the spec its head learned under.
         */
        if (!r.found || !(c_base || c_hash)) {
            continue;
        }
        sto_field cd[8] = {
            {"version", version},
            {"spec_from", r.snap_spec},
            {"spec_to", r.spec},
            {"config_hash_from", r.snap_config_hash},
            {"config_hash_to", r.config_hash},
        };
        size_t n_cd = 5;
        if (c_base) {
            cd[n_cd++] = (sto_field){"base_from", r.snap_base};
            cd[n_cd++] = (sto_field){"base_to", r.base};
        } else {
            cd[n_cd++] = (sto_field){"base", r.base};
        }
        char reason[512];
        (void)snprintf(reason, sizeof(reason),
                       "configuration changed since checkpoint %s:%s%s%s%s%s%s", version,
                       c_spec ? " reward spec " : "", c_spec ? spec : "",
                       c_base ? (c_spec ? ", base model " : " base model ") : "",
                       c_base ? base : "", c_hash && !c_spec && !c_base ? " config hash " : "",
                       c_hash && !c_spec && !c_base ? hash : "");
        append_logged(s, policy, "config", who, reason, cd, n_cd, io_failed);
    }
}
