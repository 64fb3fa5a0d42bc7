/* Verification: the verdict of every recipe against the FP32 reference (single seed: tolerances;
 * several seeds: the paired or Welch t-tests of stats.c). Rules in docs/VERIFICATION.md. */
#include "verify.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* The results of recipe m, in seed order. */
static size_t runs_of(const struct recipe *m, const struct recipe_result *results, size_t n,
                      const struct recipe_result **out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (results[i].recipe == m)
            out[k++] = &results[i];
    return k;
}

static void final_accs(const struct recipe_result **runs, size_t n, double *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = runs[i]->epochs[runs[i]->nepochs - 1].test_acc;
}

/* The reference's final accuracies in the order of the recipe's seeds: 1 when every seed of the
 * recipe has exactly one reference run (the pairs of a paired test), else 0. */
static int paired_refs(const struct recipe_result **runs, size_t n,
                       const struct recipe_result **ref, size_t nref, double *out)
{
    if (n != nref)
        return 0;
    for (size_t i = 0; i < n; i++) {
        size_t found = 0;
        for (size_t j = 0; j < nref; j++)
            if (ref[j]->seed == runs[i]->seed) {
                out[i] = ref[j]->epochs[ref[j]->nepochs - 1].test_acc;
                found++;
            }
        if (found != 1)
            return 0;
    }
    return 1;
}

/* The verdict of one recipe against the reference's runs. */
static void judge(struct verdict *v, const struct amp_config *c, const struct recipe_result **runs,
                  size_t n, const struct recipe_result **ref, size_t nref,
                  const struct recipe_stats *ref_stats)
{
    const uint32_t expected = c->epochs;
    for (size_t i = 0; i < n; i++) {
        v->diverged |= runs[i]->diverged;
        for (uint32_t e = 0; e < runs[i]->nepochs; e++)
            v->skipped_steps += runs[i]->epochs[e].skipped_steps;
    }
    if (runs[0]->nepochs)
        v->grad_underflow =
            numerics_grad_underflow_frac(&runs[0]->epochs[runs[0]->nepochs - 1].numerics);
    v->p_value = v->p_within = -1.0;
    if (v->diverged) {
        for (size_t i = 0; i < n; i++)
            if (runs[i]->diverged) {
                snprintf(v->reason, sizeof v->reason,
                         "diverged: loss NaN/inf at epoch %u step %u (seed %llu)",
                         runs[i]->diverged_epoch, runs[i]->diverged_step,
                         (unsigned long long)runs[i]->seed);
                break;
            }
        return;
    }
    if (v->stats.epochs < expected || ref_stats->epochs < expected) {
        snprintf(v->reason, sizeof v->reason, "incomplete: %u of %u epochs", v->stats.epochs,
                 expected);
        return;
    }
    v->delta_pp = 100.0 * (v->stats.mean - ref_stats->mean);
    v->worst_loss_rel = -INFINITY;
    uint32_t worst_epoch = 1;
    for (uint32_t e = 0; e < expected; e++) {
        const double rel = (v->stats.loss_mean[e] - ref_stats->loss_mean[e]) / ref_stats->loss_mean[e];
        if (rel > v->worst_loss_rel) {
            v->worst_loss_rel = rel;
            worst_epoch = e + 1;
        }
    }
    if (v->reference) {
        v->pass = 1;
        snprintf(v->reason, sizeof v->reason, "reference");
        return;
    }
    int acc_ok;
    char acc_why[200];
    if (n >= 3 && nref >= 3) {
        double a[nref], b[n];
        final_accs(runs, n, b);
        const double margin = c->tol_acc / 100.0;
        if (paired_refs(runs, n, ref, nref, a)) {
            v->test = "paired";
            v->p_value = paired_drop_p(a, b, n, margin);
            v->p_within = paired_within_p(a, b, n, margin);
        } else {
            final_accs(ref, nref, a);
            v->test = "welch";
            v->p_value = welch_one_sided_p(a, nref, b, n, margin);
        }
        acc_ok = v->p_value >= 0.05;
        if (v->p_within >= 0.0)
            snprintf(acc_why, sizeof acc_why,
                     "mean accuracy %+.2f pp vs fp32; paired t-test over %zu seeds: p = %.3g for "
                     "a drop beyond %.2f pp, p = %.3g for within it",
                     v->delta_pp, n, v->p_value, c->tol_acc, v->p_within);
        else
            snprintf(acc_why, sizeof acc_why,
                     "mean accuracy %+.2f pp vs fp32; Welch t-test: p = %.3g for a drop beyond "
                     "%.2f pp",
                     v->delta_pp, v->p_value, c->tol_acc);
    } else {
        acc_ok = v->delta_pp >= -c->tol_acc;
        snprintf(acc_why, sizeof acc_why, "final accuracy %+.2f pp vs fp32 (tolerance -%.2f pp)",
                 v->delta_pp, c->tol_acc);
    }
    const int loss_ok = v->worst_loss_rel <= c->tol_loss;
    /* The reference's own spread (its sample std over seeds) above the accuracy tolerance: a
     * difference within it is noise, so no verdict either way, unless the t-test (which weighs
     * the spread) finds a significant drop, or the paired test finds the recipe significantly
     * within the tolerance (seed by seed, the recipe follows fp32 closer than fp32's seeds
     * follow each other). */
    const double spread_pp = 100.0 * ref_stats->std;
    const int significant = (v->p_value >= 0.0 && !acc_ok) ||
                            (v->p_within >= 0.0 && v->p_within < 0.05);
    if (nref >= 2 && spread_pp > c->tol_acc && !significant) {
        v->inconclusive = 1;
        snprintf(v->reason, sizeof v->reason,
                 "inconclusive: fp32's own spread is %.2f pp (std over %zu seeds), above the "
                 "%.2f pp tolerance; train longer or use more seeds (%s)",
                 spread_pp, nref, c->tol_acc, acc_why);
        return;
    }
    v->pass = acc_ok && loss_ok;
    if (!acc_ok)
        snprintf(v->reason, sizeof v->reason, "accuracy: %s", acc_why);
    else if (!loss_ok)
        snprintf(v->reason, sizeof v->reason,
                 "test loss %.1f%% above fp32 at epoch %u (tolerance %.1f%%)",
                 100.0 * v->worst_loss_rel, worst_epoch, 100.0 * c->tol_loss);
    else
        snprintf(v->reason, sizeof v->reason, "within tolerance: %s, worst loss %+.2f%%",
                 acc_why, 100.0 * v->worst_loss_rel);
}

int verify_judge(const struct amp_config *c, const struct recipe_result *results, size_t nresults,
                 struct verification *out)
{
    memset(out, 0, sizeof *out);
    out->tol_acc = c->tol_acc;
    out->tol_loss = c->tol_loss;
    out->seeds = c->seeds;
    out->verdicts = calloc(c->nrecipes, sizeof *out->verdicts);
    const struct recipe_result **runs = calloc(nresults, sizeof *runs);
    const struct recipe_result **ref = calloc(nresults, sizeof *ref);
    if (!out->verdicts || !runs || !ref) {
        free(runs);
        free(ref);
        return amp_fail(AMP_ENOMEM, "out of host memory judging the recipes");
    }
    const struct recipe *reference = recipe_reference();
    const size_t nref = runs_of(reference, results, nresults, ref);
    struct recipe_stats ref_stats = { 0 };
    int rc = nref ? recipe_stats_fill(&ref_stats, ref, nref)
                  : amp_fail(AMP_EINPUT, "verify: no fp32 reference run");
    out->all_pass = 1;
    for (size_t i = 0; i < c->nrecipes && rc == AMP_OK; i++) {
        struct verdict *v = &out->verdicts[out->n++];
        v->recipe = c->recipes[i];
        v->reference = c->recipes[i] == reference;
        const size_t n = runs_of(c->recipes[i], results, nresults, runs);
        rc = n ? recipe_stats_fill(&v->stats, runs, n)
               : amp_fail(AMP_EINPUT, "verify: no run of %s", c->recipes[i]->name);
        if (rc == AMP_OK)
            judge(v, c, runs, n, ref, nref, &ref_stats);
        out->all_pass &= v->pass;
    }
    recipe_stats_free(&ref_stats);
    free(runs);
    free(ref);
    return rc;
}

const char *verdict_word(const struct verdict *v)
{
    return v->pass ? "pass" : v->diverged ? "diverged" : v->inconclusive ? "inconclusive" : "fail";
}

const char *verification_rule(const struct verification *v)
{
    int paired = 0;
    for (size_t i = 0; i < v->n; i++) {
        if (v->verdicts[i].test && strcmp(v->verdicts[i].test, "welch") == 0)
            return "welch-t-one-sided-p0.05";
        paired |= v->verdicts[i].test != NULL;
    }
    return paired ? "paired-t-one-sided-p0.05" : "single-seed";
}

void verification_free(struct verification *v)
{
    for (size_t i = 0; i < v->n; i++)
        recipe_stats_free(&v->verdicts[i].stats);
    free(v->verdicts);
    for (size_t i = 0; i < v->nmoves; i++)
        free(v->moves[i]);
    free(v->moves);
    free(v->baseline);
    memset(v, 0, sizeof *v);
}
