/* Command-line parsing of the run options into a configuration. */
#ifndef AMPBENCH_CLI_H
#define AMPBENCH_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"

/* The subcommands that take the run options. */
enum cli_command { CLI_RUN, CLI_VERIFY, CLI_PARITY, CLI_EXPORT, CLI_BENCH };

/* Options a subcommand adds to the run options (bench's --batches LIST, ...): parsed in the same
 * loop with the same spellings (`--flag VALUE` and `--flag=VALUE`); an extra option shadows a
 * run option of the same name. `set` stores the value in ctx or fails with the flag named. */
struct cli_extra_opt {
    const char *flag, *metavar, *help; /* metavar "": a switch, set() given a NULL value */
    int (*set)(void *ctx, const char *flag, const char *value);
};
struct cli_extras {
    const struct cli_extra_opt *opts;
    size_t n;
    void *ctx;
};

/* Parses argv[0..argc) (the arguments after the subcommand) into c, starting from the defaults,
 * and the subcommand's extra options (NULL: none). Every value is checked here, before any work:
 * numbers by cli_parse_uint's and the float rules, ranges between flags (--scale-init within
 * [--scale-min, --scale-max]). Returns AMP_OK, AMP_EINPUT with the message naming the flag, or -1
 * when --help was given (the options have then been printed to `help_out`). */
int cli_parse(int argc, char **argv, struct amp_config *c, FILE *help_out, enum cli_command cmd,
              const struct cli_extras *extra);
/* The same loop for a command that takes only its own options (nets, info): -1 after --help
 * (the caller prints its usage), AMP_EINPUT naming the flag, else AMP_OK. */
int cli_parse_extras(int argc, char **argv, const struct cli_extras *extra);
/* Prints the options `cmd` takes (and the extras, when not NULL). */
void cli_print_options(FILE *f, enum cli_command cmd, const struct cli_extras *extra);
/* The one rule for integers of every flag: decimal digits only (no sign, no space, no
 * suffix), no overflow, within [min, max] (max 0: no upper bound); AMP_EINPUT naming flag. */
int cli_parse_uint(const char *flag, const char *text, uint64_t min, uint64_t max,
                   uint64_t *out);

#endif
