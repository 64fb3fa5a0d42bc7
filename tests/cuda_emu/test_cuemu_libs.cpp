/* Standalone test of the CPU emulation's library fakes (cuemu_cublas.cpp, cuemu_cublaslt.cpp,
 * cuemu_cudnn.cpp)
 * against direct reference loops: cublasGemmEx for every transa / transb with padded leading
 * dimensions, FP32 / FP16 / BF16 data and outputs, TF32 / FP16 / BF16 input rounding by compute
 * type and math mode, output rounding (subnormals, overflow), BLAS's beta == 0 convention; the
 * three cuDNN convolutions for every algorithm the v7 heuristics offer, on 3x3 with padding 1,
 * 5x5 with padding 2, 3x3 at stride 2, 1x1 at stride 2, padding larger than the filter (and a
 * strided, dilated, flipped case), FP32 with FMA and TF32 math, FP16, BF16 and TRUE_HALF; the
 * heuristics' shape (order, determinism, math type, workspace agreement); which algorithms apply
 * to which geometry (the documented support tables); cublasLtMatmul on FP8 operands (E4M3 and
 * E5M2 codes, the device scale pointers, the TN and alignment requirements, E5M2 x E5M2 refused,
 * capture); graph capture replaying
 * the captured arguments; and the statuses of bad parameters.
 *
 * Only the public CUDA runtime, cuBLAS and cuDNN APIs are used; the reference conversions are
 * the CUDA headers' host ones (cuda_fp16.h, cuda_bf16.h), which also check the CPU reference's
 * conversions (reference/lowp.h) that the fakes use.
 * Inputs are small dyadic values, so FP32 sums are exact in any order and results can be
 * compared bit for bit; TF32 cases compare with a tolerance. Exit status 0 when every check
 * passes. Build: g++ -std=c++17 with the fakes and the runtime emulation (cuemu_runtime.cpp). */
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "cuemu_lowp.h"

#include "check.h"

static cudaStream_t g_stream;

/* ---- reference conversions (the CUDA headers' host implementations) ---- */

enum T { F32, F16, BF16 };

static const char *tname(T t)
{
    return t == F32 ? "f32" : t == F16 ? "f16" : "bf16";
}

static size_t tsize(T t)
{
    return t == F32 ? 4 : 2;
}

static float ref_f16_to_f32(uint16_t b)
{
    __half_raw r;
    r.x = b;
    return __half2float(__half(r));
}

static uint16_t ref_f32_to_f16(float f)
{
    const __half_raw r = __float2half_rn(f);
    return r.x;
}

static float ref_bf16_to_f32(uint16_t b)
{
    __nv_bfloat16_raw r;
    r.x = b;
    return __bfloat162float(__nv_bfloat16(r));
}

static uint16_t ref_f32_to_bf16(float f)
{
    const __nv_bfloat16_raw r = __float2bfloat16_rn(f);
    return r.x;
}

/* TF32 by arithmetic (11 significant bits, nearest even), for normal finite values. */
static float ref_tf32(float f)
{
    if (f == 0.0f || !isfinite(f))
        return f;
    int e;
    const double m = frexp((double)f, &e); /* [0.5, 1) */
    return (float)ldexp(nearbyint(ldexp(m, 11)), e - 11);
}

/* f as type t would hold it. */
static float round_to(T t, float f)
{
    if (t == F16)
        return ref_f16_to_f32(ref_f32_to_f16(f));
    if (t == BF16)
        return ref_bf16_to_f32(ref_f32_to_bf16(f));
    return f;
}

static std::vector<unsigned char> encode(const std::vector<float> &v, T t)
{
    std::vector<unsigned char> b(v.size() * tsize(t));
    for (size_t i = 0; i < v.size(); i++) {
        if (t == F32) {
            memcpy(&b[i * 4], &v[i], 4);
        } else {
            const uint16_t h = t == F16 ? ref_f32_to_f16(v[i]) : ref_f32_to_bf16(v[i]);
            memcpy(&b[i * 2], &h, 2);
        }
    }
    return b;
}

static std::vector<float> decode(const std::vector<unsigned char> &b, T t)
{
    std::vector<float> v(b.size() / tsize(t));
    for (size_t i = 0; i < v.size(); i++) {
        if (t == F32) {
            memcpy(&v[i], &b[i * 4], 4);
        } else {
            uint16_t h;
            memcpy(&h, &b[i * 2], 2);
            v[i] = t == F16 ? ref_f16_to_f32(h) : ref_bf16_to_f32(h);
        }
    }
    return v;
}

static bool same_bits(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* ---- device buffers ---- */

struct Dev {
    void *p = nullptr;
    size_t bytes = 0;
    Dev() = default;
    explicit Dev(size_t n) : bytes(n)
    {
        CHECK(cudaMalloc(&p, n ? n : 1) == cudaSuccess, "cudaMalloc(%zu)", n);
    }
    ~Dev() { cudaFree(p); }
    Dev(const Dev &) = delete;
    Dev &operator=(const Dev &) = delete;
};

static void upload(void *d, const void *h, size_t n)
{
    CHECK(cudaMemcpyAsync(d, h, n, cudaMemcpyHostToDevice, g_stream) == cudaSuccess, "upload");
    CHECK(cudaStreamSynchronize(g_stream) == cudaSuccess, "sync");
}

static void download(void *h, const void *d, size_t n)
{
    CHECK(cudaMemcpyAsync(h, d, n, cudaMemcpyDeviceToHost, g_stream) == cudaSuccess, "download");
    CHECK(cudaStreamSynchronize(g_stream) == cudaSuccess, "sync");
}

/* A device copy of v in type t. */
static void put(Dev &d, const std::vector<float> &v, T t)
{
    const std::vector<unsigned char> b = encode(v, t);
    upload(d.p, b.data(), b.size());
}

static std::vector<float> get(const Dev &d, size_t n, T t)
{
    std::vector<unsigned char> b(n * tsize(t));
    download(b.data(), d.p, b.size());
    return decode(b, t);
}

/* ---- the conversions the fakes use (reference/lowp.h) against the CUDA headers' ---- */

static void test_lowp(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000u; h++) {
        const float a = f16_to_f32((uint16_t)h), b = ref_f16_to_f32((uint16_t)h);
        if (!(same_bits(a, b) || (isnan(a) && isnan(b))))
            bad++;
        const float c = bf16_to_f32((uint16_t)h), d = ref_bf16_to_f32((uint16_t)h);
        if (!(same_bits(c, d) || (isnan(c) && isnan(d))))
            bad++;
    }
    CHECK(bad == 0, "%d widening mismatches", bad);
    /* Narrowing: every FP16 / BF16 value, the midpoints around it and their neighbours, plus
     * a pseudo-random sweep of FP32 bit patterns. */
    bad = 0;
    std::vector<float> probes;
    for (uint32_t h = 0; h < 0x7C00u; h++) {
        const float lo = ref_f16_to_f32((uint16_t)h), hi = ref_f16_to_f32((uint16_t)(h + 1));
        const float mid = (float)(((double)lo + (double)hi) / 2);
        probes.insert(probes.end(), { lo, mid, nextafterf(mid, 0.0f), nextafterf(mid, 1e30f) });
    }
    for (uint32_t h = 0; h < 0x7F80u; h += 7) {
        const float lo = ref_bf16_to_f32((uint16_t)h), hi = ref_bf16_to_f32((uint16_t)(h + 1));
        const float mid = (float)(((double)lo + (double)hi) / 2);
        probes.insert(probes.end(), { lo, mid, nextafterf(mid, 0.0f), nextafterf(mid, 1e30f) });
    }
    uint32_t x = 12345u;
    for (int i = 0; i < 200000; i++) {
        x = x * 1664525u + 1013904223u;
        float f;
        memcpy(&f, &x, 4);
        if (!isnan(f))
            probes.push_back(f);
    }
    probes.insert(probes.end(), { 65504.0f, 65519.99f, 65520.0f, 1e30f, INFINITY, 3.4e38f });
    for (float p : probes)
        for (float f : { p, -p }) {
            if (f16_from_f32(f) != ref_f32_to_f16(f))
                bad++;
            if (bf16_from_f32(f) != ref_f32_to_bf16(f))
                bad++;
            const float a = fabsf(f);
            if (a >= 1.17549435e-38f && a < 3.0e38f && !same_bits(tf32_round(f), ref_tf32(f)))
                bad++;
        }
    CHECK(bad == 0, "%d narrowing mismatches over %zu probes", bad, probes.size());
    CHECK(tf32_round(1.0f + 0x1p-11f) == 1.0f, "TF32 tie to even (down)");
    CHECK(tf32_round(1.0f + 0x1p-10f + 0x1p-11f) == 1.0f + 0x1p-9f, "TF32 tie to even (up)");
    CHECK(isnan(f16_to_f32(f16_from_f32(NAN))), "FP16 NaN stays NaN");
    CHECK(isnan(bf16_to_f32(bf16_from_f32(NAN))), "BF16 NaN stays NaN");
}

/* ---- cuBLAS ---- */

static cudaDataType ctype(T t)
{
    return t == F32 ? CUDA_R_32F : t == F16 ? CUDA_R_16F : CUDA_R_16BF;
}

/* One GemmEx (m = 5, n = 4, k = 7, leading dimensions padded with NaN) against the reference. */
static void gemm_case(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, T ab, T ct,
                      cublasComputeType_t compute, float alpha, float beta)
{
    const int m = 5, n = 4, k = 7;
    const bool tA = ta != CUBLAS_OP_N, tB = tb != CUBLAS_OP_N;
    const int a_rows = tA ? k : m, a_cols = tA ? m : k, lda = a_rows + 3;
    const int b_rows = tB ? n : k, b_cols = tB ? k : n, ldb = b_rows + 2;
    const int ldc = m + 2;
    std::vector<float> A((size_t)lda * a_cols, NAN), B((size_t)ldb * b_cols, NAN);
    std::vector<float> C((size_t)ldc * n, 7.0f); /* padding rows must stay 7 */
    for (int c = 0; c < a_cols; c++)
        for (int r = 0; r < a_rows; r++)
            A[(size_t)c * lda + r] = (float)((r * 5 + c * 3 + 1) % 9 - 4) * 0.25f;
    for (int c = 0; c < b_cols; c++)
        for (int r = 0; r < b_rows; r++)
            B[(size_t)c * ldb + r] = (float)((r * 3 + c * 7 + 2) % 9 - 4) * 0.5f;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++)
            C[(size_t)j * ldc + i] = beta != 0.0f ? (float)((i + 2 * j) % 5 - 2) * 0.75f : NAN;
    Dev dA(A.size() * tsize(ab)), dB(B.size() * tsize(ab)), dC(C.size() * tsize(ct));
    put(dA, A, ab);
    put(dB, B, ab);
    put(dC, C, ct);
    const cublasStatus_t st =
        cublasGemmEx(h, ta, tb, m, n, k, &alpha, dA.p, ctype(ab), lda, dB.p, ctype(ab), ldb,
                     &beta, dC.p, ctype(ct), ldc, compute, CUBLAS_GEMM_DEFAULT);
    CHECK(st == CUBLAS_STATUS_SUCCESS, "GemmEx %d%d %s->%s: status %d", (int)ta, (int)tb,
          tname(ab), tname(ct), (int)st);
    const std::vector<float> got = get(dC, C.size(), ct);
    int bad = 0;
    for (int j = 0; j < n; j++) {
        for (int i = 0; i < m; i++) {
            double acc = 0;
            for (int p = 0; p < k; p++) {
                const float a = tA ? A[(size_t)i * lda + p] : A[(size_t)p * lda + i];
                const float b = tB ? B[(size_t)p * ldb + j] : B[(size_t)j * ldb + p];
                acc += (double)a * b;
            }
            double v = alpha * acc;
            if (beta != 0.0f)
                v += beta * (double)round_to(ct, C[(size_t)j * ldc + i]);
            const float want = round_to(ct, (float)v), have = got[(size_t)j * ldc + i];
            if (!same_bits(want, have)) {
                if (bad++ < 3)
                    fprintf(stderr, "  C(%d,%d) = %.9g, want %.9g\n", i, j, have, want);
            }
        }
        for (int i = m; i < ldc; i++)
            if (got[(size_t)j * ldc + i] != 7.0f)
                bad++;
    }
    CHECK(bad == 0, "GemmEx op(%d,%d) %s x %s -> %s alpha %g beta %g: %d wrong elements",
          (int)ta, (int)tb, tname(ab), tname(ab), tname(ct), alpha, beta, bad);
}

/* C (1 x 1) = a * b through GemmEx with the given compute type and math mode; NaN on failure. */
static float gemm_1x1(cublasHandle_t h, cublasComputeType_t compute, cublasMath_t mode, T ab,
                      T ct, float a, float b)
{
    CHECK(cublasSetMathMode(h, mode) == CUBLAS_STATUS_SUCCESS, "SetMathMode %d", (int)mode);
    Dev dA(4), dB(4), dC(4);
    put(dA, { a }, ab);
    put(dB, { b }, ab);
    const float one = 1.0f, zero = 0.0f;
    const cublasStatus_t st = cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, dA.p,
                                           ctype(ab), 1, dB.p, ctype(ab), 1, &zero, dC.p,
                                           ctype(ct), 1, compute, CUBLAS_GEMM_DEFAULT);
    CHECK(st == CUBLAS_STATUS_SUCCESS, "GemmEx 1x1 compute %d mode %d: status %d", (int)compute,
          (int)mode, (int)st);
    const float r = get(dC, 1, ct)[0];
    CHECK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH) == CUBLAS_STATUS_SUCCESS, "reset math");
    return st == CUBLAS_STATUS_SUCCESS ? r : NAN;
}

static void test_cublas(void)
{
    cublasHandle_t h = nullptr;
    CHECK(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS, "cublasCreate");
    CHECK(cublasSetStream(h, g_stream) == CUBLAS_STATUS_SUCCESS, "cublasSetStream");
    Dev ws(1 << 16);
    CHECK(cublasSetWorkspace(h, ws.p, ws.bytes) == CUBLAS_STATUS_SUCCESS, "cublasSetWorkspace");

    int v[3] = { -1, -1, -1 };
    CHECK(cublasGetProperty(MAJOR_VERSION, &v[0]) == CUBLAS_STATUS_SUCCESS &&
              cublasGetProperty(MINOR_VERSION, &v[1]) == CUBLAS_STATUS_SUCCESS &&
              cublasGetProperty(PATCH_LEVEL, &v[2]) == CUBLAS_STATUS_SUCCESS,
          "cublasGetProperty");
    CHECK(v[0] == CUBLAS_VER_MAJOR && v[1] == CUBLAS_VER_MINOR && v[2] == CUBLAS_VER_PATCH,
          "version %d.%d.%d", v[0], v[1], v[2]);
    CHECK(cublasGetStatusString(CUBLAS_STATUS_NOT_SUPPORTED) != nullptr &&
              strlen(cublasGetStatusString(CUBLAS_STATUS_INVALID_VALUE)) > 0,
          "status strings");

    /* Every transpose combination, each supported type combination of the table. */
    const cublasOperation_t ops[2] = { CUBLAS_OP_N, CUBLAS_OP_T };
    struct Types {
        T ab, c;
        cublasComputeType_t compute;
    };
    const Types types[] = {
        { F32, F32, CUBLAS_COMPUTE_32F_PEDANTIC }, { F32, F32, CUBLAS_COMPUTE_32F },
        { F16, F32, CUBLAS_COMPUTE_32F },          { F16, F16, CUBLAS_COMPUTE_32F },
        { BF16, F32, CUBLAS_COMPUTE_32F },         { BF16, BF16, CUBLAS_COMPUTE_32F_PEDANTIC },
    };
    for (const Types &t : types)
        for (cublasOperation_t ta : ops)
            for (cublasOperation_t tb : ops) {
                gemm_case(h, ta, tb, t.ab, t.c, t.compute, 1.5f, -0.5f);
                gemm_case(h, ta, tb, t.ab, t.c, t.compute, 1.0f, 0.0f); /* C is NaN: not read */
            }
    /* CUBLAS_OP_C is CUBLAS_OP_T for real data. */
    gemm_case(h, CUBLAS_OP_C, CUBLAS_OP_C, F32, F32, CUBLAS_COMPUTE_32F_PEDANTIC, 2.0f, 1.0f);
    /* The dyadic inputs are exact in TF32 too: FAST_TF32 gives the same result. */
    gemm_case(h, CUBLAS_OP_T, CUBLAS_OP_N, F32, F32, CUBLAS_COMPUTE_32F_FAST_TF32, 1.0f, 0.0f);

    /* TF32 / FP16 / BF16 input rounding by compute type and math mode. */
    const float a = 1.0f + 0x1p-12f; /* not a TF32 value: rounds to 1 */
    CHECK(gemm_1x1(h, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_DEFAULT_MATH, F32, F32, a, 1) == 1.0f,
          "FAST_TF32 rounds FP32 inputs");
    CHECK(gemm_1x1(h, CUBLAS_COMPUTE_32F, CUBLAS_TF32_TENSOR_OP_MATH, F32, F32, a, 1) == 1.0f,
          "COMPUTE_32F + TF32 math mode rounds FP32 inputs");
    CHECK(gemm_1x1(h, CUBLAS_COMPUTE_32F,
                   (cublasMath_t)(CUBLAS_TF32_TENSOR_OP_MATH |
                                  CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION),
                   F32, F32, a, 1) == 1.0f,
          "TF32 math mode with the DISALLOW flag");
    CHECK(gemm_1x1(h, CUBLAS_COMPUTE_32F, CUBLAS_DEFAULT_MATH, F32, F32, a, 1) == a,
          "COMPUTE_32F + default math is FP32");
    CHECK(gemm_1x1(h, CUBLAS_COMPUTE_32F_PEDANTIC, CUBLAS_TF32_TENSOR_OP_MATH, F32, F32, a, 1) ==
              a,
          "PEDANTIC ignores the TF32 math mode");
    CHECK(gemm_1x1(h, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_DEFAULT_MATH, F32, F32,
                   1.0f + 0x1p-11f, 1) == 1.0f,
          "TF32 tie rounds to even (down)");
    CHECK(gemm_1x1(h, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_DEFAULT_MATH, F32, F32,
                   1.0f + 0x1p-10f + 0x1p-11f, 1) == 1.0f + 0x1p-9f,
          "TF32 tie rounds to even (up)");
    CHECK(isinf(gemm_1x1(h, CUBLAS_COMPUTE_32F_FAST_16F, CUBLAS_DEFAULT_MATH, F32, F32, 70000.0f,
                         1.0f)),
          "FAST_16F narrows FP32 inputs to FP16");
    CHECK(gemm_1x1(h, CUBLAS_COMPUTE_32F_FAST_16BF, CUBLAS_DEFAULT_MATH, F32, F32,
                   1.0f + 0x1p-9f, 1.0f) == 1.0f,
          "FAST_16BF narrows FP32 inputs to BF16");
    /* Output rounding: FP16 overflow to inf, subnormals kept (and rounded to even). */
    CHECK(isinf(gemm_1x1(h, CUBLAS_COMPUTE_32F, CUBLAS_DEFAULT_MATH, F16, F16, 256.0f, 256.0f)),
          "FP16 output overflows to inf");
    CHECK(gemm_1x1(h, CUBLAS_COMPUTE_32F, CUBLAS_DEFAULT_MATH, F16, F16, 0x1p-10f, 0x1p-10f) ==
              0x1p-20f,
          "FP16 output keeps subnormals");
    CHECK(gemm_1x1(h, CUBLAS_COMPUTE_32F, CUBLAS_DEFAULT_MATH, F16, F16, 3 * 0x1p-13f,
                   0x1p-12f) == 0x1p-23f,
          "FP16 subnormal output rounds to even");
    CHECK(gemm_1x1(h, CUBLAS_COMPUTE_32F, CUBLAS_DEFAULT_MATH, F16, F32, 0x1p-14f, 0x1p-14f) ==
              0x1p-28f,
          "FP16 inputs, FP32 output: exact product");

    /* Bad parameters. */
    Dev dA(64 * 4), dB(64 * 4), dC(64 * 4), small(8);
    const float one = 1.0f, zero = 0.0f;
    float host_buf[64] = { 0 };
    const auto gemm = [&](cublasHandle_t hh, int ta, int tb, int m, int n, int k, const void *A,
                          cudaDataType at, int lda, const void *B, cudaDataType bt, int ldb,
                          void *C, cudaDataType cty, int ldc, cublasComputeType_t comp,
                          const float *alpha) {
        return cublasGemmEx(hh, (cublasOperation_t)ta, (cublasOperation_t)tb, m, n, k, alpha, A,
                            at, lda, B, bt, ldb, &zero, C, cty, ldc, comp, CUBLAS_GEMM_DEFAULT);
    };
    const cudaDataType R32 = CUDA_R_32F, R16 = CUDA_R_16F, RB16 = CUDA_R_16BF;
    const cublasComputeType_t C32 = CUBLAS_COMPUTE_32F;
    CHECK(gemm(nullptr, 0, 0, 2, 2, 2, dA.p, R32, 2, dB.p, R32, 2, dC.p, R32, 2, C32, &one) ==
              CUBLAS_STATUS_NOT_INITIALIZED,
          "NULL handle");
    CHECK(gemm(h, 0, 0, -1, 2, 2, dA.p, R32, 2, dB.p, R32, 2, dC.p, R32, 2, C32, &one) ==
              CUBLAS_STATUS_INVALID_VALUE,
          "m < 0");
    CHECK(gemm(h, 0, 0, 2, 2, -1, dA.p, R32, 2, dB.p, R32, 2, dC.p, R32, 2, C32, &one) ==
              CUBLAS_STATUS_INVALID_VALUE,
          "k < 0");
    CHECK(gemm(h, 0, 0, 3, 2, 2, dA.p, R32, 2, dB.p, R32, 2, dC.p, R32, 3, C32, &one) ==
              CUBLAS_STATUS_INVALID_VALUE,
          "lda < m (transa N)");
    CHECK(gemm(h, 1, 0, 2, 2, 3, dA.p, R32, 2, dB.p, R32, 3, dC.p, R32, 2, C32, &one) ==
              CUBLAS_STATUS_INVALID_VALUE,
          "lda < k (transa T)");
    CHECK(gemm(h, 1, 0, 3, 2, 2, dA.p, R32, 2, dB.p, R32, 2, dC.p, R32, 3, C32, &one) ==
              CUBLAS_STATUS_SUCCESS,
          "lda = k < m is fine for transa T");
    CHECK(gemm(h, 0, 0, 2, 2, 3, dA.p, R32, 2, dB.p, R32, 2, dC.p, R32, 2, C32, &one) ==
              CUBLAS_STATUS_INVALID_VALUE,
          "ldb < k (transb N)");
    CHECK(gemm(h, 0, 1, 2, 3, 2, dA.p, R32, 2, dB.p, R32, 2, dC.p, R32, 2, C32, &one) ==
              CUBLAS_STATUS_INVALID_VALUE,
          "ldb < n (transb T)");
    CHECK(gemm(h, 0, 0, 3, 2, 2, dA.p, R32, 3, dB.p, R32, 2, dC.p, R32, 2, C32, &one) ==
              CUBLAS_STATUS_INVALID_VALUE,
          "ldc < m");
    CHECK(gemm(h, 7, 0, 2, 2, 2, dA.p, R32, 2, dB.p, R32, 2, dC.p, R32, 2, C32, &one) ==
              CUBLAS_STATUS_INVALID_VALUE,
          "bad transa");
    CHECK(gemm(h, 0, 0, 2, 2, 2, dA.p, R16, 2, dB.p, R32, 2, dC.p, R32, 2, C32, &one) ==
              CUBLAS_STATUS_NOT_SUPPORTED,
          "mixed A / B types");
    CHECK(gemm(h, 0, 0, 2, 2, 2, dA.p, R16, 2, dB.p, R16, 2, dC.p, RB16, 2, C32, &one) ==
              CUBLAS_STATUS_NOT_SUPPORTED,
          "16F x 16F -> 16BF");
    CHECK(gemm(h, 0, 0, 2, 2, 2, dA.p, R32, 2, dB.p, R32, 2, dC.p, R16, 2, C32, &one) ==
              CUBLAS_STATUS_NOT_SUPPORTED,
          "32F x 32F -> 16F");
    CHECK(gemm(h, 0, 0, 2, 2, 2, dA.p, R16, 2, dB.p, R16, 2, dC.p, R32, 2,
               CUBLAS_COMPUTE_32F_FAST_TF32, &one) == CUBLAS_STATUS_NOT_SUPPORTED,
          "FAST_TF32 with FP16 data");
    CHECK(gemm(h, 0, 0, 2, 2, 2, host_buf, R32, 2, dB.p, R32, 2, dC.p, R32, 2, C32, &one) ==
              CUBLAS_STATUS_INVALID_VALUE,
          "host pointer for A");
    CHECK(gemm(h, 0, 0, 2, 2, 2, dA.p, R32, 2, dB.p, R32, 2, small.p, R32, 2, C32, &one) ==
              CUBLAS_STATUS_INVALID_VALUE,
          "C too small for ldc * n");
    CHECK(gemm(h, 0, 0, 2, 2, 2, dA.p, R32, 2, dB.p, R32, 2, dA.p, R32, 2, C32, &one) ==
              CUBLAS_STATUS_INVALID_VALUE,
          "C overlapping A");
    CHECK(gemm(h, 0, 0, 2, 2, 2, dA.p, R32, 2, dB.p, R32, 2, dC.p, R32, 2, C32,
               (const float *)dA.p) == CUBLAS_STATUS_INVALID_VALUE,
          "device alpha in host pointer mode");
    CHECK(gemm(h, 0, 0, 0, 2, 2, nullptr, R32, 1, nullptr, R32, 2, nullptr, R32, 1, C32, &one) ==
              CUBLAS_STATUS_SUCCESS,
          "m == 0 is a no-op");
    CHECK(cublasSetMathMode(h, (cublasMath_t)5) == CUBLAS_STATUS_INVALID_VALUE, "bad math mode");
    CHECK(cublasSetWorkspace(h, (char *)ws.p + 16, 1024) == CUBLAS_STATUS_INVALID_VALUE,
          "unaligned workspace");
    CHECK(cublasSetWorkspace(h, host_buf, sizeof host_buf) == CUBLAS_STATUS_INVALID_VALUE,
          "host workspace");

    /* Graph capture: a 1x1x1 GEMM (C = alpha * 3 * 5). */
    {
        Dev cA(4), cB(4), cC(4);
        put(cA, { 3.0f }, F32);
        put(cB, { 5.0f }, F32);
        put(cC, { -1.0f }, F32);
        float alpha = 2.0f;
        cudaStream_t s = g_stream;
        const auto gemm1 = [&](cublasHandle_t handle) {
            return cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &alpha, cA.p,
                                CUDA_R_32F, 1, cB.p, CUDA_R_32F, 1, &zero, cC.p, CUDA_R_32F, 1,
                                CUBLAS_COMPUTE_32F_PEDANTIC, CUBLAS_GEMM_DEFAULT);
        };
        /* Without a user workspace: NOT_SUPPORTED, and the capture is invalidated. */
        cublasHandle_t bare = nullptr;
        CHECK(cublasCreate(&bare) == CUBLAS_STATUS_SUCCESS, "cublasCreate");
        CHECK(cublasSetStream(bare, s) == CUBLAS_STATUS_SUCCESS, "cublasSetStream");
        CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess,
              "begin capture");
        CHECK(gemm1(bare) == CUBLAS_STATUS_NOT_SUPPORTED,
              "GemmEx in capture without a workspace is not NOT_SUPPORTED");
        cudaGraph_t bad = nullptr;
        CHECK(cudaStreamEndCapture(s, &bad) == cudaErrorStreamCaptureInvalidated,
              "the capture survived a GemmEx without a workspace");
        cudaGetLastError();
        CHECK(cublasDestroy(bare) == CUBLAS_STATUS_SUCCESS, "cublasDestroy");
        /* With one: the GEMM replays with the arguments of the captured call. */
        CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess,
              "begin capture");
        CHECK(gemm1(h) == CUBLAS_STATUS_SUCCESS, "GemmEx in capture");
        alpha = 100.0f; /* after the call: must not matter */
        cudaGraph_t graph = nullptr;
        cudaGraphExec_t exec = nullptr;
        CHECK(cudaStreamEndCapture(s, &graph) == cudaSuccess, "end capture");
        CHECK(get(cC, 1, F32)[0] == -1.0f, "nothing ran during capture");
        CHECK(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess, "instantiate");
        CHECK(cudaGraphLaunch(exec, s) == cudaSuccess, "launch");
        CHECK(get(cC, 1, F32)[0] == 30.0f, "replay uses the captured alpha (got %g)",
              get(cC, 1, F32)[0]);
        cudaGraphExecDestroy(exec);
        cudaGraphDestroy(graph);
    }

    CHECK(cublasDestroy(h) == CUBLAS_STATUS_SUCCESS, "cublasDestroy");
    CHECK(cublasSetStream(h, g_stream) == CUBLAS_STATUS_NOT_INITIALIZED, "destroyed handle");
}

/* ---- cuDNN ---- */

static cudnnDataType_t dnn_type(T t)
{
    return t == F32 ? CUDNN_DATA_FLOAT : t == F16 ? CUDNN_DATA_HALF : CUDNN_DATA_BFLOAT16;
}

struct Geom {
    int N, C, H, W, K, R, S, pad_h, pad_w, u, v, dil_h, dil_w;
    cudnnConvolutionMode_t mode;
    int OH() const { return (H + 2 * pad_h - ((R - 1) * dil_h + 1)) / u + 1; }
    int OW() const { return (W + 2 * pad_w - ((S - 1) * dil_w + 1)) / v + 1; }
    size_t xn() const { return (size_t)N * C * H * W; }
    size_t wn() const { return (size_t)K * C * R * S; }
    size_t yn() const { return (size_t)N * K * OH() * OW(); }
};

/* Descriptors of one problem. */
struct Descs {
    cudnnTensorDescriptor_t x = nullptr, y = nullptr;
    cudnnFilterDescriptor_t w = nullptr;
    cudnnConvolutionDescriptor_t conv = nullptr;
    Descs(const Geom &g, T t, cudnnDataType_t compute, cudnnMathType_t math)
    {
        const cudnnDataType_t dt = dnn_type(t);
        CHECK(cudnnCreateTensorDescriptor(&x) == CUDNN_STATUS_SUCCESS &&
                  cudnnCreateTensorDescriptor(&y) == CUDNN_STATUS_SUCCESS &&
                  cudnnCreateFilterDescriptor(&w) == CUDNN_STATUS_SUCCESS &&
                  cudnnCreateConvolutionDescriptor(&conv) == CUDNN_STATUS_SUCCESS,
              "create descriptors");
        CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, dt, g.N, g.C, g.H, g.W) ==
                      CUDNN_STATUS_SUCCESS &&
                  cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, dt, g.N, g.K, g.OH(),
                                             g.OW()) == CUDNN_STATUS_SUCCESS &&
                  cudnnSetFilter4dDescriptor(w, dt, CUDNN_TENSOR_NCHW, g.K, g.C, g.R, g.S) ==
                      CUDNN_STATUS_SUCCESS &&
                  cudnnSetConvolution2dDescriptor(conv, g.pad_h, g.pad_w, g.u, g.v, g.dil_h,
                                                  g.dil_w, g.mode, compute) ==
                      CUDNN_STATUS_SUCCESS &&
                  cudnnSetConvolutionMathType(conv, math) == CUDNN_STATUS_SUCCESS,
              "set descriptors");
    }
    ~Descs()
    {
        cudnnDestroyConvolutionDescriptor(conv);
        cudnnDestroyFilterDescriptor(w);
        cudnnDestroyTensorDescriptor(y);
        cudnnDestroyTensorDescriptor(x);
    }
    Descs(const Descs &) = delete;
    Descs &operator=(const Descs &) = delete;
};

/* Reference sums in double: the cross-correlation with the (flipped for CUDNN_CONVOLUTION)
 * filter, written per output element, independently of the fake's loop structure. `sumabs`
 * gets the sum of |terms| (the TF32 tolerance). */
static double w_at(const Geom &g, const std::vector<float> &w, int k, int c, int r, int s)
{
    if (g.mode == CUDNN_CONVOLUTION) {
        r = g.R - 1 - r;
        s = g.S - 1 - s;
    }
    return w[(((size_t)k * g.C + c) * g.R + r) * g.S + s];
}

static std::vector<double> ref_forward(const Geom &g, const std::vector<float> &x,
                                       const std::vector<float> &w, std::vector<double> &sumabs)
{
    std::vector<double> y(g.yn());
    sumabs.assign(g.yn(), 0.0);
    for (int n = 0; n < g.N; n++)
        for (int k = 0; k < g.K; k++)
            for (int oh = 0; oh < g.OH(); oh++)
                for (int ow = 0; ow < g.OW(); ow++) {
                    double acc = 0, sa = 0;
                    for (int c = 0; c < g.C; c++)
                        for (int r = 0; r < g.R; r++)
                            for (int s = 0; s < g.S; s++) {
                                const int ih = oh * g.u - g.pad_h + r * g.dil_h;
                                const int iw = ow * g.v - g.pad_w + s * g.dil_w;
                                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W)
                                    continue;
                                const double t =
                                    x[(((size_t)n * g.C + c) * g.H + ih) * g.W + iw] *
                                    w_at(g, w, k, c, r, s);
                                acc += t;
                                sa += fabs(t);
                            }
                    const size_t i = (((size_t)n * g.K + k) * g.OH() + oh) * g.OW() + ow;
                    y[i] = acc;
                    sumabs[i] = sa;
                }
    return y;
}

static std::vector<double> ref_backward_data(const Geom &g, const std::vector<float> &dy,
                                             const std::vector<float> &w,
                                             std::vector<double> &sumabs)
{
    std::vector<double> dx(g.xn());
    sumabs.assign(g.xn(), 0.0);
    for (int n = 0; n < g.N; n++)
        for (int c = 0; c < g.C; c++)
            for (int ih = 0; ih < g.H; ih++)
                for (int iw = 0; iw < g.W; iw++) {
                    double acc = 0, sa = 0;
                    for (int k = 0; k < g.K; k++)
                        for (int r = 0; r < g.R; r++)
                            for (int s = 0; s < g.S; s++) {
                                const int th = ih + g.pad_h - r * g.dil_h;
                                const int tw = iw + g.pad_w - s * g.dil_w;
                                if (th < 0 || tw < 0 || th % g.u || tw % g.v)
                                    continue;
                                const int oh = th / g.u, ow = tw / g.v;
                                if (oh >= g.OH() || ow >= g.OW())
                                    continue;
                                const double t =
                                    dy[(((size_t)n * g.K + k) * g.OH() + oh) * g.OW() + ow] *
                                    w_at(g, w, k, c, r, s);
                                acc += t;
                                sa += fabs(t);
                            }
                    const size_t i = (((size_t)n * g.C + c) * g.H + ih) * g.W + iw;
                    dx[i] = acc;
                    sumabs[i] = sa;
                }
    return dx;
}

static std::vector<double> ref_backward_filter(const Geom &g, const std::vector<float> &x,
                                               const std::vector<float> &dy,
                                               std::vector<double> &sumabs)
{
    std::vector<double> dw(g.wn());
    sumabs.assign(g.wn(), 0.0);
    for (int k = 0; k < g.K; k++)
        for (int c = 0; c < g.C; c++)
            for (int r = 0; r < g.R; r++)
                for (int s = 0; s < g.S; s++) {
                    double acc = 0, sa = 0;
                    for (int n = 0; n < g.N; n++)
                        for (int oh = 0; oh < g.OH(); oh++)
                            for (int ow = 0; ow < g.OW(); ow++) {
                                const int ih = oh * g.u - g.pad_h + r * g.dil_h;
                                const int iw = ow * g.v - g.pad_w + s * g.dil_w;
                                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W)
                                    continue;
                                const double t =
                                    dy[(((size_t)n * g.K + k) * g.OH() + oh) * g.OW() + ow] *
                                    x[(((size_t)n * g.C + c) * g.H + ih) * g.W + iw];
                                acc += t;
                                sa += fabs(t);
                            }
                    /* the gradient of the stored tap (flipped for CUDNN_CONVOLUTION) */
                    const int rr = g.mode == CUDNN_CONVOLUTION ? g.R - 1 - r : r;
                    const int ss = g.mode == CUDNN_CONVOLUTION ? g.S - 1 - s : s;
                    const size_t i = (((size_t)k * g.C + c) * g.R + rr) * g.S + ss;
                    dw[i] = acc;
                    sumabs[i] = sa;
                }
    return dw;
}

/* Dyadic test values in [-mod/2, mod/2] * scale from a hash of (seed, index): exact in every
 * type, FP32 sums exact in any order, no symmetry a wrong index could hide behind; with
 * `fine`, extra low bits that TF32 rounding removes. */
static std::vector<float> values(size_t n, uint32_t seed, int mod, float scale, bool fine)
{
    std::vector<float> v(n);
    for (size_t i = 0; i < n; i++) {
        uint32_t z = (uint32_t)i * 0x9E3779B9u + seed * 0x85EBCA6Bu;
        z ^= z >> 16;
        z *= 0x7FEB352Du;
        z ^= z >> 15;
        v[i] = (float)((int)(z % (uint32_t)mod) - mod / 2) * scale;
        if (fine)
            v[i] += (float)((int)(i % 3) - 1) * 0x1p-13f;
    }
    return v;
}

/* Compares an output with the reference: exact (rounded to t) or within the TF32 tolerance. */
static int compare(const std::vector<float> &got, const std::vector<double> &ref,
                   const std::vector<double> &sumabs, const std::vector<float> &old, float alpha,
                   float beta, T t, bool exact, const char *what)
{
    int bad = 0;
    for (size_t i = 0; i < got.size(); i++) {
        double v = alpha * ref[i];
        if (beta != 0.0f)
            v += beta * (double)old[i];
        bool ok;
        if (exact)
            ok = same_bits(got[i], round_to(t, (float)v));
        else
            ok = fabs(got[i] - v) <=
                 0x1p-16 * (fabs(alpha) * sumabs[i] + (beta != 0.0f ? fabs(beta * old[i]) : 0.0));
        if (!ok && bad++ < 3)
            fprintf(stderr, "  %s[%zu] = %.9g, want %.9g\n", what, i, got[i], v);
    }
    return bad;
}

/* Runs every algorithm the heuristics offer for the three directions of one problem. */
static void conv_case(cudnnHandle_t h, const Geom &g, T t, cudnnDataType_t compute,
                      cudnnMathType_t math)
{
    const bool tf32 = t == F32 && math != CUDNN_FMA_MATH;
    const bool exact = !tf32; /* dyadic inputs, exact sums: bit-exact results */
    Descs d(g, t, compute, math);
    const std::vector<float> x = values(g.xn(), 1, 9, 0.25f, tf32);
    const std::vector<float> w = values(g.wn(), 2, 7, 0.5f, tf32);
    const std::vector<float> dy = values(g.yn(), 3, 9, 0.25f, tf32);
    /* The operands as the math type uses them. */
    std::vector<float> xr = x, wr = w, dyr = dy;
    for (std::vector<float> *v : { &xr, &wr, &dyr })
        for (float &f : *v)
            f = tf32 ? ref_tf32(round_to(t, f)) : round_to(t, f);
    std::vector<double> sa_y, sa_dx, sa_dw;
    const std::vector<double> ry = ref_forward(g, xr, wr, sa_y);
    const std::vector<double> rdx = ref_backward_data(g, dyr, wr, sa_dx);
    const std::vector<double> rdw = ref_backward_filter(g, xr, dyr, sa_dw);

    Dev dx_in(g.xn() * tsize(t)), dw_in(g.wn() * tsize(t)), ddy_in(g.yn() * tsize(t));
    put(dx_in, x, t);
    put(dw_in, w, t);
    put(ddy_in, dy, t);
    const std::vector<float> old_y = values(g.yn(), 4, 5, 0.75f, false);
    const std::vector<float> old_x = values(g.xn(), 5, 5, 0.75f, false);
    const std::vector<float> old_w = values(g.wn(), 6, 5, 0.75f, false);
    char label[160];
    snprintf(label, sizeof label, "%s compute %d math %d geom %dx%dx%dx%d k%d %dx%d", tname(t),
             (int)compute, (int)math, g.N, g.C, g.H, g.W, g.K, g.R, g.S);

    for (int dir = 0; dir < 3; dir++) {
        struct Cand {
            int algo;
            cudnnStatus_t status;
            size_t memory;
            cudnnDeterminism_t det;
            cudnnMathType_t math;
        };
        std::vector<Cand> cands;
        int returned = 0;
        cudnnStatus_t st;
        if (dir == 0) {
            cudnnConvolutionFwdAlgoPerf_t perf[16];
            st = cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y, 16, &returned,
                                                        perf);
            for (int i = 0; i < returned; i++)
                cands.push_back({ perf[i].algo, perf[i].status, perf[i].memory,
                                  perf[i].determinism, perf[i].mathType });
        } else if (dir == 1) {
            cudnnConvolutionBwdDataAlgoPerf_t perf[16];
            st = cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w, d.y, d.conv, d.x, 16,
                                                             &returned, perf);
            for (int i = 0; i < returned; i++)
                cands.push_back({ perf[i].algo, perf[i].status, perf[i].memory,
                                  perf[i].determinism, perf[i].mathType });
        } else {
            cudnnConvolutionBwdFilterAlgoPerf_t perf[16];
            st = cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.conv, d.w, 16,
                                                               &returned, perf);
            for (int i = 0; i < returned; i++)
                cands.push_back({ perf[i].algo, perf[i].status, perf[i].memory,
                                  perf[i].determinism, perf[i].mathType });
        }
        CHECK(st == CUDNN_STATUS_SUCCESS && returned > 0 && returned <= 16,
              "%s dir %d heuristics: status %d, %d results", label, dir, (int)st, returned);
        bool seen_unsupported = false, any_det = false;
        int ran = 0;
        /* Tensor-op results only for FP16/BF16 with C and K multiples of 8, else DEFAULT. */
        const bool tensor_op = math == CUDNN_TENSOR_OP_MATH ||
                               math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
        const cudnnMathType_t want_math =
            tensor_op && t != F32 && (g.C % 8 || g.K % 8) ? CUDNN_DEFAULT_MATH : math;
        for (size_t i = 0; i < cands.size(); i++) {
            const Cand &c = cands[i];
            CHECK(c.math == want_math, "%s dir %d algo %d: math type %d (want %d)", label, dir,
                  c.algo, (int)c.math, (int)want_math);
            if (c.status != CUDNN_STATUS_SUCCESS) {
                seen_unsupported = true;
                continue;
            }
            CHECK(!seen_unsupported, "%s dir %d: applicable algorithms come first", label, dir);
            any_det = any_det || c.det == CUDNN_DETERMINISTIC;
            size_t ws = 12345;
            if (dir == 0)
                st = cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y,
                                                             (cudnnConvolutionFwdAlgo_t)c.algo,
                                                             &ws);
            else if (dir == 1)
                st = cudnnGetConvolutionBackwardDataWorkspaceSize(
                    h, d.w, d.y, d.conv, d.x, (cudnnConvolutionBwdDataAlgo_t)c.algo, &ws);
            else
                st = cudnnGetConvolutionBackwardFilterWorkspaceSize(
                    h, d.x, d.y, d.conv, d.w, (cudnnConvolutionBwdFilterAlgo_t)c.algo, &ws);
            CHECK(st == CUDNN_STATUS_SUCCESS && ws == c.memory,
                  "%s dir %d algo %d: workspace %zu vs heuristics %zu", label, dir, c.algo, ws,
                  c.memory);
            Dev work(c.memory);
            const size_t out_n = dir == 0 ? g.yn() : dir == 1 ? g.xn() : g.wn();
            const std::vector<float> &old = dir == 0 ? old_y : dir == 1 ? old_x : old_w;
            const std::vector<double> &ref = dir == 0 ? ry : dir == 1 ? rdx : rdw;
            const std::vector<double> &sa = dir == 0 ? sa_y : dir == 1 ? sa_dx : sa_dw;
            Dev out(out_n * tsize(t));
            std::vector<float> first;
            /* (alpha 1, beta 0, output NaN: not read), (1.5, -0.5), and a rerun of the first. */
            for (int run = 0; run < 3; run++) {
                const float alpha = run == 1 ? 1.5f : 1.0f, beta = run == 1 ? -0.5f : 0.0f;
                put(out, run == 1 ? old : std::vector<float>(out_n, NAN), t);
                void *wsp = c.memory ? work.p : nullptr;
                if (dir == 0)
                    st = cudnnConvolutionForward(h, &alpha, d.x, dx_in.p, d.w, dw_in.p, d.conv,
                                                 (cudnnConvolutionFwdAlgo_t)c.algo, wsp,
                                                 c.memory, &beta, d.y, out.p);
                else if (dir == 1)
                    st = cudnnConvolutionBackwardData(h, &alpha, d.w, dw_in.p, d.y, ddy_in.p,
                                                      d.conv,
                                                      (cudnnConvolutionBwdDataAlgo_t)c.algo, wsp,
                                                      c.memory, &beta, d.x, out.p);
                else
                    st = cudnnConvolutionBackwardFilter(
                        h, &alpha, d.x, dx_in.p, d.y, ddy_in.p, d.conv,
                        (cudnnConvolutionBwdFilterAlgo_t)c.algo, wsp, c.memory, &beta, d.w,
                        out.p);
                CHECK(st == CUDNN_STATUS_SUCCESS, "%s dir %d algo %d: status %d", label, dir,
                      c.algo, (int)st);
                const std::vector<float> got = get(out, out_n, t);
                std::vector<float> old_rounded = old;
                for (float &f : old_rounded)
                    f = round_to(t, f);
                const int bad =
                    compare(got, ref, sa, old_rounded, alpha, beta, t, exact, "out");
                CHECK(bad == 0, "%s dir %d algo %d run %d: %d wrong elements", label, dir,
                      c.algo, run, bad);
                if (run == 0)
                    first = got;
                if (run == 2)
                    CHECK(memcmp(first.data(), got.data(), got.size() * sizeof(float)) == 0,
                          "%s dir %d algo %d: results repeat bit for bit", label, dir, c.algo);
            }
            /* Too small a workspace. */
            if (c.memory) {
                const float one = 1.0f, zero = 0.0f;
                if (dir == 0)
                    st = cudnnConvolutionForward(h, &one, d.x, dx_in.p, d.w, dw_in.p, d.conv,
                                                 (cudnnConvolutionFwdAlgo_t)c.algo, work.p,
                                                 c.memory - 1, &zero, d.y, out.p);
                else if (dir == 1)
                    st = cudnnConvolutionBackwardData(h, &one, d.w, dw_in.p, d.y, ddy_in.p,
                                                      d.conv,
                                                      (cudnnConvolutionBwdDataAlgo_t)c.algo,
                                                      work.p, c.memory - 1, &zero, d.x, out.p);
                else
                    st = cudnnConvolutionBackwardFilter(
                        h, &one, d.x, dx_in.p, d.y, ddy_in.p, d.conv,
                        (cudnnConvolutionBwdFilterAlgo_t)c.algo, work.p, c.memory - 1, &zero,
                        d.w, out.p);
                CHECK(st == CUDNN_STATUS_BAD_PARAM, "%s dir %d algo %d: short workspace: %d",
                      label, dir, c.algo, (int)st);
            }
            ran++;
        }
        CHECK(ran > 0 && any_det, "%s dir %d: %d algorithms ran", label, dir, ran);
        if (dir > 0) {
            /* Real cuDNN lists the atomics-based ALGO_0 first; it is not deterministic. */
            CHECK(cands[0].algo == 0 && cands[0].det == CUDNN_NON_DETERMINISTIC,
                  "%s dir %d: first candidate algo %d det %d", label, dir, cands[0].algo,
                  (int)cands[0].det);
        }
    }
}

/* The heuristics' general shape on the backend's problem (3x3, padding 1). */
static void test_heuristics(cudnnHandle_t h)
{
    const Geom g = { 4, 8, 12, 12, 16, 3, 3, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION };
    for (cudnnMathType_t math : { CUDNN_FMA_MATH, CUDNN_DEFAULT_MATH, CUDNN_TENSOR_OP_MATH }) {
        Descs d(g, F32, CUDNN_DATA_FLOAT, math);
        cudnnConvolutionFwdAlgoPerf_t fwd[8];
        cudnnConvolutionBwdDataAlgoPerf_t bd[8];
        cudnnConvolutionBwdFilterAlgoPerf_t bf[8];
        int nf = 0, nd = 0, nb = 0;
        CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y, 8, &nf, fwd) ==
                      CUDNN_STATUS_SUCCESS &&
                  cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w, d.y, d.conv, d.x, 8, &nd,
                                                              bd) == CUDNN_STATUS_SUCCESS &&
                  cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.conv, d.w, 8, &nb,
                                                                bf) == CUDNN_STATUS_SUCCESS,
              "heuristics");
        CHECK(nf == CUDNN_CONVOLUTION_FWD_ALGO_COUNT &&
                  nd == CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT &&
                  nb == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
              "every algorithm listed: %d %d %d", nf, nd, nb);
        bool ws_fwd = false, ws_bd = false, ws_bf = false, det_bd = false, det_bf = false;
        for (int i = 0; i < nf; i++)
            ws_fwd = ws_fwd || (fwd[i].status == CUDNN_STATUS_SUCCESS && fwd[i].memory > 0);
        for (int i = 1; i < nd; i++) {
            ws_bd = ws_bd || (bd[i].status == CUDNN_STATUS_SUCCESS && bd[i].memory > 0);
            det_bd = det_bd || (bd[i].status == CUDNN_STATUS_SUCCESS &&
                                bd[i].determinism == CUDNN_DETERMINISTIC);
        }
        for (int i = 1; i < nb; i++) {
            ws_bf = ws_bf || (bf[i].status == CUDNN_STATUS_SUCCESS && bf[i].memory > 0);
            det_bf = det_bf || (bf[i].status == CUDNN_STATUS_SUCCESS &&
                                bf[i].determinism == CUDNN_DETERMINISTIC);
        }
        CHECK(ws_fwd && ws_bd && ws_bf, "algorithms that need a workspace are offered");
        CHECK(det_bd && det_bf, "deterministic backward algorithms follow ALGO_0");
        CHECK(fwd[0].status == CUDNN_STATUS_SUCCESS && bd[0].status == CUDNN_STATUS_SUCCESS &&
                  bf[0].status == CUDNN_STATUS_SUCCESS,
              "the first results apply");
        CHECK(bd[0].algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 &&
                  bd[0].determinism == CUDNN_NON_DETERMINISTIC &&
                  bf[0].algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 &&
                  bf[0].determinism == CUDNN_NON_DETERMINISTIC,
              "ALGO_0 (non-deterministic) first for the backward directions");
        for (int i = 0; i < nf; i++)
            CHECK(fwd[i].mathType == math && fwd[i].determinism == CUDNN_DETERMINISTIC,
                  "forward result %d: math %d det %d", i, (int)fwd[i].mathType,
                  (int)fwd[i].determinism);
        int r2 = 0;
        CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.conv, d.w, 2, &r2,
                                                            bf) == CUDNN_STATUS_SUCCESS &&
                  r2 == 2,
              "returnedAlgoCount <= requestedAlgoCount (%d)", r2);
        CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.conv, d.w, 0, &r2,
                                                            bf) == CUDNN_STATUS_BAD_PARAM,
              "requestedAlgoCount 0");
    }
}

/* Which algorithms apply (status SUCCESS in the heuristics and the workspace queries) for
 * geometries beyond 3x3 / stride 1 / padding 1, per the documented support tables. */
static void test_applicability(cudnnHandle_t h)
{
    struct Want {
        const char *name;
        Geom g;
        T t;
        cudnnDataType_t compute;
        bool fft, fft_tiling, winograd, winograd_nonfused;
    };
    const Want cases[] = {
        { "3x3 pad 1", { 2, 3, 12, 12, 4, 3, 3, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION }, F32,
          CUDNN_DATA_FLOAT, true, true, true, true },
        { "5x5 pad 2", { 2, 3, 12, 12, 4, 5, 5, 2, 2, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION }, F32,
          CUDNN_DATA_FLOAT, true, true, false, true },
        { "5x5 pad 2 TRUE_HALF", { 2, 3, 12, 12, 4, 5, 5, 2, 2, 1, 1, 1, 1,
          CUDNN_CROSS_CORRELATION }, F16, CUDNN_DATA_HALF, false, false, false, false },
        { "3x3 stride 2", { 2, 3, 12, 12, 4, 3, 3, 1, 1, 2, 2, 1, 1, CUDNN_CROSS_CORRELATION },
          F32, CUDNN_DATA_FLOAT, false, false, false, false },
        { "1x1 pad 0", { 2, 3, 12, 12, 4, 1, 1, 0, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION }, F32,
          CUDNN_DATA_FLOAT, true, true, false, false },
        { "1x1 pad 1 (padding not below the filter)", { 2, 3, 12, 12, 4, 1, 1, 1, 1, 1, 1, 1, 1,
          CUDNN_CROSS_CORRELATION }, F32, CUDNN_DATA_FLOAT, false, false, false, false },
        { "3x3 on 300x300 (FFT's 256 limit)", { 1, 1, 300, 300, 1, 3, 3, 1, 1, 1, 1, 1, 1,
          CUDNN_CROSS_CORRELATION }, F32, CUDNN_DATA_FLOAT, false, true, true, true },
        { "5x5 pad 2 BF16", { 2, 3, 12, 12, 4, 5, 5, 2, 2, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION },
          BF16, CUDNN_DATA_FLOAT, false, false, false, true },
    };
    for (const Want &c : cases) {
        Descs d(c.g, c.t, c.compute, CUDNN_DEFAULT_MATH);
        size_t ws = 0;
        const auto fwd = [&](cudnnConvolutionFwdAlgo_t a) {
            return cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y, a, &ws) ==
                   CUDNN_STATUS_SUCCESS;
        };
        const auto bd = [&](cudnnConvolutionBwdDataAlgo_t a) {
            return cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.conv, d.x, a,
                                                                &ws) == CUDNN_STATUS_SUCCESS;
        };
        const auto bf = [&](cudnnConvolutionBwdFilterAlgo_t a) {
            return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.conv, d.w, a,
                                                                  &ws) == CUDNN_STATUS_SUCCESS;
        };
        CHECK(fwd(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM) &&
                  fwd(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM) &&
                  fwd(CUDNN_CONVOLUTION_FWD_ALGO_GEMM) && bd(CUDNN_CONVOLUTION_BWD_DATA_ALGO_0) &&
                  bd(CUDNN_CONVOLUTION_BWD_DATA_ALGO_1) &&
                  bf(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0) &&
                  bf(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1) &&
                  bf(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3),
              "%s: the GEMM algorithms apply", c.name);
        CHECK(fwd(CUDNN_CONVOLUTION_FWD_ALGO_FFT) == c.fft &&
                  bd(CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT) == c.fft &&
                  bf(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT) == c.fft,
              "%s: FFT %s", c.name, c.fft ? "applies" : "does not apply");
        CHECK(fwd(CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING) == c.fft_tiling &&
                  bd(CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING) == c.fft_tiling &&
                  bf(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING) == c.fft_tiling,
              "%s: FFT_TILING %s", c.name, c.fft_tiling ? "applies" : "does not apply");
        const bool wino = c.winograd && c.t != BF16;
        CHECK(fwd(CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD) == wino &&
                  bd(CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD) == wino &&
                  !bf(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD),
              "%s: WINOGRAD %s", c.name, wino ? "applies" : "does not apply");
        CHECK(fwd(CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED) == c.winograd_nonfused &&
                  bd(CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED) == c.winograd_nonfused &&
                  bf(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED) == c.winograd_nonfused,
              "%s: WINOGRAD_NONFUSED %s", c.name,
              c.winograd_nonfused ? "applies" : "does not apply");
        CHECK(!fwd(CUDNN_CONVOLUTION_FWD_ALGO_DIRECT), "%s: DIRECT never applies", c.name);
    }
}

/* TF32 in cuDNN: a 1x1 convolution of 1 + 2^-12 by 1 under each math type (FP32 data). */
static void test_conv_tf32(cudnnHandle_t h)
{
    const Geom g = { 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION };
    const float a = 1.0f + 0x1p-12f, one = 1.0f, zero = 0.0f;
    Dev pa(4), p1(4), out(4); /* a, 1: every direction multiplies a by 1 */
    put(pa, { a }, F32);
    put(p1, { 1.0f }, F32);
    const struct {
        cudnnMathType_t math;
        float want;
    } cases[] = { { CUDNN_FMA_MATH, a },
                  { CUDNN_DEFAULT_MATH, 1.0f },
                  { CUDNN_TENSOR_OP_MATH, 1.0f },
                  { CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, 1.0f } };
    for (const auto &c : cases) {
        Descs d(g, F32, CUDNN_DATA_FLOAT, c.math);
        CHECK(cudnnConvolutionForward(h, &one, d.x, pa.p, d.w, p1.p, d.conv,
                                      CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero,
                                      d.y, out.p) == CUDNN_STATUS_SUCCESS,
              "forward");
        CHECK(get(out, 1, F32)[0] == c.want, "forward math %d: %.9g", (int)c.math,
              get(out, 1, F32)[0]);
        CHECK(cudnnConvolutionBackwardData(h, &one, d.w, p1.p, d.y, pa.p, d.conv,
                                           CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, nullptr, 0, &zero,
                                           d.x, out.p) == CUDNN_STATUS_SUCCESS,
              "backward data");
        CHECK(get(out, 1, F32)[0] == c.want, "backward data math %d", (int)c.math);
        CHECK(cudnnConvolutionBackwardFilter(h, &one, d.x, pa.p, d.y, p1.p, d.conv,
                                             CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, nullptr, 0,
                                             &zero, d.w, out.p) == CUDNN_STATUS_SUCCESS,
              "backward filter");
        CHECK(get(out, 1, F32)[0] == c.want, "backward filter math %d", (int)c.math);
    }

    /* Graph capture: the convolution replays with the captured scalars and math type. */
    Descs d(g, F32, CUDNN_DATA_FLOAT, CUDNN_FMA_MATH);
    put(out, { -1.0f }, F32);
    float alpha = 2.0f;
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    CHECK(cudaStreamBeginCapture(g_stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess,
          "begin capture");
    CHECK(cudnnConvolutionForward(h, &alpha, d.x, pa.p, d.w, p1.p, d.conv,
                                  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero,
                                  d.y, out.p) == CUDNN_STATUS_SUCCESS,
          "forward in capture");
    alpha = 100.0f;
    CHECK(cudnnSetConvolutionMathType(d.conv, CUDNN_DEFAULT_MATH) == CUDNN_STATUS_SUCCESS,
          "math type changed after the capture");
    CHECK(cudaStreamEndCapture(g_stream, &graph) == cudaSuccess, "end capture");
    CHECK(get(out, 1, F32)[0] == -1.0f, "nothing ran during capture");
    CHECK(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess, "instantiate");
    CHECK(cudaGraphLaunch(exec, g_stream) == cudaSuccess, "launch");
    CHECK(get(out, 1, F32)[0] == 2.0f * a, "replay: captured alpha and FMA math (got %.9g)",
          get(out, 1, F32)[0]);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);

    /* A combination never executed before (backward filter, ALGO_1 with its workspace, FMA
     * math on this problem) fails inside a capture and invalidates it: a real cuDNN may have to
     * load or compile its kernel, which capture cannot do. Executed once outside, it captures. */
    Dev ws(4096);
    size_t need = 0;
    CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.conv, d.w,
                                                         CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1,
                                                         &need) == CUDNN_STATUS_SUCCESS &&
              need <= 4096,
          "backward filter ALGO_1 workspace");
    CHECK(cudnnSetConvolutionMathType(d.conv, CUDNN_FMA_MATH) == CUDNN_STATUS_SUCCESS, "math");
    const auto bwd_filter = [&] {
        return cudnnConvolutionBackwardFilter(h, &one, d.x, pa.p, d.y, p1.p, d.conv,
                                              CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, ws.p, need,
                                              &zero, d.w, out.p);
    };
    CHECK(cudaStreamBeginCapture(g_stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess,
          "begin capture");
    CHECK(bwd_filter() == CUDNN_STATUS_EXECUTION_FAILED,
          "a first execution inside a capture did not fail");
    CHECK(cudaStreamEndCapture(g_stream, &graph) == cudaErrorStreamCaptureInvalidated,
          "the capture survived a first execution");
    cudaGetLastError();
    CHECK(bwd_filter() == CUDNN_STATUS_SUCCESS, "the first execution outside a capture");
    CHECK(cudaStreamSynchronize(g_stream) == cudaSuccess, "synchronize");
    CHECK(cudaStreamBeginCapture(g_stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess,
          "begin capture");
    CHECK(bwd_filter() == CUDNN_STATUS_SUCCESS, "a second execution inside a capture");
    CHECK(cudaStreamEndCapture(g_stream, &graph) == cudaSuccess, "end capture");
    cudaGraphDestroy(graph);
}

/* TRUE_HALF (HALF data, HALF compute) accumulates in FP16: six equal terms 1 + 2^-10 (1x1
 * filter, six channels / filters / samples, so every direction sums six of them) give
 * 6.00390625 whatever the order, where an FP32 accumulator gives 6.0078125. */
static void test_true_half(cudnnHandle_t h)
{
    const Geom g = { 6, 6, 1, 1, 6, 1, 1, 0, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION };
    const float v = 1.0f + 0x1p-10f, one = 1.0f, zero = 0.0f;
    Dev pv(36 * 2), p1(36 * 2), out(36 * 2);
    put(pv, std::vector<float>(36, v), F16);
    put(p1, std::vector<float>(36, 1.0f), F16);
    for (cudnnDataType_t compute : { CUDNN_DATA_HALF, CUDNN_DATA_FLOAT }) {
        const float want = compute == CUDNN_DATA_HALF ? 6.00390625f : 6.0078125f;
        Descs d(g, F16, compute, CUDNN_TENSOR_OP_MATH);
        CHECK(cudnnConvolutionForward(h, &one, d.x, pv.p, d.w, p1.p, d.conv,
                                      CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero,
                                      d.y, out.p) == CUDNN_STATUS_SUCCESS,
              "forward");
        CHECK(get(out, 36, F16) == std::vector<float>(36, want), "forward, compute %d",
              (int)compute);
        CHECK(cudnnConvolutionBackwardData(h, &one, d.w, p1.p, d.y, pv.p, d.conv,
                                           CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, nullptr, 0, &zero,
                                           d.x, out.p) == CUDNN_STATUS_SUCCESS,
              "backward data");
        CHECK(get(out, 36, F16) == std::vector<float>(36, want), "backward data, compute %d",
              (int)compute);
        CHECK(cudnnConvolutionBackwardFilter(h, &one, d.x, pv.p, d.y, p1.p, d.conv,
                                             CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, nullptr, 0,
                                             &zero, d.w, out.p) == CUDNN_STATUS_SUCCESS,
              "backward filter");
        CHECK(get(out, 36, F16) == std::vector<float>(36, want), "backward filter, compute %d",
              (int)compute);
    }
}

/* cudnnConvolutionBiasActivationForward: sum + bias rounded once (FP16: 6 * (1 + 2^-10) =
 * 6.005859375 plus a bias of -2^-9 is exactly 6.00390625; rounding the sum first gives the tie's
 * even 6.0078125, and 6.0078125 - 2^-9 rounds back to 6.0078125), z read only when alpha2 != 0,
 * ReLU, and the
 * documented refusals: IDENTITY only with IMPLICIT_PRECOMP_GEMM, RELU or IDENTITY only, a
 * 1 x K x 1 x 1 bias in y's type, z with y's descriptor. */
static void test_bias_activation(cudnnHandle_t h)
{
    const Geom g = { 1, 6, 1, 1, 2, 1, 1, 0, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION };
    const float v = 1.0f + 0x1p-10f, one = 1.0f, zero = 0.0f, two = 2.0f;
    Descs d(g, F16, CUDNN_DATA_FLOAT, CUDNN_TENSOR_OP_MATH);
    Dev x(6 * 2), w(12 * 2), b(2 * 2), y(2 * 2), z(2 * 2), ws(4096);
    put(x, std::vector<float>(6, v), F16);
    put(w, { 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1 }, F16);
    put(b, { -0x1p-9f, 0x1p-9f }, F16);
    put(y, { NAN, NAN }, F16); /* z = y with alpha2 0: not read */
    put(z, { 1.0f, 1.0f }, F16);
    cudnnTensorDescriptor_t bd = nullptr, bad = nullptr;
    cudnnActivationDescriptor_t id = nullptr, relu = nullptr, sig = nullptr;
    CHECK(cudnnCreateTensorDescriptor(&bd) == CUDNN_STATUS_SUCCESS &&
              cudnnCreateTensorDescriptor(&bad) == CUDNN_STATUS_SUCCESS &&
              cudnnCreateActivationDescriptor(&id) == CUDNN_STATUS_SUCCESS &&
              cudnnCreateActivationDescriptor(&relu) == CUDNN_STATUS_SUCCESS &&
              cudnnCreateActivationDescriptor(&sig) == CUDNN_STATUS_SUCCESS,
          "create bias/activation descriptors");
    CHECK(cudnnSetTensor4dDescriptor(bd, CUDNN_TENSOR_NCHW, CUDNN_DATA_HALF, 1, 2, 1, 1) ==
                  CUDNN_STATUS_SUCCESS &&
              cudnnSetActivationDescriptor(id, CUDNN_ACTIVATION_IDENTITY, CUDNN_PROPAGATE_NAN,
                                           0.0) == CUDNN_STATUS_SUCCESS &&
              cudnnSetActivationDescriptor(relu, CUDNN_ACTIVATION_RELU, CUDNN_PROPAGATE_NAN,
                                           0.0) == CUDNN_STATUS_SUCCESS &&
              cudnnSetActivationDescriptor(sig, CUDNN_ACTIVATION_SIGMOID, CUDNN_PROPAGATE_NAN,
                                           0.0) == CUDNN_STATUS_SUCCESS,
          "set bias/activation descriptors");
    const cudnnConvolutionFwdAlgo_t PRE = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                                    IG = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    size_t need = 0;
    CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y, PRE, &need) ==
              CUDNN_STATUS_SUCCESS && need <= ws.bytes,
          "IMPLICIT_PRECOMP_GEMM workspace");
    const auto fused = [&](cudnnConvolutionFwdAlgo_t algo, const float *a2,
                           cudnnTensorDescriptor_t zd, const void *zp,
                           cudnnTensorDescriptor_t bdesc, cudnnActivationDescriptor_t act) {
        return cudnnConvolutionBiasActivationForward(h, &one, d.x, x.p, d.w, w.p, d.conv, algo,
                                                     ws.p, ws.bytes, a2, zd, zp, bdesc, b.p, act,
                                                     d.y, y.p);
    };
    CHECK(fused(PRE, &zero, d.y, y.p, bd, id) == CUDNN_STATUS_SUCCESS, "identity, z = y");
    const std::vector<float> got = get(y, 2, F16);
    CHECK(got[0] == 6.00390625f && got[1] == -6.00390625f,
          "sum + bias rounded once: %.9g %.9g (twice: 6.0078125 - 2^-9 -> 6.0078125)",
          (double)got[0], (double)got[1]);
    CHECK(fused(PRE, &two, d.y, z.p, bd, id) == CUDNN_STATUS_SUCCESS, "alpha2 2, z apart");
    CHECK(get(y, 2, F16) == std::vector<float>({ 8.0f, -4.00390625f }), "+ alpha2 * z");
    CHECK(fused(IG, &zero, d.y, y.p, bd, relu) == CUDNN_STATUS_SUCCESS, "ReLU, IMPLICIT_GEMM");
    CHECK(get(y, 2, F16) == std::vector<float>({ 6.00390625f, 0.0f }), "ReLU");
    CHECK(fused(IG, &zero, d.y, y.p, bd, id) == CUDNN_STATUS_NOT_SUPPORTED,
          "IDENTITY needs IMPLICIT_PRECOMP_GEMM");
    CHECK(fused(PRE, &zero, d.y, y.p, bd, sig) == CUDNN_STATUS_NOT_SUPPORTED,
          "only RELU and IDENTITY");
    CHECK(cudnnSetTensor4dDescriptor(bad, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 2, 1, 1) ==
              CUDNN_STATUS_SUCCESS,
          "FP32 bias descriptor");
    CHECK(fused(PRE, &zero, d.y, y.p, bad, id) == CUDNN_STATUS_NOT_SUPPORTED,
          "an FP32 bias with FP16 y");
    CHECK(cudnnSetTensor4dDescriptor(bad, CUDNN_TENSOR_NCHW, CUDNN_DATA_HALF, 1, 1, 1, 2) ==
              CUDNN_STATUS_SUCCESS,
          "1x1x1x2 bias descriptor");
    CHECK(fused(PRE, &zero, d.y, y.p, bad, id) == CUDNN_STATUS_BAD_PARAM, "a bias not 1xKx1x1");
    CHECK(fused(PRE, &zero, d.x, y.p, bd, id) == CUDNN_STATUS_BAD_PARAM, "z not shaped as y");
    cudnnDestroyActivationDescriptor(sig);
    cudnnDestroyActivationDescriptor(relu);
    cudnnDestroyActivationDescriptor(id);
    cudnnDestroyTensorDescriptor(bad);
    cudnnDestroyTensorDescriptor(bd);
}

static void test_cudnn_bad_params(cudnnHandle_t h)
{
    CHECK(cudnnGetVersion() == CUDNN_VERSION, "cudnnGetVersion %zu", cudnnGetVersion());
    CHECK(strcmp(cudnnGetErrorString(CUDNN_STATUS_BAD_PARAM), "CUDNN_STATUS_BAD_PARAM") == 0 &&
              strcmp(cudnnGetErrorString(CUDNN_STATUS_NOT_SUPPORTED),
                     "CUDNN_STATUS_NOT_SUPPORTED") == 0,
          "error strings");

    const Geom g = { 2, 3, 5, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION };
    Descs d(g, F32, CUDNN_DATA_FLOAT, CUDNN_FMA_MATH);
    Dev x(g.xn() * 4), w(g.wn() * 4), y(g.yn() * 4), small(16);
    float host_buf[16] = { 0 };
    const float one = 1.0f, zero = 0.0f;
    const cudnnConvolutionFwdAlgo_t IG = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    const auto fwd = [&](cudnnTensorDescriptor_t xd, const void *xp, cudnnFilterDescriptor_t wd,
                         cudnnConvolutionDescriptor_t cd, cudnnConvolutionFwdAlgo_t algo,
                         void *ws, size_t wsb, cudnnTensorDescriptor_t yd, void *yp) {
        return cudnnConvolutionForward(h, &one, xd, xp, wd, w.p, cd, algo, ws, wsb, &zero, yd,
                                       yp);
    };
    CHECK(fwd(d.x, x.p, d.w, d.conv, IG, nullptr, 0, d.y, y.p) == CUDNN_STATUS_SUCCESS,
          "baseline");

    cudnnTensorDescriptor_t t = nullptr, t2 = nullptr;
    cudnnFilterDescriptor_t f = nullptr;
    cudnnConvolutionDescriptor_t c = nullptr;
    CHECK(cudnnCreateTensorDescriptor(&t) == CUDNN_STATUS_SUCCESS &&
              cudnnCreateTensorDescriptor(&t2) == CUDNN_STATUS_SUCCESS &&
              cudnnCreateFilterDescriptor(&f) == CUDNN_STATUS_SUCCESS &&
              cudnnCreateConvolutionDescriptor(&c) == CUDNN_STATUS_SUCCESS,
          "create");
    CHECK(fwd(t, x.p, d.w, d.conv, IG, nullptr, 0, d.y, y.p) == CUDNN_STATUS_BAD_PARAM,
          "unset tensor descriptor");
    CHECK(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 2, 3, 5, 6) ==
              CUDNN_STATUS_NOT_SUPPORTED,
          "NHWC (emulation: NCHW only)");
    CHECK(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, -3, 5, 6) ==
              CUDNN_STATUS_BAD_PARAM,
          "negative dimension");
    CHECK(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NCHW, (cudnnDataType_t)99, 2, 3, 5, 6) ==
              CUDNN_STATUS_BAD_PARAM,
          "bad data type");
    CHECK(cudnnSetFilter4dDescriptor(f, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 4, 3, 0, 3) ==
              CUDNN_STATUS_BAD_PARAM,
          "zero filter dimension");
    CHECK(cudnnSetConvolution2dDescriptor(c, 1, 1, 0, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                          CUDNN_DATA_FLOAT) == CUDNN_STATUS_BAD_PARAM,
          "stride 0");
    CHECK(cudnnSetConvolution2dDescriptor(c, -1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                          CUDNN_DATA_FLOAT) == CUDNN_STATUS_BAD_PARAM,
          "negative pad");
    CHECK(cudnnSetConvolution2dDescriptor(c, 1, 1, 1, 1, 0, 1, CUDNN_CROSS_CORRELATION,
                                          CUDNN_DATA_FLOAT) == CUDNN_STATUS_BAD_PARAM,
          "dilation 0");
    CHECK(cudnnSetConvolution2dDescriptor(c, 1, 1, 1, 1, 1, 1, (cudnnConvolutionMode_t)5,
                                          CUDNN_DATA_FLOAT) == CUDNN_STATUS_BAD_PARAM,
          "bad mode");
    CHECK(cudnnSetConvolutionMathType(c, (cudnnMathType_t)9) == CUDNN_STATUS_BAD_PARAM,
          "bad math type");

    /* Inconsistent descriptors. */
    CHECK(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 2, 5, 6) ==
              CUDNN_STATUS_SUCCESS,
          "set x with 2 channels");
    CHECK(fwd(t, x.p, d.w, d.conv, IG, nullptr, 0, d.y, y.p) == CUDNN_STATUS_BAD_PARAM,
          "x channels != w channels");
    int returned = 0;
    cudnnConvolutionFwdAlgoPerf_t perf[8];
    CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, t, d.w, d.conv, d.y, 8, &returned, perf) ==
              CUDNN_STATUS_BAD_PARAM,
          "heuristics validate too");
    CHECK(cudnnSetTensor4dDescriptor(t2, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 4, 4, 6) ==
              CUDNN_STATUS_SUCCESS,
          "set y with a wrong height");
    CHECK(fwd(d.x, x.p, d.w, d.conv, IG, nullptr, 0, t2, y.p) == CUDNN_STATUS_NOT_SUPPORTED,
          "y spatial size != the forward output");
    CHECK(cudnnSetTensor4dDescriptor(t2, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 5, 5, 6) ==
              CUDNN_STATUS_SUCCESS,
          "set y with 5 channels");
    CHECK(fwd(d.x, x.p, d.w, d.conv, IG, nullptr, 0, t2, y.p) == CUDNN_STATUS_BAD_PARAM,
          "y channels != w's K");
    CHECK(cudnnSetTensor4dDescriptor(t2, CUDNN_TENSOR_NCHW, CUDNN_DATA_HALF, 2, 4, 5, 6) ==
              CUDNN_STATUS_SUCCESS,
          "set y as HALF");
    CHECK(fwd(d.x, x.p, d.w, d.conv, IG, nullptr, 0, t2, y.p) == CUDNN_STATUS_BAD_PARAM,
          "data types differ");
    CHECK(cudnnSetFilter4dDescriptor(f, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 4, 3, 9, 3) ==
              CUDNN_STATUS_SUCCESS,
          "set a filter taller than the padded input");
    CHECK(fwd(d.x, x.p, f, d.conv, IG, nullptr, 0, d.y, y.p) == CUDNN_STATUS_BAD_PARAM,
          "filter larger than the padded input");

    /* Compute type configurations. */
    {
        Descs hh(g, F32, CUDNN_DATA_HALF, CUDNN_FMA_MATH);
        CHECK(fwd(hh.x, x.p, hh.w, hh.conv, IG, nullptr, 0, hh.y, y.p) ==
                  CUDNN_STATUS_NOT_SUPPORTED,
              "FLOAT data with HALF compute");
        Descs bh(g, BF16, CUDNN_DATA_HALF, CUDNN_TENSOR_OP_MATH);
        CHECK(fwd(bh.x, x.p, bh.w, bh.conv, IG, nullptr, 0, bh.y, y.p) ==
                  CUDNN_STATUS_NOT_SUPPORTED,
              "BFLOAT16 data with HALF compute");
    }

    /* Algorithms, pointers, workspace, scalars. */
    CHECK(fwd(d.x, x.p, d.w, d.conv, CUDNN_CONVOLUTION_FWD_ALGO_DIRECT, nullptr, 0, d.y, y.p) ==
              CUDNN_STATUS_NOT_SUPPORTED,
          "DIRECT does not apply");
    CHECK(fwd(d.x, x.p, d.w, d.conv, (cudnnConvolutionFwdAlgo_t)42, nullptr, 0, d.y, y.p) ==
              CUDNN_STATUS_BAD_PARAM,
          "algorithm out of range");
    size_t need = 0;
    CHECK(cudnnGetConvolutionForwardWorkspaceSize(
              h, d.x, d.w, d.conv, d.y, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
              &need) == CUDNN_STATUS_SUCCESS &&
              need > 0,
          "PRECOMP_GEMM needs a workspace (%zu)", need);
    CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y,
                                                  CUDNN_CONVOLUTION_FWD_ALGO_DIRECT,
                                                  &need) == CUDNN_STATUS_NOT_SUPPORTED,
          "no workspace size for an algorithm that does not apply");
    CHECK(fwd(d.x, x.p, d.w, d.conv, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, nullptr, 0,
              d.y, y.p) == CUDNN_STATUS_BAD_PARAM,
          "no workspace");
    CHECK(fwd(d.x, x.p, d.w, d.conv, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, host_buf,
              sizeof host_buf, d.y, y.p) == CUDNN_STATUS_BAD_PARAM,
          "host workspace");
    CHECK(fwd(d.x, host_buf, d.w, d.conv, IG, nullptr, 0, d.y, y.p) == CUDNN_STATUS_BAD_PARAM,
          "host pointer for x");
    CHECK(fwd(d.x, small.p, d.w, d.conv, IG, nullptr, 0, d.y, y.p) == CUDNN_STATUS_BAD_PARAM,
          "x buffer too small");
    {
        Dev big((g.xn() + g.yn()) * 4);
        CHECK(fwd(d.x, big.p, d.w, d.conv, IG, nullptr, 0, d.y, (char *)big.p + 64) ==
                  CUDNN_STATUS_BAD_PARAM,
              "y overlapping x");
        CHECK(fwd(d.x, big.p, d.w, d.conv, IG, nullptr, 0, d.y, (char *)big.p + g.xn() * 4) ==
                  CUDNN_STATUS_SUCCESS,
              "y right after x in one allocation");
        CHECK(fwd(d.x, x.p, d.w, d.conv, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                  (char *)big.p + g.xn() * 4, g.yn() * 4, d.y, y.p) == CUDNN_STATUS_SUCCESS,
              "workspace inside another allocation");
        CHECK(fwd(d.x, x.p, d.w, d.conv, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, y.p,
                  g.yn() * 4, d.y, y.p) == CUDNN_STATUS_BAD_PARAM,
              "workspace overlapping y");
    }
    CHECK(cudnnConvolutionForward(h, nullptr, d.x, x.p, d.w, w.p, d.conv, IG, nullptr, 0, &zero,
                                  d.y, y.p) == CUDNN_STATUS_BAD_PARAM,
          "NULL alpha");
    CHECK(cudnnConvolutionForward(nullptr, &one, d.x, x.p, d.w, w.p, d.conv, IG, nullptr, 0,
                                  &zero, d.y, y.p) == CUDNN_STATUS_BAD_PARAM,
          "NULL handle");

    CHECK(cudnnDestroyTensorDescriptor(t) == CUDNN_STATUS_SUCCESS &&
              cudnnDestroyTensorDescriptor(t2) == CUDNN_STATUS_SUCCESS &&
              cudnnDestroyFilterDescriptor(f) == CUDNN_STATUS_SUCCESS &&
              cudnnDestroyConvolutionDescriptor(c) == CUDNN_STATUS_SUCCESS,
          "destroy");
    CHECK(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 1, 1) ==
              CUDNN_STATUS_BAD_PARAM,
          "destroyed descriptor");
    CHECK(cudnnDestroyTensorDescriptor(nullptr) == CUDNN_STATUS_SUCCESS, "destroy NULL");
}

static void test_cudnn(void)
{
    cudnnHandle_t h = nullptr;
    CHECK(cudnnCreate(&h) == CUDNN_STATUS_SUCCESS, "cudnnCreate");
    CHECK(cudnnSetStream(h, g_stream) == CUDNN_STATUS_SUCCESS, "cudnnSetStream");

    /* The backend's convolutions in every configuration it uses, plus TRUE_HALF: 3x3 with
     * padding 1, 5x5 with padding 2, 3x3 at stride 2 with padding 1, 1x1 at stride 2 without
     * padding, a single input channel with padding larger than the filter; then a strided,
     * dilated, flipped one with uneven padding, and 8 -> 8 channels. */
    const Geom same = { 2, 3, 5, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION };
    const Geom five = { 2, 3, 7, 6, 2, 5, 5, 2, 2, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION };
    const Geom s2 = { 2, 2, 7, 8, 3, 3, 3, 1, 1, 2, 2, 1, 1, CUDNN_CROSS_CORRELATION };
    const Geom pw = { 2, 4, 7, 6, 3, 1, 1, 0, 0, 2, 2, 1, 1, CUDNN_CROSS_CORRELATION };
    const Geom wide = { 1, 1, 3, 4, 2, 2, 2, 2, 2, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION };
    const Geom odd = { 2, 2, 7, 6, 3, 3, 2, 2, 1, 2, 1, 2, 2, CUDNN_CONVOLUTION };
    /* C and K multiples of 8: the FP16/BF16 results report tensor-op math. */
    const Geom eight = { 1, 8, 4, 5, 8, 3, 3, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION };
    for (const Geom *g : { &same, &five, &s2, &pw, &wide, &odd, &eight }) {
        conv_case(h, *g, F32, CUDNN_DATA_FLOAT, CUDNN_FMA_MATH);
        conv_case(h, *g, F32, CUDNN_DATA_FLOAT, CUDNN_DEFAULT_MATH);
        conv_case(h, *g, F16, CUDNN_DATA_FLOAT, CUDNN_TENSOR_OP_MATH);
        conv_case(h, *g, BF16, CUDNN_DATA_FLOAT, CUDNN_TENSOR_OP_MATH);
        conv_case(h, *g, F16, CUDNN_DATA_HALF, CUDNN_DEFAULT_MATH);
    }
    test_heuristics(h);
    test_applicability(h);
    test_conv_tf32(h);
    test_true_half(h);
    test_bias_activation(h);
    test_cudnn_bad_params(h);

    CHECK(cudnnDestroy(h) == CUDNN_STATUS_SUCCESS, "cudnnDestroy");
    CHECK(cudnnSetStream(h, g_stream) == CUDNN_STATUS_BAD_PARAM, "destroyed handle");
}

/* ---- cuBLASLt FP8 ---- */

struct LtCall {
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    cudaDataType at = CUDA_R_8F_E4M3, bt = CUDA_R_8F_E4M3;
    uint64_t m = 16, n = 32, k = 48;
    const float *a_scale = nullptr, *b_scale = nullptr;
};

/* D (col-major m x n, FP32) = a_scale b_scale op(A) op(B) with A stored k x m, B k x n. */
static cublasStatus_t lt_call(cublasLtHandle_t h, const LtCall &c, const void *A, const void *B,
                              void *D, cudaStream_t stream)
{
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, ld;
    cublasLtMatmulPreference_t pref;
    CHECK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS,
          "MatmulDescCreate");
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &c.ta, sizeof c.ta);
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &c.tb, sizeof c.tb);
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &c.a_scale,
                                   sizeof c.a_scale);
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &c.b_scale,
                                   sizeof c.b_scale);
    cublasLtMatrixLayoutCreate(&la, c.at, c.k, c.m, (int64_t)c.k);
    cublasLtMatrixLayoutCreate(&lb, c.bt, c.k, c.n, (int64_t)c.k);
    cublasLtMatrixLayoutCreate(&ld, CUDA_R_32F, c.m, c.n, (int64_t)c.m);
    cublasLtMatmulPreferenceCreate(&pref);
    cublasLtMatmulHeuristicResult_t r;
    int found = 0;
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(h, op, la, lb, ld, ld, pref, 1, &r, &found);
    if (st == CUBLAS_STATUS_SUCCESS) {
        const float one = 1.0f, zero = 0.0f;
        st = cublasLtMatmul(h, op, &one, A, la, B, lb, &zero, D, ld, D, ld, &r.algo, nullptr, 0,
                            stream);
    }
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(ld);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatmulDescDestroy(op);
    return st;
}

static uint8_t fp8_code(float v, cudaDataType t)
{
    return (uint8_t)__nv_cvt_float_to_fp8(v, __NV_SATFINITE,
                                          t == CUDA_R_8F_E4M3 ? __NV_E4M3 : __NV_E5M2);
}

static void test_cublaslt(void)
{
    cublasLtHandle_t h;
    CHECK(cublasLtCreate(&h) == CUBLAS_STATUS_SUCCESS, "cublasLtCreate");
    const uint64_t m = 16, n = 32, k = 48;
    /* Codes of small dyadic values (exact in FP8 and their sums exact in FP32). */
    std::vector<uint8_t> a(k * m), b(k * n);
    std::vector<float> av(k * m), bv(k * n);
    for (size_t i = 0; i < a.size(); i++) {
        av[i] = (float)((int)(i * 7 % 13) - 6) * 0.25f;
        a[i] = fp8_code(av[i], CUDA_R_8F_E4M3);
    }
    for (size_t i = 0; i < b.size(); i++) {
        bv[i] = (float)((int)(i * 5 % 11) - 5) * 0.5f;
        b[i] = fp8_code(bv[i], CUDA_R_8F_E5M2);
    }
    Dev dA(a.size()), dB(b.size()), dD(m * n * 4), dS(8);
    upload(dA.p, a.data(), a.size());
    upload(dB.p, b.data(), b.size());
    const float scales[2] = { 0.5f, 3.0f };
    upload(dS.p, scales, sizeof scales);
    LtCall c;
    c.bt = CUDA_R_8F_E5M2;
    c.a_scale = (const float *)dS.p;
    c.b_scale = (const float *)dS.p + 1;
    CHECK(lt_call(h, c, dA.p, dB.p, dD.p, g_stream) == CUBLAS_STATUS_SUCCESS,
          "cublasLtMatmul E4M3 x E5M2 with scale pointers");
    std::vector<float> d(m * n);
    download(d.data(), dD.p, d.size() * 4);
    int bad = 0;
    for (uint64_t j = 0; j < n; j++)
        for (uint64_t i = 0; i < m; i++) {
            float acc = 0.0f;
            for (uint64_t r = 0; r < k; r++)
                acc += av[i * k + r] * bv[j * k + r];
            bad += d[j * m + i] != acc * 1.5f;
        }
    CHECK(bad == 0, "cublasLtMatmul FP8: %d of %zu elements differ from scale_a scale_b A^T B",
          bad, d.size());
    /* The FP8 requirements. */
    LtCall nn = c;
    nn.ta = CUBLAS_OP_N;
    CHECK(lt_call(h, nn, dA.p, dB.p, dD.p, g_stream) == CUBLAS_STATUS_NOT_SUPPORTED,
          "FP8 with A not transposed (not TN) is NOT_SUPPORTED");
    LtCall e5 = c;
    e5.at = CUDA_R_8F_E5M2;
    CHECK(lt_call(h, e5, dA.p, dB.p, dD.p, g_stream) == CUBLAS_STATUS_NOT_SUPPORTED,
          "FP8 E5M2 x E5M2 is NOT_SUPPORTED");
    LtCall odd = c;
    odd.k = 40;
    CHECK(lt_call(h, odd, dA.p, dB.p, dD.p, g_stream) == CUBLAS_STATUS_NOT_SUPPORTED,
          "FP8 with k = 40 (not a multiple of 16) is NOT_SUPPORTED");
    CHECK(lt_call(h, c, (const char *)dA.p + 1, dB.p, dD.p, g_stream) == CUBLAS_STATUS_NOT_SUPPORTED,
          "FP8 with A not 16-byte aligned is NOT_SUPPORTED");
    LtCall host_scale = c;
    host_scale.a_scale = scales;
    CHECK(lt_call(h, host_scale, dA.p, dB.p, dD.p, g_stream) == CUBLAS_STATUS_INVALID_VALUE,
          "a host scale pointer is INVALID_VALUE");
    /* Captured into a graph: the replay reads the scale at replay time (a device pointer). */
    cudaGraph_t g;
    cudaGraphExec_t ge;
    CHECK(cudaStreamBeginCapture(g_stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess,
          "begin capture");
    const cublasStatus_t cst = lt_call(h, c, dA.p, dB.p, dD.p, g_stream);
    CHECK(cudaStreamEndCapture(g_stream, &g) == cudaSuccess && cst == CUBLAS_STATUS_SUCCESS,
          "cublasLtMatmul captured");
    CHECK(cudaGraphInstantiate(&ge, g, 0) == cudaSuccess, "instantiate");
    const float doubled[2] = { 1.0f, 3.0f };
    upload(dS.p, doubled, sizeof doubled);
    CHECK(cudaGraphLaunch(ge, g_stream) == cudaSuccess &&
              cudaStreamSynchronize(g_stream) == cudaSuccess, "replay");
    std::vector<float> d2(m * n);
    download(d2.data(), dD.p, d2.size() * 4);
    int bad2 = 0;
    for (size_t i = 0; i < d.size(); i++)
        bad2 += d2[i] != 2.0f * d[i];
    CHECK(bad2 == 0, "replay with the scale changed on the device: %d elements differ", bad2);
    cudaGraphExecDestroy(ge);
    cudaGraphDestroy(g);
    CHECK(cublasLtDestroy(h) == CUBLAS_STATUS_SUCCESS, "cublasLtDestroy");
    CHECK(cublasLtDestroy(h) == CUBLAS_STATUS_NOT_INITIALIZED, "a destroyed handle is refused");
}

int main(void)
{
    CHECK(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking) == cudaSuccess,
          "stream");
    test_lowp();
    test_cublas();
    test_cublaslt();
    test_cudnn();
    cudaStreamDestroy(g_stream);
    return check_summary();
}
