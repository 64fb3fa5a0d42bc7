/* The element types of the library fakes (cuemu_cublas.cpp, cuemu_cudnn.cpp): FP32, FP16 and BF16
 * loaded exactly and stored rounded to nearest even, FP32 narrowed to TF32/FP16/BF16 precision.
 * The conversions are the CPU reference's (reference/lowp.h, tested bit for bit there): the
 * libraries round the same way, as IEEE and the bfloat16/TF32 formats define it. */
#ifndef AMPBENCH_CUEMU_LOWP_H
#define AMPBENCH_CUEMU_LOWP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* How the fakes narrow FP32 operands to TF32 where the math allows it. Which conversion cuBLAS
 * and cuDNN use is not documented: the PTX ISA has cvt.rna.tf32.f32 (nearest, ties away from
 * zero, sm_80) and cvt.rn.tf32.f32 (nearest even, sm_90), and a tensor core fed raw FP32 bits
 * ignores the 13 low mantissa bits (toward zero). CUEMU_TF32_ROUNDING=rn (the default: the
 * reference's tf32_round), rna or rz picks one; CUEMU_PROFILE=h200 defaults to rna, so that the
 * H200 run of the parity suite checks the TF32 limits against another rounding than the
 * reference's. Anything else stops with a message. */
enum class Tf32Rounding { RN, RNA, RZ };

static inline Tf32Rounding tf32_rounding()
{
    static const Tf32Rounding mode = [] {
        const char *m = getenv("CUEMU_TF32_ROUNDING");
        const char *profile = getenv("CUEMU_PROFILE");
        if (!m || !*m)
            return profile && strcmp(profile, "h200") == 0 ? Tf32Rounding::RNA : Tf32Rounding::RN;
        if (strcmp(m, "rn") == 0)
            return Tf32Rounding::RN;
        if (strcmp(m, "rna") == 0)
            return Tf32Rounding::RNA;
        if (strcmp(m, "rz") == 0)
            return Tf32Rounding::RZ;
        fprintf(stderr, "cuemu: CUEMU_TF32_ROUNDING=%s: want rn, rna or rz\n", m);
        exit(2);
    }();
    return mode;
}

/* v narrowed to TF32 the way the emulated libraries do (NaN and inf unchanged). */
static inline float lib_tf32(float v)
{
    const Tf32Rounding mode = tf32_rounding();
    if (mode == Tf32Rounding::RN)
        return tf32_round(v);
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    if ((u & 0x7FFFFFFFu) >= 0x7F800000u)
        return v;
    if (mode == Tf32Rounding::RNA)
        u += 0x1000u; /* half of the dropped 13 bits: ties away from zero */
    u &= 0xFFFFE000u;
    float r;
    memcpy(&r, &u, sizeof r);
    return r;
}

#endif
