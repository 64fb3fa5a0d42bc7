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
 * time to "avx2" (AVX2 + FMA: eight lanes, the same integer steps) or
 * "portable" (the scalar definition in a loop); both give the same bytes and
 * the same stats bit for bit (tests/test_fp8.c): the sums of squares are
 * kept in eight partial sums, element i in lane i % 8, each updated with a
 * fused multiply-add and combined in one fixed order.
 *
 * No OpenMP and no threads here: callers parallelize over tensors/chunks.
 */
#include "fp8.h"
#include "fp8_scaling.h"

#include "f32bits.h"

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
    for (size_t i = 0; i < n; i++) {
        const uint32_t ux = f32_bits(src[i]);
        const uint32_t uy = f32_bits(src[i] * scale);
        const uint32_t c = fp8_encode(uy, F, F->maxnorm);
        const float d = f32_from_bits(fp8_decode(c, F)) * scale_inv;
        if (stats)
            count_one(&p, i & 7u, ux, uy, c, d, F);
        if (codes)
            codes[i] = (amp_fp8)c;
        if (deq)
            deq[i] = d;
    }
    if (stats) {
        p.n = n;
        part_flush(&p, stats);
    }
}

#if FP8_X86

#define T_AVX2 __attribute__((target("avx2,fma")))
#define T_AVX2_INL __attribute__((target("avx2,fma"), always_inline)) static inline

struct vfmt {
    __m256i shift, halfm1, rebias, norm_min_m1, sub_base, ovf_min_m1, max_bits, ovf, mmask,
        inf_code, nan_min_m1;
    __m256 quantum;
};

T_AVX2_INL void vfmt_init(struct vfmt *V, const struct fp8_fmt *F)
{
    V->shift = _mm256_set1_epi32((int)F->shift);
    V->halfm1 = _mm256_set1_epi32((int)((1u << (F->shift - 1)) - 1u));
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
    const __m256i e = _mm256_srli_epi32(a, 23);
    const __m256i m = _mm256_or_si256(_mm256_and_si256(a, _mm256_set1_epi32(0x007FFFFF)),
                                      _mm256_set1_epi32(0x00800000));
    __m256i s = _mm256_sub_epi32(V->sub_base, e);
    s = _mm256_min_epi32(_mm256_max_epi32(s, one), _mm256_set1_epi32(25));
    const __m256i half = _mm256_sub_epi32(_mm256_sllv_epi32(one, _mm256_sub_epi32(s, one)), one);
    const __m256i sub = _mm256_srlv_epi32(
        _mm256_add_epi32(_mm256_add_epi32(m, half), _mm256_and_si256(_mm256_srlv_epi32(m, s), one)), s);
    __m256i c = _mm256_blendv_epi8(sub, normal, _mm256_cmpgt_epi32(a, V->norm_min_m1));
    c = _mm256_blendv_epi8(c, V->ovf, _mm256_cmpgt_epi32(a, V->ovf_min_m1));
    c = _mm256_or_si256(c, sign);
    return _mm256_blendv_epi8(c, _mm256_set1_epi32((int)FP8_NAN),
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
    struct part p;
    part_init(&p);
    const __m256i absm = _mm256_set1_epi32((int)F32_ABS_MASK), inf = _mm256_set1_epi32((int)F32_INF_BITS);
    const __m256i zero = _mm256_setzero_si256();
    __m256d sig0 = _mm256_setzero_pd(), sig1 = sig0, noi0 = sig0, noi1 = sig0;
    __m256i vam = zero;
    while (i < nv) {
        const size_t end = (nv - i > COUNT_CHUNK) ? i + COUNT_CHUNK : nv;
        __m256i vsat = zero, vuf = zero, vnf = zero;
        for (; i < end; i += 8) {
            const __m256 x = _mm256_loadu_ps(src + i);
            const __m256 y = _mm256_mul_ps(x, vs);
            const __m256i c = avx2_encode(_mm256_castps_si256(y), &V);
            const __m256 d = _mm256_mul_ps(avx2_decode(c, &V), vsi);
            if (codes)
                avx2_store8(codes + i, c);
            if (deq)
                _mm256_storeu_ps(deq + i, d);
            if (!stats)
                continue;
            const __m256i ax = _mm256_and_si256(_mm256_castps_si256(x), absm);
            const __m256i ay = _mm256_and_si256(_mm256_castps_si256(y), absm);
            const __m256i fin = _mm256_cmpgt_epi32(inf, ax);
            const __m256i sat = _mm256_andnot_si256(_mm256_cmpgt_epi32(ay, inf),
                                                    _mm256_cmpgt_epi32(ay, V.ovf_min_m1));
            const __m256i uf = _mm256_andnot_si256(_mm256_cmpeq_epi32(ax, zero),
                _mm256_cmpeq_epi32(_mm256_and_si256(c, _mm256_set1_epi32(0x7F)), zero));
            vsat = _mm256_sub_epi32(vsat, sat);
            vuf = _mm256_sub_epi32(vuf, uf);
            vnf = _mm256_sub_epi32(vnf, _mm256_cmpgt_epi32(ay, inf));
            vam = _mm256_max_epi32(vam, _mm256_and_si256(ax, fin));
            const __m256 xf = _mm256_and_ps(x, _mm256_castsi256_ps(fin));
            const __m256 df = _mm256_and_ps(d, _mm256_castsi256_ps(fin));
            const __m256d x0 = _mm256_cvtps_pd(_mm256_castps256_ps128(xf));
            const __m256d x1 = _mm256_cvtps_pd(_mm256_extractf128_ps(xf, 1));
            const __m256d e0 = _mm256_sub_pd(x0, _mm256_cvtps_pd(_mm256_castps256_ps128(df)));
            const __m256d e1 = _mm256_sub_pd(x1, _mm256_cvtps_pd(_mm256_extractf128_ps(df, 1)));
            sig0 = _mm256_fmadd_pd(x0, x0, sig0);
            sig1 = _mm256_fmadd_pd(x1, x1, sig1);
            noi0 = _mm256_fmadd_pd(e0, e0, noi0);
            noi1 = _mm256_fmadd_pd(e1, e1, noi1);
        }
        uint32_t t[8];
        _mm256_storeu_si256((__m256i *)t, vsat);
        for (int l = 0; l < 8; l++)
            p.sat += t[l];
        _mm256_storeu_si256((__m256i *)t, vuf);
        for (int l = 0; l < 8; l++)
            p.uf += t[l];
        _mm256_storeu_si256((__m256i *)t, vnf);
        for (int l = 0; l < 8; l++)
            p.nf += t[l];
    }
    if (stats) {
        uint32_t t[8];
        _mm256_storeu_si256((__m256i *)t, vam);
        for (int l = 0; l < 8; l++)
            p.amax_bits = t[l] > p.amax_bits ? t[l] : p.amax_bits;
        _mm256_storeu_pd(p.sig, sig0);
        _mm256_storeu_pd(p.sig + 4, sig1);
        _mm256_storeu_pd(p.noise, noi0);
        _mm256_storeu_pd(p.noise + 4, noi1);
        /* The tail continues the same lanes (i is a multiple of 8 here). */
        for (; i < n; i++) {
            const uint32_t ux = f32_bits(src[i]);
            const uint32_t uy = f32_bits(src[i] * scale);
            const uint32_t c = fp8_encode(uy, F, F->maxnorm);
            const float d = f32_from_bits(fp8_decode(c, F)) * scale_inv;
            count_one(&p, i & 7u, ux, uy, c, d, F);
            if (codes)
                codes[i] = (amp_fp8)c;
            if (deq)
                deq[i] = d;
        }
        p.n = n;
        part_flush(&p, stats);
    } else if (i < n) {
        quant_portable(codes ? codes + i : NULL, deq + i, src + i, n - i, scale, scale_inv, F, NULL);
    }
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

enum { P_PORTABLE = 0, P_AVX2 = 1, P_UNSET = -1 };

static _Atomic int g_path = P_UNSET;

static int cpu_can(int path)
{
    if (path == P_PORTABLE)
        return 1;
#if FP8_X86
    __builtin_cpu_init();
    if (path == P_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return 0;
}

static inline int fp8_path(void)
{
    int p = atomic_load_explicit(&g_path, memory_order_relaxed);
    if (p == P_UNSET) {
        p = cpu_can(P_AVX2) ? P_AVX2 : P_PORTABLE;
        atomic_store_explicit(&g_path, p, memory_order_relaxed);
    }
    return p;
}

static const char *const PATH_NAMES[] = {[P_PORTABLE] = "portable", [P_AVX2] = "avx2"};

const char *fp8_fast_path(void)
{
    return PATH_NAMES[fp8_path()];
}

int fp8_set_fast_path(const char *name)
{
    int p = (!name || strcmp(name, "auto") == 0) ? (cpu_can(P_AVX2) ? P_AVX2 : P_PORTABLE) : -1;
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
    if (fp8_path() == P_AVX2)
        return amax_avx2(src, n);
#endif
    return amax_portable(src, n);
}

static void quant(amp_fp8 *codes, float *deq, const float *src, size_t n, float scale,
                  float scale_inv, const struct fp8_fmt *F, struct fp8_stats *stats)
{
#if FP8_X86
    if (fp8_path() == P_AVX2) {
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
    if (fp8_path() == P_AVX2) {
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

static struct mx_block_scale mx_scale_rceil(const float *x, size_t len, const struct fp8_fmt *F)
{
    float am = 0.0f;
    for (size_t i = 0; i < len; i++)
        am = fmaxf(am, fabsf(x[i]));
    return mx_scale_rceil_of(am, F->max);
}

static void mx_run(amp_fp8 *dst, uint8_t *scales, float *deq, const float *src, size_t rows,
                   size_t k, enum fp8_format f, enum mx_scale_rounding r, struct fp8_stats *stats)
{
    const struct fp8_fmt *F = fmt_of(f);
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
