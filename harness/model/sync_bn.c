/* --sync-bn: batch norm over the samples of every replica (PyTorch's SyncBatchNorm). Each
 * replica sums its shard per channel on the host (sum, sum of squares, element count, in
 * double), the sums are added over the replicas (c->sync->sum), and the layer normalises with
 * the global mean and biased variance (the running statistics take the unbiased one, N / (N - 1)).
 * The output comes from the backend's own batchnorm_forward, given the global statistics as
 * the statistics it normalises with; the backward adds the replicas' sum(dy) and sum(dy * xhat)
 * (each weighted by its samples, as the gradients' mean is) and forms the input gradient from
 * them. Host round trips: simple, and fine for the small presets this harness trains. */
#include <math.h>
#include <stdlib.h>

#include "error.h"
#include "layers.h"

/* The per-channel statistics of one call, on the host. */
struct channel_stats {
    float *mean, *var, *invstd;
};

static int alloc_stats(struct channel_stats *s, uint32_t ch)
{
    s->mean = malloc(3 * (size_t)ch * sizeof *s->mean);
    s->var = s->mean ? s->mean + ch : NULL;
    s->invstd = s->mean ? s->mean + 2 * ch : NULL;
    return s->mean ? AMP_OK : amp_fail(AMP_ENOMEM, "out of host memory (--sync-bn)");
}

/* (1 - momentum) * running + momentum * batch, into the running statistic t. */
static int update_running(const struct layer_call *c, struct amp_tensor *t, const float *batch,
                          float momentum, float *scratch)
{
    int rc = tensor_download_f32(c->ops, c->ctx, t, scratch);
    for (size_t k = 0; k < t->numel && rc == AMP_OK; k++)
        scratch[k] = (1.0f - momentum) * scratch[k] + momentum * batch[k];
    return rc == AMP_OK ? tensor_upload_f32(c->ops, c->ctx, t, scratch, t->numel) : rc;
}

/* A failure here is kept by the sync (its sum fails from then on) and returned by the
 * gradients call that ends the backward pass. */
void sync_bn_forward(const struct layer *l, const struct layer_call *c)
{
    const uint32_t n = c->n, ch = l->p.in.c, hw = l->p.in.h * l->p.in.w;
    struct amp_tensor x = layer_input(l, n), y = layer_view(l->y, n, l->p.out);
    const struct bn_state *bn = &l->bn;
    float *xh = malloc(x.numel * sizeof *xh);
    double *sums = calloc(2 * (size_t)ch + 1, sizeof *sums);
    struct channel_stats st = { 0 };
    int rc = xh && sums ? alloc_stats(&st, ch) : amp_fail(AMP_ENOMEM, "out of host memory");
    if (rc == AMP_OK)
        rc = tensor_download_f32(c->ops, c->ctx, &x, xh);
    for (size_t i = 0; i < n && rc == AMP_OK; i++)
        for (uint32_t k = 0; k < ch; k++)
            for (uint32_t j = 0; j < hw; j++) {
                const double v = xh[((size_t)i * ch + k) * hw + j];
                sums[k] += v;
                sums[ch + k] += v * v;
            }
    sums[2 * (size_t)ch] = (double)n * hw;
    if (rc == AMP_OK)
        rc = c->sync->sum(c->sync->user, sums, 2 * (size_t)ch + 1);
    const double count = sums[2 * (size_t)ch];
    for (uint32_t k = 0; k < ch && rc == AMP_OK; k++) {
        const double mean = sums[k] / count, var = fmax(sums[ch + k] / count - mean * mean, 0.0);
        st.mean[k] = (float)mean;
        st.var[k] = (float)var;
        st.invstd[k] = (float)(1.0 / sqrt(var + bn->eps));
    }
    /* The output: the op normalising with the global statistics (its evaluation path). */
    struct bn_state global = *bn;
    global.running_mean = bn->save_mean;
    global.running_var = bn->save_invstd;
    if (rc == AMP_OK)
        rc = tensor_upload_f32(c->ops, c->ctx, bn->save_mean, st.mean, ch);
    if (rc == AMP_OK)
        rc = tensor_upload_f32(c->ops, c->ctx, bn->save_invstd, st.var, ch);
    if (rc == AMP_OK)
        c->ops->batchnorm_forward(c->ctx, &y, &x, &global, n, ch, hw, 0);
    /* What the backward reads, and the running statistics. */
    if (rc == AMP_OK)
        rc = tensor_upload_f32(c->ops, c->ctx, bn->save_invstd, st.invstd, ch);
    if (rc == AMP_OK)
        rc = update_running(c, bn->running_mean, st.mean, bn->momentum, xh);
    for (uint32_t k = 0; k < ch && rc == AMP_OK; k++)
        st.var[k] = (float)(st.var[k] * (count / (count > 1 ? count - 1 : 1)));
    if (rc == AMP_OK)
        rc = update_running(c, bn->running_var, st.var, bn->momentum, xh);
    free(xh);
    free(sums);
    free(st.mean);
}

void sync_bn_backward(const struct layer *l, const struct layer_call *c)
{
    const uint32_t n = c->n, ch = l->p.in.c, hw = l->p.in.h * l->p.in.w;
    struct amp_tensor dy = layer_view(l->dy, n, l->p.out), x = layer_input(l, n);
    struct amp_tensor dx = layer_input_grad(l, n);
    const struct bn_state *bn = &l->bn;
    /* The local parameter gradients (the gradient all-reduce averages them, as DDP does). */
    c->ops->batchnorm_backward(c->ctx, &dx, &l->w[0].grad, &l->w[1].grad, &dy, &x, bn, n, ch, hw);
    if (!dx.data)
        return;
    const size_t numel = x.numel;
    float *xh = malloc(numel * sizeof *xh), *dyh = malloc(numel * sizeof *dyh);
    float *par = malloc(4 * (size_t)ch * sizeof *par); /* dbeta, dgamma, mean, invstd */
    float *gamma = malloc((size_t)ch * sizeof *gamma);
    double *sums = calloc(2 * (size_t)ch + 1, sizeof *sums);
    int rc = xh && dyh && par && gamma && sums ? AMP_OK
                                               : amp_fail(AMP_ENOMEM, "out of host memory");
    const struct amp_tensor *from[] = { &l->w[1].grad, &l->w[0].grad, bn->save_mean,
                                        bn->save_invstd };
    for (int k = 0; k < 4 && rc == AMP_OK; k++)
        rc = tensor_download_f32(c->ops, c->ctx, from[k], par + (size_t)k * ch);
    if (rc == AMP_OK)
        rc = tensor_download_f32(c->ops, c->ctx, bn->gamma, gamma);
    if (rc == AMP_OK)
        rc = tensor_download_f32(c->ops, c->ctx, &x, xh);
    if (rc == AMP_OK)
        rc = tensor_download_f32(c->ops, c->ctx, &dy, dyh);
    for (uint32_t k = 0; k < 2 * ch; k++) /* this replica's share of the mean gradient */
        sums[k] = (double)n * par[k];
    sums[2 * (size_t)ch] = n;
    if (rc == AMP_OK)
        rc = c->sync->sum(c->sync->user, sums, 2 * (size_t)ch + 1);
    /* dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)), the means over every
     * replica's elements, in this replica's units (its loss is the mean over its n samples). */
    const double per = (double)n * sums[2 * (size_t)ch] * hw;
    for (size_t i = 0; i < n && rc == AMP_OK; i++)
        for (uint32_t k = 0; k < ch; k++) {
            const float mean = par[2 * ch + k], invstd = par[3 * ch + k];
            const double mdb = sums[k] / per, mdg = sums[ch + k] / per;
            for (uint32_t j = 0; j < hw; j++) {
                const size_t e = ((size_t)i * ch + k) * hw + j;
                const double xhat = ((double)xh[e] - mean) * invstd;
                xh[e] = (float)(gamma[k] * invstd * (dyh[e] - mdb - xhat * mdg));
            }
        }
    if (rc == AMP_OK)
        tensor_upload_f32(c->ops, c->ctx, &dx, xh, numel);
    free(xh);
    free(dyh);
    free(par);
    free(gamma);
    free(sums);
}
