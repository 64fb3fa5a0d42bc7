/* The host CPU's measured FP32 multiply-add rate (fma_rate.h). Each thread runs CHAINS
 * independent chains a = a * b + c in GCC vectors of 16 and of 8 floats (more chains than an FMA
 * unit's latency times the units of any x86 core, so the units, not the latency, bind), built
 * with the project's flags (-ffp-contract=fast: FMAs where the target has them). The values
 * converge to c / (1 - b), far from subnormals and infinities. */
#include "fma_rate.h"

#include <omp.h>
#include <stdio.h>

#include "clock.h"

enum { CHAINS = 10 };

typedef float v16 __attribute__((vector_size(16 * sizeof(float))));
typedef float v8 __attribute__((vector_size(8 * sizeof(float))));

/* Keeps the rounds' results alive, so that the chains are not optimised away. */
static volatile float g_sink;

/* The sum of the chains' first lanes after `iters` steps of each. */
#define CHAIN_LOOP(V, iters)                                                                    \
    do {                                                                                        \
        V a[CHAINS];                                                                            \
        for (int i = 0; i < CHAINS; i++)                                                        \
            a[i] = (V){ 0 } + (1.0f + 1e-3f * (float)i);                                        \
        const V b = (V){ 0 } + 0.999999f, c = (V){ 0 } + 1e-7f;                                \
        for (long n = 0; n < (iters); n++) {                                                    \
            _Pragma("GCC unroll 10") for (int i = 0; i < CHAINS; i++) a[i] = a[i] * b + c;      \
        }                                                                                       \
        V s = a[0];                                                                             \
        for (int i = 1; i < CHAINS; i++)                                                        \
            s += a[i];                                                                          \
        return s[0];                                                                            \
    } while (0)

static float chains16(long iters)
{
    CHAIN_LOOP(v16, iters);
}

static float chains8(long iters)
{
    CHAIN_LOOP(v8, iters);
}

/* FLOP/s of one round: `threads` threads, each `iters` iterations of `lanes`-float chains. */
static double round_rate(int threads, int lanes, long iters, double *took)
{
    const double t0 = now_s();
    float sink = 0.0f;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += lanes == 16 ? chains16(iters) : chains8(iters);
    *took = now_s() - t0;
    g_sink = sink;
    const double flops = (double)threads * (double)iters * CHAINS * lanes * 2.0;
    return *took > 0.0 ? flops / *took : 0.0;
}

/* The best rate of rounds of about 10 ms over `budget` seconds, for one width. */
static double best_rate(int threads, int lanes, double budget, int *rounds)
{
    long iters = 1L << 12;
    double took = 0.0, best = 0.0;
    round_rate(threads, lanes, iters, &took); /* (the threads start: not a round to time) */
    while (round_rate(threads, lanes, iters, &took) > 0.0 && took < 0.01 && iters < (1L << 40))
        iters *= 2;
    const double t0 = now_s();
    *rounds = 0;
    do {
        const double r = round_rate(threads, lanes, iters, &took);
        best = r > best ? r : best;
        ++*rounds;
    } while (now_s() - t0 < budget);
    return best;
}

double fma_rate_measure(int threads, double seconds, char *how, size_t len)
{
    if (threads < 1 || !(seconds > 0.0)) {
        snprintf(how, len, "not measured");
        return 0.0;
    }
    int r16 = 0, r8 = 0;
    const double f16 = best_rate(threads, 16, seconds / 2, &r16);
    const double f8 = best_rate(threads, 8, seconds / 2, &r8);
    const double best = f16 > f8 ? f16 : f8;
    snprintf(how, len,
             "measured: %d thread%s x %d independent a*b+c chains, %.0f GFLOP/s in vectors of 16 "
             "floats, %.0f in vectors of 8 (best of %d and %d rounds)",
             threads, threads == 1 ? "" : "s", CHAINS, f16 / 1e9, f8 / 1e9, r16, r8);
    return best;
}
