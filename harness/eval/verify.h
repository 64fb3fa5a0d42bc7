/* Verification: judges every recipe against the FP32 reference (single seed: final accuracy
 * and per-epoch test loss within tolerances; several seeds: a one-sided t-test on the final
 * accuracy, paired by seed, or Welch's when the seeds differ) and marks diverged recipes.
 * out/baseline.h compares a run with a baseline. */
#ifndef AMPBENCH_VERIFY_H
#define AMPBENCH_VERIFY_H

#include <stddef.h>

#include "config.h"
#include "stats.h"
#include "train.h"

struct verdict {
    const struct recipe *recipe;
    int reference;                /* fp32, the reference itself */
    int pass;
    char reason[384];
    struct recipe_stats stats;
    double delta_pp;              /* mean final test accuracy minus fp32's, percentage points */
    double worst_loss_rel;        /* worst per-epoch relative test-loss rise vs fp32 (of means) */
    const char *test;             /* "paired" or "welch" (seeds >= 3), else NULL */
    double p_value;               /* the test's p of a drop beyond the tolerance, else -1 */
    double p_within;              /* paired: p of "within the tolerance" (non-inferiority),
                                   * else -1 */
    uint32_t skipped_steps;       /* over all seeds */
    double grad_underflow;        /* last epoch of the first seed */
    int diverged;                 /* any seed diverged */
    int inconclusive;             /* fp32's own seed-to-seed spread exceeds the tolerance: the
                                   * run cannot tell precision from noise (not a pass) */
    int baseline_moved;           /* metrics that moved against the baseline */
};

struct verification {
    struct verdict *verdicts;     /* one per recipe, in --modes order */
    size_t n;
    float tol_acc, tol_loss;
    uint32_t seeds;
    char *baseline;               /* the baseline file compared with, or NULL */
    char **moves;                 /* one line per metric that moved against the baseline */
    size_t nmoves;
    int all_pass;
};

/* Judges the recipes of c (fp32 included; results holds every recipe x seed, in any order). */
int verify_judge(const struct amp_config *c, const struct recipe_result *results, size_t nresults,
                 struct verification *out);
void verification_free(struct verification *v);
/* The accuracy rule of the run, as run.json and the report name it: "paired-t-one-sided-p0.05"
 * when every recipe was judged by the paired test, "welch-t-one-sided-p0.05" when one was judged
 * by Welch's, else "single-seed". */
const char *verification_rule(const struct verification *v);
/* "pass", "fail", "diverged" or "inconclusive", as run.json and the report write it. */
const char *verdict_word(const struct verdict *v);

#endif
