/* CPU reference: pooling. Max pooling 2x2 / stride 2 (floor: an odd last row or column is
 * dropped), which selects an element and so copies its bits (no rounding, nothing counted, as
 * ReLU); global average pooling, an FP32 sum in index order divided by hw and rounded once.
 * OpenMP splits planes (each output has one owner thread). */
#include <math.h>
#include <string.h>

#include "cpu_ops.h"

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

/* The four elements of window (oy, ox) of the plane starting at element `plane`, as FP32, and
 * their element indices. */
static inline void window(const struct amp_tensor *t, size_t plane, uint32_t w, uint32_t oy,
                          uint32_t ox, float v[4], size_t idx[4])
{
    const size_t top = plane + (size_t)(2 * oy) * w + 2 * ox;
    idx[0] = top;
    idx[1] = top + 1;
    idx[2] = top + w;
    idx[3] = top + w + 1;
    for (int j = 0; j < 4; j++)
        v[j] = cpu_get(t, idx[j]);
}

void cpu_maxpool_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                         uint32_t n, uint32_t c, uint32_t h, uint32_t w)
{
    const int threads = ((struct cpu_ctx *)ctx)->threads;
    const uint32_t oh = h / 2, ow = w / 2;
    const size_t planes = (size_t)n * c, esize = dtype_size(inp->dtype);
    const size_t work = planes * h * w;
    char *dst = out->data;
    const char *src = inp->data;
#pragma omp parallel for schedule(static) num_threads(threads) if (work >= CPU_PARALLEL_MIN)
    for (size_t pl = 0; pl < planes; pl++)
        for (uint32_t oy = 0; oy < oh; oy++)
            for (uint32_t ox = 0; ox < ow; ox++) {
                float v[4];
                size_t idx[4];
                window(inp, pl * h * w, w, oy, ox, v, idx);
                const size_t o = (pl * oh + oy) * ow + ox;
                memcpy(dst + o * esize, src + idx[window_argmax(v)] * esize, esize);
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
#pragma omp parallel num_threads(cc->threads) if (work >= CPU_PARALLEL_MIN)
    {
        struct lowp_counts counts = { 0 };
#pragma omp for schedule(static)
        for (size_t pl = 0; pl < planes; pl++) {
            memset(dst + pl * h * w * esize, 0, (size_t)h * w * esize);
            for (uint32_t oy = 0; oy < oh; oy++)
                for (uint32_t ox = 0; ox < ow; ox++) {
                    float v[4];
                    size_t idx[4];
                    window(inp, pl * h * w, w, oy, ox, v, idx);
                    const size_t o = (pl * oh + oy) * ow + ox, to = idx[window_argmax(v)];
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
