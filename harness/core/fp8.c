/*
 * fp8.c - FP8 (E4M3, E5M2) conversions, per-tensor scaling and MX block
 * quantization for the ampbench CPU reference backend.
 *
 * The scalar conversions are the definition of correctness. They use integer
 * arithmetic only, written branch-light in the form the AVX2 path below
 * vectorizes lane for lane (compute every case, then select), and they
 * reproduce CUDA's host __nv_cvt_float_to_fp8 bit for bit
 * (/usr/local/cuda/include/cuda_fp8.hpp): the thresholds, the
 * round-to-nearest-even, the sign of zeros and of overflows, the canonical
 * NaN 0x7F.
 *
 * The array functions multiply by the scale in FP32 first (as the GPU
 * kernels do), so that one product depends on the FP environment as any
 * FP32 product does; the conversion itself does not. They dispatch at run
 * time to "avx2" (AVX2 + FMA: eight lanes, the same integer steps, except that the fake
 * quantization rounds the subnormal range with an explicit-rounding vroundps: see
 * avx2_sub_round), "avx512" (the fake quantization in sixteen lanes) or
 * "portable" (the scalar definition in a loop); all give the same bytes and
 * the same stats bit for bit (tests/test_fp8.c): the sums of squares are
 * kept in eight partial sums, element i in lane i % 8, each updated with a
 * fused multiply-add and combined in one fixed order.
 *
 * No OpenMP and no threads here: callers parallelize over tensors/chunks.
 */
#include "fp8.h"
#include "fp8_scaling.h"

#include "f32bits.h"
#include "lowp.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

/* Define FP8_NO_SIMD to build the portable code only. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(FP8_NO_SIMD)
#define FP8_X86 1
#include <immintrin.h>
#else
#define FP8_X86 0
#endif

/* ------------------------------------------------------------------------ */
/* The two formats                                                          */
/* ------------------------------------------------------------------------ */

#define F32_QNAN_BITS 0x7FC00000u
#define FP8_NAN       0x7Fu          /* the canonical NaN of both formats */

struct fp8_fmt {
    uint32_t mbits;      /* mantissa bits: 3, 2 */
    uint32_t shift;      /* 23 - mbits: FP32 mantissa bits dropped */
    uint32_t rebias;     /* (127 - bias) << 23 */
    uint32_t norm_min;   /* FP32 bits of the smallest normal, 2^(1 - bias) */
    uint32_t sub_base;   /* a subnormal result is m >> (sub_base - e), e the FP32 exponent */
    uint32_t ovf_min;    /* |x| bits >= this round above max (CUDA's overflow threshold) */
    uint32_t max_bits;   /* FP32 bits of max */
    uint32_t maxnorm;    /* code of max: 0x7E, 0x7B */
    uint32_t ovf_nosat;  /* code of an overflow without saturation: NaN 0x7F, inf 0x7C */
    uint32_t inf_code;   /* 0x7C for E5M2; 0x100 (no code) for E4M3 */
    uint32_t nan_min;    /* codes (sign masked) >= this are NaN: 0x7F, 0x7D */
    float quantum;       /* the smallest subnormal: 2^-9, 2^-16 */
    float max;
    int emax_elem;       /* the exponent of the largest normal (OCP MX): 8, 15 */
};

static const struct fp8_fmt FMT[2] = {
    [FP8_E4M3] = {3u, 20u, 120u << 23, 121u << 23, 141u, 0x43E80001u /* > 464 */, 0x43E00000u,
                  0x7Eu, 0x7Fu, 0x100u, 0x7Fu, 0x1p-9f, 448.0f, 8},
    [FP8_E5M2] = {2u, 21u, 112u << 23, 113u << 23, 134u, 0x47700000u /* >= 61440 */, 0x47600000u,
                  0x7Bu, 0x7Cu, 0x7Cu, 0x7Du, 0x1p-16f, 57344.0f, 15},
};

static inline const struct fp8_fmt *fmt_of(enum fp8_format f)
{
    return &FMT[f == FP8_E5M2 ? FP8_E5M2 : FP8_E4M3];
}

float fp8_max(enum fp8_format f)
{
    return fmt_of(f)->max;
}

const char *fp8_format_name(enum fp8_format f)
{
    return f == FP8_E5M2 ? "e5m2" : "e4m3";
}

/* ------------------------------------------------------------------------ */
/* Scalar definitions                                                       */
/* ------------------------------------------------------------------------ */

/* FP32 bits -> FP8 code. ovf is the code (sign excluded) of an overflow:
   maxnorm under saturation, ovf_nosat without. */
static inline uint32_t fp8_encode(uint32_t u, const struct fp8_fmt *F, uint32_t ovf)
{
    const uint32_t a = u & F32_ABS_MASK;
    const uint32_t sign = (u >> 24) & 0x80u;
    /* normal: round to nearest even on bit `shift`, then rebias (the carry
       of a rounding goes into the exponent, as it should) */
    const uint32_t r = a + ((1u << (F->shift - 1)) - 1u) + ((a >> F->shift) & 1u);
    const uint32_t normal = (r - F->rebias) >> F->shift;
    /* subnormal or zero: |x| = m * 2^(e - 150); the result counts quanta of
       2^(1 - bias - mbits), i.e. m >> s rounded to nearest even with
       s = sub_base - e >= 21; a shift of 25 or more gives 0 (m < 2^24), so
       it is clamped to 25 (and to 1 where the lane is not subnormal). A
       carry into 2^mbits gives the smallest normal's code, correctly. */
    const uint32_t e = a >> 23;
    const uint32_t m = (a & 0x007FFFFFu) | 0x00800000u;
    uint32_t s = (e >= F->sub_base) ? 1u : F->sub_base - e;
    s = s > 25u ? 25u : s;
    const uint32_t sub = (m + ((1u << (s - 1)) - 1u) + ((m >> s) & 1u)) >> s;
    uint32_t c = (a >= F->norm_min) ? normal : sub;
    c = (a >= F->ovf_min) ? ovf : c;               /* overflow and +-inf */
    c |= sign;
    return (a > F32_INF_BITS) ? FP8_NAN : c;       /* NaN: 0x7F, whatever its sign */
}

/* FP8 code -> FP32 bits, exact; NaN -> quiet NaN with the sign kept. */
static inline uint32_t fp8_decode(uint32_t v, const struct fp8_fmt *F)
{
    const uint32_t sign = (v & 0x80u) << 24;
    const uint32_t a = v & 0x7Fu;
    const uint32_t mmask = (1u << F->mbits) - 1u;
    const uint32_t normal = (a << F->shift) + F->rebias;
    /* m * quantum: a small integer times a normal power of two, exact and a
       normal FP32 number, so independent of the rounding mode and FTZ/DAZ */
    const uint32_t sub = f32_bits((float)(a & mmask) * F->quantum);
    uint32_t r = (a > mmask) ? normal : sub;
    r = (a == F->inf_code) ? F32_INF_BITS : r;
    r = (a >= F->nan_min) ? F32_QNAN_BITS : r;
    return sign | r;
}

amp_fp8 fp8_from_f32(float x, enum fp8_format f, enum fp8_saturation sat)
{
    const struct fp8_fmt *F = fmt_of(f);
    return (amp_fp8)fp8_encode(f32_bits(x), F, sat == FP8_NOSAT ? F->ovf_nosat : F->maxnorm);
}

float fp8_to_f32(amp_fp8 v, enum fp8_format f)
{
    return f32_from_bits(fp8_decode(v, fmt_of(f)));
}

float e8m0_to_f32(uint8_t e)
{
    return mx_e8m0_value(e);
}

double fp8_sqnr_db(const struct fp8_stats *s)
{
    if (s->noise == 0.0)
        return INFINITY;
    return 10.0 * log10(s->signal / s->noise);
}

static float amax_portable(const float *src, size_t n)
{
    uint32_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t a = f32_bits(src[i]) & F32_ABS_MASK;
        const uint32_t fin = (a < F32_INF_BITS) ? a : 0u;
        m = fin > m ? fin : m;
    }
    return f32_from_bits(m);
}

/* amax_portable of BF16 bits: |h| and finiteness on the 16 bits, whose order is the order of
   the FP32 values they widen to. */
static float amax_bf16_portable(const uint16_t *src, size_t n)
{
    uint32_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t a = src[i] & 0x7FFFu;
        const uint32_t fin = a < 0x7F80u ? a : 0u;
        m = fin > m ? fin : m;
    }
    return f32_from_bits(m << 16);
}

/* ------------------------------------------------------------------------ */
/* The array kernel: y = x * scale in FP32, q = fp8(y) saturated; optional  */
/* outputs: the codes, the dequantized q * scale_inv, and the stats.        */
/* ------------------------------------------------------------------------ */

/* Partial stats of one call (combined into struct fp8_stats at the end). */
struct part {
    uint64_t n, sat, uf, nf;
    uint32_t amax_bits;
    double sig[8], noise[8];
};

static void part_init(struct part *p)
{
    memset(p, 0, sizeof *p);
}

static double lanes_sum(const double v[8])
{
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

static void part_flush(const struct part *p, struct fp8_stats *s)
{
    s->n += p->n;
    s->saturated += p->sat;
    s->underflow += p->uf;
    s->nonfinite += p->nf;
    const float am = f32_from_bits(p->amax_bits);
    if (!(s->amax >= am))      /* also replaces a NaN already there */
        s->amax = am;
    s->signal += lanes_sum(p->sig);
    s->noise += lanes_sum(p->noise);
}

/* Element i of a call: counted with the array start at lane 0. */
static inline void count_one(struct part *p, size_t lane, uint32_t ux, uint32_t uy, uint32_t code,
                             float deq, const struct fp8_fmt *F)
{
    const uint32_t ax = ux & F32_ABS_MASK, ay = uy & F32_ABS_MASK;
    const int fin = ax < F32_INF_BITS;
    p->sat += (ay >= F->ovf_min) & (ay <= F32_INF_BITS); /* the clip changed it */
    p->uf += (ax != 0u) & ((code & 0x7Fu) == 0u);
    p->nf += ay > F32_INF_BITS;
    const uint32_t am = fin ? ax : 0u;
    p->amax_bits = am > p->amax_bits ? am : p->amax_bits;
    const double x = fin ? (double)f32_from_bits(ux) : 0.0;
    const double d = x - (fin ? (double)deq : 0.0);
    p->sig[lane] = fma(x, x, p->sig[lane]);
    p->noise[lane] = fma(d, d, p->noise[lane]);
}

/* Elements [i, n) one at a time: the codes and the dequantized values where codes and deq are
   not NULL, counted into p (element i in lane i % 8) where p is not NULL. */
static inline void quant_scalar(struct part *p, amp_fp8 *codes, float *deq, const float *src,
                                size_t i, size_t n, float scale, float scale_inv,
                                const struct fp8_fmt *F)
{
    for (; i < n; i++) {
        const uint32_t ux = f32_bits(src[i]);
        const uint32_t uy = f32_bits(src[i] * scale);
        const uint32_t c = fp8_encode(uy, F, F->maxnorm);
        const float d = f32_from_bits(fp8_decode(c, F)) * scale_inv;
        if (p)
            count_one(p, i & 7u, ux, uy, c, d, F);
        if (codes)
            codes[i] = (amp_fp8)c;
        if (deq)
            deq[i] = d;
    }
}

static void quant_portable(amp_fp8 *codes, float *deq, const float *src, size_t n, float scale,
                           float scale_inv, const struct fp8_fmt *F, struct fp8_stats *stats)
{
    if (!stats && !deq) {
        for (size_t i = 0; i < n; i++)
            codes[i] = (amp_fp8)fp8_encode(f32_bits(src[i] * scale), F, F->maxnorm);
        return;
    }
    struct part p;
    part_init(&p);
    quant_scalar(stats ? &p : NULL, codes, deq, src, 0, n, scale, scale_inv, F);
    if (stats) {
        p.n = n;
        part_flush(&p, stats);
    }
}

#if FP8_X86

#define T_AVX2 __attribute__((target("avx2,fma")))
#define T_AVX2_INL __attribute__((target("avx2,fma"), always_inline)) static inline

struct vfmt {
    __m256i shift, halfm1, keep, rebias, norm_min_m1, sub_base, ovf_min_m1, max_bits, ovf, mmask,
        inf_code, nan_min_m1;
    __m256 quantum, inv_quantum;
};

T_AVX2_INL void vfmt_init(struct vfmt *V, const struct fp8_fmt *F)
{
    V->shift = _mm256_set1_epi32((int)F->shift);
    V->halfm1 = _mm256_set1_epi32((int)((1u << (F->shift - 1)) - 1u));
    V->keep = _mm256_set1_epi32((int)~((1u << F->shift) - 1u));
    V->rebias = _mm256_set1_epi32((int)F->rebias);
    V->norm_min_m1 = _mm256_set1_epi32((int)(F->norm_min - 1u));
    V->sub_base = _mm256_set1_epi32((int)F->sub_base);
    V->ovf_min_m1 = _mm256_set1_epi32((int)(F->ovf_min - 1u));
    V->max_bits = _mm256_set1_epi32((int)F->max_bits);
    V->ovf = _mm256_set1_epi32((int)F->maxnorm);
    V->mmask = _mm256_set1_epi32((int)((1u << F->mbits) - 1u));
    V->inf_code = _mm256_set1_epi32((int)F->inf_code);
    V->nan_min_m1 = _mm256_set1_epi32((int)(F->nan_min - 1u));
    V->quantum = _mm256_set1_ps(F->quantum);
    V->inv_quantum = _mm256_set1_ps(1.0f / F->quantum);
}

/* fp8_encode's subnormal code (quanta of 2^(1 - bias - mbits)) of |x| bits a, eight lanes. */
T_AVX2_INL __m256i avx2_sub_quanta(__m256i a, const struct vfmt *V)
{
    const __m256i one = _mm256_set1_epi32(1);
    const __m256i e = _mm256_srli_epi32(a, 23);
    const __m256i m = _mm256_or_si256(_mm256_and_si256(a, _mm256_set1_epi32(0x007FFFFF)),
                                      _mm256_set1_epi32(0x00800000));
    __m256i s = _mm256_sub_epi32(V->sub_base, e);
    s = _mm256_min_epi32(_mm256_max_epi32(s, one), _mm256_set1_epi32(25));
    const __m256i half = _mm256_sub_epi32(_mm256_sllv_epi32(one, _mm256_sub_epi32(s, one)), one);
    return _mm256_srlv_epi32(
        _mm256_add_epi32(_mm256_add_epi32(m, half), _mm256_and_si256(_mm256_srlv_epi32(m, s), one)), s);
}

/* fp8_encode in eight lanes (signed compares are safe: |x| bits < 2^31). */
T_AVX2_INL __m256i avx2_encode(__m256i u, const struct vfmt *V)
{
    const __m256i one = _mm256_set1_epi32(1);
    const __m256i a = _mm256_and_si256(u, _mm256_set1_epi32((int)F32_ABS_MASK));
    const __m256i sign = _mm256_and_si256(_mm256_srli_epi32(u, 24), _mm256_set1_epi32(0x80));
    const __m256i lsb = _mm256_and_si256(_mm256_srlv_epi32(a, V->shift), one);
    const __m256i r = _mm256_add_epi32(_mm256_add_epi32(a, V->halfm1), lsb);
    const __m256i normal = _mm256_srlv_epi32(_mm256_sub_epi32(r, V->rebias), V->shift);
    const __m256i sub = avx2_sub_quanta(a, V);
    __m256i c = _mm256_blendv_epi8(sub, normal, _mm256_cmpgt_epi32(a, V->norm_min_m1));
    c = _mm256_blendv_epi8(c, V->ovf, _mm256_cmpgt_epi32(a, V->ovf_min_m1));
    c = _mm256_or_si256(c, sign);
    return _mm256_blendv_epi8(c, _mm256_set1_epi32((int)FP8_NAN),
                              _mm256_cmpgt_epi32(a, _mm256_set1_epi32((int)F32_INF_BITS)));
}

/* avx2_sub_quanta(a) * quantum in FP32, in three exact steps: |x| / quantum (a product by a
   power of two, exact: |x| < 2^(1 - bias) gives a value below 2^(mbits + 1), and an FP32
   subnormal |x|, DAZ or not, gives a value below 1/2), rounded to the nearest integer, ties to
   even, by the instruction's own rounding mode (not MXCSR's), times quantum (exact). The same
   bits as the integer steps on every |x| below the smallest normal (checked on all 2^32 FP32
   inputs of both formats; tests/test_fp8.c checks the paths against the portable code); the
   lanes at or above it are not used. */
T_AVX2_INL __m256 avx2_sub_round(__m256i a, const struct vfmt *V)
{
    const __m256 q = _mm256_mul_ps(_mm256_castsi256_ps(a), V->inv_quantum);
    return _mm256_mul_ps(_mm256_round_ps(q, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), V->quantum);
}

/* fp8_decode(avx2_encode(u)) in eight lanes, without the codes: u rounded to the format's
   values in FP32 bits. mag gets the result's magnitude bits (0 exactly where the code's are).
   Normal: the code's bits moved back are r & keep (r as in fp8_encode; the rebias is a multiple
   of 2^23); subnormal: sub * quantum, as fp8_decode (sub = 2^mbits is the smallest normal,
   correctly); overflow: max; NaN: the canonical NaN's, 0x7FC00000, whatever the sign. */
T_AVX2_INL __m256i avx2_round(__m256i u, const struct vfmt *V, __m256i *mag)
{
    const __m256i one = _mm256_set1_epi32(1);
    const __m256i a = _mm256_and_si256(u, _mm256_set1_epi32((int)F32_ABS_MASK));
    const __m256i sign = _mm256_andnot_si256(_mm256_set1_epi32((int)F32_ABS_MASK), u);
    const __m256i lsb = _mm256_and_si256(_mm256_srlv_epi32(a, V->shift), one);
    const __m256i normal = _mm256_and_si256(_mm256_add_epi32(_mm256_add_epi32(a, V->halfm1), lsb), V->keep);
    const __m256i subv = _mm256_castps_si256(avx2_sub_round(a, V));
    __m256i r = _mm256_blendv_epi8(subv, normal, _mm256_cmpgt_epi32(a, V->norm_min_m1));
    r = _mm256_blendv_epi8(r, V->max_bits, _mm256_cmpgt_epi32(a, V->ovf_min_m1));
    *mag = r;
    return _mm256_blendv_epi8(_mm256_or_si256(r, sign), _mm256_set1_epi32((int)F32_QNAN_BITS),
                              _mm256_cmpgt_epi32(a, _mm256_set1_epi32((int)F32_INF_BITS)));
}

/* fp8_decode in eight lanes (codes in 32-bit lanes). */
T_AVX2_INL __m256 avx2_decode(__m256i v, const struct vfmt *V)
{
    const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0x80)), 24);
    const __m256i a = _mm256_and_si256(v, _mm256_set1_epi32(0x7F));
    const __m256i normal = _mm256_add_epi32(_mm256_sllv_epi32(a, V->shift), V->rebias);
    const __m256i sub = _mm256_castps_si256(
        _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(a, V->mmask)), V->quantum));
    __m256i r = _mm256_blendv_epi8(sub, normal, _mm256_cmpgt_epi32(a, V->mmask));
    r = _mm256_blendv_epi8(r, _mm256_set1_epi32((int)F32_INF_BITS), _mm256_cmpeq_epi32(a, V->inf_code));
    r = _mm256_blendv_epi8(r, _mm256_set1_epi32((int)F32_QNAN_BITS), _mm256_cmpgt_epi32(a, V->nan_min_m1));
    return _mm256_castsi256_ps(_mm256_or_si256(r, sign));
}

/* Stores the low byte of each lane (eight codes) at dst. */
T_AVX2_INL void avx2_store8(amp_fp8 *dst, __m256i c)
{
    const __m256i shuf = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                          0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256i b = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(c, shuf),
                                                  _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1));
    _mm_storel_epi64((__m128i *)dst, _mm256_castsi256_si128(b));
}

T_AVX2_INL __m256i avx2_load8(const amp_fp8 *src)
{
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)src));
}

/* Per-lane counters are 32-bit: flushed every COUNT_CHUNK elements. */
#define COUNT_CHUNK ((size_t)1 << 28)

/* The stats of the vector loop: per-lane counts, the amax bits, and the sums of squares of
   lanes 0-3 and 4-7 (element i in lane i % 8). */
struct vstats {
    __m256i sat, uf, nf, amax;
    __m256d sig0, sig1, noi0, noi1;
};

T_AVX2_INL void vstats_init(struct vstats *A)
{
    A->sat = A->uf = A->nf = A->amax = _mm256_setzero_si256();
    A->sig0 = A->sig1 = A->noi0 = A->noi1 = _mm256_setzero_pd();
}

/* The sum of eight 32-bit counts, widened to 64 bits. */
T_AVX2_INL uint64_t avx2_count_sum(__m256i v)
{
    const __m256i w = _mm256_add_epi64(_mm256_cvtepu32_epi64(_mm256_castsi256_si128(v)),
                                       _mm256_cvtepu32_epi64(_mm256_extracti128_si256(v, 1)));
    const __m128i q = _mm_add_epi64(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    return (uint64_t)_mm_cvtsi128_si64(q) + (uint64_t)_mm_extract_epi64(q, 1);
}

/* Moves the per-lane counts into p (and zeroes them). */
T_AVX2_INL void vstats_flush_counts(struct vstats *A, struct part *p)
{
    p->sat += avx2_count_sum(A->sat);
    p->uf += avx2_count_sum(A->uf);
    p->nf += avx2_count_sum(A->nf);
    A->sat = A->uf = A->nf = _mm256_setzero_si256();
}

T_AVX2_INL void vstats_amax(const struct vstats *A, struct part *p)
{
    uint32_t t[8];
    _mm256_storeu_si256((__m256i *)t, A->amax);
    for (int l = 0; l < 8; l++)
        p->amax_bits = t[l] > p->amax_bits ? t[l] : p->amax_bits;
}

/* Eight elements x: y = x * scale, c = fp8(y) saturated, returns the dequantized c * scale_inv;
   the codes (in 32-bit lanes) into *code when code is not NULL; counts them into A when A is not
   NULL. */
T_AVX2_INL __m256 avx2_quant8(__m256 x, __m256 vs, __m256 vsi, const struct vfmt *V, __m256i *code,
                              struct vstats *A)
{
    const __m256 y = _mm256_mul_ps(x, vs);
    __m256i mag; /* the code's magnitude bits, or the value's: zero for the same lanes */
    __m256 d;
    if (code) {
        const __m256i c = avx2_encode(_mm256_castps_si256(y), V);
        d = _mm256_mul_ps(avx2_decode(c, V), vsi);
        *code = c;
        mag = _mm256_and_si256(c, _mm256_set1_epi32(0x7F));
    } else {
        d = _mm256_mul_ps(_mm256_castsi256_ps(avx2_round(_mm256_castps_si256(y), V, &mag)), vsi);
    }
    if (!A)
        return d;
    const __m256i absm = _mm256_set1_epi32((int)F32_ABS_MASK), inf = _mm256_set1_epi32((int)F32_INF_BITS);
    const __m256i zero = _mm256_setzero_si256();
    const __m256i ax = _mm256_and_si256(_mm256_castps_si256(x), absm);
    const __m256i ay = _mm256_and_si256(_mm256_castps_si256(y), absm);
    const __m256i fin = _mm256_cmpgt_epi32(inf, ax);
    const __m256i nonfin_y = _mm256_cmpgt_epi32(ay, inf);
    const __m256i sat = _mm256_andnot_si256(nonfin_y, _mm256_cmpgt_epi32(ay, V->ovf_min_m1));
    const __m256i uf = _mm256_andnot_si256(_mm256_cmpeq_epi32(ax, zero), _mm256_cmpeq_epi32(mag, zero));
    A->sat = _mm256_sub_epi32(A->sat, sat);
    A->uf = _mm256_sub_epi32(A->uf, uf);
    A->nf = _mm256_sub_epi32(A->nf, nonfin_y);
    A->amax = _mm256_max_epi32(A->amax, _mm256_and_si256(ax, fin));
    const __m256 xf = _mm256_and_ps(x, _mm256_castsi256_ps(fin));
    const __m256 df = _mm256_and_ps(d, _mm256_castsi256_ps(fin));
    const __m256d x0 = _mm256_cvtps_pd(_mm256_castps256_ps128(xf));
    const __m256d x1 = _mm256_cvtps_pd(_mm256_extractf128_ps(xf, 1));
    const __m256d e0 = _mm256_sub_pd(x0, _mm256_cvtps_pd(_mm256_castps256_ps128(df)));
    const __m256d e1 = _mm256_sub_pd(x1, _mm256_cvtps_pd(_mm256_extractf128_ps(df, 1)));
    A->sig0 = _mm256_fmadd_pd(x0, x0, A->sig0);
    A->sig1 = _mm256_fmadd_pd(x1, x1, A->sig1);
    A->noi0 = _mm256_fmadd_pd(e0, e0, A->noi0);
    A->noi1 = _mm256_fmadd_pd(e1, e1, A->noi1);
    return d;
}

/* Elements [i, end) (whole vectors) at one scale: the codes and the dequantized values where
   codes and deq are not NULL, counted into A where it is not NULL. */
T_AVX2_INL void avx2_quant_run(amp_fp8 *codes, float *deq, const float *src, size_t i, size_t end,
                               __m256 vs, __m256 vsi, const struct vfmt *V, struct vstats *A)
{
    for (; i < end; i += 8) {
        __m256i c;
        const __m256 d = avx2_quant8(_mm256_loadu_ps(src + i), vs, vsi, V, codes ? &c : NULL, A);
        if (codes)
            avx2_store8(codes + i, c);
        if (deq)
            _mm256_storeu_ps(deq + i, d);
    }
}

/* avx2_quant_run compiled for each case of codes and A (without codes, no codes are made). */
T_AVX2_INL void avx2_quant_span(amp_fp8 *codes, float *deq, const float *src, size_t i, size_t end,
                                __m256 vs, __m256 vsi, const struct vfmt *V, struct vstats *A)
{
    if (codes && A)
        avx2_quant_run(codes, deq, src, i, end, vs, vsi, V, A);
    else if (codes)
        avx2_quant_run(codes, deq, src, i, end, vs, vsi, V, NULL);
    else if (A)
        avx2_quant_run(NULL, deq, src, i, end, vs, vsi, V, A);
    else
        avx2_quant_run(NULL, deq, src, i, end, vs, vsi, V, NULL);
}

T_AVX2 static void quant_avx2(amp_fp8 *codes, float *deq, const float *src, size_t n, float scale,
                              float scale_inv, const struct fp8_fmt *F, struct fp8_stats *stats)
{
    struct vfmt V;
    vfmt_init(&V, F);
    const __m256 vs = _mm256_set1_ps(scale), vsi = _mm256_set1_ps(scale_inv);
    const size_t nv = n & ~(size_t)7;
    size_t i = 0;
    if (!stats && !deq) {
        for (; i < nv; i += 8) {
            const __m256 y = _mm256_mul_ps(_mm256_loadu_ps(src + i), vs);
            avx2_store8(codes + i, avx2_encode(_mm256_castps_si256(y), &V));
        }
        if (i < n)
            quant_portable(codes + i, NULL, src + i, n - i, scale, scale_inv, F, NULL);
        return;
    }
    if (!stats) {
        avx2_quant_span(codes, deq, src, 0, nv, vs, vsi, &V, NULL);
        i = nv;
        if (i < n)
            quant_portable(codes ? codes + i : NULL, deq + i, src + i, n - i, scale, scale_inv, F,
                           NULL);
        return;
    }
    struct part p;
    part_init(&p);
    struct vstats A;
    vstats_init(&A);
    while (i < nv) {
        const size_t end = (nv - i > COUNT_CHUNK) ? i + COUNT_CHUNK : nv;
        avx2_quant_span(codes, deq, src, i, end, vs, vsi, &V, &A);
        i = end;
        vstats_flush_counts(&A, &p);
    }
    vstats_amax(&A, &p);
    _mm256_storeu_pd(p.sig, A.sig0);
    _mm256_storeu_pd(p.sig + 4, A.sig1);
    _mm256_storeu_pd(p.noise, A.noi0);
    _mm256_storeu_pd(p.noise + 4, A.noi1);
    /* The tail continues the same lanes (i is a multiple of 8 here). */
    quant_scalar(&p, codes, deq, src, i, n, scale, scale_inv, F);
    p.n = n;
    part_flush(&p, stats);
}

/* The end of a vectorised MX call: n elements' counts and amax from p, and the sums of squares,
   to which each block's were added in turn (as each block's part_flush adds them). */
static void mx_stats_finish(struct fp8_stats *stats, const struct part *p, size_t n,
                            double signal, double noise)
{
    stats->n += n;
    stats->saturated += p->sat;
    stats->underflow += p->uf;
    stats->nonfinite += p->nf;
    const float amf = f32_from_bits(p->amax_bits);
    if (!(stats->amax >= amf))
        stats->amax = amf;
    stats->signal = signal;
    stats->noise = noise;
}

/* lanes_sum of the four-lane halves lo (lanes 0-3) and hi (4-7), in its order. */
T_AVX2_INL double avx2_lanes_sum(__m256d lo, __m256d hi)
{
    const __m256d h = _mm256_hadd_pd(lo, hi); /* v0+v1, v4+v5, v2+v3, v6+v7 */
    const __m128d q = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    return _mm_cvtsd_f64(q) + _mm_cvtsd_f64(_mm_unpackhi_pd(q, q));
}

/* The largest |x| bit pattern of a whole block (MX_BLOCK floats), NaNs included when nan is
   set (floor), else left out (rceil: fmaxf ignores them). */
T_AVX2_INL uint32_t avx2_block_amax_bits(const float *x, int nan)
{
    const __m256i absm = _mm256_set1_epi32((int)F32_ABS_MASK);
    const __m256i lim = _mm256_set1_epi32((int)(F32_INF_BITS + 1u));
    __m256i m = _mm256_setzero_si256();
    for (int i = 0; i < MX_BLOCK; i += 8) {
        const __m256i a = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(x + i)), absm);
        m = _mm256_max_epi32(m, nan ? a : _mm256_and_si256(a, _mm256_cmpgt_epi32(lim, a)));
    }
    m = _mm256_max_epi32(m, _mm256_permute2x128_si256(m, m, 1));
    m = _mm256_max_epi32(m, _mm256_shuffle_epi32(m, 0x4E));
    m = _mm256_max_epi32(m, _mm256_shuffle_epi32(m, 0xB1));
    return (uint32_t)_mm256_cvtsi256_si32(m);
}

/* mx_run's rows for rows of whole blocks (k a multiple of MX_BLOCK), block by block as mx_run
   does: the same scales, outputs and stats (each block's sums of squares added in turn). */
T_AVX2 static void mx_run_avx2(amp_fp8 *dst, uint8_t *scales, float *deq, const float *src,
                               size_t rows, size_t k, const struct fp8_fmt *F,
                               enum mx_scale_rounding r, struct fp8_stats *stats)
{
    const size_t nb = k / MX_BLOCK;
    if (rows * nb == 0)
        return; /* (no block: the stats are not touched, as mx_run leaves them) */
    struct vfmt V;
    vfmt_init(&V, F);
    struct part p;
    part_init(&p);
    struct vstats A;
    vstats_init(&A);
    double signal = stats ? stats->signal : 0.0, noise = stats ? stats->noise : 0.0;
    size_t counted = 0; /* elements in A's counts */
    for (size_t blk = 0; blk < rows * nb; blk++) {
        const size_t off = blk * MX_BLOCK;
        const uint32_t am = avx2_block_amax_bits(src + off, r != MX_SCALE_RCEIL);
        const struct mx_block_scale s = (r == MX_SCALE_RCEIL)
                                            ? mx_scale_rceil_of(f32_from_bits(am), F->max)
                                            : mx_scale_floor_of(am, F->emax_elem);
        if (scales)
            scales[blk] = (uint8_t)s.e;
        const __m256 vs = _mm256_set1_ps(s.mul), vsi = _mm256_set1_ps(mx_e8m0_value(s.e));
        A.sig0 = A.sig1 = A.noi0 = A.noi1 = _mm256_setzero_pd();
        avx2_quant_span(dst, deq, src, off, off + MX_BLOCK, vs, vsi, &V, stats ? &A : NULL);
        if (!stats)
            continue;
        signal += avx2_lanes_sum(A.sig0, A.sig1);
        noise += avx2_lanes_sum(A.noi0, A.noi1);
        counted += MX_BLOCK;
        if (counted >= COUNT_CHUNK) {
            vstats_flush_counts(&A, &p);
            counted = 0;
        }
    }
    if (!stats)
        return;
    vstats_flush_counts(&A, &p);
    vstats_amax(&A, &p);
    mx_stats_finish(stats, &p, rows * k, signal, noise);
}

T_AVX2 static void dequant_avx2(float *dst, const amp_fp8 *src, size_t n, float scale_inv,
                                const struct fp8_fmt *F)
{
    struct vfmt V;
    vfmt_init(&V, F);
    const __m256 vsi = _mm256_set1_ps(scale_inv);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_mul_ps(avx2_decode(avx2_load8(src + i), &V), vsi));
    for (; i < n; i++)
        dst[i] = f32_from_bits(fp8_decode(src[i], F)) * scale_inv;
}

/* max |x| over the finite elements, eight lanes at a time (max is exact: the same result). */
T_AVX2 static float amax_avx2(const float *src, size_t n)
{
    const __m256i absm = _mm256_set1_epi32((int)F32_ABS_MASK);
    const __m256i inf = _mm256_set1_epi32((int)F32_INF_BITS);
    __m256i m = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i a = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(src + i)), absm);
        m = _mm256_max_epi32(m, _mm256_and_si256(a, _mm256_cmpgt_epi32(inf, a)));
    }
    uint32_t t[8];
    _mm256_storeu_si256((__m256i *)t, m);
    float r = amax_portable(src + i, n - i);
    for (int l = 0; l < 8; l++)
        r = f32_from_bits(t[l]) > r ? f32_from_bits(t[l]) : r;
    return r;
}

/* amax_bf16_portable sixteen lanes at a time. */
T_AVX2 static float amax_bf16_avx2(const uint16_t *src, size_t n)
{
    const __m256i absm = _mm256_set1_epi16(0x7FFF), inf = _mm256_set1_epi16(0x7F80);
    __m256i m = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i a = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(src + i)), absm);
        m = _mm256_max_epu16(m, _mm256_and_si256(a, _mm256_cmpgt_epi16(inf, a)));
    }
    uint16_t t[16];
    _mm256_storeu_si256((__m256i *)t, m);
    float r = amax_bf16_portable(src + i, n - i);
    for (int l = 0; l < 16; l++)
        r = f32_from_bits((uint32_t)t[l] << 16) > r ? f32_from_bits((uint32_t)t[l] << 16) : r;
    return r;
}

/* ---- AVX-512 (F, with BW and VL for the BF16 loads): the fake quantization (no codes) in
 * sixteen lanes, avx2_round's steps ---- */

#define T_512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
#define T_512_INL                                                                             \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma"), always_inline)) static inline

struct zfmt {
    __m512i shift, halfm1, keep, norm_min_m1, ovf_min_m1, max_bits;
    __m512 quantum, inv_quantum;
};

T_512_INL void zfmt_init(struct zfmt *Z, const struct fp8_fmt *F)
{
    Z->shift = _mm512_set1_epi32((int)F->shift);
    Z->halfm1 = _mm512_set1_epi32((int)((1u << (F->shift - 1)) - 1u));
    Z->keep = _mm512_set1_epi32((int)~((1u << F->shift) - 1u));
    Z->norm_min_m1 = _mm512_set1_epi32((int)(F->norm_min - 1u));
    Z->ovf_min_m1 = _mm512_set1_epi32((int)(F->ovf_min - 1u));
    Z->max_bits = _mm512_set1_epi32((int)F->max_bits);
    Z->quantum = _mm512_set1_ps(F->quantum);
    Z->inv_quantum = _mm512_set1_ps(1.0f / F->quantum);
}

/* avx2_round in sixteen lanes. */
T_512_INL __m512i avx512_round(__m512i u, const struct zfmt *Z, __m512i *mag)
{
    const __m512i one = _mm512_set1_epi32(1), absm = _mm512_set1_epi32((int)F32_ABS_MASK);
    const __m512i a = _mm512_and_si512(u, absm);
    const __m512i sign = _mm512_andnot_si512(absm, u);
    const __m512i lsb = _mm512_and_si512(_mm512_srlv_epi32(a, Z->shift), one);
    const __m512i normal = _mm512_and_si512(_mm512_add_epi32(_mm512_add_epi32(a, Z->halfm1), lsb), Z->keep);
    /* the subnormal lanes as avx2_sub_round: (|x| / quantum) rounded to even by the
       instruction's rounding mode, times quantum */
    const __m512 q = _mm512_mul_ps(_mm512_castsi512_ps(a), Z->inv_quantum);
    const __m512i subv = _mm512_castps_si512(
        _mm512_mul_ps(_mm512_roundscale_ps(q, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), Z->quantum));
    __m512i r = _mm512_mask_blend_epi32(_mm512_cmpgt_epi32_mask(a, Z->norm_min_m1), subv, normal);
    /* (saturation: round to nearest is monotonic in the bits, and the magnitudes from ovf_min
       up, infinities and NaNs included, round above max_bits, those below it to at most it; so
       the clip is a minimum) */
    r = _mm512_min_epu32(r, Z->max_bits);
    *mag = r;
    return _mm512_mask_blend_epi32(_mm512_cmpgt_epi32_mask(a, _mm512_set1_epi32((int)F32_INF_BITS)),
                                   _mm512_or_si512(r, sign), _mm512_set1_epi32((int)F32_QNAN_BITS));
}

/* The stats of the sixteen-lane loop: per-lane counts, amax bits, and the sums of squares in
   eight double lanes (element i in lane i % 8: the lower eight floats, then the upper eight). */
struct zstats {
    __m512i sat, uf, nf, amax;
    __m512d sig, noi;
};

/* The counts of sixteen elements x (y = x * scale, d dequantized, mag the rounded |y| bits) into
   A, and the finite x and x - d in double, the lower eight lanes (x0, e0) and the upper (x1,
   e1). */
T_512_INL void avx512_count16(__m512 x, __m512 y, __m512 d, __m512i mag, const struct zfmt *Z,
                              struct zstats *A, __m512d *x0, __m512d *x1, __m512d *e0,
                              __m512d *e1)
{
    const __m512i one = _mm512_set1_epi32(1), absm = _mm512_set1_epi32((int)F32_ABS_MASK);
    const __m512i inf = _mm512_set1_epi32((int)F32_INF_BITS);
    const __m512i ax = _mm512_and_si512(_mm512_castps_si512(x), absm);
    const __m512i ay = _mm512_and_si512(_mm512_castps_si512(y), absm);
    const __mmask16 fin = _mm512_cmplt_epi32_mask(ax, inf);
    const __mmask16 nonfin_y = _mm512_cmpgt_epi32_mask(ay, inf);
    const __mmask16 sat = _mm512_mask_cmpgt_epi32_mask((__mmask16)~nonfin_y, ay, Z->ovf_min_m1);
    const __mmask16 uf = _mm512_mask_cmpeq_epi32_mask(_mm512_test_epi32_mask(ax, ax), mag,
                                                       _mm512_setzero_si512());
    A->sat = _mm512_mask_add_epi32(A->sat, sat, A->sat, one);
    A->uf = _mm512_mask_add_epi32(A->uf, uf, A->uf, one);
    A->nf = _mm512_mask_add_epi32(A->nf, nonfin_y, A->nf, one);
    A->amax = _mm512_mask_max_epi32(A->amax, fin, A->amax, ax);
    __m512 xf = x, df = d;
    if (fin != 0xFFFF) { /* (rare: non-finite lanes count nothing into the sums) */
        xf = _mm512_maskz_mov_ps(fin, x);
        df = _mm512_maskz_mov_ps(fin, d);
    }
    *x0 = _mm512_cvtps_pd(_mm512_castps512_ps256(xf));
    *x1 = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(xf), 1)));
    if (!sat) {
        /* Unsaturated, d is x rounded (within a factor of 2 of it, or 0, or both subnormal), so
           x - d is exact in FP32 (Sterbenz) and its double the double difference. */
        const __m512 ef = _mm512_sub_ps(xf, df);
        *e0 = _mm512_cvtps_pd(_mm512_castps512_ps256(ef));
        *e1 = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(ef), 1)));
        return;
    }
    *e0 = _mm512_sub_pd(*x0, _mm512_cvtps_pd(_mm512_castps512_ps256(df)));
    *e1 = _mm512_sub_pd(*x1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(df), 1))));
}

/* Sixteen elements x: the dequantized fp8(x * scale) * scale_inv (scale, scale_inv: vs, vsi, per
   lane), counted into A if not NULL (the sums of squares in A's eight double lanes). */
T_512_INL __m512 avx512_quant16(__m512 x, __m512 vs, __m512 vsi, const struct zfmt *Z,
                                struct zstats *A)
{
    const __m512 y = _mm512_mul_ps(x, vs);
    __m512i mag;
    const __m512 d = _mm512_mul_ps(_mm512_castsi512_ps(avx512_round(_mm512_castps_si512(y), Z, &mag)), vsi);
    if (!A)
        return d;
    __m512d x0, x1, e0, e1;
    avx512_count16(x, y, d, mag, Z, A, &x0, &x1, &e0, &e1);
    A->sig = _mm512_fmadd_pd(x1, x1, _mm512_fmadd_pd(x0, x0, A->sig));
    A->noi = _mm512_fmadd_pd(e1, e1, _mm512_fmadd_pd(e0, e0, A->noi));
    return d;
}

T_512_INL void zstats_flush_counts(struct zstats *A, struct part *p)
{
    p->sat += (uint32_t)_mm512_reduce_add_epi32(A->sat);
    p->uf += (uint32_t)_mm512_reduce_add_epi32(A->uf);
    p->nf += (uint32_t)_mm512_reduce_add_epi32(A->nf);
    A->sat = A->uf = A->nf = _mm512_setzero_si512();
}

/* Sixteen elements at src + i: FP32, or BF16 widened (exactly) where src16 is not NULL. */
T_512_INL __m512 avx512_load16(const float *src, const uint16_t *src16, size_t i)
{
    if (!src16)
        return _mm512_loadu_ps(src + i);
    const __m256i h = _mm256_loadu_si256((const __m256i *)(src16 + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* Elements [i, end) (whole vectors) at one scale into deq, counted into A if not NULL. */
T_512_INL void avx512_quant_run(float *deq, const float *src, const uint16_t *src16, size_t i,
                                size_t end, __m512 vs, __m512 vsi, const struct zfmt *Z,
                                struct zstats *A)
{
    for (; i < end; i += 16)
        _mm512_storeu_ps(deq + i, avx512_quant16(avx512_load16(src, src16, i), vs, vsi, Z, A));
}

/* quant_avx2 without codes (deq not NULL), sixteen lanes at a time, from the FP32 src or (src16
   not NULL) the BF16 src16, whose tail is widened into deq and quantized there. */
T_512_INL void fake_quant_avx512_from(float *deq, const float *src, const uint16_t *src16,
                                      size_t n, float scale, float scale_inv,
                                      const struct fp8_fmt *F, struct fp8_stats *stats)
{
    struct zfmt Z;
    zfmt_init(&Z, F);
    const __m512 vs = _mm512_set1_ps(scale), vsi = _mm512_set1_ps(scale_inv);
    const size_t nv = n & ~(size_t)15;
    size_t i = 0;
    if (src16) {
        for (size_t t = nv; t < n; t++)
            deq[t] = f32_from_bits((uint32_t)src16[t] << 16);
        src = deq;
    }
    if (!stats) {
        avx512_quant_run(deq, src, src16, 0, nv, vs, vsi, &Z, NULL);
        if (nv < n)
            quant_portable(NULL, deq + nv, src + nv, n - nv, scale, scale_inv, F, NULL);
        return;
    }
    struct part p;
    part_init(&p);
    struct zstats A = { _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                        _mm512_setzero_si512(), _mm512_setzero_pd(), _mm512_setzero_pd() };
    while (i < nv) {
        const size_t end = (nv - i > COUNT_CHUNK) ? i + COUNT_CHUNK : nv;
        avx512_quant_run(deq, src, src16, i, end, vs, vsi, &Z, &A);
        i = end;
        zstats_flush_counts(&A, &p);
    }
    p.amax_bits = (uint32_t)_mm512_reduce_max_epu32(A.amax);
    _mm512_storeu_pd(p.sig, A.sig);
    _mm512_storeu_pd(p.noise, A.noi);
    /* The tail continues the same lanes (i is a multiple of 16 here). */
    quant_scalar(&p, NULL, deq, src, i, n, scale, scale_inv, F);
    p.n = n;
    part_flush(&p, stats);
}

T_512 static void fake_quant_avx512(float *deq, const float *src, size_t n, float scale,
                                    float scale_inv, const struct fp8_fmt *F,
                                    struct fp8_stats *stats)
{
    fake_quant_avx512_from(deq, src, NULL, n, scale, scale_inv, F, stats);
}

T_512 static void fake_quant_bf16_avx512(float *deq, const uint16_t *src, size_t n, float scale,
                                         float scale_inv, const struct fp8_fmt *F,
                                         struct fp8_stats *stats)
{
    fake_quant_avx512_from(deq, NULL, src, n, scale, scale_inv, F, stats);
}

/* The largest |x| bit pattern of each lane, NaNs included when nan is set (floor), else left
   out (rceil), with m. */
T_512_INL __m512i avx512_amax_bits(__m512i m, __m512 x, int nan)
{
    const __m512i a = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)F32_ABS_MASK));
    const __m512i lim = _mm512_set1_epi32((int)(F32_INF_BITS + 1u));
    return _mm512_max_epi32(m, nan ? a : _mm512_maskz_mov_epi32(_mm512_cmplt_epi32_mask(a, lim), a));
}

/* mx_scale_rceil_of (r MX_SCALE_RCEIL) or mx_scale_floor_of in sixteen lanes, from each lane's
   amax bits: the element multiplier (*mul) and the scale's value (*inv, mx_e8m0_value). */
T_512_INL void avx512_mx_scales(__m512i am, enum mx_scale_rounding r, const struct fp8_fmt *F,
                                __m512 *mul, __m512 *inv)
{
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi32(1);
    const __m512i inf = _mm512_set1_epi32((int)F32_INF_BITS);
    __m512i e;
    if (r == MX_SCALE_RCEIL) {
        const float rcp = (float)(1.0 / (double)F->max);
        const __m512i v = _mm512_castps_si512(_mm512_mul_ps(_mm512_castsi512_ps(am), _mm512_set1_ps(rcp)));
        e = _mm512_srli_epi32(v, 23);
        const __m512i m = _mm512_and_si512(v, _mm512_set1_epi32(0x007FFFFF));
        const __mmask16 up = _mm512_cmpgt_epi32_mask(m, zero) &
                             _mm512_cmpneq_epi32_mask(e, _mm512_set1_epi32(0xFE)) &
                             ~(_mm512_cmpeq_epi32_mask(e, zero) &
                               _mm512_cmple_epi32_mask(m, _mm512_set1_epi32(0x00400000)));
        e = _mm512_mask_add_epi32(e, up, e, one);
        e = _mm512_mask_mov_epi32(e, _mm512_cmpeq_epi32_mask(v, zero), zero);
        e = _mm512_mask_mov_epi32(e, _mm512_cmpge_epu32_mask(v, inf), _mm512_set1_epi32(0xFE));
        const __m512i mb = _mm512_slli_epi32(_mm512_sub_epi32(_mm512_set1_epi32(254), e), 23);
        *mul = _mm512_castsi512_ps(_mm512_mask_mov_epi32(mb, _mm512_cmpeq_epi32_mask(e, zero),
                                                         _mm512_castps_si512(_mm512_set1_ps(1.0f))));
    } else {
        const int emax = F->emax_elem;
        /* floor(log2 amax): the exponent field, or a subnormal's top bit (exact as an FP32) */
        const __m512i top = _mm512_sub_epi32(
            _mm512_srli_epi32(_mm512_castps_si512(_mm512_cvtepi32_ps(am)), 23), _mm512_set1_epi32(127));
        __m512i lg = _mm512_mask_blend_epi32(_mm512_cmpge_epu32_mask(am, _mm512_set1_epi32(0x00800000)),
                                             _mm512_sub_epi32(top, _mm512_set1_epi32(149)),
                                             _mm512_sub_epi32(_mm512_srli_epi32(am, 23), _mm512_set1_epi32(127)));
        lg = _mm512_mask_mov_epi32(lg, _mm512_cmpeq_epi32_mask(am, zero), _mm512_set1_epi32(-127 - emax));
        const __m512i E = _mm512_max_epi32(_mm512_sub_epi32(lg, _mm512_set1_epi32(emax)),
                                           _mm512_set1_epi32(-127));
        e = _mm512_add_epi32(E, _mm512_set1_epi32(127));
        __m512i mb = _mm512_slli_epi32(_mm512_sub_epi32(_mm512_set1_epi32(127), E), 23);
        const __mmask16 nan = _mm512_cmpge_epu32_mask(am, _mm512_set1_epi32((int)F32_INF_BITS));
        e = _mm512_mask_mov_epi32(e, nan, _mm512_set1_epi32(0xFF));
        mb = _mm512_mask_mov_epi32(mb, nan, _mm512_set1_epi32((int)F32_QNAN_BITS));
        *mul = _mm512_castsi512_ps(mb);
    }
    __m512i vb = _mm512_slli_epi32(e, 23);
    vb = _mm512_mask_mov_epi32(vb, _mm512_cmpeq_epi32_mask(e, zero), _mm512_set1_epi32(0x00400000));
    vb = _mm512_mask_mov_epi32(vb, _mm512_cmpeq_epi32_mask(e, _mm512_set1_epi32(0xFF)),
                               _mm512_set1_epi32((int)F32_QNAN_BITS));
    *inv = _mm512_castsi512_ps(vb);
}

/* The lanes of a block of len <= 32 floats: its first sixteen (*m0) and the next (*m1). */
T_512_INL void mx_block_masks(size_t len, __mmask16 *m0, __mmask16 *m1)
{
    *m0 = len >= 16 ? 0xFFFF : (__mmask16)((1u << len) - 1u);
    *m1 = len >= 32 ? 0xFFFF : len > 16 ? (__mmask16)((1u << (len - 16)) - 1u) : 0;
}

/* lanes_sum of eight blocks' eight-lane sums v[0..7] at once, in its order, into out[0..7]. */
T_512_INL void avx512_lanes_sum8(const __m512d v[8], double out[8])
{
    __m512d s1[4], s2[2];
    for (int q = 0; q < 4; q++) /* v0 + v1, v2 + v3, ... of blocks 2q and 2q + 1 */
        s1[q] = _mm512_add_pd(_mm512_unpacklo_pd(v[2 * q], v[2 * q + 1]),
                              _mm512_unpackhi_pd(v[2 * q], v[2 * q + 1]));
    for (int h = 0; h < 2; h++) /* (v0 + v1) + (v2 + v3), (v4 + v5) + (v6 + v7) */
        s2[h] = _mm512_add_pd(_mm512_shuffle_f64x2(s1[2 * h], s1[2 * h + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                              _mm512_shuffle_f64x2(s1[2 * h], s1[2 * h + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    _mm512_storeu_pd(out, _mm512_add_pd(_mm512_shuffle_f64x2(s2[0], s2[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                        _mm512_shuffle_f64x2(s2[0], s2[1], _MM_SHUFFLE(3, 1, 3, 1))));
}

/* The first n of eight buffered blocks' sums added to *signal and *noise in block order. */
T_512_INL void avx512_add_block_sums(const __m512d sg[8], const __m512d ns[8], int n,
                                     double *signal, double *noise)
{
    double ts[8], tn[8];
    avx512_lanes_sum8(sg, ts);
    avx512_lanes_sum8(ns, tn);
    for (int b = 0; b < n; b++) {
        *signal += ts[b];
        *noise += tn[b];
    }
}

/* What an AVX-512 MX call keeps of its stats: the per-lane counts in a struct zstats of the
   caller's own (a local, so that it stays in registers; flushed into p before the counts can
   overflow), the sums of squares continued from the stats' (each block's added in turn). */
struct mx_acc {
    struct zfmt Z;
    struct part p;
    double signal, noise;
    size_t counted; /* elements in the counts */
};

T_512_INL void mx_acc_init(struct mx_acc *m, struct zstats *A, const struct fp8_fmt *F,
                           const struct fp8_stats *stats)
{
    zfmt_init(&m->Z, F);
    part_init(&m->p);
    *A = (struct zstats){ _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                          _mm512_setzero_si512(), _mm512_setzero_pd(), _mm512_setzero_pd() };
    m->signal = stats ? stats->signal : 0.0;
    m->noise = stats ? stats->noise : 0.0;
    m->counted = 0;
}

/* n more elements (at most) in A's per-lane counts. */
T_512_INL void mx_acc_counted(struct mx_acc *m, struct zstats *A, size_t n)
{
    m->counted += n;
    if (m->counted >= COUNT_CHUNK) {
        zstats_flush_counts(A, &m->p);
        m->counted = 0;
    }
}

/* The call's n elements into the stats. */
T_512_INL void mx_acc_finish(struct mx_acc *m, struct zstats *A, struct fp8_stats *stats,
                             size_t n)
{
    zstats_flush_counts(A, &m->p);
    m->p.amax_bits = (uint32_t)_mm512_reduce_max_epu32(A->amax);
    mx_stats_finish(stats, &m->p, n, m->signal, m->noise);
}

/* mx_run_avx2 without codes or scales (deq not NULL), sixteen lanes at a time; a row's last
   partial block in masked lanes (zeros at zero scales: they add nothing to any count or sum). */
/* 16 elements (masked) of an FP32 or a BF16 source, as FP32 (BF16 widened: exact). */
T_512_INL __m512 avx512_load_src(__mmask16 m, const void *src, size_t off, int bf16)
{
    if (bf16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)src + off)), 16));
    return _mm512_maskz_loadu_ps(m, (const float *)src + off);
}

T_512_INL void mx_fake_avx512_of(float *deq, const void *src, const int bf16, size_t rows,
                                 size_t k, const struct fp8_fmt *F, enum mx_scale_rounding r,
                                 struct fp8_stats *stats)
{
    const size_t nb = (k + MX_BLOCK - 1) / MX_BLOCK;
    if (rows * nb == 0)
        return;
    struct mx_acc M;
    struct zstats A;
    mx_acc_init(&M, &A, F, stats);
    const int nan = r != MX_SCALE_RCEIL;
    /* Sixteen blocks' scales at a time (one vector of amax bits), then their elements. */
    uint32_t amb[16];
    float muls[16], invs[16];
    __m512d bsg[8], bns[8]; /* eight blocks' sums, added to signal and noise eight at a time */
    int nbuf = 0;
    for (int t = 0; t < 8; t++)
        bsg[t] = bns[t] = _mm512_setzero_pd();
    for (size_t row = 0; row < rows; row++)
        for (size_t b = 0; b < nb; b++) {
            const size_t off = row * k + b * MX_BLOCK;
            const size_t len = k - b * MX_BLOCK < MX_BLOCK ? k - b * MX_BLOCK : MX_BLOCK;
            __mmask16 m0, m1;
            mx_block_masks(len, &m0, &m1);
            if (b % 16 == 0) {
                for (size_t t = 0; t < 16 && b + t < nb; t++) {
                    const size_t o = off + t * MX_BLOCK, l = k - (b + t) * MX_BLOCK;
                    __mmask16 n0, n1;
                    mx_block_masks(l, &n0, &n1);
                    __m512i mx = _mm512_setzero_si512();
                    mx = avx512_amax_bits(mx, avx512_load_src(n0, src, o, bf16), nan);
                    mx = avx512_amax_bits(mx, avx512_load_src(n1, src, o + 16, bf16), nan);
                    amb[t] = (uint32_t)_mm512_reduce_max_epu32(mx);
                }
                __m512 vm, vi;
                avx512_mx_scales(_mm512_loadu_si512(amb), r, F, &vm, &vi);
                _mm512_storeu_ps(muls, vm);
                _mm512_storeu_ps(invs, vi);
            }
            const __m512 x0 = avx512_load_src(m0, src, off, bf16);
            const __m512 x1 = avx512_load_src(m1, src, off + 16, bf16);
            const __m512 vs = _mm512_set1_ps(muls[b % 16]), vsi = _mm512_set1_ps(invs[b % 16]);
            /* (lanes past the block: zero scales, so that a NaN scale makes no NaN there) */
            const __m512 s0 = _mm512_maskz_mov_ps(m0, vs), si0 = _mm512_maskz_mov_ps(m0, vsi);
            const __m512 s1 = _mm512_maskz_mov_ps(m1, vs), si1 = _mm512_maskz_mov_ps(m1, vsi);
            if (!stats) {
                _mm512_mask_storeu_ps(deq + off, m0, avx512_quant16(x0, s0, si0, &M.Z, NULL));
                _mm512_mask_storeu_ps(deq + off + 16, m1, avx512_quant16(x1, s1, si1, &M.Z, NULL));
                continue;
            }
            A.sig = A.noi = _mm512_setzero_pd();
            _mm512_mask_storeu_ps(deq + off, m0, avx512_quant16(x0, s0, si0, &M.Z, &A));
            _mm512_mask_storeu_ps(deq + off + 16, m1, avx512_quant16(x1, s1, si1, &M.Z, &A));
            bsg[nbuf] = A.sig;
            bns[nbuf] = A.noi;
            if (++nbuf == 8) {
                avx512_add_block_sums(bsg, bns, 8, &M.signal, &M.noise);
                nbuf = 0;
            }
            mx_acc_counted(&M, &A, MX_BLOCK);
        }
    if (!stats)
        return;
    avx512_add_block_sums(bsg, bns, nbuf, &M.signal, &M.noise);
    mx_acc_finish(&M, &A, stats, rows * k);
}

T_512 static void mx_fake_avx512(float *deq, const float *src, size_t rows, size_t k,
                                 const struct fp8_fmt *F, enum mx_scale_rounding r,
                                 struct fp8_stats *stats)
{
    mx_fake_avx512_of(deq, src, 0, rows, k, F, r, stats);
}

/* The same from BF16 values, read where they lie. */
T_512 static void mx_fake_bf16_avx512(float *deq, const amp_bf16 *src, size_t rows, size_t k,
                                      const struct fp8_fmt *F, enum mx_scale_rounding r,
                                      struct fp8_stats *stats)
{
    mx_fake_avx512_of(deq, src, 1, rows, k, F, r, stats);
}

/* lanes_sum's order over the eight partial sums v[q][h] of eight lanes' blocks. */
T_512_INL __m512d avx512_tree8(__m512d v[8][2], int h)
{
    return _mm512_add_pd(_mm512_add_pd(_mm512_add_pd(v[0][h], v[1][h]), _mm512_add_pd(v[2][h], v[3][h])),
                         _mm512_add_pd(_mm512_add_pd(v[4][h], v[5][h]), _mm512_add_pd(v[6][h], v[7][h])));
}

/* mx_run_layout's fake quantization where inner > 1, sixteen blocks (neighbouring columns) at
   a time, one per lane: each lane's amax and scale, each element row by row, each block's sums
   of squares in eight partial sums per lane (element j in sum j % 8, as the row code's lanes),
   combined in lanes_sum's order and added to the stats block by block in the layout's order:
   the bits of the portable path. */
T_512_INL void mx_fake_cols_avx512_of(float *deq, const void *src, const int bf16,
                                      struct mx_layout L, const struct fp8_fmt *F,
                                      enum mx_scale_rounding r, struct fp8_stats *stats)
{
    const size_t nb = (L.len + MX_BLOCK - 1) / MX_BLOCK, I = L.inner;
    if (L.outer * nb * I == 0)
        return;
    struct mx_acc M;
    struct zstats A;
    mx_acc_init(&M, &A, F, stats);
    const int nan = r != MX_SCALE_RCEIL;
    for (size_t o = 0; o < L.outer; o++)
        for (size_t b = 0; b < nb; b++) {
            const size_t blen = L.len - b * MX_BLOCK < MX_BLOCK ? L.len - b * MX_BLOCK : MX_BLOCK;
            const size_t in = (o * L.len + b * MX_BLOCK) * I; /* src's offset */
            float *out = deq + (o * L.len + b * MX_BLOCK) * I;
            for (size_t i0 = 0; i0 < I; i0 += 16) {
                const size_t w = I - i0 < 16 ? I - i0 : 16;
                const __mmask16 lanes = w == 16 ? 0xFFFF : (__mmask16)((1u << w) - 1u);
                __m512i am = _mm512_setzero_si512();
                for (size_t j = 0; j < blen; j++)
                    am = avx512_amax_bits(am, avx512_load_src(lanes, src, in + j * I + i0, bf16), nan);
                __m512 vs, vsi;
                avx512_mx_scales(am, r, F, &vs, &vsi);
                if (!stats) {
                    for (size_t j = 0; j < blen; j++)
                        _mm512_mask_storeu_ps(out + j * I + i0, lanes,
                                              avx512_quant16(avx512_load_src(lanes, src, in + j * I + i0, bf16),
                                                             vs, vsi, &M.Z, NULL));
                    continue;
                }
                __m512d sg[8][2], ns[8][2];
                for (int q = 0; q < 8; q++)
                    sg[q][0] = sg[q][1] = ns[q][0] = ns[q][1] = _mm512_setzero_pd();
                for (size_t j = 0; j < blen; j++) {
                    const __m512 x = avx512_load_src(lanes, src, in + j * I + i0, bf16);
                    const __m512 y = _mm512_mul_ps(x, vs);
                    __m512i mag;
                    const __m512 d = _mm512_mul_ps(
                        _mm512_castsi512_ps(avx512_round(_mm512_castps_si512(y), &M.Z, &mag)), vsi);
                    _mm512_mask_storeu_ps(out + j * I + i0, lanes, d);
                    __m512d x0, x1, e0, e1;
                    avx512_count16(x, y, d, mag, &M.Z, &A, &x0, &x1, &e0, &e1);
                    const size_t q = j & 7u;
                    sg[q][0] = _mm512_fmadd_pd(x0, x0, sg[q][0]);
                    sg[q][1] = _mm512_fmadd_pd(x1, x1, sg[q][1]);
                    ns[q][0] = _mm512_fmadd_pd(e0, e0, ns[q][0]);
                    ns[q][1] = _mm512_fmadd_pd(e1, e1, ns[q][1]);
                }
                double ts[16], tn[16];
                for (int h = 0; h < 2; h++) {
                    _mm512_storeu_pd(ts + 8 * h, avx512_tree8(sg, h));
                    _mm512_storeu_pd(tn + 8 * h, avx512_tree8(ns, h));
                }
                for (size_t c = 0; c < w; c++) {
                    M.signal += ts[c];
                    M.noise += tn[c];
                }
                mx_acc_counted(&M, &A, blen * 16);
            }
        }
    if (!stats)
        return;
    mx_acc_finish(&M, &A, stats, L.outer * L.len * I);
}

T_512 static void mx_fake_cols_avx512(float *deq, const float *src, struct mx_layout L,
                                      const struct fp8_fmt *F, enum mx_scale_rounding r,
                                      struct fp8_stats *stats)
{
    mx_fake_cols_avx512_of(deq, src, 0, L, F, r, stats);
}

T_512 static void mx_fake_cols_bf16_avx512(float *deq, const amp_bf16 *src, struct mx_layout L,
                                           const struct fp8_fmt *F, enum mx_scale_rounding r,
                                           struct fp8_stats *stats)
{
    mx_fake_cols_avx512_of(deq, src, 1, L, F, r, stats);
}

#endif /* FP8_X86 */

static void dequant_portable(float *dst, const amp_fp8 *src, size_t n, float scale_inv,
                             const struct fp8_fmt *F)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = f32_from_bits(fp8_decode(src[i], F)) * scale_inv;
}

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                 */
/* ------------------------------------------------------------------------ */

enum { P_PORTABLE = 0, P_AVX2 = 1, P_AVX512 = 2, P_UNSET = -1 };

static _Atomic int g_path = P_UNSET;

static int cpu_can(int path)
{
    if (path == P_PORTABLE)
        return 1;
#if FP8_X86
    __builtin_cpu_init();
    if (path == P_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (path == P_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && cpu_can(P_AVX2);
#endif
    return 0;
}

/* The widest path this CPU runs. */
static int best_path(void)
{
    return cpu_can(P_AVX512) ? P_AVX512 : cpu_can(P_AVX2) ? P_AVX2 : P_PORTABLE;
}

static inline int fp8_path(void)
{
    int p = atomic_load_explicit(&g_path, memory_order_relaxed);
    if (p == P_UNSET) {
        p = best_path();
        atomic_store_explicit(&g_path, p, memory_order_relaxed);
    }
    return p;
}

static const char *const PATH_NAMES[] = {[P_PORTABLE] = "portable", [P_AVX2] = "avx2",
                                         [P_AVX512] = "avx512"};

const char *fp8_fast_path(void)
{
    return PATH_NAMES[fp8_path()];
}

int fp8_set_fast_path(const char *name)
{
    int p = (!name || strcmp(name, "auto") == 0) ? best_path() : -1;
    for (int i = 0; p < 0 && name && i < (int)(sizeof PATH_NAMES / sizeof PATH_NAMES[0]); i++)
        p = strcmp(name, PATH_NAMES[i]) == 0 ? i : -1;
    if (p < 0 || !cpu_can(p))
        return -1;
    atomic_store_explicit(&g_path, p, memory_order_relaxed);
    return 0;
}

float fp8_amax(const float *src, size_t n)
{
#if FP8_X86
    if (fp8_path() >= P_AVX2)
        return amax_avx2(src, n);
#endif
    return amax_portable(src, n);
}

float fp8_amax_bf16(const uint16_t *src, size_t n)
{
#if FP8_X86
    if (fp8_path() >= P_AVX2)
        return amax_bf16_avx2(src, n);
#endif
    return amax_bf16_portable(src, n);
}

static void quant(amp_fp8 *codes, float *deq, const float *src, size_t n, float scale,
                  float scale_inv, const struct fp8_fmt *F, struct fp8_stats *stats)
{
#if FP8_X86
    const int path = fp8_path();
    if (path == P_AVX512 && !codes && deq) {
        fake_quant_avx512(deq, src, n, scale, scale_inv, F, stats);
        return;
    }
    if (path >= P_AVX2) {
        quant_avx2(codes, deq, src, n, scale, scale_inv, F, stats);
        return;
    }
#endif
    quant_portable(codes, deq, src, n, scale, scale_inv, F, stats);
}

/* ------------------------------------------------------------------------ */
/* Per-tensor scaling                                                       */
/* ------------------------------------------------------------------------ */

/* The noise of fp8_quantize_array is measured against q * (1 / scale), the
   dequantization with Transformer Engine's scale_inv = 1 / scale. */
void fp8_quantize_array(amp_fp8 *dst, const float *src, size_t n, float scale,
                        enum fp8_format f, struct fp8_stats *stats)
{
    quant(dst, NULL, src, n, scale, 1.0f / scale, fmt_of(f), stats);
}

void fp8_quantize_array_portable(amp_fp8 *dst, const float *src, size_t n, float scale,
                                 enum fp8_format f, struct fp8_stats *stats)
{
    quant_portable(dst, NULL, src, n, scale, 1.0f / scale, fmt_of(f), stats);
}

void fp8_dequantize_array(float *dst, const amp_fp8 *src, size_t n, float scale_inv,
                          enum fp8_format f)
{
#if FP8_X86
    if (fp8_path() >= P_AVX2) {
        dequant_avx2(dst, src, n, scale_inv, fmt_of(f));
        return;
    }
#endif
    dequant_portable(dst, src, n, scale_inv, fmt_of(f));
}

void fp8_fake_quantize_array(float *dst, const float *src, size_t n, float scale,
                             float scale_inv, enum fp8_format f, struct fp8_stats *stats)
{
    quant(NULL, dst, src, n, scale, scale_inv, fmt_of(f), stats);
}

void fp8_fake_quantize_bf16_array(float *dst, const uint16_t *src, size_t n, float scale,
                                  float scale_inv, enum fp8_format f, struct fp8_stats *stats)
{
#if FP8_X86
    if (fp8_path() == P_AVX512) {
        fake_quant_bf16_avx512(dst, src, n, scale, scale_inv, fmt_of(f), stats);
        return;
    }
#endif
    bf16_to_f32_array(dst, src, n);
    quant(NULL, dst, dst, n, scale, scale_inv, fmt_of(f), stats);
}

void fp8_fake_quantize_array_portable(float *dst, const float *src, size_t n, float scale,
                                      float scale_inv, enum fp8_format f,
                                      struct fp8_stats *stats)
{
    quant_portable(NULL, dst, src, n, scale, scale_inv, fmt_of(f), stats);
}

/* ------------------------------------------------------------------------ */
/* MX block scaling                                                         */
/* ------------------------------------------------------------------------ */

/* One block's scale by the rules of fp8_scaling.h, from its amax. */
static struct mx_block_scale mx_scale_floor(const float *x, size_t len, const struct fp8_fmt *F)
{
    uint32_t am = 0;
    for (size_t i = 0; i < len; i++) {
        const uint32_t a = f32_bits(x[i]) & F32_ABS_MASK;
        am = a > am ? a : am;
    }
    return mx_scale_floor_of(am, F->emax_elem);
}

/* (fmaxf's rule, NaNs ignored, on the bits: libm's fmaxf returns a NaN for a signaling NaN.) */
static struct mx_block_scale mx_scale_rceil(const float *x, size_t len, const struct fp8_fmt *F)
{
    uint32_t am = 0;
    for (size_t i = 0; i < len; i++) {
        const uint32_t a = f32_bits(x[i]) & F32_ABS_MASK;
        am = (a > am && a <= F32_INF_BITS) ? a : am;
    }
    return mx_scale_rceil_of(f32_from_bits(am), F->max);
}

static void mx_run(amp_fp8 *dst, uint8_t *scales, float *deq, const float *src, size_t rows,
                   size_t k, enum fp8_format f, enum mx_scale_rounding r, struct fp8_stats *stats)
{
    const struct fp8_fmt *F = fmt_of(f);
#if FP8_X86
    const int path = fp8_path();
    if (path == P_AVX512 && !dst && !scales && deq) {
        mx_fake_avx512(deq, src, rows, k, F, r, stats);
        return;
    }
    if (path >= P_AVX2 && k % MX_BLOCK == 0) {
        mx_run_avx2(dst, scales, deq, src, rows, k, F, r, stats);
        return;
    }
#endif
    const size_t nb = (k + MX_BLOCK - 1) / MX_BLOCK;
    for (size_t row = 0; row < rows; row++) {
        for (size_t b = 0; b < nb; b++) {
            const size_t off = row * k + b * MX_BLOCK;
            const size_t len = (k - b * MX_BLOCK < MX_BLOCK) ? k - b * MX_BLOCK : MX_BLOCK;
            const struct mx_block_scale s = (r == MX_SCALE_RCEIL)
                                                ? mx_scale_rceil(src + off, len, F)
                                                : mx_scale_floor(src + off, len, F);
            if (scales)
                scales[row * nb + b] = (uint8_t)s.e;
            quant(dst ? dst + off : NULL, deq ? deq + off : NULL, src + off, len, s.mul,
                  mx_e8m0_value(s.e), F, stats);
        }
    }
}

void mx_quantize(amp_fp8 *dst, uint8_t *scales, const float *src, size_t rows, size_t k,
                 enum fp8_format f, enum mx_scale_rounding r, struct fp8_stats *stats)
{
    mx_run(dst, scales, NULL, src, rows, k, f, r, stats);
}

void mx_dequantize(float *dst, const amp_fp8 *src, const uint8_t *scales, size_t rows,
                   size_t k, enum fp8_format f)
{
    const size_t nb = (k + MX_BLOCK - 1) / MX_BLOCK;
    for (size_t row = 0; row < rows; row++)
        for (size_t b = 0; b < nb; b++) {
            const size_t off = row * k + b * MX_BLOCK;
            const size_t len = (k - b * MX_BLOCK < MX_BLOCK) ? k - b * MX_BLOCK : MX_BLOCK;
            fp8_dequantize_array(dst + off, src + off, len, e8m0_to_f32(scales[row * nb + b]), f);
        }
}

void mx_fake_quantize(float *dst, const float *src, size_t rows, size_t k, enum fp8_format f,
                      enum mx_scale_rounding r, struct fp8_stats *stats)
{
    mx_run(NULL, NULL, dst, src, rows, k, f, r, stats);
}

/* Columns of a block row transposed at a time (the stack buffers' width). */
enum { MX_COLS = 64 };

/* mx_run over any layout: each block row (o, b), MX_COLS columns at a time, transposed into
   rows (one block each, in the layout's block order), run as rows, and transposed back. */
static void mx_run_layout(amp_fp8 *dst, uint8_t *scales, float *deq, const float *src,
                          struct mx_layout L, enum fp8_format f, enum mx_scale_rounding r,
                          struct fp8_stats *stats)
{
    if (L.inner == 1) {
        mx_run(dst, scales, deq, src, L.outer, L.len, f, r, stats);
        return;
    }
#if FP8_X86
    if (fp8_path() == P_AVX512 && !dst && !scales && deq) {
        mx_fake_cols_avx512(deq, src, L, fmt_of(f), r, stats);
        return;
    }
#endif
    float t[MX_COLS * MX_BLOCK], td[MX_COLS * MX_BLOCK];
    amp_fp8 tq[MX_COLS * MX_BLOCK];
    const size_t nb = (L.len + MX_BLOCK - 1) / MX_BLOCK;
    for (size_t o = 0; o < L.outer; o++)
        for (size_t b = 0; b < nb; b++) {
            const size_t blen = L.len - b * MX_BLOCK < MX_BLOCK ? L.len - b * MX_BLOCK : MX_BLOCK;
            const size_t base = (o * L.len + b * MX_BLOCK) * L.inner;
            for (size_t i0 = 0; i0 < L.inner; i0 += MX_COLS) {
                const size_t w = L.inner - i0 < MX_COLS ? L.inner - i0 : MX_COLS;
                for (size_t j = 0; j < blen; j++)
                    for (size_t c = 0; c < w; c++)
                        t[c * blen + j] = src[base + j * L.inner + i0 + c];
                mx_run(dst ? tq : NULL, scales ? scales + (o * nb + b) * L.inner + i0 : NULL,
                       deq ? td : NULL, t, w, blen, f, r, stats);
                for (size_t j = 0; j < blen; j++)
                    for (size_t c = 0; c < w; c++) {
                        const size_t at = base + j * L.inner + i0 + c;
                        if (deq)
                            deq[at] = td[c * blen + j];
                        if (dst)
                            dst[at] = tq[c * blen + j];
                    }
            }
        }
}

void mx_quantize_layout(amp_fp8 *dst, uint8_t *scales, const float *src, struct mx_layout L,
                        enum fp8_format f, enum mx_scale_rounding r, struct fp8_stats *stats)
{
    mx_run_layout(dst, scales, NULL, src, L, f, r, stats);
}

void mx_fake_quantize_layout(float *dst, const float *src, struct mx_layout L, enum fp8_format f,
                             enum mx_scale_rounding r, struct fp8_stats *stats)
{
    mx_run_layout(NULL, NULL, dst, src, L, f, r, stats);
}

void mx_fake_quantize_layout_bf16(float *dst, const uint16_t *src, struct mx_layout L,
                                  enum fp8_format f, enum mx_scale_rounding r,
                                  struct fp8_stats *stats)
{
#if FP8_X86
    if (fp8_path() == P_AVX512) {
        if (L.inner == 1)
            mx_fake_bf16_avx512(dst, src, L.outer, L.len, fmt_of(f), r, stats);
        else
            mx_fake_cols_bf16_avx512(dst, src, L, fmt_of(f), r, stats);
        return;
    }
#endif
    bf16_to_f32_array(dst, src, L.outer * L.len * L.inner);
    mx_fake_quantize_layout(dst, dst, L, f, r, stats);
}

void mx_dequantize_layout(float *dst, const amp_fp8 *src, const uint8_t *scales,
                          struct mx_layout L, enum fp8_format f)
{
    const size_t nb = (L.len + MX_BLOCK - 1) / MX_BLOCK;
    for (size_t o = 0; o < L.outer; o++)
        for (size_t l = 0; l < L.len; l++)
            for (size_t i = 0; i < L.inner; i++) {
                const size_t at = (o * L.len + l) * L.inner + i;
                const float x = e8m0_to_f32(scales[(o * nb + l / MX_BLOCK) * L.inner + i]);
                fp8_dequantize_array(dst + at, src + at, 1, x, f);
            }
}
