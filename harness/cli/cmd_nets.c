/* `ampbench nets`: every network preset with its layers, parameter count, FLOPs per training
 * sample and activation bytes per sample, at Fashion-MNIST's shape (1 x 28 x 28, 10 classes) and
 * --channels 16 in FP32, or at the shape and --channels given; `ampbench nets --json NAME` prints
 * one preset's layer table as JSON (bench_net_table: what tools/torch_bench.py builds). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_report.h"
#include "cli.h"
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

struct nets_options {
    struct model_shape *shape;
    const struct net_preset *json;
};

static int set_channels(void *ctx, const char *flag, const char *value)
{
    struct nets_options *o = ctx;
    uint64_t v = 0;
    const int rc = cli_parse_uint(flag, value, 1, 4096, &v);
    if (rc == AMP_OK)
        o->shape->channels = (uint32_t)v;
    return rc;
}

static int set_json(void *ctx, const char *flag, const char *value)
{
    struct nets_options *o = ctx;
    o->json = net_find(value);
    if (o->json)
        return AMP_OK;
    char names[256];
    return amp_fail(AMP_EINPUT, "%s: unknown network '%s' (known: %s)", flag, value,
                    net_names(names, sizeof names));
}

static const struct cli_extra_opt nets_opts[] = {
    { "--channels", "N", "the width a preset leaves open (default 16)", set_channels },
    { "--json", "NAME", "one preset's layer table as JSON", set_json },
};

int cmd_nets(int argc, char **argv, const char *command_line)
{
    (void)command_line;
    struct model_shape shape = { .batch = 1, .c_in = 1, .h = 28, .w = 28, .classes = 10,
                                 .channels = 16 };
    struct nets_options o = { .shape = &shape, .json = NULL };
    const struct cli_extras extras = { nets_opts, sizeof nets_opts / sizeof nets_opts[0], &o };
    const int rc = cli_parse_extras(argc, argv, &extras);
    if (rc < 0) {
        printf("usage: ampbench nets [--channels N] [--json NAME]\n\nLists the network "
               "presets (--net) with their layers, parameters, FLOPs per training sample\n"
               "(forward and backward multiply-adds) and activation bytes per sample, in "
               "FP32, for 1 x 28 x 28 images and 10 classes.\n"
               "--json NAME prints preset NAME's layer table as JSON instead (kinds, widths "
               "resolved, conv geometry,\nbias, init, the input and skip edges by name: "
               "what tools/torch_bench.py builds in PyTorch).\n");
        return 0;
    }
    if (rc != AMP_OK)
        return runner_report_error(rc);
    const struct net_preset *json = o.json;
    if (json) {
        cJSON *t = bench_net_table(json, &shape);
        char *text = t ? cJSON_Print(t) : NULL;
        cJSON_Delete(t);
        if (!text) {
            return runner_report_error(amp_fail(AMP_ENOMEM, "nets: out of host memory"));
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
