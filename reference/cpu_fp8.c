/* CPU reference: FP8 quantization of conv and linear operands (fp8_scaling.h): the operand's
 * FP32 values (read where they lie, BF16 widened as they are read, or widened into the output
 * first) quantized and dequantized into the output by the bit-faithful conversions of
 * harness/core/fp8.c, and, in a training step, the statistics and the delayed scale updated.
 * Work is split in fixed pieces whose statistics are merged in order, so the results do not
 * depend on the thread count. */
#include <math.h>
#include <stdlib.h>

#include "cpu_ops.h"
#include "fp8_scaling.h"

/* Elements per piece (MX: whole rows, at least one). */
enum { PIECE = 8192 };

static void stats_merge(struct fp8_stats *into, const struct fp8_stats *s)
{
    into->n += s->n;
    into->saturated += s->saturated;
    into->underflow += s->underflow;
    into->nonfinite += s->nonfinite;
    into->amax = s->amax > into->amax ? s->amax : into->amax;
    into->signal += s->signal;
    into->noise += s->noise;
}

/* The amax of src's FP32 values, piece by piece: read where they lie (FP32, BF16), or (FP16)
 * widened into x on the way, each piece's amax taken while it is in cache. */
static float source_amax(struct cpu_ctx *c, float *x, const struct amp_tensor *src, size_t n)
{
    float m = 0.0f;
#pragma omp parallel for num_threads(c->threads) if (n >= CPU_PARALLEL_MIN) reduction(max : m)
    for (size_t p0 = 0; p0 < n; p0 += PIECE) {
        const size_t len = n - p0 < PIECE ? n - p0 : PIECE;
        float a;
        if (src->dtype == AMP_BF16)
            a = fp8_amax_bf16((const amp_bf16 *)src->data + p0, len);
        else if (src->dtype == AMP_F32)
            a = fp8_amax((const float *)src->data + p0, len);
        else {
            cpu_load(x + p0, src, p0, len, 0);
            a = fp8_amax(x + p0, len);
        }
        m = a > m ? a : m;
    }
    return m;
}

void cpu_fp8_quantize(void *ctx, struct amp_tensor *dst, const struct amp_tensor *src,
                      enum fp8_scaling scaling, struct amp_tensor *state,
                      struct amp_tensor *history, int train)
{
    struct cpu_ctx *c = ctx;
    struct fp8_tensor_state *s = state->data;
    const enum fp8_format f = (enum fp8_format)s->format;
    const int mx = scaling == FP8_SCALING_MX;
    float *x = dst->data;
    const size_t n = src->numel;
    /* Each piece is quantized from where src lies (FP32; BF16 widened as it is read) or from
     * its FP32 values widened into x while it is in cache. Current scaling
     * needs the amax first: of src where it lies, else (FP16) widening it all on the way. */
    const int current = scaling == FP8_SCALING_CURRENT;
    const int from_bf16 = src->dtype == AMP_BF16, from_f32 = src->dtype == AMP_F32;
    const int widened = current && src->dtype == AMP_F16;
    const float scale = current ? fp8_current_scale(s, source_amax(c, x, src, n)) : s->scale;
    const float scale_inv = 1.0f / scale;
    /* A piece: PIECE elements, or under MX as many whole outer slices of its layout as fit (at
     * least one; rows where the layout is rows). */
    const struct mx_layout L = fp8_mx_layout(s, n);
    const size_t slice = mx ? L.len * L.inner : 1;
    const size_t per = slice && PIECE / slice ? PIECE / slice : 1, piece = per * slice;
    const size_t npieces = piece ? (n + piece - 1) / piece : 0;
    struct fp8_stats *parts = train ? calloc(npieces ? npieces : 1, sizeof *parts) : NULL;
#pragma omp parallel for num_threads(c->threads) if (n >= CPU_PARALLEL_MIN) schedule(static)
    for (size_t p = 0; p < npieces; p++) {
        float *at = x + p * piece;
        const size_t len = n - p * piece < piece ? n - p * piece : piece;
        struct fp8_stats *st = parts ? &parts[p] : NULL;
        if (from_bf16 && mx) {
            mx_fake_quantize_layout_bf16(at, (const amp_bf16 *)src->data + p * piece,
                                         (struct mx_layout){ len / slice, L.len, L.inner }, f,
                                         (enum mx_scale_rounding)s->mx_rounding, st);
            continue;
        }
        if (from_bf16) {
            fp8_fake_quantize_bf16_array(at, (const amp_bf16 *)src->data + p * piece, len, scale,
                                         scale_inv, f, st);
            continue;
        }
        const float *in = from_f32 ? (const float *)src->data + p * piece : at;
        if (!from_f32 && !widened) /* (a 16-bit operand) */
            cpu_load(at, src, p * piece, len, 0);
        if (mx)
            mx_fake_quantize_layout(at, in, (struct mx_layout){ len / slice, L.len, L.inner }, f,
                                    (enum mx_scale_rounding)s->mx_rounding, st);
        else
            fp8_fake_quantize_array(at, in, len, scale, scale_inv, f, st);
    }
    if (!train)
        return;
    struct fp8_stats total = { 0 };
    for (size_t p = 0; parts && p < npieces; p++)
        stats_merge(&total, &parts[p]);
    free(parts);
    s->last_scale = mx ? 0.0f : scale;
    s->last_amax = total.amax;
    s->n = total.n;
    s->saturated = total.saturated;
    s->underflow = total.underflow;
    s->nonfinite = total.nonfinite;
    s->signal = total.signal;
    s->noise = total.noise;
    if (scaling == FP8_SCALING_DELAYED)
        fp8_delayed_update(s, history->data, total.nonfinite ? NAN : total.amax);
}
