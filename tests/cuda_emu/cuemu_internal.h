/* The CPU emulation of the CUDA runtime, shared by its parts (cuemu_runtime.cpp: memory, streams,
 * events, graphs, kernel launches; cuemu_cublas.cpp and cuemu_cudnn.cpp: the library calls the
 * backend makes). Device memory is host memory that is readable and writable only while emulated
 * device work runs, so a host-side dereference of a device pointer faults as it would on a GPU. */
#ifndef AMPBENCH_CUEMU_INTERNAL_H
#define AMPBENCH_CUEMU_INTERNAL_H

#include <cuda_runtime_api.h>
#include <stddef.h>

#include <functional>

/* Runs `work` on stream s (device memory accessible while it runs), or, when s is capturing a
 * graph, appends it to the graph being captured; values the work needs are captured by value at
 * the call, as a real library bakes its arguments into the captured kernels. Returns the error a
 * real runtime would give (cudaErrorStreamCaptureInvalidated after an illegal call in capture). */
cudaError_t cuemu_enqueue(cudaStream_t s, std::function<void()> work);

/* Whether [p, p + bytes) lies inside one live device allocation (argument checks in the fakes). */
bool cuemu_is_device(const void *p, size_t bytes);

/* Whether the calling thread is capturing (a stream in capture was begun on it). */
bool cuemu_capturing(void);

/* Invalidates the calling thread's capture (a library call that cannot be captured): its
 * cudaStreamEndCapture then fails with cudaErrorStreamCaptureInvalidated. No-op outside capture. */
void cuemu_invalidate_capture(void);

#endif
