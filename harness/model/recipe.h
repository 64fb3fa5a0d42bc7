/* Training recipes (what --modes lists) and precision policies (--policy): the precision plan of a
 * recipe under a policy, computed once, says which dtype each layer role computes in, which
 * dtype the weights are stored in, and how the loss is scaled. */
#ifndef AMPBENCH_RECIPE_H
#define AMPBENCH_RECIPE_H

#include <stdio.h>

#include "backend.h"
#include "fp8_scaling.h"

enum loss_scaling {
    SCALING_NONE,
    SCALING_STATIC,  /* a fixed --loss-scale; steps with inf/NaN gradients are skipped */
    SCALING_DYNAMIC, /* GradScaler: grows after clean intervals, backs off on inf/NaN */
};

struct recipe {
    const char *name;
    const char *summary;
    enum amp_math math;     /* how conv/GEMM read FP32 inputs (TF32 for tf32) */
    enum amp_dtype lowp;    /* the low-precision compute type; AMP_F32 for none */
    int pure;               /* weights, gradients and momentum in lowp, no FP32 master copy */
    enum loss_scaling scaling;
    /* FP8 recipes: how the conv and linear operands the policy puts in low precision are
     * scaled (FP8_SCALING_NONE for the others), and their formats. */
    enum fp8_scaling fp8;
    enum fp8_format fp8_forward;  /* inputs and weights */
    enum fp8_format fp8_backward; /* output gradients */
};

/* Which layers a mixed-precision recipe runs in its low-precision type. */
enum policy {
    POLICY_SEED,     /* conv (and what follows it) in low precision; linear, batch norm
                      * parameters and statistics, softmax and loss in FP32 */
    POLICY_AUTOCAST, /* PyTorch CUDA autocast: conv and linear in low precision; batch norm with
                      * FP32 parameters and statistics; softmax and loss in FP32 */
    POLICY_NAIVE,    /* everything in low precision, batch norm statistics and softmax included
                      * (Apex O3 without its exceptions): what autocast's FP32 list avoids */
    NPOLICIES
};

/* What a layer does, as far as precision goes: a policy maps each role to a dtype. Layers of
 * the elementwise kinds (ReLU, pooling, add, batch norm's data) have no role: they compute in
 * their input's dtype. */
enum layer_role {
    ROLE_CONV,   /* convolutions */
    ROLE_LINEAR, /* fully connected layers */
    ROLE_NORM,   /* batch norm's parameters and statistics (its data follows its input) */
    ROLE_LOSS,   /* softmax cross-entropy (FP32 under every policy but naive) */
    NROLES
};

/* How an FP8 recipe quantizes (fp8_scaling.h). */
struct fp8_plan {
    enum fp8_scaling scaling;      /* FP8_SCALING_NONE: not an FP8 recipe */
    enum fp8_format forward, backward;
    uint32_t amax_history;         /* delayed scaling's history length (--amax-history) */
    enum mx_scale_rounding mx_rounding; /* MX block scales (--mx-scale) */
};

/* The dtypes of one recipe under one policy. */
struct precision_plan {
    enum amp_math math;
    enum amp_dtype weights;        /* stored weights (FP32 masters, or lowp when pure) */
    enum amp_dtype role[NROLES];   /* what each role's inputs, weights and outputs are; an FP8
                                    * recipe's conv and linear roles in low precision (BF16)
                                    * quantize their operands to FP8 (fp8) */
    struct fp8_plan fp8;
};

/* The recipe called `name`, or NULL. */
const struct recipe *recipe_find(const char *name);
/* The reference every other recipe is judged against: fp32. */
const struct recipe *recipe_reference(void);
/* Number of known recipes, and the i-th, in a fixed order. */
size_t recipe_count(void);
const struct recipe *recipe_at(size_t i);
/* "fp32, tf32, ..." into buf: the known names, for error messages and help. */
const char *recipe_names(char *buf, size_t len);

const char *policy_name(enum policy p);
/* Parses "seed", "autocast" or "naive"; -1 for anything else. */
int policy_parse(const char *name);

/* The plan of recipe r under policy p; an FP8 recipe's history and MX rounding at their
 * defaults (FP8_AMAX_HISTORY_DEFAULT, rceil), which the caller may change. */
struct precision_plan precision_plan_of(const struct recipe *r, enum policy p);
/* The narrowest rounding any layer of the plan does: the unit roundoff of its lowest-precision
 * dtype (TF32 counts as FP16's 2^-11), 0 for a plan that computes in FP32 throughout. */
double precision_plan_unit_roundoff(const struct precision_plan *plan);

#endif
