/* The loss layer: softmax cross-entropy in FP32 over the classes, mean over the batch; in a
 * training step its forward also writes the logits' gradient (times the loss scale). */
#include <stdio.h>

#include "error.h"
#include "layers.h"

static int loss_out(const struct layer_spec *s, uint32_t width, struct act_shape in,
                    struct act_shape *out)
{
    (void)s;
    (void)width;
    *out = in;
    return AMP_OK;
}

static size_t loss_params(const struct layer_plan *l, struct param_spec out[LAYER_MAX_PARAMS])
{
    (void)l;
    (void)out;
    return 0;
}

static double loss_flops(const struct layer_plan *l)
{
    (void)l;
    return 0.0;
}

static void loss_label(const struct layer_plan *l, char *buf, size_t len)
{
    (void)l;
    snprintf(buf, len, "softmax+loss");
}

static void loss_forward(const struct layer *l, const struct layer_call *c)
{
    struct amp_tensor x = layer_view(l->x, c->n, l->p.in), dx = layer_view(l->dx, c->n, l->p.in);
    c->ops->softmax_xent(c->ctx, c->train ? &dx : NULL, c->stats, &x, c->labels, c->scaler, c->n,
                         (uint32_t)act_numel(l->p.in));
}

const struct layer_ops layer_softmax_xent = {
    .name = "softmax_xent",
    .role = ROLE_LOSS,
    .shape = loss_out,
    .params = loss_params,
    .flops = loss_flops,
    .label = loss_label,
    .forward = loss_forward,
};
