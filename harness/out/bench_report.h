/* The bench's outputs: bench.json, bench.csv and report.md of a sweep, the plots' line files,
 * the table rows on the terminal, the PyTorch column and the micro-benchmarks' section; and a
 * preset's layer table as JSON, the network tools/torch_bench.py and tools/torch_crosscheck.py
 * build in PyTorch. */
#ifndef AMPBENCH_BENCH_REPORT_H
#define AMPBENCH_BENCH_REPORT_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>

#include "bench.h"
#include "config.h"
#include "model.h"
#include "sysinfo.h"

/* The layer table of `net` at `shape` (one sample's c_in x h x w, the classes, --channels):
 *   {"name", "input": [c, h, w], "classes", "channels" (null when no layer takes --channels),
 *    "layers": [{"kind", "name", "input" (the layer it reads, null: the model's input), and by
 *    kind: conv "width" (resolved), "kernel", "stride", "pad", "bias", "init"; linear "width",
 *    "bias", "init"; add "skip"}, ...]}
 * Kinds: conv, relu, linear, maxpool (2x2, stride 2), avgpool (global), batchnorm (momentum
 * 0.1, eps 1e-5), add, softmax_xent; init: "default" or "he". Parameters are "<name>.weight"
 * and "<name>.bias" (batch norm: gamma and beta), in the order of model_param. NULL when out of
 * memory. */
cJSON *bench_net_table(const struct net_preset *net, const struct model_shape *shape);

/* PyTorch's samples/s comparable to cell (same net, batch and channels) in tools/torch_bench.py's
 * result (0 when none): bf16 autocast for bf16, FP32 eager for the rest (PyTorch has no FP16
 * autocast on the CPU). */
double bench_torch_sps(const cJSON *torch, const struct bench_cell *cell);
/* One cell's row: the terminal table (markdown 0) or report.md's. */
void bench_print_row(FILE *f, const struct bench_cell *x, double torch, int markdown);
/* dir/bench.json, bench.csv and report.md (torch: the PyTorch result or NULL with torch_why;
 * micro_md: the micro-benchmarks' section or NULL), each atomically. */
int bench_write_outputs(const char *dir, const struct amp_config *c, const struct host_info *h,
                        const struct bench_cell *cells, size_t n, const cJSON *torch,
                        const char *torch_why, const char *peak_how, const char *fma_how,
                        const char *micro_md);
/* plots_dir/bench_lines_c<channels>.csv: per channel count ("-" for the nets that take none),
 * one block per recipe, of the first net of the sweep with cells at that count (the plots draw
 * one net per panel). */
int bench_write_line_files(const char *plots_dir, const struct bench_cell *cells, size_t n);
/* The micro-benchmarks' table for report.md from Google Benchmark's JSON (*section_out
 * malloc'd, NULL when out of memory). */
void bench_micro_section(char **section_out, const cJSON *root);

#endif
