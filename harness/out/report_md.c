/* report.md of a run read back (report_run.h): header, summary, results and numerics tables,
 * verdicts, plots with captions, precision traces, environment and configuration. */
#include "report_run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "files.h"

/* Text for a Markdown table cell or line: '|' escaped, newlines as spaces, '<' as &lt;. */
static void md(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else if (*s == '\n' || *s == '\r')
            fputc(' ', f);
        else if (*s == '<')
            fputs("&lt;", f);
        else
            fputc(*s, f);
    }
}

static double mib(double bytes)
{
    return bytes / (1024.0 * 1024.0);
}

/* Test accuracy in the tables: "83.55%" (the test script formats epochs.csv the same way). */
static void put_acc(FILE *f, double acc)
{
    fprintf(f, "%.2f%%", 100.0 * acc);
}

/* A fraction as "1.22%" or "1.9e-05%", for prose. */
static void put_frac(FILE *f, double frac)
{
    const double pct = 100.0 * frac;
    if (pct == 0 || pct >= 0.01)
        fprintf(f, "%.2f%%", pct);
    else
        fprintf(f, "%.1e%%", pct);
}

static const char *const plot_titles[REPORT_NPLOTS] = {
    "Loss", "Accuracy", "Loss scale", "Underflow", "Throughput", "Memory",
};
static const char *const plot_captions[REPORT_NPLOTS] = {
    "Training loss (mean over each epoch's batches) and test loss (after each epoch), one line "
    "per mode, fp32 dashed; the lower row shows each mode minus fp32 at the same epoch.",
    "Training and test accuracy per epoch, fp32 dashed; the lower row shows each mode minus "
    "fp32 in percentage points.",
    "The loss scale at every training step (log2 axis) for the modes that scale their loss; "
    "crosses mark skipped steps (inf/NaN gradients: the optimizer step was not taken).",
    "The fraction of the elements rounded to FP16/BF16 that became zero, per epoch, for "
    "gradients (left) and activations (right), log axis; modes with none are listed in the "
    "panel.",
    "Training samples per second per mode (epochs 2 to N; epoch 1 is warm-up), labelled with "
    "the speedup over fp32.",
    "Peak memory per mode, stacked by category (each category's own peak), labelled with the "
    "overall peak and the saving against fp32.",
};

/* What run.json's config.distributed says, in words ("" for a single process): "2 MPI ranks,
 * data-parallel (bf16 all-reduce, per-rank batch norm)" or "2 MPI ranks, the trainings spread
 * over them". */
static const char *distributed_text(const cJSON *cfg, char *buf, size_t len)
{
    const cJSON *d = jget(cfg, "distributed");
    const double world = jnum(d, "world_size");
    buf[0] = '\0';
    if (isnan(world) || world < 2)
        return buf;
    if (jtrue(d, "data_parallel"))
        snprintf(buf, len, "%.0f MPI ranks, data-parallel (%s all-reduce, %s batch norm)", world,
                 jstr(d, "allreduce_dtype", "?"), jtrue(d, "sync_bn") ? "synchronised" : "per-rank");
    else
        snprintf(buf, len, "%.0f MPI ranks, the (recipe, seed) trainings spread over them", world);
    return buf;
}

static void write_header(FILE *f, const struct run *r)
{
    const cJSON *cfg = jget(r->root, "config");
    const char *slash = strrchr(r->dir, '/');
    const char *name = slash && slash[1] ? slash + 1 : r->dir;
    fprintf(f, "# ampbench report: ");
    md(f, name);
    fprintf(f, "\n\n");
    const double ntrain = jnum(cfg, "train_samples"), ntest = jnum(cfg, "test_samples");
    fprintf(f, "%zu mode%s, %u epoch%s", r->nrecipes, r->nrecipes == 1 ? "" : "s", r->max_epoch,
            r->max_epoch == 1 ? "" : "s");
    if (!isnan(ntrain))
        fprintf(f, " on %.0f training images (%.0f test)", ntrain, isnan(ntest) ? 0 : ntest);
    if (!isnan(jnum(cfg, "batch")))
        fprintf(f, ", batch %.0f", jnum(cfg, "batch"));
    fprintf(f, ", policy ");
    md(f, jstr(cfg, "policy", "?"));
    fprintf(f, ", device ");
    md(f, jstr(cfg, "device", "?"));
    char dist[160];
    if (distributed_text(cfg, dist, sizeof dist)[0]) {
        fprintf(f, ", ");
        md(f, dist);
    }
    fprintf(f, ". Written ");
    md(f, jstr(r->root, "written_at", "?"));
    fprintf(f, " by ampbench ");
    md(f, jstr(r->root, "version", "?"));
    fprintf(f, " (git ");
    md(f, jstr(jget(r->root, "environment"), "git_revision", "?"));
    fprintf(f, ").\n\n");
    if (!jtrue(r->root, "complete"))
        fprintf(f, "> **Incomplete run**: run.json says the run did not finish (interrupted or "
                   "failed); the tables show the epochs that completed.\n\n");
}

static void write_summary(FILE *f, const struct run *r, int verdicts)
{
    fprintf(f, "## Summary\n\n");
    const struct recipe_sum *ref = r->fp32;
    /* Accuracy. */
    if (ref) {
        fprintf(f, "- **Accuracy.** fp32 reached ");
        put_acc(f, ref->last->v[EPOCHS_TEST_ACC]);
        fprintf(f, " test accuracy after %.0f epoch%s", ref->last->v[EPOCHS_EPOCH],
                ref->last->v[EPOCHS_EPOCH] == 1 ? "" : "s");
        const struct recipe_sum *lo = NULL, *hi = NULL, *far = NULL;
        double dlo = 0, dhi = 0, dfar = -1;
        for (size_t i = 0; i < r->nrecipes; i++) {
            const struct recipe_sum *m = &r->recipes[i];
            if (m == ref || !m->last)
                continue;
            const double d = 100.0 * (m->last->v[EPOCHS_TEST_ACC] - ref->last->v[EPOCHS_TEST_ACC]);
            if (!lo || d < dlo)
                lo = m, dlo = d;
            if (!hi || d > dhi)
                hi = m, dhi = d;
            if (fabs(d) > dfar)
                far = m, dfar = fabs(d);
        }
        if (far && lo == hi)
            fprintf(f, "; %s ended %+.2f percentage points from it.\n", far->name, dlo);
        else if (far)
            fprintf(f, "; the other modes ended between %+.2f and %+.2f percentage points of it "
                       "(largest gap: %s, %+.2f pp).\n",
                    dlo, dhi, far->name, far == lo ? dlo : dhi);
        else
            fprintf(f, ".\n");
    } else {
        const struct recipe_sum *best = NULL;
        for (size_t i = 0; i < r->nrecipes; i++)
            if (r->recipes[i].last &&
                (!best || r->recipes[i].last->v[EPOCHS_TEST_ACC] > best->last->v[EPOCHS_TEST_ACC]))
                best = &r->recipes[i];
        fprintf(f, "- **Accuracy.** No fp32 reference in this run, so there are no deltas, "
                   "speedups or savings.");
        if (best) {
            fprintf(f, " Best final test accuracy: %s, ", best->name);
            put_acc(f, best->last->v[EPOCHS_TEST_ACC]);
            fprintf(f, ".");
        }
        fprintf(f, "\n");
    }
    /* Speed and memory. */
    const struct recipe_sum *fast = NULL, *small = NULL;
    for (size_t i = 0; i < r->nrecipes; i++) {
        const struct recipe_sum *m = &r->recipes[i];
        if (m->last && m->sps > 0 && (!fast || m->sps > fast->sps))
            fast = m;
        if (m->last && m->peak > 0 && (!small || m->peak < small->peak))
            small = m;
    }
    if (fast) {
        fprintf(f, "- **Speed.** Fastest: %s, %.0f training samples/s", fast->name, fast->sps);
        if (ref && fast != ref)
            fprintf(f, ", %.2fx fp32's %.0f", run_speedup(r, fast), ref->sps);
        fprintf(f, ".");
        if (strcmp(jstr(jget(r->root, "config"), "device", ""), "cpu") == 0)
            fprintf(f, " On the CPU reference backend FP16/BF16 are emulated (values rounded in "
                       "software, arithmetic in FP32), so these speeds measure the emulation, "
                       "not tensor cores.");
        fprintf(f, "\n");
    }
    if (small) {
        fprintf(f, "- **Memory.** Smallest peak: %s, %.2f MiB", small->name, mib(small->peak));
        if (ref && small != ref)
            fprintf(f, ", %.1f%% below fp32's %.2f MiB", run_saving(r, small), mib(ref->peak));
        fprintf(f, ".\n");
    }
    /* Numerics: underflow, skipped steps, divergence. */
    const struct recipe_sum *uf = NULL;
    for (size_t i = 0; i < r->nrecipes; i++) {
        const struct recipe_sum *m = &r->recipes[i];
        if (m->last && m->last->v[EPOCHS_GRAD_UNDERFLOW] > 0 &&
            (!uf || m->last->v[EPOCHS_GRAD_UNDERFLOW] > uf->last->v[EPOCHS_GRAD_UNDERFLOW]))
            uf = m;
    }
    fprintf(f, "- **Numerics.** ");
    if (uf) {
        fprintf(f, "Gradient underflow was largest in %s: ", uf->name);
        put_frac(f, uf->last->v[EPOCHS_GRAD_UNDERFLOW]);
        fprintf(f, " of the gradient elements rounded to low precision became zero in its last "
                   "epoch. ");
    } else {
        fprintf(f, "No gradient underflowed. ");
    }
    int any_skip = 0;
    for (size_t i = 0; i < r->nrecipes; i++)
        if (r->recipes[i].skipped > 0) {
            fprintf(f, "%s%s %.0f", any_skip ? ", " : "Skipped steps (inf/NaN gradients): ",
                    r->recipes[i].name, r->recipes[i].skipped);
            any_skip = 1;
        }
    fprintf(f, "%s", any_skip ? "." : "No step was skipped.");
    for (size_t i = 0; i < r->nrecipes; i++) {
        const cJSON *j = r->recipes[i].json;
        if (jtrue(j, "diverged"))
            fprintf(f, " **%s diverged** (loss NaN/inf at epoch %.0f, step %.0f; training "
                       "stopped).",
                    r->recipes[i].name, jnum(j, "diverged_epoch"), jnum(j, "diverged_step"));
        if (jtrue(j, "scale_fell_below_one"))
            fprintf(f, " %s's loss scale fell below 1 (gradients overflow even unscaled).",
                    r->recipes[i].name);
        if (!r->recipes[i].last)
            fprintf(f, " %s completed no epoch.", r->recipes[i].name);
    }
    fprintf(f, "\n- **Verdicts.** %s\n\n",
            verdicts ? "See [Verdicts](#verdicts)." : "Not verified (see [Verdicts](#verdicts)).");
}

static void write_results_table(FILE *f, const struct run *r)
{
    fprintf(f, "## Results\n\n"
               "| mode | final test acc | delta vs FP32 | final test loss | samples/s | speedup | "
               "peak memory | memory saving | skipped steps | verdict |\n"
               "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for (size_t i = 0; i < r->nrecipes; i++) {
        const struct recipe_sum *m = &r->recipes[i];
        fprintf(f, "| %s | ", m->name);
        if (!m->last) {
            fprintf(f, "- | - | - | - | - | - | - | - | %s |\n", m->verdict ? m->verdict : "-");
            continue;
        }
        put_acc(f, m->last->v[EPOCHS_TEST_ACC]);
        if (m == r->fp32)
            fprintf(f, " | reference");
        else if (r->fp32)
            fprintf(f, " | %+.2f pp",
                    100.0 * (m->last->v[EPOCHS_TEST_ACC] - r->fp32->last->v[EPOCHS_TEST_ACC]));
        else
            fprintf(f, " | -");
        fprintf(f, " | %.4f | ", m->last->v[EPOCHS_TEST_LOSS]);
        if (m->sps > 0)
            fprintf(f, "%.0f", m->sps);
        else
            fprintf(f, "-");
        const double s = run_speedup(r, m), sv = run_saving(r, m);
        if (!isnan(s))
            fprintf(f, " | %.2fx", s);
        else
            fprintf(f, " | -");
        fprintf(f, " | %.2f MiB", mib(m->peak));
        if (m == r->fp32)
            fprintf(f, " | reference");
        else if (!isnan(sv))
            fprintf(f, " | %.1f%%", sv);
        else
            fprintf(f, " | -");
        fprintf(f, " | %.0f | ", m->skipped);
        md(f, m->verdict ? m->verdict : "-");
        fprintf(f, " |\n");
    }
    fprintf(f, "\nFinal = the last completed epoch (%u). Delta: test accuracy minus fp32's, in "
               "percentage points. samples/s: training samples per second over epochs 2 to N "
               "(epoch 1 is warm-up; a 1-epoch run uses it). Speedup: samples/s over fp32's. "
               "Peak memory: the backend's peak allocation (MiB = 2^20 bytes); saving: how much "
               "less than fp32. Skipped steps: optimizer steps skipped for inf/NaN gradients. "
               "Every number comes from epochs.csv (plots/ holds the derived CSVs).\n\n",
            r->max_epoch);
}

static void write_numerics_table(FILE *f, const struct run *r)
{
    fprintf(f, "### Numerics (last epoch)\n\n"
               "| mode | loss scaling | loss scale | grad underflow | act underflow | "
               "grad overflow | swallowed updates |\n"
               "|---|---|---:|---:|---:|---:|---:|\n");
    for (size_t i = 0; i < r->nrecipes; i++) {
        const struct recipe_sum *m = &r->recipes[i];
        fprintf(f, "| %s | ", m->name);
        md(f, jstr(m->json, "loss_scaling", "?"));
        if (!m->last) {
            fprintf(f, " | - | - | - | - | - |\n");
            continue;
        }
        const struct epoch_row *e = m->last;
        fprintf(f, " | %g | %.2e | %.2e | %.2e | %.0f |\n", e->v[EPOCHS_LOSS_SCALE], e->v[EPOCHS_GRAD_UNDERFLOW],
                e->v[EPOCHS_ACT_UNDERFLOW], e->v[EPOCHS_GRAD_OVERFLOW], e->v[EPOCHS_SWALLOWED]);
    }
    fprintf(f, "\nUnderflow/overflow: fraction of the elements rounded to FP16/BF16 that became "
               "zero/inf (gradients: activation and weight gradients together). Swallowed "
               "updates: low-precision weights whose update rounded away (fp16-pure). "
               "docs/NUMERICS.md explains each.\n\n");
}

/* A dB figure from run.json: null means exact (no noise). */
static void put_db(FILE *f, const cJSON *o, const char *key)
{
    const double v = jnum(o, key);
    if (cJSON_IsNull(jget(o, key)))
        fprintf(f, " | exact");
    else if (isnan(v))
        fprintf(f, " | -");
    else
        fprintf(f, " | %.1f", v);
}

/* FP8 recipes: each quantized tensor in the last epoch, and where a tensor first saturated. */
static void write_fp8_table(FILE *f, const struct run *r)
{
    int any = 0;
    for (size_t i = 0; i < r->nrecipes; i++) {
        const struct recipe_sum *m = &r->recipes[i];
        const cJSON *fp8 = jget(m->json, "fp8"), *epochs = jget(m->json, "epochs");
        const cJSON *last = cJSON_IsArray(epochs) ? cJSON_GetArrayItem(epochs, cJSON_GetArraySize(epochs) - 1) : NULL;
        const cJSON *tensors = jget(last, "fp8");
        if (!cJSON_IsObject(fp8) || !cJSON_IsArray(tensors))
            continue;
        if (!any)
            fprintf(f, "### FP8 scaling (last epoch)\n\n"
                       "Every tensor an FP8 recipe quantizes (a conv or linear layer's input, weight "
                       "and output gradient): the scale of its last step, its largest amax, the "
                       "fractions of its elements that saturated at the format's maximum or "
                       "underflowed to zero, and its SQNR against the FP32 values (worst step, "
                       "mean over steps). fp8.csv has every step; docs/NUMERICS.md explains "
                       "the scaling.\n\n");
        any = 1;
        fprintf(f, "**%s** (", m->name);
        md(f, jstr(fp8, "scaling", "?"));
        fprintf(f, " scaling). ");
        const cJSON *first = jget(fp8, "first_saturation");
        if (cJSON_IsObject(first)) {
            fprintf(f, "First saturation: epoch %.0f, step %.0f, tensor ", jnum(first, "epoch"),
                    jnum(first, "step"));
            md(f, jstr(first, "tensor", "?"));
            fprintf(f, ".\n\n");
        } else {
            fprintf(f, "No tensor saturated.\n\n");
        }
        fprintf(f, "| tensor | scale | amax | saturated | underflow | SQNR min (dB) | "
                   "SQNR mean (dB) |\n|---|---:|---:|---:|---:|---:|---:|\n");
        const cJSON *t;
        cJSON_ArrayForEach(t, tensors) {
            fprintf(f, "| ");
            md(f, jstr(t, "tensor", "?"));
            fprintf(f, " | %.4g | %.4g | %.2e | %.2e", jnum(t, "scale_last"), jnum(t, "amax_max"),
                    jnum(t, "saturated_frac"), jnum(t, "underflow_frac"));
            put_db(f, t, "sqnr_min_db");
            put_db(f, t, "sqnr_mean_db");
            fprintf(f, " |\n");
        }
        fprintf(f, "\n");
    }
}

static void write_reasons(FILE *f, const cJSON *v)
{
    const cJSON *reasons = jget(v, "reasons");
    if (!reasons)
        reasons = jget(v, "reason");
    if (cJSON_IsString(reasons)) {
        fprintf(f, " — ");
        md(f, reasons->valuestring);
    } else if (cJSON_IsArray(reasons)) {
        const cJSON *x;
        int first = 1;
        cJSON_ArrayForEach(x, reasons) if (cJSON_IsString(x))
        {
            fprintf(f, "%s", first ? " — " : "; ");
            md(f, x->valuestring);
            first = 0;
        }
    }
}

static void write_verdicts(FILE *f, const struct run *r, int verdicts)
{
    fprintf(f, "## Verdicts\n\n");
    if (!verdicts) {
        fprintf(f, "Not verified: run.json holds no verdicts, so the verdict column reads \"-\". "
                   "`ampbench verify` (with the options of `run`) trains the modes and judges "
                   "each against fp32 with the tolerances of docs/VERIFICATION.md; its run folder's "
                   "run.json carries the verdicts and their reasons, which `ampbench report` "
                   "shows here.\n\n");
        return;
    }
    const cJSON *ver = jget(r->root, "verification");
    if (cJSON_IsObject(ver)) {
        const double seeds = jnum(ver, "seeds");
        fprintf(f, "Tolerances: final test accuracy at most %.2f pp below fp32, every epoch's test "
                   "loss at most %.1f%% above it; ",
                jnum(ver, "tol_acc_pp"), 100.0 * jnum(ver, "tol_loss_rel"));
        if (seeds >= 3)
            fprintf(f, "%.0f seeds per mode, judged with a one-sided t-test on the final "
                       "accuracy, paired by seed (rule ", seeds);
        else
            fprintf(f, "%s (rule ", seeds == 2 ? "2 seeds per mode" : "one seed per mode");
        md(f, jstr(ver, "rule", "?"));
        fprintf(f, ").\n\n");
    }
    for (size_t i = 0; i < r->nrecipes; i++) {
        const struct recipe_sum *m = &r->recipes[i];
        fprintf(f, "- **%s**: ", m->name);
        if (!m->verdict) {
            fprintf(f, "not verified\n");
            continue;
        }
        md(f, m->verdict);
        const cJSON *v = jget(m->json, "verdict");
        if (cJSON_IsObject(v))
            write_reasons(f, v);
        else
            write_reasons(f, m->json);
        fprintf(f, "\n");
    }
    fprintf(f, "\n");
}

static void write_plots(FILE *f, const struct run *r,
                        const struct plot_status st[REPORT_NPLOTS], int drawn)
{
    fprintf(f, "## Plots\n\n");
    if (drawn < REPORT_NPLOTS) {
        int no_gnuplot = 0;
        fprintf(f, "Plots skipped:\n\n");
        for (int i = 0; i < REPORT_NPLOTS; i++)
            if (!st[i].drawn) {
                fprintf(f, "- %s: ", report_plot_names[i]);
                md(f, st[i].why);
                fprintf(f, "\n");
                no_gnuplot |= strstr(st[i].why, "gnuplot not found") != NULL;
            }
        fprintf(f, "\nTo draw them: %s`ampbench report ",
                no_gnuplot ? "install gnuplot (`apt-get install gnuplot-nox`, or "
                             "`scripts/install-deps.sh`), then run "
                           : "fix the above, then run ");
        md(f, r->dir);
        fprintf(f, "`.\n\n");
    }
    for (int i = 0; i < REPORT_NPLOTS; i++) {
        if (!st[i].drawn)
            continue;
        fprintf(f, "### %s\n\n![%s](plots/%s.png)\n\n%s", plot_titles[i], plot_titles[i],
                report_plot_names[i], plot_captions[i]);
        if ((i == PLOT_LOSS || i == PLOT_ACCURACY) && r->band_seeds)
            fprintf(f, " The grey band is fp32's mean +- standard deviation over its %d seeds "
                       "(seeds.csv); the lines are the first seed.", r->band_seeds);
        fprintf(f, " ([SVG](plots/%s.svg))\n\n", report_plot_names[i]);
    }
    if (!r->have_fp8)
        return;
    if (r->fp8_plot.drawn) {
        fprintf(f, "### FP8 scales and SQNR\n\n![FP8 scales and SQNR](plots/fp8.png)\n\n"
                   "Every quantized tensor of the FP8 modes at every training step (fp8.csv): "
                   "its scale (log2 axis; MX modes scale per block and are not drawn there) and "
                   "its SQNR against the FP32 values; blue inputs, green weights, red output "
                   "gradients, one line type per mode. ([SVG](plots/fp8.svg))\n\n");
    } else {
        fprintf(f, "FP8 plot skipped: ");
        md(f, r->fp8_plot.why);
        fprintf(f, "\n\n");
    }
}

static void write_traces(FILE *f, const struct run *r)
{
    fprintf(f, "## Precision trace\n\nWhat each layer reads, computes in and writes, and which "
               "weights it uses.\n\n");
    for (size_t i = 0; i < r->nrecipes; i++) {
        const struct recipe_sum *m = &r->recipes[i];
        fprintf(f, "**%s**: ", m->name);
        md(f, jstr(m->json, "summary", "(not in run.json)"));
        fprintf(f, "\n\n");
        const cJSON *trace = jget(m->json, "precision_trace");
        if (!cJSON_IsArray(trace))
            continue;
        fprintf(f, "| name | layer | input | compute | output | weights |\n"
                   "|---|---|---|---|---|---|\n");
        const cJSON *l;
        cJSON_ArrayForEach(l, trace) {
            static const char *const keys[] = { "name", "layer", "input", "compute", "output",
                                                "weights" };
            for (size_t k = 0; k < 6; k++) {
                fprintf(f, "| ");
                md(f, jstr(l, keys[k], "?"));
                fprintf(f, " ");
            }
            fprintf(f, "|\n");
        }
        fprintf(f, "\n");
    }
}

static void kv_str(FILE *f, const char *key, const char *value)
{
    fprintf(f, "| ");
    md(f, key);
    fprintf(f, " | ");
    md(f, value && *value ? value : "-");
    fprintf(f, " |\n");
}

static void kv_num(FILE *f, const char *key, double v)
{
    char buf[64] = "";
    if (!isnan(v))
        snprintf(buf, sizeof buf, "%g", v);
    kv_str(f, key, buf);
}

static void write_environment(FILE *f, const struct run *r)
{
    const cJSON *env = jget(r->root, "environment"), *cfg = jget(r->root, "config");
    const cJSON *libs = jget(env, "libraries"), *ls = jget(cfg, "loss_scaling");
    char buf[256];
    fprintf(f, "## Environment and configuration\n\n| environment | |\n|---|---|\n");
    kv_str(f, "CPU", jstr(env, "cpu_model", NULL));
    kv_num(f, "cores", jnum(env, "cores"));
    kv_str(f, "CPU features", jstr(env, "cpu_features", NULL));
    kv_str(f, "OS", jstr(env, "os", NULL));
    kv_str(f, "host", jstr(env, "hostname", NULL));
    kv_str(f, "compiler", jstr(env, "compiler", NULL));
    kv_str(f, "build type", jstr(env, "build_type", NULL));
    kv_str(f, "git revision", jstr(env, "git_revision", NULL));
    snprintf(buf, sizeof buf, "zlib %s, cJSON %s, OpenMP %s", jstr(libs, "zlib", "?"),
             jstr(libs, "cjson", "?"), jstr(libs, "openmp", "?"));
    kv_str(f, "libraries", buf);
    kv_str(f, "CUDA compiled", jtrue(env, "cuda_compiled") ? "yes" : "no");
    /* Whatever else the environment records (a GPU, a driver...), as it is. */
    static const char *const shown[] = { "cpu_model", "cores",      "cpu_features",
                                         "os",        "hostname",   "compiler",
                                         "build_type", "git_revision", "libraries",
                                         "cuda_compiled" };
    const cJSON *e;
    cJSON_ArrayForEach(e, env) {
        int known = !e->string;
        for (size_t i = 0; i < sizeof shown / sizeof shown[0] && !known; i++)
            known = strcmp(e->string, shown[i]) == 0;
        if (known)
            continue;
        if (cJSON_IsString(e))
            kv_str(f, e->string, e->valuestring);
        else if (cJSON_IsNumber(e))
            kv_num(f, e->string, e->valuedouble);
        else if (cJSON_IsBool(e))
            kv_str(f, e->string, cJSON_IsTrue(e) ? "yes" : "no");
    }

    fprintf(f, "\n| configuration | |\n|---|---|\n");
    const cJSON *recipes = jget(cfg, "modes"), *x;
    buf[0] = '\0';
    size_t used = 0;
    cJSON_ArrayForEach(x, recipes) if (cJSON_IsString(x) && used < sizeof buf)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s", used ? ", " : "",
                                 x->valuestring);
    kv_str(f, "modes", buf);
    kv_str(f, "policy", jstr(cfg, "policy", NULL));
    kv_str(f, "device", jstr(cfg, "device", NULL));
    if (distributed_text(cfg, buf, sizeof buf)[0])
        kv_str(f, "distributed", buf);
    const double threads = jnum(cfg, "threads");
    if (threads == 0) {
        const double used_threads = r->nrecipes ? jnum(r->recipes[0].json, "threads") : NAN;
        if (!isnan(used_threads))
            snprintf(buf, sizeof buf, "all cores (%g)", used_threads);
        else
            snprintf(buf, sizeof buf, "all cores");
        kv_str(f, "threads", buf);
    } else {
        kv_num(f, "threads", threads);
    }
    kv_num(f, "epochs", jnum(cfg, "epochs"));
    kv_num(f, "batch", jnum(cfg, "batch"));
    kv_num(f, "learning rate", jnum(cfg, "lr"));
    kv_num(f, "momentum", jnum(cfg, "momentum"));
    kv_num(f, "conv channels", jnum(cfg, "channels"));
    kv_num(f, "seed", jnum(cfg, "seed"));
    snprintf(buf, sizeof buf, "%.0f train, %.0f test", jnum(cfg, "train_samples"),
             jnum(cfg, "test_samples"));
    kv_str(f, "samples", buf);
    kv_str(f, "data", jstr(cfg, "data", NULL));
    snprintf(buf, sizeof buf,
             "dynamic: init %g, x%g every %g clean steps, x%g on inf/NaN%s; static: %g",
             jnum(ls, "init_scale"), jnum(ls, "growth_factor"), jnum(ls, "growth_interval"),
             jnum(ls, "backoff_factor"),
             jnum(ls, "min_scale") > 0 || jnum(ls, "max_scale") > 0 ? " (bounded)" : "",
             jnum(ls, "static_scale"));
    kv_str(f, "loss scaling", buf);
    fprintf(f, "\nCommand:\n\n```\n%s\n```\n\n", jstr(r->root, "command", "?"));
    fprintf(f, "Files: run.json (everything above, per epoch), epochs.csv, %splots/ (images and "
               "the CSVs they read).\n",
            r->have_steps ? "steps.csv (every step), " : "");
}

int report_write_md(const struct run *r, const struct plot_status st[REPORT_NPLOTS],
                        int drawn)
{
    int verdicts = 0;
    for (size_t i = 0; i < r->nrecipes; i++)
        verdicts |= r->recipes[i].verdict != NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return amp_fail(AMP_ENOMEM, "out of memory formatting report.md");
    write_header(f, r);
    write_summary(f, r, verdicts);
    write_results_table(f, r);
    write_numerics_table(f, r);
    write_fp8_table(f, r);
    write_verdicts(f, r, verdicts);
    write_plots(f, r, st, drawn);
    write_traces(f, r);
    write_environment(f, r);
    fclose(f);
    int rc = file_write_in(r->dir, "report.md", buf, len);
    free(buf);
    return rc;
}
