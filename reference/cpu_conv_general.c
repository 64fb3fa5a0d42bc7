/* CPU reference: the general 2-D convolution (NCHW, any kernel size, stride, padding and channel
 * count), forward and backward, as im2col and a register-tiled FP32 GEMM; cpu_conv.c sends it
 * every geometry but 3x3 / stride 1 / padding 1, which keeps its own path.
 *
 * The input is widened to FP32 (rounded to TF32 in TF32 mode) and zero-padded once into the
 * workspace, so that an im2col column is a gather without bounds checks. One GEMM micro-kernel
 * serves all three products: a MR x VF_LANES tile of FP32 accumulators, each output a single
 * chain of fused multiply-adds over the reduction index in increasing order, whatever the
 * blocking around it (a tile is stored and reloaded between blocks, which changes no bit):
 *   forward      out[co, q]  = sum_ck W[co, ck] * col[ck, q]     (q: the batch's output pixels)
 *   data grad.   dcol[ck, q] = sum_co W[co, ck] * dout[co, q],  then col2im (a fixed order)
 *   filter grad. dW[co, ck]  = sum_q dout[co, q] * col[ck, q]   (q over the whole batch, in order)
 * OpenMP splits independent outputs only (no cross-thread reductions), and every block size is
 * a function of the shape alone, so results do not depend on the thread count. */
#include <string.h>

#include "cpu_ops.h"
#include "simd.h"

enum { MR = 6, NR = VF_LANES };

/* The micro-kernel's vectors have the machine's width (GCC keeps 64-byte vectors in memory where
 * the registers are 32 bytes wide): NV of them make one NR-wide row of the tile. */
#if defined(__AVX512F__)
#define VN 16
#else
#define VN 8
#endif
enum { NV = NR / VN };
typedef float vn __attribute__((vector_size(VN * sizeof(float)), aligned(4)));

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
    size_t L;             /* filter grad.: columns per chunk */
};

static struct geo geo_of(const struct conv_shape *s)
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
    /* Forward: a task's packed columns, CK x NC, within about 256 KB (the L2 cache). */
    g.NC = clampz((65536 / (g.CK ? g.CK : 1)) / NR * NR, NR, 512);
    /* Data gradient: groups of images of at least 128 columns, and channel blocks whose
     * columns (CB * KK rows) stay within 64 Ki floats. */
    g.G = clampz((128 + g.OHW - 1) / g.OHW, 1, g.N ? g.N : 1);
    g.LG = up(g.G * g.OHW, NR);
    g.CB = clampz(65536 / (g.KK * g.LG), 1, g.C ? g.C : 1);
    g.NG = (g.N + g.G - 1) / g.G;
    g.NCB = (g.C + g.CB - 1) / g.CB;
    g.CBT = up(g.CB * g.KK, MR) / MR;
    /* Filter gradient: a chunk's packed operands, (CO6 + CK16) x L, within about 1 MB. */
    g.L = clampz((262144 / (g.CO6 + g.CK16)) / NR * NR, 64, 4096);
    if (g.L > up(g.NQ, NR))
        g.L = g.NQ ? up(g.NQ, NR) : NR;
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
    const size_t wgrad = (g->CO6 + g->CK16) * g->L + g->CO6 * g->CK16;
    size_t m = fwd > dgrad ? fwd : dgrad;
    return m > wgrad ? m : wgrad;
}

static size_t thread_floats(const struct geo *g)
{
    const size_t row = g->OHW > g->CK ? g->OHW : g->CK; /* one widened row */
    const size_t fwd = g->CK * g->NC;
    const size_t dgrad = g->CO * g->LG + g->CBT * MR * g->LG + g->G * g->CB * g->plane;
    return (fwd > dgrad ? fwd : dgrad) + row + NR;
}

size_t cpu_conv_general_workspace(const struct conv_shape *s, int threads)
{
    const struct geo g = geo_of(s);
    const size_t floats = g.N * g.C * g.plane + shared_floats(&g) +
                          (size_t)(threads > 0 ? threads : 1) * thread_floats(&g);
    return floats * sizeof(float);
}

static struct layout layout_of(const struct amp_tensor *ws, const struct geo *g)
{
    struct layout l = { .xpad = ws->data };
    l.shared = l.xpad + g->N * g->C * g->plane;
    l.thread = l.shared + shared_floats(g);
    l.per_thread = thread_floats(g);
    return l;
}

static float *my_scratch(const struct layout *l)
{
    return l->thread + (size_t)omp_get_thread_num() * l->per_thread;
}

/* ---- the micro-kernel ---- */
/* acc[i][0..NR) += sum_k a[k * MR + i] * b[k * NR + 0..NR), k = 0, 1, ..., K - 1 in order
 * (acc: MR rows of NR floats, row-major). */
static __attribute__((noinline)) void micro_kernel(size_t K, const float *restrict a,
                                                   const float *restrict b, float *restrict acc)
{
    vn c[MR][NV];
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            c[i][v] = *(const vn *)(acc + i * NR + v * VN);
#pragma GCC unroll 2
    for (size_t k = 0; k < K; k++) {
        vn bv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            bv[v] = *(const vn *)(b + k * NR + v * VN);
        const float *ak = a + k * MR;
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            const float ai = ak[i];
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                c[i][v] += ai * bv[v];
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            *(vn *)(acc + i * NR + v * VN) = c[i][v];
}

/* Accumulators start at -0, the identity of IEEE addition (-0 + x == x for every x, +0 and -0
 * included): a sum is then exactly the chain of its terms, e.g. -0 for a sum of -0 products. */
static inline void acc_zero(float acc[MR * NR])
{
    for (int i = 0; i < MR * NR; i++)
        acc[i] = -0.0f;
}

/* ---- the padded input ---- */
/* xpad[n, c] = inp[n, c] widened (TF32-rounded when tf32) in a zero border of P. Inside an
 * omp parallel region (a worksharing loop). */
static void build_xpad(float *xpad, const struct amp_tensor *inp, const struct geo *g, int tf32)
{
#pragma omp for schedule(static)
    for (size_t i = 0; i < g->N * g->C; i++) {
        float *dst = xpad + i * g->plane;
        if (g->P)
            memset(dst, 0, g->P * g->WP * sizeof *dst);
        for (size_t y = 0; y < g->H; y++) {
            float *row = dst + (y + g->P) * g->WP;
            for (size_t x = 0; x < g->P; x++)
                row[x] = row[g->P + g->W + x] = 0.0f;
            cpu_load(row + g->P, inp, (i * g->H + y) * g->W, g->W, tf32);
        }
        if (g->P)
            memset(dst + (g->P + g->H) * g->WP, 0, g->P * g->WP * sizeof *dst);
    }
}

/* Offset in xpad of the top-left tap of batch column q. */
static inline size_t col_base(const struct geo *g, size_t q)
{
    const size_t n = q / g->OHW, p = q % g->OHW;
    return n * g->C * g->plane + (p / g->OW) * g->S * g->WP + (p % g->OW) * g->S;
}

/* ---- forward ---- */
/* The packed columns of batch columns [q0, q0 + nq): panels of NR columns, each CK x NR
 * (row ck = (ci, ky, kx)); columns past nq are zero. */
static void pack_cols(float *restrict dst, const float *restrict xp, size_t q0, size_t nq,
                      const struct geo *g)
{
    size_t base[512];
    const size_t npanel = up(nq, NR) / NR;
    for (size_t l = 0; l < npanel * NR; l++)
        base[l] = l < nq ? col_base(g, q0 + l) : 0;
    for (size_t j = 0; j < npanel; j++) {
        float *pj = dst + j * g->CK * NR;
        const size_t *bj = base + j * NR;
        float *d = pj;
        for (size_t ci = 0; ci < g->C; ci++)
            for (size_t ky = 0; ky < g->K; ky++)
                for (size_t kx = 0; kx < g->K; kx++, d += NR) {
                    const float *src = xp + ci * g->plane + ky * g->WP + kx;
                    for (int l = 0; l < NR; l++)
                        d[l] = src[bj[l]];
                }
        const size_t valid = nq - j * NR;
        if (valid < NR)
            for (size_t ck = 0; ck < g->CK; ck++)
                memset(pj + ck * NR + valid, 0, (NR - valid) * sizeof *pj);
    }
}

/* Weights [CO, CK] packed as MR-row panels [CO6 / MR][CK][MR] (rows past CO zero). A
 * worksharing loop. */
static void pack_weights(float *restrict dst, const struct amp_tensor *weight, int tf32,
                         float *row, const struct geo *g)
{
#pragma omp for schedule(static)
    for (size_t co = 0; co < g->CO6; co++) {
        float *panel = dst + (co / MR) * g->CK * MR + co % MR;
        if (co < g->CO)
            cpu_load(row, weight, co * g->CK, g->CK, tf32);
        for (size_t k = 0; k < g->CK; k++)
            panel[k * MR] = co < g->CO ? row[k] : 0.0f;
    }
}

void cpu_conv_general_forward(struct cpu_ctx *c, struct amp_tensor *out,
                              const struct amp_tensor *inp, const struct amp_tensor *weight,
                              const struct amp_tensor *bias, struct amp_tensor *workspace,
                              const struct conv_shape *s, enum amp_math math)
{
    const struct geo g = geo_of(s);
    const struct layout lay = layout_of(workspace, &g);
    const int tf32_x = cpu_tf32(inp, math), tf32_w = cpu_tf32(weight, math);
    const size_t tasks = (g.NQ + g.NC - 1) / g.NC;
    const double work = (double)g.NQ * g.CO * (g.CK + 1);
#pragma omp parallel num_threads(c->threads) if (work >= CPU_PARALLEL_MIN)
    {
        float *scratch = my_scratch(&lay);
        float *cols = scratch, *row = scratch + g.CK * g.NC;
        struct lowp_counts counts = { 0 };
        size_t rounded = 0;
        build_xpad(lay.xpad, inp, &g, tf32_x);
        pack_weights(lay.shared, weight, tf32_w, row, &g);
        /* (the worksharing loops end in barriers: xpad and the weights are complete) */
#pragma omp for schedule(static)
        for (size_t t = 0; t < tasks; t++) {
            const size_t q0 = t * g.NC, nq = g.NQ - q0 < g.NC ? g.NQ - q0 : g.NC;
            const size_t npanel = up(nq, NR) / NR;
            pack_cols(cols, lay.xpad, q0, nq, &g);
            for (size_t ct = 0; ct < g.CO6 / MR; ct++) {
                const float *a = lay.shared + ct * g.CK * MR;
                for (size_t j = 0; j < npanel; j++) {
                    float tile[MR * NR];
                    acc_zero(tile);
                    micro_kernel(g.CK, a, cols + j * g.CK * NR, tile);
                    const size_t qa = q0 + j * NR, qe = qa + (nq - j * NR < NR ? nq - j * NR : NR);
                    for (size_t i = 0; i < MR && ct * MR + i < g.CO; i++) {
                        const size_t co = ct * MR + i;
                        float *v = tile + i * NR;
                        if (bias) { /* the sum, then the bias: one rounding to out's dtype */
                            const float b = cpu_get(bias, co);
                            for (int l = 0; l < NR; l++)
                                v[l] += b;
                        }
                        for (size_t q = qa; q < qe;) { /* one piece per image */
                            const size_t n = q / g.OHW, p = q % g.OHW;
                            const size_t len = qe - q < g.OHW - p ? qe - q : g.OHW - p;
                            const size_t off = (n * g.CO + co) * g.OHW + p;
                            if (out->dtype == AMP_F32)
                                memcpy((float *)out->data + off, v + (q - qa), len * sizeof *v);
                            else
                                cpu_store(out, off, v + (q - qa), len, &counts);
                            rounded += len;
                            q += len;
                        }
                    }
                }
            }
        }
        cpu_count(c, out, rounded, &counts);
    }
}

/* ---- filter gradient ---- */
/* dweight = sum over the batch's columns (in order) of dout x col^T; dbias = sum of dout. */
static void backward_filter(struct cpu_ctx *c, struct amp_tensor *dweight,
                            struct amp_tensor *dbias, const struct amp_tensor *dout,
                            const struct amp_tensor *inp, const struct layout *lay,
                            const struct geo *g, enum amp_math math)
{
    const int tf32_x = cpu_tf32(inp, math), tf32_g = cpu_tf32(dout, math);
    float *apack = lay->shared;                     /* [CO6 / MR][L][MR]: dout^T */
    float *bpack = apack + g->CO6 * g->L;           /* [CK16 / NR][L][NR]: col^T */
    float *acc_buf = bpack + g->CK16 * g->L;        /* [CO6][CK16] FP32 sums */
    const size_t ct_n = g->CO6 / MR, kt_n = g->CK16 / NR;
    const size_t chunks = (g->NQ + g->L - 1) / g->L;
    const double work = (double)g->NQ * g->CO * (g->CK + 1);
#pragma omp parallel num_threads(c->threads) if (work >= CPU_PARALLEL_MIN)
    {
        float *row = my_scratch(lay);
        struct lowp_counts wcounts = { 0 }, bcounts = { 0 };
        size_t wrounded = 0, brounded = 0;
        build_xpad(lay->xpad, inp, g, tf32_x);
        for (size_t ch = 0; ch < chunks; ch++) {
            const size_t q0 = ch * g->L, nl = g->NQ - q0 < g->L ? g->NQ - q0 : g->L;
            /* dout^T of the chunk's columns, MR output channels interleaved. */
#pragma omp for schedule(static) nowait
            for (size_t co = 0; co < g->CO6; co++) {
                float *d = apack + (co / MR) * g->L * MR + co % MR;
                if (co >= g->CO) {
                    for (size_t l = 0; l < nl; l++)
                        d[l * MR] = 0.0f;
                    continue;
                }
                for (size_t q = q0; q < q0 + nl;) {
                    const size_t n = q / g->OHW, p = q % g->OHW;
                    const size_t len = q0 + nl - q < g->OHW - p ? q0 + nl - q : g->OHW - p;
                    cpu_load(row, dout, (n * g->CO + co) * g->OHW + p, len, tf32_g);
                    float *dq = d + (q - q0) * MR;
                    for (size_t l = 0; l < len; l++)
                        dq[l * MR] = row[l];
                    q += len;
                }
            }
            /* col^T of the chunk: for each column, NR consecutive rows ck. */
#pragma omp for schedule(static)
            for (size_t kt = 0; kt < kt_n; kt++) {
                size_t offck[NR];
                for (int l = 0; l < NR; l++) {
                    const size_t ck = kt * NR + (size_t)l;
                    const size_t ci = ck / g->KK, r = ck % g->KK;
                    offck[l] = ck < g->CK ? ci * g->plane + (r / g->K) * g->WP + r % g->K : 0;
                }
                float *d = bpack + kt * g->L * NR;
                const int partial = (kt + 1) * NR > g->CK;
                for (size_t l = 0; l < nl; l++) {
                    const float *src = lay->xpad + col_base(g, q0 + l);
                    float *dl = d + l * NR;
                    for (int i = 0; i < NR; i++)
                        dl[i] = src[offck[i]];
                    if (partial)
                        for (size_t i = g->CK - kt * NR; i < NR; i++)
                            dl[i] = 0.0f;
                }
            }
            /* (barrier: both packs complete) */
#pragma omp for collapse(2) schedule(static)
            for (size_t kt = 0; kt < kt_n; kt++)
                for (size_t ct = 0; ct < ct_n; ct++) {
                    float tile[MR * NR];
                    float *cbase = acc_buf + ct * MR * g->CK16 + kt * NR;
                    if (ch == 0)
                        acc_zero(tile);
                    else
                        for (int i = 0; i < MR; i++)
                            memcpy(tile + i * NR, cbase + i * g->CK16, NR * sizeof *tile);
                    micro_kernel(nl, apack + ct * g->L * MR, bpack + kt * g->L * NR, tile);
                    for (int i = 0; i < MR; i++)
                        memcpy(cbase + i * g->CK16, tile + i * NR, NR * sizeof *tile);
                }
        }
        if (chunks == 0) { /* an empty batch: zero gradients */
#pragma omp for schedule(static)
            for (size_t i = 0; i < g->CO6 * g->CK16; i++)
                acc_buf[i] = 0.0f;
        }
#pragma omp for schedule(static)
        for (size_t co = 0; co < g->CO; co++) {
            cpu_store(dweight, co * g->CK, acc_buf + co * g->CK16, g->CK, &wcounts);
            wrounded += g->CK;
        }
        /* The bias gradient: a plain FP32 reduction of dout (never TF32-rounded), in vectors,
         * as the 3x3 path sums it. */
        if (dbias) {
#pragma omp for schedule(static)
            for (size_t co = 0; co < g->CO; co++) {
                vf acc = { 0 };
                float tail = 0.0f;
                for (size_t n = 0; n < g->N; n++) {
                    const size_t off = (n * g->CO + co) * g->OHW;
                    const float *gn = (const float *)dout->data + off;
                    if (dout->dtype != AMP_F32) {
                        cpu_load(row, dout, off, g->OHW, 0);
                        gn = row;
                    }
                    size_t i = 0;
                    for (; i + VF_LANES <= g->OHW; i += VF_LANES)
                        acc += vf_load(gn + i);
                    for (; i < g->OHW; i++)
                        tail += gn[i];
                }
                cpu_set(dbias, co, vf_sum(acc) + tail, &bcounts);
                brounded++;
            }
        }
        cpu_count(c, dweight, wrounded, &wcounts);
        if (dbias)
            cpu_count(c, dbias, brounded, &bcounts);
    }
}

/* ---- data gradient ---- */
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
        float *bp = scratch;                              /* [LG / NR][CO][NR]: dout */
        float *dcol = bp + g->CO * g->LG;                 /* [CBT * MR][LG] */
        float *dxp = dcol + g->CBT * MR * g->LG;          /* [G][CB] padded planes */
        float *row = dxp + g->G * g->CB * g->plane;
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
#pragma omp for schedule(static)
        for (size_t t = 0; t < tasks; t++) {
            const size_t grp = t / g->NCB, b = t % g->NCB;
            const size_t n0 = grp * g->G, ng = g->N - n0 < g->G ? g->N - n0 : g->G;
            const size_t cols = ng * g->OHW, npanel = up(cols, NR) / NR;
            const size_t ci0 = b * g->CB, cbn = g->C - ci0 < g->CB ? g->C - ci0 : g->CB;
            const size_t rows = cbn * g->KK, tiles = up(rows, MR) / MR;
            if (grp != have_group) { /* dout of the group's images as NR-column panels */
                for (size_t nl = 0; nl < ng; nl++)
                    for (size_t co = 0; co < g->CO; co++) {
                        cpu_load(row, dout, ((n0 + nl) * g->CO + co) * g->OHW, g->OHW, tf32_g);
                        for (size_t p = 0; p < g->OHW; p++) {
                            const size_t q = nl * g->OHW + p;
                            bp[(q / NR) * g->CO * NR + co * NR + q % NR] = row[p];
                        }
                    }
                for (size_t q = cols; q < npanel * NR; q++)
                    for (size_t co = 0; co < g->CO; co++)
                        bp[(q / NR) * g->CO * NR + co * NR + q % NR] = 0.0f;
                have_group = grp;
            }
            const float *blk = lay->shared + b * block_floats;
            for (size_t rt = 0; rt < tiles; rt++)
                for (size_t j = 0; j < npanel; j++) {
                    float tile[MR * NR];
                    acc_zero(tile);
                    micro_kernel(g->CO, blk + rt * g->CO * MR, bp + j * g->CO * NR, tile);
                    for (int i = 0; i < MR; i++)
                        memcpy(dcol + (rt * MR + (size_t)i) * g->LG + j * NR, tile + i * NR,
                               NR * sizeof *tile);
                }
            /* col2im: each tap (ci, ky, kx) in order adds its row into the padded planes. */
            memset(dxp, 0, ng * cbn * g->plane * sizeof *dxp);
            for (size_t cl = 0; cl < cbn; cl++)
                for (size_t ky = 0; ky < g->K; ky++)
                    for (size_t kx = 0; kx < g->K; kx++) {
                        const float *src = dcol + ((cl * g->K + ky) * g->K + kx) * g->LG;
                        for (size_t nl = 0; nl < ng; nl++) {
                            float *dst = dxp + (nl * cbn + cl) * g->plane + ky * g->WP + kx;
                            const float *sn = src + nl * g->OHW;
                            for (size_t oy = 0; oy < g->OH; oy++) {
                                float *d = dst + oy * g->S * g->WP;
                                const float *sr = sn + oy * g->OW;
                                if (g->S == 1)
                                    for (size_t ox = 0; ox < g->OW; ox++)
                                        d[ox] += sr[ox];
                                else
                                    for (size_t ox = 0; ox < g->OW; ox++)
                                        d[ox * g->S] += sr[ox];
                            }
                        }
                    }
            for (size_t nl = 0; nl < ng; nl++)
                for (size_t cl = 0; cl < cbn; cl++) {
                    const float *pl = dxp + (nl * cbn + cl) * g->plane;
                    const size_t off = ((n0 + nl) * g->C + ci0 + cl) * g->H * g->W;
                    for (size_t y = 0; y < g->H; y++)
                        cpu_store(dinp, off + y * g->W, pl + (y + g->P) * g->WP + g->P, g->W,
                                  &counts);
                    rounded += g->H * g->W;
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
    const struct geo g = geo_of(s);
    const struct layout lay = layout_of(workspace, &g);
    backward_filter(c, dweight, dbias, dout, inp, &lay, &g, math);
    if (dinp)
        backward_data(c, dinp, dout, weight, &lay, &g, math);
}
