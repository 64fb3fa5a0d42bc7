/* CPU reference: mixed-precision support ops: casts, loss-scale unscaling with the inf/NaN check,
 * the scaler update, and the numerics counters. */
#include <math.h>
#include <string.h>

#include "cpu_ops.h"
#include "scaler.h"

/* Elements converted per piece (on the stack) by the chunked ops below. */
enum { CHUNK = 4096 };

int cpu_read_counts(void *ctx, struct numerics_counts *out)
{
    struct cpu_ctx *c = ctx;
    *out = c->counts;
    memset(&c->counts, 0, sizeof c->counts);
    return 0;
}

void cpu_cast(void *ctx, struct amp_tensor *dst, const struct amp_tensor *src)
{
    struct cpu_ctx *c = ctx;
    const size_t n = src->numel;
    if (dst->dtype == src->dtype) { /* a copy: nothing is rounded, nothing counted */
        if (dst->data != src->data)
            memcpy(dst->data, src->data, n * dtype_size(src->dtype));
        return;
    }
#pragma omp parallel num_threads(c->threads) if (n >= CPU_PARALLEL_MIN)
    {
        float buf[CHUNK];
        struct lowp_counts counts = { 0 };
#pragma omp for schedule(static)
        for (size_t c0 = 0; c0 < n; c0 += CHUNK) {
            const size_t len = n - c0 < CHUNK ? n - c0 : CHUNK;
            cpu_load(buf, src, c0, len, 0);
            cpu_store(dst, c0, buf, len, &counts);
        }
        cpu_count(c, dst, 0, &counts);
    }
    cpu_count(c, dst, n, &(struct lowp_counts){ 0 });
}

void cpu_unscale(void *ctx, struct amp_tensor *grad, struct amp_tensor *scaler)
{
    struct cpu_ctx *c = ctx;
    struct loss_scaler *s = scaler->data;
    /* As PyTorch: the reciprocal in double, then FP32. */
    const float inv = (float)(1.0 / (double)s->scale);
    const size_t n = grad->numel;
    int found = 0;
#pragma omp parallel num_threads(c->threads) if (n >= CPU_PARALLEL_MIN) reduction(| : found)
    {
        float buf[CHUNK];
        struct lowp_counts counts = { 0 };
#pragma omp for schedule(static)
        for (size_t c0 = 0; c0 < n; c0 += CHUNK) {
            const size_t len = n - c0 < CHUNK ? n - c0 : CHUNK;
            cpu_load(buf, grad, c0, len, 0);
            for (size_t i = 0; i < len; i++) {
                found |= !isfinite(buf[i]);
                buf[i] *= inv;
            }
            cpu_store(grad, c0, buf, len, &counts);
        }
        cpu_count(c, grad, 0, &counts);
    }
    cpu_count(c, grad, n, &(struct lowp_counts){ 0 });
    if (found)
        s->found_inf = 1;
}

void cpu_scaler_update(void *ctx, struct amp_tensor *scaler)
{
    (void)ctx;
    scaler_update(scaler->data);
}
