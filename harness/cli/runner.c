/* What `run` and `verify` share: data loading, the run folder, training every recipe and seed with
 * progress on the terminal. */
#include "runner.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "interrupt.h"

int runner_report_error(int rc)
{
    fprintf(stderr, "ampbench: %s\n", amp_last_error());
    return rc == AMP_EINTR ? 128 + interrupt_signal() : rc;
}

static int load_data(struct runner *r)
{
    const struct amp_config *c = r->c;
    r->data_dir = c->data_dir ? c->data_dir : dataset_default_dir();
    if (!r->data_dir)
        return amp_fail(AMP_EINPUT,
                        "no data: Fashion-MNIST not found in /usr/share/datasets/fashion-mnist "
                        "(apt-get install dataset-fashion-mnist, or pass --data DIR)");
    int rc = dataset_load(r->data_dir, "train", 10, c->train_limit, &r->train);
    if (rc != AMP_OK)
        return rc;
    rc = dataset_load(r->data_dir, "t10k", 10, c->test_limit, &r->test);
    if (rc == AMP_OK && (r->test.h != r->train.h || r->test.w != r->train.w))
        rc = amp_fail(AMP_EINPUT, "%s: test images are %ux%u but training images are %ux%u",
                      r->data_dir, r->test.h, r->test.w, r->train.h, r->train.w);
    return rc;
}

int runner_open(struct runner *r, struct amp_config *c, const char *command_line)
{
    memset(r, 0, sizeof *r);
    r->c = c;
    r->command_line = command_line;
    int rc = load_data(r);
    if (rc != AMP_OK)
        return rc;
    if (c->batch > r->train.n) {
        printf("note: --batch %u is larger than the %zu training samples; using batch %zu\n",
               c->batch, r->train.n, r->train.n);
        c->batch = (uint32_t)r->train.n;
    }
    /* The preset must take this data's shape: say so now, not after the first recipe trained. */
    const struct model_shape shape = train_model_shape(c, &r->train, c->batch);
    const struct precision_plan plan = precision_plan_of(recipe_reference(), c->policy);
    struct net_totals totals;
    rc = model_totals(c->net, &shape, &plan, &totals);
    if (rc != AMP_OK)
        return rc;
    r->results = calloc(c->nrecipes * c->seeds, sizeof *r->results);
    if (!r->results)
        return amp_fail(AMP_ENOMEM, "out of host memory");
    return AMP_OK;
}

int runner_start(struct runner *r, const char *what, const char *parent)
{
    const struct amp_config *c = r->c;
    interrupt_install();
    int rc = results_create_dir(c->out_dir, parent, r->dir, sizeof r->dir);
    if (rc != AMP_OK) {
        r->dir[0] = '\0'; /* no folder: nothing may be written */
        return rc;
    }
    host_info_get(&r->host);
    printf("ampbench %s: %zu modes x %u seed%s, %u epochs, batch %u, policy %s, %zu train / %zu "
           "test samples from %s\n",
           what, c->nrecipes, c->seeds, c->seeds == 1 ? "" : "s", c->epochs, c->batch,
           policy_name(c->policy), r->train.n, r->test.n, r->data_dir);
    printf("results: %s\n", r->dir);
    progress_init(&r->prog, stdout, c->progress < 0 ? isatty(STDOUT_FILENO) : c->progress);
    r->callbacks = progress_callbacks(&r->prog);
    return AMP_OK;
}

int runner_begin(struct runner *r, struct amp_config *c, int argc, char **argv,
                 const char *command_line, enum cli_command cmd, const char *what)
{
    memset(r, 0, sizeof *r);
    int rc = cli_parse(argc, argv, c, stdout, cmd);
    if (rc == AMP_OK)
        rc = runner_open(r, c, command_line);
    if (rc == AMP_OK)
        rc = runner_start(r, what, "results/runs");
    return rc;
}

int runner_train(struct runner *r, const struct recipe *m, uint64_t seed)
{
    struct amp_config c = *r->c;
    c.seed = seed;
    struct recipe_result *out = &r->results[r->nresults++];
    int rc = train_recipe(&c, m, &r->train, &r->test, &r->callbacks, out);
    if (rc != AMP_OK)
        return rc;
    if (out->diverged)
        printf("  %s diverged: the loss became NaN/inf at epoch %u, step %u; training of this recipe "
               "stopped\n",
               m->name, out->diverged_epoch, out->diverged_step);
    if (out->scale_below_one)
        fprintf(stderr, "ampbench: warning: %s: the dynamic loss scale fell below 1 (gradients "
                        "overflow even unscaled)\n",
                m->name);
    return AMP_OK;
}

struct run_record runner_record(const struct runner *r, int complete)
{
    return (struct run_record){ .config = r->c, .host = &r->host, .recipes = r->results,
                                .nrecipes = r->nresults, .command_line = r->command_line,
                                .data_dir = r->data_dir, .train_samples = r->train.n,
                                .test_samples = r->test.n, .complete = complete };
}

void runner_close(struct runner *r)
{
    for (size_t i = 0; i < r->nresults; i++)
        recipe_result_free(&r->results[i]);
    free(r->results);
    dataset_free(&r->train);
    dataset_free(&r->test);
    memset(r, 0, sizeof *r);
}
