/* The end-to-end throughput bench: a sweep over nets x recipes x batch sizes x channel counts
 * (a net that leaves no width to --channels is run once per recipe and batch); per cell,
 * warm-up steps excluded, repeated timed windows of training steps, samples/s (median, min,
 * max), step latency percentiles, peak bytes by category, achieved GFLOP/s and its fraction of
 * the machine's peak. The recipes of one (net, batch, channels) group run their windows in
 * turn, so that their ratios are paired window by window. */
#ifndef AMPBENCH_BENCH_H
#define AMPBENCH_BENCH_H

#include "config.h"
#include "idx.h"

#define BENCH_MAX_SIZES 8
#define BENCH_MAX_NETS 16
#define BENCH_MAX_WINDOWS 32

struct bench_options {
    const struct net_preset *nets[BENCH_MAX_NETS]; /* --nets (default: the run's --net) */
    size_t nnets;
    uint32_t batches[BENCH_MAX_SIZES];
    size_t nbatches;
    uint32_t channels[BENCH_MAX_SIZES];
    size_t nchannels;
    uint32_t warmup_steps;   /* untimed steps per cell */
    uint32_t windows;        /* timed windows per cell */
    double window_s;         /* target seconds per window */
    const char *micro;       /* the micro_ops binary to run as well (--micro PATH), or NULL */
};

struct bench_cell {
    const struct net_preset *net;
    const struct recipe *recipe;
    uint32_t batch;
    uint32_t channels;                     /* 0: the net leaves no width to --channels */
    int threads;                           /* the backend's threads (backend_ops.threads) */
    double flops_per_sample;               /* multiply-add FLOPs per training sample
                                            * (model_totals, from the layer table) */
    uint32_t nwindows;                     /* timed windows */
    double window_sps[BENCH_MAX_WINDOWS];  /* samples/s of each window, in the order run */
    double window_cpu_sps[BENCH_MAX_WINDOWS]; /* the same per CPU-second (cpu_sps_median) */
    double window_start_s[BENCH_MAX_WINDOWS]; /* when each began: seconds since the group's
                                               * first timed window began */
    double sps_median, sps_min, sps_max;   /* samples/s over the windows */
    double cpu_sps_median;                 /* samples per CPU-second of the process (all its
                                            * threads; cpu_s), median over the windows: what a
                                            * shared machine's steal does not move */
    double step_p50_ms, step_p95_ms;       /* per-step latency */
    uint64_t steps;                        /* timed steps */
    double gflops;                         /* achieved, at the median */
    double peak_fraction;                  /* of the machine's peak FP32 FLOP/s */
    double fma_fraction;                   /* of the measured multiply-add rate (bench_fma_rate;
                                            * 0: not measured) */
    struct mem_stats mem;
    double speedup;                        /* samples/s over fp32's at the same batch and channels:
                                            * the median over the windows of this window's
                                            * samples/s over fp32's same window (paired) */
    double cpu_speedup;                    /* the same per CPU-second */
    double memory_saving;                  /* 1 - peak bytes / fp32's */
};

/* The nominal peak FLOP/s of the device the bench runs on: on the CPU, cores x vector lanes x 2
 * (FMA) x FMA units x clock; on a GPU, from the device's properties (FP32, with the FP16 tensor
 * peak in `how`). `how` describes the estimate. */
double bench_peak_flops(const struct amp_config *c, int default_threads, char *how, size_t len);
/* What the device really reaches: on the CPU, the FP32 multiply-add rate the bench's threads
 * measure (fma_rate_measure, about `seconds`), which a turbo clock puts above the nominal peak
 * and a busy host or a part with fewer FMA units than assumed below it; 0 on other devices
 * (`how` says so). */
double bench_fma_rate(const struct amp_config *c, int default_threads, double seconds,
                      char *how, size_t len);
/* 1 when a layer of `net` takes its width from --channels (WIDTH_CHANNELS): the bench sweeps
 * --channels only for such nets. */
int bench_net_takes_channels(const struct net_preset *net);
/* Runs the cells of one group: `net` at `batch` and `channels` (0: the net takes none) under
 * each of c's recipes, into out[0 .. c->nrecipes): every recipe's model opened and warmed up
 * (all of them resident at once), then the timed windows round-robin (window w of every recipe
 * before window w + 1 of any). stop (may be NULL) is asked before each round: when it returns
 * non-zero the group is dropped and AMP_EINTR returned. */
int bench_group_run(const struct amp_config *c, const struct bench_options *o,
                    const struct net_preset *net, uint32_t batch, uint32_t channels,
                    const struct dataset *train, double peak_flops, int (*stop)(void),
                    struct bench_cell *out);
/* The median over n windows of a[w] / b[w] (0 where b[w] is not positive). */
double bench_paired_ratio(const double *a, const double *b, size_t n);

#endif
