/* Seeded pseudo-random numbers (xoshiro256** seeded through splitmix64): weight init and
 * shuffling, so that a run is reproducible from --seed. */
#ifndef AMPBENCH_RNG_H
#define AMPBENCH_RNG_H

#include <stddef.h>
#include <stdint.h>

struct rng {
    uint64_t s[4];
};

void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
/* Uniform in [0, 1) with 24 random bits (every value exactly representable in FP32). */
float rng_float(struct rng *r);
/* Uniform in [lo, hi). */
float rng_uniform(struct rng *r, float lo, float hi);
/* Uniform integer in [0, bound), unbiased. */
uint64_t rng_below(struct rng *r, uint64_t bound);
/* Fisher-Yates shuffle of idx[0..n). */
void rng_shuffle(struct rng *r, uint32_t *idx, size_t n);

#endif
