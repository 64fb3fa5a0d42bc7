/* CPU reference: batch normalization over [n, c, hw] per channel (PyTorch semantics; see
 * struct bn_state in backend.h). Every tensor is read in its own dtype and every result rounded
 * once to its tensor's dtype (counted). A channel's sums are FP32 in a fixed order: each image's
 * plane summed in vector lanes (simd.h's vf_sum of the lanes, then the tail in index order), the
 * planes' sums added in image order; a channel has one owner thread, so the results do not depend
 * on the thread count. */
#include <math.h>
#include <string.h>

#include "cpu_ops.h"
#include "simd.h"

/* Elements of a plane handled per piece: a multiple of the vector width, so that a plane's lane
 * sums do not depend on the piece size. */
enum { PIECE = 4096 };

/* Running sums over one plane, in pieces: lanes, then the last hw % VF_LANES elements. */
struct plane_sum {
    vf lanes;
    float tail;
};

static inline void psum_add(struct plane_sum *s, const float *v, size_t len)
{
    vn acc[VF_LANES / VN];
    float lanes[VF_LANES];
    vf_store(lanes, s->lanes);
    for (int j = 0; j < VF_LANES / VN; j++)
        acc[j] = *(const vn *)(lanes + j * VN);
    size_t i = 0;
    for (; i + VF_LANES <= len; i += VF_LANES)
        for (int j = 0; j < VF_LANES / VN; j++)
            acc[j] += *(const vn *)(v + i + j * VN);
    for (int j = 0; j < VF_LANES / VN; j++)
        *(vn *)(lanes + j * VN) = acc[j];
    s->lanes = vf_load(lanes);
    for (; i < len; i++) /* only in the plane's last piece (pieces are multiples of 16) */
        s->tail += v[i];
}

static inline float psum_total(const struct plane_sum *s)
{
    return vf_sum(s->lanes) + s->tail;
}

/* FP32 planes only: the channel's sum over images (in order) of each plane's total as
 * psum_add and psum_total form it, of x (kind PS_X), (x - m)^2 (PS_SQ) or, with a second
 * stream g, of g and of g * ((x - m) * k) together (PS_GX: *tot2 gets the latter). Four planes
 * at a time, so that their lane chains overlap; each element's value is rounded on its own
 * before it is added (the asm barrier: no fused multiply-add, as when it went through memory). */
enum ps_kind { PS_X, PS_SQ, PS_GX };
enum { PS_PLANES = 4 };

#if defined(__AVX__) /* (a vn fits a vector register) */
#define PS_MATERIALIZE(v) __asm__("" : "+x"(v))
#else
#define PS_MATERIALIZE(v) __asm__("" : "+m"(v))
#endif

static inline __attribute__((always_inline)) float
chan_sums(const float *x0, const float *g0, size_t stride, uint32_t n, size_t hw, float m,
          float k, float *tot2, const enum ps_kind kind)
{
    float total = 0.0f, total2 = 0.0f;
    const size_t hv = hw - hw % VF_LANES;
    for (uint32_t s0 = 0; s0 < n; s0 += PS_PLANES) {
        const uint32_t np = n - s0 < PS_PLANES ? n - s0 : PS_PLANES;
        const float *x[PS_PLANES], *g[PS_PLANES];
        for (uint32_t p = 0; p < PS_PLANES; p++) { /* (planes past n: plane s0 again, dropped) */
            x[p] = x0 + (size_t)(s0 + (p < np ? p : 0)) * stride;
            g[p] = kind == PS_GX ? g0 + (size_t)(s0 + (p < np ? p : 0)) * stride : x[p];
        }
        vn acc[PS_PLANES][VF_LANES / VN] = { { { 0 } } }, acc2[PS_PLANES][VF_LANES / VN] = { { { 0 } } };
        float tail[PS_PLANES] = { 0 }, tail2[PS_PLANES] = { 0 };
        const vn mv = (vn){ 0 } + m, kv = (vn){ 0 } + k;
        for (size_t i = 0; i < hv; i += VF_LANES)
#pragma GCC unroll 4
            for (int p = 0; p < PS_PLANES; p++)
#pragma GCC unroll 2
                for (int h = 0; h < VF_LANES / VN; h++) {
                    const vn xv = *(const vn *)(x[p] + i + h * VN);
                    if (kind == PS_X) {
                        acc[p][h] += xv;
                    } else if (kind == PS_SQ) {
                        const vn d = xv - mv;
                        vn sq = d * d;
                        PS_MATERIALIZE(sq);
                        acc[p][h] += sq;
                    } else {
                        const vn gv = *(const vn *)(g[p] + i + h * VN);
                        vn t = gv * ((xv - mv) * kv);
                        PS_MATERIALIZE(t);
                        acc[p][h] += gv;
                        acc2[p][h] += t;
                    }
                }
        for (int p = 0; p < PS_PLANES; p++)
            for (size_t i = hv; i < hw; i++) { /* the tail, in order */
                if (kind == PS_X) {
                    tail[p] += x[p][i];
                } else if (kind == PS_SQ) {
                    const float d = x[p][i] - m;
                    float sq = d * d;
                    PS_MATERIALIZE(sq);
                    tail[p] += sq;
                } else {
                    float t = g[p][i] * ((x[p][i] - m) * k);
                    PS_MATERIALIZE(t);
                    tail[p] += g[p][i];
                    tail2[p] += t;
                }
            }
        for (uint32_t p = 0; p < np; p++) {
            float lanes[VF_LANES];
            for (int h = 0; h < VF_LANES / VN; h++)
                *(vn *)(lanes + h * VN) = acc[p][h];
            total += vf_sum(vf_load(lanes)) + tail[p];
            if (kind == PS_GX) {
                for (int h = 0; h < VF_LANES / VN; h++)
                    *(vn *)(lanes + h * VN) = acc2[p][h];
                total2 += vf_sum(vf_load(lanes)) + tail2[p];
            }
        }
    }
    if (tot2)
        *tot2 = total2;
    return total;
}

/* t[off .. off+len) as FP32: t's memory when FP32, else widened into buf. */
static inline const float *piece(const struct amp_tensor *t, size_t off, size_t len, float *buf)
{
    if (t->dtype == AMP_F32)
        return (const float *)t->data + off;
    cpu_load(buf, t, off, len, 0);
    return buf;
}

static inline float get_or(const struct amp_tensor *t, size_t i, float dflt)
{
    return t ? cpu_get(t, i) : dflt;
}

/* A rounded per-channel store; returns the stored value read back (or v when t is NULL). */
static inline float set_read(struct amp_tensor *t, size_t i, float v, struct lowp_counts *acc,
                             size_t *rounded)
{
    if (!t)
        return v;
    cpu_set(t, i, v, acc);
    *rounded += 1;
    return cpu_get(t, i);
}

/* The per-channel tensors' counts: one counter set per tensor. */
enum { T_SMEAN, T_SINV, T_RMEAN, T_RVAR, T_NSTATS };

/* From a channel's sums: the saved batch statistics (rounded; the stored values returned, the
 * inverse standard deviation in *invstd) and the running statistics' update. */
static float bn_stats(struct bn_state *bn, uint32_t ch, float total, float total2, float Nf,
                      size_t N, float mom, float eps, float *invstd,
                      struct lowp_counts scounts[T_NSTATS], size_t srounded[T_NSTATS])
{
    const float bmean = total / Nf;
    const float bvar = total2 / Nf; /* biased */
    const float binv = 1.0f / sqrtf(bvar + eps);
    /* Saved rounded, and the stored values normalize. */
    const float mean = set_read(bn->save_mean, ch, bmean, &scounts[T_SMEAN], &srounded[T_SMEAN]);
    *invstd = set_read(bn->save_invstd, ch, binv, &scounts[T_SINV], &srounded[T_SINV]);
    /* The running statistics, the variance unbiased: sum / (N - 1) = var N/(N-1). */
    if (bn->running_mean) {
        const float rm = cpu_get(bn->running_mean, ch);
        set_read(bn->running_mean, ch, (1.0f - mom) * rm + mom * bmean,
                 &scounts[T_RMEAN], &srounded[T_RMEAN]);
    }
    if (bn->running_var) {
        const float rv = cpu_get(bn->running_var, ch);
        const float unbiased = total2 / (float)(N - 1);
        set_read(bn->running_var, ch, (1.0f - mom) * rv + mom * unbiased,
                 &scounts[T_RVAR], &srounded[T_RVAR]);
    }
    return mean;
}

void cpu_batchnorm_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp,
                           struct bn_state *bn, uint32_t n, uint32_t c, uint32_t hw, int train)
{
    struct cpu_ctx *cc = ctx;
    const size_t N = (size_t)n * hw, work = N * c;
    const float Nf = (float)N, mom = bn->momentum, eps = bn->eps;
    struct amp_tensor *stat_t[T_NSTATS] = { bn->save_mean, bn->save_invstd, bn->running_mean,
                                            bn->running_var };
#pragma omp parallel num_threads(cc->threads) if (work >= CPU_PARALLEL_MIN)
    {
        float xb[PIECE], yb[PIECE];
        struct lowp_counts counts = { 0 }, scounts[T_NSTATS] = { { 0 } };
        size_t srounded[T_NSTATS] = { 0 };
#pragma omp for schedule(static)
        for (uint32_t ch = 0; ch < c; ch++) {
            float mean, invstd;
            if (train && inp->dtype == AMP_F32) {
                const float *x0 = (const float *)inp->data + (size_t)ch * hw;
                const float total = chan_sums(x0, NULL, (size_t)c * hw, n, hw, 0.0f, 0.0f, NULL,
                                              PS_X);
                const float bmean = total / Nf;
                const float total2 = chan_sums(x0, NULL, (size_t)c * hw, n, hw, bmean, 0.0f,
                                               NULL, PS_SQ);
                mean = bn_stats(bn, ch, total, total2, Nf, N, mom, eps, &invstd, scounts,
                                srounded);
            } else if (train) {
                float total = 0.0f;
                for (uint32_t s = 0; s < n; s++) {
                    struct plane_sum ps = { { 0 }, 0.0f };
                    const size_t base = ((size_t)s * c + ch) * hw;
                    for (size_t i0 = 0; i0 < hw; i0 += PIECE) {
                        const size_t len = hw - i0 < PIECE ? hw - i0 : PIECE;
                        psum_add(&ps, piece(inp, base + i0, len, xb), len);
                    }
                    total += psum_total(&ps);
                }
                const float bmean = total / Nf;
                float total2 = 0.0f;
                for (uint32_t s = 0; s < n; s++) {
                    struct plane_sum ps = { { 0 }, 0.0f };
                    const size_t base = ((size_t)s * c + ch) * hw;
                    for (size_t i0 = 0; i0 < hw; i0 += PIECE) {
                        const size_t len = hw - i0 < PIECE ? hw - i0 : PIECE;
                        const float *x = piece(inp, base + i0, len, xb);
                        for (size_t i = 0; i < len; i++) {
                            const float d = x[i] - bmean;
                            yb[i] = d * d;
                        }
                        psum_add(&ps, yb, len);
                    }
                    total2 += psum_total(&ps);
                }
                mean = bn_stats(bn, ch, total, total2, Nf, N, mom, eps, &invstd, scounts,
                                srounded);
            } else {
                mean = cpu_get(bn->running_mean, ch);
                invstd = 1.0f / sqrtf(cpu_get(bn->running_var, ch) + eps);
            }
            const float gamma = get_or(bn->gamma, ch, 1.0f), beta = get_or(bn->beta, ch, 0.0f);
            for (uint32_t s = 0; s < n; s++) {
                const size_t base = ((size_t)s * c + ch) * hw;
                for (size_t i0 = 0; i0 < hw; i0 += PIECE) {
                    const size_t len = hw - i0 < PIECE ? hw - i0 : PIECE;
                    const float *x = piece(inp, base + i0, len, xb);
                    float *y = out->dtype == AMP_F32 ? (float *)out->data + base + i0 : yb;
                    for (size_t i = 0; i < len; i++) {
                        const float xhat = (x[i] - mean) * invstd;
                        y[i] = xhat * gamma + beta;
                    }
                    if (y == yb)
                        cpu_store(out, base + i0, yb, len, &counts);
                }
            }
        }
        cpu_count(cc, out, 0, &counts);
        for (int k = 0; k < T_NSTATS; k++)
            if (stat_t[k] && srounded[k])
                cpu_count(cc, stat_t[k], srounded[k], &scounts[k]);
    }
    cpu_count(cc, out, work, &(struct lowp_counts){ 0 });
}

void cpu_batchnorm_backward(void *ctx, struct amp_tensor *dinp, struct amp_tensor *dgamma,
                            struct amp_tensor *dbeta, const struct amp_tensor *dout,
                            const struct amp_tensor *inp, const struct bn_state *bn,
                            uint32_t n, uint32_t c, uint32_t hw)
{
    struct cpu_ctx *cc = ctx;
    const size_t N = (size_t)n * hw, work = N * c;
    const float Nf = (float)N;
#pragma omp parallel num_threads(cc->threads) if (work >= CPU_PARALLEL_MIN)
    {
        float xb[PIECE], gb[PIECE], yb[PIECE];
        struct lowp_counts counts = { 0 }, gcounts = { 0 }, bcounts = { 0 };
        size_t grounded = 0, brounded = 0;
#pragma omp for schedule(static)
        for (uint32_t ch = 0; ch < c; ch++) {
            const float mean = cpu_get(bn->save_mean, ch), invstd = cpu_get(bn->save_invstd, ch);
            const float gamma = get_or(bn->gamma, ch, 1.0f);
            float sg = 0.0f, sgx = 0.0f; /* sum(dout), sum(dout * xhat) */
            if (inp->dtype == AMP_F32 && dout->dtype == AMP_F32)
                sg = chan_sums((const float *)inp->data + (size_t)ch * hw,
                               (const float *)dout->data + (size_t)ch * hw, (size_t)c * hw, n, hw,
                               mean, invstd, &sgx, PS_GX);
            else
                for (uint32_t s = 0; s < n; s++) {
                    struct plane_sum pg = { { 0 }, 0.0f }, pgx = { { 0 }, 0.0f };
                    const size_t base = ((size_t)s * c + ch) * hw;
                    for (size_t i0 = 0; i0 < hw; i0 += PIECE) {
                        const size_t len = hw - i0 < PIECE ? hw - i0 : PIECE;
                        const float *x = piece(inp, base + i0, len, xb);
                        const float *g = piece(dout, base + i0, len, gb);
                        for (size_t i = 0; i < len; i++)
                            yb[i] = g[i] * ((x[i] - mean) * invstd);
                        psum_add(&pg, g, len);
                        psum_add(&pgx, yb, len);
                    }
                    sg += psum_total(&pg);
                    sgx += psum_total(&pgx);
                }
            if (dgamma) {
                cpu_set(dgamma, ch, sgx, &gcounts);
                grounded++;
            }
            if (dbeta) {
                cpu_set(dbeta, ch, sg, &bcounts);
                brounded++;
            }
            if (!dinp)
                continue;
            /* dinp = gamma * invstd / N * (N * dout - dbeta - xhat * dgamma), from FP32 sums. */
            const float k = gamma * invstd / Nf;
            for (uint32_t s = 0; s < n; s++) {
                const size_t base = ((size_t)s * c + ch) * hw;
                for (size_t i0 = 0; i0 < hw; i0 += PIECE) {
                    const size_t len = hw - i0 < PIECE ? hw - i0 : PIECE;
                    const float *x = piece(inp, base + i0, len, xb);
                    const float *g = piece(dout, base + i0, len, gb);
                    /* (dinp may alias dout: each element is read before it is written) */
                    float *y = dinp->dtype == AMP_F32 ? (float *)dinp->data + base + i0 : yb;
                    for (size_t i = 0; i < len; i++) {
                        const float xhat = (x[i] - mean) * invstd;
                        y[i] = k * (Nf * g[i] - sg - xhat * sgx);
                    }
                    if (y == yb)
                        cpu_store(dinp, base + i0, yb, len, &counts);
                }
            }
        }
        if (dinp)
            cpu_count(cc, dinp, 0, &counts);
        if (dgamma)
            cpu_count(cc, dgamma, grounded, &gcounts);
        if (dbeta)
            cpu_count(cc, dbeta, brounded, &bcounts);
    }
    if (dinp)
        cpu_count(cc, dinp, work, &(struct lowp_counts){ 0 });
}
