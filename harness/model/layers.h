/* The layer kinds (internal to harness/model): one static const table per kind (layer_conv.c,
 * layer_relu.c, layer_linear.c, layer_pool.c, layer_norm.c, layer_add.c, layer_loss.c) says
 * what a layer of that kind has and does: its
 * output shape, its parameters and their init, its forward and backward through backend ops,
 * its FLOPs and its precision role. layers.c lays a preset out at a shape under a plan (geometry
 * and dtypes, no memory) and writes its precision trace; model.c allocates and runs it. */
#ifndef AMPBENCH_LAYERS_H
#define AMPBENCH_LAYERS_H

#include "backend.h"
#include "model.h"
#include "nets.h"
#include "recipe.h"

/* One sample's activation: channels x height x width (features are c x 1 x 1). */
struct act_shape {
    uint32_t c, h, w;
};

static inline size_t act_numel(struct act_shape s)
{
    return (size_t)s.c * s.h * s.w;
}

/* Layers of the kinds without a role compute in their input's dtype. */
#define ROLE_FOLLOWS_INPUT NROLES

struct layer_ops;

/* The model's input, as a producer: what the first layer reads. */
#define FROM_INPUT (-1)

/* A layer of a preset at a shape under a plan: geometry, dtypes and its place in the graph. */
struct layer_plan {
    const struct layer_spec *spec;
    const struct layer_ops *kind;
    uint32_t width;           /* spec->width with WIDTH_* resolved */
    int input;                /* the layer whose output it reads, or FROM_INPUT */
    int skip;                 /* add: the layer whose output it adds (else FROM_INPUT, unused) */
    int consumers;            /* how many layers read its output (edges: an add's two count) */
    struct act_shape in, out; /* per sample (the loss: out = in) */
    enum amp_dtype in_dtype;  /* the dtype of the tensor it reads: its input layer's output */
    enum amp_dtype skip_dtype;/* add: the dtype of the skip layer's output */
    enum amp_dtype dtype;     /* the dtype it computes in and writes: its role's in the plan */
    enum amp_dtype param_dtype; /* its parameters' (and statistics') dtype: param_role's */
    int casts_input;          /* reads its input rounded to dtype (an FP32 input, low dtype) */
    int fp8;                  /* an FP8 recipe's conv or linear: its input, weight and output
                               * gradient quantized to FP8 (fp8_scaling.h), its parameters FP32 */
    int first;                /* reads the model's input: no input gradient to compute */
    int in_place;             /* writes its output over its input (the kind allows it, and its
                               * input layer has no other reader and no need of its output) */
    int relu_epilogue;        /* a conv whose one reader, a ReLU in place over its output, runs
                               * in the conv's epilogue (the conv2d_forward op's relu) */
    int fused;                /* that ReLU: its forward is its input conv's (it runs no op) */
    int relu_mask;            /* a linear whose input is a ReLU in place that only it reads, not
                               * read through a rounded copy: that ReLU's backward runs in the
                               * linear's (the linear_backward op's relu) */
    int fused_backward;       /* that ReLU: its backward is its reader linear's (it runs no op) */
};

/* One parameter of a layer: name suffix, size and init, U(-bound, bound) or, when bound is 0,
 * every element `fill` (no draw from the rng). */
struct param_spec {
    const char *suffix; /* "weight", "bias" */
    size_t numel;
    float bound;
    float fill;
};
#define LAYER_MAX_PARAMS 2

/* What an FP8 layer quantizes: its input, its weight and its output gradient; under MX scaling
 * also a second copy of each, blocked along the reduction of the other GEMM that reads it (the
 * input and the output gradient for the weight gradient, the weight for the input gradient). */
enum { FP8_INPUT, FP8_WEIGHT, FP8_GRAD, FP8_NOPERANDS,
       FP8_INPUT_T = FP8_NOPERANDS, FP8_WEIGHT_T, FP8_GRAD_T, FP8_MX_OPERANDS };

/* A parameter tensor of a built model, in every dtype it is kept in. */
struct weights {
    char name[48];
    struct param_spec spec;
    struct amp_tensor param;       /* stored (FP32 master, or low precision when pure) */
    struct amp_tensor copy;        /* the layer's low-precision copy (data NULL when unused) */
    struct amp_tensor quant;       /* FP8 recipes: the weight quantized (FP32 holding the
                                    * dequantized FP8 values) for this step (data NULL else) */
    struct amp_tensor quant_t;     /* MX: its second copy, for the input gradient (data NULL
                                    * else) */
    struct amp_tensor grad;        /* in the layer's dtype */
    struct amp_tensor master_grad; /* FP32, for the master (data NULL when grad is it) */
    struct amp_tensor velocity;    /* momentum, in the stored dtype */
};

/* A layer of a built model: its plan, parameters and batch-sized tensors. */
/* Batch norm's buffers (PyTorch's running statistics) and saved batch statistics, [c] each in
 * the layer's param_dtype. */
enum { BN_RUNNING_MEAN, BN_RUNNING_VAR, BN_SAVE_MEAN, BN_SAVE_INVSTD, BN_NSTATE };

struct layer {
    struct layer_plan p;
    struct weights *w;        /* its parameters in the model's array; nw of them */
    size_t nw;
    struct amp_tensor *x;     /* its input: its input layer's output, or the model's input */
    struct amp_tensor x_cast; /* x rounded to dtype (data NULL unless p.casts_input) */
    struct amp_tensor *y;     /* its output (in place: *x) */
    struct amp_tensor *dy;    /* the loss gradient w.r.t. y (in place: *dx) */
    struct amp_tensor *dx;    /* where its backward writes the input gradient: the input layer's
                               * dy, or dx_part when that is a sum; NULL when first */
    struct amp_tensor dx_cast;/* the input gradient in dtype, cast to *dx after (when x_cast) */
    /* FP8 layers (p.fp8): the quantized input and output gradient (FP32 holding dequantized FP8
     * values), and the scaling state of the input, the weight and the output gradient (views of
     * the model's state tensors; fp8_history data NULL unless delayed scaling). MX scaling:
     * x_qt and dy_qt, their copies for the weight gradient, and the states of the second
     * copies (FP8_INPUT_T ..); data NULL otherwise. */
    struct amp_tensor x_q, dy_q, x_qt, dy_qt;
    struct amp_tensor fp8_state[FP8_MX_OPERANDS], fp8_history[FP8_MX_OPERANDS];
    struct amp_tensor *skip;  /* add: the skip layer's output */
    struct amp_tensor *dskip; /* add: where the skip gradient goes (its dy, or dskip_part) */
    /* A layer read by several sums their gradients: the reader that runs its backward first
     * writes the reader's dy, the others write a part (a view of the model's scratch) that
     * model.c then adds into dx_sum / dskip_sum (NULL: no sum). */
    struct amp_tensor *dx_sum, *dskip_sum;
    struct amp_tensor dx_part, dskip_part;
    struct amp_tensor y_own, dy_own;
    struct amp_tensor state[BN_NSTATE]; /* batch norm only */
    struct bn_state bn;                 /* batch norm only: the tensors above and its params */
    char running_names[2][56];          /* batch norm only: "<name>.running_mean", "_var" */
    struct conv_shape conv;   /* conv only: the shape at the full batch */
    char nvtx_forward[48], nvtx_backward[48];
};

/* What a forward or backward call needs besides the layer. */
struct layer_call {
    const struct backend_ops *ops;
    void *ctx;
    uint32_t n;                      /* samples in this batch */
    enum amp_math math;
    int train;                       /* a training step (the loss also writes its gradient) */
    struct amp_tensor *workspace;    /* the conv ops' (sized for every conv layer) */
    const struct amp_tensor *labels; /* int32 [batch] */
    struct amp_tensor *stats;        /* loss sum, correct count */
    const struct amp_tensor *scaler; /* the loss scaler when training with one, else NULL */
    enum fp8_scaling fp8;            /* FP8 recipes: how the FP8 layers' operands are scaled */
    const struct model_sync *sync;   /* data-parallel training: the other replicas, or NULL */
};

struct layer_ops {
    const char *name;   /* "conv", as `ampbench nets` lists it */
    int role;           /* enum layer_role, or ROLE_FOLLOWS_INPUT */
    int param_role;     /* kinds with parameters: the role whose dtype they are kept in */
    int in_place;       /* may write its output over its input, and its input gradient over dy */
    int reads_output;   /* its backward reads its output (which no in-place reader may
                         * overwrite) */
    /* The output shape for input `in` (width resolved); AMP_EINPUT with amp_fail naming the
     * layer when it cannot take that input. */
    int (*shape)(const struct layer_spec *s, uint32_t width, struct act_shape in,
                 struct act_shape *out);
    /* Its parameters, in PyTorch's registration order; returns how many (<= LAYER_MAX_PARAMS). */
    size_t (*params)(const struct layer_plan *l, struct param_spec out[LAYER_MAX_PARAMS]);
    /* Multiply-add FLOPs per training sample: forward, weight gradient and (unless first)
     * input gradient; 0 for kinds that do no products. */
    double (*flops)(const struct layer_plan *l);
    /* Its line's label in the precision trace ("relu", "fc", "softmax+loss"), or the function
     * that writes one from the layer's geometry ("conv3x3", "conv3x3/2"). */
    const char *label;
    void (*label_of)(const struct layer_plan *l, char *buf, size_t len);
    /* Batch shapes and ops: conv geometry at n samples (conv only; NULL otherwise). */
    void (*conv_shape)(const struct layer_plan *l, uint32_t n, struct conv_shape *out);
    void (*forward)(const struct layer *l, const struct layer_call *c);
    void (*backward)(const struct layer *l, const struct layer_call *c); /* NULL: none */
};

extern const struct layer_ops layer_conv, layer_relu, layer_linear, layer_maxpool, layer_avgpool,
    layer_batchnorm, layer_add, layer_softmax_xent;

/* Entries shared by kinds without parameters or products whose output has their input's shape. */
int layer_same_shape(const struct layer_spec *s, uint32_t width, struct act_shape in,
                     struct act_shape *out);
size_t layer_no_params(const struct layer_plan *l, struct param_spec out[LAYER_MAX_PARAMS]);
double layer_no_flops(const struct layer_plan *l);

/* The dtype of the operands a layer's conv or GEMM multiplies: FP32 for an FP8 layer (its
 * quantized operands hold dequantized FP8 values), else the dtype it computes in. */
static inline enum amp_dtype layer_operand_dtype(const struct layer_plan *p)
{
    return p->fp8 ? AMP_F32 : p->dtype;
}

/* The first n samples of a batch-sized activation tensor of per-sample shape s. */
static inline struct amp_tensor layer_view(const struct amp_tensor *t, uint32_t n,
                                           struct act_shape s)
{
    struct amp_tensor v = *t;
    v.numel = (size_t)n * act_numel(s);
    return v;
}

/* The weights a layer computes with: the FP8-quantized weight, else the low-precision copy
 * when there is one. */
static inline const struct amp_tensor *weights_used(const struct weights *w)
{
    return w->quant.data ? &w->quant : w->copy.data ? &w->copy : &w->param;
}

/* The input a layer reads (x, its rounded copy, or its FP8-quantized one) for n samples. */
static inline struct amp_tensor layer_input(const struct layer *l, uint32_t n)
{
    return layer_view(l->x_q.data ? &l->x_q : l->x_cast.data ? &l->x_cast : l->x, n, l->p.in);
}

/* The output gradient a layer's backward reads (dy, or its FP8-quantized copy) for n samples. */
static inline struct amp_tensor layer_output_grad(const struct layer *l, uint32_t n)
{
    return layer_view(l->dy_q.data ? &l->dy_q : l->dy, n, l->p.out);
}

/* MX scaling's second copies (docs/NUMERICS.md, "FP8 recipes"): whether the layer has them (its
 * backward then runs the input and the weight gradient as two calls), the weight the input
 * gradient reads and the input and output gradient the weight gradient reads. */
static inline int layer_fp8_split(const struct layer *l)
{
    return l->dy_qt.data != NULL;
}

static inline const struct amp_tensor *weights_for_dgrad(const struct weights *w)
{
    return w->quant_t.data ? &w->quant_t : weights_used(w);
}

static inline struct amp_tensor layer_input_for_wgrad(const struct layer *l, uint32_t n)
{
    return l->x_qt.data ? layer_view(&l->x_qt, n, l->p.in) : layer_input(l, n);
}

static inline struct amp_tensor layer_output_grad_for_wgrad(const struct layer *l, uint32_t n)
{
    return l->dy_qt.data ? layer_view(&l->dy_qt, n, l->p.out) : layer_output_grad(l, n);
}

/* Where the backward pass writes the input gradient for n samples (NULL data when first). */
static inline struct amp_tensor layer_input_grad(const struct layer *l, uint32_t n)
{
    const struct amp_tensor none = { 0 };
    return l->dx ? layer_view(l->dx_cast.data ? &l->dx_cast : l->dx, n, l->p.in) : none;
}

/* The skip input of an add for n samples. */
static inline struct amp_tensor layer_skip(const struct layer *l, uint32_t n)
{
    return layer_view(l->skip, n, l->p.in);
}

/* Lays preset `net` out for one sample of c_in x h x w with `classes` classes and the given
 * --channels, under `plan`: out[net->nlayers]. AMP_EINPUT when a layer cannot take its input
 * or the graph is malformed (an unknown or later layer named, a skip of another shape). */
int layers_plan(const struct net_preset *net, struct act_shape sample, uint32_t classes,
                uint32_t channels, const struct precision_plan *plan, struct layer_plan *out);

/* --sync-bn (sync_bn.c): a training batch norm over every replica's samples, as PyTorch's
 * SyncBatchNorm; the statistics summed through c->sync (a failure is kept by the sync and
 * returned by its next gradients call). */
void sync_bn_forward(const struct layer *l, const struct layer_call *c);
void sync_bn_backward(const struct layer *l, const struct layer_call *c);

/* Its line of the precision trace (model.h). */
void layer_trace_of(const struct layer_plan *l, const struct precision_plan *plan,
                    struct layer_trace *out);

#endif
