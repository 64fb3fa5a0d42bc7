/* Verification's statistics: mean, sample standard deviation, min/max/median of the final test
 * accuracy over seeds, per-epoch mean curves, and the one-sided t-tests, paired and Welch's
 * (GSL's t CDF). */
#include "stats.h"

#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void mean_std(const double *x, size_t n, double *mean, double *std)
{
    double s = 0.0, ss = 0.0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    *mean = s / (double)n;
    for (size_t i = 0; i < n; i++)
        ss += (x[i] - *mean) * (x[i] - *mean);
    *std = n > 1 ? sqrt(ss / (double)(n - 1)) : 0.0;
}

double welch_one_sided_p(const double *a, size_t na, const double *b, size_t nb, double margin)
{
    double ma, sa, mb, sb;
    mean_std(a, na, &ma, &sa);
    mean_std(b, nb, &mb, &sb);
    const double va = sa * sa / (double)na, vb = sb * sb / (double)nb, se = sqrt(va + vb);
    const double excess = (ma - mb) - margin;
    if (se == 0.0)
        return excess > 0.0 ? 0.0 : 1.0;
    const double t = excess / se;
    /* Welch-Satterthwaite degrees of freedom. */
    const double df = (va + vb) * (va + vb) /
                      (va * va / (double)(na - 1) + vb * vb / (double)(nb - 1));
    return gsl_cdf_tdist_Q(t, df);
}

/* t = (mean(d) + margin) / (sd(d) / sqrt(n)) with n - 1 degrees of freedom; *t_out is +-inf
 * when every difference is the same. Returns the degrees of freedom. */
static double paired_t(const double *a, const double *b, size_t n, double margin, double *t_out)
{
    double d[n], md, sd;
    for (size_t i = 0; i < n; i++)
        d[i] = b[i] - a[i];
    mean_std(d, n, &md, &sd);
    const double excess = md + margin;
    *t_out = sd > 0.0   ? excess / (sd / sqrt((double)n))
             : excess > 0.0 ? INFINITY
             : excess < 0.0 ? -INFINITY
                            : 0.0;
    return (double)(n - 1);
}

double paired_drop_p(const double *a, const double *b, size_t n, double margin)
{
    double t;
    const double df = paired_t(a, b, n, margin, &t);
    return isinf(t) ? (t < 0.0 ? 0.0 : 1.0) : gsl_cdf_tdist_P(t, df);
}

double paired_within_p(const double *a, const double *b, size_t n, double margin)
{
    double t;
    const double df = paired_t(a, b, n, margin, &t);
    return isinf(t) ? (t > 0.0 ? 0.0 : 1.0) : gsl_cdf_tdist_Q(t, df);
}

int recipe_stats_fill(struct recipe_stats *st, const struct recipe_result *const *runs, size_t n)
{
    memset(st, 0, sizeof *st);
    st->n = (uint32_t)n;
    st->epochs = UINT32_MAX;
    for (size_t i = 0; i < n; i++)
        if (runs[i]->nepochs < st->epochs)
            st->epochs = runs[i]->nepochs;
    double *finals = calloc(n, sizeof *finals), *col = calloc(n, sizeof *col);
    const size_t e = st->epochs ? st->epochs : 1;
    st->acc_mean = calloc(e, sizeof(double));
    st->acc_std = calloc(e, sizeof(double));
    st->loss_mean = calloc(e, sizeof(double));
    st->loss_std = calloc(e, sizeof(double));
    if (!finals || !col || !st->acc_mean || !st->acc_std || !st->loss_mean || !st->loss_std) {
        free(finals);
        free(col);
        return amp_fail(AMP_ENOMEM, "out of host memory judging the recipes");
    }
    for (uint32_t ep = 0; ep < st->epochs; ep++) {
        for (size_t i = 0; i < n; i++)
            col[i] = runs[i]->epochs[ep].test_acc;
        mean_std(col, n, &st->acc_mean[ep], &st->acc_std[ep]);
        for (size_t i = 0; i < n; i++)
            col[i] = runs[i]->epochs[ep].test_loss;
        mean_std(col, n, &st->loss_mean[ep], &st->loss_std[ep]);
    }
    for (size_t i = 0; i < n; i++)
        finals[i] = runs[i]->nepochs ? runs[i]->epochs[runs[i]->nepochs - 1].test_acc : NAN;
    mean_std(finals, n, &st->mean, &st->std);
    qsort(finals, n, sizeof *finals, cmp_double);
    st->min = finals[0];
    st->max = finals[n - 1];
    st->median = n % 2 ? finals[n / 2] : 0.5 * (finals[n / 2 - 1] + finals[n / 2]);
    free(finals);
    free(col);
    return AMP_OK;
}

void recipe_stats_free(struct recipe_stats *st)
{
    free(st->acc_mean);
    free(st->acc_std);
    free(st->loss_mean);
    free(st->loss_std);
    memset(st, 0, sizeof *st);
}
