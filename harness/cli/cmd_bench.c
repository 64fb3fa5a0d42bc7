/* `ampbench bench`: the throughput and memory sweep (recipes x --batches x --channels), PyTorch
 * side by side when it is installed, written to results/bench/<timestamp>-<id>/ as bench.json,
 * bench.csv and report.md, with a table on the terminal. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "commands.h"
#include "error.h"
#include "files.h"
#include "jsonfile.h"
#include "report.h"
#include "results.h"
#include "runner.h"
#include "subprocess.h"

#define MAX_MICRO_JSON_BYTES (64u << 20) /* micro.json larger than this is refused */

/* Parses "32,128,512" into out (at most BENCH_MAX_SIZES values in [1, max]). */
static int parse_list(const char *flag, const char *value, uint32_t max, uint32_t *out, size_t *n)
{
    *n = 0;
    const char *p = value;
    while (*p) {
        char *end;
        const unsigned long v = strtoul(p, &end, 10);
        if (end == p || (*end && *end != ',') || v < 1 || v > max || *p == '-' || *p == '+')
            return amp_fail(AMP_EINPUT, "%s: '%s' is not a list of integers in [1, %u]", flag,
                            value, max);
        if (*n == BENCH_MAX_SIZES)
            return amp_fail(AMP_EINPUT, "%s: more than %d values", flag, BENCH_MAX_SIZES);
        out[(*n)++] = (uint32_t)v;
        p = *end ? end + 1 : end;
    }
    return *n ? AMP_OK : amp_fail(AMP_EINPUT, "%s: empty list", flag);
}

/* Takes the bench's own list options out of argv; the rest are run options. */
static int split_args(int argc, char **argv, struct bench_options *o, char **rest, int *nrest)
{
    *nrest = 0;
    for (int i = 0; i < argc; i++) {
        const int batches = strcmp(argv[i], "--batches") == 0, chans = strcmp(argv[i], "--channels") == 0;
        const int micro = strcmp(argv[i], "--micro") == 0;
        if (!batches && !chans && !micro) {
            rest[(*nrest)++] = argv[i];
            continue;
        }
        if (i + 1 >= argc)
            return amp_fail(AMP_EINPUT, "%s: missing value", argv[i]);
        if (micro) {
            o->micro = argv[++i];
            if (access(o->micro, X_OK) != 0)
                return amp_fail(AMP_EINPUT, "--micro %s: not an executable (build the micro_ops "
                                            "target: apt-get install libbenchmark-dev)", o->micro);
            continue;
        }
        const int rc = batches ? parse_list("--batches", argv[++i], 1 << 16, o->batches, &o->nbatches)
                               : parse_list("--channels", argv[++i], 1024, o->channels, &o->nchannels);
        if (rc != AMP_OK)
            return rc;
    }
    return AMP_OK;
}

/* PyTorch's samples/s for every (recipe, batch, channels) cell, or NULL with `why` filled. */
static cJSON *torch_side(const struct bench_options *o, const struct amp_config *c, char *why,
                         size_t len)
{
    /* $AMPBENCH_PYTHON when set (and only it), else python3 on the PATH, else Debian's. */
    const char *py = getenv("AMPBENCH_PYTHON");
    const char *candidates[] = { py ? py : "python3", py ? NULL : "/usr/bin/python3" };
    const char *found = NULL;
    const int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    for (size_t i = 0; i < 2 && !found && null_fd >= 0; i++) {
        char *const probe[] = { (char *)candidates[i], "-c", "import torch", NULL };
        if (candidates[i] && spawn_check(probe, null_fd, null_fd) == AMP_OK)
            found = candidates[i];
    }
    if (null_fd >= 0)
        close(null_fd);
    if (!found) {
        snprintf(why, len, "PyTorch not found (python3 -c 'import torch' fails; set "
                           "AMPBENCH_PYTHON or apt-get install python3-torch): column skipped");
        return NULL;
    }
    cJSON *cells = cJSON_CreateArray();
    static const char *const recipes[] = { "fp32", "bf16" }; /* tools/torch_bench.py's names */
    for (size_t b = 0; b < o->nbatches; b++)
        for (size_t k = 0; k < o->nchannels; k++)
            for (int r = 0; r < 2; r++) {
                cJSON *cell = cJSON_CreateObject();
                cJSON_AddStringToObject(cell, "recipe", recipes[r]);
                cJSON_AddNumberToObject(cell, "batch", o->batches[b]);
                cJSON_AddNumberToObject(cell, "channels", o->channels[k]);
                cJSON_AddItemToArray(cells, cell);
            }
    char *spec = cJSON_PrintUnformatted(cells);
    cJSON_Delete(cells);
    char script[4200], threads[16];
    snprintf(script, sizeof script, "%s/tools/torch_bench.py", AMPBENCH_SOURCE_DIR);
    snprintf(threads, sizeof threads, "%d", c->threads);
    printf("PyTorch side by side (%s tools/torch_bench.py) ...\n", found);
    fflush(stdout);
    /* Its one line of JSON on stdout, through an anonymous temporary file. */
    FILE *out = tmpfile();
    char line[65536] = "";
    char *const argv[] = { (char *)found, script, spec, threads, NULL };
    if (spec && out && spawn_check(argv, fileno(out), -1) == AMP_OK) {
        rewind(out);
        if (!fgets(line, sizeof line, out))
            line[0] = '\0';
    }
    if (out)
        fclose(out);
    cJSON_free(spec);
    cJSON *res = cJSON_Parse(line);
    if (!res)
        snprintf(why, len, "tools/torch_bench.py failed: column skipped");
    return res;
}

/* The PyTorch cell comparable to an ampbench recipe on this device: bf16 autocast for bf16,
 * FP32 eager for the rest (PyTorch has no FP16 autocast on the CPU). */
static double torch_sps(const cJSON *torch, const struct bench_cell *cell)
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

static void print_row(FILE *f, const struct bench_cell *x, double torch, int markdown)
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

static int write_outputs(const char *dir, const struct amp_config *c, const struct host_info *h,
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
        const double t = torch ? torch_sps(torch, &cells[i]) : 0.0;
        cJSON_AddItemToArray(arr, cell_json(&cells[i], t));
        const struct bench_cell *x = &cells[i];
        fprintf(fc, "%s,%u,%u,%.2f,%.2f,%.2f,%.4f,%.4f,%.3f,%.5f,%zu,%.4f,%.4f,%.2f\n",
                x->recipe->name, x->batch, x->channels, x->sps_median, x->sps_min, x->sps_max,
                x->step_p50_ms, x->step_p95_ms, x->gflops, x->peak_fraction, x->mem.peak_total,
                x->speedup, x->memory_saving, t);
        print_row(fm, x, t, 1);
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

/* Runs the micro-benchmarks into dir/micro.json (log in dir/micro.txt); *section gets their
 * table for the report (malloc'd). */
static int run_micro(const char *dir, const char *micro, char **section)
{
    char out_arg[4300], log_path[4200], json_path[4200];
    snprintf(out_arg, sizeof out_arg, "--benchmark_out=%s/micro.json", dir);
    snprintf(json_path, sizeof json_path, "%s/micro.json", dir);
    snprintf(log_path, sizeof log_path, "%s/micro.txt", dir);
    char *const args[] = { (char *)micro, out_arg, "--benchmark_out_format=json",
                           "--benchmark_min_time=0.05", NULL };
    printf("micro-benchmarks (%s) ...\n", micro);
    fflush(stdout);
    const int log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    int rc = log_fd >= 0 ? spawn_check(args, log_fd, -1)
                         : amp_fail(AMP_EIO, "%s: cannot write: %s", log_path, strerror(errno));
    if (log_fd >= 0)
        close(log_fd);
    if (rc != AMP_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", amp_last_error());
        return amp_fail(AMP_EFAIL, "%s (see %s)", why, log_path);
    }
    char *text;
    size_t len;
    rc = file_read_all(&text, &len, json_path, MAX_MICRO_JSON_BYTES);
    if (rc != AMP_OK)
        return rc;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root)
        return amp_fail(AMP_EFAIL, "%s: malformed", json_path);
    size_t mdlen = 0;
    FILE *md = open_memstream(section, &mdlen);
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
    cJSON_Delete(root);
    return AMP_OK;
}

/* Per channel count, one block per recipe (header row, then its batches): the plots' lines. */
static int write_line_files(const char *plots_dir, const struct bench_options *o,
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

int cmd_bench(int argc, char **argv, const char *command_line)
{
    struct bench_options o = { .batches = { 32, 128, 512 }, .nbatches = 3,
                               .channels = { 16, 64 }, .nchannels = 2,
                               .warmup_steps = 5, .windows = 5, .window_s = 0.15 };
    char **rest = malloc((size_t)(argc + 1) * sizeof *rest);
    int nrest = 0;
    struct amp_config c;
    int rc = rest ? split_args(argc, argv, &o, rest, &nrest) : AMP_ENOMEM;
    if (rc == AMP_OK) {
        rc = cli_parse(nrest, rest, &c, stdout, CLI_BENCH);
        if (rc < 0) {
            printf("  %-22s %s\n  %-22s %s\n  %-22s %s\n", "--batches LIST",
                   "batch sizes (default 32,128,512)", "--channels LIST",
                   "conv channel counts (default 16,64)", "--micro PATH",
                   "also run the Google Benchmark micro-benchmarks (build/micro_ops)");
            free(rest);
            return 0;
        }
    }
    free(rest);
    if (rc != AMP_OK)
        return runner_report_error(rc);
    struct runner r;
    rc = runner_open(&r, &c, command_line);
    if (rc == AMP_OK)
        rc = runner_start(&r, "bench", "results/bench");
    char peak_how[256];
    const double peak = bench_peak_flops(&c, r.host.max_threads, peak_how, sizeof peak_how);
    const size_t ncells = c.nrecipes * o.nbatches * o.nchannels;
    struct bench_cell *cells = calloc(ncells, sizeof *cells);
    size_t n = 0;
    if (rc == AMP_OK && !cells)
        rc = amp_fail(AMP_ENOMEM, "out of host memory");
    if (rc == AMP_OK)
        printf("\n  %-12s %6s %5s %10s %8s %8s %8s %8s %8s %7s %9s %8s %7s %8s\n", "mode", "batch",
               "chan", "samples/s", "min", "max", "p50_ms", "p95_ms", "GFLOP/s", "peak",
               "peak_MB", "speedup", "mem", "vs_torch");
    for (size_t k = 0; k < o.nchannels && rc == AMP_OK; k++)
        for (size_t b = 0; b < o.nbatches && rc == AMP_OK; b++)
            for (size_t m = 0; m < c.nrecipes && rc == AMP_OK; m++) {
                struct bench_cell *x = &cells[n];
                rc = bench_cell_run(&c, &o, c.recipes[m], o.batches[b], o.channels[k], &r.train,
                                    peak, x);
                if (rc != AMP_OK)
                    break;
                n++;
                const struct bench_cell *ref = NULL;
                for (size_t i = 0; i < n; i++)
                    if (cells[i].recipe == recipe_reference() && cells[i].batch == x->batch &&
                        cells[i].channels == x->channels)
                        ref = &cells[i];
                x->speedup = ref ? x->sps_median / ref->sps_median : 0.0;
                x->memory_saving = ref ? 1.0 - (double)x->mem.peak_total / ref->mem.peak_total : 0.0;
                print_row(stdout, x, 0.0, 0);
                fflush(stdout);
            }
    char torch_why[256] = "";
    cJSON *torch = rc == AMP_OK ? torch_side(&o, &c, torch_why, sizeof torch_why) : NULL;
    if (rc == AMP_OK && torch) {
        printf("\n  %-12s %6s %5s %10s %12s %8s\n", "mode", "batch", "chan", "samples/s",
               "torch_s/s", "ratio");
        for (size_t i = 0; i < n; i++) {
            const double t = torch_sps(torch, &cells[i]);
            printf("  %-12s %6u %5u %10.0f %12.0f %7.1fx\n", cells[i].recipe->name,
                   cells[i].batch, cells[i].channels, cells[i].sps_median, t,
                   t > 0 ? cells[i].sps_median / t : 0.0);
        }
    } else if (rc == AMP_OK) {
        printf("%s\n", torch_why);
    }
    char *micro_md = NULL;
    if (rc == AMP_OK && o.micro)
        rc = run_micro(r.dir, o.micro, &micro_md);
    if (rc == AMP_OK)
        rc = write_outputs(r.dir, &c, &r.host, cells, n, torch, torch_why, peak_how, micro_md);
    free(micro_md);
    if (rc == AMP_OK) {
        /* Plots are optional: gnuplot missing or failing is a note, not an error. */
        static const char *const names[] = { "bench_throughput", "bench_speedup" };
        struct plot_status st[2] = { 0 };
        char plots_dir[4200];
        snprintf(plots_dir, sizeof plots_dir, "%s/plots", r.dir);
        rc = dir_ensure(plots_dir);
        if (rc == AMP_OK)
            rc = write_line_files(plots_dir, &o, cells, n);
        const int drawn = rc == AMP_OK ? plots_draw_named(r.dir, names, 2, st) : 0;
        for (int i = 0; i < 2; i++)
            if (!st[i].drawn)
                fprintf(stderr, "ampbench: warning: plot %s skipped: %s\n", names[i], st[i].why);
        if (rc == AMP_OK)
            printf("\nbench written to %s (bench.json, bench.csv, report.md, %d plots%s)\n",
                   r.dir, drawn, o.micro ? ", micro.json" : "");
    }
    cJSON_Delete(torch);
    free(cells);
    runner_close(&r);
    return rc == AMP_OK ? 0 : runner_report_error(rc);
}
