/*
 * A thread's request-decoding buffers (proto_request_decode_reuse()): the msgpack zone
 * (cleared after each request, its first chunk kept) and the request's arrays (grown,
 * never shrunk), kept under a pthread key and freed when the thread exits.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <msgpack.h>

#include "base/alloc.h"
#include "proto/request_impl.h"

#define ZONE_CHUNK 16384 /* msgpack zone chunk kept between requests */

/*
 * What proto_request_decode_reuse() keeps on a thread from one request to the next: the
 * msgpack zone (cleared, its first chunk kept) and the request's arrays (grown, never shrunk).
 */
struct proto_scratch {
    msgpack_zone zone;
    void *arr[PROTO_S_N];
    size_t cap[PROTO_S_N]; /* bytes */
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static bool scratch_key_ok;

static void scratch_free(void *arg)
{
    proto_scratch *s = arg;
    msgpack_zone_destroy(&s->zone);
    for (int i = 0; i < PROTO_S_N; i++) {
        base_free(s->arr[i]);
    }
    base_free(s);
}

static void scratch_key_init(void)
{
    scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0;
}

/* This thread's buffers, made on first use; NULL when they cannot be (then decode allocates). */
proto_scratch *proto_thread_scratch(void)
{
    (void)pthread_once(&scratch_once, scratch_key_init);
    if (!scratch_key_ok) {
        return NULL;
    }
    proto_scratch *s = pthread_getspecific(scratch_key);
    if (s != NULL) {
        return s;
    }
    s = base_alloc_zero(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    if (!msgpack_zone_init(&s->zone, ZONE_CHUNK)) {
        base_free(s);
        return NULL;
    }
    if (pthread_setspecific(scratch_key, s) != 0) {
        scratch_free(s);
        return NULL;
    }
    return s;
}

/*
 * An array of @n items of @size for @r's field @slot: from r's scratch when it has one
 * (valid until the next decode on this thread), else its own allocation (freed by
 * proto_request_fini()). Zeroed. NULL when out of memory.
 */
void *proto_req_array(proto_request *r, enum proto_scratch_slot slot, size_t n, size_t size)
{
    proto_scratch *s = r->scratch;
    if (s == NULL) {
        return base_alloc_zero(n, size);
    }
    if (size != 0 && n > SIZE_MAX / size) {
        return NULL;
    }
    size_t bytes = n * size;
    if (bytes > s->cap[slot]) {
        void *g = base_realloc_array(s->arr[slot], bytes, 1);
        if (g == NULL) {
            return NULL;
        }
        s->arr[slot] = g;
        s->cap[slot] = bytes;
    }
    memset(s->arr[slot], 0, bytes);
    return s->arr[slot];
}

struct msgpack_zone *proto_scratch_zone(proto_scratch *s)
{
    return &s->zone;
}
