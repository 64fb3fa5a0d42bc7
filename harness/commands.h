/* The subcommands of the ampbench CLI; each returns a process exit code. */
#ifndef AMPBENCH_COMMANDS_H
#define AMPBENCH_COMMANDS_H

int cmd_run(int argc, char **argv, const char *command_line);
int cmd_info(int argc, char **argv);

#endif
