/* Cross-check against PyTorch (an independent oracle), without PyTorch: the fixtures
 * tests/fixtures/torch_crosscheck.json (the seed network) and torch_crosscheck_<net>.json (other
 * presets) were written by tools/torch_crosscheck.py from ampbench's exported layer table and
 * init. ampbench's FP32 first-step loss and gradients must match each within 1e-4 and the first
 * 20 step losses within 1e-3 (relative), batch norm running statistics after the 20 steps within
 * 1e-4; the init and the batch order must be the ones the fixture was made from. Relative errors
 * of a tensor: max_i |a_i - b_i| / max_i |b_i|. AMPBENCH_FIXTURE_VERBOSE=1 prints every step's. */
#include <cjson/cJSON.h>
#include <glob.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "registry.h"
#include "idx.h"
#include "model.h"
#include "train.h"

static int passed, failed;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (ok)
        passed++;
    else
        failed++;
    fprintf(ok ? stdout : stderr, ok ? "ok: " : "FAIL: ");
    vfprintf(ok ? stdout : stderr, fmt, ap);
    fprintf(ok ? stdout : stderr, "\n");
    va_end(ap);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n)
        buf[n] = '\0';
    else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static double num(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key)->valuedouble;
}

/* The batch norm running statistics after the steps ("<layer>.running_mean", "running_var"):
 * every buffer of the model in the fixture, each within 1e-4 (relative, per tensor). */
static void check_running_stats(const cJSON *fx, struct model *net, const char *tag)
{
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(fx, "bn_running_stats");
    if (!want && model_nbuffers(net) == 0)
        return;
    check(cJSON_GetArraySize(want) == (int)model_nbuffers(net),
          "%s: %zu batch norm running statistics, %d in the fixture", tag, model_nbuffers(net),
          cJSON_GetArraySize(want));
    double worst = 0.0;
    const char *worst_name = "-";
    int all_read = 1;
    for (size_t i = 0; i < model_nbuffers(net); i++) {
        struct model_param b;
        model_buffer(net, i, &b);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(want, b.name);
        float *host = malloc(b.numel * sizeof *host);
        const int read = host && v && cJSON_GetArraySize(v) == (int)b.numel &&
                         model_read(net, b.stored, host) == AMP_OK;
        all_read &= read;
        double maxdiff = 0.0, maxref = 0.0;
        for (size_t k = 0; read && k < b.numel; k++) {
            const double r = cJSON_GetArrayItem(v, (int)k)->valuedouble;
            maxdiff = fmax(maxdiff, fabs(host[k] - r));
            maxref = fmax(maxref, fabs(r));
        }
        free(host);
        const double rel = maxref > 0 ? maxdiff / maxref : maxdiff;
        if (rel >= worst) {
            worst = rel;
            worst_name = b.name;
        }
    }
    check(all_read && worst <= 1e-4,
          "%s: batch norm running statistics after %d steps: worst relative error %.2e (%s; "
          "limit 1e-4)", tag, cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(fx, "losses")),
          worst, worst_name);
}

/* Checks one fixture; its network is config "net" (default seed). */
static void check_fixture(const char *path)
{
    char *text = slurp(path);
    cJSON *fx = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!fx) {
        check(0, "%s: missing or malformed fixture", path);
        return;
    }
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(fx, "config");
    const cJSON *net_name = cJSON_GetObjectItemCaseSensitive(cfg, "net");
    const struct net_preset *preset = cJSON_IsString(net_name) ? net_find(net_name->valuestring)
                                                               : net_default();
    if (!preset) {
        check(0, "%s: unknown net '%s'", path, net_name->valuestring);
        cJSON_Delete(fx);
        return;
    }
    const char *tag = preset->name;
    printf("%s (--net %s)\n", path, tag);
    const uint32_t batch = (uint32_t)num(cfg, "batch"), channels = (uint32_t)num(cfg, "channels");
    const float lr = (float)num(cfg, "lr"), momentum = (float)num(cfg, "momentum");
    const size_t train_n = (size_t)num(cfg, "train_samples");

    const char *dir = dataset_default_dir();
    struct dataset d;
    if (!dir || dataset_load(dir, "train", 10, train_n, &d) != AMP_OK) {
        check(0, "no Fashion-MNIST: %s", dir ? amp_last_error() : "not installed");
        cJSON_Delete(fx);
        return;
    }
    struct backend be;
    struct model *net;
    const struct model_shape shape = { .batch = batch, .c_in = d.c, .h = d.h, .w = d.w,
                                       .classes = d.classes, .channels = channels };
    const struct precision_plan fp32 = precision_plan_of(recipe_reference(), POLICY_SEED);
    struct rng rng;
    rng_seed(&rng, (uint64_t)num(cfg, "seed"));
    if (backend_open(&be, "cpu", &(struct backend_options){ .threads = 2 }) != AMP_OK) {
        check(0, "%s: %s", tag, amp_last_error());
        dataset_free(&d);
        cJSON_Delete(fx);
        return;
    }
    if (model_create(&net, &be, preset, &shape, &fp32, SCALING_NONE, NULL) != AMP_OK ||
        model_init(net, &rng) != AMP_OK) {
        check(0, "%s: %s", tag, amp_last_error());
        backend_close(&be);
        dataset_free(&d);
        cJSON_Delete(fx);
        return;
    }

    /* The init the fixture was made from (the first values of every parameter). */
    const cJSON *init = cJSON_GetObjectItemCaseSensitive(fx, "init_check");
    int same_init = cJSON_GetArraySize(init) == (int)model_nparams(net);
    for (size_t p = 0; p < model_nparams(net); p++) {
        struct model_param mp;
        model_param(net, p, &mp);
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(init, mp.name);
        same_init &= want != NULL;
        float *host = malloc(mp.numel * sizeof *host);
        same_init &= host && model_read(net, mp.stored, host) == AMP_OK;
        for (int i = 0; host && i < cJSON_GetArraySize(want); i++)
            same_init &= host[i] == (float)cJSON_GetArrayItem(want, i)->valuedouble;
        free(host);
    }
    check(same_init, "%s: ampbench's init from the seed is the fixture's (else regenerate the "
                     "fixture)", tag);

    /* The batch order, then 20 steps. */
    uint32_t *order = malloc(d.n * sizeof *order);
    struct rng shuffle;
    train_shuffle_stream(&shuffle, (uint64_t)num(cfg, "seed"));
    for (size_t i = 0; i < d.n; i++)
        order[i] = (uint32_t)i;
    rng_shuffle(&shuffle, order, d.n);
    const cJSON *batches = cJSON_GetObjectItemCaseSensitive(fx, "batches");
    const cJSON *losses = cJSON_GetObjectItemCaseSensitive(fx, "losses");
    const int steps = cJSON_GetArraySize(losses);
    float *images = malloc((size_t)batch * d.c * d.h * d.w * sizeof *images);
    int32_t *labels = malloc(batch * sizeof *labels);
    int same_order = 1;
    double worst_loss = 0.0;
    const int verbose = getenv("AMPBENCH_FIXTURE_VERBOSE") != NULL;
    for (int s = 0; s < steps; s++) {
        const cJSON *idx = cJSON_GetArrayItem(batches, s);
        const uint32_t n = (uint32_t)cJSON_GetArraySize(idx);
        for (uint32_t i = 0; i < n; i++)
            same_order &= (double)order[(size_t)s * batch + i] ==
                          cJSON_GetArrayItem(idx, (int)i)->valuedouble;
        dataset_gather(&d, order + (size_t)s * batch, n, images, labels);
        struct step_result sr;
        model_set_batch(net, images, labels, n);
        model_train_step(net, n, lr, momentum, &sr);
        const double mine = sr.loss_sum / n, torch = cJSON_GetArrayItem(losses, s)->valuedouble;
        const double rel = fabs(mine - torch) / fabs(torch);
        if (verbose)
            printf("  step %d: loss %.9f, PyTorch %.9f, relative error %.2e\n", s + 1, mine,
                   torch, rel);
        if (rel > worst_loss)
            worst_loss = rel;
        if (s > 0)
            continue;
        const cJSON *first = cJSON_GetObjectItemCaseSensitive(fx, "first_step");
        const double l0 = num(first, "loss");
        check(fabs(mine - l0) / fabs(l0) <= 1e-4, "%s: first-step loss %.8f vs PyTorch %.8f", tag,
              mine, l0);
        const cJSON *grads = cJSON_GetObjectItemCaseSensitive(first, "grads");
        for (size_t p = 0; p < model_nparams(net); p++) {
            struct model_param mp;
            model_param(net, p, &mp);
            const cJSON *g = cJSON_GetObjectItemCaseSensitive(grads, mp.name);
            float *a = malloc(mp.numel * sizeof *a);
            double maxdiff = 0.0, maxref = 0.0;
            const int read = a && model_read(net, mp.grad, a) == AMP_OK;
            for (int i = 0; read && i < cJSON_GetArraySize(g) && i < (int)mp.numel; i++) {
                const double b = cJSON_GetArrayItem(g, i)->valuedouble;
                maxdiff = fmax(maxdiff, fabs(a[i] - b));
                maxref = fmax(maxref, fabs(b));
            }
            free(a);
            const double rel_g = maxref > 0 ? maxdiff / maxref : maxdiff;
            check(read && cJSON_GetArraySize(g) == (int)mp.numel && rel_g <= 1e-4,
                  "%s: first-step gradient of %s: relative error %.2e (limit 1e-4)", tag, mp.name,
                  rel_g);
        }
    }
    check(same_order, "%s: ampbench's batch order is the fixture's", tag);
    check(steps == 20 && worst_loss <= 1e-3,
          "%s: %d step losses: worst relative error %.2e (limit 1e-3)", tag, steps, worst_loss);
    check_running_stats(fx, net, tag);

    /* bf16 under the autocast policy against PyTorch's CPU autocast (bfloat16), for the seed
     * network: the same semantics (BF16 inputs, FP32 accumulation, BF16 outputs), so the losses
     * agree up to summation order (measured 1.3e-7), while BF16 moves them about 1e-4 away from
     * FP32's: a limit of 1e-5 fails a recipe that did not really round to BF16. (The other
     * fixtures record PyTorch's autocast losses for reference only.) */
    if (preset == net_default()) {
        struct model *lp;
        const struct precision_plan bf16 = precision_plan_of(recipe_find("bf16"), POLICY_AUTOCAST);
        rng_seed(&rng, (uint64_t)num(cfg, "seed"));
        const cJSON *bf16_losses = cJSON_GetObjectItemCaseSensitive(fx, "autocast_bf16_losses");
        double worst_bf16 = 0.0;
        if (model_create(&lp, &be, preset, &shape, &bf16, SCALING_NONE, NULL) == AMP_OK &&
            model_init(lp, &rng) == AMP_OK) {
            for (int s = 0; s < steps; s++) {
                dataset_gather(&d, order + (size_t)s * batch, batch, images, labels);
                struct step_result sr;
                model_set_batch(lp, images, labels, batch);
                model_train_step(lp, batch, lr, momentum, &sr);
                const double torch = cJSON_GetArrayItem(bf16_losses, s)->valuedouble;
                worst_bf16 = fmax(worst_bf16, fabs(sr.loss_sum / batch - torch) / fabs(torch));
            }
            model_destroy(lp);
        }
        check(worst_bf16 <= 1e-5,
              "%s: bf16 autocast step losses vs PyTorch CPU autocast: worst relative error %.2e "
              "(limit 1e-5; FP32 vs BF16 differ by 1e-4)", tag, worst_bf16);
    }
    free(images);
    free(labels);
    free(order);
    model_destroy(net);
    backend_close(&be);
    dataset_free(&d);
    cJSON_Delete(fx);
}

/* The fixtures: the ones named, and with one, its siblings torch_crosscheck_<net>.json too. */
int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FIXTURE [FIXTURE...]\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++)
        check_fixture(argv[i]);
    if (argc == 2) {
        char pattern[4096];
        const char *slash = strrchr(argv[1], '/');
        snprintf(pattern, sizeof pattern, "%.*storch_crosscheck_*.json",
                 slash ? (int)(slash - argv[1] + 1) : 0, argv[1]);
        glob_t g;
        if (glob(pattern, 0, NULL, &g) == 0) {
            for (size_t i = 0; i < g.gl_pathc; i++)
                check_fixture(g.gl_pathv[i]);
            globfree(&g);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
