/* Verification: judges every recipe against the FP32 reference (single seed: final accuracy
 * and per-epoch test loss within tolerances; several seeds: a one-sided Welch t-test on the
 * final accuracy), marks diverged recipes, and compares a run with a baseline file. */
#ifndef AMPBENCH_VERIFY_H
#define AMPBENCH_VERIFY_H

#include <stddef.h>

#include "config.h"
#include "train.h"

/* Final test accuracy of one recipe over its seeds, and its per-epoch curves. */
struct recipe_stats {
    uint32_t n;                   /* seeds */
    double mean, std, min, max, median;
    uint32_t epochs;              /* epochs completed by every seed */
    double *acc_mean, *acc_std;   /* per epoch test accuracy */
    double *loss_mean, *loss_std; /* per epoch test loss */
};

struct verdict {
    const struct recipe *recipe;
    int reference;                /* fp32, the reference itself */
    int pass;
    char reason[256];
    struct recipe_stats stats;
    double delta_pp;              /* mean final test accuracy minus fp32's, percentage points */
    double worst_loss_rel;        /* worst per-epoch relative test-loss rise vs fp32 (of means) */
    double p_value;               /* Welch one-sided p (seeds >= 3), else -1 */
    uint32_t skipped_steps;       /* over all seeds */
    double grad_underflow;        /* last epoch of the first seed */
    int diverged;                 /* any seed diverged */
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
/* A baseline file (written by verify_write_baseline), read and checked before training. */
struct baseline {
    char *file;
    void *root; /* the parsed JSON */
};
/* Reads a baseline and refuses one of another configuration (AMP_EINPUT naming the differing
 * keys) or a malformed one. */
int baseline_open(struct baseline *b, const char *file, const struct amp_config *c,
                  size_t train_samples, size_t test_samples);
void baseline_close(struct baseline *b);
/* Compares the first seed's per-epoch metrics of every recipe with the baseline. Moves are added
 * to v and fail the moved recipes. */
int verify_against_baseline(const struct baseline *b, const struct amp_config *c,
                            const struct recipe_result *results, size_t nresults,
                            struct verification *v);
int verify_write_baseline(const char *file, const struct amp_config *c, size_t train_samples,
                          size_t test_samples, const struct recipe_result *results,
                          size_t nresults);
/* One-sided Welch t-test: p-value of "mean(b) < mean(a) - margin" from samples a and b. */
double welch_one_sided_p(const double *a, size_t na, const double *b, size_t nb, double margin);
void verification_free(struct verification *v);

#endif
