/* CUDA backend: FP8 quantization of conv and linear operands (harness/core/fp8_scaling.h), with
 * the device's own conversion (cuda_fp8.h's __nv_cvt_float_to_fp8 with __NV_SATFINITE, which
 * tests/test_fp8.c checks against the CPU reference's bit for bit). The scale and the statistics
 * stay on the device: current scaling's amax is reduced by a kernel, delayed scaling's history
 * and next scale are updated by one, so a step needs no host synchronisation and replays from a
 * CUDA Graph. Per-block partial statistics are summed in block order: the same grid gives the
 * same figures. MX block scaling has no Hopper hardware path: its blocks are scaled and
 * converted here element by element (one thread per block of 32, the E8M0 rules of
 * fp8_scaling.h), an emulation the precision trace names. */
#include <cuda_fp8.h>
#include <math.h>

#include "cuda_dtype.h"
#include "cuda_internal.h"
#include "fp8_scaling.h"

enum { FP8_THREADS = 256 };

/* One block's share of a quantization. */
struct fp8_partial {
    double signal, noise;
    unsigned long long n, saturated, underflow, nonfinite;
    float amax;
};

/* What the kernels share in scratch: the scale in use, then one partial per block. */
struct fp8_scratch {
    float scale;
    float pad;
    struct fp8_partial part[1];
};

static __device__ __forceinline__ float fp8_round_trip(float y, int format)
{
    const __nv_fp8_interpretation_t kind = format == FP8_E4M3 ? __NV_E4M3 : __NV_E5M2;
    const __nv_fp8_storage_t q = __nv_cvt_float_to_fp8(y, __NV_SATFINITE, kind);
    return __half2float(__half(__nv_cvt_fp8_to_halfraw(q, kind)));
}

/* The dequantized value q * inv as stored: a NaN as the CPU reference writes it (the sign and
 * the quiet bit only), so that the two backends' bits agree. */
static __device__ __forceinline__ float fp8_dequantized(float q, float inv)
{
    const float d = q * inv;
    return d == d ? d : __uint_as_float((__float_as_uint(q) & 0x80000000u) | 0x7FC00000u);
}

/* Sum (or max, for amax) of the block's threads' values into thread 0's, in a fixed tree. */
template <typename T> static __device__ __forceinline__ T block_sum(T v, T *sh)
{
    sh[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = FP8_THREADS / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s)
            sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    const T r = sh[0];
    __syncthreads();
    return r;
}

static __device__ __forceinline__ float block_max(float v, float *sh)
{
    sh[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = FP8_THREADS / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s)
            sh[threadIdx.x] = fmaxf(sh[threadIdx.x], sh[threadIdx.x + s]);
        __syncthreads();
    }
    const float r = sh[0];
    __syncthreads();
    return r;
}

/* Current scaling: each block's amax of the finite elements. */
__global__ void __launch_bounds__(FP8_THREADS)
    fp8_amax_kernel(struct fp8_scratch *w, const void *src, int dt, unsigned long long n)
{
    __shared__ float sh[FP8_THREADS];
    float m = 0.0f;
    for (unsigned long long i = (unsigned long long)blockIdx.x * FP8_THREADS + threadIdx.x; i < n;
         i += (unsigned long long)gridDim.x * FP8_THREADS) {
        const float a = fabsf(ld(src, i, dt));
        m = a - a == 0.0f && a > m ? a : m;
    }
    m = block_max(m, sh);
    if (threadIdx.x == 0)
        w->part[blockIdx.x].amax = m;
}

/* The scale this quantization uses: current scaling's from the blocks' amax, else the state's;
 * also into the operand's slot (when it has one): the scale and its inverse, for the FP8 GEMMs. */
__global__ void fp8_scale_kernel(struct fp8_scratch *w, const struct fp8_tensor_state *s,
                                 int scaling, unsigned blocks, float *slot)
{
    float scale = s->scale;
    if (scaling == FP8_SCALING_CURRENT) {
        float m = 0.0f;
        for (unsigned b = 0; b < blocks; b++)
            m = fmaxf(m, w->part[b].amax);
        scale = fp8_current_scale(s, m);
    }
    w->scale = scale;
    if (slot) {
        slot[0] = scale;
        slot[1] = 1.0f / scale;
    }
}

/* One thread's statistics of the elements it quantized: add() per element (x, y = x * scale,
 * q its dequantized value), then store() reduces the block's threads into its partial. */
struct fp8_acc {
    double signal, noise;
    unsigned long long sat, uf, nf;
    float amax;

    __device__ void add(float x, float y, float q, int format)
    {
        sat += fp8_saturates(y, format);
        uf += x != 0.0f && q == 0.0f;
        nf += y != y;
        if (x - x == 0.0f) {
            const float a = fabsf(x);
            amax = a > amax ? a : amax;
            signal += (double)x * x;
            noise += ((double)x - q) * ((double)x - q);
        }
    }

    /* Every thread of the block calls it. */
    __device__ void store(struct fp8_scratch *w) const
    {
        __shared__ double shd[FP8_THREADS];
        __shared__ unsigned long long shu[FP8_THREADS];
        __shared__ float shf[FP8_THREADS];
        struct fp8_partial p;
        p.signal = block_sum(signal, shd);
        p.noise = block_sum(noise, shd);
        p.saturated = block_sum(sat, shu);
        p.underflow = block_sum(uf, shu);
        p.nonfinite = block_sum(nf, shu);
        p.amax = block_max(amax, shf);
        p.n = 0;
        if (threadIdx.x == 0)
            w->part[blockIdx.x] = p;
    }
};

/* dst = fp8(src * scale) / scale, and (stats) each block's counts and sums. */
__global__ void __launch_bounds__(FP8_THREADS)
    fp8_quantize_kernel(float *dst, const void *src, int dt, unsigned long long n,
                        const struct fp8_tensor_state *s, struct fp8_scratch *w, int stats)
{
    const int format = s->format;
    const float scale = w->scale, inv = 1.0f / scale;
    struct fp8_acc acc = { 0.0, 0.0, 0, 0, 0, 0.0f };
    for (unsigned long long i = (unsigned long long)blockIdx.x * FP8_THREADS + threadIdx.x; i < n;
         i += (unsigned long long)gridDim.x * FP8_THREADS) {
        const float x = ld(src, i, dt), y = x * scale;
        const float q = fp8_dequantized(fp8_round_trip(y, format), inv);
        dst[i] = q;
        if (stats)
            acc.add(x, y, q, format);
    }
    if (stats)
        acc.store(w);
}

/* MX: one thread per block of MX_BLOCK of the state's layout ([outer, len, inner], blocks along
 * len at stride inner, in fp8.h's block order, so that neighbouring threads read neighbouring
 * columns): the block's amax, its E8M0 scale, its elements converted (as fp8.c's
 * mx_fake_quantize_layout), and the block partials. */
__global__ void __launch_bounds__(FP8_THREADS)
    fp8_mx_kernel(float *dst, const void *src, int dt, unsigned long long n,
                  const struct fp8_tensor_state *s, struct fp8_scratch *w, int stats)
{
    const int format = s->format, rceil = s->mx_rounding == MX_SCALE_RCEIL;
    const struct mx_layout L = fp8_mx_layout(s, (size_t)n);
    const unsigned long long len = L.len, inner = L.inner, nb = (len + MX_BLOCK - 1) / MX_BLOCK;
    const unsigned long long blocks = L.outer * nb * inner;
    const float max = fp8_format_max(format);
    const int emax = format == FP8_E4M3 ? 8 : 15;
    struct fp8_acc acc = { 0.0, 0.0, 0, 0, 0, 0.0f };
    for (unsigned long long bi = (unsigned long long)blockIdx.x * FP8_THREADS + threadIdx.x;
         bi < blocks; bi += (unsigned long long)gridDim.x * FP8_THREADS) {
        const unsigned long long i = bi % inner, ob = bi / inner, b = ob % nb, o = ob / nb;
        const unsigned long long off = (o * len + b * MX_BLOCK) * inner + i;
        const unsigned blen = (unsigned)(len - b * MX_BLOCK < MX_BLOCK ? len - b * MX_BLOCK
                                                                        : MX_BLOCK);
        uint32_t am_bits = 0;
        float am = 0.0f;
        for (unsigned j = 0; j < blen; j++) {
            const float x = ld(src, off + j * inner, dt);
            const uint32_t a = __float_as_uint(x) & 0x7FFFFFFFu;
            am_bits = a > am_bits ? a : am_bits;
            am = fmaxf(am, fabsf(x));
        }
        const struct mx_block_scale sc = rceil ? mx_scale_rceil_of(am, max)
                                               : mx_scale_floor_of(am_bits, emax);
        const float inv = mx_e8m0_value(sc.e);
        for (unsigned j = 0; j < blen; j++) {
            const float x = ld(src, off + j * inner, dt), y = x * sc.mul;
            const float q = fp8_dequantized(fp8_round_trip(y, format), inv);
            dst[off + j * inner] = q;
            if (stats)
                acc.add(x, y, q, format);
        }
    }
    if (stats)
        acc.store(w);
}

/* A training quantization's statistics into the state (blocks summed in order), and delayed
 * scaling's history and next scale. */
__global__ void fp8_finish_kernel(struct fp8_tensor_state *s, float *history,
                                  const struct fp8_scratch *w, int scaling, unsigned blocks,
                                  unsigned long long n)
{
    struct fp8_partial t = { 0.0, 0.0, 0, 0, 0, 0, 0.0f };
    for (unsigned b = 0; b < blocks; b++) {
        const struct fp8_partial *p = &w->part[b];
        t.signal += p->signal;
        t.noise += p->noise;
        t.saturated += p->saturated;
        t.underflow += p->underflow;
        t.nonfinite += p->nonfinite;
        t.amax = fmaxf(t.amax, p->amax);
    }
    s->last_scale = scaling == FP8_SCALING_MX ? 0.0f : w->scale;
    s->last_amax = t.amax;
    s->n = n;
    s->saturated = t.saturated;
    s->underflow = t.underflow;
    s->nonfinite = t.nonfinite;
    s->signal = t.signal;
    s->noise = t.noise;
    if (scaling == FP8_SCALING_DELAYED)
        fp8_delayed_update(s, history, t.nonfinite ? __uint_as_float(0x7FC00000u) : t.amax);
}

void cuda_fp8_quantize(void *ctx, struct amp_tensor *dst, const struct amp_tensor *src,
                       enum fp8_scaling scaling, struct amp_tensor *state,
                       struct amp_tensor *history, int train)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    CUDA_OP_ENTER(c);
    const unsigned long long n = src->numel;
    if (dst->dtype != AMP_F32 || dst->numel < n || src->dtype == AMP_I32 ||
        (scaling == FP8_SCALING_DELAYED && !history)) {
        CUDA_FAIL(c, "fp8_quantize: unsupported dtypes or sizes (%s -> %s)",
                  dtype_name(src->dtype), dtype_name(dst->dtype));
        return;
    }
    const unsigned blocks = cuda_blocks(c, n ? n : 1, FP8_THREADS);
    struct fp8_scratch *w = (struct fp8_scratch *)cuda_scratch(
        c, sizeof(struct fp8_scratch) + blocks * sizeof(struct fp8_partial));
    if (!w)
        return;
    struct fp8_tensor_state *s = (struct fp8_tensor_state *)state->data;
    if (scaling == FP8_SCALING_MX) {
        cuda_fp8_forget(c, dst->data); /* no FP8 GEMM takes MX blocks on Hopper */
        CUDA_LAUNCH(c, fp8_mx_kernel, blocks, FP8_THREADS, (float *)dst->data,
                    (const void *)src->data, (int)src->dtype, n,
                    (const struct fp8_tensor_state *)s, w, train);
        if (train)
            CUDA_LAUNCH(c, fp8_finish_kernel, 1, 1, s, (float *)NULL,
                        (const struct fp8_scratch *)w, (int)scaling, blocks, n);
        return;
    }
    if (scaling == FP8_SCALING_CURRENT)
        CUDA_LAUNCH(c, fp8_amax_kernel, blocks, FP8_THREADS, w, (const void *)src->data,
                    (int)src->dtype, n);
    float *slot = cuda_fp8_operand_slot(c, dst->data, s);
    if (c->err)
        return;
    CUDA_LAUNCH(c, fp8_scale_kernel, 1, 1, w, (const struct fp8_tensor_state *)s, (int)scaling,
                blocks, slot);
    CUDA_LAUNCH(c, fp8_quantize_kernel, blocks, FP8_THREADS, (float *)dst->data,
                (const void *)src->data, (int)src->dtype, n,
                (const struct fp8_tensor_state *)s, w, train);
    if (train)
        CUDA_LAUNCH(c, fp8_finish_kernel, 1, 1, s, history ? (float *)history->data : NULL,
                    (const struct fp8_scratch *)w, (int)scaling, blocks, n);
}
