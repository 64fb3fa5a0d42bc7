/*
 * fp8.h - FP8 storage types, per-tensor scaling and MX block quantization
 * for the ampbench CPU reference backend.
 *
 * Formats (both have 1 sign bit):
 *   FP8_E4M3  the OCP "fn" form (ml_dtypes float8_e4m3fn, CUDA __nv_fp8_e4m3):
 *             4 exponent bits (bias 7), 3 mantissa bits, no inf, NaN only at
 *             S.1111.111 (0x7F, 0xFF); max 448, smallest normal 2^-6,
 *             smallest subnormal 2^-9;
 *   FP8_E5M2  IEEE-like (float8_e5m2, __nv_fp8_e5m2): 5 exponent bits (bias
 *             15), 2 mantissa bits, inf at S.11111.00, NaN at S.11111.{01,10,11};
 *             max 57344, smallest normal 2^-14, smallest subnormal 2^-16.
 *
 * Conversion from FP32 rounds to nearest, ties to even, keeps subnormals,
 * uses integer arithmetic only (no dependence on MXCSR FTZ/DAZ/rounding) and
 * is bit-identical to CUDA's host __nv_cvt_float_to_fp8 for both saturation
 * modes, including the NaN patterns (docs/NUMERICS.md, "FP8"):
 *   FP8_SATFINITE  as __NV_SATFINITE / PTX cvt.rn.satfinite: a finite value
 *                  that rounds above max, and +-inf, give +-max (sign kept);
 *   FP8_NOSAT      as __NV_NOSAT and ml_dtypes' astype: E5M2 overflows to
 *                  +-inf (0x7C / 0xFC), E4M3 (no inf) to NaN with the sign
 *                  kept (0x7F / 0xFF);
 *   NaN input      under both: the canonical NaN 0x7F whatever the input's
 *                  sign and payload (CUDA canonicalizes the FP32 NaN to
 *                  0x7FFFFFFF first).
 *
 * The array functions are runtime-dispatched (AVX2 or portable scalar code),
 * bit-identical to the scalar definition, and not internally parallel:
 * callers split work.
 */
#ifndef AMPBENCH_FP8_H
#define AMPBENCH_FP8_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint8_t amp_fp8;    /* FP8 bits, E4M3 or E5M2 as the caller says */

enum fp8_format { FP8_E4M3, FP8_E5M2 };        /* E4M3 is the "fn" form: no inf, NaN = S.1111.111 */
enum fp8_saturation { FP8_SATFINITE, FP8_NOSAT };

float fp8_max(enum fp8_format f);               /* 448, 57344 */
const char *fp8_format_name(enum fp8_format f); /* "e4m3", "e5m2" */

/* Portable scalar conversions (the definition of correctness). */
amp_fp8 fp8_from_f32(float x, enum fp8_format f, enum fp8_saturation sat);
float fp8_to_f32(amp_fp8 v, enum fp8_format f); /* exact; NaN -> quiet NaN, sign kept */

/* What a quantization did; the functions ADD to it (zero it first). */
struct fp8_stats {
    uint64_t n;               /* elements quantized */
    uint64_t saturated;       /* |x * scale| rounds above the format's max, so the clip to max
                               * changed it (E4M3: > 464, E5M2: >= 61440), or +-inf input */
    uint64_t underflow;       /* x != 0 but quantized to 0 */
    uint64_t nonfinite;       /* NaN inputs (and inf where not saturated) */
    float amax;               /* max |x| over the finite inputs (max with what is there) */
    double signal, noise;     /* sum x^2 and sum (x - dequantized)^2 over the finite inputs */
};

/* 10 log10(signal / noise); +inf when noise == 0. */
double fp8_sqnr_db(const struct fp8_stats *s);
/* max |x| over the finite elements (0 when there are none). */
float fp8_amax(const float *src, size_t n);
/* fp8_amax of n BF16 values (bits in src) as they widen to FP32, without widening them. */
float fp8_amax_bf16(const uint16_t *src, size_t n);

/* Per-tensor scaling: dst[i] = fp8(src[i] * scale) (the product in FP32,
   then one rounding), saturating (FP8_SATFINITE); stats may be NULL (then no
   counting and no slowdown); its noise is measured against q * (1 / scale),
   Transformer Engine's scale_inv. Dequantize: q * scale_inv (one FP32
   product). */
void fp8_quantize_array(amp_fp8 *dst, const float *src, size_t n, float scale,
                        enum fp8_format f, struct fp8_stats *stats);
void fp8_dequantize_array(float *dst, const amp_fp8 *src, size_t n, float scale_inv,
                          enum fp8_format f);
/* Quantize-dequantize in one pass (dst may equal src): dst = fp8(src*scale) *
   scale_inv, for the CPU reference's emulation of FP8 GEMM inputs; same
   stats. */
void fp8_fake_quantize_array(float *dst, const float *src, size_t n, float scale,
                             float scale_inv, enum fp8_format f, struct fp8_stats *stats);

/* fp8_fake_quantize_array of n BF16 values (bits in src, widened exactly to FP32) into dst
   (not overlapping src): the same dst and stats as widening src into dst and fake quantizing
   dst in place, without the pass over memory on the AVX-512 path (tests/test_fp8.c). */
void fp8_fake_quantize_bf16_array(float *dst, const uint16_t *src, size_t n, float scale,
                                  float scale_inv, enum fp8_format f, struct fp8_stats *stats);

/* Portable (scalar) versions of the array functions, always available, for
   tests. */
void fp8_quantize_array_portable(amp_fp8 *dst, const float *src, size_t n, float scale,
                                 enum fp8_format f, struct fp8_stats *stats);
void fp8_fake_quantize_array_portable(float *dst, const float *src, size_t n, float scale,
                                      float scale_inv, enum fp8_format f,
                                      struct fp8_stats *stats);

/* Which fast path the FP8 array functions use: "avx2" or "portable". */
const char *fp8_fast_path(void);
/* For tests: force the path by name ("avx2", "portable"), or NULL / "auto".
   Returns 0, or -1 if unknown or this CPU cannot run it (then unchanged).
   Do not call while other threads are converting. */
int fp8_set_fast_path(const char *name);

/* E8M0 block scales: 2^(e - 127), e = 0..254; 0xFF is NaN. */
float e8m0_to_f32(uint8_t e);

/* MX block quantization (OCP MX v1.0): src [rows, k] row-major, blocks of
   MX_BLOCK = 32 consecutive elements along k (a last partial block when
   k % 32 != 0); scales[rows * ceil(k/32)] (E8M0). Shared scale
   X = 2^(floor(log2 amax) - emax_elem) (emax_elem 8 for E4M3, 15 for E5M2)
   under MX_SCALE_FLOOR (the spec), or the smallest power of two with
   amax / X <= max under MX_SCALE_RCEIL (cuBLAS / Transformer Engine);
   elements fp8(x / X), saturated, RNE. Zero-block and NaN handling: see
   docs/NUMERICS.md. */
#define MX_BLOCK 32
enum mx_scale_rounding { MX_SCALE_FLOOR, MX_SCALE_RCEIL };
void mx_quantize(amp_fp8 *dst, uint8_t *scales, const float *src, size_t rows, size_t k,
                 enum fp8_format f, enum mx_scale_rounding r, struct fp8_stats *stats);
void mx_dequantize(float *dst, const amp_fp8 *src, const uint8_t *scales, size_t rows,
                   size_t k, enum fp8_format f);
void mx_fake_quantize(float *dst, const float *src, size_t rows, size_t k, enum fp8_format f,
                      enum mx_scale_rounding r, struct fp8_stats *stats); /* dst may equal src */

/* MX blocks along any dimension of a tensor viewed as [outer, len, inner] (row-major): blocks of
   MX_BLOCK along len at stride inner (the last one partial when len % 32 != 0), never crossing
   an outer slice. inner = 1 are rows of len (mx_quantize's [rows, k] is { rows, k, 1 }); the
   columns of a [r, c] matrix are { 1, r, c }; NCHW channel blocks are { n, c, h * w }. Block
   (o, b, i), o < outer, b < ceil(len / 32), i < inner, holds the elements
   (o * len + b * 32 + j) * inner + i, j < its length; the blocks go in that order (i fastest),
   block (o, b, i)'s scale at scales[(o * nb + b) * inner + i], and the stats add each block's
   in turn, so the result equals the blocks gathered one by one, each quantized as a row
   (tests/test_fp8.c). The same rules as mx_quantize otherwise. */
struct mx_layout {
    size_t outer, len, inner;
};
void mx_quantize_layout(amp_fp8 *dst, uint8_t *scales, const float *src, struct mx_layout L,
                        enum fp8_format f, enum mx_scale_rounding r, struct fp8_stats *stats);
void mx_dequantize_layout(float *dst, const amp_fp8 *src, const uint8_t *scales,
                          struct mx_layout L, enum fp8_format f);
void mx_fake_quantize_layout(float *dst, const float *src, struct mx_layout L, enum fp8_format f,
                             enum mx_scale_rounding r, struct fp8_stats *stats); /* dst may = src */
/* The same from BF16 values (widened exactly as they are read: the bits of widening first). */
void mx_fake_quantize_layout_bf16(float *dst, const uint16_t *src, struct mx_layout L,
                                  enum fp8_format f, enum mx_scale_rounding r,
                                  struct fp8_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* AMPBENCH_FP8_H */
