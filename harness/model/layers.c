/* Laying a preset out (each layer's shapes and dtypes under a plan) and its precision trace. */
#include "layers.h"

#include <stdio.h>
#include <string.h>

#include "error.h"

static const struct layer_ops *const kinds[NLAYER_KINDS] = {
    [LAYER_CONV] = &layer_conv,
    [LAYER_RELU] = &layer_relu,
    [LAYER_LINEAR] = &layer_linear,
    [LAYER_MAXPOOL] = &layer_maxpool,
    [LAYER_AVGPOOL] = &layer_avgpool,
    [LAYER_BATCHNORM] = &layer_batchnorm,
    [LAYER_ADD] = &layer_add,
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

/* The index of the earlier layer called `name` (NULL: the one before layer i), or FROM_INPUT for
 * the first layer; AMP_EINPUT naming both when there is none. */
static int producer_of(const struct net_preset *net, size_t i, const char *name, int *out)
{
    if (!name) {
        *out = (int)i - 1;
        return AMP_OK;
    }
    for (size_t k = 0; k < i; k++)
        if (strcmp(net->layers[k].name, name) == 0) {
            *out = (int)k;
            return AMP_OK;
        }
    return amp_fail(AMP_EINPUT, "--net %s: layer %s reads layer '%s', which is not an earlier "
                    "layer", net->name, net->layers[i].name, name);
}

int layers_plan(const struct net_preset *net, struct act_shape sample, uint32_t classes,
                uint32_t channels, const struct precision_plan *plan, struct layer_plan *out)
{
    for (size_t i = 0; i < net->nlayers; i++) {
        const struct layer_spec *s = &net->layers[i];
        struct layer_plan *l = &out[i];
        memset(l, 0, sizeof *l);
        l->spec = s;
        l->kind = kinds[s->kind];
        l->width = s->width == WIDTH_CHANNELS ? channels
                   : s->width == WIDTH_CLASSES ? classes
                                               : s->width;
        l->skip = FROM_INPUT;
        int rc = producer_of(net, i, s->input, &l->input);
        if (rc == AMP_OK && s->kind == LAYER_ADD)
            rc = s->skip ? producer_of(net, i, s->skip, &l->skip)
                         : amp_fail(AMP_EINPUT, "--net %s: layer %s: an add names its skip layer",
                                    net->name, s->name);
        if (rc != AMP_OK)
            return rc;
        const struct layer_plan *from = l->input == FROM_INPUT ? NULL : &out[l->input];
        l->in = from ? from->out : sample;
        l->in_dtype = from ? from->dtype : AMP_F32; /* the model's input is FP32, as loaded */
        l->first = from == NULL;
        if (l->first && s->kind != LAYER_CONV && s->kind != LAYER_LINEAR)
            return amp_fail(AMP_EINPUT, "--net %s: layer %s: only a conv or linear layer may read "
                            "the network's input", net->name, s->name);
        l->dtype = l->kind->role == ROLE_FOLLOWS_INPUT ? l->in_dtype : plan->role[l->kind->role];
        l->param_dtype = l->kind->param_role == ROLE_FOLLOWS_INPUT
                             ? l->dtype : plan->role[l->kind->param_role];
        l->fp8 = plan->fp8.scaling != FP8_SCALING_NONE && dtype_is_lowp(l->dtype) &&
                 (l->kind->role == ROLE_CONV || l->kind->role == ROLE_LINEAR);
        if (l->fp8) /* FP32 masters quantized each step; the input quantized instead of rounded */
            l->param_dtype = AMP_F32;
        l->casts_input = !l->fp8 && lowp_rounds(l->in_dtype, l->dtype);
        rc = l->kind->shape(s, l->width, l->in, &l->out);
        if (rc != AMP_OK)
            return rc;
        if (from)
            out[l->input].consumers++;
        if (l->skip != FROM_INPUT) {
            const struct layer_plan *sk = &out[l->skip];
            out[l->skip].consumers++;
            l->skip_dtype = sk->dtype;
            if (sk->out.c != l->in.c || sk->out.h != l->in.h || sk->out.w != l->in.w)
                return amp_fail(AMP_EINPUT, "--net %s: layer %s adds %s (%ux%ux%u) to %ux%ux%u",
                                net->name, s->name, sk->spec->name, sk->out.c, sk->out.h,
                                sk->out.w, l->in.c, l->in.h, l->in.w);
        }
        if ((s->kind == LAYER_SOFTMAX_XENT) != (i + 1 == net->nlayers))
            return amp_fail(AMP_EINPUT, "--net %s: layer %s: the softmax cross-entropy loss must "
                            "be the last layer, and only it", net->name, s->name);
        if (s->kind == LAYER_SOFTMAX_XENT && act_numel(l->in) != classes)
            return amp_fail(AMP_EINPUT, "--net %s: layer %s: %zu inputs for %u classes", net->name,
                            s->name, act_numel(l->in), classes);
    }
    for (size_t i = 0; i + 1 < net->nlayers; i++)
        if (out[i].consumers == 0)
            return amp_fail(AMP_EINPUT, "--net %s: layer %s: no layer reads its output",
                            net->name, net->layers[i].name);
    /* In place only over a layer that nothing else reads and whose backward does not need the
     * output being overwritten. */
    for (size_t i = 0; i < net->nlayers; i++) {
        struct layer_plan *l = &out[i];
        const struct layer_plan *from = l->first ? NULL : &out[l->input];
        l->in_place = l->kind->in_place && from && from->consumers == 1 &&
                      !from->kind->reads_output && !l->casts_input;
        /* A ReLU in place over a conv's output runs in the conv's epilogue: the same bits and
         * counts, one pass over the output fewer. */
        if (l->in_place && l->kind == &layer_relu && from->kind == &layer_conv)
            l->fused = out[l->input].relu_epilogue = 1;
    }
    /* A linear over a ReLU in place that nothing else reads masks its input gradient with the
     * ReLU's output itself (not the FP8 layer's quantized copy), while the gradient is in
     * cache: the same bits and counts, one pass fewer. Not where the linear reads a rounded copy
     * (its input gradient is then cast after the op); else it writes that gradient in the
     * ReLU's dtype, the mask's (an FP32 linear over a BF16 ReLU too). */
    for (size_t i = 0; i < net->nlayers; i++) {
        struct layer_plan *l = &out[i];
        struct layer_plan *from = l->first ? NULL : &out[l->input];
        if (l->kind == &layer_linear && from && from->kind == &layer_relu && from->in_place &&
            from->consumers == 1 && !l->casts_input)
            l->relu_mask = from->fused_backward = 1;
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

/* An FP8 layer's line: "e4m3 x e4m3 -> fp32, dy e5m2" and the scaling, "mx" before the
 * formats of block-scaled operands. */
static void fp8_trace(const struct layer_plan *l, const struct precision_plan *plan,
                      struct layer_trace *t)
{
    const char *mx = plan->fp8.scaling == FP8_SCALING_MX ? "mx" : "";
    const char *fwd = fp8_format_name(plan->fp8.forward), *bwd = fp8_format_name(plan->fp8.backward);
    snprintf(t->input, sizeof t->input, "%s%s(%s)", mx, fwd, dtype_name(l->in_dtype));
    snprintf(t->compute, sizeof t->compute, "%s%s x %s%s -> fp32, dy %s%s", mx, fwd, mx, fwd, mx,
             bwd);
    snprintf(t->weights, sizeof t->weights, "%s%s of fp32 master (%s)", mx, fwd,
             plan->fp8.scaling == FP8_SCALING_DELAYED   ? "delayed"
             : plan->fp8.scaling == FP8_SCALING_CURRENT ? "current"
                                                        : "emulated");
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
        if (l->fp8) {
            fp8_trace(l, plan, t);
            break;
        }
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
    case ROLE_LOSS: /* the loss itself is summed in FP32 */
        snprintf(t->compute, sizeof t->compute, "%s", dtype_name(l->dtype));
        snprintf(t->output, sizeof t->output, "fp32");
        break;
    default: /* elementwise, in its input's dtype */
        snprintf(t->compute, sizeof t->compute, "%s", dtype_name(l->dtype));
        break;
    }
    if (l->kind->param_role == ROLE_NORM) {
        snprintf(t->compute, sizeof t->compute, "%s stats, %s data", dtype_name(l->param_dtype),
                 dtype_name(l->dtype));
        if (l->param_dtype == plan->weights)
            snprintf(t->weights, sizeof t->weights, "%s", dtype_name(plan->weights));
        else
            snprintf(t->weights, sizeof t->weights, "%s copy of %s master",
                     dtype_name(l->param_dtype), dtype_name(plan->weights));
    }
}
