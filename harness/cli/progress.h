/* Terminal output of a run: each recipe's precision trace, a live progress line per epoch (only
 * on a terminal) and the per-epoch table. */
#ifndef AMPBENCH_PROGRESS_H
#define AMPBENCH_PROGRESS_H

#include <stdio.h>

#include "train.h"

struct progress_state {
    FILE *out;
    int live;            /* redraw a live line (stdout is a terminal and not disabled) */
    double last_draw_s;
    void (*after_epoch)(void *ctx); /* called after each epoch's row is printed, or NULL */
    void (*after_batch)(void *ctx); /* called after every training batch, or NULL */
    void *ctx;
};

void progress_init(struct progress_state *p, FILE *out, int live);
/* Callbacks for train_recipe, with user = the progress_state. */
struct train_progress progress_callbacks(struct progress_state *p);

#endif
