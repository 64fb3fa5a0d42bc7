/* The element types of the library fakes (cuemu_cublas.cpp, cuemu_cudnn.cpp): FP32, FP16 and BF16
 * loaded exactly and stored rounded to nearest even, FP32 narrowed to TF32/FP16/BF16 precision.
 * The conversions are the CPU reference's (reference/lowp.h, tested bit for bit there): the
 * libraries round the same way, as IEEE and the bfloat16/TF32 formats define it. */
#ifndef AMPBENCH_CUEMU_LOWP_H
#define AMPBENCH_CUEMU_LOWP_H

#include <stddef.h>
#include <stdint.h>

#include "lowp.h"

enum class Elem { F32, F16, BF16 };

static inline size_t elem_size(Elem e)
{
    return e == Elem::F32 ? 4u : 2u;
}

/* Element i of p as FP32 (exact). */
static inline float load(const void *p, size_t i, Elem e)
{
    switch (e) {
    case Elem::F16: return f16_to_f32(static_cast<const amp_f16 *>(p)[i]);
    case Elem::BF16: return bf16_to_f32(static_cast<const amp_bf16 *>(p)[i]);
    default: return static_cast<const float *>(p)[i];
    }
}

/* p[i] = v rounded to e. */
static inline void store(void *p, size_t i, Elem e, float v)
{
    switch (e) {
    case Elem::F16: static_cast<amp_f16 *>(p)[i] = f16_from_f32(v); break;
    case Elem::BF16: static_cast<amp_bf16 *>(p)[i] = bf16_from_f32(v); break;
    default: static_cast<float *>(p)[i] = v; break;
    }
}

/* v as FP16 / BF16 would hold it. */
static inline float round_f16(float v)
{
    return f16_to_f32(f16_from_f32(v));
}

static inline float round_bf16(float v)
{
    return bf16_to_f32(bf16_from_f32(v));
}

#endif
