/* `ampbench export-init`: the network's layer table, the initial FP32 weights and the first
 * batches' sample indices of a configuration, as JSON, so that another framework
 * (tools/torch_crosscheck.py) can build the same network and train it from the same start on
 * the same batches. The layer table ("net") is bench_net_table's, the one `ampbench nets --json`
 * prints and tools/torch_bench.py builds. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_report.h"
#include "cli.h"
#include "commands.h"
#include "error.h"
#include "jsonfile.h"
#include "model.h"
#include "runner.h"
#include "train.h"

/* Batches exported: enough for the 20-step loss comparison. */
enum { EXPORT_BATCHES = 20 };

static cJSON *floats(const float *v, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        char text[32];
        snprintf(text, sizeof text, "%.9g", v[i]); /* round-trips FP32 exactly */
        cJSON_AddItemToArray(arr, cJSON_CreateRaw(text));
    }
    return arr;
}

static int export_init(const struct runner *r, const struct amp_config *c, cJSON *root)
{
    struct amp_config cpu = *c; /* the CPU reference defines the initial weights */
    cpu.device = "cpu";
    struct backend be;
    struct model *model;
    const struct model_shape shape = train_model_shape(c, &r->train, c->batch);
    const struct precision_plan fp32 = precision_plan_of(recipe_reference(), c->policy);
    int rc = train_open_model(&cpu, recipe_reference(), &fp32, &shape, &be, &model);
    if (rc != AMP_OK)
        return rc;
    cJSON *params = cJSON_AddObjectToObject(root, "params");
    for (size_t p = 0; p < model_nparams(model) && rc == AMP_OK; p++) {
        struct model_param mp;
        model_param(model, p, &mp);
        float *host = malloc(mp.numel * sizeof *host);
        rc = host ? model_read(model, mp.stored, host)
                  : amp_fail(AMP_ENOMEM, "out of host memory");
        if (rc == AMP_OK)
            cJSON_AddItemToObject(params, mp.name, floats(host, mp.numel));
        free(host);
    }
    train_close_model(&be, &model);
    return rc;
}

int cmd_export_init(int argc, char **argv, const char *command_line)
{
    struct amp_config c;
    struct runner r;
    int rc = runner_begin(&r, &c, argc, argv, command_line, CLI_EXPORT, "export-init");
    if (rc < 0) {
        runner_close(&r);
        return 0;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "tool", "ampbench-init");
    cJSON *cfg = cJSON_AddObjectToObject(root, "config");
    cJSON_AddStringToObject(cfg, "net", c.net->name);
    cJSON_AddNumberToObject(cfg, "seed", (double)c.seed);
    cJSON_AddNumberToObject(cfg, "batch", c.batch);
    cJSON_AddNumberToObject(cfg, "channels", c.channels);
    cJSON_AddNumberToObject(cfg, "lr", c.lr);
    cJSON_AddNumberToObject(cfg, "momentum", c.momentum);
    cJSON_AddNumberToObject(cfg, "train_samples", (double)r.train.n);
    cJSON_AddStringToObject(cfg, "data", r.data_dir ? r.data_dir : "");
    if (rc == AMP_OK) {
        const struct model_shape shape = train_model_shape(&c, &r.train, c.batch);
        cJSON *net = bench_net_table(c.net, &shape);
        if (net)
            cJSON_AddItemToObject(root, "net", net);
        else
            rc = amp_fail(AMP_ENOMEM, "out of host memory");
    }
    if (rc == AMP_OK)
        rc = export_init(&r, &c, root);
    if (rc == AMP_OK) {
        /* The first epoch's order: the same seeded shuffle the training loop uses. */
        uint32_t *order = malloc(r.train.n * sizeof *order);
        if (!order)
            rc = amp_fail(AMP_ENOMEM, "out of host memory");
        else {
            struct rng shuffle;
            train_shuffle_stream(&shuffle, c.seed);
            for (size_t i = 0; i < r.train.n; i++)
                order[i] = (uint32_t)i;
            rng_shuffle(&shuffle, order, r.train.n);
            cJSON *batches = cJSON_AddArrayToObject(root, "batches");
            for (size_t b = 0; b < EXPORT_BATCHES && b * c.batch < r.train.n; b++) {
                const size_t first = b * c.batch;
                const size_t n = first + c.batch <= r.train.n ? c.batch : r.train.n - first;
                cJSON *idx = cJSON_CreateArray();
                for (size_t i = 0; i < n; i++)
                    cJSON_AddItemToArray(idx, cJSON_CreateNumber(order[first + i]));
                cJSON_AddItemToArray(batches, idx);
            }
            free(order);
        }
    }
    if (rc == AMP_OK)
        rc = json_write_in(r.dir, "init.json", root);
    cJSON_Delete(root);
    if (rc == AMP_OK)
        printf("initial weights and the first batches written to %s/init.json\n", r.dir);
    runner_close(&r);
    return rc == AMP_OK ? 0 : runner_report_error(rc);
}
