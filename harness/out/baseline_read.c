/* A baseline file read back: parsed strictly (jsonfile.h) and checked entry by entry, with no
 * other dependency, so that the fuzz target tests/fuzz_results.c drives exactly this code. */
#include "baseline.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "jsonfile.h"

/* Every epoch entry of every mode: {"epoch": e (1, 2, ... in order), "train_loss", "test_loss":
 * finite numbers, "test_acc" in [0, 1]}, checked before any training. */
static int check_modes(const cJSON *modes, const char *file)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, modes) {
        if (!cJSON_IsArray(m))
            return amp_fail(AMP_EINPUT, "%s: mode \"%.40s\" is not an array of epochs", file,
                            m->string);
        int e = 0;
        const cJSON *o;
        cJSON_ArrayForEach(o, m) {
            e++;
            static const char *const keys[] = { "epoch", "train_loss", "test_loss", "test_acc" };
            for (int k = 0; k < 4; k++) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, keys[k]);
                if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
                    return amp_fail(AMP_EINPUT, "%s: mode %.40s, epoch entry %d: \"%s\" is "
                                    "missing or not a finite number", file, m->string, e,
                                    keys[k]);
            }
            const double epoch = cJSON_GetObjectItemCaseSensitive(o, "epoch")->valuedouble;
            const double acc = cJSON_GetObjectItemCaseSensitive(o, "test_acc")->valuedouble;
            if (epoch != e)
                return amp_fail(AMP_EINPUT, "%s: mode %.40s, epoch entry %d says epoch %g", file,
                                m->string, e, epoch);
            if (acc < 0 || acc > 1)
                return amp_fail(AMP_EINPUT, "%s: mode %.40s, epoch %d: test_acc %g is outside "
                                "[0, 1]", file, m->string, e, acc);
        }
    }
    return AMP_OK;
}

int baseline_parse(struct baseline *b, const char *text, size_t len, const char *file)
{
    memset(b, 0, sizeof *b);
    cJSON *root;
    int rc = json_parse_strict(&root, text, len, file);
    if (rc != AMP_OK)
        return rc;
    const cJSON *tool = cJSON_GetObjectItemCaseSensitive(root, "tool");
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(root, "config");
    const cJSON *recipes = cJSON_GetObjectItemCaseSensitive(root, "modes");
    if (!cJSON_IsString(tool) || strcmp(tool->valuestring, "ampbench-baseline") != 0 ||
        !cJSON_IsObject(config) || !cJSON_IsObject(recipes))
        rc = amp_fail(AMP_EINPUT, "%s: valid JSON but not an ampbench baseline (no \"tool\": "
                                  "\"ampbench-baseline\", \"config\" or \"modes\" object)", file);
    if (rc == AMP_OK)
        rc = check_modes(recipes, file);
    b->file = rc == AMP_OK ? strdup(file) : NULL;
    if (rc == AMP_OK && !b->file)
        rc = amp_fail(AMP_ENOMEM, "out of memory reading %s", file);
    if (rc != AMP_OK) {
        cJSON_Delete(root);
        return rc;
    }
    b->root = root;
    return AMP_OK;
}

void baseline_close(struct baseline *b)
{
    cJSON_Delete(b->root);
    free(b->file);
    memset(b, 0, sizeof *b);
}
