/* The report of a run folder: RUN_DIR/report.md (one page: summary, results table, verdicts,
 * plots, precision traces, environment) and RUN_DIR/plots/ (derived CSVs and the gnuplot images),
 * built from run.json and epochs.csv (and steps.csv for the loss-scale plot). */
#ifndef AMPBENCH_REPORT_H
#define AMPBENCH_REPORT_H

#include <stddef.h>

/* The images, in report order: RUN_DIR/plots/<name>.png and .svg, drawn by plots/<name>.gp. */
enum { PLOT_LOSS, PLOT_ACCURACY, PLOT_LOSS_SCALE, PLOT_UNDERFLOW, PLOT_THROUGHPUT, PLOT_MEMORY,
       REPORT_NPLOTS };
extern const char *const report_plot_names[REPORT_NPLOTS];
/* Drawn only for a run with FP8 recipes (RUN_DIR/fp8.csv): plots/fp8.gp. */
extern const char *const report_fp8_plot_name;

struct report_outcome {
    int plots_drawn;        /* images drawn, of REPORT_NPLOTS */
    char plots_note[640];   /* which plots were skipped and why, one line; "" when all drawn */
};

/* Reads run_dir/run.json and run_dir/epochs.csv, writes run_dir/plots/{throughput,memory}.csv,
 * draws the plots with gnuplot when it can, and writes run_dir/report.md atomically. Plots are
 * optional: a missing or failing gnuplot is not an error (out->plots_note says what happened).
 * Returns AMP_EINPUT for a missing folder or a missing/malformed run.json or epochs.csv (the
 * message names the file and the problem), AMP_EIO when a file cannot be written (disk full:
 * no file is left half-written under its final name), AMP_EINTR when SIGINT/SIGTERM arrived.
 * A verdict is read from run.json's modes.<mode>.verdict when present: a string, or an object
 * with "verdict" (or "result"/"status") and "reason"/"reasons" (a string or an array). */
int report_build(const char *run_dir, struct report_outcome *out);

/* The end of `ampbench run` and `verify`: report_build, then "report: DIR/report.md" on stdout,
 * or a warning on stderr when plots were skipped. A report that cannot be written for lack of
 * plots is not an error, but a disk-full or other write error (AMP_EIO) and an interrupt
 * (AMP_EINTR) are returned, with the message naming the run folder, so that the command exits
 * 3 or 130/143; else AMP_OK. */
int report_after_run(const char *run_dir);

/* plots.c: the state of one image after plots_draw. */
struct plot_status {
    int drawn;          /* both images were written */
    char why[200];      /* why it was not drawn ("" when drawn) */
};

/* Runs `gnuplot -e imagedir=... -c PLOTS_DIR/<name>.gp run_dir` for every plot whose st[i].why is
 * empty (a non-empty why skips that plot and is kept). PLOTS_DIR is paths_share_dir("plots")
 * (sys/paths.h): $AMPBENCH_PLOTS_DIR, share/ampbench/plots beside an installed binary, or the
 * source tree's. Each image is drawn into a fresh private folder run_dir/plots/.draw-XXXXXX,
 * checked whole (a PNG's IEND chunk, an SVG's </svg>), fsynced and only then renamed over
 * run_dir/plots/<name>.png and .svg: a failed, interrupted or disk-full drawing leaves the
 * previous images as they were. gnuplot's messages go to run_dir/plots/gnuplot.log (kept only
 * when a plot was not drawn), written through an exclusive temporary file.
 * A missing or failing gnuplot is not an error: *drawn gets the number of plots drawn and st[]
 * says why the others were not. Returns AMP_EIO when the disk is full or a file cannot be
 * written, AMP_EINTR after SIGINT/SIGTERM (the message says what is unchanged), else AMP_OK. */
int plots_draw(const char *run_dir, struct plot_status st[REPORT_NPLOTS], int *drawn);
/* The same for any list of scripts plots/<names[i]>.gp (the bench's plots). */
int plots_draw_named(const char *run_dir, const char *const *names, int n,
                     struct plot_status *st, int *drawn);
/* Removes the images of the plots that were not drawn (once a report that does not link them is
 * in place), so that no stale image outlives its data. */
void plots_remove_stale(const char *run_dir, const char *const *names, int n,
                        const struct plot_status *st);

#endif
