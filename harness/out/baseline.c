/* The baseline file: written from a run's first seeds, read back and checked against the run's
 * configuration, and compared with a run epoch by epoch (tolerances of docs/VERIFICATION.md). */
#include "baseline.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "files.h"
#include "jsonfile.h"
#include "results.h"

#define MAX_BASELINE_BYTES (64u << 20) /* a baseline larger than this is refused */

/* The configuration keys a baseline must share with the run compared to it. */
static cJSON *baseline_config(const struct amp_config *c, size_t train_samples,
                              size_t test_samples)
{
    cJSON *j = cJSON_CreateObject();
    results_protocol_json(j, c);
    cJSON_AddNumberToObject(j, "train_samples", (double)train_samples);
    cJSON_AddNumberToObject(j, "test_samples", (double)test_samples);
    cJSON_AddStringToObject(j, "policy", policy_name(c->policy));
    cJSON_AddNumberToObject(j, "loss_scale", c->loss_scale);
    cJSON_AddNumberToObject(j, "scale_init", c->scale_init);
    cJSON_AddNumberToObject(j, "scale_growth_interval", c->scale_growth_interval);
    cJSON_AddNumberToObject(j, "scale_min", c->scale_min);
    cJSON_AddNumberToObject(j, "scale_max", c->scale_max);
    return j;
}

/* The first seed's run of each recipe. */
static const struct recipe_result *first_run(const struct recipe *m,
                                           const struct recipe_result *results, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (results[i].recipe == m)
            return &results[i];
    return NULL;
}

int baseline_write(const char *file, const struct amp_config *c, size_t train_samples,
                   size_t test_samples, const struct recipe_result *results, size_t nresults)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "tool", "ampbench-baseline");
    cJSON_AddNumberToObject(root, "format", 1);
    cJSON_AddItemToObject(root, "config", baseline_config(c, train_samples, test_samples));
    cJSON *recipes = cJSON_AddObjectToObject(root, "modes");
    for (size_t i = 0; i < c->nrecipes; i++) {
        const struct recipe_result *r = first_run(c->recipes[i], results, nresults);
        cJSON *arr = cJSON_AddArrayToObject(recipes, c->recipes[i]->name);
        for (uint32_t e = 0; r && e < r->nepochs; e++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "epoch", r->epochs[e].epoch);
            cJSON_AddNumberToObject(o, "train_loss", r->epochs[e].train_loss);
            cJSON_AddNumberToObject(o, "test_loss", r->epochs[e].test_loss);
            cJSON_AddNumberToObject(o, "test_acc", r->epochs[e].test_acc);
            cJSON_AddItemToArray(arr, o);
        }
    }
    const int rc = json_write_file(file, root);
    cJSON_Delete(root);
    return rc;
}

static int add_move(struct verification *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int add_move(struct verification *v, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char **grown = realloc(v->moves, (v->nmoves + 1) * sizeof *grown);
    char *copy = strdup(line);
    if (!grown || !copy) {
        free(copy);
        if (grown)
            v->moves = grown;
        return amp_fail(AMP_ENOMEM, "out of memory comparing with the baseline");
    }
    v->moves = grown;
    v->moves[v->nmoves++] = copy;
    return AMP_OK;
}

/* The differing configuration keys of the baseline and the run, as "key (baseline X, run Y)". */
static void config_diff(const cJSON *base, const cJSON *run, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    const cJSON *item;
    cJSON_ArrayForEach(item, run)
    {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(base, item->string);
        char *bs = b ? cJSON_PrintUnformatted(b) : NULL, *rs = cJSON_PrintUnformatted(item);
        if (!b || !bs || !rs || strcmp(bs, rs) != 0)
            used += (size_t)snprintf(out + used, used < len ? len - used : 0,
                                     "%s%s (baseline %s, run %s)", used ? ", " : "",
                                     item->string, bs ? bs : "missing", rs ? rs : "?");
        cJSON_free(bs);
        cJSON_free(rs);
        if (used >= len)
            break;
    }
}

static int compare_recipe(struct verification *v, const char *file, const struct recipe *m,
                        const struct recipe_result *r, const cJSON *arr)
{
    struct verdict *vd = NULL;
    for (size_t i = 0; i < v->n; i++)
        if (v->verdicts[i].recipe == m)
            vd = &v->verdicts[i];
    int rc = AMP_OK;
    const uint32_t epochs = (uint32_t)cJSON_GetArraySize(arr);
    if (r->nepochs != epochs) {
        rc = add_move(v, "%s: %u epochs completed, baseline has %u", m->name, r->nepochs, epochs);
        if (vd)
            vd->baseline_moved++;
    }
    for (uint32_t e = 0; e < r->nepochs && e < epochs && rc == AMP_OK; e++) {
        const cJSON *o = cJSON_GetArrayItem(arr, (int)e);
        const cJSON *acc = cJSON_GetObjectItemCaseSensitive(o, "test_acc");
        const cJSON *tl = cJSON_GetObjectItemCaseSensitive(o, "test_loss");
        const cJSON *trl = cJSON_GetObjectItemCaseSensitive(o, "train_loss");
        if (!cJSON_IsNumber(acc) || !cJSON_IsNumber(tl) || !cJSON_IsNumber(trl))
            return amp_fail(AMP_EINPUT, "%s: malformed epoch %u of mode %s", file, e + 1, m->name);
        const struct epoch_metrics *me = &r->epochs[e];
        const double dacc = 100.0 * (me->test_acc - acc->valuedouble);
        if (fabs(dacc) > v->tol_acc) {
            rc = add_move(v, "%s epoch %u test_acc %.4f -> %.4f (%+.2f pp, tolerance %.2f pp)",
                          m->name, e + 1, acc->valuedouble, me->test_acc, dacc, v->tol_acc);
            if (vd)
                vd->baseline_moved++;
        }
        const double base_loss[2] = { tl->valuedouble, trl->valuedouble };
        const double run_loss[2] = { me->test_loss, me->train_loss };
        static const char *const names[2] = { "test_loss", "train_loss" };
        for (int k = 0; k < 2 && rc == AMP_OK; k++) {
            const double rel = (run_loss[k] - base_loss[k]) / base_loss[k];
            if (fabs(rel) > v->tol_loss || !isfinite(rel)) {
                rc = add_move(v, "%s epoch %u %s %.4f -> %.4f (%+.1f%%, tolerance %.1f%%)",
                              m->name, e + 1, names[k], base_loss[k], run_loss[k], 100.0 * rel,
                              100.0 * v->tol_loss);
                if (vd)
                    vd->baseline_moved++;
            }
        }
    }
    return rc;
}

int baseline_open(struct baseline *b, const char *file, const struct amp_config *c,
                  size_t train_samples, size_t test_samples)
{
    memset(b, 0, sizeof *b);
    char *text;
    size_t len;
    int rc = file_read_all(&text, &len, file, MAX_BASELINE_BYTES);
    if (rc != AMP_OK)
        return rc;
    rc = baseline_parse(b, text, len, file);
    free(text);
    if (rc != AMP_OK)
        return rc;
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(b->root, "config");
    const cJSON *recipes = cJSON_GetObjectItemCaseSensitive(b->root, "modes");
    cJSON *mine = baseline_config(c, train_samples, test_samples);
    char diff[1024];
    config_diff(config, mine, diff, sizeof diff);
    cJSON_Delete(mine);
    if (diff[0])
        rc = amp_fail(AMP_EINPUT, "%s: baseline of another configuration: %s", file, diff);
    for (size_t i = 0; i < c->nrecipes && rc == AMP_OK; i++)
        if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(recipes, c->recipes[i]->name)))
            rc = amp_fail(AMP_EINPUT, "%s: no baseline for mode %s (regenerate it with "
                                      "--write-baseline)", file, c->recipes[i]->name);
    if (rc != AMP_OK)
        baseline_close(b);
    return rc;
}


int baseline_compare(struct verification *v, const struct baseline *b,
                     const struct amp_config *c, const struct recipe_result *results,
                     size_t nresults)
{
    const cJSON *recipes = cJSON_GetObjectItemCaseSensitive(b->root, "modes");
    v->baseline = strdup(b->file);
    int rc = v->baseline ? AMP_OK : amp_fail(AMP_ENOMEM, "out of memory");
    for (size_t i = 0; i < c->nrecipes && rc == AMP_OK; i++) {
        const struct recipe_result *r = first_run(c->recipes[i], results, nresults);
        if (r)
            rc = compare_recipe(v, b->file, c->recipes[i], r,
                              cJSON_GetObjectItemCaseSensitive(recipes, c->recipes[i]->name));
    }
    for (size_t i = 0; i < v->n && rc == AMP_OK; i++) {
        struct verdict *vd = &v->verdicts[i];
        if (!vd->baseline_moved)
            continue;
        vd->pass = 0;
        v->all_pass = 0;
        char extra[64];
        snprintf(extra, sizeof extra, "; %d metric%s moved against the baseline",
                 vd->baseline_moved, vd->baseline_moved == 1 ? "" : "s");
        strncat(vd->reason, extra, sizeof vd->reason - strlen(vd->reason) - 1);
    }
    return rc;
}
