/* CPU reference: fully connected layer (out = inp @ weight^T + bias), forward and backward.
 * Register-tiled with portable vectors (simd.h). Operands are read in their own dtype and
 * widened in registers (FP16/BF16 exactly; FP32 rounded to TF32 in TF32 mode), products and sums
 * are FP32, and results are rounded to the output's dtype. OpenMP splits independent outputs
 * (no cross-thread reductions), so results do not depend on the thread count. */
#include "cpu_ops.h"
#include "simd.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* How an operand is read: the code below is specialised per kind by constant propagation. */
enum kind { K_F32, K_TF32, K_F16, K_BF16, K_COUNT };

static enum kind kind_of(const struct amp_tensor *t, enum amp_math math)
{
    switch (t->dtype) {
    case AMP_F16: return K_F16;
    case AMP_BF16: return K_BF16;
    default: return cpu_tf32(t, math) ? K_TF32 : K_F32;
    }
}

ALWAYS_INLINE vf vload(const void *p, size_t i, const enum kind k)
{
    switch (k) {
    case K_F16: return vf_load_f16((const uint16_t *)p + i);
    case K_BF16: return vf_load_bf16((const uint16_t *)p + i);
    case K_TF32: return vf_round_tf32(vf_load((const float *)p + i));
    default: return vf_load((const float *)p + i);
    }
}

ALWAYS_INLINE float sload(const void *p, size_t i, const enum kind k)
{
    switch (k) {
    case K_F16: return f16_to_f32(((const uint16_t *)p)[i]);
    case K_BF16: return bf16_to_f32(((const uint16_t *)p)[i]);
    case K_TF32: return tf32_round(((const float *)p)[i]);
    default: return ((const float *)p)[i];
    }
}

/* Tile sizes are compile-time constants so that the accumulators live in registers. */
enum {
    FWD_NT = 4,          /* forward: samples per tile */
    FWD_JT = 5,          /* forward: outputs per tile */
    BWD_KV = 4,          /* backward: vectors of k per block */
    BWD_KB = BWD_KV * VF_LANES,
    BWD_JT = 5,          /* backward: weight rows per tile */
};

/* Forward tile: nt samples x jt outputs (nt <= FWD_NT, jt <= FWD_JT, both constants after
 * inlining), accumulated over k in vectors, the k tail in scalars; sums returned in sums[][]. */
ALWAYS_INLINE void fwd_tile(float sums[FWD_NT][FWD_JT], const void *inp, const void *weight,
                            int n0, int j0, int K, const int nt, const int jt, const enum kind xk,
                            const enum kind wk)
{
    vf acc[FWD_NT][FWD_JT];
    float tail[FWD_NT][FWD_JT];
#pragma GCC unroll 16
    for (int a = 0; a < nt; a++)
#pragma GCC unroll 16
        for (int b = 0; b < jt; b++) {
            acc[a][b] = (vf){ 0 };
            tail[a][b] = 0.0f;
        }
    const int kv = K - K % VF_LANES;
    for (int k = 0; k < kv; k += VF_LANES) {
        vf x[FWD_NT];
#pragma GCC unroll 16
        for (int a = 0; a < nt; a++)
            x[a] = vload(inp, (size_t)(n0 + a) * K + k, xk);
#pragma GCC unroll 16
        for (int b = 0; b < jt; b++) {
            const vf w = vload(weight, (size_t)(j0 + b) * K + k, wk);
#pragma GCC unroll 16
            for (int a = 0; a < nt; a++)
                acc[a][b] += x[a] * w;
        }
    }
    for (int k = kv; k < K; k++)
        for (int a = 0; a < nt; a++)
            for (int b = 0; b < jt; b++)
                tail[a][b] +=
                    sload(inp, (size_t)(n0 + a) * K + k, xk) * sload(weight, (size_t)(j0 + b) * K + k, wk);
    for (int a = 0; a < nt; a++)
        for (int b = 0; b < jt; b++)
            sums[a][b] = vf_sum(acc[a][b]) + tail[a][b];
}

/* One forward tile of outputs (samples n0.., outputs j0..), specialised by operand kinds. */
ALWAYS_INLINE void fwd_block(struct amp_tensor *out, const struct amp_tensor *inp,
                             const struct amp_tensor *weight, const struct amp_tensor *bias,
                             int n0, int j0, int N, int K, int M, const enum kind xk,
                             const enum kind wk, struct lowp_counts *counts, size_t *rounded)
{
    float sums[FWD_NT][FWD_JT];
    if (n0 + FWD_NT <= N && j0 + FWD_JT <= M) {
        fwd_tile(sums, inp->data, weight->data, n0, j0, K, FWD_NT, FWD_JT, xk, wk);
    } else {
        for (int n = n0; n < N && n < n0 + FWD_NT; n++)
            for (int j = j0; j < M && j < j0 + FWD_JT; j++) {
                float one[FWD_NT][FWD_JT];
                fwd_tile(one, inp->data, weight->data, n, j, K, 1, 1, xk, wk);
                sums[n - n0][j - j0] = one[0][0];
            }
    }
    for (int n = n0; n < N && n < n0 + FWD_NT; n++)
        for (int j = j0; j < M && j < j0 + FWD_JT; j++) {
            cpu_set(out, (size_t)n * M + j, sums[n - n0][j - j0] + cpu_get(bias, (size_t)j),
                    counts);
            (*rounded)++;
        }
}

/* dweight[j0..j0+jt, k..k+BWD_KB] = sum_n dout[n, j] * inp[n, k..], jt x BWD_KV accumulators,
 * rounded to dweight's dtype through `buf` (BWD_JT x BWD_KB floats). */
ALWAYS_INLINE void dw_tile(struct amp_tensor *dweight, const void *dout, const void *inp, int k,
                           int j0, int N, int K, int M, const int jt, const enum kind gk,
                           const enum kind xk, float *buf, struct lowp_counts *counts)
{
    vf acc[BWD_JT][BWD_KV];
#pragma GCC unroll 16
    for (int b = 0; b < jt; b++)
#pragma GCC unroll 16
        for (int v = 0; v < BWD_KV; v++)
            acc[b][v] = (vf){ 0 };
    for (int n = 0; n < N; n++) {
        vf x[BWD_KV];
#pragma GCC unroll 16
        for (int v = 0; v < BWD_KV; v++)
            x[v] = vload(inp, (size_t)n * K + k + v * VF_LANES, xk);
#pragma GCC unroll 16
        for (int b = 0; b < jt; b++) {
            const float g = sload(dout, (size_t)n * M + j0 + b, gk);
#pragma GCC unroll 16
            for (int v = 0; v < BWD_KV; v++)
                acc[b][v] += g * x[v];
        }
    }
    for (int b = 0; b < jt; b++) {
        float *dst = dweight->dtype == AMP_F32 ? (float *)dweight->data + (size_t)(j0 + b) * K + k
                                               : buf;
        for (int v = 0; v < BWD_KV; v++)
            vf_store(dst + v * VF_LANES, acc[b][v]);
        if (dst == buf)
            cpu_store(dweight, (size_t)(j0 + b) * K + k, buf, BWD_KB, counts);
    }
}

/* dinp[n, k..k+BWD_KB] = sum_j dout[n, j] * weight[j, k..] for every n. */
ALWAYS_INLINE void dx_tile(struct amp_tensor *dinp, const void *dout, const void *weight, int k,
                           int N, int K, int M, const enum kind gk, const enum kind wk,
                           float *buf, struct lowp_counts *counts)
{
    for (int n = 0; n < N; n++) {
        vf acc[BWD_KV] = { { 0 } };
        for (int j = 0; j < M; j++) {
            const float g = sload(dout, (size_t)n * M + j, gk);
#pragma GCC unroll 16
            for (int v = 0; v < BWD_KV; v++)
                acc[v] += g * vload(weight, (size_t)j * K + k + v * VF_LANES, wk);
        }
        float *dst = dinp->dtype == AMP_F32 ? (float *)dinp->data + (size_t)n * K + k : buf;
#pragma GCC unroll 16
        for (int v = 0; v < BWD_KV; v++)
            vf_store(dst + v * VF_LANES, acc[v]);
        if (dst == buf)
            cpu_store(dinp, (size_t)n * K + k, buf, BWD_KB, counts);
    }
}

/* One block of k columns of the backward pass: dweight[:, k..] for every row and, when dinp is
 * given, dinp[:, k..] for every sample; specialised by operand kinds. */
ALWAYS_INLINE void bwd_block(struct amp_tensor *dinp, struct amp_tensor *dweight,
                             const struct amp_tensor *dout, const struct amp_tensor *inp,
                             const struct amp_tensor *weight, int k, int N, int K, int M,
                             const enum kind gk, const enum kind xk, const enum kind wk,
                             float *buf, struct lowp_counts *wcounts, struct lowp_counts *xcounts)
{
    int j0 = 0;
    for (; j0 + BWD_JT <= M; j0 += BWD_JT)
        dw_tile(dweight, dout->data, inp->data, k, j0, N, K, M, BWD_JT, gk, xk, buf, wcounts);
    for (; j0 < M; j0++)
        dw_tile(dweight, dout->data, inp->data, k, j0, N, K, M, 1, gk, xk, buf, wcounts);
    if (dinp)
        dx_tile(dinp, dout->data, weight->data, k, N, K, M, gk, wk, buf, xcounts);
}

/* The k columns that do not fill a block, in scalars (operand kinds read at run time). */
static void bwd_tail(struct amp_tensor *dinp, struct amp_tensor *dweight,
                     const struct amp_tensor *dout, const struct amp_tensor *inp,
                     const struct amp_tensor *weight, int k0, int N, int K, int M, enum kind gk,
                     enum kind xk, enum kind wk, struct lowp_counts *wcounts,
                     struct lowp_counts *xcounts)
{
    for (int k = k0; k < K; k++) {
        for (int j = 0; j < M; j++) {
            float s = 0.0f;
            for (int n = 0; n < N; n++)
                s += sload(dout->data, (size_t)n * M + j, gk) *
                     sload(inp->data, (size_t)n * K + k, xk);
            cpu_set(dweight, (size_t)j * K + k, s, wcounts);
        }
        for (int n = 0; dinp && n < N; n++) {
            float s = 0.0f;
            for (int j = 0; j < M; j++)
                s += sload(dout->data, (size_t)n * M + j, gk) *
                     sload(weight->data, (size_t)j * K + k, wk);
            cpu_set(dinp, (size_t)n * K + k, s, xcounts);
        }
    }
}

/* Instantiates the kernels for every combination of operand kinds. */
#define KIND_PAIR(a, b) ((a) * K_COUNT + (b))
#define KIND_TRIPLE(a, b, c) (((a) * K_COUNT + (b)) * K_COUNT + (c))

void cpu_linear_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                        const struct amp_tensor *weight, const struct amp_tensor *bias,
                        uint32_t n, uint32_t k, uint32_t m, enum amp_math math)
{
    struct cpu_ctx *c = ctx;
    const int N = (int)n, K = (int)k, M = (int)m;
    const int nblocks = (N + FWD_NT - 1) / FWD_NT, jblocks = (M + FWD_JT - 1) / FWD_JT;
    const int kinds = KIND_PAIR(kind_of(inp, math), kind_of(weight, math));
    /* The switch sits inside the parallel loop so that every case is specialised code. */
#define FWD_CASE(a, b)                                                                            \
    case KIND_PAIR(a, b):                                                                         \
        fwd_block(out, inp, weight, bias, n0, j0, N, K, M, a, b, &counts, &rounded);             \
        break;
#define FWD_ROW(a) FWD_CASE(a, K_F32) FWD_CASE(a, K_TF32) FWD_CASE(a, K_F16) FWD_CASE(a, K_BF16)
#pragma omp parallel num_threads(c->threads) if ((size_t)N * K * M >= CPU_PARALLEL_MIN)
    {
        struct lowp_counts counts = { 0 };
        size_t rounded = 0;
#pragma omp for collapse(2) schedule(static)
        for (int nb = 0; nb < nblocks; nb++) {
            for (int jb = 0; jb < jblocks; jb++) {
                const int n0 = nb * FWD_NT, j0 = jb * FWD_JT;
                switch (kinds) {
                    FWD_ROW(K_F32)
                    FWD_ROW(K_TF32)
                    FWD_ROW(K_F16)
                    FWD_ROW(K_BF16)
                }
            }
        }
        cpu_count(c, out, rounded, &counts);
    }
}

/* dbias[j] = sum_n dout[n, j] (FP32 sum, rounded to dbias's dtype). */
static void bias_grad(struct cpu_ctx *c, struct amp_tensor *dbias, const struct amp_tensor *dout,
                      int N, int M)
{
    struct lowp_counts counts = { 0 };
    for (int j = 0; j < M; j++) {
        float sum = 0.0f;
        for (int n = 0; n < N; n++)
            sum += cpu_get(dout, (size_t)n * M + j);
        cpu_set(dbias, (size_t)j, sum, &counts);
    }
    cpu_count(c, dbias, (size_t)M, &counts);
}

void cpu_linear_backward(void *ctx, struct amp_tensor *dinp, struct amp_tensor *dweight,
                         struct amp_tensor *dbias, const struct amp_tensor *dout,
                         const struct amp_tensor *inp, const struct amp_tensor *weight,
                         uint32_t n, uint32_t k, uint32_t m, enum amp_math math)
{
    struct cpu_ctx *c = ctx;
    const int N = (int)n, K = (int)k, M = (int)m;
    bias_grad(c, dbias, dout, N, M);
    /* The output gradient is an operand of both GEMMs: TF32-rounded like the others. */
    const enum kind gk = kind_of(dout, math), xk = kind_of(inp, math), wk = kind_of(weight, math);
    const int kinds = KIND_TRIPLE(gk, xk, wk), kblocks = K / BWD_KB;
#define BWD_CASE(a, b, w)                                                                         \
    case KIND_TRIPLE(a, b, w):                                                                    \
        bwd_block(dinp, dweight, dout, inp, weight, kb * BWD_KB, N, K, M, a, b, w, buf,          \
                  &wcounts, &xcounts);                                                            \
        break;
#define BWD_W(a, b) BWD_CASE(a, b, K_F32) BWD_CASE(a, b, K_TF32) BWD_CASE(a, b, K_F16) BWD_CASE(a, b, K_BF16)
#define BWD_X(a) BWD_W(a, K_F32) BWD_W(a, K_TF32) BWD_W(a, K_F16) BWD_W(a, K_BF16)
#pragma omp parallel num_threads(c->threads) if ((size_t)N * K * M >= CPU_PARALLEL_MIN)
    {
        struct lowp_counts wcounts = { 0 }, xcounts = { 0 };
        float buf[BWD_KB];
#pragma omp for schedule(static)
        for (int kb = 0; kb < kblocks; kb++) {
            switch (kinds) {
                BWD_X(K_F32)
                BWD_X(K_TF32)
                BWD_X(K_F16)
                BWD_X(K_BF16)
            }
        }
#pragma omp single
        bwd_tail(dinp, dweight, dout, inp, weight, kblocks * BWD_KB, N, K, M, gk, xk, wk,
                 &wcounts, &xcounts);
        cpu_count(c, dweight, 0, &wcounts);
        if (dinp)
            cpu_count(c, dinp, 0, &xcounts);
    }
    cpu_count(c, dweight, (size_t)M * K, &(struct lowp_counts){ 0 });
    if (dinp)
        cpu_count(c, dinp, (size_t)N * K, &(struct lowp_counts){ 0 });
}
