/* Verification: verdicts of every recipe against FP32, the Welch test for several seeds, and the
 * baseline file (write, compare, refuse another configuration). Rules in docs/VERIFICATION.md. */
#include "verify.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "results.h"

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

static int fill_stats(struct recipe_stats *st, const struct recipe_result **runs, size_t n)
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

static void final_accs(const struct recipe_result **runs, size_t n, double *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = runs[i]->epochs[runs[i]->nepochs - 1].test_acc;
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
    v->p_value = -1.0;
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
    char acc_why[128];
    if (n >= 3 && nref >= 3) {
        double a[nref], b[n];
        final_accs(ref, nref, a);
        final_accs(runs, n, b);
        v->p_value = welch_one_sided_p(a, nref, b, n, c->tol_acc / 100.0);
        acc_ok = v->p_value >= 0.05;
        snprintf(acc_why, sizeof acc_why,
                 "mean accuracy %+.2f pp vs fp32; Welch p = %.3g for a drop beyond %.2f pp",
                 v->delta_pp, v->p_value, c->tol_acc);
    } else {
        acc_ok = v->delta_pp >= -c->tol_acc;
        snprintf(acc_why, sizeof acc_why, "final accuracy %+.2f pp vs fp32 (tolerance -%.2f pp)",
                 v->delta_pp, c->tol_acc);
    }
    const int loss_ok = v->worst_loss_rel <= c->tol_loss;
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
    const struct recipe *fp32 = recipe_find("fp32");
    const size_t nref = runs_of(fp32, results, nresults, ref);
    struct recipe_stats ref_stats;
    int rc = nref ? fill_stats(&ref_stats, ref, nref)
                  : amp_fail(AMP_EINPUT, "verify: no fp32 reference run");
    out->all_pass = 1;
    for (size_t i = 0; i < c->nrecipes && rc == AMP_OK; i++) {
        struct verdict *v = &out->verdicts[out->n++];
        v->recipe = c->recipes[i];
        v->reference = c->recipes[i] == fp32;
        const size_t n = runs_of(c->recipes[i], results, nresults, runs);
        rc = n ? fill_stats(&v->stats, runs, n)
               : amp_fail(AMP_EINPUT, "verify: no run of %s", c->recipes[i]->name);
        if (rc == AMP_OK)
            judge(v, c, runs, n, ref, nref, &ref_stats);
        out->all_pass &= v->pass;
    }
    if (nref) {
        free(ref_stats.acc_mean);
        free(ref_stats.acc_std);
        free(ref_stats.loss_mean);
        free(ref_stats.loss_std);
    }
    free(runs);
    free(ref);
    return rc;
}

/* ---- baselines ---- */

/* The configuration keys a baseline must share with the run compared to it. */
static cJSON *baseline_config(const struct amp_config *c, size_t train_samples,
                              size_t test_samples)
{
    cJSON *j = cJSON_CreateObject();
    results_protocol_json(j, c);
    cJSON_AddNumberToObject(j, "train_samples", (double)train_samples);
    cJSON_AddNumberToObject(j, "test_samples", (double)test_samples);
    cJSON_AddStringToObject(j, "policy", policy_name(c->policy));
    cJSON_AddNumberToObject(j, "loss_scale", c->loss_scale);
    cJSON_AddNumberToObject(j, "scale_init", c->scale_init);
    cJSON_AddNumberToObject(j, "scale_growth_interval", c->scale_growth_interval);
    cJSON_AddNumberToObject(j, "scale_min", c->scale_min);
    cJSON_AddNumberToObject(j, "scale_max", c->scale_max);
    return j;
}

/* The first seed's run of each recipe. */
static const struct recipe_result *first_run(const struct recipe *m,
                                           const struct recipe_result *results, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (results[i].recipe == m)
            return &results[i];
    return NULL;
}

int verify_write_baseline(const char *file, const struct amp_config *c, size_t train_samples,
                          size_t test_samples, const struct recipe_result *results,
                          size_t nresults)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "tool", "ampbench-baseline");
    cJSON_AddNumberToObject(root, "format", 1);
    cJSON_AddItemToObject(root, "config", baseline_config(c, train_samples, test_samples));
    cJSON *recipes = cJSON_AddObjectToObject(root, "modes");
    for (size_t i = 0; i < c->nrecipes; i++) {
        const struct recipe_result *r = first_run(c->recipes[i], results, nresults);
        cJSON *arr = cJSON_AddArrayToObject(recipes, c->recipes[i]->name);
        for (uint32_t e = 0; r && e < r->nepochs; e++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "epoch", r->epochs[e].epoch);
            cJSON_AddNumberToObject(o, "train_loss", r->epochs[e].train_loss);
            cJSON_AddNumberToObject(o, "test_loss", r->epochs[e].test_loss);
            cJSON_AddNumberToObject(o, "test_acc", r->epochs[e].test_acc);
            cJSON_AddItemToArray(arr, o);
        }
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return amp_fail(AMP_ENOMEM, "out of memory formatting %s", file);
    int rc = results_write_path(file, text, strlen(text));
    cJSON_free(text);
    return rc;
}

static char *read_text(const char *file)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        amp_fail(AMP_EINPUT, "%s: cannot read baseline: %s", file, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 65536;
            char *grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                fclose(f);
                amp_fail(AMP_ENOMEM, "%s: out of memory reading the baseline", file);
                return NULL;
            }
            buf = grown;
        }
        size_t got = fread(buf + len, 1, 4096, f);
        len += got;
        if (got < 4096)
            break;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static int add_move(struct verification *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int add_move(struct verification *v, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char **grown = realloc(v->moves, (v->nmoves + 1) * sizeof *grown);
    char *copy = strdup(line);
    if (!grown || !copy) {
        free(copy);
        if (grown)
            v->moves = grown;
        return amp_fail(AMP_ENOMEM, "out of memory comparing with the baseline");
    }
    v->moves = grown;
    v->moves[v->nmoves++] = copy;
    return AMP_OK;
}

/* The differing configuration keys of the baseline and the run, as "key (baseline X, run Y)". */
static void config_diff(const cJSON *base, const cJSON *run, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    const cJSON *item;
    cJSON_ArrayForEach(item, run)
    {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(base, item->string);
        char *bs = b ? cJSON_PrintUnformatted(b) : NULL, *rs = cJSON_PrintUnformatted(item);
        if (!b || !bs || !rs || strcmp(bs, rs) != 0)
            used += (size_t)snprintf(out + used, used < len ? len - used : 0,
                                     "%s%s (baseline %s, run %s)", used ? ", " : "",
                                     item->string, bs ? bs : "missing", rs ? rs : "?");
        cJSON_free(bs);
        cJSON_free(rs);
        if (used >= len)
            break;
    }
}

static int compare_recipe(struct verification *v, const char *file, const struct recipe *m,
                        const struct recipe_result *r, const cJSON *arr)
{
    struct verdict *vd = NULL;
    for (size_t i = 0; i < v->n; i++)
        if (v->verdicts[i].recipe == m)
            vd = &v->verdicts[i];
    int rc = AMP_OK;
    const uint32_t epochs = (uint32_t)cJSON_GetArraySize(arr);
    if (r->nepochs != epochs) {
        rc = add_move(v, "%s: %u epochs completed, baseline has %u", m->name, r->nepochs, epochs);
        if (vd)
            vd->baseline_moved++;
    }
    for (uint32_t e = 0; e < r->nepochs && e < epochs && rc == AMP_OK; e++) {
        const cJSON *o = cJSON_GetArrayItem(arr, (int)e);
        const cJSON *acc = cJSON_GetObjectItemCaseSensitive(o, "test_acc");
        const cJSON *tl = cJSON_GetObjectItemCaseSensitive(o, "test_loss");
        const cJSON *trl = cJSON_GetObjectItemCaseSensitive(o, "train_loss");
        if (!cJSON_IsNumber(acc) || !cJSON_IsNumber(tl) || !cJSON_IsNumber(trl))
            return amp_fail(AMP_EINPUT, "%s: malformed epoch %u of mode %s", file, e + 1, m->name);
        const struct epoch_metrics *me = &r->epochs[e];
        const double dacc = 100.0 * (me->test_acc - acc->valuedouble);
        if (fabs(dacc) > v->tol_acc) {
            rc = add_move(v, "%s epoch %u test_acc %.4f -> %.4f (%+.2f pp, tolerance %.2f pp)",
                          m->name, e + 1, acc->valuedouble, me->test_acc, dacc, v->tol_acc);
            if (vd)
                vd->baseline_moved++;
        }
        const double base_loss[2] = { tl->valuedouble, trl->valuedouble };
        const double run_loss[2] = { me->test_loss, me->train_loss };
        static const char *const names[2] = { "test_loss", "train_loss" };
        for (int k = 0; k < 2 && rc == AMP_OK; k++) {
            const double rel = (run_loss[k] - base_loss[k]) / base_loss[k];
            if (fabs(rel) > v->tol_loss || !isfinite(rel)) {
                rc = add_move(v, "%s epoch %u %s %.4f -> %.4f (%+.1f%%, tolerance %.1f%%)",
                              m->name, e + 1, names[k], base_loss[k], run_loss[k], 100.0 * rel,
                              100.0 * v->tol_loss);
                if (vd)
                    vd->baseline_moved++;
            }
        }
    }
    return rc;
}

int baseline_open(struct baseline *b, const char *file, const struct amp_config *c,
                  size_t train_samples, size_t test_samples)
{
    memset(b, 0, sizeof *b);
    char *text = read_text(file);
    if (!text)
        return AMP_EINPUT;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *tool = cJSON_GetObjectItemCaseSensitive(root, "tool");
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(root, "config");
    const cJSON *recipes = cJSON_GetObjectItemCaseSensitive(root, "modes");
    if (!root || !cJSON_IsString(tool) || strcmp(tool->valuestring, "ampbench-baseline") != 0 ||
        !cJSON_IsObject(config) || !cJSON_IsObject(recipes)) {
        cJSON_Delete(root);
        return amp_fail(AMP_EINPUT, "%s: not an ampbench baseline (malformed JSON or missing "
                                    "tool/config/modes)", file);
    }
    cJSON *mine = baseline_config(c, train_samples, test_samples);
    char diff[1024];
    config_diff(config, mine, diff, sizeof diff);
    cJSON_Delete(mine);
    if (diff[0]) {
        cJSON_Delete(root);
        return amp_fail(AMP_EINPUT, "%s: baseline of another configuration: %s", file, diff);
    }
    for (size_t i = 0; i < c->nrecipes; i++)
        if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(recipes, c->recipes[i]->name))) {
            cJSON_Delete(root);
            return amp_fail(AMP_EINPUT, "%s: no baseline for mode %s (regenerate it with "
                                        "--write-baseline)", file, c->recipes[i]->name);
        }
    b->file = strdup(file);
    b->root = root;
    if (!b->file) {
        baseline_close(b);
        return amp_fail(AMP_ENOMEM, "out of memory reading %s", file);
    }
    return AMP_OK;
}

void baseline_close(struct baseline *b)
{
    cJSON_Delete(b->root);
    free(b->file);
    memset(b, 0, sizeof *b);
}

int verify_against_baseline(const struct baseline *b, const struct amp_config *c,
                            const struct recipe_result *results, size_t nresults,
                            struct verification *v)
{
    const cJSON *recipes = cJSON_GetObjectItemCaseSensitive(b->root, "modes");
    v->baseline = strdup(b->file);
    int rc = v->baseline ? AMP_OK : amp_fail(AMP_ENOMEM, "out of memory");
    for (size_t i = 0; i < c->nrecipes && rc == AMP_OK; i++) {
        const struct recipe_result *r = first_run(c->recipes[i], results, nresults);
        if (r)
            rc = compare_recipe(v, b->file, c->recipes[i], r,
                              cJSON_GetObjectItemCaseSensitive(recipes, c->recipes[i]->name));
    }
    for (size_t i = 0; i < v->n && rc == AMP_OK; i++) {
        struct verdict *vd = &v->verdicts[i];
        if (!vd->baseline_moved)
            continue;
        vd->pass = 0;
        v->all_pass = 0;
        char extra[64];
        snprintf(extra, sizeof extra, "; %d metric%s moved against the baseline",
                 vd->baseline_moved, vd->baseline_moved == 1 ? "" : "s");
        strncat(vd->reason, extra, sizeof vd->reason - strlen(vd->reason) - 1);
    }
    return rc;
}

void verification_free(struct verification *v)
{
    for (size_t i = 0; i < v->n; i++) {
        struct recipe_stats *s = &v->verdicts[i].stats;
        free(s->acc_mean);
        free(s->acc_std);
        free(s->loss_mean);
        free(s->loss_std);
    }
    free(v->verdicts);
    for (size_t i = 0; i < v->nmoves; i++)
        free(v->moves[i]);
    free(v->moves);
    free(v->baseline);
    memset(v, 0, sizeof *v);
}
