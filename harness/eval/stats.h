/* The statistics of verification: a recipe's final test accuracy over its seeds and its
 * per-epoch curves, and the one-sided t-tests (paired, or Welch's) that judge several seeds. */
#ifndef AMPBENCH_STATS_H
#define AMPBENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "train.h"

/* Final test accuracy of one recipe over its seeds, and its per-epoch curves. */
struct recipe_stats {
    uint32_t n;                   /* seeds */
    double mean, std, min, max, median;
    uint32_t epochs;              /* epochs completed by every seed */
    double *acc_mean, *acc_std;   /* per epoch test accuracy */
    double *loss_mean, *loss_std; /* per epoch test loss */
};

/* The statistics of n (>= 1) runs of one recipe. The curves are allocated (recipe_stats_free),
 * even when this fails. */
int recipe_stats_fill(struct recipe_stats *st, const struct recipe_result *const *runs, size_t n);
void recipe_stats_free(struct recipe_stats *st);

/* One-sided Welch t-test: p-value of "mean(b) < mean(a) - margin" from samples a and b. */
double welch_one_sided_p(const double *a, size_t na, const double *b, size_t nb, double margin);

/* One-sided paired t-tests on d[i] = b[i] - a[i] (n >= 2 pairs: the same seed's runs, which
 * share the init and the batches): the p-value of "mean(d) < -margin" (a drop beyond the
 * margin), and the p-value of "mean(d) > -margin" (within the margin: non-inferiority). */
double paired_drop_p(const double *a, const double *b, size_t n, double margin);
double paired_within_p(const double *a, const double *b, size_t n, double margin);

#endif
