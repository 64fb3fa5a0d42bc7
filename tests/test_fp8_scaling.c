/* FP8 scaling (harness/core/fp8_scaling.h) and the CPU backend's fp8_quantize op: the scale rule
 * (Transformer Engine's _default_sf_compute), delayed scaling's amax history on a scripted
 * sequence (max over the window, a NaN keeps the scale until it rolls out), current scaling, the
 * op's saturation and underflow counts and SQNR sums, evaluation leaving the state alone, MX
 * blocks, a BF16 source, results independent of the thread count, and mxfp8's quantized copies
 * in a network blocked along the reduction of the GEMM that reads each. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "check.h"
#include "error.h"
#include "fp8_scaling.h"
#include "lowp.h"
#include "model.h"
#include "registry.h"
#include "rng.h"

static struct amp_tensor make(struct backend *be, size_t n, enum amp_dtype dt)
{
    struct amp_tensor t;
    if (tensor_alloc(be, &t, n, dt, MEM_ACTIVATIONS) != AMP_OK) {
        fprintf(stderr, "%s\n", amp_last_error());
        exit(1);
    }
    return t;
}

/* A state tensor holding s. */
static struct amp_tensor state_of(struct backend *be, struct fp8_tensor_state s)
{
    struct amp_tensor t = make(be, sizeof s / sizeof(int32_t), AMP_I32);
    memcpy(t.data, &s, sizeof s);
    return t;
}

static void test_scale_rule(void)
{
    CHECK(fp8_scale_from_amax(2.0f, FP8_E4M3, 0, 7.0f) == 224.0f, "448 / 2");
    CHECK(fp8_scale_from_amax(2.0f, FP8_E5M2, 0, 7.0f) == 28672.0f, "57344 / 2");
    CHECK(fp8_scale_from_amax(2.0f, FP8_E4M3, 1, 7.0f) == 112.0f, "margin 1 halves it");
    CHECK(fp8_scale_from_amax(0.0f, FP8_E4M3, 0, 7.0f) == 7.0f, "amax 0 keeps the scale");
    CHECK(fp8_scale_from_amax(NAN, FP8_E4M3, 0, 7.0f) == 7.0f, "NaN amax keeps the scale");
    CHECK(fp8_scale_from_amax(INFINITY, FP8_E4M3, 0, 7.0f) == 7.0f, "inf amax keeps the scale");
    CHECK(fp8_scale_from_amax(1e-45f, FP8_E4M3, 0, 7.0f) == 7.0f,
          "an amax whose quotient overflows keeps the scale");
    struct fp8_tensor_state s = fp8_state_make(FP8_E4M3, 1, MX_SCALE_RCEIL, 0);
    CHECK(fp8_current_scale(&s, 0.0f) == 1.0f, "current scaling of a zero tensor: 1");
    CHECK(fp8_current_scale(&s, 4.0f) == 112.0f, "current scaling: 448 / 4");
}

static void test_delayed_history(void)
{
    struct fp8_tensor_state s = fp8_state_make(FP8_E4M3, 3, MX_SCALE_RCEIL, 0);
    float history[3] = { 0 };
    CHECK(s.scale == 1.0f, "delayed scaling starts at scale 1, as TE");
    /* amax per step, and the scale for the next step: 448 / max of the last three amaxes. */
    const float amax[] = { 1.0f, 4.0f, 2.0f, 0.5f, 0.25f, 0.0f, 0.0f, 0.0f };
    const float want[] = { 448.0f, 112.0f, 112.0f, 112.0f, 224.0f, 896.0f, 1792.0f, 1792.0f };
    for (size_t i = 0; i < sizeof amax / sizeof amax[0]; i++) {
        fp8_delayed_update(&s, history, amax[i]);
        CHECK(s.scale == want[i], "step %zu: scale %g, want %g", i + 1, s.scale, want[i]);
    }
    /* An empty window (all zeros) kept the last scale; a NaN keeps it while in the window. */
    struct fp8_tensor_state t = fp8_state_make(FP8_E5M2, 2, MX_SCALE_RCEIL, 0);
    float h2[2] = { 0 };
    fp8_delayed_update(&t, h2, 7.0f);
    CHECK(t.scale == 8192.0f, "57344 / 7");
    fp8_delayed_update(&t, h2, NAN);
    CHECK(t.scale == 8192.0f, "a NaN amax keeps the scale");
    fp8_delayed_update(&t, h2, 14.0f);
    CHECK(t.scale == 8192.0f, "still in the window: the scale stays");
    fp8_delayed_update(&t, h2, 28.0f);
    CHECK(t.scale == 2048.0f, "rolled out: 57344 / max(14, 28) = %g", t.scale);
}

/* What one quantization with the op left in dst and the state. */
static void quantize(struct backend *be, struct amp_tensor *dst, const struct amp_tensor *src,
                     enum fp8_scaling scaling, struct amp_tensor *state, struct amp_tensor *hist,
                     int train)
{
    be->ops->fp8_quantize(be->ctx, dst, src, scaling, state, hist, train);
}

static void test_op_counts(struct backend *be)
{
    const float v[] = { 1.0f, 0.3f, 500.0f, 1e-4f, -2.0f, 0.0f };
    const size_t n = sizeof v / sizeof v[0];
    struct amp_tensor src = make(be, n, AMP_F32), dst = make(be, n, AMP_F32);
    memcpy(src.data, v, sizeof v);
    struct amp_tensor hist = make(be, 4, AMP_F32);
    be->ops->zero(be->ctx, &hist);
    struct amp_tensor st =
        state_of(be, fp8_state_make(FP8_E4M3, 4, MX_SCALE_RCEIL, 0));
    /* Evaluation: quantized with the scale, the state untouched. */
    struct fp8_tensor_state before;
    memcpy(&before, st.data, sizeof before);
    quantize(be, &dst, &src, FP8_SCALING_DELAYED, &st, &hist, 0);
    CHECK(memcmp(&before, st.data, sizeof before) == 0, "evaluation changes no state");
    quantize(be, &dst, &src, FP8_SCALING_DELAYED, &st, &hist, 1);
    const struct fp8_tensor_state *s = st.data;
    const float *q = dst.data;
    for (size_t i = 0; i < n; i++) {
        const float want = fp8_to_f32(fp8_from_f32(v[i], FP8_E4M3, FP8_SATFINITE), FP8_E4M3);
        CHECK(q[i] == want, "element %zu: %g, want %g", i, q[i], want);
    }
    CHECK(q[2] == 448.0f, "500 saturates to 448");
    CHECK(s->n == n && s->saturated == 1 && s->underflow == 1 && s->nonfinite == 0,
          "counts: n %llu saturated %llu underflow %llu", (unsigned long long)s->n,
          (unsigned long long)s->saturated, (unsigned long long)s->underflow);
    CHECK(s->last_scale == 1.0f && s->last_amax == 500.0f, "used scale 1, amax 500");
    CHECK(s->scale == 448.0f / 500.0f, "next scale 448 / 500: %g", s->scale);
    CHECK(((float *)hist.data)[0] == 500.0f && s->history_pos == 1, "amax in the history");
    double noise = 0, signal = 0;
    for (size_t i = 0; i < n; i++) {
        signal += (double)v[i] * v[i];
        noise += ((double)v[i] - q[i]) * ((double)v[i] - q[i]);
    }
    CHECK(fabs(s->signal - signal) <= 1e-9 * signal && fabs(s->noise - noise) <= 1e-9 * noise,
          "SQNR sums %g %g, want %g %g", s->signal, s->noise, signal, noise);

    /* Current scaling: the scale from this tensor's amax, so nothing saturates. */
    struct amp_tensor cur =
        state_of(be, fp8_state_make(FP8_E4M3, 1, MX_SCALE_RCEIL, 0));
    quantize(be, &dst, &src, FP8_SCALING_CURRENT, &cur, NULL, 1);
    const struct fp8_tensor_state *c = cur.data;
    CHECK(c->last_scale == 448.0f / 500.0f && c->saturated == 0,
          "current: scale %g, %llu saturated", c->last_scale, (unsigned long long)c->saturated);
    const float scale = 448.0f / 500.0f, inv = 1.0f / scale;
    for (size_t i = 0; i < n; i++) {
        const float want =
            fp8_to_f32(fp8_from_f32(v[i] * scale, FP8_E4M3, FP8_SATFINITE), FP8_E4M3) * inv;
        CHECK(q[i] == want, "current element %zu: %g, want %g", i, q[i], want);
    }
    tensor_free(be, &src);
    tensor_free(be, &dst);
    tensor_free(be, &hist);
    tensor_free(be, &st);
    tensor_free(be, &cur);
}

/* A BF16 source is read exactly; MX blocks are the library's mx_fake_quantize. */
static void test_op_bf16_and_mx(struct backend *be)
{
    enum { ROW = 40, ROWS = 3 };
    float v[ROW * ROWS], want[ROW * ROWS];
    for (int i = 0; i < ROW * ROWS; i++)
        v[i] = bf16_to_f32(bf16_from_f32(sinf(0.37f * (float)i) * powf(2.0f, (float)(i % 13) - 6)));
    struct amp_tensor src = make(be, ROW * ROWS, AMP_BF16), dst = make(be, ROW * ROWS, AMP_F32);
    for (int i = 0; i < ROW * ROWS; i++)
        ((amp_bf16 *)src.data)[i] = bf16_from_f32(v[i]);
    const enum mx_scale_rounding rs[] = { MX_SCALE_FLOOR, MX_SCALE_RCEIL };
    for (int k = 0; k < 2; k++) {
        struct amp_tensor st =
            state_of(be, fp8_state_make(FP8_E4M3, 1, rs[k], ROW));
        quantize(be, &dst, &src, FP8_SCALING_MX, &st, NULL, 1);
        struct fp8_stats stats = { 0 };
        mx_fake_quantize(want, v, ROWS, ROW, FP8_E4M3, rs[k], &stats);
        CHECK(memcmp(dst.data, want, sizeof want) == 0, "MX (%s) from BF16: the library's blocks",
              k ? "rceil" : "floor");
        const struct fp8_tensor_state *s = st.data;
        CHECK(s->n == ROW * ROWS && s->saturated == stats.saturated &&
                  s->underflow == stats.underflow && s->last_scale == 0.0f,
              "MX counts as the library's");
        tensor_free(be, &st);
    }
    tensor_free(be, &src);
    tensor_free(be, &dst);
}

/* The same quantization on 1 and 2 threads: the same values and the same statistics (current
 * scaling, and MX channel blocks of 37 channels of 7 x 7 over 113 samples). */
static void test_threads(struct backend *one, struct backend *two)
{
    enum { N = 200003, MXN = 113 * 37 * 49 };
    struct backend *bes[2] = { one, two };
    for (int mx = 0; mx < 2; mx++) {
        const size_t n = mx ? MXN : N;
        struct amp_tensor dst[2], st[2];
        for (int b = 0; b < 2; b++) {
            struct amp_tensor src = make(bes[b], n, AMP_F32);
            dst[b] = make(bes[b], n, AMP_F32);
            for (size_t i = 0; i < n; i++)
                ((float *)src.data)[i] = cosf(0.001f * (float)i) * (float)(i % 97) * 1e-3f;
            struct fp8_tensor_state s = fp8_state_make(FP8_E5M2, 1, MX_SCALE_RCEIL, mx ? 37 : 0);
            s.mx_inner = mx ? 49 : 1;
            st[b] = state_of(bes[b], s);
            quantize(bes[b], &dst[b], &src, mx ? FP8_SCALING_MX : FP8_SCALING_CURRENT, &st[b],
                     NULL, 1);
            tensor_free(bes[b], &src);
        }
        CHECK(memcmp(dst[0].data, dst[1].data, n * sizeof(float)) == 0,
              "%s: values on 1 and 2 threads", mx ? "mx" : "current");
        CHECK(memcmp(st[0].data, st[1].data, sizeof(struct fp8_tensor_state)) == 0,
              "%s: statistics on 1 and 2 threads", mx ? "mx" : "current");
        for (int b = 0; b < 2; b++) {
            tensor_free(bes[b], &dst[b]);
            tensor_free(bes[b], &st[b]);
        }
    }
}

/* What a GEMM reduces over, for one quantized tensor of the MX test network: the tensor as
 * [d0, d1, d2, d3] and which of those dimensions the GEMM that reads it sums over; `wrong`: a
 * layout that must fail the test ("rows": memory rows of d1 d2 d3; else another tensor's). */
struct reduction {
    const char *name;
    uint32_t d[4];
    int reduced[4];
    const char *wrong;
};

/* A tensor whose magnitude (2^-20, 1 or 2^20) depends only on its coordinates outside the
 * reduction, different from one such coordinate to the next: quantized in blocks
 * along the reduction, every element is within E4M3's half ulp (2^-4 relative); in blocks that
 * cross the other dimensions, the small elements of a block underflow. Returns the worst
 * relative error of quantizing it with state st (its MX layout) on be. */
static double worst_rel_error(struct backend *be, const struct reduction *r,
                              const struct fp8_tensor_state *st)
{
    const size_t n = (size_t)r->d[0] * r->d[1] * r->d[2] * r->d[3];
    struct amp_tensor src = make(be, n, AMP_F32), dst = make(be, n, AMP_F32);
    struct amp_tensor state = state_of(be, *st);
    float *x = src.data;
    for (size_t e = 0; e < n; e++) {
        size_t rest = e, key = 0;
        for (int k = 3; k >= 0; k--) {
            const size_t c = rest % r->d[k];
            rest /= r->d[k];
            key += r->reduced[k] ? 0 : c;
        }
        const int ex = 20 * (int)(key % 3) - 20; /* neighbours differ by 2^20 */
        x[e] = ldexpf(1.0f + (float)((e * 40503u) % 1000) / 1000.0f, ex) * (e % 3 ? 1.0f : -1.0f);
    }
    quantize(be, &dst, &src, FP8_SCALING_MX, &state, NULL, 0);
    double worst = 0.0;
    for (size_t e = 0; e < n; e++) {
        const double q = ((const float *)dst.data)[e], v = x[e];
        worst = fmax(worst, fabs(q - v) / fabs(v));
    }
    tensor_free(be, &src);
    tensor_free(be, &dst);
    tensor_free(be, &state);
    return worst;
}

/* mxfp8 blocks each GEMM's operands along that GEMM's reduction: two convs and a linear layer
 * under autocast, one training step, and each quantized tensor (model_fp8_read, the states the
 * model gave them: six per layer, four for the first, which computes no input gradient)
 * quantizes accurately a tensor that is smooth only along the dimensions its GEMM reduces over.
 * The other copy's blocks, or memory rows (what every MX tensor had before), fail the same test
 * for the second copies. */
static void test_model_mx_blocks(struct backend *be)
{
    enum { N = 5, C = 3, H = 6, W = 5, CO = 4, M = 7, K = CO * H * W, NT = 16 };
    static const struct layer_spec layers[] = {
        { .kind = LAYER_CONV, .name = "conv0", .width = CO, .kernel = 3, .stride = 1, .pad = 1 },
        { .kind = LAYER_CONV, .name = "conv", .width = CO, .kernel = 3, .stride = 1, .pad = 1 },
        { .kind = LAYER_LINEAR, .name = "fc", .width = WIDTH_CLASSES },
        { .kind = LAYER_SOFTMAX_XENT, .name = "loss" },
    };
    const struct net_preset net = { .name = "mx", .summary = "test", .layers = layers,
                                    .nlayers = 4 };
    const struct model_shape shape = { .batch = N, .c_in = C, .h = H, .w = W, .classes = M,
                                       .channels = CO };
    const struct precision_plan plan = precision_plan_of(recipe_find("mxfp8"), POLICY_AUTOCAST);
    struct model *m;
    if (model_create(&m, be, &net, &shape, &plan, SCALING_NONE, NULL) != AMP_OK) {
        CHECK(0, "the MX test network: %s", amp_last_error());
        return;
    }
    struct rng g;
    rng_seed(&g, 7);
    float images[N * C * H * W];
    int32_t labels[N];
    for (size_t i = 0; i < sizeof images / sizeof images[0]; i++)
        images[i] = rng_float(&g);
    for (int i = 0; i < N; i++)
        labels[i] = i % M;
    struct step_result res;
    struct model_fp8 t[NT];
    const int ok = model_init(m, &g) == AMP_OK && model_set_batch(m, images, labels, N) == AMP_OK &&
                   model_train_step(m, N, 0.01f, 0.9f, &res) == AMP_OK &&
                   model_fp8_count(m) == NT && model_fp8_read(m, t) == AMP_OK;
    CHECK(ok, "mxfp8 quantizes %d tensors (4 + 6 + 6)", NT);
    model_destroy(m);
    if (!ok)
        return;
    /* The GEMMs: conv forward sums over c_in (and the taps), its data gradient over c_out (and
     * the taps), its filter gradient over n, h, w; linear y = x w^T over k, dx = dy w over m,
     * dw = dy^T x over n. */
    static const struct reduction want[NT] = {
        { "conv0.input", { N, C, H, W }, { 0, 1, 0, 0 }, NULL },
        { "conv0.weight", { CO, C, 3, 3 }, { 0, 1, 1, 1 }, NULL },
        { "conv0.input.pixels", { N, C, H, W }, { 1, 0, 1, 1 }, "conv0.input" },
        { "conv0.grad.pixels", { N, CO, H, W }, { 1, 0, 1, 1 }, "conv.input" },
        { "conv.input", { N, CO, H, W }, { 0, 1, 0, 0 }, NULL },
        { "conv.weight", { CO, CO, 3, 3 }, { 0, 1, 1, 1 }, NULL },
        { "conv.grad", { N, CO, H, W }, { 0, 1, 0, 0 }, NULL },
        { "conv.input.pixels", { N, CO, H, W }, { 1, 0, 1, 1 }, "conv.input" },
        { "conv.weight.cols", { CO, CO, 3, 3 }, { 1, 0, 0, 0 }, "rows" },
        { "conv.grad.pixels", { N, CO, H, W }, { 1, 0, 1, 1 }, "conv.grad" },
        { "fc.input", { N, K, 1, 1 }, { 0, 1, 0, 0 }, NULL },
        { "fc.weight", { M, K, 1, 1 }, { 0, 1, 0, 0 }, NULL },
        { "fc.grad", { N, M, 1, 1 }, { 0, 1, 0, 0 }, NULL },
        { "fc.input.cols", { N, K, 1, 1 }, { 1, 0, 0, 0 }, "rows" },
        { "fc.weight.cols", { M, K, 1, 1 }, { 1, 0, 0, 0 }, "rows" },
        { "fc.grad.cols", { N, M, 1, 1 }, { 1, 0, 0, 0 }, "rows" },
    };
    for (int i = 0; i < NT; i++) {
        const struct reduction *r = &want[i];
        const size_t n = (size_t)r->d[0] * r->d[1] * r->d[2] * r->d[3];
        CHECK(strcmp(t[i].name, r->name) == 0 && t[i].state.n == n, "tensor %d is %s (%zu), "
              "got %s (%llu)", i, r->name, n, t[i].name, (unsigned long long)t[i].state.n);
        const double e = worst_rel_error(be, r, &t[i].state);
        CHECK(e <= 0x1p-4, "%s: blocked along its GEMM's reduction: worst relative error %g",
              r->name, e);
        if (!r->wrong)
            continue;
        struct fp8_tensor_state other = t[i].state;
        other.mx_len = (uint32_t)(n / r->d[0]), other.mx_inner = 1;
        for (int k = 0; k < NT; k++)
            if (strcmp(t[k].name, r->wrong) == 0)
                other = t[k].state;
        const double ew = worst_rel_error(be, r, &other);
        CHECK(ew >= 0.5, "%s: blocked as %s instead: worst relative error %g", r->name, r->wrong,
              ew);
    }
}

int main(void)
{
    struct backend one, two;
    if (backend_open(&one, "cpu", &(struct backend_options){ .threads = 1 }) != AMP_OK ||
        backend_open(&two, "cpu", &(struct backend_options){ .threads = 2 }) != AMP_OK) {
        fprintf(stderr, "%s\n", amp_last_error());
        return 1;
    }
    test_scale_rule();
    test_delayed_history();
    test_op_counts(&two);
    test_op_bf16_and_mx(&two);
    test_threads(&one, &two);
    test_model_mx_blocks(&two);
    backend_close(&one);
    backend_close(&two);
    return check_summary();
}
