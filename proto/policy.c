#include "proto/policy.h"

#include <inttypes.h>
#include <stdio.h>

#include "proto/mp.h"

/* The keys of a list entry, which open the detail too: 5 pairs. */
static void summary(proto_writer *w, const proto_policy_info *p)
{
    proto_w_str(w, "name");
    proto_w_str(w, p->name);
    proto_w_str(w, "serve");
    proto_w_str(w, p->serve);
    proto_w_str(w, "canary");
    proto_w_double(w, p->canary);
    proto_w_str(w, "versions");
    proto_w_map(w, 2);
    proto_w_str(w, "online");
    proto_w_uint(w, p->online_version);
    proto_w_str(w, "production");
    proto_w_uint(w, p->production_version);
    proto_w_str(w, "reward_version");
    proto_w_str(w, p->reward_version);
}

static void reward(proto_writer *w, const proto_policy_info *p)
{
    proto_w_map(w, 11);
    proto_w_str(w, "version");
    proto_w_str(w, p->reward_version);
    proto_w_str(w, "signals");
    proto_w_array(w, p->n_signals);
    for (uint32_t i = 0; i < p->n_signals; i++) {
        const proto_policy_signal *s = &p->signals[i];
        proto_w_map(w, 7);
        proto_w_str(w, "name");
        proto_w_str(w, s->name);
        proto_w_str(w, "kind");
        proto_w_str(w, s->kind);
        proto_w_str(w, "weight");
        proto_w_double(w, s->weight);
        proto_w_str(w, "min");
        proto_w_double(w, s->min);
        proto_w_str(w, "max");
        proto_w_double(w, s->max);
        proto_w_str(w, "map");
        proto_w_array(w, 2);
        proto_w_double(w, s->map_min);
        proto_w_double(w, s->map_max);
        proto_w_str(w, "aggregation");
        proto_w_str(w, s->aggregation);
    }
    proto_w_str(w, "clip");
    proto_w_array(w, 2);
    proto_w_double(w, p->clip_min);
    proto_w_double(w, p->clip_max);
    proto_w_str(w, "default_reward");
    proto_w_double(w, p->default_reward);
    proto_w_str(w, "unknown_when_empty");
    proto_w_bool(w, p->unknown_when_empty);
    proto_w_str(w, "window_ms");
    proto_w_int(w, p->window_ms);
    proto_w_str(w, "backward_window_ms");
    proto_w_int(w, p->backward_window_ms);
    proto_w_str(w, "credit");
    proto_w_str(w, p->credit);
    proto_w_str(w, "credit_gamma");
    proto_w_double(w, p->credit_gamma);
    proto_w_str(w, "max_outcomes");
    proto_w_uint(w, p->max_outcomes);
    proto_w_str(w, "user_rate");
    proto_w_map(w, 2);
    proto_w_str(w, "per_s");
    proto_w_double(w, p->user_rate_per_s);
    proto_w_str(w, "burst");
    proto_w_double(w, p->user_burst);
}

static void config(proto_writer *w, const proto_policy_info *p)
{
    proto_w_map(w, 17);
    proto_w_str(w, "dim");
    proto_w_uint(w, p->dim);
    proto_w_str(w, "actions");
    proto_w_array(w, p->n_actions);
    for (uint32_t i = 0; i < p->n_actions; i++) {
        proto_w_str(w, p->actions[i]);
    }
    proto_w_str(w, "action_set");
    proto_w_str(w, p->action_set != NULL ? p->action_set : "closed");
    proto_w_str(w, "action_dim");
    proto_w_uint(w, p->action_dim);
    proto_w_str(w, "definition_version");
    proto_w_uint(w, p->definition_version);
    proto_w_str(w, "max_candidates");
    proto_w_uint(w, p->max_candidates);
    proto_w_str(w, "learner");
    proto_w_str(w, p->learner);
    proto_w_str(w, "explorer");
    proto_w_str(w, p->explorer);
    proto_w_str(w, "portfolio");
    proto_w_str(w, p->portfolio != NULL ? p->portfolio : "");
    proto_w_str(w, "epsilon");
    proto_w_double(w, p->epsilon);
    proto_w_str(w, "temperature");
    proto_w_double(w, p->temperature);
    proto_w_str(w, "learning_rate");
    proto_w_double(w, p->learning_rate);
    proto_w_str(w, "seed");
    proto_w_uint(w, p->seed);
    proto_w_str(w, "max_pending");
    proto_w_uint(w, p->max_pending);
    proto_w_str(w, "base_version");
    proto_w_str(w, p->base_version);
    proto_w_str(w, "serve");
    proto_w_str(w, p->config_serve);
    proto_w_str(w, "canary");
    proto_w_double(w, p->config_canary);
}

/* Finish @w; on failure @out goes back to @start bytes. */
static base_err finish(proto_writer *w, base_buf *out, size_t start)
{
    base_err e = proto_writer_finish(w);
    if (e != BASE_OK) {
        out->len = start;
    }
    return e;
}

base_err proto_reply_policies(base_buf *out, const proto_policy_info *p, uint32_t n)
{
    size_t start = out->len;
    proto_writer w;
    proto_writer_init(&w, out);
    proto_w_map(&w, 2);
    proto_w_str(&w, "ok");
    proto_w_bool(&w, true);
    proto_w_str(&w, "policies");
    proto_w_array(&w, n);
    for (uint32_t i = 0; i < n; i++) {
        proto_w_map(&w, 5);
        summary(&w, &p[i]);
    }
    return finish(&w, out, start);
}

base_err proto_reply_policy(base_buf *out, const proto_policy_info *p)
{
    size_t start = out->len;
    char sum[17];
    proto_writer w;
    proto_writer_init(&w, out);
    (void)snprintf(sum, sizeof(sum), "%016" PRIx64, p->model_checksum); /* 16 digits */
    proto_w_map(&w, 2);
    proto_w_str(&w, "ok");
    proto_w_bool(&w, true);
    proto_w_str(&w, "policy");
    proto_w_map(&w, 9);
    summary(&w, p);
    proto_w_str(&w, "model_checksum");
    proto_w_str(&w, sum);
    proto_w_str(&w, "config_hash");
    proto_w_str(&w, p->config_hash);
    proto_w_str(&w, "reward");
    reward(&w, p);
    proto_w_str(&w, "config");
    config(&w, p);
    return finish(&w, out, start);
}
