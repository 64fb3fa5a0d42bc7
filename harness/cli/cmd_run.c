/* `ampbench run`: load the data, create the run folder, train every recipe, write the results. */
#include <stdio.h>

#include "cli.h"
#include "commands.h"
#include "error.h"
#include "report.h"
#include "runner.h"

int cmd_run(int argc, char **argv, const char *command_line)
{
    struct amp_config c;
    struct runner r;
    int rc = runner_begin(&r, &c, argc, argv, command_line, CLI_RUN, "run");
    if (rc < 0) {
        runner_close(&r);
        return 0;
    }
    for (size_t i = 0; i < c.nrecipes && rc == AMP_OK; i++)
        rc = runner_train(&r, c.recipes[i], c.seed);
    if (r.dir[0]) {
        const struct run_record rec = runner_record(&r, rc == AMP_OK);
        const int wrc = results_write(r.dir, &rec);
        if (rc == AMP_OK)
            rc = wrc;
        if (rc == AMP_OK)
            printf("\nresults written to %s (run.json, epochs.csv%s)\n", r.dir,
                   c.steps_csv ? ", steps.csv" : "");
        else if (wrc == AMP_OK)
            fprintf(stderr, "ampbench: run incomplete (run.json says \"complete\": false); the "
                            "epochs that finished are in %s\n",
                    r.dir);
        if (wrc == AMP_OK)
            report_after_run(r.dir); /* plots and report.md; never changes the exit code */
    }
    runner_close(&r);
    return rc == AMP_OK ? 0 : runner_report_error(rc);
}
