/* The end-to-end throughput bench: one cell = one net under one recipe at one batch size and
 * channel count,
 * trained on real data with warm-up steps excluded and timed windows. */
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

int bench_cell_run(const struct amp_config *c, const struct bench_options *o,
                   const struct net_preset *net, const struct recipe *r, uint32_t batch,
                   uint32_t channels, const struct dataset *train, double peak_flops,
                   struct bench_cell *out)
{
    memset(out, 0, sizeof *out);
    out->net = net;
    out->recipe = r;
    out->batch = batch;
    out->channels = channels;
    struct backend be;
    struct model *model;
    struct amp_config cell = *c;
    cell.net = net;
    if (channels)
        cell.channels = channels;
    const struct model_shape shape = train_model_shape(&cell, train, batch);
    const struct precision_plan plan = train_plan_of(c, r);
    struct net_totals totals;
    int rc = model_totals(net, &shape, &plan, &totals);
    if (rc == AMP_OK)
        rc = train_open_model(&cell, r, &plan, &shape, &be, &model);
    if (rc != AMP_OK)
        return rc;
    out->threads = be.threads;
    out->flops_per_sample = totals.flops;
    /* The training set on the backend once, each batch gathered there from its indices: the
     * training loop's data path (train.c), so a step costs what it costs in a run. */
    struct model_data data = { 0 };
    uint32_t *idx = malloc((size_t)batch * sizeof *idx);
    size_t cap = 4096, nlat = 0;
    double *lat = malloc(cap * sizeof *lat), *sps = calloc(o->windows, sizeof *sps);
    double *cpu_sps = calloc(o->windows, sizeof *cpu_sps);
    if (rc == AMP_OK && (!idx || !lat || !sps || !cpu_sps))
        rc = amp_fail(AMP_ENOMEM, "out of host memory for the bench");
    if (rc == AMP_OK)
        rc = model_data_upload(model, &data, train->pixels, train->labels, train->n);
    size_t next = 0; /* the next training sample, cycling through the set */
    uint32_t steps_per_window = 0;
    for (uint32_t w = 0; rc == AMP_OK && w <= o->windows; w++) {
        /* Window 0 is the warm-up; it also sizes the timed windows to about window_s. */
        const uint32_t steps = w == 0 ? o->warmup_steps : steps_per_window;
        const double t0 = now_s(), c0 = cpu_s();
        for (uint32_t s = 0; s < steps && rc == AMP_OK; s++) {
            for (uint32_t i = 0; i < batch; i++, next = (next + 1) % train->n)
                idx[i] = (uint32_t)next;
            const double s0 = now_s();
            nvtx_push("step");
            struct step_result sr;
            rc = model_gather_batch(model, &data, idx, batch);
            if (rc == AMP_OK)
                rc = model_train_step(model, batch, c->lr, c->momentum, &sr);
            nvtx_pop();
            const double dt = now_s() - s0;
            if (w == 0)
                continue;
            if (nlat == cap) {
                double *grown = realloc(lat, 2 * cap * sizeof *lat);
                if (!grown) {
                    rc = amp_fail(AMP_ENOMEM, "out of host memory for the bench");
                    break;
                }
                lat = grown;
                cap *= 2;
            }
            lat[nlat++] = dt;
        }
        const double elapsed = now_s() - t0, cpu_elapsed = cpu_s() - c0;
        if (w == 0) {
            const double per_step = elapsed / (o->warmup_steps ? o->warmup_steps : 1);
            steps_per_window = (uint32_t)fmax(3.0, ceil(o->window_s / fmax(per_step, 1e-6)));
        } else {
            sps[w - 1] = (double)steps * batch / elapsed;
            cpu_sps[w - 1] = (double)steps * batch / fmax(cpu_elapsed, 1e-9);
            out->steps += steps;
        }
    }
    if (rc == AMP_OK) {
        qsort(sps, o->windows, sizeof *sps, cmp_double);
        out->sps_min = sps[0];
        out->sps_max = sps[o->windows - 1];
        out->sps_median = percentile(sps, o->windows, 0.5);
        qsort(cpu_sps, o->windows, sizeof *cpu_sps, cmp_double);
        out->cpu_sps_median = percentile(cpu_sps, o->windows, 0.5);
        qsort(lat, nlat, sizeof *lat, cmp_double);
        out->step_p50_ms = 1e3 * percentile(lat, nlat, 0.5);
        out->step_p95_ms = 1e3 * percentile(lat, nlat, 0.95);
        out->gflops = out->sps_median * totals.flops / 1e9;
        out->peak_fraction = peak_flops > 0 ? out->gflops * 1e9 / peak_flops : 0.0;
        out->mem = be.mem;
    }
    model_data_free(model, &data);
    free(idx);
    free(lat);
    free(sps);
    free(cpu_sps);
    train_close_model(&be, &model);
    return rc;
}
