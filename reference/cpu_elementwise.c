/* CPU reference: elementwise and per-sample ops: ReLU, add, softmax cross-entropy, SGD momentum. */
#include <math.h>
#include <string.h>

#include "cpu_ops.h"
#include "scaler.h"

/* ReLU on raw bits: a negative non-NaN value becomes +0; NaN and positives pass. */
static inline uint16_t relu16(uint16_t h, uint16_t inf_bits)
{
    return (h & 0x8000u) && (h & 0x7FFFu) <= inf_bits ? 0 : h;
}

/* out > 0 on raw bits: sign clear, non-zero, not NaN. */
static inline int positive16(uint16_t h, uint16_t inf_bits)
{
    return !(h & 0x8000u) && h != 0 && h <= inf_bits;
}

/* 16 raw 16-bit values (element alignment only). */
enum { V16 = 16 };
typedef uint16_t vu16x __attribute__((vector_size(V16 * sizeof(uint16_t)), aligned(2)));
typedef int16_t vs16x __attribute__((vector_size(V16 * sizeof(int16_t)), aligned(2)));

static uint16_t inf_bits_of(enum amp_dtype dtype)
{
    return dtype == AMP_F16 ? 0x7C00u : 0x7F80u;
}

void cpu_relu_piece(enum amp_dtype dtype, void *y, const void *x, size_t n)
{
    if (dtype == AMP_F32) {
        const float *xf = x;
        float *yf = y;
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            yf[i] = cpu_relu32(xf[i]);
        return;
    }
    const uint16_t *xh = x, inf = inf_bits_of(dtype);
    uint16_t *yh = y;
    const size_t blocks = n / V16;
    for (size_t b = 0; b < blocks; b++) { /* relu16 in vectors */
        const vu16x h = *(const vu16x *)(xh + b * V16);
        const vs16x neg_finite = ((vs16x)h < 0) & ((h & 0x7FFFu) <= inf);
        *(vu16x *)(yh + b * V16) = h & ~(vu16x)neg_finite;
    }
    for (size_t i = blocks * V16; i < n; i++)
        yh[i] = relu16(xh[i], inf);
}

void cpu_store_relu(struct amp_tensor *t, size_t offset, const float *src, size_t n, int relu,
                    struct lowp_counts *acc)
{
    cpu_store(t, offset, src, n, acc);
    if (relu) {
        void *y = (char *)t->data + offset * dtype_size(t->dtype);
        cpu_relu_piece(t->dtype, y, y, n);
    }
}

/* Elements per piece of the elementwise ReLU ops' parallel loops (a multiple of V16). */
enum { RELU_CHUNK = 1 << 14 };

void cpu_relu_forward(void *ctx, struct amp_tensor *out, const struct amp_tensor *inp)
{
    const size_t n = inp->numel, es = dtype_size(inp->dtype);
    const int threads = ((struct cpu_ctx *)ctx)->threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (n >= CPU_PARALLEL_MIN)
    for (size_t c0 = 0; c0 < n; c0 += RELU_CHUNK)
        cpu_relu_piece(inp->dtype, (char *)out->data + c0 * es, (const char *)inp->data + c0 * es,
                       n - c0 < RELU_CHUNK ? n - c0 : RELU_CHUNK);
}

void cpu_relu_mask(enum amp_dtype dtype, void *dx, const void *g, const void *y, size_t n)
{
    if (dtype == AMP_F32) {
        const float *gf = g, *yf = y;
        float *d = dx;
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            d[i] = cpu_relu_grad32(gf[i], yf[i]);
        return;
    }
    const uint16_t *gh = g, *yh = y, inf = inf_bits_of(dtype);
    uint16_t *d = dx;
    const size_t blocks = n / V16;
    for (size_t b = 0; b < blocks; b++) { /* positive16 in vectors */
        const vu16x h = *(const vu16x *)(yh + b * V16);
        const vs16x pos = ((vs16x)h > 0) & (h <= inf);
        *(vu16x *)(d + b * V16) = *(const vu16x *)(gh + b * V16) & (vu16x)pos;
    }
    for (size_t i = blocks * V16; i < n; i++)
        d[i] = positive16(yh[i], inf) ? gh[i] : 0;
}

void cpu_relu_backward(void *ctx, struct amp_tensor *dinp, const struct amp_tensor *dout,
                       const struct amp_tensor *out)
{
    const size_t n = dout->numel, es = dtype_size(dout->dtype);
    const int threads = ((struct cpu_ctx *)ctx)->threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (n >= CPU_PARALLEL_MIN)
    for (size_t c0 = 0; c0 < n; c0 += RELU_CHUNK)
        cpu_relu_mask(dout->dtype, (char *)dinp->data + c0 * es,
                      (const char *)dout->data + c0 * es, (const char *)out->data + c0 * es,
                      n - c0 < RELU_CHUNK ? n - c0 : RELU_CHUNK);
}

/* out = a + b: each read in its own dtype, the FP32 sum rounded once to out's dtype. Chunks are
 * read whole before they are written, so out may alias a or b. */
void cpu_add(void *ctx, struct amp_tensor *out, const struct amp_tensor *a,
             const struct amp_tensor *b)
{
    struct cpu_ctx *c = ctx;
    const size_t n = out->numel;
    if (out->dtype == AMP_F32 && a->dtype == AMP_F32 && b->dtype == AMP_F32) {
        const float *x = a->data, *y = b->data;
        float *z = out->data;
#pragma omp parallel for simd schedule(static) num_threads(c->threads) if (n >= CPU_PARALLEL_MIN)
        for (size_t i = 0; i < n; i++)
            z[i] = x[i] + y[i];
        return;
    }
    enum { CHUNK = 2048 };
#pragma omp parallel num_threads(c->threads) if (n >= CPU_PARALLEL_MIN)
    {
        float x[CHUNK], y[CHUNK];
        struct lowp_counts counts = { 0 };
#pragma omp for schedule(static)
        for (size_t c0 = 0; c0 < n; c0 += CHUNK) {
            const size_t len = n - c0 < CHUNK ? n - c0 : CHUNK;
            cpu_load(x, a, c0, len, 0);
            cpu_load(y, b, c0, len, 0);
            for (size_t i = 0; i < len; i++)
                x[i] += y[i];
            cpu_store(out, c0, x, len, &counts);
        }
        cpu_count(c, out, 0, &counts);
    }
    cpu_count(c, out, n, &(struct lowp_counts){ 0 });
}

/* v rounded to the low-precision dtype `dt` (FP16 or BF16), as FP32. */
static inline float round_to(float v, enum amp_dtype dt)
{
    return dt == AMP_F16 ? f16_to_f32(f16_from_f32(v)) : bf16_to_f32(bf16_from_f32(v));
}

/* Softmax cross-entropy with every intermediate rounded to `dt` (FP16 or BF16): d = z - max,
 * e = exp(d), the row's sum (an FP32 sum of the rounded e, rounded), its log, each probability
 * e / sum, and the row's loss log(sum) - d[label]; the batch's sum of the rounded row losses is
 * FP32 (a double sum, as in FP32). dlogits = (p - onehot) * scale / n from the rounded p. */
static void softmax_xent_lowp(struct cpu_ctx *c, struct amp_tensor *dlogits,
                              struct amp_tensor *stats, const struct amp_tensor *logits,
                              const int32_t *y, float g, uint32_t n, uint32_t m,
                              enum amp_dtype dt)
{
    double loss_sum = 0.0;
    uint32_t correct = 0;
    struct lowp_counts counts = { 0 };
    float zi[m], e[m];
    for (uint32_t i = 0; i < n; i++) {
        cpu_load(zi, logits, (size_t)i * m, m, 0);
        uint32_t argmax = 0;
        for (uint32_t j = 1; j < m; j++)
            if (zi[j] > zi[argmax])
                argmax = j;
        const float zmax = zi[argmax];
        float sum = 0.0f;
        for (uint32_t j = 0; j < m; j++) {
            zi[j] = round_to(zi[j] - zmax, dt); /* d = z - max */
            e[j] = round_to(expf(zi[j]), dt);
            sum += e[j];
        }
        sum = round_to(sum, dt);
        const float lse = round_to(logf(sum), dt);
        loss_sum += (double)round_to(lse - zi[y[i]], dt);
        correct += argmax == (uint32_t)y[i];
        if (!dlogits)
            continue;
        for (uint32_t j = 0; j < m; j++) {
            const float p = round_to(e[j] / sum, dt);
            cpu_set(dlogits, (size_t)i * m + j, (p - (j == (uint32_t)y[i] ? 1.0f : 0.0f)) * g,
                    &counts);
        }
    }
    if (dlogits)
        cpu_count(c, dlogits, (size_t)n * m, &counts);
    float *st = stats->data;
    st[0] = (float)loss_sum;
    st[1] = (float)correct;
}

void cpu_softmax_xent(void *ctx, struct amp_tensor *dlogits, struct amp_tensor *stats,
                      const struct amp_tensor *logits, const struct amp_tensor *labels,
                      const struct amp_tensor *scaler, uint32_t n, uint32_t m,
                      enum amp_dtype compute)
{
    struct cpu_ctx *c = ctx;
    const int32_t *y = labels->data;
    const float scale = scaler ? ((const struct loss_scaler *)scaler->data)->scale : 1.0f;
    const float g = scale / (float)n;
    if (dtype_is_lowp(compute)) {
        softmax_xent_lowp(c, dlogits, stats, logits, y, g, n, m, compute);
        return;
    }
    double loss_sum = 0.0;
    uint32_t correct = 0;
    struct lowp_counts counts = { 0 };
    float zi[m];
    for (uint32_t i = 0; i < n; i++) {
        cpu_load(zi, logits, (size_t)i * m, m, 0);
        uint32_t argmax = 0;
        for (uint32_t j = 1; j < m; j++)
            if (zi[j] > zi[argmax])
                argmax = j;
        const float zmax = zi[argmax];
        float sum = 0.0f;
        for (uint32_t j = 0; j < m; j++)
            sum += expf(zi[j] - zmax);
        loss_sum += (double)(logf(sum) + zmax - zi[y[i]]);
        correct += argmax == (uint32_t)y[i];
        if (!dlogits)
            continue;
        const float inv = 1.0f / sum;
        for (uint32_t j = 0; j < m; j++) {
            const float p = expf(zi[j] - zmax) * inv;
            cpu_set(dlogits, (size_t)i * m + j, (p - (j == (uint32_t)y[i] ? 1.0f : 0.0f)) * g,
                    &counts);
        }
    }
    if (dlogits)
        cpu_count(c, dlogits, (size_t)n * m, &counts);
    float *st = stats->data;
    st[0] = (float)loss_sum;
    st[1] = (float)correct;
}

void cpu_sgd_momentum(void *ctx, struct amp_tensor *weight, struct amp_tensor *velocity,
                      struct amp_tensor *copy, const struct amp_tensor *grad,
                      const struct amp_tensor *scaler, float lr, float momentum)
{
    struct cpu_ctx *c = ctx;
    if (scaler && ((const struct loss_scaler *)scaler->data)->found_inf)
        return; /* a skipped step: weights and momentum stay as they are */
    const size_t n = weight->numel;
    if (weight->dtype == AMP_F32 && velocity->dtype == AMP_F32 && grad->dtype == AMP_F32 &&
        !copy) {
        float *w = weight->data, *v = velocity->data;
        const float *gr = grad->data;
#pragma omp parallel for simd schedule(static) num_threads(c->threads) if (n >= CPU_PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) {
            v[i] = momentum * v[i] + gr[i];
            w[i] -= lr * v[i];
        }
        return;
    }
    /* Mixed dtypes: FP32 arithmetic on widened values, each result rounded to its tensor. */
    enum { CHUNK = 1024 };
    const int lowp_weight = dtype_is_lowp(weight->dtype);
#pragma omp parallel num_threads(c->threads) if (n >= CPU_PARALLEL_MIN)
    {
        float w[CHUNK], v[CHUNK], g[CHUNK], w_old[CHUNK];
        struct lowp_counts wc = { 0 }, vc = { 0 }, cc = { 0 };
        uint64_t updates = 0, swallowed = 0;
#pragma omp for schedule(static)
        for (size_t c0 = 0; c0 < n; c0 += CHUNK) {
            const size_t len = n - c0 < CHUNK ? n - c0 : CHUNK;
            cpu_load(w, weight, c0, len, 0);
            cpu_load(v, velocity, c0, len, 0);
            cpu_load(g, grad, c0, len, 0);
            memcpy(w_old, w, len * sizeof *w);
            for (size_t i = 0; i < len; i++)
                v[i] = momentum * v[i] + g[i];
            cpu_store(velocity, c0, v, len, &vc);
            if (velocity->dtype != AMP_F32) /* the update uses the stored (rounded) velocity */
                cpu_load(v, velocity, c0, len, 0);
            for (size_t i = 0; i < len; i++)
                w[i] -= lr * v[i];
            cpu_store(weight, c0, w, len, &wc);
            if (lowp_weight) {
                cpu_load(w, weight, c0, len, 0);
                for (size_t i = 0; i < len; i++) {
                    const int moved = lr * v[i] != 0.0f;
                    updates += moved;
                    swallowed += moved && w[i] == w_old[i];
                }
            }
            if (copy)
                cpu_store(copy, c0, w, len, &cc);
        }
        cpu_count(c, weight, 0, &wc);
        cpu_count(c, velocity, 0, &vc);
        if (copy)
            cpu_count(c, copy, 0, &cc);
        __atomic_fetch_add(&c->counts.updates, updates, __ATOMIC_RELAXED);
        __atomic_fetch_add(&c->counts.swallowed, swallowed, __ATOMIC_RELAXED);
    }
    cpu_count(c, weight, n, &(struct lowp_counts){ 0 });
    cpu_count(c, velocity, n, &(struct lowp_counts){ 0 });
    if (copy)
        cpu_count(c, copy, n, &(struct lowp_counts){ 0 });
}
