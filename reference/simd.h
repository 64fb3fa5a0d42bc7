/* Portable SIMD for the CPU reference: GCC/Clang vector extensions (16 floats), compiled to
 * AVX-512, AVX2 or SSE by the target flags. Loads and stores need only float alignment. */
#ifndef AMPBENCH_SIMD_H
#define AMPBENCH_SIMD_H

#define VF_LANES 16

typedef float vf __attribute__((vector_size(VF_LANES * sizeof(float)), aligned(4)));

static inline vf vf_load(const float *p)
{
    return *(const vf *)p;
}

static inline void vf_store(float *p, vf v)
{
    *(vf *)p = v;
}

/* Sum of the lanes, in a fixed order (pairwise halving). */
static inline float vf_sum(vf v)
{
    float lanes[VF_LANES];
    vf_store(lanes, v);
    for (int width = VF_LANES / 2; width > 0; width /= 2)
        for (int i = 0; i < width; i++)
            lanes[i] += lanes[i + width];
    return lanes[0];
}

#endif
