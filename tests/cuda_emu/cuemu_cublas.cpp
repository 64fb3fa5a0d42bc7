/* CPU emulation of the CUDA stack: a fake cuBLAS, replacing libcublas for the functions the CUDA
 * backend calls (kernels/cuda_backend.cu, kernels/cuda_linear.cu): handle lifetime and settings,
 * version and status strings, and cublasGemmEx. The definitions carry the real headers'
 * signatures and C linkage (the header's macros map cublasCreate etc. to their _v2 names).
 *
 * Semantics follow the cuBLAS documentation:
 *  - GemmEx: column-major C = alpha * op(A) * op(B) + beta * C, op from transa / transb (N, T;
 *    C is T for real types), alpha and beta read from host memory at the call (pointer mode
 *    host; 32F compute types take float scalars). The argument checks are cuBLAS's (m, n, k >= 0;
 *    lda >= max(1, rows of A as stored), ldb likewise, ldc >= max(1, m)), and the type
 *    combinations are the cublasGemmEx table for the FP32 compute types (32F, 32F_PEDANTIC,
 *    32F_FAST_16F / _16BF / _TF32, 32F_EMULATED_16BFX9) with real FP16 / BF16 / FP32 data;
 *    anything else gives CUBLAS_STATUS_NOT_SUPPORTED (the 16F, 32I and 64F compute types and
 *    complex or integer data are real cuBLAS features this emulation does not implement).
 *  - Numerics: inputs widen exactly to FP32, products accumulate in FP32 (ascending k), alpha
 *    and beta are applied in FP32, the result is rounded once to Ctype (nearest even; FP16
 *    keeps subnormals, overflows to inf). FP32 inputs are rounded to TF32 (nearest even) under
 *    CUBLAS_COMPUTE_32F_FAST_TF32, or CUBLAS_COMPUTE_32F with the handle's math mode
 *    CUBLAS_TF32_TENSOR_OP_MATH; the other "fast" modes take the down-conversion they allow at
 *    its most lossy: FP16 for CUBLAS_COMPUTE_32F_FAST_16F (and CUBLAS_COMPUTE_32F under the
 *    deprecated CUBLAS_TENSOR_OP_MATH, documented as the same), BF16 for _FAST_16BF. Pedantic
 *    compute types and math modes never round the inputs. BLAS conventions: beta == 0 means C
 *    is not read (it may hold NaN); alpha == 0 or k == 0 means A and B are not read.
 *
 * Emulation specifics (checks a real GPU would punish with a fault or garbage rather than a
 * status): the A, B, C ranges the call touches must be live device memory (cuemu_is_device),
 * else CUBLAS_STATUS_INVALID_VALUE; C may not overlap A or B (INVALID_VALUE); alpha / beta must
 * not be device pointers (INVALID_VALUE: host pointer mode would dereference them on the host);
 * a user workspace freed after cublasSetWorkspace fails the next GEMM with
 * CUBLAS_STATUS_EXECUTION_FAILED; creating or destroying a handle while the calling thread
 * captures a graph fails (the real calls allocate / free device memory and synchronize).
 * Handles are tracked: a destroyed or unknown handle gives CUBLAS_STATUS_NOT_INITIALIZED, and
 * destroying one twice aborts with a message (a double free in the real library).
 *
 * Device work goes through cuemu_enqueue with everything captured by value at the call, so a
 * GEMM captured into a CUDA graph replays with the arguments of the captured call. */
#include <cublas_v2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <mutex>
#include <unordered_set>
#include <vector>

#include "cuemu_internal.h"
#include "cuemu_lowp.h"

/* The handle behind cublasHandle_t (an incomplete type in the header). */
struct cublasContext {
    cudaStream_t stream;
    cublasMath_t math;
    void *workspace; /* user workspace (cublasSetWorkspace), NULL: the library's own pool */
    size_t workspace_bytes;
};

namespace {

/* ---- handle registry ---- */

std::mutex g_lock;
std::unordered_set<const cublasContext *> g_handles;

bool handle_live(const cublasContext *h)
{
    std::lock_guard<std::mutex> guard(g_lock);
    return h && g_handles.count(h) != 0;
}

/* ---- element types ---- */

/* How FP32 operands are narrowed before the multiply. */
enum class Narrow { NONE, TF32, F16, BF16 };

bool elem_of(cudaDataType t, Elem *e)
{
    switch (t) {
    case CUDA_R_32F: *e = Elem::F32; return true;
    case CUDA_R_16F: *e = Elem::F16; return true;
    case CUDA_R_16BF: *e = Elem::BF16; return true;
    default: return false;
    }
}

float narrow(float v, Narrow n)
{
    switch (n) {
    case Narrow::TF32: return lib_tf32(v);
    case Narrow::F16: return round_f16(v);
    case Narrow::BF16: return round_bf16(v);
    default: return v;
    }
}

/* The cublasGemmEx type table for the FP32 compute types (scale type CUDA_R_32F), restricted to
 * the real FP32 / FP16 / BF16 types. Sets how FP32 operands are narrowed; false: unsupported. */
bool gemm_types_ok(cublasComputeType_t compute, cublasMath_t math, Elem ab, Elem c,
                   Narrow *nar)
{
    *nar = Narrow::NONE;
    switch (compute) {
    case CUBLAS_COMPUTE_32F:
    case CUBLAS_COMPUTE_32F_PEDANTIC:
        /* 16F x 16F -> 16F or 32F; 16BF x 16BF -> 16BF or 32F; 32F x 32F -> 32F */
        if (!(c == ab || c == Elem::F32))
            return false;
        if (compute == CUBLAS_COMPUTE_32F && ab == Elem::F32) {
            const int base = (int)math & 0xF;
            if (base == CUBLAS_TF32_TENSOR_OP_MATH)
                *nar = Narrow::TF32;
            else if (base == CUBLAS_TENSOR_OP_MATH) /* deprecated: same as _FAST_16F */
                *nar = Narrow::F16;
        }
        return true;
    case CUBLAS_COMPUTE_32F_FAST_16F:
    case CUBLAS_COMPUTE_32F_FAST_16BF:
    case CUBLAS_COMPUTE_32F_FAST_TF32:
    case CUBLAS_COMPUTE_32F_EMULATED_16BFX9: /* BF16x9: FP32 accuracy, emulated as FP32 */
        if (ab != Elem::F32 || c != Elem::F32)
            return false;
        if (compute == CUBLAS_COMPUTE_32F_FAST_16F)
            *nar = Narrow::F16;
        else if (compute == CUBLAS_COMPUTE_32F_FAST_16BF)
            *nar = Narrow::BF16;
        else if (compute == CUBLAS_COMPUTE_32F_FAST_TF32)
            *nar = Narrow::TF32;
        return true;
    default: return false;
    }
}

bool algo_valid(cublasGemmAlgo_t a)
{
    const int v = (int)a;
    return v == CUBLAS_GEMM_DEFAULT || (v >= CUBLAS_GEMM_ALGO0 && v <= CUBLAS_GEMM_ALGO23) ||
           (v >= CUBLAS_GEMM_DEFAULT_TENSOR_OP && v <= CUBLAS_GEMM_ALGO15_TENSOR_OP) ||
           v == CUBLAS_GEMM_AUTOTUNE;
}

/* Bytes spanned by a column-major rows x cols matrix with leading dimension ld (rows, cols > 0). */
size_t span_bytes(int rows, int cols, int ld, Elem e)
{
    return ((size_t)(cols - 1) * (size_t)ld + (size_t)rows) * elem_size(e);
}

bool overlap(const void *a, size_t an, const void *b, size_t bn)
{
    const uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    return an && bn && a0 < b0 + bn && b0 < a0 + an;
}

/* Everything a GEMM needs, by value (what the enqueued work captures). */
struct Gemm {
    bool ta, tb; /* op(A) = A^T, op(B) = B^T */
    int m, n, k;
    const void *A, *B;
    void *C;
    int lda, ldb, ldc;
    Elem ab, c;
    Narrow nar;
    float alpha, beta;
    bool read_ab; /* k > 0 and alpha != 0 */
};

/* The emulated kernel: op(A) and op(B) widened (and narrowed per the compute mode) into
 * contiguous rows, then one FP32 dot product per element of C. */
void gemm_run(const Gemm &g)
{
    std::vector<float> a, b; /* a[i * k + p] = op(A)(i, p); b[j * k + p] = op(B)(p, j) */
    if (g.read_ab) {
        a.resize((size_t)g.m * g.k);
        b.resize((size_t)g.n * g.k);
        for (int i = 0; i < g.m; i++)
            for (int p = 0; p < g.k; p++) {
                const size_t idx = g.ta ? (size_t)i * g.lda + p : (size_t)p * g.lda + i;
                a[(size_t)i * g.k + p] = narrow(load(g.A, idx, g.ab), g.nar);
            }
        for (int j = 0; j < g.n; j++)
            for (int p = 0; p < g.k; p++) {
                const size_t idx = g.tb ? (size_t)p * g.ldb + j : (size_t)j * g.ldb + p;
                b[(size_t)j * g.k + p] = narrow(load(g.B, idx, g.ab), g.nar);
            }
    }
    for (int j = 0; j < g.n; j++)
        for (int i = 0; i < g.m; i++) {
            float acc = 0.0f;
            if (g.read_ab) {
                const float *ar = &a[(size_t)i * g.k], *bc = &b[(size_t)j * g.k];
                for (int p = 0; p < g.k; p++)
                    acc += ar[p] * bc[p];
            }
            const size_t ci = (size_t)j * g.ldc + i;
            float v = g.read_ab ? g.alpha * acc : 0.0f;
            if (g.beta != 0.0f)
                v += g.beta * load(g.C, ci, g.c);
            store(g.C, ci, g.c, v);
        }
}

/* Reads a host scalar; false if it is NULL or device memory (pointer mode host). */
bool host_scalar(const void *p, float *out)
{
    if (!p || cuemu_is_device(p, sizeof(float)))
        return false;
    *out = *static_cast<const float *>(p);
    return true;
}

} // namespace

/* ---- helper functions ---- */

cublasStatus_t cublasCreate(cublasHandle_t *handle)
{
    if (!handle)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (cuemu_capturing()) /* the real one allocates device memory: illegal in capture */
        return CUBLAS_STATUS_NOT_INITIALIZED;
    cublasContext *h = new cublasContext{ nullptr, CUBLAS_DEFAULT_MATH, nullptr, 0 };
    {
        std::lock_guard<std::mutex> guard(g_lock);
        g_handles.insert(h);
    }
    *handle = h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle)
{
    if (!handle)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    {
        std::lock_guard<std::mutex> guard(g_lock);
        if (!g_handles.count(handle)) {
            fprintf(stderr, "cuemu cuBLAS: cublasDestroy of a handle that is not live (%p): "
                            "double destroy or a bad handle\n", (void *)handle);
            abort();
        }
        if (cuemu_capturing()) /* the real one synchronizes and frees: illegal in capture */
            return CUBLAS_STATUS_INTERNAL_ERROR;
        g_handles.erase(handle);
    }
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t streamId)
{
    if (!handle_live(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->stream = streamId;
    /* Documented: cublasSetStream resets the workspace to the library's default pool. */
    handle->workspace = nullptr;
    handle->workspace_bytes = 0;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode)
{
    if (!handle_live(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    const unsigned v = (unsigned)mode;
    const unsigned base = v & 0xFu;
    if ((v & ~0x1Fu) != 0 ||
        !(base == CUBLAS_DEFAULT_MATH || base == CUBLAS_TENSOR_OP_MATH ||
          base == CUBLAS_PEDANTIC_MATH || base == CUBLAS_TF32_TENSOR_OP_MATH ||
          base == CUBLAS_FP32_EMULATED_BF16X9_MATH || base == CUBLAS_FP64_EMULATED_FIXEDPOINT_MATH ||
          base == (CUBLAS_FP32_EMULATED_BF16X9_MATH | CUBLAS_FP64_EMULATED_FIXEDPOINT_MATH)))
        return CUBLAS_STATUS_INVALID_VALUE;
    handle->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void *workspace,
                                  size_t workspaceSizeInBytes)
{
    if (!handle_live(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (workspaceSizeInBytes) {
        /* Documented: the workspace must be aligned to at least 256 bytes. */
        if (!workspace || ((uintptr_t)workspace & 255u) != 0 ||
            !cuemu_is_device(workspace, workspaceSizeInBytes))
            return CUBLAS_STATUS_INVALID_VALUE;
    }
    /* cuBLAS's documentation (cublasSetWorkspace) recommends at least 32 MiB on Hopper (compute
     * capability 9.x; 4 MiB before): less is legal, but some kernels are then unavailable. */
    int dev = 0, major = 0;
    if (workspaceSizeInBytes && workspaceSizeInBytes < ((size_t)32 << 20) &&
        cudaGetDevice(&dev) == cudaSuccess &&
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
        major >= 9)
        fprintf(stderr, "cuemu cuBLAS: warning: cublasSetWorkspace of %zu bytes on compute "
                        "capability %d: cuBLAS recommends at least 32 MiB there\n",
                workspaceSizeInBytes, major);
    handle->workspace = workspaceSizeInBytes ? workspace : nullptr;
    handle->workspace_bytes = workspaceSizeInBytes;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetProperty(libraryPropertyType type, int *value)
{
    if (!value)
        return CUBLAS_STATUS_INVALID_VALUE;
    switch (type) {
    case MAJOR_VERSION: *value = CUBLAS_VER_MAJOR; return CUBLAS_STATUS_SUCCESS;
    case MINOR_VERSION: *value = CUBLAS_VER_MINOR; return CUBLAS_STATUS_SUCCESS;
    case PATCH_LEVEL: *value = CUBLAS_VER_PATCH; return CUBLAS_STATUS_SUCCESS;
    }
    return CUBLAS_STATUS_INVALID_VALUE;
}

const char *cublasGetStatusString(cublasStatus_t status)
{
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "the operation completed successfully";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "error detected trying to check the license";
    }
    return "unknown error";
}

/* ---- GEMM ---- */

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa,
                            cublasOperation_t transb, int m, int n, int k, const void *alpha,
                            const void *A, cudaDataType Atype, int lda, const void *B,
                            cudaDataType Btype, int ldb, const void *beta, void *C,
                            cudaDataType Ctype, int ldc, cublasComputeType_t computeType,
                            cublasGemmAlgo_t algo)
{
    if (!handle_live(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    const auto op_ok = [](cublasOperation_t o) {
        return o == CUBLAS_OP_N || o == CUBLAS_OP_T || o == CUBLAS_OP_C;
    };
    if (!op_ok(transa) || !op_ok(transb) || m < 0 || n < 0 || k < 0 || !algo_valid(algo))
        return CUBLAS_STATUS_INVALID_VALUE;
    const bool ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
    const int a_rows = ta ? k : m, a_cols = ta ? m : k; /* A as stored */
    const int b_rows = tb ? n : k, b_cols = tb ? k : n; /* B as stored */
    const auto max1 = [](int v) { return v > 1 ? v : 1; };
    if (lda < max1(a_rows) || ldb < max1(b_rows) || ldc < max1(m))
        return CUBLAS_STATUS_INVALID_VALUE;

    Elem ea, eb, ec;
    Narrow nar;
    if (!elem_of(Atype, &ea) || !elem_of(Btype, &eb) || !elem_of(Ctype, &ec) || ea != eb ||
        !gemm_types_ok(computeType, handle->math, ea, ec, &nar))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (m == 0 || n == 0)
        return CUBLAS_STATUS_SUCCESS; /* nothing to compute; nothing is read */

    Gemm g;
    if (!host_scalar(alpha, &g.alpha) || !host_scalar(beta, &g.beta))
        return CUBLAS_STATUS_INVALID_VALUE;
    g.ta = ta;
    g.tb = tb;
    g.m = m;
    g.n = n;
    g.k = k;
    g.A = A;
    g.B = B;
    g.C = C;
    g.lda = lda;
    g.ldb = ldb;
    g.ldc = ldc;
    g.ab = ea;
    g.c = ec;
    g.nar = nar;
    g.read_ab = k > 0 && g.alpha != 0.0f;

    const size_t c_bytes = span_bytes(m, n, ldc, ec);
    if (!C || !cuemu_is_device(C, c_bytes))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (g.read_ab) {
        const size_t a_bytes = span_bytes(a_rows, a_cols, lda, ea);
        const size_t b_bytes = span_bytes(b_rows, b_cols, ldb, eb);
        if (!A || !B || !cuemu_is_device(A, a_bytes) || !cuemu_is_device(B, b_bytes))
            return CUBLAS_STATUS_INVALID_VALUE;
        if (overlap(C, c_bytes, A, a_bytes) || overlap(C, c_bytes, B, b_bytes))
            return CUBLAS_STATUS_INVALID_VALUE; /* in-place GEMM: undefined on a GPU */
    }
    /* In capture without a user workspace: cuBLAS would take its workspace from the default
     * pool while capturing (before CUDA 12.2 a new allocation per capture, PyTorch #83461;
     * since, cudaMallocAsync into the graph, PyTorch #113994). The emulation is stricter than
     * the library here and refuses, invalidating the capture, so that the backend's
     * cublasSetWorkspace before any capture stays tested. */
    if (cuemu_capturing() && !handle->workspace) {
        cuemu_invalidate_capture();
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    /* A user workspace freed since cublasSetWorkspace: the kernels would fault on it. */
    if (handle->workspace && !cuemu_is_device(handle->workspace, handle->workspace_bytes))
        return CUBLAS_STATUS_EXECUTION_FAILED;

    if (cuemu_enqueue(handle->stream, [g] { gemm_run(g); }) != cudaSuccess)
        return CUBLAS_STATUS_EXECUTION_FAILED;
    return CUBLAS_STATUS_SUCCESS;
}
