/* `ampbench verify`: train fp32 and the recipes (over --seeds), judge every recipe against fp32
 * and optionally a baseline, print the verdict table, store the verdicts in run.json, write JUnit
 * XML; exit 0 only when every recipe passes (1 when one fails, 2 on bad input). */
#include <stdio.h>
#include <string.h>

#include "baseline.h"
#include "clock.h"
#include "cli.h"
#include "commands.h"
#include "error.h"
#include "files.h"
#include "junit.h"
#include "report.h"
#include "runner.h"
#include "verify.h"

/* fp32 is the reference: make sure it runs, first. */
static int ensure_reference(struct amp_config *c)
{
    const struct recipe *reference = recipe_reference();
    for (size_t i = 0; i < c->nrecipes; i++)
        if (c->recipes[i] == reference)
            return AMP_OK;
    if (c->nrecipes == CONFIG_MAX_RECIPES)
        return amp_fail(AMP_EINPUT, "--modes: no room to add the fp32 reference");
    memmove(c->recipes + 1, c->recipes, c->nrecipes * sizeof c->recipes[0]);
    c->recipes[0] = reference;
    c->nrecipes++;
    printf("note: verify adds fp32, the reference every recipe is judged against\n");
    return AMP_OK;
}

static void print_verdicts(const struct verification *v)
{
    printf("\nverdicts (tolerances: final accuracy -%.2f pp, per-epoch test loss +%.1f%%%s)\n",
           v->tol_acc, 100.0 * v->tol_loss,
           v->seeds >= 3 ? "; one-sided t-test paired by seed at p = 0.05" : "");
    printf("  %-12s %9s %9s %8s %9s %8s %10s  %s\n", "mode", "final_acc", "delta_pp", "loss_d%",
           "skipped", "seeds", "grad_uflw", "verdict");
    for (size_t i = 0; i < v->n; i++) {
        const struct verdict *d = &v->verdicts[i];
        char seeds[32];
        if (d->stats.n > 1)
            snprintf(seeds, sizeof seeds, "%u sd%.2f", d->stats.n, 100.0 * d->stats.std);
        else
            snprintf(seeds, sizeof seeds, "1");
        printf("  %-12s %8.2f%% %+9.2f %+8.2f %9u %8s %10.2e  %s: %s\n", d->recipe->name,
               100.0 * d->stats.mean, d->delta_pp, 100.0 * d->worst_loss_rel, d->skipped_steps,
               seeds, d->grad_underflow, d->pass ? "PASS" : d->inconclusive ? "INCONCLUSIVE" : "FAIL",
               d->inconclusive ? d->reason + strlen("inconclusive: ") : d->reason);
    }
    if (v->baseline)
        printf("baseline %s: %s\n", v->baseline,
               v->nmoves ? "metrics moved:" : "every metric within tolerance");
    for (size_t i = 0; i < v->nmoves; i++)
        printf("  moved: %s\n", v->moves[i]);
}

int cmd_verify(int argc, char **argv, const char *command_line)
{
    struct amp_config c;
    int rc = cli_parse(argc, argv, &c, stdout, CLI_VERIFY, NULL);
    if (rc < 0)
        return 0;
    if (rc == AMP_OK)
        rc = ensure_reference(&c);
    if (rc != AMP_OK)
        return runner_report_error(rc);

    const double t0 = now_s();
    struct runner r;
    struct baseline base = { 0 };
    rc = runner_open(&r, &c, command_line);
    if (rc == AMP_OK && c.baseline) /* a wrong baseline is refused before any folder or training */
        rc = baseline_open(&base, c.baseline, &c, r.train.n, r.test.n);
    if (rc == AMP_OK && c.junit) /* so are outputs that could not be written at the end */
        rc = file_check_writable(c.junit, "--junit");
    if (rc == AMP_OK && c.write_baseline)
        rc = file_check_writable(c.write_baseline, "--write-baseline");
    if (rc == AMP_OK)
        rc = runner_start(&r, "verify", "results/runs");
    if (rc == AMP_OK)
        rc = runner_train_all(&r);
    if (!runner_writes(&r)) { /* another rank: rank 0 judges and writes */
        baseline_close(&base);
        runner_close(&r);
        return rc == AMP_OK ? 0 : runner_report_error(rc);
    }

    struct verification v = { 0 };
    if (rc == AMP_OK)
        rc = verify_judge(&c, r.results, r.nresults, &v);
    if (rc == AMP_OK && c.baseline)
        rc = baseline_compare(&v, &base, &c, r.results, r.nresults);
    baseline_close(&base);
    if (rc == AMP_OK && c.write_baseline) {
        rc = baseline_write(c.write_baseline, &c, r.train.n, r.test.n, r.results, r.nresults);
        if (rc == AMP_OK)
            printf("baseline written to %s\n", c.write_baseline);
    }
    if (rc == AMP_OK)
        print_verdicts(&v);
    rc = runner_finish(&r, rc, &v); /* the results and the report, also when interrupted */
    if (rc == AMP_OK && c.junit)
        rc = junit_write(c.junit, &v, now_s() - t0);
    if (rc == AMP_OK && c.junit)
        printf("JUnit report: %s\n", c.junit);
    const int passed = rc == AMP_OK && v.all_pass;
    verification_free(&v);
    runner_close(&r);
    if (rc != AMP_OK)
        return runner_report_error(rc);
    printf("verify: %s\n", passed ? "every recipe passed" : "FAILED");
    return passed ? 0 : AMP_EFAIL;
}
