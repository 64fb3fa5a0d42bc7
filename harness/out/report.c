/* The report of a run folder: loads it back (report_load.c), writes the derived CSVs
 * (report_derived.c), has plots.c draw the images and writes report.md (report_md.c). */
#include "report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "files.h"
#include "report_run.h"
#include "results.h"
#include "text.h"

/* "N of 6 plots skipped: <reason> (loss, accuracy); <reason> (loss_scale)", one line. */
static void summarise_plots(const struct plot_status st[REPORT_NPLOTS], int drawn, char *out,
                            size_t len)
{
    out[0] = '\0';
    if (drawn == REPORT_NPLOTS)
        return;
    size_t used = (size_t)snprintf(out, len, "%d of %d plots skipped:", REPORT_NPLOTS - drawn,
                                   REPORT_NPLOTS);
    int done[REPORT_NPLOTS] = { 0 };
    for (int i = 0; i < REPORT_NPLOTS && used < len; i++) {
        if (st[i].drawn || done[i])
            continue;
        used += (size_t)snprintf(out + used, len - used, "%s %s (%s", used > 30 ? ";" : "",
                                 st[i].why, report_plot_names[i]);
        for (int j = i + 1; j < REPORT_NPLOTS && used < len; j++)
            if (!st[j].drawn && !done[j] && strcmp(st[j].why, st[i].why) == 0) {
                used += (size_t)snprintf(out + used, len - used, ", %s", report_plot_names[j]);
                done[j] = 1;
            }
        if (used < len)
            used += (size_t)snprintf(out + used, len - used, ")");
    }
}

int report_build(const char *run_dir, struct report_outcome *out)
{
    out->plots_drawn = 0;
    out->plots_note[0] = '\0';
    struct stat sb;
    if (stat(run_dir, &sb) != 0)
        return amp_fail(AMP_EINPUT, "%s: no such run folder", run_dir);
    if (!S_ISDIR(sb.st_mode))
        return amp_fail(AMP_EINPUT, "%s: not a folder (expected a run folder holding run.json)",
                        run_dir);
    if (strlen(run_dir) > RESULTS_MAX_DIR)
        return amp_fail(AMP_EINPUT, "%s: path too long (%zu bytes; at most %d)", run_dir,
                        strlen(run_dir), RESULTS_MAX_DIR);
    if (strchr(run_dir, '\n'))
        return amp_fail(AMP_EINPUT, "%s: a run folder path with a newline is refused (gnuplot "
                        "reads it)", run_dir);

    struct run *r = calloc(1, sizeof *r);
    if (!r)
        return amp_fail(AMP_ENOMEM, "out of memory");
    r->dir = run_dir;
    int rc = run_load(r);
    char plots_dir[4200];
    snprintf(plots_dir, sizeof plots_dir, "%s/plots", run_dir);
    if (rc == AMP_OK)
        rc = dir_ensure(plots_dir);
    int n_tp = 0, n_mem = 0;
    if (rc == AMP_OK)
        rc = report_write_derived(r, plots_dir, &n_tp, &n_mem);
    if (rc == AMP_OK)
        rc = report_write_band(r, plots_dir);

    struct plot_status st[REPORT_NPLOTS];
    memset(st, 0, sizeof st);
    if (rc == AMP_OK) {
        size_t rows = 0;
        for (size_t i = 0; i < r->nrecipes; i++)
            rows += r->recipes[i].nrows;
        for (int i = 0; i < REPORT_NPLOTS; i++)
            if (rows == 0)
                snprintf(st[i].why, sizeof st[i].why, "no epoch completed");
        if (!r->have_steps && !st[PLOT_LOSS_SCALE].why[0])
            snprintf(st[PLOT_LOSS_SCALE].why, sizeof st[PLOT_LOSS_SCALE].why, "%s",
                     r->steps_problem);
        if (rows && !n_tp)
            snprintf(st[PLOT_THROUGHPUT].why, sizeof st[PLOT_THROUGHPUT].why,
                     "no mode has a training time in epochs.csv");
        if (rows && !n_mem)
            snprintf(st[PLOT_MEMORY].why, sizeof st[PLOT_MEMORY].why,
                     "run.json has no memory by category");
        rc = plots_draw(run_dir, st, &out->plots_drawn);
        summarise_plots(st, out->plots_drawn, out->plots_note, sizeof out->plots_note);
        int fp8_drawn = 0;
        if (rc == AMP_OK && r->have_fp8)
            rc = plots_draw_named(run_dir, &report_fp8_plot_name, 1, &r->fp8_plot, &fp8_drawn);
    }
    if (rc == AMP_OK)
        rc = report_write_md(r, st, out->plots_drawn);
    if (rc == AMP_OK)
        plots_remove_stale(run_dir, report_plot_names, REPORT_NPLOTS, st);
    if (rc == AMP_OK && r->have_fp8)
        plots_remove_stale(run_dir, &report_fp8_plot_name, 1, &r->fp8_plot);
    run_free(r);
    free(r);
    return rc;
}

int report_after_run(const char *run_dir)
{
    struct report_outcome out;
    const int rc = report_build(run_dir, &out);
    if (rc == AMP_EIO || rc == AMP_EINTR) {
        char why[1024];
        snprintf(why, sizeof why, "%s", amp_last_error());
        return amp_fail(rc, "%s; the results are in %s (ampbench report %s redraws the report)",
                        why, run_dir, run_dir);
    }
    if (rc != AMP_OK) {
        char why[16384 + 4200];
        snprintf(why, sizeof why, "no report: %s (retry with ampbench report %s)",
                 amp_last_error(), run_dir);
        text_print_error("warning: ", why);
        return AMP_OK;
    }
    printf("report: %s/report.md\n", run_dir);
    if (out.plots_note[0])
        text_print_error("warning: ", out.plots_note);
    return AMP_OK;
}
