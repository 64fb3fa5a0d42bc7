/* Error checking for the CUDA backend: every CUDA runtime, cuBLAS and cuDNN call and every kernel
 * launch goes through one of these macros, which record the first failure in the backend context
 * (expression, file, line, the library's error string) and evaluate to nonzero on failure. The
 * ops return void, so a failure is sticky: later ops do nothing and the next call that returns a
 * status (upload, download, read_counts, alloc) reports it through amp_fail. */
#ifndef AMPBENCH_CUDA_CHECK_H
#define AMPBENCH_CUDA_CHECK_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

struct cuda_ctx;

int cuda_check_rt(struct cuda_ctx *c, cudaError_t e, const char *expr, const char *file, int line);
int cuda_check_cublas(struct cuda_ctx *c, cublasStatus_t s, const char *expr, const char *file,
                      int line);
int cuda_check_cudnn(struct cuda_ctx *c, cudnnStatus_t s, const char *expr, const char *file,
                     int line);
/* Records a failure that is not a library status (unsupported dtypes, no algorithm, ...). */
int cuda_fail(struct cuda_ctx *c, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define CUDA_CHECK(c, expr) cuda_check_rt((c), (expr), #expr, __FILE__, __LINE__)
#define CUBLAS_CHECK(c, expr) cuda_check_cublas((c), (expr), #expr, __FILE__, __LINE__)
#define CUDNN_CHECK(c, expr) cuda_check_cudnn((c), (expr), #expr, __FILE__, __LINE__)
/* After every launch: launch configuration errors (and any earlier asynchronous fault). */
#define CUDA_LAUNCH_CHECK(c, kernel)                                                              \
    cuda_check_rt((c), cudaGetLastError(), "launch of " #kernel, __FILE__, __LINE__)
/* kernel<<<grid, block, 0, c->stream>>>(args...), checked; nonzero on failure. Every launch goes
 * through it, so that the CPU emulation (tests/cuda_emu, AMPBENCH_CUEMU) can run the kernels. */
#ifdef AMPBENCH_CUEMU
#define CUDA_LAUNCH(c, kernel, grid, block, ...)                                                  \
    (cuemu_launch((c)->stream, (grid), (block), #kernel, kernel, __VA_ARGS__),                    \
     CUDA_LAUNCH_CHECK(c, kernel))
#else
#define CUDA_LAUNCH(c, kernel, grid, block, ...)                                                  \
    (kernel<<<(grid), (block), 0, (c)->stream>>>(__VA_ARGS__), CUDA_LAUNCH_CHECK(c, kernel))
#endif
#define CUDA_FAIL(c, ...) cuda_fail((c), __FILE__, __LINE__, __VA_ARGS__)

#endif
