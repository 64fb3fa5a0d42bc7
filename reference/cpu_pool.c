/* CPU reference: pooling. Max pooling 2x2 / stride 2 (floor: an odd last row or column is
 * dropped), which selects an element and so copies its bits (no rounding, nothing counted, as
 * ReLU); global average pooling, an FP32 sum in index order divided by hw and rounded once.
 * OpenMP splits planes (each output has one owner thread). */
#include <math.h>
#include <string.h>

#include "cpu_ops.h"

#if defined(__F16C__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

/* Which of a window's four values (row-major: top-left, top-right, bottom-left, bottom-right)
 * is its maximum: the first NaN if there is one, else the first of the largest. */
static inline int window_argmax(const float v[4])
{
    int best = 0;
    if (isnan(v[0]))
        return 0;
    for (int j = 1; j < 4; j++) {
        if (isnan(v[j]))
            return j;
        if (v[j] > v[best])
            best = j;
    }
    return best;
}

/* Element i of raw data of dtype dt as FP32 (exact): dt a constant after inlining. */
static inline __attribute__((always_inline)) float elem(const void *d, size_t i,
                                                        enum amp_dtype dt)
{
    switch (dt) {
    case AMP_F16:
#if defined(__F16C__)
        return _cvtsh_ss(((const uint16_t *)d)[i]); /* (exact, as f16_to_f32) */
#else
        return f16_to_f32(((const uint16_t *)d)[i]);
#endif
    case AMP_BF16: {
        const uint32_t u = (uint32_t)((const uint16_t *)d)[i] << 16;
        float f;
        memcpy(&f, &u, sizeof f);
        return f;
    }
    default: return ((const float *)d)[i];
    }
}

/* The element index of the maximum of window (oy, ox) of the plane starting at element
 * `plane` (window_argmax's choice). */
static inline __attribute__((always_inline)) size_t window_max(const void *d, enum amp_dtype dt,
                                                               size_t plane, uint32_t w,
                                                               uint32_t oy, uint32_t ox)
{
    const size_t top = plane + (size_t)(2 * oy) * w + 2 * ox;
    const size_t idx[4] = { top, top + 1, top + w, top + w + 1 };
    const float v[4] = { elem(d, idx[0], dt), elem(d, idx[1], dt), elem(d, idx[2], dt),
                         elem(d, idx[3], dt) };
    return idx[window_argmax(v)];
}

/* FP32 in vectors of 8 windows: window_argmax's choice as a per-lane index (0..3) and value.
 * A lane takes element j when no earlier element was NaN and element j is NaN or larger than
 * the best so far: the first NaN, else the first of the largest. */
typedef float v8f __attribute__((vector_size(8 * sizeof(float)), aligned(4)));
typedef int32_t v8i __attribute__((vector_size(8 * sizeof(int32_t))));

/* m ? a : b per lane (m all ones or zeros), on the bits. */
static inline v8f blend8(v8i m, v8f a, v8f b)
{
    return (v8f)(((v8i)a & m) | ((v8i)b & ~m));
}

static inline v8i window_argmax8(const v8f v[4], v8f *best)
{
    v8f b = v[0];
    v8i idx = { 0 }, found = v[0] != v[0];
    for (int j = 1; j < 4; j++) {
        const v8i isn = v[j] != v[j];
        const v8i take = ~found & (isn | (v[j] > b));
        idx = (((v8i){ 0 } + j) & take) | (idx & ~take);
        b = blend8(take, v[j], b);
        found |= isn;
    }
    *best = b;
    return idx;
}

/* The four elements of 8 windows starting at column 2 ox of rows r0 and r1. */
static inline void windows8(const float *r0, const float *r1, v8f v[4])
{
    const v8f a0 = *(const v8f *)r0, a1 = *(const v8f *)(r0 + 8);
    const v8f b0 = *(const v8f *)r1, b1 = *(const v8f *)(r1 + 8);
    v[0] = __builtin_shufflevector(a0, a1, 0, 2, 4, 6, 8, 10, 12, 14);
    v[1] = __builtin_shufflevector(a0, a1, 1, 3, 5, 7, 9, 11, 13, 15);
    v[2] = __builtin_shufflevector(b0, b1, 0, 2, 4, 6, 8, 10, 12, 14);
    v[3] = __builtin_shufflevector(b0, b1, 1, 3, 5, 7, 9, 11, 13, 15);
}

/* Masked moves where the machine has them (AVX-512 with VL and DQ), else zero-padded copies:
 * short rows (fewer than 8 windows) are never read or written past their ends. */
#if defined(__AVX512F__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
#define POOL_MASKED 1
#else
#define POOL_MASKED 0
#endif

/* The first `ow` (< 8) windows of rows r0 and r1 (the lanes past them: zero). */
static inline void windows8_short(const float *r0, const float *r1, uint32_t ow, v8f v[4])
{
#if POOL_MASKED
    const __mmask16 m = (__mmask16)((1u << (2 * ow)) - 1);
    const __m512 a = _mm512_maskz_loadu_ps(m, r0), b = _mm512_maskz_loadu_ps(m, r1);
    const v8f a0 = (v8f)_mm512_castps512_ps256(a), a1 = (v8f)_mm512_extractf32x8_ps(a, 1);
    const v8f b0 = (v8f)_mm512_castps512_ps256(b), b1 = (v8f)_mm512_extractf32x8_ps(b, 1);
    v[0] = __builtin_shufflevector(a0, a1, 0, 2, 4, 6, 8, 10, 12, 14);
    v[1] = __builtin_shufflevector(a0, a1, 1, 3, 5, 7, 9, 11, 13, 15);
    v[2] = __builtin_shufflevector(b0, b1, 0, 2, 4, 6, 8, 10, 12, 14);
    v[3] = __builtin_shufflevector(b0, b1, 1, 3, 5, 7, 9, 11, 13, 15);
#else
    float a[16] = { 0 }, b[16] = { 0 };
    memcpy(a, r0, 2 * ow * sizeof *a);
    memcpy(b, r1, 2 * ow * sizeof *b);
    windows8(a, b, v);
#endif
}

/* The first len (<= 8) lanes of x stored to dst; load_short: src[0..len) as lanes, zero past. */
static inline void store_short(float *dst, v8f x, uint32_t len)
{
#if POOL_MASKED
    _mm256_mask_storeu_ps(dst, (__mmask8)((1u << len) - 1), (__m256)x);
#else
    float t[8];
    *(v8f *)t = x;
    memcpy(dst, t, len * sizeof *dst);
#endif
}

static inline v8f load_short(const float *src, uint32_t len)
{
#if POOL_MASKED
    return (v8f)_mm256_maskz_loadu_ps((__mmask8)((1u << len) - 1), src);
#else
    float t[8] = { 0 };
    memcpy(t, src, len * sizeof *t);
    return *(const v8f *)t;
#endif
}

/* The window columns of an output row in groups of 8: ox = 0, 8, ..., and a last group moved
 * back to end at ow (overlapping the one before it: its windows are computed and written twice,
 * with the same bits). ow >= 8. */
static inline uint32_t next_group(uint32_t ox, uint32_t ow)
{
    return ox + 16 > ow ? ow - 8 : ox + 8;
}

/* Forward of one FP32 plane (dst: its ow x oh outputs): the selected values' bits (a blend, no
 * arithmetic), 8 windows at a time. */
static void maxpool_plane_f32(float *dst, const float *src, uint32_t h, uint32_t w)
{
    const uint32_t oh = h / 2, ow = w / 2;
    for (uint32_t oy = 0; oy < oh; oy++) {
        const float *r0 = src + (size_t)(2 * oy) * w, *r1 = r0 + w;
        float *o = dst + (size_t)oy * ow;
        v8f v[4], best;
        if (ow < 8) {
            windows8_short(r0, r1, ow, v);
            window_argmax8(v, &best);
            store_short(o, best, ow);
            continue;
        }
        for (uint32_t ox = 0;; ox = next_group(ox, ow)) {
            windows8(r0 + 2 * ox, r1 + 2 * ox, v);
            window_argmax8(v, &best);
            *(v8f *)(o + ox) = best;
            if (ox + 8 == ow)
                break;
        }
    }
}

/* 16-bit planes (FP16, BF16) in vectors of 8 windows too: the raw elements pick the bits, their
 * FP32 values (exact) window_argmax8's choice. */
typedef uint16_t v16h __attribute__((vector_size(16 * sizeof(uint16_t)), aligned(2)));
typedef uint16_t v8h __attribute__((vector_size(8 * sizeof(uint16_t)), aligned(2)));

#if POOL_MASKED && defined(__AVX512BW__)
#define POOL_MASKED16 1
#else
#define POOL_MASKED16 0
#endif

/* src[0..len) as 16 or 8 lanes (len at most that), zero past; the first len lanes of x stored. */
static inline v16h load16_short(const uint16_t *src, uint32_t len)
{
#if POOL_MASKED16
    return (v16h)_mm256_maskz_loadu_epi16((__mmask16)((1u << len) - 1), src);
#else
    uint16_t t[16] = { 0 };
    memcpy(t, src, len * sizeof *t);
    return *(const v16h *)t;
#endif
}

static inline v8h load8_short(const uint16_t *src, uint32_t len)
{
#if POOL_MASKED16
    return (v8h)_mm_maskz_loadu_epi16((__mmask8)((1u << len) - 1), src);
#else
    uint16_t t[8] = { 0 };
    memcpy(t, src, len * sizeof *t);
    return *(const v8h *)t;
#endif
}

static inline void store16_short(uint16_t *dst, v16h x, uint32_t len)
{
#if POOL_MASKED16
    _mm256_mask_storeu_epi16(dst, (__mmask16)((1u << len) - 1), (__m256i)x);
#else
    uint16_t t[16];
    *(v16h *)t = x;
    memcpy(dst, t, len * sizeof *dst);
#endif
}

static inline void store8_short(uint16_t *dst, v8h x, uint32_t len)
{
#if POOL_MASKED16
    _mm_mask_storeu_epi16(dst, (__mmask8)((1u << len) - 1), (__m128i)x);
#else
    uint16_t t[8];
    *(v8h *)t = x;
    memcpy(dst, t, len * sizeof *dst);
#endif
}

/* 8 FP16 or BF16 bit patterns as FP32 (exact; a NaN stays a NaN). */
static inline __attribute__((always_inline)) v8f widen8(v8h x, enum amp_dtype dt)
{
    if (dt == AMP_BF16)
        return (v8f)(__builtin_convertvector(x, v8i) << 16);
#if defined(__F16C__)
    return (v8f)_mm256_cvtph_ps((__m128i)x);
#else
    v8f f;
    for (int i = 0; i < 8; i++)
        f[i] = f16_to_f32(x[i]);
    return f;
#endif
}

/* m ? a : b per 16-bit lane (m: 32-bit lanes, all ones or zeros). */
static inline v8h blend8h(v8i m, v8h a, v8h b)
{
    const v8h mh = __builtin_convertvector(m, v8h);
    return (a & mh) | (b & ~mh);
}

/* 8 windows of rows a and b (16 elements each): window_argmax8's choice as an index per lane
 * (idx) and the chosen elements' bits (returned). */
static inline __attribute__((always_inline)) v8h windows8_argmax16(v16h a, v16h b,
                                                                   enum amp_dtype dt, v8i *idx)
{
    const v8h e[4] = { __builtin_shufflevector(a, a, 0, 2, 4, 6, 8, 10, 12, 14),
                       __builtin_shufflevector(a, a, 1, 3, 5, 7, 9, 11, 13, 15),
                       __builtin_shufflevector(b, b, 0, 2, 4, 6, 8, 10, 12, 14),
                       __builtin_shufflevector(b, b, 1, 3, 5, 7, 9, 11, 13, 15) };
    v8f v[4], best;
    for (int j = 0; j < 4; j++)
        v[j] = widen8(e[j], dt);
    *idx = window_argmax8(v, &best);
    v8h y = e[0];
    for (int j = 1; j < 4; j++)
        y = blend8h(*idx == j, e[j], y);
    return y;
}

/* 8 windows' gradient bits g routed to their chosen elements (idx), +0 elsewhere: the two
 * input rows' 16 elements (top, bottom). */
static inline void route8_16(v16h *top, v16h *bottom, v8i idx, v8h g)
{
    const v8h z = { 0 };
    const v8h d0 = blend8h(idx == 0, g, z), d1 = blend8h(idx == 1, g, z);
    const v8h d2 = blend8h(idx == 2, g, z), d3 = blend8h(idx == 3, g, z);
    *top = __builtin_shufflevector(d0, d1, 0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
    *bottom =
        __builtin_shufflevector(d2, d3, 0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
}

/* Forward of one 16-bit plane, as maxpool_plane_f32. */
static inline __attribute__((always_inline)) void
maxpool_plane_16(uint16_t *dst, const uint16_t *src, enum amp_dtype dt, uint32_t h, uint32_t w)
{
    const uint32_t oh = h / 2, ow = w / 2;
    v8i idx;
    for (uint32_t oy = 0; oy < oh; oy++) {
        const uint16_t *r0 = src + (size_t)(2 * oy) * w, *r1 = r0 + w;
        uint16_t *o = dst + (size_t)oy * ow;
        if (ow < 8) {
            const v16h a = load16_short(r0, 2 * ow), b = load16_short(r1, 2 * ow);
            store8_short(o, windows8_argmax16(a, b, dt, &idx), ow);
            continue;
        }
        for (uint32_t ox = 0;; ox = next_group(ox, ow)) {
            *(v8h *)(o + ox) = windows8_argmax16(*(const v16h *)(r0 + 2 * ox),
                                                 *(const v16h *)(r1 + 2 * ox), dt, &idx);
            if (ox + 8 == ow)
                break;
        }
    }
}

/* Forward of plane pl: out's element = the chosen input element's bits, 8 windows at a time. */
static inline __attribute__((always_inline)) void
maxpool_planes(char *dst, const char *src, enum amp_dtype dt, size_t pl, uint32_t h, uint32_t w)
{
    const uint32_t oh = h / 2, ow = w / 2;
    if (dt == AMP_F32)
        maxpool_plane_f32((float *)dst + pl * oh * ow, (const float *)src + pl * h * w, h, w);
    else
        maxpool_plane_16((uint16_t *)dst + pl * oh * ow, (const uint16_t *)src + pl * h * w, dt,
                         h, w);
}

void cpu_maxpool_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                         uint32_t n, uint32_t c, uint32_t h, uint32_t w)
{
    const int threads = ((struct cpu_ctx *)ctx)->threads;
    const size_t planes = (size_t)n * c;
    const size_t work = planes * h * w;
    char *dst = out->data;
    const char *src = inp->data;
    const enum amp_dtype dt = inp->dtype;
#pragma omp parallel for schedule(static) num_threads(threads) if (work >= CPU_PARALLEL_MIN)
    for (size_t pl = 0; pl < planes; pl++) {
        if (dt == AMP_F32)
            maxpool_planes(dst, src, AMP_F32, pl, h, w);
        else if (dt == AMP_F16)
            maxpool_planes(dst, src, AMP_F16, pl, h, w);
        else
            maxpool_planes(dst, src, AMP_BF16, pl, h, w);
    }
}

/* 8 windows' gradients g routed to their chosen elements (idx), +0 elsewhere: the two rows'
 * 16 elements each, interleaved: o[0], o[1] the first row's halves, o[2], o[3] the second's. */
static inline void route8(v8f o[4], v8i idx, v8f g)
{
    const v8f z = { 0 };
    const v8f d0 = blend8(idx == 0, g, z), d1 = blend8(idx == 1, g, z);
    const v8f d2 = blend8(idx == 2, g, z), d3 = blend8(idx == 3, g, z);
    o[0] = __builtin_shufflevector(d0, d1, 0, 8, 1, 9, 2, 10, 3, 11);
    o[1] = __builtin_shufflevector(d0, d1, 4, 12, 5, 13, 6, 14, 7, 15);
    o[2] = __builtin_shufflevector(d2, d3, 0, 8, 1, 9, 2, 10, 3, 11);
    o[3] = __builtin_shufflevector(d2, d3, 4, 12, 5, 13, 6, 14, 7, 15);
}

/* Backward of one FP32 plane (dst: h x w, zeroed where h or w is odd; g: its oh x ow
 * gradients; x: its inputs): every element of every window written (its gradient or +0), 8
 * windows at a time, as maxpool_plane_f32 (short rows: windows8_short). */
static void route_plane_f32(float *dst, const float *g, const float *x, uint32_t h, uint32_t w)
{
    const uint32_t oh = h / 2, ow = w / 2;
    for (uint32_t oy = 0; oy < oh; oy++) {
        const size_t top = (size_t)(2 * oy) * w;
        const float *go = g + (size_t)oy * ow;
        v8f v[4], best;
        if (ow < 8) {
            windows8_short(x + top, x + top + w, ow, v);
            v8f o[4];
            route8(o, window_argmax8(v, &best), load_short(go, ow));
            const uint32_t lo = 2 * ow < 8 ? 2 * ow : 8, hi = 2 * ow - lo;
            store_short(dst + top, o[0], lo);
            store_short(dst + top + w, o[2], lo);
            if (hi) {
                store_short(dst + top + 8, o[1], hi);
                store_short(dst + top + w + 8, o[3], hi);
            }
            continue;
        }
        for (uint32_t ox = 0;; ox = next_group(ox, ow)) {
            windows8(x + top + 2 * ox, x + top + w + 2 * ox, v);
            v8f o[4];
            route8(o, window_argmax8(v, &best), *(const v8f *)(go + ox));
            float *o0 = dst + top + 2 * ox, *o1 = o0 + w;
            *(v8f *)o0 = o[0];
            *(v8f *)(o0 + 8) = o[1];
            *(v8f *)o1 = o[2];
            *(v8f *)(o1 + 8) = o[3];
            if (ox + 8 == ow)
                break;
        }
    }
}

/* Backward of one 16-bit plane, as route_plane_f32. */
static inline __attribute__((always_inline)) void
route_plane_16(uint16_t *dst, const uint16_t *g, const uint16_t *x, enum amp_dtype dt, uint32_t h,
               uint32_t w)
{
    const uint32_t oh = h / 2, ow = w / 2;
    v8i idx;
    v16h top, bottom;
    for (uint32_t oy = 0; oy < oh; oy++) {
        const size_t r0 = (size_t)(2 * oy) * w, r1 = r0 + w;
        const uint16_t *go = g + (size_t)oy * ow;
        if (ow < 8) {
            windows8_argmax16(load16_short(x + r0, 2 * ow), load16_short(x + r1, 2 * ow), dt,
                              &idx);
            route8_16(&top, &bottom, idx, load8_short(go, ow));
            store16_short(dst + r0, top, 2 * ow);
            store16_short(dst + r1, bottom, 2 * ow);
            continue;
        }
        for (uint32_t ox = 0;; ox = next_group(ox, ow)) {
            windows8_argmax16(*(const v16h *)(x + r0 + 2 * ox), *(const v16h *)(x + r1 + 2 * ox),
                              dt, &idx);
            route8_16(&top, &bottom, idx, *(const v8h *)(go + ox));
            *(v16h *)(dst + r0 + 2 * ox) = top;
            *(v16h *)(dst + r1 + 2 * ox) = bottom;
            if (ox + 8 == ow)
                break;
        }
    }
}

/* Backward of plane pl, dinp and dout of one dtype: each gradient's bits routed to the chosen
 * element, every other element zero (every element of a window is written: only odd edges
 * zeroed first). */
static inline __attribute__((always_inline)) void
route_plane(char *dst, const char *src, const void *x, enum amp_dtype dt, size_t esize, size_t pl,
            uint32_t h, uint32_t w)
{
    const uint32_t oh = h / 2, ow = w / 2;
    if (h % 2 || w % 2)
        memset(dst + pl * h * w * esize, 0, (size_t)h * w * esize);
    if (dt == AMP_F32)
        route_plane_f32((float *)dst + pl * h * w, (const float *)src + pl * oh * ow,
                        (const float *)x + pl * h * w, h, w);
    else
        route_plane_16((uint16_t *)dst + pl * h * w, (const uint16_t *)src + pl * oh * ow,
                       (const uint16_t *)x + pl * h * w, dt, h, w);
}

void cpu_maxpool_backward(void *ctx, struct amp_tensor *dinp, const struct amp_tensor *dout,
                          const struct amp_tensor *inp, uint32_t n, uint32_t c, uint32_t h,
                          uint32_t w)
{
    struct cpu_ctx *cc = ctx;
    const uint32_t oh = h / 2, ow = w / 2;
    const size_t planes = (size_t)n * c, esize = dtype_size(dinp->dtype);
    const size_t work = planes * h * w;
    /* Same dtype: each gradient's bits are routed unchanged (no rounding, as ReLU's backward);
     * else converted, rounded and counted. Every element not routed to is zero. */
    const int same = dinp->dtype == dout->dtype;
    char *dst = dinp->data;
    const char *src = dout->data;
    const enum amp_dtype dt = inp->dtype;
#pragma omp parallel num_threads(cc->threads) if (work >= CPU_PARALLEL_MIN)
    {
        struct lowp_counts counts = { 0 };
#pragma omp for schedule(static)
        for (size_t pl = 0; pl < planes; pl++) {
            if (same && esize == 4 && dt == AMP_F32) {
                route_plane(dst, src, inp->data, AMP_F32, 4, pl, h, w);
                continue;
            }
            if (same && esize == 2 && dt != AMP_F32) {
                if (dt == AMP_F16)
                    route_plane(dst, src, inp->data, AMP_F16, 2, pl, h, w);
                else
                    route_plane(dst, src, inp->data, AMP_BF16, 2, pl, h, w);
                continue;
            }
            memset(dst + pl * h * w * esize, 0, (size_t)h * w * esize);
            for (uint32_t oy = 0; oy < oh; oy++)
                for (uint32_t ox = 0; ox < ow; ox++) {
                    const size_t o = (pl * oh + oy) * ow + ox;
                    const size_t to = dt == AMP_F32 ? window_max(inp->data, AMP_F32, pl * h * w, w, oy, ox)
                                      : dt == AMP_F16
                                          ? window_max(inp->data, AMP_F16, pl * h * w, w, oy, ox)
                                          : window_max(inp->data, AMP_BF16, pl * h * w, w, oy, ox);
                    if (same)
                        memcpy(dst + to * esize, src + o * esize, esize);
                    else
                        cpu_set(dinp, to, cpu_get(dout, o), &counts);
                }
        }
        if (!same)
            cpu_count(cc, dinp, 0, &counts);
    }
    if (!same)
        cpu_count(cc, dinp, dinp->numel, &(struct lowp_counts){ 0 });
}

void cpu_avgpool_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                         uint32_t n, uint32_t c, uint32_t hw)
{
    struct cpu_ctx *cc = ctx;
    const size_t planes = (size_t)n * c, work = planes * hw;
#pragma omp parallel num_threads(cc->threads) if (work >= CPU_PARALLEL_MIN)
    {
        struct lowp_counts counts = { 0 };
        float buf[1024];
#pragma omp for schedule(static)
        for (size_t pl = 0; pl < planes; pl++) {
            float sum = 0.0f;
            for (size_t i0 = 0; i0 < hw; i0 += 1024) {
                const size_t len = hw - i0 < 1024 ? hw - i0 : 1024;
                cpu_load(buf, inp, pl * hw + i0, len, 0);
                for (size_t i = 0; i < len; i++) /* in index order */
                    sum += buf[i];
            }
            cpu_set(out, pl, sum / (float)hw, &counts);
        }
        cpu_count(cc, out, 0, &counts);
    }
    cpu_count(cc, out, planes, &(struct lowp_counts){ 0 });
}

void cpu_avgpool_backward(void *ctx, struct amp_tensor *dinp, const struct amp_tensor *dout,
                          uint32_t n, uint32_t c, uint32_t hw)
{
    struct cpu_ctx *cc = ctx;
    const size_t planes = (size_t)n * c, work = planes * hw;
#pragma omp parallel num_threads(cc->threads) if (work >= CPU_PARALLEL_MIN)
    {
        struct lowp_counts counts = { 0 };
        float buf[1024];
#pragma omp for schedule(static)
        for (size_t pl = 0; pl < planes; pl++) {
            const float g = cpu_get(dout, pl) / (float)hw;
            for (size_t i0 = 0; i0 < hw; i0 += 1024) {
                const size_t len = hw - i0 < 1024 ? hw - i0 : 1024;
                for (size_t i = 0; i < len; i++)
                    buf[i] = g;
                cpu_store(dinp, pl * hw + i0, buf, len, &counts);
            }
        }
        cpu_count(cc, dinp, 0, &counts);
    }
    cpu_count(cc, dinp, planes * hw, &(struct lowp_counts){ 0 });
}
