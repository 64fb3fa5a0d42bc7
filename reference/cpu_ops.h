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

/* ---- ops ---- */
int cpu_read_counts(void *ctx, struct numerics_counts *out);
void cpu_cast(void *ctx, struct amp_tensor *dst, const struct amp_tensor *src);
int cpu_conv2d_supports(void *ctx, const struct conv_shape *s, char *why, size_t len);
size_t cpu_conv2d_workspace(void *ctx, const struct conv_shape *s);
void cpu_conv2d_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                        const struct amp_tensor *weight, const struct amp_tensor *bias,
                        struct amp_tensor *workspace, const struct conv_shape *s,
                        enum amp_math math);
void cpu_conv2d_backward(void *ctx, struct amp_tensor *dweight, struct amp_tensor *dbias,
                         struct amp_tensor *dinp, const struct amp_tensor *dout,
                         const struct amp_tensor *inp, const struct amp_tensor *weight,
                         struct amp_tensor *workspace, const struct conv_shape *s,
                         enum amp_math math);
void cpu_linear_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                        const struct amp_tensor *weight, const struct amp_tensor *bias,
                        uint32_t n, uint32_t k, uint32_t m, enum amp_math math);
void cpu_linear_backward(void *ctx, struct amp_tensor *dinp, struct amp_tensor *dweight,
                         struct amp_tensor *dbias, const struct amp_tensor *dout,
                         const struct amp_tensor *inp, const struct amp_tensor *weight,
                         uint32_t n, uint32_t k, uint32_t m, enum amp_math math);
void cpu_relu_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp);
void cpu_relu_backward(void *ctx, struct amp_tensor *dinp, const struct amp_tensor *dout,
                       const struct amp_tensor *out);
void cpu_softmax_xent(void *ctx, struct amp_tensor *dlogits, struct amp_tensor *stats,
                      const struct amp_tensor *logits, const struct amp_tensor *labels,
                      const struct amp_tensor *scaler, uint32_t n, uint32_t m);
void cpu_unscale(void *ctx, struct amp_tensor *grad, struct amp_tensor *scaler);
void cpu_scaler_update(void *ctx, struct amp_tensor *scaler);
void cpu_sgd_momentum(void *ctx, struct amp_tensor *weight, struct amp_tensor *velocity,
                      struct amp_tensor *copy, const struct amp_tensor *grad,
                      const struct amp_tensor *scaler, float lr, float momentum);

#endif
