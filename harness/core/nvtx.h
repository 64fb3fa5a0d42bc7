/* NVTX ranges in the "ampbench" domain around every phase (epoch, step, forward, backward, each
 * layer, scaler, optimizer), on every backend, for Nsight Systems / Nsight Compute. NVTX3 is
 * header-only and costs a branch when no tool is attached; without its headers the ranges
 * compile to nothing. push/pop ranges nest per thread; a start/end range (the capture range of
 * --profile-steps) need not nest. */
#ifndef AMPBENCH_NVTX_H
#define AMPBENCH_NVTX_H

#ifdef __cplusplus
extern "C" {
#endif

#include <stdint.h>

#ifdef AMPBENCH_HAVE_NVTX
void nvtx_push(const char *name);
void nvtx_pop(void);
/* A start/end range; the id goes to nvtx_range_end (0 when no tool is attached). */
uint64_t nvtx_range_start(const char *name);
void nvtx_range_end(uint64_t id);
#else
static inline void nvtx_push(const char *name)
{
    (void)name;
}
static inline void nvtx_pop(void)
{
}
static inline uint64_t nvtx_range_start(const char *name)
{
    (void)name;
    return 0;
}
static inline void nvtx_range_end(uint64_t id)
{
    (void)id;
}
#endif

#ifdef __cplusplus
}
#endif

#endif
