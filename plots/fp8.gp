# FP8 recipes: the scale (log2 axis, top) and the SQNR against the FP32 values (dB, bottom) of
# every quantized tensor at every training step; colour by what the tensor is (a layer's input,
# weight or output gradient, darker for later layers), line type by mode. MX modes have one
# scale per block of 32, not per tensor: they appear in the SQNR panel only.
# Reads RUN_DIR/fp8.csv (written by FP8 recipes only).
# Usage: gnuplot -c plots/fp8.gp RUN_DIR  ->  RUN_DIR/plots/fp8.png, .svg
plotname = 'fp8'
W = 1300
H = 900
rundir = ARG1
plotsdir = ARG0[1:strlen(ARG0)-strlen('fp8.gp')]
load plotsdir.'style.gp'
fp8_csv = rundir.'/fp8.csv'

stats fp8_csv using (column('step')) nooutput
S = int(STATS_max)                      # steps per epoch
stats fp8_csv using (column('epoch')) nooutput
nep = int(STATS_max)
gstep(dummy) = (column('epoch') - 1) * S + column('step')

# The (mode, tensor) series in file order, as "mode|tensor" words; the FP8 modes in order.
series = ''
stats fp8_csv using (k_ = strcol(1).'|'.strcol(4), \
    strstrt(' '.series.' ', ' '.k_.' ') == 0 ? (series = series.' '.k_, 0) : 0) nooutput
nseries = words(series)
fmodes = ''
stats fp8_csv using (m_ = strcol(1), \
    strstrt(' '.fmodes.' ', ' '.m_.' ') == 0 ? (fmodes = fmodes.' '.m_, 0) : 0) nooutput
nfmodes = words(fmodes)
mode_of(s) = s[1:strstrt(s, '|') - 1]
tensor_of(s) = s[strstrt(s, '|') + 1:]
fmode_index(m) = sum [k=1:nfmodes] (word(fmodes, k) eq m ? k : 0)
# Per mode: whether its scales are per tensor (MX writes 0), and the scale range.
smin = 1e30
smax = 0
array per_tensor[nfmodes]
do for [k=1:nfmodes] {
    stats fp8_csv using (strcol(1) eq word(fmodes, k) ? column('scale') : NaN) nooutput
    per_tensor[k] = STATS_max > 0
    if (per_tensor[k]) {
        smin = STATS_min > 0 && STATS_min < smin ? STATS_min : smin
        smax = STATS_max > smax ? STATS_max : smax
    }
}
stats fp8_csv using (column('sqnr_db') < 1e30 ? column('sqnr_db') : NaN) nooutput
qmin = floor(STATS_min / 5.0) * 5
qmax = ceil(STATS_max / 5.0) * 5

# Colour: input blue, weight green, gradient red; the layer's position among the series of
# its kind darkens it.
kind_of(t) = t[strlen(t)-4:] eq 'input' ? 0 : t[strlen(t)-4:] eq 'eight' ? 1 : 2
series_color(i) = kind_of(tensor_of(word(series, i))) == 0 ? 0x1f77b4 : \
    kind_of(tensor_of(word(series, i))) == 1 ? 0x2ca02c : 0xd62728
series_dt(i) = fmode_index(mode_of(word(series, i)))
is_series(i) = strcol(1).'|'.strcol(4) eq word(series, i)

set xrange [0:nep*S + 1]
set grid noxtics ytics
set key outside right top Left reverse samplen 3 spacing 1.1 font ',9'
set rmargin at screen 0.72

do for [fmt in formats] {
    eval term_cmd(fmt)
    set output out_path(fmt)
    set multiplot layout 2,1 title sprintf("FP8 scales and SQNR per quantized tensor — run %s", run_name) font ',14' noenhanced
    # Top: the per-tensor scales.
    set ylabel 'scale (log₂ axis)'
    unset xlabel
    if (smax > 0) {
        set logscale y 2
        kmin = floor(log(smin) / log(2) + 1e-9) - 1
        kmax = ceil(log(smax) / log(2) - 1e-9) + 1
        set yrange [0.999 * 2.0**kmin : 1.001 * 2.0**kmax]
        eval power_tics(2, kmin, kmax, int(ceil((kmax - kmin) / 12.0)))
        plot for [i=1:nseries] fp8_csv \
            using (gstep(0)):(is_series(i) && column('scale') > 0 ? column('scale') : NaN) \
            with steps lw 1.2 dt series_dt(i) lc rgb series_color(i) title word(series, i)
    } else {
        set label 2 'every FP8 mode of this run scales per block (MX): no per-tensor scale' \
            at graph 0.5, graph 0.5 center font ',12'
        plot 1 with lines lc rgb '#bbbbbb' notitle
        unset label 2
    }
    unset logscale y
    set ytics autofreq
    # Bottom: SQNR.
    set xlabel sprintf('training step (all epochs; %d steps per epoch)', S)
    set ylabel 'SQNR vs FP32 (dB)'
    set yrange [qmin:qmax]
    plot for [i=1:nseries] fp8_csv \
        using (gstep(0)):(is_series(i) && column('sqnr_db') < 1e30 ? column('sqnr_db') : NaN) \
        with lines lw 1.0 dt series_dt(i) lc rgb series_color(i) title word(series, i)
    unset multiplot
    set output
}
