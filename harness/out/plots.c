/* Drawing a run's plots: finds gnuplot in PATH and runs one plots/<name>.gp script per image
 * with spawn_wait (the run folder is passed as an argument, never through a shell), its output
 * in plots/gnuplot.log; each image is drawn into a private folder, checked whole (a full disk
 * cuts it short) and only then renamed over the previous one. */
#include "report.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "error.h"
#include "files.h"
#include "interrupt.h"
#include "paths.h"
#include "subprocess.h"

const char *const report_plot_names[REPORT_NPLOTS] = { "loss",      "accuracy",   "loss_scale",
                                                       "underflow", "throughput", "memory" };
const char *const report_fp8_plot_name = "fp8";

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

int plots_draw(const char *run_dir, struct plot_status st[REPORT_NPLOTS], int *drawn)
{
    return plots_draw_named(run_dir, report_plot_names, REPORT_NPLOTS, st, drawn);
}

/* Whether the image at path is whole: a PNG ends with its IEND chunk, an SVG with </svg>. A
 * gnuplot that ran out of disk leaves a file cut short, and may still exit 0. */
static int image_complete(const char *path, int png)
{
    static const unsigned char iend[12] = { 0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82 };
    unsigned char tail[64];
    const int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 12) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    const off_t from = st.st_size > (off_t)sizeof tail ? st.st_size - (off_t)sizeof tail : 0;
    const ssize_t n = pread(fd, tail, sizeof tail, from);
    const int synced = fsync(fd) == 0; /* whole on disk before it is renamed into place */
    close(fd);
    if (n < 12 || !synced)
        return 0;
    if (png)
        return memcmp(tail + n - 12, iend, 12) == 0;
    size_t end = (size_t)n;
    while (end && (tail[end - 1] == '\n' || tail[end - 1] == ' ' || tail[end - 1] == '\r'))
        end--;
    return end >= 6 && memcmp(tail + end - 6, "</svg>", 6) == 0;
}

/* Whether the file system of path has no room left (the cause of an incomplete image). */
static int disk_full(const char *path)
{
    struct statvfs vfs;
    return statvfs(path, &vfs) == 0 && (vfs.f_bavail == 0 || vfs.f_favail == 0);
}

/* gnuplot's -e argument: imagedir='<dir>' with gnuplot's quoting (a ' doubled); -1 when it does
 * not fit or dir holds a line break. */
static int imagedir_arg(char *out, size_t len, const char *dir)
{
    size_t used = (size_t)snprintf(out, len, "imagedir='");
    for (const char *p = dir; *p && used + 3 < len; p++) {
        if (*p == '\n' || *p == '\r')
            return -1; /* would end gnuplot's command */
        if (*p == '\'')
            out[used++] = '\'';
        out[used++] = *p;
    }
    if (used + 3 >= len)
        return -1;
    out[used++] = '\'';
    out[used] = '\0';
    return 0;
}

/* Removes the staging folder and what is left in it. */
static void remove_staging(const char *staging, const char *const *names, int n)
{
    char path[4600];
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 2; k++) {
            snprintf(path, sizeof path, "%s/%s.%s", staging, names[i], k ? "svg" : "png");
            unlink(path);
        }
    rmdir(staging);
}

int plots_draw_named(const char *run_dir, const char *const *names, int n,
                     struct plot_status *st, int *drawn_out)
{
    *drawn_out = 0;
    for (int i = 0; i < n; i++)
        st[i].drawn = 0;
    char gnuplot[4096];
    if (!spawn_find_in_path(gnuplot, sizeof gnuplot, "gnuplot")) {
        skip_all(st, n, "gnuplot not found in PATH (apt-get install gnuplot-nox, then ampbench "
                        "report RUN_DIR)");
        return AMP_OK;
    }
    if (interrupt_signal()) { /* a run that was stopped: its report now, its plots later */
        skip_all(st, n, "the run was interrupted (ampbench report RUN_DIR draws them)");
        return AMP_OK;
    }
    char scripts[4096];
    paths_share_dir(scripts, sizeof scripts, "plots");
    char plots_dir[4200], staging[4300], define[8800], log_tmp[4400];
    snprintf(plots_dir, sizeof plots_dir, "%s/plots", run_dir);
    /* Images are drawn into a fresh private folder and renamed into plots/ once whole. */
    snprintf(staging, sizeof staging, "%s/.draw-XXXXXX", plots_dir);
    if (!mkdtemp(staging))
        return amp_fail(AMP_EIO, "%s: cannot create a folder to draw in: %s", plots_dir,
                        strerror(errno));
    if (imagedir_arg(define, sizeof define, staging) != 0) {
        rmdir(staging);
        return amp_fail(AMP_EIO, "%s: path too long for gnuplot, or holding a line break",
                        staging);
    }
    const int log_fd = file_temp_in(log_tmp, sizeof log_tmp, plots_dir, "gnuplot.log");
    if (log_fd < 0) {
        rmdir(staging);
        return amp_fail(AMP_EIO, "%s/gnuplot.log: cannot write: %s", plots_dir, strerror(errno));
    }

    int drawn = 0, rc = AMP_OK;
    for (int i = 0; i < n && rc == AMP_OK; i++) {
        if (st[i].why[0])
            continue;
        const char *name = names[i];
        char script[4200], png[4600], svg[4600];
        snprintf(script, sizeof script, "%s/%s.gp", scripts, name);
        snprintf(png, sizeof png, "%s/%s.png", staging, name);
        snprintf(svg, sizeof svg, "%s/%s.svg", staging, name);
        if (access(script, R_OK) != 0) {
            snprintf(st[i].why, sizeof st[i].why,
                     "%.100s not found (set AMPBENCH_PLOTS_DIR to ampbench's plots/ folder)",
                     script);
            continue;
        }
        const long log_from = lseek(log_fd, 0, SEEK_END);
        struct spawn_status status;
        char *const argv[] = { gnuplot, (char *)"-e", define, (char *)"-c", script,
                               (char *)run_dir, NULL };
        const int src = spawn_wait(&status, argv, log_fd, log_fd);
        char last[160];
        last_log_line(log_tmp, log_from, last, sizeof last);
        const int whole = image_complete(png, 1) && image_complete(svg, 0);
        if (interrupt_signal())
            rc = amp_fail(AMP_EINTR, "interrupted (signal %d) while drawing plot %s; the images "
                          "already in %s are unchanged", interrupt_signal(), name, plots_dir);
        else if (!whole && disk_full(staging))
            rc = amp_fail(AMP_EIO, "%s/%s.png: disk full while gnuplot drew it (%s); the images "
                          "already in %s are unchanged", plots_dir, name, strerror(ENOSPC),
                          plots_dir);
        else if (src != AMP_OK)
            snprintf(st[i].why, sizeof st[i].why, "%.190s", amp_last_error());
        else if (status.signal)
            snprintf(st[i].why, sizeof st[i].why, "gnuplot was killed by signal %d",
                     status.signal);
        else if (status.code != 0)
            snprintf(st[i].why, sizeof st[i].why, "gnuplot failed (exit %d%s%.120s; see "
                     "plots/gnuplot.log)", status.code, last[0] ? ": " : "", last);
        else if (!whole)
            snprintf(st[i].why, sizeof st[i].why, "gnuplot wrote an incomplete or no %s image "
                     "(see plots/gnuplot.log)", image_complete(png, 1) ? "SVG" : "PNG");
        else {
            char final_name[200];
            for (int k = 0; k < 2 && rc == AMP_OK; k++) {
                snprintf(final_name, sizeof final_name, "%s.%s", name, k ? "svg" : "png");
                rc = file_commit_in(plots_dir, k ? svg : png, final_name);
            }
            st[i].drawn = rc == AMP_OK;
            drawn += st[i].drawn;
        }
    }
    remove_staging(staging, names, n);
    if (drawn == n && rc == AMP_OK) {
        char old_log[4300];
        snprintf(old_log, sizeof old_log, "%s/gnuplot.log", plots_dir);
        unlink(old_log); /* a previous drawing's log describes images that are now replaced */
    }
    const int log_ok = fsync(log_fd) == 0;
    close(log_fd);
    /* The log is kept only when a plot was not drawn (warnings alone are not worth a file). */
    if (drawn == n || rc != AMP_OK || !log_ok || file_commit_in(plots_dir, log_tmp, "gnuplot.log") != AMP_OK)
        unlink(log_tmp);
    *drawn_out = drawn;
    return rc;
}

void plots_remove_stale(const char *run_dir, const char *const *names, int n,
                        const struct plot_status *st)
{
    char path[4300];
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 2 && !st[i].drawn; k++) {
            snprintf(path, sizeof path, "%s/plots/%s.%s", run_dir, names[i], k ? "svg" : "png");
            unlink(path); /* unlink removes a link itself, never its target */
        }
}
