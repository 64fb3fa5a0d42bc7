/* CPU reference: 3x3 convolution (NCHW, stride 1, padding 1), forward and backward, FP32
 * arithmetic. Each plane is zero-padded into a (h+2) x (w+2) grid in the workspace so that the
 * nine taps become nine shifted streams over one flat, fully vectorized loop; the two extra
 * columns per row are computed and dropped. OpenMP splits independent outputs (no cross-thread
 * reductions), so results do not depend on the thread count. */
#include <string.h>

#include "cpu_ops.h"
#include "simd.h"

/* Geometry of the padded grid for an h x w plane. */
struct grid {
    int h, w;
    int stride;   /* w + 2: padded row length */
    int q;        /* h * stride: length of the flat output grid */
    size_t plane; /* floats of one padded plane, including 2 trailing guard floats */
};

static struct grid grid_of(const struct conv_shape *s)
{
    struct grid g = { .h = (int)s->h, .w = (int)s->w, .stride = (int)s->w + 2 };
    g.q = g.h * g.stride;
    g.plane = (size_t)(g.h + 2) * g.stride + 2;
    return g;
}

/* dst[0..w) = src[0..w) + add. Rows of 16 to 32 floats (the seed's 28) take two overlapping
 * vector moves instead of a library call per row. */
static inline void copy_row(float *restrict dst, const float *restrict src, int w, float add)
{
    if (w >= VF_LANES && w <= 2 * VF_LANES) {
        const vf head = vf_load(src) + add, tail = vf_load(src + w - VF_LANES) + add;
        vf_store(dst, head);
        vf_store(dst + w - VF_LANES, tail);
        return;
    }
    for (int i = 0; i < w; i++)
        dst[i] = src[i] + add;
}

/* Copies an h x w plane into the interior of a padded grid, zeroing the border. */
static void pad_plane(float *dst, const float *src, const struct grid *g)
{
    const int S = g->stride;
    memset(dst, 0, (size_t)S * sizeof *dst);
    for (int h = 0; h < g->h; h++) {
        float *row = dst + (size_t)(h + 1) * S;
        row[0] = 0.0f;
        copy_row(row + 1, src + (size_t)h * g->w, g->w, 0.0f);
        row[g->w + 1] = 0.0f;
    }
    memset(dst + (size_t)(g->h + 1) * S, 0, (g->plane - (size_t)(g->h + 1) * S) * sizeof *dst);
}

/* acc[q] (+)= sum_{ky, kx} w9[ky * 3 + kx] * xp[q + ky * stride + kx] over the flat grid. */
static void plane_taps(float *restrict acc, const float *restrict xp, const float *w9,
                       const struct grid *g, int accumulate)
{
    const int S = g->stride;
    const float w0 = w9[0], w1 = w9[1], w2 = w9[2], w3 = w9[3], w4 = w9[4], w5 = w9[5],
                w6 = w9[6], w7 = w9[7], w8 = w9[8];
    const float *r0 = xp, *r1 = xp + S, *r2 = xp + 2 * S;
#pragma omp simd
    for (int q = 0; q < g->q; q++) {
        float v = w0 * r0[q] + w1 * r0[q + 1] + w2 * r0[q + 2] + w3 * r1[q] + w4 * r1[q + 1] +
                  w5 * r1[q + 2] + w6 * r2[q] + w7 * r2[q + 1] + w8 * r2[q + 2];
        acc[q] = accumulate ? acc[q] + v : v;
    }
}

/* Copies the valid columns of a flat grid into an h x w plane, adding `bias`. */
static void unpad_grid(float *dst, const float *acc, float bias, const struct grid *g)
{
    for (int h = 0; h < g->h; h++)
        copy_row(dst + (size_t)h * g->w, acc + (size_t)h * g->stride, g->w, bias);
}

/* Lays an h x w plane onto the flat grid (the two padding columns of each row are left as
 * they are: the caller zeroes them once). */
static void grid_plane(float *dst, const float *src, const struct grid *g)
{
    for (int h = 0; h < g->h; h++)
        copy_row(dst + (size_t)h * g->stride, src + (size_t)h * g->w, g->w, 0.0f);
}

/* Workspace: per thread, padded planes for max(c_in, c_out) channels and two flat grids; then,
 * for the filter gradient, the padded planes of the whole batch's input. */
static size_t per_thread_floats(const struct conv_shape *s, const struct grid *g)
{
    const size_t channels = s->c_in > s->c_out ? s->c_in : s->c_out;
    return channels * g->plane + 2 * g->plane;
}

size_t cpu_conv2d_workspace(void *ctx, const struct conv_shape *s)
{
    const struct grid g = grid_of(s);
    const size_t threads = (size_t)((struct cpu_ctx *)ctx)->threads;
    const size_t batch_planes = (size_t)s->n * s->c_in * g.plane;
    return (threads * per_thread_floats(s, &g) + batch_planes) * sizeof(float);
}

static float *thread_scratch(const struct amp_tensor *ws, const struct conv_shape *s,
                             const struct grid *g, int thread)
{
    return (float *)ws->data + (size_t)thread * per_thread_floats(s, g);
}

static float *batch_planes(const struct amp_tensor *ws, const struct conv_shape *s,
                           const struct grid *g, int threads)
{
    return (float *)ws->data + (size_t)threads * per_thread_floats(s, g);
}

/* out[n, co] = bias[co] + sum_ci conv3x3(inp[n, ci], weight[co, ci]) */
static void conv_forward_f32(float *out, const float *inp, const float *weight, const float *bias,
                             const struct conv_shape *s, const struct amp_tensor *ws, int threads)
{
    const int N = (int)s->n, CI = (int)s->c_in, CO = (int)s->c_out;
    const struct grid g = grid_of(s);
    const size_t HW = (size_t)g.h * g.w;
#pragma omp parallel num_threads(threads)
    {
        float *xp = thread_scratch(ws, s, &g, omp_get_thread_num());
        float *acc = xp + (size_t)CI * g.plane;
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            for (int ci = 0; ci < CI; ci++)
                pad_plane(xp + ci * g.plane, inp + ((size_t)n * CI + ci) * HW, &g);
            for (int co = 0; co < CO; co++) {
                for (int ci = 0; ci < CI; ci++)
                    plane_taps(acc, xp + ci * g.plane, weight + ((size_t)co * CI + ci) * 9, &g,
                               ci > 0);
                unpad_grid(out + ((size_t)n * CO + co) * HW, acc, bias[co], &g);
            }
        }
    }
}

/* dweight[co, ci, ky, kx] = sum_{n, h, w} dout[n, co, h, w] * inp[n, ci, h+ky-1, w+kx-1];
 * dbias[co] = sum dout[n, co]. Each (co, ci) has one owner thread. */
static void conv_backward_filter_f32(float *dweight, float *dbias, const float *dout,
                                     const float *inp, const struct conv_shape *s,
                                     const struct amp_tensor *ws, int threads)
{
    const int N = (int)s->n, CI = (int)s->c_in, CO = (int)s->c_out;
    const struct grid g = grid_of(s);
    const size_t HW = (size_t)g.h * g.w;
    const int S = g.stride;
    float *xpad = batch_planes(ws, s, &g, threads);
#pragma omp parallel num_threads(threads)
    {
#pragma omp for schedule(static)
        for (int i = 0; i < N * CI; i++)
            pad_plane(xpad + (size_t)i * g.plane, inp + (size_t)i * HW, &g);
        float *gq = thread_scratch(ws, s, &g, omp_get_thread_num()); /* dout on the flat grid */
        memset(gq, 0, (size_t)g.q * sizeof *gq);
#pragma omp for collapse(2) schedule(static)
        for (int co = 0; co < CO; co++) {
            for (int ci = 0; ci < CI; ci++) {
                float a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0, a8 = 0;
                for (int n = 0; n < N; n++) {
                    grid_plane(gq, dout + ((size_t)n * CO + co) * HW, &g);
                    const float *xp = xpad + ((size_t)n * CI + ci) * g.plane;
                    const float *r0 = xp, *r1 = xp + S, *r2 = xp + 2 * S;
#pragma omp simd reduction(+ : a0, a1, a2, a3, a4, a5, a6, a7, a8)
                    for (int q = 0; q < g.q; q++) {
                        const float d = gq[q];
                        a0 += d * r0[q];
                        a1 += d * r0[q + 1];
                        a2 += d * r0[q + 2];
                        a3 += d * r1[q];
                        a4 += d * r1[q + 1];
                        a5 += d * r1[q + 2];
                        a6 += d * r2[q];
                        a7 += d * r2[q + 1];
                        a8 += d * r2[q + 2];
                    }
                }
                float *dw = dweight + ((size_t)co * CI + ci) * 9;
                dw[0] = a0, dw[1] = a1, dw[2] = a2, dw[3] = a3, dw[4] = a4;
                dw[5] = a5, dw[6] = a6, dw[7] = a7, dw[8] = a8;
            }
        }
    }
    for (int co = 0; co < CO; co++) {
        float sum = 0.0f;
        for (int n = 0; n < N; n++) {
            const float *gn = dout + ((size_t)n * CO + co) * HW;
#pragma omp simd reduction(+ : sum)
            for (size_t i = 0; i < HW; i++)
                sum += gn[i];
        }
        dbias[co] = sum;
    }
}

/* dinp[n, ci] = sum_co full-correlation(dout[n, co], weight[co, ci] rotated by 180 degrees) */
static void conv_backward_data_f32(float *dinp, const float *dout, const float *weight,
                                   const struct conv_shape *s, const struct amp_tensor *ws,
                                   int threads)
{
    const int N = (int)s->n, CI = (int)s->c_in, CO = (int)s->c_out;
    const struct grid g = grid_of(s);
    const size_t HW = (size_t)g.h * g.w;
#pragma omp parallel num_threads(threads)
    {
        float *gp = thread_scratch(ws, s, &g, omp_get_thread_num());
        float *acc = gp + (size_t)CO * g.plane;
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            for (int co = 0; co < CO; co++)
                pad_plane(gp + co * g.plane, dout + ((size_t)n * CO + co) * HW, &g);
            for (int ci = 0; ci < CI; ci++) {
                for (int co = 0; co < CO; co++) {
                    const float *w = weight + ((size_t)co * CI + ci) * 9;
                    const float rot[9] = { w[8], w[7], w[6], w[5], w[4], w[3], w[2], w[1], w[0] };
                    plane_taps(acc, gp + co * g.plane, rot, &g, co > 0);
                }
                unpad_grid(dinp + ((size_t)n * CI + ci) * HW, acc, 0.0f, &g);
            }
        }
    }
}

void cpu_conv2d_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                        const struct amp_tensor *weight, const struct amp_tensor *bias,
                        struct amp_tensor *workspace, const struct conv_shape *s,
                        enum amp_math math)
{
    (void)math;
    conv_forward_f32(out->data, inp->data, weight->data, bias->data, s, workspace,
                     ((struct cpu_ctx *)ctx)->threads);
}

void cpu_conv2d_backward(void *ctx, struct amp_tensor *dweight, struct amp_tensor *dbias,
                         struct amp_tensor *dinp, const struct amp_tensor *dout,
                         const struct amp_tensor *inp, const struct amp_tensor *weight,
                         struct amp_tensor *workspace, const struct conv_shape *s,
                         enum amp_math math)
{
    (void)math;
    int threads = ((struct cpu_ctx *)ctx)->threads;
    conv_backward_filter_f32(dweight->data, dbias->data, dout->data, inp->data, s, workspace,
                             threads);
    if (dinp)
        conv_backward_data_f32(dinp->data, dout->data, weight->data, s, workspace, threads);
}
