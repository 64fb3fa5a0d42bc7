/* `ampbench run`: load the data, create the run folder, train every mode, write the results. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "error.h"
#include "idx.h"
#include "progress.h"
#include "results.h"
#include "sysinfo.h"
#include "train.h"

static int report(int rc)
{
    fprintf(stderr, "ampbench: %s\n", amp_last_error());
    return rc;
}

static int load_data(const struct amp_config *c, const char **dir, struct dataset *train,
                     struct dataset *test)
{
    *dir = c->data_dir ? c->data_dir : dataset_default_dir();
    if (!*dir)
        return amp_fail(AMP_EINPUT,
                        "no data: Fashion-MNIST not found in /usr/share/datasets/fashion-mnist "
                        "(apt-get install dataset-fashion-mnist, or pass --data DIR)");
    int rc = dataset_load(*dir, "train", 10, c->train_limit, train);
    if (rc != AMP_OK)
        return rc;
    rc = dataset_load(*dir, "t10k", 10, c->test_limit, test);
    if (rc == AMP_OK && (test->h != train->h || test->w != train->w))
        rc = amp_fail(AMP_EINPUT, "%s: test images are %ux%u but training images are %ux%u", *dir,
                      test->h, test->w, train->h, train->w);
    if (rc != AMP_OK)
        dataset_free(train);
    return rc;
}

int cmd_run(int argc, char **argv, const char *command_line)
{
    struct amp_config c;
    int rc = cli_parse_run(argc, argv, &c, stdout);
    if (rc < 0)
        return 0;
    if (rc != AMP_OK)
        return report(rc);

    const char *data_dir;
    struct dataset train, test;
    rc = load_data(&c, &data_dir, &train, &test);
    if (rc != AMP_OK)
        return report(rc);
    if (c.batch > train.n) {
        printf("note: --batch %u is larger than the %zu training samples; using batch %zu\n",
               c.batch, train.n, train.n);
        c.batch = (uint32_t)train.n;
    }

    char dir[4096];
    rc = results_create_dir(c.out_dir, dir, sizeof dir);
    if (rc != AMP_OK) {
        dataset_free(&train);
        dataset_free(&test);
        return report(rc);
    }

    struct host_info host;
    host_info_get(&host);
    printf("ampbench run: %zu modes, %u epochs, batch %u, policy %s, %zu train / %zu test samples "
           "from %s\n",
           c.nmodes, c.epochs, c.batch, policy_name(c.policy), train.n, test.n, data_dir);
    printf("results: %s\n", dir);

    struct mode_result *results = calloc(c.nmodes, sizeof *results);
    struct run_record rec = { .config = &c, .host = &host, .modes = results, .nmodes = 0,
                              .command_line = command_line, .data_dir = data_dir,
                              .train_samples = train.n, .test_samples = test.n };
    struct progress_state prog;
    progress_init(&prog, stdout, c.progress < 0 ? isatty(STDOUT_FILENO) : c.progress);
    const struct train_progress callbacks = progress_callbacks(&prog);
    if (!results)
        rc = amp_fail(AMP_ENOMEM, "out of host memory");
    for (size_t i = 0; i < c.nmodes && rc == AMP_OK; i++) {
        const struct precision_plan plan = precision_plan_of(c.modes[i], c.policy);
        progress_table_header(&prog, c.modes[i], &plan);
        rc = train_mode(&c, c.modes[i], &train, &test, &callbacks, &results[i]);
        rec.nmodes = i + 1;
        if (rc == AMP_OK && results[i].diverged)
            printf("  %s diverged: the loss became NaN/inf at epoch %u, step %u; training of this "
                   "mode stopped\n",
                   c.modes[i]->name, results[i].diverged_epoch, results[i].diverged_step);
        if (rc == AMP_OK && results[i].scale_below_one)
            fprintf(stderr, "ampbench: warning: %s: the dynamic loss scale fell below 1 (gradients "
                            "overflow even unscaled)\n",
                    c.modes[i]->name);
    }
    rec.complete = rc == AMP_OK;
    int wrc = results_write(dir, &rec);
    if (rc == AMP_OK)
        rc = wrc;
    if (rc == AMP_OK)
        printf("\nresults written to %s (run.json, epochs.csv%s)\n", dir,
               c.steps_csv ? ", steps.csv" : "");
    else if (wrc == AMP_OK)
        fprintf(stderr, "ampbench: run incomplete; what finished is in %s\n", dir);
    for (size_t i = 0; i < rec.nmodes; i++)
        mode_result_free(&results[i]);
    free(results);
    dataset_free(&train);
    dataset_free(&test);
    return rc == AMP_OK ? 0 : report(rc);
}
