/* CUDA backend: cuBLAS, cuBLASLt and cuDNN found at run time by soname (cuda_libs.c). */
#ifndef AMPBENCH_CUDA_LIBS_H
#define AMPBENCH_CUDA_LIBS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Loads the libraries once (libcublas.so.13, else .so.12, with the libcublasLt of the same
 * major; libcudnn.so.9) and resolves every function the backend calls: 1, or 0 with one line in
 * why naming what is missing. Later calls give the same answer. */
int cuda_libs_load(char *why, size_t len);
/* Loads NCCL (libnccl.so.2) once, for the data-parallel all-reduce on CUDA: 1, or 0 with one
 * line in why. Not in the CPU emulation (tests/cuda_emu), which has no NCCL. */
int cuda_libs_load_nccl(char *why, size_t len);
/* "libcublas.so.13 (/path), libcublasLt.so.13 (/path), libcudnn.so.9 (/path)" once loaded, else
 * ""; returns the length it needs, as snprintf. */
int cuda_libs_describe(char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
