/* The bench's outputs: bench.json (cJSON), bench.csv and report.md of the sweep, the terminal
 * table rows, the plots' line files and the micro-benchmarks' report section. */
#include "bench_report.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "files.h"
#include "jsonfile.h"
#include "results.h"

static const char *const kind_names[NLAYER_KINDS] = {
    [LAYER_CONV] = "conv",         [LAYER_RELU] = "relu",       [LAYER_LINEAR] = "linear",
    [LAYER_MAXPOOL] = "maxpool",   [LAYER_AVGPOOL] = "avgpool", [LAYER_BATCHNORM] = "batchnorm",
    [LAYER_ADD] = "add",           [LAYER_SOFTMAX_XENT] = "softmax_xent",
};
_Static_assert(NLAYER_KINDS == 8, "a new layer kind needs its name in the exported table");

cJSON *bench_net_table(const struct net_preset *net, const struct model_shape *shape)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "name", net->name);
    const int in[3] = { (int)shape->c_in, (int)shape->h, (int)shape->w };
    cJSON_AddItemToObject(t, "input", cJSON_CreateIntArray(in, 3));
    cJSON_AddNumberToObject(t, "classes", shape->classes);
    if (bench_net_takes_channels(net))
        cJSON_AddNumberToObject(t, "channels", shape->channels);
    else
        cJSON_AddNullToObject(t, "channels");
    cJSON *layers = cJSON_AddArrayToObject(t, "layers");
    for (size_t i = 0; i < net->nlayers; i++) {
        const struct layer_spec *s = &net->layers[i];
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "kind", kind_names[s->kind] ? kind_names[s->kind] : "?");
        cJSON_AddStringToObject(l, "name", s->name);
        const char *input = s->input ? s->input : i ? net->layers[i - 1].name : NULL;
        if (input)
            cJSON_AddStringToObject(l, "input", input);
        else
            cJSON_AddNullToObject(l, "input");
        if (s->kind == LAYER_CONV || s->kind == LAYER_LINEAR) {
            const uint32_t width = s->width == WIDTH_CHANNELS  ? shape->channels
                                   : s->width == WIDTH_CLASSES ? shape->classes
                                                               : s->width;
            cJSON_AddNumberToObject(l, "width", width);
            if (s->kind == LAYER_CONV) {
                cJSON_AddNumberToObject(l, "kernel", s->kernel);
                cJSON_AddNumberToObject(l, "stride", s->stride);
                cJSON_AddNumberToObject(l, "pad", s->pad);
            }
            cJSON_AddBoolToObject(l, "bias", !s->no_bias);
            cJSON_AddStringToObject(l, "init", s->init == INIT_HE ? "he" : "default");
        }
        if (s->kind == LAYER_ADD)
            cJSON_AddStringToObject(l, "skip", s->skip);
        cJSON_AddItemToArray(layers, l);
    }
    return t;
}

/* The PyTorch cell comparable to an ampbench recipe on this device: bf16 autocast for bf16,
 * FP32 eager for the rest (PyTorch has no FP16 autocast on the CPU). */
double bench_torch_sps(const cJSON *torch, const struct bench_cell *cell)
{
    const char *want = strcmp(cell->recipe->name, "bf16") == 0 ? "bf16" : "fp32";
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(torch, "cells"))
    {
        const cJSON *sps = cJSON_GetObjectItemCaseSensitive(item, "samples_per_s");
        const cJSON *recipe = cJSON_GetObjectItemCaseSensitive(item, "recipe");
        const cJSON *net = cJSON_GetObjectItemCaseSensitive(item, "net");
        const cJSON *batch = cJSON_GetObjectItemCaseSensitive(item, "batch");
        const cJSON *channels = cJSON_GetObjectItemCaseSensitive(item, "channels");
        if (cJSON_IsString(recipe) && strcmp(recipe->valuestring, want) == 0 &&
            cJSON_IsString(net) && strcmp(net->valuestring, cell->net->name) == 0 &&
            cJSON_IsNumber(batch) && batch->valuedouble == cell->batch &&
            (cell->channels ? cJSON_IsNumber(channels) && channels->valuedouble == cell->channels
                            : cJSON_IsNull(channels)) &&
            cJSON_IsNumber(sps))
            return sps->valuedouble;
    }
    return 0.0;
}

/* The channel count as the tables print it: "-" for a net that takes none. */
static const char *channels_text(const struct bench_cell *x, char *buf, size_t len)
{
    if (x->channels)
        snprintf(buf, len, "%u", x->channels);
    else
        snprintf(buf, len, "-");
    return buf;
}

void bench_print_row(FILE *f, const struct bench_cell *x, double torch, int markdown)
{
    char ratio[32] = "-", chan[16], fma[16] = "-";
    channels_text(x, chan, sizeof chan);
    if (torch > 0)
        snprintf(ratio, sizeof ratio, "%.1fx", x->sps_median / torch);
    if (x->fma_fraction > 0)
        snprintf(fma, sizeof fma, "%.1f%%", 100 * x->fma_fraction);
    if (markdown)
        fprintf(f, "| %s | %s | %u | %s | %.0f (%.0f-%.0f) | %.2f / %.2f | %.1f (%.1f%%; %s) | "
                   "%.2f MB | %.2fx | %.2fx | %+.0f%% | %s |\n",
                x->net->name, x->recipe->name, x->batch, chan, x->sps_median, x->sps_min,
                x->sps_max, x->step_p50_ms, x->step_p95_ms, x->gflops, 100 * x->peak_fraction,
                fma, x->mem.peak_total / 1e6, x->speedup, x->cpu_speedup,
                x->memory_saving == 0.0 ? 0.0 : -100 * x->memory_saving, ratio);
    else
        fprintf(f, "  %-8s %-12s %6u %5s %10.0f %8.0f %8.0f %8.2f %8.2f %8.1f %6.1f%% %6s %9.2f "
                   "%7.2fx %6.2fx %6.0f%% %8s\n",
                x->net->name, x->recipe->name, x->batch, chan, x->sps_median, x->sps_min,
                x->sps_max, x->step_p50_ms, x->step_p95_ms, x->gflops, 100 * x->peak_fraction,
                fma, x->mem.peak_total / 1e6, x->speedup, x->cpu_speedup,
                100 * x->memory_saving, ratio);
}

static cJSON *cell_json(const struct bench_cell *x, double torch)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "net", x->net->name);
    cJSON_AddStringToObject(o, "mode", x->recipe->name);
    cJSON_AddNumberToObject(o, "batch", x->batch);
    if (x->channels)
        cJSON_AddNumberToObject(o, "channels", x->channels);
    else
        cJSON_AddNullToObject(o, "channels");
    cJSON_AddNumberToObject(o, "threads", x->threads);
    cJSON_AddNumberToObject(o, "flops_per_sample", x->flops_per_sample);
    cJSON_AddNumberToObject(o, "samples_per_s_median", x->sps_median);
    cJSON_AddNumberToObject(o, "samples_per_s_min", x->sps_min);
    cJSON_AddNumberToObject(o, "samples_per_s_max", x->sps_max);
    cJSON_AddNumberToObject(o, "samples_per_cpu_s_median", x->cpu_sps_median);
    cJSON_AddNumberToObject(o, "step_ms_p50", x->step_p50_ms);
    cJSON_AddNumberToObject(o, "step_ms_p95", x->step_p95_ms);
    cJSON_AddNumberToObject(o, "timed_steps", (double)x->steps);
    cJSON_AddNumberToObject(o, "gflops", x->gflops);
    cJSON_AddNumberToObject(o, "peak_fraction", x->peak_fraction);
    if (x->fma_fraction > 0)
        cJSON_AddNumberToObject(o, "fma_fraction", x->fma_fraction);
    else
        cJSON_AddNullToObject(o, "fma_fraction");
    cJSON_AddNumberToObject(o, "speedup_vs_fp32", x->speedup);
    cJSON_AddNumberToObject(o, "speedup_vs_fp32_cpu_time", x->cpu_speedup);
    cJSON_AddNumberToObject(o, "memory_saving_vs_fp32", x->memory_saving);
    cJSON_AddItemToObject(o, "memory", results_memory_json(&x->mem));
    /* The timed windows in the order run (the group's recipes took turns: start_s interleaves) */
    cJSON *windows = cJSON_AddArrayToObject(o, "windows");
    for (uint32_t w = 0; w < x->nwindows; w++) {
        cJSON *win = cJSON_CreateObject();
        cJSON_AddNumberToObject(win, "start_s", x->window_start_s[w]);
        cJSON_AddNumberToObject(win, "samples_per_s", x->window_sps[w]);
        cJSON_AddNumberToObject(win, "samples_per_cpu_s", x->window_cpu_sps[w]);
        cJSON_AddItemToArray(windows, win);
    }
    if (torch > 0) {
        cJSON_AddNumberToObject(o, "torch_samples_per_s", torch);
        cJSON_AddNumberToObject(o, "ratio_vs_torch", x->sps_median / torch);
    }
    return o;
}

/* PyTorch's thread count in its result, or -1. */
static int torch_threads(const cJSON *torch)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(torch, "threads");
    return cJSON_IsNumber(t) ? t->valueint : -1;
}

int bench_write_outputs(const char *dir, const struct amp_config *c, const struct host_info *h,
                        const struct bench_cell *cells, size_t n, const cJSON *torch,
                        const char *torch_why, const char *peak_how, const char *fma_how,
                        const char *micro_md)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "tool", "ampbench-bench");
    cJSON_AddStringToObject(root, "device", c->device);
    cJSON_AddStringToObject(root, "cpu_model", h->cpu_model);
    cJSON_AddStringToObject(root, "git_revision", h->git_revision);
    cJSON_AddStringToObject(root, "peak", peak_how);
    cJSON_AddStringToObject(root, "fma_rate", fma_how);
    cJSON *nets = cJSON_AddArrayToObject(root, "nets");
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i; j++)
            seen |= cells[j].net == cells[i].net;
        if (!seen)
            cJSON_AddItemToArray(nets, cJSON_CreateString(cells[i].net->name));
    }
    /* The threads each side really ran on: the backend's count, and what PyTorch reported
     * after torch.set_num_threads of that count. */
    const int amp_threads = n ? cells[0].threads : 0, t_threads = torch ? torch_threads(torch) : -1;
    cJSON *threads = cJSON_AddObjectToObject(root, "threads");
    cJSON_AddNumberToObject(threads, "ampbench", amp_threads);
    if (t_threads >= 0)
        cJSON_AddNumberToObject(threads, "torch", t_threads);
    else
        cJSON_AddNullToObject(threads, "torch");
    if (torch)
        cJSON_AddItemToObject(root, "torch", cJSON_Duplicate(torch, 1));
    else
        cJSON_AddStringToObject(root, "torch", torch_why);
    cJSON *arr = cJSON_AddArrayToObject(root, "cells");
    char *csv = NULL, *md = NULL;
    size_t csv_len = 0, md_len = 0;
    FILE *fc = open_memstream(&csv, &csv_len), *fm = open_memstream(&md, &md_len);
    if (!fc || !fm) {
        cJSON_Delete(root);
        return amp_fail(AMP_ENOMEM, "out of memory formatting the bench");
    }
    /* (The plots read the mode and the channels by position: new columns go at the end.) */
    fprintf(fc, "mode,batch,channels,samples_per_s,samples_per_s_min,samples_per_s_max,step_ms_p50,"
                "step_ms_p95,gflops,peak_fraction,peak_bytes,speedup_vs_fp32,memory_saving_vs_fp32,"
                "torch_samples_per_s,net,threads,flops_per_sample,samples_per_cpu_s,"
                "speedup_vs_fp32_cpu_time,fma_fraction\n");
    fprintf(fm, "# ampbench bench\n\nCPU: %s; git %s; device %s; peak: %s; FMA rate: %s.\n\n",
            h->cpu_model, h->git_revision, c->device, peak_how, fma_how);
    if (torch && t_threads >= 0)
        fprintf(fm, "Threads: ampbench %d (the backend's), PyTorch %d (torch.set_num_threads).\n\n",
                amp_threads, t_threads);
    else
        fprintf(fm, "Threads: ampbench %d (the backend's).\n\n", amp_threads);
    fprintf(fm, "| net | mode | batch | channels | samples/s median (min-max) | step ms p50 / p95 | "
                "GFLOP/s (of peak; of the FMA rate) | peak memory | speedup vs fp32 | in CPU time | memory vs fp32 | "
                "vs PyTorch |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++) {
        const double t = torch ? bench_torch_sps(torch, &cells[i]) : 0.0;
        cJSON_AddItemToArray(arr, cell_json(&cells[i], t));
        const struct bench_cell *x = &cells[i];
        char chan[16];
        fprintf(fc, "%s,%u,%s,%.2f,%.2f,%.2f,%.4f,%.4f,%.3f,%.5f,%zu,%.4f,%.4f,%.2f,%s,%d,%.0f,"
                    "%.2f,%.4f,%.5f\n",
                x->recipe->name, x->batch, channels_text(x, chan, sizeof chan), x->sps_median,
                x->sps_min, x->sps_max, x->step_p50_ms, x->step_p95_ms, x->gflops,
                x->peak_fraction, x->mem.peak_total, x->speedup, x->memory_saving, t,
                x->net->name, x->threads, x->flops_per_sample, x->cpu_sps_median,
                x->cpu_speedup, x->fma_fraction);
        bench_print_row(fm, x, t, 1);
    }
    fprintf(fm, "\nPyTorch: %s\n", torch ? "eager mode, the same network (built from ampbench's "
                                           "layer table), batch, device and thread count "
                                           "(bf16 autocast for bf16, FP32 for the other recipes: "
                                           "PyTorch has no FP16 autocast on the CPU)"
                                         : torch_why);
    if (micro_md)
        fputs(micro_md, fm);
    fclose(fc);
    fclose(fm);
    int rc = json_write_in(dir, "bench.json", root);
    cJSON_Delete(root);
    if (rc == AMP_OK)
        rc = file_write_in(dir, "bench.csv", csv, csv_len);
    if (rc == AMP_OK)
        rc = file_write_in(dir, "report.md", md, md_len);
    free(csv);
    free(md);
    return rc;
}

/* Per channel count, the first net of the sweep with cells at that count; of it, one block per
 * recipe (header row, then its batches): the plots' lines. */
int bench_write_line_files(const char *plots_dir, const struct bench_cell *cells, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        int done_before = 0; /* this channel count had its file written already */
        for (size_t j = 0; j < k; j++)
            done_before |= cells[j].channels == cells[k].channels;
        if (done_before)
            continue;
        const struct net_preset *net = cells[k].net;
        const uint32_t chans = cells[k].channels;
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
            return amp_fail(AMP_ENOMEM, "out of memory formatting the bench plots' data");
        const struct recipe *done[64];
        size_t ndone = 0;
        for (size_t i = 0; i < n; i++) {
            if (cells[i].channels != chans || cells[i].net != net)
                continue;
            int seen = 0;
            for (size_t j = 0; j < ndone; j++)
                seen |= done[j] == cells[i].recipe;
            if (seen || ndone == 64)
                continue;
            done[ndone++] = cells[i].recipe;
            fprintf(f, "%s%s,batch,samples_per_s,speedup\n", ndone > 1 ? "\n\n" : "",
                    cells[i].recipe->name);
            for (size_t j = 0; j < n; j++)
                if (cells[j].recipe == cells[i].recipe && cells[j].channels == chans &&
                    cells[j].net == net)
                    fprintf(f, "%s,%u,%.2f,%.4f\n", cells[j].recipe->name, cells[j].batch,
                            cells[j].sps_median, cells[j].speedup);
        }
        fclose(f);
        char name[64], chan[16];
        snprintf(name, sizeof name, "bench_lines_c%s.csv", channels_text(&cells[k], chan, sizeof chan));
        const int rc = file_write_in(plots_dir, name, buf, len);
        free(buf);
        if (rc != AMP_OK)
            return rc;
    }
    return AMP_OK;
}

void bench_micro_section(char **section_out, const cJSON *root)
{
    size_t mdlen = 0;
    *section_out = NULL;
    FILE *md = open_memstream(section_out, &mdlen);
    if (md) {
        fprintf(md, "\n## Micro-benchmarks (Google Benchmark; micro.json)\n\n"
                    "| backend/op/precision/shape | time per call | GFLOP/s | GB/s |\n"
                    "|---|---|---|---|\n");
        const cJSON *b;
        cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(root, "benchmarks"))
        {
            const cJSON *fl = cJSON_GetObjectItemCaseSensitive(b, "FLOP/s");
            const cJSON *by = cJSON_GetObjectItemCaseSensitive(b, "bytes/s");
            char gf[32] = "-";
            if (cJSON_IsNumber(fl))
                snprintf(gf, sizeof gf, "%.2f", fl->valuedouble / 1e9);
            fprintf(md, "| %s | %.1f %s | %s | %.2f |\n",
                    cJSON_GetObjectItemCaseSensitive(b, "name")->valuestring,
                    cJSON_GetObjectItemCaseSensitive(b, "real_time")->valuedouble,
                    cJSON_GetObjectItemCaseSensitive(b, "time_unit")->valuestring, gf,
                    cJSON_IsNumber(by) ? by->valuedouble / 1e9 : 0.0);
        }
        fclose(md);
    }
}
