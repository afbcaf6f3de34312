#ifndef PROTO_MP_H
#define PROTO_MP_H

/*
 * The msgpack toolkit: the one place that reads and writes msgpack for the wire protocol
 * (proto/request.c, proto/reply.c, proto/stats.c) and for the record codec
 * (storage/codec.c). Three parts:
 *
 * - A writer appending to a base_buf. Errors are sticky: the first failure (BASE_ELIMIT at
 *   the buffer's cap, BASE_ENOMEM) is kept and returned by proto_writer_finish(); later
 *   calls do nothing. Float vectors are written as bin of little-endian IEEE-754 values,
 *   whatever the host's byte order:
 *       {1.0f, -2.0f}  ->  c4 08 00 00 80 3f 00 00 00 c0
 * - Readers over an unpacked message: proto_mp_unpack() runs base_mpcheck() over the raw
 *   bytes before msgpack-c sees them (msgpack-c 4.0 reserves memory for whatever counts a
 *   header claims, DESIGN.md section 12); proto_mp_map_fields() finds a map's known keys;
 *   the proto_mp_get_*() readers check one value's type, range and finiteness and copy it
 *   out.
 * - A walker, proto_mp_walk(), that shows every value of a message to a callback in
 *   document order, for printers that must not depend on msgpack's types (proto/json.c).
 *
 * Readers take `const struct msgpack_object *` (declared in <msgpack.h>, which only their
 * callers include). A msgpack_object dies with the msgpack_unpacked that made it, and str
 * and bin objects point into the caller's buffer: copy out what you keep.
 *
 * Every reader returns true on success; on failure it writes nothing but the reason, into
 * *out_fault when that is not NULL, so callers can name the fault in an error message (the
 * wire decoder) or ignore it (the record codec).
 *
 * Thread-safety: every function is reentrant; a proto_writer is used by one thread at a time.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

struct msgpack_object;
struct msgpack_unpacked;
struct msgpack_zone;

/* ------------------------------------------------------------------ writer */

typedef struct proto_writer {
    base_buf *out; /* borrowed */
    base_err err;  /* the first failure, sticky */
} proto_writer;

/* proto_writer_init() - append to @out (borrowed; must outlive the writer). */
void proto_writer_init(proto_writer *w, base_buf *out);
/* proto_writer_finish() - Return: BASE_OK; the first BASE_ELIMIT or BASE_ENOMEM of @w. */
base_err proto_writer_finish(const proto_writer *w);

/*
 * proto_w_*() - append one value (or a container header whose @n values or @n_pairs key,
 * value pairs the caller writes next). Nothing happens once @w has failed. Strings are
 * written as str (NULL: the empty string); proto_w_strn() writes @n bytes of @s, which need
 * not be NUL-terminated. Integers take the shortest msgpack form, doubles are float64.
 * The *_bin() writers need n * 4 (or n * 8) <= UINT32_MAX (else BASE_ELIMIT).
 */
void proto_w_map(proto_writer *w, uint32_t n_pairs);
void proto_w_array(proto_writer *w, uint32_t n);
void proto_w_str(proto_writer *w, const char *s);
void proto_w_strn(proto_writer *w, const char *s, size_t n);
void proto_w_int(proto_writer *w, int64_t v);
void proto_w_uint(proto_writer *w, uint64_t v);
void proto_w_double(proto_writer *w, double v);
void proto_w_bool(proto_writer *w, bool v);
void proto_w_nil(proto_writer *w);
void proto_w_bin(proto_writer *w, const void *bytes, size_t n);       /* raw bytes */
void proto_w_f32_bin(proto_writer *w, const float *v, uint32_t n);    /* LE float32 */
void proto_w_u32_bin(proto_writer *w, const uint32_t *v, uint32_t n); /* LE uint32 */
void proto_w_f64_bin(proto_writer *w, const double *v, uint32_t n);   /* LE float64 */
void proto_w_f32_array(proto_writer *w, const float *v, uint32_t n);  /* array of float32 */

/* ---------------------------------------------------------------- readers */

/* Why a reader refused a value. */
typedef enum proto_mp_fault {
    PROTO_MP_WRONG_TYPE = 1, /* not the msgpack type the reader wants (or not a map) */
    PROTO_MP_KEY_NOT_STR,    /* a map key that is not a str */
    PROTO_MP_DUP_KEY,        /* a map key that repeats */
    PROTO_MP_TOO_LONG,       /* a str longer than its cap */
    PROTO_MP_HAS_NUL,        /* a str with a NUL byte inside */
    PROTO_MP_NOT_UTF8,       /* a str that is not valid UTF-8 */
    PROTO_MP_OUT_OF_RANGE,   /* an integer past its bounds */
    PROTO_MP_NOT_FINITE,     /* NaN or Inf, or a number beyond the float32 range */
    PROTO_MP_BAD_LENGTH,     /* a bin whose length is not the one (or multiple) wanted */
    PROTO_MP_BAD_ELEMENT,    /* an array element that is not a number */
    PROTO_MP_NO_MEMORY,      /* an allocation failed */
} proto_mp_fault;

/*
 * proto_mp_unpack() - check @buf, then unpack exactly one object into @u.
 * @buf: @len bytes (borrowed; objects in @u point into it)
 * @max_depth: <= BASE_MPCHECK_DEPTH_MAX   @max_objects: cap of base_mpcheck()
 * @u: initialised by the caller with msgpack_unpacked_init(), which destroys it with
 *     msgpack_unpacked_destroy() on every path, success or not.
 * Return: BASE_OK; BASE_ELIMIT past the depth or object cap; BASE_EPROTO if @buf is not
 *         exactly one well-formed object; BASE_ENOMEM.
 */
base_err proto_mp_unpack(const uint8_t *buf, size_t len, size_t max_depth, size_t max_objects,
                         struct msgpack_unpacked *u);

/*
 * proto_mp_unpack_in() - proto_mp_unpack() into the caller's zone @z (kept and cleared by
 * the caller, so a server can reuse one): *out lives until @z is cleared or destroyed.
 */
base_err proto_mp_unpack_in(const uint8_t *buf, size_t len, size_t max_depth, size_t max_objects,
                            struct msgpack_zone *z, struct msgpack_object *out);

/*
 * proto_mp_map_fields() - find the keys @names[0..n_names) in the map @m.
 * out[i] points at the value of names[i] (borrowed from @m), or is NULL when absent; keys
 * not in @names are skipped. Every key must be a str. No key in @names may appear twice;
 * with @all_unique no key at all may (the wire protocol's rule, checked in O(n log n)).
 * Faults, in the order they are checked: WRONG_TYPE (@m is not a map), KEY_NOT_STR (any
 * key), DUP_KEY, NO_MEMORY (only with @all_unique).
 * Return: true on success; false with the fault (out[] is then unspecified).
 */
bool proto_mp_map_fields(const struct msgpack_object *m, const char *const *names, size_t n_names,
                         bool all_unique, const struct msgpack_object **out,
                         proto_mp_fault *out_fault);

/*
 * proto_mp_get_str() - copy the str @o of at most @max_bytes bytes, without NUL bytes
 * inside, into @dst (room for @max_bytes + 1) and NUL-terminate it. With @utf8 the text
 * must also be valid UTF-8 (base/utf8.h). Faults, in order: WRONG_TYPE, TOO_LONG, HAS_NUL,
 * NOT_UTF8.
 */
bool proto_mp_get_str(const struct msgpack_object *o, size_t max_bytes, bool utf8, char *dst,
                      proto_mp_fault *out_fault);

/* A non-negative int <= @max. Faults: WRONG_TYPE (not a non-negative int), OUT_OF_RANGE. */
bool proto_mp_get_u64(const struct msgpack_object *o, uint64_t max, uint64_t *out,
                      proto_mp_fault *out_fault);
bool proto_mp_get_u32(const struct msgpack_object *o, uint32_t max, uint32_t *out,
                      proto_mp_fault *out_fault);
/* Any int that fits int64. Faults: WRONG_TYPE, OUT_OF_RANGE. */
bool proto_mp_get_i64(const struct msgpack_object *o, int64_t *out, proto_mp_fault *out_fault);
/* A number (int, float32 or float64) that is finite. Faults: WRONG_TYPE, NOT_FINITE. */
bool proto_mp_get_f64(const struct msgpack_object *o, double *out, proto_mp_fault *out_fault);
/* A number that is finite once converted to float32 (1e300 is not). Faults: as above. */
bool proto_mp_get_f32(const struct msgpack_object *o, float *out, proto_mp_fault *out_fault);
/* A boolean. Fault: WRONG_TYPE. */
bool proto_mp_get_bool(const struct msgpack_object *o, bool *out, proto_mp_fault *out_fault);

/*
 * proto_mp_get_f32_bin(), _u32_bin(), _f64_bin() - a bin of exactly @n little-endian
 * values into @dst[0..n): float32 all finite, uint32 each below @limit, float64 all finite.
 * Faults: WRONG_TYPE (not a bin), BAD_LENGTH, NOT_FINITE or OUT_OF_RANGE (@dst may then be
 * partly written).
 */
bool proto_mp_get_f32_bin(const struct msgpack_object *o, uint32_t n, float *dst,
                          proto_mp_fault *out_fault);
bool proto_mp_get_u32_bin(const struct msgpack_object *o, uint32_t n, uint32_t limit, uint32_t *dst,
                          proto_mp_fault *out_fault);
bool proto_mp_get_f64_bin(const struct msgpack_object *o, uint32_t n, double *dst,
                          proto_mp_fault *out_fault);

/* proto_mp_bin_count() - the number of @width-byte elements in the bin @o, or false. */
bool proto_mp_bin_count(const struct msgpack_object *o, size_t width, uint32_t *out_n);

/*
 * proto_mp_fvec_count() - the length of a protocol float vector: a bin of little-endian
 * float32 (its length a multiple of 4) or an array of numbers. Nothing is converted.
 * Faults: WRONG_TYPE (neither), BAD_LENGTH (a bin not a multiple of 4), BAD_ELEMENT (the
 * array element *out_at is not a number).
 */
bool proto_mp_fvec_count(const struct msgpack_object *o, uint32_t *out_n, uint32_t *out_at,
                         proto_mp_fault *out_fault);

/*
 * proto_mp_fvec_read() - convert the vector @o (proto_mp_fvec_count() said it holds @n
 * entries) to float32 into @dst[0..n). Fault: NOT_FINITE at entry *out_at (NaN, Inf, or a
 * double beyond the float32 range); @dst is then fully written.
 */
bool proto_mp_fvec_read(const struct msgpack_object *o, uint32_t n, float *dst, uint32_t *out_at,
                        proto_mp_fault *out_fault);

/* proto_mp_f32_from_le() - @n little-endian float32 at @src (4 * @n bytes) into @dst. */
void proto_mp_f32_from_le(float *dst, const void *src, uint32_t n);

/* ----------------------------------------------------------------- walker */

/* What a walked item is. */
typedef enum proto_mp_kind {
    PROTO_MP_NIL,
    PROTO_MP_BOOL,  /* via.b */
    PROTO_MP_UINT,  /* via.u: a non-negative int */
    PROTO_MP_INT,   /* via.i: a negative int */
    PROTO_MP_F32,   /* via.f */
    PROTO_MP_F64,   /* via.f */
    PROTO_MP_STR,   /* via.bytes, not NUL-terminated, not checked for UTF-8 */
    PROTO_MP_BIN,   /* via.bytes */
    PROTO_MP_EXT,   /* an ext value: its bytes are not shown */
    PROTO_MP_ARRAY, /* via.n elements follow, then PROTO_MP_ARRAY_END */
    PROTO_MP_MAP,   /* via.n key, value pairs follow, then PROTO_MP_MAP_END */
    PROTO_MP_ARRAY_END,
    PROTO_MP_MAP_END,
} proto_mp_kind;

/* Where a walked item sits. */
typedef enum proto_mp_role {
    PROTO_MP_ROOT,    /* the message itself */
    PROTO_MP_ELEMENT, /* an array element; index: its position */
    PROTO_MP_KEY,     /* a map key; index: its pair's position */
    PROTO_MP_VALUE,   /* a map value; index: its pair's position */
} proto_mp_role;

typedef struct proto_mp_item {
    proto_mp_kind kind;
    proto_mp_role role; /* an END item has the role and index of its container */
    uint32_t index;
    union {
        bool b;
        uint64_t u;
        int64_t i;
        double f;
        uint32_t n;
        struct {
            const char *ptr; /* borrowed from the walked buffer */
            uint32_t size;
        } bytes;
    } via;
} proto_mp_item;

typedef base_err (*proto_mp_visit_fn)(void *ctx, const proto_mp_item *item);

/*
 * proto_mp_walk() - show every value of the message @buf to @visit, depth first in
 * document order: a container, then its contents, then its END item.
 * @buf: @len bytes (borrowed)   @ctx: passed to @visit
 * The message is checked and unpacked as by proto_mp_unpack() with the protocol's caps
 * (PROTO_MAX_DEPTH, PROTO_MAX_OBJECTS); nothing is shown unless that succeeds. The walk
 * stops at the first item @visit refuses.
 * Return: BASE_OK; BASE_EPROTO if @buf is not one well-formed message within the caps;
 *         BASE_ENOMEM; or the first error @visit returned.
 */
base_err proto_mp_walk(const uint8_t *buf, size_t len, proto_mp_visit_fn visit, void *ctx);

#endif
