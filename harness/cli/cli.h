/* Command-line parsing of the run options into a configuration. */
#ifndef AMPBENCH_CLI_H
#define AMPBENCH_CLI_H

#include <stdio.h>

#include "config.h"

/* The subcommands that take the run options. */
enum cli_command { CLI_RUN, CLI_VERIFY, CLI_PARITY, CLI_EXPORT, CLI_BENCH };

/* Parses argv[0..argc) (the arguments after the subcommand) into c, starting from the defaults.
 * Returns AMP_OK, AMP_EINPUT with the message naming the flag, or -1 when --help was given
 * (the options have then been printed to `help_out`). */
int cli_parse(int argc, char **argv, struct amp_config *c, FILE *help_out, enum cli_command cmd);
/* Prints the options `cmd` takes. */
void cli_print_options(FILE *f, enum cli_command cmd);

#endif
