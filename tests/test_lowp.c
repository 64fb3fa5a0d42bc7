/*
 * test_lowp.c - self-contained tests for reference/lowp.{h,c}: FP16/BF16/TF32
 * conversions, their fast (SIMD, runtime-dispatched) array paths against the
 * portable scalar definitions, and the rounding counts.
 *
 * Every fast path this CPU can run ("avx512", "f16c+avx2", "portable") is
 * tested, and the array comparisons are repeated with x86 MXCSR FTZ and DAZ
 * set and the rounding mode changed, which must change nothing.
 *
 * Exit status 0 when every check passes; one message per failed check on
 * stderr; last line printed: "N passed, N failed".
 */
#include "lowp.h"

#include <fenv.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && !defined(LOWP_NO_SIMD)
#include <xmmintrin.h>
#define TEST_X86 1
#else
#define TEST_X86 0
#endif

static unsigned g_pass, g_fail;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void check(int ok, const char *fmt, ...)
{
    if (ok) {
        g_pass++;
        return;
    }
    g_fail++;
    va_list ap;
    va_start(ap, fmt);
    fputs("FAIL: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static uint32_t fbits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float bitsf(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static int f16_is_nan(uint16_t h) { return (h & 0x7C00u) == 0x7C00u && (h & 0x03FFu) != 0; }
static int bf16_is_nan(uint16_t h) { return (h & 0x7F80u) == 0x7F80u && (h & 0x007Fu) != 0; }
static int f32_is_nan(uint32_t u) { return (u & 0x7FFFFFFFu) > 0x7F800000u; }

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

/* ------------------------------------------------------------------------ */
/* 1. Hand-computed spot values                                             */
/* ------------------------------------------------------------------------ */

static void spot_f16(uint32_t in, uint16_t want)
{
    const uint16_t got = f16_from_f32(bitsf(in));
    check(got == want, "f16_from_f32(0x%08" PRIX32 " = %a) = 0x%04X, want 0x%04X", in, (double)bitsf(in), got, want);
}

static void spot_f16_back(uint16_t h, uint32_t want)
{
    const uint32_t got = fbits(f16_to_f32(h));
    check(got == want, "f16_to_f32(0x%04X) = 0x%08" PRIX32 ", want 0x%08" PRIX32, h, got, want);
}

static void spot_bf16(uint32_t in, uint16_t want)
{
    const uint16_t got = bf16_from_f32(bitsf(in));
    check(got == want, "bf16_from_f32(0x%08" PRIX32 ") = 0x%04X, want 0x%04X", in, got, want);
}

static void spot_tf32(uint32_t in, uint32_t want)
{
    const uint32_t got = fbits(tf32_round(bitsf(in)));
    check(got == want, "tf32_round(0x%08" PRIX32 ") = 0x%08" PRIX32 ", want 0x%08" PRIX32, in, got, want);
}

static void test_spot_values(void)
{
    /* FP16, normal range. */
    spot_f16(0x3F800000u, 0x3C00);            /* 1.0 */
    spot_f16(0xBF800000u, 0xBC00);            /* -1.0 */
    spot_f16(0x3EAAAAABu, 0x3555);            /* 1/3: 2^-2 * 1.0101..b, frac 341.33 -> 341 */
    spot_f16(0x3DCCCCCDu, 0x2E66);            /* 0.1: 2^-4 * 1.6, frac 614.4 -> 614 */
    spot_f16(0x40490FDBu, 0x4248);            /* pi: 2 * 1.5708, frac 584.1 -> 584 */
    spot_f16(0x477FE000u, 0x7BFF);            /* 65504, largest finite */
    spot_f16(0xC77FE000u, 0xFBFF);            /* -65504 */
    spot_f16(0x477FEFFFu, 0x7BFF);            /* 65519.996 -> 65504 */
    spot_f16(0x477FF000u, 0x7C00);            /* 65520 -> inf (tie, to even = inf) */
    spot_f16(0xC77FF000u, 0xFC00);            /* -65520 -> -inf */
    spot_f16(0x47C35000u, 0x7C00);            /* 1e5 -> inf */
    spot_f16(0x7F7FFFFFu, 0x7C00);            /* FLT_MAX -> inf */
    /* Ties to even between adjacent FP16 values. */
    spot_f16(0x3F801000u, 0x3C00);            /* 1 + 2^-11: tie 0x3C00/0x3C01 -> 0x3C00 */
    spot_f16(0x3F801001u, 0x3C01);            /* just above the tie */
    spot_f16(0x3F803000u, 0x3C02);            /* 1 + 3*2^-11: tie 0x3C01/0x3C02 -> 0x3C02 */
    spot_f16(0x3F802FFFu, 0x3C01);            /* just below that tie */
    spot_f16(0x45001000u, 0x6800);            /* 2049: tie 2048/2050 -> 2048 */
    spot_f16(0x45003000u, 0x6802);            /* 2051: tie 2050/2052 -> 2052 */
    spot_f16(0xC5003000u, 0xE802);            /* -2051 */
    /* Subnormals and the underflow boundary. */
    spot_f16(0x33800000u, 0x0001);            /* 2^-24, smallest subnormal */
    spot_f16(0x33000000u, 0x0000);            /* 2^-25: tie 0/1 -> 0 */
    spot_f16(0xB3000000u, 0x8000);            /* -2^-25 -> -0 */
    spot_f16(0x33000001u, 0x0001);            /* just above 2^-25 -> 2^-24 */
    spot_f16(0x32FFFFFFu, 0x0000);            /* just below 2^-25 */
    spot_f16(0x33C00000u, 0x0002);            /* 3*2^-25 = 1.5 units: tie 1/2 -> 2 */
    spot_f16(0x34200000u, 0x0002);            /* 5*2^-25 = 2.5 units: tie 2/3 -> 2 */
    spot_f16(0x387FC000u, 0x03FF);            /* 1023*2^-24, largest subnormal */
    spot_f16(0x387FE000u, 0x0400);            /* 1023.5 units: tie 0x3FF/0x400 -> 0x400 */
    spot_f16(0x387FA000u, 0x03FE);            /* 1022.5 units: tie 0x3FE/0x3FF -> 0x3FE */
    spot_f16(0x38800000u, 0x0400);            /* 2^-14, smallest normal */
    spot_f16(0x00000001u, 0x0000);            /* FP32 subnormal */
    spot_f16(0x807FFFFFu, 0x8000);            /* -FP32 subnormal -> -0 */
    spot_f16(0x00000000u, 0x0000);
    spot_f16(0x80000000u, 0x8000);
    /* Specials. */
    spot_f16(0x7F800000u, 0x7C00);
    spot_f16(0xFF800000u, 0xFC00);
    spot_f16(0x7FC00000u, 0x7E00);            /* qNaN */
    spot_f16(0xFFC00000u, 0xFE00);            /* -qNaN keeps sign */
    spot_f16(0x7F800001u, 0x7E00);            /* sNaN, low payload: quieted */
    spot_f16(0x7F802000u, 0x7E01);            /* sNaN, payload bit in the top 10 */
    spot_f16(0xFFBFFFFFu, 0xFFFF);            /* all payload bits */

    /* FP16 -> FP32. */
    spot_f16_back(0x0001, 0x33800000u);
    spot_f16_back(0x8001, 0xB3800000u);
    spot_f16_back(0x03FF, 0x387FC000u);
    spot_f16_back(0x0200, 0x38000000u);       /* 2^-15 */
    spot_f16_back(0x0400, 0x38800000u);
    spot_f16_back(0x3C00, 0x3F800000u);
    spot_f16_back(0x3555, 0x3EAAA000u);
    spot_f16_back(0x7BFF, 0x477FE000u);
    spot_f16_back(0x7C00, 0x7F800000u);
    spot_f16_back(0xFC00, 0xFF800000u);
    spot_f16_back(0x0000, 0x00000000u);
    spot_f16_back(0x8000, 0x80000000u);
    spot_f16_back(0x7E00, 0x7FC00000u);
    spot_f16_back(0x7C01, 0x7FC02000u);       /* sNaN comes back quiet */
    spot_f16_back(0xFFFF, 0xFFFFE000u);

    /* BF16. */
    spot_bf16(0x3F800000u, 0x3F80);           /* 1.0 */
    spot_bf16(0x3EAAAAABu, 0x3EAB);           /* 1/3: low half 0xAAAB > 0x8000 rounds up */
    spot_bf16(0x3DCCCCCDu, 0x3DCD);           /* 0.1 */
    spot_bf16(0x47C35000u, 0x47C3);           /* 1e5: finite in BF16 */
    spot_bf16(0x3F808000u, 0x3F80);           /* tie 0x3F80/0x3F81 -> even */
    spot_bf16(0x3F818000u, 0x3F82);           /* tie 0x3F81/0x3F82 -> even */
    spot_bf16(0xBF818000u, 0xBF82);
    spot_bf16(0x3F808001u, 0x3F81);
    spot_bf16(0x7F7F7FFFu, 0x7F7F);           /* largest finite stays */
    spot_bf16(0x7F7F8000u, 0x7F80);           /* tie 0x7F7F/inf -> inf (even) */
    spot_bf16(0x7F7FFFFFu, 0x7F80);           /* FLT_MAX -> inf */
    spot_bf16(0x00008000u, 0x0000);           /* tie 0/1 -> 0 */
    spot_bf16(0x00008001u, 0x0001);
    spot_bf16(0x00018000u, 0x0002);
    spot_bf16(0x807FFFFFu, 0x8080);           /* largest subnormal rounds up to -2^-126 */
    spot_bf16(0x7F800000u, 0x7F80);
    spot_bf16(0xFF800000u, 0xFF80);
    spot_bf16(0x7FC00000u, 0x7FC0);
    spot_bf16(0x7F800001u, 0x7FC0);           /* sNaN quieted */
    spot_bf16(0xFF810000u, 0xFFC1);           /* sNaN, top payload kept, sign kept */
    {
        const uint32_t got = fbits(bf16_to_f32(0x3EAB));
        check(got == 0x3EAB0000u, "bf16_to_f32(0x3EAB) = 0x%08" PRIX32, got);
    }

    /* TF32. */
    spot_tf32(0x3F801000u, 0x3F800000u);      /* 1 + 2^-11 -> 1 (tie, even) */
    spot_tf32(0x3F803000u, 0x3F804000u);      /* 1 + 3*2^-11 -> 1 + 2^-9 (tie, even) */
    spot_tf32(0x3F802000u, 0x3F802000u);      /* 1 + 2^-10 exact */
    spot_tf32(0x3F801001u, 0x3F802000u);
    spot_tf32(0xBF803000u, 0xBF804000u);
    spot_tf32(0x3EAAAAABu, 0x3EAAA000u);      /* 1/3 */
    spot_tf32(0x7F7FEFFFu, 0x7F7FE000u);      /* largest TF32 */
    spot_tf32(0x7F7FF000u, 0x7F800000u);      /* tie up to inf */
    spot_tf32(0xFF7FFFFFu, 0xFF800000u);      /* -FLT_MAX -> -inf */
    spot_tf32(0x7F800000u, 0x7F800000u);
    spot_tf32(0x7F800001u, 0x7F800001u);      /* NaN unchanged, even signalling */
    spot_tf32(0xFFFFFFFFu, 0xFFFFFFFFu);
    spot_tf32(0x00001000u, 0x00000000u);      /* subnormal tie -> 0 */
    spot_tf32(0x00003000u, 0x00004000u);
    spot_tf32(0x80000000u, 0x80000000u);
}

/* ------------------------------------------------------------------------ */
/* 2. All 65,536 FP16 / BF16 patterns                                       */
/* ------------------------------------------------------------------------ */

/* Independent reference value of an FP16 pattern (double arithmetic). */
static double f16_ref_value(uint16_t h)
{
    const int s = h >> 15, e = (h >> 10) & 0x1F, m = h & 0x3FF;
    double v = e ? ldexp(1024.0 + m, e - 25) : ldexp((double)m, -24);
    if (e == 0x1F)
        v = m ? NAN : INFINITY;
    return s ? -v : v;
}

static void test_all_f16_scalar(void)
{
    unsigned bad_rt = 0, bad_val = 0, bad_bf = 0;
    for (uint32_t i = 0; i < 65536; i++) {
        const uint16_t h = (uint16_t)i;
        const float f = f16_to_f32(h);
        const uint16_t back = f16_from_f32(f);
        if (f16_is_nan(h)) {
            if (!f32_is_nan(fbits(f)) || back != (h | 0x0200u) || !(fbits(f) & 0x00400000u)) {
                if (bad_rt++ < 5)
                    fprintf(stderr, "  f16 NaN 0x%04X -> 0x%08" PRIX32 " -> 0x%04X\n", h, fbits(f), back);
            }
        } else {
            if (back != h && bad_rt++ < 5)
                fprintf(stderr, "  f16 0x%04X -> 0x%08" PRIX32 " -> 0x%04X\n", h, fbits(f), back);
            const double want = f16_ref_value(h);
            if (!((double)f == want && !!signbit(f) == !!signbit(want)) && bad_val++ < 5)
                fprintf(stderr, "  f16_to_f32(0x%04X) = %a, want %a\n", h, (double)f, want);
        }
        /* BF16 round trip. */
        const float g = bf16_to_f32(h);
        const uint16_t gb = bf16_from_f32(g);
        if (bf16_is_nan(h) ? (gb != (h | 0x0040u)) : (gb != h || fbits(g) != ((uint32_t)h << 16))) {
            if (bad_bf++ < 5)
                fprintf(stderr, "  bf16 0x%04X -> 0x%08" PRIX32 " -> 0x%04X\n", h, fbits(g), gb);
        }
    }
    check(bad_rt == 0, "FP16 scalar round trip over all 65536 patterns: %u mismatches", bad_rt);
    check(bad_val == 0, "f16_to_f32 vs ldexp reference over all patterns: %u mismatches", bad_val);
    check(bad_bf == 0, "BF16 scalar round trip over all 65536 patterns: %u mismatches", bad_bf);
}

static void test_all_16bit_arrays(const char *path)
{
    uint16_t *h = xmalloc(65536 * sizeof *h), *h2 = xmalloc(65536 * sizeof *h2);
    float *f = xmalloc(65536 * sizeof *f), *f2 = xmalloc(65536 * sizeof *f2);
    for (uint32_t i = 0; i < 65536; i++)
        h[i] = (uint16_t)i;

    unsigned bad = 0;
    f16_to_f32_array(f, h, 65536);
    for (uint32_t i = 0; i < 65536; i++)
        if (fbits(f[i]) != fbits(f16_to_f32(h[i])) && bad++ < 5)
            fprintf(stderr, "  [%s] f16_to_f32_array(0x%04X) = 0x%08" PRIX32 "\n", path, h[i], fbits(f[i]));
    check(bad == 0, "[%s] f16_to_f32_array == scalar for all 65536 patterns (%u bad)", path, bad);

    f16_to_f32_array_portable(f2, h, 65536);
    check(memcmp(f, f2, 65536 * sizeof *f) == 0, "[%s] f16_to_f32_array == f16_to_f32_array_portable", path);

    bad = 0;
    f16_from_f32_array(h2, f, 65536, NULL);
    for (uint32_t i = 0; i < 65536; i++)
        if (h2[i] != f16_from_f32(f[i]) && bad++ < 5)
            fprintf(stderr, "  [%s] f16_from_f32_array(0x%08" PRIX32 ") = 0x%04X\n", path, fbits(f[i]), h2[i]);
    check(bad == 0, "[%s] f16_from_f32_array == scalar on all FP16 values (%u bad)", path, bad);

    bad = 0;
    f32_round_to_f16_array(f2, f, 65536, NULL);
    for (uint32_t i = 0; i < 65536; i++)
        if (fbits(f2[i]) != fbits(f[i]) && bad++ < 5)
            fprintf(stderr, "  [%s] f32_round_to_f16 not identity on 0x%08" PRIX32 "\n", path, fbits(f[i]));
    check(bad == 0, "[%s] f32_round_to_f16_array is the identity on FP16 values (%u bad)", path, bad);

    bad = 0;
    bf16_to_f32_array(f, h, 65536);
    for (uint32_t i = 0; i < 65536; i++)
        if (fbits(f[i]) != ((uint32_t)h[i] << 16) && bad++ < 5)
            fprintf(stderr, "  [%s] bf16_to_f32_array(0x%04X) = 0x%08" PRIX32 "\n", path, h[i], fbits(f[i]));
    check(bad == 0, "[%s] bf16_to_f32_array exact for all 65536 patterns (%u bad)", path, bad);

    bad = 0;
    bf16_from_f32_array(h2, f, 65536, NULL);
    for (uint32_t i = 0; i < 65536; i++)
        if (h2[i] != bf16_from_f32(f[i]) && bad++ < 5)
            fprintf(stderr, "  [%s] bf16_from_f32_array(0x%08" PRIX32 ") = 0x%04X\n", path, fbits(f[i]), h2[i]);
    check(bad == 0, "[%s] bf16_from_f32_array == scalar on all BF16 values (%u bad)", path, bad);

    free(h);
    free(h2);
    free(f);
    free(f2);
}

/* ------------------------------------------------------------------------ */
/* 3. Large FP32 input set: boundaries, subnormals, strided and random      */
/* ------------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

struct inputs {
    uint32_t *u;
    size_t n, cap;
};

static void push(struct inputs *in, uint32_t u)
{
    if (in->n == in->cap) {
        in->cap = in->cap ? in->cap * 2 : 1u << 20;
        uint32_t *p = realloc(in->u, in->cap * sizeof *p);
        if (!p) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
        in->u = p;
    }
    in->u[in->n++] = u;
}

static void push_pm(struct inputs *in, uint32_t mag)   /* +-mag and +-1 ulp around */
{
    for (int d = -1; d <= 1; d++) {
        const uint32_t m = mag + (uint32_t)d;
        push(in, m);
        push(in, m | 0x80000000u);
    }
}

static struct inputs build_inputs(void)
{
    struct inputs in = {0};
    static const uint32_t specials[] = {
        0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0xFFC00000u,
        0x7F800001u, 0xFF800001u, 0x7FBFFFFFu, 0x7FFFFFFFu, 0xFFFFFFFFu, 0x7F802000u,
        0x7F7FFFFFu, 0xFF7FFFFFu, 0x00000001u, 0x807FFFFFu, 0x00800000u,
        0x477FE000u, 0x477FEFFFu, 0x477FF000u, 0x477FF001u, 0x47800000u, 0x47C35000u,
        0x33000000u, 0x33000001u, 0x32FFFFFFu, 0x33800000u, 0x38800000u, 0x387FE000u,
        0x7F7F8000u, 0x7F7F7FFFu, 0x00008000u, 0x00008001u, 0x7F7FF000u,
    };
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++)
        push_pm(&in, specials[i]);

    /* FP16: every value and every midpoint between adjacent finite values,
       +-1 ulp (ties to even both ways, all subnormals, the top of range). */
    for (uint16_t h = 0; h < 0x7BFF; h++) {
        const uint32_t lo = fbits(f16_to_f32(h)), hi = fbits(f16_to_f32((uint16_t)(h + 1)));
        const uint32_t mid = fbits((float)(((double)bitsf(lo) + (double)bitsf(hi)) / 2.0));
        push_pm(&in, lo);
        push_pm(&in, mid);
    }
    /* BF16: every finite pattern, its midpoint with the next one, +-1 ulp. */
    for (uint32_t h = 0; h <= 0x7F7F; h++) {
        push_pm(&in, h << 16);
        push_pm(&in, (h << 16) | 0x8000u);
    }
    /* The whole FP16 subnormal range (and a bit around it) densely. */
    for (uint32_t u = 0x32000000u; u < 0x38900000u; u += 61)
        push(&in, u);
    /* FP32 subnormals. */
    for (uint32_t u = 0; u < 0x00800000u; u += 1021)
        push_pm(&in, u + 1);
    /* Every FP32 pattern with stride 509 (coprime with 2). */
    for (uint64_t u = 0; u <= 0xFFFFFFFFull; u += 509)
        push(&in, (uint32_t)u);
    /* Random bit patterns. */
    uint64_t seed = 0x5EED1234ABCDull;
    for (int i = 0; i < 2000000; i++) {
        const uint64_t r = splitmix64(&seed);
        push(&in, (uint32_t)r);
        push(&in, (uint32_t)(r >> 32));
    }
    return in;
}

/* Counts by the literal definition, from the input and the scalar output. */
static void ref_counts(const uint32_t *u, size_t n, int bf, struct lowp_counts *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < n; i++) {
        const uint32_t a = u[i] & 0x7FFFFFFFu;
        const float x = bitsf(u[i]);
        const uint16_t h = bf ? bf16_from_f32(x) : f16_from_f32(x);
        const uint16_t ha = h & 0x7FFFu, inf = bf ? 0x7F80u : 0x7C00u;
        c->underflow += (a != 0 && ha == 0);
        c->overflow += (a < 0x7F800000u && ha == inf);
        c->nonfinite += (ha >= inf);
    }
}

static int counts_eq(const struct lowp_counts *a, const struct lowp_counts *b)
{
    return a->underflow == b->underflow && a->overflow == b->overflow && a->nonfinite == b->nonfinite;
}

struct refs {
    uint16_t *f16, *bf16;
    uint32_t *rf16, *rbf16, *tf32;
    struct lowp_counts c16, cbf;
};

static struct refs build_refs(const struct inputs *in)
{
    struct refs r;
    const size_t n = in->n;
    r.f16 = xmalloc(n * sizeof *r.f16);
    r.bf16 = xmalloc(n * sizeof *r.bf16);
    r.rf16 = xmalloc(n * sizeof *r.rf16);
    r.rbf16 = xmalloc(n * sizeof *r.rbf16);
    r.tf32 = xmalloc(n * sizeof *r.tf32);
    for (size_t i = 0; i < n; i++) {
        const float x = bitsf(in->u[i]);
        r.f16[i] = f16_from_f32(x);
        r.bf16[i] = bf16_from_f32(x);
        r.rf16[i] = fbits(f16_to_f32(r.f16[i]));
        r.rbf16[i] = fbits(bf16_to_f32(r.bf16[i]));
        r.tf32[i] = fbits(tf32_round(x));
    }
    ref_counts(in->u, n, 0, &r.c16);
    ref_counts(in->u, n, 1, &r.cbf);
    return r;
}

static void free_refs(struct refs *r)
{
    free(r->f16);
    free(r->bf16);
    free(r->rf16);
    free(r->rbf16);
    free(r->tf32);
}

static size_t first_diff16(const uint16_t *a, const uint16_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return i;
    return n;
}

static size_t first_diff32(const void *a, const void *b, size_t n)
{
    const uint32_t *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return i;
    return n;
}

static void cmp16(const char *what, const char *tag, const uint32_t *in, const uint16_t *got, const uint16_t *want, size_t n)
{
    const size_t i = first_diff16(got, want, n);
    check(i == n, "[%s] %s: first mismatch at %zu: in 0x%08" PRIX32 " got 0x%04X want 0x%04X", tag, what, i,
          i < n ? in[i] : 0, i < n ? got[i] : 0, i < n ? want[i] : 0);
}

static void cmp32(const char *what, const char *tag, const uint32_t *in, const void *got, const uint32_t *want, size_t n)
{
    const size_t i = first_diff32(got, want, n);
    const uint32_t *g = got;
    check(i == n, "[%s] %s: first mismatch at %zu: in 0x%08" PRIX32 " got 0x%08" PRIX32 " want 0x%08" PRIX32, tag, what, i,
          i < n ? in[i] : 0, i < n ? g[i] : 0, i < n ? want[i] : 0);
}

static void cmpcounts(const char *what, const char *tag, const struct lowp_counts *got, const struct lowp_counts *want)
{
    check(counts_eq(got, want),
          "[%s] %s counts: got uf=%" PRIu64 " ovf=%" PRIu64 " nf=%" PRIu64 ", want uf=%" PRIu64 " ovf=%" PRIu64 " nf=%" PRIu64,
          tag, what, got->underflow, got->overflow, got->nonfinite, want->underflow, want->overflow, want->nonfinite);
}

/* Compares every array function on in[0..n) against the scalar references. */
static void test_arrays_on(const struct inputs *in, const struct refs *r, size_t n, const char *tag, int portable_too)
{
    const float *src = (const float *)in->u;
    uint16_t *h = xmalloc(n * sizeof *h);
    float *f = xmalloc(n * sizeof *f);
    struct lowp_counts c;
    struct refs rn = *r;   /* reference counts for the prefix [0, n) */
    if (n != in->n) {
        ref_counts(in->u, n, 0, &rn.c16);
        ref_counts(in->u, n, 1, &rn.cbf);
        r = &rn;
    }

    f16_from_f32_array(h, src, n, NULL);
    cmp16("f16_from_f32_array", tag, in->u, h, r->f16, n);
    memset(h, 0xAB, n * sizeof *h);
    memset(&c, 0, sizeof c);
    f16_from_f32_array(h, src, n, &c);
    cmp16("f16_from_f32_array+counts", tag, in->u, h, r->f16, n);
    cmpcounts("f16_from_f32_array", tag, &c, &r->c16);

    bf16_from_f32_array(h, src, n, NULL);
    cmp16("bf16_from_f32_array", tag, in->u, h, r->bf16, n);
    memset(h, 0xAB, n * sizeof *h);
    memset(&c, 0, sizeof c);
    bf16_from_f32_array(h, src, n, &c);
    cmp16("bf16_from_f32_array+counts", tag, in->u, h, r->bf16, n);
    cmpcounts("bf16_from_f32_array", tag, &c, &r->cbf);

    f32_round_to_f16_array(f, src, n, NULL);
    cmp32("f32_round_to_f16_array", tag, in->u, f, r->rf16, n);
    memcpy(f, src, n * sizeof *f);
    memset(&c, 0, sizeof c);
    f32_round_to_f16_array(f, f, n, &c);                    /* in place */
    cmp32("f32_round_to_f16_array in place+counts", tag, in->u, f, r->rf16, n);
    cmpcounts("f32_round_to_f16_array", tag, &c, &r->c16);

    f32_round_to_bf16_array(f, src, n, NULL);
    cmp32("f32_round_to_bf16_array", tag, in->u, f, r->rbf16, n);
    memcpy(f, src, n * sizeof *f);
    memset(&c, 0, sizeof c);
    f32_round_to_bf16_array(f, f, n, &c);
    cmp32("f32_round_to_bf16_array in place+counts", tag, in->u, f, r->rbf16, n);
    cmpcounts("f32_round_to_bf16_array", tag, &c, &r->cbf);

    tf32_round_array(f, src, n);
    cmp32("tf32_round_array", tag, in->u, f, r->tf32, n);
    memcpy(f, src, n * sizeof *f);
    tf32_round_array(f, f, n);
    cmp32("tf32_round_array in place", tag, in->u, f, r->tf32, n);

    /* Widening back: FP16 -> FP32 and BF16 -> FP32 of the rounded values. */
    f16_to_f32_array(f, r->f16, n);
    cmp32("f16_to_f32_array", tag, in->u, f, r->rf16, n);
    bf16_to_f32_array(f, r->bf16, n);
    cmp32("bf16_to_f32_array", tag, in->u, f, r->rbf16, n);

    if (portable_too) {
        f16_from_f32_array_portable(h, src, n, NULL);
        cmp16("f16_from_f32_array_portable", tag, in->u, h, r->f16, n);
        memset(&c, 0, sizeof c);
        f16_from_f32_array_portable(h, src, n, &c);
        cmpcounts("f16_from_f32_array_portable", tag, &c, &r->c16);
        bf16_from_f32_array_portable(h, src, n, NULL);
        cmp16("bf16_from_f32_array_portable", tag, in->u, h, r->bf16, n);
        memset(&c, 0, sizeof c);
        bf16_from_f32_array_portable(h, src, n, &c);
        cmpcounts("bf16_from_f32_array_portable", tag, &c, &r->cbf);
        f16_to_f32_array_portable(f, r->f16, n);
        cmp32("f16_to_f32_array_portable", tag, in->u, f, r->rf16, n);
    }
    free(h);
    free(f);
}

/* Misaligned starts and every short length: exercises the vector tails and
   the masked AVX-512 remainders, and checks no element outside [0, n) is
   written. */
static void test_tails(const struct inputs *in, const char *tag)
{
    enum { MAXN = 100, PAD = 40 };
    unsigned bad = 0;
    for (size_t off = 0; off < 4; off++) {
        for (size_t n = 0; n <= MAXN; n++) {
            const float *src = (const float *)in->u + 1000 + off * 77 + n;
            uint16_t hb[MAXN + 2 * PAD], hr[MAXN];
            float fb[MAXN + 2 * PAD];
            uint32_t fr[MAXN];
            struct lowp_counts c = {0}, cr = {0};
            for (int kind = 0; kind < 5; kind++) {
                memset(hb, 0x5A, sizeof hb);
                memset(fb, 0x5A, sizeof fb);
                memset(&c, 0, sizeof c);
                memset(&cr, 0, sizeof cr);
                const int bf = (kind == 1 || kind == 3);
                for (size_t i = 0; i < n; i++) {
                    const float x = src[i];
                    hr[i] = bf ? bf16_from_f32(x) : f16_from_f32(x);
                    fr[i] = kind == 4 ? fbits(tf32_round(x)) : bf ? ((uint32_t)hr[i] << 16) : fbits(f16_to_f32(hr[i]));
                }
                ref_counts((const uint32_t *)src, n, bf, &cr);
                int ok = 1;
                switch (kind) {
                case 0: f16_from_f32_array(hb + PAD + off, src, n, &c); break;
                case 1: bf16_from_f32_array(hb + PAD + off, src, n, &c); break;
                case 2: f32_round_to_f16_array(fb + PAD + off, src, n, &c); break;
                case 3: f32_round_to_bf16_array(fb + PAD + off, src, n, &c); break;
                default: tf32_round_array(fb + PAD + off, src, n); c = cr; break;
                }
                if (kind < 2) {
                    ok &= memcmp(hb + PAD + off, hr, n * sizeof *hr) == 0;
                    for (size_t i = 0; i < PAD + off; i++)
                        ok &= hb[i] == 0x5A5A;
                    for (size_t i = PAD + off + n; i < MAXN + 2 * PAD; i++)
                        ok &= hb[i] == 0x5A5A;
                } else {
                    ok &= memcmp(fb + PAD + off, fr, n * sizeof *fr) == 0;
                    for (size_t i = 0; i < PAD + off; i++)
                        ok &= fbits(fb[i]) == 0x5A5A5A5Au;
                    for (size_t i = PAD + off + n; i < MAXN + 2 * PAD; i++)
                        ok &= fbits(fb[i]) == 0x5A5A5A5Au;
                }
                ok &= counts_eq(&c, &cr);
                if (!ok && bad++ < 5)
                    fprintf(stderr, "  [%s] tail kind %d off %zu n %zu wrong\n", tag, kind, off, n);
            }
            /* Widening with tails. */
            {
                uint16_t hs[MAXN];
                memset(fb, 0x5A, sizeof fb);
                for (size_t i = 0; i < n; i++)
                    hs[i] = (uint16_t)(in->u[5000 + i * 13 + off] >> 7);
                f16_to_f32_array(fb + PAD + off, hs, n);
                int ok = 1;
                for (size_t i = 0; i < n; i++)
                    ok &= fbits(fb[PAD + off + i]) == fbits(f16_to_f32(hs[i]));
                for (size_t i = 0; i < PAD + off; i++)
                    ok &= fbits(fb[i]) == 0x5A5A5A5Au;
                for (size_t i = PAD + off + n; i < MAXN + 2 * PAD; i++)
                    ok &= fbits(fb[i]) == 0x5A5A5A5Au;
                bf16_to_f32_array(fb + PAD + off, hs, n);
                for (size_t i = 0; i < n; i++)
                    ok &= fbits(fb[PAD + off + i]) == ((uint32_t)hs[i] << 16);
                if (!ok && bad++ < 5)
                    fprintf(stderr, "  [%s] widening tail off %zu n %zu wrong\n", tag, off, n);
            }
        }
    }
    check(bad == 0, "[%s] short/misaligned arrays (n = 0..%d, 4 offsets), no stray writes (%u bad)", tag, MAXN, bad);
}

/* ------------------------------------------------------------------------ */
/* 4. Counts                                                                */
/* ------------------------------------------------------------------------ */

static void test_counts(const char *tag)
{
    enum { N = 4099 };
    float *x = xmalloc(N * sizeof *x), *y = xmalloc(N * sizeof *y);
    uint16_t *h = xmalloc(N * sizeof *h);
    uint64_t seed = 42;
    /* Magnitudes in [2^-30, 2^-25], random signs: all underflow in FP16. */
    for (size_t i = 0; i < N; i++) {
        const double t = (double)(splitmix64(&seed) >> 11) * 0x1p-53;   /* [0,1) */
        float v = (float)exp2(-30.0 + 5.0 * t);
        if (i == 0)
            v = 0x1p-25f;
        if (i == 1)
            v = 0x1p-30f;
        x[i] = (splitmix64(&seed) & 1) ? -v : v;
    }
    struct lowp_counts c = {0};
    f16_from_f32_array(h, x, N, &c);
    check(c.underflow == N && c.overflow == 0 && c.nonfinite == 0,
          "[%s] [2^-30,2^-25] in FP16: uf=%" PRIu64 " ovf=%" PRIu64 " nf=%" PRIu64 ", want %d/0/0", tag, c.underflow,
          c.overflow, c.nonfinite, N);
    f16_from_f32_array(h, x, N, &c);     /* adds */
    check(c.underflow == 2 * N, "[%s] counts accumulate: uf=%" PRIu64 ", want %d", tag, c.underflow, 2 * N);
    unsigned nz = 0;
    for (size_t i = 0; i < N; i++)
        nz += (h[i] & 0x7FFF) != 0;
    check(nz == 0, "[%s] [2^-30,2^-25] in FP16: %u non-zero results", tag, nz);
    memset(&c, 0, sizeof c);
    f32_round_to_f16_array(y, x, N, &c);
    check(c.underflow == N, "[%s] f32_round_to_f16 underflow count %" PRIu64 ", want %d", tag, c.underflow, N);
    memset(&c, 0, sizeof c);
    bf16_from_f32_array(h, x, N, &c);
    check(c.underflow == 0 && c.overflow == 0 && c.nonfinite == 0, "[%s] [2^-30,2^-25] in BF16: counts not zero", tag);

    /* Scaled by 2^10: [2^-20, 2^-15] is representable (subnormal) in FP16. */
    for (size_t i = 0; i < N; i++)
        y[i] = x[i] * 1024.0f;
    memset(&c, 0, sizeof c);
    f16_from_f32_array(h, y, N, &c);
    check(c.underflow == 0 && c.overflow == 0 && c.nonfinite == 0,
          "[%s] [2^-20,2^-15] in FP16: uf=%" PRIu64 " ovf=%" PRIu64 " nf=%" PRIu64 ", want 0/0/0", tag, c.underflow,
          c.overflow, c.nonfinite);

    /* 1e5 overflows FP16 but not BF16. */
    for (size_t i = 0; i < N; i++)
        x[i] = (i & 1) ? -1e5f : 1e5f;
    memset(&c, 0, sizeof c);
    f16_from_f32_array(h, x, N, &c);
    check(c.overflow == N && c.nonfinite == N && c.underflow == 0,
          "[%s] 1e5 in FP16: ovf=%" PRIu64 " nf=%" PRIu64 ", want %d/%d", tag, c.overflow, c.nonfinite, N, N);
    memset(&c, 0, sizeof c);
    bf16_from_f32_array(h, x, N, &c);
    check(c.overflow == 0 && c.nonfinite == 0 && c.underflow == 0, "[%s] 1e5 in BF16: ovf=%" PRIu64 " nf=%" PRIu64,
          tag, c.overflow, c.nonfinite);

    /* Already non-finite inputs count as non-finite, not as overflow; zeros
       are not underflow. */
    for (size_t i = 0; i < N; i++)
        x[i] = (i % 3 == 0) ? INFINITY : (i % 3 == 1) ? NAN : ((i & 4) ? -0.0f : 0.0f);
    const uint64_t nspec = (N + 2) / 3 + (N + 1) / 3;
    memset(&c, 0, sizeof c);
    f16_from_f32_array(h, x, N, &c);
    check(c.overflow == 0 && c.nonfinite == nspec && c.underflow == 0,
          "[%s] inf/NaN/0 in FP16: uf=%" PRIu64 " ovf=%" PRIu64 " nf=%" PRIu64 ", want 0/0/%" PRIu64, tag, c.underflow,
          c.overflow, c.nonfinite, nspec);
    memset(&c, 0, sizeof c);
    bf16_from_f32_array(h, x, N, &c);
    check(c.overflow == 0 && c.nonfinite == nspec && c.underflow == 0, "[%s] inf/NaN/0 in BF16: wrong counts", tag);

    /* NULL counts is accepted. */
    f16_from_f32_array(h, x, N, NULL);
    bf16_from_f32_array(h, x, N, NULL);
    f32_round_to_f16_array(y, x, N, NULL);
    f32_round_to_bf16_array(y, x, N, NULL);
    free(x);
    free(y);
    free(h);
}

/* ------------------------------------------------------------------------ */
/* Driver                                                                   */
/* ------------------------------------------------------------------------ */

static void test_path(const char *path, const struct inputs *in, const struct refs *r)
{
    test_all_16bit_arrays(path);
    test_arrays_on(in, r, in->n, path, 0);
    test_tails(in, path);
    test_counts(path);
}

int main(void)
{
    const char *auto_path = lowp_fast_path();
    printf("lowp fast path (auto): %s\n", auto_path);

    test_spot_values();
    test_all_f16_scalar();

    struct inputs in = build_inputs();
    printf("FP32 inputs: %zu\n", in.n);
    check(in.n >= 10000000, "at least 10M FP32 inputs (have %zu)", in.n);
    struct refs r = build_refs(&in);

    /* The portable array functions against the scalar definitions. */
    test_arrays_on(&in, &r, in.n, "portable-api", 1);

    static const char *const paths[] = {"avx512", "f16c+avx2", "portable"};
    for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
        if (lowp_set_fast_path(paths[p]) != 0) {
            printf("path %s: not available on this CPU, skipped\n", paths[p]);
            continue;
        }
        check(strcmp(lowp_fast_path(), paths[p]) == 0, "lowp_fast_path() = %s after selecting %s", lowp_fast_path(),
              paths[p]);
        printf("path %s: testing\n", paths[p]);
        test_path(paths[p], &in, &r);

        /* Same comparisons with a hostile floating-point environment: upward
           rounding, and on x86 FTZ + DAZ. Nothing may change. */
        const int old_round = fegetround();
        fesetround(FE_UPWARD);
#if TEST_X86
        const unsigned old_csr = _mm_getcsr();
        _mm_setcsr(old_csr | 0x8040u);   /* FTZ (bit 15) | DAZ (bit 6) */
#endif
        char tag[64];
        snprintf(tag, sizeof tag, "%s, FTZ/DAZ/round-up", paths[p]);
        test_all_16bit_arrays(tag);
        test_arrays_on(&in, &r, in.n < 3000000 ? in.n : 3000000, tag, 0);
#if TEST_X86
        _mm_setcsr(old_csr);
#endif
        fesetround(old_round);
    }
    check(lowp_set_fast_path("no-such-path") == -1, "lowp_set_fast_path rejects unknown names");
    check(lowp_set_fast_path(NULL) == 0 && strcmp(lowp_fast_path(), auto_path) == 0,
          "lowp_set_fast_path(NULL) restores the automatic choice");

    free_refs(&r);
    free(in.u);
    printf("%u passed, %u failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
