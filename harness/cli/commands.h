/* The subcommands of the ampbench CLI. Each takes its own arguments (after the subcommand name)
 * and the whole command line (for run.json), and returns a process exit code. */
#ifndef AMPBENCH_COMMANDS_H
#define AMPBENCH_COMMANDS_H

int cmd_run(int argc, char **argv, const char *command_line);
int cmd_verify(int argc, char **argv, const char *command_line);
int cmd_parity(int argc, char **argv, const char *command_line);
int cmd_export_init(int argc, char **argv, const char *command_line);
int cmd_bench(int argc, char **argv, const char *command_line);
int cmd_info(int argc, char **argv, const char *command_line);
int cmd_report(int argc, char **argv, const char *command_line);
int cmd_nets(int argc, char **argv, const char *command_line);

#endif
