/* CUDA backend: pooling, as own kernels (no cuDNN): 2x2 max pooling with stride 2 (forward and
 * backward) and global average pooling (forward and backward). Pairs with reference/cpu_pool.c.
 *
 * Max pooling: out[n, c, h/2, w/2], an odd last row or column dropped (floor). The window is
 * read in row-major order (0,0), (0,1), (1,0), (1,1) and the first maximum wins: a later value
 * replaces it only when strictly greater, and a NaN is the maximum (the first NaN of the window
 * wins and nothing replaces it). The forward stores that element's bits (NaN propagates, -0 and
 * +0 as they are: no rounding, nothing counted, as ReLU); the backward routes each dout to the
 * same element (one thread per dinp element, which finds its window's winner: windows do not
 * overlap, so every dinp element is written once, 0 outside the winners and in the dropped
 * row/column), bit for bit when dinp has dout's dtype, else converted, rounded and counted.
 *
 * Global average pooling: out[n, c] = (the FP32 sum of inp[n, c, 0..hw) in index order) / hw,
 * one thread per (n, c), so the sum's order is the reference's; the backward writes
 * dout[n, c] / hw to every element of the plane. Both round once to the output's dtype and
 * count it. Every kernel is deterministic (no atomics but the integer counters). */
#include <math.h>

#include "cuda_dtype.h"
#include "cuda_internal.h"

enum { POOL_THREADS = 256 };

/* Index (0..3) of the window element that wins: the first maximum in row-major order, a NaN
 * counting as the maximum. */
static __device__ __forceinline__ int window_winner(const float v[4])
{
    int best = 0;
    for (int k = 1; k < 4; k++) {
        if (isnan(v[best]))
            break;
        if (isnan(v[k]) || v[k] > v[best])
            best = k;
    }
    return best;
}

/* Element i of a tensor of dtype dt copied bit for bit to element j of another of the same
 * dtype. */
static __device__ __forceinline__ void copy_elem(void *dst, size_t j, const void *src, size_t i,
                                                 int dt)
{
    if (dt == AMP_F32)
        ((uint32_t *)dst)[j] = ((const uint32_t *)src)[i];
    else
        ((uint16_t *)dst)[j] = ((const uint16_t *)src)[i];
}

/* The four elements of window (oh, ow) of a plane of width w starting at base. */
static __device__ __forceinline__ void window_load(float v[4], size_t idx[4], const void *x,
                                                   int dt, size_t base, unsigned w, unsigned oh,
                                                   unsigned ow)
{
    const size_t r0 = base + (size_t)(2 * oh) * w + 2 * ow, r1 = r0 + w;
    idx[0] = r0;
    idx[1] = r0 + 1;
    idx[2] = r1;
    idx[3] = r1 + 1;
    for (int k = 0; k < 4; k++)
        v[k] = ld(x, idx[k], dt);
}

__global__ void __launch_bounds__(POOL_THREADS)
    maxpool_forward_kernel(void *out, const void *inp, int dt, unsigned long long planes,
                           unsigned h, unsigned w)
{
    const unsigned oh_n = h / 2, ow_n = w / 2;
    const size_t per_plane = (size_t)oh_n * ow_n, total = (size_t)planes * per_plane;
    for (size_t o = (size_t)blockIdx.x * blockDim.x + threadIdx.x; o < total;
         o += (size_t)gridDim.x * blockDim.x) {
        const size_t plane = o / per_plane, r = o % per_plane;
        float v[4];
        size_t idx[4];
        window_load(v, idx, inp, dt, plane * h * w, w, (unsigned)(r / ow_n),
                    (unsigned)(r % ow_n));
        copy_elem(out, o, inp, idx[window_winner(v)], dt);
    }
}

/* dinp and dout of one dtype: the winners get dout's bits, nothing is rounded or counted; of
 * different dtypes: dout converted, rounded and counted (every dinp element). */
__global__ void __launch_bounds__(POOL_THREADS)
    maxpool_backward_kernel(void *dinp, int d_dt, int d_cat, const void *dout, int g_dt,
                            const void *inp, int x_dt, unsigned long long planes, unsigned h,
                            unsigned w, struct numerics_counts *cnt)
{
    const unsigned oh_n = h / 2, ow_n = w / 2;
    const size_t per_plane = (size_t)h * w, total = (size_t)planes * per_plane;
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const bool same = d_dt == g_dt;
    lp_count cc = { 0, 0 };
    for (size_t i = tid; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const size_t plane = i / per_plane, r = i % per_plane;
        const unsigned ih = (unsigned)(r / w), iw = (unsigned)(r % w);
        const unsigned oh = ih / 2, ow = iw / 2;
        bool routed = false;
        if (oh < oh_n && ow < ow_n) {
            float v[4];
            size_t idx[4];
            window_load(v, idx, inp, x_dt, plane * per_plane, w, oh, ow);
            routed = window_winner(v) == (int)((ih & 1u) * 2u + (iw & 1u));
        }
        const size_t o = (plane * oh_n + oh) * ow_n + ow;
        if (!same)
            st(dinp, i, d_dt, routed ? ld(dout, o, g_dt) : 0.0f, cc);
        else if (routed)
            copy_elem(dinp, i, dout, o, d_dt);
        else if (d_dt == AMP_F32)
            ((float *)dinp)[i] = 0.0f;
        else
            ((uint16_t *)dinp)[i] = 0;
    }
    if (!same && dt_lowp(d_dt)) {
        if (tid == 0)
            add_rounded(cnt, d_cat, total);
        flush_counts(cnt, d_cat, cc);
    }
}

__global__ void __launch_bounds__(POOL_THREADS)
    avgpool_forward_kernel(void *out, int o_dt, int o_cat, const void *inp, int x_dt,
                           unsigned long long planes, unsigned hw, struct numerics_counts *cnt)
{
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    lp_count cc = { 0, 0 };
    for (size_t p = tid; p < planes; p += (size_t)gridDim.x * blockDim.x) {
        const size_t base = p * hw;
        float sum = 0.0f;
        for (unsigned i = 0; i < hw; i++)
            sum += ld(inp, base + i, x_dt);
        st(out, p, o_dt, sum / (float)hw, cc);
    }
    if (dt_lowp(o_dt)) {
        if (tid == 0)
            add_rounded(cnt, o_cat, planes);
        flush_counts(cnt, o_cat, cc);
    }
}

__global__ void __launch_bounds__(POOL_THREADS)
    avgpool_backward_kernel(void *dinp, int d_dt, int d_cat, const void *dout, int g_dt,
                            unsigned long long planes, unsigned hw, struct numerics_counts *cnt)
{
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const size_t total = (size_t)planes * hw;
    lp_count cc = { 0, 0 };
    for (size_t i = tid; i < total; i += (size_t)gridDim.x * blockDim.x)
        st(dinp, i, d_dt, ld(dout, i / hw, g_dt) / (float)hw, cc);
    if (dt_lowp(d_dt)) {
        if (tid == 0)
            add_rounded(cnt, d_cat, total);
        flush_counts(cnt, d_cat, cc);
    }
}

static bool float_dtype(enum amp_dtype dt)
{
    return dt == AMP_F32 || dt == AMP_F16 || dt == AMP_BF16;
}

void cuda_maxpool_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                          uint32_t n, uint32_t c_, uint32_t h, uint32_t w)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    CUDA_OP_ENTER(c);
    const unsigned long long planes = (unsigned long long)n * c_;
    if (!float_dtype(inp->dtype) || out->dtype != inp->dtype || inp->numel < planes * h * w ||
        out->numel < planes * (h / 2) * (w / 2)) {
        CUDA_FAIL(c, "maxpool_forward: unsupported dtypes or sizes (%s -> %s)",
                  dtype_name(inp->dtype), dtype_name(out->dtype));
        return;
    }
    const size_t total = (size_t)planes * (h / 2) * (w / 2);
    if (total == 0)
        return;
    CUDA_LAUNCH(c, maxpool_forward_kernel, cuda_blocks(c, total, POOL_THREADS), POOL_THREADS,
                out->data, inp->data, inp->dtype, planes, h, w);
}

void cuda_maxpool_backward(void *ctx, struct amp_tensor *dinp, const struct amp_tensor *dout,
                           const struct amp_tensor *inp, uint32_t n, uint32_t c_, uint32_t h,
                           uint32_t w)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    CUDA_OP_ENTER(c);
    const unsigned long long planes = (unsigned long long)n * c_;
    if (!float_dtype(dout->dtype) || !float_dtype(dinp->dtype) || !float_dtype(inp->dtype) ||
        dinp->numel < planes * h * w || inp->numel < planes * h * w ||
        dout->numel < planes * (h / 2) * (w / 2)) {
        CUDA_FAIL(c, "maxpool_backward: unsupported dtypes or sizes (dout %s, inp %s, dinp %s)",
                  dtype_name(dout->dtype), dtype_name(inp->dtype), dtype_name(dinp->dtype));
        return;
    }
    const size_t total = (size_t)planes * h * w;
    if (total == 0)
        return;
    CUDA_LAUNCH(c, maxpool_backward_kernel, cuda_blocks(c, total, POOL_THREADS), POOL_THREADS,
                dinp->data, dinp->dtype, dinp->category, dout->data, dout->dtype, inp->data,
                inp->dtype, planes, h, w, c->d_counts);
}

void cuda_avgpool_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                          uint32_t n, uint32_t c_, uint32_t hw)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    CUDA_OP_ENTER(c);
    const unsigned long long planes = (unsigned long long)n * c_;
    if (!float_dtype(inp->dtype) || !float_dtype(out->dtype) || inp->numel < planes * hw ||
        out->numel < planes) {
        CUDA_FAIL(c, "avgpool_forward: unsupported dtypes or sizes (%s -> %s)",
                  dtype_name(inp->dtype), dtype_name(out->dtype));
        return;
    }
    if (planes == 0)
        return;
    CUDA_LAUNCH(c, avgpool_forward_kernel, cuda_blocks(c, planes, POOL_THREADS), POOL_THREADS,
                out->data, out->dtype, out->category, inp->data, inp->dtype, planes, hw,
                c->d_counts);
}

void cuda_avgpool_backward(void *ctx, struct amp_tensor *dinp, const struct amp_tensor *dout,
                           uint32_t n, uint32_t c_, uint32_t hw)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    CUDA_OP_ENTER(c);
    const unsigned long long planes = (unsigned long long)n * c_;
    if (!float_dtype(dout->dtype) || !float_dtype(dinp->dtype) || dout->numel < planes ||
        dinp->numel < planes * hw) {
        CUDA_FAIL(c, "avgpool_backward: unsupported dtypes or sizes (%s -> %s)",
                  dtype_name(dout->dtype), dtype_name(dinp->dtype));
        return;
    }
    const size_t total = (size_t)planes * hw;
    if (total == 0)
        return;
    CUDA_LAUNCH(c, avgpool_backward_kernel, cuda_blocks(c, total, POOL_THREADS), POOL_THREADS,
                dinp->data, dinp->dtype, dinp->category, dout->data, dout->dtype, planes, hw,
                c->d_counts);
}
