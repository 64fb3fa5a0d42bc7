/* Portable SIMD for the CPU reference: GCC/Clang vector extensions (16 floats), compiled to
 * AVX-512, AVX2 or SSE by the target flags. Loads and stores need only element alignment.
 * Typed loads widen FP16/BF16 exactly and round FP32 to TF32 exactly as lowp.c defines. */
#ifndef AMPBENCH_SIMD_H
#define AMPBENCH_SIMD_H

#include <stdint.h>

#if defined(__AVX512F__) || defined(__F16C__)
#include <immintrin.h>
#endif

#include "lowp.h"

#define VF_LANES 16

typedef float vf __attribute__((vector_size(VF_LANES * sizeof(float)), aligned(4)));
typedef uint32_t vu32 __attribute__((vector_size(VF_LANES * sizeof(uint32_t)), aligned(4)));
typedef uint16_t vu16 __attribute__((vector_size(VF_LANES * sizeof(uint16_t)), aligned(2)));

/* Vectors of the machine's width, VN floats, for loops that keep their vectors in registers (GCC
 * keeps the 16-float vf in memory where the registers are 8 floats wide). */
#if defined(__AVX512F__)
#define VN 16
#else
#define VN 8
#endif
typedef float vn __attribute__((vector_size(VN * sizeof(float)), aligned(4)));
/* Its lanes as int32 (a comparison's mask: -1 or 0 per lane). */
typedef int32_t vni __attribute__((vector_size(VN * sizeof(int32_t)), aligned(4)));

/* Keeps a loaded vector v in a register: an empty asm that GCC must assume changes it, so that
 * it cannot fold the load into each arithmetic use as a memory operand (which it does where a
 * value feeds several FMAs: the loads then bind, not the FMAs). No instruction, no change of
 * any value. */
#if defined(__AVX__) /* (a vn fits one ymm or zmm register) */
#define IN_REGISTER(v) __asm__("" : "+v"(v))
#else
#define IN_REGISTER(v) ((void)0)
#endif

static inline vf vf_load(const float *p)
{
    return *(const vf *)p;
}

static inline void vf_store(float *p, vf v)
{
    *(vf *)p = v;
}

/* 16 FP16 values widened to FP32 (exact). */
static inline vf vf_load_f16(const uint16_t *p)
{
#if defined(__AVX512F__)
    return (vf)_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
#elif defined(__F16C__) && defined(__AVX__)
    union {
        __m256 half[2];
        vf v;
    } u = { .half = { _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)),
                      _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 8))) } };
    return u.v;
#else
    vf v;
    for (int i = 0; i < VF_LANES; i++)
        v[i] = f16_to_f32(p[i]);
    return v;
#endif
}

/* 16 BF16 values widened to FP32 (exact: the bits move up by 16). */
static inline vf vf_load_bf16(const uint16_t *p)
{
    const vu32 wide = __builtin_convertvector(*(const vu16 *)p, vu32) << 16;
    return (vf)wide;
}

/* VN BF16 or FP16 values widened to FP32 (exact), in a vector of the machine's width. */
typedef uint16_t vnu16 __attribute__((vector_size(VN * sizeof(uint16_t)), aligned(2)));
typedef uint32_t vnu32 __attribute__((vector_size(VN * sizeof(uint32_t)), aligned(4)));

static inline vn vn_load_bf16(const uint16_t *p)
{
#if VN == 16 /* (GCC's own conversion of vnu16 goes a ymm half at a time) */
    return (vn)_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16);
#else
    return (vn)(__builtin_convertvector(*(const vnu16 *)p, vnu32) << 16);
#endif
}

static inline vn vn_load_f16(const uint16_t *p)
{
#if VN == VF_LANES
    return (vn)vf_load_f16(p);
#elif defined(__F16C__)
    return (vn)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
#else
    vn v;
    for (int i = 0; i < VN; i++)
        v[i] = f16_to_f32(p[i]);
    return v;
#endif
}

/* FP32 rounded to TF32 (10-bit mantissa, nearest even; inf/NaN unchanged), as tf32_round. */
static inline vf vf_round_tf32(vf x)
{
    const vu32 u = (vu32)x;
    const vu32 rounded = (u + 0x0FFFu + ((u >> 13) & 1u)) & 0xFFFFE000u;
    const vu32 special = (vu32)((u & 0x7FFFFFFFu) >= 0x7F800000u);
    return (vf)((rounded & ~special) | (u & special));
}

/* Sum of the lanes, in a fixed order (pairwise halving): lane i += lane i + 8 (i < 8), then
 * i += i + 4 (i < 4), i += i + 2 (i < 2), 0 += 1; in registers, as halves of the vector. */
static inline float vf_sum(vf v)
{
    typedef float v8 __attribute__((vector_size(8 * sizeof(float))));
    typedef float v4 __attribute__((vector_size(4 * sizeof(float))));
    const v8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
                 __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    const v4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
    const float c0 = b[0] + b[2], c1 = b[1] + b[3];
    return c0 + c1;
}

/* r[0..VN) transposed in place: r[i][k] becomes r[k][i] (a VN x VN block of floats, moved, no
 * arithmetic). log2(VN) butterfly stages: at block size b, rows i and i + b (i & b == 0) trade
 * their off-diagonal b-wide blocks, as one two-source shuffle per row. */
#define VT_A(b, k) ((k) % (2 * (b)) < (b) ? (k) : VN + (k) - (b))
#define VT_C(b, k) ((k) % (2 * (b)) < (b) ? (k) + (b) : VN + (k))
#if VN == 16
#define VT_IDX(F, b) F(b, 0), F(b, 1), F(b, 2), F(b, 3), F(b, 4), F(b, 5), F(b, 6), F(b, 7), \
                     F(b, 8), F(b, 9), F(b, 10), F(b, 11), F(b, 12), F(b, 13), F(b, 14), F(b, 15)
#else
#define VT_IDX(F, b) F(b, 0), F(b, 1), F(b, 2), F(b, 3), F(b, 4), F(b, 5), F(b, 6), F(b, 7)
#endif
#define VT_STAGE(b)                                                                        \
    for (int i = 0; i < VN; i++)                                                           \
        if (!(i & (b))) {                                                                  \
            const vn a = r[i], c = r[i + (b)];                                             \
            r[i] = __builtin_shufflevector(a, c, VT_IDX(VT_A, b));                         \
            r[i + (b)] = __builtin_shufflevector(a, c, VT_IDX(VT_C, b));                   \
        }
static inline __attribute__((always_inline)) void vn_transpose(vn r[VN])
{
#if VN == 16
    VT_STAGE(8)
#endif
    VT_STAGE(4)
    VT_STAGE(2)
    VT_STAGE(1)
}
#undef VT_STAGE
#undef VT_IDX
#undef VT_C
#undef VT_A

#endif
