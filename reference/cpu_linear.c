/* CPU reference: fully connected layer (out = inp @ weight^T + bias), forward and backward, FP32
 * arithmetic. Register-tiled with portable vectors (simd.h); OpenMP splits independent outputs
 * (no cross-thread reductions), so results do not depend on the thread count. */
#include "cpu_ops.h"
#include "simd.h"

/* Tile sizes are compile-time constants so that the accumulators live in registers. */
enum {
    FWD_NT = 4,          /* forward: samples per tile */
    FWD_JT = 5,          /* forward: outputs per tile */
    BWD_KV = 4,          /* backward: vectors of k per block */
    BWD_KB = BWD_KV * VF_LANES,
    BWD_JT = 5,          /* backward: weight rows per tile */
};

/* Forward tile: NT samples x JT outputs, accumulated over k in vectors, the k tail in scalars. */
#define DEFINE_FWD_TILE(NAME, NT, JT)                                                              \
    static void NAME(float *out, const float *inp, const float *weight, const float *bias,        \
                     int n0, int j0, int K, int M)                                                \
    {                                                                                             \
        vf acc[NT][JT] = { { { 0 } } };                                                           \
        float tail[NT][JT] = { { 0 } };                                                           \
        const int kv = K - K % VF_LANES;                                                          \
        for (int k = 0; k < kv; k += VF_LANES) {                                                  \
            vf x[NT];                                                                             \
            _Pragma("GCC unroll 16") for (int a = 0; a < NT; a++)                                 \
                x[a] = vf_load(inp + (size_t)(n0 + a) * K + k);                                   \
            _Pragma("GCC unroll 16") for (int b = 0; b < JT; b++) {                               \
                const vf w = vf_load(weight + (size_t)(j0 + b) * K + k);                          \
                _Pragma("GCC unroll 16") for (int a = 0; a < NT; a++) acc[a][b] += x[a] * w;      \
            }                                                                                     \
        }                                                                                         \
        for (int k = kv; k < K; k++)                                                              \
            for (int a = 0; a < NT; a++)                                                          \
                for (int b = 0; b < JT; b++)                                                      \
                    tail[a][b] +=                                                                 \
                        inp[(size_t)(n0 + a) * K + k] * weight[(size_t)(j0 + b) * K + k];         \
        for (int a = 0; a < NT; a++)                                                              \
            for (int b = 0; b < JT; b++)                                                          \
                out[(size_t)(n0 + a) * M + j0 + b] =                                              \
                    vf_sum(acc[a][b]) + tail[a][b] + bias[j0 + b];                                \
    }

DEFINE_FWD_TILE(fwd_tile_full, FWD_NT, FWD_JT)
DEFINE_FWD_TILE(fwd_tile_single, 1, 1)

static void linear_forward_f32(float *out, const float *inp, const float *weight,
                               const float *bias, int N, int K, int M, int threads)
{
    const int nblocks = (N + FWD_NT - 1) / FWD_NT, jblocks = (M + FWD_JT - 1) / FWD_JT;
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads) \
    if ((size_t)N * K * M >= CPU_PARALLEL_MIN)
    for (int nb = 0; nb < nblocks; nb++) {
        for (int jb = 0; jb < jblocks; jb++) {
            const int n0 = nb * FWD_NT, j0 = jb * FWD_JT;
            if (n0 + FWD_NT <= N && j0 + FWD_JT <= M) {
                fwd_tile_full(out, inp, weight, bias, n0, j0, K, M);
                continue;
            }
            for (int n = n0; n < N && n < n0 + FWD_NT; n++)
                for (int j = j0; j < M && j < j0 + FWD_JT; j++)
                    fwd_tile_single(out, inp, weight, bias, n, j, K, M);
        }
    }
}

/* dweight[j0..j0+JT, k..k+BWD_KB] = sum_n dout[n, j] * inp[n, k..], JT x BWD_KV accumulators. */
#define DEFINE_DW_TILE(NAME, JT)                                                                   \
    static void NAME(float *dweight, const float *dout, const float *inp, int k, int j0, int N,   \
                     int K, int M)                                                                \
    {                                                                                             \
        vf acc[JT][BWD_KV] = { { { 0 } } };                                                       \
        for (int n = 0; n < N; n++) {                                                             \
            vf x[BWD_KV];                                                                         \
            _Pragma("GCC unroll 16") for (int v = 0; v < BWD_KV; v++)                             \
                x[v] = vf_load(inp + (size_t)n * K + k + v * VF_LANES);                           \
            _Pragma("GCC unroll 16") for (int b = 0; b < JT; b++) {                               \
                const float g = dout[(size_t)n * M + j0 + b];                                     \
                _Pragma("GCC unroll 16") for (int v = 0; v < BWD_KV; v++) acc[b][v] += g * x[v];  \
            }                                                                                     \
        }                                                                                         \
        for (int b = 0; b < JT; b++)                                                              \
            for (int v = 0; v < BWD_KV; v++)                                                      \
                vf_store(dweight + (size_t)(j0 + b) * K + k + v * VF_LANES, acc[b][v]);           \
    }

DEFINE_DW_TILE(dw_tile_full, BWD_JT)
DEFINE_DW_TILE(dw_tile_single, 1)

/* dinp[n, k..k+BWD_KB] = sum_j dout[n, j] * weight[j, k..] for every n. */
static void dx_tile(float *dinp, const float *dout, const float *weight, int k, int N, int K,
                    int M)
{
    for (int n = 0; n < N; n++) {
        vf acc[BWD_KV] = { { 0 } };
        for (int j = 0; j < M; j++) {
            const float g = dout[(size_t)n * M + j];
#pragma GCC unroll 16
            for (int v = 0; v < BWD_KV; v++)
                acc[v] += g * vf_load(weight + (size_t)j * K + k + v * VF_LANES);
        }
#pragma GCC unroll 16
        for (int v = 0; v < BWD_KV; v++)
            vf_store(dinp + (size_t)n * K + k + v * VF_LANES, acc[v]);
    }
}

/* The scalar path for the k columns that do not fill a vector. */
static void backward_tail(float *dinp, float *dweight, const float *dout, const float *inp,
                          const float *weight, int k0, int N, int K, int M)
{
    for (int k = k0; k < K; k++) {
        for (int j = 0; j < M; j++) {
            float s = 0.0f;
            for (int n = 0; n < N; n++)
                s += dout[(size_t)n * M + j] * inp[(size_t)n * K + k];
            dweight[(size_t)j * K + k] = s;
        }
        for (int n = 0; dinp && n < N; n++) {
            float s = 0.0f;
            for (int j = 0; j < M; j++)
                s += dout[(size_t)n * M + j] * weight[(size_t)j * K + k];
            dinp[(size_t)n * K + k] = s;
        }
    }
}

/* dweight[j, k] = sum_n dout[n, j] * inp[n, k]; dinp[n, k] = sum_j dout[n, j] * weight[j, k];
 * dbias[j] = sum_n dout[n, j]. Work is split over blocks of k: every output has one owner. */
static void linear_backward_f32(float *dinp, float *dweight, float *dbias, const float *dout,
                                const float *inp, const float *weight, int N, int K, int M,
                                int threads)
{
    const int kblocks = K / BWD_KB;
#pragma omp parallel for schedule(static) num_threads(threads) \
    if ((size_t)N * K * M >= CPU_PARALLEL_MIN)
    for (int kb = 0; kb < kblocks; kb++) {
        const int k = kb * BWD_KB;
        int j0 = 0;
        for (; j0 + BWD_JT <= M; j0 += BWD_JT)
            dw_tile_full(dweight, dout, inp, k, j0, N, K, M);
        for (; j0 < M; j0++)
            dw_tile_single(dweight, dout, inp, k, j0, N, K, M);
        if (dinp)
            dx_tile(dinp, dout, weight, k, N, K, M);
    }
    backward_tail(dinp, dweight, dout, inp, weight, kblocks * BWD_KB, N, K, M);
    for (int j = 0; j < M; j++) {
        float sum = 0.0f;
        for (int n = 0; n < N; n++)
            sum += dout[(size_t)n * M + j];
        dbias[j] = sum;
    }
}

void cpu_linear_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                        const struct amp_tensor *weight, const struct amp_tensor *bias,
                        uint32_t n, uint32_t k, uint32_t m, enum amp_math math)
{
    (void)math;
    linear_forward_f32(out->data, inp->data, weight->data, bias->data, (int)n, (int)k, (int)m,
                       ((struct cpu_ctx *)ctx)->threads);
}

void cpu_linear_backward(void *ctx, struct amp_tensor *dinp, struct amp_tensor *dweight,
                         struct amp_tensor *dbias, const struct amp_tensor *dout,
                         const struct amp_tensor *inp, const struct amp_tensor *weight,
                         uint32_t n, uint32_t k, uint32_t m, enum amp_math math)
{
    (void)math;
    linear_backward_f32(dinp ? dinp->data : NULL, dweight->data, dbias->data, dout->data,
                        inp->data, weight->data, (int)n, (int)k, (int)m,
                        ((struct cpu_ctx *)ctx)->threads);
}
