# Per-epoch curves of one metric, shared by loss.gp and accuracy.gp (loaded after style.gp).
# Expects: train_col, test_col (epochs.csv columns), factor (1, or 100 for %), what and What
# (the metric's name for titles, plain and capitalised), ylab, dlab (axis labels of the values
# and of the differences).
# Upper row: train (left) and test (right) per epoch, one line per mode, fp32 dashed black.
# Lower row (when the run has fp32): each mode minus fp32 at the same epoch, which shows the
# differences the upper row hides when the recipes agree.
# Seeds: when the run trained fp32 with several seeds (verify --seeds N), plots/fp32_band.csv
# (derived by `ampbench report` from seeds.csv) holds fp32's mean and std per epoch, drawn as a
# grey mean +- std band under the upper panels' lines; the lines are the first seed (epochs.csv).

array ref_train[nepochs]
array ref_test[nepochs]
do for [e=1:nepochs] { ref_train[e] = NaN; ref_test[e] = NaN }
if (has_fp32) {
    stats epochs_csv using (strcol(1) eq 'fp32' \
        ? (ref_train[int(column('epoch'))] = factor*column(train_col), \
           ref_test[int(column('epoch'))] = factor*column(test_col), 0) : 0) nooutput
}
band_csv = derived_dir.'/fp32_band.csv'
band_seeds = 0
if (has_fp32) {
    stats band_csv using (column('seeds')) nooutput    # only a warning when it has no rows
    if (exists("STATS_records") && STATS_records > 0) { band_seeds = int(STATS_max) }
}
band_lo(col) = factor * (column(col.'_mean') - column(col.'_std'))
band_hi(col) = factor * (column(col.'_mean') + column(col.'_std'))
band_style = "with filledcurves fc rgb '#c8c8c8' fs solid 0.7 noborder notitle"
band_train = band_seeds ? "band_csv using (column('epoch')):(band_lo(train_col)):(band_hi(train_col)) ".band_style."," : ""
band_test = band_seeds ? "band_csv using (column('epoch')):(band_lo(test_col)):(band_hi(test_col)) ".band_style."," : ""
val(m, col) = strcol(1) eq m ? factor*column(col) : NaN
dtrain(m) = strcol(1) eq m ? factor*column(train_col) - ref_train[int(column('epoch'))] : NaN
dtest(m) = strcol(1) eq m ? factor*column(test_col) - ref_test[int(column('epoch'))] : NaN

fp32_style = "with linespoints dt 2 lw 2 pt 6 ps 1.2 lc rgb 0x000000"
fp32_train = has_fp32 ? ", epochs_csv using (column('epoch')):(val('fp32', train_col)) ".fp32_style." notitle" : ""
fp32_test = has_fp32 ? ", epochs_csv using (column('epoch')):(val('fp32', test_col)) ".fp32_style." notitle" : ""

# The legend: the other modes, then fp32 (and its band).
leg_n = nothers + has_fp32 + (band_seeds > 0)
array leg_text[leg_n]
array leg_color[leg_n]
array leg_lw[leg_n]
array leg_dashed[leg_n]
array leg_open[leg_n]
do for [i=1:nothers] {
    leg_text[i] = word(others, i)
    leg_color[i] = mode_color(word(others, i))
    leg_lw[i] = other_lw(i)
    leg_dashed[i] = 0
    leg_open[i] = 0
}
if (has_fp32) {
    leg_text[nothers + 1] = 'fp32 (reference)'
    leg_color[nothers + 1] = 0x000000
    leg_lw[nothers + 1] = 2
    leg_dashed[nothers + 1] = 1
    leg_open[nothers + 1] = 1
}
if (band_seeds > 0) {
    leg_text[leg_n] = sprintf('fp32 mean ± std, %d seeds', band_seeds)
    leg_color[leg_n] = 0xc8c8c8
    leg_lw[leg_n] = 12
    leg_dashed[leg_n] = 0
    leg_open[leg_n] = 2
}

do for [fmt in formats] {
    eval term_cmd(fmt)
    set output out_path(fmt)
    eval base_style
    set xrange [0.7:nepochs+0.3]
    set xtics 1
    set xlabel 'epoch'
    set pointsize 0.9
    set offsets 0, 0, graph 0.08, graph 0.08   # lines never sit on the frame
    unset key                                  # one legend for all panels, drawn last
    set multiplot layout (has_fp32 ? 2 : 1),2 \
        margins 0.07, 0.985, (has_fp32 ? 0.06 : 0.1), (has_fp32 ? 0.875 : 0.79) spacing 0.075, 0.1 \
        title sprintf("%s per epoch — run %s (%d modes)", What, run_name, nmodes) font ',14' noenhanced

    set ylabel ylab
    set title sprintf('Training %s (mean over the epoch''s batches)', what)
    plot @band_train for [i=1:nothers] epochs_csv using (column('epoch')):(val(word(others,i), train_col)) \
            with linespoints lw other_lw(i) pt 7 lc rgb mode_color(word(others,i)) \
            notitle @fp32_train
    set title sprintf('Test %s (after each epoch)', what)
    plot @band_test for [i=1:nothers] epochs_csv using (column('epoch')):(val(word(others,i), test_col)) \
            with linespoints lw other_lw(i) pt 7 lc rgb mode_color(word(others,i)) \
            notitle @fp32_test

    if (has_fp32) {
        set ylabel dlab
        set title sprintf('Training %s minus fp32 (0 = fp32)', what)
        plot 0 with lines dt 2 lw 2 lc rgb 0x000000 notitle, \
             for [i=1:nothers] epochs_csv using (column('epoch')):(dtrain(word(others,i))) \
                with linespoints lw other_lw(i) pt 7 lc rgb mode_color(word(others,i)) notitle
        set title sprintf('Test %s minus fp32 (0 = fp32)', what)
        plot 0 with lines dt 2 lw 2 lc rgb 0x000000 notitle, \
             for [i=1:nothers] epochs_csv using (column('epoch')):(dtest(word(others,i))) \
                with linespoints lw other_lw(i) pt 7 lc rgb mode_color(word(others,i)) notitle
    }

    eval legend_setup
    unset offsets
    legend_y = has_fp32 ? 0.925 : 0.875
    load plotsdir.'legend.gp'
    unset multiplot
    set output
}
