/* The network presets: each a list of layers (nets.h), in forward order. */
#include "nets.h"

#include "named.h"

/* The seed network: Conv2d(c_in -> --channels, 3x3, pad 1) -> ReLU -> flatten ->
 * Linear(channels * h * w -> classes) -> softmax cross-entropy. */
static const struct layer_spec seed_layers[] = {
    { .kind = LAYER_CONV, .name = "conv", .width = WIDTH_CHANNELS, .kernel = 3, .stride = 1,
      .pad = 1 },
    { .kind = LAYER_RELU, .name = "relu" },
    { .kind = LAYER_LINEAR, .name = "fc", .width = WIDTH_CLASSES },
    { .kind = LAYER_SOFTMAX_XENT, .name = "loss" },
};

#define PRESET(n, s, l) { .name = n, .summary = s, .layers = l, .nlayers = sizeof l / sizeof l[0] }

static const struct net_preset presets[] = {
    PRESET("seed", "conv3x3 (--channels) + ReLU + one linear layer: the default", seed_layers),
};

const struct net_preset *net_find(const char *name)
{
    return named_find(presets, net_count(), sizeof presets[0], name);
}

const struct net_preset *net_default(void)
{
    return &presets[0];
}

size_t net_count(void)
{
    return sizeof presets / sizeof presets[0];
}

const struct net_preset *net_at(size_t i)
{
    return i < net_count() ? &presets[i] : NULL;
}

const char *net_names(char *buf, size_t len)
{
    return named_list(buf, len, presets, net_count(), sizeof presets[0]);
}
