/* The CPU emulation's runtime (cuemu_runtime.cpp) does what cuemu.h and docs/CUDA.md promise:
 * block reductions with shuffles and __syncthreads give the right sums whichever order blocks
 * run in; __syncthreads_or is the block's OR; work waits for the host to synchronize (a pinned
 * result read early is stale), a pageable source is taken at the call; fresh memory reads as NaN;
 * capture records without running, graphs replay, illegal calls in capture fail and invalidate
 * it; a bad launch configuration is reported by cudaGetLastError. And, in child processes, that
 * it stops with a diagnosis: a barrier in divergent code, a shuffle with exited lanes, the host
 * touching device memory, a kernel writing past an allocation. Compiled with the cuemu.h prelude
 * (kernels here are written as in kernels/ .cu files) and linked with the runtime. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "check.h"

/* ---- kernels ---- */

__global__ void block_sums(const float *x, float *out, unsigned n)
{
    __shared__ float red[32];
    float v = 0.0f;
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
        v += x[i];
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
    if ((threadIdx.x & 31u) == 0)
        red[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        float t = 0.0f;
        for (unsigned w = 0; w < blockDim.x / 32; w++)
            t += red[w];
        out[blockIdx.x] = t;
    }
}

__global__ void any_negative(const float *x, int *out)
{
    const int found = __syncthreads_or(x[blockIdx.x * blockDim.x + threadIdx.x] < 0.0f);
    if (threadIdx.x == 0)
        out[blockIdx.x] = found;
}

__global__ void add_one(int *p)
{
    p[threadIdx.x] += 1;
}

__global__ void divergent_barrier(int *p)
{
    if (threadIdx.x < 16)
        __syncthreads();
    p[threadIdx.x] = 1;
}

__global__ void shuffle_after_exit(float *p)
{
    if (threadIdx.x == 3)
        return;
    p[threadIdx.x] = __shfl_xor_sync(0xFFFFFFFFu, 1.0f, 1);
}

__global__ void write_past_end(float *p, unsigned n)
{
    p[n + threadIdx.x] = 1.0f; /* just past the end */
}

/* ---- helpers ---- */

template <typename T> static T *dev(size_t n)
{
    void *p = nullptr;
    if (cudaMalloc(&p, n * sizeof(T)) != cudaSuccess) {
        printf("cudaMalloc failed\n");
        exit(1);
    }
    return static_cast<T *>(p);
}

/* Runs f in a child; returns its stderr, with *signalled set when it died of a signal. */
template <typename F> static std::string in_child(F f, bool *signalled)
{
    int fds[2];
    if (pipe(fds) != 0)
        return "";
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        f();
        _exit(0);
    }
    close(fds[1]);
    std::string err;
    char buf[512];
    ssize_t k;
    while ((k = read(fds[0], buf, sizeof buf)) > 0)
        err.append(buf, (size_t)k);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    *signalled = WIFSIGNALED(status);
    return err;
}

/* ---- the tests ---- */

static void test_reductions(cudaStream_t s)
{
    const unsigned n = 100000, blocks = 7, threads = 256;
    float *h = (float *)malloc(n * sizeof(float)), sums[blocks];
    for (unsigned i = 0; i < n; i++)
        h[i] = (float)(i % 3); /* small integers: exact in any order */
    float *x = dev<float>(n), *out = dev<float>(blocks);
    cudaMemcpy(x, h, n * sizeof(float), cudaMemcpyHostToDevice);
    for (int launch = 0; launch < 2; launch++) { /* forwards, then backwards */
        cuemu_launch(s, dim3(blocks), dim3(threads), "block_sums", block_sums, x, out, n);
        cudaMemcpy(sums, out, sizeof sums, cudaMemcpyDeviceToHost);
        for (unsigned b = 0; b < blocks; b++) {
            double want = 0.0;
            for (unsigned i = b * threads; i < n; i += blocks * threads)
                for (unsigned t = 0; t < threads && i + t < n; t++)
                    want += h[i + t];
            CHECK(sums[b] == (float)want, "launch %d block %u: sum %g, want %g", launch, b,
                  (double)sums[b], want);
        }
    }
    h[5 * 64 + 17] = -1.0f;
    int *flags = dev<int>(8), got[8];
    cudaMemcpy(x, h, 8 * 64 * sizeof(float), cudaMemcpyHostToDevice);
    cuemu_launch(s, dim3(8), dim3(64), "any_negative", any_negative, (const float *)x, flags);
    cudaMemcpy(got, flags, sizeof got, cudaMemcpyDeviceToHost);
    for (int b = 0; b < 8; b++)
        CHECK(got[b] == (b == 5), "__syncthreads_or in block %d: %d", b, got[b]);
    cudaFree(x);
    cudaFree(out);
    cudaFree(flags);
    free(h);
}

static void test_streams(cudaStream_t s)
{
    int *d = dev<int>(32), *pinned = nullptr, fresh = 0;
    cudaMemcpy(&fresh, d, sizeof fresh, cudaMemcpyDeviceToHost);
    CHECK(fresh == -1, "fresh device memory reads %#x, want the NaN pattern 0xffffffff", fresh);
    cudaMallocHost((void **)&pinned, 32 * sizeof(int));
    cudaMemsetAsync(d, 0, 32 * sizeof(int), s);
    cuemu_launch(s, dim3(1), dim3(32), "add_one", add_one, d);
    pinned[0] = 7;
    cudaMemcpyAsync(pinned, d, 32 * sizeof(int), cudaMemcpyDeviceToHost, s);
    CHECK(pinned[0] == 7, "an async copy to pinned memory landed before the host synchronized");
    cudaStreamSynchronize(s);
    CHECK(pinned[0] == 1 && pinned[31] == 1, "after the synchronization: %d %d", pinned[0],
          pinned[31]);
    int pageable[32];
    for (int i = 0; i < 32; i++)
        pageable[i] = 40;
    cudaMemcpyAsync(d, pageable, sizeof pageable, cudaMemcpyHostToDevice, s);
    pageable[0] = 99; /* the copy took its source at the call */
    cudaMemcpy(pageable, d, sizeof pageable, cudaMemcpyDeviceToHost);
    CHECK(pageable[0] == 40, "a pageable source was read after the call returned: %d", pageable[0]);
    cuemu_launch(s, dim3(1), dim3(2048), "add_one", add_one, d);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration,
          "a 2048-thread block is not reported as an invalid configuration");
    CHECK(cudaGetLastError() == cudaSuccess, "cudaGetLastError does not reset");
    cudaFreeHost(pinned);
    cudaFree(d);
}

static void test_graphs(cudaStream_t s)
{
    int *d = dev<int>(32), h[32];
    cudaMemsetAsync(d, 0, sizeof h, s);
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess,
          "begin capture");
    cuemu_launch(s, dim3(1), dim3(32), "add_one", add_one, d);
    cudaGraph_t g = nullptr;
    CHECK(cudaStreamEndCapture(s, &g) == cudaSuccess && g, "end capture");
    cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost);
    CHECK(h[0] == 0, "capture ran the kernel (%d)", h[0]);
    cudaGraphExec_t e = nullptr;
    CHECK(cudaGraphInstantiate(&e, g, 0) == cudaSuccess, "instantiate");
    cudaGraphLaunch(e, s);
    cudaGraphLaunch(e, s);
    cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost);
    CHECK(h[0] == 2 && h[31] == 2, "two replays gave %d, want 2", h[0]);
    cudaGraphExecDestroy(e);
    cudaGraphDestroy(g);

    cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
    void *p = nullptr;
    CHECK(cudaMalloc(&p, 64) == cudaErrorStreamCaptureUnsupported,
          "cudaMalloc is allowed during a thread-local capture");
    CHECK(cudaStreamSynchronize(s) == cudaErrorStreamCaptureUnsupported,
          "cudaStreamSynchronize is allowed during a capture");
    g = nullptr;
    CHECK(cudaStreamEndCapture(s, &g) == cudaErrorStreamCaptureInvalidated && !g,
          "a capture with an illegal call is not invalidated");
    cudaGetLastError();
    cudaFree(d);
}

static void test_diagnoses(cudaStream_t s)
{
    int *d = dev<int>(64);
    float *f = dev<float>(64);
    bool sig = false;
    std::string err = in_child(
        [&] {
            cuemu_launch(s, dim3(1), dim3(64), "divergent_barrier", divergent_barrier, d);
            cudaStreamSynchronize(s);
        },
        &sig);
    CHECK(sig && err.find("divergent_barrier") != std::string::npos &&
              err.find("__syncthreads") != std::string::npos,
          "a barrier in divergent code: %s", err.c_str());
    err = in_child(
        [&] {
            cuemu_launch(s, dim3(1), dim3(32), "shuffle_after_exit", shuffle_after_exit, f);
            cudaStreamSynchronize(s);
        },
        &sig);
    CHECK(sig && err.find("exited") != std::string::npos, "a shuffle with an exited lane: %s",
          err.c_str());
    err = in_child([&] { printf("%d\n", d[0]); }, &sig);
    CHECK(sig && err.find("the host touched device memory") != std::string::npos,
          "the host reading device memory: %s", err.c_str());
    err = in_child(
        [&] {
            cuemu_launch(s, dim3(1), dim3(32), "write_past_end", write_past_end, f, 64u);
            cudaStreamSynchronize(s);
        },
        &sig);
    CHECK(sig && err.find("write_past_end") != std::string::npos &&
              err.find("past the end of a device allocation") != std::string::npos,
          "a kernel writing past an allocation: %s", err.c_str());
    cudaFree(d);
    cudaFree(f);
}

int main(void)
{
    cudaStream_t s;
    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    test_reductions(s);
    test_streams(s);
    test_graphs(s);
    test_diagnoses(s);
    cudaStreamDestroy(s);
    return check_summary();
}
