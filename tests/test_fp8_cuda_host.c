/*
 * test_fp8_cuda_host.c - fp8_from_f32 (harness/core/fp8.c) against the CUDA
 * toolkit's own host conversion, __nv_cvt_float_to_fp8 in cuda_fp8.hpp
 * (plain C, no GPU and no CUDA library needed; built only where the
 * toolkit's headers are found), under the four conversions (E4M3, E5M2 x
 * __NV_SATFINITE, __NV_NOSAT).
 *
 * By default: the fixture's structured inputs, and 8,388,608 FP32 patterns
 * (every value of the top 20 bits, with 8 choices of the low 12 bits that
 * only the sticky bit of a rounding sees). With --all: every one of the
 * 2^32 FP32 patterns (minutes).
 *
 * Exit status 0 when every check passes; last line "N passed, N failed".
 */
#include "fp8.h"
#include "f32bits.h"

#include "check.h"
#include "fixtures/fp8_ml_dtypes.h"

#include <cuda_fp8.h>
#include <inttypes.h>
#include <string.h>

static uint64_t g_bad;

static void compare(uint32_t u)
{
    const float x = f32_from_bits(u);
    for (int k = 0; k < 4; k++) {
        const int e5 = k & 2, nosat = k & 1;
        const unsigned cuda = __nv_cvt_float_to_fp8(x, nosat ? __NV_NOSAT : __NV_SATFINITE,
                                                     e5 ? __NV_E5M2 : __NV_E4M3);
        const unsigned ours = fp8_from_f32(x, e5 ? FP8_E5M2 : FP8_E4M3, nosat ? FP8_NOSAT : FP8_SATFINITE);
        if (cuda != ours && g_bad++ < 10)
            check(0, "0x%08" PRIX32 " %s %s: cuda 0x%02X, fp8_from_f32 0x%02X", u, e5 ? "e5m2" : "e4m3",
                  nosat ? "nosat" : "satfinite", cuda, ours);
    }
}

int main(int argc, char **argv)
{
    const int all = argc > 1 && strcmp(argv[1], "--all") == 0;
    if (argc > 1 && !all) {
        fprintf(stderr, "test_fp8_cuda_host: unknown argument %s (the only one is --all)\n", argv[1]);
        return 2;
    }
    for (int i = 0; i < FP8FX_STRUCT_N; i++)
        compare(fp8fx_struct_in[i]);
    check(g_bad == 0, "%d structured inputs x 4 conversions as CUDA's host code", FP8FX_STRUCT_N);
    uint64_t n = 0;
    if (all) {
        for (uint64_t b = 0; b < (UINT64_C(1) << 32); b++, n++)
            compare((uint32_t)b);
    } else {
        static const uint32_t lows[8] = {0x000, 0x001, 0x3FF, 0x400, 0x7FF, 0x800, 0x801, 0xFFF};
        for (uint32_t hi = 0; hi < (1u << 20); hi++)
            for (int l = 0; l < 8; l++, n++)
                compare(hi << 12 | lows[l]);
    }
    check(g_bad == 0, "%" PRIu64 " FP32 patterns x 4 conversions as CUDA's host code (%" PRIu64 " differ)", n, g_bad);
    return check_summary();
}
