/* The process group: MPI under a launcher, a group of one otherwise; collectives that wait at
 * most --dist-timeout (nonblocking MPI calls polled against a deadline). */
#include "group.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <signal.h>

#include "clock.h"
#include "error.h"
#include "faults.h"
#include "interrupt.h"

#ifdef AMPBENCH_HAVE_MPI
#include <mpi.h>
#endif

#define DIST_TIMEOUT_DEFAULT_S 600.0

static struct dist_group world = { .rank = 0, .size = 1, .timeout_s = DIST_TIMEOUT_DEFAULT_S };
static int collective_failed; /* a collective was left pending: only MPI_Abort ends it */
static const struct dist_device_allreduce *device_allreduce;

void dist_register_device_allreduce(const struct dist_device_allreduce *d)
{
    device_allreduce = d;
}

const struct dist_device_allreduce *dist_device_allreduce(void)
{
    return device_allreduce;
}

struct dist_group *dist_world(void)
{
    return &world;
}

/* The launcher's world size from its environment (Open MPI, PMI/Slurm, PMIx), or 0. */
static int launcher_size(void)
{
    static const char *const vars[] = { "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE",
                                        "SLURM_NTASKS" };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v && (i < 3 || getenv("SLURM_STEP_ID"))) /* Slurm: only inside a step (srun) */
            return atoi(v);
    }
    return getenv("PMIX_RANK") ? 1 : 0;
}

const char *dist_library(void)
{
#ifdef AMPBENCH_HAVE_MPI
    return "mpi";
#else
    return "";
#endif
}

#ifdef AMPBENCH_HAVE_MPI
static int gather_hosts(void);
#endif

int dist_init(int *argc, char ***argv)
{
    gethostname(world.host, sizeof world.host - 1);
    snprintf(world.hosts, sizeof world.hosts, "%s", world.host);
    const int size = launcher_size();
#ifdef AMPBENCH_HAVE_MPI
    if (size <= 0)
        return AMP_OK;
    if (MPI_Init(argc, argv) != MPI_SUCCESS)
        return amp_fail(AMP_EDIST, "MPI_Init failed (started by an MPI launcher)");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &world.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world.size);
    world.mpi = 1;
    return gather_hosts();
#else
    (void)argc;
    (void)argv;
    if (size > 1)
        return amp_fail(AMP_EINPUT, "started by an MPI launcher as one of %d processes, but this "
                        "ampbench is built without MPI (apt-get install libopenmpi-dev, rebuild)",
                        size);
    return AMP_OK;
#endif
}

int dist_finish(int rc)
{
    if (device_allreduce && device_allreduce->close)
        device_allreduce->close();
#ifdef AMPBENCH_HAVE_MPI
    if (!world.mpi)
        return rc;
    /* After a failed collective the others may still wait in it; a rank that failed otherwise
     * (bad input aside, which every rank finds alike) leaves them waiting for its part. */
    if (collective_failed || (world.size > 1 && rc != 0 && rc != AMP_EINPUT))
        MPI_Abort(MPI_COMM_WORLD, rc);
    MPI_Finalize();
    world.mpi = 0;
#endif
    return rc;
}

#ifdef AMPBENCH_HAVE_MPI
/* Tags of the point-to-point messages start here; collectives use none. */
#define TAG_BASE 100

/* Waits for *req until the group's deadline. */
static int wait_for(MPI_Request *req, const char *what)
{
    const double deadline = now_s() + world.timeout_s;
    const struct timespec nap = { 0, 200000 }; /* 0.2 ms */
    for (;;) {
        int done = 0;
        if (MPI_Test(req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
            collective_failed = 1;
            return amp_fail(AMP_EDIST, "%s: MPI failed (a rank died?)", what);
        }
        if (done)
            return AMP_OK;
        if (interrupt_signal()) {
            collective_failed = 1;
            return amp_fail(AMP_EINTR, "interrupted (signal %d) waiting for the other ranks in %s",
                            interrupt_signal(), what);
        }
        if (now_s() > deadline) {
            collective_failed = 1;
            return amp_fail(AMP_EDIST, "rank %d of %d: %s: the other ranks did not take part "
                            "within %g s (--dist-timeout): a rank died or hangs",
                            world.rank, world.size, what, world.timeout_s);
        }
        nanosleep(&nap, NULL);
    }
}

static int allreduce(void *values, size_t n, MPI_Datatype type, MPI_Op op, const char *what)
{
    if (n > (size_t)INT32_MAX)
        return amp_fail(AMP_EFAIL, "%s: %zu elements are too many for one all-reduce", what, n);
    MPI_Request req;
    if (MPI_Iallreduce(MPI_IN_PLACE, values, (int)n, type, op, MPI_COMM_WORLD, &req) !=
        MPI_SUCCESS)
        return amp_fail(AMP_EDIST, "%s: MPI_Iallreduce failed", what);
    return wait_for(&req, what);
}
#endif

int dist_allreduce(void *values, size_t n, enum dist_reduce how, const char *what)
{
#ifdef AMPBENCH_HAVE_MPI
    if (world.size > 1) {
        static const struct { MPI_Datatype type; MPI_Op op; } mpi[] = {
            [DIST_SUM_F64] = { MPI_DOUBLE, MPI_SUM }, [DIST_SUM_F32] = { MPI_FLOAT, MPI_SUM },
            [DIST_MAX_F64] = { MPI_DOUBLE, MPI_MAX }, [DIST_MAX_I32] = { MPI_INT32_T, MPI_MAX },
        };
        return allreduce(values, n, mpi[how].type, mpi[how].op, what);
    }
#endif
    (void)values, (void)n, (void)how, (void)what;
    return AMP_OK;
}

int dist_allgather(void *out, const void *mine, size_t bytes, const char *what)
{
#ifdef AMPBENCH_HAVE_MPI
    if (world.size > 1) {
        if (bytes > (size_t)INT32_MAX)
            return amp_fail(AMP_EFAIL, "%s: %zu bytes are too many for one all-gather", what,
                            bytes);
        MPI_Request req;
        if (MPI_Iallgather(mine, (int)bytes, MPI_BYTE, out, (int)bytes, MPI_BYTE, MPI_COMM_WORLD,
                           &req) != MPI_SUCCESS)
            return amp_fail(AMP_EDIST, "%s: MPI_Iallgather failed", what);
        return wait_for(&req, what);
    }
#endif
    (void)what;
    memcpy(out, mine, bytes);
    return AMP_OK;
}

#ifdef AMPBENCH_HAVE_MPI
/* Every rank's host name, in rank order, into world.hosts. */
static int gather_hosts(void)
{
    char *all = calloc((size_t)world.size, sizeof world.host);
    if (!all)
        return amp_fail(AMP_ENOMEM, "out of host memory");
    int rc = dist_allgather(all, world.host, sizeof world.host, "gathering the ranks' host names");
    size_t used = 0;
    for (int r = 0; r < world.size && rc == AMP_OK && used < sizeof world.hosts; r++)
        used += (size_t)snprintf(world.hosts + used, sizeof world.hosts - used, "%s%s",
                                 r ? "," : "", all + (size_t)r * sizeof world.host);
    free(all);
    return rc;
}
#endif

int dist_send(int to, int tag, const void *bytes, size_t len, const char *what)
{
#ifdef AMPBENCH_HAVE_MPI
    if (len > (size_t)INT32_MAX)
        return amp_fail(AMP_EFAIL, "%s: a message of %zu bytes is too long", what, len);
    MPI_Request req;
    if (MPI_Isend(bytes, (int)len, MPI_BYTE, to, TAG_BASE + tag, MPI_COMM_WORLD, &req) !=
        MPI_SUCCESS)
        return amp_fail(AMP_EDIST, "%s: MPI_Isend failed", what);
    return wait_for(&req, what);
#else
    (void)to, (void)tag, (void)bytes, (void)len;
    return amp_fail(AMP_EFAIL, "%s: no other rank (built without MPI)", what);
#endif
}

int dist_poll(int *from, int *tag)
{
#ifdef AMPBENCH_HAVE_MPI
    int flag = 0;
    MPI_Status st;
    if (world.size > 1 &&
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st) == MPI_SUCCESS &&
        flag && st.MPI_TAG >= TAG_BASE) {
        *from = st.MPI_SOURCE;
        *tag = st.MPI_TAG - TAG_BASE;
        return 1;
    }
#endif
    (void)from, (void)tag;
    return 0;
}

int dist_recv(int from, int tag, void **bytes, size_t *len, const char *what)
{
    *bytes = NULL;
    *len = 0;
#ifdef AMPBENCH_HAVE_MPI
    MPI_Status st;
    if (MPI_Probe(from, TAG_BASE + tag, MPI_COMM_WORLD, &st) != MPI_SUCCESS)
        return amp_fail(AMP_EDIST, "%s: MPI_Probe failed", what);
    int count = 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    *bytes = malloc(count ? (size_t)count : 1);
    if (!*bytes)
        return amp_fail(AMP_ENOMEM, "%s: out of host memory for %d bytes", what, count);
    MPI_Request req;
    if (MPI_Irecv(*bytes, count, MPI_BYTE, from, TAG_BASE + tag, MPI_COMM_WORLD, &req) !=
        MPI_SUCCESS)
        return amp_fail(AMP_EDIST, "%s: MPI_Irecv failed", what);
    *len = (size_t)count;
    return wait_for(&req, what);
#else
    (void)from, (void)tag;
    return amp_fail(AMP_EFAIL, "%s: no other rank (built without MPI)", what);
#endif
}

void dist_fault_stop(uint64_t step)
{
    const enum model_fault f = model_planted_fault();
    if (world.size < 2 || world.rank != world.size - 1 || step != 3)
        return;
    if (f == FAULT_RANK_HANGS)
        raise(SIGSTOP);
    if (f == FAULT_RANK_DIES)
        raise(SIGKILL);
}
