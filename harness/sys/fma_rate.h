/* The host CPU's FP32 multiply-add rate, measured rather than computed from the core count,
 * vector width and clock: a nominal peak assumes every FMA unit at full clock, which a VM, a
 * part with one 512-bit FMA unit or an AVX-512 frequency licence does not give. */
#ifndef AMPBENCH_FMA_RATE_H
#define AMPBENCH_FMA_RATE_H

#include <stddef.h>

/* The FLOP/s (2 per multiply-add and lane) that `threads` OpenMP threads reach on dependency-free
 * a * b + c chains in this build's vectors (16 floats and 8: as wide as the build's target allows,
 * contracted into FMAs where it has them), the best of rounds over about `seconds`; `how` says
 * what ran and each width's rate. 0 when threads < 1 or seconds <= 0. */
double fma_rate_measure(int threads, double seconds, char *how, size_t len);

#endif
