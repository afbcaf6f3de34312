#ifndef STORAGE_CODEC_IMPL_H
#define STORAGE_CODEC_IMPL_H

/*
 * What the record codecs share (storage/codec.c for decisions, outcomes and
 * joined records; storage/codec_model.c for model snapshots): key writers,
 * field checks, the encoders' common tail and the decoders' key collection.
 * Private to storage/.
 */

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/record.h"
#include "proto/mp.h"

#define CODEC_VERSION 1u
#define CODEC_MAX_DEPTH 8u
#define CODEC_MAX_KEYS 48u

/* "key" then a value of each type; vectors are bins of little-endian values. */
void sto_codec_put_key(proto_writer *w, const char *key);
void sto_codec_put_str(proto_writer *w, const char *key, const char *val);
void sto_codec_put_u64(proto_writer *w, const char *key, uint64_t val);
void sto_codec_put_i64(proto_writer *w, const char *key, int64_t val);
void sto_codec_put_f64(proto_writer *w, const char *key, double val);
void sto_codec_put_f32s(proto_writer *w, const char *key, const float *v, uint32_t n);
void sto_codec_put_f64s(proto_writer *w, const char *key, const double *v, uint32_t n);

/* True if @s is NUL-terminated within its @size-byte field. */
bool sto_codec_str_ok(const char *s, size_t size);
/* True if every one of @v[0..n) is finite. */
bool sto_codec_floats_ok(const float *v, uint32_t n);
/* True if every number of the head settings is finite. */
bool sto_codec_settings_ok(const base_head_settings *h);

/* Common tail of every encoder: report the writer's error and undo a partial append. */
base_err sto_codec_finish(const proto_writer *w, size_t start);

/*
 * Point @slots[i] at the value of key @names[i] of @map; the first
 * @n_required must be present; slot 0 must be "v" = CODEC_VERSION.
 * Return: BASE_OK; BASE_EPROTO.
 */
base_err sto_codec_collect_opt(const msgpack_object *map, const char *const *names, size_t n_names,
                               size_t n_required, const msgpack_object **slots);

/* A str that fits @size bytes with its NUL and holds no NUL. */
bool sto_codec_get_str(const msgpack_object *o, char *dst, size_t size);

/* Check the raw bytes, then unpack one object; @u must be destroyed by the caller. */
base_err sto_codec_unpack(const uint8_t *buf, size_t len, msgpack_unpacked *u);

#endif
