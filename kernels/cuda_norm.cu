/* CUDA backend: batch normalization over inp [n, c, hw] per channel (PyTorch semantics, see
 * struct bn_state in harness/core/backend.h), as own kernels (no cuDNN). Pairs with
 * reference/cpu_norm.c.
 *
 * Training forward, per channel over its N = n * hw elements:
 *   mean = sum(x) / N, var = sum((x - mean)^2) / N (biased; two passes, FP32 sums),
 *   save_mean = mean and save_invstd = 1 / sqrt(var + eps), each rounded to its tensor's dtype,
 *   running_mean = (1 - momentum) * running_mean + momentum * mean,
 *   running_var = (1 - momentum) * running_var + momentum * sum((x - mean)^2) / (N - 1)
 *   (the unbiased variance, var * N / (N - 1)),
 *   out = (x - save_mean) * save_invstd * gamma + beta with the stored (rounded) statistics.
 * Evaluation: out = (x - running_mean) * (1 / sqrt(running_var + eps)) * gamma + beta; nothing
 * is written but out. Backward (from the saved statistics): xhat = (x - save_mean) * save_invstd,
 * dbeta = sum(dout), dgamma = sum(dout * xhat) (FP32 sums, stored rounded to their dtypes), and
 * dinp = gamma * save_invstd / N * (N * dout - dbeta - xhat * dgamma) with the FP32 sums.
 * The last step of out is one fused multiply-add (xhat * gamma + beta), as compilers contract
 * it on the CPU and nvcc on the GPU.
 *
 * Reductions are deterministic: a channel's N elements are cut into fixed chunks (their number
 * depends only on N, the channel count and the GPU's SM count), each chunk summed by one block
 * in a fixed tree (block_sum_f), the chunk sums added in chunk order by the finishing kernel.
 * Partial sums live in the backend's scratch buffer (grown on the first, eager occurrence of a
 * step, so a captured step allocates nothing). Every rounding into an FP16/BF16 tensor (out,
 * dinp, and the per-channel tensors when they are FP16/BF16) is counted by its category. */
#include <math.h>

#include "cuda_dtype.h"
#include "cuda_internal.h"

enum { BN_THREADS = 256 };

/* How a channel's elements are split: `chunks` ranges of `per` elements (the last shorter). */
struct bn_split {
    unsigned long long N; /* elements per channel: n * hw */
    unsigned long long per;
    unsigned chunks;
};

static bn_split split_of(const struct cuda_ctx *c, uint32_t n, uint32_t ch, uint32_t hw)
{
    bn_split s;
    s.N = (unsigned long long)n * hw;
    /* About two blocks per SM over all channels, each chunk at least 4096 elements. */
    const unsigned long long want = (unsigned long long)(c->sm_count > 0 ? c->sm_count : 16) * 2;
    unsigned long long chunks = ch ? (want + ch - 1) / ch : 1;
    const unsigned long long max_chunks = (s.N + 4095) / 4096;
    if (chunks > max_chunks)
        chunks = max_chunks;
    if (chunks < 1)
        chunks = 1;
    if (chunks > 65535)
        chunks = 65535; /* gridDim.y */
    s.per = (s.N + chunks - 1) / chunks;
    if (s.per == 0)
        s.per = 1;
    s.chunks = (unsigned)((s.N + s.per - 1) / s.per);
    if (s.chunks == 0)
        s.chunks = 1;
    return s;
}

/* Element e (0 <= e < N) of channel ch in [n, C, hw] layout. */
static __device__ __forceinline__ size_t bn_index(unsigned long long e, unsigned ch, unsigned C,
                                                  unsigned hw)
{
    return ((size_t)(e / hw) * C + ch) * hw + (size_t)(e % hw);
}

/* The per-channel FP32 values the kernels share, in scratch after the partial sums. */
struct bn_chan {
    float mean, invstd; /* the stored (rounded) statistics the normalization uses */
    float a, b;         /* backward: dbeta and dgamma (FP32 sums) */
};

/* Training pass 1: part[chunk * C + ch] = sum of x over the chunk. Pass 2 (mean_from != NULL):
 * the sum of (x - mean)^2, mean = (sum of pass 1's chunk sums in order) / N, recomputed by every
 * block in the same order. */
__global__ void __launch_bounds__(BN_THREADS)
    bn_stats_partial(float *part, const float *mean_from, const void *x, int x_dt, unsigned C,
                     unsigned hw, bn_split sp)
{
    __shared__ float red[32];
    const unsigned ch = blockIdx.x, chunk = blockIdx.y;
    float mean = 0.0f;
    if (mean_from) {
        float s = 0.0f;
        for (unsigned q = 0; q < sp.chunks; q++)
            s += mean_from[(size_t)q * C + ch];
        mean = s / (float)sp.N;
    }
    const unsigned long long e0 = (unsigned long long)chunk * sp.per;
    const unsigned long long e1 = e0 + sp.per < sp.N ? e0 + sp.per : sp.N;
    float acc = 0.0f;
    for (unsigned long long e = e0 + threadIdx.x; e < e1; e += blockDim.x) {
        const float v = ld(x, bn_index(e, ch, C, hw), x_dt);
        if (mean_from) {
            const float d = v - mean;
            acc += d * d;
        } else {
            acc += v;
        }
    }
    acc = block_sum_f(acc, red);
    if (threadIdx.x == 0)
        part[(size_t)chunk * C + ch] = acc;
}

/* Training: per channel, the statistics from the chunk sums; the saved and running statistics
 * written (rounded, counted); chan[ch] gets the stored mean and invstd. One thread per channel.
 * Every lane reaches the counters' flush (no early return). */
__global__ void __launch_bounds__(BN_THREADS)
    bn_stats_final(bn_chan *chan, const float *part_sum, const float *part_sq, unsigned C,
                   bn_split sp, void *save_mean, int sm_dt, int sm_cat, void *save_invstd,
                   int si_dt, int si_cat, void *run_mean, int rm_dt, int rm_cat, void *run_var,
                   int rv_dt, int rv_cat, float momentum, float eps,
                   struct numerics_counts *cnt)
{
    lp_count csm = { 0, 0 }, csi = { 0, 0 }, crm = { 0, 0 }, crv = { 0, 0 };
    const unsigned tid = blockIdx.x * blockDim.x + threadIdx.x;
    for (unsigned ch = tid; ch < C; ch += gridDim.x * blockDim.x) {
        float s = 0.0f, q = 0.0f;
        for (unsigned k = 0; k < sp.chunks; k++) {
            s += part_sum[(size_t)k * C + ch];
            q += part_sq[(size_t)k * C + ch];
        }
        const float N = (float)sp.N;
        const float mean = s / N, var = q / N;
        const float invstd = 1.0f / sqrtf(var + eps);
        chan[ch].mean = save_mean ? st(save_mean, ch, sm_dt, mean, csm) : mean;
        chan[ch].invstd = save_invstd ? st(save_invstd, ch, si_dt, invstd, csi) : invstd;
        const float unbiased = q / (float)(sp.N - 1); /* = var * N / (N - 1) */
        if (run_mean)
            st(run_mean, ch, rm_dt,
               (1.0f - momentum) * ld(run_mean, ch, rm_dt) + momentum * mean, crm);
        if (run_var)
            st(run_var, ch, rv_dt,
               (1.0f - momentum) * ld(run_var, ch, rv_dt) + momentum * unbiased, crv);
    }
    const bool first = tid == 0;
    /* (A NULL tensor comes with dtype AMP_F32: not counted.) */
    if (dt_lowp(sm_dt)) {
        if (first)
            add_rounded(cnt, sm_cat, C);
        flush_counts(cnt, sm_cat, csm);
    }
    if (dt_lowp(si_dt)) {
        if (first)
            add_rounded(cnt, si_cat, C);
        flush_counts(cnt, si_cat, csi);
    }
    if (dt_lowp(rm_dt)) {
        if (first)
            add_rounded(cnt, rm_cat, C);
        flush_counts(cnt, rm_cat, crm);
    }
    if (dt_lowp(rv_dt)) {
        if (first)
            add_rounded(cnt, rv_cat, C);
        flush_counts(cnt, rv_cat, crv);
    }
}

/* Evaluation: chan[ch] = the running mean and 1 / sqrt(running_var + eps). */
__global__ void __launch_bounds__(BN_THREADS)
    bn_eval_stats(bn_chan *chan, const void *run_mean, int rm_dt, const void *run_var, int rv_dt,
                  unsigned C, float eps)
{
    for (unsigned ch = blockIdx.x * blockDim.x + threadIdx.x; ch < C;
         ch += gridDim.x * blockDim.x) {
        chan[ch].mean = ld(run_mean, ch, rm_dt);
        chan[ch].invstd = 1.0f / sqrtf(ld(run_var, ch, rv_dt) + eps);
    }
}

/* out = (x - mean) * invstd * gamma + beta over every element. */
__global__ void __launch_bounds__(BN_THREADS)
    bn_normalize(void *out, int o_dt, int o_cat, const void *x, int x_dt, const bn_chan *chan,
                 const void *gamma, int g_dt, const void *beta, int b_dt, unsigned C, unsigned hw,
                 unsigned long long total, struct numerics_counts *cnt)
{
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    lp_count cc = { 0, 0 };
    for (size_t i = tid; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const unsigned ch = (unsigned)((i / hw) % C);
        const float xhat = (ld(x, i, x_dt) - chan[ch].mean) * chan[ch].invstd;
        const float gm = gamma ? ld(gamma, ch, g_dt) : 1.0f, bt = beta ? ld(beta, ch, b_dt) : 0.0f;
        st(out, i, o_dt, fmaf(xhat, gm, bt), cc);
    }
    if (dt_lowp(o_dt)) {
        if (tid == 0)
            add_rounded(cnt, o_cat, total);
        flush_counts(cnt, o_cat, cc);
    }
}

/* Backward pass 1: part_a[chunk * C + ch] = sum of dout, part_b = sum of dout * xhat over the
 * chunk, xhat from the saved statistics. */
__global__ void __launch_bounds__(BN_THREADS)
    bn_backward_partial(float *part_a, float *part_b, const void *dout, int g_dt, const void *x,
                        int x_dt, const void *save_mean, int sm_dt, const void *save_invstd,
                        int si_dt, unsigned C, unsigned hw, bn_split sp)
{
    __shared__ float red[32];
    const unsigned ch = blockIdx.x, chunk = blockIdx.y;
    const float mean = ld(save_mean, ch, sm_dt), invstd = ld(save_invstd, ch, si_dt);
    const unsigned long long e0 = (unsigned long long)chunk * sp.per;
    const unsigned long long e1 = e0 + sp.per < sp.N ? e0 + sp.per : sp.N;
    float a = 0.0f, b = 0.0f;
    for (unsigned long long e = e0 + threadIdx.x; e < e1; e += blockDim.x) {
        const size_t i = bn_index(e, ch, C, hw);
        const float g = ld(dout, i, g_dt);
        a += g;
        b += g * ((ld(x, i, x_dt) - mean) * invstd);
    }
    a = block_sum_f(a, red);
    b = block_sum_f(b, red);
    if (threadIdx.x == 0) {
        part_a[(size_t)chunk * C + ch] = a;
        part_b[(size_t)chunk * C + ch] = b;
    }
}

/* Backward: per channel, dbeta and dgamma from the chunk sums (stored rounded, counted; kept in
 * FP32 in chan for dinp), and the saved statistics. */
__global__ void __launch_bounds__(BN_THREADS)
    bn_backward_final(bn_chan *chan, const float *part_a, const float *part_b, unsigned C,
                      unsigned chunks, const void *save_mean, int sm_dt, const void *save_invstd,
                      int si_dt, void *dgamma, int dg_dt, int dg_cat, void *dbeta, int db_dt,
                      int db_cat, struct numerics_counts *cnt)
{
    lp_count cg = { 0, 0 }, cb = { 0, 0 };
    const unsigned tid = blockIdx.x * blockDim.x + threadIdx.x;
    for (unsigned ch = tid; ch < C; ch += gridDim.x * blockDim.x) {
        float a = 0.0f, b = 0.0f;
        for (unsigned k = 0; k < chunks; k++) {
            a += part_a[(size_t)k * C + ch];
            b += part_b[(size_t)k * C + ch];
        }
        chan[ch].mean = ld(save_mean, ch, sm_dt);
        chan[ch].invstd = ld(save_invstd, ch, si_dt);
        chan[ch].a = a;
        chan[ch].b = b;
        if (dbeta)
            st(dbeta, ch, db_dt, a, cb);
        if (dgamma)
            st(dgamma, ch, dg_dt, b, cg);
    }
    if (dt_lowp(dg_dt)) {
        if (tid == 0)
            add_rounded(cnt, dg_cat, C);
        flush_counts(cnt, dg_cat, cg);
    }
    if (dt_lowp(db_dt)) {
        if (tid == 0)
            add_rounded(cnt, db_cat, C);
        flush_counts(cnt, db_cat, cb);
    }
}

/* dinp = gamma * invstd / N * (N * dout - dbeta - xhat * dgamma). */
__global__ void __launch_bounds__(BN_THREADS)
    bn_backward_data(void *dinp, int d_dt, int d_cat, const void *dout, int g_dt, const void *x,
                     int x_dt, const bn_chan *chan, const void *gamma, int gm_dt, unsigned C,
                     unsigned hw, float N, unsigned long long total, struct numerics_counts *cnt)
{
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    lp_count cc = { 0, 0 };
    for (size_t i = tid; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const unsigned ch = (unsigned)((i / hw) % C);
        const bn_chan k = chan[ch];
        const float xhat = (ld(x, i, x_dt) - k.mean) * k.invstd;
        const float scale = (gamma ? ld(gamma, ch, gm_dt) : 1.0f) * k.invstd / N;
        st(dinp, i, d_dt, scale * (N * ld(dout, i, g_dt) - k.a - xhat * k.b), cc);
    }
    if (dt_lowp(d_dt)) {
        if (tid == 0)
            add_rounded(cnt, d_cat, total);
        flush_counts(cnt, d_cat, cc);
    }
}

static bool float_dtype(enum amp_dtype dt)
{
    return dt == AMP_F32 || dt == AMP_F16 || dt == AMP_BF16;
}

static bool chan_ok(const struct amp_tensor *t, uint32_t C)
{
    return t && t->data && float_dtype(t->dtype) && t->numel >= C;
}

/* An optional per-channel tensor: NULL, or one of C floats. */
static bool chan_opt(const struct amp_tensor *t, uint32_t C)
{
    return !t || chan_ok(t, C);
}

static void *data_of(const struct amp_tensor *t)
{
    return t ? t->data : NULL;
}

static int dt_of(const struct amp_tensor *t)
{
    return t ? (int)t->dtype : (int)AMP_F32;
}

static int cat_of(const struct amp_tensor *t)
{
    return t ? (int)t->category : 0;
}

/* Scratch: 2 * chunks * C partial sums, then C struct bn_chan (aligned). */
static bool bn_scratch(struct cuda_ctx *c, const bn_split &sp, uint32_t C, float **part_a,
                       float **part_b, bn_chan **chan)
{
    const size_t parts = (size_t)sp.chunks * C;
    const size_t chan_off = ((2 * parts * sizeof(float)) + 15) & ~(size_t)15;
    char *s = (char *)cuda_scratch(c, chan_off + (size_t)C * sizeof(bn_chan));
    if (!s)
        return false;
    *part_a = (float *)s;
    *part_b = (float *)s + parts;
    *chan = (bn_chan *)(s + chan_off);
    return true;
}

/* gamma and beta may be NULL (1 and 0), as may the running statistics in training (not
 * updated) and the saved ones (not written; the unrounded values normalize), as the reference
 * allows; evaluation needs the running statistics. */
void cuda_batchnorm_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                            struct bn_state *bn, uint32_t n, uint32_t C, uint32_t hw, int train)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    CUDA_OP_ENTER(c);
    const unsigned long long total = (unsigned long long)n * C * hw;
    if (!float_dtype(inp->dtype) || !float_dtype(out->dtype) || inp->numel < total ||
        out->numel < total || !chan_opt(bn->gamma, C) || !chan_opt(bn->beta, C) ||
        !chan_opt(bn->running_mean, C) || !chan_opt(bn->running_var, C) ||
        !chan_opt(bn->save_mean, C) || !chan_opt(bn->save_invstd, C) ||
        (!train && (!bn->running_mean || !bn->running_var))) {
        CUDA_FAIL(c, "batchnorm_forward: unsupported dtypes or sizes (%s -> %s, c %u)",
                  dtype_name(inp->dtype), dtype_name(out->dtype), C);
        return;
    }
    if (C == 0)
        return;
    const bn_split sp = split_of(c, n, C, hw);
    float *part_a, *part_b;
    bn_chan *chan;
    if (!bn_scratch(c, sp, C, &part_a, &part_b, &chan))
        return;
    const unsigned cblocks = cuda_blocks(c, C, BN_THREADS);
    if (train) {
        if (sp.N == 0) {
            CUDA_FAIL(c, "batchnorm_forward: training over an empty batch");
            return;
        }
        if (CUDA_LAUNCH(c, bn_stats_partial, dim3(C, sp.chunks), BN_THREADS, part_a,
                        (const float *)NULL, inp->data, inp->dtype, C, hw, sp) ||
            CUDA_LAUNCH(c, bn_stats_partial, dim3(C, sp.chunks), BN_THREADS, part_b,
                        (const float *)part_a, inp->data, inp->dtype, C, hw, sp) ||
            CUDA_LAUNCH(c, bn_stats_final, cblocks, BN_THREADS, chan, (const float *)part_a,
                        (const float *)part_b, C, sp, data_of(bn->save_mean), dt_of(bn->save_mean),
                        cat_of(bn->save_mean), data_of(bn->save_invstd), dt_of(bn->save_invstd),
                        cat_of(bn->save_invstd), data_of(bn->running_mean),
                        dt_of(bn->running_mean), cat_of(bn->running_mean),
                        data_of(bn->running_var), dt_of(bn->running_var),
                        cat_of(bn->running_var), bn->momentum, bn->eps, c->d_counts))
            return;
    } else if (CUDA_LAUNCH(c, bn_eval_stats, cblocks, BN_THREADS, chan, bn->running_mean->data,
                           bn->running_mean->dtype, bn->running_var->data,
                           bn->running_var->dtype, C, bn->eps)) {
        return;
    }
    if (total == 0)
        return;
    CUDA_LAUNCH(c, bn_normalize, cuda_blocks(c, total, BN_THREADS), BN_THREADS, out->data,
                out->dtype, out->category, inp->data, inp->dtype, (const bn_chan *)chan,
                (const void *)data_of(bn->gamma), dt_of(bn->gamma),
                (const void *)data_of(bn->beta), dt_of(bn->beta), C, hw, total, c->d_counts);
}

/* gamma may be NULL (1); dinp, dgamma and dbeta may be NULL (not computed). */
void cuda_batchnorm_backward(void *ctx, struct amp_tensor *dinp, struct amp_tensor *dgamma,
                             struct amp_tensor *dbeta, const struct amp_tensor *dout,
                             const struct amp_tensor *inp, const struct bn_state *bn, uint32_t n,
                             uint32_t C, uint32_t hw)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    CUDA_OP_ENTER(c);
    const unsigned long long total = (unsigned long long)n * C * hw;
    if (!float_dtype(inp->dtype) || !float_dtype(dout->dtype) ||
        (dinp && (!float_dtype(dinp->dtype) || dinp->numel < total)) || inp->numel < total ||
        dout->numel < total || !chan_opt(bn->gamma, C) || !chan_ok(bn->save_mean, C) ||
        !chan_ok(bn->save_invstd, C) || !chan_opt(dgamma, C) || !chan_opt(dbeta, C)) {
        CUDA_FAIL(c, "batchnorm_backward: unsupported dtypes or sizes (dout %s, inp %s, dinp %s, "
                  "c %u)", dtype_name(dout->dtype), dtype_name(inp->dtype),
                  dinp ? dtype_name(dinp->dtype) : "none", C);
        return;
    }
    if (C == 0)
        return;
    const bn_split sp = split_of(c, n, C, hw);
    float *part_a, *part_b;
    bn_chan *chan;
    if (!bn_scratch(c, sp, C, &part_a, &part_b, &chan))
        return;
    if (CUDA_LAUNCH(c, bn_backward_partial, dim3(C, sp.chunks), BN_THREADS, part_a, part_b,
                    dout->data, dout->dtype, inp->data, inp->dtype, bn->save_mean->data,
                    bn->save_mean->dtype, bn->save_invstd->data, bn->save_invstd->dtype, C, hw,
                    sp) ||
        CUDA_LAUNCH(c, bn_backward_final, cuda_blocks(c, C, BN_THREADS), BN_THREADS, chan,
                    (const float *)part_a, (const float *)part_b, C, sp.chunks,
                    bn->save_mean->data, bn->save_mean->dtype, bn->save_invstd->data,
                    bn->save_invstd->dtype, data_of(dgamma), dt_of(dgamma), cat_of(dgamma),
                    data_of(dbeta), dt_of(dbeta), cat_of(dbeta), c->d_counts))
        return;
    if (total == 0 || !dinp)
        return;
    CUDA_LAUNCH(c, bn_backward_data, cuda_blocks(c, total, BN_THREADS), BN_THREADS, dinp->data,
                dinp->dtype, dinp->category, dout->data, dout->dtype, inp->data, inp->dtype,
                (const bn_chan *)chan, (const void *)data_of(bn->gamma), dt_of(bn->gamma), C, hw,
                (float)sp.N, total, c->d_counts);
}
