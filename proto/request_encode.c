#include "proto/request.h"

#include "proto/mp.h"

/*
 * The request encoders of proto/request.h; their decoder is proto/request.c. Keys are
 * written in the order of docs/protocol.md's tables, optional ones only when set, so that
 * proto_request_decode() gives back what was encoded.
 */

static bool set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* {"v":1, "op":@op, ...}: the header every request starts with; @n_more pairs follow. */
static void w_header(proto_writer *w, proto_op op, uint32_t n_more)
{
    proto_w_map(w, 2 + n_more);
    proto_w_str(w, "v");
    proto_w_int(w, PROTO_VERSION);
    proto_w_str(w, "op");
    proto_w_str(w, proto_op_name(op));
}

/* "key": @val, only when @val is set; pair counting is the caller's. */
static void w_opt_str(proto_writer *w, const char *key, const char *val)
{
    if (set(val)) {
        proto_w_str(w, key);
        proto_w_str(w, val);
    }
}

/* Finish @w; on failure cut @out back to @start so no half-written message remains. */
static base_err finish(proto_writer *w, size_t start)
{
    base_err e = proto_writer_finish(w);
    if (e != BASE_OK) {
        w->out->len = start;
    }
    return e;
}

/*
 * decide or log from @q; the candidates come from @cand when it is not NULL (a decoded
 * request), else from q->cand_ids and q->base_logits.
 */
static base_err encode_choice(base_buf *out, proto_op op, const proto_decide_req *q,
                              const proto_candidate *cand)
{
    bool is_log = op == PROTO_OP_LOG;
    size_t start = out->len;
    proto_writer w;

    if (!set(q->policy) || q->embedding == NULL || q->dim > BASE_DIM_MAX || q->n_cand == 0 ||
        q->n_cand > BASE_CAND_MAX ||
        (cand == NULL && (q->cand_ids == NULL || q->base_logits == NULL)) ||
        (is_log && (!set(q->event_id) || !set(q->chosen) || q->pmf == NULL)) ||
        (q->has_explore_budget && !(q->explore_budget >= 0.0 && q->explore_budget <= 1.0)) ||
        (q->features != NULL && (q->action_dim == 0 || q->action_dim > BASE_ACTION_DIM_MAX))) {
        return BASE_EINVAL;
    }
    for (uint32_t i = 0; cand == NULL && i < q->n_cand; i++) {
        if (q->cand_ids[i] == NULL) {
            return BASE_EINVAL;
        }
    }
    proto_writer_init(&w, out);
    w_header(&w, op,
             3 + set(q->event_id) + set(q->conversation_id) + set(q->user_id) + (q->turn != 0) +
                 q->deferred + (!is_log && q->no_explore) + (!is_log && q->has_explore_budget) +
                 (is_log ? 2 : 0));
    proto_w_str(&w, "policy");
    proto_w_str(&w, q->policy);
    w_opt_str(&w, "event_id", q->event_id);
    w_opt_str(&w, "conversation_id", q->conversation_id);
    w_opt_str(&w, "user_id", q->user_id);
    if (q->turn != 0) {
        proto_w_str(&w, "turn");
        proto_w_uint(&w, q->turn);
    }
    if (q->deferred) {
        proto_w_str(&w, "deferred");
        proto_w_bool(&w, true);
    }
    if (!is_log && q->no_explore) {
        proto_w_str(&w, "explore");
        proto_w_bool(&w, false);
    }
    if (!is_log && q->has_explore_budget) {
        proto_w_str(&w, "explore_budget");
        proto_w_double(&w, q->explore_budget);
    }
    proto_w_str(&w, "context");
    proto_w_map(&w, 1 + set(q->segment));
    if (set(q->segment)) {
        proto_w_str(&w, "segment");
        proto_w_str(&w, q->segment);
    }
    proto_w_str(&w, "embedding");
    proto_w_f32_bin(&w, q->embedding, q->dim);
    proto_w_str(&w, "candidates");
    proto_w_array(&w, q->n_cand);
    for (uint32_t i = 0; i < q->n_cand; i++) {
        proto_w_map(&w, q->features != NULL ? 3 : 2);
        proto_w_str(&w, "id");
        proto_w_str(&w, cand != NULL ? cand[i].id : q->cand_ids[i]);
        proto_w_str(&w, "base_logit");
        proto_w_double(&w, cand != NULL ? cand[i].base_logit : q->base_logits[i]);
        if (q->features != NULL) {
            proto_w_str(&w, "features");
            proto_w_f32_bin(&w, q->features + (size_t)i * q->action_dim, q->action_dim);
        }
    }
    if (is_log) {
        proto_w_str(&w, "chosen");
        proto_w_str(&w, q->chosen);
        proto_w_str(&w, "pmf");
        proto_w_f32_bin(&w, q->pmf, q->n_cand);
    }
    return finish(&w, start);
}

base_err proto_encode_decide(base_buf *out, const proto_decide_req *q)
{
    return encode_choice(out, PROTO_OP_DECIDE, q, NULL);
}

base_err proto_encode_log(base_buf *out, const proto_decide_req *q)
{
    return encode_choice(out, PROTO_OP_LOG, q, NULL);
}

base_err proto_encode_feedback(base_buf *out, const proto_feedback_req *q)
{
    size_t start = out->len;
    proto_writer w;

    if (!set(q->policy) || !set(q->signal) || (!set(q->event_id) && !set(q->conversation_id)) ||
        q->ts_ms < 0) {
        return BASE_EINVAL;
    }
    proto_writer_init(&w, out);
    w_header(&w, PROTO_OP_FEEDBACK,
             3 + set(q->event_id) + set(q->conversation_id) + set(q->outcome_id) +
                 set(q->supersedes) + set(q->user_id) + (q->ts_ms != 0));
    proto_w_str(&w, "policy");
    proto_w_str(&w, q->policy);
    w_opt_str(&w, "event_id", q->event_id);
    w_opt_str(&w, "conversation_id", q->conversation_id);
    proto_w_str(&w, "signal");
    proto_w_str(&w, q->signal);
    proto_w_str(&w, "value");
    proto_w_double(&w, q->value);
    w_opt_str(&w, "outcome_id", q->outcome_id);
    w_opt_str(&w, "supersedes", q->supersedes);
    w_opt_str(&w, "user_id", q->user_id);
    if (q->ts_ms != 0) {
        proto_w_str(&w, "ts");
        proto_w_int(&w, q->ts_ms);
    }
    return finish(&w, start);
}

base_err proto_encode_activate(base_buf *out, const char *policy, const char *event_id)
{
    size_t start = out->len;
    proto_writer w;

    if (!set(policy) || !set(event_id)) {
        return BASE_EINVAL;
    }
    proto_writer_init(&w, out);
    w_header(&w, PROTO_OP_ACTIVATE, 2);
    proto_w_str(&w, "policy");
    proto_w_str(&w, policy);
    proto_w_str(&w, "event_id");
    proto_w_str(&w, event_id);
    return finish(&w, start);
}

base_err proto_encode_explain(base_buf *out, const char *policy, const char *event_id)
{
    size_t start = out->len;
    proto_writer w;

    if (!set(policy) || !set(event_id)) {
        return BASE_EINVAL;
    }
    proto_writer_init(&w, out);
    w_header(&w, PROTO_OP_EXPLAIN, 2);
    proto_w_str(&w, "policy");
    proto_w_str(&w, policy);
    proto_w_str(&w, "event_id");
    proto_w_str(&w, event_id);
    return finish(&w, start);
}

base_err proto_encode_stats(base_buf *out, const char *policy)
{
    size_t start = out->len;
    proto_writer w;

    proto_writer_init(&w, out);
    w_header(&w, PROTO_OP_STATS, set(policy));
    w_opt_str(&w, "policy", policy);
    return finish(&w, start);
}

base_err proto_encode_health(base_buf *out)
{
    size_t start = out->len;
    proto_writer w;

    proto_writer_init(&w, out);
    w_header(&w, PROTO_OP_HEALTH, 0);
    return finish(&w, start);
}

base_err proto_encode_clock(base_buf *out, int64_t set_ms, int64_t advance_ms)
{
    size_t start = out->len;
    proto_writer w;

    if (set_ms < 0 && advance_ms < 0) {
        return BASE_EINVAL;
    }
    proto_writer_init(&w, out);
    w_header(&w, PROTO_OP_CLOCK, 1);
    proto_w_str(&w, set_ms >= 0 ? "set_ms" : "advance_ms");
    proto_w_int(&w, set_ms >= 0 ? set_ms : advance_ms);
    return finish(&w, start);
}

base_err proto_request_encode(base_buf *out, const proto_request *r)
{
    base_err e = BASE_EINVAL;
    proto_decide_req d = {
        .policy = r->policy,
        .event_id = r->event_id,
        .conversation_id = r->conversation_id,
        .user_id = r->user_id,
        .turn = r->turn,
        .deferred = r->deferred,
        .no_explore = r->no_explore,
        .has_explore_budget = r->has_explore_budget,
        .explore_budget = r->explore_budget,
        .segment = r->segment,
        .embedding = r->embedding,
        .dim = r->dim,
        .n_cand = r->n_cand,
        .features = r->features,
        .action_dim = r->action_dim,
        .chosen = r->chosen,
        .pmf = r->pmf,
    };
    proto_feedback_req fb = {
        .policy = r->policy,
        .event_id = r->event_id,
        .conversation_id = r->conversation_id,
        .signal = r->signal,
        .value = r->value,
        .outcome_id = r->outcome_id,
        .supersedes = r->supersedes,
        .user_id = r->user_id,
        .ts_ms = r->ts_ms,
    };

    switch (r->op) {
    case PROTO_OP_DECIDE:
    case PROTO_OP_LOG:
        e = r->cand != NULL ? encode_choice(out, r->op, &d, r->cand) : BASE_EINVAL;
        break;
    case PROTO_OP_FEEDBACK:
        e = proto_encode_feedback(out, &fb);
        break;
    case PROTO_OP_STATS:
        e = proto_encode_stats(out, r->policy);
        break;
    case PROTO_OP_HEALTH:
        e = proto_encode_health(out);
        break;
    case PROTO_OP_ACTIVATE:
        e = proto_encode_activate(out, r->policy, r->event_id);
        break;
    case PROTO_OP_CLOCK:
        e = proto_encode_clock(out, r->clock_set_ms, r->clock_advance_ms);
        break;
    case PROTO_OP_EXPLAIN:
        e = proto_encode_explain(out, r->policy, r->event_id);
        break;
    }
    return e;
}
