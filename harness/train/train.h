/* The training loop: one recipe, all epochs, per-epoch and per-step metrics, numerics
 * diagnostics and timing. */
#ifndef AMPBENCH_TRAIN_H
#define AMPBENCH_TRAIN_H

#include "backend.h"
#include "config.h"
#include "fp8_record.h"
#include "idx.h"
#include "model.h"
#include "recipe.h"
#include "rng.h"

/* Rounding statistics of one tensor class over a span of steps. */
struct class_numerics {
    uint64_t rounded, underflow, overflow;
};

/* The tensor classes the diagnostics report. */
enum tensor_class { CLASS_ACTIVATIONS, CLASS_ACTIVATION_GRADS, CLASS_WEIGHT_GRADS,
                    CLASS_WEIGHTS, NCLASSES };

struct numerics_summary {
    struct class_numerics cls[NCLASSES];
    uint64_t updates, swallowed;  /* low-precision weights (fp16-pure) */
};

struct epoch_metrics {
    uint32_t epoch;         /* 1-based */
    double train_loss;      /* mean over the epoch's training samples */
    double train_acc;
    double test_loss;
    double test_acc;
    double epoch_s;         /* training time of the epoch (evaluation excluded) */
    double samples_per_s;   /* training samples per second */
    uint32_t steps, skipped_steps;
    float loss_scale;       /* the scaler's scale at the end of the epoch (1 without scaling) */
    int32_t growth_tracker; /* the scaler's growth tracker at the end of the epoch */
    struct numerics_summary numerics;
    struct mem_stats mem;   /* the backend's memory accounting at the end of the epoch */
    uint64_t allreduce_overflow; /* --data-parallel, BF16/FP16 all-reduce: elements overflowed */
};

/* One training step, for steps.csv. */
struct step_record {
    uint32_t epoch, step;   /* step counts from 1 within the epoch */
    float loss;             /* mean loss of the batch (unscaled) */
    float loss_scale;
    int skipped;
    float underflow[NCLASSES], overflow[NCLASSES]; /* fractions of the elements rounded */
};

struct recipe_result {
    const struct recipe *recipe;
    uint64_t seed;
    struct precision_plan plan;
    uint32_t nepochs;                  /* epochs completed */
    struct epoch_metrics *epochs;      /* config epochs entries */
    struct step_record *steps;         /* nsteps records (NULL unless config steps_csv) */
    size_t nsteps;
    int threads;
    uint32_t rank;                     /* the MPI rank that trained it (0 in a single process) */
    int diverged;                      /* the loss became NaN/inf: training stopped */
    uint32_t diverged_epoch, diverged_step;
    int scale_below_one;               /* the dynamic scale fell below 1 at some step */
    char *backend_json;                /* the backend's own account (describe op), or NULL */
    struct layer_trace *trace;         /* the precision trace: one line per layer of c->net */
    size_t ntrace;
    struct fp8_run fp8;                /* FP8 recipes: the quantized tensors' statistics */
};

/* Called once the recipe's model is built (out holds its recipe, seed, plan and trace), after
 * every training batch with the epoch's progress, and after every epoch. */
struct train_progress {
    void (*started)(void *user, const struct recipe_result *r);
    void (*batch_done)(void *user, const struct recipe *r, uint32_t epoch, uint32_t epochs,
                       size_t batch, size_t batches, double elapsed_s);
    void (*epoch_done)(void *user, const struct recipe *r, const struct epoch_metrics *m);
    void *user;
};

/* Recipe r's precision plan under c: its policy, and for FP8 recipes the history length and
 * the MX rounding the flags give. */
struct precision_plan train_plan_of(const struct amp_config *c, const struct recipe *r);

/* The seeded stream that shuffles the training set before each epoch (the same for every recipe). */
void train_shuffle_stream(struct rng *r, uint64_t seed);
/* The model shape of a run: one sample of d (channels, size, classes), --channels and `batch`. */
struct model_shape train_model_shape(const struct amp_config *c, const struct dataset *d,
                                     uint32_t batch);
/* Opens the backend c->device and builds c->net for recipe r at `shape` in the dtypes of `plan`
 * (r's under c->policy), with the loss scaler the recipe and the flags give, initialised from
 * c->seed. Close with train_close_model. */
int train_open_model(const struct amp_config *c, const struct recipe *r,
                     const struct precision_plan *plan, const struct model_shape *shape,
                     struct backend *be, struct model **model);
void train_close_model(struct backend *be, struct model **model);

/* Trains c->net with recipe r from the init of c->seed; fills out (free with
 * recipe_result_free). A diverging recipe is not an error: out->diverged says so. */
int train_recipe(const struct amp_config *c, const struct recipe *r, const struct dataset *train,
                 const struct dataset *test, const struct train_progress *progress,
                 struct recipe_result *out);
void recipe_result_free(struct recipe_result *r);

const char *tensor_class_name(enum tensor_class c);
/* Fraction of the rounded elements of class c that underflowed (0 when none were rounded). */
double numerics_underflow_frac(const struct numerics_summary *n, enum tensor_class c);
double numerics_overflow_frac(const struct numerics_summary *n, enum tensor_class c);
/* Underflow fraction over all gradient elements rounded (activation and weight gradients). */
double numerics_grad_underflow_frac(const struct numerics_summary *n);

#endif
