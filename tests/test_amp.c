/* Mixed-precision tests on the CPU reference: GradScaler's update rule on scripted sequences,
 * the unscale / skip path through the backend, controlled underflow with and without a loss
 * scale, swallowed FP16 updates, and each low-precision op against a naive reference that
 * follows the stated semantics (inputs rounded, FP32 products and sums, output rounded). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "registry.h"
#include "error.h"
#include "lowp.h"
#include "rng.h"
#include "check.h"
#include "scaler.h"
#include "simd.h"

static struct backend be;

static struct amp_tensor make(size_t n, enum amp_dtype dt, enum mem_category cat)
{
    struct amp_tensor t;
    if (tensor_alloc(&be, &t, n, dt, cat) != AMP_OK) {
        fprintf(stderr, "%s\n", amp_last_error());
        exit(1);
    }
    return t;
}

static void fill(struct amp_tensor *t, const float *v)
{
    for (size_t i = 0; i < t->numel; i++) {
        if (t->dtype == AMP_F32)
            ((float *)t->data)[i] = v[i];
        else if (t->dtype == AMP_F16)
            ((amp_f16 *)t->data)[i] = f16_from_f32(v[i]);
        else
            ((amp_bf16 *)t->data)[i] = bf16_from_f32(v[i]);
    }
}

static float get(const struct amp_tensor *t, size_t i)
{
    if (t->dtype == AMP_F32)
        return ((float *)t->data)[i];
    if (t->dtype == AMP_F16)
        return f16_to_f32(((amp_f16 *)t->data)[i]);
    return bf16_to_f32(((amp_bf16 *)t->data)[i]);
}

/* ---- GradScaler's rule on scripted sequences ---- */
struct script_step {
    int inf;
    float scale_after;
    int tracker_after;
};

static void run_script(const char *name, struct loss_scaler s, const struct script_step *steps,
                       int n)
{
    for (int i = 0; i < n; i++) {
        const float before = s.scale;
        s.found_inf = steps[i].inf;
        scaler_update(&s);
        check(s.scale == steps[i].scale_after && s.growth_tracker == steps[i].tracker_after &&
                  s.last_skipped == steps[i].inf && s.last_scale == before && s.found_inf == 0,
              "%s step %d: scale %g tracker %d skipped %d (want %g, %d, %d)", name, i + 1, s.scale,
              s.growth_tracker, s.last_skipped, steps[i].scale_after, steps[i].tracker_after,
              steps[i].inf);
    }
}

static void test_scaler_rules(void)
{
    /* Defaults: 2^16, x2 after 2000 clean steps, x0.5 on inf/NaN. */
    struct loss_scaler s = scaler_make(65536.0f, 1, 2000, 0.0f, 0.0f);
    for (int i = 1; i <= 1999; i++)
        scaler_update(&s);
    check(s.scale == 65536.0f && s.growth_tracker == 1999, "1999 clean steps keep 2^16");
    scaler_update(&s);
    check(s.scale == 131072.0f && s.growth_tracker == 0, "the 2000th clean step doubles");

    /* Interval 3: growth, backoff resets the tracker, growth again only after 3 more. */
    const struct script_step a[] = {
        { 0, 8, 1 }, { 0, 8, 2 }, { 0, 16, 0 }, { 1, 8, 0 }, { 0, 8, 1 },
        { 1, 4, 0 }, { 1, 2, 0 }, { 0, 2, 1 },  { 0, 2, 2 }, { 0, 4, 0 },
    };
    run_script("interval 3", scaler_make(8.0f, 1, 3, 0.0f, 0.0f), a, 10);

    /* Apex-style bounds clamp both ways. */
    const struct script_step b[] = { { 1, 2, 0 }, { 1, 2, 0 }, { 0, 2, 1 }, { 0, 4, 0 },
                                     { 0, 4, 1 }, { 0, 4, 0 } };
    run_script("bounds [2, 4]", scaler_make(4.0f, 1, 2, 2.0f, 4.0f), b, 6);

    /* A static scale never moves, but steps with inf/NaN are still skipped. */
    const struct script_step c[] = { { 0, 1024, 1 }, { 1, 1024, 0 }, { 0, 1024, 1 },
                                     { 0, 1024, 0 } };
    run_script("static", scaler_make(1024.0f, 0, 2, 0.0f, 0.0f), c, 4);

    /* Growth that would overflow to inf is refused (torch keeps the old scale). */
    const struct script_step d[] = { { 0, 0x1.8p127f, 0 } };
    run_script("no growth to inf", scaler_make(0x1.8p127f, 1, 1, 0.0f, 0.0f), d, 1);
}

/* ---- unscale, skip and update through the backend ---- */
static void test_skip_path(void)
{
    struct amp_tensor w = make(4, AMP_F32, MEM_WEIGHTS), v = make(4, AMP_F32, MEM_OPTIMIZER),
                      g = make(4, AMP_F32, MEM_WEIGHT_GRADS),
                      copy = make(4, AMP_F16, MEM_WEIGHT_COPIES),
                      sc = make(sizeof(struct loss_scaler) / 4, AMP_I32, MEM_OPTIMIZER);
    struct loss_scaler *s = sc.data;
    *s = scaler_make(1024.0f, 1, 2000, 0.0f, 0.0f);
    fill(&w, (float[]){ 1, 2, 3, 4 });
    fill(&g, (float[]){ 1024, -2048, INFINITY, 512 });
    be.ops->unscale(be.ctx, &g, &sc);
    check(s->found_inf == 1, "unscale flags inf");
    be.ops->sgd_momentum(be.ctx, &w, &v, &copy, &g, &sc, 0.5f, 0.9f);
    check(get(&w, 0) == 1 && get(&w, 3) == 4 && get(&v, 0) == 0, "a flagged step leaves weights");
    be.ops->scaler_update(be.ctx, &sc);
    check(s->scale == 512.0f && s->last_skipped == 1 && s->found_inf == 0, "backoff after inf");

    fill(&g, (float[]){ 512, -1024, 256, 0 });
    be.ops->unscale(be.ctx, &g, &sc);
    check(s->found_inf == 0 && get(&g, 0) == 1.0f && get(&g, 1) == -2.0f && get(&g, 2) == 0.5f,
          "unscale divides by the scale");
    be.ops->sgd_momentum(be.ctx, &w, &v, &copy, &g, &sc, 0.5f, 0.9f);
    check(get(&w, 0) == 0.5f && get(&w, 1) == 3.0f && get(&v, 2) == 0.5f &&
              get(&copy, 1) == 3.0f,
          "a clean step updates weights, momentum and the FP16 copy");
    struct amp_tensor *all[] = { &w, &v, &g, &copy, &sc };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        tensor_free(&be, all[i]);
}

/* ---- controlled underflow ---- */
static void test_underflow(void)
{
    enum { N = 4096 };
    struct rng r;
    rng_seed(&r, 3);
    float vals[N];
    for (int i = 0; i < N; i++) /* magnitudes in [2^-30, 2^-25] */
        vals[i] = (i & 1 ? -1.0f : 1.0f) * exp2f(rng_uniform(&r, -30.0f, -25.0f));
    struct amp_tensor src = make(N, AMP_F32, MEM_WORKSPACE);
    struct amp_tensor dst = make(N, AMP_F16, MEM_WEIGHT_GRADS);
    struct numerics_counts counts;
    be.ops->read_counts(be.ctx, &counts);

    fill(&src, vals);
    be.ops->cast(be.ctx, &dst, &src);
    be.ops->read_counts(be.ctx, &counts);
    check(counts.rounded[MEM_WEIGHT_GRADS] == N && counts.underflow[MEM_WEIGHT_GRADS] == N,
          "unscaled: %llu of %d underflow (want all)",
          (unsigned long long)counts.underflow[MEM_WEIGHT_GRADS], N);

    for (int i = 0; i < N; i++)
        vals[i] *= 0x1p10f;
    fill(&src, vals);
    be.ops->cast(be.ctx, &dst, &src);
    be.ops->read_counts(be.ctx, &counts);
    int kept = 1;
    for (int i = 0; i < N; i++)
        kept &= get(&dst, i) != 0.0f && fabsf(get(&dst, i) - vals[i]) <= fabsf(vals[i]) * 0x1p-3f;
    check(counts.underflow[MEM_WEIGHT_GRADS] == 0 && kept,
          "scaled by 2^10: %llu underflow (want 0), values kept",
          (unsigned long long)counts.underflow[MEM_WEIGHT_GRADS]);

    /* Overflow: 1e5 overflows FP16 and not BF16. */
    src.numel = 1;
    dst.numel = 1;
    fill(&src, (float[]){ 1e5f });
    be.ops->cast(be.ctx, &dst, &src);
    be.ops->read_counts(be.ctx, &counts);
    check(counts.overflow[MEM_WEIGHT_GRADS] == 1 && isinf(get(&dst, 0)), "1e5 overflows FP16");
    src.numel = dst.numel = N;
    tensor_free(&be, &src);
    tensor_free(&be, &dst);
}

/* ---- swallowed FP16 updates (fp16-pure) ---- */
static void test_swallowed(void)
{
    enum { N = 64 };
    struct amp_tensor w = make(N, AMP_F16, MEM_WEIGHTS), v = make(N, AMP_F16, MEM_OPTIMIZER),
                      g = make(N, AMP_F16, MEM_WEIGHT_GRADS);
    float ones[N], small[N], big[N];
    for (int i = 0; i < N; i++) {
        ones[i] = 1.0f;
        small[i] = 1e-3f; /* lr * v = 1e-5, far below half an FP16 ulp of 1 (2^-11) */
        big[i] = 1.0f;    /* lr * v = 1e-2: the weight moves */
    }
    struct numerics_counts counts;
    be.ops->read_counts(be.ctx, &counts);
    fill(&w, ones);
    fill(&g, small);
    be.ops->sgd_momentum(be.ctx, &w, &v, NULL, &g, NULL, 0.01f, 0.0f);
    be.ops->read_counts(be.ctx, &counts);
    check(counts.updates == N && counts.swallowed == N && get(&w, 0) == 1.0f,
          "tiny FP16 updates swallowed: %llu of %llu", (unsigned long long)counts.swallowed,
          (unsigned long long)counts.updates);
    fill(&g, big);
    be.ops->sgd_momentum(be.ctx, &w, &v, NULL, &g, NULL, 0.01f, 0.0f);
    be.ops->read_counts(be.ctx, &counts);
    check(counts.updates == N && counts.swallowed == 0 && get(&w, 0) < 1.0f,
          "large FP16 updates land: %llu swallowed", (unsigned long long)counts.swallowed);
    tensor_free(&be, &w);
    tensor_free(&be, &v);
    tensor_free(&be, &g);
}

/* ---- low-precision ops against a naive reference ---- */
/* The spacing of dtype values near x (one unit in the last place). */
static float ulp_of(enum amp_dtype dt, float x)
{
    const int bits = dt == AMP_F16 ? 11 : dt == AMP_BF16 ? 8 : 24;
    int e;
    frexpf(fabsf(x) > 0x1p-14f ? x : 0x1p-14f, &e);
    return ldexpf(1.0f, e - bits);
}

/* Reference result `ref` (double, from rounded inputs) against the op's output `got`: allow the
 * FP32 accumulation error (K u sum|products|) and one ulp of the output dtype. */
static int close_enough(enum amp_dtype out, double ref, double abs_sum, float got, int k)
{
    const double acc_err = (double)k * 0x1p-24 * abs_sum;
    return fabs((double)got - ref) <= acc_err + ulp_of(out, (float)ref);
}

static void test_linear_dtypes(enum amp_dtype xt, enum amp_dtype wt, enum amp_dtype ot,
                               enum amp_math math)
{
    enum { N = 5, K = 200, M = 7 };
    struct rng r;
    rng_seed(&r, 11);
    float x[N * K], w[M * K], b[M];
    for (int i = 0; i < N * K; i++)
        x[i] = rng_uniform(&r, -1, 1);
    for (int i = 0; i < M * K; i++)
        w[i] = rng_uniform(&r, -0.2f, 0.2f);
    for (int i = 0; i < M; i++)
        b[i] = rng_uniform(&r, -1, 1);
    struct amp_tensor tx = make(N * K, xt, MEM_ACTIVATIONS), tw = make(M * K, wt, MEM_WEIGHTS),
                      tb = make(M, wt, MEM_WEIGHTS), to = make(N * M, ot, MEM_ACTIVATIONS);
    fill(&tx, x);
    fill(&tw, w);
    fill(&tb, b);
    be.ops->linear_forward(be.ctx, &to, &tx, &tw, &tb, N, K, M, math);
    int ok = 1;
    for (int n = 0; n < N; n++)
        for (int j = 0; j < M; j++) {
            double ref = 0, abs_sum = 0;
            for (int k = 0; k < K; k++) {
                float a = get(&tx, (size_t)n * K + k), c = get(&tw, (size_t)j * K + k);
                if (math == AMP_MATH_TF32) {
                    a = xt == AMP_F32 ? tf32_round(a) : a;
                    c = wt == AMP_F32 ? tf32_round(c) : c;
                }
                ref += (double)a * c;
                abs_sum += fabs((double)a * c);
            }
            ref += get(&tb, (size_t)j);
            ok &= close_enough(ot, ref, abs_sum, get(&to, (size_t)n * M + j), K);
        }
    check(ok, "linear forward %s x %s -> %s%s matches the reference", dtype_name(xt),
          dtype_name(wt), dtype_name(ot), math == AMP_MATH_TF32 ? " (tf32)" : "");
    tensor_free(&be, &tx);
    tensor_free(&be, &tw);
    tensor_free(&be, &tb);
    tensor_free(&be, &to);
}

/* The CPU reference runs every geometry with a kernel and a stride of at least 1 and an output
 * of at least 1x1, and refuses the others with a reason. */
static void test_conv_supports(void)
{
    const struct conv_shape ok = { .n = 1, .c_in = 1, .h = 8, .w = 8, .c_out = 1, .kernel = 3,
                                   .stride = 1, .pad = 1 };
    char why[256] = "";
    check(be.ops->conv2d_supports != NULL && be.ops->conv2d_supports(be.ctx, &ok, why, sizeof why),
          "cpu conv2d_supports: 3x3, stride 1, padding 1 accepted");
    if (!be.ops->conv2d_supports)
        return;
    struct conv_shape good[7];
    for (int i = 0; i < 7; i++)
        good[i] = ok;
    good[0].kernel = 5, good[0].pad = 2;             /* 5x5 */
    good[1].stride = 2;                              /* stride 2 */
    good[2].kernel = 1, good[2].pad = 0, good[2].stride = 2; /* 1x1 stride 2 */
    good[3].kernel = 7, good[3].stride = 2, good[3].pad = 3, good[3].c_in = 3; /* the stem */
    good[4].kernel = 8, good[4].pad = 0;             /* the kernel covers the input: 1x1 out */
    good[5].h = 1, good[5].w = 2, good[5].kernel = 3, good[5].pad = 1, good[5].stride = 3;
    good[6].kernel = 2, good[6].pad = 4, good[6].h = 1, good[6].w = 1; /* padding only */
    for (int i = 0; i < 7; i++)
        check(be.ops->conv2d_supports(be.ctx, &good[i], why, sizeof why),
              "cpu conv2d_supports: %ux%u, stride %u, padding %u on %ux%u accepted (%s)",
              good[i].kernel, good[i].kernel, good[i].stride, good[i].pad, good[i].h, good[i].w,
              why);
    struct conv_shape bad[4];
    for (int i = 0; i < 4; i++)
        bad[i] = ok;
    bad[0].kernel = 0, bad[0].pad = 0;               /* no kernel */
    bad[1].stride = 0;                               /* no stride */
    bad[2].kernel = 9, bad[2].pad = 0;               /* the kernel exceeds the input */
    bad[3].w = 1, bad[3].pad = 0;                    /* ... in one dimension */
    for (int i = 0; i < 4; i++) {
        why[0] = '\0';
        check(!be.ops->conv2d_supports(be.ctx, &bad[i], why, sizeof why) &&
                  strstr(why, "the cpu backend runs convolutions with a kernel and a stride of "
                              "at least 1 and an output of at least 1x1") != NULL,
              "cpu conv2d_supports: %ux%u, stride %u, padding %u on %ux%u refused (%s)",
              bad[i].kernel, bad[i].kernel, bad[i].stride, bad[i].pad, bad[i].h, bad[i].w, why);
    }
}

static void test_conv_dtype(enum amp_dtype dt, enum amp_math math)
{
    const struct conv_shape s = { .n = 2, .c_in = 2, .h = 6, .w = 17, .c_out = 3, .kernel = 3,
                                  .stride = 1, .pad = 1 };
    const size_t xn = 2 * 2 * 6 * 17, yn = 2 * 3 * 6 * 17, wn = 3 * 2 * 9;
    struct rng r;
    rng_seed(&r, 5);
    float x[xn], w[wn], b[3];
    for (size_t i = 0; i < xn; i++)
        x[i] = rng_uniform(&r, 0, 1);
    for (size_t i = 0; i < wn; i++)
        w[i] = rng_uniform(&r, -0.3f, 0.3f);
    for (int i = 0; i < 3; i++)
        b[i] = rng_uniform(&r, -0.3f, 0.3f);
    struct amp_tensor tx = make(xn, dt, MEM_ACTIVATIONS), tw = make(wn, dt, MEM_WEIGHTS),
                      tb = make(3, dt, MEM_WEIGHTS), ty = make(yn, dt, MEM_ACTIVATIONS),
                      ws = make(be.ops->conv2d_workspace(be.ctx, &s, dt, AMP_MATH_F32) / 4, AMP_F32,
                                MEM_WORKSPACE);
    fill(&tx, x);
    fill(&tw, w);
    fill(&tb, b);
    be.ops->conv2d_forward(be.ctx, &ty, &tx, &tw, &tb, &ws, &s, math, 0);
    int ok = 1;
    for (int n = 0; n < 2; n++)
        for (int co = 0; co < 3; co++)
            for (int h = 0; h < 6; h++)
                for (int x0 = 0; x0 < 17; x0++) {
                    double ref = get(&tb, co), abs_sum = 0;
                    for (int ci = 0; ci < 2; ci++)
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                const int ih = h + ky - 1, iw = x0 + kx - 1;
                                if (ih < 0 || ih >= 6 || iw < 0 || iw >= 17)
                                    continue;
                                float a = get(&tx, (((size_t)n * 2 + ci) * 6 + ih) * 17 + iw);
                                float c = get(&tw, ((size_t)co * 2 + ci) * 9 + ky * 3 + kx);
                                if (math == AMP_MATH_TF32)
                                    a = tf32_round(a), c = tf32_round(c);
                                ref += (double)a * c;
                                abs_sum += fabs((double)a * c);
                            }
                    ok &= close_enough(dt, ref, abs_sum,
                                       get(&ty, (((size_t)n * 3 + co) * 6 + h) * 17 + x0), 18);
                }
    check(ok, "conv forward in %s%s matches the reference", dtype_name(dt),
          math == AMP_MATH_TF32 ? " (tf32)" : "");
    struct amp_tensor *all[] = { &tx, &tw, &tb, &ty, &ws };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        tensor_free(&be, all[i]);
}

/* TF32 mode really rounds: a product that differs between FP32 and TF32 inputs. */
static void test_tf32_rounds(void)
{
    struct amp_tensor x = make(16, AMP_F32, MEM_ACTIVATIONS), w = make(16, AMP_F32, MEM_WEIGHTS),
                      b = make(1, AMP_F32, MEM_WEIGHTS), o = make(1, AMP_F32, MEM_ACTIVATIONS);
    float xv[16] = { 1.0f + 0x1p-12f }, wv[16] = { 1.0f }, zero[1] = { 0 };
    fill(&x, xv);
    fill(&w, wv);
    fill(&b, zero);
    be.ops->linear_forward(be.ctx, &o, &x, &w, &b, 1, 16, 1, AMP_MATH_F32);
    const float exact = get(&o, 0);
    be.ops->linear_forward(be.ctx, &o, &x, &w, &b, 1, 16, 1, AMP_MATH_TF32);
    check(exact == 1.0f + 0x1p-12f && get(&o, 0) == 1.0f, "TF32 drops bits below 2^-10");
    struct amp_tensor *all[] = { &x, &w, &b, &o };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        tensor_free(&be, all[i]);
}

/* The vector loads the kernels use agree bit for bit with lowp.c's definitions. */
static void test_vector_conversions(void)
{
    int f16_ok = 1, bf16_ok = 1, vn_f16_ok = 1, vn_bf16_ok = 1;
    for (uint32_t base = 0; base < 65536; base += VF_LANES) {
        uint16_t bits[VF_LANES];
        for (int i = 0; i < VF_LANES; i++)
            bits[i] = (uint16_t)(base + (uint32_t)i);
        const vf h = vf_load_f16(bits), b = vf_load_bf16(bits);
        for (int i = 0; i < VF_LANES; i++) {
            const float hs = f16_to_f32(bits[i]), bs = bf16_to_f32(bits[i]);
            f16_ok &= memcmp(&h[i], &hs, 4) == 0;
            bf16_ok &= memcmp(&b[i], &bs, 4) == 0;
        }
        for (int v = 0; v < VF_LANES; v += VN) { /* the machine-width loads (cpu_linear.c) */
            const vn hn = vn_load_f16(bits + v), bn = vn_load_bf16(bits + v);
            for (int i = 0; i < VN; i++) {
                const float hs = f16_to_f32(bits[v + i]), bs = bf16_to_f32(bits[v + i]);
                vn_f16_ok &= memcmp(&hn[i], &hs, 4) == 0;
                vn_bf16_ok &= memcmp(&bn[i], &bs, 4) == 0;
            }
        }
    }
    check(f16_ok, "vf_load_f16 equals f16_to_f32 on all 65,536 patterns");
    check(bf16_ok, "vf_load_bf16 equals bf16_to_f32 on all 65,536 patterns");
    check(vn_f16_ok, "vn_load_f16 equals f16_to_f32 on all 65,536 patterns");
    check(vn_bf16_ok, "vn_load_bf16 equals bf16_to_f32 on all 65,536 patterns");

    struct rng r;
    rng_seed(&r, 99);
    int tf32_ok = 1;
    for (int iter = 0; iter < 200000; iter++) {
        float in[VF_LANES];
        for (int i = 0; i < VF_LANES; i++) {
            uint32_t u = (uint32_t)rng_next(&r);
            if (i % 4 == 1) /* exact ties, odd and even kept bit */
                u = (u & ~0x1FFFu) | 0x1000u;
            if (i % 4 == 2) /* inf and NaN patterns */
                u |= 0x7F800000u;
            memcpy(&in[i], &u, 4);
        }
        const vf out = vf_round_tf32(vf_load(in));
        for (int i = 0; i < VF_LANES; i++) {
            const float want = tf32_round(in[i]);
            tf32_ok &= memcmp(&out[i], &want, 4) == 0;
        }
    }
    check(tf32_ok, "vf_round_tf32 equals tf32_round on 3.2M patterns with ties and specials");

    /* vn_transpose moves bits: NaN payloads, -0 and subnormals included. */
    vn m[VN];
    uint32_t want[VN][VN];
    for (int i = 0; i < VN; i++)
        for (int k = 0; k < VN; k++) {
            want[k][i] = (uint32_t)rng_next(&r) | (k == i ? 0x7F800001u : 0u);
            memcpy(&m[i][k], &want[k][i], 4);
        }
    vn_transpose(m);
    int tr_ok = 1;
    for (int i = 0; i < VN; i++)
        for (int k = 0; k < VN; k++)
            tr_ok &= memcmp(&m[i][k], &want[i][k], 4) == 0;
    check(tr_ok, "vn_transpose transposes a %d x %d block bit for bit", VN, VN);
}

int main(void)
{
    if (backend_open(&be, "cpu", &(struct backend_options){ .threads = 2 }) != AMP_OK) {
        fprintf(stderr, "%s\n", amp_last_error());
        return 1;
    }
    test_vector_conversions();
    test_scaler_rules();
    test_skip_path();
    test_underflow();
    test_swallowed();
    const enum amp_dtype dts[] = { AMP_F16, AMP_BF16 };
    for (int i = 0; i < 2; i++) {
        test_linear_dtypes(dts[i], dts[i], dts[i], AMP_MATH_F32);
        test_linear_dtypes(dts[i], AMP_F32, AMP_F32, AMP_MATH_F32);
        test_conv_dtype(dts[i], AMP_MATH_F32);
    }
    test_linear_dtypes(AMP_F32, AMP_F32, AMP_F32, AMP_MATH_TF32);
    test_conv_dtype(AMP_F32, AMP_MATH_TF32);
    test_conv_supports();
    test_tf32_rounds();
    check(be.mem.current_total == 0, "every tensor freed");
    backend_close(&be);
    return check_summary();
}
