/* The data-parallel step's collectives (data_parallel.h). The gradients travel through the host
 * (downloaded, packed into one buffer, reduced, uploaded: on the CPU backend a copy), or, for an
 * FP32 all-reduce on the backend a device all-reduce serves (NCCL on cuda), in its memory. */
#include "data_parallel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "faults.h"
#include "group.h"
#include "lowp.h"
#include "scaler.h"

/* The test-only fault rank-inf (faults.h) of the last rank, at its step-th all-reduce. */
static int inf_planted(uint64_t step)
{
    const struct dist_group *g = dist_world();
    const enum model_fault f = model_planted_fault();
    return g->size > 1 && g->rank == g->size - 1 &&
           (f == FAULT_RANK_INF || f == FAULT_RANK_INF_UNREDUCED) && (step == 3 || step == 8);
}

static int grow(struct data_parallel *dp, size_t n)
{
    if (n <= dp->cap)
        return AMP_OK;
    const size_t ranks = (size_t)dist_world()->size;
    free(dp->host);
    free(dp->wire);
    free(dp->gathered);
    dp->host = malloc(n * sizeof *dp->host);
    dp->wire = malloc((n + 4) * sizeof *dp->wire);
    dp->gathered = malloc(ranks * (n + 4) * sizeof *dp->gathered);
    dp->cap = dp->host && dp->wire && dp->gathered ? n : 0;
    return dp->cap ? AMP_OK : amp_fail(AMP_ENOMEM, "out of host memory for the all-reduce");
}

/* 16-bit wire words (BF16 or FP16) to FP32 and back, rounded to nearest even. */
static float widen(enum allreduce_dtype d, uint16_t h)
{
    return d == ALLREDUCE_F16 ? f16_to_f32(h) : bf16_to_f32(h);
}

static uint16_t narrow(enum allreduce_dtype d, float x)
{
    return d == ALLREDUCE_F16 ? f16_from_f32(x) : bf16_from_f32(x);
}

/* BF16/FP16: every rank's share rounded to the wire format (counting what overflowed), gathered,
 * and summed in rank order, each partial sum rounded to the wire format (as a ring all-reduce
 * in that type adds, hop by hop): the same sum, bit for bit, on every rank. Elements finite on
 * the way in and inf after the compression or a sum count as overflowed. */
static int reduce_compressed(struct data_parallel *dp, size_t n)
{
    const enum allreduce_dtype d = dp->dtype;
    const int ranks = dist_world()->size;
    struct lowp_counts counts = { 0 };
    if (d == ALLREDUCE_F16)
        f16_from_f32_array(dp->wire, dp->host, n, &counts);
    else
        bf16_from_f32_array(dp->wire, dp->host, n, &counts);
    memcpy(dp->wire + n, &counts.overflow, sizeof counts.overflow); /* 4 words: the count */
    int rc = dist_allgather(dp->gathered, dp->wire, (n + 4) * sizeof *dp->wire,
                            "the gradient all-reduce");
    if (rc != AMP_OK)
        return rc;
    uint64_t overflow = 0;
    for (int r = 0; r < ranks; r++) {
        uint64_t part;
        memcpy(&part, dp->gathered + (size_t)r * (n + 4) + n, sizeof part);
        overflow += part;
    }
    for (size_t i = 0; i < n; i++) {
        uint16_t acc = dp->gathered[i];
        for (int r = 1; r < ranks; r++) {
            const float a = widen(d, acc), b = widen(d, dp->gathered[(size_t)r * (n + 4) + i]);
            acc = narrow(d, a + b);
            overflow += isfinite(a) && isfinite(b) && !isfinite(widen(d, acc));
        }
        dp->host[i] = widen(d, acc);
    }
    dp->overflow += overflow;
    return AMP_OK;
}

/* AMP_EFAIL unless values[n <= 8] are the same on every rank. */
static int agree(struct data_parallel *dp, const double *values, size_t n, const char *what)
{
    double span[2 * 8];
    for (size_t i = 0; i < n; i++) {
        span[2 * i] = values[i];
        span[2 * i + 1] = -values[i];
    }
    int rc = dist_allreduce(span, 2 * n, DIST_MAX_F64, what);
    for (size_t i = 0; i < n && rc == AMP_OK; i++)
        if (span[2 * i] != -span[2 * i + 1])
            rc = amp_fail(AMP_EFAIL, "the replicas disagree on %s: %.17g on one rank, %.17g on "
                          "another: they no longer train the same model", what,
                          -span[2 * i + 1], span[2 * i]);
    if (rc != AMP_OK)
        dp->failed = rc;
    return rc;
}

/* The device all-reduce to use: an FP32 all-reduce of FP32 gradients on the backend it serves. */
static const struct dist_device_allreduce *on_device(struct data_parallel *dp,
                                                    const struct backend_ops *ops,
                                                    struct amp_tensor *const *grads, size_t n)
{
    const struct dist_device_allreduce *dev = dist_device_allreduce();
    if (!dev || dp->dtype != ALLREDUCE_F32 || strcmp(ops->name, dev->backend) != 0)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (grads[i]->dtype != AMP_F32)
            return NULL;
    dp->library = dev->library;
    return dev;
}

/* rank-inf on the device path: the first element of g set to inf. */
static int upload_inf(const struct backend_ops *ops, void *ctx, struct amp_tensor *g)
{
    const float inf = INFINITY;
    return ops->upload(ctx, g->data, &inf, sizeof inf);
}

static int gradients(void *user, const struct backend_ops *ops, void *ctx,
                     struct amp_tensor *const *grads, size_t n, uint32_t samples)
{
    struct data_parallel *dp = user;
    if (dp->failed)
        return dp->failed;
    dist_fault_stop(++dp->steps);
    double total = samples;
    size_t numel = 0;
    for (size_t i = 0; i < n; i++)
        numel += grads[i]->numel;
    int rc = dist_allreduce(&total, 1, DIST_SUM_F64, "the batch's sample count");
    if (rc == AMP_OK)
        rc = grow(dp, numel);
    const float share = (float)(samples / total);
    const struct dist_device_allreduce *dev = on_device(dp, ops, grads, n);
    if (dev) { /* NCCL: in the backend's memory, the share applied by the reduction */
        rc = rc == AMP_OK ? dev->sum_f32(grads, n, share, "the gradient all-reduce") : rc;
        if (rc == AMP_OK && inf_planted(dp->steps))
            rc = upload_inf(ops, ctx, grads[0]);
        if (rc != AMP_OK)
            dp->failed = rc;
        return rc;
    }
    for (size_t i = 0, at = 0; i < n && rc == AMP_OK; at += grads[i]->numel, i++)
        rc = tensor_download_f32(ops, ctx, grads[i], dp->host + at);
    for (size_t i = 0; i < numel && rc == AMP_OK; i++)
        dp->host[i] *= share;
    if (rc == AMP_OK)
        rc = dp->dtype == ALLREDUCE_F32 ? dist_allreduce(dp->host, numel, DIST_SUM_F32,
                                                         "the gradient all-reduce")
                                        : reduce_compressed(dp, numel);
    if (rc == AMP_OK && inf_planted(dp->steps))
        dp->host[0] = INFINITY; /* after the all-reduce: on this rank only */
    for (size_t i = 0, at = 0; i < n && rc == AMP_OK; at += grads[i]->numel, i++)
        rc = tensor_upload_f32(ops, ctx, grads[i], dp->host + at, grads[i]->numel);
    if (rc != AMP_OK)
        dp->failed = rc;
    return rc;
}

static int found_inf(void *user, const struct backend_ops *ops, void *ctx,
                     struct amp_tensor *scaler)
{
    struct data_parallel *dp = user;
    if (dp->failed)
        return dp->failed;
    if (model_planted_fault() == FAULT_RANK_INF_UNREDUCED)
        return AMP_OK;
    struct loss_scaler s;
    int rc = ops->download(ctx, &s, scaler->data, sizeof s);
    if (rc == AMP_OK)
        rc = dist_allreduce(&s.found_inf, 1, DIST_MAX_I32, "the found-inf reduction");
    if (rc == AMP_OK)
        rc = ops->upload(ctx, scaler->data, &s, sizeof s);
    const double state[] = { s.scale, s.growth_tracker };
    if (rc == AMP_OK)
        rc = agree(dp, state, 2, "the loss scaler's state");
    if (rc != AMP_OK)
        dp->failed = rc;
    return rc;
}

static int sum(void *user, double *values, size_t n)
{
    struct data_parallel *dp = user;
    if (dp->failed)
        return dp->failed;
    const int rc = dist_allreduce(values, n, DIST_SUM_F64, "a sum over the replicas");
    if (rc != AMP_OK)
        dp->failed = rc;
    return rc;
}

/* FNV-1a over the bits of every parameter, as a double (53 bits of it). */
static int check(void *user, struct model *m)
{
    struct data_parallel *dp = user;
    if (dp->failed)
        return dp->failed;
    uint64_t h = 0xcbf29ce484222325ull;
    int rc = AMP_OK;
    for (size_t i = 0; i < model_nparams(m) && rc == AMP_OK; i++) {
        struct model_param p;
        model_param(m, i, &p);
        rc = grow(dp, p.numel);
        if (rc == AMP_OK)
            rc = model_read(m, p.stored, dp->host);
        const unsigned char *bytes = (const unsigned char *)dp->host;
        for (size_t k = 0; k < p.numel * sizeof(float) && rc == AMP_OK; k++) {
            h ^= bytes[k];
            h *= 0x100000001b3ull;
        }
    }
    const double sum = (double)(h >> 11);
    if (rc != AMP_OK)
        dp->failed = rc;
    return rc == AMP_OK ? agree(dp, &sum, 1, "the parameters' checksum") : rc;
}

static uint64_t overflow(void *user)
{
    return ((const struct data_parallel *)user)->overflow;
}

void data_parallel_open(struct data_parallel *dp, const struct amp_config *c)
{
    memset(dp, 0, sizeof *dp);
    dp->dtype = c->allreduce_dtype;
    dp->library = "mpi";
    dp->sync = (struct model_sync){
        .rank = (uint32_t)dist_world()->rank, .replicas = (uint32_t)dist_world()->size,
        .sync_bn = c->sync_bn, .gradients = gradients, .found_inf = found_inf, .sum = sum,
        .check = check, .overflow = overflow, .user = dp,
    };
}

void data_parallel_close(struct data_parallel *dp)
{
    free(dp->host);
    free(dp->wire);
    free(dp->gathered);
    memset(dp, 0, sizeof *dp);
}
