/*
 * f32bits.h - an FP32 value's bits and back (through memcpy: no aliasing, no
 * FP arithmetic), and the masks on them, for the host conversions (lowp.c,
 * fp8.c) and their tests.
 */
#ifndef AMPBENCH_F32BITS_H
#define AMPBENCH_F32BITS_H

#include <stdint.h>
#include <string.h>

#define F32_ABS_MASK  0x7FFFFFFFu   /* clears the sign */
#define F32_INF_BITS  0x7F800000u   /* |x| bits >= this: inf or NaN; > this: NaN */

static inline uint32_t f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline float f32_from_bits(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

#endif /* AMPBENCH_F32BITS_H */
