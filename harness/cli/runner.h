/* What `run` and `verify` share: load the data, create the run folder, train recipes (and seeds)
 * with terminal progress, and describe the run for the results writer. */
#ifndef AMPBENCH_RUNNER_H
#define AMPBENCH_RUNNER_H

#include "cli.h"
#include "config.h"
#include "data_parallel.h"
#include "idx.h"
#include "progress.h"
#include "results.h"
#include "sweep.h"
#include "sysinfo.h"
#include "train.h"

struct runner {
    struct amp_config *c;
    const char *command_line;
    const char *data_dir;
    struct dataset train, test;
    char dir[4096];                 /* the run folder ("" until claimed) */
    int dir_fd;                     /* the folder, flock'd for the whole run (sys/files.h) */
    struct host_info host;
    struct progress_state prog;
    struct train_progress callbacks;
    struct recipe_result *results;  /* room for every recipe x seed */
    size_t nresults;                /* how many leading results run.json shows */
    size_t training;                /* the job in training (SIZE_MAX: none) */
    int write_rc;                   /* the first failed write of results after an epoch */
    struct sweep sweep;             /* which rank trains which (recipe, seed) */
    struct data_parallel dp;        /* --data-parallel: this rank's replica's collectives */
};

/* Loads the data (clamping the batch to the training set, with a note). Bad input fails here,
 * before any folder exists. Under an MPI launcher every rank does, and only rank 0 goes on to
 * claim a folder and write (runner_writes). */
int runner_open(struct runner *r, struct amp_config *c, const char *command_line);
/* Claims the run folder (--out, else <parent>/<timestamp>-<id>) and prints the header. */
int runner_start(struct runner *r, const char *what, const char *parent);
/* The common start of a subcommand: parses its options (-1 after --help), loads the data and
 * creates the run folder under results/runs. The runner can be closed whatever it returns. */
int runner_begin(struct runner *r, struct amp_config *c, int argc, char **argv,
                 const char *command_line, enum cli_command cmd, const char *what);
/* Trains every (recipe, seed) of the configuration, seed-major (--seeds seeds from --seed),
 * printing each one's trace and table, into r->results: spread over the ranks under an MPI
 * launcher and gathered on rank 0 (dist/sweep.h), or, with --data-parallel, each one by all
 * the ranks together. A diverging recipe is reported and is not an error. The run's results
 * (run.json marked incomplete, epochs.csv, steps.csv, seeds.csv) are written before the first
 * recipe and rewritten, each atomically, after every epoch, so a crash keeps every finished
 * epoch. */
int runner_train_all(struct runner *r);
/* Whether this process writes the run's outputs (rank 0, or a single process). */
int runner_writes(const struct runner *r);
/* The run as the results writer sees it. */
struct run_record runner_record(const struct runner *r, int complete);
/* The end of run and verify, however training ended (rc): writes the results (complete only when
 * rc is AMP_OK, with v's verdicts), says where on stdout (or on stderr for an incomplete run),
 * then the report (report_after_run). Returns rc, else the write or report error. */
int runner_finish(struct runner *r, int rc, const struct verification *v);
void runner_close(struct runner *r);
/* Prints "ampbench: <last error>" to stderr as one line (text_print_error) and returns the
 * exit status of rc (128 + the signal for AMP_EINTR). */
int runner_report_error(int rc);

#endif
