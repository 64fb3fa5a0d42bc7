/*
 * test_fp8.c - tests of harness/core/fp8.{h,c}: the FP8 E4M3/E5M2
 * conversions against ml_dtypes (tests/fixtures/fp8_ml_dtypes.h, generated
 * by tools/gen_fp8_fixture.py: all 256 codes of each format, a structured
 * list of boundary inputs, and 10,027,008 random inputs hashed per chunk of
 * 65536), the array paths (every fast path this CPU runs) against the scalar
 * definition bit for bit, the stats on hand examples, E8M0 and MX block
 * quantization (floor and rceil scales).
 *
 * Exit status 0 when every check passes; one line per failed check on
 * stderr; last line printed: "N passed, N failed".
 */
#include "fp8.h"
#include "f32bits.h"

#include "check.h"
#include "fixtures/fp8_ml_dtypes.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <xmmintrin.h>
#define TEST_X86 1
#else
#define TEST_X86 0
#endif

/* The four conversions, in the fixture's order. */
static const struct conv {
    enum fp8_format f;
    enum fp8_saturation sat;
    const char *name;
    const uint8_t *structured;
    const uint64_t *hashes;
} CONVS[4] = {
    {FP8_E4M3, FP8_SATFINITE, "e4m3 satfinite", fp8fx_struct_e4m3_satfinite, fp8fx_random_e4m3_satfinite},
    {FP8_E4M3, FP8_NOSAT, "e4m3 nosat", fp8fx_struct_e4m3_nosat, fp8fx_random_e4m3_nosat},
    {FP8_E5M2, FP8_SATFINITE, "e5m2 satfinite", fp8fx_struct_e5m2_satfinite, fp8fx_random_e5m2_satfinite},
    {FP8_E5M2, FP8_NOSAT, "e5m2 nosat", fp8fx_struct_e5m2_nosat, fp8fx_random_e5m2_nosat},
};

/* The random stream of tools/gen_fp8_fixture.py (random_inputs: the same
   splitmix64 and the same construction). */
static uint32_t random_input(uint64_t i)
{
    uint64_t z = FP8FX_SEED + (i + 1u) * UINT64_C(0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    const uint64_t r = z ^ (z >> 31);
    const uint32_t hi = (uint32_t)(r >> 32);
    if ((r & 3u) == 0u)
        return hi;
    const uint32_t sign = (uint32_t)((r >> 2) & 1u) << 31;
    const uint32_t exp = (uint32_t)(104u + (r >> 3) % 40u) << 23;
    const uint32_t mant = ((r & 3u) == 3u) ? (hi & 0x7F0000u) : (hi & 0x7FFFFFu);
    return sign | exp | mant;
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = UINT64_C(0xCBF29CE484222325);
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * UINT64_C(0x100000001B3);
    return h;
}

static int same_bits(float a, float b)
{
    return f32_bits(a) == f32_bits(b);
}

/* ---------------------------------------------------------------------- */

static void test_constants(void)
{
    CHECK(fp8_max(FP8_E4M3) == 448.0f && fp8_max(FP8_E5M2) == 57344.0f, "fp8_max");
    CHECK(strcmp(fp8_format_name(FP8_E4M3), "e4m3") == 0 && strcmp(fp8_format_name(FP8_E5M2), "e5m2") == 0,
          "fp8_format_name");
}

static void test_decode_all(void)
{
    const uint32_t *tab[2] = {fp8fx_decode_e4m3, fp8fx_decode_e5m2};
    for (int f = 0; f < 2; f++) {
        int bad = 0;
        for (int c = 0; c < 256; c++) {
            const float v = fp8_to_f32((amp_fp8)c, (enum fp8_format)f);
            if (f32_bits(v) != tab[f][c] && bad++ < 5)
                check(0, "%s decode 0x%02X: 0x%08X, ml_dtypes 0x%08X", fp8_format_name((enum fp8_format)f), c,
                      f32_bits(v), tab[f][c]);
            /* round trip: every code comes back (a NaN as the canonical 0x7F; an E5M2
               inf saturates to max under FP8_SATFINITE) */
            const int is_nan = isnan(v), is_inf = isinf(v);
            const amp_fp8 back_nosat = fp8_from_f32(v, (enum fp8_format)f, FP8_NOSAT);
            const amp_fp8 back_sat = fp8_from_f32(v, (enum fp8_format)f, FP8_SATFINITE);
            const int want_nosat = is_nan ? 0x7F : c;
            const int want_sat = is_nan ? 0x7F : is_inf ? ((c & 0x80) | 0x7B) : c;
            if ((back_nosat != want_nosat || back_sat != want_sat) && bad++ < 5)
                check(0, "%s round trip 0x%02X: nosat 0x%02X, satfinite 0x%02X",
                      fp8_format_name((enum fp8_format)f), c, back_nosat, back_sat);
        }
        check(bad == 0, "%s: all 256 codes decode as ml_dtypes and round-trip (%d bad)",
              fp8_format_name((enum fp8_format)f), bad);
    }
}

static void test_structured(void)
{
    for (int k = 0; k < 4; k++) {
        const struct conv *C = &CONVS[k];
        int bad = 0;
        for (int i = 0; i < FP8FX_STRUCT_N; i++) {
            const amp_fp8 q = fp8_from_f32(f32_from_bits(fp8fx_struct_in[i]), C->f, C->sat);
            if (q != C->structured[i] && bad++ < 8)
                check(0, "%s: input 0x%08X (%a) gives 0x%02X, ml_dtypes 0x%02X", C->name, fp8fx_struct_in[i],
                      (double)f32_from_bits(fp8fx_struct_in[i]), q, C->structured[i]);
        }
        check(bad == 0, "%s: %d structured inputs as ml_dtypes (%d bad)", C->name, FP8FX_STRUCT_N, bad);
    }
}

/* Hand-picked cases that pin the CUDA behaviours (cuda_fp8.hpp). */
static void test_cuda_rules(void)
{
    const float nan_neg = f32_from_bits(0xFFC00001u);
    CHECK(fp8_from_f32(nan_neg, FP8_E4M3, FP8_SATFINITE) == 0x7F, "e4m3: -NaN -> 0x7F");
    CHECK(fp8_from_f32(nan_neg, FP8_E5M2, FP8_NOSAT) == 0x7F, "e5m2: -NaN -> 0x7F");
    CHECK(fp8_from_f32(-INFINITY, FP8_E4M3, FP8_SATFINITE) == 0xFE, "e4m3: -inf satfinite -> -448");
    CHECK(fp8_from_f32(-INFINITY, FP8_E4M3, FP8_NOSAT) == 0xFF, "e4m3: -inf nosat -> -NaN");
    CHECK(fp8_from_f32(INFINITY, FP8_E5M2, FP8_SATFINITE) == 0x7B, "e5m2: inf satfinite -> 57344");
    CHECK(fp8_from_f32(INFINITY, FP8_E5M2, FP8_NOSAT) == 0x7C, "e5m2: inf nosat -> inf");
    CHECK(fp8_from_f32(464.0f, FP8_E4M3, FP8_NOSAT) == 0x7E, "e4m3: 464 (tie) -> 448");
    CHECK(fp8_from_f32(nextafterf(464.0f, 1e9f), FP8_E4M3, FP8_NOSAT) == 0x7F, "e4m3: above 464 -> NaN");
    CHECK(fp8_from_f32(61440.0f, FP8_E5M2, FP8_NOSAT) == 0x7C, "e5m2: 61440 (tie) -> inf");
    CHECK(fp8_from_f32(61440.0f, FP8_E5M2, FP8_SATFINITE) == 0x7B, "e5m2: 61440 satfinite -> max");
    CHECK(fp8_from_f32(-0x1p-10f, FP8_E4M3, FP8_SATFINITE) == 0x80, "e4m3: -2^-10 (tie) -> -0");
    CHECK(fp8_from_f32(0x1.8p-9f, FP8_E4M3, FP8_SATFINITE) == 0x02, "e4m3: 1.5 * 2^-9 (tie) -> 2 * 2^-9");
    CHECK(fp8_from_f32(0x1p-17f, FP8_E5M2, FP8_SATFINITE) == 0x00, "e5m2: 2^-17 (tie) -> 0");
    CHECK(fp8_from_f32(0x1.000002p-17f, FP8_E5M2, FP8_SATFINITE) == 0x01, "e5m2: above 2^-17 -> 2^-16");
    CHECK(fp8_from_f32(0x1.ep-7f, FP8_E4M3, FP8_SATFINITE) == 0x08, "e4m3: 0x1.ep-7 -> 2^-6 (carry to normal)");
}

/* The scalar conversion uses no FP arithmetic on the input: FTZ/DAZ change nothing. */
static void test_mxcsr(void)
{
#if TEST_X86
    const unsigned saved = _mm_getcsr();
    _mm_setcsr(saved | 0x8040u);   /* FTZ | DAZ */
    int bad = 0;
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < FP8FX_STRUCT_N; i++)
            bad += fp8_from_f32(f32_from_bits(fp8fx_struct_in[i]), CONVS[k].f, CONVS[k].sat) != CONVS[k].structured[i];
    for (int f = 0; f < 2; f++)
        for (int c = 0; c < 256; c++) {
            const uint32_t want = f ? fp8fx_decode_e5m2[c] : fp8fx_decode_e4m3[c];
            bad += f32_bits(fp8_to_f32((amp_fp8)c, (enum fp8_format)f)) != want;
        }
    _mm_setcsr(saved);
    check(bad == 0, "scalar conversions unchanged under MXCSR FTZ+DAZ (%d bad)", bad);
#endif
}

static const char *const PATHS[] = {"avx512", "avx2", "portable"};

/* The random stream: the scalar conversions against the fixture's hashes,
   and on the same inputs every array path against the scalar definition. */
static void test_random(void)
{
    const size_t n = FP8FX_CHUNK;
    float *x = malloc(n * sizeof *x), *fake = malloc(n * sizeof *fake), *want_f = malloc(n * sizeof *want_f);
    uint8_t *q = malloc(n), *want = malloc(n);
    if (!x || !fake || !want_f || !q || !want) {
        check(0, "out of memory");
        return;
    }
    int bad[4] = {0, 0, 0, 0}, arr_bad = 0;
    for (int ch = 0; ch < FP8FX_RANDOM_CHUNKS; ch++) {
        for (size_t i = 0; i < n; i++)
            x[i] = f32_from_bits(random_input((uint64_t)ch * n + i));
        for (int k = 0; k < 4; k++) {
            for (size_t i = 0; i < n; i++)
                want[i] = fp8_from_f32(x[i], CONVS[k].f, CONVS[k].sat);
            const uint64_t h = fnv1a(want, n);
            if (h != CONVS[k].hashes[ch] && bad[k]++ < 3)
                check(0, "%s: random chunk %d differs from ml_dtypes (tools/gen_fp8_fixture.py --dump-chunk %s %d)",
                      CONVS[k].name, ch, CONVS[k].name, ch);
            if (CONVS[k].sat != FP8_SATFINITE || ch % 8 != 0)
                continue;
            /* array paths (scale 1: the scalar conversion itself; a tail of 5) */
            for (size_t p = 0; p < sizeof PATHS / sizeof PATHS[0]; p++) {
                if (fp8_set_fast_path(PATHS[p]) != 0)
                    continue;
                memset(q, 0xAA, n);
                fp8_quantize_array(q, x, n - 5, 1.0f, CONVS[k].f, NULL);
                const int ok_q = memcmp(q, want, n - 5) == 0 && q[n - 5] == 0xAA;
                /* fake quantize with a scale: fp8(x * s) * s_inv, scalar composition */
                const float s = 3.0f, si = 1.0f / 3.0f;
                for (size_t i = 0; i < n; i++)
                    want_f[i] = fp8_to_f32(fp8_from_f32(x[i] * s, CONVS[k].f, FP8_SATFINITE), CONVS[k].f) * si;
                fp8_fake_quantize_array(fake, x, n - 3, s, si, CONVS[k].f, NULL);
                int ok_f = 1;
                for (size_t i = 0; i < n - 3; i++)
                    ok_f &= same_bits(fake[i], want_f[i]);
                if ((!ok_q || !ok_f) && arr_bad++ < 3)
                    check(0, "%s: path %s chunk %d: quantize %s, fake quantize %s", CONVS[k].name, PATHS[p], ch,
                          ok_q ? "ok" : "DIFFERS", ok_f ? "ok" : "DIFFERS");
            }
            fp8_set_fast_path("auto");
        }
    }
    for (int k = 0; k < 4; k++)
        check(bad[k] == 0, "%s: %d random inputs (%d chunks) as ml_dtypes (%d chunks bad)", CONVS[k].name,
              FP8FX_RANDOM_CHUNKS * FP8FX_CHUNK, FP8FX_RANDOM_CHUNKS, bad[k]);
    check(arr_bad == 0, "array quantize and fake quantize paths equal the scalar definition (%d bad)", arr_bad);
    free(x);
    free(fake);
    free(want_f);
    free(q);
    free(want);
}

static int stats_equal(const struct fp8_stats *a, const struct fp8_stats *b)
{
    return a->n == b->n && a->saturated == b->saturated && a->underflow == b->underflow &&
           a->nonfinite == b->nonfinite && same_bits(a->amax, b->amax) &&
           memcmp(&a->signal, &b->signal, sizeof a->signal) == 0 && memcmp(&a->noise, &b->noise, sizeof a->noise) == 0;
}

/* The portable and the fast path agree on outputs and stats, bit for bit,
   for several lengths (tails) and scales, with and without stats. */
static void test_paths_stats(void)
{
    const size_t n = 1003;
    float *x = malloc(n * sizeof *x), *d0 = malloc(n * sizeof *d0), *d1 = malloc(n * sizeof *d1);
    uint8_t *q0 = malloc(n), *q1 = malloc(n);
    if (!x || !d0 || !d1 || !q0 || !q1) {
        check(0, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++)
        x[i] = f32_from_bits(random_input(UINT64_C(1) << 40 | i));
    const float scales[] = {1.0f, 0.25f, 1000.0f, 3.7e-5f};
    int bad = 0;
    for (int f = 0; f < 2; f++)
        for (size_t si = 0; si < sizeof scales / sizeof scales[0]; si++)
            for (size_t len = 0; len <= n; len += (len < 40 ? 1 : 241)) {
                const float s = scales[si], inv = 1.0f / s;
                struct fp8_stats a = {0}, b = {0}, c = {0}, e = {0};
                fp8_quantize_array_portable(q0, x, len, s, (enum fp8_format)f, &a);
                fp8_fake_quantize_array_portable(d0, x, len, s, inv, (enum fp8_format)f, &c);
                for (int fp = 0; fp < 2; fp++) {
                    if (fp8_set_fast_path(PATHS[fp]) != 0) /* avx512, avx2 */
                        continue;
                    b = (struct fp8_stats){0};
                    e = (struct fp8_stats){0};
                    fp8_quantize_array(q1, x, len, s, (enum fp8_format)f, &b);
                    bad += memcmp(q0, q1, len) != 0 || !stats_equal(&a, &b);
                    fp8_fake_quantize_array(d1, x, len, s, inv, (enum fp8_format)f, &e);
                    bad += memcmp(d0, d1, len * sizeof *d0) != 0 || !stats_equal(&c, &e);
                    fp8_fake_quantize_array(d1, x, len, s, inv, (enum fp8_format)f, NULL);
                    bad += memcmp(d0, d1, len * sizeof *d0) != 0;
                    fp8_dequantize_array(d1, q0, len, inv, (enum fp8_format)f);
                    for (size_t i = 0; i < len; i++)
                        bad += !same_bits(d1[i], d0[i]);
                }
                fp8_set_fast_path("auto");
                /* the stats of quantize are those of fake quantize with 1/scale */
                bad += !stats_equal(&a, &c);
                bad += a.n != len;
            }
    check(bad == 0, "array paths and their stats agree bit for bit (lengths 0..%zu, 4 scales; %d bad)", n, bad);
    free(x);
    free(d0);
    free(d1);
    free(q0);
    free(q1);
}

/* Saturated lanes far above the format's max (x more than 2^20 times its clipped value, so
   x - d rounds in FP32): the fast paths' noise sums the exact double differences, as the
   portable path, bit for bit, among unsaturated lanes (whose FP32 difference is exact). */
static void test_saturated_noise(void)
{
    enum { N = 67 };
    float x[N], d0[N], d1[N];
    for (int i = 0; i < N; i++) /* every third element huge, with low mantissa bits set */
        x[i] = i % 3 ? (float)(i - 30) * 0.173f : (i % 2 ? -1.0f : 1.0f) * (1234567891.0f + 8192.0f * (float)i);
    int bad = 0, cases = 0;
    for (int f = 0; f < 2; f++)
        for (int fp = 0; fp < 2; fp++) {
            if (fp8_set_fast_path(PATHS[fp]) != 0)
                continue;
            struct fp8_stats want = {0}, got = {0};
            fp8_fake_quantize_array_portable(d0, x, N, 1.0f, 1.0f, (enum fp8_format)f, &want);
            fp8_fake_quantize_array(d1, x, N, 1.0f, 1.0f, (enum fp8_format)f, &got);
            bad += !stats_equal(&want, &got) || memcmp(d0, d1, sizeof d0) != 0 || want.saturated != (N + 2) / 3;
            cases++;
        }
    fp8_set_fast_path("auto");
    check(bad == 0, "saturated lanes 2^21 times E4M3 max: the fast paths' noise as the portable path's (%d of %d bad)",
          bad, cases);
}

static int near(double a, double b)
{
    return fabs(a - b) <= 1e-12 * fmax(fabs(a), fabs(b));
}

static void test_stats_hand(void)
{
    for (size_t p = 0; p < sizeof PATHS / sizeof PATHS[0]; p++) {
        if (fp8_set_fast_path(PATHS[p]) != 0)
            continue;
        /* E4M3, scale 1: 0, 1 exact; -500 clipped to -448, +inf clipped (saturated: the clip
           changed them); 460 rounds to 448 by itself (below 464: not saturated); NaN;
           1e-4 underflows (below 2^-10); 0.3 rounds to 0.3125 */
        const float x[] = {0.0f, 1.0f, -500.0f, INFINITY, NAN, 1e-4f, 448.0f, 460.0f, 0.3f};
        const size_t n = sizeof x / sizeof x[0];
        uint8_t q[sizeof x / sizeof x[0]];
        struct fp8_stats s = {0};
        fp8_quantize_array(q, x, n, 1.0f, FP8_E4M3, &s);
        CHECK(s.n == 9 && s.saturated == 2 && s.underflow == 1 && s.nonfinite == 1, "%s: counts %" PRIu64
              " %" PRIu64 " %" PRIu64 " %" PRIu64, PATHS[p], s.n, s.saturated, s.underflow, s.nonfinite);
        CHECK(s.amax == 500.0f, "%s: amax %g", PATHS[p], (double)s.amax);
        const double x5 = (double)1e-4f, x8 = (double)0.3f;
        const double sig = 1.0 + 250000.0 + x5 * x5 + 448.0 * 448.0 + 460.0 * 460.0 + x8 * x8;
        const double noise = 52.0 * 52.0 + x5 * x5 + 12.0 * 12.0 + (x8 - 0.3125) * (x8 - 0.3125);
        CHECK(near(s.signal, sig) && near(s.noise, noise), "%s: signal %.17g (want %.17g), noise %.17g (want %.17g)",
              PATHS[p], s.signal, sig, s.noise, noise);
        CHECK(near(fp8_sqnr_db(&s), 10.0 * log10(sig / noise)), "%s: sqnr %g dB", PATHS[p], fp8_sqnr_db(&s));
        CHECK(q[2] == 0xFE && q[3] == 0x7E && q[4] == 0x7F && q[5] == 0x00 && q[7] == 0x7E, "%s: saturated codes",
              PATHS[p]);
        /* stats add: a second call doubles the counts, amax is the max with what is there */
        const float y[] = {-600.0f, 2.0f};
        fp8_quantize_array(q, y, 2, 0.5f, FP8_E4M3, &s);
        CHECK(s.n == 11 && s.saturated == 2 && s.amax == 600.0f, "%s: stats add (n %" PRIu64 ", saturated %" PRIu64
              ", amax %g)", PATHS[p], s.n, s.saturated, (double)s.amax);
        /* scale 1024: 1e-4 * 1024 no longer underflows, 500 * 1024 saturates */
        struct fp8_stats t = {0};
        const float z[] = {1e-4f, 500.0f};
        fp8_quantize_array(q, z, 2, 1024.0f, FP8_E4M3, &t);
        CHECK(t.underflow == 0 && t.saturated == 1, "%s: scale 1024: underflow %" PRIu64 ", saturated %" PRIu64,
              PATHS[p], t.underflow, t.saturated);
        /* no noise: SQNR +inf */
        struct fp8_stats u = {0};
        const float w[] = {1.0f, -2.0f, 0.5f};
        fp8_quantize_array(q, w, 3, 1.0f, FP8_E5M2, &u);
        CHECK(u.noise == 0.0 && isinf(fp8_sqnr_db(&u)) && u.signal == 5.25, "%s: exact values: sqnr inf", PATHS[p]);
    }
    fp8_set_fast_path("auto");
    const float a[] = {NAN, -3.0f, INFINITY, 2.0f, -INFINITY};
    CHECK(fp8_amax(a, 5) == 3.0f && fp8_amax(a, 0) == 0.0f && fp8_amax(a, 1) == 0.0f, "fp8_amax skips non-finite");
    /* Every path: the same amax over a long array with specials anywhere (the largest finite
       value in the vector part, then in the tail). */
    static float big[1003];
    for (size_t i = 0; i < 1003; i++)
        big[i] = (i % 7 == 0) ? NAN : (i % 11 == 0) ? -INFINITY : (float)i * ((i & 1) ? -0.5f : 0.25f);
    for (size_t p = 0; p < sizeof PATHS / sizeof PATHS[0]; p++) {
        if (fp8_set_fast_path(PATHS[p]) != 0)
            continue;
        CHECK(fp8_amax(big, 1003) == 499.5f && fp8_amax(big, 996) == 497.5f,
              "%s: fp8_amax over 1003 elements: %g, over 996: %g", PATHS[p],
              (double)fp8_amax(big, 1003), (double)fp8_amax(big, 996));
    }
    fp8_set_fast_path("auto");
    CHECK(fp8_set_fast_path("bogus") == -1, "fp8_set_fast_path refuses an unknown name");
}

/* The fast paths round the subnormal range with the rounding in the instruction, not MXCSR's:
   under MXCSR round-up + FTZ + DAZ every path's fake quantization (values and stats) equals the
   portable code's under the same MXCSR, on the subnormal range of each format: every 1021st FP32
   pattern below the smallest normal, and each midpoint between neighbouring subnormals (and
   the smallest normal) with its FP32 neighbours, both signs. (All 2^32 inputs were compared
   once, under this MXCSR and the default.) */
static void test_mxcsr_paths(void)
{
#if TEST_X86
    enum { N = 1 << 21 };
    float *x = malloc(N * sizeof *x), *d0 = malloc(N * sizeof *d0), *d1 = malloc(N * sizeof *d1);
    if (!x || !d0 || !d1) {
        check(0, "out of memory");
        return;
    }
    const unsigned saved = _mm_getcsr();
    int bad = 0, runs = 0;
    for (int f = 0; f < 2; f++) {
        const uint32_t norm_min = f ? 113u << 23 : 121u << 23; /* 2^-14, 2^-6 */
        const float quantum = f ? 0x1p-16f : 0x1p-9f;
        size_t n = 0;
        for (uint32_t u = 0; u < norm_min && n + 2 < N; u += 1021u) {
            x[n++] = f32_from_bits(u);
            x[n++] = f32_from_bits(u | 0x80000000u);
        }
        for (int k = 0; k <= (f ? 4 : 8) && n + 6 <= N; k++)
            for (int d = -1; d <= 1; d++) {
                const uint32_t mid = f32_bits(((float)k + 0.5f) * quantum);
                x[n++] = f32_from_bits(mid + (uint32_t)d);
                x[n++] = f32_from_bits((mid + (uint32_t)d) | 0x80000000u);
            }
        _mm_setcsr((saved & ~0x6000u) | 0x4000u | 0x8040u); /* RC up, FTZ, DAZ */
        struct fp8_stats a = {0};
        fp8_fake_quantize_array_portable(d0, x, n, 1.0f, 1.0f, (enum fp8_format)f, &a);
        for (int p = 0; p < 2; p++) {
            if (fp8_set_fast_path(PATHS[p]) != 0) /* avx512, avx2 */
                continue;
            struct fp8_stats b = {0};
            fp8_fake_quantize_array(d1, x, n, 1.0f, 1.0f, (enum fp8_format)f, &b);
            bad += memcmp(d0, d1, n * sizeof *d0) != 0 || !stats_equal(&a, &b);
            runs++;
        }
        _mm_setcsr(saved);
        fp8_set_fast_path("auto");
    }
    check(bad == 0 && runs > 0, "fast paths' subnormal rounding = portable under MXCSR round-up + FTZ + DAZ (%d runs; %d bad)",
          runs, bad);
    free(x);
    free(d0);
    free(d1);
#endif
}

/* fp8_fake_quantize_bf16_array = widening the BF16 values, then fp8_fake_quantize_array_portable
   in place: the same values and stats, bit for bit, on every path, for every length's tail, BF16
   bits of every kind (NaNs, infs, subnormals, zeros) and several scales, with and without
   stats. */
static void test_bf16_source(void)
{
    const size_t n = 1003;
    uint16_t *h = malloc(n * sizeof *h);
    float *x = malloc(n * sizeof *x), *d0 = malloc(n * sizeof *d0), *d1 = malloc(n * sizeof *d1);
    if (!h || !x || !d0 || !d1) {
        check(0, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        h[i] = (uint16_t)(random_input(UINT64_C(3) << 40 | i) >> 16);
        x[i] = f32_from_bits((uint32_t)h[i] << 16);
    }
    const float scales[] = {1.0f, 0.25f, 1000.0f, 3.7e-5f};
    int bad = 0, runs = 0;
    for (int f = 0; f < 2; f++)
        for (size_t si = 0; si < sizeof scales / sizeof scales[0]; si++)
            for (size_t len = 0; len <= n; len += (len < 40 ? 1 : 241)) {
                const float s = scales[si], inv = 1.0f / s;
                struct fp8_stats a = {0};
                fp8_fake_quantize_array_portable(d0, x, len, s, inv, (enum fp8_format)f, &a);
                for (int p = 0; p < 3; p++) {
                    if (fp8_set_fast_path(PATHS[p]) != 0)
                        continue;
                    struct fp8_stats b = {0};
                    fp8_fake_quantize_bf16_array(d1, h, len, s, inv, (enum fp8_format)f, &b);
                    bad += memcmp(d0, d1, len * sizeof *d0) != 0 || !stats_equal(&a, &b);
                    memset(d1, 0xA5, n * sizeof *d1);
                    fp8_fake_quantize_bf16_array(d1, h, len, s, inv, (enum fp8_format)f, NULL);
                    bad += memcmp(d0, d1, len * sizeof *d0) != 0;
                    runs++;
                }
                fp8_set_fast_path("auto");
            }
    check(bad == 0 && runs > 0, "BF16-source fake quantization = widen + portable, bit for bit (%d runs; %d bad)",
          runs, bad);
    free(h);
    free(x);
    free(d0);
    free(d1);
}

/* mx_fake_quantize_layout_bf16 = widening the BF16 values, then mx_fake_quantize_layout in
   place: the same values and stats, bit for bit, on every path, for rows (inner 1) and columns
   (inner > 1, a last partial group of lanes), lengths with a partial last block, both formats
   and both scale roundings, BF16 bits of every kind, with and without stats. */
static void test_mx_bf16_source(void)
{
    const struct mx_layout layouts[] = { { 3, 75, 1 }, { 2, 32, 1 }, { 1, 1, 1 }, { 2, 45, 19 },
                                         { 1, 33, 16 }, { 3, 7, 40 } };
    enum { N = 3 * 75 * 1 + 2 * 45 * 19 + 3 * 7 * 40 };
    uint16_t *h = malloc(N * sizeof *h);
    float *d0 = malloc(N * sizeof *d0), *d1 = malloc(N * sizeof *d1);
    if (!h || !d0 || !d1) {
        check(0, "out of memory");
        return;
    }
    for (size_t i = 0; i < N; i++)
        h[i] = (uint16_t)(random_input(UINT64_C(5) << 40 | i) >> 16);
    int bad = 0, runs = 0;
    for (size_t li = 0; li < sizeof layouts / sizeof layouts[0]; li++)
        for (int f = 0; f < 2; f++)
            for (int r = 0; r < 2; r++) {
                const struct mx_layout L = layouts[li];
                const size_t n = L.outer * L.len * L.inner;
                const enum mx_scale_rounding R = r ? MX_SCALE_RCEIL : MX_SCALE_FLOOR;
                for (size_t i = 0; i < n; i++)
                    d0[i] = f32_from_bits((uint32_t)h[i] << 16);
                fp8_set_fast_path("portable");
                struct fp8_stats a = {0};
                mx_fake_quantize_layout(d0, d0, L, (enum fp8_format)f, R, &a);
                for (int p = 0; p < 3; p++) {
                    if (fp8_set_fast_path(PATHS[p]) != 0)
                        continue;
                    struct fp8_stats b = {0};
                    memset(d1, 0xA5, N * sizeof *d1);
                    mx_fake_quantize_layout_bf16(d1, h, L, (enum fp8_format)f, R, &b);
                    bad += memcmp(d0, d1, n * sizeof *d0) != 0 || !stats_equal(&a, &b);
                    memset(d1, 0xA5, N * sizeof *d1);
                    mx_fake_quantize_layout_bf16(d1, h, L, (enum fp8_format)f, R, NULL);
                    bad += memcmp(d0, d1, n * sizeof *d0) != 0;
                    runs++;
                }
                fp8_set_fast_path("auto");
            }
    check(bad == 0 && runs > 0,
          "BF16-source MX fake quantization = widen + portable, bit for bit (%d runs; %d bad)", runs,
          bad);
    free(h);
    free(d0);
    free(d1);
}

/* fp8_amax_bf16 = fp8_amax of the widened values, on every path: over all 65,536 BF16 patterns
   (NaNs and infs included) in a shuffled order, over every prefix length up to 40 and lengths
   across the vector tail, and on arrays whose largest finite value sits in the tail. */
static void test_bf16_amax(void)
{
    const size_t n = 65536;
    uint16_t *h = malloc(n * sizeof *h);
    float *x = malloc(n * sizeof *x);
    if (!h || !x) {
        check(0, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++)
        h[i] = (uint16_t)i;
    for (size_t i = n - 1; i > 0; i--) { /* Fisher-Yates on the test's own generator */
        const size_t j = (size_t)(random_input(UINT64_C(5) << 40 | i) % (i + 1));
        const uint16_t t = h[i];
        h[i] = h[j];
        h[j] = t;
    }
    for (size_t i = 0; i < n; i++)
        x[i] = f32_from_bits((uint32_t)h[i] << 16);
    int bad = 0, runs = 0;
    for (int p = 0; p < 3; p++) {
        if (fp8_set_fast_path(PATHS[p]) != 0)
            continue;
        for (size_t len = 0; len <= n; len += (len < 40 ? 1 : len < 2000 ? 97 : 9973)) {
            const size_t at = (len * 7919) % (n - len + 1);
            const float a = fp8_amax(x + at, len), b = fp8_amax_bf16(h + at, len);
            bad += f32_bits(a) != f32_bits(b);
            runs++;
        }
        bad += fp8_amax_bf16(h, n) != 0x1.FEp127f; /* the largest finite BF16 */
        const uint16_t tail[19] = {0x3F80, 0x7FC0, 0xFF80, 0x4000, 0xC040, 0, 0, 0, 0, 0,
                                   0, 0, 0, 0, 0, 0, 0x7F80, 0xC080, 0xFFFF};
        bad += fp8_amax_bf16(tail, 19) != 4.0f || fp8_amax_bf16(tail, 16) != 3.0f;
        runs += 2;
    }
    fp8_set_fast_path("auto");
    check(bad == 0 && runs > 0, "BF16 amax = amax of the widened values, every path (%d runs; %d bad)",
          runs, bad);
    free(h);
    free(x);
}

static void test_e8m0(void)
{
    CHECK(e8m0_to_f32(127) == 1.0f && e8m0_to_f32(128) == 2.0f && e8m0_to_f32(0) == 0x1p-127f &&
              e8m0_to_f32(254) == 0x1p127f && e8m0_to_f32(1) == 0x1p-126f && isnan(e8m0_to_f32(255)),
          "e8m0_to_f32: 2^(e-127), 0xFF NaN");
}

/* ---------------------------------------------------------------------- */
/* MX                                                                     */
/* ---------------------------------------------------------------------- */

/* The exact rules, written independently: floor 2^(floor(log2 amax) -
   emax_elem) by frexp, clamped at 2^-127; rceil the smallest 2^(e - 127)
   with amax / 2^(e - 127) <= max, in double. */
static int floor_exp(double amax, int emax)
{
    if (amax == 0.0)
        return -127;
    int ex;
    frexp(amax, &ex);                 /* amax = m * 2^ex, m in [0.5, 1) */
    const int E = (ex - 1) - emax;
    return E < -127 ? -127 : E;
}

static int rceil_e(double amax, double max)
{
    for (int e = 0; e < 255; e++)
        if (amax / ldexp(1.0, e - 127) <= max)
            return e;
    return 255;
}

static void mx_block_fill(float *x, size_t len, float amax, uint64_t seed)
{
    for (size_t i = 0; i < len; i++) {
        const uint32_t r = random_input(seed + i);
        /* uniform in (-amax, amax): a mantissa-derived fraction */
        x[i] = amax * ((float)(r & 0xFFFFFu) / 1048576.0f) * ((r >> 31) ? -1.0f : 1.0f);
    }
    x[len / 2] = (seed & 1) ? -amax : amax;
}

static void test_mx(void)
{
    /* A worked example as the OCP MX v1.0 algorithm: amax 1.0, E4M3:
       X = 2^(0 - 8); elements x * 256; 1.0 -> 256 = 0x78, 0.5 -> 0x70,
       -0.1 -> -25.6 -> -26 (0xDD), 1e-3 -> 0.256 -> 0.25 (0x28 = 2^-2). */
    {
        float x[MX_BLOCK] = {0};
        x[0] = 1.0f, x[1] = 0.5f, x[2] = -0.1f, x[3] = 1e-3f;
        for (int r = 0; r < 2; r++) {
            amp_fp8 q[MX_BLOCK];
            uint8_t s;
            mx_quantize(q, &s, x, 1, MX_BLOCK, FP8_E4M3, (enum mx_scale_rounding)r, NULL);
            CHECK(s == 119 && q[0] == 0x78 && q[1] == 0x70 && q[2] == 0xDD && q[3] == 0x28 && q[4] == 0,
                  "mx %s: amax 1: scale %u, codes %02X %02X %02X %02X", r ? "rceil" : "floor", s, q[0], q[1], q[2],
                  q[3]);
            float d[MX_BLOCK];
            mx_dequantize(d, q, &s, 1, MX_BLOCK, FP8_E4M3);
            CHECK(d[0] == 1.0f && d[1] == 0.5f && d[2] == -26.0f / 256.0f && d[3] == 0.25f / 256.0f,
                  "mx: dequantize q * X");
        }
    }
    /* floor vs rceil: amax 500 (E4M3): floor X = 2^(8 - 8) = 1 and 500 saturates
       to 448; rceil X = 2 (500 / 448 > 1) and 500 / 2 = 250 rounds to 256. The
       same for E5M2 at 60000: floor X = 1 (saturates to 57344), rceil X = 2. */
    {
        float x[MX_BLOCK] = {0};
        x[0] = 500.0f, x[1] = 1.0f;
        amp_fp8 q[MX_BLOCK];
        uint8_t s;
        struct fp8_stats st = {0};
        mx_quantize(q, &s, x, 1, MX_BLOCK, FP8_E4M3, MX_SCALE_FLOOR, &st);
        CHECK(s == 127 && q[0] == 0x7E && q[1] == 0x38 && st.saturated == 1 && st.n == MX_BLOCK,
              "mx floor: amax 500 saturates (scale %u, code %02X, saturated %" PRIu64 ")", s, q[0], st.saturated);
        struct fp8_stats sr = {0};
        mx_quantize(q, &s, x, 1, MX_BLOCK, FP8_E4M3, MX_SCALE_RCEIL, &sr);
        CHECK(s == 128 && q[0] == 0x78 && q[1] == 0x30 && sr.saturated == 0, "mx rceil: amax 500: scale %u, code %02X",
              s, q[0]);
        CHECK(st.noise > sr.noise, "mx: floor's saturation costs more than rceil's rounding here");
        x[0] = 60000.0f;
        mx_quantize(q, &s, x, 1, MX_BLOCK, FP8_E5M2, MX_SCALE_FLOOR, NULL);
        CHECK(s == 127 && q[0] == 0x7B, "mx floor e5m2: 60000 saturates (scale %u, code %02X)", s, q[0]);
        mx_quantize(q, &s, x, 1, MX_BLOCK, FP8_E5M2, MX_SCALE_RCEIL, NULL);
        CHECK(s == 128, "mx rceil e5m2: 60000: scale %u", s);
    }
    /* a block of zeros: scale 2^-127 (0x00) under both, codes 0, dequantized 0 */
    for (int r = 0; r < 2; r++) {
        float x[MX_BLOCK] = {0}, d[MX_BLOCK];
        amp_fp8 q[MX_BLOCK];
        uint8_t s = 0xAA;
        mx_quantize(q, &s, x, 1, MX_BLOCK, FP8_E4M3, (enum mx_scale_rounding)r, NULL);
        mx_dequantize(d, q, &s, 1, MX_BLOCK, FP8_E4M3);
        int ok = s == 0;
        for (int i = 0; i < MX_BLOCK; i++)
            ok &= q[i] == 0 && d[i] == 0.0f;
        CHECK(ok, "mx %s: a block of zeros (scale %u)", r ? "rceil" : "floor", s);
    }
    /* a NaN in a block: floor (OCP reference) makes the scale NaN and every
       element NaN; rceil (TE) ignores it in amax and only that element is NaN */
    {
        float x[MX_BLOCK] = {0}, d[MX_BLOCK];
        x[0] = 1.0f, x[5] = NAN, x[9] = -2.0f;
        amp_fp8 q[MX_BLOCK];
        uint8_t s;
        struct fp8_stats st = {0};
        mx_quantize(q, &s, x, 1, MX_BLOCK, FP8_E4M3, MX_SCALE_FLOOR, &st);
        mx_dequantize(d, q, &s, 1, MX_BLOCK, FP8_E4M3);
        int ok = s == 0xFF && st.nonfinite == MX_BLOCK;
        for (int i = 0; i < MX_BLOCK; i++)
            ok &= q[i] == 0x7F && isnan(d[i]);
        CHECK(ok, "mx floor: NaN in a block: scale 0x%02X, nonfinite %" PRIu64, s, st.nonfinite);
        struct fp8_stats sr = {0};
        mx_quantize(q, &s, x, 1, MX_BLOCK, FP8_E4M3, MX_SCALE_RCEIL, &sr);
        mx_dequantize(d, q, &s, 1, MX_BLOCK, FP8_E4M3);
        CHECK(s == 120 && q[5] == 0x7F && d[0] == 1.0f && d[9] == -2.0f && isnan(d[5]) && sr.nonfinite == 1 &&
                  sr.amax == 2.0f && !isnan(sr.noise),
              "mx rceil: NaN in a block: scale %u (2^-7), the rest quantized", s);
        /* an inf: floor NaN scale; rceil e = 0xFE whose multiplier is 0 (TE's exp2f_rcp) */
        x[5] = INFINITY;
        mx_quantize(q, &s, x, 1, MX_BLOCK, FP8_E4M3, MX_SCALE_FLOOR, NULL);
        CHECK(s == 0xFF, "mx floor: inf in a block: NaN scale");
        mx_quantize(q, &s, x, 1, MX_BLOCK, FP8_E4M3, MX_SCALE_RCEIL, NULL);
        CHECK(s == 0xFE && q[5] == 0x7F && q[0] == 0 && q[9] == 0x80, "mx rceil: inf in a block: scale 0x%02X", s);
    }
    /* tiny blocks: floor clamps at 2^-127 and keeps the values (x * 2^127);
       rceil's e == 0 multiplies by 1 (TE), so they underflow to 0 */
    {
        float x[MX_BLOCK] = {0};
        x[0] = 0x1p-130f;
        amp_fp8 q[MX_BLOCK];
        uint8_t s;
        mx_quantize(q, &s, x, 1, MX_BLOCK, FP8_E4M3, MX_SCALE_FLOOR, NULL);
        CHECK(s == 0 && q[0] == fp8_from_f32(0x1p-3f, FP8_E4M3, FP8_SATFINITE), "mx floor: 2^-130: scale %u code %02X",
              s, q[0]);
        struct fp8_stats st = {0};
        mx_quantize(q, &s, x, 1, MX_BLOCK, FP8_E4M3, MX_SCALE_RCEIL, &st);
        CHECK(s == 0 && q[0] == 0 && st.underflow == 1, "mx rceil: 2^-130: scale %u code %02X", s, q[0]);
    }
    /* random blocks, partial last block (k % 32 != 0), several rows: scales
       against the exact rules, elements against fp8(x * 2^-E), fake quantize
       = dequantize(quantize) bit for bit, in place, on every path */
    {
        const size_t rows = 7, k = 77, nb = 3;
        float *x = malloc(rows * k * sizeof *x), *d = malloc(rows * k * sizeof *d), *y = malloc(rows * k * sizeof *y);
        amp_fp8 *q = malloc(rows * k);
        uint8_t sc[7 * 3];
        if (!x || !d || !y || !q) {
            check(0, "out of memory");
            return;
        }
        int bad = 0, cases = 0;
        for (int f = 0; f < 2; f++)
            for (int r = 0; r < 2; r++)
                for (int trial = 0; trial < 200; trial++) {
                    const float fmx = fp8_max((enum fp8_format)f);
                    for (size_t row = 0; row < rows; row++)
                        for (size_t b = 0; b < nb; b++) {
                            const size_t len = (b == nb - 1) ? k - b * MX_BLOCK : MX_BLOCK;
                            /* amax over 2^-100 .. 2^100, at and around the boundaries too */
                            const uint32_t rr = random_input((uint64_t)trial * 1000 + row * 10 + b);
                            float amax = ldexpf(1.0f + (float)(rr & 0xFFFF) / 65536.0f, (int)(rr >> 16) % 200 - 100);
                            if (rr % 5 == 0)
                                amax = ldexpf(fmx, (int)(rr >> 20) % 40 - 20);
                            mx_block_fill(x + row * k + b * MX_BLOCK, len, amax, (uint64_t)trial << 20 | row << 8 | b);
                        }
                    mx_quantize(q, sc, x, rows, k, (enum fp8_format)f, (enum mx_scale_rounding)r, NULL);
                    for (size_t row = 0; row < rows; row++)
                        for (size_t b = 0; b < nb; b++) {
                            const size_t off = row * k + b * MX_BLOCK;
                            const size_t len = (b == nb - 1) ? k - b * MX_BLOCK : MX_BLOCK;
                            double am = 0.0;
                            for (size_t i = 0; i < len; i++)
                                am = fmax(am, fabs((double)x[off + i]));
                            const int e = r ? rceil_e(am, fmx) : floor_exp(am, f ? 15 : 8) + 127;
                            cases++;
                            if (sc[row * nb + b] != e) {
                                if (bad++ < 5)
                                    check(0, "mx %s %s: amax %a: scale %u, exact rule %d", fp8_format_name((enum fp8_format)f),
                                          r ? "rceil" : "floor", am, sc[row * nb + b], e);
                                continue;
                            }
                            for (size_t i = 0; i < len; i++) {
                                const amp_fp8 want = fp8_from_f32(ldexpf(x[off + i], 127 - e), (enum fp8_format)f,
                                                                  FP8_SATFINITE);
                                if (q[off + i] != want && bad++ < 5)
                                    check(0, "mx %s: element %a: 0x%02X, want 0x%02X", r ? "rceil" : "floor",
                                          (double)x[off + i], q[off + i], want);
                            }
                        }
                    mx_dequantize(d, q, sc, rows, k, (enum fp8_format)f);
                    struct fp8_stats s1 = {0};
                    mx_quantize(q, sc, x, rows, k, (enum fp8_format)f, (enum mx_scale_rounding)r, &s1);
                    for (size_t p = 0; p < sizeof PATHS / sizeof PATHS[0]; p++) {
                        if (fp8_set_fast_path(PATHS[p]) != 0)
                            continue;
                        struct fp8_stats s2 = {0};
                        memcpy(y, x, rows * k * sizeof *y);
                        mx_fake_quantize(y, y, rows, k, (enum fp8_format)f, (enum mx_scale_rounding)r, &s2);
                        bad += memcmp(y, d, rows * k * sizeof *y) != 0;
                        bad += !stats_equal(&s1, &s2);
                    }
                    fp8_set_fast_path("auto");
                }
        check(bad == 0, "mx: %d random blocks (partial last blocks, both formats and roundings) as the exact "
              "rules; fake quantize in place = dequantize(quantize) (%d bad)", cases, bad);
        free(x);
        free(d);
        free(y);
        free(q);
    }
}

/* MX fast path = portable path, bit for bit, on any FP32 bits (NaNs, infs, subnormals, blocks
   of zeros), both formats and roundings, whole and partial blocks, into stats that already
   hold a previous call's (the sums continue, as each block's in turn). */
static void test_mx_paths(void)
{
    const size_t rows = 3, k = 4 * MX_BLOCK, n = rows * k;
    float *x = malloc(n * sizeof *x), *y0 = malloc(n * sizeof *y0), *y1 = malloc(n * sizeof *y1);
    uint8_t *q0 = malloc(n), *q1 = malloc(n), sc0[rows * 4], sc1[rows * 4];
    if (!x || !y0 || !y1 || !q0 || !q1) {
        check(0, "out of memory");
        return;
    }
    int bad = 0, cases = 0;
    for (int trial = 0; trial < 40; trial++) {
        for (size_t i = 0; i < n; i++) {
            /* block 0 of row 0 zeros; otherwise random bits, some blocks scaled down to subnormal */
            const uint32_t u = random_input(UINT64_C(7) << 40 | (uint64_t)trial << 20 | i);
            x[i] = (i < MX_BLOCK) ? 0.0f : f32_from_bits(u);
            if ((i / MX_BLOCK) % 5 == 3)
                x[i] = f32_from_bits(u & 0x807FFFFFu);
            if (trial % 2 && (i / MX_BLOCK) % 3 == 1 && (i % MX_BLOCK) != 7)
                x[i] = f32_from_bits(u & 0xBFFFFFFFu); /* finite but for lane 7 */
        }
        for (int f = 0; f < 2; f++)
            for (int r = 0; r < 2; r++)
                for (size_t kk = MX_BLOCK; kk <= k; kk += (kk == MX_BLOCK ? MX_BLOCK / 2 + 3 : 3 * MX_BLOCK / 2 - 3)) {
                    const size_t nr = n / kk < rows ? n / kk : rows;
                    struct fp8_stats s0 = {.n = 5, .amax = 2.0f, .signal = 0.1, .noise = 1e-7}, s1 = s0;
                    struct fp8_stats f0 = s0, f1 = s0;
                    if (fp8_set_fast_path("portable") != 0)
                        continue;
                    mx_quantize(q0, sc0, x, nr, kk, (enum fp8_format)f, (enum mx_scale_rounding)r, &s0);
                    memcpy(y0, x, n * sizeof *y0);
                    mx_fake_quantize(y0, y0, nr, kk, (enum fp8_format)f, (enum mx_scale_rounding)r, &f0);
                    for (int fp = 0; fp < 2; fp++) {
                        if (fp8_set_fast_path(PATHS[fp]) != 0) /* avx512, avx2 */
                            continue;
                        s1 = f1 = (struct fp8_stats){.n = 5, .amax = 2.0f, .signal = 0.1, .noise = 1e-7};
                        mx_quantize(q1, sc1, x, nr, kk, (enum fp8_format)f, (enum mx_scale_rounding)r, &s1);
                        memcpy(y1, x, n * sizeof *y1);
                        mx_fake_quantize(y1, y1, nr, kk, (enum fp8_format)f, (enum mx_scale_rounding)r, &f1);
                        const size_t nb = (kk + MX_BLOCK - 1) / MX_BLOCK;
                        cases++;
                        bad += memcmp(q0, q1, nr * kk) != 0 || memcmp(sc0, sc1, nr * nb) != 0;
                        bad += memcmp(y0, y1, nr * kk * sizeof *y0) != 0;
                        bad += !stats_equal(&s0, &s1) || !stats_equal(&f0, &f1);
                    }
                }
    }
    fp8_set_fast_path("auto");
    check(bad == 0, "mx: the avx512, avx2 and portable paths agree on codes, scales, fake quantized values and "
          "stats (NaN, inf, subnormal and zero blocks; stats continued) in %d cases (%d bad)", cases, bad);
    free(x);
    free(y0);
    free(y1);
    free(q0);
    free(q1);
}

/* MX layouts ([outer, len, inner], blocks along len at stride inner) against a straightforward
   loop: each block gathered, quantized as a row of its own (portable path), scattered back, its
   stats added in the layout's block order. Rows, columns (wider than a transposed chunk too) and
   channel blocks, partial blocks, NaN, inf, subnormal and zero blocks, both formats and
   roundings, every fast path; codes, scales, fake quantized values (in place), dequantized values
   and stats bit for bit. */
static void test_mx_layouts(void)
{
    const struct mx_layout layouts[] = {
        { 3, 77, 1 },  /* rows, a partial last block */
        { 2, 1000, 1 },/* rows of 32 blocks: groups of sixteen scales, eight blocks' sums */
        { 1, 70, 45 }, /* columns of [70, 45] */
        { 1, 40, 130 },/* columns wider than a transposed chunk */
        { 2, 37, 49 }, /* channel blocks: n 2, c 37, h w 7 x 7 */
        { 4, 5, 9 },   /* blocks of 5 */
        { 2, 32, 3 },  /* whole blocks only */
    };
    int bad = 0, cases = 0;
    for (size_t li = 0; li < sizeof layouts / sizeof layouts[0]; li++) {
        const struct mx_layout L = layouts[li];
        const size_t n = L.outer * L.len * L.inner, nb = (L.len + MX_BLOCK - 1) / MX_BLOCK;
        const size_t nblocks = L.outer * nb * L.inner;
        float *x = malloc(n * sizeof *x), *yr = malloc(n * sizeof *yr), *y = malloc(n * sizeof *y);
        float *d = malloc(n * sizeof *d);
        amp_fp8 *qr = malloc(n), *q = malloc(n);
        uint8_t *sr = malloc(nblocks), *sc = malloc(nblocks);
        if (!x || !yr || !y || !d || !qr || !q || !sr || !sc) {
            check(0, "out of memory");
            return;
        }
        for (int trial = 0; trial < 6; trial++) {
            for (size_t e = 0; e < n; e++) {
                const uint32_t u = random_input(UINT64_C(9) << 40 | (uint64_t)li << 32 |
                                                (uint64_t)trial << 24 | e);
                const size_t i = e % L.inner, l = e / L.inner % L.len;
                const size_t blk = (e / (L.inner * L.len) * nb + l / MX_BLOCK) * L.inner + i;
                /* per block: zeros, subnormals, random bits (NaN, inf), or normal values whose
                   magnitude depends on the block (so a wrong blocking changes the result) */
                const int kind = (int)((blk + (size_t)trial) % 6);
                x[e] = kind == 0   ? 0.0f
                       : kind == 1 ? f32_from_bits(u & 0x807FFFFFu)
                       : kind == 2 ? f32_from_bits(u)
                                   : ldexpf(1.0f + (float)(u & 0xFFFF) / 65536.0f,
                                            (int)(blk % 40) - 20) * ((u >> 31) ? -1.0f : 1.0f);
            }
            for (int f = 0; f < 2; f++)
                for (int r = 0; r < 2; r++) {
                    const enum fp8_format F = (enum fp8_format)f;
                    const enum mx_scale_rounding R = (enum mx_scale_rounding)r;
                    const struct fp8_stats init = {.n = 3, .amax = 0.5f, .signal = 0.25,
                                                   .noise = 1e-6};
                    struct fp8_stats ref = init, fref = init;
                    if (fp8_set_fast_path("portable") != 0)
                        continue;
                    for (size_t o = 0; o < L.outer; o++)
                        for (size_t b = 0; b < nb; b++)
                            for (size_t i = 0; i < L.inner; i++) {
                                float blk[MX_BLOCK], fb[MX_BLOCK];
                                amp_fp8 qb[MX_BLOCK];
                                uint8_t s1;
                                const size_t blen = L.len - b * MX_BLOCK < MX_BLOCK
                                                        ? L.len - b * MX_BLOCK : MX_BLOCK;
                                const size_t at = (o * L.len + b * MX_BLOCK) * L.inner + i;
                                for (size_t j = 0; j < blen; j++)
                                    blk[j] = x[at + j * L.inner];
                                mx_quantize(qb, &s1, blk, 1, blen, F, R, &ref);
                                mx_fake_quantize(fb, blk, 1, blen, F, R, &fref);
                                sr[(o * nb + b) * L.inner + i] = s1;
                                for (size_t j = 0; j < blen; j++) {
                                    qr[at + j * L.inner] = qb[j];
                                    yr[at + j * L.inner] = fb[j];
                                }
                            }
                    for (size_t p = 0; p < sizeof PATHS / sizeof PATHS[0]; p++) {
                        if (fp8_set_fast_path(PATHS[p]) != 0)
                            continue;
                        struct fp8_stats s = init, fs = init;
                        mx_quantize_layout(q, sc, x, L, F, R, &s);
                        memcpy(y, x, n * sizeof *y);
                        mx_fake_quantize_layout(y, y, L, F, R, &fs);
                        mx_dequantize_layout(d, q, sc, L, F);
                        cases++;
                        const int ok = memcmp(q, qr, n) == 0 && memcmp(sc, sr, nblocks) == 0 &&
                                       memcmp(y, yr, n * sizeof *y) == 0 &&
                                       memcmp(d, yr, n * sizeof *d) == 0 &&
                                       stats_equal(&s, &ref) && stats_equal(&fs, &fref);
                        if (!ok && bad++ < 5)
                            check(0, "mx layout {%zu, %zu, %zu} %s %s path %s: differs from the "
                                  "block-by-block loop", L.outer, L.len, L.inner,
                                  fp8_format_name(F), r ? "rceil" : "floor", PATHS[p]);
                    }
                }
        }
        fp8_set_fast_path("auto");
        free(x);
        free(yr);
        free(y);
        free(d);
        free(qr);
        free(q);
        free(sr);
        free(sc);
    }
    check(bad == 0 && cases > 0, "mx layouts (rows, columns, channel blocks; partial, NaN, inf, "
          "zero blocks; both roundings, every path) = the block-by-block loop in %d cases "
          "(%d bad)", cases, bad);
}

int main(void)
{
    test_constants();
    test_decode_all();
    test_structured();
    test_cuda_rules();
    test_mxcsr();
    test_stats_hand();
    test_paths_stats();
    test_saturated_noise();
    test_bf16_source();
    test_mx_bf16_source();
    test_bf16_amax();
    test_mxcsr_paths();
    test_e8m0();
    test_mx();
    test_mx_paths();
    test_mx_layouts();
    test_random();
    printf("fp8 fast path: %s\n", fp8_fast_path());
    return check_summary();
}
