#ifndef PROTO_REQUEST_IMPL_H
#define PROTO_REQUEST_IMPL_H

/* Between the request decoder (request.c) and its per-thread buffers (request_scratch.c). */

#include <stddef.h>

#include "proto/request.h"

struct msgpack_zone;

/* The request arrays a scratch keeps. */
enum proto_scratch_slot { PROTO_S_EMBEDDING, PROTO_S_PMF, PROTO_S_CAND, PROTO_S_IDS, PROTO_S_N };

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

#endif
