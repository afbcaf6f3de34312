#ifndef PROTO_JSON_H
#define PROTO_JSON_H

/*
 * The JSON bridge: JSON request bodies to msgpack, msgpack replies to JSON (docs/protocol.md
 * section 10). rlfeedd's HTTP API (service/http_api.c), the CLI and the tests speak JSON
 * through it; it is a library of its own (librlfeed_proto_json.a), so that only they link
 * jansson, and this file is the only one that includes jansson.h outside the tools and tests.
 *
 * - JSON to msgpack: objects become maps (key order kept), arrays arrays, strings str,
 *   integers ints, reals float64, true/false bools, null nil. Arrays of numbers stay arrays
 *   (the daemon accepts them as float vectors). Duplicate keys and nesting deeper than
 *   PROTO_MAX_DEPTH are refused.
 * - msgpack to JSON: compact, one line. A bin whose length is a multiple of 4 prints as an
 *   array of float32 numbers ({1.0f, 0.5f} as [1.0,0.5]), any other bin as a string of
 *   lowercase hex digits. Floats print with the fewest digits that read back to the same
 *   value, with ".0" added to integral values so they stay reals; NaN and Inf print as null.
 *   Map keys that are not strings, ext values and strings that are not valid UTF-8 are
 *   refused.
 *
 * Thread-safety: reentrant. jansson allocates through whatever json_set_alloc_funcs() set.
 */

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "proto/errors.h"

/*
 * proto_json_to_msgpack() - encode the JSON text @json as one msgpack object appended to
 * @out.
 * @json: NUL-terminated (borrowed)   @errbuf: NULL, or @errlen bytes for a reason on failure
 * Return: BASE_OK; BASE_EINVAL (bad JSON, or NULL @json); BASE_ELIMIT (nesting, or @out's
 *         cap); BASE_ENOMEM. On failure @out is left as it was.
 */
base_err proto_json_to_msgpack(const char *json, base_buf *out, char *errbuf, size_t errlen);

/*
 * proto_json_from_msgpack() - print the msgpack message @buf as one line of JSON.
 * @buf: @len bytes (borrowed)
 * On success *out is a NUL-terminated string to free with base_free(); nothing is written
 * on failure.
 * Return: BASE_OK; BASE_EPROTO (not one well-formed message within the protocol's caps, or
 *         something JSON cannot say); BASE_ENOMEM.
 */
base_err proto_json_from_msgpack(const uint8_t *buf, size_t len, char **out);

/*
 * proto_json_from_reply() - proto_json_from_msgpack() of a reply, plus the code it carries:
 * PROTO_E_NONE when its "ok" is true, else its "error.code" (PROTO_E_INTERNAL for a code
 * this version does not know, or none). *out (NUL-terminated, @out_len bytes without the
 * NUL; free with base_free()) and *out_code are written only on success.
 * Return: as proto_json_from_msgpack().
 */
base_err proto_json_from_reply(const uint8_t *buf, size_t len, char **out, size_t *out_len,
                               proto_errcode *out_code);

/*
 * proto_json_request() - the JSON body of an HTTP API request (docs/protocol.md section 11)
 * as one msgpack request appended to @out, ready for proto_request_decode().
 * @json: @len bytes, need not be NUL-terminated, NULL for none (borrowed)   @op: the op of
 *   the path ("decide")
 * Before jansson parses it, the text is scanned: nesting deeper than PROTO_MAX_DEPTH or more
 * than PROTO_MAX_OBJECTS values (keys included; an empty array or object is one value, as
 * in msgpack) could never decode, and are refused without building them.
 * If the body is an object, "v" defaults to 1 and "op" to @op; an "op" that is present must
 * be the string @op. Anything else (an array, a number) is converted as it is: the decoder
 * refuses it as it refuses a msgpack message that is not a map.
 * On failure @err says why and @out is left as it was.
 * Return: BASE_OK; BASE_EPROTO (bad_json: not JSON text, with line and column); BASE_EINVAL
 *         (bad_request: the "op" is not @op, or a number jansson cannot hold: an integer
 *         outside [-2^63, 2^63) or a real beyond float64's range); BASE_ELIMIT (too_large:
 *         the caps above, or @out's cap); BASE_ENOMEM (internal).
 */
base_err proto_json_request(const char *json, size_t len, const char *op, base_buf *out,
                            proto_error *err);

/*
 * proto_http_target() - the HTTP API's request target: the path of @uri after @prefix (up
 * to '?') into @out (@len bytes), percent-decoded; the value of the query parameter "policy"
 * into @policy (@plen bytes; "" if absent; @policy NULL: the query is not read). An @uri
 * whose path neither starts with @prefix nor is @prefix without its trailing '/' (another
 * path, an absolute-form target) gives false, as does a part that cannot be decoded or does
 * not fit.
 */
bool proto_http_target(const char *uri, const char *prefix, char *out, size_t len, char *policy,
                       size_t plen);

/*
 * proto_http_query() - the value of the query parameter @key of @uri, percent-decoded ('+'
 * as a space) into @out (@len bytes; "" if absent). A parameter given twice counts once, the
 * last; one with an empty value is absent.
 * Return: 1 found; 0 absent; -1 a value that cannot be decoded or does not fit.
 */
int proto_http_query(const char *uri, const char *key, char *out, size_t len);

/*
 * proto_json_http_status() - the HTTP status of a reply carrying @code (docs/protocol.md
 * section 11): 200 for PROTO_E_NONE, 400 request errors, 404 unknown names, 409 conflicts,
 * 429 rate limits, 503 retryable, 500 internal (and any value outside the enum).
 */
int proto_json_http_status(proto_errcode code);

#endif
