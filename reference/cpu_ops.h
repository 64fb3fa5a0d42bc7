/* The CPU reference backend's operations and shared helpers (internal to reference/): typed
 * element access with exact widening and counted rounding, used by the op files. */
#ifndef AMPBENCH_CPU_OPS_H
#define AMPBENCH_CPU_OPS_H

#include <omp.h>

#include "backend.h"
#include "lowp.h"

struct cpu_ctx {
    int threads;
    struct numerics_counts counts; /* updated atomically by the ops */
};

/* The backend's table (cpu_backend.c), which harness/registry/registry.c lists. */
extern const struct backend_ops cpu_backend_ops;

/* Parallel regions smaller than this many elements run on one thread. */
#define CPU_PARALLEL_MIN 16384

/* ---- typed access (cpu_dtype.c) ---- */
/* Element i of t as FP32 (exact for every dtype). */
float cpu_get(const struct amp_tensor *t, size_t i);
/* Element i of t = v rounded to t's dtype; what the rounding did is added to *acc. */
void cpu_set(struct amp_tensor *t, size_t i, float v, struct lowp_counts *acc);
/* dst[0..n) = t[offset..offset+n) as FP32, rounded to TF32 when tf32 (FP32 inputs only). */
void cpu_load(float *dst, const struct amp_tensor *t, size_t offset, size_t n, int tf32);
/* t[offset..offset+n) = src rounded to t's dtype; counts added to *acc. */
void cpu_store(struct amp_tensor *t, size_t offset, const float *src, size_t n,
               struct lowp_counts *acc);
/* Adds a thread's rounding counts for `rounded` elements written to dst to the counters. */
void cpu_count(struct cpu_ctx *c, const struct amp_tensor *dst, size_t rounded,
               const struct lowp_counts *acc);
/* Whether a conv/GEMM input is rounded to TF32 before use. */
static inline int cpu_tf32(const struct amp_tensor *t, enum amp_math math)
{
    return math == AMP_MATH_TF32 && t->dtype == AMP_F32;
}

/* The FP32 relu op's rule: x < 0 ? +0 : x (NaN and -0 pass). */
static inline float cpu_relu32(float x)
{
    return x < 0.0f ? 0.0f : x;
}

/* The FP32 relu_backward op's rule: y > 0 ? g : +0 (NaN y is not > 0). */
static inline float cpu_relu_grad32(float g, float y)
{
    return y > 0.0f ? g : 0.0f;
}


/* y[0..n) = relu(x) on n elements of dtype, the relu op's rule (FP32: cpu_relu32; FP16/BF16 on
 * raw bits: a negative non-NaN value becomes +0), serially (for the relu op, and for a conv's
 * fused ReLU on a piece still in cache: FP32 sums, or 16-bit values just stored). y may alias
 * x. */
void cpu_relu_piece(enum amp_dtype dtype, void *y, const void *x, size_t n);
/* cpu_store, then, relu: cpu_relu_piece on the n elements stored (after their rounding and its
 * counts, while they are in cache): a conv's fused ReLU on a 16-bit output. */
void cpu_store_relu(struct amp_tensor *t, size_t offset, const float *src, size_t n, int relu,
                    struct lowp_counts *acc);
/* dx[0..n) = y > 0 ? g : 0 on n elements of dtype (FP16/BF16 on raw bits; NaN is not > 0): the
 * relu backward's rule on one piece, serially (for the relu op, and for the linear backward's
 * fused mask on a piece still in cache). dx may alias g. */
void cpu_relu_mask(enum amp_dtype dtype, void *dx, const void *g, const void *y, size_t n);

/* ---- ops ---- */
int cpu_read_counts(void *ctx, struct numerics_counts *out);
void cpu_cast(void *ctx, struct amp_tensor *dst, const struct amp_tensor *src);
int cpu_conv2d_supports(void *ctx, const struct conv_shape *s, char *why, size_t len);
size_t cpu_conv2d_workspace(void *ctx, const struct conv_shape *s, enum amp_dtype dtype,
                            enum amp_math math);
void cpu_conv2d_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                        const struct amp_tensor *weight, const struct amp_tensor *bias,
                        struct amp_tensor *workspace, const struct conv_shape *s,
                        enum amp_math math, int relu);
void cpu_conv2d_backward(void *ctx, struct amp_tensor *dweight, struct amp_tensor *dbias,
                         struct amp_tensor *dinp, const struct amp_tensor *dout,
                         const struct amp_tensor *inp, const struct amp_tensor *weight,
                         struct amp_tensor *workspace, const struct conv_shape *s,
                         enum amp_math math);
/* The general convolution (cpu_conv_general.c): any kernel, stride and padding, by im2col and a
 * register-tiled FP32 GEMM; cpu_conv.c sends it every geometry but 3x3/stride 1/padding 1.
 * relu: the ReLU fused into the forward's epilogue. */
size_t cpu_conv_general_workspace(const struct conv_shape *s, int threads);
void cpu_conv_general_forward(struct cpu_ctx *c, struct amp_tensor *out,
                              const struct amp_tensor *inp, const struct amp_tensor *weight,
                              const struct amp_tensor *bias, struct amp_tensor *workspace,
                              const struct conv_shape *s, enum amp_math math, int relu);
void cpu_conv_general_backward(struct cpu_ctx *c, struct amp_tensor *dweight,
                               struct amp_tensor *dbias, struct amp_tensor *dinp,
                               const struct amp_tensor *dout, const struct amp_tensor *inp,
                               const struct amp_tensor *weight, struct amp_tensor *workspace,
                               const struct conv_shape *s, enum amp_math math);
void cpu_linear_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                        const struct amp_tensor *weight, const struct amp_tensor *bias,
                        uint32_t n, uint32_t k, uint32_t m, enum amp_math math);
void cpu_linear_backward(void *ctx, struct amp_tensor *dinp, struct amp_tensor *dweight,
                         struct amp_tensor *dbias, const struct amp_tensor *dout,
                         const struct amp_tensor *inp, const struct amp_tensor *weight,
                         uint32_t n, uint32_t k, uint32_t m, enum amp_math math,
                         const struct amp_tensor *relu);
void cpu_relu_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp);
void cpu_relu_backward(void *ctx, struct amp_tensor *dinp, const struct amp_tensor *dout,
                       const struct amp_tensor *out);
void cpu_softmax_xent(void *ctx, struct amp_tensor *dlogits, struct amp_tensor *stats,
                      const struct amp_tensor *logits, const struct amp_tensor *labels,
                      const struct amp_tensor *scaler, uint32_t n, uint32_t m,
                      enum amp_dtype compute);
void cpu_add(void *ctx, struct amp_tensor *out, const struct amp_tensor *a,
             const struct amp_tensor *b);
/* Batches from the data set on the backend (cpu_data.c). */
void cpu_gather_batch(void *ctx, struct amp_tensor *images, struct amp_tensor *labels,
                      const struct amp_tensor *data, const struct amp_tensor *data_labels,
                      const struct amp_tensor *idx, uint32_t n, uint32_t pixels);
/* Pooling (cpu_pool.c). */
void cpu_maxpool_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                         uint32_t n, uint32_t c, uint32_t h, uint32_t w);
void cpu_maxpool_backward(void *ctx, struct amp_tensor *dinp, const struct amp_tensor *dout,
                          const struct amp_tensor *inp, uint32_t n, uint32_t c, uint32_t h,
                          uint32_t w);
void cpu_avgpool_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                         uint32_t n, uint32_t c, uint32_t hw);
void cpu_avgpool_backward(void *ctx, struct amp_tensor *dinp, const struct amp_tensor *dout,
                          uint32_t n, uint32_t c, uint32_t hw);
/* Batch normalization (cpu_norm.c). */
void cpu_batchnorm_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                           struct bn_state *bn, uint32_t n, uint32_t c, uint32_t hw, int train);
void cpu_batchnorm_backward(void *ctx, struct amp_tensor *dinp, struct amp_tensor *dgamma,
                            struct amp_tensor *dbeta, const struct amp_tensor *dout,
                            const struct amp_tensor *inp, const struct bn_state *bn,
                            uint32_t n, uint32_t c, uint32_t hw);
void cpu_unscale(void *ctx, struct amp_tensor *grad, struct amp_tensor *scaler);
void cpu_scaler_update(void *ctx, struct amp_tensor *scaler);
void cpu_fp8_quantize(void *ctx, struct amp_tensor *dst, const struct amp_tensor *src,
                      enum fp8_scaling scaling, struct amp_tensor *state,
                      struct amp_tensor *history, int train);
void cpu_sgd_momentum(void *ctx, struct amp_tensor *weight, struct amp_tensor *velocity,
                      struct amp_tensor *copy, const struct amp_tensor *grad,
                      const struct amp_tensor *scaler, float lr, float momentum);

#endif
