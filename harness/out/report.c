/* report.md of a run folder and the derived CSVs its plots read: loads run.json (cJSON) and
 * epochs.csv, summarises every recipe (final accuracy and loss, throughput, peak memory, skipped
 * steps, numerics, verdict), writes plots/throughput.csv and plots/memory.csv, has plots.c draw
 * the images, and writes report.md through results_write_file (temporary file + rename). */
#include "report.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "files.h"
#include "recipe.h"
#include "schema.h"

#define MAX_INPUT_BYTES (256u << 20) /* run.json / epochs.csv larger than this are refused */
#define MAX_MODES 64

struct epoch_row {
    double v[EPOCHS_NCOLS]; /* epochs.csv's numbers, by enum epochs_column (not the mode) */
};

struct recipe_sum {
    char name[64];
    const cJSON *json;          /* run.json modes.<name>, or NULL */
    struct epoch_row *rows;     /* epochs.csv rows of this recipe, in file order */
    size_t nrows, cap;
    /* derived */
    const struct epoch_row *last; /* the last epoch (NULL when none completed) */
    double sps;                 /* samples/s over epochs 2..N (epoch 1 when it is the only one) */
    double peak;                /* peak bytes, max over epochs */
    double skipped;             /* skipped steps, all epochs */
    const char *verdict;        /* from run.json, or NULL */
};

struct run {
    const char *dir;
    cJSON *root;
    struct recipe_sum recipes[MAX_MODES];
    size_t nrecipes;
    const struct recipe_sum *fp32; /* with at least one epoch, or NULL */
    unsigned max_epoch;
    int have_steps;              /* steps.csv exists */
    int band_seeds;              /* fp32 seeds in seeds.csv behind plots/fp32_band.csv (0: none) */
};

/* --- reading ------------------------------------------------------------------------------- */

static int read_file(const struct run *r, const char *name, char **buf, size_t *len)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", r->dir, name);
    return file_read_all(buf, len, path, MAX_INPUT_BYTES);
}

/* Mode names go into CSVs and gnuplot word lists: letters, digits and . _ + - only. */
static int recipe_name_ok(const char *name)
{
    if (!*name || strlen(name) >= sizeof((struct recipe_sum *)0)->name)
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '+' || *p == '-'))
            return 0;
    return 1;
}

static struct recipe_sum *recipe_get(struct run *r, const char *name, int create)
{
    for (size_t i = 0; i < r->nrecipes; i++)
        if (strcmp(r->recipes[i].name, name) == 0)
            return &r->recipes[i];
    if (!create || r->nrecipes == MAX_MODES || !recipe_name_ok(name))
        return NULL;
    struct recipe_sum *m = &r->recipes[r->nrecipes++];
    memset(m, 0, sizeof *m);
    strcpy(m->name, name);
    return m;
}

static int load_run_json(struct run *r)
{
    char *text;
    size_t len;
    int rc = read_file(r, "run.json", &text, &len);
    if (rc != AMP_OK)
        return rc;
    const char *end = NULL;
    r->root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    const size_t at = end ? (size_t)(end - text) : 0;
    free(text);
    if (!r->root)
        return amp_fail(AMP_EINPUT, "%s/run.json: not valid JSON (error near byte %zu)", r->dir,
                        at);
    const cJSON *recipes = cJSON_GetObjectItemCaseSensitive(r->root, "modes");
    if (!cJSON_IsObject(r->root) || !cJSON_IsObject(recipes))
        return amp_fail(AMP_EINPUT, "%s/run.json: no \"modes\" object; not an ampbench run",
                        r->dir);
    const cJSON *m;
    cJSON_ArrayForEach(m, recipes) {
        struct recipe_sum *s = m->string ? recipe_get(r, m->string, 1) : NULL;
        if (!s)
            return amp_fail(AMP_EINPUT, "%s/run.json: mode \"%.40s\": bad name (letters, "
                            "digits, . _ + - only) or more than %d modes", r->dir,
                            m->string ? m->string : "", MAX_MODES);
        s->json = m;
    }
    return AMP_OK;
}

static int load_epochs_csv(struct run *r)
{
    char *text;
    size_t len;
    int rc = read_file(r, "epochs.csv", &text, &len);
    if (rc != AMP_OK)
        return rc;
    if (memchr(text, '\0', len)) {
        free(text);
        return amp_fail(AMP_EINPUT, "%s/epochs.csv: binary data, not a CSV file", r->dir);
    }
    enum { MAXF = 64 };
    char *fields[MAXF];
    int colidx[EPOCHS_NCOLS];
    size_t nhead = 0, lineno = 0;
    char *save = NULL;
    rc = AMP_OK;
    for (char *line = strtok_r(text, "\n", &save); line && rc == AMP_OK;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++; /* strtok_r skips empty lines; the count is of non-empty lines */
        line[strcspn(line, "\r")] = '\0';
        if (!*line)
            continue;
        const size_t n = csv_split(line, fields, MAXF);
        if (nhead == 0) {
            if (strcmp(fields[0], "mode") != 0) {
                rc = amp_fail(AMP_EINPUT, "%s/epochs.csv: the header does not start with "
                                          "\"mode\"; not an ampbench epochs.csv", r->dir);
                break;
            }
            csv_find_columns(colidx, epochs_columns, EPOCHS_NCOLS, fields, n);
            for (int c = EPOCHS_MODE + 1; c < EPOCHS_NCOLS && rc == AMP_OK; c++)
                if (colidx[c] < 0)
                    rc = amp_fail(AMP_EINPUT, "%s/epochs.csv: the header has no column \"%s\"",
                                  r->dir, epochs_columns[c].name);
            nhead = n;
            continue;
        }
        if (n != nhead) {
            rc = amp_fail(AMP_EINPUT, "%s/epochs.csv: line %zu has %zu fields, the header %zu",
                          r->dir, lineno, n, nhead);
            break;
        }
        struct recipe_sum *m = recipe_get(r, fields[0], 1);
        if (!m) {
            rc = amp_fail(AMP_EINPUT, "%s/epochs.csv: line %zu: mode \"%.40s\": bad name "
                          "(letters, digits, . _ + - only) or more than %d modes", r->dir, lineno,
                          fields[0], MAX_MODES);
            break;
        }
        struct epoch_row row = { { 0 } };
        for (int c = EPOCHS_MODE + 1; c < EPOCHS_NCOLS; c++) {
            const char *s = fields[colidx[c]];
            char *endp;
            errno = 0;
            row.v[c] = strtod(s, &endp);
            if (!*s || *endp) {
                rc = amp_fail(AMP_EINPUT, "%s/epochs.csv: line %zu: %s \"%.40s\" is not a number",
                              r->dir, lineno, epochs_columns[c].name, s);
                break;
            }
        }
        if (rc != AMP_OK)
            break;
        if (!(row.v[EPOCHS_EPOCH] >= 1 && row.v[EPOCHS_EPOCH] <= 1e6)) {
            rc = amp_fail(AMP_EINPUT, "%s/epochs.csv: line %zu: epoch %g out of range", r->dir,
                          lineno, row.v[EPOCHS_EPOCH]);
            break;
        }
        if (m->nrows == m->cap) {
            const size_t cap = m->cap ? 2 * m->cap : 8;
            struct epoch_row *nr = realloc(m->rows, cap * sizeof *nr);
            if (!nr) {
                rc = amp_fail(AMP_ENOMEM, "out of memory reading epochs.csv");
                break;
            }
            m->rows = nr;
            m->cap = cap;
        }
        m->rows[m->nrows++] = row;
    }
    free(text);
    if (rc == AMP_OK && nhead == 0)
        rc = amp_fail(AMP_EINPUT, "%s/epochs.csv: empty (no header)", r->dir);
    return rc;
}

static const char *verdict_of(const cJSON *recipe)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(recipe, "verdict");
    if (cJSON_IsString(v))
        return v->valuestring;
    if (!cJSON_IsObject(v))
        return NULL;
    static const char *const keys[] = { "verdict", "result", "status" };
    for (size_t i = 0; i < 3; i++) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(v, keys[i]);
        if (cJSON_IsString(s))
            return s->valuestring;
    }
    return NULL;
}

static void summarise(struct run *r)
{
    for (size_t i = 0; i < r->nrecipes; i++) {
        struct recipe_sum *m = &r->recipes[i];
        m->last = NULL;
        double secs = 0, samples = 0;
        for (size_t k = 0; k < m->nrows; k++) {
            const struct epoch_row *e = &m->rows[k];
            if (!m->last || e->v[EPOCHS_EPOCH] >= m->last->v[EPOCHS_EPOCH])
                m->last = e;
            if (e->v[EPOCHS_PEAK_BYTES] > m->peak)
                m->peak = e->v[EPOCHS_PEAK_BYTES];
            m->skipped += e->v[EPOCHS_SKIPPED_STEPS];
            if (e->v[EPOCHS_EPOCH] > r->max_epoch)
                r->max_epoch = (unsigned)e->v[EPOCHS_EPOCH];
        }
        /* Throughput: all training samples over all training time of epochs 2..N (epoch 1
         * warms caches and allocations up), or epoch 1 when it is the only one. */
        for (int pass = 0; pass < 2 && secs <= 0; pass++)
            for (size_t k = 0; k < m->nrows; k++) {
                const struct epoch_row *e = &m->rows[k];
                if (pass == 0 && e->v[EPOCHS_EPOCH] < 2)
                    continue;
                secs += e->v[EPOCHS_EPOCH_S];
                samples += e->v[EPOCHS_SAMPLES_PER_S] * e->v[EPOCHS_EPOCH_S];
            }
        m->sps = secs > 0 ? samples / secs : NAN;
        m->verdict = m->json ? verdict_of(m->json) : NULL;
        if (strcmp(m->name, recipe_reference()->name) == 0 && m->last)
            r->fp32 = m;
    }
}

/* --- small helpers ------------------------------------------------------------------------- */

static const cJSON *jget(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

static const char *jstr(const cJSON *o, const char *key, const char *dflt)
{
    const cJSON *v = jget(o, key);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : dflt;
}

static double jnum(const cJSON *o, const char *key)
{
    const cJSON *v = jget(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int jtrue(const cJSON *o, const char *key)
{
    return cJSON_IsTrue(jget(o, key));
}

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

static double speedup(const struct run *r, const struct recipe_sum *m)
{
    return r->fp32 && r->fp32->sps > 0 ? m->sps / r->fp32->sps : NAN;
}

static double saving(const struct run *r, const struct recipe_sum *m)
{
    return r->fp32 && r->fp32->peak > 0 ? 100.0 * (1.0 - m->peak / r->fp32->peak) : NAN;
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

/* --- derived CSVs -------------------------------------------------------------------------- */

/* Writes plots/throughput.csv and plots/memory.csv; *n_tp and *n_mem get their row counts. */
static int write_derived(const struct run *r, const char *plots_dir, int *n_tp, int *n_mem)
{
    *n_tp = *n_mem = 0;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return amp_fail(AMP_ENOMEM, "out of memory formatting plots/throughput.csv");
    fprintf(f, "mode,samples_per_s,speedup_vs_fp32,speedup_label\n");
    for (size_t i = 0; i < r->nrecipes; i++) {
        const struct recipe_sum *m = &r->recipes[i];
        if (!m->last || !(m->sps > 0))
            continue;
        const double s = speedup(r, m);
        ++*n_tp;
        fprintf(f, "%s,%.2f,%.4f,", m->name, m->sps, isnan(s) ? 0.0 : s);
        if (m == r->fp32)
            fprintf(f, "reference\n");
        else if (!isnan(s))
            fprintf(f, "%.2fx fp32\n", s);
        else
            fprintf(f, "no fp32 to compare\n");
    }
    fclose(f);
    int rc = file_write_in(plots_dir, "throughput.csv", buf, len);
    free(buf);
    if (rc != AMP_OK)
        return rc;

    buf = NULL;
    f = open_memstream(&buf, &len);
    if (!f)
        return amp_fail(AMP_ENOMEM, "out of memory formatting plots/memory.csv");
    /* Category names from the first recipe that has them; every recipe writes the same set. */
    const cJSON *cats = NULL;
    for (size_t i = 0; i < r->nrecipes && !cats; i++) {
        const cJSON *c = jget(jget(r->recipes[i].json, "memory"), "peak_bytes_by_category");
        if (cJSON_IsObject(c) && c->child)
            cats = c;
    }
    fprintf(f, "mode,peak_bytes,change_label");
    const cJSON *c;
    if (cats)
        cJSON_ArrayForEach(c, cats) fprintf(f, ",%s", c->string);
    fprintf(f, "\n");
    for (size_t i = 0; i < r->nrecipes; i++) {
        const struct recipe_sum *m = &r->recipes[i];
        const cJSON *mc = jget(jget(m->json, "memory"), "peak_bytes_by_category");
        if (!cats || !cJSON_IsObject(mc) || !(m->peak > 0))
            continue;
        const double sv = saving(r, m);
        ++*n_mem;
        fprintf(f, "%s,%.0f,", m->name, m->peak);
        if (m == r->fp32)
            fprintf(f, "reference");
        else if (!isnan(sv) && fabs(sv) < 0.05)
            fprintf(f, "= fp32");
        else if (!isnan(sv))
            fprintf(f, "%s%.1f%%", sv >= 0 ? "-" : "+", fabs(sv));
        cJSON_ArrayForEach(c, cats) {
            const double v = jnum(mc, c->string);
            fprintf(f, ",%.0f", isnan(v) ? 0.0 : v);
        }
        fprintf(f, "\n");
    }
    fclose(f);
    rc = file_write_in(plots_dir, "memory.csv", buf, len);
    free(buf);
    return rc;
}

/* plots/fp32_band.csv: per epoch, fp32's mean and sample standard deviation over the seeds of
 * seeds.csv (verify --seeds N), for the band of the loss and accuracy plots. Only a header when
 * the run has no seeds.csv or fewer than two fp32 seeds; a malformed seeds.csv draws no band.
 * r->band_seeds gets the number of seeds. */
static int write_band(struct run *r, const char *plots_dir)
{
    enum { NM = SEEDS_TEST_ACC - SEEDS_TRAIN_LOSS + 1, MAXE = 1000 }; /* the metrics, by epoch */
    struct acc { double n, sum[NM], sq[NM]; } *acc = calloc(MAXE + 1, sizeof *acc);
    double seeds[64];
    int nseeds = 0;
    if (!acc)
        return amp_fail(AMP_ENOMEM, "out of memory reading seeds.csv");
    char path[4200], *text = NULL;
    size_t len;
    struct stat st;
    snprintf(path, sizeof path, "%s/seeds.csv", r->dir);
    if (stat(path, &st) == 0 && read_file(r, "seeds.csv", &text, &len) == AMP_OK) {
        int col[SEEDS_NCOLS];
        char *save = NULL, *fields[32];
        int header = 1, ok = 1;
        for (char *line = strtok_r(text, "\n", &save); line && ok;
             line = strtok_r(NULL, "\n", &save)) {
            line[strcspn(line, "\r")] = '\0';
            const size_t n = csv_split(line, fields, 32);
            if (header) {
                csv_find_columns(col, seeds_columns, SEEDS_NCOLS, fields, n);
                for (int c = 0; c < SEEDS_NCOLS; c++)
                    ok &= col[c] >= 0;
                header = 0;
                continue;
            }
            if (n < SEEDS_NCOLS || strcmp(fields[col[SEEDS_MODE]], recipe_reference()->name) != 0)
                continue;
            double v[SEEDS_NCOLS];
            for (int c = SEEDS_MODE + 1; c < SEEDS_NCOLS && ok; c++) {
                char *end;
                v[c] = strtod(fields[col[c]], &end);
                ok = *fields[col[c]] && !*end;
            }
            const long e = ok ? (long)v[SEEDS_EPOCH] : 0;
            if (!ok || e < 1 || e > MAXE) {
                ok = 0;
                break;
            }
            int known = 0;
            for (int s = 0; s < nseeds; s++)
                known |= seeds[s] == v[SEEDS_SEED];
            if (!known && nseeds < 64)
                seeds[nseeds++] = v[SEEDS_SEED];
            acc[e].n += 1;
            for (int k = 0; k < NM; k++) {
                acc[e].sum[k] += v[SEEDS_TRAIN_LOSS + k];
                acc[e].sq[k] += v[SEEDS_TRAIN_LOSS + k] * v[SEEDS_TRAIN_LOSS + k];
            }
        }
        if (!ok)
            nseeds = 0;
    }
    free(text);
    r->band_seeds = nseeds >= 2 ? nseeds : 0;

    char *buf = NULL;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        free(acc);
        return amp_fail(AMP_ENOMEM, "out of memory formatting plots/fp32_band.csv");
    }
    fprintf(f, "epoch,seeds");
    for (int k = 0; k < NM; k++)
        fprintf(f, ",%s_mean,%s_std", seeds_columns[SEEDS_TRAIN_LOSS + k].name,
                seeds_columns[SEEDS_TRAIN_LOSS + k].name);
    fprintf(f, "\n");
    for (int e = 1; e <= MAXE && r->band_seeds; e++) {
        if (acc[e].n < 2)
            continue;
        fprintf(f, "%d,%.0f", e, acc[e].n);
        for (int k = 0; k < NM; k++) {
            const double mean = acc[e].sum[k] / acc[e].n;
            const double var = (acc[e].sq[k] - acc[e].n * mean * mean) / (acc[e].n - 1);
            fprintf(f, ",%.9g,%.9g", mean, var > 0 ? sqrt(var) : 0.0);
        }
        fprintf(f, "\n");
    }
    fclose(f);
    free(acc);
    const int rc = file_write_in(plots_dir, "fp32_band.csv", buf, len);
    free(buf);
    return rc;
}

/* --- report.md ----------------------------------------------------------------------------- */

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
            fprintf(f, ", %.2fx fp32's %.0f", speedup(r, fast), ref->sps);
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
            fprintf(f, ", %.1f%% below fp32's %.2f MiB", saving(r, small), mib(ref->peak));
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
        const double s = speedup(r, m), sv = saving(r, m);
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
            fprintf(f, "%.0f seeds per mode, judged with a one-sided Welch t-test (rule ", seeds);
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
        fprintf(f, "| layer | input | compute | output | weights |\n|---|---|---|---|---|\n");
        const cJSON *l;
        cJSON_ArrayForEach(l, trace) {
            static const char *const keys[] = { "layer", "input", "compute", "output",
                                                "weights" };
            for (size_t k = 0; k < 5; k++) {
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

static int write_report(const struct run *r, const struct plot_status st[REPORT_NPLOTS],
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
    write_verdicts(f, r, verdicts);
    write_plots(f, r, st, drawn);
    write_traces(f, r);
    write_environment(f, r);
    fclose(f);
    int rc = file_write_in(r->dir, "report.md", buf, len);
    free(buf);
    return rc;
}

/* --- the whole ----------------------------------------------------------------------------- */

/* "N of 6 plots skipped: <reason> (loss, accuracy); <reason> (loss_scale)", one line. */
static void summarise_plots(const struct plot_status st[REPORT_NPLOTS], int drawn, char *out,
                            size_t len)
{
    out[0] = '\0';
    if (drawn == REPORT_NPLOTS)
        return;
    size_t used = (size_t)snprintf(out, len, "%d of %d plots skipped:", REPORT_NPLOTS - drawn,
                                   REPORT_NPLOTS);
    int done[REPORT_NPLOTS] = { 0 };
    for (int i = 0; i < REPORT_NPLOTS && used < len; i++) {
        if (st[i].drawn || done[i])
            continue;
        used += (size_t)snprintf(out + used, len - used, "%s %s (%s", used > 30 ? ";" : "",
                                 st[i].why, report_plot_names[i]);
        for (int j = i + 1; j < REPORT_NPLOTS && used < len; j++)
            if (!st[j].drawn && !done[j] && strcmp(st[j].why, st[i].why) == 0) {
                used += (size_t)snprintf(out + used, len - used, ", %s", report_plot_names[j]);
                done[j] = 1;
            }
        if (used < len)
            used += (size_t)snprintf(out + used, len - used, ")");
    }
}

int report_build(const char *run_dir, struct report_outcome *out)
{
    out->plots_drawn = 0;
    out->plots_note[0] = '\0';
    struct stat sb;
    if (stat(run_dir, &sb) != 0)
        return amp_fail(AMP_EINPUT, "%s: no such run folder", run_dir);
    if (!S_ISDIR(sb.st_mode))
        return amp_fail(AMP_EINPUT, "%s: not a folder (expected a run folder holding run.json)",
                        run_dir);
    if (strlen(run_dir) > 3500 || strchr(run_dir, '\n'))
        return amp_fail(AMP_EINPUT, "%s: unusable run folder path", run_dir);

    struct run *r = calloc(1, sizeof *r);
    if (!r)
        return amp_fail(AMP_ENOMEM, "out of memory");
    r->dir = run_dir;
    int rc = load_run_json(r);
    if (rc == AMP_OK)
        rc = load_epochs_csv(r);
    if (rc == AMP_OK) {
        summarise(r);
        char steps[4200];
        snprintf(steps, sizeof steps, "%s/steps.csv", run_dir);
        r->have_steps = stat(steps, &sb) == 0 && sb.st_size > 0;
    }
    char plots_dir[4200];
    snprintf(plots_dir, sizeof plots_dir, "%s/plots", run_dir);
    if (rc == AMP_OK)
        rc = dir_ensure(plots_dir);
    int n_tp = 0, n_mem = 0;
    if (rc == AMP_OK)
        rc = write_derived(r, plots_dir, &n_tp, &n_mem);
    if (rc == AMP_OK)
        rc = write_band(r, plots_dir);

    struct plot_status st[REPORT_NPLOTS];
    memset(st, 0, sizeof st);
    if (rc == AMP_OK) {
        size_t rows = 0;
        for (size_t i = 0; i < r->nrecipes; i++)
            rows += r->recipes[i].nrows;
        for (int i = 0; i < REPORT_NPLOTS; i++)
            if (rows == 0)
                snprintf(st[i].why, sizeof st[i].why, "no epoch completed");
        if (!r->have_steps)
            snprintf(st[PLOT_LOSS_SCALE].why, sizeof st[PLOT_LOSS_SCALE].why,
                     "no steps.csv in the run folder");
        if (rows && !n_tp)
            snprintf(st[PLOT_THROUGHPUT].why, sizeof st[PLOT_THROUGHPUT].why,
                     "no mode has a training time in epochs.csv");
        if (rows && !n_mem)
            snprintf(st[PLOT_MEMORY].why, sizeof st[PLOT_MEMORY].why,
                     "run.json has no memory by category");
        out->plots_drawn = plots_draw(run_dir, st);
        summarise_plots(st, out->plots_drawn, out->plots_note, sizeof out->plots_note);
        rc = write_report(r, st, out->plots_drawn);
    }
    for (size_t i = 0; i < r->nrecipes; i++)
        free(r->recipes[i].rows);
    cJSON_Delete(r->root);
    free(r);
    return rc;
}

void report_after_run(const char *run_dir)
{
    struct report_outcome out;
    const int rc = report_build(run_dir, &out);
    if (rc != AMP_OK) {
        fprintf(stderr, "ampbench: warning: no report: %s (retry with ampbench report %s)\n",
                amp_last_error(), run_dir);
        return;
    }
    printf("report: %s/report.md\n", run_dir);
    if (out.plots_note[0])
        fprintf(stderr, "ampbench: warning: %s\n", out.plots_note);
}
