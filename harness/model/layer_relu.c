/* The ReLU layer: max(x, 0), in place where allowed (layers.c), in its input's dtype. */
#include "layers.h"

/* In place, x and y are one tensor. */
static void relu_forward(const struct layer *l, const struct layer_call *c)
{
    struct amp_tensor y = layer_view(l->y, c->n, l->p.out), x = layer_input(l, c->n);
    c->ops->relu_forward(c->ctx, &y, &x);
}

/* dx = dy * (y > 0); in place, dy and dx are one tensor. */
static void relu_backward(const struct layer *l, const struct layer_call *c)
{
    struct amp_tensor y = layer_view(l->y, c->n, l->p.out), dy = layer_view(l->dy, c->n, l->p.out);
    struct amp_tensor dx = layer_input_grad(l, c->n);
    c->ops->relu_backward(c->ctx, &dx, &dy, &y);
}

const struct layer_ops layer_relu = {
    .name = "relu",
    .role = ROLE_FOLLOWS_INPUT,
    .param_role = ROLE_FOLLOWS_INPUT,
    .in_place = 1,
    .reads_output = 1,
    .shape = layer_same_shape,
    .params = layer_no_params,
    .flops = layer_no_flops,
    .label = "relu",
    .forward = relu_forward,
    .backward = relu_backward,
};
