/*
 * Unit tests for proto/mp.c, the msgpack toolkit: the writer (little-endian vectors, sticky
 * errors), the readers' checks and faults, map lookups in both duplicate modes, and the
 * walker. Inputs are written with the toolkit's own writer or as raw bytes; readers get
 * their objects from proto_mp_unpack(), so this test includes <msgpack.h> only for the
 * object and unpacker types.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "base/buf.h"
#include "proto/errors.h"
#include "proto/mp.h"
#include "proto/reply.h"
#include "tap.h"

#define MUST_OK(expr)                                                                              \
    do {                                                                                           \
        base_err must_e_ = (expr);                                                                 \
        TST_OK(must_e_);                                                                           \
        if (must_e_ != BASE_OK) {                                                                  \
            printf("Bail out! %s failed\n", #expr);                                                \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static void writer_encodes_little_endian_and_keeps_first_error(void)
{
    static const float v[2] = {1.0f, -2.0f};
    static const uint8_t want[] = {0xc4, 0x08, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0};
    base_buf b;
    proto_writer w;

    base_buf_init(&b, 16);
    proto_writer_init(&w, &b);
    proto_w_f32_bin(&w, v, 2);
    MUST_OK(proto_writer_finish(&w));
    TST_EQ(b.len, sizeof(want));
    TST_TRUE(b.len == sizeof(want) && memcmp(b.data, want, sizeof(want)) == 0);
    proto_w_str(&w, "this string does not fit");
    TST_EQ(proto_writer_finish(&w), BASE_ELIMIT);
    TST_EQ(b.len, sizeof(want) + 1); /* the str header fit, its body did not */
    proto_w_nil(&w);                 /* would fit, but the error is sticky */
    TST_EQ(proto_writer_finish(&w), BASE_ELIMIT);
    TST_EQ(b.len, sizeof(want) + 1);

    /* A reply that does not fit leaves the buffer as it was. */
    base_buf_reset(&b);
    MUST_OK(base_buf_append(&b, "xy", 2));
    TST_EQ(proto_reply_error(&b, PROTO_E_INTERNAL, "a message longer than the cap"), BASE_ELIMIT);
    TST_EQ(b.len, 2);
    base_buf_fini(&b);
}

/* Unpack @b (written by the caller) into @u; the root object is u->data. */
static void must_unpack(const base_buf *b, msgpack_unpacked *u)
{
    msgpack_unpacked_init(u);
    MUST_OK(proto_mp_unpack(b->data, b->len, PROTO_MAX_DEPTH, PROTO_MAX_OBJECTS, u));
}

static void unpack_reports_caps_and_malformed_input(void)
{
    static const uint8_t array32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t two[] = {0xc0, 0xc0};
    uint8_t deep[20];
    msgpack_unpacked u;

    memset(deep, 0x91, sizeof(deep));
    deep[sizeof(deep) - 1] = 0xc0;
    msgpack_unpacked_init(&u);
    TST_EQ(proto_mp_unpack(array32, sizeof(array32), 16, 1000, &u), BASE_EPROTO);
    TST_EQ(proto_mp_unpack(two, sizeof(two), 16, 1000, &u), BASE_EPROTO); /* trailing bytes */
    TST_EQ(proto_mp_unpack(deep, sizeof(deep), 16, 1000, &u), BASE_ELIMIT);
    TST_EQ(proto_mp_unpack(deep, sizeof(deep), 32, 1000, &u), BASE_OK);
    TST_EQ(proto_mp_unpack(deep, sizeof(deep), 32, 10, &u), BASE_ELIMIT);
    msgpack_unpacked_destroy(&u);
}

static void scalar_readers_check_type_range_and_finiteness(void)
{
    static const char *const strs[] = {"ok", "a\0b", "\xc0\xaf", "longer than five"};
    base_buf b;
    proto_writer w;
    msgpack_unpacked u;
    proto_mp_fault f = 0;
    char dst[6];
    uint64_t u64 = 0;
    uint32_t u32 = 0;
    int64_t i64 = 0;
    double d = 0.0;
    float x = 0.0f;
    bool flag = false;

    base_buf_init(&b, 4096);
    proto_writer_init(&w, &b);
    proto_w_array(&w, 12);
    proto_w_str(&w, strs[0]);
    proto_w_strn(&w, strs[1], 3);
    proto_w_str(&w, strs[2]);
    proto_w_str(&w, strs[3]);
    proto_w_uint(&w, UINT64_MAX);
    proto_w_int(&w, -5);
    proto_w_double(&w, 1e300);
    proto_w_double(&w, NAN);
    proto_w_bool(&w, true);
    proto_w_nil(&w);
    proto_w_uint(&w, 70000);
    proto_w_int(&w, 3);
    MUST_OK(proto_writer_finish(&w));
    must_unpack(&b, &u);
    const msgpack_object *a = u.data.via.array.ptr;

    TST_TRUE(proto_mp_get_str(&a[0], 5, true, dst, &f) && strcmp(dst, "ok") == 0);
    TST_TRUE(!proto_mp_get_str(&a[1], 5, true, dst, &f) && f == PROTO_MP_HAS_NUL);
    TST_TRUE(!proto_mp_get_str(&a[2], 5, true, dst, &f) && f == PROTO_MP_NOT_UTF8);
    TST_TRUE(proto_mp_get_str(&a[2], 5, false, dst, NULL)); /* records do not check UTF-8 */
    TST_TRUE(!proto_mp_get_str(&a[3], 5, true, dst, &f) && f == PROTO_MP_TOO_LONG);
    TST_TRUE(!proto_mp_get_str(&a[4], 5, true, dst, &f) && f == PROTO_MP_WRONG_TYPE);

    TST_TRUE(proto_mp_get_u64(&a[4], UINT64_MAX, &u64, &f) && u64 == UINT64_MAX);
    TST_TRUE(!proto_mp_get_u64(&a[4], 10, &u64, &f) && f == PROTO_MP_OUT_OF_RANGE);
    TST_TRUE(!proto_mp_get_u64(&a[5], 10, &u64, &f) && f == PROTO_MP_WRONG_TYPE);
    TST_TRUE(!proto_mp_get_u32(&a[10], 65535, &u32, &f) && f == PROTO_MP_OUT_OF_RANGE);
    TST_TRUE(proto_mp_get_u32(&a[10], UINT32_MAX, &u32, NULL) && u32 == 70000);
    TST_TRUE(proto_mp_get_i64(&a[5], &i64, &f) && i64 == -5);
    TST_TRUE(!proto_mp_get_i64(&a[4], &i64, &f) && f == PROTO_MP_OUT_OF_RANGE);
    TST_TRUE(!proto_mp_get_i64(&a[8], &i64, &f) && f == PROTO_MP_WRONG_TYPE);

    TST_TRUE(proto_mp_get_f64(&a[6], &d, &f) && d == 1e300);
    TST_TRUE(!proto_mp_get_f32(&a[6], &x, &f) && f == PROTO_MP_NOT_FINITE); /* past float32 */
    TST_TRUE(!proto_mp_get_f64(&a[7], &d, &f) && f == PROTO_MP_NOT_FINITE);
    TST_TRUE(proto_mp_get_f32(&a[11], &x, &f) && x == 3.0f); /* ints are numbers */
    TST_TRUE(!proto_mp_get_f64(&a[9], &d, &f) && f == PROTO_MP_WRONG_TYPE);
    TST_TRUE(proto_mp_get_bool(&a[8], &flag, &f) && flag);
    TST_TRUE(!proto_mp_get_bool(&a[9], &flag, &f) && f == PROTO_MP_WRONG_TYPE);
    msgpack_unpacked_destroy(&u);
    base_buf_fini(&b);
}

static void vector_readers_check_length_and_values(void)
{
    static const float fv[3] = {1.5f, -0.0f, 3e-7f};
    static const uint32_t uv[3] = {0, 7, 4095};
    static const double dv[2] = {0.1, -1e300};
    base_buf b;
    proto_writer w;
    msgpack_unpacked u;
    proto_mp_fault f = 0;
    float fo[3];
    uint32_t uo[3], n = 0, at = 0;
    double dout[2];

    base_buf_init(&b, 4096);
    proto_writer_init(&w, &b);
    proto_w_array(&w, 6);
    proto_w_f32_bin(&w, fv, 3);
    proto_w_u32_bin(&w, uv, 3);
    proto_w_f64_bin(&w, dv, 2);
    proto_w_f32_array(&w, fv, 3);
    proto_w_array(&w, 2);
    proto_w_int(&w, 1);
    proto_w_str(&w, "x");
    proto_w_f32_array(&w, (const float[]){1.0f, INFINITY}, 2);
    MUST_OK(proto_writer_finish(&w));
    must_unpack(&b, &u);
    const msgpack_object *a = u.data.via.array.ptr;

    TST_TRUE(proto_mp_get_f32_bin(&a[0], 3, fo, &f) && memcmp(fo, fv, sizeof(fv)) == 0);
    TST_TRUE(!proto_mp_get_f32_bin(&a[0], 2, fo, &f) && f == PROTO_MP_BAD_LENGTH);
    TST_TRUE(!proto_mp_get_f32_bin(&a[3], 3, fo, &f) && f == PROTO_MP_WRONG_TYPE);
    TST_TRUE(proto_mp_get_u32_bin(&a[1], 3, 4096, uo, &f) && memcmp(uo, uv, sizeof(uv)) == 0);
    TST_TRUE(!proto_mp_get_u32_bin(&a[1], 3, 4095, uo, &f) && f == PROTO_MP_OUT_OF_RANGE);
    TST_TRUE(proto_mp_get_f64_bin(&a[2], 2, dout, &f) && memcmp(dout, dv, sizeof(dv)) == 0);
    TST_TRUE(proto_mp_bin_count(&a[2], 8, &n) && n == 2);
    TST_TRUE(!proto_mp_bin_count(&a[2], 3, &n));

    TST_TRUE(proto_mp_fvec_count(&a[0], &n, &at, &f) && n == 3);
    TST_TRUE(proto_mp_fvec_count(&a[3], &n, &at, &f) && n == 3);
    TST_TRUE(proto_mp_fvec_read(&a[3], 3, fo, &at, &f) && memcmp(fo, fv, sizeof(fv)) == 0);
    TST_TRUE(!proto_mp_fvec_count(&a[4], &n, &at, &f) && f == PROTO_MP_BAD_ELEMENT && at == 1);
    TST_TRUE(proto_mp_fvec_count(&a[5], &n, &at, &f) && n == 2);
    TST_TRUE(!proto_mp_fvec_read(&a[5], 2, fo, &at, &f) && f == PROTO_MP_NOT_FINITE && at == 1);
    msgpack_unpacked_destroy(&u);

    /* A bin of 6 bytes is no float32 vector. */
    base_buf_reset(&b);
    MUST_OK(base_buf_append(&b, "\xc4\x06\x00\x00\x80\x3f\x00\x00", 8));
    must_unpack(&b, &u);
    TST_TRUE(!proto_mp_fvec_count(&u.data, &n, &at, &f) && f == PROTO_MP_BAD_LENGTH);
    msgpack_unpacked_destroy(&u);
    base_buf_fini(&b);
}

static void map_fields_finds_keys_and_refuses_repeats(void)
{
    static const char *const names[] = {"a", "b"};
    const msgpack_object *out[2];
    base_buf b;
    proto_writer w;
    msgpack_unpacked u;
    proto_mp_fault f = 0;

    base_buf_init(&b, 4096);
    proto_writer_init(&w, &b);
    proto_w_map(&w, 4);
    proto_w_str(&w, "b");
    proto_w_int(&w, 2);
    proto_w_str(&w, "x");
    proto_w_nil(&w);
    proto_w_str(&w, "x");
    proto_w_nil(&w);
    proto_w_str(&w, "z");
    proto_w_nil(&w);
    MUST_OK(proto_writer_finish(&w));
    must_unpack(&b, &u);
    /* Only known keys must be unique for records; every key for the wire protocol. */
    TST_TRUE(proto_mp_map_fields(&u.data, names, 2, false, out, &f));
    TST_TRUE(out[0] == NULL && out[1] != NULL && out[1]->via.u64 == 2);
    TST_TRUE(!proto_mp_map_fields(&u.data, names, 2, true, out, &f) && f == PROTO_MP_DUP_KEY);
    TST_TRUE(!proto_mp_map_fields(&u.data.via.map.ptr[0].val, names, 2, false, out, &f) &&
             f == PROTO_MP_WRONG_TYPE);
    msgpack_unpacked_destroy(&u);

    base_buf_reset(&b);
    proto_writer_init(&w, &b);
    proto_w_map(&w, 3);
    proto_w_str(&w, "a");
    proto_w_nil(&w);
    proto_w_str(&w, "a");
    proto_w_nil(&w);
    proto_w_int(&w, 1); /* a key that is not a str is reported before the repeat */
    proto_w_nil(&w);
    MUST_OK(proto_writer_finish(&w));
    must_unpack(&b, &u);
    TST_TRUE(!proto_mp_map_fields(&u.data, names, 2, false, out, &f) && f == PROTO_MP_KEY_NOT_STR);
    msgpack_unpacked_destroy(&u);
    base_buf_fini(&b);
}

/* Prints every item as "kind/role/index" into the buffer @ctx, one per line. */
static base_err record_item(void *ctx, const proto_mp_item *it)
{
    char line[32];
    int n = snprintf(line, sizeof(line), "%d/%d/%u\n", (int)it->kind, (int)it->role,
                     (unsigned)it->index);
    return base_buf_append(ctx, line, (size_t)n);
}

static base_err refuse_strings(void *ctx, const proto_mp_item *it)
{
    (void)ctx;
    return it->kind == PROTO_MP_STR ? BASE_EINVAL : BASE_OK;
}

static void walk_shows_items_in_document_order(void)
{
    char want[256];
    base_buf b, seen;
    proto_writer w;

    base_buf_init(&b, 4096);
    base_buf_init(&seen, 4096);
    proto_writer_init(&w, &b);
    proto_w_map(&w, 1);
    proto_w_str(&w, "k");
    proto_w_array(&w, 2);
    proto_w_bool(&w, false);
    proto_w_int(&w, -1);
    MUST_OK(proto_writer_finish(&w));
    MUST_OK(proto_mp_walk(b.data, b.len, record_item, &seen));
    (void)snprintf(want, sizeof(want), "%d/0/0\n%d/2/0\n%d/3/0\n%d/1/0\n%d/1/1\n%d/3/0\n%d/0/0\n",
                   PROTO_MP_MAP, PROTO_MP_STR, PROTO_MP_ARRAY, PROTO_MP_BOOL, PROTO_MP_INT,
                   PROTO_MP_ARRAY_END, PROTO_MP_MAP_END);
    TST_TRUE(seen.len == strlen(want) && memcmp(seen.data, want, seen.len) == 0);
    TST_EQ(proto_mp_walk(b.data, b.len, refuse_strings, NULL), BASE_EINVAL);
    TST_EQ(proto_mp_walk(b.data, b.len - 1, record_item, &seen), BASE_EPROTO);
    base_buf_fini(&seen);
    base_buf_fini(&b);
}

int main(void)
{
    writer_encodes_little_endian_and_keeps_first_error();
    unpack_reports_caps_and_malformed_input();
    scalar_readers_check_type_range_and_finiteness();
    vector_readers_check_length_and_values();
    map_fields_finds_keys_and_refuses_repeats();
    walk_shows_items_in_document_order();
    return tst_done();
}
