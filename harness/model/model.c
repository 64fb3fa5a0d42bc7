/* The model on the backend interface: a preset's layers laid out (layers.c), every tensor
 * allocated in the plan's dtypes and wired as the preset's graph says, PyTorch-default init, the
 * step (forward through the layers, backward in reverse, gradients summed where a layer's output
 * has several readers), loss scaling and the SGD momentum update. */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "faults.h"
#include "layers.h"
#include "lowp.h"
#include "nvtx.h"

struct model {
    struct backend *be;
    const struct net_preset *net;
    struct model_shape shape;
    struct precision_plan plan;
    enum loss_scaling scaling;
    struct layer *layers;      /* net->nlayers */
    size_t nlayers;
    struct weights *w;         /* every parameter, in layer order */
    size_t nw;
    struct amp_tensor scaler;  /* struct loss_scaler (data NULL without loss scaling) */
    struct amp_tensor input;   /* [batch, c_in, h, w] FP32, as loaded */
    struct amp_tensor labels;  /* [batch] int32 */
    struct amp_tensor stats;   /* loss sum, correct count of the last loss evaluation */
    struct amp_tensor workspace; /* the conv ops' */
    struct amp_tensor grad_parts; /* the gradient parts summed at forks (layer dx_part/dskip_part) */
    /* FP8 recipes: the quantized tensors of the FP8 layers (fp8_quantizes), their struct
     * fp8_tensor_state array and (delayed scaling) their amax histories, and a host copy. */
    size_t nfp8;
    struct amp_tensor fp8_states, fp8_history;
    struct fp8_tensor_state *fp8_host;
    const struct model_sync *sync; /* data-parallel training: the other replicas, or NULL */
    struct amp_tensor **grads;    /* with sync: the gradient of every parameter the optimizer reads */
    enum model_fault fault;       /* test-only (faults.h): FAULT_NONE in every normal run */
    struct amp_tensor fault_scaler; /* FAULT_SCALED_TWICE: a scaler holding 1 / scale */
};

static struct act_shape sample_of(const struct model_shape *s)
{
    return (struct act_shape){ .c = s->c_in, .h = s->h, .w = s->w };
}

/* Allocates a batch-sized activation tensor of per-sample shape s. */
static int alloc_act(struct model *m, struct amp_tensor *t, struct act_shape s, enum amp_dtype dt,
                     enum mem_category cat)
{
    return tensor_alloc(m->be, t, (size_t)m->shape.batch * act_numel(s), dt, cat);
}

/* A view of n bytes-worth of `parts` at byte offset `at`, as a tensor of numel elements of dtype. */
static struct amp_tensor part_view(const struct amp_tensor *parts, size_t at, size_t numel,
                                   enum amp_dtype dtype)
{
    struct amp_tensor v = { .data = (char *)parts->data + at, .numel = numel, .dtype = dtype,
                            .category = MEM_ACTIVATION_GRADS };
    return v;
}

static int alloc_weights(struct model *m, struct weights *w, enum amp_dtype used)
{
    struct backend *be = m->be;
    const enum amp_dtype stored = m->plan.weights;
    const size_t n = w->spec.numel;
    int rc = tensor_alloc(be, &w->param, n, stored, MEM_WEIGHTS);
    if (rc == AMP_OK && used != stored)
        rc = tensor_alloc(be, &w->copy, n, used, MEM_WEIGHT_COPIES);
    if (rc == AMP_OK)
        rc = tensor_alloc(be, &w->grad, n, used, MEM_WEIGHT_GRADS);
    if (rc == AMP_OK && used != stored)
        rc = tensor_alloc(be, &w->master_grad, n, stored, MEM_WEIGHT_GRADS);
    if (rc == AMP_OK)
        rc = tensor_alloc(be, &w->velocity, n, stored, MEM_OPTIMIZER);
    return rc;
}

/* Counts the parameters and sets up each layer's plan and names. */
static int lay_out(struct model *m)
{
    struct layer_plan *plans = calloc(m->nlayers, sizeof *plans);
    if (!plans)
        return amp_fail(AMP_ENOMEM, "out of host memory laying out --net %s", m->net->name);
    int rc = layers_plan(m->net, sample_of(&m->shape), m->shape.classes, m->shape.channels,
                         &m->plan, plans);
    struct param_spec specs[LAYER_MAX_PARAMS];
    for (size_t i = 0; i < m->nlayers && rc == AMP_OK; i++) {
        m->layers[i].p = plans[i];
        m->nw += plans[i].kind->params(&plans[i], specs);
    }
    free(plans);
    if (rc != AMP_OK)
        return rc;
    m->w = calloc(m->nw ? m->nw : 1, sizeof *m->w);
    if (!m->w)
        return amp_fail(AMP_ENOMEM, "out of host memory laying out --net %s", m->net->name);
    size_t next = 0;
    for (size_t i = 0; i < m->nlayers; i++) {
        struct layer *l = &m->layers[i];
        const char *name = l->p.spec->name;
        l->w = &m->w[next];
        l->nw = l->p.kind->params(&l->p, specs);
        for (size_t k = 0; k < l->nw; k++) {
            l->w[k].spec = specs[k];
            snprintf(l->w[k].name, sizeof l->w[k].name, "%s.%s", name, specs[k].suffix);
        }
        next += l->nw;
        snprintf(l->nvtx_forward, sizeof l->nvtx_forward, "%s_forward", name);
        snprintf(l->nvtx_backward, sizeof l->nvtx_backward, "%s_backward", name);
    }
    return AMP_OK;
}

/* Whether an FP8 layer quantizes tensor k (FP8_INPUT .. FP8_GRAD_T): its input, weight and
 * output gradient, and under MX scaling a second copy of each, but for the network's first
 * layer, which computes no input gradient, neither the copies of dy and w that only the input
 * gradient reads (FP8_GRAD, FP8_WEIGHT_T). */
static int fp8_quantizes(const struct model *m, const struct layer *l, int k)
{
    if (m->plan.fp8.scaling != FP8_SCALING_MX)
        return k < FP8_NOPERANDS;
    return !l->p.first || (k != FP8_GRAD && k != FP8_WEIGHT_T);
}

/* Each layer's output (own, or in place its input's) and its gradient. */
static int alloc_outputs(struct model *m)
{
    int rc = AMP_OK;
    for (size_t i = 0; i < m->nlayers && rc == AMP_OK; i++) {
        struct layer *l = &m->layers[i];
        l->x = l->p.first ? &m->input : m->layers[l->p.input].y;
        l->skip = l->p.skip == FROM_INPUT ? NULL : m->layers[l->p.skip].y;
        if (l->p.casts_input)
            rc = alloc_act(m, &l->x_cast, l->p.in, l->p.dtype, MEM_ACTIVATIONS);
        if (l->p.fp8 && rc == AMP_OK)
            rc = alloc_act(m, &l->x_q, l->p.in, AMP_F32, MEM_ACTIVATIONS);
        if (l->p.fp8 && fp8_quantizes(m, l, FP8_GRAD) && rc == AMP_OK)
            rc = alloc_act(m, &l->dy_q, l->p.out, AMP_F32, MEM_ACTIVATION_GRADS);
        if (l->p.fp8 && m->plan.fp8.scaling == FP8_SCALING_MX && rc == AMP_OK)
            rc = alloc_act(m, &l->x_qt, l->p.in, AMP_F32, MEM_ACTIVATIONS);
        if (l->p.fp8 && m->plan.fp8.scaling == FP8_SCALING_MX && rc == AMP_OK)
            rc = alloc_act(m, &l->dy_qt, l->p.out, AMP_F32, MEM_ACTIVATION_GRADS);
        if (l->p.in_place || i + 1 == m->nlayers) {
            l->y = l->x;
            l->dy = l->p.first ? NULL : m->layers[l->p.input].dy;
            continue;
        }
        l->y = &l->y_own;
        l->dy = &l->dy_own;
        if (rc == AMP_OK)
            rc = alloc_act(m, l->y, l->p.out, l->p.dtype, MEM_ACTIVATIONS);
        if (rc == AMP_OK)
            rc = alloc_act(m, l->dy, l->p.out, l->p.dtype, MEM_ACTIVATION_GRADS);
    }
    return rc;
}

/* Where each layer's backward writes its input (and skip) gradient. Backward runs in reverse
 * order: the last reader of a layer writes its dy, the earlier ones write a part that is then
 * added in (a layer with a rounded input copy adds its dx_cast directly). The parts' views are
 * set once grad_parts is allocated; their sizes go to *x_bytes and *skip_bytes. */
static int wire_gradients(struct model *m, size_t *x_bytes, size_t *skip_bytes)
{
    char *written = calloc(m->nlayers, 1);
    if (!written)
        return amp_fail(AMP_ENOMEM, "out of host memory laying out --net %s", m->net->name);
    *x_bytes = *skip_bytes = 0;
    const size_t batch = m->shape.batch;
    for (size_t i = m->nlayers; i-- > 0;) {
        struct layer *l = &m->layers[i];
        if (l->p.skip != FROM_INPUT) {
            struct layer *from = &m->layers[l->p.skip];
            l->dskip = from->dy;
            if (written[l->p.skip]) {
                l->dskip_sum = from->dy;
                l->dskip = &l->dskip_part;
                const size_t bytes = batch * act_numel(l->p.in) * dtype_size(from->p.dtype);
                *skip_bytes = bytes > *skip_bytes ? bytes : *skip_bytes;
            }
            written[l->p.skip] = 1;
        }
        if (l->p.first)
            continue;
        struct layer *from = &m->layers[l->p.input];
        l->dx = from->dy;
        if (written[l->p.input] && !l->p.in_place) {
            l->dx_sum = from->dy;
            if (!l->p.casts_input) {
                l->dx = &l->dx_part;
                const size_t bytes = batch * act_numel(l->p.in) * dtype_size(from->p.dtype);
                *x_bytes = bytes > *x_bytes ? bytes : *x_bytes;
            }
        }
        written[l->p.input] = 1;
    }
    free(written);
    return AMP_OK;
}

/* Batch norm's running statistics (model state, with the weights) and saved batch statistics,
 * and the bn_state its ops read. */
static int alloc_bn_state(struct model *m, struct layer *l)
{
    static const enum mem_category cats[BN_NSTATE] = {
        [BN_RUNNING_MEAN] = MEM_WEIGHTS, [BN_RUNNING_VAR] = MEM_WEIGHTS,
        [BN_SAVE_MEAN] = MEM_ACTIVATIONS, [BN_SAVE_INVSTD] = MEM_ACTIVATIONS,
    };
    int rc = AMP_OK;
    for (int k = 0; k < BN_NSTATE && rc == AMP_OK; k++)
        rc = tensor_alloc(m->be, &l->state[k], l->p.in.c, l->p.param_dtype, cats[k]);
    snprintf(l->running_names[0], sizeof l->running_names[0], "%s.running_mean",
             l->p.spec->name);
    snprintf(l->running_names[1], sizeof l->running_names[1], "%s.running_var", l->p.spec->name);
    l->bn = (struct bn_state){
        .gamma = weights_used(&l->w[0]), .beta = weights_used(&l->w[1]),
        .running_mean = &l->state[BN_RUNNING_MEAN], .running_var = &l->state[BN_RUNNING_VAR],
        .save_mean = &l->state[BN_SAVE_MEAN], .save_invstd = &l->state[BN_SAVE_INVSTD],
        .momentum = 0.1f, .eps = 1e-5f,
    };
    return rc;
}

/* FP8 recipes: each FP8 layer's quantized weight (MX: and its second copy), and the state (and
 * delayed scaling's amax history) of each quantized tensor, as views of two shared tensors. */
static int alloc_fp8(struct model *m)
{
    for (size_t i = 0; i < m->nlayers; i++)
        for (int k = 0; m->layers[i].p.fp8 && k < FP8_MX_OPERANDS; k++)
            m->nfp8 += (size_t)fp8_quantizes(m, &m->layers[i], k);
    if (!m->nfp8)
        return AMP_OK;
    if (!m->be->ops->fp8_quantize)
        return amp_fail(AMP_EINPUT, "--modes: the %s backend runs no FP8 recipe yet",
                        m->be->ops->name);
    const size_t words = sizeof(struct fp8_tensor_state) / sizeof(int32_t);
    const int delayed = m->plan.fp8.scaling == FP8_SCALING_DELAYED;
    const size_t hist = m->plan.fp8.amax_history;
    m->fp8_host = calloc(m->nfp8, sizeof *m->fp8_host);
    if (!m->fp8_host)
        return amp_fail(AMP_ENOMEM, "out of host memory creating --net %s", m->net->name);
    int rc = tensor_alloc(m->be, &m->fp8_states, m->nfp8 * words, AMP_I32, MEM_OPTIMIZER);
    if (rc == AMP_OK && delayed)
        rc = tensor_alloc(m->be, &m->fp8_history, m->nfp8 * hist, AMP_F32, MEM_OPTIMIZER);
    size_t next = 0;
    for (size_t i = 0; i < m->nlayers && rc == AMP_OK; i++) {
        struct layer *l = &m->layers[i];
        if (!l->p.fp8)
            continue;
        rc = tensor_alloc(m->be, &l->w[0].quant, l->w[0].spec.numel, AMP_F32, MEM_WEIGHT_COPIES);
        if (rc == AMP_OK && fp8_quantizes(m, l, FP8_WEIGHT_T))
            rc = tensor_alloc(m->be, &l->w[0].quant_t, l->w[0].spec.numel, AMP_F32,
                              MEM_WEIGHT_COPIES);
        for (int k = 0; k < FP8_MX_OPERANDS; k++) {
            if (!fp8_quantizes(m, l, k))
                continue;
            l->fp8_state[k] = (struct amp_tensor){
                .data = (char *)m->fp8_states.data + next * sizeof(struct fp8_tensor_state),
                .numel = words, .dtype = AMP_I32, .category = MEM_OPTIMIZER };
            if (delayed)
                l->fp8_history[k] = (struct amp_tensor){
                    .data = (char *)m->fp8_history.data + next * hist * sizeof(float),
                    .numel = hist, .dtype = AMP_F32, .category = MEM_OPTIMIZER };
            next++;
        }
    }
    return rc;
}

/* Every tensor: parameters, the model's inputs, each layer's output and gradient (in place:
 * its input's), rounded input copies and their gradients, batch norm state, the gradient parts,
 * the shared conv workspace, the scaler. */
static int alloc_tensors(struct model *m, const struct loss_scaler *scaler)
{
    struct backend *be = m->be;
    int rc = AMP_OK;
    for (size_t i = 0; i < m->nlayers; i++)
        for (size_t k = 0; k < m->layers[i].nw && rc == AMP_OK; k++)
            rc = alloc_weights(m, &m->layers[i].w[k], m->layers[i].p.param_dtype);
    if (rc == AMP_OK)
        rc = alloc_act(m, &m->input, sample_of(&m->shape), AMP_F32, MEM_ACTIVATIONS);
    if (rc == AMP_OK)
        rc = tensor_alloc(be, &m->labels, m->shape.batch, AMP_I32, MEM_ACTIVATIONS);
    if (rc == AMP_OK)
        rc = tensor_alloc(be, &m->stats, 2, AMP_F32, MEM_ACTIVATIONS);
    if (rc == AMP_OK)
        rc = alloc_outputs(m);
    size_t x_bytes = 0, skip_bytes = 0;
    if (rc == AMP_OK)
        rc = wire_gradients(m, &x_bytes, &skip_bytes);
    if (rc == AMP_OK && x_bytes + skip_bytes)
        rc = tensor_alloc(be, &m->grad_parts, (x_bytes + skip_bytes + 3) / 4, AMP_F32,
                          MEM_ACTIVATION_GRADS);
    size_t ws = 0;
    for (size_t i = 0; i < m->nlayers && rc == AMP_OK; i++) {
        struct layer *l = &m->layers[i];
        const size_t batch = m->shape.batch;
        if (l->dx_sum && !l->p.casts_input)
            l->dx_part = part_view(&m->grad_parts, 0, batch * act_numel(l->p.in),
                                   m->layers[l->p.input].p.dtype);
        if (l->dskip_sum)
            l->dskip_part = part_view(&m->grad_parts, x_bytes, batch * act_numel(l->p.in),
                                      m->layers[l->p.skip].p.dtype);
        if (l->p.casts_input && l->dx)
            rc = alloc_act(m, &l->dx_cast, l->p.in, l->p.dtype, MEM_ACTIVATION_GRADS);
        if (rc == AMP_OK && l->p.spec->kind == LAYER_BATCHNORM)
            rc = alloc_bn_state(m, l);
        if (rc == AMP_OK && l->p.kind->conv_shape) {
            l->p.kind->conv_shape(&l->p, m->shape.batch, &l->conv);
            char why[200];
            if (be->ops->conv2d_supports &&
                !be->ops->conv2d_supports(be->ctx, &l->conv, why, sizeof why))
                rc = amp_fail(AMP_EINPUT, "--net %s: layer %s: %s", m->net->name,
                              l->p.spec->name, why);
            const size_t need = rc == AMP_OK ? be->ops->conv2d_workspace(
                                              be->ctx, &l->conv, layer_operand_dtype(&l->p),
                                              m->plan.math)
                                             : 0;
            ws = need > ws ? need : ws;
        }
    }
    if (rc == AMP_OK)
        rc = tensor_alloc(be, &m->workspace, (ws + sizeof(float) - 1) / sizeof(float), AMP_F32,
                          MEM_WORKSPACE);
    if (rc == AMP_OK)
        rc = alloc_fp8(m);
    if (rc == AMP_OK && m->scaling != SCALING_NONE) {
        const size_t words = (sizeof *scaler + sizeof(int32_t) - 1) / sizeof(int32_t);
        struct loss_scaler start = *scaler;
        if (m->fault == FAULT_NO_BACKOFF)
            start.backoff_factor = 1.0f;
        rc = tensor_alloc(be, &m->scaler, words, AMP_I32, MEM_OPTIMIZER);
        if (rc == AMP_OK)
            rc = be->ops->upload(be->ctx, m->scaler.data, &start, sizeof start);
        if (rc == AMP_OK && m->fault == FAULT_SCALED_TWICE)
            rc = tensor_alloc(be, &m->fault_scaler, words, AMP_I32, MEM_OPTIMIZER);
    }
    return rc;
}

int model_create(struct model **out, struct backend *be, const struct net_preset *net,
                 const struct model_shape *shape, const struct precision_plan *plan,
                 enum loss_scaling scaling, const struct loss_scaler *scaler)
{
    *out = NULL;
    struct model *m = calloc(1, sizeof *m);
    if (m)
        m->layers = calloc(net->nlayers, sizeof *m->layers);
    if (!m || !m->layers) {
        free(m);
        return amp_fail(AMP_ENOMEM, "out of host memory creating --net %s", net->name);
    }
    m->be = be;
    m->net = net;
    m->shape = *shape;
    m->plan = *plan;
    m->scaling = scaling;
    m->nlayers = net->nlayers;
    m->fault = model_planted_fault();
    int rc = lay_out(m);
    if (rc == AMP_OK)
        rc = alloc_tensors(m, scaler);
    if (rc != AMP_OK) {
        model_destroy(m);
        return rc;
    }
    *out = m;
    return AMP_OK;
}

void model_destroy(struct model *m)
{
    if (!m)
        return;
    free(m->grads);
    struct backend *be = m->be;
    for (size_t i = 0; m->w && i < m->nw; i++) {
        struct weights *w = &m->w[i];
        struct amp_tensor *ts[] = { &w->param, &w->copy, &w->quant, &w->quant_t, &w->grad,
                                    &w->master_grad, &w->velocity };
        for (size_t k = 0; k < sizeof ts / sizeof ts[0]; k++)
            tensor_free(be, ts[k]);
    }
    for (size_t i = 0; i < m->nlayers; i++) {
        struct layer *l = &m->layers[i];
        struct amp_tensor *ts[] = { &l->x_cast, &l->dx_cast, &l->x_q, &l->dy_q, &l->x_qt,
                                    &l->dy_qt, &l->y_own, &l->dy_own };
        for (size_t k = 0; k < sizeof ts / sizeof ts[0]; k++)
            tensor_free(be, ts[k]);
        for (int k = 0; k < BN_NSTATE; k++)
            tensor_free(be, &l->state[k]);
    }
    struct amp_tensor *others[] = { &m->scaler, &m->input, &m->labels, &m->stats, &m->workspace,
                                    &m->grad_parts, &m->fault_scaler, &m->fp8_states,
                                    &m->fp8_history };
    for (size_t k = 0; k < sizeof others / sizeof others[0]; k++)
        tensor_free(be, others[k]);
    free(m->fp8_host);
    free(m->w);
    free(m->layers);
    free(m);
}

int tensor_upload_f32(const struct backend_ops *ops, void *ctx, struct amp_tensor *t,
                      const float *host, size_t n)
{
    if (t->dtype == AMP_F32)
        return ops->upload(ctx, t->data, host, n * sizeof *host);
    uint16_t *bits = malloc(n * sizeof *bits);
    if (!bits)
        return amp_fail(AMP_ENOMEM, "out of host memory rounding a tensor");
    if (t->dtype == AMP_F16)
        f16_from_f32_array(bits, host, n, NULL);
    else
        bf16_from_f32_array(bits, host, n, NULL);
    int rc = ops->upload(ctx, t->data, bits, n * sizeof *bits);
    free(bits);
    return rc;
}

static int upload_rounded(struct backend *be, struct amp_tensor *t, const float *host, size_t n)
{
    return tensor_upload_f32(be->ops, be->ctx, t, host, n);
}

int tensor_download_f32(const struct backend_ops *ops, void *ctx, const struct amp_tensor *t,
                        float *host)
{
    if (t->dtype == AMP_F32)
        return ops->download(ctx, host, t->data, t->numel * sizeof *host);
    uint16_t *bits = malloc(t->numel * sizeof *bits);
    if (!bits)
        return amp_fail(AMP_ENOMEM, "out of host memory reading a tensor");
    int rc = ops->download(ctx, bits, t->data, t->numel * sizeof *bits);
    if (rc == AMP_OK && t->dtype == AMP_F16)
        f16_to_f32_array(host, bits, t->numel);
    else if (rc == AMP_OK)
        bf16_to_f32_array(host, bits, t->numel);
    free(bits);
    return rc;
}

int model_read(struct model *m, const struct amp_tensor *t, float *host)
{
    return tensor_download_f32(m->be->ops, m->be->ctx, t, host);
}

/* The gradient the optimizer reads (and unscales). */
static struct amp_tensor *update_grad(struct weights *w)
{
    return w->master_grad.data ? &w->master_grad : &w->grad;
}

/* PyTorch's initial running statistics: mean 0, variance 1. */
static int init_bn_state(struct model *m)
{
    for (size_t i = 0; i < m->nlayers; i++) {
        struct layer *l = &m->layers[i];
        if (!l->state[BN_RUNNING_MEAN].data)
            continue;
        const size_t c = l->state[BN_RUNNING_MEAN].numel;
        float *host = malloc(c * sizeof *host);
        if (!host)
            return amp_fail(AMP_ENOMEM, "out of host memory initialising %s", l->p.spec->name);
        for (size_t k = 0; k < c; k++)
            host[k] = 0.0f;
        int rc = upload_rounded(m->be, &l->state[BN_RUNNING_MEAN], host, c);
        for (size_t k = 0; k < c; k++)
            host[k] = 1.0f;
        if (rc == AMP_OK)
            rc = upload_rounded(m->be, &l->state[BN_RUNNING_VAR], host, c);
        free(host);
        if (rc != AMP_OK)
            return rc;
    }
    return AMP_OK;
}

/* The MX layout of each of a layer's quantized tensors: blocks along the reduction of the GEMM
 * that reads it (docs/NUMERICS.md, "FP8 recipes"). Linear y[n, m] = x[n, k] w[m, k]^T: the
 * forward's x and w along k (rows), the input gradient's dy along m (rows) and w along m
 * (columns), the weight gradient's dy and x along n (columns: the batch, mx_len 0). Conv (NCHW):
 * the forward's x in channel blocks (c_in at stride h * w) and w along its rows (c_in k k), the
 * data gradient's dy in channel blocks and w along c_out (columns of [c_out, c_in k k]), the
 * filter gradient's dy and x along each plane's pixels (rows of h * w). */
static void fp8_layouts(const struct layer *l, uint32_t len[FP8_MX_OPERANDS],
                        uint32_t inner[FP8_MX_OPERANDS])
{
    const uint32_t fan_in = (uint32_t)(l->w[0].spec.numel / l->p.width);
    if (l->p.kind == &layer_conv) {
        const uint32_t in_hw = l->p.in.h * l->p.in.w, out_hw = l->p.out.h * l->p.out.w;
        len[FP8_INPUT] = l->p.in.c, inner[FP8_INPUT] = in_hw;
        len[FP8_WEIGHT] = fan_in, inner[FP8_WEIGHT] = 1;
        len[FP8_GRAD] = l->p.out.c, inner[FP8_GRAD] = out_hw;
        len[FP8_INPUT_T] = in_hw, inner[FP8_INPUT_T] = 1;
        len[FP8_WEIGHT_T] = l->p.width, inner[FP8_WEIGHT_T] = fan_in;
        len[FP8_GRAD_T] = out_hw, inner[FP8_GRAD_T] = 1;
        return;
    }
    const uint32_t k = (uint32_t)act_numel(l->p.in), m = (uint32_t)act_numel(l->p.out);
    len[FP8_INPUT] = k, inner[FP8_INPUT] = 1;
    len[FP8_WEIGHT] = k, inner[FP8_WEIGHT] = 1;
    len[FP8_GRAD] = m, inner[FP8_GRAD] = 1;
    len[FP8_INPUT_T] = 0, inner[FP8_INPUT_T] = k;
    len[FP8_WEIGHT_T] = m, inner[FP8_WEIGHT_T] = k;
    len[FP8_GRAD_T] = 0, inner[FP8_GRAD_T] = m;
}

/* Each quantized tensor's scaling state at its start (scale 1, an empty amax history), with its
 * MX layout (fp8_layouts; unused by per-tensor scaling). */
static int init_fp8(struct model *m)
{
    if (!m->nfp8)
        return AMP_OK;
    const struct fp8_plan *f = &m->plan.fp8;
    size_t next = 0;
    for (size_t i = 0; i < m->nlayers; i++) {
        const struct layer *l = &m->layers[i];
        if (!l->p.fp8)
            continue;
        uint32_t len[FP8_MX_OPERANDS], inner[FP8_MX_OPERANDS];
        fp8_layouts(l, len, inner);
        for (int k = 0; k < FP8_MX_OPERANDS; k++) {
            if (!fp8_quantizes(m, l, k))
                continue;
            const int grad = k == FP8_GRAD || k == FP8_GRAD_T;
            struct fp8_tensor_state s = fp8_state_make(grad ? f->backward : f->forward,
                                                       f->amax_history, f->mx_rounding, len[k]);
            s.mx_inner = inner[k];
            m->fp8_host[next++] = s;
        }
    }
    const struct backend_ops *ops = m->be->ops;
    if (m->fp8_history.data)
        ops->zero(m->be->ctx, &m->fp8_history);
    return ops->upload(m->be->ctx, m->fp8_states.data, m->fp8_host,
                       m->nfp8 * sizeof *m->fp8_host);
}

int model_init(struct model *m, struct rng *rng)
{
    const struct backend_ops *ops = m->be->ops;
    for (size_t i = 0; i < m->nw; i++) {
        struct weights *w = &m->w[i];
        const size_t n = w->spec.numel;
        float *host = malloc(n * sizeof *host);
        if (!host)
            return amp_fail(AMP_ENOMEM, "out of host memory initialising %s", w->name);
        for (size_t k = 0; k < n; k++)
            host[k] = w->spec.bound != 0.0f ? rng_uniform(rng, -w->spec.bound, w->spec.bound)
                                            : w->spec.fill;
        int rc = upload_rounded(m->be, &w->param, host, n);
        free(host);
        if (rc != AMP_OK)
            return rc;
        ops->zero(m->be->ctx, &w->velocity);
        if (w->copy.data)
            ops->cast(m->be->ctx, &w->copy, &w->param);
    }
    int rc = init_bn_state(m);
    return rc == AMP_OK ? init_fp8(m) : rc;
}

int model_set_batch(struct model *m, const float *images, const int32_t *labels, uint32_t n)
{
    const struct backend_ops *ops = m->be->ops;
    int rc = ops->upload(m->be->ctx, m->input.data, images,
                         (size_t)n * act_numel(sample_of(&m->shape)) * sizeof(float));
    if (rc == AMP_OK)
        rc = ops->upload(m->be->ctx, m->labels.data, labels, (size_t)n * sizeof(int32_t));
    return rc;
}

int model_data_upload(struct model *m, struct model_data *d, const uint8_t *pixels,
                      const uint8_t *labels, size_t n)
{
    const size_t sample = act_numel(sample_of(&m->shape));
    memset(d, 0, sizeof *d);
    if (n > INT32_MAX) /* the index list is int32 */
        return amp_fail(AMP_EINPUT, "a data set of %zu samples is beyond 2^31 - 1", n);
    int rc = tensor_alloc(m->be, &d->pixels, n * sample, AMP_U8, MEM_DATA);
    if (rc == AMP_OK)
        rc = tensor_alloc(m->be, &d->labels, n, AMP_U8, MEM_DATA);
    if (rc == AMP_OK)
        rc = tensor_alloc(m->be, &d->idx, m->shape.batch, AMP_I32, MEM_DATA);
    if (rc == AMP_OK)
        rc = m->be->ops->upload(m->be->ctx, d->pixels.data, pixels, n * sample);
    if (rc == AMP_OK)
        rc = m->be->ops->upload(m->be->ctx, d->labels.data, labels, n);
    if (rc != AMP_OK) {
        model_data_free(m, d);
        return rc;
    }
    d->n = n;
    return AMP_OK;
}

void model_data_free(struct model *m, struct model_data *d)
{
    tensor_free(m->be, &d->pixels);
    tensor_free(m->be, &d->labels);
    tensor_free(m->be, &d->idx);
    memset(d, 0, sizeof *d);
}

int model_gather_batch(struct model *m, const struct model_data *d, const uint32_t *idx,
                       uint32_t n)
{
    if (n > m->shape.batch)
        return amp_fail(AMP_EFAIL, "a batch of %u samples for a model sized for %u", n,
                        m->shape.batch);
    for (uint32_t i = 0; i < n; i++)
        if (idx[i] >= d->n)
            return amp_fail(AMP_EFAIL, "sample %u of a data set of %zu", idx[i], d->n);
    /* uint32 indices below 2^31 (model_data_upload) are their int32 bits */
    int rc = m->be->ops->upload(m->be->ctx, d->idx.data, idx, (size_t)n * sizeof *idx);
    if (rc == AMP_OK)
        m->be->ops->gather_batch(m->be->ctx, &m->input, &m->labels, &d->pixels, &d->labels,
                                 &d->idx, n, (uint32_t)act_numel(sample_of(&m->shape)));
    return rc;
}

/* One of an FP8 layer's operands (k: FP8_INPUT, FP8_WEIGHT, FP8_GRAD) quantized into dst. */
static void quantize(const struct layer *l, int k, struct amp_tensor *dst,
                     const struct amp_tensor *src, const struct layer_call *c, int train)
{
    struct amp_tensor state = l->fp8_state[k], history = l->fp8_history[k];
    c->ops->fp8_quantize(c->ctx, dst, src, c->fp8, &state, history.data ? &history : NULL,
                         train);
}

/* An FP8 layer's input and weight quantized for its forward (and kept for its backward); under
 * MX scaling, in a training step, also their second copies for the backward (while the input is
 * surely intact). */
static void quantize_operands(const struct layer *l, const struct layer_call *c)
{
    struct amp_tensor xq = layer_view(&l->x_q, c->n, l->p.in), x = layer_view(l->x, c->n, l->p.in);
    quantize(l, FP8_INPUT, &xq, &x, c, c->train);
    quantize(l, FP8_WEIGHT, &l->w[0].quant, &l->w[0].param, c, c->train);
    if (!layer_fp8_split(l) || !c->train)
        return;
    struct amp_tensor xqt = layer_view(&l->x_qt, c->n, l->p.in);
    quantize(l, FP8_INPUT_T, &xqt, &x, c, 1);
    if (l->w[0].quant_t.data)
        quantize(l, FP8_WEIGHT_T, &l->w[0].quant_t, &l->w[0].param, c, 1);
}

/* An FP8 layer's output gradient quantized for its backward (MX: both copies, the first only
 * where the layer computes its input gradient). */
static void quantize_grad(const struct layer *l, const struct layer_call *c)
{
    struct amp_tensor dyq = layer_view(&l->dy_q, c->n, l->p.out),
                      dy = layer_view(l->dy, c->n, l->p.out);
    if (l->dy_q.data)
        quantize(l, FP8_GRAD, &dyq, &dy, c, 1);
    if (!layer_fp8_split(l))
        return;
    struct amp_tensor dyqt = layer_view(&l->dy_qt, c->n, l->p.out);
    quantize(l, FP8_GRAD_T, &dyqt, &dy, c, 1);
}

static void forward(struct model *m, const struct layer_call *c)
{
    nvtx_push("forward");
    for (size_t i = 0; i < m->nlayers; i++) {
        const struct layer *l = &m->layers[i];
        if (l->p.fused) /* its conv's epilogue ran it */
            continue;
        nvtx_push(l->nvtx_forward);
        if (l->x_cast.data) {
            struct amp_tensor to = layer_view(&l->x_cast, c->n, l->p.in),
                              from = layer_view(l->x, c->n, l->p.in);
            c->ops->cast(c->ctx, &to, &from);
        }
        if (l->p.fp8)
            quantize_operands(l, c);
        l->p.kind->forward(l, c);
        nvtx_pop();
    }
    nvtx_pop();
}

/* After layer l's backward: its input gradient cast to the input's dtype, and the parts of
 * gradients with several sources added in. */
static void gather_gradients(const struct layer *l, const struct layer_call *c)
{
    if (l->dx_cast.data) {
        struct amp_tensor to = layer_view(l->dx, c->n, l->p.in),
                          from = layer_view(&l->dx_cast, c->n, l->p.in);
        if (l->dx_sum)
            c->ops->add(c->ctx, &to, &to, &from);
        else
            c->ops->cast(c->ctx, &to, &from);
    } else if (l->dx_sum) {
        struct amp_tensor to = layer_view(l->dx_sum, c->n, l->p.in),
                          part = layer_view(&l->dx_part, c->n, l->p.in);
        c->ops->add(c->ctx, &to, &to, &part);
    }
    if (l->dskip_sum) {
        struct amp_tensor to = layer_view(l->dskip_sum, c->n, l->p.in),
                          part = layer_view(&l->dskip_part, c->n, l->p.in);
        c->ops->add(c->ctx, &to, &to, &part);
    }
}

/* Backward pass, master gradients, unscale + inf/NaN check, SGD and the scaler update. */
static int backward_and_update(struct model *m, const struct layer_call *c, float lr,
                               float momentum)
{
    const struct backend_ops *ops = c->ops;
    void *ctx = c->ctx;
    struct amp_tensor *scaler = (struct amp_tensor *)c->scaler;
    nvtx_push("backward");
    for (size_t i = m->nlayers; i-- > 0;) {
        const struct layer *l = &m->layers[i];
        if (!l->p.kind->backward) { /* the loss: its gradient came with the forward pass */
            gather_gradients(l, c);
            continue;
        }
        if (l->p.fused_backward) /* its reader linear's backward ran it (in place: no parts) */
            continue;
        nvtx_push(l->nvtx_backward);
        if (l->p.fp8)
            quantize_grad(l, c);
        l->p.kind->backward(l, c);
        gather_gradients(l, c);
        nvtx_pop();
    }
    nvtx_pop();
    nvtx_push("scaler");
    for (size_t i = 0; i < m->nw; i++)
        if (m->w[i].master_grad.data)
            ops->cast(ctx, &m->w[i].master_grad, &m->w[i].grad);
    int rc = m->sync ? m->sync->gradients(m->sync->user, ops, ctx, m->grads, m->nw, c->n) : AMP_OK;
    for (size_t i = 0; i < m->nw && rc == AMP_OK; i++)
        if (scaler && m->fault != FAULT_NO_UNSCALE)
            ops->unscale(ctx, update_grad(&m->w[i]), scaler);
    if (rc == AMP_OK && m->sync && scaler)
        rc = m->sync->found_inf(m->sync->user, ops, ctx, scaler);
    nvtx_pop();
    if (rc != AMP_OK)
        return rc;
    nvtx_push("optimizer");
    const struct amp_tensor *skip_on = m->fault == FAULT_STEP_ON_INF ? NULL : scaler;
    for (size_t i = 0; i < m->nw; i++) {
        struct weights *w = &m->w[i];
        struct amp_tensor *copy = w->copy.data && m->fault != FAULT_STALE_COPY ? &w->copy : NULL;
        if (w->copy.data && m->fault == FAULT_MASTER_NOT_UPDATED)
            ops->sgd_momentum(ctx, &w->copy, &w->velocity, NULL, update_grad(w), skip_on, lr,
                              momentum);
        else
            ops->sgd_momentum(ctx, &w->param, &w->velocity, copy, update_grad(w), skip_on, lr,
                              momentum);
    }
    nvtx_pop();
    if (scaler) {
        nvtx_push("scaler_update");
        ops->scaler_update(ctx, scaler);
        nvtx_pop();
    }
    return AMP_OK;
}

/* FAULT_SCALED_TWICE: the logits' gradient (already times the scale) times the scale again,
 * through unscale with a scaler holding 1 / scale. */
static int scale_again(struct model *m, uint32_t n)
{
    const struct backend_ops *ops = m->be->ops;
    struct loss_scaler s;
    int rc = ops->download(m->be->ctx, &s, m->scaler.data, sizeof s);
    s.scale = 1.0f / s.scale;
    s.found_inf = 0;
    if (rc == AMP_OK)
        rc = ops->upload(m->be->ctx, m->fault_scaler.data, &s, sizeof s);
    struct amp_tensor dlogits = layer_input_grad(&m->layers[m->nlayers - 1], n);
    if (rc == AMP_OK)
        ops->unscale(m->be->ctx, &dlogits, &m->fault_scaler);
    return rc;
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

static int step(struct model *m, uint32_t n, int train, float lr, float momentum,
                struct step_result *out)
{
    const struct backend_ops *ops = m->be->ops;
    void *ctx = m->be->ctx;
    const struct layer_call c = {
        .ops = ops, .ctx = ctx, .n = n, .math = m->plan.math, .train = train,
        .workspace = &m->workspace, .labels = &m->labels, .stats = &m->stats,
        .scaler = train && m->scaler.data ? &m->scaler : NULL, .fp8 = m->plan.fp8.scaling,
        .sync = m->sync,
    };
    /* A captured step replays every op below with the arguments it was captured with: the key
     * tells apart training and evaluation, full and partial batches, and (for a schedule) every
     * learning rate and momentum. */
    const uint64_t key = step_key(n, train, lr, momentum);
    /* A planted fault (tests only) runs eagerly: scale_again reads the scaler mid-step; so does a
     * replica, whose step waits for the others. */
    const int eager = !ops->step_begin || m->fault != FAULT_NONE || m->sync;
    if (eager || !ops->step_begin(ctx, key)) {
        forward(m, &c);
        if (train && m->fault == FAULT_SCALED_TWICE && c.scaler) {
            int rc = scale_again(m, n);
            if (rc != AMP_OK)
                return rc;
        }
        if (train) {
            int rc = backward_and_update(m, &c, lr, momentum);
            if (rc != AMP_OK)
                return rc;
        }
        if (!eager && ops->step_end)
            ops->step_end(ctx);
    }
    float stats[2];
    int rc = ops->download(ctx, stats, m->stats.data, sizeof stats);
    if (rc != AMP_OK)
        return rc;
    memset(out, 0, sizeof *out);
    out->loss_sum = stats[0];
    out->correct = (uint32_t)stats[1];
    out->loss_scale = 1.0f;
    if (c.scaler) {
        rc = ops->download(ctx, &out->scaler, m->scaler.data, sizeof out->scaler);
        out->loss_scale = out->scaler.last_scale;
        out->skipped = out->scaler.last_skipped;
    }
    return rc;
}

int model_train_step(struct model *m, uint32_t n, float lr, float momentum,
                     struct step_result *out)
{
    return step(m, n, 1, lr, momentum, out);
}

int model_set_sync(struct model *m, const struct model_sync *s)
{
    free(m->grads);
    m->grads = NULL;
    m->sync = s;
    if (!s)
        return AMP_OK;
    m->grads = malloc(m->nw * sizeof *m->grads);
    if (!m->grads)
        return amp_fail(AMP_ENOMEM, "out of host memory");
    for (size_t i = 0; i < m->nw; i++)
        m->grads[i] = update_grad(&m->w[i]);
    return AMP_OK;
}

int model_evaluate(struct model *m, uint32_t n, struct step_result *out)
{
    return step(m, n, 0, 0.0f, 0.0f, out);
}

size_t model_nparams(const struct model *m)
{
    return m->nw;
}

void model_param(const struct model *m, size_t i, struct model_param *out)
{
    struct weights *w = &m->w[i];
    *out = (struct model_param){ .name = w->name, .numel = w->spec.numel, .stored = &w->param,
                                 .grad = update_grad(w), .copy = w->copy.data ? &w->copy : NULL };
}

size_t model_nbuffers(const struct model *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nlayers; i++)
        n += m->layers[i].state[BN_RUNNING_MEAN].data ? 2 : 0;
    return n;
}

void model_buffer(const struct model *m, size_t i, struct model_param *out)
{
    for (size_t k = 0; k < m->nlayers; k++) {
        const struct layer *l = &m->layers[k];
        if (!l->state[BN_RUNNING_MEAN].data)
            continue;
        if (i < 2) {
            const struct amp_tensor *t = &l->state[i == 0 ? BN_RUNNING_MEAN : BN_RUNNING_VAR];
            *out = (struct model_param){ .name = l->running_names[i], .numel = t->numel,
                                         .stored = t };
            return;
        }
        i -= 2;
    }
    *out = (struct model_param){ 0 };
}

const struct amp_tensor *model_logits(const struct model *m)
{
    return m->layers[m->nlayers - 1].x;
}

const struct model_shape *model_shape_of(const struct model *m)
{
    return &m->shape;
}

int model_layers(const struct net_preset *net, const struct model_shape *shape,
                 const struct precision_plan *plan, struct layer_info *out, size_t cap,
                 size_t *n)
{
    *n = net->nlayers;
    struct layer_plan *plans = calloc(net->nlayers, sizeof *plans);
    if (!plans)
        return amp_fail(AMP_ENOMEM, "out of host memory laying out --net %s", net->name);
    int rc = layers_plan(net, sample_of(shape), shape->classes, shape->channels, plan, plans);
    for (size_t i = 0; i < net->nlayers && i < cap && rc == AMP_OK; i++) {
        const struct layer_plan *l = &plans[i];
        struct layer_info *info = &out[i];
        memset(info, 0, sizeof *info);
        layer_trace_of(l, plan, &info->trace);
        info->kind = l->kind->name;
        info->c = l->out.c;
        info->h = l->out.h;
        info->w = l->out.w;
        struct param_spec specs[LAYER_MAX_PARAMS];
        const size_t np = l->kind->params(l, specs);
        for (size_t k = 0; k < np; k++)
            info->params += specs[k].numel;
        info->flops = l->kind->flops(l);
        if (l->casts_input)
            info->act_bytes += act_numel(l->in) * dtype_size(l->dtype);
        if (!l->in_place && i + 1 < net->nlayers)
            info->act_bytes += act_numel(l->out) * dtype_size(l->dtype);
    }
    free(plans);
    return rc;
}

int model_totals(const struct net_preset *net, const struct model_shape *shape,
                 const struct precision_plan *plan, struct net_totals *out)
{
    struct layer_info *info = calloc(net->nlayers, sizeof *info);
    if (!info)
        return amp_fail(AMP_ENOMEM, "out of host memory laying out --net %s", net->name);
    size_t n;
    int rc = model_layers(net, shape, plan, info, net->nlayers, &n);
    *out = (struct net_totals){ .act_bytes = act_numel(sample_of(shape)) * sizeof(float) };
    for (size_t i = 0; i < n && rc == AMP_OK; i++) {
        out->params += info[i].params;
        out->flops += info[i].flops;
        out->act_bytes += info[i].act_bytes;
    }
    free(info);
    return rc;
}

int model_has_scaler(const struct model *m)
{
    return m->scaler.data != NULL;
}

size_t model_fp8_count(const struct model *m)
{
    return m->nfp8;
}

int model_fp8_read(struct model *m, struct model_fp8 *out)
{
    if (!m->nfp8)
        return AMP_OK;
    int rc = m->be->ops->download(m->be->ctx, m->fp8_host, m->fp8_states.data,
                                  m->nfp8 * sizeof *m->fp8_host);
    /* MX's second copies by their blocks: a linear layer's columns, a conv's weight columns and
     * its activations' plane pixels. */
    static const char *const what[FP8_MX_OPERANDS] = { "input", "weight", "grad", "input.cols",
                                                       "weight.cols", "grad.cols" };
    static const char *const conv_what[FP8_MX_OPERANDS] = { "input", "weight", "grad",
                                                            "input.pixels", "weight.cols",
                                                            "grad.pixels" };
    size_t next = 0;
    for (size_t i = 0; i < m->nlayers && rc == AMP_OK; i++) {
        if (!m->layers[i].p.fp8)
            continue;
        const char *const *names = m->layers[i].p.kind == &layer_conv ? conv_what : what;
        for (int k = 0; k < FP8_MX_OPERANDS; k++) {
            if (!fp8_quantizes(m, &m->layers[i], k))
                continue;
            struct model_fp8 *o = &out[next++];
            snprintf(o->name, sizeof o->name, "%s.%s", m->layers[i].p.spec->name, names[k]);
            o->state = m->fp8_host[next - 1];
        }
    }
    return rc;
}
