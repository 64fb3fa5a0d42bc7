/* The pooling layers: 2x2 max pooling at stride 2 (MaxPool2d(2)), and global average pooling
 * (AdaptiveAvgPool2d(1) then flatten), in their input's dtype. */
#include "error.h"
#include "layers.h"

static int maxpool_out(const struct layer_spec *s, uint32_t width, struct act_shape in,
                       struct act_shape *out)
{
    (void)width;
    if (in.h < 2 || in.w < 2)
        return amp_fail(AMP_EINPUT, "layer %s: 2x2 max pooling cannot take a %ux%u input",
                        s->name, in.h, in.w);
    *out = (struct act_shape){ .c = in.c, .h = in.h / 2, .w = in.w / 2 };
    return AMP_OK;
}

static void maxpool_forward(const struct layer *l, const struct layer_call *c)
{
    struct amp_tensor y = layer_view(l->y, c->n, l->p.out), x = layer_input(l, c->n);
    c->ops->maxpool_forward(c->ctx, &y, &x, c->n, l->p.in.c, l->p.in.h, l->p.in.w);
}

static void maxpool_backward(const struct layer *l, const struct layer_call *c)
{
    struct amp_tensor dy = layer_view(l->dy, c->n, l->p.out), x = layer_input(l, c->n);
    struct amp_tensor dx = layer_input_grad(l, c->n);
    c->ops->maxpool_backward(c->ctx, &dx, &dy, &x, c->n, l->p.in.c, l->p.in.h, l->p.in.w);
}

const struct layer_ops layer_maxpool = {
    .name = "maxpool",
    .role = ROLE_FOLLOWS_INPUT,
    .param_role = ROLE_FOLLOWS_INPUT,
    .shape = maxpool_out,
    .params = layer_no_params,
    .flops = layer_no_flops,
    .label = "maxpool2x2",
    .forward = maxpool_forward,
    .backward = maxpool_backward,
};

static int avgpool_out(const struct layer_spec *s, uint32_t width, struct act_shape in,
                       struct act_shape *out)
{
    (void)s;
    (void)width;
    *out = (struct act_shape){ .c = in.c, .h = 1, .w = 1 };
    return AMP_OK;
}

static void avgpool_forward(const struct layer *l, const struct layer_call *c)
{
    struct amp_tensor y = layer_view(l->y, c->n, l->p.out), x = layer_input(l, c->n);
    c->ops->avgpool_forward(c->ctx, &y, &x, c->n, l->p.in.c, l->p.in.h * l->p.in.w);
}

static void avgpool_backward(const struct layer *l, const struct layer_call *c)
{
    struct amp_tensor dy = layer_view(l->dy, c->n, l->p.out);
    struct amp_tensor dx = layer_input_grad(l, c->n);
    c->ops->avgpool_backward(c->ctx, &dx, &dy, c->n, l->p.in.c, l->p.in.h * l->p.in.w);
}

const struct layer_ops layer_avgpool = {
    .name = "avgpool",
    .role = ROLE_FOLLOWS_INPUT,
    .param_role = ROLE_FOLLOWS_INPUT,
    .shape = avgpool_out,
    .params = layer_no_params,
    .flops = layer_no_flops,
    .label = "avgpool",
    .forward = avgpool_forward,
    .backward = avgpool_backward,
};
