/* Step parity: one forward/backward per recipe from the same weights and batch, compared with
 * fp32 tensor by tensor. */
#include "parity.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "rng.h"
#include "train.h"

/* A step's tensors on the host, as FP32: the logits, the loss, every parameter's gradient. */
struct captured {
    float **t;
    size_t *n;
    char (*names)[64];
    size_t count;
    struct precision_plan plan;
    float loss_scale;
    int skipped;
};

double parity_limit(const struct precision_plan *plan, int gradient)
{
    /* Unit roundoff of the narrowest type the step rounds to, times a budget for the chain of
     * roundings and, for gradients, the cancellation in their reductions (docs/VERIFICATION.md). */
    return (gradient ? 64.0 : 16.0) * precision_plan_unit_roundoff(plan);
}

static void captured_free(struct captured *cap)
{
    for (size_t i = 0; cap->t && i < cap->count; i++)
        free(cap->t[i]);
    free(cap->t);
    free(cap->n);
    free(cap->names);
    memset(cap, 0, sizeof *cap);
}

/* Copies model tensor `src` (its first `numel` elements) into slot i of cap. */
static int capture_tensor(struct model *model, struct captured *cap, size_t i,
                          const struct amp_tensor *src, size_t numel)
{
    cap->n[i] = numel;
    cap->t[i] = malloc(src->numel * sizeof(float));
    if (!cap->t[i])
        return amp_fail(AMP_ENOMEM, "out of host memory");
    return model_read(model, src, cap->t[i]);
}

/* One training step of recipe r with lr 0 (weights stay; gradients are computed). */
static int capture(const struct amp_config *c, const struct recipe *r, const struct dataset *d,
                   const uint32_t *order, uint32_t n, struct captured *out)
{
    memset(out, 0, sizeof *out);
    struct backend be;
    struct model *model;
    const struct model_shape shape = train_model_shape(c, d, n);
    struct amp_config det = *c;
    det.deterministic = 1;
    out->plan = precision_plan_of(r, c->policy);
    int rc = train_open_model(&det, r, &out->plan, &shape, &be, &model);
    if (rc != AMP_OK)
        return rc;
    const size_t sample = (size_t)d->c * d->h * d->w;
    float *images = malloc((size_t)n * sample * sizeof *images);
    int32_t *labels = malloc((size_t)n * sizeof *labels);
    out->count = 2 + model_nparams(model);
    out->t = calloc(out->count, sizeof *out->t);
    out->n = calloc(out->count, sizeof *out->n);
    out->names = calloc(out->count, sizeof *out->names);
    if (!images || !labels || !out->t || !out->n || !out->names)
        rc = amp_fail(AMP_ENOMEM, "out of host memory");
    if (rc == AMP_OK)
        dataset_gather(d, order, n, images, labels);
    struct step_result sr;
    if (rc == AMP_OK)
        rc = model_set_batch(model, images, labels, n);
    if (rc == AMP_OK)
        rc = model_train_step(model, n, 0.0f, 0.0f, &sr);
    if (rc == AMP_OK) {
        snprintf(out->names[0], sizeof out->names[0], "logits");
        rc = capture_tensor(model, out, 0, model_logits(model), (size_t)n * shape.classes);
    }
    if (rc == AMP_OK) {
        snprintf(out->names[1], sizeof out->names[1], "loss");
        out->n[1] = 1;
        out->t[1] = malloc(sizeof(float));
        if (out->t[1])
            out->t[1][0] = (float)(sr.loss_sum / n);
        else
            rc = amp_fail(AMP_ENOMEM, "out of host memory");
    }
    for (size_t p = 0; p + 2 < out->count && rc == AMP_OK; p++) {
        struct model_param mp;
        model_param(model, p, &mp);
        snprintf(out->names[2 + p], sizeof out->names[2 + p], "d %s", mp.name);
        rc = capture_tensor(model, out, 2 + p, mp.grad, mp.numel);
    }
    out->loss_scale = sr.loss_scale;
    out->skipped = sr.skipped;
    free(images);
    free(labels);
    train_close_model(&be, &model);
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
    int rc = capture(c, recipe_reference(), train, order, n, &ref);
    for (size_t i = 0; i < c->nrecipes && rc == AMP_OK; i++) {
        struct parity_result *pr = &out[i];
        memset(pr, 0, sizeof *pr);
        pr->recipe = c->recipes[i];
        struct captured cap;
        rc = capture(c, c->recipes[i], train, order, n, &cap);
        if (rc != AMP_OK)
            break;
        pr->t = calloc(cap.count, sizeof *pr->t);
        if (!pr->t) {
            captured_free(&cap);
            rc = amp_fail(AMP_ENOMEM, "out of host memory");
            break;
        }
        pr->ntensors = cap.count;
        pr->loss_scale = cap.loss_scale;
        pr->skipped = cap.skipped;
        pr->pass = 1;
        for (size_t t = 0; t < cap.count; t++) {
            snprintf(pr->t[t].name, sizeof pr->t[t].name, "%s", cap.names[t]);
            pr->t[t].limit = parity_limit(&cap.plan, t >= 2);
            compare(&pr->t[t], ref.t[t], cap.t[t], cap.n[t]);
            pr->pass &= pr->t[t].pass;
        }
        captured_free(&cap);
    }
    captured_free(&ref);
    free(order);
    return rc;
}

void parity_result_free(struct parity_result *r)
{
    free(r->t);
    r->t = NULL;
    r->ntensors = 0;
}
