/* The training loop: one recipe, all epochs, per-epoch metrics and timing. */
#ifndef AMPBENCH_TRAIN_H
#define AMPBENCH_TRAIN_H

#include "backend.h"
#include "config.h"
#include "idx.h"

struct epoch_metrics {
    uint32_t epoch;         /* 1-based */
    double train_loss;      /* mean over the epoch's training samples */
    double train_acc;
    double test_loss;
    double test_acc;
    double epoch_s;         /* training time of the epoch (evaluation excluded) */
    double samples_per_s;   /* training samples per second */
    struct mem_stats mem;   /* the backend's memory accounting at the end of the epoch */
};

struct mode_result {
    const struct recipe *recipe;
    uint32_t nepochs;                  /* epochs completed */
    struct epoch_metrics *epochs;      /* config epochs entries */
    int threads;
};

/* Called after every training batch with the epoch's progress. */
struct train_progress {
    void (*batch_done)(void *user, const struct recipe *r, uint32_t epoch, uint32_t epochs,
                       size_t batch, size_t batches, double elapsed_s);
    void (*epoch_done)(void *user, const struct recipe *r, const struct epoch_metrics *m);
    void *user;
};

/* Trains the seed network with recipe r from the seed's init; fills out (free with
 * mode_result_free). */
int train_mode(const struct amp_config *c, const struct recipe *r, const struct dataset *train,
               const struct dataset *test, const struct train_progress *progress,
               struct mode_result *out);
void mode_result_free(struct mode_result *r);

#endif
