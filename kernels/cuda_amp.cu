/* CUDA backend: mixed-precision support ops (casts, loss-scale unscaling with the inf/NaN check,
 * SGD with momentum on FP32 masters writing the FP16/BF16 copies in the same pass, the scaler
 * update) as one multi-tensor kernel. The ops do not launch at once: they queue jobs, and the
 * queue is issued as a single launch when the next op of another kind arrives (every other
 * entry point flushes it first), so the unscale + inf/NaN check of all four gradients (with the
 * master-gradient casts fused into it) is one kernel and the four SGD updates another. The loss
 * scaler lives on the device: the scale and found_inf are read and written by kernels, never by
 * the host, so a step needs no synchronisation and replays from a CUDA Graph. */
#include <string.h>

#include "cuda_dtype.h"
#include "cuda_internal.h"

/* The job of this block: the last job whose first block is <= blockIdx.x. */
static __device__ __forceinline__ const ew_job &job_of_block(const ew_batch &b)
{
    int j = 0;
    for (int t = 1; t < b.n; t++)
        if (blockIdx.x >= b.job[t].block0)
            j = t;
    return b.job[j];
}

__global__ void __launch_bounds__(EW_THREADS)
    ew_kernel(const __grid_constant__ ew_batch b, struct numerics_counts *cnt)
{
    const ew_job &J = job_of_block(b);
    const unsigned long long start = (unsigned long long)(blockIdx.x - J.block0) * EW_CHUNK;
    const unsigned long long end = start + EW_CHUNK < J.numel ? start + EW_CHUNK : J.numel;
    const bool first_block = blockIdx.x == J.block0 && threadIdx.x == 0;
    lp_count ca = { 0, 0 }, cb = { 0, 0 }, cc = { 0, 0 };

    switch (J.kind) {
    case EW_CAST:
        for (unsigned long long i = start + threadIdx.x; i < end; i += EW_THREADS)
            st(J.a, i, J.a_dt, ld(J.b, i, J.b_dt), ca);
        if (first_block && dt_lowp(J.a_dt))
            add_rounded(cnt, J.a_cat, J.numel);
        break;
    case EW_UNSCALE:
    case EW_CAST_UNSCALE: {
        /* As PyTorch: the reciprocal in double, then FP32. */
        const float inv = (float)(1.0 / (double)J.scaler->scale);
        int found = 0;
        for (unsigned long long i = start + threadIdx.x; i < end; i += EW_THREADS) {
            float v = J.kind == EW_CAST_UNSCALE ? round_to(J.a_dt, ld(J.b, i, J.b_dt), ca)
                                                : ld(J.a, i, J.a_dt);
            found |= !isfinite(v);
            st(J.a, i, J.a_dt, v * inv, ca);
        }
        if (__syncthreads_or(found) && threadIdx.x == 0)
            J.scaler->found_inf = 1;
        if (first_block && dt_lowp(J.a_dt))
            add_rounded(cnt, J.a_cat, (J.kind == EW_CAST_UNSCALE ? 2ull : 1ull) * J.numel);
        break;
    }
    case EW_SGD: {
        if (J.scaler && J.scaler->found_inf)
            return; /* a skipped step (uniform over the grid): nothing changes, nothing counted */
        const bool lowp_w = dt_lowp(J.a_dt);
        unsigned int updates = 0, swallowed = 0;
        for (unsigned long long i = start + threadIdx.x; i < end; i += EW_THREADS) {
            const float w_old = ld(J.a, i, J.a_dt);
            /* v = momentum * v + grad, rounded to the velocity's dtype; the update uses the
             * stored (rounded) velocity. */
            const float v = st(J.b, i, J.b_dt, J.momentum * ld(J.b, i, J.b_dt) + ld(J.g, i, J.g_dt),
                               cb);
            const float step = J.lr * v;
            const float w = st(J.a, i, J.a_dt, w_old - step, ca);
            if (lowp_w) {
                const bool moved = step != 0.0f;
                updates += moved;
                swallowed += moved && w == w_old;
            }
            if (J.c)
                st(J.c, i, J.c_dt, w, cc);
        }
        const unsigned int u = warp_sum_u(updates), s = warp_sum_u(swallowed);
        if ((threadIdx.x & 31u) == 0u) {
            if (u)
                atomicAdd(counter(&cnt->updates), (unsigned long long)u);
            if (s)
                atomicAdd(counter(&cnt->swallowed), (unsigned long long)s);
        }
        if (first_block) {
            if (dt_lowp(J.a_dt))
                add_rounded(cnt, J.a_cat, J.numel);
            if (dt_lowp(J.b_dt))
                add_rounded(cnt, J.b_cat, J.numel);
            if (J.c && dt_lowp(J.c_dt))
                add_rounded(cnt, J.c_cat, J.numel);
        }
        break;
    }
    default:
        break;
    }
    if (dt_lowp(J.a_dt))
        flush_counts(cnt, J.a_cat, ca);
    if (J.kind == EW_SGD && dt_lowp(J.b_dt))
        flush_counts(cnt, J.b_cat, cb);
    if (J.kind == EW_SGD && J.c && dt_lowp(J.c_dt))
        flush_counts(cnt, J.c_cat, cc);
}

__global__ void scaler_update_kernel(struct loss_scaler *s)
{
    scaler_update(s);
}

/* ---- the queue ---- */

struct span {
    const char *p;
    size_t n;
};

static bool overlap(struct span a, struct span b)
{
    return a.p && b.p && a.n && b.n && a.p < b.p + b.n && b.p < a.p + a.n;
}

static struct span span_of(const void *p, int dt, unsigned long long numel)
{
    return (struct span){ (const char *)p, (size_t)numel * dtype_size((enum amp_dtype)dt) };
}

/* The memory a job writes (up to 3 spans) and reads (up to 2 spans, the scaler aside). */
static int job_writes(const ew_job *j, struct span out[3])
{
    int n = 0;
    out[n++] = span_of(j->a, j->a_dt, j->numel);
    if (j->kind == EW_SGD) {
        out[n++] = span_of(j->b, j->b_dt, j->numel);
        if (j->c)
            out[n++] = span_of(j->c, j->c_dt, j->numel);
    }
    return n;
}

static int job_reads(const ew_job *j, struct span out[2])
{
    int n = 0;
    if (j->kind == EW_CAST || j->kind == EW_CAST_UNSCALE)
        out[n++] = span_of(j->b, j->b_dt, j->numel);
    if (j->kind == EW_SGD)
        out[n++] = span_of(j->g, j->g_dt, j->numel);
    return n;
}

static bool same_class(int a, int b)
{
    return (a == EW_SGD) == (b == EW_SGD);
}

/* Whether job j may run in the same launch as every pending job (no data dependence). */
static bool independent(const struct cuda_ctx *c, const ew_job *j)
{
    struct span jw[3], jr[2];
    const int njw = job_writes(j, jw), njr = job_reads(j, jr);
    for (int q = 0; q < c->q.n; q++) {
        const ew_job *p = &c->q.job[q];
        if (!same_class(p->kind, j->kind))
            return false; /* SGD reads what unscale writes (found_inf, the gradients) */
        struct span pw[3], pr[2];
        const int npw = job_writes(p, pw), npr = job_reads(p, pr);
        for (int a = 0; a < njw; a++) {
            for (int b = 0; b < npw; b++)
                if (overlap(jw[a], pw[b]))
                    return false;
            for (int b = 0; b < npr; b++)
                if (overlap(jw[a], pr[b]))
                    return false;
        }
        for (int a = 0; a < njr; a++)
            for (int b = 0; b < npw; b++)
                if (overlap(jr[a], pw[b]))
                    return false;
    }
    return true;
}

void cuda_ew_flush(struct cuda_ctx *c)
{
    if (c->q.n == 0)
        return;
    unsigned long long blocks = 0;
    for (int i = 0; i < c->q.n; i++) {
        c->q.job[i].block0 = (unsigned int)blocks;
        blocks += (c->q.job[i].numel + EW_CHUNK - 1) / EW_CHUNK;
    }
    const ew_batch batch = c->q;
    c->q.n = 0;
    if (c->err)
        return;
    if (blocks > 0x7FFFFFFFull) {
        CUDA_FAIL(c, "elementwise launch of %llu blocks is too large", blocks);
        return;
    }
    CUDA_LAUNCH(c, ew_kernel, (unsigned int)blocks, EW_THREADS, batch, c->d_counts);
}

static void push(struct cuda_ctx *c, const ew_job *j)
{
    if (c->err || j->numel == 0)
        return;
    c->dirty = 1;
    if (j->scaler)
        c->step_scaler = j->scaler;
    if (c->q.n == EW_MAX_JOBS || !independent(c, j))
        cuda_ew_flush(c);
    c->q.job[c->q.n++] = *j;
}

void cuda_cast(void *ctx, struct amp_tensor *dst, const struct amp_tensor *src)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    const size_t n = src->numel < dst->numel ? src->numel : dst->numel;
    if (dst->dtype == src->dtype) { /* a copy: nothing is rounded, nothing counted */
        if (c->err || n == 0 || dst->data == src->data)
            return;
        c->dirty = 1;
        cuda_ew_flush(c); /* pending jobs come first in stream order */
        CUDA_CHECK(c, cudaMemcpyAsync(dst->data, src->data, n * dtype_size(src->dtype),
                                      cudaMemcpyDeviceToDevice, c->stream));
        return;
    }
    ew_job j;
    memset(&j, 0, sizeof j);
    j.kind = EW_CAST;
    j.a = dst->data;
    j.a_dt = dst->dtype;
    j.a_cat = dst->category;
    j.b = src->data;
    j.b_dt = src->dtype;
    j.b_cat = src->category;
    j.numel = n;
    push(c, &j);
}

void cuda_unscale(void *ctx, struct amp_tensor *grad, struct amp_tensor *scaler)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    if (c->err || !scaler || grad->numel == 0)
        return;
    c->dirty = 1;
    c->step_scaler = scaler->data;
    /* The cast that produced this gradient (the FP32 master gradient) is still pending: fuse. */
    if (c->q.n > 0) {
        ew_job *last = &c->q.job[c->q.n - 1];
        if (last->kind == EW_CAST && last->a == grad->data && last->a_dt == (int)grad->dtype &&
            last->numel == grad->numel) {
            last->kind = EW_CAST_UNSCALE;
            last->scaler = (struct loss_scaler *)scaler->data;
            return;
        }
    }
    ew_job j;
    memset(&j, 0, sizeof j);
    j.kind = EW_UNSCALE;
    j.a = grad->data;
    j.a_dt = grad->dtype;
    j.a_cat = grad->category;
    j.scaler = (struct loss_scaler *)scaler->data;
    j.numel = grad->numel;
    push(c, &j);
}

void cuda_sgd_momentum(void *ctx, struct amp_tensor *weight, struct amp_tensor *velocity,
                       struct amp_tensor *copy, const struct amp_tensor *grad,
                       const struct amp_tensor *scaler, float lr, float momentum)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    ew_job j;
    memset(&j, 0, sizeof j);
    j.kind = EW_SGD;
    j.a = weight->data;
    j.a_dt = weight->dtype;
    j.a_cat = weight->category;
    j.b = velocity->data;
    j.b_dt = velocity->dtype;
    j.b_cat = velocity->category;
    if (copy) {
        j.c = copy->data;
        j.c_dt = copy->dtype;
        j.c_cat = copy->category;
    }
    j.g = grad->data;
    j.g_dt = grad->dtype;
    j.scaler = scaler ? (struct loss_scaler *)scaler->data : NULL;
    j.numel = weight->numel;
    j.lr = lr;
    j.momentum = momentum;
    push(c, &j);
}

void cuda_scaler_update(void *ctx, struct amp_tensor *scaler)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    CUDA_OP_ENTER(c);
    c->step_scaler = scaler->data;
    CUDA_LAUNCH(c, scaler_update_kernel, 1, 1, (struct loss_scaler *)scaler->data);
}
