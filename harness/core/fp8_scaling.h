/* FP8 scaling of the tensors an FP8 recipe quantizes (the inputs, weights and output gradients
 * of conv and linear layers): Transformer Engine's DelayedScaling (a per-tensor scale from an
 * amax history), current scaling (from this step's amax) and MX block scaling (OCP MX v1.0). The
 * state of each quantized tensor lives in backend memory (a struct fp8_tensor_state, plus an amax
 * history for delayed scaling) so that a GPU backend quantizes and updates the scale on the
 * device without a host synchronisation; this header holds the one definition of the rules, for
 * host and device code alike. docs/NUMERICS.md ("FP8 recipes") explains them. */
#ifndef AMPBENCH_FP8_SCALING_H
#define AMPBENCH_FP8_SCALING_H

#include <stdint.h>
#include <string.h>

#include "fp8.h"
#include "scaler.h" /* AMP_HOST_DEVICE */

#ifdef __cplusplus
extern "C" {
#endif

enum fp8_scaling {
    FP8_SCALING_NONE,    /* not an FP8 recipe */
    FP8_SCALING_DELAYED, /* TE DelayedScaling: scale = max / max(amax history) / 2^margin */
    FP8_SCALING_CURRENT, /* per-tensor scale from this quantization's own amax */
    FP8_SCALING_MX,      /* blocks of MX_BLOCK along a dimension (the state's MX layout), E8M0
                          * power-of-two scales */
};

/* Transformer Engine's default amax history length. */
#define FP8_AMAX_HISTORY_DEFAULT 1024u

/* One quantized tensor: its configuration, its scaling state and what its last quantization did
 * (written by every quantization of a training step; evaluation quantizes with the current
 * scale and writes nothing). Its scaling (enum fp8_scaling) is the recipe's, given to every
 * quantization, so that a backend picks its kernels without reading device memory. */
struct fp8_tensor_state {
    /* Configuration. */
    int32_t format;      /* enum fp8_format */
    int32_t mx_rounding; /* MX: enum mx_scale_rounding */
    uint32_t mx_len;     /* MX layout: the tensor viewed as [outer, mx_len, mx_inner], blocks of
                          * MX_BLOCK along mx_len at stride mx_inner (fp8.h's struct mx_layout);
                          * 0: the whole tensor (mx_len = numel / mx_inner, outer 1), for a
                          * dimension that is the batch */
    uint32_t mx_inner;   /* MX layout: 1 for rows, more for columns and channel blocks */
    uint32_t history_len;/* delayed: the amax history's length (>= 1) */
    int32_t margin;      /* delayed: the scale leaves 2^margin of headroom (TE's default 0) */
    /* Delayed scaling's state. */
    float scale;         /* what the next quantization multiplies by (TE starts at 1) */
    uint32_t history_pos;/* the history's slot for the next amax */
    /* The last training quantization. */
    float last_scale;    /* the per-tensor scale it used (MX: 0, the scales are per block) */
    float last_amax;     /* max |x| over the finite elements */
    uint64_t n, saturated, underflow, nonfinite;
    double signal, noise; /* sum x^2 and sum (x - dequantized)^2 over the finite elements */
};

static inline struct fp8_tensor_state fp8_state_make(enum fp8_format format,
                                                     uint32_t history_len,
                                                     enum mx_scale_rounding mx_rounding,
                                                     uint32_t mx_len)
{
    struct fp8_tensor_state s;
    memset(&s, 0, sizeof s);
    s.format = format;
    s.mx_rounding = mx_rounding;
    s.mx_len = mx_len;
    s.mx_inner = 1;
    s.history_len = history_len ? history_len : 1;
    s.scale = 1.0f;
    return s;
}

/* The MX layout a state gives a tensor of n elements: [n / (len * inner), len, inner], with len
 * numel / inner where the state's mx_len is 0. */
AMP_HOST_DEVICE static inline struct mx_layout fp8_mx_layout(const struct fp8_tensor_state *s,
                                                             size_t n)
{
    struct mx_layout L;
    L.inner = s->mx_inner ? s->mx_inner : 1;
    L.len = s->mx_len ? s->mx_len : n / L.inner;
    L.outer = L.len ? n / (L.len * L.inner) : 0;
    return L;
}

AMP_HOST_DEVICE static inline float fp8_format_max(int32_t format)
{
    return format == FP8_E4M3 ? 448.0f : 57344.0f;
}

/* Whether quantizing y (= x * scale) saturates: y rounds (nearest even) above the format's max,
 * so the clip to max changes it: E4M3 |y| > 464 (the tie rounds down to 448), E5M2 |y| >= 61440
 * (the tie rounds up), and infinities. fp8.c counts the same (its overflow threshold). */
AMP_HOST_DEVICE static inline int fp8_saturates(float y, int32_t format)
{
    const float a = y < 0.0f ? -y : y;
    return a >= (format == FP8_E4M3 ? 0x1.d00002p8f : 61440.0f);
}

/* The per-tensor scale for an amax: max / amax / 2^margin, or `previous` when amax is 0 or not
 * finite, or the quotient is not finite (TE's _default_sf_compute). */
AMP_HOST_DEVICE static inline float fp8_scale_from_amax(float amax, int32_t format, int32_t margin,
                                                        float previous)
{
    float sf = fp8_format_max(format) / amax;
    for (int32_t i = 0; i < margin; i++)
        sf *= 0.5f;
    const int amax_ok = amax > 0.0f && amax - amax == 0.0f;
    return amax_ok && sf - sf == 0.0f ? sf : previous;
}

/* Current scaling's scale: from this tensor's amax, 1 when amax is 0 or not finite. */
AMP_HOST_DEVICE static inline float fp8_current_scale(const struct fp8_tensor_state *s,
                                                      float amax)
{
    return fp8_scale_from_amax(amax, s->format, s->margin, 1.0f);
}

/* Delayed scaling after a training quantization whose amax was `amax`: the amax goes into the
 * history, the next scale comes from the history's maximum (a NaN or inf in it keeps the
 * previous scale, as torch.max propagates it and TE then keeps the scale), and then the history
 * rolls: its oldest slot is cleared for the next amax. */
AMP_HOST_DEVICE static inline void fp8_delayed_update(struct fp8_tensor_state *s, float *history,
                                                      float amax)
{
    history[s->history_pos] = amax;
    float m = 0.0f;
    for (uint32_t i = 0; i < s->history_len; i++) {
        const float h = history[i];
        if (!(h - h == 0.0f)) { /* inf or NaN */
            m = h - h;          /* NaN */
            break;
        }
        m = h > m ? h : m;
    }
    s->scale = fp8_scale_from_amax(m, s->format, s->margin, s->scale);
    s->history_pos = (s->history_pos + 1) % s->history_len;
    history[s->history_pos] = 0.0f;
}

/* ---- MX block scales (OCP MX v1.0), from a block's amax, host and device ---- */

/* A block's E8M0 code and the FP32 multiplier its elements take before the FP8 conversion. */
struct mx_block_scale {
    uint32_t e;
    float mul;
};

AMP_HOST_DEVICE static inline float fp8_f32_of_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

AMP_HOST_DEVICE static inline uint32_t fp8_bits_of_f32(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* 2^(e - 127); 0xFF is NaN. */
AMP_HOST_DEVICE static inline float mx_e8m0_value(uint32_t e)
{
    return e == 0xFFu ? fp8_f32_of_bits(0x7FC00000u)
           : e == 0u  ? 0x1p-127f
                      : fp8_f32_of_bits(e << 23);
}

/* The spec's rule (and microsoft/microxcaling's): X = 2^(floor(log2 amax) - emax_elem) with the
 * exponent clamped below at -127 (a block of zeros gets 2^-127); amax_bits is the block's largest
 * |x| bit pattern, so a NaN or an inf in it (bits >= 0x7F800000) makes X NaN (0xFF) and every
 * element NaN. emax_elem: 8 for E4M3, 15 for E5M2. */
AMP_HOST_DEVICE static inline struct mx_block_scale mx_scale_floor_of(uint32_t amax_bits,
                                                                      int emax_elem)
{
    struct mx_block_scale s;
    if (amax_bits >= 0x7F800000u) {
        s.e = 0xFFu;
        s.mul = fp8_f32_of_bits(0x7FC00000u);
        return s;
    }
    int lg; /* floor(log2 amax) */
    if (amax_bits >= 0x00800000u) {
        lg = (int)(amax_bits >> 23) - 127;
    } else if (amax_bits != 0u) {
        int top = 31;
        while (!(amax_bits >> top))
            top--;
        lg = top - 149;
    } else {
        lg = -127 - emax_elem; /* zero block: clamped to -127 below */
    }
    int E = lg - emax_elem;
    E = E < -127 ? -127 : E;
    s.e = (uint32_t)(E + 127);
    s.mul = fp8_f32_of_bits((uint32_t)(127 - E) << 23); /* 2^-E, normal for E in [-127, 119] */
    return s;
}

/* Transformer Engine's rule on pre-Blackwell GPUs (float_to_e8m0 and exp2f_rcp in
 * common/util/ptx.cuh), what cvt.rp.satfinite.ue8m0x2.f32 does on Blackwell: amax = fmaxf over
 * |x| from 0 (NaNs ignored, an inf counts); e = the E8M0 round-up of amax * (1 / max) (0 for 0,
 * 0xFE for inf; 2^-127 rounds to 0); elements are x * 2^(127 - e), multiplier 1 when e == 0 and
 * 0 when e == 0xFE. */
AMP_HOST_DEVICE static inline struct mx_block_scale mx_scale_rceil_of(float amax, float max)
{
    const float rcp = (float)(1.0 / (double)max);
    const uint32_t v = fp8_bits_of_f32(amax * rcp);
    uint32_t e;
    if (v == 0u) {
        e = 0u;
    } else if (v >= 0x7F800000u) {
        e = 0xFEu;
    } else {
        e = v >> 23;
        const uint32_t m = v & 0x007FFFFFu;
        if (m > 0u && e != 0xFEu && !(e == 0u && m <= 0x00400000u))
            e++;
    }
    struct mx_block_scale s;
    s.e = e;
    s.mul = e == 0u ? 1.0f : fp8_f32_of_bits((254u - e) << 23);
    return s;
}

#ifdef __cplusplus
}
#endif

#endif
