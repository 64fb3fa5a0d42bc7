/* The CUDA backend: its operation table, lifetime (device, stream, cuBLAS and cuDNN handles),
 * device memory, uploads/downloads, the numerics counters, step capture in CUDA Graphs, step
 * timing with CUDA events, and what `ampbench info` and run.json learn about the GPU.
 *
 * Everything runs on one non-blocking stream. A step (seed_net_step) is bracketed by
 * step_begin/step_end: the first occurrence of a step key (full or partial batch, train or
 * eval, lr and momentum) runs eagerly, which does every lazy set-up (cuDNN plans, scratch
 * buffers, library initialisation); the second is captured into a CUDA Graph (and launched once,
 * since capture does not execute); later ones replay the graph with one cudaGraphLaunch.
 * --no-graph runs every step eagerly. The harness reads results after step_end (download
 * synchronises). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_profiler_api.h>

#include "cuda_internal.h"
#include "cuda_libs.h"
#include "error.h"

/* ---- errors ---- */

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void record(struct cuda_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void record(struct cuda_ctx *c, const char *fmt, ...)
{
    if (!c || c->err)
        return;
    c->err = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
    va_end(ap);
}

int cuda_check_rt(struct cuda_ctx *c, cudaError_t e, const char *expr, const char *file, int line)
{
    if (e == cudaSuccess)
        return 0;
    record(c, "%s:%d: %s failed: %s (%s)%s", base_name(file), line, expr, cudaGetErrorName(e),
           cudaGetErrorString(e),
           e == cudaErrorIllegalAddress || e == cudaErrorLaunchFailure
               ? "; a kernel faulted earlier: rerun with CUDA_LAUNCH_BLOCKING=1 or compute-sanitizer"
               : "");
    return -1;
}

int cuda_check_cublas(struct cuda_ctx *c, cublasStatus_t s, const char *expr, const char *file,
                      int line)
{
    if (s == CUBLAS_STATUS_SUCCESS)
        return 0;
    record(c, "%s:%d: %s failed: %s", base_name(file), line, expr, cublasGetStatusString(s));
    return -1;
}

int cuda_check_cudnn(struct cuda_ctx *c, cudnnStatus_t s, const char *expr, const char *file,
                     int line)
{
    if (s == CUDNN_STATUS_SUCCESS)
        return 0;
    record(c, "%s:%d: %s failed: %s", base_name(file), line, expr, cudnnGetErrorString(s));
    return -1;
}

int cuda_fail(struct cuda_ctx *c, const char *file, int line, const char *fmt, ...)
{
    if (!c || c->err)
        return -1;
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    record(c, "%s:%d: %s", base_name(file), line, msg);
    return -1;
}

/* The recorded failure as the harness's error. */
static int failed(struct cuda_ctx *c)
{
    return amp_fail(AMP_EFAIL, "CUDA backend: %s", c->errmsg);
}

/* Only ops run between step_begin and step_end: an allocation, a synchronisation or a copy from
 * host memory would invalidate the capture or be replayed with stale host bytes. */
static int refused_in_capture(struct cuda_ctx *c, const char *what)
{
    if (!c->capturing)
        return 0;
    CUDA_FAIL(c, "%s while a step is being captured in a CUDA Graph", what);
    return 1;
}

/* ---- helpers shared by the op files ---- */

unsigned cuda_blocks(const struct cuda_ctx *c, size_t n, int threads)
{
    size_t b = (n + (size_t)threads - 1) / (size_t)threads;
    const size_t cap = (size_t)(c->sm_count > 0 ? c->sm_count : 16) * 32;
    if (b > cap)
        b = cap;
    return b ? (unsigned)b : 1u;
}

void cuda_mem_sample(struct cuda_ctx *c)
{
    size_t free_b = 0, total = 0;
    if (cudaMemGetInfo(&free_b, &total) != cudaSuccess) {
        cudaGetLastError();
        return;
    }
    c->mem_free_last = free_b;
    if (free_b < c->mem_free_min)
        c->mem_free_min = free_b;
}

static void graphs_drop(struct cuda_ctx *c)
{
    for (int i = 0; i < CUDA_MAX_GRAPHS; i++)
        if (c->graph[i].exec) {
            cudaGraphExecDestroy(c->graph[i].exec);
            c->graph[i].exec = NULL; /* `seen` stays: recaptured on the next occurrence */
        }
}

void *cuda_scratch(struct cuda_ctx *c, size_t bytes)
{
    if (bytes <= c->scratch_bytes)
        return c->scratch;
    if (c->capturing) {
        CUDA_FAIL(c, "%zu bytes of scratch needed while capturing a CUDA Graph (the warm-up step "
                  "did not need them); rerun with --no-graph",
                  bytes);
        return NULL;
    }
    const size_t want = (bytes + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
    if (CUDA_CHECK(c, cudaStreamSynchronize(c->stream)))
        return NULL;
    if (c->scratch) {
        cudaFree(c->scratch);
        c->internal_bytes -= c->scratch_bytes;
        c->scratch = NULL;
        c->scratch_bytes = 0;
    }
    if (CUDA_CHECK(c, cudaMalloc(&c->scratch, want)))
        return NULL;
    c->scratch_bytes = want;
    c->internal_bytes += want;
    graphs_drop(c); /* captured kernels point at the old buffer */
    cuda_mem_sample(c);
    return c->scratch;
}

/* ---- versions ---- */

struct versions {
    int driver, runtime, cublas[3], cudnn;
    int cudnn_cudart; /* the CUDA runtime version the loaded cuDNN was built with */
};

/* The driver's and runtime's versions, and the libraries' when they are loaded. */
static void versions_get(struct versions *v)
{
    memset(v, 0, sizeof *v);
    if (cudaDriverGetVersion(&v->driver) != cudaSuccess)
        v->driver = 0;
    if (cudaRuntimeGetVersion(&v->runtime) != cudaSuccess)
        v->runtime = 0;
    cudaGetLastError();
    char why[8];
    if (!cuda_libs_load(why, sizeof why))
        return;
    cublasGetProperty(MAJOR_VERSION, &v->cublas[0]);
    cublasGetProperty(MINOR_VERSION, &v->cublas[1]);
    cublasGetProperty(PATCH_LEVEL, &v->cublas[2]);
    v->cudnn = (int)cudnnGetVersion();
    v->cudnn_cudart = (int)cudnnGetCudartVersion();
}

/* The loaded libraries against the headers of the build: cuDNN promises that a program built
 * against 9.z runs on a 9.y runtime only for y >= z (its API compatibility rule: forward
 * compatible within a major version, never backward), cuBLAS likewise. An older runtime (or
 * another major version) gets one warning line; "" when the libraries are at least the headers. */
static void version_warning(char *buf, size_t len, const struct versions *v)
{
    const int cublas = v->cublas[0] * 10000 + v->cublas[1] * 100 + v->cublas[2];
    size_t pos = 0;
    if (len)
        buf[0] = '\0';
    if (v->cudnn / 10000 != CUDNN_MAJOR || v->cudnn < CUDNN_VERSION)
        cuda_append(buf, len, &pos, "cuDNN runtime %d.%d.%d is older than (or another major "
                    "version from) the headers of the build, %d.%d.%d: cuDNN does not promise "
                    "that it runs this binary", v->cudnn / 10000, (v->cudnn % 10000) / 100,
                    v->cudnn % 100, CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL);
    if (v->cublas[0] != CUBLAS_VER_MAJOR || cublas < CUBLAS_VERSION)
        cuda_append(buf, len, &pos, "%scuBLAS runtime %d.%d.%d is older than (or another major "
                    "version from) the headers of the build, %d.%d.%d", pos ? "; " : "",
                    v->cublas[0], v->cublas[1], v->cublas[2], CUBLAS_VER_MAJOR,
                    CUBLAS_VER_MINOR, CUBLAS_VER_PATCH);
}

/* 12040 -> "12.4" */
static void cuda_version_str(char *buf, size_t len, int v)
{
    if (v <= 0)
        snprintf(buf, len, "none");
    else
        snprintf(buf, len, "%d.%d", v / 1000, (v % 1000) / 10);
}

static void cudnn_version_str(char *buf, size_t len, int v)
{
    snprintf(buf, len, "%d.%d.%d", v / 10000, (v % 10000) / 100, v % 100);
}

void cuda_append(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int w = vsnprintf(*pos < len ? buf + *pos : NULL, *pos < len ? len - *pos : 0, fmt, ap);
    va_end(ap);
    if (w > 0)
        *pos += (size_t)w;
}

/* ---- device queries (the table's entries that need no context) ---- */

/* 1 when cuBLAS and cuDNN load (cuda_libs.c) and cudaGetDeviceCount finds a device. */
static int cuda_usable(char *why, size_t len)
{
    if (!cuda_libs_load(why, len))
        return 0;
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    cudaGetLastError();
    if (e != cudaSuccess) {
        snprintf(why, len, "cudaGetDeviceCount: %s", cudaGetErrorString(e));
        return 0;
    }
    if (n <= 0) {
        snprintf(why, len, "cudaGetDeviceCount: 0 devices");
        return 0;
    }
    if (len)
        why[0] = '\0';
    return 1;
}

static int cuda_describe_device(char *buf, size_t len)
{
    struct versions v;
    versions_get(&v);
    char drv[32], rt[32], dnn[32], dnn_rt[32], why[256];
    cuda_version_str(drv, sizeof drv, v.driver);
    cuda_version_str(rt, sizeof rt, v.runtime);
    cudnn_version_str(dnn, sizeof dnn, v.cudnn);
    cuda_version_str(dnn_rt, sizeof dnn_rt, v.cudnn_cudart);
    size_t pos = 0;
    if (len)
        buf[0] = '\0';
    if (cuda_usable(why, sizeof why)) {
        int dev = 0, count = 0;
        cudaDeviceProp prop;
        cudaGetDeviceCount(&count);
        if (cudaGetDevice(&dev) == cudaSuccess &&
            cudaGetDeviceProperties(&prop, dev) == cudaSuccess)
            cuda_append(buf, len, &pos,
                   "CUDA device:  %s (compute capability %d.%d, %d SMs, %.1f GiB)%s\n", prop.name,
                   prop.major, prop.minor, prop.multiProcessorCount,
                   (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0),
                   count > 1 ? " (device 0 of several; CUDA_VISIBLE_DEVICES selects)" : "");
        else
            cuda_append(buf, len, &pos, "CUDA device:  present, properties unavailable\n");
        cudaGetLastError();
    } else {
        cuda_append(buf, len, &pos, "CUDA device:  none (%s)\n", why);
    }
    cuda_append(buf, len, &pos, "CUDA driver:  %s (runtime %s, linked statically)\n", drv, rt);
    char libs[1600];
    if (!cuda_libs_load(libs, sizeof libs)) {
        cuda_append(buf, len, &pos, "CUDA libs:    %s\n", libs);
        return (int)pos;
    }
    cuda_libs_describe(libs, sizeof libs);
    cuda_append(buf, len, &pos, "CUDA libs:    %s\n", libs);
    cuda_append(buf, len, &pos, "cuBLAS:       %d.%d.%d (built against %d.%d.%d)\n", v.cublas[0],
                v.cublas[1], v.cublas[2], CUBLAS_VER_MAJOR, CUBLAS_VER_MINOR, CUBLAS_VER_PATCH);
    cuda_append(buf, len, &pos, "cuDNN:        %s (built against %d.%d.%d; its CUDA runtime %s)\n",
                dnn, CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL, dnn_rt);
    char warn[512];
    version_warning(warn, sizeof warn, &v);
    if (warn[0])
        cuda_append(buf, len, &pos, "warning:      %s\n", warn);
    return (int)pos;
}

static double cuda_peak_flops(int threads, double *fp16_tensor, char *how, size_t len)
{
    (void)threads; /* the device's, not the host's */
    int dev = 0, sms = 0, khz = 0, major = 0, minor = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) {
        cudaGetLastError();
        if (fp16_tensor)
            *fp16_tensor = 0.0;
        snprintf(how, len, "no CUDA device");
        return 0.0;
    }
    /* FP32 lanes per SM by architecture (the CUDA programming guide's throughput table), and
     * dense FP16 tensor-core FLOP per SM per clock (Volta 1024, Ampere 2048 (8.0), Hopper 4096). */
    const int lanes = major >= 8 && !(major == 8 && minor == 0) ? 128 : 64;
    const int tensor = major >= 9 ? 4096 : major == 8 ? (minor == 0 ? 2048 : 1024) : major == 7 ? 1024 : 0;
    const double hz = khz * 1e3;
    const double fp32 = (double)sms * lanes * 2.0 * hz;
    if (fp16_tensor)
        *fp16_tensor = (double)sms * tensor * hz;
    snprintf(how, len, "%d SMs x %d FP32 lanes x 2 (FMA) x %.2f GHz = %.1f TFLOP/s FP32; FP16 tensor "
             "cores %.0f TFLOP/s dense (sm_%d%d)", sms, lanes, hz / 1e9, fp32 / 1e12,
             (double)sms * tensor * hz / 1e12, major, minor);
    return fp32;
}

/* ---- lifetime ---- */

static void cuda_close(void *ctx);

static int setup(struct cuda_ctx *c)
{
    cudaDeviceProp prop;
    if (CUDA_CHECK(c, cudaGetDevice(&c->device)) ||
        CUDA_CHECK(c, cudaGetDeviceProperties(&prop, c->device)) ||
        CUDA_CHECK(c, cudaSetDevice(c->device)) || CUDA_CHECK(c, cudaFree(NULL)))
        return failed(c);
    snprintf(c->device_name, sizeof c->device_name, "%s", prop.name);
    c->sm_count = prop.multiProcessorCount;
    c->cc_major = prop.major;
    c->cc_minor = prop.minor;
    size_t free_b = 0, total = 0;
    if (CUDA_CHECK(c, cudaMemGetInfo(&free_b, &total)))
        return failed(c);
    c->mem_total = total;
    c->mem_free_open = c->mem_free_min = c->mem_free_last = free_b;

    /* 32 MiB of workspace on Hopper and later (cuBLAS's recommendation there), 8 MiB before. */
    c->cublas_ws_bytes = (size_t)(c->cc_major >= 9 ? 32 : 8) << 20;
    if (CUDA_CHECK(c, cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking)) ||
        CUBLAS_CHECK(c, cublasCreate(&c->cublas)) ||
        CUBLAS_CHECK(c, cublasSetStream(c->cublas, c->stream)) ||
        CUDA_CHECK(c, cudaMalloc(&c->cublas_ws, c->cublas_ws_bytes)) ||
        /* A fixed workspace: no allocation inside graph capture, the same algorithms each run. */
        CUBLAS_CHECK(c, cublasSetWorkspace(c->cublas, c->cublas_ws, c->cublas_ws_bytes)) ||
        CUBLAS_CHECK(c, cublasLtCreate(&c->cublaslt)) ||
        CUDA_CHECK(c, cudaMalloc(&c->d_fp8_scales, 2 * CUDA_FP8_OPERANDS * sizeof(float))) ||
        CUDNN_CHECK(c, cudnnCreate(&c->cudnn)) || CUDNN_CHECK(c, cudnnSetStream(c->cudnn, c->stream)) ||
        CUDA_CHECK(c, cudaMalloc(&c->d_counts, sizeof *c->d_counts)) ||
        CUDA_CHECK(c, cudaMemsetAsync(c->d_counts, 0, sizeof *c->d_counts, c->stream)) ||
        CUDA_CHECK(c, cudaMallocHost(&c->pf, sizeof *c->pf)) ||
        CUDA_CHECK(c, cudaEventCreateWithFlags(&c->pf_done, cudaEventDisableTiming)) ||
        CUDA_CHECK(c, cudaEventCreate(&c->ev_start)) || CUDA_CHECK(c, cudaEventCreate(&c->ev_stop)) ||
        CUDA_CHECK(c, cudaEventCreateWithFlags(&c->staging_done[0], cudaEventDisableTiming)) ||
        CUDA_CHECK(c, cudaEventCreateWithFlags(&c->staging_done[1], cudaEventDisableTiming)))
        return failed(c);
    c->internal_bytes = c->cublas_ws_bytes + sizeof *c->d_counts +
                        2 * CUDA_FP8_OPERANDS * sizeof(float);
    cuda_mem_sample(c);
    return AMP_OK;
}

static int cuda_open(void **ctx, const struct backend_options *opts)
{
    char why[256];
    if (!cuda_usable(why, sizeof why))
        return amp_fail(AMP_EINPUT, "--device cuda: no usable CUDA device (%s)", why);
    struct cuda_ctx *c = (struct cuda_ctx *)calloc(1, sizeof *c);
    if (!c)
        return amp_fail(AMP_ENOMEM, "out of host memory opening the CUDA backend");
    c->deterministic = opts->deterministic;
    c->graphs = opts->graphs;
    struct versions v;
    versions_get(&v);
    char warn[512];
    version_warning(warn, sizeof warn, &v);
    if (warn[0])
        fprintf(stderr, "ampbench: warning: %s\n", warn);
    const int rc = setup(c);
    if (rc != AMP_OK) {
        cuda_close(c);
        return rc;
    }
    *ctx = c;
    return AMP_OK;
}

static void cuda_close(void *ctx)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    if (!c)
        return;
    if (!c->err)
        cuda_ew_flush(c);
    if (c->capturing) {
        cudaGraph_t g = NULL;
        if (cudaStreamEndCapture(c->stream, &g) == cudaSuccess && g)
            cudaGraphDestroy(g);
        c->capturing = NULL;
    }
    if (c->stream)
        cudaStreamSynchronize(c->stream);
    graphs_drop(c);
    cuda_conv_plans_destroy(c);
    if (c->cudnn)
        cudnnDestroy(c->cudnn);
    if (c->cublaslt)
        cublasLtDestroy(c->cublaslt);
    if (c->cublas)
        cublasDestroy(c->cublas);
    cudaFree(c->d_fp8_scales);
    cudaFree(c->cublas_ws);
    cudaFree(c->scratch);
    cudaFree(c->d_counts);
    cudaFreeHost(c->pf);
    if (c->pf_done)
        cudaEventDestroy(c->pf_done);
    for (int i = 0; i < 2; i++) {
        cudaFreeHost(c->staging[i]);
        if (c->staging_done[i])
            cudaEventDestroy(c->staging_done[i]);
    }
    if (c->ev_start)
        cudaEventDestroy(c->ev_start);
    if (c->ev_stop)
        cudaEventDestroy(c->ev_stop);
    if (c->timer_start)
        cudaEventDestroy(c->timer_start);
    if (c->timer_stop)
        cudaEventDestroy(c->timer_stop);
    if (c->stream)
        cudaStreamDestroy(c->stream);
    cudaGetLastError();
    free(c);
}

/* ---- memory ---- */

static int cuda_alloc(void *ctx, void **ptr, size_t bytes)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    *ptr = NULL;
    if (c->err || refused_in_capture(c, "an allocation"))
        return failed(c);
    c->dirty = 1; /* a new tensor may reuse a prefetched address */
    if (cudaMalloc(ptr, bytes ? bytes : 1) != cudaSuccess) {
        cudaGetLastError(); /* not sticky: clear it so the next launch check does not see it */
        *ptr = NULL;
        return AMP_ENOMEM;
    }
    /* Deterministic contents, as the CPU backend (no op relies on it). */
    if (bytes && CUDA_CHECK(c, cudaMemsetAsync(*ptr, 0, bytes, c->stream)))
        return failed(c);
    cuda_mem_sample(c);
    return AMP_OK;
}

static void cuda_free(void *ctx, void *ptr)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    if (refused_in_capture(c, "freeing a tensor"))
        return;
    if (!c->err)
        cuda_ew_flush(c); /* a pending job may still read it */
    c->dirty = 1;
    cudaStreamSynchronize(c->stream);
    cuda_fp8_forget(c, ptr);
    cudaFree(ptr);
    cudaGetLastError();
}

static int cuda_upload(void *ctx, void *dst, const void *src, size_t bytes)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    if (c->err || refused_in_capture(c, "an upload"))
        return failed(c);
    cuda_ew_flush(c); /* pending jobs come first in stream order */
    c->dirty = 1;
    if (bytes == 0)
        return c->err ? failed(c) : AMP_OK;
    /* Through pinned staging (fast DMA, and the call returns once the host bytes are copied):
     * two slots, each reused only after its previous copy completed. */
    const int slot = c->staging_next;
    c->staging_next ^= 1;
    if (CUDA_CHECK(c, cudaEventSynchronize(c->staging_done[slot])))
        return failed(c);
    if (bytes > c->staging_bytes[slot]) {
        cudaFreeHost(c->staging[slot]);
        c->staging[slot] = NULL;
        c->staging_bytes[slot] = 0;
        const size_t want = (bytes + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
        if (CUDA_CHECK(c, cudaMallocHost(&c->staging[slot], want)))
            return failed(c);
        c->staging_bytes[slot] = want;
    }
    memcpy(c->staging[slot], src, bytes);
    if (CUDA_CHECK(c, cudaMemcpyAsync(dst, c->staging[slot], bytes, cudaMemcpyHostToDevice,
                                      c->stream)) ||
        CUDA_CHECK(c, cudaEventRecord(c->staging_done[slot], c->stream)))
        return failed(c);
    return AMP_OK;
}

/* Adds the time of the last timed step (its events have completed once the stream synced). */
static void timing_collect(struct cuda_ctx *c)
{
    if (!c->timing_pending)
        return;
    float ms = 0.0f;
    if (cudaEventElapsedTime(&ms, c->ev_start, c->ev_stop) == cudaSuccess) {
        c->step_ms_total += ms;
        c->steps_timed++;
    }
    cudaGetLastError();
    c->timing_pending = 0;
}

/* Waits for the last prefetch; moves its counters snapshot into host_counts. */
static int prefetch_wait(struct cuda_ctx *c)
{
    if (CUDA_CHECK(c, cudaEventSynchronize(c->pf_done)))
        return -1;
    if (c->snap_pending) {
        uint64_t *acc = (uint64_t *)&c->host_counts;
        const uint64_t *add = (const uint64_t *)&c->pf->counts;
        for (size_t i = 0; i < sizeof c->host_counts / sizeof(uint64_t); i++)
            acc[i] += add[i];
        c->snap_pending = 0;
    }
    timing_collect(c);
    return 0;
}

/* Queues the copies of the counters (then zeroed on the device) and, when known, the step's loss
 * stats and scaler state into the pinned prefetch block. */
static int prefetch(struct cuda_ctx *c, const void *stats, const void *scaler)
{
    if (c->snap_pending && prefetch_wait(c)) /* the block is about to be overwritten */
        return -1;
    c->pf_stats = c->pf_scaler = NULL;
    if (CUDA_CHECK(c, cudaMemcpyAsync(&c->pf->counts, c->d_counts, sizeof c->pf->counts,
                                      cudaMemcpyDeviceToHost, c->stream)) ||
        CUDA_CHECK(c, cudaMemsetAsync(c->d_counts, 0, sizeof *c->d_counts, c->stream)))
        return -1;
    c->snap_pending = 1;
    if (stats && CUDA_CHECK(c, cudaMemcpyAsync(c->pf->stats, stats, sizeof c->pf->stats,
                                               cudaMemcpyDeviceToHost, c->stream)))
        return -1;
    if (scaler && CUDA_CHECK(c, cudaMemcpyAsync(&c->pf->scaler, scaler, sizeof c->pf->scaler,
                                                cudaMemcpyDeviceToHost, c->stream)))
        return -1;
    if (CUDA_CHECK(c, cudaEventRecord(c->pf_done, c->stream)))
        return -1;
    c->pf_stats = stats;
    c->pf_scaler = scaler;
    c->dirty = 0;
    return 0;
}

static int cuda_download(void *ctx, void *dst, const void *src, size_t bytes)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    if (c->err || refused_in_capture(c, "a download"))
        return failed(c);
    cuda_ew_flush(c);
    /* Right after a step: served from the step-end prefetch when nothing ran since. */
    if (!c->dirty && bytes && src &&
        ((src == c->pf_stats && bytes <= sizeof c->pf->stats) ||
         (src == c->pf_scaler && bytes <= sizeof c->pf->scaler))) {
        if (prefetch_wait(c))
            return failed(c);
        memcpy(dst, src == c->pf_stats ? (const void *)c->pf->stats : (const void *)&c->pf->scaler,
               bytes);
        return AMP_OK;
    }
    if (bytes && CUDA_CHECK(c, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream)))
        return failed(c);
    if (CUDA_CHECK(c, cudaStreamSynchronize(c->stream)))
        return failed(c);
    timing_collect(c);
    return AMP_OK;
}

static void cuda_zero(void *ctx, struct amp_tensor *t)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    CUDA_OP_ENTER(c);
    const size_t bytes = t->numel * dtype_size(t->dtype);
    if (bytes)
        CUDA_CHECK(c, cudaMemsetAsync(t->data, 0, bytes, c->stream));
}

static int cuda_threads(void *ctx)
{
    (void)ctx;
    return 1; /* host threads driving the GPU */
}

/* ---- numerics counters ---- */

static int cuda_read_counts(void *ctx, struct numerics_counts *out)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    if (c->err || refused_in_capture(c, "reading the counters"))
        return failed(c);
    cuda_ew_flush(c);
    /* After a step with nothing issued since, its prefetch holds every count: no round trip. */
    if (c->dirty && prefetch(c, NULL, NULL))
        return failed(c);
    if (prefetch_wait(c))
        return failed(c);
    *out = c->host_counts;
    memset(&c->host_counts, 0, sizeof c->host_counts);
    /* Device memory changes with allocations (sampled there) and with the libraries' lazy
     * set-up in the first steps; a driver query per step would cost more than it tells. */
    if (c->counts_reads++ % 64 == 0)
        cuda_mem_sample(c);
    return AMP_OK;
}

/* ---- step capture ---- */

static struct graph_entry *graph_for(struct cuda_ctx *c, uint64_t key)
{
    struct graph_entry *free_slot = NULL;
    for (int i = 0; i < CUDA_MAX_GRAPHS; i++) {
        if (c->graph[i].used && c->graph[i].key == key)
            return &c->graph[i];
        if (!c->graph[i].used && !free_slot)
            free_slot = &c->graph[i];
    }
    if (free_slot) {
        memset(free_slot, 0, sizeof *free_slot);
        free_slot->used = 1;
        free_slot->key = key;
    }
    return free_slot; /* NULL when the table is full: such steps run eagerly */
}

static int cuda_step_begin(void *ctx, uint64_t key)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    if (c->err)
        return 0;
    cuda_ew_flush(c); /* work issued before the step must not be captured into it */
    timing_collect(c);
    c->dirty = 1;
    c->step_stats = c->step_scaler = NULL;
    if (CUDA_CHECK(c, cudaEventRecord(c->ev_start, c->stream)))
        return 0;
    struct graph_entry *g = c->graphs ? graph_for(c, key) : NULL;
    if (g && g->exec) {
        if (CUDA_CHECK(c, cudaGraphLaunch(g->exec, c->stream)) ||
            CUDA_CHECK(c, cudaEventRecord(c->ev_stop, c->stream)))
            return 1; /* the error surfaces at the next download */
        c->replays++;
        c->timing_pending = 1;
        prefetch(c, g->stats, g->scaler);
        return 1;
    }
    /* Timed: replays and, without graphs, eager steps; not a graph's warm-up (lazy set-up) or
     * its capture (host-side instantiation), which would skew the mean of a short run. */
    c->timing_open = g == NULL;
    if (!g || !g->seen) {
        if (g)
            g->seen = 1; /* warm-up: eager, sets up everything the capture needs */
        c->eager_steps++;
        return 0;
    }
    if (CUDA_CHECK(c, cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal)))
        return 0;
    c->capturing = g;
    return 0;
}

static void cuda_step_end(void *ctx)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    if (!c->err)
        cuda_ew_flush(c);
    if (c->capturing) {
        struct graph_entry *g = c->capturing;
        c->capturing = NULL;
        cudaGraph_t graph = NULL;
        const cudaError_t e = cudaStreamEndCapture(c->stream, &graph);
        if (e != cudaSuccess || c->err) {
            CUDA_CHECK(c, e);
            if (graph)
                cudaGraphDestroy(graph);
            cudaGetLastError();
            /* The step was recorded, not run: this run cannot continue correctly. */
            record(c, "capturing the step in a CUDA Graph failed; rerun with --no-graph");
            return;
        }
        const int bad = CUDA_CHECK(c, cudaGraphInstantiate(&g->exec, graph, 0));
        cudaGraphDestroy(graph);
        if (bad) {
            g->exec = NULL;
            return;
        }
        if (CUDA_CHECK(c, cudaGraphLaunch(g->exec, c->stream)))
            return;
        g->stats = c->step_stats;
        g->scaler = c->step_scaler;
        c->captures++;
    }
    if (c->timing_open && !c->err) {
        CUDA_CHECK(c, cudaEventRecord(c->ev_stop, c->stream));
        c->timing_pending = 1;
    }
    c->timing_open = 0;
    if (!c->err)
        prefetch(c, c->step_stats, c->step_scaler);
}

/* ---- description (run.json) ---- */

/* --profile-steps: the capture range of `nsys profile --capture-range=cudaProfilerApi`. */
static void cuda_profile_range(void *ctx, int start)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    if (refused_in_capture(c, "a profiling range") ||
        CUDA_CHECK(c, cudaStreamSynchronize(c->stream)))
        return;
    if (start)
        CUDA_CHECK(c, cudaProfilerStart());
    else
        CUDA_CHECK(c, cudaProfilerStop());
}

/* Device time of the ops issued between timer(ctx, 1, NULL) and timer(ctx, 0, &ms): CUDA events
 * on the backend's stream (the micro-benchmarks' UseManualTime). */
static int cuda_timer(void *ctx, int start, float *ms)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    if (refused_in_capture(c, "the timer"))
        return failed(c);
    if (!c->timer_start && (CUDA_CHECK(c, cudaEventCreate(&c->timer_start)) ||
                            CUDA_CHECK(c, cudaEventCreate(&c->timer_stop))))
        return failed(c);
    if (start)
        return CUDA_CHECK(c, cudaEventRecord(c->timer_start, c->stream)) ? failed(c) : AMP_OK;
    if (CUDA_CHECK(c, cudaEventRecord(c->timer_stop, c->stream)) ||
        CUDA_CHECK(c, cudaEventSynchronize(c->timer_stop)) ||
        CUDA_CHECK(c, cudaEventElapsedTime(ms, c->timer_start, c->timer_stop)))
        return failed(c);
    return AMP_OK;
}

static int cuda_describe(void *ctx, char *buf, size_t len)
{
    struct cuda_ctx *c = (struct cuda_ctx *)ctx;
    struct versions v;
    versions_get(&v);
    char drv[32], rt[32], dnn[32], dnn_rt[32], name[256], warn[512];
    cuda_version_str(drv, sizeof drv, v.driver);
    cuda_version_str(rt, sizeof rt, v.runtime);
    cudnn_version_str(dnn, sizeof dnn, v.cudnn);
    cuda_version_str(dnn_rt, sizeof dnn_rt, v.cudnn_cudart);
    version_warning(warn, sizeof warn, &v);
    char libs[1600];
    snprintf(name, sizeof name, "%s", c->device_name);
    cuda_libs_describe(libs, sizeof libs);
    for (char *s : { name, libs })
        for (char *p = s; *p; p++)
            if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
                *p = '_';
    cuda_mem_sample(c);
    size_t pos = 0;
    if (len)
        buf[0] = '\0';
    cuda_append(buf, len, &pos,
           "{\"device\": \"%s\", \"compute_capability\": \"%d.%d\", \"sm_count\": %d, "
           "\"driver\": \"%s\", \"runtime\": \"%s\", \"cublas\": \"%d.%d.%d\", \"cudnn\": \"%s\", "
           "\"cublas_built\": \"%d.%d.%d\", \"cudnn_built\": \"%d.%d.%d\", \"cudnn_cudart\": \"%s\", "
           "\"version_warning\": \"%s\", \"libraries\": \"%s\", "
           "\"deterministic\": %s, \"graphs\": %s, \"graph_captures\": %llu, "
           "\"graph_replays\": %llu, \"eager_steps\": %llu, \"steps_timed\": %llu, "
           "\"gpu_step_ms_mean\": %.6f, \"fp8_gemms\": %llu, ",
           name, c->cc_major, c->cc_minor, c->sm_count, drv, rt, v.cublas[0], v.cublas[1],
           v.cublas[2], dnn, CUBLAS_VER_MAJOR, CUBLAS_VER_MINOR, CUBLAS_VER_PATCH, CUDNN_MAJOR,
           CUDNN_MINOR, CUDNN_PATCHLEVEL, dnn_rt, warn, libs, c->deterministic ? "true" : "false", c->graphs ? "true" : "false",
           c->captures, c->replays, c->eager_steps, c->steps_timed,
           c->steps_timed ? c->step_ms_total / (double)c->steps_timed : 0.0, c->fp8_gemms);
    cuda_append(buf, len, &pos,
           "\"memory\": {\"total\": %zu, \"free_at_open\": %zu, \"free_now\": %zu, "
           "\"peak_used_since_open\": %zu, \"backend_internal\": %zu}, \"conv\": ",
           c->mem_total, c->mem_free_open, c->mem_free_last,
           c->mem_free_open > c->mem_free_min ? c->mem_free_open - c->mem_free_min : 0,
           c->internal_bytes);
    cuda_conv_describe(c, buf, len, &pos);
    cuda_append(buf, len, &pos, "%s", c->err ? ", \"error\": true}" : "}");
    return (int)pos;
}

/* ---- the table ---- */

/* Declared (extern "C") in cuda_internal.h. C++20 designated initializers (in declaration
 * order). */
const struct backend_ops cuda_backend_ops = {
    .name = "cuda",
    .usable = cuda_usable,
    .describe_device = cuda_describe_device,
    .peak_flops = cuda_peak_flops,
    .open = cuda_open,
    .close = cuda_close,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .upload = cuda_upload,
    .download = cuda_download,
    .zero = cuda_zero,
    .threads = cuda_threads,
    .step_begin = cuda_step_begin,
    .step_end = cuda_step_end,
    .read_counts = cuda_read_counts,
    .cast = cuda_cast,
    .conv2d_supports = cuda_conv2d_supports,
    .conv2d_workspace = cuda_conv2d_workspace,
    .conv2d_forward = cuda_conv2d_forward,
    .conv2d_backward = cuda_conv2d_backward,
    .relu_forward = cuda_relu_forward,
    .relu_backward = cuda_relu_backward,
    .linear_forward = cuda_linear_forward,
    .linear_backward = cuda_linear_backward,
    .softmax_xent = cuda_softmax_xent,
    .maxpool_forward = cuda_maxpool_forward,
    .maxpool_backward = cuda_maxpool_backward,
    .avgpool_forward = cuda_avgpool_forward,
    .avgpool_backward = cuda_avgpool_backward,
    .batchnorm_forward = cuda_batchnorm_forward,
    .batchnorm_backward = cuda_batchnorm_backward,
    .gather_batch = cuda_gather_batch,
    .add = cuda_add,
    .unscale = cuda_unscale,
    .scaler_update = cuda_scaler_update,
    .sgd_momentum = cuda_sgd_momentum,
    .fp8_quantize = cuda_fp8_quantize,
    .describe = cuda_describe,
    .profile_range = cuda_profile_range,
    .timer = cuda_timer,
};
