/* The seed network: Conv2d(c_in -> channels, 3x3, pad 1) -> ReLU -> flatten -> Linear(channels*h*w
 * -> classes) -> softmax cross-entropy, written once against the backend interface, in the
 * dtypes a precision plan gives, with optional loss scaling. */
#ifndef AMPBENCH_MODEL_H
#define AMPBENCH_MODEL_H

#include "backend.h"
#include "recipe.h"
#include "rng.h"
#include "scaler.h"

struct seed_shape {
    uint32_t batch;    /* samples per step (the largest batch the net is sized for) */
    uint32_t c_in, h, w;
    uint32_t channels; /* conv output channels */
    uint32_t classes;
};

/* Parameters in PyTorch's registration order. */
enum seed_param { PARAM_CONV_W, PARAM_CONV_B, PARAM_FC_W, PARAM_FC_B, SEED_NPARAMS };

struct seed_net {
    struct backend *be;
    struct seed_shape shape;
    struct precision_plan plan;
    enum loss_scaling scaling;
    /* Parameters: stored weights (FP32 masters, or low precision when pure), the low-precision
     * copies the layers compute with (data NULL when a layer uses the stored weights), the
     * gradients in the layer's dtype, FP32 gradients for the masters when those differ (data
     * NULL otherwise), and the momentum. */
    struct amp_tensor param[SEED_NPARAMS];
    struct amp_tensor copy[SEED_NPARAMS];
    struct amp_tensor grad[SEED_NPARAMS];
    struct amp_tensor master_grad[SEED_NPARAMS];
    struct amp_tensor velocity[SEED_NPARAMS];
    struct amp_tensor scaler;      /* struct loss_scaler (data NULL without loss scaling) */
    /* Activations for one batch. */
    struct amp_tensor input;       /* [batch, c_in, h, w] FP32, as loaded */
    struct amp_tensor input_lp;    /* the input cast to the conv's dtype (NULL data when FP32) */
    struct amp_tensor labels;      /* [batch] int32 */
    struct amp_tensor act;         /* conv output, ReLU applied in place: [batch, channels, h, w] */
    struct amp_tensor logits;      /* [batch, classes] */
    struct amp_tensor stats;       /* loss sum, correct count of the last loss evaluation */
    struct amp_tensor conv_ws;     /* the conv ops' workspace */
    /* Activation gradients. */
    struct amp_tensor dlogits;     /* [batch, classes] */
    struct amp_tensor dact;        /* [batch, channels, h, w] */
};

/* What one step did. */
struct step_result {
    double loss_sum;
    uint32_t correct;
    float loss_scale;   /* the scale this step's loss was multiplied by (1 without scaling) */
    int skipped;        /* the optimizer step was skipped (inf/NaN gradients) */
    struct loss_scaler scaler; /* the scaler after the step */
};

const char *seed_param_name(enum seed_param p);
size_t seed_param_numel(const struct seed_shape *s, enum seed_param p);

/* Allocates the network in the plan's dtypes. The scaler (used unless scaling is SCALING_NONE)
 * starts as `scaler`. */
int seed_net_create(struct seed_net *net, struct backend *be, const struct seed_shape *shape,
                    const struct precision_plan *plan, enum loss_scaling scaling,
                    const struct loss_scaler *scaler);
void seed_net_destroy(struct seed_net *net);
/* PyTorch's default init: kaiming_uniform(a = sqrt(5)) weights, i.e. U(+-1/sqrt(fan_in)), and
 * U(+-1/sqrt(fan_in)) biases, drawn in FP32 in parameter order from rng (then rounded when the
 * stored weights are low precision), and the low-precision copies made. */
int seed_net_init(struct seed_net *net, struct rng *rng);
/* Copies tensor t of the net to host memory as FP32 (widened exactly from FP16/BF16). */
int seed_net_read(struct seed_net *net, const struct amp_tensor *t, float *host);
/* The gradient the optimizer reads for p: the FP32 master gradient when there is one, else the
 * layer's own (unscaled after a training step). */
const struct amp_tensor *seed_net_update_grad(const struct seed_net *net, enum seed_param p);
/* Copies n samples (FP32 images, labels) into the net's input tensors. */
int seed_net_set_batch(struct seed_net *net, const float *images, const int32_t *labels,
                       uint32_t n);
/* Forward pass and loss over the current batch of n samples; with `train`, also the backward
 * pass (gradients of the mean loss, times the loss scale), unscaling and the inf/NaN check, one
 * SGD momentum step (skipped on inf/NaN) and the scaler update. */
int seed_net_step(struct seed_net *net, uint32_t n, int train, float lr, float momentum,
                  struct step_result *out);

#endif
