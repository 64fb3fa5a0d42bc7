/* The configuration of a run: every protocol choice is a flag, the defaults are the seed's. */
#ifndef AMPBENCH_CONFIG_H
#define AMPBENCH_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "nets.h"
#include "recipe.h"

#define CONFIG_MAX_RECIPES 16

/* --allreduce-dtype: what the data-parallel gradient all-reduce carries. */
enum allreduce_dtype { ALLREDUCE_F32, ALLREDUCE_BF16, ALLREDUCE_F16 };

struct model_sync;

struct amp_config {
    const struct recipe *recipes[CONFIG_MAX_RECIPES];
    size_t nrecipes;
    const struct net_preset *net; /* --net */
    uint32_t epochs;
    uint32_t batch;
    float lr;
    float momentum;
    uint32_t channels;
    uint64_t seed;
    size_t train_limit;    /* 0 = all */
    size_t test_limit;     /* 0 = all */
    const char *data_dir;  /* NULL = the default location */
    const char *out_dir;   /* NULL = results/runs/<timestamp>-<id> */
    const char *device;
    int threads;           /* 0 = all cores */
    int progress;          /* live progress line: -1 auto (when stdout is a terminal), 0 off, 1 on */
    enum policy policy;    /* which layers the mixed-precision recipes run in low precision */
    float loss_scale;      /* amp-static's fixed scale */
    float scale_init;      /* dynamic scaling: initial scale (GradScaler: 2^16) */
    uint32_t scale_growth_interval; /* clean steps before the scale doubles (2000) */
    float scale_min;       /* optional bounds on the dynamic scale; 0 = none */
    float scale_max;
    uint32_t amax_history; /* fp8-delayed: --amax-history (1024) */
    enum mx_scale_rounding mx_scale; /* mxfp8: --mx-scale (rceil) */
    int steps_csv;         /* write steps.csv (per-step records) */
    int deterministic;     /* --deterministic: deterministic algorithms only */
    int graphs;            /* capture the step in a CUDA Graph (off with --no-graph) */
    uint64_t profile_first, profile_last; /* --profile-steps A:B (global step numbers); 0: none */
    /* distributed runs (harness/dist, docs/DISTRIBUTED.md) */
    float dist_timeout;    /* --dist-timeout: the longest a rank waits for the others (600 s) */
    int data_parallel;     /* --data-parallel: the ranks train one model on shards of each batch */
    enum allreduce_dtype allreduce_dtype; /* --allreduce-dtype (fp32) */
    int allreduce_given;   /* --allreduce-dtype was given */
    int sync_bn;           /* --sync-bn: batch norm statistics over every rank's shard */
    const struct model_sync *sync; /* set by the runner under --data-parallel: the replicas */
    /* verify only */
    float tol_acc;         /* percentage points of final test accuracy below fp32 (1.0) */
    float tol_loss;        /* relative per-epoch test loss above fp32 (0.05) */
    uint32_t seeds;        /* seeds per recipe (1; >= 3 for the statistical test) */
    const char *baseline;  /* baseline file to compare with (NULL: none) */
    const char *junit;     /* JUnit XML report to write (NULL: none) */
    const char *write_baseline; /* write this run as a baseline file (NULL: no) */
};

/* The seed's defaults. */
void config_defaults(struct amp_config *c);
/* "fp32", "bf16", "fp16" */
const char *allreduce_dtype_name(enum allreduce_dtype d);

#endif
