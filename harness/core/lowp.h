/*
 * lowp.h - low-precision storage types and conversions for the ampbench
 * CPU reference backend.
 *
 * Emulates the numerics GPU tensor cores and mixed-precision training use:
 * IEEE binary16 (FP16), bfloat16 (BF16) and TF32 input rounding.
 *
 * Semantics (identical for the scalar and the fast array paths, bit for bit):
 *   - FP32 -> FP16 / BF16 / TF32 rounds to nearest, ties to even;
 *   - subnormals are kept (FP16 down to 2^-24; |x| <= 2^-25 rounds to 0,
 *     |x| just above 2^-25 rounds to 2^-24); no flush-to-zero anywhere, and
 *     the results do not depend on the x86 MXCSR (FTZ, DAZ, rounding mode);
 *   - overflow goes to +-inf (FP16: |x| >= 65520 -> inf; BF16: |x| >=
 *     0x1.ffp127 -> inf; TF32: |x| >= 0x1.ffep127 -> inf);
 *   - NaN -> quiet NaN with the sign kept and the top payload bits kept
 *     (FP16: sign | 0x7E00 | top 10 mantissa bits; BF16: sign | 0x7FC0 |
 *     top 7 mantissa bits), which is exactly what x86 F16C/AVX-512
 *     VCVTPS2PH produces;
 *   - FP16 -> FP32 is exact; a NaN comes back quiet (quiet bit set, sign and
 *     payload kept), as F16C VCVTPH2PS does;
 *   - BF16 -> FP32 is exact and never changes bits (a shift by 16);
 *   - TF32 rounding leaves inf and NaN unchanged.
 *
 * The array functions are runtime-dispatched (AVX-512, F16C+AVX2, or
 * portable scalar code) and are not internally parallel: callers split work.
 */
#ifndef AMPBENCH_LOWP_H
#define AMPBENCH_LOWP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint16_t amp_f16;   /* IEEE binary16 bits */
typedef uint16_t amp_bf16;  /* bfloat16 bits */

/* Portable scalar conversions (the definition of correctness). */
amp_f16 f16_from_f32(float x);
float f16_to_f32(amp_f16 h);
amp_bf16 bf16_from_f32(float x);
float bf16_to_f32(amp_bf16 h);
/* TF32: FP32 with the mantissa rounded (nearest even) to 10 bits, as tensor
   cores read FP32 inputs in TF32 mode; inf/NaN unchanged; overflow on
   rounding goes to inf. */
float tf32_round(float x);

/* Counts of what a rounding did to a tensor (for numerics diagnostics). */
struct lowp_counts {
    uint64_t underflow;  /* elements non-zero before rounding and zero after */
    uint64_t overflow;   /* elements finite before rounding and inf after */
    uint64_t nonfinite;  /* elements inf or NaN after rounding (including ones that were already) */
};

/* Array conversions, fast path (F16C/AVX2/AVX-512 where available,
   runtime-dispatched) that agree bit for bit with the scalar ones.
   counts may be NULL (then no counting and no slowdown); when non-NULL the
   function ADDS to it. Source and destination must not overlap, except
   where noted (dst == src exactly). */
void f16_from_f32_array(amp_f16 *dst, const float *src, size_t n, struct lowp_counts *counts);
void f16_to_f32_array(float *dst, const amp_f16 *src, size_t n);
void bf16_from_f32_array(amp_bf16 *dst, const float *src, size_t n, struct lowp_counts *counts);
void bf16_to_f32_array(float *dst, const amp_bf16 *src, size_t n);
void tf32_round_array(float *dst, const float *src, size_t n);   /* dst may equal src */
/* Round FP32 values to the nearest FP16 (or BF16) value and keep them as
   FP32 (dst may equal src); counts as above. */
void f32_round_to_f16_array(float *dst, const float *src, size_t n, struct lowp_counts *counts);
void f32_round_to_bf16_array(float *dst, const float *src, size_t n, struct lowp_counts *counts);

/* Portable (scalar) versions of the array functions, always available, for tests: */
void f16_from_f32_array_portable(amp_f16 *dst, const float *src, size_t n, struct lowp_counts *counts);
void bf16_from_f32_array_portable(amp_bf16 *dst, const float *src, size_t n, struct lowp_counts *counts);
void f16_to_f32_array_portable(float *dst, const amp_f16 *src, size_t n);

/* Which fast path is in use: "avx512", "f16c+avx2" or "portable"
   (for `ampbench info`). */
const char *lowp_fast_path(void);

/* For tests and benchmarks: force the fast path by name ("avx512",
   "f16c+avx2", "portable"), or NULL / "auto" for the automatic choice.
   Returns 0 on success, -1 if that path is unknown or this CPU cannot run
   it (the selection is then unchanged). Do not call while other threads are
   converting. */
int lowp_set_fast_path(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* AMPBENCH_LOWP_H */
