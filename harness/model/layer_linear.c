/* The fully connected layer: Linear(c*h*w of its flattened input -> width) with a bias (a spec
 * asking for none is refused). */
#include <math.h>

#include "error.h"
#include "layers.h"

static int linear_out(const struct layer_spec *s, uint32_t width, struct act_shape in,
                      struct act_shape *out)
{
    if (width == 0)
        return amp_fail(AMP_EINPUT, "layer %s: a linear layer needs at least one output", s->name);
    if (s->no_bias) /* the linear ops take a bias (backend.h); the forward and backward read it */
        return amp_fail(AMP_EINPUT, "layer %s: a linear layer without a bias is not supported",
                        s->name);
    (void)in;
    *out = (struct act_shape){ .c = width, .h = 1, .w = 1 };
    return AMP_OK;
}

/* PyTorch's default: U(+-1/sqrt(fan_in)) weights (kaiming_uniform, a = sqrt(5)) and biases. */
static size_t linear_params(const struct layer_plan *l, struct param_spec out[LAYER_MAX_PARAMS])
{
    const size_t fan_in = act_numel(l->in);
    const float bound = 1.0f / sqrtf((float)fan_in);
    out[0] = (struct param_spec){ "weight", l->width * fan_in, bound, 0.0f };
    out[1] = (struct param_spec){ "bias", l->width, bound, 0.0f };
    return 2;
}

static double linear_flops(const struct layer_plan *l)
{
    const double pass = 2.0 * (double)act_numel(l->in) * l->width;
    return (l->first ? 2 : 3) * pass; /* forward, weight gradient, input gradient */
}

static void linear_forward(const struct layer *l, const struct layer_call *c)
{
    struct amp_tensor y = layer_view(l->y, c->n, l->p.out), x = layer_input(l, c->n);
    c->ops->linear_forward(c->ctx, &y, &x, weights_used(&l->w[0]), weights_used(&l->w[1]), c->n,
                           (uint32_t)act_numel(l->p.in), l->p.width, c->math);
}

static void linear_backward(const struct layer *l, const struct layer_call *c)
{
    struct amp_tensor dy = layer_output_grad(l, c->n), x = layer_input(l, c->n);
    struct amp_tensor dx = layer_input_grad(l, c->n);
    /* the ReLU's own output (x unquantized) masks dx where its backward is fused */
    struct amp_tensor relu_y = layer_view(l->x, c->n, l->p.in);
    const struct amp_tensor *relu = l->p.relu_mask ? &relu_y : NULL;
    const uint32_t k = (uint32_t)act_numel(l->p.in);
    if (!layer_fp8_split(l)) {
        c->ops->linear_backward(c->ctx, dx.data ? &dx : NULL, &l->w[0].grad, &l->w[1].grad, &dy,
                                &x, weights_used(&l->w[0]), c->n, k, l->p.width, c->math,
                                relu);
        return;
    }
    /* MX: the weight and bias gradients (reduced over the batch) from dy and x blocked along
     * the batch, the input gradient (reduced over the outputs) from dy blocked along its rows
     * and w along its columns. */
    struct amp_tensor dyt = layer_output_grad_for_wgrad(l, c->n);
    struct amp_tensor xt = layer_input_for_wgrad(l, c->n);
    c->ops->linear_backward(c->ctx, NULL, &l->w[0].grad, &l->w[1].grad, &dyt, &xt,
                            weights_used(&l->w[0]), c->n, k, l->p.width, c->math, NULL);
    if (dx.data)
        c->ops->linear_backward(c->ctx, &dx, NULL, NULL, &dy, &x, weights_for_dgrad(&l->w[0]),
                                c->n, k, l->p.width, c->math, relu);
}

const struct layer_ops layer_linear = {
    .name = "linear",
    .role = ROLE_LINEAR,
    .param_role = ROLE_LINEAR,
    .shape = linear_out,
    .params = linear_params,
    .flops = linear_flops,
    .label = "fc",
    .forward = linear_forward,
    .backward = linear_backward,
};
