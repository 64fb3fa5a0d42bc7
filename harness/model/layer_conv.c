/* The convolution layer: Conv2d(c_in -> width, k x k, stride, padding), with or without a bias,
 * NCHW. */
#include <math.h>
#include <stdio.h>

#include "error.h"
#include "layers.h"

static int conv_out(const struct layer_spec *s, uint32_t width, struct act_shape in,
                    struct act_shape *out)
{
    const int64_t h = ((int64_t)in.h + 2 * s->pad - s->kernel), w = ((int64_t)in.w + 2 * s->pad - s->kernel);
    if (s->kernel == 0 || s->stride == 0 || width == 0 || h < 0 || w < 0)
        return amp_fail(AMP_EINPUT, "layer %s: a %ux%u convolution with stride %u and padding %u "
                        "cannot take a %ux%u input", s->name, s->kernel, s->kernel, s->stride,
                        s->pad, in.h, in.w);
    *out = (struct act_shape){ .c = width, .h = (uint32_t)(h / s->stride) + 1,
                               .w = (uint32_t)(w / s->stride) + 1 };
    return AMP_OK;
}

/* PyTorch's default: kaiming_uniform(a = sqrt(5)) weights, i.e. U(+-1/sqrt(fan_in)), and
 * U(+-1/sqrt(fan_in)) biases; He: U(+-sqrt(6/fan_in)) weights and zero biases. */
static size_t conv_params(const struct layer_plan *l, struct param_spec out[LAYER_MAX_PARAMS])
{
    const uint32_t k = l->spec->kernel, fan_in = l->in.c * k * k;
    const int he = l->spec->init == INIT_HE;
    const float bound = 1.0f / sqrtf((float)fan_in);
    out[0] = (struct param_spec){ "weight", (size_t)l->width * fan_in,
                                  he ? sqrtf(6.0f / (float)fan_in) : bound, 0.0f };
    if (l->spec->no_bias)
        return 1;
    out[1] = (struct param_spec){ "bias", l->width, he ? 0.0f : bound, 0.0f };
    return 2;
}

static double conv_flops(const struct layer_plan *l)
{
    const double k = l->spec->kernel;
    const double pass = 2.0 * (double)act_numel(l->out) * l->in.c * k * k;
    return (l->first ? 2 : 3) * pass; /* forward, filter gradient, data gradient */
}

static void conv_label(const struct layer_plan *l, char *buf, size_t len)
{
    if (l->spec->stride == 1)
        snprintf(buf, len, "conv%ux%u", l->spec->kernel, l->spec->kernel);
    else
        snprintf(buf, len, "conv%ux%u/%u", l->spec->kernel, l->spec->kernel, l->spec->stride);
}

static void conv_geometry(const struct layer_plan *l, uint32_t n, struct conv_shape *out)
{
    *out = (struct conv_shape){ .n = n, .c_in = l->in.c, .h = l->in.h, .w = l->in.w,
                                .c_out = l->width, .kernel = l->spec->kernel,
                                .stride = l->spec->stride, .pad = l->spec->pad };
}

static void conv_forward(const struct layer *l, const struct layer_call *c)
{
    struct conv_shape s = l->conv;
    s.n = c->n;
    struct amp_tensor y = layer_view(l->y, c->n, l->p.out), x = layer_input(l, c->n);
    c->ops->conv2d_forward(c->ctx, &y, &x, weights_used(&l->w[0]),
                           l->nw > 1 ? weights_used(&l->w[1]) : NULL, c->workspace, &s, c->math,
                           l->p.relu_epilogue);
}

static void conv_backward(const struct layer *l, const struct layer_call *c)
{
    struct conv_shape s = l->conv;
    s.n = c->n;
    struct amp_tensor dy = layer_output_grad(l, c->n), x = layer_input(l, c->n);
    struct amp_tensor dx = layer_input_grad(l, c->n);
    struct amp_tensor *db = l->nw > 1 ? &l->w[1].grad : NULL;
    if (!layer_fp8_split(l)) {
        c->ops->conv2d_backward(c->ctx, &l->w[0].grad, db, dx.data ? &dx : NULL, &dy, &x,
                                weights_used(&l->w[0]), c->workspace, &s, c->math);
        return;
    }
    /* MX: the filter and bias gradients (reduced over samples and pixels) from dy and x blocked
     * along each plane's pixels, the data gradient (reduced over output channels and taps) from
     * dy in channel blocks and w blocked along c_out. */
    struct amp_tensor dyt = layer_output_grad_for_wgrad(l, c->n);
    struct amp_tensor xt = layer_input_for_wgrad(l, c->n);
    c->ops->conv2d_backward(c->ctx, &l->w[0].grad, db, NULL, &dyt, &xt, weights_used(&l->w[0]),
                            c->workspace, &s, c->math);
    if (dx.data)
        c->ops->conv2d_backward(c->ctx, NULL, NULL, &dx, &dy, &x, weights_for_dgrad(&l->w[0]),
                                c->workspace, &s, c->math);
}

const struct layer_ops layer_conv = {
    .name = "conv",
    .role = ROLE_CONV,
    .param_role = ROLE_CONV,
    .shape = conv_out,
    .params = conv_params,
    .flops = conv_flops,
    .label_of = conv_label,
    .conv_shape = conv_geometry,
    .forward = conv_forward,
    .backward = conv_backward,
};
