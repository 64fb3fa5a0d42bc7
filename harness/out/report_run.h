/* A run folder read back for its report (shared by report*.c only): run.json parsed, epochs.csv
 * parsed through the schema, and each recipe's summary (last epoch, throughput, peak memory,
 * skipped steps, verdict). */
#ifndef AMPBENCH_REPORT_RUN_H
#define AMPBENCH_REPORT_RUN_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "report.h"
#include "schema.h"

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
    int have_steps;              /* steps.csv exists and is well formed */
    char steps_problem[200];     /* why not ("" when it is) */
    int band_seeds;              /* fp32 seeds in seeds.csv behind plots/fp32_band.csv (0: none) */
    int have_fp8;                /* fp8.csv exists (a run with FP8 recipes) */
    struct plot_status fp8_plot; /* its plot, when have_fp8 */
};

/* Loads r->dir's run.json and epochs.csv (AMP_EINPUT naming the file and the problem) and
 * summarises every recipe. r is zeroed but for r->dir; run_free releases it, even on failure. */
int run_load(struct run *r);
void run_free(struct run *r);
/* Checks steps.csv's text: the fixed columns of schema.h first in the header, every row with the
 * header's field count, a valid mode name, positive integer epoch and step, numbers elsewhere.
 * AMP_EINPUT naming `name`, the line and the problem; *rows_out gets the rows. Fuzzed by
 * tests/fuzz_results.c. */
int steps_csv_check(const char *text, size_t len, const char *name, size_t *rows_out);
/* The file `name` of the run folder, whole (bounded). */
int run_read_file(char **buf, size_t *len, const struct run *r, const char *name);

/* run.json accessors: the member, a string (dflt when absent), a number (NaN), a true bool. */
const cJSON *jget(const cJSON *o, const char *key);
const char *jstr(const cJSON *o, const char *key, const char *dflt);
double jnum(const cJSON *o, const char *key);
int jtrue(const cJSON *o, const char *key);

/* m's samples/s over the reference's, and its peak-memory saving against it in percent (NaN
 * without a reference). */
double run_speedup(const struct run *r, const struct recipe_sum *m);
double run_saving(const struct run *r, const struct recipe_sum *m);

/* report_derived.c: plots/throughput.csv and plots/memory.csv (*n_tp and *n_mem get their row
 * counts), and plots/fp32_band.csv from seeds.csv (r->band_seeds gets its seed count). */
int report_write_derived(const struct run *r, const char *plots_dir, int *n_tp, int *n_mem);
int report_write_band(struct run *r, const char *plots_dir);

/* report_md.c: report.md of the run, atomically. */
int report_write_md(const struct run *r, const struct plot_status st[REPORT_NPLOTS], int drawn);

#endif
