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

/* Reads a baseline and refuses one of another configuration (AMP_EINPUT naming the differing
 * keys) or a malformed one. */
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
