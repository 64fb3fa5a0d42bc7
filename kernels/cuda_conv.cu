/* CUDA backend: the 2-D convolution (NCHW, cross-correlation, any kernel size, stride, zero
 * padding and channel count cuDNN takes: cuda_conv2d_supports refuses only what cuDNN's legacy
 * API refuses) through cuDNN's convolution API (cudnnConvolutionForward / BackwardFilter /
 * BackwardData, cuDNN 9's libcudnn_cnn). The descriptors come from struct conv_shape: x [n,
 * c_in, h, w], w [c_out, c_in, kernel, kernel], pads and strides equal in both directions,
 * dilation 1, y [n, c_out, conv_out_h, conv_out_w].
 *
 * Math: FP32 with tensor ops off (CUDNN_FMA_MATH: true FP32, the fp32 recipe), FP32 with TF32
 * allowed (CUDNN_DEFAULT_MATH, the tf32 recipe), FP16/BF16 data with FP32 accumulation
 * (compute type FLOAT, CUDNN_TENSOR_OP_MATH requested; the math each direction runs is the one
 * its chosen heuristic result reports). Algorithms come from the v7 heuristics
 * (cudnnGet*Algorithm_v7: host-side queries) once per shape/dtype/math and workspace bound,
 * outside any capture: the first algorithm in the heuristic order (then the documented
 * deterministic fallbacks) that succeeds, fits the workspace, runs in an allowed math (FMA only
 * for true FP32; never the FP16 down-conversion), under --deterministic is
 * CUDNN_DETERMINISTIC, and runs once on scratch tensors without an error (PyTorch's try_all).
 *
 * Bias and rounding: the FP16/BF16 3x3 forward with c_in < 8 is our own kernel (the reference's
 * sum, + bias, one rounding). Other FP16/BF16 forwards with a bias run
 * cudnnConvolutionBiasActivationForward (sum + bias in FP32, one rounding; fused_choose); where
 * cuDNN refuses it (or for FP32) cuDNN writes the convolution in the output dtype and an epilogue
 * adds the bias, for FP16/BF16 a second rounding (the bias gradient is a deterministic reduction
 * kernel here, FP32, rounded once). A ReLU the model fuses into the conv (conv2d_forward's relu)
 * runs in the same kernels after the rounding and its count: the relu op's bits, one kernel and
 * one pass over the output fewer. cuDNN's own RELU activation is not used: the counters need
 * the sums that round to +-0 before the ReLU hides them among its zeros.
 * The bias is optional: without one (bias NULL) FP32 outputs are cuDNN's as they are, and
 * without dbias the bias-gradient kernels do not run.
 * The numerics counters need the value before rounding, which cuDNN does not expose: a rounded
 * FP16/BF16 result can only have underflowed or overflowed if it is +-0 or +-inf, so the
 * epilogue/check kernels recompute exactly those few elements in FP32 (a kernel x kernel x c_in
 * dot product over the taps inside the input for the forward, the same for the data gradient
 * over the output positions and taps that read the element, an n x out_h x out_w reduction for
 * a filter-gradient tap), store that single rounding, and count underflow/overflow against the
 * exact value. */
#include <stdio.h>
#include <string.h>

#include "cuda_dtype.h"
#include "cuda_internal.h"

/* Largest workspace an algorithm may ask for (per direction). */
static const size_t CONV_WS_CAP = (size_t)64 << 20;

enum { CONV_THREADS = 256 };

/* ---- kernels ---- */

/* The exact FP32 value of the forward output (n, co, oh, ow): bias + the K x K x c_in products
 * over the taps inside the input (zero padding contributes nothing). */
static __device__ float conv_exact(const void *x, const void *w, int dt, float b, unsigned n,
                                   unsigned co, unsigned oh, unsigned ow, const conv_geom &g)
{
    float acc = 0.0f;
    for (unsigned ci = 0; ci < g.CI; ci++)
        for (unsigned ky = 0; ky < g.K; ky++) {
            const int ih = (int)(oh * g.S + ky) - (int)g.P;
            if (ih < 0 || ih >= (int)g.H)
                continue;
            for (unsigned kx = 0; kx < g.K; kx++) {
                const int iw = (int)(ow * g.S + kx) - (int)g.P;
                if (iw < 0 || iw >= (int)g.W)
                    continue;
                acc += ld(x, (((size_t)n * g.CI + ci) * g.H + ih) * g.W + iw, dt) *
                       ld(w, (((size_t)co * g.CI + ci) * g.K + ky) * g.K + kx, dt);
            }
        }
    return acc + b;
}

/* out = round(out + bias) in place (cuDNN's result already in out's dtype, add_bias): one block
 * per output plane (n, co). FP16/BF16 results that are +-0, +-inf or +-the largest finite value
 * (where the second rounding can hide an overflow: 65472 + 40 rounds to 65504, the exact
 * 65484 + 40 to inf) are recomputed from x and w, rounded once and counted against the exact
 * value. Without add_bias (no bias, or the fused forward's bias already inside cuDNN's single
 * rounding) cuDNN's result is the op's: only FP16/BF16 outputs need the kernel, for the count
 * and the +-0 / +-inf elements' exact value (with the bias, when there is one). relu: the
 * fused ReLU on each stored value, after its rounding was counted. */
__global__ void __launch_bounds__(CONV_THREADS)
    conv_forward_epilogue(void *out, int dt, int out_cat, const void *bias, int b_dt,
                          int add_bias, int relu, const void *x, const void *w, conv_geom g,
                          unsigned long long total, struct numerics_counts *cnt)
{
    const unsigned plane = blockIdx.x, co = plane % g.CO, n = plane / g.CO, HW = g.OH * g.OW;
    const size_t base = (size_t)plane * HW;
    const float b = bias ? ld(bias, co, b_dt) : 0.0f;
    const bool twice = bias && add_bias; /* a second rounding, after cuDNN's */
    if (!dt_lowp(dt)) {
        float *o = (float *)out + base;
        for (unsigned p = threadIdx.x; p < HW; p += blockDim.x) {
            const float v = twice ? o[p] + b : o[p];
            o[p] = relu ? relu32(v) : v;
        }
        return;
    }
    const uint32_t inf = dt == AMP_F16 ? 0x7C00u : 0x7F80u;
    lp_count cc = { 0, 0 };
    uint16_t *o = (uint16_t *)out + base;
    for (unsigned p = threadIdx.x; p < HW; p += blockDim.x) {
        uint16_t r = o[p];
        if (twice)
            r = bits16_rn(dt, ld(o, p, dt) + b);
        if (twice ? bits16_extreme(dt, r) : bits16_zero_or_inf(dt, r)) {
            /* rare: the exact value decides and is stored */
            const float exact = conv_exact(x, w, dt, b, n, co, p / g.OW, p % g.OW, g);
            r = bits16_rn(dt, exact);
            count_round(cc, __float_as_uint(exact), r, inf);
        }
        o[p] = relu ? (uint16_t)relu16(r, inf) : r;
    }
    if (plane == 0 && threadIdx.x == 0)
        add_rounded(cnt, out_cat, total);
    flush_counts(cnt, out_cat, cc);
}

/* The direct FP16/BF16 3x3 forward (stride 1, padding 1) for small c_in, where tensor cores
 * would pad the channels to 8 and cuDNN's legacy heuristics may offer no BF16 algorithm at all:
 * one block per output plane (n, co), one thread per output element. The sum follows the CPU
 * reference's 3x3 path term for term (reference/cpu_conv.c, plane_taps and store_grid): per input
 * channel the nine products in row-major tap order, padding taps reading 0, summed left to right;
 * the channels added in order; then + bias in FP32 and one rounding into out's dtype, counted.
 * No bias: the sum is stored as it is (not even + 0, which would turn -0 into +0). relu: the
 * fused ReLU on the stored value. */
__global__ void __launch_bounds__(CONV_THREADS)
    conv_forward_direct3x3(void *out, int dt, int out_cat, const void *inp, const void *w,
                           const void *bias, int b_dt, int relu, conv_geom g,
                           unsigned long long total, struct numerics_counts *cnt)
{
    const unsigned plane = blockIdx.x, co = plane % g.CO, n = plane / g.CO;
    const unsigned H = g.H, W = g.W, HW = H * W;
    lp_count cc = { 0, 0 };
    for (unsigned p = threadIdx.x; p < HW; p += blockDim.x) {
        const int oh = (int)(p / W), ow = (int)(p % W);
        float acc = 0.0f;
        for (unsigned ci = 0; ci < g.CI; ci++) {
            const size_t xb = ((size_t)n * g.CI + ci) * HW, wb = ((size_t)co * g.CI + ci) * 9;
            float x[9];
            for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++) {
                    const int ih = oh + ky - 1, iw = ow + kx - 1;
                    x[ky * 3 + kx] = ih >= 0 && ih < (int)H && iw >= 0 && iw < (int)W
                                         ? ld(inp, xb + (size_t)ih * W + iw, dt)
                                         : 0.0f;
                }
            /* one expression, as the reference writes it (the same contraction into FMAs) */
            const float v = ld(w, wb + 0, dt) * x[0] + ld(w, wb + 1, dt) * x[1] +
                            ld(w, wb + 2, dt) * x[2] + ld(w, wb + 3, dt) * x[3] +
                            ld(w, wb + 4, dt) * x[4] + ld(w, wb + 5, dt) * x[5] +
                            ld(w, wb + 6, dt) * x[6] + ld(w, wb + 7, dt) * x[7] +
                            ld(w, wb + 8, dt) * x[8];
            acc = ci ? acc + v : v;
        }
        if (bias)
            acc = acc + ld(bias, co, b_dt);
        st(out, (size_t)plane * HW + p, dt, acc, cc);
        if (relu)
            relu_at(out, (size_t)plane * HW + p, dt);
    }
    if (plane == 0 && threadIdx.x == 0)
        add_rounded(cnt, out_cat, total);
    flush_counts(cnt, out_cat, cc);
}

/* Bias gradient, pass 1: part[chunk, co] = sum over the samples of the chunk and the output
 * plane of dout (grid: co x chunks; fixed order). */
__global__ void __launch_bounds__(CONV_THREADS)
    conv_bias_partial(float *part, const void *dout, int g_dt, unsigned N, unsigned CO,
                      unsigned HW, unsigned per_chunk)
{
    __shared__ float red[32];
    const unsigned co = blockIdx.x, chunk = blockIdx.y;
    const unsigned n0 = chunk * per_chunk, n1 = n0 + per_chunk < N ? n0 + per_chunk : N;
    float sum = 0.0f;
    for (unsigned n = n0; n < n1; n++) {
        const size_t base = ((size_t)n * CO + co) * HW;
        for (unsigned p = threadIdx.x; p < HW; p += blockDim.x)
            sum += ld(dout, base + p, g_dt);
    }
    sum = block_sum_f(sum, red);
    if (threadIdx.x == 0)
        part[(size_t)chunk * CO + co] = sum;
}

/* Bias gradient, pass 2: dbias[co] = sum over chunks, rounded once, counted. */
__global__ void __launch_bounds__(CONV_THREADS)
    conv_bias_final(void *dbias, int db_dt, int db_cat, const float *part, unsigned chunks,
                    unsigned CO, struct numerics_counts *cnt)
{
    lp_count cc = { 0, 0 };
    for (unsigned co = blockIdx.x * blockDim.x + threadIdx.x; co < CO;
         co += gridDim.x * blockDim.x) {
        float sum = 0.0f;
        for (unsigned q = 0; q < chunks; q++)
            sum += part[(size_t)q * CO + co];
        st(dbias, co, db_dt, sum, cc);
    }
    if (dt_lowp(db_dt)) {
        if (blockIdx.x == 0 && threadIdx.x == 0)
            add_rounded(cnt, db_cat, CO);
        flush_counts(cnt, db_cat, cc);
    }
}

/* FP16/BF16 filter gradient from cuDNN: one block per tap (co, ci, ky, kx); taps that are +-0 or
 * +-inf are recomputed exactly (sum over n, oh, ow of dout * the input the tap saw), stored, and
 * counted. */
__global__ void __launch_bounds__(CONV_THREADS)
    conv_backward_filter_check(void *dw, int dt, int dw_cat, const void *dout, const void *x,
                               conv_geom g, struct numerics_counts *cnt)
{
    __shared__ float red[32];
    const unsigned e = blockIdx.x, KK = g.K * g.K;
    if (e == 0 && threadIdx.x == 0)
        add_rounded(cnt, dw_cat, (unsigned long long)g.CO * g.CI * KK);
    if (!lowp_zero_or_inf(dw, e, dt))
        return; /* uniform over the block */
    const unsigned tap = e % KK, ci = (e / KK) % g.CI, co = e / (KK * g.CI);
    const unsigned ky = tap / g.K, kx = tap % g.K;
    const unsigned OHW = g.OH * g.OW, HW = g.H * g.W;
    float acc = 0.0f;
    for (unsigned n = 0; n < g.N; n++) {
        const size_t gbase = ((size_t)n * g.CO + co) * OHW, xbase = ((size_t)n * g.CI + ci) * HW;
        for (unsigned p = threadIdx.x; p < OHW; p += blockDim.x) {
            const int ih = (int)((p / g.OW) * g.S + ky) - (int)g.P;
            const int iw = (int)((p % g.OW) * g.S + kx) - (int)g.P;
            if (ih < 0 || ih >= (int)g.H || iw < 0 || iw >= (int)g.W)
                continue;
            acc += ld(dout, gbase + p, dt) * ld(x, xbase + (size_t)ih * g.W + iw, dt);
        }
    }
    acc = block_sum_f(acc, red);
    if (threadIdx.x == 0) {
        lp_count cc = { 0, 0 };
        st(dw, e, dt, acc, cc);
        if (cc.uf)
            atomicAdd(counter(&cnt->underflow[dw_cat]), (unsigned long long)cc.uf);
        if (cc.of)
            atomicAdd(counter(&cnt->overflow[dw_cat]), (unsigned long long)cc.of);
    }
}

/* FP16/BF16 data gradient from cuDNN: one block per input plane (n, ci); +-0 / +-inf elements
 * recomputed exactly (sum over co and the taps that read the element of dout * w), stored,
 * counted. */
__global__ void __launch_bounds__(CONV_THREADS)
    conv_backward_data_check(void *dx, int dt, int dx_cat, const void *dout, const void *w,
                             conv_geom g, unsigned long long total, struct numerics_counts *cnt)
{
    const unsigned plane = blockIdx.x, ci = plane % g.CI, n = plane / g.CI, HW = g.H * g.W;
    uint16_t *o = (uint16_t *)dx + (size_t)plane * HW;
    lp_count cc = { 0, 0 };
    for (unsigned p = threadIdx.x; p < HW; p += blockDim.x) {
        if (!bits16_zero_or_inf(dt, o[p]))
            continue;
        const unsigned h = p / g.W, wc = p % g.W;
        float acc = 0.0f;
        for (unsigned co = 0; co < g.CO; co++)
            for (unsigned ky = 0; ky < g.K; ky++) {
                /* output row oh reads input row oh * S + ky - P */
                const int th = (int)(h + g.P) - (int)ky;
                if (th < 0 || th % (int)g.S || th / (int)g.S >= (int)g.OH)
                    continue;
                const unsigned oh = (unsigned)th / g.S;
                for (unsigned kx = 0; kx < g.K; kx++) {
                    const int tw = (int)(wc + g.P) - (int)kx;
                    if (tw < 0 || tw % (int)g.S || tw / (int)g.S >= (int)g.OW)
                        continue;
                    const unsigned ow = (unsigned)tw / g.S;
                    acc += ld(dout, (((size_t)n * g.CO + co) * g.OH + oh) * g.OW + ow, dt) *
                           ld(w, (((size_t)co * g.CI + ci) * g.K + ky) * g.K + kx, dt);
                }
            }
        st(o, p, dt, acc, cc);
    }
    if (plane == 0 && threadIdx.x == 0)
        add_rounded(cnt, dx_cat, total);
    flush_counts(cnt, dx_cat, cc);
}

/* ---- plans ---- */

/* The forward runs conv_forward_direct3x3 instead of cuDNN: FP16/BF16 3x3, stride 1, padding 1,
 * and fewer input channels than the 8 that tensor-core kernels pad C to. */
static bool direct_forward(const struct conv_shape *s, int dt)
{
    return (dt == AMP_F16 || dt == AMP_BF16) && s->kernel == 3 && s->stride == 1 && s->pad == 1 &&
           s->c_in < 8;
}

static cudnnDataType_t cudnn_type(int dt)
{
    switch (dt) {
    case AMP_F16: return CUDNN_DATA_HALF;
    case AMP_BF16: return CUDNN_DATA_BFLOAT16;
    default: return CUDNN_DATA_FLOAT;
    }
}

/* The math type set on the descriptors before the heuristic query. */
static cudnnMathType_t query_math(int dt, int math)
{
    if (dt != AMP_F32)
        return CUDNN_TENSOR_OP_MATH;
    return math == AMP_MATH_TF32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
}

/* Whether an algorithm's math type keeps the requested numerics. */
static bool math_ok(int dt, int math, cudnnMathType_t m)
{
    if (m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
        return false; /* would round FP32 (or BF16) operands to FP16 */
    if (dt == AMP_F32 && math != AMP_MATH_TF32)
        return m == CUDNN_FMA_MATH;
    return true;
}

static const char *math_name(int m)
{
    switch (m) {
    case CUDNN_DEFAULT_MATH: return "default";
    case CUDNN_TENSOR_OP_MATH: return "tensor_op";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return "tensor_op_allow_conversion";
    case CUDNN_FMA_MATH: return "fma";
    }
    return "?";
}

static const char *algo_name(int dir, int algo)
{
    static const char *const fwd[] = { "IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT",
                                       "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED" };
    static const char *const bwd_data[] = { "ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD",
                                            "WINOGRAD_NONFUSED" };
    static const char *const bwd_filter[] = { "ALGO_0", "ALGO_1", "FFT", "ALGO_3", "WINOGRAD",
                                              "WINOGRAD_NONFUSED", "FFT_TILING" };
    if (algo == CONV_ALGO_DIRECT)
        return "ampbench_direct3x3";
    if (algo < 0)
        return "none";
    if (dir == CONV_FWD && algo < (int)(sizeof fwd / sizeof fwd[0]))
        return fwd[algo];
    if (dir == CONV_BWD_DATA && algo < (int)(sizeof bwd_data / sizeof bwd_data[0]))
        return bwd_data[algo];
    if (dir == CONV_BWD_FILTER && algo < (int)(sizeof bwd_filter / sizeof bwd_filter[0]))
        return bwd_filter[algo];
    return "?";
}

static void plan_destroy(struct conv_plan *p)
{
    if (!p->valid)
        return;
    for (int d = 0; d < CONV_DIRS; d++)
        if (p->conv[d])
            cudnnDestroyConvolutionDescriptor(p->conv[d]);
    if (p->w)
        cudnnDestroyFilterDescriptor(p->w);
    if (p->x)
        cudnnDestroyTensorDescriptor(p->x);
    if (p->y)
        cudnnDestroyTensorDescriptor(p->y);
    if (p->bias)
        cudnnDestroyTensorDescriptor(p->bias);
    if (p->identity)
        cudnnDestroyActivationDescriptor(p->identity);
    memset(p, 0, sizeof *p);
}

void cuda_conv_plans_destroy(struct cuda_ctx *c)
{
    for (int i = 0; i < CONV_MAX_PLANS; i++)
        plan_destroy(&c->plans[i]);
}

/* Scratch tensors of a plan's shape (x, w, y and a bias in its dtype, zeroed) on which every candidate
 * algorithm runs once before it is chosen, as PyTorch's try_all does (aten/src/ATen/native/
 * cudnn/Conv_v7.cpp): a heuristic result or a workspace query says nothing of whether the
 * kernel launches. Allocated outside any capture, freed once the plan's algorithms are chosen. */
struct trial {
    void *x, *w, *y, *bias, *ws;
    size_t ws_bytes;
};

static size_t plan_bytes(const struct conv_plan *p, int which)
{
    const struct conv_shape *s = &p->s;
    const size_t e = dtype_size((enum amp_dtype)p->dtype);
    if (which == 0)
        return (size_t)s->n * s->c_in * s->h * s->w * e;
    if (which == 1)
        return (size_t)s->c_out * s->c_in * s->kernel * s->kernel * e;
    if (which == 3)
        return (size_t)s->c_out * e;
    return (size_t)s->n * s->c_out * conv_out_h(s) * conv_out_w(s) * e;
}

/* false (with the backend's error set) when the scratch tensors cannot be had. */
static bool trial_open(struct cuda_ctx *c, const struct conv_plan *p, struct trial *t)
{
    memset(t, 0, sizeof *t);
    if (c->capturing) {
        CUDA_FAIL(c, "cuDNN algorithm choice for a new convolution shape while capturing a CUDA "
                  "Graph (the warm-up step should have made it); rerun with --no-graph");
        return false;
    }
    void **bufs[4] = { &t->x, &t->w, &t->y, &t->bias };
    for (int i = 0; i < 4; i++)
        if (CUDA_CHECK(c, cudaMalloc(bufs[i], plan_bytes(p, i))) ||
            CUDA_CHECK(c, cudaMemsetAsync(*bufs[i], 0, plan_bytes(p, i), c->stream)))
            return false;
    return true;
}

static void trial_close(struct cuda_ctx *c, struct trial *t)
{
    if (t->x) /* the trial's work is done before its memory goes (nothing to wait for before) */
        cudaStreamSynchronize(c->stream);
    void *bufs[5] = { t->x, t->w, t->y, t->bias, t->ws };
    for (int i = 0; i < 5; i++)
        if (bufs[i])
            cudaFree(bufs[i]);
    memset(t, 0, sizeof *t);
}

/* The trial's pseudo-direction for the fused forward (cudnnConvolutionBiasActivationForward). */
enum { CONV_FUSED = CONV_DIRS };

/* y = identity(1 * conv(x) + 0 * z + bias) through cudnnConvolutionBiasActivationForward with
 * the plan's descriptors, algorithm `algo`; z is y (alpha2 0: not read). */
static cudnnStatus_t fused_forward(struct cuda_ctx *c, const struct conv_plan *p, int algo,
                                   const void *x, const void *w, const void *bias, void *y,
                                   void *ws, size_t ws_bytes)
{
    const float one = 1.0f, zero = 0.0f;
    return cudnnConvolutionBiasActivationForward(
        c->cudnn, &one, p->x, x, p->w, w, p->conv[CONV_FWD], (cudnnConvolutionFwdAlgo_t)algo,
        ws_bytes ? ws : NULL, ws_bytes, &zero, p->y, y, p->bias, bias, p->identity, p->y, y);
}

/* Runs algorithm `algo` of direction `dir` (or CONV_FUSED) once on the trial tensors with a
 * workspace of `ws` bytes and waits for it: the status of the call, or EXECUTION_FAILED when the
 * stream reports an error afterwards (the error is cleared: a failed trial only rejects the
 * candidate). */
static cudnnStatus_t trial_run(struct cuda_ctx *c, struct conv_plan *p, struct trial *t, int dir,
                               int algo, size_t ws)
{
    if (ws > t->ws_bytes) {
        if (t->ws)
            cudaFree(t->ws);
        t->ws = NULL;
        t->ws_bytes = 0;
        if (cudaMalloc(&t->ws, ws) != cudaSuccess) {
            (void)cudaGetLastError();
            return CUDNN_STATUS_ALLOC_FAILED;
        }
        t->ws_bytes = ws;
    }
    const float one = 1.0f, zero = 0.0f;
    void *wsp = ws ? t->ws : NULL;
    cudnnStatus_t st;
    if (dir == CONV_FUSED)
        st = fused_forward(c, p, algo, t->x, t->w, t->bias, t->y, wsp, ws);
    else if (dir == CONV_FWD)
        st = cudnnConvolutionForward(c->cudnn, &one, p->x, t->x, p->w, t->w, p->conv[dir],
                                     (cudnnConvolutionFwdAlgo_t)algo, wsp, ws, &zero, p->y, t->y);
    else if (dir == CONV_BWD_DATA)
        st = cudnnConvolutionBackwardData(c->cudnn, &one, p->w, t->w, p->y, t->y, p->conv[dir],
                                          (cudnnConvolutionBwdDataAlgo_t)algo, wsp, ws, &zero,
                                          p->x, t->x);
    else
        st = cudnnConvolutionBackwardFilter(c->cudnn, &one, p->x, t->x, p->y, t->y, p->conv[dir],
                                            (cudnnConvolutionBwdFilterAlgo_t)algo, wsp, ws, &zero,
                                            p->w, t->w);
    if (st != CUDNN_STATUS_SUCCESS)
        return st;
    if (cudaStreamSynchronize(c->stream) != cudaSuccess || cudaGetLastError() != cudaSuccess)
        return CUDNN_STATUS_EXECUTION_FAILED;
    return CUDNN_STATUS_SUCCESS;
}

/* One candidate: usable for this plan? Sets the descriptor's math type to the candidate's, asks
 * its workspace, runs it once on the trial tensors and fills *out. A rejection by cuDNN (the
 * heuristic's status, the workspace query, the trial run) is kept in p->reject[dir] for the
 * "no algorithm" error. */
static bool try_candidate(struct cuda_ctx *c, struct conv_plan *p, struct trial *t, int dir,
                          int algo, cudnnStatus_t status, cudnnDeterminism_t det,
                          cudnnMathType_t m, struct conv_choice *out)
{
    struct conv_reject *r = &p->reject[dir];
    if (status != CUDNN_STATUS_SUCCESS) {
        r->status = status;
        r->algo = algo;
        return false;
    }
    if (!math_ok(p->dtype, p->math, m))
        return false;
    if (c->deterministic && det != CUDNN_DETERMINISTIC)
        return false;
    if (cudnnSetConvolutionMathType(p->conv[dir], m) != CUDNN_STATUS_SUCCESS)
        return false;
    size_t ws = 0;
    cudnnStatus_t s;
    if (dir == CONV_FWD)
        s = cudnnGetConvolutionForwardWorkspaceSize(c->cudnn, p->x, p->w, p->conv[dir], p->y,
                                                    (cudnnConvolutionFwdAlgo_t)algo, &ws);
    else if (dir == CONV_BWD_DATA)
        s = cudnnGetConvolutionBackwardDataWorkspaceSize(c->cudnn, p->w, p->y, p->conv[dir], p->x,
                                                         (cudnnConvolutionBwdDataAlgo_t)algo, &ws);
    else
        s = cudnnGetConvolutionBackwardFilterWorkspaceSize(
            c->cudnn, p->x, p->y, p->conv[dir], p->w, (cudnnConvolutionBwdFilterAlgo_t)algo, &ws);
    if (s == CUDNN_STATUS_SUCCESS && ws <= p->ws_limit)
        s = trial_run(c, p, t, dir, algo, ws);
    else if (s == CUDNN_STATUS_SUCCESS)
        return false; /* too large for the workspace bound: not cuDNN's refusal */
    if (s != CUDNN_STATUS_SUCCESS) {
        r->status = s;
        r->algo = algo;
        return false;
    }
    out->algo = algo;
    out->workspace = ws;
    out->deterministic = det == CUDNN_DETERMINISTIC;
    out->math = m;
    return true;
}

enum { MAX_PERF = 32 };

/* The first heuristic candidate that qualifies (any direction's perf struct). */
template <typename Perf>
static bool first_qualifying(struct cuda_ctx *c, struct conv_plan *p, struct trial *t, int dir,
                             const Perf *perf, int returned, struct conv_choice *ch)
{
    for (int i = 0; i < returned; i++)
        if (try_candidate(c, p, t, dir, perf[i].algo, perf[i].status, perf[i].determinism,
                          perf[i].mathType, ch))
            return true;
    return false;
}

/* Chooses the algorithm of one direction; false when none qualifies. The v7 heuristics first;
 * when that call fails (its status kept for the error) or none of its candidates qualifies, the
 * algorithms cuDNN documents as deterministic, each with the requested math and then
 * CUDNN_DEFAULT_MATH (cuDNN picks the math it can: TENSOR_OP is a permission cuDNN may refuse,
 * e.g. for channel counts that are not multiples of 8). */
static bool choose(struct cuda_ctx *c, struct conv_plan *p, struct trial *t, int dir)
{
    int returned = 0;
    struct conv_choice *ch = &p->choice[dir];
    ch->algo = -1;
    cudnnStatus_t hs;
    if (dir == CONV_FWD) {
        cudnnConvolutionFwdAlgoPerf_t perf[MAX_PERF];
        hs = cudnnGetConvolutionForwardAlgorithm_v7(c->cudnn, p->x, p->w, p->conv[dir], p->y,
                                                    MAX_PERF, &returned, perf);
        if (hs == CUDNN_STATUS_SUCCESS && first_qualifying(c, p, t, dir, perf, returned, ch))
            return true;
    } else if (dir == CONV_BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[MAX_PERF];
        hs = cudnnGetConvolutionBackwardDataAlgorithm_v7(c->cudnn, p->w, p->y, p->conv[dir], p->x,
                                                         MAX_PERF, &returned, perf);
        if (hs == CUDNN_STATUS_SUCCESS && first_qualifying(c, p, t, dir, perf, returned, ch))
            return true;
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[MAX_PERF];
        hs = cudnnGetConvolutionBackwardFilterAlgorithm_v7(c->cudnn, p->x, p->y, p->conv[dir],
                                                           p->w, MAX_PERF, &returned, perf);
        if (hs == CUDNN_STATUS_SUCCESS && first_qualifying(c, p, t, dir, perf, returned, ch))
            return true;
    }
    if (hs != CUDNN_STATUS_SUCCESS) {
        p->reject[dir].status = hs;
        p->reject[dir].algo = CONV_REJECT_HEURISTIC;
    }
    static const int fallback[CONV_DIRS][2] = {
        /* CONV_FWD */ { CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                         CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM },
        /* CONV_BWD_DATA */ { CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1 },
        /* CONV_BWD_FILTER */ { CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1,
                                CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 },
    };
    const cudnnMathType_t maths[2] = { query_math(p->dtype, p->math), CUDNN_DEFAULT_MATH };
    for (int i = 0; i < 2; i++)
        for (int m = 0; m < 2; m++)
            if ((i == 0 || fallback[dir][1] != fallback[dir][0]) &&
                (m == 0 || maths[1] != maths[0]) &&
                try_candidate(c, p, t, dir, fallback[dir][i], CUDNN_STATUS_SUCCESS,
                              CUDNN_DETERMINISTIC, maths[m], ch))
                return true;
    ch->algo = -1;
    return false;
}

/* The FP16/BF16 forward with a bias in one rounding, cudnnConvolutionBiasActivationForward:
 * y = act(alpha1 * conv(x) + alpha2 * z + bias) in the convolution's compute type (FLOAT: the
 * PSEUDO_HALF / PSEUDO_BFLOAT16 configurations), rounded once into y's type, which is the
 * reference's single rounding of sum + bias. Its documented restrictions (cuDNN API reference,
 * cudnn_cnn library; cudnnActivationMode_t): the activation is RELU or IDENTITY, and IDENTITY
 * runs only with IMPLICIT_PRECOMP_GEMM; the bias is 1 x K x 1 x 1 in y's data type; z has y's
 * descriptor: here z is y with alpha2 0 (PyTorch's cudnn_convolution_relu passes its output the
 * same way). A fused ReLU runs in our epilogue after the count (the file's comment), so the
 * activation is IDENTITY and the algorithm IMPLICIT_PRECOMP_GEMM whatever the heuristics chose
 * for the plain forward, with the forward's math. Run once on the trial tensors like every candidate; when cuDNN refuses it
 * (one warning line) or its workspace exceeds the bound, fused.algo stays -1 and the bias is
 * added by the epilogue, a second rounding. */
static void fused_choose(struct cuda_ctx *c, struct conv_plan *p, struct trial *t)
{
    const int algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
    const struct conv_shape *s = &p->s;
    p->fused.algo = -1;
    size_t ws = 0;
    cudnnStatus_t st = cudnnCreateTensorDescriptor(&p->bias);
    if (st == CUDNN_STATUS_SUCCESS)
        st = cudnnSetTensor4dDescriptor(p->bias, CUDNN_TENSOR_NCHW, cudnn_type(p->dtype), 1,
                                        (int)s->c_out, 1, 1);
    if (st == CUDNN_STATUS_SUCCESS)
        st = cudnnCreateActivationDescriptor(&p->identity);
    if (st == CUDNN_STATUS_SUCCESS)
        st = cudnnSetActivationDescriptor(p->identity, CUDNN_ACTIVATION_IDENTITY,
                                          CUDNN_PROPAGATE_NAN, 0.0);
    if (st == CUDNN_STATUS_SUCCESS)
        st = cudnnGetConvolutionForwardWorkspaceSize(c->cudnn, p->x, p->w, p->conv[CONV_FWD],
                                                     p->y, (cudnnConvolutionFwdAlgo_t)algo, &ws);
    if (st == CUDNN_STATUS_SUCCESS && ws > p->ws_limit)
        return; /* beyond the workspace bound: not cuDNN's refusal */
    if (st == CUDNN_STATUS_SUCCESS)
        st = trial_run(c, p, t, CONV_FUSED, algo, ws);
    if (st != CUDNN_STATUS_SUCCESS) {
        p->fused_reject.status = st;
        p->fused_reject.algo = algo;
        fprintf(stderr, "ampbench: warning: cuDNN refused the fused %s convolution + bias "
                "(cudnnConvolutionBiasActivationForward, IMPLICIT_PRECOMP_GEMM: %s) for n=%u "
                "c_in=%u %ux%u c_out=%u; the bias is added after cuDNN's rounding (a second "
                "rounding)\n", dtype_name((enum amp_dtype)p->dtype), cudnnGetErrorString(st),
                s->n, s->c_in, s->h, s->w, s->c_out);
        return;
    }
    p->fused.algo = algo;
    p->fused.workspace = ws;
    p->fused.deterministic = 1;
    p->fused.math = p->choice[CONV_FWD].math;
}

static bool same_shape(const struct conv_shape *a, const struct conv_shape *b)
{
    return a->n == b->n && a->c_in == b->c_in && a->h == b->h && a->w == b->w &&
           a->c_out == b->c_out && a->kernel == b->kernel && a->stride == b->stride &&
           a->pad == b->pad;
}

/* Every geometry cuDNN's legacy API takes (the kernels above index any kernel size, stride and
 * padding): positive sizes, a stride of at least 1, a filter no larger than the padded input
 * (cudnnGetConvolution2dForwardOutputDim's BAD_PARAM), and tensors within the legacy API's
 * 2^31-element limit. A batch of 0 is accepted (the ops then do nothing). */
int cuda_conv2d_supports(void *ctx, const struct conv_shape *s, char *why, size_t len)
{
    (void)ctx;
    const uint64_t imax = 0x7FFFFFFFull; /* the descriptors take int */
    const char *bad = NULL;
    if (s->c_in == 0 || s->c_out == 0 || s->h == 0 || s->w == 0 || s->kernel == 0)
        bad = "a zero size";
    else if (s->stride == 0)
        bad = "stride 0";
    else if (s->n > imax || s->c_in > imax || s->c_out > imax || s->h > imax || s->w > imax ||
             s->kernel > imax || s->stride > imax || s->pad > imax / 2)
        bad = "a size beyond cuDNN's int arguments";
    else if (s->kernel > (uint64_t)s->h + 2ull * s->pad ||
             s->kernel > (uint64_t)s->w + 2ull * s->pad)
        bad = "a filter larger than the padded input";
    else if ((uint64_t)s->n * s->c_in * s->h * s->w > imax ||
             (uint64_t)s->c_out * s->c_in * s->kernel * s->kernel > imax ||
             (uint64_t)s->n * s->c_out * conv_out_h(s) * conv_out_w(s) > imax)
        bad = "a tensor over cuDNN's 2^31-element limit";
    if (!bad)
        return 1;
    snprintf(why, len, "cuDNN does not run this convolution (%s: c_in %u, %ux%u input, c_out %u, "
             "%ux%u filter, stride %u, padding %u)", bad, s->c_in, s->h, s->w, s->c_out,
             s->kernel, s->kernel, s->stride, s->pad);
    return 0;
}

/* The "no algorithm" error: the plan, and per direction without one, cuDNN's last refusal by
 * its status text (cudnnGetErrorString) and the algorithm (or the heuristic call) refused. */
static void no_algorithm(struct cuda_ctx *c, const struct conv_plan *p)
{
    static const char *const dir_names[CONV_DIRS] = { "forward", "backward_data",
                                                      "backward_filter" };
    char why[320];
    size_t pos = 0;
    why[0] = 0;
    for (int d = 0; d < CONV_DIRS; d++) {
        if (p->choice[d].algo >= 0)
            continue;
        const struct conv_reject *r = &p->reject[d];
        if (r->status == CUDNN_STATUS_SUCCESS)
            cuda_append(why, sizeof why, &pos, "; %s: no candidate in the allowed math%s and "
                        "workspace", dir_names[d], c->deterministic ? ", deterministic" : "");
        else
            cuda_append(why, sizeof why, &pos, "; %s: %s from %s", dir_names[d],
                        cudnnGetErrorString((cudnnStatus_t)r->status),
                        r->algo == CONV_REJECT_HEURISTIC ? "the v7 heuristic query"
                                                         : algo_name(d, r->algo));
    }
    const struct conv_shape *s = &p->s;
    CUDA_FAIL(c, "cuDNN: no %s%s convolution algorithm for n=%u c_in=%u %ux%u c_out=%u within a "
              "%zu-byte workspace%s", c->deterministic ? "deterministic " : "",
              dtype_name((enum amp_dtype)p->dtype), s->n, s->c_in, s->h, s->w, s->c_out,
              p->ws_limit, why);
}

/* The plan for (shape, dtype, math, workspace bound), created on first use. With `report`,
 * failures are recorded as the backend's error; without, they only give NULL. */
static struct conv_plan *plan_get(struct cuda_ctx *c, const struct conv_shape *s, int dt,
                                  int math, size_t ws_limit, bool report)
{
    if (dt != AMP_F32)
        math = AMP_MATH_F32; /* TF32 concerns FP32 operands only */
    if (ws_limit > CONV_WS_CAP)
        ws_limit = CONV_WS_CAP;
    struct conv_plan *slot = NULL;
    for (int i = 0; i < CONV_MAX_PLANS; i++) {
        struct conv_plan *p = &c->plans[i];
        if (p->valid && same_shape(&p->s, s) && p->dtype == dt && p->math == math &&
            p->ws_limit == ws_limit) {
            p->last_used = ++c->plan_tick;
            if (!p->ok && report) {
                no_algorithm(c, p);
                return NULL;
            }
            return p->ok ? p : NULL;
        }
        if (!p->valid && !slot)
            slot = p;
    }
    char why[192];
    if (!cuda_conv2d_supports(c, s, why, sizeof why)) {
        if (report)
            CUDA_FAIL(c, "%s", why);
        return NULL;
    }
    if (!slot) { /* evict the least recently used plan */
        slot = &c->plans[0];
        for (int i = 1; i < CONV_MAX_PLANS; i++)
            if (c->plans[i].last_used < slot->last_used)
                slot = &c->plans[i];
        plan_destroy(slot);
    }
    struct conv_plan *p = slot;
    memset(p, 0, sizeof *p);
    p->valid = 1;
    p->s = *s;
    p->dtype = dt;
    p->math = math;
    p->ws_limit = ws_limit;
    p->last_used = ++c->plan_tick;
    const cudnnDataType_t t = cudnn_type(dt);
    bool ok = !CUDNN_CHECK(c, cudnnCreateTensorDescriptor(&p->x)) &&
              !CUDNN_CHECK(c, cudnnCreateTensorDescriptor(&p->y)) &&
              !CUDNN_CHECK(c, cudnnCreateFilterDescriptor(&p->w)) &&
              !CUDNN_CHECK(c, cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, t, (int)s->n,
                                                         (int)s->c_in, (int)s->h, (int)s->w)) &&
              !CUDNN_CHECK(c, cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, t, (int)s->n,
                                                         (int)s->c_out, (int)conv_out_h(s),
                                                         (int)conv_out_w(s))) &&
              !CUDNN_CHECK(c, cudnnSetFilter4dDescriptor(p->w, t, CUDNN_TENSOR_NCHW,
                                                         (int)s->c_out, (int)s->c_in,
                                                         (int)s->kernel, (int)s->kernel));
    const int pad = (int)s->pad, stride = (int)s->stride;
    for (int d = 0; ok && d < CONV_DIRS; d++)
        ok = !CUDNN_CHECK(c, cudnnCreateConvolutionDescriptor(&p->conv[d])) &&
             !CUDNN_CHECK(c, cudnnSetConvolution2dDescriptor(p->conv[d], pad, pad, stride, stride,
                                                             1, 1, CUDNN_CROSS_CORRELATION,
                                                             CUDNN_DATA_FLOAT)) &&
             !CUDNN_CHECK(c, cudnnSetConvolutionMathType(p->conv[d], query_math(dt, math)));
    if (!ok) {
        plan_destroy(p);
        return NULL;
    }
    struct trial tr;
    if (!trial_open(c, p, &tr)) {
        trial_close(c, &tr);
        plan_destroy(p);
        return NULL;
    }
    p->ok = 1;
    for (int d = 0; d < CONV_DIRS; d++) {
        if (d == CONV_FWD && direct_forward(s, dt)) {
            p->choice[d].algo = CONV_ALGO_DIRECT; /* our kernel: cuDNN is not asked */
            p->choice[d].deterministic = 1;
            p->choice[d].math = CUDNN_FMA_MATH;
            continue;
        }
        if (!choose(c, p, &tr, d))
            p->ok = 0;
    }
    p->fused.algo = -1;
    if (p->ok && dtype_is_lowp((enum amp_dtype)dt) && !direct_forward(s, dt))
        fused_choose(c, p, &tr);
    trial_close(c, &tr);
    if (!p->ok) {
        if (report)
            no_algorithm(c, p);
        return NULL;
    }
    return p;
}

static size_t plan_workspace(const struct conv_plan *p)
{
    size_t ws = p->fused.algo >= 0 ? p->fused.workspace : 0;
    for (int d = 0; d < CONV_DIRS; d++)
        if (p->choice[d].workspace > ws)
            ws = p->choice[d].workspace;
    return ws;
}

/* The workspace of the plan for this dtype and math, its algorithms chosen under CONV_WS_CAP:
 * a recipe allocates its own algorithms' workspace, not the worst dtype's. */
size_t cuda_conv2d_workspace(void *ctx, const struct conv_shape *s, enum amp_dtype dtype,
                             enum amp_math math)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    if (c->err)
        return 0;
    cuda_ew_flush(c);
    const struct conv_plan *p = plan_get(c, s, dtype, math, CONV_WS_CAP, false);
    return p ? plan_workspace(p) : 0;
}

static size_t ws_bytes(const struct amp_tensor *t)
{
    return t && t->data ? t->numel * dtype_size(t->dtype) : 0;
}

static bool conv_dtypes_ok(struct cuda_ctx *c, const char *op, enum amp_dtype a, enum amp_dtype b,
                           enum amp_dtype d)
{
    if (a == b && b == d && a != AMP_I32)
        return true;
    CUDA_FAIL(c, "%s: cuDNN needs one dtype for x, w and y (got %s, %s, %s)", op, dtype_name(a),
              dtype_name(b), dtype_name(d));
    return false;
}

/* A plan run with the workspace the caller gave (its algorithms chosen to fit it). */
static struct conv_plan *plan_for_op(struct cuda_ctx *c, const struct conv_shape *s, int dt,
                                     int math, const struct amp_tensor *ws)
{
    size_t limit = ws_bytes(ws);
    struct conv_plan *p = plan_get(c, s, dt, math, limit, true);
    if (p)
        p->used = 1;
    return p;
}

/* FP8 layers give FP32 operands (holding dequantized FP8 values) and a FP16/BF16 result tensor;
 * cuDNN takes one dtype for all three. Such a result is computed in FP32 into scratch and rounded
 * once (counted) into its tensor, as the CPU reference rounds its FP32 sum once. */
static bool fp32_into_lowp(const struct amp_tensor *a, const struct amp_tensor *b,
                           const struct amp_tensor *result)
{
    return result && a->dtype == AMP_F32 && b->dtype == AMP_F32 && dtype_is_lowp(result->dtype);
}

/* The scratch view holding such a result in FP32; `also` bytes of scratch (the bias gradient's
 * partial sums) are needed by the same op, so the scratch is grown once to cover both. */
static struct amp_tensor fp32_result(struct cuda_ctx *c, const struct amp_tensor *result,
                                     size_t also)
{
    const size_t bytes = result->numel * sizeof(float);
    struct amp_tensor t = { cuda_scratch(c, bytes > also ? bytes : also), result->numel, AMP_F32,
                            MEM_WORKSPACE };
    return t;
}

/* Rounds the FP32 scratch result into its tensor now, before anything reuses the scratch. */
static void round_result(struct cuda_ctx *c, struct amp_tensor *result,
                         const struct amp_tensor *f32)
{
    cuda_cast(c, result, f32);
    cuda_ew_flush(c);
}

/* The bias gradient's partial sums: per (chunk of samples, channel). */
enum { BIAS_CHUNK = 8 };
static unsigned bias_chunks(const struct conv_shape *s)
{
    return s->n ? (s->n + BIAS_CHUNK - 1) / BIAS_CHUNK : 1;
}

/* dbias [c_out] = dout summed over samples and pixels, in two fixed-order passes: per (chunk of
 * samples, channel), then per channel over the chunks (enough blocks to fill the GPU,
 * deterministic). Nonzero on failure. */
static int bias_grad(struct cuda_ctx *c, struct amp_tensor *dbias, const struct amp_tensor *dout,
                     const struct conv_shape *s)
{
    const conv_geom g = geom_of(s);
    const unsigned chunks = bias_chunks(s);
    float *part = (float *)cuda_scratch(c, (size_t)chunks * s->c_out * sizeof(float));
    if (!part)
        return -1;
    return CUDA_LAUNCH(c, conv_bias_partial, dim3(s->c_out, chunks), CONV_THREADS, part,
                       dout->data, dout->dtype, s->n, s->c_out, g.OH * g.OW,
                       (unsigned)BIAS_CHUNK) ||
           CUDA_LAUNCH(c, conv_bias_final, cuda_blocks(c, s->c_out, CONV_THREADS), CONV_THREADS,
                       dbias->data, dbias->dtype, dbias->category, part, chunks, s->c_out,
                       c->d_counts);
}

void cuda_conv2d_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                         const struct amp_tensor *weight, const struct amp_tensor *bias,
                         struct amp_tensor *workspace, const struct conv_shape *s,
                         enum amp_math math, int relu)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    CUDA_OP_ENTER(c);
    if (s->n == 0 || cuda_fp8_conv_forward(c, out, inp, weight, bias, s, relu))
        return;
    if (fp32_into_lowp(inp, weight, out)) {
        struct amp_tensor y = fp32_result(c, out, 0);
        if (!y.data)
            return;
        cuda_conv2d_forward(ctx, &y, inp, weight, bias, workspace, s, math, 0);
        round_result(c, out, &y);
        if (relu) /* after the rounding, which counted the sums */
            cuda_relu_forward(c, out, out);
        return;
    }
    if (!conv_dtypes_ok(c, "conv2d_forward", inp->dtype, weight->dtype, out->dtype))
        return;
    struct conv_plan *p = plan_for_op(c, s, inp->dtype, math, workspace);
    if (!p)
        return;
    const conv_geom g = geom_of(s);
    const unsigned planes = s->n * s->c_out;
    if (direct_forward(s, inp->dtype)) {
        CUDA_LAUNCH(c, conv_forward_direct3x3, planes, CONV_THREADS, out->data, out->dtype,
                    out->category, inp->data, weight->data, bias ? bias->data : NULL,
                    bias ? (int)bias->dtype : 0, relu, g,
                    (unsigned long long)planes * g.OH * g.OW, c->d_counts);
        return;
    }
    const float one = 1.0f, zero = 0.0f;
    /* sum + bias in one rounding where cuDNN runs it (fused_choose) for a bias in y's dtype */
    const bool fused = bias && p->fused.algo >= 0 && bias->dtype == out->dtype;
    const struct conv_choice *ch = fused ? &p->fused : &p->choice[CONV_FWD];
    void *wsp = ch->workspace ? workspace->data : NULL;
    if (fused ? CUDNN_CHECK(c, fused_forward(c, p, ch->algo, inp->data, weight->data, bias->data,
                                             out->data, wsp, ch->workspace))
              : CUDNN_CHECK(c, cudnnConvolutionForward(c->cudnn, &one, p->x, inp->data, p->w,
                                                       weight->data, p->conv[CONV_FWD],
                                                       (cudnnConvolutionFwdAlgo_t)ch->algo, wsp,
                                                       ch->workspace, &zero, p->y, out->data)))
        return;
    if (!bias && !dtype_is_lowp(out->dtype) && !relu)
        return; /* cuDNN's FP32 result is the op's */
    CUDA_LAUNCH(c, conv_forward_epilogue, planes, CONV_THREADS, out->data, out->dtype,
                out->category, bias ? bias->data : NULL, bias ? (int)bias->dtype : 0, !fused,
                relu, inp->data, weight->data, g, (unsigned long long)planes * g.OH * g.OW,
                c->d_counts);
}

void cuda_conv2d_backward(void *ctx, struct amp_tensor *dweight, struct amp_tensor *dbias,
                          struct amp_tensor *dinp, const struct amp_tensor *dout,
                          const struct amp_tensor *inp, const struct amp_tensor *weight,
                          struct amp_tensor *workspace, const struct conv_shape *s,
                          enum amp_math math)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    CUDA_OP_ENTER(c);
    if (s->n > 0 && cuda_fp8_conv_backward(c, dweight, dinp, dout, inp, weight, s)) {
        if (dbias)
            bias_grad(c, dbias, dout, s);
        return;
    }
    if (fp32_into_lowp(weight, dout, dinp) && s->n > 0) {
        struct amp_tensor dx = fp32_result(
            c, dinp, dbias ? (size_t)bias_chunks(s) * s->c_out * sizeof(float) : 0);
        if (!dx.data)
            return;
        cuda_conv2d_backward(ctx, dweight, dbias, &dx, dout, inp, weight, workspace, s, math);
        round_result(c, dinp, &dx);
        return;
    }
    if ((dweight && !conv_dtypes_ok(c, "conv2d_backward", inp->dtype, dweight->dtype,
                                    dout->dtype)) ||
        (dinp && !conv_dtypes_ok(c, "conv2d_backward", weight->dtype, dinp->dtype, dout->dtype)) ||
        (dbias && bias_grad(c, dbias, dout, s)))
        return;
    const conv_geom g = geom_of(s);
    if (s->n == 0 && !dweight)
        return;
    if (s->n == 0) { /* no samples: a zero filter gradient (cuDNN takes no empty batch) */
        CUDA_CHECK(c, cudaMemsetAsync(dweight->data, 0, dweight->numel * dtype_size(dweight->dtype),
                                      c->stream));
        return;
    }
    struct conv_plan *p = plan_for_op(c, s, inp->dtype, math, workspace);
    if (!p)
        return;
    const float one = 1.0f, zero = 0.0f;
    const struct conv_choice *f = &p->choice[CONV_BWD_FILTER];
    if (dweight && CUDNN_CHECK(c, cudnnConvolutionBackwardFilter(
                           c->cudnn, &one, p->x, inp->data, p->y, dout->data,
                           p->conv[CONV_BWD_FILTER], (cudnnConvolutionBwdFilterAlgo_t)f->algo,
                           f->workspace ? workspace->data : NULL, f->workspace, &zero, p->w,
                           dweight->data)))
        return;
    if (dweight && dtype_is_lowp(dweight->dtype)) {
        const unsigned taps = s->c_out * s->c_in * s->kernel * s->kernel;
        if (CUDA_LAUNCH(c, conv_backward_filter_check, taps, CONV_THREADS, dweight->data,
                        dweight->dtype, dweight->category, dout->data, inp->data, g,
                        c->d_counts))
            return;
    }
    if (!dinp)
        return;
    const struct conv_choice *d = &p->choice[CONV_BWD_DATA];
    if (CUDNN_CHECK(c, cudnnConvolutionBackwardData(
                           c->cudnn, &one, p->w, weight->data, p->y, dout->data,
                           p->conv[CONV_BWD_DATA], (cudnnConvolutionBwdDataAlgo_t)d->algo,
                           d->workspace ? workspace->data : NULL, d->workspace, &zero, p->x,
                           dinp->data)))
        return;
    if (dtype_is_lowp(dinp->dtype)) {
        const unsigned planes = s->n * s->c_in;
        CUDA_LAUNCH(c, conv_backward_data_check, planes, CONV_THREADS, dinp->data, dinp->dtype,
                    dinp->category, dout->data, weight->data, g,
                    (unsigned long long)planes * g.H * g.W, c->d_counts);
    }
}

void cuda_conv_describe(struct cuda_ctx *c, char *buf, size_t len, size_t *pos)
{
    static const char *const dir_names[CONV_DIRS] = { "forward", "backward_data",
                                                      "backward_filter" };
    cuda_append(buf, len, pos, "[");
    int first = 1;
    for (int i = 0; i < CONV_MAX_PLANS; i++) {
        const struct conv_plan *p = &c->plans[i];
        if (!p->valid || !p->used || !p->ok)
            continue;
        cuda_append(buf, len, pos,
               "%s{\"n\": %u, \"c_in\": %u, \"h\": %u, \"w\": %u, \"c_out\": %u, "
               "\"kernel\": %u, \"stride\": %u, \"pad\": %u, \"dtype\": \"%s\", \"math\": "
               "\"%s\", \"workspace_limit\": %zu",
               first ? "" : ", ", p->s.n, p->s.c_in, p->s.h, p->s.w, p->s.c_out, p->s.kernel,
               p->s.stride, p->s.pad,
               dtype_name((enum amp_dtype)p->dtype),
               p->dtype != AMP_F32 ? "tensor_op" : p->math == AMP_MATH_TF32 ? "tf32" : "fp32",
               p->ws_limit);
        for (int d = 0; d < CONV_DIRS; d++)
            cuda_append(buf, len, pos,
                   ", \"%s\": {\"algo\": \"%s\", \"deterministic\": %s, \"math\": \"%s\", "
                   "\"workspace\": %zu}",
                   dir_names[d], algo_name(d, p->choice[d].algo),
                   p->choice[d].deterministic ? "true" : "false", math_name(p->choice[d].math),
                   p->choice[d].workspace);
        if (dtype_is_lowp((enum amp_dtype)p->dtype) && p->choice[CONV_FWD].algo != CONV_ALGO_DIRECT)
            cuda_append(buf, len, pos,
                   ", \"forward_bias\": {\"fused\": %s, \"algo\": \"%s\", \"workspace\": %zu, "
                   "\"refused\": \"%s\"}", p->fused.algo >= 0 ? "true" : "false",
                   p->fused.algo >= 0 ? algo_name(CONV_FWD, p->fused.algo) : "epilogue",
                   p->fused.workspace,
                   p->fused_reject.status ? cudnnGetErrorString((cudnnStatus_t)p->fused_reject.status) : "");
        cuda_append(buf, len, pos, "}");
        first = 0;
    }
    cuda_append(buf, len, pos, "]");
}
