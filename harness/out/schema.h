/* The columns of the CSV files of a run folder (epochs.csv, steps.csv, seeds.csv): names, types
 * and number formats in one table each, read by the writer (results.c) and the report's reader
 * (report_load.c), with the helpers that write a row and find the columns of a header. */
#ifndef AMPBENCH_SCHEMA_H
#define AMPBENCH_SCHEMA_H

#include <stddef.h>
#include <stdio.h>

enum csv_type { CSV_TEXT, CSV_UINT, CSV_REAL };
struct csv_column {
    const char *name;
    enum csv_type type;
    const char *fmt; /* printf format of a CSV_REAL */
};
union csv_cell {
    const char *text;
    unsigned long long uint;
    double real;
};

/* epochs.csv: one row per epoch of every recipe's primary run. */
enum epochs_column {
    EPOCHS_MODE, EPOCHS_EPOCH, EPOCHS_TRAIN_LOSS, EPOCHS_TRAIN_ACC, EPOCHS_TEST_LOSS,
    EPOCHS_TEST_ACC, EPOCHS_EPOCH_S, EPOCHS_SAMPLES_PER_S, EPOCHS_SKIPPED_STEPS,
    EPOCHS_LOSS_SCALE, EPOCHS_GRAD_UNDERFLOW, EPOCHS_ACT_UNDERFLOW, EPOCHS_GRAD_OVERFLOW,
    EPOCHS_SWALLOWED, EPOCHS_ACT_BYTES, EPOCHS_PEAK_BYTES, EPOCHS_NCOLS
};
extern const struct csv_column epochs_columns[EPOCHS_NCOLS];

/* steps.csv: one row per training step; these columns, then two per tensor class k,
 * <tensor_class_name(k)><steps_class_columns[i].name> (results.c writes the header). */
enum steps_column { STEPS_MODE, STEPS_EPOCH, STEPS_STEP, STEPS_LOSS, STEPS_LOSS_SCALE,
                    STEPS_SKIPPED, STEPS_NFIXED };
extern const struct csv_column steps_columns[STEPS_NFIXED];
enum { STEPS_CLASS_UNDERFLOW, STEPS_CLASS_OVERFLOW, STEPS_NCLASS_COLS };
extern const struct csv_column steps_class_columns[STEPS_NCLASS_COLS];
/* steps.csv's last columns when a recipe of the run quantizes to FP8: per step, over its
 * quantized tensors (fp8.csv has each), the worst SQNR and the largest saturated and underflowed
 * fractions; nan for the run's other recipes. */
enum { STEPS_FP8_SQNR_MIN, STEPS_FP8_SATURATED_MAX, STEPS_FP8_UNDERFLOW_MAX, STEPS_NFP8_COLS };
extern const struct csv_column steps_fp8_columns[STEPS_NFP8_COLS];

/* fp8.csv: FP8 recipes only, one row per quantized tensor per training step, grouped by mode,
 * then tensor (in layer order: input, weight, grad), then step. */
enum fp8_column { FP8_MODE, FP8_EPOCH, FP8_STEP, FP8_TENSOR, FP8_FORMAT, FP8_SCALE, FP8_AMAX,
                  FP8_SATURATED, FP8_UNDERFLOW, FP8_SQNR, FP8_NCOLS };
extern const struct csv_column fp8_columns[FP8_NCOLS];

/* seeds.csv: every seed's per-epoch metrics (verify --seeds N). */
enum seeds_column { SEEDS_MODE, SEEDS_SEED, SEEDS_EPOCH, SEEDS_TRAIN_LOSS, SEEDS_TRAIN_ACC,
                    SEEDS_TEST_LOSS, SEEDS_TEST_ACC, SEEDS_NCOLS };
extern const struct csv_column seeds_columns[SEEDS_NCOLS];

/* The names of cols, comma-separated (no newline). */
void csv_put_names(FILE *f, const struct csv_column *cols, size_t n);
/* cells[i] formatted as cols[i] says, comma-separated (no newline). */
void csv_put_cells(FILE *f, const struct csv_column *cols, size_t n, const union csv_cell *cells);

/* Splits line at commas in place; returns the number of fields (at most max). */
size_t csv_split(char *line, char **fields, size_t max);
/* idx_out[i]: the field of the header line `fields` named cols[i].name, -1 when none. */
void csv_find_columns(int *idx_out, const struct csv_column *cols, size_t n,
                      char *const *fields, size_t nfields);

#endif
