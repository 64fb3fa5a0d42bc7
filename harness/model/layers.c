/* Laying a preset out (each layer's shapes and dtypes under a plan) and its precision trace. */
#include "layers.h"

#include <stdio.h>
#include <string.h>

#include "error.h"

static const struct layer_ops *const kinds[NLAYER_KINDS] = {
    [LAYER_CONV] = &layer_conv,
    [LAYER_RELU] = &layer_relu,
    [LAYER_LINEAR] = &layer_linear,
    [LAYER_SOFTMAX_XENT] = &layer_softmax_xent,
};

int layer_same_shape(const struct layer_spec *s, uint32_t width, struct act_shape in,
                     struct act_shape *out)
{
    (void)s;
    (void)width;
    *out = in;
    return AMP_OK;
}

size_t layer_no_params(const struct layer_plan *l, struct param_spec out[LAYER_MAX_PARAMS])
{
    (void)l;
    (void)out;
    return 0;
}

double layer_no_flops(const struct layer_plan *l)
{
    (void)l;
    return 0.0;
}

static int lowp_rounds(enum amp_dtype from, enum amp_dtype to)
{
    return from == AMP_F32 && dtype_is_lowp(to);
}

int layers_plan(const struct net_preset *net, struct act_shape sample, uint32_t classes,
                uint32_t channels, const struct precision_plan *plan, struct layer_plan *out)
{
    struct act_shape in = sample;
    enum amp_dtype in_dtype = AMP_F32; /* the model's input is FP32, as loaded */
    for (size_t i = 0; i < net->nlayers; i++) {
        const struct layer_spec *s = &net->layers[i];
        struct layer_plan *l = &out[i];
        memset(l, 0, sizeof *l);
        l->spec = s;
        l->kind = kinds[s->kind];
        l->width = s->width == WIDTH_CHANNELS ? channels
                   : s->width == WIDTH_CLASSES ? classes
                                               : s->width;
        l->in = in;
        l->first = i == 0;
        l->in_dtype = in_dtype;
        l->dtype = l->kind->role == ROLE_FOLLOWS_INPUT ? in_dtype : plan->role[l->kind->role];
        l->casts_input = lowp_rounds(in_dtype, l->dtype);
        int rc = l->kind->shape(s, l->width, in, &l->out);
        if (rc != AMP_OK)
            return rc;
        if ((s->kind == LAYER_SOFTMAX_XENT) != (i + 1 == net->nlayers))
            return amp_fail(AMP_EINPUT, "--net %s: layer %s: the softmax cross-entropy loss must "
                            "be the last layer, and only it", net->name, s->name);
        if (s->kind == LAYER_SOFTMAX_XENT && act_numel(in) != classes)
            return amp_fail(AMP_EINPUT, "--net %s: layer %s: %zu inputs for %u classes", net->name,
                            s->name, act_numel(in), classes);
        in = l->out;
        in_dtype = l->dtype;
    }
    return AMP_OK;
}

/* "fp16 x fp16 -> fp32 acc" style description of how a layer multiplies. */
static void products_of(char *buf, size_t len, enum amp_dtype operands, enum amp_math math)
{
    if (operands != AMP_F32)
        snprintf(buf, len, "%s x %s -> fp32 acc", dtype_name(operands), dtype_name(operands));
    else if (math == AMP_MATH_TF32)
        snprintf(buf, len, "tf32 x tf32 -> fp32 acc");
    else
        snprintf(buf, len, "fp32");
}

void layer_trace_of(const struct layer_plan *l, const struct precision_plan *plan,
                    struct layer_trace *t)
{
    memset(t, 0, sizeof *t);
    t->name = l->spec->name;
    if (l->kind->label_of)
        l->kind->label_of(l, t->layer, sizeof t->layer);
    else
        snprintf(t->layer, sizeof t->layer, "%s", l->kind->label);
    const enum amp_dtype reads = l->casts_input ? l->dtype : l->in_dtype;
    snprintf(t->input, sizeof t->input, "%s", dtype_name(reads));
    snprintf(t->output, sizeof t->output, "%s", dtype_name(l->dtype));
    snprintf(t->weights, sizeof t->weights, "-");
    switch (l->kind->role) {
    case ROLE_CONV:
    case ROLE_LINEAR:
        if (l->dtype == AMP_F32 && reads != AMP_F32)
            snprintf(t->compute, sizeof t->compute, "fp32 (input widened)");
        else
            products_of(t->compute, sizeof t->compute, l->dtype, plan->math);
        if (l->dtype == plan->weights)
            snprintf(t->weights, sizeof t->weights, "%s", dtype_name(plan->weights));
        else
            snprintf(t->weights, sizeof t->weights, "%s copy of %s master", dtype_name(l->dtype),
                     dtype_name(plan->weights));
        break;
    case ROLE_LOSS:
        snprintf(t->compute, sizeof t->compute, "fp32");
        snprintf(t->output, sizeof t->output, "fp32");
        break;
    default: /* elementwise, in its input's dtype */
        snprintf(t->compute, sizeof t->compute, "%s", dtype_name(l->dtype));
        break;
    }
}
