/* CUDA backend: cuBLAS, cuBLASLt and cuDNN loaded at run time by soname, so that one carried
 * binary (with the CUDA runtime linked statically) runs where CUDA 13 libraries are installed and
 * where only CUDA 12 wheels are (PyTorch's site-packages/nvidia/.../lib): libcublas.so.13, else
 * libcublas.so.12 (and libcublasLt of the same major), and libcudnn.so.9 (one soname for cuDNN 9
 * of either CUDA major), from the loader's search path (LD_LIBRARY_PATH first;
 * scripts/device-check.sh points it at the folders it found).
 *
 * The backend calls the libraries' functions as declared in their headers. This file defines
 * each of those symbols as a two-instruction trampoline that jumps through a pointer filled by
 * dlsym (the technique of Implib.so: the arguments pass through untouched, whatever the
 * signature), so the program links against no cuBLAS or cuDNN at all. cuda_libs_load runs
 * before any of them is called (usable, open, describe_device); a missing library or symbol is
 * one error line naming it. A new library function the kernels call is added to the lists below
 * (the link fails until it is).
 *
 * The CPU emulation (tests/cuda_emu) links its fake libraries directly: there this file only
 * plays the search (CUEMU_LIBS: "13" the default, "12" or "none" says which sonames exist), so
 * that the order, the error and the report are the same code. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dlinfo */
#endif
#include "cuda_libs.h"

#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every function the backend calls, by the library that exports it (exported names: cublas_v2.h
 * maps cublasCreate to cublasCreate_v2 and so on). cuBLASLt's: the FP8 GEMMs. */
#define CUBLAS_FUNCS(X)                                                                           \
    X(cublasCreate_v2) X(cublasDestroy_v2) X(cublasSetStream_v2) X(cublasSetWorkspace_v2)         \
    X(cublasSetMathMode) X(cublasGemmEx) X(cublasGetProperty) X(cublasGetStatusString)
#define CUBLASLT_FUNCS(X)                                                                         \
    X(cublasLtCreate) X(cublasLtDestroy) X(cublasLtMatmul) X(cublasLtMatmulAlgoGetHeuristic)     \
    X(cublasLtMatmulDescCreate) X(cublasLtMatmulDescDestroy) X(cublasLtMatmulDescSetAttribute)   \
    X(cublasLtMatmulPreferenceCreate) X(cublasLtMatmulPreferenceDestroy)                         \
    X(cublasLtMatmulPreferenceSetAttribute) X(cublasLtMatrixLayoutCreate)                         \
    X(cublasLtMatrixLayoutDestroy)
#define CUDNN_FUNCS(X)                                                                            \
    X(cudnnCreate) X(cudnnDestroy) X(cudnnSetStream) X(cudnnGetVersion) X(cudnnGetCudartVersion) \
    X(cudnnGetErrorString) X(cudnnCreateTensorDescriptor) X(cudnnDestroyTensorDescriptor)        \
    X(cudnnSetTensor4dDescriptor) X(cudnnCreateFilterDescriptor) X(cudnnDestroyFilterDescriptor) \
    X(cudnnSetFilter4dDescriptor) X(cudnnCreateConvolutionDescriptor)                             \
    X(cudnnDestroyConvolutionDescriptor) X(cudnnSetConvolution2dDescriptor)                      \
    X(cudnnSetConvolutionMathType) X(cudnnCreateActivationDescriptor)                             \
    X(cudnnDestroyActivationDescriptor) X(cudnnSetActivationDescriptor)                           \
    X(cudnnGetConvolutionForwardAlgorithm_v7) X(cudnnGetConvolutionBackwardDataAlgorithm_v7)     \
    X(cudnnGetConvolutionBackwardFilterAlgorithm_v7) X(cudnnGetConvolutionForwardWorkspaceSize)  \
    X(cudnnGetConvolutionBackwardDataWorkspaceSize)                                               \
    X(cudnnGetConvolutionBackwardFilterWorkspaceSize) X(cudnnConvolutionForward)                 \
    X(cudnnConvolutionBackwardData) X(cudnnConvolutionBackwardFilter)                             \
    X(cudnnConvolutionBiasActivationForward)

/* NCCL's (harness/dist/nccl.c, in the ampbench binary): optional, loaded on first use by
 * cuda_libs_load_nccl, so that a machine without NCCL still runs everything else. */
#define NCCL_FUNCS(X)                                                                             \
    X(ncclGetUniqueId) X(ncclCommInitRank) X(ncclCommDestroy) X(ncclCommAbort)                    \
    X(ncclCommGetAsyncError) X(ncclGetErrorString) X(ncclAllReduce) X(ncclGroupStart)             \
    X(ncclGroupEnd) X(ncclRedOpCreatePreMulSum) X(ncclRedOpDestroy)

/* One library: what it is, the sonames tried in order (majors paired with cuBLAS's where it has
 * one), what was loaded. */
struct cuda_lib {
    const char *what;
    const char *sonames[2];
    void *handle;
    const char *soname;
    char path[512];
};

enum { LIB_CUBLAS, LIB_CUBLASLT, LIB_CUDNN, LIB_COUNT };
static struct cuda_lib libs[LIB_COUNT] = {
    [LIB_CUBLAS] = { "cuBLAS", { "libcublas.so.13", "libcublas.so.12" } },
    [LIB_CUBLASLT] = { "cuBLASLt", { "libcublasLt.so.13", "libcublasLt.so.12" } },
    [LIB_CUDNN] = { "cuDNN", { "libcudnn.so.9", NULL } },
};

#ifndef AMPBENCH_CUEMU

/* The trampolines: each symbol jumps through its pointer, which points at not_loaded until
 * cuda_libs_load resolves it. */
static void not_loaded(void)
{
    fprintf(stderr, "ampbench: a cuBLAS/cuDNN function was called before cuda_libs_load\n");
    abort();
}

#define FN_PTR(name) __attribute__((used)) void *cuda_lib_fn_##name = (void *)not_loaded;
CUBLAS_FUNCS(FN_PTR) CUBLASLT_FUNCS(FN_PTR) CUDNN_FUNCS(FN_PTR) NCCL_FUNCS(FN_PTR)

#if defined(__x86_64__)
#define TRAMPOLINE(name)                                                                          \
    __asm__(".text\n.globl " #name "\n.type " #name ",@function\n" #name ":\n"                    \
            "\tjmp *cuda_lib_fn_" #name "(%rip)\n.size " #name ",.-" #name "\n");
#elif defined(__aarch64__)
#define TRAMPOLINE(name)                                                                          \
    __asm__(".text\n.globl " #name "\n.type " #name ",%function\n" #name ":\n"                    \
            "\tadrp x16, cuda_lib_fn_" #name "\n\tldr x16, [x16, :lo12:cuda_lib_fn_" #name "]\n" \
            "\tbr x16\n.size " #name ",.-" #name "\n");
#else
#error "cuda_libs.c: trampolines for x86-64 and aarch64 only"
#endif
CUBLAS_FUNCS(TRAMPOLINE) CUBLASLT_FUNCS(TRAMPOLINE) CUDNN_FUNCS(TRAMPOLINE) NCCL_FUNCS(TRAMPOLINE)

static void *open_so(const char *soname)
{
    /* local: its symbols serve us only (a cuDNN of another CUDA major keeps its own cuBLAS) */
    return dlopen(soname, RTLD_NOW | RTLD_LOCAL);
}

/* The file the loader opened for handle. */
static void path_of(void *handle, char *buf, size_t len)
{
    struct link_map *lm = NULL;
    snprintf(buf, len, "%s", dlinfo(handle, RTLD_DI_LINKMAP, &lm) == 0 && lm ? lm->l_name : "?");
}

/* Fills every pointer of one library's list; false (why: the first missing symbol) if any. */
static int resolve(const struct cuda_lib *lib, char *why, size_t len)
{
#define RESOLVE(name)                                                                             \
    if (!(cuda_lib_fn_##name = dlsym(lib->handle, #name))) {                                      \
        snprintf(why, len, "%s (%s) has no %s", lib->what, lib->path, #name);                     \
        return 0;                                                                                 \
    }
    if (lib == &libs[LIB_CUBLAS]) {
        CUBLAS_FUNCS(RESOLVE)
    } else if (lib == &libs[LIB_CUBLASLT]) {
        CUBLASLT_FUNCS(RESOLVE)
    } else {
        CUDNN_FUNCS(RESOLVE)
    }
#undef RESOLVE
    return 1;
}

#else /* the emulation: its fakes are linked; CUEMU_LIBS says which sonames exist */

static void *open_so(const char *soname)
{
    const char *v = getenv("CUEMU_LIBS");
    const char *major = v && *v ? v : "13";
    if (strcmp(major, "none") == 0)
        return NULL;
    const size_t n = strlen(soname), m = strlen(major);
    const int cudnn = strcmp(soname, "libcudnn.so.9") == 0;
    const int match = cudnn || (n > m && soname[n - m - 1] == '.' && strcmp(soname + n - m, major) == 0);
    return match ? (void *)soname : NULL;
}

static void path_of(void *handle, char *buf, size_t len)
{
    snprintf(buf, len, "cuemu (the fake %s)", (const char *)handle);
}

static int resolve(const struct cuda_lib *lib, char *why, size_t len)
{
    (void)lib;
    (void)why;
    (void)len;
    return 1;
}

#endif

#ifndef AMPBENCH_CUEMU
int cuda_libs_load_nccl(char *why, size_t len)
{
    static void *handle;
    static char nccl_failure[320];
    if (!handle && !nccl_failure[0]) {
        handle = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
        if (!handle)
            snprintf(nccl_failure, sizeof nccl_failure,
                     "NCCL not found: no libnccl.so.2 on the library path (LD_LIBRARY_PATH; a "
                     "CUDA install or a wheel's nvidia/nccl/lib folder)");
#define RESOLVE_NCCL(name)                                                                        \
    if (handle && !nccl_failure[0] && !(cuda_lib_fn_##name = dlsym(handle, #name)))               \
        snprintf(nccl_failure, sizeof nccl_failure, "libnccl.so.2 has no %s", #name);
        NCCL_FUNCS(RESOLVE_NCCL)
#undef RESOLVE_NCCL
    }
    snprintf(why, len, "%s", nccl_failure);
    return !nccl_failure[0];
}
#endif

/* The last failure, kept: a later call answers the same. */
static char failure[640];
static int loaded;

int cuda_libs_load(char *why, size_t len)
{
    if (!loaded && !failure[0]) {
        for (int i = 0; i < LIB_COUNT && !failure[0]; i++) {
            struct cuda_lib *lib = &libs[i];
            /* cuBLASLt of cuBLAS's major (libcublas.so.N needs libcublasLt.so.N) */
            const int first = i == LIB_CUBLASLT && libs[LIB_CUBLAS].soname == libs[LIB_CUBLAS].sonames[1];
            for (int k = first; k < 2 && lib->sonames[k] && !lib->handle; k++)
                if ((lib->handle = open_so(lib->sonames[k])))
                    lib->soname = lib->sonames[k];
            if (!lib->handle) {
                snprintf(failure, sizeof failure, "%s not found: no %s%s%s on the library path "
                         "(LD_LIBRARY_PATH; a CUDA %s install or a wheel's nvidia/*/lib folder)",
                         lib->what, lib->sonames[first],
                         !first && lib->sonames[1] ? " or " : "",
                         !first && lib->sonames[1] ? lib->sonames[1] : "",
                         i == LIB_CUDNN ? "12 or 13 cuDNN 9" : first ? "12" : "13 or 12");
                break;
            }
            path_of(lib->handle, lib->path, sizeof lib->path);
            resolve(lib, failure, sizeof failure);
        }
        loaded = !failure[0];
    }
    if (!loaded)
        snprintf(why, len, "%s", failure);
    else if (len)
        why[0] = '\0';
    return loaded;
}

int cuda_libs_describe(char *buf, size_t len)
{
    size_t pos = 0;
    if (len)
        buf[0] = '\0';
    for (int i = 0; i < LIB_COUNT && loaded; i++) {
        const int w = snprintf(pos < len ? buf + pos : NULL, pos < len ? len - pos : 0,
                               "%s%s (%s)", i ? ", " : "", libs[i].soname, libs[i].path);
        if (w > 0)
            pos += (size_t)w;
    }
    return (int)pos;
}
