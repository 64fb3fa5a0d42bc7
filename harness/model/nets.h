/* Network presets (--net): each is data, a list of layers in forward order, ending in the loss.
 * The layer kinds (layers.h) give every layer its parameters, ops, FLOPs, activation bytes,
 * precision role and trace line; nothing outside harness/model knows a particular network. */
#ifndef AMPBENCH_NETS_H
#define AMPBENCH_NETS_H

#include <stddef.h>
#include <stdint.h>

enum layer_kind {
    LAYER_CONV,         /* 2-D convolution, any kernel size, stride and padding, optional bias */
    LAYER_RELU,         /* max(x, 0), in place where nothing else reads its input */
    LAYER_LINEAR,       /* fully connected over the flattened input, optional bias */
    LAYER_MAXPOOL,      /* 2x2 max pooling, stride 2 */
    LAYER_AVGPOOL,      /* global average pooling: c x h x w -> c */
    LAYER_BATCHNORM,    /* batch normalization (PyTorch's BatchNorm2d, momentum 0.1, eps 1e-5) */
    LAYER_ADD,          /* the residual add: its input plus the output of layer `skip` */
    LAYER_SOFTMAX_XENT, /* softmax cross-entropy over the classes: the loss, always last */
    NLAYER_KINDS
};

/* Widths a preset leaves open, filled in from the run: */
#define WIDTH_CHANNELS 0u          /* --channels */
#define WIDTH_CLASSES UINT32_MAX   /* the data set's number of classes */

/* How a layer's weights are drawn. */
enum layer_init {
    INIT_DEFAULT, /* PyTorch's default for the kind (conv, linear: U(+-1/sqrt(fan_in))) */
    INIT_HE,      /* He (kaiming_uniform_, nonlinearity "relu"): U(+-sqrt(6/fan_in)); biases 0 */
};

/* One layer of a preset. The layers form a graph: each reads the output of the layer before it,
 * or of the layer named `input`; an add also reads the layer named `skip`. Names refer to
 * earlier layers only. */
struct layer_spec {
    enum layer_kind kind;
    const char *name;   /* unique in the preset; its parameters are "<name>.weight", "<name>.bias" */
    uint32_t width;     /* output channels (conv) or features (linear), or WIDTH_* */
    uint8_t kernel, stride, pad; /* conv geometry (square kernel) */
    uint8_t no_bias;    /* conv: no bias parameter (a linear layer refuses it) */
    uint8_t init;       /* enum layer_init */
    const char *input;  /* the layer whose output it reads; NULL: the one before it */
    const char *skip;   /* add: the layer whose output it adds */
};

struct net_preset {
    const char *name;
    const char *summary;
    const char *note;   /* what the preset is for, for `ampbench nets` (NULL: none) */
    /* The default protocol of `ampbench verify` (--epochs, --seeds when not given): long and
     * wide enough that fp32's own seed-to-seed spread sits below the accuracy tolerance
     * (docs/VERIFICATION.md has the measurements); 0: the run's defaults. */
    uint32_t verify_epochs, verify_seeds;
    const struct layer_spec *layers;
    size_t nlayers;
};

/* The preset called `name`, or NULL; the default is "seed". */
const struct net_preset *net_find(const char *name);
const struct net_preset *net_default(void);
size_t net_count(void);
const struct net_preset *net_at(size_t i);
/* "seed, ..." into buf: the known names, for error messages and help. */
const char *net_names(char *buf, size_t len);

#endif
