/* The table of training recipes, the precision policies, and the per-layer precision trace. */
#include "recipe.h"

#include <string.h>

/* fp32 first: the reference (recipe_reference). */
static const struct recipe recipes[] = {
    { .name = "fp32", .summary = "FP32 everywhere (no TF32)", .math = AMP_MATH_F32,
      .lowp = AMP_F32, .scaling = SCALING_NONE },
    { .name = "tf32", .summary = "TF32 inputs for conv/GEMM, FP32 accumulate and weights",
      .math = AMP_MATH_TF32, .lowp = AMP_F32, .scaling = SCALING_NONE },
    { .name = "amp", .summary = "FP16 per policy, FP32 master weights, dynamic loss scaling",
      .math = AMP_MATH_F32, .lowp = AMP_F16, .scaling = SCALING_DYNAMIC },
    { .name = "amp-static", .summary = "FP16 per policy, FP32 master weights, static loss scale",
      .math = AMP_MATH_F32, .lowp = AMP_F16, .scaling = SCALING_STATIC },
    { .name = "amp-noscale", .summary = "FP16 per policy, FP32 master weights, no loss scaling",
      .math = AMP_MATH_F32, .lowp = AMP_F16, .scaling = SCALING_NONE },
    { .name = "bf16", .summary = "BF16 per policy, FP32 master weights, no loss scaling",
      .math = AMP_MATH_F32, .lowp = AMP_BF16, .scaling = SCALING_NONE },
    { .name = "fp16-pure", .summary = "FP16 everywhere but the loss, no master copy, dynamic scaling",
      .math = AMP_MATH_F32, .lowp = AMP_F16, .pure = 1, .scaling = SCALING_DYNAMIC },
};

const struct recipe *recipe_find(const char *name)
{
    for (size_t i = 0; i < recipe_count(); i++)
        if (strcmp(recipes[i].name, name) == 0)
            return &recipes[i];
    return NULL;
}

const struct recipe *recipe_reference(void)
{
    return &recipes[0];
}

size_t recipe_count(void)
{
    return sizeof recipes / sizeof recipes[0];
}

const struct recipe *recipe_at(size_t i)
{
    return i < recipe_count() ? &recipes[i] : NULL;
}

const char *recipe_names(char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < recipe_count() && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", recipes[i].name);
    return buf;
}

const char *policy_name(enum policy p)
{
    return p == POLICY_AUTOCAST ? "autocast" : "seed";
}

int policy_parse(const char *name)
{
    if (strcmp(name, "seed") == 0)
        return POLICY_SEED;
    if (strcmp(name, "autocast") == 0)
        return POLICY_AUTOCAST;
    return -1;
}

struct precision_plan precision_plan_of(const struct recipe *r, enum policy p)
{
    const enum amp_dtype lp = r->lowp;
    struct precision_plan plan = { .math = r->math, .weights = AMP_F32, .conv = AMP_F32,
                                   .fc = AMP_F32 };
    if (lp == AMP_F32)
        return plan;
    plan.conv = lp;
    plan.fc = r->pure || p == POLICY_AUTOCAST ? lp : AMP_F32;
    plan.weights = r->pure ? lp : AMP_F32;
    return plan;
}

/* "fp16 x fp16 -> fp32 acc" style description of how a layer multiplies. */
static void compute_of(char *buf, size_t len, enum amp_dtype operands, enum amp_math math)
{
    if (operands != AMP_F32)
        snprintf(buf, len, "%s x %s -> fp32 acc", dtype_name(operands), dtype_name(operands));
    else if (math == AMP_MATH_TF32)
        snprintf(buf, len, "tf32 x tf32 -> fp32 acc");
    else
        snprintf(buf, len, "fp32");
}

static void weights_of(char *buf, size_t len, enum amp_dtype used, enum amp_dtype stored)
{
    if (used == stored)
        snprintf(buf, len, "%s", dtype_name(stored));
    else
        snprintf(buf, len, "%s copy of %s master", dtype_name(used), dtype_name(stored));
}

void precision_trace(const struct precision_plan *plan, struct layer_trace out[TRACE_LAYERS])
{
    memset(out, 0, sizeof(struct layer_trace) * TRACE_LAYERS);
    struct layer_trace *conv = &out[0], *relu = &out[1], *fc = &out[2], *loss = &out[3];
    conv->layer = "conv3x3";
    snprintf(conv->input, sizeof conv->input, "%s", dtype_name(plan->conv));
    compute_of(conv->compute, sizeof conv->compute, plan->conv, plan->math);
    snprintf(conv->output, sizeof conv->output, "%s", dtype_name(plan->conv));
    weights_of(conv->weights, sizeof conv->weights, plan->conv, plan->weights);

    relu->layer = "relu";
    snprintf(relu->input, sizeof relu->input, "%s", dtype_name(plan->conv));
    snprintf(relu->compute, sizeof relu->compute, "%s", dtype_name(plan->conv));
    snprintf(relu->output, sizeof relu->output, "%s", dtype_name(plan->conv));
    snprintf(relu->weights, sizeof relu->weights, "-");

    fc->layer = "fc";
    snprintf(fc->input, sizeof fc->input, "%s", dtype_name(plan->conv));
    if (plan->fc == AMP_F32 && plan->conv != AMP_F32)
        snprintf(fc->compute, sizeof fc->compute, "fp32 (input widened)");
    else
        compute_of(fc->compute, sizeof fc->compute, plan->fc, plan->math);
    snprintf(fc->output, sizeof fc->output, "%s", dtype_name(plan->fc));
    weights_of(fc->weights, sizeof fc->weights, plan->fc, plan->weights);

    loss->layer = "softmax+loss";
    snprintf(loss->input, sizeof loss->input, "%s", dtype_name(plan->fc));
    snprintf(loss->compute, sizeof loss->compute, "fp32");
    snprintf(loss->output, sizeof loss->output, "fp32");
    snprintf(loss->weights, sizeof loss->weights, "-");
}
