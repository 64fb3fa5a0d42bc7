/* CUDA backend: the fully connected layer (out = inp @ weight^T + bias) and its gradients.
 *
 * When both GEMM operands have one dtype, the product goes through cublasGemmEx: FP16/BF16
 * operands with CUBLAS_COMPUTE_32F (FP32 accumulation) and reduced-precision split-K reductions
 * disallowed; FP32 operands with CUBLAS_COMPUTE_32F_PEDANTIC (true FP32, no TF32) in the fp32
 * recipe and CUBLAS_COMPUTE_32F_FAST_TF32 in the tf32 recipe. cuBLAS writes FP32; a small
 * epilogue kernel adds the bias and rounds once to the output's dtype, counting underflow and
 * overflow exactly (the reference's semantics: one rounding of sum + bias).
 *
 * The seed policy's FC multiplies FP16/BF16 activations with FP32 weights, which cublasGemmEx
 * does not take (its A and B types must match); widening the activations to FP32 would cost an
 * FP32 copy of the largest tensor of the step. With m = 10 classes these products are skinny
 * (an inner or outer dimension of 10), memory-bound, and are done by deterministic kernels here:
 * a split-K forward with fixed-order partial sums, a column-parallel weight gradient with
 * fixed-order partial sums, and the input gradient (inner dimension m) as a direct per-element
 * sum, which also covers FP16/BF16 input gradients with exact rounding counts. */
#include "cuda_dtype.h"
#include "cuda_internal.h"

/* J_TILE = 10: the seed network has 10 classes (other m loop over tiles). */
enum { GEMM_THREADS = 256, FWD_ROWS = 8, J_TILE = 10, DX_ROWS = 8 };

static const float kOne = 1.0f, kZero = 0.0f;

static int tf32_of(const struct amp_tensor *t, enum amp_math math)
{
    return math == AMP_MATH_TF32 && t->dtype == AMP_F32;
}

/* part[s, i, j] = sum over k in split s of x[i, k] * w[j, k], for FWD_ROWS rows per block. */
__global__ void __launch_bounds__(GEMM_THREADS)
    linear_forward_partial(float *part, const void *x, int x_dt, int x_tf32, const void *w,
                           int w_dt, int w_tf32, unsigned n, unsigned k, unsigned m,
                           unsigned kchunk)
{
    __shared__ float red[GEMM_THREADS / 32][FWD_ROWS * J_TILE];
    const unsigned i0 = blockIdx.x * FWD_ROWS, s = blockIdx.y;
    const size_t k0 = (size_t)s * kchunk;
    const size_t k1 = k0 + kchunk < k ? k0 + kchunk : k;
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    for (unsigned j0 = 0; j0 < m; j0 += J_TILE) {
        float acc[FWD_ROWS][J_TILE];
#pragma unroll
        for (int r = 0; r < FWD_ROWS; r++)
#pragma unroll
            for (int t = 0; t < J_TILE; t++)
                acc[r][t] = 0.0f;
        for (size_t kk = k0 + threadIdx.x; kk < k1; kk += GEMM_THREADS) {
            float xv[FWD_ROWS];
#pragma unroll
            for (int r = 0; r < FWD_ROWS; r++)
                xv[r] = i0 + r < n ? ld_op(x, (size_t)(i0 + r) * k + kk, x_dt, x_tf32) : 0.0f;
#pragma unroll
            for (int t = 0; t < J_TILE; t++) {
                if (j0 + t < m) {
                    const float wv = ld_op(w, (size_t)(j0 + t) * k + kk, w_dt, w_tf32);
#pragma unroll
                    for (int r = 0; r < FWD_ROWS; r++)
                        acc[r][t] += xv[r] * wv;
                }
            }
        }
#pragma unroll
        for (int r = 0; r < FWD_ROWS; r++)
#pragma unroll
            for (int t = 0; t < J_TILE; t++) {
                const float v = warp_sum_f(acc[r][t]);
                if (lane == 0)
                    red[warp][r * J_TILE + t] = v;
            }
        __syncthreads();
        if (threadIdx.x < FWD_ROWS * J_TILE) {
            const unsigned r = threadIdx.x / J_TILE, t = threadIdx.x % J_TILE;
            float sum = 0.0f;
            for (unsigned q = 0; q < GEMM_THREADS / 32; q++)
                sum += red[q][threadIdx.x];
            if (i0 + r < n && j0 + t < m)
                part[((size_t)s * n + i0 + r) * m + j0 + t] = sum;
        }
        __syncthreads();
    }
}

/* out[r, j] = sum_s part[s][r * stride + j] (+ bias[j]) for r < rows, j < cols, rounded to
 * out's dtype, counted; each split of part holds rows x stride floats (stride >= cols: a padded
 * GEMM result). part may be out itself (FP32, splits == 1, stride == cols). */
__global__ void __launch_bounds__(GEMM_THREADS)
    sum_bias_round(void *out, int out_dt, int out_cat, const float *part, unsigned splits,
                   const void *bias, int b_dt, size_t rows, size_t cols, size_t stride,
                   struct numerics_counts *cnt)
{
    const size_t total = rows * cols;
    lp_count cc = { 0, 0 };
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (size_t)gridDim.x * blockDim.x) {
        const size_t at = e / cols * stride + e % cols;
        float v = part[at];
        for (unsigned s = 1; s < splits; s++)
            v += part[(size_t)s * rows * stride + at];
        if (bias)
            v += ld(bias, e % cols, b_dt);
        st(out, e, out_dt, v, cc);
    }
    if (dt_lowp(out_dt)) {
        if (blockIdx.x == 0 && threadIdx.x == 0)
            add_rounded(cnt, out_cat, total);
        flush_counts(cnt, out_cat, cc);
    }
}

/* dinp[i, kk] = sum_j dout[i, j] * w[j, kk]: block = 256 columns x DX_ROWS rows (grid-strided);
 * relu not NULL (dinp's dtype): then the fused ReLU's mask, relu > 0 ? dinp : +0, after the
 * rounding and its count (the relu_backward kernel's rule: NaN and -0 are not > 0). */
__global__ void __launch_bounds__(GEMM_THREADS)
    linear_backward_data(void *dinp, int dx_dt, int dx_cat, const void *dout, int g_dt,
                         int g_tf32, const void *w, int w_dt, int w_tf32, const void *relu,
                         unsigned n, unsigned k, unsigned m, struct numerics_counts *cnt)
{
    const size_t kk = (size_t)blockIdx.x * GEMM_THREADS + threadIdx.x;
    lp_count cc = { 0, 0 };
    if (kk < k) {
        for (size_t i0 = (size_t)blockIdx.y * DX_ROWS; i0 < n; i0 += (size_t)gridDim.y * DX_ROWS) {
            for (unsigned r = 0; r < DX_ROWS && i0 + r < n; r++) {
                const size_t i = i0 + r;
                float acc = 0.0f;
                for (unsigned j = 0; j < m; j++)
                    acc += ld_op(dout, i * m + j, g_dt, g_tf32) *
                           ld_op(w, (size_t)j * k + kk, w_dt, w_tf32);
                st(dinp, i * k + kk, dx_dt, acc, cc);
                if (relu && !(ld(relu, i * k + kk, dx_dt) > 0.0f))
                    st(dinp, i * k + kk, dx_dt, 0.0f, cc); /* (+0 rounds and counts nothing) */
            }
        }
    }
    if (dt_lowp(dx_dt)) {
        if (blockIdx.x == 0 && blockIdx.y == 0 && threadIdx.x == 0)
            add_rounded(cnt, dx_cat, (unsigned long long)n * k);
        flush_counts(cnt, dx_cat, cc);
    }
}

/* part[s, j, kk] = sum over rows i of split s of dout[i, j] * x[i, kk]. */
__global__ void __launch_bounds__(GEMM_THREADS)
    linear_backward_weight_partial(float *part, const void *dout, int g_dt, int g_tf32,
                                   const void *x, int x_dt, int x_tf32, unsigned n, unsigned k,
                                   unsigned m, unsigned rchunk)
{
    const size_t kk = (size_t)blockIdx.x * GEMM_THREADS + threadIdx.x;
    const unsigned s = blockIdx.y;
    const size_t r0 = (size_t)s * rchunk;
    const size_t r1 = r0 + rchunk < n ? r0 + rchunk : n;
    if (kk >= k)
        return; /* no counts or synchronisation below */
    for (unsigned j0 = 0; j0 < m; j0 += J_TILE) {
        float acc[J_TILE];
#pragma unroll
        for (int t = 0; t < J_TILE; t++)
            acc[t] = 0.0f;
        for (size_t i = r0; i < r1; i++) {
            const float xv = ld_op(x, i * k + kk, x_dt, x_tf32);
#pragma unroll
            for (int t = 0; t < J_TILE; t++)
                if (j0 + t < m)
                    acc[t] += ld_op(dout, i * m + j0 + t, g_dt, g_tf32) * xv;
        }
#pragma unroll
        for (int t = 0; t < J_TILE; t++)
            if (j0 + t < m)
                part[((size_t)s * m + j0 + t) * k + kk] = acc[t];
    }
}

/* dbias[j] = sum_i dout[i, j] (FP32, never TF32-rounded): one block per j. */
__global__ void __launch_bounds__(GEMM_THREADS)
    linear_backward_bias(void *dbias, int db_dt, int db_cat, const void *dout, int g_dt,
                         unsigned n, unsigned m, struct numerics_counts *cnt)
{
    __shared__ float red[32];
    const unsigned j = blockIdx.x;
    float sum = 0.0f;
    for (size_t i = threadIdx.x; i < n; i += blockDim.x)
        sum += ld(dout, i * m + j, g_dt);
    sum = block_sum_f(sum, red);
    if (threadIdx.x == 0) {
        lp_count cc = { 0, 0 };
        st(dbias, j, db_dt, sum, cc);
        if (dt_lowp(db_dt)) {
            if (cc.uf)
                atomicAdd(counter(&cnt->underflow[db_cat]), (unsigned long long)cc.uf);
            if (cc.of)
                atomicAdd(counter(&cnt->overflow[db_cat]), (unsigned long long)cc.of);
            if (j == 0)
                add_rounded(cnt, db_cat, m);
        }
    }
}

/* ---- host side ---- */

static cudaDataType_t cuda_type(enum amp_dtype dt)
{
    switch (dt) {
    case AMP_F16: return CUDA_R_16F;
    case AMP_BF16: return CUDA_R_16BF;
    default: return CUDA_R_32F;
    }
}

/* C (col-major, FP32) = op(A) op(B) through cublasGemmEx; A and B share a dtype. */
static int gemm(struct cuda_ctx *c, cublasOperation_t ta, cublasOperation_t tb, int M, int N,
                int K, const void *A, int lda, const void *B, int ldb, enum amp_dtype ab,
                float *C, int ldc, enum amp_math math)
{
    cublasComputeType_t compute;
    cublasMath_t mode;
    if (ab != AMP_F32) {
        compute = CUBLAS_COMPUTE_32F;
        mode = (cublasMath_t)(CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
    } else if (math == AMP_MATH_TF32) {
        compute = CUBLAS_COMPUTE_32F_FAST_TF32;
        mode = (cublasMath_t)(CUBLAS_TF32_TENSOR_OP_MATH |
                              CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
    } else {
        compute = CUBLAS_COMPUTE_32F_PEDANTIC;
        mode = (cublasMath_t)(CUBLAS_PEDANTIC_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
    }
    if (CUBLAS_CHECK(c, cublasSetMathMode(c->cublas, mode)))
        return -1;
    return CUBLAS_CHECK(c, cublasGemmEx(c->cublas, ta, tb, M, N, K, &kOne, A, cuda_type(ab), lda,
                                        B, cuda_type(ab), ldb, &kZero, C, CUDA_R_32F, ldc, compute,
                                        CUBLAS_GEMM_DEFAULT));
}

static bool fits_int(size_t v)
{
    return v <= 0x7FFFFFFFu;
}

static bool float_like(enum amp_dtype dt)
{
    return dt == AMP_F32 || dt == AMP_F16 || dt == AMP_BF16;
}

/* Splits of the reduction dimension so that a launch fills the GPU (>= 2 blocks per SM), each
 * split at least `min_len` long, the partial sums within `cap_bytes` of scratch. */
static unsigned splits_for(const struct cuda_ctx *c, size_t blocks, size_t len, size_t min_len,
                           size_t bytes_per_split, size_t cap_bytes)
{
    size_t s = (2 * (size_t)c->sm_count + blocks - 1) / (blocks ? blocks : 1);
    const size_t by_len = (len + min_len - 1) / min_len;
    if (s > by_len)
        s = by_len;
    if (bytes_per_split && s * bytes_per_split > cap_bytes)
        s = cap_bytes / bytes_per_split;
    if (s > 65535)
        s = 65535;
    return s ? (unsigned)s : 1u;
}

enum { SCRATCH_CAP = 32u << 20 };

void cuda_gemm_epilogue(struct cuda_ctx *c, struct amp_tensor *out, const float *part,
                        unsigned splits, const struct amp_tensor *bias, size_t rows, size_t cols,
                        size_t stride)
{
    const size_t total = rows * cols;
    CUDA_LAUNCH(c, sum_bias_round, cuda_blocks(c, total, GEMM_THREADS), GEMM_THREADS, out->data,
                out->dtype, out->category, part, splits, bias ? bias->data : NULL,
                bias ? (int)bias->dtype : 0, rows, cols, stride, c->d_counts);
}

static void epilogue(struct cuda_ctx *c, struct amp_tensor *out, const float *part,
                     unsigned splits, const struct amp_tensor *bias, size_t rows, size_t cols)
{
    cuda_gemm_epilogue(c, out, part, splits, bias, rows, cols, cols);
}

/* out [a.rows, b.rows] = a b^T (+ bias) through the FP8 GEMM, rounded once: true when a and b
 * are FP8 operands (cuda_fp8_gemm.cu), false (nothing done) else. */
static bool fp8_linear(struct cuda_ctx *c, struct amp_tensor *out, const struct fp8_gemm_operand &a,
                       const struct fp8_gemm_operand &b, uint32_t R,
                       const struct amp_tensor *bias)
{
    if (!cuda_fp8_gemm_ok(c, &a, &b))
        return false;
    size_t stride = 0;
    const float *C = cuda_fp8_gemm(c, &a, &b, R, conv_geom(), &stride);
    if (C)
        cuda_gemm_epilogue(c, out, C, 1, bias, a.rows, b.rows, stride);
    return true;
}

void cuda_linear_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                         const struct amp_tensor *weight, const struct amp_tensor *bias,
                         uint32_t n, uint32_t k, uint32_t m, enum amp_math math)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    CUDA_OP_ENTER(c);
    if (n == 0 || m == 0)
        return;
    if (!float_like(inp->dtype) || !float_like(weight->dtype) || !float_like(out->dtype) ||
        !float_like(bias->dtype) || !fits_int(k) || !fits_int((size_t)n * m)) {
        CUDA_FAIL(c, "linear_forward: unsupported dtypes or shape");
        return;
    }
    const size_t nm = (size_t)n * m;
    /* out [n, m] = inp [n, k] weight [m, k]^T */
    if (k > 0 && fp8_linear(c, out, { inp, n, FP8_ROWS }, { weight, m, FP8_ROWS }, k, bias))
        return;
    if (inp->dtype == weight->dtype && k > 0) {
        /* Column-major: out^T [m x n] = W^T... W is [m, k] row-major = [k x m] col-major. */
        float *C = out->dtype == AMP_F32 ? (float *)out->data
                                         : (float *)cuda_scratch(c, nm * sizeof(float));
        if (!C)
            return;
        if (gemm(c, CUBLAS_OP_T, CUBLAS_OP_N, (int)m, (int)n, (int)k, weight->data, (int)k,
                 inp->data, (int)k, inp->dtype, C, (int)m, math))
            return;
        epilogue(c, out, C, 1, bias, n, m);
        return;
    }
    const size_t row_blocks = (n + FWD_ROWS - 1) / FWD_ROWS;
    unsigned splits = splits_for(c, row_blocks, k, 1024, nm * sizeof(float), SCRATCH_CAP);
    if (k == 0)
        splits = 1;
    const unsigned kchunk = (unsigned)((k + splits - 1) / splits);
    float *part = (float *)cuda_scratch(c, (size_t)splits * nm * sizeof(float));
    if (!part)
        return;
    if (row_blocks > 0x7FFFFFFFu) {
        CUDA_FAIL(c, "linear_forward: %u rows is too many", n);
        return;
    }
    const dim3 grid((unsigned)row_blocks, splits);
    if (CUDA_LAUNCH(c, linear_forward_partial, grid, GEMM_THREADS, part, inp->data, inp->dtype,
                    tf32_of(inp, math), weight->data, weight->dtype, tf32_of(weight, math), n, k, m,
                    kchunk))
        return;
    epilogue(c, out, part, splits, bias, n, m);
}

void cuda_linear_backward(void *ctx, struct amp_tensor *dinp, struct amp_tensor *dweight,
                          struct amp_tensor *dbias, const struct amp_tensor *dout,
                          const struct amp_tensor *inp, const struct amp_tensor *weight,
                          uint32_t n, uint32_t k, uint32_t m, enum amp_math math,
                          const struct amp_tensor *relu)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    CUDA_OP_ENTER(c);
    if (m == 0)
        return;
    if (relu && dinp && (dinp->dtype != relu->dtype || relu->numel != (size_t)n * k)) {
        CUDA_FAIL(c, "linear_backward: the fused ReLU's output must be dinp's dtype and shape "
                  "(%s, %s)", dtype_name(dinp->dtype), dtype_name(relu->dtype));
        return;
    }
    if (!float_like(dout->dtype) || !float_like(inp->dtype) || !float_like(weight->dtype) ||
        (dweight && (!float_like(dweight->dtype) || !dbias || !float_like(dbias->dtype))) ||
        (dinp && !float_like(dinp->dtype)) || !fits_int(k) || !fits_int(n) ||
        !fits_int((size_t)m * k)) {
        CUDA_FAIL(c, "linear_backward: unsupported dtypes or shape");
        return;
    }
    /* dbias[j] = sum_i dout[i, j] (dweight NULL: neither, the input gradient alone) */
    if (dweight && CUDA_LAUNCH(c, linear_backward_bias, m, GEMM_THREADS, dbias->data, dbias->dtype,
                    dbias->category, dout->data, dout->dtype, n, m, c->d_counts))
        return;

    /* dweight [m, k] = dout^T [m, n] @ inp [n, k] */
    const size_t mk = (size_t)m * k;
    /* dweight [m, k] = dout^T [m, n] (dout stored [n, m]) inp^T [k, n]^T (inp stored [n, k]) */
    if (!dweight) {
    } else if (k > 0 && n > 0 &&
               fp8_linear(c, dweight, { dout, m, FP8_COLS }, { inp, k, FP8_COLS }, n, NULL)) {
    } else if (k > 0 && dout->dtype == inp->dtype && n > 0) {
        /* Column-major: dW^T [k x m] = inp^T [k x n] (inp row-major [n, k]) @ dout [n x m]
         * (dout row-major [n, m] is [m x n] col-major, transposed). */
        float *C = dweight->dtype == AMP_F32 ? (float *)dweight->data
                                             : (float *)cuda_scratch(c, mk * sizeof(float));
        if (!C)
            return;
        if (gemm(c, CUBLAS_OP_N, CUBLAS_OP_T, (int)k, (int)m, (int)n, inp->data, (int)k,
                 dout->data, (int)m, inp->dtype, C, (int)k, math))
            return;
        if (dweight->dtype != AMP_F32)
            epilogue(c, dweight, C, 1, NULL, m, k);
    } else if (k > 0) {
        const size_t col_blocks = (k + GEMM_THREADS - 1) / GEMM_THREADS;
        const unsigned splits = n ? splits_for(c, col_blocks, n, 64, mk * sizeof(float),
                                               SCRATCH_CAP)
                                  : 1u;
        const unsigned rchunk = n ? (unsigned)((n + splits - 1) / splits) : 0u;
        float *part = (float *)cuda_scratch(c, (size_t)splits * mk * sizeof(float));
        if (!part)
            return;
        const dim3 grid((unsigned)col_blocks, splits);
        if (CUDA_LAUNCH(c, linear_backward_weight_partial, grid, GEMM_THREADS, part, dout->data,
                        dout->dtype, tf32_of(dout, math), inp->data, inp->dtype, tf32_of(inp, math),
                        n, k, m, rchunk))
            return;
        epilogue(c, dweight, part, splits, NULL, m, k);
    }
    if (c->err || !dinp || k == 0 || n == 0)
        return;

    /* dinp [n, k] = dout [n, m] @ weight [m, k] = dout [n, m] (weight^T [k, m])^T */
    if (fp8_linear(c, dinp, { dout, n, FP8_ROWS }, { weight, k, FP8_COLS }, m, NULL)) {
    } else if (dout->dtype == AMP_F32 && weight->dtype == AMP_F32 && dinp->dtype == AMP_F32) {
        /* Column-major: dinp^T [k x n] = W^T [k x m] (W row-major [m, k]) @ dout^T [m x n]. */
        gemm(c, CUBLAS_OP_N, CUBLAS_OP_N, (int)k, (int)n, (int)m, weight->data, (int)k,
             dout->data, (int)m, AMP_F32, (float *)dinp->data, (int)k, math);
    } else {
        const size_t col_blocks = (k + GEMM_THREADS - 1) / GEMM_THREADS;
        size_t row_blocks = (n + DX_ROWS - 1) / DX_ROWS;
        if (row_blocks > 65535)
            row_blocks = 65535;
        const dim3 grid((unsigned)col_blocks, (unsigned)row_blocks);
        /* (the fused ReLU in the kernel itself) */
        CUDA_LAUNCH(c, linear_backward_data, grid, GEMM_THREADS, dinp->data, dinp->dtype,
                    dinp->category, dout->data, dout->dtype, tf32_of(dout, math), weight->data,
                    weight->dtype, tf32_of(weight, math), relu ? relu->data : NULL, n, k, m,
                    c->d_counts);
        return;
    }
    /* The fused ReLU after a GEMM: the relu op's kernel over the rounded input gradient
     * (cuBLASLt's DRELU epilogue would need a bitmask saved by the forward). */
    if (relu && !c->err)
        cuda_relu_backward(ctx, dinp, dinp, relu);
}
