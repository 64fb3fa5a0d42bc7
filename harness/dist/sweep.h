/* A sweep of (recipe, seed) trainings spread over the ranks: job j (seed-major: seed s, recipe
 * i is job s * nrecipes + i) is trained by rank j % size; the others send their results to rank
 * 0, which alone writes the run folder. While they train, the ranks other than 0 send rank 0 a
 * heartbeat at most once a second and rank 0 takes in what has arrived after every batch, so a
 * rank that died or hangs is noticed --dist-timeout after its last word. Under --data-parallel
 * (or on one process) every rank trains every job and nothing is sent. */
#ifndef AMPBENCH_DIST_SWEEP_H
#define AMPBENCH_DIST_SWEEP_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "train.h"

struct sweep {
    const struct amp_config *c;
    struct recipe_result *slots; /* njobs results (rank 0: gathered here) */
    unsigned char *have;         /* slot j holds its result */
    size_t njobs;
    int spread;                  /* jobs spread over more than one rank */
    double *last_heard;          /* rank 0: when each rank was last heard from */
    double last_beat;            /* ranks other than 0: when the last heartbeat went */
    uint64_t batches;            /* ranks other than 0: batches trained (the faults' step count) */
};

/* Over slots[c->seeds * c->nrecipes]. */
int sweep_open(struct sweep *s, const struct amp_config *c, struct recipe_result *slots);
void sweep_close(struct sweep *s);
/* Whether this rank trains job j. */
int sweep_mine(const struct sweep *s, size_t job);
/* After this rank trained job j: rank 0 keeps it, the others send it (and free their copy). */
int sweep_done(struct sweep *s, size_t job);
/* During training: a heartbeat (ranks other than 0), or the results that arrived (rank 0). */
int sweep_service(struct sweep *s);
/* Rank 0: waits until every job's result is in. */
int sweep_collect(struct sweep *s);
/* How many leading slots hold their result. */
size_t sweep_prefix(const struct sweep *s);

#endif
