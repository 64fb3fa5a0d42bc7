# Underflow per epoch and mode: the fraction of the elements rounded to FP16/BF16 that were
# non-zero before rounding and zero after, for gradients (activation and weight gradients
# together: epochs.csv grad_underflow_frac) and for activations (act_underflow_frac), on a log
# axis. A mode with no underflow at all (fp32 rounds nothing; BF16 has FP32's range) cannot sit
# on a log axis: such modes are listed in the panel instead; a missing point is a zero epoch.
# Usage: gnuplot -c plots/underflow.gp RUN_DIR  ->  RUN_DIR/plots/underflow.png, .svg
plotname = 'underflow'
W = 1400
H = 600
rundir = ARG1
plotsdir = ARG0[1:strlen(ARG0)-strlen('underflow.gp')]
load plotsdir.'style.gp'

# Per panel: the modes with some underflow (drawn) and those with none (listed), the range.
array cols[2] = ['grad_underflow_frac', 'act_underflow_frac']
array titles[2] = ['Gradient underflow (activation + weight gradients)', 'Activation underflow']
array drawn[2]
array zero[2]
array lo[2]
array hi[2]
do for [p=1:2] {
    drawn[p] = ''
    zero[p] = ''
    lo[p] = 1
    hi[p] = 0
    do for [m in modes] {
        stats epochs_csv using (strcol(1) eq m ? column(cols[p]) : NaN) nooutput
        if (STATS_max > 0) {
            drawn[p] = drawn[p].' '.m
            stats epochs_csv using (strcol(1) eq m && column(cols[p]) > 0 ? column(cols[p]) : NaN) nooutput
            lo[p] = STATS_min < lo[p] ? STATS_min : lo[p]
            hi[p] = STATS_max > hi[p] ? STATS_max : hi[p]
        } else {
            zero[p] = zero[p].(strlen(zero[p]) ? ', ' : '').m
        }
    }
}
positive(m, col) = strcol(1) eq m && column(col) > 0 ? column(col) : NaN
# Overlapping lines stay visible: earlier modes are drawn wider.
lw_of(p, i) = 1.5 + 1.2 * (words(drawn[p]) - i)

# One legend for both panels, in a row under the title, where it can hide no data.
legend_modes = drawn[1]
do for [m in drawn[2]] {
    if (strstrt(' '.legend_modes.' ', ' '.m.' ') == 0) { legend_modes = legend_modes.' '.m }
}
leg_n = words(legend_modes)
array leg_text[leg_n > 0 ? leg_n : 1]
array leg_color[leg_n > 0 ? leg_n : 1]
array leg_lw[leg_n > 0 ? leg_n : 1]
array leg_dashed[leg_n > 0 ? leg_n : 1]
array leg_open[leg_n > 0 ? leg_n : 1]
do for [i=1:leg_n] {
    leg_text[i] = word(legend_modes, i)
    leg_color[i] = mode_color(word(legend_modes, i))
    leg_lw[i] = 2
    leg_dashed[i] = 0
    leg_open[i] = 0
}

do for [fmt in formats] {
    eval term_cmd(fmt)
    set output out_path(fmt)
    eval base_style
    unset key
    set xrange [0.7:nepochs+0.3]
    set xtics 1
    set xlabel 'epoch'
    set ylabel "fraction of the elements rounded to FP16/BF16\nthat became zero (log axis)"
    set multiplot layout 1,2 margins 0.08, 0.985, 0.1, 0.8 spacing 0.08, 0.1 \
        title sprintf("Underflow per epoch — run %s", run_name) font ',14' noenhanced
    do for [p=1:2] {
        set title titles[p]
        unset label
        if (strlen(zero[p])) {
            set label 1 "zero at every epoch (cannot sit on a log axis): ".zero[p] \
                at graph 0.03, graph 0.05 left front noenhanced
        }
        set logscale y 10
        n = words(drawn[p])
        if (n > 0) {
            kmin = floor(log10(lo[p]) - 1.2)
            kmax = ceil(log10(hi[p]) + 1)
            set yrange [0.999 * 10.0**kmin : 1.001 * 10.0**kmax]   # the end tics stay in
            eval power_tics(10, kmin, kmax, 1)
            plot for [i=1:n] epochs_csv using (column('epoch')):(positive(word(drawn[p], i), cols[p])) \
                with linespoints lw lw_of(p, i) pt 7 lc rgb mode_color(word(drawn[p], i)) notitle
        } else {
            set yrange [1e-8:1]
            eval power_tics(10, -8, 0, 1)
            set label 2 'no mode underflowed' at graph 0.5, graph 0.5 center font ',13'
            plot NaN notitle
        }
    }
    if (leg_n > 0) {
        eval legend_setup
        legend_y = 0.875
        load plotsdir.'legend.gp'
    }
    unset multiplot
    set output
}
