/* What `run` and `verify` share: load the data, create the run folder, train recipes (and seeds)
 * with terminal progress, and describe the run for the results writer. */
#ifndef AMPBENCH_RUNNER_H
#define AMPBENCH_RUNNER_H

#include "cli.h"
#include "config.h"
#include "idx.h"
#include "progress.h"
#include "results.h"
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
    size_t nresults;
    int write_rc;                   /* the first failed write of results after an epoch */
};

/* Loads the data (clamping the batch to the training set, with a note). Bad input fails here,
 * before any folder exists. */
int runner_open(struct runner *r, struct amp_config *c, const char *command_line);
/* Claims the run folder (--out, else <parent>/<timestamp>-<id>) and prints the header. */
int runner_start(struct runner *r, const char *what, const char *parent);
/* The common start of a subcommand: parses its options (-1 after --help), loads the data and
 * creates the run folder under results/runs. The runner can be closed whatever it returns. */
int runner_begin(struct runner *r, struct amp_config *c, int argc, char **argv,
                 const char *command_line, enum cli_command cmd, const char *what);
/* Trains recipe m with seed `seed`, printing its trace and table; appends to r->results. A
 * diverging recipe is reported and is not an error. The run's results (run.json marked
 * incomplete, epochs.csv, steps.csv, seeds.csv) are written before the first recipe and
 * rewritten, each atomically, after every epoch, so a crash keeps every finished epoch. */
int runner_train(struct runner *r, const struct recipe *m, uint64_t seed);
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
