/* `ampbench bench`: the throughput and memory sweep (recipes x --batches x --channels), PyTorch
 * side by side when it is installed (tools/torch_bench.py), the micro-benchmarks with --micro;
 * out/bench_report.c writes results/bench/<timestamp>-<id>/ and the table on the terminal. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "bench_report.h"
#include "cli.h"
#include "commands.h"
#include "error.h"
#include "paths.h"
#include "files.h"
#include "report.h"
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
    char tools[4096], script[4200], threads[16];
    snprintf(script, sizeof script, "%s/torch_bench.py", paths_share_dir(tools, sizeof tools, "tools"));
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
    bench_micro_section(section, root);
    cJSON_Delete(root);
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
                bench_print_row(stdout, x, 0.0, 0);
                fflush(stdout);
            }
    char torch_why[256] = "";
    cJSON *torch = rc == AMP_OK ? torch_side(&o, &c, torch_why, sizeof torch_why) : NULL;
    if (rc == AMP_OK && torch) {
        printf("\n  %-12s %6s %5s %10s %12s %8s\n", "mode", "batch", "chan", "samples/s",
               "torch_s/s", "ratio");
        for (size_t i = 0; i < n; i++) {
            const double t = bench_torch_sps(torch, &cells[i]);
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
        rc = bench_write_outputs(r.dir, &c, &r.host, cells, n, torch, torch_why, peak_how, micro_md);
    free(micro_md);
    if (rc == AMP_OK) {
        /* Plots are optional: gnuplot missing or failing is a note, not an error. */
        static const char *const names[] = { "bench_throughput", "bench_speedup" };
        struct plot_status st[2] = { 0 };
        char plots_dir[4200];
        snprintf(plots_dir, sizeof plots_dir, "%s/plots", r.dir);
        rc = dir_ensure(plots_dir);
        if (rc == AMP_OK)
            rc = bench_write_line_files(plots_dir, &o, cells, n);
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
