/* The residual add: its input plus the skip layer's output (same shape), in its input's dtype,
 * in place over its input where allowed. The gradient goes unchanged to both. */
#include "layers.h"

static void add_forward(const struct layer *l, const struct layer_call *c)
{
    struct amp_tensor y = layer_view(l->y, c->n, l->p.out), x = layer_input(l, c->n),
                      skip = layer_skip(l, c->n);
    c->ops->add(c->ctx, &y, &x, &skip);
}

/* dskip = dy (rounded to the skip's dtype); dx = dy, which in place is already so. */
static void add_backward(const struct layer *l, const struct layer_call *c)
{
    struct amp_tensor dy = layer_view(l->dy, c->n, l->p.out);
    struct amp_tensor dskip = layer_view(l->dskip, c->n, l->p.in);
    c->ops->cast(c->ctx, &dskip, &dy);
    if (!l->p.in_place) {
        struct amp_tensor dx = layer_input_grad(l, c->n);
        c->ops->cast(c->ctx, &dx, &dy);
    }
}

const struct layer_ops layer_add = {
    .name = "add",
    .role = ROLE_FOLLOWS_INPUT,
    .param_role = ROLE_FOLLOWS_INPUT,
    .in_place = 1,
    .shape = layer_same_shape,
    .params = layer_no_params,
    .flops = layer_no_flops,
    .label = "add",
    .forward = add_forward,
    .backward = add_backward,
};
