/* The seed network on the backend interface: allocation in the precision plan's dtypes,
 * PyTorch-default init, forward, backward, loss scaling and the SGD momentum update. */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "lowp.h"
#include "nvtx.h"

const char *seed_param_name(enum seed_param p)
{
    static const char *const names[SEED_NPARAMS] = {
        [PARAM_CONV_W] = "conv.weight",
        [PARAM_CONV_B] = "conv.bias",
        [PARAM_FC_W] = "fc.weight",
        [PARAM_FC_B] = "fc.bias",
    };
    return names[p];
}

static uint32_t fc_inputs(const struct seed_shape *s)
{
    return s->channels * s->h * s->w;
}

size_t seed_param_numel(const struct seed_shape *s, enum seed_param p)
{
    switch (p) {
    case PARAM_CONV_W: return (size_t)s->channels * s->c_in * 9;
    case PARAM_CONV_B: return s->channels;
    case PARAM_FC_W: return (size_t)s->classes * fc_inputs(s);
    case PARAM_FC_B: return s->classes;
    case SEED_NPARAMS: break;
    }
    return 0;
}

static struct conv_shape conv_shape_of(const struct seed_shape *s, uint32_t n)
{
    return (struct conv_shape){ .n = n, .c_in = s->c_in, .h = s->h, .w = s->w,
                                .c_out = s->channels, .kernel = 3, .stride = 1, .pad = 1 };
}

/* The dtype a parameter's layer computes with. */
static enum amp_dtype layer_dtype(const struct seed_net *net, enum seed_param p)
{
    return p == PARAM_CONV_W || p == PARAM_CONV_B ? net->plan.conv : net->plan.fc;
}

/* The weights a layer reads: its low-precision copy when there is one. */
static const struct amp_tensor *weights_used(const struct seed_net *net, enum seed_param p)
{
    return net->copy[p].data ? &net->copy[p] : &net->param[p];
}

/* The gradient the optimizer reads (writable). */
static struct amp_tensor *grad_for_update(struct seed_net *net, enum seed_param p)
{
    return (struct amp_tensor *)seed_net_update_grad(net, p);
}

static int alloc_params(struct seed_net *net)
{
    struct backend *be = net->be;
    const enum amp_dtype stored = net->plan.weights;
    int rc = AMP_OK;
    for (int p = 0; p < SEED_NPARAMS && rc == AMP_OK; p++) {
        const size_t n = seed_param_numel(&net->shape, p);
        const enum amp_dtype used = layer_dtype(net, p);
        rc = tensor_alloc(be, &net->param[p], n, stored, MEM_WEIGHTS);
        if (rc == AMP_OK && used != stored)
            rc = tensor_alloc(be, &net->copy[p], n, used, MEM_WEIGHT_COPIES);
        if (rc == AMP_OK)
            rc = tensor_alloc(be, &net->grad[p], n, used, MEM_WEIGHT_GRADS);
        if (rc == AMP_OK && used != stored)
            rc = tensor_alloc(be, &net->master_grad[p], n, stored, MEM_WEIGHT_GRADS);
        if (rc == AMP_OK)
            rc = tensor_alloc(be, &net->velocity[p], n, stored, MEM_OPTIMIZER);
    }
    return rc;
}

static int alloc_activations(struct seed_net *net)
{
    struct backend *be = net->be;
    const struct seed_shape *s = &net->shape;
    const size_t act = (size_t)s->batch * fc_inputs(s), pixels = (size_t)s->batch * s->c_in * s->h * s->w;
    const size_t logits = (size_t)s->batch * s->classes;
    const enum amp_dtype conv = net->plan.conv, fc = net->plan.fc;
    int rc = tensor_alloc(be, &net->input, pixels, AMP_F32, MEM_ACTIVATIONS);
    if (rc == AMP_OK && conv != AMP_F32)
        rc = tensor_alloc(be, &net->input_lp, pixels, conv, MEM_ACTIVATIONS);
    if (rc == AMP_OK)
        rc = tensor_alloc(be, &net->labels, s->batch, AMP_I32, MEM_ACTIVATIONS);
    if (rc == AMP_OK)
        rc = tensor_alloc(be, &net->act, act, conv, MEM_ACTIVATIONS);
    if (rc == AMP_OK)
        rc = tensor_alloc(be, &net->logits, logits, fc, MEM_ACTIVATIONS);
    if (rc == AMP_OK)
        rc = tensor_alloc(be, &net->stats, 2, AMP_F32, MEM_ACTIVATIONS);
    if (rc == AMP_OK) {
        const struct conv_shape cs = conv_shape_of(s, s->batch);
        const size_t ws = be->ops->conv2d_workspace(be->ctx, &cs);
        rc = tensor_alloc(be, &net->conv_ws, (ws + sizeof(float) - 1) / sizeof(float), AMP_F32,
                          MEM_WORKSPACE);
    }
    if (rc == AMP_OK)
        rc = tensor_alloc(be, &net->dlogits, logits, fc, MEM_ACTIVATION_GRADS);
    if (rc == AMP_OK)
        rc = tensor_alloc(be, &net->dact, act, conv, MEM_ACTIVATION_GRADS);
    return rc;
}

int seed_net_create(struct seed_net *net, struct backend *be, const struct seed_shape *shape,
                    const struct precision_plan *plan, enum loss_scaling scaling,
                    const struct loss_scaler *scaler)
{
    memset(net, 0, sizeof *net);
    net->be = be;
    net->shape = *shape;
    net->plan = *plan;
    net->scaling = scaling;
    int rc = alloc_params(net);
    if (rc == AMP_OK)
        rc = alloc_activations(net);
    if (rc == AMP_OK && scaling != SCALING_NONE) {
        const size_t words = (sizeof *scaler + sizeof(int32_t) - 1) / sizeof(int32_t);
        rc = tensor_alloc(be, &net->scaler, words, AMP_I32, MEM_OPTIMIZER);
        if (rc == AMP_OK)
            rc = be->ops->upload(be->ctx, net->scaler.data, scaler, sizeof *scaler);
    }
    if (rc != AMP_OK)
        seed_net_destroy(net);
    return rc;
}

void seed_net_destroy(struct seed_net *net)
{
    struct backend *be = net->be;
    if (!be)
        return;
    for (int p = 0; p < SEED_NPARAMS; p++) {
        struct amp_tensor *ts[] = { &net->param[p], &net->copy[p], &net->grad[p],
                                    &net->master_grad[p], &net->velocity[p] };
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
            tensor_free(be, ts[i]);
    }
    struct amp_tensor *others[] = { &net->scaler, &net->input, &net->input_lp, &net->labels,
                                    &net->act, &net->logits, &net->stats, &net->conv_ws,
                                    &net->dlogits, &net->dact };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        tensor_free(be, others[i]);
    net->be = NULL;
}

/* Uploads n FP32 host values into t, rounded to t's dtype on the host. */
static int upload_rounded(struct backend *be, struct amp_tensor *t, const float *host, size_t n)
{
    if (t->dtype == AMP_F32)
        return be->ops->upload(be->ctx, t->data, host, n * sizeof *host);
    uint16_t *bits = malloc(n * sizeof *bits);
    if (!bits)
        return amp_fail(AMP_ENOMEM, "out of host memory rounding the initial weights");
    if (t->dtype == AMP_F16)
        f16_from_f32_array(bits, host, n, NULL);
    else
        bf16_from_f32_array(bits, host, n, NULL);
    int rc = be->ops->upload(be->ctx, t->data, bits, n * sizeof *bits);
    free(bits);
    return rc;
}

int seed_net_read(struct seed_net *net, const struct amp_tensor *t, float *host)
{
    const struct backend_ops *ops = net->be->ops;
    if (t->dtype == AMP_F32)
        return ops->download(net->be->ctx, host, t->data, t->numel * sizeof *host);
    uint16_t *bits = malloc(t->numel * sizeof *bits);
    if (!bits)
        return amp_fail(AMP_ENOMEM, "out of host memory reading a tensor");
    int rc = ops->download(net->be->ctx, bits, t->data, t->numel * sizeof *bits);
    if (rc == AMP_OK && t->dtype == AMP_F16)
        f16_to_f32_array(host, bits, t->numel);
    else if (rc == AMP_OK)
        bf16_to_f32_array(host, bits, t->numel);
    free(bits);
    return rc;
}

const struct amp_tensor *seed_net_update_grad(const struct seed_net *net, enum seed_param p)
{
    return net->master_grad[p].data ? &net->master_grad[p] : &net->grad[p];
}

int seed_net_init(struct seed_net *net, struct rng *rng)
{
    const struct seed_shape *s = &net->shape;
    const struct backend_ops *ops = net->be->ops;
    const float fan_in[SEED_NPARAMS] = {
        [PARAM_CONV_W] = (float)(s->c_in * 9), [PARAM_CONV_B] = (float)(s->c_in * 9),
        [PARAM_FC_W] = (float)fc_inputs(s), [PARAM_FC_B] = (float)fc_inputs(s),
    };
    for (int p = 0; p < SEED_NPARAMS; p++) {
        const size_t n = seed_param_numel(s, p);
        float *host = malloc(n * sizeof *host);
        if (!host)
            return amp_fail(AMP_ENOMEM, "out of host memory initialising %s", seed_param_name(p));
        /* kaiming_uniform(a = sqrt(5)): gain sqrt(2 / (1 + 5)), bound gain * sqrt(3 / fan_in)
         * = 1 / sqrt(fan_in); the bias bound is 1 / sqrt(fan_in) too. */
        const float bound = 1.0f / sqrtf(fan_in[p]);
        for (size_t i = 0; i < n; i++)
            host[i] = rng_uniform(rng, -bound, bound);
        int rc = upload_rounded(net->be, &net->param[p], host, n);
        free(host);
        if (rc != AMP_OK)
            return rc;
        ops->zero(net->be->ctx, &net->velocity[p]);
        if (net->copy[p].data)
            ops->cast(net->be->ctx, &net->copy[p], &net->param[p]);
    }
    return AMP_OK;
}

int seed_net_set_batch(struct seed_net *net, const float *images, const int32_t *labels,
                       uint32_t n)
{
    const struct seed_shape *s = &net->shape;
    const struct backend_ops *ops = net->be->ops;
    int rc = ops->upload(net->be->ctx, net->input.data, images,
                         (size_t)n * s->c_in * s->h * s->w * sizeof(float));
    if (rc == AMP_OK)
        rc = ops->upload(net->be->ctx, net->labels.data, labels, (size_t)n * sizeof(int32_t));
    return rc;
}

/* A view of the first `numel` elements of a batch-sized tensor (the last batch may be partial). */
static struct amp_tensor view(const struct amp_tensor *t, size_t numel)
{
    struct amp_tensor v = *t;
    v.numel = numel;
    return v;
}

/* Backward pass, master gradients, unscale + inf/NaN check, SGD and the scaler update. */
static void backward_and_update(struct seed_net *net, struct amp_tensor *act,
                                struct amp_tensor *dact, const struct amp_tensor *conv_in,
                                const struct conv_shape *cs, struct amp_tensor *scaler, float lr,
                                float momentum)
{
    const struct backend_ops *ops = net->be->ops;
    void *ctx = net->be->ctx;
    const uint32_t k = fc_inputs(&net->shape), m = net->shape.classes;
    const enum amp_math math = net->plan.math;
    nvtx_push("backward");
    nvtx_push("fc_backward");
    ops->linear_backward(ctx, dact, &net->grad[PARAM_FC_W], &net->grad[PARAM_FC_B],
                         &net->dlogits, act, weights_used(net, PARAM_FC_W), cs->n, k, m, math);
    nvtx_pop();
    nvtx_push("relu_backward");
    ops->relu_backward(ctx, dact, dact, act);
    nvtx_pop();
    nvtx_push("conv_backward");
    ops->conv2d_backward(ctx, &net->grad[PARAM_CONV_W], &net->grad[PARAM_CONV_B], NULL, dact,
                         conv_in, weights_used(net, PARAM_CONV_W), &net->conv_ws, cs, math);
    nvtx_pop();
    nvtx_pop();
    nvtx_push("scaler");
    for (int p = 0; p < SEED_NPARAMS; p++) {
        if (net->master_grad[p].data)
            ops->cast(ctx, &net->master_grad[p], &net->grad[p]);
        if (scaler)
            ops->unscale(ctx, grad_for_update(net, p), scaler);
    }
    nvtx_pop();
    nvtx_push("optimizer");
    for (int p = 0; p < SEED_NPARAMS; p++)
        ops->sgd_momentum(ctx, &net->param[p], &net->velocity[p],
                          net->copy[p].data ? &net->copy[p] : NULL, grad_for_update(net, p),
                          scaler, lr, momentum);
    nvtx_pop();
    if (scaler) {
        nvtx_push("scaler_update");
        ops->scaler_update(ctx, scaler);
        nvtx_pop();
    }
}

/* FNV-1a over what a captured step depends on besides device memory. */
static uint64_t step_key(uint32_t n, int train, float lr, float momentum)
{
    uint32_t words[4] = { n, (uint32_t)(train != 0), 0, 0 };
    memcpy(&words[2], &lr, sizeof lr);
    memcpy(&words[3], &momentum, sizeof momentum);
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < sizeof words; i++) {
        h ^= ((const unsigned char *)words)[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int seed_net_step(struct seed_net *net, uint32_t n, int train, float lr, float momentum,
                  struct step_result *out)
{
    const struct seed_shape *s = &net->shape;
    const struct backend_ops *ops = net->be->ops;
    void *ctx = net->be->ctx;
    const struct conv_shape cs = conv_shape_of(s, n);
    const uint32_t k = fc_inputs(s), m = s->classes;
    const enum amp_math math = net->plan.math;
    struct amp_tensor act = view(&net->act, (size_t)n * k), dact = view(&net->dact, (size_t)n * k);
    struct amp_tensor input = view(&net->input, (size_t)n * s->c_in * s->h * s->w);
    struct amp_tensor input_lp = view(&net->input_lp, input.numel);
    const struct amp_tensor *conv_in = net->input_lp.data ? &input_lp : &input;
    struct amp_tensor *scaler = train && net->scaler.data ? &net->scaler : NULL;

    /* A captured step replays every op below with the arguments it was captured with: the key
     * tells apart training and evaluation, full and partial batches, and (for a schedule) every
     * learning rate and momentum. */
    const uint64_t key = step_key(n, train, lr, momentum);
    if (!ops->step_begin || !ops->step_begin(ctx, key)) {
        nvtx_push("forward");
        if (net->input_lp.data) {
            nvtx_push("input_cast");
            ops->cast(ctx, &input_lp, &input);
            nvtx_pop();
        }
        nvtx_push("conv_forward");
        ops->conv2d_forward(ctx, &act, conv_in, weights_used(net, PARAM_CONV_W),
                            weights_used(net, PARAM_CONV_B), &net->conv_ws, &cs, math);
        nvtx_pop();
        nvtx_push("relu_forward");
        ops->relu_forward(ctx, &act, &act);
        nvtx_pop();
        nvtx_push("fc_forward");
        ops->linear_forward(ctx, &net->logits, &act, weights_used(net, PARAM_FC_W),
                            weights_used(net, PARAM_FC_B), n, k, m, math);
        nvtx_pop();
        nvtx_push("softmax_xent");
        ops->softmax_xent(ctx, train ? &net->dlogits : NULL, &net->stats, &net->logits,
                          &net->labels, scaler, n, m);
        nvtx_pop();
        nvtx_pop();
        if (train)
            backward_and_update(net, &act, &dact, conv_in, &cs, scaler, lr, momentum);
        if (ops->step_end)
            ops->step_end(ctx);
    }
    float stats[2];
    int rc = ops->download(ctx, stats, net->stats.data, sizeof stats);
    if (rc != AMP_OK)
        return rc;
    memset(out, 0, sizeof *out);
    out->loss_sum = stats[0];
    out->correct = (uint32_t)stats[1];
    out->loss_scale = 1.0f;
    if (scaler) {
        rc = ops->download(ctx, &out->scaler, net->scaler.data, sizeof out->scaler);
        out->loss_scale = out->scaler.last_scale;
        out->skipped = out->scaler.last_skipped;
    }
    return rc;
}
