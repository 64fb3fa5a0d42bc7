/* Layer tables laid out without a backend: every preset's parameter count against PyTorch's
 * (the same modules built in torch and counted), output shapes, FLOPs, the precision trace per
 * policy, which ReLUs run in their conv's epilogue, and malformed graphs refused with one message
 * naming the layer. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "error.h"
#include "layers.h"
#include "model.h"

static const struct model_shape mnist = { .batch = 32, .c_in = 1, .h = 28, .w = 28,
                                          .classes = 10, .channels = 16 };

/* sum(p.numel() for p in module.parameters()) of the same networks in PyTorch 1.13. */
static void test_param_counts(void)
{
    static const struct { const char *net; size_t params; } want[] = {
        { "seed", 16 * 9 + 16 + 16 * 28 * 28 * 10 + 10 },
        { "lenet5", 61706 },
        { "resnet8", 77754 },
        { "deep", 55194 },
        { "wide", 1226442 },
    };
    const struct precision_plan fp32 = precision_plan_of(recipe_reference(), POLICY_SEED);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const struct net_preset *net = net_find(want[i].net);
        CHECK(net != NULL, "preset %s exists", want[i].net);
        if (!net)
            continue;
        struct net_totals t;
        CHECK(model_totals(net, &mnist, &fp32, &t) == AMP_OK, "%s lays out at 1x28x28",
              want[i].net);
        CHECK(t.params == want[i].params, "%s: %zu parameters (PyTorch: %zu)", want[i].net,
              t.params, want[i].params);
        CHECK(t.flops > 0, "%s: FLOPs counted", want[i].net);
    }
    CHECK(net_count() == 5, "five presets");
}

/* The layer called name, or an empty entry (its strings "") when there is none. */
static const struct layer_info *find(const struct layer_info *info, size_t n, const char *name)
{
    static const struct layer_info none = { .trace = { .name = "" } };
    for (size_t i = 0; i < n; i++)
        if (strcmp(info[i].trace.name, name) == 0)
            return &info[i];
    return &none;
}

static void test_shapes_and_trace(void)
{
    struct layer_info info[64];
    size_t n;
    const struct precision_plan fp32 = precision_plan_of(recipe_reference(), POLICY_SEED);
    CHECK(model_layers(net_find("lenet5"), &mnist, &fp32, info, 64, &n) == AMP_OK && n == 12,
          "lenet5: 12 layers");
    const struct layer_info *p2 = find(info, n, "pool2");
    CHECK(p2->c == 16 && p2->h == 5 && p2->w == 5, "lenet5 pool2: 16x5x5");
    CHECK(strcmp(find(info, n, "conv1")->trace.layer, "conv5x5") == 0, "lenet5 conv1 is a conv5x5");

    const struct recipe *amp = recipe_find("amp");
    const struct precision_plan autocast = precision_plan_of(amp, POLICY_AUTOCAST);
    const struct precision_plan naive = precision_plan_of(amp, POLICY_NAIVE);
    const struct precision_plan seed = precision_plan_of(amp, POLICY_SEED);
    CHECK(naive.role[ROLE_NORM] == AMP_F16 && naive.role[ROLE_LOSS] == AMP_F16 &&
          naive.role[ROLE_LINEAR] == AMP_F16, "naive: norm, loss and linear in fp16");
    CHECK(autocast.role[ROLE_NORM] == AMP_F32 && autocast.role[ROLE_LOSS] == AMP_F32,
          "autocast: norm and loss in fp32");
    CHECK(seed.role[ROLE_LINEAR] == AMP_F32 && seed.role[ROLE_NORM] == AMP_F32,
          "seed: linear and norm in fp32");
    const struct precision_plan pure = precision_plan_of(recipe_find("fp16-pure"), POLICY_SEED);
    CHECK(pure.role[ROLE_NORM] == AMP_F16 && pure.role[ROLE_LOSS] == AMP_F32,
          "fp16-pure: norm in fp16 (model.half()), loss in fp32");

    const struct net_preset *resnet8 = net_find("resnet8");
    CHECK(model_layers(resnet8, &mnist, &autocast, info, 64, &n) == AMP_OK, "resnet8 lays out");
    const struct layer_info *bn = find(info, n, "b2.bn1");
    CHECK(strcmp(bn->trace.compute, "fp32 stats, fp16 data") == 0 &&
          strcmp(bn->trace.output, "fp16") == 0 && strcmp(bn->trace.weights, "fp32") == 0,
          "autocast resnet8 b2.bn1: fp32 parameters and statistics, fp16 data (%s | %s)",
          bn->trace.compute, bn->trace.weights);
    const struct layer_info *b3 = find(info, n, "b3.relu2");
    CHECK(b3->c == 64 && b3->h == 7 && b3->w == 7, "resnet8 b3: 64x7x7");
    CHECK(strcmp(find(info, n, "b2.conv1")->trace.layer, "conv3x3/2") == 0 &&
          strcmp(find(info, n, "b2.proj")->trace.layer, "conv1x1/2") == 0,
          "resnet8: stride-2 conv3x3 and 1x1 projection");
    CHECK(strcmp(find(info, n, "loss")->trace.compute, "fp32") == 0, "autocast: loss in fp32");
    CHECK(model_layers(resnet8, &mnist, &naive, info, 64, &n) == AMP_OK, "resnet8 naive");
    bn = find(info, n, "bn1");
    CHECK(strcmp(bn->trace.compute, "fp16 stats, fp16 data") == 0 &&
          strcmp(bn->trace.weights, "fp16 copy of fp32 master") == 0,
          "naive resnet8 bn1: fp16 statistics, fp16 copy of the fp32 parameters");
    CHECK(strcmp(find(info, n, "loss")->trace.compute, "fp16") == 0, "naive: softmax in fp16");
}

/* A malformed table: laying it out fails with AMP_EINPUT and a message containing `want`. */
static void refused(const char *what, const struct layer_spec *layers, size_t nlayers,
                    const char *want)
{
    const struct net_preset net = { .name = "bad", .summary = "test", .layers = layers,
                                    .nlayers = nlayers };
    const struct precision_plan fp32 = precision_plan_of(recipe_reference(), POLICY_SEED);
    struct net_totals t;
    const int rc = model_totals(&net, &mnist, &fp32, &t);
    CHECK(rc == AMP_EINPUT && strstr(amp_last_error(), want) != NULL, "%s refused: %s", what,
          amp_last_error());
}

#define CONV(n) { .kind = LAYER_CONV, .name = n, .width = 4, .kernel = 3, .stride = 1, .pad = 1 }
#define FC { .kind = LAYER_LINEAR, .name = "fc", .width = WIDTH_CLASSES }
#define LOSS { .kind = LAYER_SOFTMAX_XENT, .name = "loss" }

static void test_malformed(void)
{
    const struct layer_spec unknown[] = {
        CONV("a"), { .kind = LAYER_ADD, .name = "add", .skip = "nope" }, FC, LOSS };
    refused("an unknown skip", unknown, 4, "layer add reads layer 'nope'");
    const struct layer_spec later[] = {
        CONV("a"), { .kind = LAYER_RELU, .name = "r", .input = "fc" }, FC, LOSS };
    refused("a later layer as input", later, 4, "layer r reads layer 'fc'");
    const struct layer_spec noskip[] = { CONV("a"), { .kind = LAYER_ADD, .name = "add" }, FC, LOSS };
    refused("an add without skip", noskip, 4, "layer add: an add names its skip layer");
    const struct layer_spec mismatch[] = {
        CONV("a"), { .kind = LAYER_MAXPOOL, .name = "p" },
        { .kind = LAYER_ADD, .name = "add", .skip = "a" }, FC, LOSS };
    refused("an add of two shapes", mismatch, 5, "layer add adds a (4x28x28) to 4x14x14");
    const struct layer_spec dangling[] = { CONV("a"), CONV("b"), { .kind = LAYER_RELU, .name = "r",
                                           .input = "a" }, FC, LOSS };
    refused("a layer nobody reads", dangling, 5, "layer b: no layer reads its output");
    const struct layer_spec bnfirst[] = { { .kind = LAYER_BATCHNORM, .name = "bn" }, FC, LOSS };
    refused("batch norm on the input", bnfirst, 3, "layer bn: only a conv or linear layer");
    const struct layer_spec pool1x1[] = {
        CONV("a"), { .kind = LAYER_AVGPOOL, .name = "gap" }, { .kind = LAYER_MAXPOOL, .name = "p" },
        FC, LOSS };
    refused("max pooling a 1x1 input", pool1x1, 5, "layer p: 2x2 max pooling cannot take a 1x1");
    const struct layer_spec fcnobias[] = {
        CONV("a"), { .kind = LAYER_LINEAR, .name = "fc", .width = WIDTH_CLASSES, .no_bias = 1 },
        LOSS };
    refused("a linear layer without a bias", fcnobias, 3,
            "layer fc: a linear layer without a bias is not supported");
}

/* Preset `name` laid out under plan into l (64 layers at most), for 1x28x28 inputs, 10 classes,
 * 16 channels. */
static const struct net_preset *laid_out(const char *name, const struct precision_plan *plan,
                                         struct layer_plan l[64])
{
    const struct net_preset *net = net_find(name);
    CHECK(net && net->nlayers <= 64 &&
              layers_plan(net, (struct act_shape){ 1, 28, 28 }, 10, 16, plan, l) == AMP_OK,
          "%s lays out", name);
    return net;
}

/* A ReLU in place over a conv's output is fused into it (layers.c): every ReLU of seed, lenet5
 * and deep that reads a conv, none of resnet8's (they read batch norms and adds), under every
 * policy; the fused pair's conv alone is marked relu_epilogue. */
static void test_fused_relu(void)
{
    static const struct { const char *net; size_t fused; } want[] = {
        { "seed", 1 }, { "lenet5", 2 }, { "deep", 8 }, { "resnet8", 0 }, { "wide", 0 },
    };
    const struct precision_plan plans[] = { precision_plan_of(recipe_find("fp32"), POLICY_SEED),
                                            precision_plan_of(recipe_find("amp"), POLICY_AUTOCAST),
                                            precision_plan_of(recipe_find("bf16"), POLICY_NAIVE) };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        for (size_t k = 0; k < sizeof plans / sizeof plans[0]; k++) {
            struct layer_plan l[64];
            const struct net_preset *net = laid_out(want[i].net, &plans[k], l);
            size_t fused = 0, marked = 0, wrong = 0;
            for (size_t j = 0; j < net->nlayers; j++) {
                fused += l[j].fused;
                marked += l[j].relu_epilogue;
                if (l[j].fused)
                    wrong += l[j].kind != &layer_relu || !l[j].in_place ||
                             !l[l[j].input].relu_epilogue || l[l[j].input].kind != &layer_conv;
            }
            CHECK(fused == want[i].fused && marked == fused && wrong == 0,
                  "%s (plan %zu): %zu ReLUs fused into their conv (want %zu), %zu convs marked, "
                  "%zu wrong", want[i].net, k, fused, want[i].fused, marked, wrong);
        }
}

/* A linear over a ReLU in place that only it reads, not through a rounded copy, masks its input
 * gradient itself (layers.c): both of lenet5's FC ReLUs and seed's ReLU under FP32 (seed's conv
 * ReLU has both fusions), under the seed policy's amp (an FP32 linear over an FP16 ReLU: no
 * rounded copy, its input gradient written in FP16) and where the linears are FP8 (autocast
 * mxfp8: they read a quantized x, the mask the ReLU's own output); under every plan each marked
 * linear reads a marked ReLU. */
static void test_fused_relu_backward(void)
{
    static const struct { const char *net; size_t fp32, seed_amp, fp8; } want[] = {
        { "seed", 1, 1, 1 }, { "lenet5", 2, 2, 2 }, { "deep", 0, 0, 0 },
        { "resnet8", 0, 0, 0 }, { "wide", 0, 0, 0 },
    };
    const struct precision_plan plans[] = { precision_plan_of(recipe_find("fp32"), POLICY_SEED),
                                            precision_plan_of(recipe_find("amp"), POLICY_AUTOCAST),
                                            precision_plan_of(recipe_find("amp"), POLICY_SEED),
                                            precision_plan_of(recipe_find("bf16"), POLICY_NAIVE),
                                            precision_plan_of(recipe_find("mxfp8"), POLICY_AUTOCAST) };
    const size_t nplans = sizeof plans / sizeof plans[0];
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        for (size_t k = 0; k < nplans; k++) {
            struct layer_plan l[64];
            const struct net_preset *net = laid_out(want[i].net, &plans[k], l);
            size_t masks = 0, marked = 0, wrong = 0, fp8_masks = 0;
            for (size_t j = 0; j < net->nlayers; j++) {
                masks += l[j].relu_mask;
                fp8_masks += l[j].relu_mask && l[j].fp8;
                marked += l[j].fused_backward;
                if (l[j].relu_mask) {
                    const struct layer_plan *r = &l[l[j].input];
                    wrong += l[j].kind != &layer_linear || l[j].casts_input ||
                             r->kind != &layer_relu || !r->fused_backward || !r->in_place ||
                             r->consumers != 1;
                }
            }
            const int fp8 = k + 1 == nplans;
            CHECK(masks == marked && wrong == 0 && (k != 0 || masks == want[i].fp32) &&
                      (k != 2 || masks == want[i].seed_amp) &&
                      (!fp8 || fp8_masks == want[i].fp8),
                  "%s (plan %zu): %zu linears mask their input gradient, %zu ReLUs marked, "
                  "%zu wrong", want[i].net, k, masks, marked, wrong);
        }
}

int main(void)
{
    test_param_counts();
    test_shapes_and_trace();
    test_fused_relu();
    test_fused_relu_backward();
    test_malformed();
    return check_summary();
}
