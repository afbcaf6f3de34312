#ifndef BASE_QUANT_H
#define BASE_QUANT_H

/*
 * Compact storage of context embeddings (docs/storage.md, "Decision"):
 * float32 as it is, IEEE half precision, or 8-bit integers with one
 * power-of-two scale per vector. base_emb_round() rounds a vector in place
 * to exactly the values its stored form decodes to, and is idempotent, so a
 * record encoded from rounded values decodes to those values bit for bit and
 * encodes again to the same bytes: what the service learns from live is what
 * a replay learns from.
 */

#include <stdbool.h>
#include <stdint.h>

typedef enum base_emb_storage {
    BASE_EMB_F32 = 0,
    BASE_EMB_F16 = 1,
    BASE_EMB_I8 = 2,
} base_emb_storage;

#define BASE_F16_MAX 65504.0f /* the largest finite half; larger magnitudes are clamped to it */

/* Round to nearest, ties to even; NaN stays NaN, +-inf stays +-inf, past 65504 rounds to inf. */
uint16_t base_f32_to_f16(float x);
float base_f16_to_f32(uint16_t h);

/*
 * The exponent k of the 8-bit form of @x [n]: the least k with
 * max|x_j| <= 127 * 2^k (0 for an all-zero vector), in [-156, 122] for finite x.
 */
int base_i8_exponent(const float *x, uint32_t n);
/* q_j = x_j / 2^k rounded to nearest even, in [-127, 127]. */
void base_i8_quantize(const float *x, uint32_t n, int k, int8_t *q);
/* x_j = q_j * 2^k. */
void base_i8_dequantize(const int8_t *q, uint32_t n, int k, float *x);

/*
 * base_emb_round() - round the finite vector @x [n] in place to the values
 * its @s form stores (f16: magnitudes above BASE_F16_MAX clamped to it first).
 */
void base_emb_round(base_emb_storage s, float *x, uint32_t n);

/* Whether @x [n] is already what base_emb_round(@s) would leave (an encoder's check). */
bool base_emb_is_rounded(base_emb_storage s, const float *x, uint32_t n);

/* "f32", "f16", "i8"; and back (false for an unknown name). */
const char *base_emb_storage_name(base_emb_storage s);
bool base_emb_storage_from_name(const char *name, base_emb_storage *out);

#endif
