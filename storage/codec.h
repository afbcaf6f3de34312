#ifndef STORAGE_CODEC_H
#define STORAGE_CODEC_H

/*
 * msgpack encodings of the shared records, as stored in Redis. Each record is
 * one msgpack map with short keys and a format version "v"; float vectors are
 * bin of little-endian float32. The layouts are documented with a literal
 * example in docs/storage.md.
 *
 * Decoders are pure functions over (buf, len): they check the raw bytes'
 * counts against the remaining length before unpacking, reject unknown
 * versions, wrong types, lengths past the caps in base/record.h and
 * non-finite floats, and never allocate more than a small multiple of len.
 * Each has a fuzz target in tests/fuzz/.
 */

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/record.h"

/* e8 exponents a record may carry: base_i8_exponent() of finite floats, with margin. */
#define STO_E8_EXP_MIN (-160)
#define STO_E8_EXP_MAX 130

/*
 * Encoders append to @out; on failure @out is left as it was.
 * Return: BASE_OK; BASE_EINVAL if the record breaks an invariant the decoder
 *         checks (unterminated string, chosen >= n_cand, non-finite float,
 *         action >= BASE_ACTIONS_MAX), so nothing undecodable is stored;
 *         BASE_ELIMIT past out's cap; BASE_ENOMEM.
 */
base_err sto_codec_encode_decision(const base_decision *d, base_buf *out);
base_err sto_codec_encode_outcome(const base_outcome *o, base_buf *out);
base_err sto_codec_encode_joined(const base_joined *j, base_buf *out);
base_err sto_codec_encode_model(const base_snapshot *m, base_buf *out);

/* Decoders. Return: BASE_OK with a new record in *out; BASE_EPROTO; BASE_ENOMEM. */
base_err sto_codec_decode_decision(const uint8_t *buf, size_t len, base_decision **out);
base_err sto_codec_decode_outcome(const uint8_t *buf, size_t len, base_outcome **out);
base_err sto_codec_decode_joined(const uint8_t *buf, size_t len, base_joined **out);
base_err sto_codec_decode_model(const uint8_t *buf, size_t len, base_snapshot **out);

#endif
