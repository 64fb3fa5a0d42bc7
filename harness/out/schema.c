/* The columns of epochs.csv, steps.csv and seeds.csv, and writing/reading a row of them. */
#include "schema.h"

#include <string.h>

#include "train.h"

const struct csv_column epochs_columns[EPOCHS_NCOLS] = {
    [EPOCHS_MODE] = { "mode", CSV_TEXT, NULL },
    [EPOCHS_EPOCH] = { "epoch", CSV_UINT, NULL },
    [EPOCHS_TRAIN_LOSS] = { "train_loss", CSV_REAL, "%.9g" },
    [EPOCHS_TRAIN_ACC] = { "train_acc", CSV_REAL, "%.9g" },
    [EPOCHS_TEST_LOSS] = { "test_loss", CSV_REAL, "%.9g" },
    [EPOCHS_TEST_ACC] = { "test_acc", CSV_REAL, "%.9g" },
    [EPOCHS_EPOCH_S] = { "epoch_s", CSV_REAL, "%.6f" },
    [EPOCHS_SAMPLES_PER_S] = { "samples_per_s", CSV_REAL, "%.2f" },
    [EPOCHS_SKIPPED_STEPS] = { "skipped_steps", CSV_UINT, NULL },
    [EPOCHS_LOSS_SCALE] = { "loss_scale", CSV_REAL, "%.9g" },
    [EPOCHS_GRAD_UNDERFLOW] = { "grad_underflow_frac", CSV_REAL, "%.6g" },
    [EPOCHS_ACT_UNDERFLOW] = { "act_underflow_frac", CSV_REAL, "%.6g" },
    [EPOCHS_GRAD_OVERFLOW] = { "grad_overflow_frac", CSV_REAL, "%.6g" },
    [EPOCHS_SWALLOWED] = { "swallowed_updates", CSV_UINT, NULL },
    [EPOCHS_ACT_BYTES] = { "act_bytes", CSV_UINT, NULL },
    [EPOCHS_PEAK_BYTES] = { "peak_bytes", CSV_UINT, NULL },
};

const struct csv_column steps_columns[STEPS_NFIXED] = {
    [STEPS_MODE] = { "mode", CSV_TEXT, NULL },
    [STEPS_EPOCH] = { "epoch", CSV_UINT, NULL },
    [STEPS_STEP] = { "step", CSV_UINT, NULL },
    [STEPS_LOSS] = { "loss", CSV_REAL, "%.7g" },
    [STEPS_LOSS_SCALE] = { "loss_scale", CSV_REAL, "%.9g" },
    [STEPS_SKIPPED] = { "skipped", CSV_UINT, NULL },
};

const struct csv_column steps_class_columns[STEPS_NCLASS_COLS] = {
    [STEPS_CLASS_UNDERFLOW] = { "_underflow_frac", CSV_REAL, "%.6g" },
    [STEPS_CLASS_OVERFLOW] = { "_overflow_frac", CSV_REAL, "%.6g" },
};

const struct csv_column steps_fp8_columns[STEPS_NFP8_COLS] = {
    [STEPS_FP8_SQNR_MIN] = { "fp8_sqnr_min_db", CSV_REAL, "%.4f" },
    [STEPS_FP8_SATURATED_MAX] = { "fp8_saturated_frac_max", CSV_REAL, "%.6g" },
    [STEPS_FP8_UNDERFLOW_MAX] = { "fp8_underflow_frac_max", CSV_REAL, "%.6g" },
};

const struct csv_column fp8_columns[FP8_NCOLS] = {
    [FP8_MODE] = { "mode", CSV_TEXT, NULL },
    [FP8_EPOCH] = { "epoch", CSV_UINT, NULL },
    [FP8_STEP] = { "step", CSV_UINT, NULL },
    [FP8_TENSOR] = { "tensor", CSV_TEXT, NULL },
    [FP8_FORMAT] = { "format", CSV_TEXT, NULL },
    [FP8_SCALE] = { "scale", CSV_REAL, "%.9g" },
    [FP8_AMAX] = { "amax", CSV_REAL, "%.9g" },
    [FP8_SATURATED] = { "saturated_frac", CSV_REAL, "%.6g" },
    [FP8_UNDERFLOW] = { "underflow_frac", CSV_REAL, "%.6g" },
    [FP8_SQNR] = { "sqnr_db", CSV_REAL, "%.4f" },
};

const struct csv_column seeds_columns[SEEDS_NCOLS] = {
    [SEEDS_MODE] = { "mode", CSV_TEXT, NULL },
    [SEEDS_SEED] = { "seed", CSV_UINT, NULL },
    [SEEDS_EPOCH] = { "epoch", CSV_UINT, NULL },
    [SEEDS_TRAIN_LOSS] = { "train_loss", CSV_REAL, "%.9g" },
    [SEEDS_TRAIN_ACC] = { "train_acc", CSV_REAL, "%.9g" },
    [SEEDS_TEST_LOSS] = { "test_loss", CSV_REAL, "%.9g" },
    [SEEDS_TEST_ACC] = { "test_acc", CSV_REAL, "%.9g" },
};

void csv_put_names(FILE *f, const struct csv_column *cols, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%s", i ? "," : "", cols[i].name);
}

void csv_put_cells(FILE *f, const struct csv_column *cols, size_t n, const union csv_cell *cells)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        switch (cols[i].type) {
        case CSV_TEXT: fputs(cells[i].text, f); break;
        case CSV_UINT: fprintf(f, "%llu", cells[i].uint); break;
        case CSV_REAL: fprintf(f, cols[i].fmt, cells[i].real); break;
        }
    }
}

size_t csv_split(char *line, char **fields, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (n < max) {
        fields[n++] = p;
        char *c = strchr(p, ',');
        if (!c)
            break;
        *c = '\0';
        p = c + 1;
    }
    return n;
}

void csv_find_columns(int *idx_out, const struct csv_column *cols, size_t n,
                      char *const *fields, size_t nfields)
{
    for (size_t i = 0; i < n; i++) {
        idx_out[i] = -1;
        for (size_t f = 0; f < nfields; f++)
            if (strcmp(fields[f], cols[i].name) == 0)
                idx_out[i] = (int)f;
    }
}
