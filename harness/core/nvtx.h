/* NVTX ranges in the "ampbench" domain around every phase (epoch, step, forward, backward, each
 * layer, scaler, optimizer), on every backend, for Nsight Systems / Nsight Compute. NVTX3 is
 * header-only and costs a branch when no tool is attached; without its headers the ranges
 * compile to nothing. */
#ifndef AMPBENCH_NVTX_H
#define AMPBENCH_NVTX_H

#ifdef __cplusplus
extern "C" {
#endif

#ifdef AMPBENCH_HAVE_NVTX
void nvtx_push(const char *name);
void nvtx_pop(void);
#else
static inline void nvtx_push(const char *name)
{
    (void)name;
}
static inline void nvtx_pop(void)
{
}
#endif

#ifdef __cplusplus
}
#endif

#endif
