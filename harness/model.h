/* The seed network: Conv2d(c_in -> channels, 3x3, pad 1) -> ReLU -> flatten -> Linear(channels*h*w
 * -> classes) -> softmax cross-entropy, written once against the backend interface. */
#ifndef AMPBENCH_MODEL_H
#define AMPBENCH_MODEL_H

#include "backend.h"
#include "rng.h"

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
    struct amp_tensor param[SEED_NPARAMS];
    struct amp_tensor grad[SEED_NPARAMS];
    struct amp_tensor velocity[SEED_NPARAMS];
    /* Activations for one batch. */
    struct amp_tensor input;   /* [batch, c_in, h, w] */
    struct amp_tensor labels;  /* [batch] int32 */
    struct amp_tensor act;     /* conv output, ReLU applied in place: [batch, channels, h, w] */
    struct amp_tensor logits;  /* [batch, classes] */
    struct amp_tensor stats;   /* loss sum, correct count of the last loss evaluation */
    struct amp_tensor conv_ws; /* the conv ops' workspace */
    /* Activation gradients. */
    struct amp_tensor dlogits; /* [batch, classes] */
    struct amp_tensor dact;    /* [batch, channels, h, w] */
};

/* Loss and correct predictions of one batch. */
struct batch_stats {
    double loss_sum;
    uint32_t correct;
};

const char *seed_param_name(enum seed_param p);
size_t seed_param_numel(const struct seed_shape *s, enum seed_param p);

int seed_net_create(struct seed_net *net, struct backend *be, const struct seed_shape *shape);
void seed_net_destroy(struct seed_net *net);
/* PyTorch's default init: kaiming_uniform(a = sqrt(5)) weights, i.e. U(+-1/sqrt(fan_in)), and
 * U(+-1/sqrt(fan_in)) biases, drawn in parameter order from rng. */
int seed_net_init(struct seed_net *net, struct rng *rng);
/* Copies n samples (FP32 images, labels) into the net's input tensors. */
int seed_net_set_batch(struct seed_net *net, const float *images, const int32_t *labels,
                       uint32_t n);
/* Forward pass and loss over the current batch of n samples; with `train`, also the backward pass
 * (gradients of the mean loss) and one SGD momentum step. */
int seed_net_step(struct seed_net *net, uint32_t n, int train, float lr, float momentum,
                  struct batch_stats *out);

#endif
