/* Starting a child process without a shell: an argv array (no quoting, no word splitting),
 * optional redirection of its stdout/stderr, a wait, and how it ended. */
#ifndef AMPBENCH_SUBPROCESS_H
#define AMPBENCH_SUBPROCESS_H

#include <stddef.h>

/* How a child ended: exited with `code`, or killed by `signal` (0 when it exited). */
struct spawn_status {
    int code;
    int signal;
};

/* Runs argv[0] (searched in $PATH when it holds no '/') with the arguments argv (NULL-ended)
 * and this process's environment, stdin from /dev/null, stdout into out_fd and stderr into
 * err_fd (-1: this process's own), and waits for it. Returns AMP_OK when it ran (st says how it
 * ended), else AMP_EFAIL with a message naming the program (amp_last_error()). */
int spawn_wait(struct spawn_status *st, char *const argv[], int out_fd, int err_fd);

/* spawn_wait that also requires exit 0: AMP_EFAIL naming the program and how it ended. */
int spawn_check(char *const argv[], int out_fd, int err_fd);

/* The executable `prog` in $PATH (an empty entry is the current folder) into out; 0 if none. */
int spawn_find_in_path(char *out, size_t len, const char *prog);

#endif
