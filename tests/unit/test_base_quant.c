/*
 * base/quant.c: half precision both ways (every half value, and float32
 * rounding against the compiler's own _Float16 where it has one), the 8-bit
 * form's exponent and idempotence, and base_emb_round() for every storage.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/hash.h"
#include "base/quant.h"
#include "tap.h"

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static void every_half_round_trips(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = base_f16_to_f32((uint16_t)h);
        bool nan = ((h >> 10) & 0x1f) == 31 && (h & 0x3ff) != 0;
        if (nan) {
            bad += !isnan(f);
            continue;
        }
        bad += base_f32_to_f16(f) != h;
    }
    TST_EQ(bad, 0);
    TST_TRUE(base_f16_to_f32(0x3c00) == 1.0f);
    TST_TRUE(base_f16_to_f32(0x7bff) == 65504.0f);
    TST_TRUE(base_f16_to_f32(0x0001) == 0x1p-24f);
    TST_TRUE(base_f16_to_f32(0x8000) == 0.0f && signbit(base_f16_to_f32(0x8000)));
}

static void float_rounding_is_to_nearest_even(void)
{
    /* Ties: 1 + 2^-11 is halfway between 1 and 1 + 2^-10; even is 1. */
    TST_EQ(base_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);
    TST_EQ(base_f32_to_f16(1.0f + 0x1p-10f + 0x1p-11f), 0x3c02);
    TST_EQ(base_f32_to_f16(65504.0f), 0x7bff);
    TST_EQ(base_f32_to_f16(65519.0f), 0x7bff);
    TST_EQ(base_f32_to_f16(65520.0f), 0x7c00); /* rounds past the largest: inf */
    TST_EQ(base_f32_to_f16(0x1p-25f), 0x0000); /* halfway to the smallest subnormal: even */
    TST_EQ(base_f32_to_f16(0x1p-25f * 1.5f), 0x0001);
    TST_EQ(base_f32_to_f16(-0x1p-14f), 0x8400);
#ifdef __FLT16_MAX__
    /* Against the compiler's conversion, over random bit patterns of every magnitude. */
    uint64_t rng = 1;
    int bad = 0;
    for (int i = 0; i < 2000000; i++) {
        float f = from_bits((uint32_t)base_splitmix64(&rng));
        if (isnan(f)) {
            continue;
        }
        _Float16 g = (_Float16)f;
        uint16_t want;
        memcpy(&want, &g, sizeof(want));
        bad += base_f32_to_f16(f) != want;
    }
    TST_EQ(bad, 0);
#else
    printf("# no _Float16 in this compiler: the cross-check is skipped\n");
#endif
}

static void i8_form_is_minimal_and_idempotent(void)
{
    float x[5] = {0.0f, 1.0f, -3.0f, 0.5f, 127.0f};
    TST_EQ(base_i8_exponent(x, 5), 0); /* 127 * 2^0 >= 127 */
    x[4] = 127.5f;
    TST_EQ(base_i8_exponent(x, 5), 1);
    float zero[3] = {0};
    TST_EQ(base_i8_exponent(zero, 3), 0);
    uint64_t rng = 7;
    int bad = 0;
    for (int t = 0; t < 2000; t++) {
        float v[64], r[64];
        double scale = ldexp(1.0, (int)(base_splitmix64(&rng) % 60) - 30);
        for (int j = 0; j < 64; j++) {
            v[j] = (float)((base_u64_to_unit(base_splitmix64(&rng)) - 0.5) * scale);
        }
        int k = base_i8_exponent(v, 64);
        float max = 0.0f;
        for (int j = 0; j < 64; j++) {
            max = fmaxf(max, fabsf(v[j]));
        }
        bad += !((double)max <= ldexp(127.0, k) && (double)max > ldexp(127.0, k - 1));
        memcpy(r, v, sizeof(v));
        base_emb_round(BASE_EMB_I8, r, 64);
        bad += !base_emb_is_rounded(BASE_EMB_I8, r, 64);
        bad += base_i8_exponent(r, 64) != k;
        for (int j = 0; j < 64; j++) {
            bad += fabsf(r[j] - v[j]) > (float)ldexp(0.5, k); /* within half a step */
        }
    }
    TST_EQ(bad, 0);
}

static void rounding_is_idempotent_for_every_storage(void)
{
    float v[6] = {0.1f, -2.5e-9f, 1e6f, -70000.0f, 3.14159f, 0.0f};
    float r[6];
    memcpy(r, v, sizeof(v));
    base_emb_round(BASE_EMB_F32, r, 6);
    TST_TRUE(memcmp(r, v, sizeof(v)) == 0);
    TST_TRUE(base_emb_is_rounded(BASE_EMB_F32, v, 6));
    TST_TRUE(!base_emb_is_rounded(BASE_EMB_F16, v, 6));
    base_emb_round(BASE_EMB_F16, r, 6);
    TST_TRUE(r[2] == BASE_F16_MAX && r[3] == -BASE_F16_MAX); /* clamped, not inf */
    TST_TRUE(fabsf(r[4] - 3.14159f) < 2e-3f);
    TST_TRUE(base_emb_is_rounded(BASE_EMB_F16, r, 6));
    float again[6];
    memcpy(again, r, sizeof(r));
    base_emb_round(BASE_EMB_F16, again, 6);
    TST_TRUE(memcmp(again, r, sizeof(r)) == 0);
    base_emb_storage s;
    TST_TRUE(base_emb_storage_from_name("i8", &s) && s == BASE_EMB_I8);
    TST_TRUE(!base_emb_storage_from_name("f64", &s));
    TST_STREQ(base_emb_storage_name(BASE_EMB_F16), "f16");
}

int main(void)
{
    every_half_round_trips();
    float_rounding_is_to_nearest_even();
    i8_form_is_minimal_and_idempotent();
    rounding_is_idempotent_for_every_storage();
    return tst_done();
}
