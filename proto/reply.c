#include "proto/reply.h"

#include <string.h>

#include <msgpack.h>

#include "base/utf8.h"
#include "proto/mp.h"

#define CODE_MAX 32 /* bytes of an error code name a decoder looks up */

static const char *const status_names[PROTO_ST_COUNT] = {
    [PROTO_ST_MATCHED] = "matched",
    [PROTO_ST_DUPLICATE] = "duplicate",
    [PROTO_ST_CORRECTED] = "corrected",
    [PROTO_ST_LATE] = "late",
    [PROTO_ST_LATE_CORRECTION] = "late_correction",
    [PROTO_ST_EARLY] = "early",
    [PROTO_ST_UNKNOWN_EVENT] = "unknown_event",
    [PROTO_ST_REJECTED_SIGNAL] = "rejected_signal",
    [PROTO_ST_REJECTED_VALUE] = "rejected_value",
    [PROTO_ST_REJECTED_LIMIT] = "rejected_limit",
    [PROTO_ST_REJECTED_RATE] = "rejected_rate",
    [PROTO_ST_ACCEPTED] = "accepted",
};

static const char *const health_names[] = {
    [PROTO_HEALTH_STARTING] = "starting",
    [PROTO_HEALTH_READY] = "ready",
    [PROTO_HEALTH_DEGRADED] = "degraded",
};

static const char *const redis_names[] = {
    [PROTO_REDIS_UNKNOWN] = "unknown",
    [PROTO_REDIS_UP] = "up",
    [PROTO_REDIS_DOWN] = "down",
};

#define N_HEALTH (sizeof(health_names) / sizeof(health_names[0]))
#define N_REDIS (sizeof(redis_names) / sizeof(redis_names[0]))

const char *proto_status_name(proto_status s)
{
    return (unsigned)s < PROTO_ST_COUNT ? status_names[s] : "unknown";
}

const char *proto_health_status_name(proto_health_status s)
{
    return (unsigned)s < N_HEALTH ? health_names[s] : "unknown";
}

const char *proto_redis_state_name(proto_redis_state s)
{
    return (unsigned)s < N_REDIS ? redis_names[s] : "unknown";
}

/* ---------------------------------------------------------------- encoding */

/* Finish @w; on failure cut @out back to @start so no half-written reply remains. */
static base_err finish(proto_writer *w, size_t start)
{
    base_err e = proto_writer_finish(w);
    if (e != BASE_OK) {
        w->out->len = start;
    }
    return e;
}

/* {"ok":true, ...}: @n_more pairs follow. */
static void w_ok(proto_writer *w, uint32_t n_more)
{
    proto_w_map(w, 1 + n_more);
    proto_w_str(w, "ok");
    proto_w_bool(w, true);
}

base_err proto_reply_ok(base_buf *out)
{
    size_t start = out->len;
    proto_writer w;

    proto_writer_init(&w, out);
    w_ok(&w, 0);
    return finish(&w, start);
}

/*
 * Copy @src into @dst as valid UTF-8 of at most PROTO_ERRMSG_MAX - 1 bytes, cut on a
 * character boundary. Messages are built with snprintf from peer text the decoder checked
 * to be UTF-8, but "%.48s" or the buffer's size may cut one of its characters in two, in the
 * middle or at the end: the bytes of a cut character are dropped, so the text is cut back
 * to the last whole character. Any other byte that is not UTF-8 (a bug) is dropped too.
 */
static void clean_message(char *dst, const char *src)
{
    size_t n = src != NULL ? strlen(src) : 0;
    size_t i = 0, o = 0;

    while (i < n) {
        size_t m = base_utf8_char_len(src + i, n - i);
        if (m == 0) {
            i++;
            continue;
        }
        if (o + m > PROTO_ERRMSG_MAX - 1) {
            break;
        }
        memcpy(dst + o, src + i, m);
        o += m;
        i += m;
    }
    dst[o] = '\0';
}

base_err proto_reply_error(base_buf *out, proto_errcode code, const char *message)
{
    size_t start = out->len;
    char text[PROTO_ERRMSG_MAX];
    proto_writer w;

    clean_message(text, message);
    proto_writer_init(&w, out);
    proto_w_map(&w, 2);
    proto_w_str(&w, "ok");
    proto_w_bool(&w, false);
    proto_w_str(&w, "error");
    proto_w_map(&w, 2);
    proto_w_str(&w, "code");
    proto_w_str(&w, proto_errcode_name(code));
    proto_w_str(&w, "message");
    proto_w_str(&w, text);
    return finish(&w, start);
}

base_err proto_reply_decide(base_buf *out, const char *event_id, const char *chosen_id,
                            uint32_t chosen_index, const float *pmf, uint32_t n_cand,
                            uint64_t model_version, const char *slot)
{
    size_t start = out->len;
    proto_writer w;

    proto_writer_init(&w, out);
    w_ok(&w, 6);
    proto_w_str(&w, "event_id");
    proto_w_str(&w, event_id);
    proto_w_str(&w, "chosen");
    proto_w_str(&w, chosen_id);
    proto_w_str(&w, "chosen_index");
    proto_w_uint(&w, chosen_index);
    proto_w_str(&w, "pmf");
    proto_w_f32_bin(&w, pmf, n_cand);
    proto_w_str(&w, "model_version");
    proto_w_uint(&w, model_version);
    proto_w_str(&w, "slot");
    proto_w_str(&w, slot);
    return finish(&w, start);
}

/* {"ok":true, @key:@value} */
static base_err reply_str(base_buf *out, const char *key, const char *value)
{
    size_t start = out->len;
    proto_writer w;

    proto_writer_init(&w, out);
    w_ok(&w, 1);
    proto_w_str(&w, key);
    proto_w_str(&w, value);
    return finish(&w, start);
}

base_err proto_reply_logged(base_buf *out, const char *event_id)
{
    return reply_str(out, "event_id", event_id);
}

base_err proto_reply_status(base_buf *out, proto_status status)
{
    return reply_str(out, "status", proto_status_name(status));
}

base_err proto_reply_duplicate(base_buf *out)
{
    size_t start = out->len;
    proto_writer w;

    proto_writer_init(&w, out);
    w_ok(&w, 2);
    proto_w_str(&w, "duplicate");
    proto_w_bool(&w, true);
    proto_w_str(&w, "status");
    proto_w_str(&w, status_names[PROTO_ST_DUPLICATE]);
    return finish(&w, start);
}

base_err proto_reply_health(base_buf *out, const proto_health *h)
{
    size_t start = out->len;
    proto_writer w;

    proto_writer_init(&w, out);
    w_ok(&w, h->n_alarms > 0 ? 3 : 2);
    proto_w_str(&w, "status");
    proto_w_str(&w, proto_health_status_name(h->status));
    proto_w_str(&w, "redis");
    proto_w_str(&w, proto_redis_state_name(h->redis));
    if (h->n_alarms > 0) {
        uint32_t n = h->n_alarms < PROTO_HEALTH_ALARMS_MAX ? h->n_alarms : PROTO_HEALTH_ALARMS_MAX;
        proto_w_str(&w, "alarms");
        proto_w_array(&w, n);
        for (uint32_t i = 0; i < n; i++) {
            proto_w_str(&w, h->alarms[i]);
        }
    }
    return finish(&w, start);
}

base_err proto_reply_clock(base_buf *out, int64_t now_ms)
{
    size_t start = out->len;
    proto_writer w;

    proto_writer_init(&w, out);
    w_ok(&w, 1);
    proto_w_str(&w, "now_ms");
    proto_w_int(&w, now_ms);
    return finish(&w, start);
}

/* ---------------------------------------------------------------- decoding */

enum reply_field {
    R_OK,
    R_ERROR,
    R_EVENT_ID,
    R_CHOSEN,
    R_CHOSEN_INDEX,
    R_PMF,
    R_MODEL_VERSION,
    R_SLOT,
    R_DUPLICATE,
    R_STATUS,
    R_REDIS,
    R_NOW_MS,
    R_COUNT
};

static const char *const reply_names[R_COUNT] = {
    [R_OK] = "ok",
    [R_ERROR] = "error",
    [R_EVENT_ID] = "event_id",
    [R_CHOSEN] = "chosen",
    [R_CHOSEN_INDEX] = "chosen_index",
    [R_PMF] = "pmf",
    [R_MODEL_VERSION] = "model_version",
    [R_SLOT] = "slot",
    [R_DUPLICATE] = "duplicate",
    [R_STATUS] = "status",
    [R_REDIS] = "redis",
    [R_NOW_MS] = "now_ms",
};

/* {"code":..., "message":...}: an unknown code becomes PROTO_E_INTERNAL, the message is kept. */
static bool decode_error(const msgpack_object *o, proto_reply *r)
{
    static const char *const names[] = {"code", "message"};
    const msgpack_object *f[2];
    char code[CODE_MAX + 1];
    bool found = false;

    if (o == NULL || !proto_mp_map_fields(o, names, 2, true, f, NULL) || f[0] == NULL ||
        f[0]->type != MSGPACK_OBJECT_STR) {
        return false;
    }
    r->error.code = PROTO_E_INTERNAL;
    if (f[0]->via.str.size <= CODE_MAX) {
        memcpy(code, f[0]->via.str.ptr, f[0]->via.str.size);
        code[f[0]->via.str.size] = '\0';
        proto_errcode_from_name(code, &r->error.code, &found);
        if (!found || r->error.code == PROTO_E_NONE) {
            r->error.code = PROTO_E_INTERNAL; /* "none" never comes with ok false */
        }
    }
    r->error.message[0] = '\0';
    if (f[1] != NULL) {
        if (f[1]->type != MSGPACK_OBJECT_STR) {
            return false;
        }
        /*
         * A long message is cut to fit, on a character boundary; callers act on the code.
         * From a peer that is not rlfeedd it may be anything: it ends at a NUL byte or at
         * the first byte that is not UTF-8, so the message is always text.
         */
        const char *m = f[1]->via.str.ptr;
        size_t n = f[1]->via.str.size;
        if (n > sizeof(r->error.message) - 1) {
            n = sizeof(r->error.message) - 1;
        }
        const char *nul = n > 0 ? memchr(m, '\0', n) : NULL;
        n = base_utf8_cut(m, nul != NULL ? (size_t)(nul - m) : n);
        if (n > 0) {
            memcpy(r->error.message, m, n);
        }
        r->error.message[n] = '\0';
    }
    return true;
}

/* An optional string field of at most @max bytes of UTF-8 into @dst ("" when absent). */
static bool opt_str(const msgpack_object *o, size_t max, char *dst)
{
    dst[0] = '\0';
    return o == NULL || proto_mp_get_str(o, max, true, dst, NULL);
}

static bool decode_fields(const msgpack_object *top, proto_reply *r)
{
    const msgpack_object *f[R_COUNT];
    uint32_t at = 0;

    if (!proto_mp_map_fields(top, reply_names, R_COUNT, true, f, NULL) || f[R_OK] == NULL ||
        !proto_mp_get_bool(f[R_OK], &r->ok, NULL)) {
        return false;
    }
    if (!r->ok && !decode_error(f[R_ERROR], r)) {
        return false;
    }
    if (!opt_str(f[R_EVENT_ID], BASE_ID_MAX, r->event_id) ||
        !opt_str(f[R_CHOSEN], BASE_NAME_MAX, r->chosen) ||
        !opt_str(f[R_SLOT], BASE_NAME_MAX, r->slot) ||
        !opt_str(f[R_STATUS], sizeof(r->status) - 1, r->status) ||
        !opt_str(f[R_REDIS], sizeof(r->redis) - 1, r->redis)) {
        return false;
    }
    if (f[R_CHOSEN_INDEX] != NULL &&
        !proto_mp_get_u32(f[R_CHOSEN_INDEX], UINT32_MAX, &r->chosen_index, NULL)) {
        return false;
    }
    if (f[R_PMF] != NULL &&
        (!proto_mp_fvec_count(f[R_PMF], &r->n_pmf, &at, NULL) || r->n_pmf > BASE_CAND_MAX ||
         !proto_mp_fvec_read(f[R_PMF], r->n_pmf, r->pmf, &at, NULL))) {
        return false;
    }
    if (f[R_MODEL_VERSION] != NULL &&
        !proto_mp_get_u64(f[R_MODEL_VERSION], UINT64_MAX, &r->model_version, NULL)) {
        return false;
    }
    if (f[R_DUPLICATE] != NULL && !proto_mp_get_bool(f[R_DUPLICATE], &r->duplicate, NULL)) {
        return false;
    }
    return f[R_NOW_MS] == NULL || proto_mp_get_i64(f[R_NOW_MS], &r->now_ms, NULL);
}

base_err proto_reply_decode(const uint8_t *buf, size_t len, proto_reply *out)
{
    msgpack_unpacked u;
    /* Decoded on the side so *out is written only on success; about 4.5 KiB of stack. */
    proto_reply r;
    base_err e;

    memset(&r, 0, sizeof(r));
    msgpack_unpacked_init(&u);
    e = proto_mp_unpack(buf, len, PROTO_MAX_DEPTH, PROTO_MAX_OBJECTS, &u);
    if (e == BASE_OK && !decode_fields(&u.data, &r)) {
        e = BASE_EPROTO;
    }
    if (e != BASE_OK) {
        /* Any malformed reply is a protocol error; only allocation failures differ. */
        e = e == BASE_ENOMEM ? BASE_ENOMEM : BASE_EPROTO;
        goto fail;
    }
    *out = r;
fail:
    msgpack_unpacked_destroy(&u);
    return e;
}

bool proto_health_from_reply(const proto_reply *r, proto_health *out)
{
    bool have_status = false, have_redis = false;
    proto_health h = {.status = PROTO_HEALTH_STARTING, .redis = PROTO_REDIS_UNKNOWN};

    for (unsigned i = 0; i < N_HEALTH && !have_status; i++) {
        have_status = strcmp(r->status, health_names[i]) == 0;
        h.status = (proto_health_status)i;
    }
    for (unsigned i = 0; i < N_REDIS && !have_redis; i++) {
        have_redis = strcmp(r->redis, redis_names[i]) == 0;
        h.redis = (proto_redis_state)i;
    }
    if (!r->ok || !have_status || !have_redis) {
        return false;
    }
    *out = h;
    return true;
}
