/* The CPU reference backend's operations (internal to reference/): shared by the table in
 * cpu_backend.c and the op files. */
#ifndef AMPBENCH_CPU_OPS_H
#define AMPBENCH_CPU_OPS_H

#include <omp.h>

#include "backend.h"

struct cpu_ctx {
    int threads;
};

/* Parallel regions smaller than this many elements run on one thread. */
#define CPU_PARALLEL_MIN 16384

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
                      uint32_t n, uint32_t m, float grad_scale);
void cpu_sgd_momentum(void *ctx, struct amp_tensor *weight, struct amp_tensor *velocity,
                      const struct amp_tensor *grad, float lr, float momentum);

#endif
