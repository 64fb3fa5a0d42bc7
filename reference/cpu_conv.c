/* CPU reference: 2-D convolution (NCHW), forward and backward. Every geometry but 3x3 / stride 1 /
 * padding 1 over fewer than 16 input channels goes to the general path (cpu_conv_general.c);
 * this file's own path runs that one, forward and backward, the bias optional. Inputs are
 * widened to FP32 (and rounded to TF32 in TF32 mode) as each plane is zero-padded into a
 * (h+2) x (w+2) grid in the workspace, so that the nine taps become nine shifted streams over one
 * flat, fully vectorized FP32 loop; the two extra columns per row are computed and dropped, and
 * results are rounded to the output's dtype. Over several input channels, on machines of
 * 16-float vectors, the output channels go 16 or 32 at a time in vectors with each input
 * broadcast (grid_tiles): the same sums in the same order as plane by plane. OpenMP splits
 * independent outputs (no cross-thread reductions), so results do not depend on the thread
 * count. */
#include <stdio.h>
#include <stdlib.h>
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

/* dst[0..w) = src[0..w) + add. Rows of 8 floats or more take vector moves of the machine's
 * width (the last one overlapping) instead of a library call per row. */
static inline void copy_row(float *restrict dst, const float *restrict src, int w, float add)
{
    if (w >= VN) {
        int i = 0;
        for (; i + VN <= w; i += VN)
            *(vn *)(dst + i) = *(const vn *)(src + i) + add;
        if (i < w)
            *(vn *)(dst + w - VN) = *(const vn *)(src + w - VN) + add;
        return;
    }
    for (int i = 0; i < w; i++)
        dst[i] = src[i] + add;
}

/* dst[0..w) = src[0..w) exactly (no bias: not even + 0, which would turn -0 into +0). Each
 * vector passes through a register (IN_REGISTER), so that GCC does not turn the loop back into
 * a library call per row; rows shorter than a vector in masked moves where there are some. */
static inline void copy_row_exact(float *restrict dst, const float *restrict src, int w)
{
    if (w >= VN) {
        int i = 0;
        for (; i + VN <= w; i += VN) {
            vn v = *(const vn *)(src + i);
            IN_REGISTER(v);
            *(vn *)(dst + i) = v;
        }
        if (i < w) {
            vn v = *(const vn *)(src + w - VN);
            IN_REGISTER(v);
            *(vn *)(dst + w - VN) = v;
        }
        return;
    }
#if VN == 16
    const __mmask16 m = (__mmask16)((1u << w) - 1u);
    _mm512_mask_storeu_ps(dst, m, _mm512_maskz_loadu_ps(m, src));
#else
    memcpy(dst, src, (size_t)w * sizeof *dst);
#endif
}

/* Per-thread scratch: `planes` padded planes, then one flat grid (two where has_grid2), then one
 * h x w plane used to widen inputs and round outputs. */
struct scratch {
    float *planes;
    float *grid, *grid2; /* (grid2: only where has_grid2) */
    float *flat;
};

/* Whether the threads' scratch has a second flat grid: convolutions of more than one input
 * channel, whose forward (and data gradient) run two output channels per pass. */
static int has_grid2(const struct conv_shape *s)
{
    return s->c_in > 1;
}

/* Floats of a thread's padded planes: one per channel, or the three shifted planes of a single
 * input plane (shift_planes), whichever is more. */
static size_t planes_floats(const struct conv_shape *s, const struct grid *g)
{
    const size_t channels = s->c_in > s->c_out ? s->c_in : s->c_out;
    const size_t padded = channels * g->plane, shifted = 3 * (size_t)(g->h + 2) * g->w;
    return padded > shifted ? padded : shifted;
}

static size_t per_thread_floats(const struct conv_shape *s, const struct grid *g)
{
    return planes_floats(s, g) + (size_t)(has_grid2(s) ? 2 : 1) * g->q + (size_t)g->h * g->w;
}

/* The shapes this file's path runs: 3x3 / stride 1 / padding 1 (the padded grid pads by one on
 * every side for nine unit-stride taps); the general path runs every other one. The seed
 * network's (c_in 1) sums are pinned bit for bit by tests/test_golden.sh. Over
 * CONV3X3_GEMM_MIN_CIN input channels or more, the backward pass goes to the general path's
 * GEMMs, faster there; the forward pass stays here: its sums in this path's order are the ones
 * tests/test_torch_fixture.c matches with PyTorch's resnet8 (any other order, even 1-ulp noise,
 * flips a few ReLUs whose inputs are within 1e-6 of 0, and one flipped ReLU moves an upstream
 * filter gradient by ~1/sqrt(N*H*W) of its size: measured 5.6e-3 against a limit of 1e-4). */
enum { CONV3X3_GEMM_MIN_CIN = 16 };

static int is_3x3_same(const struct conv_shape *s)
{
    return s->kernel == 3 && s->stride == 1 && s->pad == 1;
}

static int backward_is_3x3_same(const struct conv_shape *s)
{
    return is_3x3_same(s) && s->c_in < CONV3X3_GEMM_MIN_CIN;
}

/* Every geometry with an output: kernel >= 1, stride >= 1, at least one output row and column. */
int cpu_conv2d_supports(void *ctx, const struct conv_shape *s, char *why, size_t len)
{
    (void)ctx;
    const uint64_t hp = (uint64_t)s->h + 2 * (uint64_t)s->pad;
    const uint64_t wp = (uint64_t)s->w + 2 * (uint64_t)s->pad;
    if (s->kernel >= 1 && s->stride >= 1 && hp >= s->kernel && wp >= s->kernel)
        return 1;
    snprintf(why, len, "the cpu backend runs convolutions with a kernel and a stride of at least "
             "1 and an output of at least 1x1 (not %ux%u, stride %u, padding %u on %ux%u)",
             s->kernel, s->kernel, s->stride, s->pad, s->h, s->w);
    return 0;
}

/* Workspace: the threads' scratch, then the padded input planes of the whole batch (reused by
 * every output channel of the filter gradient); the general path's own otherwise. */
size_t cpu_conv2d_workspace(void *ctx, const struct conv_shape *s, enum amp_dtype dtype,
                            enum amp_math math)
{
    (void)dtype, (void)math; /* (FP32 scratch whatever the dtype: inputs are widened into it) */
    const size_t threads = (size_t)((struct cpu_ctx *)ctx)->threads;
    if (!is_3x3_same(s))
        return cpu_conv_general_workspace(s, (int)threads);
    const struct grid g = grid_of(s);
    const size_t batch_planes = (size_t)s->n * s->c_in * g.plane;
    const size_t own = (threads * per_thread_floats(s, &g) + batch_planes) * sizeof(float);
    const size_t general = backward_is_3x3_same(s) ? 0 : cpu_conv_general_workspace(s, (int)threads);
    return own > general ? own : general;
}

static struct scratch thread_scratch(const struct amp_tensor *ws, const struct conv_shape *s,
                                     const struct grid *g)
{
    const size_t planes = planes_floats(s, g);
    float *base = (float *)ws->data + (size_t)omp_get_thread_num() * per_thread_floats(s, g);
    const size_t grids = (size_t)(has_grid2(s) ? 2 : 1) * g->q;
    return (struct scratch){ .planes = base, .grid = base + planes,
                             .grid2 = has_grid2(s) ? base + planes + g->q : NULL,
                             .flat = base + planes + grids };
}

static float *batch_planes(const struct amp_tensor *ws, const struct conv_shape *s,
                           const struct grid *g, int threads)
{
    return (float *)ws->data + (size_t)threads * per_thread_floats(s, g);
}

/* The h x w plane of t starting at element `offset`, as FP32: the tensor's own memory when it
 * is FP32 and not rounded, else widened (and TF32-rounded) into `flat`. */
static const float *plane_f32(const struct amp_tensor *t, size_t offset, const struct grid *g,
                              int tf32, float *flat)
{
    if (t->dtype == AMP_F32 && !tf32)
        return (const float *)t->data + offset;
    cpu_load(flat, t, offset, (size_t)g->h * g->w, tf32);
    return flat;
}

/* Copies an h x w FP32 plane into the interior of a padded grid, zeroing the border. */
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

/* The nine taps' sum of filter f (f0 .. f8) over the nine inputs x0 .. x8, in one order. */
#define TAP_SUM(f)                                                                                \
    (f##0 * x0 + f##1 * x1 + f##2 * x2 + f##3 * x3 + f##4 * x4 + f##5 * x5 + f##6 * x6 +          \
     f##7 * x7 + f##8 * x8)

/* plane_taps for one filter w9 into acc, and, where acc2 is not NULL, a second v9 into acc2 (the
 * input's loads shared; each sum is plane_taps' own). In machine vectors (VN), not `omp simd`,
 * whose width the build's tuning would pick, and the last partial vector over zero-padded copies
 * rather than a scalar loop (which GCC contracts into FMAs otherwise than the vectors): every
 * output is the vector expression, so the width changes no bit. */
static void plane_taps2(float *restrict acc, float *restrict acc2, const float *restrict xp,
                        const float *w9, const float *v9, const struct grid *g, int accumulate)
{
    const int S = g->stride;
    const float w0 = w9[0], w1 = w9[1], w2 = w9[2], w3 = w9[3], w4 = w9[4], w5 = w9[5],
                w6 = w9[6], w7 = w9[7], w8 = w9[8];
    const float *v = v9 ? v9 : w9;
    const float v0 = v[0], v1 = v[1], v2 = v[2], v3 = v[3], v4 = v[4], v5 = v[5], v6 = v[6],
                v7 = v[7], v8 = v[8];
    /* One vector of outputs at q from rows R0..R2 into A (and A2). */
#define TAPS_VEC(R0, R1, R2, A, A2, q)                                                            \
    do {                                                                                          \
        const vn x0 = *(const vn *)((R0) + (q)), x1 = *(const vn *)((R0) + (q) + 1),              \
                 x2 = *(const vn *)((R0) + (q) + 2), x3 = *(const vn *)((R1) + (q)),              \
                 x4 = *(const vn *)((R1) + (q) + 1), x5 = *(const vn *)((R1) + (q) + 2),          \
                 x6 = *(const vn *)((R2) + (q)), x7 = *(const vn *)((R2) + (q) + 1),              \
                 x8 = *(const vn *)((R2) + (q) + 2);                                              \
        const vn a = TAP_SUM(w);                                                                  \
        *(vn *)((A) + (q)) = accumulate ? *(const vn *)((A) + (q)) + a : a;                       \
        if (A2) {                                                                                 \
            const vn b = TAP_SUM(v);                                                              \
            *(vn *)((A2) + (q)) = accumulate ? *(const vn *)((A2) + (q)) + b : b;                 \
        }                                                                                         \
    } while (0)
    const float *r0 = xp, *r1 = xp + S, *r2 = xp + 2 * S;
    int q = 0;
    if (acc2) { /* (two loops: in each the test on acc2 folds away) */
        for (; q + VN <= g->q; q += VN)
            TAPS_VEC(r0, r1, r2, acc, acc2, q);
    } else {
        for (; q + VN <= g->q; q += VN)
            TAPS_VEC(r0, r1, r2, acc, acc2, q);
    }
    if (q == g->q)
        return;
    const size_t t = (size_t)(g->q - q);
    float rb[3][VN + 2] = { { 0 } }, ab[VN] = { 0 }, bb[VN] = { 0 };
    memcpy(rb[0], r0 + q, (t + 2) * sizeof(float));
    memcpy(rb[1], r1 + q, (t + 2) * sizeof(float));
    memcpy(rb[2], r2 + q, (t + 2) * sizeof(float));
    if (accumulate) {
        memcpy(ab, acc + q, t * sizeof(float));
        if (acc2)
            memcpy(bb, acc2 + q, t * sizeof(float));
    }
    float *const bt = acc2 ? bb : NULL;
    TAPS_VEC(rb[0], rb[1], rb[2], ab, bt, 0);
    memcpy(acc + q, ab, t * sizeof(float));
    if (acc2)
        memcpy(acc2 + q, bb, t * sizeof(float));
#undef TAPS_VEC
}

/* acc[q] (+)= sum_{ky, kx} w9[ky * 3 + kx] * xp[q + ky * stride + kx] over the flat grid. */
static void plane_taps(float *restrict acc, const float *restrict xp, const float *w9,
                       const struct grid *g, int accumulate)
{
    plane_taps2(acc, NULL, xp, w9, NULL, g, accumulate);
}

#if VN == 16
/* The output channels in vectors (machines with 16-float vectors: 32 registers hold a tile):
 * a tile of CV vectors of VN channels by NP positions of the flat grid, each channel's sum
 * TAP_SUM over plane 0, then + TAP_SUM over plane i for i = 1 .. nin - 1, with the filters'
 * taps as vectors (wt: [nin][9][CV][VN] floats) and each input value broadcast:
 * every product, sum and contraction is plane_taps2's own for that output, in its order, so
 * the bits are its bits; each broadcast input serves CV vectors of channels, so the loads no
 * longer bind. obuf[(q0 + p) * ldo + c * VN + l] = channel c * VN + l at position q0 + p.
 * Positions a tile: TILE_NP for two vectors of channels (their 18 tap registers leave room for
 * 8 chains), TILE_NP1 for one. */
enum { TILE_NP = 4, TILE_NP1 = 8 };

static inline vn splat(float v)
{
    return (vn)_mm512_set1_ps(v);
}

static inline __attribute__((always_inline)) void tile_plane(vn acc[2][TILE_NP1],
                                                             const float *restrict x, int S,
                                                             const float *restrict wi,
                                                             const int first, const int CV,
                                                             const int NP)
{
    vn f[2][9];
#pragma GCC unroll 2
    for (int c = 0; c < CV; c++)
#pragma GCC unroll 9
        for (int k = 0; k < 9; k++) {
            f[c][k] = *(const vn *)(wi + (size_t)(k * CV + c) * VN);
            IN_REGISTER(f[c][k]); /* (else each use loads it again, and the loads bind) */
        }
#pragma GCC unroll 8
    for (int p = 0; p < NP; p++) {
        const float *r0 = x + p, *r1 = r0 + S, *r2 = r1 + S;
        const vn x0 = splat(r0[0]), x1 = splat(r0[1]), x2 = splat(r0[2]), x3 = splat(r1[0]),
                 x4 = splat(r1[1]), x5 = splat(r1[2]), x6 = splat(r2[0]), x7 = splat(r2[1]),
                 x8 = splat(r2[2]);
#pragma GCC unroll 2
        for (int c = 0; c < CV; c++) {
            const vn f0 = f[c][0], f1 = f[c][1], f2 = f[c][2], f3 = f[c][3], f4 = f[c][4],
                     f5 = f[c][5], f6 = f[c][6], f7 = f[c][7], f8 = f[c][8];
            const vn a = TAP_SUM(f);
            acc[c][p] = first ? a : acc[c][p] + a;
        }
    }
}

static inline __attribute__((always_inline)) void tile_taps(float *restrict obuf, size_t ldo,
                                                            const float *restrict planes,
                                                            size_t pl, int S,
                                                            const float *restrict wt, int nin,
                                                            size_t q0, const int CV, const int NP)
{
    vn acc[2][TILE_NP1];
    tile_plane(acc, planes + q0, S, wt, 1, CV, NP);
    for (int i = 1; i < nin; i++)
        tile_plane(acc, planes + (size_t)i * pl + q0, S, wt + (size_t)i * 9 * CV * VN, 0, CV,
                   NP);
#pragma GCC unroll 8
    for (int p = 0; p < NP; p++)
#pragma GCC unroll 2
        for (int c = 0; c < CV; c++)
            *(vn *)(obuf + (q0 + (size_t)p) * ldo + (size_t)c * VN) = acc[c][p];
}

/* tile_taps over the whole flat grid for cv (1 or 2) vectors of channels, whose taps wt holds
 * as [nin][9][cv][VN]. */
static void grid_tiles(float *obuf, size_t ldo, const float *planes, const struct grid *g,
                       const float *wt, int nin, int cv)
{
    const size_t Q = (size_t)g->q, pl = g->plane;
    size_t q = 0;
    if (cv == 2) {
        for (; q + TILE_NP <= Q; q += TILE_NP)
            tile_taps(obuf, ldo, planes, pl, g->stride, wt, nin, q, 2, TILE_NP);
        for (; q < Q; q++)
            tile_taps(obuf, ldo, planes, pl, g->stride, wt, nin, q, 2, 1);
    } else {
        for (; q + TILE_NP1 <= Q; q += TILE_NP1)
            tile_taps(obuf, ldo, planes, pl, g->stride, wt, nin, q, 1, TILE_NP1);
        for (; q < Q; q++)
            tile_taps(obuf, ldo, planes, pl, g->stride, wt, nin, q, 1, 1);
    }
}

/* A VN x VN block of floats transposed: dst[j * ldd + i] = src[i * lds + j] (moves only). */
static inline void transpose_block(float *restrict dst, size_t ldd, const float *restrict src,
                                   size_t lds)
{
    vn r[VN];
    for (int i = 0; i < VN; i++)
        r[i] = *(const vn *)(src + (size_t)i * lds);
    vn_transpose(r);
    for (int j = 0; j < VN; j++)
        *(vn *)(dst + (size_t)j * ldd) = r[j];
}

/* grid_tiles' position-major obuf ([q][ldo], ldo a multiple of VN) as channel-major planes:
 * planes[k * q + p] = obuf[p * ldo + k]. */
static void tiles_to_planes(float *restrict planes, const float *restrict obuf, size_t ldo,
                            size_t q)
{
    size_t p = 0;
    for (; p + VN <= q; p += VN)
        for (size_t k = 0; k < ldo; k += VN)
            transpose_block(planes + k * q + p, q, obuf + p * ldo + k, ldo);
    for (; p < q; p++)
        for (size_t k = 0; k < ldo; k++)
            planes[k * q + p] = obuf[p * ldo + k];
}

/* The vectors of channels of the tile starting at channel o0: two while 2 * VN remain below
 * `tiled`, else one. */
static int tile_vectors(int o0, int tiled)
{
    return tiled - o0 >= 2 * VN ? 2 : 1;
}
#endif

/* The three column shifts of an h x w plane, each (h + 2) x w with a zero row above and below:
 * sh[kx][r * w + x] = src[r - 1][x + kx - 1], zero outside the plane. Tap (ky, kx) of output
 * (y, x) is then sh[kx][(y + ky) * w + x]: over the flat h x w output plane the nine taps are
 * nine unit-stride streams, and the plane runs in full vectors (28 x 28 = 49 of 16). The
 * values are the padded grid's (its zeros are +0 too), so the sums are plane_taps' own. */
static void shift_planes(float *restrict sh, const float *restrict src, const struct grid *g)
{
    const int H = g->h, W = g->w;
    const size_t len = (size_t)(H + 2) * W;
    float *L = sh, *C = sh + len, *R = sh + 2 * len;
    for (int k = 0; k < 3; k++) {
        memset(sh + k * len, 0, (size_t)W * sizeof *sh);
        memset(sh + k * len + (size_t)(H + 1) * W, 0, (size_t)W * sizeof *sh);
    }
    for (int y = 0; y < H; y++) {
        const float *s = src + (size_t)y * W;
        float *l = L + (size_t)(y + 1) * W, *c = C + (size_t)(y + 1) * W,
              *r = R + (size_t)(y + 1) * W;
        copy_row_exact(c, s, W);
        l[0] = 0.0f;
        if (W > 1) {
            copy_row_exact(l + 1, s, W - 1);
            copy_row_exact(r, s + 1, W - 1);
        }
        r[W - 1] = 0.0f;
    }
}

/* cpu_relu32 lane by lane: x < 0 ? +0 : x (-0 and NaN kept), the relu op's bits. */
static inline vn relu_vn(vn x)
{
    return (vn)((vni)x & ~(vni)(x < (vn){ 0 }));
}

/* dst[p] = the nine taps' sum at output p of the flat h x w plane, in plane_taps' order (+ bias
 * when add_bias; nothing at all otherwise), from shift_planes' sh; relu (FP32 dst): the relu
 * op on each sum as it is stored. */
static void taps_flat(float *restrict dst, const float *restrict sh, const float *w9, float bias,
                      int add_bias, int relu, const struct grid *g)
{
    const size_t W = (size_t)g->w, HW = (size_t)g->h * W, len = HW + 2 * W;
    const float *L = sh, *C = sh + len, *R = sh + 2 * len;
    const float w0 = w9[0], w1 = w9[1], w2 = w9[2], w3 = w9[3], w4 = w9[4], w5 = w9[5],
                w6 = w9[6], w7 = w9[7], w8 = w9[8];
#define TAPS_AT(T, p)                                                                             \
    (w0 * T(L + (p)) + w1 * T(C + (p)) + w2 * T(R + (p)) + w3 * T(L + (p) + W) +                  \
     w4 * T(C + (p) + W) + w5 * T(R + (p) + W) + w6 * T(L + (p) + 2 * W) +                       \
     w7 * T(C + (p) + 2 * W) + w8 * T(R + (p) + 2 * W))
#define VLOAD(q) (*(const vn *)(q))
#define SLOAD(q) (*(q))
    size_t p = 0;
    if (add_bias) {
        for (; p + VN <= HW; p += VN) {
            const vn v = TAPS_AT(VLOAD, p);
            const vn y = v + bias;
            *(vn *)(dst + p) = relu ? relu_vn(y) : y;
        }
        for (; p < HW; p++) {
            const float v = TAPS_AT(SLOAD, p);
            const float y = v + bias;
            dst[p] = relu ? cpu_relu32(y) : y;
        }
    } else {
        for (; p + VN <= HW; p += VN) {
            const vn v = TAPS_AT(VLOAD, p);
            *(vn *)(dst + p) = relu ? relu_vn(v) : v;
        }
        for (; p < HW; p++) {
            const float v = TAPS_AT(SLOAD, p);
            dst[p] = relu ? cpu_relu32(v) : v;
        }
    }
#undef TAPS_AT
#undef VLOAD
#undef SLOAD
}

/* Writes the valid columns of a flat grid, plus `bias` (nothing at all when !add_bias), into
 * the plane of `out` at `offset`, rounded to out's dtype; relu: then the relu op on the plane
 * (FP32 before the store, 16-bit on the stored bits: after the rounding and its counts). */
static void store_grid(struct amp_tensor *out, size_t offset, const float *acc, float bias,
                       int add_bias, int relu, const struct grid *g, float *flat,
                       struct lowp_counts *counts)
{
    float *dst = out->dtype == AMP_F32 ? (float *)out->data + offset : flat;
    for (int h = 0; h < g->h; h++)
        if (add_bias)
            copy_row(dst + (size_t)h * g->w, acc + (size_t)h * g->stride, g->w, bias);
        else
            copy_row_exact(dst + (size_t)h * g->w, acc + (size_t)h * g->stride, g->w);
    if (relu && dst != flat) /* (the plane is in L1) */
        cpu_relu_piece(AMP_F32, dst, dst, (size_t)g->h * g->w);
    if (dst == flat)
        cpu_store_relu(out, offset, flat, (size_t)g->h * g->w, relu, counts);
}

/* The 3x3 filter of (co, ci) as FP32, optionally rotated by 180 degrees. */
static void load_taps(float w9[9], const struct amp_tensor *weight, size_t offset, int tf32,
                      int rotate)
{
    float t[9];
    if (weight->dtype == AMP_F32 && !tf32)
        memcpy(t, (const float *)weight->data + offset, sizeof t);
    else
        cpu_load(t, weight, offset, 9, tf32);
    for (int i = 0; i < 9; i++)
        w9[i] = t[rotate ? 8 - i : i];
}

/* What correlate adds to each sum: bias[o], nothing, or + 0.0f (the data gradient's way,
 * which the golden numbers pin). */
enum bias_mode { BIAS_TENSOR, BIAS_NONE, BIAS_PLUS_ZERO };

/* out[n, o] = bias[o] + sum_i conv3x3(in[n, i], taps(o, i)), o < nout, i < nin. The forward
 * pass (in = inp, taps = weight[o, i]) and the data gradient (in = dout, taps = weight[i, o]
 * rotated by 180 degrees: `transposed`) share this loop; bias is used in BIAS_TENSOR mode;
 * relu: the forward's fused ReLU, on each plane as it is stored (16-bit: after its rounding). */
static void correlate(struct cpu_ctx *c, struct amp_tensor *out, const struct amp_tensor *in,
                      const struct amp_tensor *weight, const struct amp_tensor *bias,
                      enum bias_mode mode, int nin, int nout, int transposed, int relu,
                      const struct amp_tensor *ws, const struct conv_shape *s,
                      enum amp_math math)
{
    const int N = (int)s->n;
    const struct grid g = grid_of(s);
    const size_t HW = (size_t)g.h * g.w;
    const int tf32_x = cpu_tf32(in, math), tf32_w = cpu_tf32(weight, math);
    const size_t work = (size_t)N * nin * nout * HW * 9;
    const int pairs = has_grid2(s); /* (the scratch's second grid) */
    /* The output channels below `tiled` (a multiple of VN) run as channel vectors (grid_tiles)
     * over their taps laid out tile by tile; the rest, and every output channel on machines of
     * 8-float vectors, plane by plane. */
    int tiled = 0;
    float *wt = NULL;
#if VN == 16
    if (nin > 1)
        tiled = nout / VN * VN;
    if (tiled) {
        /* tile by tile: [nin][9][cv][VN], each tile's block at nin * 9 * o0 floats */
        wt = aligned_alloc(64, ((size_t)nin * 9 * (size_t)tiled * sizeof *wt + 63) / 64 * 64);
        if (!wt) /* (no way to report it: the op has no status) */
            abort();
        for (int o0 = 0; o0 < tiled;) {
            const int cv = tile_vectors(o0, tiled);
            float *t = wt + (size_t)nin * 9 * (size_t)o0;
            for (int c = 0; c < cv * VN; c++)
                for (int i = 0; i < nin; i++) {
                    float w9[9];
                    const int o = o0 + c;
                    const size_t tap = transposed ? (size_t)i * nout + o : (size_t)o * nin + i;
                    load_taps(w9, weight, tap * 9, tf32_w, transposed);
                    for (int k = 0; k < 9; k++)
                        t[((size_t)i * 9 + (size_t)k) * (size_t)cv * VN + (size_t)c] = w9[k];
                }
            o0 += cv * VN;
        }
    }
#endif
#pragma omp parallel num_threads(c->threads) if (work >= CPU_PARALLEL_MIN)
    {
        const struct scratch sc = thread_scratch(ws, s, &g);
        struct lowp_counts counts = { 0 };
        size_t rounded = 0;
        /* a tile's outputs, position-major (grid_tiles), then channel-major (the second half:
           tiles_to_planes) */
        float *obuf = NULL;
        if (tiled && !(obuf = malloc((size_t)g.q * 2 * VN * 2 * sizeof *obuf)))
            abort();
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            if (nin == 1) { /* one input plane: the taps' sums straight into the output rows */
                const size_t off = (size_t)n * HW;
                shift_planes(sc.planes, plane_f32(in, off, &g, tf32_x, sc.flat), &g);
                for (int o = 0; o < nout; o++) {
                    float w9[9];
                    load_taps(w9, weight, (size_t)o * 9, tf32_w, transposed);
                    const size_t at = ((size_t)n * nout + o) * HW;
                    float *dst = out->dtype == AMP_F32 ? (float *)out->data + at : sc.flat;
                    taps_flat(dst, sc.planes, w9,
                              mode == BIAS_TENSOR ? cpu_get(bias, (size_t)o) : 0.0f,
                              mode != BIAS_NONE, relu && dst != sc.flat, &g);
                    if (dst == sc.flat)
                        cpu_store_relu(out, at, sc.flat, HW, relu, &counts);
                    rounded += HW;
                }
                continue;
            }
            for (int i = 0; i < nin; i++) {
                const size_t off = ((size_t)n * nin + i) * HW;
                pad_plane(sc.planes + i * g.plane, plane_f32(in, off, &g, tf32_x, sc.flat), &g);
            }
#if VN == 16
            for (int o0 = 0; o0 < tiled;) {
                const int cv = tile_vectors(o0, tiled);
                const size_t ldo = (size_t)cv * VN;
                grid_tiles(obuf, ldo, sc.planes, &g, wt + (size_t)nin * 9 * (size_t)o0, nin, cv);
                float *const tplanes = obuf + (size_t)g.q * 2 * VN;
                tiles_to_planes(tplanes, obuf, ldo, (size_t)g.q);
                for (size_t k = 0; k < ldo; k++, o0++) {
                    store_grid(out, ((size_t)n * nout + o0) * HW, tplanes + k * (size_t)g.q,
                               mode == BIAS_TENSOR ? cpu_get(bias, (size_t)o0) : 0.0f,
                               mode != BIAS_NONE, relu, &g, sc.flat, &counts);
                    rounded += HW;
                }
            }
#endif
            for (int o = tiled; o < nout; o++) {
                if (pairs && o + 1 < nout) { /* two output channels per pass over the planes */
                    for (int i = 0; i < nin; i++) {
                        float w9[9], v9[9];
                        const size_t tap = transposed ? (size_t)i * nout + o : (size_t)o * nin + i;
                        load_taps(w9, weight, tap * 9, tf32_w, transposed);
                        load_taps(v9, weight, (tap + (transposed ? 1 : (size_t)nin)) * 9, tf32_w,
                                  transposed);
                        plane_taps2(sc.grid, sc.grid2, sc.planes + i * g.plane, w9, v9, &g,
                                    i > 0);
                    }
                    store_grid(out, ((size_t)n * nout + o) * HW, sc.grid,
                               mode == BIAS_TENSOR ? cpu_get(bias, (size_t)o) : 0.0f,
                               mode != BIAS_NONE, relu, &g, sc.flat, &counts);
                    rounded += HW;
                    o++;
                    store_grid(out, ((size_t)n * nout + o) * HW, sc.grid2,
                               mode == BIAS_TENSOR ? cpu_get(bias, (size_t)o) : 0.0f,
                               mode != BIAS_NONE, relu, &g, sc.flat, &counts);
                    rounded += HW;
                    continue;
                }
                for (int i = 0; i < nin; i++) {
                    float w9[9];
                    const size_t tap = transposed ? (size_t)i * nout + o : (size_t)o * nin + i;
                    load_taps(w9, weight, tap * 9, tf32_w, transposed);
                    plane_taps(sc.grid, sc.planes + i * g.plane, w9, &g, i > 0);
                }
                store_grid(out, ((size_t)n * nout + o) * HW, sc.grid,
                           mode == BIAS_TENSOR ? cpu_get(bias, (size_t)o) : 0.0f,
                           mode != BIAS_NONE, relu, &g, sc.flat, &counts);
                rounded += HW;
            }
        }
        cpu_count(c, out, rounded, &counts);
        free(obuf);
    }
    free(wt);
}

/* The bias gradient: a plain FP32 reduction of dout's planes of one channel, in vectors of 16
 * lanes (lane l: the chain over the planes, in order, of their elements i = l mod 16 before
 * the last HW % 16), the scalar chain over the last HW % 16, then simd.h's vf_sum of the lanes
 * plus that chain. The 16 lanes are halves in registers of the machine's width (the same
 * chains). */
struct bias_sum {
    vn acc[VF_LANES / VN];
    float tail;
};

static inline void bias_sum_add(struct bias_sum *b, const float *gn, size_t HW)
{
    size_t i = 0;
    for (; i + VF_LANES <= HW; i += VF_LANES)
        for (int j = 0; j < VF_LANES / VN; j++)
            b->acc[j] += *(const vn *)(gn + i + j * VN);
    for (; i < HW; i++)
        b->tail += gn[i];
}

/* bias_sum_add of two planes at once (two channels' sums: their chains interleaved, each the
 * same). */
static inline void bias_sum_add2(struct bias_sum *b, const float *g0, const float *g1, size_t HW)
{
    size_t i = 0;
    for (; i + VF_LANES <= HW; i += VF_LANES)
        for (int j = 0; j < VF_LANES / VN; j++) {
            b[0].acc[j] += *(const vn *)(g0 + i + j * VN);
            b[1].acc[j] += *(const vn *)(g1 + i + j * VN);
        }
    for (; i < HW; i++) {
        b[0].tail += g0[i];
        b[1].tail += g1[i];
    }
}

static inline float bias_sum_total(const struct bias_sum *b)
{
    float lanes[VF_LANES];
    for (int j = 0; j < VF_LANES / VN; j++)
        *(vn *)(lanes + j * VN) = b->acc[j];
    return vf_sum(vf_load(lanes)) + b->tail;
}

/* dweight[co, ci, ky, kx] = sum_{n, h, w} dout[n, co, h, w] * inp[n, ci, h+ky-1, w+kx-1];
 * dbias[co] = sum dout[n, co] (dbias NULL: none). Each (co, ci) has one owner thread. */
static void conv_backward_filter(struct cpu_ctx *c, struct amp_tensor *dweight,
                                 struct amp_tensor *dbias, const struct amp_tensor *dout,
                                 const struct amp_tensor *inp, const struct amp_tensor *ws,
                                 const struct conv_shape *s, enum amp_math math)
{
    const int N = (int)s->n, CI = (int)s->c_in, CO = (int)s->c_out;
    const struct grid g = grid_of(s);
    const size_t HW = (size_t)g.h * g.w;
    const int S = g.stride;
    const int tf32_x = cpu_tf32(inp, math), tf32_g = cpu_tf32(dout, math);
    float *xpad = batch_planes(ws, s, &g, c->threads);
    const size_t work = (size_t)N * CI * CO * HW * 9;
#pragma omp parallel num_threads(c->threads) if (work >= CPU_PARALLEL_MIN)
    {
        const struct scratch sc = thread_scratch(ws, s, &g);
        struct lowp_counts wcounts = { 0 }, bcounts = { 0 };
        size_t wrounded = 0, brounded = 0;
#pragma omp for schedule(static)
        for (int i = 0; i < N * CI; i++)
            pad_plane(xpad + (size_t)i * g.plane,
                      plane_f32(inp, (size_t)i * HW, &g, tf32_x, sc.flat), &g);
        /* dout on two flat grids (a pair's channels: the second in the planes' room, unused
         * here, at least one padded plane of more than q floats); their two padding columns
         * per row stay zero. */
        float *const grids[2] = { sc.grid, sc.planes };
        /* 16-bit dout's planes widened: the second after the second grid (the planes' room
         * holds two padded planes or more where there is a pair) */
        float *const flats[2] = { sc.flat, sc.planes + g.q };
        memset(grids[0], 0, (size_t)g.q * sizeof *sc.grid);
        memset(grids[1], 0, (size_t)g.q * sizeof *sc.grid);
        /* Output channels in pairs (the last one alone when CO is odd): a pair's two passes
         * share the input's loads; each tap's sum keeps its own chain. Each thread takes a
         * contiguous share of the (pair, input channel) items and runs it image by image: the
         * image's input plane serves every item of the share while in cache, and its dout planes
         * are read in order, each copied once for the items of its pair. The items' sums (and
         * bias lanes) carry over from image to image: every sum is the same chain as item by
         * item. */
        const int pairs = (CO + 1) / 2, items = pairs * CI;
        const int T = omp_get_num_threads(), t = omp_get_thread_num();
        const int lo = (int)((long)items * t / T), hi = (int)((long)items * (t + 1) / T);
        struct item_sums {
            float a[2][9];
            struct bias_sum bs[2];
        } *sums = calloc(hi > lo ? (size_t)(hi - lo) : 1, sizeof *sums);
        if (!sums)
            abort();
        for (int n = 0; n < N; n++) {
            int copied = -1; /* the pair whose planes of image n the grids hold */
            for (int it = lo; it < hi; it++) {
                const int cp = it / CI, ci = it % CI;
                const int co = 2 * cp, two = co + 1 < CO;
                struct item_sums *su = &sums[it - lo];
                float a0 = su->a[0][0], a1 = su->a[0][1], a2 = su->a[0][2], a3 = su->a[0][3],
                      a4 = su->a[0][4], a5 = su->a[0][5], a6 = su->a[0][6], a7 = su->a[0][7],
                      a8 = su->a[0][8];
                float b0 = su->a[1][0], b1 = su->a[1][1], b2 = su->a[1][2], b3 = su->a[1][3],
                      b4 = su->a[1][4], b5 = su->a[1][5], b6 = su->a[1][6], b7 = su->a[1][7],
                      b8 = su->a[1][8];
                const float *xp = xpad + ((size_t)n * CI + ci) * g.plane;
                const float *r0 = xp, *r1 = xp + S, *r2 = xp + 2 * S;
                const float *gn[2] = { NULL, NULL };
                for (int k = 0; k <= two && cp != copied; k++) {
                    gn[k] = plane_f32(dout, ((size_t)n * CO + co + k) * HW, &g, tf32_g,
                                      flats[k]);
                    float *gk = grids[k];
                    for (int h = 0; h < g.h; h++)
                        copy_row(gk + (size_t)h * S, gn[k] + (size_t)h * g.w, g.w, 0.0f);
                }
                const float *gq = grids[0], *gq2 = grids[1];
                if (!two) {
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
                } else {
#pragma omp simd reduction(+ : a0, a1, a2, a3, a4, a5, a6, a7, a8, b0, b1, b2, b3, b4, b5, b6, b7, b8)
                    for (int q = 0; q < g.q; q++) {
                        const float d = gq[q], e = gq2[q];
                        const float x0 = r0[q], x1 = r0[q + 1], x2 = r0[q + 2], x3 = r1[q],
                                    x4 = r1[q + 1], x5 = r1[q + 2], x6 = r2[q], x7 = r2[q + 1],
                                    x8 = r2[q + 2];
                        a0 += d * x0;
                        a1 += d * x1;
                        a2 += d * x2;
                        a3 += d * x3;
                        a4 += d * x4;
                        a5 += d * x5;
                        a6 += d * x6;
                        a7 += d * x7;
                        a8 += d * x8;
                        b0 += e * x0;
                        b1 += e * x1;
                        b2 += e * x2;
                        b3 += e * x3;
                        b4 += e * x4;
                        b5 += e * x5;
                        b6 += e * x6;
                        b7 += e * x7;
                        b8 += e * x8;
                    }
                }
                const float out[2][9] = { { a0, a1, a2, a3, a4, a5, a6, a7, a8 },
                                          { b0, b1, b2, b3, b4, b5, b6, b7, b8 } };
                memcpy(su->a, out, sizeof out);
                /* The bias gradient rides along with ci 0's pass over dout (bias_sum), its
                 * planes in cache by now (a pair's first item in the share is its ci 0 where
                 * the share has it). */
                if (dbias && ci == 0 && cp != copied) {
                    struct bias_sum bs[2] = { su->bs[0], su->bs[1] }; /* (in registers) */
                    const float *bp[2]; /* (never TF32-rounded: FP32 dout as it is) */
                    for (int k = 0; k <= two; k++)
                        bp[k] = dout->dtype == AMP_F32
                                    ? (const float *)dout->data + ((size_t)n * CO + co + k) * HW
                                    : gn[k];
                    if (two)
                        bias_sum_add2(bs, bp[0], bp[1], HW);
                    else
                        bias_sum_add(bs, bp[0], HW);
                    su->bs[0] = bs[0], su->bs[1] = bs[1];
                }
                copied = cp;
            }
        }
        for (int it = lo; it < hi; it++) {
            const int cp = it / CI, ci = it % CI, co = 2 * cp, two = co + 1 < CO;
            const struct item_sums *su = &sums[it - lo];
            for (int k = 0; k <= two; k++) {
                cpu_store(dweight, ((size_t)(co + k) * CI + ci) * 9, su->a[k], 9, &wcounts);
                wrounded += 9;
                if (dbias && ci == 0) {
                    cpu_set(dbias, (size_t)(co + k), bias_sum_total(&su->bs[k]), &bcounts);
                    brounded++;
                }
            }
        }
        free(sums);
        cpu_count(c, dweight, wrounded, &wcounts);
        if (dbias)
            cpu_count(c, dbias, brounded, &bcounts);
    }
}

void cpu_conv2d_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                        const struct amp_tensor *weight, const struct amp_tensor *bias,
                        struct amp_tensor *workspace, const struct conv_shape *s,
                        enum amp_math math, int relu)
{
    /* The ReLU after the rounding and its counts, the relu op's bits: in the epilogues, on each
     * plane or piece while it is in cache. */
    if (!is_3x3_same(s))
        cpu_conv_general_forward(ctx, out, inp, weight, bias, workspace, s, math, relu);
    else
        correlate(ctx, out, inp, weight, bias, bias ? BIAS_TENSOR : BIAS_NONE, (int)s->c_in,
                  (int)s->c_out, 0, relu, workspace, s, math);
}

void cpu_conv2d_backward(void *ctx, struct amp_tensor *dweight, struct amp_tensor *dbias,
                         struct amp_tensor *dinp, const struct amp_tensor *dout,
                         const struct amp_tensor *inp, const struct amp_tensor *weight,
                         struct amp_tensor *workspace, const struct conv_shape *s,
                         enum amp_math math)
{
    if (!backward_is_3x3_same(s)) {
        cpu_conv_general_backward(ctx, dweight, dbias, dinp, dout, inp, weight, workspace, s,
                                  math);
        return;
    }
    if (dweight)
        conv_backward_filter(ctx, dweight, dbias, dout, inp, workspace, s, math);
    if (dinp) /* the full correlation of dout with the rotated, transposed filters */
        correlate(ctx, dinp, dout, weight, NULL, BIAS_PLUS_ZERO, (int)s->c_out, (int)s->c_in, 1,
                  0, workspace, s, math);
}
