/* Gradient checks: every layer's backward and the whole seed network's gradients against central
 * finite differences of the forward pass, on small shapes, on the CPU reference backend.
 * Tolerances are justified in docs/NUMERICS.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "registry.h"
#include "check.h"
#include "error.h"
#include "model.h"
#include "rng.h"
#include "scaler.h"

static struct backend be;

#define ATOL 1e-3
#define RTOL 1e-2

static struct amp_tensor make(size_t n, enum amp_dtype dt, struct rng *r, float lo, float hi)
{
    struct amp_tensor t;
    if (tensor_alloc(&be, &t, n, dt, MEM_WORKSPACE) != AMP_OK) {
        fprintf(stderr, "%s\n", amp_last_error());
        exit(1);
    }
    if (r && dt == AMP_F32)
        for (size_t i = 0; i < n; i++)
            ((float *)t.data)[i] = rng_uniform(r, lo, hi);
    return t;
}

/* Projection loss L = sum_i out[i] * proj[i], accumulated in double. */
static double project(const struct amp_tensor *out, const struct amp_tensor *proj)
{
    double s = 0.0;
    for (size_t i = 0; i < out->numel; i++)
        s += (double)((float *)out->data)[i] * ((float *)proj->data)[i];
    return s;
}

/* |fd - an| / (atol + rtol |an|) at element i of x, with central differences of step eps. */
static double fd_ratio(float *v, size_t i, float eps, double an, double (*loss)(void *), void *arg)
{
    const float keep = v[i];
    v[i] = keep + eps;
    const double lp = loss(arg);
    v[i] = keep - eps;
    const double lm = loss(arg);
    v[i] = keep;
    const double fd = (lp - lm) / (2.0 * (double)eps);
    return fabs(fd - an) / (ATOL + RTOL * fabs(an));
}

/* Compares an analytic gradient of `x` with central differences of loss(): returns the worst
 * violation ratio |fd - an| / (ATOL + RTOL |an|) (<= 1 passes). An element may instead pass at
 * step eps/4 (the O(eps^2) error of a curved loss, as batch norm's, shrinks 16x); with
 * kinks > 0, up to that fraction of the elements may fail both, as elements whose difference
 * straddles a kink (a ReLU or max pooling switching somewhere in the batch) do. */
static double compare_kinks(const char *name, struct amp_tensor *x, const float *analytic,
                            float eps, double kinks, double (*loss)(void *), void *arg)
{
    double worst = 0.0;
    size_t failing = 0;
    float *v = x->data;
    for (size_t i = 0; i < x->numel; i++) {
        double ratio = fd_ratio(v, i, eps, analytic[i], loss, arg);
        if (ratio > 1.0) {
            const double fine = fd_ratio(v, i, eps / 4, analytic[i], loss, arg);
            ratio = fine < ratio ? fine : ratio;
        }
        failing += ratio > 1.0;
        if (ratio > worst)
            worst = ratio;
    }
    const size_t allowed = (size_t)(kinks * (double)x->numel);
    check(failing <= allowed, "%s: %zu of %zu elements off (at most %zu allowed at kinks); worst "
          "|fd - analytic| / (atol + rtol |analytic|) = %.3g", name, failing, x->numel, allowed,
          worst);
    return worst;
}

static double compare(const char *name, struct amp_tensor *x, const float *analytic, float eps,
                      double (*loss)(void *), void *arg)
{
    return compare_kinks(name, x, analytic, eps, 0.0, loss, arg);
}

/* ---- conv2d ---- */
struct conv_case {
    struct conv_shape s;
    struct amp_tensor x, w, b, y, proj, ws;
};

static double conv_loss(void *arg)
{
    struct conv_case *c = arg;
    be.ops->conv2d_forward(be.ctx, &c->y, &c->x, &c->w, &c->b, &c->ws, &c->s, AMP_MATH_F32, 0);
    return project(&c->y, &c->proj);
}

static void test_conv(struct rng *r)
{
    struct conv_case c = { .s = { .n = 2, .c_in = 2, .h = 5, .w = 6, .c_out = 3, .kernel = 3,
                                  .stride = 1, .pad = 1 } };
    const size_t xn = 2 * 2 * 5 * 6, yn = 2 * 3 * 5 * 6, wn = 3 * 2 * 9;
    c.x = make(xn, AMP_F32, r, -1, 1);
    c.w = make(wn, AMP_F32, r, -1, 1);
    c.b = make(3, AMP_F32, r, -1, 1);
    c.y = make(yn, AMP_F32, NULL, 0, 0);
    c.proj = make(yn, AMP_F32, r, -1, 1);
    c.ws = make(be.ops->conv2d_workspace(be.ctx, &c.s, AMP_F32, AMP_MATH_F32) / sizeof(float),
                AMP_F32, NULL, 0, 0);
    for (size_t i = 0; i < c.ws.numel; i++) /* ops must not rely on a zeroed workspace */
        ((float *)c.ws.data)[i] = 1e30f;
    struct amp_tensor dw = make(wn, AMP_F32, NULL, 0, 0), db = make(3, AMP_F32, NULL, 0, 0),
                      dx = make(xn, AMP_F32, NULL, 0, 0);
    be.ops->conv2d_backward(be.ctx, &dw, &db, &dx, &c.proj, &c.x, &c.w, &c.ws, &c.s,
                            AMP_MATH_F32);
    compare("conv2d dweight", &c.w, dw.data, 1e-2f, conv_loss, &c);
    compare("conv2d dbias", &c.b, db.data, 1e-2f, conv_loss, &c);
    compare("conv2d dinput", &c.x, dx.data, 1e-2f, conv_loss, &c);
    struct amp_tensor *all[] = { &c.x, &c.w, &c.b, &c.y, &c.proj, &c.ws, &dw, &db, &dx };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        tensor_free(&be, all[i]);
}

/* ---- linear ---- */
struct linear_case {
    uint32_t n, k, m;
    struct amp_tensor x, w, b, y, proj;
};

static double linear_loss(void *arg)
{
    struct linear_case *c = arg;
    be.ops->linear_forward(be.ctx, &c->y, &c->x, &c->w, &c->b, c->n, c->k, c->m, AMP_MATH_F32);
    return project(&c->y, &c->proj);
}

static void test_linear(struct rng *r)
{
    /* n = 5 exercises both the blocked and the remainder path of the forward pass. */
    struct linear_case c = { .n = 5, .k = 300, .m = 4 };
    c.x = make(5 * 300, AMP_F32, r, -1, 1);
    c.w = make(4 * 300, AMP_F32, r, -0.1f, 0.1f);
    c.b = make(4, AMP_F32, r, -1, 1);
    c.y = make(5 * 4, AMP_F32, NULL, 0, 0);
    c.proj = make(5 * 4, AMP_F32, r, -1, 1);
    struct amp_tensor dw = make(4 * 300, AMP_F32, NULL, 0, 0), db = make(4, AMP_F32, NULL, 0, 0),
                      dx = make(5 * 300, AMP_F32, NULL, 0, 0);
    be.ops->linear_backward(be.ctx, &dx, &dw, &db, &c.proj, &c.x, &c.w, c.n, c.k, c.m,
                            AMP_MATH_F32, NULL);
    compare("linear dweight", &c.w, dw.data, 1e-2f, linear_loss, &c);
    compare("linear dbias", &c.b, db.data, 1e-2f, linear_loss, &c);
    compare("linear dinput", &c.x, dx.data, 1e-2f, linear_loss, &c);
    struct amp_tensor *all[] = { &c.x, &c.w, &c.b, &c.y, &c.proj, &dw, &db, &dx };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        tensor_free(&be, all[i]);
}

/* ---- relu ---- */
struct relu_case {
    struct amp_tensor x, y, proj;
};

static double relu_loss(void *arg)
{
    struct relu_case *c = arg;
    be.ops->relu_forward(be.ctx, &c->y, &c->x);
    return project(&c->y, &c->proj);
}

static void test_relu(struct rng *r)
{
    struct relu_case c;
    const size_t n = 64;
    c.x = make(n, AMP_F32, r, -1, 1);
    for (size_t i = 0; i < n; i++) { /* keep inputs away from the kink at 0 */
        float *v = c.x.data;
        v[i] = v[i] < 0 ? v[i] - 0.05f : v[i] + 0.05f;
    }
    c.y = make(n, AMP_F32, NULL, 0, 0);
    c.proj = make(n, AMP_F32, r, -1, 1);
    struct amp_tensor dx = make(n, AMP_F32, NULL, 0, 0);
    relu_loss(&c);
    be.ops->relu_backward(be.ctx, &dx, &c.proj, &c.y);
    compare("relu dinput", &c.x, dx.data, 1e-2f, relu_loss, &c);
    tensor_free(&be, &c.x);
    tensor_free(&be, &c.y);
    tensor_free(&be, &c.proj);
    tensor_free(&be, &dx);
}

/* ---- softmax cross-entropy ---- */
struct xent_case {
    uint32_t n, m;
    struct amp_tensor z, labels, stats;
};

static double xent_loss(void *arg)
{
    struct xent_case *c = arg;
    be.ops->softmax_xent(be.ctx, NULL, &c->stats, &c->z, &c->labels, NULL, c->n, c->m, AMP_F32);
    return (double)((float *)c->stats.data)[0] / c->n;
}

static void test_xent(struct rng *r)
{
    struct xent_case c = { .n = 6, .m = 5 };
    c.z = make(30, AMP_F32, r, -3, 3);
    c.labels = make(6, AMP_I32, NULL, 0, 0);
    for (int i = 0; i < 6; i++)
        ((int32_t *)c.labels.data)[i] = (int32_t)rng_below(r, 5);
    c.stats = make(2, AMP_F32, NULL, 0, 0);
    struct amp_tensor dz = make(30, AMP_F32, NULL, 0, 0);
    be.ops->softmax_xent(be.ctx, &dz, &c.stats, &c.z, &c.labels, NULL, c.n, c.m, AMP_F32);
    compare("softmax_xent dlogits", &c.z, dz.data, 1e-3f, xent_loss, &c);
    /* The loss scale multiplies the gradient exactly (loss scaling relies on it). */
    struct amp_tensor dz2 = make(30, AMP_F32, NULL, 0, 0);
    struct amp_tensor scaler = make(sizeof(struct loss_scaler) / 4, AMP_I32, NULL, 0, 0);
    *(struct loss_scaler *)scaler.data = scaler_make(1024.0f, 0, 2000, 0.0f, 0.0f);
    be.ops->softmax_xent(be.ctx, &dz2, &c.stats, &c.z, &c.labels, &scaler, c.n, c.m, AMP_F32);
    int exact = 1;
    for (int i = 0; i < 30; i++)
        exact &= ((float *)dz2.data)[i] == 1024.0f * ((float *)dz.data)[i];
    check(exact, "softmax_xent: the loss scale 1024 scales dlogits exactly");
    tensor_free(&be, &c.z);
    tensor_free(&be, &c.labels);
    tensor_free(&be, &c.stats);
    tensor_free(&be, &dz);
    tensor_free(&be, &dz2);
    tensor_free(&be, &scaler);
}

/* ---- the whole network ---- */
/* The training-mode loss (batch norm on batch statistics): a step with lr 0 and momentum 0
 * leaves the weights as they are (the running statistics it moves do not enter it). */
static double net_loss(void *arg)
{
    struct model *model = arg;
    const uint32_t n = model_shape_of(model)->batch;
    struct step_result bs;
    model_train_step(model, n, 0.0f, 0.0f, &bs);
    return bs.loss_sum / n;
}

/* Every parameter gradient of preset `net` on h x w inputs against central differences of its
 * loss. */
static void test_network(struct rng *r, const struct net_preset *net, uint32_t h, uint32_t w)
{
    const struct model_shape shape = { .batch = 4, .c_in = 1, .h = h, .w = w, .classes = 4,
                                       .channels = 3 };
    struct model *model;
    const struct precision_plan fp32 = precision_plan_of(recipe_reference(), POLICY_SEED);
    if (model_create(&model, &be, net, &shape, &fp32, SCALING_NONE, NULL) != AMP_OK ||
        model_init(model, r) != AMP_OK) {
        fprintf(stderr, "%s\n", amp_last_error());
        exit(1);
    }
    float images[4 * 64];
    int32_t labels[4];
    for (uint32_t i = 0; i < 4 * h * w; i++)
        images[i] = rng_float(r);
    for (int i = 0; i < 4; i++)
        labels[i] = (int32_t)rng_below(r, 4);
    model_set_batch(model, images, labels, 4);
    /* lr 0: the step computes the gradients and leaves the weights as they are. */
    struct step_result bs;
    model_train_step(model, 4, 0.0f, 0.0f, &bs);
    for (size_t p = 0; p < model_nparams(model); p++) {
        struct model_param mp;
        model_param(model, p, &mp);
        float *g = malloc(mp.numel * sizeof *g);
        memcpy(g, mp.grad->data, mp.numel * sizeof *g);
        char name[64];
        snprintf(name, sizeof name, "%s network d%s", net->name, mp.name);
        /* FP32 weights are the stored ones (no copy): perturbing them moves the loss. */
        compare_kinks(name, (struct amp_tensor *)mp.stored, g, 1e-3f, 0.03, net_loss, model);
        free(g);
    }
    model_destroy(model);
}

/* A layer table of the test's own: a conv, then two linear layers with a ReLU between them, so
 * that gradients flow through a linear layer's input and ReLUs after conv and linear layers. */
static const struct layer_spec mlp_head_layers[] = {
    { .kind = LAYER_CONV, .name = "conv", .width = 2, .kernel = 3, .stride = 1, .pad = 1 },
    { .kind = LAYER_RELU, .name = "relu1" },
    { .kind = LAYER_LINEAR, .name = "fc1", .width = 7 },
    { .kind = LAYER_RELU, .name = "relu2" },
    { .kind = LAYER_LINEAR, .name = "fc2", .width = WIDTH_CLASSES },
    { .kind = LAYER_SOFTMAX_XENT, .name = "loss" },
};
static const struct net_preset mlp_head = { .name = "mlp-head", .summary = "test",
                                            .layers = mlp_head_layers, .nlayers = 6 };

/* LeNet's kinds at a small size: a padded 5x5 conv, max pooling, an unpadded conv without bias,
 * linear layers with a ReLU between them. */
static const struct layer_spec lenet_like_layers[] = {
    { .kind = LAYER_CONV, .name = "conv1", .width = 2, .kernel = 5, .stride = 1, .pad = 2 },
    { .kind = LAYER_RELU, .name = "relu1" },
    { .kind = LAYER_MAXPOOL, .name = "pool1" },
    { .kind = LAYER_CONV, .name = "conv2", .width = 3, .kernel = 3, .no_bias = 1, .stride = 1 },
    { .kind = LAYER_RELU, .name = "relu2" },
    { .kind = LAYER_LINEAR, .name = "fc1", .width = 5 },
    { .kind = LAYER_RELU, .name = "relu3" },
    { .kind = LAYER_LINEAR, .name = "fc2", .width = WIDTH_CLASSES },
    { .kind = LAYER_SOFTMAX_XENT, .name = "loss" },
};
static const struct net_preset lenet_like = {
    .name = "lenet-like", .summary = "test", .layers = lenet_like_layers,
    .nlayers = sizeof lenet_like_layers / sizeof lenet_like_layers[0] };

/* ResNet's kinds at a small size: batch norm, a stride-2 block with a 1x1 projection shortcut,
 * an identity shortcut (so gradients are summed where a layer has two readers), global average
 * pooling. */
static const struct layer_spec res_like_layers[] = {
    { .kind = LAYER_CONV, .name = "conv1", .width = 3, .kernel = 3, .stride = 1, .pad = 1,
      .no_bias = 1 },
    { .kind = LAYER_BATCHNORM, .name = "bn1" },
    { .kind = LAYER_RELU, .name = "relu1" },
    { .kind = LAYER_CONV, .name = "b.conv1", .width = 4, .kernel = 3, .stride = 2, .pad = 1,
      .no_bias = 1 },
    { .kind = LAYER_BATCHNORM, .name = "b.bn1" },
    { .kind = LAYER_RELU, .name = "b.relu1" },
    { .kind = LAYER_CONV, .name = "b.conv2", .width = 4, .kernel = 3, .stride = 1, .pad = 1 },
    { .kind = LAYER_BATCHNORM, .name = "b.bn2" },
    { .kind = LAYER_CONV, .name = "b.proj", .width = 4, .kernel = 1, .stride = 2,
      .input = "relu1" },
    { .kind = LAYER_BATCHNORM, .name = "b.proj_bn" },
    { .kind = LAYER_ADD, .name = "b.add", .skip = "b.bn2" },
    { .kind = LAYER_RELU, .name = "b.relu2" },
    { .kind = LAYER_CONV, .name = "c.conv", .width = 4, .kernel = 3, .stride = 1, .pad = 1,
      .init = INIT_HE },
    { .kind = LAYER_ADD, .name = "c.add", .skip = "b.relu2" },
    { .kind = LAYER_AVGPOOL, .name = "avgpool" },
    { .kind = LAYER_LINEAR, .name = "fc", .width = WIDTH_CLASSES },
    { .kind = LAYER_SOFTMAX_XENT, .name = "loss" },
};
static const struct net_preset res_like = {
    .name = "res-like", .summary = "test", .layers = res_like_layers,
    .nlayers = sizeof res_like_layers / sizeof res_like_layers[0] };

int main(void)
{
    if (backend_open(&be, "cpu", &(struct backend_options){ .threads = 2 }) != AMP_OK) {
        fprintf(stderr, "%s\n", amp_last_error());
        return 1;
    }
    struct rng r;
    rng_seed(&r, 7);
    test_conv(&r);
    test_linear(&r);
    test_relu(&r);
    test_xent(&r);
    test_network(&r, net_default(), 6, 5);
    test_network(&r, &mlp_head, 6, 5);
    test_network(&r, &lenet_like, 8, 8);
    test_network(&r, &res_like, 8, 7);
    check(be.mem.current_total == 0, "every tensor freed (memory accounting back to 0)");
    backend_close(&be);
    return check_summary();
}
