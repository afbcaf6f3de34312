#include "service/config.h"

#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/quant.h"
#include "base/utf8.h"
#include "storage/store.h"

/* The kind of section open in the parse. */
typedef enum section_kind {
    SECTION_NONE,
    SECTION_SERVER,
    SECTION_POLICY,
    SECTION_SIGNAL,
    SECTION_CLIENT,
} section_kind;

/*
 * Parser state shared with the inih callback. libinih calls it once per key line and once
 * more per indented continuation line, with the same section and key: the calls of one key
 * are joined into pend_* and the key is taken once, whole, when the next key (or the end)
 * comes. Sections are opened in the order of the headers the prescan listed, so those with
 * no keys count too (config.h, invariants 1 and 2).
 */
typedef struct parse_state {
    svc_config *cfg;
    section_kind kind;                     /* of the open section */
    char section[SVC_INI_SECTION_MAX + 1]; /* its header's name */
    svc_policy_config *pol;             /* current [policy NAME] (or the signal's policy) or NULL */
    rwd_signal *sig;                    /* current [signal POLICY.NAME] or NULL */
    const svc_config_sections *headers; /* every header in file order (NULL: none) */
    uint32_t next_header;               /* the first not opened yet */
    bool pending;                       /* pend_* hold a key not taken yet */
    char pend_section[SVC_INI_SECTION_MAX + 1];
    base_buf pend_key;   /* NUL-terminated */
    base_buf pend_value; /* NUL-terminated: its lines joined */
    uint32_t pend_lines; /* lines the value came on */
    bool in_server;
    char *err;
    size_t errlen;
    bool failed;
} parse_state;

static int fail(parse_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Record the first error (later ones are consequences) and stop the parse. */
static int fail(parse_state *st, const char *fmt, ...)
{
    if (!st->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(st->err, st->errlen, fmt, ap);
        va_end(ap);
        st->failed = true;
    }
    return 0;
}

/* Append signal @name to @p's spec; false (error recorded) if invalid or repeated. */
static bool new_signal(parse_state *st, svc_policy_config *p, const char *name, rwd_signal **out)
{
    bool found = false;
    uint32_t idx = 0;
    rwd_spec *r = &p->reward;
    if (name[0] == '\0' || strlen(name) > BASE_NAME_MAX) {
        fail(st, "[policy %s]: bad signal name \"%s\"", p->name, name);
        return false;
    }
    if (!base_utf8_valid(name, strlen(name))) {
        fail(st, "[policy %s]: a signal name is not valid UTF-8", p->name);
        return false;
    }
    rwd_spec_find(r, name, &idx, &found);
    if (found) {
        fail(st, "[policy %s]: signal \"%s\" defined twice", p->name, name);
        return false;
    }
    if (r->n_signals == RWD_MAX_SIGNALS) {
        fail(st, "[policy %s]: more than %d signals", p->name, RWD_MAX_SIGNALS);
        return false;
    }
    *out = &r->signal[r->n_signals++];
    return true;
}

/* A key of a [signal POLICY.NAME] section. */
static int signal_key(parse_state *st, const char *k, const char *v)
{
    rwd_signal *g = st->sig;
    bool ok = true;
    if (strcmp(k, "kind") == 0) {
        ok = rwd_kind_from_name(v, &g->kind);
    } else if (strcmp(k, "weight") == 0) {
        ok = svc_config_parse_double(v, -1e6, 1e6, &g->weight);
    } else if (strcmp(k, "min") == 0) {
        ok = svc_config_parse_double(v, -1e12, 1e12, &g->min);
    } else if (strcmp(k, "max") == 0) {
        ok = svc_config_parse_double(v, -1e12, 1e12, &g->max);
    } else if (strcmp(k, "map_min") == 0) {
        ok = svc_config_parse_double(v, -1e12, 1e12, &g->map_min);
    } else if (strcmp(k, "map_max") == 0) {
        ok = svc_config_parse_double(v, -1e12, 1e12, &g->map_max);
    } else if (strcmp(k, "aggregate") == 0) {
        ok = rwd_agg_from_name(v, &g->agg);
    } else {
        return fail(st, "[signal %s.%s]: unknown key \"%s\"", st->pol->name, g->name, k);
    }
    if (!ok) {
        return fail(st, "[signal %s.%s]: invalid value \"%s\" for %s", st->pol->name, g->name, v,
                    k);
    }
    return 1;
}

static int server_key(parse_state *st, const char *k, const char *v)
{
    svc_config *c = st->cfg;
    bool ok = true;
    int taken = svc_config_auth_key(c, k, v, st->err, st->errlen);
    if (taken >= 0) {
        st->failed = taken == 0;
        return taken;
    }
    if (strcmp(k, "url") == 0) {
        /* Empty: the default, set by finish(). */
        ok = svc_config_parse_urls(v, c->urls, &c->n_urls);
    } else if (strcmp(k, "pull_url") == 0) {
        ok = (v[0] == '\0' || svc_config_listen_url_ok(v)) &&
             svc_config_copy_str(c->pull_url, sizeof(c->pull_url), v);
    } else if (strcmp(k, "http_url") == 0) {
        /* Empty: no HTTP endpoint. https:// needs tls_cert (checked at the end). */
        ok = (v[0] == '\0' || svc_config_http_url_ok(v)) &&
             svc_config_copy_str(c->http_url, sizeof(c->http_url), v);
    } else if (strcmp(k, "redis") == 0) {
        ok = (v[0] == '\0' || sto_url_valid(v)) &&
             svc_config_copy_str(c->redis_url, sizeof(c->redis_url), v);
    } else if (strcmp(k, "redis_bin") == 0) {
        ok = svc_config_copy_str(c->redis_bin, sizeof(c->redis_bin), v) && v[0] != '\0';
    } else if (strcmp(k, "data_dir") == 0) {
        ok = svc_config_copy_str(c->data_dir, sizeof(c->data_dir), v);
    } else if (strcmp(k, "ipc_mode") == 0) {
        ok = svc_config_parse_mode(v, &c->ipc_mode);
    } else if (strcmp(k, "ipc_group") == 0) {
        ok = svc_config_copy_str(c->ipc_group, sizeof(c->ipc_group), v);
    } else if (strcmp(k, "insecure") == 0) {
        ok = svc_config_parse_bool(v, &c->insecure);
    } else if (strcmp(k, "appendfsync") == 0) {
        ok = (strcmp(v, "everysec") == 0 || strcmp(v, "always") == 0 || strcmp(v, "no") == 0) &&
             svc_config_copy_str(c->appendfsync, sizeof(c->appendfsync), v);
    } else if (strcmp(k, "log_format") == 0) {
        ok = (strcmp(v, "text") == 0 || strcmp(v, "json") == 0) &&
             svc_config_copy_str(c->log_format, sizeof(c->log_format), v);
    } else if (strcmp(k, "max_message_bytes") == 0) {
        ok = svc_config_parse_u32(v, 1024, 64u << 20, &c->max_message_bytes);
    } else if (strcmp(k, "contexts") == 0) {
        ok = svc_config_parse_u32(v, 1, 256, &c->contexts);
    } else if (strcmp(k, "reply_timeout_ms") == 0) {
        ok = svc_config_parse_u32(v, 10, 600000, &c->reply_timeout_ms);
    } else if (strcmp(k, "write_queue") == 0) {
        ok = svc_config_parse_u32(v, 16, 1u << 24, &c->write_queue);
    } else if (strcmp(k, "group_commit_us") == 0) {
        ok = svc_config_parse_u32(v, 0, 100000, &c->group_commit_us);
    } else if (strcmp(k, "redis_timeout_ms") == 0) {
        ok = svc_config_parse_u32(v, 10, 600000, &c->redis_timeout_ms);
    } else if (strcmp(k, "ack_timeout_ms") == 0) {
        ok = svc_config_parse_u32(v, 10, 600000, &c->ack_timeout_ms);
    } else if (strcmp(k, "replicas_ack") == 0) {
        ok = svc_config_parse_u32(v, 0, 16, &c->replicas_ack);
    } else if (strcmp(k, "replicas_ack_timeout_ms") == 0) {
        ok = svc_config_parse_u32(v, 1, 60000, &c->replicas_ack_timeout_ms);
    } else if (strcmp(k, "instance_id") == 0) {
        ok = strlen(v) <= STO_OWNER_MAX &&
             svc_config_copy_str(c->instance_id, sizeof(c->instance_id), v);
    } else if (strcmp(k, "lease_ms") == 0) {
        ok = svc_config_parse_u32(v, 100, 600000, &c->lease_ms);
    } else if (strcmp(k, "shared") == 0) {
        ok = strcmp(v, "on") == 0 || strcmp(v, "off") == 0;
        c->shared = ok ? strcmp(v, "on") == 0 : c->shared;
    } else if (strcmp(k, "standby") == 0) {
        ok = strcmp(v, "on") == 0 || strcmp(v, "off") == 0;
        c->standby = ok ? strcmp(v, "on") == 0 : c->standby;
    } else if (strcmp(k, "snapshot_interval_ms") == 0) {
        ok = svc_config_parse_u32(v, 100, 86400000, &c->snapshot_interval_ms);
    } else if (strcmp(k, "snapshot_every") == 0) {
        ok = svc_config_parse_u32(v, 1, 1u << 30, &c->snapshot_every);
    } else if (strcmp(k, "retention_ms") == 0) {
        int64_t r = 0;
        ok = svc_config_parse_i64(v, 0, 3650LL * 86400000LL, &r);
        c->retention_ms = (uint64_t)r;
    } else if (strcmp(k, "keep_snapshots") == 0) {
        ok = svc_config_parse_u32(v, 1, 100000, &c->keep_snapshots);
    } else if (strcmp(k, "tick_ms") == 0) {
        ok = svc_config_parse_u32(v, 1, 10000, &c->tick_ms);
    } else if (strcmp(k, "registry_poll_ms") == 0) {
        ok = svc_config_parse_u32(v, 10, 60000, &c->registry_poll_ms);
    } else if (strcmp(k, "rollup_period_ms") == 0) {
        ok = svc_config_parse_u32(v, 100, 86400000, &c->rollup_period_ms);
    } else if (strcmp(k, "rollup_keep") == 0) {
        ok = svc_config_parse_u32(v, 1, SVC_ROLLUP_KEEP_MAX, &c->rollup_keep);
    } else if (strcmp(k, "dashboard_chartjs") == 0) {
        ok = v[0] == '/' &&
             svc_config_copy_str(c->dashboard_chartjs, sizeof(c->dashboard_chartjs), v);
    } else {
        return fail(st, "[server]: unknown key \"%s\"", k);
    }
    if (!ok) {
        char shown[SVC_URL_MAX + 16];
        sto_url_redact(v, shown, sizeof(shown)); /* a redis URL's password stays out of logs */
        return fail(st, "[server]: invalid value \"%s\" for %s", shown, k);
    }
    return 1;
}

static int policy_key(parse_state *st, const char *k, const char *v)
{
    svc_policy_config *p = st->pol;
    bool ok = true;
    char why[128] = "";
    int taken = svc_config_explore_key(p, k, v, st->err, st->errlen);
    if (taken < 0) {
        taken = svc_config_actions_key(p, k, v, st->err, st->errlen);
    }
    if (taken >= 0) {
        st->failed = taken == 0;
        return taken;
    }
    if (strcmp(k, "dim") == 0) {
        ok = svc_config_parse_u32(v, 1, BASE_DIM_MAX, &p->head.dim);
    } else if (strcmp(k, "max_candidates") == 0) {
        ok = svc_config_parse_u32(v, 1, BASE_CAND_MAX, &p->max_candidates);
    } else if (strcmp(k, "epsilon") == 0) {
        ok = svc_config_parse_double(v, 0, 1, &p->head.epsilon);
    } else if (strcmp(k, "temperature") == 0) {
        ok = svc_config_parse_double(v, 1e-6, 1e6, &p->head.temperature);
    } else if (strcmp(k, "base_model_version") == 0) {
        ok = svc_config_utf8_value(v, why, sizeof(why)) &&
             svc_config_copy_str(p->base_version, sizeof(p->base_version), v);
    } else if (strcmp(k, "serve") == 0) {
        ok = base_slot_from_name(v, &p->serve);
    } else if (strcmp(k, "canary") == 0) {
        ok = svc_config_parse_double(v, 0, 1, &p->canary);
    } else if (strcmp(k, "portfolio") == 0) {
        ok = svc_config_copy_str(p->portfolio_spec, sizeof(p->portfolio_spec), v);
    } else if (strcmp(k, "embedding_storage") == 0) {
        base_emb_storage es = BASE_EMB_F32;
        ok = base_emb_storage_from_name(v, &es);
        p->embedding_storage = (uint32_t)es;
    } else if (strcmp(k, "portfolio_mix") == 0) {
        ok = svc_config_parse_double(v, 0, 1, &p->portfolio_mix);
    } else if (strcmp(k, "learner") == 0) {
        ok = pol_learner_from_name(v, &p->head.learner);
    } else if (strcmp(k, "explorer") == 0) {
        ok = pol_explorer_from_name(v, &p->head.explorer);
    } else if (strcmp(k, "lambda") == 0) {
        ok = svc_config_parse_double(v, 1e-9, 1e9, &p->head.lambda);
    } else if (strcmp(k, "prior_mean") == 0) {
        ok = svc_config_parse_double(v, -1e6, 1e6, &p->head.prior_mean);
    } else if (strcmp(k, "base_weight") == 0) {
        ok = svc_config_parse_double(v, -1e6, 1e6, &p->head.base_weight);
    } else if (strcmp(k, "gamma") == 0) {
        ok = svc_config_parse_double(v, 1e-9, 1e12, &p->head.gamma);
    } else if (strcmp(k, "ucb_alpha") == 0) {
        ok = svc_config_parse_double(v, 0, 1e6, &p->head.ucb_alpha);
    } else if (strcmp(k, "learning_rate") == 0) {
        ok = svc_config_parse_double(v, 1e-9, 1e3, &p->head.learning_rate);
    } else if (strcmp(k, "kl") == 0) {
        ok = svc_config_parse_double(v, 0, 1e6, &p->head.kl);
    } else if (strcmp(k, "features") == 0) {
        ok = pol_features_from_name(v, &p->head.features);
    } else if (strcmp(k, "rff_dim") == 0) {
        ok = svc_config_parse_u32(v, 1, POL_RFF_DIM_MAX, &p->head.rff_dim);
    } else if (strcmp(k, "bandwidth") == 0) {
        ok = svc_config_parse_double(v, 1e-6, 1e6, &p->head.bandwidth);
    } else if (strcmp(k, "seed") == 0) {
        int64_t s = 0;
        ok = svc_config_parse_i64(v, 0, INT64_MAX, &s);
        p->head.seed = (uint64_t)s;
    } else if (strcmp(k, "window_ms") == 0) {
        ok = svc_config_parse_i64(v, 1, 400LL * 86400000LL, &p->reward.window_ms);
    } else if (strcmp(k, "default_reward") == 0) {
        ok = svc_config_parse_double(v, -1e9, 1e9, &p->reward.default_reward);
    } else if (strcmp(k, "clip_min") == 0) {
        ok = svc_config_parse_double(v, -1e9, 1e9, &p->reward.clip_min);
    } else if (strcmp(k, "clip_max") == 0) {
        ok = svc_config_parse_double(v, -1e9, 1e9, &p->reward.clip_max);
    } else if (strcmp(k, "max_outcomes") == 0) {
        ok = svc_config_parse_u32(v, 1, 1024, &p->reward.max_outcomes);
    } else if (strcmp(k, "max_pending") == 0) {
        ok = svc_config_parse_u32(v, 16, 1u << 26, &p->max_pending);
    } else if (strcmp(k, "max_embedding_norm") == 0) {
        ok = svc_config_parse_double(v, 0.0, 1e30, &p->max_embedding_norm);
    } else if (strncmp(k, "signal.", 7) == 0) {
        /* Shorthand: signal.NAME = WEIGHT is an event signal, summed. */
        rwd_signal *sg = NULL;
        if (!new_signal(st, p, k + 7, &sg)) {
            return 0;
        }
        rwd_signal_default(sg, k + 7, RWD_EVENT);
        rwd_signal_unset_range(sg);
        ok = svc_config_parse_double(v, -1e6, 1e6, &sg->weight);
    } else if (strcmp(k, "backward_window_ms") == 0) {
        ok = svc_config_parse_i64(v, 0, 400LL * 86400000LL, &p->reward.backward_window_ms);
    } else if (strcmp(k, "late_memory_ms") == 0) {
        ok = svc_config_parse_i64(v, 0, 400LL * 86400000LL, &p->reward.late_memory_ms);
    } else if (strcmp(k, "no_outcome") == 0) {
        ok = strcmp(v, "default") == 0 || strcmp(v, "unknown") == 0;
        p->reward.unknown_when_empty = strcmp(v, "unknown") == 0;
    } else if (strcmp(k, "credit") == 0) {
        ok = rwd_credit_from_name(v, &p->reward.credit);
    } else if (strcmp(k, "credit_gamma") == 0) {
        ok = svc_config_parse_double(v, 1e-9, 1, &p->reward.credit_gamma);
    } else if (strcmp(k, "user_rate_per_s") == 0) {
        ok = svc_config_parse_double(v, 0, 1e9, &p->reward.user_rate_per_s);
    } else if (strcmp(k, "user_burst") == 0) {
        ok = svc_config_parse_double(v, 1, 1e9, &p->reward.user_burst);
    } else if (strcmp(k, "reward_version") == 0) {
        ok = v[0] != '\0' && svc_config_utf8_value(v, why, sizeof(why)) &&
             svc_config_copy_str(p->reward.version, sizeof(p->reward.version), v);
    } else {
        return fail(st, "[policy %s]: unknown key \"%s\"", p->name, k);
    }
    if (!ok) {
        if (why[0] != '\0') {
            return fail(st, "[policy %s]: %s: %s", p->name, k, why);
        }
        return fail(st, "[policy %s]: invalid value \"%s\" for %s", p->name, v, k);
    }
    return 1;
}

/*
 * [signal POLICY.NAME]: POLICY is the longest name of a policy above it that the section's
 * name begins with, followed by "."; a policy name may itself hold dots (faq.v2).
 */
static int open_signal(parse_state *st, const char *section)
{
    const char *full = section + 7;
    svc_policy_config *p = NULL;
    size_t plen = 0;
    for (uint32_t i = 0; i < st->cfg->n_policies; i++) {
        svc_policy_config *q = &st->cfg->policy[i];
        size_t n = strlen(q->name);
        if (n > plen && strncmp(full, q->name, n) == 0 && full[n] == '.') {
            p = q;
            plen = n;
        }
    }
    if (p == NULL) {
        return fail(st,
                    "[%s]: no policy above it that it names (expected [signal POLICY.NAME] "
                    "below [policy POLICY])",
                    section);
    }
    rwd_signal *g = NULL;
    if (!new_signal(st, p, full + plen + 1, &g)) {
        return 0;
    }
    rwd_signal_default(g, full + plen + 1, RWD_EVENT);
    rwd_signal_unset_range(g);
    st->pol = p;
    st->sig = g;
    return 1;
}

static int open_policy(parse_state *st, const char *pname)
{
    svc_config *c = st->cfg;
    if (svc_config_policy(c, pname) != NULL) {
        return fail(st, "policy \"%s\" defined twice", pname);
    }
    if (c->n_policies == SVC_MAX_POLICIES) {
        return fail(st, "too many policies (at \"%s\")", pname);
    }
    /* '[' and ']' delimit the section header: a name holding one could not be written back. */
    if (pname[0] == '\0' || strlen(pname) > BASE_NAME_MAX || strpbrk(pname, "{}[]: \t") != NULL) {
        return fail(st, "bad policy name \"%s\"", pname);
    }
    if (!base_utf8_valid(pname, strlen(pname))) {
        return fail(st, "a policy name is not valid UTF-8");
    }
    st->pol = &c->policy[c->n_policies++];
    base_strlcpy(st->pol->name, pname, sizeof(st->pol->name));
    pol_head_config_default(&st->pol->head, 0, 0);
    base_strlcpy(st->pol->portfolio_spec, "auto", sizeof(st->pol->portfolio_spec));
    st->pol->portfolio_mix = -1.0;
    rwd_spec_default(&st->pol->reward);
    st->pol->max_pending = 1000000;
    return 1;
}

/* Open section @section: what its header defines holds even if no key follows. */
static int open_section(parse_state *st, const char *section)
{
    int ok = 1;
    st->kind = SECTION_NONE;
    st->pol = NULL;
    st->sig = NULL;
    if (!base_strlcpy(st->section, section, sizeof(st->section))) {
        return fail(st, "section [%.64s...] is too long", section); /* the prescan says first */
    }
    if (strcmp(section, "server") == 0) {
        st->kind = SECTION_SERVER;
    } else if (strncmp(section, "signal ", 7) == 0) {
        ok = open_signal(st, section);
        st->kind = SECTION_SIGNAL;
    } else if (strncmp(section, "client ", 7) == 0) {
        if (svc_config_client_open(st->cfg, section + 7, st->err, st->errlen) != BASE_OK) {
            st->failed = true;
            ok = 0;
        }
        st->kind = SECTION_CLIENT;
    } else if (strncmp(section, "policy ", 7) == 0) {
        ok = open_policy(st, section + 7);
        st->kind = SECTION_POLICY;
    } else {
        ok = fail(st, "unknown section [%s]", section);
    }
    return ok;
}

/*
 * Make @section the open one: open every header up to it (in file order; those before it
 * have no keys), unless it is open already.
 */
static int enter_section(parse_state *st, const char *section)
{
    if (st->kind != SECTION_NONE && strcmp(st->section, section) == 0) {
        return 1;
    }
    const svc_config_sections *h = st->headers;
    uint32_t to = st->next_header;
    while (h != NULL && to < h->n && strcmp(h->name[to], section) != 0) {
        to++;
    }
    if (h == NULL || to == h->n) {
        return open_section(st, section); /* not a header the prescan saw */
    }
    for (; st->next_header <= to; st->next_header++) {
        if (open_section(st, h->name[st->next_header]) == 0) {
            return 0;
        }
    }
    return 1;
}

/* Whether key @k of the open section takes a list, which may continue on further lines. */
static bool list_key(const parse_state *st, const char *k)
{
    switch (st->kind) {
    case SECTION_SERVER:
        return strcmp(k, "url") == 0;
    case SECTION_POLICY:
        return strcmp(k, "actions") == 0 || strcmp(k, "no_explore") == 0 ||
               strcmp(k, "portfolio") == 0;
    case SECTION_CLIENT:
        return strcmp(k, "key") == 0 || strcmp(k, "ops") == 0 || strcmp(k, "policies") == 0;
    default:
        return false;
    }
}

/* Take key @k = @v (of @lines lines) of section @section. */
static int take_key(parse_state *st, const char *section, const char *k, const char *v,
                    uint32_t lines)
{
    if (section[0] == '\0') {
        return fail(st, "key \"%.64s\" comes before any [section]", k);
    }
    if (enter_section(st, section) == 0) {
        return 0;
    }
    if (lines > 1 && !list_key(st, k)) {
        return fail(st,
                    "[%s]: %.64s takes one value, but the indented line below it continues it "
                    "(only lists do: url, actions, no_explore, portfolio, and a client's key, ops "
                    "and policies)",
                    section, k);
    }
    switch (st->kind) {
    case SECTION_SERVER:
        return server_key(st, k, v);
    case SECTION_SIGNAL:
        return signal_key(st, k, v);
    case SECTION_POLICY:
        return policy_key(st, k, v);
    case SECTION_CLIENT: {
        int taken = svc_config_client_key(st->cfg, section + 7, k, v, st->err, st->errlen);
        st->failed = taken == 0;
        return taken;
    }
    default:
        return fail(st, "unknown section [%s]", section);
    }
}

/* Take the pending key, if any. */
static int flush_entry(parse_state *st)
{
    if (!st->pending) {
        return 1;
    }
    st->pending = false;
    return take_key(st, st->pend_section, (const char *)st->pend_key.data,
                    (const char *)st->pend_value.data, st->pend_lines);
}

/* Set @b to the @n bytes at @s (append: after them), NUL-terminated. */
static base_err text_put(base_buf *b, bool append, const char *s, size_t n)
{
    if (!append) {
        base_buf_reset(b);
    }
    base_err e = base_buf_reserve(b, n + 1);
    if (e == BASE_OK) {
        e = base_buf_append(b, s, n);
    }
    if (e == BASE_OK) {
        b->data[b->len] = '\0';
    }
    return e;
}

/*
 * Add continuation line @v to the pending value. libinih leaves a continuation's inline
 * comment in (it strips a key line's): cut it the same way, at a ";" after a blank. The line
 * break separates list items like a comma, without making an empty item.
 */
static int continue_entry(parse_state *st, const char *v)
{
    size_t n = 0;
    while (v[n] != '\0' && !(v[n] == ';' && n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))) {
        n++;
    }
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t')) {
        n--;
    }
    base_buf *b = &st->pend_value;
    bool comma = (b->len > 0 && b->data[b->len - 1] == ',') || (n > 0 && v[0] == ',');
    const char *sep = b->len == 0 || n == 0 ? "" : comma ? " " : ", ";
    base_err e = text_put(b, true, sep, strlen(sep));
    if (e == BASE_OK) {
        e = text_put(b, true, v, n);
    }
    st->pend_lines++;
    if (e != BASE_OK) {
        return fail(st, "[%s]: %.64s: the value is longer than %u bytes (or out of memory)",
                    st->pend_section, (const char *)st->pend_key.data, SVC_CONFIG_VALUE_MAX);
    }
    return 1;
}

/* Whether libinih's @name names the pending key (it cuts a continued key's name). */
static bool same_key(const parse_state *st, const char *name)
{
    const char *k = (const char *)st->pend_key.data;
    size_t n = strlen(name);
    return strcmp(k, name) == 0 ||
           (n == SVC_INI_NAME_MAX && st->pend_key.len > n && strncmp(k, name, n) == 0);
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
    parse_state *st = user;
    if (st->failed) {
        return 0;
    }
    /* The prescan refused a key given twice: the same key again is its next line. */
    if (st->pending && strcmp(st->pend_section, section) == 0 && same_key(st, name)) {
        return continue_entry(st, value);
    }
    if (flush_entry(st) == 0) {
        return 0;
    }
    if (!base_strlcpy(st->pend_section, section, sizeof(st->pend_section)) ||
        text_put(&st->pend_key, false, name, strlen(name)) != BASE_OK ||
        text_put(&st->pend_value, false, value, strlen(value)) != BASE_OK) {
        return fail(st, "[%.64s]: %.64s: too long (or out of memory)", section, name);
    }
    st->pending = true;
    st->pend_lines = 1;
    return 1;
}

/* After the last line: take the pending key, then open the sections after it (no keys). */
static void end_parse(parse_state *st)
{
    if (flush_entry(st) == 0) {
        return;
    }
    const svc_config_sections *h = st->headers;
    for (; h != NULL && st->next_header < h->n; st->next_header++) {
        if (open_section(st, h->name[st->next_header]) == 0) {
            return;
        }
    }
}

static void set_defaults(svc_config *c)
{
    memset(c, 0, sizeof(*c));
    base_strlcpy(c->redis_bin, "redis-server", sizeof(c->redis_bin));
    /* Redis answers an XADD before its AOF write while a background fsync is still running
     * under everysec, so a redis-server crash can lose acknowledged writes: the default keeps
     * what "acknowledged" promises (docs/operations.md). */
    base_strlcpy(c->appendfsync, "always", sizeof(c->appendfsync));
    base_strlcpy(c->log_format, "text", sizeof(c->log_format));
    c->max_message_bytes = 1u << 20;
    c->auth_window_ms = 30000;
    c->auth_replay_max = 1000000;
    c->contexts = 128;
    c->reply_timeout_ms = 1000;
    base_strlcpy(c->http_url, SVC_HTTP_URL_DEFAULT, sizeof(c->http_url));
    c->write_queue = 65536;
    c->ipc_mode = 0600;
    c->group_commit_us = 1000;
    c->redis_timeout_ms = 2000;
    c->ack_timeout_ms = 1000;
    c->lease_ms = 10000;
    c->snapshot_interval_ms = 10000;
    c->registry_poll_ms = 250;
    c->replicas_ack_timeout_ms = 500;
    c->rollup_period_ms = 60000;
    c->rollup_keep = 10080;
    base_strlcpy(c->dashboard_chartjs, SVC_CHARTJS_DEFAULT, sizeof(c->dashboard_chartjs));
    c->snapshot_every = 10000;
    c->retention_ms = 7ULL * 86400000ULL;
    c->keep_snapshots = 5;
    c->tick_ms = 20;
}

/* inih keeps its line-buffer settings in globals; long action lists need more than 200. */
static void configure_inih(void)
{
    ini_use_stack = false;
    ini_allow_realloc = true;
    ini_max_line = 1 << 20;
}

static base_err load(const char *path, const char *text, svc_config *out, char *errbuf,
                     size_t errlen)
{
    svc_config_sections headers = {0};
    parse_state st = {.cfg = out, .headers = &headers, .err = errbuf, .errlen = errlen};
    base_buf_init(&st.pend_key, SVC_CONFIG_VALUE_MAX);
    base_buf_init(&st.pend_value, SVC_CONFIG_VALUE_MAX);
    set_defaults(out);
    configure_inih();
    int r = 0;
    base_err pe = BASE_OK;
    FILE *fp = path != NULL ? fopen(path, "r") : NULL;
    if (path != NULL && fp == NULL) {
        r = -1;
    } else {
        pe = svc_config_prescan(text, fp, &headers, errbuf, errlen);
    }
    if (r == 0 && pe == BASE_OK) {
        r = fp != NULL ? ini_parse_file(fp, on_entry, &st) : ini_parse_string(text, on_entry, &st);
        if (r == 0 && !st.failed) {
            end_parse(&st);
        }
    }
    if (fp != NULL) {
        fclose(fp);
    }
    base_err e = BASE_OK;
    if (r == -1) {
        snprintf(errbuf, errlen, "cannot open %s: %s", path, strerror(errno));
        e = BASE_EIO;
    } else if (pe != BASE_OK) {
        e = pe; /* the reason is in errbuf */
    } else if (r == -2) {
        snprintf(errbuf, errlen, "out of memory");
        e = BASE_ENOMEM;
    } else if (st.failed) {
        e = BASE_EINVAL;
    } else if (r > 0) {
        snprintf(errbuf, errlen, "line %d: syntax error", r);
        e = BASE_EINVAL;
    } else {
        e = svc_config_finish(out, errbuf, errlen);
    }
    base_buf_fini(&st.pend_key);
    base_buf_fini(&st.pend_value);
    svc_config_sections_fini(&headers);
    if (e != BASE_OK) {
        svc_config_fini(out);
    }
    return e;
}

base_err svc_config_load(const char *path, svc_config *out, char *errbuf, size_t errlen)
{
    return load(path, NULL, out, errbuf, errlen);
}

base_err svc_config_load_string(const char *text, svc_config *out, char *errbuf, size_t errlen)
{
    return load(NULL, text, out, errbuf, errlen);
}

base_err svc_config_apply_flag(svc_config *c, const char *flag, const char *value, char *errbuf,
                               size_t errlen)
{
    /* Each flag and the [server] key it overrides, which parses it. */
    static const char *const flags[][2] = {
        {"url", "url"},           {"pull-url", "pull_url"},       {"redis", "redis"},
        {"data-dir", "data_dir"}, {"appendfsync", "appendfsync"}, {"log-format", "log_format"},
        {"http-url", "http_url"},
    };
    const char *key = NULL;
    base_err e = BASE_OK;

    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]) && key == NULL; i++) {
        if (strcmp(flag, flags[i][0]) == 0) {
            key = flags[i][1];
        }
    }
    if (key == NULL) {
        snprintf(errbuf, errlen, "--%s is not a configuration flag", flag);
        e = BASE_EINVAL;
        goto fail;
    }
    if (strcmp(key, "url") == 0) {
        /* Like the url key, but the list replaces the file's only when it is valid. */
        char urls[SVC_MAX_URLS][SVC_URL_MAX]; /* 4 KiB */
        uint32_t n = 0;
        if (svc_config_parse_urls(value, urls, &n) && n > 0) {
            memcpy(c->urls, urls, (size_t)n * SVC_URL_MAX);
            c->n_urls = n;
        } else {
            snprintf(errbuf, errlen,
                     "--url needs 1 to %d URLs (ipc://PATH, tcp://HOST:PORT, tls+tcp://HOST:PORT) "
                     "of less than %d bytes, separated by commas",
                     SVC_MAX_URLS, SVC_URL_MAX);
            e = BASE_EINVAL;
        }
        goto fail;
    }
    char why[256] = "";
    parse_state st = {.cfg = c, .in_server = true, .err = why, .errlen = sizeof(why)};
    (void)server_key(&st, key, value); /* the result is in st.failed */
    if (st.failed) {
        char shown[SVC_URL_MAX + 16];
        sto_url_redact(value, shown, sizeof(shown)); /* a redis URL's password stays out */
        snprintf(errbuf, errlen, "--%s: invalid value \"%.100s\"", flag, shown);
        e = BASE_EINVAL;
    }
fail:
    return e;
}
