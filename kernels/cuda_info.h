/* What the harness (C) asks the CUDA backend outside its operation table: whether a device is
 * usable (for --device auto/cuda and the GPU tests) and a description for `ampbench info`. */
#ifndef AMPBENCH_CUDA_INFO_H
#define AMPBENCH_CUDA_INFO_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when cudaGetDeviceCount finds at least one device; else 0 and `why` holds the reason
 * ("cudaGetDeviceCount: no CUDA-capable device is detected"). */
int cuda_device_usable(char *why, size_t len);

/* Lines for `ampbench info` ("CUDA device:  ...", driver, runtime, cuBLAS, cuDNN versions, SM
 * count), each ending in a newline, into buf. Returns the length written (truncated to len). */
int cuda_describe_device(char *buf, size_t len);

/* The device's nominal peak FP32 FLOP/s (SMs x FP32 lanes per SM x 2 x clock) and the same for
 * dense FP16 tensor-core math where known; 0 without a device. `how` describes the estimate. */
double cuda_peak_flops(double *fp16_tensor, char *how, size_t len);

#ifdef __cplusplus
}
#endif

#endif
