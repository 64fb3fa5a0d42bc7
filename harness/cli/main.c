/* ampbench: the command-line entry point; dispatches to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "error.h"
#include "group.h"
#include "text.h"

#ifndef AMPBENCH_VERSION
#define AMPBENCH_VERSION "unknown"
#endif

struct command {
    const char *name;
    int (*run)(int argc, char **argv, const char *command_line);
    const char *summary;
    int distributed; /* runs under an MPI launcher of several ranks (docs/DISTRIBUTED.md) */
};

static const struct command commands[] = {
    { "run", cmd_run, "train the network (--net) with each recipe; write results/runs/<id>/", 1 },
    { "verify", cmd_verify, "train fp32 and the recipes, judge each against fp32; exit 1 on drift", 1 },
    { "parity", cmd_parity, "one step per recipe vs fp32 from the same weights: per-tensor errors", 0 },
    { "bench", cmd_bench, "throughput and memory sweep over recipes x batches x channels", 1 },
    { "export-init", cmd_export_init, "write the initial weights and first batches as JSON (for PyTorch)", 0 },
    { "nets", cmd_nets, "the network presets: layers, parameters, FLOPs, activation bytes", 1 },
    { "info", cmd_info, "version, build options, CPU features and threads", 1 },
    { "report", cmd_report, "(re)build report.md and the plots of a run folder", 0 },
};

static void usage(FILE *f)
{
    fprintf(f, "usage: ampbench <command> [options]\n\n"
               "Benchmarks and verifies mixed-precision training of a small convolutional "
               "network.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\noptions of run (`ampbench <command> --help` for the others):\n");
    cli_print_options(f, CLI_RUN, NULL);
    fprintf(f, "\nExit codes: 0 success, 1 failure, 2 bad input, 3 I/O error, 4 out of memory, "
               "6 a distributed run's ranks did not answer.\n");
}

#ifdef AMPBENCH_FAULTS
/* The test binary ampbench-faulty (tests/CMakeLists.txt) only: plants the fault named by
 * AMPBENCH_FAULT (harness/model/faults.h). The ampbench binary is built without this. */
#include <stdlib.h>

#include "faults.h"

static int plant_fault(void)
{
    const char *name = getenv("AMPBENCH_FAULT");
    if (name && model_plant_fault(name) != 0) {
        char names[256];
        fprintf(stderr, "ampbench: AMPBENCH_FAULT: unknown fault '%s' (known: %s)\n", name,
                model_fault_names(names, sizeof names));
        return -1;
    }
    fprintf(stderr, "ampbench-faulty: planted fault: %s\n", name ? name : "none");
    return 0;
}
#endif

/* Under an MPI launcher: joins the group; the ranks but 0 print nothing on stdout (rank 0 speaks
 * for the run; errors still go to stderr). */
static int join_group(int *argc, char ***argv)
{
    if (dist_init(argc, argv) != AMP_OK) {
        text_print_error("", amp_last_error());
        return -1;
    }
    if (dist_world()->rank != 0 && !freopen("/dev/null", "w", stdout))
        return -1;
    return 0;
}

static int run_command(int argc, char **argv);

int main(int argc, char **argv)
{
    if (join_group(&argc, &argv) != 0)
        return 2;
    return dist_finish(run_command(argc, argv));
}

static int run_command(int argc, char **argv)
{
#ifdef AMPBENCH_FAULTS
    if (plant_fault() != 0)
        return 2;
#endif
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("ampbench %s\n", AMPBENCH_VERSION);
        return 0;
    }
    char line[2048];
    size_t used = 0;
    line[0] = '\0';
    for (int i = 0; i < argc && used < sizeof line; i++)
        used += (size_t)snprintf(line + used, sizeof line - used, "%s%s", i ? " " : "", argv[i]);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(cmd, commands[i].name) != 0)
            continue;
        if (!commands[i].distributed && dist_world()->size > 1) {
            char why[200];
            snprintf(why, sizeof why, "%s: runs as one process, not under an MPI launcher of %d "
                     "ranks (only run, verify and bench are distributed; info and nets print on rank 0)", cmd, dist_world()->size);
            text_print_error("", why);
            return 2;
        }
        return commands[i].run(argc - 2, argv + 2, line);
    }
    char why[600];
    snprintf(why, sizeof why, "unknown command '%.500s' (see --help)", cmd);
    text_print_error("", why);
    return 2;
}
