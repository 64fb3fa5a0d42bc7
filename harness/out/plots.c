/* Drawing a run's plots: finds gnuplot in PATH and runs one plots/<name>.gp script per image
 * with posix_spawn (the run folder is passed as an argument, never through a shell), its output
 * in plots/gnuplot.log; checks that each script wrote its PNG and SVG. */
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AMPBENCH_PLOTS_DIR
#define AMPBENCH_PLOTS_DIR "plots"
#endif

const char *const report_plot_names[REPORT_NPLOTS] = { "loss",      "accuracy",   "loss_scale",
                                                       "underflow", "throughput", "memory" };

/* The executable `prog` in $PATH (an empty entry is the current folder) into out; 0 if none. */
static int find_in_path(const char *prog, char *out, size_t len)
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

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) ? (long)st.st_size : -1;
}

/* The last non-empty line gnuplot wrote from offset `from` of the log, into buf. */
static void last_log_line(const char *log_path, long from, char *buf, size_t len)
{
    buf[0] = '\0';
    FILE *f = fopen(log_path, "r");
    if (!f)
        return;
    if (fseek(f, from, SEEK_SET) == 0) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = '\0';
            const char *p = line;
            while (*p == ' ' || *p == '\t' || *p == '^')
                p++;
            if (*p)
                snprintf(buf, len, "%.*s", (int)(len - 1), p);
        }
    }
    fclose(f);
}

/* Runs gnuplot on one script with stdin from /dev/null and stdout/stderr into log_fd. */
static int run_gnuplot(const char *gnuplot, const char *script, const char *run_dir, int log_fd,
                       int *status)
{
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0)
        return ENOMEM;
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (log_fd >= 0) {
        posix_spawn_file_actions_adddup2(&fa, log_fd, STDOUT_FILENO);
        posix_spawn_file_actions_adddup2(&fa, log_fd, STDERR_FILENO);
    }
    char *const argv[] = { (char *)"gnuplot", (char *)"-c", (char *)script, (char *)run_dir,
                           NULL };
    pid_t pid;
    int err = posix_spawn(&pid, gnuplot, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err != 0)
        return err;
    while (waitpid(pid, status, 0) < 0)
        if (errno != EINTR)
            return errno;
    return 0;
}

static void skip_all(struct plot_status *st, int n, const char *why)
{
    for (int i = 0; i < n; i++)
        if (!st[i].why[0])
            snprintf(st[i].why, sizeof st[i].why, "%s", why);
}

int plots_draw(const char *run_dir, struct plot_status st[REPORT_NPLOTS])
{
    return plots_draw_named(run_dir, report_plot_names, REPORT_NPLOTS, st);
}

int plots_draw_named(const char *run_dir, const char *const *names, int n,
                     struct plot_status *st)
{
    for (int i = 0; i < n; i++)
        st[i].drawn = 0;
    char gnuplot[4096];
    if (!find_in_path("gnuplot", gnuplot, sizeof gnuplot)) {
        skip_all(st, n, "gnuplot not found in PATH (apt-get install gnuplot-nox, then ampbench "
                        "report RUN_DIR)");
        return 0;
    }
    const char *env_dir = getenv("AMPBENCH_PLOTS_DIR");
    const char *scripts = env_dir && *env_dir ? env_dir : AMPBENCH_PLOTS_DIR;
    char log_path[4200];
    snprintf(log_path, sizeof log_path, "%s/plots/gnuplot.log", run_dir);
    const int log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);

    int drawn = 0;
    for (int i = 0; i < n; i++) {
        if (st[i].why[0])
            continue;
        const char *name = names[i];
        char script[4200], png[4200], svg[4200];
        snprintf(script, sizeof script, "%s/%s.gp", scripts, name);
        snprintf(png, sizeof png, "%s/plots/%s.png", run_dir, name);
        snprintf(svg, sizeof svg, "%s/plots/%s.svg", run_dir, name);
        if (access(script, R_OK) != 0) {
            snprintf(st[i].why, sizeof st[i].why,
                     "%.100s not found (set AMPBENCH_PLOTS_DIR to ampbench's plots/ folder)",
                     script);
            continue;
        }
        /* No stale image survives a failed redraw. */
        unlink(png);
        unlink(svg);
        const long log_from = log_fd >= 0 ? lseek(log_fd, 0, SEEK_END) : 0;
        int status = 0;
        const int err = run_gnuplot(gnuplot, script, run_dir, log_fd, &status);
        char last[160];
        last_log_line(log_path, log_from, last, sizeof last);
        if (err != 0)
            snprintf(st[i].why, sizeof st[i].why, "cannot run %.80s: %s", gnuplot, strerror(err));
        else if (WIFSIGNALED(status))
            snprintf(st[i].why, sizeof st[i].why, "gnuplot was killed by signal %d",
                     WTERMSIG(status));
        else if (WEXITSTATUS(status) != 0)
            snprintf(st[i].why, sizeof st[i].why, "gnuplot failed (exit %d%s%.120s; see "
                     "plots/gnuplot.log)", WEXITSTATUS(status), last[0] ? ": " : "", last);
        else if (file_size(png) <= 0 || file_size(svg) <= 0)
            snprintf(st[i].why, sizeof st[i].why, "gnuplot wrote no %s image (see "
                     "plots/gnuplot.log)", file_size(png) <= 0 ? "PNG" : "SVG");
        else {
            st[i].drawn = 1;
            drawn++;
        }
    }
    if (log_fd >= 0) {
        close(log_fd);
        if (drawn == n) /* only warnings, if anything: not worth a file */
            unlink(log_path);
    }
    return drawn;
}
