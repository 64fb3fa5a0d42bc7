/* The CPU reference backend: its operation table, lifetime, host memory and threads. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_ops.h"
#include "error.h"

static int cpu_open(void **ctx, const struct backend_options *opts)
{
    struct cpu_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return AMP_ENOMEM;
    /* Always deterministic (every output has one owner thread); no step capture. */
    c->threads = opts->threads > 0 ? opts->threads : omp_get_max_threads();
    *ctx = c;
    return AMP_OK;
}

static void cpu_close(void *ctx)
{
    free(ctx);
}

static int cpu_alloc(void *ctx, void **ptr, size_t bytes)
{
    (void)ctx;
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p)
        return AMP_ENOMEM;
    /* Deterministic contents (and pages touched now, not inside a timed step); no op relies on
     * it: the gradient tests poison workspaces to prove that. */
    memset(p, 0, rounded);
    *ptr = p;
    return AMP_OK;
}

static void cpu_free(void *ctx, void *ptr)
{
    (void)ctx;
    free(ptr);
}

static int cpu_copy(void *ctx, void *dst, const void *src, size_t bytes)
{
    (void)ctx;
    memcpy(dst, src, bytes);
    return AMP_OK;
}

static void cpu_zero(void *ctx, struct amp_tensor *t)
{
    (void)ctx;
    memset(t->data, 0, t->numel * dtype_size(t->dtype));
}

static int cpu_threads(void *ctx)
{
    return ((struct cpu_ctx *)ctx)->threads;
}

const struct backend_ops cpu_backend_ops = {
    .name = "cpu",
    .open = cpu_open,
    .close = cpu_close,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .zero = cpu_zero,
    .threads = cpu_threads,
    .read_counts = cpu_read_counts,
    .cast = cpu_cast,
    .conv2d_workspace = cpu_conv2d_workspace,
    .conv2d_forward = cpu_conv2d_forward,
    .conv2d_backward = cpu_conv2d_backward,
    .relu_forward = cpu_relu_forward,
    .relu_backward = cpu_relu_backward,
    .linear_forward = cpu_linear_forward,
    .linear_backward = cpu_linear_backward,
    .softmax_xent = cpu_softmax_xent,
    .unscale = cpu_unscale,
    .scaler_update = cpu_scaler_update,
    .sgd_momentum = cpu_sgd_momentum,
    .describe = NULL,
};
