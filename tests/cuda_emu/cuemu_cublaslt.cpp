/* CPU emulation of the CUDA stack: a fake cuBLASLt, replacing libcublasLt for the calls the CUDA
 * backend's FP8 GEMMs make (kernels/cuda_fp8_gemm.cu): handles, matmul descriptors, matrix
 * layouts, preferences, the heuristic query and cublasLtMatmul on FP8 operands. The definitions
 * carry the real header's signatures (cublasLt.h). The opaque descriptor structs of the header
 * hold this emulation's fields.
 *
 * Semantics follow the cuBLAS documentation (cublasLtMatmul, "FP8 requirements" and the
 * descriptor attributes in cublasLt.h):
 *  - D = alpha * scale_A * scale_B * (op(A) op(B)) + beta * C, column-major (CUBLASLT_ORDER_COL,
 *    the default), alpha and beta host floats (pointer mode host, the default), scale_A and
 *    scale_B read from the device pointers CUBLASLT_MATMUL_DESC_A/B_SCALE_POINTER (NULL: 1).
 *  - The FP8 requirements: compute type CUBLAS_COMPUTE_32F, scale type CUDA_R_32F, A transposed
 *    and B not (the "TN" format, the one Hopper runs), A and B of CUDA_R_8F_E4M3 / _E5M2 but not
 *    both E5M2, pointers and leading dimensions 16-byte aligned; this emulation reads "matrix
 *    dimensions must support 16-byte alignment" as m, n and k multiples of 16 (what Transformer
 *    Engine pads to). C and D: CUDA_R_32F (C the same layout as D); the FP16/BF16 and FP8 outputs,
 *    the bias and aux epilogues, D scaling and AMAX_D are real features not emulated here
 *    (CUBLAS_STATUS_NOT_SUPPORTED), as are batches and other orders. Anything outside the FP8
 *    requirements gives CUBLAS_STATUS_NOT_SUPPORTED; an invalid descriptor or value
 *    CUBLAS_STATUS_INVALID_VALUE; an unknown handle CUBLAS_STATUS_NOT_INITIALIZED.
 *  - Numerics: each FP8 code widened exactly (cuda_fp8.h's own conversion), products exact in
 *    FP32 (at most 4 x 4 significant bits), accumulated in FP32 in ascending k, then multiplied by
 *    alpha * scale_A * scale_B (one FP32 product, computed in that order) and, with beta != 0,
 *    plus beta * C. Hopper's FP8 tensor cores accumulate with fewer bits between promotions to
 *    FP32 (CUBLASLT_MATMUL_DESC_FAST_ACCUM off: promoted periodically); the real device's sums
 *    therefore differ from these in the last bits, within the op parity suite's limits.
 *  - The heuristic returns one algorithm needing no workspace. cublasLtMatmul runs on the given
 *    stream and is capturable (captured by value, replayed with the captured arguments).
 *
 * Emulation specifics (a real GPU would fault or compute garbage): A, B, C, D and the scale
 * pointers must lie in live device memory, and D may not overlap A or B (INVALID_VALUE). */
#include <cublasLt.h>
#include <cuda_fp8.h>
#include <stdint.h>
#include <string.h>

#include <mutex>
#include <unordered_set>
#include <vector>

#include "cuemu_internal.h"

struct cublasLtContext {
    int live;
};

namespace {

struct Desc {
    cublasComputeType_t compute;
    cudaDataType_t scale_type;
    int32_t pointer_mode;
    int32_t transa, transb;
    uint32_t epilogue;
    const void *a_scale, *b_scale, *c_scale, *d_scale;
    void *amax_d, *bias;
    int8_t fast_accum;
};

struct Layout {
    cudaDataType type;
    int32_t order;
    uint64_t rows, cols;
    int64_t ld;
    int32_t batch;
};

struct Pref {
    uint64_t max_workspace;
};

static_assert(sizeof(Desc) <= sizeof(cublasLtMatmulDescOpaque_t), "descriptor fits");
static_assert(sizeof(Layout) <= sizeof(cublasLtMatrixLayoutOpaque_t), "layout fits");
static_assert(sizeof(Pref) <= sizeof(cublasLtMatmulPreferenceOpaque_t), "preference fits");

std::mutex g_lock;
std::unordered_set<const void *> g_live; /* handles and descriptors */

bool live(const void *p)
{
    std::lock_guard<std::mutex> guard(g_lock);
    return p && g_live.count(p) != 0;
}

void track(const void *p)
{
    std::lock_guard<std::mutex> guard(g_lock);
    g_live.insert(p);
}

bool untrack(const void *p)
{
    std::lock_guard<std::mutex> guard(g_lock);
    return g_live.erase(p) != 0;
}

Desc *desc_of(cublasLtMatmulDesc_t d)
{
    return live(d) ? reinterpret_cast<Desc *>(d->data) : nullptr;
}

Layout *layout_of(cublasLtMatrixLayout_t l)
{
    return live(l) ? reinterpret_cast<Layout *>(l->data) : nullptr;
}

bool fp8_type(cudaDataType t)
{
    return t == CUDA_R_8F_E4M3 || t == CUDA_R_8F_E5M2;
}

/* One FP8 code as FP32 (exact), by the toolkit's own conversion. */
float fp8_value(uint8_t code, cudaDataType t)
{
    const __nv_fp8_interpretation_t kind = t == CUDA_R_8F_E4M3 ? __NV_E4M3 : __NV_E5M2;
    return __half2float(__half(__nv_cvt_fp8_to_halfraw((__nv_fp8_storage_t)code, kind)));
}

template <typename T> cublasStatus_t set(T *field, const void *buf, size_t bytes)
{
    if (!buf || bytes != sizeof(T))
        return CUBLAS_STATUS_INVALID_VALUE;
    memcpy(field, buf, sizeof(T));
    return CUBLAS_STATUS_SUCCESS;
}

bool aligned16(const void *p)
{
    return ((uintptr_t)p & 15u) == 0;
}

/* The FP8 problem (m, n, k) these descriptors describe, checked against the FP8 requirements. */
cublasStatus_t fp8_problem(const Desc *d, const Layout *a, const Layout *b, const Layout *c,
                           const Layout *dl, uint64_t *m, uint64_t *n, uint64_t *k)
{
    if (!d || !a || !b || !c || !dl)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (d->compute != CUBLAS_COMPUTE_32F || d->scale_type != CUDA_R_32F ||
        !fp8_type(a->type) || !fp8_type(b->type) ||
        (a->type == CUDA_R_8F_E5M2 && b->type == CUDA_R_8F_E5M2) ||
        d->transa != CUBLAS_OP_T || d->transb != CUBLAS_OP_N)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (dl->type != CUDA_R_32F || c->type != CUDA_R_32F || d->epilogue != CUBLASLT_EPILOGUE_DEFAULT ||
        d->d_scale || d->c_scale || d->amax_d || d->pointer_mode != CUBLASLT_POINTER_MODE_HOST)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    const Layout *all[4] = { a, b, c, dl };
    for (const Layout *l : all)
        if (l->order != CUBLASLT_ORDER_COL || l->batch != 1)
            return CUBLAS_STATUS_NOT_SUPPORTED;
    /* op(A) = A^T: A is stored k x m; B is k x n; C and D m x n. */
    *k = a->rows;
    *m = a->cols;
    *n = b->cols;
    if (b->rows != *k || dl->rows != *m || dl->cols != *n || c->rows != *m || c->cols != *n ||
        c->ld != dl->ld)
        return CUBLAS_STATUS_INVALID_VALUE;
    for (const Layout *l : all)
        if (l->ld < (int64_t)(l->rows ? l->rows : 1))
            return CUBLAS_STATUS_INVALID_VALUE;
    if (*m % 16 || *n % 16 || *k % 16 || a->ld % 16 || b->ld % 16 || (dl->ld * 4) % 16)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    return CUBLAS_STATUS_SUCCESS;
}

size_t span(const Layout *l, size_t elem)
{
    return l->cols ? ((size_t)(l->cols - 1) * (size_t)l->ld + (size_t)l->rows) * elem : 0;
}

bool overlap(const void *p, size_t pn, const void *q, size_t qn)
{
    const char *a = (const char *)p, *b = (const char *)q;
    return pn && qn && a < b + qn && b < a + pn;
}

} // namespace

extern "C" {

cublasStatus_t cublasLtCreate(cublasLtHandle_t *handle)
{
    if (!handle)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (cuemu_capturing()) { /* the real call allocates device memory */
        cuemu_invalidate_capture();
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    *handle = new cublasLtContext{ 1 };
    track(*handle);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle)
{
    if (!untrack(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

size_t cublasLtGetVersion(void)
{
    return CUBLAS_VERSION;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *desc, cublasComputeType_t compute,
                                        cudaDataType_t scale_type)
{
    if (!desc)
        return CUBLAS_STATUS_INVALID_VALUE;
    *desc = new cublasLtMatmulDescOpaque_t;
    memset(*desc, 0, sizeof **desc);
    Desc *d = reinterpret_cast<Desc *>((*desc)->data);
    d->compute = compute;
    d->scale_type = scale_type;
    d->pointer_mode = CUBLASLT_POINTER_MODE_HOST;
    d->transa = d->transb = CUBLAS_OP_N;
    d->epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    track(*desc);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc)
{
    if (!untrack(desc))
        return CUBLAS_STATUS_INVALID_VALUE;
    delete desc;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc,
                                              cublasLtMatmulDescAttributes_t attr, const void *buf,
                                              size_t bytes)
{
    Desc *d = desc_of(desc);
    if (!d)
        return CUBLAS_STATUS_INVALID_VALUE;
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE: return set(&d->compute, buf, bytes);
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE: return set(&d->scale_type, buf, bytes);
    case CUBLASLT_MATMUL_DESC_POINTER_MODE: return set(&d->pointer_mode, buf, bytes);
    case CUBLASLT_MATMUL_DESC_TRANSA: return set(&d->transa, buf, bytes);
    case CUBLASLT_MATMUL_DESC_TRANSB: return set(&d->transb, buf, bytes);
    case CUBLASLT_MATMUL_DESC_EPILOGUE: return set(&d->epilogue, buf, bytes);
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: return set(&d->bias, buf, bytes);
    case CUBLASLT_MATMUL_DESC_A_SCALE_POINTER: return set(&d->a_scale, buf, bytes);
    case CUBLASLT_MATMUL_DESC_B_SCALE_POINTER: return set(&d->b_scale, buf, bytes);
    case CUBLASLT_MATMUL_DESC_C_SCALE_POINTER: return set(&d->c_scale, buf, bytes);
    case CUBLASLT_MATMUL_DESC_D_SCALE_POINTER: return set(&d->d_scale, buf, bytes);
    case CUBLASLT_MATMUL_DESC_AMAX_D_POINTER: return set(&d->amax_d, buf, bytes);
    case CUBLASLT_MATMUL_DESC_FAST_ACCUM: return set(&d->fast_accum, buf, bytes);
    default: return CUBLAS_STATUS_NOT_SUPPORTED; /* a real attribute this emulation lacks */
    }
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *layout, cudaDataType type,
                                          uint64_t rows, uint64_t cols, int64_t ld)
{
    if (!layout || ld < 0)
        return CUBLAS_STATUS_INVALID_VALUE;
    *layout = new cublasLtMatrixLayoutOpaque_t;
    memset(*layout, 0, sizeof **layout);
    Layout *l = reinterpret_cast<Layout *>((*layout)->data);
    l->type = type;
    l->order = CUBLASLT_ORDER_COL;
    l->rows = rows;
    l->cols = cols;
    l->ld = ld;
    l->batch = 1;
    track(*layout);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout)
{
    if (!untrack(layout))
        return CUBLAS_STATUS_INVALID_VALUE;
    delete layout;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref)
{
    if (!pref)
        return CUBLAS_STATUS_INVALID_VALUE;
    *pref = new cublasLtMatmulPreferenceOpaque_t;
    memset(*pref, 0, sizeof **pref);
    track(*pref);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref)
{
    if (!untrack(pref))
        return CUBLAS_STATUS_INVALID_VALUE;
    delete pref;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr,
                                                    const void *buf, size_t bytes)
{
    if (!live(pref))
        return CUBLAS_STATUS_INVALID_VALUE;
    Pref *p = reinterpret_cast<Pref *>(pref->data);
    if (attr == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES)
        return set(&p->max_workspace, buf, bytes);
    return CUBLAS_STATUS_NOT_SUPPORTED;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                              cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                              cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                              cublasLtMatmulPreference_t pref, int requested,
                                              cublasLtMatmulHeuristicResult_t results[],
                                              int *returned)
{
    if (!live(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!live(pref) || requested <= 0 || !results || !returned)
        return CUBLAS_STATUS_INVALID_VALUE;
    uint64_t m, n, k;
    const cublasStatus_t st =
        fp8_problem(desc_of(desc), layout_of(a), layout_of(b), layout_of(c), layout_of(d), &m, &n, &k);
    *returned = 0;
    if (st != CUBLAS_STATUS_SUCCESS)
        return st;
    memset(&results[0], 0, sizeof results[0]);
    results[0].algo.data[0] = 1; /* the one emulated algorithm */
    results[0].workspaceSize = 0;
    results[0].state = CUBLAS_STATUS_SUCCESS;
    results[0].wavesCount = 1.0f;
    *returned = 1;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                              const void *alpha, const void *A, cublasLtMatrixLayout_t a_desc,
                              const void *B, cublasLtMatrixLayout_t b_desc, const void *beta,
                              const void *C, cublasLtMatrixLayout_t c_desc, void *D,
                              cublasLtMatrixLayout_t d_desc, const cublasLtMatmulAlgo_t *algo,
                              void *workspace, size_t workspace_bytes, cudaStream_t stream)
{
    (void)workspace;
    (void)workspace_bytes;
    if (!live(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    const Desc *d = desc_of(desc);
    const Layout *al = layout_of(a_desc), *bl = layout_of(b_desc), *cl = layout_of(c_desc),
                 *dl = layout_of(d_desc);
    uint64_t m, n, k;
    const cublasStatus_t st = fp8_problem(d, al, bl, cl, dl, &m, &n, &k);
    if (st != CUBLAS_STATUS_SUCCESS)
        return st;
    if (!alpha || !beta || (algo && algo->data[0] != 1) || cuemu_is_device(alpha, 4) ||
        cuemu_is_device(beta, 4))
        return CUBLAS_STATUS_INVALID_VALUE;
    const float al_v = *(const float *)alpha, be_v = *(const float *)beta;
    const size_t a_bytes = span(al, 1), b_bytes = span(bl, 1), d_bytes = span(dl, 4);
    if (!aligned16(A) || !aligned16(B) || !aligned16(D) || (be_v != 0.0f && !aligned16(C)))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if ((m && n && k && (!cuemu_is_device(A, a_bytes) || !cuemu_is_device(B, b_bytes))) ||
        (m && n && !cuemu_is_device(D, d_bytes)) ||
        (be_v != 0.0f && !cuemu_is_device(C, d_bytes)) ||
        (d->a_scale && !cuemu_is_device(d->a_scale, 4)) ||
        (d->b_scale && !cuemu_is_device(d->b_scale, 4)) || overlap(D, d_bytes, A, a_bytes) ||
        overlap(D, d_bytes, B, b_bytes))
        return CUBLAS_STATUS_INVALID_VALUE;
    const cudaDataType at = al->type, bt = bl->type;
    const int64_t lda = al->ld, ldb = bl->ld, ldd = dl->ld;
    const float *as = (const float *)d->a_scale, *bs = (const float *)d->b_scale;
    const cudaError_t e = cuemu_enqueue(stream, [=]() {
        const float s = al_v * (as ? *as : 1.0f) * (bs ? *bs : 1.0f);
        std::vector<float> arow(k);
        for (uint64_t i = 0; i < m; i++) {
            const uint8_t *ai = (const uint8_t *)A + (size_t)i * lda; /* column i of A: op(A) row i */
            for (uint64_t r = 0; r < k; r++)
                arow[r] = fp8_value(ai[r], at);
            for (uint64_t j = 0; j < n; j++) {
                const uint8_t *bj = (const uint8_t *)B + (size_t)j * ldb;
                float acc = 0.0f;
                for (uint64_t r = 0; r < k; r++)
                    acc += arow[r] * fp8_value(bj[r], bt);
                float v = acc * s;
                const size_t at_d = (size_t)j * ldd + i;
                if (be_v != 0.0f)
                    v += be_v * ((const float *)C)[at_d];
                ((float *)D)[at_d] = v;
            }
        }
    });
    return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

} /* extern "C" */
