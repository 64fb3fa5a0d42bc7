/* CPU reference: FP8 quantization of conv and linear operands (fp8_scaling.h): the operand
 * widened to FP32, quantized and dequantized in place by the bit-faithful conversions of
 * harness/core/fp8.c, and, in a training step, the statistics and the delayed scale updated.
 * Work is split in fixed pieces whose statistics are merged in order, so the results do not
 * depend on the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* dst[p0 .. p0 + len) = src's elements there, as FP32. */
static void widen(float *dst, const struct amp_tensor *src, size_t p0, size_t len)
{
    if (src->dtype != AMP_F32)
        cpu_load(dst + p0, src, p0, len, 0);
    else if ((const void *)dst != src->data)
        memcpy(dst + p0, (const float *)src->data + p0, len * sizeof *dst);
}

/* Widens src into x, piece by piece, and returns the amax of x, each piece's taken while it is
 * in cache. */
static float widen_amax(struct cpu_ctx *c, float *x, const struct amp_tensor *src, size_t n)
{
    float m = 0.0f;
#pragma omp parallel for num_threads(c->threads) if (n >= CPU_PARALLEL_MIN) reduction(max : m)
    for (size_t p0 = 0; p0 < n; p0 += PIECE) {
        const size_t len = n - p0 < PIECE ? n - p0 : PIECE;
        widen(x, src, p0, len);
        const float a = fp8_amax(x + p0, len);
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
    /* Current scaling needs the amax before quantizing: widen it all first (taking the amax on
     * the way); else each piece is widened and quantized while it is in cache. */
    const int current = scaling == FP8_SCALING_CURRENT;
    const float scale = current ? fp8_current_scale(s, widen_amax(c, x, src, n)) : s->scale;
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
        if (!current)
            widen(x, src, p * piece, len);
        struct fp8_stats *st = parts ? &parts[p] : NULL;
        if (mx)
            mx_fake_quantize_layout(at, at, (struct mx_layout){ len / slice, L.len, L.inner }, f,
                                    (enum mx_scale_rounding)s->mx_rounding, st);
        else
            fp8_fake_quantize_array(at, at, len, scale, scale_inv, f, st);
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
