/* Command-line parsing of the run options: one table of flags drives parsing, validation and
 * the help text. */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "registry.h"
#include "error.h"

enum opt_type {
    OPT_U32, OPT_U64, OPT_SIZE, OPT_INT, OPT_FLOAT, OPT_STRING, OPT_RECIPES, OPT_POLICY, OPT_NET,
    OPT_MX_SCALE, OPT_ALLREDUCE,
    OPT_SET, /* a flag without a value: sets the int field to `min` */
    OPT_RANGE, /* A:B, 1 <= A <= B, into profile_first/profile_last */
};

struct opt {
    const char *flag;
    const char *metavar;
    enum opt_type type;
    size_t offset;     /* field in struct amp_config */
    double min, max;   /* accepted range for numbers */
    const char *help;
    int verify_only;   /* accepted by `verify` only */
};

#define FIELD(f) offsetof(struct amp_config, f)

static const struct opt run_opts[] = {
    { "--modes", "LIST", OPT_RECIPES, 0, 0, 0, "comma-separated recipes (default: fp32,amp,amp-static,amp-noscale,bf16)", 0 },
    { "--net", "NAME", OPT_NET, 0, 0, 0, "network preset (default seed; `ampbench nets` lists them)", 0 },
    { "--policy", "NAME", OPT_POLICY, 0, 0, 0, "seed (conv low precision), autocast (conv+FC; BN and loss FP32) or naive (all low precision) (default seed)", 0 },
    { "--epochs", "N", OPT_U32, FIELD(epochs), 1, 100000, "training epochs (default 5; verify: the preset's protocol, see `ampbench nets`)", 0 },
    { "--batch", "N", OPT_U32, FIELD(batch), 1, 1 << 20, "batch size (default 32)", 0 },
    { "--lr", "X", OPT_FLOAT, FIELD(lr), 0, 1e6, "SGD learning rate (default 0.01)", 0 },
    { "--momentum", "X", OPT_FLOAT, FIELD(momentum), 0, 1, "SGD momentum, in [0, 1) (default 0.9)", 0 },
    { "--channels", "N", OPT_U32, FIELD(channels), 1, 4096, "width the preset leaves open: the seed network's conv channels (default 16)", 0 },
    { "--seed", "N", OPT_U64, FIELD(seed), 0, 0, "seed of init and shuffling (default 1)", 0 },
    { "--train-limit", "N", OPT_SIZE, FIELD(train_limit), 1, 0, "use the first N training samples (default all)", 0 },
    { "--test-limit", "N", OPT_SIZE, FIELD(test_limit), 1, 0, "use the first N test samples (default all)", 0 },
    { "--data", "DIR", OPT_STRING, FIELD(data_dir), 0, 0, "IDX data directory (default: $AMPBENCH_DATA, else Debian's Fashion-MNIST)", 0 },
    { "--out", "DIR", OPT_STRING, FIELD(out_dir), 0, 0, "results folder to create (default results/runs/<timestamp>-<id>)", 0 },
    { "--threads", "N", OPT_INT, FIELD(threads), 1, 1024, "CPU threads (default: all cores)", 0 },
    { "--device", "NAME", OPT_STRING, FIELD(device), 0, 0, "backend: auto (cuda when a GPU is usable, else cpu), cpu or cuda (default: $AMPBENCH_DEVICE, else auto)", 0 },
    { "--loss-scale", "S", OPT_FLOAT, FIELD(loss_scale), 0x1p-24, 0x1p64, "amp-static's fixed loss scale (default 1024)", 0 },
    { "--scale-init", "S", OPT_FLOAT, FIELD(scale_init), 0x1p-24, 0x1p64, "dynamic loss scale at the start (default 65536)", 0 },
    { "--scale-growth-interval", "N", OPT_U32, FIELD(scale_growth_interval), 1, 1e9, "clean steps before the scale doubles (default 2000)", 0 },
    { "--scale-min", "S", OPT_FLOAT, FIELD(scale_min), 0, 0x1p64, "lower bound of the dynamic scale (default none)", 0 },
    { "--scale-max", "S", OPT_FLOAT, FIELD(scale_max), 0, 0x1p64, "upper bound of the dynamic scale (default none)", 0 },
    { "--amax-history", "N", OPT_U32, FIELD(amax_history), 1, 100000, "fp8-delayed: steps of amax history the scale is taken from (default 1024)", 0 },
    { "--mx-scale", "NAME", OPT_MX_SCALE, 0, 0, 0, "mxfp8: block scale rounding, rceil (cuBLAS, Transformer Engine) or floor (the OCP MX spec) (default rceil)", 0 },
    { "--deterministic", "", OPT_SET, FIELD(deterministic), 1, 0, "deterministic algorithms only (the CPU backend always is)", 0 },
    { "--no-graph", "", OPT_SET, FIELD(graphs), 0, 0, "do not capture the training step in a CUDA Graph", 0 },
    { "--profile-steps", "A:B", OPT_RANGE, 0, 0, 0, "profile steps A..B of each mode (cudaProfilerStart/Stop; see docs/PROFILING.md)", 0 },
    { "--data-parallel", "", OPT_SET, FIELD(data_parallel), 1, 0, "under mpirun/srun: the ranks train one model, each on its shard of every batch (docs/DISTRIBUTED.md)", 0 },
    { "--allreduce-dtype", "NAME", OPT_ALLREDUCE, 0, 0, 0, "--data-parallel: the gradient all-reduce in fp32, bf16 or fp16 (scaled gradients; overflow counted) (default fp32)", 0 },
    { "--sync-bn", "", OPT_SET, FIELD(sync_bn), 1, 0, "--data-parallel: batch norm statistics over every rank's shard (default: per rank, as DDP)", 0 },
    { "--dist-timeout", "SECONDS", OPT_FLOAT, FIELD(dist_timeout), 0.1, 1e6, "under mpirun/srun: the longest a rank waits for the others before all exit with an error (default 600)", 0 },
    { "--no-progress", "", OPT_SET, FIELD(progress), 0, 0, "no live progress line (off anyway when stdout is not a terminal)", 0 },
    { "--tol-acc", "PP", OPT_FLOAT, FIELD(tol_acc), 0, 100, "verify: allowed drop of final test accuracy vs fp32, in percentage points (default 1.0)", 1 },
    { "--tol-loss", "REL", OPT_FLOAT, FIELD(tol_loss), 0, 1e6, "verify: allowed relative rise of any epoch's test loss vs fp32 (default 0.05)", 1 },
    { "--seeds", "N", OPT_U32, FIELD(seeds), 1, 1000, "verify: seeds per mode; >= 3 judges with a one-sided t-test paired by seed (default 1, or the preset's protocol)", 1 },
    { "--baseline", "FILE", OPT_STRING, FIELD(baseline), 0, 0, "verify: also compare every metric with this baseline file", 1 },
    { "--junit", "FILE", OPT_STRING, FIELD(junit), 0, 0, "verify: write a JUnit XML report (one test case per recipe)", 1 },
    { "--write-baseline", "FILE", OPT_STRING, FIELD(write_baseline), 0, 0, "verify: write this run's metrics as a baseline file", 1 },
};

void config_defaults(struct amp_config *c)
{
    memset(c, 0, sizeof *c);
    static const char *const default_recipes[] = { "fp32", "amp", "amp-static", "amp-noscale",
                                                  "bf16" };
    for (size_t i = 0; i < sizeof default_recipes / sizeof default_recipes[0]; i++)
        c->recipes[c->nrecipes++] = recipe_find(default_recipes[i]);
    c->net = net_default();
    c->epochs = 5;
    c->batch = 32;
    c->lr = 0.01f;
    c->momentum = 0.9f;
    c->channels = 16;
    c->seed = 1;
    const char *device = getenv("AMPBENCH_DEVICE");
    c->device = device && *device ? device : "auto";
    c->progress = -1;
    c->policy = POLICY_SEED;
    c->loss_scale = 1024.0f;
    c->scale_init = 65536.0f;
    c->scale_growth_interval = 2000;
    c->steps_csv = 1;
    c->graphs = 1;
    c->amax_history = FP8_AMAX_HISTORY_DEFAULT;
    c->mx_scale = MX_SCALE_RCEIL;
    c->dist_timeout = 600.0f;
    c->tol_acc = 1.0f;
    c->tol_loss = 0.05f;
    c->seeds = 1;
}

const char *allreduce_dtype_name(enum allreduce_dtype d)
{
    return d == ALLREDUCE_F16 ? "fp16" : d == ALLREDUCE_BF16 ? "bf16" : "fp32";
}

/* The extra option named by arg[0..flen), or NULL. */
static const struct cli_extra_opt *find_extra(const struct cli_extras *extra, const char *arg,
                                              size_t flen)
{
    for (size_t j = 0; extra && j < extra->n; j++)
        if (strlen(extra->opts[j].flag) == flen && strncmp(extra->opts[j].flag, arg, flen) == 0)
            return &extra->opts[j];
    return NULL;
}

void cli_print_options(FILE *f, enum cli_command cmd, const struct cli_extras *extra)
{
    for (size_t i = 0; i < sizeof run_opts / sizeof run_opts[0]; i++) {
        if ((run_opts[i].verify_only && cmd != CLI_VERIFY) ||
            find_extra(extra, run_opts[i].flag, strlen(run_opts[i].flag)))
            continue;
        char left[40];
        snprintf(left, sizeof left, "%s%s%s", run_opts[i].flag, run_opts[i].metavar[0] ? " " : "",
                 run_opts[i].metavar);
        fprintf(f, "  %-22s %s\n", left, run_opts[i].help);
    }
    for (size_t i = 0; extra && i < extra->n; i++) {
        char left[40];
        snprintf(left, sizeof left, "%s%s%s", extra->opts[i].flag,
                 extra->opts[i].metavar[0] ? " " : "", extra->opts[i].metavar);
        fprintf(f, "  %-22s %s\n", left, extra->opts[i].help);
    }
    fprintf(f, "  %-22s %s\n", "--help", "this help");
}

static int parse_recipes(const char *value, struct amp_config *c)
{
    char buf[512];
    if (strlen(value) >= sizeof buf)
        return amp_fail(AMP_EINPUT, "--modes: list too long");
    strcpy(buf, value);
    c->nrecipes = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        const struct recipe *r = recipe_find(tok);
        if (!r) {
            char names[256];
            return amp_fail(AMP_EINPUT, "--modes: unknown mode '%s' (known: %s)", tok,
                            recipe_names(names, sizeof names));
        }
        for (size_t i = 0; i < c->nrecipes; i++)
            if (c->recipes[i] == r)
                return amp_fail(AMP_EINPUT, "--modes: '%s' is listed twice", tok);
        if (c->nrecipes == CONFIG_MAX_RECIPES)
            return amp_fail(AMP_EINPUT, "--modes: more than %d modes", CONFIG_MAX_RECIPES);
        c->recipes[c->nrecipes++] = r;
    }
    if (c->nrecipes == 0)
        return amp_fail(AMP_EINPUT, "--modes: empty list");
    return AMP_OK;
}

int cli_parse_uint(const char *flag, const char *text, uint64_t min, uint64_t max,
                   uint64_t *out)
{
    if (text[0] < '0' || text[0] > '9')
        return amp_fail(AMP_EINPUT, "%s: '%s' is not a non-negative integer", flag, text);
    errno = 0;
    char *end;
    const unsigned long long v = strtoull(text, &end, 10);
    if (*end != '\0')
        return amp_fail(AMP_EINPUT, "%s: '%s' is not a non-negative integer", flag, text);
    if (errno == ERANGE)
        return amp_fail(AMP_EINPUT, "%s: '%s' is too large", flag, text);
    if (v < min || (max > 0 && v > max)) {
        if (max > 0)
            return amp_fail(AMP_EINPUT, "%s: %llu is out of range [%" PRIu64 ", %" PRIu64 "]",
                            flag, v, min, max);
        return amp_fail(AMP_EINPUT, "%s: must be at least %" PRIu64, flag, min);
    }
    *out = v;
    return AMP_OK;
}

static int set_option(const struct opt *o, const char *value, struct amp_config *c)
{
    char *base = (char *)c;
    uint64_t u = 0;
    int rc;
    switch (o->type) {
    case OPT_RECIPES:
        return parse_recipes(value, c);
    case OPT_SET:
        break;
    case OPT_RANGE: { /* A:B, each by the integer rule */
        const char *colon = strchr(value, ':');
        char first[32];
        uint64_t a = 0, b = 0;
        if (!colon || (size_t)(colon - value) >= sizeof first)
            return amp_fail(AMP_EINPUT, "%s: '%s' is not a step range A:B with 1 <= A <= B",
                            o->flag, value);
        snprintf(first, sizeof first, "%.*s", (int)(colon - value), value);
        rc = cli_parse_uint(o->flag, first, 1, 0, &a);
        if (rc == AMP_OK)
            rc = cli_parse_uint(o->flag, colon + 1, 1, 0, &b);
        if (rc == AMP_OK && b < a)
            rc = amp_fail(AMP_EINPUT, "%s: '%s': the last step is before the first", o->flag,
                          value);
        if (rc != AMP_OK)
            return rc;
        c->profile_first = a;
        c->profile_last = b;
        return AMP_OK;
    }
    case OPT_NET: {
        c->net = net_find(value);
        if (!c->net) {
            char names[256];
            return amp_fail(AMP_EINPUT, "--net: unknown network '%s' (known: %s)", value,
                            net_names(names, sizeof names));
        }
        return AMP_OK;
    }
    case OPT_POLICY: {
        const int p = policy_parse(value);
        if (p < 0)
            return amp_fail(AMP_EINPUT, "--policy: unknown policy '%s' (known: seed, autocast, naive)",
                            value);
        c->policy = (enum policy)p;
        return AMP_OK;
    }
    case OPT_MX_SCALE:
        if (strcmp(value, "rceil") != 0 && strcmp(value, "floor") != 0)
            return amp_fail(AMP_EINPUT, "--mx-scale: unknown rounding '%s' (known: rceil, floor)",
                            value);
        c->mx_scale = strcmp(value, "floor") == 0 ? MX_SCALE_FLOOR : MX_SCALE_RCEIL;
        return AMP_OK;
    case OPT_ALLREDUCE:
        for (int d = 0; d < 3; d++)
            if (strcmp(value, allreduce_dtype_name((enum allreduce_dtype)d)) == 0) {
                c->allreduce_dtype = (enum allreduce_dtype)d;
                c->allreduce_given = 1;
                return AMP_OK;
            }
        return amp_fail(AMP_EINPUT, "--allreduce-dtype: unknown type '%s' (known: fp32, bf16, fp16)",
                        value);
    case OPT_STRING:
        if (value[0] == '\0')
            return amp_fail(AMP_EINPUT, "%s: empty value", o->flag);
        *(const char **)(base + o->offset) = value;
        return AMP_OK;
    case OPT_FLOAT: {
        errno = 0;
        char *end;
        double v = strtod(value, &end);
        const int starts_ok = (value[0] >= '0' && value[0] <= '9') || value[0] == '.' ||
                              value[0] == '-' || value[0] == '+'; /* no leading space */
        if (!starts_ok || end == value || *end != '\0' || !isfinite(v) || errno == ERANGE)
            return amp_fail(AMP_EINPUT, "%s: '%s' is not a finite number", o->flag, value);
        if (v < o->min || v > o->max)
            return amp_fail(AMP_EINPUT, "%s: %g is out of range [%g, %g]", o->flag, v, o->min,
                            o->max);
        *(float *)(base + o->offset) = (float)v;
        return AMP_OK;
    }
    case OPT_U32:
    case OPT_U64:
    case OPT_SIZE:
    case OPT_INT:
        rc = cli_parse_uint(o->flag, value, (uint64_t)o->min, (uint64_t)o->max, &u);
        if (rc != AMP_OK)
            return rc;
        if (o->type == OPT_U32)
            *(uint32_t *)(base + o->offset) = (uint32_t)u;
        else if (o->type == OPT_U64)
            *(uint64_t *)(base + o->offset) = u;
        else if (o->type == OPT_SIZE)
            *(size_t *)(base + o->offset) = (size_t)u;
        else
            *(int *)(base + o->offset) = (int)u;
        return AMP_OK;
    }
    return amp_fail(AMP_EINPUT, "%s: unhandled option type", o->flag);
}

static int validate(const struct amp_config *c)
{
    const struct backend_ops *ops;
    int rc = backend_find(c->device, &ops);
    if (rc != AMP_OK)
        return rc;
    if (c->momentum >= 1.0f)
        return amp_fail(AMP_EINPUT, "--momentum: %g must be below 1", c->momentum);
    if (c->lr <= 0.0f)
        return amp_fail(AMP_EINPUT, "--lr: must be positive");
    if (!c->data_parallel && (c->sync_bn || c->allreduce_given))
        return amp_fail(AMP_EINPUT, "%s: only with --data-parallel",
                        c->sync_bn ? "--sync-bn" : "--allreduce-dtype");
    if (c->scale_min > 0.0f && c->scale_max > 0.0f && c->scale_min > c->scale_max)
        return amp_fail(AMP_EINPUT, "--scale-min %g is above --scale-max %g", c->scale_min,
                        c->scale_max);
    if (c->scale_min > 0.0f && c->scale_init < c->scale_min)
        return amp_fail(AMP_EINPUT, "--scale-init %g is below --scale-min %g", c->scale_init,
                        c->scale_min);
    if (c->scale_max > 0.0f && c->scale_init > c->scale_max)
        return amp_fail(AMP_EINPUT, "--scale-init %g is above --scale-max %g", c->scale_init,
                        c->scale_max);
    return AMP_OK;
}

/* The one loop over the arguments of every command: extras first, then (when c is not NULL) the
 * run options; *epochs_given and *seeds_given say whether --epochs / --seeds were given. */
static int parse_args(int argc, char **argv, struct amp_config *c, enum cli_command cmd,
                      const struct cli_extras *extra, int *epochs_given, int *seeds_given)
{
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return -1;
        const char *eq = strchr(arg, '=');
        size_t flen = eq ? (size_t)(eq - arg) : strlen(arg);
        const struct cli_extra_opt *x = find_extra(extra, arg, flen);
        const struct opt *o = NULL;
        for (size_t j = 0; c && !x && j < sizeof run_opts / sizeof run_opts[0]; j++)
            if (strlen(run_opts[j].flag) == flen && strncmp(run_opts[j].flag, arg, flen) == 0)
                o = &run_opts[j];
        if (!x && !o)
            return amp_fail(AMP_EINPUT, "%s: unknown option (see --help)", arg);
        if (o && o->verify_only && cmd != CLI_VERIFY)
            return amp_fail(AMP_EINPUT, "%s: only `ampbench verify` takes this option", o->flag);
        const char *flag = x ? x->flag : o->flag;
        if (x && x->metavar[0] == '\0') { /* an extra switch */
            if (eq)
                return amp_fail(AMP_EINPUT, "%s: takes no value", x->flag);
            const int rc = x->set(extra->ctx, x->flag, NULL);
            if (rc != AMP_OK)
                return rc;
            continue;
        }
        if (o && o->type == OPT_SET) {
            if (eq)
                return amp_fail(AMP_EINPUT, "%s: takes no value", o->flag);
            *(int *)((char *)c + o->offset) = (int)o->min;
            continue;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value) {
            if (i + 1 >= argc)
                return amp_fail(AMP_EINPUT, "%s: missing value %s", flag,
                                x ? x->metavar : o->metavar);
            value = argv[++i];
        }
        if (value[0] == '\0')
            return amp_fail(AMP_EINPUT, "%s: empty value", flag);
        const int rc = x ? x->set(extra->ctx, x->flag, value) : set_option(o, value, c);
        if (rc != AMP_OK)
            return rc;
        *epochs_given |= o && o->offset == FIELD(epochs);
        *seeds_given |= o && o->offset == FIELD(seeds);
    }
    return AMP_OK;
}

int cli_parse_extras(int argc, char **argv, const struct cli_extras *extra)
{
    int unused = 0;
    return parse_args(argc, argv, NULL, CLI_RUN, extra, &unused, &unused);
}

int cli_parse(int argc, char **argv, struct amp_config *c, FILE *help_out, enum cli_command cmd,
              const struct cli_extras *extra)
{
    config_defaults(c);
    int epochs_given = 0, seeds_given = 0;
    const int rc = parse_args(argc, argv, c, cmd, extra, &epochs_given, &seeds_given);
    if (rc < 0)
        cli_print_options(help_out, cmd, extra);
    if (rc != AMP_OK)
        return rc;
    /* verify: the preset's protocol unless the flags say otherwise. */
    if (cmd == CLI_VERIFY && !epochs_given && c->net->verify_epochs)
        c->epochs = c->net->verify_epochs;
    if (cmd == CLI_VERIFY && !seeds_given && c->net->verify_seeds)
        c->seeds = c->net->verify_seeds;
    c->device = backend_resolve(c->device); /* run.json records the device that ran */
    return validate(c);
}
