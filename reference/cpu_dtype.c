/* CPU reference: typed element access. Reads widen FP16/BF16 exactly (and round FP32 to TF32 on
 * request); writes round to the tensor's dtype through lowp.c, counting underflow and overflow
 * into the backend's numerics counters by the destination's memory category. */
#include <math.h>
#include <string.h>

#include "cpu_ops.h"

float cpu_get(const struct amp_tensor *t, size_t i)
{
    switch (t->dtype) {
    case AMP_F32: return ((const float *)t->data)[i];
    case AMP_F16: return f16_to_f32(((const amp_f16 *)t->data)[i]);
    case AMP_BF16: return bf16_to_f32(((const amp_bf16 *)t->data)[i]);
    case AMP_I32: return (float)((const int32_t *)t->data)[i];
    case AMP_U8: return (float)((const uint8_t *)t->data)[i];
    }
    return NAN;
}

void cpu_set(struct amp_tensor *t, size_t i, float v, struct lowp_counts *acc)
{
    switch (t->dtype) {
    case AMP_F32:
        ((float *)t->data)[i] = v;
        return;
    case AMP_F16:
        f16_from_f32_array(((amp_f16 *)t->data) + i, &v, 1, acc);
        return;
    case AMP_BF16:
        bf16_from_f32_array(((amp_bf16 *)t->data) + i, &v, 1, acc);
        return;
    case AMP_I32:
        ((int32_t *)t->data)[i] = (int32_t)v;
        return;
    case AMP_U8:
        ((uint8_t *)t->data)[i] = (uint8_t)v;
        return;
    }
}

void cpu_load(float *dst, const struct amp_tensor *t, size_t offset, size_t n, int tf32)
{
    switch (t->dtype) {
    case AMP_F32:
        if (tf32)
            tf32_round_array(dst, (const float *)t->data + offset, n);
        else
            memcpy(dst, (const float *)t->data + offset, n * sizeof *dst);
        return;
    case AMP_F16:
        f16_to_f32_array(dst, (const amp_f16 *)t->data + offset, n);
        return;
    case AMP_BF16:
        bf16_to_f32_array(dst, (const amp_bf16 *)t->data + offset, n);
        return;
    case AMP_I32:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)((const int32_t *)t->data)[offset + i];
        return;
    case AMP_U8:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)((const uint8_t *)t->data)[offset + i];
        return;
    }
}

void cpu_store(struct amp_tensor *t, size_t offset, const float *src, size_t n,
               struct lowp_counts *acc)
{
    switch (t->dtype) {
    case AMP_F32:
        memcpy((float *)t->data + offset, src, n * sizeof *src);
        return;
    case AMP_F16:
        f16_from_f32_array((amp_f16 *)t->data + offset, src, n, acc);
        return;
    case AMP_BF16:
        bf16_from_f32_array((amp_bf16 *)t->data + offset, src, n, acc);
        return;
    case AMP_I32:
        for (size_t i = 0; i < n; i++)
            ((int32_t *)t->data)[offset + i] = (int32_t)src[i];
        return;
    case AMP_U8:
        for (size_t i = 0; i < n; i++)
            ((uint8_t *)t->data)[offset + i] = (uint8_t)src[i];
        return;
    }
}

void cpu_count(struct cpu_ctx *c, const struct amp_tensor *dst, size_t rounded,
               const struct lowp_counts *acc)
{
    if (!dtype_is_lowp(dst->dtype))
        return;
    const enum mem_category cat = dst->category;
    __atomic_fetch_add(&c->counts.rounded[cat], (uint64_t)rounded, __ATOMIC_RELAXED);
    __atomic_fetch_add(&c->counts.underflow[cat], acc->underflow, __ATOMIC_RELAXED);
    __atomic_fetch_add(&c->counts.overflow[cat], acc->overflow, __ATOMIC_RELAXED);
}
