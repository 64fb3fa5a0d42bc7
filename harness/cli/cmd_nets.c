/* `ampbench nets`: every network preset with its layers, parameter count, FLOPs per training
 * sample and activation bytes per sample, at Fashion-MNIST's shape (1 x 28 x 28, 10 classes) and
 * --channels 16 in FP32, or at the shape and --channels given; `ampbench nets --json NAME` prints
 * one preset's layer table as JSON (bench_net_table: what tools/torch_bench.py builds). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_report.h"
#include "commands.h"
#include "error.h"
#include "model.h"
#include "runner.h"

static int print_net(const struct net_preset *net, const struct model_shape *shape)
{
    const struct precision_plan fp32 = precision_plan_of(recipe_reference(), POLICY_SEED);
    struct layer_info *info = calloc(net->nlayers, sizeof *info);
    if (!info)
        return amp_fail(AMP_ENOMEM, "out of host memory");
    size_t n;
    struct net_totals t;
    int rc = model_layers(net, shape, &fp32, info, net->nlayers, &n);
    if (rc == AMP_OK)
        rc = model_totals(net, shape, &fp32, &t);
    if (rc == AMP_OK) {
        printf("%s: %s\n", net->name, net->summary);
        printf("  %-10s %-13s %-14s %12s %14s %14s\n", "layer", "kind", "output", "params",
               "FLOPs/sample", "act bytes");
        for (size_t i = 0; i < n; i++) {
            char out[32];
            snprintf(out, sizeof out, "%ux%ux%u", info[i].c, info[i].h, info[i].w);
            printf("  %-10s %-13s %-14s %12zu %14.0f %14zu\n", info[i].trace.name,
                   info[i].trace.layer, out, info[i].params, info[i].flops, info[i].act_bytes);
        }
        printf("  total: %zu parameters, %.4g FLOPs per training sample, %zu activation bytes "
               "per sample (FP32, the input included)\n",
               t.params, t.flops, t.act_bytes);
        if (net->note)
            printf("  note: %s\n", net->note);
        if (net->verify_epochs || net->verify_seeds)
            printf("  verify protocol: %u epochs x %u seeds (unless --epochs, --seeds say "
                   "otherwise)\n", net->verify_epochs ? net->verify_epochs : 5,
                   net->verify_seeds ? net->verify_seeds : 1);
        printf("\n");
    }
    free(info);
    return rc;
}

int cmd_nets(int argc, char **argv, const char *command_line)
{
    (void)command_line;
    struct model_shape shape = { .batch = 1, .c_in = 1, .h = 28, .w = 28, .classes = 10,
                                 .channels = 16 };
    const struct net_preset *json = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: ampbench nets [--channels N] [--json NAME]\n\nLists the network "
                   "presets (--net) with their layers, parameters, FLOPs per training sample\n"
                   "(forward and backward multiply-adds) and activation bytes per sample, in "
                   "FP32, for 1 x 28 x 28 images and 10 classes.\n"
                   "--json NAME prints preset NAME's layer table as JSON instead (kinds, widths "
                   "resolved, conv geometry,\nbias, init, the input and skip edges by name: "
                   "what tools/torch_bench.py builds in PyTorch).\n");
            return 0;
        }
        if (strcmp(argv[i], "--json") == 0 || strncmp(argv[i], "--json=", 7) == 0) {
            const char *name = argv[i][6] == '=' ? argv[i] + 7 : i + 1 < argc ? argv[++i] : NULL;
            json = name ? net_find(name) : NULL;
            if (!json) {
                char names[256];
                fprintf(stderr, "ampbench: nets: --json: %s%s%s (known: %s)\n",
                        name ? "unknown network '" : "missing value NAME", name ? name : "",
                        name ? "'" : "", net_names(names, sizeof names));
                return AMP_EINPUT;
            }
            continue;
        }
        char *end;
        const unsigned long v = i + 1 < argc ? strtoul(argv[i + 1], &end, 10) : 0;
        if (strcmp(argv[i], "--channels") == 0 && i + 1 < argc && *end == '\0' && v >= 1 &&
            v <= 4096) {
            shape.channels = (uint32_t)v;
            i++;
            continue;
        }
        fprintf(stderr, "ampbench: nets: %s: unknown option or bad value (see --help)\n", argv[i]);
        return AMP_EINPUT;
    }
    if (json) {
        cJSON *t = bench_net_table(json, &shape);
        char *text = t ? cJSON_Print(t) : NULL;
        cJSON_Delete(t);
        if (!text) {
            fprintf(stderr, "ampbench: nets: out of host memory\n");
            return AMP_ENOMEM;
        }
        printf("%s\n", text);
        cJSON_free(text);
        return 0;
    }
    for (size_t i = 0; i < net_count(); i++) {
        int rc = print_net(net_at(i), &shape);
        if (rc != AMP_OK)
            return runner_report_error(rc);
    }
    return 0;
}
