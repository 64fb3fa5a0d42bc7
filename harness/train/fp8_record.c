/* FP8 recipes' per-step and per-epoch statistics of the quantized tensors. */
#include "fp8_record.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

double fp8_state_sqnr_db(const struct fp8_tensor_state *s)
{
    const struct fp8_stats st = { .signal = s->signal, .noise = s->noise };
    return fp8_sqnr_db(&st);
}

int fp8_run_open(struct fp8_run *r, const struct model *m, uint32_t epochs)
{
    memset(r, 0, sizeof *r);
    r->ntensors = model_fp8_count(m);
    if (!r->ntensors)
        return AMP_OK;
    r->last = calloc(r->ntensors, sizeof *r->last);
    r->epochs = calloc((size_t)epochs * r->ntensors, sizeof *r->epochs);
    if (!r->last || !r->epochs) {
        fp8_run_free(r);
        return amp_fail(AMP_ENOMEM, "out of host memory for the FP8 statistics");
    }
    for (size_t i = 0; i < (size_t)epochs * r->ntensors; i++)
        r->epochs[i].sqnr_min_db = INFINITY;
    return AMP_OK;
}

static float frac(uint64_t part, uint64_t whole)
{
    return whole ? (float)((double)part / (double)whole) : 0.0f;
}

int fp8_run_step(struct fp8_run *r, struct model *m, uint32_t epoch, uint32_t step,
                 int keep_steps)
{
    if (!r->ntensors)
        return AMP_OK;
    int rc = model_fp8_read(m, r->last);
    if (rc != AMP_OK)
        return rc;
    if (keep_steps && r->nsteps + r->ntensors > r->steps_cap) {
        const size_t cap = r->steps_cap ? 2 * r->steps_cap : 64 * r->ntensors;
        struct fp8_step *grown = realloc(r->steps, cap * sizeof *grown);
        if (!grown)
            return amp_fail(AMP_ENOMEM, "out of host memory recording the FP8 statistics");
        r->steps = grown;
        r->steps_cap = cap;
    }
    for (size_t t = 0; t < r->ntensors; t++) {
        const struct fp8_tensor_state *s = &r->last[t].state;
        struct fp8_epoch *e = &r->epochs[(size_t)(epoch - 1) * r->ntensors + t];
        const double sqnr = fp8_state_sqnr_db(s);
        e->n += s->n;
        e->saturated += s->saturated;
        e->underflow += s->underflow;
        e->nonfinite += s->nonfinite;
        e->sqnr_min_db = sqnr < e->sqnr_min_db ? sqnr : e->sqnr_min_db;
        if (isfinite(sqnr)) { /* a running mean: no sum to overflow or lose */
            e->finite_steps++;
            e->sqnr_mean_db += (sqnr - e->sqnr_mean_db) / e->finite_steps;
        }
        e->steps++;
        e->scale_last = s->last_scale;
        e->amax_max = s->last_amax > e->amax_max ? s->last_amax : e->amax_max;
        if (s->saturated && !r->saturated) {
            r->saturated = 1;
            r->first_epoch = epoch;
            r->first_step = step;
            r->first_tensor = (uint32_t)t;
        }
        if (keep_steps)
            r->steps[r->nsteps++] = (struct fp8_step){
                .epoch = epoch, .step = step, .tensor = (uint32_t)t, .scale = s->last_scale,
                .amax = s->last_amax, .saturated_frac = frac(s->saturated, s->n),
                .underflow_frac = frac(s->underflow, s->n), .sqnr_db = sqnr };
    }
    return AMP_OK;
}

void fp8_run_free(struct fp8_run *r)
{
    free(r->last);
    free(r->epochs);
    free(r->steps);
    memset(r, 0, sizeof *r);
}
