/* Op parity suite for the CUDA backend, in the style of ggml's test-backend-ops: every op of the
 * backend table runs on the CUDA backend and on the CPU reference with the same input bits, over
 * several shapes and every dtype combination the recipes use, and the outputs are compared:
 *   - NaN/inf agreement element by element (a NaN where the reference has one, the same inf);
 *   - the normalized mean squared error sum((gpu - ref)^2) / sum(ref^2) over the finite
 *     elements within a per-op, per-output-dtype limit (docs/CUDA.md explains the limits:
 *     elementwise ops are exact, conv/GEMM differ only by summation order and, for FP16/BF16
 *     outputs, by an occasional one-ulp rounding difference);
 *   - the numerics counters (rounded elements exactly; underflow/overflow exactly for
 *     elementwise ops, within a small tolerance for conv/GEMM);
 *   - guard bytes around every tensor on both backends, unchanged after the op (out-of-bounds
 *     writes).
 * Every result line also gives exact=, the fraction of output elements whose stored bits are
 * identical on both backends (truncated to 4 decimals: 1.0000 means all), and a summary per op
 * ends the run. Ops: cast, ReLU, unscale, the scaler update, SGD, softmax cross-entropy (FP32
 * and FP16/BF16 compute), max and global average pooling, batch norm (training and evaluation,
 * FP32 or low-precision statistics), add, the convolution (3x3/5x5/1x1, strides 1 and 2, with
 * and without bias) and the FC layer.
 * Plus: the fused unscale/SGD queue on a model-like sequence (with and without a skipped step),
 * CUDA Graph capture and replay against eager CPU steps (the seed step's loss and optimizer, and
 * a step of pooling, batch norm and adds), and bitwise repeatability of the conv and FC ops
 * under deterministic algorithms.
 * Exits 77 (ctest: skipped) when no CUDA device is usable. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "registry.h"
#include "error.h"
#include "lowp.h"
#include "rng.h"
#include "scaler.h"

enum { GUARD = 256, REF = 0, GPU = 1 };
#define GUARD_BYTE 0xA5

static struct backend B[2];
static int passed, failed;
static struct rng R;
static const struct backend_options gpu_opts = { .threads = 0, .deterministic = 0, .graphs = 1 };

static void result(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A failing call (the CUDA backend's errors are sticky and surface at the next download) ends
 * the current case: it is reported, the CUDA backend is reopened, and the suite goes on. */
static jmp_buf case_jmp;
static int in_case;

static void die(const char *what)
{
    if (in_case) {
        result(0, "%s: %s", what, amp_last_error());
        longjmp(case_jmp, 1);
    }
    fprintf(stderr, "test_backend_ops: %s: %s\n", what, amp_last_error());
    exit(1);
}

/* A kernel fault leaves the process's CUDA context unusable: every later case would fail too. */
static int sticky(const char *err)
{
    static const char *const faults[] = { "illegal memory access", "unspecified launch failure",
                                          "misaligned address", "illegal instruction",
                                          "device-side assert" };
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
        if (strstr(err, faults[i]))
            return 1;
    return 0;
}

static void recover(void)
{
    in_case = 0;
    if (sticky(amp_last_error())) {
        printf("test_backend_ops: a kernel fault leaves the CUDA context unusable; stopping here "
               "(run it under compute-sanitizer to find the access)\n%d passed, %d failed\n",
               passed, failed);
        exit(1);
    }
    printf("  (case abandoned: reopening the CUDA backend)\n");
    backend_close(&B[GPU]);
    if (backend_open(&B[GPU], "cuda", &gpu_opts) != AMP_OK)
        die("reopen cuda");
}

/* Runs `call` as one case (tensors of an abandoned case are leaked: it is a test). */
#define CASE(call)                                                                                \
    do {                                                                                          \
        if (setjmp(case_jmp) == 0) {                                                              \
            in_case = 1;                                                                          \
            call;                                                                                 \
            in_case = 0;                                                                          \
        } else {                                                                                  \
            recover();                                                                            \
        }                                                                                         \
    } while (0)

static void result(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", ok ? "  OK  " : "  FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (ok)
        passed++;
    else
        failed++;
}

/* ---- tensors on both backends, with guards ---- */

struct pt {
    struct amp_tensor t[2];
    void *raw[2];
    size_t bytes;
};

static void to_bits(void *dst, const float *src, size_t n, enum amp_dtype dt)
{
    switch (dt) {
    case AMP_F32: memcpy(dst, src, n * sizeof(float)); break;
    case AMP_F16: f16_from_f32_array(dst, src, n, NULL); break;
    case AMP_BF16: bf16_from_f32_array(dst, src, n, NULL); break;
    case AMP_I32:
        for (size_t i = 0; i < n; i++)
            ((int32_t *)dst)[i] = (int32_t)src[i];
        break;
    case AMP_U8:
        for (size_t i = 0; i < n; i++)
            ((uint8_t *)dst)[i] = (uint8_t)src[i];
        break;
    }
}

static void from_bits(float *dst, const void *src, size_t n, enum amp_dtype dt)
{
    switch (dt) {
    case AMP_F32: memcpy(dst, src, n * sizeof(float)); break;
    case AMP_F16:
        for (size_t i = 0; i < n; i++)
            dst[i] = f16_to_f32(((const amp_f16 *)src)[i]);
        break;
    case AMP_BF16:
        for (size_t i = 0; i < n; i++)
            dst[i] = bf16_to_f32(((const amp_bf16 *)src)[i]);
        break;
    case AMP_I32:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)((const int32_t *)src)[i];
        break;
    case AMP_U8:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)((const uint8_t *)src)[i];
        break;
    }
}

/* A tensor of numel elements on both backends holding vals (rounded to dt), or zeros. */
static struct pt pt_new(size_t numel, enum amp_dtype dt, enum mem_category cat, const float *vals)
{
    struct pt p;
    memset(&p, 0, sizeof p);
    p.bytes = numel * dtype_size(dt);
    const size_t total = p.bytes + 2 * GUARD;
    unsigned char *host = malloc(total);
    if (!host)
        die("host memory");
    memset(host, GUARD_BYTE, total);
    if (vals)
        to_bits(host + GUARD, vals, numel, dt);
    else
        memset(host + GUARD, 0, p.bytes);
    for (int b = 0; b < 2; b++) {
        if (B[b].ops->alloc(B[b].ctx, &p.raw[b], total) != AMP_OK)
            die("alloc");
        if (B[b].ops->upload(B[b].ctx, p.raw[b], host, total) != AMP_OK)
            die("upload");
        p.t[b] = (struct amp_tensor){ .data = (unsigned char *)p.raw[b] + GUARD, .numel = numel,
                                      .dtype = dt, .category = cat };
    }
    free(host);
    return p;
}

static void pt_free(struct pt *p)
{
    for (int b = 0; b < 2; b++)
        if (p->raw[b])
            B[b].ops->free(B[b].ctx, p->raw[b]);
    memset(p, 0, sizeof *p);
}

/* A case's teardown: its tensors (NULL-terminated) and its host inputs (NULL-terminated). */
static void case_free(struct pt *const *pts, void *const *host)
{
    for (; *pts; pts++)
        pt_free(*pts);
    for (; *host; host++)
        free(*host);
}

static void pt_set(struct pt *p, const float *vals)
{
    void *bits = malloc(p->bytes ? p->bytes : 1);
    if (!bits)
        die("host memory");
    to_bits(bits, vals, p->t[0].numel, p->t[0].dtype);
    for (int b = 0; b < 2; b++)
        if (B[b].ops->upload(B[b].ctx, p->t[b].data, bits, p->bytes) != AMP_OK)
            die("upload");
    free(bits);
}

/* Raw bytes into both copies (a struct loss_scaler, labels). */
static void pt_set_raw(struct pt *p, const void *bytes, size_t n)
{
    for (int b = 0; b < 2; b++)
        if (B[b].ops->upload(B[b].ctx, p->t[b].data, bytes, n) != AMP_OK)
            die("upload");
}

static void pt_get_raw(struct pt *p, int b, void *bytes, size_t n)
{
    if (B[b].ops->download(B[b].ctx, bytes, p->t[b].data, n) != AMP_OK)
        die("download");
}

/* Backend b's raw element bytes (malloc'ed); checks the guards (a failure names `what`). */
static unsigned char *pt_bits(struct pt *p, int b, const char *what)
{
    const size_t total = p->bytes + 2 * GUARD;
    unsigned char *host = malloc(total);
    unsigned char *bits = malloc(p->bytes ? p->bytes : 1);
    if (!host || !bits)
        die("host memory");
    if (B[b].ops->download(B[b].ctx, host, p->raw[b], total) != AMP_OK)
        die("download");
    size_t bad = 0;
    for (size_t i = 0; i < GUARD; i++)
        bad += (host[i] != GUARD_BYTE) + (host[GUARD + p->bytes + i] != GUARD_BYTE);
    if (bad)
        result(0, "%s: %zu guard bytes overwritten on %s", what, bad, b == GPU ? "cuda" : "cpu");
    memcpy(bits, host + GUARD, p->bytes);
    free(host);
    return bits;
}

/* Backend b's values as FP32; checks the guards (a failure names `what`). */
static float *pt_get(struct pt *p, int b, const char *what)
{
    unsigned char *bits = pt_bits(p, b, what);
    float *out = malloc((p->t[b].numel ? p->t[b].numel : 1) * sizeof(float));
    if (!out)
        die("host memory");
    from_bits(out, bits, p->t[b].numel, p->t[b].dtype);
    free(bits);
    return out;
}

/* ---- comparisons ---- */

/* The fraction of the elements bit-identical on both backends, per op (the first word of the
 * result's label), for the summary at the end. */
enum { MAX_OPS = 64 };
static struct {
    char op[32];
    double min, sum;
    unsigned long long cases;
    unsigned long long elems, same;
} ops_exact[MAX_OPS];
static int n_ops_exact;

/* The fraction truncated to 4 decimals (1.0000 only when every element is identical). */
static double exact4(size_t same, size_t n)
{
    return n ? floor((double)same / (double)n * 1e4) / 1e4 : 1.0;
}

static void exact_record(const char *what, size_t same, size_t n)
{
    char op[32];
    size_t k = 0;
    while (what[k] && what[k] != ' ' && what[k] != ':' && k < sizeof op - 1) {
        op[k] = what[k];
        k++;
    }
    op[k] = '\0';
    int i = 0;
    while (i < n_ops_exact && strcmp(ops_exact[i].op, op) != 0)
        i++;
    if (i == n_ops_exact) {
        if (n_ops_exact == MAX_OPS)
            return;
        n_ops_exact++;
        memset(&ops_exact[i], 0, sizeof ops_exact[i]);
        snprintf(ops_exact[i].op, sizeof ops_exact[i].op, "%s", op);
        ops_exact[i].min = 1.0;
    }
    const double f = n ? (double)same / (double)n : 1.0;
    if (f < ops_exact[i].min)
        ops_exact[i].min = f;
    ops_exact[i].sum += f;
    ops_exact[i].cases++;
    ops_exact[i].elems += n;
    ops_exact[i].same += same;
}

static void exact_summary(void)
{
    printf("bit-identical fraction by op (cases: min over cases / mean over cases / over all "
           "elements):\n");
    for (int i = 0; i < n_ops_exact; i++)
        printf("  %-20s %4llu cases  min %.4f  mean %.4f  all %.4f (%llu elements)\n",
               ops_exact[i].op, ops_exact[i].cases,
               floor(ops_exact[i].min * 1e4) / 1e4,
               floor(ops_exact[i].sum / (double)ops_exact[i].cases * 1e4) / 1e4,
               exact4(ops_exact[i].same, ops_exact[i].elems), ops_exact[i].elems);
}

/* NaN/inf agreement and the normalized MSE of gpu against ref; also the fraction of elements
 * whose stored bits are identical (exact=). */
static int compare(const char *what, struct pt *p, double limit)
{
    unsigned char *rb = pt_bits(p, REF, what), *gb = pt_bits(p, GPU, what);
    const size_t n = p->t[0].numel, es = dtype_size(p->t[0].dtype);
    float *ref = malloc((n ? n : 1) * sizeof *ref), *got = malloc((n ? n : 1) * sizeof *got);
    if (!ref || !got)
        die("host memory");
    from_bits(ref, rb, n, p->t[0].dtype);
    from_bits(got, gb, n, p->t[0].dtype);
    double num = 0.0, den = 0.0;
    size_t special = 0, first = (size_t)-1, same_bits = 0;
    for (size_t i = 0; i < n; i++) {
        same_bits += memcmp(rb + i * es, gb + i * es, es) == 0;
        const float r = ref[i], g = got[i];
        if (isnan(r) || isnan(g) || isinf(r) || isinf(g)) {
            const int same = (isnan(r) && isnan(g)) || r == g;
            if (!same) {
                special++;
                if (first == (size_t)-1)
                    first = i;
            }
            continue;
        }
        num += ((double)g - r) * ((double)g - r);
        den += (double)r * r;
    }
    const double nmse = den > 0.0 ? num / den : num;
    const int ok = special == 0 && nmse <= limit;
    exact_record(what, same_bits, n);
    if (special)
        result(ok, "%s: %zu NaN/inf disagreements (first at %zu: cpu %g, cuda %g), nmse %.3g "
               "exact=%.4f", what, special, first, (double)ref[first], (double)got[first], nmse,
               exact4(same_bits, n));
    else
        result(ok, "%s: nmse %.3g (limit %.3g, %zu elements) exact=%.4f", what, nmse, limit, n,
               exact4(same_bits, n));
    free(ref);
    free(got);
    free(rb);
    free(gb);
    return ok;
}

static void counts_reset(void)
{
    struct numerics_counts c;
    for (int b = 0; b < 2; b++)
        if (B[b].ops->read_counts(B[b].ctx, &c) != AMP_OK)
            die("read_counts");
}

static int near(uint64_t a, uint64_t b, uint64_t rounded, int exact)
{
    if (exact)
        return a == b;
    const uint64_t d = a > b ? a - b : b - a;
    return d <= 2 + rounded / 100;
}

/* The counters since the last reset: rounded exactly; underflow, overflow, updates and swallowed
 * exactly or (conv/GEMM: the exact value depends on summation order) within 2 + 1%. */
static void counts_compare(const char *what, int exact)
{
    struct numerics_counts c[2];
    for (int b = 0; b < 2; b++)
        if (B[b].ops->read_counts(B[b].ctx, &c[b]) != AMP_OK)
            die("read_counts");
    int ok = 1;
    char detail[512] = "";
    size_t pos = 0;
    for (int k = 0; k < MEM_NCATEGORIES; k++) {
        const int same = c[0].rounded[k] == c[1].rounded[k] &&
                         near(c[0].underflow[k], c[1].underflow[k], c[0].rounded[k], exact) &&
                         near(c[0].overflow[k], c[1].overflow[k], c[0].rounded[k], exact);
        if (c[0].rounded[k] || c[1].rounded[k] || !same) {
            const int w = snprintf(detail + pos, sizeof detail - pos,
                                   " %s r%llu/%llu u%llu/%llu o%llu/%llu", mem_category_name(k),
                                   (unsigned long long)c[0].rounded[k],
                                   (unsigned long long)c[1].rounded[k],
                                   (unsigned long long)c[0].underflow[k],
                                   (unsigned long long)c[1].underflow[k],
                                   (unsigned long long)c[0].overflow[k],
                                   (unsigned long long)c[1].overflow[k]);
            if (w > 0 && pos + (size_t)w < sizeof detail)
                pos += (size_t)w;
        }
        ok &= same;
    }
    const int upd = c[0].updates == c[1].updates &&
                    near(c[0].swallowed, c[1].swallowed, c[0].updates, exact);
    ok &= upd;
    result(ok, "%s counters (cpu/cuda):%s updates %llu/%llu swallowed %llu/%llu", what,
           pos ? detail : " none", (unsigned long long)c[0].updates,
           (unsigned long long)c[1].updates, (unsigned long long)c[0].swallowed,
           (unsigned long long)c[1].swallowed);
}

/* NMSE limits by output dtype and math (docs/CUDA.md). */
static double limit_for(enum amp_dtype out, enum amp_math math)
{
    switch (out) {
    case AMP_F16: return 1e-5;
    case AMP_BF16: return 1e-4;
    default: return math == AMP_MATH_TF32 ? 1e-5 : 1e-9;
    }
}

/* ---- inputs ---- */

static float *uniform(size_t n, float lo, float hi)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        die("host memory");
    for (size_t i = 0; i < n; i++)
        v[i] = rng_uniform(&R, lo, hi);
    return v;
}

/* Magnitudes from 2^-40 to 2^20, both signs, and every boundary of FP16/BF16 rounding. */
static float *wide(size_t n)
{
    static const float sp[] = { 0.0f, -0.0f, INFINITY, -INFINITY, NAN, 65504.0f, 65519.0f,
                                65520.0f, -70000.0f, 0x1p-24f, 0x1p-25f, 0x1.8p-25f, -0x1p-26f,
                                1e-30f, 3.4e38f, 0x1.ffp127f, 1.0f, -1.0f, 0x1p-133f, 0x1p-149f,
                                0x1.002p0f, 0x1.006p0f, -0x1.0101p0f };
    float *v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        die("host memory");
    for (size_t i = 0; i < n; i++) {
        if (i % 5 == 0) {
            v[i] = sp[(i / 5) % (sizeof sp / sizeof sp[0])];
            continue;
        }
        const float mag = exp2f(rng_uniform(&R, -40.0f, 20.0f));
        v[i] = rng_uniform(&R, 0.0f, 1.0f) < 0.5f ? -mag : mag;
    }
    return v;
}

static const enum amp_dtype FLOATS[] = { AMP_F32, AMP_F16, AMP_BF16 };

/* ---- elementwise ops ---- */

static void test_cast(void)
{
    const size_t n = 5000;
    for (int s = 0; s < 3; s++)
        for (int d = 0; d < 3; d++) {
            float *v = wide(n);
            struct pt src = pt_new(n, FLOATS[s], MEM_WEIGHTS, v);
            struct pt dst = pt_new(n, FLOATS[d], MEM_WEIGHT_COPIES, NULL);
            counts_reset();
            for (int b = 0; b < 2; b++)
                B[b].ops->cast(B[b].ctx, &dst.t[b], &src.t[b]);
            char what[64];
            snprintf(what, sizeof what, "cast %s -> %s", dtype_name(FLOATS[s]),
                     dtype_name(FLOATS[d]));
            compare(what, &dst, 0.0);
            counts_compare(what, 1);
            pt_free(&src);
            pt_free(&dst);
            free(v);
        }
}

static void test_relu(void)
{
    const size_t sizes[] = { 1, 7, 4096, 10003 };
    for (int d = 0; d < 3; d++)
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            const size_t n = sizes[si];
            float *v = wide(n), *g = wide(n);
            struct pt x = pt_new(n, FLOATS[d], MEM_ACTIVATIONS, v);
            struct pt y = pt_new(n, FLOATS[d], MEM_ACTIVATIONS, NULL);
            struct pt dy = pt_new(n, FLOATS[d], MEM_ACTIVATION_GRADS, g);
            struct pt dx = pt_new(n, FLOATS[d], MEM_ACTIVATION_GRADS, NULL);
            for (int b = 0; b < 2; b++) {
                B[b].ops->relu_forward(B[b].ctx, &y.t[b], &x.t[b]);
                B[b].ops->relu_backward(B[b].ctx, &dx.t[b], &dy.t[b], &y.t[b]);
                /* in place, as the model calls them */
                B[b].ops->relu_forward(B[b].ctx, &x.t[b], &x.t[b]);
                B[b].ops->relu_backward(B[b].ctx, &dy.t[b], &dy.t[b], &x.t[b]);
            }
            char what[96];
            snprintf(what, sizeof what, "relu_forward %s n=%zu", dtype_name(FLOATS[d]), n);
            compare(what, &y, 0.0);
            snprintf(what, sizeof what, "relu_backward %s n=%zu", dtype_name(FLOATS[d]), n);
            compare(what, &dx, 0.0);
            snprintf(what, sizeof what, "relu in place %s n=%zu", dtype_name(FLOATS[d]), n);
            compare(what, &x, 0.0);
            compare(what, &dy, 0.0);
            pt_free(&x);
            pt_free(&y);
            pt_free(&dy);
            pt_free(&dx);
            free(v);
            free(g);
        }
}

static struct pt scaler_new(struct loss_scaler s)
{
    const size_t words = (sizeof s + sizeof(int32_t) - 1) / sizeof(int32_t);
    struct pt p = pt_new(words, AMP_I32, MEM_OPTIMIZER, NULL);
    pt_set_raw(&p, &s, sizeof s);
    return p;
}

static int scalers_equal(struct pt *p, const char *what)
{
    struct loss_scaler s[2];
    for (int b = 0; b < 2; b++)
        pt_get_raw(p, b, &s[b], sizeof s[b]);
    const int ok = memcmp(&s[0], &s[1], sizeof s[0]) == 0;
    exact_record("scaler", (size_t)ok, 1);
    result(ok, "%s: scaler cpu scale %g tracker %d found_inf %d skipped %d / cuda scale %g "
           "tracker %d found_inf %d skipped %d exact=%.4f", what, (double)s[0].scale,
           s[0].growth_tracker, s[0].found_inf, s[0].last_skipped, (double)s[1].scale,
           s[1].growth_tracker, s[1].found_inf, s[1].last_skipped, ok ? 1.0 : 0.0);
    return ok;
}

static void test_unscale(void)
{
    const size_t n = 6000;
    for (int d = 0; d < 3; d++)
        for (int with_inf = 0; with_inf < 2; with_inf++) {
            float *v = uniform(n, -3000.0f, 3000.0f);
            for (size_t i = 0; i < n; i += 97)
                v[i] *= 1e-6f; /* some underflow after unscaling */
            if (with_inf)
                v[n / 2] = INFINITY;
            struct pt g = pt_new(n, FLOATS[d], MEM_WEIGHT_GRADS, v);
            struct pt s = scaler_new(scaler_make(65536.0f, 1, 2000, 0.0f, 0.0f));
            counts_reset();
            for (int b = 0; b < 2; b++)
                B[b].ops->unscale(B[b].ctx, &g.t[b], &s.t[b]);
            char what[64];
            snprintf(what, sizeof what, "unscale %s%s", dtype_name(FLOATS[d]),
                     with_inf ? " with inf" : "");
            compare(what, &g, 0.0);
            counts_compare(what, 1);
            scalers_equal(&s, what);
            pt_free(&g);
            pt_free(&s);
            free(v);
        }
}

static void test_scaler_update(void)
{
    /* Scripted inf/clean sequences with a short growth interval and bounds. */
    const int pattern[] = { 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0 };
    const struct loss_scaler cfg[] = { scaler_make(1024.0f, 1, 3, 0.0f, 0.0f),
                                       scaler_make(4.0f, 1, 2, 2.0f, 8.0f),
                                       scaler_make(3e38f, 1, 1, 0.0f, 0.0f),
                                       scaler_make(128.0f, 0, 2, 0.0f, 0.0f) };
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        struct pt s = scaler_new(cfg[c]);
        int ok = 1;
        size_t same = 0;
        for (size_t i = 0; i < sizeof pattern / sizeof pattern[0]; i++) {
            struct loss_scaler st[2];
            for (int b = 0; b < 2; b++) {
                pt_get_raw(&s, b, &st[b], sizeof st[b]);
                st[b].found_inf = pattern[i];
                B[b].ops->upload(B[b].ctx, s.t[b].data, &st[b], sizeof st[b]);
                B[b].ops->scaler_update(B[b].ctx, &s.t[b]);
                pt_get_raw(&s, b, &st[b], sizeof st[b]);
            }
            const int eq = memcmp(&st[0], &st[1], sizeof st[0]) == 0;
            ok &= eq;
            same += (size_t)eq;
        }
        char what[64];
        const size_t steps = sizeof pattern / sizeof pattern[0];
        snprintf(what, sizeof what, "scaler_update config %zu (%zu steps)", c, steps);
        exact_record(what, same, steps);
        result(ok, "%s: identical state after every step exact=%.4f", what, exact4(same, steps));
        pt_free(&s);
    }
}

/* ---- FP8 quantization ---- */

/* The states of both backends: configuration, scale, history position, counts and amax exactly;
 * the SQNR sums to summation order (the CPU sums in fixed pieces, the GPU per block). */
static int fp8_states_equal(struct pt *st, struct pt *hist, const char *what)
{
    struct fp8_tensor_state s[2];
    for (int b = 0; b < 2; b++)
        pt_get_raw(st, b, &s[b], sizeof s[b]);
    const double tol = 1e-9;
#define SAME_SUM(a, b) ((isnan(a) && isnan(b)) || (a) == (b) || fabs((a) - (b)) <= tol * fabs(a))
    int ok = s[0].scale == s[1].scale && s[0].history_pos == s[1].history_pos &&
             s[0].last_scale == s[1].last_scale && s[0].last_amax == s[1].last_amax &&
             s[0].n == s[1].n && s[0].saturated == s[1].saturated &&
             s[0].underflow == s[1].underflow && s[0].nonfinite == s[1].nonfinite &&
             SAME_SUM(s[0].signal, s[1].signal) && SAME_SUM(s[0].noise, s[1].noise);
#undef SAME_SUM
    if (hist) {
        const size_t bytes = hist->bytes;
        unsigned char *h0 = pt_bits(hist, REF, what), *h1 = pt_bits(hist, GPU, what);
        ok &= memcmp(h0, h1, bytes) == 0;
        free(h0);
        free(h1);
    }
    exact_record("fp8_state", (size_t)ok, 1);
    result(ok, "%s: state cpu scale %g next %g amax %g sat %llu uf %llu / cuda scale %g next %g "
           "amax %g sat %llu uf %llu exact=%.4f", what, (double)s[0].last_scale,
           (double)s[0].scale, (double)s[0].last_amax, (unsigned long long)s[0].saturated,
           (unsigned long long)s[0].underflow, (double)s[1].last_scale, (double)s[1].scale,
           (double)s[1].last_amax, (unsigned long long)s[1].saturated,
           (unsigned long long)s[1].underflow, ok ? 1.0 : 0.0);
    return ok;
}

/* Delayed and current scaling, E4M3 and E5M2, FP32, BF16 and FP16 sources with values that
 * saturate and underflow: three training quantizations (the delayed scale moving with the
 * history) and an evaluation, each bit for bit; then MX blocks (floor and rceil, FP32 and BF16
 * sources, every kind of layout). */
static void test_fp8_quantize(void)
{
    const size_t n = 50021;
    const enum fp8_scaling scalings[] = { FP8_SCALING_DELAYED, FP8_SCALING_CURRENT };
    const enum fp8_format formats[] = { FP8_E4M3, FP8_E5M2 };
    const enum amp_dtype srcs[] = { AMP_F32, AMP_BF16, AMP_F16 };
    for (int k = 0; k < 2; k++)
        for (int f = 0; f < 2; f++)
            for (int d = 0; d < 3; d++) {
                struct fp8_tensor_state init = fp8_state_make(formats[f], 4, MX_SCALE_RCEIL, 0);
                struct pt st = pt_new(sizeof init / sizeof(int32_t), AMP_I32, MEM_OPTIMIZER, NULL);
                pt_set_raw(&st, &init, sizeof init);
                struct pt hist = pt_new(4, AMP_F32, MEM_OPTIMIZER, NULL);
                struct pt dst = pt_new(n, AMP_F32, MEM_ACTIVATIONS, NULL);
                for (int step = 0; step < 4; step++) {
                    /* Values around 1 with a spread that grows each step, some saturating at
                     * the previous step's scale, some far below it. */
                    float *v = uniform(n, -1.0f, 1.0f);
                    for (size_t i = 0; i < n; i++)
                        v[i] *= i % 7 == 0 ? 1e-7f : i % 11 == 0 ? (float)(4 << step) : 1.0f;
                    if (step == 2) /* a NaN: delayed scaling keeps its scale */
                        v[n / 3] = NAN;
                    struct pt src = pt_new(n, srcs[d], MEM_ACTIVATIONS, v);
                    const int train = step < 3;
                    for (int b = 0; b < 2; b++)
                        B[b].ops->fp8_quantize(B[b].ctx, &dst.t[b], &src.t[b], scalings[k],
                                               &st.t[b], &hist.t[b], train);
                    char what[80];
                    snprintf(what, sizeof what, "fp8_quantize %s %s from %s, %s %d",
                             k ? "current" : "delayed", fp8_format_name(formats[f]),
                             dtype_name(srcs[d]), train ? "training step" : "evaluation",
                             step + 1);
                    compare(what, &dst, 0.0);
                    fp8_states_equal(&st, k == 0 ? &hist : NULL, what);
                    pt_free(&src);
                    free(v);
                }
                pt_free(&st);
                pt_free(&hist);
                pt_free(&dst);
            }
    /* MX layouts (fp8_mx_layout): rows with a partial last block, channel blocks, a batch's
     * columns (mx_len 0) and a weight's columns; the third number: outer slices (for the batch's
     * columns, its length). */
    const enum mx_scale_rounding rs[] = { MX_SCALE_FLOOR, MX_SCALE_RCEIL };
    const uint32_t lay[][3] = { { 784, 1, 37 }, { 150, 1, 37 }, { 40, 1, 37 },
                                { 37, 49, 3 },  { 0, 45, 70 }, { 70, 130, 1 } };
    for (int k = 0; k < 2; k++)
        for (int f = 0; f < 2; f++)
            for (int r = 0; r < (int)(sizeof lay / sizeof lay[0]); r++)
                for (int d = 0; d < 2; d++) {
                    const size_t m = (size_t)lay[r][2] * (lay[r][0] ? lay[r][0] : 1) * lay[r][1];
                    float *v = wide(m);
                    struct pt src = pt_new(m, srcs[d], MEM_ACTIVATIONS, v);
                    struct pt dst = pt_new(m, AMP_F32, MEM_ACTIVATIONS, NULL);
                    struct fp8_tensor_state init = fp8_state_make(formats[f], 1, rs[k], lay[r][0]);
                    init.mx_inner = lay[r][1];
                    struct pt st = pt_new(sizeof init / sizeof(int32_t), AMP_I32, MEM_OPTIMIZER,
                                          NULL);
                    pt_set_raw(&st, &init, sizeof init);
                    for (int b = 0; b < 2; b++)
                        B[b].ops->fp8_quantize(B[b].ctx, &dst.t[b], &src.t[b], FP8_SCALING_MX,
                                               &st.t[b], NULL, 1);
                    char what[96];
                    snprintf(what, sizeof what, "fp8_quantize mx %s %s from %s, layout len %u "
                             "inner %u x %u", k ? "rceil" : "floor", fp8_format_name(formats[f]),
                             dtype_name(srcs[d]), lay[r][0], lay[r][1], lay[r][2]);
                    compare(what, &dst, 0.0);
                    fp8_states_equal(&st, NULL, what);
                    pt_free(&src);
                    pt_free(&dst);
                    pt_free(&st);
                    free(v);
                }
}

struct sgd_case {
    const char *name;
    enum amp_dtype w, v, g, copy; /* copy AMP_I32: none */
    int scaler;                   /* 0 none, 1 clean, 2 found_inf */
};

static void test_sgd(void)
{
    static const struct sgd_case cases[] = {
        { "fp32", AMP_F32, AMP_F32, AMP_F32, AMP_I32, 0 },
        { "fp32 master + fp16 copy", AMP_F32, AMP_F32, AMP_F32, AMP_F16, 1 },
        { "fp32 master + bf16 copy", AMP_F32, AMP_F32, AMP_F32, AMP_BF16, 0 },
        { "fp16-pure", AMP_F16, AMP_F16, AMP_F16, AMP_I32, 1 },
        { "bf16 weights", AMP_BF16, AMP_F32, AMP_BF16, AMP_I32, 0 },
        { "skipped step", AMP_F32, AMP_F32, AMP_F32, AMP_F16, 2 },
    };
    const size_t n = 9000;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const struct sgd_case *k = &cases[c];
        float *w = uniform(n, -1.0f, 1.0f), *v = uniform(n, -0.1f, 0.1f),
              *g = uniform(n, -1.0f, 1.0f);
        for (size_t i = 0; i < n; i += 3)
            g[i] *= 1e-4f; /* small updates: some are swallowed by FP16 weights */
        struct pt W = pt_new(n, k->w, MEM_WEIGHTS, w);
        struct pt V = pt_new(n, k->v, MEM_OPTIMIZER, v);
        struct pt G = pt_new(n, k->g, MEM_WEIGHT_GRADS, g);
        struct pt C;
        memset(&C, 0, sizeof C);
        if (k->copy != AMP_I32)
            C = pt_new(n, k->copy, MEM_WEIGHT_COPIES, NULL);
        struct loss_scaler sc = scaler_make(1024.0f, 1, 2000, 0.0f, 0.0f);
        sc.found_inf = k->scaler == 2;
        struct pt S;
        memset(&S, 0, sizeof S);
        if (k->scaler)
            S = scaler_new(sc);
        counts_reset();
        for (int step = 0; step < 3; step++)
            for (int b = 0; b < 2; b++)
                B[b].ops->sgd_momentum(B[b].ctx, &W.t[b], &V.t[b],
                                       k->copy != AMP_I32 ? &C.t[b] : NULL, &G.t[b],
                                       k->scaler ? &S.t[b] : NULL, 0.01f, 0.9f);
        char what[96];
        snprintf(what, sizeof what, "sgd_momentum %s (3 steps): weights", k->name);
        compare(what, &W, limit_for(k->w, AMP_MATH_F32) * 1e-3);
        snprintf(what, sizeof what, "sgd_momentum %s: velocity", k->name);
        compare(what, &V, limit_for(k->v, AMP_MATH_F32) * 1e-3);
        if (k->copy != AMP_I32) {
            snprintf(what, sizeof what, "sgd_momentum %s: copy", k->name);
            compare(what, &C, limit_for(k->copy, AMP_MATH_F32) * 1e-3);
            pt_free(&C);
        }
        snprintf(what, sizeof what, "sgd_momentum %s", k->name);
        counts_compare(what, 0);
        if (k->scaler)
            pt_free(&S);
        pt_free(&W);
        pt_free(&V);
        pt_free(&G);
        free(w);
        free(v);
        free(g);
    }
}

/* Loss-sum limit (relative) by compute dtype: FP32 differs by expf/logf ulps only; with the
 * intermediates in FP16/BF16 a one-ulp difference of expf or logf can flip a rounding, moving a
 * row's loss by one FP16 (2^-11) or BF16 (2^-8) ulp. */
static double loss_limit(enum amp_dtype compute)
{
    return compute == AMP_F16 ? 1e-3 : compute == AMP_BF16 ? 1e-2 : 1e-5;
}

/* dlogits limit: FP32 outputs of the FP32 softmax are an ulp apart at most; FP16/BF16 outputs
 * or intermediates: a flipped rounding of p moves an element by one ulp of the compute dtype. */
static double dlogits_limit(enum amp_dtype out, enum amp_dtype compute)
{
    if (compute == AMP_F32)
        return out == AMP_F32 ? 1e-10 : limit_for(out, AMP_MATH_F32);
    return fmax(limit_for(out, AMP_MATH_F32), limit_for(compute, AMP_MATH_F32));
}

static void test_softmax(void)
{
    const uint32_t shapes[][2] = { { 1, 10 }, { 7, 3 }, { 32, 10 }, { 300, 10 } };
    const enum amp_dtype lg[] = { AMP_F32, AMP_F16, AMP_BF16 };
    for (size_t ci = 0; ci < 3; ci++)
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (size_t li = 0; li < 3; li++)
                for (int variant = 0; variant < 3; variant++) { /* no grad; grad; grad + scaler */
                    const enum amp_dtype compute = FLOATS[ci];
                    const uint32_t n = shapes[si][0], m = shapes[si][1];
                    float *z = uniform((size_t)n * m, -8.0f, 8.0f);
                    float *y = malloc(n * sizeof *y);
                    int32_t *labels = malloc(n * sizeof *labels);
                    if (!y || !labels)
                        die("host memory");
                    for (uint32_t i = 0; i < n; i++) {
                        labels[i] = (int32_t)rng_below(&R, m);
                        y[i] = (float)labels[i];
                    }
                    const enum amp_dtype gdt = lg[li];
                    struct pt Z = pt_new((size_t)n * m, lg[li], MEM_ACTIVATIONS, z);
                    struct pt Y = pt_new(n, AMP_I32, MEM_ACTIVATIONS, y);
                    struct pt ST = pt_new(2, AMP_F32, MEM_ACTIVATIONS, NULL);
                    struct pt DZ = pt_new((size_t)n * m, gdt, MEM_ACTIVATION_GRADS, NULL);
                    struct pt S = scaler_new(scaler_make(1024.0f, 1, 2000, 0.0f, 0.0f));
                    counts_reset();
                    for (int b = 0; b < 2; b++)
                        B[b].ops->softmax_xent(B[b].ctx, variant ? &DZ.t[b] : NULL, &ST.t[b],
                                               &Z.t[b], &Y.t[b], variant == 2 ? &S.t[b] : NULL,
                                               n, m, compute);
                    float st[2][2];
                    for (int b = 0; b < 2; b++)
                        pt_get_raw(&ST, b, st[b], sizeof st[b]);
                    char what[128];
                    snprintf(what, sizeof what, "softmax_xent n=%u m=%u logits %s compute %s%s",
                             n, m, dtype_name(lg[li]), dtype_name(compute),
                             variant == 0 ? " (no grad)" : variant == 1 ? "" : " scaled");
                    const double rel =
                        fabs((double)st[1][0] - st[0][0]) / fmax(1e-30, fabs(st[0][0]));
                    const size_t same = (size_t)(memcmp(&st[0][0], &st[1][0], 4) == 0) +
                                        (size_t)(memcmp(&st[0][1], &st[1][1], 4) == 0);
                    char lwhat[160];
                    snprintf(lwhat, sizeof lwhat, "%s loss", what);
                    exact_record(lwhat, same, 2);
                    result(rel <= loss_limit(compute) && st[0][1] == st[1][1],
                           "%s: loss sum cpu %.9g cuda %.9g (rel %.2g, limit %.2g), correct %g / "
                           "%g exact=%.4f", what, (double)st[0][0], (double)st[1][0], rel,
                           loss_limit(compute), (double)st[0][1], (double)st[1][1],
                           exact4(same, 2));
                    if (variant) {
                        compare(what, &DZ, dlogits_limit(gdt, compute));
                        counts_compare(what, gdt == AMP_F32);
                    } else {
                        counts_reset();
                    }
                    pt_free(&Z);
                    pt_free(&Y);
                    pt_free(&ST);
                    pt_free(&DZ);
                    pt_free(&S);
                    free(z);
                    free(y);
                    free(labels);
                }
}

/* ---- conv and FC ---- */

/* A workspace tensor per backend, sized by its own conv2d_workspace for dtype and math. */
struct ws {
    struct amp_tensor t[2];
};

static struct ws ws_new(const struct conv_shape *s, enum amp_dtype dt, enum amp_math math)
{
    struct ws w;
    memset(&w, 0, sizeof w);
    for (int b = 0; b < 2; b++) {
        const size_t bytes = B[b].ops->conv2d_workspace(B[b].ctx, s, dt, math);
        const size_t numel = (bytes + sizeof(float) - 1) / sizeof(float);
        if (B[b].ops->alloc(B[b].ctx, &w.t[b].data, numel ? numel * sizeof(float) : 4) != AMP_OK)
            die("alloc workspace");
        w.t[b].numel = numel;
        w.t[b].dtype = AMP_F32;
        w.t[b].category = MEM_WORKSPACE;
    }
    return w;
}

static void ws_free(struct ws *w)
{
    for (int b = 0; b < 2; b++)
        B[b].ops->free(B[b].ctx, w->t[b].data);
}

/* Whether both backends run shape s (conv2d_supports); a refusal is reported as a failure
 * naming the backend and its reason. */
static int conv_both_support(const struct conv_shape *s, const char *tag)
{
    for (int b = 0; b < 2; b++) {
        char why[256] = "";
        if (B[b].ops->conv2d_supports && !B[b].ops->conv2d_supports(B[b].ctx, s, why, sizeof why)) {
            result(0, "%s: the %s backend refuses the shape (%s)", tag, B[b].ops->name, why);
            return 0;
        }
    }
    return 1;
}

/* The forward with the ReLU fused (conv2d_forward's relu): on each backend the relu op's bits on
 * the unfused output and the unfused op's counts; across backends compared as any output.
 * Returns the activations' underflow count of the CPU's unfused forward. */
static uint64_t check_conv_relu(const char *tag, const struct conv_shape *s, struct pt *X,
                            struct pt *W, struct pt *Bi, struct ws *ws, enum amp_dtype out_dt,
                            enum amp_math math)
{
    const size_t ny = X->t[0].numel / ((size_t)s->c_in * s->h * s->w) * s->c_out *
                      conv_out_h(s) * conv_out_w(s);
    struct pt Y = pt_new(ny, out_dt, MEM_ACTIVATIONS, NULL), YR = pt_new(ny, out_dt,
                                                                         MEM_ACTIVATIONS, NULL);
    struct numerics_counts plain[2], fused[2];
    char what[224];
    snprintf(what, sizeof what, "%s forward relu", tag);
    counts_reset();
    for (int b = 0; b < 2; b++) {
        const struct amp_tensor *bias = Bi ? &Bi->t[b] : NULL;
        B[b].ops->conv2d_forward(B[b].ctx, &Y.t[b], &X->t[b], &W->t[b], bias, &ws->t[b], s, math,
                                 0);
        if (B[b].ops->read_counts(B[b].ctx, &plain[b]) != AMP_OK)
            die("read_counts");
        B[b].ops->conv2d_forward(B[b].ctx, &YR.t[b], &X->t[b], &W->t[b], bias, &ws->t[b], s,
                                 math, 1);
        if (B[b].ops->read_counts(B[b].ctx, &fused[b]) != AMP_OK)
            die("read_counts");
        B[b].ops->relu_forward(B[b].ctx, &Y.t[b], &Y.t[b]);
        unsigned char *want = pt_bits(&Y, b, what), *got = pt_bits(&YR, b, what);
        size_t diff = 0;
        for (size_t i = 0; i < Y.bytes; i++)
            diff += want[i] != got[i];
        result(diff == 0 && memcmp(&plain[b], &fused[b], sizeof plain[b]) == 0,
               "%s: %s: the relu op's bits on the unfused output (%zu bytes differ), the same "
               "counts (underflow %llu/%llu)", what, B[b].ops->name, diff,
               (unsigned long long)plain[b].underflow[MEM_ACTIVATIONS],
               (unsigned long long)fused[b].underflow[MEM_ACTIVATIONS]);
        free(want);
        free(got);
    }
    compare(what, &YR, limit_for(out_dt, math));
    pt_free(&Y);
    pt_free(&YR);
    return plain[REF].underflow[MEM_ACTIVATIONS];
}

/* FP16 sums of both signs below FP16's smallest subnormal: the unfused forward counts the
 * negative ones' underflow too, so a ReLU applied before the rounding would count fewer. The
 * seed's shape (the CUDA direct kernel) and c_in 8 (cuDNN and the epilogue). */
static void test_conv_relu_underflow(void)
{
    const struct conv_shape shapes[] = {
        { .n = 2, .c_in = 1, .h = 9, .w = 7, .c_out = 4, .kernel = 3, .stride = 1, .pad = 1 },
        { .n = 2, .c_in = 8, .h = 5, .w = 6, .c_out = 8, .kernel = 3, .stride = 1, .pad = 1 },
    };
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const struct conv_shape *s = &shapes[k];
        const size_t nx = (size_t)s->n * s->c_in * s->h * s->w, nw = (size_t)s->c_out * s->c_in * 9;
        float *x = uniform(nx, -1e-4f, 1e-4f), *w = uniform(nw, -1e-3f, 1e-3f);
        struct pt X = pt_new(nx, AMP_F16, MEM_ACTIVATIONS, x);
        struct pt W = pt_new(nw, AMP_F16, MEM_WEIGHT_COPIES, w);
        struct ws ws = ws_new(s, AMP_F16, AMP_MATH_F32);
        char tag[96];
        snprintf(tag, sizeof tag, "conv n=%u c_in=%u %ux%u fp16 underflowing sums", s->n,
                 s->c_in, s->h, s->w);
        const uint64_t uf = check_conv_relu(tag, s, &X, &W, NULL, &ws, AMP_F16, AMP_MATH_F32);
        result(uf > 0, "%s: the unfused forward counts %llu underflows", tag,
               (unsigned long long)uf);
        ws_free(&ws);
        case_free((struct pt *const[]){ &X, &W, NULL }, (void *const[]){ x, w, NULL });
    }
}

/* A conv case whose operands x, w, dy, dw and db are in dt and whose results y and dx are in
 * out_dt: out_dt == dt, or FP32 operands with FP16/BF16 results (an FP8 layer's: its quantized
 * operands hold dequantized FP8 values in FP32, its output and input gradient are low precision). */
static void test_conv_mixed_case(const struct conv_shape *s, enum amp_dtype dt,
                                 enum amp_dtype out_dt, enum amp_math math, int with_dinp,
                                 float grad_scale, int with_bias)
{
    const uint32_t oh = conv_out_h(s), ow = conv_out_w(s), kk = s->kernel * s->kernel;
    const size_t nx = (size_t)s->n * s->c_in * s->h * s->w, nw = (size_t)s->c_out * s->c_in * kk;
    const size_t ny = (size_t)s->n * s->c_out * oh * ow;
    const float bound = 1.0f / sqrtf((float)(s->c_in * kk));
    float *x = uniform(nx, -1.0f, 1.0f), *w = uniform(nw, -bound, bound);
    float *bias = uniform(s->c_out, -bound, bound), *dy = uniform(ny, -1.0f, 1.0f);
    for (size_t i = 0; i < ny; i++)
        dy[i] *= grad_scale;
    char tag[160];
    snprintf(tag, sizeof tag, "conv n=%u c_in=%u %ux%u c_out=%u k%u s%u p%u %s%s%s%s%s%s", s->n,
             s->c_in, s->h, s->w, s->c_out, s->kernel, s->stride, s->pad, dtype_name(dt),
             out_dt != dt ? " into " : "", out_dt != dt ? dtype_name(out_dt) : "",
             math == AMP_MATH_TF32 ? " tf32" : "", with_bias ? "" : " no bias",
             grad_scale != 1.0f ? " tiny grads" : "");
    if (!conv_both_support(s, tag)) {
        free(x);
        free(w);
        free(bias);
        free(dy);
        return;
    }
    struct pt X = pt_new(nx, dt, MEM_ACTIVATIONS, x), W = pt_new(nw, dt, MEM_WEIGHT_COPIES, w);
    struct pt Bi = pt_new(s->c_out, dt, MEM_WEIGHT_COPIES, bias);
    struct pt Y = pt_new(ny, out_dt, MEM_ACTIVATIONS, NULL);
    struct pt DY = pt_new(ny, dt, MEM_ACTIVATION_GRADS, dy);
    struct pt DW = pt_new(nw, dt, MEM_WEIGHT_GRADS, NULL);
    struct pt DB = pt_new(s->c_out, dt, MEM_WEIGHT_GRADS, NULL);
    struct pt DX = pt_new(nx, out_dt, MEM_ACTIVATION_GRADS, NULL);
    struct ws ws = ws_new(s, dt, math);
    const double lim = grad_scale != 1.0f ? 1e-2 : limit_for(dt, math);
    char what[224];

    counts_reset();
    for (int b = 0; b < 2; b++)
        B[b].ops->conv2d_forward(B[b].ctx, &Y.t[b], &X.t[b], &W.t[b], with_bias ? &Bi.t[b] : NULL,
                                 &ws.t[b], s, math, 0);
    snprintf(what, sizeof what, "%s forward", tag);
    compare(what, &Y, limit_for(out_dt, math));
    counts_compare(what, 0);
    check_conv_relu(tag, s, &X, &W, with_bias ? &Bi : NULL, &ws, out_dt, math);

    for (int b = 0; b < 2; b++)
        B[b].ops->conv2d_backward(B[b].ctx, &DW.t[b], with_bias ? &DB.t[b] : NULL,
                                  with_dinp ? &DX.t[b] : NULL, &DY.t[b], &X.t[b], &W.t[b],
                                  &ws.t[b], s, math);
    snprintf(what, sizeof what, "%s backward weight", tag);
    compare(what, &DW, lim);
    if (with_bias) {
        snprintf(what, sizeof what, "%s backward bias", tag);
        compare(what, &DB, lim);
    } else {
        /* No bias: dbias is not written (both copies keep their zeros). */
        snprintf(what, sizeof what, "%s backward bias untouched", tag);
        compare(what, &DB, 0.0);
    }
    if (with_dinp) {
        snprintf(what, sizeof what, "%s backward data", tag);
        compare(what, &DX, out_dt != dt ? limit_for(out_dt, math) : lim);
    }
    snprintf(what, sizeof what, "%s backward", tag);
    counts_compare(what, 0);
    ws_free(&ws);
    case_free((struct pt *const[]){ &X, &W, &Bi, &Y, &DY, &DW, &DB, &DX, NULL },
              (void *const[]){ x, w, bias, dy, NULL });
}

static void test_conv_case(const struct conv_shape *s, enum amp_dtype dt, enum amp_math math,
                           int with_dinp, float grad_scale, int with_bias)
{
    test_conv_mixed_case(s, dt, dt, math, with_dinp, grad_scale, with_bias);
}

/* FP16 forward where the sum rounds to FP16 below the largest finite value and the bias then
 * carries the exact result past the overflow threshold: cuDNN's rounded sum plus the bias rounds
 * back to 65504, the single rounding of sum + bias (the reference) to inf. The centre pixel sums
 * 9 * 7276 = 65484 (FP16: 65472), plus 40: exactly 65524 -> inf, but 65472 + 40 -> 65504. */
static void test_conv_hidden_overflow_case(unsigned c_in, float tap)
{
    const struct conv_shape s = { .n = 1, .c_in = c_in, .h = 3, .w = 3, .c_out = 1, .kernel = 3,
                                  .stride = 1, .pad = 1 };
    float x[72], w[72], bias = 40.0f;
    for (unsigned i = 0; i < 9 * c_in; i++) {
        x[i] = 1.0f;
        w[i] = tap;
    }
    struct pt X = pt_new(9 * c_in, AMP_F16, MEM_ACTIVATIONS, x);
    struct pt W = pt_new(9 * c_in, AMP_F16, MEM_WEIGHT_COPIES, w);
    struct pt Bi = pt_new(1, AMP_F16, MEM_WEIGHT_COPIES, &bias);
    struct pt Y = pt_new(9, AMP_F16, MEM_ACTIVATIONS, NULL);
    struct ws ws = ws_new(&s, AMP_F16, AMP_MATH_F32);
    counts_reset();
    for (int b = 0; b < 2; b++)
        B[b].ops->conv2d_forward(B[b].ctx, &Y.t[b], &X.t[b], &W.t[b], &Bi.t[b], &ws.t[b], &s,
                                 AMP_MATH_F32, 0);
    char what[96];
    snprintf(what, sizeof what, "conv fp16 forward (c_in %u), an overflow behind the bias", c_in);
    compare(what, &Y, limit_for(AMP_F16, AMP_MATH_F32));
    counts_compare(what, 1);
    ws_free(&ws);
    struct pt *all[] = { &X, &W, &Bi, &Y };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pt_free(all[i]);
}

/* c_in 1 runs the CUDA backend's direct kernel (one rounding), c_in 8 cuDNN and the bias
 * epilogue, whose recount of the extreme elements must find the overflow: 72 * 909.5 = 65484
 * as well. */
static void test_conv_hidden_overflow(void)
{
    test_conv_hidden_overflow_case(1, 7276.0f);
    test_conv_hidden_overflow_case(8, 909.5f);
}

/* conv2d_supports: the CUDA backend accepts every geometry cuDNN runs (5x5 with padding 2,
 * stride 2, 1x1, padding as large as the filter) and refuses what cuDNN refuses (a filter larger
 * than the padded input, stride 0, a zero size) with the reason; its conv ops refuse such a
 * shape too, with the same reason at the next call that returns a status. The CPU reference's
 * answers are printed (its own tests judge them); the parity cases below need both to accept. */
static void test_conv_supports(void)
{
    const struct conv_shape base = { .n = 2, .c_in = 1, .h = 8, .w = 8, .c_out = 2, .kernel = 3,
                                     .stride = 1, .pad = 1 };
    struct conv_shape good[5] = { base, base, base, base, base };
    good[1].kernel = 5;
    good[1].pad = 2;
    good[2].stride = 2;
    good[3].kernel = 1;
    good[3].pad = 0;
    good[3].stride = 2;
    good[4].kernel = 2;
    good[4].pad = 3; /* padding larger than the filter */
    struct conv_shape bad[4] = { base, base, base, base };
    bad[0].kernel = 11; /* 11 > 8 + 2 * 1 */
    bad[1].stride = 0;
    bad[2].c_in = 0;
    bad[3].kernel = 0;
    for (int b = 0; b < 2; b++) {
        const struct backend_ops *o = B[b].ops;
        char why[256] = "";
        if (!o->conv2d_supports) {
            result(b == REF, "%s: conv2d_supports is NULL (every shape)", o->name);
            continue;
        }
        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
            why[0] = '\0';
            const int r = o->conv2d_supports(B[b].ctx, &good[i], why, sizeof why);
            if (b == GPU)
                result(r == 1, "%s conv2d_supports: %ux%u, stride %u, padding %u accepted%s%s",
                       o->name, good[i].kernel, good[i].kernel, good[i].stride, good[i].pad,
                       r ? "" : ": ", r ? "" : why);
            else
                printf("  (%s conv2d_supports: %ux%u, stride %u, padding %u: %s%s)\n", o->name,
                       good[i].kernel, good[i].kernel, good[i].stride, good[i].pad,
                       r ? "accepted" : "refused: ", r ? "" : why);
        }
        if (b != GPU)
            continue;
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            why[0] = '\0';
            const int r = o->conv2d_supports(B[b].ctx, &bad[i], why, sizeof why);
            result(r == 0 && strstr(why, "cuDNN does not run this convolution"),
                   "%s conv2d_supports: c_in %u, %ux%u, stride %u, padding %u refused (%s)",
                   o->name, bad[i].c_in, bad[i].kernel, bad[i].kernel, bad[i].stride, bad[i].pad,
                   why);
        }
    }
    struct backend G;
    if (backend_open(&G, "cuda", &gpu_opts) != AMP_OK)
        die("open cuda");
    struct amp_tensor t[4] = { { .numel = 8 * 8 * 2 }, { .numel = 11 * 11 * 2 }, { .numel = 2 },
                               { .numel = 64 } }; /* x, w, bias, y */
    for (int i = 0; i < 4; i++) {
        t[i].dtype = AMP_F32;
        if (G.ops->alloc(G.ctx, &t[i].data, t[i].numel * sizeof(float)) != AMP_OK)
            die("cuda alloc");
    }
    struct amp_tensor none = { .dtype = AMP_F32, .category = MEM_WORKSPACE };
    G.ops->conv2d_forward(G.ctx, &t[3], &t[0], &t[1], &t[2], &none, &bad[0], AMP_MATH_F32, 0);
    struct numerics_counts c;
    const int refused = G.ops->read_counts(G.ctx, &c) != AMP_OK &&
                        strstr(amp_last_error(), "a filter larger than the padded input") != NULL;
    result(refused, "cuda conv2d_forward: an 11x11 filter on an 8x8 input is refused (%s)",
           refused ? amp_last_error() : "accepted");
    for (int i = 0; i < 4; i++)
        G.ops->free(G.ctx, t[i].data);
    backend_close(&G);
}

/* The CUDA backend's count of cuBLASLt FP8 GEMMs (its describe JSON's "fp8_gemms"). */
static long long fp8_gemms_issued(void)
{
    char buf[16384];
    if (!B[GPU].ops->describe || B[GPU].ops->describe(B[GPU].ctx, buf, sizeof buf) <= 0)
        return -1;
    const char *at = strstr(buf, "\"fp8_gemms\": ");
    return at ? strtoll(at + strlen("\"fp8_gemms\": "), NULL, 10) : -1;
}

/* An FP8 layer's three quantized operands: x (E4M3), w (E4M3) and dy (E5M2), each with its
 * state and history on both backends. */
struct fp8_operands {
    struct pt q[3], st[3], hist[3];
};

/* Quantizes src (x, w, dy) twice as training steps (delayed scaling's second uses the first's
 * amax) on each backend; the quantized tensors must agree bit for bit. MX: each operand's
 * layout { mx_len, mx_inner } from mx (NULL: per-tensor scaling). */
static void fp8_operands_quantize(struct fp8_operands *o, struct pt *const src[3],
                                  enum fp8_scaling scaling, const uint32_t (*mx)[2],
                                  const char *tag)
{
    static const enum fp8_format formats[3] = { FP8_E4M3, FP8_E4M3, FP8_E5M2 };
    static const enum mem_category cats[3] = { MEM_ACTIVATIONS, MEM_WEIGHT_COPIES,
                                               MEM_ACTIVATION_GRADS };
    for (int q = 0; q < 3; q++) {
        struct fp8_tensor_state init = fp8_state_make(formats[q], 2, MX_SCALE_RCEIL,
                                                      mx ? mx[q][0] : 0);
        init.mx_inner = mx ? mx[q][1] : 1;
        o->st[q] = pt_new(sizeof init / sizeof(int32_t), AMP_I32, MEM_OPTIMIZER, NULL);
        pt_set_raw(&o->st[q], &init, sizeof init);
        o->hist[q] = pt_new(2, AMP_F32, MEM_OPTIMIZER, NULL);
        o->q[q] = pt_new(src[q]->t[REF].numel, AMP_F32, cats[q], NULL);
    }
    for (int round = 0; round < 2; round++)
        for (int q = 0; q < 3; q++)
            for (int b = 0; b < 2; b++)
                B[b].ops->fp8_quantize(B[b].ctx, &o->q[q].t[b], &src[q]->t[b], scaling,
                                       &o->st[q].t[b], &o->hist[q].t[b], 1);
    for (int q = 0; q < 3; q++) {
        char what[192];
        snprintf(what, sizeof what, "%s quantized %s", tag, q == 0 ? "x" : q == 1 ? "w" : "dy");
        compare(what, &o->q[q], 0.0);
    }
}

static void fp8_operands_free(struct fp8_operands *o)
{
    for (int q = 0; q < 3; q++) {
        pt_free(&o->q[q]);
        pt_free(&o->st[q]);
        pt_free(&o->hist[q]);
    }
}

static const char *scaling_name(enum fp8_scaling s)
{
    return s == FP8_SCALING_DELAYED ? "delayed" : s == FP8_SCALING_MX ? "mx" : "current";
}

/* A backward op's outputs from two calls (dweight NULL, then dinp NULL) against one call's, bit
 * for bit on each backend (NULL pairs skipped). */
static void split_same(const char *tag, struct pt *const one[3], struct pt *const two[3])
{
    int ok = 1;
    for (int k = 0; k < 3; k++)
        for (int b = 0; one[k] && b < 2; b++) {
            unsigned char *x = pt_bits(one[k], b, tag), *y = pt_bits(two[k], b, tag);
            ok &= memcmp(x, y, one[k]->bytes) == 0;
            free(x);
            free(y);
        }
    exact_record("backward in two calls", (size_t)ok, 1);
    result(ok, "%s: the input gradient and the weight gradient in two calls are one call's, bit "
           "for bit, on both backends", tag);
}

/* The FP8 GEMMs the CUDA backend ran since `before` must be `want`. */
static void fp8_gemms_expect(long long before, long long want, const char *tag)
{
    const long long gemms = fp8_gemms_issued() - before;
    result(gemms == want, "%s: cuda ran %lld cuBLASLt FP8 GEMMs (want %lld)", tag, gemms, want);
}

/* An FP8 recipe's linear layer: x (BF16), w (FP32) and dy (BF16) quantized, then the layer's
 * forward and backward on the quantized tensors: the CPU multiplies the dequantized values in
 * FP32, the CUDA backend the FP8 codes through cuBLASLt (three FP8 GEMMs: forward E4M3 x E4M3,
 * the gradients E5M2 x E4M3). The results differ by the FP32 rounding of the dequantized values. */
static void test_fp8_linear_case(uint32_t n, uint32_t k, uint32_t m, enum fp8_scaling scaling)
{
    const uint32_t mx[3][2] = { { k, 1 }, { k, 1 }, { m, 1 } }; /* MX: rows */
    const float bound = 1.0f / sqrtf((float)k);
    float *x = uniform((size_t)n * k, 0.0f, 1.0f), *w = uniform((size_t)m * k, -bound, bound);
    float *bias = uniform(m, -bound, bound), *dy = uniform((size_t)n * m, -1e-3f, 1e-3f);
    struct pt X = pt_new((size_t)n * k, AMP_BF16, MEM_ACTIVATIONS, x);
    struct pt W = pt_new((size_t)m * k, AMP_F32, MEM_WEIGHTS, w);
    struct pt DY = pt_new((size_t)n * m, AMP_BF16, MEM_ACTIVATION_GRADS, dy);
    struct pt Bi = pt_new(m, AMP_F32, MEM_WEIGHTS, bias);
    struct pt Y = pt_new((size_t)n * m, AMP_BF16, MEM_ACTIVATIONS, NULL);
    struct pt DX = pt_new((size_t)n * k, AMP_BF16, MEM_ACTIVATION_GRADS, NULL);
    struct pt DW = pt_new((size_t)m * k, AMP_F32, MEM_WEIGHT_GRADS, NULL);
    struct pt DB = pt_new(m, AMP_F32, MEM_WEIGHT_GRADS, NULL);
    char tag[128], what[192];
    snprintf(tag, sizeof tag, "fp8 linear n=%u k=%u m=%u %s", n, k, m, scaling_name(scaling));
    const long long gemms0 = fp8_gemms_issued();
    struct pt *const src[3] = { &X, &W, &DY };
    struct fp8_operands o;
    fp8_operands_quantize(&o, src, scaling, scaling == FP8_SCALING_MX ? mx : NULL, tag);
    counts_reset();
    for (int b = 0; b < 2; b++)
        B[b].ops->linear_forward(B[b].ctx, &Y.t[b], &o.q[0].t[b], &o.q[1].t[b], &Bi.t[b], n, k,
                                 m, AMP_MATH_F32);
    snprintf(what, sizeof what, "%s forward", tag);
    compare(what, &Y, limit_for(AMP_BF16, AMP_MATH_F32));
    counts_compare(what, 0);
    for (int b = 0; b < 2; b++)
        B[b].ops->linear_backward(B[b].ctx, &DX.t[b], &DW.t[b], &DB.t[b], &o.q[2].t[b],
                                  &o.q[0].t[b], &o.q[1].t[b], n, k, m, AMP_MATH_F32, NULL);
    snprintf(what, sizeof what, "%s backward data", tag);
    compare(what, &DX, limit_for(AMP_BF16, AMP_MATH_F32));
    snprintf(what, sizeof what, "%s backward weight", tag);
    compare(what, &DW, 1e-9);
    snprintf(what, sizeof what, "%s backward bias", tag);
    compare(what, &DB, 1e-9);
    snprintf(what, sizeof what, "%s backward", tag);
    counts_compare(what, 0);
    /* MX: no FP8 GEMM (Hopper has no MX path) */
    const int mxs = scaling == FP8_SCALING_MX;
    fp8_gemms_expect(gemms0, mxs ? 0 : 3, tag);
    struct pt DX2 = pt_new((size_t)n * k, AMP_BF16, MEM_ACTIVATION_GRADS, NULL);
    struct pt DW2 = pt_new((size_t)m * k, AMP_F32, MEM_WEIGHT_GRADS, NULL);
    struct pt DB2 = pt_new(m, AMP_F32, MEM_WEIGHT_GRADS, NULL);
    for (int b = 0; b < 2; b++) {
        B[b].ops->linear_backward(B[b].ctx, NULL, &DW2.t[b], &DB2.t[b], &o.q[2].t[b],
                                  &o.q[0].t[b], &o.q[1].t[b], n, k, m, AMP_MATH_F32, NULL);
        B[b].ops->linear_backward(B[b].ctx, &DX2.t[b], NULL, NULL, &o.q[2].t[b], &o.q[0].t[b],
                                  &o.q[1].t[b], n, k, m, AMP_MATH_F32, NULL);
    }
    split_same(tag, (struct pt *const[]){ &DX, &DW, &DB }, (struct pt *const[]){ &DX2, &DW2, &DB2 });
    fp8_gemms_expect(gemms0, mxs ? 0 : 5, tag);
    fp8_operands_free(&o);
    case_free((struct pt *const[]){ &X, &W, &DY, &Bi, &Y, &DX, &DW, &DB, &DX2, &DW2, &DB2, NULL },
              (void *const[]){ x, w, bias, dy, NULL });
}

/* The same for an FP8 conv layer: on CUDA an im2col FP8 GEMM for the forward and each gradient
 * (the output scattered back to NCHW, the input gradient gathered by col2im), with_dinp: the
 * layer computes its input gradient (not the network's first). */
static void test_fp8_conv_case(const struct conv_shape *s, enum fp8_scaling scaling,
                               int with_dinp)
{
    const uint32_t kk = s->kernel * s->kernel, ohw = conv_out_h(s) * conv_out_w(s);
    const size_t nx = (size_t)s->n * s->c_in * s->h * s->w, nw = (size_t)s->c_out * s->c_in * kk;
    const size_t ny = (size_t)s->n * s->c_out * ohw;
    /* MX: x and dy in channel blocks, w along its rows */
    const uint32_t mx[3][2] = { { s->c_in, s->h * s->w }, { s->c_in * kk, 1 }, { s->c_out, ohw } };
    const float bound = 1.0f / sqrtf((float)(s->c_in * kk));
    float *x = uniform(nx, -1.0f, 1.0f), *w = uniform(nw, -bound, bound);
    float *bias = uniform(s->c_out, -bound, bound), *dy = uniform(ny, -1e-3f, 1e-3f);
    struct pt X = pt_new(nx, AMP_BF16, MEM_ACTIVATIONS, x);
    struct pt W = pt_new(nw, AMP_F32, MEM_WEIGHTS, w);
    struct pt DY = pt_new(ny, AMP_BF16, MEM_ACTIVATION_GRADS, dy);
    struct pt Bi = pt_new(s->c_out, AMP_F32, MEM_WEIGHTS, bias);
    struct pt Y = pt_new(ny, AMP_BF16, MEM_ACTIVATIONS, NULL);
    struct pt DX = pt_new(nx, AMP_BF16, MEM_ACTIVATION_GRADS, NULL);
    struct pt DW = pt_new(nw, AMP_F32, MEM_WEIGHT_GRADS, NULL);
    struct pt DB = pt_new(s->c_out, AMP_F32, MEM_WEIGHT_GRADS, NULL);
    char tag[160], what[224];
    snprintf(tag, sizeof tag, "fp8 conv n=%u c_in=%u %ux%u c_out=%u k%u s%u p%u %s%s", s->n,
             s->c_in, s->h, s->w, s->c_out, s->kernel, s->stride, s->pad, scaling_name(scaling),
             with_dinp ? "" : " first");
    struct ws ws = ws_new(s, AMP_F32, AMP_MATH_F32);
    const long long gemms0 = fp8_gemms_issued();
    struct pt *const src[3] = { &X, &W, &DY };
    struct fp8_operands o;
    fp8_operands_quantize(&o, src, scaling, scaling == FP8_SCALING_MX ? mx : NULL, tag);
    counts_reset();
    for (int b = 0; b < 2; b++)
        B[b].ops->conv2d_forward(B[b].ctx, &Y.t[b], &o.q[0].t[b], &o.q[1].t[b], &Bi.t[b],
                                 &ws.t[b], s, AMP_MATH_F32, 0);
    snprintf(what, sizeof what, "%s forward", tag);
    compare(what, &Y, limit_for(AMP_BF16, AMP_MATH_F32));
    counts_compare(what, 0);
    for (int b = 0; b < 2; b++)
        B[b].ops->conv2d_backward(B[b].ctx, &DW.t[b], &DB.t[b], with_dinp ? &DX.t[b] : NULL,
                                  &o.q[2].t[b], &o.q[0].t[b], &o.q[1].t[b], &ws.t[b], s,
                                  AMP_MATH_F32);
    snprintf(what, sizeof what, "%s backward weight", tag);
    compare(what, &DW, 1e-9);
    snprintf(what, sizeof what, "%s backward bias", tag);
    compare(what, &DB, 1e-9);
    if (with_dinp) {
        snprintf(what, sizeof what, "%s backward data", tag);
        compare(what, &DX, limit_for(AMP_BF16, AMP_MATH_F32));
    }
    snprintf(what, sizeof what, "%s backward", tag);
    counts_compare(what, 0);
    const int mxs = scaling == FP8_SCALING_MX;
    fp8_gemms_expect(gemms0, mxs ? 0 : with_dinp ? 3 : 2, tag);
    struct pt DX2 = pt_new(nx, AMP_BF16, MEM_ACTIVATION_GRADS, NULL);
    struct pt DW2 = pt_new(nw, AMP_F32, MEM_WEIGHT_GRADS, NULL);
    struct pt DB2 = pt_new(s->c_out, AMP_F32, MEM_WEIGHT_GRADS, NULL);
    for (int b = 0; b < 2; b++) {
        B[b].ops->conv2d_backward(B[b].ctx, &DW2.t[b], &DB2.t[b], NULL, &o.q[2].t[b],
                                  &o.q[0].t[b], &o.q[1].t[b], &ws.t[b], s, AMP_MATH_F32);
        if (with_dinp)
            B[b].ops->conv2d_backward(B[b].ctx, NULL, NULL, &DX2.t[b], &o.q[2].t[b],
                                      &o.q[0].t[b], &o.q[1].t[b], &ws.t[b], s, AMP_MATH_F32);
    }
    split_same(tag, (struct pt *const[]){ with_dinp ? &DX : NULL, &DW, &DB },
               (struct pt *const[]){ with_dinp ? &DX2 : NULL, &DW2, &DB2 });
    fp8_gemms_expect(gemms0, mxs ? 0 : with_dinp ? 5 : 3, tag);
    check_conv_relu(tag, s, &o.q[0], &o.q[1], &Bi, &ws, AMP_BF16, AMP_MATH_F32);
    fp8_operands_free(&o);
    ws_free(&ws);
    case_free((struct pt *const[]){ &X, &W, &DY, &Bi, &Y, &DX, &DW, &DB, &DX2, &DW2, &DB2, NULL },
              (void *const[]){ x, w, bias, dy, NULL });
}

static void test_conv(void)
{
    const struct conv_shape shapes[] = { /* the first: the seed network */
        { .n = 4, .c_in = 1, .h = 28, .w = 28, .c_out = 16, .kernel = 3, .stride = 1, .pad = 1 },
        { .n = 3, .c_in = 3, .h = 7, .w = 5, .c_out = 4, .kernel = 3, .stride = 1, .pad = 1 },
        { .n = 1, .c_in = 8, .h = 9, .w = 11, .c_out = 8, .kernel = 3, .stride = 1, .pad = 1 },
        { .n = 2, .c_in = 2, .h = 1, .w = 1, .c_out = 3, .kernel = 3, .stride = 1, .pad = 1 },
        /* the CPU's output channels in vectors (reference/cpu_conv.c, grid_tiles): a tile of
         * two vectors and eight channels plane by plane; one vector of one */
        { .n = 2, .c_in = 16, .h = 9, .w = 7, .c_out = 40, .kernel = 3, .stride = 1, .pad = 1 },
        { .n = 1, .c_in = 3, .h = 5, .w = 13, .c_out = 16, .kernel = 3, .stride = 1, .pad = 1 },
    };
    for (volatile size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        CASE(test_conv_case(&shapes[si], AMP_F32, AMP_MATH_F32, 1, 1.0f, 1));
        CASE(test_conv_case(&shapes[si], AMP_F32, AMP_MATH_TF32, si % 2, 1.0f, 1));
        CASE(test_conv_case(&shapes[si], AMP_F16, AMP_MATH_F32, 1, 1.0f, 1));
        CASE(test_conv_case(&shapes[si], AMP_BF16, AMP_MATH_F32, si % 2 == 0, 1.0f, 1));
    }
    /* General geometries: 5x5 with padding 2, 3x3 at stride 2 with padding 1, 1x1 at stride 2
     * without padding; 1, 3 and 16 input channels; odd sizes; with and without a bias. */
    const struct conv_shape general[] = {
        { .n = 4, .c_in = 1, .h = 28, .w = 28, .c_out = 6, .kernel = 5, .stride = 1, .pad = 2 },
        { .n = 2, .c_in = 3, .h = 9, .w = 7, .c_out = 4, .kernel = 5, .stride = 1, .pad = 2 },
        { .n = 2, .c_in = 16, .h = 8, .w = 8, .c_out = 16, .kernel = 5, .stride = 1, .pad = 2 },
        { .n = 2, .c_in = 16, .h = 8, .w = 9, .c_out = 8, .kernel = 3, .stride = 2, .pad = 1 },
        { .n = 3, .c_in = 3, .h = 7, .w = 7, .c_out = 5, .kernel = 3, .stride = 2, .pad = 1 },
        { .n = 2, .c_in = 1, .h = 11, .w = 6, .c_out = 4, .kernel = 3, .stride = 2, .pad = 1 },
        { .n = 3, .c_in = 16, .h = 7, .w = 7, .c_out = 32, .kernel = 1, .stride = 2, .pad = 0 },
        { .n = 2, .c_in = 3, .h = 6, .w = 5, .c_out = 5, .kernel = 1, .stride = 2, .pad = 0 },
        { .n = 1, .c_in = 1, .h = 5, .w = 8, .c_out = 3, .kernel = 1, .stride = 2, .pad = 0 },
    };
    for (volatile size_t si = 0; si < sizeof general / sizeof general[0]; si++)
        for (volatile int with_bias = 1; with_bias >= 0; with_bias--) {
            CASE(test_conv_case(&general[si], AMP_F32, AMP_MATH_F32, 1, 1.0f, with_bias));
            CASE(test_conv_case(&general[si], AMP_F32, AMP_MATH_TF32, (si + with_bias) % 2, 1.0f,
                                with_bias));
            CASE(test_conv_case(&general[si], AMP_F16, AMP_MATH_F32, 1, 1.0f, with_bias));
            CASE(test_conv_case(&general[si], AMP_BF16, AMP_MATH_F32, si % 2 == 0, 1.0f,
                                with_bias));
        }
    /* FP8 layers' dtypes: FP32 operands, FP16/BF16 output and input gradient (rounded once). */
    for (volatile size_t si = 0; si < 3; si++) {
        CASE(test_conv_mixed_case(&shapes[si], AMP_F32, AMP_BF16, AMP_MATH_F32, 1, 1.0f, 1));
        CASE(test_conv_mixed_case(&general[si + 1], AMP_F32, AMP_F16, AMP_MATH_F32, 1, 1.0f,
                                  (int)si % 2));
    }
    /* FP8 layers as im2col FP8 GEMMs: the seed conv (first layer), lenet5's conv2 (5x5 from 6
     * channels), a strided 3x3 and a 1x1 projection as in resnet8. */
    const struct conv_shape fp8_shapes[] = {
        { .n = 4, .c_in = 1, .h = 28, .w = 28, .c_out = 16, .kernel = 3, .stride = 1, .pad = 1 },
        { .n = 3, .c_in = 6, .h = 14, .w = 14, .c_out = 16, .kernel = 5, .stride = 1, .pad = 0 },
        { .n = 2, .c_in = 16, .h = 8, .w = 9, .c_out = 32, .kernel = 3, .stride = 2, .pad = 1 },
        { .n = 3, .c_in = 16, .h = 7, .w = 7, .c_out = 32, .kernel = 1, .stride = 2, .pad = 0 },
    };
    for (volatile size_t si = 0; si < sizeof fp8_shapes / sizeof fp8_shapes[0]; si++) {
        CASE(test_fp8_conv_case(&fp8_shapes[si], FP8_SCALING_DELAYED, si > 0));
        CASE(test_fp8_conv_case(&fp8_shapes[si], FP8_SCALING_CURRENT, si > 0));
        CASE(test_fp8_conv_case(&fp8_shapes[si], FP8_SCALING_MX, si > 0));
    }
    /* Gradients near FP16's underflow: the recomputed +-0 elements and their counts. */
    CASE(test_conv_case(&shapes[0], AMP_F16, AMP_MATH_F32, 1, 1e-7f, 1));
    CASE(test_conv_case(&shapes[2], AMP_F16, AMP_MATH_F32, 1, 3e-8f, 1));
    CASE(test_conv_case(&general[3], AMP_F16, AMP_MATH_F32, 1, 3e-8f, 0));
    CASE(test_conv_case(&general[1], AMP_F16, AMP_MATH_F32, 1, 1e-7f, 1));
    CASE(test_conv_hidden_overflow());
    CASE(test_conv_relu_underflow());
    CASE(test_conv_supports());
}

struct fc_plan {
    const char *name;
    enum amp_dtype x, w, out; /* dout = out's dtype, dinp = x's, dweight and dbias = w's */
    enum amp_math math;
};

/* The backward with the ReLU fused (linear_backward's relu), its mask R with zeros, -0, a NaN
 * and negatives (the op masks them as the relu op would), R a tensor of its own (as under an
 * FP8 recipe, where the op's input is R quantized) and then the op's input itself: on each
 * backend the relu op's bits on the unfused input gradient, the unfused weight gradients and the
 * unfused ops' counts; across backends the input gradient compared as any. */
static void check_linear_relu(const char *tag, const struct fc_plan *p, uint32_t n, uint32_t k,
                              uint32_t m, struct pt *X, struct pt *W, struct pt *DY,
                              double limit)
{
    const size_t nk = (size_t)n * k;
    float *r = uniform(nk, -1.0f, 1.0f);
    for (size_t i = 0; i < nk; i += 7)
        r[i] = 0.0f;
    if (nk > 2) {
        r[1] = -0.0f;
        r[2] = NAN;
    }
    struct pt R = pt_new(nk, p->x, MEM_ACTIVATIONS, r);
    struct pt P[3] = { pt_new(nk, p->x, MEM_ACTIVATION_GRADS, NULL),
                       pt_new((size_t)m * k, p->w, MEM_WEIGHT_GRADS, NULL),
                       pt_new(m, p->w, MEM_WEIGHT_GRADS, NULL) };
    struct pt F[3] = { pt_new(nk, p->x, MEM_ACTIVATION_GRADS, NULL),
                       pt_new((size_t)m * k, p->w, MEM_WEIGHT_GRADS, NULL),
                       pt_new(m, p->w, MEM_WEIGHT_GRADS, NULL) };
    for (int own = 1; own >= 0; own--) {
        struct pt *in = own ? X : &R;
        struct numerics_counts plain[2], fused[2];
        char what[224];
        snprintf(what, sizeof what, "%s backward relu (%s)", tag,
                 own ? "its own tensor" : "the input");
        counts_reset();
        for (int b = 0; b < 2; b++) {
            B[b].ops->linear_backward(B[b].ctx, &P[0].t[b], &P[1].t[b], &P[2].t[b], &DY->t[b],
                                      &in->t[b], &W->t[b], n, k, m, p->math, NULL);
            B[b].ops->relu_backward(B[b].ctx, &P[0].t[b], &P[0].t[b], &R.t[b]);
            if (B[b].ops->read_counts(B[b].ctx, &plain[b]) != AMP_OK)
                die("read_counts");
            B[b].ops->linear_backward(B[b].ctx, &F[0].t[b], &F[1].t[b], &F[2].t[b], &DY->t[b],
                                      &in->t[b], &W->t[b], n, k, m, p->math, &R.t[b]);
            if (B[b].ops->read_counts(B[b].ctx, &fused[b]) != AMP_OK)
                die("read_counts");
            size_t diff = 0;
            for (int t = 0; t < 3; t++) {
                unsigned char *want = pt_bits(&P[t], b, what), *got = pt_bits(&F[t], b, what);
                for (size_t i = 0; i < P[t].bytes; i++)
                    diff += want[i] != got[i];
                free(want);
                free(got);
            }
            result(diff == 0 && memcmp(&plain[b], &fused[b], sizeof plain[b]) == 0,
                   "%s: %s: the relu op's bits on the unfused input gradient and the unfused "
                   "weight gradients (%zu bytes differ), the same counts (underflow %llu/%llu)",
                   what, B[b].ops->name, diff,
                   (unsigned long long)plain[b].underflow[MEM_ACTIVATION_GRADS],
                   (unsigned long long)fused[b].underflow[MEM_ACTIVATION_GRADS]);
        }
        compare(what, &F[0], limit);
    }
    case_free((struct pt *const[]){ &R, &P[0], &P[1], &P[2], &F[0], &F[1], &F[2], NULL },
              (void *const[]){ r, NULL });
}

static void test_linear_case(uint32_t n, uint32_t k, uint32_t m, const struct fc_plan *p,
                             float grad_scale)
{
    const float bound = 1.0f / sqrtf((float)(k ? k : 1));
    float *x = uniform((size_t)n * k, 0.0f, 1.0f), *w = uniform((size_t)m * k, -bound, bound);
    float *bias = uniform(m, -bound, bound), *dy = uniform((size_t)n * m, -1.0f, 1.0f);
    for (size_t i = 0; i < (size_t)n * m; i++)
        dy[i] *= grad_scale;
    struct pt X = pt_new((size_t)n * k, p->x, MEM_ACTIVATIONS, x);
    struct pt W = pt_new((size_t)m * k, p->w, MEM_WEIGHTS, w);
    struct pt Bi = pt_new(m, p->w, MEM_WEIGHTS, bias);
    struct pt Y = pt_new((size_t)n * m, p->out, MEM_ACTIVATIONS, NULL);
    struct pt DY = pt_new((size_t)n * m, p->out, MEM_ACTIVATION_GRADS, dy);
    struct pt DX = pt_new((size_t)n * k, p->x, MEM_ACTIVATION_GRADS, NULL);
    struct pt DW = pt_new((size_t)m * k, p->w, MEM_WEIGHT_GRADS, NULL);
    struct pt DB = pt_new(m, p->w, MEM_WEIGHT_GRADS, NULL);
    char tag[128], what[192];
    snprintf(tag, sizeof tag, "linear n=%u k=%u m=%u %s%s", n, k, m, p->name,
             grad_scale != 1.0f ? " tiny grads" : "");
    counts_reset();
    for (int b = 0; b < 2; b++)
        B[b].ops->linear_forward(B[b].ctx, &Y.t[b], &X.t[b], &W.t[b], &Bi.t[b], n, k, m, p->math);
    snprintf(what, sizeof what, "%s forward", tag);
    compare(what, &Y, limit_for(p->out, p->math));
    counts_compare(what, 0);
    for (int b = 0; b < 2; b++)
        B[b].ops->linear_backward(B[b].ctx, &DX.t[b], &DW.t[b], &DB.t[b], &DY.t[b], &X.t[b],
                                  &W.t[b], n, k, m, p->math, NULL);
    const double tiny = grad_scale != 1.0f ? 1e-2 : 0.0;
    snprintf(what, sizeof what, "%s backward data", tag);
    compare(what, &DX, fmax(tiny, limit_for(p->x, p->math)));
    snprintf(what, sizeof what, "%s backward weight", tag);
    compare(what, &DW, fmax(tiny, limit_for(p->w, p->math)));
    snprintf(what, sizeof what, "%s backward bias", tag);
    compare(what, &DB, fmax(tiny, limit_for(p->w, AMP_MATH_F32)));
    snprintf(what, sizeof what, "%s backward", tag);
    counts_compare(what, 0);
    check_linear_relu(tag, p, n, k, m, &X, &W, &DY, fmax(tiny, limit_for(p->x, p->math)));
    case_free((struct pt *const[]){ &X, &W, &Bi, &Y, &DY, &DX, &DW, &DB, NULL },
              (void *const[]){ x, w, bias, dy, NULL });
}

/* The CUDA backend's table of FP8 operands reuses the entries of freed tensors: more tensors
 * quantized and freed than it has entries, and two more quantized still run an FP8 GEMM. The
 * tensors are allocated bare on the CUDA backend (no guard bytes), so that the free names the
 * address the quantization wrote. */
static void test_fp8_operand_reuse(void)
{
    const struct backend *g = &B[GPU];
    float *v = uniform(5 * 17, -1.0f, 1.0f);
    const struct fp8_tensor_state init = fp8_state_make(FP8_E4M3, 1, MX_SCALE_RCEIL, 0);
    struct pt st = pt_new(sizeof init / sizeof(int32_t), AMP_I32, MEM_OPTIMIZER, NULL);
    pt_set_raw(&st, &init, sizeof init);
    struct pt src = pt_new(5 * 17, AMP_F32, MEM_ACTIVATIONS, v);
    struct pt y = pt_new(5 * 3, AMP_BF16, MEM_ACTIVATIONS, NULL);
    struct pt bias = pt_new(3, AMP_F32, MEM_WEIGHTS, v);
    struct amp_tensor q[2] = { { NULL, 5 * 17, AMP_F32, MEM_ACTIVATIONS },
                               { NULL, 3 * 17, AMP_F32, MEM_WEIGHT_COPIES } };
    int ok = 1;
    for (int i = 0; i < 300 && ok; i++) {
        ok = g->ops->alloc(g->ctx, &q[0].data, q[0].numel * sizeof(float)) == AMP_OK;
        if (ok)
            g->ops->fp8_quantize(g->ctx, &q[0], &src.t[GPU], FP8_SCALING_CURRENT, &st.t[GPU],
                                 NULL, 0);
        g->ops->free(g->ctx, q[0].data);
    }
    const long long gemms0 = fp8_gemms_issued();
    for (int k = 0; k < 2 && ok; k++) {
        struct amp_tensor from = src.t[GPU]; /* x [5, 17], then w [3, 17] of the same values */
        from.numel = q[k].numel;
        ok = g->ops->alloc(g->ctx, &q[k].data, q[k].numel * sizeof(float)) == AMP_OK;
        if (ok)
            g->ops->fp8_quantize(g->ctx, &q[k], &from, FP8_SCALING_CURRENT, &st.t[GPU], NULL,
                                 0);
    }
    if (ok)
        g->ops->linear_forward(g->ctx, &y.t[GPU], &q[0], &q[1], &bias.t[GPU], 5, 17, 3,
                               AMP_MATH_F32);
    result(ok, "fp8 operand table: 302 tensors quantized on cuda");
    fp8_gemms_expect(gemms0, 1, "fp8 operand table after 300 freed operands");
    for (int k = 0; k < 2; k++)
        g->ops->free(g->ctx, q[k].data);
    case_free((struct pt *const[]){ &st, &src, &y, &bias, NULL }, (void *const[]){ v, NULL });
}

static void test_linear(void)
{
    static const struct fc_plan plans[] = {
        { "fp32", AMP_F32, AMP_F32, AMP_F32, AMP_MATH_F32 },
        { "tf32", AMP_F32, AMP_F32, AMP_F32, AMP_MATH_TF32 },
        { "seed amp (fp16 x fp32)", AMP_F16, AMP_F32, AMP_F32, AMP_MATH_F32 },
        { "seed bf16 (bf16 x fp32)", AMP_BF16, AMP_F32, AMP_F32, AMP_MATH_F32 },
        { "autocast fp16", AMP_F16, AMP_F16, AMP_F16, AMP_MATH_F32 },
        { "autocast bf16", AMP_BF16, AMP_BF16, AMP_BF16, AMP_MATH_F32 },
    };
    const uint32_t shapes[][3] = { { 32, 12544, 10 }, { 5, 17, 3 }, { 64, 300, 33 }, { 1, 7, 10 },
                                   { 130, 1000, 10 } };
    for (volatile size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (volatile size_t pi = 0; pi < sizeof plans / sizeof plans[0]; pi++)
            CASE(test_linear_case(shapes[si][0], shapes[si][1], shapes[si][2], &plans[pi], 1.0f));
    CASE(test_linear_case(32, 12544, 10, &plans[2], 1e-6f));
    CASE(test_linear_case(32, 12544, 10, &plans[4], 1e-6f));
    /* FP8 layers: lenet5's FC shapes (the first from 400 inputs), one padded to 16 everywhere. */
    const uint32_t fp8_shapes[][3] = { { 32, 400, 120 }, { 32, 84, 10 }, { 5, 17, 3 } };
    for (volatile size_t si = 0; si < sizeof fp8_shapes / sizeof fp8_shapes[0]; si++) {
        CASE(test_fp8_linear_case(fp8_shapes[si][0], fp8_shapes[si][1], fp8_shapes[si][2],
                                  FP8_SCALING_DELAYED));
        CASE(test_fp8_linear_case(fp8_shapes[si][0], fp8_shapes[si][1], fp8_shapes[si][2],
                                  FP8_SCALING_CURRENT));
        CASE(test_fp8_linear_case(fp8_shapes[si][0], fp8_shapes[si][1], fp8_shapes[si][2],
                                  FP8_SCALING_MX));
    }
    CASE(test_fp8_operand_reuse());
}

/* ---- pooling, batch norm, add ---- */

/* Values with many ties (a few levels, both zeros) and NaN/inf now and then: every tie-break and
 * NaN rule of the max pooling shows. */
static float *ties(size_t n)
{
    static const float lv[] = { -1.5f, -0.0f, 0.0f, 0.5f, 0.5f, 2.0f, 2.0f, 2.0f };
    float *v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        die("host memory");
    for (size_t i = 0; i < n; i++) {
        const uint32_t r = rng_below(&R, 64);
        v[i] = r == 0 ? NAN : r == 1 ? INFINITY : r == 2 ? -INFINITY : lv[r % 8];
    }
    return v;
}

static void test_maxpool_case(uint32_t n, uint32_t c, uint32_t h, uint32_t w, enum amp_dtype dt,
                              enum amp_dtype ddt, int tie_values)
{
    const size_t nx = (size_t)n * c * h * w, ny = (size_t)n * c * (h / 2) * (w / 2);
    float *x = tie_values ? ties(nx) : wide(nx), *g = uniform(ny ? ny : 1, -2.0f, 2.0f);
    struct pt X = pt_new(nx, dt, MEM_ACTIVATIONS, x), Y = pt_new(ny, dt, MEM_ACTIVATIONS, NULL);
    struct pt DY = pt_new(ny, dt, MEM_ACTIVATION_GRADS, g);
    struct pt DX = pt_new(nx, ddt, MEM_ACTIVATION_GRADS, NULL);
    char tag[128], what[160];
    snprintf(tag, sizeof tag, "maxpool n=%u c=%u %ux%u %s%s%s%s", n, c, h, w, dtype_name(dt),
             ddt != dt ? " dinp " : "", ddt != dt ? dtype_name(ddt) : "",
             tie_values ? " ties" : " wide");
    counts_reset();
    for (int b = 0; b < 2; b++)
        B[b].ops->maxpool_forward(B[b].ctx, &Y.t[b], &X.t[b], n, c, h, w);
    snprintf(what, sizeof what, "%s forward", tag);
    compare(what, &Y, 0.0);
    counts_compare(what, 1);
    for (int b = 0; b < 2; b++)
        B[b].ops->maxpool_backward(B[b].ctx, &DX.t[b], &DY.t[b], &X.t[b], n, c, h, w);
    snprintf(what, sizeof what, "%s backward", tag);
    compare(what, &DX, 0.0);
    counts_compare(what, 1);
    struct pt *all[] = { &X, &Y, &DY, &DX };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pt_free(all[i]);
    free(x);
    free(g);
}

static void test_maxpool(void)
{
    const uint32_t shapes[][4] = { { 2, 3, 28, 28 }, { 1, 2, 7, 5 }, { 3, 4, 2, 2 },
                                   { 1, 3, 9, 8 }, { 2, 2, 1, 5 }, { 4, 16, 14, 14 } };
    for (volatile size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (volatile int d = 0; d < 3; d++)
            for (volatile int t = 0; t < 2; t++)
                CASE(test_maxpool_case(shapes[si][0], shapes[si][1], shapes[si][2], shapes[si][3],
                                       FLOATS[d], FLOATS[d], t));
    /* A gradient of another dtype than dinp: converted, rounded and counted. */
    CASE(test_maxpool_case(2, 3, 9, 8, AMP_F16, AMP_F32, 1));
    CASE(test_maxpool_case(2, 3, 9, 8, AMP_F32, AMP_BF16, 0));
}

static void test_avgpool_case(uint32_t n, uint32_t c, uint32_t hw, enum amp_dtype xdt,
                              enum amp_dtype ydt, int wide_values)
{
    const size_t nx = (size_t)n * c * hw, ny = (size_t)n * c;
    float *x = wide_values ? wide(nx) : uniform(nx, -3.0f, 3.0f), *g = uniform(ny, -2.0f, 2.0f);
    if (!wide_values)
        for (size_t i = 0; i < ny; i++)
            g[i] *= 1000.0f; /* dinp = dout / hw: some FP16 subnormals for large hw */
    struct pt X = pt_new(nx, xdt, MEM_ACTIVATIONS, x), Y = pt_new(ny, ydt, MEM_ACTIVATIONS, NULL);
    struct pt DY = pt_new(ny, ydt, MEM_ACTIVATION_GRADS, g);
    struct pt DX = pt_new(nx, xdt, MEM_ACTIVATION_GRADS, NULL);
    char tag[128], what[160];
    snprintf(tag, sizeof tag, "avgpool n=%u c=%u hw=%u %s -> %s%s", n, c, hw, dtype_name(xdt),
             dtype_name(ydt), wide_values ? " wide" : "");
    counts_reset();
    for (int b = 0; b < 2; b++)
        B[b].ops->avgpool_forward(B[b].ctx, &Y.t[b], &X.t[b], n, c, hw);
    snprintf(what, sizeof what, "%s forward", tag);
    compare(what, &Y, 0.0);
    counts_compare(what, 1);
    for (int b = 0; b < 2; b++)
        B[b].ops->avgpool_backward(B[b].ctx, &DX.t[b], &DY.t[b], n, c, hw);
    snprintf(what, sizeof what, "%s backward", tag);
    compare(what, &DX, 0.0);
    counts_compare(what, 1);
    struct pt *all[] = { &X, &Y, &DY, &DX };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pt_free(all[i]);
    free(x);
    free(g);
}

static void test_avgpool(void)
{
    const uint32_t shapes[][3] = { { 4, 16, 49 }, { 3, 5, 7 }, { 2, 3, 1 }, { 2, 64, 784 },
                                   { 1, 1, 1000 } };
    for (volatile size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (volatile int d = 0; d < 3; d++)
            CASE(test_avgpool_case(shapes[si][0], shapes[si][1], shapes[si][2], FLOATS[d],
                                   FLOATS[d], 0));
    for (volatile int d = 0; d < 3; d++)
        CASE(test_avgpool_case(3, 4, 25, FLOATS[d], FLOATS[d], 1));
    CASE(test_avgpool_case(4, 8, 49, AMP_F16, AMP_F32, 0));
    CASE(test_avgpool_case(4, 8, 49, AMP_F32, AMP_BF16, 0));
}

static void test_add_case(size_t n, enum amp_dtype adt, enum amp_dtype bdt, enum amp_dtype odt,
                          int in_place)
{
    float *a = wide(n), *b = wide(n);
    struct pt A = pt_new(n, adt, MEM_ACTIVATIONS, a), Bt = pt_new(n, bdt, MEM_ACTIVATIONS, b);
    struct pt O = pt_new(n, odt, MEM_ACTIVATIONS, NULL);
    struct pt *out = in_place ? &A : &O;
    char what[128];
    snprintf(what, sizeof what, "add n=%zu %s + %s -> %s%s", n, dtype_name(adt), dtype_name(bdt),
             dtype_name(in_place ? adt : odt), in_place ? " (in place)" : "");
    counts_reset();
    for (int k = 0; k < 2; k++)
        B[k].ops->add(B[k].ctx, &out->t[k], &A.t[k], &Bt.t[k]);
    compare(what, out, 0.0);
    counts_compare(what, 1);
    pt_free(&A);
    pt_free(&Bt);
    pt_free(&O);
    free(a);
    free(b);
}

static void test_add(void)
{
    const size_t sizes[] = { 1, 7, 4096, 10003 };
    for (volatile size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
        for (volatile int d = 0; d < 3; d++)
            CASE(test_add_case(sizes[si], FLOATS[d], FLOATS[d], FLOATS[d], 0));
    for (volatile int d = 0; d < 3; d++)
        CASE(test_add_case(3001, FLOATS[d], FLOATS[d], FLOATS[d], 1));
    CASE(test_add_case(3001, AMP_F16, AMP_F32, AMP_F32, 0));
    CASE(test_add_case(3001, AMP_BF16, AMP_F16, AMP_F16, 0));
    CASE(test_add_case(3001, AMP_F32, AMP_F32, AMP_BF16, 0));
    CASE(test_add_case(3001, AMP_F32, AMP_F16, AMP_F16, 1));
}

/* gather_batch: a batch of n samples of `pixels` bytes drawn (with repeats, the last sample
 * included) from a data set of `samples` holding every byte value; images must be the FP32
 * division by 255 bit for bit on both backends, labels the stored bytes. */
static void test_gather_batch_case(uint32_t samples, uint32_t pixels, uint32_t n)
{
    float *data = malloc((size_t)samples * pixels * sizeof *data),
          *labels = malloc(samples * sizeof *labels), *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!data || !labels || !idx)
        die("host memory");
    for (size_t i = 0; i < (size_t)samples * pixels; i++)
        data[i] = (float)(i < 256 ? i : rng_below(&R, 256));
    for (uint32_t i = 0; i < samples; i++)
        labels[i] = (float)rng_below(&R, 10);
    for (uint32_t i = 0; i < n; i++)
        idx[i] = (float)(i == 0 ? samples - 1 : rng_below(&R, samples));
    struct pt D = pt_new((size_t)samples * pixels, AMP_U8, MEM_DATA, data);
    struct pt DL = pt_new(samples, AMP_U8, MEM_DATA, labels);
    struct pt I = pt_new(n, AMP_I32, MEM_DATA, idx);
    struct pt X = pt_new((size_t)n * pixels, AMP_F32, MEM_ACTIVATIONS, NULL);
    struct pt L = pt_new(n, AMP_I32, MEM_ACTIVATIONS, NULL);
    char what[128];
    for (int k = 0; k < 2; k++)
        B[k].ops->gather_batch(B[k].ctx, &X.t[k], &L.t[k], &D.t[k], &DL.t[k], &I.t[k], n, pixels);
    snprintf(what, sizeof what, "gather_batch %u of %u samples x %u pixels: images", n, samples,
             pixels);
    compare(what, &X, 0.0);
    snprintf(what, sizeof what, "gather_batch %u of %u samples x %u pixels: labels", n, samples,
             pixels);
    compare(what, &L, 0.0);
    case_free((struct pt *const[]){ &D, &DL, &I, &X, &L, NULL },
              (void *const[]){ data, labels, idx, NULL });
}

static void test_gather_batch(void)
{
    CASE(test_gather_batch_case(100, 784, 32)); /* Fashion-MNIST's samples */
    CASE(test_gather_batch_case(7, 3 * 5 * 5, 13));
    CASE(test_gather_batch_case(1, 1, 1));
    CASE(test_gather_batch_case(40, 784, 0)); /* an empty batch writes nothing */
}

/* Batch-norm parity limits (docs/CUDA.md). FP32 outputs and statistics: the statistics' FP32
 * sums are reduced in another order (the GPU's chunked trees, the reference's vector lanes per
 * image plane), which moves the mean by a few ulps of the channel's sum; with means several
 * standard deviations from 0 (as here) that is ~1e-6 of xhat, NMSE up to ~1e-11, under the
 * conv/GEMM FP32 limit 1e-9. The per-channel sums dgamma and dbeta add N = n * hw terms of
 * both signs whose totals are far smaller than the terms: a different order changes them by
 * ~sqrt(N) * 2^-24 of the terms' size, relatively ~1e-5 at N = 25,000 (NMSE ~1e-10): 1e-8.
 * FP16/BF16 tensors: the dtype's conv/GEMM limit (a flipped rounding here and there). */
static double bn_limit(enum amp_dtype out, int channel_sum)
{
    if (out == AMP_F32)
        return channel_sum ? 1e-8 : 1e-9;
    return limit_for(out, AMP_MATH_F32);
}

static void test_batchnorm_case(uint32_t n, uint32_t c, uint32_t hw, enum amp_dtype dt,
                                enum amp_dtype sdt)
{
    const size_t nx = (size_t)n * c * hw;
    float *x = uniform(nx, -1.0f, 1.0f), *g = uniform(nx, -1.0f, 1.0f);
    float *gamma = uniform(c, 0.5f, 1.5f), *beta = uniform(c, -0.5f, 0.5f);
    float *rm = uniform(c, -0.2f, 0.2f), *rv = uniform(c, 0.5f, 2.0f);
    /* Channel offsets and scales, so the means and variances differ from 0 and 1. */
    for (size_t i = 0; i < nx; i++) {
        const size_t ch = (i / hw) % c;
        x[i] = x[i] * (0.5f + (float)(ch % 5)) + (float)ch * 0.75f - 2.0f;
    }
    struct pt X = pt_new(nx, dt, MEM_ACTIVATIONS, x), Y = pt_new(nx, dt, MEM_ACTIVATIONS, NULL);
    struct pt DY = pt_new(nx, dt, MEM_ACTIVATION_GRADS, g);
    struct pt DX = pt_new(nx, dt, MEM_ACTIVATION_GRADS, NULL);
    struct pt G = pt_new(c, sdt, MEM_WEIGHTS, gamma), Be = pt_new(c, sdt, MEM_WEIGHTS, beta);
    struct pt RM = pt_new(c, sdt, MEM_OPTIMIZER, rm), RV = pt_new(c, sdt, MEM_OPTIMIZER, rv);
    struct pt SM = pt_new(c, sdt, MEM_ACTIVATIONS, NULL);
    struct pt SI = pt_new(c, sdt, MEM_ACTIVATIONS, NULL);
    struct pt DG = pt_new(c, sdt, MEM_WEIGHT_GRADS, NULL);
    struct pt DB = pt_new(c, sdt, MEM_WEIGHT_GRADS, NULL);
    struct bn_state bn[2];
    for (int b = 0; b < 2; b++)
        bn[b] = (struct bn_state){ .gamma = &G.t[b], .beta = &Be.t[b], .running_mean = &RM.t[b],
                                   .running_var = &RV.t[b], .save_mean = &SM.t[b],
                                   .save_invstd = &SI.t[b], .momentum = 0.1f, .eps = 1e-5f };
    char tag[128], what[192];
    snprintf(tag, sizeof tag, "batchnorm n=%u c=%u hw=%u %s stats %s", n, c, hw, dtype_name(dt),
             dtype_name(sdt));

    /* Evaluation first (from the initial running statistics), then training. */
    counts_reset();
    for (int b = 0; b < 2; b++)
        B[b].ops->batchnorm_forward(B[b].ctx, &Y.t[b], &X.t[b], &bn[b], n, c, hw, 0);
    snprintf(what, sizeof what, "%s eval forward", tag);
    compare(what, &Y, bn_limit(dt, 0));
    counts_compare(what, 0);

    for (int b = 0; b < 2; b++)
        B[b].ops->batchnorm_forward(B[b].ctx, &Y.t[b], &X.t[b], &bn[b], n, c, hw, 1);
    snprintf(what, sizeof what, "%s train forward", tag);
    compare(what, &Y, bn_limit(dt, 0));
    snprintf(what, sizeof what, "%s train save_mean", tag);
    compare(what, &SM, bn_limit(sdt, 0));
    snprintf(what, sizeof what, "%s train save_invstd", tag);
    compare(what, &SI, bn_limit(sdt, 0));
    snprintf(what, sizeof what, "%s train running_mean", tag);
    compare(what, &RM, bn_limit(sdt, 0));
    snprintf(what, sizeof what, "%s train running_var", tag);
    compare(what, &RV, bn_limit(sdt, 0));
    snprintf(what, sizeof what, "%s train forward", tag);
    counts_compare(what, 0);

    for (int b = 0; b < 2; b++)
        B[b].ops->batchnorm_backward(B[b].ctx, &DX.t[b], &DG.t[b], &DB.t[b], &DY.t[b], &X.t[b],
                                     &bn[b], n, c, hw);
    snprintf(what, sizeof what, "%s backward data", tag);
    compare(what, &DX, bn_limit(dt, 0));
    snprintf(what, sizeof what, "%s backward gamma", tag);
    compare(what, &DG, bn_limit(sdt, 1));
    snprintf(what, sizeof what, "%s backward beta", tag);
    compare(what, &DB, bn_limit(sdt, 1));
    snprintf(what, sizeof what, "%s backward", tag);
    counts_compare(what, 0);

    /* Evaluation again, from the updated running statistics. */
    for (int b = 0; b < 2; b++)
        B[b].ops->batchnorm_forward(B[b].ctx, &Y.t[b], &X.t[b], &bn[b], n, c, hw, 0);
    snprintf(what, sizeof what, "%s eval forward (updated stats)", tag);
    compare(what, &Y, bn_limit(dt, 0));
    counts_compare(what, 0);

    struct pt *all[] = { &X, &Y, &DY, &DX, &G, &Be, &RM, &RV, &SM, &SI, &DG, &DB };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pt_free(all[i]);
    free(x);
    free(g);
    free(gamma);
    free(beta);
    free(rm);
    free(rv);
}

static void test_batchnorm(void)
{
    /* The last two: few channels over many elements, so that a channel's sums are split into
     * several chunks (some starting and ending inside an image plane). */
    const uint32_t shapes[][3] = { { 4, 16, 784 }, { 3, 5, 7 }, { 8, 3, 1 }, { 8, 4, 49 },
                                   { 1, 7, 9 }, { 32, 16, 196 }, { 16, 2, 1024 }, { 5, 3, 3001 } };
    for (volatile size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (volatile int d = 0; d < 3; d++) {
            /* FP32 statistics (every policy but naive), and the data's own dtype (naive). */
            CASE(test_batchnorm_case(shapes[si][0], shapes[si][1], shapes[si][2], FLOATS[d],
                                     AMP_F32));
            if (FLOATS[d] != AMP_F32)
                CASE(test_batchnorm_case(shapes[si][0], shapes[si][1], shapes[si][2], FLOATS[d],
                                         FLOATS[d]));
        }
}

/* A step of the new ops (max pooling, batch norm in training, global average pooling, the
 * residual add and their backward) through step_begin/step_end five times: warm-up, capture
 * (+ launch), three replays, against eager CPU steps; the running statistics change at every
 * step, so every replay must update them again. */
static void test_graph_steps_layers(void)
{
    const uint32_t n = 4, c = 8, h = 10, w = 10, hw = (h / 2) * (w / 2);
    const size_t nx = (size_t)n * c * h * w, np = (size_t)n * c * hw, ny = (size_t)n * c;
    const enum amp_dtype dt = AMP_F16;
    float *x = uniform(nx, -2.0f, 2.0f), *g = uniform(ny, -1.0f, 1.0f);
    float *gamma = uniform(c, 0.5f, 1.5f), *beta = uniform(c, -0.5f, 0.5f);
    float *rv = uniform(c, 0.5f, 2.0f);
    struct pt X = pt_new(nx, dt, MEM_ACTIVATIONS, x), P = pt_new(np, dt, MEM_ACTIVATIONS, NULL);
    struct pt Q = pt_new(np, dt, MEM_ACTIVATIONS, NULL), S = pt_new(np, dt, MEM_ACTIVATIONS, NULL);
    struct pt A = pt_new(ny, dt, MEM_ACTIVATIONS, NULL);
    struct pt DA = pt_new(ny, dt, MEM_ACTIVATION_GRADS, g);
    struct pt DS = pt_new(np, dt, MEM_ACTIVATION_GRADS, NULL);
    struct pt DP = pt_new(np, dt, MEM_ACTIVATION_GRADS, NULL);
    struct pt DX = pt_new(nx, dt, MEM_ACTIVATION_GRADS, NULL);
    struct pt G = pt_new(c, AMP_F32, MEM_WEIGHTS, gamma);
    struct pt Be = pt_new(c, AMP_F32, MEM_WEIGHTS, beta);
    struct pt RM = pt_new(c, AMP_F32, MEM_OPTIMIZER, NULL);
    struct pt RV = pt_new(c, AMP_F32, MEM_OPTIMIZER, rv);
    struct pt SM = pt_new(c, AMP_F32, MEM_ACTIVATIONS, NULL);
    struct pt SI = pt_new(c, AMP_F32, MEM_ACTIVATIONS, NULL);
    struct pt DG = pt_new(c, AMP_F32, MEM_WEIGHT_GRADS, NULL);
    struct pt DB = pt_new(c, AMP_F32, MEM_WEIGHT_GRADS, NULL);
    struct bn_state bn[2];
    for (int b = 0; b < 2; b++)
        bn[b] = (struct bn_state){ .gamma = &G.t[b], .beta = &Be.t[b], .running_mean = &RM.t[b],
                                   .running_var = &RV.t[b], .save_mean = &SM.t[b],
                                   .save_invstd = &SI.t[b], .momentum = 0.1f, .eps = 1e-5f };
    int replayed[5] = { 0 };
    counts_reset();
    for (int step = 0; step < 5; step++)
        for (int b = 0; b < 2; b++) {
            const struct backend_ops *ops = B[b].ops;
            void *ctx = B[b].ctx;
            const int r = ops->step_begin ? ops->step_begin(ctx, 0xB0A7ull) : 0;
            if (b == GPU)
                replayed[step] = r;
            if (r)
                continue;
            /* forward: pool, batch norm, residual add, global average */
            ops->maxpool_forward(ctx, &P.t[b], &X.t[b], n, c, h, w);
            ops->batchnorm_forward(ctx, &Q.t[b], &P.t[b], &bn[b], n, c, hw, 1);
            ops->add(ctx, &S.t[b], &Q.t[b], &P.t[b]);
            ops->avgpool_forward(ctx, &A.t[b], &S.t[b], n, c, hw);
            /* backward: the gradient forks at the add and is summed into DP */
            ops->avgpool_backward(ctx, &DS.t[b], &DA.t[b], n, c, hw);
            ops->batchnorm_backward(ctx, &DP.t[b], &DG.t[b], &DB.t[b], &DS.t[b], &P.t[b], &bn[b],
                                    n, c, hw);
            ops->add(ctx, &DP.t[b], &DP.t[b], &DS.t[b]);
            ops->maxpool_backward(ctx, &DX.t[b], &DP.t[b], &X.t[b], n, c, h, w);
            if (ops->step_end)
                ops->step_end(ctx);
        }
    result(!replayed[0] && !replayed[1] && replayed[2] && replayed[3] && replayed[4],
           "graph steps (pool, batch norm, add): step_begin returned %d %d %d %d %d (want 0 0 1 "
           "1 1)", replayed[0], replayed[1], replayed[2], replayed[3], replayed[4]);
    compare("graph steps (pool, batch norm, add): running_mean after 5 steps", &RM,
            bn_limit(AMP_F32, 0));
    compare("graph steps (pool, batch norm, add): running_var after 5 steps", &RV,
            bn_limit(AMP_F32, 0));
    compare("graph steps (pool, batch norm, add): output", &A, limit_for(dt, AMP_MATH_F32));
    compare("graph steps (pool, batch norm, add): dgamma", &DG, bn_limit(AMP_F32, 1));
    compare("graph steps (pool, batch norm, add): dinp", &DX, limit_for(dt, AMP_MATH_F32));
    counts_compare("graph steps (pool, batch norm, add)", 0);
    struct pt *all[] = { &X, &P, &Q, &S, &A, &DA, &DS, &DP, &DX, &G, &Be, &RM, &RV, &SM, &SI,
                         &DG, &DB };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pt_free(all[i]);
    free(x);
    free(g);
    free(gamma);
    free(beta);
    free(rv);
}

/* ---- sequences: the fused queue, graphs, determinism ---- */

/* The parameters of a seed-like net for the optimizer part of a step (model.c's
 * backward_and_update after the layer gradients). */
struct params {
    struct pt w[4], v[4], copy[4], grad[4], master[4];
    int has_copy[4];
};

static void params_new(struct params *P, enum amp_dtype lowp, int fc_lowp)
{
    const size_t sizes[4] = { 144, 16, 125440, 10 };
    memset(P, 0, sizeof *P);
    for (int i = 0; i < 4; i++) {
        const enum amp_dtype used = i < 2 || fc_lowp ? lowp : AMP_F32;
        float *w = uniform(sizes[i], -0.1f, 0.1f), *g = uniform(sizes[i], -100.0f, 100.0f);
        P->w[i] = pt_new(sizes[i], AMP_F32, MEM_WEIGHTS, w);
        P->v[i] = pt_new(sizes[i], AMP_F32, MEM_OPTIMIZER, NULL);
        P->grad[i] = pt_new(sizes[i], used, MEM_WEIGHT_GRADS, g);
        P->has_copy[i] = used != AMP_F32;
        if (P->has_copy[i]) {
            P->copy[i] = pt_new(sizes[i], used, MEM_WEIGHT_COPIES, NULL);
            P->master[i] = pt_new(sizes[i], AMP_F32, MEM_WEIGHT_GRADS, NULL);
        }
        free(w);
        free(g);
    }
}

static void params_free(struct params *P)
{
    for (int i = 0; i < 4; i++) {
        pt_free(&P->w[i]);
        pt_free(&P->v[i]);
        pt_free(&P->grad[i]);
        if (P->has_copy[i]) {
            pt_free(&P->copy[i]);
            pt_free(&P->master[i]);
        }
    }
}

/* model.c's order: per parameter cast to the master gradient, unscale; then SGD; then the
 * scaler update. */
static void optimizer_ops(struct params *P, int b, struct pt *S)
{
    const struct backend_ops *ops = B[b].ops;
    void *ctx = B[b].ctx;
    for (int i = 0; i < 4; i++) {
        struct amp_tensor *g = P->has_copy[i] ? &P->master[i].t[b] : &P->grad[i].t[b];
        if (P->has_copy[i])
            ops->cast(ctx, &P->master[i].t[b], &P->grad[i].t[b]);
        if (S)
            ops->unscale(ctx, g, &S->t[b]);
    }
    for (int i = 0; i < 4; i++)
        ops->sgd_momentum(ctx, &P->w[i].t[b], &P->v[i].t[b],
                          P->has_copy[i] ? &P->copy[i].t[b] : NULL,
                          P->has_copy[i] ? &P->master[i].t[b] : &P->grad[i].t[b],
                          S ? &S->t[b] : NULL, 0.01f, 0.9f);
    if (S)
        ops->scaler_update(ctx, &S->t[b]);
}

static void compare_params(struct params *P, const char *tag)
{
    char what[128];
    for (int i = 0; i < 4; i++) {
        snprintf(what, sizeof what, "%s: weights %d", tag, i);
        compare(what, &P->w[i], 1e-12);
        snprintf(what, sizeof what, "%s: velocity %d", tag, i);
        compare(what, &P->v[i], 1e-12);
        if (P->has_copy[i]) {
            snprintf(what, sizeof what, "%s: copy %d", tag, i);
            compare(what, &P->copy[i], 1e-8);
        }
    }
}

static void test_optimizer_sequence(void)
{
    struct {
        const char *name;
        enum amp_dtype lowp;
        int fc_lowp, scaled, inf;
    } cases[] = {
        { "amp seed (fused cast+unscale, sgd)", AMP_F16, 0, 1, 0 },
        { "amp seed, inf gradient (skipped)", AMP_F16, 0, 1, 1 },
        { "fp16 autocast", AMP_F16, 1, 1, 0 },
        { "bf16 seed, no scaler", AMP_BF16, 0, 0, 0 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct params P;
        params_new(&P, cases[c].lowp, cases[c].fc_lowp);
        if (cases[c].inf) {
            float *g = uniform(10, -1.0f, 1.0f);
            g[3] = INFINITY;
            pt_set(&P.grad[3], g);
            free(g);
        }
        struct pt S = scaler_new(scaler_make(65536.0f, 1, 2000, 0.0f, 0.0f));
        counts_reset();
        for (int b = 0; b < 2; b++)
            optimizer_ops(&P, b, cases[c].scaled ? &S : NULL);
        compare_params(&P, cases[c].name);
        counts_compare(cases[c].name, 0);
        if (cases[c].scaled)
            scalers_equal(&S, cases[c].name);
        pt_free(&S);
        params_free(&P);
    }
}

/* A step through step_begin/step_end five times: warm-up (eager), capture (+ launch), three
 * replays; the scaler's scale changes on the device between replays (growth interval 2, and an
 * inf gradient uploaded before the fourth step) and the replays must follow it. */
static void test_graph_steps(void)
{
    struct params P;
    params_new(&P, AMP_F16, 0);
    const uint32_t n = 8, m = 10;
    float *z = uniform((size_t)n * m, -4.0f, 4.0f), *y = malloc(n * sizeof *y);
    if (!y)
        die("host memory");
    for (uint32_t i = 0; i < n; i++)
        y[i] = (float)(i % m);
    struct pt Z = pt_new((size_t)n * m, AMP_F32, MEM_ACTIVATIONS, z);
    struct pt Y = pt_new(n, AMP_I32, MEM_ACTIVATIONS, y);
    struct pt ST = pt_new(2, AMP_F32, MEM_ACTIVATIONS, NULL);
    struct pt DZ = pt_new((size_t)n * m, AMP_F16, MEM_ACTIVATION_GRADS, NULL);
    struct pt S = scaler_new(scaler_make(1024.0f, 1, 2, 0.0f, 0.0f));
    int replayed[5] = { 0 };
    float *g = uniform(16, -1.0f, 1.0f);
    for (int step = 0; step < 5; step++) {
        if (step == 3) {
            g[5] = INFINITY;
            pt_set(&P.grad[1], g);
        } else if (step == 4) {
            g[5] = 0.5f;
            pt_set(&P.grad[1], g);
        }
        for (int b = 0; b < 2; b++) {
            const struct backend_ops *ops = B[b].ops;
            int r = ops->step_begin ? ops->step_begin(B[b].ctx, 0x5EEDull) : 0;
            if (b == GPU)
                replayed[step] = r;
            if (!r) {
                ops->softmax_xent(B[b].ctx, &DZ.t[b], &ST.t[b], &Z.t[b], &Y.t[b], &S.t[b], n, m,
                                  AMP_F32);
                optimizer_ops(&P, b, &S);
                if (ops->step_end)
                    ops->step_end(B[b].ctx);
            }
        }
    }
    result(!replayed[0] && !replayed[1] && replayed[2] && replayed[3] && replayed[4],
           "graph steps: step_begin returned %d %d %d %d %d (want 0 0 1 1 1: warm-up, capture, "
           "replays)", replayed[0], replayed[1], replayed[2], replayed[3], replayed[4]);
    compare_params(&P, "graph steps");
    compare("graph steps: dlogits (scaled by the device-side scale)", &DZ, 1e-5);
    scalers_equal(&S, "graph steps");
    struct pt *all[] = { &Z, &Y, &ST, &DZ, &S };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pt_free(all[i]);
    params_free(&P);
    free(z);
    free(y);
    free(g);
}

/* Between step_begin and step_end only ops may be issued: an upload inside a captured step (a
 * replay would copy the same host bytes again) is refused with an error that says so. */
static void test_capture_guard(void)
{
    struct backend G;
    if (backend_open(&G, "cuda", &gpu_opts) != AMP_OK)
        die("open cuda");
    void *d = NULL;
    const float x = 1.0f;
    int refused = 0, began = 0;
    if (G.ops->alloc(G.ctx, &d, sizeof x) != AMP_OK)
        die("cuda alloc");
    for (int step = 0; step < 2; step++) { /* the eager warm-up, then the captured step */
        began |= G.ops->step_begin(G.ctx, 0xCAFEull);
        if (step == 1)
            refused = G.ops->upload(G.ctx, d, &x, sizeof x) != AMP_OK &&
                      strstr(amp_last_error(), "while a step is being captured") != NULL;
        G.ops->step_end(G.ctx);
    }
    result(refused && !began, "capture guard: an upload inside a captured step is refused (%s)",
           refused ? amp_last_error() : "accepted");
    backend_close(&G);
}

/* The batch-norm, pooling and add kernels are deterministic whatever the backend options
 * (fixed chunks, block trees, no float atomics): twice the same bits on the GPU. */
static void test_deterministic_layers(void)
{
    const uint32_t n = 16, c = 3, hw = 2000;
    const size_t nx = (size_t)n * c * hw;
    float *x = uniform(nx, -1.0f, 3.0f), *g = uniform(nx, -1.0f, 1.0f);
    float *one = uniform(c, 1.0f, 1.0f);
    struct pt X = pt_new(nx, AMP_F32, MEM_ACTIVATIONS, x);
    struct pt Y = pt_new(nx, AMP_F32, MEM_ACTIVATIONS, NULL);
    struct pt DY = pt_new(nx, AMP_F32, MEM_ACTIVATION_GRADS, g);
    struct pt DX = pt_new(nx, AMP_F32, MEM_ACTIVATION_GRADS, NULL);
    struct pt A = pt_new((size_t)n * c, AMP_F32, MEM_ACTIVATIONS, NULL);
    struct pt G = pt_new(c, AMP_F32, MEM_WEIGHTS, one), Be = pt_new(c, AMP_F32, MEM_WEIGHTS, NULL);
    struct pt RM = pt_new(c, AMP_F32, MEM_OPTIMIZER, NULL);
    struct pt RV = pt_new(c, AMP_F32, MEM_OPTIMIZER, one);
    struct pt SM = pt_new(c, AMP_F32, MEM_ACTIVATIONS, NULL);
    struct pt SI = pt_new(c, AMP_F32, MEM_ACTIVATIONS, NULL);
    struct pt DG = pt_new(c, AMP_F32, MEM_WEIGHT_GRADS, NULL);
    struct pt DB = pt_new(c, AMP_F32, MEM_WEIGHT_GRADS, NULL);
    struct bn_state bn = { .gamma = &G.t[GPU], .beta = &Be.t[GPU], .running_mean = &RM.t[GPU],
                           .running_var = &RV.t[GPU], .save_mean = &SM.t[GPU],
                           .save_invstd = &SI.t[GPU], .momentum = 0.1f, .eps = 1e-5f };
    struct pt *outs[] = { &Y, &DX, &A, &SM, &SI, &DG, &DB };
    enum { NOUT = sizeof outs / sizeof outs[0] };
    float *first[NOUT] = { 0 };
    int same = 1;
    for (int rep = 0; rep < 2; rep++) {
        const struct backend_ops *ops = B[GPU].ops;
        void *ctx = B[GPU].ctx;
        ops->batchnorm_forward(ctx, &Y.t[GPU], &X.t[GPU], &bn, n, c, hw, 1);
        ops->batchnorm_backward(ctx, &DX.t[GPU], &DG.t[GPU], &DB.t[GPU], &DY.t[GPU], &X.t[GPU],
                                &bn, n, c, hw);
        ops->add(ctx, &DX.t[GPU], &DX.t[GPU], &Y.t[GPU]);
        ops->avgpool_forward(ctx, &A.t[GPU], &DX.t[GPU], n, c, hw);
        for (int o = 0; o < NOUT; o++) {
            float *v = pt_get(outs[o], GPU, "deterministic layers");
            if (rep == 0) {
                first[o] = v;
            } else {
                same &= memcmp(first[o], v, outs[o]->t[GPU].numel * sizeof(float)) == 0;
                free(v);
            }
        }
    }
    result(same, "deterministic: batch norm forward/backward, add, avgpool bitwise repeatable");
    for (int o = 0; o < NOUT; o++)
        free(first[o]);
    struct pt *all[] = { &X, &Y, &DY, &DX, &A, &G, &Be, &RM, &RV, &SM, &SI, &DG, &DB };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pt_free(all[i]);
    free(x);
    free(g);
    free(one);
}

/* Under --deterministic, the conv and FC ops give the same bits twice. */
static void test_deterministic(void)
{
    struct backend saved = B[GPU];
    struct backend det;
    const struct backend_options o = { .threads = 0, .deterministic = 1, .graphs = 0 };
    if (backend_open(&det, "cuda", &o) != AMP_OK)
        die("open cuda (deterministic)");
    B[GPU] = det;
    const struct conv_shape s = { .n = 32, .c_in = 1, .h = 28, .w = 28, .c_out = 16, .kernel = 3,
                                  .stride = 1, .pad = 1 };
    const uint32_t k = 16 * 28 * 28, m = 10;
    const size_t nx = (size_t)s.n * 784, nw = 144, ny = (size_t)s.n * k;
    float *x = uniform(nx, 0.0f, 1.0f), *w = uniform(nw, -0.3f, 0.3f), *bias = uniform(16, -0.3f, 0.3f);
    float *fw = uniform((size_t)m * k, -0.01f, 0.01f), *fb = uniform(m, -0.01f, 0.01f);
    float *dz = uniform((size_t)s.n * m, -1.0f, 1.0f);
    const enum amp_dtype dts[] = { AMP_F32, AMP_F16 };
    for (int d = 0; d < 2; d++) {
        const enum amp_dtype dt = dts[d];
        struct pt X = pt_new(nx, dt, MEM_ACTIVATIONS, x), W = pt_new(nw, dt, MEM_WEIGHT_COPIES, w);
        struct pt Bi = pt_new(16, dt, MEM_WEIGHT_COPIES, bias);
        struct pt A = pt_new(ny, dt, MEM_ACTIVATIONS, NULL), DA = pt_new(ny, dt, MEM_ACTIVATION_GRADS, NULL);
        struct pt FW = pt_new((size_t)m * k, AMP_F32, MEM_WEIGHTS, fw), FB = pt_new(m, AMP_F32, MEM_WEIGHTS, fb);
        struct pt L = pt_new((size_t)s.n * m, AMP_F32, MEM_ACTIVATIONS, NULL);
        struct pt DL = pt_new((size_t)s.n * m, AMP_F32, MEM_ACTIVATION_GRADS, dz);
        struct pt DFW = pt_new((size_t)m * k, AMP_F32, MEM_WEIGHT_GRADS, NULL), DFB = pt_new(m, AMP_F32, MEM_WEIGHT_GRADS, NULL);
        struct pt DW = pt_new(nw, dt, MEM_WEIGHT_GRADS, NULL), DB = pt_new(16, dt, MEM_WEIGHT_GRADS, NULL);
        struct ws ws = ws_new(&s, dt, AMP_MATH_F32);
        float *first[6] = { 0 };
        struct pt *outs[6] = { &A, &L, &DA, &DFW, &DW, &DB };
        int same = 1;
        for (int rep = 0; rep < 2; rep++) {
            const struct backend_ops *ops = B[GPU].ops;
            void *ctx = B[GPU].ctx;
            ops->conv2d_forward(ctx, &A.t[GPU], &X.t[GPU], &W.t[GPU], &Bi.t[GPU], &ws.t[GPU], &s, AMP_MATH_F32, 0);
            ops->relu_forward(ctx, &A.t[GPU], &A.t[GPU]);
            ops->linear_forward(ctx, &L.t[GPU], &A.t[GPU], &FW.t[GPU], &FB.t[GPU], s.n, k, m, AMP_MATH_F32);
            ops->linear_backward(ctx, &DA.t[GPU], &DFW.t[GPU], &DFB.t[GPU], &DL.t[GPU], &A.t[GPU], &FW.t[GPU], s.n, k, m, AMP_MATH_F32, NULL);
            ops->relu_backward(ctx, &DA.t[GPU], &DA.t[GPU], &A.t[GPU]);
            ops->conv2d_backward(ctx, &DW.t[GPU], &DB.t[GPU], NULL, &DA.t[GPU], &X.t[GPU], &W.t[GPU], &ws.t[GPU], &s, AMP_MATH_F32);
            for (int o = 0; o < 6; o++) {
                float *v = pt_get(outs[o], GPU, "deterministic");
                if (rep == 0) {
                    first[o] = v;
                } else {
                    same &= memcmp(first[o], v, outs[o]->t[GPU].numel * sizeof(float)) == 0;
                    free(v);
                }
            }
        }
        result(same, "deterministic %s: conv/relu/linear forward and backward bitwise repeatable",
               dtype_name(dt));
        for (int o = 0; o < 6; o++)
            free(first[o]);
        ws_free(&ws);
        struct pt *all[] = { &X, &W, &Bi, &A, &DA, &FW, &FB, &L, &DL, &DFW, &DFB, &DW, &DB };
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            pt_free(all[i]);
    }
    if (det.ops->describe) {
        static char buf[1 << 16];
        det.ops->describe(det.ctx, buf, sizeof buf);
        printf("  deterministic backend: %s\n", buf);
    }
    B[GPU] = saved;
    backend_close(&det);
    free(x);
    free(w);
    free(bias);
    free(fw);
    free(fb);
    free(dz);
}

int main(void)
{
    char why[256];
    const struct backend_ops *cuda = backend_named("cuda");
    if (!cuda || !cuda->usable(why, sizeof why)) {
        printf("test_backend_ops: no usable CUDA device (%s): skipped\n", why);
        return 77;
    }
    rng_seed(&R, 20240611);
    const struct backend_options cpu_opts = { .threads = 0 };
    if (backend_open(&B[REF], "cpu", &cpu_opts) != AMP_OK)
        die("open cpu");
    if (backend_open(&B[GPU], "cuda", &gpu_opts) != AMP_OK)
        die("open cuda");
    printf("cast\n");
    CASE(test_cast());
    printf("relu\n");
    CASE(test_relu());
    printf("unscale\n");
    CASE(test_unscale());
    printf("scaler_update\n");
    CASE(test_scaler_update());
    printf("sgd_momentum\n");
    CASE(test_sgd());
    printf("fp8_quantize\n");
    CASE(test_fp8_quantize());
    printf("softmax_xent\n");
    CASE(test_softmax());
    printf("maxpool\n");
    test_maxpool();
    printf("avgpool\n");
    test_avgpool();
    printf("add\n");
    test_add();
    printf("gather_batch\n");
    test_gather_batch();
    printf("batchnorm\n");
    test_batchnorm();
    printf("conv2d\n");
    test_conv();
    printf("linear\n");
    test_linear();
    printf("sequences\n");
    CASE(test_optimizer_sequence());
    CASE(test_graph_steps());
    CASE(test_graph_steps_layers());
    CASE(test_capture_guard());
    static char buf[1 << 16];
    if (B[GPU].ops->describe) {
        B[GPU].ops->describe(B[GPU].ctx, buf, sizeof buf);
        printf("cuda backend: %s\n", buf);
    }
    CASE(test_deterministic_layers());
    CASE(test_deterministic()); /* last: it swaps the CUDA backend */
    backend_close(&B[GPU]);
    backend_close(&B[REF]);
    exact_summary();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
