/* Training recipes (the --modes) and precision policies (--policy): which precision each layer
 * of the seed network runs in, which tensors exist in which dtype, and how the loss is scaled. */
#ifndef AMPBENCH_RECIPE_H
#define AMPBENCH_RECIPE_H

#include <stdio.h>

#include "backend.h"

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
};

/* Which layers a mixed-precision recipe runs in its low-precision type. */
enum policy {
    POLICY_SEED,     /* conv and ReLU in low precision; FC, softmax and loss in FP32 */
    POLICY_AUTOCAST, /* PyTorch CUDA autocast: conv and linear in low precision, loss in FP32 */
};

/* The dtypes of one recipe under one policy. */
struct precision_plan {
    enum amp_math math;
    enum amp_dtype weights;    /* stored weights (FP32 masters, or lowp when pure) */
    enum amp_dtype conv;       /* conv inputs, weights and output; ReLU */
    enum amp_dtype fc;         /* FC weights and output (its input is the ReLU output) */
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
/* Parses "seed" or "autocast"; -1 for anything else. */
int policy_parse(const char *name);

struct precision_plan precision_plan_of(const struct recipe *r, enum policy p);

/* One layer of the precision trace: what it reads, computes in and writes. */
struct layer_trace {
    const char *layer;
    char input[16];
    char compute[40];
    char output[16];
    char weights[40];
};
#define TRACE_LAYERS 4
/* Fills the trace of the seed network's layers (conv, relu, fc, softmax+loss). */
void precision_trace(const struct precision_plan *plan, struct layer_trace out[TRACE_LAYERS]);

#endif
