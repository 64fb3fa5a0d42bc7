# The loss scale of every step on a log2 axis, one line per mode that scales its loss, skipped
# steps (inf/NaN gradients: the optimizer step was not taken) marked with a black cross on the
# line of their mode.
# Reads RUN_DIR/steps.csv. Modes whose scale is 1 at every step (no loss scaling) are listed
# under the plot instead of drawn as one more flat line at 2^0.
# Usage: gnuplot -c plots/loss_scale.gp RUN_DIR  ->  RUN_DIR/plots/loss_scale.png, .svg
plotname = 'loss_scale'
W = 1300
H = 620
rundir = ARG1
plotsdir = ARG0[1:strlen(ARG0)-strlen('loss_scale.gp')]
load plotsdir.'style.gp'

stats steps_csv using (column('step')) nooutput
S = int(STATS_max)                      # steps per epoch
stats steps_csv using (column('epoch')) nooutput
nep = int(STATS_max)
gstep(dummy) = (column('epoch') - 1) * S + column('step')

# Per mode: is the scale ever != 1, and its range; then the skipped steps per mode.
scaled = ''
unscaled = ''
smin = 1e30
smax = 0
nskipped_all = 0
do for [m in modes] {
    stats steps_csv using (strcol(1) eq m ? column('loss_scale') : NaN) nooutput
    if (STATS_min != 1 || STATS_max != 1) {
        scaled = scaled.' '.m
        smin = STATS_min < smin ? STATS_min : smin
        smax = STATS_max > smax ? STATS_max : smax
    } else {
        unscaled = unscaled.(strlen(unscaled) ? ', ' : '').m
    }
}
array nskip[nmodes]
i = 0
do for [m in modes] {
    i = i + 1
    stats steps_csv using (strcol(1) eq m ? column('skipped') : NaN) nooutput
    nskip[i] = int(STATS_sum)
    nskipped_all = nskipped_all + nskip[i]
}
mode_index(m) = sum [k=1:nmodes] (word(modes, k) eq m ? k : 0)
nscaled = words(scaled)
# Scales often coincide (the same dynamic rule): earlier modes are drawn wider.
scaled_lw(i) = 1.5 + 1.5 * (nscaled - i)

set xlabel sprintf('training step (all epochs; %d steps per epoch)', S)
set ylabel 'loss scale (log₂ axis)'
set logscale y 2
set xrange [0:nep*S + 1]
# Epoch boundaries: dotted lines, epoch numbers along the top.
set x2range [0:nep*S + 1]
set x2tics scale 0 offset 0,-0.3
set x2tics ()
do for [e=1:nep] {
    set x2tics add (sprintf('epoch %d', e) (e - 0.5) * S)
    if (e > 1) { set arrow from (e - 1) * S + 0.5, graph 0 to (e - 1) * S + 0.5, graph 1 nohead ls 100 }
}
set grid noxtics ytics
set key at screen 0.67, screen 0.88 left top Left reverse box samplen 3 spacing 1.2 width -1
if (nscaled > 0) {
    kmin = floor(log(smin) / log(2) + 1e-9) - 2
    kmax = ceil(log(smax) / log(2) - 1e-9) + 2
} else {
    kmin = -2
    kmax = 2
}
set yrange [0.999 * 2.0**kmin : 1.001 * 2.0**kmax]   # the end tics stay in
eval power_tics(2, kmin, kmax, int(ceil((kmax - kmin) / 16.0)))
# Under the legend: the modes not drawn, and whether any step was skipped.
note = strlen(unscaled) ? "not drawn (no loss scaling,\nscale 1 at every step):\n".unscaled : ''
if (nskipped_all == 0) { note = note.(strlen(note) ? "\n\n" : '').'no step was skipped' }
set label 1 note at screen 0.675, screen 0.62 left font ',11' noenhanced
set rmargin at screen 0.65

do for [fmt in formats] {
    eval term_cmd(fmt)
    set output out_path(fmt)
    set title sprintf("Loss scale per step — run %s", run_name) font ',14' noenhanced
    if (nscaled > 0) {
        plot for [i=1:nscaled] steps_csv \
                using (gstep(0)):(strcol(1) eq word(scaled,i) ? column('loss_scale') : NaN) \
                with steps lw scaled_lw(i) lc rgb mode_color(word(scaled,i)) \
                title sprintf('%s (%d skipped)', word(scaled,i), nskip[mode_index(word(scaled,i))]), \
             steps_csv using (gstep(0)):(column('skipped') > 0 ? column('loss_scale') : NaN) \
                with points pt 2 ps 1.3 lw 1.5 lc rgb 0x000000 \
                title sprintf('skipped step (inf/NaN gradient), %d in all', nskipped_all)
    } else {
        set label 2 'no mode of this run scales its loss' at graph 0.5, graph 0.5 center font ',14'
        plot 1 with lines lc rgb '#bbbbbb' notitle
    }
    set output
}
