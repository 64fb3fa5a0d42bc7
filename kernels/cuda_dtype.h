/* Device-side typed element access for the CUDA kernels, with the CPU reference's semantics
 * (reference/lowp.h): FP16/BF16 widen exactly; FP32 -> FP16/BF16 rounds to nearest even with
 * subnormals kept and overflow to inf (__float2half_rn is exactly that; BF16 is the reference's
 * own bit formula); NaN keeps its sign and top payload bits as the reference does; TF32 rounds
 * the mantissa to 10 bits, nearest even. Stores count underflow (non-zero before, zero after)
 * and overflow (finite before, inf after) per thread; flush_counts adds them per warp into the
 * backend's device counters. Included by the .cu files only. */
#ifndef AMPBENCH_CUDA_DTYPE_H
#define AMPBENCH_CUDA_DTYPE_H

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "backend.h"

#define DEV static __device__ __forceinline__

struct lp_count {
    unsigned int uf, of;
};

DEV bool dt_lowp(int dt)
{
    return dt == AMP_F16 || dt == AMP_BF16;
}

DEV uint16_t f16_bits_rn(float x)
{
    const uint32_t u = __float_as_uint(x);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) /* NaN: quiet, sign + top 10 payload bits */
        return (uint16_t)(((u >> 16) & 0x8000u) | 0x7E00u | ((u >> 13) & 0x03FFu));
    return __half_as_ushort(__float2half_rn(x));
}

DEV uint16_t bf16_bits_rn(float x)
{
    const uint32_t u = __float_as_uint(x);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) /* NaN: quiet, sign + top payload */
        return (uint16_t)((u >> 16) | 0x0040u);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

DEV float f16_bits_to_f32(uint16_t h)
{
    return __half2float(__ushort_as_half(h));
}

DEV float bf16_bits_to_f32(uint16_t h)
{
    return __uint_as_float((uint32_t)h << 16);
}

DEV float tf32_rn(float x)
{
    const uint32_t u = __float_as_uint(x);
    if ((u & 0x7FFFFFFFu) >= 0x7F800000u)
        return x;
    return __uint_as_float((u + 0x0FFFu + ((u >> 13) & 1u)) & 0xFFFFE000u);
}

/* ReLU on raw 16-bit patterns: a negative non-NaN value becomes +0; NaN and positives pass. */
DEV uint32_t relu16(uint32_t h, uint32_t inf_bits)
{
    return (h & 0x8000u) && (h & 0x7FFFu) <= inf_bits ? 0u : h;
}

DEV float relu32(float x)
{
    return x < 0.0f ? 0.0f : x;
}

/* p[i] = relu(p[i]) in dtype dt (FP32, FP16 or BF16): the relu op's bits, for the conv
 * epilogues that fuse the ReLU after their rounding. */
DEV void relu_at(void *p, size_t i, int dt)
{
    if (dt == AMP_F32)
        ((float *)p)[i] = relu32(((const float *)p)[i]);
    else
        ((uint16_t *)p)[i] = (uint16_t)relu16(((const uint16_t *)p)[i],
                                              dt == AMP_F16 ? 0x7C00u : 0x7F80u);
}

/* Element i of p (dtype dt) as FP32, exactly. */
DEV float ld(const void *p, size_t i, int dt)
{
    switch (dt) {
    case AMP_F16: return f16_bits_to_f32(((const uint16_t *)p)[i]);
    case AMP_BF16: return bf16_bits_to_f32(((const uint16_t *)p)[i]);
    case AMP_I32: return (float)((const int32_t *)p)[i];
    case AMP_U8: return (float)((const uint8_t *)p)[i];
    default: return ((const float *)p)[i];
    }
}

/* A conv/GEMM operand: FP32 rounded to TF32 when tf32 (set only for FP32 operands). */
DEV float ld_op(const void *p, size_t i, int dt, int tf32)
{
    const float v = ld(p, i, dt);
    return tf32 ? tf32_rn(v) : v;
}

/* Counts what rounding the FP32 bits u to the 16-bit result h (inf pattern inf_bits) did. */
DEV void count_round(lp_count &c, uint32_t u, uint16_t h, uint16_t inf_bits)
{
    const uint32_t a = u & 0x7FFFFFFFu;
    const uint16_t ha = h & 0x7FFFu;
    c.uf += (a != 0u) & (ha == 0u);
    c.of += (a < 0x7F800000u) & (ha == inf_bits);
}

/* v rounded to dtype dt, as FP32 (the value a store would keep), counted. */
DEV float round_to(int dt, float v, lp_count &c)
{
    if (dt == AMP_F16) {
        const uint16_t h = f16_bits_rn(v);
        count_round(c, __float_as_uint(v), h, 0x7C00u);
        return f16_bits_to_f32(h);
    }
    if (dt == AMP_BF16) {
        const uint16_t h = bf16_bits_rn(v);
        count_round(c, __float_as_uint(v), h, 0x7F80u);
        return bf16_bits_to_f32(h);
    }
    return v;
}

/* p[i] = v rounded to dt (counted); returns the stored value as FP32. */
DEV float st(void *p, size_t i, int dt, float v, lp_count &c)
{
    switch (dt) {
    case AMP_F16: {
        const uint16_t h = f16_bits_rn(v);
        count_round(c, __float_as_uint(v), h, 0x7C00u);
        ((uint16_t *)p)[i] = h;
        return f16_bits_to_f32(h);
    }
    case AMP_BF16: {
        const uint16_t h = bf16_bits_rn(v);
        count_round(c, __float_as_uint(v), h, 0x7F80u);
        ((uint16_t *)p)[i] = h;
        return bf16_bits_to_f32(h);
    }
    case AMP_I32:
        ((int32_t *)p)[i] = (int32_t)v;
        return (float)(int32_t)v;
    default:
        ((float *)p)[i] = v;
        return v;
    }
}

/* v rounded to FP16/BF16 bits (dt lowp), not counted. */
DEV uint16_t bits16_rn(int dt, float v)
{
    return dt == AMP_F16 ? f16_bits_rn(v) : bf16_bits_rn(v);
}

/* +-0 or +-inf as 16-bit patterns of dtype dt. */
DEV bool bits16_zero_or_inf(int dt, uint16_t h)
{
    const uint16_t ha = h & 0x7FFFu;
    return ha == 0u || ha == (dt == AMP_F16 ? 0x7C00u : 0x7F80u);
}

/* +-0, +-inf or +-the largest finite value: where rounding an already rounded sum again (plus
 * a bias) can hide an underflow or an overflow that the exact sum would show. */
DEV bool bits16_extreme(int dt, uint16_t h)
{
    const uint16_t ha = h & 0x7FFFu;
    return bits16_zero_or_inf(dt, h) || ha == (dt == AMP_F16 ? 0x7BFFu : 0x7F7Fu);
}

/* Whether the 16-bit element i of p (dtype dt) is +-0 or +-inf: the results a library rounded
 * whose underflow/overflow status needs the exact value. */
DEV bool lowp_zero_or_inf(const void *p, size_t i, int dt)
{
    const uint16_t ha = ((const uint16_t *)p)[i] & 0x7FFFu;
    return ha == 0u || ha == (dt == AMP_F16 ? 0x7C00u : 0x7F80u);
}

DEV unsigned int warp_sum_u(unsigned int v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
    return v;
}

DEV float warp_sum_f(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
    return v;
}

DEV unsigned long long *counter(uint64_t *p)
{
    return reinterpret_cast<unsigned long long *>(p);
}

/* Adds the per-thread counts of a warp to the counters of category cat. Every lane of the warp
 * must call it (kernels keep full warps: no divergent early returns before it). */
DEV void flush_counts(struct numerics_counts *g, int cat, lp_count c)
{
    const unsigned int uf = warp_sum_u(c.uf), of = warp_sum_u(c.of);
    if ((threadIdx.x & 31u) == 0u) {
        if (uf)
            atomicAdd(counter(&g->underflow[cat]), (unsigned long long)uf);
        if (of)
            atomicAdd(counter(&g->overflow[cat]), (unsigned long long)of);
    }
}

/* One thread adds the elements an op rounded into a low-precision tensor. */
DEV void add_rounded(struct numerics_counts *g, int cat, unsigned long long n)
{
    if (n)
        atomicAdd(counter(&g->rounded[cat]), n);
}

/* Fixed-order block reduction (deterministic for a given blockDim, a multiple of 32, <= 1024).
 * Every thread must call it; the result is valid in every thread. */
DEV float block_sum_f(float v, float *shared32)
{
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    const unsigned warps = blockDim.x >> 5;
    v = warp_sum_f(v);
    __syncthreads(); /* shared32 may still be read by a previous call */
    if (lane == 0)
        shared32[warp] = v;
    __syncthreads();
    float t = 0.0f;
    for (unsigned w = 0; w < warps; w++)
        t += shared32[w];
    return t;
}

#undef DEV

#endif
