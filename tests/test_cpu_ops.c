/* The CPU reference's newer ops: the general convolution (any kernel, stride, padding, the bias
 * optional), softmax cross-entropy computed in FP16/BF16, max and global average pooling, batch
 * normalization and add. For each: hand-computed values on tiny inputs (pooling ties and NaN,
 * batch norm against double precision, odd sizes), central finite differences of each backward,
 * and for the convolution and batch norm bit-identical results at 1 and 2 threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "check.h"
#include "error.h"
#include "lowp.h"
#include "registry.h"
#include "rng.h"

static struct backend be, be1; /* 2 threads, 1 thread */

static struct amp_tensor make_on(struct backend *b, size_t n, enum amp_dtype dt,
                                 enum mem_category cat)
{
    struct amp_tensor t;
    if (tensor_alloc(b, &t, n, dt, cat) != AMP_OK) {
        fprintf(stderr, "%s\n", amp_last_error());
        exit(1);
    }
    return t;
}

static struct amp_tensor make(size_t n, enum amp_dtype dt)
{
    return make_on(&be, n, dt, MEM_ACTIVATIONS);
}

static void drop(struct amp_tensor *t)
{
    tensor_free(&be, t);
}

static float get(const struct amp_tensor *t, size_t i)
{
    switch (t->dtype) {
    case AMP_F16: return f16_to_f32(((const amp_f16 *)t->data)[i]);
    case AMP_BF16: return bf16_to_f32(((const amp_bf16 *)t->data)[i]);
    default: return ((const float *)t->data)[i];
    }
}

static void set(struct amp_tensor *t, size_t i, float v)
{
    switch (t->dtype) {
    case AMP_F16: ((amp_f16 *)t->data)[i] = f16_from_f32(v); break;
    case AMP_BF16: ((amp_bf16 *)t->data)[i] = bf16_from_f32(v); break;
    default: ((float *)t->data)[i] = v; break;
    }
}

static void fill(struct amp_tensor *t, const float *v)
{
    for (size_t i = 0; i < t->numel; i++)
        set(t, i, v[i]);
}

static void fill_uniform(struct amp_tensor *t, struct rng *r, float lo, float hi)
{
    for (size_t i = 0; i < t->numel; i++)
        set(t, i, rng_uniform(r, lo, hi));
}

/* Small integers: every product and sum of a test convolution is exact in FP32. */
static void fill_ints(struct amp_tensor *t, struct rng *r, int lo, int hi)
{
    for (size_t i = 0; i < t->numel; i++)
        set(t, i, (float)(lo + (int)rng_below(r, (uint64_t)(hi - lo + 1))));
}

/* v rounded to dt (as FP32). */
static float round_to(float v, enum amp_dtype dt)
{
    switch (dt) {
    case AMP_F16: return f16_to_f32(f16_from_f32(v));
    case AMP_BF16: return bf16_to_f32(bf16_from_f32(v));
    default: return v;
    }
}

static int same_bits(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static int tensors_identical(const struct amp_tensor *a, const struct amp_tensor *b)
{
    return a->numel == b->numel &&
           memcmp(a->data, b->data, a->numel * dtype_size(a->dtype)) == 0;
}

/* A workspace the ops must not rely on: poisoned with NaN. */
static struct amp_tensor make_ws(struct backend *b, const struct conv_shape *s)
{
    const size_t floats =
        b->ops->conv2d_workspace(b->ctx, s, AMP_F32, AMP_MATH_F32) / sizeof(float) + 1;
    struct amp_tensor ws = make_on(b, floats, AMP_F32, MEM_WORKSPACE);
    for (size_t i = 0; i < floats; i++)
        ((float *)ws.data)[i] = NAN;
    return ws;
}

/* ---- finite differences ---- */
#define ATOL 1e-3
#define RTOL 1e-2

/* L = sum out[i] * proj[i], in double. */
static double project(const struct amp_tensor *out, const struct amp_tensor *proj)
{
    double s = 0.0;
    for (size_t i = 0; i < out->numel; i++)
        s += (double)get(out, i) * get(proj, i);
    return s;
}

/* Central differences of loss() in each element of x (FP32) against analytic[]; passes when the
 * worst |fd - an| / (ATOL + RTOL |an|) <= 1. */
static void fd_check(const char *name, struct amp_tensor *x, const float *analytic, float eps,
                     double (*loss)(void *), void *arg)
{
    double worst = 0.0;
    float *v = x->data;
    for (size_t i = 0; i < x->numel; i++) {
        const float keep = v[i];
        v[i] = keep + eps;
        const double lp = loss(arg);
        v[i] = keep - eps;
        const double lm = loss(arg);
        v[i] = keep;
        const double fd = (lp - lm) / (2.0 * (double)eps);
        const double ratio = fabs(fd - analytic[i]) / (ATOL + RTOL * fabs(analytic[i]));
        if (ratio > worst)
            worst = ratio;
    }
    check(worst <= 1.0, "%s: worst |fd - analytic| / (atol + rtol |analytic|) = %.3g", name,
          worst);
}

static float *copy_out(const struct amp_tensor *t)
{
    float *v = malloc((t->numel ? t->numel : 1) * sizeof *v);
    for (size_t i = 0; i < t->numel; i++)
        v[i] = get(t, i);
    return v;
}

/* ================================ convolution ================================ */

static size_t conv_xn(const struct conv_shape *s)
{
    return (size_t)s->n * s->c_in * s->h * s->w;
}
static size_t conv_yn(const struct conv_shape *s)
{
    return (size_t)s->n * s->c_out * conv_out_h(s) * conv_out_w(s);
}
static size_t conv_wn(const struct conv_shape *s)
{
    return (size_t)s->c_out * s->c_in * s->kernel * s->kernel;
}

/* The input element under tap (ky, kx) of output (oy, ox), or -1 in the padding. */
static long conv_tap(const struct conv_shape *s, uint32_t n, uint32_t ci, uint32_t oy,
                     uint32_t ox, uint32_t ky, uint32_t kx)
{
    const long iy = (long)oy * s->stride + ky - s->pad, ix = (long)ox * s->stride + kx - s->pad;
    if (iy < 0 || ix < 0 || iy >= (long)s->h || ix >= (long)s->w)
        return -1;
    return (((long)n * s->c_in + ci) * s->h + iy) * s->w + ix;
}

/* Direct convolution in double: y (may be NULL), dw, db, dx (each may be NULL) for dy. */
static void conv_naive(const struct conv_shape *s, const struct amp_tensor *x,
                       const struct amp_tensor *w, const struct amp_tensor *b, double *y,
                       const struct amp_tensor *dy, double *dw, double *db, double *dx)
{
    const uint32_t OH = conv_out_h(s), OW = conv_out_w(s), K = s->kernel;
    if (dw)
        memset(dw, 0, conv_wn(s) * sizeof *dw);
    if (db)
        memset(db, 0, s->c_out * sizeof *db);
    if (dx)
        memset(dx, 0, conv_xn(s) * sizeof *dx);
    for (uint32_t n = 0; n < s->n; n++)
        for (uint32_t co = 0; co < s->c_out; co++)
            for (uint32_t oy = 0; oy < OH; oy++)
                for (uint32_t ox = 0; ox < OW; ox++) {
                    const size_t o = (((size_t)n * s->c_out + co) * OH + oy) * OW + ox;
                    double acc = b ? get(b, co) : 0.0;
                    const double g = dy ? get(dy, o) : 0.0;
                    if (db)
                        db[co] += g;
                    for (uint32_t ci = 0; ci < s->c_in; ci++)
                        for (uint32_t ky = 0; ky < K; ky++)
                            for (uint32_t kx = 0; kx < K; kx++) {
                                const long xi = conv_tap(s, n, ci, oy, ox, ky, kx);
                                if (xi < 0)
                                    continue;
                                const size_t wi = (((size_t)co * s->c_in + ci) * K + ky) * K + kx;
                                acc += (double)get(x, (size_t)xi) * get(w, wi);
                                if (dw)
                                    dw[wi] += g * get(x, (size_t)xi);
                                if (dx)
                                    dx[xi] += g * get(w, wi);
                            }
                    if (y)
                        y[o] = acc;
                }
}

/* out = d rounded to t's dtype, for every element: exactly (the sums are exact integers). */
static int equals_rounded(const struct amp_tensor *t, const double *d)
{
    for (size_t i = 0; i < t->numel; i++)
        if (!same_bits(get(t, i), round_to((float)d[i], t->dtype))) {
            fprintf(stderr, "  element %zu: %.9g, want %.9g\n", i, (double)get(t, i), d[i]);
            return 0;
        }
    return 1;
}

/* Hand-computed: a 2x2 kernel [[1, 0], [0, -1]] over x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]] at
 * stride 1 without padding, and at stride 2 with padding 1 (forward and backward). */
static void test_conv_hand(void)
{
    const float xv[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 }, wv[4] = { 1, 0, 0, -1 }, bv[1] = { 0.5f };
    struct amp_tensor x = make(9, AMP_F32), w = make(4, AMP_F32), b = make(1, AMP_F32);
    fill(&x, xv);
    fill(&w, wv);
    fill(&b, bv);
    {
        const struct conv_shape s = { .n = 1, .c_in = 1, .h = 3, .w = 3, .c_out = 1, .kernel = 2,
                                      .stride = 1, .pad = 0 };
        struct amp_tensor y = make(4, AMP_F32), ws = make_ws(&be, &s);
        be.ops->conv2d_forward(be.ctx, &y, &x, &w, &b, &ws, &s, AMP_MATH_F32, 0);
        check(get(&y, 0) == -3.5f && get(&y, 1) == -3.5f && get(&y, 2) == -3.5f &&
                  get(&y, 3) == -3.5f,
              "conv 2x2/1 pad 0 with bias: x[i] - x[i+4] + 0.5 = -3.5 everywhere (%g %g %g %g)",
              get(&y, 0), get(&y, 1), get(&y, 2), get(&y, 3));
        be.ops->conv2d_forward(be.ctx, &y, &x, &w, NULL, &ws, &s, AMP_MATH_F32, 0);
        check(get(&y, 0) == -4.0f && get(&y, 3) == -4.0f, "conv 2x2/1 pad 0 without bias: -4");
        drop(&y);
        drop(&ws);
    }
    {
        const struct conv_shape s = { .n = 1, .c_in = 1, .h = 3, .w = 3, .c_out = 1, .kernel = 2,
                                      .stride = 2, .pad = 1 };
        struct amp_tensor y = make(4, AMP_F32), ws = make_ws(&be, &s), dy = make(4, AMP_F32),
                          dw = make(4, AMP_F32), db = make(1, AMP_F32), dx = make(9, AMP_F32);
        be.ops->conv2d_forward(be.ctx, &y, &x, &w, NULL, &ws, &s, AMP_MATH_F32, 0);
        check(get(&y, 0) == -1 && get(&y, 1) == -3 && get(&y, 2) == -7 && get(&y, 3) == -4,
              "conv 2x2/2 pad 1: [-1, -3, -7, -4] (%g %g %g %g)", get(&y, 0), get(&y, 1),
              get(&y, 2), get(&y, 3));
        const float ones[4] = { 1, 1, 1, 1 };
        fill(&dy, ones);
        be.ops->conv2d_backward(be.ctx, &dw, &db, &dx, &dy, &x, &w, &ws, &s, AMP_MATH_F32);
        const float dw_want[4] = { 5, 10, 10, 20 };
        const float dx_want[9] = { -1, 0, -1, 0, 1, 0, -1, 0, -1 };
        int ok = get(&db, 0) == 4.0f;
        for (int i = 0; i < 4; i++)
            ok &= get(&dw, i) == dw_want[i];
        for (int i = 0; i < 9; i++)
            ok &= get(&dx, i) == dx_want[i];
        check(ok, "conv 2x2/2 pad 1 backward: dweight [5 10 10 20], dbias 4, dinput [-1 0 -1 "
                  "0 1 0 -1 0 -1]");
        be.ops->conv2d_backward(be.ctx, &dw, NULL, NULL, &dy, &x, &w, &ws, &s, AMP_MATH_F32);
        check(get(&dw, 3) == 20.0f, "conv backward without dbias and dinput: dweight");
        struct amp_tensor *all[] = { &y, &ws, &dy, &dw, &db, &dx };
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            drop(all[i]);
    }
    drop(&x);
    drop(&w);
    drop(&b);
}

/* Without a bias the sum alone is stored: a sum of -0 products stays -0 (+ 0 would make it +0),
 * on the 3x3 path and the general one. */
static void test_conv_negative_zero(void)
{
    const struct conv_shape shapes[2] = {
        { .n = 1, .c_in = 2, .h = 4, .w = 5, .c_out = 2, .kernel = 3, .stride = 1, .pad = 1 },
        { .n = 1, .c_in = 2, .h = 4, .w = 5, .c_out = 2, .kernel = 3, .stride = 2, .pad = 1 },
    };
    for (int k = 0; k < 2; k++) {
        const struct conv_shape *s = &shapes[k];
        struct amp_tensor x = make(conv_xn(s), AMP_F32), w = make(conv_wn(s), AMP_F32),
                          y = make(conv_yn(s), AMP_F32), ws = make_ws(&be, s);
        for (size_t i = 0; i < x.numel; i++)
            set(&x, i, 0.0f);
        for (size_t i = 0; i < w.numel; i++)
            set(&w, i, -1.0f);
        be.ops->conv2d_forward(be.ctx, &y, &x, &w, NULL, &ws, s, AMP_MATH_F32, 0);
        int ok = 1;
        for (size_t i = 0; i < y.numel; i++)
            ok &= get(&y, i) == 0.0f && signbit(get(&y, i));
        check(ok, "conv %ux%u/%u without bias: a sum of -0 products is -0", s->kernel, s->kernel,
              s->stride);
        drop(&x);
        drop(&w);
        drop(&y);
        drop(&ws);
    }
}

/* Geometries for the exact and finite-difference checks: odd sizes, channel counts that are not
 * multiples of the tiles, images spanning column panels, kernels larger than the stride, and a
 * stride larger than the kernel (input pixels no tap reads). */
static const struct conv_shape conv_shapes[] = {
    { .n = 2, .c_in = 3, .h = 5, .w = 7, .c_out = 4, .kernel = 1, .stride = 1, .pad = 0 },
    { .n = 3, .c_in = 5, .h = 7, .w = 6, .c_out = 7, .kernel = 1, .stride = 2, .pad = 0 },
    { .n = 2, .c_in = 3, .h = 7, .w = 9, .c_out = 5, .kernel = 3, .stride = 2, .pad = 1 },
    { .n = 2, .c_in = 2, .h = 6, .w = 5, .c_out = 3, .kernel = 2, .stride = 2, .pad = 0 },
    { .n = 1, .c_in = 2, .h = 7, .w = 8, .c_out = 3, .kernel = 5, .stride = 1, .pad = 2 },
    { .n = 2, .c_in = 3, .h = 9, .w = 11, .c_out = 8, .kernel = 7, .stride = 2, .pad = 3 },
    { .n = 2, .c_in = 2, .h = 8, .w = 7, .c_out = 3, .kernel = 3, .stride = 3, .pad = 0 },
    { .n = 2, .c_in = 2, .h = 5, .w = 4, .c_out = 2, .kernel = 4, .stride = 1, .pad = 3 },
    { .n = 2, .c_in = 3, .h = 6, .w = 5, .c_out = 2, .kernel = 3, .stride = 1, .pad = 0 },
    { .n = 2, .c_in = 2, .h = 5, .w = 6, .c_out = 13, .kernel = 3, .stride = 1, .pad = 1 },
    { .n = 1, .c_in = 1, .h = 1, .w = 1, .c_out = 2, .kernel = 2, .stride = 1, .pad = 1 },
    /* 3x3 / stride 1 / padding 1 over 16 or more channels: the GEMM path (its data gradient
     * a forward convolution of the flipped filters), output channels not a multiple of 16 */
    { .n = 2, .c_in = 17, .h = 5, .w = 6, .c_out = 19, .kernel = 3, .stride = 1, .pad = 1 },
    /* several forward tasks, filter-gradient chunks, image groups and channel blocks */
    { .n = 3, .c_in = 7, .h = 40, .w = 41, .c_out = 9, .kernel = 3, .stride = 1, .pad = 0 },
};
enum { NCONV = sizeof conv_shapes / sizeof conv_shapes[0] };

/* The presets' convolutions at a training batch (exact checks only: large for differences). */
static const struct conv_shape preset_conv_shapes[] = {
    { .n = 32, .c_in = 1, .h = 28, .w = 28, .c_out = 16, .kernel = 3, .stride = 1, .pad = 1 },
    { .n = 32, .c_in = 16, .h = 28, .w = 28, .c_out = 16, .kernel = 3, .stride = 1, .pad = 1 },
    { .n = 32, .c_in = 16, .h = 28, .w = 28, .c_out = 32, .kernel = 3, .stride = 2, .pad = 1 },
    { .n = 32, .c_in = 16, .h = 28, .w = 28, .c_out = 32, .kernel = 1, .stride = 2, .pad = 0 },
    { .n = 32, .c_in = 32, .h = 14, .w = 14, .c_out = 32, .kernel = 3, .stride = 1, .pad = 1 },
    { .n = 32, .c_in = 64, .h = 7, .w = 7, .c_out = 64, .kernel = 3, .stride = 1, .pad = 1 },
};
enum { NPRESET_CONV = sizeof preset_conv_shapes / sizeof preset_conv_shapes[0] };

/* Integer data: the op's results must equal the exact sums rounded once, in each dtype. */
static void test_conv_exact(const struct conv_shape *s, enum amp_dtype dt, int with_bias,
                            enum amp_math math)
{
    struct rng r;
    rng_seed(&r, 1000 + s->kernel * 31 + s->stride * 7 + s->c_out);
    struct amp_tensor x = make(conv_xn(s), dt), w = make(conv_wn(s), dt),
                      b = make(s->c_out, dt), y = make(conv_yn(s), dt), dy = make(conv_yn(s), dt),
                      dw = make(conv_wn(s), dt), db = make(s->c_out, dt),
                      dx = make(conv_xn(s), dt), ws = make_ws(&be, s);
    fill_ints(&x, &r, -2, 2);
    fill_ints(&w, &r, -2, 2);
    fill_ints(&b, &r, -3, 3);
    fill_ints(&dy, &r, -2, 2);
    double *yr = malloc(y.numel * sizeof *yr), *dwr = malloc(w.numel * sizeof *dwr),
           *dbr = malloc(s->c_out * sizeof *dbr), *dxr = malloc(x.numel * sizeof *dxr);
    conv_naive(s, &x, &w, with_bias ? &b : NULL, yr, &dy, dwr, dbr, dxr);
    be.ops->conv2d_forward(be.ctx, &y, &x, &w, with_bias ? &b : NULL, &ws, s, math, 0);
    be.ops->conv2d_backward(be.ctx, &dw, with_bias ? &db : NULL, &dx, &dy, &x, &w, &ws, s, math);
    const int ok_y = equals_rounded(&y, yr), ok_w = equals_rounded(&dw, dwr),
              ok_x = equals_rounded(&dx, dxr), ok_b = !with_bias || equals_rounded(&db, dbr);
    check(ok_y && ok_w && ok_x && ok_b,
          "conv %ux%u/%u pad %u, %ux%ux%ux%u -> %u, %s%s%s: exact (out %d dweight %d dinput %d "
          "dbias %d)",
          s->kernel, s->kernel, s->stride, s->pad, s->n, s->c_in, s->h, s->w, s->c_out,
          dtype_name(dt), math == AMP_MATH_TF32 ? " tf32" : "", with_bias ? "" : ", no bias",
          ok_y, ok_w, ok_x, ok_b);
    struct amp_tensor *all[] = { &x, &w, &b, &y, &dy, &dw, &db, &dx, &ws };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        drop(all[i]);
    free(yr);
    free(dwr);
    free(dbr);
    free(dxr);
}

/* TF32 mode rounds the FP32 inputs: with fractional data the result follows the TF32-rounded
 * inputs (to FP32 accuracy) and differs from the FP32 result. */
static void test_conv_tf32(void)
{
    const struct conv_shape s = conv_shapes[2];
    struct rng r;
    rng_seed(&r, 77);
    struct amp_tensor x = make(conv_xn(&s), AMP_F32), w = make(conv_wn(&s), AMP_F32),
                      xt = make(conv_xn(&s), AMP_F32), wt = make(conv_wn(&s), AMP_F32),
                      y = make(conv_yn(&s), AMP_F32), y32 = make(conv_yn(&s), AMP_F32),
                      ws = make_ws(&be, &s);
    fill_uniform(&x, &r, -1, 1);
    fill_uniform(&w, &r, -1, 1);
    for (size_t i = 0; i < x.numel; i++)
        set(&xt, i, tf32_round(get(&x, i)));
    for (size_t i = 0; i < w.numel; i++)
        set(&wt, i, tf32_round(get(&w, i)));
    double *yr = malloc(y.numel * sizeof *yr);
    conv_naive(&s, &xt, &wt, NULL, yr, NULL, NULL, NULL, NULL);
    be.ops->conv2d_forward(be.ctx, &y, &x, &w, NULL, &ws, &s, AMP_MATH_TF32, 0);
    be.ops->conv2d_forward(be.ctx, &y32, &x, &w, NULL, &ws, &s, AMP_MATH_F32, 0);
    double worst = 0;
    int differs = 0;
    for (size_t i = 0; i < y.numel; i++) {
        const double e = fabs(get(&y, i) - yr[i]);
        worst = e > worst ? e : worst;
        differs |= get(&y, i) != get(&y32, i);
    }
    check(worst < 1e-5 && differs, "conv 3x3/2 in TF32: the TF32-rounded inputs' sums (worst "
                                   "%.3g), not the FP32 ones", worst);
    struct amp_tensor *all[] = { &x, &w, &xt, &wt, &y, &y32, &ws };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        drop(all[i]);
    free(yr);
}

/* Largest |a - ref| over the largest |ref|: the error of a whole tensor. */
static double tensor_rel_error(const struct amp_tensor *a, const double *ref)
{
    double diff = 0, big = 0;
    for (size_t i = 0; i < a->numel; i++) {
        diff = fmax(diff, fabs(get(a, i) - ref[i]));
        big = fmax(big, fabs(ref[i]));
    }
    return big > 0 ? diff / big : diff;
}

/* FP32 math keeps FP32's accuracy with fractional data, which the integer checks cannot see (an
 * input rounded to fewer bits: ~1e-3; a filter gradient summed in one chain over the whole
 * batch: 5.6e-6): every result within 1e-5 of the double-precision sums, the filter gradient's
 * within 4e-6 (measured at most 1.6e-6 with chunked sums), relative to the tensor's largest
 * value. */
static void test_conv_fp32_accuracy(const struct conv_shape *s)
{
    struct rng r;
    rng_seed(&r, 4242 + s->c_in + s->stride);
    struct amp_tensor x = make(conv_xn(s), AMP_F32), w = make(conv_wn(s), AMP_F32),
                      y = make(conv_yn(s), AMP_F32), dy = make(conv_yn(s), AMP_F32),
                      dw = make(conv_wn(s), AMP_F32), dx = make(conv_xn(s), AMP_F32),
                      ws = make_ws(&be, s);
    fill_uniform(&x, &r, -1, 1);
    fill_uniform(&w, &r, -1, 1);
    fill_uniform(&dy, &r, -1, 1);
    double *yr = malloc(y.numel * sizeof *yr), *dwr = malloc(w.numel * sizeof *dwr),
           *dxr = malloc(x.numel * sizeof *dxr);
    conv_naive(s, &x, &w, NULL, yr, &dy, dwr, NULL, dxr);
    be.ops->conv2d_forward(be.ctx, &y, &x, &w, NULL, &ws, s, AMP_MATH_F32, 0);
    be.ops->conv2d_backward(be.ctx, &dw, NULL, &dx, &dy, &x, &w, &ws, s, AMP_MATH_F32);
    const double ey = tensor_rel_error(&y, yr), ew = tensor_rel_error(&dw, dwr),
                 ex = tensor_rel_error(&dx, dxr);
    check(ey < 1e-5 && ew < 4e-6 && ex < 1e-5,
          "conv %ux%u/%u, %ux%ux%ux%u -> %u in FP32: relative errors out %.2g dweight %.2g "
          "dinput %.2g (limits 1e-5, 4e-6 for the long sums of dweight)",
          s->kernel, s->kernel, s->stride, s->n, s->c_in, s->h, s->w, s->c_out, ey, ew, ex);
    struct amp_tensor *all[] = { &x, &w, &y, &dy, &dw, &dx, &ws };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        drop(all[i]);
    free(yr);
    free(dwr);
    free(dxr);
}

struct conv_case {
    struct conv_shape s;
    int bias;
    struct amp_tensor x, w, b, y, proj, ws;
};

static double conv_loss(void *arg)
{
    struct conv_case *c = arg;
    be.ops->conv2d_forward(be.ctx, &c->y, &c->x, &c->w, c->bias ? &c->b : NULL, &c->ws, &c->s,
                           AMP_MATH_F32, 0);
    return project(&c->y, &c->proj);
}

static void test_conv_fd(const struct conv_shape *s, int bias, struct rng *r)
{
    struct conv_case c = { .s = *s, .bias = bias };
    c.x = make(conv_xn(s), AMP_F32);
    c.w = make(conv_wn(s), AMP_F32);
    c.b = make(s->c_out, AMP_F32);
    c.y = make(conv_yn(s), AMP_F32);
    c.proj = make(conv_yn(s), AMP_F32);
    c.ws = make_ws(&be, s);
    fill_uniform(&c.x, r, -1, 1);
    fill_uniform(&c.w, r, -1, 1);
    fill_uniform(&c.b, r, -1, 1);
    fill_uniform(&c.proj, r, -1, 1);
    struct amp_tensor dw = make(c.w.numel, AMP_F32), db = make(s->c_out, AMP_F32),
                      dx = make(c.x.numel, AMP_F32);
    be.ops->conv2d_backward(be.ctx, &dw, bias ? &db : NULL, &dx, &c.proj, &c.x, &c.w, &c.ws, s,
                            AMP_MATH_F32);
    char name[128];
    snprintf(name, sizeof name, "conv %ux%u/%u pad %u%s", s->kernel, s->kernel, s->stride, s->pad,
             bias ? "" : " (no bias)");
    char what[160];
    snprintf(what, sizeof what, "%s dweight", name);
    fd_check(what, &c.w, dw.data, 1e-2f, conv_loss, &c);
    snprintf(what, sizeof what, "%s dinput", name);
    fd_check(what, &c.x, dx.data, 1e-2f, conv_loss, &c);
    if (bias) {
        snprintf(what, sizeof what, "%s dbias", name);
        fd_check(what, &c.b, db.data, 1e-2f, conv_loss, &c);
    }
    struct amp_tensor *all[] = { &c.x, &c.w, &c.b, &c.y, &c.proj, &c.ws, &dw, &db, &dx };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        drop(all[i]);
}

/* The same random FP32 (and BF16) problem at 1 and 2 threads: identical bits. The output and
 * the input gradient in out_dt: dt, or FP16/BF16 from FP32 operands (an FP8 layer's). */
static void test_conv_threads_into(const struct conv_shape *s, enum amp_dtype dt,
                                   enum amp_dtype out_dt, enum amp_math math)
{
    struct rng r;
    rng_seed(&r, 4242);
    struct backend *bs[2] = { &be1, &be };
    struct amp_tensor t[2][9];
    for (int k = 0; k < 2; k++) {
        struct backend *b = bs[k];
        t[k][0] = make_on(b, conv_xn(s), dt, MEM_ACTIVATIONS);
        t[k][1] = make_on(b, conv_wn(s), dt, MEM_WEIGHTS);
        t[k][2] = make_on(b, s->c_out, dt, MEM_WEIGHTS);
        t[k][3] = make_on(b, conv_yn(s), out_dt, MEM_ACTIVATIONS);
        t[k][4] = make_on(b, conv_wn(s), dt, MEM_WEIGHT_GRADS);
        t[k][5] = make_on(b, s->c_out, dt, MEM_WEIGHT_GRADS);
        t[k][6] = make_on(b, conv_xn(s), out_dt, MEM_ACTIVATION_GRADS);
        t[k][8] = make_on(b, conv_yn(s), dt, MEM_ACTIVATION_GRADS);
        t[k][7] = make_ws(b, s);
    }
    for (int i = 0; i < 3; i++) {
        fill_uniform(&t[0][i], &r, -1, 1);
        memcpy(t[1][i].data, t[0][i].data, t[0][i].numel * dtype_size(dt));
    }
    for (int k = 0; k < 2; k++) {
        struct backend *b = bs[k];
        b->ops->conv2d_forward(b->ctx, &t[k][3], &t[k][0], &t[k][1], &t[k][2], &t[k][7], s, math, 0);
        /* the forward output (widened to dt) serves as the incoming gradient */
        b->ops->cast(b->ctx, &t[k][8], &t[k][3]);
        b->ops->conv2d_backward(b->ctx, &t[k][4], &t[k][5], &t[k][6], &t[k][8], &t[k][0],
                                &t[k][1], &t[k][7], s, math);
    }
    check(tensors_identical(&t[0][3], &t[1][3]) && tensors_identical(&t[0][4], &t[1][4]) &&
              tensors_identical(&t[0][5], &t[1][5]) && tensors_identical(&t[0][6], &t[1][6]),
          "conv %ux%u/%u pad %u, %ux%ux%ux%u -> %u in %s%s%s%s: identical at 1 and 2 threads",
          s->kernel, s->kernel, s->stride, s->pad, s->n, s->c_in, s->h, s->w, s->c_out,
          dtype_name(dt), out_dt != dt ? " into " : "", out_dt != dt ? dtype_name(out_dt) : "",
          math == AMP_MATH_TF32 ? " tf32" : "");
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 9; i++)
            tensor_free(bs[k], &t[k][i]);
}

static void test_conv_threads(const struct conv_shape *s, enum amp_dtype dt, enum amp_math math)
{
    test_conv_threads_into(s, dt, dt, math);
}

/* The harness sizes one workspace for the largest batch and runs smaller ones in it: the size
 * must not shrink as n grows. */
static void test_conv_workspace_monotone(void)
{
    int ok = 1;
    for (int i = 0; i < NCONV; i++)
        for (int k = 0; k < 2; k++) {
            struct backend *b = k ? &be : &be1;
            struct conv_shape s = conv_shapes[i];
            size_t last = 0;
            for (uint32_t n = 1; n <= 70; n++) {
                s.n = n;
                const size_t ws = b->ops->conv2d_workspace(b->ctx, &s, AMP_F32, AMP_MATH_F32);
                ok &= ws >= last;
                last = ws;
            }
        }
    check(ok, "conv2d_workspace does not shrink as the batch grows");
}

static void test_conv(struct rng *r)
{
    test_conv_workspace_monotone();
    test_conv_hand();
    test_conv_negative_zero();
    for (int i = 0; i < NCONV; i++) {
        test_conv_exact(&conv_shapes[i], AMP_F32, 1, AMP_MATH_F32);
        test_conv_exact(&conv_shapes[i], AMP_F32, 0, AMP_MATH_TF32);
        test_conv_exact(&conv_shapes[i], AMP_F16, 1, AMP_MATH_F32);
        test_conv_exact(&conv_shapes[i], AMP_BF16, 0, AMP_MATH_F32);
    }
    for (int i = 0; i < NPRESET_CONV; i++) {
        test_conv_exact(&preset_conv_shapes[i], AMP_F32, i % 2, AMP_MATH_F32);
        test_conv_exact(&preset_conv_shapes[i], AMP_F16, 0, AMP_MATH_F32);
        test_conv_fp32_accuracy(&preset_conv_shapes[i]);
    }
    test_conv_tf32();
    for (int i = 0; i < NCONV - 1; i++) /* (the last one is large for differences) */
        test_conv_fd(&conv_shapes[i], i % 2 == 0, r);
    test_conv_fd(&conv_shapes[2], 0, r);
    test_conv_fd(&conv_shapes[1], 1, r);
    const struct conv_shape big[] = {
        conv_shapes[NCONV - 1],
        { .n = 5, .c_in = 6, .h = 13, .w = 11, .c_out = 10, .kernel = 3, .stride = 2, .pad = 1 },
        { .n = 4, .c_in = 16, .h = 9, .w = 9, .c_out = 20, .kernel = 1, .stride = 2, .pad = 0 },
        { .n = 3, .c_in = 4, .h = 12, .w = 10, .c_out = 7, .kernel = 3, .stride = 1, .pad = 1 },
        { .n = 5, .c_in = 16, .h = 14, .w = 13, .c_out = 33, .kernel = 3, .stride = 1, .pad = 1 },
        { .n = 9, .c_in = 40, .h = 7, .w = 7, .c_out = 6, .kernel = 3, .stride = 1, .pad = 1 },
    };
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        test_conv_threads(&big[i], AMP_F32, AMP_MATH_F32);
        test_conv_threads(&big[i], AMP_F32, AMP_MATH_TF32);
        test_conv_threads(&big[i], AMP_BF16, AMP_MATH_F32);
        test_conv_threads_into(&big[i], AMP_F32, AMP_BF16, AMP_MATH_F32);
    }
    /* resnet8's convs at batch 32 (the strided ones' filter gradient once chunked its batch by
     * the thread count), also with FP8 layers' dtypes (FP32 operands, BF16 results). */
    const struct conv_shape resnet8[] = {
        { .n = 32, .c_in = 16, .h = 28, .w = 28, .c_out = 16, .kernel = 3, .stride = 1, .pad = 1 },
        { .n = 32, .c_in = 16, .h = 28, .w = 28, .c_out = 32, .kernel = 3, .stride = 2, .pad = 1 },
        { .n = 32, .c_in = 32, .h = 14, .w = 14, .c_out = 32, .kernel = 3, .stride = 1, .pad = 1 },
        { .n = 32, .c_in = 16, .h = 28, .w = 28, .c_out = 32, .kernel = 1, .stride = 2, .pad = 0 },
        { .n = 32, .c_in = 32, .h = 14, .w = 14, .c_out = 64, .kernel = 3, .stride = 2, .pad = 1 },
    };
    for (size_t i = 0; i < sizeof resnet8 / sizeof resnet8[0]; i++) {
        test_conv_threads_into(&resnet8[i], AMP_F32, AMP_BF16, AMP_MATH_F32);
        test_conv_threads(&resnet8[i], AMP_F32, AMP_MATH_F32);
        test_conv_threads(&resnet8[i], AMP_BF16, AMP_MATH_F32);
    }
}

/* ============================ softmax cross-entropy ============================ */

/* The definition, row by row, with rounding to dt after every intermediate (dt F32: FP32
 * throughout, the FP32 op's own formula). */
static void xent_expected(const float *z, const int32_t *y, uint32_t n, uint32_t m,
                          enum amp_dtype dt, double *loss, float *dz, float g)
{
    *loss = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        const float *zi = z + (size_t)i * m;
        uint32_t am = 0;
        for (uint32_t j = 1; j < m; j++)
            if (zi[j] > zi[am])
                am = j;
        float d[16], e[16], sum = 0.0f;
        for (uint32_t j = 0; j < m; j++) {
            if (dt == AMP_F32) {
                e[j] = expf(zi[j] - zi[am]);
            } else {
                d[j] = round_to(zi[j] - zi[am], dt);
                e[j] = round_to(expf(d[j]), dt);
            }
            sum += e[j];
        }
        if (dt == AMP_F32) {
            *loss += (double)(logf(sum) + zi[am] - zi[y[i]]);
            const float inv = 1.0f / sum;
            for (uint32_t j = 0; j < m; j++)
                dz[(size_t)i * m + j] = (e[j] * inv - (j == (uint32_t)y[i] ? 1.0f : 0.0f)) * g;
            continue;
        }
        sum = round_to(sum, dt);
        const float lse = round_to(logf(sum), dt);
        *loss += (double)round_to(lse - d[y[i]], dt);
        for (uint32_t j = 0; j < m; j++)
            dz[(size_t)i * m + j] =
                (round_to(e[j] / sum, dt) - (j == (uint32_t)y[i] ? 1.0f : 0.0f)) * g;
    }
}

static void test_softmax(void)
{
    enum { N = 3, M = 5 };
    const float zv[N * M] = { 1.0f, 2.0f, 3.0f, -1.0f, 0.5f,   0.1f, 0.2f, 0.3f, 0.4f, 0.5f,
                              7.0f, -3.0f, 2.25f, 7.0f, 6.9f };
    const int32_t yv[N] = { 2, 0, 4 };
    struct amp_tensor z = make(N * M, AMP_F32), y = make_on(&be, N, AMP_I32, MEM_ACTIVATIONS),
                      st = make(2, AMP_F32), dz = make(N * M, AMP_F32);
    fill(&z, zv);
    memcpy(y.data, yv, sizeof yv);
    const enum amp_dtype dts[3] = { AMP_F32, AMP_F16, AMP_BF16 };
    float losses[3];
    for (int k = 0; k < 3; k++) {
        double want_loss;
        float want_dz[N * M];
        xent_expected(zv, yv, N, M, dts[k], &want_loss, want_dz, 1.0f / N);
        be.ops->softmax_xent(be.ctx, &dz, &st, &z, &y, NULL, N, M, dts[k]);
        int ok_dz = 1;
        for (int i = 0; i < N * M; i++)
            ok_dz &= same_bits(get(&dz, i), want_dz[i]);
        losses[k] = get(&st, 0);
        check(same_bits(get(&st, 0), (float)want_loss) && get(&st, 1) == 1.0f && ok_dz,
              "softmax_xent computed in %s: the loss (%.9g, want %.9g), 1 correct (%g), and "
              "dlogits from the rounded probabilities (%d)", dtype_name(dts[k]), get(&st, 0),
              want_loss, get(&st, 1), ok_dz);
        /* without dlogits: the same statistics */
        be.ops->softmax_xent(be.ctx, NULL, &st, &z, &y, NULL, N, M, dts[k]);
        check(same_bits(get(&st, 0), losses[k]), "softmax_xent in %s without dlogits: same loss",
              dtype_name(dts[k]));
    }
    check(losses[1] != losses[0] && losses[2] != losses[0] && losses[1] != losses[2],
          "softmax_xent: the FP16 and BF16 losses differ from FP32's (%.9g %.9g %.9g)",
          losses[0], losses[1], losses[2]);
    /* A hand-checked row: logits [0, 0] in BF16: d = 0, e = 1, sum 2, log 2 -> 0.69140625
     * (BF16), p = 0.5; the loss is the BF16 log 2. */
    const float z2[2] = { 0.0f, 0.0f };
    struct amp_tensor zz = make(2, AMP_F32), dzz = make(2, AMP_F32);
    fill(&zz, z2);
    const int32_t y0 = 0;
    memcpy(y.data, &y0, sizeof y0);
    be.ops->softmax_xent(be.ctx, &dzz, &st, &zz, &y, NULL, 1, 2, AMP_BF16);
    check(get(&st, 0) == 0.69140625f && get(&dzz, 0) == -0.5f && get(&dzz, 1) == 0.5f,
          "softmax_xent in BF16 on [0, 0]: loss 0.69140625 (log 2 in BF16), dlogits -0.5, 0.5 "
          "(%.9g %g %g)", get(&st, 0), get(&dzz, 0), get(&dzz, 1));
    struct amp_tensor *all[] = { &z, &y, &st, &dz, &zz, &dzz };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        drop(all[i]);
}

/* ================================== pooling ================================== */

static void test_maxpool_hand(enum amp_dtype dt)
{
    /* Plane 0, 4 x 5 (the last column is dropped): windows with a tie (first wins), all equal,
     * a NaN (with a later NaN: the first is the maximum), and a tie across rows. Plane 1, 3 x 2
     * (the last row is dropped): -0 before +0 (the first, -0). */
    const float v[20 + 6] = { 1, 3, 2, 2, 9,   3, 0, 2, 2, 9,   -1, NAN, 5, 4, 9,
                              NAN, 7, 4, 5, 9,
                              -0.0f, 0.0f, -INFINITY, -INFINITY, 100, 100 };
    struct amp_tensor x = make(20 + 6, dt), y = make(4 + 1, dt), dy = make(5, dt),
                      dx = make(26, dt);
    fill(&x, v);
    /* two planes of different shapes: run them as two calls */
    struct amp_tensor x0 = x, x1 = x, y0 = y, y1 = y, dy0 = dy, dy1 = dy, dx0 = dx, dx1 = dx;
    x0.numel = 20, y0.numel = 4, dy0.numel = 4, dx0.numel = 20;
    const size_t es = dtype_size(dt);
    x1.data = (char *)x.data + 20 * es, x1.numel = 6;
    y1.data = (char *)y.data + 4 * es, y1.numel = 1;
    dy1.data = (char *)dy.data + 4 * es, dy1.numel = 1;
    dx1.data = (char *)dx.data + 20 * es, dx1.numel = 6;
    be.ops->maxpool_forward(be.ctx, &y0, &x0, 1, 1, 4, 5);
    be.ops->maxpool_forward(be.ctx, &y1, &x1, 1, 1, 3, 2);
    check(get(&y, 0) == 3 && get(&y, 1) == 2 && isnan(get(&y, 2)) && get(&y, 3) == 5 &&
              get(&y, 4) == 0 && signbit(get(&y, 4)),
          "maxpool %s: [3, 2, NaN, 5] and -0 (%g %g %g %g %g)", dtype_name(dt), get(&y, 0),
          get(&y, 1), get(&y, 2), get(&y, 3), get(&y, 4));
    const float g[5] = { 10, 20, 30, 40, 50 };
    fill(&dy, g);
    for (size_t i = 0; i < 26; i++)
        set(&dx, i, 123.0f); /* overwritten */
    be.ops->maxpool_backward(be.ctx, &dx0, &dy0, &x0, 1, 1, 4, 5);
    be.ops->maxpool_backward(be.ctx, &dx1, &dy1, &x1, 1, 1, 3, 2);
    float want[26] = { 0 };
    want[1] = 10;  /* the first 3 of window (0, 0) */
    want[2] = 20;  /* the first of four 2s */
    want[11] = 30; /* the first NaN */
    want[12] = 40; /* the first 5 */
    want[20] = 50; /* -0 */
    int ok = 1;
    for (int i = 0; i < 26; i++)
        ok &= get(&dx, i) == want[i];
    check(ok, "maxpool backward %s: each gradient to its window's first maximum, 0 elsewhere",
          dtype_name(dt));
    struct amp_tensor *all[] = { &x, &y, &dy, &dx };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        drop(all[i]);
}

struct pool_case {
    uint32_t n, c, h, w;
    struct amp_tensor x, y, proj;
    int avg;
};

static double pool_loss(void *arg)
{
    struct pool_case *p = arg;
    if (p->avg)
        be.ops->avgpool_forward(be.ctx, &p->y, &p->x, p->n, p->c, p->h * p->w);
    else
        be.ops->maxpool_forward(be.ctx, &p->y, &p->x, p->n, p->c, p->h, p->w);
    return project(&p->y, &p->proj);
}

/* Planes of the vector paths (8 windows at a time, the last group overlapping the one before;
 * rows of fewer than 8 windows; odd edges) with many ties, signed zeros, infinities and NaNs:
 * the forward and backward against the rule, bit for bit. */
static void test_maxpool_wide(enum amp_dtype dt, uint32_t h, uint32_t w, struct rng *r)
{
    const uint32_t n = 2, c = 3, oh = h / 2, ow = w / 2;
    const float vals[] = { -1.0f, 0.0f, -0.0f, 1.0f, 2.0f, 2.0f, NAN, INFINITY, -INFINITY, 0.5f };
    const size_t nx = (size_t)n * c * h * w, ny = (size_t)n * c * oh * ow;
    struct amp_tensor x = make(nx, dt), y = make(ny, dt), dy = make(ny, dt), dx = make(nx, dt);
    for (size_t i = 0; i < nx; i++)
        set(&x, i, vals[(size_t)rng_uniform(r, 0.0f, 9.999f)]);
    for (size_t i = 0; i < ny; i++)
        set(&dy, i, (float)(i % 97) + 1.0f);
    for (size_t i = 0; i < nx; i++)
        set(&dx, i, 123.0f); /* overwritten */
    be.ops->maxpool_forward(be.ctx, &y, &x, n, c, h, w);
    be.ops->maxpool_backward(be.ctx, &dx, &dy, &x, n, c, h, w);
    int okf = 1, okb = 1;
    char *want = calloc(nx, 1); /* the elements some gradient is routed to */
    for (size_t pl = 0; pl < (size_t)n * c; pl++)
        for (uint32_t oy = 0; oy < oh; oy++)
            for (uint32_t ox = 0; ox < ow; ox++) {
                const size_t top = pl * h * w + (size_t)(2 * oy) * w + 2 * ox;
                const size_t idx[4] = { top, top + 1, top + w, top + w + 1 };
                size_t best = 0;
                for (int j = 0; j < 4; j++) { /* the first NaN, else the first of the largest */
                    const float v = get(&x, idx[j]), b = get(&x, idx[best]);
                    if (isnan(b))
                        break;
                    if (isnan(v) || v > b)
                        best = (size_t)j;
                }
                const size_t o = (pl * oh + oy) * ow + ox, at = idx[best];
                const float yo = get(&y, o), xa = get(&x, at);
                okf &= isnan(xa) ? isnan(yo) : memcmp(&yo, &xa, sizeof yo) == 0;
                okb &= get(&dx, at) == get(&dy, o);
                want[at] = 1;
            }
    for (size_t i = 0; i < nx; i++)
        if (!want[i]) {
            const float d = get(&dx, i);
            okb &= d == 0.0f && !signbit(d);
        }
    free(want);
    check(okf, "maxpool %s %ux%u: the rule's element, bit for bit (ties, -0, inf, NaN)",
          dtype_name(dt), h, w);
    check(okb, "maxpool backward %s %ux%u: each gradient to the rule's element, +0 elsewhere",
          dtype_name(dt), h, w);
    struct amp_tensor *all[] = { &x, &y, &dy, &dx };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        drop(all[i]);
}

static void test_pool_fd(int avg, struct rng *r)
{
    struct pool_case p = { .n = 2, .c = 3, .h = 5, .w = 7, .avg = avg };
    const size_t xn = (size_t)p.n * p.c * p.h * p.w;
    const size_t yn = avg ? (size_t)p.n * p.c : (size_t)p.n * p.c * (p.h / 2) * (p.w / 2);
    p.x = make(xn, AMP_F32);
    p.y = make(yn, AMP_F32);
    p.proj = make(yn, AMP_F32);
    /* distinct values at least 0.1 apart (a shuffled ramp): no window ties within 2 * eps */
    uint32_t *idx = malloc(xn * sizeof *idx);
    for (uint32_t i = 0; i < xn; i++)
        idx[i] = i;
    rng_shuffle(r, idx, xn);
    for (size_t i = 0; i < xn; i++)
        set(&p.x, i, 0.1f * (float)idx[i] - 5.0f);
    free(idx);
    fill_uniform(&p.proj, r, -1, 1);
    struct amp_tensor dx = make(xn, AMP_F32);
    pool_loss(&p);
    if (avg)
        be.ops->avgpool_backward(be.ctx, &dx, &p.proj, p.n, p.c, p.h * p.w);
    else
        be.ops->maxpool_backward(be.ctx, &dx, &p.proj, &p.x, p.n, p.c, p.h, p.w);
    fd_check(avg ? "avgpool dinput" : "maxpool dinput (odd h and w)", &p.x, dx.data, 1e-2f,
             pool_loss, &p);
    drop(&p.x);
    drop(&p.y);
    drop(&p.proj);
    drop(&dx);
}

static void test_avgpool_hand(void)
{
    /* planes [1..6] (hw 6): 3.5; [0.1, 0.2, 0.3, ...] in FP16 */
    const float v[12] = { 1, 2, 3, 4, 5, 6, 0.1f, 0.2f, 0.3f, 0.7f, -0.25f, 1e-3f };
    struct amp_tensor x = make(12, AMP_F32), y = make(2, AMP_F32), yh = make(2, AMP_F16);
    fill(&x, v);
    be.ops->avgpool_forward(be.ctx, &y, &x, 1, 2, 6);
    float s = 0.0f;
    for (int i = 6; i < 12; i++) /* index order */
        s += v[i];
    check(get(&y, 0) == 3.5f && same_bits(get(&y, 1), s / 6.0f),
          "avgpool: 21 / 6 = 3.5, and the FP32 sum in index order / 6 (%.9g)", get(&y, 1));
    struct numerics_counts cnt;
    be.ops->read_counts(be.ctx, &cnt);
    be.ops->avgpool_forward(be.ctx, &yh, &x, 2, 1, 6);
    be.ops->read_counts(be.ctx, &cnt);
    check(get(&yh, 0) == 3.5f && same_bits(get(&yh, 1), round_to(s / 6.0f, AMP_F16)) &&
              cnt.rounded[MEM_ACTIVATIONS] == 2,
          "avgpool into FP16: rounded once, 2 roundings counted");
    /* backward: dout [3, -1] over hw 4 -> 0.75 and -0.25 */
    const float g[2] = { 3, -1 };
    struct amp_tensor dy = make(2, AMP_F32), dx = make(8, AMP_BF16);
    fill(&dy, g);
    be.ops->avgpool_backward(be.ctx, &dx, &dy, 2, 1, 4);
    int ok = 1;
    for (int i = 0; i < 8; i++)
        ok &= get(&dx, i) == (i < 4 ? 0.75f : -0.25f);
    check(ok, "avgpool backward: dout / hw into every element (BF16)");
    struct amp_tensor *all[] = { &x, &y, &yh, &dy, &dx };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        drop(all[i]);
}

/* ============================== batch normalization ============================== */

struct bn_case {
    uint32_t n, c, hw;
    struct amp_tensor x, y, proj, gamma, beta, rm, rv, sm, si;
    struct bn_state st;
};

static void bn_make(struct bn_case *b, struct backend *on, uint32_t n, uint32_t c, uint32_t hw,
                    enum amp_dtype dt, enum amp_dtype stat_dt)
{
    b->n = n, b->c = c, b->hw = hw;
    const size_t xn = (size_t)n * c * hw;
    b->x = make_on(on, xn, dt, MEM_ACTIVATIONS);
    b->y = make_on(on, xn, dt, MEM_ACTIVATIONS);
    b->proj = make_on(on, xn, AMP_F32, MEM_ACTIVATIONS);
    b->gamma = make_on(on, c, stat_dt, MEM_WEIGHTS);
    b->beta = make_on(on, c, stat_dt, MEM_WEIGHTS);
    b->rm = make_on(on, c, stat_dt, MEM_WEIGHTS);
    b->rv = make_on(on, c, stat_dt, MEM_WEIGHTS);
    b->sm = make_on(on, c, stat_dt, MEM_ACTIVATIONS);
    b->si = make_on(on, c, stat_dt, MEM_ACTIVATIONS);
    b->st = (struct bn_state){ .gamma = &b->gamma, .beta = &b->beta, .running_mean = &b->rm,
                               .running_var = &b->rv, .save_mean = &b->sm,
                               .save_invstd = &b->si, .momentum = 0.1f, .eps = 1e-5f };
}

static void bn_free(struct bn_case *b, struct backend *on)
{
    struct amp_tensor *all[] = { &b->x, &b->y, &b->proj, &b->gamma, &b->beta, &b->rm, &b->rv,
                                 &b->sm, &b->si };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        tensor_free(on, all[i]);
}

/* Hand-computed: one channel [1, 2, 3, 4] (n 2, hw 2): mean 2.5, biased variance 1.25, gamma 2,
 * beta 1; running statistics from (0, 1) become (0.25, 0.9 + 0.1 * 5 / 3). */
static void test_bn_hand(void)
{
    struct bn_case b;
    bn_make(&b, &be, 2, 1, 2, AMP_F32, AMP_F32);
    const float xv[4] = { 1, 2, 3, 4 };
    fill(&b.x, xv);
    set(&b.gamma, 0, 2.0f);
    set(&b.beta, 0, 1.0f);
    set(&b.rm, 0, 0.0f);
    set(&b.rv, 0, 1.0f);
    be.ops->batchnorm_forward(be.ctx, &b.y, &b.x, &b.st, 2, 1, 2, 1);
    const double inv = 1.0 / sqrt(1.25 + 1e-5);
    int ok = fabs(get(&b.sm, 0) - 2.5) < 1e-7 && fabs(get(&b.si, 0) - inv) < 1e-6 &&
             fabs(get(&b.rm, 0) - 0.25) < 1e-7 && fabs(get(&b.rv, 0) - (0.9 + 0.5 / 3)) < 1e-6;
    for (int i = 0; i < 4; i++)
        ok &= fabs(get(&b.y, i) - ((xv[i] - 2.5) * inv * 2 + 1)) < 1e-5;
    check(ok, "batchnorm by hand: mean 2.5, invstd 1/sqrt(1.25 + eps), running (0.25, %.7g), "
              "out (x - 2.5) * invstd * 2 + 1", get(&b.rv, 0));
    /* evaluation: from the running statistics, which stay */
    be.ops->batchnorm_forward(be.ctx, &b.y, &b.x, &b.st, 2, 1, 2, 0);
    const double rinv = 1.0 / sqrt((double)get(&b.rv, 0) + 1e-5);
    ok = fabs(get(&b.rm, 0) - 0.25) < 1e-7;
    for (int i = 0; i < 4; i++)
        ok &= fabs(get(&b.y, i) - ((xv[i] - 0.25) * rinv * 2 + 1)) < 1e-5;
    check(ok, "batchnorm evaluation: out from the running statistics, nothing updated");
    bn_free(&b, &be);
}

/* Against double precision on random data (odd sizes), FP32 throughout; and the saved statistics
 * in BF16: stored rounded, and the stored values used. */
static void test_bn_double(enum amp_dtype dt, enum amp_dtype stat_dt)
{
    const uint32_t n = 3, c = 4, hw = 7;
    const size_t N = (size_t)n * hw;
    struct rng r;
    rng_seed(&r, 31);
    struct bn_case b;
    bn_make(&b, &be, n, c, hw, dt, stat_dt);
    fill_uniform(&b.x, &r, -2, 3);
    fill_uniform(&b.gamma, &r, 0.5f, 1.5f);
    fill_uniform(&b.beta, &r, -0.5f, 0.5f);
    fill_uniform(&b.rm, &r, -0.1f, 0.1f);
    fill_uniform(&b.rv, &r, 0.9f, 1.1f);
    float rm0[4], rv0[4];
    for (uint32_t ch = 0; ch < c; ch++)
        rm0[ch] = get(&b.rm, ch), rv0[ch] = get(&b.rv, ch);
    be.ops->batchnorm_forward(be.ctx, &b.y, &b.x, &b.st, n, c, hw, 1);
    struct amp_tensor dy = make(b.x.numel, dt), dx = make(b.x.numel, dt),
                      dg = make(c, stat_dt), dbt = make(c, stat_dt);
    fill_uniform(&dy, &r, -1, 1);
    be.ops->batchnorm_backward(be.ctx, &dx, &dg, &dbt, &dy, &b.x, &b.st, n, c, hw);
    const double tol = dt == AMP_F32 ? 2e-5 : dt == AMP_F16 ? 4e-3 : 3e-2;
    const double stol = stat_dt == AMP_F32 ? 2e-6 : 8e-3;
    double worst_y = 0, worst_s = 0, worst_r = 0, worst_g = 0, worst_x = 0;
    for (uint32_t ch = 0; ch < c; ch++) {
        double mean = 0, var = 0;
        for (uint32_t s = 0; s < n; s++)
            for (uint32_t i = 0; i < hw; i++)
                mean += get(&b.x, ((size_t)s * c + ch) * hw + i);
        mean /= (double)N;
        for (uint32_t s = 0; s < n; s++)
            for (uint32_t i = 0; i < hw; i++) {
                const double d = get(&b.x, ((size_t)s * c + ch) * hw + i) - mean;
                var += d * d;
            }
        const double bvar = var / (double)N, inv = 1.0 / sqrt(bvar + 1e-5);
        worst_s = fmax(worst_s, fabs(get(&b.sm, ch) - mean) / (fabs(mean) + 1) +
                                    fabs(get(&b.si, ch) - inv) / inv);
        worst_r = fmax(worst_r, fabs(get(&b.rm, ch) - (0.9 * rm0[ch] + 0.1 * mean)) +
                                    fabs(get(&b.rv, ch) - (0.9 * rv0[ch] + 0.1 * var / (N - 1))));
        /* the stored statistics normalize */
        const double m_s = get(&b.sm, ch), i_s = get(&b.si, ch);
        const double gm = get(&b.gamma, ch), bt = get(&b.beta, ch);
        double sg = 0, sgx = 0;
        for (uint32_t s = 0; s < n; s++)
            for (uint32_t i = 0; i < hw; i++) {
                const size_t k = ((size_t)s * c + ch) * hw + i;
                const double xh = (get(&b.x, k) - m_s) * i_s, want = xh * gm + bt;
                worst_y = fmax(worst_y, fabs(get(&b.y, k) - want) / (fabs(want) + 1));
                sg += get(&dy, k);
                sgx += get(&dy, k) * xh;
            }
        worst_g = fmax(worst_g, fabs(get(&dg, ch) - sgx) / (fabs(sgx) + 1) +
                                    fabs(get(&dbt, ch) - sg) / (fabs(sg) + 1));
        for (uint32_t s = 0; s < n; s++)
            for (uint32_t i = 0; i < hw; i++) {
                const size_t k = ((size_t)s * c + ch) * hw + i;
                const double xh = (get(&b.x, k) - m_s) * i_s;
                const double want = gm * i_s / N * (N * get(&dy, k) - sg - xh * sgx);
                worst_x = fmax(worst_x, fabs(get(&dx, k) - want) / (fabs(want) + 1));
            }
    }
    check(worst_s <= stol && worst_r <= stol + 1e-6 && worst_y <= tol && worst_g <= tol + stol &&
              worst_x <= tol,
          "batchnorm %s (statistics %s) against double: saved %.2g running %.2g out %.2g "
          "dgamma/dbeta %.2g dinput %.2g", dtype_name(dt), dtype_name(stat_dt), worst_s,
          worst_r, worst_y, worst_g, worst_x);
    if (stat_dt != AMP_F32) { /* the saved values are representable in their dtype */
        int rep = 1;
        for (uint32_t ch = 0; ch < c; ch++)
            rep &= get(&b.sm, ch) == round_to(get(&b.sm, ch), stat_dt);
        check(rep, "batchnorm: save_mean stored in %s", dtype_name(stat_dt));
    }
    bn_free(&b, &be);
    drop(&dy);
    drop(&dx);
    drop(&dg);
    drop(&dbt);
}

static double bn_loss(void *arg)
{
    struct bn_case *b = arg;
    be.ops->batchnorm_forward(be.ctx, &b->y, &b->x, &b->st, b->n, b->c, b->hw, 1);
    return project(&b->y, &b->proj);
}

static void test_bn_fd(struct rng *r)
{
    struct bn_case b;
    bn_make(&b, &be, 3, 2, 5, AMP_F32, AMP_F32);
    fill_uniform(&b.x, r, -1, 1);
    fill_uniform(&b.gamma, r, 0.5f, 1.5f);
    fill_uniform(&b.beta, r, -0.5f, 0.5f);
    fill_uniform(&b.proj, r, -1, 1);
    for (uint32_t ch = 0; ch < 2; ch++)
        set(&b.rm, ch, 0.0f), set(&b.rv, ch, 1.0f);
    bn_loss(&b);
    struct amp_tensor dx = make(b.x.numel, AMP_F32), dg = make(2, AMP_F32), dbt = make(2, AMP_F32);
    be.ops->batchnorm_backward(be.ctx, &dx, &dg, &dbt, &b.proj, &b.x, &b.st, 3, 2, 5);
    float *dxv = copy_out(&dx), *dgv = copy_out(&dg), *dbv = copy_out(&dbt);
    fd_check("batchnorm (training) dinput", &b.x, dxv, 1e-2f, bn_loss, &b);
    fd_check("batchnorm dgamma", &b.gamma, dgv, 1e-2f, bn_loss, &b);
    fd_check("batchnorm dbeta", &b.beta, dbv, 1e-2f, bn_loss, &b);
    free(dxv);
    free(dgv);
    free(dbv);
    drop(&dx);
    drop(&dg);
    drop(&dbt);
    bn_free(&b, &be);
}

static void test_bn_threads(enum amp_dtype dt)
{
    const uint32_t n = 5, c = 6, hw = 999;
    struct rng r;
    rng_seed(&r, 8);
    struct bn_case b[2];
    struct backend *bs[2] = { &be1, &be };
    struct amp_tensor dy[2], dx[2], dg[2], dbt[2];
    for (int k = 0; k < 2; k++) {
        bn_make(&b[k], bs[k], n, c, hw, dt, AMP_F32);
        dy[k] = make_on(bs[k], (size_t)n * c * hw, dt, MEM_ACTIVATION_GRADS);
        dx[k] = make_on(bs[k], (size_t)n * c * hw, dt, MEM_ACTIVATION_GRADS);
        dg[k] = make_on(bs[k], c, AMP_F32, MEM_WEIGHT_GRADS);
        dbt[k] = make_on(bs[k], c, AMP_F32, MEM_WEIGHT_GRADS);
    }
    fill_uniform(&b[0].x, &r, -3, 5);
    fill_uniform(&b[0].gamma, &r, 0.5f, 1.5f);
    fill_uniform(&b[0].beta, &r, -1, 1);
    fill_uniform(&dy[0], &r, -1, 1);
    for (uint32_t ch = 0; ch < c; ch++)
        set(&b[0].rm, ch, 0.0f), set(&b[0].rv, ch, 1.0f);
    struct amp_tensor *src[] = { &b[0].x, &b[0].gamma, &b[0].beta, &b[0].rm, &b[0].rv, &dy[0] };
    struct amp_tensor *dst[] = { &b[1].x, &b[1].gamma, &b[1].beta, &b[1].rm, &b[1].rv, &dy[1] };
    for (int i = 0; i < 6; i++)
        memcpy(dst[i]->data, src[i]->data, src[i]->numel * dtype_size(src[i]->dtype));
    for (int k = 0; k < 2; k++) {
        bs[k]->ops->batchnorm_forward(bs[k]->ctx, &b[k].y, &b[k].x, &b[k].st, n, c, hw, 1);
        bs[k]->ops->batchnorm_backward(bs[k]->ctx, &dx[k], &dg[k], &dbt[k], &dy[k], &b[k].x,
                                       &b[k].st, n, c, hw);
    }
    check(tensors_identical(&b[0].y, &b[1].y) && tensors_identical(&b[0].sm, &b[1].sm) &&
              tensors_identical(&b[0].si, &b[1].si) && tensors_identical(&b[0].rm, &b[1].rm) &&
              tensors_identical(&b[0].rv, &b[1].rv) && tensors_identical(&dx[0], &dx[1]) &&
              tensors_identical(&dg[0], &dg[1]) && tensors_identical(&dbt[0], &dbt[1]),
          "batchnorm %s %ux%ux%u: identical at 1 and 2 threads", dtype_name(dt), n, c, hw);
    for (int k = 0; k < 2; k++) {
        bn_free(&b[k], bs[k]);
        tensor_free(bs[k], &dy[k]);
        tensor_free(bs[k], &dx[k]);
        tensor_free(bs[k], &dg[k]);
        tensor_free(bs[k], &dbt[k]);
    }
}

/* ===================================== add ===================================== */

struct add_case {
    struct amp_tensor a, b, y, proj;
};

static double add_loss(void *arg)
{
    struct add_case *c = arg;
    be.ops->add(be.ctx, &c->y, &c->a, &c->b);
    return project(&c->y, &c->proj);
}

static void test_add(struct rng *r)
{
    const float av[5] = { 1, -2, 0.5f, 65504, 1e-3f }, bv[5] = { 2, 2, 0.25f, 65504, 0 };
    struct amp_tensor a = make(5, AMP_F32), b = make(5, AMP_F16), y = make(5, AMP_F16),
                      yb = make(5, AMP_BF16);
    fill(&a, av);
    fill(&b, bv);
    struct numerics_counts cnt;
    be.ops->read_counts(be.ctx, &cnt);
    be.ops->add(be.ctx, &y, &a, &b);
    be.ops->read_counts(be.ctx, &cnt);
    check(get(&y, 0) == 3 && get(&y, 1) == 0 && get(&y, 2) == 0.75f && isinf(get(&y, 3)) &&
              get(&y, 4) == round_to(1e-3f, AMP_F16) && cnt.rounded[MEM_ACTIVATIONS] == 5 &&
              cnt.overflow[MEM_ACTIVATIONS] == 1,
          "add FP32 + FP16 -> FP16: sums rounded once, 5 counted, 1 overflow");
    be.ops->add(be.ctx, &yb, &a, &b);
    check(get(&yb, 3) == round_to(131008.0f, AMP_BF16) && get(&yb, 4) == round_to(1e-3f, AMP_BF16),
          "add into BF16");
    be.ops->add(be.ctx, &b, &b, &b); /* out aliases both */
    check(get(&b, 0) == 4 && get(&b, 2) == 0.5f, "add: out may alias a and b");
    /* the FP32 path and a gradient check: d(a + b) = identity for each */
    struct add_case c = { .a = make(100, AMP_F32), .b = make(100, AMP_F32),
                          .y = make(100, AMP_F32), .proj = make(100, AMP_F32) };
    fill_uniform(&c.a, r, -1, 1);
    fill_uniform(&c.b, r, -1, 1);
    fill_uniform(&c.proj, r, -1, 1);
    add_loss(&c);
    int ok = 1;
    for (int i = 0; i < 100; i++)
        ok &= same_bits(get(&c.y, i), get(&c.a, i) + get(&c.b, i));
    check(ok, "add FP32: a + b");
    fd_check("add da", &c.a, c.proj.data, 1e-2f, add_loss, &c);
    fd_check("add db", &c.b, c.proj.data, 1e-2f, add_loss, &c);
    struct amp_tensor *all[] = { &a, &b, &y, &yb, &c.a, &c.b, &c.y, &c.proj };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        drop(all[i]);
}

int main(void)
{
    if (backend_open(&be, "cpu", &(struct backend_options){ .threads = 2 }) != AMP_OK ||
        backend_open(&be1, "cpu", &(struct backend_options){ .threads = 1 }) != AMP_OK) {
        fprintf(stderr, "%s\n", amp_last_error());
        return 1;
    }
    struct rng r;
    rng_seed(&r, 2024);
    test_conv(&r);
    test_softmax();
    test_maxpool_hand(AMP_F32);
    test_maxpool_hand(AMP_F16);
    test_maxpool_hand(AMP_BF16);
    for (int d = 0; d < 3; d++) {
        const enum amp_dtype dt = d == 0 ? AMP_F32 : d == 1 ? AMP_F16 : AMP_BF16;
        test_maxpool_wide(dt, 7, 37, &r);
        test_maxpool_wide(dt, 10, 10, &r);
        test_maxpool_wide(dt, 5, 11, &r);
        test_maxpool_wide(dt, 6, 16, &r);
    }
    test_pool_fd(0, &r);
    test_avgpool_hand();
    test_pool_fd(1, &r);
    test_bn_hand();
    test_bn_double(AMP_F32, AMP_F32);
    test_bn_double(AMP_F32, AMP_BF16);
    test_bn_double(AMP_F16, AMP_F32);
    test_bn_double(AMP_BF16, AMP_BF16);
    test_bn_fd(&r);
    test_bn_threads(AMP_F32);
    test_bn_threads(AMP_F16);
    test_add(&r);
    check(be.mem.current_total == 0 && be1.mem.current_total == 0,
          "every tensor freed (memory accounting back to 0)");
    backend_close(&be);
    backend_close(&be1);
    return check_summary();
}
