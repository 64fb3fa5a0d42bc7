/* CPU reference: fully connected layer (out = inp @ weight^T + bias), forward and backward.
 * Operands are widened to FP32 exactly (FP16/BF16; FP32 rounded to TF32 in TF32 mode), products
 * and sums are FP32, and results are rounded to the output's dtype. OpenMP splits independent
 * outputs (no cross-thread reductions), so results do not depend on the thread count.
 *
 * The order of every sum is fixed by the definition below, whatever the tiling:
 *   forward   out[n, j] = (pairwise sum of 16 lanes, lane l the chain over k = l mod 16 of the
 *             first K - K % 16 columns, in increasing k) + (the chain over the last K % 16)
 *             + bias[j]  (simd.h's vf_sum of the lanes; every chain starts at +0)
 *   backward  dweight[j, k] = the chain over n of dout[n, j] * inp[n, k], dinp[n, k] = the chain
 *             over j of dout[n, j] * weight[j, k], dbias[j] = the chain over n of dout[n, j].
 * Register tiles use vectors of the machine's width (8 floats on AVX2: a 16-lane accumulator is
 * two of them, and its halves run one after the other, which changes no lane's chain). */
#include <stdlib.h>
#include <string.h>

#include "cpu_ops.h"
#include "f32bits.h"
#include "simd.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

enum { HALVES = VF_LANES / VN }; /* machine vectors per 16-lane accumulator */

/* Whether t is read as it is (FP32, not rounded to TF32), else widened into a buffer. */
static int plain_f32(const struct amp_tensor *t, enum amp_math math)
{
    return t->dtype == AMP_F32 && !cpu_tf32(t, math);
}

/* How a tile reads an operand: as floats (FP32 where it lies, or widened into a buffer first),
 * or as BF16 or FP16 values widened in registers as they are loaded: the same floats (the
 * widening is exact), without a pass through a buffer. */
enum opd { OPD_F32, OPD_BF16, OPD_F16 };

static enum opd opd_of(const struct amp_tensor *t)
{
    return t->dtype == AMP_BF16 ? OPD_BF16 : t->dtype == AMP_F16 ? OPD_F16 : OPD_F32;
}

/* The VN floats at element i of p, read as `kind`. */
ALWAYS_INLINE vn opd_load(const void *p, size_t i, const enum opd kind)
{
    if (kind == OPD_BF16)
        return vn_load_bf16((const uint16_t *)p + i);
    if (kind == OPD_F16)
        return vn_load_f16((const uint16_t *)p + i);
    return *(const vn *)((const float *)p + i);
}

ALWAYS_INLINE float opd_get(const void *p, size_t i, const enum opd kind)
{
    if (kind == OPD_BF16)
        return f32_from_bits((uint32_t)((const uint16_t *)p)[i] << 16);
    if (kind == OPD_F16)
        return f16_to_f32(((const uint16_t *)p)[i]);
    return ((const float *)p)[i];
}

/* Element i of an operand read as `kind` (16-bit kinds in place; OPD_F32 is a float pointer). */
ALWAYS_INLINE const void *opd_at(const void *p, size_t i, const enum opd kind)
{
    return kind == OPD_F32 ? (const void *)((const float *)p + i)
                           : (const void *)((const uint16_t *)p + i);
}

/* ---- forward ---- */
enum {
    FWD_NT = 2,   /* samples per tile */
    FWD_JT = 5,   /* outputs per tile */
    FWD_KC = 512, /* columns per chunk (a multiple of 16): the tile's rows stay in L1 */
};

/* One chunk of a tile: acc[a][b][h] (lanes h * VN ..) += x[a][k + h * VN ..] * w[b][..] over
 * the chunk's full 16-column groups. x rows at stride ldx, w rows at stride ldw, read as xk and
 * wk. */
ALWAYS_INLINE void fwd_chunk(vn acc[FWD_NT][FWD_JT][HALVES], const void *x, size_t ldx,
                             const void *w, size_t ldw, size_t len, const int nt, const int jt,
                             const enum opd xk, const enum opd wk)
{
#pragma GCC unroll 4
    for (int h = 0; h < HALVES; h++) {
        vn c[FWD_NT][FWD_JT];
#pragma GCC unroll 8
        for (int a = 0; a < nt; a++)
#pragma GCC unroll 8
            for (int b = 0; b < jt; b++)
                c[a][b] = acc[a][b][h];
        for (size_t k = (size_t)h * VN; k < len; k += VF_LANES) {
            vn xv[FWD_NT];
#pragma GCC unroll 8
            for (int a = 0; a < nt; a++)
                xv[a] = opd_load(x, a * ldx + k, xk);
#pragma GCC unroll 8
            for (int b = 0; b < jt; b++) {
                const vn wv = opd_load(w, b * ldw + k, wk);
#pragma GCC unroll 8
                for (int a = 0; a < nt; a++)
                    c[a][b] += xv[a] * wv;
            }
        }
#pragma GCC unroll 8
        for (int a = 0; a < nt; a++)
#pragma GCC unroll 8
            for (int b = 0; b < jt; b++)
                acc[a][b][h] = c[a][b];
    }
}

struct fwd_args {
    struct amp_tensor *out;
    const struct amp_tensor *inp, *weight, *bias;
    int N, K, M, tf32_x, tf32_w, plain_x, plain_w;
    enum opd xk, wk; /* how full tiles read x and w (the others: OPD_F32) */
};

/* The tile of samples n0.. (nt of them) and outputs j0.. (jt), nt and jt constants after
 * inlining, its 16-bit operands read in place where xk, wk say so; xb and wb: FWD_NT and FWD_JT
 * rows of FWD_KC floats for the operands widened first. */
ALWAYS_INLINE void fwd_tile(const struct fwd_args *f, int n0, int j0, const int nt, const int jt,
                            const enum opd xk, const enum opd wk, float *xb, float *wb,
                            struct lowp_counts *counts)
{
    const size_t K = (size_t)f->K, kv = K - K % VF_LANES;
    vn acc[FWD_NT][FWD_JT][HALVES];
    float tail[FWD_NT][FWD_JT];
    for (int a = 0; a < nt; a++)
        for (int b = 0; b < jt; b++) {
            for (int h = 0; h < HALVES; h++)
                acc[a][b][h] = (vn){ 0 };
            tail[a][b] = 0.0f;
        }
    for (size_t k0 = 0; k0 < K; k0 += FWD_KC) {
        const size_t len = K - k0 < FWD_KC ? K - k0 : FWD_KC;
        const void *x = opd_at(f->inp->data, (size_t)n0 * K + k0, xk);
        const void *w = opd_at(f->weight->data, (size_t)j0 * K + k0, wk);
        size_t ldx = K, ldw = K;
        if (xk == OPD_F32 && !f->plain_x) {
            for (int a = 0; a < nt; a++)
                cpu_load(xb + a * FWD_KC, f->inp, (size_t)(n0 + a) * K + k0, len, f->tf32_x);
            x = xb, ldx = FWD_KC;
        }
        if (wk == OPD_F32 && !f->plain_w) {
            for (int b = 0; b < jt; b++)
                cpu_load(wb + b * FWD_KC, f->weight, (size_t)(j0 + b) * K + k0, len, f->tf32_w);
            w = wb, ldw = FWD_KC;
        }
        const size_t full = k0 + len <= kv ? len : kv - k0; /* 16-column groups in the chunk */
        fwd_chunk(acc, x, ldx, w, ldw, full, nt, jt, xk, wk);
        for (size_t k = full; k < len; k++) /* the last K % 16 columns, in order */
            for (int a = 0; a < nt; a++)
                for (int b = 0; b < jt; b++)
                    tail[a][b] += opd_get(x, a * ldx + k, xk) * opd_get(w, b * ldw + k, wk);
    }
    for (int a = 0; a < nt; a++)
        for (int b = 0; b < jt; b++) {
#if VN == 8
            const vf lanes = __builtin_shufflevector(acc[a][b][0], acc[a][b][1], 0, 1, 2, 3, 4, 5,
                                                     6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#else
            const vf lanes = (vf)acc[a][b][0];
#endif
            const float sum = vf_sum(lanes) + tail[a][b];
            const size_t j = (size_t)(j0 + b);
            cpu_set(f->out, (size_t)(n0 + a) * f->M + j,
                    f->bias ? sum + cpu_get(f->bias, j) : sum, counts);
        }
}

/* A full tile (FWD_NT x FWD_JT) with its operands read as f->xk and f->wk. */
static void fwd_full_tile(const struct fwd_args *f, int n0, int j0, float *xb, float *wb,
                          struct lowp_counts *counts)
{
#define FULL_CASE(xk, wk)                                                                         \
    case (xk) * 3 + (wk):                                                                         \
        fwd_tile(f, n0, j0, FWD_NT, FWD_JT, xk, wk, xb, wb, counts);                              \
        return;
    switch (f->xk * 3 + f->wk) {
        FULL_CASE(OPD_F32, OPD_F32) FULL_CASE(OPD_F32, OPD_BF16) FULL_CASE(OPD_F32, OPD_F16)
        FULL_CASE(OPD_BF16, OPD_F32) FULL_CASE(OPD_BF16, OPD_BF16) FULL_CASE(OPD_BF16, OPD_F16)
        FULL_CASE(OPD_F16, OPD_F32) FULL_CASE(OPD_F16, OPD_BF16) FULL_CASE(OPD_F16, OPD_F16)
    }
#undef FULL_CASE
}

void cpu_linear_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                        const struct amp_tensor *weight, const struct amp_tensor *bias,
                        uint32_t n, uint32_t k, uint32_t m, enum amp_math math)
{
    struct cpu_ctx *c = ctx;
    const struct fwd_args f = { .out = out, .inp = inp, .weight = weight, .bias = bias,
                                .N = (int)n, .K = (int)k, .M = (int)m,
                                .tf32_x = cpu_tf32(inp, math), .tf32_w = cpu_tf32(weight, math),
                                .plain_x = plain_f32(inp, math),
                                .plain_w = plain_f32(weight, math),
                                .xk = opd_of(inp), .wk = opd_of(weight) };
    const int nblocks = (f.N + FWD_NT - 1) / FWD_NT, jblocks = (f.M + FWD_JT - 1) / FWD_JT;
#pragma omp parallel num_threads(c->threads) if ((size_t)n * k * m >= CPU_PARALLEL_MIN)
    {
        struct lowp_counts counts = { 0 };
        size_t rounded = 0;
        float xb[FWD_NT * FWD_KC], wb[FWD_JT * FWD_KC];
        /* (samples outer: a tile's sample rows, read from memory once, stay in cache for the
         * next block of outputs; the weights, all of them, stay in L2 while the samples stream) */
#pragma omp for collapse(2) schedule(static)
        for (int nb = 0; nb < nblocks; nb++) {
            for (int jb = 0; jb < jblocks; jb++) {
                const int n0 = nb * FWD_NT, j0 = jb * FWD_JT;
                const int nt = f.N - n0 < FWD_NT ? f.N - n0 : FWD_NT;
                const int jt = f.M - j0 < FWD_JT ? f.M - j0 : FWD_JT;
#define FWD_CASE(a, b)                                                                            \
    case (a) * 8 + (b):                                                                           \
        fwd_tile(&f, n0, j0, a, b, OPD_F32, OPD_F32, xb, wb, &counts);                            \
        break;
                switch (nt * 8 + jt) {
                    case FWD_NT * 8 + FWD_JT: fwd_full_tile(&f, n0, j0, xb, wb, &counts); break;
                    FWD_CASE(2, 4) FWD_CASE(2, 3) FWD_CASE(2, 2) FWD_CASE(2, 1)
                    FWD_CASE(1, 5) FWD_CASE(1, 4) FWD_CASE(1, 3) FWD_CASE(1, 2) FWD_CASE(1, 1)
                }
#undef FWD_CASE
                rounded += (size_t)nt * jt;
            }
        }
        cpu_count(c, out, rounded, &counts);
    }
}

/* ---- backward ---- */
enum {
    KS = 2 * VN,  /* columns k per strip: two machine vectors */
    DW_JT = VN == 16 ? 10 : 5, /* weight rows per dweight tile (as FWD_JT) */
    DX_NT = 6,    /* samples per dinp tile */
    GROUP_STRIPS = 8,        /* strips per group (below) at most */
    GROUP_FLOATS = 1 << 15,  /* a group's widened rows: about this many floats (128 KB) */
};

/* dst[r][0..KS) = sum over i < cnt (in order) of s[i * si + r * sr] * v[i * ldv + 0..KS), for
 * rt rows r (a constant after inlining), every chain from +0; dst rows at stride ldd; v read as
 * vk. mask not NULL (FP32, rows at ldd too): each sum stored through the fused ReLU's rule,
 * cpu_relu_grad32 (mask > 0 ? sum : +0), in vectors. */
ALWAYS_INLINE void strip_tile(float *dst, size_t ldd, const float *mask, const float *s,
                              size_t si, size_t sr, const void *v, size_t ldv, size_t cnt,
                              const int rt, const enum opd vk)
{
    vn c[DW_JT > DX_NT ? DW_JT : DX_NT][2];
#pragma GCC unroll 16
    for (int r = 0; r < rt; r++)
        c[r][0] = c[r][1] = (vn){ 0 };
    for (size_t i = 0; i < cnt; i++) {
        __builtin_prefetch(opd_at(v, i * ldv + KS, vk)); /* the next strip's line of this row */
        const vn v0 = opd_load(v, i * ldv, vk), v1 = opd_load(v, i * ldv + VN, vk);
#pragma GCC unroll 16
        for (int r = 0; r < rt; r++) {
            const float g = s[i * si + r * sr];
            c[r][0] += g * v0;
            c[r][1] += g * v1;
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < rt && mask; r++) {
        const vn y0 = *(const vn *)(mask + r * ldd), y1 = *(const vn *)(mask + r * ldd + VN);
        c[r][0] = (vn)((vni)c[r][0] & (y0 > (vn){ 0 }));
        c[r][1] = (vn)((vni)c[r][1] & (y1 > (vn){ 0 }));
    }
#pragma GCC unroll 16
    for (int r = 0; r < rt; r++) {
        __builtin_prefetch(dst + r * ldd + KS, 1);
        *(vn *)(dst + r * ldd) = c[r][0];
        *(vn *)(dst + r * ldd + VN) = c[r][1];
    }
}

/* strip_tile for rt <= max(DW_JT, DX_NT) rows and v's kind at run time. */
#define STRIP_CASE(r, k)                                                                          \
    case (r) * 3 + (k): strip_tile(dst, ldd, mask, s, si, sr, v, ldv, cnt, r, k); return;
#define STRIP_KINDS(r) STRIP_CASE(r, OPD_F32) STRIP_CASE(r, OPD_BF16) STRIP_CASE(r, OPD_F16)
static void strip_rows(float *dst, size_t ldd, const float *mask, const float *s, size_t si,
                       size_t sr, const void *v, size_t ldv, size_t cnt, int rt, enum opd vk)
{
    switch (rt * 3 + vk) {
#if VN == 16
        STRIP_KINDS(10) STRIP_KINDS(9) STRIP_KINDS(8) STRIP_KINDS(7)
#endif
        STRIP_KINDS(6) STRIP_KINDS(5) STRIP_KINDS(4) STRIP_KINDS(3) STRIP_KINDS(2)
        STRIP_KINDS(1)
    }
}
#undef STRIP_KINDS
#undef STRIP_CASE

/* dinp[off .. off + len) = relu_backward(itself, relu): the fused ReLU's mask on a piece of
 * rows just written (dinp and relu of one dtype). */
static void relu_mask(struct amp_tensor *dinp, const struct amp_tensor *relu, size_t off,
                      size_t len)
{
    const size_t es = dtype_size(dinp->dtype);
    char *d = (char *)dinp->data + off * es;
    cpu_relu_mask(dinp->dtype, d, d, (const char *)relu->data + off * es, len);
}

/* The columns k >= K0 (fewer than a strip): one strip of widened operands, zero past K (those
 * columns' sums are computed and dropped; the others' chains are the same). */
static void tail_cols(struct amp_tensor *dinp, struct amp_tensor *dweight, const float *g,
                      const struct amp_tensor *inp, const struct amp_tensor *weight, size_t K0,
                      size_t N, size_t K, size_t M, int tf32_x, int tf32_w,
                      const struct amp_tensor *relu,
                      float *vbuf, struct lowp_counts *wcounts, struct lowp_counts *xcounts)
{
    const size_t kt = K - K0;
    float obuf[(DW_JT > DX_NT ? DW_JT : DX_NT) * KS];
    if (kt == 0)
        return;
    memset(vbuf, 0, (N > M ? N : M) * KS * sizeof *vbuf);
    for (size_t i = 0; dweight && i < N; i++)
        cpu_load(vbuf + i * KS, inp, i * K + K0, kt, tf32_x);
    for (size_t j0 = 0; dweight && j0 < M; j0 += DW_JT) {
        const int jt = (int)(M - j0 < DW_JT ? M - j0 : DW_JT);
        strip_rows(obuf, KS, NULL, g + j0, M, 1, vbuf, KS, N, jt, OPD_F32);
        for (int r = 0; r < jt; r++)
            cpu_store(dweight, (j0 + (size_t)r) * K + K0, obuf + r * KS, kt, wcounts);
    }
    if (!dinp)
        return;
    for (size_t j = 0; j < M; j++)
        cpu_load(vbuf + j * KS, weight, j * K + K0, kt, tf32_w);
    for (size_t n0 = 0; n0 < N; n0 += DX_NT) {
        const int nt = (int)(N - n0 < DX_NT ? N - n0 : DX_NT);
        strip_rows(obuf, KS, NULL, g + n0 * M, 1, M, vbuf, KS, M, nt, OPD_F32);
        for (int r = 0; r < nt; r++) {
            cpu_store(dinp, (n0 + (size_t)r) * K + K0, obuf + r * KS, kt, xcounts);
            if (relu)
                relu_mask(dinp, relu, (n0 + (size_t)r) * K + K0, kt);
        }
    }
}

/* dbias[j] = sum_n dout[n, j] (FP32 sum, rounded to dbias's dtype). */
static void bias_grad(struct cpu_ctx *c, struct amp_tensor *dbias, const struct amp_tensor *dout,
                      int N, int M)
{
    struct lowp_counts counts = { 0 };
    for (int j = 0; j < M; j++) {
        float sum = 0.0f;
        for (int n = 0; n < N; n++)
            sum += cpu_get(dout, (size_t)n * M + j);
        cpu_set(dbias, (size_t)j, sum, &counts);
    }
    cpu_count(c, dbias, (size_t)M, &counts);
}

void cpu_linear_backward(void *ctx, struct amp_tensor *dinp, struct amp_tensor *dweight,
                         struct amp_tensor *dbias, const struct amp_tensor *dout,
                         const struct amp_tensor *inp, const struct amp_tensor *weight,
                         uint32_t n, uint32_t k, uint32_t m, enum amp_math math,
                         const struct amp_tensor *relu)
{
    struct cpu_ctx *c = ctx;
    const size_t N = n, K = k, M = m;
    relu = dinp ? relu : NULL;
    if (dbias)
        bias_grad(c, dbias, dout, (int)n, (int)m);
    /* The output gradient is an operand of both GEMMs: TF32-rounded like the others. dout
     * (small: [N][M]) widened once; inp and weight widened per group of strips when needed. */
    const int tf32_x = cpu_tf32(inp, math), tf32_w = cpu_tf32(weight, math);
    const int plain_x = plain_f32(inp, math), plain_w = plain_f32(weight, math);
    const enum opd xk = opd_of(inp), wk = opd_of(weight); /* 16-bit: read in place */
    float *gbuf = NULL;
    const float *g = dout->data;
    if (!plain_f32(dout, math) && N > 0 && M > 0) {
        gbuf = malloc(N * M * sizeof *gbuf);
        if (!gbuf) /* (no way to report it: the op has no status; as a failed allocation) */
            abort();
        cpu_load(gbuf, dout, 0, N * M, cpu_tf32(dout, math));
        g = gbuf;
    }
    /* Strips go in groups of up to GROUP_STRIPS (fewer where N or M is large, so that a
     * group's widened rows stay near GROUP_FLOATS): a group's widened operands and its rounded
     * results move through cpu_load and cpu_store one row of the group at a time, not one row
     * of a strip. Grouping changes no chain. */
    const size_t strips = K / KS, K0 = strips * KS;
    const size_t rows = N > M ? N : M;
    size_t group = rows ? GROUP_FLOATS / (rows * KS) : GROUP_STRIPS;
    group = group < 1 ? 1 : group > GROUP_STRIPS ? GROUP_STRIPS : group;
    const size_t groups = (strips + group - 1) / group, vfloats = rows * group * KS;
#pragma omp parallel num_threads(c->threads) if (N * K * M >= CPU_PARALLEL_MIN)
    {
        struct lowp_counts wcounts = { 0 }, xcounts = { 0 };
        float *vbuf = malloc(vfloats * sizeof *vbuf);
        if (!vbuf)
            abort();
        float obuf[(DW_JT > DX_NT ? DW_JT : DX_NT) * GROUP_STRIPS * KS];
#pragma omp for schedule(static)
        for (size_t gi = 0; gi < groups; gi++) {
            const size_t s0 = gi * group, ns = strips - s0 < group ? strips - s0 : group;
            const size_t k0 = s0 * KS, w = ns * KS; /* the group's columns k0 .. k0 + w */
            /* dweight[j, k0..]: the chain over n of dout[n, j] * inp[n, k0..]. */
            const void *x = opd_at(inp->data, k0, xk);
            size_t ldx = K;
            if (dweight && xk == OPD_F32 && !plain_x) {
                for (size_t i = 0; i < N; i++)
                    cpu_load(vbuf + i * w, inp, i * K + k0, w, tf32_x);
                x = vbuf, ldx = w;
            }
            const int wdirect = dweight && dweight->dtype == AMP_F32;
            for (size_t j0 = 0; dweight && j0 < M; j0 += DW_JT) {
                const int jt = (int)(M - j0 < DW_JT ? M - j0 : DW_JT);
                float *dst = wdirect ? (float *)dweight->data + j0 * K + k0 : obuf;
                const size_t ldd = wdirect ? K : w;
                for (size_t s = 0; s < ns; s++)
                    strip_rows(dst + s * KS, ldd, NULL, g + j0, M, 1, opd_at(x, s * KS, xk), ldx,
                               N, jt, xk);
                for (int r = 0; !wdirect && r < jt; r++)
                    cpu_store(dweight, (j0 + (size_t)r) * K + k0, obuf + r * w, w, &wcounts);
            }
            if (!dinp)
                continue;
            /* dinp[n, k0..]: the chain over j of dout[n, j] * weight[j, k0..]. */
            const void *wt = opd_at(weight->data, k0, wk);
            size_t ldw = K;
            if (wk == OPD_F32 && !plain_w) {
                for (size_t j = 0; j < M; j++)
                    cpu_load(vbuf + j * w, weight, j * K + k0, w, tf32_w);
                wt = vbuf, ldw = w;
            }
            const int xdirect = dinp->dtype == AMP_F32;
            for (size_t n0 = 0; n0 < N; n0 += DX_NT) {
                const int nt = (int)(N - n0 < DX_NT ? N - n0 : DX_NT);
                float *dst = xdirect ? (float *)dinp->data + n0 * K + k0 : obuf;
                const size_t ldd = xdirect ? K : w;
                /* FP32: masked as stored; 16-bit: rounded (and counted), then masked in cache */
                const float *mask = xdirect && relu ? (const float *)relu->data + n0 * K + k0
                                                    : NULL;
                for (size_t s = 0; s < ns; s++)
                    strip_rows(dst + s * KS, ldd, mask ? mask + s * KS : NULL, g + n0 * M, 1, M,
                               opd_at(wt, s * KS, wk), ldw, M, nt, wk);
                for (int r = 0; !xdirect && r < nt; r++) {
                    cpu_store(dinp, (n0 + (size_t)r) * K + k0, obuf + r * w, w, &xcounts);
                    if (relu)
                        relu_mask(dinp, relu, (n0 + (size_t)r) * K + k0, w);
                }
            }
        }
#pragma omp single
        tail_cols(dinp, dweight, g, inp, weight, K0, N, K, M, tf32_x, tf32_w, relu, vbuf,
                  &wcounts, &xcounts);
        if (dweight)
            cpu_count(c, dweight, 0, &wcounts);
        if (dinp)
            cpu_count(c, dinp, 0, &xcounts);
        free(vbuf);
    }
    if (dweight)
        cpu_count(c, dweight, M * K, &(struct lowp_counts){ 0 });
    if (dinp)
        cpu_count(c, dinp, N * K, &(struct lowp_counts){ 0 });
    free(gbuf);
}
