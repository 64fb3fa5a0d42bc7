/* The ReLU layer: max(x, 0) in place, in its input's dtype. */
#include <stdio.h>

#include "error.h"
#include "layers.h"

static int relu_out(const struct layer_spec *s, uint32_t width, struct act_shape in,
                    struct act_shape *out)
{
    (void)s;
    (void)width;
    *out = in;
    return AMP_OK;
}

static size_t relu_params(const struct layer_plan *l, struct param_spec out[LAYER_MAX_PARAMS])
{
    (void)l;
    (void)out;
    return 0;
}

static double relu_flops(const struct layer_plan *l)
{
    (void)l;
    return 0.0;
}

static void relu_label(const struct layer_plan *l, char *buf, size_t len)
{
    (void)l;
    snprintf(buf, len, "relu");
}

static void relu_forward(const struct layer *l, const struct layer_call *c)
{
    struct amp_tensor y = layer_view(l->y, c->n, l->p.out);
    c->ops->relu_forward(c->ctx, &y, &y);
}

/* dy and dx are one tensor (in place): dx = dy * (y > 0). */
static void relu_backward(const struct layer *l, const struct layer_call *c)
{
    struct amp_tensor y = layer_view(l->y, c->n, l->p.out), dy = layer_view(l->dy, c->n, l->p.out);
    c->ops->relu_backward(c->ctx, &dy, &dy, &y);
}

const struct layer_ops layer_relu = {
    .name = "relu",
    .role = ROLE_FOLLOWS_INPUT,
    .in_place = 1,
    .shape = relu_out,
    .params = relu_params,
    .flops = relu_flops,
    .label = relu_label,
    .forward = relu_forward,
    .backward = relu_backward,
};
