/* `ampbench bench`: the throughput and memory sweep (--nets x recipes x --batches x --channels),
 * PyTorch side by side when it is installed (tools/torch_bench.py, the same networks from their
 * layer tables, on the backend's thread count), the micro-benchmarks with --micro;
 * out/bench_report.c writes results/bench/<timestamp>-<id>/ and the table on the terminal. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "bench_report.h"
#include "cli.h"
#include "commands.h"
#include "error.h"
#include "paths.h"
#include "files.h"
#include "group.h"
#include "interrupt.h"
#include "jsonfile.h"
#include "train.h"
#include "report.h"
#include "runner.h"
#include "subprocess.h"

#define MAX_MICRO_JSON_BYTES (64u << 20) /* micro.json larger than this is refused */

/* Parses "32,128,512" into out (at most BENCH_MAX_SIZES values in [1, max], each by the
 * integer rule of every flag, cli_parse_uint). */
static int parse_list(const char *flag, const char *value, uint32_t max, uint32_t *out, size_t *n)
{
    *n = 0;
    for (const char *p = value; ; p++) {
        const size_t len = strcspn(p, ",");
        char item[32];
        uint64_t v = 0;
        if (len == 0 || len >= sizeof item)
            return amp_fail(AMP_EINPUT, "%s: '%s' is not a list of integers in [1, %u]", flag,
                            value, max);
        snprintf(item, sizeof item, "%.*s", (int)len, p);
        if (cli_parse_uint("", item, 1, max, &v) != AMP_OK) { /* why, after its ": " */
            char why[128];
            snprintf(why, sizeof why, "%s", amp_last_error() + 2);
            return amp_fail(AMP_EINPUT, "%s: '%s' is not a list of integers in [1, %u] (%s)",
                            flag, value, max, why);
        }
        if (*n == BENCH_MAX_SIZES)
            return amp_fail(AMP_EINPUT, "%s: more than %d values", flag, BENCH_MAX_SIZES);
        out[(*n)++] = (uint32_t)v;
        p += len;
        if (!*p)
            return AMP_OK;
    }
}

/* Parses "seed,lenet5" into o->nets: known presets, each once. */
static int parse_nets(const char *value, struct bench_options *o)
{
    o->nnets = 0;
    const char *p = value;
    while (*p) {
        const size_t len = strcspn(p, ",");
        char name[64];
        if (len == 0 || len >= sizeof name)
            return amp_fail(AMP_EINPUT, "--nets: '%s' is not a list of network names", value);
        memcpy(name, p, len);
        name[len] = '\0';
        const struct net_preset *net = net_find(name);
        if (!net) {
            char names[256];
            return amp_fail(AMP_EINPUT, "--nets: unknown network '%s' (known: %s)", name,
                            net_names(names, sizeof names));
        }
        for (size_t i = 0; i < o->nnets; i++)
            if (o->nets[i] == net)
                return amp_fail(AMP_EINPUT, "--nets: '%s' is listed twice", name);
        if (o->nnets == BENCH_MAX_NETS)
            return amp_fail(AMP_EINPUT, "--nets: more than %d networks", BENCH_MAX_NETS);
        o->nets[o->nnets++] = net;
        p += len;
        if (*p == ',' && *++p == '\0')
            return amp_fail(AMP_EINPUT, "--nets: '%s' is not a list of network names", value);
    }
    return o->nnets ? AMP_OK : amp_fail(AMP_EINPUT, "--nets: empty list");
}

/* The bench's own options, parsed by cli_parse with the run options (one parser, one spelling). */
static int set_batches(void *ctx, const char *flag, const char *value)
{
    struct bench_options *o = ctx;
    return parse_list(flag, value, 1 << 16, o->batches, &o->nbatches);
}

static int set_channels(void *ctx, const char *flag, const char *value)
{
    struct bench_options *o = ctx;
    return parse_list(flag, value, 1024, o->channels, &o->nchannels);
}

static int set_nets(void *ctx, const char *flag, const char *value)
{
    (void)flag;
    return parse_nets(value, ctx);
}

static int set_micro(void *ctx, const char *flag, const char *value)
{
    struct bench_options *o = ctx;
    struct stat st;
    if (stat(value, &st) != 0 || !S_ISREG(st.st_mode) || access(value, X_OK) != 0)
        return amp_fail(AMP_EINPUT, "%s %s: %s (build the micro_ops target: apt-get install "
                        "libbenchmark-dev)", flag, value,
                        stat(value, &st) != 0 ? strerror(errno)
                        : S_ISDIR(st.st_mode) ? "is a directory, not an executable"
                                              : "not an executable file");
    o->micro = value;
    return AMP_OK;
}

static const struct cli_extra_opt bench_opts[] = {
    { "--nets", "LIST", "network presets to sweep (default: --net's)", set_nets },
    { "--batches", "LIST", "batch sizes (default 32,128,512)", set_batches },
    { "--channels", "LIST", "widths for the nets that take --channels (default 16,64)",
      set_channels },
    { "--micro", "PATH", "also run the Google Benchmark micro-benchmarks (build/micro_ops)",
      set_micro },
};

/* The python with PyTorch: $AMPBENCH_PYTHON when set (and only it), else python3 on the PATH,
 * else Debian's; NULL when none imports torch. */
static const char *torch_python(void)
{
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
    return found;
}

/* What tools/torch_bench.py measures (dir/torch_spec.json): the device, the thread count the
 * backend really used, the layer table of every (net, channels) of the sweep, and a cell per
 * (net, batch, channels) for FP32 and, when the sweep has bf16, for bf16 autocast. */
static cJSON *torch_spec(const struct amp_config *c, const struct runner *r,
                         const struct bench_cell *cells, size_t n, int with_bf16)
{
    cJSON *spec = cJSON_CreateObject();
    cJSON_AddStringToObject(spec, "device", c->device);
    cJSON_AddNumberToObject(spec, "threads", n ? cells[0].threads : 0);
    cJSON *tables = cJSON_AddObjectToObject(spec, "tables");
    cJSON *list = cJSON_AddArrayToObject(spec, "cells");
    for (size_t i = 0; i < n; i++) {
        int seen = 0; /* an earlier cell of the same net, batch and channels */
        for (size_t j = 0; j < i; j++)
            seen |= cells[j].net == cells[i].net && cells[j].batch == cells[i].batch &&
                    cells[j].channels == cells[i].channels;
        if (seen)
            continue;
        char key[96];
        snprintf(key, sizeof key, "%s/c%u", cells[i].net->name, cells[i].channels);
        if (!cJSON_GetObjectItemCaseSensitive(tables, key)) {
            struct amp_config cell = *c;
            if (cells[i].channels)
                cell.channels = cells[i].channels;
            const struct model_shape shape = train_model_shape(&cell, &r->train, cells[i].batch);
            cJSON_AddItemToObject(tables, key, bench_net_table(cells[i].net, &shape));
        }
        for (int k = 0; k < 1 + with_bf16; k++) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "net", cells[i].net->name);
            cJSON_AddStringToObject(x, "table", key);
            cJSON_AddStringToObject(x, "recipe", k ? "bf16" : "fp32");
            cJSON_AddNumberToObject(x, "batch", cells[i].batch);
            if (cells[i].channels)
                cJSON_AddNumberToObject(x, "channels", cells[i].channels);
            else
                cJSON_AddNullToObject(x, "channels");
            cJSON_AddItemToArray(list, x);
        }
    }
    return spec;
}

/* PyTorch's samples/s for the sweep's cells, or NULL with `why` filled. */
static cJSON *torch_side(const struct amp_config *c, const struct runner *r,
                         const struct bench_cell *cells, size_t n, char *why, size_t len)
{
    const char *found = torch_python();
    if (!found) {
        snprintf(why, len, "PyTorch not found (python3 -c 'import torch' fails; set "
                           "AMPBENCH_PYTHON or apt-get install python3-torch): column skipped");
        return NULL;
    }
    int with_bf16 = 0;
    for (size_t i = 0; i < c->nrecipes; i++)
        with_bf16 |= strcmp(c->recipes[i]->name, "bf16") == 0;
    cJSON *spec = torch_spec(c, r, cells, n, with_bf16);
    int rc = json_write_in(r->dir, "torch_spec.json", spec);
    cJSON_Delete(spec);
    char tools[4096], script[4200], spec_path[4200], out_path[4200];
    snprintf(script, sizeof script, "%s/torch_bench.py", paths_share_dir(tools, sizeof tools, "tools"));
    snprintf(spec_path, sizeof spec_path, "%s/torch_spec.json", r->dir);
    snprintf(out_path, sizeof out_path, "%s/torch.json", r->dir);
    printf("PyTorch side by side (%s tools/torch_bench.py, %d threads) ...\n", found,
           n ? cells[0].threads : 0);
    fflush(stdout);
    /* Its one line of JSON on stdout, into dir/torch.json. */
    const int out_fd = rc == AMP_OK ? open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666)
                                    : -1;
    char *const argv[] = { (char *)found, script, spec_path, NULL };
    if (out_fd >= 0) {
        rc = spawn_check(argv, out_fd, -1);
        close(out_fd);
    } else {
        rc = AMP_EIO;
    }
    cJSON *res = NULL;
    if (rc == AMP_OK)
        rc = json_read_file(&res, out_path, MAX_MICRO_JSON_BYTES);
    if (!res)
        snprintf(why, len, "tools/torch_bench.py failed (%s): column skipped",
                 rc != AMP_OK ? amp_last_error() : "no JSON on its stdout");
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
    const int log_fd = open(log_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    int rc = log_fd >= 0 ? spawn_check(args, log_fd, -1)
                         : amp_fail(AMP_EIO, "%s: cannot write: %s", log_path, strerror(errno));
    if (log_fd >= 0)
        close(log_fd);
    if (rc != AMP_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", amp_last_error());
        return amp_fail(AMP_EFAIL, "%s (see %s)", why, log_path);
    }
    cJSON *root;
    rc = json_read_file(&root, json_path, MAX_MICRO_JSON_BYTES);
    if (rc != AMP_OK) { /* the tool's output, not the user's input: a failure, not exit 2 */
        char why[1024];
        snprintf(why, sizeof why, "%s", amp_last_error());
        return amp_fail(AMP_EFAIL, "%s", why);
    }
    bench_micro_section(section, root);
    cJSON_Delete(root);
    return AMP_OK;
}

/* A bench cell as it travels between ranks: its net and recipe by index, the rest as it is. */
struct cell_wire {
    uint32_t have, net, recipe;
    struct bench_cell cell; /* net and recipe pointers meaningless on the way */
};

/* Under several ranks (an MPI launcher) the cells' groups (net, channels, batch: all recipes,
 * c->nrecipes cells in a row), in enumeration order, are spread over them (group i on rank
 * i % size); this gathers them to every rank and leaves the finished ones in
 * cells[0 .. *n), in order. `have` marks this rank's finished cells (cells and have hold ncells,
 * the most there can be: every rank sends as many bytes). One all-gather, after every rank's
 * cells: --dist-timeout bounds how long the first rank to finish waits for the last. */
static int gather_cells(struct bench_cell *cells, const unsigned char *have, size_t ncells,
                        size_t *n, const struct bench_options *o, const struct amp_config *c)
{
    const struct dist_group *g = dist_world();
    struct cell_wire *mine = calloc(ncells ? ncells : 1, sizeof *mine);
    struct cell_wire *all = calloc((ncells ? ncells : 1) * (size_t)g->size, sizeof *all);
    int rc = mine && all ? AMP_OK : amp_fail(AMP_ENOMEM, "out of host memory");
    for (size_t j = 0; j < ncells && rc == AMP_OK; j++) {
        if (!have[j])
            continue;
        mine[j].have = 1;
        mine[j].cell = cells[j];
        for (size_t t = 0; t < o->nnets; t++)
            if (o->nets[t] == cells[j].net)
                mine[j].net = (uint32_t)t;
        for (size_t m = 0; m < c->nrecipes; m++)
            if (c->recipes[m] == cells[j].recipe)
                mine[j].recipe = (uint32_t)m;
    }
    if (rc == AMP_OK)
        rc = dist_allgather(all, mine, ncells * sizeof *mine, "gathering the bench cells");
    *n = 0;
    for (size_t j = 0; j < ncells && rc == AMP_OK; j++) {
        const struct cell_wire *w = &all[(j / c->nrecipes % (size_t)g->size) * ncells + j];
        if (!w->have)
            continue;
        cells[*n] = w->cell;
        cells[*n].net = o->nets[w->net];
        cells[*n].recipe = c->recipes[w->recipe];
        ++*n;
    }
    free(mine);
    free(all);
    return rc;
}

/* Each cell's speedups (wall clock and CPU time: the median of the per-window ratios, fp32's
 * windows interleaved with its) and memory saving over fp32's cell of the same net, batch and
 * channels. */
static void against_fp32(struct bench_cell *cells, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        struct bench_cell *x = &cells[k];
        const struct bench_cell *ref = NULL;
        for (size_t i = 0; i < n; i++)
            if (cells[i].recipe == recipe_reference() && cells[i].net == x->net &&
                cells[i].batch == x->batch && cells[i].channels == x->channels)
                ref = &cells[i];
        x->speedup = ref ? bench_paired_ratio(x->window_sps, ref->window_sps, x->nwindows) : 0.0;
        x->cpu_speedup = ref ? bench_paired_ratio(x->window_cpu_sps, ref->window_cpu_sps,
                                                  x->nwindows)
                             : 0.0;
        x->memory_saving = ref ? 1.0 - (double)x->mem.peak_total / ref->mem.peak_total : 0.0;
    }
}

int cmd_bench(int argc, char **argv, const char *command_line)
{
    struct bench_options o = { .batches = { 32, 128, 512 }, .nbatches = 3,
                               .channels = { 16, 64 }, .nchannels = 2,
                               .warmup_steps = 5, .windows = 5, .window_s = 0.15 };
    struct amp_config c;
    const struct cli_extras extras = { bench_opts, sizeof bench_opts / sizeof bench_opts[0], &o };
    int rc = cli_parse(argc, argv, &c, stdout, CLI_BENCH, &extras);
    if (rc < 0)
        return 0;
    if (rc == AMP_OK && c.data_parallel)
        rc = amp_fail(AMP_EINPUT, "--data-parallel: not for bench, which spreads its cells over "
                      "the ranks (data-parallel training is run's and verify's)");
    if (rc != AMP_OK)
        return runner_report_error(rc);
    if (o.nnets == 0)
        o.nets[o.nnets++] = c.net;
    struct runner r;
    rc = runner_open(&r, &c, command_line);
    if (rc == AMP_OK)
        rc = runner_start(&r, "bench", "results/bench");
    char peak_how[256], fma_how[256] = "not measured";
    const double peak = bench_peak_flops(&c, r.host.max_threads, peak_how, sizeof peak_how);
    const double fma = rc == AMP_OK ? bench_fma_rate(&c, r.host.max_threads, 0.4, fma_how,
                                                     sizeof fma_how)
                                    : 0.0;
    if (rc == AMP_OK)
        printf("peak: %s\nFMA rate: %s\n", peak_how, fma_how);
    const size_t ncells = o.nnets * c.nrecipes * o.nbatches * o.nchannels;
    struct bench_cell *cells = calloc(ncells, sizeof *cells);
    unsigned char *have = calloc(ncells ? ncells : 1, 1);
    const struct dist_group *g = dist_world();
    const int spread = g->size > 1;
    size_t n = 0, j = 0; /* cells finished here; cells enumerated */
    if (rc == AMP_OK && (!cells || !have))
        rc = amp_fail(AMP_ENOMEM, "out of host memory");
    if (rc == AMP_OK && spread)
        printf("distributed: %d ranks, the cells spread over them (rank 0 prints them at the end; "
               "ranks sharing a machine share its cores)\n", g->size);
    if (rc == AMP_OK)
        printf("\n  %-8s %-12s %6s %5s %10s %8s %8s %8s %8s %8s %7s %6s %9s %8s %7s %7s %8s\n",
               "net", "mode", "batch", "chan", "samples/s", "min", "max", "p50_ms", "p95_ms",
               "GFLOP/s", "peak", "fma", "peak_MB", "speedup", "cpu_x", "mem", "vs_torch");
    const size_t nr = c.nrecipes;
    size_t group = 0; /* groups (net, channels, batch) enumerated */
    for (size_t t = 0; t < o.nnets && rc == AMP_OK; t++) {
        /* A net that leaves no width open runs once per recipe and batch (channels 0). */
        const int takes = bench_net_takes_channels(o.nets[t]);
        for (size_t k = 0; k < (takes ? o.nchannels : 1) && rc == AMP_OK; k++)
            for (size_t b = 0; b < o.nbatches && rc == AMP_OK && !interrupt_signal();
                 b++, group++, j += nr) {
                if (spread && group % (size_t)g->size != (size_t)g->rank)
                    continue;
                struct bench_cell *x = &cells[spread ? j : n];
                rc = bench_group_run(&c, &o, o.nets[t], o.batches[b], takes ? o.channels[k] : 0,
                                     &r.train, peak, interrupt_signal, x);
                if (rc == AMP_EINTR) /* (the group dropped: the finished cells are kept) */
                    rc = AMP_OK;
                if (rc != AMP_OK || interrupt_signal())
                    break;
                for (size_t m = 0; m < nr; m++) {
                    x[m].fma_fraction = fma > 0 ? x[m].gflops * 1e9 / fma : 0.0;
                    have[spread ? j + m : n + m] = 1;
                }
                n += nr;
                if (!spread) {
                    against_fp32(cells, n);
                    for (size_t m = 0; m < nr; m++)
                        bench_print_row(stdout, &x[m], 0.0, 0);
                    fflush(stdout);
                }
            }
    }
    if (rc == AMP_OK && spread) {
        rc = gather_cells(cells, have, ncells, &n, &o, &c);
        against_fp32(cells, n);
        for (size_t i = 0; i < n && rc == AMP_OK; i++)
            bench_print_row(stdout, &cells[i], 0.0, 0);
    }
    /* SIGINT/SIGTERM: stop after the current round of windows (that group dropped), write the
     * finished cells, say where. */
    const int stopped = rc == AMP_OK && interrupt_signal();
    char torch_why[256] = "";
    if (stopped)
        snprintf(torch_why, sizeof torch_why, "interrupted: column skipped");
    const int writes = runner_writes(&r);
    cJSON *torch = rc == AMP_OK && !stopped && writes
                       ? torch_side(&c, &r, cells, n, torch_why, sizeof torch_why)
                       : NULL;
    if (rc == AMP_OK && torch) {
        const cJSON *tt = cJSON_GetObjectItemCaseSensitive(torch, "threads");
        printf("\n  threads: ampbench %d, PyTorch %d\n", n ? cells[0].threads : 0,
               cJSON_IsNumber(tt) ? tt->valueint : -1);
        printf("  %-8s %-12s %6s %5s %10s %12s %8s\n", "net", "mode", "batch", "chan",
               "samples/s", "torch_s/s", "ratio");
        for (size_t i = 0; i < n; i++) {
            const double t = bench_torch_sps(torch, &cells[i]);
            char chan[16] = "-";
            if (cells[i].channels)
                snprintf(chan, sizeof chan, "%u", cells[i].channels);
            printf("  %-8s %-12s %6u %5s %10.0f %12.0f %7.1fx\n", cells[i].net->name,
                   cells[i].recipe->name, cells[i].batch, chan, cells[i].sps_median, t,
                   t > 0 ? cells[i].sps_median / t : 0.0);
        }
    } else if (rc == AMP_OK) {
        printf("%s\n", torch_why);
    }
    char *micro_md = NULL;
    if (rc == AMP_OK && o.micro && !stopped && writes)
        rc = run_micro(r.dir, o.micro, &micro_md);
    if (rc == AMP_OK && writes)
        rc = bench_write_outputs(r.dir, &c, &r.host, cells, n, torch, torch_why, peak_how,
                                 fma_how, micro_md);
    free(micro_md);
    if (rc == AMP_OK && writes) {
        /* Plots are optional: gnuplot missing or failing is a note, not an error. */
        static const char *const names[] = { "bench_throughput", "bench_speedup" };
        struct plot_status st[2] = { 0 };
        char plots_dir[4200];
        snprintf(plots_dir, sizeof plots_dir, "%s/plots", r.dir);
        rc = dir_ensure(plots_dir);
        if (rc == AMP_OK)
            rc = bench_write_line_files(plots_dir, cells, n);
        int drawn = 0;
        if (rc == AMP_OK)
            rc = plots_draw_named(r.dir, names, 2, st, &drawn);
        for (int i = 0; i < 2 && rc == AMP_OK; i++)
            if (!st[i].drawn)
                fprintf(stderr, "ampbench: warning: plot %s skipped: %s\n", names[i],
                        st[i].why); /* both ours: one line */
        if (rc == AMP_OK)
            printf("\nbench written to %s (bench.json, bench.csv, report.md, %d plots%s%s)\n",
                   r.dir, drawn, o.micro ? ", micro.json" : "",
                   torch ? ", torch_spec.json, torch.json" : "");
    }
    if (rc == AMP_OK && stopped)
        rc = amp_fail(AMP_EINTR, "interrupted (signal %d) after %zu cells; the finished "
                      "cells are in %s", interrupt_signal(), n, r.dir);
    cJSON_Delete(torch);
    free(cells);
    free(have);
    runner_close(&r);
    return rc == AMP_OK ? 0 : runner_report_error(rc);
}
