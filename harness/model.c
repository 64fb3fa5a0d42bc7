/* The seed network on the backend interface: allocation, PyTorch-default init, forward, backward
 * and the SGD momentum update. */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

const char *seed_param_name(enum seed_param p)
{
    static const char *const names[SEED_NPARAMS] = {
        [PARAM_CONV_W] = "conv.weight",
        [PARAM_CONV_B] = "conv.bias",
        [PARAM_FC_W] = "fc.weight",
        [PARAM_FC_B] = "fc.bias",
    };
    return names[p];
}

static uint32_t fc_inputs(const struct seed_shape *s)
{
    return s->channels * s->h * s->w;
}

size_t seed_param_numel(const struct seed_shape *s, enum seed_param p)
{
    switch (p) {
    case PARAM_CONV_W: return (size_t)s->channels * s->c_in * 9;
    case PARAM_CONV_B: return s->channels;
    case PARAM_FC_W: return (size_t)s->classes * fc_inputs(s);
    case PARAM_FC_B: return s->classes;
    case SEED_NPARAMS: break;
    }
    return 0;
}

static struct conv_shape conv_shape_of(const struct seed_shape *s, uint32_t n)
{
    return (struct conv_shape){ .n = n, .c_in = s->c_in, .h = s->h, .w = s->w,
                                .c_out = s->channels };
}

int seed_net_create(struct seed_net *net, struct backend *be, const struct seed_shape *shape)
{
    memset(net, 0, sizeof *net);
    net->be = be;
    net->shape = *shape;
    const struct seed_shape *s = shape;
    const size_t act = (size_t)s->batch * fc_inputs(s);
    int rc = AMP_OK;
    for (int p = 0; p < SEED_NPARAMS && rc == AMP_OK; p++) {
        size_t n = seed_param_numel(s, p);
        rc = tensor_alloc(be, &net->param[p], n, AMP_F32, MEM_WEIGHTS);
        if (rc == AMP_OK)
            rc = tensor_alloc(be, &net->grad[p], n, AMP_F32, MEM_WEIGHT_GRADS);
        if (rc == AMP_OK)
            rc = tensor_alloc(be, &net->velocity[p], n, AMP_F32, MEM_OPTIMIZER);
    }
    if (rc == AMP_OK)
        rc = tensor_alloc(be, &net->input, (size_t)s->batch * s->c_in * s->h * s->w, AMP_F32,
                          MEM_ACTIVATIONS);
    if (rc == AMP_OK)
        rc = tensor_alloc(be, &net->labels, s->batch, AMP_I32, MEM_ACTIVATIONS);
    if (rc == AMP_OK)
        rc = tensor_alloc(be, &net->act, act, AMP_F32, MEM_ACTIVATIONS);
    if (rc == AMP_OK)
        rc = tensor_alloc(be, &net->logits, (size_t)s->batch * s->classes, AMP_F32,
                          MEM_ACTIVATIONS);
    if (rc == AMP_OK)
        rc = tensor_alloc(be, &net->stats, 2, AMP_F32, MEM_ACTIVATIONS);
    if (rc == AMP_OK) {
        const struct conv_shape cs = conv_shape_of(s, s->batch);
        const size_t ws = be->ops->conv2d_workspace(be->ctx, &cs);
        rc = tensor_alloc(be, &net->conv_ws, (ws + sizeof(float) - 1) / sizeof(float), AMP_F32,
                          MEM_WORKSPACE);
    }
    if (rc == AMP_OK)
        rc = tensor_alloc(be, &net->dlogits, (size_t)s->batch * s->classes, AMP_F32,
                          MEM_ACTIVATION_GRADS);
    if (rc == AMP_OK)
        rc = tensor_alloc(be, &net->dact, act, AMP_F32, MEM_ACTIVATION_GRADS);
    if (rc != AMP_OK)
        seed_net_destroy(net);
    return rc;
}

void seed_net_destroy(struct seed_net *net)
{
    struct backend *be = net->be;
    if (!be)
        return;
    for (int p = 0; p < SEED_NPARAMS; p++) {
        tensor_free(be, &net->param[p]);
        tensor_free(be, &net->grad[p]);
        tensor_free(be, &net->velocity[p]);
    }
    struct amp_tensor *acts[] = { &net->input, &net->labels, &net->act, &net->logits,
                                  &net->stats, &net->conv_ws, &net->dlogits, &net->dact };
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
        tensor_free(be, acts[i]);
    net->be = NULL;
}

int seed_net_init(struct seed_net *net, struct rng *rng)
{
    const struct seed_shape *s = &net->shape;
    const float fan_in[SEED_NPARAMS] = {
        [PARAM_CONV_W] = (float)(s->c_in * 9), [PARAM_CONV_B] = (float)(s->c_in * 9),
        [PARAM_FC_W] = (float)fc_inputs(s), [PARAM_FC_B] = (float)fc_inputs(s),
    };
    for (int p = 0; p < SEED_NPARAMS; p++) {
        size_t n = seed_param_numel(s, p);
        float *host = malloc(n * sizeof *host);
        if (!host)
            return amp_fail(AMP_ENOMEM, "out of host memory initialising %s", seed_param_name(p));
        /* kaiming_uniform(a = sqrt(5)): gain sqrt(2 / (1 + 5)), bound gain * sqrt(3 / fan_in)
         * = 1 / sqrt(fan_in); the bias bound is 1 / sqrt(fan_in) too. */
        const float bound = 1.0f / sqrtf(fan_in[p]);
        for (size_t i = 0; i < n; i++)
            host[i] = rng_uniform(rng, -bound, bound);
        int rc = net->be->ops->upload(net->be->ctx, net->param[p].data, host, n * sizeof *host);
        free(host);
        if (rc != AMP_OK)
            return rc;
        net->be->ops->zero(net->be->ctx, &net->velocity[p]);
    }
    return AMP_OK;
}

int seed_net_set_batch(struct seed_net *net, const float *images, const int32_t *labels,
                       uint32_t n)
{
    const struct seed_shape *s = &net->shape;
    const struct backend_ops *ops = net->be->ops;
    int rc = ops->upload(net->be->ctx, net->input.data, images,
                         (size_t)n * s->c_in * s->h * s->w * sizeof(float));
    if (rc == AMP_OK)
        rc = ops->upload(net->be->ctx, net->labels.data, labels, (size_t)n * sizeof(int32_t));
    return rc;
}

int seed_net_step(struct seed_net *net, uint32_t n, int train, float lr, float momentum,
                  struct batch_stats *out)
{
    const struct seed_shape *s = &net->shape;
    const struct backend_ops *ops = net->be->ops;
    void *ctx = net->be->ctx;
    const struct conv_shape cs = conv_shape_of(s, n);
    const uint32_t k = fc_inputs(s), m = s->classes;
    const enum amp_math math = AMP_MATH_F32;
    /* Views of the batch-sized activations cut to this batch (the last one may be partial). */
    struct amp_tensor act = net->act, dact = net->dact;
    act.numel = dact.numel = (size_t)n * k;

    ops->conv2d_forward(ctx, &act, &net->input, &net->param[PARAM_CONV_W],
                        &net->param[PARAM_CONV_B], &net->conv_ws, &cs, math);
    ops->relu_forward(ctx, &act, &act);
    ops->linear_forward(ctx, &net->logits, &act, &net->param[PARAM_FC_W],
                        &net->param[PARAM_FC_B], n, k, m, math);
    ops->softmax_xent(ctx, train ? &net->dlogits : NULL, &net->stats, &net->logits, &net->labels,
                      n, m, 1.0f);
    if (train) {
        ops->linear_backward(ctx, &dact, &net->grad[PARAM_FC_W], &net->grad[PARAM_FC_B],
                             &net->dlogits, &act, &net->param[PARAM_FC_W], n, k, m, math);
        ops->relu_backward(ctx, &dact, &dact, &act);
        ops->conv2d_backward(ctx, &net->grad[PARAM_CONV_W], &net->grad[PARAM_CONV_B], NULL,
                             &dact, &net->input, &net->param[PARAM_CONV_W], &net->conv_ws, &cs,
                             math);
        for (int p = 0; p < SEED_NPARAMS; p++)
            ops->sgd_momentum(ctx, &net->param[p], &net->velocity[p], &net->grad[p], lr,
                              momentum);
    }
    float stats[2];
    int rc = ops->download(ctx, stats, net->stats.data, sizeof stats);
    if (rc != AMP_OK)
        return rc;
    out->loss_sum = stats[0];
    out->correct = (uint32_t)stats[1];
    return AMP_OK;
}
