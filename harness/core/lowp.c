/*
 * lowp.c - low-precision storage types and conversions (FP16, BF16, TF32)
 * for the ampbench CPU reference backend.
 *
 * The scalar functions below are the definition of correctness; they use
 * integer arithmetic only, so they do not depend on the floating-point
 * environment (rounding mode, x86 MXCSR FTZ/DAZ, -ffast-math).
 *
 * The array functions dispatch at run time to one of:
 *   "avx512"    AVX-512F/BW/VL: VCVTPS2PH/VCVTPH2PS on zmm, integer BF16/TF32
 *               rounding, masked tails, counts accumulated from compare masks;
 *   "f16c+avx2" F16C VCVTPS2PH/VCVTPH2PS on ymm, AVX2 integer BF16/TF32
 *               rounding, vector compare-mask counting, scalar tails;
 *   "portable"  the scalar definitions in a loop (any CPU).
 * Each is bit-identical to the scalar definition (tests/test_lowp.c checks).
 *
 * Notes on the x86 conversion instructions (F16C / AVX-512F VCVTPS2PH and
 * VCVTPH2PS). FTZ/DAZ are not assumed off; tests/test_lowp.c repeats every
 * fast-path comparison with MXCSR.FTZ=DAZ=1 and MXCSR.RC = round-up:
 *   - the rounding is taken from imm8 (0 = round to nearest even), never
 *     from MXCSR.RC;
 *   - VCVTPS2PH does not flush its FP16 subnormal results under FTZ
 *     (checked by the test: all FP16 subnormals and midpoints). DAZ, if honoured
 *     on its FP32 input, can only turn an FP32 subnormal into +-0 before the
 *     conversion, and every FP32 subnormal already rounds to +-0 (sign kept)
 *     in FP16, so the result cannot change. The counts are computed from
 *     the input bits, not from hardware flags, so DAZ cannot affect them;
 *   - VCVTPH2PS converts FP16 subnormal inputs exactly with DAZ=1 (FP16
 *     subnormals are FP32 normals; confirmed by the test over all 65,536
 *     patterns), so the widening paths are DAZ-independent too;
 *   - NaN: VCVTPS2PH gives sign | 0x7E00 | top 10 payload bits, VCVTPH2PS
 *     sets the quiet bit and keeps sign and payload; the scalar definitions
 *     here are written to match.
 * BF16 and TF32 are rounded with integer instructions (no MXCSR use at all;
 * AVX512_BF16's VCVTNEPS2BF16 is not used because it flushes subnormals).
 *
 * No OpenMP and no threads here: callers parallelize over tensors/chunks.
 */
#include "lowp.h"

#include "f32bits.h"

#include <stdatomic.h>
#include <string.h>

/* Define LOWP_NO_SIMD to build the portable code only (e.g. to test it). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(LOWP_NO_SIMD)
#define LOWP_X86 1
#include <immintrin.h>
#if defined(__clang__)
#include <cpuid.h>
#endif
#else
#define LOWP_X86 0
#endif

/* ------------------------------------------------------------------------ */
/* Bit helpers and constants                                                */
/* ------------------------------------------------------------------------ */


/* FP16 thresholds on |x| bits (FP32). */
#define F16_UF_MAX    0x33000000u   /* 2^-25: |x| in (0, 2^-25] rounds to 0 */
#define F16_NORM_MIN  0x38800000u   /* 2^-14: smallest normal FP16 */
#define F16_INF_MIN   0x477FF000u   /* 65520: |x| >= this rounds to inf */

/* BF16 thresholds on |x| bits (FP32). */
#define BF16_UF_MAX   0x00008000u   /* 2^-134: |x| in (0, 2^-134] rounds to 0 */
#define BF16_INF_MIN  0x7F7F8000u   /* 0x1.ffp127: |x| >= this rounds to inf */

/* ------------------------------------------------------------------------ */
/* Scalar definitions                                                       */
/* ------------------------------------------------------------------------ */

static inline uint16_t f16_from_bits(uint32_t u)
{
    const uint32_t a = u & F32_ABS_MASK;
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);

    if (a > F32_INF_BITS)                 /* NaN: quiet, sign + top payload */
        return (uint16_t)(sign | 0x7E00u | ((a >> 13) & 0x03FFu));
    if (a >= F16_INF_MIN)                 /* inf, or overflow to inf */
        return (uint16_t)(sign | 0x7C00u);
    if (a >= F16_NORM_MIN) {              /* normal: RNE on bit 13, rebias */
        const uint32_t r = a + 0x0FFFu + ((a >> 13) & 1u);
        return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
    }
    /* Subnormal FP16 result (or zero): value = m * 2^(e - 150), result unit
       2^-24, so the result is m >> (126 - e) rounded to nearest even. A shift
       of 25 or more always gives 0 (m < 2^24), so clamp it to 25. A carry
       into 0x400 correctly yields the smallest normal. */
    {
        const uint32_t e = a >> 23;
        const uint32_t m = (a & 0x007FFFFFu) | 0x00800000u;
        const uint32_t s = (e >= 101u) ? 126u - e : 25u;   /* 14..25 */
        const uint32_t q = (m + ((1u << (s - 1)) - 1u) + ((m >> s) & 1u)) >> s;
        return (uint16_t)(sign | q);
    }
}

amp_f16 f16_from_f32(float x)
{
    return f16_from_bits(f32_bits(x));
}

static inline uint32_t f16_to_bits(uint16_t h)
{
    const uint32_t sign = ((uint32_t)h & 0x8000u) << 16;
    const uint32_t e = ((uint32_t)h >> 10) & 0x1Fu;
    const uint32_t m = (uint32_t)h & 0x03FFu;

    if (e == 0x1Fu)                       /* inf, or NaN made quiet */
        return sign | F32_INF_BITS | (m << 13) | (m ? 0x00400000u : 0u);
    if (e != 0u)                          /* normal */
        return sign | ((e + 112u) << 23) | (m << 13);
    /* zero or subnormal: m * 2^-24 is exact in FP32 and a normal (or zero)
       FP32 number, so this product is exact whatever the rounding mode and
       unaffected by FTZ/DAZ. */
    return sign | f32_bits((float)m * 0x1p-24f);
}

float f16_to_f32(amp_f16 h)
{
    return f32_from_bits(f16_to_bits(h));
}

static inline uint16_t bf16_from_bits(uint32_t u)
{
    if ((u & F32_ABS_MASK) > F32_INF_BITS)    /* NaN: quiet, sign + top payload */
        return (uint16_t)((u >> 16) | 0x0040u);
    /* RNE on bit 16; carries into the exponent give the next binade or inf.
       No 32-bit wraparound: the largest sum is 0xFF7FFFFF + 0x8000. */
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

amp_bf16 bf16_from_f32(float x)
{
    return bf16_from_bits(f32_bits(x));
}

float bf16_to_f32(amp_bf16 h)
{
    return f32_from_bits((uint32_t)h << 16);
}

static inline uint32_t tf32_bits(uint32_t u)
{
    if ((u & F32_ABS_MASK) >= F32_INF_BITS)   /* inf/NaN unchanged */
        return u;
    return (u + 0x0FFFu + ((u >> 13) & 1u)) & 0xFFFFE000u;
}

float tf32_round(float x)
{
    return f32_from_bits(tf32_bits(f32_bits(x)));
}

/* ------------------------------------------------------------------------ */
/* Portable array versions. Counts follow the literal definition (compare   */
/* input and output); the vector paths use equivalent input thresholds.     */
/* ------------------------------------------------------------------------ */

void f16_from_f32_array_portable(amp_f16 *dst, const float *src, size_t n, struct lowp_counts *counts)
{
    if (!counts) {
        for (size_t i = 0; i < n; i++)
            dst[i] = f16_from_bits(f32_bits(src[i]));
        return;
    }
    uint64_t uf = 0, ovf = 0, nf = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t u = f32_bits(src[i]);
        const uint16_t h = f16_from_bits(u);
        const uint32_t a = u & F32_ABS_MASK, ha = h & 0x7FFFu;
        dst[i] = h;
        uf += (a != 0u) & (ha == 0u);
        ovf += (a < F32_INF_BITS) & (ha == 0x7C00u);
        nf += (ha >= 0x7C00u);
    }
    counts->underflow += uf;
    counts->overflow += ovf;
    counts->nonfinite += nf;
}

void bf16_from_f32_array_portable(amp_bf16 *dst, const float *src, size_t n, struct lowp_counts *counts)
{
    if (!counts) {
        for (size_t i = 0; i < n; i++)
            dst[i] = bf16_from_bits(f32_bits(src[i]));
        return;
    }
    uint64_t uf = 0, ovf = 0, nf = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t u = f32_bits(src[i]);
        const uint16_t h = bf16_from_bits(u);
        const uint32_t a = u & F32_ABS_MASK, ha = h & 0x7FFFu;
        dst[i] = h;
        uf += (a != 0u) & (ha == 0u);
        ovf += (a < F32_INF_BITS) & (ha == 0x7F80u);
        nf += (ha >= 0x7F80u);
    }
    counts->underflow += uf;
    counts->overflow += ovf;
    counts->nonfinite += nf;
}

void f16_to_f32_array_portable(float *dst, const amp_f16 *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = f32_from_bits(f16_to_bits(src[i]));
}

static void bf16_to_f32_array_portable(float *dst, const amp_bf16 *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = f32_from_bits((uint32_t)src[i] << 16);
}

static void tf32_round_array_portable(float *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = f32_from_bits(tf32_bits(f32_bits(src[i])));
}

static void f32_round_to_f16_array_portable(float *dst, const float *src, size_t n, struct lowp_counts *counts)
{
    uint64_t uf = 0, ovf = 0, nf = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t u = f32_bits(src[i]);
        const uint16_t h = f16_from_bits(u);
        const uint32_t a = u & F32_ABS_MASK, ha = h & 0x7FFFu;
        dst[i] = f32_from_bits(f16_to_bits(h));
        uf += (a != 0u) & (ha == 0u);
        ovf += (a < F32_INF_BITS) & (ha == 0x7C00u);
        nf += (ha >= 0x7C00u);
    }
    if (counts) {
        counts->underflow += uf;
        counts->overflow += ovf;
        counts->nonfinite += nf;
    }
}

static void f32_round_to_bf16_array_portable(float *dst, const float *src, size_t n, struct lowp_counts *counts)
{
    uint64_t uf = 0, ovf = 0, nf = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t u = f32_bits(src[i]);
        const uint16_t h = bf16_from_bits(u);
        const uint32_t a = u & F32_ABS_MASK, ha = h & 0x7FFFu;
        dst[i] = f32_from_bits((uint32_t)h << 16);
        uf += (a != 0u) & (ha == 0u);
        ovf += (a < F32_INF_BITS) & (ha == 0x7F80u);
        nf += (ha >= 0x7F80u);
    }
    if (counts) {
        counts->underflow += uf;
        counts->overflow += ovf;
        counts->nonfinite += nf;
    }
}

/* ------------------------------------------------------------------------ */
/* x86 fast paths                                                           */
/* ------------------------------------------------------------------------ */

/* Counting accumulates per-lane 32-bit counters; they are flushed to the
   64-bit totals every COUNT_CHUNK elements so that they cannot overflow. */
#define COUNT_CHUNK ((size_t)1 << 28)

enum lowp_kind {
    K_F16 = 0,    /* FP32 -> FP16 bits */
    K_BF16 = 1,   /* FP32 -> BF16 bits */
    K_RF16 = 2,   /* FP32 -> nearest FP16 value, kept as FP32 */
    K_RBF16 = 3   /* FP32 -> nearest BF16 value, kept as FP32 */
};

#if LOWP_X86

#define T_AVX2 __attribute__((target("avx2,f16c,fma")))
#define T_AVX2_INL static inline __attribute__((always_inline, target("avx2,f16c,fma")))
#define T_512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,f16c,fma")))
#define T_512_INL static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vl,avx2,f16c,fma")))

static void portable_kind(void *dst, const float *src, size_t n, struct lowp_counts *c, int kind)
{
    switch (kind) {
    case K_F16: f16_from_f32_array_portable((amp_f16 *)dst, src, n, c); break;
    case K_BF16: bf16_from_f32_array_portable((amp_bf16 *)dst, src, n, c); break;
    case K_RF16: f32_round_to_f16_array_portable((float *)dst, src, n, c); break;
    default: f32_round_to_bf16_array_portable((float *)dst, src, n, c); break;
    }
}

/* ---------------- F16C + AVX2 ---------------- */

/* BF16 rounding of 8 FP32 bit patterns; result in the low 16 bits of each
   32-bit lane (upper bits zero). */
T_AVX2_INL __m256i avx2_bf16_round(__m256i u)
{
    const __m256i a = _mm256_and_si256(u, _mm256_set1_epi32((int)F32_ABS_MASK));
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7FFF)), lsb), 16);
    const __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x0040));
    const __m256i nan = _mm256_cmpgt_epi32(a, _mm256_set1_epi32((int)F32_INF_BITS));
    return _mm256_blendv_epi8(r, q, nan);
}

/* Adds this vector's underflow/overflow/non-finite lanes (as -1 masks
   subtracted) to the accumulators. uf_lim = UF_MAX + 1, nf_lim = INF_MIN - 1;
   a = |x| bits is non-negative as int32, so signed compares are exact. */
T_AVX2_INL void avx2_count(__m256i u, __m256i uf_lim, __m256i nf_lim,
                           __m256i *uf, __m256i *ovf, __m256i *nf)
{
    const __m256i a = _mm256_and_si256(u, _mm256_set1_epi32((int)F32_ABS_MASK));
    const __m256i zero = _mm256_cmpeq_epi32(a, _mm256_setzero_si256());
    const __m256i muf = _mm256_andnot_si256(zero, _mm256_cmpgt_epi32(uf_lim, a));
    const __m256i mnf = _mm256_cmpgt_epi32(a, nf_lim);
    const __m256i mspecial = _mm256_cmpgt_epi32(a, _mm256_set1_epi32((int)(F32_INF_BITS - 1u)));
    const __m256i movf = _mm256_andnot_si256(mspecial, mnf);
    *uf = _mm256_sub_epi32(*uf, muf);
    *ovf = _mm256_sub_epi32(*ovf, movf);
    *nf = _mm256_sub_epi32(*nf, mnf);
}

T_AVX2_INL uint64_t avx2_hsum_u32(__m256i v)
{
    uint32_t t[8];
    _mm256_storeu_si256((__m256i *)t, v);
    uint64_t s = 0;
    for (int i = 0; i < 8; i++)
        s += t[i];
    return s;
}

/* Converts 16 elements at src into dst (element offset already applied). */
T_AVX2_INL void avx2_step16(void *dst, __m256 v0, __m256 v1, int kind)
{
    switch (kind) {
    case K_F16: {
        amp_f16 *d = (amp_f16 *)dst;
        _mm_storeu_si128((__m128i *)d, _mm256_cvtps_ph(v0, _MM_FROUND_TO_NEAREST_INT));
        _mm_storeu_si128((__m128i *)(d + 8), _mm256_cvtps_ph(v1, _MM_FROUND_TO_NEAREST_INT));
        break;
    }
    case K_RF16: {
        float *d = (float *)dst;
        _mm256_storeu_ps(d, _mm256_cvtph_ps(_mm256_cvtps_ph(v0, _MM_FROUND_TO_NEAREST_INT)));
        _mm256_storeu_ps(d + 8, _mm256_cvtph_ps(_mm256_cvtps_ph(v1, _MM_FROUND_TO_NEAREST_INT)));
        break;
    }
    case K_BF16: {
        const __m256i r0 = avx2_bf16_round(_mm256_castps_si256(v0));
        const __m256i r1 = avx2_bf16_round(_mm256_castps_si256(v1));
        const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r0, r1), 0xD8);
        _mm256_storeu_si256((__m256i *)dst, p);
        break;
    }
    default: {
        float *d = (float *)dst;
        const __m256i r0 = _mm256_slli_epi32(avx2_bf16_round(_mm256_castps_si256(v0)), 16);
        const __m256i r1 = _mm256_slli_epi32(avx2_bf16_round(_mm256_castps_si256(v1)), 16);
        _mm256_storeu_si256((__m256i *)d, r0);
        _mm256_storeu_si256((__m256i *)(d + 8), r1);
        break;
    }
    }
}

T_AVX2_INL void avx2_narrow(void *dst, const float *src, size_t n, struct lowp_counts *c, int kind)
{
    const size_t esz = (kind == K_F16 || kind == K_BF16) ? 2 : 4;
    char *d = (char *)dst;
    const size_t nv = n & ~(size_t)15;
    size_t i = 0;
    if (!c) {
        for (; i < nv; i += 16)
            avx2_step16(d + i * esz, _mm256_loadu_ps(src + i), _mm256_loadu_ps(src + i + 8), kind);
    } else {
        const int f16 = (kind == K_F16 || kind == K_RF16);
        const __m256i uf_lim = _mm256_set1_epi32((int)((f16 ? F16_UF_MAX : BF16_UF_MAX) + 1u));
        const __m256i nf_lim = _mm256_set1_epi32((int)((f16 ? F16_INF_MIN : BF16_INF_MIN) - 1u));
        while (i < nv) {
            const size_t end = (nv - i > COUNT_CHUNK) ? i + COUNT_CHUNK : nv;
            __m256i uf = _mm256_setzero_si256(), ovf = uf, nf = uf;
            for (; i < end; i += 16) {
                const __m256 v0 = _mm256_loadu_ps(src + i), v1 = _mm256_loadu_ps(src + i + 8);
                avx2_step16(d + i * esz, v0, v1, kind);
                avx2_count(_mm256_castps_si256(v0), uf_lim, nf_lim, &uf, &ovf, &nf);
                avx2_count(_mm256_castps_si256(v1), uf_lim, nf_lim, &uf, &ovf, &nf);
            }
            c->underflow += avx2_hsum_u32(uf);
            c->overflow += avx2_hsum_u32(ovf);
            c->nonfinite += avx2_hsum_u32(nf);
        }
    }
    if (i < n)
        portable_kind(d + i * esz, src + i, n - i, c, kind);
}

T_AVX2 static void f16_from_f32_avx2(amp_f16 *dst, const float *src, size_t n, struct lowp_counts *c)
{
    avx2_narrow(dst, src, n, c, K_F16);
}

T_AVX2 static void bf16_from_f32_avx2(amp_bf16 *dst, const float *src, size_t n, struct lowp_counts *c)
{
    avx2_narrow(dst, src, n, c, K_BF16);
}

T_AVX2 static void f32_round_to_f16_avx2(float *dst, const float *src, size_t n, struct lowp_counts *c)
{
    avx2_narrow(dst, src, n, c, K_RF16);
}

T_AVX2 static void f32_round_to_bf16_avx2(float *dst, const float *src, size_t n, struct lowp_counts *c)
{
    avx2_narrow(dst, src, n, c, K_RBF16);
}

T_AVX2 static void f16_to_f32_avx2(float *dst, const amp_f16 *src, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m128i h0 = _mm_loadu_si128((const __m128i *)(src + i));
        const __m128i h1 = _mm_loadu_si128((const __m128i *)(src + i + 8));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h0));
        _mm256_storeu_ps(dst + i + 8, _mm256_cvtph_ps(h1));
    }
    if (i < n)
        f16_to_f32_array_portable(dst + i, src + i, n - i);
}

T_AVX2 static void bf16_to_f32_avx2(float *dst, const amp_bf16 *src, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i h = _mm256_loadu_si256((const __m256i *)(src + i));
        const __m256i lo = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(h)), 16);
        const __m256i hi = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(h, 1)), 16);
        _mm256_storeu_si256((__m256i *)(dst + i), lo);
        _mm256_storeu_si256((__m256i *)(dst + i + 8), hi);
    }
    if (i < n)
        bf16_to_f32_array_portable(dst + i, src + i, n - i);
}

T_AVX2_INL __m256i avx2_tf32(__m256i u)
{
    const __m256i a = _mm256_and_si256(u, _mm256_set1_epi32((int)F32_ABS_MASK));
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 13), _mm256_set1_epi32(1));
    const __m256i r = _mm256_and_si256(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x0FFF)), lsb),
                                       _mm256_set1_epi32((int)0xFFFFE000u));
    const __m256i special = _mm256_cmpgt_epi32(a, _mm256_set1_epi32((int)(F32_INF_BITS - 1u)));
    return _mm256_blendv_epi8(r, u, special);
}

T_AVX2 static void tf32_round_avx2(float *dst, const float *src, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i u0 = _mm256_loadu_si256((const __m256i *)(src + i));
        const __m256i u1 = _mm256_loadu_si256((const __m256i *)(src + i + 8));
        _mm256_storeu_si256((__m256i *)(dst + i), avx2_tf32(u0));
        _mm256_storeu_si256((__m256i *)(dst + i + 8), avx2_tf32(u1));
    }
    if (i < n)
        tf32_round_array_portable(dst + i, src + i, n - i);
}

/* ---------------- AVX-512F/BW/VL ---------------- */

T_512_INL __m512i avx512_bf16_round(__m512i u)
{
    const __m512i a = _mm512_and_si512(u, _mm512_set1_epi32((int)F32_ABS_MASK));
    const __m512i hi = _mm512_srli_epi32(u, 16);
    const __m512i lsb = _mm512_and_si512(hi, _mm512_set1_epi32(1));
    const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)), lsb), 16);
    const __mmask16 nan = _mm512_cmpgt_epi32_mask(a, _mm512_set1_epi32((int)F32_INF_BITS));
    return _mm512_mask_or_epi32(r, nan, hi, _mm512_set1_epi32(0x0040));
}

T_512_INL void avx512_count(__m512i u, __m512i uf_lim, __m512i nf_lim,
                            __m512i *uf, __m512i *ovf, __m512i *nf)
{
    const __m512i one = _mm512_set1_epi32(1);
    const __m512i a = _mm512_and_si512(u, _mm512_set1_epi32((int)F32_ABS_MASK));
    const __mmask16 knz = _mm512_test_epi32_mask(a, a);
    const __mmask16 kuf = _mm512_mask_cmplt_epi32_mask(knz, a, uf_lim);
    const __mmask16 knf = _mm512_cmpgt_epi32_mask(a, nf_lim);
    const __mmask16 kovf = _mm512_mask_cmplt_epi32_mask(knf, a, _mm512_set1_epi32((int)F32_INF_BITS));
    *uf = _mm512_mask_add_epi32(*uf, kuf, *uf, one);
    *ovf = _mm512_mask_add_epi32(*ovf, kovf, *ovf, one);
    *nf = _mm512_mask_add_epi32(*nf, knf, *nf, one);
}

/* Converts up to 16 elements (lanes in k) to dst (offset already applied). */
T_512_INL void avx512_step16(void *dst, __m512 v, __mmask16 k, int full, int kind)
{
    switch (kind) {
    case K_F16: {
        const __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
        if (full)
            _mm256_storeu_si256((__m256i *)dst, h);
        else
            _mm256_mask_storeu_epi16(dst, k, h);
        break;
    }
    case K_RF16: {
        const __m512 r = _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
        if (full)
            _mm512_storeu_ps(dst, r);
        else
            _mm512_mask_storeu_ps(dst, k, r);
        break;
    }
    case K_BF16: {
        const __m512i r = avx512_bf16_round(_mm512_castps_si512(v));
        if (full)
            _mm256_storeu_si256((__m256i *)dst, _mm512_cvtepi32_epi16(r));
        else
            _mm512_mask_cvtepi32_storeu_epi16(dst, k, r);
        break;
    }
    default: {
        const __m512i r = _mm512_slli_epi32(avx512_bf16_round(_mm512_castps_si512(v)), 16);
        if (full)
            _mm512_storeu_si512(dst, r);
        else
            _mm512_mask_storeu_epi32(dst, k, r);
        break;
    }
    }
}

T_512_INL void avx512_narrow(void *dst, const float *src, size_t n, struct lowp_counts *c, int kind)
{
    const size_t esz = (kind == K_F16 || kind == K_BF16) ? 2 : 4;
    char *d = (char *)dst;
    const size_t nv = n & ~(size_t)31;
    size_t i = 0;
    if (!c) {
        for (; i < nv; i += 32) {
            const __m512 v0 = _mm512_loadu_ps(src + i), v1 = _mm512_loadu_ps(src + i + 16);
            avx512_step16(d + i * esz, v0, 0xFFFF, 1, kind);
            avx512_step16(d + (i + 16) * esz, v1, 0xFFFF, 1, kind);
        }
        for (; i < n; i += 16) {
            const size_t rem = n - i;
            const __mmask16 k = (rem >= 16) ? (__mmask16)0xFFFF : (__mmask16)((1u << rem) - 1u);
            avx512_step16(d + i * esz, _mm512_maskz_loadu_ps(k, src + i), k, 0, kind);
        }
        return;
    }
    const int f16 = (kind == K_F16 || kind == K_RF16);
    const __m512i uf_lim = _mm512_set1_epi32((int)((f16 ? F16_UF_MAX : BF16_UF_MAX) + 1u));
    const __m512i nf_lim = _mm512_set1_epi32((int)((f16 ? F16_INF_MIN : BF16_INF_MIN) - 1u));
    do {
        /* Masked-out lanes load as +0.0, which counts as nothing. */
        const size_t end = (n - i > COUNT_CHUNK) ? i + COUNT_CHUNK : n;
        const size_t endv = (end == n) ? nv : end;   /* COUNT_CHUNK is a multiple of 32 */
        __m512i uf = _mm512_setzero_si512(), ovf = uf, nf = uf;
        for (; i < endv; i += 32) {
            const __m512 v0 = _mm512_loadu_ps(src + i), v1 = _mm512_loadu_ps(src + i + 16);
            avx512_step16(d + i * esz, v0, 0xFFFF, 1, kind);
            avx512_step16(d + (i + 16) * esz, v1, 0xFFFF, 1, kind);
            avx512_count(_mm512_castps_si512(v0), uf_lim, nf_lim, &uf, &ovf, &nf);
            avx512_count(_mm512_castps_si512(v1), uf_lim, nf_lim, &uf, &ovf, &nf);
        }
        for (; i < end; i += 16) {
            const size_t rem = end - i;
            const __mmask16 k = (rem >= 16) ? (__mmask16)0xFFFF : (__mmask16)((1u << rem) - 1u);
            const __m512 v = _mm512_maskz_loadu_ps(k, src + i);
            avx512_step16(d + i * esz, v, k, 0, kind);
            avx512_count(_mm512_castps_si512(v), uf_lim, nf_lim, &uf, &ovf, &nf);
        }
        if (i > end)
            i = end;
        /* Each lane counts at most COUNT_CHUNK/16 = 2^24, a sum at most 2^28. */
        c->underflow += (uint64_t)(uint32_t)_mm512_reduce_add_epi32(uf);
        c->overflow += (uint64_t)(uint32_t)_mm512_reduce_add_epi32(ovf);
        c->nonfinite += (uint64_t)(uint32_t)_mm512_reduce_add_epi32(nf);
    } while (i < n);
}

T_512 static void f16_from_f32_avx512(amp_f16 *dst, const float *src, size_t n, struct lowp_counts *c)
{
    avx512_narrow(dst, src, n, c, K_F16);
}

T_512 static void bf16_from_f32_avx512(amp_bf16 *dst, const float *src, size_t n, struct lowp_counts *c)
{
    avx512_narrow(dst, src, n, c, K_BF16);
}

T_512 static void f32_round_to_f16_avx512(float *dst, const float *src, size_t n, struct lowp_counts *c)
{
    avx512_narrow(dst, src, n, c, K_RF16);
}

T_512 static void f32_round_to_bf16_avx512(float *dst, const float *src, size_t n, struct lowp_counts *c)
{
    avx512_narrow(dst, src, n, c, K_RBF16);
}

T_512 static void f16_to_f32_avx512(float *dst, const amp_f16 *src, size_t n)
{
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i h0 = _mm256_loadu_si256((const __m256i *)(src + i));
        const __m256i h1 = _mm256_loadu_si256((const __m256i *)(src + i + 16));
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(h0));
        _mm512_storeu_ps(dst + i + 16, _mm512_cvtph_ps(h1));
    }
    for (; i < n; i += 16) {
        const size_t rem = n - i;
        const __mmask16 k = (rem >= 16) ? (__mmask16)0xFFFF : (__mmask16)((1u << rem) - 1u);
        const __m256i h = _mm256_maskz_loadu_epi16(k, src + i);
        _mm512_mask_storeu_ps(dst + i, k, _mm512_cvtph_ps(h));
    }
}

T_512 static void bf16_to_f32_avx512(float *dst, const amp_bf16 *src, size_t n)
{
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i h0 = _mm256_loadu_si256((const __m256i *)(src + i));
        const __m256i h1 = _mm256_loadu_si256((const __m256i *)(src + i + 16));
        _mm512_storeu_si512(dst + i, _mm512_slli_epi32(_mm512_cvtepu16_epi32(h0), 16));
        _mm512_storeu_si512(dst + i + 16, _mm512_slli_epi32(_mm512_cvtepu16_epi32(h1), 16));
    }
    for (; i < n; i += 16) {
        const size_t rem = n - i;
        const __mmask16 k = (rem >= 16) ? (__mmask16)0xFFFF : (__mmask16)((1u << rem) - 1u);
        const __m256i h = _mm256_maskz_loadu_epi16(k, src + i);
        _mm512_mask_storeu_epi32(dst + i, k, _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
}

T_512_INL __m512i avx512_tf32(__m512i u)
{
    const __m512i a = _mm512_and_si512(u, _mm512_set1_epi32((int)F32_ABS_MASK));
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 13), _mm512_set1_epi32(1));
    const __m512i r = _mm512_and_si512(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x0FFF)), lsb),
                                       _mm512_set1_epi32((int)0xFFFFE000u));
    const __mmask16 special = _mm512_cmpge_epi32_mask(a, _mm512_set1_epi32((int)F32_INF_BITS));
    return _mm512_mask_mov_epi32(r, special, u);
}

T_512 static void tf32_round_avx512(float *dst, const float *src, size_t n)
{
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512i u0 = _mm512_loadu_si512(src + i);
        const __m512i u1 = _mm512_loadu_si512(src + i + 16);
        _mm512_storeu_si512(dst + i, avx512_tf32(u0));
        _mm512_storeu_si512(dst + i + 16, avx512_tf32(u1));
    }
    for (; i < n; i += 16) {
        const size_t rem = n - i;
        const __mmask16 k = (rem >= 16) ? (__mmask16)0xFFFF : (__mmask16)((1u << rem) - 1u);
        const __m512i u = _mm512_maskz_loadu_epi32(k, src + i);
        _mm512_mask_storeu_epi32(dst + i, k, avx512_tf32(u));
    }
}

#endif /* LOWP_X86 */

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                 */
/* ------------------------------------------------------------------------ */

enum { LP_PORTABLE = 0, LP_AVX2 = 1, LP_AVX512 = 2, LP_UNSET = -1 };

static _Atomic int g_path = LP_UNSET;

#if LOWP_X86
static int cpu_has_f16c(void)
{
#if defined(__clang__)
    /* Older clang lacks __builtin_cpu_supports("f16c"): CPUID.1:ECX[29]. The
       OS support for the AVX state it needs is checked through "avx2". */
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0;
#else
    return __builtin_cpu_supports("f16c");
#endif
}
#endif

static int cpu_can(int path)
{
    if (path == LP_PORTABLE)
        return 1;
#if LOWP_X86
    __builtin_cpu_init();
    if (path == LP_AVX2)
        return __builtin_cpu_supports("avx2") && cpu_has_f16c();
    if (path == LP_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") &&
               cpu_has_f16c();
#endif
    return 0;
}

static int auto_path(void)
{
    if (cpu_can(LP_AVX512))
        return LP_AVX512;
    if (cpu_can(LP_AVX2))
        return LP_AVX2;
    return LP_PORTABLE;
}

static inline int lowp_path(void)
{
    int p = atomic_load_explicit(&g_path, memory_order_relaxed);
    if (p == LP_UNSET) {
        p = auto_path();
        atomic_store_explicit(&g_path, p, memory_order_relaxed);
    }
    return p;
}

const char *lowp_fast_path(void)
{
    switch (lowp_path()) {
    case LP_AVX512: return "avx512";
    case LP_AVX2: return "f16c+avx2";
    default: return "portable";
    }
}

int lowp_set_fast_path(const char *name)
{
    int p;
    if (!name || strcmp(name, "auto") == 0)
        p = auto_path();
    else if (strcmp(name, "avx512") == 0)
        p = LP_AVX512;
    else if (strcmp(name, "f16c+avx2") == 0)
        p = LP_AVX2;
    else if (strcmp(name, "portable") == 0)
        p = LP_PORTABLE;
    else
        return -1;
    if (!cpu_can(p))
        return -1;
    atomic_store_explicit(&g_path, p, memory_order_relaxed);
    return 0;
}

#if LOWP_X86
#define DISPATCH(fn, ...)                                         \
    do {                                                          \
        switch (lowp_path()) {                                    \
        case LP_AVX512: fn##_avx512(__VA_ARGS__); return;         \
        case LP_AVX2: fn##_avx2(__VA_ARGS__); return;             \
        default: break;                                           \
        }                                                         \
    } while (0)
#else
#define DISPATCH(fn, ...) do { } while (0)
#endif

void f16_from_f32_array(amp_f16 *dst, const float *src, size_t n, struct lowp_counts *counts)
{
    DISPATCH(f16_from_f32, dst, src, n, counts);
    f16_from_f32_array_portable(dst, src, n, counts);
}

void f16_to_f32_array(float *dst, const amp_f16 *src, size_t n)
{
    DISPATCH(f16_to_f32, dst, src, n);
    f16_to_f32_array_portable(dst, src, n);
}

void bf16_from_f32_array(amp_bf16 *dst, const float *src, size_t n, struct lowp_counts *counts)
{
    DISPATCH(bf16_from_f32, dst, src, n, counts);
    bf16_from_f32_array_portable(dst, src, n, counts);
}

void bf16_to_f32_array(float *dst, const amp_bf16 *src, size_t n)
{
    DISPATCH(bf16_to_f32, dst, src, n);
    bf16_to_f32_array_portable(dst, src, n);
}

void tf32_round_array(float *dst, const float *src, size_t n)
{
    DISPATCH(tf32_round, dst, src, n);
    tf32_round_array_portable(dst, src, n);
}

void f32_round_to_f16_array(float *dst, const float *src, size_t n, struct lowp_counts *counts)
{
    DISPATCH(f32_round_to_f16, dst, src, n, counts);
    f32_round_to_f16_array_portable(dst, src, n, counts);
}

void f32_round_to_bf16_array(float *dst, const float *src, size_t n, struct lowp_counts *counts)
{
    DISPATCH(f32_round_to_bf16, dst, src, n, counts);
    f32_round_to_bf16_array_portable(dst, src, n, counts);
}
