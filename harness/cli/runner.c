/* What `run` and `verify` share: the memory estimate and data loading, the claimed run folder,
 * training every recipe and seed with progress on the terminal and the results rewritten after
 * every epoch, and the end (results, where they are, the report). */
#include "runner.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "group.h"
#include "interrupt.h"
#include "report.h"
#include "text.h"

int runner_report_error(int rc)
{
    text_print_error("", amp_last_error());
    return rc == AMP_EINTR ? 128 + interrupt_signal() : rc;
}

/* "12.3 GB" */
static const char *gigabytes(char *buf, size_t len, double bytes)
{
    snprintf(buf, len, "%.1f GB", bytes / 1e9);
    return buf;
}

/* What the run will hold at once, estimated from the data files' headers and the network's
 * layer table before anything is allocated: the data set (both splits, the peak of loading the
 * larger) and, on the CPU backend, one recipe's tensors (activations and their gradients at the
 * batch, parameters with gradients, momentum, master and low-precision copies, the batch). A
 * run that needs more than the memory available is refused (AMP_ENOMEM, both figures). */
static int check_memory(const struct runner *r)
{
    const struct amp_config *c = r->c;
    struct dataset_size tr, te;
    int rc = dataset_probe(r->data_dir, "train", c->train_limit, &tr);
    if (rc == AMP_OK)
        rc = dataset_probe(r->data_dir, "t10k", c->test_limit, &te);
    if (rc != AMP_OK || tr.n == 0)
        return rc; /* dataset_load says what is wrong */
    const double data = (double)tr.kept_bytes + (double)te.kept_bytes +
                        (double)(tr.peak_bytes - tr.kept_bytes > te.peak_bytes - te.kept_bytes
                                     ? tr.peak_bytes - tr.kept_bytes
                                     : te.peak_bytes - te.kept_bytes);
    const uint32_t batch = c->batch < tr.n ? c->batch : (uint32_t)tr.n;
    const struct dataset probe = { .n = tr.n, .c = 1, .h = tr.h, .w = tr.w, .classes = 10 };
    const struct model_shape shape = train_model_shape(c, &probe, batch);
    const struct precision_plan plan = precision_plan_of(recipe_reference(), c->policy);
    struct net_totals totals;
    double tensors = 0.0;
    if (strcmp(c->device, "cpu") == 0 && model_totals(c->net, &shape, &plan, &totals) == AMP_OK)
        tensors = 2.0 * (double)totals.act_bytes * batch + 20.0 * (double)totals.params +
                  (double)batch * tr.h * tr.w * sizeof(float);
    char how[64], a[32], b[32], t[32], d[32];
    const double avail = (double)host_memory_available(how, sizeof how);
    if (avail > 0 && data + tensors > avail)
        return amp_fail(AMP_ENOMEM, "not enough memory: this run needs about %s (data set %s, "
                        "tensors %s) but %s is available (%s); use --train-limit/--test-limit, "
                        "a smaller --batch or --channels", gigabytes(a, sizeof a, data + tensors),
                        gigabytes(d, sizeof d, data), gigabytes(t, sizeof t, tensors),
                        gigabytes(b, sizeof b, avail), how);
    return AMP_OK;
}

static int load_data(struct runner *r)
{
    const struct amp_config *c = r->c;
    r->data_dir = c->data_dir ? c->data_dir : dataset_default_dir();
    if (!r->data_dir)
        return amp_fail(AMP_EINPUT,
                        "no data: Fashion-MNIST not found in /usr/share/datasets/fashion-mnist "
                        "(apt-get install dataset-fashion-mnist, or pass --data DIR)");
    int rc = check_memory(r);
    if (rc != AMP_OK)
        return rc;
    rc = dataset_load(r->data_dir, "train", 10, c->train_limit, &r->train);
    if (rc != AMP_OK)
        return rc;
    rc = dataset_load(r->data_dir, "t10k", 10, c->test_limit, &r->test);
    if (rc == AMP_OK && (r->test.h != r->train.h || r->test.w != r->train.w))
        rc = amp_fail(AMP_EINPUT, "%s: test images are %ux%u but training images are %ux%u",
                      r->data_dir, r->test.h, r->test.w, r->train.h, r->train.w);
    return rc;
}

/* --data-parallel: every rank must hold at least one sample of every batch, the last partial
 * one included; then the replicas' collectives (c->sync). */
static int check_data_parallel(struct runner *r)
{
    struct amp_config *c = r->c;
    const struct dist_group *g = dist_world();
    dist_world()->timeout_s = c->dist_timeout;
    if (!c->data_parallel)
        return AMP_OK;
    const size_t last = r->train.n % c->batch;
    if (c->batch < (uint32_t)g->size || (last && last < (size_t)g->size))
        return amp_fail(AMP_EINPUT, "--data-parallel: every one of the %d ranks needs a sample of "
                        "every batch, but the batches hold %u%s%zu samples; change --batch or "
                        "--train-limit", g->size, c->batch, last ? " and the last one " : "",
                        last ? last : (size_t)c->batch);
    data_parallel_open(&r->dp, c);
    c->sync = &r->dp.sync;
    return AMP_OK;
}

int runner_writes(const struct runner *r)
{
    (void)r;
    return dist_world()->rank == 0;
}

int runner_open(struct runner *r, struct amp_config *c, const char *command_line)
{
    memset(r, 0, sizeof *r);
    r->c = c;
    r->command_line = command_line;
    r->training = SIZE_MAX;
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
    rc = check_data_parallel(r);
    return rc == AMP_OK ? sweep_open(&r->sweep, c, r->results) : rc;
}

/* After every epoch: the results so far, marked incomplete, so that a crash or a SIGKILL keeps
 * every finished epoch. A failed write is kept and returned once the recipe ends. */
static void write_progress(void *ctx)
{
    struct runner *r = ctx;
    if (r->write_rc != AMP_OK || !r->dir[0])
        return;
    const struct run_record rec = runner_record(r, 0);
    r->write_rc = results_write(r->dir, &rec);
}

int runner_start(struct runner *r, const char *what, const char *parent)
{
    const struct amp_config *c = r->c;
    interrupt_install();
    progress_init(&r->prog, stdout, c->progress < 0 ? isatty(STDOUT_FILENO) : c->progress);
    r->callbacks = progress_callbacks(&r->prog);
    if (!runner_writes(r)) { /* rank 0 writes the run */
        r->dir[0] = '\0';
        return AMP_OK;
    }
    int rc = results_create_dir(&r->dir_fd, c->out_dir, parent, r->dir, sizeof r->dir);
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
    const struct dist_group *g = dist_world();
    if (g->size > 1)
        printf("distributed: %d ranks, %s\n", g->size,
               c->data_parallel ? "data-parallel (every recipe trained by all of them)"
                                : "the (recipe, seed) trainings spread over them");
    return AMP_OK;
}

int runner_begin(struct runner *r, struct amp_config *c, int argc, char **argv,
                 const char *command_line, enum cli_command cmd, const char *what)
{
    memset(r, 0, sizeof *r);
    int rc = cli_parse(argc, argv, c, stdout, cmd, NULL);
    if (rc == AMP_OK)
        rc = runner_open(r, c, command_line);
    if (rc == AMP_OK)
        rc = runner_start(r, what, "results/runs");
    return rc;
}

/* The results run.json shows: the leading ones that are in, and the one in training when it
 * comes next (so that a crash keeps its finished epochs). */
static void count_results(struct runner *r)
{
    r->nresults = sweep_prefix(&r->sweep);
    if (r->training == r->nresults)
        r->nresults++;
}

/* During training: the sweep's heartbeats and gathering (a failure is kept for the end of the
 * recipe). */
static void service_sweep(void *ctx)
{
    struct runner *r = ctx;
    if (r->write_rc == AMP_OK)
        r->write_rc = sweep_service(&r->sweep);
    count_results(r);
}

/* Trains job `job` (recipe job % nrecipes, seed --seed + job / nrecipes) into its slot. */
static int train_job(struct runner *r, size_t job)
{
    struct amp_config c = *r->c;
    const struct recipe *m = c.recipes[job % c.nrecipes];
    c.seed += job / c.nrecipes;
    struct recipe_result *out = &r->results[job];
    r->training = job;
    count_results(r);
    int rc = train_recipe(&c, m, &r->train, &r->test, &r->callbacks, out);
    out->rank = (uint32_t)dist_world()->rank;
    if (rc == AMP_OK || rc == AMP_EINTR)
        rc = r->write_rc != AMP_OK ? r->write_rc : rc; /* a failed write outranks a signal */
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
    r->training = SIZE_MAX; /* (a recipe that failed stays shown: its finished epochs) */
    return sweep_done(&r->sweep, job);
}

int runner_train_all(struct runner *r)
{
    /* an (incomplete) run.json from the start, then after every epoch */
    r->prog.after_epoch = write_progress;
    r->prog.after_batch = service_sweep;
    r->prog.ctx = r;
    int rc = AMP_OK;
    if (r->dir[0]) {
        const struct run_record rec = runner_record(r, 0);
        rc = results_write(r->dir, &rec);
    }
    for (size_t job = 0; job < r->sweep.njobs && rc == AMP_OK; job++)
        if (sweep_mine(&r->sweep, job))
            rc = train_job(r, job);
    if (rc == AMP_OK)
        rc = sweep_collect(&r->sweep);
    count_results(r);
    return rc;
}

struct run_record runner_record(const struct runner *r, int complete)
{
    return (struct run_record){ .config = r->c, .host = &r->host, .recipes = r->results,
                                .nrecipes = r->nresults, .command_line = r->command_line,
                                .data_dir = r->data_dir, .train_samples = r->train.n,
                                .test_samples = r->test.n, .complete = complete,
                                .world_size = dist_world()->size,
                                .rank_hosts = dist_world()->hosts,
                                .allreduce_library = r->c->data_parallel ? r->dp.library : NULL };
}

int runner_finish(struct runner *r, int rc, const struct verification *v)
{
    if (!r->dir[0])
        return rc;
    char why[1024]; /* the reason the run stopped, kept for the last line */
    snprintf(why, sizeof why, "%s", amp_last_error());
    struct run_record rec = runner_record(r, rc == AMP_OK);
    rec.verification = rc == AMP_OK ? v : NULL;
    const int wrc = results_write(r->dir, &rec);
    if (wrc != AMP_OK)
        return wrc; /* the write error says what was lost, and where */
    if (rc == AMP_OK)
        printf("\nresults written to %s (run.json, epochs.csv%s)\n", r->dir,
               r->c->steps_csv ? ", steps.csv" : "");
    else
        fprintf(stderr, "ampbench: run incomplete (run.json says \"complete\": false); the "
                        "epochs that finished are in %s\n",
                r->dir);
    const int prc = report_after_run(r->dir);
    if (rc == AMP_OK)
        return prc;
    amp_fail(rc, "%s", why);
    return rc;
}

void runner_close(struct runner *r)
{
    if (r->dir[0])
        close(r->dir_fd); /* releases the claim */
    for (size_t i = 0; r->results && i < r->sweep.njobs; i++)
        recipe_result_free(&r->results[i]);
    free(r->results);
    sweep_close(&r->sweep);
    data_parallel_close(&r->dp);
    dataset_free(&r->train);
    dataset_free(&r->test);
    memset(r, 0, sizeof *r);
}
