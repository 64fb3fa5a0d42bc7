/* The baseline file of `verify`: the first seed's per-epoch metrics of every recipe with the
 * configuration that produced them; written by --write-baseline, compared with by --baseline
 * (a baseline of another configuration is refused before training). */
#ifndef AMPBENCH_BASELINE_H
#define AMPBENCH_BASELINE_H

#include <stddef.h>

#include "config.h"
#include "train.h"
#include "verify.h"

struct baseline {
    char *file;
    void *root; /* the parsed JSON */
};

/* Parses a baseline's text strictly (jsonfile.h) and checks its structure and every epoch entry
 * (epochs 1, 2, ... in order; finite losses; test_acc in [0, 1]): AMP_EINPUT naming the file and
 * the first problem. The fuzz target tests/fuzz_results.c drives it. */
int baseline_parse(struct baseline *b, const char *text, size_t len, const char *file);
/* Reads a baseline (regular file, at most 64 MiB), parses it and refuses one of another
 * configuration (AMP_EINPUT naming the differing keys) or one lacking a mode of the run. */
int baseline_open(struct baseline *b, const char *file, const struct amp_config *c,
                  size_t train_samples, size_t test_samples);
void baseline_close(struct baseline *b);
/* Compares the first seed's per-epoch metrics of every recipe with the baseline. Moves are added
 * to v and fail the moved recipes. */
int baseline_compare(struct verification *v, const struct baseline *b,
                     const struct amp_config *c, const struct recipe_result *results,
                     size_t nresults);
/* Writes the baseline of this run to file (atomically). */
int baseline_write(const char *file, const struct amp_config *c, size_t train_samples,
                   size_t test_samples, const struct recipe_result *results, size_t nresults);

#endif
