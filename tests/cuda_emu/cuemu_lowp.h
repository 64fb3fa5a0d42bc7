/* Bit-exact scalar conversions for the library fakes of the CPU emulation (cuemu_cublas.cpp,
 * cuemu_cudnn.cpp): FP16 and BF16 widen exactly to FP32; FP32 narrows to FP16 / BF16 / TF32
 * with round-to-nearest-even (FP16 keeps subnormals and overflows to inf; NaN stays a quiet NaN
 * with its sign and top payload bits, as the backend's cuda_dtype.h does). Host code only, no
 * dependence on the CUDA headers' host paths, so the test can check these against them. */
#ifndef AMPBENCH_CUEMU_LOWP_H
#define AMPBENCH_CUEMU_LOWP_H

#include <stdint.h>
#include <string.h>

static inline uint32_t cuemu_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float cuemu_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* FP16 bits -> FP32 (exact). */
static inline float cuemu_f16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
    if (exp == 0x1Fu) /* inf / NaN */
        return cuemu_bits_f32(sign | 0x7F800000u | (man << 13));
    if (exp != 0)
        return cuemu_bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
    /* zero or subnormal: man * 2^-24, exact in FP32 */
    const float v = (float)man * (1.0f / 16777216.0f);
    return sign ? -v : v;
}

/* FP32 -> FP16 bits, round to nearest even, subnormals kept, overflow to inf. */
static inline uint16_t cuemu_f32_to_f16(float f)
{
    const uint32_t u = cuemu_f32_bits(f);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) /* NaN: quiet, top 10 payload bits */
        return (uint16_t)(sign | 0x7E00u | ((a >> 13) & 0x3FFu));
    if (a >= 0x477FF000u) /* >= 65520 (halfway to 2^16; 65504 is odd): inf; also inf itself */
        return (uint16_t)(sign | 0x7C00u);
    if (a >= 0x38800000u) { /* normal in FP16: rebias the exponent (127 -> 15), round 13 bits */
        const uint32_t r = a - 0x38000000u;
        return (uint16_t)(sign | ((r + 0x0FFFu + ((r >> 13) & 1u)) >> 13));
    }
    const uint32_t e = a >> 23; /* FP16 subnormal or zero: units of 2^-24 */
    if (e < 102u)               /* below 2^-25 (half the smallest subnormal): zero */
        return sign;
    const uint32_t m = (a & 0x7FFFFFu) | 0x800000u; /* value = m * 2^(e - 150) */
    const uint32_t shift = 126u - e;                /* 14 .. 24 */
    uint32_t h = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u), halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (h & 1u)))
        h++; /* may carry into the smallest normal, which is the right answer */
    return (uint16_t)(sign | h);
}

/* BF16 bits -> FP32 (exact). */
static inline float cuemu_bf16_to_f32(uint16_t h)
{
    return cuemu_bits_f32((uint32_t)h << 16);
}

/* FP32 -> BF16 bits, round to nearest even (overflow to inf falls out of the carry). */
static inline uint16_t cuemu_f32_to_bf16(float f)
{
    const uint32_t u = cuemu_f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) /* NaN: quiet, sign + top payload */
        return (uint16_t)((u >> 16) | 0x0040u);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

/* FP32 rounded to TF32 (10 explicit mantissa bits), nearest even; inf/NaN unchanged. */
static inline float cuemu_tf32_rn(float f)
{
    const uint32_t u = cuemu_f32_bits(f);
    if ((u & 0x7FFFFFFFu) >= 0x7F800000u)
        return f;
    return cuemu_bits_f32((u + 0x0FFFu + ((u >> 13) & 1u)) & 0xFFFFE000u);
}

/* FP32 rounded to FP16 / BF16 and widened back (a value as the narrow type would hold it). */
static inline float cuemu_round_f16(float f)
{
    return cuemu_f16_to_f32(cuemu_f32_to_f16(f));
}

static inline float cuemu_round_bf16(float f)
{
    return cuemu_bf16_to_f32(cuemu_f32_to_bf16(f));
}

#endif
