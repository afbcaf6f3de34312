#ifndef TESTS_HELPERS_BAD_INPUTS_H
#define TESTS_HELPERS_BAD_INPUTS_H

/*
 * The protocol's bad-input cases, shared by the msgpack socket (test_daemon: each JSON text
 * converted to msgpack) and the JSON API (test_http_api: each posted as the body of
 * @http_path). Each case gets a specific code, is counted under it, and changes no state.
 *
 * They run against a daemon configured with TST_BAD_INPUTS_POLICY: policy "t", dim 4,
 * actions a, b, c (so at most 3 candidates), signal "resolved"; "ev-1" may or may not be a
 * pending decision.
 *
 * Where the two transports differ it is on purpose (docs/protocol.md section 11): over HTTP
 * "v" defaults to 1 (the first case then fails on its next missing field, with the same
 * code), and an "op" that is not the path's is bad_request (the unknown op).
 */

#include <stddef.h>

#include "proto/errors.h"

#define TST_BAD_INPUTS_POLICY                                                                      \
    "[policy t]\n"                                                                                 \
    "dim = 4\n"                                                                                    \
    "actions = a, b, c\n"                                                                          \
    "epsilon = 0.1\n"                                                                              \
    "seed = 3\n"                                                                                   \
    "signal.resolved = 1.0\n"                                                                      \
    "signal.thumbs_down = -1.0\n"                                                                  \
    "window_ms = 150\n"

typedef struct tst_bad_input {
    const char *json;        /* the request */
    proto_errcode code;      /* its code over msgpack */
    const char *http_path;   /* where the JSON API takes it ("/api/v1/decide") */
    int http_status;         /* its HTTP status there */
    proto_errcode http_code; /* and its code */
} tst_bad_input;

extern const tst_bad_input tst_bad_inputs[];
extern const size_t tst_n_bad_inputs;

/* How many cases have @code over msgpack (@http false) or over HTTP (@http true). */
long long tst_bad_inputs_count(proto_errcode code, int http);

#endif
