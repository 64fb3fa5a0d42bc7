/* `ampbench info`: version, build options, CPU and threads; the backends compiled in, and what
 * each says of its device (for CUDA: the GPU, driver, CUDA runtime, cuBLAS and cuDNN versions
 * and SM count). `--smoke` then opens every usable backend and runs one tiny conv per dtype and
 * one GEMM per compute type through the backend interface (on CUDA: the cuDNN and cuBLAS handles,
 * cudnnConvolutionForward, cublasGemmEx), checks each result exactly against the host, and prints
 * the backend's describe JSON: the first thing a new machine is asked (scripts/device-check.sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "error.h"
#include "group.h"
#include "idx.h"
#include "lowp.h"
#include "registry.h"
#include "runner.h"
#include "sysinfo.h"

/* ---- --smoke ---- */

/* The operand types of one smoke case: every tensor in dtype, FP32 inputs read under math. */
struct smoke_case {
    enum amp_dtype dtype;
    enum amp_math math;
};
static const struct smoke_case smoke_cases[] = {
    { AMP_F32, AMP_MATH_F32 }, { AMP_F32, AMP_MATH_TF32 }, { AMP_F16, AMP_MATH_F32 },
    { AMP_BF16, AMP_MATH_F32 },
};

static const char *smoke_case_name(const struct smoke_case *k)
{
    if (k->dtype == AMP_F32)
        return k->math == AMP_MATH_TF32 ? "f32 (tf32 math)" : "f32";
    return dtype_name(k->dtype);
}

/* Operands: multiples of 1/4 in [-1, 1] (exact in FP16, BF16 and TF32), so that every product
 * (a multiple of 1/16) and every partial sum of up to 72 of them is exact in FP32 in any order:
 * a correct op returns the exact sum rounded once to the output's dtype, bit for bit. */
static float smoke_value(size_t i, unsigned salt)
{
    return (float)((int)((i * 7u + salt * 3u) % 9u) - 4) * 0.25f;
}

/* x rounded to dtype (round to nearest even), back in FP32. */
static float smoke_round(float x, enum amp_dtype dtype)
{
    return dtype == AMP_F16    ? f16_to_f32(f16_from_f32(x))
           : dtype == AMP_BF16 ? bf16_to_f32(bf16_from_f32(x))
                               : x;
}

/* A tensor of numel elements in dtype holding values[], on the backend. */
static int smoke_tensor(struct backend *be, struct amp_tensor *t, const float *values, size_t numel,
                        enum amp_dtype dtype)
{
    int rc = tensor_alloc(be, t, numel, dtype, MEM_ACTIVATIONS);
    if (rc != AMP_OK || !values)
        return rc;
    void *host = malloc(numel * dtype_size(dtype));
    if (!host)
        return amp_fail(AMP_ENOMEM, "out of host memory");
    for (size_t i = 0; i < numel; i++) {
        if (dtype == AMP_F16)
            ((amp_f16 *)host)[i] = f16_from_f32(values[i]);
        else if (dtype == AMP_BF16)
            ((amp_bf16 *)host)[i] = bf16_from_f32(values[i]);
        else
            ((float *)host)[i] = values[i];
    }
    rc = be->ops->upload(be->ctx, t->data, host, numel * dtype_size(dtype));
    free(host);
    return rc;
}

/* t's elements as FP32 into out[] (after the backend's pending errors, if any). */
static int smoke_read(struct backend *be, float *out, const struct amp_tensor *t)
{
    struct numerics_counts counts;
    int rc = be->ops->read_counts(be->ctx, &counts); /* a failed op's error surfaces here */
    void *host = rc == AMP_OK ? malloc(t->numel * dtype_size(t->dtype)) : NULL;
    if (rc == AMP_OK && !host)
        rc = amp_fail(AMP_ENOMEM, "out of host memory");
    if (rc == AMP_OK)
        rc = be->ops->download(be->ctx, host, t->data, t->numel * dtype_size(t->dtype));
    for (size_t i = 0; rc == AMP_OK && i < t->numel; i++)
        out[i] = t->dtype == AMP_F16    ? f16_to_f32(((const amp_f16 *)host)[i])
                 : t->dtype == AMP_BF16 ? bf16_to_f32(((const amp_bf16 *)host)[i])
                                        : ((const float *)host)[i];
    free(host);
    return rc;
}

/* Prints the case's line; returns 1 when it passed. */
static int smoke_report(const char *backend, const char *op, const struct smoke_case *k, int rc,
                        const float *got, const float *want, size_t n)
{
    size_t bad = 0, first = 0;
    for (size_t i = 0; rc == AMP_OK && i < n; i++)
        if (got[i] != want[i] && !bad++)
            first = i;
    if (rc != AMP_OK)
        printf("smoke %s: %s %s: FAIL (%s)\n", backend, op, smoke_case_name(k), amp_last_error());
    else if (bad)
        printf("smoke %s: %s %s: FAIL (%zu of %zu outputs differ; [%zu] = %g, expected %g)\n",
               backend, op, smoke_case_name(k), bad, n, first, (double)got[first],
               (double)want[first]);
    else
        printf("smoke %s: %s %s: ok (%zu outputs exact)\n", backend, op, smoke_case_name(k), n);
    return rc == AMP_OK && !bad;
}

/* out[1, 8, 4, 4] = bias[8] + a 3x3 conv (stride 1, padding 1) of inp[1, 8, 4, 4]: a shape every
 * backend runs (the CPU reference takes only 3x3, stride 1, padding 1), with C and K multiples of
 * 8 (on CUDA: cuDNN's tensor-op path). */
static int smoke_conv(struct backend *be, const struct smoke_case *k)
{
    enum { C = 8, K = 8, H = 4, W = 4 };
    const struct conv_shape s = { .n = 1, .c_in = C, .h = H, .w = W, .c_out = K, .kernel = 3,
                                  .stride = 1, .pad = 1 };
    enum { NX = C * H * W, NW = K * C * 9, NB = K, NY = K * H * W };
    float x[NX], w[NW], b[NB], want[NY], got[NY];
    for (size_t i = 0; i < NX; i++)
        x[i] = smoke_value(i, 1);
    for (size_t i = 0; i < NW; i++)
        w[i] = smoke_value(i, 2);
    for (size_t i = 0; i < NB; i++)
        b[i] = smoke_value(i, 3);
    for (int o = 0; o < K; o++)
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++) {
                float sum = b[o];
                for (int c = 0; c < C; c++)
                    for (int dy = -1; dy <= 1; dy++)
                        for (int dx = -1; dx <= 1; dx++)
                            if (y + dy >= 0 && y + dy < H && xx + dx >= 0 && xx + dx < W)
                                sum += x[(c * H + y + dy) * W + xx + dx] *
                                       w[((o * C + c) * 3 + dy + 1) * 3 + dx + 1];
                want[(o * H + y) * W + xx] = smoke_round(sum, k->dtype);
            }
    struct amp_tensor tx = { 0 }, tw = { 0 }, tb = { 0 }, ty = { 0 }, ws = { 0 };
    int rc = AMP_OK;
    if (be->ops->conv2d_supports) {
        char why[256];
        if (!be->ops->conv2d_supports(be->ctx, &s, why, sizeof why))
            rc = amp_fail(AMP_EFAIL, "shape refused: %s", why);
    }
    if (rc == AMP_OK)
        rc = smoke_tensor(be, &tx, x, NX, k->dtype);
    if (rc == AMP_OK)
        rc = smoke_tensor(be, &tw, w, NW, k->dtype);
    if (rc == AMP_OK)
        rc = smoke_tensor(be, &tb, b, NB, k->dtype);
    if (rc == AMP_OK)
        rc = smoke_tensor(be, &ty, NULL, NY, k->dtype);
    if (rc == AMP_OK) /* as the model allocates it: FP32 words */
        rc = tensor_alloc(be, &ws,
                          (be->ops->conv2d_workspace(be->ctx, &s, k->dtype, k->math) + 3) / 4 + 1,
                          AMP_F32, MEM_WORKSPACE);
    if (rc == AMP_OK) {
        be->ops->conv2d_forward(be->ctx, &ty, &tx, &tw, &tb, &ws, &s, k->math, 0);
        rc = smoke_read(be, got, &ty);
    }
    const int passed = smoke_report(be->ops->name, "conv2d_forward", k, rc, got, want, NY);
    tensor_free(be, &ws);
    tensor_free(be, &ty);
    tensor_free(be, &tb);
    tensor_free(be, &tw);
    tensor_free(be, &tx);
    return passed;
}

#ifndef AMPBENCH_VERSION
#define AMPBENCH_VERSION "unknown"
#endif

/* out[4, 8] = bias[8] + inp[4, 16] weight[8, 16]^T (on CUDA: one cublasGemmEx, its compute type
 * from the dtype and math). */
static int smoke_linear(struct backend *be, const struct smoke_case *k)
{
    enum { N = 4, K = 16, M = 8 };
    float x[N * K], w[M * K], b[M], want[N * M], got[N * M];
    for (size_t i = 0; i < N * K; i++)
        x[i] = smoke_value(i, 4);
    for (size_t i = 0; i < M * K; i++)
        w[i] = smoke_value(i, 5);
    for (size_t i = 0; i < M; i++)
        b[i] = smoke_value(i, 6);
    for (int r = 0; r < N; r++)
        for (int c = 0; c < M; c++) {
            float sum = b[c];
            for (int i = 0; i < K; i++)
                sum += x[r * K + i] * w[c * K + i];
            want[r * M + c] = smoke_round(sum, k->dtype);
        }
    struct amp_tensor tx = { 0 }, tw = { 0 }, tb = { 0 }, ty = { 0 };
    int rc = smoke_tensor(be, &tx, x, N * K, k->dtype);
    if (rc == AMP_OK)
        rc = smoke_tensor(be, &tw, w, M * K, k->dtype);
    if (rc == AMP_OK)
        rc = smoke_tensor(be, &tb, b, M, k->dtype);
    if (rc == AMP_OK)
        rc = smoke_tensor(be, &ty, NULL, N * M, k->dtype);
    if (rc == AMP_OK) {
        be->ops->linear_forward(be->ctx, &ty, &tx, &tw, &tb, N, K, M, k->math);
        rc = smoke_read(be, got, &ty);
    }
    const int passed = smoke_report(be->ops->name, "linear_forward", k, rc, got, want, N * M);
    tensor_free(be, &ty);
    tensor_free(be, &tb);
    tensor_free(be, &tw);
    tensor_free(be, &tx);
    return passed;
}

/* Every usable backend: open, the cases, describe. Returns the number of failures. */
static int smoke(void)
{
    int failures = 0;
    const struct backend_ops *b;
    for (size_t i = 0; (b = backend_at(i)); i++) {
        char why[256];
        if (b->usable && !b->usable(why, sizeof why)) {
            printf("smoke %s: skipped (no usable device: %s)\n", b->name, why);
            continue;
        }
        struct backend be;
        const struct backend_options opts = { .threads = 1, .graphs = 0 };
        if (backend_open(&be, b->name, &opts) != AMP_OK) {
            printf("smoke %s: FAIL (opening the backend: %s)\n", b->name, amp_last_error());
            failures++;
            continue;
        }
        for (size_t c = 0; c < sizeof smoke_cases / sizeof *smoke_cases; c++) {
            failures += !smoke_conv(&be, &smoke_cases[c]);
            failures += !smoke_linear(&be, &smoke_cases[c]);
        }
        if (be.ops->describe) {
            const int need = be.ops->describe(be.ctx, NULL, 0);
            char *json = need > 0 ? malloc((size_t)need + 1) : NULL;
            if (json) {
                be.ops->describe(be.ctx, json, (size_t)need + 1);
                printf("smoke %s: describe %s\n", b->name, json);
            }
            free(json);
        }
        backend_close(&be);
    }
    printf("smoke: %s\n", failures ? "FAILED" : "passed");
    return failures;
}

static int set_switch(void *ctx, const char *flag, const char *value)
{
    (void)flag, (void)value;
    *(int *)ctx = 1;
    return AMP_OK;
}

int cmd_info(int argc, char **argv, const char *command_line)
{
    (void)command_line;
    int run_smoke = 0;
    const struct cli_extra_opt opts[] = {
        { "--smoke", "", "then, on every usable backend, one tiny conv per dtype and one GEMM per "
          "compute type checked exactly, and the backend's describe JSON (exit 1 on a failure)",
          set_switch },
    };
    const struct cli_extras extras = { opts, 1, &run_smoke };
    const int rc = cli_parse_extras(argc, argv, &extras);
    if (rc < 0) {
        printf("usage: ampbench info [--smoke]\n  prints version, build options, CPU features and "
               "threads\n  --smoke: %s\n", opts[0].help);
        return 0;
    }
    if (rc != AMP_OK)
        return runner_report_error(rc);
    struct host_info h;
    host_info_get(&h);
    const char *data = dataset_default_dir();
    printf("ampbench %s (git %s, %s build)\n", AMPBENCH_VERSION, h.git_revision, h.build_type);
    printf("compiler:     %s\n", h.compiler);
    printf("CUDA backend: %s\n", h.cuda_compiled ? "compiled in" : "not compiled in");
    const struct dist_device_allreduce *dev = dist_device_allreduce();
    printf("distributed:  %s", dist_library()[0] ? "MPI (runs under mpirun/srun)" : "not built with MPI");
    if (dev)
        printf("; %s all-reduce on the %s backend", dev->library, dev->backend);
    printf("\n");
    printf("backends:     ");
    const struct backend_ops *b, *preferred = NULL;
    for (size_t i = 0; (b = backend_at(i)); i++) {
        printf("%s%s", i ? ", " : "", b->name);
        if (b->usable && !preferred)
            preferred = b;
    }
    if (preferred)
        printf(" (--device auto picks %s when a device is usable)", preferred->name);
    printf("\n");
    for (size_t i = 0; (b = backend_at(i)); i++)
        if (b->describe_device) {
            char dev[1024];
            b->describe_device(dev, sizeof dev);
            fputs(dev, stdout);
        }
    printf("CPU:          %s\n", h.cpu_model);
    printf("CPU features: %s\n", h.cpu_features);
    printf("cores:        %d (OpenMP threads by default: %d)\n", h.cores, h.max_threads);
    printf("OS:           %s\n", h.os);
    printf("libraries:    zlib %s, cJSON %s, OpenMP %s\n", h.zlib_release, h.cjson_version,
           h.openmp_version);
    printf("default data: %s\n", data ? data : "(none: apt-get install dataset-fashion-mnist)");
    if (run_smoke) {
        fflush(stdout); /* the info lines first, should a backend crash */
        return smoke() ? AMP_EFAIL : 0;
    }
    return 0;
}
