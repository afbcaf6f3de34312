#include "proto/explain.h"

#include <msgpack.h>
#include <string.h>

#include "base/alloc.h"
#include "proto/errors.h"
#include "proto/mp.h"

static void w_key_str(proto_writer *w, const char *k, const char *v)
{
    proto_w_str(w, k);
    proto_w_str(w, v);
}

static void w_key_uint(proto_writer *w, const char *k, uint64_t v)
{
    proto_w_str(w, k);
    proto_w_uint(w, v);
}

static void w_key_f(proto_writer *w, const char *k, double v)
{
    proto_w_str(w, k);
    proto_w_double(w, v);
}

static void w_key_bool(proto_writer *w, const char *k, bool v)
{
    proto_w_str(w, k);
    proto_w_bool(w, v);
}

base_err proto_reply_explain(base_buf *out, const proto_explain *x)
{
    size_t start = out->len;
    proto_writer w;

    if (x->n_cand == 0 || x->n_cand > BASE_CAND_MAX || x->chosen_index >= x->n_cand ||
        x->n_listed > PROTO_EXPLAIN_MAX_OUTCOMES) {
        return BASE_EINVAL;
    }
    bool rv = x->reward_version[0] != '\0';
    bool user = x->user_id[0] != '\0', conv = x->conversation_id[0] != '\0';
    bool trunc = x->has_reward && x->outcomes_truncated;
    proto_writer_init(&w, out);
    proto_w_map(&w, 11u + (rv ? 1u : 0u) + (user ? 1u : 0u) + (conv ? 1u : 0u) +
                        (x->has_reward ? 7u : 0u) + (trunc ? 1u : 0u));
    w_key_bool(&w, "ok", true);
    w_key_str(&w, "event_id", x->event_id);
    w_key_str(&w, "policy", x->policy);
    if (user) {
        w_key_str(&w, "user_id", x->user_id);
    }
    if (conv) {
        w_key_str(&w, "conversation_id", x->conversation_id);
    }
    w_key_str(&w, "slot", x->slot);
    w_key_uint(&w, "model_version", x->model_version);
    w_key_uint(&w, "production_version", x->production_version);
    if (rv) {
        w_key_str(&w, "reward_version", x->reward_version);
    }
    w_key_str(&w, "chosen", x->chosen);
    w_key_uint(&w, "chosen_index", x->chosen_index);
    w_key_bool(&w, "breakdown", x->breakdown);
    proto_w_str(&w, "candidates");
    proto_w_array(&w, x->n_cand);
    for (uint32_t c = 0; c < x->n_cand; c++) {
        const proto_explain_cand *k = &x->cand[c];
        proto_w_map(&w, x->breakdown ? 6u : 4u);
        w_key_str(&w, "id", k->id);
        w_key_f(&w, "base_logit", (double)k->base_logit);
        w_key_f(&w, "base_prob", (double)k->base_prob);
        if (x->breakdown) {
            w_key_f(&w, "head_score", (double)k->head_score);
            w_key_f(&w, "exploration", (double)k->exploration);
        }
        w_key_f(&w, "probability", (double)k->probability);
    }
    w_key_str(&w, "status", x->status);
    if (x->has_reward) {
        w_key_f(&w, "reward", x->reward);
        w_key_bool(&w, "defaulted", x->defaulted);
        w_key_bool(&w, "unknown", x->unknown);
        w_key_uint(&w, "n_outcomes", x->n_outcomes);
        w_key_str(&w, "credit", x->credit);
        w_key_f(&w, "share", x->share);
        proto_w_str(&w, "outcomes");
        proto_w_array(&w, x->n_listed);
        for (uint32_t i = 0; i < x->n_listed; i++) {
            const proto_explain_outcome *o = &x->outcomes[i];
            bool has_id = o->outcome_id[0] != '\0';
            proto_w_map(&w, has_id ? 5u : 4u);
            w_key_str(&w, "signal", o->signal);
            w_key_f(&w, "value", o->value);
            if (has_id) {
                w_key_str(&w, "outcome_id", o->outcome_id);
            }
            proto_w_str(&w, "ts");
            proto_w_int(&w, o->ts_ms);
            w_key_str(&w, "status", o->status);
        }
        if (trunc) {
            w_key_bool(&w, "outcomes_truncated", true);
        }
    }
    base_err e = proto_writer_finish(&w);
    if (e != BASE_OK) {
        out->len = start;
    }
    return e;
}

static const char *const top_keys[] = {
    "ok",
    "event_id",
    "policy",
    "slot",
    "model_version",
    "production_version",
    "reward_version",
    "chosen",
    "chosen_index",
    "breakdown",
    "candidates",
    "status",
    "reward",
    "defaulted",
    "unknown",
    "n_outcomes",
    "credit",
    "share",
    "outcomes",
    "outcomes_truncated",
    "user_id",
    "conversation_id",
};
enum {
    K_OK,
    K_EVENT,
    K_POLICY,
    K_SLOT,
    K_MV,
    K_PV,
    K_RV,
    K_CHOSEN,
    K_CHOSEN_INDEX,
    K_BREAKDOWN,
    K_CANDIDATES,
    K_STATUS,
    K_REWARD,
    K_DEFAULTED,
    K_UNKNOWN,
    K_N_OUTCOMES,
    K_CREDIT,
    K_SHARE,
    K_OUTCOMES,
    K_TRUNCATED,
    K_USER,
    K_CONV,
    K_COUNT
};

static const char *const cand_keys[] = {"id",         "base_logit",  "base_prob",
                                        "head_score", "exploration", "probability"};
enum { C_ID, C_LOGIT, C_BASE, C_SCORE, C_EXPLORE, C_PROB, C_COUNT };

static const char *const outcome_keys[] = {"signal", "value", "outcome_id", "ts", "status"};
enum { O_SIGNAL, O_VALUE, O_ID, O_TS, O_STATUS, O_COUNT };

static bool opt_str(const msgpack_object *o, char *dst, size_t size)
{
    if (o == NULL) {
        dst[0] = '\0';
        return true;
    }
    return proto_mp_get_str(o, size - 1, true, dst, NULL);
}

static bool get_f32(const msgpack_object *o, float *out)
{
    return o != NULL && proto_mp_get_f32(o, out, NULL);
}

static bool decode_cand(const msgpack_object *o, bool breakdown, proto_explain_cand *out)
{
    const msgpack_object *f[C_COUNT];
    if (!proto_mp_map_fields(o, cand_keys, C_COUNT, false, f, NULL) || f[C_ID] == NULL ||
        !proto_mp_get_str(f[C_ID], BASE_NAME_MAX, true, out->id, NULL) ||
        !get_f32(f[C_LOGIT], &out->base_logit) || !get_f32(f[C_BASE], &out->base_prob) ||
        !get_f32(f[C_PROB], &out->probability)) {
        return false;
    }
    if (breakdown) {
        return get_f32(f[C_SCORE], &out->head_score) && get_f32(f[C_EXPLORE], &out->exploration);
    }
    return true;
}

static bool decode_outcome(const msgpack_object *o, proto_explain_outcome *out)
{
    const msgpack_object *f[O_COUNT];
    return proto_mp_map_fields(o, outcome_keys, O_COUNT, false, f, NULL) && f[O_SIGNAL] != NULL &&
           proto_mp_get_str(f[O_SIGNAL], BASE_NAME_MAX, true, out->signal, NULL) &&
           f[O_VALUE] != NULL && proto_mp_get_f64(f[O_VALUE], &out->value, NULL) &&
           opt_str(f[O_ID], out->outcome_id, sizeof(out->outcome_id)) && f[O_TS] != NULL &&
           proto_mp_get_i64(f[O_TS], &out->ts_ms, NULL) && f[O_STATUS] != NULL &&
           proto_mp_get_str(f[O_STATUS], sizeof(out->status) - 1, true, out->status, NULL);
}

/*
 * The "outcomes" array @o and "outcomes_truncated" @t. Either may be absent
 * (replies of daemons that predate them): no outcomes listed.
 */
static bool decode_outcomes(const msgpack_object *o, const msgpack_object *t, proto_explain *x,
                            base_err *out_e)
{
    if (o == NULL) {
        return t == NULL;
    }
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > PROTO_EXPLAIN_MAX_OUTCOMES ||
        (t != NULL && !proto_mp_get_bool(t, &x->outcomes_truncated, NULL))) {
        return false;
    }
    const msgpack_object_array *a = &o->via.array;
    if (a->size == 0) {
        return true;
    }
    x->outcomes = base_alloc_zero(a->size, sizeof(*x->outcomes));
    if (x->outcomes == NULL) {
        *out_e = BASE_ENOMEM;
        return false;
    }
    x->n_listed = a->size;
    for (uint32_t i = 0; i < a->size; i++) {
        if (!decode_outcome(&a->ptr[i], &x->outcomes[i])) {
            return false;
        }
    }
    return true;
}

static bool decode_top(const msgpack_object *top, proto_explain *x, base_err *out_e)
{
    const msgpack_object *f[K_COUNT];
    bool ok = false;
    if (!proto_mp_map_fields(top, top_keys, K_COUNT, false, f, NULL) || f[K_OK] == NULL ||
        !proto_mp_get_bool(f[K_OK], &ok, NULL) || !ok || f[K_CANDIDATES] == NULL ||
        f[K_CANDIDATES]->type != MSGPACK_OBJECT_ARRAY || f[K_MV] == NULL || f[K_PV] == NULL ||
        f[K_CHOSEN_INDEX] == NULL || f[K_BREAKDOWN] == NULL) {
        return false;
    }
    if (!opt_str(f[K_EVENT], x->event_id, sizeof(x->event_id)) ||
        !opt_str(f[K_POLICY], x->policy, sizeof(x->policy)) ||
        !opt_str(f[K_SLOT], x->slot, sizeof(x->slot)) ||
        !opt_str(f[K_RV], x->reward_version, sizeof(x->reward_version)) ||
        !opt_str(f[K_USER], x->user_id, sizeof(x->user_id)) ||
        !opt_str(f[K_CONV], x->conversation_id, sizeof(x->conversation_id)) ||
        !opt_str(f[K_CHOSEN], x->chosen, sizeof(x->chosen)) ||
        !opt_str(f[K_STATUS], x->status, sizeof(x->status)) ||
        !proto_mp_get_u64(f[K_MV], UINT64_MAX, &x->model_version, NULL) ||
        !proto_mp_get_u64(f[K_PV], UINT64_MAX, &x->production_version, NULL) ||
        !proto_mp_get_bool(f[K_BREAKDOWN], &x->breakdown, NULL)) {
        return false;
    }
    const msgpack_object_array *a = &f[K_CANDIDATES]->via.array;
    if (a->size == 0 || a->size > BASE_CAND_MAX ||
        !proto_mp_get_u32(f[K_CHOSEN_INDEX], a->size - 1, &x->chosen_index, NULL)) {
        return false;
    }
    x->has_reward = f[K_REWARD] != NULL;
    if (x->has_reward &&
        (!proto_mp_get_f64(f[K_REWARD], &x->reward, NULL) || f[K_DEFAULTED] == NULL ||
         !proto_mp_get_bool(f[K_DEFAULTED], &x->defaulted, NULL) || f[K_UNKNOWN] == NULL ||
         !proto_mp_get_bool(f[K_UNKNOWN], &x->unknown, NULL) || f[K_N_OUTCOMES] == NULL ||
         !proto_mp_get_u32(f[K_N_OUTCOMES], UINT32_MAX, &x->n_outcomes, NULL) ||
         !opt_str(f[K_CREDIT], x->credit, sizeof(x->credit)) || f[K_SHARE] == NULL ||
         !proto_mp_get_f64(f[K_SHARE], &x->share, NULL) ||
         !decode_outcomes(f[K_OUTCOMES], f[K_TRUNCATED], x, out_e))) {
        return false;
    }
    x->cand = base_alloc_zero(a->size, sizeof(*x->cand));
    if (x->cand == NULL) {
        *out_e = BASE_ENOMEM;
        return false;
    }
    x->n_cand = a->size;
    for (uint32_t c = 0; c < a->size; c++) {
        if (!decode_cand(&a->ptr[c], x->breakdown, &x->cand[c])) {
            return false;
        }
    }
    return true;
}

base_err proto_explain_decode(const uint8_t *buf, size_t len, proto_explain *out)
{
    msgpack_unpacked u;
    proto_explain x;
    base_err e;

    memset(&x, 0, sizeof(x));
    msgpack_unpacked_init(&u);
    e = proto_mp_unpack(buf, len, PROTO_MAX_DEPTH, PROTO_MAX_OBJECTS, &u);
    if (e == BASE_OK) {
        e = BASE_EPROTO;
        if (decode_top(&u.data, &x, &e)) {
            e = BASE_OK;
        }
    } else if (e != BASE_ENOMEM) {
        e = BASE_EPROTO;
    }
    msgpack_unpacked_destroy(&u);
    if (e != BASE_OK) {
        proto_explain_fini(&x);
        return e;
    }
    *out = x;
    return BASE_OK;
}

void proto_explain_fini(proto_explain *x)
{
    if (x != NULL) {
        base_free(x->cand);
        x->cand = NULL;
        x->n_cand = 0;
        base_free(x->outcomes);
        x->outcomes = NULL;
        x->n_listed = 0;
    }
}
