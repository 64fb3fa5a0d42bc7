/* FP8 recipes' statistics over a training run: per quantized tensor (model_fp8) and step, what
 * its quantization did (scale, amax, saturated and underflowed fractions, SQNR), summed per epoch,
 * and the first step at which a tensor saturated. For fp8.csv, run.json and the report. */
#ifndef AMPBENCH_FP8_RECORD_H
#define AMPBENCH_FP8_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* One quantized tensor over one epoch's training steps. */
struct fp8_epoch {
    uint64_t n, saturated, underflow, nonfinite; /* elements, summed over the steps */
    double sqnr_min_db;   /* the worst step's SQNR */
    double sqnr_mean_db;  /* the mean over the steps with a finite SQNR */
    uint32_t steps, finite_steps;
    float scale_last;     /* the scale the epoch's last step used (0 under MX) */
    float amax_max;       /* the largest amax of the epoch */
};

/* One quantized tensor at one step, for fp8.csv. */
struct fp8_step {
    uint32_t epoch, step; /* step counts from 1 within the epoch */
    uint32_t tensor;      /* index into fp8_run.names */
    float scale, amax;
    float saturated_frac, underflow_frac;
    double sqnr_db;
};

/* What a recipe's run recorded (all zero for a recipe that quantizes nothing). */
struct fp8_run {
    size_t ntensors;
    struct model_fp8 *last;        /* the last step's states, with the tensors' names */
    struct fp8_epoch *epochs;      /* [epoch - 1][tensor], epochs x ntensors */
    struct fp8_step *steps;        /* nsteps records (NULL unless steps are kept) */
    size_t nsteps, steps_cap;
    int saturated;                 /* some tensor saturated: first_* say where */
    uint32_t first_epoch, first_step, first_tensor;
};

/* Sizes r for model m over `epochs` epochs (nothing when m quantizes nothing). */
int fp8_run_open(struct fp8_run *r, const struct model *m, uint32_t epochs);
/* After a training step: reads m's FP8 states and adds them to epoch `epoch`'s summary, and
 * keeps a record per tensor when keep_steps. */
int fp8_run_step(struct fp8_run *r, struct model *m, uint32_t epoch, uint32_t step,
                 int keep_steps);
void fp8_run_free(struct fp8_run *r);
/* SQNR in dB of one state's last quantization (+inf when exact). */
double fp8_state_sqnr_db(const struct fp8_tensor_state *s);

#endif
