/* CPU reference: the general 2-D convolution (NCHW, any kernel size, stride, padding and channel
 * count), forward and backward, as register-tiled FP32 GEMMs; cpu_conv.c sends it every geometry
 * but 3x3 / stride 1 / padding 1 over fewer than 16 input channels, which keeps its own path.
 *
 * The input is widened to FP32 (rounded to TF32 in TF32 mode) and zero-padded once into the
 * workspace, so that an im2col column is a gather without bounds checks (and, at stride 1, the
 * shifted input rows can be read in place). The micro-kernels keep MR x VF_LANES (or MR4 x
 * VF_LANES) tiles of FP32 accumulators, each output a single chain of fused multiply-adds over
 * the reduction index in increasing order, whatever the blocking around it (a tile is stored and
 * reloaded between blocks, which changes no bit):
 *   forward      out[co, q]  = sum_ck W[co, ck] * col[ck, q]     (q: the batch's output pixels)
 *   filter grad. dW^T[ck, co] = sum_q col[ck, q] * dout[co, q]  (q over the whole batch, in order;
 *                strided: dW[co, ck] = sum_q dout[co, q] * col^T[q, ck], col^T gathered)
 *   data grad.   stride 1: the forward convolution of dout (padded by K - 1 - P) with the filters
 *                transposed and rotated; else dcol[ck, q] = sum_co W[co, ck] * dout[co, q], then
 *                col2im (a fixed order)
 * OpenMP splits independent outputs only (no cross-thread reductions), and every block size that
 * orders a sum is a function of the shape alone, so results do not depend on the thread count. */
#include <string.h>

#include "cpu_ops.h"
#include "simd.h"

enum { MR = 6, MR4 = 4, NR = VF_LANES };

/* The micro-kernel's vectors have the machine's width (simd.h's vn): NV of them make one
 * NR-wide row of the tile. */
enum { NV = NR / VN };

static inline size_t up(size_t x, size_t m)
{
    return (x + m - 1) / m * m;
}

static inline size_t clampz(size_t x, size_t lo, size_t hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

/* The geometry, and the block sizes (functions of the shape only). */
struct geo {
    size_t N, C, H, W, CO, K, S, P, OH, OW;
    size_t HP, WP, plane; /* the padded input plane */
    size_t OHW, NQ;       /* output pixels per image, and of the batch (GEMM columns) */
    size_t KK, CK;        /* K * K, C * K * K (the reduction of the forward GEMM) */
    size_t CO6, CK16;     /* CO rounded up to MR, CK rounded up to NR */
    size_t NC;            /* forward: columns per task (a multiple of NR) */
    size_t G, LG, CB, NG, NCB, CBT; /* data grad.: images per group, its columns (rounded to NR),
                                       channels per block, groups, blocks, row tiles per block */
    size_t T;             /* filter grad.: shares of the filter-row tiles (the threads) */
    size_t KT, KTS;       /* ... row tiles of dW^T (CK rounded up to MR, / MR), tiles per share */
    size_t PW, CO16;      /* ... column panel width of dW^T (NR, or VN for at most VN
                             channels), CO rounded up to PW */
    size_t L;             /* ... batch columns per chunk */
    int XCOLS;            /* filter grad. as dW = dout x col^T (col^T gathered): strided
                             convolutions, and those whose channels fill under half a panel */
    int XSPLIT;           /* ... split by output channel */
    size_t XCTS, XKTS, XL; /* ... output-channel tiles and filter-column tiles per share, chunk */
};

static struct geo geo_of(const struct conv_shape *s, int threads)
{
    struct geo g = { .N = s->n, .C = s->c_in, .H = s->h, .W = s->w, .CO = s->c_out,
                     .K = s->kernel, .S = s->stride, .P = s->pad };
    g.OH = conv_out_h(s);
    g.OW = conv_out_w(s);
    g.HP = g.H + 2 * g.P;
    g.WP = g.W + 2 * g.P;
    g.plane = g.HP * g.WP;
    g.OHW = g.OH * g.OW;
    g.NQ = g.N * g.OHW;
    g.KK = g.K * g.K;
    g.CK = g.C * g.KK;
    g.CO6 = up(g.CO, MR);
    g.CK16 = up(g.CK, NR);
    /* Forward: a task's packed columns, CK x NC, within about 128 KB (half the L2 cache). */
    g.NC = clampz((32768 / (g.CK ? g.CK : 1)) / NR * NR, NR, 512);
    /* Data gradient: groups of images of at least 128 columns, and channel blocks whose
     * columns (CB * KK rows) stay within 64 Ki floats. */
    g.G = (128 + g.OHW - 1) / g.OHW; /* (not capped by N: the sizes grow with N, as the
                                         workspace asked for the largest batch must) */
    g.LG = up(g.G * g.OHW, NR);
    g.CB = clampz(65536 / (g.KK * g.LG), 1, g.C ? g.C : 1);
    g.NG = (g.N + g.G - 1) / g.G;
    g.NCB = (g.C + g.CB - 1) / g.CB;
    g.CBT = up(g.CB * g.KK, MR) / MR;
    /* Filter gradient: dW^T [CK][CO] in T shares of its MR-row tiles; dout^T of a chunk of L
     * columns within about 128 KB. */
    g.T = threads > 0 ? (size_t)threads : 1;
    g.KT = up(g.CK, MR) / MR;
    g.KTS = (g.KT + g.T - 1) / g.T;
    g.PW = NV > 1 && g.CO <= VN ? VN : NR;
    g.CO16 = up(g.CO, g.PW);
    g.L = clampz((32768 / g.CO16) / NR * NR, 64, 1024);
    if (g.L > up(g.NQ, NR))
        g.L = g.NQ ? up(g.NQ, NR) : NR;
    /* Strided convolutions' filter gradient, and that of convolutions with fewer output channels
     * than half a panel of dW^T (LeNet's first: 6 of 16 lanes; dW's rows of CK taps fill more):
     * T shares of the tiles of dW [CO][CK], by output channel when CK < CO (each thread then
     * packs all of col^T and its channels of dout), else by filter column; chunks of XL
     * columns, whose sums start afresh, sized so that one thread's operands (all the tiles: CO6
     * + CK16 rows) fit in about 2 MB. XL must not depend on T: the chunks decide the summation
     * order, and the results must not change with the thread count. At stride 1, XL is L: each
     * sum then is the dW^T path's chain, term for term (the same products, a * b as b * a, in
     * the same order from the same -0, the chunks added alike), so the two paths' bits agree. */
    g.XCOLS = g.S > 1 || 2 * g.CO <= g.CO16;
    g.XSPLIT = g.CK < g.CO;
    g.XCTS = g.XSPLIT ? (g.CO6 / MR + g.T - 1) / g.T : g.CO6 / MR;
    g.XKTS = g.XSPLIT ? g.CK16 / NR : (g.CK16 / NR + g.T - 1) / g.T;
    g.XL = clampz((524288 / (g.CO6 + g.CK16)) / NR * NR, 64, 4096);
    if (g.XL > up(g.NQ, NR))
        g.XL = g.NQ ? up(g.NQ, NR) : NR;
    if (g.S == 1)
        g.XL = g.L;
    return g;
}

/* ---- workspace ---- */
struct layout {
    float *xpad;   /* N x C padded input planes (forward, filter gradient) */
    float *shared; /* packed weights, or the filter gradient's chunk and accumulators */
    float *thread; /* per-thread scratch, per_thread floats each */
    size_t per_thread;
};

static size_t shared_floats(const struct geo *g)
{
    const size_t fwd = g->CO6 * g->CK;
    const size_t dgrad = g->NCB * g->CBT * MR * g->CO;
    size_t wgrad = up(g->KT * MR * g->CO16, 16) + g->CO16 * g->NQ;
    wgrad = g->CO6 * g->CK16 > wgrad ? g->CO6 * g->CK16 : wgrad; /* (strided) */
    size_t m = fwd > dgrad ? fwd : dgrad;
    return m > wgrad ? m : wgrad;
}

static size_t thread_floats(const struct geo *g)
{
    size_t row = g->OHW > g->CK ? g->OHW : g->CK; /* one widened row */
    row = row > g->L ? row : g->L;
    const size_t fwd = g->CK * g->NC + g->CO6 * (g->NC + NR);
    const size_t dgrad = g->CO * g->LG + g->CBT * MR * g->LG + g->G * g->CB * g->H * g->W;
    size_t wgrad = up(MR * g->CO16, 16) + NR * g->OHW + up(g->L, NR);
    const size_t xrow = g->XL > row ? g->XL : row; /* (strided) */
    const size_t xgrad = (g->XCTS * MR + g->XKTS * NR) * g->XL + up(xrow, NR) +
                         g->XL * (sizeof(size_t) / sizeof(float));
    wgrad = xgrad > wgrad ? xgrad : wgrad;
    size_t m = fwd > dgrad ? fwd : dgrad;
    return (m > wgrad ? m : wgrad) + row + NR;
}

/* (Every region a multiple of 16 floats: the workspace is 64-byte aligned, and so is each
 * region.) */
static size_t workspace_floats(const struct conv_shape *s, int threads)
{
    const struct geo g = geo_of(s, threads);
    return up(g.N * g.C * g.plane + NR, 16) + up(shared_floats(&g), 16) +
           g.T * up(thread_floats(&g), 16);
}

/* A stride-1 convolution's data gradient is the forward convolution of dout, padded by
 * K - 1 - P, with the filters transposed and rotated (pack_weights' flip): its shape, when the
 * padding is at most K - 1. */
static int flipped_shape(const struct conv_shape *s, struct conv_shape *t)
{
    if (s->stride != 1 || s->pad + 1 > s->kernel)
        return 0;
    *t = (struct conv_shape){ .n = s->n, .c_in = s->c_out, .h = conv_out_h(s),
                              .w = conv_out_w(s), .c_out = s->c_in, .kernel = s->kernel,
                              .stride = 1, .pad = s->kernel - 1 - s->pad };
    return 1;
}

size_t cpu_conv_general_workspace(const struct conv_shape *s, int threads)
{
    size_t floats = workspace_floats(s, threads);
    struct conv_shape t;
    if (flipped_shape(s, &t)) {
        const size_t f = workspace_floats(&t, threads);
        floats = f > floats ? f : floats;
    }
    return floats * sizeof(float);
}

static struct layout layout_of(const struct amp_tensor *ws, const struct geo *g)
{
    struct layout l = { .xpad = ws->data };
    l.shared = l.xpad + up(g->N * g->C * g->plane + NR, 16);
    l.thread = l.shared + up(shared_floats(g), 16);
    l.per_thread = up(thread_floats(g), 16);
    return l;
}

static float *my_scratch(const struct layout *l)
{
    return l->thread + (size_t)omp_get_thread_num() * l->per_thread;
}

/* The runs of batch columns [q0, q0 + nq) within one output row each: the column in the
 * block, the input offset of its top-left tap, the length. */
enum { MAXRUN = 1024 + 2 };
struct runs {
    size_t n, col[MAXRUN], off[MAXRUN], len[MAXRUN];
};

/* ---- the micro-kernels ---- */
/* Panels side by side per micro-kernel call where 32 vector registers hold their accumulators
 * (AVX-512: up to 4 x MR): more independent chains than a single MR x NR tile's 6 (or 4), which
 * would leave the FMA units waiting on each chain's latency. Each output keeps its own chain
 * (the same terms in the same order): the grouping of panels changes no bit. */
#if VN == 16
#define NPMAX 4
#else
#define NPMAX 1
#endif

/* acc[i][p][0..NR) (+)= sum_k a[k * mr + i] * B_p[k][0..NR), k = 0, 1, ..., K - 1 in order
 * (row i of panel p's sums at acc + i * ldc + p * pc), from the values in acc when `load`,
 * else from -0 (see below), over np panels: panel p's B columns at b + p * pb (pb = pc = NR:
 * panels side by side; or panels of several output rows, stored in panel order, so that a
 * panel spilling into the next one's columns is overwritten by it); row k of B at b + k * ldb,
 * or (off not NULL: a stride-1 convolution's shifted input rows, read in place) at b + off[k],
 * off[k] the tap's offset in the padded input. Output channels in tiles of mr rows: MR, or MR4
 * (a multiple of 4 but not of MR: no zero rows). */
static inline __attribute__((always_inline)) void
kernel_np(size_t K, const float *restrict a, const float *restrict b, size_t ldb,
          const size_t *restrict off, float *restrict acc, size_t ldc, int load, const int mr,
          const int np, size_t pb, size_t pc)
{
    vn c[MR][NPMAX][NV];
    const vn mzero = (vn){ 0 } * -1.0f;
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int p = 0; p < np; p++)
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                c[i][p][v] = load ? *(const vn *)(acc + i * ldc + p * pc + v * VN) : mzero;
    for (size_t k = 0; k < K; k++) {
        vn bv[NPMAX][NV];
        const float *bk = off ? b + off[k] : b + k * ldb;
#pragma GCC unroll 4
        for (int p = 0; p < np; p++)
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) {
                bv[p][v] = *(const vn *)(bk + p * pb + v * VN);
                IN_REGISTER(bv[p][v]); /* (else, at 4 rows of 3 panels, reloaded per row) */
            }
        const float *ak = a + k * mr;
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++) {
            const float ai = ak[i];
#pragma GCC unroll 4
            for (int p = 0; p < np; p++)
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++)
                    c[i][p][v] += ai * bv[p][v];
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int p = 0; p < np; p++)
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                *(vn *)(acc + i * ldc + p * pc + v * VN) = c[i][p][v];
}

/* kernel_np for mr (MR or MR4) and np (1 to NPMAX) at run time, with the rows of B at a stride
 * (micro_kernel_np) or at offsets (micro_kernel_off_np). */
#if NPMAX >= 4
#define KNP_CASES(m, O)                                                                          \
    case 4: kernel_np(K, a, b, ldb, O, acc, ldc, load, m, 4, pb, pc); return;                    \
    case 3: kernel_np(K, a, b, ldb, O, acc, ldc, load, m, 3, pb, pc); return;                    \
    case 2: kernel_np(K, a, b, ldb, O, acc, ldc, load, m, 2, pb, pc); return;                    \
    default: kernel_np(K, a, b, ldb, O, acc, ldc, load, m, 1, pb, pc); return;
#else
#define KNP_CASES(m, O)                                                                          \
    default: kernel_np(K, a, b, ldb, O, acc, ldc, load, m, 1, pb, pc); return;
#endif
#define KNP_DISPATCH(O)                                                                          \
    if (mr == MR4)                                                                               \
        switch (np) { KNP_CASES(MR4, O) }                                                        \
    switch (np) { KNP_CASES(MR, O) }

static __attribute__((noinline)) void micro_kernel_np(size_t K, const float *restrict a,
                                                      const float *restrict b, size_t ldb,
                                                      float *restrict acc, size_t ldc, int load,
                                                      int mr, int np)
{
    const size_t pb = NR, pc = NR;
    KNP_DISPATCH(NULL)
}

static __attribute__((noinline)) void micro_kernel_off_np(size_t K, const float *restrict a,
                                                          const float *restrict b,
                                                          const size_t *restrict off,
                                                          float *restrict acc, size_t ldc,
                                                          int mr, int np, size_t pb, size_t pc)
{
    const size_t ldb = 0;
    const int load = 0;
    KNP_DISPATCH(off)
}
#undef KNP_DISPATCH
#undef KNP_CASES

/* Accumulators start at -0, the identity of IEEE addition (-0 + x == x for every x, +0 and -0
 * included): a sum is then exactly the chain of its terms, e.g. -0 for a sum of -0 products. */
/* kernel_np's sums (MR rows, one panel) with row i of A read from its own row: a[i][k] (no
 * packing), from the values in acc, against nt tiles of B side by side (tile t's rows at b[t] +
 * k * NR, its sums at acc[t]): each output's chain as with one tile, more chains per pass
 * (AVX-512: 6 per tile, one vector each, too few alone). */
static inline __attribute__((always_inline)) void
rows_kernel(size_t K, const float *const a[MR], const float *const b[2], float *const acc[2],
            const int nt)
{
    vn c[2][MR][NV];
    const float *restrict a0 = a[0], *restrict a1 = a[1], *restrict a2 = a[2],
                          *restrict a3 = a[3], *restrict a4 = a[4], *restrict a5 = a[5];
    const float *restrict b0 = b[0], *restrict b1 = b[nt - 1];
#pragma GCC unroll 2
    for (int t = 0; t < nt; t++)
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                c[t][i][v] = *(const vn *)(acc[t] + i * NR + v * VN);
#pragma GCC unroll 2
    for (size_t k = 0; k < K; k++) {
        vn bv[2][NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            bv[0][v] = *(const vn *)(b0 + k * NR + v * VN);
            if (nt == 2)
                bv[1][v] = *(const vn *)(b1 + k * NR + v * VN);
        }
        const float ak[MR] = { a0[k], a1[k], a2[k], a3[k], a4[k], a5[k] };
#pragma GCC unroll 2
        for (int t = 0; t < nt; t++)
#pragma GCC unroll 16
            for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++)
                    c[t][i][v] += ak[i] * bv[t][v];
    }
#pragma GCC unroll 2
    for (int t = 0; t < nt; t++)
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                *(vn *)(acc[t] + i * NR + v * VN) = c[t][i][v];
}

static __attribute__((noinline)) void micro_kernel_rows(size_t K, const float *const a[MR],
                                                        const float *const b[2],
                                                        float *const acc[2], int nt)
{
    if (nt == 2)
        rows_kernel(K, a, b, acc, 2);
    else
        rows_kernel(K, a, b, acc, 1);
}

/* kernel_np's sums (MR rows) with row i of A read from the padded input in runs: over run r,
 * the elements xp[ao[i] + off[r] + S * (0 .. len[r])), against B rows col[r] + 0 .. (a
 * convolution's im2col rows, without the copy) of nv vectors: vector v of B row q at b + q * bq
 * + v * bv (nv vectors side by side, bq = nv * VN, bv = VN; or nv panels of one vector, bq = VN,
 * bv a panel's size: each broadcast of A then feeds nv FMAs), its sums at acc + i * ldc + v *
 * VN. */
enum { RUNS_NV = NV > NPMAX ? NV : NPMAX };
static inline __attribute__((always_inline)) void
runs_kernel(const struct runs *r, const float *xp, const size_t ao[MR], const float *restrict b,
            size_t bq, size_t bv, float *restrict acc, size_t ldc, int load, const size_t S,
            const int nv)
{
    vn c[MR][RUNS_NV];
    const vn mzero = (vn){ 0 } * -1.0f;
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            c[i][v] = load ? *(const vn *)(acc + i * ldc + v * VN) : mzero;
    for (size_t k = 0; k < r->n; k++) {
        const float *restrict a0 = xp + ao[0] + r->off[k], *restrict a1 = xp + ao[1] + r->off[k],
                              *restrict a2 = xp + ao[2] + r->off[k],
                              *restrict a3 = xp + ao[3] + r->off[k],
                              *restrict a4 = xp + ao[4] + r->off[k],
                              *restrict a5 = xp + ao[5] + r->off[k];
        const float *bk = b + r->col[k] * bq;
        const size_t len = r->len[k];
#pragma GCC unroll 2
        for (size_t l = 0; l < len; l++) {
            vn bl[RUNS_NV];
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++)
                bl[v] = *(const vn *)(bk + l * bq + v * bv);
            const float al[MR] = { a0[l * S], a1[l * S], a2[l * S],
                                   a3[l * S], a4[l * S], a5[l * S] };
#pragma GCC unroll 16
            for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
                for (int v = 0; v < nv; v++)
                    c[i][v] += al[i] * bl[v];
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            *(vn *)(acc + i * ldc + v * VN) = c[i][v];
}

/* runs_kernel over nt tiles of MR rows at once (row i of tile t: ao[t * MR + i]; its sums at
 * acc + (t * MR + i) * ldc), B panels of one vector: more independent chains per pass over
 * B, each row's chain as runs_kernel's. */
static inline __attribute__((always_inline)) void
runs_kernel_nt(const struct runs *r, const float *xp, const size_t *ao, const float *restrict b,
               float *restrict acc, size_t ldc, const size_t S, const int nt)
{
    vn c[NPMAX * MR];
    const vn mzero = (vn){ 0 } * -1.0f;
#pragma GCC unroll 32
    for (int i = 0; i < nt * MR; i++)
        c[i] = mzero;
    for (size_t k = 0; k < r->n; k++) {
        const float *restrict ar[NPMAX * MR];
#pragma GCC unroll 32
        for (int i = 0; i < nt * MR; i++)
            ar[i] = xp + ao[i] + r->off[k];
        const float *bk = b + r->col[k] * (size_t)VN;
        const size_t len = r->len[k];
        for (size_t l = 0; l < len; l++) {
            const vn bv = *(const vn *)(bk + l * (size_t)VN);
#pragma GCC unroll 32
            for (int i = 0; i < nt * MR; i++)
                c[i] += ar[i][l * S] * bv;
        }
    }
#pragma GCC unroll 32
    for (int i = 0; i < nt * MR; i++)
        *(vn *)(acc + i * ldc) = c[i];
}

/* runs_kernel over np (2 to NPMAX) B panels of one vector, pstride apart, at unit stride, from
 * -0. */
static __attribute__((noinline)) void micro_kernel_runs_panels(const struct runs *r,
                                                               const float *xp,
                                                               const size_t ao[MR],
                                                               const float *restrict b,
                                                               size_t pstride,
                                                               float *restrict acc, size_t ldc,
                                                               int np)
{
#if NPMAX >= 4
    if (np == 4)
        runs_kernel(r, xp, ao, b, VN, pstride, acc, ldc, 0, 1, 4);
    else if (np == 3)
        runs_kernel(r, xp, ao, b, VN, pstride, acc, ldc, 0, 1, 3);
    else
#endif
        runs_kernel(r, xp, ao, b, VN, pstride, acc, ldc, 0, 1, 2);
    (void)np; /* (one panel a call where NPMAX is 1: not called) */
}

/* runs_kernel_nt for nt (2 to NPMAX) tiles, at unit stride or at S, from -0. */
static __attribute__((noinline)) void micro_kernel_runs_nt(const struct runs *r, const float *xp,
                                                           const size_t *ao,
                                                           const float *restrict b,
                                                           float *restrict acc, size_t ldc,
                                                           size_t S, int nt)
{
#if NPMAX >= 2
    if (nt == 2 && S == 1)
        runs_kernel_nt(r, xp, ao, b, acc, ldc, 1, 2);
    else if (nt == 2)
        runs_kernel_nt(r, xp, ao, b, acc, ldc, S, 2);
    else
#endif
        (void)r, (void)xp, (void)ao, (void)b, (void)acc, (void)ldc, (void)S, (void)nt;
}

/* runs_kernel at unit stride (constant) or at the convolution's stride S, over B panels of
 * NV vectors (NR columns) or of one. */
static __attribute__((noinline)) void micro_kernel_runs(const struct runs *r, const float *xp,
                                                        const size_t ao[MR],
                                                        const float *restrict b,
                                                        float *restrict acc, size_t ldc,
                                                        int load, size_t S, int nv)
{
    if (S == 1 && nv == NV)
        runs_kernel(r, xp, ao, b, NV * VN, VN, acc, ldc, load, 1, NV);
    else if (nv == NV)
        runs_kernel(r, xp, ao, b, NV * VN, VN, acc, ldc, load, S, NV);
    else if (S == 1)
        runs_kernel(r, xp, ao, b, VN, VN, acc, ldc, load, 1, 1);
    else
        runs_kernel(r, xp, ao, b, VN, VN, acc, ldc, load, S, 1);
}

/* Sum of t[off .. off+len) (FP32, or widened into buf) added to 16 lane accumulators (lanes[l]
 * takes the elements at l mod 16 of each full 16) and a tail (the rest, in order): vf
 * arithmetic in registers of the machine's width. */
static inline void lane_sums(float lanes[NR], float *tail, const float *v, size_t len)
{
    vn acc[NV];
    for (int j = 0; j < NV; j++)
        acc[j] = *(const vn *)(lanes + j * VN);
    size_t i = 0;
    for (; i + NR <= len; i += NR)
        for (int j = 0; j < NV; j++)
            acc[j] += *(const vn *)(v + i + j * VN);
    for (int j = 0; j < NV; j++)
        *(vn *)(lanes + j * VN) = acc[j];
    for (; i < len; i++)
        *tail += v[i];
}


/* dst[0..n) = src[0, S, 2S, ...); runs of unit stride in vectors of the machine's width. */
static inline void copy_stride(float *restrict dst, const float *restrict src, size_t n, size_t S)
{
    if (S == 1) {
#if defined(__AVX512F__)
        if (n < VN) { /* a short run (im2col of a small image's rows): one masked move */
            const __mmask16 m = (__mmask16)((1u << n) - 1);
            _mm512_mask_storeu_ps(dst, m, _mm512_maskz_loadu_ps(m, src));
            return;
        }
#endif
        size_t i = 0;
        for (; i + VN <= n; i += VN)
            *(vn *)(dst + i) = *(const vn *)(src + i);
        if (i < n && n >= VN) /* the tail as one overlapping vector */
            *(vn *)(dst + n - VN) = *(const vn *)(src + n - VN);
        else
            for (; i < n; i++)
                dst[i] = src[i];
    } else if (S == 2) {
        for (size_t i = 0; i < n; i++)
            dst[i] = src[2 * i];
    } else {
        for (size_t i = 0; i < n; i++)
            dst[i] = src[i * S];
    }
}

/* d[p * pw + i] = src[i][p] (0 where src[i] is NULL), i < pw (a multiple of VN), p < len: rows
 * interleaved, VN x VN blocks transposed in registers, the last len % VN positions one by one. */
static void transpose_rows(float *restrict d, const float *src[], size_t pw, size_t len)
{
    size_t p = 0;
    for (; p + VN <= len; p += VN)
        for (size_t i0 = 0; i0 < pw; i0 += VN) {
            vn r[VN];
            for (int i = 0; i < VN; i++)
                r[i] = src[i0 + i] ? *(const vn *)(src[i0 + i] + p) : (vn){ 0 };
            vn_transpose(r);
            for (int k = 0; k < VN; k++)
                *(vn *)(d + (p + k) * pw + i0) = r[k];
        }
    for (; p < len; p++)
        for (size_t i = 0; i < pw; i++)
            d[p * pw + i] = src[i] ? src[i][p] : 0.0f;
}

/* ---- the padded input ---- */
/* The input as padded FP32 planes: inp itself when it is FP32, not rounded and not padded;
 * else xpad[n, c] = inp[n, c] widened (TF32-rounded when tf32) in a zero border of P, built by
 * a worksharing loop (call inside an omp parallel region). */
static const float *padded_input(float *xpad, const struct amp_tensor *inp, const struct geo *g,
                                 int tf32, int copy)
{
    if (inp->dtype == AMP_F32 && !tf32 && g->P == 0 && !copy)
        return inp->data;
#pragma omp for schedule(static)
    for (size_t i = 0; i < g->N * g->C; i++) {
        float *dst = xpad + i * g->plane;
        const size_t HW = g->H * g->W;
        const float *src = (const float *)inp->data + i * HW;
        if (inp->dtype != AMP_F32 || tf32) {
            /* Widened (rounded) as one run at the plane's end, then each row moved forward to
             * its place: row y's place ends before row y + 1's widened copy begins. */
            float *wide = dst + g->plane - HW;
            cpu_load(wide, inp, i * HW, HW, tf32);
            src = wide;
        }
        if (g->P)
            memset(dst, 0, g->P * g->WP * sizeof *dst);
        for (size_t y = 0; y < g->H; y++) {
            float *row = dst + (y + g->P) * g->WP;
            if (row + g->P != src + y * g->W) /* (short rows: inline moves, no libc call) */
                copy_stride(row + g->P, src + y * g->W, g->W, 1);
            for (size_t x = 0; x < g->P; x++)
                row[x] = row[g->P + g->W + x] = 0.0f;
        }
        if (g->P)
            memset(dst + (g->P + g->H) * g->WP, 0, g->P * g->WP * sizeof *dst);
    }
    return xpad;
}

/* Offset in xpad of the top-left tap of batch column q. */
static inline size_t col_base(const struct geo *g, size_t q)
{
    const size_t n = q / g->OHW, p = q % g->OHW;
    return n * g->C * g->plane + (p / g->OW) * g->S * g->WP + (p % g->OW) * g->S;
}

/* ---- forward ---- */

static void runs_of(struct runs *r, size_t q0, size_t nq, const struct geo *g)
{
    r->n = 0;
    for (size_t q = q0; q < q0 + nq; r->n++) {
        const size_t p = q % g->OHW, ox = p % g->OW;
        const size_t len = q0 + nq - q < g->OW - ox ? q0 + nq - q : g->OW - ox;
        r->col[r->n] = q - q0;
        r->off[r->n] = col_base(g, q);
        r->len[r->n] = len;
        q += len;
    }
}

/* im2col rows [ck0, ck1) (ck = (ci, ky, kx)) of batch columns r: rows of ld columns, zero
 * from nq to ld. A column run within one output row reads the input at stride S. */
static void im2col_rows(float *restrict dst, size_t ld, const float *restrict xp,
                        const struct runs *r, size_t nq, size_t ck0, size_t ck1,
                        const struct geo *g)
{
    float *d = dst;
    for (size_t ck = ck0; ck < ck1; ck++, d += ld) {
        const size_t ci = ck / g->KK, ky = ck % g->KK / g->K, kx = ck % g->K;
        const float *src = xp + ci * g->plane + ky * g->WP + kx;
        for (size_t k = 0; k < r->n; k++)
            copy_stride(d + r->col[k], src + r->off[k], r->len[k], g->S);
        for (size_t c = nq; c < ld; c++)
            d[c] = 0.0f;
    }
}

/* Weights packed as MR-row panels [CO6 / MR][CK][MR] (rows past CO zero), A[co][ck] =
 * weight[co, ck]; or, `flip` (the data gradient of a stride-1 convolution run as a forward
 * one, whose output channels are the layer's inputs), A[co][(ci, ky, kx)] = weight[ci, co,
 * K-1-ky, K-1-kx]: the filters transposed and rotated by 180 degrees. A worksharing loop. */
static void pack_weights(float *restrict dst, const struct amp_tensor *weight, int tf32,
                         int flip, size_t mr, float *row, const struct geo *g)
{
    const size_t rows = up(g->CO, mr);
#pragma omp for schedule(static)
    for (size_t co = 0; co < rows; co++) {
        float *panel = dst + (co / mr) * g->CK * mr + co % mr;
        if (co < g->CO && !flip) {
            cpu_load(row, weight, co * g->CK, g->CK, tf32);
        } else if (co < g->CO) {
            for (size_t ci = 0; ci < g->C; ci++) {
                float taps[64];
                for (size_t k0 = 0; k0 < g->KK; k0 += 64) {
                    const size_t len = g->KK - k0 < 64 ? g->KK - k0 : 64;
                    cpu_load(taps, weight, (ci * g->CO + co) * g->KK + k0, len, tf32);
                    for (size_t k = 0; k < len; k++)
                        row[ci * g->KK + g->KK - 1 - (k0 + k)] = taps[k];
                }
            }
        }
        for (size_t k = 0; k < g->CK; k++)
            panel[k * mr] = co < g->CO ? row[k] : 0.0f;
    }
}

/* out = the convolution of s (bias optional), or with `flip` the flipped filters (see
 * pack_weights) of a weight tensor [s->c_in][s->c_out][K][K]; relu: then the relu op on out
 * (FP32: on the sums; 16-bit: on the stored bits, after the rounding and its counts). */
static void forward_gemm(struct cpu_ctx *c, struct amp_tensor *out, const struct amp_tensor *inp,
                         const struct amp_tensor *weight, const struct amp_tensor *bias,
                         struct amp_tensor *workspace, const struct conv_shape *s,
                         enum amp_math math, int flip, int relu)
{
    const struct geo g = geo_of(s, c->threads);
    const struct layout lay = layout_of(workspace, &g);
    const int tf32_x = cpu_tf32(inp, math), tf32_w = cpu_tf32(weight, math);
    const double work = (double)g.NQ * g.CO * (g.CK + 1);
    /* Output channels in tiles of MR rows, or of MR4 where that needs no zero rows and MR's
     * would be a larger share (32 channels or fewer: 8, 16, 20, 28, 32; at 32, MR's 4 zero rows
     * of 36 measured 4-8% slower than MR4's tiles in resnet8's 32-channel data gradient and
     * projection). */
    const size_t mr = g.CO % MR != 0 && g.CO % MR4 == 0 && g.CO <= 32 ? MR4 : MR;
    const size_t ntile = up(g.CO, mr) / mr;
    /* In place (no im2col) when the output rows fill their panels well enough: 3/4, or 5/8 for
     * rows of one panel (run four rows to a call: LeNet's conv2, 10 of 16 lanes, gains; 7 of 16
     * measured slower than im2col). */
    const int direct = g.S == 1 && up(g.OW, NR) <= g.NC &&
                       (4 * g.OW >= 3 * up(g.OW, NR) || (g.OW <= NR && 8 * g.OW >= 5 * NR));
    if (direct) /* (the slack past the last plane, read by the last row's last panel) */
        memset(lay.xpad + g.N * g.C * g.plane, 0, NR * sizeof *lay.xpad);
#pragma omp parallel num_threads(c->threads) if (work >= CPU_PARALLEL_MIN)
    {
        size_t tasks = (g.NQ + g.NC - 1) / g.NC;
        float *scratch = my_scratch(&lay);
        float *cols = scratch, *sums = cols + g.CK * g.NC, *row = sums + g.CO6 * (g.NC + NR);
        struct lowp_counts counts = { 0 };
        size_t rounded = 0;
        struct runs runs;
        const float *xp = padded_input(lay.xpad, inp, &g, tf32_x, direct);
        pack_weights(lay.shared, weight, tf32_w, flip, mr, row, &g);
        /* (the worksharing loops end in barriers: xpad and the weights are complete) */
        if (direct) {
            /* Stride 1, rows of at least 3/4 of a panel: each output row's NR-column panels
             * read the shifted input rows in place (columns past the row are computed from
             * whatever follows it, xpad's zero slack at the end, and dropped). */
            size_t *koff = (size_t *)cols;
            for (size_t ck = 0; ck < g.CK; ck++)
                koff[ck] = ck / g.KK * g.plane + ck % g.KK / g.K * g.WP + ck % g.K;
            /* A task: R output rows of one image, their sums packed at row stride OW (a row's
             * last panel spills into the next row's first columns, which that row then
             * overwrites; the last row's spill goes to the NR floats of slack), stored as one
             * run per channel. */
            const size_t npr = up(g.OW, NR) / NR;
            const size_t R = g.NC / g.OW > 1 ? g.NC / g.OW : 1, ldr = R * g.OW + NR;
            const size_t blocks = (g.OH + R - 1) / R;
#pragma omp for schedule(dynamic)
            for (size_t t = 0; t < g.N * blocks; t++) {
                const size_t n = t / blocks, oy0 = t % blocks * R;
                const size_t rows = g.OH - oy0 < R ? g.OH - oy0 : R, len = rows * g.OW;
                /* Rows of one panel go NPMAX rows to a call (as many panels, more chains). */
                for (size_t r = 0; npr == 1 && r < rows; r += NPMAX) {
                    const float *xrow = xp + n * g.C * g.plane + (oy0 + r) * g.WP;
                    const int np = (int)(rows - r < NPMAX ? rows - r : NPMAX);
                    for (size_t ct = 0; ct < ntile; ct++)
                        micro_kernel_off_np(g.CK, lay.shared + ct * g.CK * mr, xrow, koff,
                                            sums + ct * mr * ldr + r * g.OW, ldr, (int)mr, np,
                                            g.WP, g.OW);
                }
                for (size_t r = 0; npr > 1 && r < rows; r++) {
                    const float *xrow = xp + n * g.C * g.plane + (oy0 + r) * g.WP;
                    for (size_t j = 0; j < npr; j += NPMAX) {
                        const int np = (int)(npr - j < NPMAX ? npr - j : NPMAX);
                        for (size_t ct = 0; ct < ntile; ct++)
                            micro_kernel_off_np(g.CK, lay.shared + ct * g.CK * mr,
                                                xrow + j * NR, koff,
                                                sums + ct * mr * ldr + r * g.OW + j * NR, ldr,
                                                (int)mr, np, NR, NR);
                    }
                }
                for (size_t co = 0; co < g.CO; co++) {
                    float *v = sums + co * ldr;
                    if (bias) { /* the sum, then the bias: one rounding to out's dtype */
                        const float b = cpu_get(bias, co);
                        for (size_t l = 0; l < len; l++)
                            v[l] += b;
                    }
                    const size_t off = (n * g.CO + co) * g.OHW + oy0 * g.OW;
                    if (relu && out->dtype == AMP_F32) /* (the fused ReLU on the sums in cache) */
                        cpu_relu_piece(AMP_F32, v, v, len);
                    if (out->dtype == AMP_F32)
                        copy_stride((float *)out->data + off, v, len, 1);
                    else
                        cpu_store_relu(out, off, v, len, relu, &counts);
                    rounded += len;
                }
            }
            tasks = 0;
        }
#pragma omp for schedule(dynamic)
        for (size_t t = 0; t < tasks; t++) {
            const size_t q0 = t * g.NC, nq = g.NQ - q0 < g.NC ? g.NQ - q0 : g.NC;
            const size_t npanel = up(nq, NR) / NR;
            const size_t ld = npanel * NR;
            runs_of(&runs, q0, nq, &g);
            im2col_rows(cols, ld, xp, &runs, nq, 0, g.CK, &g);
            /* A column panel stays in L1 while the weights' panels stream from L2; the sums
             * go to rows of ld columns, written out row by row. */
            for (size_t j = 0; j < npanel; j += NPMAX) {
                const int np = (int)(npanel - j < NPMAX ? npanel - j : NPMAX);
                for (size_t ct = 0; ct < ntile; ct++)
                    micro_kernel_np(g.CK, lay.shared + ct * g.CK * mr, cols + j * NR, ld,
                                    sums + ct * mr * ld + j * NR, ld, 0, (int)mr, np);
            }
            for (size_t co = 0; co < g.CO; co++) {
                float *v = sums + co * ld;
                if (bias) { /* the sum, then the bias: one rounding to out's dtype */
                    const float b = cpu_get(bias, co);
                    for (size_t l = 0; l < nq; l++)
                        v[l] += b;
                }
                if (relu && out->dtype == AMP_F32) /* (the fused ReLU on the sums in cache) */
                    cpu_relu_piece(AMP_F32, v, v, nq);
                for (size_t q = q0; q < q0 + nq;) { /* one piece per image */
                    const size_t n = q / g.OHW, p = q % g.OHW;
                    const size_t len = q0 + nq - q < g.OHW - p ? q0 + nq - q : g.OHW - p;
                    const size_t off = (n * g.CO + co) * g.OHW + p;
                    if (out->dtype == AMP_F32)
                        copy_stride((float *)out->data + off, v + (q - q0), len, 1);
                    else
                        cpu_store_relu(out, off, v + (q - q0), len, relu, &counts);
                    rounded += len;
                    q += len;
                }
            }
        }
        cpu_count(c, out, rounded, &counts);
    }
}

void cpu_conv_general_forward(struct cpu_ctx *c, struct amp_tensor *out,
                              const struct amp_tensor *inp, const struct amp_tensor *weight,
                              const struct amp_tensor *bias, struct amp_tensor *workspace,
                              const struct conv_shape *s, enum amp_math math, int relu)
{
    forward_gemm(c, out, inp, weight, bias, workspace, s, math, 0, relu);
}

/* ---- filter gradient ---- */
/* The bias gradient, inside the filter gradient's parallel region (the threads share its
 * channels): a plain FP32 reduction of dout (never TF32-rounded), in vectors, as the 3x3 path
 * sums it; row is the thread's scratch row of at least OHW floats. */
static void bias_gradient(struct cpu_ctx *c, struct amp_tensor *dbias,
                          const struct amp_tensor *dout, const struct geo *g, float *row)
{
    struct lowp_counts counts = { 0 };
    size_t rounded = 0;
#pragma omp for schedule(static)
    for (size_t co = 0; co < g->CO; co++) {
        float lanes[NR] = { 0 }, tail = 0.0f;
        for (size_t n = 0; n < g->N; n++) {
            const size_t off = (n * g->CO + co) * g->OHW;
            const float *gn = (const float *)dout->data + off;
            if (dout->dtype != AMP_F32) {
                cpu_load(row, dout, off, g->OHW, 0);
                gn = row;
            }
            lane_sums(lanes, &tail, gn, g->OHW);
        }
        cpu_set(dbias, co, vf_sum(vf_load(lanes)) + tail, &counts);
        rounded++;
    }
    cpu_count(c, dbias, rounded, &counts);
}

/* dW^T[ck, co] = sum over the batch's columns q (in order) of col[ck, q] * dout[co, q]; dbias =
 * sum of dout. Each thread owns shares of the MR-row tiles of dW^T and runs every chunk of
 * columns alone: it builds its tiles' im2col rows and dout^T (NR-column panels) for the chunk,
 * with no barrier per chunk (a late thread would hold every other one at each). */
static void backward_filter(struct cpu_ctx *c, struct amp_tensor *dweight,
                            struct amp_tensor *dbias, const struct amp_tensor *dout,
                            const struct amp_tensor *inp, const struct layout *lay,
                            const struct geo *g, enum amp_math math)
{
    const int tf32_x = cpu_tf32(inp, math), tf32_g = cpu_tf32(dout, math);
    float *acc_buf = lay->shared; /* [KT * MR][CO16] FP32 sums */
    float *doutT = acc_buf + up(g->KT * MR * g->CO16, 16); /* [CO16 / PW][NQ][PW] */
    const size_t PW = g->PW, chunks = (g->NQ + g->L - 1) / g->L, npanel = g->CO16 / PW;
    const double work = (double)g->NQ * g->CO * (g->CK + 1);
#pragma omp parallel num_threads(c->threads) if (work >= CPU_PARALLEL_MIN)
    {
        float *part = my_scratch(lay);                  /* [MR][CO16]: a chunk's sums */
        float *tmp = part + up(MR * g->CO16, 16);       /* [NR][OHW]: widened dout rows */
        float *row = tmp + NR * g->OHW;                 /* a scratch row */
        struct lowp_counts wcounts = { 0 };
        size_t wrounded = 0;
        struct runs runs;
        const float *xp = padded_input(lay->xpad, inp, g, tf32_x, 0);
        const int two_tiles = NPMAX >= 2 && PW == VN &&
                              2 * MR * g->CO16 <= up(MR * g->CO16, 16) + NR * g->OHW;
        /* dout^T in panels of PW channels (zero past CO), widened (TF32-rounded), shared by
         * every share: per image and panel, NR rows interleaved. */
#pragma omp for schedule(static)
        for (size_t it = 0; it < g->N * npanel; it++) {
            const size_t n = it / npanel, j = it % npanel;
            const float *src[NR];
            for (size_t i = 0; i < PW; i++) {
                const size_t co = j * PW + i, off = (n * g->CO + co) * g->OHW;
                src[i] = co >= g->CO ? NULL : (const float *)dout->data + off;
                if (co < g->CO && (dout->dtype != AMP_F32 || tf32_g)) {
                    cpu_load(tmp + i * g->OHW, dout, off, g->OHW, tf32_g);
                    src[i] = tmp + i * g->OHW;
                }
            }
            transpose_rows(doutT + (j * g->NQ + n * g->OHW) * PW, src, PW, g->OHW);
        }
        /* Share sh of T (a thread runs the shares me, me + team size, ...: every share when the
         * region runs on one thread). */
        for (size_t sh = (size_t)omp_get_thread_num(); sh < g->T;
             sh += (size_t)omp_get_num_threads()) {
            const size_t kt0 = sh * g->KTS < g->KT ? sh * g->KTS : g->KT;
            const size_t kt1 = kt0 + g->KTS < g->KT ? kt0 + g->KTS : g->KT;
            const size_t ck0 = kt0 * MR, ck1 = kt1 * MR < g->CK ? kt1 * MR : g->CK;
            if (kt0 == kt1)
                continue;
            for (size_t ch = 0; ch < chunks; ch++) {
                const size_t q0 = ch * g->L, nl = g->NQ - q0 < g->L ? g->NQ - q0 : g->L;
                runs_of(&runs, q0, nl, g);
                for (size_t kt = kt0; kt < kt1;) {
                    /* Two tiles per pass where B is one panel of one vector (AVX-512): 12
                     * chains (several panels instead go a pass each tile, below); a later
                     * chunk's sums of two tiles reach into tmp (free by now). */
                    const int nt = two_tiles && npanel == 1 && kt + 1 < kt1 ? 2 : 1;
                    size_t ao[2 * MR]; /* the rows' taps in xp (rows past CK: row ck0's,
                                          dropped) */
                    for (int i = 0; i < nt * MR; i++) {
                        const size_t ck = kt * MR + (size_t)i < g->CK ? kt * MR + (size_t)i : ck0;
                        ao[i] = ck / g->KK * g->plane + ck % g->KK / g->K * g->WP + ck % g->K;
                    }
                    /* Each chunk's sums start afresh and are then added to the totals: chains
                     * of at most L terms, not of the whole batch's columns. */
                    float *acc = acc_buf + kt * MR * g->CO16, *dst = ch ? part : acc;
                    for (size_t j = 0; j < npanel;) {
                        const float *bj = doutT + (j * g->NQ + q0) * PW;
                        const size_t np = npanel - j < NPMAX ? npanel - j : NPMAX;
                        if (NPMAX >= 2 && PW == VN && g->S == 1 && np >= 2) {
                            /* (several panels a pass over the runs) */
                            micro_kernel_runs_panels(&runs, xp, ao, bj, g->NQ * PW, dst + j * PW,
                                                     g->CO16, (int)np);
                            j += np;
                            continue;
                        }
                        if (nt == 2)
                            micro_kernel_runs_nt(&runs, xp, ao, bj, dst + j * PW, g->CO16, g->S,
                                                 2);
                        else
                            micro_kernel_runs(&runs, xp, ao, bj, dst + j * PW, g->CO16, 0,
                                              g->S, (int)(PW / VN));
                        j++;
                    }
                    if (ch)
                        for (size_t i = 0; i < (size_t)nt * MR * g->CO16; i++)
                            acc[i] += part[i];
                    kt += (size_t)nt;
                }
            }
            /* This share's columns of dweight (rows of dW^T), rounded; zeros for an empty
             * batch. */
            for (size_t co = 0; co < g->CO; co++) {
                for (size_t ck = ck0; ck < ck1; ck++)
                    row[ck - ck0] = chunks ? acc_buf[ck * g->CO16 + co] : 0.0f;
                cpu_store(dweight, co * g->CK + ck0, row, ck1 - ck0, &wcounts);
                wrounded += ck1 - ck0;
            }
        } /* the shares */
        if (dbias)
            bias_gradient(c, dbias, dout, g, row);
        cpu_count(c, dweight, wrounded, &wcounts);
    }
}

#if defined(__AVX512F__) && VF_LANES == 16
/* col^T rows of the gathered-col^T filter gradient, d[l][i] = the input under tap offck[i] of
 * batch column q0 + l (0 for i >= live), l < nl, at stride 1 or 2: the columns in runs of up to
 * 16 within one output row (inputs S apart), each run's 16 rows i loaded as vectors along l
 * (S = 2: two masked vectors, the even lanes kept), transposed in registers, stored as the
 * run's columns. Moves only. */
static void pack_cols_t(float *restrict d, const float *restrict xp, size_t q0, size_t nl,
                        const size_t offck[NR], size_t live, const struct geo *g)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    const size_t S = g->S;
    size_t n = q0 / g->OHW, oy = q0 % g->OHW / g->OW, ox = q0 % g->OW;
    for (size_t l = 0; l < nl;) {
        size_t w = g->OW - ox < VN ? g->OW - ox : VN;
        w = nl - l < w ? nl - l : w;
        const float *base = xp + n * g->C * g->plane + oy * S * g->WP + ox * S;
        vn r[VN];
        if (S == 1) {
            const __mmask16 m = (__mmask16)((1u << w) - 1u);
            for (size_t i = 0; i < VN; i++)
                r[i] = i < live ? (vn)_mm512_maskz_loadu_ps(m, base + offck[i]) : (vn){ 0 };
        } else {
            const unsigned k = (unsigned)(2 * w - 1); /* the lanes read, 1 to 31 */
            const __mmask16 m0 = (__mmask16)(k >= 16 ? 0xFFFFu : (1u << k) - 1u);
            const __mmask16 m1 = (__mmask16)(k > 16 ? (1u << (k - 16)) - 1u : 0u);
            for (size_t i = 0; i < VN; i++)
                r[i] = i < live ? (vn)_mm512_permutex2var_ps(
                                      _mm512_maskz_loadu_ps(m0, base + offck[i]), even,
                                      _mm512_maskz_loadu_ps(m1, base + offck[i] + 16))
                                : (vn){ 0 };
        }
        vn_transpose(r);
        for (size_t k = 0; k < w; k++)
            *(vn *)(d + (l + k) * NR) = r[k];
        l += w;
        if ((ox += w) == g->OW && (ox = 0, ++oy == g->OH))
            oy = 0, n++;
    }
}
#endif

/* dweight = sum over the batch's columns (in order) of dout x col^T; dbias = sum of dout.
 * Each thread owns a share of the output tiles (by output channel when CK < CO, else by filter
 * column) and runs every chunk of columns alone, packing the operands its tiles need: no
 * barrier per chunk (a late thread would hold every other one at each). Strided convolutions:
 * their columns' inputs are not contiguous, and a gathered col^T with long reductions wins. */
static void backward_filter_cols(struct cpu_ctx *c, struct amp_tensor *dweight,
                            struct amp_tensor *dbias, const struct amp_tensor *dout,
                            const struct amp_tensor *inp, const struct layout *lay,
                            const struct geo *g, enum amp_math math)
{
    const int tf32_x = cpu_tf32(inp, math), tf32_g = cpu_tf32(dout, math);
    float *acc_buf = lay->shared; /* [CO6][CK16] FP32 sums */
    const size_t ct_n = g->CO6 / MR, kt_n = g->CK16 / NR;
    const size_t chunks = (g->NQ + g->XL - 1) / g->XL;
    const double work = (double)g->NQ * g->CO * (g->CK + 1);
#pragma omp parallel num_threads(c->threads) if (work >= CPU_PARALLEL_MIN)
    {
        float *arows = my_scratch(lay);                 /* [CTS * MR][L]: dout */
        float *bpack = arows + g->XCTS * MR * g->XL;      /* [KTS][L][NR]: col^T */
        float *zeros = bpack + g->XKTS * NR * g->XL;      /* a zero row for channels past CO */
        float *row = zeros; /* (a scratch row again once the sums are done) */
        const size_t wrow = up(g->XL > g->OHW ? (g->XL > g->CK ? g->XL : g->CK)
                                             : (g->OHW > g->CK ? g->OHW : g->CK), NR);
        size_t *cbase = (size_t *)(zeros + wrow);
        struct lowp_counts wcounts = { 0 };
        size_t wrounded = 0;
        const float *xp = padded_input(lay->xpad, inp, g, tf32_x, 0);
#if defined(__AVX512F__) && VF_LANES == 16
        const int vec = g->S <= 2; /* col^T packed in transposed runs (pack_cols_t) */
#else
        const int vec = 0;
#endif
        /* Share sh of T (a thread runs the shares me, me + team size, ...: every share when the
         * region runs on one thread). */
        for (size_t sh = (size_t)omp_get_thread_num(); sh < g->T;
             sh += (size_t)omp_get_num_threads()) {
            size_t ct0 = 0, ct1 = ct_n, kt0 = 0, kt1 = kt_n;
            if (g->XSPLIT)
                ct0 = sh * g->XCTS, ct1 = ct0 + g->XCTS;
            else
                kt0 = sh * g->XKTS, kt1 = kt0 + g->XKTS;
            ct1 = ct1 < ct_n ? ct1 : ct_n;
            kt1 = kt1 < kt_n ? kt1 : kt_n;
            ct0 = ct0 < ct1 ? ct0 : ct1;
            kt0 = kt0 < kt1 ? kt0 : kt1;
            memset(zeros, 0, g->XL * sizeof *zeros);
            for (size_t ch = 0; ch < chunks && ct0 < ct1 && kt0 < kt1; ch++) {
                const size_t q0 = ch * g->XL, nl = g->NQ - q0 < g->XL ? g->NQ - q0 : g->XL;
                /* dout of the chunk's columns for this share's output channels, widened
                 * (TF32-rounded) row by row: arows [CTS * MR][L], contiguous across images. */
                for (size_t co = ct0 * MR; co < ct1 * MR && co < g->CO; co++)
                    for (size_t q = q0; q < q0 + nl;) {
                        const size_t n = q / g->OHW, p = q % g->OHW;
                        const size_t len = q0 + nl - q < g->OHW - p ? q0 + nl - q : g->OHW - p;
                        cpu_load(arows + (co - ct0 * MR) * g->XL + (q - q0), dout,
                                 (n * g->CO + co) * g->OHW + p, len, tf32_g);
                        q += len;
                    }
                /* col^T of the chunk: for each column, NR consecutive rows ck. */
                for (size_t l = 0, n = q0 / g->OHW, p = q0 % g->OHW, oy = p / g->OW, ox = p % g->OW;
                     !vec && l < nl; l++) { /* the columns' input offsets, along (n, oy, ox) */
                    cbase[l] = n * g->C * g->plane + oy * g->S * g->WP + ox * g->S;
                    if (++ox == g->OW && (ox = 0, ++oy == g->OH))
                        oy = 0, n++;
                }
                for (size_t kt = kt0; kt < kt1; kt++) {
                    size_t offck[NR];
                    for (int l = 0; l < NR; l++) {
                        const size_t ck = kt * NR + (size_t)l;
                        const size_t ci = ck / g->KK, r = ck % g->KK;
                        offck[l] = ck < g->CK ? ci * g->plane + (r / g->K) * g->WP + r % g->K : 0;
                    }
                    float *d = bpack + (kt - kt0) * g->XL * NR;
                    const int partial = (kt + 1) * NR > g->CK;
#if defined(__AVX512F__) && VF_LANES == 16
                    if (vec) {
                        pack_cols_t(d, xp, q0, nl, offck, partial ? g->CK - kt * NR : NR, g);
                        continue;
                    }
#endif
                    for (size_t l = 0; l < nl; l++) {
                        const float *src = xp + cbase[l];
                        float *dl = d + l * NR;
                        for (int i = 0; i < NR; i++)
                            dl[i] = src[offck[i]];
                        if (partial)
                            for (size_t i = g->CK - kt * NR; i < NR; i++)
                                dl[i] = 0.0f;
                    }
                }
                for (size_t kt = kt0; kt < kt1;) {
                    const int nt = kt + 1 < kt1 ? 2 : 1; /* two column tiles a pass */
                    for (size_t ct = ct0; ct < ct1; ct++) {
                        /* Each chunk's sums start afresh and are then added to the totals:
                         * chains of at most XL terms, not of the whole batch's columns. */
                        float tiles[2][MR * NR];
                        float *const tp[2] = { tiles[0], tiles[1] };
                        const float *const bp[2] = { bpack + (kt - kt0) * g->XL * NR,
                                                     bpack + (kt + 1 - kt0) * g->XL * NR };
                        for (int t = 0; t < nt; t++)
                            for (int i = 0; i < MR * NR; i++)
                                tiles[t][i] = -0.0f;
                        const float *a[MR];
                        for (int i = 0; i < MR; i++) {
                            const size_t co = ct * MR + (size_t)i;
                            a[i] = co < g->CO ? arows + (co - ct0 * MR) * g->XL : zeros;
                        }
                        micro_kernel_rows(nl, a, bp, tp, nt);
                        for (int t = 0; t < nt; t++) {
                            float *cb = acc_buf + ct * MR * g->CK16 + (kt + (size_t)t) * NR;
                            const float *tile = tiles[t];
                            for (int i = 0; i < MR; i++)
                                for (int l = 0; l < NR; l++)
                                    cb[i * g->CK16 + l] =
                                        ch ? cb[i * g->CK16 + l] + tile[i * NR + l]
                                           : tile[i * NR + l];
                        }
                    }
                    kt += (size_t)nt;
                }
            }
            /* This thread's part of dweight, rounded; zeros for an empty batch. */
            const size_t co_end = ct1 * MR < g->CO ? ct1 * MR : g->CO;
            const size_t ck0 = kt0 * NR, ck_end = kt1 * NR < g->CK ? kt1 * NR : g->CK;
            for (size_t co = ct0 * MR; co < co_end && ck0 < ck_end; co++) {
                float *sums = acc_buf + co * g->CK16 + ck0;
                if (chunks == 0)
                    memset(sums, 0, (ck_end - ck0) * sizeof *sums);
                cpu_store(dweight, co * g->CK + ck0, sums, ck_end - ck0, &wcounts);
                wrounded += ck_end - ck0;
            }
        } /* the shares */
        if (dbias)
            bias_gradient(c, dbias, dout, g, row);
        cpu_count(c, dweight, wrounded, &wcounts);
    }
}

/* ---- data gradient ---- */
/* d[2 i] += s[i], i < n, in vectors: s interleaved with zeros is added to d's 2n - 1 elements.
 * Adding +0 to the elements between changes none: they are sums that started at +0, which are
 * never -0 (x + y is -0 only when both are -0), and x + 0 == x for every other x. */
static inline void add_stride2(float *restrict d, const float *restrict s, size_t n)
{
    size_t i = 0;
    for (; i + VN < n; i += VN) { /* (touches d up to 2 i + 2 VN - 1 < 2 n - 1) */
        const vn sv = *(const vn *)(s + i), z = { 0 };
#if VN == 8
        const vn lo = __builtin_shufflevector(sv, z, 0, 8, 1, 8, 2, 8, 3, 8);
        const vn hi = __builtin_shufflevector(sv, z, 4, 8, 5, 8, 6, 8, 7, 8);
#else
        const vn lo = __builtin_shufflevector(sv, z, 0, 16, 1, 16, 2, 16, 3, 16, 4, 16, 5, 16, 6,
                                              16, 7, 16);
        const vn hi = __builtin_shufflevector(sv, z, 8, 16, 9, 16, 10, 16, 11, 16, 12, 16, 13,
                                              16, 14, 16, 15, 16);
#endif
        *(vn *)(d + 2 * i) += lo;
        *(vn *)(d + 2 * i + VN) += hi;
    }
    for (; i < n; i++)
        d[2 * i] += s[i];
}

#if defined(__AVX512F__) && VF_LANES == 16
/* The strided col2im of one image's cbn planes (dst: cbn x H x W, every element written) from
 * its dcol rows (row (cl, ky, kx) at dcol + ((cl * K + ky) * K + kx) * ld, OH x OW values),
 * stride 2, OW <= 16, W <= 32, K <= 8: each input row kept in two vectors while its taps (ky,
 * kx) are added in order, each tap's row spread to its lanes (2 ox + kx - P) by one masked
 * permute. Per pixel the same sums in the same order as adding the taps' rows into a zeroed
 * plane; a lane a tap does not reach adds +0, which changes no sum (a sum that starts at +0 is
 * never -0). */
static void col2im_stride2(float *restrict dst, const float *restrict dcol, size_t ld,
                           size_t cbn, const struct geo *g)
{
    __m512i idx[8][2];
    __mmask16 hit[8][2];
    const __mmask16 row = (__mmask16)((1u << g->OW) - 1u);
    for (size_t kx = 0; kx < g->K; kx++)
        for (int h = 0; h < 2; h++) {
            int32_t ix[16];
            unsigned m = 0;
            for (int l = 0; l < 16; l++) {
                const long x = 16 * h + l, t = x + (long)g->P - (long)kx; /* 2 ox */
                ix[l] = t >= 0 ? (int32_t)(t / 2) : 0;
                if (x < (long)g->W && t >= 0 && t % 2 == 0 && t / 2 < (long)g->OW)
                    m |= 1u << l;
            }
            idx[kx][h] = _mm512_loadu_si512(ix);
            hit[kx][h] = (__mmask16)m;
        }
    const int two = g->W > 16;
    const __mmask16 tail = (__mmask16)(two ? (1u << (g->W - 16)) - 1u : (1u << g->W) - 1u);
    for (size_t cl = 0; cl < cbn; cl++)
        for (size_t iy = 0; iy < g->H; iy++) {
            __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
            for (size_t ky = 0; ky < g->K; ky++) {
                const size_t t = iy + g->P; /* 2 oy + ky */
                if (t < ky || (t - ky) % 2 || (t - ky) / 2 >= g->OH)
                    continue;
                const float *src = dcol + (cl * g->K + ky) * g->K * ld + (t - ky) / 2 * g->OW;
                for (size_t kx = 0; kx < g->K; kx++, src += ld) {
                    const __m512 v = _mm512_maskz_loadu_ps(row, src);
                    acc0 = _mm512_add_ps(
                        acc0, _mm512_maskz_permutexvar_ps(hit[kx][0], idx[kx][0], v));
                    if (two)
                        acc1 = _mm512_add_ps(
                            acc1, _mm512_maskz_permutexvar_ps(hit[kx][1], idx[kx][1], v));
                }
            }
            float *d = dst + (cl * g->H + iy) * g->W;
            if (two) {
                _mm512_storeu_ps(d, acc0);
                _mm512_mask_storeu_ps(d + 16, tail, acc1);
            } else {
                _mm512_mask_storeu_ps(d, tail, acc0);
            }
        }
}
#endif

/* dinp = col2im(W^T x dout), per (group of images, block of input channels): each task owns
 * its part of dinp, and sums a pixel's taps in (ky, kx) order. */
static void backward_data(struct cpu_ctx *c, struct amp_tensor *dinp,
                          const struct amp_tensor *dout, const struct amp_tensor *weight,
                          const struct layout *lay, const struct geo *g, enum amp_math math)
{
    const int tf32_w = cpu_tf32(weight, math), tf32_g = cpu_tf32(dout, math);
    const size_t block_floats = g->CBT * MR * g->CO; /* W^T of one channel block, packed */
    const size_t tasks = g->NG * g->NCB;
    const double work = (double)g->NQ * g->CO * (g->CK + 1);
#pragma omp parallel num_threads(c->threads) if (work >= CPU_PARALLEL_MIN)
    {
        float *scratch = my_scratch(lay);
        float *bp = scratch;                              /* [CO][LG]: dout */
        float *dcol = bp + g->CO * g->LG;                 /* [CBT * MR][LG] */
        float *dxb = dcol + g->CBT * MR * g->LG;          /* [G][CB][H * W] */
        float *row = dxb + g->G * g->CB * g->H * g->W;
        const size_t HW = g->H * g->W;
        struct lowp_counts counts = { 0 };
        size_t rounded = 0;
        /* W^T packed per channel block: panel t of block b holds rows ck = b*CB*KK + t*MR + i,
         * for every co (the reduction). */
#pragma omp for schedule(static)
        for (size_t co = 0; co < g->CO; co++) {
            cpu_load(row, weight, co * g->CK, g->CK, tf32_w);
            for (size_t b = 0; b < g->NCB; b++) {
                const size_t ck0 = b * g->CB * g->KK;
                const size_t rows = (b + 1 < g->NCB ? g->CB : g->C - b * g->CB) * g->KK;
                float *blk = lay->shared + b * block_floats;
                for (size_t r = 0; r < g->CBT * MR; r++)
                    blk[(r / MR) * g->CO * MR + co * MR + r % MR] = r < rows ? row[ck0 + r] : 0.0f;
            }
        }
        size_t have_group = (size_t)-1;
#pragma omp for schedule(dynamic)
        for (size_t t = 0; t < tasks; t++) {
            const size_t grp = t / g->NCB, b = t % g->NCB;
            const size_t n0 = grp * g->G, ng = g->N - n0 < g->G ? g->N - n0 : g->G;
            const size_t cols = ng * g->OHW, npanel = up(cols, NR) / NR;
            const size_t ci0 = b * g->CB, cbn = g->C - ci0 < g->CB ? g->C - ci0 : g->CB;
            const size_t rows = cbn * g->KK, tiles = up(rows, MR) / MR;
            if (grp != have_group) { /* dout of the group's images: CO rows of LG columns */
                for (size_t co = 0; co < g->CO; co++) {
                    for (size_t nl = 0; nl < ng; nl++)
                        cpu_load(bp + co * g->LG + nl * g->OHW, dout,
                                 ((n0 + nl) * g->CO + co) * g->OHW, g->OHW, tf32_g);
                    for (size_t q = cols; q < npanel * NR; q++)
                        bp[co * g->LG + q] = 0.0f;
                }
                have_group = grp;
            }
            const float *blk = lay->shared + b * block_floats;
            for (size_t rt = 0; rt < tiles; rt++)
                for (size_t j = 0; j < npanel; j += NPMAX) { /* (panels side by side) */
                    const int np = (int)(npanel - j < NPMAX ? npanel - j : NPMAX);
                    micro_kernel_np(g->CO, blk + rt * g->CO * MR, bp + j * NR, g->LG,
                                    dcol + rt * MR * g->LG + j * NR, g->LG, 0, MR, np);
                }
            /* col2im: each tap (ci, ky, kx) in order adds its row into the image planes (dinp's
             * own memory when FP32), clipped to the taps that read the input, not the padding. */
            for (size_t nl = 0; nl < ng; nl++) {
                const size_t off = ((n0 + nl) * g->C + ci0) * HW;
                float *dst = dinp->dtype == AMP_F32 ? (float *)dinp->data + off
                                                    : dxb + nl * cbn * HW;
#if defined(__AVX512F__) && VF_LANES == 16
                if (g->S == 2 && g->OW <= 16 && g->W <= 32 && g->K <= 8) {
                    col2im_stride2(dst, dcol + nl * g->OHW, g->LG, cbn, g);
                    if (dinp->dtype != AMP_F32)
                        cpu_store(dinp, off, dst, cbn * HW, &counts);
                    rounded += cbn * HW;
                    continue;
                }
#endif
                memset(dst, 0, cbn * HW * sizeof *dst);
                for (size_t cl = 0; cl < cbn; cl++)
                    for (size_t ky = 0; ky < g->K; ky++)
                        for (size_t kx = 0; kx < g->K; kx++) {
                            /* ox from lo to hi: 0 <= ox * S + kx - P < W */
                            const size_t lo = g->P > kx ? (g->P - kx + g->S - 1) / g->S : 0;
                            size_t hi = g->W + g->P > kx ? (g->W + g->P - kx - 1) / g->S + 1 : 0;
                            hi = hi < g->OW ? hi : g->OW;
                            if (lo >= hi)
                                continue;
                            const float *src = dcol + ((cl * g->K + ky) * g->K + kx) * g->LG +
                                               nl * g->OHW;
                            for (size_t oy = 0; oy < g->OH; oy++) {
                                const size_t iyp = oy * g->S + ky; /* iy + P */
                                if (iyp < g->P || iyp - g->P >= g->H)
                                    continue;
                                float *d = dst + cl * HW + (iyp - g->P) * g->W +
                                           (lo * g->S + kx - g->P);
                                const float *sr = src + oy * g->OW + lo;
                                const size_t len = hi - lo;
                                if (g->S == 1)
                                    for (size_t i = 0; i < len; i++)
                                        d[i] += sr[i];
                                else if (g->S == 2)
                                    add_stride2(d, sr, len);
                                else
                                    for (size_t i = 0; i < len; i++)
                                        d[i * g->S] += sr[i];
                            }
                        }
                if (dinp->dtype != AMP_F32)
                    cpu_store(dinp, off, dst, cbn * HW, &counts);
                rounded += cbn * HW;
            }
        }
        cpu_count(c, dinp, rounded, &counts);
    }
}

void cpu_conv_general_backward(struct cpu_ctx *c, struct amp_tensor *dweight,
                               struct amp_tensor *dbias, struct amp_tensor *dinp,
                               const struct amp_tensor *dout, const struct amp_tensor *inp,
                               const struct amp_tensor *weight, struct amp_tensor *workspace,
                               const struct conv_shape *s, enum amp_math math)
{
    const struct geo g = geo_of(s, c->threads);
    const struct layout lay = layout_of(workspace, &g);
    if (dweight && g.XCOLS)
        backward_filter_cols(c, dweight, dbias, dout, inp, &lay, &g, math);
    else if (dweight)
        backward_filter(c, dweight, dbias, dout, inp, &lay, &g, math);
    struct conv_shape t;
    if (dinp && flipped_shape(s, &t))
        forward_gemm(c, dinp, dout, weight, NULL, workspace, &t, math, 1, 0);
    else if (dinp)
        backward_data(c, dinp, dout, weight, &lay, &g, math);
}
