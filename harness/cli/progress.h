/* Terminal output of a run: a live progress line per epoch (only on a terminal) and the
 * per-epoch table. */
#ifndef AMPBENCH_PROGRESS_H
#define AMPBENCH_PROGRESS_H

#include <stdio.h>

#include "train.h"

struct progress_state {
    FILE *out;
    int live;            /* redraw a live line (stdout is a terminal and not disabled) */
    double last_draw_s;
};

void progress_init(struct progress_state *p, FILE *out, int live);
/* Callbacks for train_mode, with user = the progress_state. */
struct train_progress progress_callbacks(struct progress_state *p);
/* The table header printed before a recipe's epochs. */
void progress_table_header(struct progress_state *p, const struct recipe *r,
                           const struct precision_plan *plan, uint64_t seed);

#endif
