/* CUDA backend: ReLU forward/backward (on the stored bits, exact in every dtype, 16-byte vector
 * loads), softmax cross-entropy with the accuracy count (FP32 or the intermediates rounded to
 * FP16/BF16, one thread per row, the batch's loss summed in double in a fixed order, so the
 * result is deterministic) and the elementwise add. */
#include <math.h>

#include "cuda_dtype.h"
#include "cuda_internal.h"

enum { EL_THREADS = 256 };

/* Two 16-bit values packed in a word. */
static __device__ __forceinline__ uint32_t relu16x2(uint32_t w, uint32_t inf_bits)
{
    return relu16(w & 0xFFFFu, inf_bits) | (relu16(w >> 16, inf_bits) << 16);
}

/* out > 0 on raw bits: sign clear, non-zero, not NaN. */
static __device__ __forceinline__ bool positive16(uint32_t h, uint32_t inf_bits)
{
    return !(h & 0x8000u) && h != 0u && h <= inf_bits;
}

static __device__ __forceinline__ uint32_t mask16x2(uint32_t g, uint32_t y, uint32_t inf_bits)
{
    const uint32_t lo = positive16(y & 0xFFFFu, inf_bits) ? (g & 0xFFFFu) : 0u;
    const uint32_t hi = positive16(y >> 16, inf_bits) ? (g >> 16) : 0u;
    return lo | (hi << 16);
}

static __device__ __forceinline__ float mask32(float g, float y)
{
    return y > 0.0f ? g : 0.0f;
}

/* nvec 16-byte words through the vector path, then the scalar tail [tail0, n). */
__global__ void relu_forward_kernel(void *out, const void *inp, size_t n, int dt, size_t nvec)
{
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    const uint32_t inf = dt == AMP_F16 ? 0x7C00u : 0x7F80u;
    if (dt == AMP_F32) {
        for (size_t v = tid; v < nvec; v += stride) {
            float4 x = ((const float4 *)inp)[v];
            x.x = relu32(x.x);
            x.y = relu32(x.y);
            x.z = relu32(x.z);
            x.w = relu32(x.w);
            ((float4 *)out)[v] = x;
        }
        for (size_t i = nvec * 4 + tid; i < n; i += stride)
            ((float *)out)[i] = relu32(((const float *)inp)[i]);
        return;
    }
    for (size_t v = tid; v < nvec; v += stride) {
        uint4 x = ((const uint4 *)inp)[v];
        x.x = relu16x2(x.x, inf);
        x.y = relu16x2(x.y, inf);
        x.z = relu16x2(x.z, inf);
        x.w = relu16x2(x.w, inf);
        ((uint4 *)out)[v] = x;
    }
    for (size_t i = nvec * 8 + tid; i < n; i += stride)
        ((uint16_t *)out)[i] = (uint16_t)relu16(((const uint16_t *)inp)[i], inf);
}

__global__ void relu_backward_kernel(void *dinp, const void *dout, const void *out, size_t n,
                                     int dt, size_t nvec)
{
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    const uint32_t inf = dt == AMP_F16 ? 0x7C00u : 0x7F80u;
    if (dt == AMP_F32) {
        for (size_t v = tid; v < nvec; v += stride) {
            float4 g = ((const float4 *)dout)[v];
            const float4 y = ((const float4 *)out)[v];
            g.x = mask32(g.x, y.x);
            g.y = mask32(g.y, y.y);
            g.z = mask32(g.z, y.z);
            g.w = mask32(g.w, y.w);
            ((float4 *)dinp)[v] = g;
        }
        for (size_t i = nvec * 4 + tid; i < n; i += stride)
            ((float *)dinp)[i] = mask32(((const float *)dout)[i], ((const float *)out)[i]);
        return;
    }
    for (size_t v = tid; v < nvec; v += stride) {
        uint4 g = ((const uint4 *)dout)[v];
        const uint4 y = ((const uint4 *)out)[v];
        g.x = mask16x2(g.x, y.x, inf);
        g.y = mask16x2(g.y, y.y, inf);
        g.z = mask16x2(g.z, y.z, inf);
        g.w = mask16x2(g.w, y.w, inf);
        ((uint4 *)dinp)[v] = g;
    }
    for (size_t i = nvec * 8 + tid; i < n; i += stride) {
        const uint32_t y = ((const uint16_t *)out)[i];
        ((uint16_t *)dinp)[i] = positive16(y, inf) ? ((const uint16_t *)dout)[i] : (uint16_t)0;
    }
}

static bool aligned16(const void *p)
{
    return ((uintptr_t)p & 15u) == 0;
}

/* 16-byte words of n elements of dtype dt when every pointer is 16-byte aligned, else 0. */
static size_t vec_words(size_t n, enum amp_dtype dt, const void *a, const void *b, const void *c)
{
    if (!aligned16(a) || !aligned16(b) || (c && !aligned16(c)))
        return 0;
    return n / (dt == AMP_F32 ? 4 : 8);
}

void cuda_relu_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    CUDA_OP_ENTER(c);
    const size_t n = inp->numel;
    if (n == 0)
        return;
    if (inp->dtype != out->dtype || inp->dtype == AMP_I32) {
        CUDA_FAIL(c, "relu_forward: unsupported dtypes %s -> %s", dtype_name(inp->dtype),
                  dtype_name(out->dtype));
        return;
    }
    const size_t nvec = vec_words(n, inp->dtype, out->data, inp->data, NULL);
    const size_t work = nvec + (n - nvec * (inp->dtype == AMP_F32 ? 4 : 8));
    CUDA_LAUNCH(c, relu_forward_kernel, cuda_blocks(c, work, EL_THREADS), EL_THREADS, out->data,
                inp->data, n, inp->dtype, nvec);
}

void cuda_relu_backward(void *ctx, struct amp_tensor *dinp, const struct amp_tensor *dout,
                        const struct amp_tensor *out)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    CUDA_OP_ENTER(c);
    const size_t n = dout->numel;
    if (n == 0)
        return;
    if (dout->dtype != out->dtype || dinp->dtype != dout->dtype || dout->dtype == AMP_I32) {
        CUDA_FAIL(c, "relu_backward: unsupported dtypes (dout %s, out %s, dinp %s)",
                  dtype_name(dout->dtype), dtype_name(out->dtype), dtype_name(dinp->dtype));
        return;
    }
    const size_t nvec = vec_words(n, dout->dtype, dinp->data, dout->data, out->data);
    const size_t work = nvec + (n - nvec * (dout->dtype == AMP_F32 ? 4 : 8));
    CUDA_LAUNCH(c, relu_backward_kernel, cuda_blocks(c, work, EL_THREADS), EL_THREADS, dinp->data,
                dout->data, out->data, n, dout->dtype, nvec);
}

/* v rounded to the softmax's compute dtype (FP16/BF16), kept as FP32; not counted (an
 * intermediate, not a tensor). */
static __device__ __forceinline__ float rc(int dt, float v)
{
    return dt == AMP_F16 ? f16_bits_to_f32(f16_bits_rn(v)) : bf16_bits_to_f32(bf16_bits_rn(v));
}

/* One block; thread t handles rows t, t + blockDim, ... The per-row arithmetic is the
 * reference's, in the same order; the batch sums are reduced in a fixed tree. compute AMP_F32:
 * FP32 throughout; FP16/BF16: every intermediate rounded to it (d = z - max, e = exp(d), the
 * row's sum of e, its log, p = e / sum, the row's loss = log(sum) - d[label]). */
__global__ void __launch_bounds__(EL_THREADS)
    softmax_xent_kernel(void *dlogits, int dl_dt, int dl_cat, float *stats, const void *logits,
                        int lg_dt, const int32_t *labels, const struct loss_scaler *scaler,
                        unsigned n, unsigned m, int compute, struct numerics_counts *cnt)
{
    __shared__ double loss_s[EL_THREADS];
    __shared__ unsigned int correct_s[EL_THREADS];
    const float scale = scaler ? scaler->scale : 1.0f;
    const float g = scale / (float)n;
    double loss = 0.0;
    unsigned int correct = 0;
    lp_count cc = { 0, 0 };
    for (unsigned i = threadIdx.x; i < n; i += blockDim.x) {
        const size_t row = (size_t)i * m;
        unsigned argmax = 0;
        float zmax = ld(logits, row, lg_dt);
        for (unsigned j = 1; j < m; j++) {
            const float z = ld(logits, row + j, lg_dt);
            if (z > zmax) {
                zmax = z;
                argmax = j;
            }
        }
        const int32_t y = labels[i];
        const bool valid = y >= 0 && (unsigned)y < m;
        const float zy = valid ? ld(logits, row + (unsigned)y, lg_dt) : __int_as_float(0x7FC00000);
        correct += valid && argmax == (unsigned)y;
        if (compute == AMP_F32) {
            float sum = 0.0f;
            for (unsigned j = 0; j < m; j++)
                sum += expf(ld(logits, row + j, lg_dt) - zmax);
            loss += (double)(logf(sum) + zmax - zy);
            if (dlogits) {
                const float inv = 1.0f / sum;
                for (unsigned j = 0; j < m; j++) {
                    const float p = expf(ld(logits, row + j, lg_dt) - zmax) * inv;
                    st(dlogits, row + j, dl_dt, (p - (j == (unsigned)y ? 1.0f : 0.0f)) * g, cc);
                }
            }
            continue;
        }
        float sum = 0.0f;
        for (unsigned j = 0; j < m; j++)
            sum += rc(compute, expf(rc(compute, ld(logits, row + j, lg_dt) - zmax)));
        sum = rc(compute, sum);
        const float lse = rc(compute, logf(sum));
        loss += (double)rc(compute, lse - rc(compute, zy - zmax));
        if (dlogits)
            for (unsigned j = 0; j < m; j++) {
                const float e = rc(compute, expf(rc(compute, ld(logits, row + j, lg_dt) - zmax)));
                const float p = rc(compute, e / sum);
                st(dlogits, row + j, dl_dt, (p - (j == (unsigned)y ? 1.0f : 0.0f)) * g, cc);
            }
    }
    loss_s[threadIdx.x] = loss;
    correct_s[threadIdx.x] = correct;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            loss_s[threadIdx.x] += loss_s[threadIdx.x + s];
            correct_s[threadIdx.x] += correct_s[threadIdx.x + s];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        stats[0] = (float)loss_s[0];
        stats[1] = (float)correct_s[0];
        if (dlogits && dt_lowp(dl_dt))
            add_rounded(cnt, dl_cat, (unsigned long long)n * m);
    }
    if (dlogits && dt_lowp(dl_dt))
        flush_counts(cnt, dl_cat, cc);
}

void cuda_softmax_xent(void *ctx, struct amp_tensor *dlogits, struct amp_tensor *stats,
                       const struct amp_tensor *logits, const struct amp_tensor *labels,
                       const struct amp_tensor *scaler, uint32_t n, uint32_t m,
                       enum amp_dtype compute)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    CUDA_OP_ENTER(c);
    if (stats->dtype != AMP_F32 || labels->dtype != AMP_I32 || logits->dtype == AMP_I32 ||
        (dlogits && dlogits->dtype == AMP_I32) || m == 0 || compute == AMP_I32) {
        CUDA_FAIL(c, "softmax_xent: unsupported dtypes or shape");
        return;
    }
    c->step_stats = stats->data;
    if (scaler)
        c->step_scaler = scaler->data;
    CUDA_LAUNCH(c, softmax_xent_kernel, 1, EL_THREADS, dlogits ? dlogits->data : NULL,
                dlogits ? (int)dlogits->dtype : 0, dlogits ? (int)dlogits->category : 0,
                (float *)stats->data, logits->data, logits->dtype, (const int32_t *)labels->data,
                scaler ? (const struct loss_scaler *)scaler->data : NULL, n, m, (int)compute,
                c->d_counts);
}

/* out = a + b: each read in its own dtype, the FP32 sum rounded once to out's dtype and counted.
 * Element i is read before it is written, so out may alias a or b. */
__global__ void __launch_bounds__(EL_THREADS)
    add_kernel(void *out, int o_dt, int o_cat, const void *a, int a_dt, const void *b, int b_dt,
               size_t n, struct numerics_counts *cnt)
{
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    lp_count cc = { 0, 0 };
    for (size_t i = tid; i < n; i += stride)
        st(out, i, o_dt, ld(a, i, a_dt) + ld(b, i, b_dt), cc);
    if (dt_lowp(o_dt)) {
        if (tid == 0)
            add_rounded(cnt, o_cat, n);
        flush_counts(cnt, o_cat, cc);
    }
}

void cuda_add(void *ctx, struct amp_tensor *out, const struct amp_tensor *a,
              const struct amp_tensor *b)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    CUDA_OP_ENTER(c);
    if (a->numel != out->numel || b->numel != out->numel || out->dtype == AMP_I32 ||
        a->dtype == AMP_I32 || b->dtype == AMP_I32) {
        CUDA_FAIL(c, "add: unsupported dtypes or sizes (%s %zu + %s %zu -> %s %zu)",
                  dtype_name(a->dtype), a->numel, dtype_name(b->dtype), b->numel,
                  dtype_name(out->dtype), out->numel);
        return;
    }
    const size_t n = out->numel;
    if (n == 0)
        return;
    CUDA_LAUNCH(c, add_kernel, cuda_blocks(c, n, EL_THREADS), EL_THREADS, out->data, out->dtype,
                out->category, a->data, a->dtype, b->data, b->dtype, n, c->d_counts);
}
