/* The CPU reference backend: its operation table, lifetime, host memory, threads and peak
 * FLOP/s estimate. */
#include <omp.h>
#include <stdio.h>
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

/* threads x FP32 vector lanes x 2 (FMA) x FMA units x clock (the first "cpu MHz" of
 * /proc/cpuinfo, else 2 GHz); no FP16 tensor units. */
static double cpu_peak_flops(int threads, double *fp16_tensor, char *how, size_t len)
{
    int lanes = 4, units = 1;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f"))
        lanes = 16, units = 2;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        lanes = 8, units = 2;
#endif
    double mhz = 0.0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "cpu MHz", 7) == 0) {
            mhz = atof(strchr(line, ':') + 1);
            break;
        }
    if (f)
        fclose(f);
    if (mhz <= 0.0)
        mhz = 2000.0;
    const double peak = (double)threads * lanes * 2.0 * units * mhz * 1e6;
    if (fp16_tensor)
        *fp16_tensor = 0.0;
    snprintf(how, len, "%d cores x %d FP32 lanes x 2 (FMA) x %d FMA units x %.2f GHz = %.0f GFLOP/s",
             threads, lanes, units, mhz / 1000.0, peak / 1e9);
    return peak;
}

const struct backend_ops cpu_backend_ops = {
    .name = "cpu",
    .peak_flops = cpu_peak_flops,
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
    .conv2d_supports = cpu_conv2d_supports,
    .conv2d_workspace = cpu_conv2d_workspace,
    .conv2d_forward = cpu_conv2d_forward,
    .conv2d_backward = cpu_conv2d_backward,
    .relu_forward = cpu_relu_forward,
    .relu_backward = cpu_relu_backward,
    .linear_forward = cpu_linear_forward,
    .linear_backward = cpu_linear_backward,
    .softmax_xent = cpu_softmax_xent,
    .maxpool_forward = cpu_maxpool_forward,
    .maxpool_backward = cpu_maxpool_backward,
    .avgpool_forward = cpu_avgpool_forward,
    .avgpool_backward = cpu_avgpool_backward,
    .batchnorm_forward = cpu_batchnorm_forward,
    .batchnorm_backward = cpu_batchnorm_backward,
    .gather_batch = cpu_gather_batch,
    .add = cpu_add,
    .unscale = cpu_unscale,
    .scaler_update = cpu_scaler_update,
    .sgd_momentum = cpu_sgd_momentum,
    .fp8_quantize = cpu_fp8_quantize,
    .describe = NULL,
};
