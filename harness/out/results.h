/* The run folder and what a run writes into it (run.json, epochs.csv), atomically. */
#ifndef AMPBENCH_RESULTS_H
#define AMPBENCH_RESULTS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "config.h"
#include "sysinfo.h"
#include "train.h"
#include "verify.h"

/* Claims a fresh run folder (sys/files.h, dir_claim): `requested` when given (it must not exist,
 * or be an empty directory), else <parent>/<UTC timestamp>-<random id>. Never reuses a folder
 * holding anything, nor one another run holds. The path is written to path_out; *fd_out holds
 * the claim until closed. */
#define RESULTS_MAX_DIR 3500 /* bytes of a run folder's path (report_build refuses longer too) */
int results_create_dir(int *fd_out, const char *requested, const char *parent, char *path_out,
                       size_t len);

struct run_record {
    const struct amp_config *config;
    const struct host_info *host;
    const struct recipe_result *recipes;
    size_t nrecipes;
    const char *command_line;
    const char *data_dir;
    size_t train_samples, test_samples;
    int complete;          /* 0 while a run is in progress or was interrupted */
    const struct verification *verification; /* verify's verdicts, or NULL */
    int world_size;        /* the ranks of an MPI run (1 or 0: a single process) */
    const char *rank_hosts;/* "host0,host1,...": rank i's host name, or NULL */
    const char *allreduce_library; /* --data-parallel: what carried the gradients ("mpi", "nccl") */
};

/* Adds the training protocol's keys (net, epochs, batch, lr, momentum, channels, seed) to j. */
void results_protocol_json(cJSON *j, const struct amp_config *c);

/* {"peak_bytes_by_category": {...}, "peak_bytes": N}: a backend's memory accounting. */
cJSON *results_memory_json(const struct mem_stats *m);

/* Writes steps.csv and seeds.csv (when configured), epochs.csv and run.json into dir, in that
 * order, each through a temporary file and a rename (a reader never sees half a file, and a
 * crash between two leaves the earlier files at least as far as the later ones). */
int results_write(const char *dir, const struct run_record *rec);
/* run.json alone (run_json.c). */
int results_write_run_json(const char *dir, const struct run_record *rec);
/* Whether rec->recipes[i] is its recipe's primary run (the first seed's): run.json's modes,
 * epochs.csv and steps.csv hold only those; seeds.csv and seed_runs hold every seed. */
int results_is_primary(const struct run_record *rec, size_t i);

#endif
