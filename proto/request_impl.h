#ifndef PROTO_REQUEST_IMPL_H
#define PROTO_REQUEST_IMPL_H

/*
 * Between the request decoder (request.c), its field readers (request_fields.c) and its
 * per-thread buffers (request_scratch.c).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/mp.h"
#include "proto/request.h"

struct msgpack_zone;
struct msgpack_object;
struct msgpack_unpacked;

/* The request arrays a scratch keeps. */
enum proto_scratch_slot {
    PROTO_S_EMBEDDING,
    PROTO_S_PMF,
    PROTO_S_CAND,
    PROTO_S_IDS,
    PROTO_S_FEATURES,
    PROTO_S_N
};

/* This thread's buffers, made on first use; NULL when they cannot be (then decode allocates). */
proto_scratch *proto_thread_scratch(void);

/* The scratch's msgpack zone. */
struct msgpack_zone *proto_scratch_zone(proto_scratch *s);

/*
 * An array of @n items of @size for @r's field @slot: from r->scratch when it has one
 * (valid until the next decode on this thread), else its own allocation (freed by
 * proto_request_fini()). Zeroed. NULL when out of memory.
 */
void *proto_req_array(proto_request *r, enum proto_scratch_slot slot, size_t n, size_t size);

/* ---- field readers (request_fields.c); each sets @err on failure and returns its base_err */

#define PROTO_REQ_ECHO_MAX 32 /* bytes of peer text echoed into an error message */

/* "out of memory" (internal). */
base_err proto_req_reject_oom(proto_error *err);

/*
 * At most PROTO_REQ_ECHO_MAX bytes of peer text into @dst, cut on a character boundary as
 * every quote of a client's string is (docs/protocol.md, section 2); @src is valid UTF-8
 * without NUL bytes (the caller checked).
 */
void proto_req_echo(char *dst, size_t dst_size, const char *src, uint32_t n);

/* Check @buf and unpack it into @u (the caller's; it destroys it on every path). */
base_err proto_req_unpack(const uint8_t *buf, size_t len, struct msgpack_unpacked *u,
                          proto_error *err);

/* The same into the zone @z: the object @o lives until the zone is cleared. */
base_err proto_req_unpack_in(const uint8_t *buf, size_t len, struct msgpack_zone *z,
                             struct msgpack_object *o, proto_error *err);

/*
 * Look up @names in the map @m (called @where in messages): out[i] is the value of names[i]
 * or NULL. Rejects non-string keys and duplicate keys; ignores unknown keys.
 */
base_err proto_req_map_fields(const struct msgpack_object *m, const char *where,
                              const char *const *names, size_t n_names,
                              const struct msgpack_object **out, proto_error *err);

/*
 * The string field @o (named @name) into @dst of @max + 1 bytes; absent: "" unless
 * @required. Refuses non-strings, over @max bytes, NUL bytes, invalid UTF-8, and an empty
 * required string.
 */
base_err proto_req_get_str(const struct msgpack_object *o, const char *name, bool required,
                           size_t max, char *dst, proto_error *err);

/* A required number that must be finite as a float32. */
base_err proto_req_get_f32(const struct msgpack_object *o, const char *name, float *out,
                           proto_error *err);

/* A non-negative integer field into *out, or -1 when absent. */
base_err proto_req_get_ms(const struct msgpack_object *o, const char *name, int64_t *out,
                          proto_error *err);

/*
 * The error of float vector field @name, @o, that proto_mp_fvec_count() refused with
 * @fault (@at: the element at fault): a bin whose length is not a multiple of 4, an
 * element not a number, or neither a bin nor an array. Return: BASE_EINVAL.
 */
base_err proto_req_vec_fault(const struct msgpack_object *o, const char *name, proto_mp_fault fault,
                             uint32_t at, proto_error *err);

/*
 * A required, non-empty float vector (bin of LE float32, or array of numbers) of at most
 * @max entries into *out (@r's array @slot); past @max it is @over_code.
 */
base_err proto_req_get_vec(proto_request *r, enum proto_scratch_slot slot,
                           const struct msgpack_object *o, const char *name, uint32_t max,
                           proto_errcode over_code, float **out, uint32_t *out_n, proto_error *err);

#endif
