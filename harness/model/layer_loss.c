/* The loss layer: softmax cross-entropy over the classes (in FP32, or in low precision under the
 * naive policy), mean over the batch; in a training step its forward also writes the logits'
 * gradient (times the loss scale). */
#include "layers.h"

static void loss_forward(const struct layer *l, const struct layer_call *c)
{
    struct amp_tensor x = layer_input(l, c->n), dx = layer_input_grad(l, c->n);
    c->ops->softmax_xent(c->ctx, c->train ? &dx : NULL, c->stats, &x, c->labels, c->scaler, c->n,
                         (uint32_t)act_numel(l->p.in), l->p.dtype);
}

const struct layer_ops layer_softmax_xent = {
    .name = "softmax_xent",
    .role = ROLE_LOSS,
    .param_role = ROLE_LOSS,
    .shape = layer_same_shape,
    .params = layer_no_params,
    .flops = layer_no_flops,
    .label = "softmax+loss",
    .forward = loss_forward,
};
