/* CPU emulation of the CUDA stack: a fake cuDNN, replacing libcudnn for the functions the CUDA
 * backend calls (kernels/cuda_backend.cu, kernels/cuda_conv.cu): handle lifetime, version and
 * error strings, 4-d tensor / filter / 2-d convolution / activation descriptors, the v7 algorithm
 * heuristics, the workspace queries, the three convolutions (forward, backward data, backward
 * filter) and the fused forward cudnnConvolutionBiasActivationForward.
 * The definitions carry the real headers' signatures and C linkage.
 *
 * Semantics follow the cuDNN 9 documentation (legacy convolution API):
 *  - Tensors are NCHW, filters KCRS (format NCHW); other formats give CUDNN_STATUS_NOT_SUPPORTED
 *    (an emulation limit), non-positive dimensions CUDNN_STATUS_BAD_PARAM.
 *  - y = alpha * conv(x, w) + beta * y, dx = alpha * conv^T(dy, w) + beta * dx,
 *    dw = alpha * corr(x, dy) + beta * dw, with the descriptor's pads, strides and dilations;
 *    CUDNN_CONVOLUTION flips the filter, CUDNN_CROSS_CORRELATION does not. alpha / beta are
 *    host floats (FLOAT / HALF / BFLOAT16 data), read at the call; beta == 0 means the output is
 *    not read (it may hold NaN).
 *  - Argument checks: x, w, y one data type and w's C == x's C, y's N == x's N and y's C == w's
 *    K (else BAD_PARAM), a dilated filter no larger than the padded input (BAD_PARAM), y's H, W
 *    those of the forward output (else NOT_SUPPORTED, as documented for a y that does not match
 *    cudnnGetConvolutionNdForwardOutputDim). Configurations: FLOAT, HALF or BFLOAT16 data with
 *    compute type FLOAT, or HALF data with compute type HALF (TRUE_HALF); anything else is
 *    NOT_SUPPORTED (DOUBLE and the integer configurations are real cuDNN features this emulation
 *    does not implement). The workspace must be at least the algorithm's size (BAD_PARAM) and,
 *    when its size is non-zero, device memory; an algorithm that does not apply to the problem
 *    gives NOT_SUPPORTED, one out of range BAD_PARAM.
 *  - Numerics: data widens exactly to FP32 and products accumulate in FP32 (TRUE_HALF: the
 *    accumulator is rounded to FP16 after every addition); the output is rounded once to the
 *    data type (nearest even). For FLOAT data, CUDNN_FMA_MATH is true FP32 while
 *    CUDNN_DEFAULT_MATH, CUDNN_TENSOR_OP_MATH and _ALLOW_CONVERSION allow TF32: the two operands
 *    (x and w forward, dy and w backward data, x and dy backward filter) are rounded to TF32
 *    first (lib_tf32: nearest even, or as CUEMU_TF32_ROUNDING says). The math type is the
 *    descriptor's at the call.
 *  - cudnnConvolutionBiasActivationForward: y = act(alpha1 * conv(x) + alpha2 * z + bias) in
 *    FP32 (the compute type FLOAT of the configurations above), rounded once into y's type. Its
 *    documented rules: the activation is CUDNN_ACTIVATION_RELU or CUDNN_ACTIVATION_IDENTITY
 *    (else NOT_SUPPORTED), and IDENTITY runs only with IMPLICIT_PRECOMP_GEMM (else
 *    NOT_SUPPORTED); the bias is a 1 x K x 1 x 1 tensor (else BAD_PARAM) in y's data type for the
 *    FLOAT, HALF and BFLOAT16 configurations (the integer configurations' FLOAT bias is not
 *    emulated: another type is NOT_SUPPORTED); z has y's descriptor (BAD_PARAM) and may be y
 *    itself; with alpha2 == 0, z is not read (PyTorch's cudnn_convolution_relu passes its
 *    uninitialized output as z with alpha2 0). Everything else is cudnnConvolutionForward's.
 *  - Any geometry the descriptors describe is computed: every kernel size, stride, zero padding
 *    (including padding as large as the filter or larger), dilation and channel count, in
 *    cross-correlation (or convolution: the filter flipped) mode; the taps that fall in the
 *    padding contribute nothing. Which algorithms apply follows the documented support tables:
 *    GEMM, IMPLICIT_GEMM, IMPLICIT_PRECOMP_GEMM and the backward ALGO_0 / ALGO_1 / ALGO_3 apply
 *    to everything; FFT and FFT_TILING need unit strides and dilations, a filter larger than the
 *    padding on both axes, no BFLOAT16 and no TRUE_HALF (FFT also a padded input of at most
 *    256 x 256); WINOGRAD needs a 3x3 filter (no BFLOAT16), WINOGRAD_NONFUSED 3x3 or 5x5 (5x5
 *    not in TRUE_HALF), both unit strides and dilations; DIRECT and the backward-filter
 *    WINOGRAD are never implemented.
 *  - Heuristics (cudnnGet*Algorithm_v7) list every algorithm of the direction, the applicable
 *    ones first, in a realistic order: forward IMPLICIT_PRECOMP_GEMM (small workspace) before
 *    IMPLICIT_GEMM (none); backward data and filter start with the non-deterministic
 *    ALGO_0, followed by deterministic ones (ALGO_1 and the others need workspace). Every
 *    result carries the descriptor's math type, its workspace (what cudnnGet*WorkspaceSize
 *    reports) and its determinism. All algorithms compute the same sums; the non-deterministic
 *    ones add in a different (but fixed) order, so their results may differ from the others in
 *    the last bits yet repeat exactly run to run.
 *
 * Emulation specifics (misuse a real GPU would punish with a fault or garbage): the tensors'
 * byte ranges must be live device memory (cuemu_is_device; else BAD_PARAM); the output may not
 * overlap an input, nor the workspace any tensor (BAD_PARAM); alpha / beta may not be device
 * pointers (BAD_PARAM); the algorithm's workspace bytes are overwritten (with a NaN pattern) as
 * the work starts, as real kernels use it as scratch. Handles and descriptors are tracked: a
 * destroyed or unknown one gives BAD_PARAM, destroying one twice aborts with a message (a double
 * free in the real library), and creating or destroying a handle while the calling thread
 * captures a graph fails (the real calls allocate / free device memory and synchronize).
 *
 * Device work goes through cuemu_enqueue with everything captured by value at the call
 * (descriptor contents, scalars, pointers), so a convolution captured into a CUDA graph replays
 * with the arguments of the captured call. */
#include <cudnn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "cuemu_internal.h"
#include "cuemu_lowp.h"

/* The objects behind the header's opaque pointers. */
struct cudnnContext {
    cudaStream_t stream;
};

struct cudnnTensorStruct {
    bool set;
    cudnnDataType_t dt;
    int n, c, h, w;
};

struct cudnnFilterStruct {
    bool set;
    cudnnDataType_t dt;
    int k, c, r, s;
};

struct cudnnActivationStruct {
    bool set;
    cudnnActivationMode_t mode;
};

struct cudnnConvolutionStruct {
    bool set;
    int pad_h, pad_w, u, v, dil_h, dil_w;
    cudnnConvolutionMode_t mode;
    cudnnDataType_t compute;
    cudnnMathType_t math;
};

namespace {

/* ---- object registry ---- */

enum class Kind { HANDLE, TENSOR, FILTER, CONV, ACTIVATION };

std::mutex g_lock;
std::unordered_map<const void *, Kind> g_live;

bool live(const void *p, Kind k)
{
    if (!p)
        return false;
    std::lock_guard<std::mutex> guard(g_lock);
    const auto it = g_live.find(p);
    return it != g_live.end() && it->second == k;
}

template <typename T> cudnnStatus_t create_obj(T **out, Kind k)
{
    if (!out)
        return CUDNN_STATUS_BAD_PARAM;
    T *p = new T();
    {
        std::lock_guard<std::mutex> guard(g_lock);
        g_live[p] = k;
    }
    *out = p;
    return CUDNN_STATUS_SUCCESS;
}

template <typename T> cudnnStatus_t destroy_obj(T *p, Kind k, const char *what)
{
    if (!p)
        return CUDNN_STATUS_SUCCESS; /* destroying NULL is a no-op */
    {
        std::lock_guard<std::mutex> guard(g_lock);
        const auto it = g_live.find(p);
        if (it == g_live.end() || it->second != k) {
            fprintf(stderr, "cuemu cuDNN: destroy of a %s that is not live (%p): double destroy "
                            "or a bad pointer\n", what, (const void *)p);
            abort();
        }
        g_live.erase(it);
    }
    delete p;
    return CUDNN_STATUS_SUCCESS;
}

/* ---- data types ---- */

bool data_type_valid(cudnnDataType_t t)
{
    const int v = (int)t;
    return v >= CUDNN_DATA_FLOAT && v <= CUDNN_DATA_COMPLEX_FP64;
}

/* Descriptor-level checks shared by tensors and filters. */
cudnnStatus_t check_4d(cudnnTensorFormat_t format, cudnnDataType_t dt, int a, int b, int c,
                       int d)
{
    const int f = (int)format;
    if (f < CUDNN_TENSOR_NCHW || f > CUDNN_TENSOR_NCHW_VECT_C || !data_type_valid(dt) || a <= 0 ||
        b <= 0 || c <= 0 || d <= 0)
        return CUDNN_STATUS_BAD_PARAM;
    if (format != CUDNN_TENSOR_NCHW)
        return CUDNN_STATUS_NOT_SUPPORTED; /* emulation limit: NCHW / KCRS only */
    if ((long long)a * b * c * d > 0x7FFFFFFFLL)
        return CUDNN_STATUS_NOT_SUPPORTED; /* the legacy API's 2 Giga-element limit */
    return CUDNN_STATUS_SUCCESS;
}

/* ---- problems ---- */

/* FWD_BIAS: cudnnConvolutionBiasActivationForward (the forward's algorithms and workspace; its
 * own fault injection and first-execution record). */
enum Dir { FWD, BWD_DATA, BWD_FILTER, FWD_BIAS };

/* A convolution with everything the work needs (descriptor contents copied). */
struct Problem {
    Elem elem;
    bool tf32;       /* FP32 operands rounded to TF32 */
    bool half_accum; /* TRUE_HALF: FP16 accumulator */
    bool flip;       /* CUDNN_CONVOLUTION */
    int N, C, H, W, K, R, S, OH, OW;
    int pad_h, pad_w, u, v, dil_h, dil_w;
    cudnnMathType_t math;

    size_t x_elems() const { return (size_t)N * C * H * W; }
    size_t w_elems() const { return (size_t)K * C * R * S; }
    size_t y_elems() const { return (size_t)N * K * OH * OW; }
};

/* Validates the handle and descriptors of a convolution (as cuDNN does) and fills *p. */
cudnnStatus_t make_problem(cudnnHandle_t handle, const cudnnTensorStruct *x,
                           const cudnnFilterStruct *w, const cudnnConvolutionStruct *conv,
                           const cudnnTensorStruct *y, Problem *p)
{
    if (!live(handle, Kind::HANDLE) || !live(x, Kind::TENSOR) || !live(w, Kind::FILTER) ||
        !live(conv, Kind::CONV) || !live(y, Kind::TENSOR))
        return CUDNN_STATUS_BAD_PARAM;
    if (!x->set || !w->set || !conv->set || !y->set)
        return CUDNN_STATUS_BAD_PARAM;
    if (x->dt != w->dt || x->dt != y->dt)
        return CUDNN_STATUS_BAD_PARAM;
    switch (x->dt) {
    case CUDNN_DATA_FLOAT: p->elem = Elem::F32; break;
    case CUDNN_DATA_HALF: p->elem = Elem::F16; break;
    case CUDNN_DATA_BFLOAT16: p->elem = Elem::BF16; break;
    default: return CUDNN_STATUS_NOT_SUPPORTED;
    }
    /* FLOAT_CONFIG, PSEUDO_HALF_CONFIG, PSEUDO_BFLOAT16_CONFIG (compute FLOAT), TRUE_HALF_CONFIG
     * (HALF data, compute HALF). */
    if (conv->compute == CUDNN_DATA_FLOAT)
        p->half_accum = false;
    else if (conv->compute == CUDNN_DATA_HALF && x->dt == CUDNN_DATA_HALF)
        p->half_accum = true;
    else
        return CUDNN_STATUS_NOT_SUPPORTED;
    if (x->c != w->c)
        return CUDNN_STATUS_BAD_PARAM;
    const long long eff_r = (long long)(w->r - 1) * conv->dil_h + 1;
    const long long eff_s = (long long)(w->s - 1) * conv->dil_w + 1;
    const long long in_h = (long long)x->h + 2LL * conv->pad_h;
    const long long in_w = (long long)x->w + 2LL * conv->pad_w;
    if (eff_r > in_h || eff_s > in_w)
        return CUDNN_STATUS_BAD_PARAM;
    if (y->n != x->n || y->c != w->k)
        return CUDNN_STATUS_BAD_PARAM;
    const long long oh = (in_h - eff_r) / conv->u + 1, ow = (in_w - eff_s) / conv->v + 1;
    if (y->h != oh || y->w != ow)
        return CUDNN_STATUS_NOT_SUPPORTED;
    p->tf32 = p->elem == Elem::F32 && conv->math != CUDNN_FMA_MATH;
    p->flip = conv->mode == CUDNN_CONVOLUTION;
    p->N = x->n;
    p->C = x->c;
    p->H = x->h;
    p->W = x->w;
    p->K = w->k;
    p->R = w->r;
    p->S = w->s;
    p->OH = y->h;
    p->OW = y->w;
    p->pad_h = conv->pad_h;
    p->pad_w = conv->pad_w;
    p->u = conv->u;
    p->v = conv->v;
    p->dil_h = conv->dil_h;
    p->dil_w = conv->dil_w;
    p->math = conv->math;
    return CUDNN_STATUS_SUCCESS;
}

/* ---- algorithms: applicability, workspace, determinism ---- */

const int kAlgoCount[4] = { CUDNN_CONVOLUTION_FWD_ALGO_COUNT, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                            CUDNN_CONVOLUTION_FWD_ALGO_COUNT };

/* The heuristic order of each direction (every algorithm once). */
const int kFwdOrder[] = { CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                          CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
                          CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED,
                          CUDNN_CONVOLUTION_FWD_ALGO_GEMM,
                          CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING,
                          CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD,
                          CUDNN_CONVOLUTION_FWD_ALGO_FFT,
                          CUDNN_CONVOLUTION_FWD_ALGO_DIRECT };
const int kBwdDataOrder[] = { CUDNN_CONVOLUTION_BWD_DATA_ALGO_0,
                              CUDNN_CONVOLUTION_BWD_DATA_ALGO_1,
                              CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED,
                              CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING,
                              CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD,
                              CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT };
const int kBwdFilterOrder[] = { CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0,
                                CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3,
                                CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1,
                                CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED,
                                CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING,
                                CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT,
                                CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD };

static_assert(sizeof kFwdOrder / sizeof kFwdOrder[0] == CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
              "every forward algorithm once");
static_assert(sizeof kBwdDataOrder / sizeof kBwdDataOrder[0] ==
                  CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
              "every backward-data algorithm once");
static_assert(sizeof kBwdFilterOrder / sizeof kBwdFilterOrder[0] ==
                  CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
              "every backward-filter algorithm once");

/* Whether algorithm `algo` of direction `dir` is non-deterministic (atomics in real cuDNN). */
bool nondeterministic(Dir dir, int algo)
{
    if (dir == BWD_DATA)
        return algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0;
    if (dir == BWD_FILTER)
        return algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 ||
               algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
    return false;
}

size_t ceil_div(size_t a, size_t b)
{
    return (a + b - 1) / b;
}

/* The workspace of an algorithm for problem p: SUCCESS with *bytes, NOT_SUPPORTED where the
 * algorithm does not apply, BAD_PARAM for an algorithm out of range. The sizes are made-up but
 * plausible functions of the shapes (index tables, im2col buffers, transformed tiles). */
cudnnStatus_t algo_workspace(const Problem &p, Dir dir, int algo, size_t *bytes)
{
    if (algo < 0 || algo >= kAlgoCount[dir])
        return CUDNN_STATUS_BAD_PARAM;
    const size_t E = elem_size(p.elem);
    /* The documented applicability (cuDNN's "supported configurations" tables): the FFT and
     * Winograd algorithms need unit strides and dilations; the FFT ones a filter larger than
     * the padding on both axes (and FFT, not FFT_TILING, a padded input of at most 256 x 256);
     * fused Winograd a 3x3 filter, non-fused Winograd 3x3 or 5x5 (5x5 not in TRUE_HALF). */
    const bool unit = p.u == 1 && p.v == 1 && p.dil_h == 1 && p.dil_w == 1;
    const bool winograd = unit && p.R == 3 && p.S == 3;
    const bool winograd_nonfused = winograd || (unit && p.R == 5 && p.S == 5 && !p.half_accum);
    const bool fft_tiling = unit && p.elem != Elem::BF16 && !p.half_accum && p.R > p.pad_h &&
                            p.S > p.pad_w;
    const bool fft = fft_tiling && p.H + 2 * p.pad_h <= 256 && p.W + 2 * p.pad_w <= 256;
    const size_t planes = (size_t)p.N * p.C + (size_t)p.K * p.C + (size_t)p.N * p.K;
    const size_t fft_plane = (size_t)(p.H + 2 * p.pad_h) * (size_t)((p.W + 2 * p.pad_w) / 2 + 1) * 8;
    const size_t fft_tile_plane = (size_t)32 * 17 * 8;
    const size_t tiles = ceil_div((size_t)p.OH, 4) * ceil_div((size_t)p.OW, 4);
    const size_t tile_elems = p.R == 5 ? 64 : 36; /* 8x8 tiles for 5x5, 6x6 for 3x3 */
    const size_t winograd_nonfused_ws =
        tile_elems * ((size_t)p.C * p.K + ((size_t)p.N * p.C + (size_t)p.N * p.K) * tiles) *
        sizeof(float);
    *bytes = 0;
    switch (dir) {
    case FWD:
    case FWD_BIAS:
        switch (algo) {
        case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM: return CUDNN_STATUS_SUCCESS;
        case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM: /* precomputed offsets */
            *bytes = (size_t)p.C * p.R * p.S * sizeof(int32_t);
            return CUDNN_STATUS_SUCCESS;
        case CUDNN_CONVOLUTION_FWD_ALGO_GEMM: /* one image's im2col buffer */
            *bytes = (size_t)p.C * p.R * p.S * p.OH * p.OW * E;
            return CUDNN_STATUS_SUCCESS;
        case CUDNN_CONVOLUTION_FWD_ALGO_DIRECT: return CUDNN_STATUS_NOT_SUPPORTED;
        case CUDNN_CONVOLUTION_FWD_ALGO_FFT:
            if (!fft)
                return CUDNN_STATUS_NOT_SUPPORTED;
            *bytes = planes * fft_plane;
            return CUDNN_STATUS_SUCCESS;
        case CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING:
            if (!fft_tiling)
                return CUDNN_STATUS_NOT_SUPPORTED;
            *bytes = planes * fft_tile_plane;
            return CUDNN_STATUS_SUCCESS;
        case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD:
            return winograd && p.elem != Elem::BF16 ? CUDNN_STATUS_SUCCESS
                                                    : CUDNN_STATUS_NOT_SUPPORTED;
        case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED:
            if (!winograd_nonfused)
                return CUDNN_STATUS_NOT_SUPPORTED;
            *bytes = winograd_nonfused_ws;
            return CUDNN_STATUS_SUCCESS;
        }
        break;
    case BWD_DATA:
        switch (algo) {
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_0: return CUDNN_STATUS_SUCCESS;
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_1: /* a transposed copy of the filter */
            *bytes = p.w_elems() * E;
            return CUDNN_STATUS_SUCCESS;
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT:
            if (!fft)
                return CUDNN_STATUS_NOT_SUPPORTED;
            *bytes = planes * fft_plane;
            return CUDNN_STATUS_SUCCESS;
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING:
            if (!fft_tiling)
                return CUDNN_STATUS_NOT_SUPPORTED;
            *bytes = planes * fft_tile_plane;
            return CUDNN_STATUS_SUCCESS;
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD:
            return winograd && p.elem != Elem::BF16 ? CUDNN_STATUS_SUCCESS
                                                    : CUDNN_STATUS_NOT_SUPPORTED;
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED:
            if (!winograd_nonfused)
                return CUDNN_STATUS_NOT_SUPPORTED;
            *bytes = winograd_nonfused_ws;
            return CUDNN_STATUS_SUCCESS;
        }
        break;
    case BWD_FILTER:
        switch (algo) {
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0: return CUDNN_STATUS_SUCCESS;
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1: /* FP32 partial sums of the filter */
            *bytes = p.w_elems() * sizeof(float);
            return CUDNN_STATUS_SUCCESS;
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3:
            *bytes = 2 * p.w_elems() * sizeof(float);
            return CUDNN_STATUS_SUCCESS;
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT:
            if (!fft)
                return CUDNN_STATUS_NOT_SUPPORTED;
            *bytes = planes * fft_plane;
            return CUDNN_STATUS_SUCCESS;
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING:
            if (!fft_tiling)
                return CUDNN_STATUS_NOT_SUPPORTED;
            *bytes = planes * fft_tile_plane;
            return CUDNN_STATUS_SUCCESS;
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD: /* "not implemented" in the header */
            return CUDNN_STATUS_NOT_SUPPORTED;
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED:
            if (!winograd_nonfused)
                return CUDNN_STATUS_NOT_SUPPORTED;
            *bytes = winograd_nonfused_ws;
            return CUDNN_STATUS_SUCCESS;
        }
        break;
    }
    return CUDNN_STATUS_BAD_PARAM;
}

/* The math type a heuristic result reports: the descriptor's, except that tensor-op kernels
 * are offered only when C and K are multiples of 8 (the cuDNN Developer Guide's tensor-core
 * requirement for FP16/BF16 data; cuDNN >= 7.3 may pad other counts internally, which the
 * emulation does not credit: the conservative side), otherwise the result says
 * CUDNN_DEFAULT_MATH, and the backend must take the math from the result, not assume it. */
cudnnMathType_t result_math(const Problem &p)
{
    const bool tensor_op = p.math == CUDNN_TENSOR_OP_MATH ||
                           p.math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
    if (tensor_op && p.elem != Elem::F32 && (p.C % 8 != 0 || p.K % 8 != 0))
        return CUDNN_DEFAULT_MATH;
    return p.math;
}

/* The "algorithm" of CUEMU_FAIL_ALGOS that stands for the direction's v7 heuristic query. */
const int kInjectV7 = -1;
bool injected_failure(Dir dir, int algo);

/* The v7 heuristics: applicable algorithms first (in the direction's order), then the others
 * with their NOT_SUPPORTED status; at most `requested` results. */
template <typename Perf>
cudnnStatus_t heuristics(const Problem &p, Dir dir, int requested, int *returned, Perf *perf)
{
    if (requested <= 0 || !returned || !perf)
        return CUDNN_STATUS_BAD_PARAM;
    if (injected_failure(dir, kInjectV7))
        return CUDNN_STATUS_NOT_SUPPORTED;
    const int *order = dir == FWD ? kFwdOrder : dir == BWD_DATA ? kBwdDataOrder : kBwdFilterOrder;
    const int count = kAlgoCount[dir];
    int n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < count && n < requested; i++) {
            size_t ws = 0;
            const cudnnStatus_t st = algo_workspace(p, dir, order[i], &ws);
            if ((st == CUDNN_STATUS_SUCCESS) != (pass == 0))
                continue;
            Perf r;
            memset(&r, 0, sizeof r);
            r.algo = static_cast<decltype(r.algo)>(order[i]);
            r.status = st;
            r.time = -1.0f; /* heuristics do not time anything */
            r.memory = ws;
            r.determinism = nondeterministic(dir, order[i]) ? CUDNN_NON_DETERMINISTIC
                                                            : CUDNN_DETERMINISTIC;
            r.mathType = result_math(p);
            perf[n++] = r;
        }
    *returned = n;
    return CUDNN_STATUS_SUCCESS;
}

/* ---- the emulated kernels ---- */

/* a + b with the problem's accumulator (FP32, or FP16 for TRUE_HALF). */
template <bool HALF_ACC> inline float acc_add(float a, float b)
{
    return HALF_ACC ? round_f16(a + b) : a + b;
}

/* A tensor widened to FP32 (TF32-rounded when tf32). */
std::vector<float> widen(const void *p, size_t count, Elem e, bool tf32)
{
    std::vector<float> v(count);
    for (size_t i = 0; i < count; i++) {
        const float f = load(p, i, e);
        v[i] = tf32 ? lib_tf32(f) : f;
    }
    return v;
}

/* The filter as the cross-correlation uses it (flipped for CUDNN_CONVOLUTION). */
std::vector<float> widen_filter(const Problem &p, const void *w, bool tf32)
{
    std::vector<float> f = widen(w, p.w_elems(), p.elem, tf32);
    if (!p.flip)
        return f;
    std::vector<float> g(f.size());
    const size_t RS = (size_t)p.R * p.S;
    for (size_t kc = 0; kc < (size_t)p.K * p.C; kc++)
        for (int r = 0; r < p.R; r++)
            for (int s = 0; s < p.S; s++)
                g[kc * RS + (size_t)r * p.S + s] =
                    f[kc * RS + (size_t)(p.R - 1 - r) * p.S + (p.S - 1 - s)];
    return g;
}

/* out[i] = alpha * acc[i] + beta * out[i] (out not read when beta == 0), rounded to the type. */
void blend(void *out, size_t base, const float *acc, size_t count, Elem e, float alpha, float beta)
{
    for (size_t i = 0; i < count; i++) {
        float v = alpha * acc[i];
        if (beta != 0.0f)
            v += beta * load(out, base + i, e);
        store(out, base + i, e, v);
    }
}

/* The fused forward's epilogue operands, read when the work runs (a replayed graph sees the
 * bias of the moment). */
struct BiasAct {
    bool on;
    const void *bias; /* K elements in the data's type */
    const void *z;    /* read only when alpha2 != 0 */
    float alpha2;
    bool relu;
};

/* y[i] = act(alpha1 * acc[i] + alpha2 * z[i] + b) in FP32, rounded once to the type. */
void bias_act_blend(void *y, size_t base, const float *acc, size_t count, Elem e, float alpha1,
                    const BiasAct &f, float b)
{
    for (size_t i = 0; i < count; i++) {
        float v = alpha1 * acc[i];
        if (f.alpha2 != 0.0f)
            v += f.alpha2 * load(f.z, base + i, e);
        v += b;
        if (f.relu && v < 0.0f)
            v = 0.0f;
        store(y, base + i, e, v);
    }
}

/* y[n, k, oh, ow] = sum over (c, r, s) in ascending order of x * w (then the fused epilogue
 * when f.on). */
template <bool HALF_ACC>
void forward_kernel(const Problem &p, const float *x, const float *w, void *y, float alpha,
                    float beta, const BiasAct &f)
{
    std::vector<float> acc((size_t)p.OH * p.OW);
    for (int n = 0; n < p.N; n++)
        for (int k = 0; k < p.K; k++) {
            std::fill(acc.begin(), acc.end(), 0.0f);
            for (int c = 0; c < p.C; c++) {
                const float *xp = x + ((size_t)n * p.C + c) * p.H * p.W;
                for (int r = 0; r < p.R; r++)
                    for (int s = 0; s < p.S; s++) {
                        const float wv = w[(((size_t)k * p.C + c) * p.R + r) * p.S + s];
                        for (int oh = 0; oh < p.OH; oh++) {
                            const int ih = oh * p.u - p.pad_h + r * p.dil_h;
                            if (ih < 0 || ih >= p.H)
                                continue;
                            float *ap = &acc[(size_t)oh * p.OW];
                            const float *xr = xp + (size_t)ih * p.W;
                            for (int ow = 0; ow < p.OW; ow++) {
                                const int iw = ow * p.v - p.pad_w + s * p.dil_w;
                                if (iw >= 0 && iw < p.W)
                                    ap[ow] = acc_add<HALF_ACC>(ap[ow], xr[iw] * wv);
                            }
                        }
                    }
            }
            const size_t base = ((size_t)n * p.K + k) * p.OH * p.OW;
            if (f.on)
                bias_act_blend(y, base, acc.data(), acc.size(), p.elem, alpha, f,
                               load(f.bias, k, p.elem));
            else
                blend(y, base, acc.data(), acc.size(), p.elem, alpha, beta);
        }
}

/* dx[n, c, ih, iw] = sum over (k, r, s) of dy * w, k ascending (reversed: descending). */
template <bool HALF_ACC>
void backward_data_kernel(const Problem &p, const float *dy, const float *w, void *dx,
                          float alpha, float beta, bool reversed)
{
    std::vector<float> acc((size_t)p.H * p.W);
    for (int n = 0; n < p.N; n++)
        for (int c = 0; c < p.C; c++) {
            std::fill(acc.begin(), acc.end(), 0.0f);
            for (int kk = 0; kk < p.K; kk++) {
                const int k = reversed ? p.K - 1 - kk : kk;
                const float *gp = dy + ((size_t)n * p.K + k) * p.OH * p.OW;
                for (int r = 0; r < p.R; r++)
                    for (int s = 0; s < p.S; s++) {
                        const float wv = w[(((size_t)k * p.C + c) * p.R + r) * p.S + s];
                        for (int oh = 0; oh < p.OH; oh++) {
                            const int ih = oh * p.u - p.pad_h + r * p.dil_h;
                            if (ih < 0 || ih >= p.H)
                                continue;
                            float *ap = &acc[(size_t)ih * p.W];
                            const float *gr = gp + (size_t)oh * p.OW;
                            for (int ow = 0; ow < p.OW; ow++) {
                                const int iw = ow * p.v - p.pad_w + s * p.dil_w;
                                if (iw >= 0 && iw < p.W)
                                    ap[iw] = acc_add<HALF_ACC>(ap[iw], gr[ow] * wv);
                            }
                        }
                    }
            }
            blend(dx, ((size_t)n * p.C + c) * p.H * p.W, acc.data(), acc.size(), p.elem, alpha,
                  beta);
        }
}

/* dw[k, c, r, s] = sum over (n, oh, ow) of dy * x, n ascending (reversed: descending); the
 * flipped tap for CUDNN_CONVOLUTION. */
template <bool HALF_ACC>
void backward_filter_kernel(const Problem &p, const float *x, const float *dy, void *dw,
                            float alpha, float beta, bool reversed)
{
    std::vector<float> acc(p.w_elems());
    for (int k = 0; k < p.K; k++)
        for (int c = 0; c < p.C; c++)
            for (int r = 0; r < p.R; r++)
                for (int s = 0; s < p.S; s++) {
                    float a = 0.0f;
                    for (int nn = 0; nn < p.N; nn++) {
                        const int n = reversed ? p.N - 1 - nn : nn;
                        const float *gp = dy + ((size_t)n * p.K + k) * p.OH * p.OW;
                        const float *xp = x + ((size_t)n * p.C + c) * p.H * p.W;
                        for (int oh = 0; oh < p.OH; oh++) {
                            const int ih = oh * p.u - p.pad_h + r * p.dil_h;
                            if (ih < 0 || ih >= p.H)
                                continue;
                            for (int ow = 0; ow < p.OW; ow++) {
                                const int iw = ow * p.v - p.pad_w + s * p.dil_w;
                                if (iw >= 0 && iw < p.W)
                                    a = acc_add<HALF_ACC>(a, gp[(size_t)oh * p.OW + ow] *
                                                                 xp[(size_t)ih * p.W + iw]);
                            }
                        }
                    }
                    const int rr = p.flip ? p.R - 1 - r : r, ss = p.flip ? p.S - 1 - s : s;
                    acc[(((size_t)k * p.C + c) * p.R + rr) * p.S + ss] = a;
                }
    blend(dw, 0, acc.data(), acc.size(), p.elem, alpha, beta);
}

/* One convolution call, by value: what the enqueued work captures. */
struct ConvWork {
    Problem p;
    Dir dir;
    bool reversed; /* the non-deterministic algorithms' summation order */
    const void *in0, *in1; /* fwd: x, w; bwd data: dy, w; bwd filter: x, dy */
    void *out;
    void *ws;
    size_t ws_bytes; /* the algorithm's workspace, scribbled over */
    float alpha, beta;
    BiasAct fused; /* FWD_BIAS */
};

void conv_run(const ConvWork &c)
{
    if (c.ws_bytes)
        memset(c.ws, 0xFF, c.ws_bytes); /* scratch use: all-ones bytes are NaN in every type */
    const Problem &p = c.p;
    if (c.dir == FWD || c.dir == FWD_BIAS) {
        const std::vector<float> x = widen(c.in0, p.x_elems(), p.elem, p.tf32);
        const std::vector<float> w = widen_filter(p, c.in1, p.tf32);
        if (p.half_accum)
            forward_kernel<true>(p, x.data(), w.data(), c.out, c.alpha, c.beta, c.fused);
        else
            forward_kernel<false>(p, x.data(), w.data(), c.out, c.alpha, c.beta, c.fused);
    } else if (c.dir == BWD_DATA) {
        const std::vector<float> dy = widen(c.in0, p.y_elems(), p.elem, p.tf32);
        const std::vector<float> w = widen_filter(p, c.in1, p.tf32);
        if (p.half_accum)
            backward_data_kernel<true>(p, dy.data(), w.data(), c.out, c.alpha, c.beta,
                                       c.reversed);
        else
            backward_data_kernel<false>(p, dy.data(), w.data(), c.out, c.alpha, c.beta,
                                        c.reversed);
    } else {
        const std::vector<float> x = widen(c.in0, p.x_elems(), p.elem, p.tf32);
        const std::vector<float> dy = widen(c.in1, p.y_elems(), p.elem, p.tf32);
        if (p.half_accum)
            backward_filter_kernel<true>(p, x.data(), dy.data(), c.out, c.alpha, c.beta,
                                         c.reversed);
        else
            backward_filter_kernel<false>(p, x.data(), dy.data(), c.out, c.alpha, c.beta,
                                          c.reversed);
    }
}

bool overlap(const void *a, size_t an, const void *b, size_t bn)
{
    const uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    return an && bn && a0 < b0 + bn && b0 < a0 + an;
}

/* Reads a host scalar (float for FLOAT / HALF / BFLOAT16 data); false if NULL or device. */
bool host_scalar(const void *s, float *out)
{
    if (!s || cuemu_is_device(s, sizeof(float)))
        return false;
    *out = *static_cast<const float *>(s);
    return true;
}

/* Fault injection: CUEMU_FAIL_ALGOS, a comma-separated list of direction:algorithm (fwd,
 * bwd_data, bwd_filter, fwd_bias for cudnnConvolutionBiasActivationForward; the algorithm's enum
 * value), e.g. "fwd:1,bwd_filter:0": those
 * algorithms pass the heuristics and the workspace query, then fail at execution with
 * CUDNN_STATUS_EXECUTION_FAILED, as a kernel that cannot launch on a given GPU does; DIR:v7
 * makes that direction's cudnnGet*Algorithm_v7 call fail with NOT_SUPPORTED. A malformed list
 * stops the program with a message (a test that meant to inject a fault must not pass without
 * one). */
bool injected_failure(Dir dir, int algo)
{
    static const std::vector<std::pair<int, int>> fails = [] {
        std::vector<std::pair<int, int>> v;
        const char *e = getenv("CUEMU_FAIL_ALGOS");
        if (!e || !*e)
            return v;
        std::string list(e);
        size_t pos = 0;
        while (pos <= list.size()) {
            const size_t comma = std::min(list.find(',', pos), list.size());
            const std::string item = list.substr(pos, comma - pos);
            const size_t colon = item.find(':');
            static const char *const names[4] = { "fwd", "bwd_data", "bwd_filter", "fwd_bias" };
            int d = -1;
            for (int i = 0; i < 4 && colon != std::string::npos; i++)
                if (item.compare(0, colon, names[i]) == 0)
                    d = i;
            if (d >= 0 && item.compare(colon + 1, std::string::npos, "v7") == 0) {
                v.emplace_back(d, kInjectV7);
                pos = comma + 1;
                continue;
            }
            char *end = nullptr;
            const long a = d >= 0 ? strtol(item.c_str() + colon + 1, &end, 10) : -1;
            if (d < 0 || !end || *end || end == item.c_str() + colon + 1 || a < 0 ||
                a >= kAlgoCount[d]) {
                fprintf(stderr, "cuemu cuDNN: CUEMU_FAIL_ALGOS: '%s' is not DIR:ALGO (DIR fwd, "
                                "bwd_data, bwd_filter or fwd_bias; ALGO an algorithm number or "
                                "v7)\n",
                        item.c_str());
                exit(2);
            }
            v.emplace_back(d, (int)a);
            pos = comma + 1;
        }
        return v;
    }();
    return std::find(fails.begin(), fails.end(), std::make_pair((int)dir, algo)) != fails.end();
}

/* The (problem, direction, algorithm, math) combinations executed so far. A real cuDNN may
 * compile or load a kernel the first time a combination runs (runtime-compiled engines, lazy
 * module loading: CUDA_MODULE_LOADING=LAZY is the default since CUDA 12.2), which cannot happen
 * inside a stream capture; the emulation makes every first execution inside a capture fail with
 * EXECUTION_FAILED and invalidate the capture, so that a warm-up that misses a call shows. */
bool first_execution_in_capture(const Problem &p, Dir dir, int algo)
{
    char key[256];
    snprintf(key, sizeof key, "%d/%d/%d/%d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d",
             (int)dir, algo, (int)p.math, (int)p.elem, (int)p.half_accum, (int)p.flip, p.N, p.C,
             p.H, p.W, p.K, p.R, p.S, p.pad_h, p.pad_w, p.u, p.v, p.dil_h, p.dil_w);
    static std::mutex lock;
    static std::unordered_set<std::string> seen;
    std::lock_guard<std::mutex> guard(lock);
    if (seen.count(key))
        return false;
    if (cuemu_capturing())
        return true;
    seen.insert(key);
    return false;
}

/* The shared body of the three convolution calls: checks the pointers, scalars and workspace,
 * then enqueues the work on the handle's stream. */
cudnnStatus_t convolve(cudnnHandle_t handle, const Problem &p, Dir dir, int algo,
                       const void *alpha, const void *beta, const void *in0, size_t in0_elems,
                       const void *in1, size_t in1_elems, void *out, size_t out_elems,
                       void *workspace, size_t workspace_bytes, const BiasAct &fused = BiasAct())
{
    size_t need = 0;
    const cudnnStatus_t st = algo_workspace(p, dir, algo, &need);
    if (st != CUDNN_STATUS_SUCCESS)
        return st;
    ConvWork c;
    if (!host_scalar(alpha, &c.alpha) || !host_scalar(beta, &c.beta))
        return CUDNN_STATUS_BAD_PARAM;
    const size_t E = elem_size(p.elem);
    const size_t in0_b = in0_elems * E, in1_b = in1_elems * E, out_b = out_elems * E;
    if (!in0 || !in1 || !out || !cuemu_is_device(in0, in0_b) || !cuemu_is_device(in1, in1_b) ||
        !cuemu_is_device(out, out_b))
        return CUDNN_STATUS_BAD_PARAM;
    if (workspace_bytes < need)
        return CUDNN_STATUS_BAD_PARAM;
    if (workspace_bytes && (!workspace || !cuemu_is_device(workspace, workspace_bytes)))
        return CUDNN_STATUS_BAD_PARAM;
    if (overlap(out, out_b, in0, in0_b) || overlap(out, out_b, in1, in1_b))
        return CUDNN_STATUS_BAD_PARAM; /* in-place convolution: undefined on a GPU */
    if (workspace_bytes &&
        (overlap(workspace, workspace_bytes, in0, in0_b) ||
         overlap(workspace, workspace_bytes, in1, in1_b) ||
         overlap(workspace, workspace_bytes, out, out_b)))
        return CUDNN_STATUS_BAD_PARAM; /* the kernels would overwrite a tensor */
    if (injected_failure(dir, algo))
        return CUDNN_STATUS_EXECUTION_FAILED;
    if (first_execution_in_capture(p, dir, algo)) {
        cuemu_invalidate_capture();
        return CUDNN_STATUS_EXECUTION_FAILED;
    }
    c.p = p;
    c.dir = dir;
    c.reversed = nondeterministic(dir, algo);
    c.in0 = in0;
    c.in1 = in1;
    c.out = out;
    c.ws = workspace;
    c.ws_bytes = need;
    c.fused = fused;
    if (cuemu_enqueue(handle->stream, [c] { conv_run(c); }) != cudaSuccess)
        return CUDNN_STATUS_EXECUTION_FAILED;
    return CUDNN_STATUS_SUCCESS;
}

/* A workspace query of any direction (descriptors in forward roles: x, w, conv, y). */
cudnnStatus_t workspace_size(cudnnHandle_t handle, const cudnnTensorStruct *x,
                             const cudnnFilterStruct *w, const cudnnConvolutionStruct *conv,
                             const cudnnTensorStruct *y, Dir dir, int algo, size_t *size)
{
    Problem p;
    cudnnStatus_t st = make_problem(handle, x, w, conv, y, &p);
    if (st != CUDNN_STATUS_SUCCESS)
        return st;
    if (!size)
        return CUDNN_STATUS_BAD_PARAM;
    size_t bytes = 0;
    st = algo_workspace(p, dir, algo, &bytes);
    if (st == CUDNN_STATUS_SUCCESS)
        *size = bytes;
    return st;
}

} // namespace

/* ---- handle, version, errors ---- */

/* The headers' version, or CUEMU_CUDNN_VERSION (e.g. 90100) to play an older (or newer) runtime
 * than the build's headers: the backend's version check warns for an older one. */
size_t cudnnGetVersion(void)
{
    const char *v = getenv("CUEMU_CUDNN_VERSION");
    return v && *v ? (size_t)strtoul(v, nullptr, 10) : CUDNN_VERSION;
}

size_t cudnnGetCudartVersion(void)
{
    return CUDART_VERSION;
}

const char *cudnnGetErrorString(cudnnStatus_t status)
{
    switch ((int)status) {
#define CUEMU_STATUS(s)                                                                           \
    case s: return #s;
        CUEMU_STATUS(CUDNN_STATUS_SUCCESS)
        CUEMU_STATUS(CUDNN_STATUS_NOT_INITIALIZED)
        CUEMU_STATUS(CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH)
        CUEMU_STATUS(CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH)
        CUEMU_STATUS(CUDNN_STATUS_DEPRECATED)
        CUEMU_STATUS(CUDNN_STATUS_LICENSE_ERROR)
        CUEMU_STATUS(CUDNN_STATUS_RUNTIME_IN_PROGRESS)
        CUEMU_STATUS(CUDNN_STATUS_RUNTIME_FP_OVERFLOW)
        CUEMU_STATUS(CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED)
        CUEMU_STATUS(CUDNN_STATUS_BAD_PARAM)
        CUEMU_STATUS(CUDNN_STATUS_BAD_PARAM_NULL_POINTER)
        CUEMU_STATUS(CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER)
        CUEMU_STATUS(CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED)
        CUEMU_STATUS(CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND)
        CUEMU_STATUS(CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT)
        CUEMU_STATUS(CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH)
        CUEMU_STATUS(CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH)
        CUEMU_STATUS(CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES)
        CUEMU_STATUS(CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE)
        CUEMU_STATUS(CUDNN_STATUS_BAD_PARAM_CUDA_GRAPH_MISMATCH)
        CUEMU_STATUS(CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE)
        CUEMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED)
        CUEMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN)
        CUEMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_SHAPE)
        CUEMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE)
        CUEMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_LAYOUT)
        CUEMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER)
        CUEMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART)
        CUEMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH)
        CUEMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING)
        CUEMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE)
        CUEMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT)
        CUEMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_PADDING)
        CUEMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_BAD_LAUNCH_PARAM)
        CUEMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_CUDA_GRAPH_NATIVE_API)
        CUEMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_INVALID_DYNAMIC_SHAPE)
        CUEMU_STATUS(CUDNN_STATUS_INTERNAL_ERROR)
        CUEMU_STATUS(CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED)
        CUEMU_STATUS(CUDNN_STATUS_INTERNAL_ERROR_UNEXPECTED_VALUE)
        CUEMU_STATUS(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED)
        CUEMU_STATUS(CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED)
        CUEMU_STATUS(CUDNN_STATUS_INTERNAL_ERROR_BAD_LAUNCH_PARAM)
        CUEMU_STATUS(CUDNN_STATUS_INTERNAL_ERROR_TEXTURE_CREATION_FAILED)
        CUEMU_STATUS(CUDNN_STATUS_EXECUTION_FAILED)
        CUEMU_STATUS(CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER)
        CUEMU_STATUS(CUDNN_STATUS_EXECUTION_FAILED_CUBLAS)
        CUEMU_STATUS(CUDNN_STATUS_EXECUTION_FAILED_CUDART)
        CUEMU_STATUS(CUDNN_STATUS_EXECUTION_FAILED_CURAND)
#undef CUEMU_STATUS
    case 2001: return "CUDNN_STATUS_INVALID_VALUE"; /* deprecated alias of BAD_PARAM */
    }
    return "CUDNN_STATUS_UNKNOWN";
}

cudnnStatus_t cudnnCreate(cudnnHandle_t *handle)
{
    if (!handle)
        return CUDNN_STATUS_BAD_PARAM;
    if (cuemu_capturing()) /* the real one allocates device memory: illegal in capture */
        return CUDNN_STATUS_NOT_INITIALIZED;
    const cudnnStatus_t st = create_obj(handle, Kind::HANDLE);
    if (st == CUDNN_STATUS_SUCCESS)
        (*handle)->stream = nullptr; /* the legacy default stream */
    return st;
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t handle)
{
    if (handle && live(handle, Kind::HANDLE) && cuemu_capturing())
        return CUDNN_STATUS_INTERNAL_ERROR; /* the real one synchronizes: illegal in capture */
    return destroy_obj(handle, Kind::HANDLE, "cuDNN handle");
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t streamId)
{
    if (!live(handle, Kind::HANDLE))
        return CUDNN_STATUS_BAD_PARAM;
    handle->stream = streamId;
    return CUDNN_STATUS_SUCCESS;
}

/* ---- tensor descriptors ---- */

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *tensorDesc)
{
    return create_obj(tensorDesc, Kind::TENSOR);
}

cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t tensorDesc)
{
    return destroy_obj(tensorDesc, Kind::TENSOR, "tensor descriptor");
}

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t tensorDesc,
                                         cudnnTensorFormat_t format, cudnnDataType_t dataType,
                                         int n, int c, int h, int w)
{
    if (!live(tensorDesc, Kind::TENSOR))
        return CUDNN_STATUS_BAD_PARAM;
    const cudnnStatus_t st = check_4d(format, dataType, n, c, h, w);
    if (st != CUDNN_STATUS_SUCCESS)
        return st;
    *tensorDesc = cudnnTensorStruct{ true, dataType, n, c, h, w };
    return CUDNN_STATUS_SUCCESS;
}

/* ---- filter descriptors ---- */

cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *filterDesc)
{
    return create_obj(filterDesc, Kind::FILTER);
}

cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t filterDesc)
{
    return destroy_obj(filterDesc, Kind::FILTER, "filter descriptor");
}

cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t filterDesc,
                                         cudnnDataType_t dataType, cudnnTensorFormat_t format,
                                         int k, int c, int h, int w)
{
    if (!live(filterDesc, Kind::FILTER))
        return CUDNN_STATUS_BAD_PARAM;
    const cudnnStatus_t st = check_4d(format, dataType, k, c, h, w);
    if (st != CUDNN_STATUS_SUCCESS)
        return st;
    *filterDesc = cudnnFilterStruct{ true, dataType, k, c, h, w };
    return CUDNN_STATUS_SUCCESS;
}

/* ---- convolution descriptors ---- */

cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *convDesc)
{
    const cudnnStatus_t st = create_obj(convDesc, Kind::CONV);
    if (st == CUDNN_STATUS_SUCCESS)
        (*convDesc)->math = CUDNN_DEFAULT_MATH;
    return st;
}

cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t convDesc)
{
    return destroy_obj(convDesc, Kind::CONV, "convolution descriptor");
}

cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t convDesc, int pad_h,
                                              int pad_w, int u, int v, int dilation_h,
                                              int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t computeType)
{
    if (!live(convDesc, Kind::CONV))
        return CUDNN_STATUS_BAD_PARAM;
    if (pad_h < 0 || pad_w < 0 || u <= 0 || v <= 0 || dilation_h <= 0 || dilation_w <= 0 ||
        (mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION) ||
        !data_type_valid(computeType))
        return CUDNN_STATUS_BAD_PARAM;
    cudnnConvolutionStruct &d = *convDesc;
    d.set = true;
    d.pad_h = pad_h;
    d.pad_w = pad_w;
    d.u = u;
    d.v = v;
    d.dil_h = dilation_h;
    d.dil_w = dilation_w;
    d.mode = mode;
    d.compute = computeType; /* checked against the data type where the descriptor is used */
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc,
                                          cudnnMathType_t mathType)
{
    if (!live(convDesc, Kind::CONV))
        return CUDNN_STATUS_BAD_PARAM;
    const int m = (int)mathType;
    if (m < CUDNN_DEFAULT_MATH || m > CUDNN_FMA_MATH)
        return CUDNN_STATUS_BAD_PARAM;
    convDesc->math = mathType;
    return CUDNN_STATUS_SUCCESS;
}

/* ---- activation descriptors ---- */

cudnnStatus_t cudnnCreateActivationDescriptor(cudnnActivationDescriptor_t *activationDesc)
{
    return create_obj(activationDesc, Kind::ACTIVATION);
}

cudnnStatus_t cudnnDestroyActivationDescriptor(cudnnActivationDescriptor_t activationDesc)
{
    return destroy_obj(activationDesc, Kind::ACTIVATION, "activation descriptor");
}

cudnnStatus_t cudnnSetActivationDescriptor(cudnnActivationDescriptor_t activationDesc,
                                           cudnnActivationMode_t mode,
                                           cudnnNanPropagation_t reluNanOpt, double coef)
{
    (void)coef; /* the clipped ReLU's ceiling or ELU's alpha: modes the fused call refuses */
    if (!live(activationDesc, Kind::ACTIVATION))
        return CUDNN_STATUS_BAD_PARAM;
    if ((int)mode < CUDNN_ACTIVATION_SIGMOID || (int)mode > CUDNN_ACTIVATION_SWISH ||
        (reluNanOpt != CUDNN_NOT_PROPAGATE_NAN && reluNanOpt != CUDNN_PROPAGATE_NAN))
        return CUDNN_STATUS_BAD_PARAM;
    activationDesc->set = true;
    activationDesc->mode = mode;
    return CUDNN_STATUS_SUCCESS;
}

/* ---- heuristics and workspace sizes ---- */

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc,
    const cudnnFilterDescriptor_t filterDesc, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnTensorDescriptor_t destDesc, const int requestedAlgoCount, int *returnedAlgoCount,
    cudnnConvolutionFwdAlgoPerf_t *perfResults)
{
    Problem p;
    const cudnnStatus_t st = make_problem(handle, srcDesc, filterDesc, convDesc, destDesc, &p);
    if (st != CUDNN_STATUS_SUCCESS)
        return st;
    return heuristics(p, FWD, requestedAlgoCount, returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t filterDesc,
    const cudnnTensorDescriptor_t diffDesc, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnTensorDescriptor_t gradDesc, const int requestedAlgoCount, int *returnedAlgoCount,
    cudnnConvolutionBwdDataAlgoPerf_t *perfResults)
{
    Problem p;
    const cudnnStatus_t st = make_problem(handle, gradDesc, filterDesc, convDesc, diffDesc, &p);
    if (st != CUDNN_STATUS_SUCCESS)
        return st;
    return heuristics(p, BWD_DATA, requestedAlgoCount, returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc,
    const cudnnTensorDescriptor_t diffDesc, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnFilterDescriptor_t gradDesc, const int requestedAlgoCount, int *returnedAlgoCount,
    cudnnConvolutionBwdFilterAlgoPerf_t *perfResults)
{
    Problem p;
    const cudnnStatus_t st = make_problem(handle, srcDesc, gradDesc, convDesc, diffDesc, &p);
    if (st != CUDNN_STATUS_SUCCESS)
        return st;
    return heuristics(p, BWD_FILTER, requestedAlgoCount, returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t handle,
                                                      const cudnnTensorDescriptor_t xDesc,
                                                      const cudnnFilterDescriptor_t wDesc,
                                                      const cudnnConvolutionDescriptor_t convDesc,
                                                      const cudnnTensorDescriptor_t yDesc,
                                                      cudnnConvolutionFwdAlgo_t algo,
                                                      size_t *sizeInBytes)
{
    return workspace_size(handle, xDesc, wDesc, convDesc, yDesc, FWD, (int)algo, sizeInBytes);
}

cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc,
    const cudnnTensorDescriptor_t dyDesc, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnTensorDescriptor_t dxDesc, cudnnConvolutionBwdDataAlgo_t algo,
    size_t *sizeInBytes)
{
    return workspace_size(handle, dxDesc, wDesc, convDesc, dyDesc, BWD_DATA, (int)algo,
                          sizeInBytes);
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
    const cudnnTensorDescriptor_t dyDesc, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnFilterDescriptor_t gradDesc, cudnnConvolutionBwdFilterAlgo_t algo,
    size_t *sizeInBytes)
{
    return workspace_size(handle, xDesc, gradDesc, convDesc, dyDesc, BWD_FILTER, (int)algo,
                          sizeInBytes);
}

/* ---- convolutions ---- */

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void *alpha,
                                      const cudnnTensorDescriptor_t xDesc, const void *x,
                                      const cudnnFilterDescriptor_t wDesc, const void *w,
                                      const cudnnConvolutionDescriptor_t convDesc,
                                      cudnnConvolutionFwdAlgo_t algo, void *workSpace,
                                      size_t workSpaceSizeInBytes, const void *beta,
                                      const cudnnTensorDescriptor_t yDesc, void *y)
{
    Problem p;
    const cudnnStatus_t st = make_problem(handle, xDesc, wDesc, convDesc, yDesc, &p);
    if (st != CUDNN_STATUS_SUCCESS)
        return st;
    return convolve(handle, p, FWD, (int)algo, alpha, beta, x, p.x_elems(), w, p.w_elems(), y,
                    p.y_elems(), workSpace, workSpaceSizeInBytes);
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void *alpha,
                                           const cudnnFilterDescriptor_t wDesc, const void *w,
                                           const cudnnTensorDescriptor_t dyDesc, const void *dy,
                                           const cudnnConvolutionDescriptor_t convDesc,
                                           cudnnConvolutionBwdDataAlgo_t algo, void *workSpace,
                                           size_t workSpaceSizeInBytes, const void *beta,
                                           const cudnnTensorDescriptor_t dxDesc, void *dx)
{
    Problem p;
    const cudnnStatus_t st = make_problem(handle, dxDesc, wDesc, convDesc, dyDesc, &p);
    if (st != CUDNN_STATUS_SUCCESS)
        return st;
    return convolve(handle, p, BWD_DATA, (int)algo, alpha, beta, dy, p.y_elems(), w, p.w_elems(),
                    dx, p.x_elems(), workSpace, workSpaceSizeInBytes);
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void *alpha,
                                             const cudnnTensorDescriptor_t xDesc, const void *x,
                                             const cudnnTensorDescriptor_t dyDesc, const void *dy,
                                             const cudnnConvolutionDescriptor_t convDesc,
                                             cudnnConvolutionBwdFilterAlgo_t algo,
                                             void *workSpace, size_t workSpaceSizeInBytes,
                                             const void *beta, const cudnnFilterDescriptor_t dwDesc,
                                             void *dw)
{
    Problem p;
    const cudnnStatus_t st = make_problem(handle, xDesc, dwDesc, convDesc, dyDesc, &p);
    if (st != CUDNN_STATUS_SUCCESS)
        return st;
    return convolve(handle, p, BWD_FILTER, (int)algo, alpha, beta, x, p.x_elems(), dy,
                    p.y_elems(), dw, p.w_elems(), workSpace, workSpaceSizeInBytes);
}

/* y = act(alpha1 * conv(x) + alpha2 * z + bias), rounded once: the rules in the header comment. */
cudnnStatus_t cudnnConvolutionBiasActivationForward(
    cudnnHandle_t handle, const void *alpha1, const cudnnTensorDescriptor_t xDesc, const void *x,
    const cudnnFilterDescriptor_t wDesc, const void *w,
    const cudnnConvolutionDescriptor_t convDesc, cudnnConvolutionFwdAlgo_t algo, void *workSpace,
    size_t workSpaceSizeInBytes, const void *alpha2, const cudnnTensorDescriptor_t zDesc,
    const void *z, const cudnnTensorDescriptor_t biasDesc, const void *bias,
    const cudnnActivationDescriptor_t activationDesc, const cudnnTensorDescriptor_t yDesc, void *y)
{
    Problem p;
    cudnnStatus_t st = make_problem(handle, xDesc, wDesc, convDesc, yDesc, &p);
    if (st != CUDNN_STATUS_SUCCESS)
        return st;
    if (!live(zDesc, Kind::TENSOR) || !live(biasDesc, Kind::TENSOR) ||
        !live(activationDesc, Kind::ACTIVATION) || !zDesc->set || !biasDesc->set ||
        !activationDesc->set)
        return CUDNN_STATUS_BAD_PARAM;
    if (zDesc->dt != yDesc->dt || zDesc->n != yDesc->n || zDesc->c != yDesc->c ||
        zDesc->h != yDesc->h || zDesc->w != yDesc->w)
        return CUDNN_STATUS_BAD_PARAM;
    if (biasDesc->n != 1 || biasDesc->c != p.K || biasDesc->h != 1 || biasDesc->w != 1)
        return CUDNN_STATUS_BAD_PARAM;
    if (biasDesc->dt != yDesc->dt)
        return CUDNN_STATUS_NOT_SUPPORTED;
    const cudnnActivationMode_t mode = activationDesc->mode;
    if (mode != CUDNN_ACTIVATION_RELU && mode != CUDNN_ACTIVATION_IDENTITY)
        return CUDNN_STATUS_NOT_SUPPORTED;
    if (mode == CUDNN_ACTIVATION_IDENTITY && algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM)
        return CUDNN_STATUS_NOT_SUPPORTED;
    BiasAct f;
    f.on = true;
    f.bias = bias;
    f.z = z;
    f.relu = mode == CUDNN_ACTIVATION_RELU;
    if (!host_scalar(alpha2, &f.alpha2))
        return CUDNN_STATUS_BAD_PARAM;
    const size_t E = elem_size(p.elem), y_b = p.y_elems() * E, b_b = (size_t)p.K * E;
    if (!bias || !cuemu_is_device(bias, b_b) || overlap(y, y_b, bias, b_b))
        return CUDNN_STATUS_BAD_PARAM;
    if (f.alpha2 != 0.0f &&
        (!z || !cuemu_is_device(z, y_b) || (z != y && overlap(y, y_b, z, y_b))))
        return CUDNN_STATUS_BAD_PARAM; /* z is read: y itself (in place) or apart from it */
    return convolve(handle, p, FWD_BIAS, (int)algo, alpha1, alpha2, x, p.x_elems(), w,
                    p.w_elems(), y, p.y_elems(), workSpace, workSpaceSizeInBytes, f);
}
