/* Network presets (--net): each is data, a list of layers in forward order, ending in the loss.
 * The layer kinds (layers.h) give every layer its parameters, ops, FLOPs, activation bytes,
 * precision role and trace line; nothing outside harness/model knows a particular network. */
#ifndef AMPBENCH_NETS_H
#define AMPBENCH_NETS_H

#include <stddef.h>
#include <stdint.h>

enum layer_kind {
    LAYER_CONV,         /* 2-D convolution, any kernel size, stride and padding, optional bias */
    LAYER_RELU,         /* max(x, 0), in place */
    LAYER_LINEAR,       /* fully connected over the flattened input, optional bias */
    LAYER_SOFTMAX_XENT, /* softmax cross-entropy over the classes: the loss, always last */
    NLAYER_KINDS
};

/* Widths a preset leaves open, filled in from the run: */
#define WIDTH_CHANNELS 0u          /* --channels */
#define WIDTH_CLASSES UINT32_MAX   /* the data set's number of classes */

/* One layer of a preset. */
struct layer_spec {
    enum layer_kind kind;
    const char *name;   /* unique in the preset; its parameters are "<name>.weight", "<name>.bias" */
    uint32_t width;     /* output channels (conv) or features (linear), or WIDTH_* */
    uint8_t kernel, stride, pad; /* conv geometry (square kernel) */
    uint8_t no_bias;    /* conv and linear: no bias parameter */
};

struct net_preset {
    const char *name;
    const char *summary;
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
