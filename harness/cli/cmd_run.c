/* `ampbench run`: load the data, claim the run folder, train every recipe (the results written
 * after every epoch), write the final results and the report. */
#include <stdio.h>

#include "cli.h"
#include "commands.h"
#include "error.h"
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
    if (rc == AMP_OK)
        rc = runner_train_all(&r);
    rc = runner_finish(&r, rc, NULL);
    runner_close(&r);
    return rc == AMP_OK ? 0 : runner_report_error(rc);
}
