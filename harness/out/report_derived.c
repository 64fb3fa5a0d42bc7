/* The CSVs a run's plots read besides epochs.csv and steps.csv, derived from them: throughput
 * and memory per mode against the reference, and the reference's mean +- std band over seeds. */
#include "report_run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "files.h"
#include "recipe.h"

/* Writes plots/throughput.csv and plots/memory.csv; *n_tp and *n_mem get their row counts. */
int report_write_derived(const struct run *r, const char *plots_dir, int *n_tp, int *n_mem)
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
        const double s = run_speedup(r, m);
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
        const double sv = run_saving(r, m);
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
int report_write_band(struct run *r, const char *plots_dir)
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
    if (stat(path, &st) == 0 && run_read_file(&text, &len, r, "seeds.csv") == AMP_OK) {
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
