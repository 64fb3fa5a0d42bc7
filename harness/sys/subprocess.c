/* Child processes with posix_spawnp: argv arrays only (never a shell), stdin from /dev/null,
 * stdout/stderr optionally into files, waited for with EINTR retried; after SIGINT/SIGTERM
 * (sys/interrupt.h) the child is sent SIGTERM, so that a stopped ampbench does not wait on it. */
#include "subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "interrupt.h"

extern char **environ;

int spawn_wait(struct spawn_status *st, char *const argv[], int out_fd, int err_fd)
{
    st->code = st->signal = 0;
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0)
        return amp_fail(AMP_EFAIL, "%s: cannot start: out of memory", argv[0]);
    int err = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (!err && out_fd >= 0)
        err = posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
    if (!err && err_fd >= 0)
        err = posix_spawn_file_actions_adddup2(&fa, err_fd, STDERR_FILENO);
    pid_t pid = 0;
    if (!err)
        err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err)
        return amp_fail(AMP_EFAIL, "%s: cannot start: %s", argv[0], strerror(err));
    int status = 0, stopped = 0;
    for (;;) {
        if (interrupt_signal() && !stopped) { /* we stop: so does the child, now */
            kill(pid, SIGTERM);
            stopped = 1;
        }
        if (waitpid(pid, &status, 0) >= 0)
            break;
        if (errno != EINTR)
            return amp_fail(AMP_EFAIL, "%s: cannot wait for it: %s", argv[0], strerror(errno));
    }
    if (WIFSIGNALED(status))
        st->signal = WTERMSIG(status);
    else
        st->code = WEXITSTATUS(status);
    return AMP_OK;
}

int spawn_check(char *const argv[], int out_fd, int err_fd)
{
    struct spawn_status st;
    const int rc = spawn_wait(&st, argv, out_fd, err_fd);
    if (rc != AMP_OK)
        return rc;
    if (st.signal)
        return amp_fail(AMP_EFAIL, "%s was killed by signal %d", argv[0], st.signal);
    if (st.code)
        return amp_fail(AMP_EFAIL, "%s failed (exit %d)", argv[0], st.code);
    return AMP_OK;
}

int spawn_find_in_path(char *out, size_t len, const char *prog)
{
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (1) {
        const char *end = strchr(path, ':');
        const size_t n = end ? (size_t)(end - path) : strlen(path);
        const int w = n ? snprintf(out, len, "%.*s/%s", (int)n, path, prog)
                        : snprintf(out, len, "./%s", prog);
        struct stat st;
        if (w > 0 && (size_t)w < len && stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
            access(out, X_OK) == 0)
            return 1;
        if (!end)
            return 0;
        path = end + 1;
    }
}
