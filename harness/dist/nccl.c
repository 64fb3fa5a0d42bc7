/* NCCL for the CUDA backend's data-parallel replicas (one rank per GPU): the FP32 gradient
 * all-reduce in device memory, each rank's share applied by the reduction (ncclPreMulSum), on a
 * stream of its own after the backend's work is done, waited for with the group's deadline
 * (the communicator aborted when it passes). Built into the ampbench binary where the CUDA
 * backend and NCCL's header are found; it registers itself with the group at load time, and
 * loads libnccl.so.2 when a data-parallel run first needs it. */
#include <cuda_runtime_api.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "clock.h"
#include "cuda_libs.h"
#include "error.h"
#include "group.h"
#include "interrupt.h"

static ncclComm_t comm;
static cudaStream_t stream;
static int opened;

/* The communicator over the process group, its id made by rank 0 and gathered to every rank.
 * NCCL is loaded here, on first use (kernels/cuda_libs.c): the binary does not need it to run. */
static int open_comm(const char *what)
{
    const struct dist_group *g = dist_world();
    char why[320];
    if (!cuda_libs_load_nccl(why, sizeof why))
        return amp_fail(AMP_EDIST, "%s: %s", what, why);
    ncclUniqueId mine, *all = NULL;
    if (g->rank == 0 && ncclGetUniqueId(&mine) != ncclSuccess)
        return amp_fail(AMP_EDIST, "%s: ncclGetUniqueId failed", what);
    if (g->rank != 0)
        memset(&mine, 0, sizeof mine);
    all = malloc((size_t)g->size * sizeof *all);
    if (!all)
        return amp_fail(AMP_ENOMEM, "out of host memory");
    int rc = dist_allgather(all, &mine, sizeof mine, "sharing the NCCL id");
    ncclResult_t r = ncclSuccess;
    if (rc == AMP_OK && (r = ncclCommInitRank(&comm, g->size, all[0], g->rank)) != ncclSuccess)
        rc = amp_fail(AMP_EDIST, "%s: ncclCommInitRank failed: %s", what, ncclGetErrorString(r));
    free(all);
    if (rc == AMP_OK && cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) != cudaSuccess)
        rc = amp_fail(AMP_EDIST, "%s: cudaStreamCreate failed", what);
    opened = rc == AMP_OK;
    return rc;
}

/* Until the stream is done, the deadline passes (the communicator aborted) or NCCL fails. */
static int wait_stream(const char *what)
{
    const double deadline = now_s() + dist_world()->timeout_s;
    const struct timespec nap = { 0, 100000 };
    for (;;) {
        const cudaError_t q = cudaStreamQuery(stream);
        if (q == cudaSuccess)
            return AMP_OK;
        ncclResult_t async = ncclSuccess;
        ncclCommGetAsyncError(comm, &async);
        if (q != cudaErrorNotReady || async != ncclSuccess || now_s() > deadline ||
            interrupt_signal()) {
            ncclCommAbort(comm);
            opened = 0;
            if (interrupt_signal())
                return amp_fail(AMP_EINTR, "interrupted (signal %d) in %s", interrupt_signal(),
                                what);
            return amp_fail(AMP_EDIST, "rank %d of %d: %s (NCCL): %s", dist_world()->rank,
                            dist_world()->size, what,
                            async != ncclSuccess ? ncclGetErrorString(async)
                            : q != cudaErrorNotReady
                                ? cudaGetErrorString(q)
                                : "the other ranks did not take part within --dist-timeout");
        }
        nanosleep(&nap, NULL);
    }
}

static int sum_f32(struct amp_tensor *const *grads, size_t n, float share, const char *what)
{
    int rc = opened ? AMP_OK : open_comm(what);
    if (rc != AMP_OK)
        return rc;
    if (cudaDeviceSynchronize() != cudaSuccess) /* the backend's backward pass, on its streams */
        return amp_fail(AMP_EDIST, "%s: cudaDeviceSynchronize failed", what);
    ncclRedOp_t op;
    ncclResult_t r =
        ncclRedOpCreatePreMulSum(&op, &share, ncclFloat32, ncclScalarHostImmediate, comm);
    if (r != ncclSuccess)
        return amp_fail(AMP_EDIST, "%s: ncclRedOpCreatePreMulSum: %s", what, ncclGetErrorString(r));
    ncclGroupStart();
    for (size_t i = 0; i < n && r == ncclSuccess; i++)
        r = ncclAllReduce(grads[i]->data, grads[i]->data, grads[i]->numel, ncclFloat32, op, comm,
                          stream);
    const ncclResult_t end = ncclGroupEnd();
    if (r != ncclSuccess || end != ncclSuccess)
        rc = amp_fail(AMP_EDIST, "%s: ncclAllReduce: %s", what,
                      ncclGetErrorString(r != ncclSuccess ? r : end));
    if (rc == AMP_OK)
        rc = wait_stream(what);
    if (opened)
        ncclRedOpDestroy(op, comm);
    return rc;
}

static void close_comm(void)
{
    if (opened) {
        ncclCommDestroy(comm);
        cudaStreamDestroy(stream);
    }
    opened = 0;
}

static const struct dist_device_allreduce nccl = {
    .library = "nccl", .backend = "cuda", .sum_f32 = sum_f32, .close = close_comm,
};

__attribute__((constructor)) static void register_nccl(void)
{
    dist_register_device_allreduce(&nccl);
}
