/* CPU reference: pooling. Max pooling 2x2 / stride 2 (floor: an odd last row or column is
 * dropped), which selects an element and so copies its bits (no rounding, nothing counted, as
 * ReLU); global average pooling, an FP32 sum in index order divided by hw and rounded once.
 * OpenMP splits planes (each output has one owner thread). */
#include <math.h>
#include <string.h>

#include "cpu_ops.h"

#if defined(__F16C__)
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

/* Forward over planes [p0, p1): out's element = the chosen input element's bits. */
static inline __attribute__((always_inline)) void
maxpool_planes(char *dst, const char *src, enum amp_dtype dt, size_t esize, size_t pl,
               uint32_t h, uint32_t w)
{
    const uint32_t oh = h / 2, ow = w / 2;
    for (uint32_t oy = 0; oy < oh; oy++)
        for (uint32_t ox = 0; ox < ow; ox++) {
            const size_t o = (pl * oh + oy) * ow + ox;
            const size_t at = window_max(src, dt, pl * h * w, w, oy, ox);
            if (esize == 4)
                ((uint32_t *)dst)[o] = ((const uint32_t *)src)[at];
            else
                ((uint16_t *)dst)[o] = ((const uint16_t *)src)[at];
        }
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
            maxpool_planes(dst, src, AMP_F32, 4, pl, h, w);
        else if (dt == AMP_F16)
            maxpool_planes(dst, src, AMP_F16, 2, pl, h, w);
        else
            maxpool_planes(dst, src, AMP_BF16, 2, pl, h, w);
    }
}

/* Backward of plane pl, dinp and dout of one dtype: each gradient's bits routed to the chosen
 * element, every other element zero. */
static inline __attribute__((always_inline)) void
route_plane(char *dst, const char *src, const void *x, enum amp_dtype dt, size_t esize, size_t pl,
            uint32_t h, uint32_t w)
{
    const uint32_t oh = h / 2, ow = w / 2;
    memset(dst + pl * h * w * esize, 0, (size_t)h * w * esize);
    for (uint32_t oy = 0; oy < oh; oy++)
        for (uint32_t ox = 0; ox < ow; ox++) {
            const size_t o = (pl * oh + oy) * ow + ox;
            const size_t to = window_max(x, dt, pl * h * w, w, oy, ox);
            if (esize == 4)
                ((uint32_t *)dst)[to] = ((const uint32_t *)src)[o];
            else
                ((uint16_t *)dst)[to] = ((const uint16_t *)src)[o];
        }
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
