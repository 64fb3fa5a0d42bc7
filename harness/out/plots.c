/* Drawing a run's plots: finds gnuplot in PATH and runs one plots/<name>.gp script per image
 * with spawn_wait (the run folder is passed as an argument, never through a shell), its output
 * in plots/gnuplot.log; checks that each script wrote its PNG and SVG. */
#include "report.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "paths.h"
#include "subprocess.h"

const char *const report_plot_names[REPORT_NPLOTS] = { "loss",      "accuracy",   "loss_scale",
                                                       "underflow", "throughput", "memory" };

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
    if (!spawn_find_in_path(gnuplot, sizeof gnuplot, "gnuplot")) {
        skip_all(st, n, "gnuplot not found in PATH (apt-get install gnuplot-nox, then ampbench "
                        "report RUN_DIR)");
        return 0;
    }
    char scripts[4096];
    paths_share_dir(scripts, sizeof scripts, "plots");
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
        struct spawn_status status;
        char *const argv[] = { gnuplot, (char *)"-c", script, (char *)run_dir, NULL };
        const int rc = spawn_wait(&status, argv, log_fd, log_fd);
        char last[160];
        last_log_line(log_path, log_from, last, sizeof last);
        if (rc != AMP_OK)
            snprintf(st[i].why, sizeof st[i].why, "%.190s", amp_last_error());
        else if (status.signal)
            snprintf(st[i].why, sizeof st[i].why, "gnuplot was killed by signal %d",
                     status.signal);
        else if (status.code != 0)
            snprintf(st[i].why, sizeof st[i].why, "gnuplot failed (exit %d%s%.120s; see "
                     "plots/gnuplot.log)", status.code, last[0] ? ": " : "", last);
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
