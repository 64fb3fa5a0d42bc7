/* Step parity: one forward/backward per recipe from the same weights and batch, compared with
 * fp32 tensor by tensor. */
#include "parity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "rng.h"
#include "train.h"

/* A step's tensors on the host, as FP32. */
struct captured {
    float *t[PARITY_TENSORS];
    size_t n[PARITY_TENSORS];
    float loss_scale;
    int skipped;
};

static const char *const tensor_names[PARITY_TENSORS] = { "logits", "loss", "d conv.weight",
                                                          "d conv.bias", "d fc.weight",
                                                          "d fc.bias" };

double parity_limit(const struct recipe *r, enum policy p, int gradient)
{
    const struct precision_plan plan = precision_plan_of(r, p);
    /* Unit roundoff of the narrowest type the step rounds to, times a budget for the chain of
     * roundings and, for gradients, the cancellation in their reductions (docs/VERIFICATION.md). */
    double u = 0.0;
    if (plan.conv == AMP_BF16 || plan.fc == AMP_BF16)
        u = 0x1p-8;
    else if (plan.conv == AMP_F16 || plan.fc == AMP_F16 || plan.math == AMP_MATH_TF32)
        u = 0x1p-11;
    return (gradient ? 64.0 : 16.0) * u;
}

static void captured_free(struct captured *cap)
{
    for (int i = 0; i < PARITY_TENSORS; i++)
        free(cap->t[i]);
    memset(cap, 0, sizeof *cap);
}

/* One training step of recipe r with lr 0 (weights stay; gradients are computed). */
static int capture(const struct amp_config *c, const struct recipe *r, const struct dataset *d,
                   const uint32_t *order, uint32_t n, struct captured *out)
{
    memset(out, 0, sizeof *out);
    struct backend be;
    struct seed_net net;
    const struct seed_shape shape = { .batch = n, .c_in = 1, .h = d->h, .w = d->w,
                                      .channels = c->channels, .classes = 10 };
    struct amp_config det = *c;
    det.deterministic = 1;
    int rc = train_open_net(&det, r, &shape, &be, &net);
    if (rc != AMP_OK)
        return rc;
    const size_t pixels = (size_t)d->h * d->w;
    float *images = malloc((size_t)n * pixels * sizeof *images);
    int32_t *labels = malloc((size_t)n * sizeof *labels);
    if (rc == AMP_OK && (!images || !labels))
        rc = amp_fail(AMP_ENOMEM, "out of host memory");
    if (rc == AMP_OK)
        dataset_gather(d, order, n, images, labels);
    struct step_result sr;
    if (rc == AMP_OK)
        rc = seed_net_set_batch(&net, images, labels, n);
    if (rc == AMP_OK)
        rc = seed_net_step(&net, n, 1, 0.0f, 0.0f, &sr);
    const struct amp_tensor *src[PARITY_TENSORS] = { &net.logits, NULL };
    for (int p = 0; p < SEED_NPARAMS; p++)
        src[2 + p] = seed_net_update_grad(&net, p);
    for (int i = 0; i < PARITY_TENSORS && rc == AMP_OK; i++) {
        out->n[i] = i == 0 ? (size_t)n * 10 : i == 1 ? 1 : src[i]->numel;
        out->t[i] = malloc((i == 0 ? net.logits.numel : out->n[i]) * sizeof(float));
        if (!out->t[i])
            rc = amp_fail(AMP_ENOMEM, "out of host memory");
        else if (i == 1)
            out->t[i][0] = (float)(sr.loss_sum / n);
        else
            rc = seed_net_read(&net, src[i], out->t[i]);
    }
    out->loss_scale = sr.loss_scale;
    out->skipped = sr.skipped;
    free(images);
    free(labels);
    train_close_net(&be, &net);
    if (rc != AMP_OK)
        captured_free(out);
    return rc;
}

static void compare(struct parity_metrics *m, const float *ref, const float *x, size_t n)
{
    double diff2 = 0, ref2 = 0, x2 = 0, dot = 0;
    m->numel = n;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            m->nonfinite = 1;
        const double d = fabs((double)x[i] - ref[i]);
        if (d > m->max_abs)
            m->max_abs = d;
        if (ref[i] != 0 && d / fabs(ref[i]) > m->max_rel)
            m->max_rel = d / fabs(ref[i]);
        diff2 += d * d;
        ref2 += (double)ref[i] * ref[i];
        x2 += (double)x[i] * x[i];
        dot += (double)x[i] * ref[i];
    }
    m->rel_l2 = ref2 > 0 ? sqrt(diff2 / ref2) : sqrt(diff2);
    m->cosine = ref2 > 0 && x2 > 0 ? dot / sqrt(ref2 * x2) : (diff2 == 0 ? 1.0 : 0.0);
    m->pass = !m->nonfinite && m->rel_l2 <= m->limit;
}

int parity_run(const struct amp_config *c, const struct dataset *train,
               struct parity_result *out)
{
    const uint32_t n = (uint32_t)(c->batch < train->n ? c->batch : train->n);
    uint32_t *order = malloc(train->n * sizeof *order);
    if (!order)
        return amp_fail(AMP_ENOMEM, "out of host memory");
    /* The first batch of the first epoch, as training sees it. */
    struct rng shuffle;
    train_shuffle_stream(&shuffle, c->seed);
    for (size_t i = 0; i < train->n; i++)
        order[i] = (uint32_t)i;
    rng_shuffle(&shuffle, order, train->n);

    struct captured ref;
    int rc = capture(c, recipe_find("fp32"), train, order, n, &ref);
    for (size_t i = 0; i < c->nrecipes && rc == AMP_OK; i++) {
        struct parity_result *pr = &out[i];
        memset(pr, 0, sizeof *pr);
        pr->recipe = c->recipes[i];
        struct captured cap;
        rc = capture(c, c->recipes[i], train, order, n, &cap);
        if (rc != AMP_OK)
            break;
        pr->loss_scale = cap.loss_scale;
        pr->skipped = cap.skipped;
        pr->pass = 1;
        for (int t = 0; t < PARITY_TENSORS; t++) {
            pr->t[t].name = tensor_names[t];
            pr->t[t].limit = parity_limit(c->recipes[i], c->policy, t >= 2);
            compare(&pr->t[t], ref.t[t], cap.t[t], cap.n[t]);
            pr->pass &= pr->t[t].pass;
        }
        captured_free(&cap);
    }
    captured_free(&ref);
    free(order);
    return rc;
}
