/* `ampbench parity`: one training step and a second forward per recipe against fp32 from the
 * same weights and batch; prints per-tensor errors and the likely cause of a wrong step,
 * writes parity.json; exit 0 when every recipe is within its
 * tolerance, 1 when one is not, 2 on bad input. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "commands.h"
#include "error.h"
#include "jsonfile.h"
#include "parity.h"
#include "runner.h"

static int write_json(const char *dir, const struct amp_config *c,
                      const struct parity_result *res)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "tool", "ampbench-parity");
    cJSON_AddNumberToObject(root, "seed", (double)c->seed);
    cJSON_AddNumberToObject(root, "batch", c->batch);
    cJSON_AddStringToObject(root, "policy", policy_name(c->policy));
    cJSON *recipes = cJSON_AddObjectToObject(root, "modes");
    for (size_t i = 0; i < c->nrecipes; i++) {
        const struct parity_result *r = &res[i];
        cJSON *m = cJSON_AddObjectToObject(recipes, r->recipe->name);
        cJSON_AddBoolToObject(m, "pass", r->pass);
        cJSON_AddNumberToObject(m, "loss_scale", r->loss_scale);
        cJSON_AddBoolToObject(m, "skipped", r->skipped);
        if (r->diagnosis[0])
            cJSON_AddStringToObject(m, "cause", r->diagnosis);
        cJSON *ts = cJSON_AddObjectToObject(m, "tensors");
        for (size_t t = 0; t < r->ntensors; t++) {
            const struct parity_metrics *x = &r->t[t];
            cJSON *o = cJSON_AddObjectToObject(ts, x->name);
            cJSON_AddNumberToObject(o, "numel", (double)x->numel);
            cJSON_AddNumberToObject(o, "max_abs_err", x->max_abs);
            cJSON_AddNumberToObject(o, "max_rel_err", x->max_rel);
            cJSON_AddNumberToObject(o, "rel_l2_err", x->rel_l2);
            cJSON_AddNumberToObject(o, "cosine", x->cosine);
            if (isfinite(x->sqnr_db))
                cJSON_AddNumberToObject(o, "sqnr_db", x->sqnr_db);
            else
                cJSON_AddNullToObject(o, "sqnr_db");
            cJSON_AddBoolToObject(o, "nonfinite", x->nonfinite);
            cJSON_AddNumberToObject(o, "limit", x->limit);
            cJSON_AddBoolToObject(o, "pass", x->pass);
        }
    }
    const int rc = json_write_in(dir, "parity.json", root);
    cJSON_Delete(root);
    return rc;
}

static void print_results(const struct amp_config *c, const struct parity_result *res)
{
    printf("\n  %-12s %-20s %8s %11s %11s %11s %8s %12s %9s  %s\n", "mode", "tensor", "numel",
           "max_abs", "max_rel", "rel_l2", "sqnr_dB", "1-cosine", "limit", "verdict");
    for (size_t i = 0; i < c->nrecipes; i++) {
        const struct parity_result *r = &res[i];
        for (size_t t = 0; t < r->ntensors; t++) {
            const struct parity_metrics *x = &r->t[t];
            printf("  %-12s %-20s %8zu %11.3e %11.3e %11.3e %8.1f %12.3e %9.2e  %s\n",
                   t ? "" : r->recipe->name, x->name, x->numel, x->max_abs, x->max_rel,
                   x->rel_l2, x->sqnr_db, 1.0 - x->cosine, x->limit,
                   x->pass ? "ok" : x->nonfinite ? "FAIL (inf/NaN)" : "FAIL");
        }
        if (r->skipped)
            printf("  %-12s the loss scale %g overflowed: the step would be skipped\n", "",
                   r->loss_scale);
        if (r->diagnosis[0])
            printf("  %-12s FAIL cause: %s\n", "", r->diagnosis);
    }
}

int cmd_parity(int argc, char **argv, const char *command_line)
{
    struct amp_config c;
    struct runner r;
    int rc = runner_begin(&r, &c, argc, argv, command_line, CLI_PARITY, "parity");
    if (rc < 0) {
        runner_close(&r);
        return 0;
    }
    struct parity_result *res = calloc(c.nrecipes, sizeof *res);
    if (rc == AMP_OK && !res)
        rc = amp_fail(AMP_ENOMEM, "out of host memory");
    if (rc == AMP_OK)
        rc = parity_run(&c, &r.train, res);
    int all = rc == AMP_OK;
    if (rc == AMP_OK) {
        print_results(&c, res);
        for (size_t i = 0; i < c.nrecipes; i++)
            all &= res[i].pass;
        rc = write_json(r.dir, &c, res);
    }
    if (rc == AMP_OK)
        printf("\nparity: %s; written to %s/parity.json\n",
               all ? "every recipe within tolerance" : "FAILED", r.dir);
    for (size_t i = 0; res && i < c.nrecipes; i++)
        parity_result_free(&res[i]);
    free(res);
    runner_close(&r);
    if (rc != AMP_OK)
        return runner_report_error(rc);
    return all ? 0 : AMP_EFAIL;
}
