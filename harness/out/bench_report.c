/* The bench's outputs: bench.json (cJSON), bench.csv and report.md of the sweep, the terminal
 * table rows, the plots' line files and the micro-benchmarks' report section. */
#include "bench_report.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "files.h"
#include "jsonfile.h"
#include "results.h"

/* The PyTorch cell comparable to an ampbench recipe on this device: bf16 autocast for bf16,
 * FP32 eager for the rest (PyTorch has no FP16 autocast on the CPU). */
double bench_torch_sps(const cJSON *torch, const struct bench_cell *cell)
{
    const char *want = strcmp(cell->recipe->name, "bf16") == 0 ? "bf16" : "fp32";
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(torch, "cells"))
    {
        const cJSON *sps = cJSON_GetObjectItemCaseSensitive(item, "samples_per_s");
        if (strcmp(cJSON_GetObjectItemCaseSensitive(item, "recipe")->valuestring, want) == 0 &&
            cJSON_GetObjectItemCaseSensitive(item, "batch")->valuedouble == cell->batch &&
            cJSON_GetObjectItemCaseSensitive(item, "channels")->valuedouble == cell->channels &&
            cJSON_IsNumber(sps))
            return sps->valuedouble;
    }
    return 0.0;
}

void bench_print_row(FILE *f, const struct bench_cell *x, double torch, int markdown)
{
    char ratio[32] = "-";
    if (torch > 0)
        snprintf(ratio, sizeof ratio, "%.1fx", x->sps_median / torch);
    if (markdown)
        fprintf(f, "| %s | %u | %u | %.0f (%.0f-%.0f) | %.2f / %.2f | %.1f (%.1f%%) | %.2f MB | "
                   "%.2fx | %+.0f%% | %s |\n",
                x->recipe->name, x->batch, x->channels, x->sps_median, x->sps_min, x->sps_max,
                x->step_p50_ms, x->step_p95_ms, x->gflops, 100 * x->peak_fraction,
                x->mem.peak_total / 1e6, x->speedup, x->memory_saving == 0.0 ? 0.0 : -100 * x->memory_saving, ratio);
    else
        fprintf(f, "  %-12s %6u %5u %10.0f %8.0f %8.0f %8.2f %8.2f %8.1f %6.1f%% %9.2f %7.2fx %6.0f%% %8s\n",
                x->recipe->name, x->batch, x->channels, x->sps_median, x->sps_min, x->sps_max,
                x->step_p50_ms, x->step_p95_ms, x->gflops, 100 * x->peak_fraction,
                x->mem.peak_total / 1e6, x->speedup, 100 * x->memory_saving, ratio);
}

static cJSON *cell_json(const struct bench_cell *x, double torch)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "mode", x->recipe->name);
    cJSON_AddNumberToObject(o, "batch", x->batch);
    cJSON_AddNumberToObject(o, "channels", x->channels);
    cJSON_AddNumberToObject(o, "samples_per_s_median", x->sps_median);
    cJSON_AddNumberToObject(o, "samples_per_s_min", x->sps_min);
    cJSON_AddNumberToObject(o, "samples_per_s_max", x->sps_max);
    cJSON_AddNumberToObject(o, "step_ms_p50", x->step_p50_ms);
    cJSON_AddNumberToObject(o, "step_ms_p95", x->step_p95_ms);
    cJSON_AddNumberToObject(o, "timed_steps", (double)x->steps);
    cJSON_AddNumberToObject(o, "gflops", x->gflops);
    cJSON_AddNumberToObject(o, "peak_fraction", x->peak_fraction);
    cJSON_AddNumberToObject(o, "speedup_vs_fp32", x->speedup);
    cJSON_AddNumberToObject(o, "memory_saving_vs_fp32", x->memory_saving);
    cJSON_AddItemToObject(o, "memory", results_memory_json(&x->mem));
    if (torch > 0) {
        cJSON_AddNumberToObject(o, "torch_samples_per_s", torch);
        cJSON_AddNumberToObject(o, "ratio_vs_torch", x->sps_median / torch);
    }
    return o;
}

int bench_write_outputs(const char *dir, const struct amp_config *c, const struct host_info *h,
                         const struct bench_cell *cells, size_t n, const cJSON *torch,
                         const char *torch_why, const char *peak_how, const char *micro_md)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "tool", "ampbench-bench");
    cJSON_AddStringToObject(root, "device", c->device);
    cJSON_AddStringToObject(root, "cpu_model", h->cpu_model);
    cJSON_AddStringToObject(root, "git_revision", h->git_revision);
    cJSON_AddStringToObject(root, "peak", peak_how);
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
    fprintf(fc, "mode,batch,channels,samples_per_s,samples_per_s_min,samples_per_s_max,step_ms_p50,"
                "step_ms_p95,gflops,peak_fraction,peak_bytes,speedup_vs_fp32,memory_saving_vs_fp32,"
                "torch_samples_per_s\n");
    fprintf(fm, "# ampbench bench\n\nCPU: %s; git %s; device %s; peak: %s.\n\n", h->cpu_model,
            h->git_revision, c->device, peak_how);
    fprintf(fm, "| mode | batch | channels | samples/s median (min-max) | step ms p50 / p95 | "
                "GFLOP/s (of peak) | peak memory | speedup vs fp32 | memory vs fp32 | vs PyTorch |\n"
                "|---|---|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++) {
        const double t = torch ? bench_torch_sps(torch, &cells[i]) : 0.0;
        cJSON_AddItemToArray(arr, cell_json(&cells[i], t));
        const struct bench_cell *x = &cells[i];
        fprintf(fc, "%s,%u,%u,%.2f,%.2f,%.2f,%.4f,%.4f,%.3f,%.5f,%zu,%.4f,%.4f,%.2f\n",
                x->recipe->name, x->batch, x->channels, x->sps_median, x->sps_min, x->sps_max,
                x->step_p50_ms, x->step_p95_ms, x->gflops, x->peak_fraction, x->mem.peak_total,
                x->speedup, x->memory_saving, t);
        bench_print_row(fm, x, t, 1);
    }
    fprintf(fm, "\nPyTorch: %s\n", torch ? "eager mode, same network, batch and device "
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

/* Per channel count, one block per recipe (header row, then its batches): the plots' lines. */
int bench_write_line_files(const char *plots_dir, const struct bench_options *o,
                            const struct bench_cell *cells, size_t n)
{
    for (size_t k = 0; k < o->nchannels; k++) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
            return amp_fail(AMP_ENOMEM, "out of memory formatting the bench plots' data");
        const struct recipe *done[64];
        size_t ndone = 0;
        for (size_t i = 0; i < n; i++) {
            if (cells[i].channels != o->channels[k])
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
                if (cells[j].recipe == cells[i].recipe && cells[j].channels == o->channels[k])
                    fprintf(f, "%s,%u,%.2f,%.4f\n", cells[j].recipe->name, cells[j].batch,
                            cells[j].sps_median, cells[j].speedup);
        }
        fclose(f);
        char name[64];
        snprintf(name, sizeof name, "bench_lines_c%u.csv", o->channels[k]);
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
