/* Step parity: one forward/backward per recipe from the same weights and batch, compared with
 * fp32 tensor by tensor. */
#include "parity.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "lowp.h"
#include "rng.h"
#include "train.h"

/* What one recipe's two steps left on the host, as FP32, slot by slot: the step-1 logits and
 * loss, every parameter's step-1 gradient, every stored parameter after the step, the step-2
 * logits; and each stored parameter before the step. */
enum slot { SLOT_FORWARD, SLOT_GRADIENT, SLOT_WEIGHT };

struct captured {
    float **t;
    float **before;   /* SLOT_WEIGHT slots: the stored weights before the step (else NULL) */
    size_t *n;
    char (*names)[64];
    enum slot *kind;
    size_t count;
    struct precision_plan plan;
    float loss_scale; /* the scale of step 1's loss */
    float scale_after;
    int skipped;      /* step 1 was skipped (inf/NaN gradients) */
    char stale[64];   /* the first parameter whose low-precision copy after the step is not its
                       * rounded stored value, or "" */
};

double parity_limit(const struct precision_plan *plan, int gradient)
{
    /* FP8: SQNR floors as relative-L2 limits, 10^(-dB/20): 18 dB forward, as torchao asks of a
     * Float8Linear output; -10 dB for gradients (and the weights after the step, which move by
     * them), whose error grows with every FP8 output gradient between the loss and the
     * parameter, with the cancellation in bias and batch norm sums, and at delayed scaling's
     * first step with its scale of 1 (measured -4.9 to 33 dB on the presets' first step;
     * docs/VERIFICATION.md): the floor catches broken mechanics (a scale not undone is off by
     * orders of magnitude); verify judges the precision over a training run. */
    if (plan->fp8.scaling != FP8_SCALING_NONE)
        return pow(10.0, -(gradient ? -10.0 : 18.0) / 20.0);
    /* Unit roundoff of the narrowest type the step rounds to, times a budget for the chain of
     * roundings and, for gradients, the cancellation in their reductions (docs/VERIFICATION.md). */
    return (gradient ? 64.0 : 16.0) * precision_plan_unit_roundoff(plan);
}

static void captured_free(struct captured *cap)
{
    for (size_t i = 0; cap->t && i < cap->count; i++) {
        free(cap->t[i]);
        free(cap->before[i]);
    }
    free(cap->t);
    free(cap->before);
    free(cap->n);
    free(cap->names);
    free(cap->kind);
    memset(cap, 0, sizeof *cap);
}

/* A host copy of model tensor src (FP32), in *out. */
static int read_tensor(struct model *model, const struct amp_tensor *src, float **out)
{
    *out = malloc(src->numel * sizeof(float));
    if (!*out)
        return amp_fail(AMP_ENOMEM, "out of host memory");
    return model_read(model, src, *out);
}

/* Names slot i and copies model tensor `src` (its first `numel` elements are compared) into it. */
static int capture_tensor(struct model *model, struct captured *cap, size_t i, enum slot kind,
                          const char *name, const struct amp_tensor *src, size_t numel)
{
    snprintf(cap->names[i], sizeof cap->names[i], "%s", name);
    cap->kind[i] = kind;
    cap->n[i] = numel;
    return read_tensor(model, src, &cap->t[i]);
}

/* Whether the low-precision copy of mp holds its stored weights `stored` rounded (as the step
 * must leave it); when not, its name goes to stale. */
static int check_copy(struct model *model, const struct model_param *mp, const float *stored,
                      char *stale, size_t len)
{
    float *copy;
    int rc = read_tensor(model, mp->copy, &copy);
    for (size_t i = 0; rc == AMP_OK && i < mp->numel; i++) {
        const float want = mp->copy->dtype == AMP_F16 ? f16_to_f32(f16_from_f32(stored[i]))
                                                       : bf16_to_f32(bf16_from_f32(stored[i]));
        if (memcmp(&want, &copy[i], sizeof want) != 0) {
            snprintf(stale, len, "%s", mp->name);
            break;
        }
    }
    free(copy);
    return rc;
}

/* Recipe r from the seed's initial weights on one batch: a training step with the run's lr and
 * momentum, then a second forward (a step with lr 0) that reads the updated weights (and their
 * low-precision copies). */
static int capture(const struct amp_config *c, const struct recipe *r, const struct dataset *d,
                   const uint32_t *order, uint32_t n, struct captured *out)
{
    memset(out, 0, sizeof *out);
    struct backend be;
    struct model *model;
    const struct model_shape shape = train_model_shape(c, d, n);
    struct amp_config det = *c;
    det.deterministic = 1;
    out->plan = train_plan_of(c, r);
    int rc = train_open_model(&det, r, &out->plan, &shape, &be, &model);
    if (rc != AMP_OK)
        return rc;
    const size_t sample = (size_t)d->c * d->h * d->w, np = model_nparams(model);
    float *images = malloc((size_t)n * sample * sizeof *images);
    int32_t *labels = malloc((size_t)n * sizeof *labels);
    out->count = 3 + 2 * np;
    out->t = calloc(out->count, sizeof *out->t);
    out->before = calloc(out->count, sizeof *out->before);
    out->n = calloc(out->count, sizeof *out->n);
    out->names = calloc(out->count, sizeof *out->names);
    out->kind = calloc(out->count, sizeof *out->kind);
    if (!images || !labels || !out->t || !out->before || !out->n || !out->names || !out->kind)
        rc = amp_fail(AMP_ENOMEM, "out of host memory");
    if (rc == AMP_OK)
        dataset_gather(d, order, n, images, labels);
    if (rc == AMP_OK)
        rc = model_set_batch(model, images, labels, n);
    const size_t wslot = 2 + np; /* the first weight slot */
    for (size_t p = 0; p < np && rc == AMP_OK; p++) {
        struct model_param mp;
        model_param(model, p, &mp);
        rc = read_tensor(model, mp.stored, &out->before[wslot + p]);
    }
    struct step_result sr;
    if (rc == AMP_OK)
        rc = model_train_step(model, n, c->lr, c->momentum, &sr);
    if (rc == AMP_OK)
        rc = capture_tensor(model, out, 0, SLOT_FORWARD, "logits", model_logits(model),
                            (size_t)n * shape.classes);
    if (rc == AMP_OK) {
        snprintf(out->names[1], sizeof out->names[1], "loss");
        out->kind[1] = SLOT_FORWARD;
        out->n[1] = 1;
        out->t[1] = malloc(sizeof(float));
        if (out->t[1])
            out->t[1][0] = (float)(sr.loss_sum / n);
        else
            rc = amp_fail(AMP_ENOMEM, "out of host memory");
    }
    for (size_t p = 0; p < np && rc == AMP_OK; p++) {
        struct model_param mp;
        model_param(model, p, &mp);
        char name[64];
        snprintf(name, sizeof name, "d %s", mp.name);
        rc = capture_tensor(model, out, 2 + p, SLOT_GRADIENT, name, mp.grad, mp.numel);
        snprintf(name, sizeof name, "%s", mp.name);
        if (rc == AMP_OK)
            rc = capture_tensor(model, out, wslot + p, SLOT_WEIGHT, name, mp.stored, mp.numel);
        if (rc == AMP_OK && mp.copy && !out->stale[0])
            rc = check_copy(model, &mp, out->t[wslot + p], out->stale, sizeof out->stale);
    }
    out->loss_scale = sr.loss_scale;
    out->scale_after = sr.scaler.scale;
    out->skipped = sr.skipped;
    struct step_result sr2;
    if (rc == AMP_OK)
        rc = model_train_step(model, n, 0.0f, 0.0f, &sr2);
    if (rc == AMP_OK)
        rc = capture_tensor(model, out, out->count - 1, SLOT_FORWARD, "logits, step 2",
                            model_logits(model), (size_t)n * shape.classes);
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
    m->sqnr_db = diff2 > 0 ? 10.0 * log10(ref2 / diff2) : INFINITY;
    m->cosine = ref2 > 0 && x2 > 0 ? dot / sqrt(ref2 * x2) : (diff2 == 0 ? 1.0 : 0.0);
    m->pass = !m->nonfinite && m->rel_l2 <= m->limit;
}

static int same(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof *a) == 0;
}

static double norm2(const struct captured *cap, enum slot kind)
{
    double s = 0.0;
    for (size_t t = 0; t < cap->count; t++)
        for (size_t i = 0; cap->kind[t] == kind && i < cap->n[t]; i++)
            s += (double)cap->t[t][i] * cap->t[t][i];
    return s;
}

/* The likely cause of a failed comparison, from the mechanics of the step (each a classic AMP
 * implementation bug; tests/test_faults.sh plants every one), or "" when none fits. */
static void diagnose(struct parity_result *pr, const struct captured *cap,
                     const struct captured *ref, const struct amp_config *c)
{
    char *why = pr->diagnosis;
    const size_t len = sizeof pr->diagnosis;
    const int can_back_off = pr->recipe->scaling == SCALING_DYNAMIC &&
                             !(c->scale_min > 0 && cap->loss_scale <= c->scale_min);
    for (size_t t = 0; cap->skipped && t < cap->count; t++)
        if (cap->kind[t] == SLOT_WEIGHT && !same(cap->t[t], cap->before[t], cap->n[t])) {
            snprintf(why, len, "a step with inf/NaN gradients changed %s: such a step must be "
                     "skipped", cap->names[t]);
            return;
        }
    if (cap->skipped && can_back_off && !(cap->scale_after < cap->loss_scale)) {
        snprintf(why, len, "the loss scale %g did not back off after inf/NaN gradients",
                 cap->scale_after);
        return;
    }
    /* Masters that stayed put while fp32's moved (a recipe with FP32 masters only: pure FP16
     * weights may legitimately swallow a whole update). */
    for (size_t t = 0; !cap->skipped && !ref->skipped && cap->plan.weights == AMP_F32 &&
                       t < cap->count; t++)
        if (cap->kind[t] == SLOT_WEIGHT && same(cap->t[t], cap->before[t], cap->n[t]) &&
            !same(ref->t[t], ref->before[t], ref->n[t])) {
            snprintf(why, len, "%s did not move in the step (fp32's did): the update missed the "
                     "stored (FP32 master) weights", cap->names[t]);
            return;
        }
    if (!cap->skipped && cap->stale[0]) {
        snprintf(why, len, "the low-precision copy of %s is not its rounded master after the "
                 "step: the copy was not refreshed", cap->stale);
        return;
    }
    if (pr->pass)
        return;
    const double g = norm2(cap, SLOT_GRADIENT), gref = norm2(ref, SLOT_GRADIENT);
    const double ratio = gref > 0 ? sqrt(g / gref) : 0;
    if (!cap->skipped && cap->loss_scale > 1 && ratio > 0 &&
        fabs(log2(ratio) - log2(cap->loss_scale)) < 0.25)
        snprintf(why, len, "the gradients are %.4g x fp32's, the loss scale: it was not undone "
                 "(gradients not unscaled before the step, or the loss scaled twice)", ratio);
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
            struct parity_metrics *m = &pr->t[t];
            snprintf(m->name, sizeof m->name, "%s", cap.names[t]);
            const int fp8 = cap.plan.fp8.scaling != FP8_SCALING_NONE;
            m->limit = parity_limit(&cap.plan, cap.kind[t] == SLOT_GRADIENT ||
                                                   (fp8 && cap.kind[t] == SLOT_WEIGHT));
            /* After a skipped step the weights, and so the second forward, must be exactly what
             * they were. */
            const float *want = ref.t[t];
            if (cap.skipped && cap.kind[t] == SLOT_WEIGHT) {
                want = cap.before[t];
                m->limit = 0.0;
            } else if (cap.skipped && t == cap.count - 1) {
                want = cap.t[0];
                m->limit = 0.0;
            }
            compare(m, want, cap.t[t], cap.n[t]);
            pr->pass &= m->pass;
        }
        diagnose(pr, &cap, &ref, c);
        pr->pass &= pr->diagnosis[0] == '\0';
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
