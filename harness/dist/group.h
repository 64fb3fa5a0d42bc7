/* The process group of a distributed run: MPI when ampbench was started by an MPI launcher
 * (mpirun, srun: OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK in the environment), else a group of
 * one and nothing changes. Every collective is nonblocking underneath and waits at most the
 * group's timeout (--dist-timeout), so that a rank that died or hangs makes the others fail with
 * one clear line (AMP_EDIST) instead of waiting forever. */
#ifndef AMPBENCH_DIST_GROUP_H
#define AMPBENCH_DIST_GROUP_H

#include <stddef.h>
#include <stdint.h>

struct dist_group {
    int rank, size;     /* 0 and 1 without a launcher */
    int mpi;            /* MPI is initialised (and must be finalised) */
    double timeout_s;   /* the longest any collective waits for the other ranks */
    char host[64];      /* this rank's host name */
    char hosts[4096];   /* "host0,host1,...": every rank's (cut short past 4 KB) */
};

/* The process-wide group: {0, 1} until dist_init. */
struct dist_group *dist_world(void);
/* Joins the launcher's group when there is one (built without MPI and started by a launcher of
 * more than one process: AMP_EINPUT). Called once, first thing in main. */
int dist_init(int *argc, char ***argv);
/* Leaves the group (MPI_Finalize). After a failed collective, ends every rank (MPI_Abort) with
 * status rc instead: the others may still be waiting. Returns rc. */
int dist_finish(int rc);
/* "mpi" when built with MPI, "" without. */
const char *dist_library(void);

/* Collectives over the whole group (identity on a group of one). Each fails with AMP_EDIST
 * naming `what` when the others do not take part within the timeout, and with AMP_EINTR on a
 * signal. */
enum dist_reduce { DIST_SUM_F64, DIST_SUM_F32, DIST_MAX_F64, DIST_MAX_I32 };
/* values[n] (double, float or int32_t, as `how` says) replaced by their sum or maximum over the
 * ranks. */
int dist_allreduce(void *values, size_t n, enum dist_reduce how, const char *what);
/* out[size * bytes]: every rank's `bytes` bytes, in rank order. */
int dist_allgather(void *out, const void *mine, size_t bytes, const char *what);
/* Point to point (tags apart from the collectives'): a message of bytes to rank `to`; a message
 * from any rank, its sender and tag into *from / *tag, into a buffer of *len bytes that the
 * caller frees. dist_poll: whether a message waits (nonblocking). */
int dist_send(int to, int tag, const void *bytes, size_t len, const char *what);
int dist_poll(int *from, int *tag);
int dist_recv(int from, int tag, void **bytes, size_t *len, const char *what);

/* An all-reduce of device memory for one backend's tensors (NCCL for cuda: nccl.c, linked into
 * the ampbench binary where the CUDA backend and NCCL are built), registered by it at load
 * time; the data-parallel step uses it for an FP32 all-reduce on that backend. */
struct amp_tensor;
struct dist_device_allreduce {
    const char *library; /* "nccl" */
    const char *backend; /* the backend whose memory it reads: "cuda" */
    /* grads[n] (FP32, the backend's memory) replaced by the sum over the ranks of share * grad;
     * AMP_EDIST naming `what` when the others do not take part within the timeout. */
    int (*sum_f32)(struct amp_tensor *const *grads, size_t n, float share, const char *what);
    void (*close)(void); /* at dist_finish */
};
void dist_register_device_allreduce(const struct dist_device_allreduce *d);
/* The one registered, or NULL. */
const struct dist_device_allreduce *dist_device_allreduce(void);

/* Test only (faults.h, ampbench-faulty): the last rank stops or is killed at its third step or
 * heartbeat under the faults rank-hangs and rank-dies; nothing otherwise. */
void dist_fault_stop(uint64_t step);

#endif
