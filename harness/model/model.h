/* The model: a network preset (a list of layers, nets.h) built on the backend interface in the
 * dtypes a precision plan gives, with FP32 master weights or low-precision ones, optional loss
 * scaling and SGD with momentum. Train, parity, bench, export and the report see only this
 * interface, never a particular network. */
#ifndef AMPBENCH_MODEL_H
#define AMPBENCH_MODEL_H

#include "backend.h"
#include "nets.h"
#include "recipe.h"
#include "rng.h"
#include "scaler.h"

/* What the model is built for: the preset, one sample's shape (from the data set), the largest
 * batch of a step, and the preset's free widths. */
struct model_shape {
    uint32_t batch;    /* samples per step (the largest batch the model is sized for) */
    uint32_t c_in, h, w;
    uint32_t classes;
    uint32_t channels; /* the width a preset leaves to --channels (the seed's conv) */
};

/* What one step did. */
struct step_result {
    double loss_sum;
    uint32_t correct;
    float loss_scale;   /* the scale this step's loss was multiplied by (1 without scaling) */
    int skipped;        /* the optimizer step was skipped (inf/NaN gradients) */
    struct loss_scaler scaler; /* the scaler after the step */
};

/* One parameter tensor, in the order PyTorch registers them. */
struct model_param {
    const char *name;                 /* "conv.weight" */
    size_t numel;
    const struct amp_tensor *stored;  /* the weights the optimizer updates (FP32 masters, or
                                       * low precision when pure) */
    const struct amp_tensor *grad;    /* the gradient the optimizer reads: the FP32 master
                                       * gradient when there is one, else the layer's own
                                       * (unscaled after a training step) */
    const struct amp_tensor *copy;    /* the low-precision copy the layer computes with, or NULL */
};

struct model;

/* Data-parallel training (harness/dist): what a training step shares with the other replicas.
 * A model given one (model_set_sync) runs its steps eagerly (no graph capture). */
struct model_sync {
    uint32_t rank, replicas; /* this replica, of how many */
    int sync_bn;             /* batch norm statistics over every replica's samples */
    /* After the backward pass, before unscale and the inf check: the n gradients the optimizer
     * reads (still times the loss scale), computed over `samples` of the step's samples,
     * replaced in place by their mean over every replica's samples. */
    int (*gradients)(void *user, const struct backend_ops *ops, void *ctx,
                     struct amp_tensor *const *grads, size_t n, uint32_t samples);
    /* After unscale: the scaler (a struct loss_scaler tensor), its found_inf made the same on
     * every replica, so that every replica skips the same steps; AMP_EFAIL when the replicas'
     * scales or growth trackers differ. */
    int (*found_inf)(void *user, const struct backend_ops *ops, void *ctx,
                     struct amp_tensor *scaler);
    /* values[n] summed over the replicas, in place (metrics, --sync-bn's statistics). */
    int (*sum)(void *user, double *values, size_t n);
    /* After an epoch: AMP_EFAIL unless m's parameters are the same, bit for bit, on every
     * replica (found_inf checks the scaler's state the same way at every step). */
    int (*check)(void *user, struct model *m);
    /* Elements whose all-reduce overflowed (FP16 or BF16 on the wire), so far. */
    uint64_t (*overflow)(void *user);
    void *user;
};

/* Builds preset `net` at `shape` in the plan's dtypes. The scaler (used unless scaling is
 * SCALING_NONE) starts as `scaler`. */
int model_create(struct model **out, struct backend *be, const struct net_preset *net,
                 const struct model_shape *shape, const struct precision_plan *plan,
                 enum loss_scaling scaling, const struct loss_scaler *scaler);
void model_destroy(struct model *m);
/* PyTorch's default init (every layer kind's own), drawn in FP32 in parameter order from rng
 * (then rounded when the stored weights are low precision), and the low-precision copies made. */
int model_init(struct model *m, struct rng *rng);
/* Copies n samples (FP32 images [n, c_in, h, w], int32 labels) into the model's inputs. */
int model_set_batch(struct model *m, const float *images, const int32_t *labels, uint32_t n);

/* A data set held on the model's backend (MEM_DATA): uint8 pixels [n, c_in, h, w] and labels
 * [n] as stored, uploaded once, and the index list of one batch. */
struct model_data {
    struct amp_tensor pixels, labels, idx;
    size_t n;
};
/* Uploads n samples (pixels as stored, n * c_in * h * w bytes; labels, each < classes). */
int model_data_upload(struct model *m, struct model_data *d, const uint8_t *pixels,
                      const uint8_t *labels, size_t n);
void model_data_free(struct model *m, struct model_data *d);
/* The model's inputs = samples idx[0..n) of d (pixels / 255, as the data set's FP32 images), built
 * on the backend by its gather_batch op: only the n indices go to the backend. Each idx < d->n,
 * n <= the model's batch. */
int model_gather_batch(struct model *m, const struct model_data *d, const uint32_t *idx,
                       uint32_t n);
/* Forward pass and loss over the current batch of n samples, then the backward pass (gradients
 * of the mean loss, times the loss scale), unscaling and the inf/NaN check, one SGD momentum
 * step (skipped on inf/NaN) and the scaler update. */
int model_train_step(struct model *m, uint32_t n, float lr, float momentum,
                     struct step_result *out);
/* Trains as one replica of several (s, kept by the caller), or alone (NULL). */
int model_set_sync(struct model *m, const struct model_sync *s);
/* Forward pass and loss only. */
int model_evaluate(struct model *m, uint32_t n, struct step_result *out);

/* The parameters: model_nparams of them, the i-th into *out. */
size_t model_nparams(const struct model *m);
void model_param(const struct model *m, size_t i, struct model_param *out);
/* The buffers (PyTorch's name for non-trained state): each batch norm layer's running_mean and
 * running_var, in layer order; model_nbuffers of them, the i-th into *out (grad NULL). */
size_t model_nbuffers(const struct model *m);
void model_buffer(const struct model *m, size_t i, struct model_param *out);
/* The logits of the last step: [batch, classes], of which the first n * classes are the batch's. */
const struct amp_tensor *model_logits(const struct model *m);
const struct model_shape *model_shape_of(const struct model *m);
/* FP8 recipes: a quantized tensor ("conv.input", "conv.weight", "conv.grad": an FP8 layer's
 * input, weight and output gradient; under MX scaling also their second copies, "fc.input.cols",
 * "fc.weight.cols", "fc.grad.cols" or a conv's "conv.input.pixels", "conv.weight.cols",
 * "conv.grad.pixels") and its scaling state after the last training step (what its quantization
 * did: scale, amax, saturated and underflowed elements, SQNR sums; its MX layout). */
struct model_fp8 {
    char name[56];
    struct fp8_tensor_state state;
};
/* How many tensors the model quantizes to FP8 (0 unless an FP8 recipe), in layer order. */
size_t model_fp8_count(const struct model *m);
/* Reads them all (one download): out[model_fp8_count(m)]. */
int model_fp8_read(struct model *m, struct model_fp8 *out);

/* A layer as the trace, `ampbench nets` and the bench see it, without building the model. */
struct layer_trace {          /* what it reads, computes in and writes */
    const char *name;         /* the preset's name for it: "conv" */
    char layer[24];           /* "conv3x3", "relu", "fc", "softmax+loss" */
    char input[16];
    char compute[40];
    char output[16];
    char weights[40];
};
struct layer_info {
    struct layer_trace trace;
    const char *kind;         /* "conv", "relu", "linear", "softmax_xent" */
    uint32_t c, h, w;         /* its output, per sample */
    size_t params;            /* parameter elements */
    double flops;             /* multiply-add FLOPs per training sample (forward and backward) */
    size_t act_bytes;         /* activation bytes per sample it adds, in the plan's dtypes */
};
/* Lays `net` out at `shape` under `plan`: its layers into out (at most cap of them; *n says how
 * many it has). AMP_EINPUT naming the layer when the preset cannot take that shape. */
int model_layers(const struct net_preset *net, const struct model_shape *shape,
                 const struct precision_plan *plan, struct layer_info *out, size_t cap,
                 size_t *n);
/* Totals over the layers: parameter elements, FLOPs and activation bytes (the FP32 input
 * included) per training sample. */
struct net_totals {
    size_t params;
    double flops;
    size_t act_bytes;
};
int model_totals(const struct net_preset *net, const struct model_shape *shape,
                 const struct precision_plan *plan, struct net_totals *out);

/* t (FP32, FP16 or BF16) to or from n FP32 host values, rounded to t's dtype on the way in. */
int tensor_upload_f32(const struct backend_ops *ops, void *ctx, struct amp_tensor *t,
                      const float *host, size_t n);
int tensor_download_f32(const struct backend_ops *ops, void *ctx, const struct amp_tensor *t,
                        float *host);
/* Copies tensor t of the model to host memory as FP32 (widened exactly from FP16/BF16). */
int model_read(struct model *m, const struct amp_tensor *t, float *host);
/* True when the model keeps a loss scaler. */
int model_has_scaler(const struct model *m);

#endif
