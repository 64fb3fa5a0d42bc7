/* The end-to-end throughput bench: one cell = one net under one recipe at one batch size and
 * channel count, trained on real data with warm-up steps excluded and timed windows; the cells
 * of one (net, batch, channels) group, one per recipe, take turns window by window. */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "fma_rate.h"
#include "model.h"
#include "nvtx.h"
#include "registry.h"
#include "train.h"

double bench_peak_flops(const struct amp_config *c, int default_threads, char *how, size_t len)
{
    const struct backend_ops *ops = backend_named(backend_resolve(c->device));
    if (!ops || !ops->peak_flops) {
        snprintf(how, len, "no estimate for --device %s", c->device);
        return 0.0;
    }
    return ops->peak_flops(c->threads ? c->threads : default_threads, NULL, how, len);
}

double bench_fma_rate(const struct amp_config *c, int default_threads, double seconds,
                      char *how, size_t len)
{
    const char *device = backend_resolve(c->device);
    if (strcmp(device, "cpu") != 0) {
        snprintf(how, len, "not measured on --device %s", device);
        return 0.0;
    }
    return fma_rate_measure(c->threads ? c->threads : default_threads, seconds, how, len);
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double *sorted, size_t n, double q)
{
    const size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

int bench_net_takes_channels(const struct net_preset *net)
{
    for (size_t i = 0; i < net->nlayers; i++)
        if ((net->layers[i].kind == LAYER_CONV || net->layers[i].kind == LAYER_LINEAR) &&
            net->layers[i].width == WIDTH_CHANNELS)
            return 1;
    return 0;
}

/* A cell in progress: its model open and warmed up, its timed windows run one at a time. */
struct live_cell {
    struct backend be;
    struct model *model;
    struct model_data data;
    uint32_t *idx;
    double *lat; /* every timed step's seconds */
    size_t nlat, cap;
    size_t next; /* the next training sample, cycling through the set */
    uint32_t steps_per_window;
    double flops; /* per training sample */
    int open;
};

/* steps training steps of cell l (timed into its latencies unless warm-up), the wall and CPU
 * seconds they took in *wall and *cpu. */
static int cell_steps(struct live_cell *l, const struct amp_config *c,
                      const struct dataset *train, uint32_t batch, uint32_t steps, int timed,
                      double *wall, double *cpu)
{
    int rc = AMP_OK;
    const double t0 = now_s(), c0 = cpu_s();
    for (uint32_t s = 0; s < steps && rc == AMP_OK; s++) {
        for (uint32_t i = 0; i < batch; i++, l->next = (l->next + 1) % train->n)
            l->idx[i] = (uint32_t)l->next;
        const double s0 = now_s();
        nvtx_push("step");
        struct step_result sr;
        rc = model_gather_batch(l->model, &l->data, l->idx, batch);
        if (rc == AMP_OK)
            rc = model_train_step(l->model, batch, c->lr, c->momentum, &sr);
        nvtx_pop();
        const double dt = now_s() - s0;
        if (!timed || rc != AMP_OK)
            continue;
        if (l->nlat == l->cap) {
            double *grown = realloc(l->lat, 2 * l->cap * sizeof *l->lat);
            if (!grown)
                return amp_fail(AMP_ENOMEM, "out of host memory for the bench");
            l->lat = grown;
            l->cap *= 2;
        }
        l->lat[l->nlat++] = dt;
    }
    *cpu = cpu_s() - c0; /* (then the wall clock: the CPU seconds lie within the wall's) */
    *wall = now_s() - t0;
    return rc;
}

/* Opens cell x (its net, recipe, batch and channels set) into l: the model, the training set
 * on the backend once (each batch gathered there from its indices: the training loop's data
 * path, train.c, so a step costs what it costs in a run), and the warm-up steps, which also
 * size its timed windows to about window_s. */
static int cell_open(struct live_cell *l, const struct amp_config *c,
                     const struct bench_options *o, const struct dataset *train,
                     struct bench_cell *x)
{
    memset(l, 0, sizeof *l);
    struct amp_config cell = *c;
    cell.net = x->net;
    if (x->channels)
        cell.channels = x->channels;
    const struct model_shape shape = train_model_shape(&cell, train, x->batch);
    const struct precision_plan plan = train_plan_of(c, x->recipe);
    struct net_totals totals;
    int rc = model_totals(x->net, &shape, &plan, &totals);
    if (rc == AMP_OK)
        rc = train_open_model(&cell, x->recipe, &plan, &shape, &l->be, &l->model);
    if (rc != AMP_OK)
        return rc;
    l->open = 1;
    x->threads = l->be.threads;
    x->flops_per_sample = l->flops = totals.flops;
    l->cap = 4096;
    l->idx = malloc((size_t)x->batch * sizeof *l->idx);
    l->lat = malloc(l->cap * sizeof *l->lat);
    if (!l->idx || !l->lat)
        return amp_fail(AMP_ENOMEM, "out of host memory for the bench");
    rc = model_data_upload(l->model, &l->data, train->pixels, train->labels, train->n);
    double wall = 0.0, cpu = 0.0;
    if (rc == AMP_OK)
        rc = cell_steps(l, c, train, x->batch, o->warmup_steps, 0, &wall, &cpu);
    const double per_step = wall / (o->warmup_steps ? o->warmup_steps : 1);
    l->steps_per_window = (uint32_t)fmax(3.0, ceil(o->window_s / fmax(per_step, 1e-6)));
    return rc;
}

/* Timed window w of cell x (origin: when the group's first window began, now_s). */
static int cell_window(struct live_cell *l, const struct amp_config *c,
                       const struct dataset *train, struct bench_cell *x, uint32_t w,
                       double origin)
{
    double wall, cpu;
    x->window_start_s[w] = now_s() - origin;
    const int rc = cell_steps(l, c, train, x->batch, l->steps_per_window, 1, &wall, &cpu);
    if (rc == AMP_OK) {
        x->window_sps[w] = (double)l->steps_per_window * x->batch / wall;
        x->window_cpu_sps[w] = (double)l->steps_per_window * x->batch / fmax(cpu, 1e-9);
        x->steps += l->steps_per_window;
    }
    return rc;
}

static double median_of(const double *v, size_t n)
{
    double sorted[BENCH_MAX_WINDOWS];
    memcpy(sorted, v, n * sizeof *v);
    qsort(sorted, n, sizeof *sorted, cmp_double);
    return percentile(sorted, n, 0.5);
}

/* Cell x's figures from its windows and latencies (finished: all windows ran), and l closed. */
static void cell_close(struct live_cell *l, struct bench_cell *x, double peak_flops,
                       int finished)
{
    if (finished) {
        const size_t nw = x->nwindows;
        double sorted[BENCH_MAX_WINDOWS];
        memcpy(sorted, x->window_sps, nw * sizeof *sorted);
        qsort(sorted, nw, sizeof *sorted, cmp_double);
        x->sps_min = sorted[0];
        x->sps_max = sorted[nw - 1];
        x->sps_median = percentile(sorted, nw, 0.5);
        x->cpu_sps_median = median_of(x->window_cpu_sps, nw);
        qsort(l->lat, l->nlat, sizeof *l->lat, cmp_double);
        x->step_p50_ms = 1e3 * percentile(l->lat, l->nlat, 0.5);
        x->step_p95_ms = 1e3 * percentile(l->lat, l->nlat, 0.95);
        x->gflops = x->sps_median * l->flops / 1e9;
        x->peak_fraction = peak_flops > 0 ? x->gflops * 1e9 / peak_flops : 0.0;
        x->mem = l->be.mem;
    }
    if (l->open) {
        model_data_free(l->model, &l->data);
        train_close_model(&l->be, &l->model);
    }
    free(l->idx);
    free(l->lat);
    memset(l, 0, sizeof *l);
}

int bench_group_run(const struct amp_config *c, const struct bench_options *o,
                    const struct net_preset *net, uint32_t batch, uint32_t channels,
                    const struct dataset *train, double peak_flops, int (*stop)(void),
                    struct bench_cell *out)
{
    if (o->windows < 1 || o->windows > BENCH_MAX_WINDOWS)
        return amp_fail(AMP_EINPUT, "bench: %u timed windows (1 to %d)", o->windows,
                        BENCH_MAX_WINDOWS);
    const size_t n = c->nrecipes;
    struct live_cell *live = calloc(n ? n : 1, sizeof *live);
    if (!live)
        return amp_fail(AMP_ENOMEM, "out of host memory for the bench");
    int rc = AMP_OK;
    size_t opened = 0;
    for (; opened < n && rc == AMP_OK; opened++) {
        struct bench_cell *x = &out[opened];
        memset(x, 0, sizeof *x);
        x->net = net;
        x->recipe = c->recipes[opened];
        x->batch = batch;
        x->channels = channels;
        x->nwindows = o->windows;
        rc = cell_open(&live[opened], c, o, train, x);
    }
    /* Round-robin: window w of every recipe before window w + 1 of any, so that a change in
     * the machine's load (other tenants) lands on all of them alike. */
    int stopped = 0;
    const double origin = now_s();
    for (uint32_t w = 0; w < o->windows && rc == AMP_OK; w++) {
        if (stop && stop()) { /* (asked before each round: a group that finished stays) */
            stopped = 1;
            break;
        }
        for (size_t m = 0; m < n && rc == AMP_OK; m++)
            rc = cell_window(&live[m], c, train, &out[m], w, origin);
    }
    for (size_t m = 0; m < opened; m++)
        cell_close(&live[m], &out[m], peak_flops, rc == AMP_OK && !stopped);
    free(live);
    return rc != AMP_OK ? rc : stopped ? AMP_EINTR : AMP_OK;
}

double bench_paired_ratio(const double *a, const double *b, size_t n)
{
    double r[BENCH_MAX_WINDOWS];
    for (size_t w = 0; w < n; w++)
        r[w] = b[w] > 0 ? a[w] / b[w] : 0.0;
    return n ? median_of(r, n) : 0.0;
}
