/* The CUDA backend's private state and the functions its files share (C++/CUDA only; the one
 * public entry point is cuda_backend_ops, declared below and listed in
 * harness/registry/registry.c). One job per file, each paired with the CPU reference's file of
 * the same job: cuda_backend.cu (table, lifetime, memory, graphs, counters, device queries),
 * cuda_conv.cu (cuDNN), cuda_linear.cu (cuBLAS and the skinny FC kernels), cuda_elementwise.cu
 * (ReLU, softmax cross-entropy, add), cuda_pool.cu (max and global average pooling),
 * cuda_norm.cu (batch normalization), cuda_amp.cu (casts, unscale, SGD, scaler: one fused
 * multi-tensor kernel). */
#ifndef AMPBENCH_CUDA_INTERNAL_H
#define AMPBENCH_CUDA_INTERNAL_H

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "cuda_check.h"
#include "scaler.h"

/* The backend's table (cuda_backend.cu). */
extern "C" const struct backend_ops cuda_backend_ops;

/* printf-style text appended at buf + *pos (truncated to len; *pos counts what it needs, as
 * snprintf), for the describe entries (cuda_backend.cu). */
void cuda_append(char *buf, size_t len, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- the multi-tensor elementwise queue (cuda_amp.cu) ---- */

enum ew_kind {
    EW_CAST,         /* a = b converted to a's dtype */
    EW_UNSCALE,      /* a *= 1 / scale; found_inf on inf/NaN */
    EW_CAST_UNSCALE, /* a = b converted, then unscaled (a master-gradient cast and its unscale) */
    EW_SGD,          /* a = weight, b = velocity, c = copy (may be NULL), g = grad */
};

struct ew_job {
    int kind;
    int a_dt, a_cat, b_dt, b_cat, c_dt, c_cat, g_dt;
    void *a;
    void *b;
    void *c;
    const void *g;
    struct loss_scaler *scaler;
    unsigned long long numel;
    unsigned int block0; /* first block of this job in the launch */
    float lr, momentum;
};

enum { EW_MAX_JOBS = 8, EW_THREADS = 256, EW_CHUNK = EW_THREADS * 8 };

struct ew_batch {
    int n;
    struct ew_job job[EW_MAX_JOBS];
};

/* ---- cuDNN plans (cuda_conv.cu) ---- */

enum { CONV_FWD, CONV_BWD_DATA, CONV_BWD_FILTER, CONV_DIRS };
enum { CONV_MAX_PLANS = 32 };

/* conv_choice.algo of a forward run by our own kernel (cuda_conv.cu's direct_forward). */
enum { CONV_ALGO_DIRECT = 1000 };

struct conv_choice {
    int algo;
    size_t workspace;
    int deterministic;
    int math; /* cudnnMathType_t the algorithm runs with */
};

/* The last refusal cuDNN gave while a direction's algorithm was chosen (for the error). */
enum { CONV_REJECT_HEURISTIC = -2 }; /* algo: the cudnnGet*Algorithm_v7 call itself failed */
struct conv_reject {
    int status; /* cudnnStatus_t; 0 (SUCCESS): no refusal, every candidate failed our own rules */
    int algo;
};

struct conv_plan {
    int valid;
    int used; /* run by an op (reported by describe), not only queried for the workspace */
    struct conv_shape s;
    int dtype;        /* enum amp_dtype of x, w, y */
    int math;         /* enum amp_math (AMP_MATH_F32 for FP16/BF16) */
    size_t ws_limit;  /* the workspace bound the algorithms were chosen under */
    int ok;           /* every direction has an algorithm */
    uint64_t last_used;
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv[CONV_DIRS];
    struct conv_choice choice[CONV_DIRS];
    struct conv_reject reject[CONV_DIRS];
    /* The FP16/BF16 forward with a bias through cudnnConvolutionBiasActivationForward (sum +
     * bias in FP32, one rounding; cuda_conv.cu's fused_choose): the bias descriptor (1 x c_out x
     * 1 x 1 in the data's type), the identity activation and the choice (algo -1: the forward
     * adds the bias in the epilogue, a second rounding; fused_reject says why). */
    cudnnTensorDescriptor_t bias;
    cudnnActivationDescriptor_t identity;
    struct conv_choice fused;
    struct conv_reject fused_reject;
};

/* ---- graphs (cuda_backend.cu) ---- */

enum { CUDA_MAX_GRAPHS = 16 };

struct graph_entry {
    int used;
    uint64_t key;
    int seen;              /* issued once eagerly (the warm-up occurrence) */
    cudaGraphExec_t exec;  /* captured on the second occurrence, replayed after */
    const void *stats;     /* the step's loss stats and scaler (for the step-end prefetch) */
    const void *scaler;
};

/* What step_end copies to the host in one go (the harness reads it right after a step). */
struct prefetch {
    struct numerics_counts counts;
    float stats[2];
    struct loss_scaler scaler;
};

/* A convolution's geometry as the kernels index it (by value in every launch). */
struct conv_geom {
    unsigned N, CI, H, W, CO, K, S, P, OH, OW;
};

static inline conv_geom geom_of(const struct conv_shape *s)
{
    conv_geom g;
    g.N = s->n;
    g.CI = s->c_in;
    g.H = s->h;
    g.W = s->w;
    g.CO = s->c_out;
    g.K = s->kernel;
    g.S = s->stride;
    g.P = s->pad;
    g.OH = conv_out_h(s);
    g.OW = conv_out_w(s);
    return g;
}

/* A tensor fp8_quantize wrote under per-tensor scaling and its FP8 format; entry i's device
 * slot, d_fp8_scales[2 i] (the scale it used, then its inverse), is what the FP8 GEMMs read. */
enum { CUDA_FP8_OPERANDS = 256 };
struct cuda_fp8_operand {
    const void *data; /* NULL: forgotten (the entry is free) */
    int format;       /* enum fp8_format */
};

struct cuda_ctx {
    int device;
    int sm_count;
    char device_name[256];
    int cc_major, cc_minor;
    cudaStream_t stream;
    cublasHandle_t cublas;
    cublasLtHandle_t cublaslt; /* the FP8 GEMMs (cuda_fp8_gemm.cu) */
    cudnnHandle_t cudnn;
    void *cublas_ws;
    size_t cublas_ws_bytes;
    int deterministic;
    int graphs;

    /* The first failure (sticky). */
    int err;
    char errmsg[768];

    /* Numerics counters on the device (updated with atomics); snapshots of them land in the
     * pinned prefetch block (then the device counters are zeroed) and add up in host_counts. */
    struct numerics_counts *d_counts;
    struct numerics_counts host_counts;
    int snap_pending;      /* a counters snapshot is in flight to pf->counts */
    unsigned long long counts_reads;

    /* Step-end prefetch: counters, loss stats and scaler state copied to pinned memory after the
     * step's work, so the harness's reads after a step wait once instead of three times. Valid
     * until anything is issued again (`dirty`). */
    struct prefetch *pf;
    cudaEvent_t pf_done;
    const void *pf_stats, *pf_scaler; /* device addresses prefetched (NULL: none) */
    int dirty;                        /* work or uploads issued since the last prefetch */
    const void *step_stats, *step_scaler; /* seen by the ops of the current step */

    /* Backend-internal scratch (GEMM partial sums, FP32 GEMM outputs before rounding). */
    void *scratch;
    size_t scratch_bytes;

    /* FP8 operands (cuda_fp8_gemm.cu). */
    struct cuda_fp8_operand fp8_operands[CUDA_FP8_OPERANDS];
    unsigned n_fp8_operands;
    float *d_fp8_scales; /* [CUDA_FP8_OPERANDS][2] */
    unsigned long long fp8_gemms; /* cuBLASLt FP8 GEMMs issued (eagerly or captured) */

    /* Pinned staging for uploads: two slots, each guarded by an event. */
    void *staging[2];
    size_t staging_bytes[2];
    cudaEvent_t staging_done[2];
    int staging_next;

    /* cuDNN plans. */
    struct conv_plan plans[CONV_MAX_PLANS];
    uint64_t plan_tick;

    /* Pending elementwise jobs (issued as one launch). */
    struct ew_batch q;

    /* Graphs. */
    struct graph_entry graph[CUDA_MAX_GRAPHS];
    struct graph_entry *capturing;
    unsigned long long captures, replays, eager_steps;

    /* Step timing with CUDA events. */
    cudaEvent_t ev_start, ev_stop;
    cudaEvent_t timer_start, timer_stop; /* the timer op (micro-benchmarks), made on first use */
    int timing_open;    /* ev_start recorded, ev_stop not yet */
    int timing_pending; /* both recorded, not yet read */
    double step_ms_total;
    unsigned long long steps_timed;

    /* Device memory (cudaMemGetInfo): free at open (after the context), lowest seen, total. */
    size_t mem_total, mem_free_open, mem_free_min, mem_free_last;
    size_t internal_bytes; /* counters, cuBLAS workspace, scratch: not in the harness accounting */
};

/* ---- cuda_linear.cu ---- */
/* out [rows, cols] = sum of `splits` FP32 partial results part[s][r * stride + j] (+ bias[j]),
 * rounded once to out's dtype and counted (the GEMMs' epilogue). */
void cuda_gemm_epilogue(struct cuda_ctx *c, struct amp_tensor *out, const float *part,
                        unsigned splits, const struct amp_tensor *bias, size_t rows, size_t cols,
                        size_t stride);

/* ---- cuda_fp8_gemm.cu ---- */
struct fp8_tensor_state;
/* The device slot (scale used, its inverse) of `data` as an FP8 operand quantized with `state`
 * (device memory), registered on first use; NULL when it cannot be (inside a capture, the table
 * full, no cuBLASLt): the tensor then multiplies as FP32. */
float *cuda_fp8_operand_slot(struct cuda_ctx *c, const void *data,
                             const struct fp8_tensor_state *state);
/* Forgets `data` as an FP8 operand (freed, or quantized under MX scaling). */
void cuda_fp8_forget(struct cuda_ctx *c, const void *data);
/* How an FP8 GEMM operand, the matrix M [rows, R] (R the reduction), lies in its tensor. */
enum fp8_layout {
    FP8_ROWS,     /* t [rows, R] */
    FP8_COLS,     /* t [R, rows]: M is its transpose */
    FP8_IM2COL,   /* a conv input x [N, C, H, W]: M [N OH OW, C K K], the patches (0 in padding) */
    FP8_IM2COL_T, /* the transpose of FP8_IM2COL's matrix: [C K K, N OH OW] */
    FP8_PIXELS,   /* a conv output gradient dy [N, CO, OH, OW]: M [N OH OW, CO] */
    FP8_CHANNELS, /* the transpose of FP8_PIXELS's matrix: [CO, N OH OW] */
};
struct fp8_gemm_operand {
    const struct amp_tensor *t;
    uint32_t rows;
    enum fp8_layout layout;
};
/* Whether a and b are FP8 operands a cuBLASLt FP8 GEMM takes (registered, not both E5M2). */
bool cuda_fp8_gemm_ok(struct cuda_ctx *c, const struct fp8_gemm_operand *a,
                      const struct fp8_gemm_operand *b);
/* C [a.rows, b.rows] = a b^T (reduction R) through cuBLASLt's FP8 GEMM, both cuda_fp8_gemm_ok;
 * g: the conv geometry of the conv layouts (else unused). C in scratch, FP32, row stride *ldc.
 * NULL on failure (c->err set). */
float *cuda_fp8_gemm(struct cuda_ctx *c, const struct fp8_gemm_operand *a,
                     const struct fp8_gemm_operand *b, uint32_t R, const conv_geom &g,
                     size_t *ldc);
/* The conv forward (out = conv(inp, weight) + bias, rounded once, then the fused ReLU when
 * relu) and the filter and data gradients (dbias is the caller's) as im2col FP8 GEMMs, when the
 * operands are FP8 operands: true when done so (or failed: c->err), false with nothing done. */
bool cuda_fp8_conv_forward(struct cuda_ctx *c, struct amp_tensor *out,
                           const struct amp_tensor *inp, const struct amp_tensor *weight,
                           const struct amp_tensor *bias, const struct conv_shape *s, int relu);
bool cuda_fp8_conv_backward(struct cuda_ctx *c, struct amp_tensor *dweight,
                            struct amp_tensor *dinp, const struct amp_tensor *dout,
                            const struct amp_tensor *inp, const struct amp_tensor *weight,
                            const struct conv_shape *s);

/* ---- cuda_backend.cu ---- */
/* Scratch of at least `bytes` (grows outside capture only; growing drops captured graphs). */
void *cuda_scratch(struct cuda_ctx *c, size_t bytes);
/* Blocks for a grid-stride loop over n elements. */
unsigned cuda_blocks(const struct cuda_ctx *c, size_t n, int threads);
/* Samples cudaMemGetInfo into the peak tracking. */
void cuda_mem_sample(struct cuda_ctx *c);

/* ---- cuda_amp.cu ---- */
void cuda_ew_flush(struct cuda_ctx *c);
void cuda_cast(void *ctx, struct amp_tensor *dst, const struct amp_tensor *src);
void cuda_unscale(void *ctx, struct amp_tensor *grad, struct amp_tensor *scaler);
void cuda_scaler_update(void *ctx, struct amp_tensor *scaler);
void cuda_sgd_momentum(void *ctx, struct amp_tensor *weight, struct amp_tensor *velocity,
                       struct amp_tensor *copy, const struct amp_tensor *grad,
                       const struct amp_tensor *scaler, float lr, float momentum);

/* ---- cuda_fp8.cu ---- */
void cuda_fp8_quantize(void *ctx, struct amp_tensor *dst, const struct amp_tensor *src,
                       enum fp8_scaling scaling, struct amp_tensor *state,
                       struct amp_tensor *history, int train);

/* ---- cuda_elementwise.cu ---- */
void cuda_relu_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp);
void cuda_relu_backward(void *ctx, struct amp_tensor *dinp, const struct amp_tensor *dout,
                        const struct amp_tensor *out);
void cuda_softmax_xent(void *ctx, struct amp_tensor *dlogits, struct amp_tensor *stats,
                       const struct amp_tensor *logits, const struct amp_tensor *labels,
                       const struct amp_tensor *scaler, uint32_t n, uint32_t m,
                       enum amp_dtype compute);
void cuda_add(void *ctx, struct amp_tensor *out, const struct amp_tensor *a,
              const struct amp_tensor *b);

/* ---- cuda_data.cu ---- */
void cuda_gather_batch(void *ctx, struct amp_tensor *images, struct amp_tensor *labels,
                       const struct amp_tensor *data, const struct amp_tensor *data_labels,
                       const struct amp_tensor *idx, uint32_t n, uint32_t pixels);

/* ---- cuda_pool.cu ---- */
void cuda_maxpool_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                          uint32_t n, uint32_t c, uint32_t h, uint32_t w);
void cuda_maxpool_backward(void *ctx, struct amp_tensor *dinp, const struct amp_tensor *dout,
                           const struct amp_tensor *inp, uint32_t n, uint32_t c, uint32_t h,
                           uint32_t w);
void cuda_avgpool_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                          uint32_t n, uint32_t c, uint32_t hw);
void cuda_avgpool_backward(void *ctx, struct amp_tensor *dinp, const struct amp_tensor *dout,
                           uint32_t n, uint32_t c, uint32_t hw);

/* ---- cuda_norm.cu ---- */
void cuda_batchnorm_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                            struct bn_state *bn, uint32_t n, uint32_t c, uint32_t hw, int train);
void cuda_batchnorm_backward(void *ctx, struct amp_tensor *dinp, struct amp_tensor *dgamma,
                             struct amp_tensor *dbeta, const struct amp_tensor *dout,
                             const struct amp_tensor *inp, const struct bn_state *bn, uint32_t n,
                             uint32_t c, uint32_t hw);

/* ---- cuda_conv.cu ---- */
int cuda_conv2d_supports(void *ctx, const struct conv_shape *s, char *why, size_t len);
size_t cuda_conv2d_workspace(void *ctx, const struct conv_shape *s, enum amp_dtype dtype,
                             enum amp_math math);
void cuda_conv2d_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                         const struct amp_tensor *weight, const struct amp_tensor *bias,
                         struct amp_tensor *workspace, const struct conv_shape *s,
                         enum amp_math math, int relu);
void cuda_conv2d_backward(void *ctx, struct amp_tensor *dweight, struct amp_tensor *dbias,
                          struct amp_tensor *dinp, const struct amp_tensor *dout,
                          const struct amp_tensor *inp, const struct amp_tensor *weight,
                          struct amp_tensor *workspace, const struct conv_shape *s,
                          enum amp_math math);
void cuda_conv_plans_destroy(struct cuda_ctx *c);
/* Appends the used plans as a JSON array to buf at *pos (snprintf-style bookkeeping). */
void cuda_conv_describe(struct cuda_ctx *c, char *buf, size_t len, size_t *pos);

/* ---- cuda_linear.cu ---- */
void cuda_linear_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                         const struct amp_tensor *weight, const struct amp_tensor *bias,
                         uint32_t n, uint32_t k, uint32_t m, enum amp_math math);
void cuda_linear_backward(void *ctx, struct amp_tensor *dinp, struct amp_tensor *dweight,
                          struct amp_tensor *dbias, const struct amp_tensor *dout,
                          const struct amp_tensor *inp, const struct amp_tensor *weight,
                          uint32_t n, uint32_t k, uint32_t m, enum amp_math math,
                          const struct amp_tensor *relu);

/* Every op starts with this: issue pending elementwise jobs, and do nothing after a failure. */
#define CUDA_OP_ENTER(c)                                                                          \
    do {                                                                                          \
        if ((c)->err)                                                                             \
            return;                                                                               \
        (c)->dirty = 1;                                                                           \
        cuda_ew_flush(c);                                                                         \
        if ((c)->err)                                                                             \
            return;                                                                               \
    } while (0)

#endif
