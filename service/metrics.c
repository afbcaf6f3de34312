#include "service/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/record.h"
#include "proto/errors.h"
#include "proto/reply.h"
#include "proto/request.h"

typedef base_writer writer;

static void family(writer *w, const char *name, const char *type, const char *help)
{
    base_writer_printf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value with \, " and newline escaped, as the format requires. */
static void escaped(writer *w, const char *v)
{
    for (const char *c = v; *c != '\0'; c++) {
        if (*c == '\\') {
            base_writer_put(w, "\\\\", 2);
        } else if (*c == '"') {
            base_writer_put(w, "\\\"", 2);
        } else if (*c == '\n') {
            base_writer_put(w, "\\n", 2);
        } else {
            base_writer_put(w, c, 1);
        }
    }
}

/* A float as the format spells it: NaN, +Inf, -Inf, else %.17g (round-trips). */
static void value_f(writer *w, double v)
{
    if (isnan(v)) {
        base_writer_put(w, " NaN\n", 5);
    } else if (isinf(v)) {
        base_writer_printf(w, " %sInf\n", v > 0 ? "+" : "-");
    } else {
        base_writer_printf(w, " %.17g\n", v);
    }
}

static void value_u(writer *w, uint64_t v)
{
    base_writer_printf(w, " %" PRIu64 "\n", v);
}

/* name{k1="v1"[,k2="v2"]} with up to two labels (NULL key: none). */
static void sample(writer *w, const char *name, const char *k1, const char *v1, const char *k2,
                   const char *v2)
{
    base_writer_printf(w, "%s", name);
    if (k1 != NULL) {
        base_writer_printf(w, "{%s=\"", k1);
        escaped(w, v1);
        base_writer_put(w, "\"", 1);
        if (k2 != NULL) {
            base_writer_printf(w, ",%s=\"", k2);
            escaped(w, v2);
            base_writer_put(w, "\"", 1);
        }
        base_writer_put(w, "}", 1);
    }
}

/* A per-policy counter or gauge read from proto_policy_stats by offset. */
typedef struct pol_metric {
    const char *name, *type, *help;
    size_t offset; /* of a uint64_t in proto_policy_stats */
} pol_metric;

#define PM(n, t, h, field)                                                                         \
    {                                                                                              \
        n, t, h, offsetof(proto_policy_stats, field)                                               \
    }

static const pol_metric pol_metrics[] = {
    PM("rlfeed_logged_decisions_total", "counter",
       "Decisions made elsewhere and logged with the log op.", logged),
    PM("rlfeed_unlogged_decisions_total", "counter",
       "Decisions served but not logged because the write queue was full.", unlogged),
    PM("rlfeed_overflow_decisions_total", "counter",
       "Decisions logged past max_pending, never joined.", overflow),
    PM("rlfeed_joined_examples_total", "counter", "Joined examples stored.", joined),
    PM("rlfeed_defaulted_examples_total", "counter",
       "Joined examples stored with no outcome (default reward).", defaulted),
    PM("rlfeed_unknown_examples_total", "counter",
       "Joined examples emitted with no outcome and no default (reward unknown).", join.unknown),
    PM("rlfeed_dangling_outcomes_total", "counter",
       "Early outcomes that never found their decision.", join.dangling),
    PM("rlfeed_not_activated_decisions_total", "counter",
       "Deferred decisions dropped because they were never activated.", join.not_activated),
    PM("rlfeed_activations_total", "counter", "Deferred decisions activated (shown to the user).",
       join.activations),
    PM("rlfeed_model_updates_total", "counter", "Examples applied to the online head.", updates),
    PM("rlfeed_learn_errors_total", "counter", "Examples the online head failed to learn.",
       learn_errors),
    PM("rlfeed_store_errors_total", "counter", "Records of this policy that ended unstored.",
       store_errors),
    PM("rlfeed_snapshots_total", "counter", "Model snapshots (checkpoints) queued for Redis.",
       snapshots),
    PM("rlfeed_registry_errors_total", "counter",
       "Registry reads or production model loads that failed.", registry_errors),
    PM("rlfeed_reward_alarms_total", "counter",
       "Times the reward alarm was raised: learned rewards far outside their recent range.",
       reward_alarms),
    PM("rlfeed_portfolio_switches_total", "counter",
       "Times the online portfolio's serving member changed.", portfolio.switches),
    PM("rlfeed_forwarded_total", "counter",
       "shared = on, a follower: records handed to the policy's owner through its inbox.",
       forwarded),
    PM("rlfeed_inbox_taken_total", "counter",
       "shared = on, the owner: inbox entries taken (records followers handed over).", inbox),
    PM("rlfeed_inbox_bad_total", "counter",
       "shared = on, the owner: inbox entries skipped (not a record, or not fitting the policy).",
       inbox_bad),
    PM("rlfeed_inbox_conflicts_total", "counter",
       "shared = on, the owner: forwarded decisions dropped under an event id another holds.",
       inbox_conflicts),
    PM("rlfeed_pending_decisions", "gauge",
       "Decisions waiting in the join for their window to close.", pending),
    PM("rlfeed_deferred_decisions", "gauge", "Pending decisions not yet activated.", join.deferred),
};

static uint64_t field_u64(const proto_policy_stats *p, size_t offset)
{
    uint64_t v;
    memcpy(&v, (const char *)p + offset, sizeof(v));
    return v;
}

static void per_slot(writer *w, const proto_stats *s)
{
    family(w, "rlfeed_decisions_total", "counter", "Decide requests served, by serving slot.");
    for (uint32_t i = 0; i < s->n_policies; i++) {
        for (uint32_t k = 0; k < PROTO_SLOTS; k++) {
            sample(w, "rlfeed_decisions_total", "policy", s->policies[i].name, "slot",
                   base_slot_name(k));
            value_u(w, s->policies[i].slots[k].decisions);
        }
    }
    family(w, "rlfeed_slot_joined_examples_total", "counter",
           "Joined examples learned from, by the slot that served the decision.");
    for (uint32_t i = 0; i < s->n_policies; i++) {
        for (uint32_t k = 0; k < PROTO_SLOTS; k++) {
            sample(w, "rlfeed_slot_joined_examples_total", "policy", s->policies[i].name, "slot",
                   base_slot_name(k));
            value_u(w, s->policies[i].slots[k].joined);
        }
    }
    family(w, "rlfeed_mean_reward", "gauge",
           "Mean reward of the joined examples of the slot's decisions, since start.");
    for (uint32_t i = 0; i < s->n_policies; i++) {
        for (uint32_t k = 0; k < PROTO_SLOTS; k++) {
            sample(w, "rlfeed_mean_reward", "policy", s->policies[i].name, "slot",
                   base_slot_name(k));
            value_f(w, s->policies[i].slots[k].mean_reward);
        }
    }
    /* A gauge, not a counter: rewards may be negative, and a counter never decreases. */
    family(w, "rlfeed_reward_accumulated", "gauge",
           "Sum of the rewards of the joined examples of the slot's decisions, since start.");
    for (uint32_t i = 0; i < s->n_policies; i++) {
        for (uint32_t k = 0; k < PROTO_SLOTS; k++) {
            const proto_slot_stats *sl = &s->policies[i].slots[k];
            sample(w, "rlfeed_reward_accumulated", "policy", s->policies[i].name, "slot",
                   base_slot_name(k));
            value_f(w, sl->mean_reward * (double)sl->joined);
        }
    }
    family(w, "rlfeed_model_version", "gauge",
           "Model version the slot serves (production: 0 is the base model).");
    for (uint32_t i = 0; i < s->n_policies; i++) {
        for (uint32_t k = 0; k < PROTO_SLOTS; k++) {
            sample(w, "rlfeed_model_version", "policy", s->policies[i].name, "slot",
                   base_slot_name(k));
            value_u(w, s->policies[i].slots[k].model_version);
        }
    }
}

static void outcomes(writer *w, const proto_stats *s)
{
    family(w, "rlfeed_outcomes_total", "counter", "Outcomes (feedback) by the join's status.");
    for (uint32_t i = 0; i < s->n_policies; i++) {
        for (int st = 0; st < PROTO_ST_JOIN_COUNT; st++) {
            sample(w, "rlfeed_outcomes_total", "policy", s->policies[i].name, "status",
                   proto_status_name((proto_status)st));
            value_u(w, s->policies[i].join.status[st]);
        }
    }
}

static void per_policy(writer *w, const proto_stats *s)
{
    family(w, "rlfeed_policy_owned", "gauge",
           "1 if this instance owns the policy (joins, learns, checkpoints it), 0 if it follows "
           "its owner (shared = on).");
    for (uint32_t i = 0; i < s->n_policies; i++) {
        sample(w, "rlfeed_policy_owned", "policy", s->policies[i].name, NULL, NULL);
        value_u(w, strcmp(s->policies[i].role, "follower") != 0);
    }
    for (size_t m = 0; m < sizeof(pol_metrics) / sizeof(pol_metrics[0]); m++) {
        const pol_metric *pm = &pol_metrics[m];
        family(w, pm->name, pm->type, pm->help);
        for (uint32_t i = 0; i < s->n_policies; i++) {
            sample(w, pm->name, "policy", s->policies[i].name, NULL, NULL);
            value_u(w, field_u64(&s->policies[i], pm->offset));
        }
    }
}

/* Exploration by segment (docs/algorithms.md, "Exploration rules"). */
static void exploration(writer *w, const proto_stats *s)
{
    family(w, "rlfeed_segment_decisions_total", "counter",
           "Decisions served, by policy and segment (\"*\": none or unconfigured).");
    for (uint32_t i = 0; i < s->n_policies; i++) {
        const proto_policy_stats *p = &s->policies[i];
        for (uint32_t g = 0; g < p->n_segments; g++) {
            sample(w, "rlfeed_segment_decisions_total", "policy", p->name, "segment",
                   p->segments[g].name);
            value_u(w, p->segments[g].decisions);
        }
    }
    family(w, "rlfeed_segment_exploration_total", "counter",
           "Exploration probability spent (1 - the largest probability), summed over decisions.");
    for (uint32_t i = 0; i < s->n_policies; i++) {
        const proto_policy_stats *p = &s->policies[i];
        for (uint32_t g = 0; g < p->n_segments; g++) {
            sample(w, "rlfeed_segment_exploration_total", "policy", p->name, "segment",
                   p->segments[g].name);
            value_f(w, p->segments[g].mean_explore * (double)p->segments[g].decisions);
        }
    }
}

/* The online slot's portfolio, one sample per member (docs/algorithms.md, section 11). */
static void portfolio(writer *w, const proto_stats *s)
{
    static const char *const names[] = {
        "rlfeed_portfolio_member_serving", "rlfeed_portfolio_member_live",
        "rlfeed_portfolio_member_estimate", "rlfeed_portfolio_member_share"};
    static const char *const helps[] = {
        "1 for the portfolio member that serves the online slot, else 0.",
        "1 while a portfolio member learns and is scored, 0 once dropped.",
        "A portfolio member's progressive doubly robust value estimate (reward).",
        "The share of the online slot's pmf a portfolio member serves (0..1)."};
    for (int k = 0; k < 4; k++) {
        family(w, names[k], "gauge", helps[k]);
        for (uint32_t i = 0; i < s->n_policies; i++) {
            const proto_portfolio_stats *pf = &s->policies[i].portfolio;
            for (uint32_t m = 0; m < pf->n_members; m++) {
                const proto_member_stats *ms = &pf->member[m];
                sample(w, names[k], "policy", s->policies[i].name, "member", ms->name);
                if (k == 0) {
                    value_u(w, strcmp(ms->name, pf->serving) == 0);
                } else if (k == 1) {
                    value_u(w, ms->live);
                } else {
                    value_f(w, k == 2 ? ms->estimate : ms->share);
                }
            }
        }
    }
}

static void ope(writer *w, const proto_stats *s, const svc_ope_reading *o)
{
    family(w, "rlfeed_ope_ess", "gauge",
           "Effective sample size of the online head against the logged pmf, last 60 s.");
    for (uint32_t i = 0; i < s->n_policies; i++) {
        sample(w, "rlfeed_ope_ess", "policy", s->policies[i].name, NULL, NULL);
        value_f(w, o[i].ess);
    }
    family(w, "rlfeed_ope_min_propensity", "gauge",
           "Smallest logged propensity of a chosen candidate, last 60 s (0: no decisions).");
    for (uint32_t i = 0; i < s->n_policies; i++) {
        sample(w, "rlfeed_ope_min_propensity", "policy", s->policies[i].name, NULL, NULL);
        value_f(w, o[i].min_propensity);
    }
    family(w, "rlfeed_ope_window_decisions", "gauge", "Decisions in the OPE window, last 60 s.");
    for (uint32_t i = 0; i < s->n_policies; i++) {
        sample(w, "rlfeed_ope_window_decisions", "policy", s->policies[i].name, NULL, NULL);
        value_u(w, o[i].n);
    }
}

static void service(writer *w, const proto_stats *s)
{
    family(w, "rlfeed_rejected_requests_total", "counter", "Requests refused, by error code.");
    for (int c = PROTO_E_NONE + 1; c < PROTO_E_COUNT; c++) {
        sample(w, "rlfeed_rejected_requests_total", "code", proto_errcode_name((proto_errcode)c),
               NULL, NULL);
        value_u(w, s->rejected[c]);
    }
    if (s->auth) {
        static const char *const results[] = {"accepted", "unauthorized", "forbidden",
                                              "rate_limited"};
        family(w, "rlfeed_client_requests_total", "counter",
               "Requests by configured client and how they fared (auth = on).");
        for (uint32_t i = 0; i < s->n_clients; i++) {
            const proto_client_stats *c = &s->clients[i];
            const uint64_t v[4] = {c->accepted, c->unauthorized, c->forbidden, c->rate_limited};
            for (int k = 0; k < 4; k++) {
                sample(w, "rlfeed_client_requests_total", "client", c->name, "result", results[k]);
                value_u(w, v[k]);
            }
        }
        family(w, "rlfeed_client_alarms_total", "counter",
               "Times a client's alarm was raised (its outcome cap, or its outcome rate).");
        for (uint32_t i = 0; i < s->n_clients; i++) {
            sample(w, "rlfeed_client_alarms_total", "client", s->clients[i].name, NULL, NULL);
            value_u(w, s->clients[i].alarms);
        }
        family(w, "rlfeed_unknown_client_requests_total", "counter",
               "Requests without a proof or naming no configured client (auth = on).");
        sample(w, "rlfeed_unknown_client_requests_total", NULL, NULL, NULL, NULL);
        value_u(w, s->auth_unknown);
    }
    const proto_storage_stats *st = &s->storage;
    family(w, "rlfeed_write_queue_depth", "gauge", "Records waiting in the write queue.");
    sample(w, "rlfeed_write_queue_depth", NULL, NULL, NULL, NULL);
    value_u(w, st->queue_depth);
    family(w, "rlfeed_write_queue_capacity", "gauge", "Capacity of the write queue, in records.");
    sample(w, "rlfeed_write_queue_capacity", NULL, NULL, NULL, NULL);
    value_u(w, st->queue_capacity);
    family(w, "rlfeed_records_written_total", "counter", "Records stored in Redis.");
    sample(w, "rlfeed_records_written_total", NULL, NULL, NULL, NULL);
    value_u(w, st->written);
    family(w, "rlfeed_records_failed_total", "counter",
           "Records and checkpoints that ended unstored.");
    sample(w, "rlfeed_records_failed_total", NULL, NULL, NULL, NULL);
    value_u(w, st->failed);
    family(w, "rlfeed_records_trimmed_total", "counter", "Stream entries trimmed by retention.");
    sample(w, "rlfeed_records_trimmed_total", NULL, NULL, NULL, NULL);
    value_u(w, st->trimmed);
    family(w, "rlfeed_audit_failed_total", "counter",
           "Audit entries the daemon could not append (restore, config, retention).");
    sample(w, "rlfeed_audit_failed_total", NULL, NULL, NULL, NULL);
    value_u(w, st->audit_failed);
    family(w, "rlfeed_pull_paused_total", "counter",
           "Times taking PULL messages paused until the write queue had room for them.");
    sample(w, "rlfeed_pull_paused_total", NULL, NULL, NULL, NULL);
    value_u(w, st->pull_paused);
    family(w, "rlfeed_redis_up", "gauge", "1 if the writer's Redis connection works, else 0.");
    sample(w, "rlfeed_redis_up", NULL, NULL, NULL, NULL);
    value_u(w, st->redis == PROTO_REDIS_UP ? 1 : 0);
}

static void latency(writer *w, const svc_lat_reading *l)
{
    static const double bounds[SVC_LAT_BUCKETS] = SVC_LAT_BOUNDS_S;
    const char *name = "rlfeed_request_duration_seconds";
    family(w, name, "histogram",
           "Time from the start of handling a request to its reply being handed to nng.");
    for (uint32_t op = 0; op < SVC_LAT_OPS; op++) {
        const char *opname = proto_op_name((proto_op)op);
        uint64_t cum = 0;
        char le[32];
        for (uint32_t k = 0; k <= SVC_LAT_BUCKETS; k++) {
            cum += l->bucket[op][k];
            if (k < SVC_LAT_BUCKETS) {
                snprintf(le, sizeof(le), "%g", bounds[k]);
            } else {
                snprintf(le, sizeof(le), "+Inf");
            }
            sample(w, "rlfeed_request_duration_seconds_bucket", "op", opname, "le", le);
            value_u(w, cum);
        }
        sample(w, "rlfeed_request_duration_seconds_sum", "op", opname, NULL, NULL);
        value_f(w, l->sum_s[op]);
        sample(w, "rlfeed_request_duration_seconds_count", "op", opname, NULL, NULL);
        value_u(w, cum);
    }
}

base_err svc_metrics_write(base_buf *out, const svc_metrics_input *in)
{
    writer w = {out, BASE_OK};
    per_slot(&w, in->stats);
    outcomes(&w, in->stats);
    per_policy(&w, in->stats);
    portfolio(&w, in->stats);
    exploration(&w, in->stats);
    ope(&w, in->stats, in->ope);
    service(&w, in->stats);
    latency(&w, in->lat);
    return w.err;
}
