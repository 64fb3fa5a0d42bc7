/* cuemu: the CUDA backend on the CPU, for CI machines without a GPU. The backend's .cu files
 * (kernels/) are compiled as host C++ with this prelude force-included (-include cuemu.h), linked
 * against cuemu_runtime.cpp (memory, streams, events, graphs, launches), cuemu_cublas.cpp,
 * cuemu_cublaslt.cpp and cuemu_cudnn.cpp instead of libcudart, libcublas, libcublasLt and
 * libcudnn.
 *
 * A launch runs every block of the grid in turn and every thread of a block as a fiber; a
 * fiber yields at __syncthreads / __syncthreads_or (block barrier) and at warp shuffles (warp
 * barrier), so shared memory, reductions and shuffles behave as on a GPU. A barrier not reached
 * by every live thread, or a shuffle naming exited lanes, stops the program with a diagnosis.
 * Device memory faults when the host touches it (see cuemu_internal.h) and stream work runs
 * when the host synchronizes, so a missing synchronization shows up as wrong numbers.
 *
 * What it cannot show: timing, races between real GPU threads beyond the order it picks, and the
 * real libraries' numerics (the fakes are faithful to the documented semantics only). */
#ifndef AMPBENCH_CUEMU_H
#define AMPBENCH_CUEMU_H

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>

#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

/* One instance per kernel, shared by the threads of the block that runs (blocks run in turn). */
#undef __shared__
#define __shared__ static
#define __launch_bounds__(...)

extern uint3 cuemu_thread_idx, cuemu_block_idx;
extern dim3 cuemu_block_dim, cuemu_grid_dim;
#define threadIdx cuemu_thread_idx
#define blockIdx cuemu_block_idx
#define blockDim cuemu_block_dim
#define gridDim cuemu_grid_dim

/* The barriers, in cuemu_runtime.cpp. */
void cuemu_syncthreads(void);
int cuemu_syncthreads_or(int predicate);
uint64_t cuemu_shfl_xor(unsigned int mask, uint64_t bits, int lane_mask, int width);

static inline void __syncthreads(void)
{
    cuemu_syncthreads();
}

static inline int __syncthreads_or(int predicate)
{
    return cuemu_syncthreads_or(predicate);
}

template <typename T> static inline T __shfl_xor_sync(unsigned int mask, T v, int lane_mask,
                                                      int width = 32)
{
    static_assert(sizeof(T) <= sizeof(uint64_t), "shuffle of a type wider than 64 bits");
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof v);
    bits = cuemu_shfl_xor(mask, bits, lane_mask, width);
    T r;
    memcpy(&r, &bits, sizeof r);
    return r;
}

/* Fibers are not preempted: a read-modify-write is atomic. */
template <typename T> static inline T atomicAdd(T *p, T v)
{
    const T old = *p;
    *p = old + v;
    return old;
}

static inline unsigned int __float_as_uint(float x)
{
    unsigned int u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline float __uint_as_float(unsigned int u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static inline int __float_as_int(float x)
{
    return (int)__float_as_uint(x);
}

static inline float __int_as_float(int i)
{
    return __uint_as_float((unsigned int)i);
}

/* Runs `thread` once per thread of the grid on stream s (queued; see cuemu_internal.h). Records
 * cudaErrorInvalidConfiguration for cudaGetLastError on a bad grid or block. */
void cuemu_launch_grid(cudaStream_t s, dim3 grid, dim3 block, const char *name,
                       std::function<void()> thread);

/* kernel<<<grid, block, 0, s>>>(args...): the arguments are converted to the parameter types and
 * copied at the launch, as the CUDA runtime copies them. */
template <typename... P, typename... A>
static inline void cuemu_launch(cudaStream_t s, dim3 grid, dim3 block, const char *name,
                                void (*kernel)(P...), A &&...args)
{
    std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
    cuemu_launch_grid(s, grid, block, name, [kernel, params]() { std::apply(kernel, params); });
}

#endif
