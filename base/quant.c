#include "base/quant.h"

#include <math.h>
#include <string.h>

uint16_t base_f32_to_f16(float x)
{
    uint32_t a;
    memcpy(&a, &x, sizeof(a));
    uint16_t sign = (uint16_t)((a >> 16) & 0x8000u);
    a &= 0x7fffffffu;
    if (a > 0x7f800000u) {
        return (uint16_t)(sign | 0x7e00u); /* NaN */
    }
    if (a >= 0x477ff000u) {
        return (uint16_t)(sign | 0x7c00u); /* rounds past 65504: inf */
    }
    if (a < 0x38800000u) {
        /* Below 2^-14, the smallest normal half: a multiple of 2^-24, or 0. */
        if (a < 0x33000000u) {
            return sign; /* below 2^-25: rounds to 0 */
        }
        uint32_t m = (a & 0x7fffffu) | 0x800000u; /* x = m * 2^(e - 150) */
        unsigned shift = 126u - (a >> 23);        /* q = m * 2^(e - 126) */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        q += rem > half || (rem == half && (q & 1u) != 0);
        return (uint16_t)(sign | q);
    }
    uint32_t h = (a >> 13) - ((127u - 15u) << 10);
    uint32_t rem = a & 0x1fffu;
    h += rem > 0x1000u || (rem == 0x1000u && (h & 1u) != 0); /* a carry moves up a binade */
    return (uint16_t)(sign | h);
}

float base_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu, a;
    float f;
    if (e == 0) {
        f = (float)m * 0x1p-24f; /* exact: m < 2^10 */
        memcpy(&a, &f, sizeof(a));
        a |= sign;
    } else if (e == 31) {
        a = sign | 0x7f800000u | (m << 13);
    } else {
        a = sign | ((e + 112u) << 23) | (m << 13);
    }
    memcpy(&f, &a, sizeof(f));
    return f;
}

int base_i8_exponent(const float *x, uint32_t n)
{
    float max = 0.0f;
    for (uint32_t j = 0; j < n; j++) {
        float v = fabsf(x[j]);
        max = v > max ? v : max;
    }
    if (max == 0.0f) {
        return 0;
    }
    int ex = 0;
    (void)frexpf(max, &ex); /* max in [2^(ex-1), 2^ex) */
    /* 127 * 2^(ex-8) < 2^(ex-1) <= max, so k is ex - 7 or ex - 6 (exact in double). */
    return (double)max <= ldexp(127.0, ex - 7) ? ex - 7 : ex - 6;
}

void base_i8_quantize(const float *x, uint32_t n, int k, int8_t *q)
{
    for (uint32_t j = 0; j < n; j++) {
        double v = rint(ldexp((double)x[j], -k)); /* exact scaling; rint: nearest, ties even */
        v = v > 127.0 ? 127.0 : (v < -127.0 ? -127.0 : v);
        q[j] = (int8_t)v;
    }
}

void base_i8_dequantize(const int8_t *q, uint32_t n, int k, float *x)
{
    for (uint32_t j = 0; j < n; j++) {
        x[j] = (float)ldexp((double)q[j], k);
    }
}

/* One value as its f16 form stores it. */
static float f16_value(float v)
{
    v = v > BASE_F16_MAX ? BASE_F16_MAX : (v < -BASE_F16_MAX ? -BASE_F16_MAX : v);
    return base_f16_to_f32(base_f32_to_f16(v));
}

void base_emb_round(base_emb_storage s, float *x, uint32_t n)
{
    if (s == BASE_EMB_F16) {
        for (uint32_t j = 0; j < n; j++) {
            x[j] = f16_value(x[j]);
        }
    } else if (s == BASE_EMB_I8) {
        int k = base_i8_exponent(x, n);
        for (uint32_t j = 0; j < n; j++) {
            int8_t q;
            base_i8_quantize(&x[j], 1, k, &q);
            base_i8_dequantize(&q, 1, k, &x[j]);
        }
    }
}

bool base_emb_is_rounded(base_emb_storage s, const float *x, uint32_t n)
{
    if (s == BASE_EMB_F32) {
        return true;
    }
    if (s == BASE_EMB_F16) {
        for (uint32_t j = 0; j < n; j++) {
            float v = f16_value(x[j]);
            if (memcmp(&v, &x[j], sizeof(v)) != 0) {
                return false;
            }
        }
        return true;
    }
    if (s != BASE_EMB_I8) {
        return false;
    }
    int k = base_i8_exponent(x, n);
    for (uint32_t j = 0; j < n; j++) {
        int8_t q;
        float v;
        base_i8_quantize(&x[j], 1, k, &q);
        base_i8_dequantize(&q, 1, k, &v);
        if (memcmp(&v, &x[j], sizeof(v)) != 0) {
            return false;
        }
    }
    return true;
}

static const char *const names[] = {"f32", "f16", "i8"};

const char *base_emb_storage_name(base_emb_storage s)
{
    return (unsigned)s < 3 ? names[s] : "f32";
}

bool base_emb_storage_from_name(const char *name, base_emb_storage *out)
{
    for (unsigned i = 0; i < 3; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (base_emb_storage)i;
            return true;
        }
    }
    return false;
}
