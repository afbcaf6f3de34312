#include "proto/mp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "base/alloc.h"
#include "base/mpcheck.h"
#include "base/utf8.h"
#include "proto/errors.h"

/*
 * Hazards this file guards against (DESIGN.md section 12):
 * - msgpack-c 4.0 trusts header counts, so proto_mp_unpack() runs base_mpcheck() over the
 *   raw bytes before msgpack_unpack_next() sees them.
 * - Unpacked str/bin objects point into the caller's buffer; readers copy out.
 * - Maps with many keys: the all-keys duplicate check sorts (O(n log n)) instead of
 *   comparing every pair, so a 32k-key map cannot burn CPU.
 */

#define SMALL_MAP 16 /* maps up to this size check duplicates pairwise */
#define CHUNK 64     /* values converted per bin body write */

static void fault(proto_mp_fault *out, proto_mp_fault f)
{
    if (out != NULL) {
        *out = f;
    }
}

/* ------------------------------------------------------------------ writer */

/* msgpack_packer's write callback: append to the buffer, keep the first error. */
static int writer_cb(void *data, const char *p, size_t n)
{
    proto_writer *w = data;
    int rc = -1;

    if (w->err != BASE_OK) {
        goto fail;
    }
    w->err = base_buf_append(w->out, p, n);
    if (w->err != BASE_OK) {
        goto fail;
    }
    rc = 0;
fail:
    return rc;
}

/*
 * The packer is two pointers, so each call makes its own rather than storing one in
 * proto_writer. Pack results are ignored: writer_cb has already recorded any failure.
 */
static void packer_init(proto_writer *w, msgpack_packer *pk)
{
    msgpack_packer_init(pk, w, writer_cb);
}

void proto_writer_init(proto_writer *w, base_buf *out)
{
    w->out = out;
    w->err = BASE_OK;
}

base_err proto_writer_finish(const proto_writer *w)
{
    return w->err;
}

void proto_w_map(proto_writer *w, uint32_t n_pairs)
{
    msgpack_packer pk;
    if (w->err == BASE_OK) {
        packer_init(w, &pk);
        (void)msgpack_pack_map(&pk, n_pairs); /* errors are in w->err */
    }
}

void proto_w_array(proto_writer *w, uint32_t n)
{
    msgpack_packer pk;
    if (w->err == BASE_OK) {
        packer_init(w, &pk);
        (void)msgpack_pack_array(&pk, n); /* errors are in w->err */
    }
}

void proto_w_strn(proto_writer *w, const char *s, size_t n)
{
    msgpack_packer pk;
    if (w->err == BASE_OK && n > UINT32_MAX) {
        w->err = BASE_ELIMIT;
    }
    if (w->err == BASE_OK) {
        packer_init(w, &pk);
        (void)msgpack_pack_str(&pk, n); /* errors are in w->err */
        if (n > 0) {
            (void)msgpack_pack_str_body(&pk, s, n);
        }
    }
}

void proto_w_str(proto_writer *w, const char *s)
{
    proto_w_strn(w, s, s != NULL ? strlen(s) : 0);
}

void proto_w_int(proto_writer *w, int64_t v)
{
    msgpack_packer pk;
    if (w->err == BASE_OK) {
        packer_init(w, &pk);
        (void)msgpack_pack_int64(&pk, v); /* errors are in w->err */
    }
}

void proto_w_uint(proto_writer *w, uint64_t v)
{
    msgpack_packer pk;
    if (w->err == BASE_OK) {
        packer_init(w, &pk);
        (void)msgpack_pack_uint64(&pk, v); /* errors are in w->err */
    }
}

void proto_w_double(proto_writer *w, double v)
{
    msgpack_packer pk;
    if (w->err == BASE_OK) {
        packer_init(w, &pk);
        (void)msgpack_pack_double(&pk, v); /* errors are in w->err */
    }
}

void proto_w_bool(proto_writer *w, bool v)
{
    msgpack_packer pk;
    if (w->err == BASE_OK) {
        packer_init(w, &pk);
        if (v) {
            (void)msgpack_pack_true(&pk); /* errors are in w->err */
        } else {
            (void)msgpack_pack_false(&pk);
        }
    }
}

void proto_w_nil(proto_writer *w)
{
    msgpack_packer pk;
    if (w->err == BASE_OK) {
        packer_init(w, &pk);
        (void)msgpack_pack_nil(&pk); /* errors are in w->err */
    }
}

static void le32(unsigned char *p, uint32_t u)
{
    p[0] = (unsigned char)(u & 0xffu);
    p[1] = (unsigned char)((u >> 8) & 0xffu);
    p[2] = (unsigned char)((u >> 16) & 0xffu);
    p[3] = (unsigned char)(u >> 24);
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/*
 * A bin of @n @width-byte words (4: float32 or uint32, 8: float64) copied bit for bit,
 * byte by byte so the output is little-endian whatever the host order. Converted through a
 * small stack chunk, so no temporary vector is allocated.
 */
static void w_bin_words(proto_writer *w, const void *words, uint32_t n, size_t width)
{
    msgpack_packer pk;
    unsigned char chunk[CHUNK * 8];
    const unsigned char *src = words;

    if (w->err == BASE_OK && n > UINT32_MAX / width) {
        w->err = BASE_ELIMIT;
    }
    if (w->err == BASE_OK) {
        packer_init(w, &pk);
        (void)msgpack_pack_bin(&pk, (size_t)n * width); /* errors are in w->err */
    }
    for (uint32_t i = 0; i < n && w->err == BASE_OK; i += CHUNK) {
        uint32_t m = n - i < CHUNK ? n - i : CHUNK;
        for (uint32_t j = 0; j < m; j++) {
            const unsigned char *s = src + ((size_t)i + j) * width;
            if (width == 4) {
                uint32_t u;
                memcpy(&u, s, sizeof(u));
                le32(chunk + (size_t)j * 4, u);
            } else {
                uint64_t u;
                memcpy(&u, s, sizeof(u));
                le32(chunk + (size_t)j * 8, (uint32_t)u);
                le32(chunk + (size_t)j * 8 + 4, (uint32_t)(u >> 32));
            }
        }
        (void)msgpack_pack_bin_body(&pk, chunk, (size_t)m * width);
    }
}

void proto_w_bin(proto_writer *w, const void *bytes, size_t n)
{
    msgpack_packer pk;
    if (w->err == BASE_OK && n > UINT32_MAX) {
        w->err = BASE_ELIMIT;
    }
    if (w->err == BASE_OK) {
        packer_init(w, &pk);
        (void)msgpack_pack_bin(&pk, n); /* errors are in w->err */
        (void)msgpack_pack_bin_body(&pk, bytes, n);
    }
}

void proto_w_f32_bin(proto_writer *w, const float *v, uint32_t n)
{
    w_bin_words(w, v, n, 4);
}

void proto_w_u32_bin(proto_writer *w, const uint32_t *v, uint32_t n)
{
    w_bin_words(w, v, n, 4);
}

void proto_w_f64_bin(proto_writer *w, const double *v, uint32_t n)
{
    w_bin_words(w, v, n, 8);
}

void proto_w_f32_array(proto_writer *w, const float *v, uint32_t n)
{
    msgpack_packer pk;
    if (w->err == BASE_OK) {
        packer_init(w, &pk);
        (void)msgpack_pack_array(&pk, n); /* errors are in w->err */
    }
    for (uint32_t i = 0; i < n && w->err == BASE_OK; i++) {
        (void)msgpack_pack_float(&pk, v[i]);
    }
}

/* ---------------------------------------------------------------- readers */

base_err proto_mp_unpack(const uint8_t *buf, size_t len, size_t max_depth, size_t max_objects,
                         struct msgpack_unpacked *u)
{
    size_t off = 0;
    base_err e = base_mpcheck(buf, len, max_depth, max_objects);

    if (e != BASE_OK) {
        goto fail; /* BASE_ELIMIT past a cap, BASE_EPROTO malformed */
    }
    msgpack_unpack_return ret = msgpack_unpack_next(u, (const char *)buf, len, &off);
    if (ret == MSGPACK_UNPACK_NOMEM_ERROR) {
        e = BASE_ENOMEM;
    } else if (ret != MSGPACK_UNPACK_SUCCESS || off != len) {
        e = BASE_EPROTO;
    }
fail:
    return e;
}

base_err proto_mp_unpack_in(const uint8_t *buf, size_t len, size_t max_depth, size_t max_objects,
                            struct msgpack_zone *z, struct msgpack_object *out)
{
    size_t off = 0;
    base_err e = base_mpcheck(buf, len, max_depth, max_objects);

    if (e != BASE_OK) {
        goto fail;
    }
    msgpack_unpack_return ret = msgpack_unpack((const char *)buf, len, &off, z, out);
    if (ret == MSGPACK_UNPACK_NOMEM_ERROR) {
        e = BASE_ENOMEM;
    } else if (ret != MSGPACK_UNPACK_SUCCESS || off != len) {
        e = BASE_EPROTO;
    }
fail:
    return e;
}

static bool str_is(const msgpack_object_str *s, const char *lit)
{
    size_t n = strlen(lit);
    return s->size == n && (n == 0 || memcmp(s->ptr, lit, n) == 0);
}

static int str_cmp(const msgpack_object_str *x, const msgpack_object_str *y)
{
    int c = 0;

    if (x->size != y->size) {
        c = x->size < y->size ? -1 : 1;
    } else if (x->size > 0) {
        c = memcmp(x->ptr, y->ptr, x->size);
    }
    return c;
}

static int str_ptr_cmp(const void *a, const void *b)
{
    return str_cmp(*(const msgpack_object_str *const *)a, *(const msgpack_object_str *const *)b);
}

/* Every key of @m is a string (checked by the caller). Sets *out_dup if any repeats. */
static base_err map_has_dup_keys(const msgpack_object_map *m, bool *out_dup)
{
    base_err e = BASE_OK;
    const msgpack_object_str **keys = NULL;
    bool dup = false;

    if (m->size <= SMALL_MAP) {
        for (uint32_t i = 0; i < m->size && !dup; i++) {
            for (uint32_t j = i + 1; j < m->size && !dup; j++) {
                dup = str_cmp(&m->ptr[i].key.via.str, &m->ptr[j].key.via.str) == 0;
            }
        }
        *out_dup = dup;
        goto fail;
    }
    keys = base_alloc_array(m->size, sizeof(*keys));
    if (keys == NULL) {
        e = BASE_ENOMEM;
        goto fail;
    }
    for (uint32_t i = 0; i < m->size; i++) {
        keys[i] = &m->ptr[i].key.via.str;
    }
    qsort(keys, m->size, sizeof(*keys), str_ptr_cmp);
    for (uint32_t i = 1; i < m->size && !dup; i++) {
        dup = str_cmp(keys[i - 1], keys[i]) == 0;
    }
    *out_dup = dup;
fail:
    base_free(keys);
    return e;
}

bool proto_mp_map_fields(const struct msgpack_object *m, const char *const *names, size_t n_names,
                         bool all_unique, const struct msgpack_object **out,
                         proto_mp_fault *out_fault)
{
    bool dup = false;

    for (size_t i = 0; i < n_names; i++) {
        out[i] = NULL;
    }
    if (m->type != MSGPACK_OBJECT_MAP) {
        fault(out_fault, PROTO_MP_WRONG_TYPE);
        return false;
    }
    const msgpack_object_map *map = &m->via.map;
    for (uint32_t k = 0; k < map->size; k++) {
        const msgpack_object *key = &map->ptr[k].key;
        if (key->type != MSGPACK_OBJECT_STR) {
            fault(out_fault, PROTO_MP_KEY_NOT_STR);
            return false;
        }
        for (size_t i = 0; i < n_names; i++) {
            if (str_is(&key->via.str, names[i])) {
                dup = dup || out[i] != NULL;
                out[i] = &map->ptr[k].val;
                break;
            }
        }
    }
    if (!dup && all_unique && map_has_dup_keys(map, &dup) != BASE_OK) {
        fault(out_fault, PROTO_MP_NO_MEMORY);
        return false;
    }
    if (dup) {
        fault(out_fault, PROTO_MP_DUP_KEY);
        return false;
    }
    return true;
}

bool proto_mp_get_str(const struct msgpack_object *o, size_t max_bytes, bool utf8, char *dst,
                      proto_mp_fault *out_fault)
{
    proto_mp_fault f = 0;

    if (o->type != MSGPACK_OBJECT_STR) {
        f = PROTO_MP_WRONG_TYPE;
    } else if (o->via.str.size > max_bytes) {
        f = PROTO_MP_TOO_LONG;
    } else if (o->via.str.size > 0 && memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL) {
        f = PROTO_MP_HAS_NUL;
    } else if (utf8 && !base_utf8_valid(o->via.str.ptr, o->via.str.size)) {
        f = PROTO_MP_NOT_UTF8;
    }
    if (f != 0) {
        fault(out_fault, f);
        return false;
    }
    if (o->via.str.size > 0) {
        memcpy(dst, o->via.str.ptr, o->via.str.size);
    }
    dst[o->via.str.size] = '\0';
    return true;
}

bool proto_mp_get_u64(const struct msgpack_object *o, uint64_t max, uint64_t *out,
                      proto_mp_fault *out_fault)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        fault(out_fault, PROTO_MP_WRONG_TYPE);
        return false;
    }
    if (o->via.u64 > max) {
        fault(out_fault, PROTO_MP_OUT_OF_RANGE);
        return false;
    }
    *out = o->via.u64;
    return true;
}

bool proto_mp_get_u32(const struct msgpack_object *o, uint32_t max, uint32_t *out,
                      proto_mp_fault *out_fault)
{
    uint64_t v = 0;
    bool ok = proto_mp_get_u64(o, max, &v, out_fault);
    if (ok) {
        *out = (uint32_t)v;
    }
    return ok;
}

bool proto_mp_get_i64(const struct msgpack_object *o, int64_t *out, proto_mp_fault *out_fault)
{
    bool ok = true;

    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= (uint64_t)INT64_MAX) {
        *out = (int64_t)o->via.u64;
    } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
    } else {
        fault(out_fault, o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? PROTO_MP_OUT_OF_RANGE
                                                                    : PROTO_MP_WRONG_TYPE);
        ok = false;
    }
    return ok;
}

static bool is_number(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
           o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER || o->type == MSGPACK_OBJECT_FLOAT32 ||
           o->type == MSGPACK_OBJECT_FLOAT64;
}

/* The value of a number object (is_number() holds). */
static double number_value(const msgpack_object *o)
{
    double v = o->via.f64;

    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        v = (double)o->via.u64;
    } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        v = (double)o->via.i64;
    }
    return v;
}

bool proto_mp_get_f64(const struct msgpack_object *o, double *out, proto_mp_fault *out_fault)
{
    if (!is_number(o)) {
        fault(out_fault, PROTO_MP_WRONG_TYPE);
        return false;
    }
    double v = number_value(o);
    if (!isfinite(v)) {
        fault(out_fault, PROTO_MP_NOT_FINITE);
        return false;
    }
    *out = v;
    return true;
}

bool proto_mp_get_f32(const struct msgpack_object *o, float *out, proto_mp_fault *out_fault)
{
    if (!is_number(o)) {
        fault(out_fault, PROTO_MP_WRONG_TYPE);
        return false;
    }
    float v = (float)number_value(o);
    if (!isfinite(v)) {
        fault(out_fault, PROTO_MP_NOT_FINITE);
        return false;
    }
    *out = v;
    return true;
}

bool proto_mp_get_bool(const struct msgpack_object *o, bool *out, proto_mp_fault *out_fault)
{
    if (o->type != MSGPACK_OBJECT_BOOLEAN) {
        fault(out_fault, PROTO_MP_WRONG_TYPE);
        return false;
    }
    *out = o->via.boolean;
    return true;
}

/* A bin of exactly @n elements of @width bytes. */
static bool bin_of(const msgpack_object *o, uint32_t n, size_t width, proto_mp_fault *out_fault)
{
    if (o->type != MSGPACK_OBJECT_BIN) {
        fault(out_fault, PROTO_MP_WRONG_TYPE);
        return false;
    }
    if (o->via.bin.size != (uint64_t)n * width) {
        fault(out_fault, PROTO_MP_BAD_LENGTH);
        return false;
    }
    return true;
}

bool proto_mp_get_f32_bin(const struct msgpack_object *o, uint32_t n, float *dst,
                          proto_mp_fault *out_fault)
{
    bool ok = bin_of(o, n, 4, out_fault);
    for (uint32_t i = 0; ok && i < n; i++) {
        uint32_t w = rd32((const unsigned char *)o->via.bin.ptr + (size_t)i * 4);
        memcpy(&dst[i], &w, sizeof(w));
        ok = isfinite(dst[i]);
        if (!ok) {
            fault(out_fault, PROTO_MP_NOT_FINITE);
        }
    }
    return ok;
}

bool proto_mp_get_u32_bin(const struct msgpack_object *o, uint32_t n, uint32_t limit, uint32_t *dst,
                          proto_mp_fault *out_fault)
{
    bool ok = bin_of(o, n, 4, out_fault);
    for (uint32_t i = 0; ok && i < n; i++) {
        dst[i] = rd32((const unsigned char *)o->via.bin.ptr + (size_t)i * 4);
        ok = dst[i] < limit;
        if (!ok) {
            fault(out_fault, PROTO_MP_OUT_OF_RANGE);
        }
    }
    return ok;
}

bool proto_mp_get_f64_bin(const struct msgpack_object *o, uint32_t n, double *dst,
                          proto_mp_fault *out_fault)
{
    bool ok = bin_of(o, n, 8, out_fault);
    for (uint32_t i = 0; ok && i < n; i++) {
        uint64_t w = rd64((const unsigned char *)o->via.bin.ptr + (size_t)i * 8);
        memcpy(&dst[i], &w, sizeof(w));
        ok = isfinite(dst[i]);
        if (!ok) {
            fault(out_fault, PROTO_MP_NOT_FINITE);
        }
    }
    return ok;
}

bool proto_mp_bin_count(const struct msgpack_object *o, size_t width, uint32_t *out_n)
{
    bool ok = o->type == MSGPACK_OBJECT_BIN && o->via.bin.size % width == 0;
    if (ok) {
        *out_n = (uint32_t)(o->via.bin.size / width);
    }
    return ok;
}

bool proto_mp_fvec_count(const struct msgpack_object *o, uint32_t *out_n, uint32_t *out_at,
                         proto_mp_fault *out_fault)
{
    if (o->type == MSGPACK_OBJECT_BIN) {
        if (o->via.bin.size % 4 != 0) {
            fault(out_fault, PROTO_MP_BAD_LENGTH);
            return false;
        }
        *out_n = o->via.bin.size / 4;
        return true;
    }
    if (o->type != MSGPACK_OBJECT_ARRAY) {
        fault(out_fault, PROTO_MP_WRONG_TYPE);
        return false;
    }
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        if (!is_number(&o->via.array.ptr[i])) {
            *out_at = i;
            fault(out_fault, PROTO_MP_BAD_ELEMENT);
            return false;
        }
    }
    *out_n = o->via.array.size;
    return true;
}

void proto_mp_f32_from_le(float *dst, const void *src, uint32_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n > 0) {
        memcpy(dst, src, (size_t)n * sizeof(float)); /* one memcpy on little-endian hosts */
    }
#else
    const unsigned char *p = src;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t u = rd32(p + 4 * (size_t)i);
        memcpy(&dst[i], &u, sizeof(u));
    }
#endif
}

bool proto_mp_fvec_read(const struct msgpack_object *o, uint32_t n, float *dst, uint32_t *out_at,
                        proto_mp_fault *out_fault)
{
    if (o->type == MSGPACK_OBJECT_BIN) {
        proto_mp_f32_from_le(dst, o->via.bin.ptr, n);
    } else {
        for (uint32_t i = 0; i < n; i++) {
            dst[i] = (float)number_value(&o->via.array.ptr[i]);
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        if (!isfinite(dst[i])) {
            *out_at = i;
            fault(out_fault, PROTO_MP_NOT_FINITE);
            return false;
        }
    }
    return true;
}

/* ----------------------------------------------------------------- walker */

/* Recursion is bounded by PROTO_MAX_DEPTH, which base_mpcheck() enforced. */
static base_err walk(const msgpack_object *o, proto_mp_role role, uint32_t index,
                     proto_mp_visit_fn visit, void *ctx)
{
    proto_mp_item it = {.role = role, .index = index};
    base_err e = BASE_OK;

    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        it.kind = PROTO_MP_NIL;
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        it.kind = PROTO_MP_BOOL;
        it.via.b = o->via.boolean;
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        it.kind = PROTO_MP_UINT;
        it.via.u = o->via.u64;
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        it.kind = PROTO_MP_INT;
        it.via.i = o->via.i64;
        break;
    case MSGPACK_OBJECT_FLOAT32:
        it.kind = PROTO_MP_F32;
        it.via.f = o->via.f64;
        break;
    case MSGPACK_OBJECT_FLOAT64:
        it.kind = PROTO_MP_F64;
        it.via.f = o->via.f64;
        break;
    case MSGPACK_OBJECT_STR:
        it.kind = PROTO_MP_STR;
        it.via.bytes.ptr = o->via.str.ptr;
        it.via.bytes.size = o->via.str.size;
        break;
    case MSGPACK_OBJECT_BIN:
        it.kind = PROTO_MP_BIN;
        it.via.bytes.ptr = o->via.bin.ptr;
        it.via.bytes.size = o->via.bin.size;
        break;
    case MSGPACK_OBJECT_ARRAY:
        it.kind = PROTO_MP_ARRAY;
        it.via.n = o->via.array.size;
        break;
    case MSGPACK_OBJECT_MAP:
        it.kind = PROTO_MP_MAP;
        it.via.n = o->via.map.size;
        break;
    default:
        it.kind = PROTO_MP_EXT;
        break;
    }
    e = visit(ctx, &it);
    if (e != BASE_OK || (it.kind != PROTO_MP_ARRAY && it.kind != PROTO_MP_MAP)) {
        goto done;
    }
    for (uint32_t i = 0; i < it.via.n && e == BASE_OK; i++) {
        if (it.kind == PROTO_MP_ARRAY) {
            e = walk(&o->via.array.ptr[i], PROTO_MP_ELEMENT, i, visit, ctx);
        } else {
            e = walk(&o->via.map.ptr[i].key, PROTO_MP_KEY, i, visit, ctx);
            if (e == BASE_OK) {
                e = walk(&o->via.map.ptr[i].val, PROTO_MP_VALUE, i, visit, ctx);
            }
        }
    }
    if (e == BASE_OK) {
        it.kind = it.kind == PROTO_MP_ARRAY ? PROTO_MP_ARRAY_END : PROTO_MP_MAP_END;
        e = visit(ctx, &it);
    }
done:
    return e;
}

base_err proto_mp_walk(const uint8_t *buf, size_t len, proto_mp_visit_fn visit, void *ctx)
{
    msgpack_unpacked u;
    base_err e;

    msgpack_unpacked_init(&u);
    e = proto_mp_unpack(buf, len, PROTO_MAX_DEPTH, PROTO_MAX_OBJECTS, &u);
    if (e != BASE_OK) {
        e = e == BASE_ENOMEM ? BASE_ENOMEM : BASE_EPROTO;
        goto fail;
    }
    e = walk(&u.data, PROTO_MP_ROOT, 0, visit, ctx);
fail:
    msgpack_unpacked_destroy(&u);
    return e;
}
