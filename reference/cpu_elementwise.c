/* CPU reference: elementwise and per-sample ops: ReLU, softmax cross-entropy, SGD momentum. */
#include <math.h>

#include "cpu_ops.h"

void cpu_relu_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp)
{
    const float *x = inp->data;
    float *y = out->data;
    const size_t n = inp->numel;
#pragma omp parallel for simd schedule(static) num_threads(((struct cpu_ctx *)ctx)->threads) \
    if (n >= CPU_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void cpu_relu_backward(void *ctx, struct amp_tensor *dinp, const struct amp_tensor *dout,
                       const struct amp_tensor *out)
{
    const float *g = dout->data, *y = out->data;
    float *dx = dinp->data;
    const size_t n = dout->numel;
#pragma omp parallel for simd schedule(static) num_threads(((struct cpu_ctx *)ctx)->threads) \
    if (n >= CPU_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        dx[i] = y[i] > 0.0f ? g[i] : 0.0f;
}

void cpu_softmax_xent(void *ctx, struct amp_tensor *dlogits, struct amp_tensor *stats,
                      const struct amp_tensor *logits, const struct amp_tensor *labels,
                      uint32_t n, uint32_t m, float grad_scale)
{
    (void)ctx;
    const float *z = logits->data;
    const int32_t *y = labels->data;
    float *dz = dlogits ? dlogits->data : NULL;
    double loss_sum = 0.0;
    uint32_t correct = 0;
    const float g = grad_scale / (float)n;
    for (uint32_t i = 0; i < n; i++) {
        const float *zi = z + (size_t)i * m;
        uint32_t argmax = 0;
        for (uint32_t j = 1; j < m; j++)
            if (zi[j] > zi[argmax])
                argmax = j;
        const float zmax = zi[argmax];
        float sum = 0.0f;
        for (uint32_t j = 0; j < m; j++)
            sum += expf(zi[j] - zmax);
        loss_sum += (double)(logf(sum) + zmax - zi[y[i]]);
        correct += argmax == (uint32_t)y[i];
        if (!dz)
            continue;
        const float inv = 1.0f / sum;
        for (uint32_t j = 0; j < m; j++) {
            float p = expf(zi[j] - zmax) * inv;
            dz[(size_t)i * m + j] = (p - (j == (uint32_t)y[i] ? 1.0f : 0.0f)) * g;
        }
    }
    float *st = stats->data;
    st[0] = (float)loss_sum;
    st[1] = (float)correct;
}

void cpu_sgd_momentum(void *ctx, struct amp_tensor *weight, struct amp_tensor *velocity,
                      const struct amp_tensor *grad, float lr, float momentum)
{
    float *w = weight->data, *v = velocity->data;
    const float *g = grad->data;
    const size_t n = weight->numel;
#pragma omp parallel for simd schedule(static) num_threads(((struct cpu_ctx *)ctx)->threads) \
    if (n >= CPU_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        v[i] = momentum * v[i] + g[i];
        w[i] -= lr * v[i];
    }
}
