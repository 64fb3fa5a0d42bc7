/* Step parity: from the same initial weights and the same batch, one training step and a second
 * forward per recipe against fp32, tensor by tensor (logits, loss, every weight gradient, every
 * weight after the step, the second forward's logits), with error metrics, a verdict against
 * per-dtype tolerances (docs/VERIFICATION.md) and, when the mechanics of the step are wrong
 * (gradients not unscaled, a step taken on inf/NaN, a scale that never backs off, masters not
 * updated, a stale low-precision copy), the likely cause. */
#ifndef AMPBENCH_PARITY_H
#define AMPBENCH_PARITY_H

#include "config.h"
#include "idx.h"
#include "model.h"

struct parity_metrics {
    char name[64];   /* "logits", "loss", "d conv.weight", ... */
    size_t numel;
    double max_abs, max_rel, rel_l2, cosine;
    double sqnr_db;  /* 10 log10(|ref|^2 / |x - ref|^2): -20 log10(rel_l2); inf when equal */
    int nonfinite;   /* the recipe's tensor holds inf/NaN */
    double limit;    /* on rel_l2 (and 1 - cosine) */
    int pass;
};

struct parity_result {
    const struct recipe *recipe;
    struct parity_metrics *t;     /* the logits, the loss, every parameter's gradient, every
                                   * parameter after the step, the second forward's logits */
    size_t ntensors;
    float loss_scale;
    int skipped;     /* the scaler skipped the step: gradients held inf/NaN */
    char diagnosis[256]; /* the likely cause when the step's mechanics are wrong, else "" */
    int pass;
};

/* The relative-L2 tolerance of a recipe's tensor against fp32 (0 for fp32 itself): 16 units of
 * the narrowest type's roundoff for the forward outputs (logits, loss), 64 for the gradients,
 * which are reductions with cancellation; for FP8 recipes, an SQNR of at least 18 dB forward and
 * -10 dB for the gradients and the weights after the step (docs/VERIFICATION.md). */
double parity_limit(const struct precision_plan *plan, int gradient);
/* Runs every recipe of c (fp32 first, the reference) on the first shuffled batch of train and
 * compares (after a skipped step: the weights and the second forward against the recipe's own,
 * exactly); out has c->nrecipes entries (fp32 included), each freed with parity_result_free. */
int parity_run(const struct amp_config *c, const struct dataset *train,
               struct parity_result *out);
void parity_result_free(struct parity_result *r);

#endif
