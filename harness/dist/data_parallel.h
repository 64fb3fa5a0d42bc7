/* --data-parallel: every rank a replica of the model that trains on its shard of each global
 * batch (the batch unchanged: rank r of W takes samples [r*N/W, (r+1)*N/W) of a batch of N).
 * After the backward pass the gradients are all-reduced (each weighted by its shard's share
 * of the batch: the global mean) before the unscale and inf check, in FP32 (MPI_Allreduce) or
 * compressed to BF16/FP16 as PyTorch DDP's compression hooks (FP16 on the scaled gradients,
 * overflow counted); the found-inf flag is reduced so that every replica skips the same steps;
 * with --sync-bn batch norm uses every replica's samples. */
#ifndef AMPBENCH_DIST_DATA_PARALLEL_H
#define AMPBENCH_DIST_DATA_PARALLEL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "model.h"

struct data_parallel {
    struct model_sync sync;   /* what the model calls (user = this) */
    enum allreduce_dtype dtype;
    const char *library;      /* what carried the gradients: "mpi", or "nccl" (group.h) */
    uint64_t overflow;        /* elements whose compressed all-reduce overflowed */
    uint64_t steps;           /* gradient all-reduces so far (the faults' step count) */
    int failed;               /* a collective failed: its status (every later call returns it) */
    float *host;              /* the gradients packed for the all-reduce */
    uint16_t *wire, *gathered;/* BF16/FP16: this rank's compressed gradients, every rank's */
    size_t cap;
};

/* For a run under c (c->data_parallel) in the process group. */
void data_parallel_open(struct data_parallel *dp, const struct amp_config *c);
void data_parallel_close(struct data_parallel *dp);

#endif
