/* The table of training recipes, the precision policies and the plans they make. */
#include "recipe.h"

#include <string.h>

#include "named.h"

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
    { .name = "fp8-delayed",
      .summary = "FP8 conv/FC inputs (E4M3, E5M2 gradients), delayed per-tensor scaling, BF16 "
                 "elsewhere, FP32 master weights",
      .math = AMP_MATH_F32, .lowp = AMP_BF16, .scaling = SCALING_NONE,
      .fp8 = FP8_SCALING_DELAYED, .fp8_forward = FP8_E4M3, .fp8_backward = FP8_E5M2 },
    { .name = "fp8-current",
      .summary = "FP8 conv/FC inputs (E4M3, E5M2 gradients), per-tensor scale from each "
                 "tensor's own amax, BF16 elsewhere, FP32 master weights",
      .math = AMP_MATH_F32, .lowp = AMP_BF16, .scaling = SCALING_NONE,
      .fp8 = FP8_SCALING_CURRENT, .fp8_forward = FP8_E4M3, .fp8_backward = FP8_E5M2 },
    { .name = "mxfp8",
      .summary = "MXFP8 conv/FC inputs (E4M3, blocks of 32 with E8M0 scales), BF16 elsewhere, "
                 "FP32 master weights",
      .math = AMP_MATH_F32, .lowp = AMP_BF16, .scaling = SCALING_NONE,
      .fp8 = FP8_SCALING_MX, .fp8_forward = FP8_E4M3, .fp8_backward = FP8_E4M3 },
};

const struct recipe *recipe_find(const char *name)
{
    return named_find(recipes, recipe_count(), sizeof recipes[0], name);
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
    return named_list(buf, len, recipes, recipe_count(), sizeof recipes[0]);
}

static const char *const policy_names[NPOLICIES] = {
    [POLICY_SEED] = "seed",
    [POLICY_AUTOCAST] = "autocast",
    [POLICY_NAIVE] = "naive",
};

const char *policy_name(enum policy p)
{
    return (unsigned)p < NPOLICIES ? policy_names[p] : "?";
}

int policy_parse(const char *name)
{
    for (int p = 0; p < NPOLICIES; p++)
        if (strcmp(name, policy_names[p]) == 0)
            return p;
    return -1;
}

struct precision_plan precision_plan_of(const struct recipe *r, enum policy p)
{
    const enum amp_dtype lp = r->lowp;
    struct precision_plan plan = { .math = r->math, .weights = AMP_F32 };
    for (int k = 0; k < NROLES; k++)
        plan.role[k] = AMP_F32;
    if (lp == AMP_F32)
        return plan;
    const int naive = p == POLICY_NAIVE;
    plan.role[ROLE_CONV] = lp;
    plan.role[ROLE_LINEAR] = r->pure || naive || p == POLICY_AUTOCAST ? lp : AMP_F32;
    plan.role[ROLE_NORM] = r->pure || naive ? lp : AMP_F32; /* pure: model.half() */
    plan.role[ROLE_LOSS] = naive ? lp : AMP_F32;
    plan.weights = r->pure ? lp : AMP_F32;
    plan.fp8 = (struct fp8_plan){ .scaling = r->fp8, .forward = r->fp8_forward,
                                  .backward = r->fp8_backward,
                                  .amax_history = FP8_AMAX_HISTORY_DEFAULT,
                                  .mx_rounding = MX_SCALE_RCEIL };
    return plan;
}

double precision_plan_unit_roundoff(const struct precision_plan *plan)
{
    if (plan->fp8.scaling != FP8_SCALING_NONE) /* E5M2's 2 mantissa bits (E4M3: 2^-4) */
        return plan->fp8.backward == FP8_E5M2 ? 0x1p-3 : 0x1p-4;
    double u = plan->math == AMP_MATH_TF32 ? 0x1p-11 : 0.0;
    for (int k = 0; k < NROLES; k++) {
        if (plan->role[k] == AMP_BF16)
            return 0x1p-8;
        if (plan->role[k] == AMP_F16)
            u = 0x1p-11;
    }
    return u;
}
