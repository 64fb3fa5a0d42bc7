/* Command-line parsing of the run options into a configuration. */
#ifndef AMPBENCH_CLI_H
#define AMPBENCH_CLI_H

#include <stdio.h>

#include "config.h"

/* Parses argv[0..argc) (the arguments after the subcommand) into c, starting from the defaults.
 * Returns AMP_OK, AMP_EINPUT with the message naming the flag, or -1 when --help was given
 * (the help has then been printed to `help_out`). */
int cli_parse_run(int argc, char **argv, struct amp_config *c, FILE *help_out);
/* Prints the options of `ampbench run`. */
void cli_print_run_options(FILE *f);

#endif
