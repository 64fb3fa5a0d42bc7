/* The backend interface: one static const table of operations per backend (CPU reference, CUDA),
 * tensors allocated through it with a category tag so memory is accounted exactly. The model and
 * the training loop call only this interface. Argument order: outputs first, then inputs, then
 * sizes. */
#ifndef AMPBENCH_BACKEND_H
#define AMPBENCH_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "fp8_scaling.h"

#ifdef __cplusplus
extern "C" {
#endif

enum amp_dtype {
    AMP_F32,
    AMP_F16,
    AMP_BF16,
    AMP_I32,
    AMP_U8, /* the data set's pixels and labels as stored (gather_batch) */
};

/* How a conv/GEMM treats FP32 inputs: exactly, or rounded to TF32 first (tensor-core TF32 mode).
 * FP16/BF16 inputs are always multiplied exactly and accumulated in FP32. */
enum amp_math {
    AMP_MATH_F32,
    AMP_MATH_TF32,
};

/* What a tensor is for; memory is accounted per category. */
enum mem_category {
    MEM_WEIGHTS,          /* FP32 weights (master weights in mixed precision) */
    MEM_WEIGHT_COPIES,    /* low-precision copies of the weights */
    MEM_WEIGHT_GRADS,     /* weight and bias gradients */
    MEM_ACTIVATIONS,      /* inputs, layer outputs kept for backward, logits */
    MEM_ACTIVATION_GRADS, /* gradients flowing backwards through the layers */
    MEM_OPTIMIZER,        /* momentum buffers */
    MEM_WORKSPACE,        /* scratch space of the ops */
    MEM_DATA,             /* the data set on the backend (gather_batch's source), uploaded once;
                           * reported on its own, not in current_total / peak_total (a recipe's
                           * training memory, what the recipes are compared by) */
    MEM_NCATEGORIES
};

struct amp_tensor {
    void *data;                /* backend memory (host memory for the CPU backend) */
    size_t numel;
    enum amp_dtype dtype;
    enum mem_category category;
};

/* Shape of a 2-D convolution, NCHW: n images of c_in x h x w, c_out filters of c_in x kernel x
 * kernel, stride and zero padding on every side; the output is c_out x conv_out_h x conv_out_w. */
struct conv_shape {
    uint32_t n, c_in, h, w, c_out;
    uint32_t kernel, stride, pad;
};

static inline uint32_t conv_out_h(const struct conv_shape *s)
{
    return (s->h + 2 * s->pad - s->kernel) / s->stride + 1;
}

static inline uint32_t conv_out_w(const struct conv_shape *s)
{
    return (s->w + 2 * s->pad - s->kernel) / s->stride + 1;
}

/* A batch normalization layer's per-channel tensors, [c] each, every one read and written in
 * its own dtype: FP32 under every policy but naive (as cuDNN and PyTorch autocast keep them). */
struct bn_state {
    const struct amp_tensor *gamma, *beta;      /* the weight and bias parameters */
    struct amp_tensor *running_mean, *running_var;
    struct amp_tensor *save_mean, *save_invstd; /* written by a training forward for backward */
    float momentum, eps;                        /* PyTorch's defaults: 0.1, 1e-5 */
};

/* Bytes in use by category, and the high-water marks (the totals without MEM_DATA). */
struct mem_stats {
    size_t current[MEM_NCATEGORIES];
    size_t peak[MEM_NCATEGORIES];
    size_t current_total;
    size_t peak_total;
};

/* What rounding into FP16/BF16 tensors did since the counters were last read, by the memory
 * category of the destination tensor (activations, activation gradients, weight gradients,
 * weight copies, ...). */
struct numerics_counts {
    uint64_t rounded[MEM_NCATEGORIES];   /* elements rounded to a low-precision type */
    uint64_t underflow[MEM_NCATEGORIES]; /* of which non-zero before rounding and zero after */
    uint64_t overflow[MEM_NCATEGORIES];  /* of which finite before rounding and inf after */
    uint64_t updates;                    /* low-precision weight elements with lr * v != 0 */
    uint64_t swallowed;                  /* of which the stored weight did not change */
};

/* How to open a backend. */
struct backend_options {
    int threads;       /* CPU threads; <= 0: the backend's default */
    int deterministic; /* restrict to deterministic algorithms (bitwise repeatable runs) */
    int graphs;        /* capture and replay the training step (CUDA Graphs) where supported */
};

struct backend_ops;

/* A live backend: its operation table, its private state, and its memory accounting. */
struct backend {
    const struct backend_ops *ops;
    void *ctx;
    struct mem_stats mem;
    int threads;
};

struct backend_ops {
    const char *name;
    /* Optional, and callable without an open context (the registry, `ampbench info` and the
     * bench ask them before or without opening the backend). */
    /* 1 when the backend can be opened here; else 0 with a one-line reason in why
     * ("cudaGetDeviceCount: 0 devices"). NULL: always usable. */
    int (*usable)(char *why, size_t len);
    /* Lines for `ampbench info` (device, driver and library versions), each ending in a
     * newline, NUL-terminated in buf (truncated to len); returns the length it needs, as
     * snprintf. NULL: nothing to add. */
    int (*describe_device)(char *buf, size_t len);
    /* The nominal peak FP32 FLOP/s with `threads` threads (ignored where the backend does not
     * run on host threads), and in *fp16_tensor (may be NULL) the dense FP16 tensor-core peak
     * where known, else 0; `how` describes the estimate in one line. 0 when there is no device.
     * NULL: no estimate. */
    double (*peak_flops)(int threads, double *fp16_tensor, char *how, size_t len);
    /* Lifetime. */
    int (*open)(void **ctx, const struct backend_options *opts);
    void (*close)(void *ctx);
    /* Memory: raw allocations; accounting is done by tensor_alloc/tensor_free in backend.c. */
    int (*alloc)(void *ctx, void **ptr, size_t bytes);
    void (*free)(void *ctx, void *ptr);
    int (*upload)(void *ctx, void *dst, const void *src, size_t bytes);
    int (*download)(void *ctx, void *dst, const void *src, size_t bytes);
    void (*zero)(void *ctx, struct amp_tensor *t);
    /* Threads the backend really uses (for reports). */
    int (*threads)(void *ctx);

    /* Optional (NULL when unsupported): record and replay a step. step_begin returns 1 when it
     * replayed the step recorded under `key` (the caller then issues none of the step's ops),
     * or 0 when the caller must issue them, the backend possibly recording them until step_end.
     * Inputs are uploaded before step_begin; results are read after step_end. */
    int (*step_begin)(void *ctx, uint64_t key);
    void (*step_end)(void *ctx);
    /* Numerics counters: copies them to *out and resets them. */
    int (*read_counts)(void *ctx, struct numerics_counts *out);

    /* Every op below reads its input tensors in their own dtype (FP16/BF16 widened exactly),
     * multiplies and accumulates in FP32 (inputs first rounded to TF32 when math is
     * AMP_MATH_TF32 and the input is FP32), and rounds results to the output tensor's dtype
     * (round to nearest even, counted in the numerics counters). */

    /* dst = src converted to dst's dtype (same numel); between equal dtypes a copy, which rounds
     * and counts nothing. */
    void (*cast)(void *ctx, struct amp_tensor *dst, const struct amp_tensor *src);
    /* Optional: 1 when the conv ops run shape s; else 0 with a one-line reason in why ("the cpu
     * backend runs only 3x3 convolutions with stride 1 and padding 1"). NULL: every shape. The
     * conv ops below must be given only shapes it accepts. */
    int (*conv2d_supports)(void *ctx, const struct conv_shape *s, char *why, size_t len);
    /* Bytes of workspace the conv ops need for shape s run in dtype with math (as cuDNN's
     * GetWorkspaceSize: a recipe's own algorithms, not the worst dtype's); the caller allocates
     * it as a MEM_WORKSPACE tensor and passes it to both conv ops of that dtype and math. */
    size_t (*conv2d_workspace)(void *ctx, const struct conv_shape *s, enum amp_dtype dtype,
                               enum amp_math math);
    /* out[n, c_out, conv_out_h, conv_out_w] = bias[c_out] + the cross-correlation of weight
     * [c_out, c_in, kernel, kernel] with inp [n, c_in, h, w] (zero-padded by pad, at stride);
     * bias NULL: none (the sum alone is rounded). relu != 0: the ReLU that reads the output is
     * fused into the op's epilogue: out = relu_forward(out) after the rounding, the relu op's
     * bits exactly (ReLU commutes with round to nearest even); the numerics counters count the
     * rounding of the sum, before the ReLU, as the two ops would. */
    void (*conv2d_forward)(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                           const struct amp_tensor *weight, const struct amp_tensor *bias,
                           struct amp_tensor *workspace, const struct conv_shape *s,
                           enum amp_math math, int relu);
    /* dweight, dbias = gradients (overwritten); dbias NULL: the layer has no bias; dinp may be
     * NULL (not needed for the first layer). dweight may be NULL (then dbias must be too): the
     * input gradient alone, so that a layer computes its two gradients from different operands
     * in two calls (MX scaling's copies blocked along each GEMM's reduction; docs/NUMERICS.md,
     * "FP8 recipes"), with the same results as one call. */
    void (*conv2d_backward)(void *ctx, struct amp_tensor *dweight, struct amp_tensor *dbias,
                            struct amp_tensor *dinp, const struct amp_tensor *dout,
                            const struct amp_tensor *inp, const struct amp_tensor *weight,
                            struct amp_tensor *workspace, const struct conv_shape *s,
                            enum amp_math math);
    /* out = max(inp, 0) (NaN propagates); out may alias inp; same dtype. */
    void (*relu_forward)(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp);
    /* dinp = dout * (out > 0); dinp may alias dout; same dtype. */
    void (*relu_backward)(void *ctx, struct amp_tensor *dinp, const struct amp_tensor *dout,
                          const struct amp_tensor *out);
    /* out[n, m] = bias[m] + sum_k inp[n, k] * weight[m, k]. */
    void (*linear_forward)(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                           const struct amp_tensor *weight, const struct amp_tensor *bias,
                           uint32_t n, uint32_t k, uint32_t m, enum amp_math math);
    /* dinp [n, k] (may be NULL), dweight [m, k], dbias [m] (overwritten). dweight may be NULL
     * (then dbias must be too): the input gradient alone, as conv2d_backward. relu not NULL
     * (numel n * k, dinp's dtype): the output of the ReLU that the layer's input comes from
     * (inp itself, or what an FP8 layer quantized into inp), whose backward is fused into the
     * op: dinp = relu_backward(dinp, relu) after the rounding, the relu op's bits exactly; the
     * numerics counters count the rounding of the sum, before the mask, as the two ops would. */
    void (*linear_backward)(void *ctx, struct amp_tensor *dinp, struct amp_tensor *dweight,
                            struct amp_tensor *dbias, const struct amp_tensor *dout,
                            const struct amp_tensor *inp, const struct amp_tensor *weight,
                            uint32_t n, uint32_t k, uint32_t m, enum amp_math math,
                            const struct amp_tensor *relu);
    /* Softmax cross-entropy over logits [n, m] with int32 labels [n]. Writes the summed loss and
     * the count of correct argmax predictions to stats[0] and stats[1] (FP32 tensor of 2). When
     * dlogits is not NULL, writes dlogits = (softmax - onehot) * scale / n, where scale is the
     * loss scaler's current scale (1 when scaler is NULL). `compute` is AMP_F32 (every policy's
     * loss but naive's: FP32 throughout) or FP16/BF16: every intermediate (logit - max, its exp,
     * the row's sum and log, each probability, each row's loss) rounded to that dtype, as a
     * softmax run in low precision does; the batch's loss sum stays FP32. */
    void (*softmax_xent)(void *ctx, struct amp_tensor *dlogits, struct amp_tensor *stats,
                         const struct amp_tensor *logits, const struct amp_tensor *labels,
                         const struct amp_tensor *scaler, uint32_t n, uint32_t m,
                         enum amp_dtype compute);
    /* out[n, c, h/2, w/2] = the maximum of each 2x2 window (stride 2) of inp [n, c, h, w]; an odd
     * last row or column is dropped (floor, as PyTorch); NaN propagates; one dtype throughout. */
    void (*maxpool_forward)(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                            uint32_t n, uint32_t c, uint32_t h, uint32_t w);
    /* dinp [n, c, h, w] (overwritten) = each dout routed to the first maximum of its window in
     * row-major order (PyTorch's choice; a NaN counts as the maximum), 0 elsewhere. */
    void (*maxpool_backward)(void *ctx, struct amp_tensor *dinp, const struct amp_tensor *dout,
                             const struct amp_tensor *inp, uint32_t n, uint32_t c, uint32_t h,
                             uint32_t w);
    /* Global average pooling: out[n, c] = (sum of inp[n, c, 0..hw) in FP32, in index order) / hw,
     * rounded once to out's dtype. */
    void (*avgpool_forward)(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                            uint32_t n, uint32_t c, uint32_t hw);
    /* dinp[n, c, i] = dout[n, c] / hw for every i < hw. */
    void (*avgpool_backward)(void *ctx, struct amp_tensor *dinp, const struct amp_tensor *dout,
                             uint32_t n, uint32_t c, uint32_t hw);
    /* Batch normalization over inp [n, c, hw] per channel (PyTorch semantics; see struct
     * bn_state). Training (train != 0): the batch mean and biased variance (FP32 sums), saved
     * rounded to save_mean/save_invstd's dtype as mean and 1/sqrt(var + eps), and those stored
     * values used for out = (inp - mean) * invstd * gamma + beta; the running statistics become
     * (1 - momentum) * running + momentum * batch (the variance unbiased, times N / (N - 1),
     * N = n * hw). Evaluation: out from the running statistics, nothing updated. */
    void (*batchnorm_forward)(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                              struct bn_state *bn, uint32_t n, uint32_t c, uint32_t hw,
                              int train);
    /* The training-mode backward from the saved statistics: dgamma = sum(dout * xhat), dbeta =
     * sum(dout) (overwritten, in their own dtype), and dinp = gamma * invstd / N * (N * dout -
     * dbeta - xhat * dgamma), xhat = (inp - mean) * invstd. */
    void (*batchnorm_backward)(void *ctx, struct amp_tensor *dinp, struct amp_tensor *dgamma,
                               struct amp_tensor *dbeta, const struct amp_tensor *dout,
                               const struct amp_tensor *inp, const struct bn_state *bn,
                               uint32_t n, uint32_t c, uint32_t hw);
    /* images [n, pixels] FP32 = data[idx[i] * pixels + p] / 255 (FP32 division, rounded once:
     * the normalisation of harness/data/idx.c) and labels [n] int32 = data_labels[idx[i]], from
     * the data set held on the backend: data uint8 [samples * pixels], data_labels uint8
     * [samples], idx int32 [n], every idx[i] < samples (the caller checks). A batch built on the
     * backend from its index list: no pixel crosses from the host per step. */
    void (*gather_batch)(void *ctx, struct amp_tensor *images, struct amp_tensor *labels,
                         const struct amp_tensor *data, const struct amp_tensor *data_labels,
                         const struct amp_tensor *idx, uint32_t n, uint32_t pixels);
    /* out = a + b elementwise (same numel), each read in its own dtype, the FP32 sum rounded to
     * out's dtype; out may alias a or b. The residual add, and gradients summed at a fork. */
    void (*add)(void *ctx, struct amp_tensor *out, const struct amp_tensor *a,
                const struct amp_tensor *b);
    /* Loss scaling (scaler: a tensor holding a struct loss_scaler, see scaler.h).
     * unscale: grad *= 1 / scale, rounded to grad's dtype; sets found_inf when any element of
     * grad is inf or NaN. scaler_update: GradScaler's update rule (scaler_update in scaler.h). */
    void (*unscale)(void *ctx, struct amp_tensor *grad, struct amp_tensor *scaler);
    void (*scaler_update)(void *ctx, struct amp_tensor *scaler);
    /* SGD with momentum (PyTorch semantics, dampening 0): v = momentum * v + grad;
     * w -= lr * v, in FP32 arithmetic, each result rounded to its tensor's dtype. Does nothing
     * when scaler is not NULL and its found_inf is set (a skipped step). When copy is not NULL,
     * also writes copy = w in copy's dtype (the low-precision weight copy). Weights held in a
     * low-precision dtype count updates and swallowed updates (lr * v != 0, w unchanged). */
    void (*sgd_momentum)(void *ctx, struct amp_tensor *weight, struct amp_tensor *velocity,
                         struct amp_tensor *copy, const struct amp_tensor *grad,
                         const struct amp_tensor *scaler, float lr, float momentum);

    /* Optional (NULL: the backend runs no FP8 recipe): FP8 quantization of a conv or linear
     * operand (fp8_scaling.h; docs/NUMERICS.md, "FP8 recipes"). dst (FP32, src's numel) = src
     * (read in its dtype) quantized and dequantized: per tensor (delayed or current scaling),
     * fp8(src * scale) * (1 / scale), saturating, round to nearest even; under MX scaling, each
     * block of MX_BLOCK of the state's layout (fp8_mx_layout: [outer, mx_len, mx_inner], blocks
     * along mx_len at stride mx_inner) by its own power-of-two scale.
     * scaling: the recipe's (the same for every call with this state). state: a tensor holding a struct
     * fp8_tensor_state; history: delayed scaling's amax history (FP32 [history_len]), else NULL.
     * train != 0 (a training step): the state records what the quantization did and delayed
     * scaling updates its history and next scale; evaluation (train == 0) changes nothing. */
    void (*fp8_quantize)(void *ctx, struct amp_tensor *dst, const struct amp_tensor *src,
                         enum fp8_scaling scaling, struct amp_tensor *state,
                         struct amp_tensor *history, int train);

    /* Optional (NULL when unsupported): a JSON object about the backend's run so far (device,
     * library versions, the conv algorithms chosen and whether they are deterministic, graph
     * captures/replays, step time from device events, device memory from cudaMemGetInfo),
     * NUL-terminated in buf (truncated to len); returns the length it needs, as snprintf. */
    int (*describe)(void *ctx, char *buf, size_t len);
    /* Optional (NULL when unsupported): start (1) or stop (0) the profiler's capture range, for
     * `nsys profile --capture-range=cudaProfilerApi` (cudaProfilerStart/Stop). */
    void (*profile_range)(void *ctx, int start);
    /* Optional (NULL where the host clock measures the ops, as on the CPU): device time of the
     * ops issued between timer(ctx, 1, NULL) and timer(ctx, 0, &ms), from device events. */
    int (*timer)(void *ctx, int start, float *ms);
};

/* Allocates a tensor of numel elements through the backend and accounts for it. */
int tensor_alloc(struct backend *be, struct amp_tensor *t, size_t numel, enum amp_dtype dtype,
                 enum mem_category category);
void tensor_free(struct backend *be, struct amp_tensor *t);
size_t dtype_size(enum amp_dtype dtype);
/* FP16 or BF16. */
int dtype_is_lowp(enum amp_dtype dtype);
const char *dtype_name(enum amp_dtype dtype);
const char *mem_category_name(enum mem_category category);

#ifdef __cplusplus
}
#endif

#endif
