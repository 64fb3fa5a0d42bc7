/* The loss layer: softmax cross-entropy in FP32 over the classes, mean over the batch; in a
 * training step its forward also writes the logits' gradient (times the loss scale). */
#include "layers.h"

static void loss_forward(const struct layer *l, const struct layer_call *c)
{
    struct amp_tensor x = layer_view(l->x, c->n, l->p.in), dx = layer_view(l->dx, c->n, l->p.in);
    c->ops->softmax_xent(c->ctx, c->train ? &dx : NULL, c->stats, &x, c->labels, c->scaler, c->n,
                         (uint32_t)act_numel(l->p.in), AMP_F32);
}

const struct layer_ops layer_softmax_xent = {
    .name = "softmax_xent",
    .role = ROLE_LOSS,
    .shape = layer_same_shape,
    .params = layer_no_params,
    .flops = layer_no_flops,
    .label = "softmax+loss",
    .forward = loss_forward,
};
