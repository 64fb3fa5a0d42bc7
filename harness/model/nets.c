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

#define CONV(n, c, k, s, p) \
    { .kind = LAYER_CONV, .name = n, .width = c, .kernel = k, .stride = s, .pad = p }
#define RELU(n) { .kind = LAYER_RELU, .name = n }
#define POOL(n) { .kind = LAYER_MAXPOOL, .name = n }
#define FC(n, c) { .kind = LAYER_LINEAR, .name = n, .width = c }
#define LOSS { .kind = LAYER_SOFTMAX_XENT, .name = "loss" }

/* LeNet-5 (LeCun et al. 1998) with ReLU and max pooling, as in PyTorch's tutorials: 28x28 in,
 * the first conv padded to keep 28x28. */
static const struct layer_spec lenet5_layers[] = {
    CONV("conv1", 6, 5, 1, 2), RELU("relu1"), POOL("pool1"),
    CONV("conv2", 16, 5, 1, 0), RELU("relu2"), POOL("pool2"),
    FC("fc1", 120), RELU("relu3"),
    FC("fc2", 84), RELU("relu4"),
    FC("fc3", WIDTH_CLASSES),
    LOSS,
};

/* The layers of a ResNet (He et al. 2016) basic block named p ("b2") of width c reading layer
 * in (the previous block's output): conv3x3 (stride s) + BN + ReLU, conv3x3 + BN, the shortcut
 * (identity, or with `proj` a 1x1 conv at stride s + BN), add, ReLU. Convs before a BN have no
 * bias, as in torchvision. */
#define BCONV(n, c, k, s, p, in) \
    { .kind = LAYER_CONV, .name = n, .width = c, .kernel = k, .stride = s, .pad = p, \
      .no_bias = 1, .input = in }
#define BN(n) { .kind = LAYER_BATCHNORM, .name = n }
#define ADD(n, skip_) { .kind = LAYER_ADD, .name = n, .skip = skip_ }
#define BLOCK(p, c, s, in)                                                                     \
    BCONV(p ".conv1", c, 3, s, 1, in), BN(p ".bn1"), RELU(p ".relu1"),                        \
    BCONV(p ".conv2", c, 3, 1, 1, NULL), BN(p ".bn2"), ADD(p ".add", in), RELU(p ".relu2")
#define PROJ_BLOCK(p, c, s, in)                                                                \
    BCONV(p ".conv1", c, 3, s, 1, in), BN(p ".bn1"), RELU(p ".relu1"),                        \
    BCONV(p ".conv2", c, 3, 1, 1, NULL), BN(p ".bn2"),                                         \
    BCONV(p ".proj", c, 1, s, 0, in), BN(p ".proj_bn"), ADD(p ".add", p ".bn2"),              \
    RELU(p ".relu2")
#define RESNET8(w)                                                                             \
    BCONV("conv1", w, 3, 1, 1, NULL), BN("bn1"), RELU("relu1"),                                \
    BLOCK("b1", w, 1, "relu1"),                                                                \
    PROJ_BLOCK("b2", 2 * (w), 2, "b1.relu2"),                                                  \
    PROJ_BLOCK("b3", 4 * (w), 2, "b2.relu2"),                                                  \
    { .kind = LAYER_AVGPOOL, .name = "avgpool" },                                              \
    FC("fc", WIDTH_CLASSES),                                                                   \
    LOSS

static const struct layer_spec resnet8_layers[] = { RESNET8(16) };
static const struct layer_spec wide_layers[] = { RESNET8(64) };

/* A plain CNN of eight 3x3 convolutions without batch norm, He-initialised: four at 16
 * channels, max pooling, four at 32, max pooling, one linear layer. */
#define HCONV(n, c) \
    { .kind = LAYER_CONV, .name = n, .width = c, .kernel = 3, .stride = 1, .pad = 1, \
      .init = INIT_HE }
static const struct layer_spec deep_layers[] = {
    HCONV("conv1", 16), RELU("relu1"), HCONV("conv2", 16), RELU("relu2"),
    HCONV("conv3", 16), RELU("relu3"), HCONV("conv4", 16), RELU("relu4"), POOL("pool1"),
    HCONV("conv5", 32), RELU("relu5"), HCONV("conv6", 32), RELU("relu6"),
    HCONV("conv7", 32), RELU("relu7"), HCONV("conv8", 32), RELU("relu8"), POOL("pool2"),
    FC("fc", WIDTH_CLASSES),
    LOSS,
};

#define PRESET_FIELDS(n, s, t, l) \
    .name = n, .summary = s, .note = t, .layers = l, .nlayers = sizeof l / sizeof l[0]
#define PRESET(n, s, t, l) { PRESET_FIELDS(n, s, t, l) }
/* Batch norm networks swing by points between seeds early in training (fp32 on resnet8, 2 epochs
 * of 5,000 images: 3.0 pp std over 3 seeds, docs/VERIFICATION.md): verify trains 3 seeds, so
 * that it measures that spread and says inconclusive instead of judging noise. */
#define BN_PROTOCOL .verify_seeds = 3
/* LeNet-5 after the default 5 epochs: fp32 reads 88.95%, 88.56% and 89.68% on seeds 1-3 (std
 * 0.57 pp): one seed's difference from fp32 would carry about 0.8 pp of noise against the 1 pp
 * tolerance, so verify trains 3 seeds and pairs them (docs/VERIFICATION.md). */
#define LENET5_PROTOCOL .verify_seeds = 3
/* deep needs none: after 5 epochs fp32 reads 90.32%, 90.82% and 90.56% on seeds 1-3 (std 0.25
 * pp), one seed's difference carrying about 0.35 pp of noise (docs/VERIFICATION.md). */

static const struct net_preset presets[] = {
    PRESET("seed", "conv3x3 (--channels) + ReLU + one linear layer: the default",
           "precision barely matters here (docs/VERIFICATION.md)", seed_layers),
    { PRESET_FIELDS("lenet5", "LeNet-5: two conv5x5 + max pooling, three linear layers", NULL,
                    lenet5_layers),
      LENET5_PROTOCOL },
    { PRESET_FIELDS("resnet8", "ResNet-8: conv3x3 16 + BN, three basic blocks (16, 32, 64), "
                    "global average pooling, one linear layer",
                    "batch norm statistics and a long residual gradient path", resnet8_layers),
      BN_PROTOCOL },
    PRESET("deep", "eight conv3x3 (16, 16, 16, 16, 32, 32, 32, 32) without BN, He init, two max "
           "poolings, one linear layer",
           "He init: with PyTorch's default init, U(+-1/sqrt(fan_in)), each conv+ReLU shrinks "
           "the signal by sqrt(6) (about 1300x over the eight) and it does not train (PyTorch, "
           "5,000 images, 2 epochs: loss 2.303, 10.9% accuracy; He: 0.498, 82.3%; "
           "tools/torch_deep_init.py)", deep_layers),
    { PRESET_FIELDS("wide", "resnet8 at 4x the channels (64, 128, 256): the compute-heavy shape",
                    NULL, wide_layers),
      BN_PROTOCOL },
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
