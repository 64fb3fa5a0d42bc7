/* `ampbench report RUN_DIR`: (re)builds report.md and the plots of a run folder. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "error.h"
#include "interrupt.h"
#include "report.h"
#include "runner.h"
#include "text.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ampbench report RUN_DIR\n\n"
            "(Re)builds RUN_DIR/report.md and RUN_DIR/plots/ from the run's run.json,\n"
            "epochs.csv, steps.csv (and seeds.csv): a summary; the results table (accuracy and\n"
            "delta vs fp32, loss, samples/s and speedup, peak memory and saving, skipped steps,\n"
            "verdict); numerics; verdicts; the plots (loss, accuracy, loss scale, underflow,\n"
            "throughput, memory as PNG and SVG); the precision trace of every mode; environment\n"
            "and configuration.\n\n"
            "Plots need gnuplot (apt-get install gnuplot-nox); without it the report is still\n"
            "written and says which plots were skipped. The gnuplot scripts are read from\n"
            "$AMPBENCH_PLOTS_DIR when set, else from share/ampbench/plots beside an installed\n"
            "ampbench (PREFIX/bin/ampbench), else from the source tree's plots/.\n\n"
            "Exit codes: 0 report written (plots may have been skipped: a warning says so),\n"
            "2 bad input (missing folder, missing or malformed run.json or epochs.csv),\n"
            "3 I/O error (disk full: the previous report and images are left as they were),\n"
            "4 out of memory, 130/143 interrupted (the previous report and images unchanged).\n");
}

int cmd_report(int argc, char **argv, const char *command_line)
{
    (void)command_line;
    if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc != 1) {
        fprintf(stderr, "ampbench report: %s (usage: ampbench report RUN_DIR)\n",
                argc == 0 ? "missing RUN_DIR" : "expected one run folder");
        return AMP_EINPUT;
    }
    if (argv[0][0] == '-' || argv[0][0] == '\0') {
        return runner_report_error(amp_fail(AMP_EINPUT, "report: '%s': %s (usage: ampbench "
                                            "report RUN_DIR)", argv[0],
                                            argv[0][0] ? "unknown option" : "empty RUN_DIR"));
    }
    struct report_outcome out;
    interrupt_install();
    const int rc = report_build(argv[0], &out);
    if (rc != AMP_OK)
        return runner_report_error(rc);
    const size_t n = strlen(argv[0]);
    const char *sep = n && argv[0][n - 1] == '/' ? "" : "/";
    printf("report: %s%sreport.md\n", argv[0], sep);
    if (out.plots_drawn > 0)
        printf("plots:  %s%splots/ (%d of %d as PNG and SVG)\n", argv[0], sep, out.plots_drawn,
               REPORT_NPLOTS);
    if (out.plots_note[0])
        text_print_error("warning: ", out.plots_note);
    return 0;
}
