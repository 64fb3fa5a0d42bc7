/* The run folder and what a run writes into it: epochs.csv, steps.csv and seeds.csv (columns of
 * schema.h) and run.json (run_json.c), each atomically (sys/files.h). */
#include "results.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "files.h"
#include "schema.h"

int results_create_dir(int *fd_out, const char *requested, const char *parent, char *path_out,
                       size_t len)
{
    if (!requested)
        return dir_claim_stamped(fd_out, path_out, len, parent, "results directory");
    for (const char *p = requested; *p; p++)
        if ((unsigned char)*p < 0x20) /* gnuplot and report.md could not name the folder */
            return amp_fail(AMP_EINPUT, "--out %s: contains a control character (0x%02X); "
                            "choose a name without one", requested, (unsigned char)*p);
    /* Room for the longest file of the folder (plots/.draw-XXXXXX/<plot>.png) within PATH_MAX. */
    if (strlen(requested) > RESULTS_MAX_DIR || snprintf(path_out, len, "%s", requested) >= (int)len)
        return amp_fail(AMP_EINPUT, "--out %s: path too long (%zu bytes; at most %d, so that "
                        "every file of the folder stays within the system's path limit)",
                        requested, strlen(requested), RESULTS_MAX_DIR);
    const int rc = dir_claim(fd_out, path_out, 1, "results directory");
    if (rc == AMP_EIO)
        return amp_fail(AMP_EINPUT,
                        "--out %s: already exists and is not empty; results are never "
                        "overwritten, choose a new folder",
                        requested);
    if (rc != AMP_OK) { /* the flag first: "--out <path>: <why>" */
        char why[16384];
        snprintf(why, sizeof why, "%s", amp_last_error());
        return amp_fail(rc, "--out %s", why);
    }
    return AMP_OK;
}

/* A CSV file built in memory, then written atomically. */
struct csv {
    char *buf;
    size_t len;
    FILE *f;
};

static int csv_open(struct csv *c, const char *name)
{
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
    return c->f ? AMP_OK : amp_fail(AMP_ENOMEM, "out of memory formatting %s", name);
}

static int csv_commit(struct csv *c, const char *dir, const char *name)
{
    fclose(c->f);
    int rc = file_write_in(dir, name, c->buf, c->len);
    free(c->buf);
    return rc;
}

static int write_epochs_csv(const char *dir, const struct run_record *rec)
{
    struct csv c;
    int rc = csv_open(&c, "epochs.csv");
    if (rc != AMP_OK)
        return rc;
    csv_put_names(c.f, epochs_columns, EPOCHS_NCOLS);
    fputc('\n', c.f);
    for (size_t i = 0; i < rec->nrecipes; i++) {
        if (!results_is_primary(rec, i))
            continue;
        const struct recipe_result *r = &rec->recipes[i];
        for (uint32_t e = 0; e < r->nepochs; e++) {
            const struct epoch_metrics *m = &r->epochs[e];
            const struct numerics_summary *n = &m->numerics;
            const struct class_numerics *ag = &n->cls[CLASS_ACTIVATION_GRADS],
                                        *wg = &n->cls[CLASS_WEIGHT_GRADS];
            const double grad_overflow =
                ag->rounded + wg->rounded
                    ? (double)(ag->overflow + wg->overflow) / (double)(ag->rounded + wg->rounded)
                    : 0.0;
            const union csv_cell row[EPOCHS_NCOLS] = {
                [EPOCHS_MODE] = { .text = r->recipe->name },
                [EPOCHS_EPOCH] = { .uint = m->epoch },
                [EPOCHS_TRAIN_LOSS] = { .real = m->train_loss },
                [EPOCHS_TRAIN_ACC] = { .real = m->train_acc },
                [EPOCHS_TEST_LOSS] = { .real = m->test_loss },
                [EPOCHS_TEST_ACC] = { .real = m->test_acc },
                [EPOCHS_EPOCH_S] = { .real = m->epoch_s },
                [EPOCHS_SAMPLES_PER_S] = { .real = m->samples_per_s },
                [EPOCHS_SKIPPED_STEPS] = { .uint = m->skipped_steps },
                [EPOCHS_LOSS_SCALE] = { .real = m->loss_scale },
                [EPOCHS_GRAD_UNDERFLOW] = { .real = numerics_grad_underflow_frac(n) },
                [EPOCHS_ACT_UNDERFLOW] = { .real = numerics_underflow_frac(n, CLASS_ACTIVATIONS) },
                [EPOCHS_GRAD_OVERFLOW] = { .real = grad_overflow },
                [EPOCHS_SWALLOWED] = { .uint = n->swallowed },
                [EPOCHS_ACT_BYTES] = { .uint = m->mem.peak[MEM_ACTIVATIONS] },
                [EPOCHS_PEAK_BYTES] = { .uint = m->mem.peak_total },
            };
            csv_put_cells(c.f, epochs_columns, EPOCHS_NCOLS, row);
            fputc('\n', c.f);
        }
    }
    return csv_commit(&c, dir, "epochs.csv");
}

/* Whether any primary run quantized tensors to FP8 and kept its steps. */
static int has_fp8_steps(const struct run_record *rec)
{
    for (size_t i = 0; i < rec->nrecipes; i++)
        if (results_is_primary(rec, i) && rec->recipes[i].fp8.nsteps)
            return 1;
    return 0;
}

/* The header line of steps.csv (with its newline): the fixed columns, then the classes', then
 * with FP8 the FP8 summary's. */
static void steps_put_header(FILE *f, int fp8)
{
    csv_put_names(f, steps_columns, STEPS_NFIXED);
    for (int k = 0; k < NCLASSES; k++)
        for (int i = 0; i < STEPS_NCLASS_COLS; i++)
            fprintf(f, ",%s%s", tensor_class_name(k), steps_class_columns[i].name);
    if (fp8) {
        fputc(',', f);
        csv_put_names(f, steps_fp8_columns, STEPS_NFP8_COLS);
    }
    fputc('\n', f);
}

/* The FP8 summary of step s: over the records of fp8 at that step (from *at on, in order; *at
 * moves past them), the worst SQNR and the largest fractions; nan without any. */
static void steps_fp8_cells(const struct fp8_run *fp8, size_t *at, const struct step_record *s,
                            union csv_cell cells[STEPS_NFP8_COLS])
{
    double sqnr = NAN, sat = NAN, uf = NAN;
    while (*at < fp8->nsteps && (fp8->steps[*at].epoch < s->epoch ||
                                 (fp8->steps[*at].epoch == s->epoch && fp8->steps[*at].step < s->step)))
        ++*at; /* records of steps that steps.csv does not list */
    for (; *at < fp8->nsteps; ++*at) {
        const struct fp8_step *q = &fp8->steps[*at];
        if (q->epoch != s->epoch || q->step != s->step)
            break;
        sqnr = isnan(sqnr) || q->sqnr_db < sqnr ? q->sqnr_db : sqnr;
        sat = isnan(sat) || q->saturated_frac > sat ? q->saturated_frac : sat;
        uf = isnan(uf) || q->underflow_frac > uf ? q->underflow_frac : uf;
    }
    cells[STEPS_FP8_SQNR_MIN].real = sqnr;
    cells[STEPS_FP8_SATURATED_MAX].real = sat;
    cells[STEPS_FP8_UNDERFLOW_MAX].real = uf;
}

static int write_steps_csv(const char *dir, const struct run_record *rec)
{
    struct csv c;
    int rc = csv_open(&c, "steps.csv");
    if (rc != AMP_OK)
        return rc;
    const int fp8 = has_fp8_steps(rec);
    steps_put_header(c.f, fp8);
    for (size_t i = 0; i < rec->nrecipes; i++) {
        if (!results_is_primary(rec, i))
            continue;
        const struct recipe_result *r = &rec->recipes[i];
        size_t fp8_at = 0;
        for (size_t t = 0; t < r->nsteps; t++) {
            const struct step_record *s = &r->steps[t];
            const union csv_cell row[STEPS_NFIXED] = {
                [STEPS_MODE] = { .text = r->recipe->name }, [STEPS_EPOCH] = { .uint = s->epoch },
                [STEPS_STEP] = { .uint = s->step },         [STEPS_LOSS] = { .real = s->loss },
                [STEPS_LOSS_SCALE] = { .real = s->loss_scale },
                [STEPS_SKIPPED] = { .uint = (unsigned long long)s->skipped },
            };
            csv_put_cells(c.f, steps_columns, STEPS_NFIXED, row);
            for (int k = 0; k < NCLASSES; k++) {
                const union csv_cell fracs[STEPS_NCLASS_COLS] = {
                    [STEPS_CLASS_UNDERFLOW] = { .real = s->underflow[k] },
                    [STEPS_CLASS_OVERFLOW] = { .real = s->overflow[k] },
                };
                fputc(',', c.f);
                csv_put_cells(c.f, steps_class_columns, STEPS_NCLASS_COLS, fracs);
            }
            if (fp8) {
                union csv_cell q[STEPS_NFP8_COLS];
                steps_fp8_cells(&r->fp8, &fp8_at, s, q);
                fputc(',', c.f);
                csv_put_cells(c.f, steps_fp8_columns, STEPS_NFP8_COLS, q);
            }
            fputc('\n', c.f);
        }
    }
    return csv_commit(&c, dir, "steps.csv");
}


/* FP8 recipes: every quantized tensor's statistics at every step. */
static int write_fp8_csv(const char *dir, const struct run_record *rec)
{
    struct csv c;
    int rc = csv_open(&c, "fp8.csv");
    if (rc != AMP_OK)
        return rc;
    csv_put_names(c.f, fp8_columns, FP8_NCOLS);
    fputc('\n', c.f);
    for (size_t i = 0; i < rec->nrecipes; i++) {
        if (!results_is_primary(rec, i))
            continue;
        const struct fp8_run *f = &rec->recipes[i].fp8;
        /* Grouped by tensor (each step records every tensor in order), so that a plot reads
         * each tensor's steps as one run of rows. */
        const size_t nt = f->ntensors, steps = nt ? f->nsteps / nt : 0;
        for (size_t k = 0; k < steps * nt; k++) {
            const struct fp8_step *s = &f->steps[(k % steps) * nt + k / steps];
            const struct model_fp8 *x = &f->last[s->tensor];
            const union csv_cell row[FP8_NCOLS] = {
                [FP8_MODE] = { .text = rec->recipes[i].recipe->name },
                [FP8_EPOCH] = { .uint = s->epoch }, [FP8_STEP] = { .uint = s->step },
                [FP8_TENSOR] = { .text = x->name },
                [FP8_FORMAT] = { .text = fp8_format_name((enum fp8_format)x->state.format) },
                [FP8_SCALE] = { .real = s->scale }, [FP8_AMAX] = { .real = s->amax },
                [FP8_SATURATED] = { .real = s->saturated_frac },
                [FP8_UNDERFLOW] = { .real = s->underflow_frac },
                [FP8_SQNR] = { .real = s->sqnr_db },
            };
            csv_put_cells(c.f, fp8_columns, FP8_NCOLS, row);
            fputc('\n', c.f);
        }
    }
    return csv_commit(&c, dir, "fp8.csv");
}

/* Every seed's per-epoch metrics (verify --seeds N). */
static int write_seeds_csv(const char *dir, const struct run_record *rec)
{
    struct csv c;
    int rc = csv_open(&c, "seeds.csv");
    if (rc != AMP_OK)
        return rc;
    csv_put_names(c.f, seeds_columns, SEEDS_NCOLS);
    fputc('\n', c.f);
    for (size_t i = 0; i < rec->nrecipes; i++) {
        const struct recipe_result *r = &rec->recipes[i];
        for (uint32_t e = 0; e < r->nepochs; e++) {
            const struct epoch_metrics *m = &r->epochs[e];
            const union csv_cell row[SEEDS_NCOLS] = {
                [SEEDS_MODE] = { .text = r->recipe->name }, [SEEDS_SEED] = { .uint = r->seed },
                [SEEDS_EPOCH] = { .uint = m->epoch },
                [SEEDS_TRAIN_LOSS] = { .real = m->train_loss },
                [SEEDS_TRAIN_ACC] = { .real = m->train_acc },
                [SEEDS_TEST_LOSS] = { .real = m->test_loss },
                [SEEDS_TEST_ACC] = { .real = m->test_acc },
            };
            csv_put_cells(c.f, seeds_columns, SEEDS_NCOLS, row);
            fputc('\n', c.f);
        }
    }
    return csv_commit(&c, dir, "seeds.csv");
}

/* The first seed's run of each recipe is the primary one (run.json's modes, epochs.csv,
 * steps.csv); every seed's run is in seeds.csv and run.json's seed_runs. */
int results_is_primary(const struct run_record *rec, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (rec->recipes[j].recipe == rec->recipes[i].recipe)
            return 0;
    return 1;
}

int results_write(const char *dir, const struct run_record *rec)
{
    /* The finest file first: a crash between two renames leaves steps.csv and seeds.csv at least
     * as far as epochs.csv, and epochs.csv at least as far as run.json. */
    int rc = rec->config->steps_csv ? write_steps_csv(dir, rec) : AMP_OK;
    if (rc == AMP_OK && rec->config->steps_csv && has_fp8_steps(rec))
        rc = write_fp8_csv(dir, rec);
    if (rc == AMP_OK && rec->config->seeds > 1)
        rc = write_seeds_csv(dir, rec);
    if (rc == AMP_OK)
        rc = write_epochs_csv(dir, rec);
    if (rc == AMP_OK)
        rc = results_write_run_json(dir, rec);
    return rc;
}
