/* The batch normalization layer: BatchNorm2d(c) with PyTorch's semantics (momentum 0.1, eps
 * 1e-5, batch statistics in training, running statistics in evaluation). Its data follow its
 * input's dtype; its parameters (gamma, beta), running statistics and saved batch statistics are
 * kept in the norm role's dtype (FP32 but under the naive policy and pure recipes). */
#include "layers.h"

/* PyTorch's init: gamma 1, beta 0 (no draws from the rng). */
static size_t bn_params(const struct layer_plan *l, struct param_spec out[LAYER_MAX_PARAMS])
{
    out[0] = (struct param_spec){ "weight", l->in.c, 0.0f, 1.0f };
    out[1] = (struct param_spec){ "bias", l->in.c, 0.0f, 0.0f };
    return 2;
}

static void bn_forward(const struct layer *l, const struct layer_call *c)
{
    if (c->train && c->sync && c->sync->sync_bn) {
        sync_bn_forward(l, c);
        return;
    }
    struct amp_tensor y = layer_view(l->y, c->n, l->p.out), x = layer_input(l, c->n);
    struct bn_state bn = l->bn;
    c->ops->batchnorm_forward(c->ctx, &y, &x, &bn, c->n, l->p.in.c, l->p.in.h * l->p.in.w,
                              c->train);
}

static void bn_backward(const struct layer *l, const struct layer_call *c)
{
    if (c->sync && c->sync->sync_bn) {
        sync_bn_backward(l, c);
        return;
    }
    struct amp_tensor dy = layer_view(l->dy, c->n, l->p.out), x = layer_input(l, c->n);
    struct amp_tensor dx = layer_input_grad(l, c->n);
    c->ops->batchnorm_backward(c->ctx, &dx, &l->w[0].grad, &l->w[1].grad, &dy, &x, &l->bn, c->n,
                               l->p.in.c, l->p.in.h * l->p.in.w);
}

const struct layer_ops layer_batchnorm = {
    .name = "batchnorm",
    .role = ROLE_FOLLOWS_INPUT,
    .param_role = ROLE_NORM,
    .shape = layer_same_shape,
    .params = bn_params,
    .flops = layer_no_flops,
    .label = "batchnorm",
    .forward = bn_forward,
    .backward = bn_backward,
};
