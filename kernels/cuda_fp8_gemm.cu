/* CUDA backend: the GEMMs of the FP8 recipes' linear and conv layers on cuBLASLt (Hopper's
 * FP8 tensor cores), under per-tensor (delayed or current) scaling.
 *
 * fp8_quantize leaves each operand as FP32 dequantized values q / scale (the op's contract, the
 * same on every backend) and, here, registers the tensor as an FP8 operand with a device slot in
 * which its scale kernel writes the scale it used and its inverse. A linear layer whose two GEMM
 * operands are registered multiplies the FP8 codes instead: each operand is converted back to
 * its codes, q = fp8(dequantized * scale), which recovers q exactly (the dequantized value is
 * within a few FP32 ulps of q / scale, far below half an FP8 step; outside FP32's normal range
 * that would not hold, and such scales do not occur), laid out as the TN format wants (the
 * reduction dimension contiguous: a transposed copy for the backward's operands, as Transformer
 * Engine keeps "columnwise" data) and zero-padded to multiples of 16. cublasLtMatmul then computes
 * D = (1 / scale_a) (1 / scale_b) sum q_a q_b in FP32, reading both inverse scales from their
 * device slots, so delayed scaling needs no host synchronisation and replays inside the CUDA
 * Graph; the caller's epilogue adds the bias and rounds once (counted), as for every GEMM here.
 *
 * The forward is E4M3 x E4M3, the input and weight gradients E5M2 x E4M3 (the output gradient is
 * E5M2 under the HYBRID formats). MX block scaling has no Hopper path (its operands are not
 * registered and multiply as FP32; docs/CUDA.md). Convolutions are im2col GEMMs: the patches are
 * gathered straight into codes, the output scattered back to NCHW, the input gradient summed back
 * by col2im in a fixed order. */
#include <cublasLt.h>
#include <cuda_fp8.h>

#include "cuda_dtype.h"
#include "cuda_internal.h"
#include "fp8_scaling.h"

enum { CODES_THREADS = 256, FP8_PAD = 16 };

static size_t pad16(size_t v)
{
    return (v + FP8_PAD - 1) / FP8_PAD * FP8_PAD;
}

/* ---- the operand table ---- */

static struct cuda_fp8_operand *find(struct cuda_ctx *c, const void *data)
{
    for (unsigned i = 0; i < c->n_fp8_operands; i++)
        if (c->fp8_operands[i].data == data)
            return &c->fp8_operands[i];
    return NULL;
}

/* An operand's device slot: the scale its quantization used, then its inverse. */
static float *scales_of(const struct cuda_ctx *c, const struct cuda_fp8_operand *o)
{
    return c->d_fp8_scales + 2 * (o - c->fp8_operands);
}

float *cuda_fp8_operand_slot(struct cuda_ctx *c, const void *data,
                             const struct fp8_tensor_state *state)
{
    struct cuda_fp8_operand *o = find(c, data);
    if (!o) {
        /* The format lives in the state on the device: read once, at the operand's first
         * quantization (the eager warm-up step, never inside a capture). */
        int32_t format = 0;
        o = find(c, NULL); /* a forgotten operand's entry, else a new one */
        if (!o && c->n_fp8_operands < CUDA_FP8_OPERANDS)
            o = &c->fp8_operands[c->n_fp8_operands++];
        if (!o || c->capturing || !c->cublaslt ||
            CUDA_CHECK(c, cudaMemcpyAsync(&format, &state->format, sizeof format,
                                          cudaMemcpyDeviceToHost, c->stream)) ||
            CUDA_CHECK(c, cudaStreamSynchronize(c->stream)))
            return NULL;
        o->data = data;
        o->format = format;
    }
    return scales_of(c, o);
}

void cuda_fp8_forget(struct cuda_ctx *c, const void *data)
{
    struct cuda_fp8_operand *o = find(c, data);
    if (o)
        o->data = NULL; /* its entry and slot serve the next operand registered */
}

/* ---- codes ---- */

/* Element (p, r) of an operand's matrix (fp8_layout). */
static __device__ __forceinline__ float operand_at(const float *t, int layout, size_t p,
                                                   size_t r, size_t rows, size_t R,
                                                   const conv_geom &g)
{
    const size_t ohw = (size_t)g.OH * g.OW;
    switch (layout) {
    case FP8_ROWS: return t[p * R + r];
    case FP8_COLS: return t[r * rows + p];
    case FP8_IM2COL_T: { const size_t q = p; p = r; r = q; } /* fall through */
    case FP8_IM2COL: {
        const size_t n = p / ohw, pix = p % ohw, kk = (size_t)g.K * g.K;
        const size_t ci = r / kk, ky = r % kk / g.K, kx = r % g.K;
        const long ih = (long)(pix / g.OW * g.S + ky) - (long)g.P;
        const long iw = (long)(pix % g.OW * g.S + kx) - (long)g.P;
        if (ih < 0 || ih >= (long)g.H || iw < 0 || iw >= (long)g.W)
            return 0.0f;
        return t[((n * g.CI + ci) * g.H + (size_t)ih) * g.W + (size_t)iw];
    }
    case FP8_CHANNELS: { const size_t q = p; p = r; r = q; } /* fall through */
    default: /* FP8_PIXELS: p = (n, pixel), r = the channel */
        return t[(p / ohw * g.CO + r) * ohw + p % ohw];
    }
}

/* codes [rows_pad, R_pad] row-major = fp8(M[p, r] * scale), 0 in the padding (M the operand's
 * matrix, fp8_layout); slot[0] is the scale the quantization used. */
__global__ void __launch_bounds__(CODES_THREADS)
    fp8_codes_kernel(uint8_t *codes, const float *src, int layout, unsigned rows, unsigned R,
                     unsigned rows_pad, unsigned R_pad, conv_geom g, const float *slot,
                     int format)
{
    const float scale = slot[0];
    const __nv_fp8_interpretation_t kind = format == FP8_E4M3 ? __NV_E4M3 : __NV_E5M2;
    const size_t total = (size_t)rows_pad * R_pad;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (size_t)gridDim.x * blockDim.x) {
        const size_t p = e / R_pad, r = e % R_pad;
        uint8_t q = 0;
        if (p < rows && r < R)
            q = (uint8_t)__nv_cvt_float_to_fp8(operand_at(src, layout, p, r, rows, R, g) * scale,
                                               __NV_SATFINITE, kind);
        codes[e] = q;
    }
}

/* out [N, CO, OH, OW] = C [N OH OW, CO] (row stride `stride`) + bias, rounded once to out's dtype,
 * counted; relu: then the fused ReLU. */
__global__ void __launch_bounds__(CODES_THREADS)
    fp8_conv_out_kernel(void *out, int dt, int cat, const float *C, size_t stride, const void *bias,
                        int b_dt, int relu, conv_geom g, struct numerics_counts *cnt)
{
    const size_t ohw = (size_t)g.OH * g.OW, total = (size_t)g.N * g.CO * ohw;
    lp_count cc = { 0, 0 };
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (size_t)gridDim.x * blockDim.x) {
        const size_t pix = e % ohw, q = e / ohw % g.CO, n = e / ohw / g.CO;
        float v = C[(n * ohw + pix) * stride + q];
        if (bias)
            v += ld(bias, q, b_dt);
        st(out, e, dt, v, cc);
        if (relu)
            relu_at(out, e, dt);
    }
    if (dt_lowp(dt)) {
        if (blockIdx.x == 0 && threadIdx.x == 0)
            add_rounded(cnt, cat, total);
        flush_counts(cnt, cat, cc);
    }
}

/* dinp [N, C, H, W] = col2im(dcol): each input element sums the patch entries that read it, in
 * (ky, kx) order, from dcol [N OH OW, C K K] (row stride `stride`); rounded once, counted. */
__global__ void __launch_bounds__(CODES_THREADS)
    fp8_col2im_kernel(void *dinp, int dt, int cat, const float *dcol, size_t stride, conv_geom g,
                      struct numerics_counts *cnt)
{
    const size_t hw = (size_t)g.H * g.W, total = (size_t)g.N * g.CI * hw;
    lp_count cc = { 0, 0 };
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (size_t)gridDim.x * blockDim.x) {
        const size_t iw = e % g.W, ih = e / g.W % g.H, ci = e / hw % g.CI, n = e / hw / g.CI;
        float v = 0.0f;
        for (unsigned ky = 0; ky < g.K; ky++) {
            const long oy = (long)ih + (long)g.P - (long)ky;
            if (oy < 0 || oy % (long)g.S || oy / (long)g.S >= (long)g.OH)
                continue;
            for (unsigned kx = 0; kx < g.K; kx++) {
                const long ox = (long)iw + (long)g.P - (long)kx;
                if (ox < 0 || ox % (long)g.S || ox / (long)g.S >= (long)g.OW)
                    continue;
                const size_t p = (n * g.OH + (size_t)(oy / (long)g.S)) * g.OW + (size_t)(ox / (long)g.S);
                v += dcol[p * stride + (ci * g.K + ky) * g.K + kx];
            }
        }
        st(dinp, e, dt, v, cc);
    }
    if (dt_lowp(dt)) {
        if (blockIdx.x == 0 && threadIdx.x == 0)
            add_rounded(cnt, cat, total);
        flush_counts(cnt, cat, cc);
    }
}

static cudaDataType_t fp8_type(int format)
{
    return format == FP8_E4M3 ? CUDA_R_8F_E4M3 : CUDA_R_8F_E5M2;
}

static const struct cuda_fp8_operand *operand_of(struct cuda_ctx *c,
                                                 const struct fp8_gemm_operand *a)
{
    return a->t->dtype == AMP_F32 ? find(c, a->t->data) : NULL;
}

bool cuda_fp8_gemm_ok(struct cuda_ctx *c, const struct fp8_gemm_operand *a,
                      const struct fp8_gemm_operand *b)
{
    const struct cuda_fp8_operand *oa = operand_of(c, a), *ob = operand_of(c, b);
    return oa && ob && !(oa->format == FP8_E5M2 && ob->format == FP8_E5M2);
}

/* ---- the GEMM ---- */

static size_t align256(size_t v)
{
    return (v + 255) & ~(size_t)255;
}

/* One cublasLtMatmul: D (col-major M x N, ld M) = (1/s_a)(1/s_b) A^T B, A stored K x M and B
 * K x N (col-major, ld K): the TN format. Descriptors are host objects, made for the call. */
static int lt_matmul(struct cuda_ctx *c, float *D, const uint8_t *A, int a_format,
                     const float *a_inv, const uint8_t *B, int b_format, const float *b_inv,
                     uint64_t M, uint64_t N, uint64_t K)
{
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, ld = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    const size_t ws = c->cublas_ws_bytes;
    cublasLtMatmulHeuristicResult_t h;
    int found = 0;
    const float one = 1.0f, zero = 0.0f;
    const int rc =
        CUBLAS_CHECK(c, cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F)) ||
        CUBLAS_CHECK(c, cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta,
                                                       sizeof ta)) ||
        CUBLAS_CHECK(c, cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb,
                                                       sizeof tb)) ||
        CUBLAS_CHECK(c, cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                                       &a_inv, sizeof a_inv)) ||
        CUBLAS_CHECK(c, cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                                       &b_inv, sizeof b_inv)) ||
        CUBLAS_CHECK(c, cublasLtMatrixLayoutCreate(&la, fp8_type(a_format), K, M, (int64_t)K)) ||
        CUBLAS_CHECK(c, cublasLtMatrixLayoutCreate(&lb, fp8_type(b_format), K, N, (int64_t)K)) ||
        CUBLAS_CHECK(c, cublasLtMatrixLayoutCreate(&ld, CUDA_R_32F, M, N, (int64_t)M)) ||
        CUBLAS_CHECK(c, cublasLtMatmulPreferenceCreate(&pref)) ||
        CUBLAS_CHECK(c, cublasLtMatmulPreferenceSetAttribute(
                            pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws)) ||
        CUBLAS_CHECK(c, cublasLtMatmulAlgoGetHeuristic(c->cublaslt, op, la, lb, ld, ld, pref, 1,
                                                       &h, &found));
    if (!rc && found < 1)
        CUDA_FAIL(c, "cuBLASLt has no FP8 GEMM algorithm for %llu x %llu x %llu (E%dM%d x E%dM%d)",
                  (unsigned long long)M, (unsigned long long)N, (unsigned long long)K,
                  a_format == FP8_E4M3 ? 4 : 5, a_format == FP8_E4M3 ? 3 : 2,
                  b_format == FP8_E4M3 ? 4 : 5, b_format == FP8_E4M3 ? 3 : 2);
    if (!rc && found >= 1)
        CUBLAS_CHECK(c, cublasLtMatmul(c->cublaslt, op, &one, A, la, B, lb, &zero, D, ld, D, ld,
                                       &h.algo, c->cublas_ws, ws, c->stream));
    if (pref)
        cublasLtMatmulPreferenceDestroy(pref);
    if (ld)
        cublasLtMatrixLayoutDestroy(ld);
    if (lb)
        cublasLtMatrixLayoutDestroy(lb);
    if (la)
        cublasLtMatrixLayoutDestroy(la);
    if (op)
        cublasLtMatmulDescDestroy(op);
    return c->err ? -1 : 0;
}

static int codes_of(struct cuda_ctx *c, uint8_t *codes, const struct fp8_gemm_operand *a,
                    const struct cuda_fp8_operand *o, uint32_t R, size_t rows_pad, size_t R_pad,
                    const conv_geom &g)
{
    return CUDA_LAUNCH(c, fp8_codes_kernel, cuda_blocks(c, rows_pad * R_pad, CODES_THREADS),
                       CODES_THREADS, codes, (const float *)a->t->data, (int)a->layout, a->rows,
                       R, (unsigned)rows_pad, (unsigned)R_pad, g,
                       (const float *)scales_of(c, o), o->format);
}

float *cuda_fp8_gemm(struct cuda_ctx *c, const struct fp8_gemm_operand *a,
                     const struct fp8_gemm_operand *b, uint32_t R, const conv_geom &g,
                     size_t *ldc)
{
    const struct cuda_fp8_operand *oa = operand_of(c, a), *ob = operand_of(c, b);
    const size_t P = pad16(a->rows), Q = pad16(b->rows), Rp = pad16(R);
    /* Scratch: C [P, Q] FP32, then the codes of a [P, Rp] and of b [Q, Rp]. */
    const size_t c_bytes = align256(P * Q * sizeof(float)), a_bytes = align256(P * Rp);
    char *s = (char *)cuda_scratch(c, c_bytes + a_bytes + Q * Rp);
    if (!s)
        return NULL;
    float *C = (float *)s;
    uint8_t *ca = (uint8_t *)(s + c_bytes), *cb = (uint8_t *)(s + c_bytes + a_bytes);
    /* Row-major C [P, Q] is col-major Q x P: D = B-codes^T A-codes, M = Q, N = P. */
    if (codes_of(c, ca, a, oa, R, P, Rp, g) || codes_of(c, cb, b, ob, R, Q, Rp, g) ||
        lt_matmul(c, C, cb, ob->format, scales_of(c, ob) + 1, ca, oa->format,
                  scales_of(c, oa) + 1, Q, P, Rp))
        return NULL;
    c->fp8_gemms++;
    *ldc = Q;
    return C;
}

/* ---- convolutions as im2col GEMMs ---- */

bool cuda_fp8_conv_forward(struct cuda_ctx *c, struct amp_tensor *out,
                           const struct amp_tensor *inp, const struct amp_tensor *weight,
                           const struct amp_tensor *bias, const struct conv_shape *s, int relu)
{
    const conv_geom g = geom_of(s);
    const uint32_t pixels = s->n * g.OH * g.OW, R = s->c_in * s->kernel * s->kernel;
    /* out [N OH OW, CO] = patches [N OH OW, C K K] weight [CO, C K K]^T */
    const struct fp8_gemm_operand x = { inp, pixels, FP8_IM2COL }, w = { weight, s->c_out, FP8_ROWS };
    if (!cuda_fp8_gemm_ok(c, &x, &w))
        return false;
    size_t ldc = 0;
    const float *C = cuda_fp8_gemm(c, &x, &w, R, g, &ldc);
    if (C)
        CUDA_LAUNCH(c, fp8_conv_out_kernel, cuda_blocks(c, out->numel, CODES_THREADS),
                    CODES_THREADS, out->data, (int)out->dtype, (int)out->category, C, ldc,
                    bias ? bias->data : NULL, bias ? (int)bias->dtype : 0, relu, g, c->d_counts);
    return true;
}

bool cuda_fp8_conv_backward(struct cuda_ctx *c, struct amp_tensor *dweight,
                            struct amp_tensor *dinp, const struct amp_tensor *dout,
                            const struct amp_tensor *inp, const struct amp_tensor *weight,
                            const struct conv_shape *s)
{
    const conv_geom g = geom_of(s);
    const uint32_t pixels = s->n * g.OH * g.OW, R = s->c_in * s->kernel * s->kernel;
    /* dweight [CO, C K K] = dy^T [CO, N OH OW] patches^T [C K K, N OH OW]^T */
    const struct fp8_gemm_operand dyc = { dout, s->c_out, FP8_CHANNELS },
                                  xt = { inp, R, FP8_IM2COL_T };
    /* dpatches [N OH OW, C K K] = dy [N OH OW, CO] weight^T [C K K, CO]^T, then col2im */
    const struct fp8_gemm_operand dyp = { dout, pixels, FP8_PIXELS },
                                  wt = { weight, R, FP8_COLS };
    if ((dweight && !cuda_fp8_gemm_ok(c, &dyc, &xt)) || (dinp && !cuda_fp8_gemm_ok(c, &dyp, &wt)) ||
        (!dweight && !dinp))
        return false;
    size_t ldc = 0;
    if (dweight) { /* (NULL: the input gradient alone) */
        const float *C = cuda_fp8_gemm(c, &dyc, &xt, pixels, g, &ldc);
        if (!C)
            return true;
        cuda_gemm_epilogue(c, dweight, C, 1, NULL, s->c_out, R, ldc);
    }
    if (!dinp || c->err)
        return true;
    const float *D = cuda_fp8_gemm(c, &dyp, &wt, s->c_out, g, &ldc);
    if (D)
        CUDA_LAUNCH(c, fp8_col2im_kernel, cuda_blocks(c, dinp->numel, CODES_THREADS),
                    CODES_THREADS, dinp->data, (int)dinp->dtype, (int)dinp->category, D, ldc, g,
                    c->d_counts);
    return true;
}
